//! `agentgate doctor`: checks an installation the way a push will exercise it (hook files,
//! the binary they run, the policy they find, signer keys, the notes ref, the audit log, git
//! itself) and says what to fix. It changes nothing: the audit log is checked by opening and
//! locking it, never by writing a record.

use std::path::{Path, PathBuf};

use agentgate_git::{OpenError, Repo, VersionError, BASELINE_FILE};
use agentgate_policy::audit::audit_path;
use agentgate_policy::config::{self, Policy, SignerKind, SYSTEM_POLICY};
use agentgate_policy::error_chain;
use serde::Serialize;

use crate::cli::doctor::DoctorArgs;
use crate::install::{self, HookKind, Layout, ShimInfo};

/// The oldest git that quarantines pushed objects (and so lets the hook read exactly them).
const MIN_GIT: (u32, u32) = (2, 11);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One check: a stable id, its result, what was found, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    pub checks: Vec<Check>,
}

#[derive(Default)]
struct Checks(Vec<Check>);

impl Checks {
    fn ok(&mut self, id: &'static str, message: String) {
        self.push(id, Status::Ok, message, None);
    }
    fn warn(&mut self, id: &'static str, message: String, fix: impl Into<String>) {
        self.push(id, Status::Warn, message, Some(fix.into()));
    }
    fn fail(&mut self, id: &'static str, message: String, fix: impl Into<String>) {
        self.push(id, Status::Fail, message, Some(fix.into()));
    }
    fn push(&mut self, id: &'static str, status: Status, message: String, fix: Option<String>) {
        self.0.push(Check {
            id,
            status,
            message,
            fix,
        });
    }
}

/// Run every check.
pub fn run(a: &DoctorArgs) -> Report {
    let mut c = Checks::default();
    check_git(&mut c);

    let repo_dir = a
        .repo
        .as_deref()
        .map(|r| std::path::absolute(r).unwrap_or(r.to_path_buf()));
    let repo = match &repo_dir {
        Some(dir) => match Repo::open(Some(dir)) {
            Ok(r) if r.git_dir().join("objects").is_dir() => {
                check_owner(&mut c, dir);
                Some(r)
            }
            Err(OpenError::NotOwner { path, owner }) => {
                c.fail(
                    "user",
                    format!(
                        "{} belongs to {}, and doctor runs as {}: git reads a repository only as its owner, and the hook runs as its owner, so check as that user",
                        path.display(),
                        crate::owner::user_name(owner).unwrap_or_else(|| format!("uid {owner}")),
                        me()
                    ),
                    crate::owner::as_user_command(owner),
                );
                // Nothing else can be told as this user: the policy, keys and log the hook
                // finds are the owner's to find.
                return Report {
                    ok: false,
                    checks: c.0,
                };
            }
            // A repository git cannot open (a broken config, say) is not "not a repository":
            // say git's reason and where git shows it.
            Err(e) if dir.join("HEAD").is_file() && dir.join("objects").is_dir() => {
                c.fail(
                    "repository",
                    error_chain(&e),
                    format!(
                        "git shows where it is broken: git --git-dir {} config --list",
                        crate::owner::shell_word(&dir.display().to_string())
                    ),
                );
                None
            }
            Ok(_) | Err(_) => {
                c.fail(
                    "repository",
                    format!("{} is not a git repository", dir.display()),
                    "pass the bare repository's path with --repo",
                );
                None
            }
        },
        None => None,
    };

    let repo_ok = repo_dir.as_deref().filter(|_| repo.is_some());
    let target = target_args(repo_ok, a);
    let shims = check_hooks(&mut c, repo_ok, a);

    // The policies the installed hooks will load: those named in shims, else discovery.
    let mut explicit: Vec<Option<PathBuf>> = shims.iter().map(|s| s.config.clone()).collect();
    if let Some(cfg) = &a.config {
        explicit = vec![Some(std::path::absolute(cfg).unwrap_or(cfg.clone()))];
    }
    if explicit.is_empty() {
        explicit.push(None);
    }
    explicit.sort();
    explicit.dedup();
    let git_dir = repo.as_ref().map(|r| r.git_dir().to_path_buf());
    for cfg in &explicit {
        let Some(policy) = check_policy(
            &mut c,
            cfg.as_deref(),
            repo.as_ref(),
            git_dir.as_deref(),
            &target,
        ) else {
            continue;
        };
        check_signers(&mut c, &policy);
        check_trusted_roots(&mut c, &policy);
        check_server(
            &mut c,
            &policy,
            repo_dir.as_deref().filter(|_| repo.is_some()),
            a,
        );
        if let Some(r) = &repo {
            check_notes(&mut c, r, &policy);
            check_baseline(&mut c, r);
        }
        match (&git_dir, &policy.audit_log) {
            (Some(gd), _) => check_audit(
                &mut c,
                &audit_path(Some(&policy), gd),
                repo_ok.and_then(crate::owner::owner_of),
            ),
            (None, Some(log)) => check_audit(&mut c, log, None),
            (None, None) => c.ok(
                "audit-log",
                "each repository's $GIT_DIR/agentgate/audit.jsonl (check one with --repo)".into(),
            ),
        }
    }
    if std::env::var_os("AGENTGATE_CONFIG").is_some_and(|v| !v.is_empty()) {
        c.warn(
            "environment",
            "AGENTGATE_CONFIG is set in this shell; the Git server's hooks may not see it".into(),
            format!(
                "name the policy in the hook instead: agentgate install {target} --config FILE"
            ),
        );
    }
    let ok = c.0.iter().all(|x| x.status != Status::Fail);
    Report { ok, checks: c.0 }
}

