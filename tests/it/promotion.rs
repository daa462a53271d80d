//! Promotion records: real pushes into a server whose policy names a server key. Every
//! accepted move of a protected ref gets a signed SLSA Source VSA as a note on its tip, written
//! by post-receive from pre-receive's audit record; refused and unprotected pushes get none;
//! clients can never push the promotions ref; `verify --promotion` checks exactly one commit.

use std::path::PathBuf;

use base64::Engine as _;

use crate::common::*;

pub const PROMOTIONS: &str = "refs/notes/agentgate-promotions";

/// A server trusting the gate key `gate`, signing with the server key `server`, with a clone
/// whose human commit "Base" is on main.
pub struct Setup {
    pub env: Env,
    pub server: PathBuf,
    pub work: PathBuf,
}

pub fn keygen(env: &Env, name: &str) -> PathBuf {
    let prefix = env.path().join(name);
    let out = env.agentgate(env.path(), &["keygen", "--out", prefix.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    prefix
}

pub fn setup(extra: &str) -> Setup {
    let env = Env::new();
    keygen(&env, "gate");
    keygen(&env, "server");
    let policy = format!(
        "{POLICY}{extra}\n[server]\nkey = \"{}\"\n\n[[signer]]\nname = \"ci-gate\"\npublic_key = \"{}\"\n",
        env.path().join("server.key").display(),
        env.path().join("gate.pub").display()
    );
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    std::fs::write(env.path().join("app.bin"), b"the built artifact\n").unwrap();
    Setup { env, server, work }
}

impl Setup {
    /// Sign `commit` with the gate key (`gate.key` or another) and push the notes.
    pub fn attest(&self, commit: &str, key: &str) {
        let key = self.env.path().join(key);
        let artifact = self.env.path().join("app.bin");
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
                artifact.to_str().unwrap(),
                "--test-result",
                "passed",
                "--note",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (ok, err) = self
            .env
            .push(&self.work, &["origin", "refs/notes/agentgate"]);
        assert!(ok, "{err}");
    }

    /// The promotion note on `commit` in the server, one bundle per line.
    pub fn note(&self, commit: &str) -> Option<Vec<String>> {
        let out = self.env.git(
            &self.server,
            &["notes", "--ref", PROMOTIONS, "show", commit],
        );
        out.status.success().then(|| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
    }

    /// `agentgate verify --promotion REV --key KEY --repo SERVER --json`.
    pub fn verify(&self, rev: &str, key: &str, extra: &[&str]) -> (i32, serde_json::Value) {
        let key = self.env.path().join(key);
        let mut args = vec![
            "verify",
            "--promotion",
            rev,
            "--key",
            key.to_str().unwrap(),
            "--repo",
            self.server.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = self.env.agentgate(self.env.path(), &args);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), v)
    }
}

/// The in-toto statement inside a bundle line.
pub fn statement(bundle: &str) -> serde_json::Value {
    let b: serde_json::Value = serde_json::from_str(bundle).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn levels(v: &serde_json::Value) -> Vec<String> {
    v["predicate"]["verifiedLevels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn accepted_protected_moves_get_a_signed_vsa_and_nothing_else_does() {
    let s = setup("");
    let base = s.env.rev(&s.work, "HEAD").unwrap();
    // The human base commit: promoted without any attestation.
    let note = s
        .note(&base)
        .expect("a promotion record for the base commit");
    assert_eq!(note.len(), 1);
    let st = statement(&note[0]);
    assert_eq!(
        st["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert!(!levels(&st).contains(&"ORG_SOURCE_REVISION_GATE_ATTESTED".to_string()));
    let (code, v) = s.verify("main", "server.pub", &[]);
    assert_eq!(code, 0, "{v}");

    // Refused: no record.
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    assert!(!ok && err.contains("[agent-commit-unattested]"), "{err}");
    assert!(s.note(&agent).is_none(), "a refused push wrote a record");

    // Attested and accepted: a record on exactly the new tip.
    s.attest(&agent, "gate.key");
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("promotion record for refs/heads/main"),
        "{err}"
    );
    let note = s
        .note(&agent)
        .expect("a promotion record for the agent commit");
    assert_eq!(note.len(), 1);
    let st = statement(&note[0]);
    let p = &st["predicate"];
    assert_eq!(st["subject"][0]["digest"]["gitCommit"], agent.as_str());
    assert_eq!(
        st["subject"][0]["annotations"]["sourceRefs"],
        serde_json::json!(["refs/heads/main"])
    );
    assert_eq!(
        p["resourceUri"],
        format!("git+file://{}@refs/heads/main", s.server.display())
    );
    assert_eq!(p["verificationResult"], "PASSED");
    assert_eq!(p["slsaVersion"], "1.2");
    assert!(p["verifier"]["id"]
        .as_str()
        .unwrap()
        .starts_with("urn:agentgate:server:"));
    let lv = levels(&st);
    for l in [
        "SLSA_SOURCE_LEVEL_1",
        "ORG_SOURCE_AGENT_COMMITS_GATED",
        "ORG_SOURCE_REVISION_GATE_ATTESTED",
        "ORG_SOURCE_NO_HISTORY_REWRITE",
    ] {
        assert!(lv.contains(&l.to_string()), "{l} in {lv:?}");
    }
    assert!(!lv
        .iter()
        .any(|l| l.starts_with("SLSA_SOURCE_LEVEL_") && l != "SLSA_SOURCE_LEVEL_1"));
    // What pre-receive logged for this move, and the bundles that admitted it.
    let log = s.env.audit(&s.server);
    let rec = log.last().unwrap();
    assert_eq!(rec["code"], "attested");
    assert_eq!(p["timeVerified"], rec["time"]);
    assert_eq!(
        format!(
            "sha256:{}",
            p["policy"]["digest"]["sha256"].as_str().unwrap()
        ),
        rec["policy"]["digest"].as_str().unwrap()
    );
    let gate_note = s.env.git_ok(
        &s.server,
        &["notes", "--ref", "refs/notes/agentgate", "show", &agent],
    );
    let mut expected: Vec<String> = gate_note
        .lines()
        .map(|l| sha256_hex(l.as_bytes()))
        .collect();
    expected.sort();
    let mut inputs: Vec<String> = p["inputAttestations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["digest"]["sha256"].as_str().unwrap().to_string())
        .collect();
    inputs.sort();
    assert_eq!(
        inputs, expected,
        "the input attestations are the gate's bundle lines"
    );

    let (code, v) = s.verify("main", "server.pub", &["--ref", "refs/heads/main"]);
    assert_eq!(code, 0, "{v}");
    // The wrong key, the wrong ref, the wrong commit.
    let (code, _) = s.verify("main", "gate.pub", &[]);
    assert_eq!(code, 1);
    let (code, _) = s.verify("main", "server.pub", &["--ref", "refs/heads/release/1"]);
    assert_eq!(code, 1);
    let (code, _) = s.verify("main~1", "server.pub", &["--ref", "refs/heads/main"]);
    assert_eq!(code, 0, "the base has its own record");
    // A record copied onto another commit does not verify there.
    let copy = s.env.commit(&s.work, "b.txt", "Human change");
    let (ok, err) = s.env.push(&s.work, &["origin", "HEAD:refs/heads/topic"]);
    assert!(ok, "{err}");
    assert!(s.note(&copy).is_none(), "an unprotected ref got a record");
    let blob = s
        .env
        .cmd("git")
        .current_dir(&s.server)
        .args(["hash-object", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{}\n", note[0]).as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let blob = String::from_utf8_lossy(&blob.stdout).trim().to_string();
    s.env.git_ok(
        &s.server,
        &["notes", "--ref", PROMOTIONS, "add", "-C", &blob, &copy],
    );
    let (code, v) = s.verify(&copy, "server.pub", &[]);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["records"][0]["error"]
            .as_str()
            .unwrap()
            .contains("commit-mismatch"),
        "{v}"
    );
}

#[test]
fn clients_cannot_push_or_delete_the_promotions_ref() {
    let s = setup("");
    s.env.git_ok(
        &s.work,
        &[
            "fetch",
            "-q",
            "origin",
            &format!("{PROMOTIONS}:{PROMOTIONS}"),
        ],
    );
    // Adding a forged record, replacing the ref, deleting it: all refused.
    let forged = s.env.commit(&s.work, "c.txt", "Forged");
    s.env.git_ok(
        &s.work,
        &["notes", "--ref", PROMOTIONS, "add", "-m", "{}", &forged],
    );
    for spec in [
        PROMOTIONS.to_string(),
        format!("+HEAD:{PROMOTIONS}"),
        format!(":{PROMOTIONS}"),
    ] {
        let (ok, err) = s.env.push(&s.work, &["origin", &spec]);
        assert!(
            !ok && err.contains("[promotions-ref-reserved]"),
            "{spec}: {err}"
        );
    }
    assert!(s.env.rev(&s.server, PROMOTIONS).is_some());
    // The refusals re-derive, and the checkpoints verify.
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "audit",
            "verify",
            "--key",
            s.env.path().join("server.pub").to_str().unwrap(),
            s.server.join("agentgate/audit.jsonl").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The post-receive hook's wall time on a 1-commit push (measured, not asserted): run with
/// `cargo test --release --test it promotion::measure -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run by hand as above"]
fn measure_post_receive_cost() {
    let s = setup("");
    let mut times = Vec::new();
    for i in 0..30 {
        let c = s.env.commit(&s.work, "m.txt", &format!("Change {i}"));
        let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
        assert!(ok, "{err}");
        let old = s.env.rev(&s.work, &format!("{c}~1")).unwrap();
        // Run post-receive again by hand on the same input: the same work as the real one.
        let t = std::time::Instant::now();
        let out = s
            .env
            .cmd(AGENTGATE)
            .current_dir(&s.server)
            .env("GIT_DIR", &s.server)
            .args([
                "post-receive",
                "--config",
                s.server.join("agentgate.toml").to_str().unwrap(),
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut ch| {
                use std::io::Write as _;
                ch.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{old} {c} refs/heads/main\n").as_bytes())?;
                ch.wait_with_output()
            })
            .unwrap();
        times.push(t.elapsed());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    times.sort();
    eprintln!(
        "post-receive on a 1-commit push: median {:?}, min {:?}, max {:?} (n={})",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}

#[test]
fn install_chains_a_foreign_post_receive_and_uninstall_restores_it() {
    let env = Env::new();
    keygen(&env, "server");
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
    let seen = env.path().join("seen.txt");
    let foreign = format!("#!/bin/sh\ncat > '{}'\nexit 3\n", seen.display());
    let hook = server.join("hooks/post-receive");
    std::fs::write(&hook, &foreign).unwrap();
    std::process::Command::new("chmod")
        .args(["+x", hook.to_str().unwrap()])
        .status()
        .unwrap();
    std::fs::write(
        server.join("agentgate.toml"),
        format!(
            "{POLICY}\n[server]\nkey = \"{}\"\n",
            env.path().join("server.key").display()
        ),
    )
    .unwrap();
    let out = env.agentgate(env.path(), &["install", "--repo", server.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&hook)
        .unwrap()
        .contains("agentgate-shim"));
    let work = env.clone(&server, "w");
    let c = env.commit(&work, "a.txt", "Base");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    // The foreign hook saw the same input, and its failure did not stop the record.
    assert!(std::fs::read_to_string(&seen)
        .unwrap()
        .contains(&format!("{c} refs/heads/main")));
    let out = env.git(&server, &["notes", "--ref", PROMOTIONS, "show", &c]);
    assert!(out.status.success(), "{err}");
    let out = env.agentgate(
        env.path(),
        &["uninstall", "--repo", server.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), foreign);
    assert!(!server.join("hooks/pre-receive").exists());
}

/// Fail closed: a server key that cannot be read or parsed refuses every push, protected or
/// not (nothing could be checkpointed or promoted), and no promotion record is written.
#[test]
fn an_unusable_server_key_refuses_every_push() {
    let s = setup("");
    let key = s.env.path().join("server.key");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    s.attest(&agent, "gate.key");
    for (broken, what) in [(Some("not a key\n"), "garbage"), (None, "missing")] {
        match broken {
            Some(text) => std::fs::write(&key, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(&key);
            }
        }
        for spec in ["HEAD:refs/heads/main", "HEAD:refs/heads/topic"] {
            let (ok, err) = s.env.push(&s.work, &["origin", spec]);
            assert!(
                !ok && err.contains("[policy-unreadable]"),
                "{what} key, {spec}: {err}"
            );
        }
        assert!(s.note(&agent).is_none(), "{what} key: a record was written");
    }
    let log = s.env.audit(&s.server);
    assert_eq!(
        log.iter()
            .filter(|r| r["code"] == "policy-unreadable")
            .count(),
        4,
        "every refusal is logged"
    );
}

/// Two repositories sharing one audit log (`[audit] log`) under different policies: each
/// promotion record is built from its own repository's record of the update, even when the
/// other repository logged the same update (same ref, old and new) later.
#[test]
fn a_shared_log_promotes_each_repository_from_its_own_record() {
    let shared = tempfile::tempdir().unwrap();
    let log = shared.path().join("audit.jsonl");
    let audit = format!("[audit]\nlog = \"{}\"\n", log.display());
    let s = setup(&audit);
    let b = s.env.server_with(
        "b.git",
        &format!(
            "{POLICY}# repository b: another policy text, another digest\n{audit}\n[server]\nkey = \"{}\"\n",
            s.env.path().join("server.key").display()
        ),
        &[],
        &[],
    );
    let b_url = b.to_str().unwrap();
    let base = s.env.rev(&s.work, "HEAD").unwrap();
    let (ok, err) = s.env.push(&s.work, &[b_url, "main"]);
    assert!(ok, "{err}");
    // The same update, to b first and then to a: a's record is the newest.
    let x = s.env.commit(&s.work, "x.txt", "Human change");
    for target in [b_url, "origin"] {
        let (ok, err) = s.env.push(&s.work, &[target, "main"]);
        assert!(ok, "{target}: {err}");
    }
    let records: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["new"] == x.as_str())
        .collect();
    assert_eq!(records.len(), 2);
    let digest_of = |repo: &PathBuf| {
        records
            .iter()
            .find(|r| r["repo"] == repo.display().to_string())
            .unwrap()["policy"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a_digest, b_digest) = (digest_of(&s.server), digest_of(&b));
    assert_ne!(a_digest, b_digest);
    // b's post-receive again, now that a's record of the same update is the newest.
    let out = s
        .env
        .cmd(AGENTGATE)
        .current_dir(&b)
        .env("GIT_DIR", &b)
        .arg("post-receive")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            use std::io::Write as _;
            ch.stdin
                .take()
                .unwrap()
                .write_all(format!("{base} {x} refs/heads/main\n").as_bytes())?;
            ch.wait_with_output()
        })
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = s
        .env
        .git_ok(&b, &["notes", "--ref", PROMOTIONS, "show", &x]);
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "the hook's record and the one written by hand"
    );
    for line in lines {
        let st = statement(line);
        assert_eq!(
            format!(
                "sha256:{}",
                st["predicate"]["policy"]["digest"]["sha256"]
                    .as_str()
                    .unwrap()
            ),
            b_digest,
            "b's promotion record names b's policy"
        );
    }
}

/// `doctor` checks what promotion records need: the server key loads, and the post-receive
/// shim is there to write them (without it nothing would say so on a push).
#[test]
fn doctor_checks_the_server_key_and_the_post_receive_hook() {
    let s = setup("");
    let doctor = || {
        let out = s.env.agentgate(
            s.env.path(),
            &["doctor", "--json", "--repo", s.server.to_str().unwrap()],
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        let status = |id: &str| -> Vec<String> {
            v["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["id"] == id)
                .map(|c| c["status"].as_str().unwrap().to_string())
                .collect()
        };
        (
            out.status.code(),
            status("server-key"),
            status("post-receive"),
        )
    };
    assert_eq!(
        doctor(),
        (Some(0), vec!["ok".to_string()], vec!["ok".to_string()])
    );
    let hook = s.server.join("hooks/post-receive");
    let shim = std::fs::read(&hook).unwrap();
    std::fs::remove_file(&hook).unwrap();
    assert_eq!(
        doctor(),
        (Some(1), vec!["ok".to_string()], vec!["fail".to_string()])
    );
    std::fs::write(&hook, shim).unwrap();
    std::process::Command::new("chmod")
        .args(["+x", hook.to_str().unwrap()])
        .status()
        .unwrap();
    std::fs::write(s.env.path().join("server.key"), "not a key\n").unwrap();
    assert_eq!(
        doctor(),
        (Some(1), vec!["fail".to_string()], vec!["ok".to_string()])
    );
}
