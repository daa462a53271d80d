//! One model run: a fresh server with the hook installed, the developer's and the gate's
//! clones, the shell that runs the script, the test's record of what it committed and signed,
//! and after every push the oracle's verdict on the server's real refs (violations) and, for a
//! refused push, on the refs the push would have produced (over-refusals).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use base64::Engine;

use super::ops::{Hook, Op, Policy, Require, Scope, Site, Style, TreeSpec, Update, Value};
use super::oracle::{
    read_notes, Graph, Judge, LineRec, Predicate, Record, Ref, Snapshot, Violation, NOTES_REF,
};
use super::shell::Shell;
use crate::common::Env;

pub struct CommitRec {
    pub sha: String,
    pub tree: String,
    pub parents: Vec<usize>,
    pub style: Style,
}

pub struct TagRec {
    pub sha: String,
    pub commit: usize,
}

/// Tallies of one run (or of several, added up).
#[derive(Clone, Debug, Default)]
pub struct Counts {
    pub pushes: usize,
    pub accepted: usize,
    /// Refused by the hook.
    pub refused: usize,
    /// Failed before or without a decision of the hook (git itself said no).
    pub failed: usize,
    pub over_refusals: usize,
    /// Over-refusal cause -> pushes.
    pub causes: BTreeMap<String, usize>,
    /// Why pushes failed without the hook -> pushes.
    pub failures: BTreeMap<String, usize>,
}

impl Counts {
    pub fn add(&mut self, o: &Counts) {
        self.pushes += o.pushes;
        self.accepted += o.accepted;
        self.refused += o.refused;
        self.failed += o.failed;
        self.over_refusals += o.over_refusals;
        for (k, v) in &o.causes {
            *self.causes.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.failures {
            *self.failures.entry(k.clone()).or_default() += v;
        }
    }
}

/// A violation, the index (in `World::ops`) of the push after which the oracle saw it, and
/// its class: what it is and the shape of the update that made it ("uncovered agent commit
/// after create of lightweight tag").
#[derive(Clone, Debug)]
pub struct Found {
    pub op: usize,
    pub violation: Violation,
    pub class: String,
    /// The server kept the promise before this push: the push alone broke it.
    pub clean: bool,
}

/// One update of a push as the server applies it.
struct Planned {
    /// The name pushed.
    pushed: String,
    /// The ref it sets (an alias resolved).
    dst: String,
    value: Option<Ref>,
    shape: String,
}

pub struct World {
    // First, so that it is dropped (bash killed) before the directory goes.
    shell: Shell,
    pub env: Env,
    pub w: PathBuf,
    pub policy: Policy,
    pub commits: BTreeMap<usize, CommitRec>,
    by_sha: HashMap<String, usize>,
    pub tags: BTreeMap<usize, TagRec>,
    lines: HashMap<String, LineRec>,
    /// The clone has a notes ref of its own (it signed or copied a note).
    notes_in: [bool; 2],
    pub alias: bool,
    pub server: Snapshot,
    /// The operations run so far, as run (after `normalize`).
    pub ops: Vec<Op>,
    pub found: Vec<Found>,
    /// Indices (in `ops`) of pushes that left the server as it was (refused, or no change).
    pub inert: BTreeSet<usize>,
    /// The server breaks the promise now (a violation seen and not undone since).
    broken: bool,
    seen: HashSet<String>,
    pub counts: Counts,
    /// Judge refused pushes against the hypothetical state (off while shrinking: only
    /// violations matter there).
    pub judge_refusals: bool,
}

impl Record for World {
    fn is_agent(&self, commit: &str) -> bool {
        self.rec(commit).style.is_agent()
    }
    fn tree(&self, commit: &str) -> &str {
        &self.rec(commit).tree
    }
    fn line(&self, line: &str) -> Option<&LineRec> {
        self.lines.get(line)
    }
}

impl World {
    pub fn new(policy: Policy) -> World {
        let env = Env::new();
        let w = env.path().join("w");
        std::fs::create_dir_all(&w).expect("run directory");
        let mut shell = Shell::start(&env, &w);
        let (rc, out) = shell.run(&policy.preamble(""));
        assert_eq!(rc, 0, "preamble failed:\n{out}");
        World {
            shell,
            env,
            w,
            policy,
            commits: BTreeMap::new(),
            by_sha: HashMap::new(),
            tags: BTreeMap::new(),
            lines: HashMap::new(),
            notes_in: [false; 2],
            alias: false,
            server: Snapshot::default(),
            ops: Vec::new(),
            found: Vec::new(),
            inert: BTreeSet::new(),
            broken: false,
            seen: HashSet::new(),
            counts: Counts::default(),
            judge_refusals: true,
        }
    }

