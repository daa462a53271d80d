//! General Sigstore bundle verification (keyless Fulcio certificates and managed keys), offline,
//! on top of the sigstore-rust crates. This is what `agentgate verify --certificate-identity`
//! and the sigstore-conformance client run; the steps the crates leave to the caller (identity
//! regexes, never letting the bundle's unsigned media type relax what policy requires, and the
//! bundle shapes the crates accept too readily) are added here as numbered steps.

use std::fmt;
use std::io::Read;

use sha2::Digest as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sigstore_types::bundle::VerificationMaterialContent;
use sigstore_types::{Bundle, DerPublicKey, Sha256Hash, SignatureContent};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, Verifier};

pub use sigstore_trust_root::TrustedRoot;

use crate::dsse::PAYLOAD_TYPE_INTOTO;
use crate::reason::AttestationCode;

/// The Sigstore public-good production trusted root, embedded at build time (no network).
pub fn public_good_root() -> Result<TrustedRoot, SigstoreError> {
    TrustedRoot::from_json(sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT)
        .map_err(|e| SigstoreError::TrustedRoot(e.to_string()))
}

/// The Sigstore public-good *staging* trusted root, embedded at build time. Only for tests
/// against staging: staging certificates are issued to anyone.
pub fn staging_root() -> Result<TrustedRoot, SigstoreError> {
    TrustedRoot::from_json(sigstore_trust_root::SIGSTORE_STAGING_TRUSTED_ROOT)
        .map_err(|e| SigstoreError::TrustedRoot(e.to_string()))
}

/// A custom trusted root (`trusted_root.json`, protobuf-specs `TrustedRoot` in JSON).
pub fn trusted_root_from_file(path: &Path) -> Result<TrustedRoot, SigstoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| SigstoreError::Read {
        what: "trusted root",
        path: path.to_path_buf(),
        source,
    })?;
    TrustedRoot::from_json(&text)
        .map_err(|e| SigstoreError::TrustedRoot(format!("{}: {e}", path.display())))
}

/// What a trusted root holds, for reports (`doctor`, `trust-root update`).
#[derive(Debug, Clone)]
pub struct RootSummary {
    pub certificate_authorities: usize,
    pub transparency_logs: usize,
    pub timestamp_authorities: usize,
    /// The latest start of any authority's or log key's validity: how recent its content is.
    pub newest_start: Option<DateTime<Utc>>,
}

/// Summarise a trusted root.
pub fn root_summary(root: &TrustedRoot) -> RootSummary {
    let starts = root
        .certificate_authorities
        .iter()
        .filter_map(|c| c.valid_for.as_ref())
        .chain(
            root.tlogs
                .iter()
                .filter_map(|l| l.public_key.valid_for.as_ref()),
        )
        .chain(
            root.ctlogs
                .iter()
                .filter_map(|l| l.public_key.valid_for.as_ref()),
        )
        .chain(
            root.timestamp_authorities
                .iter()
                .filter_map(|t| t.valid_for.as_ref()),
        )
        .filter_map(|r| to_chrono(r.start));
    RootSummary {
        certificate_authorities: root.certificate_authorities.len(),
        transparency_logs: root.tlogs.len(),
        timestamp_authorities: root.timestamp_authorities.len(),
        newest_start: starts.max(),
    }
}

/// How a certificate's subject (SAN: URI or email) must look.
#[derive(Debug, Clone)]
pub enum IdentityMatch {
    /// Byte-for-byte equality.
    Exact(String),
    /// A regular expression that must match the whole identity.
    Regex(AnchoredRegex),
}

/// A regex that can only match a whole string: built from a pattern that must compile on its
/// own (so it cannot close the anchoring group early, as `a)|(?:b` would) and then wrapped as
/// `\A(?:pattern)\z`. The field is private: no unanchored regex can be put in a policy.
#[derive(Debug, Clone)]
pub struct AnchoredRegex {
    pattern: String,
    anchored: regex::Regex,
}

impl AnchoredRegex {
    /// Compile `pattern` to match whole identities only.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::Regex::new(pattern)?;
        let anchored = regex::Regex::new(&format!(r"\A(?:{pattern})\z"))?;
        Ok(Self {
            pattern: pattern.to_string(),
            anchored,
        })
    }

    /// The pattern as given, before anchoring.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `s` matches.
    pub fn is_match(&self, s: &str) -> bool {
        self.anchored.is_match(s)
    }
}

impl IdentityMatch {
    /// An identity regex, anchored at both ends, so `acme/app` cannot match
    /// `evil.example/acme/app-fork`.
    pub fn regex(pattern: &str) -> Result<Self, regex::Error> {
        AnchoredRegex::new(pattern).map(Self::Regex)
    }

