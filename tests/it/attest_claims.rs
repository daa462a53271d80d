//! What a signer's claim is worth (issue 11), through real pushes: `[[signer]]` builder
//! constraints, a test result counted only next to the provenance of its own run, a provenance
//! bound only to the source it declares, `threshold` distinct signers, and an
//! `attestations_dir` of ten thousand bundles where each commit pays only for its own.
//! Statements a well-behaved signer would never write are signed in-process with the
//! trusted key, so only the rule under test can refuse them.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Instant;

use crate::common::*;
use agentgate_formats::keys::SigningKey;
use agentgate_formats::sign::sign_statement;
use agentgate_formats::statement::{
    provenance_statement, test_result_statement, Artifact, ProvenanceParams, Source, Statement,
    TestOutcome, TestResult,
};
use chrono::{DateTime, Duration, SubsecRound as _, Utc};

const MAIN: &str = "refs/heads/main";
const SIGN_BUILD_TYPE: &str = agentgate::cli::sign::SIGN_BUILD_TYPE;
#[cfg(feature = "gate")]
const GATE_BUILD_TYPE: &str = agentgate::gate::GATE_BUILD_TYPE;
// The hook's build (`--no-default-features`, run by .ci/run) has no gate module; the default
// build checks this is the gate's own value.
#[cfg(not(feature = "gate"))]
const GATE_BUILD_TYPE: &str = "https://example.invalid/agentgate/buildtypes/gate/v1";

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

struct S {
    env: Env,
    server: PathBuf,
    work: PathBuf,
    base: String,
}

/// A server whose policy is the test policy plus `attest`, trusting one generated key per
/// `(name, extra lines)` signer; a clone whose human base commit is on the server's main.
fn setup(attest: &str, signers: &[(&str, &str)]) -> S {
    let env = Env::new();
    let mut policy = format!("{POLICY}{attest}\n");
    for (name, extra) in signers {
        let out = env.agentgate(
            env.path(),
            &["keygen", "--out", env.path().join(name).to_str().unwrap()],
        );
        assert!(out.status.success());
        policy.push_str(&format!(
            "[[signer]]\nname = \"{name}\"\npublic_key = \"{}\"\n{extra}\n",
            env.path().join(format!("{name}.pub")).display()
        ));
    }
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Base");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    std::fs::write(env.path().join("app.bin"), b"the built artifact\n").unwrap();
    S {
        env,
        server,
        work,
        base,
    }
}

impl S {
    /// `agentgate sign` of `commit` with key `key`: the two bundle lines (provenance, test).
    fn sign(&self, commit: &str, key: &str, extra: &[&str]) -> (String, String) {
        self.env.sign_bundles(&self.work, commit, key, extra)
    }

    fn key(&self, name: &str) -> SigningKey {
        let pem = std::fs::read_to_string(self.env.path().join(format!("{name}.key"))).unwrap();
        SigningKey::from_pem(&pem, None).unwrap()
    }

    fn tree(&self, commit: &str) -> String {
        self.env
            .git_ok(&self.work, &["rev-parse", &format!("{commit}^{{tree}}")])
    }

    /// Replace the note on `commit` in the clone with these bundle lines.
    fn set_note(&self, commit: &str, lines: &[&str]) {
        let f = self.env.path().join("note.txt");
        std::fs::write(&f, format!("{}\n", lines.join("\n"))).unwrap();
        self.env.git_ok(
            &self.work,
            &[
                "notes",
                "--ref",
                "refs/notes/agentgate",
                "add",
                "-f",
                "-F",
                f.to_str().unwrap(),
                commit,
            ],
        );
    }

    /// Push the notes and main; on refusal, main must not have moved.
    fn push(&self) -> (bool, String) {
        let before = self.env.rev(&self.server, MAIN);
        let (ok, err) = self
            .env
            .push(&self.work, &["origin", "+refs/notes/agentgate", "main"]);
        if !ok {
            assert_eq!(self.env.rev(&self.server, MAIN), before, "{err}");
        }
        (ok, err)
    }

    fn refused(&self, codes: &[&str]) -> String {
        let (ok, err) = self.push();
        assert!(
            !ok && refused_with(&err, "agent-commit-unattested"),
            "{err}"
        );
        for code in codes {
            assert!(
                err.contains(&format!("[{code}]")),
                "expected [{code}]: {err}"
            );
        }
        err
    }

