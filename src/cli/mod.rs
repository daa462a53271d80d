//! The command line: the one place that parses arguments, prints to a terminal and turns
//! results into exit codes (0 accept/success, 1 refuse/failed check, 2 configuration or usage
//! error).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use crate::git::{ObjectId, Repo};
use crate::hook::{self, Evaluator, Outcome, RefDecision, RefUpdate};
use crate::push::{self, Mode, EXIT_CONFIG};

#[derive(Debug, Parser)]
#[command(
    name = "agentgate",
    version,
    about = "Let AI-agent commits into protected branches only through a compile-test-sign gate",
    after_help = "Exit codes: 0 accepted/verified, 1 refused/not verified, 2 configuration or usage error.\n\nStart with `agentgate demo` to see a refused and an accepted push on a throwaway server."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Server hook: read "<old> <new> <ref>" lines on stdin, refuse the push if any protected ref
    /// would take unattested agent commits.
    #[command(
        after_help = "Example (hooks/pre-receive):\n  exec agentgate pre-receive --config /etc/agentgate/policy.toml"
    )]
    PreReceive(HookArgs),
    /// Server hook for one ref (git's `update` hook, gitolite VREFs).
    #[command(
        after_help = "Example (hooks/update):\n  exec agentgate update \"$1\" \"$2\" \"$3\""
    )]
    Update(UpdateArgs),
    /// Dry run: what would the hook decide for OLD NEW REF in this repository?
    #[command(
        after_help = "Examples:\n  agentgate check --repo /srv/git/app.git $(git rev-parse main) $(git rev-parse feature) refs/heads/main\n  agentgate check --json 0000000000000000000000000000000000000000 HEAD refs/heads/release/1.0"
    )]
    Check(CheckArgs),
    /// Show each commit's trailers and the detection rules it matches.
    #[command(
        after_help = "Examples:\n  agentgate inspect main..feature\n  agentgate inspect --repo /srv/git/app.git --json HEAD~10..HEAD\n\nExit status: 0, or 1 when a commit cannot be read as the hook reads it\n(object-malformed, encoding-unsupported; shown as ERROR lines)."
    )]
    Inspect(InspectArgs),
    /// Write a signing key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).
    Keygen(crate::attest::cmd::KeygenArgs),
    /// Sign provenance and test-result attestations for a commit's artifacts.
    Sign(crate::attest::cmd::SignArgs),
    /// Check out one commit, build and test it in a scrubbed environment, sign the attestations.
    Gate(crate::gate::GateArgs),
    /// Verify an artifact against a Sigstore bundle, offline.
    Verify(crate::attest::cmd::VerifyArgs),
    /// Verify a Sigstore bundle (sigstore-conformance client protocol).
    #[command(hide = true)]
    VerifyBundle(crate::attest::sigstore::VerifyBundleArgs),
    /// Sign an in-toto statement keylessly (OIDC token, Fulcio, Rekor) into a Sigstore bundle.
    #[cfg(feature = "keyless-sign")]
    #[command(hide = true)]
    SignKeylessStatement(crate::attest::keyless::SignKeylessArgs),
    /// Certify past decisions from the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Install the hook into a bare repository.
    #[command(
        after_help = "Examples:\n  agentgate install --repo /srv/git/app.git --config /etc/agentgate/policy.toml\n  agentgate install --repo /var/opt/gitlab/git-data/repositories/@hashed/ab/cd/abcd.git --layout gitlab\n  agentgate install --hooks-dir /srv/git/hooks   # shared through core.hooksPath\n\nA hook already at the path is kept as <hook>.agentgate-chained and runs first; `agentgate uninstall` puts it back."
    )]
    Install(crate::install::InstallArgs),
    /// Remove the hook; a hook that was there before agentgate is put back exactly.
    #[command(
        after_help = "Examples:\n  agentgate uninstall --repo /srv/git/app.git\n  agentgate uninstall --repo /srv/git/app.git --layout gitlab"
    )]
    Uninstall(crate::install::UninstallArgs),
    /// Check an installation: hooks, binary, policy, keys, notes, audit log, git version.
    #[command(
        after_help = "Exit codes: 0 every check passed, 1 something to fix, 2 usage error.\n\nExamples:\n  sudo -u git agentgate doctor --repo /srv/git/app.git\n  agentgate doctor --hooks-dir /srv/git/hooks --json"
    )]
    Doctor(crate::doctor::DoctorArgs),
    /// A throwaway server: an agent commit refused, then the fix.
    Demo(crate::demo::DemoArgs),
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  agentgate completions bash > /etc/bash_completion.d/agentgate"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-derive every logged decision and check the log's hash chain; exit 1 on any problem.
    #[command(
        after_help = "Examples:\n  agentgate audit verify /var/log/agentgate/audit.jsonl\n  agentgate audit verify --repo /srv/git/app.git --config old-policy.toml --json audit.jsonl"
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

