//! Signing keys and public keys: generated here or brought from elsewhere (openssl, cosign), so
//! that the gate can sign with a key kept in CI and the hook can verify with the public half.
//!
//! Formats: PKCS#8 PEM private keys (`PRIVATE KEY`), encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`,
//! PBES2 with scrypt or PBKDF2 and AES-CBC: what `openssl pkcs8 -topk8` writes), SEC1
//! `EC PRIVATE KEY`, cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` / `ENCRYPTED COSIGN PRIVATE KEY`
//! (scrypt + NaCl secretbox over PKCS#8 DER), and SPKI PEM public keys (`PUBLIC KEY`).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_ASN1_SIGNING,
};
use base64::Engine as _;
use der::pem::LineEnding;
use sha2::Digest as _;
use zeroize::Zeroizing;

/// PEM label of an unencrypted PKCS#8 private key.
pub const PEM_PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM label of an encrypted PKCS#8 private key (PBES2).
pub const PEM_ENCRYPTED_PRIVATE_KEY: &str = "ENCRYPTED PRIVATE KEY";
/// PEM label of a SEC1 EC private key (`openssl ecparam -genkey`).
pub const PEM_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
/// PEM label of cosign's encrypted key format (cosign >= 2.0).
pub const PEM_SIGSTORE_PRIVATE_KEY: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// PEM label of cosign's encrypted key format (cosign < 2.0).
pub const PEM_COSIGN_PRIVATE_KEY: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// PEM label of an SPKI public key.
pub const PEM_PUBLIC_KEY: &str = "PUBLIC KEY";

/// The largest scrypt cost accepted from a key file: a hostile file must not make us allocate
/// gigabytes (N = 2^20 with r = 8 needs 1 GiB already).
const MAX_SCRYPT_LOG_N: u8 = 20;

/// Signature algorithms agentgate signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum KeyAlgorithm {
    /// ECDSA over NIST P-256 with SHA-256, DER-encoded signatures (cosign's default).
    #[serde(rename = "ecdsa-p256-sha256")]
    EcdsaP256,
    /// Ed25519 (pure, over the whole message).
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256-sha256",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    fn sigstore_scheme(self) -> sigstore_crypto::SigningScheme {
        match self {
            KeyAlgorithm::EcdsaP256 => sigstore_crypto::SigningScheme::EcdsaP256Sha256,
            KeyAlgorithm::Ed25519 => sigstore_crypto::SigningScheme::Ed25519,
        }
    }
}

/// Why a key could not be read, generated or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not PEM: {0}")]
    NotPem(String),
    #[error("unsupported PEM type `{0}` (expected a PKCS#8, SEC1, cosign or SPKI key)")]
    UnsupportedPemLabel(String),
    #[error("the private key is encrypted and no passphrase was given")]
    PassphraseRequired,
    #[error("the passphrase is wrong or the encrypted key is corrupt")]
    DecryptionFailed,
    #[error("malformed cosign key: {0}")]
    CosignMalformed(String),
    #[error("unsupported key algorithm: {0} (agentgate signs with ECDSA P-256 or Ed25519)")]
    UnsupportedAlgorithm(String),
    #[error("malformed key: {0}")]
    Malformed(String),
    #[error("key generation failed")]
    Generation,
}

/// A public key that verifies agentgate signatures, with its cosign-style hint.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki_der: Vec<u8>,
    algorithm: KeyAlgorithm,
    hint: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("hint", &self.hint)
            .finish()
    }
}

