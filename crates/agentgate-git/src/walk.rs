//! The commit walk the hook decides by: `git rev-list TIP ^HIDDEN...` with git's own algorithm
//! (committer-date order, marks of uninteresting commits carried to their parents, the "slop"
//! rule for when to stop), over raw objects read once each, plus *stops*: commits that become
//! uninteresting where the walk reaches them (the current tips of protected refs, known to keep
//! the promise, and attested commits found on the way).
//!
//! Each commit is read with git's own parser (`object::parse_links`): the first `tree`, only the
//! `parent` lines right after it. Commits that end up in the result are also read for judging
//! (`object::read_commit`: canonical headers, message decoded) and handed to `visit` on judging
//! threads (one per core) once a batch is waiting, so detection overlaps the walk.
//!
//! A long walk (past [`GRAPH_AFTER`] objects) takes each commit's parents and date from git's
//! commit-graph when the repository has one (`graph.rs`), so it no longer waits for inflation,
//! and the objects are inflated by the judging threads, each through a reader of its own
//! ([`SharedRead::fork`]: pack entries read without libgit2's locks, `pack.rs`). The graph is
//! a hint, never a source: every commit whose links came from it is read from its object (to
//! judge it, or only to check it) and its tree, parents and date compared with the graph's; if
//! one differs or cannot be read, the whole walk is done again from objects alone. So the
//! result is the objects' walk whatever the graph says. A push's new commits are in its
//! quarantine, never in a graph: there the walk reads objects itself, through its own reader
//! once it has read [`FORK_AFTER`] of them.
//!
//! Clock skew deeper than the slop can only add commits to the result, never drop one: the
//! error is always towards judging more (tests/it/walk.rs checks the result against git rev-list).

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::backend::{BackendError, ObjectRead, SharedRead};
use crate::graph::CommitGraph;
use crate::id::ObjectKind;
use crate::object::{self, Commit, Links, ObjectError, Oid};
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
    pub found: Judged<T>,
}

/// What a walk found.
#[derive(Debug)]
pub struct Walked<T> {
    /// Newest first, in git's date order.
    pub commits: Vec<Entering<T>>,
    /// Hidden and stop commits reached directly from the tip or from a commit of the result.
    reached: HashSet<Oid>,
    /// Commits whose links the walk took from the commit-graph (each checked against its
    /// object).
    pub graph_links: usize,
    /// A walk with the commit-graph disagreed with the objects and was done again without it.
    pub graph_rejected: bool,
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
/// The node's links came from the commit-graph and must be checked against its object.
const FROM_GRAPH: u8 = 4;
/// The node went to a judging thread (judged, or only checked).
const SENT: u8 = 8;
/// How many uninteresting-only rounds to keep walking (git's revision.c SLOP).
const SLOP: u32 = 5;
/// Commits handed to the detection thread at a time.
const BATCH: usize = 256;
/// Objects read before the walk looks for a commit-graph: a typical push never opens it.
pub const GRAPH_AFTER: usize = 256;
/// Judging threads at most (the walk itself runs on the calling thread).
const MAX_WORKERS: usize = 4;

struct Node {
    flags: u8,
    tree: Oid,
    parents: Vec<Oid>,
    time: u64,
    /// The raw object, kept until the commit is taken (interesting commits only).
    raw: Option<Vec<u8>>,
}

/// One commit for a judging thread: its raw object when the walk read it, else what the graph
/// said it is (`expect`), to be read and checked there; judged or only checked.
struct Item {
    id: Oid,
    raw: Option<Vec<u8>>,
    expect: Option<Links>,
    /// Where its judging goes (its place among the taken commits); None: only check it.
    slot: Option<u32>,
}

type Batch = Vec<Item>;
/// What judging one commit gave: boxed, because a walk keeps one per entering commit and
/// almost all of them are `Ok(None)` (a human commit): 16 bytes each instead of the size of
/// the largest answer (100,000 commits kept about 25 MiB more unboxed).
pub type Judged<T> = Result<Option<Box<T>>, Box<ObjectError>>;
/// Each judged commit's slot and result.
type Found<T> = Vec<(u32, Judged<T>)>;

/// Where the walk reads objects: one reader, or one shared with the judging threads (and,
/// after [`FORK_AFTER`] objects, a reader of the walk's own: [`SharedRead::fork`]).
enum Reader<'a> {
    Exclusive(&'a mut dyn ObjectRead),
    Shared {
        shared: &'a dyn SharedRead,
        own: Option<Box<dyn ObjectRead + Send + 'a>>,
        reads: usize,
        /// When to ask for a reader of its own (again: four times later each time).
        next_fork: usize,
    },
}

/// Objects read through the shared reader before the walk takes one of its own: a typical push
/// never indexes the packs.
pub const FORK_AFTER: usize = 256;

impl<'o> Reader<'o> {
    fn new_shared(shared: &'o dyn SharedRead) -> Self {
        Reader::Shared {
            shared,
            own: None,
            reads: 0,
            next_fork: FORK_AFTER,
        }
    }

    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError> {
        match self {
            Reader::Exclusive(o) => o.read(id),
            Reader::Shared {
                shared,
                own,
                reads,
                next_fork,
            } => {
                *reads += 1;
                if own.is_none() && *reads >= *next_fork {
                    *own = shared.fork(*reads);
                    *next_fork = next_fork.saturating_mul(4);
                }
                if let Some(own) = own {
                    return own.read(id);
                }
                let mut out = None;
                shared.with_object(id, &mut |kind, data| out = Some((kind, data.to_vec())))?;
                Ok(out)
            }
        }
    }

