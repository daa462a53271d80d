//! `agentgate pre-receive` and `agentgate update`: the server hooks. Their input is read here;
//! the running is [`crate::hook_runner`]'s.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_policy::decision::{parse_updates, StdinError, MAX_STDIN};
use anyhow::Context as _;

use crate::hook_runner::{self, Mode};

#[derive(Debug, clap::Args)]
pub struct HookArgs {
    /// Policy file (default: $AGENTGATE_CONFIG, git config agentgate.config, $GIT_DIR/agentgate.toml, /etc/agentgate/policy.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The ref being updated (git's update hook passes it first).
    #[arg(value_name = "REF")]
    pub refname: String,
    /// Its old value (all zeros when the ref is created).
    pub old: String,
    /// Its new value (all zeros when the ref is deleted).
    pub new: String,
    #[command(flatten)]
    pub hook: HookArgs,
}

/// Read "<old> <new> <ref>" lines from stdin (at most [`MAX_STDIN`] bytes) and run the hook.
pub(super) fn pre_receive(a: &HookArgs) -> anyhow::Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN)
        .read_to_end(&mut input)
        .context("reading the ref updates from stdin")?;
    let updates = if input.len() as u64 >= MAX_STDIN {
        Err(StdinError {
            line: 0,
            reason: "more input than any push sends".into(),
        })
    } else {
        parse_updates(&input)
    };
    let code = hook_runner::run_hook(
        Mode::PreReceive,
        a.config.as_deref(),
        updates,
        &mut std::io::stderr(),
    );
    Ok(ExitCode::from(code))
}

/// The update hook's three arguments, read as one line of pre-receive input.
pub(super) fn update(a: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let line = format!("{} {} {}\n", a.old, a.new, a.refname);
    let updates = parse_updates(line.as_bytes());
    let code = hook_runner::run_hook(
        Mode::Update,
        a.hook.config.as_deref(),
        updates,
        &mut std::io::stderr(),
    );
    Ok(ExitCode::from(code))
}

/// `post-receive`: the updates that went through, on stdin as for pre-receive.
pub(super) fn post_receive(a: &HookArgs) -> anyhow::Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_STDIN)
        .read_to_end(&mut input)
        .context("reading the ref updates from stdin")?;
    let code = hook_runner::run_post_receive(
        a.config.as_deref(),
        parse_updates(&input),
        &mut std::io::stderr(),
    );
    Ok(ExitCode::from(code))
}
