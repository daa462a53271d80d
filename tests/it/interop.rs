//! Third-party verifiers accept what agentgate signs and reject what was tampered with:
//! sigstore-js (`@sigstore/verify`, key finder, thresholds 0) and securesystemslib (DSSE).
//!
//! Runs only with `AGENTGATE_INTEROP=1` (after `scripts/install-interop-deps.sh`); with the
//! variable set, missing tools are a failure, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{b64, Sandbox};
use base64::Engine as _;

const INTEROP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");

fn enabled(test: &str) -> bool {
    match std::env::var("AGENTGATE_INTEROP") {
        Ok(v) if v == "1" => true,
        _ => {
            crate::common::skip(
                test,
                "set AGENTGATE_INTEROP=1 (after scripts/install-interop-deps.sh) to run it",
            );
            false
        }
    }
}

struct Tools {
    node: PathBuf,
    python: PathBuf,
}

fn tools() -> Tools {
    let node = PathBuf::from("node");
    let ok = Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "AGENTGATE_INTEROP=1 but `node` does not run");
    assert!(
        Path::new(INTEROP).join("node_modules/@sigstore/verify").is_dir(),
        "AGENTGATE_INTEROP=1 but tests/interop/node_modules is missing: run scripts/install-interop-deps.sh"
    );
    let python = Path::new(INTEROP).join(".venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import securesystemslib.dsse, cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "AGENTGATE_INTEROP=1 but securesystemslib is not installed in tests/interop/.venv: run scripts/install-interop-deps.sh");
    Tools { node, python }
}

/// Exit code of each verifier on `bundle` with `key` (0 accepted, 1 rejected).
fn run_all(t: &Tools, sb: &Sandbox, bundle: &str, key: &str) -> [(&'static str, i32); 2] {
    let run = |mut cmd: Command| {
        let out = cmd.current_dir(sb.dir.path()).output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        eprintln!(
            "{cmd:?} -> {code}: {}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        code
    };
    let mut js = Command::new(&t.node);
    js.arg(Path::new(INTEROP).join("verify-sigstore-js.cjs"))
        .args([bundle, key, "app.bin"]);
    let mut py = Command::new(&t.python);
    py.arg(Path::new(INTEROP).join("verify-securesystemslib.py"))
        .args([bundle, key]);
    [("sigstore-js", run(js)), ("securesystemslib", run(py))]
}

#[test]
fn third_party_verifiers_accept_ours_and_reject_tampered() {
    if !enabled("third_party_verifiers_accept_ours_and_reject_tampered") {
        return;
    }
    let t = tools();
    let sb = Sandbox::new();
    sb.keygen("p256-other", &[], &[]);
    for (name, extra) in [("p256", &[][..]), ("ed", &["--ed25519"][..])] {
        sb.keygen(name, extra, &[]);
        let out = format!("att-{name}");
        sb.sign(&format!("{name}.key"), &out, &[], &[]);
        let key = format!("{name}.pub");
        for file in ["provenance.sigstore.json", "test-result.sigstore.json"] {
            let bundle = format!("{out}/{file}");
            for (tool, code) in run_all(&t, &sb, &bundle, &key) {
                assert_eq!(code, 0, "{tool} rejected our {name} {file}");
            }
            // Tampered payload, signature kept.
            let tampered = format!("{out}/tampered-{file}");
            sb.edit_bundle(&bundle, &tampered, |v| {
                let p = b64()
                    .decode(v["dsseEnvelope"]["payload"].as_str().unwrap())
                    .unwrap();
                let mut st: serde_json::Value = serde_json::from_slice(&p).unwrap();
                st["predicateType"] = "https://example.com/other".into();
                v["dsseEnvelope"]["payload"] =
                    b64().encode(serde_json::to_vec(&st).unwrap()).into();
            });
            for (tool, code) in run_all(&t, &sb, &tampered, &key) {
                assert_eq!(code, 1, "{tool} accepted a tampered {name} {file}");
            }
        }
    }
    // A key that did not sign.
    for (tool, code) in run_all(
        &t,
        &sb,
        "att-p256/provenance.sigstore.json",
        "p256-other.pub",
    ) {
        assert_eq!(code, 1, "{tool} accepted a bundle under the wrong key");
    }
    // The same, with the hint and keyid rewritten to name that key: only the signature stops it.
    let hint = agentgate_formats::PublicKey::from_pem(
        &std::fs::read_to_string(sb.path("p256-other.pub")).unwrap(),
    )
    .unwrap()
    .hint()
    .to_string();
    sb.edit_bundle("att-p256/provenance.sigstore.json", "renamed.json", |v| {
        v["verificationMaterial"]["publicKey"]["hint"] = hint.clone().into();
        v["dsseEnvelope"]["signatures"][0]["keyid"] = hint.clone().into();
    });
    for (tool, code) in run_all(&t, &sb, "renamed.json", "p256-other.pub") {
        assert_eq!(
            code, 1,
            "{tool} accepted a bundle relabelled for the wrong key"
        );
    }
}

/// The server's promotion record (a VSA in a key-based bundle, from a real push) verifies in
/// sigstore-js and securesystemslib with the server's public key, and not with another.
#[test]
fn third_party_verifiers_accept_the_servers_promotion_record() {
    if !enabled("third_party_verifiers_accept_the_servers_promotion_record") {
        return;
    }
    let t = tools();
    let s = crate::promotion::setup("");
    let tip = s.env.rev(&s.work, "HEAD").unwrap();
    let note = s.note(&tip).expect("a promotion record");
    let bundle = s.env.path().join("promotion.sigstore.json");
    std::fs::write(&bundle, &note[0]).unwrap();
    for (key, want) in [("server.pub", 0), ("gate.pub", 1)] {
        let key = s.env.path().join(key);
        // No artifact: the subject is a commit (the VSA's gitCommit), not a file.
        let mut js = Command::new(&t.node);
        js.arg(Path::new(INTEROP).join("verify-sigstore-js.cjs"))
            .args([&bundle, &key]);
        let mut py = Command::new(&t.python);
        py.arg(Path::new(INTEROP).join("verify-securesystemslib.py"))
            .args([&bundle, &key]);
        for (tool, mut cmd) in [("sigstore-js", js), ("securesystemslib", py)] {
            let out = cmd.output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(want),
                "{tool} on the promotion record with {}: {}{}",
                key.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
