//! The hook's answer to "is this commit attested?": gather candidate bundles (the git note on
//! the commit, and on its tree with `bind = "tree"`, from the notes commit the push sets or the
//! current notes ref; plus the policy's `attestations_dir`), verify each against the policy's
//! signers, and admit the commit only if every required predicate type is covered by a bundle
//! that passed every check. Each candidate's fate is reported, so a refused pusher sees why.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::attest::sigstore::{self, ArtifactInput, SignerPolicy};
use crate::attest::verify::{self as v, VerifiedAttestation, VerifyError};
use crate::attest::PublicKey;
use crate::config::{
    Bind, Policy, SignerKind, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT_V01,
};
use crate::git::{GitError, ObjectId, ObjectKind, Repo};
use crate::hook::{
    AttestationReport, AttestationSource, AttestationVerdict, CommitRef, EvidenceError,
};

/// Bundles larger than this are refused unread (`bundle-too-large`); real ones are a few KiB.
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;
/// At most this many candidates are examined per commit, newest first (a note is appended to,
/// so the gate's latest bundles are at its end).
pub const MAX_CANDIDATES: usize = 512;
/// Files in `attestations_dir` larger than this are refused.
const MAX_DIR_FILE_BYTES: u64 = 64 << 20;
/// How far in the future a signer's clock may be.
const CLOCK_SKEW_SECS: i64 = 300;

/// Why a candidate failed: its stable code and a sentence.
type Failure = (String, String);

/// A bundle whose signature checked out: the signer's name in the policy, the statement, and
/// the authenticated signing time (keyless only).
struct Authenticated {
    signer: String,
    att: VerifiedAttestation,
    signed_time: Option<DateTime<Utc>>,
}

/// One candidate bundle and where it came from.
struct Candidate<'a> {
    source: Cow<'a, str>,
    bytes: Cow<'a, [u8]>,
    /// From the commit's (or tree's) own note: a mismatch there is worth reporting (a replay).
    from_note: bool,
    /// The size of a file too large to read.
    oversize: Option<u64>,
}

pub struct PolicyAttestations<'a> {
    repo: &'a Repo,
    policy: &'a Policy,
    notes: Option<ObjectId>,
    dir: Vec<Candidate<'static>>,
    /// The key-based signers' keys, and for each the index of its signer in the policy.
    keys: Vec<PublicKey>,
    key_signers: Vec<usize>,
    now: DateTime<Utc>,
}

