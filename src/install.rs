//! Installing the hook shim into a bare repository, in the layout each Git server expects:
//! plain `hooks/`, GitLab/Gitaly `custom_hooks/pre-receive.d/`, Gitea/Forgejo
//! `hooks/pre-receive.d/`. The shim only `exec`s this binary, so upgrading agentgate needs no
//! reinstall, and a missing binary makes the hook fail, which refuses the push.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_git::{hooks_path_setting, RefValue, BASELINE_FILE};
use agentgate_policy::config::{self, Policy};
use agentgate_policy::decision::strip_namespaces;
use anyhow::{bail, Context};

use crate::cli::install::{InstallArgs, Target, UninstallArgs};

/// The shims, embedded so the binary can install itself anywhere.
const PRE_RECEIVE_SHIM: &str = include_str!("../hooks/pre-receive");
const UPDATE_SHIM: &str = include_str!("../hooks/update");
/// The shims that run a foreign hook first (it was at the hook path before us).
const PRE_RECEIVE_CHAINED_SHIM: &str = include_str!("../hooks/pre-receive-chained");
const UPDATE_CHAINED_SHIM: &str = include_str!("../hooks/update-chained");
/// The post-receive shim (promotion records), installed next to either deciding hook.
const POST_RECEIVE_SHIM: &str = include_str!("../hooks/post-receive");
const POST_RECEIVE_CHAINED_SHIM: &str = include_str!("../hooks/post-receive-chained");
/// Marks a hook file as ours (safe to overwrite on reinstall).
pub const SHIM_MARKER: &str = "# agentgate-shim";
/// Appended to a hook path: where a foreign hook lives while our shim runs it first.
pub const CHAINED_SUFFIX: &str = ".agentgate-chained";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `hooks/pre-receive` (plain bare repositories, gitolite repo hooks, `core.hooksPath`).
    Plain,
    /// `custom_hooks/pre-receive.d/agentgate` (GitLab / Gitaly).
    Gitlab,
    /// `hooks/pre-receive.d/agentgate` (Gitea / Forgejo).
    Gitea,
}

impl Layout {
    pub const ALL: [Layout; 3] = [Layout::Plain, Layout::Gitlab, Layout::Gitea];

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Plain => "plain",
            Layout::Gitlab => "gitlab",
            Layout::Gitea => "gitea",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HookKind {
    PreReceive,
    Update,
    /// Installed with either of the others, never alone: it writes the promotion records.
    #[value(skip)]
    PostReceive,
}

impl HookKind {
    pub const ALL: [HookKind; 2] = [HookKind::PreReceive, HookKind::Update];

    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::PreReceive => "pre-receive",
            HookKind::Update => "update",
            HookKind::PostReceive => "post-receive",
        }
    }
}

/// Where the package puts the hook's own build, relative to the directory above this binary's:
/// `/usr/lib/agentgate/agentgate-hook` beside `/usr/bin/agentgate`. Built without default
/// features, it links no gate and no network code (README, "The hook's binary").
pub const HOOK_BINARY: &str = "lib/agentgate/agentgate-hook";

/// The binary a shim runs unless `--binary` says otherwise: the hook's build installed beside
/// this binary, else this binary.
pub fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this agentgate binary")?;
    let hook = exe
        .parent()
        .and_then(Path::parent)
        .map(|prefix| prefix.join(HOOK_BINARY));
    Ok(match hook {
        Some(h) if is_executable_file(&h) => h,
        _ => exe,
    })
}

#[cfg(unix)]
fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable_file(p: &Path) -> bool {
    p.is_file()
}

/// Quote for a POSIX shell: one single-quoted word, `'` written as `'\''`. The installed shim
/// is a file format ([`parse_shim`] and doctor read it back), so this stays exactly what it
/// has always written rather than `shlex`'s quoting, which leaves plain words bare.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Read one POSIX-shell word made of single-quoted parts and `\'` (what `sh_quote` writes) from
/// the start of `s`; returns the word and the rest.
fn sh_unquote(s: &str) -> Option<(String, &str)> {
    let mut word = String::new();
    let mut rest = s;
    let mut any = false;
    loop {
        if let Some(r) = rest.strip_prefix('\'') {
            let end = r.find('\'')?;
            word.push_str(&r[..end]);
            rest = &r[end + 1..];
            any = true;
        } else if let Some(r) = rest.strip_prefix("\\'") {
            word.push('\'');
            rest = r;
            any = true;
        } else {
            break;
        }
    }
    any.then_some((word, rest))
}

/// What a shim we wrote says: the binary it runs, the policy it passes, whether it chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimInfo {
    pub binary: PathBuf,
    pub config: Option<PathBuf>,
    pub chained: bool,
}

