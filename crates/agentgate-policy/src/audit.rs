//! The audit log: one JSON line per ref decision, written so that a decision can be certified
//! later. Lines from concurrent pushes never interleave and are never lost: every push writes
//! its lines with one `write` under an exclusive lock, then fsyncs before the hook answers. If
//! the log cannot be written, the push is refused (a decision nobody can certify is not made).
//!
//! Next to the log (`LOG.policies/`, `LOG.checkpoints`): every policy a record names, archived
//! under its digest with the key files it read, so each record is re-derived with its own
//! policy; and after every push, a checkpoint of the chain's head signed with the server key,
//! so records removed from the end, or added without the key, show.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use agentgate_git::ObjectId;

use agentgate_formats::checkpoint::{sign_checkpoint, CheckpointBody};
use agentgate_formats::SigningKey;

use crate::code::Code;
use crate::config::Policy;
use crate::decision::{AgentCommit, AttestationReport, RefDecision};

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
    /// `sha256:<hex>` of the previous line's bytes (without its newline); null for the first
    /// line of a log. A deleted or edited line breaks the chain (`audit verify`).
    pub prev: Option<String>,
    /// The record's number in the log (1 for the first): a checkpoint signs "`seq` records".
    pub seq: u64,
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
    /// For created refs: the other protected tips excluded from the entering commits.
    /// The ref the pushed name finally names, when it is a symbolic ref.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved_ref: Option<&'a str>,
    /// Protected tips known to keep the promise when the decision was made.
    pub known_covered: &'a [ObjectId],
    /// The baseline recorded at installation.
    pub baseline: &'a [ObjectId],
    /// The notes commit attestations were read from.
    pub notes: Option<NotesInput<'a>>,
    /// The `refs/notes/ai` commit git-ai evidence was read from (`[detect] sources`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_ai_notes: Option<&'a ObjectId>,
    pub agent_commits: &'a [AgentCommit],
    pub attestations: &'a [AttestationReport],
    pub decision: &'static str,
    pub code: Code,
    pub reason: Option<&'a str>,
    /// The break-glass override that admitted this update (code `break-glass`): who signed it,
    /// why, until when, and the refusal it overrode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<&'a crate::decision::BreakGlassOverride>,
    pub policy: PolicyRef<'a>,
    pub version: &'static str,
    /// Why the record could not go to syslog (`[audit] syslog`) when the push was decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog_error: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct NotesInput<'a> {
    #[serde(rename = "ref")]
    pub refname: &'a str,
    pub commit: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct PolicyRef<'a> {
    pub path: Option<String>,
    pub digest: Option<&'a str>,
}

/// What a push shares across its records.
pub struct Context<'a> {
    pub repo: &'a Path,
    pub mode: &'a str,
    pub pusher: &'a Pusher,
    pub policy_path: Option<&'a Path>,
    pub policy_digest: Option<&'a str>,
    pub notes: Option<NotesInput<'a>>,
    /// The decision time (attestation ages were judged against it).
    pub time: chrono::DateTime<chrono::Utc>,
    /// Why syslog is unreachable, when it is configured and is.
    pub syslog_error: Option<&'a str>,
}

