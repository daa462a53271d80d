//! `agentgate audit verify`: certify past promotions. Every logged decision is re-derived from
//! the repository, the policy and the attestations it names, with the inputs the hook recorded
//! (the known-covered protected tips and the baseline, the symbolic ref followed, the notes
//! commit, the decision time), and must
//! come out the same. The hash chain shows lines that were deleted, inserted or edited, and the
//! refs show moves that no logged decision explains.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use agentgate_git::{ObjectId, Repo};

use crate::attestations::attestation_source;
use crate::audit::line_digest;
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

pub struct Options<'a> {
    /// Use this repository instead of the one each record names.
    pub repo: Option<&'a Path>,
    /// Use this policy instead of the one each record names (its digest must still match).
    pub config: Option<&'a Path>,
}

pub fn verify(log: &[u8], opts: &Options<'_>) -> Report {
    let mut report = Report::default();
    let mut prev: Option<String> = None;
    let mut repos: BTreeMap<PathBuf, Option<Repo>> = BTreeMap::new();
    let mut policies: BTreeMap<PathBuf, Result<Policy, String>> = BTreeMap::new();
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
        prev = Some(line_digest(raw));

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
    policies: &mut BTreeMap<PathBuf, Result<Policy, String>>,
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

/// The policy a record was decided under (`--config`, else the one it names), loaded once per
/// path; its digest must be the recorded one.
fn policy_of<'p>(
    rec: &Value,
    n: usize,
    opts: &Options<'_>,
    policies: &'p mut BTreeMap<PathBuf, Result<Policy, String>>,
) -> Result<&'p Policy, Problem> {
    let digest = rec
        .pointer("/policy/digest")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
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
        .entry(policy_path.clone())
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
        ] {
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.as_str())
            );
        }
    }
}