    fn rec(&self, sha: &str) -> &CommitRec {
        let id = self
            .by_sha
            .get(sha)
            .unwrap_or_else(|| panic!("commit {sha} was not made by the model"));
        &self.commits[id]
    }

    pub fn srv(&self) -> PathBuf {
        self.w.join("srv.git")
    }

    fn dir(&self, site: Site) -> PathBuf {
        self.w.join(site.dir())
    }

    pub fn id_of(&self, sha: &str) -> Option<usize> {
        self.by_sha.get(sha).copied()
    }

    pub fn sha(&self, id: usize) -> &str {
        &self.commits[&id].sha
    }

    /// `$C5` for a commit the model made, else the id.
    pub fn name(&self, sha: &str) -> String {
        match self.by_sha.get(sha) {
            Some(id) => format!("$C{id}"),
            None => sha.to_string(),
        }
    }

    pub fn describe(&self, v: &Violation) -> String {
        match v {
            Violation::Uncovered {
                r#ref, tip, commit, ..
            } => format!(
                "{ref} -> {}: {} commit {} is reachable from it with no valid attestation {}",
                self.name(tip),
                if self.is_agent(commit) {
                    "agent"
                } else {
                    "(all-commits)"
                },
                self.name(commit),
                if self.policy.scope == Scope::Tip {
                    "on any commit between them"
                } else {
                    "of its own"
                }
            ),
            Violation::Deleted { r#ref, old } => {
                format!("{ref} (was {}) was deleted", self.name(old))
            }
            Violation::Rewound { r#ref, old, new } => format!(
                "{ref} was rewound from {} to {}",
                self.name(old),
                self.name(new)
            ),
            Violation::NotACommit { r#ref } => format!("{ref} does not peel to a commit"),
        }
    }

    /// The operation as it can run here, or `None` when what it refers to is not there (a
    /// shrunk sequence dropped it). A commit whose parent was dropped loses that parent (and a
    /// tree it copied becomes its own), so that shrinking can cut histories short.
    fn normalize(&self, op: Op) -> Option<Op> {
        let has = |c: &usize| self.commits.contains_key(c);
        let ok = match &op {
            Op::Commit {
                id,
                parents,
                tree,
                style,
                date,
            } => {
                return Some(Op::Commit {
                    id: *id,
                    parents: parents.iter().copied().filter(has).collect(),
                    tree: match tree {
                        TreeSpec::SameAs(t) if has(t) => TreeSpec::SameAs(*t),
                        _ => TreeSpec::Fresh,
                    },
                    style: *style,
                    date: *date,
                });
            }
            Op::Tag { commit, .. } | Op::Sign { commit, .. } | Op::TreeNote { commit, .. } => {
                has(commit)
            }
            Op::CopyNote { from, to, .. } => has(from) && has(to),
            Op::Alias => true,
            Op::Push {
                clone,
                updates,
                notes,
            } => {
                let updates: Vec<Update> = updates
                    .iter()
                    .filter(|u| match u.value {
                        Value::Commit(c) => has(&c),
                        Value::Tag(t) => self.tags.contains_key(&t),
                        Value::Delete => true,
                    })
                    .cloned()
                    .collect();
                let notes =
                    *notes && (self.notes_in[*clone as usize] || self.server.notes.is_some());
                if updates.is_empty() && !notes {
                    return None;
                }
                return Some(Op::Push {
                    clone: *clone,
                    updates,
                    notes,
                });
            }
        };
        ok.then_some(op)
    }

    /// Run one operation (after `normalize`); false if it was dropped.
    pub fn apply(&mut self, op: Op) -> bool {
        let Some(op) = self.normalize(op) else {
            return false;
        };
        let text = op.script();
        if let Op::Push {
            clone,
            updates,
            notes,
        } = &op
        {
            self.ops.push(op.clone());
            self.push(&text, *clone, updates, *notes);
            return true;
        }
        let (rc, out) = self.shell.run(&text);
        assert_eq!(rc, 0, "{text}\nfailed:\n{out}");
        match &op {
            Op::Commit {
                id, parents, style, ..
            } => {
                let sha = self.shell.var(&format!("C{id}"));
                let tree = self.env.git_ok(
                    &self.dir(Site::Dev),
                    &["rev-parse", &format!("{sha}^{{tree}}")],
                );
                self.by_sha.insert(sha.clone(), *id);
                self.commits.insert(
                    *id,
                    CommitRec {
                        sha,
                        tree,
                        parents: parents.clone(),
                        style: *style,
                    },
                );
            }
            Op::Tag { id, commit } => {
                let sha = self.shell.var(&format!("T{id}"));
                self.tags.insert(
                    *id,
                    TagRec {
                        sha,
                        commit: *commit,
                    },
                );
            }
            Op::Sign {
                commit,
                trusted,
                passed,
                clone,
            } => {
                let sha = self.sha(*commit).to_string();
                let note = self.env.git_ok(
                    &self.dir(*clone),
                    &["notes", "--ref", "agentgate", "show", &sha],
                );
                let new: Vec<&str> = note
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !self.lines.contains_key(*l))
                    .collect();
                assert_eq!(new.len(), 2, "sign should append two bundles:\n{note}");
                let recs: Vec<(String, LineRec)> = new
                    .iter()
                    .map(|l| {
                        (
                            l.to_string(),
                            LineRec {
                                commit: sha.clone(),
                                predicate: predicate(l),
                                trusted: *trusted,
                                passed: *passed,
                            },
                        )
                    })
                    .collect();
                self.lines.extend(recs);
                self.notes_in[*clone as usize] = true;
            }
            Op::TreeNote { clone, .. } | Op::CopyNote { clone, .. } => {
                self.notes_in[*clone as usize] = true;
            }
            Op::Alias => self.alias = true,
            Op::Push { .. } => unreachable!("pushes return above"),
        }
        self.ops.push(op);
        true
    }