/// Build the records for one push.
pub fn records<'a>(decisions: &'a [RefDecision], cx: &Context<'a>) -> Vec<Record<'a>> {
    let time = cx.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    decisions
        .iter()
        .map(|d| {
            let reason = match &d.outcome {
                crate::decision::Outcome::Accept(_) => None,
                crate::decision::Outcome::Refuse(r) => Some(r.headline.as_str()),
            };
            Record {
                prev: None,
                seq: 0,
                time: time.clone(),
                repo: cx.repo.display().to_string(),
                refname: &d.update.refname,
                old: d.update.old.as_str(),
                new: d.update.new.as_str(),
                mode: cx.mode,
                pusher: cx.pusher,
                protected_by: d.protected_by.as_deref(),
                entering_commits: d.entering,
                resolved_ref: d.facts.resolved_ref.as_deref(),
                known_covered: &d.facts.known_covered,
                baseline: &d.facts.baseline,
                notes: cx.notes,
                git_ai_notes: d.facts.git_ai_notes.as_ref(),
                agent_commits: &d.agent_commits,
                attestations: &d.attestations,
                decision: d.outcome.verdict(),
                code: d.outcome.code(),
                reason,
                break_glass: d.break_glass.as_ref(),
                policy: PolicyRef {
                    path: cx.policy_path.map(|p| p.display().to_string()),
                    digest: cx.policy_digest,
                },
                version: env!("CARGO_PKG_VERSION"),
                syslog_error: cx.syslog_error,
            }
        })
        .collect()
}

/// The audit log a policy names, or `$GIT_DIR/agentgate/audit.jsonl`.
pub fn audit_path(policy: Option<&Policy>, git_dir: &Path) -> PathBuf {
    policy
        .and_then(|p| p.audit_log.clone())
        .unwrap_or_else(|| default_audit_path(git_dir))
}

/// The audit log when no policy names one: `$GIT_DIR/agentgate/audit.jsonl`.
pub fn default_audit_path(git_dir: &Path) -> PathBuf {
    git_dir.join("agentgate").join("audit.jsonl")
}

/// Where a log's signed checkpoints are kept: `LOG.checkpoints`.
pub fn checkpoints_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".checkpoints");
    PathBuf::from(s)
}

/// Where the policies a log's records name are archived: `LOG.policies/`.
pub fn policies_dir(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".policies");
    PathBuf::from(s)
}

/// The archive file of the policy with `digest` (`sha256:<hex>` -> `sha256-<hex>.json`).
pub fn archived_policy_path(log: &Path, digest: &str) -> PathBuf {
    policies_dir(log).join(format!("{}.json", digest.replace(':', "-")))
}

/// The origin a log's checkpoints name: its absolute path.
pub fn origin(log: &Path) -> String {
    std::path::absolute(log)
        .unwrap_or_else(|_| log.to_path_buf())
        .display()
        .to_string()
}

/// What else [`append_with`] does besides appending the records.
#[derive(Default)]
pub struct AppendOptions<'a> {
    /// Archive this policy (the one the records name) next to the log, if not there yet.
    pub policy: Option<&'a Policy>,
    /// Sign a checkpoint of the new head with this key (`[server] key`).
    pub checkpoint_key: Option<&'a SigningKey>,
}

/// What [`append_with`] wrote.
#[derive(Debug, Default)]
pub struct Appended {
    /// The records' lines, as written (without newlines).
    pub lines: Vec<String>,
    /// The checkpoint line, when one was signed and written.
    pub checkpoint: Option<String>,
    /// Why the checkpoint could not be written after the records were (they stay: the next
    /// push's checkpoint covers them).
    pub checkpoint_error: Option<String>,
}