    fn shared(&self) -> Option<&'o dyn SharedRead> {
        match self {
            Reader::Exclusive(_) => None,
            Reader::Shared { shared, .. } => Some(*shared),
        }
    }
}

/// The commit-graph once opened, and the graph positions of parents met in it (so that most
/// lookups need no search).
struct GraphState {
    graph: CommitGraph,
    positions: HashMap<Oid, u32>,
}

/// The walk's state: git's `limit_list` over a date-ordered queue.
struct Walker<'a, 'o> {
    objects: Reader<'o>,
    /// The commit-graph, once found (looked for once, after `graph_after` object reads).
    graph: Option<GraphState>,
    look_for_graph: bool,
    graph_after: usize,
    object_reads: usize,
    graph_links: usize,
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

impl Walker<'_, '_> {
    /// A commit's links: from the commit-graph when it has the commit (no raw object then, and
    /// true), else from the object.
    fn read(&mut self, id: Oid) -> Result<(Option<Vec<u8>>, Links, bool), ReadError> {
        if self.look_for_graph && self.object_reads >= self.graph_after {
            self.look_for_graph = false;
            self.graph = self
                .objects
                .shared()
                .and_then(|s| s.commit_graph())
                .map(|graph| GraphState {
                    graph,
                    positions: HashMap::new(),
                });
        }
        if let Some(g) = &mut self.graph {
            let pos = match g.positions.remove(&id) {
                Some(p) => Some(p),
                None => g.graph.lookup(&id),
            };
            if let Some(c) = pos.and_then(|p| g.graph.commit(p)) {
                for (p, pos) in c.links.parents.iter().zip(c.parent_positions) {
                    g.positions.insert(*p, pos);
                }
                self.graph_links += 1;
                return Ok((None, c.links, true));
            }
        }
        self.object_reads += 1;
        let (data, links) = self.read_object(id)?;
        Ok((Some(data), links, false))
    }