/// Parse a hook file we wrote; `None` if it is not ours (or not one we can read).
pub fn parse_shim(text: &str) -> Option<ShimInfo> {
    if !text.contains(SHIM_MARKER) {
        return None;
    }
    let line = text.lines().find(|l| l.starts_with("exec '"))?;
    let (binary, rest) = sh_unquote(line.strip_prefix("exec ")?)?;
    let config = rest
        .find(" --config ")
        .and_then(|i| sh_unquote(&rest[i + " --config ".len()..]))
        .map(|(c, _)| PathBuf::from(c));
    Some(ShimInfo {
        binary: PathBuf::from(binary),
        config,
        chained: text.contains(CHAINED_SUFFIX),
    })
}

/// The hooks directory git uses for a repository: `core.hooksPath` if set (relative to the
/// repository, as git resolves it for a bare repository), else `hooks/`.
pub fn hooks_dir(repo: &Path) -> PathBuf {
    match hooks_path_setting(repo) {
        Some(p) => {
            let p = expand_tilde(&p);
            if p.is_absolute() {
                p
            } else {
                repo.join(p)
            }
        }
        None => repo.join("hooks"),
    }
}

fn expand_tilde(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Where the hook goes for a layout, `hooks` being the repository's hooks directory (see
/// [`hooks_dir`]) for the plain layout.
pub fn hook_path_in(repo: &Path, hooks: &Path, layout: Layout, hook: HookKind) -> PathBuf {
    let name = hook.as_str();
    match layout {
        Layout::Plain => hooks.join(name),
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

/// Where the hook goes for a layout in a repository that keeps its hooks in `hooks/`.
pub fn hook_path(repo: &Path, layout: Layout, hook: HookKind) -> PathBuf {
    hook_path_in(repo, &repo.join("hooks"), layout, hook)
}

/// The path a foreign hook is moved to when our shim chains to it.
pub fn chained_path(hook: &Path) -> PathBuf {
    let mut s = hook.as_os_str().to_owned();
    s.push(CHAINED_SUFFIX);
    PathBuf::from(s)
}

/// The shim text for a binary and optional policy; `chained` when a foreign hook runs first.
pub fn shim(hook: HookKind, binary: &Path, config: Option<&Path>, chained: bool) -> String {
    let template = match (hook, chained) {
        (HookKind::PreReceive, false) => PRE_RECEIVE_SHIM,
        (HookKind::Update, false) => UPDATE_SHIM,
        (HookKind::PreReceive, true) => PRE_RECEIVE_CHAINED_SHIM,
        (HookKind::Update, true) => UPDATE_CHAINED_SHIM,
        (HookKind::PostReceive, false) => POST_RECEIVE_SHIM,
        (HookKind::PostReceive, true) => POST_RECEIVE_CHAINED_SHIM,
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

/// What is at a hook path now.
enum Existing {
    Nothing,
    Ours,
    Foreign,
}

fn existing(path: &Path) -> anyhow::Result<Existing> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", path.display())),
    };
    if meta.is_dir() {
        bail!(
            "{} is a directory; cannot install or chain a hook there",
            path.display()
        );
    }
    // A symlink is never ours (we write regular files); a dangling one is still foreign.
    if meta.file_type().is_symlink() {
        return Ok(Existing::Foreign);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let ours = bytes
        .windows(SHIM_MARKER.len())
        .any(|w| w == SHIM_MARKER.as_bytes());
    Ok(if ours {
        Existing::Ours
    } else {
        Existing::Foreign
    })
}

fn exists_no_follow(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// The repository (if any) and the hook path for a target.
fn resolve_target(
    t: &Target,
    layout: Layout,
    hook: HookKind,
) -> anyhow::Result<(Option<PathBuf>, PathBuf)> {
    match (&t.repo, &t.hooks_dir) {
        (Some(repo), _) => {
            let repo = std::path::absolute(repo)?;
            let is_bare_repo = repo.join("objects").is_dir() && repo.join("HEAD").is_file();
            if !is_bare_repo {
                bail!(
                    "{} is not a bare git repository (no objects/ and HEAD)",
                    repo.display()
                );
            }
            let hooks = hooks_dir(&repo);
            Ok((
                Some(repo.clone()),
                hook_path_in(&repo, &hooks, layout, hook),
            ))
        }
        (None, Some(dir)) => {
            if layout != Layout::Plain {
                bail!("--hooks-dir takes the plain layout only (GitLab and Gitea keep hooks per repository)");
            }
            let dir = std::path::absolute(dir)?;
            Ok((None, dir.join(hook.as_str())))
        }
        (None, None) => bail!("say where: --repo BARE or --hooks-dir DIR"),
    }
}

pub fn install(a: &InstallArgs) -> anyhow::Result<ExitCode> {
    let (repo, path) = resolve_target(&a.target, a.layout, a.hook)?;
    let binary = match &a.binary {
        Some(b) => std::path::absolute(b)?,
        None => default_binary()?,
    };
    let config = a.config.as_deref().map(std::path::absolute).transpose()?;
    // Refuse to install a hook that would refuse every push because its policy is broken.
    let policy = match &repo {
        Some(repo) => {
            let r = crate::owner::open_repo(repo)?;
            config::load_for(config.as_deref(), Some(Ok(&r)), Some(repo))
        }
        None => config::load_for(config.as_deref(), None, None),
    }
    .context("the hook would refuse every push: fix the policy first")?;
    // Pin what was validated: the shim passes --config, which wins over $AGENTGATE_CONFIG and
    // everything else, so a pusher's environment (SSH AcceptEnv, SetEnv) cannot choose a laxer
    // policy.
    let pinned = if a.discover {
        None
    } else {
        let p = std::path::absolute(&policy.source)?;
        if p.to_str().is_none() {
            bail!(
                "the policy path {} is not UTF-8; name it with --config by a UTF-8 path",
                p.display()
            );
        }
        Some(p)
    };

    if let Some(repo) = &repo {
        record_baseline(repo, &policy)?;
    }
    if a.baseline_only {
        return Ok(ExitCode::SUCCESS);
    }

    place(
        &path,
        repo.as_deref(),
        a.hook,
        a.layout,
        &binary,
        pinned.as_deref(),
    )?;
    // The promotion records are written after the refs moved, by post-receive, next to the
    // deciding hook (its own path; a hook already there is chained the same way).
    let (_, post) = resolve_target(&a.target, a.layout, HookKind::PostReceive)?;
    place(
        &post,
        repo.as_deref(),
        HookKind::PostReceive,
        a.layout,
        &binary,
        pinned.as_deref(),
    )?;
    println!(
        "installed {} (policy {}, {} protected ref pattern(s)); it runs {}",
        path.display(),
        policy.source.display(),
        policy.protect.refs.len(),
        binary.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Put the shim for `hook` at `path`, chaining a foreign hook already there.
fn place(
    path: &Path,
    repo: Option<&Path>,
    hook: HookKind,
    layout: Layout,
    binary: &Path,
    pinned: Option<&Path>,
) -> anyhow::Result<()> {
    let path = path.to_path_buf();
    let chained = chained_path(&path);
    let chain = match existing(&path)? {
        Existing::Ours => exists_no_follow(&chained),
        Existing::Nothing => {
            if exists_no_follow(&chained) {
                bail!("{} exists but {} does not: a previous install was half undone; put the old hook back at {} (or remove it), then install again", chained.display(), path.display(), path.display());
            }
            false
        }
        Existing::Foreign if layout != Layout::Plain => {
            // Gitaly and Gitea run every executable in the .d directory: a chained copy there
            // would run twice, so the name has to be freed instead.
            bail!("{} exists and is not an agentgate hook; in a .d directory every hook runs, so rename it (any other name keeps it running) and install again", path.display());
        }
        Existing::Foreign => {
            if exists_no_follow(&chained) {
                bail!("{} is not an agentgate hook and {} is already taken; refusing to chain (move one of them aside)", path.display(), chained.display());
            }
            true
        }
    };
    // Run as root, files we create belong to whoever owns the repository (or the shared hooks
    // directory), as if its owner had installed them: the Git server's user can then manage
    // its hooks, and nothing in its repository is root's.
    let owner_ref = repo.map_or_else(|| nearest_existing(&path), Path::to_path_buf);
    if let Some(dir) = path.parent() {
        create_dirs_owned(dir, &owner_ref)?;
    }
    let text = shim(hook, binary, pinned, chain);
    let tmp = path.with_extension("agentgate-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    set_executable(&tmp)?;
    same_owner_as(&owner_ref, &[&tmp])?;
    if chain && !exists_no_follow(&chained) {
        // rename keeps the foreign hook exactly: content, mode, owner, even a symlink.
        std::fs::rename(&path, &chained).with_context(|| {
            format!(
                "moving the existing hook {} to {}",
                path.display(),
                chained.display()
            )
        })?;
        println!(
            "kept the existing hook as {}: it runs first, and a refusal from it refuses the push",
            chained.display()
        );
    }
    std::fs::rename(&tmp, &path).with_context(|| format!("installing {}", path.display()))?;
    Ok(())
}

pub fn uninstall(a: &UninstallArgs) -> anyhow::Result<ExitCode> {
    let (repo, path) = resolve_target(&a.target, a.layout, a.hook)?;
    if let Some(repo) = &repo {
        // Where the hook is depends on the repository's core.hooksPath, which git reads only
        // as the repository's owner: say so rather than look in the wrong place.
        crate::owner::open_repo(repo)?;
    }
    remove(&path)?;
    // A post-receive hook that is not ours was never chained by us (an install older than
    // promotion records): it stays.
    let (_, post) = resolve_target(&a.target, a.layout, HookKind::PostReceive)?;
    if !matches!(existing(&post)?, Existing::Foreign) {
        remove(&post)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Remove our shim at `path` and put back the hook it chained to.
fn remove(path: &Path) -> anyhow::Result<()> {
    let path = path.to_path_buf();
    let chained = chained_path(&path);
    match existing(&path)? {
        Existing::Foreign => bail!(
            "{} is not an agentgate hook; refusing to remove it",
            path.display()
        ),
        Existing::Ours => {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            println!("removed {}", path.display());
        }
        Existing::Nothing if !exists_no_follow(&chained) => {
            println!("no agentgate hook at {}; nothing to do", path.display());
            return Ok(());
        }
        Existing::Nothing => {}
    }
    if exists_no_follow(&chained) {
        std::fs::rename(&chained, &path)
            .with_context(|| format!("restoring {} to {}", chained.display(), path.display()))?;
        println!("restored the previous hook {}", path.display());
    }
    Ok(())
}

#[cfg(unix)]
/// Record the baseline (`$GIT_DIR/agentgate/baseline`): the commits the protected refs hold now,
/// before agentgate judged any push. Nothing reachable from them is judged later; everything
/// newer must keep the promise. An existing baseline is kept: re-installing must not quietly
/// widen what is exempt. Owned like the repository, so the hook (run as its owner) can read it.
fn record_baseline(repo: &Path, policy: &Policy) -> anyhow::Result<()> {
    let r = crate::owner::open_repo(repo)?;
    let path = r.git_dir().join(BASELINE_FILE);
    if path.symlink_metadata().is_ok() {
        println!("kept the existing baseline {}", path.display());
        return Ok(());
    }
    let mut lines = Vec::new();
    for e in r.ref_snapshot()? {
        let RefValue::Direct(id) = &e.value else {
            continue;
        };
        if policy.protect.matching(strip_namespaces(&e.name)).is_none() {
            continue;
        }
        // A protected ref that is not a commit holds no history to exempt.
        if let Ok(c) = r.peel_to_commit(id) {
            lines.push(format!("{c} {}", e.name));
        }
    }
    let dir = path.parent().context("baseline path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = format!(
        "# agentgate baseline: protected tips when agentgate was installed ({}).\n# Nothing reachable from these commits is judged; see `agentgate doctor`.\n{}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>()
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    same_owner_as(r.git_dir(), &[dir, &path])?;
    println!(
        "recorded the baseline {} ({} protected tip(s))",
        path.display(),
        lines.len()
    );
    Ok(())
}

/// Give `paths` the owner of `like` (when run as root on a repository owned by the Git server's
/// user; a no-op otherwise).
fn same_owner_as(like: &Path, paths: &[&Path]) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(like).with_context(|| format!("stat {}", like.display()))?;
    for p in paths {
        let mine = std::fs::metadata(p).with_context(|| format!("stat {}", p.display()))?;
        if mine.uid() != meta.uid() || mine.gid() != meta.gid() {
            std::os::unix::fs::chown(p, Some(meta.uid()), Some(meta.gid()))
                .with_context(|| format!("chown {}", p.display()))?;
        }
    }
    Ok(())
}

/// `path` itself if it exists, else its nearest existing ancestor.
fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// `create_dir_all`, giving each directory it creates the owner of `like`.
fn create_dirs_owned(dir: &Path, like: &Path) -> anyhow::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    same_owner_as(like, &missing)
}

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
            false,
        );
        assert!(
            s.contains("exec '/opt/it'\\''s/agentgate' pre-receive --config '/etc/a b.toml'\n"),
            "{s}"
        );
        assert!(s.contains(SHIM_MARKER));
        let s = shim(HookKind::Update, Path::new("/bin/agentgate"), None, false);
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

    #[test]
    fn shims_parse_back() {
        for hook in HookKind::ALL {
            for chained in [false, true] {
                for config in [None, Some(Path::new("/etc/it's a.toml"))] {
                    let bin = Path::new("/opt/it's/agentgate");
                    let info = parse_shim(&shim(hook, bin, config, chained)).unwrap();
                    assert_eq!(info.binary, bin);
                    assert_eq!(info.config.as_deref(), config);
                    assert_eq!(info.chained, chained);
                }
            }
        }
        assert_eq!(parse_shim("#!/bin/sh\nexec '/x' pre-receive\n"), None);
        assert_eq!(parse_shim(""), None);
        assert_eq!(
            parse_shim("# agentgate-shim\nexec /unquoted pre-receive\n"),
            None
        );
    }

    #[test]
    fn chained_path_appends() {
        assert_eq!(
            chained_path(Path::new("/r.git/hooks/pre-receive")),
            Path::new("/r.git/hooks/pre-receive.agentgate-chained")
        );
    }
}
