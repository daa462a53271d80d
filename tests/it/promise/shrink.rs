//! Shrinking a failing run so that the printed script is short enough to read. Replays are
//! slow (real pushes), so the cheap, likely cuts come first, each checked by one replay: the
//! pushes that changed nothing on the server, then whole kinds of operations (note copies, the
//! alias, signatures, other refs' pushes, commits nothing pushed needs); then delta debugging
//! within each kind (pushes, signatures), then over everything, while time lasts. A cut is kept
//! when a replay still breaks the promise the same way (the same class of violation).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::ops::{Op, Policy, TreeSpec, Update, Value};
use super::world::World;

/// A failing run: the operations up to and including the push after which the violation was
/// seen, its class, the ref it broke, and which pushes changed nothing on the server.
#[derive(Clone, Debug)]
pub struct Failing {
    pub class: String,
    pub r#ref: String,
    pub ops: Vec<Op>,
    pub inert: BTreeSet<usize>,
    /// The server kept the promise before the violating push; the shrunk sequence must keep
    /// it too until its last push.
    pub clean: bool,
}

struct Shrinker<'a> {
    policy: &'a Policy,
    class: &'a str,
    clean: bool,
    deadline: Instant,
    replays: usize,
}

impl Shrinker<'_> {
    fn fails(&mut self, ops: &[Op]) -> bool {
        self.replays += 1;
        World::replay(self.policy.clone(), ops, self.class, self.clean)
            .first(self.class)
            .is_some()
    }

    fn out_of_time(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Keep the ops `keep` selects (by index) if the violation survives without the others.
    fn cut(&mut self, ops: &mut Vec<Op>, keep: impl Fn(usize, &Op) -> bool) {
        if self.out_of_time() {
            return;
        }
        let candidate: Vec<Op> = ops
            .iter()
            .enumerate()
            .filter(|(i, op)| keep(*i, op))
            .map(|(_, op)| op.clone())
            .collect();
        if candidate.len() < ops.len() && !candidate.is_empty() && self.fails(&candidate) {
            *ops = candidate;
        }
    }

    fn replace(&mut self, ops: &mut Vec<Op>, candidate: Vec<Op>) {
        if !self.out_of_time() && self.fails(&candidate) {
            *ops = candidate;
        }
    }

    /// Delta debugging over the ops `select` picks (the last op, the violating push, stays).
    fn ddmin(&mut self, ops: &mut Vec<Op>, select: impl Fn(&Op) -> bool) {
        let mut n = 2;
        loop {
            let last = ops.len() - 1;
            let idx: Vec<usize> = (0..last).filter(|&i| select(&ops[i])).collect();
            if idx.is_empty() || self.out_of_time() {
                return;
            }
            let n_now = n.min(idx.len());
            let chunk = idx.len().div_ceil(n_now);
            let mut reduced = false;
            for part in idx.chunks(chunk) {
                if self.out_of_time() {
                    return;
                }
                let drop: BTreeSet<usize> = part.iter().copied().collect();
                let candidate: Vec<Op> = ops
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !drop.contains(i))
                    .map(|(_, op)| op.clone())
                    .collect();
                if self.fails(&candidate) {
                    *ops = candidate;
                    n = (n_now - 1).max(2);
                    reduced = true;
                    break;
                }
            }
            if !reduced {
                if n_now >= idx.len() {
                    return;
                }
                n = (n_now * 2).min(idx.len());
            }
        }
    }
}