    /// The server-side ref a pushed name updates.
    fn resolve(&self, before: &Snapshot, dst: &str) -> String {
        if self.alias && dst == "refs/heads/master" {
            return "refs/heads/main".into();
        }
        match before.refs.get(dst).and_then(|r| r.symref.clone()) {
            Some(t) => t,
            None => dst.to_string(),
        }
    }

    fn push(&mut self, text: &str, clone: Site, updates: &[Update], notes: bool) {
        let before = self.server.clone();
        let (rc, out) = self.shell.run(text);
        let srv = self.srv();
        let after = Snapshot::read(&self.env, &srv);
        self.counts.pushes += 1;

        // The promise, on the server's real refs and notes.
        let tips: Vec<String> = before
            .protected()
            .chain(after.protected())
            .filter_map(|(_, r)| r.commit.clone())
            .collect();
        let graph = Graph::read(&self.env, &srv, &tips);
        let server_notes = read_notes(&self.env, &srv, after.notes.as_deref());
        let found: Vec<Violation> = Judge {
            policy: &self.policy,
            graph: &graph,
            notes: &server_notes,
            record: self,
        }
        .check(&before, &after, None);
        let clean = !self.broken;
        self.broken = !found.is_empty();
        if !found.is_empty() {
            let planned = self.planned(&before, updates);
            for v in found {
                if !self.seen.insert(v.key()) {
                    continue;
                }
                let r = v.r#ref();
                let how = match planned.iter().find(|p| p.dst == r) {
                    Some(p) => p.shape.clone(),
                    None => format!("a push that did not name {r}"),
                };
                self.found.push(Found {
                    op: self.ops.len() - 1,
                    class: format!("{} after {how}", v.kind()),
                    violation: v,
                    clean,
                });
            }
        }

        let refusals = refusals(&out);
        if rc == 0 {
            self.counts.accepted += 1;
        } else if refusals.is_empty() {
            self.counts.failed += 1;
            // `! [remote rejected] main (deletion of the current branch prohibited)`
            let why = out
                .lines()
                .find_map(|l| {
                    l.split_once("rejected] ")
                        .map(|(_, r)| r.trim().to_string())
                })
                .or_else(|| {
                    out.lines()
                        .rfind(|l| !l.trim().is_empty())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "(no output)".into());
            *self.counts.failures.entry(why).or_default() += 1;
        } else {
            self.counts.refused += 1;
            if self.judge_refusals {
                if let Some(cause) = self.over_refusal(&before, clone, updates, notes, &refusals) {
                    self.counts.over_refusals += 1;
                    *self.counts.causes.entry(cause).or_default() += 1;
                }
            }
        }
        if after == before {
            self.inert.insert(self.ops.len() - 1);
        }
        self.server = after;
    }

    /// Would accepting the refused push have kept the promise? If so, why the hook refused:
    /// its code, the shape of the refused update, and what made it safe.
    fn over_refusal(
        &self,
        before: &Snapshot,
        clone: Site,
        updates: &[Update],
        notes: bool,
        refusals: &[(String, String)],
    ) -> Option<String> {
        let mut hypo = before.clone();
        let mut changed = BTreeSet::new();
        let mut shape = HashMap::new();
        for p in self.planned(before, updates) {
            shape.insert(p.pushed, p.shape.clone());
            shape.insert(p.dst.clone(), p.shape);
            match p.value {
                Some(v) => hypo.refs.insert(p.dst.clone(), v),
                None => hypo.refs.remove(&p.dst),
            };
            changed.insert(p.dst);
        }
        let dev = self.dir(Site::Dev);
        let (notes_repo, notes_commit) = if notes {
            let dir = self.dir(clone);
            let n = self.env.rev(&dir, NOTES_REF);
            match n {
                Some(n) => (dir, Some(n)),
                None => (self.srv(), before.notes.clone()),
            }
        } else {
            (self.srv(), before.notes.clone())
        };
        let notes_map = read_notes(&self.env, &notes_repo, notes_commit.as_deref());
        let tips: Vec<String> = before
            .protected()
            .chain(hypo.protected())
            .filter_map(|(_, r)| r.commit.clone())
            .collect();
        let graph = Graph::read(&self.env, &dev, &tips);
        let judge = Judge {
            policy: &self.policy,
            graph: &graph,
            notes: &notes_map,
            record: self,
        };
        if !judge.check(before, &hypo, Some(&changed)).is_empty() {
            return None;
        }
        // The first refused ref names the cause (pre-receive refuses the others with it).
        let (code, r) = refusals.first()?;
        let s = shape.get(r).cloned().unwrap_or_else(|| {
            if r == NOTES_REF {
                "notes ref".to_string()
            } else {
                format!("other ref {r}")
            }
        });
        let detail = self.detail(&judge, code, r, &hypo, before);
        let order = if notes && self.policy.hook == Hook::Update {
            " (update hook, notes in the same push)"
        } else {
            ""
        };
        Some(format!("[{code}] {s}{detail}{order}"))
    }

    /// What each update of a push sets on the server (through the alias), and its shape.
    fn planned(&self, before: &Snapshot, updates: &[Update]) -> Vec<Planned> {
        updates
            .iter()
            .map(|u| {
                let dst = self.resolve(before, &u.dst);
                let value = match u.value {
                    Value::Commit(c) => Some(Ref {
                        object: self.sha(c).to_string(),
                        commit: Some(self.sha(c).to_string()),
                        symref: None,
                    }),
                    Value::Tag(t) => Some(Ref {
                        object: self.tags[&t].sha.clone(),
                        commit: Some(self.sha(self.tags[&t].commit).to_string()),
                        symref: None,
                    }),
                    Value::Delete => None,
                };
                let shape = self.shape(before, u, &dst, value.as_ref());
                Planned {
                    pushed: u.dst.clone(),
                    dst,
                    value,
                    shape,
                }
            })
            .collect()
    }

    /// The kind of update: create / fast-forward / rewind / delete / retarget, and of which
    /// ref.
    fn shape(&self, before: &Snapshot, u: &Update, dst: &str, new: Option<&Ref>) -> String {
        let class = if dst.starts_with("refs/namespaces/") {
            "namespaced ref"
        } else if dst == "refs/heads/main" {
            "main"
        } else if dst.starts_with("refs/heads/release/") {
            "release branch"
        } else if dst.starts_with("refs/tags/v") {
            match u.value {
                Value::Tag(_) => "annotated tag",
                _ => "lightweight tag",
            }
        } else {
            "unprotected ref"
        };
        let via = if u.dst != dst { " via alias" } else { "" };
        let kind = match (before.refs.get(dst).and_then(|r| r.commit.as_ref()), new) {
            (_, None) => "delete",
            (None, Some(_)) => "create",
            (Some(o), Some(n)) => match n.commit.as_deref() {
                Some(n) if n == o => "retarget",
                Some(n) if self.is_ancestor_model(o, n) => "fast-forward",
                _ => "rewind",
            },
        };
        format!("{kind} of {class}{via}")
    }

    /// Reachability from the model's own parent records (for labels only).
    fn is_ancestor_model(&self, a: &str, b: &str) -> bool {
        let (Some(a), Some(b)) = (self.id_of(a), self.id_of(b)) else {
            return false;
        };
        let mut stack = vec![b];
        let mut seen = HashSet::new();
        while let Some(c) = stack.pop() {
            if c == a {
                return true;
            }
            if seen.insert(c) {
                stack.extend(self.commits[&c].parents.iter().copied());
            }
        }
        false
    }

    /// What made a refused ref safe to accept, as far as the oracle can tell.
    fn detail(
        &self,
        judge: &Judge<'_>,
        code: &str,
        r: &str,
        hypo: &Snapshot,
        before: &Snapshot,
    ) -> String {
        if code != "agent-commit-unattested" {
            return String::new();
        }
        let Some(tip) = hypo
            .refs
            .get(&self.resolve(before, r))
            .and_then(|x| x.commit.clone())
        else {
            return String::new();
        };
        let need: Vec<String> = judge
            .graph
            .reach(&tip)
            .into_iter()
            .filter(|c| self.policy.require == Require::AllCommits || self.is_agent(c))
            .collect();
        if need.is_empty() {
            return ": no commit needs an attestation".into();
        }
        if judge.attested(&tip) {
            return ": tip attested".into();
        }
        let scope = match self.policy.scope {
            Scope::Tip => "tip",
            Scope::Each => "each",
        };
        if need.iter().all(|c| judge.attested(c)) {
            return format!(": tip unattested, every agent commit attested (scope {scope})");
        }
        format!(": tip unattested, agent commits covered below it (scope {scope})")
    }

    /// Replay `ops`, stopping at the first violation of `class` or, when `clean`, at the
    /// first violation of any class (shrinking).
    pub fn replay(policy: Policy, ops: &[Op], class: &str, clean: bool) -> World {
        let mut w = World::new(policy);
        w.judge_refusals = false;
        for op in ops {
            w.apply(op.clone());
            if w.first(class).is_some() || (clean && !w.found.is_empty()) {
                break;
            }
        }
        w
    }

    pub fn first(&self, class: &str) -> Option<&Found> {
        self.found.iter().find(|f| f.class == class)
    }

    /// The run as a self-contained bash script.
    pub fn script(&self, title: &str, upto: usize) -> String {
        let mut s = self.policy.preamble(title);
        s.push_str("\n# --- the operations\n");
        for op in &self.ops[..=upto.min(self.ops.len() - 1)] {
            s.push_str(&op.script());
            s.push('\n');
        }
        s
    }

    pub fn path(&self) -> &Path {
        &self.w
    }
}

/// `(code, ref)` of each `agentgate: refused [code] ref` line.
pub fn refusals(out: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.split("agentgate: refused [").nth(1) else {
            continue;
        };
        let Some((code, rest)) = rest.split_once(']') else {
            continue;
        };
        let r = rest.split_whitespace().next().unwrap_or_default();
        v.push((code.to_string(), r.to_string()));
    }
    v
}

/// The predicate type of a bundle line, read from its DSSE payload.
fn predicate(line: &str) -> Predicate {
    let v: serde_json::Value = serde_json::from_str(line).expect("bundle JSON");
    let payload = v["dsseEnvelope"]["payload"].as_str().expect("DSSE payload");
    let stmt = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .expect("base64 payload");
    let stmt: serde_json::Value = serde_json::from_slice(&stmt).expect("statement JSON");
    match stmt["predicateType"].as_str() {
        Some("https://slsa.dev/provenance/v1") => Predicate::Provenance,
        Some("https://in-toto.io/attestation/test-result/v0.1") => Predicate::TestResult,
        other => panic!("unexpected predicate type {other:?}"),
    }
}
