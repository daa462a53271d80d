//! The commit walk the hook decides by: `git rev-list TIP ^HIDDEN...` with git's own algorithm
//! (committer-date order, marks of uninteresting commits carried to their parents, the "slop"
//! rule for when to stop), over raw objects read once each, plus *stops*: commits that become
//! uninteresting where the walk reaches them (the current tips of protected refs, known to keep
//! the promise, and attested commits found on the way).
//!
//! Each commit is read with git's own parser (`object::parse_links`): the first `tree`, only the
//! `parent` lines right after it. Commits that end up in the result are also read for judging
//! (`object::read_commit`: canonical headers, message decoded) and handed to `visit` on a second
//! thread once a batch is waiting, so detection overlaps the walk on a two-core server.
//!
//! Clock skew deeper than the slop can only add commits to the result, never drop one: the
//! error is always towards judging more (tests/it/walk.rs checks the result against git rev-list).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};

use crate::backend::{BackendError, ObjectRead};
use crate::id::ObjectKind;
use crate::object::{self, Commit, ObjectError, Oid};
use crate::repo::ReadError;

/// Why a walk stopped without an answer.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// A commit on the way could not be read (missing, not a commit, or not parsable by git).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The walk itself failed (the detection thread panicked).
    #[error("running git walk: {0}")]
    Internal(String),
}

impl From<BackendError> for WalkError {
    fn from(e: BackendError) -> Self {
        WalkError::Read(e.into())
    }
}

/// What to walk.
pub struct Limits<'a> {
    pub tip: Oid,
    /// Commits whose ancestors never count (`^id`), whether the tip reaches them or not.
    pub hidden: &'a [Oid],
    /// Commits whose ancestors do not count where the walk reaches them from the tip.
    pub stops: &'a HashSet<Oid>,
}

/// One commit in the result: reachable from the tip, not from a hidden or reached stop commit.
#[derive(Debug)]
pub struct Entering<T> {
    pub id: Oid,
    pub tree: Oid,
    /// The parents git walks to.
    pub parents: Vec<Oid>,
    /// What `visit` returned, or why the commit cannot be read for judging.
    pub found: Result<Option<T>, ObjectError>,
}

/// What a walk found.
#[derive(Debug)]
pub struct Walked<T> {
    /// Newest first, in git's date order.
    pub commits: Vec<Entering<T>>,
    /// Hidden and stop commits reached directly from the tip or from a commit of the result.
    reached: HashSet<Oid>,
}

impl<T> Walked<T> {
    /// Was `id` (a hidden or stop commit) reached from the tip? For a single hidden commit this
    /// is exactly "is it an ancestor of the tip".
    pub fn reached(&self, id: &Oid) -> bool {
        self.reached.contains(id)
    }
}

const SEEN_UNINTERESTING: u8 = 1;
const IN_QUEUE: u8 = 2;
/// How many uninteresting-only rounds to keep walking (git's revision.c SLOP).
const SLOP: u32 = 5;
/// Commits handed to the detection thread at a time.
const BATCH: usize = 256;

struct Node {
    flags: u8,
    tree: Oid,
    parents: Vec<Oid>,
    /// The raw object, kept until the commit is taken (interesting commits only).
    raw: Option<Vec<u8>>,
}

type Batch = Vec<(Oid, Vec<u8>)>;
type Found<T> = Vec<(Oid, Result<Option<T>, ObjectError>)>;

/// The walk's state: git's `limit_list` over a date-ordered queue.
struct Walker<'a> {
    objects: &'a mut dyn ObjectRead,
    limits: &'a Limits<'a>,
    hidden: HashSet<Oid>,
    nodes: HashMap<Oid, Node>,
    /// (committer time, insertion order reversed, id): newest first, then first seen.
    queue: BinaryHeap<(u64, Reverse<u64>, Oid)>,
    seq: u64,
    interesting_queued: usize,
    /// Uninteresting marks for commits not read yet.
    marked: HashSet<Oid>,
    reached: HashSet<Oid>,
}

