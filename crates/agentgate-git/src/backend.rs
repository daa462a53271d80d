//! Where raw objects come from: libgit2's object database or a `git cat-file --batch` process.
//! Both only hand over bytes; [`crate::object`] reads them as git does.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::sync::Arc;

use crate::graph::CommitGraph;
use crate::id::{ObjectId, ObjectKind};
use crate::object::Oid;
use crate::pack::{PackReader, Packs};
use crate::repo::Repo;

/// The backend itself failed: libgit2 returned an error, or a `git` child process could not be
/// run or did not answer as expected. Every operation's error can be this.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("git: {0}")]
    Libgit2(Libgit2Error),
    #[error("running git {args}: {message}")]
    Command { args: String, message: String },
}

impl From<git2::Error> for BackendError {
    fn from(e: git2::Error) -> Self {
        BackendError::Libgit2(Libgit2Error(e))
    }
}

/// libgit2's error as a person should read it: its message, never libgit2's class and code
/// numbers ("class=Config (7); code=Owner (-36)"), and what to do where that is known. Every
/// libgit2 error that leaves this crate is wrapped in it.
#[derive(Debug)]
pub struct Libgit2Error(pub(crate) git2::Error);

impl Libgit2Error {
    /// libgit2's own code, for callers that tell cases apart.
    pub fn code(&self) -> git2::ErrorCode {
        self.0.code()
    }
}

impl From<git2::Error> for Libgit2Error {
    fn from(e: git2::Error) -> Self {
        Libgit2Error(e)
    }
}

impl std::fmt::Display for Libgit2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.0.message().trim_end_matches('.');
        match self.0.code() {
            git2::ErrorCode::Owner => write!(
                f,
                "{message}: the repository belongs to another user, and git reads a repository only as its owner (safe.directory); run agentgate as that user"
            ),
            _ => f.write_str(message),
        }
    }
}

impl std::error::Error for Libgit2Error {}

impl BackendError {
    pub(crate) fn command(args: &str, message: impl ToString) -> BackendError {
        BackendError::Command {
            args: args.to_string(),
            message: message.to_string(),
        }
    }
}

/// Reads raw objects by id: the walk's only access to a repository.
pub trait ObjectRead {
    /// The object's kind and bytes (git's header stripped), or None when it does not exist.
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError>;

    /// A reader other threads can use at the same time, when the backend has one.
    fn shared(&self) -> Option<&dyn SharedRead> {
        None
    }

    /// Hand the object's kind and bytes to `f` (lent, where the reader can avoid a copy);
    /// false when it does not exist.
    fn with_object(
        &mut self,
        id: &Oid,
        f: &mut dyn FnMut(ObjectKind, &[u8]),
    ) -> Result<bool, BackendError> {
        Ok(match self.read(id)? {
            Some((kind, data)) => {
                f(kind, &data);
                true
            }
            None => false,
        })
    }
}

/// Raw objects read from several threads at once, each lent to `f` without a copy.
pub trait SharedRead: Sync {
    /// Hand the object's kind and bytes to `f`; false when it does not exist.
    fn with_object(
        &self,
        id: &Oid,
        f: &mut dyn FnMut(ObjectKind, &[u8]),
    ) -> Result<bool, BackendError>;

    /// The repository's commit-graph, when there is one the walk may use as a hint.
    fn commit_graph(&self) -> Option<CommitGraph> {
        None
    }

    /// A reader of the same objects for one thread that has read `reads` objects and is
    /// likely to read as many more (None: keep using this one). libgit2 takes a per-pack and a
    /// global lock for every object it reads, so threads reading through it mostly wait for
    /// each other; a fork reads packs itself (`pack.rs`), once the walk is long enough to pay
    /// for reading the packs' indexes.
    fn fork(&self, _reads: usize) -> Option<Box<dyn ObjectRead + Send + '_>> {
        None
    }
}

/// libgit2's object database, the push's quarantine included. Hash re-verification and the
/// object cache are off: git verified the pushed objects when it received them, and the walk
/// reads each object once.
pub(crate) struct Git2Objects<'r> {
    pub(crate) odb: git2::Odb<'r>,
    /// The repository's own object directory, where git keeps its commit-graph.
    pub(crate) objects_dir: std::path::PathBuf,
    /// The object directories `odb` reads after `objects_dir` (the push's quarantine).
    pub(crate) extra_dirs: Vec<std::path::PathBuf>,
    /// Their packs, indexed once for all forks (None: none this reader can read).
    pub(crate) packs: std::sync::OnceLock<Option<Arc<Packs>>>,
    /// The size of their packs' indexes, looked up once.
    pub(crate) index_bytes: std::sync::OnceLock<u64>,
}

/// Index bytes a fork may read per object its thread has read: reading 4 KiB of a cached
/// `.idx` costs about what one object read through libgit2's locks costs more than through
/// a fork, and a thread that has read N objects is likely to read N more. So a typical push
/// (a few commits) never reads an index, and a long walk in a huge repository reads it only
/// once the walk is long enough.
const INDEX_BYTES_PER_READ: u64 = 4096;

