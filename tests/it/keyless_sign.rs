//! Keyless signing end to end against local stand-ins for Fulcio, Rekor and a timestamp
//! authority (@sigstore/mock, served over HTTP on 127.0.0.1 by
//! `tests/interop/keyless-mock/server.js`): `agentgate sign-keyless-statement` signs with a token
//! the mock accepts, then our verifier (`agentgate verify`) checks the bundle against the
//! mock's trusted root and refuses the wrong identity, issuer, artifact and root.
//!
//! Runs when `AGENTGATE_INTEROP=1` (and then fails, not skips, if node or the mock is missing:
//! `scripts/install-keyless-mock.sh` installs it); otherwise each test says it skipped.
#![cfg(feature = "keyless-sign")]

use crate::common::mock::{interop_enabled, Mock};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AGENTGATE: &str = env!("CARGO_BIN_EXE_agentgate");

/// agentgate with no ambient CI token or service settings from the machine running the tests.
fn agentgate() -> Command {
    let mut c = Command::new(AGENTGATE);
    for var in [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "SIGSTORE_ID_TOKEN",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "AGENTGATE_IDENTITY_TOKEN",
        "AGENTGATE_FULCIO_URL",
        "AGENTGATE_REKOR_URL",
        "AGENTGATE_TSA_URL",
        "AGENTGATE_TRUSTED_ROOT",
    ] {
        c.env_remove(var);
    }
    c
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run agentgate");
    // Arguments only: Command's Debug would also show the environment, token included.
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!(
        "$ agentgate {}\nexit {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

struct Case {
    dir: tempfile::TempDir,
    artifact: PathBuf,
    statement: PathBuf,
    statement_bytes: Vec<u8>,
}

fn case() -> Case {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let artifact = dir.path().join("app.tar.gz");
    std::fs::write(&artifact, b"the artifact the gate built\n").unwrap();
    let digest = hex::encode(sha2::Sha256::digest(std::fs::read(&artifact).unwrap()));
    let statement_bytes = serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "app.tar.gz", "digest": {"sha256": digest}},
            {"name": "commit", "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}
        ],
        "predicateType": "https://in-toto.io/attestation/test-result/v0.1",
        "predicate": {"result": "PASSED", "configuration": [{"name": "cargo test"}]}
    }))
    .unwrap();
    let statement = dir.path().join("statement.json");
    std::fs::write(&statement, &statement_bytes).unwrap();
    Case {
        dir,
        artifact,
        statement,
        statement_bytes,
    }
}

