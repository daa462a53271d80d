//! `agentgate verify` on keyless (Sigstore, Fulcio certificate) bundles, offline: real bundles
//! from the sigstore-conformance suite, signed by the conformance beacon's GitHub Actions
//! identity, verified against the embedded public-good root or the vector's own trusted root;
//! every wrong identity, issuer, artifact, commit or root refused with its code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const AGENTGATE: &str = env!("CARGO_BIN_EXE_agentgate");
/// The certificate identity (SAN) and issuer of the conformance vectors.
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
/// happy-path-intoto-in-dsse-v3: a SLSA provenance for a.txt, built from this commit.
const HAPPY_SUBJECT: &str =
    "sha256:a0cfc71271d6e278e57cd332ff957c3f7043fdda354c4cbb190a30d56efa01bf";
const HAPPY_COMMIT: &str = "ebff8dfbd609b7b22237c7719ce07f2dc7934f5f";

fn vector(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore-conformance/bundle-verify")
        .join(name)
}

fn happy_bundle() -> PathBuf {
    vector("happy-path-intoto-in-dsse-v3").join("bundle.sigstore.json")
}

fn verify(args: &[&str]) -> Output {
    // Run outside any repository: a full commit id must need none.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(AGENTGATE)
        .current_dir(dir.path())
        .arg("verify")
        .args(args)
        .output()
        .expect("run agentgate");
    eprintln!(
        "$ agentgate verify {}\nexit {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn refused(o: &Output, code: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    assert!(
        stderr(o).contains(&format!("not verified [{code}]")),
        "expected [{code}]: {}",
        stderr(o)
    );
}

