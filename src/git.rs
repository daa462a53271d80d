//! The only module that touches repositories.
//!
//! Two backends behind one type: libgit2 (in-process, fast) for the repositories it can open,
//! and the `git` command for the ones it cannot (SHA-256 object format, reftable: libgit2 1.9
//! supports neither). Both read commits as raw objects and parse them here, so detection sees
//! the same bytes whichever backend found them.
//!
//! Inside a pre-receive hook the pushed objects live in git's quarantine directory, named by
//! `GIT_OBJECT_DIRECTORY` (with the real store in `GIT_ALTERNATE_OBJECT_DIRECTORIES`). We open
//! the repository at `GIT_DIR` and add those directories as alternates ourselves instead of
//! using libgit2's `FROM_ENV`, because `FROM_ENV` also applies `GIT_NAMESPACE` by moving the
//! whole ref store, which loses packed refs (RESEARCH-git.md section 1); namespaces are applied
//! here, by hand, in `full_ref`.

use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::trailers::TrailerConfig;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot open repository {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("object {0} not found in the repository (nor in the push's quarantine)")]
    NotFound(String),
    #[error("{id} is a {kind}, not a commit")]
    NotACommit { id: String, kind: String },
    #[error("malformed commit object {0}")]
    MalformedCommit(String),
    #[error("invalid object id {0:?}")]
    BadId(String),
    #[error("cannot resolve revision {0:?}")]
    BadRevision(String),
    #[error("git: {0}")]
    Libgit2(#[from] git2::Error),
    #[error("running git {args}: {message}")]
    Command { args: String, message: String },
}

/// An object id in hex (40 characters for SHA-1, 64 for SHA-256), always lower case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ObjectId(String);

impl ObjectId {
    /// Parse a full hex id of either length.
    pub fn parse(s: &str) -> Result<ObjectId, GitError> {
        let ok = (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            // git writes lower case; only foreign input needs the copy.
            Ok(ObjectId(if s.bytes().any(|b| b.is_ascii_uppercase()) {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }))
        } else {
            Err(GitError::BadId(s.chars().take(80).collect()))
        }
    }

    /// The zero id for a hash of `bytes` bytes (20 or 32).
    pub fn zero(bytes: usize) -> ObjectId {
        ObjectId("0".repeat(bytes * 2))
    }

    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 7 characters, as `git log --oneline` shows.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    fn to_git2(&self) -> Result<git2::Oid, GitError> {
        git2::Oid::from_str(&self.0).map_err(|_| GitError::BadId(self.0.clone()))
    }

    fn from_git2(oid: git2::Oid) -> ObjectId {
        ObjectId(oid.to_string())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.0)
    }
}

/// An author or committer line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signature {
    pub name: String,
    pub email: String,
    /// Seconds since the epoch, as recorded.
    pub time: i64,
}

/// A parsed commit object.
#[derive(Debug, Clone)]
pub struct Commit {
    pub id: ObjectId,
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    pub author: Signature,
    pub committer: Signature,
    /// The message, decoded from its `encoding` (UTF-8 when absent; invalid bytes replaced).
    pub message: String,
}

impl Commit {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim_end()
    }

    /// Parse a raw commit object (the bytes after git's object header).
    pub fn parse(id: ObjectId, raw: &[u8]) -> Result<Commit, GitError> {
        let name = id.to_string();
        let bad = || GitError::MalformedCommit(name.clone());
        let (headers, body) = match find(raw, b"\n\n") {
            Some(i) => (&raw[..i], &raw[i + 2..]),
            None => (raw, &raw[raw.len()..]),
        };
        let mut tree = None;
        let mut parents = Vec::new();
        let mut author = None;
        let mut committer = None;
        let mut encoding = None;
        for line in headers.split(|&b| b == b'\n') {
            if line.first() == Some(&b' ') {
                continue; // continuation of a multi-line header (gpgsig, mergetag)
            }
            let (key, value) = match line.iter().position(|&b| b == b' ') {
                Some(i) => (&line[..i], &line[i + 1..]),
                None => (line, &line[line.len()..]),
            };
            match key {
                b"tree" => {
                    tree = Some(
                        ObjectId::parse(std::str::from_utf8(value).map_err(|_| bad())?)
                            .map_err(|_| bad())?,
                    )
                }
                b"parent" => parents.push(
                    ObjectId::parse(std::str::from_utf8(value).map_err(|_| bad())?)
                        .map_err(|_| bad())?,
                ),
                b"author" => author = Some(parse_signature(value)),
                b"committer" => committer = Some(parse_signature(value)),
                b"encoding" => encoding = Some(String::from_utf8_lossy(value).into_owned()),
                _ => {}
            }
        }
        Ok(Commit {
            id,
            tree: tree.ok_or_else(bad)?,
            parents,
            author: author.ok_or_else(bad)?,
            committer: committer.ok_or_else(bad)?,
            message: decode(body, encoding.as_deref()),
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `Name <email> 1700000000 +0000`; git tolerates odd lines, and so do we.
fn parse_signature(v: &[u8]) -> Signature {
    let s = String::from_utf8_lossy(v);
    let (name, rest) = match s.find('<') {
        Some(i) => (s[..i].trim().to_string(), &s[i + 1..]),
        None => (s.trim().to_string(), ""),
    };
    let (email, rest) = match rest.find('>') {
        Some(i) => (rest[..i].trim().to_string(), &rest[i + 1..]),
        None => (rest.trim().to_string(), ""),
    };
    let time = rest
        .split_whitespace()
        .next()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    Signature { name, email, time }
}

/// Decode a message the way `git log` would re-encode it for a UTF-8 terminal: UTF-8 as is,
/// Latin-1 mapped byte for byte, anything else lossily.
fn decode(body: &[u8], encoding: Option<&str>) -> String {
    let latin1 = matches!(
        encoding.map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("iso-8859-1" | "latin1" | "latin-1" | "iso8859-1")
    );
    if latin1 {
        body.iter().map(|&b| b as char).collect()
    } else {
        String::from_utf8_lossy(body).into_owned()
    }
}

/// What kind of object an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Commit,
    Tag,
    Tree,
    Blob,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Commit => "commit",
            ObjectKind::Tag => "tag",
            ObjectKind::Tree => "tree",
            ObjectKind::Blob => "blob",
        })
    }
}

