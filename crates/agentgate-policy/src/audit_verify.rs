//! `agentgate audit verify`: certify past promotions. Every logged decision is re-derived from
//! the repository, the policy and the attestations it names, with the inputs the hook recorded
//! (the known-covered protected tips and the baseline, the symbolic ref followed, the notes
//! commit, the decision time), and must
//! come out the same, each with the policy it was decided under (archived next to the log by
//! its digest, key files included). The hash chain shows lines that were deleted, inserted or
//! edited, and the refs show moves that no logged decision explains. With the server's public
//! key, the signed checkpoints (next to the log, and any copies from a collector) show records
//! removed from the end, and records no checkpoint covers (appended without the key).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use agentgate_git::{ObjectId, Repo};

use crate::attestations::attestation_source;
use agentgate_formats::checkpoint::{parse_checkpoint, verify_checkpoint, SignedCheckpoint};
use agentgate_formats::PublicKey;

use crate::audit::{archived_policy_path, checkpoints_path, line_digest, origin};
use crate::code::Code;
use crate::config::Policy;
use crate::decision::{Evaluator, Facts, RefDecision, RefUpdate};

/// What is wrong with a record (or the log): a stable kebab-case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemCode {
    /// A line that is not a JSON record (a torn write or an edit).
    NotARecord,
    /// The hash chain breaks: a record before it was deleted, inserted or edited.
    ChainBroken,
    /// The policy at the recorded path is not the one the decision was made under.
    PolicyChanged,
    /// Decided again, the decision comes out differently.
    DecisionMismatch,
    /// The decision cannot be made again (no policy, no repository, a bad field).
    CannotRederive,
    /// A ref moved without a logged decision that explains it.
    UnloggedRefMove,
    /// A checkpoint line that does not parse or whose signature fails with the key(s) given.
    CheckpointInvalid,
    /// A signed checkpoint names a head the log's record at that number does not hash to.
    CheckpointMismatch,
    /// A signed checkpoint covers more records than the log has: records were removed from
    /// the end.
    RecordsRemoved,
    /// Records after the last signed checkpoint: written by someone without the server key, or
    /// the hook stopped between the record and its checkpoint.
    UnsignedRecords,
}

impl ProblemCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemCode::NotARecord => "not-a-record",
            ProblemCode::ChainBroken => "chain-broken",
            ProblemCode::PolicyChanged => "policy-changed",
            ProblemCode::DecisionMismatch => "decision-mismatch",
            ProblemCode::CannotRederive => "cannot-rederive",
            ProblemCode::UnloggedRefMove => "unlogged-ref-move",
            ProblemCode::CheckpointInvalid => "checkpoint-invalid",
            ProblemCode::CheckpointMismatch => "checkpoint-mismatch",
            ProblemCode::RecordsRemoved => "records-removed",
            ProblemCode::UnsignedRecords => "unsigned-records",
        }
    }
}

impl std::fmt::Display for ProblemCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing wrong with the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number (0 for problems about the repository as a whole).
    pub line: usize,
    pub code: ProblemCode,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub records: usize,
    pub rederived: usize,
    /// Signed checkpoints of this log that verified (checked only with keys).
    pub checkpoints: usize,
    /// The highest record number a verified checkpoint covers.
    pub checkpointed: u64,
    pub problems: Vec<Problem>,
    /// Every update a break-glass override admitted (not a problem: a use to be seen).
    pub break_glass: Vec<BreakGlassReport>,
}

/// One logged use of a break-glass override.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BreakGlassReport {
    pub line: usize,
    pub time: String,
    #[serde(rename = "ref")]
    pub refname: String,
    pub old: String,
    pub new: String,
    pub pusher: String,
    /// The `break_glass` object of the record, as logged.
    pub detail: Value,
}

#[derive(Default)]
pub struct Options<'a> {
    /// Use this repository instead of the one each record names.
    pub repo: Option<&'a Path>,
    /// Use this policy instead of the one each record names (its digest must still match).
    pub config: Option<&'a Path>,
    /// Where the log is: its archived policies (`LOG.policies/`) and checkpoints
    /// (`LOG.checkpoints`) are next to it.
    pub log_path: Option<&'a Path>,
    /// The server's public keys: check the signed checkpoints (none: the chain only).
    pub keys: &'a [PublicKey],
    /// More checkpoints (a collector's copy: any text whose lines hold checkpoint JSON).
    pub checkpoints: &'a [(String, Vec<u8>)],
    /// The log's origin as its checkpoints name it (default: what the local checkpoints say,
    /// else the log's absolute path).
    pub origin: Option<&'a str>,
}