#[derive(Debug, clap::Args)]
pub struct HookArgs {
    /// Policy file (default: $AGENTGATE_CONFIG, git config agentgate.config, $GIT_DIR/agentgate.toml, /etc/agentgate/policy.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    #[arg(value_name = "REF")]
    pub refname: String,
    pub old: String,
    pub new: String,
    #[command(flatten)]
    pub hook: HookArgs,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Old value (an id, a revision, or all zeros for a new ref).
    pub old: String,
    /// New value (an id, a revision, or all zeros for a deletion).
    pub new: String,
    #[arg(value_name = "REF")]
    pub refname: String,
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Repository (bare or not); default: discovered from the current directory.
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// Print the decision as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Revisions as `git rev-list` reads them: `main`, `A..B`, `HEAD~5..`, `^A B`.
    #[arg(value_name = "REV-RANGE", required = true, allow_hyphen_values = true)]
    pub revs: Vec<String>,
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let hook_mode = matches!(cli.command, Command::PreReceive(_) | Command::Update(_));
    // A panic must never let a push through: report it and refuse.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            let prefix = if hook_mode {
                push::message_prefix()
            } else {
                ""
            };
            eprintln!("{prefix}agentgate: error: {e:#}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(_) => {
            let prefix = if hook_mode {
                push::message_prefix()
            } else {
                ""
            };
            eprintln!("{prefix}agentgate: refused [{}] internal error (see the message above); please report it", hook::Code::InternalError.as_str());
            ExitCode::from(push::EXIT_REFUSE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::PreReceive(a) => {
            let mut input = Vec::new();
            std::io::stdin()
                .lock()
                .take(crate::hook::MAX_STDIN)
                .read_to_end(&mut input)
                .context("reading the ref updates from stdin")?;
            let updates = if input.len() as u64 >= crate::hook::MAX_STDIN {
                Err(hook::StdinError {
                    line: 0,
                    reason: "more input than any push sends".into(),
                })
            } else {
                hook::parse_updates(&input)
            };
            let code = push::run_hook(
                Mode::PreReceive,
                a.config.as_deref(),
                updates,
                &mut std::io::stderr(),
            );
            Ok(ExitCode::from(code))
        }
        Command::Update(a) => {
            let line = format!("{} {} {}\n", a.old, a.new, a.refname);
            let updates = hook::parse_updates(line.as_bytes());
            let code = push::run_hook(
                Mode::Update,
                a.hook.config.as_deref(),
                updates,
                &mut std::io::stderr(),
            );
            Ok(ExitCode::from(code))
        }
        Command::Check(a) => check(a),
        Command::Inspect(a) => inspect(a),
        Command::Keygen(a) => crate::attest::cmd::keygen(&a),
        Command::Sign(a) => crate::attest::cmd::sign(&a),
        Command::Gate(a) => crate::gate::gate(&a),
        Command::Verify(a) => crate::attest::cmd::verify(&a),
        Command::VerifyBundle(a) => crate::attest::sigstore::verify_bundle_cmd(&a),
        #[cfg(feature = "keyless-sign")]
        Command::SignKeylessStatement(a) => crate::attest::keyless::sign_keyless_cmd(&a),
        Command::Audit(AuditCommand::Verify(a)) => audit_verify(a),
        Command::Install(a) => crate::install::install(&a),
        Command::Uninstall(a) => crate::install::uninstall(&a),
        Command::Doctor(a) => crate::doctor::doctor(&a),
        Command::Demo(a) => crate::demo::demo(&a),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "agentgate",
                &mut std::io::stdout(),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn audit_verify(a: AuditVerifyArgs) -> anyhow::Result<ExitCode> {
    let log = std::fs::read(&a.log).with_context(|| format!("reading {}", a.log.display()))?;
    let opts = crate::replay::Options {
        repo: a.repo.as_deref(),
        config: a.config.as_deref(),
    };
    let report = crate::replay::verify(&log, &opts);
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
        writeln!(
            out,
            "{} record(s), {} re-derived identically, {} problem(s)",
            report.records,
            report.rederived,
            report.problems.len()
        )?;
    }
    Ok(ExitCode::from(
        if report.problems.is_empty() && report.records > 0 {
            0
        } else {
            1
        },
    ))
}

/// An id, a revision, or zeros.
fn resolve_arg(repo: &Repo, s: &str) -> anyhow::Result<ObjectId> {
    if !s.is_empty() && s.bytes().all(|b| b == b'0') {
        return Ok(ObjectId::zero(repo.hash_bytes()));
    }
    Ok(repo.resolve(s)?)
}

fn check(a: CheckArgs) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(a.repo.as_deref())?;
    let policy = push::load_policy(a.config.as_deref(), Some(Ok(&repo)), Some(repo.git_dir()))?;
    let update = RefUpdate {
        old: resolve_arg(&repo, &a.old)?,
        new: resolve_arg(&repo, &a.new)?,
        refname: a.refname.clone(),
    };
    if !hook::valid_refname(&update.refname) {
        anyhow::bail!(
            "{:?} is not a full ref name (like refs/heads/main)",
            update.refname
        );
    }
    let notes = push::notes_commit(&repo, &policy, std::slice::from_ref(&update))?;
    let source = push::attestation_source(&repo, &policy, notes, chrono::Utc::now())?;
    let d = Evaluator::new(&repo, &policy, source.as_ref()).decide(&update);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &decision_json(&d))?;
        writeln!(out)?;
    } else {
        match &d.outcome {
            Outcome::Accept(_) => {
                writeln!(
                    out,
                    "accept [{}] {}",
                    d.outcome.code().as_str(),
                    d.update.refname
                )?;
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
            Outcome::Refuse(_) => write!(out, "{}", hook::render(std::slice::from_ref(&d), ""))?,
        }
    }
    Ok(ExitCode::from(if d.accepted() {
        push::EXIT_ACCEPT
    } else {
        push::EXIT_REFUSE
    }))
}