/// Append records to the log: under an exclusive lock, chain them to the last line, write
/// them with one `write`, fsync.
pub fn append(path: &Path, records: &mut [Record<'_>]) -> Result<(), AuditError> {
    append_with(path, records, &AppendOptions::default()).map(|_| ())
}

/// [`append`], and under the same lock: archive the policy first (a record never names a
/// policy that is not kept), sign the checkpoint before writing anything (a key that cannot
/// sign refuses the push with nothing written), and append the checkpoint after the records.
pub fn append_with(
    path: &Path,
    records: &mut [Record<'_>],
    opts: &AppendOptions<'_>,
) -> Result<Appended, AuditError> {
    let err = |source| AuditError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(err)?;
    file.lock().map_err(err)?;
    let result = (|| {
        if let Some(policy) = opts.policy {
            archive_policy(path, policy)?;
        }
        let (last, torn) = last_line(&mut file)?;
        let mut seq = match &last {
            None => 0,
            Some(l) => match record_seq(l) {
                Some(n) => n,
                // A log written before records were numbered: count once.
                None => count_records(&mut file)?,
            },
        };
        let mut prev = last.map(|l| line_digest(&l));
        let mut buf = Vec::new();
        let mut out = Appended::default();
        // A writer that died mid-line (a full disk) left a torn tail: start on a fresh line so
        // our records stay whole; `audit verify` reports the torn line.
        if torn {
            buf.push(b'\n');
        }
        for r in records.iter_mut() {
            seq += 1;
            r.prev = prev.take();
            r.seq = seq;
            let start = buf.len();
            serde_json::to_writer(&mut buf, &*r).map_err(std::io::Error::other)?;
            let line = buf.split_at(start).1;
            prev = Some(line_digest(line));
            out.lines.push(String::from_utf8_lossy(line).into_owned());
            buf.push(b'\n');
        }
        let checkpoint = match (opts.checkpoint_key, &prev) {
            (Some(key), Some(head)) if !records.is_empty() => Some(
                sign_checkpoint(
                    key,
                    CheckpointBody {
                        origin: origin(path),
                        seq,
                        head: head.clone(),
                        time: chrono::Utc::now()
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    },
                )
                .map_err(|e| std::io::Error::other(format!("signing the checkpoint: {e}")))?,
            ),
            _ => None,
        };
        file.write_all(&buf)?;
        file.sync_data()?;
        if let Some(line) = checkpoint {
            match append_line(&checkpoints_path(path), &line) {
                Ok(()) => out.checkpoint = Some(line),
                Err(e) => {
                    out.checkpoint_error = Some(format!(
                        "cannot write {}: {e}",
                        checkpoints_path(path).display()
                    ))
                }
            }
        }
        Ok(out)
    })();
    let _ = file.unlock();
    result.map_err(err)
}

/// `seq` of a record line, if it has one.
fn record_seq(line: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(line)
        .ok()?
        .get("seq")?
        .as_u64()
}

/// How many lines of the file are records (JSON objects).
fn count_records(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{BufRead, Seek, SeekFrom};
    file.seek(SeekFrom::Start(0))?;
    let mut n = 0;
    for line in std::io::BufReader::new(&mut *file).split(b'\n') {
        if let Ok(serde_json::Value::Object(_)) = serde_json::from_slice(&line?) {
            n += 1;
        }
    }
    Ok(n)
}

/// Append one line to a file and fsync it.
fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    f.write_all(&buf)?;
    f.sync_data()
}

/// Archive `policy` under its digest next to the log, unless it already is (written to a
/// temporary file, synced, then renamed: an archive is whole or absent).
pub fn archive_policy(log: &Path, policy: &Policy) -> std::io::Result<()> {
    let dest = archived_policy_path(log, &policy.digest);
    if dest.exists() {
        return Ok(());
    }
    let dir = policies_dir(log);
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&policy.manifest())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &dest)
}

/// `sha256:<hex>` of one line's bytes.
pub fn line_digest(line: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(line)))
}

/// The last complete line of the file (without newline), and whether the file ends in a torn
/// (unterminated) line. Reads backwards in chunks: records can be large. The first chunk is
/// 4 KiB (a push's record is under 1 KiB: one read of one page), each next one twice the last,
/// up to 64 KiB.
fn last_line(file: &mut std::fs::File) -> std::io::Result<(Option<Vec<u8>>, bool)> {
    last_line_from(file, 4 * 1024)
}