fn check_git(c: &mut Checks) {
    let text = match agentgate_git::version() {
        Ok(text) => text,
        Err(e @ VersionError::Failed(_)) => {
            return c.fail("git-version", e.to_string(), "install git 2.11 or later")
        }
        Err(e @ VersionError::Spawn(_)) => {
            return c.fail(
                "git-version",
                e.to_string(),
                "install git 2.11 or later and put it on the hook's PATH",
            )
        }
    };
    match parse_git_version(&text) {
        Some(v) if v >= MIN_GIT => c.ok(
            "git-version",
            format!(
                "{text} (>= {}.{}: pushed objects are quarantined until the hook accepts)",
                MIN_GIT.0, MIN_GIT.1
            ),
        ),
        Some(_) => c.fail(
            "git-version",
            format!(
                "{text} is older than {}.{}: no push quarantine",
                MIN_GIT.0, MIN_GIT.1
            ),
            "upgrade git on the server",
        ),
        None => c.warn(
            "git-version",
            format!("cannot read a version from {text:?}"),
            "check that `git` on the hook's PATH is git",
        ),
    }
}

/// `git version 2.47.3` (or `2.39.5.windows.1`, `2.43.0 (Apple Git-115)`) to (2, 47).
pub fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let v = text.strip_prefix("git version ")?;
    let mut parts = v.split(['.', ' ']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// This process's user, for messages.
fn me() -> String {
    crate::owner::current_uid()
        .map(|u| crate::owner::user_name(u).unwrap_or_else(|| format!("uid {u}")))
        .unwrap_or_else(|| "another user".into())
}

fn check_owner(c: &mut Checks, repo: &Path) {
    let (Some(me_uid), Some((owner, _))) =
        (crate::owner::current_uid(), crate::owner::owner_of(repo))
    else {
        return;
    };
    if me_uid != owner {
        c.warn(
            "user",
            format!(
                "doctor runs as {} but {} belongs to {}; hooks run as the repository's owner, so what this user can read or write may differ",
                me(),
                repo.display(),
                crate::owner::user_name(owner).unwrap_or_else(|| format!("uid {owner}")),
            ),
            crate::owner::as_user_command(owner),
        );
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.is_file() && meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file()
}

/// The install target as `agentgate install` takes it: `--repo R` or `--hooks-dir D`.
fn target_args(repo: Option<&Path>, a: &DoctorArgs) -> String {
    match (repo, &a.hooks_dir) {
        (Some(r), _) => format!("--repo {}", word(r)),
        (None, Some(d)) => format!("--hooks-dir {}", word(d)),
        (None, None) => "--repo BARE".into(),
    }
}

/// A path as one shell word, for commands a fix suggests.
fn word(p: &Path) -> String {
    crate::owner::shell_word(&p.to_string_lossy())
}

/// The `--layout` and `--hook` options for a hook place named as [`hook_places`] names them.
fn place_flags(what: &str) -> String {
    let mut flags = String::new();
    if let Some(layout) = what
        .split(' ')
        .next()
        .filter(|l| *l == "gitlab" || *l == "gitea")
    {
        flags.push_str(&format!(" --layout {layout}"));
    }
    if what.ends_with(" update") {
        flags.push_str(" --hook update");
    }
    flags
}

/// Check every place a hook can be; returns the shims found (healthy or not).
fn check_hooks(c: &mut Checks, repo: Option<&Path>, a: &DoctorArgs) -> Vec<ShimInfo> {
    let places = hook_places(c, repo, a);
    if places.is_empty() {
        return vec![];
    }
    let mut found = Vec::new();
    let target = target_args(repo, a);
    for (what, path) in &places {
        if let Some(info) = check_hook_file(c, repo, what, path, &target) {
            found.push(info);
        }
    }
    if found.is_empty() {
        let target = target_args(repo, a);
        c.fail(
            "hook",
            format!(
                "no agentgate hook in {}",
                places
                    .iter()
                    .map(|(_, p)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("agentgate install {target}"),
        );
    }
    found
}

/// Every place a hook for this installation can be, named (`plain pre-receive`,
/// `hooks-dir update`, ...). Warns about agentgate hooks that `core.hooksPath` makes git skip.
fn hook_places(c: &mut Checks, repo: Option<&Path>, a: &DoctorArgs) -> Vec<(String, PathBuf)> {
    let mut places: Vec<(String, PathBuf)> = Vec::new();
    if let Some(dir) = &a.hooks_dir {
        let dir = std::path::absolute(dir).unwrap_or(dir.clone());
        for hook in HookKind::ALL {
            places.push((
                format!("hooks-dir {}", hook.as_str()),
                dir.join(hook.as_str()),
            ));
        }
    }
    if let Some(repo) = repo {
        let hooks = install::hooks_dir(repo);
        let default_hooks = repo.join("hooks");
        if hooks != default_hooks {
            for hook in HookKind::ALL {
                let shadowed = default_hooks.join(hook.as_str());
                if std::fs::read_to_string(&shadowed)
                    .ok()
                    .and_then(|t| install::parse_shim(&t))
                    .is_some()
                {
                    c.warn(
                        "hook",
                        format!("{} is ignored: core.hooksPath sends git to {}", shadowed.display(), hooks.display()),
                        format!("install into the hooks directory git uses: agentgate install --hooks-dir {}", hooks.display()),
                    );
                }
            }
        }
        for layout in Layout::ALL {
            for hook in HookKind::ALL {
                places.push((
                    format!("{} {}", layout.as_str(), hook.as_str()),
                    install::hook_path_in(repo, &hooks, layout, hook),
                ));
            }
        }
    }
    places
}

/// One hook file: another program's (noted for the plain places), or ours, checked: it runs,
/// the binary it names runs, the hook it chains to is there, Gitea's dispatcher exists.
fn check_hook_file(
    c: &mut Checks,
    repo: Option<&Path>,
    what: &str,
    path: &Path,
    target: &str,
) -> Option<ShimInfo> {
    let meta = std::fs::metadata(path).ok()?;
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let Some(info) = install::parse_shim(&text) else {
        if what.starts_with("plain") || what.starts_with("hooks-dir") {
            c.ok(
                "hook",
                format!(
                    "{} is another program's hook ({what}); agentgate is not in it",
                    path.display()
                ),
            );
        }
        return None;
    };
    let mut healthy = true;
    if !is_executable(&meta) {
        healthy = false;
        c.fail(
            "hook",
            format!(
                "{} ({what}) is not executable: git skips it, so pushes are not gated",
                path.display()
            ),
            format!("chmod 755 {}", path.display()),
        );
    }
    let flags = place_flags(what);
    healthy &= check_shim_binary(
        c,
        path,
        &info,
        &format!("agentgate install {target}{flags}"),
    );
    if info.chained {
        healthy &= check_chained(
            c,
            path,
            &format!("agentgate uninstall {target}{flags} && agentgate install {target}{flags}"),
        );
    }
    if healthy {
        c.ok(
            "hook",
            format!("{} ({what}) runs {}", path.display(), info.binary.display()),
        );
    }
    if what.starts_with("gitea") {
        if let Some(repo) = repo {
            check_gitea_dispatcher(c, repo, what, path);
        }
    }
    Some(info)
}

/// The binary a shim runs exists and is executable; false (after saying why) when not.
fn check_shim_binary(c: &mut Checks, path: &Path, info: &ShimInfo, reinstall: &str) -> bool {
    match std::fs::metadata(&info.binary) {
        Ok(m) if is_executable(&m) => true,
        Ok(_) => {
            c.fail(
                "hook",
                format!(
                    "{} runs {}, which is not executable: every push is refused",
                    path.display(),
                    info.binary.display()
                ),
                format!(
                    "chmod 755 {}, or reinstall: {reinstall}",
                    info.binary.display()
                ),
            );
            false
        }
        Err(_) => {
            c.fail(
                "hook",
                format!(
                    "{} runs {}, which does not exist: every push is refused",
                    path.display(),
                    info.binary.display()
                ),
                format!("reinstall the hook with this agentgate: {reinstall}"),
            );
            false
        }
    }
}

/// The foreign hook a shim chains to is there; false (after saying why) when it is missing.
fn check_chained(c: &mut Checks, path: &Path, reinstall: &str) -> bool {
    let chained = install::chained_path(path);
    match std::fs::metadata(&chained) {
        Ok(m) if is_executable(&m) => {
            c.ok(
                "hook",
                format!(
                    "{} runs first (the hook that was there before agentgate)",
                    chained.display()
                ),
            );
            true
        }
        Ok(_) => {
            c.warn(
                "hook",
                format!(
                    "{} is not executable, so it is skipped (as git skipped it before agentgate)",
                    chained.display()
                ),
                format!("chmod 755 {} if it should run", chained.display()),
            );
            true
        }
        Err(_) => {
            c.fail(
                "hook",
                format!(
                    "{} chains to {}, which is missing: every push is refused",
                    path.display(),
                    chained.display()
                ),
                format!(
                    "put the old hook back at {}, or reinstall: {reinstall}",
                    chained.display()
                ),
            );
            false
        }
    }
}

/// Gitea runs a `.d` directory only through its own hook script.
fn check_gitea_dispatcher(c: &mut Checks, repo: &Path, what: &str, path: &Path) {
    let dispatcher = repo.join("hooks").join(if what.ends_with("update") {
        "update"
    } else {
        "pre-receive"
    });
    if !dispatcher.exists() {
        c.warn(
            "hook",
            format!("{} does not exist: Gitea's own hook runs the .d directory; without it {} never runs", dispatcher.display(), path.display()),
            "let Gitea write its hooks (Site Administration > Resynchronize git hooks), or use the plain layout",
        );
    }
}

fn check_policy(
    c: &mut Checks,
    explicit: Option<&Path>,
    repo: Option<&Repo>,
    git_dir: Option<&Path>,
    target: &str,
) -> Option<Policy> {
    let located = config::locate_for(explicit, repo.map(Ok), git_dir);
    let (path, why) = match located {
        Ok(l) => (l.path, l.source.describe()),
        Err(e) => {
            c.fail(
                "policy",
                format!("{e}: every push is refused"),
                format!("install the package's {SYSTEM_POLICY} (or copy config/policy.toml there), or name a policy: agentgate install {target} --config FILE"),
            );
            return None;
        }
    };
    match Policy::load(&path) {
        Ok(p) => {
            c.ok(
                "policy",
                format!(
                    "{} loads ({why}); {} protected ref pattern(s), {}",
                    path.display(),
                    p.protect.refs.len(),
                    p.digest
                ),
            );
            Some(p)
        }
        Err(e) => {
            c.fail(
                "policy",
                format!(
                    "{} ({why}) does not load: {}; every push is refused",
                    path.display(),
                    error_chain(&e)
                ),
                format!(
                    "fix the policy; `{}` shows the file, line and column",
                    crate::cli::policy::check_command(&path)
                ),
            );
            None
        }
    }
}

/// `[server] key`: the hook refuses every push when it cannot load it, and without the
/// `post-receive` shim no promotion record is ever written (nothing would say so on a push).
fn check_server(c: &mut Checks, policy: &Policy, repo: Option<&Path>, a: &DoctorArgs) {
    let Some(key) = &policy.server.key else {
        return;
    };
    match crate::hook_runner::server_key(policy) {
        Ok(_) => c.ok(
            "server-key",
            format!(
                "{} loads: checkpoints and promotion records are signed",
                key.display()
            ),
        ),
        Err(e) => c.fail(
            "server-key",
            format!("{}: every push is refused", error_chain(&e)),
            "make [server] key an unencrypted PKCS#8 PEM private key the Git server's user can read (agentgate keygen --out /etc/agentgate/server)",
        ),
    }
    let mut places: Vec<PathBuf> = Vec::new();
    if let Some(dir) = &a.hooks_dir {
        places.push(
            std::path::absolute(dir)
                .unwrap_or(dir.clone())
                .join(HookKind::PostReceive.as_str()),
        );
    }
    if let Some(repo) = repo {
        let hooks = install::hooks_dir(repo);
        for layout in Layout::ALL {
            places.push(install::hook_path_in(
                repo,
                &hooks,
                layout,
                HookKind::PostReceive,
            ));
        }
    }
    if places.is_empty() {
        return;
    }
    let ours = places.iter().find(|p| {
        std::fs::metadata(p).is_ok_and(|m| is_executable(&m))
            && std::fs::read_to_string(p)
                .ok()
                .and_then(|t| install::parse_shim(&t))
                .is_some()
    });
    match ours {
        Some(p) => c.ok(
            "post-receive",
            format!("{} writes the promotion records", p.display()),
        ),
        None => c.fail(
            "post-receive",
            "no executable post-receive hook of agentgate's: accepted pushes get no promotion record"
                .into(),
            "run the install command again for this repository (it adds the post-receive shim next to the deciding hook)",
        ),
    }
}

fn check_signers(c: &mut Checks, policy: &Policy) {
    if policy.signers.is_empty() {
        c.warn(
            "signers",
            "no [[signer]] in the policy: agent commits can never be attested, so every one entering a protected ref is refused".into(),
            "add the CI gate's public key: [[signer]] name = \"ci-gate\" public_key = \"/etc/agentgate/keys/ci-gate.pub\"",
        );
    }
    for s in &policy.signers {
        let file = match &s.kind {
            SignerKind::Key { path, .. } => Some(path),
            SignerKind::Keyless { trusted_root, .. } => trusted_root.as_ref(),
        };
        match file {
            None => c.ok(
                "signers",
                format!(
                    "signer {:?}: keyless, Sigstore public-good root (embedded)",
                    s.name
                ),
            ),
            Some(f) => match std::fs::read(f) {
                Ok(_) => c.ok(
                    "signers",
                    format!("signer {:?}: {} readable", s.name, f.display()),
                ),
                Err(e) => c.fail(
                    "signers",
                    format!("signer {:?}: cannot read {}: {e}", s.name, f.display()),
                    format!("make {} readable by the Git server's user", f.display()),
                ),
            },
        }
    }
}

/// A trusted root file older than this is worth refreshing (Sigstore rotates keys and adds log
/// shards; `agentgate trust-root update` fetches the current one).
const TRUSTED_ROOT_MAX_AGE_DAYS: i64 = 90;

/// The trusted roots the keyless signers use: which one, what it holds, and its age (a file's
/// modification time; for the embedded root, its newest key).
fn check_trusted_roots(c: &mut Checks, policy: &Policy) {
    use agentgate_formats::sigstore;
    let mut seen: Vec<Option<&PathBuf>> = Vec::new();
    for s in &policy.signers {
        let SignerKind::Keyless { trusted_root, .. } = &s.kind else {
            continue;
        };
        let root_file = trusted_root.as_ref();
        if seen.contains(&root_file) {
            continue;
        }
        seen.push(root_file);
        let describe = |root: &sigstore::TrustedRoot| {
            let sum = sigstore::root_summary(root);
            format!(
                "{} certificate authorities, {} transparency logs, {} timestamp authorities; newest key from {}",
                sum.certificate_authorities,
                sum.transparency_logs,
                sum.timestamp_authorities,
                sum.newest_start.map_or("(none dated)".to_string(), |t| format!(
                    "{} ({} day(s) ago)",
                    t.format("%Y-%m-%d"),
                    (chrono::Utc::now() - t).num_days()
                ))
            )
        };
        let Some(path) = root_file else {
            match sigstore::public_good_root() {
                Ok(root) => c.ok(
                    "trusted-root",
                    format!(
                        "signer {:?}: the Sigstore public-good root embedded in agentgate {} ({}); it ages with the binary",
                        s.name,
                        env!("CARGO_PKG_VERSION"),
                        describe(&root)
                    ),
                ),
                Err(e) => c.fail("trusted-root", error_chain(&e), "reinstall agentgate"),
            }
            continue;
        };
        let fix = format!("agentgate trust-root update --out {}", path.display());
        let age_days = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .map(|d| (d.as_secs() / 86_400) as i64);
        match sigstore::trusted_root_from_file(path) {
            Err(e) => c.fail(
                "trusted-root",
                format!("signer {:?}: {}", s.name, error_chain(&e)),
                fix,
            ),
            Ok(root) => {
                let age = age_days.map_or("age unknown".to_string(), |d| {
                    format!("updated {d} day(s) ago")
                });
                let message = format!(
                    "signer {:?}: {} ({age}; {})",
                    s.name,
                    path.display(),
                    describe(&root)
                );
                if age_days.is_some_and(|d| d > TRUSTED_ROOT_MAX_AGE_DAYS) {
                    c.warn("trusted-root", message, fix);
                } else {
                    c.ok("trusted-root", message);
                }
            }
        }
    }
}

/// The baseline: commits on protected refs when agentgate was installed, never judged. Listed, so
/// an admin sees exactly what is exempt.
fn check_baseline(c: &mut Checks, repo: &Repo) {
    let path = repo.git_dir().join(BASELINE_FILE);
    match repo.baseline() {
        Ok(ids) if ids.is_empty() && path.symlink_metadata().is_err() => c.warn(
            "baseline",
            format!("no baseline ({} is absent): every commit reachable from a new protected tip is judged, down to the first commit", path.display()),
            format!("record the protected tips as they are now: agentgate install --repo {} --baseline-only", repo.git_dir().display()),
        ),
        Ok(ids) => c.ok(
            "baseline",
            format!(
                "{} commit(s) exempt with their history, recorded at installation in {}: {}",
                ids.len(),
                path.display(),
                ids.iter().map(|i| i.short()).collect::<Vec<_>>().join(", ")
            ),
        ),
        Err(e) => c.fail(
            "baseline",
            error_chain(&e),
            format!("fix or remove the file (removing it makes every commit judged), then re-record it: agentgate install --repo {} --baseline-only", repo.git_dir().display()),
        ),
    }
}

fn check_notes(c: &mut Checks, repo: &Repo, policy: &Policy) {
    let notes = &policy.attest.notes_ref;
    if policy.protect.matching(notes).is_none() {
        c.warn(
            "notes-protected",
            format!("{notes} is not a protected ref: anyone who can push may rewrite or delete the attestations that admitted past pushes"),
            format!("add \"{notes}\" to [protect] refs: it then only grows (fast-forward, no note removed, never deleted)"),
        );
    }
    match repo.ref_target(notes) {
        Ok(None) => c.ok(
            "notes",
            format!("{notes} is absent (no attestation pushed yet)"),
        ),
        Ok(Some(id)) => match repo.commit(&id) {
            Ok(_) => c.ok("notes", format!("{notes} at {} is readable", id.short())),
            Err(e) => c.fail(
                "notes",
                format!(
                    "{notes} points at {} which cannot be read: {}",
                    id.short(),
                    error_chain(&e)
                ),
                "check the repository (git fsck) and the notes ref",
            ),
        },
        Err(e) => c.fail(
            "notes",
            format!("cannot read {notes}: {}", error_chain(&e)),
            "check the repository (git fsck)",
        ),
    }
}

/// The audit log must be appendable and lockable; nothing is written to it. If it does not
/// exist yet, the nearest existing directory must let us create files (tested with a temporary
/// file that is removed at once). `owner` is the repository's owner, who runs the hook: the
/// fixes name it.
fn check_audit(c: &mut Checks, log: &Path, owner: Option<(u32, u32)>) {
    let who = owner.map(|(u, g)| {
        (
            crate::owner::user_name(u).unwrap_or_else(|| u.to_string()),
            crate::owner::group_name(g).unwrap_or_else(|| g.to_string()),
        )
    });
    let parent = log.parent().filter(|p| !p.as_os_str().is_empty());
    // The fix for a log (or its own directory) the hook's user cannot write: give that user
    // the log's own directory, never a shared one like /var/log.
    let fix = |what: &Path| {
        match (&who, parent) {
        (Some((user, group)), Some(dir)) if what == log || what == dir => format!(
            "sudo chown -R {user}:{group} {}, or set [audit] log in the policy",
            dir.display()
        ),
        (Some((user, group)), Some(dir)) => format!(
            "create the log's directory for the hook's user: sudo install -d -o {user} -g {group} -m 0750 {}",
            dir.display()
        ),
        _ => format!(
            "let the Git server's user write {} (its own directory, e.g. /var/log/agentgate, owned by that user), or set [audit] log in the policy",
            parent.unwrap_or(log).display()
        ),
    }
    };
    if log.exists() {
        let file = std::fs::OpenOptions::new().append(true).open(log);
        match file {
            Ok(f) => match f.try_lock() {
                Ok(()) => {
                    let _ = f.unlock();
                    c.ok(
                        "audit-log",
                        format!("{} is writable and lockable", log.display()),
                    );
                }
                Err(std::fs::TryLockError::WouldBlock) => c.ok(
                    "audit-log",
                    format!("{} is writable (locked right now by a push)", log.display()),
                ),
                Err(std::fs::TryLockError::Error(e)) => c.fail(
                    "audit-log",
                    format!(
                        "{} cannot be locked: {e}; every push is refused",
                        log.display()
                    ),
                    "keep the audit log on a local file system that supports flock",
                ),
            },
            Err(e) => c.fail(
                "audit-log",
                format!(
                    "cannot open {} for appending: {e}; every push is refused",
                    log.display()
                ),
                fix(log),
            ),
        }
        return;
    }
    let mut dir = log.parent();
    while let Some(d) = dir {
        if d.is_dir() {
            break;
        }
        if d.exists() {
            return c.fail(
                "audit-log",
                format!(
                    "{} is in the way of {}: every push is refused",
                    d.display(),
                    log.display()
                ),
                "set [audit] log to a path in a directory",
            );
        }
        dir = d.parent();
    }
    let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) else {
        return c.fail(
            "audit-log",
            format!("no directory to create {} in", log.display()),
            "set [audit] log to an absolute path",
        );
    };
    match tempfile::Builder::new()
        .prefix(".agentgate-doctor-")
        .tempfile_in(d)
    {
        Ok(_) => c.ok(
            "audit-log",
            format!(
                "{} does not exist yet; the first push creates it (in {})",
                log.display(),
                d.display()
            ),
        ),
        Err(e) => c.fail(
            "audit-log",
            format!(
                "{} cannot be created: {} is not writable ({e}); every push is refused",
                log.display(),
                d.display()
            ),
            fix(d),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions() {
        for (text, want) in [
            ("git version 2.47.3", Some((2, 47))),
            ("git version 2.11.0", Some((2, 11))),
            ("git version 2.39.5.windows.1", Some((2, 39))),
            ("git version 2.43.0 (Apple Git-115)", Some((2, 43))),
            ("git version 1.8.3.1", Some((1, 8))),
            ("", None),
            ("hub version 2", None),
            ("git version x.y", None),
        ] {
            assert_eq!(parse_git_version(text), want, "{text}");
        }
        assert!((2, 10) < MIN_GIT && (3, 0) > MIN_GIT && (2, 11) >= MIN_GIT);
    }
}