fn verify(
    bundle: &Path,
    root: Option<&Path>,
    identity: &str,
    issuer: &str,
    artifact: &str,
) -> Output {
    let mut cmd = agentgate();
    cmd.arg("verify").arg("--bundle").arg(bundle);
    if let Some(root) = root {
        cmd.arg("--trusted-root").arg(root);
    }
    cmd.args(["--certificate-identity", identity])
        .args(["--certificate-oidc-issuer", issuer])
        .arg(artifact);
    run(&mut cmd)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn signs_with_rekor_v1_and_our_verifier_accepts_only_the_signer() {
    if !interop_enabled("signs_with_rekor_v1_and_our_verifier_accepts_only_the_signer") {
        return;
    }
    let c = case();
    let mock = Mock::start(c.dir.path(), 120);
    let m = &mock.info;
    let bundle = c.dir.path().join("statement.sigstore.json");
    let out = run(agentgate()
        .arg("sign-keyless-statement")
        .arg("--statement")
        .arg(&c.statement)
        .args(["--fulcio-url", &m.url, "--rekor-url", &m.url])
        .arg("--trusted-root")
        .arg(&m.trusted_root)
        .arg("--out")
        .arg(&bundle)
        .env("AGENTGATE_IDENTITY_TOKEN", &mock.token));
    assert_eq!(out.status.code(), Some(0), "mock log:\n{}", mock.log());
    assert!(stderr(&out).contains(&m.subject));
    assert!(
        !stderr(&out).contains(mock.token.trim()),
        "the token was printed"
    );
    let log = mock.log();
    assert!(log.contains("/api/v2/signingCert -> 201"), "{log}");
    assert!(log.contains("/api/v1/log/entries -> 201"), "{log}");

    // The bundle is what SPEC "Attestations" asks for.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    assert_eq!(
        json["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    assert!(json["verificationMaterial"]["certificate"]["rawBytes"].is_string());
    assert_eq!(
        json["verificationMaterial"]["tlogEntries"][0]["kindVersion"],
        serde_json::json!({"kind": "dsse", "version": "0.0.1"})
    );
    assert_eq!(
        json["dsseEnvelope"]["payloadType"],
        "application/vnd.in-toto+json"
    );
    let payload = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(json["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap()
    };
    assert_eq!(
        payload, c.statement_bytes,
        "the statement is signed byte for byte"
    );

    let artifact = c.artifact.to_str().unwrap();
    let root = Some(m.trusted_root.as_path());
    let ok = verify(&bundle, root, &m.subject, &m.issuer, artifact);
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&m.subject));

    let wrong_identity = verify(
        &bundle,
        root,
        "https://github.com/evil/app/.github/workflows/gate.yml@refs/heads/main",
        &m.issuer,
        artifact,
    );
    assert_eq!(wrong_identity.status.code(), Some(1));
    assert!(stderr(&wrong_identity).contains("[sigstore-identity-mismatch]"));

    let wrong_issuer = verify(&bundle, root, &m.subject, "https://gitlab.com", artifact);
    assert_eq!(wrong_issuer.status.code(), Some(1));
    assert!(stderr(&wrong_issuer).contains("[sigstore-issuer-mismatch]"));

    let other = c.dir.path().join("other.tar.gz");
    std::fs::write(&other, b"a different artifact\n").unwrap();
    let wrong_artifact = verify(
        &bundle,
        root,
        &m.subject,
        &m.issuer,
        other.to_str().unwrap(),
    );
    assert_eq!(wrong_artifact.status.code(), Some(1));
    assert!(stderr(&wrong_artifact).contains("[sigstore-artifact-mismatch]"));

    // The mock's certificates mean nothing under the public-good root.
    let public_good = verify(&bundle, None, &m.subject, &m.issuer, artifact);
    assert_eq!(public_good.status.code(), Some(1));
}

#[test]
fn signs_with_a_timestamp_and_a_gitlab_token_from_the_environment() {
    if !interop_enabled("signs_with_a_timestamp_and_a_gitlab_token_from_the_environment") {
        return;
    }
    let c = case();
    let mock = Mock::start(c.dir.path(), 120);
    let m = &mock.info;
    let bundle = c.dir.path().join("statement.sigstore.json");
    let out = run(agentgate()
        .arg("sign-keyless-statement")
        .arg("--statement")
        .arg(&c.statement)
        .arg("--out")
        .arg(&bundle)
        .env("SIGSTORE_ID_TOKEN", &mock.token)
        .env("AGENTGATE_FULCIO_URL", &m.url)
        .env("AGENTGATE_REKOR_URL", &m.url)
        .env("AGENTGATE_TSA_URL", format!("{}/api/v1/timestamp", m.url))
        .env("AGENTGATE_TRUSTED_ROOT", &m.trusted_root));
    assert_eq!(out.status.code(), Some(0), "mock log:\n{}", mock.log());
    assert!(mock.log().contains("/api/v1/timestamp -> 200"));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let timestamps =
        &json["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"];
    assert_eq!(timestamps.as_array().map(Vec::len), Some(1), "{json}");

    let ok = verify(
        &bundle,
        Some(&m.trusted_root),
        &m.subject,
        &m.issuer,
        c.artifact.to_str().unwrap(),
    );
    assert_eq!(ok.status.code(), Some(0));
}

#[test]
fn a_bundle_that_does_not_verify_under_the_trusted_root_is_not_written() {
    if !interop_enabled("a_bundle_that_does_not_verify_under_the_trusted_root_is_not_written") {
        return;
    }
    let c = case();
    let mock = Mock::start(c.dir.path(), 120);
    let m = &mock.info;
    let bundle = c.dir.path().join("statement.sigstore.json");
    // No --trusted-root: the bundle is checked against the public-good root, which the mock's
    // CA and log are not part of.
    let out = run(agentgate()
        .arg("sign-keyless-statement")
        .arg("--statement")
        .arg(&c.statement)
        .args(["--fulcio-url", &m.url, "--rekor-url", &m.url])
        .arg("--out")
        .arg(&bundle)
        .env("AGENTGATE_IDENTITY_TOKEN", &mock.token));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("[keyless-self-check]"),
        "{}",
        stderr(&out)
    );
    assert!(!bundle.exists());
}
