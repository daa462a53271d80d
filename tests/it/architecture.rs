//! The dependency rules of ARCHITECTURE.md, checked: which agentgate crate may use which, the
//! dependencies only some crates may have, and that git runs only through agentgate-git. The
//! compiler keeps a crate from using what its manifest does not declare; this keeps the
//! manifests from quietly growing the edges the design rules out.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// For each library crate: the agentgate crates it may depend on, and dependencies it must not
/// have (git access, the command line, keyless signing's network stack).
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "agentgate-formats",
        &[],
        &["git2", "clap", "anyhow", "tokio", "sigstore-sign"],
    ),
    (
        "agentgate-git",
        &[],
        &[
            "clap",
            "anyhow",
            "tokio",
            "sigstore-sign",
            "sigstore-verify",
        ],
    ),
    (
        "agentgate-policy",
        &["agentgate-formats", "agentgate-git"],
        &["git2", "clap", "anyhow", "tokio", "sigstore-sign"],
    ),
    (
        "agentgate-keyless",
        &["agentgate-formats"],
        &["git2", "clap", "anyhow"],
    ),
    (
        "agentgate-fuzz-targets",
        &["agentgate-formats", "agentgate-git", "agentgate-policy"],
        &["git2", "clap", "tokio", "sigstore-sign"],
    ),
];

fn manifest(path: &Path) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names under `[dependencies]` (normal dependencies: what the crate's own code links).
fn dependencies(m: &toml::Table) -> Vec<(String, toml::Value)> {
    m.get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[test]
fn crates_depend_only_as_the_architecture_allows() {
    for (name, allowed, forbidden) in RULES {
        let path = Path::new(ROOT).join("crates").join(name).join("Cargo.toml");
        let deps = dependencies(&manifest(&path));
        assert!(!deps.is_empty(), "{name}: no dependencies read");
        for (dep, _) in &deps {
            if dep.starts_with("agentgate") {
                assert!(
                    allowed.contains(&dep.as_str()),
                    "{name} must not depend on {dep}"
                );
            }
            assert!(
                !forbidden.contains(&dep.as_str()),
                "{name} must not depend on {dep}"
            );
        }
    }
}

#[test]
fn the_binary_reaches_git_and_keyless_signing_only_through_their_crates() {
    let m = manifest(&Path::new(ROOT).join("Cargo.toml"));
    let deps = dependencies(&m);
    for (dep, spec) in &deps {
        assert!(
            !["git2", "tokio", "sigstore-sign", "sigstore-verify"].contains(&dep.as_str()),
            "the binary must not depend on {dep} itself"
        );
        if dep == "agentgate-keyless" {
            assert_eq!(
                spec.get("optional").and_then(toml::Value::as_bool),
                Some(true),
                "keyless signing must stay optional: the hook's build leaves it out"
            );
        }
    }
    let default: Vec<&str> = m["features"]["default"]
        .as_array()
        .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(default, ["keyless-sign", "gate", "trust-root-update"]);
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn only_agentgate_git_runs_git_or_uses_libgit2() {
    let mut dirs = vec![Path::new(ROOT).join("src")];
    for (name, _, _) in RULES.iter().filter(|(n, _, _)| *n != "agentgate-git") {
        dirs.push(Path::new(ROOT).join("crates").join(name).join("src"));
    }
    let mut checked = 0;
    for dir in dirs {
        for file in sources(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in ["Command::new(\"git\")", "git2::"] {
                assert!(
                    !text.contains(needle),
                    "{} has {needle}: repositories are agentgate-git's",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} source files found");
}
