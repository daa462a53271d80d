//! Verification of key-based gate attestations: first the signature (is this a statement a
//! trusted key signed?), then separate attestation-level checks the hook combines as its policy
//! says (artifact, commit or tree, test result, age). Every failure is its own variant with a
//! stable code, so that messages, logs and tests name the same thing.

use chrono::{DateTime, Duration, Utc};
use sha2::Digest as _;

use crate::bundle::{parse_key_bundle, reject_duplicate_keys};
use crate::dsse::{pae, PAYLOAD_TYPE_INTOTO};
use crate::keys::PublicKey;
pub use crate::reason::{AttestationCode, VerifyError};
use crate::sigstore::{self, ArtifactInput, SignerPolicy, SigstoreError, TrustedRoot};
use crate::statement::{
    bound_provenances, Provenance, Statement, TestOutcome, DIGEST_GIT_COMMIT, DIGEST_GIT_TREE,
    DIGEST_SHA256, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT_V01, STATEMENT_V01,
    STATEMENT_V1,
};

/// A statement whose signature verified: only [`verify_bundle`] and [`verify_sigstore`] build
/// one (the fields are private), so holding one means the signature checked out for the signer
/// it names.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedAttestation {
    pub(crate) signer: VerifiedSigner,
    pub(crate) statement: Statement,
    /// Hex SHA-256 of the DSSE payload (the statement bytes as signed).
    pub(crate) payload_sha256: String,
}

/// Who signed a verified attestation.
#[derive(Debug, Clone, PartialEq)]
pub enum VerifiedSigner {
    /// A trusted key.
    Key {
        /// Its index in the `trusted_keys` slice given to [`verify_bundle`].
        index: usize,
        /// Its hint (base64 SHA-256 of the SPKI).
        hint: String,
    },
    /// A Sigstore identity: a Fulcio certificate's subject, logged in a transparency log.
    Identity {
        /// The certificate identity (SAN).
        identity: String,
        /// The certificate's OIDC issuer.
        issuer: Option<String>,
        /// Every authenticated signing time (RFC 3161 timestamps, SET-backed log times).
        signed_times: Vec<DateTime<Utc>>,
    },
}

impl VerifiedAttestation {
    pub fn signer(&self) -> &VerifiedSigner {
        &self.signer
    }

    pub fn statement(&self) -> &Statement {
        &self.statement
    }

    /// Hex SHA-256 of the signed statement: what a test result names its provenance by.
    pub fn payload_sha256(&self) -> &str {
        &self.payload_sha256
    }

    pub fn predicate_type(&self) -> &str {
        &self.statement.predicate_type
    }

    /// The time the signer claims the work finished: SLSA provenance
    /// `runDetails.metadata.finishedOn` (else `startedOn`). Key-based bundles carry no trusted
    /// timestamp, so this is the signer's own word.
    pub fn claimed_time(&self) -> Option<DateTime<Utc>> {
        let md = self.statement.provenance()?.ok()?.run_details.metadata?;
        md.finished_on.or(md.started_on)
    }

    /// The earliest authenticated signing time (Sigstore identities only).
    pub fn signed_time(&self) -> Option<DateTime<Utc>> {
        match &self.signer {
            VerifiedSigner::Identity { signed_times, .. } => signed_times.iter().min().copied(),
            VerifiedSigner::Key { .. } => None,
        }
    }
}

/// Verify a key-based Sigstore bundle against the configured keys.
///
/// The hint and keyid in the bundle are not authenticated, so they never choose the key: every
/// trusted key is tried on the signature, and the hint is consulted only afterwards, for
/// consistency and for a precise error.
pub fn verify_bundle(
    bundle_json: &[u8],
    trusted_keys: &[PublicKey],
) -> Result<VerifiedAttestation, VerifyError> {
    let signed = verify_key_signature(bundle_json, trusted_keys)?;
    // 6. The statement.
    let statement = parse_statement(&signed.payload)?;
    Ok(signed.into_attestation(statement))
}

/// A key-based DSSE envelope whose signature verified with a trusted key; its payload is not
/// read yet ([`verify_bundle`] reads it as the hook does, `verify` as any in-toto version).
#[derive(Debug, Clone)]
pub struct KeySigned {
    /// The key's index in the `trusted_keys` given.
    pub index: usize,
    /// The key's hint.
    pub hint: String,
    /// The DSSE payload, authenticated.
    pub payload: Vec<u8>,
}

impl KeySigned {
    pub(crate) fn into_attestation(self, statement: Statement) -> VerifiedAttestation {
        VerifiedAttestation {
            signer: VerifiedSigner::Key {
                index: self.index,
                hint: self.hint,
            },
            statement,
            payload_sha256: hex::encode(sha2::Sha256::digest(&self.payload)),
        }
    }
}

