//! [`Repo`]: one repository, opened from a hook's environment or from a path, read through
//! libgit2 or the `git` command, and the object-level reads everything else builds on (kinds,
//! raw bytes, commits as git reads them, tags peeled as git peels them).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::backend::{BackendError, CatFile, Git2Objects, Libgit2Error, ObjectRead};
use crate::config::ConfigEntry;
use crate::git_command;
use crate::id::{InvalidId, ObjectId, ObjectKind};
use crate::object::{Commit, Links, ObjectError, Oid};
use crate::walk::WalkError;

/// Why a repository could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// git (and libgit2) read a repository only as the user who owns it (`safe.directory`):
    /// its configuration could otherwise make another user run commands. The binary turns this
    /// into the command to run as the owner.
    #[error("{path} belongs to another user (uid {owner}), and git reads a repository only as its owner (safe.directory)")]
    NotOwner { path: PathBuf, owner: u32 },
    #[error("cannot open repository {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Why an object could not be read as asked (a kind, its bytes, a commit, a tag chain).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("object {0} not found in the repository (nor in the push's quarantine)")]
    NotFound(String),
    #[error("{id} is a {kind}, not a commit")]
    NotACommit { id: String, kind: String },
    /// A commit or tag whose headers git reads differently from a plain reading, or whose
    /// message cannot be decoded as git shows it.
    #[error(transparent)]
    Object(#[from] ObjectError),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl OpenError {
    /// libgit2 refused `path` for its owner: say whose it is (the directory's owner, or, when
    /// that cannot be read, libgit2's words).
    fn not_owner(path: &Path, e: git2::Error) -> OpenError {
        match owner_uid(path) {
            Some(owner) => OpenError::NotOwner {
                path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
                owner,
            },
            None => OpenError::Open {
                path: path.to_path_buf(),
                source: Box::new(Libgit2Error::from(e)),
            },
        }
    }
}

#[cfg(unix)]
fn owner_uid(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.uid())
}

#[cfg(not(unix))]
fn owner_uid(_path: &Path) -> Option<u32> {
    None
}

impl From<git2::Error> for ReadError {
    fn from(e: git2::Error) -> Self {
        ReadError::Backend(e.into())
    }
}

/// Why a revision (`HEAD`, `main~2`, `A..B`) names no object.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    #[error("cannot resolve revision {0:?}")]
    BadRevision(String),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// The repository rewrites history as git reads it (grafts, a shallow file), so a reading of
/// the objects as stored would not be git's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HistoryError(pub String);

pub(crate) enum Backend {
    Git2(git2::Repository),
    Cli,
}

/// A repository, opened either from a hook's environment or from a path.
pub struct Repo {
    pub(crate) backend: Backend,
    pub(crate) git_dir: PathBuf,
    namespace: Option<String>,
    /// Extra object directories (the quarantine) for the CLI backend's child processes.
    object_env: Vec<(&'static str, OsString)>,
    /// The object directories added to libgit2's after the repository's own (the quarantine).
    extra_object_dirs: Vec<PathBuf>,
    /// Where [`Repo::open`] started (the CLI backend asks git about the work tree from there).
    opened_at: Option<PathBuf>,
    /// The configuration as git reads it, read once when first needed.
    pub(crate) config: std::cell::OnceCell<Result<Vec<ConfigEntry>, String>>,
}

impl Repo {
    /// Open the repository a hook runs in: `GIT_DIR` (or the current directory), plus the
    /// push's quarantine from `GIT_OBJECT_DIRECTORY` / `GIT_ALTERNATE_OBJECT_DIRECTORIES`,
    /// plus `GIT_NAMESPACE`.
    pub fn open_from_env() -> Result<Repo, OpenError> {
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
        let mut extra_object_dirs = Vec::new();
        let backend = match git2::Repository::open_ext(
            &git_dir,
            git2::RepositoryOpenFlags::NO_SEARCH,
            std::iter::empty::<&Path>(),
        ) {
            Ok(repo) => {
                {
                    let odb = repo.odb().map_err(BackendError::from)?;
                    for alt in &alternates {
                        let alt = std::path::absolute(alt).unwrap_or_else(|_| alt.clone());
                        if alt.is_dir() {
                            odb.add_disk_alternate(&alt.to_string_lossy())
                                .map_err(BackendError::from)?;
                            extra_object_dirs.push(alt);
                        }
                    }
                }
                Backend::Git2(repo)
            }
            Err(e) if e.code() == git2::ErrorCode::Owner => {
                return Err(OpenError::not_owner(&git_dir, e))
            }
            Err(e) => Self::cli_fallback(&git_dir, e)?,
        };
        Ok(Repo {
            backend,
            git_dir,
            namespace,
            object_env,
            extra_object_dirs,
            opened_at: None,
            config: Default::default(),
        })
    }