impl<'a> PolicyAttestations<'a> {
    /// `notes` is the notes commit to read (the push's new value for the notes ref, or its
    /// current value); `now` is the decision time (recorded, so `audit verify` can replay it).
    pub fn new(
        repo: &'a Repo,
        policy: &'a Policy,
        notes: Option<ObjectId>,
        now: DateTime<Utc>,
    ) -> Result<Self, EvidenceError> {
        let (key_signers, keys): (Vec<usize>, Vec<PublicKey>) = policy
            .signers
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.kind {
                SignerKind::Key { key, .. } => Some((i, key.clone())),
                SignerKind::Keyless { .. } => None,
            })
            .unzip();
        // The notes ref must name a commit: note_at reads a commit's `tree` header, and a blob
        // whose first line looks like one must not pass for a notes commit.
        if let Some(n) = &notes {
            match repo.object_kind(n)? {
                Some(ObjectKind::Commit) => {}
                Some(kind) => {
                    return Err(GitError::NotACommit {
                        id: n.to_string(),
                        kind: kind.to_string(),
                    }
                    .into())
                }
                None => return Err(GitError::NotFound(n.to_string()).into()),
            }
        }
        let dir = match &policy.attest.attestations_dir {
            Some(d) => read_dir(d)?,
            None => Vec::new(),
        };
        Ok(PolicyAttestations {
            repo,
            policy,
            notes,
            dir,
            keys,
            key_signers,
            now,
        })
    }

    fn candidates(&self, commit: &CommitRef) -> Result<Vec<Candidate<'_>>, EvidenceError> {
        let mut out = Vec::new();
        if let Some(notes) = &self.notes {
            let mut targets = vec![&commit.id];
            if self.policy.attest.bind == Bind::Tree {
                targets.push(&commit.tree);
            }
            for target in targets {
                let Some(note) = self.repo.note_at(notes, target)? else {
                    continue;
                };
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
                        from_note: true,
                        oversize: None,
                    });
                }
            }
        }
        // The shared directory's bundles are borrowed, not copied, for each commit.
        out.extend(self.dir.iter().map(|c| Candidate {
            source: Cow::Borrowed(c.source.as_ref()),
            bytes: Cow::Borrowed(c.bytes.as_ref()),
            from_note: false,
            oversize: c.oversize,
        }));
        Ok(out)
    }

    /// Verify one candidate for `commit`: Ok((signer name, predicate type)) or (code, detail).
    fn examine(&self, commit: &CommitRef, bytes: &[u8]) -> Result<(String, String), Failure> {
        let fail = |e: &VerifyError| (e.code().to_string(), e.to_string());
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err((
                "bundle-too-large".into(),
                format!("{} bytes (limit {MAX_BUNDLE_BYTES})", bytes.len()),
            ));
        }
        let Authenticated {
            signer,
            att,
            signed_time,
        } = self.authenticate(bytes)?;
        match self.policy.attest.bind {
            Bind::Commit => v::check_commit(&att, commit.id.as_str()).map_err(|e| fail(&e))?,
            Bind::Tree => v::check_tree(&att, commit.tree.as_str())
                .or_else(|_| v::check_commit(&att, commit.id.as_str()))
                .map_err(|e| fail(&e))?,
        }
        v::check_has_artifact(&att).map_err(|e| fail(&e))?;
        let ptype = att.predicate_type().to_string();
        if ptype == PREDICATE_TEST_RESULT_V01 {
            v::check_tests_passed(&att).map_err(|e| fail(&e))?;
        }
        if let Some(max_age) = self.policy.attest.max_age {
            let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
            let skew = chrono::Duration::seconds(CLOCK_SKEW_SECS);
            match signed_time {
                // Keyless: the authenticated signing time (Rekor / RFC 3161).
                Some(at) => {
                    if at > self.now + skew {
                        return Err(fail(&VerifyError::TimeInFuture { at }));
                    }
                    if self.now - at > max_age {
                        return Err(fail(&VerifyError::TooOld {
                            at,
                            max_age_secs: max_age.num_seconds(),
                        }));
                    }
                }
                // Key-based: the signer's own clock, carried in the provenance. A test result has
                // no time of its own; the provenance signed with it is checked.
                None if ptype == PREDICATE_SLSA_PROVENANCE_V1 => {
                    v::check_age(&att, max_age, skew, self.now).map_err(|e| fail(&e))?
                }
                None => {}
            }
        }
        Ok((signer, ptype))
    }

    /// Check the signature against the trusted signers: key-based bundles against the keys,
    /// certificate bundles against each keyless signer's identity and trusted root.
    fn authenticate(&self, bytes: &[u8]) -> Result<Authenticated, Failure> {
        let fail = |e: &VerifyError| (e.code().to_string(), e.to_string());
        let keyless = is_certificate_bundle(bytes);
        if !keyless {
            let att = v::verify_bundle(bytes, &self.keys).map_err(|e| fail(&e))?;
            let signer = &self.policy.signers[self.key_signers[att.signer_index]];
            return Ok(Authenticated {
                signer: signer.name.clone(),
                att,
                signed_time: None,
            });
        }
        // The hook has no artifact: verify the signature, certificate and log entries with the
        // statement's own first sha256 subject as the artifact (the signature covers the
        // statement, so this selects nothing an attacker controls), then check the statement.
        let subject = first_sha256_subject(bytes).ok_or_else(|| {
            (
                "no-artifact-subject".to_string(),
                "the statement has no sha256 subject".to_string(),
            )
        })?;
        let mut last = (
            "untrusted-signer".to_string(),
            "no keyless signer is configured".to_string(),
        );
        for signer in &self.policy.signers {
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
            match sigstore::verify(bytes, &ArtifactInput::Sha256(subject), &policy, root) {
                Ok(verified) => {
                    let Some((_, payload)) = verified.payload else {
                        return Err((
                            "bundle-not-dsse".into(),
                            "a message signature is not an attestation".into(),
                        ));
                    };
                    // The same strict parse as key-based bundles: duplicate keys, another
                    // statement type.
                    let statement = v::parse_statement(&payload).map_err(|e| fail(&e))?;
                    let att = VerifiedAttestation {
                        signer_hint: verified.signer.clone(),
                        signer_index: 0,
                        statement,
                        payload_sha256: String::new(),
                    };
                    let at = verified.signed_times.iter().min().copied();
                    return Ok(Authenticated {
                        signer: signer.name.clone(),
                        att,
                        signed_time: at,
                    });
                }
                Err(e) => {
                    last = (
                        e.code().to_string(),
                        format!("signer {:?}: {e}", signer.name),
                    )
                }
            }
        }
        Err(last)
    }
}

