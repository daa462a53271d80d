//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*` (libFuzzer, nightly) and
//! `tests/it/fuzz_smoke.rs` (the committed corpora plus deterministic mutations, stable), so CI
//! replays exactly what the fuzzers run. Not an API: every function takes arbitrary bytes and
//! must return without panicking, whatever they are.

use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};

use agentgate_formats::bundle::key_bundle_json;
use agentgate_formats::dsse::{pae, PAYLOAD_TYPE_INTOTO};
use agentgate_formats::keys::SigningKey;
use agentgate_formats::sigstore::{self, ArtifactInput, IdentityMatch, SignerPolicy, TrustedRoot};
use agentgate_formats::statement::PREDICATE_SLSA_PROVENANCE_V1;
use agentgate_formats::verify::{self as v, VerifiedAttestation, VerifiedSigner};
use agentgate_git::object::{parse_links, read_commit, read_tag};
use agentgate_git::ObjectId;
use agentgate_policy::config::Policy;
use agentgate_policy::decision::{parse_updates, valid_refname};
use agentgate_policy::trailers::{self, TrailerAlias, TrailerConfig};

/// The fixed Ed25519 key the bundle target verifies with (test-only, published here on
/// purpose: the seed bundles in `fuzz/corpus/bundle/` are signed with it).
pub const FUZZ_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEILNFR6U5IiVRWHQj1BwJUh9zKZGj5g/gPTy3+r1UpfVN
-----END PRIVATE KEY-----
";

/// A target: arbitrary bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The targets, by name (the fuzz target and corpus directory names).
pub const TARGETS: &[(&str, Target)] = &[
    ("policy", policy),
    ("bundle", bundle),
    ("sigstore", sigstore_bundle),
    ("stdin", stdin),
    ("trailers", trailers),
    ("object", object),
    ("pack", pack),
];

fn fuzz_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    // The constant is a valid key; the unit test below proves it.
    KEY.get_or_init(|| SigningKey::from_pem(FUZZ_KEY_PEM, None).expect("FUZZ_KEY_PEM parses"))
}

/// Sign `payload` (arbitrary bytes, claimed to be an in-toto statement) with the fuzz key.
pub fn sign_payload(payload: &[u8]) -> String {
    let key = fuzz_key();
    let signature = key
        .sign(&pae(PAYLOAD_TYPE_INTOTO, payload))
        .unwrap_or_default();
    key_bundle_json(
        key.public_key().hint(),
        PAYLOAD_TYPE_INTOTO,
        payload,
        &signature,
    )
}

/// `config::Policy::parse` on arbitrary text. Key paths are resolved against a directory that
/// does not exist, so a fuzzed policy reads no real key file.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Policy::parse(text, Path::new("/nonexistent/agentgate-fuzz/policy.toml")) {
        // Whatever parsed must be usable: every protected pattern matches without panicking.
        for r in &p.protect.refs {
            let _ = r.matches("refs/heads/main");
        }
        assert!(!p.protect.refs.is_empty(), "a policy that protects nothing");
        assert!(p.digest.starts_with("sha256:"));
    }
}

/// The key-based bundle verifier and every attestation check. The first byte picks the mode:
/// even, the rest is a whole bundle verified with the fixed key; odd, the rest is a statement
/// payload that is signed with the fixed key first, so the statement parser and the `check_*`
/// functions behind the signature are reached.
pub fn bundle(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = [fuzz_key().public_key().clone()];
    let result = if mode % 2 == 0 {
        v::verify_bundle(rest, &keys)
    } else {
        v::verify_bundle(sign_payload(rest).as_bytes(), &keys)
    };
    match result {
        Ok(att) => {
            assert!(matches!(att.signer(), VerifiedSigner::Key { index: 0, .. }));
            run_checks(&att);
        }
        Err(e) => {
            // Every error has a stable code and renders.
            assert!(!e.code().as_str().is_empty());
            let _ = e.to_string();
        }
    }
}

