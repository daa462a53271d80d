//! Keyless (Sigstore) attestations end to end, against local stand-ins for Fulcio, Rekor and a
//! timestamp authority (@sigstore/mock, served by `tests/interop/keyless-mock/server.js`):
//! `agentgate sign --keyless` and `agentgate gate --keyless` put bundles in git notes, and the
//! hook on a real push admits them only for the policy's keyless `[[signer]]`: its issuer, its
//! identity (exact, or an anchored regex) and its trusted root. `agentgate verify` checks the
//! same bundles with `--trusted-root`.
//!
//! Runs when `AGENTGATE_INTEROP=1` (and then fails, not skips, if node or the mock is missing:
//! `scripts/install-keyless-mock.sh` installs it); otherwise each test says it skipped.
#![cfg(feature = "keyless-sign")]

use crate::common::mock::{interop_enabled, Mock};
use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A keyless `[[signer]]`: `identity` is `identity = ...` or `identity_regex = ...`, and
/// `root` the trusted root (none: the embedded public-good root).
fn keyless_signer(issuer: &str, identity: &str, root: Option<&Path>) -> String {
    let mut s = format!("\n[[signer]]\nname = \"ci-keyless\"\nissuer = \"{issuer}\"\n{identity}\n");
    if let Some(r) = root {
        s.push_str(&format!("trusted_root = \"{}\"\n", r.display()));
    }
    s
}

struct Setup {
    env: Env,
    mock: Mock,
    server: PathBuf,
    work: PathBuf,
}

impl Setup {
    /// A server whose policy has `signer`, a clone with one human commit on main, and the mock.
    fn new(signer: &str) -> Setup {
        let env = Env::new();
        let mock = Mock::start(env.path(), 300);
        let server = env.server_with("s.git", &format!("{POLICY}{signer}"), &[], &[]);
        let work = env.clone(&server, "w");
        env.commit(&work, "a.txt", "Base");
        assert!(env.push(&work, &["origin", "main"]).0);
        std::fs::write(env.path().join("app.bin"), b"the built artifact\n").unwrap();
        Setup {
            env,
            mock,
            server,
            work,
        }
    }

    fn set_policy(&self, signer: &str) {
        std::fs::write(
            self.server.join("agentgate.toml"),
            format!("{POLICY}{signer}"),
        )
        .unwrap();
    }

    /// agentgate with the mock's token and no ambient CI token or service settings.
    fn agentgate(&self, args: &[&str]) -> Output {
        let mut c = self.env.cmd(AGENTGATE);
        for var in [
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
            "SIGSTORE_ID_TOKEN",
            "GITHUB_ACTIONS",
            "GITLAB_CI",
            "AGENTGATE_FULCIO_URL",
            "AGENTGATE_REKOR_URL",
            "AGENTGATE_TSA_URL",
            "AGENTGATE_TRUSTED_ROOT",
        ] {
            c.env_remove(var);
        }
        c.env("AGENTGATE_IDENTITY_TOKEN", self.mock.token.trim());
        let out = c
            .current_dir(self.env.path())
            .args(args)
            .output()
            .expect("run agentgate");
        eprintln!(
            "$ agentgate {}\nexit {:?}\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(self.mock.token.trim())
                && !String::from_utf8_lossy(&out.stderr).contains(self.mock.token.trim()),
            "the token was printed"
        );
        out
    }

    /// The service flags pointing at the mock.
    fn services(&self) -> Vec<String> {
        let m = &self.mock.info;
        vec![
            "--fulcio-url".into(),
            m.url.clone(),
            "--rekor-url".into(),
            m.url.clone(),
            "--tsa-url".into(),
            format!("{}/api/v1/timestamp", m.url),
            "--trusted-root".into(),
            m.trusted_root.display().to_string(),
        ]
    }

    fn push(&self) -> (bool, String) {
        self.env
            .push(&self.work, &["origin", "refs/notes/agentgate", "main"])
    }
}

/// The last audit record for refs/heads/main (a push also records the notes ref).
fn main_decision(audit: &[serde_json::Value]) -> &serde_json::Value {
    audit
        .iter()
        .rev()
        .find(|r| r["ref"] == "refs/heads/main")
        .expect("an audit record for main")
}

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