    fn accepted(&self) {
        let (ok, err) = self.push();
        assert!(ok, "{err}");
        let log = self.env.audit(&self.server);
        let last = log.iter().rev().find(|d| d["ref"] == MAIN).unwrap();
        assert_eq!(last["code"], "attested", "{last}");
    }
}

fn artifact() -> Artifact {
    Artifact {
        name: "app.bin".into(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"the built artifact\n",
        )),
    }
}

fn params(builder_id: &str, finished: DateTime<Utc>) -> ProvenanceParams {
    ProvenanceParams {
        builder_id: builder_id.into(),
        build_type: SIGN_BUILD_TYPE.into(),
        external_parameters: serde_json::json!({}),
        internal_parameters: None,
        builder_version: Default::default(),
        builder_dependencies: vec![],
        invocation_id: Some(format!("run-{}", finished.timestamp())),
        started_on: finished - Duration::seconds(10),
        finished_on: finished,
        byproducts: vec![],
    }
}

fn passed() -> TestResult {
    TestResult {
        result: TestOutcome::Passed,
        configuration: vec![],
        url: None,
        passed_tests: vec!["t".into()],
        warned_tests: vec![],
        failed_tests: vec![],
    }
}

/// A provenance and its run's test result for `source`, as `sign` would write them.
fn pair(source: &Source, finished: DateTime<Utc>) -> (Statement, Statement) {
    let prov = provenance_statement(source, &[artifact()], params("urn:test:builder", finished));
    let tests = test_result_statement(source, &[artifact()], &passed(), &prov).unwrap();
    (prov, tests)
}

#[test]
fn builder_id_and_build_type_constrain_a_signer() {
    let gate = "https://ci.example/gate";
    let s = setup(
        "",
        &[(
            "gate",
            &format!("builder_id = \"{gate}\"\nbuild_type = \"{SIGN_BUILD_TYPE}\""),
        )],
    );
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");

    // The same key, used by a job that is not the gate (sign's default builder id).
    let (prov, test) = s.sign(&agent, "gate", &[]);
    s.set_note(&agent, &[&prov, &test]);
    let err = s.refused(&["builder-id-mismatch", "test-result-unbound"]);
    assert!(!err.contains("] ok"), "{err}");

    // As the gate's builder: admitted.
    let (prov, test) = s.sign(&agent, "gate", &["--builder-id", gate]);
    s.set_note(&agent, &[&prov, &test]);
    s.accepted();

    // The right builder id with another build type.
    let s = setup(
        "",
        &[(
            "gate",
            &format!("builder_id = \"{gate}\"\nbuild_type = \"{GATE_BUILD_TYPE}\""),
        )],
    );
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "gate", &["--builder-id", gate]);
    s.set_note(&agent, &[&prov, &test]);
    s.refused(&["build-type-mismatch", "test-result-unbound"]);

    // An unconstrained second signer is not held to the first one's constraints.
    let s = setup(
        "",
        &[("gate", &format!("builder_id = \"{gate}\"")), ("other", "")],
    );
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "other", &[]);
    s.set_note(&agent, &[&prov, &test]);
    s.accepted();
}

