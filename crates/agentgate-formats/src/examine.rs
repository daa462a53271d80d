//! What `agentgate verify` does with one bundle of any kind, as `cosign verify-blob` and
//! `cosign verify-blob-attestation` would: a message signature or a DSSE envelope with an in-toto
//! statement (v0.1 or v1), signed with a trusted key or by a keyless identity, then the
//! agentgate checks (commit binding, predicate, test result) where the statement is agentgate's
//! or a commit was asked for. The answer is a list of named checks, each passed, failed, not
//! applicable or not run, so that a release manager is told what was and was not checked.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::keys::PublicKey;
use crate::reason::{AttestationCode, VerifyError};
use crate::sigstore::{self, ArtifactInput, IdentityMatch, ManagedKey, SignerPolicy, TrustedRoot};
use crate::statement::{
    bound_provenances, Statement, TestOutcome, BUILD_TYPE_GATE_V1, BUILD_TYPE_SIGN_V1,
    DIGEST_GIT_COMMIT, DIGEST_SHA256, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT_V01,
};
use crate::verify::{
    self, check_artifact, check_commit, check_tests_passed, declared_source,
    parse_statement_any_version, test_result_provenances, VerifiedAttestation, VerifiedSigner,
};

/// One key a release manager trusts, as given (`--key FILE`).
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// How the key is named in reports (its file).
    pub label: String,
    /// The key for Sigstore bundles signed with a managed key (any SPKI Sigstore verifies).
    pub managed: ManagedKey,
    /// The same key as agentgate signs with, when it is of such an algorithm: agentgate's own
    /// key bundles (no transparency log entry) are verified with it, as the hook does.
    pub agentgate: Option<PublicKey>,
}

/// Whom a release manager trusts.
#[derive(Debug)]
pub struct Trust {
    /// Trusted keys.
    pub keys: Vec<TrustedKey>,
    /// A keyless identity: the OIDC issuer and the certificate identity.
    pub identity: Option<(String, IdentityMatch)>,
    /// The trusted root for certificates, transparency logs and timestamps.
    pub root: TrustedRoot,
}

/// The artifact a bundle must be about.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// Its SHA-256 (hashed once by the caller).
    pub sha256: [u8; 32],
    /// The file, when one was given (read again only for Ed25519 message signatures).
    pub path: Option<PathBuf>,
}

impl Artifact {
    fn hex(&self) -> String {
        hex::encode(self.sha256)
    }

    fn input(&self) -> ArtifactInput {
        match &self.path {
            Some(path) => ArtifactInput::File {
                path: path.clone(),
                sha256: self.sha256,
            },
            None => ArtifactInput::Sha256(self.sha256),
        }
    }
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    Failed,
    /// The check does not apply to this bundle (a key-based bundle has no certificate).
    NotApplicable,
    /// An earlier check failed, so this one was not run.
    NotRun,
}

impl Status {
    /// The word reports use.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "ok",
            Status::Failed => "FAILED",
            Status::NotApplicable => "n/a",
            Status::NotRun => "not run",
        }
    }
}

/// One check and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Its stable name: one of [`CHECKS`].
    pub check: &'static str,
    pub status: Status,
    /// What was found (or why it does not apply).
    pub detail: String,
}

/// Every check, in the order they run.
pub const CHECKS: &[&str] = &[
    "signature",
    "certificate",
    "transparency-log",
    "timestamps",
    "artifact",
    "statement",
    "commit",
    "predicate",
    "test-result",
];

/// Who signed a bundle that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// A trusted key (its label, and the hint cosign computes).
    Key { label: String, hint: String },
    /// A keyless identity.
    Identity { identity: String, issuer: String },
}

