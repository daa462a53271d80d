//! Why an attestation was or was not accepted, as values: [`AttestationCode`] is every stable
//! code a bundle's examination can end in (the `result` of an examined attestation in messages,
//! the audit log and `verify --json`), and [`VerifyError`] the key-based verification's
//! failures, each with its code. Codes are compared as values; their kebab-case strings are
//! what users, scripts and logs see, and never change.

use std::fmt;

use chrono::{DateTime, Utc};

/// Declares [`AttestationCode`] from one table, so that a variant and its string cannot drift.
macro_rules! attestation_codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// The stable code of what came of one attestation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AttestationCode {
            $($(#[$doc])* $variant,)*
        }

        impl AttestationCode {
            /// Every code, in table order.
            pub const ALL: &'static [AttestationCode] = &[$(AttestationCode::$variant,)*];

            /// The code as users, logs and scripts see it (kebab-case).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AttestationCode::$variant => $text,)*
                }
            }

            /// The code a string names, if any.
            pub fn parse(s: &str) -> Option<AttestationCode> {
                match s {
                    $($text => Some(AttestationCode::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

attestation_codes! {
    /// It admitted the commit.
    Ok = "ok",
    // The bundle (key-based verification).
    BundleMalformed = "bundle-malformed",
    BundleMediaTypeUnsupported = "bundle-media-type-unsupported",
    BundleNotKeyBased = "bundle-not-key-based",
    BundleNotDsse = "bundle-not-dsse",
    SignatureMissing = "signature-missing",
    SignaturesMultiple = "signatures-multiple",
    PayloadTypeUnsupported = "payload-type-unsupported",
    NoTrustedKeys = "no-trusted-keys",
    KeyidMismatch = "keyid-mismatch",
    KeyHintMismatch = "key-hint-mismatch",
    UntrustedSigner = "untrusted-signer",
    SignatureInvalid = "signature-invalid",
    // The statement and what it claims.
    StatementMalformed = "statement-malformed",
    StatementTypeUnsupported = "statement-type-unsupported",
    PredicateMalformed = "predicate-malformed",
    PredicateTypeMismatch = "predicate-type-mismatch",
    ArtifactNotSubject = "artifact-not-subject",
    NoArtifactSubject = "no-artifact-subject",
    CommitMismatch = "commit-mismatch",
    TreeMismatch = "tree-mismatch",
    SourceUndeclared = "source-undeclared",
    SourceMismatch = "source-mismatch",
    BuilderIdMismatch = "builder-id-mismatch",
    BuildTypeMismatch = "build-type-mismatch",
    TestResultUnbound = "test-result-unbound",
    TestsFailed = "tests-failed",
    TestsWarned = "tests-warned",
    AgeUnknown = "age-unknown",
    AttestationTooOld = "attestation-too-old",
    AttestationInFuture = "attestation-in-future",
    // Sigstore verification (certificates, transparency logs, timestamps).
    SigstoreRead = "sigstore-read",
    SigstoreArtifactDigest = "sigstore-artifact-digest",
    SigstorePublicKey = "sigstore-public-key",
    SigstoreTrustedRoot = "sigstore-trusted-root",
    SigstoreBundleParse = "sigstore-bundle-parse",
    SigstoreMaterialKind = "sigstore-material-kind",
    SigstoreChainShape = "sigstore-chain-shape",
    SigstoreNoInclusionProof = "sigstore-no-inclusion-proof",
    SigstoreDsseShape = "sigstore-dsse-shape",
    SigstoreCertificate = "sigstore-certificate",
    SigstoreTlog = "sigstore-tlog",
    SigstoreTimestamp = "sigstore-timestamp",
    SigstoreSignature = "sigstore-signature",
    SigstoreArtifactMismatch = "sigstore-artifact-mismatch",
    SigstoreBundle = "sigstore-bundle",
    SigstoreIncomplete = "sigstore-incomplete",
    SigstoreUnknownLog = "sigstore-unknown-log",
    SigstoreLogValidity = "sigstore-log-validity",
    SigstoreIssuerMismatch = "sigstore-issuer-mismatch",
    SigstoreIdentityMismatch = "sigstore-identity-mismatch",
    // The policy's view of a commit's candidates (the hook).
    /// Larger than any real bundle; refused unread.
    BundleTooLarge = "bundle-too-large",
    /// More candidates than are examined for one commit.
    TooManyCandidates = "too-many-candidates",
    /// The input (a note, a JSON Lines file) holds no bundle at all.
    NoBundle = "no-bundle",
    /// Fewer distinct signers than the policy's threshold.
    ThresholdNotMet = "threshold-not-met",
    /// No signer covers every required predicate type.
    PredicateMissing = "predicate-missing",
    // Approvals and break-glass overrides (the hook).
    /// The approver is the commit's author or committer (`distinct_from_author`).
    ApproverIsAuthor = "approver-is-author",
    /// The approver is an identity detection flags as an agent's: it never counts.
    ApproverIsAgent = "approver-is-agent",
    /// The same approver approved more than once; it counts once.
    ApproverRepeated = "approver-repeated",
    /// A break-glass override for another ref update (ref, old or new differ).
    OverrideMismatch = "override-mismatch",
    /// A break-glass override past its expiry (or not yet issued).
    OverrideExpired = "override-expired",
    /// A break-glass override valid for longer than the policy's `max_validity`.
    OverrideTooLong = "override-too-long",
}

impl fmt::Display for AttestationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for AttestationCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why an attestation was not accepted. `code()` is stable: scripts, logs and tests use it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("the bundle is not valid: {0}")]
    BundleMalformed(String),
    #[error("unsupported bundle media type `{0}`")]
    MediaTypeUnsupported(String),
    #[error("the bundle carries a certificate, not a public-key hint (keyless bundles need --certificate-identity)")]
    NotKeyBased,
    #[error("the bundle holds a message signature, not a DSSE envelope with an in-toto statement")]
    NotDsse,
    #[error("the DSSE envelope has no signature")]
    SignatureMissing,
    #[error("the DSSE envelope has {0} signatures; a bundle must carry exactly one")]
    SignaturesMultiple(usize),
    #[error("unsupported DSSE payload type `{0}` (expected application/vnd.in-toto+json)")]
    PayloadTypeUnsupported(String),
    #[error("no trusted keys are configured, so nothing can verify")]
    NoTrustedKeys,
    #[error("the DSSE signature's keyid `{keyid}` differs from the bundle's key hint `{hint}`")]
    KeyIdMismatch { keyid: String, hint: String },
    #[error(
        "the signature is valid for trusted key {key} but the bundle's hint names key `{hint}`"
    )]
    KeyHintMismatch { hint: String, key: String },
    #[error(
        "the bundle was signed by key `{hint}`, which is none of the {trusted} trusted key(s)"
    )]
    UntrustedSigner { hint: String, trusted: usize },
    #[error("the signature does not verify with the trusted key `{hint}` (the payload or signature was altered)")]
    SignatureInvalid { hint: String },
    #[error("the signed payload is not an in-toto statement: {0}")]
    StatementMalformed(String),
    #[error("unsupported statement type `{0}` (expected https://in-toto.io/Statement/v1)")]
    StatementTypeUnsupported(String),
    #[error("the predicate of type {predicate_type} is malformed: {message}")]
    PredicateMalformed {
        predicate_type: String,
        message: String,
    },
    #[error("the statement has predicate type {found}, expected {expected}")]
    PredicateTypeMismatch { expected: String, found: String },
    #[error("the artifact (sha256:{sha256}) is not a subject of the statement; its subjects are {}", subjects_text(.subjects))]
    ArtifactNotSubject {
        sha256: String,
        /// Every subject, as `name sha256:HEX` (or the digests it has).
        subjects: Vec<String>,
    },
    #[error("the statement has no sha256 artifact subject")]
    NoArtifactSubject,
    #[error("the statement does not attest commit {expected}: it binds {found}")]
    CommitMismatch {
        /// The commit asked for.
        expected: String,
        /// What the statement binds instead ("commit X", "no commit").
        found: String,
    },
    #[error("the statement does not attest tree {expected}: it binds {found}")]
    TreeMismatch { expected: String, found: String },
    #[error("the provenance declares no source (buildDefinition.externalParameters.source with uri and commit, and a resolvedDependencies entry with that uri and a gitCommit), so it binds no commit")]
    SourceUndeclared,
    #[error("the provenance names {named} only as another dependency or subject; the source it built is {declared}")]
    SourceMismatch { named: String, declared: String },
    #[error("the provenance declares source commit {declared} but its resolvedDependencies entry for {uri} names {found}")]
    SourceInconsistent {
        uri: String,
        declared: String,
        found: String,
    },
    #[error("the provenance's builder is {found:?}; this signer is trusted only for builder {expected:?}")]
    BuilderIdMismatch { expected: String, found: String },
    #[error("the provenance's buildType is {found:?}; this signer is trusted only for buildType {expected:?}")]
    BuildTypeMismatch { expected: String, found: String },
    #[error("the test result {0}")]
    TestResultUnbound(String),
    #[error("the tests failed ({failed} failed test(s) recorded)")]
    TestsFailed { failed: usize },
    #[error("the test result is WARNED, not PASSED")]
    TestsWarned,
    #[error("the statement records no signing time (runDetails.metadata.finishedOn)")]
    AgeUnknown,
    #[error("the attestation is from {at}, older than the allowed {max_age_secs} s")]
    TooOld {
        at: DateTime<Utc>,
        max_age_secs: i64,
    },
    #[error("the attestation claims a time in the future ({at})")]
    TimeInFuture { at: DateTime<Utc> },
}