    /// Open a repository by path (bare or not), or discover it from the current directory.
    pub fn open(path: Option<&Path>) -> Result<Repo, OpenError> {
        let start = path
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let (backend, git_dir) = match git2::Repository::open_ext(
            &start,
            git2::RepositoryOpenFlags::empty(),
            std::iter::empty::<&Path>(),
        ) {
            Ok(repo) => {
                let git_dir = repo.path().to_path_buf();
                (Backend::Git2(repo), git_dir)
            }
            Err(e) if e.code() == git2::ErrorCode::Owner => {
                return Err(OpenError::not_owner(&start, e))
            }
            Err(e) => {
                let out = git_command()
                    .arg("-C")
                    .arg(&start)
                    .args(["rev-parse", "--absolute-git-dir"])
                    .stderr(Stdio::null())
                    .output()
                    .map_err(|io| OpenError::Open {
                        path: start.clone(),
                        source: Box::new(io),
                    })?;
                if !out.status.success() {
                    return Err(OpenError::Open {
                        path: start,
                        source: Box::new(Libgit2Error::from(e)),
                    });
                }
                let git_dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                (Self::cli_fallback(&git_dir, e)?, git_dir)
            }
        };
        Ok(Repo {
            backend,
            git_dir,
            namespace: None,
            object_env: Vec::new(),
            extra_object_dirs: Vec::new(),
            opened_at: Some(start),
            config: Default::default(),
        })
    }

