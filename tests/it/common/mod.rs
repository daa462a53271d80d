//! Shared harness for integration tests: real `git` in temporary directories, isolated from the
//! machine's git configuration, with fixed dates, and bare "server" repositories that have the
//! agentgate hook installed.
#![allow(dead_code)]

pub mod mock;
mod sandbox;
#[allow(unused_imports)]
pub use sandbox::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const AGENTGATE: &str = env!("CARGO_BIN_EXE_agentgate");

pub const POLICY: &str = r#"version = 1
[protect]
refs = ["refs/heads/main", "refs/heads/release/*", "refs/tags/v*"]
[detect]
presets = ["known-agents"]
"#;

pub const HUMAN: (&str, &str) = ("Ada Lovelace", "ada@example.com");
pub const CLAUDE_TRAILER: &str = "Co-Authored-By: Claude <noreply@anthropic.com>";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
}

impl Env {
    /// `agentgate sign` of `commit` in `repo` with this environment's `KEY.key` and `app.bin`
    /// (`--test-result passed` unless `extra` names an outcome): the two bundle lines
    /// (provenance, test result).
    pub fn sign_bundles(
        &self,
        repo: &Path,
        commit: &str,
        key: &str,
        extra: &[&str],
    ) -> (String, String) {
        let out_dir = tempfile::tempdir().unwrap();
        let key = self.path().join(format!("{key}.key"));
        let artifact = self.path().join("app.bin");
        let mut args = vec![
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--repo",
            repo.to_str().unwrap(),
            "--commit",
            commit,
            "--artifact",
            artifact.to_str().unwrap(),
            "--out",
            out_dir.path().to_str().unwrap(),
        ];
        if !extra.contains(&"--test-result") && !extra.contains(&"--junit") {
            args.extend_from_slice(&["--test-result", "passed"]);
        }
        args.extend_from_slice(extra);
        let out = self.agentgate(self.path(), &args);
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read = |f: &str| {
            std::fs::read_to_string(out_dir.path().join(f))
                .unwrap()
                .trim()
                .to_string()
        };
        (
            read("provenance.sigstore.json"),
            read("test-result.sigstore.json"),
        )
    }