/// What one bundle came to.
#[derive(Debug, Clone)]
pub struct Examined {
    /// Every check of [`CHECKS`], in order.
    pub checks: Vec<Check>,
    /// Ok, or the first failure's code and sentence.
    pub outcome: Result<(), (AttestationCode, String)>,
    /// Who signed it (when the signature verified).
    pub signer: Option<Signer>,
    /// The authenticated statement (DSSE bundles whose signature verified).
    pub statement: Option<Statement>,
    /// Hex SHA-256 of the signed statement bytes.
    pub payload_sha256: Option<String>,
    /// The bundle's media type, as it says (not signed).
    pub media_type: Option<String>,
    /// The statement is agentgate's (a gate or sign provenance, or a test result naming its
    /// provenance).
    pub agentgate: bool,
    /// The commit the statement binds (its declared source, or its gitCommit subject).
    pub commit: Option<String>,
    /// The test result the statement records, when it records one.
    pub test_result: Option<TestOutcome>,
}

impl Examined {
    /// Whether every check that applied passed.
    pub fn verified(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// The checks as they go: each one is recorded once, the rest marked "not run" on failure.
struct Run {
    checks: Vec<Check>,
    out: Examined,
}

/// A failed check: its code and sentence.
type Fail = (AttestationCode, String);

impl Run {
    fn new() -> Run {
        Run {
            checks: Vec::new(),
            out: Examined {
                checks: Vec::new(),
                outcome: Ok(()),
                signer: None,
                statement: None,
                payload_sha256: None,
                media_type: None,
                agentgate: false,
                commit: None,
                test_result: None,
            },
        }
    }

    fn record(&mut self, check: &'static str, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            check,
            status,
            detail: detail.into(),
        });
    }

    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.record(check, Status::Passed, detail);
    }

    fn not_applicable(&mut self, check: &'static str, detail: impl Into<String>) {
        self.record(check, Status::NotApplicable, detail);
    }

    /// The report: every check in [`CHECKS`] order, unrecorded ones "not run" (after a
    /// failure) and the failure, if any, as the outcome.
    fn finish(mut self, failure: Option<(&'static str, Fail)>) -> Examined {
        if let Some((check, (code, message))) = &failure {
            self.record(check, Status::Failed, format!("[{code}] {message}"));
        }
        let mut checks = Vec::new();
        for name in CHECKS {
            match self.checks.iter().position(|c| c.check == *name) {
                Some(i) => checks.push(self.checks.swap_remove(i)),
                None => checks.push(Check {
                    check: name,
                    status: Status::NotRun,
                    detail: "an earlier check failed".into(),
                }),
            }
        }
        self.out.checks = checks;
        self.out.outcome = match failure {
            Some((_, fail)) => Err(fail),
            None => Ok(()),
        };
        self.out
    }
}

fn fail(e: &VerifyError) -> Fail {
    (e.code(), e.to_string())
}

/// An error and its sources, each once (the crates often repeat their source in their message).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The shape of a bundle, read without trusting anything in it: which path verifies it.
struct Shape {
    media_type: Option<String>,
    /// Signed with a key (`publicKey`), not a certificate.
    public_key: bool,
    key_hint: Option<String>,
    certificate: bool,
    dsse: bool,
    log_entries: usize,
    timestamps: usize,
}

/// The value at `path` in `v`, or null: JSON read without indexing.
fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    static NULL: Value = Value::Null;
    path.iter()
        .try_fold(v, |v, key| v.get(*key))
        .unwrap_or(&NULL)
}

fn shape(bundle: &[u8]) -> Result<Shape, Fail> {
    let v: Value = serde_json::from_slice(bundle).map_err(|e| {
        (
            AttestationCode::BundleMalformed,
            format!("the bundle is not JSON: {e}"),
        )
    })?;
    let material = at(&v, &["verificationMaterial"]);
    let count = |v: &Value| v.as_array().map_or(0, Vec::len);
    Ok(Shape {
        media_type: at(&v, &["mediaType"]).as_str().map(str::to_string),
        public_key: material.get("publicKey").is_some(),
        key_hint: at(material, &["publicKey", "hint"])
            .as_str()
            .map(str::to_string),
        certificate: material.get("certificate").is_some()
            || material.get("x509CertificateChain").is_some(),
        dsse: v.get("dsseEnvelope").is_some(),
        log_entries: count(at(material, &["tlogEntries"])),
        timestamps: count(at(
            material,
            &["timestampVerificationData", "rfc3161Timestamps"],
        )),
    })
}

