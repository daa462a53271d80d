//! Promotion records: the server's signed word that a protected ref moved to a revision
//! because the policy admitted it. After the ref moved (post-receive), each accepted move of a
//! protected ref becomes an SLSA Source VSA ([`agentgate_formats::vsa`]) built from the audit
//! record pre-receive wrote for it (never from deciding again), signed with the server key and
//! appended as a note on the revision under the promotions ref. Anyone with the server's public
//! key can then check what the server decided ([`check_promotions`]).
//!
//! `verifiedLevels` claims only what the decision established:
//! - `SLSA_SOURCE_LEVEL_1`: the revision is in a git repository (immutable, uniquely identified
//!   revisions). Level 2 and up need the server itself (identity management, retained history
//!   under the SCS's own controls, source provenance for every revision), which agentgate does
//!   not provide, so they are never claimed.
//! - [`ORG_AGENT_COMMITS_GATED`], [`ORG_ALL_COMMITS_GATED`], [`ORG_EACH_AGENT_COMMIT_ATTESTED`],
//!   [`ORG_REVISION_GATE_ATTESTED`], [`ORG_NO_HISTORY_REWRITE`]: see each constant.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Value};

use agentgate_formats::statement::{ResourceDescriptor, DIGEST_SHA256};
use agentgate_formats::verify::{check_commit, verify_bundle, VerifiedSigner};
use agentgate_formats::vsa::{
    self, source_refs, source_vsa_statement, VerificationSummary, Verifier, RESULT_PASSED,
    SLSA_VERSION,
};
use agentgate_formats::{sign_statement, KeyError, PublicKey, SigningKey, Statement};
use agentgate_git::{NoteWriteError, NotesError, ObjectId, ReadError, RefError, Repo};

use crate::code::Code;
use crate::config::{Policy, Require, Scope};
use crate::decision::{strip_namespaces, RefUpdate};

/// The SLSA Source level every promotion record claims (and no higher: see the module doc).
pub const SOURCE_LEVEL: &str = "SLSA_SOURCE_LEVEL_1";
/// Every commit that detection flags as agent-written, reachable from the revision and newer
/// than the baseline recorded at installation, lies under a commit a trusted gate built, tested
/// and signed (`scope = "tip"`), or carries such an attestation itself (`scope = "each"`):
/// SPEC.md's promise, which the decision kept.
pub const ORG_AGENT_COMMITS_GATED: &str = "ORG_SOURCE_AGENT_COMMITS_GATED";
/// The same for every commit, agent-written or not (`require = "all-commits"`).
pub const ORG_ALL_COMMITS_GATED: &str = "ORG_SOURCE_ALL_COMMITS_GATED";
/// Every such commit carries its own gate attestation (`scope = "each"`).
pub const ORG_EACH_AGENT_COMMIT_ATTESTED: &str = "ORG_SOURCE_EACH_AGENT_COMMIT_ATTESTED";
/// This exact revision was admitted by gate attestations (every required predicate, a PASSED
/// test result among them by default) from enough trusted signers (`threshold`).
pub const ORG_REVISION_GATE_ATTESTED: &str = "ORG_SOURCE_REVISION_GATE_ATTESTED";
/// The policy refuses rewinding and deleting this ref (`allow_non_fast_forward` and
/// `allow_delete` both false).
pub const ORG_NO_HISTORY_REWRITE: &str = "ORG_SOURCE_NO_HISTORY_REWRITE";

