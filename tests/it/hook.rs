//! The hook end to end: real `git push` into bare repositories with the hook installed.

use crate::common::*;

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

#[test]
fn human_commit_is_accepted() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    let c = env.commit(
        &work,
        "a.txt",
        "Human work\n\nSigned-off-by: Ada Lovelace <ada@example.com>\n",
    );
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(c.as_str())
    );
    let log = env.audit(&server);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["decision"], "accept");
    assert_eq!(log[0]["code"], "no-agent-commits");
    assert_eq!(log[0]["entering_commits"], 1);
    assert_eq!(log[0]["new"], c.as_str());
    assert!(log[0]["policy"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
}

#[test]
fn agent_commit_to_main_is_refused_naming_commit_and_rule() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Base");
    assert!(env.push(&work, &["origin", "main"]).0);
    let agent = env.agent_commit(&work, "a.txt", "Agent change");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains(&agent[..7]), "names the commit: {err}");
    assert!(err.contains("Agent change"), "names the subject: {err}");
    assert!(
        err.contains("known-agents:claude-co-author"),
        "names the rule: {err}"
    );
    assert!(err.contains(CLAUDE_TRAILER), "shows the evidence: {err}");
    assert!(err.contains("fix:"), "says how to fix it: {err}");
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(base.as_str())
    );
    let log = env.audit(&server);
    let last = log.last().unwrap();
    assert_eq!(last["decision"], "refuse");
    assert_eq!(last["agent_commits"][0]["commit"], agent.as_str());
    assert_eq!(
        last["agent_commits"][0]["matches"][0]["rule"],
        "known-agents:claude-co-author"
    );
}

#[test]
fn agent_commit_via_unprotected_branch_cannot_reach_main_later() {
    let env = Env::new();
    let (_server, work) = env.server_with_main("s.git");
    let agent = env.agent_commit(&work, "a.txt", "Sneaky");
    env.commit(&work, "a.txt", "Human on top");
    // Accepted on an unprotected branch...
    let (ok, err) = env.push(&work, &["origin", "HEAD:refs/heads/feature"]);
    assert!(ok, "{err}");
    // ...and refused when main is fast-forwarded to it (git's `--not --all` would see 0 new commits).
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains(&agent[..7]), "{err}");
    assert!(err.contains("among 2 entering commit(s)"), "{err}");
}

#[test]
fn new_protected_ref_counts_commits_not_on_other_protected_refs() {
    let env = Env::new();
    let (server, work) = env.server_with_main("s.git");
    // A release branch created from main holds no new commits: accepted.
    let (ok, err) = env.push(&work, &["origin", "main:refs/heads/release/1.0"]);
    assert!(ok, "{err}");
    // Pushed first to an unprotected branch, then used to create a protected one: refused.
    env.agent_commit(&work, "a.txt", "Agent");
    assert!(env.push(&work, &["origin", "HEAD:refs/heads/topic"]).0);
    let (ok, err) = env.push(&work, &["origin", "HEAD:refs/heads/release/2.0"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(env.rev(&server, "refs/heads/release/2.0").is_none());
}

#[test]
fn deleting_and_force_pushing_main_are_refused() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "One");
    let two = env.commit(&work, "a.txt", "Two");
    assert!(env.push(&work, &["origin", "main"]).0);
    let (ok, err) = env.push(&work, &["origin", ":refs/heads/main"]);
    assert!(!ok);
    assert!(refused_with(&err, "protected-ref-delete"), "{err}");
    env.git_ok(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    env.commit(&work, "b.txt", "Rewritten");
    let (ok, err) = env.push(&work, &["--force", "origin", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "non-fast-forward"), "{err}");
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(two.as_str())
    );
}