/// Which check a Sigstore refusal belongs to.
fn sigstore_check(e: &sigstore::SigstoreError) -> &'static str {
    use sigstore::SigstoreError as E;
    match e {
        E::Certificate(_)
        | E::CertificateChainShape(_)
        | E::IssuerMismatch { .. }
        | E::IdentityMismatch { .. } => "certificate",
        E::TransparencyLog(_)
        | E::MissingInclusionProof(_)
        | E::UnknownLog { .. }
        | E::LogOutsideValidity { .. } => "transparency-log",
        E::Timestamp(_) => "timestamps",
        E::ArtifactMismatch(_) => "artifact",
        E::DsseShape(_) => "statement",
        _ => "signature",
    }
}

/// Examine one bundle: authenticate it (by its kind), bind it to the artifact, read its
/// statement, then the agentgate checks. `commit` is the commit it must bind, when one was asked
/// for (`--commit`, or the commit whose note it came from).
pub fn examine(
    bundle: &[u8],
    trust: &Trust,
    artifact: &Artifact,
    commit: Option<&str>,
) -> Examined {
    let mut run = Run::new();
    let failure = examine_into(&mut run, bundle, trust, artifact, commit).err();
    run.finish(failure)
}

fn examine_into(
    run: &mut Run,
    bundle: &[u8],
    trust: &Trust,
    artifact: &Artifact,
    commit: Option<&str>,
) -> Result<(), (&'static str, Fail)> {
    let shape = shape(bundle).map_err(|f| ("signature", f))?;
    run.out.media_type = shape.media_type.clone();

    // Authentication: the payload (DSSE) or nothing (a message signature bound to the artifact
    // by the crate).
    let payload = if shape.public_key && shape.dsse && shape.log_entries == 0 {
        key_bundle(run, bundle, trust, &shape)?
    } else {
        sigstore_bundle(run, bundle, trust, artifact, &shape)?
    };

    let Some(payload) = payload else {
        run.not_applicable("statement", "a message signature: no statement");
        if let Some(c) = commit {
            let e = VerifyError::CommitMismatch {
                expected: c.to_string(),
                found: "no commit (a message signature signs the artifact only)".into(),
            };
            return Err(("commit", fail(&e)));
        }
        for check in ["commit", "predicate", "test-result"] {
            run.not_applicable(check, "a message signature: no statement");
        }
        return Ok(());
    };
    statement_checks(run, &payload, artifact, commit)
}

/// agentgate's own key bundles (DSSE, a key hint, no log entry): verified as the hook does.
fn key_bundle(
    run: &mut Run,
    bundle: &[u8],
    trust: &Trust,
    shape: &Shape,
) -> Result<Option<Vec<u8>>, (&'static str, Fail)> {
    let (labels, keys): (Vec<&str>, Vec<PublicKey>) = trust
        .keys
        .iter()
        .filter_map(|k| Some((k.label.as_str(), k.agentgate.clone()?)))
        .unzip();
    if trust.keys.is_empty() {
        return Err((
            "signature",
            (
                AttestationCode::NoTrustedKeys,
                "the bundle is signed with a key, and no --key was given".into(),
            ),
        ));
    }
    if keys.is_empty() {
        return Err((
            "signature",
            (
                AttestationCode::NoTrustedKeys,
                "a key bundle without a log entry is verified only with a key of an algorithm agentgate signs with (ECDSA P-256, Ed25519), and no --key is one".into(),
            ),
        ));
    }
    let signed =
        verify::verify_key_signature(bundle, &keys).map_err(|e| ("signature", fail(&e)))?;
    let label = labels.get(signed.index).copied().unwrap_or_default();
    run.pass(
        "signature",
        format!(
            "DSSE signature by trusted key {label} (hint {})",
            signed.hint
        ),
    );
    run.out.signer = Some(Signer::Key {
        label: label.to_string(),
        hint: signed.hint.clone(),
    });
    run.not_applicable("certificate", "signed with a key, not a certificate");
    run.not_applicable(
        "transparency-log",
        "no log entry (an agentgate key bundle: the key alone is trusted, as by the hook)",
    );
    if shape.timestamps > 0 {
        run.not_applicable(
            "timestamps",
            format!(
                "{} RFC 3161 timestamp(s) present, not used: a key-based bundle is not checked for time",
                shape.timestamps
            ),
        );
    } else {
        run.not_applicable("timestamps", "none in the bundle");
    }
    Ok(Some(signed.payload))
}

