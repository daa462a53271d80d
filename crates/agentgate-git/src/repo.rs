//! The only module that touches repositories.
//!
//! Two backends behind one type: libgit2 (in-process, fast) for the repositories it can open,
//! and the `git` command for the ones it cannot (SHA-256 object format, reftable: libgit2 1.9
//! supports neither). Both only fetch raw objects; `object` parses them the way git does and
//! `walk` walks them, so the hook reads the same thing whichever backend found the bytes.
//!
//! Replace refs (`refs/replace/*`) never change what is read: libgit2 does not apply them, and
//! every `git` child process runs with `GIT_NO_REPLACE_OBJECTS=1` ([`git_command`]). Refs are
//! looked up by their exact name, never through `rev-parse`'s guessing.
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

use crate::object::{ObjectError, Oid};
use crate::trailers::TrailerConfig;

pub use crate::object::{Commit, Signature};

/// A `git` command as agentgate runs it everywhere: replace refs off (a pushed `refs/replace/*`
/// must not change which commit is judged or built), never prompting for credentials.
pub fn git_command() -> Command {
    let mut c = Command::new("git");
    c.env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    c
}

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
    #[error("malformed object {0}")]
    MalformedCommit(String),
    /// A commit or tag whose headers git reads differently from a plain reading, or whose
    /// message cannot be decoded as git shows it.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The repository rewrites history as git reads it (grafts, a shallow file), so a reading of
    /// the objects as stored would not be git's.
    #[error("{0}")]
    Unsupported(String),
    #[error("symbolic ref {name} cannot be resolved: {reason}")]
    Symref { name: String, reason: String },
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

    /// From hex known to be a full, lower-case object id (the walk's own conversions).
    pub(crate) fn from_hex_unchecked(hex: String) -> ObjectId {
        ObjectId(hex)
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

/// Where `agentgate install` records the baseline, relative to the repository.
pub const BASELINE_FILE: &str = "agentgate/baseline";

/// What a ref holds, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefValue {
    Direct(ObjectId),
    /// A symbolic ref: the full name of the ref it points to.
    Symbolic(String),
}

/// One ref by its full stored name (namespace prefix included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefEntry {
    pub name: String,
    pub value: RefValue,
}

/// Reads raw objects by id: the walk's only access to a repository.
pub trait ObjectRead {
    /// The object's kind and bytes (git's header stripped), or None when it does not exist.
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, GitError>;
}

/// libgit2's object database, the push's quarantine included. Hash re-verification and the
/// object cache are off: git verified the pushed objects when it received them, and the walk
/// reads each object once.
struct Git2Objects<'r> {
    odb: git2::Odb<'r>,
}