pub fn verify(log: &[u8], opts: &Options<'_>) -> Report {
    let mut report = Report::default();
    let mut prev: Option<String> = None;
    let mut repos: BTreeMap<PathBuf, Option<Repo>> = BTreeMap::new();
    let mut policies: BTreeMap<String, Result<Policy, String>> = BTreeMap::new();
    // Per record (by its number - 1): its line number and line digest, for the checkpoints.
    let mut heads: Vec<(usize, String)> = Vec::new();
    let mut seq_offset = 0u64;
    // Per (repo, ref): the last accepted new value.
    let mut last_accept: BTreeMap<(PathBuf, String), String> = BTreeMap::new();

    for (i, raw) in log.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        if raw.is_empty() {
            continue;
        }
        let rec: Value = match serde_json::from_slice(raw) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                report.problems.push(Problem {
                    line: n,
                    code: ProblemCode::NotARecord,
                    message: "not a JSON record (a torn write or an edit)".into(),
                });
                continue;
            }
        };
        report.records += 1;
        let expected_prev = rec.get("prev").and_then(Value::as_str).map(str::to_string);
        if expected_prev != prev {
            report.problems.push(Problem {
                line: n,
                code: ProblemCode::ChainBroken,
                message: "the hash chain breaks here: a record before this line was deleted, inserted or edited".into(),
            });
        }
        // Record numbers jump where records were removed (and the chain re-made by hand):
        // reported once per jump, not where the chain already broke.
        if let Some(seq) = rec.get("seq").and_then(Value::as_u64) {
            let offset = seq.wrapping_sub(report.records as u64);
            let jumped = offset != seq_offset;
            seq_offset = offset;
            if jumped && expected_prev == prev {
                report.problems.push(Problem {
                    line: n,
                    code: ProblemCode::ChainBroken,
                    message: format!(
                        "record number {seq} is the log's record {}: records before it were removed",
                        report.records
                    ),
                });
            }
        }
        prev = Some(line_digest(raw));
        heads.push((n, line_digest(raw)));

        let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let repo_path = opts
            .repo
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(s("repo")));
        if s("decision") == "accept" {
            last_accept.insert((repo_path.clone(), s("ref")), s("new"));
        }
        if s("code") == crate::code::Code::BreakGlass.as_str() || rec.get("break_glass").is_some() {
            report.break_glass.push(BreakGlassReport {
                line: n,
                time: s("time"),
                refname: s("ref"),
                old: s("old"),
                new: s("new"),
                pusher: rec
                    .pointer("/pusher/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                detail: rec.get("break_glass").cloned().unwrap_or(Value::Null),
            });
        }
        match rederive(&rec, n, &repo_path, opts, &mut repos, &mut policies) {
            Err(p) => report.problems.push(p),
            Ok(Rederived::Yes) => report.rederived += 1,
            Ok(Rederived::RefusedObjectsGone) => {}
        }
    }

    if !opts.keys.is_empty() {
        check_checkpoints(&heads, opts, &mut report);
    }

    // Refs that moved without a logged decision (only for refs the log knows).
    for ((repo_path, refname), new) in &last_accept {
        let Some(Some(repo)) = repos.get(repo_path) else {
            continue;
        };
        match repo.ref_target(refname) {
            Ok(Some(tip)) if tip.as_str() != new => report.problems.push(Problem {
                line: 0,
                code: ProblemCode::UnloggedRefMove,
                message: format!(
                    "{refname} in {} is at {} but the last accepted decision moved it to {}",
                    repo_path.display(),
                    tip.short(),
                    new.get(..7).unwrap_or(new)
                ),
            }),
            _ => {}
        }
    }
    report
}

/// How a record that is not a problem was checked.
enum Rederived {
    /// The decision was made again and came out the same.
    Yes,
    /// A logged refusal whose objects are not in the repository: git drops the quarantined
    /// objects of a refused push, so it cannot be re-derived. Refusals let nothing in, so this
    /// is no problem (an acceptance whose objects are gone still is one).
    RefusedObjectsGone,
}

/// A logged record's inputs to the decision, as the hook recorded them.
struct Recorded {
    update: RefUpdate,
    facts: Facts,
    notes: Option<ObjectId>,
    time: chrono::DateTime<chrono::Utc>,
}