/// Steps 1-5 of [`verify_bundle`]: the bundle's signature, by one of `trusted_keys`.
pub fn verify_key_signature(
    bundle_json: &[u8],
    trusted_keys: &[PublicKey],
) -> Result<KeySigned, VerifyError> {
    // 1. Parse strictly.
    let bundle = parse_key_bundle(bundle_json)?;
    // 2. Only in-toto payloads are attestations.
    if bundle.payload_type != PAYLOAD_TYPE_INTOTO {
        return Err(VerifyError::PayloadTypeUnsupported(bundle.payload_type));
    }
    // 3. The envelope must name the same key as the bundle (an empty keyid names none).
    if !bundle.keyid.is_empty() && bundle.keyid != bundle.hint {
        return Err(VerifyError::KeyIdMismatch {
            keyid: bundle.keyid,
            hint: bundle.hint,
        });
    }
    // 4. The signature over PAE, with each trusted key.
    if trusted_keys.is_empty() {
        return Err(VerifyError::NoTrustedKeys);
    }
    let message = pae(&bundle.payload_type, &bundle.payload);
    let Some((index, signer)) = trusted_keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.verify(&message, &bundle.signature))
    else {
        return Err(
            match trusted_keys.iter().find(|k| k.hint() == bundle.hint) {
                Some(k) => VerifyError::SignatureInvalid {
                    hint: k.hint().to_string(),
                },
                None => VerifyError::UntrustedSigner {
                    hint: bundle.hint,
                    trusted: trusted_keys.len(),
                },
            },
        );
    };
    // 5. A valid signature under a hint naming another key means the bundle was edited.
    if bundle.hint != signer.hint() {
        return Err(VerifyError::KeyHintMismatch {
            hint: bundle.hint,
            key: signer.hint().to_string(),
        });
    }
    Ok(KeySigned {
        index,
        hint: signer.hint().to_string(),
        payload: bundle.payload,
    })
}