impl PublicKey {
    /// Parse a DER SubjectPublicKeyInfo; only ECDSA P-256 and Ed25519 keys are accepted.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = sigstore_types::DerPublicKey::new(der.to_vec());
        let alg = sigstore_crypto::KeyAlgorithm::from_spki(&spki)
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let algorithm = match alg {
            sigstore_crypto::KeyAlgorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
            sigstore_crypto::KeyAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
            other => return Err(KeyError::UnsupportedAlgorithm(format!("{other:?}"))),
        };
        // Reject keys the verifier would refuse later (compressed points, trailing bytes), so
        // a bad key fails when the configuration is read, not at the first push.
        sigstore_crypto::VerificationKey::from_spki_with_scheme(&spki, algorithm.sigstore_scheme())
            .and_then(|k| sigstore_crypto::validate_raw_public_key(k.scheme(), k.as_bytes()))
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(PublicKey {
            hint: key_hint(der),
            spki_der: der.to_vec(),
            algorithm,
        })
    }

    /// Parse an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem)?;
        if label != PEM_PUBLIC_KEY {
            return Err(KeyError::UnsupportedPemLabel(label));
        }
        Self::from_spki_der(&der)
    }

    pub fn to_pem(&self) -> String {
        // Encoding a DER blob we hold as PEM cannot fail except on allocation.
        der::pem::encode_string(PEM_PUBLIC_KEY, LineEnding::LF, &self.spki_der).unwrap_or_default()
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Standard base64 of SHA-256 over the DER SPKI, as cosign computes it.
    pub fn hint(&self) -> &str {
        &self.hint
    }

    /// Verify `signature` over `message` (ECDSA: DER signature over SHA-256(message)).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let spki = sigstore_types::DerPublicKey::new(self.spki_der.clone());
        let Ok(key) = sigstore_crypto::VerificationKey::from_spki_with_scheme(
            &spki,
            self.algorithm.sigstore_scheme(),
        ) else {
            return false;
        };
        key.verify(
            message,
            &sigstore_types::SignatureBytes::new(signature.to_vec()),
        )
        .is_ok()
    }
}

/// Key hint as cosign computes it: standard base64 of SHA-256(DER SubjectPublicKeyInfo).
pub fn key_hint(spki_der: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki_der))
}

/// 16 random bytes in hex, from the same generator as the keys: a label (an invocation id),
/// not a secret, so a failing generator leaves zeros rather than an error.
pub fn random_label() -> String {
    let mut b = [0u8; 16];
    let _ = SystemRandom::new().fill(&mut b);
    hex::encode(b)
}

enum Inner {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs DSSE envelopes.
pub struct SigningKey {
    inner: Inner,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generate a fresh key from the system's CSPRNG.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, KeyError> {
        let inner = match algorithm {
            KeyAlgorithm::EcdsaP256 => Inner::Ecdsa(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(|_| KeyError::Generation)?,
            ),
            KeyAlgorithm::Ed25519 => {
                Inner::Ed25519(Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?)
            }
        };
        Self::from_inner(inner)
    }

