//! Git notes, the attestations' carrier: the note on one object, every note of a notes commit
//! at once (the hook's index), and appending lines to a note (the signer's side). Notes trees
//! fan out by two hex digits per level as they grow: "ab/cdef..." (git's notes.c,
//! `load_subtree` and `construct_path_with_fanout`).

use std::collections::HashMap;
use std::io::Write as _;
use std::process::Stdio;

use crate::backend::{BackendError, CatFile, Libgit2Error};
use crate::id::{InvalidId, ObjectId};
use crate::repo::{Backend, ReadError, Repo};

/// Why notes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    /// A notes commit without a `tree` line, or a notes tree that does not parse.
    #[error("malformed object {0}")]
    Malformed(String),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
}

impl From<BackendError> for NotesError {
    fn from(e: BackendError) -> Self {
        NotesError::Read(e.into())
    }
}

/// Why a note could not be appended to.
#[derive(Debug, thiserror::Error)]
pub enum NoteWriteError {
    #[error("the existing note on {target} under {notes_ref} is not UTF-8")]
    NotUtf8 { target: String, notes_ref: String },
    #[error("cannot read {notes_ref}")]
    Read {
        notes_ref: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot make a signature for the notes commit")]
    Signature(#[source] crate::backend::Libgit2Error),
    #[error("cannot write the note on {target} under {notes_ref}")]
    Write {
        target: String,
        notes_ref: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Who writes a notes commit when the repository's configuration names nobody.
const FALLBACK_NAME: &str = "agentgate";
const FALLBACK_EMAIL: &str = "agentgate@localhost";

impl Repo {
    /// The note on `target` in the notes commit `notes` (any fanout), if there is one.
    pub fn note_at(
        &self,
        notes: &ObjectId,
        target: &ObjectId,
    ) -> Result<Option<Vec<u8>>, NotesError> {
        let raw = self.read_raw(notes)?;
        let mut tree = notes_tree(&raw, notes)?;
        let mut rest = target.as_str();
        loop {
            let entries = parse_tree(&self.read_raw(&tree)?, tree.as_str().len() / 2)
                .ok_or_else(|| NotesError::Malformed(tree.to_string()))?;
            if let Some(e) = entries
                .iter()
                .find(|e| e.name == rest.as_bytes() && !e.is_tree)
            {
                return Ok(Some(self.read_raw(&e.id)?));
            }
            let Some((fanout, deeper)) = rest.split_at_checked(2).filter(|(_, d)| !d.is_empty())
            else {
                return Ok(None);
            };
            match entries
                .iter()
                .find(|e| e.name == fanout.as_bytes() && e.is_tree)
            {
                Some(e) => {
                    tree = e.id.clone();
                    rest = deeper;
                }
                None => return Ok(None),
            }
        }
    }

    /// Every note in the notes commit `notes`: annotated object id (hex) -> note blob id.
    ///
    /// The same answers as [`Repo::note_at`] for every id, from one pass over the notes tree:
    /// a note nearer the root wins over one deeper for the same id, only the first subtree of a
    /// name is read, and entries that name no object id are ignored. Every fanout tree is read
    /// once (one `git cat-file --batch` for the `git` backend), so a malformed or missing tree
    /// anywhere in the notes refuses, where `note_at` only noticed the trees on its path.
    pub fn notes_index(&self, notes: &ObjectId) -> Result<HashMap<String, ObjectId>, NotesError> {
        let mut batch = match self.backend {
            Backend::Git2(_) => None,
            Backend::Cli => Some(CatFile::start(self)?),
        };
        let mut read = |id: &ObjectId| -> Result<Vec<u8>, ReadError> {
            match batch.as_mut() {
                None => self.read_raw(id),
                Some(b) => b
                    .read_object(id)?
                    .map(|(_, data)| data)
                    .ok_or_else(|| ReadError::NotFound(id.to_string())),
            }
        };
        let root = notes_tree(&read(notes)?, notes)?;
        let hex_len = root.as_str().len();
        let mut index = HashMap::new();
        // Level by level, so that a note nearer the root is seen first.
        let mut level = vec![(String::new(), root)];
        while !level.is_empty() {
            let mut next = Vec::new();
            for (prefix, tree) in level {
                let entries = parse_tree(&read(&tree)?, hex_len / 2)
                    .ok_or_else(|| NotesError::Malformed(tree.to_string()))?;
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

    /// Append `lines` to the note on `target` under `notes_ref`, one per line, keeping every
    /// line already there.
    ///
    /// Read-append-write is not atomic: two signers appending to the same commit's note at the
    /// same moment in one clone can lose one side's lines (the notes ref itself never loses
    /// history). CI signs each commit once, in its own clone; merging notes across clones is
    /// `git notes merge -s cat_sort_uniq`.
    pub fn append_note(
        &self,
        notes_ref: &str,
        target: &ObjectId,
        lines: &[String],
    ) -> Result<(), NoteWriteError> {
        let mut text = self.note_text(notes_ref, target)?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for line in lines {
            debug_assert!(!line.contains('\n'));
            text.push_str(line);
            text.push('\n');
        }
        let write_err = |source: Box<dyn std::error::Error + Send + Sync>| NoteWriteError::Write {
            target: target.to_string(),
            notes_ref: notes_ref.to_string(),
            source,
        };
        match &self.backend {
            Backend::Git2(repo) => {
                let oid = target.to_git2().map_err(|e| write_err(Box::new(e)))?;
                let sig = repo
                    .signature()
                    .or_else(|_| git2::Signature::now(FALLBACK_NAME, FALLBACK_EMAIL))
                    .map_err(|e| NoteWriteError::Signature(e.into()))?;
                // `force` replaces the note object; the text above already holds the old lines.
                repo.note(&sig, &sig, Some(notes_ref), oid, &text, true)
                    .map_err(|e| write_err(Box::new(Libgit2Error::from(e))))?;
                Ok(())
            }
            Backend::Cli => self
                .write_note_cli(notes_ref, target, &text)
                .map_err(|e| write_err(Box::new(e))),
        }
    }

    /// The note's text as it is now (empty when there is none).
    fn note_text(&self, notes_ref: &str, target: &ObjectId) -> Result<String, NoteWriteError> {
        let read_err = |source: Box<dyn std::error::Error + Send + Sync>| NoteWriteError::Read {
            notes_ref: notes_ref.to_string(),
            source,
        };
        let bytes = match &self.backend {
            Backend::Git2(repo) => {
                let oid = target.to_git2().map_err(|e| read_err(Box::new(e)))?;
                match repo.find_note(Some(notes_ref), oid) {
                    Ok(note) => note.message_bytes().to_vec(),
                    Err(e) if e.code() == git2::ErrorCode::NotFound => Vec::new(),
                    Err(e) => return Err(read_err(Box::new(Libgit2Error::from(e)))),
                }
            }
            Backend::Cli => match self.ref_target(notes_ref) {
                Ok(None) => Vec::new(),
                Ok(Some(notes)) => self
                    .note_at(&notes, target)
                    .map_err(|e| read_err(Box::new(e)))?
                    .unwrap_or_default(),
                Err(e) => return Err(read_err(Box::new(e))),
            },
        };
        String::from_utf8(bytes).map_err(|_| NoteWriteError::NotUtf8 {
            target: target.to_string(),
            notes_ref: notes_ref.to_string(),
        })
    }

    /// Write the note with git itself (SHA-256, reftable): the text as a blob, then
    /// `git notes add -f -C` with that blob, so git writes exactly these bytes as libgit2 does.
    fn write_note_cli(
        &self,
        notes_ref: &str,
        target: &ObjectId,
        text: &str,
    ) -> Result<(), BackendError> {
        let mut child = self
            .git()
            .args(["hash-object", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| BackendError::command("hash-object", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| BackendError::command("hash-object", e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| BackendError::command("hash-object", e))?;
        if !out.status.success() {
            return Err(BackendError::command(
                "hash-object",
                String::from_utf8_lossy(&out.stderr).trim(),
            ));
        }
        let blob = ObjectId::parse(String::from_utf8_lossy(&out.stdout).trim())
            .map_err(|e| BackendError::command("hash-object", e))?;
        let mut notes = self.git();
        // As libgit2's repo.signature(): the configured identity, else agentgate's own.
        let named = |key: &str| self.config_value(key).ok().flatten().is_some();
        if !(named("user.name") && named("user.email")) {
            for (var, value) in [
                ("GIT_AUTHOR_NAME", FALLBACK_NAME),
                ("GIT_COMMITTER_NAME", FALLBACK_NAME),
                ("GIT_AUTHOR_EMAIL", FALLBACK_EMAIL),
                ("GIT_COMMITTER_EMAIL", FALLBACK_EMAIL),
            ] {
                notes.env(var, value);
            }
        }
        let args = [
            "notes",
            "--ref",
            notes_ref,
            "add",
            "-f",
            "-C",
            blob.as_str(),
            target.as_str(),
        ];
        let out = notes
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| BackendError::command(&args.join(" "), e))?;
        if !out.status.success() {
            return Err(BackendError::command(
                &args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim(),
            ));
        }
        Ok(())
    }
}

/// The tree a notes commit holds (its first line, `tree <id>`).
fn notes_tree(raw: &[u8], notes: &ObjectId) -> Result<ObjectId, NotesError> {
    let tree = raw
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| l.strip_prefix(b"tree "))
        .ok_or_else(|| NotesError::Malformed(notes.to_string()))?;
    Ok(ObjectId::parse(&String::from_utf8_lossy(tree))?)
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
        let (mode, after_mode) = rest.split_at(sp);
        let after_mode = after_mode.get(1..)?;
        let nul = after_mode.iter().position(|&b| b == 0)?;
        let (name, after_name) = after_mode.split_at(nul);
        let id = after_name.get(1..1 + id_bytes)?;
        out.push(TreeEntry {
            name: name.to_vec(),
            id: ObjectId::from_hex_unchecked(hex::encode(id)),
            is_tree: mode == b"40000",
        });
        rest = after_name.get(1 + id_bytes..)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::git;

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
            let blob = git(d, &["hash-object", "-w", "--stdin"], Some(b"fanned note\n"));
            let inner = git(
                d,
                &["mktree"],
                Some(format!("100644 blob {blob}\t{}\n", &two[2..]).as_bytes()),
            );
            let outer = git(
                d,
                &["mktree"],
                Some(format!("040000 tree {inner}\t{}\n", &two[..2]).as_bytes()),
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

    /// `sign --note` and `gate --note` append through this, in either object format: libgit2
    /// for SHA-1, git itself for SHA-256 (which libgit2 cannot open).
    #[test]
    fn append_note_keeps_lines_in_both_formats() {
        for format in ["sha1", "sha256"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            git(
                d,
                &["init", "-q", &format!("--object-format={format}")],
                None,
            );
            git(d, &["commit", "-q", "--allow-empty", "-m", "one"], None);
            let head = ObjectId::parse(&git(d, &["rev-parse", "HEAD"], None)).unwrap();
            let repo = Repo::open(Some(d)).unwrap();
            let notes = "refs/notes/agentgate";
            repo.append_note(notes, &head, &["a".into(), "b".into()])
                .unwrap();
            repo.append_note(notes, &head, &["c".into()]).unwrap();
            assert_eq!(
                git(d, &["notes", "--ref", notes, "show", head.as_str()], None),
                "a\nb\nc",
                "{format}"
            );
            let tip = ObjectId::parse(&git(d, &["rev-parse", notes], None)).unwrap();
            assert_eq!(
                repo.note_at(&tip, &head).unwrap().as_deref(),
                Some(&b"a\nb\nc\n"[..]),
                "{format}: the note holds exactly the lines, each ended"
            );
        }
    }
}
