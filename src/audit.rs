//! The audit log: one JSON line per ref decision, written so that a decision can be certified
//! later. Lines from concurrent pushes never interleave and are never lost: every push writes
//! its lines with one `write` under an exclusive lock, then fsyncs before the hook answers. If
//! the log cannot be written, the push is refused (a decision nobody can certify is not made).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::hook::{AgentCommit, AttestationReport, RefDecision};

#[derive(Debug, thiserror::Error)]
#[error("cannot write audit log {path}")]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Who pushed, and which variable said so.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Pusher {
    pub name: String,
    pub source: String,
}

/// The pusher as the Git server reports it (GitLab, GHES, Gitea/Forgejo, gitolite, HTTP), else
/// the OS user the hook runs as.
pub fn pusher() -> Pusher {
    for var in [
        "GL_USERNAME",
        "GITHUB_USER_LOGIN",
        "GITEA_PUSHER_NAME",
        "GL_USER",
        "REMOTE_USER",
    ] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return Pusher {
                    name: v,
                    source: var.into(),
                };
            }
        }
    }
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.is_empty() {
                return Pusher {
                    name: v,
                    source: format!("os:{var}"),
                };
            }
        }
    }
    Pusher {
        name: "unknown".into(),
        source: "none".into(),
    }
}

#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub time: String,
    pub repo: String,
    #[serde(rename = "ref")]
    pub refname: &'a str,
    pub old: &'a str,
    pub new: &'a str,
    pub mode: &'a str,
    pub pusher: &'a Pusher,
    pub protected_by: Option<&'a str>,
    pub entering_commits: Option<usize>,
    pub agent_commits: &'a [AgentCommit],
    pub attestations: &'a [AttestationReport],
    pub decision: &'static str,
    pub code: &'static str,
    pub reason: Option<&'a str>,
    pub policy: PolicyRef<'a>,
    pub version: &'static str,
}

#[derive(Debug, Serialize)]
pub struct PolicyRef<'a> {
    pub path: Option<String>,
    pub digest: Option<&'a str>,
}

/// Build the records for one push.
pub fn records<'a>(
    decisions: &'a [RefDecision],
    repo: &Path,
    mode: &'a str,
    pusher: &'a Pusher,
    policy_path: Option<&Path>,
    policy_digest: Option<&'a str>,
) -> Vec<Record<'a>> {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    decisions
        .iter()
        .map(|d| {
            let (decision, reason) = match &d.outcome {
                crate::hook::Outcome::Accept(_) => ("accept", None),
                crate::hook::Outcome::Refuse(r) => ("refuse", Some(r.headline.as_str())),
            };
            Record {
                time: time.clone(),
                repo: repo.display().to_string(),
                refname: &d.update.refname,
                old: d.update.old.as_str(),
                new: d.update.new.as_str(),
                mode,
                pusher,
                protected_by: d.protected_by.as_deref(),
                entering_commits: d.entering,
                agent_commits: &d.agent_commits,
                attestations: &d.attestations,
                decision,
                code: d.outcome.code().as_str(),
                reason,
                policy: PolicyRef {
                    path: policy_path.map(|p| p.display().to_string()),
                    digest: policy_digest,
                },
                version: env!("CARGO_PKG_VERSION"),
            }
        })
        .collect()
}

/// Append records to the log: one write of all lines under an exclusive lock, then fsync.
pub fn append(path: &Path, records: &[Record<'_>]) -> Result<(), AuditError> {
    let err = |source| AuditError {
        path: path.to_path_buf(),
        source,
    };
    let mut buf = Vec::new();
    for r in records {
        serde_json::to_writer(&mut buf, r).map_err(|e| err(std::io::Error::other(e)))?;
        buf.push(b'\n');
    }
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    file.lock().map_err(err)?;
    // If an earlier writer died mid-line (SIGKILL between write and fsync is harmless, but a
    // torn write on a full disk is not), start on a fresh line so our records stay whole.
    let len = file.metadata().map_err(err)?.len();
    if len > 0 && !ends_with_newline(path, len) {
        buf.insert(0, b'\n');
    }
    let result = file.write_all(&buf).and_then(|()| file.sync_data());
    let _ = file.unlock();
    result.map_err(err)
}

fn ends_with_newline(path: &Path, len: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return true;
    };
    let mut last = [0u8; 1];
    f.seek(SeekFrom::Start(len - 1)).is_ok() && f.read_exact(&mut last).is_ok() && last[0] == b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_whole_lines_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let p = Pusher {
            name: "ada".into(),
            source: "GL_USERNAME".into(),
        };
        append(&path, &[]).unwrap();
        std::fs::write(&path, b"{\"torn\":").unwrap();
        let u = crate::hook::RefUpdate {
            old: crate::git::ObjectId::zero(20),
            new: crate::git::ObjectId::parse(&"1".repeat(40)).unwrap(),
            refname: "refs/heads/main".into(),
        };
        let d = RefDecision::refused(
            u,
            crate::hook::Code::PolicyInvalid,
            "x".into(),
            vec![],
            vec![],
        );
        let recs = records(
            std::slice::from_ref(&d),
            dir.path(),
            "pre-receive",
            &p,
            None,
            None,
        );
        append(&path, &recs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["decision"], "refuse");
        assert_eq!(v["code"], "policy-invalid");
        assert_eq!(v["pusher"]["name"], "ada");
    }
}