#[test]
fn keyless_signed_push_is_admitted_only_for_the_policys_identity_and_root() {
    if !interop_enabled("keyless_signed_push_is_admitted_only_for_the_policys_identity_and_root") {
        return;
    }
    let other = "https://github.com/evil/app/.github/workflows/gate.yml@refs/heads/main";
    let s = Setup::new("");
    let m = &s.mock.info;
    let root = m.trusted_root.clone();
    // First a policy that names another identity.
    s.set_policy(&keyless_signer(
        &m.issuer,
        &format!("identity = \"{other}\""),
        Some(&root),
    ));

    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let out_dir = s.env.path().join("att");
    let mut args: Vec<String> = vec!["sign".into(), "--keyless".into()];
    args.extend(s.services());
    args.extend(
        [
            "--repo",
            s.work.to_str().unwrap(),
            "--commit",
            &agent,
            "--artifact",
            s.env.path().join("app.bin").to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--note",
            "--test-result",
            "passed",
        ]
        .map(String::from),
    );
    let out = s.agentgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "mock log:\n{}", s.mock.log());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("with {} (issuer {})", m.subject, m.issuer)),
        "{text}"
    );
    let log = s.mock.log();
    assert_eq!(
        log.matches("/api/v2/signingCert -> 201").count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("/api/v1/log/entries -> 201").count(),
        2,
        "{log}"
    );

    // `agentgate verify` with the mock's root: the signer, the commit, the artifact.
    let verify = |bundle: &str, identity: &str| {
        s.agentgate(&[
            "verify",
            "--bundle",
            out_dir.join(bundle).to_str().unwrap(),
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            &m.issuer,
            "--trusted-root",
            root.to_str().unwrap(),
            "--repo",
            s.work.to_str().unwrap(),
            "--commit",
            &agent,
            s.env.path().join("app.bin").to_str().unwrap(),
        ])
    };
    let ok = verify("test-result.sigstore.json", &m.subject);
    assert_eq!(ok.status.code(), Some(0));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(text.contains("test result  PASSED"), "{text}");
    assert!(
        text.contains(&format!("signer       {}", m.subject)),
        "{text}"
    );
    assert_eq!(
        verify("provenance.sigstore.json", &m.subject).status.code(),
        Some(0)
    );
    let wrong = verify("provenance.sigstore.json", other);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("[sigstore-identity-mismatch]"));

    // The policy names another identity.
    let (ok, err) = s.push();
    assert!(!ok, "{err}");
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains("[sigstore-identity-mismatch]"), "{err}");

    // The right identity, but the embedded public-good root: the mock's CA means nothing.
    s.set_policy(&keyless_signer(
        &m.issuer,
        &format!("identity = \"{}\"", m.subject),
        None,
    ));
    let (ok, err) = s.push();
    assert!(!ok, "{err}");
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains("[sigstore-"), "{err}");
    assert!(!err.contains("[sigstore-identity-mismatch]"), "{err}");

    // Another issuer.
    s.set_policy(&keyless_signer(
        "https://gitlab.com",
        &format!("identity = \"{}\"", m.subject),
        Some(&root),
    ));
    let (ok, err) = s.push();
    assert!(!ok, "{err}");
    assert!(err.contains("[sigstore-issuer-mismatch]"), "{err}");

    // A regex that matches only part of the identity: anchored, so refused.
    s.set_policy(&keyless_signer(
        &m.issuer,
        "identity_regex = 'agentgate-test/app'",
        Some(&root),
    ));
    let (ok, err) = s.push();
    assert!(!ok, "{err}");
    assert!(err.contains("[sigstore-identity-mismatch]"), "{err}");

    // The policy's signer: admitted.
    s.set_policy(&keyless_signer(
        &m.issuer,
        &format!("identity = \"{}\"", m.subject),
        Some(&root),
    ));
    let (ok, err) = s.push();
    assert!(ok, "attested push: {err}");
    assert_eq!(
        s.env.rev(&s.server, "refs/heads/main").as_deref(),
        Some(agent.as_str())
    );
    let audit = s.env.audit(&s.server);
    let last = main_decision(&audit);
    assert_eq!(last["code"], "attested", "{last}");
    let admitted: Vec<&serde_json::Value> = last["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "ok")
        .collect();
    assert_eq!(admitted.len(), 2, "provenance and test result: {last}");
    assert!(admitted.iter().all(|a| a["detail"]
        .as_str()
        .unwrap()
        .ends_with("signed by ci-keyless")));
}

