//! Shared by the integration tests: a temp dir with a real git repository, isolated from the
//! developer's git config, and the real `agentgate` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_agentgate");
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

pub fn isolate(cmd: &mut Command, home: &Path) {
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_NAMESPACE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
}

impl Sandbox {
    /// A repository `repo` with two commits and an artifact file `app.bin`.
    pub fn new() -> Self {
        let sb = Sandbox {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(sb.path("repo")).unwrap();
        sb.git(&["init", "-q", "-b", "main"]);
        std::fs::write(sb.path("repo/a.txt"), "one\n").unwrap();
        sb.git(&["add", "a.txt"]);
        sb.git(&["commit", "-q", "-m", "first"]);
        std::fs::write(sb.path("repo/a.txt"), "two\n").unwrap();
        sb.git(&["commit", "-q", "-am", "second"]);
        std::fs::write(sb.path("app.bin"), b"the artifact\n").unwrap();
        sb
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(self.path("repo"));
        isolate(&mut cmd, self.dir.path());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev]).trim().to_string()
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path());
        isolate(&mut cmd, self.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn ok(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run(args, env);
        assert!(
            out.status.success(),
            "agentgate {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn keygen(&self, prefix: &str, extra: &[&str], env: &[(&str, &str)]) {
        let mut args = vec!["keygen", "--out", prefix];
        args.extend_from_slice(extra);
        self.ok(&args, env);
    }

    /// Sign HEAD of `repo` with `key` into `out`.
    pub fn sign(&self, key: &str, out: &str, extra: &[&str], env: &[(&str, &str)]) {
        let mut args = vec![
            "sign",
            "--key",
            key,
            "--repo",
            "repo",
            "--commit",
            "HEAD",
            "--artifact",
            "app.bin",
            "--out",
            out,
        ];
        if !extra.contains(&"--test-result") && !extra.contains(&"--junit") {
            args.extend_from_slice(&["--test-result", "passed"]);
        }
        args.extend_from_slice(extra);
        self.ok(&args, env);
    }

    /// Run `verify --json`; Ok(json) when verified, Err(code) when refused (exit 1).
    pub fn verify(
        &self,
        bundle: &str,
        key: &str,
        extra: &[&str],
        artifact: &str,
    ) -> Result<serde_json::Value, String> {
        let mut args = vec![
            "verify", "--json", "--bundle", bundle, "--key", key, "--repo", "repo",
        ];
        args.extend_from_slice(extra);
        args.push(artifact);
        let out = self.run(&args, &[]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "verify printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        match out.status.code() {
            Some(0) => {
                assert_eq!(v["verified"], true);
                Ok(v)
            }
            Some(1) => {
                assert_eq!(v["verified"], false);
                Err(v["code"].as_str().unwrap().to_string())
            }
            c => panic!(
                "verify exit {c:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    pub fn edit_bundle(&self, from: &str, to: &str, f: impl FnOnce(&mut serde_json::Value)) {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.path(from)).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(self.path(to), v.to_string()).unwrap();
    }
}

pub fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}