enum Backend {
    Git2(git2::Repository),
    Cli,
}

/// A repository, opened either from a hook's environment or from a path.
pub struct Repo {
    backend: Backend,
    git_dir: PathBuf,
    namespace: Option<String>,
    /// Extra object directories (the quarantine) for the CLI backend's child processes.
    object_env: Vec<(&'static str, OsString)>,
}

impl Repo {
    /// Open the repository a hook runs in: `GIT_DIR` (or the current directory), plus the
    /// push's quarantine from `GIT_OBJECT_DIRECTORY` / `GIT_ALTERNATE_OBJECT_DIRECTORIES`,
    /// plus `GIT_NAMESPACE`.
    pub fn open_from_env() -> Result<Repo, GitError> {
        let git_dir = std::env::var_os("GIT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let git_dir = std::path::absolute(&git_dir).unwrap_or(git_dir);
        let namespace = std::env::var("GIT_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty());
        let mut object_env = Vec::new();
        let mut alternates = Vec::new();
        if let Some(dir) = std::env::var_os("GIT_OBJECT_DIRECTORY") {
            alternates.push(PathBuf::from(&dir));
            object_env.push(("GIT_OBJECT_DIRECTORY", dir));
        }
        if let Some(alts) = std::env::var_os("GIT_ALTERNATE_OBJECT_DIRECTORIES") {
            alternates.extend(std::env::split_paths(&alts));
            object_env.push(("GIT_ALTERNATE_OBJECT_DIRECTORIES", alts));
        }
        if let Some(q) = std::env::var_os("GIT_QUARANTINE_PATH") {
            object_env.push(("GIT_QUARANTINE_PATH", q));
        }
        let backend = match git2::Repository::open_ext(
            &git_dir,
            git2::RepositoryOpenFlags::NO_SEARCH,
            std::iter::empty::<&Path>(),
        ) {
            Ok(repo) => {
                {
                    let odb = repo.odb()?;
                    for alt in &alternates {
                        let alt = std::path::absolute(alt).unwrap_or_else(|_| alt.clone());
                        if alt.is_dir() {
                            odb.add_disk_alternate(&alt.to_string_lossy())?;
                        }
                    }
                }
                Backend::Git2(repo)
            }
            Err(e) => Self::cli_fallback(&git_dir, e)?,
        };
        Ok(Repo {
            backend,
            git_dir,
            namespace,
            object_env,
        })
    }

    /// Open a repository by path (bare or not), or discover it from the current directory.
    pub fn open(path: Option<&Path>) -> Result<Repo, GitError> {
        let start = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        match git2::Repository::open_ext(
            &start,
            git2::RepositoryOpenFlags::empty(),
            std::iter::empty::<&Path>(),
        ) {
            Ok(repo) => {
                let git_dir = repo.path().to_path_buf();
                Ok(Repo {
                    backend: Backend::Git2(repo),
                    git_dir,
                    namespace: None,
                    object_env: Vec::new(),
                })
            }
            Err(e) => {
                let out = Command::new("git")
                    .arg("-C")
                    .arg(&start)
                    .args(["rev-parse", "--absolute-git-dir"])
                    .stderr(Stdio::null())
                    .output()
                    .map_err(|io| GitError::Open {
                        path: start.clone(),
                        source: Box::new(io),
                    })?;
                if !out.status.success() {
                    return Err(GitError::Open {
                        path: start,
                        source: Box::new(e),
                    });
                }
                let git_dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                let backend = Self::cli_fallback(&git_dir, e)?;
                Ok(Repo {
                    backend,
                    git_dir,
                    namespace: None,
                    object_env: Vec::new(),
                })
            }
        }
    }

    /// libgit2 could not open it; use `git` itself if git can (SHA-256, reftable).
    fn cli_fallback(git_dir: &Path, err: git2::Error) -> Result<Backend, GitError> {
        let ok = Command::new("git")
            .arg("--git-dir")
            .arg(git_dir)
            .args(["rev-parse", "--git-dir"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            Ok(Backend::Cli)
        } else {
            Err(GitError::Open {
                path: git_dir.to_path_buf(),
                source: Box::new(err),
            })
        }
    }

    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The stored name of a namespace-relative ref name.
    pub fn full_ref(&self, name: &str) -> String {
        match &self.namespace {
            Some(ns) => {
                let mut out = String::new();
                for part in ns.split('/').filter(|p| !p.is_empty()) {
                    out.push_str("refs/namespaces/");
                    out.push_str(part);
                    out.push('/');
                }
                out.push_str(name);
                out
            }
            None => name.to_string(),
        }
    }

    /// Length of object ids in bytes (20 for SHA-1, 32 for SHA-256).
    pub fn hash_bytes(&self) -> usize {
        match &self.backend {
            Backend::Git2(_) => 20,
            Backend::Cli => {
                if self.config_string("extensions.objectformat").as_deref() == Some("sha256") {
                    32
                } else {
                    20
                }
            }
        }
    }

    fn git(&self) -> Command {
        let mut c = Command::new("git");
        c.arg("--git-dir").arg(&self.git_dir);
        for (k, v) in &self.object_env {
            c.env(k, v);
        }
        // Namespaces are applied by hand (full_ref); never let git apply it a second time.
        c.env_remove("GIT_NAMESPACE");
        c
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output, GitError> {
        self.git()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| GitError::Command {
                args: args.join(" "),
                message: e.to_string(),
            })
    }

    fn run_ok(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(GitError::Command {
                args: args.join(" "),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A config value of the repository (its own, global and system config).
    pub fn config_string(&self, key: &str) -> Option<String> {
        match &self.backend {
            Backend::Git2(repo) => repo.config().ok()?.get_string(key).ok(),
            Backend::Cli => {
                let out = self.run(&["config", "--get", key]).ok()?;
                out.status.success().then(|| {
                    String::from_utf8_lossy(&out.stdout)
                        .trim_end_matches('\n')
                        .to_string()
                })
            }
        }
    }

    /// How this repository's config changes trailer parsing. An unreadable config is an
    /// error: guessing the defaults could hide a configured trailer key.
    pub fn trailer_config(&self) -> Result<TrailerConfig, GitError> {
        match &self.backend {
            Backend::Git2(repo) => Ok(TrailerConfig::try_from_git_config(&repo.config()?)?),
            Backend::Cli => {
                // `git config --list -z`: "name\nvalue\0", or "name\0" without a value.
                let out = self.run(&["config", "--list", "-z"])?;
                if !out.status.success() {
                    return Err(GitError::Command {
                        args: "config --list".into(),
                        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    });
                }
                let text = String::from_utf8_lossy(&out.stdout);
                Ok(TrailerConfig::from_entries(
                    text.split('\0')
                        .filter(|e| !e.is_empty())
                        .map(|e| match e.split_once('\n') {
                            Some((k, v)) => (k.to_string(), Some(v.to_string())),
                            None => (e.to_string(), None),
                        }),
                ))
            }
        }
    }

    /// The target of a namespace-relative ref (symbolic refs followed), if it exists.
    pub fn ref_target(&self, name: &str) -> Result<Option<ObjectId>, GitError> {
        let full = self.full_ref(name);
        match &self.backend {
            Backend::Git2(repo) => match repo.find_reference(&full) {
                Ok(r) => Ok(r.resolve()?.target().map(ObjectId::from_git2)),
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            },
            Backend::Cli => {
                let out = self.run(&["rev-parse", "--verify", "-q", &full])?;
                if out.status.success() {
                    Ok(Some(ObjectId::parse(
                        String::from_utf8_lossy(&out.stdout).trim(),
                    )?))
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Every ref (namespace-relative names) for which `keep` holds, with its target.
    pub fn refs(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<(String, ObjectId)>, GitError> {
        let prefix = self.full_ref("");
        let mut out = Vec::new();
        match &self.backend {
            Backend::Git2(repo) => {
                for r in repo.references()? {
                    let r = r?;
                    let Some(name) = r.name() else { continue };
                    let Some(rel) = name.strip_prefix(&prefix) else {
                        continue;
                    };
                    if !rel.starts_with("refs/") || !keep(rel) {
                        continue;
                    }
                    if let Some(t) = r.resolve()?.target() {
                        out.push((rel.to_string(), ObjectId::from_git2(t)));
                    }
                }
            }
            Backend::Cli => {
                let text = self.run_ok(&[
                    "for-each-ref",
                    "--format=%(objectname) %(refname)",
                    &format!("{prefix}refs/"),
                ])?;
                for line in text.lines() {
                    let Some((id, name)) = line.split_once(' ') else {
                        continue;
                    };
                    let Some(rel) = name.strip_prefix(&prefix) else {
                        continue;
                    };
                    if keep(rel) {
                        out.push((rel.to_string(), ObjectId::parse(id)?));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The kind of an object, or None when it does not exist.
    pub fn object_kind(&self, id: &ObjectId) -> Result<Option<ObjectKind>, GitError> {
        match &self.backend {
            Backend::Git2(repo) => {
                let odb = repo.odb()?;
                match odb.read_header(id.to_git2()?) {
                    Ok((_, kind)) => Ok(Some(match kind {
                        git2::ObjectType::Commit => ObjectKind::Commit,
                        git2::ObjectType::Tag => ObjectKind::Tag,
                        git2::ObjectType::Tree => ObjectKind::Tree,
                        _ => ObjectKind::Blob,
                    })),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Backend::Cli => {
                let out = self.run(&["cat-file", "-t", id.as_str()])?;
                if !out.status.success() {
                    return Ok(None);
                }
                Ok(Some(match String::from_utf8_lossy(&out.stdout).trim() {
                    "commit" => ObjectKind::Commit,
                    "tag" => ObjectKind::Tag,
                    "tree" => ObjectKind::Tree,
                    _ => ObjectKind::Blob,
                }))
            }
        }
    }

    /// Peel tags until a commit; an error if the chain ends in something else.
    pub fn peel_to_commit(&self, id: &ObjectId) -> Result<ObjectId, GitError> {
        let mut cur = id.clone();
        for _ in 0..64 {
            match self.object_kind(&cur)? {
                None => return Err(GitError::NotFound(cur.to_string())),
                Some(ObjectKind::Commit) => return Ok(cur),
                Some(ObjectKind::Tag) => {
                    let raw = self.read_raw(&cur)?;
                    let target = raw
                        .split(|&b| b == b'\n')
                        .find_map(|l| l.strip_prefix(b"object "))
                        .ok_or_else(|| GitError::MalformedCommit(cur.to_string()))?;
                    cur = ObjectId::parse(&String::from_utf8_lossy(target))?;
                }
                Some(kind) => {
                    return Err(GitError::NotACommit {
                        id: id.to_string(),
                        kind: kind.to_string(),
                    })
                }
            }
        }
        Err(GitError::NotACommit {
            id: id.to_string(),
            kind: "tag chain too deep".into(),
        })
    }

    /// The raw bytes of an object (without git's header).
    pub fn read_raw(&self, id: &ObjectId) -> Result<Vec<u8>, GitError> {
        match &self.backend {
            Backend::Git2(repo) => {
                let odb = repo.odb()?;
                let result = match odb.read(id.to_git2()?) {
                    Ok(obj) => Ok(obj.data().to_vec()),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => {
                        Err(GitError::NotFound(id.to_string()))
                    }
                    Err(e) => Err(e.into()),
                };
                result
            }
            Backend::Cli => {
                let mut batch = CatFile::start(self)?;
                batch
                    .read(id)?
                    .map(|(_, data)| data)
                    .ok_or_else(|| GitError::NotFound(id.to_string()))
            }
        }
    }

    pub fn commit(&self, id: &ObjectId) -> Result<Commit, GitError> {
        let raw = self.read_raw(id)?;
        Commit::parse(id.clone(), &raw)
    }

    /// The note on `target` in the notes commit `notes` (any fanout), if there is one.
    pub fn note_at(
        &self,
        notes: &ObjectId,
        target: &ObjectId,
    ) -> Result<Option<Vec<u8>>, GitError> {
        let raw = self.read_raw(notes)?;
        let tree = raw
            .split(|&b| b == b'\n')
            .next()
            .and_then(|l| l.strip_prefix(b"tree "))
            .ok_or_else(|| GitError::MalformedCommit(notes.to_string()))?;
        let mut tree = ObjectId::parse(&String::from_utf8_lossy(tree))?;
        // Notes trees fan out by two hex digits per level as they grow: "ab/cdef..." (git's notes.c).
        let mut rest = target.as_str();
        loop {
            let entries = parse_tree(&self.read_raw(&tree)?, tree.as_str().len() / 2)
                .ok_or_else(|| GitError::MalformedCommit(tree.to_string()))?;
            if let Some(e) = entries
                .iter()
                .find(|e| e.name == rest.as_bytes() && !e.is_tree)
            {
                return Ok(Some(self.read_raw(&e.id)?));
            }
            if rest.len() <= 2 {
                return Ok(None);
            }
            match entries
                .iter()
                .find(|e| e.name == rest.as_bytes()[..2] && e.is_tree)
            {
                Some(e) => {
                    tree = e.id.clone();
                    rest = &rest[2..];
                }
                None => return Ok(None),
            }
        }
    }

    /// Is `ancestor` reachable from `descendant` (or equal to it)?
    pub fn is_ancestor(
        &self,
        ancestor: &ObjectId,
        descendant: &ObjectId,
    ) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(true);
        }
        match &self.backend {
            Backend::Git2(repo) => {
                Ok(repo.graph_descendant_of(descendant.to_git2()?, ancestor.to_git2()?)?)
            }
            Backend::Cli => {
                let out = self.run(&[
                    "merge-base",
                    "--is-ancestor",
                    ancestor.as_str(),
                    descendant.as_str(),
                ])?;
                match out.status.code() {
                    Some(0) => Ok(true),
                    Some(1) => Ok(false),
                    _ => Err(GitError::Command {
                        args: "merge-base --is-ancestor".into(),
                        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    }),
                }
            }
        }
    }

    /// Visit every commit reachable from `tip` and from none of `hide` (the set
    /// `git rev-list tip ^hide...` prints), calling `visit` on a second thread for each; return
    /// how many there are and what `visit` returned for them, newest first.
    ///
    /// With libgit2 this is our own walk over raw objects (each commit inflated once, hash
    /// re-verification off: git verified the pushed objects when it received them), in
    /// committer-date order with git's "slop" heuristic to stop once only uninteresting commits
    /// are left. Clock skew deeper than the slop can only add commits to the set, never drop
    /// one, so the error is towards checking more.
    pub fn scan<T: Send>(
        &self,
        tip: &ObjectId,
        hide: &[ObjectId],
        visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
    ) -> Result<Scan<T>, GitError> {
        match &self.backend {
            Backend::Git2(repo) => scan_git2(repo, tip, hide, visit),
            Backend::Cli => {
                // `git rev-list` names the set; one `cat-file --batch` reads the commits.
                let mut args = vec!["rev-list".to_string(), tip.to_string()];
                args.extend(hide.iter().map(|h| format!("^{h}")));
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let ids = self.run_ok(&argv)?;
                let mut batch = CatFile::start(self)?;
                let mut count = 0;
                let mut hits = Vec::new();
                for line in ids.lines() {
                    let id = ObjectId::parse(line)?;
                    let (_, data) = batch
                        .read(&id)?
                        .ok_or_else(|| GitError::NotFound(id.to_string()))?;
                    let c = Commit::parse(id, &data)?;
                    count += 1;
                    if let Some(t) = visit(&c) {
                        hits.push((c.id, t));
                    }
                }
                Ok(Scan {
                    count,
                    hits,
                    hidden_reached: None,
                })
            }
        }
    }

    /// The commits a `git rev-list` range names (`main`, `A..B`, `A...B`, `^A B`), newest first.
    pub fn rev_list(&self, specs: &[String]) -> Result<Vec<ObjectId>, GitError> {
        let mut args = vec!["rev-list".to_string()];
        args.extend(specs.iter().cloned());
        args.push("--".into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&argv)?;
        if !out.status.success() {
            return Err(GitError::BadRevision(format!(
                "{} ({})",
                specs.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(ObjectId::parse)
            .collect()
    }

    /// Resolve a revision (`HEAD`, `main~2`, an id) to a full object id.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId, GitError> {
        match &self.backend {
            Backend::Git2(repo) => {
                let obj = repo
                    .revparse_single(rev)
                    .map_err(|_| GitError::BadRevision(rev.to_string()))?;
                Ok(ObjectId::from_git2(obj.id()))
            }
            Backend::Cli => {
                let out =
                    self.run(&["rev-parse", "--verify", "-q", &format!("{rev}^{{object}}")])?;
                if !out.status.success() {
                    return Err(GitError::BadRevision(rev.to_string()));
                }
                ObjectId::parse(String::from_utf8_lossy(&out.stdout).trim())
            }
        }
    }
}

/// Notes read once per push: the hook may look up thousands of commits in one notes tree.
impl Repo {
    /// Every note in the notes commit `notes`: annotated object id (hex) -> note blob id.
    ///
    /// The same answers as [`Repo::note_at`] for every id, from one pass over the notes tree:
    /// notes trees fan out by two hex digits per level as they grow (git's notes.c), a note
    /// nearer the root wins over one deeper for the same id, only the first subtree of a name
    /// is read, and entries that name no object id are ignored. Every fanout tree is read once
    /// (one `git cat-file --batch` for the `git` backend), so a malformed or missing tree
    /// anywhere in the notes refuses, where `note_at` only noticed the trees on its path.
    pub fn notes_index(
        &self,
        notes: &ObjectId,
    ) -> Result<std::collections::HashMap<String, ObjectId>, GitError> {
        let mut batch = match self.backend {
            Backend::Git2(_) => None,
            Backend::Cli => Some(CatFile::start(self)?),
        };
        let mut read = |id: &ObjectId| -> Result<Vec<u8>, GitError> {
            match batch.as_mut() {
                None => self.read_raw(id),
                Some(b) => b
                    .read(id)?
                    .map(|(_, data)| data)
                    .ok_or_else(|| GitError::NotFound(id.to_string())),
            }
        };
        let raw = read(notes)?;
        let root = raw
            .split(|&b| b == b'\n')
            .next()
            .and_then(|l| l.strip_prefix(b"tree "))
            .ok_or_else(|| GitError::MalformedCommit(notes.to_string()))?;
        let root = ObjectId::parse(&String::from_utf8_lossy(root))?;
        let hex_len = root.as_str().len();
        let mut index = std::collections::HashMap::new();
        // Level by level, so that a note nearer the root is seen first.
        let mut level = vec![(String::new(), root)];
        while !level.is_empty() {
            let mut next = Vec::new();
            for (prefix, tree) in level {
                let entries = parse_tree(&read(&tree)?, hex_len / 2)
                    .ok_or_else(|| GitError::MalformedCommit(tree.to_string()))?;
                let mut descended: Vec<&[u8]> = Vec::new();
                for e in &entries {
                    let Ok(name) = std::str::from_utf8(&e.name) else {
                        continue;
                    };
                    if e.is_tree {
                        let fanout = name.len() == 2
                            && prefix.len() + 2 < hex_len
                            && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
                        if fanout && !descended.contains(&e.name.as_slice()) {
                            descended.push(&e.name);
                            next.push((format!("{prefix}{name}"), e.id.clone()));
                        }
                    } else if prefix.len() + name.len() == hex_len {
                        index
                            .entry(format!("{prefix}{name}"))
                            .or_insert_with(|| e.id.clone());
                    }
                }
            }
            level = next;
        }
        Ok(index)
    }
}

/// What `Repo::scan` found.
#[derive(Debug)]
pub struct Scan<T> {
    /// How many commits are in the set.
    pub count: usize,
    /// The commits `visit` returned something for, newest first.
    pub hits: Vec<(ObjectId, T)>,
    /// Which of the hidden commits are reachable from the tip, when the walk can tell (a
    /// hidden commit is reachable exactly when it is the parent of an entering commit); None
    /// when it cannot (the `git` backend), and `Repo::is_ancestor` must answer.
    pub hidden_reached: Option<Vec<ObjectId>>,
}

const SEEN_UNINTERESTING: u8 = 1;
const IN_QUEUE: u8 = 2;
const POPPED: u8 = 4;
/// How many uninteresting-only rounds to keep walking (git's revision.c SLOP).
const SLOP: u32 = 5;
/// Commits handed to the detection thread at a time.
const BATCH: usize = 256;

struct Node {
    flags: u8,
    parents: Vec<git2::Oid>,
    /// The raw object, kept until the commit is popped (interesting commits only).
    raw: Option<Vec<u8>>,
}

/// The parents and committer time from a raw commit's headers.
fn commit_links(raw: &[u8]) -> Option<(Vec<git2::Oid>, i64)> {
    let mut parents = Vec::new();
    let mut time = 0;
    for line in raw.split(|&b| b == b'\n') {
        if line.is_empty() {
            break;
        }
        if let Some(p) = line.strip_prefix(b"parent ") {
            parents.push(git2::Oid::from_str(std::str::from_utf8(p).ok()?).ok()?);
        } else if let Some(c) = line.strip_prefix(b"committer ") {
            let end = c.iter().rposition(|&b| b == b'>')?;
            time = std::str::from_utf8(&c[end + 1..])
                .ok()?
                .split_whitespace()
                .next()?
                .parse()
                .unwrap_or(0);
        }
    }
    Some((parents, time))
}

/// git's mark_parents_uninteresting: through every commit read so far; commits not read yet
/// keep the mark (in `marked`) for when they are.
fn mark_uninteresting(
    stack: &mut Vec<git2::Oid>,
    nodes: &mut std::collections::HashMap<git2::Oid, Node>,
    marked: &mut std::collections::HashSet<git2::Oid>,
    interesting_queued: &mut usize,
) {
    while let Some(id) = stack.pop() {
        let Some(n) = nodes.get_mut(&id) else {
            marked.insert(id);
            continue;
        };
        if n.flags & SEEN_UNINTERESTING != 0 {
            continue;
        }
        n.flags |= SEEN_UNINTERESTING;
        n.raw = None;
        if n.flags & IN_QUEUE != 0 {
            *interesting_queued -= 1;
        }
        stack.extend(n.parents.iter().copied());
    }
}

fn scan_git2<T: Send>(
    repo: &git2::Repository,
    tip: &ObjectId,
    hide: &[ObjectId],
    visit: &(dyn Fn(&Commit) -> Option<T> + Sync),
) -> Result<Scan<T>, GitError> {
    use std::collections::hash_map::Entry;
    use std::collections::{BinaryHeap, HashMap};

    git2::opts::strict_hash_verification(false);
    // Every object is read once: libgit2's object cache would only add locking and hashing.
    git2::opts::enable_caching(false);
    let odb = repo.odb()?;
    let mut nodes: HashMap<git2::Oid, Node> = HashMap::new();
    // (committer time, insertion order reversed, id): newest first, then first seen.
    let mut queue: BinaryHeap<(i64, std::cmp::Reverse<u64>, git2::Oid)> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut interesting_queued = 0usize;
    let mut marked: std::collections::HashSet<git2::Oid> = std::collections::HashSet::new();

    let read = |oid: git2::Oid| -> Result<(Vec<u8>, Vec<git2::Oid>, i64), GitError> {
        let obj = match odb.read(oid) {
            Ok(o) => o,
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                return Err(GitError::NotFound(oid.to_string()))
            }
            Err(e) => return Err(e.into()),
        };
        if obj.kind() != git2::ObjectType::Commit {
            return Err(GitError::NotACommit {
                id: oid.to_string(),
                kind: obj.kind().str().to_string(),
            });
        }
        let data = obj.data().to_vec();
        let (parents, time) =
            commit_links(&data).ok_or_else(|| GitError::MalformedCommit(oid.to_string()))?;
        Ok((data, parents, time))
    };

    // Add `oid` to the walk, or mark it (and what it reaches, as far as walked) uninteresting.
    let mut insert = |oid: git2::Oid,
                      uninteresting: bool,
                      nodes: &mut HashMap<git2::Oid, Node>,
                      queue: &mut BinaryHeap<(i64, std::cmp::Reverse<u64>, git2::Oid)>,
                      interesting_queued: &mut usize|
     -> Result<(), GitError> {
        match nodes.entry(oid) {
            Entry::Vacant(v) => {
                let uninteresting = uninteresting || marked.remove(&oid);
                let (data, parents, time) = read(oid)?;
                let flags = IN_QUEUE | if uninteresting { SEEN_UNINTERESTING } else { 0 };
                if !uninteresting {
                    *interesting_queued += 1;
                }
                let mut stack = if uninteresting {
                    parents.clone()
                } else {
                    Vec::new()
                };
                v.insert(Node {
                    flags,
                    parents,
                    raw: (!uninteresting).then_some(data),
                });
                seq += 1;
                queue.push((time, std::cmp::Reverse(seq), oid));
                // As git does for a parent it marks: its own parents at once.
                mark_uninteresting(&mut stack, nodes, &mut marked, interesting_queued);
            }
            Entry::Occupied(_) if uninteresting => {
                let mut stack = vec![oid];
                mark_uninteresting(&mut stack, nodes, &mut marked, interesting_queued);
            }
            Entry::Occupied(_) => {}
        }
        Ok(())
    };

    let mut candidates: Vec<git2::Oid> = Vec::new();
    let hidden: std::collections::HashSet<git2::Oid> = hide
        .iter()
        .map(ObjectId::to_git2)
        .collect::<Result<_, _>>()?;
    let mut reached: Vec<git2::Oid> = Vec::new();
    // Detection runs inline for small walks (a typical push: no thread to start) and moves to
    // a second thread once a full batch of commits is waiting.
    let detect = |batch: Vec<(git2::Oid, Vec<u8>)>,
                  hits: &mut Vec<(git2::Oid, T)>|
     -> Result<(), GitError> {
        for (oid, raw) in batch {
            let c = Commit::parse(ObjectId::from_git2(oid), &raw)?;
            if let Some(t) = visit(&c) {
                hits.push((oid, t));
            }
        }
        Ok(())
    };
    let hits = std::thread::scope(|s| -> Result<Vec<(git2::Oid, T)>, GitError> {
        type Batch = Vec<(git2::Oid, Vec<u8>)>;
        type Worker<'s, T> = (
            std::sync::mpsc::SyncSender<Batch>,
            std::thread::ScopedJoinHandle<'s, Result<Vec<(git2::Oid, T)>, GitError>>,
        );
        let mut worker: Option<Worker<'_, T>> = None;
        let mut hand_over = |batch: Batch| -> bool {
            let (tx, _) = worker.get_or_insert_with(|| {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(8);
                let handle = s.spawn(move || {
                    let mut hits = Vec::new();
                    for batch in rx {
                        detect(batch, &mut hits)?;
                    }
                    Ok(hits)
                });
                (tx, handle)
            });
            tx.send(batch).is_ok()
        };

        let walked = (|| -> Result<Batch, GitError> {
            for h in hide {
                insert(
                    h.to_git2()?,
                    true,
                    &mut nodes,
                    &mut queue,
                    &mut interesting_queued,
                )?;
            }
            insert(
                tip.to_git2()?,
                false,
                &mut nodes,
                &mut queue,
                &mut interesting_queued,
            )?;
            let mut batch = Vec::with_capacity(BATCH);
            let mut slop = SLOP;
            // The date of the last interesting commit taken (git's `date` in limit_list).
            let mut last_date = i64::MAX;
            while let Some((time, _, oid)) = queue.pop() {
                let (uninteresting, parents, raw) = {
                    let n = nodes
                        .get_mut(&oid)
                        .ok_or_else(|| GitError::NotFound(oid.to_string()))?;
                    n.flags = (n.flags & !IN_QUEUE) | POPPED;
                    let u = n.flags & SEEN_UNINTERESTING != 0;
                    if !u {
                        interesting_queued -= 1;
                    }
                    (u, n.parents.clone(), n.raw.take())
                };
                if !uninteresting {
                    last_date = time;
                    candidates.push(oid);
                    for p in &parents {
                        if hidden.contains(p) && !reached.contains(p) {
                            reached.push(*p);
                        }
                    }
                    if let Some(raw) = raw {
                        batch.push((oid, raw));
                        if batch.len() == BATCH && !hand_over(std::mem::take(&mut batch)) {
                            break; // the worker failed; its error is reported below
                        }
                    }
                }
                for p in parents {
                    insert(
                        p,
                        uninteresting,
                        &mut nodes,
                        &mut queue,
                        &mut interesting_queued,
                    )?;
                }
                // git's still_interesting(): after an uninteresting commit, stop once nothing
                // interesting is queued and the queue is older than what was taken, for SLOP
                // rounds in a row.
                if uninteresting {
                    slop = match queue.peek() {
                        None => 0,
                        Some(&(newest, _, _)) if last_date <= newest => SLOP,
                        Some(_) if interesting_queued > 0 => SLOP,
                        Some(_) => slop - 1,
                    };
                    if slop == 0 {
                        break;
                    }
                }
            }
            Ok(batch)
        })();
        let mut hits = match worker {
            None => Vec::new(),
            Some((tx, handle)) => {
                drop(tx);
                handle.join().map_err(|_| GitError::Command {
                    args: "scan".into(),
                    message: "the detection thread panicked".into(),
                })??
            }
        };
        // The last, partial batch (the whole walk, for a small push) on this thread.
        detect(walked?, &mut hits)?;
        Ok(hits)
    })?;

    let entering = |oid: &git2::Oid| {
        nodes
            .get(oid)
            .is_some_and(|n| n.flags & SEEN_UNINTERESTING == 0)
    };
    let count = candidates.iter().filter(|o| entering(o)).count();
    let hits = hits
        .into_iter()
        .filter(|(o, _)| entering(o))
        .map(|(o, t)| (ObjectId::from_git2(o), t))
        .collect();
    Ok(Scan {
        count,
        hits,
        hidden_reached: Some(reached.into_iter().map(ObjectId::from_git2).collect()),
    })
}

struct TreeEntry {
    name: Vec<u8>,
    id: ObjectId,
    is_tree: bool,
}

/// Parse a raw tree object: `<mode> SP <name> NUL <raw id>` repeated.
fn parse_tree(raw: &[u8], id_bytes: usize) -> Option<Vec<TreeEntry>> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let mode = &rest[..sp];
        let nul = sp + 1 + rest[sp + 1..].iter().position(|&b| b == 0)?;
        let name = rest[sp + 1..nul].to_vec();
        let id = rest.get(nul + 1..nul + 1 + id_bytes)?;
        out.push(TreeEntry {
            name,
            id: ObjectId(hex::encode(id)),
            is_tree: mode == b"40000",
        });
        rest = &rest[nul + 1 + id_bytes..];
    }
    Some(out)
}

/// A `git cat-file --batch` process for the CLI backend.
struct CatFile {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl CatFile {
    fn start(repo: &Repo) -> Result<CatFile, GitError> {
        let err = |e: std::io::Error| GitError::Command {
            args: "cat-file --batch".into(),
            message: e.to_string(),
        };
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

    fn read(&mut self, id: &ObjectId) -> Result<Option<(String, Vec<u8>)>, GitError> {
        let err = |e: std::io::Error| GitError::Command {
            args: "cat-file --batch".into(),
            message: e.to_string(),
        };
        writeln!(self.stdin, "{id}").map_err(err)?;
        self.stdin.flush().map_err(err)?;
        let mut header = String::new();
        self.stdout.read_line(&mut header).map_err(err)?;
        let parts: Vec<&str> = header.split_whitespace().collect();
        if parts.len() == 2 && parts[1] == "missing" {
            return Ok(None);
        }
        if parts.len() != 3 {
            return Err(err(std::io::Error::other(format!(
                "unexpected cat-file header {header:?}"
            ))));
        }
        let size: usize = parts[2]
            .parse()
            .map_err(|_| err(std::io::Error::other("bad size")))?;
        let mut data = vec![0; size + 1];
        self.stdout.read_exact(&mut data).map_err(err)?;
        data.pop();
        Ok(Some((parts[1].to_string(), data)))
    }
}

impl Drop for CatFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids() {
        assert!(ObjectId::parse(&"a".repeat(40)).is_ok());
        assert!(ObjectId::parse(&"A".repeat(64)).is_ok());
        assert!(ObjectId::parse(&"a".repeat(41)).is_err());
        assert!(ObjectId::parse("xyz").is_err());
        assert!(ObjectId::parse(&"g".repeat(40)).is_err());
        assert!(ObjectId::zero(32).is_zero());
        assert_eq!(ObjectId::zero(20).as_str().len(), 40);
    }

    #[test]
    fn parses_raw_commits() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nauthor A U Thor <a@example.com> 1700000000 +0100\ncommitter Copilot (aider) <c@example.com> 1700000001 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n abc\n -----END PGP SIGNATURE-----\n\nSubject line\n\nBody\n";
        let c = Commit::parse(ObjectId::zero(20), raw).unwrap();
        assert_eq!(c.author.email, "a@example.com");
        assert_eq!(c.author.time, 1_700_000_000);
        assert_eq!(c.committer.name, "Copilot (aider)");
        assert_eq!(c.parents.len(), 1);
        assert_eq!(c.subject(), "Subject line");
        assert_eq!(c.message, "Subject line\n\nBody\n");
    }

    #[test]
    fn latin1_messages_decode() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\nencoding ISO-8859-1\n\nCaf\xe9\n";
        assert_eq!(
            Commit::parse(ObjectId::zero(20), raw).unwrap().message,
            "Caf\u{e9}\n"
        );
    }

    #[test]
    fn malformed_commits_are_errors() {
        assert!(Commit::parse(ObjectId::zero(20), b"").is_err());
        assert!(Commit::parse(ObjectId::zero(20), b"tree nothex\n\nx").is_err());
        assert!(Commit::parse(
            ObjectId::zero(20),
            b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nno author"
        )
        .is_err());
    }

    fn git(dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
        let mut c = Command::new("git");
        c.current_dir(dir)
            .args(args)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@x")
            .env("GIT_COMMITTER_NAME", "A")
            .env("GIT_COMMITTER_EMAIL", "a@x")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env_remove("GIT_DIR")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn notes_flat_and_fanned_out() {
        for format in ["sha1", "sha256"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            git(
                d,
                &["init", "-q", &format!("--object-format={format}")],
                None,
            );
            git(d, &["commit", "-q", "--allow-empty", "-m", "one"], None);
            let one = git(d, &["rev-parse", "HEAD"], None);
            git(d, &["commit", "-q", "--allow-empty", "-m", "two"], None);
            let two = git(d, &["rev-parse", "HEAD"], None);
            git(
                d,
                &[
                    "notes",
                    "--ref",
                    "refs/notes/agentgate",
                    "add",
                    "-m",
                    "flat note",
                    &one,
                ],
                None,
            );
            let notes = git(d, &["rev-parse", "refs/notes/agentgate"], None);
            // A fanned-out notes tree by hand: <2 hex>/<rest>, as git writes large notes trees.
            let blob = git(d, &["hash-object", "-w", "--stdin"], Some("fanned note\n"));
            let inner = git(
                d,
                &["mktree"],
                Some(&format!("100644 blob {blob}\t{}\n", &two[2..])),
            );
            let outer = git(
                d,
                &["mktree"],
                Some(&format!("040000 tree {inner}\t{}\n", &two[..2])),
            );
            let fanned = git(d, &["commit-tree", &outer, "-m", "notes"], None);

            let repo = Repo::open(Some(d)).unwrap();
            let id = |s: &str| ObjectId::parse(s).unwrap();
            assert_eq!(
                repo.note_at(&id(&notes), &id(&one)).unwrap().as_deref(),
                Some(&b"flat note\n"[..]),
                "{format}"
            );
            assert_eq!(
                repo.note_at(&id(&notes), &id(&two)).unwrap(),
                None,
                "{format}"
            );
            assert_eq!(
                repo.note_at(&id(&fanned), &id(&two)).unwrap().as_deref(),
                Some(&b"fanned note\n"[..]),
                "{format}"
            );
            assert_eq!(
                repo.note_at(&id(&fanned), &id(&one)).unwrap(),
                None,
                "{format}"
            );
        }
    }

    #[test]
    fn namespaces_prefix_refs() {
        let repo = Repo {
            backend: Backend::Cli,
            git_dir: PathBuf::from("."),
            namespace: Some("a/b".into()),
            object_env: vec![],
        };
        assert_eq!(
            repo.full_ref("refs/heads/main"),
            "refs/namespaces/a/refs/namespaces/b/refs/heads/main"
        );
    }
}
