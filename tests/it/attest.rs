//! `keygen`, `sign` and `verify` run as the real binary against real git repositories in temp
//! dirs, isolated from the developer's git config. Refusals are asserted by code, not prose.

use std::process::Command;

use crate::common::{b64, Sandbox, FIXTURES};
use base64::Engine as _;

fn roundtrip(sb: &Sandbox, key: &str, pubkey: &str, extra: &[&str], env: &[(&str, &str)]) {
    sb.sign(key, "att", extra, env);
    let head = sb.rev("HEAD");
    let v = sb
        .verify(
            "att/provenance.sigstore.json",
            pubkey,
            &["--commit", "HEAD"],
            "app.bin",
        )
        .unwrap();
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(v["commit"], head);
    let v = sb
        .verify(
            "att/test-result.sigstore.json",
            pubkey,
            &["--commit", &head],
            "app.bin",
        )
        .unwrap();
    assert_eq!(v["testResult"], "PASSED");
    let digest = format!("sha256:{}", v["artifact"]["sha256"].as_str().unwrap());
    sb.verify("att/test-result.sigstore.json", pubkey, &[], &digest)
        .unwrap();
}

#[test]
fn p256_sign_verify_roundtrip() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    roundtrip(&sb, "gate.key", "gate.pub", &[], &[]);
    // The bundle's shape, as other Sigstore clients expect it.
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.path("att/provenance.sigstore.json")).unwrap())
            .unwrap();
    assert_eq!(
        v["mediaType"],
        "application/vnd.dev.sigstore.bundle.v0.3+json"
    );
    let hint = v["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .unwrap();
    assert_eq!(v["dsseEnvelope"]["signatures"][0]["keyid"], hint);
    assert_eq!(v["dsseEnvelope"]["signatures"].as_array().unwrap().len(), 1);
    let statement: serde_json::Value = serde_json::from_slice(
        &b64()
            .decode(v["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let dep = &statement["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(dep["digest"]["gitCommit"], sb.rev("HEAD"));
    assert_eq!(dep["digest"]["gitTree"], sb.rev("HEAD^{tree}"));
}

#[test]
fn ed25519_sign_verify_roundtrip() {
    let sb = Sandbox::new();
    sb.keygen("gate", &["--ed25519"], &[]);
    roundtrip(&sb, "gate.key", "gate.pub", &[], &[]);
}

#[test]
fn encrypted_key_roundtrip() {
    let sb = Sandbox::new();
    let env = [("GATE_PW", "correct horse")];
    sb.keygen("gate", &["--password-env", "GATE_PW"], &env);
    let pem = std::fs::read_to_string(sb.path("gate.key")).unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    // Without the passphrase: a usage error that says what to do.
    let out = sb.run(
        &[
            "sign",
            "--key",
            "gate.key",
            "--repo",
            "repo",
            "--commit",
            "HEAD",
            "--artifact",
            "app.bin",
            "--test-result",
            "passed",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--password-env"));
    // Wrong passphrase.
    let out = sb.run(
        &[
            "sign",
            "--key",
            "gate.key",
            "--password-env",
            "GATE_PW",
            "--commit",
            "HEAD",
            "--repo",
            "repo",
            "--artifact",
            "app.bin",
            "--test-result",
            "passed",
        ],
        &[("GATE_PW", "wrong")],
    );
    assert_eq!(out.status.code(), Some(2));
    roundtrip(
        &sb,
        "gate.key",
        "gate.pub",
        &["--password-env", "GATE_PW"],
        &env,
    );
}

#[test]
fn encrypted_key_with_passphrase_env_flag() {
    let sb = Sandbox::new();
    let env = [("GATE_PW", "pw")];
    sb.keygen("gate", &["--password-env", "GATE_PW", "--ed25519"], &env);
    sb.sign("gate.key", "att", &["--password-env", "GATE_PW"], &env);
    sb.verify("att/provenance.sigstore.json", "gate.pub", &[], "app.bin")
        .unwrap();
}

#[test]
fn openssl_reads_our_keys_and_we_read_openssl_keys() {
    if Command::new("openssl").arg("version").output().is_err() {
        crate::common::skip(
            "openssl_reads_our_keys_and_we_read_openssl_keys",
            "openssl not found (Debian package openssl)",
        );
        return;
    }
    let sb = Sandbox::new();
    sb.keygen("gate", &["--password-env", "PW"], &[("PW", "pw")]);
    let out = Command::new("openssl")
        .args(["pkey", "-in", "gate.key", "-passin", "pass:pw", "-pubout"])
        .current_dir(sb.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, std::fs::read(sb.path("gate.pub")).unwrap());

    // openssl's own encrypted PKCS#8 (PBKDF2 + AES-256-CBC) and its Ed25519 keys.
    for (algo, extra) in [
        ("EC", &["-pkeyopt", "ec_paramgen_curve:P-256"][..]),
        ("ED25519", &[][..]),
    ] {
        let st = Command::new("openssl")
            .args(["genpkey", "-algorithm", algo])
            .args(extra)
            .args(["-aes256", "-pass", "pass:xyz", "-out", "o.key"])
            .current_dir(sb.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let st = Command::new("openssl")
            .args([
                "pkey", "-in", "o.key", "-passin", "pass:xyz", "-pubout", "-out", "o.pub",
            ])
            .current_dir(sb.dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        sb.sign("o.key", "o", &["--password-env", "OPW"], &[("OPW", "xyz")]);
        sb.verify(
            "o/provenance.sigstore.json",
            "o.pub",
            &["--commit", "HEAD"],
            "app.bin",
        )
        .unwrap();
    }
}

#[test]
fn cosign_key_made_by_an_independent_implementation() {
    // tests/fixtures/cosign.key was written by make-cosign-key.py (Python, pynacl).
    let sb = Sandbox::new();
    let key = format!("{FIXTURES}/cosign.key");
    let pubkey = format!("{FIXTURES}/cosign.pub");
    let env = [("COSIGN_PASSWORD", "agentgate-test")];
    sb.sign(&key, "att", &["--password-env", "COSIGN_PASSWORD"], &env);
    sb.verify(
        "att/provenance.sigstore.json",
        &pubkey,
        &["--commit", "HEAD"],
        "app.bin",
    )
    .unwrap();
    let out = sb.run(
        &[
            "sign",
            "--key",
            &key,
            "--password-env",
            "COSIGN_PASSWORD",
            "--repo",
            "repo",
            "--commit",
            "HEAD",
            "--artifact",
            "app.bin",
            "--test-result",
            "passed",
        ],
        &[("COSIGN_PASSWORD", "nope")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase is wrong"));
}

#[test]
fn cosign_format_keygen_roundtrip() {
    let sb = Sandbox::new();
    let env = [("PW", "pw")];
    sb.keygen("c", &["--cosign", "--password-env", "PW"], &env);
    assert!(std::fs::read_to_string(sb.path("c.key"))
        .unwrap()
        .starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    sb.sign("c.key", "att", &["--password-env", "PW"], &env);
    sb.verify("att/test-result.sigstore.json", "c.pub", &[], "app.bin")
        .unwrap();
}

#[test]
fn private_key_is_mode_0600_and_not_overwritten() {
    use std::os::unix::fs::PermissionsExt as _;
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    let mode = std::fs::metadata(sb.path("gate.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(sb.path("gate.key")).unwrap();
    let out = sb.run(&["keygen", "--out", "gate"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(sb.path("gate.key")).unwrap(), before);
}

#[test]
fn refusals_each_have_their_code() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.keygen("other", &[], &[]);
    sb.sign("gate.key", "att", &[], &[]);
    let prov = "att/provenance.sigstore.json";
    let tests = "att/test-result.sigstore.json";

    // Tampered artifact.
    std::fs::write(sb.path("evil.bin"), b"the artifact, changed\n").unwrap();
    assert_eq!(
        sb.verify(prov, "gate.pub", &[], "evil.bin").unwrap_err(),
        "artifact-not-subject"
    );

    // Tampered payload: the statement names another artifact; the signature stays.
    sb.edit_bundle(prov, "tampered.json", |v| {
        let p = b64()
            .decode(v["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let mut st: serde_json::Value = serde_json::from_slice(&p).unwrap();
        st["subject"][0]["digest"]["sha256"] = "0".repeat(64).into();
        v["dsseEnvelope"]["payload"] = b64().encode(serde_json::to_vec(&st).unwrap()).into();
    });
    assert_eq!(
        sb.verify(
            "tampered.json",
            "gate.pub",
            &[],
            &format!("sha256:{}", "0".repeat(64))
        )
        .unwrap_err(),
        "signature-invalid"
    );

    // Wrong key.
    assert_eq!(
        sb.verify(prov, "other.pub", &[], "app.bin").unwrap_err(),
        "untrusted-signer"
    );

    // Replay onto another commit.
    assert_eq!(
        sb.verify(prov, "gate.pub", &["--commit", "HEAD~1"], "app.bin")
            .unwrap_err(),
        "commit-mismatch"
    );
    assert_eq!(
        sb.verify(tests, "gate.pub", &["--commit", "HEAD~1"], "app.bin")
            .unwrap_err(),
        "commit-mismatch"
    );

    // Malformed JSON.
    std::fs::write(sb.path("broken.json"), b"{\"mediaType\": ").unwrap();
    assert_eq!(
        sb.verify("broken.json", "gate.pub", &[], "app.bin")
            .unwrap_err(),
        "bundle-malformed"
    );

    // No signature.
    sb.edit_bundle(prov, "nosig.json", |v| {
        v["dsseEnvelope"]["signatures"] = serde_json::json!([])
    });
    assert_eq!(
        sb.verify("nosig.json", "gate.pub", &[], "app.bin")
            .unwrap_err(),
        "signature-missing"
    );

    // Two signatures.
    sb.edit_bundle(prov, "twosig.json", |v| {
        let s = v["dsseEnvelope"]["signatures"][0].clone();
        v["dsseEnvelope"]["signatures"] = serde_json::json!([s.clone(), s]);
    });
    assert_eq!(
        sb.verify("twosig.json", "gate.pub", &[], "app.bin")
            .unwrap_err(),
        "signatures-multiple"
    );

    // A hint naming another key (the signature itself is still gate's).
    let other_hint = {
        let pem = std::fs::read_to_string(sb.path("other.pub")).unwrap();
        agentgate_formats::PublicKey::from_pem(&pem)
            .unwrap()
            .hint()
            .to_string()
    };
    sb.edit_bundle(prov, "renamed.json", |v| {
        v["verificationMaterial"]["publicKey"]["hint"] = other_hint.clone().into();
        v["dsseEnvelope"]["signatures"][0]["keyid"] = other_hint.clone().into();
    });
    assert_eq!(
        sb.verify("renamed.json", "gate.pub", &[], "app.bin")
            .unwrap_err(),
        "key-hint-mismatch"
    );

    // Unknown media type.
    sb.edit_bundle(prov, "media.json", |v| {
        v["mediaType"] = "application/vnd.dev.sigstore.bundle.v9+json".into()
    });
    assert_eq!(
        sb.verify("media.json", "gate.pub", &[], "app.bin")
            .unwrap_err(),
        "bundle-media-type-unsupported"
    );
}

#[test]
fn failed_tests_are_signed_honestly_and_refused() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.sign("gate.key", "failed", &["--test-result", "failed"], &[]);
    assert_eq!(
        sb.verify(
            "failed/test-result.sigstore.json",
            "gate.pub",
            &[],
            "app.bin"
        )
        .unwrap_err(),
        "tests-failed"
    );

    std::fs::write(
        sb.path("junit.xml"),
        r#"<testsuites><testsuite name="s"><testcase classname="c" name="good"/>
           <testcase classname="c" name="bad"><failure message="boom"/></testcase>
           <testcase classname="c" name="later"><skipped/></testcase></testsuite></testsuites>"#,
    )
    .unwrap();
    // --test-result passed cannot paper over failures in the report.
    sb.sign(
        "gate.key",
        "junit",
        &["--junit", "junit.xml", "--test-result", "passed"],
        &[],
    );
    assert_eq!(
        sb.verify(
            "junit/test-result.sigstore.json",
            "gate.pub",
            &[],
            "app.bin"
        )
        .unwrap_err(),
        "tests-failed"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.path("junit/test-result.sigstore.json")).unwrap())
            .unwrap();
    let st: serde_json::Value = serde_json::from_slice(
        &b64()
            .decode(v["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(st["predicate"]["result"], "FAILED");
    assert_eq!(
        st["predicate"]["passedTests"],
        serde_json::json!(["c.good"])
    );
    assert_eq!(st["predicate"]["failedTests"], serde_json::json!(["c.bad"]));
    assert_eq!(st["subject"][0]["digest"]["gitCommit"], sb.rev("HEAD"));
}

#[test]
fn notes_are_appended_never_overwritten() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.git(&[
        "notes",
        "--ref",
        "agentgate",
        "add",
        "-m",
        "an earlier line",
        "HEAD",
    ]);
    sb.sign("gate.key", "a1", &["--note"], &[]);
    sb.sign("gate.key", "a2", &["--note"], &[]);
    let note = sb.git(&["notes", "--ref", "agentgate", "show", "HEAD"]);
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines.len(), 5, "{note}");
    assert_eq!(lines[0], "an earlier line");
    for (i, line) in lines[1..].iter().enumerate() {
        std::fs::write(sb.path(&format!("line{i}.json")), line).unwrap();
        sb.verify(
            &format!("line{i}.json"),
            "gate.pub",
            &["--commit", "HEAD"],
            "app.bin",
        )
        .unwrap();
    }
    // The first run's bundles are still there, byte for byte.
    assert_eq!(
        lines[1],
        std::fs::read_to_string(sb.path("a1/provenance.sigstore.json"))
            .unwrap()
            .trim_end()
    );

    // A custom notes ref.
    sb.sign(
        "gate.key",
        "a3",
        &["--note", "--notes-ref", "refs/notes/other"],
        &[],
    );
    assert_eq!(
        sb.git(&["notes", "--ref", "other", "show", "HEAD"])
            .lines()
            .count(),
        2
    );
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.sign("gate.key", "att", &[], &[]);
    let out = sb.run(
        &[
            "verify",
            "--bundle",
            "att/provenance.sigstore.json",
            "--key",
            "missing.pub",
            "app.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.pub"));
    let out = sb.run(
        &[
            "verify",
            "--bundle",
            "att/provenance.sigstore.json",
            "app.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = sb.run(
        &[
            "verify",
            "--bundle",
            "att/provenance.sigstore.json",
            "--key",
            "gate.pub",
            "sha256:12",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    for cmd in ["keygen", "sign", "verify"] {
        let help = sb.ok(&[cmd, "--help"], &[]);
        assert!(
            help.contains("agentgate ") && help.contains("Example"),
            "{cmd} --help: {help}"
        );
    }
}

/// Issue 11: `sign` used to record PASSED when the caller said nothing about the tests.
#[test]
fn sign_needs_the_test_outcome() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    let base = [
        "sign",
        "--key",
        "gate.key",
        "--repo",
        "repo",
        "--commit",
        "HEAD",
        "--artifact",
        "app.bin",
        "--out",
        "att",
        "--note",
    ];
    let out = sb.run(&base, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--junit") && err.contains("--test-result"),
        "{err}"
    );
    assert!(!sb.path("att").exists(), "nothing is written");
    let notes = sb.git(&["notes", "--ref", "refs/notes/agentgate", "list"]);
    assert!(notes.trim().is_empty(), "no note: {notes}");
    // Either one is enough.
    let mut failed = base.to_vec();
    failed.extend(["--test-result", "failed"]);
    sb.ok(&failed, &[]);
    let v = sb
        .verify("att/test-result.sigstore.json", "gate.pub", &[], "app.bin")
        .unwrap_err();
    assert_eq!(v, "tests-failed");
}

#[test]
fn sign_without_out_prints_json_lines() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    let out = sb.ok(
        &[
            "sign",
            "--key",
            "gate.key",
            "--repo",
            "repo",
            "--commit",
            "HEAD~1",
            "--artifact",
            "app.bin",
            "--test-result",
            "passed",
        ],
        &[],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    std::fs::write(sb.path("b.json"), lines[1]).unwrap();
    let first = sb.rev("HEAD~1");
    sb.verify("b.json", "gate.pub", &["--commit", &first], "app.bin")
        .unwrap();
    assert_eq!(
        sb.verify("b.json", "gate.pub", &["--commit", "HEAD"], "app.bin")
            .unwrap_err(),
        "commit-mismatch"
    );
}