/// Subjects for a message: "none" or a comma-separated list.
fn subjects_text(subjects: &[String]) -> String {
    if subjects.is_empty() {
        "none".to_string()
    } else {
        subjects.join(", ")
    }
}

impl VerifyError {
    /// Its stable code.
    pub fn code(&self) -> AttestationCode {
        use AttestationCode as C;
        use VerifyError::*;
        match self {
            BundleMalformed(_) => C::BundleMalformed,
            MediaTypeUnsupported(_) => C::BundleMediaTypeUnsupported,
            NotKeyBased => C::BundleNotKeyBased,
            NotDsse => C::BundleNotDsse,
            SignatureMissing => C::SignatureMissing,
            SignaturesMultiple(_) => C::SignaturesMultiple,
            PayloadTypeUnsupported(_) => C::PayloadTypeUnsupported,
            NoTrustedKeys => C::NoTrustedKeys,
            KeyIdMismatch { .. } => C::KeyidMismatch,
            KeyHintMismatch { .. } => C::KeyHintMismatch,
            UntrustedSigner { .. } => C::UntrustedSigner,
            SignatureInvalid { .. } => C::SignatureInvalid,
            StatementMalformed(_) => C::StatementMalformed,
            StatementTypeUnsupported(_) => C::StatementTypeUnsupported,
            PredicateMalformed { .. } => C::PredicateMalformed,
            PredicateTypeMismatch { .. } => C::PredicateTypeMismatch,
            ArtifactNotSubject { .. } => C::ArtifactNotSubject,
            NoArtifactSubject => C::NoArtifactSubject,
            CommitMismatch { .. } => C::CommitMismatch,
            TreeMismatch { .. } => C::TreeMismatch,
            SourceUndeclared => C::SourceUndeclared,
            SourceMismatch { .. } | SourceInconsistent { .. } => C::SourceMismatch,
            BuilderIdMismatch { .. } => C::BuilderIdMismatch,
            BuildTypeMismatch { .. } => C::BuildTypeMismatch,
            TestResultUnbound(_) => C::TestResultUnbound,
            TestsFailed { .. } => C::TestsFailed,
            TestsWarned => C::TestsWarned,
            AgeUnknown => C::AgeUnknown,
            TooOld { .. } => C::AttestationTooOld,
            TimeInFuture { .. } => C::AttestationInFuture,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for &c in AttestationCode::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{s}"
            );
            assert_eq!(AttestationCode::parse(s), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(AttestationCode::parse("nope"), None);
    }
}