#[test]
fn constraints_are_strict_policy() {
    let env = Env::new();
    let out = env.agentgate(
        env.path(),
        &["keygen", "--out", env.path().join("k").to_str().unwrap()],
    );
    assert!(out.status.success());
    let repo = env.server("r.git");
    let signer = format!(
        "[[signer]]\nname = \"g\"\npublic_key = \"{}\"\n",
        env.path().join("k.pub").display()
    );
    let cases = [
        (format!("{signer}builder_ids = \"x\"\n"), 9, "unknown field"),
        (format!("{signer}builder_id = \"\"\n"), 9, "builder_id is empty"),
        (format!("{signer}build_type = 3\n"), 9, "invalid type"),
        (
            format!("[attest]\nrequire_predicates = [\"https://in-toto.io/attestation/test-result/v0.1\"]\n{signer}build_type = \"x\"\n"),
            7,
            "require_predicates does not require",
        ),
        (format!("[attest]\nthreshold = 2\n{signer}"), 7, "only 1 [[signer]]"),
        (format!("[attest]\nthreshold = 0\n{signer}"), 7, "threshold = 0"),
        (
            format!("{signer}[[signer]]\nname = \"h\"\npublic_key = \"{}\"\n", env.path().join("k.pub").display()),
            9,
            "same public key",
        ),
    ];
    for (i, (extra, line, needle)) in cases.iter().enumerate() {
        let p = env.path().join(format!("p{i}.toml"));
        std::fs::write(&p, format!("{POLICY}{extra}")).unwrap();
        let out = env.agentgate(
            env.path(),
            &[
                "check",
                "--config",
                p.to_str().unwrap(),
                "--repo",
                repo.to_str().unwrap(),
                &"1".repeat(40),
                &"2".repeat(40),
                MAIN,
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra}: {err}");
        assert!(
            err.contains(&format!("p{i}.toml:{line}:")) && err.contains(needle),
            "{extra}: expected line {line} and {needle:?}: {err}"
        );
    }
}

/// config/policy.toml, the documented example, parses with its signer constraints switched on.
#[test]
fn example_policy_parses_with_constraints() {
    let env = Env::new();
    let out = env.agentgate(
        env.path(),
        &["keygen", "--out", env.path().join("k").to_str().unwrap()],
    );
    assert!(out.status.success());
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml"))
        .unwrap()
        .replace(
            "/etc/agentgate/keys/ci-gate.pub",
            env.path().join("k.pub").to_str().unwrap(),
        )
        // The shipped policy trusts no gate yet: its key-based signer is commented out.
        .replacen("# [[signer]]", "[[signer]]", 1)
        .replacen("# name = \"ci-gate\"", "name = \"ci-gate\"", 1)
        .replacen("# public_key = ", "public_key = ", 1)
        .replacen("# builder_id = ", "builder_id = ", 1)
        .replacen("# build_type = ", "build_type = ", 1);
    let policy =
        agentgate_policy::config::Policy::parse(&text, &env.path().join("policy.toml")).unwrap();
    assert_eq!(policy.attest.threshold, 1);
    assert_eq!(
        policy.signers[0].build_type.as_deref(),
        Some(GATE_BUILD_TYPE)
    );
    assert!(policy.signers[0].builder_id.is_some());
}

#[test]
fn test_result_counts_only_with_the_provenance_of_its_run() {
    let s = setup("", &[("a", ""), ("b", "")]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov1, test1) = s.sign(&agent, "a", &[]);
    let (prov2, test2) = s.sign(&agent, "a", &[]);
    // Each run's pair admits; crossing runs does not, though signer and commit are the same.
    s.set_note(&agent, &[&prov1, &test2]);
    let err = s.refused(&["test-result-unbound", "predicate-missing"]);
    assert!(
        err.contains("a lacks https://in-toto.io/attestation/test-result/v0.1"),
        "{err}"
    );
    s.set_note(&agent, &[&prov2, &test1]);
    s.refused(&["test-result-unbound"]);

    // Another signer's test result, bound to its own provenance that is not here.
    let (_, b_test) = s.sign(&agent, "b", &[]);
    s.set_note(&agent, &[&prov1, &b_test]);
    s.refused(&["test-result-unbound"]);

    // B signs a test result naming A's provenance: the run must have one signer.
    let source = Source {
        uri: "file:///w".into(),
        commit: agent.clone(),
        tree: s.tree(&agent),
    };
    let now = Utc::now().trunc_subsecs(0);
    let (a_prov, _) = pair(&source, now);
    let forged = test_result_statement(&source, &[artifact()], &passed(), &a_prov).unwrap();
    let a_prov = sign_statement(&s.key("a"), &a_prov).unwrap();
    let forged = sign_statement(&s.key("b"), &forged).unwrap();
    s.set_note(&agent, &[&a_prov, &forged]);
    s.refused(&["test-result-unbound"]);

    // A test result that names no provenance at all.
    let (_, mut tests) = pair(&source, now);
    tests.predicate["configuration"] = serde_json::json!([]);
    let tests = sign_statement(&s.key("a"), &tests).unwrap();
    s.set_note(&agent, &[&a_prov, &tests]);
    s.refused(&["test-result-unbound"]);

    s.set_note(&agent, &[&prov1, &test1, &prov2]);
    s.accepted();
}

#[test]
fn old_test_result_does_not_ride_on_a_fresh_provenance() {
    let s = setup("[attest]\nmax_age = \"1h\"\n", &[("gate", "")]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let source = Source {
        uri: "file:///w".into(),
        commit: agent.clone(),
        tree: s.tree(&agent),
    };
    let key = s.key("gate");
    let (old_prov, old_test) = pair(&source, Utc::now().trunc_subsecs(0) - Duration::hours(2));
    let old_prov = sign_statement(&key, &old_prov).unwrap();
    let old_test = sign_statement(&key, &old_test).unwrap();
    // The old run alone: its provenance is too old, so its test result counts for nothing.
    s.set_note(&agent, &[&old_prov, &old_test]);
    s.refused(&["attestation-too-old", "test-result-unbound"]);
    // A fresh provenance does not make the old test result count.
    let (fresh_prov, fresh_test) = s.sign(&agent, "gate", &[]);
    s.set_note(&agent, &[&old_prov, &old_test, &fresh_prov]);
    let err = s.refused(&["test-result-unbound", "predicate-missing"]);
    assert!(
        err.contains("] https://slsa.dev/provenance/v1 signed by gate"),
        "{err}"
    );
    s.set_note(&agent, &[&old_test, &fresh_prov, &fresh_test]);
    s.accepted();
}

#[test]
fn provenance_binds_only_the_source_it_declares() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(
        &format!(
            "[attest]\nattestations_dir = \"{}\"\n",
            dir.path().display()
        ),
        &[("gate", "")],
    );
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    // The gate built the base commit and lists the agent commit as some other dependency.
    let built = Source {
        uri: "file:///w".into(),
        commit: s.base.clone(),
        tree: s.tree(&s.base),
    };
    let now = Utc::now().trunc_subsecs(0);
    let mut prov = provenance_statement(&built, &[artifact()], params("urn:test:builder", now));
    prov.predicate["buildDefinition"]["resolvedDependencies"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "uri": "file:///vendored",
            "digest": {"gitCommit": agent, "gitTree": s.tree(&agent)},
        }));
    let tested = Source {
        commit: agent.clone(),
        tree: s.tree(&agent),
        ..built.clone()
    };
    let tests = test_result_statement(&tested, &[artifact()], &passed(), &prov).unwrap();
    let key = s.key("gate");
    let prov = sign_statement(&key, &prov).unwrap();
    let tests = sign_statement(&key, &tests).unwrap();

    // In the note on the agent commit.
    s.set_note(&agent, &[&prov, &tests]);
    let err = s.refused(&["source-mismatch", "test-result-unbound"]);
    assert!(
        err.contains(&format!("the source it built is commit {}", s.base)),
        "{err}"
    );

    // In attestations_dir: indexed under the agent commit (it names it), refused the same way.
    s.env.git_ok(
        &s.work,
        &["notes", "--ref", "refs/notes/agentgate", "remove", &agent],
    );
    std::fs::write(dir.path().join("x.jsonl"), format!("{prov}\n{tests}\n")).unwrap();
    s.refused(&["source-mismatch", "test-result-unbound"]);

    // The declared source and the dependency for its uri disagree.
    let mut prov = provenance_statement(&tested, &[artifact()], params("urn:test:builder", now));
    prov.predicate["buildDefinition"]["externalParameters"]["source"]["commit"] =
        s.base.clone().into();
    let tests = test_result_statement(&tested, &[artifact()], &passed(), &prov).unwrap();
    std::fs::write(
        dir.path().join("x.jsonl"),
        format!(
            "{}\n{}\n",
            sign_statement(&key, &prov).unwrap(),
            sign_statement(&key, &tests).unwrap()
        ),
    )
    .unwrap();
    s.refused(&["source-mismatch"]);

    // What the gate declares for itself admits.
    let (prov, tests) = s.sign(&agent, "gate", &[]);
    std::fs::write(dir.path().join("x.jsonl"), format!("{prov}\n{tests}\n")).unwrap();
    s.accepted();
}