/// Why a Sigstore (certificate) bundle is not a verified attestation.
#[derive(Debug, thiserror::Error)]
pub enum SigstoreAttestationError {
    /// The bundle did not verify for the signer (see [`sigstore::verify`]).
    #[error(transparent)]
    Sigstore(#[from] SigstoreError),
    /// It verified, but it holds no in-toto statement ([`VerifyError::NotDsse`], or a statement
    /// [`parse_statement`] refuses).
    #[error(transparent)]
    Statement(#[from] VerifyError),
}

impl SigstoreAttestationError {
    pub fn code(&self) -> AttestationCode {
        match self {
            SigstoreAttestationError::Sigstore(e) => e.code(),
            SigstoreAttestationError::Statement(e) => e.code(),
        }
    }
}

/// Verify a Sigstore bundle as an attestation: [`sigstore::verify`] for `policy` under `root`,
/// then its DSSE payload parsed as strictly as a key-based bundle's ([`parse_statement`]).
pub fn verify_sigstore(
    bundle_json: &[u8],
    artifact: &ArtifactInput,
    policy: &SignerPolicy,
    root: &TrustedRoot,
) -> Result<VerifiedAttestation, SigstoreAttestationError> {
    let verified = sigstore::verify(bundle_json, artifact, policy, root)?;
    let Some((_, payload)) = verified.payload else {
        return Err(VerifyError::NotDsse.into());
    };
    let statement = parse_statement(&payload)?;
    Ok(VerifiedAttestation {
        signer: VerifiedSigner::Identity {
            identity: verified.signer,
            issuer: verified.issuer,
            signed_times: verified.signed_times,
        },
        statement,
        payload_sha256: hex::encode(sha2::Sha256::digest(&payload)),
    })
}

/// Parse an authenticated DSSE payload as an in-toto Statement v1 (strictly: no duplicate keys).
/// The hook reads only v1: agentgate signs nothing else.
pub fn parse_statement(payload: &[u8]) -> Result<Statement, VerifyError> {
    let statement = parse_statement_any_version(payload)?;
    if statement.type_ != STATEMENT_V1 {
        return Err(VerifyError::StatementTypeUnsupported(statement.type_));
    }
    Ok(statement)
}

/// Parse an authenticated DSSE payload as an in-toto Statement v1 or v0.1 (what
/// `cosign attest-blob` still writes): the same four fields, strictly (no duplicate keys, no
/// unknown fields). Any other `_type` is refused.
pub fn parse_statement_any_version(payload: &[u8]) -> Result<Statement, VerifyError> {
    reject_duplicate_keys(payload).map_err(VerifyError::StatementMalformed)?;
    let statement: Statement = serde_json::from_slice(payload)
        .map_err(|e| VerifyError::StatementMalformed(e.to_string()))?;
    if statement.type_ != STATEMENT_V1 && statement.type_ != STATEMENT_V01 {
        return Err(VerifyError::StatementTypeUnsupported(statement.type_));
    }
    Ok(statement)
}

/// Every subject of the statement as `name sha256:HEX` (or its digests), for messages.
pub fn subject_list(statement: &Statement) -> Vec<String> {
    statement
        .subject
        .iter()
        .map(|s| {
            let digests: Vec<String> = s.digest.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            match &s.name {
                Some(n) => format!("{n} {}", digests.join(" ")),
                None => digests.join(" "),
            }
        })
        .collect()
}

/// The artifact with this SHA-256 (hex) is a subject.
pub fn check_artifact(att: &VerifiedAttestation, sha256_hex: &str) -> Result<(), VerifyError> {
    match att
        .statement
        .subjects_with_digest(DIGEST_SHA256, sha256_hex)
        .next()
    {
        Some(_) => Ok(()),
        None => Err(VerifyError::ArtifactNotSubject {
            sha256: sha256_hex.to_ascii_lowercase(),
            subjects: subject_list(&att.statement),
        }),
    }
}

/// At least one subject has a `sha256` digest (the policy's "an artifact was attested").
pub fn check_has_artifact(att: &VerifiedAttestation) -> Result<(), VerifyError> {
    if att
        .statement
        .subject
        .iter()
        .any(|s| s.digest.contains_key(DIGEST_SHA256))
    {
        Ok(())
    } else {
        Err(VerifyError::NoArtifactSubject)
    }
}

/// `buildType` of GitHub Actions' own provenance (actions/attest-build-provenance).
pub const BUILD_TYPE_GITHUB_WORKFLOW_V1: &str = "https://actions.github.io/buildtypes/workflow/v1";

/// The source a provenance declares it built: its uri, its commit, and the tree of the
/// `resolvedDependencies` entry with that uri.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredSource {
    pub uri: String,
    pub commit: String,
    pub tree: Option<String>,
}

/// The statement's predicate as SLSA provenance v1 (None for other predicate types).
fn provenance_of(att: &VerifiedAttestation) -> Result<Option<Provenance>, VerifyError> {
    match att.statement.provenance() {
        None => Ok(None),
        Some(Ok(p)) => Ok(Some(p)),
        Some(Err(e)) => Err(VerifyError::PredicateMalformed {
            predicate_type: att.statement.predicate_type.clone(),
            message: e.to_string(),
        }),
    }
}

/// The binding rule for provenance: the commit the build declares as its source, and only
/// that one. Other dependencies (submodules, tools, a commit listed to pass for the source)
/// bind nothing. Where the source is declared depends on the build type:
///
/// - GitHub Actions' workflow buildType: `externalParameters.workflow.repository` at `.ref`,
///   whose `resolvedDependencies` entry has the uri `git+<repository>@<ref>`;
/// - any other (agentgate's gate and sign buildTypes): `externalParameters.source.uri` and
///   `.commit`, which must equal the `gitCommit` of the entry with that uri.
///
/// Every entry with the source's uri and a `gitCommit` must agree, and there must be one.
pub fn declared_source(p: &Provenance) -> Result<DeclaredSource, VerifyError> {
    let ext = &p.build_definition.external_parameters;
    let (uri, mut commit) = if p.build_definition.build_type == BUILD_TYPE_GITHUB_WORKFLOW_V1 {
        let wf = &ext["workflow"];
        let (Some(repository), Some(git_ref)) = (wf["repository"].as_str(), wf["ref"].as_str())
        else {
            return Err(VerifyError::SourceUndeclared);
        };
        (format!("git+{repository}@{git_ref}"), None)
    } else {
        let src = &ext["source"];
        let (Some(uri), Some(commit)) = (src["uri"].as_str(), src["commit"].as_str()) else {
            return Err(VerifyError::SourceUndeclared);
        };
        (uri.to_string(), Some(commit.to_string()))
    };
    let mut tree: Option<&String> = None;
    let mut found = false;
    for d in p
        .build_definition
        .resolved_dependencies
        .iter()
        .filter(|d| d.uri.as_deref() == Some(uri.as_str()))
    {
        let Some(dep_commit) = d.digest.get(DIGEST_GIT_COMMIT) else {
            continue;
        };
        let declared = commit.get_or_insert_with(|| dep_commit.clone());
        if !dep_commit.eq_ignore_ascii_case(declared) {
            return Err(VerifyError::SourceInconsistent {
                uri: uri.to_string(),
                declared: declared.clone(),
                found: dep_commit.clone(),
            });
        }
        if let Some(t) = d.digest.get(DIGEST_GIT_TREE) {
            if tree.is_some_and(|prev| !prev.eq_ignore_ascii_case(t)) {
                return Err(VerifyError::SourceInconsistent {
                    uri: uri.to_string(),
                    declared: commit.clone().unwrap_or_default(),
                    found: format!("two trees ({} and {t})", tree.map_or("", |s| s.as_str())),
                });
            }
            tree = Some(t);
        }
        found = true;
    }
    let (true, Some(commit)) = (found, commit) else {
        return Err(VerifyError::SourceUndeclared);
    };
    Ok(DeclaredSource {
        uri,
        commit: commit.to_ascii_lowercase(),
        tree: tree.map(|t| t.to_ascii_lowercase()),
    })
}

/// Does the provenance name `algorithm` = `value` anywhere the binding rule does not look (a
/// subject or another dependency)? Only to tell `source-mismatch` from a plain mismatch.
fn named_elsewhere(
    att: &VerifiedAttestation,
    p: &Provenance,
    algorithm: &str,
    value: &str,
) -> bool {
    att.statement
        .subjects_with_digest(algorithm, value)
        .next()
        .is_some()
        || p.build_definition
            .resolved_dependencies
            .iter()
            .any(|d| d.has_digest(algorithm, value))
}

/// The statement attests `algorithm` = `value`: a provenance by its declared source (the commit,
/// or the tree of the source dependency), any other statement by a subject.
fn binds(
    att: &VerifiedAttestation,
    algorithm: &str,
    value: &str,
    mismatch: impl FnOnce(String) -> VerifyError,
) -> Result<(), VerifyError> {
    let what = if algorithm == DIGEST_GIT_COMMIT {
        "commit"
    } else {
        "tree"
    };
    let Some(p) = provenance_of(att)? else {
        return match att.statement.subjects_with_digest(algorithm, value).next() {
            Some(_) => Ok(()),
            None => {
                let bound: Vec<&str> = att
                    .statement
                    .subject
                    .iter()
                    .filter_map(|s| s.digest.get(algorithm).map(String::as_str))
                    .collect();
                Err(mismatch(if bound.is_empty() {
                    format!("no {what} (no {algorithm} subject)")
                } else {
                    format!("{what} {} ({algorithm} subject)", bound.join(", "))
                }))
            }
        };
    };
    let src = declared_source(&p)?;
    let declared = match algorithm {
        DIGEST_GIT_COMMIT => Some(&src.commit),
        _ => src.tree.as_ref(),
    };
    if declared.is_some_and(|d| d.eq_ignore_ascii_case(value)) {
        return Ok(());
    }
    let declared_text = match algorithm {
        DIGEST_GIT_COMMIT => format!("commit {}", src.commit),
        _ => format!("tree {}", src.tree.as_deref().unwrap_or("(none declared)")),
    };
    if named_elsewhere(att, &p, algorithm, value) {
        return Err(VerifyError::SourceMismatch {
            named: value.to_string(),
            declared: declared_text,
        });
    }
    Err(mismatch(format!(
        "{declared_text} (the source it declares)"
    )))
}

/// The statement attests commit `commit_hex`: a provenance's declared source commit
/// ([`declared_source`]), or a `gitCommit` subject of any other statement.
pub fn check_commit(att: &VerifiedAttestation, commit_hex: &str) -> Result<(), VerifyError> {
    binds(att, DIGEST_GIT_COMMIT, commit_hex, |found| {
        VerifyError::CommitMismatch {
            expected: commit_hex.to_string(),
            found,
        }
    })
}

/// The statement attests tree `tree_hex` (for `bind = "tree"`): the tree of a provenance's
/// declared source, or a `gitTree` subject of any other statement.
pub fn check_tree(att: &VerifiedAttestation, tree_hex: &str) -> Result<(), VerifyError> {
    binds(att, DIGEST_GIT_TREE, tree_hex, |found| {
        VerifyError::TreeMismatch {
            expected: tree_hex.to_string(),
            found,
        }
    })
}

/// A provenance claims exactly this builder id and build type (each when given). Other
/// statements carry neither; they are not checked here.
pub fn check_builder(
    att: &VerifiedAttestation,
    builder_id: Option<&str>,
    build_type: Option<&str>,
) -> Result<(), VerifyError> {
    let Some(p) = provenance_of(att)? else {
        return Ok(());
    };
    if let Some(expected) = builder_id {
        if p.run_details.builder.id != expected {
            return Err(VerifyError::BuilderIdMismatch {
                expected: expected.to_string(),
                found: p.run_details.builder.id,
            });
        }
    }
    if let Some(expected) = build_type {
        if p.build_definition.build_type != expected {
            return Err(VerifyError::BuildTypeMismatch {
                expected: expected.to_string(),
                found: p.build_definition.build_type,
            });
        }
    }
    Ok(())
}

/// The provenances (hex SHA-256 of the signed statement) a test result names as its run's;
/// `test-result-unbound` if it names none.
pub fn test_result_provenances(att: &VerifiedAttestation) -> Result<Vec<String>, VerifyError> {
    check_predicate_type(att, PREDICATE_TEST_RESULT_V01)?;
    let result = match att.statement.test_result() {
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            return Err(VerifyError::PredicateMalformed {
                predicate_type: PREDICATE_TEST_RESULT_V01.to_string(),
                message: e.to_string(),
            })
        }
        None => {
            return Err(VerifyError::TestResultUnbound(
                "is not a test result".into(),
            ))
        }
    };
    let bound = bound_provenances(&result);
    if bound.is_empty() {
        return Err(VerifyError::TestResultUnbound(format!(
            "names no provenance of its run (a configuration entry of media type application/vnd.in-toto+json, predicateType {PREDICATE_SLSA_PROVENANCE_V1})"
        )));
    }
    Ok(bound)
}

