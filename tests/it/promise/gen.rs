//! The random side of a model run: a seeded PRNG (no dependency), the policy a seed picks,
//! and steps of commits, signatures, note copies and one push of several refs, drawn so that a
//! good share of pushes is accepted (a diligent gate signs what it needs) and the rest probes
//! the edges: rewinds, deletions, tags on old commits, aliases, namespaces, replayed notes.

use std::collections::{BTreeSet, HashSet};

use super::ops::{Bind, Hook, Op, Policy, Require, Scope, Site, Style, TreeSpec, Update, Value};
use super::oracle::protected;
use super::world::World;

/// splitmix64: small, seedable, good enough to draw test cases.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_a6e7_6a7e_0001)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// 0..n
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability p/100.
    pub fn pct(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

/// The policy of a seed: its low three bits choose scope, require and bind (so eight
/// consecutive seeds cover every combination); the rest is drawn.
pub fn policy(seed: u64) -> Policy {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    Policy {
        scope: if seed & 1 == 0 {
            Scope::Tip
        } else {
            Scope::Each
        },
        require: if seed & 2 == 0 {
            Require::AgentCommits
        } else {
            Require::AllCommits
        },
        bind: if seed & 4 == 0 {
            Bind::Commit
        } else {
            Bind::Tree
        },
        allow_non_fast_forward: rng.pct(35),
        allow_delete: rng.pct(35),
        hook: if rng.pct(25) {
            Hook::Update
        } else {
            Hook::PreReceive
        },
    }
}

pub struct Gen {
    rng: Rng,
    next_commit: usize,
    next_tag: usize,
    date: i64,
    alias_planned: bool,
    /// Commits signed with the trusted key and a passed result, in some clone.
    signed: HashSet<usize>,
    /// (commit, clone) pairs that carry a note there.
    noted: Vec<(usize, Site)>,
}

const START: i64 = 1_767_225_600; // 2026-01-01

impl Gen {
    pub fn new(seed: u64) -> Gen {
        let mut rng = Rng::new(seed);
        let alias_planned = rng.pct(70);
        Gen {
            rng,
            next_commit: 0,
            next_tag: 0,
            date: START,
            alias_planned,
            signed: HashSet::new(),
            noted: Vec::new(),
        }
    }

    /// Commits (ids) reachable, by the model's records, from the server's protected tips.
    fn server_history(&self, w: &World) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<usize> = w
            .server
            .refs
            .iter()
            .filter(|(n, _)| protected(n))
            .filter_map(|(_, r)| r.commit.as_deref().and_then(|c| w.id_of(c)))
            .collect();
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                stack.extend(w.commits[&c].parents.iter().copied());
            }
        }
        seen.into_iter().collect()
    }

    fn history(&self, w: &World, tip: usize) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![tip];
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                stack.extend(w.commits[&c].parents.iter().copied());
            }
        }
        seen.into_iter().collect()
    }

    fn any(&mut self, w: &World) -> usize {
        let ids: Vec<usize> = w.commits.keys().copied().collect();
        self.rng.pick(&ids)
    }

    fn newest(&self, w: &World) -> usize {
        *w.commits.keys().next_back().expect("a commit")
    }

    /// A parent for new work: mostly the newest commit or a server tip.
    fn base(&mut self, w: &World) -> usize {
        let r = self.rng.below(100);
        if r < 50 {
            return self.newest(w);
        }
        if r < 80 {
            let tips: Vec<usize> = w
                .server
                .refs
                .values()
                .filter_map(|r| r.commit.as_deref().and_then(|c| w.id_of(c)))
                .collect();
            if !tips.is_empty() {
                return self.rng.pick(&tips);
            }
        }
        self.any(w)
    }

    fn commit(&mut self, w: &mut World) -> usize {
        let id = self.next_commit;
        self.next_commit += 1;
        let mut parents = Vec::new();
        if !w.commits.is_empty() && !self.rng.pct(3) {
            parents.push(self.base(w));
            let extra = match self.rng.below(100) {
                0..=79 => 0,
                80..=94 => 1,
                _ => 2,
            };
            for _ in 0..extra {
                let p = self.any(w);
                if !parents.contains(&p) {
                    parents.push(p);
                }
            }
        }
        let style = match self.rng.below(8) {
            0..=3 => Style::Human,
            4 | 5 => Style::Trailer,
            6 => Style::Author,
            _ => Style::Committer,
        };
        let tree = if !w.commits.is_empty() && self.rng.pct(20) {
            TreeSpec::SameAs(self.any(w))
        } else {
            TreeSpec::Fresh
        };
        self.date += 60;
        // Clock skew: committer dates out of order, into the past or the future.
        let date = if self.rng.pct(20) {
            self.date + self.rng.below(6 * 86_400) as i64 - 3 * 86_400
        } else {
            self.date
        };
        assert!(w.apply(Op::Commit {
            id,
            parents,
            tree,
            style,
            date,
        }));
        id
    }

    fn sign(&mut self, w: &mut World, commit: usize, trusted: bool, passed: bool, clone: Site) {
        w.apply(Op::Sign {
            commit,
            trusted,
            passed,
            clone,
        });
        if trusted && passed {
            self.signed.insert(commit);
        }
        self.noted.push((commit, clone));
    }

    /// A ref to push to, not already in `taken` (by the name it resolves to).
    fn dst(&mut self, w: &World, taken: &[String]) -> Option<String> {
        for _ in 0..8 {
            let r = self.rng.below(100);
            let d = match r {
                0..=33 => "refs/heads/main".to_string(),
                34..=49 => format!("refs/heads/release/{}", 1 + self.rng.below(4)),
                50..=71 => format!("refs/tags/v{}", 1 + self.rng.below(8)),
                72..=81 => self
                    .rng
                    .pick(&["refs/heads/dev", "refs/heads/topic", "refs/tags/nightly"])
                    .to_string(),
                82..=87 => self
                    .rng
                    .pick(&[
                        "refs/namespaces/ns/refs/heads/main",
                        "refs/namespaces/ns/refs/tags/v1",
                    ])
                    .to_string(),
                _ if w.alias => "refs/heads/master".to_string(),
                _ => "refs/heads/main".to_string(),
            };
            let canon = |s: &str| {
                if s == "refs/heads/master" {
                    "refs/heads/main".to_string()
                } else {
                    s.to_string()
                }
            };
            if !taken.iter().any(|t| canon(t) == canon(&d)) {
                return Some(d);
            }
        }
        None
    }

    /// The commit a ref is set to. A created ref often lands on an old commit under a
    /// protected tip, an agent commit more often than not: a tag or branch there must still
    /// keep the promise (issue 11, repro-4).
    fn target(&mut self, w: &World, fresh: &[usize], creating: bool) -> usize {
        let r = self.rng.below(100);
        let old = if creating { 60 } else { 30 };
        if r < old {
            let h = self.server_history(w);
            let agents: Vec<usize> = h
                .iter()
                .copied()
                .filter(|c| w.commits[c].style.is_agent())
                .collect();
            if !agents.is_empty() && self.rng.pct(60) {
                return self.rng.pick(&agents);
            }
            if !h.is_empty() {
                return self.rng.pick(&h);
            }
        }
        if r < old + 45 {
            if let Some(&c) = fresh.last() {
                return c;
            }
            return self.newest(w);
        }
        self.any(w)
    }

    /// One step: maybe the alias, new commits, signatures, note copies, then a push (and maybe
    /// a notes push from the gate before it). Returns the number of pushes.
    pub fn step(&mut self, w: &mut World) -> usize {
        let mut pushes = 0;
        if self.alias_planned && !w.alias && self.rng.pct(15) {
            w.apply(Op::Alias);
        }
        let n = if w.commits.is_empty() {
            1 + self.rng.below(3)
        } else {
            self.rng.pick(&[0, 1, 1, 2, 2, 3, 4])
        };
        let fresh: Vec<usize> = (0..n).map(|_| self.commit(w)).collect();

        // The push's updates.
        let mut updates: Vec<Update> = Vec::new();
        let mut taken = Vec::new();
        let count = match self.rng.below(100) {
            0..=59 => 1,
            60..=87 => 2,
            _ => 3,
        };
        let notes_only = self.rng.pct(5);
        for _ in 0..if notes_only { 0 } else { count } {
            let Some(dst) = self.dst(w, &taken) else {
                continue;
            };
            taken.push(dst.clone());
            let resolved = if dst == "refs/heads/master" {
                "refs/heads/main"
            } else {
                dst.as_str()
            };
            let exists = w.server.refs.contains_key(resolved);
            let value = if exists && self.rng.pct(10) {
                Value::Delete
            } else {
                let mut c = self.target(w, &fresh, !exists);
                let current = w.server.refs.get(resolved).and_then(|r| r.commit.clone());
                if current.as_deref() == Some(w.sha(c)) {
                    c = self.target(w, &fresh, !exists);
                }
                if dst.contains("/tags/") && self.rng.pct(40) {
                    let id = self.next_tag;
                    self.next_tag += 1;
                    w.apply(Op::Tag { id, commit: c });
                    Value::Tag(id)
                } else {
                    Value::Commit(c)
                }
            };
            updates.push(Update { dst, value });
        }

        // Signatures: a diligent gate signs what the pushed tips need; others are random (and
        // sometimes untrusted or failed).
        let pushed: Vec<usize> = updates
            .iter()
            .filter_map(|u| match u.value {
                Value::Commit(c) => Some(c),
                Value::Tag(t) => Some(w.tags[&t].commit),
                Value::Delete => None,
            })
            .collect();
        let gate = self.rng.pct(25);
        let site = if gate { Site::Gate } else { Site::Dev };
        if self.rng.pct(45) {
            let mut todo = Vec::new();
            for &tip in &pushed {
                match w.policy.scope {
                    Scope::Tip => todo.push(tip),
                    Scope::Each => todo.extend(self.history(w, tip).into_iter().filter(|c| {
                        w.policy.require == Require::AllCommits || w.commits[c].style.is_agent()
                    })),
                }
            }
            todo.retain(|c| !self.signed.contains(c));
            todo.sort_unstable();
            todo.dedup();
            for c in todo.into_iter().rev().take(5) {
                self.sign(w, c, true, true, site);
            }
        }
        for _ in 0..self.rng.pick(&[0, 0, 1, 1, 1, 2, 3]) {
            let r = self.rng.below(100);
            let c = if r < 40 && !pushed.is_empty() {
                self.rng.pick(&pushed)
            } else if r < 70 {
                let agents: Vec<usize> = w
                    .commits
                    .iter()
                    .filter(|(_, c)| c.style.is_agent())
                    .map(|(id, _)| *id)
                    .collect();
                if agents.is_empty() {
                    self.any(w)
                } else {
                    self.rng.pick(&agents)
                }
            } else {
                self.any(w)
            };
            let trusted = self.rng.pct(80);
            let passed = self.rng.pct(80);
            let site = if self.rng.pct(30) {
                Site::Gate
            } else {
                Site::Dev
            };
            self.sign(w, c, trusted, passed, site);
        }
        // Notes moved around: onto a tree (found under bind = "tree"), or replayed onto a twin
        // (same tree) or onto any commit.
        if !self.noted.is_empty() && self.rng.pct(10) {
            let (c, site) = self.rng.pick(&self.noted);
            w.apply(Op::TreeNote {
                commit: c,
                clone: site,
            });
        }
        if !self.noted.is_empty() && self.rng.pct(10) {
            let (from, site) = self.rng.pick(&self.noted);
            let tree = w.commits[&from].tree.clone();
            let twins: Vec<usize> = w
                .commits
                .iter()
                .filter(|(id, c)| c.tree == tree && **id != from)
                .map(|(id, _)| *id)
                .collect();
            let to = if !twins.is_empty() && self.rng.pct(75) {
                self.rng.pick(&twins)
            } else {
                self.any(w)
            };
            if to != from {
                w.apply(Op::CopyNote {
                    from,
                    to,
                    clone: site,
                });
                self.noted.push((to, site));
            }
        }

        // The gate pushes its notes on its own, before the developer's push.
        if self.noted.iter().any(|(_, s)| *s == Site::Gate)
            && self.rng.pct(if gate { 80 } else { 15 })
            && w.apply(Op::Push {
                clone: Site::Gate,
                updates: Vec::new(),
                notes: true,
            })
        {
            pushes += 1;
        }
        let notes = notes_only || self.rng.pct(70);
        if w.apply(Op::Push {
            clone: Site::Dev,
            updates,
            notes,
        }) {
            pushes += 1;
        }
        pushes
    }
}

/// Run `pushes` pushes of seed `seed` (continuing after violations, so every run reports its
/// figures).
pub fn run(seed: u64, pushes: usize) -> World {
    let mut w = World::new(policy(seed));
    let mut g = Gen::new(seed);
    let mut done = 0;
    let mut idle = 0;
    while done < pushes {
        let n = g.step(&mut w);
        done += n;
        idle = if n == 0 { idle + 1 } else { 0 };
        assert!(idle < 50, "seed {seed}: the generator makes no pushes");
    }
    w
}
