//! The hook's own commit walk (`walk::walk`) against `git rev-list tip ^hide...` on random
//! histories with merges and skewed clocks, through both backends (libgit2 for SHA-1, the `git`
//! CLI for SHA-256): it must never miss an entering commit. Stops (commits that end the walk
//! where it reaches them) must act exactly like `^stop` for the stops that are ancestors of the
//! tip, and not at all for the others.
//!
//! With a commit-graph (single file, split chain, corrupt, lying) the walk must give the same
//! answer: the graph only saves waiting for inflation; a graph that differs from the objects is
//! caught and the walk is done again from objects.

use crate::common::*;
use agentgate_git::walk::{walk, walk_with_options, Limits, Options};
use agentgate_git::{Oid, Repo};
use std::collections::BTreeSet;
use std::collections::HashSet;
use std::io::Write;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random history of `n` commits in one fast-import stream: branches, merges (up to 3
/// parents), and committer dates that sometimes go backwards.
fn random_history(env: &Env, seed: u64, n: usize) -> (std::path::PathBuf, Vec<String>) {
    let repo = env.path().join(format!("r{seed}.git"));
    // Every third history is SHA-256, read through the `git` backend.
    let format = if seed.is_multiple_of(3) {
        "sha256"
    } else {
        "sha1"
    };
    env.git_ok(
        env.path(),
        &[
            "init",
            "-q",
            "--bare",
            &format!("--object-format={format}"),
            repo.to_str().unwrap(),
        ],
    );
    let mut rng = Rng(seed * 2654435761 + 1);
    let mut stream = Vec::new();
    let mut time: i64 = 1_700_000_000;
    for i in 0..n {
        time += 60;
        // Skew: some commits claim to be much older than their parents.
        let date = if rng.below(7) == 0 {
            time - rng.below(100_000) as i64
        } else {
            time
        };
        let msg = format!("c{i}");
        write!(
            stream,
            "commit refs/heads/b{}\nmark :{}\ncommitter C <c@x> {date} +0000\ndata {}\n{msg}\n",
            rng.below(4),
            i + 1,
            msg.len()
        )
        .unwrap();
        if i > 0 {
            writeln!(stream, "from :{}", rng.below(i as u64) + 1).unwrap();
            for _ in 0..rng.below(3) {
                if rng.below(2) == 0 {
                    writeln!(stream, "merge :{}", rng.below(i as u64) + 1).unwrap();
                }
            }
        }
        stream.push(b'\n');
    }
    writeln!(stream, "done").unwrap();
    let mut child = env
        .cmd("git")
        .current_dir(&repo)
        .args(["fast-import", "--quiet", "--done", "--force"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    assert!(child.wait().unwrap().success());
    let all: Vec<String> = env
        .git_ok(&repo, &["rev-list", "--all"])
        .lines()
        .map(str::to_string)
        .collect();
    (repo, all)
}

fn oid(hex: &str) -> Oid {
    Oid::from_hex(hex.as_bytes()).unwrap()
}

#[test]
fn walk_equals_rev_list_on_random_histories() {
    let env = Env::new();
    let mut checks = 0;
    for seed in 1..=12u64 {
        let (repo_path, all) = random_history(&env, seed, 300);
        let repo = Repo::open(Some(&repo_path)).unwrap();
        let mut rng = Rng(seed + 99);
        for _ in 0..30 {
            let tip = &all[rng.below(all.len() as u64) as usize];
            let pick = |rng: &mut Rng| -> Vec<String> {
                (0..rng.below(3))
                    .map(|_| all[rng.below(all.len() as u64) as usize].clone())
                    .collect()
            };
            let hide = pick(&mut rng);
            let stops = pick(&mut rng);
            // A stop counts as `^stop` exactly when the tip reaches it.
            let mut args = vec!["rev-list".to_string(), tip.clone()];
            args.extend(hide.iter().map(|h| format!("^{h}")));
            for st in &stops {
                let reached = env
                    .git(&repo_path, &["merge-base", "--is-ancestor", st, tip])
                    .status
                    .success();
                if reached {
                    args.push(format!("^{st}"));
                }
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let want: BTreeSet<String> = env
                .git_ok(&repo_path, &argv)
                .lines()
                .map(str::to_string)
                .collect();
            let hidden: Vec<Oid> = hide.iter().map(|h| oid(h)).collect();
            let stop_set: HashSet<Oid> = stops.iter().map(|h| oid(h)).collect();
            let walked = walk(
                repo.objects().unwrap().as_mut(),
                &Limits {
                    tip: oid(tip),
                    hidden: &hidden,
                    stops: &stop_set,
                },
                &|c| Some(c.id.to_string()),
            )
            .unwrap();
            let got: BTreeSet<String> = walked
                .commits
                .iter()
                .map(|c| *c.found.clone().unwrap().unwrap())
                .collect();
            assert_eq!(walked.commits.len(), got.len());
            assert!(
                got.is_superset(&want),
                "seed {seed}: walk missed {:?}",
                want.difference(&got).collect::<Vec<_>>()
            );
            assert_eq!(
                got, want,
                "seed {seed}: walk over-counted (clock skew beyond the slop?)"
            );
            // With one hidden commit and no stops, `reached` is "is it an ancestor".
            if hide.len() == 1 && stops.is_empty() {
                let anc = env
                    .git(&repo_path, &["merge-base", "--is-ancestor", &hide[0], tip])
                    .status
                    .success();
                assert_eq!(
                    walked.reached(&oid(&hide[0])),
                    anc || &hide[0] == tip,
                    "seed {seed}"
                );
            }
            checks += 1;
        }
    }
    println!("{checks} random ranges agree with git rev-list");
}

/// `git rev-list tip ^hide...` as a set, from the objects (git trusts its commit-graph, and
/// some of these graphs lie).
fn rev_list(env: &Env, repo: &std::path::Path, tip: &str, hide: &[String]) -> BTreeSet<String> {
    let mut args = vec![
        "-c".to_string(),
        "core.commitGraph=false".to_string(),
        "rev-list".to_string(),
        tip.to_string(),
    ];
    args.extend(hide.iter().map(|h| format!("^{h}")));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    env.git_ok(repo, &argv)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Walk `tip ^hide...` with the commit-graph used from the first commit read.
fn graph_walk(repo: &Repo, tip: &str, hide: &[String]) -> (BTreeSet<String>, usize, bool) {
    let hidden: Vec<Oid> = hide.iter().map(|h| oid(h)).collect();
    let walked = walk_with_options(
        repo.objects().unwrap().as_mut(),
        &Limits {
            tip: oid(tip),
            hidden: &hidden,
            stops: &HashSet::new(),
        },
        &|c| Some(c.id.to_string()),
        Options {
            graph_after: Some(0),
        },
    )
    .unwrap();
    let got = walked
        .commits
        .iter()
        .map(|c| *c.found.clone().unwrap().unwrap())
        .collect();
    (got, walked.graph_links, walked.graph_rejected)
}

/// Random ranges of a SHA-1 history: the walk with the graph equals git rev-list; returns how
/// many commits' links came from the graph and whether any walk rejected it.
fn graph_ranges(
    env: &Env,
    repo_path: &std::path::Path,
    all: &[String],
    seed: u64,
) -> (usize, bool) {
    let repo = Repo::open(Some(repo_path)).unwrap();
    let mut rng = Rng(seed + 7);
    let (mut links, mut rejected) = (0, false);
    for _ in 0..15 {
        let tip = &all[rng.below(all.len() as u64) as usize];
        let hide: Vec<String> = (0..rng.below(3))
            .map(|_| all[rng.below(all.len() as u64) as usize].clone())
            .collect();
        let (got, l, r) = graph_walk(&repo, tip, &hide);
        assert_eq!(
            got,
            rev_list(env, repo_path, tip, &hide),
            "seed {seed}: {l} links from the graph, rejected {r}"
        );
        links += l;
        rejected |= r;
    }
    (links, rejected)
}

/// The CDAT chunk's offset and the number of commits of a commit-graph file (SHA-1).
fn cdat(graph: &[u8]) -> (usize, usize) {
    let chunks = graph[6] as usize;
    let mut at = None;
    for i in 0..chunks {
        let e = &graph[8 + 12 * i..8 + 12 * i + 12];
        if &e[..4] == b"CDAT" {
            at = Some(u64::from_be_bytes(e[4..12].try_into().unwrap()) as usize);
        }
    }
    // OIDF is the fanout: its last entry is the count.
    let fan = (0..chunks)
        .map(|i| &graph[8 + 12 * i..8 + 12 * i + 12])
        .find(|e| &e[..4] == b"OIDF")
        .map(|e| u64::from_be_bytes(e[4..12].try_into().unwrap()) as usize)
        .unwrap();
    let n = u32::from_be_bytes(graph[fan + 1020..fan + 1024].try_into().unwrap()) as usize;
    (at.unwrap(), n)
}

#[test]
fn walk_with_a_commit_graph_equals_rev_list() {
    let env = Env::new();
    // Seeds not divisible by 3: SHA-1, the libgit2 backend that reads the graph.
    for seed in [1u64, 2, 4, 5] {
        let (repo_path, all) = random_history(&env, seed, 300);
        let info = repo_path.join("objects/info");
        // A single file.
        env.git_ok(&repo_path, &["commit-graph", "write", "--reachable"]);
        let (links, rejected) = graph_ranges(&env, &repo_path, &all, seed);
        assert!(links > 0, "seed {seed}: the graph was not used");
        assert!(!rejected, "seed {seed}: a true graph was rejected");

        // A graph that lies: every commit's date moved, then every first parent moved. The walk
        // must notice and answer from the objects.
        let file = info.join("commit-graph");
        let good = std::fs::read(&file).unwrap();
        let (at, n) = cdat(&good);
        for corrupt in [32usize, 20] {
            let mut bad = good.clone();
            for i in 0..n {
                let w = at + i * 36 + corrupt;
                let v = u32::from_be_bytes(bad[w..w + 4].try_into().unwrap());
                let v = if corrupt == 20 {
                    if v == 0x7000_0000 {
                        0
                    } else {
                        (v + 1) % n as u32
                    }
                } else {
                    v ^ 0x400
                };
                bad[w..w + 4].copy_from_slice(&v.to_be_bytes());
            }
            std::fs::write(&file, &bad).unwrap();
            let (_, rejected) = graph_ranges(&env, &repo_path, &all, seed);
            assert!(
                rejected,
                "seed {seed}: a lying graph (word {corrupt}) went unnoticed"
            );
        }
        // Garbage, and a truncated file: no graph at all.
        for bad in [
            &good[..good.len() / 2],
            b"CGPH\x01\x01\x09\x00garbage".as_slice(),
        ] {
            std::fs::write(&file, bad).unwrap();
            let (links, _) = graph_ranges(&env, &repo_path, &all, seed);
            assert_eq!(links, 0, "seed {seed}: a broken graph was used");
        }
        std::fs::remove_file(&file).unwrap();

        // A split chain of two layers, the second written after more commits were named.
        let half: Vec<u8> = all[all.len() / 2..].join("\n").into_bytes();
        let mut child = env
            .cmd("git")
            .current_dir(&repo_path)
            .args(["commit-graph", "write", "--split", "--stdin-commits"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&half).unwrap();
        assert!(child.wait().unwrap().success());
        env.git_ok(
            &repo_path,
            &["commit-graph", "write", "--split=no-merge", "--reachable"],
        );
        let chain = std::fs::read_to_string(info.join("commit-graphs/commit-graph-chain")).unwrap();
        assert_eq!(
            chain.lines().count(),
            2,
            "seed {seed}: not a two-layer chain"
        );
        let (links, rejected) = graph_ranges(&env, &repo_path, &all, seed);
        assert!(
            links > 0 && !rejected,
            "seed {seed}: the chain was not used"
        );
        std::fs::remove_dir_all(info.join("commit-graphs")).unwrap();
    }
}
