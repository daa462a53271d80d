//! The hook with attestations: real pushes refused, then admitted by a gate's signed bundles
//! carried in git notes; every forged, replayed or failing attestation refused with its code.

use crate::common::*;
use std::path::{Path, PathBuf};

struct Setup {
    env: Env,
    server: PathBuf,
    work: PathBuf,
    key: PathBuf,
}

/// A server whose policy trusts the key `gate` (written next to the policy), with `extra`
/// appended to the policy, and a clone with one human commit on main.
fn setup(extra: &str) -> Setup {
    let env = Env::new();
    let out = env.agentgate(
        env.path(),
        &["keygen", "--out", env.path().join("gate").to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = env.path().join("gate.key");
    let policy = format!(
        "{POLICY}{extra}\n[[signer]]\nname = \"ci-gate\"\npublic_key = \"{}\"\n",
        env.path().join("gate.pub").display()
    );
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    assert!(env.push(&work, &["origin", "main"]).0);
    std::fs::write(env.path().join("app.bin"), b"the built artifact\n").unwrap();
    Setup {
        env,
        server,
        work,
        key,
    }
}

impl Setup {
    /// `agentgate sign` for `commit` with the gate key (or `key`), extra args appended.
    fn sign(&self, commit: &str, key: &Path, extra: &[&str]) {
        let mut args = vec![
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--repo",
            self.work.to_str().unwrap(),
            "--commit",
            commit,
            "--artifact",
        ];
        let artifact = self.env.path().join("app.bin");
        args.push(artifact.to_str().unwrap());
        if !extra.contains(&"--test-result") && !extra.contains(&"--junit") {
            args.extend_from_slice(&["--test-result", "passed"]);
        }
        args.extend_from_slice(extra);
        let out = self.env.agentgate(self.env.path(), &args);
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn push(&self, args: &[&str]) -> (bool, String) {
        self.env.push(&self.work, args)
    }
}

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

#[test]
fn refused_then_accepted_after_notes_are_pushed_first() {
    let s = setup("");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let (ok, err) = s.push(&["origin", "main"]);
    assert!(
        !ok && refused_with(&err, "agent-commit-unattested"),
        "{err}"
    );
    assert!(err.contains("no attestation for"), "{err}");

    s.sign(&agent, &s.key, &["--note"]);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate"]);
    assert!(ok, "notes push: {err}");
    let (ok, err) = s.push(&["origin", "main"]);
    assert!(ok, "attested push: {err}");
    assert_eq!(
        s.env.rev(&s.server, "refs/heads/main").as_deref(),
        Some(agent.as_str())
    );

    let log = s.env.audit(&s.server);
    let last = log.last().unwrap();
    assert_eq!(last["code"], "attested");
    let admitted: Vec<&serde_json::Value> = last["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "ok")
        .collect();
    assert_eq!(admitted.len(), 2, "provenance and test result: {last}");
    assert!(admitted
        .iter()
        .all(|a| a["detail"].as_str().unwrap().ends_with("signed by ci-gate")));
    assert!(last["notes"]["commit"].as_str().is_some());

    // The decision re-derives.
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "audit",
            "verify",
            s.server.join("agentgate/audit.jsonl").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn notes_and_branch_in_the_same_push() {
    let s = setup("");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    s.sign(&agent, &s.key, &["--note"]);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(ok, "{err}");
    assert_eq!(
        s.env.rev(&s.server, "refs/heads/main").as_deref(),
        Some(agent.as_str())
    );
}

#[test]
fn replayed_attestation_from_another_commit_is_refused() {
    let s = setup("");
    let first = s.env.agent_commit(&s.work, "a.txt", "Agent one");
    s.sign(&first, &s.key, &["--note"]);
    let second = s.env.agent_commit(&s.work, "a.txt", "Agent two");
    // Copy the valid note of `first` onto `second`.
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "copy",
            &first,
            &second,
        ],
    );
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains("[commit-mismatch]"), "{err}");
}

#[test]
fn failed_tests_and_untrusted_keys_are_refused() {
    let s = setup("");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    s.sign(&agent, &s.key, &["--note", "--test-result", "failed"]);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(!ok);
    assert!(err.contains("[tests-failed]"), "{err}");
    assert!(err.contains("predicate-missing"), "{err}");

    let out = s.env.agentgate(
        s.env.path(),
        &[
            "keygen",
            "--out",
            s.env.path().join("rogue").to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    s.sign(&agent, &s.env.path().join("rogue.key"), &["--note"]);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(!ok);
    assert!(err.contains("[untrusted-signer]"), "{err}");
}

#[test]
fn garbage_notes_are_refused_with_their_own_codes() {
    let s = setup("");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "add",
            "-m",
            "not json\n{\"mediaType\":\"x\"}",
            &agent,
        ],
    );
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(!ok);
    assert!(
        err.contains("[bundle-malformed]") || err.contains("[bundle-media-type-unsupported]"),
        "{err}"
    );
}

#[test]
fn tree_binding() {
    let dir_extra = |bind: &str, dir: &Path| {
        format!(
            "[attest]\nbind = \"{bind}\"\nattestations_dir = \"{}\"\n",
            dir.display()
        )
    };
    for bind in ["tree", "commit"] {
        let env_dir = tempfile::tempdir().unwrap();
        let s = setup(&dir_extra(bind, env_dir.path()));
        let gated = s.env.agent_commit(&s.work, "a.txt", "Agent");
        s.sign(&gated, &s.key, &["--out", env_dir.path().to_str().unwrap()]);
        // Same tree, new commit (the message changed): the tree attestation still holds.
        s.env.git_ok(
            &s.work,
            &[
                "commit",
                "-q",
                "--amend",
                "-m",
                &format!("Agent, reworded\n\n{CLAUDE_TRAILER}\n"),
            ],
        );
        let (ok, err) = s.push(&["origin", "main"]);
        match bind {
            "tree" => assert!(ok, "identical tree under bind = tree: {err}"),
            _ => assert!(
                !ok && refused_with(&err, "agent-commit-unattested"),
                "{err}"
            ),
        }
        if bind == "tree" {
            // A different tree is not covered.
            s.env.agent_commit(&s.work, "a.txt", "Agent changes a file");
            let (ok, err) = s.push(&["origin", "main"]);
            assert!(!ok, "{err}");
        }
    }
}

#[test]
fn expired_attestation_is_refused() {
    let s = setup("[attest]\nmax_age = \"1s\"\n");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    s.sign(&agent, &s.key, &["--note"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(!ok);
    assert!(err.contains("[attestation-too-old]"), "{err}");
}

#[test]
fn scope_each_needs_every_agent_commit_attested() {
    let s = setup("[attest]\nscope = \"each\"\n");
    let first = s.env.agent_commit(&s.work, "a.txt", "Agent one");
    let tip = s.env.agent_commit(&s.work, "a.txt", "Agent two");
    s.sign(&tip, &s.key, &["--note"]);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("no attestation for {}", &first[..7])),
        "{err}"
    );
    s.sign(&first, &s.key, &["--note"]);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(ok, "{err}");
}

/// `sign --note` (and so `gate --note`, which publishes the same way) in a SHA-256 repository,
/// which libgit2 cannot open: the repository is read and the note written through git itself,
/// appending to what is there, and the attestation admits the push.
#[test]
fn sign_note_in_a_sha256_repository_admits_the_push() {
    use crate::bypass::fixture::{assert_accepted, assert_refused, Fmt, Fx, Options};
    let fx = Fx::new(Options {
        fmt: Fmt::Sha256,
        ..Options::default()
    });
    let c = fx.agent_commit("app.c", "v2\n", "agent change");
    assert_eq!(c.len(), 64, "a SHA-256 commit id");
    assert_refused(&fx.push(&["origin", "main"]), "agent-commit-unattested");
    fx.sign(&c);
    let note = |fx: &Fx| fx.git(&["notes", "--ref", "refs/notes/agentgate", "show", &c]);
    assert_eq!(note(&fx).lines().count(), 2, "{}", note(&fx));
    fx.sign(&c);
    let lines: Vec<String> = note(&fx).lines().map(String::from).collect();
    assert_eq!(lines.len(), 4, "the second signing appends: {lines:?}");
    assert!(lines.iter().all(|l| l.starts_with('{')), "{lines:?}");
    let p = fx.push(&["origin", "refs/notes/agentgate", "main"]);
    assert_accepted(&p);
    assert_eq!(fx.last_audit("refs/heads/main")["code"], "attested");
}
