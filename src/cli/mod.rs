//! The command line: the one place that parses arguments and turns results into exit codes
//! ([`crate::exit`]). Each command lives in its own file; this one dispatches, and makes sure
//! that a panic anywhere refuses a push instead of letting it through.

mod approve;
mod audit;
mod check;
mod completions;
#[cfg(feature = "gate")]
pub mod demo;
pub mod doctor;
#[cfg(feature = "gate")]
pub mod gate;
pub mod hook;
mod inspect;
pub mod install;
pub mod keygen;
pub mod policy;
pub mod sign;
#[cfg(feature = "keyless-sign")]
mod sign_keyless;
#[cfg(feature = "trust-root-update")]
pub mod trust_root;
pub mod verify;
mod verify_promotion;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use agentgate_policy::Code;

use crate::exit;
use crate::hook_runner;

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

/// The server hooks: the first commands of [`Command`], and on their own in [`HookCli`].
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Server hook: read "<old> <new> <ref>" lines on stdin, refuse the push if any protected ref
    /// would take unattested agent commits.
    #[command(
        after_help = "Example (hooks/pre-receive):\n  exec agentgate pre-receive --config /etc/agentgate/policy.toml"
    )]
    PreReceive(hook::HookArgs),
    /// Server hook for one ref (git's `update` hook, gitolite VREFs).
    #[command(
        after_help = "Example (hooks/update):\n  exec agentgate update \"$1\" \"$2\" \"$3\""
    )]
    Update(hook::UpdateArgs),
    /// Server hook, after the refs moved: sign a promotion record (an SLSA VSA, as a note under
    /// [server] promotions_ref) for every accepted move of a protected ref.
    #[command(
        after_help = "Example (hooks/post-receive):\n  exec agentgate post-receive --config /etc/agentgate/policy.toml\n\nNeeds [server] key in the policy; without it, it does nothing."
    )]
    PostReceive(hook::HookArgs),
}

/// The command line of a hook run (`agentgate pre-receive ...`): [`Cli`] with only the hook
/// commands. clap builds every command's arguments before it parses: 0.2-0.4 ms of each push
/// spent on commands a hook never runs. Same name, same hook commands, so the same parse, help
/// and errors (`hook_cli_parses_as_the_full_one`).
#[derive(Debug, Parser)]
#[command(name = "agentgate", version)]
struct HookCli {
    #[command(subcommand)]
    command: HookCommand,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Hook(HookCommand),
    /// Dry run: what would the hook decide for OLD NEW REF in this repository?
    #[command(after_help = "Examples:
  agentgate check --repo /srv/git/app.git main feature refs/heads/main
  agentgate check --json $(git rev-parse main) HEAD refs/heads/main
  agentgate check 0000000000000000000000000000000000000000 HEAD \\
      refs/heads/release/1.0       # a new ref: OLD is all zeros")]
    Check(check::CheckArgs),
    /// Show each commit's trailers and the detection rules it matches.
    #[command(
        after_help = "Examples:\n  agentgate inspect main..feature\n  agentgate inspect --repo /srv/git/app.git --json HEAD~10..HEAD\n\nExit status: 0, or 1 when a commit cannot be read as the hook reads it\n(object-malformed, encoding-unsupported; shown as ERROR lines)."
    )]
    Inspect(inspect::InspectArgs),
    /// Write a signing key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).
    Keygen(keygen::KeygenArgs),
    /// Sign provenance and test-result attestations for a commit's artifacts.
    Sign(sign::SignArgs),
    /// Check out one commit, build and test it in a scrubbed environment, sign the attestations.
    #[cfg(feature = "gate")]
    Gate(gate::GateArgs),
    /// Verify an artifact against its Sigstore bundles (a file, JSON Lines, a commit's note),
    /// offline, and say what was checked.
    Verify(verify::VerifyArgs),
    /// Sign a human approval of one commit (for the policy's [[approver]]s and path rules).
    Approve(approve::ApproveArgs),
    /// Sign an emergency override of one exact ref update (the policy's [break_glass] key).
    BreakGlass(approve::BreakGlassArgs),
    /// Sign an in-toto statement keylessly (OIDC token, Fulcio, Rekor) into a Sigstore bundle.
    #[cfg(feature = "keyless-sign")]
    #[command(hide = true)]
    SignKeylessStatement(sign_keyless::SignKeylessArgs),
    /// Certify past decisions from the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Keep the Sigstore trusted root fresh (fetched through TUF).
    #[cfg(feature = "trust-root-update")]
    #[command(subcommand)]
    TrustRoot(trust_root::TrustRootCommand),
    /// Check a policy file, or test it against scripted pushes, before deploying it.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Install the hook into a bare repository.
    #[command(after_help = "Examples:
  sudo -u git agentgate install --repo /srv/git/app.git
  agentgate install --repo /srv/git/app.git --config /etc/agentgate/app.toml
  agentgate install --layout gitlab \\
      --repo /var/opt/gitlab/git-data/repositories/@hashed/ab/cd/abcd.git
  agentgate install --hooks-dir /srv/git/hooks   # shared through core.hooksPath

