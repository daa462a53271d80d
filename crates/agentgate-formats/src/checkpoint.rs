//! Signed checkpoints of the audit log: the server key's signature over "this log (origin)
//! had `seq` records and the last one hashed to `head`". The hash chain alone shows a line
//! edited or removed in the middle; only a signed head shows records removed from the end, or
//! appended by someone without the key. Signed as DSSE PAE under its own payload type, so a
//! checkpoint signature can never pass for a promotion record or an attestation signed by the
//! same key.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::dsse::pae;
use crate::keys::{KeyError, PublicKey, SigningKey};

/// The DSSE payload type the signature covers (with the body's canonical JSON).
pub const PAYLOAD_TYPE_CHECKPOINT: &str = "application/vnd.agentgate.audit-checkpoint.v1+json";
/// `checkpoint` field of every checkpoint line: what the line is, and its version.
pub const CHECKPOINT_V1: &str = "agentgate-audit-checkpoint/v1";

/// What a checkpoint asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointBody {
    /// Which log: the log file's absolute path on the server.
    pub origin: String,
    /// How many records the log held.
    pub seq: u64,
    /// `sha256:<hex>` of the last record's line (without its newline).
    pub head: String,
    /// When it was signed (RFC 3339).
    pub time: String,
}

/// One checkpoint line: the body, the signing key's hint and the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    pub checkpoint: String,
    #[serde(flatten)]
    pub body: CheckpointBody,
    /// base64(SHA-256(SPKI)) of the key, as in key-based bundles; not trusted for choosing it.
    pub keyid: String,
    /// base64 signature over PAE(PAYLOAD_TYPE_CHECKPOINT, canonical body JSON).
    pub sig: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a checkpoint line: {0}")]
    Malformed(String),
    #[error("the checkpoint's signature does not verify with any of the {0} key(s) given")]
    SignatureInvalid(usize),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The bytes the signature covers.
fn signed_bytes(body: &CheckpointBody) -> Result<Vec<u8>, CheckpointError> {
    let json = serde_json::to_vec(body).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    Ok(pae(PAYLOAD_TYPE_CHECKPOINT, &json))
}

/// Sign `body`; returns the checkpoint as one JSON line (no newline).
pub fn sign_checkpoint(key: &SigningKey, body: CheckpointBody) -> Result<String, CheckpointError> {
    let sig = key.sign(&signed_bytes(&body)?)?;
    let line = SignedCheckpoint {
        checkpoint: CHECKPOINT_V1.into(),
        body,
        keyid: key.public_key().hint().to_string(),
        sig: base64::engine::general_purpose::STANDARD.encode(sig),
    };
    serde_json::to_string(&line).map_err(|e| CheckpointError::Malformed(e.to_string()))
}

/// Parse a checkpoint line without verifying it.
pub fn parse_checkpoint(line: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
    let c: SignedCheckpoint =
        serde_json::from_slice(line).map_err(|e| CheckpointError::Malformed(e.to_string()))?;
    if c.checkpoint != CHECKPOINT_V1 {
        return Err(CheckpointError::Malformed(format!(
            "unknown checkpoint version {:?}",
            c.checkpoint
        )));
    }
    Ok(c)
}

/// Verify a parsed checkpoint with any of `keys` (the keyid never chooses the key); returns
/// the index of the key that verified it.
pub fn verify_checkpoint(
    c: &SignedCheckpoint,
    keys: &[PublicKey],
) -> Result<usize, CheckpointError> {
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&c.sig)
        .map_err(|e| CheckpointError::Malformed(format!("signature: {e}")))?;
    let message = signed_bytes(&c.body)?;
    keys.iter()
        .position(|k| k.verify(&message, &sig))
        .ok_or(CheckpointError::SignatureInvalid(keys.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;

    #[test]
    fn signs_verifies_and_rejects_edits() {
        let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let other = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let body = CheckpointBody {
            origin: "/var/log/agentgate/audit.jsonl".into(),
            seq: 3,
            head: format!("sha256:{}", "ab".repeat(32)),
            time: "2026-01-01T12:00:00Z".into(),
        };
        let line = sign_checkpoint(&key, body.clone()).unwrap();
        let c = parse_checkpoint(line.as_bytes()).unwrap();
        assert_eq!(c.body, body);
        let keys = [other.public_key().clone(), key.public_key().clone()];
        assert_eq!(verify_checkpoint(&c, &keys).unwrap(), 1);
        let mut edited = c.clone();
        edited.body.seq = 2;
        assert!(matches!(
            verify_checkpoint(&edited, &keys),
            Err(CheckpointError::SignatureInvalid(2))
        ));
        assert!(verify_checkpoint(&c, &keys[..1]).is_err());
        assert!(parse_checkpoint(b"{\"seq\":1}").is_err());
    }
}