#[test]
fn a_public_good_keyless_bundle_verifies_for_its_identity_and_commit() {
    let b = happy_bundle();
    let b = b.to_str().unwrap();
    let ok = verify(&[
        "--bundle",
        b,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--commit",
        HAPPY_COMMIT,
        HAPPY_SUBJECT,
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let text = stdout(&ok);
    assert!(
        text.contains("verified: https://slsa.dev/provenance/v1"),
        "{text}"
    );
    assert!(text.contains(&format!("signer       {IDENTITY}")), "{text}");
    assert!(text.contains(&format!("issuer       {ISSUER}")), "{text}");
    assert!(
        text.contains(&format!("commit       {HAPPY_COMMIT}")),
        "{text}"
    );

    let json = verify(&[
        "--bundle",
        b,
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--json",
        HAPPY_SUBJECT,
    ]);
    assert_eq!(json.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["signerIdentity"], IDENTITY);
    assert_eq!(v["signerIssuer"], ISSUER);
    assert_eq!(v["predicateType"], "https://slsa.dev/provenance/v1");
    assert!(v.get("signerKeyHint").is_none());
}

#[test]
fn a_keyless_bundle_is_refused_for_another_identity_issuer_artifact_or_commit() {
    let b = happy_bundle();
    let b = b.to_str().unwrap();
    let other_identity = "https://github.com/evil/app/.github/workflows/gate.yml@refs/heads/main";
    refused(
        &verify(&[
            "--bundle",
            b,
            "--certificate-identity",
            other_identity,
            "--certificate-oidc-issuer",
            ISSUER,
            HAPPY_SUBJECT,
        ]),
        "sigstore-identity-mismatch",
    );
    refused(
        &verify(&[
            "--bundle",
            b,
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            "https://gitlab.com",
            HAPPY_SUBJECT,
        ]),
        "sigstore-issuer-mismatch",
    );
    refused(
        &verify(&[
            "--bundle",
            b,
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            &format!("sha256:{}", "0".repeat(64)),
        ]),
        "sigstore-artifact-mismatch",
    );
    refused(
        &verify(&[
            "--bundle",
            b,
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "--commit",
            &"1".repeat(40),
            HAPPY_SUBJECT,
        ]),
        "commit-mismatch",
    );
    // A public key cannot verify a certificate bundle.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(AGENTGATE)
        .args(["keygen", "--out"])
        .arg(dir.path().join("k"))
        .output()
        .unwrap();
    assert!(out.status.success());
    refused(
        &verify(&[
            "--bundle",
            b,
            "--key",
            dir.path().join("k.pub").to_str().unwrap(),
            HAPPY_SUBJECT,
        ]),
        "bundle-not-key-based",
    );
}

#[test]
fn identity_regexp_must_match_the_whole_identity() {
    let b = happy_bundle();
    let b = b.to_str().unwrap();
    let with = |re: &str| {
        verify(&[
            "--bundle",
            b,
            "--certificate-identity-regexp",
            re,
            "--certificate-oidc-issuer",
            ISSUER,
            HAPPY_SUBJECT,
        ])
    };
    let ok = with(r"https://github\.com/sigstore-conformance/.*@refs/heads/main");
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    // Matching a part is not enough: the pattern is anchored at both ends.
    refused(&with("sigstore-conformance"), "sigstore-identity-mismatch");
    refused(
        &with(r"https://github\.com/sigstore-conformance/"),
        "sigstore-identity-mismatch",
    );
    // Nor can it close the anchoring group early: such a pattern is refused as invalid.
    let out = with("x)|(?:.*");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_custom_trusted_root_is_used_only_when_given() {
    let dir = vector("intoto-with-custom-trust-root");
    let bundle = dir.join("bundle.sigstore.json");
    let root = dir.join("trusted_root.json");
    let artifact = dir.join("artifact");
    let args = |root: Option<&Path>| {
        let mut a = vec![
            "--bundle".to_string(),
            bundle.display().to_string(),
            "--certificate-identity".to_string(),
            IDENTITY.to_string(),
            "--certificate-oidc-issuer".to_string(),
            ISSUER.to_string(),
        ];
        if let Some(r) = root {
            a.push("--trusted-root".to_string());
            a.push(r.display().to_string());
        }
        a.push(artifact.display().to_string());
        a
    };
    let run = |a: Vec<String>| verify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let ok = run(args(Some(&root)));
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    // Under the embedded public-good root, the custom CA and TSA mean nothing.
    let out = run(args(None));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not verified [sigstore-"),
        "{}",
        stderr(&out)
    );
    // And the public-good bundle does not verify under the custom root.
    let out = verify(&[
        "--bundle",
        happy_bundle().to_str().unwrap(),
        "--certificate-identity",
        IDENTITY,
        "--certificate-oidc-issuer",
        ISSUER,
        "--trusted-root",
        root.to_str().unwrap(),
        HAPPY_SUBJECT,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// Keys and an identity may be trusted together (a note can hold both kinds); what cannot
/// name a signer is a usage error.
#[test]
fn signer_arguments_that_cannot_name_a_signer_are_usage_errors() {
    let b = happy_bundle();
    let b = b.to_str().unwrap();
    for args in [
        // None.
        vec!["--bundle", b, HAPPY_SUBJECT],
        // Exact and regex.
        vec![
            "--bundle",
            b,
            "--certificate-identity",
            IDENTITY,
            "--certificate-identity-regexp",
            ".*",
            "--certificate-oidc-issuer",
            ISSUER,
            HAPPY_SUBJECT,
        ],
        // An identity without its issuer.
        vec![
            "--bundle",
            b,
            "--certificate-identity",
            IDENTITY,
            HAPPY_SUBJECT,
        ],
        // An issuer without an identity.
        vec![
            "--bundle",
            b,
            "--certificate-oidc-issuer",
            ISSUER,
            HAPPY_SUBJECT,
        ],
    ] {
        let out = verify(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // An invalid regex is a usage error, not a verdict.
    let out = verify(&[
        "--bundle",
        b,
        "--certificate-identity-regexp",
        "(",
        "--certificate-oidc-issuer",
        ISSUER,
        HAPPY_SUBJECT,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