    /// Whether `identity` satisfies this matcher.
    pub fn matches(&self, identity: &str) -> bool {
        match self {
            Self::Exact(expected) => expected == identity,
            Self::Regex(re) => re.is_match(identity),
        }
    }
}

impl fmt::Display for IdentityMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(s) => write!(f, "{s:?}"),
            Self::Regex(re) => write!(f, "regex {:?} (whole identity)", re.pattern()),
        }
    }
}

/// A public key for managed-key bundles (SPKI: ECDSA P-256/P-384, Ed25519, RSA): any key
/// Sigstore verifies, where [`crate::keys::PublicKey`] is one agentgate signs with.
#[derive(Debug, Clone)]
pub struct ManagedKey {
    der: DerPublicKey,
}

impl ManagedKey {
    /// Parse an SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as cosign writes `cosign.pub`.
    pub fn from_pem(pem: &str) -> Result<Self, SigstoreError> {
        let der =
            DerPublicKey::from_pem(pem).map_err(|e| SigstoreError::PublicKey(e.to_string()))?;
        sigstore_crypto::KeyAlgorithm::from_spki(&der)
            .map_err(|e| SigstoreError::PublicKey(e.to_string()))?;
        Ok(Self { der })
    }

    /// Read and parse an SPKI PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, SigstoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| SigstoreError::Read {
            what: "public key",
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&text)
    }

    /// The key hint as cosign computes it: standard base64 of SHA-256 over the DER SPKI.
    pub fn hint(&self) -> String {
        crate::keys::key_hint(self.der.as_bytes())
    }
}

/// Who must have signed.
#[derive(Debug, Clone)]
pub enum SignerPolicy {
    /// A managed key known out of band; the bundle carries only a hint.
    Key(ManagedKey),
    /// A keyless signer: a Fulcio certificate for this OIDC issuer and subject.
    Identity {
        /// The OIDC issuer, compared exactly.
        issuer: String,
        /// The certificate subject (SAN).
        identity: IdentityMatch,
    },
}

/// What was signed.
#[derive(Debug, Clone)]
pub enum ArtifactInput {
    /// A file, hashed in a streaming pass (constant memory).
    Path(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// Only the SHA-256 digest of the artifact is known.
    Sha256([u8; 32]),
    /// A file whose SHA-256 is already known (hashed once by the caller): the digest is used,
    /// and the file read again only for a signature over the whole message (Ed25519).
    File {
        /// The artifact.
        path: PathBuf,
        /// Its SHA-256.
        sha256: [u8; 32],
    },
}

impl ArtifactInput {
    /// Parse the conformance/CLI form: `sha256:<64 hex>` is a digest, anything else a path.
    pub fn from_cli_arg(arg: &str) -> Result<Self, SigstoreError> {
        match arg.strip_prefix("sha256:") {
            Some(hex_digest) => {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(hex_digest, &mut digest)
                    .map_err(|_| SigstoreError::ArtifactDigest(arg.to_string()))?;
                Ok(Self::Sha256(digest))
            }
            None => Ok(Self::Path(PathBuf::from(arg))),
        }
    }
}

/// A verified bundle: only [`verify`] builds one, and only when every step passed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Verified {
    /// The certificate identity (SAN) for keyless bundles, or the key hint for managed keys.
    pub signer: String,
    /// The certificate's OIDC issuer (keyless only).
    pub issuer: Option<String>,
    /// The bundle's media type (informational: it is not signed).
    pub media_type: String,
    /// The DSSE payload type and payload bytes, when the bundle holds a DSSE envelope.
    pub payload: Option<(String, Vec<u8>)>,
    /// The earliest Rekor v1 integrated time authenticated by its SET, if any.
    pub integrated_time: Option<DateTime<Utc>>,
    /// Every authenticated signing time (RFC 3161 timestamps and SET-backed integrated times).
    pub signed_times: Vec<DateTime<Utc>>,
    /// What was checked, for a report of the checks that ran.
    pub evidence: Evidence,
}

/// What [`verify`] checked to accept a bundle.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Evidence {
    /// A managed key signed (no certificate, no SCT).
    pub key_based: bool,
    /// The transparency log entries, each verified (inclusion proof, checkpoint, and SET).
    pub log_entries: Vec<LogEntryEvidence>,
    /// RFC 3161 timestamps that a trusted TSA authenticated.
    pub timestamps_verified: usize,
    /// RFC 3161 timestamps no trusted TSA authenticated: set aside, as sigstore-python and
    /// sigstore-go do, and not counted as signing times. Each with why.
    pub timestamps_set_aside: Vec<String>,
    /// The identity came from an otherName SAN (Fulcio's username identities).
    pub identity_from_other_name: bool,
}

