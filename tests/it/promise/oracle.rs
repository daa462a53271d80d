//! The promise (SPEC.md, "The promise") checked from outside the hook: refs read with
//! `git for-each-ref`, reachability from one `git rev-list --parents` dump, notes read with
//! `git ls-tree`/`git cat-file`, and what counts as an agent commit or a valid attestation taken
//! from the test's own record of what it committed and signed. Nothing here calls agentgate.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use super::ops::{Bind, Policy, Require, Scope};
use crate::common::Env;

/// Whether `name` is protected: one of the policy's globs (`*` within one path component),
/// also under `refs/namespaces/<ns>/` (nested too), as the spec says for pushes without
/// `GIT_NAMESPACE`.
pub fn protected(name: &str) -> bool {
    let mut rest = name;
    while let Some(r) = rest.strip_prefix("refs/namespaces/") {
        match r.split_once('/') {
            Some((ns, inner)) if !ns.is_empty() => rest = inner,
            _ => return false,
        }
    }
    let one = |s: &str| !s.contains('/');
    rest == "refs/heads/main"
        || rest
            .strip_prefix("refs/heads/release/")
            .is_some_and(|s| !s.is_empty() && one(s))
        || rest.strip_prefix("refs/tags/v").is_some_and(one)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    /// The object the ref (after symbolic refs) names.
    pub object: String,
    /// That object peeled to a commit, if it peels to one.
    pub commit: Option<String>,
    pub symref: Option<String>,
}

/// A repository's refs and its notes ref.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub refs: BTreeMap<String, Ref>,
    pub notes: Option<String>,
}

pub const NOTES_REF: &str = "refs/notes/agentgate";

impl Snapshot {
    pub fn read(env: &Env, repo: &Path) -> Snapshot {
        let list = env.git_ok(
            repo,
            &[
                "for-each-ref",
                "--format=%(refname)%00%(objectname)%00%(objecttype)%00%(symref)",
            ],
        );
        let mut snap = Snapshot::default();
        let mut to_peel = Vec::new();
        for line in list.lines() {
            let f: Vec<&str> = line.split('\0').collect();
            assert_eq!(f.len(), 4, "for-each-ref line {line:?}");
            if f[0] == NOTES_REF {
                snap.notes = Some(f[1].to_string());
                continue;
            }
            let commit = (f[2] == "commit").then(|| f[1].to_string());
            if f[2] == "tag" {
                to_peel.push(f[1].to_string());
            }
            snap.refs.insert(
                f[0].to_string(),
                Ref {
                    object: f[1].to_string(),
                    commit,
                    symref: (!f[3].is_empty()).then(|| f[3].to_string()),
                },
            );
        }
        if !to_peel.is_empty() {
            let input: String = to_peel
                .iter()
                .map(|t| format!("{t}^{{commit}}\n"))
                .collect();
            let out = pipe(env, repo, &["cat-file", "--batch-check"], input.as_bytes());
            let out = String::from_utf8(out).expect("cat-file output");
            let peeled: HashMap<&str, Option<String>> = to_peel
                .iter()
                .map(String::as_str)
                .zip(out.lines().map(|l| {
                    let mut w = l.split(' ');
                    let id = w.next().unwrap_or_default();
                    (w.next() == Some("commit")).then(|| id.to_string())
                }))
                .collect();
            for r in snap.refs.values_mut() {
                if let Some(p) = peeled.get(r.object.as_str()) {
                    r.commit = p.clone();
                }
            }
        }
        snap
    }

    /// Protected refs and the commits they peel to (`None`: not a commit).
    pub fn protected(&self) -> impl Iterator<Item = (&String, &Ref)> {
        self.refs.iter().filter(|(n, _)| protected(n))
    }
}