impl ObjectRead for Git2Objects<'_> {
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, GitError> {
        let oid = git2::Oid::from_bytes(id.as_bytes())?;
        match self.odb.read(oid) {
            Ok(obj) => Ok(Some((
                match obj.kind() {
                    git2::ObjectType::Commit => ObjectKind::Commit,
                    git2::ObjectType::Tag => ObjectKind::Tag,
                    git2::ObjectType::Tree => ObjectKind::Tree,
                    _ => ObjectKind::Blob,
                },
                obj.data().to_vec(),
            ))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
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
    /// The configuration as git reads it, read once when first needed.
    config: std::cell::OnceCell<Result<Vec<ConfigEntry>, String>>,
}

/// One configuration variable as `git config --list -z` prints it: the name (section and key
/// lower-cased) and the value's bytes (None for a variable without `=`).
pub type ConfigEntry = (String, Option<Vec<u8>>);

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
            config: Default::default(),
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
                    config: Default::default(),
                })
            }
            Err(e) => {
                let out = git_command()
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
                    config: Default::default(),
                })
            }
        }
    }

    /// libgit2 could not open it; use `git` itself if git can (SHA-256, reftable).
    fn cli_fallback(git_dir: &Path, err: git2::Error) -> Result<Backend, GitError> {
        let ok = git_command()
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
                if self
                    .config_value("extensions.objectformat")
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some("sha256")
                {
                    32
                } else {
                    20
                }
            }
        }
    }

    fn git(&self) -> Command {
        let mut c = git_command();
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

    /// The repository's configuration exactly as git reads it (`git config --list -z`, or the
    /// same files read in-process where that is equivalent: [`Repo::config_by_libgit2`]). Read
    /// once.
    /// An unreadable configuration is an error: callers that choose a policy or parse trailers
    /// by it must not guess.
    pub fn config_entries(&self) -> Result<&[ConfigEntry], GitError> {
        let entries = self.config.get_or_init(|| {
            if let Backend::Git2(_) = &self.backend {
                match self.config_by_libgit2() {
                    Ok(Some(entries)) => return Ok(entries),
                    Ok(None) => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            let out = self
                .run(&["config", "--list", "-z"])
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "git config --list: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            // "name\nvalue\0", or "name\0" for a variable without a value.
            Ok(out
                .stdout
                .split(|&b| b == 0)
                .filter(|e| !e.is_empty())
                .map(|e| match e.iter().position(|&b| b == b'\n') {
                    Some(i) => (
                        String::from_utf8_lossy(&e[..i]).into_owned(),
                        Some(e[i + 1..].to_vec()),
                    ),
                    None => (String::from_utf8_lossy(e).into_owned(), None),
                })
                .collect())
        });
        entries.as_deref().map_err(|e| GitError::Command {
            args: "config --list".into(),
            message: e.clone(),
        })
    }

    /// The configuration read in-process, where libgit2 reads exactly the files git reads: the
    /// system file (`/etc/gitconfig`, or `$GIT_CONFIG_SYSTEM`; none with `$GIT_CONFIG_NOSYSTEM`),
    /// the global ones (`$GIT_CONFIG_GLOBAL`, else `~/.gitconfig` and the XDG file) and the
    /// repository's, in git's order. None where that is not enough and `git config` must answer
    /// (it costs a process, about 2 ms): `-c` options passed down by the server
    /// (`GIT_CONFIG_PARAMETERS`, `GIT_CONFIG_COUNT`) or any `include`/`includeIf`, whose
    /// conditions libgit2 does not all know.
    fn config_by_libgit2(&self) -> Result<Option<Vec<ConfigEntry>>, git2::Error> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if env("GIT_CONFIG_PARAMETERS").is_some() || env("GIT_CONFIG_COUNT").is_some() {
            return Ok(None);
        }
        let mut cfg = git2::Config::new()?;
        let mut add = |path: PathBuf, level| -> Result<(), git2::Error> {
            if path.is_file() || path == Path::new("/dev/null") {
                cfg.add_file(&path, level, false)?;
            }
            Ok(())
        };
        let truthy = |v: std::ffi::OsString| {
            !matches!(
                v.to_str().map(str::to_ascii_lowercase).as_deref(),
                Some("0" | "false" | "no" | "off")
            )
        };
        if !env("GIT_CONFIG_NOSYSTEM").is_some_and(truthy) {
            let system = env("GIT_CONFIG_SYSTEM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/gitconfig"));
            add(system, git2::ConfigLevel::System)?;
        }
        match env("GIT_CONFIG_GLOBAL") {
            Some(g) => add(PathBuf::from(g), git2::ConfigLevel::Global)?,
            None => {
                let home = env("HOME").map(PathBuf::from);
                let xdg = env("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| home.as_ref().map(|h| h.join(".config")));
                if let Some(x) = xdg {
                    add(x.join("git/config"), git2::ConfigLevel::XDG)?;
                }
                if let Some(h) = home {
                    add(h.join(".gitconfig"), git2::ConfigLevel::Global)?;
                }
            }
        }
        add(self.git_dir.join("config"), git2::ConfigLevel::Local)?;
        let mut out = Vec::new();
        let mut entries = cfg.entries(None)?;
        while let Some(e) = entries.next() {
            let e = e?;
            let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
            if name.starts_with("include.") || name.starts_with("includeif.") {
                return Ok(None);
            }
            out.push((name, e.has_value().then(|| e.value_bytes().to_vec())));
        }
        Ok(Some(out))
    }

    /// A config value as git reads it (the last one wins), as raw bytes: None when unset.
    pub fn config_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, GitError> {
        let key = key.to_ascii_lowercase();
        Ok(self
            .config_entries()?
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone().unwrap_or_default()))
    }

    /// A config value as text (see [`Repo::config_bytes`]).
    pub fn config_value(&self, key: &str) -> Result<Option<String>, GitError> {
        Ok(self
            .config_bytes(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// How this repository's config changes trailer parsing, read as git reads it.
    pub fn trailer_config(&self) -> Result<TrailerConfig, GitError> {
        Ok(TrailerConfig::from_entries(
            self.config_entries()?.iter().map(|(k, v)| {
                (
                    k.clone(),
                    v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
                )
            }),
        ))
    }

    /// One ref by its exact stored name (namespaces included), symbolic refs not followed; None
    /// when there is no such ref. Never guesses (`rev-parse` would also try `refs/heads/<name>`).
    pub fn read_ref(&self, full: &str) -> Result<Option<RefValue>, GitError> {
        match &self.backend {
            Backend::Git2(repo) => match repo.find_reference(full) {
                Ok(r) => match r.kind() {
                    Some(git2::ReferenceType::Symbolic) => Ok(r
                        .symbolic_target_bytes()
                        .map(|t| RefValue::Symbolic(String::from_utf8_lossy(t).into_owned()))),
                    _ => Ok(r.target().map(|t| RefValue::Direct(ObjectId::from_git2(t)))),
                },
                Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                Err(e) if e.code() == git2::ErrorCode::InvalidSpec => Ok(None),
                Err(e) => Err(e.into()),
            },
            Backend::Cli => {
                // `symbolic-ref` reads exactly one ref, dangling or not; `show-ref --verify`
                // takes only an exact full name.
                let out = self.run(&["symbolic-ref", "-q", "--", full])?;
                match out.status.code() {
                    Some(0) => {
                        return Ok(Some(RefValue::Symbolic(
                            String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
                        )))
                    }
                    Some(1) => {}
                    _ => {
                        // 128: not a ref at all (or not a valid name).
                    }
                }
                let out = self.run(&["show-ref", "--verify", "--", full])?;
                if !out.status.success() {
                    return Ok(None);
                }
                let text = String::from_utf8_lossy(&out.stdout);
                let id = text.split_whitespace().next().unwrap_or_default();
                Ok(Some(RefValue::Direct(ObjectId::parse(id)?)))
            }
        }
    }

    /// Follow a ref by its exact stored name through symbolic refs, as git does when it updates
    /// or reads it (at most 5 levels, git's SYMREF_MAXDEPTH). Returns the final name and its
    /// value (None when the final ref does not exist: a dangling symbolic ref).
    pub fn resolve_ref(&self, full: &str) -> Result<(String, Option<ObjectId>), GitError> {
        let mut name = full.to_string();
        for _ in 0..=5 {
            match self.read_ref(&name)? {
                None => return Ok((name, None)),
                Some(RefValue::Direct(id)) => return Ok((name, Some(id))),
                Some(RefValue::Symbolic(target)) => {
                    if !target.starts_with("refs/") {
                        return Err(GitError::Symref {
                            name: full.to_string(),
                            reason: format!("it points outside refs/ ({target})"),
                        });
                    }
                    name = target;
                }
            }
        }
        Err(GitError::Symref {
            name: full.to_string(),
            reason: "more than 5 levels of symbolic refs (a loop?)".into(),
        })
    }

    /// The object a namespace-relative ref finally names, if it exists.
    pub fn ref_target(&self, name: &str) -> Result<Option<ObjectId>, GitError> {
        Ok(self.resolve_ref(&self.full_ref(name))?.1)
    }

    /// Every ref under `refs/` in every namespace, by its stored name, symbolic refs not followed.
    /// (The `git` backend lists what `for-each-ref` lists, which leaves out dangling symbolic
    /// refs; libgit2 lists them.)
    pub fn ref_snapshot(&self) -> Result<Vec<RefEntry>, GitError> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::Git2(repo) => {
                for r in repo.references()? {
                    let r = r?;
                    let name = String::from_utf8_lossy(r.name_bytes()).into_owned();
                    if !name.starts_with("refs/") {
                        continue;
                    }
                    let value = match r.kind() {
                        Some(git2::ReferenceType::Symbolic) => match r.symbolic_target_bytes() {
                            Some(t) => RefValue::Symbolic(String::from_utf8_lossy(t).into_owned()),
                            None => continue,
                        },
                        _ => match r.target() {
                            Some(t) => RefValue::Direct(ObjectId::from_git2(t)),
                            None => continue,
                        },
                    };
                    out.push(RefEntry { name, value });
                }
            }
            Backend::Cli => {
                let text = self.run_ok(&[
                    "for-each-ref",
                    "--format=%(refname)%00%(symref)%00%(objectname)",
                    "refs/",
                ])?;
                for line in text.lines() {
                    let mut parts = line.split('\0');
                    let (Some(name), Some(symref), Some(id)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        continue;
                    };
                    let value = if symref.is_empty() {
                        RefValue::Direct(ObjectId::parse(id)?)
                    } else {
                        RefValue::Symbolic(symref.to_string())
                    };
                    out.push(RefEntry {
                        name: name.to_string(),
                        value,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Every ref (namespace-relative names, this repository's namespace) for which `keep` holds,
    /// with its target, symbolic refs followed.
    pub fn refs(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<(String, ObjectId)>, GitError> {
        let prefix = self.full_ref("");
        let mut out = Vec::new();
        for r in self.ref_snapshot()? {
            let Some(rel) = r.name.strip_prefix(&prefix) else {
                continue;
            };
            if !rel.starts_with("refs/") || !keep(rel) {
                continue;
            }
            if let (_, Some(id)) = self.resolve_ref(&r.name)? {
                out.push((rel.to_string(), id));
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

    /// Peel tags until a commit, reading each tag as git does (its `object` and `type`); an error
    /// if the chain ends in something else, or a tag's declared type is not its object's.
    pub fn peel_to_commit(&self, id: &ObjectId) -> Result<ObjectId, GitError> {
        let mut cur = id.clone();
        let mut declared: Option<ObjectKind> = None;
        for _ in 0..64 {
            let kind = self
                .object_kind(&cur)?
                .ok_or_else(|| GitError::NotFound(cur.to_string()))?;
            if let Some(d) = declared.filter(|d| *d != kind) {
                return Err(GitError::Object(ObjectError::Malformed {
                    kind: "tag",
                    id: id.to_string(),
                    header: "type".into(),
                    reason: format!("the tag says {d}, but {} is a {kind}", cur.short()),
                }));
            }
            match kind {
                ObjectKind::Commit => return Ok(cur),
                ObjectKind::Tag => {
                    let tag = crate::object::read_tag(&cur, &self.read_raw(&cur)?)?;
                    declared = Some(tag.kind);
                    cur = tag.object;
                }
                kind => {
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
        self.objects()?
            .read(&Oid::from_object_id(id))?
            .map(|(_, data)| data)
            .ok_or_else(|| GitError::NotFound(id.to_string()))
    }

    /// A commit read for judging ([`crate::object::read_commit`]): canonical headers, the
    /// message as `git log` shows it.
    pub fn commit(&self, id: &ObjectId) -> Result<Commit, GitError> {
        let (kind, raw) = self
            .objects()?
            .read(&Oid::from_object_id(id))?
            .ok_or_else(|| GitError::NotFound(id.to_string()))?;
        if kind != ObjectKind::Commit {
            return Err(GitError::NotACommit {
                id: id.to_string(),
                kind: kind.to_string(),
            });
        }
        Ok(crate::object::read_commit(id, &raw)?)
    }

    /// A reader of raw objects (the push's quarantine included) for this repository.
    pub fn objects(&self) -> Result<Box<dyn ObjectRead + '_>, GitError> {
        Ok(match &self.backend {
            Backend::Git2(repo) => {
                // Each object is read once and git verified what it received: libgit2's cache
                // and hash re-verification would only cost time (measured in BENCHMARKS.md).
                git2::opts::strict_hash_verification(false);
                git2::opts::enable_caching(false);
                Box::new(Git2Objects { odb: repo.odb()? })
            }
            Backend::Cli => Box::new(CatFile::start(self)?),
        })
    }

    /// git rewrites parents from `info/grafts` and a `shallow` file; agentgate reads commits as
    /// stored, so in such a repository its walk would not be git's. Refuse to judge there.
    pub fn check_history_as_stored(&self) -> Result<(), GitError> {
        for f in ["info/grafts", "shallow"] {
            let p = self.git_dir.join(f);
            match p.try_exists() {
                Ok(false) => {}
                Ok(true) => {
                    return Err(GitError::Unsupported(format!(
                        "{} exists: git rewrites commit parents from it, so history as git walks it is not history as stored",
                        p.display()
                    )))
                }
                Err(e) => {
                    return Err(GitError::Unsupported(format!(
                        "cannot tell whether {} exists: {e}",
                        p.display()
                    )))
                }
            }
        }
        Ok(())
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

    /// The baseline `agentgate install` recorded: the protected tips when agentgate was
    /// installed (`$GIT_DIR/agentgate/baseline`, one `<commit> <ref>` per line). Nothing
    /// reachable from them is judged. Empty when there is no file; an unreadable or malformed
    /// file is an error (a guess could only weaken the hook or block every push).
    pub fn baseline(&self) -> Result<Vec<ObjectId>, GitError> {
        let path = self.git_dir.join(BASELINE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(GitError::Unsupported(format!(
                    "cannot read the baseline {}: {e}",
                    path.display()
                )))
            }
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = line.split_whitespace().next().unwrap_or_default();
            out.push(ObjectId::parse(id).map_err(|_| {
                GitError::Unsupported(format!(
                    "{}:{}: not `<commit id> <ref>`",
                    path.display(),
                    i + 1
                ))
            })?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Is `ancestor` reachable from `descendant` (or equal to it)? Answered by agentgate's own
    /// walk, so it follows the parents git follows.
    pub fn is_ancestor(
        &self,
        ancestor: &ObjectId,
        descendant: &ObjectId,
    ) -> Result<bool, GitError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let stop = Oid::from_object_id(ancestor);
        let walked = crate::walk::walk(
            self.objects()?.as_mut(),
            &crate::walk::Limits {
                tip: Oid::from_object_id(descendant),
                hidden: &[stop],
                stops: &Default::default(),
            },
            &|_: &Commit| None::<()>,
        )?;
        Ok(walked.reached(&stop))
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

impl ObjectRead for CatFile {
    fn read(&mut self, id: &Oid) -> Result<Option<(ObjectKind, Vec<u8>)>, GitError> {
        let id = id.to_object_id();
        Ok(CatFile::read(self, &id)?.map(|(kind, data)| {
            let kind = match kind.as_str() {
                "commit" => ObjectKind::Commit,
                "tag" => ObjectKind::Tag,
                "tree" => ObjectKind::Tree,
                _ => ObjectKind::Blob,
            };
            (kind, data)
        }))
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
            config: Default::default(),
        };
        assert_eq!(
            repo.full_ref("refs/heads/main"),
            "refs/namespaces/a/refs/namespaces/b/refs/heads/main"
        );
    }
}
