//! Rotating the gate's key as README.md ("Rotating the gate's key") describes it: an overlap in
//! which the old and the new key are both trusted, then the old key's retirement. Pushes keep
//! working throughout; after retirement the old key's attestations no longer count for anything
//! new, while what is already on a protected ref is not judged again.

use crate::common::*;
use std::path::{Path, PathBuf};

struct Rotation {
    env: Env,
    server: PathBuf,
    work: PathBuf,
    artifact: PathBuf,
}

fn signer(name: &str, key: &Path) -> String {
    format!(
        "\n[[signer]]\nname = \"{name}\"\npublic_key = \"{}\"\n",
        key.with_extension("pub").display()
    )
}

impl Rotation {
    fn keygen(&self, name: &str) -> PathBuf {
        let prefix = self.env.path().join(name);
        let out = self.env.agentgate(
            self.env.path(),
            &["keygen", "--out", prefix.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        prefix.with_extension("key")
    }

    /// Replace the server's policy (the file the installed shim pins) and check it as an admin
    /// would before relying on it.
    fn set_policy(&self, signers: &str) {
        let path = self.server.join("agentgate.toml");
        std::fs::write(&path, format!("{POLICY}{signers}")).unwrap();
        let out = self.env.agentgate(
            self.env.path(),
            &["policy", "check", path.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// An agent commit on the clone's main, gated (signed into the note) with `key`.
    fn gated_agent_commit(&self, subject: &str, key: &Path) -> String {
        let c = self.env.agent_commit(&self.work, "a.txt", subject);
        self.sign(&c, key);
        c
    }

    fn sign(&self, commit: &str, key: &Path) {
        let out = self.env.agentgate(
            self.env.path(),
            &[
                "sign",
                "--key",
                key.to_str().unwrap(),
                "--repo",
                self.work.to_str().unwrap(),
                "--commit",
                commit,
                "--artifact",
                self.artifact.to_str().unwrap(),
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

    /// Push the notes, then `refspec`; (accepted, stderr).
    fn push(&self, refspec: &str) -> (bool, String) {
        let (ok, err) = self
            .env
            .push(&self.work, &["origin", "refs/notes/agentgate"]);
        assert!(ok, "pushing the notes: {err}");
        self.env.push(&self.work, &["origin", refspec])
    }

    fn accepted(&self, refspec: &str, what: &str) {
        let (ok, err) = self.push(refspec);
        assert!(ok, "{what}: {err}");
    }
}

#[test]
fn key_rotation_overlap_then_retirement() {
    let env = Env::new();
    let artifact = env.path().join("app.bin");
    std::fs::write(&artifact, b"the built artifact\n").unwrap();
    let server = env.server("s.git");
    let work = env.clone(&server, "w");
    let r = Rotation {
        env,
        server,
        work,
        artifact,
    };
    let old = r.keygen("gate-2025");
    let new = r.keygen("gate-2026");
    r.set_policy(&signer("ci-gate-2025", &old));
    r.env.commit(&r.work, "a.txt", "Base");
    assert!(r.env.push(&r.work, &["origin", "main"]).0);

    // Before: the old key admits.
    r.gated_agent_commit("Agent work, gated before the rotation", &old);
    r.accepted("main", "old key, before the rotation");

    // Overlap: both keys trusted; CI may sign with either while its secret is switched.
    r.set_policy(&format!(
        "{}{}",
        signer("ci-gate-2025", &old),
        signer("ci-gate-2026", &new)
    ));
    let by_old_in_overlap = r.gated_agent_commit("Gated by the old key during the overlap", &old);
    r.accepted("main", "old key during the overlap");
    r.gated_agent_commit("Gated by the new key during the overlap", &new);
    r.accepted("main", "new key during the overlap");

    // Retirement: only the new key.
    r.set_policy(&signer("ci-gate-2026", &new));
    r.gated_agent_commit("Gated by the new key after retirement", &new);
    r.accepted("main", "new key after retirement");
    // What is already on main is not judged again: a human commit on top is accepted.
    let human = r.env.commit(&r.work, "a.txt", "A person's fix on top");
    r.accepted(
        "main",
        "human commit over history attested by the retired key",
    );

    // The old key's attestations no longer count for anything new.
    r.gated_agent_commit("Gated by the retired key", &old);
    let (ok, err) = r.push("main");
    assert!(!ok, "an attestation by the retired key was accepted");
    assert!(err.contains("refused [agent-commit-unattested]"), "{err}");
    assert!(err.contains("[untrusted-signer]"), "{err}");
    r.env.git_ok(&r.work, &["reset", "-q", "--hard", &human]);

    // A new protected ref on a commit only the retired key attested is refused too...
    r.env.git_ok(&r.work, &["tag", "v1.0", &by_old_in_overlap]);
    let (ok, err) = r.push("refs/tags/v1.0");
    assert!(
        !ok,
        "a release tag on a commit only the retired key attested"
    );
    assert!(err.contains("refused [agent-commit-unattested]"), "{err}");
    // ... until that commit is gated again with the new key.
    r.sign(&by_old_in_overlap, &new);
    r.accepted(
        "refs/tags/v1.0",
        "the release tag after re-gating with the new key",
    );

    let codes: Vec<String> = r
        .env
        .audit(&r.server)
        .iter()
        .map(|rec| rec["code"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        codes
            .iter()
            .filter(|c| *c == "agent-commit-unattested")
            .count(),
        2,
        "{codes:?}"
    );
}
