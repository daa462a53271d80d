//! The hook's answer to "is this commit attested?": gather candidate bundles (the git note on
//! the commit, and on its tree with `bind = "tree"`, from the notes commit the push sets or the
//! current notes ref; plus the bundles of the policy's `attestations_dir` that name the commit),
//! verify each against the policy's signers, and admit the commit only if enough distinct
//! signers (`threshold`) each cover every required predicate type with bundles that passed
//! every check. Each candidate's fate is reported, so a refused pusher sees why.
//!
//! What a bundle must satisfy, beyond its signature: it binds the commit (a provenance by the
//! source it declares, any other statement by a `gitCommit` subject; the tree with
//! `bind = "tree"`); it has a `sha256` artifact subject; a provenance claims the `builder_id`
//! and `build_type` its signer is constrained to; a test result is `PASSED` and names a
//! provenance of its own run that is valid here, signed by the same signer; it is within
//! `max_age`.
//!
//! Work per push: the notes tree is indexed once (object id -> note blob) and the
//! `attestations_dir` once (gitCommit/gitTree -> bundles, read without verifying), each on
//! first use; after that a commit costs only its own candidates.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use agentgate_formats::approval::{
    APPROVAL_RESULT, PREDICATE_APPROVAL_V01, PREDICATE_BREAK_GLASS_V01,
};
use agentgate_formats::sigstore::{ArtifactInput, SignerPolicy};
use agentgate_formats::statement::{DIGEST_GIT_COMMIT, DIGEST_GIT_TREE};
use agentgate_formats::verify::{
    self as v, SigstoreAttestationError, VerifiedAttestation, VerifiedSigner, VerifyError,
};
use agentgate_formats::{AttestationCode, PublicKey};
use agentgate_git::{NotesError, ObjectId, ObjectKind, ReadError, RefError, Repo};

use crate::config::{
    Bind, Policy, Signer, SignerKind, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT_V01,
};
use crate::decision::RefUpdate;

/// One attestation looked at for one commit, and what came of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttestationReport {
    /// The commit the attestation was needed for.
    pub commit: ObjectId,
    /// Where it was found (`refs/notes/agentgate@<notes commit>:<line>` or a file path).
    pub source: String,
    /// `ok` when it admitted the commit, else the stable code of why not.
    pub result: AttestationCode,
    /// The signer that admitted it, or the reason it failed.
    pub detail: String,
    /// `sha256:<hex>` of the bundle's bytes (the note line or file), when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The policy's name for the signer it verified for (`ok` results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// Its predicate type (`ok` results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    /// It counted towards admitting its commit: an `ok` bundle of a commit that was admitted.
    /// These are the promotion record's input attestations.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub admitted: bool,
}

impl AttestationReport {
    /// The fields a report about no bundle in particular leaves empty (spread after its own).
    fn note() -> AttestationReport {
        AttestationReport {
            commit: ObjectId::zero(20),
            source: String::new(),
            result: AttestationCode::Ok,
            detail: String::new(),
            digest: None,
            signer: None,
            predicate_type: None,
            admitted: false,
        }
    }
}

/// The answer to "is this commit attested?".
pub struct AttestationVerdict {
    pub admitted: bool,
    pub examined: Vec<AttestationReport>,
}

/// Why attestations could not be looked at (the push is refused).
#[derive(Debug, thiserror::Error)]
pub enum AttestationsError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Notes(#[from] NotesError),
    #[error(transparent)]
    Refs(#[from] RefError),
    #[error("cannot read the attestations directory {path}")]
    Dir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A commit that needs an attestation: what an attestation can bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRef {
    pub id: ObjectId,
    pub tree: ObjectId,
}

/// Where attestations come from; the hook asks once per commit that needs one.
pub trait AttestationSource {
    fn check(&self, commit: &CommitRef) -> Result<AttestationVerdict, AttestationsError>;
    /// A cheap check (nothing is verified) that is true whenever `check` could admit the
    /// commit: some candidate attestation exists for it. Never false when `check` could say
    /// admitted; the default (always true) is the safe answer for sources that cannot tell.
    fn may_have(&self, commit: &CommitRef) -> Result<bool, AttestationsError> {
        let _ = commit;
        Ok(true)
    }
    /// Where it looks, for messages ("refs/notes/agentgate").
    fn describe(&self) -> String;
    /// The approvals that count for `commit` (the policy's `[[approver]]`s). None by default:
    /// a source that cannot tell approves nothing.
    fn approvals(
        &self,
        commit: &CommitRef,
        people: &CommitPeople,
    ) -> Result<ApprovalVerdict, AttestationsError> {
        let _ = (commit, people);
        Ok(ApprovalVerdict::default())
    }
    /// A valid break-glass override of exactly `update` (whose new value peels to
    /// `new_commit`). None by default.
    fn break_glass(
        &self,
        update: &RefUpdate,
        new_commit: &CommitRef,
    ) -> Result<BreakGlassVerdict, AttestationsError> {
        let _ = (update, new_commit);
        Ok(BreakGlassVerdict::default())
    }
}

/// Who wrote a commit, as far as `distinct_from_author` cares.
#[derive(Debug, Clone)]
pub struct CommitPeople {
    pub author_email: String,
    pub committer_email: String,
}

/// The approvals of one commit: the approvers that count (indexes in the policy's
/// `[[approver]]` list, each once), and every candidate examined.
#[derive(Debug, Default)]
pub struct ApprovalVerdict {
    pub approvers: Vec<usize>,
    pub examined: Vec<AttestationReport>,
}

/// A break-glass override that admitted an update.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BreakGlassUse {
    /// Where it was found.
    pub source: String,
    /// The policy's name for the break-glass key.
    pub signer: String,
    pub reason: String,
    /// Who says they broke the glass (their own words, signed).
    pub issuer: agentgate_formats::approval::Person,
    pub issued_at: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// The answer to "is there a valid override for this update?".
#[derive(Debug, Default)]
pub struct BreakGlassVerdict {
    pub used: Option<BreakGlassUse>,
    pub examined: Vec<AttestationReport>,
}

/// Where the hook looks for attestations: the notes commit `notes` (the value the push itself
/// sets for the notes ref, or its current value) and the policy's `attestations_dir`, checked
/// as of `now`.
pub fn attestation_source<'a>(
    repo: &'a Repo,
    policy: &'a Policy,
    notes: Option<ObjectId>,
    now: DateTime<Utc>,
) -> Result<Box<dyn AttestationSource + 'a>, AttestationsError> {
    Ok(Box::new(PolicyAttestations::new(repo, policy, notes, now)?))
}

/// The notes commit attestations are read from: the new value when this push updates the notes
/// ref (its objects are in the quarantine), else the ref's current value.
pub fn notes_commit(
    repo: &Repo,
    policy: &Policy,
    updates: &[RefUpdate],
) -> Result<Option<ObjectId>, RefError> {
    let name = &policy.attest.notes_ref;
    if let Some(u) = updates.iter().find(|u| &u.refname == name) {
        return Ok((!u.new.is_zero()).then(|| u.new.clone()));
    }
    repo.ref_target(name)
}

