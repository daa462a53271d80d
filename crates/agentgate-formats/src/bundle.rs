//! Sigstore bundle v0.3 for key-based DSSE attestations: written with sigstore-rust's types (so
//! the JSON is the protobuf-JSON shape every Sigstore client reads) and read back by a strict
//! parser of our own, because the verifier must refuse what it does not understand rather than
//! default it (sigstore-types accepts a missing media type as v0.1, unknown fields, and lets a
//! later duplicate key win).

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use sigstore_types::{
    Bundle, DsseEnvelope, DsseSignature, KeyId, MediaType, PayloadBytes, PublicKeyIdentifier,
    SignatureBytes, SignatureContent, VerificationMaterial, VerificationMaterialContent,
};

use crate::reason::VerifyError;

/// The media type agentgate writes.
pub const MEDIA_TYPE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Media types accepted when reading. All carry the same key-based DSSE content; the media type
/// is not signed, and for key-based bundles no check depends on it.
const ACCEPTED_MEDIA_TYPES: &[&str] = &[
    MEDIA_TYPE_V03,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
];

/// Serialize a key-based bundle: `publicKey.hint`, one DSSE signature whose `keyid` is the hint.
pub fn key_bundle_json(hint: &str, payload_type: &str, payload: &[u8], signature: &[u8]) -> String {
    let envelope = DsseEnvelope::new(
        payload_type,
        PayloadBytes::from_bytes(payload),
        DsseSignature::new(SignatureBytes::from_bytes(signature), KeyId::new(hint)),
    );
    let material = VerificationMaterial::new(VerificationMaterialContent::PublicKey(
        PublicKeyIdentifier::new(hint),
    ));
    let bundle = Bundle::new(
        MediaType::Bundle0_3,
        material,
        SignatureContent::DsseEnvelope(envelope),
    );
    // Serializing owned strings and byte vectors into a String cannot fail.
    bundle.to_json().unwrap_or_default()
}