#[test]
fn gate_keyless_bundles_admit_a_push_under_an_identity_regex() {
    if !interop_enabled("gate_keyless_bundles_admit_a_push_under_an_identity_regex") {
        return;
    }
    let s = Setup::new("");
    let m = &s.mock.info;
    let root = m.trusted_root.clone();
    s.set_policy(&keyless_signer(
        &m.issuer,
        r"identity_regex = 'https://github\.com/agentgate-test/[^/]+/\.github/workflows/gate\.yml@refs/heads/main'",
        Some(&root),
    ));
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let mut args: Vec<String> = vec!["gate".into(), "--keyless".into()];
    args.extend(s.services());
    args.extend(
        [
            "--repo",
            s.work.to_str().unwrap(),
            "--commit",
            &agent,
            "--shell",
            "--build",
            "cp a.txt app",
            "--test",
            "test -s app",
            "--artifact",
            "app",
            "--note",
            "--json",
        ]
        .map(String::from),
    );
    let out = s.agentgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "mock log:\n{}", s.mock.log());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["signed"], true);
    assert_eq!(summary["signerIdentity"], m.subject.as_str());
    assert_eq!(summary["signerIssuer"], m.issuer.as_str());
    assert!(summary.get("keyHint").is_none());
    assert!(s.mock.log().contains("/api/v1/timestamp -> 200"));

    let (ok, err) = s.push();
    assert!(ok, "gated push: {err}");
    assert_eq!(
        s.env.rev(&s.server, "refs/heads/main").as_deref(),
        Some(agent.as_str())
    );
    assert_eq!(main_decision(&s.env.audit(&s.server))["code"], "attested");
}

#[test]
fn keyless_sign_refuses_without_a_token_and_never_with_a_key() {
    if !interop_enabled("keyless_sign_refuses_without_a_token_and_never_with_a_key") {
        return;
    }
    let s = Setup::new("");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let app = s.env.path().join("app.bin");
    let base = [
        "--repo",
        s.work.to_str().unwrap(),
        "--commit",
        &agent,
        "--artifact",
        app.to_str().unwrap(),
        "--test-result",
        "passed",
    ];
    // --key and --keyless together, or neither: usage errors.
    let mut both = vec!["sign", "--keyless", "--key", "k.key"];
    both.extend(base);
    assert_eq!(s.agentgate(&both).status.code(), Some(2));
    let mut neither = vec!["sign"];
    neither.extend(base);
    assert_eq!(s.agentgate(&neither).status.code(), Some(2));
    // No token anywhere: refused before anything is signed or written.
    let mut c = s.env.cmd(AGENTGATE);
    for var in [
        "AGENTGATE_IDENTITY_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "SIGSTORE_ID_TOKEN",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
    ] {
        c.env_remove(var);
    }
    let out = c
        .current_dir(s.env.path())
        .args(["sign", "--keyless", "--note"])
        .args(base)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[keyless-no-identity-token]"));
    assert!(s.env.rev(&s.work, "refs/notes/agentgate").is_none());
    // The gate checks the token source before it builds.
    let out = s.agentgate(&[
        "gate",
        "--keyless",
        "--repo",
        s.work.to_str().unwrap(),
        "--env",
        "AGENTGATE_IDENTITY_TOKEN",
        "--build",
        "true",
        "--test",
        "true",
        "--artifact",
        "a.txt",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("would hand an identity token"));
}

#[test]
fn a_keyless_statement_with_duplicate_keys_is_refused_by_the_hook() {
    if !interop_enabled("a_keyless_statement_with_duplicate_keys_is_refused_by_the_hook") {
        return;
    }
    use sha2::Digest as _;
    let s = Setup::new("");
    let m = &s.mock.info;
    s.set_policy(&keyless_signer(
        &m.issuer,
        &format!("identity = \"{}\"", m.subject),
        Some(&m.trusted_root),
    ));
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let digest = hex::encode(sha2::Sha256::digest(b"the built artifact\n"));
    // Two gitCommit digests in one subject: a parser that keeps the first sees another commit,
    // one that keeps the last sees this one. A signed statement must mean one thing.
    let statement = format!(
        r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"app.bin","digest":{{"sha256":"{digest}"}}}},{{"name":"commit","digest":{{"gitCommit":"{}","gitCommit":"{agent}"}}}}],"predicateType":"https://in-toto.io/attestation/test-result/v0.1","predicate":{{"result":"PASSED","configuration":[]}}}}"#,
        "0".repeat(40)
    );
    let statement_path = s.env.path().join("dup.json");
    std::fs::write(&statement_path, &statement).unwrap();
    let bundle_path = s.env.path().join("dup.sigstore.json");
    let mut args: Vec<String> = vec![
        "sign-keyless-statement".into(),
        "--statement".into(),
        statement_path.display().to_string(),
        "--out".into(),
        bundle_path.display().to_string(),
    ];
    args.extend(s.services());
    let out = s.agentgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "mock log:\n{}", s.mock.log());
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&bundle_path).unwrap()).unwrap();
    let line = s.env.path().join("dup.line");
    std::fs::write(&line, format!("{bundle}\n")).unwrap();
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "add",
            "-F",
            line.to_str().unwrap(),
            &agent,
        ],
    );
    let (ok, err) = s.push();
    assert!(!ok, "{err}");
    assert!(err.contains("[statement-malformed]"), "{err}");
}