/// The result of a candidate that passed (for matching reports).
pub const OK: AttestationCode = AttestationCode::Ok;

/// Bundles larger than this are refused unread (`bundle-too-large`); real ones are a few KiB.
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;
/// At most this many of a commit's own candidates are examined, newest first (a note is
/// appended to, so the gate's latest bundles are at its end).
pub const MAX_CANDIDATES: usize = 512;
/// Files in `attestations_dir` larger than this are refused.
const MAX_DIR_FILE_BYTES: u64 = 64 << 20;
/// How far in the future a signer's clock may be.
const CLOCK_SKEW_SECS: i64 = 300;

/// Why a candidate failed: its stable code and a sentence.
struct Failure {
    code: AttestationCode,
    detail: String,
}

impl Failure {
    fn new(code: AttestationCode, detail: impl Into<String>) -> Failure {
        Failure {
            code,
            detail: detail.into(),
        }
    }
}

impl From<VerifyError> for Failure {
    fn from(e: VerifyError) -> Failure {
        Failure::new(e.code(), e.to_string())
    }
}

/// A bundle whose signature checked out for the signer at `signer` (its index in the policy),
/// whose provenance (if it is one) claims what that signer is constrained to.
struct Authenticated {
    signer: usize,
    att: VerifiedAttestation,
}

/// A bundle that passed every check of its own.
struct Passed {
    signer: usize,
    predicate_type: String,
    /// Hex SHA-256 of the signed statement: what a test result names its provenance by.
    payload_sha256: String,
    /// For a test result: the provenances it names as its run's.
    needs_provenance: Option<Vec<String>>,
}

/// One candidate bundle and where it came from.
struct Candidate<'a> {
    source: Cow<'a, str>,
    bytes: Cow<'a, [u8]>,
    /// The size of a file too large to read.
    oversize: Option<u64>,
}

/// One bundle of `attestations_dir`.
struct DirBundle {
    source: String,
    bytes: Vec<u8>,
}

/// `attestations_dir`, read once: every bundle, and which bundles name which object ids.
#[derive(Default)]
struct DirIndex {
    bundles: Vec<DirBundle>,
    /// Lower-case hex of every `gitCommit` and `gitTree` digest a bundle's statement holds
    /// (subjects, dependencies, anywhere), read without verifying -> indices into `bundles`.
    /// A superset of what a bundle can bind, so no bundle is out of reach of its commit.
    by_id: HashMap<String, Vec<usize>>,
    /// Files too large to read: they name no commit we know of, so every commit reports them.
    oversize: Vec<(String, u64)>,
}

pub struct PolicyAttestations<'a> {
    repo: &'a Repo,
    policy: &'a Policy,
    notes: Option<ObjectId>,
    /// The notes tree as an index (annotated object id -> note blob), on first use.
    notes_index: OnceLock<HashMap<String, ObjectId>>,
    /// `attestations_dir`, indexed on first use.
    dir: OnceLock<DirIndex>,
    /// The key-based signers' keys, and for each the index of its signer in the policy.
    keys: Vec<PublicKey>,
    key_signers: Vec<usize>,
    /// The approvers' and the break-glass key's trust, as the signers' above.
    approvers: Trusted,
    break_glass: Trusted,
    detector: crate::detect::Detector,
    now: DateTime<Utc>,
}

/// Who may sign one kind of statement: names and keys or keyless identities, in policy order,
/// and the key-based ones' keys for [`v::verify_bundle`].
struct Trusted {
    names: Vec<String>,
    kinds: Vec<SignerKind>,
    keys: Vec<PublicKey>,
    /// For each key, its index in `names`.
    key_owner: Vec<usize>,
}

impl Trusted {
    fn new<'p>(list: impl Iterator<Item = (&'p str, &'p SignerKind)>) -> Trusted {
        let mut t = Trusted {
            names: vec![],
            kinds: vec![],
            keys: vec![],
            key_owner: vec![],
        };
        for (i, (name, kind)) in list.enumerate() {
            if let SignerKind::Key { key, .. } = kind {
                t.keys.push(key.clone());
                t.key_owner.push(i);
            }
            t.names.push(name.to_string());
            t.kinds.push(kind.clone());
        }
        t
    }

    /// The signature checked against these keys and identities only: which of them signed.
    fn authenticate(&self, bytes: &[u8]) -> Result<(usize, VerifiedAttestation), Failure> {
        if !is_certificate_bundle(bytes) {
            let att = v::verify_bundle(bytes, &self.keys)?;
            let VerifiedSigner::Key { index, .. } = att.signer() else {
                return Err(VerifyError::NotKeyBased.into());
            };
            let owner = *self.key_owner.get(*index).ok_or_else(|| {
                Failure::new(AttestationCode::UntrustedSigner, "no such trusted key")
            })?;
            return Ok((owner, att));
        }
        let subject = first_sha256_subject(bytes).ok_or_else(|| {
            Failure::new(
                AttestationCode::NoArtifactSubject,
                "the statement has no sha256 subject",
            )
        })?;
        let mut last = Failure::new(
            AttestationCode::UntrustedSigner,
            "no keyless identity is configured for this role",
        );
        for (index, kind) in self.kinds.iter().enumerate() {
            let SignerKind::Keyless {
                issuer,
                identity,
                root,
                ..
            } = kind
            else {
                continue;
            };
            let policy = SignerPolicy::Identity {
                issuer: issuer.clone(),
                identity: identity.clone(),
            };
            match v::verify_sigstore(bytes, &ArtifactInput::Sha256(subject), &policy, root) {
                Ok(att) => return Ok((index, att)),
                Err(SigstoreAttestationError::Statement(e)) => return Err(e.into()),
                Err(SigstoreAttestationError::Sigstore(e)) => {
                    last = Failure::new(
                        e.code(),
                        format!("{:?}: {e}", self.names.get(index).map_or("?", |n| n)),
                    )
                }
            }
        }
        Err(last)
    }
}

/// The predicate type a bundle's statement claims, not authenticated: only to tell which
/// check a candidate belongs to (gate attestation, approval or override). A bundle that lies
/// here only misses the check that could have admitted it.
fn claimed_predicate_type(bytes: &[u8]) -> Option<String> {
    let st: serde_json::Value = serde_json::from_slice(&unverified_payload(bytes)?).ok()?;
    st.get("predicateType")?.as_str().map(str::to_string)
}

/// Predicate types that are not gate attestations: examined by their own checks only.
fn is_human_statement(predicate_type: Option<&str>) -> bool {
    matches!(
        predicate_type,
        Some(PREDICATE_APPROVAL_V01 | PREDICATE_BREAK_GLASS_V01)
    )
}

