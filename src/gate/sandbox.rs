//! The isolation of build and tests: what the sandbox hides, shows and masks ([`SandboxPlan`]),
//! bubblewrap's arguments for it ([`Bwrap`]), and the one way the gate starts a program the
//! build can influence ([`Launcher`]): sandboxed, with the scrubbed environment, no inherited
//! descriptors.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use agentgate_git::Repo;

use super::environment::{ci_hidden, ENV_ALLOWLIST};

/// Find `program` on `path` as execvp would, except that relative entries are skipped: they
/// would resolve against the gate's working directory, which may be the agent's working tree.
pub(super) fn which(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    std::env::split_paths(path?)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

pub(super) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Where a machine keeps what a build must not see: homes (CI credentials, the runner's own
/// files, the caller's secrets), /run (docker.sock and other sockets, /run/secrets), shared
/// scratch space, data mounts, a GitLab runner's configuration. Each is replaced by an empty
/// tmpfs; what the build needs from inside (toolchains on PATH, ...) is bound back read-only.
const HIDDEN_ROOTS: &[&str] = &[
    "/home",
    "/root",
    "/run",
    "/tmp",
    "/var/tmp",
    "/mnt",
    "/media",
    "/etc/gitlab-runner",
];

/// Hidden, but writable (and empty) inside the sandbox: for tools that ignore TMPDIR.
const SCRATCH: &[&str] = &["/tmp", "/var/tmp"];

/// Never hidden whole, whatever points at them: the system the build runs with.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/var",
    "/nix", "/gnu", "/proc", "/sys", "/dev", "/boot", "/srv", "/snap",
];

/// Credential files inside toolchain directories that are bound into the sandbox.
const TOOLCHAIN_CREDENTIALS: &[(&str, &str)] = &[
    ("CARGO_HOME", "credentials.toml"),
    ("CARGO_HOME", "credentials"),
];

/// `O_CLOEXEC` as /proc/PID/fdinfo prints it (octal `flags:`), on x86-64 and aarch64.
const O_CLOEXEC: u32 = 0o2_000_000;

/// What the sandbox hides and shows, before it becomes bwrap arguments. All paths canonical.
#[derive(Debug, Default)]
pub(super) struct SandboxPlan {
    /// Replaced by an empty tmpfs (read-only unless in [`SCRATCH`]).
    pub(super) hidden: Vec<PathBuf>,
    /// Bound back read-only: they sit inside a hidden directory.
    pub(super) readable: Vec<PathBuf>,
    /// Bound read-write: the build's HOME and TMPDIR (each step's checkout is added per step).
    writable: Vec<PathBuf>,
    /// Files replaced by an empty one: the key, toolchain credentials.
    pub(super) masked: Vec<PathBuf>,
    /// Readable paths left out because binding them would show a hidden directory whole.
    pub(super) refused: Vec<PathBuf>,
}

/// `p` is `dir` or inside it.
fn within(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}

impl SandboxPlan {
    fn new(
        hide: impl IntoIterator<Item = PathBuf>,
        readable: impl IntoIterator<Item = PathBuf>,
        writable: Vec<PathBuf>,
        mask: impl IntoIterator<Item = PathBuf>,
    ) -> Self {
        let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        let mut hidden: Vec<PathBuf> = hide
            .into_iter()
            .filter(|p| p.is_absolute())
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| real_dir(p))
            .filter(|p| !SYSTEM_DIRS.iter().any(|s| within(Path::new(s), p)))
            .collect();
        hidden.sort();
        hidden.dedup();
        let mut plan = SandboxPlan {
            writable,
            ..Default::default()
        };
        let mut bound: Vec<PathBuf> = Vec::new();
        for r in readable {
            if !r.is_absolute() {
                continue;
            }
            let Ok(r) = r.canonicalize() else { continue };
            if hidden.iter().any(|h| within(h, &r)) {
                plan.refused.push(r);
            } else if hidden.iter().any(|h| within(&r, h)) {
                bound.push(r);
            }
        }
        bound.sort();
        bound.dedup();
        plan.readable = bound;
        plan.refused.sort();
        plan.refused.dedup();
        plan.masked = mask
            .into_iter()
            .filter(|p| p.is_absolute())
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| p.is_file())
            .collect();
        plan.masked.sort();
        plan.masked.dedup();
        plan.hidden = hidden;
        plan
    }
}

/// bubblewrap: its own PID namespace (the gate and every other process out of sight, and every
/// process of a step killed when the step ends), network namespace (no network, an empty
/// loopback), IPC, UTS and user namespaces; no capabilities, even for root; a new session (no
/// terminal injection); the filesystem read-only with the plan's directories hidden, its
/// readable paths bound back, the key masked, and only HOME, TMPDIR and the step's checkout
/// writable.
pub(super) struct Bwrap {
    /// Everything up to the step's checkout.
    head: Vec<OsString>,
    /// After it: masks, then the hidden directories turned read-only (mount points for the
    /// binds inside them had to be created first).
    tail: Vec<OsString>,
    plan: SandboxPlan,
}

