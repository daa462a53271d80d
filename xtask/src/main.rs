//! Build-time tasks for the Debian package, generated from the command definitions
//! (`agentgate::cli::Cli`), so the man pages and completions cannot drift from `--help`:
//!
//! - `cargo run -p xtask -- man DIR`: one man page per command, `agentgate.1` and
//!   `agentgate-<command>.1` (`agentgate-audit-verify.1` for nested ones);
//! - `cargo run -p xtask -- completions DIR`: `agentgate.bash`, `_agentgate` (zsh) and
//!   `agentgate.fish`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::CommandFactory as _;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["man", dir] => man(Path::new(dir)),
        ["completions", dir] => completions(Path::new(dir)),
        _ => bail!("usage: xtask man DIR | xtask completions DIR"),
    }
}

/// The full command, built (so global options and `help` are in place).
fn command() -> clap::Command {
    let mut c = agentgate::cli::Cli::command();
    c.build();
    c
}

fn man(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    page(dir, &command(), "agentgate", &mut written)?;
    println!("{written} man page(s) in {}", dir.display());
    Ok(())
}

/// Write the page for `cmd` (named `name`) and, recursively, its visible subcommands'.
fn page(dir: &Path, cmd: &clap::Command, name: &str, written: &mut usize) -> anyhow::Result<()> {
    // The page is titled as it is invoked and looked up: `man agentgate-install`.
    let cmd = cmd
        .clone()
        .display_name(name.to_string())
        .bin_name(name.replace('-', " "));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section("1")
        .manual("agentgate")
        .source(format!("agentgate {}", env!("CARGO_PKG_VERSION")))
        .render(&mut out)
        .with_context(|| format!("rendering {name}.1"))?;
    let path: PathBuf = dir.join(format!("{name}.1"));
    std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    *written += 1;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        page(dir, sub, &format!("{name}-{}", sub.get_name()), written)?;
    }
    Ok(())
}

fn completions(dir: &Path) -> anyhow::Result<()> {
    use clap_complete::Shell;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (shell, file) in [
        (Shell::Bash, "agentgate.bash"),
        (Shell::Zsh, "_agentgate"),
        (Shell::Fish, "agentgate.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), "agentgate", &mut out);
        let path = dir.join(file);
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("completions for bash, zsh and fish in {}", dir.display());
    Ok(())
}