    fn read_object(&mut self, id: Oid) -> Result<(Vec<u8>, Links), ReadError> {
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
        let links = object::parse_links_of(&id, &data)?;
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
                let (data, links, from_graph) = self.read(id)?;
                let flags = IN_QUEUE
                    | if uninteresting { SEEN_UNINTERESTING } else { 0 }
                    | if from_graph { FROM_GRAPH } else { 0 };
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
                        time: links.time,
                        raw: data.filter(|_| !uninteresting),
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
            let (uninteresting, parents, item) = {
                let n = self
                    .nodes
                    .get_mut(&id)
                    .ok_or_else(|| ReadError::NotFound(id.to_object_id().to_string()))?;
                n.flags &= !IN_QUEUE;
                let u = n.flags & SEEN_UNINTERESTING != 0;
                let item = if n.flags & FROM_GRAPH != 0 {
                    n.flags |= SENT;
                    Some(Item {
                        id,
                        raw: None,
                        expect: Some(Links {
                            tree: n.tree,
                            parents: n.parents.clone(),
                            time: n.time,
                        }),
                        slot: None,
                    })
                } else {
                    n.raw.take().map(|raw| Item {
                        id,
                        raw: Some(raw),
                        expect: None,
                        slot: None,
                    })
                };
                // Lent to the loop below, not copied: inserting the parents only
                // reaches their ancestors, never this commit.
                (u, std::mem::take(&mut n.parents), item)
            };
            if !uninteresting {
                self.interesting_queued -= 1;
                last_date = time;
                taken.push(id);
            }
            if let Some(mut item) = item {
                if !uninteresting {
                    item.slot =
                        Some(u32::try_from(taken.len() - 1).map_err(|_| {
                            WalkError::Internal("more than 4 billion commits".into())
                        })?);
                }
                batch.push(item);
                if batch.len() == BATCH && !hand_over(std::mem::take(&mut batch)) {
                    break; // the detection thread failed; its error is reported
                }
            }
            let inserted = parents
                .iter()
                .try_for_each(|p| self.insert(*p, uninteresting));
            if let Some(n) = self.nodes.get_mut(&id) {
                n.parents = parents;
            }
            inserted?;
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

    /// The commits whose links came from the graph and that no judging thread has checked
    /// yet (read, but never taken): they shaped the walk too.
    fn unchecked(&self) -> Vec<Item> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.flags & (FROM_GRAPH | SENT) == FROM_GRAPH)
            .map(|(id, n)| Item {
                id: *id,
                raw: None,
                expect: Some(Links {
                    tree: n.tree,
                    parents: n.parents.clone(),
                    time: n.time,
                }),
                slot: None,
            })
            .collect()
    }
}

/// One commit read as git reads it and judged by `visit`.
fn judged<T>(
    id: &crate::ObjectId,
    raw: &[u8],
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
) -> Judged<T> {
    object::read_commit(id, raw)
        .map(|c| visit(&c).map(Box::new))
        .map_err(Box::new)
}

/// Where a judging thread reads the commits known only from the graph: a reader of its own
/// once it needs one ([`SharedRead::fork`]), else the walk's.
struct ThreadReader<'s> {
    shared: Option<&'s dyn SharedRead>,
    own: Option<Box<dyn ObjectRead + Send + 's>>,
    reads: usize,
    next_fork: usize,
    /// The commits the walk has handed to the judging threads so far: how long the walk is
    /// known to be, a better guess of what is left than this thread's own count.
    handed: Option<&'s AtomicUsize>,
}

impl<'s> ThreadReader<'s> {
    fn new(shared: Option<&'s dyn SharedRead>, handed: &'s AtomicUsize) -> Self {
        ThreadReader {
            shared,
            own: None,
            reads: 0,
            // A judging thread is started for a long walk: it asks at once.
            next_fork: 0,
            handed: Some(handed),
        }
    }

    /// Lend the object to `f`; false when it does not exist, None when there is no reader.
    fn with_object(
        &mut self,
        id: &Oid,
        f: &mut dyn FnMut(ObjectKind, &[u8]),
    ) -> Option<Result<bool, BackendError>> {
        let shared = self.shared?;
        self.reads += 1;
        if self.own.is_none() && self.reads >= self.next_fork {
            let walked = self.handed.map_or(0, |h| h.load(Ordering::Relaxed));
            let known = self.reads.max(walked).max(BATCH);
            self.own = shared.fork(known);
            self.next_fork = self.reads.max(BATCH).saturating_mul(4);
        }
        Some(match &mut self.own {
            Some(own) => own.with_object(id, f),
            None => shared.with_object(id, f),
        })
    }
}