/// Run git with `input` on stdin; its stdout.
pub fn pipe(env: &Env, repo: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = env
        .cmd("git")
        .current_dir(repo)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run git");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Write from another thread: git answers while it reads, and both pipes are bounded.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("git output");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Parents of every commit reachable from some tips.
#[derive(Default)]
pub struct Graph {
    parents: HashMap<String, Vec<String>>,
}

impl Graph {
    pub fn read<'a>(env: &Env, repo: &Path, tips: impl IntoIterator<Item = &'a String>) -> Graph {
        let tips: BTreeSet<&String> = tips.into_iter().collect();
        let mut g = Graph::default();
        if tips.is_empty() {
            return g;
        }
        let mut args = vec!["rev-list", "--parents"];
        args.extend(tips.iter().map(|t| t.as_str()));
        for line in env.git_ok(repo, &args).lines() {
            let mut ids = line.split(' ').map(str::to_string);
            let c = ids.next().expect("rev-list line");
            g.parents.insert(c, ids.collect());
        }
        g
    }

    pub fn parents(&self, c: &str) -> &[String] {
        self.parents
            .get(c)
            .unwrap_or_else(|| panic!("commit {c} is not in the rev-list dump"))
    }

    /// Every commit reachable from `tip` (itself included).
    pub fn reach(&self, tip: &str) -> HashSet<String> {
        let mut seen = HashSet::new();
        let mut stack = vec![tip.to_string()];
        while let Some(c) = stack.pop() {
            if seen.insert(c.clone()) {
                stack.extend(self.parents(&c).iter().cloned());
            }
        }
        seen
    }

    /// `a` is reachable from `b`.
    pub fn is_ancestor(&self, a: &str, b: &str) -> bool {
        self.reach(b).contains(a)
    }
}

