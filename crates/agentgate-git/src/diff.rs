//! What a commit changes, as paths: the files (blobs, symlinks, submodules) whose tree entries
//! differ between two trees, for the policy's path rules. Trees are read raw through either
//! backend ([`ObjectRead`]) and compared level by level; a subtree with the same id on both
//! sides is never opened, so a typical commit costs the few trees along its changed paths.
//!
//! No rename detection: a rename is the old path removed and the new one added, and both are
//! reported, so a rule on either name sees it; pairing them could only hide one of the two.
//! A mode change (a file made executable, a file turned into a symlink) is a change.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::backend::{BackendError, ObjectRead};
use crate::id::ObjectKind;
use crate::object::{self, Oid};
use crate::repo::{ReadError, Repo};

/// Why the paths a commit changes could not be told.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A tree git's fsck would reject (a truncated entry, a duplicate name), or an object that
    /// is not the tree a commit or tree entry says it is.
    #[error("tree {id} cannot be read as a tree: {reason}")]
    Malformed { id: String, reason: String },
}

impl From<BackendError> for DiffError {
    fn from(e: BackendError) -> Self {
        DiffError::Read(e.into())
    }
}

/// git's mode of a subtree entry.
const MODE_TREE: &[u8] = b"40000";

/// One tree entry: its mode as written (compared as bytes: a different spelling is a change)
/// and its id.
struct Entry {
    mode: Vec<u8>,
    id: Oid,
}

impl Entry {
    fn is_tree(&self) -> bool {
        self.mode == MODE_TREE
    }
}

/// A tree's entries by name.
type Entries = BTreeMap<Vec<u8>, Entry>;

/// Parsed trees kept, counted in entries: a commit shares trees with its neighbours, so a few
/// thousand trees are plenty; bounded (a few MB) whatever the trees' sizes.
const CACHE_ENTRIES: usize = 50_000;

/// Reads trees and commits of one repository (the push's quarantine included) to tell what
/// commits change. One per decision: the `git` backend keeps one `cat-file --batch` process.
pub struct TreeDiff<'r> {
    objects: Box<dyn ObjectRead + 'r>,
    /// Trees already parsed: a commit's trees are its child's parent trees, so a run of
    /// commits reads each tree along the changed paths once, not twice.
    cache: HashMap<Oid, Rc<Entries>>,
    cached_entries: usize,
}

impl Repo {
    /// A [`TreeDiff`] over this repository's objects.
    pub fn tree_diff(&self) -> Result<TreeDiff<'_>, BackendError> {
        Ok(TreeDiff {
            objects: self.objects()?,
            cache: HashMap::new(),
            cached_entries: 0,
        })
    }
}