/// Read each commit of a batch for judging and ask `visit` about it. A commit known only from
/// the graph is read here and checked first: any difference sets `stale`.
fn judge<T>(
    batch: Batch,
    objects: &mut ThreadReader<'_>,
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
    found: &mut Found<T>,
    stale: &AtomicBool,
) {
    for item in batch {
        if let Some(raw) = item.raw {
            if let Some(slot) = item.slot {
                found.push((slot, judged(&item.id.to_object_id(), &raw, visit)));
            }
            continue;
        }
        let mut outcome = None;
        let read = objects.with_object(&item.id, &mut |kind, data| {
            if kind != ObjectKind::Commit {
                return;
            }
            // git's reading once, compared with the graph's, then (to judge) the rest of the
            // commit read from the same bytes.
            let links = match object::parse_links_of(&item.id, data) {
                Ok(links) if Some(&links) == item.expect.as_ref() => links,
                _ => return,
            };
            outcome = Some(item.slot.map(|slot| {
                let result = object::read_commit_with(&item.id.to_object_id(), data, &links)
                    .map(|c| visit(&c).map(Box::new))
                    .map_err(Box::new);
                (slot, result)
            }));
        });
        match (read, outcome) {
            (Some(Ok(true)), Some(Some(judged))) => found.push(judged),
            (Some(Ok(true)), Some(None)) => {}
            _ => stale.store(true, Ordering::Relaxed),
        }
    }
}

/// How to walk; the default is what the hook does.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Objects read before the commit-graph is looked for (None: never use it; the default
    /// is [`GRAPH_AFTER`]). With the judging threads reading packs each on its own, the walk
    /// with the graph measured 15-20% faster than without (BENCHMARKS.md, issue 18).
    pub graph_after: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            graph_after: Some(GRAPH_AFTER),
        }
    }
}

/// Walk from `limits.tip` and judge every commit of the result with `visit`.
pub fn walk<T: Send>(
    objects: &mut dyn ObjectRead,
    limits: &Limits<'_>,
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
) -> Result<Walked<T>, WalkError> {
    walk_with_options(objects, limits, visit, Options::default())
}

/// [`walk`] with its options (tests force the commit-graph from the first commit).
pub fn walk_with_options<T: Send>(
    objects: &mut dyn ObjectRead,
    limits: &Limits<'_>,
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
    options: Options,
) -> Result<Walked<T>, WalkError> {
    let mut rejected = false;
    if let (Some(shared), Some(after)) = (objects.shared(), options.graph_after) {
        match walk_with(Reader::new_shared(shared), Some(after), limits, visit) {
            Ok(Some(walked)) => return Ok(walked),
            // The commit-graph said something its objects do not, or led the walk to an
            // object that cannot be read: walk the objects alone, whose answer (or error) is
            // the one that counts.
            Ok(None) => rejected = true,
            Err(e) => return Err(e),
        }
    }
    let reader = match objects.shared() {
        Some(shared) => Reader::new_shared(shared),
        None => Reader::Exclusive(objects),
    };
    let mut walked = walk_with(reader, None, limits, visit)?
        .ok_or_else(|| WalkError::Internal("the walk without a commit-graph used one".into()))?;
    walked.graph_rejected = rejected;
    Ok(walked)
}