/// A decision as JSON (for `check --json`).
pub fn decision_json(d: &RefDecision) -> serde_json::Value {
    let (decision, reason, details, fix) = match &d.outcome {
        Outcome::Accept(_) => ("accept", None, vec![], vec![]),
        Outcome::Refuse(r) => (
            "refuse",
            Some(r.headline.clone()),
            r.details.clone(),
            r.fix.clone(),
        ),
    };
    serde_json::json!({
        "ref": d.update.refname,
        "old": d.update.old,
        "new": d.update.new,
        "decision": decision,
        "code": d.outcome.code().as_str(),
        "protected_by": d.protected_by,
        "entering_commits": d.entering,
        "agent_commits": d.agent_commits,
        "attestations": d.attestations,
        "reason": reason,
        "details": details,
        "fix": fix,
    })
}

/// One line of `inspect --json`, keys in the documented order.
#[derive(serde::Serialize)]
struct InspectLine<'a> {
    commit: &'a ObjectId,
    trailers: &'a [crate::trailers::Trailer],
    agent: bool,
    rules: Vec<&'a str>,
}

fn inspect(a: InspectArgs) -> anyhow::Result<ExitCode> {
    let repo = Repo::open(a.repo.as_deref())?;
    let detect = match push::load_policy(a.config.as_deref(), Some(Ok(&repo)), Some(repo.git_dir()))
    {
        Ok(p) => p.detect,
        Err(crate::config::PolicyError::NotFound { .. }) if a.config.is_none() => {
            crate::config::Detect {
                presets: vec![crate::detect::PRESET_KNOWN_AGENTS.into()],
                require: crate::config::Require::AgentCommits,
                rules: vec![],
            }
        }
        Err(e) => return Err(e.into()),
    };
    let detector = crate::detect::Detector::new(&detect);
    let tc = repo.trailer_config()?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut unreadable = 0;
    for id in repo.rev_list(&a.revs)? {
        // A commit the hook would refuse to read (object-malformed, encoding-unsupported) is
        // reported, not skipped: it is exactly what someone inspecting wants to see.
        let c = match repo.commit(&id) {
            Ok(c) => c,
            Err(crate::git::GitError::Object(e)) => {
                unreadable += 1;
                if a.json {
                    let line = serde_json::json!({
                        "commit": id,
                        "error": {"code": e.code(), "message": e.to_string()},
                    });
                    serde_json::to_writer(&mut out, &line)?;
                    writeln!(out)?;
                } else {
                    writeln!(out, "{} ERROR [{}] {e}", id.short(), e.code())?;
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let trailers = crate::trailers::parse(&c.message, &tc);
        let matches = detector.detect(&c, &trailers);
        if a.json {
            let line = InspectLine {
                commit: &c.id,
                trailers: &trailers,
                agent: !matches.is_empty(),
                rules: matches.iter().map(|m| m.rule.as_str()).collect(),
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
                writeln!(out, "    rule {}: {}", m.rule, m.evidence)?;
            }
        }
    }
    out.flush()?;
    Ok(if unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
