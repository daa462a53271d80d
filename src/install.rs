//! Installing the hook shim into a bare repository, in the layout each Git server expects:
//! plain `hooks/`, GitLab/Gitaly `custom_hooks/pre-receive.d/`, Gitea/Forgejo
//! `hooks/pre-receive.d/`. The shim only `exec`s this binary, so upgrading agentgate needs no
//! reinstall, and a missing binary makes the hook fail, which refuses the push.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

/// The shims, embedded so the binary can install itself anywhere.
const PRE_RECEIVE_SHIM: &str = include_str!("../hooks/pre-receive");
const UPDATE_SHIM: &str = include_str!("../hooks/update");
/// Marks a hook file as ours (safe to overwrite on reinstall).
pub const SHIM_MARKER: &str = "# agentgate-shim";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `hooks/pre-receive` (plain bare repositories, gitolite repo hooks, `core.hooksPath`).
    Plain,
    /// `custom_hooks/pre-receive.d/agentgate` (GitLab / Gitaly).
    Gitlab,
    /// `hooks/pre-receive.d/agentgate` (Gitea / Forgejo).
    Gitea,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookKind {
    PreReceive,
    Update,
}

#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The bare repository.
    #[arg(long, value_name = "BARE")]
    pub repo: PathBuf,
    /// Policy file the hook reads (recorded in the shim). Default: found at push time as the
    /// hook finds it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "plain")]
    pub layout: Layout,
    /// Which git hook to install.
    #[arg(long, value_enum, default_value = "pre-receive")]
    pub hook: HookKind,
    /// The agentgate binary the shim runs (default: this one).
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
}

/// Quote for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Where the hook goes for a layout.
pub fn hook_path(repo: &Path, layout: Layout, hook: HookKind) -> PathBuf {
    let name = match hook {
        HookKind::PreReceive => "pre-receive",
        HookKind::Update => "update",
    };
    match layout {
        Layout::Plain => repo.join("hooks").join(name),
        Layout::Gitlab => repo
            .join("custom_hooks")
            .join(format!("{name}.d"))
            .join("agentgate"),
        Layout::Gitea => repo
            .join("hooks")
            .join(format!("{name}.d"))
            .join("agentgate"),
    }
}

/// The shim text for a binary and optional policy.
pub fn shim(hook: HookKind, binary: &Path, config: Option<&Path>) -> String {
    let template = match hook {
        HookKind::PreReceive => PRE_RECEIVE_SHIM,
        HookKind::Update => UPDATE_SHIM,
    };
    let args = config
        .map(|c| format!("--config {}", sh_quote(&c.to_string_lossy())))
        .unwrap_or_default();
    template
        .replace("@AGENTGATE@", &sh_quote(&binary.to_string_lossy()))
        .replace(
            " @ARGS@",
            &if args.is_empty() {
                String::new()
            } else {
                format!(" {args}")
            },
        )
}

pub fn install(a: &InstallArgs) -> anyhow::Result<ExitCode> {
    let repo = std::path::absolute(&a.repo)?;
    let is_bare_repo = repo.join("objects").is_dir() && repo.join("HEAD").is_file();
    if !is_bare_repo {
        bail!(
            "{} is not a bare git repository (no objects/ and HEAD)",
            repo.display()
        );
    }
    let binary = match &a.binary {
        Some(b) => std::path::absolute(b)?,
        None => std::env::current_exe().context("finding this agentgate binary")?,
    };
    let config = a.config.as_deref().map(std::path::absolute).transpose()?;
    // Refuse to install a hook that would refuse every push because its policy is broken.
    let r = crate::git::Repo::open(Some(&repo))?;
    let policy = crate::push::load_policy(config.as_deref(), Some(&r), Some(&repo))
        .context("the hook would refuse every push: fix the policy first")?;

    let path = hook_path(&repo, a.layout, a.hook);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.contains(SHIM_MARKER) {
            bail!("{} already exists and is not an agentgate hook; refusing to overwrite it (move it aside, or use --layout gitlab/gitea for a hook directory)", path.display());
        }
    } else if path.exists() {
        bail!(
            "{} exists and is not readable text; refusing to overwrite it",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = shim(a.hook, &binary, config.as_deref());
    let tmp = path.with_extension("agentgate-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    set_executable(&tmp)?;
    std::fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
    println!(
        "installed {} (policy {}, {} protected ref pattern(s))",
        path.display(),
        policy.source.display(),
        policy.protect.refs.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
fn set_executable(p: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", p.display()))
}

#[cfg(not(unix))]
fn set_executable(_p: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_quotes_paths() {
        let s = shim(
            HookKind::PreReceive,
            Path::new("/opt/it's/agentgate"),
            Some(Path::new("/etc/a b.toml")),
        );
        assert!(
            s.contains("exec '/opt/it'\\''s/agentgate' pre-receive --config '/etc/a b.toml'\n"),
            "{s}"
        );
        assert!(s.contains(SHIM_MARKER));
        let s = shim(HookKind::Update, Path::new("/bin/agentgate"), None);
        assert!(
            s.contains("exec '/bin/agentgate' update \"$1\" \"$2\" \"$3\"\n"),
            "{s}"
        );
    }

    #[test]
    fn layouts() {
        let r = Path::new("/r.git");
        assert_eq!(
            hook_path(r, Layout::Plain, HookKind::PreReceive),
            Path::new("/r.git/hooks/pre-receive")
        );
        assert_eq!(
            hook_path(r, Layout::Gitlab, HookKind::PreReceive),
            Path::new("/r.git/custom_hooks/pre-receive.d/agentgate")
        );
        assert_eq!(
            hook_path(r, Layout::Gitea, HookKind::PreReceive),
            Path::new("/r.git/hooks/pre-receive.d/agentgate")
        );
    }
}
