//! `agentgate audit verify` and `agentgate audit report`: certify past decisions from the
//! audit log (the re-derivation is agentgate-policy's `audit_verify`), and show them to people
//! (`audit_report`, one self-contained HTML page).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_formats::PublicKey;
use agentgate_git::Repo;
use agentgate_policy::{audit, audit_report, audit_verify, config};
use anyhow::Context as _;
use clap::Subcommand;

use crate::exit;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-derive every logged decision and check the log's hash chain (and, with --key, its
    /// signed checkpoints); exit 1 on any problem.
    #[command(
        after_help = "Exit codes: 0 every decision re-derived identically and the chain is intact, \
1 a problem (listed by code), 2 usage error.

Examples:
  agentgate audit verify /var/log/agentgate/audit.jsonl
  agentgate audit verify --key /etc/agentgate/server.pub \\
      /var/log/agentgate/audit.jsonl
  agentgate audit verify --repo /srv/git/app.git --key server.pub \\
      --checkpoints /var/log/central/agentgate.log
  agentgate audit verify --repo /srv/git/app.git --config old-policy.toml \\
      --json audit.jsonl    # decided under an older policy
  sudo -u git agentgate audit verify /var/log/agentgate/audit.jsonl

Each record is re-derived with the policy it names, archived next to the log
(LOG.policies/)."
    )]
    Verify(AuditVerifyArgs),
    /// Write a readable report of the log: one self-contained HTML page.
    #[command(after_help = "Examples:
  agentgate audit report --html report.html /var/log/agentgate/audit.jsonl
  agentgate audit report --repo /srv/git/app.git --since 2026-01-01 \\
      --key server.pub --html report.html")]
    Report(AuditReportArgs),
}

/// Which log, found as the hook finds it when not named.
#[derive(Debug, clap::Args)]
pub struct LogArgs {
    /// The audit log (JSON Lines). Default: the one the policy of --repo names
    /// ([audit] log), else --repo's agentgate/audit.jsonl.
    pub log: Option<PathBuf>,
    /// Repository to re-derive against (default: the one each record names); also where the
    /// log is looked for.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Policy to re-derive with (default: the one each record names, archived next to the
    /// log; its digest must match); also where the log is looked for.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's public key: check the signed checkpoints. Repeat for a rotated key.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// More checkpoints, e.g. a syslog collector's file (lines with checkpoint JSON).
    #[arg(long, value_name = "FILE")]
    pub checkpoints: Vec<PathBuf>,
    /// The log's path on the server, as its checkpoints name it (for a copy of the log).
    #[arg(long, value_name = "PATH")]
    pub origin: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AuditReportArgs {
    #[command(flatten)]
    pub log: LogArgs,
    /// Only records at or after this date (YYYY-MM-DD, or an RFC 3339 time).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Where to write the HTML page.
    #[arg(long, value_name = "OUT")]
    pub html: PathBuf,
}

/// The log to read: named, or the one the policy of --repo / --config names.
fn find_log(a: &LogArgs) -> anyhow::Result<PathBuf> {
    if let Some(l) = &a.log {
        return Ok(l.clone());
    }
    let Some(repo_path) = &a.repo else {
        anyhow::bail!("name the audit log, or give --repo to find it as the hook does");
    };
    let repo = Repo::open(Some(repo_path));
    let git_dir = match &repo {
        Ok(r) => r.git_dir().to_path_buf(),
        Err(_) => repo_path.clone(),
    };
    let policy = config::load_for(a.config.as_deref(), Some(repo.as_ref()), Some(&git_dir)).ok();
    Ok(audit::audit_path(policy.as_ref(), &git_dir))
}

fn read_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the public key {}", p.display()))?;
            PublicKey::from_pem(&text)
                .with_context(|| format!("cannot load the public key {}", p.display()))
        })
        .collect()
}

/// Read the log and verify it as the arguments say.
fn run_verify(a: &LogArgs, log_path: &Path, log: &[u8]) -> anyhow::Result<audit_verify::Report> {
    // A repository this user may not read (another user's, as git sees it): say whom to run
    // as, instead of one "cannot open repository" per record.
    for repo in logged_repos(a, log) {
        if let Some((owner, _)) = crate::owner::owner_of(&repo) {
            if crate::owner::current_uid() != Some(owner) {
                crate::owner::open_repo(&repo)?;
            }
        }
    }
    let keys = read_keys(&a.keys)?;
    let mut checkpoints = Vec::new();
    for p in &a.checkpoints {
        let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        checkpoints.push((p.display().to_string(), text));
    }
    let opts = audit_verify::Options {
        repo: a.repo.as_deref(),
        config: a.config.as_deref(),
        log_path: Some(log_path),
        keys: &keys,
        checkpoints: &checkpoints,
        origin: a.origin.as_deref(),
    };
    Ok(audit_verify::verify(log, &opts))
}

pub(super) fn verify(a: &AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let path = find_log(&a.log)?;
    let log = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let report = run_verify(&a.log, &path, &log)?;
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
        if !a.log.keys.is_empty() {
            writeln!(
                out,
                "{} signed checkpoint(s) verified, covering records 1..={}",
                report.checkpoints, report.checkpointed
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

pub(super) fn report(a: &AuditReportArgs) -> anyhow::Result<ExitCode> {
    let path = find_log(&a.log)?;
    let log = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let since = a
        .since
        .as_deref()
        .map(audit_report::parse_since)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let verified = run_verify(&a.log, &path, &log)?;
    let html = audit_report::html(&log, since, &verified, &path.display().to_string());
    std::fs::write(&a.html, html).with_context(|| format!("writing {}", a.html.display()))?;
    println!(
        "wrote {} ({} record(s); chain: {} problem(s))",
        a.html.display(),
        verified.records,
        verified.problems.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The repositories the re-derivation will open: `--repo`, else each record's.
fn logged_repos(a: &LogArgs, log: &[u8]) -> std::collections::BTreeSet<PathBuf> {
    if let Some(r) = &a.repo {
        return [r.clone()].into();
    }
    log.split(|&b| b == b'\n')
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("repo")?.as_str().map(PathBuf::from))
        .collect()
}