/// One verified transparency log entry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LogEntryEvidence {
    /// `hashedrekord 0.0.1`, `dsse 0.0.1`, ...
    pub kind: String,
    /// Its index in the log.
    pub log_index: u64,
    /// Rekor v2 (checkpoint only, no integrated time) rather than v1.
    pub rekor_v2: bool,
    /// The integrated time its SET authenticates (Rekor v1).
    pub integrated_time: Option<DateTime<Utc>>,
}

/// Why a bundle did not verify. Each verification step fails into its own variant, and each
/// variant has a stable code ([`SigstoreError::code`]) for logs and tests.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigstoreError {
    /// An input file (bundle, key, trusted root, artifact) could not be read.
    #[error("cannot read {what} {}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The artifact argument looked like a digest but is not `sha256:<64 hex>`.
    #[error("invalid artifact digest {0:?}: expected sha256:<64 hex digits>")]
    ArtifactDigest(String),
    /// The policy's public key is not an SPKI PEM of a supported algorithm.
    #[error("invalid public key: {0}")]
    PublicKey(String),
    /// The trusted root does not parse or cannot be used.
    #[error("invalid trusted root: {0}")]
    TrustedRoot(String),
    /// Step 1: not JSON, unknown media type, malformed field, not exactly one DSSE signature.
    #[error("bundle is not valid JSON or not a Sigstore bundle v0.1-v0.3: {0}")]
    BundleParse(String),
    /// Step 2: a key bundle for an identity policy, or a certificate bundle for a key policy.
    #[error("bundle verification material does not fit the policy: {0}")]
    MaterialKind(String),
    /// Step 3: empty chain, unparsable certificate, or a root shipped inside the bundle.
    #[error("bundle certificate chain is malformed: {0}")]
    CertificateChainShape(String),
    /// Step 4: no log entry, or an entry without an inclusion proof.
    #[error("bundle has no transparency log inclusion proof: {0}")]
    MissingInclusionProof(String),
    /// Step 5: a DSSE payload that is not an in-toto statement.
    #[error("DSSE envelope cannot be checked: {0}")]
    DsseShape(String),
    /// Step 6: certificate chain, validity at the signing time, EKU or SCT.
    #[error("signing certificate rejected")]
    Certificate(#[source] sigstore_verify::Error),
    /// Step 6: inclusion proof, checkpoint, SET, integrated time, entry/bundle consistency.
    #[error("transparency log evidence rejected")]
    TransparencyLog(#[source] sigstore_verify::Error),
    /// Step 6: an RFC 3161 timestamp, or no authenticated signing time at all.
    #[error("timestamp rejected")]
    Timestamp(#[source] sigstore_verify::Error),
    /// Step 6: the signature over the artifact or the DSSE PAE.
    #[error("signature does not verify")]
    Signature(#[source] sigstore_verify::Error),
    /// Step 6: the message digest or no in-toto subject matches the artifact.
    #[error("artifact does not match the bundle")]
    ArtifactMismatch(#[source] sigstore_verify::Error),
    /// Step 6: anything else sigstore-verify refuses (structure, unsupported content).
    #[error("bundle rejected")]
    Bundle(#[source] sigstore_verify::Error),
    /// Step 7: sigstore-verify returned without having verified a required part.
    #[error("verification evidence incomplete: {0}")]
    Incomplete(&'static str),
    /// Step 8: a log entry whose log is not in the trusted root.
    #[error("log entry {index} names no transparency log of the trusted root ({log_id})")]
    UnknownLog { index: usize, log_id: String },
    /// Step 8: the log's key was outside its validity window at a signing time.
    #[error("log entry {index}: the log's key was not valid at the signing time {time}")]
    LogOutsideValidity { index: usize, time: String },
    /// Step 9.
    #[error("certificate issuer {actual:?} is not the required {expected:?}")]
    IssuerMismatch {
        expected: String,
        actual: Option<String>,
    },
    /// Step 10.
    #[error("certificate identity {actual:?} does not match the required {expected}")]
    IdentityMismatch {
        expected: String,
        actual: Option<String>,
    },
}

impl SigstoreError {
    /// A stable kebab-case code for this refusal.
    pub fn code(&self) -> AttestationCode {
        match self {
            Self::Read { .. } => AttestationCode::SigstoreRead,
            Self::ArtifactDigest(_) => AttestationCode::SigstoreArtifactDigest,
            Self::PublicKey(_) => AttestationCode::SigstorePublicKey,
            Self::TrustedRoot(_) => AttestationCode::SigstoreTrustedRoot,
            Self::BundleParse(_) => AttestationCode::SigstoreBundleParse,
            Self::MaterialKind(_) => AttestationCode::SigstoreMaterialKind,
            Self::CertificateChainShape(_) => AttestationCode::SigstoreChainShape,
            Self::MissingInclusionProof(_) => AttestationCode::SigstoreNoInclusionProof,
            Self::DsseShape(_) => AttestationCode::SigstoreDsseShape,
            Self::Certificate(_) => AttestationCode::SigstoreCertificate,
            Self::TransparencyLog(_) => AttestationCode::SigstoreTlog,
            Self::Timestamp(_) => AttestationCode::SigstoreTimestamp,
            Self::Signature(_) => AttestationCode::SigstoreSignature,
            Self::ArtifactMismatch(_) => AttestationCode::SigstoreArtifactMismatch,
            Self::Bundle(_) => AttestationCode::SigstoreBundle,
            Self::Incomplete(_) => AttestationCode::SigstoreIncomplete,
            Self::UnknownLog { .. } => AttestationCode::SigstoreUnknownLog,
            Self::LogOutsideValidity { .. } => AttestationCode::SigstoreLogValidity,
            Self::IssuerMismatch { .. } => AttestationCode::SigstoreIssuerMismatch,
            Self::IdentityMismatch { .. } => AttestationCode::SigstoreIdentityMismatch,
        }
    }

    fn from_crate(e: sigstore_verify::Error) -> Self {
        use sigstore_verify::Error as E;
        match e {
            E::Certificate(_) | E::TrustedCertificate(_) => Self::Certificate(e),
            E::TransparencyLog(_) => Self::TransparencyLog(e),
            E::Timestamp(_) => Self::Timestamp(e),
            E::SignatureInvalid(_) => Self::Signature(e),
            E::ArtifactMismatch(_) => Self::ArtifactMismatch(e),
            E::InvalidTrustRoot(_) | E::TrustRoot(_) => Self::TrustedRoot(e.to_string()),
            _ => Self::Bundle(e),
        }
    }
}

/// Verify `bundle_json` for `artifact` against `policy`, offline, with `trusted_root`.
///
/// Steps (each fails into its own [`SigstoreError`] variant):
/// 1. parse the bundle: JSON, a known media type (v0.1-v0.3), one signature;
/// 2. the verification material is the kind the policy needs (a certificate for an identity
///    policy, a public-key hint for a key policy);
/// 3. a v0.1/v0.2 certificate chain is non-empty, parses, and carries no self-issued (root)
///    certificate: roots come only from the trusted root;
/// 4. every transparency log entry carries an inclusion proof, and there is at least one entry,
///    whatever the media type says (v0.1 would otherwise pass on a SET alone);
/// 5. a DSSE envelope holds an in-toto statement (the artifact is bound through its subjects);
/// 6. sigstore-verify: signing times (RFC 3161 timestamps, SETs), certificate chain to Fulcio at
///    each time, SCT, inclusion proofs and checkpoints, SETs, integrated time within the
///    certificate's validity, signature over the artifact or DSSE PAE, artifact binding
///    (message digest or in-toto subject), log entry consistency with the bundle;
/// 7. the crate reports the certificate, SCT and log as verified (no silently skipped step);
/// 8. every log entry without a SET (Rekor v2, whose checkpoint key the crate looks up by hint
///    with no time) names a log of the trusted root whose key was valid at every verified
///    signing time;
/// 9. the certificate's OIDC issuer equals the policy's;
/// 10. the certificate's identity matches the policy's (exact, or anchored regex); an identity in
///     an otherName SAN (Fulcio's username identities) counts, as in sigstore-go and
///     sigstore-python.
///
/// Before step 6, RFC 3161 timestamps that no TSA of the trusted root authenticates are set
/// aside (step 5b): they are not evidence of anything, and sigstore-python and sigstore-go verify
/// the bundle on the ones that remain (sigstore-go issue #43); sigstore-verify would refuse the
/// whole bundle. A bundle with timestamps under a root without TSAs is left to the crate, which
/// refuses it.
pub fn verify(
    bundle_json: &[u8],
    artifact: &ArtifactInput,
    policy: &SignerPolicy,
    trusted_root: &TrustedRoot,
) -> Result<Verified, SigstoreError> {
    // Step 1.
    let text = std::str::from_utf8(bundle_json)
        .map_err(|e| SigstoreError::BundleParse(format!("not UTF-8: {e}")))?;
    let mut bundle =
        Bundle::from_json(text).map_err(|e| SigstoreError::BundleParse(e.to_string()))?;

    // Step 2.
    check_material_kind(&bundle, policy)?;
    // Step 3.
    check_certificate_chain_shape(&bundle)?;
    // Step 4.
    check_inclusion_proofs(&bundle)?;
    // Step 5.
    check_dsse_shape(&bundle)?;
    // Step 5b.
    let (timestamps_verified, timestamps_set_aside) =
        set_aside_unverified_timestamps(&mut bundle, trusted_root);

    // Step 6.
    let verifier = Verifier::new(trusted_root).map_err(SigstoreError::from_crate)?;
    let result = match policy {
        SignerPolicy::Key(key) => {
            let crate_policy = PublicKeyVerificationPolicy::new(key.der.clone());
            run_crate(
                &verifier,
                &bundle,
                artifact,
                &crate_policy,
                KeyKind::of(sigstore_crypto::KeyAlgorithm::from_spki(&key.der).ok()),
            )?
        }
        SignerPolicy::Identity { .. } => {
            // Identity and issuer are matched in steps 9-10 (the crate has no regex matcher);
            // everything else stays at the crate's strictest setting.
            let crate_policy = VerificationPolicy::any_identity();
            let key_kind = KeyKind::of(
                bundle
                    .signing_certificate()
                    .and_then(|c| sigstore_crypto::parse_certificate_info(c).ok())
                    .map(|info| info.key_algorithm),
            );
            run_crate(&verifier, &bundle, artifact, &crate_policy, key_kind)?
        }
    };

    // Step 7.
    if !result.tlog_verified() {
        return Err(SigstoreError::Incomplete(
            "transparency log was not verified",
        ));
    }
    if matches!(policy, SignerPolicy::Identity { .. })
        && !(result.certificate_verified() && result.sct_verified())
    {
        return Err(SigstoreError::Incomplete(
            "certificate chain or SCT was not verified",
        ));
    }
    // Step 8.
    check_log_validity(&bundle, trusted_root, result.verified_timestamps())?;

    let mut other_name = None;
    let (signer, issuer) = match policy {
        SignerPolicy::Key(key) => (key.hint(), None),
        SignerPolicy::Identity {
            issuer: want_issuer,
            identity: want_identity,
        } => {
            // Step 9.
            let issuer = result.issuer().map(str::to_string);
            if issuer.as_deref() != Some(want_issuer.as_str()) {
                return Err(SigstoreError::IssuerMismatch {
                    expected: want_issuer.clone(),
                    actual: issuer,
                });
            }
            // Step 10.
            let identity = match result.identity() {
                Some(san) => Some(san.as_str().to_string()),
                None => {
                    other_name = other_name_identity(&bundle);
                    other_name.clone()
                }
            };
            match &identity {
                Some(id) if want_identity.matches(id) => {}
                _ => {
                    return Err(SigstoreError::IdentityMismatch {
                        expected: want_identity.to_string(),
                        actual: identity,
                    })
                }
            }
            (identity.unwrap_or_default(), issuer)
        }
    };

    let payload = match &bundle.content {
        SignatureContent::DsseEnvelope(env) => {
            Some((env.payload_type.clone(), env.payload.as_bytes().to_vec()))
        }
        _ => None,
    };
    let log_entries = bundle
        .verification_material
        .tlog_entries
        .iter()
        .map(|e| LogEntryEvidence {
            kind: format!("{} {}", e.kind_version.kind(), e.kind_version.version()),
            log_index: e.log_index.get(),
            rekor_v2: e.kind_version == sigstore_types::KindVersion::HashedRekordV002
                || e.integrated_time.is_none(),
            integrated_time: e
                .inclusion_promise
                .as_ref()
                .and(e.integrated_time)
                .and_then(to_chrono),
        })
        .collect();
    let evidence = Evidence {
        key_based: matches!(policy, SignerPolicy::Key(_)),
        log_entries,
        timestamps_verified,
        timestamps_set_aside,
        identity_from_other_name: other_name.is_some(),
    };
    Ok(Verified {
        evidence,
        signer,
        issuer,
        media_type: bundle.media_type().as_str().to_string(),
        payload,
        integrated_time: result.integrated_time().and_then(to_chrono),
        signed_times: result
            .verified_timestamps()
            .iter()
            .filter_map(|t| to_chrono(*t))
            .collect(),
    })
}

fn to_chrono(t: jiff::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond().max(0) as u32)
}

/// Whether the signing key can verify a prehashed message: Ed25519 signs the whole message,
/// so a file must then be read into memory rather than streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Prehashable,
    WholeMessage,
}

impl KeyKind {
    fn of(algorithm: Option<sigstore_crypto::KeyAlgorithm>) -> Self {
        match algorithm {
            Some(sigstore_crypto::KeyAlgorithm::Ed25519) => Self::WholeMessage,
            _ => Self::Prehashable,
        }
    }
}

/// Step 6: hand the artifact to sigstore-verify in the form it needs. Files are streamed, except
/// for Ed25519 message signatures, which sign the whole message and cannot be prehashed.
fn run_crate(
    verifier: &Verifier,
    bundle: &Bundle,
    artifact: &ArtifactInput,
    policy: &(impl sigstore_verify::Policy + ?Sized),
    key_kind: KeyKind,
) -> Result<sigstore_verify::VerificationResult, SigstoreError> {
    let needs_whole_message = key_kind == KeyKind::WholeMessage
        && matches!(bundle.content, SignatureContent::MessageSignature(_));
    let result = match artifact {
        ArtifactInput::Sha256(digest) => verifier.verify(Sha256Hash::new(*digest), bundle, policy),
        ArtifactInput::File { path, sha256 } if needs_whole_message => {
            let bytes = std::fs::read(path).map_err(|source| SigstoreError::Read {
                what: "artifact",
                path: path.clone(),
                source,
            })?;
            // The bytes read now must be the ones the caller hashed.
            if sha2::Sha256::digest(&bytes).as_slice() != sha256.as_slice() {
                return Err(SigstoreError::Read {
                    what: "artifact (it changed while being verified)",
                    path: path.clone(),
                    source: std::io::Error::other("the artifact changed while being verified"),
                });
            }
            verifier.verify(bytes.as_slice(), bundle, policy)
        }
        ArtifactInput::File { sha256, .. } => {
            verifier.verify(Sha256Hash::new(*sha256), bundle, policy)
        }
        ArtifactInput::Bytes(bytes) => verifier.verify(bytes.as_slice(), bundle, policy),
        ArtifactInput::Path(path) => {
            let read_err = |source| SigstoreError::Read {
                what: "artifact",
                path: path.clone(),
                source,
            };
            let mut file = std::fs::File::open(path).map_err(read_err)?;
            if needs_whole_message {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(read_err)?;
                verifier.verify(bytes.as_slice(), bundle, policy)
            } else {
                // Unbuffered: the crate reads in large chunks, a BufReader would only copy.
                verifier.verify_reader(file, bundle, policy)
            }
        }
    };
    result.map_err(SigstoreError::from_crate)
}

/// Step 2. The key hint is unsigned, a lookup aid only: it neither selects nor excludes a key.
fn check_material_kind(bundle: &Bundle, policy: &SignerPolicy) -> Result<(), SigstoreError> {
    match (&bundle.verification_material.content, policy) {
        (VerificationMaterialContent::PublicKey(_), SignerPolicy::Key(_)) => Ok(()),
        (VerificationMaterialContent::PublicKey(_), SignerPolicy::Identity { .. }) => {
            Err(SigstoreError::MaterialKind(
                "bundle is signed with a managed key, not a certificate".into(),
            ))
        }
        (_, SignerPolicy::Key(_)) => Err(SigstoreError::MaterialKind(
            "bundle carries a certificate but a public key was given".into(),
        )),
        (_, SignerPolicy::Identity { .. }) => Ok(()),
    }
}

/// Step 3. Roots of trust come only from the trusted root: a self-issued certificate shipped in
/// the bundle's chain is refused (sigstore-verify would build a path through it and accept).
fn check_certificate_chain_shape(bundle: &Bundle) -> Result<(), SigstoreError> {
    use x509_cert::der::Decode as _;
    if let VerificationMaterialContent::X509CertificateChain { certificates } =
        &bundle.verification_material.content
    {
        if certificates.is_empty() {
            return Err(SigstoreError::CertificateChainShape(
                "empty certificate chain".into(),
            ));
        }
        for (i, cert) in certificates.iter().enumerate() {
            let parsed =
                x509_cert::Certificate::from_der(cert.raw_bytes.as_bytes()).map_err(|e| {
                    SigstoreError::CertificateChainShape(format!(
                        "certificate {i} does not parse: {e}"
                    ))
                })?;
            let tbs = &parsed.tbs_certificate;
            if tbs.subject == tbs.issuer {
                return Err(SigstoreError::CertificateChainShape(format!(
                    "certificate {i} ({}) is self-issued: a root must come from the trusted root, not the bundle",
                    tbs.subject
                )));
            }
        }
    }
    Ok(())
}

/// Step 4.
fn check_inclusion_proofs(bundle: &Bundle) -> Result<(), SigstoreError> {
    let entries = &bundle.verification_material.tlog_entries;
    if entries.is_empty() {
        return Err(SigstoreError::MissingInclusionProof(
            "no transparency log entry".into(),
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        if entry.inclusion_proof.is_none() {
            return Err(SigstoreError::MissingInclusionProof(format!(
                "log entry {i} (index {}) has no inclusion proof",
                entry.log_index.get()
            )));
        }
    }
    Ok(())
}

/// Step 8. A Rekor v1 entry with a SET was checked by the crate against the log key valid at
/// its integrated time. Any other entry (Rekor v2 has no integrated time) had only its
/// checkpoint checked, with any log key that had *started* by now: here its log must be in the
/// trusted root and valid at each authenticated signing time.
fn check_log_validity(
    bundle: &Bundle,
    trusted_root: &TrustedRoot,
    signed_times: &[jiff::Timestamp],
) -> Result<(), SigstoreError> {
    for (index, entry) in bundle.verification_material.tlog_entries.iter().enumerate() {
        let has_set = entry.inclusion_promise.is_some()
            && entry.integrated_time.is_some()
            && entry.kind_version != sigstore_types::KindVersion::HashedRekordV002;
        if has_set {
            continue;
        }
        let log = trusted_root
            .tlogs
            .iter()
            .find(|log| log.log_id.key_id.as_bytes() == entry.log_id.key_id.as_bytes())
            .ok_or_else(|| SigstoreError::UnknownLog {
                index,
                log_id: entry.log_id.key_id.to_string(),
            })?;
        if let Some(window) = log.public_key.valid_for {
            if let Some(time) = signed_times.iter().find(|t| !window.contains(**t)) {
                return Err(SigstoreError::LogOutsideValidity {
                    index,
                    time: time.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Step 5b. Each RFC 3161 timestamp is tried against each TSA of the trusted root, as
/// sigstore-verify would (an authority authenticates a token only inside its own validity
/// window); one no authority authenticates is removed from the bundle before the crate sees it,
/// and reported. With no usable TSA in the root nothing is removed: the crate then refuses a
/// bundle that carries timestamps, as sigstore-python does. Returns how many verified and why
/// each other one was set aside.
fn set_aside_unverified_timestamps(
    bundle: &mut Bundle,
    trusted_root: &TrustedRoot,
) -> (usize, Vec<String>) {
    let authorities = trusted_root.tsa_authorities();
    let signature = match &bundle.content {
        SignatureContent::MessageSignature(m) => Some(m.signature.clone()),
        SignatureContent::DsseEnvelope(e) => Some(e.signature.sig.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    let timestamps = &mut bundle
        .verification_material
        .timestamp_verification_data
        .rfc3161_timestamps;
    let (Some(signature), false) = (signature, authorities.is_empty()) else {
        return (0, Vec::new());
    };
    let mut set_aside = Vec::new();
    let mut index = 0usize;
    timestamps.retain(|ts| {
        index += 1;
        let mut why = String::from("no trusted timestamp authority");
        for authority in &authorities {
            match sigstore_verify::tsa::verify_timestamp_for_authority(
                &ts.signed_timestamp,
                &signature,
                authority,
            ) {
                Ok(_) => return true,
                Err(e) => why = e.to_string(),
            }
        }
        set_aside.push(format!("timestamp {index}: {why}"));
        false
    });
    (timestamps.len(), set_aside)
}

/// The object identifier of Fulcio's otherName SAN (a username identity, `user!issuer-host`).
const OTHER_NAME_SAN_OID: &str = "1.3.6.1.4.1.57264.1.7";

/// Step 10, for certificates whose identity is an otherName SAN of Fulcio's OID (a UTF8String),
/// which sigstore-crypto does not extract (it reads only email and URI SANs): the value, from
/// the leaf certificate the crate has verified. sigstore-go reads it the same way (its PR #229).
fn other_name_identity(bundle: &Bundle) -> Option<String> {
    use x509_cert::der::{Decode as _, Encode as _};
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let der = bundle.signing_certificate()?;
    let cert = x509_cert::Certificate::from_der(der.as_bytes()).ok()?;
    let (_, san): (bool, SubjectAltName) = cert.tbs_certificate.get().ok()??;
    let mut found = san.0.iter().filter_map(|name| match name {
        GeneralName::OtherName(other) if other.type_id.to_string() == OTHER_NAME_SAN_OID => {
            let value = other.value.to_der().ok()?;
            let text = x509_cert::der::asn1::Utf8StringRef::from_der(&value).ok()?;
            Some(text.as_str().to_string())
        }
        _ => None,
    });
    let first = found.next()?;
    // More than one would make "the identity" ambiguous: none is taken.
    found.next().is_none().then_some(first)
}

/// Step 5. The DSSE `keyid` is unsigned and ignored.
fn check_dsse_shape(bundle: &Bundle) -> Result<(), SigstoreError> {
    if let SignatureContent::DsseEnvelope(env) = &bundle.content {
        if env.payload_type != PAYLOAD_TYPE_INTOTO {
            return Err(SigstoreError::DsseShape(format!(
                "payload type {:?} is not {PAYLOAD_TYPE_INTOTO}",
                env.payload_type
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://github.com/acme/app/.github/workflows/gate.yml@refs/heads/main";

    #[test]
    fn exact_identity_is_byte_equality() {
        let m = IdentityMatch::Exact(ID.to_string());
        for (candidate, want) in [
            (ID, true),
            ("", false),
            (
                "https://github.com/acme/app/.github/workflows/gate.yml",
                false,
            ),
            (&format!("{ID}x") as &str, false),
            (&format!("x{ID}") as &str, false),
            (&ID.to_uppercase() as &str, false),
            (&format!("{ID}\n") as &str, false),
        ] {
            assert_eq!(m.matches(candidate), want, "{candidate:?}");
        }
    }

    #[test]
    fn exact_identity_does_not_interpret_regex_syntax() {
        let m = IdentityMatch::Exact("https://github.com/acme/.*".to_string());
        assert!(!m.matches("https://github.com/acme/app"));
        assert!(m.matches("https://github.com/acme/.*"));
    }

    #[test]
    fn regex_identity_is_anchored_at_both_ends() {
        let m = IdentityMatch::regex(r"https://github\.com/acme/app/.*@refs/heads/main").unwrap();
        for (candidate, want) in [
            (ID, true),
            (&format!("evil://{ID}") as &str, false),
            (&format!("{ID}-fork") as &str, false),
            ("https://github.com/acme/app-fork/x@refs/heads/main", false),
        ] {
            assert_eq!(m.matches(candidate), want, "{candidate:?}");
        }
        // A bare substring pattern must match the whole identity, not a part of it.
        let sub = IdentityMatch::regex("acme").unwrap();
        assert!(!sub.matches(ID));
        assert!(sub.matches("acme"));
    }

    #[test]
    fn regex_alternation_stays_inside_the_anchors() {
        // Without the group, `^a|b$` would accept anything starting with "a".
        let m = IdentityMatch::regex("a|b").unwrap();
        assert!(m.matches("a") && m.matches("b"));
        assert!(!m.matches("ab") && !m.matches("a-evil") && !m.matches("evil-b"));
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(IdentityMatch::regex("(").is_err());
    }

    #[test]
    fn regex_cannot_break_out_of_its_anchors() {
        // Wrapped naively this becomes `^(?:a)|(?:b)$`: anything starting with "a".
        assert!(IdentityMatch::regex("a)|(?:b").is_err());
        // Multi-line mode inside the pattern does not loosen the outer anchors.
        let m = IdentityMatch::regex("(?m)acme$").unwrap();
        assert!(m.matches("acme"));
        assert!(!m.matches("acme\nevil") && !m.matches("evil\nacme"));
        let m = IdentityMatch::regex("acme").unwrap();
        assert!(!m.matches("acme\n"));
    }

    #[test]
    fn cli_artifact_forms() {
        let hex64 = "ab".repeat(32);
        assert!(matches!(
            ArtifactInput::from_cli_arg(&format!("sha256:{hex64}")),
            Ok(ArtifactInput::Sha256(d)) if d == [0xab; 32]
        ));
        for bad in [
            "sha256:",
            "sha256:abc",
            "sha256:zz",
            &format!("sha256:{hex64}00"),
        ] {
            assert!(
                matches!(
                    ArtifactInput::from_cli_arg(bad),
                    Err(SigstoreError::ArtifactDigest(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            ArtifactInput::from_cli_arg("a.txt"),
            Ok(ArtifactInput::Path(p)) if p == Path::new("a.txt")
        ));
    }

    #[test]
    fn key_hint_is_cosigns() {
        // The conformance managed-key vector's bundle carries this hint for this key.
        let pem = "-----BEGIN PUBLIC KEY-----\n\
            MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExRRST79+PsrRBnGAI4cMu6Omz2Jh\n\
            fwlMW+gIutNKVRaMyS4rQKvgngc5p8UbLj55pVHhIoAxi/SRgURZI0J3Xw==\n\
            -----END PUBLIC KEY-----\n";
        let key = ManagedKey::from_pem(pem).unwrap();
        assert_eq!(key.hint(), "TLMsSDfG3ajPsWge+z/vX5T/zluXnmvbkTkwLIV68Tk=");
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        for bad in [
            "",
            "not pem",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(
                matches!(ManagedKey::from_pem(bad), Err(SigstoreError::PublicKey(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn embedded_roots_parse() {
        public_good_root().unwrap();
        staging_root().unwrap();
    }
}