/// A record's string field ("" when missing).
fn field(rec: &Value, k: &str) -> String {
    rec.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn cannot(n: usize, message: String) -> Problem {
    Problem {
        line: n,
        code: ProblemCode::CannotRederive,
        message,
    }
}

/// Decide the record's update again, with its policy, repository and recorded inputs, and
/// compare: the verdict, the code and the agent commits must be the logged ones.
fn rederive(
    rec: &Value,
    n: usize,
    repo_path: &Path,
    opts: &Options<'_>,
    repos: &mut BTreeMap<PathBuf, Option<Repo>>,
    policies: &mut BTreeMap<String, Result<Policy, String>>,
) -> Result<Rederived, Problem> {
    let logged = Code::parse(&field(rec, "code"));
    if logged.is_some_and(Code::is_policy_error) {
        // The policy could not be loaded at the time; the refusal itself is the decision.
        return if field(rec, "decision") == "refuse" {
            Ok(Rederived::Yes)
        } else {
            Err(cannot(n, "a policy error logged as an acceptance".into()))
        };
    }
    let policy = policy_of(rec, n, opts, policies)?;
    let repo = repos
        .entry(repo_path.to_path_buf())
        .or_insert_with(|| Repo::open(Some(repo_path)).ok())
        .as_ref()
        .ok_or_else(|| cannot(n, format!("cannot open repository {}", repo_path.display())))?;
    let r = recorded(rec, n)?;
    let source = attestation_source(repo, policy, r.notes, r.time)
        .map_err(|e| cannot(n, format!("attestations: {e}")))?;
    let d = Evaluator::new(repo, policy, source.as_ref()).replay(&r.update, &r.facts);
    compare(rec, n, &r.update, &d)
}

/// The policy a record was decided under: `--config`, else the one archived next to the log
/// under the record's digest, else the file at the path it names; loaded once per source. Its
/// digest must be the recorded one.
fn policy_of<'p>(
    rec: &Value,
    n: usize,
    opts: &Options<'_>,
    policies: &'p mut BTreeMap<String, Result<Policy, String>>,
) -> Result<&'p Policy, Problem> {
    let digest = rec
        .pointer("/policy/digest")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let (None, Some(log)) = (opts.config, opts.log_path) {
        let archived = archived_policy_path(log, &digest);
        if !digest.is_empty() && archived.exists() {
            let policy = policies
                .entry(format!("archive:{digest}"))
                .or_insert_with(|| {
                    std::fs::read(&archived)
                        .map_err(|e| e.to_string())
                        .and_then(|b| {
                            Policy::from_manifest(&b, &digest).map_err(|e| format!("{e:#}"))
                        })
                        .map_err(|e| format!("archived policy {}: {e}", archived.display()))
                })
                .as_ref()
                .map_err(|e| cannot(n, format!("policy: {e}")))?;
            return Ok(policy);
        }
    }
    let policy_path = opts
        .config
        .map(Path::to_path_buf)
        .or_else(|| {
            rec.pointer("/policy/path")
                .and_then(Value::as_str)
                .map(PathBuf::from)
        })
        .ok_or_else(|| cannot(n, "the record names no policy".into()))?;
    let policy = policies
        .entry(format!("path:{}", policy_path.display()))
        .or_insert_with(|| Policy::load(&policy_path).map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| cannot(n, format!("policy: {e}")))?;
    if policy.digest != digest {
        return Err(Problem {
            line: n,
            code: ProblemCode::PolicyChanged,
            message: format!("the decision was made under policy {digest}, but {} is now {} (pass the old policy with --config)", policy_path.display(), policy.digest),
        });
    }
    Ok(policy)
}

/// Check the signed checkpoints against the records' heads: every verified checkpoint must
/// name a record the log has, with that head, and the last record must be covered.
fn check_checkpoints(heads: &[(usize, String)], opts: &Options<'_>, report: &mut Report) {
    let mut problem = |line, code, message| {
        report.problems.push(Problem {
            line,
            code,
            message,
        })
    };
    // The log's own checkpoints: every line must be one, signed by a given key.
    let mut local: Vec<SignedCheckpoint> = Vec::new();
    if let Some(log) = opts.log_path {
        let path = checkpoints_path(log);
        let text = std::fs::read(&path).unwrap_or_default();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            match parse_checkpoint(line).and_then(|c| verify_checkpoint(&c, opts.keys).map(|_| c)) {
                Ok(c) => local.push(c),
                Err(e) => problem(
                    0,
                    ProblemCode::CheckpointInvalid,
                    format!("{}:{}: {e}", path.display(), i + 1),
                ),
            }
        }
    }
    let origin = opts
        .origin
        .map(str::to_string)
        .or_else(|| local.first().map(|c| c.body.origin.clone()))
        .or_else(|| opts.log_path.map(origin));
    // Copies from elsewhere: lines holding a checkpoint of this log signed by a given key
    // (a collector holds other lines, other logs' and other servers' checkpoints too).
    let mut external: Vec<(String, SignedCheckpoint)> = Vec::new();
    for (name, text) in opts.checkpoints {
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let Some(start) = line.iter().position(|&b| b == b'{') else {
                continue;
            };
            let json = line.get(start..).unwrap_or_default().trim_ascii_end();
            let Ok(c) = parse_checkpoint(json) else {
                continue;
            };
            if Some(&c.body.origin) == origin.as_ref() && verify_checkpoint(&c, opts.keys).is_ok() {
                external.push((format!("{name}:{}", i + 1), c));
            }
        }
    }
    let all = local
        .iter()
        .map(|c| ("the local checkpoints".to_string(), c))
        .chain(external.iter().map(|(w, c)| (w.clone(), c)));
    let mut covered = 0u64;
    for (from, c) in all {
        if Some(&c.body.origin) != origin.as_ref() {
            problem(
                0,
                ProblemCode::CheckpointInvalid,
                format!(
                    "a checkpoint in {from} is for the log {}, not {}",
                    c.body.origin,
                    origin.as_deref().unwrap_or("?")
                ),
            );
            continue;
        }
        report.checkpoints += 1;
        let seq = c.body.seq;
        let index = usize::try_from(seq).unwrap_or(usize::MAX).wrapping_sub(1);
        match heads.get(index) {
            None => problem(
                0,
                ProblemCode::RecordsRemoved,
                format!(
                    "a checkpoint signed at {} ({from}) covers {seq} records, but the log has {}: the last {} were removed",
                    c.body.time,
                    heads.len(),
                    seq.saturating_sub(heads.len() as u64)
                ),
            ),
            Some((line, head)) if *head != c.body.head => problem(
                *line,
                ProblemCode::CheckpointMismatch,
                format!(
                    "a checkpoint signed at {} ({from}) says record {seq} hashes to {}, but it hashes to {head}",
                    c.body.time, c.body.head
                ),
            ),
            Some(_) => covered = covered.max(seq),
        }
    }
    report.checkpointed = covered;
    if let Some((line, _)) = heads.get(usize::try_from(covered).unwrap_or(usize::MAX)) {
        problem(
            *line,
            ProblemCode::UnsignedRecords,
            format!(
                "records {}..={} are covered by no checkpoint signed by the key(s) given",
                covered + 1,
                heads.len()
            ),
        );
    }
}

