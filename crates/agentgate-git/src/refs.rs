//! Refs by their exact stored names: one ref, a symbolic ref followed as git follows it, or a
//! snapshot of them all. Never `rev-parse`'s guessing (`main` would also try
//! `refs/heads/main`), and namespaces applied by hand ([`Repo::full_ref`]).

use crate::backend::BackendError;
use crate::id::{InvalidId, ObjectId};
use crate::repo::{Backend, Repo};

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

/// Why refs could not be read or followed.
#[derive(Debug, thiserror::Error)]
pub enum RefError {
    #[error("symbolic ref {name} cannot be resolved: {reason}")]
    Symref { name: String, reason: String },
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Repo {
    /// One ref by its exact stored name (namespaces included), symbolic refs not followed; None
    /// when there is no such ref. Never guesses (`rev-parse` would also try `refs/heads/<name>`).
    pub fn read_ref(&self, full: &str) -> Result<Option<RefValue>, RefError> {
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
                Err(e) => Err(BackendError::from(e).into()),
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
    pub fn resolve_ref(&self, full: &str) -> Result<(String, Option<ObjectId>), RefError> {
        let mut name = full.to_string();
        for _ in 0..=5 {
            match self.read_ref(&name)? {
                None => return Ok((name, None)),
                Some(RefValue::Direct(id)) => return Ok((name, Some(id))),
                Some(RefValue::Symbolic(target)) => {
                    if !target.starts_with("refs/") {
                        return Err(RefError::Symref {
                            name: full.to_string(),
                            reason: format!("it points outside refs/ ({target})"),
                        });
                    }
                    name = target;
                }
            }
        }
        Err(RefError::Symref {
            name: full.to_string(),
            reason: "more than 5 levels of symbolic refs (a loop?)".into(),
        })
    }

    /// The object a namespace-relative ref finally names, if it exists.
    pub fn ref_target(&self, name: &str) -> Result<Option<ObjectId>, RefError> {
        Ok(self.resolve_ref(&self.full_ref(name))?.1)
    }

    /// Every ref under `refs/` in every namespace, by its stored name, symbolic refs not followed.
    /// (The `git` backend lists what `for-each-ref` lists, which leaves out dangling symbolic
    /// refs; libgit2 lists them.)
    pub fn ref_snapshot(&self) -> Result<Vec<RefEntry>, RefError> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::Git2(repo) => {
                for r in repo.references().map_err(BackendError::from)? {
                    let r = r.map_err(BackendError::from)?;
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
    pub fn refs(&self, keep: &dyn Fn(&str) -> bool) -> Result<Vec<(String, ObjectId)>, RefError> {
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
}