#[test]
fn protected_tags_are_peeled() {
    let env = Env::new();
    let (_server, work) = env.server_with_main("s.git");
    env.agent_commit(&work, "a.txt", "Agent release prep");
    assert!(env.push(&work, &["origin", "HEAD:refs/heads/prep"]).0);
    // An annotated release tag on the agent commit: refused.
    env.git_ok(
        &work,
        &[
            "-c",
            "user.name=Ada",
            "-c",
            "user.email=ada@example.com",
            "tag",
            "-a",
            "-m",
            "v1",
            "v1.0",
        ],
    );
    let (ok, err) = env.push(&work, &["origin", "refs/tags/v1.0"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    // A tag outside the protected pattern is fine; a lightweight v-tag on human main is fine.
    env.git_ok(&work, &["tag", "nightly"]);
    assert!(env.push(&work, &["origin", "refs/tags/nightly"]).0);
    env.git_ok(&work, &["tag", "v0.9", "main~0"]);
    let (ok, err) = env.push(&work, &["origin", "refs/tags/v0.9"]);
    assert!(!ok, "v0.9 points at the agent commit too: {err}");
    env.git_ok(&work, &["tag", "-f", "v0.8", "HEAD~1"]);
    let (ok, err) = env.push(&work, &["origin", "refs/tags/v0.8"]);
    assert!(ok, "{err}");
    // Re-pointing a protected tag at a new tag object for the same commit is a fast-forward.
    env.git_ok(
        &work,
        &[
            "-c",
            "user.name=Ada",
            "-c",
            "user.email=ada@example.com",
            "tag",
            "-f",
            "-a",
            "-m",
            "again",
            "v0.8",
            "HEAD~1",
        ],
    );
    let (ok, err) = env.push(&work, &["--force", "origin", "refs/tags/v0.8"]);
    assert!(ok, "same commit, new tag object: {err}");
}

#[test]
fn one_refused_ref_refuses_the_whole_push() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Base");
    assert!(env.push(&work, &["origin", "main"]).0);
    env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(
        &work,
        &[
            "origin",
            "main",
            "HEAD:refs/heads/side",
            "HEAD:refs/heads/other",
        ],
    );
    assert!(!ok);
    assert!(err.contains("1 of 3 ref update(s) refused"), "{err}");
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(base.as_str())
    );
    assert!(
        env.rev(&server, "refs/heads/side").is_none(),
        "pre-receive is all-or-nothing"
    );
    let log = env.audit(&server);
    assert_eq!(log.len(), 4, "one record per ref decision");
    assert_eq!(log.iter().filter(|r| r["decision"] == "accept").count(), 3);
}

#[test]
fn broken_policy_refuses_everything_with_an_admin_message() {
    let env = Env::new();
    let (server, work) = env.server_with_main("s.git");
    let cases = [
        ("version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\ntypo = true\n", "policy-invalid", "agentgate.toml:4:1"),
        ("version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n[[detect.rule]]\nmessage = \"(\"\n", "policy-invalid", "agentgate.toml:5:"),
        ("[protect]\nrefs = [\"refs/heads/main\"]\n", "policy-invalid", "missing `version = 1`"),
    ];
    for (policy, code, needle) in cases {
        std::fs::write(server.join("agentgate.toml"), policy).unwrap();
        env.commit(&work, "a.txt", "Human");
        // Even an unprotected branch: we cannot know what is protected.
        let (ok, err) = env.push(&work, &["origin", "HEAD:refs/heads/unprotected"]);
        assert!(!ok);
        assert!(refused_with(&err, code), "{err}");
        assert!(err.contains(needle), "{needle} in {err}");
        assert!(err.contains("Git server admin"), "{err}");
    }
    std::fs::remove_file(server.join("agentgate.toml")).unwrap();
    let (ok, err) = env.push(&work, &["origin", "HEAD:refs/heads/unprotected"]);
    assert!(!ok);
    assert!(refused_with(&err, "policy-missing"), "{err}");
    assert!(env.rev(&server, "refs/heads/unprotected").is_none());
}

#[test]
fn require_all_commits_gates_human_commits_too() {
    let env = Env::new();
    let policy = "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n[detect]\nrequire = \"all-commits\"\n";
    let server = env.server_with("s.git", policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Plain human commit");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(err.contains("require:all-commits"), "{err}");
}

#[test]
fn identity_rules_catch_agents_without_trailers() {
    let env = Env::new();
    let (_server, work) = env.server_with_main("s.git");
    env.commit_as(
        &work,
        HUMAN,
        ("Ada Lovelace (aider)", "ada@example.com"),
        "a.txt",
        "feat: no trailer at all",
    );
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(err.contains("known-agents:aider-name"), "{err}");
    assert!(
        err.contains("committer name \"Ada Lovelace (aider)\""),
        "{err}"
    );
}

#[test]
fn gitlab_prefix_and_pusher() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    env.agent_commit(&work, "a.txt", "Agent");
    let rp = "env GL_ID=user-7 GL_USERNAME=ada git-receive-pack";
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(!ok);
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("agentgate")).collect();
    assert!(!ours.is_empty());
    assert!(
        ours.iter().all(|l| l.starts_with("remote: GL-HOOK-ERR: ")),
        "{err}"
    );
    let log = env.audit(&server);
    assert_eq!(log[0]["pusher"]["name"], "ada");
    assert_eq!(log[0]["pusher"]["source"], "GL_USERNAME");
}