impl TreeDiff<'_> {
    /// The tree of commit `id`, as git's own parser reads it.
    pub fn commit_tree(&mut self, id: &Oid) -> Result<Oid, DiffError> {
        let (kind, raw) = self
            .objects
            .read(id)?
            .ok_or_else(|| ReadError::NotFound(id.to_object_id().to_string()))?;
        if kind != ObjectKind::Commit {
            return Err(ReadError::NotACommit {
                id: id.to_object_id().to_string(),
                kind: kind.to_string(),
            }
            .into());
        }
        let links = object::parse_links(&id.to_object_id(), &raw).map_err(ReadError::from)?;
        Ok(links.tree)
    }

    /// Every path whose entry differs between `old` (None: the empty tree, for a root commit)
    /// and `new`, appended to `out` (`/` between components; sorted within each directory).
    pub fn changed_paths(
        &mut self,
        old: Option<&Oid>,
        new: &Oid,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), DiffError> {
        self.diff(old, Some(new), &mut Vec::new(), out)
    }

    fn diff(
        &mut self,
        old: Option<&Oid>,
        new: Option<&Oid>,
        prefix: &mut Vec<u8>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), DiffError> {
        if old == new {
            return Ok(());
        }
        let old = match old {
            Some(id) => self.cached_tree(id)?,
            None => Rc::default(),
        };
        let new = match new {
            Some(id) => self.cached_tree(id)?,
            None => Rc::default(),
        };
        let mut names: Vec<&Vec<u8>> = old.keys().chain(new.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let (o, n) = (old.get(name), new.get(name));
            if let (Some(o), Some(n)) = (o, n) {
                if o.mode == n.mode && o.id == n.id {
                    continue;
                }
            }
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push(b'/');
            }
            prefix.extend_from_slice(name);
            let sub = |e: Option<&Entry>| e.filter(|e| e.is_tree()).map(|e| e.id);
            let leaf = |e: Option<&Entry>| e.is_some_and(|e| !e.is_tree());
            // The path itself changed when a file is on either side; whatever is under a
            // subtree on either side is compared with the other side's subtree (or nothing).
            if leaf(o) || leaf(n) {
                out.push(prefix.clone());
            }
            let (so, sn) = (sub(o), sub(n));
            if so.is_some() || sn.is_some() {
                self.diff(so.as_ref(), sn.as_ref(), prefix, out)?;
            }
            prefix.truncate(len);
        }
        Ok(())
    }

    /// [`Self::tree`], through the cache (emptied when full: runs of commits share trees with
    /// their neighbours, not with commits far away).
    fn cached_tree(&mut self, id: &Oid) -> Result<Rc<Entries>, DiffError> {
        if let Some(t) = self.cache.get(id) {
            return Ok(Rc::clone(t));
        }
        let t = Rc::new(self.tree(id)?);
        if self.cached_entries + t.len() > CACHE_ENTRIES {
            self.cache.clear();
            self.cached_entries = 0;
        }
        self.cached_entries += t.len();
        self.cache.insert(*id, Rc::clone(&t));
        Ok(t)
    }

    /// A tree's entries by name. Trees git's fsck rejects (a truncated entry, a duplicate
    /// name, an empty name) are errors: which entry a checkout would use is not ours to guess.
    fn tree(&mut self, id: &Oid) -> Result<Entries, DiffError> {
        let malformed = |reason: &str| DiffError::Malformed {
            id: id.to_object_id().to_string(),
            reason: reason.to_string(),
        };
        let (kind, raw) = self
            .objects
            .read(id)?
            .ok_or_else(|| ReadError::NotFound(id.to_object_id().to_string()))?;
        if kind != ObjectKind::Tree {
            return Err(malformed(&format!("it is a {kind}")));
        }
        let id_len = id.as_bytes().len();
        let mut entries = BTreeMap::new();
        let mut rest = raw.as_slice();
        while !rest.is_empty() {
            let sp = rest
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| malformed("an entry has no mode"))?;
            let (mode, after) = rest.split_at(sp);
            let after = after.get(1..).unwrap_or_default();
            let nul = after
                .iter()
                .position(|&b| b == 0)
                .ok_or_else(|| malformed("an entry has no name"))?;
            let (name, after) = after.split_at(nul);
            let raw_id = after
                .get(1..1 + id_len)
                .ok_or_else(|| malformed("an entry is truncated"))?;
            if name.is_empty() || mode.is_empty() {
                return Err(malformed("an entry has an empty name or mode"));
            }
            let entry = Entry {
                mode: mode.to_vec(),
                id: Oid::from_bytes(raw_id).ok_or_else(|| malformed("bad id"))?,
            };
            if entries.insert(name.to_vec(), entry).is_some() {
                return Err(malformed(&format!(
                    "two entries are named {:?}",
                    String::from_utf8_lossy(name)
                )));
            }
            rest = after.get(1 + id_len..).unwrap_or_default();
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ObjectId;
    use crate::testutil::git;

    fn oid(s: &str) -> Oid {
        Oid::from_object_id(&ObjectId::parse(s).unwrap())
    }

    /// Against `git diff-tree -r --no-renames --name-only` for every commit of a history with
    /// adds, deletes, renames, mode changes, file <-> directory swaps, symlinks, a submodule
    /// entry and a merge, in both object formats (libgit2, and `git cat-file` for SHA-256).
    #[test]
    fn changed_paths_agree_with_git_diff_tree() {
        for format in ["sha1", "sha256"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            git(
                d,
                &[
                    "init",
                    "-q",
                    "-b",
                    "main",
                    &format!("--object-format={format}"),
                ],
                None,
            );
            let write = |p: &str, text: &str| {
                let p = d.join(p);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            };
            let commit = |msg: &str| {
                git(d, &["add", "-A"], None);
                git(d, &["commit", "-q", "--allow-empty", "-m", msg], None);
            };
            write("a.txt", "a");
            write(".github/workflows/ci.yml", "on: push");
            write("src/deep/x/y.rs", "y");
            commit("root");
            write(".github/workflows/ci.yml", "on: pull_request");
            write("new/file", "n");
            std::fs::remove_file(d.join("a.txt")).unwrap();
            commit("edit add delete");
            git(d, &["mv", "src/deep/x/y.rs", "src/z.rs"], None);
            commit("rename");
            git(d, &["update-index", "--chmod=+x", "src/z.rs"], None);
            commit("mode");
            std::fs::remove_dir_all(d.join("new")).unwrap();
            write("new", "now a file");
            std::os::unix::fs::symlink("src/z.rs", d.join("link")).unwrap();
            commit("dir to file, symlink");
            let head = git(d, &["rev-parse", "HEAD"], None);
            git(
                d,
                &[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("160000,{head},sub"),
                ],
                None,
            );
            commit("submodule");
            git(d, &["checkout", "-q", "-b", "side", "HEAD~2"], None);
            write("side.txt", "s");
            write(".github/workflows/ci.yml", "evil");
            commit("side");
            git(d, &["checkout", "-q", "main"], None);
            git(
                d,
                &["merge", "-q", "--no-edit", "-X", "theirs", "side"],
                None,
            );

            let repo = Repo::open(Some(d)).unwrap();
            let mut td = repo.tree_diff().unwrap();
            let all = git(d, &["rev-list", "--all"], None);
            for c in all.lines() {
                let parents = git(d, &["rev-list", "--parents", "-n1", c], None);
                let parents: Vec<&str> = parents.split(' ').skip(1).collect();
                let tree = td.commit_tree(&oid(c)).unwrap();
                let bases: Vec<Option<&str>> = if parents.is_empty() {
                    vec![None]
                } else {
                    parents.iter().map(|p| Some(*p)).collect()
                };
                for base in bases {
                    let expected = match base {
                        None => git(d, &["ls-tree", "-r", "--name-only", c], None),
                        Some(p) => git(
                            d,
                            &["diff-tree", "-r", "--no-renames", "--name-only", p, c],
                            None,
                        ),
                    };
                    let mut expected: Vec<&str> = expected.lines().collect();
                    expected.sort();
                    let old = base.map(|p| td.commit_tree(&oid(p)).unwrap());
                    let mut ours = Vec::new();
                    td.changed_paths(old.as_ref(), &tree, &mut ours).unwrap();
                    let mut ours: Vec<String> = ours
                        .into_iter()
                        .map(|p| String::from_utf8(p).unwrap())
                        .collect();
                    ours.sort();
                    assert_eq!(ours, expected, "{format} {c} vs {base:?}");
                }
            }

            // A tree with the same name twice is refused, not guessed at.
            let blob = git(d, &["hash-object", "-w", "--stdin"], Some(b"x"));
            let dup = git(
                d,
                &["mktree", "--missing"],
                Some(format!("100644 blob {blob}\tf\n100755 blob {blob}\tf\n").as_bytes()),
            );
            let empty = git(d, &["mktree"], Some(b""));
            match td.changed_paths(Some(&oid(&empty)), &oid(&dup), &mut Vec::new()) {
                Err(DiffError::Malformed { .. }) => {}
                other => panic!("{format}: {other:?}"),
            }
        }
    }
}