/// Any other bundle: Sigstore verification with each trusted key (the hint's key first) or the
/// keyless identity, under the trusted root.
fn sigstore_bundle(
    run: &mut Run,
    bundle: &[u8],
    trust: &Trust,
    artifact: &Artifact,
    shape: &Shape,
) -> Result<Option<Vec<u8>>, (&'static str, Fail)> {
    let mut policies: Vec<(SignerPolicy, Option<&TrustedKey>)> = Vec::new();
    if shape.certificate {
        let Some((issuer, identity)) = &trust.identity else {
            return Err(("signature", fail(&VerifyError::NotKeyBased)));
        };
        policies.push((
            SignerPolicy::Identity {
                issuer: issuer.clone(),
                identity: identity.clone(),
            },
            None,
        ));
    } else {
        if trust.keys.is_empty() {
            return Err((
                "signature",
                (
                    AttestationCode::NoTrustedKeys,
                    "the bundle is signed with a key, and no --key was given".into(),
                ),
            ));
        }
        // The hint is unsigned: it orders the attempts, it never excludes a key.
        let mut keys: Vec<&TrustedKey> = trust.keys.iter().collect();
        keys.sort_by_key(|k| Some(k.managed.hint()) != shape.key_hint);
        for k in keys {
            policies.push((SignerPolicy::Key(k.managed.clone()), Some(k)));
        }
    }
    let input = artifact.input();
    let mut first_error = None;
    let mut verified = None;
    for (policy, key) in &policies {
        match sigstore::verify(bundle, &input, policy, &trust.root) {
            Ok(v) => {
                verified = Some((v, *key));
                break;
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                }
            }
        }
    }
    let Some((v, key)) = verified else {
        let Some(e) = first_error else {
            return Err(("signature", fail(&VerifyError::NoTrustedKeys)));
        };
        let detail = error_chain(&e);
        return Err((sigstore_check(&e), (e.code(), detail)));
    };

    let ev = &v.evidence;
    let content = if v.payload.is_some() {
        "DSSE signature"
    } else {
        "message signature"
    };
    match key {
        Some(k) => {
            run.pass(
                "signature",
                format!("{content} by trusted key {} (hint {})", k.label, v.signer),
            );
            run.out.signer = Some(Signer::Key {
                label: k.label.clone(),
                hint: v.signer.clone(),
            });
            run.not_applicable("certificate", "signed with a key, not a certificate");
        }
        None => {
            let issuer = v.issuer.clone().unwrap_or_default();
            run.pass("signature", format!("{content} by the certificate's key"));
            run.pass(
                "certificate",
                format!(
                    "chains to a Fulcio CA of the trusted root at every signing time, SCT verified; identity {}{} issued by {issuer}",
                    v.signer,
                    if ev.identity_from_other_name {
                        " (otherName SAN)"
                    } else {
                        ""
                    },
                ),
            );
            run.out.signer = Some(Signer::Identity {
                identity: v.signer.clone(),
                issuer,
            });
        }
    }
    let entries: Vec<String> = ev
        .log_entries
        .iter()
        .map(|e| {
            let time = match e.integrated_time {
                Some(t) => format!(", SET, integrated {}", t.to_rfc3339()),
                None => String::new(),
            };
            format!(
                "{} at index {} ({}: inclusion proof, checkpoint{time})",
                e.kind,
                e.log_index,
                if e.rekor_v2 { "Rekor v2" } else { "Rekor v1" }
            )
        })
        .collect();
    run.pass("transparency-log", entries.join("; "));
    let mut times = format!(
        "{} RFC 3161 timestamp(s) verified by a TSA of the trusted root",
        ev.timestamps_verified
    );
    if !ev.timestamps_set_aside.is_empty() {
        times.push_str(&format!(
            "; set aside (not counted): {}",
            ev.timestamps_set_aside.join("; ")
        ));
    }
    if ev.timestamps_verified == 0 && ev.timestamps_set_aside.is_empty() {
        run.not_applicable("timestamps", "none in the bundle (the log's time is used)");
    } else {
        run.pass("timestamps", times);
    }
    match v.payload {
        None => {
            run.pass(
                "artifact",
                format!("sha256:{} is the signed message digest", artifact.hex()),
            );
            Ok(None)
        }
        Some((_, payload)) => Ok(Some(payload)),
    }
}