fn run_checks(att: &VerifiedAttestation) {
    let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let _ = v::check_artifact(att, &"e".repeat(64));
    let _ = v::check_has_artifact(att);
    let _ = v::check_commit(att, &"c".repeat(40));
    let _ = v::check_tree(att, &"d".repeat(40));
    let _ = v::check_predicate_type(att, PREDICATE_SLSA_PROVENANCE_V1);
    let _ = v::check_tests_passed(att);
    for (age, skew) in [(0, 0), (3600, 300), (i64::MAX / 1000, i64::MAX / 1000)] {
        let _ = v::check_age(
            att,
            Duration::try_seconds(age).unwrap_or(Duration::MAX),
            Duration::try_seconds(skew).unwrap_or(Duration::MAX),
            now,
        );
    }
    let _ = att.claimed_time();
    // The subjects' own digests bind: what the statement names, the checks find. A provenance
    // binds only the source it declares.
    match att.statement().provenance() {
        None => {
            for s in &att.statement().subject {
                if let Some(c) = s.digest.get("gitCommit") {
                    assert!(
                        v::check_commit(att, c).is_ok(),
                        "{c:?} not found by check_commit"
                    );
                }
            }
        }
        Some(Ok(p)) => {
            if let Ok(src) = v::declared_source(&p) {
                assert!(v::check_commit(att, &src.commit).is_ok(), "{src:?}");
            }
        }
        Some(Err(_)) => {}
    }
}

fn public_good() -> Option<&'static TrustedRoot> {
    static ROOT: OnceLock<Option<TrustedRoot>> = OnceLock::new();
    ROOT.get_or_init(|| sigstore::public_good_root().ok())
        .as_ref()
}

/// `attest::sigstore::verify` (keyless) on arbitrary bytes with the embedded public-good root.
pub fn sigstore_bundle(data: &[u8]) {
    let Some(root) = public_good() else {
        return;
    };
    let policy = SignerPolicy::Identity {
        issuer: "https://token.actions.githubusercontent.com".into(),
        identity: IdentityMatch::Exact(
            "https://github.com/acme/app/.github/workflows/gate.yml@refs/heads/main".into(),
        ),
    };
    match sigstore::verify(data, &ArtifactInput::Sha256([0; 32]), &policy, root) {
        // A bundle made of fuzzed bytes cannot carry a valid Fulcio chain for that identity.
        Ok(v) => panic!("a fuzzed bundle verified: {:?}", v.signer),
        Err(e) => {
            assert!(!e.code().as_str().is_empty());
            let _ = e.to_string();
        }
    }
}

/// The hook's stdin parser; what it accepts must round-trip.
pub fn stdin(data: &[u8]) {
    let Ok(updates) = parse_updates(data) else {
        return;
    };
    assert!(!updates.is_empty());
    let mut again = String::new();
    for u in &updates {
        assert!(valid_refname(&u.refname));
        assert!(!(u.old.is_zero() && u.new.is_zero()));
        again.push_str(&format!(
            "{} {} {}\n",
            u.old.as_str(),
            u.new.as_str(),
            u.refname
        ));
    }
    let reparsed = parse_updates(again.as_bytes());
    assert_eq!(reparsed.ok().as_ref(), Some(&updates), "no round trip");
}

fn trailer_configs() -> Vec<TrailerConfig> {
    let default = TrailerConfig::default();
    let mut separators = TrailerConfig {
        separators: ":#=".into(),
        ..TrailerConfig::default()
    };
    separators.aliases = vec![TrailerAlias {
        name: "foo".into(),
        key: Some("Reviewed-by".into()),
    }];
    let comment = TrailerConfig {
        comment: "//".into(),
        configured_keys: vec!["Co-authored-by".into(), "ack".into()],
        ..TrailerConfig::default()
    };
    vec![default, separators, comment]
}