#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    #[error("cannot read the audit log {path}")]
    Log {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the audit record is missing {0}")]
    Record(&'static str),
    #[error("the policy the decision was made under ({digest}) is not archived next to the log: {reason}")]
    Policy { digest: String, reason: String },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Refs(#[from] RefError),
    #[error(transparent)]
    Notes(#[from] NotesError),
    #[error(transparent)]
    NoteWrite(#[from] NoteWriteError),
    #[error("cannot sign the promotion record")]
    Sign(#[from] KeyError),
    #[error("cannot serialize the promotion record")]
    Json(#[from] serde_json::Error),
}

/// How the server names itself and the repository in promotion records.
pub struct Identity {
    pub verifier_id: String,
    /// The repository's URI without the ref (`file:///srv/git/app.git`).
    pub repository_uri: String,
}

impl Identity {
    /// From the policy's `[server]` table, for the repository at `git_dir`.
    pub fn of(policy: &Policy, git_dir: &Path, host: &str) -> Identity {
        let path = git_dir.display().to_string();
        let name = git_dir
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".git").to_string())
            .unwrap_or_default();
        Identity {
            verifier_id: policy
                .server
                .verifier_id
                .clone()
                .unwrap_or_else(|| format!("urn:agentgate:server:{host}")),
            repository_uri: policy
                .server
                .repository_uri
                .as_deref()
                .unwrap_or("file://{path}")
                .replace("{path}", &path)
                .replace("{name}", &name),
        }
    }

    /// `resourceUri`: the repository in SPDX download-location form, with the ref
    /// (`git+https://git.example.com/app.git@refs/heads/main`).
    pub fn resource_uri(&self, refname: &str) -> String {
        let uri = &self.repository_uri;
        if uri.starts_with("git+") {
            format!("{uri}@{refname}")
        } else {
            format!("git+{uri}@{refname}")
        }
    }
}

/// The newest record of the log (at `log`) for each update (matching repository, ref, old and
/// new): what pre-receive decided for it. Reads the log backwards, only as far as it must. The
/// repository is `git_dir` as the hook names it (`repo`): several repositories may share one
/// log, and another's record of the same update was decided under another policy.
pub fn find_records(
    log: &Path,
    git_dir: &Path,
    updates: &[RefUpdate],
) -> Result<Vec<Option<Value>>, PromotionError> {
    let repo = git_dir.display().to_string();
    let err = |source| PromotionError::Log {
        path: log.to_path_buf(),
        source,
    };
    let mut found: Vec<Option<Value>> = vec![None; updates.len()];
    let mut file = std::fs::File::open(log).map_err(err)?;
    let mut pos = file.metadata().map_err(err)?.len();
    // Bytes after `pos` not looked at yet: a line cut by the chunk boundary.
    let mut tail: Vec<u8> = Vec::new();
    const CHUNK: u64 = 256 * 1024;
    let look = |lines: &[u8], found: &mut Vec<Option<Value>>| {
        for line in lines.split(|&b| b == b'\n').rev() {
            let Ok(rec) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let field = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("");
            for (u, slot) in updates.iter().zip(found.iter_mut()) {
                if slot.is_none()
                    && field("repo") == repo
                    && field("ref") == u.refname
                    && field("old") == u.old.as_str()
                    && field("new") == u.new.as_str()
                {
                    *slot = Some(rec.clone());
                }
            }
        }
    };
    while found.iter().any(Option::is_none) {
        if pos == 0 {
            look(&tail, &mut found);
            break;
        }
        let start = pos.saturating_sub(CHUNK);
        let mut buf = vec![0; (pos - start) as usize];
        file.seek(SeekFrom::Start(start)).map_err(err)?;
        file.read_exact(&mut buf).map_err(err)?;
        buf.extend_from_slice(&tail);
        pos = start;
        if pos == 0 {
            tail = buf;
            continue;
        }
        // Everything after the chunk's first line feed is whole lines.
        match buf.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                let (cut, whole) = buf.split_at(nl + 1);
                look(whole, &mut found);
                tail = cut.get(..nl).unwrap_or_default().to_vec();
            }
            None => tail = buf,
        }
    }
    Ok(found)
}

/// Does this record admit a promotion record: an accepted move of a protected ref to a
/// revision whose code was judged (not a deletion, a no-op or the attestations' notes ref)?
pub fn promotable(rec: &Value) -> bool {
    let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("");
    s("decision") == "accept"
        && rec.get("protected_by").is_some_and(|p| !p.is_null())
        && matches!(
            Code::parse(s("code")),
            Some(Code::Attested | Code::NoAgentCommits)
        )
}

/// What the decision establishes about the revision (see the constants).
pub fn verified_levels(rec: &Value, policy: &Policy, commit: &ObjectId) -> Vec<String> {
    let mut levels = vec![
        SOURCE_LEVEL.to_string(),
        ORG_AGENT_COMMITS_GATED.to_string(),
    ];
    if policy.detect.require == Require::AllCommits {
        levels.push(ORG_ALL_COMMITS_GATED.into());
    }
    if policy.attest.scope == Scope::Each {
        levels.push(ORG_EACH_AGENT_COMMIT_ATTESTED.into());
    }
    if admitted(rec)
        .iter()
        .any(|a| a.get("commit").and_then(Value::as_str) == Some(commit.as_str()))
    {
        levels.push(ORG_REVISION_GATE_ATTESTED.into());
    }
    if !policy.protect.allow_non_fast_forward && !policy.protect.allow_delete {
        levels.push(ORG_NO_HISTORY_REWRITE.into());
    }
    levels
}

/// The record's attestation reports that admitted their commit.
fn admitted(rec: &Value) -> Vec<&Value> {
    rec.get("attestations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|r| r.get("admitted").and_then(Value::as_bool) == Some(true))
                .collect()
        })
        .unwrap_or_default()
}

/// The promotion record (unsigned) for an accepted move, from its audit record: `commit` is
/// the new tip peeled to its commit, `policy` the policy the record names (from the archive).
pub fn statement(
    rec: &Value,
    commit: &ObjectId,
    policy: &Policy,
    identity: &Identity,
) -> Result<Statement, PromotionError> {
    let s = |k: &'static str| {
        rec.get(k)
            .and_then(Value::as_str)
            .ok_or(PromotionError::Record(k))
    };
    let refname = strip_namespaces(
        rec.get("resolved_ref")
            .and_then(Value::as_str)
            .map_or(s("ref")?, |r| r),
    )
    .to_string();
    let digest = rec
        .pointer("/policy/digest")
        .and_then(Value::as_str)
        .ok_or(PromotionError::Record("policy.digest"))?;
    let policy_path = rec
        .pointer("/policy/path")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut inputs: Vec<ResourceDescriptor> = Vec::new();
    for a in admitted(rec) {
        let Some(d) = a.get("digest").and_then(Value::as_str) else {
            continue;
        };
        let hex = d.strip_prefix("sha256:").unwrap_or(d);
        if inputs.iter().any(|i| i.has_digest(DIGEST_SHA256, hex)) {
            continue;
        }
        inputs.push(ResourceDescriptor {
            name: a.get("source").and_then(Value::as_str).map(str::to_string),
            digest: BTreeMap::from([(DIGEST_SHA256.to_string(), hex.to_string())]),
            annotations: Some(json!({
                "commit": a.get("commit"),
                "signer": a.get("signer"),
                "predicateType": a.get("predicate_type"),
            })),
            ..Default::default()
        });
    }
    let summary = VerificationSummary {
        verifier: Verifier {
            id: identity.verifier_id.clone(),
            version: BTreeMap::from([("agentgate".to_string(), s("version")?.to_string())]),
        },
        time_verified: s("time")?.to_string(),
        resource_uri: identity.resource_uri(&refname),
        policy: ResourceDescriptor {
            uri: Some(format!("file://{policy_path}")),
            digest: BTreeMap::from([(
                DIGEST_SHA256.to_string(),
                digest.strip_prefix("sha256:").unwrap_or(digest).to_string(),
            )]),
            ..Default::default()
        },
        input_attestations: inputs,
        verification_result: RESULT_PASSED.into(),
        verified_levels: verified_levels(rec, policy, commit),
        slsa_version: Some(SLSA_VERSION.into()),
    };
    Ok(source_vsa_statement(commit.as_str(), &refname, &summary)?)
}