/// A thread's own reader: whole objects from the packs, anything else through libgit2.
struct Forked<'r> {
    packs: PackReader,
    fallback: &'r Git2Objects<'r>,
    buf: Vec<u8>,
}

impl ObjectRead for Forked<'_> {
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError> {
        if let Some(loc) = self.packs.find(id) {
            let mut out = Vec::new();
            if let Some(kind) = self.packs.read(loc, &mut out) {
                return Ok(Some((kind, out)));
            }
        }
        self.fallback.read_copy(id)
    }

    fn with_object(
        &mut self,
        id: &Oid,
        f: &mut dyn FnMut(ObjectKind, &[u8]),
    ) -> Result<bool, BackendError> {
        if let Some(loc) = self.packs.find(id) {
            if let Some(kind) = self.packs.read(loc, &mut self.buf) {
                f(kind, &self.buf);
                return Ok(true);
            }
        }
        self.fallback.with_object(id, f)
    }
}

impl SharedRead for Git2Objects<'_> {
    fn with_object(
        &self,
        id: &Oid,
        f: &mut dyn FnMut(ObjectKind, &[u8]),
    ) -> Result<bool, BackendError> {
        let oid = git2::Oid::from_bytes(id.as_bytes())?;
        match self.odb.read(oid) {
            Ok(obj) => {
                f(ObjectKind::from_git2(obj.kind()), obj.data());
                Ok(true)
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn commit_graph(&self) -> Option<CommitGraph> {
        // libgit2 opens only SHA-1 repositories.
        CommitGraph::open(&self.objects_dir, 20)
    }

    fn fork(&self, reads: usize) -> Option<Box<dyn ObjectRead + Send + '_>> {
        let dirs: Vec<&std::path::Path> = std::iter::once(self.objects_dir.as_path())
            .chain(self.extra_dirs.iter().map(|d| d.as_path()))
            .collect();
        let index_bytes = *self.index_bytes.get_or_init(|| Packs::index_bytes(&dirs));
        if index_bytes > (reads as u64).saturating_mul(INDEX_BYTES_PER_READ) {
            return None;
        }
        let packs = self
            .packs
            .get_or_init(|| {
                // libgit2 opens only SHA-1 repositories.
                let packs = Packs::open(&dirs, 20);
                (packs.len() > 0).then(|| Arc::new(packs))
            })
            .clone()?;
        Some(Box::new(Forked {
            packs: PackReader::new(packs),
            fallback: self,
            buf: Vec::new(),
        }))
    }
}

impl ObjectRead for Git2Objects<'_> {
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError> {
        self.read_copy(id)
    }

    fn shared(&self) -> Option<&dyn SharedRead> {
        Some(self)
    }
}

impl Git2Objects<'_> {
    fn read_copy(&self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError> {
        let oid = git2::Oid::from_bytes(id.as_bytes())?;
        match self.odb.read(oid) {
            Ok(obj) => Ok(Some((
                ObjectKind::from_git2(obj.kind()),
                obj.data().to_vec(),
            ))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A `git cat-file --batch` process for the CLI backend.
pub(crate) struct CatFile {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

const CAT_FILE: &str = "cat-file --batch";

impl CatFile {
    pub(crate) fn start(repo: &Repo) -> Result<CatFile, BackendError> {
        let err = |e: std::io::Error| BackendError::command(CAT_FILE, e);
        let mut child = repo
            .git()
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(err)?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| err(std::io::Error::other("no stdin")))?;
        let stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| err(std::io::Error::other("no stdout")))?,
        );
        Ok(CatFile {
            child,
            stdin,
            stdout,
        })
    }

    /// One object: its kind and bytes, or None when git says it is missing.
    pub(crate) fn read_object(
        &mut self,
        id: &ObjectId,
    ) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError> {
        let err = |e: std::io::Error| BackendError::command(CAT_FILE, e);
        writeln!(self.stdin, "{id}").map_err(err)?;
        self.stdin.flush().map_err(err)?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).map_err(err)?;
        let parts: Vec<&str> = header.split_whitespace().collect();
        let (kind, size) = match parts.as_slice() {
            [_, "missing"] => return Ok(None),
            [_, kind, size] => (*kind, *size),
            _ => {
                return Err(err(std::io::Error::other(format!(
                    "unexpected cat-file header {header:?}"
                ))))
            }
        };
        let size: usize = size
            .parse()
            .map_err(|_| err(std::io::Error::other("bad size")))?;
        let mut data = vec![0; size + 1];
        self.stdout.read_exact(&mut data).map_err(err)?;
        data.pop();
        Ok(Some((ObjectKind::from_name(kind), data)))
    }
}

impl ObjectRead for CatFile {
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, BackendError> {
        self.read_object(&id.to_object_id())
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