#[test]
fn namespaces_are_applied_by_hand() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    let rp = "env GIT_NAMESPACE=team git-receive-pack";
    let base = env.commit(&work, "a.txt", "Base");
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(ok, "{err}");
    env.git_ok(&server, &["pack-refs", "--all"]);
    assert_eq!(
        env.rev(&server, "refs/namespaces/team/refs/heads/main")
            .as_deref(),
        Some(base.as_str())
    );
    env.agent_commit(&work, "a.txt", "Agent");
    assert!(
        env.push(
            &work,
            &["--receive-pack", rp, "origin", "HEAD:refs/heads/topic"]
        )
        .0
    );
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(!ok);
    assert!(
        err.contains("among 1 entering commit(s)"),
        "old tip read from the namespace: {err}"
    );
    // Another namespace's main is not "another protected ref" of this one.
    assert!(env.rev(&server, "refs/heads/main").is_none());
}

#[test]
fn sha256_repositories() {
    let env = Env::new();
    let server = env.server_with("s.git", POLICY, &["--object-format=sha256"], &[]);
    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Base");
    assert_eq!(base.len(), 64);
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    let agent = env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains(&agent[..7]), "{err}");
    let log = env.audit(&server);
    assert_eq!(log[1]["new"], agent.as_str());
}