/// One walk; None when a commit-graph was used and found to differ from the objects.
fn walk_with<T: Send>(
    objects: Reader<'_>,
    graph_after: Option<usize>,
    limits: &Limits<'_>,
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
) -> Result<Option<Walked<T>>, WalkError> {
    let shared = objects.shared();
    let mut walker = Walker {
        objects,
        graph: None,
        look_for_graph: graph_after.is_some(),
        graph_after: graph_after.unwrap_or(usize::MAX),
        graph_links: 0,
        object_reads: 0,
        limits,
        hidden: limits.hidden.iter().copied().collect(),
        nodes: HashMap::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        interesting_queued: 0,
        marked: HashSet::new(),
        reached: HashSet::new(),
    };
    let stale = AtomicBool::new(false);
    let handed = &AtomicUsize::new(0);
    let mut taken = Vec::new();
    let found = std::thread::scope(|s| -> Result<Found<T>, WalkError> {
        type Workers<'s, T> = (
            std::sync::mpsc::SyncSender<Batch>,
            Vec<std::thread::ScopedJoinHandle<'s, Found<T>>>,
        );
        // Detection runs inline for small walks (a typical push: no thread to start) and moves
        // to other threads once a full batch is waiting: one per core, as the walk itself is
        // light once the commit-graph gives the links.
        let mut workers: Option<Workers<'_, T>> = None;
        let stale = &stale;
        let mut start = || -> Workers<'_, T> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(8);
            let rx = std::sync::Arc::new(Mutex::new(rx));
            let n = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .clamp(1, MAX_WORKERS);
            let handles = (0..n)
                .map(|_| {
                    let rx = std::sync::Arc::clone(&rx);
                    s.spawn(move || {
                        let mut found = Vec::new();
                        let mut reader = ThreadReader::new(shared, handed);
                        loop {
                            let next = match rx.lock() {
                                Ok(rx) => rx.recv(),
                                Err(_) => break,
                            };
                            let Ok(batch) = next else { break };
                            judge(batch, &mut reader, visit, &mut found, stale);
                        }
                        found
                    })
                })
                .collect();
            (tx, handles)
        };
        let mut hand_over = |batch: Batch| -> bool {
            handed.fetch_add(batch.len(), Ordering::Relaxed);
            let (tx, _) = workers.get_or_insert_with(&mut start);
            tx.send(batch).is_ok()
        };
        let last = walker.run(&mut taken, &mut hand_over).map(|mut last| {
            last.extend(walker.unchecked());
            last
        });
        let mut found = Vec::new();
        let last = match (workers.take(), last) {
            (Some((tx, handles)), Ok(mut last)) => {
                // What is left goes to the threads too when there are many (graph checks).
                while last.len() > BATCH {
                    let rest = last.split_off(BATCH);
                    if tx.send(std::mem::replace(&mut last, rest)).is_err() {
                        break;
                    }
                }
                drop(tx);
                for h in handles {
                    found.extend(h.join().map_err(|_| {
                        WalkError::Internal("the detection thread panicked".into())
                    })?);
                }
                Ok(last)
            }
            (Some((tx, handles)), Err(e)) => {
                drop(tx);
                for h in handles {
                    let _ = h.join();
                }
                Err(e)
            }
            (None, last) => last,
        };
        // The last, partial batch (the whole walk, for a small push) on this thread.
        // (The walk's own thread: the rest of a long walk, or all of a short one, read through
        // the shared reader.)
        judge(
            last?,
            &mut ThreadReader {
                shared,
                own: None,
                reads: 0,
                next_fork: usize::MAX,
                handed: None,
            },
            visit,
            &mut found,
            stale,
        );
        Ok(found)
    });
    let found = match found {
        Ok(found) => found,
        // An error on a walk the graph steered may be the graph's doing (a parent that is not
        // one): the walk from objects alone decides.
        Err(_) if walker.graph_links > 0 => return Ok(None),
        Err(e) => return Err(e),
    };
    if stale.load(Ordering::Relaxed) {
        return Ok(None);
    }

    // Commits taken while still interesting and marked uninteresting later (clock skew) are
    // not in the result, as in git's limit_list.
    let mut results: Vec<Option<Judged<T>>> = Vec::new();
    results.resize_with(taken.len(), || None);
    for (slot, result) in found {
        if let Some(r) = results.get_mut(slot as usize) {
            *r = Some(result);
        }
    }
    let mut commits = Vec::with_capacity(taken.len());
    for (id, result) in taken.into_iter().zip(results) {
        let Some(n) = walker.nodes.get_mut(&id) else {
            continue;
        };
        if n.flags & SEEN_UNINTERESTING != 0 {
            continue;
        }
        let result = result.ok_or_else(|| {
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
    Ok(Some(Walked {
        commits,
        reached: walker.reached,
        graph_links: walker.graph_links,
        graph_rejected: false,
    }))
}