impl Bwrap {
    pub(super) fn new(plan: SandboxPlan) -> Self {
        let mut head: Vec<OsString> = [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        // Mounts in path order: a directory before what is inside it, so a tmpfs never covers a
        // bind made earlier, and a bind inside a hidden directory shows only itself.
        let mut ops: Vec<(&Path, [&OsStr; 2])> = Vec::new();
        for h in &plan.hidden {
            ops.push((h, ["--tmpfs".as_ref(), "".as_ref()]));
        }
        for r in &plan.readable {
            ops.push((r, ["--ro-bind".as_ref(), r.as_os_str()]));
        }
        for w in &plan.writable {
            ops.push((w, ["--bind".as_ref(), w.as_os_str()]));
        }
        for m in &plan.masked {
            ops.push((m, ["--ro-bind".as_ref(), "/dev/null".as_ref()]));
        }
        ops.sort_by(|a, b| a.0.cmp(b.0));
        for (target, [op, source]) in ops {
            head.push(op.to_owned());
            if !source.is_empty() {
                head.push(source.to_owned());
            }
            head.push(target.into());
        }
        let mut tail = Vec::new();
        for h in &plan.hidden {
            if !SCRATCH.iter().any(|s| h == Path::new(s)) {
                tail.extend(["--remount-ro".into(), h.into()]);
            }
        }
        Bwrap { head, tail, plan }
    }

    /// bwrap's argv for `argv` run in `dir`, with `checkout` writable.
    fn argv(&self, checkout: Option<&Path>, dir: &Path, argv: &[String]) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["bwrap".into()];
        v.extend(self.head.iter().cloned());
        if let Some(c) = checkout {
            v.extend(["--bind".into(), c.into(), c.into()]);
        }
        v.extend(self.tail.iter().cloned());
        v.extend(["--chdir".into(), dir.into(), "--".into()]);
        v.extend(argv.iter().map(OsString::from));
        v
    }
}

/// Descriptors above 2 that this process holds without close-on-exec: inherited from whoever
/// started the gate (CI runners leak some). Every program the gate starts would get them, and
/// bwrap passes them on into the sandbox, where a descriptor of the key file or of a runner's
/// socket would undo the isolation.
fn inherited_descriptors() -> anyhow::Result<Vec<u32>> {
    let entries = std::fs::read_dir("/proc/self/fd")
        .context("cannot list this process's open descriptors in /proc/self/fd")?;
    let mut fds = Vec::new();
    for e in entries {
        let e = e.context("cannot list this process's open descriptors in /proc/self/fd")?;
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if fd <= 2 {
            continue;
        }
        // Unreadable: closed since the listing (the listing's own descriptor).
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok());
        if flags.is_none_or(|f| f & O_CLOEXEC == 0) {
            fds.push(fd);
        }
    }
    fds.sort_unstable();
    Ok(fds)
}

/// Starts every program the build can influence (build, tests, `--version` probes): inside
/// bwrap unless --danger-no-sandbox, with the scrubbed environment, stdin from /dev/null and
/// none of the gate's inherited descriptors. Safe Rust cannot close a descriptor it does not
/// own, so inherited ones are closed by a shell that then execs the command (`bash` when one
/// is above 9, which `sh` cannot name).
pub(super) struct Launcher {
    pub(super) bwrap: Option<Bwrap>,
    pub(super) env: BTreeMap<String, OsString>,
    close: Vec<u32>,
    /// The shell that closes them, if any are open.
    closer: Option<PathBuf>,
}