#[test]
fn threshold_needs_distinct_signers() {
    let s = setup(
        "[attest]\nthreshold = 2\n",
        &[("a", ""), ("b", ""), ("c", "")],
    );
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (a1, a1t) = s.sign(&agent, "a", &[]);
    let (a2, a2t) = s.sign(&agent, "a", &[]);
    let (b, bt) = s.sign(&agent, "b", &[]);
    let (c, _) = s.sign(&agent, "c", &[]);

    s.set_note(&agent, &[&a1, &a1t]);
    let err = s.refused(&["threshold-not-met"]);
    assert!(
        err.contains("1 of the 2 required signers attest")
            && err.contains("with every required predicate: a"),
        "{err}"
    );
    // Two runs of one signer are still one signer.
    s.set_note(&agent, &[&a1, &a1t, &a2, &a2t]);
    s.refused(&["threshold-not-met"]);
    // A second signer with only a provenance is named with what it lacks.
    s.set_note(&agent, &[&a1, &a1t, &c]);
    let err = s.refused(&["threshold-not-met"]);
    assert!(
        err.contains("c lacks https://in-toto.io/attestation/test-result/v0.1"),
        "{err}"
    );
    s.set_note(&agent, &[&a1, &a1t, &c, &b, &bt]);
    s.accepted();
    let log = s.env.audit(&s.server);
    let main = log.iter().rev().find(|d| d["ref"] == MAIN).unwrap();
    let signers: Vec<&str> = main["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "ok")
        .map(|a| a["detail"].as_str().unwrap())
        .collect();
    assert_eq!(signers.len(), 5, "{signers:?}");
}

/// Issue 11: past the 512th bundle of `attestations_dir` every bundle was silently out of reach.
/// Ten thousand agent commits, each attested by its own bundle among the directory's ten
/// thousand, pushed at once under `scope = "each"` (the provenance alone is required, to keep
/// the test's signing and the debug hook's verifying to 10,000 signatures).
#[test]
fn ten_thousand_commits_each_with_its_own_bundles_in_attestations_dir() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let s = setup(
        &format!(
            // A debug build takes seconds for 10,000 verifications; the deadline is not what
            // this test is about.
            "[hook]\ntimeout = \"10m\"\n[attest]\nscope = \"each\"\nrequire_predicates = [\"https://slsa.dev/provenance/v1\"]\nattestations_dir = \"{}\"\n",
            dir.path().display()
        ),
        &[("gate", "")],
    );

    // N agent commits on top of the base, through git fast-import.
    let t = Instant::now();
    let mut stream = Vec::new();
    for i in 0..N {
        let message = format!("Agent change {i}\n\n{CLAUDE_TRAILER}\n");
        let content = format!("{i}\n");
        let _ = write!(
            stream,
            "commit refs/heads/main\nauthor Agent <agent@example.com> {t} +0000\ncommitter Agent <agent@example.com> {t} +0000\ndata {}\n{message}",
            message.len(),
            t = 1_767_268_800 + i,
        );
        if i == 0 {
            let _ = writeln!(stream, "from {}", s.base);
        }
        let _ = write!(
            stream,
            "M 100644 inline a.txt\ndata {}\n{content}\n",
            content.len()
        );
    }
    let mut child = s
        .env
        .cmd("git")
        .current_dir(&s.work)
        .args(["fast-import", "--quiet", "--force"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    let log = s.env.git_ok(
        &s.work,
        &["log", "--format=%H %T", &format!("{}..main", s.base)],
    );
    let commits: Vec<(&str, &str)> = log.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(commits.len(), N);
    eprintln!("fast-import of {N} commits: {:?}", t.elapsed());

    // Each commit's provenance, one file per commit.
    let t = Instant::now();
    let key = s.key("gate");
    let now = Utc::now().trunc_subsecs(0);
    let sign_all = |first: usize, part: &[(&str, &str)]| {
        for (i, (commit, tree)) in part.iter().enumerate() {
            let source = Source {
                uri: "file:///w".into(),
                commit: commit.to_string(),
                tree: tree.to_string(),
            };
            let prov =
                provenance_statement(&source, &[artifact()], params("urn:test:builder", now));
            let text = sign_statement(&key, &prov).unwrap();
            let name = format!("{:05}.json", first + i);
            std::fs::write(dir.path().join(name), text).unwrap();
        }
    };
    std::thread::scope(|scope| {
        for (n, part) in commits.chunks(N / 2).enumerate() {
            let sign_all = &sign_all;
            scope.spawn(move || sign_all(n * (N / 2), part));
        }
    });
    eprintln!("signing {N} bundles: {:?}", t.elapsed());

    // The objects first (unprotected), so the timed push is the hook's work.
    let (ok, err) = s.env.push(&s.work, &["origin", "main:refs/heads/topic"]);
    assert!(ok, "{err}");
    let t = Instant::now();
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    let took = t.elapsed();
    assert!(ok, "{err}");
    eprintln!("push of {N} agent commits, each needing its own attestation: {took:?}");
    let log = s.env.audit(&s.server);
    let last = log.last().unwrap();
    assert_eq!(last["code"], "attested");
    let reports = last["attestations"].as_array().unwrap();
    assert_eq!(reports.len(), N, "each commit examined its own bundle only");
    assert!(reports.iter().all(|r| r["result"] == "ok"));
}
