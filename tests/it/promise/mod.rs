//! A model-based check of the hook against the promise (SPEC.md, "The promise"): random
//! histories, attestations and pushes of several refs run for real (`git push` over file://
//! into a bare repository with the hook installed), judged after every push by an oracle that
//! shares no code with the hook. Violations fail; over-refusals (refused pushes the oracle
//! finds safe) are counted by cause.

pub mod gen;
pub mod ops;
pub mod oracle;
pub mod shell;
pub mod shrink;
pub mod world;

use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ops::Policy;
use world::{Counts, World};

/// Seeds run by default: eight consecutive ones cover every scope x require x bind.
pub const DEFAULT_SEEDS: [u64; 8] = [1, 2, 3, 4, 5, 6, 7, 8];
pub const DEFAULT_PUSHES: usize = 40;

/// What one seed's run found.
pub struct RunResult {
    pub seed: u64,
    pub policy: Policy,
    pub counts: Counts,
    /// Violations: (class, description with the script's variable names).
    pub violations: Vec<(String, String)>,
    /// The first violation of each class, ready to shrink.
    pub failing: Vec<shrink::Failing>,
    pub secs: f64,
}

pub fn run_seed(seed: u64, pushes: usize) -> RunResult {
    let t = Instant::now();
    let w = gen::run(seed, pushes);
    RunResult {
        seed,
        policy: w.policy.clone(),
        counts: w.counts.clone(),
        violations: w
            .found
            .iter()
            .map(|f| {
                (
                    f.class.clone(),
                    format!(
                        "{}{}\n    after: {}",
                        w.describe(&f.violation),
                        if f.clean {
                            " (the server kept the promise before)"
                        } else {
                            ""
                        },
                        w.ops[f.op].script()
                    ),
                )
            })
            .collect(),
        failing: {
            // Per class, the first violation made by a push on a server that kept the
            // promise, else the first one.
            let mut v: Vec<shrink::Failing> = Vec::new();
            for f in w.found.iter().filter(|f| f.clean).chain(&w.found) {
                if !v.iter().any(|x| x.class == f.class) {
                    v.push(shrink::Failing {
                        class: f.class.clone(),
                        r#ref: f.violation.r#ref().to_string(),
                        ops: w.ops[..=f.op].to_vec(),
                        inert: w.inert.iter().copied().filter(|&i| i <= f.op).collect(),
                        clean: f.clean,
                    });
                }
            }
            v
        },
        secs: t.elapsed().as_secs_f64(),
    }
}

/// Run the seeds on as many threads as the machine has cores.
pub fn run_all(seeds: &[u64], pushes: usize) -> Vec<RunResult> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(seeds.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else {
                    break;
                };
                let r = run_seed(seed, pushes);
                results.lock().expect("results").push(r);
            });
        }
    });
    let mut v = results.into_inner().expect("results");
    v.sort_by_key(|r| r.seed);
    v
}

pub fn summary(results: &[RunResult], secs: f64) -> String {
    let mut total = Counts::default();
    let mut s = String::new();
    let _ = writeln!(s, "promise model: {} runs in {secs:.1} s", results.len());
    let _ = writeln!(
        s,
        "{:>6} {:<82} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5}",
        "seed", "policy", "pushes", "accept", "refuse", "over", "viol", "secs"
    );
    let mut violations = 0;
    for r in results {
        total.add(&r.counts);
        violations += r.violations.len();
        let _ = writeln!(
            s,
            "{:>6} {:<82} {:>6} {:>6} {:>6} {:>6} {:>5} {:>5.1}",
            r.seed,
            r.policy.label(),
            r.counts.pushes,
            r.counts.accepted,
            r.counts.refused,
            r.counts.over_refusals,
            r.violations.len(),
            r.secs
        );
    }
    let _ = writeln!(
        s,
        "pushes run: {}, accepted: {}, refused by the hook: {}, failed in git: {}, violations: {}, \
         over-refusals: {} ({:.1}% of refusals)",
        total.pushes,
        total.accepted,
        total.refused,
        total.failed,
        violations,
        total.over_refusals,
        if total.refused == 0 {
            0.0
        } else {
            100.0 * total.over_refusals as f64 / total.refused as f64
        }
    );
    if !total.causes.is_empty() {
        let _ = writeln!(
            s,
            "over-refusals by cause (hook code, refused update, why it was safe):"
        );
        let mut causes: Vec<(&String, &usize)> = total.causes.iter().collect();
        causes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (cause, n) in causes {
            let _ = writeln!(s, "  {n:>5}  {cause}");
        }
    }
    if !total.failures.is_empty() {
        let _ = writeln!(s, "pushes git itself failed (no hook decision):");
        for (why, n) in &total.failures {
            let _ = writeln!(s, "  {n:>5}  {why}");
        }
    }
    let mut classes: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in results {
        for (c, _) in &r.violations {
            *classes.entry(c).or_default() += 1;
        }
    }
    if !classes.is_empty() {
        let _ = writeln!(s, "violations by class:");
        for (c, n) in &classes {
            let _ = writeln!(s, "  {n:>5}  {c}");
        }
    }
    for r in results {
        for (c, v) in &r.violations {
            let _ = writeln!(s, "VIOLATION seed {} [{c}]: {v}", r.seed);
        }
    }
    s
}