    fn from_inner(inner: Inner) -> Result<Self, KeyError> {
        let spki = match &inner {
            Inner::Ecdsa(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
            Inner::Ed25519(k) => k.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| KeyError::Malformed("cannot encode the public key".into()))?;
        let public = PublicKey::from_spki_der(&spki)?;
        Ok(SigningKey { inner, public })
    }

    /// Load an unencrypted PKCS#8 DER private key (v1 or v2).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der)
            .map_err(|e| KeyError::Malformed(format!("not PKCS#8: {e}")))?;
        let inner = match info.algorithm.oid.to_string().as_str() {
            // id-ecPublicKey: the curve is checked by aws-lc against P-256.
            "1.2.840.10045.2.1" => Inner::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|e| {
                    KeyError::UnsupportedAlgorithm(format!("EC key is not a valid P-256 key: {e}"))
                })?,
            ),
            "1.3.101.112" => Inner::Ed25519(
                Ed25519KeyPair::from_pkcs8(der)
                    .map_err(|e| KeyError::Malformed(format!("Ed25519 key: {e}")))?,
            ),
            other => return Err(KeyError::UnsupportedAlgorithm(format!("OID {other}"))),
        };
        Self::from_inner(inner)
    }

    /// Read any supported private key PEM. `passphrase` is needed only for encrypted keys.
    pub fn from_pem(pem: &str, passphrase: Option<&[u8]>) -> Result<Self, KeyError> {
        let (label, der) = decode_pem(pem)?;
        let der = Zeroizing::new(der);
        match label.as_str() {
            PEM_PRIVATE_KEY => Self::from_pkcs8_der(&der),
            PEM_EC_PRIVATE_KEY => {
                let kp = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, &der)
                    .map_err(|e| KeyError::UnsupportedAlgorithm(format!("SEC1 key: {e}")))?;
                Self::from_inner(Inner::Ecdsa(kp))
            }
            PEM_ENCRYPTED_PRIVATE_KEY => {
                let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
                let enc = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| KeyError::Malformed(format!("encrypted PKCS#8: {e}")))?;
                let doc = enc.decrypt(pass).map_err(|_| KeyError::DecryptionFailed)?;
                Self::from_pkcs8_der(doc.as_bytes())
            }
            PEM_SIGSTORE_PRIVATE_KEY | PEM_COSIGN_PRIVATE_KEY => {
                let pass = passphrase.ok_or(KeyError::PassphraseRequired)?;
                let pkcs8 = cosign_decrypt(&der, pass)?;
                Self::from_pkcs8_der(&pkcs8)
            }
            _ => Err(KeyError::UnsupportedPemLabel(label)),
        }
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.public.algorithm
    }

    /// Sign `message`: ECDSA P-256 over SHA-256(message) with a DER signature, or Ed25519.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.inner {
            Inner::Ecdsa(k) => k
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| KeyError::Generation),
            Inner::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    /// PKCS#8 v1 DER, the form every tool reads.
    fn pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = match &self.inner {
            Inner::Ecdsa(k) => k.to_pkcs8v1(),
            Inner::Ed25519(k) => k.to_pkcs8v1(),
        }
        .map_err(|_| KeyError::Malformed("cannot encode the private key".into()))?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// PEM of the private key: plain PKCS#8, or encrypted PKCS#8 (PBES2, scrypt N=2^14 r=8 p=1,
    /// AES-256-CBC; `openssl pkey -in K -passin env:VAR` reads it) when a passphrase is given.
    pub fn to_pkcs8_pem(&self, passphrase: Option<&[u8]>) -> Result<Zeroizing<String>, KeyError> {
        let der = self.pkcs8_der()?;
        let pem = match passphrase {
            None => der::pem::encode_string(PEM_PRIVATE_KEY, LineEnding::LF, &der),
            Some(pass) => {
                let mut salt = [0u8; 16];
                let mut iv = [0u8; 16];
                let rng = SystemRandom::new();
                rng.fill(&mut salt).map_err(|_| KeyError::Generation)?;
                rng.fill(&mut iv).map_err(|_| KeyError::Generation)?;
                // N = 2^14 is what `openssl pkcs8 -scrypt` writes and the most OpenSSL reads by default
                // (its scrypt memory limit is 32 MiB).
                let scrypt = scrypt::Params::new(14, 8, 1, 32).map_err(|_| KeyError::Generation)?;
                let params = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(scrypt, &salt, &iv)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?;
                let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
                    .map_err(|e| KeyError::Malformed(e.to_string()))?;
                let enc = info
                    .encrypt_with_params(params, pass)
                    .map_err(|e| KeyError::Malformed(e.to_string()))?;
                der::pem::encode_string(PEM_ENCRYPTED_PRIVATE_KEY, LineEnding::LF, enc.as_bytes())
            }
        }
        .map_err(|e| KeyError::Malformed(e.to_string()))?;
        Ok(Zeroizing::new(pem))
    }

    /// cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` PEM (scrypt N=2^15 r=8 p=1, NaCl secretbox over
    /// PKCS#8 DER), so keys made here also work with cosign.
    pub fn to_cosign_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<String>, KeyError> {
        let der = self.pkcs8_der()?;
        let rng = SystemRandom::new();
        let mut salt = [0u8; 32];
        let mut nonce = [0u8; 24];
        rng.fill(&mut salt).map_err(|_| KeyError::Generation)?;
        rng.fill(&mut nonce).map_err(|_| KeyError::Generation)?;
        let body = cosign_encrypt(&der, passphrase, &salt, &nonce, 15)?;
        der::pem::encode_string(PEM_SIGSTORE_PRIVATE_KEY, LineEnding::LF, body.as_bytes())
            .map(Zeroizing::new)
            .map_err(|e| KeyError::Malformed(e.to_string()))
    }
}