impl Launcher {
    pub(super) fn new(
        bwrap: Option<Bwrap>,
        env: BTreeMap<String, OsString>,
    ) -> anyhow::Result<Self> {
        let close = inherited_descriptors()?;
        let closer = if close.is_empty() {
            None
        } else {
            let shell = if close.iter().all(|&fd| fd <= 9) {
                "sh"
            } else {
                "bash"
            };
            let found = which(shell, env.get("PATH").map(OsString::as_os_str)).or_else(|| {
                ["/bin", "/usr/bin"]
                    .iter()
                    .map(|d| Path::new(d).join(shell))
                    .find(|p| is_executable(p))
            });
            let Some(found) = found else {
                bail!(
                    "this gate inherited open descriptors ({}) that its commands must not get, \
                     and closing them needs {shell}, which is not installed; start the gate \
                     without them or install {shell}",
                    close
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            Some(found)
        };
        Ok(Launcher {
            bwrap,
            env,
            close,
            closer,
        })
    }

    pub(super) fn command(&self, checkout: Option<&Path>, dir: &Path, argv: &[String]) -> Command {
        let inner: Vec<OsString> = match &self.bwrap {
            Some(b) => b.argv(checkout, dir, argv),
            None => argv.iter().map(OsString::from).collect(),
        };
        let mut c = if let Some(shell) = &self.closer {
            let closes: Vec<String> = self.close.iter().map(|fd| format!("{fd}<&-")).collect();
            let mut c = Command::new(shell);
            c.arg("-c")
                .arg(format!("exec {}; exec \"$@\"", closes.join(" ")))
                .arg("agentgate-gate")
                .args(&inner);
            c
        } else {
            let mut c = Command::new(&inner[0]);
            c.args(&inner[1..]);
            c
        };
        c.current_dir(dir)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null());
        c
    }

    /// Run `true` the way the build will run: None if it works, else why not.
    fn probe_failure(&self, dir: &Path) -> Option<String> {
        self.bwrap.as_ref()?;
        if which("bwrap", self.env.get("PATH").map(OsString::as_os_str)).is_none() {
            return Some("bwrap is not installed (not found on PATH)".to_string());
        }
        match self
            .command(None, dir, &["true".to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "`bwrap ... true` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run bwrap: {e}")),
        }
    }
}

/// The refusal when isolation cannot work here, with how to enable it.
pub(super) fn sandbox_unavailable_error(reason: &str) -> anyhow::Error {
    anyhow::anyhow!(SANDBOX_UNAVAILABLE_HELP).context(format!(
        "[sandbox-unavailable] the gate isolates build and tests with bubblewrap, which cannot \
         run here: {reason}; nothing was built or signed"
    ))
}

/// How to make bwrap work, for the refusal when it does not.
const SANDBOX_UNAVAILABLE_HELP: &str = "\
to enable it: on GitHub's Ubuntu runners `sudo apt-get install -y bubblewrap`, and on Ubuntu \
24.04 also `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in Docker, run the \
container with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined \
--security-opt systempaths=unconfined` (or `--privileged`); in GitLab runners, the Docker \
executor needs `privileged = true` (or those security_opt entries) in config.toml, the shell \
executor what a plain host needs (bubblewrap installed, user namespaces allowed). \
--danger-no-sandbox builds without isolation: the build can then read this gate's key and \
environment";

/// Whether the default isolation can run on this machine (for `agentgate demo`): None if it
/// can, else why not.
pub fn sandbox_unavailable() -> Option<String> {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Some(format!("no temporary directory: {e}")),
    };
    let env = BTreeMap::from([(
        "PATH".to_string(),
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    )]);
    let plan = SandboxPlan::new(
        HIDDEN_ROOTS.iter().map(PathBuf::from),
        [],
        vec![dir.path().to_path_buf()],
        [],
    );
    match Launcher::new(Some(Bwrap::new(plan)), env) {
        Ok(launcher) => launcher.probe_failure(dir.path()),
        Err(e) => Some(format!("{e:#}")),
    }
}

/// The sandbox for this run. Hidden: [`HIDDEN_ROOTS`], the caller's HOME, working tree and git
/// directory, the key's directory and what [`ci_hidden`] names. Readable: toolchains, PATH and
/// the repository's objects (the checkout borrows them). Writable: the build's HOME and TMPDIR.
/// Masked: the key, toolchain credentials.
pub(super) fn sandbox_plan(
    repo: &Repo,
    git_dir: &Path,
    env: &BTreeMap<String, OsString>,
    work: &Path,
    key: Option<&Path>,
) -> SandboxPlan {
    let get = |n: &str| std::env::var_os(n);
    let key = key.and_then(|k| k.canonicalize().ok());
    let mut hide: Vec<PathBuf> = HIDDEN_ROOTS.iter().map(PathBuf::from).collect();
    hide.extend(get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from));
    hide.extend(repo.work_tree().ok().flatten());
    hide.push(repo.git_dir().to_path_buf());
    hide.push(git_dir.to_path_buf());
    hide.extend(key.as_deref().and_then(Path::parent).map(Path::to_path_buf));
    hide.extend(ci_hidden(&get));

    let mut readable: Vec<PathBuf> = ENV_ALLOWLIST
        .iter()
        .filter(|v| **v != "PATH")
        .filter_map(|v| env.get(*v))
        .map(PathBuf::from)
        .collect();
    if let Some(p) = env.get("PATH") {
        readable.extend(std::env::split_paths(p));
    }
    let objects = git_dir.join("objects");
    if let Ok(text) = std::fs::read_to_string(objects.join("info").join("alternates")) {
        readable.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| objects.join(l)),
        );
    }
    readable.push(objects);

    let mut mask: Vec<PathBuf> = key.into_iter().collect();
    for (var, file) in TOOLCHAIN_CREDENTIALS {
        if let Some(dir) = env.get(*var) {
            mask.push(Path::new(dir).join(file));
        }
    }
    SandboxPlan::new(
        hide,
        readable,
        vec![work.join("home"), work.join("tmp")],
        mask,
    )
}