impl AttestationSource for PolicyAttestations<'_> {
    fn may_have(&self, commit: &CommitRef) -> Result<bool, EvidenceError> {
        if !self.dir.is_empty() {
            return Ok(true);
        }
        let Some(notes) = &self.notes else {
            return Ok(false);
        };
        if self.repo.note_at(notes, &commit.id)?.is_some() {
            return Ok(true);
        }
        Ok(self.policy.attest.bind == Bind::Tree
            && self.repo.note_at(notes, &commit.tree)?.is_some())
    }

    fn check(&self, commit: &CommitRef) -> Result<AttestationVerdict, EvidenceError> {
        let mut examined = Vec::new();
        let mut covered: Vec<String> = Vec::new();
        let candidates = self.candidates(commit)?;
        let total = candidates.len();
        for c in candidates.into_iter().take(MAX_CANDIDATES) {
            let result = match c.oversize {
                Some(size) => Err(("bundle-too-large".to_string(), format!("{size} bytes"))),
                None => self.examine(commit, &c.bytes),
            };
            match result {
                Ok((signer, ptype)) => {
                    examined.push(AttestationReport {
                        commit: commit.id.clone(),
                        source: c.source.into_owned(),
                        result: "ok".into(),
                        detail: format!("{ptype} signed by {signer}"),
                    });
                    if !covered.contains(&ptype) {
                        covered.push(ptype);
                    }
                }
                Err((code, detail)) => {
                    // A bundle in the shared directory that is about another commit is not news.
                    let elsewhere =
                        !c.from_note && (code == "commit-mismatch" || code == "tree-mismatch");
                    if !elsewhere {
                        examined.push(AttestationReport {
                            commit: commit.id.clone(),
                            source: c.source.into_owned(),
                            result: code,
                            detail,
                        });
                    }
                }
            }
        }
        if total > MAX_CANDIDATES {
            examined.push(AttestationReport {
                commit: commit.id.clone(),
                source: "(limit)".into(),
                result: "too-many-candidates".into(),
                detail: format!(
                    "{} older candidate(s) not examined (limit {MAX_CANDIDATES})",
                    total - MAX_CANDIDATES
                ),
            });
        }
        let missing: Vec<&String> = self
            .policy
            .attest
            .require_predicates
            .iter()
            .filter(|p| !covered.contains(p))
            .collect();
        let admitted = missing.is_empty();
        if !admitted && examined.iter().any(|r| r.result == "ok") {
            examined.push(AttestationReport {
                commit: commit.id.clone(),
                source: "(policy)".into(),
                result: "predicate-missing".into(),
                detail: format!(
                    "no valid attestation of type {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(AttestationVerdict { admitted, examined })
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

/// Does the bundle carry a certificate (keyless) rather than a key hint?
fn is_certificate_bundle(bytes: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let vm = &v["verificationMaterial"];
    vm.get("publicKey").is_none()
        && (vm.get("certificate").is_some() || vm.get("x509CertificateChain").is_some())
}

/// The first sha256 subject of the (not yet authenticated) DSSE statement.
fn first_sha256_subject(bytes: &[u8]) -> Option<[u8; 32]> {
    use base64::Engine;
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(v["dsseEnvelope"]["payload"].as_str()?)
        .ok()?;
    let st: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    st["subject"].as_array()?.iter().find_map(|s| {
        let hexd = s["digest"]["sha256"].as_str()?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(hexd, &mut out).ok()?;
        Some(out)
    })
}

/// Bundles from `attestations_dir`: `*.json` files (one bundle) and `*.jsonl` (one per line).
fn read_dir(dir: &Path) -> Result<Vec<Candidate<'static>>, EvidenceError> {
    let err = |e: std::io::Error| EvidenceError::Dir {
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
    let mut out = Vec::new();
    for f in files {
        let source = f.display().to_string();
        let meta = std::fs::metadata(&f).map_err(err)?;
        if meta.len() > MAX_DIR_FILE_BYTES {
            out.push(Candidate {
                source: source.into(),
                bytes: Cow::Borrowed(&[]),
                from_note: false,
                oversize: Some(meta.len()),
            });
            continue;
        }
        let bytes = std::fs::read(&f).map_err(err)?;
        if f.extension().and_then(|e| e.to_str()) == Some("jsonl") {
            for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if !line.iter().all(u8::is_ascii_whitespace) {
                    out.push(Candidate {
                        source: format!("{source}:{}", n + 1).into(),
                        bytes: line.to_vec().into(),
                        from_note: false,
                        oversize: None,
                    });
                }
            }
        } else {
            out.push(Candidate {
                source: source.into(),
                bytes: bytes.into(),
                from_note: false,
                oversize: None,
            });
        }
    }
    Ok(out)
}