fn decode_pem(pem: &str) -> Result<(String, Vec<u8>), KeyError> {
    let (label, der) =
        der::pem::decode_vec(pem.trim().as_bytes()).map_err(|e| KeyError::NotPem(e.to_string()))?;
    Ok((label.to_string(), der))
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CosignKeyFile {
    kdf: CosignKdf,
    cipher: CosignCipher,
    ciphertext: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CosignKdf {
    name: String,
    params: CosignScryptParams,
    salt: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct CosignScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CosignCipher {
    name: String,
    nonce: String,
}

fn cosign_key(
    passphrase: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| KeyError::CosignMalformed(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, salt, &params, key.as_mut())
        .map_err(|e| KeyError::CosignMalformed(format!("scrypt: {e}")))?;
    Ok(key)
}

/// The JSON body of a cosign key: secretbox(scrypt(passphrase, salt), nonce, plaintext).
fn cosign_encrypt(
    plaintext: &[u8],
    passphrase: &[u8],
    salt: &[u8],
    nonce: &[u8; 24],
    log_n: u8,
) -> Result<String, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let key = cosign_key(passphrase, salt, log_n, 8, 1)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&*key));
    let ct = cipher
        .encrypt(crypto_secretbox::Nonce::from_slice(nonce), plaintext)
        .map_err(|_| KeyError::Generation)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let file = CosignKeyFile {
        kdf: CosignKdf {
            name: "scrypt".into(),
            params: CosignScryptParams {
                N: 1u64 << log_n,
                r: 8,
                p: 1,
            },
            salt: b64.encode(salt),
        },
        cipher: CosignCipher {
            name: "nacl/secretbox".into(),
            nonce: b64.encode(nonce),
        },
        ciphertext: b64.encode(ct),
    };
    serde_json::to_string(&file).map_err(|e| KeyError::CosignMalformed(e.to_string()))
}

