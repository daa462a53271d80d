//! The hook's own commit walk (`walk::walk`) against `git rev-list tip ^hide...` on random
//! histories with merges and skewed clocks, through both backends (libgit2 for SHA-1, the `git`
//! CLI for SHA-256): it must never miss an entering commit. Stops (commits that end the walk
//! where it reaches them) must act exactly like `^stop` for the stops that are ancestors of the
//! tip, and not at all for the others.

use crate::common::*;
use agentgate_git::walk::{walk, Limits};
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
                .map(|c| c.found.clone().unwrap().unwrap())
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