    pub fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        Env { dir, home }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command isolated from the machine's git config and environment.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_NAMESPACE",
            "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES",
            "AGENTGATE_CONFIG",
            "GL_ID",
            "GL_USERNAME",
        ] {
            c.env_remove(var);
        }
        c.env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_DATE", "2026-01-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T12:00:00Z")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", HUMAN.0)
            .env("GIT_AUTHOR_EMAIL", HUMAN.1)
            .env("GIT_COMMITTER_NAME", HUMAN.0)
            .env("GIT_COMMITTER_EMAIL", HUMAN.1)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        c
    }

    pub fn git(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd("git")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run git")
    }

    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn agentgate(&self, dir: &Path, args: &[&str]) -> Output {
        self.cmd(AGENTGATE)
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run agentgate")
    }

    /// A bare server repository named `name` with `policy` and the hook installed.
    pub fn server_with(
        &self,
        name: &str,
        policy: &str,
        init_args: &[&str],
        install_args: &[&str],
    ) -> PathBuf {
        let server = self.path().join(name);
        let mut args = vec!["init", "-q", "--bare", "-b", "main"];
        args.extend_from_slice(init_args);
        args.push(server.to_str().unwrap());
        self.git_ok(self.path(), &args);
        std::fs::write(server.join("agentgate.toml"), policy).unwrap();
        let mut args = vec!["install", "--repo", server.to_str().unwrap()];
        args.extend_from_slice(install_args);
        let out = self.agentgate(self.path(), &args);
        assert!(
            out.status.success(),
            "install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    pub fn server(&self, name: &str) -> PathBuf {
        self.server_with(name, POLICY, &[], &[])
    }

    /// A server named `name` with the default policy, and a clone `w` whose first (human)
    /// commit "Base" is already on the server's main.
    pub fn server_with_main(&self, name: &str) -> (PathBuf, PathBuf) {
        let server = self.server(name);
        let work = self.clone(&server, "w");
        self.commit(&work, "a.txt", "Base");
        let (ok, err) = self.push(&work, &["origin", "main"]);
        assert!(ok, "pushing the base commit: {err}");
        (server, work)
    }

    /// A clone of `server` in `name`, on branch main.
    pub fn clone(&self, server: &Path, name: &str) -> PathBuf {
        let url = format!("file://{}", server.display());
        self.git_ok(self.path(), &["clone", "-q", &url, name]);
        let work = self.path().join(name);
        let _ = self.git(&work, &["checkout", "-q", "-b", "main"]);
        work
    }

    /// Commit a change to `file` with `message` as `author` (also the committer).
    pub fn commit_as(
        &self,
        work: &Path,
        author: (&str, &str),
        committer: (&str, &str),
        file: &str,
        message: &str,
    ) -> String {
        let path = work.join(file);
        let mut content = std::fs::read_to_string(&path).unwrap_or_default();
        content.push_str(message);
        content.push('\n');
        std::fs::write(&path, content).unwrap();
        self.git_ok(work, &["add", file]);
        let out = self
            .cmd("git")
            .current_dir(work)
            .args(["commit", "-q", "--cleanup=verbatim", "-m", message])
            .env("GIT_AUTHOR_NAME", author.0)
            .env("GIT_AUTHOR_EMAIL", author.1)
            .env("GIT_COMMITTER_NAME", committer.0)
            .env("GIT_COMMITTER_EMAIL", committer.1)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "commit failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.git_ok(work, &["rev-parse", "HEAD"])
    }

    pub fn commit(&self, work: &Path, file: &str, message: &str) -> String {
        self.commit_as(work, HUMAN, HUMAN, file, message)
    }

    pub fn agent_commit(&self, work: &Path, file: &str, subject: &str) -> String {
        self.commit(work, file, &format!("{subject}\n\n{CLAUDE_TRAILER}\n"))
    }

    /// `git push` with extra args; returns (accepted, stderr).
    pub fn push(&self, work: &Path, args: &[&str]) -> (bool, String) {
        let mut a = vec!["push"];
        a.extend_from_slice(args);
        let out = self.git(work, &a);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn rev(&self, repo: &Path, rev: &str) -> Option<String> {
        let out = self.git(repo, &["rev-parse", "--verify", "-q", rev]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The audit log of a server using the default location.
    pub fn audit(&self, server: &Path) -> Vec<serde_json::Value> {
        let text =
            std::fs::read_to_string(server.join("agentgate/audit.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad audit line {l:?}: {e}"))
            })
            .collect()
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when running under CI (`CI` set and not empty): there every package is installed and
/// the tests run as root, so nothing may skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Skip the rest of `test` because of `why` (say what installs it), or fail under CI. The line
/// is written to the stderr descriptor itself, not with `eprintln!`, which the test harness
/// captures and shows only for failures: a plain `cargo test` shows every skip and its reason.
pub fn skip(test: &str, why: &str) {
    assert!(
        !in_ci(),
        "{test} cannot run here, and CI must run it: {why}"
    );
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "SKIP {test}: {why}");
}

pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// True when running as root; else the test is skipped (failed under CI, which runs as root).
pub fn require_root(test: &str, what_for: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(test, &format!("needs root ({what_for})"));
    false
}

/// A process started in its own process group, which is killed whole (SIGKILL to the group)
/// and reaped when the guard drops, on a panic too. Servers fork: `git daemon` runs
/// `git-daemon` as a child and that forks per connection, so killing the first process alone
/// leaves the listener behind.
pub struct ProcessGroup {
    pub child: std::process::Child,
}

impl ProcessGroup {
    pub fn spawn(mut cmd: Command) -> std::io::Result<ProcessGroup> {
        use std::os::unix::process::CommandExt as _;
        cmd.process_group(0);
        Ok(ProcessGroup {
            child: cmd.spawn()?,
        })
    }

    pub fn kill(&mut self) {
        // Without libc: kill(1) sends to the group when given a negative id.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