/// The bundles stored in a git note (JSON Lines, one bundle per line, appended over time).
/// Blank lines are skipped; every other line is a candidate for [`crate::verify_bundle`].
pub fn note_bundles(note: &str) -> impl Iterator<Item = &str> {
    note.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// A bundle that parsed and has the shape of a key-based DSSE attestation. Nothing in it is
/// authenticated yet.
#[derive(Debug, Clone)]
pub struct ParsedBundle {
    pub media_type: String,
    pub hint: String,
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub keyid: String,
    pub signature: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WireBundle {
    media_type: Option<String>,
    verification_material: Option<WireMaterial>,
    dsse_envelope: Option<WireEnvelope>,
    message_signature: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WireMaterial {
    public_key: Option<WirePublicKey>,
    certificate: Option<IgnoredAny>,
    x509_certificate_chain: Option<IgnoredAny>,
    // Log entries and timestamps may accompany a key-based bundle (cosign uploads by default);
    // they are not evidence here, so they are read past and never trusted.
    #[allow(dead_code)]
    tlog_entries: Option<IgnoredAny>,
    #[allow(dead_code)]
    timestamp_verification_data: Option<IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePublicKey {
    #[serde(default)]
    hint: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct WireEnvelope {
    payload_type: String,
    payload: String,
    #[serde(default)]
    signatures: Vec<WireSignature>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSignature {
    sig: String,
    #[serde(default)]
    keyid: String,
}

/// Parse a bundle strictly: valid JSON, no duplicate keys, no unknown fields, a known media
/// type, key material, a DSSE envelope with exactly one signature.
pub fn parse_key_bundle(json: &[u8]) -> Result<ParsedBundle, VerifyError> {
    reject_duplicate_keys(json).map_err(VerifyError::BundleMalformed)?;
    let wire: WireBundle =
        serde_json::from_slice(json).map_err(|e| VerifyError::BundleMalformed(e.to_string()))?;

    let media_type = wire
        .media_type
        .ok_or_else(|| VerifyError::BundleMalformed("no mediaType".into()))?;
    if !ACCEPTED_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(VerifyError::MediaTypeUnsupported(media_type));
    }
    let material = wire
        .verification_material
        .ok_or_else(|| VerifyError::BundleMalformed("no verificationMaterial".into()))?;
    let hint = match (
        material.public_key,
        material.certificate,
        material.x509_certificate_chain,
    ) {
        (Some(pk), None, None) => pk.hint,
        (None, Some(_), None) | (None, None, Some(_)) => return Err(VerifyError::NotKeyBased),
        (None, None, None) => {
            return Err(VerifyError::BundleMalformed(
                "verificationMaterial has no publicKey, certificate or x509CertificateChain".into(),
            ))
        }
        _ => {
            return Err(VerifyError::BundleMalformed(
                "verificationMaterial has more than one kind of key material".into(),
            ))
        }
    };
    let envelope = match (wire.dsse_envelope, wire.message_signature) {
        (Some(env), None) => env,
        (None, Some(_)) => return Err(VerifyError::NotDsse),
        (None, None) => {
            return Err(VerifyError::BundleMalformed("no dsseEnvelope".into()));
        }
        (Some(_), Some(_)) => {
            return Err(VerifyError::BundleMalformed(
                "both dsseEnvelope and messageSignature".into(),
            ))
        }
    };
    let payload = PayloadBytes::from_base64(&envelope.payload)
        .map_err(|e| VerifyError::BundleMalformed(format!("payload: {e}")))?
        .as_bytes()
        .to_vec();
    let mut signatures = envelope.signatures;
    let sig = match signatures.len() {
        0 => return Err(VerifyError::SignatureMissing),
        1 => signatures.remove(0),
        n => return Err(VerifyError::SignaturesMultiple(n)),
    };
    let signature = SignatureBytes::from_base64(&sig.sig)
        .map_err(|e| VerifyError::BundleMalformed(format!("signature: {e}")))?
        .as_bytes()
        .to_vec();
    if signature.is_empty() {
        return Err(VerifyError::SignatureMissing);
    }
    Ok(ParsedBundle {
        media_type,
        hint,
        payload_type: envelope.payload_type,
        payload,
        keyid: sig.keyid,
        signature,
    })
}

/// Refuse JSON in which an object repeats a key: parsers disagree on which copy wins, so a
/// duplicate can show one tool one statement and another tool another.
pub fn reject_duplicate_keys(json: &[u8]) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_slice(json);
    NoDuplicates
        .deserialize(&mut de)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicates)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(A::Error::custom(format!("duplicate key `{key}`")));
            }
            map.next_value_seed(NoDuplicates)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> String {
        key_bundle_json("aGludA==", "application/vnd.in-toto+json", b"{}", b"sig")
    }

    #[test]
    fn writes_the_protobuf_json_shape() {
        let v: serde_json::Value = serde_json::from_str(&sample()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "mediaType": MEDIA_TYPE_V03,
                "verificationMaterial": {"publicKey": {"hint": "aGludA=="}, "tlogEntries": [],
                    "timestampVerificationData": {}},
                "dsseEnvelope": {"payloadType": "application/vnd.in-toto+json", "payload": "e30=",
                    "signatures": [{"sig": "c2ln", "keyid": "aGludA=="}]}
            })
        );
    }

    #[test]
    fn parses_what_it_writes() {
        let p = parse_key_bundle(sample().as_bytes()).unwrap();
        assert_eq!(p.hint, "aGludA==");
        assert_eq!(p.keyid, "aGludA==");
        assert_eq!(p.payload, b"{}");
        assert_eq!(p.signature, b"sig");
    }

    fn code(json: &str) -> &'static str {
        parse_key_bundle(json.as_bytes())
            .unwrap_err()
            .code()
            .as_str()
    }

    #[test]
    fn rejects_each_malformation_with_its_code() {
        let base: serde_json::Value = serde_json::from_str(&sample()).unwrap();
        let with = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = base.clone();
            f(&mut v);
            v.to_string()
        };
        assert_eq!(code("not json"), "bundle-malformed");
        assert_eq!(code("{}"), "bundle-malformed");
        assert_eq!(
            code(&with(&|v| v["mediaType"] = "application/json".into())),
            "bundle-media-type-unsupported"
        );
        assert_eq!(code(&with(&|v| v["extra"] = 1.into())), "bundle-malformed");
        assert_eq!(
            code(&with(
                &|v| v["dsseEnvelope"]["signatures"] = serde_json::json!([])
            )),
            "signature-missing"
        );
        assert_eq!(
            code(&with(&|v| {
                let s = v["dsseEnvelope"]["signatures"][0].clone();
                v["dsseEnvelope"]["signatures"] = serde_json::json!([s.clone(), s]);
            })),
            "signatures-multiple"
        );
        assert_eq!(
            code(&with(&|v| v["verificationMaterial"] =
                serde_json::json!({"certificate": {"rawBytes": "AA=="}}))),
            "bundle-not-key-based"
        );
        assert_eq!(
            code(&with(&|v| {
                v.as_object_mut().unwrap().remove("dsseEnvelope");
                v["messageSignature"] = serde_json::json!({"signature": "AA=="});
            })),
            "bundle-not-dsse"
        );
        assert_eq!(
            code(&with(&|v| v["dsseEnvelope"]["payload"] = "!!".into())),
            "bundle-malformed"
        );
        // A duplicate key, which serde_json::Value would silently collapse.
        let dup = sample().replacen("{\"mediaType\"", "{\"mediaType\":\"x\",\"mediaType\"", 1);
        assert_eq!(code(&dup), "bundle-malformed");
    }

    #[test]
    fn note_lines() {
        let note = "{\"a\":1}\n\n  {\"b\":2}\r\n";
        assert_eq!(
            note_bundles(note).collect::<Vec<_>>(),
            vec!["{\"a\":1}", "{\"b\":2}"]
        );
        assert_eq!(note_bundles("").count(), 0);
    }

    #[test]
    fn duplicate_detection_is_deep() {
        assert!(reject_duplicate_keys(br#"{"a":[{"b":1,"c":{"d":1,"d":2}}]}"#).is_err());
        assert!(reject_duplicate_keys(br#"{"a":[{"b":1},{"b":1}]}"#).is_ok());
        assert!(reject_duplicate_keys(br#"{"a":1} x"#).is_err());
    }
}