/// Up to four violations, one per class, each shrunk to a script: (class, seed, script).
/// Violations one push made on a server that kept the promise come first, and one of each
/// family (through the alias, in a namespace, the rest by class) before a second of any, so
/// that the scripts show different problems. `budget` is shared.
pub fn repros(results: &[RunResult], budget: Duration) -> Vec<(String, u64, String)> {
    let mut picked: Vec<(u64, &Policy, &shrink::Failing)> = Vec::new();
    for clean in [true, false] {
        for r in results {
            for f in r.failing.iter().filter(|f| f.clean || !clean) {
                if !picked.iter().any(|(_, _, c)| c.class == f.class) {
                    picked.push((r.seed, &r.policy, f));
                }
            }
        }
    }
    let family = |c: &str| {
        if c.contains("via alias") {
            "alias".to_string()
        } else if c.contains("namespaced") {
            "namespace".to_string()
        } else {
            c.to_string()
        }
    };
    let mut families = Vec::new();
    let (firsts, rest): (Vec<_>, Vec<_>) = picked.into_iter().partition(|(_, _, f)| {
        let fam = family(&f.class);
        let new = !families.contains(&fam);
        families.push(fam);
        new
    });
    let picked: Vec<_> = firsts.into_iter().chain(rest).take(4).collect();
    if budget.is_zero() || picked.is_empty() {
        return Vec::new();
    }
    let each = budget / picked.len() as u32;
    picked
        .into_iter()
        .map(|(seed, policy, f)| (f.class.clone(), seed, repro(seed, policy, f, each)))
        .collect()
}

/// Shrink a failing run and render it as a self-contained script.
pub fn repro(seed: u64, policy: &Policy, failing: &shrink::Failing, budget: Duration) -> String {
    let before = failing.ops.len();
    let class = failing.class.as_str();
    let (ops, replays) = shrink::shrink(policy, failing, budget);
    let w = World::replay(policy.clone(), &ops, class, failing.clean);
    let Some(first) = w.first(class) else {
        return format!("(seed {seed}: the shrunk sequence no longer fails; replay the seed)\n");
    };
    let title = format!(
        "agentgate promise model, seed {seed} (AGENTGATE_MODEL_SEED={seed}), shrunk from {before} to \
         {} operations in {replays} replays.\npolicy: {}\nexpected: {class}: {}{}\nrun: AG=path/to/agentgate bash this-script",
        first.op + 1,
        policy.label(),
        w.describe(&first.violation),
        if failing.clean {
            "\n(the server keeps the promise until the last push)"
        } else {
            ""
        }
    );
    let mut s = w.script(&title, first.op);
    s.push_str("\n# --- the server's refs: the promise is broken here\n");
    let _ = writeln!(
        s,
        "git -C \"$W/srv.git\" for-each-ref --format='%(refname) %(objectname:short) %(*objectname:short)' refs/heads refs/tags refs/namespaces"
    );
    let agents: Vec<String> = w
        .commits
        .iter()
        .filter(|(_, c)| c.style.is_agent())
        .map(|(id, _)| format!("C{id}"))
        .collect();
    let _ = writeln!(s, "# agent commits: {}", agents.join(" "));
    s
}