/// The statement, the artifact among its subjects, then the agentgate checks.
fn statement_checks(
    run: &mut Run,
    payload: &[u8],
    artifact: &Artifact,
    commit: Option<&str>,
) -> Result<(), (&'static str, Fail)> {
    let statement = parse_statement_any_version(payload).map_err(|e| ("statement", fail(&e)))?;
    let att = VerifiedAttestation {
        signer: VerifiedSigner::Key {
            index: 0,
            hint: String::new(),
        },
        payload_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(payload)),
        statement,
    };
    run.out.payload_sha256 = Some(att.payload_sha256.clone());
    run.out.statement = Some(att.statement.clone());
    let st = &att.statement;

    // The artifact is a subject (for Sigstore bundles the crate checked it too).
    let digest = artifact.hex();
    check_artifact(&att, &digest).map_err(|e| ("artifact", fail(&e)))?;
    let names: Vec<&str> = st
        .subjects_with_digest(DIGEST_SHA256, &digest)
        .filter_map(|s| s.name.as_deref())
        .collect();
    run.pass(
        "artifact",
        format!("sha256:{digest} is a subject ({})", names.join(", ")),
    );
    run.pass(
        "statement",
        format!("{}, predicate {}", st.type_, st.predicate_type),
    );

    let agentgate = is_agentgate(st);
    run.out.agentgate = agentgate;
    let is_provenance = st.predicate_type == PREDICATE_SLSA_PROVENANCE_V1;
    let is_test_result = st.predicate_type == PREDICATE_TEST_RESULT_V01;

    // Commit binding.
    let bound = bound_commit(&att);
    run.out.commit = bound.clone();
    match (commit, agentgate) {
        (Some(c), _) => {
            check_commit(&att, c).map_err(|e| ("commit", fail(&e)))?;
            run.pass("commit", format!("binds {c}, the commit asked for"));
            run.out.commit = Some(c.to_ascii_lowercase());
        }
        (None, true) => {
            if is_provenance {
                let p = match st.provenance() {
                    Some(Ok(p)) => p,
                    _ => {
                        return Err((
                            "commit",
                            fail(&VerifyError::PredicateMalformed {
                                predicate_type: st.predicate_type.clone(),
                                message: "not SLSA provenance v1".into(),
                            }),
                        ))
                    }
                };
                declared_source(&p).map_err(|e| ("commit", fail(&e)))?;
            }
            run.pass(
                "commit",
                format!(
                    "binds {} (not compared: no --commit or --note)",
                    bound.as_deref().unwrap_or("no commit")
                ),
            );
        }
        (None, false) => run.not_applicable(
            "commit",
            "not an agentgate statement and no commit asked for (--commit, --note)",
        ),
    }

    // The predicate.
    if agentgate && is_provenance {
        let p = st.provenance().and_then(Result::ok).ok_or_else(|| {
            (
                "predicate",
                fail(&VerifyError::PredicateMalformed {
                    predicate_type: st.predicate_type.clone(),
                    message: "not SLSA provenance v1".into(),
                }),
            )
        })?;
        run.pass(
            "predicate",
            format!(
                "SLSA provenance v1: builder {}, buildType {}",
                p.run_details.builder.id, p.build_definition.build_type
            ),
        );
    } else if agentgate && is_test_result {
        let named = test_result_provenances(&att).map_err(|e| ("predicate", fail(&e)))?;
        run.pass(
            "predicate",
            format!(
                "test result v0.1 naming its run's provenance (sha256:{})",
                named.join(", sha256:")
            ),
        );
    } else {
        run.not_applicable(
            "predicate",
            format!(
                "{} is not an agentgate predicate: its content is not checked (--print-statement shows it)",
                st.predicate_type
            ),
        );
    }

    // The test result.
    if is_test_result {
        let outcome = st.test_result().and_then(Result::ok).map(|r| r.result);
        run.out.test_result = outcome;
        check_tests_passed(&att).map_err(|e| ("test-result", fail(&e)))?;
        run.pass("test-result", "PASSED (the test-result statement)");
    } else if agentgate {
        let recorded = recorded_test_result(st);
        run.out.test_result = recorded;
        match recorded {
            Some(TestOutcome::Passed) => {
                run.pass("test-result", "PASSED (recorded in the provenance)")
            }
            Some(TestOutcome::Warned) => {
                return Err(("test-result", fail(&VerifyError::TestsWarned)))
            }
            Some(TestOutcome::Failed) => {
                return Err((
                    "test-result",
                    (
                        AttestationCode::TestsFailed,
                        "the provenance records the test result FAILED".into(),
                    ),
                ))
            }
            None => {
                return Err((
                    "test-result",
                    fail(&VerifyError::TestResultUnbound(
                        "is not recorded in the provenance (buildDefinition.internalParameters.testResult or externalParameters.testResult)".into(),
                    )),
                ))
            }
        }
    } else {
        run.not_applicable("test-result", "not an agentgate statement");
    }
    Ok(())
}

