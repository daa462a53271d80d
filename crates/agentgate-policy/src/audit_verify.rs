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
use crate::decision::{Evaluator, Facts, RefUpdate};

/// One thing wrong with the log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number (0 for problems about the repository as a whole).
    pub line: usize,
    /// Stable code: `not-a-record`, `chain-broken`, `policy-changed`, `decision-mismatch`,
    /// `cannot-rederive`, `unlogged-ref-move`.
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub records: usize,
    pub rederived: usize,
    pub problems: Vec<Problem>,
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
                    code: "not-a-record",
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
                code: "chain-broken",
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
                code: "unlogged-ref-move",
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

fn rederive(
    rec: &Value,
    n: usize,
    repo_path: &Path,
    opts: &Options<'_>,
    repos: &mut BTreeMap<PathBuf, Option<Repo>>,
    policies: &mut BTreeMap<PathBuf, Result<Policy, String>>,
) -> Result<Rederived, Problem> {
    let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let cannot = |m: String| Problem {
        line: n,
        code: "cannot-rederive",
        message: m,
    };
    let code = s("code");
    let logged = Code::parse(&code);
    if logged.is_some_and(Code::is_policy_error) {
        // The policy could not be loaded at the time; the refusal itself is the decision.
        return if s("decision") == "refuse" {
            Ok(Rederived::Yes)
        } else {
            Err(cannot("a policy error logged as an acceptance".into()))
        };
    }
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
        .ok_or_else(|| cannot("the record names no policy".into()))?;
    let policy = policies
        .entry(policy_path.clone())
        .or_insert_with(|| Policy::load(&policy_path).map_err(|e| format!("{e:#}")));
    let policy = policy
        .as_ref()
        .map_err(|e| cannot(format!("policy: {e}")))?;
    if policy.digest != digest {
        return Err(Problem {
            line: n,
            code: "policy-changed",
            message: format!("the decision was made under policy {digest}, but {} is now {} (pass the old policy with --config)", policy_path.display(), policy.digest),
        });
    }
    let repo = repos
        .entry(repo_path.to_path_buf())
        .or_insert_with(|| Repo::open(Some(repo_path)).ok());
    let repo = repo
        .as_ref()
        .ok_or_else(|| cannot(format!("cannot open repository {}", repo_path.display())))?;

    let id = |k: &str| ObjectId::parse(&s(k)).map_err(|_| cannot(format!("bad {k} id")));
    let update = RefUpdate {
        old: id("old")?,
        new: id("new")?,
        refname: s("ref"),
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
    };
    let notes = rec
        .pointer("/notes/commit")
        .and_then(Value::as_str)
        .and_then(|c| ObjectId::parse(c).ok());
    let time = chrono::DateTime::parse_from_rfc3339(&s("time"))
        .map_err(|_| cannot("bad time".into()))?
        .with_timezone(&chrono::Utc);
    let source = attestation_source(repo, policy, notes, time)
        .map_err(|e| cannot(format!("attestations: {e}")))?;
    let d = Evaluator::new(repo, policy, source.as_ref()).replay(&update, &facts);

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
    if s("decision") == "refuse" && d.outcome.code() == Code::UnknownObject {
        return Ok(Rederived::RefusedObjectsGone);
    }
    if decision != s("decision") || logged != Some(d.outcome.code()) || agents != logged_agents {
        return Err(Problem {
            line: n,
            code: "decision-mismatch",
            message: format!(
                "logged {} [{}] for {} {}..{}, re-derived {} [{}] ({} vs {} agent commits)",
                s("decision"),
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
