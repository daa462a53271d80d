//! The sigstore-conformance `bundle-verify` vectors (copied into `tests/data/sigstore-conformance`,
//! see its NOTICE.md), run through `scripts/sigstore-conformance-client` and the real
//! `agentgate` binary exactly as the suite drives a client: every case once with the artifact
//! file and once with `sha256:<hex>` of it, judged by exit code. No case is skipped.
//!
//! Below the suite: regression tests for the checks `attest::sigstore` adds on top of
//! sigstore-verify, and for vectors whose intended check is hidden behind an earlier,
//! incidental rejection (so the intended check is exercised on its own).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use agentgate_formats::sigstore::{
    self, ArtifactInput, IdentityMatch, ManagedKey, SignerPolicy, SigstoreError,
};
use serde_json::Value;
use sha2::Digest as _;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The suite's size at the pinned commit (NOTICE.md): a smaller count means lost vectors.
const EXPECTED_CASES: usize = 70;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigstore-conformance/bundle-verify")
}

fn client() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sigstore-conformance-client")
}

struct Case {
    name: String,
    dir: PathBuf,
    must_fail: bool,
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(vectors_dir())
        .expect("vector directory is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_dir())
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            Case {
                must_fail: name.ends_with("_fail"),
                name,
                dir,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The arguments the suite passes for one case and mode (its `test_verify`).
fn client_args(case: &Case, digest_mode: bool) -> Vec<String> {
    let mut args = vec![
        "verify-bundle".to_string(),
        "--bundle".to_string(),
        case.dir.join("bundle.sigstore.json").display().to_string(),
    ];
    let key = case.dir.join("key.pub");
    if key.exists() {
        args.extend(["--key".to_string(), key.display().to_string()]);
    } else {
        let identity = read_trimmed(&case.dir.join("identity"))
            .unwrap_or_else(|| DEFAULT_IDENTITY.to_string());
        let issuer =
            read_trimmed(&case.dir.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.to_string());
        args.extend([
            "--certificate-identity".to_string(),
            identity,
            "--certificate-oidc-issuer".to_string(),
            issuer,
        ]);
    }
    let root = case.dir.join("trusted_root.json");
    if root.exists() {
        args.extend(["--trusted-root".to_string(), root.display().to_string()]);
    }
    let mut artifact = case.dir.join("artifact");
    if !artifact.exists() {
        artifact = vectors_dir().join("a.txt");
    }
    if digest_mode {
        let bytes = std::fs::read(&artifact).expect("artifact is readable");
        args.push(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ));
    } else {
        args.push(artifact.display().to_string());
    }
    args
}

#[test]
fn sigstore_conformance_bundle_verify() {
    let cases = cases();
    assert_eq!(cases.len(), EXPECTED_CASES, "vector count changed");
    let mut table = String::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for case in &cases {
        for (mode, digest_mode) in [("file", false), ("digest", true)] {
            let output = Command::new(client())
                .args(client_args(case, digest_mode))
                .env("AGENTGATE", env!("CARGO_BIN_EXE_agentgate"))
                .env_remove("AGENTGATE_CONFIG")
                .output()
                .expect("the conformance client runs");
            let code = output.status.code();
            // The protocol judges by exit code: 0 verified, non-zero rejected. A rejection must
            // also be ours (1 refused, 2 unusable input), never a crash or a missing binary.
            let agrees = if case.must_fail {
                matches!(code, Some(1) | Some(2))
            } else {
                code == Some(0)
            };
            if agrees {
                passed += 1;
            } else {
                failed += 1;
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr.lines().last().unwrap_or("").trim();
            let why: String = why.chars().take(150).collect();
            writeln!(
                table,
                "{:<4} {:<58} {:<6} expect={:<6} exit={:<4} {}",
                if agrees { "ok" } else { "FAIL" },
                case.name,
                mode,
                if case.must_fail { "reject" } else { "accept" },
                code.map_or("sig".to_string(), |c| c.to_string()),
                why
            )
            .unwrap();
        }
    }
    println!("{table}");
    println!("sigstore-conformance bundle-verify: {passed} passed, {failed} failed");
    assert_eq!(failed, 0, "{failed} of {} checks disagree", passed + failed);
    assert_eq!(passed, 2 * EXPECTED_CASES);
}

// ---- Library-level regression tests ----

fn vector(case: &str, file: &str) -> Vec<u8> {
    std::fs::read(vectors_dir().join(case).join(file)).expect("vector file is readable")
}

fn default_artifact() -> ArtifactInput {
    ArtifactInput::Path(vectors_dir().join("a.txt"))
}

fn default_identity() -> SignerPolicy {
    SignerPolicy::Identity {
        issuer: DEFAULT_ISSUER.to_string(),
        identity: IdentityMatch::Exact(DEFAULT_IDENTITY.to_string()),
    }
}

fn production() -> sigstore::TrustedRoot {
    sigstore::public_good_root().expect("embedded root parses")
}

fn edit(bundle: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(bundle).expect("bundle is JSON");
    f(&mut v);
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn happy_path_reports_signer_issuer_and_time() {
    let v = sigstore::verify(
        &vector("happy-path-v0.3", "bundle.sigstore.json"),
        &default_artifact(),
        &default_identity(),
        &production(),
    )
    .expect("happy path verifies");
    assert_eq!(v.signer, DEFAULT_IDENTITY);
    assert_eq!(v.issuer.as_deref(), Some(DEFAULT_ISSUER));
    assert!(v.payload.is_none());
    assert!(v.integrated_time.is_some());
    assert!(!v.signed_times.is_empty());
}

#[test]
fn dsse_bundle_returns_the_in_toto_payload() {
    let v = sigstore::verify(
        &vector("happy-path-intoto-in-dsse-v3", "bundle.sigstore.json"),
        &default_artifact(),
        &default_identity(),
        &production(),
    )
    .expect("DSSE happy path verifies");
    let (payload_type, payload) = v.payload.expect("DSSE payload is returned");
    assert_eq!(payload_type, agentgate_formats::dsse::PAYLOAD_TYPE_INTOTO);
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    assert!(statement["subject"].is_array());
}

#[test]
fn dsse_artifact_must_match_a_subject() {
    let err = sigstore::verify(
        &vector("happy-path-intoto-in-dsse-v3", "bundle.sigstore.json"),
        &ArtifactInput::Bytes(b"not the subject".to_vec()),
        &default_identity(),
        &production(),
    )
    .unwrap_err();
    assert!(matches!(err, SigstoreError::ArtifactMismatch(_)), "{err}");
}

#[test]
fn artifact_bytes_path_and_digest_agree() {
    let bundle = vector("happy-path-v0.2", "bundle.sigstore.json");
    let bytes = std::fs::read(vectors_dir().join("a.txt")).unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    for artifact in [
        ArtifactInput::Bytes(bytes.clone()),
        default_artifact(),
        ArtifactInput::Sha256(digest),
    ] {
        sigstore::verify(&bundle, &artifact, &default_identity(), &production())
            .unwrap_or_else(|e| panic!("{artifact:?}: {e}"));
    }
}

#[test]
fn issuer_mismatch_is_its_own_error() {
    let policy = SignerPolicy::Identity {
        issuer: "https://accounts.google.com".to_string(),
        identity: IdentityMatch::Exact(DEFAULT_IDENTITY.to_string()),
    };
    let err = sigstore::verify(
        &vector("happy-path-v0.3", "bundle.sigstore.json"),
        &default_artifact(),
        &policy,
        &production(),
    )
    .unwrap_err();
    assert!(matches!(err, SigstoreError::IssuerMismatch { .. }), "{err}");
}

#[test]
fn identity_exact_and_anchored_regex() {
    let bundle = vector("happy-path-v0.3", "bundle.sigstore.json");
    let run = |identity: IdentityMatch| {
        sigstore::verify(
            &bundle,
            &default_artifact(),
            &SignerPolicy::Identity {
                issuer: DEFAULT_ISSUER.to_string(),
                identity,
            },
            &production(),
        )
    };
    // A prefix is not the identity.
    let prefix = IdentityMatch::Exact("https://github.com/sigstore-conformance/".to_string());
    assert!(matches!(
        run(prefix),
        Err(SigstoreError::IdentityMismatch { .. })
    ));
    // An unanchored-looking regex is anchored: a substring match is not enough.
    let substring = IdentityMatch::regex("sigstore-conformance").unwrap();
    assert!(matches!(
        run(substring),
        Err(SigstoreError::IdentityMismatch { .. })
    ));
    let whole = IdentityMatch::regex(
        r"https://github\.com/sigstore-conformance/[^/]+/\.github/workflows/.*@refs/heads/main",
    )
    .unwrap();
    run(whole).expect("a regex covering the whole identity matches");
}

#[test]
fn keyless_bundle_with_a_key_policy_is_refused() {
    let key = ManagedKey::from_pem(
        std::str::from_utf8(&vector("managed-key-happy-path", "key.pub")).unwrap(),
    )
    .unwrap();
    let err = sigstore::verify(
        &vector("happy-path-v0.3", "bundle.sigstore.json"),
        &default_artifact(),
        &SignerPolicy::Key(key),
        &production(),
    )
    .unwrap_err();
    assert!(matches!(err, SigstoreError::MaterialKind(_)), "{err}");
}

/// `managed-key-wrong-key_fail` ships a key.pub that is not valid base64 (rejected while reading
/// the key); here a valid key that did not sign is refused by the signature check itself.
#[test]
fn managed_key_with_a_different_valid_key_is_refused() {
    let other = sigstore_crypto::KeyPair::generate_ecdsa_p256()
        .unwrap()
        .public_key_der()
        .unwrap()
        .to_pem();
    let key = ManagedKey::from_pem(&other).unwrap();
    let err = sigstore::verify(
        &vector("managed-key-happy-path", "bundle.sigstore.json"),
        &default_artifact(),
        &SignerPolicy::Key(key),
        &production(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SigstoreError::Signature(_) | SigstoreError::TransparencyLog(_)
        ),
        "{err}"
    );
}

/// The media type is not signed. A v0.3 bundle stripped of its inclusion proof and relabelled
/// v0.1 (where a SET alone is structurally enough) must still need the proof.
#[test]
fn media_type_relabel_cannot_drop_the_inclusion_proof() {
    for (case, media_type) in [
        (
            "happy-path-v0.1",
            "application/vnd.dev.sigstore.bundle+json;version=0.1",
        ),
        (
            "happy-path-v0.3",
            "application/vnd.dev.sigstore.bundle+json;version=0.1",
        ),
    ] {
        let bundle = edit(&vector(case, "bundle.sigstore.json"), |b| {
            b["mediaType"] = Value::from(media_type);
            b["verificationMaterial"]["tlogEntries"][0]
                .as_object_mut()
                .unwrap()
                .remove("inclusionProof");
        });
        let err = sigstore::verify(
            &bundle,
            &default_artifact(),
            &default_identity(),
            &production(),
        )
        .unwrap_err();
        assert!(
            matches!(err, SigstoreError::MissingInclusionProof(_)),
            "{case}: {err}"
        );
    }
}

#[test]
fn bundle_without_log_entries_is_refused() {
    let bundle = edit(&vector("happy-path-v0.3", "bundle.sigstore.json"), |b| {
        b["verificationMaterial"]["tlogEntries"] = Value::Array(vec![]);
    });
    let err = sigstore::verify(
        &bundle,
        &default_artifact(),
        &default_identity(),
        &production(),
    )
    .unwrap_err();
    assert!(
        matches!(err, SigstoreError::MissingInclusionProof(_)),
        "{err}"
    );
}

/// `bundle-with-root-cert_fail` is also refused for lacking a checkpoint. Here a valid v0.1
/// bundle gets the Fulcio root appended to its chain: the chain check alone must refuse it.
#[test]
fn certificate_chain_with_a_root_is_refused() {
    let root: Value = serde_json::from_str(sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT)
        .expect("embedded root is JSON");
    let fulcio_root = root["certificateAuthorities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|ca| ca["certChain"]["certificates"].as_array()?.last().cloned())
        .next_back()
        .expect("a Fulcio root certificate");
    let bundle = edit(&vector("happy-path-v0.1", "bundle.sigstore.json"), |b| {
        b["verificationMaterial"]["x509CertificateChain"]["certificates"]
            .as_array_mut()
            .unwrap()
            .push(fulcio_root);
    });
    let err = sigstore::verify(
        &bundle,
        &default_artifact(),
        &default_identity(),
        &production(),
    )
    .unwrap_err();
    assert!(
        matches!(err, SigstoreError::CertificateChainShape(_)),
        "{err}"
    );
}

/// `rekor2-timestamp-with-incorrect-time_fail` carries its timestamp as line-wrapped base64
/// (the README's `base64 response.tsr`), which our parser refuses outright. With the line breaks
/// removed, the check the vector is about must refuse it: a timestamp outside the certificate.
#[test]
fn timestamp_outside_certificate_validity_is_refused_on_its_own() {
    let case = "rekor2-timestamp-with-incorrect-time_fail";
    let bundle = edit(&vector(case, "bundle.sigstore.json"), |b| {
        let ts = &mut b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
            [0]["signedTimestamp"];
        let unwrapped: String = ts.as_str().unwrap().split_whitespace().collect();
        *ts = Value::from(unwrapped);
    });
    let root =
        sigstore::trusted_root_from_file(&vectors_dir().join(case).join("trusted_root.json"))
            .unwrap();
    let err =
        sigstore::verify(&bundle, &default_artifact(), &default_identity(), &root).unwrap_err();
    assert!(matches!(err, SigstoreError::Certificate(_)), "{err}");
}

/// `--staging` selects the embedded staging root: the one bundle signed on staging verifies with
/// it, and the production root refuses it.
#[test]
fn staging_bundle_verifies_only_with_the_staging_root() {
    let bundle = vector("bundle-from-wrong-instance_fail", "bundle.sigstore.json");
    let staging = sigstore::staging_root().expect("embedded staging root parses");
    sigstore::verify(&bundle, &default_artifact(), &default_identity(), &staging)
        .expect("valid on staging");
    let err = sigstore::verify(
        &bundle,
        &default_artifact(),
        &default_identity(),
        &production(),
    )
    .unwrap_err();
    assert!(matches!(err, SigstoreError::TransparencyLog(_)), "{err}");
}

/// Rekor v2 entries carry no integrated time, and sigstore-verify checks their checkpoint with
/// any log key that has started by now. The log must have been trusted when the signature was
/// timestamped: `rekor2-happy-path` with its log's validity window moved around that time.
#[test]
fn rekor_v2_log_must_be_valid_at_the_signing_time() {
    let case = "rekor2-happy-path";
    let bundle = vector(case, "bundle.sigstore.json");
    let log_id = "8w1amZ2S5mJIQkQmPxdMuOrL/oJkvFg9MnQXmeOCXck=";
    let with_window = |window: Value| {
        let root = edit(&vector(case, "trusted_root.json"), |r| {
            for log in r["tlogs"].as_array_mut().unwrap() {
                if log["logId"]["keyId"] == log_id {
                    log["publicKey"]["validFor"] = window.clone();
                }
            }
        });
        sigstore::TrustedRoot::from_json(std::str::from_utf8(&root).unwrap()).unwrap()
    };
    let run = |root: &sigstore::TrustedRoot| {
        sigstore::verify(&bundle, &default_artifact(), &default_identity(), root)
    };
    // The timestamp is 2025-06-12T12:02:20Z.
    run(&with_window(
        serde_json::json!({"start": "2025-04-16T00:00:00Z", "end": "2025-06-12T12:02:20Z"}),
    ))
    .expect("the window is closed: its end is included");
    for window in [
        serde_json::json!({"start": "2025-04-16T00:00:00Z", "end": "2025-06-12T12:02:19Z"}),
        serde_json::json!({"start": "2025-06-12T12:02:21Z"}),
    ] {
        let err = run(&with_window(window.clone())).unwrap_err();
        assert!(
            matches!(err, SigstoreError::LogOutsideValidity { .. }),
            "{window}: {err}"
        );
    }
}

/// The suite passes `--staging` to every call when it runs against staging, together with
/// `--trusted-root` for cases that ship one: the custom root wins, and `--staging` alone
/// selects the embedded staging root.
#[test]
fn client_accepts_staging_with_and_without_a_custom_root() {
    let run = |case: &str, extra: &[&str]| {
        let dir = vectors_dir().join(case);
        let mut args = vec![
            "verify-bundle".to_string(),
            "--staging".to_string(),
            "--bundle".to_string(),
            dir.join("bundle.sigstore.json").display().to_string(),
            "--certificate-identity".to_string(),
            DEFAULT_IDENTITY.to_string(),
            "--certificate-oidc-issuer".to_string(),
            DEFAULT_ISSUER.to_string(),
        ];
        args.extend(
            extra
                .iter()
                .map(|s| s.replace("{dir}", &dir.display().to_string())),
        );
        args.push(vectors_dir().join("a.txt").display().to_string());
        // Output captured: the expected failures print why on stderr, which is no error of
        // this test run.
        let out = Command::new(client())
            .args(args)
            .env("AGENTGATE", env!("CARGO_BIN_EXE_agentgate"))
            .output()
            .expect("the conformance client runs");
        let code = out.status.code();
        if code != Some(0) && code != Some(1) {
            panic!(
                "{case}: the client exited {code:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        code
    };
    assert_eq!(
        run(
            "rekor2-happy-path",
            &["--trusted-root", "{dir}/trusted_root.json"]
        ),
        Some(0)
    );
    assert_eq!(run("bundle-from-wrong-instance_fail", &[]), Some(0));
    assert_eq!(run("happy-path-v0.3", &[]), Some(1));
}