impl<'a> PolicyAttestations<'a> {
    /// `notes` is the notes commit to read (the push's new value for the notes ref, or its
    /// current value); `now` is the decision time (recorded, so `audit verify` can replay it).
    pub fn new(
        repo: &'a Repo,
        policy: &'a Policy,
        notes: Option<ObjectId>,
        now: DateTime<Utc>,
    ) -> Result<Self, AttestationsError> {
        let (key_signers, keys): (Vec<usize>, Vec<PublicKey>) = policy
            .signers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.kind {
                SignerKind::Key { key, .. } => Some((i, key.clone())),
                SignerKind::Keyless { .. } => None,
            })
            .unzip();
        // The notes ref must name a commit: the notes reader reads a commit's `tree` header,
        // and a blob whose first line looks like one must not pass for a notes commit.
        if let Some(n) = &notes {
            match repo.object_kind(n)? {
                Some(ObjectKind::Commit) => {}
                Some(kind) => {
                    return Err(ReadError::NotACommit {
                        id: n.to_string(),
                        kind: kind.to_string(),
                    }
                    .into())
                }
                None => return Err(ReadError::NotFound(n.to_string()).into()),
            }
        }
        // A missing or unreadable directory refuses now; its bundles are read on first use, so
        // a push that needs no attestation does not pay for them.
        if let Some(d) = &policy.attest.attestations_dir {
            std::fs::read_dir(d).map_err(|source| AttestationsError::Dir {
                path: d.clone(),
                source,
            })?;
        }
        Ok(PolicyAttestations {
            repo,
            policy,
            notes,
            notes_index: OnceLock::new(),
            dir: OnceLock::new(),
            keys,
            key_signers,
            approvers: Trusted::new(policy.approvers.iter().map(|a| (a.name.as_str(), &a.kind))),
            break_glass: Trusted::new(
                policy
                    .break_glass
                    .iter()
                    .map(|b| (b.name.as_str(), &b.kind)),
            ),
            detector: crate::detect::Detector::new(&policy.detect),
            now,
        })
    }

    fn notes_index(&self) -> Result<Option<&HashMap<String, ObjectId>>, AttestationsError> {
        let Some(notes) = &self.notes else {
            return Ok(None);
        };
        if let Some(index) = self.notes_index.get() {
            return Ok(Some(index));
        }
        let index = self.repo.notes_index(notes)?;
        Ok(Some(self.notes_index.get_or_init(|| index)))
    }

    fn dir_index(&self) -> Result<Option<&DirIndex>, AttestationsError> {
        let Some(dir) = &self.policy.attest.attestations_dir else {
            return Ok(None);
        };
        if let Some(index) = self.dir.get() {
            return Ok(Some(index));
        }
        let index = DirIndex::read(dir)?;
        Ok(Some(self.dir.get_or_init(|| index)))
    }

    /// The ids an attestation for `commit` is filed under: the commit, and with
    /// `bind = "tree"` its tree.
    fn targets<'c>(&self, commit: &'c CommitRef) -> Vec<&'c ObjectId> {
        targets(commit, self.policy.attest.bind)
    }

    fn candidates(&self, commit: &CommitRef) -> Result<Vec<Candidate<'_>>, AttestationsError> {
        self.candidates_bound(commit, self.policy.attest.bind)
    }

    /// Every bundle filed under `commit` (and its tree with `bind = "tree"`): its notes' lines,
    /// newest first, and the `attestations_dir` bundles that name it.
    fn candidates_bound(
        &self,
        commit: &CommitRef,
        bind: Bind,
    ) -> Result<Vec<Candidate<'_>>, AttestationsError> {
        let mut out = Vec::new();
        if let (Some(notes), Some(index)) = (&self.notes, self.notes_index()?) {
            for target in targets(commit, bind) {
                let Some(blob) = index.get(target.as_str()) else {
                    continue;
                };
                let note = self.repo.read_raw(blob)?;
                let text = String::from_utf8_lossy(&note);
                let lines: Vec<(usize, &str)> = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| !l.trim().is_empty())
                    .collect();
                for (n, line) in lines.into_iter().rev() {
                    out.push(Candidate {
                        source: Cow::Owned(format!(
                            "{}@{}:{}:{}",
                            self.policy.attest.notes_ref,
                            notes.short(),
                            target.short(),
                            n + 1
                        )),
                        bytes: Cow::Owned(line.trim().as_bytes().to_vec()),
                        oversize: None,
                    });
                }
            }
        }
        if let Some(dir) = self.dir_index()? {
            // The directory's bundles are borrowed, not copied, for each commit; a bundle filed
            // under both the commit and its tree is one candidate.
            let mut named: Vec<usize> = targets(commit, bind)
                .into_iter()
                .filter_map(|t| dir.by_id.get(t.as_str()))
                .flatten()
                .copied()
                .collect();
            named.sort_unstable();
            named.dedup();
            out.extend(
                named
                    .into_iter()
                    .filter_map(|i| dir.bundles.get(i))
                    .map(|b| Candidate {
                        source: Cow::Borrowed(b.source.as_str()),
                        bytes: Cow::Borrowed(b.bytes.as_slice()),
                        oversize: None,
                    }),
            );
            out.extend(dir.oversize.iter().map(|(source, size)| Candidate {
                source: Cow::Borrowed(source.as_str()),
                bytes: Cow::Borrowed(&[][..]),
                oversize: Some(*size),
            }));
        }
        Ok(out)
    }

    /// Verify one candidate for `commit`, on its own (a test result's provenance is looked for
    /// afterwards, among the other candidates).
    fn examine(&self, commit: &CommitRef, bytes: &[u8]) -> Result<Passed, Failure> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Failure::new(
                AttestationCode::BundleTooLarge,
                format!("{} bytes (limit {MAX_BUNDLE_BYTES})", bytes.len()),
            ));
        }
        let Authenticated { signer, att } = self.authenticate(bytes)?;
        match self.policy.attest.bind {
            Bind::Commit => v::check_commit(&att, commit.id.as_str())?,
            Bind::Tree => v::check_tree(&att, commit.tree.as_str())
                .or_else(|_| v::check_commit(&att, commit.id.as_str()))?,
        }
        v::check_has_artifact(&att)?;
        let predicate_type = att.predicate_type().to_string();
        let needs_provenance = if predicate_type == PREDICATE_TEST_RESULT_V01 {
            v::check_tests_passed(&att)?;
            Some(v::test_result_provenances(&att)?)
        } else {
            None
        };
        if let Some(max_age) = self.policy.attest.max_age {
            self.check_age(&att, &predicate_type, max_age)?;
        }
        Ok(Passed {
            signer,
            predicate_type,
            payload_sha256: att.payload_sha256().to_string(),
            needs_provenance,
        })
    }

    /// `max_age`: keyless bundles by their authenticated signing time (Rekor / RFC 3161),
    /// key-based provenances by the signer's own clock, carried in the provenance. A key-based
    /// test result has no time of its own: it counts only next to its run's provenance, which
    /// is checked here.
    fn check_age(
        &self,
        att: &VerifiedAttestation,
        predicate_type: &str,
        max_age: std::time::Duration,
    ) -> Result<(), Failure> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
        match att.signed_time() {
            Some(at) => {
                if at > self.now + skew {
                    return Err(VerifyError::TimeInFuture { at }.into());
                }
                if self.now - at > max_age {
                    return Err(VerifyError::TooOld {
                        at,
                        max_age_secs: max_age.num_seconds(),
                    }
                    .into());
                }
            }
            None if predicate_type == PREDICATE_SLSA_PROVENANCE_V1 => {
                v::check_age(att, max_age, skew, self.now)?
            }
            None => {}
        }
        Ok(())
    }

    /// Check the signature against the trusted signers (key-based bundles against the keys,
    /// certificate bundles against each keyless signer's identity and trusted root), and a
    /// provenance's builder against that signer's constraints. A bundle belongs to at most one
    /// signer: the first in the policy it satisfies.
    fn authenticate(&self, bytes: &[u8]) -> Result<Authenticated, Failure> {
        if !is_certificate_bundle(bytes) {
            let att = v::verify_bundle(bytes, &self.keys)?;
            let VerifiedSigner::Key { index, .. } = att.signer() else {
                return Err(VerifyError::NotKeyBased.into());
            };
            let signer = *self.key_signers.get(*index).ok_or_else(|| {
                Failure::new(AttestationCode::UntrustedSigner, "no such trusted key")
            })?;
            constraints(self.signer(signer)?, &att)?;
            return Ok(Authenticated { signer, att });
        }
        // The hook has no artifact: verify the signature, certificate and log entries with the
        // statement's own first sha256 subject as the artifact (the signature covers the
        // statement, so this selects nothing an attacker controls), then check the statement.
        let subject = first_sha256_subject(bytes).ok_or_else(|| {
            Failure::new(
                AttestationCode::NoArtifactSubject,
                "the statement has no sha256 subject",
            )
        })?;
        let mut last = Failure::new(
            AttestationCode::UntrustedSigner,
            "no keyless signer is configured",
        );
        let mut constrained: Option<Failure> = None;
        for (index, signer) in self.policy.signers.iter().enumerate() {
            let SignerKind::Keyless {
                issuer,
                identity,
                root,
                ..
            } = &signer.kind
            else {
                continue;
            };
            let policy = SignerPolicy::Identity {
                issuer: issuer.clone(),
                identity: identity.clone(),
            };
            match v::verify_sigstore(bytes, &ArtifactInput::Sha256(subject), &policy, root) {
                Ok(att) => {
                    if let Err(e) = constraints(signer, &att) {
                        constrained.get_or_insert(Failure::new(
                            e.code(),
                            format!("signer {:?}: {e}", signer.name),
                        ));
                        continue;
                    }
                    return Ok(Authenticated { signer: index, att });
                }
                // It verified, and is no attestation: no other signer can make it one.
                Err(SigstoreAttestationError::Statement(VerifyError::NotDsse)) => {
                    return Err(Failure::new(
                        AttestationCode::BundleNotDsse,
                        "a message signature is not an attestation",
                    ))
                }
                // The same strict parse as key-based bundles: duplicate keys, another
                // statement type.
                Err(SigstoreAttestationError::Statement(e)) => return Err(e.into()),
                Err(SigstoreAttestationError::Sigstore(e)) => {
                    last = Failure::new(e.code(), format!("signer {:?}: {e}", signer.name))
                }
            }
        }
        Err(constrained.unwrap_or(last))
    }

    /// The policy's signer at `index` (indexes come from the policy's own list).
    fn signer(&self, index: usize) -> Result<&Signer, Failure> {
        self.policy.signers.get(index).ok_or_else(|| {
            Failure::new(
                AttestationCode::UntrustedSigner,
                "no such signer in the policy",
            )
        })
    }

    /// The signer's name, for messages.
    fn signer_name(&self, index: usize) -> &str {
        self.policy
            .signers
            .get(index)
            .map_or("?", |s| s.name.as_str())
    }

    /// Examine each candidate (at most [`MAX_CANDIDATES`], newest first) on its own.
    fn examine_all(
        &self,
        commit: &CommitRef,
        candidates: Vec<Candidate<'_>>,
    ) -> Vec<(String, Option<String>, Result<Passed, Failure>)> {
        candidates
            .into_iter()
            .take(MAX_CANDIDATES)
            .map(|c| {
                let (result, digest) = match c.oversize {
                    Some(size) => (
                        Err(Failure::new(
                            AttestationCode::BundleTooLarge,
                            format!("{size} bytes"),
                        )),
                        None,
                    ),
                    None => (
                        self.examine(commit, &c.bytes),
                        Some(crate::audit::line_digest(&c.bytes)),
                    ),
                };
                (c.source.into_owned(), digest, result)
            })
            .collect()
    }

    /// A test result counts only next to the provenance of its own run: signed by the same
    /// signer, valid for this commit in every respect (age included). The others fail here.
    fn bind_test_results(&self, results: &mut [(String, Option<String>, Result<Passed, Failure>)]) {
        let provenances: Vec<(usize, String)> = results
            .iter()
            .filter_map(|(_, _, r)| r.as_ref().ok())
            .filter(|p| p.predicate_type == PREDICATE_SLSA_PROVENANCE_V1)
            .map(|p| (p.signer, p.payload_sha256.clone()))
            .collect();
        for (_, _, result) in results {
            let unbound = match result {
                Ok(Passed {
                    signer,
                    needs_provenance: Some(bound),
                    ..
                }) if !bound
                    .iter()
                    .any(|d| provenances.iter().any(|(s, p)| s == signer && p == d)) =>
                {
                    Some(format!(
                        "names sha256:{} as the provenance of its run, and no valid provenance of signer {:?} for this commit has that digest",
                        bound.join(", sha256:"),
                        self.signer_name(*signer)
                    ))
                }
                _ => None,
            };
            if let Some(detail) = unbound {
                *result = Err(VerifyError::TestResultUnbound(detail).into());
            }
        }
    }

    /// The verdict: enough distinct signers (`threshold`), each covering every required
    /// predicate type with bundles that passed every check. Adds a `(policy)` line to
    /// `examined` saying what was missing, when something was.
    fn verdict(
        &self,
        commit: &CommitRef,
        covered: &[Vec<String>],
        examined: &mut Vec<AttestationReport>,
    ) -> bool {
        let required = &self.policy.attest.require_predicates;
        let missing = |types: &[String]| -> Vec<&str> {
            required
                .iter()
                .filter(|p| !types.contains(p))
                .map(String::as_str)
                .collect()
        };
        // A signer with no valid bundle is never complete, whatever the policy requires.
        let complete: Vec<&str> = covered
            .iter()
            .enumerate()
            .filter(|(_, types)| !types.is_empty() && missing(types).is_empty())
            .map(|(s, _)| self.signer_name(s))
            .collect();
        let partial: Vec<String> = covered
            .iter()
            .enumerate()
            .filter(|(_, types)| !types.is_empty() && !missing(types).is_empty())
            .map(|(s, types)| {
                format!(
                    "{} lacks {}",
                    self.signer_name(s),
                    missing(types).join(", ")
                )
            })
            .collect();
        let threshold = self.policy.attest.threshold;
        let admitted = complete.len() >= threshold.max(1);
        if !admitted && threshold > 1 && !examined.is_empty() {
            let mut detail = format!(
                "{} of the {threshold} required signers attest {} with every required predicate",
                complete.len(),
                commit.id.short()
            );
            if !complete.is_empty() {
                detail.push_str(&format!(": {}", complete.join(", ")));
            }
            if !partial.is_empty() {
                detail.push_str(&format!("; {}", partial.join("; ")));
            }
            examined.push(AttestationReport {
                commit: commit.id.clone(),
                source: "(policy)".into(),
                result: AttestationCode::ThresholdNotMet,
                detail,
                ..AttestationReport::note()
            });
        } else if !admitted && !partial.is_empty() {
            examined.push(AttestationReport {
                commit: commit.id.clone(),
                source: "(policy)".into(),
                result: AttestationCode::PredicateMissing,
                detail: format!(
                    "no trusted signer has a valid attestation of every required type: {}",
                    partial.join("; ")
                ),
                ..AttestationReport::note()
            });
        }
        admitted
    }
}

