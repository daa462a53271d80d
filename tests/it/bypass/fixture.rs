//! The setup every bypass test shares: a bare server in one of the three repository formats with
//! the hook installed the way an admin installs it, a work repository to push from, raw objects
//! built with git's own plumbing, and assertions that print the whole push output when they fail.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::Env;
pub use crate::common::CLAUDE_TRAILER;

/// The repository formats whose reads differ: libgit2 reads SHA-1 repositories with files refs,
/// the `git` CLI backend reads SHA-256 and reftable ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Sha1,
    Sha256,
    Reftable,
}

impl Fmt {
    fn init_args(self) -> &'static [&'static str] {
        match self {
            Fmt::Sha1 => &[],
            Fmt::Sha256 => &["--object-format=sha256"],
            Fmt::Reftable => &["--ref-format=reftable"],
        }
    }

    /// The work repository only needs the server's object format (its refs stay in files: the
    /// server's ref format is what the hook reads).
    fn work_init_args(self) -> &'static [&'static str] {
        match self {
            Fmt::Sha256 => &["--object-format=sha256"],
            Fmt::Sha1 | Fmt::Reftable => &[],
        }
    }
}

/// The protected refs and detection every bypass server starts from.
pub const BASE_POLICY: &str = r#"version = 1
[protect]
refs = ["refs/heads/main", "refs/heads/release/*", "refs/tags/v*"]
[detect]
presets = ["known-agents"]
"#;

/// A fixed author line for raw objects (2026-01-05 11:00 UTC).
pub const ADA: &str = "Ada <ada@example.com> 1767610800 +0000";
pub const CLAUDE: &str = "Claude <noreply@anthropic.com> 1767610800 +0000";

/// How the hook is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// `agentgate install --repo SERVER --config POLICY` (the policy outside the repository).
    Pinned,
    /// `agentgate install --repo SERVER` with the policy at `$GIT_DIR/agentgate.toml`: found
    /// at push time by discovery.
    Discovered,
    /// No hook yet: for history that was on the server before agentgate (the baseline).
    Later,
}

pub struct Options<'a> {
    pub fmt: Fmt,
    /// Appended to `BASE_POLICY` before the gate's `[[signer]]`.
    pub policy_extra: &'a str,
    /// `receive.fsckObjects` on the server: it does not stop any of these objects.
    pub fsck: bool,
    pub install: Install,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            fmt: Fmt::Sha1,
            policy_extra: "",
            fsck: false,
            install: Install::Pinned,
        }
    }
}

pub struct Fx {
    pub env: Env,
    pub server: PathBuf,
    pub work: PathBuf,
    pub policy: PathBuf,
    pub key: PathBuf,
    pub artifact: PathBuf,
    /// The first commit on the server's main ("base", app.c = v1).
    pub base: String,
}

/// One `git push`: whether git reported success, and everything it printed.
pub struct Push {
    pub what: String,
    pub ok: bool,
    pub out: String,
}

impl std::fmt::Display for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "`{}` {}",
            self.what,
            if self.ok { "ACCEPTED" } else { "REFUSED" }
        )?;
        for line in self.out.lines() {
            writeln!(f, "    | {line}")?;
        }
        Ok(())
    }
}

impl Push {
    /// The first refusal line with `code`.
    pub fn refusal_line(&self, code: &str) -> Option<&str> {
        let needle = format!("agentgate: refused [{code}]");
        self.out.lines().find(|l| l.contains(&needle))
    }
}

/// The push was refused, and by agentgate with `code`.
#[track_caller]
pub fn assert_refused(p: &Push, code: &str) {
    assert!(
        !p.ok && p.refusal_line(code).is_some(),
        "expected the push to be refused [{code}]:\n{p}"
    );
}

/// The push was refused by agentgate with one of `codes` (where the spec allows either).
#[track_caller]
pub fn assert_refused_any(p: &Push, codes: &[&str]) {
    assert!(
        !p.ok && codes.iter().any(|c| p.refusal_line(c).is_some()),
        "expected the push to be refused with one of {codes:?}:\n{p}"
    );
}

#[track_caller]
pub fn assert_accepted(p: &Push) {
    assert!(p.ok, "expected the push to be accepted:\n{p}");
}

/// The refusal line with `code` names `word` (as a whole word).
#[track_caller]
pub fn assert_refusal_names(p: &Push, code: &str, word: &str) {
    // Only what follows the code: `[object-malformed]` itself contains the word "object".
    let marker = format!("refused [{code}]");
    let line = p.refusal_line(code).unwrap_or("");
    let line = line.split_once(&marker).map_or("", |(_, rest)| rest);
    let re = regex::Regex::new(&format!(r"\b{}\b", regex::escape(word))).unwrap();
    assert!(
        re.is_match(line),
        "the [{code}] refusal line should name {word:?}:\n{p}"
    );
}

