//! `agentgate audit verify`: certify past decisions from the audit log (the re-derivation is
//! agentgate-policy's `audit_verify`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_policy::audit_verify;
use anyhow::Context as _;
use clap::Subcommand;

use crate::exit;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-derive every logged decision and check the log's hash chain; exit 1 on any problem.
    #[command(
        after_help = "Exit codes: 0 every decision re-derived identically and the chain is intact, \
1 a problem (listed by code), 2 usage error.

Examples:
  agentgate audit verify /var/log/agentgate/audit.jsonl
  agentgate audit verify --json /var/log/agentgate/audit.jsonl
  agentgate audit verify --repo /srv/git/app.git --config old-policy.toml \\
      /var/log/agentgate/audit.jsonl    # decided under an older policy
  sudo -u git agentgate audit verify /var/log/agentgate/audit.jsonl"
    )]
    Verify(AuditVerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct AuditVerifyArgs {
    /// The audit log (JSON Lines).
    pub log: PathBuf,
    /// Repository to re-derive against (default: the one each record names).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Policy to re-derive with (default: the one each record names; its digest must match).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn verify(a: &AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let log = std::fs::read(&a.log).with_context(|| format!("reading {}", a.log.display()))?;
    // A repository this user may not read (another user's, as git sees it): say whom to run
    // as, instead of one "cannot open repository" per record.
    for repo in logged_repos(a, &log) {
        if let Some((owner, _)) = crate::owner::owner_of(&repo) {
            if crate::owner::current_uid() != Some(owner) {
                crate::owner::open_repo(&repo)?;
            }
        }
    }
    let opts = audit_verify::Options {
        repo: a.repo.as_deref(),
        config: a.config.as_deref(),
    };
    let report = audit_verify::verify(&log, &opts);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for p in &report.problems {
            if p.line > 0 {
                writeln!(out, "line {}: [{}] {}", p.line, p.code, p.message)?;
            } else {
                writeln!(out, "[{}] {}", p.code, p.message)?;
            }
        }
        for b in &report.break_glass {
            let field = |k: &str| b.detail.get(k).and_then(|v| v.as_str()).unwrap_or("?");
            writeln!(
                out,
                "line {}: [break-glass] {} {}..{} pushed by {} at {}: override signed by {} ({}), reason {:?}, overrode [{}]",
                b.line,
                b.refname,
                b.old.get(..7).unwrap_or(&b.old),
                b.new.get(..7).unwrap_or(&b.new),
                b.pusher,
                b.time,
                field("signer"),
                b.detail
                    .pointer("/issuer/email")
                    .and_then(|v| v.as_str())
                    .unwrap_or("?"),
                field("reason"),
                field("overridden"),
            )?;
        }
        writeln!(
            out,
            "{} record(s), {} re-derived identically, {} problem(s), {} break-glass use(s)",
            report.records,
            report.rederived,
            report.problems.len(),
            report.break_glass.len()
        )?;
    }
    Ok(exit::ok_or_refused(
        report.problems.is_empty() && report.records > 0,
    ))
}

/// The repositories the re-derivation will open: `--repo`, else each record's.
fn logged_repos(a: &AuditVerifyArgs, log: &[u8]) -> std::collections::BTreeSet<PathBuf> {
    if let Some(r) = &a.repo {
        return [r.clone()].into();
    }
    log.split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("repo")?.as_str().map(PathBuf::from))
        .collect()
}