impl PolicyAttestations<'_> {
    fn approver_name(&self, index: usize) -> &str {
        self.policy
            .approvers
            .get(index)
            .map_or("?", |a| a.name.as_str())
    }

    /// One approval candidate: signed by an approver, of this commit (or its tree with
    /// `[approvals] bind = "tree"`), not by its author or committer (`distinct_from_author`),
    /// not by an agent identity (the approver's, or the reviewer the statement names).
    fn examine_approval(
        &self,
        commit: &CommitRef,
        people: &CommitPeople,
        bytes: &[u8],
    ) -> Result<usize, Failure> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Failure::new(
                AttestationCode::BundleTooLarge,
                format!("{} bytes (limit {MAX_BUNDLE_BYTES})", bytes.len()),
            ));
        }
        let (index, att) = self.approvers.authenticate(bytes)?;
        v::check_predicate_type(&att, PREDICATE_APPROVAL_V01)?;
        match self.policy.approvals.bind {
            Bind::Commit => v::check_commit(&att, commit.id.as_str())?,
            Bind::Tree => v::check_tree(&att, commit.tree.as_str())
                .or_else(|_| v::check_commit(&att, commit.id.as_str()))?,
        }
        let approval = match att.statement().approval() {
            Some(Ok(a)) if a.result == APPROVAL_RESULT => a,
            Some(Ok(a)) => {
                return Err(VerifyError::PredicateMalformed {
                    predicate_type: PREDICATE_APPROVAL_V01.into(),
                    message: format!("result is {:?}, not {APPROVAL_RESULT:?}", a.result),
                }
                .into())
            }
            Some(Err(e)) => {
                return Err(VerifyError::PredicateMalformed {
                    predicate_type: PREDICATE_APPROVAL_V01.into(),
                    message: e.to_string(),
                }
                .into())
            }
            None => return Err(VerifyError::NotDsse.into()),
        };
        if approval.timestamp > self.now + chrono::Duration::seconds(CLOCK_SKEW_SECS) {
            return Err(VerifyError::TimeInFuture {
                at: approval.timestamp,
            }
            .into());
        }
        let approver =
            self.policy.approvers.get(index).ok_or_else(|| {
                Failure::new(AttestationCode::UntrustedSigner, "no such approver")
            })?;
        let emails = approver.emails();
        if let Some(m) = crate::config::agent_identity(&self.detector, &approver.name, &emails)
            .or_else(|| {
                crate::config::agent_identity(
                    &self.detector,
                    &approval.reviewer.name,
                    &[approval.reviewer.email.as_str()],
                )
            })
        {
            return Err(Failure::new(
                AttestationCode::ApproverIsAgent,
                format!(
                    "approver {} ({} <{}>) is an agent identity by rule {} ({}): approvals by agents never count",
                    approver.name, approval.reviewer.name, approval.reviewer.email, m.rule, m.evidence
                ),
            ));
        }
        if self.policy.approvals.distinct_from_author {
            let same = |e: &str| {
                emails.iter().any(|a| a.eq_ignore_ascii_case(e))
                    || approval.reviewer.email.eq_ignore_ascii_case(e)
            };
            for (role, email) in [
                ("author", &people.author_email),
                ("committer", &people.committer_email),
            ] {
                if same(email) {
                    return Err(Failure::new(
                        AttestationCode::ApproverIsAuthor,
                        format!(
                            "approver {} is the commit's {role} <{email}> (distinct_from_author)",
                            approver.name
                        ),
                    ));
                }
            }
        }
        Ok(index)
    }

    /// One override candidate: signed by the break-glass key, for exactly this ref update,
    /// issued, not expired, and no longer valid than `max_validity`.
    fn examine_override(
        &self,
        update: &RefUpdate,
        new_commit: &CommitRef,
        bg: &crate::config::BreakGlassPolicy,
        bytes: &[u8],
    ) -> Result<agentgate_formats::approval::BreakGlass, Failure> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Failure::new(
                AttestationCode::BundleTooLarge,
                format!("{} bytes (limit {MAX_BUNDLE_BYTES})", bytes.len()),
            ));
        }
        let (_, att) = self.break_glass.authenticate(bytes)?;
        v::check_predicate_type(&att, PREDICATE_BREAK_GLASS_V01)?;
        v::check_commit(&att, new_commit.id.as_str())?;
        let o = match att.statement().break_glass() {
            Some(Ok(o)) => o,
            Some(Err(e)) => {
                return Err(VerifyError::PredicateMalformed {
                    predicate_type: PREDICATE_BREAK_GLASS_V01.into(),
                    message: e.to_string(),
                }
                .into())
            }
            None => return Err(VerifyError::NotDsse.into()),
        };
        if o.refname != update.refname
            || !o.old.eq_ignore_ascii_case(update.old.as_str())
            || !o.new.eq_ignore_ascii_case(update.new.as_str())
        {
            return Err(Failure::new(
                AttestationCode::OverrideMismatch,
                format!(
                    "overrides {} {}..{}, not this update {} {}..{}",
                    o.refname,
                    o.old.get(..7).unwrap_or(&o.old),
                    o.new.get(..7).unwrap_or(&o.new),
                    update.refname,
                    update.old.short(),
                    update.new.short()
                ),
            ));
        }
        let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
        // A keyless override is issued when the log or a timestamp authority says.
        let issued = att.signed_time().unwrap_or(o.issued_at);
        if issued > self.now + skew || o.expires <= self.now {
            return Err(Failure::new(
                AttestationCode::OverrideExpired,
                format!(
                    "valid from {} until {}, and the push is at {}",
                    issued, o.expires, self.now
                ),
            ));
        }
        let max = chrono::Duration::from_std(bg.max_validity).unwrap_or(chrono::Duration::MAX);
        if o.expires - o.issued_at > max || o.expires - issued > max {
            return Err(Failure::new(
                AttestationCode::OverrideTooLong,
                format!(
                    "valid from {} until {}: longer than max_validity ({} s)",
                    o.issued_at,
                    o.expires,
                    max.num_seconds()
                ),
            ));
        }
        Ok(o)
    }
}