impl Fx {
    pub fn new(o: Options<'_>) -> Fx {
        let env = Env::new();
        let root = env.path().to_path_buf();
        let out = env.agentgate(&root, &["keygen", "--out", s(&root.join("gate"))]);
        assert!(out.status.success(), "keygen: {}", text(&out.stderr));
        let key = root.join("gate.key");
        let artifact = root.join("app.bin");
        std::fs::write(&artifact, b"the built artifact\n").unwrap();
        let policy_text = format!(
            "{BASE_POLICY}{}\n[[signer]]\nname = \"gate\"\npublic_key = \"{}\"\n",
            o.policy_extra,
            root.join("gate.pub").display()
        );

        let server = root.join("srv.git");
        let mut args = vec!["init", "-q", "--bare", "-b", "main"];
        args.extend_from_slice(o.fmt.init_args());
        args.push(s(&server));
        env.git_ok(&root, &args);
        if o.fsck {
            env.git_ok(&server, &["config", "receive.fsckObjects", "true"]);
        }
        let policy = match o.install {
            Install::Pinned | Install::Later => root.join("policy.toml"),
            Install::Discovered => server.join("agentgate.toml"),
        };
        std::fs::write(&policy, policy_text).unwrap();

        let work = root.join("w");
        let mut args = vec!["init", "-q", "-b", "main"];
        args.extend_from_slice(o.fmt.work_init_args());
        args.push(s(&work));
        env.git_ok(&root, &args);
        env.git_ok(&work, &["remote", "add", "origin", s(&server)]);

        let mut fx = Fx {
            env,
            server,
            work,
            policy,
            key,
            artifact,
            base: String::new(),
        };
        match o.install {
            Install::Pinned => fx.install(&["--config", s(&fx.policy)]),
            Install::Discovered => fx.install(&["--discover"]),
            Install::Later => {}
        }
        fx.base = fx.commit_file("app.c", "v1\n", "base");
        let p = fx.push(&["origin", "main"]);
        assert_accepted(&p);
        fx
    }

    pub fn install(&self, extra: &[&str]) {
        let mut args = vec!["install", "--repo", s(&self.server)];
        args.extend_from_slice(extra);
        let out = self.env.agentgate(self.env.path(), &args);
        assert!(
            out.status.success(),
            "agentgate install failed: {}",
            text(&out.stderr)
        );
    }