    /// libgit2 could not open it; use `git` itself if git can (SHA-256, reftable).
    fn cli_fallback(git_dir: &Path, err: git2::Error) -> Result<Backend, OpenError> {
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
            Err(OpenError::Open {
                path: git_dir.to_path_buf(),
                source: Box::new(Libgit2Error::from(err)),
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

    /// The work tree, or None for a bare repository (or one opened from a hook's environment).
    pub fn work_tree(&self) -> Result<Option<PathBuf>, BackendError> {
        match &self.backend {
            Backend::Git2(repo) => Ok(repo.workdir().map(Path::to_path_buf)),
            Backend::Cli => {
                let Some(start) = &self.opened_at else {
                    return Ok(None);
                };
                // Asked from where the repository was found: with --git-dir, git would take
                // the current directory for the work tree.
                let out = git_command()
                    .arg("-C")
                    .arg(start)
                    .args(["rev-parse", "--is-bare-repository", "--show-toplevel"])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .map_err(|e| BackendError::command("rev-parse --show-toplevel", e))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let mut lines = text.lines();
                if !out.status.success() || lines.next() != Some("false") {
                    return Ok(None);
                }
                Ok(lines.next().filter(|l| !l.is_empty()).map(PathBuf::from))
            }
        }
    }

    /// The directory shared by all of the repository's work trees (objects, refs, config).
    pub fn common_dir(&self) -> Result<PathBuf, BackendError> {
        match &self.backend {
            Backend::Git2(repo) => Ok(repo.commondir().to_path_buf()),
            Backend::Cli => {
                let dir =
                    self.run_ok(&["rev-parse", "--path-format=absolute", "--git-common-dir"])?;
                Ok(PathBuf::from(dir.trim_end_matches('\n')))
            }
        }
    }

    /// The URL of a remote as git uses it (`url.<base>.insteadOf` applied), if there is one.
    pub fn remote_url(&self, name: &str) -> Result<Option<String>, BackendError> {
        match &self.backend {
            Backend::Git2(repo) => Ok(repo
                .find_remote(name)
                .ok()
                .and_then(|r| r.url().map(str::to_string))),
            Backend::Cli => {
                let out = self.run(&["remote", "get-url", "--", name])?;
                if !out.status.success() {
                    return Ok(None);
                }
                Ok(Some(
                    String::from_utf8_lossy(&out.stdout)
                        .trim_end_matches('\n')
                        .to_string(),
                ))
            }
        }
    }

    pub(crate) fn git(&self) -> Command {
        let mut c = git_command();
        c.arg("--git-dir").arg(&self.git_dir);
        for (k, v) in &self.object_env {
            c.env(k, v);
        }
        // Namespaces are applied by hand (full_ref); never let git apply it a second time.
        c.env_remove("GIT_NAMESPACE");
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Result<std::process::Output, BackendError> {
        self.git()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| BackendError::command(&args.join(" "), e))
    }

    pub(crate) fn run_ok(&self, args: &[&str]) -> Result<String, BackendError> {
        let out = self.run(args)?;
        if !out.status.success() {
            return Err(BackendError::command(
                &args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The kind of an object, or None when it does not exist.
    pub fn object_kind(&self, id: &ObjectId) -> Result<Option<ObjectKind>, ReadError> {
        match &self.backend {
            Backend::Git2(repo) => {
                let odb = repo.odb()?;
                match odb.read_header(id.to_git2()?) {
                    Ok((_, kind)) => Ok(Some(ObjectKind::from_git2(kind))),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
                    Err(e) => Err(e.into()),
                }
            }
            Backend::Cli => {
                let out = self.run(&["cat-file", "-t", id.as_str()])?;
                if !out.status.success() {
                    return Ok(None);
                }
                Ok(Some(ObjectKind::from_name(
                    String::from_utf8_lossy(&out.stdout).trim(),
                )))
            }
        }
    }

    /// Peel tags until a commit, reading each tag as git does (its `object` and `type`); an error
    /// if the chain ends in something else, or a tag's declared type is not its object's.
    pub fn peel_to_commit(&self, id: &ObjectId) -> Result<ObjectId, ReadError> {
        let mut cur = id.clone();
        let mut declared: Option<ObjectKind> = None;
        for _ in 0..64 {
            let kind = self
                .object_kind(&cur)?
                .ok_or_else(|| ReadError::NotFound(cur.to_string()))?;
            if let Some(d) = declared.filter(|d| *d != kind) {
                return Err(ReadError::Object(ObjectError::Malformed {
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
                    return Err(ReadError::NotACommit {
                        id: id.to_string(),
                        kind: kind.to_string(),
                    })
                }
            }
        }
        Err(ReadError::NotACommit {
            id: id.to_string(),
            kind: "tag chain too deep".into(),
        })
    }

    /// The raw bytes of an object (without git's header).
    pub fn read_raw(&self, id: &ObjectId) -> Result<Vec<u8>, ReadError> {
        self.objects()?
            .read(&Oid::from_object_id(id))?
            .map(|(_, data)| data)
            .ok_or_else(|| ReadError::NotFound(id.to_string()))
    }

    /// A commit read for judging ([`crate::object::read_commit`]): canonical headers, the
    /// message as `git log` shows it.
    pub fn commit(&self, id: &ObjectId) -> Result<Commit, ReadError> {
        let (kind, raw) = self
            .objects()?
            .read(&Oid::from_object_id(id))?
            .ok_or_else(|| ReadError::NotFound(id.to_string()))?;
        if kind != ObjectKind::Commit {
            return Err(ReadError::NotACommit {
                id: id.to_string(),
                kind: kind.to_string(),
            });
        }
        Ok(crate::object::read_commit(id, &raw)?)
    }

    /// A commit's links as git's own parser reads them ([`crate::object::parse_links`]: the
    /// first `tree`, the `parent` lines right after it, the committer date): what a signer
    /// names, even for a commit the hook would refuse to read for judging.
    pub fn commit_links(&self, id: &ObjectId) -> Result<Links, ReadError> {
        let (kind, raw) = self
            .objects()?
            .read(&Oid::from_object_id(id))?
            .ok_or_else(|| ReadError::NotFound(id.to_string()))?;
        if kind != ObjectKind::Commit {
            return Err(ReadError::NotACommit {
                id: id.to_string(),
                kind: kind.to_string(),
            });
        }
        Ok(crate::object::parse_links(id, &raw)?)
    }

    /// A reader of raw objects (the push's quarantine included) for this repository.
    pub fn objects(&self) -> Result<Box<dyn ObjectRead + '_>, BackendError> {
        Ok(match &self.backend {
            Backend::Git2(repo) => {
                // Each object is read once and git verified what it received: libgit2's cache
                // and hash re-verification would only cost time (measured in BENCHMARKS.md).
                git2::opts::strict_hash_verification(false);
                git2::opts::enable_caching(false);
                Box::new(Git2Objects {
                    odb: repo.odb()?,
                    objects_dir: repo.commondir().join("objects"),
                    extra_dirs: self.extra_object_dirs.clone(),
                    packs: Default::default(),
                    index_bytes: Default::default(),
                })
            }
            Backend::Cli => Box::new(CatFile::start(self)?),
        })
    }

    /// git rewrites parents from `info/grafts` and a `shallow` file; agentgate reads commits as
    /// stored, so in such a repository its walk would not be git's. Refuse to judge there.
    pub fn check_history_as_stored(&self) -> Result<(), HistoryError> {
        for f in ["info/grafts", "shallow"] {
            let p = self.git_dir.join(f);
            match p.try_exists() {
                Ok(false) => {}
                Ok(true) => {
                    return Err(HistoryError(format!(
                        "{} exists: git rewrites commit parents from it, so history as git walks it is not history as stored",
                        p.display()
                    )))
                }
                Err(e) => {
                    return Err(HistoryError(format!(
                        "cannot tell whether {} exists: {e}",
                        p.display()
                    )))
                }
            }
        }
        Ok(())
    }

    /// Is `ancestor` reachable from `descendant` (or equal to it)? Answered by agentgate's own
    /// walk, so it follows the parents git follows.
    pub fn is_ancestor(
        &self,
        ancestor: &ObjectId,
        descendant: &ObjectId,
    ) -> Result<bool, WalkError> {
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
    pub fn rev_list(&self, specs: &[String]) -> Result<Vec<ObjectId>, RevisionError> {
        let mut args = vec!["rev-list".to_string()];
        args.extend(specs.iter().cloned());
        args.push("--".into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&argv)?;
        if !out.status.success() {
            return Err(RevisionError::BadRevision(format!(
                "{} ({})",
                specs.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(ObjectId::parse)
            .collect::<Result<_, _>>()?)
    }

    /// Resolve a revision (`HEAD`, `main~2`, an id) to a full object id.
    pub fn resolve(&self, rev: &str) -> Result<ObjectId, RevisionError> {
        match &self.backend {
            Backend::Git2(repo) => {
                let obj = repo
                    .revparse_single(rev)
                    .map_err(|_| RevisionError::BadRevision(rev.to_string()))?;
                Ok(ObjectId::from_git2(obj.id()))
            }
            Backend::Cli => {
                let out =
                    self.run(&["rev-parse", "--verify", "-q", &format!("{rev}^{{object}}")])?;
                if !out.status.success() {
                    return Err(RevisionError::BadRevision(rev.to_string()));
                }
                Ok(ObjectId::parse(
                    String::from_utf8_lossy(&out.stdout).trim(),
                )?)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_prefix_refs() {
        let repo = Repo {
            backend: Backend::Cli,
            git_dir: PathBuf::from("."),
            namespace: Some("a/b".into()),
            object_env: vec![],
            extra_object_dirs: vec![],
            opened_at: None,
            config: Default::default(),
        };
        assert_eq!(
            repo.full_ref("refs/heads/main"),
            "refs/namespaces/a/refs/namespaces/b/refs/heads/main"
        );
    }
}