#[test]
fn update_hook_decides_per_ref() {
    let env = Env::new();
    let server = env.server_with("s.git", POLICY, &[], &["--hook", "update"]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    assert!(env.push(&work, &["origin", "main"]).0);
    env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(&work, &["origin", "main", "HEAD:refs/heads/side"]);
    assert!(!ok, "main is refused");
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(
        env.rev(&server, "refs/heads/side").is_some(),
        "the update hook decides each ref alone"
    );
    let log = env.audit(&server);
    assert!(log.iter().all(|r| r["mode"] == "update"));
}

#[test]
fn git_daemon_push() {
    let env = Env::new();
    let server = env.server("s.git");
    let port = free_port();
    let mut cmd = env.cmd("git");
    cmd.args([
        "daemon",
        "--reuseaddr",
        "--enable=receive-pack",
        "--export-all",
        "--listen=127.0.0.1",
    ])
    .arg(format!("--port={port}"))
    .arg(format!("--base-path={}", env.path().display()))
    .arg(env.path())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    // `git daemon` runs git-daemon as its child: the guard kills the whole group.
    let mut daemon = ProcessGroup::spawn(cmd).expect("git daemon");
    let url = format!("git://127.0.0.1:{port}/s.git");
    let work = env.path().join("w");
    std::fs::create_dir(&work).unwrap();
    env.git_ok(&work, &["init", "-q", "-b", "main"]);
    env.git_ok(&work, &["remote", "add", "origin", &url]);
    env.commit(&work, "a.txt", "Base");
    // Wait for the daemon to listen (bounded).
    let mut pushed = (false, String::new());
    for _ in 0..50 {
        pushed = env.push(&work, &["origin", "main"]);
        if pushed.0 || pushed.1.contains("remote:") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(pushed.0, "{}", pushed.1);
    assert!(env.rev(&server, "refs/heads/main").is_some());
    env.agent_commit(&work, "a.txt", "Agent over git://");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    daemon.kill();
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
}

#[test]
fn concurrent_pushes_never_interleave_audit_lines() {
    let env = Env::new();
    let (server, _work) = env.server_with_main("s.git");
    let n = 16;
    let mut clones = Vec::new();
    for i in 0..n {
        let w = env.clone(&server, &format!("c{i}"));
        env.git_ok(&w, &["checkout", "-q", "main"]);
        if i % 2 == 0 {
            env.agent_commit(&w, "a.txt", &format!("Agent {i}"));
        } else {
            env.commit(&w, "a.txt", &format!("Human {i}"));
        }
        clones.push(w);
    }
    std::thread::scope(|s| {
        for (i, w) in clones.iter().enumerate() {
            let env = &env;
            s.spawn(move || {
                // Even: a protected release branch (refused); odd: an unprotected one (accepted).
                let target = if i % 2 == 0 {
                    format!("HEAD:refs/heads/release/{i}")
                } else {
                    format!("HEAD:refs/heads/topic/{i}")
                };
                env.push(w, &["origin", &target])
            });
        }
    });
    let text = std::fs::read_to_string(server.join("agentgate/audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("whole JSON line"))
        .collect();
    assert_eq!(records.len(), 1 + n);
    assert_eq!(
        records.iter().filter(|r| r["decision"] == "refuse").count(),
        n / 2
    );
    for i in 0..n {
        let refname = if i % 2 == 0 {
            format!("refs/heads/release/{i}")
        } else {
            format!("refs/heads/topic/{i}")
        };
        assert_eq!(
            records
                .iter()
                .filter(|r| r["ref"] == refname.as_str())
                .count(),
            1,
            "{refname}"
        );
    }
}

#[test]
fn unwritable_audit_log_refuses() {
    let env = Env::new();
    let blocker = env.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let policy = format!(
        "{POLICY}[audit]\nlog = \"{}/audit.jsonl\"\n",
        blocker.display()
    );
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Human");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "audit-failed"), "{err}");
}

#[test]
fn hook_fails_closed_on_bad_input_and_panics() {
    let env = Env::new();
    let server = env.server("s.git");
    let run = |stdin: &[u8], extra_env: &[(&str, &str)]| {
        let mut c = env.cmd(AGENTGATE);
        c.current_dir(&server)
            .arg("pre-receive")
            .env("GIT_DIR", &server)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let z = "0".repeat(40);
    for input in [
        &b"garbage\n"[..],
        b"",
        b"\xff\xfe\xfd\n",
        format!("{z} {z} refs/heads/main\n").as_bytes(),
    ] {
        let (code, err) = run(input, &[]);
        assert_eq!(code, Some(1), "{err}");
        assert!(refused_with(&err, "stdin-malformed"), "{err}");
    }
    let unknown = format!("{z} {} refs/heads/main\n", "1".repeat(40));
    let (code, err) = run(unknown.as_bytes(), &[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(refused_with(&err, "unknown-object"), "{err}");
    let (code, err) = run(unknown.as_bytes(), &[("AGENTGATE_DANGER_TEST_PANIC", "1")]);
    assert_eq!(code, Some(1), "{err}");
    assert!(refused_with(&err, "internal-error"), "{err}");
}

#[test]
fn check_and_inspect() {
    let env = Env::new();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Base");
    let agent = env.agent_commit(&work, "a.txt", "Agent");
    std::fs::copy(server.join("agentgate.toml"), work.join("policy.toml")).unwrap();
    let out = env.agentgate(
        &work,
        &[
            "check",
            "--config",
            "policy.toml",
            "--json",
            &base,
            &agent,
            "refs/heads/main",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "refuse");
    assert_eq!(v["code"], "agent-commit-unattested");
    assert_eq!(v["entering_commits"], 1);
    let out = env.agentgate(
        &work,
        &[
            "check",
            "--config",
            "policy.toml",
            &base,
            &agent,
            "refs/heads/topic",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("accept [unprotected]"));

    let out = env.agentgate(&work, &["inspect", "--json", &format!("{base}..{agent}")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let want = format!(
        "{{\"commit\":\"{agent}\",\"trailers\":[{{\"key\":\"Co-Authored-By\",\"value\":\"Claude <noreply@anthropic.com>\"}}],\"agent\":true,\"rules\":[\"known-agents:claude-co-author\"],\"matches\":[{{\"rule\":\"known-agents:claude-co-author\",\"evidence\":\"trailer \\\"Co-Authored-By: Claude <noreply@anthropic.com>\\\"\",\"location\":\"trailer-block\"}}]}}\n"
    );
    assert_eq!(text, want);
    let out = env.agentgate(
        &server,
        &[
            "inspect",
            "--repo",
            server.to_str().unwrap(),
            "--json",
            "main",
        ],
    );
    assert!(
        !out.status.success(),
        "main does not exist on the server yet"
    );
    let out = env.agentgate(&work, &["inspect", "HEAD"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("AGENT") && text.contains("human"), "{text}");
}

// The demo runs the gate, which the hook's build (`--no-default-features`) leaves out.
#[cfg(feature = "gate")]
#[test]
fn demo_runs() {
    let env = Env::new();
    let out = env.agentgate(env.path(), &["demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("every step behaved as expected"));
}