/// A signer's constraints on what its provenance claims.
fn constraints(signer: &Signer, att: &VerifiedAttestation) -> Result<(), VerifyError> {
    v::check_builder(
        att,
        signer.builder_id.as_deref(),
        signer.build_type.as_deref(),
    )
}

impl AttestationSource for PolicyAttestations<'_> {
    /// Gather the commit's candidates, examine each, bind test results to their runs'
    /// provenances, then count signers.
    fn check(&self, commit: &CommitRef) -> Result<AttestationVerdict, AttestationsError> {
        // Approvals and overrides share the notes; they are examined by their own checks.
        let candidates: Vec<Candidate<'_>> = self
            .candidates(commit)?
            .into_iter()
            .filter(|c| !is_human_statement(claimed_predicate_type(&c.bytes).as_deref()))
            .collect();
        let total = candidates.len();
        let mut results = self.examine_all(commit, candidates);
        self.bind_test_results(&mut results);

        let mut examined = Vec::new();
        // Per signer (index in the policy): the predicate types it covers.
        let mut covered: Vec<Vec<String>> = vec![Vec::new(); self.policy.signers.len()];
        for (source, digest, result) in results {
            let (result, detail, signer, predicate_type) = match result {
                Ok(p) => {
                    let name = self.signer_name(p.signer).to_string();
                    let detail = format!("{} signed by {name}", p.predicate_type);
                    if let Some(types) = covered.get_mut(p.signer) {
                        if !types.contains(&p.predicate_type) {
                            types.push(p.predicate_type.clone());
                        }
                    }
                    (
                        AttestationCode::Ok,
                        detail,
                        Some(name),
                        Some(p.predicate_type),
                    )
                }
                Err(f) => (f.code, f.detail, None, None),
            };
            examined.push(AttestationReport {
                commit: commit.id.clone(),
                source,
                result,
                detail,
                digest,
                signer,
                predicate_type,
                admitted: false,
            });
        }
        if total > MAX_CANDIDATES {
            examined.push(AttestationReport {
                commit: commit.id.clone(),
                source: "(limit)".into(),
                result: AttestationCode::TooManyCandidates,
                detail: format!(
                    "{} older candidate(s) not examined (limit {MAX_CANDIDATES})",
                    total - MAX_CANDIDATES
                ),
                ..AttestationReport::note()
            });
        }
        let admitted = self.verdict(commit, &covered, &mut examined);
        if admitted {
            for r in examined
                .iter_mut()
                .filter(|r| r.result == AttestationCode::Ok)
            {
                r.admitted = true;
            }
        }
        Ok(AttestationVerdict { admitted, examined })
    }

    fn may_have(&self, commit: &CommitRef) -> Result<bool, AttestationsError> {
        let targets = self.targets(commit);
        if let Some(index) = self.notes_index()? {
            if targets.iter().any(|t| index.contains_key(t.as_str())) {
                return Ok(true);
            }
        }
        if let Some(dir) = self.dir_index()? {
            if targets.iter().any(|t| dir.by_id.contains_key(t.as_str())) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn approvals(
        &self,
        commit: &CommitRef,
        people: &CommitPeople,
    ) -> Result<ApprovalVerdict, AttestationsError> {
        let mut verdict = ApprovalVerdict::default();
        let candidates = self.candidates_bound(commit, self.policy.approvals.bind)?;
        for c in candidates.into_iter().take(MAX_CANDIDATES) {
            if claimed_predicate_type(&c.bytes).as_deref() != Some(PREDICATE_APPROVAL_V01) {
                continue;
            }
            let (result, detail) = match self.examine_approval(commit, people, &c.bytes) {
                Ok(approver) if verdict.approvers.contains(&approver) => (
                    AttestationCode::ApproverRepeated,
                    format!(
                        "{} approved already; counted once",
                        self.approver_name(approver)
                    ),
                ),
                Ok(approver) => {
                    verdict.approvers.push(approver);
                    (
                        AttestationCode::Ok,
                        format!("approval by approver {}", self.approver_name(approver)),
                    )
                }
                Err(f) => (f.code, f.detail),
            };
            // An approval that counts is one of the promotion record's input attestations.
            let ok = result == AttestationCode::Ok;
            verdict.examined.push(AttestationReport {
                commit: commit.id.clone(),
                digest: Some(crate::audit::line_digest(&c.bytes)),
                source: c.source.into_owned(),
                result,
                detail,
                signer: None,
                predicate_type: ok.then(|| PREDICATE_APPROVAL_V01.to_string()),
                admitted: ok,
            });
        }
        Ok(verdict)
    }

    fn break_glass(
        &self,
        update: &RefUpdate,
        new_commit: &CommitRef,
    ) -> Result<BreakGlassVerdict, AttestationsError> {
        let mut verdict = BreakGlassVerdict::default();
        let Some(bg) = &self.policy.break_glass else {
            return Ok(verdict);
        };
        for c in self
            .candidates_bound(new_commit, Bind::Commit)?
            .into_iter()
            .take(MAX_CANDIDATES)
        {
            if claimed_predicate_type(&c.bytes).as_deref() != Some(PREDICATE_BREAK_GLASS_V01) {
                continue;
            }
            let source = c.source.into_owned();
            let (result, detail) = match self.examine_override(update, new_commit, bg, &c.bytes) {
                Ok(o) => {
                    let detail = format!("break-glass override signed by {}", bg.name);
                    if verdict.used.is_none() {
                        verdict.used = Some(BreakGlassUse {
                            source: source.clone(),
                            signer: bg.name.clone(),
                            reason: o.reason,
                            issuer: o.issuer,
                            issued_at: o.issued_at,
                            expires: o.expires,
                        });
                    }
                    (AttestationCode::Ok, detail)
                }
                Err(f) => (f.code, f.detail),
            };
            let ok = result == AttestationCode::Ok;
            verdict.examined.push(AttestationReport {
                commit: new_commit.id.clone(),
                source,
                result,
                detail,
                digest: Some(crate::audit::line_digest(&c.bytes)),
                signer: ok.then(|| bg.name.clone()),
                predicate_type: ok.then(|| PREDICATE_BREAK_GLASS_V01.to_string()),
                admitted: ok,
            });
        }
        Ok(verdict)
    }

    fn describe(&self) -> String {
        let mut s = match &self.notes {
            Some(n) => format!("{} (at {})", self.policy.attest.notes_ref, n.short()),
            None => format!(
                "{} (which does not exist yet)",
                self.policy.attest.notes_ref
            ),
        };
        if let Some(d) = &self.policy.attest.attestations_dir {
            s.push_str(&format!(" or {}", d.display()));
        }
        s
    }
}

/// The ids a bundle for `commit` is filed under: the commit, and with `bind = "tree"` its tree.
fn targets(commit: &CommitRef, bind: Bind) -> Vec<&ObjectId> {
    let mut targets = vec![&commit.id];
    if bind == Bind::Tree {
        targets.push(&commit.tree);
    }
    targets
}

/// Does the bundle carry a certificate (keyless) rather than a key hint?
fn is_certificate_bundle(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let vm = v
        .get("verificationMaterial")
        .unwrap_or(&serde_json::Value::Null);
    vm.get("publicKey").is_none()
        && (vm.get("certificate").is_some() || vm.get("x509CertificateChain").is_some())
}

/// The DSSE payload of a bundle, not authenticated, decoded as the verifier decodes it
/// (standard or URL-safe base64, padding optional).
fn unverified_payload(bytes: &[u8]) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Bundle {
        #[serde(rename = "dsseEnvelope")]
        dsse_envelope: Envelope,
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        payload: String,
    }
    let b: Bundle = serde_json::from_slice(bytes).ok()?;
    sigstore_types::PayloadBytes::from_base64(&b.dsse_envelope.payload)
        .ok()
        .map(|p| p.as_bytes().to_vec())
}

