//! `agentgate completions SHELL`: shell completions from the command definitions.

use std::process::ExitCode;

use clap::CommandFactory as _;

pub(super) fn completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(
        shell,
        &mut super::Cli::command(),
        "agentgate",
        &mut std::io::stdout(),
    );
    ExitCode::SUCCESS
}
