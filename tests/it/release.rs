//! The release manager's side, run as the real binary: the gate keeps the artifacts it signed
//! next to the bundles, and `verify` reads what travels (a note, JSON Lines, one bundle),
//! verifies any Sigstore bundle (agentgate's, cosign-style key bundles, keyless ones, in-toto
//! v0.1), reports each bundle's checks, names the expected and the found value when it refuses,
//! and prints the verified statement. Two bundles sigstore-python verifies (a timestamp from a
//! TSA of a custom trusted root next to one that does not verify; an otherName SAN identity)
//! verify here too.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::Sandbox;
use agentgate_formats::dsse::{pae, PAYLOAD_TYPE_INTOTO};
use agentgate_formats::{KeyAlgorithm, SigningKey};
use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `verify --json` with `args`: the exit code and the JSON.
fn verify_json(sb: &Sandbox, args: &[&str]) -> (Option<i32>, Value) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let out = sb.run(&all, &[]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("verify printed no JSON ({e}): {}", text(&out)));
    (out.status.code(), v)
}

fn check<'a>(bundle: &'a Value, name: &str) -> &'a Value {
    bundle["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {bundle}"))
}

/// A note with a failed run and a passed run: four bundles, each reported; the artifact is
/// verified (exit 0) because the passed run's are. The same from the note saved as JSON Lines.
/// A note on another commit binds that commit, and a commit without a note has no bundle.
#[test]
fn verify_reads_a_note_and_json_lines_and_reports_each_bundle() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.sign(
        "gate.key",
        "failed",
        &["--note", "--test-result", "failed"],
        &[],
    );
    sb.sign("gate.key", "passed", &["--note"], &[]);
    let head = sb.rev("HEAD");

    let (code, v) = verify_json(
        &sb,
        &[
            "--note", "HEAD", "--repo", "repo", "--key", "gate.pub", "app.bin",
        ],
    );
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["verified"], true);
    let bundles = v["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 4, "{v:#}");
    let codes: Vec<&str> = bundles
        .iter()
        .map(|b| b["code"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(codes, ["tests-failed", "tests-failed", "ok", "ok"], "{v:#}");
    assert!(bundles[0]["source"]
        .as_str()
        .unwrap()
        .starts_with("refs/notes/agentgate:"));
    for b in &bundles[2..] {
        assert_eq!(b["commit"], head.as_str());
        assert_eq!(b["testResult"], "PASSED");
        assert_eq!(check(b, "commit")["status"], "passed");
        assert_eq!(check(b, "transparency-log")["status"], "not-applicable");
    }
    // The top level repeats the first verified bundle.
    assert_eq!(v["index"], 3);

    // The note, saved as a file: JSON Lines.
    let note = sb.git(&["notes", "--ref", "agentgate", "show", "HEAD"]);
    std::fs::write(sb.path("note.jsonl"), &note).unwrap();
    let (code, v) = verify_json(
        &sb,
        &["--bundle", "note.jsonl", "--key", "gate.pub", "app.bin"],
    );
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["bundles"].as_array().unwrap().len(), 4);
    assert_eq!(v["bundles"][3]["source"], "note.jsonl line 4");
    // Without --commit the binding is reported, not compared.
    assert!(
        check(&v["bundles"][2], "commit")["detail"]
            .as_str()
            .unwrap()
            .contains("not compared"),
        "{v:#}"
    );

    // Only the failed run: every bundle refused, exit 1, each with its code on stderr.
    let failed: String = note.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(sb.path("failed.jsonl"), failed).unwrap();
    let out = sb.run(
        &[
            "verify",
            "--bundle",
            "failed.jsonl",
            "--key",
            "gate.pub",
            "app.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("not verified [tests-failed]").count(),
        2,
        "{stderr}"
    );

    // The same bundles asked to bind the parent commit: commit-mismatch names what they bind.
    let (code, v) = verify_json(
        &sb,
        &[
            "--bundle",
            "note.jsonl",
            "--key",
            "gate.pub",
            "--repo",
            "repo",
            "--commit",
            "HEAD~1",
            "app.bin",
        ],
    );
    assert_eq!(code, Some(1));
    let error = v["bundles"][2]["error"].as_str().unwrap();
    assert_eq!(v["bundles"][2]["code"], "commit-mismatch");
    assert!(
        error.contains(&sb.rev("HEAD~1")) && error.contains(&head),
        "expected and found commit: {error}"
    );
    // The parent has no note: nothing to verify.
    let (code, v) = verify_json(
        &sb,
        &[
            "--note", "HEAD~1", "--repo", "repo", "--key", "gate.pub", "app.bin",
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(v["code"], "no-bundle", "{v:#}");
}

/// A refusal names what was expected and what was found; --print-statement shows the
/// statement that verified.
#[test]
fn refusals_name_expected_and_found_and_the_statement_can_be_printed() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.sign("gate.key", "att", &[], &[]);
    std::fs::write(sb.path("other.bin"), b"another artifact\n").unwrap();
    let (code, v) = verify_json(
        &sb,
        &[
            "--bundle",
            "att/provenance.sigstore.json",
            "--key",
            "gate.pub",
            "other.bin",
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(v["code"], "artifact-not-subject");
    let error = v["error"].as_str().unwrap();
    let app = agentgate_formats::statement::sha256_file(&sb.path("app.bin")).unwrap();
    assert!(
        error.contains(&format!("app.bin sha256:{app}")),
        "the subjects are listed: {error}"
    );
    assert_eq!(check(&v, "artifact")["status"], "failed");
    assert_eq!(check(&v, "commit")["status"], "not-run");

    let out = sb.run(
        &[
            "verify",
            "--bundle",
            "att/test-result.sigstore.json",
            "--key",
            "gate.pub",
            "--print-statement",
            "app.bin",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("\"predicateType\": \"https://in-toto.io/attestation/test-result/v0.1\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"result\": \"PASSED\""), "{stdout}");
    let (_, v) = verify_json(
        &sb,
        &[
            "--bundle",
            "att/test-result.sigstore.json",
            "--key",
            "gate.pub",
            "--print-statement",
            "app.bin",
        ],
    );
    assert_eq!(v["statement"]["predicate"]["result"], "PASSED", "{v:#}");
}

/// What cosign and sigstore-python sign, verified as they verify it: a managed-key message
/// signature logged in Rekor (the conformance vector), and an in-toto Statement v0.1 (what
/// `cosign attest-blob` writes) with a predicate agentgate does not know. Neither is an
/// agentgate statement: the agentgate checks say they did not apply, unless --commit asks.
#[test]
fn verify_checks_cosign_style_bundles() {
    let sb = Sandbox::new();
    let case = data("sigstore-conformance/bundle-verify/managed-key-happy-path");
    let a_txt = data("sigstore-conformance/bundle-verify/a.txt");
    let (code, v) = verify_json(
        &sb,
        &[
            "--bundle",
            case.join("bundle.sigstore.json").to_str().unwrap(),
            "--key",
            case.join("key.pub").to_str().unwrap(),
            a_txt.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{v:#}");
    assert!(v.get("predicateType").is_none());
    assert_eq!(check(&v, "transparency-log")["status"], "passed");
    assert!(check(&v, "signature")["detail"]
        .as_str()
        .unwrap()
        .contains("message signature"));
    for c in ["statement", "commit", "predicate", "test-result"] {
        assert_eq!(check(&v, c)["status"], "not-applicable", "{c}: {v:#}");
    }

    // An in-toto Statement v0.1 signed with a key (no log entry).
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    std::fs::write(sb.path("k.pub"), key.public_key().to_pem()).unwrap();
    let digest = agentgate_formats::statement::sha256_file(&sb.path("app.bin")).unwrap();
    let statement = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "subject": [{"name": "app.bin", "digest": {"sha256": digest}}],
        "predicateType": "https://cosign.sigstore.dev/attestation/v1",
        "predicate": {"Data": "hello"},
    });
    let payload = serde_json::to_vec(&statement).unwrap();
    let sig = key.sign(&pae(PAYLOAD_TYPE_INTOTO, &payload)).unwrap();
    let bundle = agentgate_formats::bundle::key_bundle_json(
        key.public_key().hint(),
        PAYLOAD_TYPE_INTOTO,
        &payload,
        &sig,
    );
    std::fs::write(sb.path("v01.json"), bundle).unwrap();
    let (code, v) = verify_json(&sb, &["--bundle", "v01.json", "--key", "k.pub", "app.bin"]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["statementType"], "https://in-toto.io/Statement/v0.1");
    assert_eq!(v["agentgate"], false);
    assert_eq!(check(&v, "predicate")["status"], "not-applicable");
    // --commit asks any statement to bind the commit: this one binds none.
    let (code, v) = verify_json(
        &sb,
        &[
            "--bundle",
            "v01.json",
            "--key",
            "k.pub",
            "--commit",
            &"a".repeat(40),
            "app.bin",
        ],
    );
    assert_eq!(code, Some(1));
    assert_eq!(v["code"], "commit-mismatch");
    assert!(v["error"].as_str().unwrap().contains("no commit"), "{v:#}");

    // A key and an identity may be trusted together: the key bundle verifies by the key.
    let (code, v) = verify_json(
        &sb,
        &[
            "--bundle",
            "v01.json",
            "--key",
            "k.pub",
            "--certificate-identity",
            "x",
            "--certificate-oidc-issuer",
            "y",
            "app.bin",
        ],
    );
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["signerKey"], "k.pub");
}

/// sigstore-python verifies a bundle whose first RFC 3161 timestamp comes from the TSA of a
/// custom trusted root and whose second does not cover the signature: the second is set aside
/// (reported), the first and the Rekor SET are the signing times.
#[test]
fn a_timestamp_from_a_custom_roots_tsa_verifies_next_to_one_that_does_not() {
    let sb = Sandbox::new();
    let dir = data("sigstore-cases/tsa");
    let args = |identity: &str| -> (Option<i32>, Value) {
        verify_json(
            &sb,
            &[
                "--bundle",
                dir.join("bundle.sigstore.json").to_str().unwrap(),
                "--trusted-root",
                dir.join("trusted_root.json").to_str().unwrap(),
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                "https://accounts.google.com",
                dir.join("artifact").to_str().unwrap(),
            ],
        )
    };
    let (code, v) = args("alexis.challande@trailofbits.com");
    assert_eq!(code, Some(0), "{v:#}");
    let ts = check(&v, "timestamps");
    assert_eq!(ts["status"], "passed");
    let detail = ts["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("1 RFC 3161 timestamp(s) verified") && detail.contains("set aside"),
        "{detail}"
    );
    let (code, v) = args("someone@example.com");
    assert_eq!(code, Some(1));
    assert_eq!(v["code"], "sigstore-identity-mismatch");

    // The TSA's certificate chain is what authenticates the good timestamp: a root whose TSA
    // is another one sets both aside, and only the log's time is left, as sigstore-python.
    let mut root: Value =
        serde_json::from_slice(&std::fs::read(dir.join("trusted_root.json")).unwrap()).unwrap();
    let public: Value =
        serde_json::from_str(sigstore_trust_root::SIGSTORE_STAGING_TRUSTED_ROOT).unwrap();
    root["timestampAuthorities"] = public["timestampAuthorities"].clone();
    std::fs::write(sb.path("other-tsa.json"), root.to_string()).unwrap();
    let (code, v) = verify_json(
        &sb,
        &[
            "--bundle",
            dir.join("bundle.sigstore.json").to_str().unwrap(),
            "--trusted-root",
            "other-tsa.json",
            "--certificate-identity",
            "alexis.challande@trailofbits.com",
            "--certificate-oidc-issuer",
            "https://accounts.google.com",
            dir.join("artifact").to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{v:#}");
    assert!(check(&v, "timestamps")["detail"]
        .as_str()
        .unwrap()
        .starts_with("0 RFC 3161"));
}

/// A Fulcio certificate whose identity is an otherName SAN (a username, as Fulcio issues for
/// some OIDC providers) verifies for that identity, and only for it.
#[test]
fn an_other_name_san_identity_verifies() {
    let sb = Sandbox::new();
    let dir = data("sigstore-cases/othername");
    let run = |identity: &str| {
        verify_json(
            &sb,
            &[
                "--bundle",
                dir.join("bundle.sigstore.json").to_str().unwrap(),
                "--trusted-root",
                dir.join("trusted_root.json").to_str().unwrap(),
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                "http://oidc.local:8080",
                "sha256:bc103b4a84971ef6459b294a2b98568a2bfb72cded09d4acd1e16366a401f95b",
            ],
        )
    };
    let (code, v) = run("foo!oidc.local");
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["signerIdentity"], "foo!oidc.local");
    assert!(check(&v, "certificate")["detail"]
        .as_str()
        .unwrap()
        .contains("otherName"));
    let (code, v) = run("bar!oidc.local");
    assert_eq!(code, Some(1));
    assert_eq!(v["code"], "sigstore-identity-mismatch");
}

/// `gate --out DIR` copies each signed artifact to DIR/artifacts/<path as given>, and the copy
/// verifies against the bundles beside it. An earlier run's artifacts are removed first, and a
/// symlink left where the copies go is replaced, never followed.
#[cfg(feature = "gate")]
#[test]
fn the_gate_keeps_the_artifacts_it_signed() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    // A symlink in --out pointing elsewhere, where an earlier run's artifacts would be.
    std::fs::create_dir_all(sb.path("elsewhere")).unwrap();
    std::fs::write(sb.path("elsewhere/keep.txt"), "untouched\n").unwrap();
    std::fs::create_dir_all(sb.path("att")).unwrap();
    std::os::unix::fs::symlink(sb.path("elsewhere"), sb.path("att/artifacts")).unwrap();
    let gate = |artifacts: &[&str]| {
        let mut args = vec![
            "gate",
            "--key",
            "gate.key",
            "--repo",
            "repo",
            "--build",
            "sh -c 'mkdir -p out && cp a.txt out/app && printf x > out/other'",
            "--test",
            "test -s out/app",
            "--out",
            "att",
            "--danger-no-sandbox",
        ];
        for a in artifacts {
            args.extend(["--artifact", a]);
        }
        sb.run(&args, &[])
    };
    let out = gate(&["out/app", "./out/other"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("att/artifacts/out/app"));
    assert!(sb.path("elsewhere/keep.txt").exists());
    assert!(
        !sb.path("elsewhere/out").exists(),
        "the symlink was followed"
    );
    let meta = std::fs::symlink_metadata(sb.path("att/artifacts")).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert_eq!(
        std::fs::read(sb.path("att/artifacts/out/app")).unwrap(),
        b"two\n"
    );
    assert_eq!(
        std::fs::read(sb.path("att/artifacts/out/other")).unwrap(),
        b"x"
    );
    for artifact in ["att/artifacts/out/app", "att/artifacts/out/other"] {
        let (code, v) = verify_json(
            &sb,
            &[
                "--bundle",
                "att/provenance.sigstore.json",
                "--key",
                "gate.pub",
                "--repo",
                "repo",
                "--commit",
                "HEAD",
                artifact,
            ],
        );
        assert_eq!(code, Some(0), "{artifact}: {v:#}");
    }
    // A second run keeps only its own artifacts.
    let out = gate(&["out/other"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!sb.path("att/artifacts/out/app").exists());
    assert!(sb.path("att/artifacts/out/other").exists());
    // The payload names the artifact by the path given, which is where the copy is.
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(sb.path("att/provenance.sigstore.json")).unwrap())
            .unwrap();
    use base64::Engine as _;
    let st: Value = serde_json::from_slice(
        &crate::common::b64()
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(st["subject"][0]["name"], "out/other");
}

/// The CI templates upload the gate's whole `--out` directory, so the artifacts it keeps travel
/// with the bundles (not only `*.sigstore.json`).
#[test]
fn ci_templates_upload_the_whole_out_directory() {
    for name in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts/ci")
                .join(name),
        )
        .unwrap();
        let code: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        assert!(
            code.iter().any(|l| l.contains("--out attestations")),
            "{name}: the gate writes to attestations/"
        );
        let uploads: Vec<&&str> = code
            .iter()
            .filter(|l| l.trim_start().trim_start_matches("- ").starts_with("path"))
            .collect();
        assert!(!uploads.is_empty(), "{name}: nothing uploaded");
        assert!(
            code.iter()
                .any(|l| l.trim() == "path: attestations/" || l.trim() == "- attestations/"),
            "{name}: the whole directory is uploaded"
        );
        assert!(
            !code
                .iter()
                .any(|l| l.contains("attestations/*.sigstore.json")),
            "{name}: only the bundles"
        );
    }
}

/// `--notes-ref` names the notes ref `--note` reads: a note published under another ref is
/// verified from there, and the default ref, which holds nothing for the commit, has no bundle.
#[test]
fn verify_reads_the_note_under_notes_ref() {
    let sb = Sandbox::new();
    sb.keygen("gate", &[], &[]);
    sb.sign(
        "gate.key",
        "att",
        &["--note", "--notes-ref", "refs/notes/release"],
        &[],
    );
    let head = sb.rev("HEAD");

    let (code, v) = verify_json(
        &sb,
        &[
            "--note",
            "HEAD",
            "--notes-ref",
            "refs/notes/release",
            "--repo",
            "repo",
            "--key",
            "gate.pub",
            "app.bin",
        ],
    );
    assert_eq!(code, Some(0), "{v:#}");
    let bundles = v["bundles"].as_array().unwrap();
    assert_eq!(bundles.len(), 2, "{v:#}");
    for b in bundles {
        assert_eq!(b["verified"], true, "{b:#}");
        assert_eq!(b["commit"], head.as_str());
        assert!(b["source"]
            .as_str()
            .unwrap()
            .starts_with("refs/notes/release:"));
    }

    let (code, v) = verify_json(
        &sb,
        &[
            "--note", "HEAD", "--repo", "repo", "--key", "gate.pub", "app.bin",
        ],
    );
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(v["code"], "no-bundle", "{v:#}");
}

/// The demo's release manager verifies the copy the gate kept, and the command it shows names
/// the file it verifies (the kept `attestations/artifacts/engine.bin`, not another copy).
#[test]
fn the_demo_verifies_the_artifact_the_gate_kept() {
    let sb = Sandbox::new();
    let out = sb.run(&["demo"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let step: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("== 7."))
        .take_while(|l| !l.starts_with("== The audit log"))
        .collect();
    let shown = step
        .iter()
        .find(|l| l.starts_with("$ agentgate verify"))
        .unwrap_or_else(|| panic!("no verify command in step 7: {stdout}"));
    let shown_artifact = shown.split_whitespace().last().unwrap();
    assert_eq!(
        shown_artifact, "attestations/artifacts/engine.bin",
        "{shown}"
    );
    let verified: Vec<&&str> = step
        .iter()
        .filter(|l| l.trim_start().starts_with("artifact "))
        .collect();
    assert!(!verified.is_empty(), "{stdout}");
    for l in verified {
        assert!(
            l.trim_end().ends_with(&format!("/{shown_artifact})")),
            "verified another file than the one shown: {l}"
        );
    }
    assert!(
        step.iter()
            .any(|l| l.starts_with("  verified: 2 of 2 bundles")),
        "{stdout}"
    );
}
