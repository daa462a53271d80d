//! `agentgate inspect`: each commit's trailers and the detection rules it matches, with their
//! evidence and where it sat (trailer block, body, subject, identity, notes), read as the hook
//! reads it.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_git::{ObjectId, ReadError, Repo};
use agentgate_policy::config::{self, PolicyError};
use agentgate_policy::detect::{Detect, Detector, Match, Source};
use agentgate_policy::git_ai::{self, GitAiNotes};
use agentgate_policy::trailers::{self, TrailerConfig};
use agentgate_policy::Code;

use crate::exit;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Revisions as `git rev-list` reads them: `main`, `A..B`, `HEAD~5..`, `^A B`.
    #[arg(value_name = "REV-RANGE", required = true, allow_hyphen_values = true)]
    pub revs: Vec<String>,
    /// Repository (bare or not); default: discovered from the current directory.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Policy whose detection rules to apply (default: found as the hook finds it, else the
    /// built-in `known-agents` preset).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// One JSON object per commit per line.
    #[arg(long)]
    pub json: bool,
}

/// One line of `inspect --json`, keys in the documented order.
#[derive(serde::Serialize)]
struct InspectLine<'a> {
    commit: &'a ObjectId,
    trailers: &'a [trailers::Trailer],
    agent: bool,
    rules: Vec<&'a str>,
    /// Each rule that matched, with its evidence and where that sat.
    matches: &'a [Match],
}

pub(super) fn inspect(a: &InspectArgs) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(a.repo.as_deref())?;
    let detect = match config::load_for(a.config.as_deref(), Some(Ok(&repo)), Some(repo.git_dir()))
    {
        Ok(p) => p.detect,
        Err(PolicyError::NotFound { .. }) if a.config.is_none() => Detect::known_agents(),
        Err(e) => return Err(e.into()),
    };
    let detector = Detector::new(&detect);
    // git-ai's notes as the repository has them now (the hook reads the push's).
    let git_ai = match detect.has_source(Source::GitAi) {
        true => repo
            .ref_target(git_ai::NOTES_REF)?
            .map(|c| GitAiNotes::load(&repo, &c))
            .transpose()?,
        false => None,
    };
    let tc = TrailerConfig::from_config(repo.config_entries()?);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut unreadable = 0;
    for id in repo.rev_list(&a.revs)? {
        // A commit the hook would refuse to read (object-malformed, encoding-unsupported) is
        // reported, not skipped: it is exactly what someone inspecting wants to see.
        let c = match repo.commit(&id) {
            Ok(c) => c,
            Err(ReadError::Object(e)) => {
                unreadable += 1;
                let code = Code::of_object_error(&e);
                if a.json {
                    let line = serde_json::json!({
                        "commit": id,
                        "error": {"code": code, "message": e.to_string()},
                    });
                    serde_json::to_writer(&mut out, &line)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{} ERROR [{code}] {e}", id.short())?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let parsed = trailers::parse_block(&c.message, &tc);
        let mut matches = detector.detect(&c, &parsed);
        if let Some(notes) = &git_ai {
            if let Some(blob) = notes.index.get(c.id.as_str()) {
                matches.extend(notes.evidence(&repo, &c.id, blob)?);
            }
        }
        let trailers = parsed.trailers;
        if a.json {
            let line = InspectLine {
                commit: &c.id,
                trailers: &trailers,
                agent: !matches.is_empty(),
                rules: matches.iter().map(|m| m.rule.as_str()).collect(),
                matches: &matches,
            };
            serde_json::to_writer(&mut out, &line)?;
            writeln!(out)?;
        } else {
            let tag = if matches.is_empty() { "human" } else { "AGENT" };
            writeln!(out, "{} {tag:5} {}", c.id.short(), c.subject())?;
            for t in &trailers {
                writeln!(out, "    trailer {}: {}", t.key, t.value)?;
            }
            for m in &matches {
                writeln!(out, "    rule {}: {} [{}]", m.rule, m.evidence, m.location)?;
            }
        }
    }
    out.flush()?;
    Ok(exit::ok_or_refused(unreadable == 0))
}