fn last_line_from(
    file: &mut std::fs::File,
    first_chunk: u64,
) -> std::io::Result<(Option<Vec<u8>>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((None, false));
    }
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    let mut chunk = first_chunk.clamp(1, 64 * 1024);
    loop {
        let start = pos.saturating_sub(chunk);
        chunk = (chunk * 2).min(64 * 1024);
        let mut buf = vec![0; (pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&tail);
        tail = buf;
        pos = start;
        let torn = !tail.ends_with(b"\n");
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if torn {
            // The torn tail is not a record; the chain continues from the last whole line.
            if let Some(nl) = body.iter().rposition(|&b| b == b'\n') {
                let (whole, _) = body.split_at(nl);
                if let Some(last) = after_last_newline(whole) {
                    return Ok((Some(last.to_vec()), true));
                }
                if pos == 0 {
                    return Ok((Some(whole.to_vec()), true));
                }
            } else if pos == 0 {
                return Ok((None, true));
            }
        } else if let Some(last) = after_last_newline(body) {
            return Ok((Some(last.to_vec()), false));
        } else if pos == 0 {
            return Ok((Some(body.to_vec()), false));
        }
    }
}

/// What follows the last line feed of `s`, if it has one.
fn after_last_newline(s: &[u8]) -> Option<&[u8]> {
    let nl = s.iter().rposition(|&b| b == b'\n')?;
    Some(s.split_at(nl + 1).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`last_line`] reads backwards in growing chunks; whatever the chunk sizes, it finds what
    /// a reading of the whole file finds: the last whole line, and whether a torn one follows.
    #[test]
    fn last_line_reads_as_the_whole_file_reads() {
        use std::io::Write;
        fn whole(text: &[u8]) -> (Option<Vec<u8>>, bool) {
            let torn = !text.is_empty() && !text.ends_with(b"\n");
            let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
            // split leaves "" after a final newline, or the torn line.
            let whole_lines = lines.len().saturating_sub(1);
            let last = (whole_lines > 0).then(|| lines[whole_lines - 1].to_vec());
            (last, torn)
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for case in 0..120 {
            let mut text = Vec::new();
            for _ in 0..next(6) {
                // Lines of 0 to 20,000 bytes, across every chunk boundary.
                let n = match next(3) {
                    0 => next(8),
                    1 => next(300),
                    _ => next(20_000),
                };
                text.extend((0..n).map(|i| b'a' + (i % 26) as u8));
                text.push(b'\n');
            }
            if next(2) == 0 {
                text.extend((0..next(9_000)).map(|_| b'z'));
            }
            std::fs::File::create(&path)
                .unwrap()
                .write_all(&text)
                .unwrap();
            for first in [1, 3, 100, 4096, 64 * 1024] {
                let mut f = std::fs::File::open(&path).unwrap();
                let got = last_line_from(&mut f, first).unwrap();
                assert_eq!(got, whole(&text), "case {case}, first chunk {first}");
            }
        }
    }

    #[test]
    fn appends_whole_lines_and_repairs_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let p = Pusher {
            name: "ada".into(),
            source: "GL_USERNAME".into(),
        };
        append(&path, &mut []).unwrap();
        std::fs::write(&path, b"{\"torn\":").unwrap();
        let u = crate::decision::RefUpdate {
            old: ObjectId::zero(20),
            new: ObjectId::parse(&"1".repeat(40)).unwrap(),
            refname: "refs/heads/main".into(),
        };
        let d = RefDecision::refused(
            u,
            crate::code::Code::PolicyInvalid,
            "x".into(),
            vec![],
            vec![],
        );
        let cx = Context {
            repo: dir.path(),
            mode: "pre-receive",
            pusher: &p,
            policy_path: None,
            policy_digest: None,
            notes: None,
            time: chrono::Utc::now(),
            syslog_error: None,
        };
        let mut recs = records(std::slice::from_ref(&d), &cx);
        append(&path, &mut recs).unwrap();
        let mut recs = records(std::slice::from_ref(&d), &cx);
        append(&path, &mut recs).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert!(v["prev"].is_null(), "the torn line is not chained to");
        let v2: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
        assert_eq!(v2["prev"], line_digest(lines[1].as_bytes()).as_str());
        assert_eq!(v["decision"], "refuse");
        assert_eq!(v["code"], "policy-invalid");
        assert_eq!(v["pusher"]["name"], "ada");
    }
}