    /// `git` in the work repository, which must succeed; its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.env.git_ok(&self.work, args)
    }

    /// `git` in the server repository (as its admin would run it), which must succeed.
    pub fn srv(&self, args: &[&str]) -> String {
        self.env.git_ok(&self.server, args)
    }

    /// Write `content` to `file` and commit it as Ada; the new commit id.
    pub fn commit_file(&self, file: &str, content: &str, message: &str) -> String {
        std::fs::write(self.work.join(file), content).unwrap();
        self.git(&["add", file]);
        self.git(&["commit", "-q", "--cleanup=verbatim", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// An agent commit (Claude trailer) changing `file`, on top of HEAD.
    pub fn agent_commit(&self, file: &str, content: &str, subject: &str) -> String {
        self.commit_file(file, content, &format!("{subject}\n\n{CLAUDE_TRAILER}\n"))
    }

    /// `git commit-tree` in the work repository: a commit with `parents` and `message` on `tree`.
    pub fn commit_tree(&self, tree: &str, parents: &[&str], message: &str) -> String {
        let mut args = vec!["commit-tree"];
        for p in parents {
            args.push("-p");
            args.push(p);
        }
        args.extend_from_slice(&["-m", message, tree]);
        self.git(&args)
    }

    pub fn tree_of(&self, rev: &str) -> String {
        self.git(&["rev-parse", &format!("{rev}^{{tree}}")])
    }

    /// The tree of HEAD with `file` set to `content` (nothing committed).
    pub fn tree_with(&self, file: &str, content: &str) -> String {
        std::fs::write(self.work.join(file), content).unwrap();
        self.git(&["add", file]);
        let tree = self.git(&["write-tree"]);
        self.git(&["reset", "-q", "--hard", "HEAD"]);
        tree
    }

    /// Write a raw object with `git hash-object -w --stdin`; `literally` for objects git's own
    /// checks refuse to write (they can still be pushed to a server without fsckObjects).
    pub fn raw_object(&self, kind: &str, bytes: &[u8], literally: bool) -> String {
        let mut args = vec!["hash-object", "-t", kind, "-w", "--stdin"];
        if literally {
            args.push("--literally");
        }
        let out = self.stdin_git(&self.work, &args, bytes);
        assert!(
            out.status.success(),
            "hash-object {kind} failed: {}\nobject: {:?}",
            text(&out.stderr),
            String::from_utf8_lossy(bytes)
        );
        text(&out.stdout).trim().to_string()
    }

    pub fn raw_commit(&self, bytes: &[u8]) -> String {
        self.raw_object("commit", bytes, false)
    }

    pub fn raw_commit_literally(&self, bytes: &[u8]) -> String {
        self.raw_object("commit", bytes, true)
    }

    /// `git` in `dir` with `stdin` as input.
    pub fn stdin_git(&self, dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = self.env.cmd("git");
        cmd.current_dir(dir).args(args);
        with_stdin(cmd, stdin)
    }

    /// `program` in `dir`, isolated like every test command, with `env` set and `stdin` as
    /// input (to run an installed hook the way receive-pack runs it).
    pub fn run_with_stdin(
        &self,
        program: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        stdin: &[u8],
    ) -> Output {
        let mut cmd = self.env.cmd(s(program));
        cmd.current_dir(dir).envs(env.iter().copied());
        with_stdin(cmd, stdin)
    }

    /// `git push` from the work repository.
    pub fn push(&self, args: &[&str]) -> Push {
        let out = self
            .env
            .cmd("git")
            .current_dir(&self.work)
            .arg("push")
            .args(args)
            .output()
            .expect("run git push");
        Push {
            what: format!("git push {}", args.join(" ")),
            ok: out.status.success(),
            out: format!("{}{}", text(&out.stdout), text(&out.stderr)),
        }
    }

    /// `git push` through a `git-receive-pack` that runs with `env` set (what a server does for
    /// GIT_NAMESPACE, or what an SSH `AcceptEnv` would let a pusher do).
    pub fn push_env(&self, env: &[(&str, &str)], args: &[&str]) -> Push {
        let mut rp = String::from("env");
        for (k, v) in env {
            rp.push_str(&format!(" {k}='{v}'"));
        }
        rp.push_str(" git-receive-pack");
        let flag = format!("--receive-pack={rp}");
        let mut all = vec![flag.as_str()];
        all.extend_from_slice(args);
        self.push(&all)
    }

    /// `git push` that is killed (with everything it started) after `limit`; also returns how
    /// long it took. A hook that never ends must not hang the test suite.
    pub fn push_timed(&self, args: &[&str], limit: Duration) -> (Push, Duration) {
        use std::os::unix::process::CommandExt as _;
        let start = Instant::now();
        let mut child = self
            .env
            .cmd("git")
            .current_dir(&self.work)
            .arg("push")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("spawn git push");
        // Drain both pipes while waiting, so a chatty hook cannot block on a full pipe.
        let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut r) = r {
                    let _ = r.read_to_end(&mut buf);
                }
                buf
            })
        };
        let stdout = drain(child.stdout.take().map(|r| Box::new(r) as _));
        let stderr = drain(child.stderr.take().map(|r| Box::new(r) as _));
        let mut killed = false;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > limit {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .stderr(Stdio::null())
                    .status();
                killed = true;
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = Output {
            status,
            stdout: stdout.join().unwrap(),
            stderr: stderr.join().unwrap(),
        };
        let took = start.elapsed();
        let mut all = format!("{}{}", text(&out.stdout), text(&out.stderr));
        if killed {
            all.push_str(&format!("\n(killed by the test after {limit:?})"));
        }
        (
            Push {
                what: format!("git push {}", args.join(" ")),
                ok: out.status.success() && !killed,
                out: all,
            },
            took,
        )
    }

    /// The id a server ref points to (symbolic refs followed), looked up by its exact name.
    pub fn server_ref(&self, name: &str) -> Option<String> {
        let out = self.env.git(
            &self.server,
            &["show-ref", "--verify", "--hash", "--end-of-options", name],
        );
        out.status
            .success()
            .then(|| text(&out.stdout).trim().to_string())
    }

    /// The server ref `name` still points to `expected` (or still does not exist).
    #[track_caller]
    pub fn assert_server_ref(&self, name: &str, expected: Option<&str>, p: &Push) {
        assert_eq!(
            self.server_ref(name).as_deref(),
            expected,
            "server ref {name} moved (or appeared/vanished) after:\n{p}"
        );
    }

    /// The last audit record the hook wrote for `refname` (as pushed).
    #[track_caller]
    pub fn last_audit(&self, refname: &str) -> serde_json::Value {
        self.env
            .audit(&self.server)
            .into_iter()
            .rev()
            .find(|r| r["ref"] == refname)
            .unwrap_or_else(|| panic!("no audit record for {refname}"))
    }

    /// `agentgate sign --note` for `commit` in the work repository with the gate's key.
    pub fn sign(&self, commit: &str) {
        let out = self.env.agentgate(
            &self.work,
            &[
                "sign",
                "--key",
                s(&self.key),
                "--commit",
                commit,
                "--artifact",
                s(&self.artifact),
                "--test-result",
                "passed",
                "--note",
            ],
        );
        assert!(out.status.success(), "sign: {}", text(&out.stderr));
    }

    /// The real agentgate binary on this machine.
    pub fn agentgate(&self, dir: &Path, args: &[&str]) -> Output {
        self.env.agentgate(dir, args)
    }
}

fn with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A commit or tag object from its header lines and message (git's layout: headers, a blank
/// line, the message).
pub fn object_bytes(headers: &[String], message: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for h in headers {
        b.extend_from_slice(h.as_bytes());
        b.push(b'\n');
    }
    b.push(b'\n');
    b.extend_from_slice(message);
    b
}
