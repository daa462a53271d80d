//! The promise (SPEC.md) through real pushes: after every accepted push, every agent commit
//! reachable from a protected tip lies under an attested commit of that tip's history (scope
//! "tip") or is attested itself (scope "each"); the notes that carry the attestations only grow
//! when protected; the baseline recorded at installation is exempt. The randomized proof is
//! tests/it/promise_model.rs; these are the cases worth naming.

use crate::common::*;
use std::path::{Path, PathBuf};

struct S {
    env: Env,
    server: PathBuf,
    work: PathBuf,
    key: PathBuf,
    base: String,
}

const PROTECT: &str = r#"refs = ["refs/heads/main", "refs/heads/release/*", "refs/tags/v*"]"#;

/// A server trusting a fresh gate key, whose policy is `[protect]` + `protect_extra` +
/// `rest`, with one human commit on main.
fn setup(protect_extra: &str, rest: &str, install: &[&str]) -> S {
    let env = Env::new();
    let prefix = env.path().join("gate");
    let out = env.agentgate(env.path(), &["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let policy = format!(
        "version = 1\n[protect]\n{PROTECT}\n{protect_extra}\n{rest}\n[[signer]]\nname = \"gate\"\npublic_key = \"{}\"\n",
        env.path().join("gate.pub").display()
    );
    let server = env.server_with("s.git", &policy, &[], install);
    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Base");
    std::fs::write(env.path().join("app.bin"), b"built\n").unwrap();
    let s = S {
        env,
        server,
        work,
        key: env_path(&prefix, "key"),
        base,
    };
    // The base is attested too, so that require = "all-commits" admits it.
    s.sign(&s.base);
    let (ok, err) = s.push(&["origin", "refs/notes/agentgate", "main"]);
    assert!(ok, "{err}");
    s
}

fn env_path(prefix: &Path, ext: &str) -> PathBuf {
    prefix.with_extension(ext)
}

impl S {
    /// The gate's note on `commit` (tests passed), appended to refs/notes/agentgate locally.
    fn sign(&self, commit: &str) {
        let artifact = self.env.path().join("app.bin");
        let out = self.env.agentgate(
            &self.work,
            &[
                "sign",
                "--key",
                self.key.to_str().unwrap(),
                "--commit",
                commit,
                "--artifact",
                artifact.to_str().unwrap(),
                "--test-result",
                "passed",
                "--note",
            ],
        );
        assert!(
            out.status.success(),
            "sign: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn push(&self, args: &[&str]) -> (bool, String) {
        self.env.push(&self.work, args)
    }

    fn refused(&self, args: &[&str], code: &str) -> String {
        let (ok, err) = self.push(args);
        assert!(!ok, "accepted, expected [{code}]: {err}");
        assert!(
            err.contains(&format!("refused [{code}]")),
            "expected [{code}]: {err}"
        );
        err
    }

    fn accepted(&self, args: &[&str]) -> String {
        let (ok, err) = self.push(args);
        assert!(ok, "refused: {err}");
        err
    }

    fn server_rev(&self, name: &str) -> Option<String> {
        self.env.rev(&self.server, name)
    }

    /// The last audit record about `refname`.
    fn last_audit(&self, refname: &str) -> serde_json::Value {
        self.env
            .audit(&self.server)
            .into_iter()
            .rev()
            .find(|r| r["ref"] == refname)
            .expect("an audit record")
    }
}

/// repro-4: main's attested tip M has an agent commit A under it. A tag or release branch
/// created on A names code no gate built or tested: refused, with require = "agent-commits" and
/// "all-commits" alike. On M itself (a known-covered tip) it is accepted.
#[test]
fn new_protected_ref_on_an_agent_commit_under_main_is_refused() {
    for require in ["agent-commits", "all-commits"] {
        let s = setup("", &format!("[detect]\nrequire = \"{require}\""), &[]);
        let a = s.env.agent_commit(&s.work, "app.c", "agent: rewrite app.c");
        let m = s.env.commit(&s.work, "app.c", "human: fix app.c");
        s.sign(&m);
        s.accepted(&["origin", "refs/notes/agentgate", "main"]);
        assert_eq!(s.server_rev("refs/heads/main").as_deref(), Some(m.as_str()));

        s.refused(
            &["origin", &format!("{a}:refs/tags/v1")],
            "agent-commit-unattested",
        );
        assert_eq!(s.server_rev("refs/tags/v1"), None, "{require}");
        s.refused(
            &["origin", &format!("{a}:refs/heads/release/1.x")],
            "agent-commit-unattested",
        );
        assert_eq!(s.server_rev("refs/heads/release/1.x"), None, "{require}");
        let rec = s.last_audit("refs/heads/release/1.x");
        assert!(
            rec["known_covered"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k.as_str() == Some(m.as_str())),
            "main's tip is recorded as known to keep the promise: {rec}"
        );

        // Control: the attested tip itself may be tagged.
        s.accepted(&["origin", &format!("{m}:refs/tags/v1")]);
        assert_eq!(
            s.last_audit("refs/tags/v1")["code"],
            "no-agent-commits",
            "{require}"
        );
        // And attesting A makes the tag on A fine too.
        s.sign(&a);
        s.accepted(&[
            "origin",
            "refs/notes/agentgate",
            &format!("{a}:refs/tags/v1.0.1"),
        ]);
    }
}

/// Scope "tip" is the promise's own definition: an agent commit is fine under any attested
/// commit of the new tip's history, not only under an attested tip.
#[test]
fn an_attested_commit_below_the_tip_covers_the_agent_commits_below_it() {
    let s = setup("", "", &[]);
    let _a = s.env.agent_commit(&s.work, "app.c", "agent change");
    let c = s.env.commit(&s.work, "app.c", "human: reviewed and gated");
    let h = s.env.commit(&s.work, "b.txt", "human: later work");
    // Without an attestation anywhere: refused, naming the uncovered agent commit.
    let err = s.refused(&["origin", "main"], "agent-commit-unattested");
    assert!(
        err.contains("no attested commit lies between these and the new tip"),
        "{err}"
    );
    assert_eq!(
        s.server_rev("refs/heads/main").as_deref(),
        Some(s.base.as_str())
    );
    // C attested: A lies between C and the tip H.
    s.sign(&c);
    s.accepted(&["origin", "refs/notes/agentgate", "main"]);
    assert_eq!(s.server_rev("refs/heads/main").as_deref(), Some(h.as_str()));
    assert_eq!(s.last_audit("refs/heads/main")["code"], "attested");
    // An agent commit above C is not covered by C.
    s.env.agent_commit(&s.work, "app.c", "agent change 2");
    s.env.commit(&s.work, "b.txt", "human on top");
    s.refused(&["origin", "main"], "agent-commit-unattested");
}

/// A merge is covered only where an attested commit lies between: attesting one side of a merge
/// does not cover an agent commit on the other side.
#[test]
fn attesting_one_side_of_a_merge_does_not_cover_the_other() {
    let s = setup("", "", &[]);
    s.env.git_ok(&s.work, &["checkout", "-q", "-b", "side"]);
    let _a = s
        .env
        .agent_commit(&s.work, "side.c", "agent on the side branch");
    s.env.git_ok(&s.work, &["checkout", "-q", "main"]);
    let h = s.env.commit(&s.work, "a.txt", "human on main");
    s.sign(&h);
    s.env.git_ok(
        &s.work,
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
    );
    s.refused(
        &["origin", "refs/notes/agentgate", "main"],
        "agent-commit-unattested",
    );
    let merge = s.env.git_ok(&s.work, &["rev-parse", "HEAD"]);
    s.sign(&merge);
    s.accepted(&["origin", "refs/notes/agentgate", "main"]);
}

/// Scope "each": every agent commit carries its own attestation; a human tip need not.
#[test]
fn scope_each_needs_the_agent_commits_not_a_human_tip() {
    let s = setup("", "[attest]\nscope = \"each\"", &[]);
    let a1 = s.env.agent_commit(&s.work, "app.c", "agent one");
    let a2 = s.env.agent_commit(&s.work, "app.c", "agent two");
    s.env.commit(&s.work, "b.txt", "human tip");
    s.sign(&a1);
    let err = s.refused(
        &["origin", "refs/notes/agentgate", "main"],
        "agent-commit-unattested",
    );
    assert!(
        err.contains(&a2[..7]),
        "names the unattested agent commit: {err}"
    );
    s.sign(&a2);
    s.accepted(&["origin", "refs/notes/agentgate", "main"]);
}

/// The notes ref under protection only grows: notes are pushed and merged freely, never
/// removed, rewritten or deleted; and with require = "all-commits" its own commits are not
/// judged as code (they carry attestations).
#[test]
fn a_protected_notes_ref_only_grows() {
    let s = setup("", "[detect]\nrequire = \"all-commits\"", &[]);
    // Protect the notes ref too (rewrite the policy's refs line).
    let policy = s.server.join("agentgate.toml");
    let text = std::fs::read_to_string(&policy).unwrap().replace(
        r#""refs/tags/v*"]"#,
        r#""refs/tags/v*", "refs/notes/agentgate"]"#,
    );
    std::fs::write(&policy, text).unwrap();

    let c1 = s.env.commit(&s.work, "a.txt", "change one");
    s.sign(&c1);
    s.accepted(&["origin", "refs/notes/agentgate", "main"]);
    let rec = s.env.audit(&s.server);
    assert!(
        rec.iter()
            .any(|r| r["ref"] == "refs/notes/agentgate" && r["code"] == "notes-appended"),
        "{rec:?}"
    );
    let notes1 = s.server_rev("refs/notes/agentgate").unwrap();

    // Appending: a second gate run on the same commit adds lines.
    s.sign(&c1);
    s.accepted(&["origin", "refs/notes/agentgate"]);
    let notes2 = s.server_rev("refs/notes/agentgate").unwrap();

    // Removing a note is refused (a fast-forward that drops attestations).
    s.env.git_ok(
        &s.work,
        &["notes", "--ref", "refs/notes/agentgate", "remove", &c1],
    );
    s.refused(&["origin", "refs/notes/agentgate"], "notes-rewrite");
    // So is rewriting a note's lines.
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "add",
            "-f",
            "-m",
            "nothing",
            &c1,
        ],
    );
    s.refused(&["origin", "refs/notes/agentgate"], "notes-rewrite");
    // A force-push to an unrelated history, and a deletion.
    s.env
        .git_ok(&s.work, &["update-ref", "refs/notes/agentgate", &notes1]);
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "append",
            "-m",
            "x",
            &s.base,
        ],
    );
    s.refused(&["origin", "+refs/notes/agentgate"], "non-fast-forward");
    s.refused(&["origin", ":refs/notes/agentgate"], "protected-ref-delete");
    assert_eq!(
        s.server_rev("refs/notes/agentgate").as_deref(),
        Some(notes2.as_str())
    );

    // Merging concurrent notes (cat_sort_uniq, as the CI templates do) keeps every line.
    s.env
        .git_ok(&s.work, &["fetch", "-q", "origin", "refs/notes/agentgate"]);
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "merge",
            "-q",
            "-s",
            "cat_sort_uniq",
            "FETCH_HEAD",
        ],
    );
    s.accepted(&["origin", "refs/notes/agentgate"]);
}