/// The statement has this predicate type.
pub fn check_predicate_type(att: &VerifiedAttestation, expected: &str) -> Result<(), VerifyError> {
    if att.statement.predicate_type == expected {
        Ok(())
    } else {
        Err(VerifyError::PredicateTypeMismatch {
            expected: expected.to_string(),
            found: att.statement.predicate_type.clone(),
        })
    }
}

/// The statement is a test result and its result is PASSED.
pub fn check_tests_passed(att: &VerifiedAttestation) -> Result<(), VerifyError> {
    check_predicate_type(att, PREDICATE_TEST_RESULT_V01)?;
    let malformed = |message: String| VerifyError::PredicateMalformed {
        predicate_type: PREDICATE_TEST_RESULT_V01.to_string(),
        message,
    };
    let result = match att.statement.test_result() {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(malformed(e.to_string())),
        None => return Err(malformed("not a test result".into())),
    };
    match result.result {
        TestOutcome::Passed => Ok(()),
        TestOutcome::Warned => Err(VerifyError::TestsWarned),
        TestOutcome::Failed => Err(VerifyError::TestsFailed {
            failed: result.failed_tests.len(),
        }),
    }
}

/// The signer-claimed time ([`VerifiedAttestation::claimed_time`]) is within `max_age` of `now`
/// and not more than `skew` in the future.
pub fn check_age(
    att: &VerifiedAttestation,
    max_age: Duration,
    skew: Duration,
    now: DateTime<Utc>,
) -> Result<(), VerifyError> {
    let at = att.claimed_time().ok_or(VerifyError::AgeUnknown)?;
    // `now + skew` can leave chrono's range (a caller's extreme skew); past its end no time is
    // in the future, before its start every time is.
    let in_future = match now.checked_add_signed(skew) {
        Some(limit) => at > limit,
        None => skew < Duration::zero(),
    };
    if in_future {
        return Err(VerifyError::TimeInFuture { at });
    }
    if now - at > max_age {
        return Err(VerifyError::TooOld {
            at,
            max_age_secs: max_age.num_seconds(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, SigningKey};
    use crate::sign::sign_statement;
    use crate::statement::*;

    fn source() -> Source {
        Source {
            uri: "file:///r".into(),
            commit: "c".repeat(40),
            tree: "d".repeat(40),
        }
    }

    fn artifacts() -> Vec<Artifact> {
        vec![Artifact {
            name: "app".into(),
            sha256: "e".repeat(64),
        }]
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn provenance() -> Statement {
        provenance_statement(
            &source(),
            &artifacts(),
            ProvenanceParams {
                builder_id: "urn:test".into(),
                build_type: "urn:test".into(),
                external_parameters: serde_json::json!({}),
                internal_parameters: None,
                builder_version: Default::default(),
                builder_dependencies: vec![],
                invocation_id: None,
                started_on: at("2026-01-01T00:00:00Z"),
                finished_on: at("2026-01-01T00:01:00Z"),
                byproducts: vec![],
            },
        )
    }

    fn tests(outcome: TestOutcome) -> Statement {
        test_result_statement(
            &source(),
            &artifacts(),
            &TestResult {
                result: outcome,
                configuration: vec![],
                url: None,
                passed_tests: vec![],
                warned_tests: vec![],
                failed_tests: vec!["t".into()],
            },
            &provenance(),
        )
        .unwrap()
    }

    /// Sign `statement` with a fresh key and verify it: an authenticated attestation.
    fn verified(statement: &Statement) -> VerifiedAttestation {
        let k = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        verify_bundle(
            sign_statement(&k, statement).unwrap().as_bytes(),
            &[k.public_key().clone()],
        )
        .unwrap()
    }

    /// The provenance with its predicate edited.
    fn edited_provenance(f: impl Fn(&mut serde_json::Value)) -> VerifiedAttestation {
        let mut st = provenance();
        f(&mut st.predicate);
        verified(&st)
    }

    #[test]
    fn provenance_binds_only_its_declared_source() {
        let (c, t) = ("c".repeat(40), "d".repeat(40));
        let other = "9".repeat(40);
        let att = verified(&provenance());
        assert_eq!(
            declared_source(&att.statement().provenance().unwrap().unwrap()).unwrap(),
            DeclaredSource {
                uri: "file:///r".into(),
                commit: c.clone(),
                tree: Some(t.clone()),
            }
        );
        check_commit(&att, &c.to_ascii_uppercase()).unwrap();
        check_tree(&att, &t).unwrap();

        // An extra dependency names `other`; the declared source is still `c`.
        let extra = |v: &mut serde_json::Value| {
            v["buildDefinition"]["resolvedDependencies"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"uri": "file:///lib", "digest": {"gitCommit": "9".repeat(40), "gitTree": "8".repeat(40)}}));
        };
        let att = edited_provenance(extra);
        check_commit(&att, &c).unwrap();
        assert_eq!(
            check_commit(&att, &other).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );
        assert_eq!(
            check_tree(&att, &"8".repeat(40)).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );
        assert_eq!(
            check_commit(&att, &"7".repeat(40)).unwrap_err().code(),
            AttestationCode::CommitMismatch
        );
        assert_eq!(
            check_tree(&att, &"7".repeat(40)).unwrap_err().code(),
            AttestationCode::TreeMismatch
        );

        // A gitCommit subject on a provenance binds nothing either.
        let mut st = provenance();
        st.subject.push(ResourceDescriptor::named(
            "x",
            DIGEST_GIT_COMMIT,
            other.clone(),
        ));
        assert_eq!(
            check_commit(&verified(&st), &other).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );

        // The declared commit and the dependency for the declared uri disagree.
        let att = edited_provenance(|v| {
            v["buildDefinition"]["externalParameters"]["source"]["commit"] = "9".repeat(40).into()
        });
        assert_eq!(
            check_commit(&att, &other).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );
        assert_eq!(
            check_commit(&att, &c).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );
        // Two entries for the declared uri with different trees.
        let att = edited_provenance(|v| {
            v["buildDefinition"]["resolvedDependencies"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"uri": "file:///r", "digest": {"gitCommit": "c".repeat(40), "gitTree": "8".repeat(40)}}));
        });
        assert_eq!(
            check_commit(&att, &c).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );

        // No declared source: no commit is bound.
        for edit in [
            (|v: &mut serde_json::Value| {
                v["buildDefinition"]["externalParameters"] = serde_json::json!({})
            }) as fn(&mut serde_json::Value),
            |v| v["buildDefinition"]["externalParameters"]["source"]["commit"] = 7.into(),
            |v| {
                v["buildDefinition"]["externalParameters"]["source"]["uri"] =
                    "file:///elsewhere".into()
            },
            |v| v["buildDefinition"]["resolvedDependencies"] = serde_json::json!([]),
            |v| {
                v["buildDefinition"]["resolvedDependencies"][0]["digest"] =
                    serde_json::json!({"gitTree": "d".repeat(40)})
            },
        ] {
            let att = edited_provenance(edit);
            assert_eq!(
                check_commit(&att, &c).unwrap_err().code(),
                AttestationCode::SourceUndeclared
            );
        }
    }

    /// GitHub Actions' provenance declares its source as the workflow's repository at its ref.
    #[test]
    fn github_workflow_provenance_binds_its_repository_at_its_ref() {
        let c = "e".repeat(40);
        let github = |deps: serde_json::Value| {
            let mut st = provenance();
            st.predicate["buildDefinition"] = serde_json::json!({
                "buildType": BUILD_TYPE_GITHUB_WORKFLOW_V1,
                "externalParameters": {"workflow": {
                    "ref": "refs/heads/main",
                    "repository": "https://github.com/acme/app",
                    "path": ".github/workflows/release.yml",
                }},
                "resolvedDependencies": deps,
            });
            verified(&st)
        };
        let source = |commit: &str| serde_json::json!({"uri": "git+https://github.com/acme/app@refs/heads/main", "digest": {"gitCommit": commit}});
        let att = github(serde_json::json!([source(&c)]));
        check_commit(&att, &c).unwrap();
        assert_eq!(
            check_commit(&att, &"f".repeat(40)).unwrap_err().code(),
            AttestationCode::CommitMismatch
        );
        let other = serde_json::json!({"uri": "git+https://github.com/acme/lib@refs/heads/main", "digest": {"gitCommit": "f".repeat(40)}});
        let att = github(serde_json::json!([other, source(&c)]));
        check_commit(&att, &c).unwrap();
        assert_eq!(
            check_commit(&att, &"f".repeat(40)).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );
        let att = github(serde_json::json!([source(&c), source(&"f".repeat(40))]));
        assert_eq!(
            check_commit(&att, &c).unwrap_err().code(),
            AttestationCode::SourceMismatch
        );
        let att = github(serde_json::json!([other]));
        assert_eq!(
            check_commit(&att, &"f".repeat(40)).unwrap_err().code(),
            AttestationCode::SourceUndeclared
        );
    }

    #[test]
    fn builder_constraints() {
        let att = verified(&provenance());
        check_builder(&att, None, None).unwrap();
        check_builder(&att, Some("urn:test"), Some("urn:test")).unwrap();
        assert_eq!(
            check_builder(&att, Some("urn:test/other"), None)
                .unwrap_err()
                .code(),
            AttestationCode::BuilderIdMismatch
        );
        assert_eq!(
            check_builder(&att, None, Some("urn:test "))
                .unwrap_err()
                .code(),
            AttestationCode::BuildTypeMismatch
        );
        // A test result has no builder: nothing to check on it (its provenance is checked).
        check_builder(&verified(&tests(TestOutcome::Passed)), Some("x"), Some("y")).unwrap();
    }

    #[test]
    fn test_result_names_its_provenance() {
        let prov = verified(&provenance());
        let att = verified(&tests(TestOutcome::Passed));
        assert_eq!(
            test_result_provenances(&att).unwrap(),
            vec![prov.payload_sha256.clone()]
        );
        let mut st = tests(TestOutcome::Passed);
        st.predicate["configuration"] = serde_json::json!([]);
        assert_eq!(
            test_result_provenances(&verified(&st)).unwrap_err().code(),
            AttestationCode::TestResultUnbound
        );
        assert_eq!(
            test_result_provenances(&prov).unwrap_err().code(),
            AttestationCode::PredicateTypeMismatch
        );
    }

    #[test]
    fn roundtrip_and_checks() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
            let k = SigningKey::generate(alg).unwrap();
            let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let b = sign_statement(&k, &provenance()).unwrap();
            let keys = [other.public_key().clone(), k.public_key().clone()];
            let att = verify_bundle(b.as_bytes(), &keys).unwrap();
            assert_eq!(
                att.signer(),
                &VerifiedSigner::Key {
                    index: 1,
                    hint: k.public_key().hint().to_string()
                }
            );
            check_artifact(&att, &"E".repeat(64)).unwrap();
            check_has_artifact(&att).unwrap();
            check_commit(&att, &"c".repeat(40)).unwrap();
            check_tree(&att, &"d".repeat(40)).unwrap();
            assert_eq!(
                check_commit(&att, &"f".repeat(40)).unwrap_err().code(),
                AttestationCode::CommitMismatch
            );
            assert_eq!(
                check_artifact(&att, &"0".repeat(64)).unwrap_err().code(),
                AttestationCode::ArtifactNotSubject
            );
            assert_eq!(
                check_tests_passed(&att).unwrap_err().code(),
                AttestationCode::PredicateTypeMismatch
            );
            let now = at("2026-01-02T00:00:00Z");
            check_age(&att, Duration::days(2), Duration::minutes(5), now).unwrap();
            assert_eq!(
                check_age(&att, Duration::hours(1), Duration::minutes(5), now)
                    .unwrap_err()
                    .code(),
                AttestationCode::AttestationTooOld
            );
            assert_eq!(
                check_age(
                    &att,
                    Duration::hours(1),
                    Duration::zero(),
                    at("2025-01-01T00:00:00Z")
                )
                .unwrap_err()
                .code(),
                AttestationCode::AttestationInFuture
            );
        }
    }

    #[test]
    fn test_results() {
        let k = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let keys = [k.public_key().clone()];
        for (outcome, code) in [
            (TestOutcome::Passed, None),
            (TestOutcome::Warned, Some(AttestationCode::TestsWarned)),
            (TestOutcome::Failed, Some(AttestationCode::TestsFailed)),
        ] {
            let att = verify_bundle(
                sign_statement(&k, &tests(outcome)).unwrap().as_bytes(),
                &keys,
            )
            .unwrap();
            check_commit(&att, &"c".repeat(40)).unwrap();
            check_tree(&att, &"d".repeat(40)).unwrap();
            assert_eq!(check_tests_passed(&att).err().map(|e| e.code()), code);
            assert_eq!(
                check_age(&att, Duration::days(1), Duration::zero(), Utc::now())
                    .unwrap_err()
                    .code(),
                AttestationCode::AgeUnknown
            );
        }
    }

    fn edit(bundle: &str, f: impl Fn(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(bundle).unwrap();
        f(&mut v);
        v.to_string()
    }

    #[test]
    fn refusals() {
        let k = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let keys = [k.public_key().clone()];
        let b = sign_statement(&k, &provenance()).unwrap();
        let code = |json: &str, keys: &[PublicKey]| {
            verify_bundle(json.as_bytes(), keys)
                .unwrap_err()
                .code()
                .as_str()
        };

        assert_eq!(code(&b, &[]), "no-trusted-keys");
        assert_eq!(code(&b, &[other.public_key().clone()]), "untrusted-signer");
        let other_hint = other.public_key().hint().to_string();
        let h = other_hint.clone();
        let renamed = edit(&b, move |v| {
            v["verificationMaterial"]["publicKey"]["hint"] = h.clone().into();
            v["dsseEnvelope"]["signatures"][0]["keyid"] = h.clone().into();
        });
        assert_eq!(code(&renamed, &keys), "key-hint-mismatch");
        let h = other_hint.clone();
        assert_eq!(
            code(
                &edit(&b, move |v| v["dsseEnvelope"]["signatures"][0]["keyid"] =
                    h.clone().into()),
                &keys
            ),
            "keyid-mismatch"
        );
        // Empty keyid is allowed (it names nothing).
        verify_bundle(
            edit(&b, |v| {
                v["dsseEnvelope"]["signatures"][0]["keyid"] = "".into()
            })
            .as_bytes(),
            &keys,
        )
        .unwrap();
        // Payload altered: different statement, same signature.
        let forged = sign_statement(&other, &tests(TestOutcome::Passed)).unwrap();
        let fv: serde_json::Value = serde_json::from_str(&forged).unwrap();
        let p = fv["dsseEnvelope"]["payload"].clone();
        assert_eq!(
            code(
                &edit(&b, move |v| v["dsseEnvelope"]["payload"] = p.clone()),
                &keys
            ),
            "signature-invalid"
        );
        // Payload type swapped under the signature.
        assert_eq!(
            code(
                &edit(&b, |v| v["dsseEnvelope"]["payloadType"] =
                    "text/plain".into()),
                &keys
            ),
            "payload-type-unsupported"
        );
    }

    #[test]
    fn no_single_byte_mutation_verifies() {
        let k = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let keys = [k.public_key().clone()];
        let b = sign_statement(&k, &tests(TestOutcome::Passed))
            .unwrap()
            .into_bytes();
        verify_bundle(&b, &keys).unwrap();
        for i in 0..b.len() {
            for replacement in [b'A', b'"', b'0'] {
                if b[i] == replacement {
                    continue;
                }
                let mut m = b.clone();
                m[i] = replacement;
                assert!(
                    verify_bundle(&m, &keys).is_err(),
                    "mutation at {i} verified: {}",
                    String::from_utf8_lossy(&m)
                );
            }
        }
    }

    /// Fuzz finding (tests/it/fuzz_smoke.rs, bundle target): `check_age` panicked with
    /// "`DateTime + TimeDelta` overflowed" for an extreme `skew`. The hook passes 300 s, so the
    /// hook was not affected; the public function now answers instead of panicking.
    #[test]
    fn fuzz_check_age_extreme_skew_does_not_overflow() {
        let k = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let b = sign_statement(&k, &provenance()).unwrap();
        let att = verify_bundle(b.as_bytes(), &[k.public_key().clone()]).unwrap();
        let now = at("2026-01-02T00:00:00Z");
        assert_eq!(check_age(&att, Duration::MAX, Duration::MAX, now), Ok(()));
        assert!(matches!(
            check_age(&att, Duration::MAX, Duration::MIN, now),
            Err(VerifyError::TimeInFuture { .. })
        ));
        assert!(matches!(
            check_age(&att, Duration::seconds(1), Duration::seconds(300), now),
            Err(VerifyError::TooOld { .. })
        ));
    }

    #[test]
    fn signed_garbage_is_not_a_statement() {
        let k = SigningKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let keys = [k.public_key().clone()];
        let sign_raw = |payload: &[u8]| {
            let sig = k.sign(&pae(PAYLOAD_TYPE_INTOTO, payload)).unwrap();
            crate::bundle::key_bundle_json(
                k.public_key().hint(),
                PAYLOAD_TYPE_INTOTO,
                payload,
                &sig,
            )
        };
        let code = |p: &[u8]| {
            verify_bundle(sign_raw(p).as_bytes(), &keys)
                .unwrap_err()
                .code()
                .as_str()
        };
        assert_eq!(code(b"nope"), "statement-malformed");
        assert_eq!(
            code(br#"{"_type":"a","_type":"b","subject":[],"predicateType":"p"}"#),
            "statement-malformed"
        );
        assert_eq!(code(br#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[],"predicateType":"p"}"#), "statement-type-unsupported");
    }
}