/// git's `isspace`.
fn is_git_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The trailer parser: never panics, deterministic, and returns what git would print
/// (non-empty single-line trimmed keys that are tokens or configured keys), with a trailer
/// block of whole lines; agent detection and git-ai's note reader on the same input never
/// panic.
pub fn trailers(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let configs = trailer_configs();
    let Some(cfg) = configs.get(usize::from(selector) % configs.len()) else {
        return;
    };
    let message = String::from_utf8_lossy(rest);
    let parsed = trailers::parse(&message, cfg);
    for t in &parsed {
        assert!(!t.key.is_empty(), "empty key in {t:?}");
        assert!(
            !t.key.contains('\n') && !t.value.contains('\n'),
            "newline in {t:?}"
        );
        assert!(
            !t.key.starts_with(is_git_space) && !t.key.ends_with(is_git_space),
            "{t:?}"
        );
        assert!(
            !t.value.starts_with(is_git_space) && !t.value.ends_with(is_git_space),
            "{t:?}"
        );
        let configured = cfg
            .aliases
            .iter()
            .any(|a| a.key.as_deref() == Some(t.key.as_str()));
        assert!(
            configured
                || t.key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "key is neither a token nor a configured key: {t:?}"
        );
    }
    assert_eq!(
        trailers::parse(&message, cfg),
        parsed,
        "parse is not deterministic"
    );
    // The trailer block lies in the message, on line boundaries, and holds the trailers.
    let block = trailers::parse_block(&message, cfg);
    assert_eq!(block.trailers, parsed, "parse_block and parse disagree");
    let r = block.block.clone();
    assert!(r.start <= r.end && r.end <= message.len(), "{r:?}");
    assert!(
        r.is_empty()
            || ((r.start == 0 || message.as_bytes().get(r.start - 1) == Some(&b'\n'))
                && message.get(r.clone()).is_some()),
        "block {r:?} is not whole lines"
    );
    // Detection over the same message (as a commit's) never panics; git-ai's note reader
    // neither, on the same bytes.
    let commit = agentgate_git::Commit {
        id: ObjectId::zero(20),
        tree: ObjectId::zero(20),
        parents: vec![],
        author: agentgate_git::Signature {
            name: "A (aider)".into(),
            email: "1+claude[bot]@users.noreply.github.com".into(),
            time: 0,
        },
        committer: agentgate_git::Signature {
            name: "c".into(),
            email: "c@example.com".into(),
            time: 0,
        },
        encoding: None,
        message: message.to_string(),
    };
    let detector = detector();
    let found = detector.detect(&commit, &block);
    assert!(found.iter().all(|m| !m.rule.is_empty()));
    let _ = agentgate_policy::git_ai::parse(rest);
}

/// The `known-agents` detector, built once.
fn detector() -> &'static agentgate_policy::detect::Detector {
    static D: OnceLock<agentgate_policy::detect::Detector> = OnceLock::new();
    D.get_or_init(|| {
        agentgate_policy::detect::Detector::new(&agentgate_policy::detect::Detect::known_agents())
    })
}

/// The commit and tag reader (`object::parse_links`, `read_commit`, `read_tag`) on a raw object.
/// The first byte picks the repository's hash: even, SHA-1; odd, SHA-256. What `read_commit`
/// accepts, the walk reads the same way and holds no NUL; what `read_tag` accepts names an id
/// of the repository's length.
pub fn object(data: &[u8]) {
    let Some((&hash, raw)) = data.split_first() else {
        return;
    };
    let id = ObjectId::zero(if hash % 2 == 0 { 20 } else { 32 });
    let links = parse_links(&id, raw);
    match read_commit(&id, raw) {
        Ok(c) => {
            let Ok(links) = links.as_ref() else {
                panic!("read_commit accepts what the walk refuses: {links:?}");
            };
            assert_eq!(c.tree, links.tree.to_object_id(), "tree");
            let parents: Vec<_> = links.parents.iter().map(|p| p.to_object_id()).collect();
            assert_eq!(c.parents, parents, "parents");
            assert!(!raw.contains(&0), "read_commit accepted a NUL byte");
            for text in [
                &c.author.name,
                &c.author.email,
                &c.committer.name,
                &c.committer.email,
                &c.message,
            ] {
                assert!(!text.contains('\0'), "a NUL in what read_commit returns");
            }
            for text in [
                &c.author.name,
                &c.author.email,
                &c.committer.name,
                &c.committer.email,
            ] {
                assert!(!text.contains('\n'), "a line feed in an identity: {text:?}");
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match read_tag(&id, raw) {
        Ok(t) => {
            assert_eq!(
                t.object.as_str().len(),
                id.as_str().len(),
                "tag object id length"
            );
            assert!(!raw.contains(&0), "read_tag accepted a NUL byte");
            assert!(!t.name.contains('\n'));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// The pack reader (`agentgate_git`'s `pack.rs`, whole commits read from pack files for long
/// walks): the input is a 2-byte big-endian length, that many bytes of `.idx`, then the
/// `.pack`. Written to a scratch objects directory of this process and thread, then opened
/// and read as a walk reads it.
pub fn pack(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (idx, pack) = rest.split_at(len);
    let dir = std::env::temp_dir().join(format!(
        "agentgate-fuzz-pack-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    // Scratch files: an error writing them is the machine's, not the reader's.
    let _ = agentgate_git::fuzz_pack(&dir, idx, pack);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzz_key_parses_and_a_signed_statement_verifies() {
        let st = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"gitCommit":"cccc"}}],"predicateType":"x","predicate":{}}"#;
        let b = sign_payload(st);
        let att = v::verify_bundle(b.as_bytes(), &[fuzz_key().public_key().clone()]).unwrap();
        assert!(v::check_commit(&att, "cccc").is_ok());
    }
}
