//! `agentgate check`: a dry run of the hook for one ref update in a repository.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_git::{ObjectId, Repo};
use agentgate_policy::attestations::{attestation_source, notes_commit};
use agentgate_policy::config;
use agentgate_policy::decision::{
    render, valid_refname, Evaluator, Outcome, RefDecision, RefUpdate,
};

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Old value (an id, a revision, or all zeros for a new ref).
    pub old: String,
    /// New value (an id, a revision, or all zeros for a deletion).
    pub new: String,
    /// The full ref name, like refs/heads/main.
    #[arg(value_name = "REF")]
    pub refname: String,
    /// The policy to decide with (default: found as the hook finds it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Repository (bare or not); default: discovered from the current directory.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Print the decision as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// An id, a revision, or zeros.
fn resolve_arg(repo: &Repo, s: &str) -> anyhow::Result<ObjectId> {
    if !s.is_empty() && s.bytes().all(|b| b == b'0') {
        return Ok(ObjectId::zero(repo.hash_bytes()));
    }
    Ok(repo.resolve(s)?)
}

pub(super) fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(a.repo.as_deref())?;
    let policy = config::load_for(a.config.as_deref(), Some(Ok(&repo)), Some(repo.git_dir()))?;
    let update = RefUpdate {
        old: resolve_arg(&repo, &a.old)?,
        new: resolve_arg(&repo, &a.new)?,
        refname: a.refname.clone(),
    };
    if !valid_refname(&update.refname) {
        anyhow::bail!(
            "{:?} is not a full ref name (like refs/heads/main)",
            update.refname
        );
    }
    let notes = notes_commit(&repo, &policy, std::slice::from_ref(&update))?;
    let source = attestation_source(&repo, &policy, notes, chrono::Utc::now())?;
    let d = Evaluator::new(&repo, &policy, source.as_ref())
        .with_push(std::slice::from_ref(&update))
        .decide(&update);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &decision_json(&d))?;
        writeln!(out)?;
    } else {
        match &d.outcome {
            Outcome::Accept(_) => {
                writeln!(out, "accept [{}] {}", d.outcome.code(), d.update.refname)?;
                write!(out, "{}", render(std::slice::from_ref(&d), ""))?;
                for c in &d.agent_commits {
                    writeln!(
                        out,
                        "  agent commit {} {} ({})",
                        c.commit.short(),
                        c.subject,
                        c.matches
                            .iter()
                            .map(|m| m.rule.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                }
            }
            Outcome::Refuse(_) => write!(out, "{}", render(std::slice::from_ref(&d), ""))?,
        }
    }
    Ok(exit::ok_or_refused(d.accepted()))
}

/// A decision as JSON (for `check --json`).
pub fn decision_json(d: &RefDecision) -> serde_json::Value {
    let (reason, details, fix) = match &d.outcome {
        Outcome::Accept(_) => (None, vec![], vec![]),
        Outcome::Refuse(r) => (Some(r.headline.clone()), r.details.clone(), r.fix.clone()),
    };
    serde_json::json!({
        "ref": d.update.refname,
        "old": d.update.old,
        "new": d.update.new,
        "decision": d.outcome.verdict(),
        "code": d.outcome.code(),
        "protected_by": d.protected_by,
        "entering_commits": d.entering,
        "agent_commits": d.agent_commits,
        "attestations": d.attestations,
        "break_glass": d.break_glass,
        "reason": reason,
        "details": details,
        "fix": fix,
    })
}
