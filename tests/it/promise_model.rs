//! The hook's decisions judged against the promise (SPEC.md, "The promise") by randomized push
//! sequences, and the sequences that once broke it, pinned.
//!
//! `AGENTGATE_MODEL_SEED=7` (or `7,9,12`) runs those seeds instead of the default list,
//! `AGENTGATE_MODEL_PUSHES=200` sets the pushes per seed. The summary is printed (see it with
//! `cargo test --test it promise_model:: -- --nocapture`) and written to target/promise-model.txt;
//! the first violation of each class (up to four) is shrunk and written as a bash script to
//! target/promise-model-repro-N.sh (shrinking takes at most `AGENTGATE_MODEL_SHRINK_SECS`,
//! default 120, in all; 0 skips it).

use std::time::{Duration, Instant};

use crate::promise::ops::{
    Bind, Hook, Op, Policy, Require, Scope, Site, Style, TreeSpec, Update, Value,
};
use crate::promise::oracle::protected;
use crate::promise::world::World;

fn target_dir() -> std::path::PathBuf {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

fn env_list(name: &str) -> Option<Vec<u64>> {
    let v = std::env::var(name).ok()?;
    let list: Vec<u64> = v
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: want numbers"))
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

#[test]
fn promise_holds_under_random_pushes() {
    let seeds = env_list("AGENTGATE_MODEL_SEED").unwrap_or(crate::promise::DEFAULT_SEEDS.to_vec());
    let pushes = env_list("AGENTGATE_MODEL_PUSHES")
        .map(|v| v[0] as usize)
        .unwrap_or(crate::promise::DEFAULT_PUSHES);
    let t = Instant::now();
    let results = crate::promise::run_all(&seeds, pushes);
    let mut report = crate::promise::summary(&results, t.elapsed().as_secs_f64());
    let shrink_secs = env_list("AGENTGATE_MODEL_SHRINK_SECS").map_or(120, |v| v[0]);
    for (i, (class, seed, script)) in
        crate::promise::repros(&results, Duration::from_secs(shrink_secs))
            .iter()
            .enumerate()
    {
        let path = target_dir().join(format!("promise-model-repro-{}.sh", i + 1));
        let _ = std::fs::write(&path, script);
        report.push_str(&format!(
            "\n=== {class}: seed {seed}, shrunk ({}):\n{script}",
            path.display()
        ));
    }
    println!("{report}");
    let _ = std::fs::write(target_dir().join("promise-model.txt"), &report);
    let violations: usize = results.iter().map(|r| r.violations.len()).sum();
    let pushed: usize = results.iter().map(|r| r.counts.pushes).sum();
    let accepted: usize = results.iter().map(|r| r.counts.accepted).sum();
    assert!(
        pushed >= seeds.len() * pushes,
        "fewer pushes than asked for"
    );
    // A run that accepts nothing proves nothing.
    assert!(
        accepted * 5 >= pushed,
        "only {accepted} of {pushed} pushes accepted"
    );
    assert_eq!(violations, 0, "the promise was broken:\n{report}");
}

fn commit(id: usize, parents: &[usize], style: Style) -> Op {
    Op::Commit {
        id,
        parents: parents.to_vec(),
        tree: TreeSpec::Fresh,
        style,
        date: 1_767_225_600 + 60 * id as i64,
    }
}

fn push(updates: &[(&str, Value)], notes: bool) -> Op {
    Op::Push {
        clone: Site::Dev,
        updates: updates
            .iter()
            .map(|(dst, value)| Update {
                dst: dst.to_string(),
                value: *value,
            })
            .collect(),
        notes,
    }
}

fn policy(scope: Scope, require: Require) -> Policy {
    Policy {
        scope,
        require,
        bind: Bind::Commit,
        allow_non_fast_forward: false,
        allow_delete: false,
        hook: Hook::PreReceive,
    }
}

/// repro-4 (issue 11): main's attested tip M sits over an unattested agent commit A; a release
/// tag, an annotated tag or a release branch created on A names code no gate built. Each must
/// be refused, under `agent-commits` and `all-commits`.
#[test]
fn repro_4_new_protected_ref_on_agent_commit_under_attested_tip() {
    let mut failures = Vec::new();
    for require in [Require::AgentCommits, Require::AllCommits] {
        for (dst, annotated) in [
            ("refs/tags/v1", false),
            ("refs/tags/v1", true),
            ("refs/heads/release/1.x", false),
        ] {
            let mut w = World::new(policy(Scope::Tip, require));
            let mut ops = vec![commit(0, &[], Style::Human)];
            if require == Require::AllCommits {
                ops.push(Op::Sign {
                    commit: 0,
                    trusted: true,
                    passed: true,
                    clone: Site::Dev,
                });
            }
            ops.push(push(&[("refs/heads/main", Value::Commit(0))], true));
            ops.extend([
                commit(1, &[0], Style::Trailer),
                commit(2, &[1], Style::Human),
                Op::Sign {
                    commit: 2,
                    trusted: true,
                    passed: true,
                    clone: Site::Dev,
                },
                push(&[("refs/heads/main", Value::Commit(2))], true),
            ]);
            let value = if annotated {
                ops.push(Op::Tag { id: 0, commit: 1 });
                Value::Tag(0)
            } else {
                Value::Commit(1)
            };
            ops.push(push(&[(dst, value)], false));
            for op in ops {
                assert!(w.apply(op));
            }
            let srv = w.srv();
            // The sequence only means something if main really moved to the attested tip.
            assert_eq!(
                w.env.rev(&srv, "refs/heads/main").as_deref(),
                Some(w.sha(2)),
                "{require:?}: main should be at the attested tip"
            );
            let what = format!(
                "{require:?} {dst}{}",
                if annotated { " (annotated)" } else { "" }
            );
            if w.env.rev(&srv, dst).is_some() {
                failures.push(format!("{what}: accepted"));
            }
            for f in &w.found {
                failures.push(format!("{what}: {}", w.describe(&f.violation)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "promise broken:\n{}",
        failures.join("\n")
    );
}

/// The model's record of which commits are agent commits agrees with detection
/// (`agentgate inspect`), so the oracle's verdicts are about decisions, not about detection.
#[test]
fn model_commit_styles_agree_with_detection() {
    let mut w = World::new(policy(Scope::Tip, Require::AgentCommits));
    for (id, style) in Style::ALL.iter().enumerate() {
        let parents: Vec<usize> = id.checked_sub(1).into_iter().collect();
        assert!(w.apply(commit(id, &parents, *style)));
    }
    let dev = w.path().join("dev");
    for (id, style) in Style::ALL.iter().enumerate() {
        let out = w
            .env
            .agentgate(&dev, &["inspect", "--json", &format!("{}^!", w.sha(id))]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        assert_eq!(v["agent"], style.is_agent(), "{style:?}: {v}");
    }
}

#[test]
fn protected_globs_as_the_oracle_reads_them() {
    for (name, want) in [
        ("refs/heads/main", true),
        ("refs/heads/main2", false),
        ("refs/heads/release/1", true),
        ("refs/heads/release/", false),
        ("refs/heads/release/a/b", false),
        ("refs/tags/v1", true),
        ("refs/tags/v", true),
        ("refs/tags/v1/x", false),
        ("refs/tags/nightly", false),
        ("refs/heads/master", false),
        ("refs/namespaces/ns/refs/heads/main", true),
        ("refs/namespaces/a/refs/namespaces/b/refs/tags/v2", true),
        ("refs/namespaces/ns/refs/heads/dev", false),
        ("refs/namespaces//refs/heads/main", false),
        ("refs/notes/agentgate", false),
    ] {
        assert_eq!(protected(name), want, "{name}");
    }
}