/// Sign the promotion record and append it to the note on `commit` under `notes_ref` (the
/// caller holds the repository's promotions lock). Returns the bundle line.
pub fn write(
    repo: &Repo,
    notes_ref: &str,
    commit: &ObjectId,
    statement: &Statement,
    key: &SigningKey,
) -> Result<String, PromotionError> {
    let bundle = sign_statement(key, statement)?;
    repo.append_note(
        &repo.full_ref(notes_ref),
        commit,
        std::slice::from_ref(&bundle),
    )?;
    Ok(bundle)
}

/// A promotion record that verified.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Promotion {
    /// `sourceRefs`: the refs the server moved to this revision.
    pub refs: Vec<String>,
    pub key_hint: String,
    pub summary: VerificationSummary,
}

/// One line of the promotions note on a commit, checked.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Checked {
    pub line: usize,
    pub promotion: Option<Promotion>,
    /// Why the line is not a valid promotion record of this commit.
    pub error: Option<String>,
}

/// Check every promotion record on exactly `commit` (under `notes_ref`) with the server's
/// public keys, as VSA 1.2's "How to verify" says: the signature, the subject (`gitCommit` is
/// this commit), the predicate type, `verificationResult` PASSED and a source level in
/// `verifiedLevels`. The caller compares `verifier.id`, `resourceUri` and `sourceRefs` with
/// what it expects.
pub fn check_promotions(
    repo: &Repo,
    notes_ref: &str,
    commit: &ObjectId,
    keys: &[PublicKey],
) -> Result<Vec<Checked>, PromotionError> {
    let Some(notes) = repo.ref_target(&repo.full_ref(notes_ref))? else {
        return Ok(Vec::new());
    };
    let Some(note) = repo.note_at(&notes, commit)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8_lossy(&note);
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let (promotion, error) = match check_line(l.trim().as_bytes(), commit, keys) {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e)),
            };
            Checked {
                line: i + 1,
                promotion,
                error,
            }
        })
        .collect())
}

fn check_line(bytes: &[u8], commit: &ObjectId, keys: &[PublicKey]) -> Result<Promotion, String> {
    let att = verify_bundle(bytes, keys).map_err(|e| format!("[{}] {e}", e.code()))?;
    check_commit(&att, commit.as_str()).map_err(|e| format!("[{}] {e}", e.code()))?;
    let st = att.statement();
    let summary = vsa::summary(st)
        .ok_or_else(|| format!("predicate type {} is not a VSA", st.predicate_type))?
        .map_err(|e| format!("not a VSA predicate: {e}"))?;
    if summary.verification_result != RESULT_PASSED {
        return Err(format!(
            "verificationResult is {}",
            summary.verification_result
        ));
    }
    if !summary
        .verified_levels
        .iter()
        .any(|l| l.starts_with("SLSA_SOURCE_LEVEL_"))
    {
        return Err("verifiedLevels names no SLSA source level".into());
    }
    let refs = st
        .subject
        .iter()
        .filter(|s| s.has_digest("gitCommit", commit.as_str()))
        .flat_map(source_refs)
        .collect();
    let key_hint = match att.signer() {
        VerifiedSigner::Key { hint, .. } => hint.clone(),
        VerifiedSigner::Identity { identity, .. } => identity.clone(),
    };
    Ok(Promotion {
        refs,
        key_hint,
        summary,
    })
}