/// The first sha256 subject of the (not yet authenticated) DSSE statement.
fn first_sha256_subject(bytes: &[u8]) -> Option<[u8; 32]> {
    let st: serde_json::Value = serde_json::from_slice(&unverified_payload(bytes)?).ok()?;
    st.get("subject")?.as_array()?.iter().find_map(|s| {
        let hexd = s.get("digest")?.get("sha256")?.as_str()?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hexd, &mut out).ok()?;
        Some(out)
    })
}

/// Every `gitCommit` and `gitTree` digest value anywhere in the (not yet authenticated)
/// statement of a bundle, lower-cased: the ids the bundle could possibly bind.
fn named_ids(bytes: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        (DIGEST_GIT_COMMIT | DIGEST_GIT_TREE, serde_json::Value::String(id)) => {
                            let id = id.to_ascii_lowercase();
                            if !out.contains(&id) {
                                out.push(id);
                            }
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(st) =
        unverified_payload(bytes).and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
    {
        walk(&st, &mut out);
    }
    out
}

impl DirIndex {
    /// Read `*.json` files (one bundle) and `*.jsonl` files (one per line) and index them. A
    /// bundle whose statement cannot even be read names no commit: it could admit none.
    fn read(dir: &Path) -> Result<DirIndex, AttestationsError> {
        let err = |e: std::io::Error| AttestationsError::Dir {
            path: dir.to_path_buf(),
            source: e,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("json" | "jsonl")
                )
            })
            .collect();
        files.sort();
        let mut index = DirIndex::default();
        let mut bundles = Vec::new();
        for f in files {
            let source = f.display().to_string();
            let meta = std::fs::metadata(&f).map_err(err)?;
            if meta.len() > MAX_DIR_FILE_BYTES {
                index.oversize.push((source, meta.len()));
                continue;
            }
            let bytes = std::fs::read(&f).map_err(err)?;
            if f.extension().and_then(|e| e.to_str()) == Some("jsonl") {
                for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        bundles.push(DirBundle {
                            source: format!("{source}:{}", n + 1),
                            bytes: line.to_vec(),
                        });
                    }
                }
            } else {
                bundles.push(DirBundle { source, bytes });
            }
        }
        // Reading each statement is the cost of a large directory; it parallelises (a small
        // one is not worth a thread).
        let threads = match bundles.len() {
            0..=63 => 1,
            _ => std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
        };
        let chunk = bundles.len().div_ceil(threads).max(1);
        let ids: Vec<Vec<String>> = if threads == 1 {
            bundles.iter().map(|b| named_ids(&b.bytes)).collect()
        } else {
            std::thread::scope(|scope| {
                let workers: Vec<_> = bundles
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            part.iter().map(|b| named_ids(&b.bytes)).collect::<Vec<_>>()
                        })
                    })
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| {
                        w.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            })
        };
        for (bundle, ids) in bundles.into_iter().zip(ids) {
            if ids.is_empty() {
                continue;
            }
            let i = index.bundles.len();
            index.bundles.push(bundle);
            for id in ids {
                index.by_id.entry(id).or_default().push(i);
            }
        }
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentgate_formats::keys::{KeyAlgorithm, SigningKey};
    use agentgate_formats::sign::sign_statement;
    use agentgate_formats::statement::{
        provenance_statement, test_result_statement, Artifact, ProvenanceParams, Source,
        TestOutcome, TestResult,
    };
    use std::io::Write as _;
    use std::process::Stdio;

    /// git for the test's fixture repository, through agentgate-git's one way to run it.
    fn git(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
        let mut c = agentgate_git::git_command();
        c.current_dir(dir)
            .args(args)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@x")
            .env("GIT_COMMITTER_NAME", "A")
            .env("GIT_COMMITTER_EMAIL", "a@x")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env_remove("GIT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn id(s: &str) -> ObjectId {
        ObjectId::parse(s).unwrap()
    }

    /// The notes index gives what `git notes list` gives for a fanned-out notes tree (made by
    /// fast-import, which fans out past 256 notes), and what `note_at` gives for every id,
    /// including hand-made oddities: a note at two depths, junk entries, upper-case names.
    #[test]
    fn notes_index_agrees_with_git_and_note_at() {
        for format in ["sha1", "sha256"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            git(
                d,
                &["init", "-q", &format!("--object-format={format}")],
                None,
            );
            let mut stream = String::new();
            for i in 1..=300 {
                stream.push_str(&format!(
                    "commit refs/heads/main\nmark :{i}\ncommitter A <a@x> {} +0000\ndata 2\nc\n",
                    1_767_225_600 + i
                ));
            }
            stream.push_str(
                "commit refs/notes/agentgate\ncommitter A <a@x> 1767225600 +0000\ndata 1\nn\n",
            );
            for i in 1..=300 {
                stream.push_str(&format!("N inline :{i}\ndata 5\nn{i:03}\n"));
            }
            git(d, &["fast-import", "--quiet"], Some(&stream));
            let notes = id(&git(d, &["rev-parse", "refs/notes/agentgate"], None));
            let root = git(d, &["rev-parse", "refs/notes/agentgate^{tree}"], None);
            assert!(
                git(d, &["ls-tree", &root], None).contains(" tree "),
                "{format}: fast-import did not fan out"
            );
            let listed: HashMap<String, ObjectId> =
                git(d, &["notes", "--ref", "refs/notes/agentgate", "list"], None)
                    .lines()
                    .map(|l| {
                        let (blob, object) = l.split_once(' ').unwrap();
                        (object.to_string(), id(blob))
                    })
                    .collect();
            assert_eq!(listed.len(), 300);
            let repo = Repo::open(Some(d)).unwrap();
            let index = repo.notes_index(&notes).unwrap();
            assert_eq!(index, listed, "{format}");
            for (object, blob) in &listed {
                assert_eq!(
                    repo.note_at(&notes, &id(object)).unwrap(),
                    Some(repo.read_raw(blob).unwrap()),
                    "{format}"
                );
            }

            // By hand: `a` noted at the root and again one level down; `b` only down; junk.
            let commits: Vec<String> = listed.keys().take(2).cloned().collect();
            let (a, b) = (&commits[0], &commits[1]);
            let blob = |text: &str| git(d, &["hash-object", "-w", "--stdin"], Some(text));
            let (root_note, deep_note, b_note) = (blob("root\n"), blob("deep\n"), blob("b\n"));
            let empty = git(d, &["mktree"], Some(""));
            let sub_a = git(
                d,
                &["mktree"],
                Some(&format!("100644 blob {deep_note}\t{}\n", &a[2..])),
            );
            let sub_b = git(
                d,
                &["mktree"],
                Some(&format!("100644 blob {b_note}\t{}\n", &b[2..])),
            );
            let mut entries = format!(
                "100644 blob {root_note}\t{a}\n040000 tree {sub_a}\t{}\n040000 tree {empty}\tzz\n040000 tree {empty}\t{}\n100644 blob {root_note}\t{}\n100644 blob {root_note}\tjunk\n",
                &a[..2],
                "e".repeat(a.len()),
                "F".repeat(a.len()),
            );
            if a[..2] != b[..2] {
                entries.push_str(&format!("040000 tree {sub_b}\t{}\n", &b[..2]));
            }
            let tree = git(d, &["mktree"], Some(&entries));
            let odd = id(&git(d, &["commit-tree", &tree, "-m", "odd"], None));
            let index = repo.notes_index(&odd).unwrap();
            assert_eq!(index.get(a.as_str()), Some(&id(&root_note)), "{format}");
            for object in [
                a.clone(),
                b.clone(),
                "e".repeat(a.len()),
                "f".repeat(a.len()),
            ] {
                assert_eq!(
                    repo.note_at(&odd, &id(&object)).unwrap(),
                    index
                        .get(object.as_str())
                        .map(|blob| repo.read_raw(blob).unwrap()),
                    "{format} {object}"
                );
            }
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        repo_dir: PathBuf,
        att_dir: PathBuf,
        key: SigningKey,
        key_path: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let repo_dir = dir.path().join("r");
            let att_dir = dir.path().join("att");
            std::fs::create_dir_all(&repo_dir).unwrap();
            std::fs::create_dir_all(&att_dir).unwrap();
            git(&repo_dir, &["init", "-q"], None);
            let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let key_path = dir.path().join("k.pub");
            std::fs::write(&key_path, key.public_key().to_pem()).unwrap();
            Fixture {
                _dir: dir,
                repo_dir,
                att_dir,
                key,
                key_path,
            }
        }

        fn commit(&self, file: &str) -> CommitRef {
            std::fs::write(self.repo_dir.join(file), file).unwrap();
            git(&self.repo_dir, &["add", file], None);
            git(&self.repo_dir, &["commit", "-q", "-m", file], None);
            CommitRef {
                id: id(&git(&self.repo_dir, &["rev-parse", "HEAD"], None)),
                tree: id(&git(&self.repo_dir, &["rev-parse", "HEAD^{tree}"], None)),
            }
        }

        /// The bundles a gate run on `c` would sign, as two lines.
        fn bundles(&self, c: &CommitRef) -> String {
            let source = Source {
                uri: "file:///r".into(),
                commit: c.id.to_string(),
                tree: c.tree.to_string(),
            };
            let artifacts = [Artifact {
                name: "app".into(),
                sha256: "e".repeat(64),
            }];
            let now = Utc::now();
            let prov = provenance_statement(
                &source,
                &artifacts,
                ProvenanceParams {
                    builder_id: "urn:b".into(),
                    build_type: "urn:t".into(),
                    external_parameters: serde_json::json!({}),
                    internal_parameters: None,
                    builder_version: Default::default(),
                    builder_dependencies: vec![],
                    invocation_id: None,
                    started_on: now,
                    finished_on: now,
                    byproducts: vec![],
                },
            );
            let result = TestResult {
                result: TestOutcome::Passed,
                configuration: vec![],
                url: None,
                passed_tests: vec![],
                warned_tests: vec![],
                failed_tests: vec![],
            };
            let tests = test_result_statement(&source, &artifacts, &result, &prov).unwrap();
            format!(
                "{}\n{}\n",
                sign_statement(&self.key, &prov).unwrap(),
                sign_statement(&self.key, &tests).unwrap()
            )
        }

        fn note(&self, target: &ObjectId, text: &str) {
            git(
                &self.repo_dir,
                &[
                    "notes",
                    "--ref",
                    "refs/notes/agentgate",
                    "add",
                    "-f",
                    "-m",
                    text,
                    target.as_str(),
                ],
                None,
            );
        }

        fn policy(&self, bind: &str) -> Policy {
            let text = format!(
                "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n[attest]\nbind = \"{bind}\"\nattestations_dir = \"{}\"\n[[signer]]\nname = \"g\"\npublic_key = \"{}\"\n",
                self.att_dir.display(),
                self.key_path.display()
            );
            Policy::parse(&text, &self.repo_dir.join("p.toml")).unwrap()
        }
    }

    /// `may_have` is a cheap superset of what `check` admits: true for a note on the commit
    /// (or its tree under bind = "tree") and for an indexed bundle in attestations_dir, false
    /// when there is no candidate at all.
    #[test]
    fn may_have_is_never_false_when_check_admits() {
        let f = Fixture::new();
        let noted = f.commit("a");
        let in_dir = f.commit("b");
        let tree_noted = f.commit("c");
        let garbage = f.commit("d");
        let nothing = f.commit("e");
        // `nothing` reworded: another commit with the same tree.
        git(
            &f.repo_dir,
            &["commit", "-q", "--amend", "-m", "reworded"],
            None,
        );
        let twin = CommitRef {
            id: id(&git(&f.repo_dir, &["rev-parse", "HEAD"], None)),
            tree: nothing.tree.clone(),
        };
        f.note(&noted.id, &f.bundles(&noted));
        std::fs::write(f.att_dir.join("b.jsonl"), f.bundles(&in_dir)).unwrap();
        f.note(&tree_noted.tree, &f.bundles(&tree_noted));
        f.note(&garbage.id, "not a bundle");
        f.note(&nothing.tree, &f.bundles(&nothing));
        // A file that names no commit is indexed under none.
        std::fs::write(f.att_dir.join("junk.json"), "{}").unwrap();

        let repo = Repo::open(Some(&f.repo_dir)).unwrap();
        let notes = repo.ref_target("refs/notes/agentgate").unwrap();
        let now = Utc::now();
        for (bind, expect) in [
            (
                "commit",
                [
                    (&noted, true, true),
                    (&in_dir, true, true),
                    (&tree_noted, false, false),
                    (&garbage, true, false),
                    (&nothing, false, false),
                    (&twin, false, false),
                ],
            ),
            (
                "tree",
                [
                    (&noted, true, true),
                    (&in_dir, true, true),
                    (&tree_noted, true, true),
                    (&garbage, true, false),
                    (&nothing, true, true),
                    (&twin, true, true),
                ],
            ),
        ] {
            let policy = f.policy(bind);
            let source = PolicyAttestations::new(&repo, &policy, notes.clone(), now).unwrap();
            for (c, may, admitted) in expect {
                let verdict = source.check(c).unwrap();
                assert_eq!(source.may_have(c).unwrap(), may, "{bind} {}", c.id);
                assert_eq!(verdict.admitted, admitted, "{bind} {}", c.id);
                assert!(!verdict.admitted || may, "{bind} {}", c.id);
            }
        }
    }
}