/// agentgate's statements: a provenance of `agentgate gate` or `agentgate sign`, or a test
/// result that names the provenance of its run.
pub fn is_agentgate(st: &Statement) -> bool {
    match st.predicate_type.as_str() {
        PREDICATE_SLSA_PROVENANCE_V1 => {
            let bt = at(&st.predicate, &["buildDefinition", "buildType"]).as_str();
            bt == Some(BUILD_TYPE_GATE_V1) || bt == Some(BUILD_TYPE_SIGN_V1)
        }
        PREDICATE_TEST_RESULT_V01 => st
            .test_result()
            .and_then(Result::ok)
            .is_some_and(|r| !bound_provenances(&r).is_empty()),
        _ => false,
    }
}

/// The test result an agentgate provenance records for its run: the gate's in
/// `internalParameters.testResult`, `sign`'s in `externalParameters.testResult`.
fn recorded_test_result(st: &Statement) -> Option<TestOutcome> {
    let def = at(&st.predicate, &["buildDefinition"]);
    let text = at(def, &["internalParameters", "testResult"])
        .as_str()
        .or_else(|| at(def, &["externalParameters", "testResult"]).as_str())?;
    serde_json::from_value(Value::String(text.to_string())).ok()
}

/// The commit a statement binds, for reports: a provenance's declared source, else the one
/// gitCommit subject.
fn bound_commit(att: &VerifiedAttestation) -> Option<String> {
    if let Some(Ok(p)) = att.statement.provenance() {
        return declared_source(&p).ok().map(|s| s.commit);
    }
    let mut commits = att
        .statement
        .subject
        .iter()
        .filter_map(|s| s.digest.get(DIGEST_GIT_COMMIT));
    let first = commits.next()?;
    commits.next().is_none().then(|| first.to_ascii_lowercase())
}