/// The smallest sequence found within `budget` that still breaks the promise the same way,
/// and how many replays it took.
pub fn shrink(policy: &Policy, failing: &Failing, budget: Duration) -> (Vec<Op>, usize) {
    let mut s = Shrinker {
        policy,
        class: &failing.class,
        clean: failing.clean,
        deadline: Instant::now() + budget,
        replays: 0,
    };
    let mut ops = failing.ops.clone();
    let last = ops.len() - 1;
    let is_push = |op: &Op| matches!(op, Op::Push { .. });

    let target = failing.r#ref.as_str();
    let touches = |u: &Update| {
        u.dst == target || (u.dst == "refs/heads/master" && target == "refs/heads/main")
    };
    s.cut(&mut ops, |i, _| !failing.inert.contains(&i) || i == last);
    // The violating push with only its updates of the broken ref.
    if let Some(Op::Push {
        clone,
        updates,
        notes,
    }) = ops.last().cloned()
    {
        let kept: Vec<Update> = updates.iter().filter(|u| touches(u)).cloned().collect();
        if !kept.is_empty() && kept.len() < updates.len() {
            let mut candidate = ops.clone();
            let n = candidate.len() - 1;
            candidate[n] = Op::Push {
                clone,
                updates: kept,
                notes,
            };
            s.replace(&mut ops, candidate);
        }
    }
    let n = ops.len() - 1;
    s.cut(&mut ops, |i, op| match op {
        Op::Push { updates, .. } => i == n || updates.is_empty() || updates.iter().any(touches),
        _ => true,
    });
    let (commits, tags) = needed(&ops);
    s.cut(&mut ops, |_, op| match op {
        Op::Commit { id, .. } => commits.contains(id),
        Op::Tag { id, .. } => tags.contains(id),
        _ => true,
    });
    s.cut(&mut ops, |_, op| {
        !matches!(op, Op::TreeNote { .. } | Op::CopyNote { .. })
    });
    s.cut(&mut ops, |_, op| !matches!(op, Op::Alias));
    s.cut(&mut ops, |_, op| !matches!(op, Op::Sign { .. }));
    // Signatures that never reach the server (no later notes push from their clone), that
    // cannot count (untrusted key, failed tests), or that repeat an earlier one.
    let reaching: BTreeSet<usize> = (0..ops.len())
        .filter(|&i| match &ops[i] {
            Op::Sign { clone, .. } => ops[i..]
                .iter()
                .any(|later| matches!(later, Op::Push { clone: c, notes: true, .. } if c == clone)),
            _ => true,
        })
        .collect();
    s.cut(&mut ops, |i, _| reaching.contains(&i));
    s.cut(&mut ops, |_, op| {
        !matches!(
            op,
            Op::Sign { trusted: false, .. } | Op::Sign { passed: false, .. }
        )
    });
    let mut seen = BTreeSet::new();
    let first: Vec<bool> = ops
        .iter()
        .map(|op| match op {
            Op::Sign {
                commit,
                trusted,
                passed,
                ..
            } => seen.insert((*commit, *trusted, *passed)),
            _ => true,
        })
        .collect();
    s.cut(&mut ops, |i, _| first[i]);
    s.ddmin(&mut ops, is_push);
    let (commits, tags) = needed(&ops);
    s.cut(&mut ops, |_, op| match op {
        Op::Commit { id, .. } => commits.contains(id),
        Op::Tag { id, .. } => tags.contains(id),
        _ => true,
    });
    s.ddmin(&mut ops, |op| matches!(op, Op::Sign { .. }));
    s.ddmin(&mut ops, |op| matches!(op, Op::Commit { .. }));
    s.ddmin(&mut ops, |_| true);
    (ops, s.replays)
}

/// Commits and tags the pushes need: the commits they set refs to (directly or through a
/// tag), and their parents and tree sources, transitively. (Signatures of other commits go
/// with them.)
fn needed(ops: &[Op]) -> (BTreeSet<usize>, BTreeSet<usize>) {
    let mut tags = HashMap::new();
    let mut used_tags = BTreeSet::new();
    let mut deps = HashMap::new();
    let mut stack = Vec::new();
    for op in ops {
        match op {
            Op::Commit {
                id, parents, tree, ..
            } => {
                let mut d = parents.clone();
                if let TreeSpec::SameAs(t) = tree {
                    d.push(*t);
                }
                deps.insert(*id, d);
            }
            Op::Tag { id, commit } => {
                tags.insert(*id, *commit);
            }
            Op::Push { updates, .. } => {
                for u in updates {
                    match u.value {
                        Value::Commit(c) => stack.push(c),
                        Value::Tag(t) => {
                            used_tags.insert(t);
                            stack.extend(tags.get(&t).copied());
                        }
                        Value::Delete => {}
                    }
                }
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(c) = stack.pop() {
        if seen.insert(c) {
            stack.extend(deps.get(&c).into_iter().flatten().copied());
        }
    }
    (seen, used_tags)
}