A hook already at the path is kept as <hook>.agentgate-chained and runs first; uninstalling \
puts it back. Run it as the repository's owner (the Git server's user): the hook runs as that \
user.")]
    Install(install::InstallArgs),
    /// Remove the hook; a hook that was there before agentgate is put back exactly.
    #[command(
        after_help = "Examples:\n  agentgate uninstall --repo /srv/git/app.git\n  agentgate uninstall --repo /srv/git/app.git --layout gitlab"
    )]
    Uninstall(install::UninstallArgs),
    /// Check an installation: hooks, binary, policy, keys, notes, audit log, git version.
    #[command(
        after_help = "Exit codes: 0 every check passed, 1 something to fix, 2 usage error.\n\nExamples:\n  sudo -u git agentgate doctor --repo /srv/git/app.git\n  agentgate doctor --hooks-dir /srv/git/hooks --json"
    )]
    Doctor(doctor::DoctorArgs),
    /// A throwaway server: an agent commit refused, then the fix.
    #[cfg(feature = "gate")]
    #[command(
        after_help = "Examples:\n  agentgate demo\n  agentgate demo --keep --dir /tmp/agentgate-demo   # look around afterwards"
    )]
    Demo(demo::DemoArgs),
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  agentgate completions bash > /etc/bash_completion.d/agentgate"
    )]
    Completions {
        /// The shell to write completions for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Parse the command line: a hook run through [`HookCli`], anything else through [`Cli`].
/// Exits (clap's way) on `--help` and usage errors.
fn parse() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("pre-receive" | "update" | "post-receive") => Cli {
            command: Command::Hook(HookCli::parse_from(args).command),
        },
        _ => Cli::parse_from(args),
    }
}

pub fn main() -> ExitCode {
    let cli = parse();
    let hook_mode = matches!(cli.command, Command::Hook(_));
    let prefix = if hook_mode {
        hook_runner::message_prefix()
    } else {
        ""
    };
    // A panic must never let a push through: report it and refuse.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)));
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            // A repository another user owns: the command to run as that user, not libgit2's
            // words.
            match crate::owner::not_owner_help(&e) {
                Some(help) => eprintln!("{prefix}agentgate: error: {help}"),
                None => eprintln!("{prefix}agentgate: error: {e:#}"),
            }
            ExitCode::from(exit::USAGE)
        }
        Err(_) => {
            eprintln!(
                "{prefix}agentgate: refused [{}] internal error (see the message above); please report it",
                Code::InternalError
            );
            ExitCode::from(exit::REFUSED)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Hook(HookCommand::PreReceive(a)) => hook::pre_receive(&a),
        Command::Hook(HookCommand::Update(a)) => hook::update(&a),
        Command::Hook(HookCommand::PostReceive(a)) => hook::post_receive(&a),
        Command::Check(a) => check::check(&a),
        Command::Inspect(a) => inspect::inspect(&a),
        Command::Keygen(a) => keygen::keygen(&a),
        Command::Sign(a) => sign::sign(&a),
        #[cfg(feature = "gate")]
        Command::Gate(a) => crate::gate::gate(&a),
        Command::Verify(a) => verify::verify(&a),
        Command::Approve(a) => approve::approve(&a),
        Command::BreakGlass(a) => approve::break_glass(&a),
        #[cfg(feature = "keyless-sign")]
        Command::SignKeylessStatement(a) => sign_keyless::sign_keyless_statement(&a),
        Command::Audit(audit::AuditCommand::Verify(a)) => audit::verify(&a),
        #[cfg(feature = "trust-root-update")]
        Command::TrustRoot(c) => trust_root::trust_root(&c),
        Command::Policy(c) => policy::run(&c),
        Command::Audit(audit::AuditCommand::Report(a)) => audit::report(&a),
        Command::Install(a) => crate::install::install(&a),
        Command::Uninstall(a) => crate::install::uninstall(&a),
        Command::Doctor(a) => doctor::doctor(&a),
        #[cfg(feature = "gate")]
        Command::Demo(a) => crate::demo::demo(&a),
        Command::Completions { shell } => Ok(completions::completions(shell)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hook's command line means the same through [`HookCli`] as through [`Cli`]: the same
    /// command and arguments, and the same help and usage errors, word for word.
    #[test]
    fn hook_cli_parses_as_the_full_one() {
        let cases: &[&[&str]] = &[
            &["pre-receive"],
            &["pre-receive", "--config", "/etc/agentgate/policy.toml"],
            &["pre-receive", "--config=p.toml"],
            &["post-receive", "--config", "p.toml"],
            &["update", "refs/heads/main", "a", "b", "--config", "p.toml"],
            &["pre-receive", "--help"],
            &["pre-receive", "-h"],
            &["update", "--help"],
            &["post-receive", "--help"],
            &["pre-receive", "--conf", "p.toml"],
            &["pre-receive", "--config"],
            &["pre-receive", "extra"],
            &["pre-receive", "--version"],
            &["update", "refs/heads/main"],
        ];
        for case in cases {
            let argv = std::iter::once("agentgate").chain(case.iter().copied());
            let full = Cli::try_parse_from(argv.clone());
            let hook = HookCli::try_parse_from(argv);
            match (full, hook) {
                (Ok(f), Ok(h)) => assert_eq!(
                    format!("{:?}", f.command),
                    format!("{:?}", Command::Hook(h.command)),
                    "{case:?}"
                ),
                (Err(f), Err(h)) => {
                    assert_eq!(f.kind(), h.kind(), "{case:?}");
                    assert_eq!(f.render().to_string(), h.render().to_string(), "{case:?}");
                }
                (f, h) => panic!("{case:?}: full {f:?}, hook {h:?}"),
            }
        }
    }
}
