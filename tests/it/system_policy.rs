//! A server-wide installation: one shared hooks directory (`core.hooksPath`) and one policy in
//! `/etc/agentgate/policy.toml` for every repository, which nothing in a push can override.
//!
//! This is its own test binary because it writes `/etc/agentgate/policy.toml` (other tests rely
//! on its absence; cargo runs test binaries one at a time). It takes a lock so that two runs on
//! one machine do not overlap, and puts back whatever was there before.

use crate::common::*;
use std::path::{Path, PathBuf};

const SYSTEM_POLICY: &str = "/etc/agentgate/policy.toml";

/// Holds `/etc/agentgate/policy.toml` for the test; restores the previous state on drop.
struct SystemPolicyGuard {
    previous: Option<Vec<u8>>,
    created_dir: bool,
    _lock: std::fs::File,
}

impl SystemPolicyGuard {
    fn install(text: &str) -> SystemPolicyGuard {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::env::temp_dir().join("agentgate-system-policy-test.lock"))
            .unwrap();
        lock.lock().unwrap();
        let dir = Path::new(SYSTEM_POLICY).parent().unwrap();
        let created_dir = !dir.exists();
        std::fs::create_dir_all(dir).unwrap();
        let previous = std::fs::read(SYSTEM_POLICY).ok();
        std::fs::write(SYSTEM_POLICY, text).unwrap();
        SystemPolicyGuard {
            previous,
            created_dir,
            _lock: lock,
        }
    }
}

impl Drop for SystemPolicyGuard {
    fn drop(&mut self) {
        match &self.previous {
            Some(bytes) => {
                let _ = std::fs::write(SYSTEM_POLICY, bytes);
            }
            None => {
                let _ = std::fs::remove_file(SYSTEM_POLICY);
            }
        }
        if self.created_dir {
            let _ = std::fs::remove_dir(Path::new(SYSTEM_POLICY).parent().unwrap());
        }
    }
}

fn can_write_etc() -> bool {
    require_root(
        "shared_hooks_dir_and_system_policy",
        &format!("it writes {SYSTEM_POLICY}"),
    )
}

/// A bare repository with no hook and no policy of its own.
fn bare(env: &Env, name: &str) -> PathBuf {
    let server = env.path().join(name);
    env.git_ok(
        env.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            server.to_str().unwrap(),
        ],
    );
    server
}

#[test]
fn shared_hooks_dir_and_system_policy() {
    if !can_write_etc() {
        return;
    }
    let env = Env::new();
    let _policy = SystemPolicyGuard::install(POLICY);

    // The Git server's user has core.hooksPath in its global config: every repository runs the
    // hooks of one shared directory. Pushes run receive-pack with that config.
    let shared = env.path().join("shared-hooks");
    let server_config = env.path().join("server-gitconfig");
    std::fs::write(
        &server_config,
        format!("[core]\n\thooksPath = {}\n", shared.display()),
    )
    .unwrap();
    let rp = format!(
        "env GIT_CONFIG_GLOBAL={} git-receive-pack",
        server_config.display()
    );
    let out = env.agentgate(
        env.path(),
        &["install", "--hooks-dir", shared.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(SYSTEM_POLICY));

    let a = bare(&env, "a.git");
    let b = bare(&env, "b.git");
    for (server, name) in [(&a, "wa"), (&b, "wb")] {
        assert!(!server.join("hooks/pre-receive").exists());
        let work = env.clone(server, name);
        env.commit(&work, "a.txt", "Human");
        let (ok, err) = env.push(&work, &["--receive-pack", &rp, "origin", "main"]);
        assert!(ok, "{err}");
        let log = env.audit(server);
        assert_eq!(log.len(), 1, "the shared hook ran");
        assert_eq!(log[0]["policy"]["path"], SYSTEM_POLICY);

        // An agent commit that brings its own permissive policy in the tree: no effect.
        let permissive = "version = 1\n[protect]\nrefs = [\"refs/heads/nothing\"]\n";
        std::fs::write(work.join("agentgate.toml"), permissive).unwrap();
        std::fs::write(work.join(".agentgate.toml"), permissive).unwrap();
        env.git_ok(&work, &["add", "agentgate.toml", ".agentgate.toml"]);
        env.agent_commit(&work, "a.txt", "Agent relaxes the policy");
        let (ok, err) = env.push(&work, &["--receive-pack", &rp, "origin", "main"]);
        assert!(!ok);
        assert!(
            err.contains("agentgate: refused [agent-commit-unattested]"),
            "{err}"
        );
        let log = env.audit(server);
        assert_eq!(log[1]["policy"]["path"], SYSTEM_POLICY);
        assert_eq!(log[1]["decision"], "refuse");
    }

    // doctor sees the shared directory through the repository's config, and the policy's origin.
    let out = env
        .cmd(AGENTGATE)
        .args(["doctor", "--json", "--repo", a.to_str().unwrap()])
        .env("GIT_CONFIG_GLOBAL", &server_config)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v:#}");
    let text = v.to_string();
    assert!(
        text.contains(&format!("{}/pre-receive", shared.display())),
        "{v:#}"
    );
    // install pinned the server-wide policy it found into the shared shim.
    assert!(
        text.contains(&format!(
            "{SYSTEM_POLICY} loads (named by --config (in the hook shim"
        )),
        "{v:#}"
    );
    let out = env.agentgate(
        env.path(),
        &["doctor", "--hooks-dir", shared.to_str().unwrap()],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = env.agentgate(
        env.path(),
        &["uninstall", "--hooks-dir", shared.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(!shared.join("pre-receive").exists());
}
