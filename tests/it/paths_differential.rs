//! Path rules read patterns as `.gitattributes` does: every pattern the policy accepts, written
//! as a line of a real attributes file, must give `git check-attr` the same answer for every
//! path as `agentgate_policy::paths::PathPattern` (hand-written security patterns, then random
//! ones built from the pieces wildmatch treats specially).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::Stdio;

use agentgate_policy::paths::PathPattern;

use crate::common::*;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const HAND: &[&str] = &[
    ".github/workflows/**",
    ".github/workflows/*.yml",
    "/.gitlab-ci.yml",
    ".gitlab-ci.yml",
    "CODEOWNERS",
    "**/CODEOWNERS",
    "AGENTS.md",
    "CLAUDE.md",
    "docs/**",
    "tests/**/*.rs",
    "*.sh",
    "hooks/*",
    "/Makefile",
    "src/**/secret*",
    "**",
    "*",
    "a/**/b",
    "**/a/**",
];

const PATHS: &[&str] = &[
    ".github/workflows/ci.yml",
    ".github/workflows/sub/x.yaml",
    "x/.github/workflows/ci.yml",
    ".gitlab-ci.yml",
    "sub/.gitlab-ci.yml",
    "CODEOWNERS",
    "docs/CODEOWNERS",
    "AGENTS.md",
    "pkg/AGENTS.md",
    "AGENTS.md.orig",
    "docs/a.md",
    "tests/it/x.rs",
    "tests/x.rs",
    "run.sh",
    "a/run.sh",
    "hooks/pre-commit",
    "hooks/x/y",
    "Makefile",
    "src/Makefile",
    "src/a/b/secret.key",
    "a/b",
    "a/x/y/b",
    "b/a/c",
];

/// Pieces of patterns and of paths that reach wildmatch's branches.
const PATTERN_PIECES: &[&str] = &[
    "a",
    "b",
    "ab",
    ".",
    "*",
    "**",
    "?",
    "/",
    "/",
    "[ab]",
    "[!a]",
    "[^b]",
    "[a-c]",
    "[]a]",
    "[[:alpha:]]",
    "[[:digit:]]",
    "[[:punct:]]",
    "[[:bogus:]]",
    "[[:alpha]",
    "\\*",
    "\\a",
    "[",
    "]",
    "-",
    "[a-]",
    "[\\]]",
];
const PATH_PIECES: &[&str] = &["a", "b", "ab", "ba", ".a", "a.b", "*", "[a]", "1", "-", "]"];

fn random_pattern(rng: &mut Rng) -> String {
    let n = 1 + rng.next() % 5;
    let mut p: String = (0..n).map(|_| rng.pick(PATTERN_PIECES)).collect();
    // What an attributes line cannot say (or says otherwise): the policy refuses these.
    while p.starts_with(['#', '"', '!']) || p.starts_with("[attr]") {
        p.remove(0);
    }
    p
}

fn random_path(rng: &mut Rng) -> String {
    let n = 1 + rng.next() % 4;
    (0..n)
        .map(|_| {
            let k = 1 + rng.next() % 2;
            (0..k).map(|_| rng.pick(PATH_PIECES)).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// (path, pattern index) for every pattern git says matches, from `git check-attr -a -z`.
fn git_matches(env: &Env, patterns: &[String], paths: &[String]) -> BTreeSet<(String, usize)> {
    let work = env.path().join("attr");
    env.git_ok(env.path(), &["init", "-q", work.to_str().unwrap()]);
    let mut attrs = String::new();
    for (i, p) in patterns.iter().enumerate() {
        attrs.push_str(&format!("{p} p{i}\n"));
    }
    std::fs::write(work.join(".gitattributes"), attrs).unwrap();
    let mut child = env
        .cmd("git")
        .current_dir(&work)
        .args(["check-attr", "--stdin", "-z", "-a"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = Vec::new();
    for p in paths {
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "git check-attr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fields: Vec<&[u8]> = out.stdout.split(|&b| b == 0).collect();
    let mut found = BTreeSet::new();
    for rec in fields.chunks(3).filter(|c| c.len() == 3) {
        let path = String::from_utf8(rec[0].to_vec()).unwrap();
        let attr = std::str::from_utf8(rec[1]).unwrap();
        assert_eq!(rec[2], b"set", "{path} {attr}");
        found.insert((path, attr[1..].parse().unwrap()));
    }
    found
}

#[test]
fn path_patterns_match_as_git_check_attr() {
    let env = Env::new();
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let mut patterns: Vec<String> = HAND.iter().map(|s| s.to_string()).collect();
    while patterns.len() < 600 {
        let p = random_pattern(&mut rng);
        if !p.is_empty() && PathPattern::new(&p).is_ok() && !patterns.contains(&p) {
            patterns.push(p);
        }
    }
    let mut paths: Vec<String> = PATHS.iter().map(|s| s.to_string()).collect();
    while paths.len() < 400 {
        let p = random_path(&mut rng);
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    let git = git_matches(&env, &patterns, &paths);
    let mut ours = BTreeSet::new();
    for (i, p) in patterns.iter().enumerate() {
        let pat = PathPattern::new(p).unwrap();
        for path in &paths {
            if pat.matches(path.as_bytes()) {
                ours.insert((path.clone(), i));
            }
        }
    }
    let show = |set: &BTreeSet<(String, usize)>| -> String {
        set.iter()
            .take(15)
            .map(|(path, i)| format!("  {:?} ~ {path:?}\n", patterns[*i]))
            .collect()
    };
    let only_git: BTreeSet<_> = git.difference(&ours).cloned().collect();
    let only_ours: BTreeSet<_> = ours.difference(&git).cloned().collect();
    assert!(
        only_git.is_empty() && only_ours.is_empty(),
        "git matches that we miss:\n{}we match, git does not:\n{}",
        show(&only_git),
        show(&only_ours)
    );
    // The comparison means something: both sides match, and not everything.
    assert!(
        git.len() > 1000 && git.len() < patterns.len() * paths.len() / 2,
        "{}",
        git.len()
    );
}
