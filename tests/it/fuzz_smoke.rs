//! The fuzz targets on the stable toolchain, for CI: every committed corpus file under
//! `fuzz/corpus/<target>/` goes through the same function the libFuzzer target calls
//! (`agentgate_fuzz_targets`), then a fixed number of deterministic mutations of those files (a
//! xorshift generator with a fixed seed, so a failure reproduces exactly). A panic fails the test
//! and names the input.

use std::path::{Path, PathBuf};

use agentgate_fuzz_targets::TARGETS;

/// Mutations per target (deterministic).
const MUTATIONS: usize = 2_000;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes the parsers care about: JSON, TOML and git syntax, and boundaries.
const INTERESTING: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"\n",
    b"\r\n",
    b" ",
    b"\\u0000",
    b"\xff",
    b"\xd0\xa1",
    b"0000000000000000000000000000000000000000",
    b"refs/heads/",
    b"**",
    b"..",
    b"---\n",
    b"Co-Authored-By: ",
    b"\"mediaType\":\"x\",",
    b"9999999999999999999999",
    b"-1",
    b"[[signer]]\n",
];

fn mutate(rng: &mut XorShift, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at..end.max(at));
            }
            3 => {
                let token = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, token.iter().copied());
            }
            4 => data.truncate(at),
            5 if !other.is_empty() => {
                // Splice a piece of another input in.
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1).min(256);
                data.splice(at..at, other[from..from + len].iter().copied());
            }
            _ => {
                // Repeat a slice (long lines, many lines).
                let end = (at + rng.below(32)).min(data.len());
                let piece = data[at..end].to_vec();
                for _ in 0..rng.below(64) {
                    data.splice(at..at, piece.iter().copied());
                }
            }
        }
    }
    data
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

fn run(target: &str) {
    let (_, f) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("known target");
    let seeds = corpus(target);
    assert!(!seeds.is_empty(), "no corpus for {target}");
    for (path, bytes) in &seeds {
        let r = std::panic::catch_unwind(|| f(bytes));
        assert!(
            r.is_ok(),
            "{target}: panic on corpus file {}",
            path.display()
        );
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..MUTATIONS {
        let (_, seed) = &seeds[rng.below(seeds.len())];
        let (_, other) = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed, other);
        let r = std::panic::catch_unwind(|| f(&input));
        assert!(
            r.is_ok(),
            "{target}: panic on mutation {i}: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn every_target_has_a_corpus_and_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz target {name} is not in agentgate_fuzz_targets::TARGETS"
        );
    }
}

#[test]
fn policy() {
    run("policy");
}

#[test]
fn bundle() {
    run("bundle");
}

#[test]
fn sigstore() {
    run("sigstore");
}

#[test]
fn stdin() {
    run("stdin");
}

#[test]
fn trailers() {
    run("trailers");
}

#[test]
fn object() {
    run("object");
}

#[test]
fn pack() {
    run("pack");
}
