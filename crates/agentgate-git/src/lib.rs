//! agentgate's git access: the only crate that reads repositories or runs git.
//!
//! Two backends behind one type ([`Repo`]): libgit2 (in-process, fast) for the repositories it
//! can open, and the `git` command for the ones it cannot (SHA-256 object format, reftable:
//! libgit2 1.9 supports neither). Both only fetch raw objects; [`object`] parses them the way
//! git does and [`walk`] walks them, so the hook reads the same thing whichever backend found
//! the bytes.
//!
//! Replace refs (`refs/replace/*`) never change what is read: libgit2 does not apply them, and
//! every `git` child process runs with `GIT_NO_REPLACE_OBJECTS=1` ([`git_command`]). Refs are
//! looked up by their exact name, never through `rev-parse`'s guessing.
//!
//! Inside a pre-receive hook the pushed objects live in git's quarantine directory, named by
//! `GIT_OBJECT_DIRECTORY` (with the real store in `GIT_ALTERNATE_OBJECT_DIRECTORIES`). We open
//! the repository at `GIT_DIR` and add those directories as alternates ourselves instead of
//! using libgit2's `FROM_ENV`, because `FROM_ENV` also applies `GIT_NAMESPACE` by moving the
//! whole ref store, packed refs included (libgit2's src/libgit2/refdb_fs.c,
//! `setup_namespace`), which then loses them; namespaces are applied here, by hand, in
//! [`Repo::full_ref`].
//!
//! Errors are per operation: opening ([`OpenError`]), reading objects ([`ReadError`]), refs
//! ([`RefError`]), notes ([`NotesError`], [`NoteWriteError`]), the walk ([`WalkError`]) and so
//! on, each with the cases that operation can meet.

use std::process::Command;

mod backend;
mod baseline;
mod commands;
mod config;
mod diff;
mod graph;
mod id;
mod notes;
pub mod object;
mod pack;
mod refs;
mod repo;
#[cfg(test)]
mod testutil;
pub mod walk;

pub use backend::{BackendError, Libgit2Error, ObjectRead, SharedRead};
pub use baseline::{BaselineError, BASELINE_FILE};
pub use commands::{checkout_detached, hooks_path_setting, version, CheckoutError, VersionError};
pub use config::{config_file_entries, ConfigEntry, ConfigError};
pub use diff::{DiffError, TreeDiff};
pub use id::{InvalidId, ObjectId, ObjectKind};
pub use notes::{NoteWriteError, NotesError};
pub use object::{Commit, Links, ObjectError, Oid, Signature};
#[doc(hidden)]
pub use pack::fuzz_pack;
pub use refs::{RefEntry, RefError, RefValue};
pub use repo::{HistoryError, OpenError, ReadError, Repo, RevisionError};
pub use walk::WalkError;

/// A `git` command as agentgate runs it everywhere: replace refs off (a pushed `refs/replace/*`
/// must not change which commit is judged or built), never prompting for credentials.
pub fn git_command() -> Command {
    // The one place a git process is made (clippy.toml disallows `Command::new` elsewhere).
    #[allow(clippy::disallowed_methods)]
    let mut c = Command::new("git");
    c.env("GIT_NO_REPLACE_OBJECTS", "1")
        .env("GIT_TERMINAL_PROMPT", "0");
    c
}
