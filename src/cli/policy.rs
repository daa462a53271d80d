//! `agentgate policy check` and `agentgate policy test`: what an admin runs before deploying a
//! policy, the way `nginx -t` checks a web server's configuration before a reload. The cases
//! themselves are run by [`crate::policy_test`].

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_policy::config::{Policy, SignerKind};
use agentgate_policy::detect::{Detector, Require};
use agentgate_policy::error_chain;
use clap::Subcommand;

use crate::exit;
use crate::policy_test::{self, CaseOutcome};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Load a policy as the hook would and say whether it loads, and what it protects.
    #[command(
        after_help = "Exit codes: 0 the policy loads, 1 it does not (the hook would refuse \
every push).

Examples:
  agentgate policy check /etc/agentgate/policy.toml
  agentgate policy check --json new-policy.toml"
    )]
    Check(PolicyCheckArgs),
    /// Run a directory of cases (commits, the ref pushed, the expected decision) against a
    /// policy, without a server: test a policy change before deploying it.
    #[command(
        after_help = "Each *.toml file in CASES is one push: commits (message, author,
committer), the ref, and the expected decision, code and matched rules.
config/policy-tests/ in the source holds commented examples.

Exit codes: 0 every case as expected, 1 a case decided otherwise, 2 a case
or the policy cannot be used.

Examples:
  agentgate policy test /etc/agentgate/policy.toml /etc/agentgate/policy-tests
  agentgate policy test new-policy.toml cases/"
    )]
    Test(PolicyTestArgs),
}

#[derive(Debug, clap::Args)]
pub struct PolicyCheckArgs {
    /// The policy file to check.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PolicyTestArgs {
    /// The policy file the cases are decided under.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A directory of case files (*.toml), or one case file.
    #[arg(value_name = "CASES")]
    pub cases: PathBuf,
    /// Print one JSON object per case.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(c: &PolicyCommand) -> anyhow::Result<ExitCode> {
    match c {
        PolicyCommand::Check(a) => check(a),
        PolicyCommand::Test(a) => test(a),
    }
}

/// The command that checks a policy file, for messages that point at one.
pub fn check_command(file: &Path) -> String {
    format!("agentgate policy check {}", file.display())
}

fn check(a: &PolicyCheckArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let policy = match Policy::load(&a.file) {
        Ok(p) => p,
        Err(e) => {
            if a.json {
                let v = serde_json::json!({
                    "ok": false, "path": a.file, "code": e.code(), "error": error_chain(&e),
                });
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "agentgate: {}", error_chain(&e))?;
                writeln!(
                    out,
                    "agentgate: policy check of {} failed: the hook would refuse every push",
                    a.file.display()
                )?;
            }
            return Ok(ExitCode::from(exit::REFUSED));
        }
    };
    let warnings = warnings(&policy);
    if a.json {
        let v = serde_json::json!({
            "ok": true,
            "path": policy.source,
            "digest": policy.digest,
            "protect": policy.protect.refs.iter().map(|r| &r.glob).collect::<Vec<_>>(),
            "rules": Detector::new(&policy.detect).rule_ids().collect::<Vec<_>>(),
            "signers": policy.signers.iter().map(|s| &s.name).collect::<Vec<_>>(),
            "warnings": warnings,
        });
        writeln!(out, "{v}")?;
        return Ok(ExitCode::from(exit::OK));
    }
    writeln!(
        out,
        "agentgate: the policy {} loads ({})",
        policy.source.display(),
        policy.digest
    )?;
    for line in summary(&policy) {
        writeln!(out, "  {line}")?;
    }
    for w in &warnings {
        writeln!(out, "  warning: {w}")?;
    }
    writeln!(out, "agentgate: policy check is successful")?;
    Ok(ExitCode::from(exit::OK))
}

/// What the policy does, one line per part.
fn summary(p: &Policy) -> Vec<String> {
    let globs: Vec<&str> = p.protect.refs.iter().map(|r| r.glob.as_str()).collect();
    let detector = Detector::new(&p.detect);
    let rules: Vec<&str> = detector.rule_ids().collect();
    let require = match p.detect.require {
        Require::AgentCommits => "agent commits need an attestation",
        Require::AllCommits => "every commit needs an attestation (all-commits)",
    };
    let signers = if p.signers.is_empty() {
        "none".to_string()
    } else {
        p.signers
            .iter()
            .map(|s| match &s.kind {
                SignerKind::Key { path, .. } => format!("{} (key {})", s.name, path.display()),
                SignerKind::Keyless { issuer, .. } => format!("{} (keyless, {issuer})", s.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        format!("protects: {}", globs.join(", ")),
        format!("detects: {} rule(s); {require}", rules.len()),
        format!(
            "attestations: from {}, scope {:?}, bind {:?}, threshold {}",
            p.attest.notes_ref, p.attest.scope, p.attest.bind, p.attest.threshold
        )
        .to_lowercase(),
        format!("signers: {signers}"),
        format!(
            "audit log: {}",
            p.audit_log
                .as_ref()
                .map(|l| l.display().to_string())
                .unwrap_or_else(|| "each repository's $GIT_DIR/agentgate/audit.jsonl".into())
        ),
        format!("hook timeout: {:?}", p.hook_timeout),
    ]
}

/// What loads but will surprise: no signer, an unprotected notes ref.
fn warnings(p: &Policy) -> Vec<String> {
    let mut w = Vec::new();
    if p.signers.is_empty() {
        w.push("no [[signer]]: every agent commit entering a protected ref is refused until a gate key is configured".to_string());
    }
    if p.protect.matching(&p.attest.notes_ref).is_none() {
        w.push(format!(
            "{} is not protected: anyone who can push may rewrite the attestations",
            p.attest.notes_ref
        ));
    }
    w
}

fn test(a: &PolicyTestArgs) -> anyhow::Result<ExitCode> {
    let policy = match Policy::load(&a.file) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "agentgate: error: {}; check it with `{}`",
                error_chain(&e),
                check_command(&a.file)
            );
            return Ok(ExitCode::from(exit::USAGE));
        }
    };
    let files = policy_test::case_files(&a.cases)?;
    if files.is_empty() {
        anyhow::bail!("no case files (*.toml) in {}", a.cases.display());
    }
    let mut out = std::io::stdout().lock();
    let (mut failed, mut broken) = (0, 0);
    for file in &files {
        let name = file
            .strip_prefix(&a.cases)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(file)
            .display()
            .to_string();
        let outcome = policy_test::run_case(&policy, file);
        match &outcome {
            CaseOutcome::Passed(_) => {}
            CaseOutcome::Failed { .. } => failed += 1,
            CaseOutcome::Broken(_) => broken += 1,
        }
        if a.json {
            writeln!(out, "{}", outcome.json(&name))?;
        } else {
            for line in outcome.lines(&name) {
                writeln!(out, "{line}")?;
            }
        }
    }
    if !a.json {
        writeln!(
            out,
            "{} case(s): {} passed, {} failed, {} could not run",
            files.len(),
            files.len() - failed - broken,
            failed,
            broken
        )?;
    }
    Ok(ExitCode::from(if broken > 0 {
        exit::USAGE
    } else if failed > 0 {
        exit::REFUSED
    } else {
        exit::OK
    }))
}