/// The baseline: commits on protected refs when agentgate was installed are exempt; everything
/// newer keeps the promise; doctor lists the baseline.
#[test]
fn the_baseline_recorded_at_installation_is_exempt() {
    let env = Env::new();
    let server = env.path().join("s.git");
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
    std::fs::write(server.join("agentgate.toml"), POLICY).unwrap();
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    let old_agent = env.agent_commit(&work, "a.txt", "agent work from before agentgate");
    let tip = env.commit(&work, "a.txt", "human tip before agentgate");
    assert!(env.push(&work, &["origin", "main"]).0);
    let out = env.agentgate(env.path(), &["install", "--repo", server.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let baseline = std::fs::read_to_string(server.join("agentgate/baseline")).unwrap();
    assert!(
        baseline.contains(&format!("{tip} refs/heads/main")),
        "{baseline}"
    );

    // A release tag on history from before the installation: exempt.
    let tag = format!("{old_agent}:refs/tags/v0.9");
    let (ok, err) = env.push(&work, &["origin", &tag]);
    assert!(ok, "{err}");
    // New agent work is judged.
    env.agent_commit(&work, "a.txt", "agent work after");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(
        !ok && err.contains("refused [agent-commit-unattested]"),
        "{err}"
    );
    // Re-installing keeps the recorded baseline.
    let out = env.agentgate(env.path(), &["install", "--repo", server.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept the existing baseline"));
    // doctor lists it.
    let out = env.agentgate(
        env.path(),
        &["doctor", "--repo", server.to_str().unwrap(), "--json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "baseline")
        .unwrap()
        .clone();
    assert!(
        check["message"].as_str().unwrap().contains(&tip[..7]),
        "{check}"
    );
}

/// In `update` mode each ref is decided alone, against the refs as they are: the promise holds
/// the same way (repro-4 through the update hook).
#[test]
fn update_mode_keeps_the_promise_ref_by_ref() {
    let s = setup("", "", &["--hook", "update"]);
    let a = s.env.agent_commit(&s.work, "app.c", "agent");
    let m = s.env.commit(&s.work, "app.c", "human fix");
    s.sign(&m);
    // The notes first: the update hook of main cannot see a notes ref the same push writes later.
    s.accepted(&["origin", "refs/notes/agentgate"]);
    s.accepted(&["origin", "main"]);
    s.refused(
        &["origin", &format!("{a}:refs/tags/v1")],
        "agent-commit-unattested",
    );
    assert_eq!(s.server_rev("refs/tags/v1"), None);
}