/// What the provenance says about the isolation of this run.
pub(super) fn sandbox_record(bwrap: Option<&Bwrap>) -> Value {
    let paths =
        |v: &[PathBuf]| -> Vec<String> { v.iter().map(|p| p.display().to_string()).collect() };
    match bwrap {
        Some(b) => json!({
            "kind": "bwrap",
            "network": "none (private network namespace)",
            "processes": "private PID namespace: the gate is out of sight, and every process of a step ends with it",
            "capabilities": "none",
            "descriptors": "stdin /dev/null, stdout and stderr pipes, no others",
            "writable": ["checkout", "HOME", "TMPDIR", "/tmp and /var/tmp (empty, private)"],
            "hidden": paths(&b.plan.hidden),
            "readable": paths(&b.plan.readable),
            "masked": paths(&b.plan.masked),
        }),
        None => json!({
            "kind": "none",
            "option": "--danger-no-sandbox",
            "note": "build and tests ran without isolation, with the gate's processes, files, key file and network in reach",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_entries_are_not_searched() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::copy("/bin/sh", bin.join("only-here")).unwrap();
        let abs = std::env::join_paths([&bin]).unwrap();
        assert_eq!(which("only-here", Some(&abs)), Some(bin.join("only-here")));
        assert_eq!(which("only-here", Some(OsStr::new("bin:."))), None);
    }

    #[test]
    fn sandbox_plan_hides_binds_back_and_never_shows_a_hidden_dir_whole() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let home = root.join("home");
        let cargo = home.join(".cargo");
        for p in [
            &cargo.join("bin"),
            &root.join("work/home"),
            &root.join("keys"),
        ] {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(root.join("keys/gate.key"), "k").unwrap();
        std::fs::write(cargo.join("credentials.toml"), "token").unwrap();
        std::fs::write(root.join("not-a-dir"), "x").unwrap();
        let plan = SandboxPlan::new(
            [
                home.clone(),
                root.join("keys"),
                root.join("not-a-dir"),
                root.join("missing"),
                PathBuf::from("/usr"),
                PathBuf::from("/"),
                PathBuf::from("relative"),
            ],
            [
                cargo.join("bin"),
                home.clone(),
                root.clone(),
                PathBuf::from("/usr/bin"),
            ],
            vec![root.join("work/home")],
            [root.join("keys/gate.key"), cargo.join("credentials.toml")],
        );
        assert_eq!(plan.hidden, [home.clone(), root.join("keys")]);
        // Inside a hidden directory: bound back; already visible: left alone; a hidden
        // directory or its parent: refused.
        assert_eq!(plan.readable, [cargo.join("bin")]);
        assert_eq!(plan.refused, [root.clone(), home.clone()]);
        assert_eq!(
            plan.masked,
            [cargo.join("credentials.toml"), root.join("keys/gate.key")]
        );
        let b = Bwrap::new(plan);
        let args: Vec<String> = b
            .argv(Some(&root.join("work/c1")), &root, &["true".into()])
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let pos = |needle: &[&str]| {
            args.windows(needle.len())
                .position(|w| w == needle)
                .unwrap_or_else(|| panic!("{needle:?} not in {args:?}"))
        };
        let h = home.display().to_string();
        let bin = cargo.join("bin").display().to_string();
        let cred = cargo.join("credentials.toml").display().to_string();
        let c1 = root.join("work/c1").display().to_string();
        // A directory is mounted before what is inside it, the step's checkout after all of
        // them, and the hidden directories turn read-only last.
        assert!(pos(&["--tmpfs", &h]) < pos(&["--ro-bind", &bin, &bin]));
        assert!(pos(&["--ro-bind", &bin, &bin]) < pos(&["--ro-bind", "/dev/null", &cred]));
        assert!(pos(&["--ro-bind", "/dev/null", &cred]) < pos(&["--bind", &c1, &c1]));
        assert!(pos(&["--bind", &c1, &c1]) < pos(&["--remount-ro", &h]));
        for flag in ["--unshare-all", "--die-with-parent", "--new-session"] {
            pos(&[flag]);
        }
        pos(&["--cap-drop", "ALL"]);
        assert_eq!(args.last().map(String::as_str), Some("true"));
    }

    #[test]
    fn inherited_descriptors_are_found_and_ours_are_not() {
        // Everything std opens is close-on-exec: this test process's own files are not listed.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        use std::os::fd::AsRawFd as _;
        let fd = u32::try_from(f.as_raw_fd()).unwrap();
        assert!(!inherited_descriptors().unwrap().contains(&fd));
    }
}