/// Notes in `repo` at notes commit `notes`: annotated object -> lines.
pub fn read_notes(env: &Env, repo: &Path, notes: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    let Some(notes) = notes else {
        return map;
    };
    let mut entries = Vec::new();
    for line in env.git_ok(repo, &["ls-tree", "-r", notes]).lines() {
        let (meta, path) = line.split_once('\t').expect("ls-tree line");
        let blob = meta.split(' ').nth(2).expect("ls-tree blob id");
        entries.push((path.replace('/', ""), blob.to_string()));
    }
    if entries.is_empty() {
        return map;
    }
    let input: String = entries.iter().map(|(_, b)| format!("{b}\n")).collect();
    let out = pipe(env, repo, &["cat-file", "--batch"], input.as_bytes());
    let mut rest = &out[..];
    for (object, _) in entries {
        let nl = rest.iter().position(|&b| b == b'\n').expect("batch header");
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        let size: usize = header
            .split(' ')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cat-file header {header:?}"));
        let body = String::from_utf8_lossy(&rest[nl + 1..nl + 1 + size]).to_string();
        rest = &rest[nl + 1 + size + 1..];
        let lines = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        map.insert(object, lines);
    }
    map
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Predicate {
    Provenance,
    TestResult,
}

/// What the test signed: one bundle line.
#[derive(Clone, Debug)]
pub struct LineRec {
    pub commit: String,
    pub predicate: Predicate,
    pub trusted: bool,
    pub passed: bool,
}

/// The test's own record of commits and signatures.
pub trait Record {
    fn is_agent(&self, commit: &str) -> bool;
    fn tree(&self, commit: &str) -> &str;
    fn line(&self, line: &str) -> Option<&LineRec>;
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Violation {
    /// An agent commit reachable from a protected tip with no attested commit between them
    /// (`scope = "tip"`), or without its own attestation (`scope = "each"`).
    Uncovered {
        r#ref: String,
        tip: String,
        commit: String,
    },
    Deleted {
        r#ref: String,
        old: String,
    },
    Rewound {
        r#ref: String,
        old: String,
        new: String,
    },
    /// A protected ref that does not peel to a commit.
    NotACommit {
        r#ref: String,
    },
}

impl Violation {
    /// What identifies it across pushes (the same uncovered commit under a later tip is the
    /// same violation).
    pub fn key(&self) -> String {
        match self {
            Violation::Uncovered { r#ref, commit, .. } => format!("uncovered {ref} {commit}"),
            Violation::Deleted { r#ref, old } => format!("deleted {ref} {old}"),
            Violation::Rewound { r#ref, old, new } => format!("rewound {ref} {old} {new}"),
            Violation::NotACommit { r#ref } => format!("not-a-commit {ref}"),
        }
    }

    pub fn r#ref(&self) -> &str {
        match self {
            Violation::Uncovered { r#ref, .. }
            | Violation::Deleted { r#ref, .. }
            | Violation::Rewound { r#ref, .. }
            | Violation::NotACommit { r#ref } => r#ref,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Violation::Uncovered { .. } => "uncovered agent commit",
            Violation::Deleted { .. } => "protected ref deleted",
            Violation::Rewound { .. } => "protected ref rewound",
            Violation::NotACommit { .. } => "protected ref not a commit",
        }
    }
}

/// Judges one state: the policy, the graph, the notes in force, the record.
pub struct Judge<'a> {
    pub policy: &'a Policy,
    pub graph: &'a Graph,
    pub notes: &'a HashMap<String, Vec<String>>,
    pub record: &'a dyn Record,
}

impl Judge<'_> {
    fn needs(&self, c: &str) -> bool {
        self.policy.require == Require::AllCommits || self.record.is_agent(c)
    }

    /// `c` carries a valid gate attestation: among the notes on `c` (and, with `bind =
    /// "tree"`, on its tree), a provenance bundle and a PASSED test-result bundle, each signed
    /// with the trusted key and binding `c` (or, with `bind = "tree"`, a commit with its tree).
    pub fn attested(&self, c: &str) -> bool {
        let tree = self.record.tree(c);
        let mut targets = vec![c];
        if self.policy.bind == Bind::Tree {
            targets.push(tree);
        }
        let (mut provenance, mut test) = (false, false);
        for t in targets {
            for line in self.notes.get(t).into_iter().flatten() {
                let Some(r) = self.record.line(line) else {
                    continue;
                };
                let binds = match self.policy.bind {
                    Bind::Commit => r.commit == c,
                    Bind::Tree => self.record.tree(&r.commit) == tree,
                };
                if !r.trusted || !binds {
                    continue;
                }
                match r.predicate {
                    Predicate::Provenance => provenance = true,
                    Predicate::TestResult => test |= r.passed,
                }
            }
        }
        provenance && test
    }

    /// The commits reachable from `tip` that need an attestation and break the promise.
    pub fn uncovered(&self, tip: &str) -> BTreeSet<String> {
        let reach = self.graph.reach(tip);
        let attested: HashSet<&String> = reach.iter().filter(|c| self.attested(c)).collect();
        let covered: HashSet<String> = match self.policy.scope {
            Scope::Each => attested.iter().map(|c| c.to_string()).collect(),
            Scope::Tip => {
                let mut seen = HashSet::new();
                let mut stack: Vec<String> = attested.iter().map(|c| c.to_string()).collect();
                while let Some(c) = stack.pop() {
                    if seen.insert(c.clone()) {
                        stack.extend(self.graph.parents(&c).iter().cloned());
                    }
                }
                seen
            }
        };
        reach
            .into_iter()
            .filter(|c| self.needs(c) && !covered.contains(c))
            .collect()
    }

    /// The promise after moving from `before` to `after`, for the protected refs in `only`
    /// (all of them when `None`).
    pub fn check(
        &self,
        before: &Snapshot,
        after: &Snapshot,
        only: Option<&BTreeSet<String>>,
    ) -> Vec<Violation> {
        let wanted = |n: &String| only.is_none_or(|o| o.contains(n));
        let mut out = Vec::new();
        for (name, old) in before.protected().filter(|(n, _)| wanted(n)) {
            match after.refs.get(name) {
                None if !self.policy.allow_delete => out.push(Violation::Deleted {
                    r#ref: name.clone(),
                    old: old.object.clone(),
                }),
                Some(new) if !self.policy.allow_non_fast_forward => {
                    if let (Some(o), Some(n)) = (&old.commit, &new.commit) {
                        if !self.graph.is_ancestor(o, n) {
                            out.push(Violation::Rewound {
                                r#ref: name.clone(),
                                old: o.clone(),
                                new: n.clone(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        for (name, r) in after.protected().filter(|(n, _)| wanted(n)) {
            let Some(tip) = &r.commit else {
                out.push(Violation::NotACommit {
                    r#ref: name.clone(),
                });
                continue;
            };
            for c in self.uncovered(tip) {
                out.push(Violation::Uncovered {
                    r#ref: name.clone(),
                    tip: tip.clone(),
                    commit: c,
                });
            }
        }
        out
    }
}