fn cosign_decrypt(body: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let bad = |m: &str| KeyError::CosignMalformed(m.to_string());
    let file: CosignKeyFile =
        serde_json::from_slice(body).map_err(|e| KeyError::CosignMalformed(e.to_string()))?;
    if file.kdf.name != "scrypt" {
        return Err(bad(&format!("unsupported kdf `{}`", file.kdf.name)));
    }
    if file.cipher.name != "nacl/secretbox" {
        return Err(bad(&format!("unsupported cipher `{}`", file.cipher.name)));
    }
    let n = file.kdf.params.N;
    if !n.is_power_of_two() || n < 2 {
        return Err(bad("scrypt N is not a power of two"));
    }
    let log_n = n.trailing_zeros() as u8;
    if log_n > MAX_SCRYPT_LOG_N || file.kdf.params.r > 32 || file.kdf.params.p > 16 {
        return Err(bad("scrypt parameters are too expensive"));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let salt = b64
        .decode(&file.kdf.salt)
        .map_err(|_| bad("salt is not base64"))?;
    let nonce = b64
        .decode(&file.cipher.nonce)
        .map_err(|_| bad("nonce is not base64"))?;
    if nonce.len() != 24 {
        return Err(bad("nonce is not 24 bytes"));
    }
    let ct = b64
        .decode(&file.ciphertext)
        .map_err(|_| bad("ciphertext is not base64"))?;
    let key = cosign_key(
        passphrase,
        &salt,
        log_n,
        file.kdf.params.r,
        file.kdf.params.p,
    )?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&*key));
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(&nonce), ct.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_plain_and_encrypted() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let k = SigningKey::generate(alg).unwrap();
            let sig = k.sign(b"hello").unwrap();
            assert!(k.public_key().verify(b"hello", &sig));
            assert!(!k.public_key().verify(b"hellO", &sig));

            let plain = k.to_pkcs8_pem(None).unwrap();
            assert!(plain.starts_with("-----BEGIN PRIVATE KEY-----"));
            let k2 = SigningKey::from_pem(&plain, None).unwrap();
            assert_eq!(k2.public_key(), k.public_key());

            let enc = k.to_pkcs8_pem(Some(b"s3cret")).unwrap();
            assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
            assert!(matches!(
                SigningKey::from_pem(&enc, None),
                Err(KeyError::PassphraseRequired)
            ));
            assert!(matches!(
                SigningKey::from_pem(&enc, Some(b"wrong")),
                Err(KeyError::DecryptionFailed)
            ));
            let k3 = SigningKey::from_pem(&enc, Some(b"s3cret")).unwrap();
            assert_eq!(k3.public_key(), k.public_key());

            let pubpem = k.public_key().to_pem();
            assert_eq!(PublicKey::from_pem(&pubpem).unwrap(), *k.public_key());
        }
    }

    #[test]
    fn cosign_format_roundtrip_and_legacy_label() {
        let k = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let pem = k.to_cosign_pem(b"pw").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
        assert_eq!(
            SigningKey::from_pem(&pem, Some(b"pw"))
                .unwrap()
                .public_key(),
            k.public_key()
        );
        assert!(matches!(
            SigningKey::from_pem(&pem, Some(b"px")),
            Err(KeyError::DecryptionFailed)
        ));
        let legacy = pem.replace("SIGSTORE", "COSIGN");
        assert_eq!(
            SigningKey::from_pem(&legacy, Some(b"pw"))
                .unwrap()
                .public_key(),
            k.public_key()
        );
    }

    #[test]
    fn cosign_fixed_vector() {
        // Fixed salt and nonce so the body is reproducible: scrypt(N=2^15) + secretbox.
        let plaintext = b"pkcs8-bytes";
        let body = cosign_encrypt(plaintext, b"", &[7u8; 32], &[9u8; 24], 15).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["kdf"]["params"]["N"], 32768);
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            cosign_decrypt(body.as_bytes(), b"").unwrap().as_slice(),
            plaintext
        );
    }

    #[test]
    fn cosign_rejects_hostile_parameters() {
        let body = r#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":"AA=="},
            "cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AA=="}"#;
        assert!(matches!(
            cosign_decrypt(body.as_bytes(), b""),
            Err(KeyError::CosignMalformed(_))
        ));
        let body = body.replace("1073741824", "1000");
        assert!(matches!(
            cosign_decrypt(body.as_bytes(), b""),
            Err(KeyError::CosignMalformed(_))
        ));
    }

    #[test]
    fn hint_is_base64_sha256_of_spki() {
        let k = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let expect = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(k.public_key().spki_der()));
        assert_eq!(k.public_key().hint(), expect);
        assert_eq!(k.public_key().hint().len(), 44);
    }

    #[test]
    fn hint_matches_sigstore_conformance_managed_key_vector() {
        // sigstore-conformance bundle-verify/managed-key-happy-path: key.pub and its bundle hint.
        let pem = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExRRST79+PsrRBnGAI4cMu6Omz2Jh
fwlMW+gIutNKVRaMyS4rQKvgngc5p8UbLj55pVHhIoAxi/SRgURZI0J3Xw==
-----END PUBLIC KEY-----
";
        let k = PublicKey::from_pem(pem).unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::EcdsaP256);
        assert_eq!(k.hint(), "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk=");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            PublicKey::from_pem("nope"),
            Err(KeyError::NotPem(_))
        ));
        let k = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let priv_pem = k.to_pkcs8_pem(None).unwrap();
        assert!(matches!(
            PublicKey::from_pem(&priv_pem),
            Err(KeyError::UnsupportedPemLabel(_))
        ));
        assert!(matches!(
            SigningKey::from_pem(&k.public_key().to_pem(), None),
            Err(KeyError::UnsupportedPemLabel(_))
        ));
    }
}