impl Walker<'_> {
    fn read(&mut self, id: Oid) -> Result<(Vec<u8>, object::Links), ReadError> {
        let (kind, data) = self
            .objects
            .read(&id)?
            .ok_or_else(|| ReadError::NotFound(id.to_object_id().to_string()))?;
        if kind != ObjectKind::Commit {
            return Err(ReadError::NotACommit {
                id: id.to_object_id().to_string(),
                kind: kind.to_string(),
            });
        }
        let links = object::parse_links(&id.to_object_id(), &data)?;
        Ok((data, links))
    }

    /// Add `id` to the walk, or mark it (and what it reaches, as far as read) uninteresting.
    fn insert(&mut self, id: Oid, mut uninteresting: bool) -> Result<(), ReadError> {
        if !uninteresting && (self.limits.stops.contains(&id) || self.hidden.contains(&id)) {
            self.reached.insert(id);
            uninteresting = true;
        }
        match self.nodes.entry(id) {
            Entry::Vacant(_) => {
                let uninteresting = uninteresting || self.marked.remove(&id);
                let (data, links) = self.read(id)?;
                let flags = IN_QUEUE | if uninteresting { SEEN_UNINTERESTING } else { 0 };
                if !uninteresting {
                    self.interesting_queued += 1;
                }
                let stack = if uninteresting {
                    links.parents.clone()
                } else {
                    Vec::new()
                };
                self.nodes.insert(
                    id,
                    Node {
                        flags,
                        tree: links.tree,
                        parents: links.parents,
                        raw: (!uninteresting).then_some(data),
                    },
                );
                self.seq += 1;
                self.queue.push((links.time, Reverse(self.seq), id));
                // As git does for a parent it marks: its own parents at once.
                self.mark_uninteresting(stack);
            }
            Entry::Occupied(_) if uninteresting => self.mark_uninteresting(vec![id]),
            Entry::Occupied(_) => {}
        }
        Ok(())
    }

    /// git's mark_parents_uninteresting: through every commit read so far; commits not read yet
    /// keep the mark for when they are.
    fn mark_uninteresting(&mut self, mut stack: Vec<Oid>) {
        while let Some(id) = stack.pop() {
            let Some(n) = self.nodes.get_mut(&id) else {
                self.marked.insert(id);
                continue;
            };
            if n.flags & SEEN_UNINTERESTING != 0 {
                continue;
            }
            n.flags |= SEEN_UNINTERESTING;
            n.raw = None;
            if n.flags & IN_QUEUE != 0 {
                self.interesting_queued -= 1;
            }
            stack.extend(n.parents.iter().copied());
        }
    }

    /// Take commits in date order until only uninteresting ones are left (git's
    /// still_interesting with its slop); interesting ones go to `hand_over` in batches.
    fn run(
        &mut self,
        taken: &mut Vec<Oid>,
        hand_over: &mut dyn FnMut(Batch) -> bool,
    ) -> Result<Batch, WalkError> {
        for h in self.limits.hidden {
            self.insert(*h, true)?;
        }
        self.insert(self.limits.tip, false)?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut slop = SLOP;
        // The date of the last interesting commit taken (git's `date` in limit_list).
        let mut last_date = u64::MAX;
        while let Some((time, _, id)) = self.queue.pop() {
            let (uninteresting, parents, raw) = {
                let n = self
                    .nodes
                    .get_mut(&id)
                    .ok_or_else(|| ReadError::NotFound(id.to_object_id().to_string()))?;
                n.flags &= !IN_QUEUE;
                let u = n.flags & SEEN_UNINTERESTING != 0;
                (u, n.parents.clone(), n.raw.take())
            };
            if !uninteresting {
                self.interesting_queued -= 1;
                last_date = time;
                taken.push(id);
                if let Some(raw) = raw {
                    batch.push((id, raw));
                    if batch.len() == BATCH && !hand_over(std::mem::take(&mut batch)) {
                        break; // the detection thread failed; its error is reported
                    }
                }
            }
            for p in parents {
                self.insert(p, uninteresting)?;
            }
            if uninteresting {
                slop = match self.queue.peek() {
                    None => 0,
                    Some(&(newest, _, _)) if last_date <= newest => SLOP,
                    Some(_) if self.interesting_queued > 0 => SLOP,
                    Some(_) => slop - 1,
                };
                if slop == 0 {
                    break;
                }
            }
        }
        Ok(batch)
    }
}

/// Read each commit of a batch for judging and ask `visit` about it.
fn judge<T>(batch: Batch, visit: &(dyn Fn(&Commit) -> Option<T> + Sync), found: &mut Found<T>) {
    for (id, raw) in batch {
        let result = object::read_commit(&id.to_object_id(), &raw).map(|c| visit(&c));
        found.push((id, result));
    }
}

/// Walk from `limits.tip` and judge every commit of the result with `visit`.
pub fn walk<T: Send>(
    objects: &mut dyn ObjectRead,
    limits: &Limits<'_>,
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
) -> Result<Walked<T>, WalkError> {
    let mut walker = Walker {
        objects,
        limits,
        hidden: limits.hidden.iter().copied().collect(),
        nodes: HashMap::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        interesting_queued: 0,
        marked: HashSet::new(),
        reached: HashSet::new(),
    };
    let mut taken = Vec::new();
    let found = std::thread::scope(|s| -> Result<Found<T>, WalkError> {
        type Worker<'s, T> = (
            std::sync::mpsc::SyncSender<Batch>,
            std::thread::ScopedJoinHandle<'s, Found<T>>,
        );
        // Detection runs inline for small walks (a typical push: no thread to start) and moves
        // to a second thread once a full batch is waiting.
        let mut worker: Option<Worker<'_, T>> = None;
        let mut hand_over = |batch: Batch| -> bool {
            let (tx, _) = worker.get_or_insert_with(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(8);
                let handle = s.spawn(move || {
                    let mut found = Vec::new();
                    for batch in rx {
                        judge(batch, visit, &mut found);
                    }
                    found
                });
                (tx, handle)
            });
            tx.send(batch).is_ok()
        };
        let last = walker.run(&mut taken, &mut hand_over);
        let mut found = match worker {
            None => Vec::new(),
            Some((tx, handle)) => {
                drop(tx);
                handle
                    .join()
                    .map_err(|_| WalkError::Internal("the detection thread panicked".into()))?
            }
        };
        // The last, partial batch (the whole walk, for a small push) on this thread.
        judge(last?, visit, &mut found);
        Ok(found)
    })?;

    // Commits taken while still interesting and marked uninteresting later (clock skew) are
    // not in the result, as in git's limit_list.
    let mut found: HashMap<Oid, Result<Option<T>, ObjectError>> = found.into_iter().collect();
    let mut commits = Vec::with_capacity(taken.len());
    for id in taken {
        let Some(n) = walker.nodes.get_mut(&id) else {
            continue;
        };
        if n.flags & SEEN_UNINTERESTING != 0 {
            continue;
        }
        let result = found.remove(&id).ok_or_else(|| {
            WalkError::Internal(format!(
                "commit {} was walked but not judged",
                id.to_object_id()
            ))
        })?;
        commits.push(Entering {
            id,
            tree: n.tree,
            parents: std::mem::take(&mut n.parents),
            found: result,
        });
    }
    Ok(Walked {
        commits,
        reached: walker.reached,
    })
}
