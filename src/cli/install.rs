//! `agentgate install` and `agentgate uninstall`: where the hook goes and with which policy;
//! the installing itself is [`crate::install`]'s.

use std::path::PathBuf;

use crate::install::{HookKind, Layout};

/// Where to install: a bare repository, or a hooks directory that repositories share through
/// `core.hooksPath`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// The bare repository.
    #[arg(long, value_name = "BARE")]
    pub repo: Option<PathBuf>,
    /// A hooks directory shared by many repositories through `core.hooksPath` (plain layout).
    #[arg(long, value_name = "DIR")]
    pub hooks_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub target: Target,
    /// Policy file the hook reads. Default: the one the hook would find now (the repository's
    /// git config agentgate.config, $GIT_DIR/agentgate.toml, /etc/agentgate/policy.toml). Either
    /// way the shim names it with --config, so nothing in a pusher's environment can change it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Do not pin the policy: look for it at every push (for a shared --hooks-dir whose
    /// repositories each have their own). $AGENTGATE_CONFIG then counts too: never let pushers
    /// set it (no `AcceptEnv AGENTGATE_*` in sshd).
    #[arg(long, conflicts_with = "config")]
    pub discover: bool,
    /// Only record the baseline of --repo (the protected tips as they are now, never judged:
    /// see `agentgate doctor`); install no hook. For repositories served by a shared
    /// --hooks-dir.
    #[arg(long, requires = "repo")]
    pub baseline_only: bool,
    /// Where the Git server looks for hooks.
    #[arg(long, value_enum, default_value = "plain")]
    pub layout: Layout,
    /// Which git hook to install.
    #[arg(long, value_enum, default_value = "pre-receive")]
    pub hook: HookKind,
    /// The agentgate binary the shim runs. Default: the hook's own build where the package
    /// installed it beside this one (/usr/lib/agentgate/agentgate-hook for
    /// /usr/bin/agentgate), else this binary.
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub target: Target,
    /// The layout it was installed with.
    #[arg(long, value_enum, default_value = "plain")]
    pub layout: Layout,
    /// The git hook it was installed as.
    #[arg(long, value_enum, default_value = "pre-receive")]
    pub hook: HookKind,
}