/// The update, the facts, the notes commit and the time the record holds.
fn recorded(rec: &Value, n: usize) -> Result<Recorded, Problem> {
    let id =
        |k: &str| ObjectId::parse(&field(rec, k)).map_err(|_| cannot(n, format!("bad {k} id")));
    let update = RefUpdate {
        old: id("old")?,
        new: id("new")?,
        refname: field(rec, "ref"),
    };
    let ids = |k: &str| -> Vec<ObjectId> {
        rec.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter_map(|h| ObjectId::parse(h).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let facts = Facts {
        resolved_ref: rec
            .get("resolved_ref")
            .and_then(Value::as_str)
            .map(str::to_string),
        known_covered: ids("known_covered"),
        baseline: ids("baseline"),
        git_ai_notes: rec
            .get("git_ai_notes")
            .and_then(Value::as_str)
            .and_then(|c| ObjectId::parse(c).ok()),
    };
    let notes = rec
        .pointer("/notes/commit")
        .and_then(Value::as_str)
        .and_then(|c| ObjectId::parse(c).ok());
    let time = chrono::DateTime::parse_from_rfc3339(&field(rec, "time"))
        .map_err(|_| cannot(n, "bad time".into()))?
        .with_timezone(&chrono::Utc);
    Ok(Recorded {
        update,
        facts,
        notes,
        time,
    })
}

/// The decision made again against the logged one.
fn compare(
    rec: &Value,
    n: usize,
    update: &RefUpdate,
    d: &RefDecision,
) -> Result<Rederived, Problem> {
    let code = field(rec, "code");
    let logged = Code::parse(&code);
    let decision = d.outcome.verdict();
    let logged_agents: Vec<&str> = rec
        .get("agent_commits")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| c.get("commit").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let agents: Vec<&str> = d.agent_commits.iter().map(|c| c.commit.as_str()).collect();
    if field(rec, "decision") == "refuse" && d.outcome.code() == Code::UnknownObject {
        return Ok(Rederived::RefusedObjectsGone);
    }
    if decision != field(rec, "decision")
        || logged != Some(d.outcome.code())
        || agents != logged_agents
    {
        return Err(Problem {
            line: n,
            code: ProblemCode::DecisionMismatch,
            message: format!(
                "logged {} [{}] for {} {}..{}, re-derived {} [{}] ({} vs {} agent commits)",
                field(rec, "decision"),
                code,
                update.refname,
                update.old.short(),
                update.new.short(),
                decision,
                d.outcome.code(),
                logged_agents.len(),
                agents.len()
            ),
        });
    }
    Ok(Rederived::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_serialize_as_their_strings() {
        for c in [
            ProblemCode::NotARecord,
            ProblemCode::ChainBroken,
            ProblemCode::PolicyChanged,
            ProblemCode::DecisionMismatch,
            ProblemCode::CannotRederive,
            ProblemCode::UnloggedRefMove,
            ProblemCode::CheckpointInvalid,
            ProblemCode::CheckpointMismatch,
            ProblemCode::RecordsRemoved,
            ProblemCode::UnsignedRecords,
        ] {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }
}
