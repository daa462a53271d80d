//! git-ai's authorship logs as evidence (`[detect] sources = ["git-ai"]`): a commit whose note
//! in `refs/notes/ai` attributes lines to an AI agent is an agent commit. The notes are read by
//! agentgate-git (`notes_index`, the push's quarantine included); their format is read here.
//!
//! The format (git-ai's "Git AI Standard", schema `authorship/3.0.0`): an attestation section,
//! a line `---`, then a JSON metadata object. The attestation section lists each file with AI
//! lines, then entries indented by two spaces: `<key> <ranges>` (`1-4,9,12-20`). A key is a
//! prompt hash (16 or 7 hex digits) or `s_<id>::t_<id>` (a session and its trace), both AI,
//! described by `prompts` / `sessions` in the metadata (`agent_id.tool`, `agent_id.model`);
//! `h_<id>` keys are lines a human attested.
//!
//! These notes are written by the agent's side (`git-ai checkpoint` on the developer's
//! machine) and carry no signature: anyone who can push can add, change or drop them. They
//! can only ever add agent commits here (a refusal, never an admission), so a forged note
//! costs its pusher a gate run; a dropped one is the same as a stripped trailer.

use std::collections::HashMap;

use agentgate_git::{ObjectId, ReadError, RefError, Repo};
use serde_json::Value;

use crate::decision::RefUpdate;
use crate::detect::{Location, Match, RULE_GIT_AI};

/// Where git-ai keeps its authorship logs (its spec: MUST).
pub const NOTES_REF: &str = "refs/notes/ai";
/// Notes larger than this are not parsed; they count as evidence (a git-ai note that big holds
/// transcripts of an agent's session).
pub const MAX_NOTE_BYTES: usize = 64 << 20;

/// What a note says about AI authorship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    /// AI-attributed lines, summed over files.
    pub lines: u64,
    pub files: usize,
    /// `tool (model)` of each agent named, in order of first appearance.
    pub agents: Vec<String>,
}

/// Why a note is not a git-ai authorship log this reader understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("it is larger than {MAX_NOTE_BYTES} bytes")]
    TooLarge,
    #[error("it is not UTF-8")]
    NotUtf8,
    #[error("it has no `---` line between the attestations and the metadata")]
    NoDivider,
    #[error("its metadata is not a JSON object: {0}")]
    Metadata(String),
    #[error("its schema_version {0:?} is not authorship/3.x")]
    Schema(String),
    #[error("attestation line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
}

/// Read a note: the AI attribution it makes (None when it attributes no line to an AI).
pub fn parse(note: &[u8]) -> Result<Option<Attribution>, NoteError> {
    if note.len() > MAX_NOTE_BYTES {
        return Err(NoteError::TooLarge);
    }
    let text = std::str::from_utf8(note).map_err(|_| NoteError::NotUtf8)?;
    let mut attestations = Vec::new();
    let mut metadata = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        let l = line.trim_end_matches(['\n', '\r']);
        if l == "---" {
            metadata = text.get(offset..);
            break;
        }
        attestations.push(l);
    }
    let metadata = metadata.ok_or(NoteError::NoDivider)?;
    let meta: Value =
        serde_json::from_str(metadata).map_err(|e| NoteError::Metadata(e.to_string()))?;
    let meta = meta
        .as_object()
        .ok_or_else(|| NoteError::Metadata("not an object".into()))?;
    let schema = meta
        .get("schema_version")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !schema.starts_with("authorship/3.") {
        return Err(NoteError::Schema(schema.to_string()));
    }

    let mut out = Attribution {
        lines: 0,
        files: 0,
        agents: Vec::new(),
    };
    let mut file_has_ai = false;
    let mut in_file = false;
    for (n, l) in attestations.iter().enumerate() {
        let bad = |reason| NoteError::Line {
            line: n + 1,
            reason,
        };
        if l.is_empty() {
            continue;
        }
        let Some(entry) = l.strip_prefix("  ") else {
            // A file path line.
            in_file = true;
            file_has_ai = false;
            continue;
        };
        if !in_file {
            return Err(bad("an entry before any file"));
        }
        let (key, ranges) = entry
            .split_once(' ')
            .ok_or(bad("no line ranges after the key"))?;
        let count = count_lines(ranges).ok_or(bad("line ranges are not like 1-4,9"))?;
        if key.starts_with("h_") {
            continue;
        }
        let record = match key.split_once("::") {
            Some((session, _trace)) => meta.get("sessions").and_then(|s| s.get(session)),
            None => meta.get("prompts").and_then(|p| p.get(key)),
        };
        let agent = record.and_then(|r| r.get("agent_id"));
        let field = |k: &str| agent.and_then(|a| a.get(k)).and_then(Value::as_str);
        let who = match (field("tool"), field("model")) {
            (Some(tool), Some(model)) if !model.is_empty() => format!("{tool} ({model})"),
            (Some(tool), _) => tool.to_string(),
            (None, _) => format!("an agent not described in the metadata ({key})"),
        };
        if !out.agents.contains(&who) {
            out.agents.push(who);
        }
        out.lines = out.lines.saturating_add(count);
        if !file_has_ai {
            file_has_ai = true;
            out.files += 1;
        }
    }
    Ok((out.lines > 0).then_some(out))
}

/// `1-4,9,12-20` -> 14 lines; None unless every range is `a` or `a-b` with 1 <= a <= b.
fn count_lines(ranges: &str) -> Option<u64> {
    let mut total: u64 = 0;
    for r in ranges.trim().split(',') {
        let (a, b) = match r.split_once('-') {
            Some((a, b)) => (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?),
            None => {
                let a = r.parse::<u64>().ok()?;
                (a, a)
            }
        };
        if a == 0 || b < a {
            return None;
        }
        total = total.saturating_add(b - a + 1);
    }
    Some(total)
}

/// The notes commit git-ai evidence is read from: the new value when this push updates
/// `refs/notes/ai` (its objects are in the quarantine), else the ref's current value.
pub fn notes_commit(repo: &Repo, updates: &[RefUpdate]) -> Result<Option<ObjectId>, RefError> {
    if let Some(u) = updates.iter().find(|u| u.refname == NOTES_REF) {
        return Ok((!u.new.is_zero()).then(|| u.new.clone()));
    }
    repo.ref_target(NOTES_REF)
}

/// The git-ai notes of one notes commit, indexed once: annotated commit (hex) -> note blob.
#[derive(Debug, Clone)]
pub struct GitAiNotes {
    pub commit: ObjectId,
    pub index: HashMap<String, ObjectId>,
}

/// Why git-ai notes could not be read (the push is refused).
#[derive(Debug, thiserror::Error)]
pub enum GitAiError {
    #[error("{NOTES_REF} is at {id}, which is a {kind}, not a notes commit")]
    NotACommit { id: String, kind: String },
    #[error("reading {NOTES_REF}")]
    Notes(#[source] agentgate_git::NotesError),
    #[error("reading the git-ai note on {commit}")]
    Read {
        commit: String,
        #[source]
        source: ReadError,
    },
}

impl GitAiNotes {
    /// Index the notes commit `commit` (it must be a commit: a blob whose first line looks
    /// like a `tree` header must not pass for one).
    pub fn load(repo: &Repo, commit: &ObjectId) -> Result<GitAiNotes, GitAiError> {
        let notes_err = |e: ReadError| GitAiError::Notes(e.into());
        match repo.object_kind(commit).map_err(notes_err)? {
            Some(agentgate_git::ObjectKind::Commit) => {}
            Some(kind) => {
                return Err(GitAiError::NotACommit {
                    id: commit.to_string(),
                    kind: kind.to_string(),
                })
            }
            None => return Err(notes_err(ReadError::NotFound(commit.to_string()))),
        }
        Ok(GitAiNotes {
            commit: commit.clone(),
            index: repo.notes_index(commit).map_err(GitAiError::Notes)?,
        })
    }

    /// The evidence the note on `commit` (whose blob is `blob`) gives: a match when it
    /// attributes lines to an AI, or when it cannot be read as an authorship log (it is
    /// there, and nothing tells it apart from one: fail closed); None when it attributes none.
    pub fn evidence(
        &self,
        repo: &Repo,
        commit: &ObjectId,
        blob: &ObjectId,
    ) -> Result<Option<Match>, GitAiError> {
        let note = repo.read_raw(blob).map_err(|source| GitAiError::Read {
            commit: commit.to_string(),
            source,
        })?;
        let at = format!("{NOTES_REF}@{}", self.commit.short());
        let evidence = match parse(&note) {
            Ok(None) => return Ok(None),
            Ok(Some(a)) => {
                let mut agents = a.agents.clone();
                if agents.len() > 3 {
                    agents.truncate(3);
                    agents.push("...".into());
                }
                format!(
                    "{at}: {} line(s) in {} file(s) by {}",
                    a.lines,
                    a.files,
                    agents.join(", ")
                )
            }
            Err(e) => format!(
                "{at}: a note that is not a git-ai authorship log ({e}), counted as agent evidence"
            ),
        };
        Ok(Some(Match {
            rule: RULE_GIT_AI.to_string(),
            evidence,
            location: Location::Notes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's own example (Git AI Standard v3.0.0, 1.2.5), messages shortened.
    const SPEC_EXAMPLE: &str = r#"src/main.rs
  abcd1234abcd1234 1-10,15-20
  efgh5678efgh5678 25,30-35
src/lib.rs
  abcd1234abcd1234 1-50
---
{
  "schema_version": "authorship/3.0.0",
  "git_ai_version": "1.0.23",
  "base_commit_sha": "7734793b756b3921c88db5375a8c156e9532447b",
  "prompts": {
    "abcd1234abcd1234": {
      "agent_id": {"tool": "cursor", "id": "6ef2299e-a67f-432b-aa80-3d2fb4d28999", "model": "claude-4.5-opus"},
      "human_author": "Developer <dev@example.com>",
      "messages": [{"type": "user", "text": "Add error handling"}],
      "total_additions": 25, "total_deletions": 5, "accepted_lines": 20, "overriden_lines": 0
    },
    "efgh5678efgh5678": {
      "agent_id": {"tool": "cursor", "id": "a1b2c3d4", "model": "claude-3-sonnet"},
      "messages": [],
      "total_additions": 6, "total_deletions": 0, "accepted_lines": 6, "overriden_lines": 0
    }
  }
}"#;

    #[test]
    fn spec_example_attributes_lines() {
        let a = parse(SPEC_EXAMPLE.as_bytes()).unwrap().unwrap();
        assert_eq!(a.lines, 16 + 7 + 50);
        assert_eq!(a.files, 2);
        assert_eq!(
            a.agents,
            vec!["cursor (claude-4.5-opus)", "cursor (claude-3-sonnet)"]
        );
    }

    #[test]
    fn sessions_humans_and_empty_logs() {
        let sessions = "README.md\n  s_988aa8c761b089::t_3cd4457f9b94ea 133\n  h_0123456789abcd 1-5\n---\n{\"schema_version\":\"authorship/3.0.0\",\"base_commit_sha\":\"x\",\"prompts\":{},\"sessions\":{\"s_988aa8c761b089\":{\"agent_id\":{\"tool\":\"opencode\",\"id\":\"ses\",\"model\":\"gpt-5\"}}},\"humans\":{\"h_0123456789abcd\":{\"author\":\"Ada\"}}}";
        let a = parse(sessions.as_bytes()).unwrap().unwrap();
        assert_eq!((a.lines, a.files), (1, 1));
        assert_eq!(a.agents, vec!["opencode (gpt-5)"]);
        // Only human lines, or no lines at all: no AI attribution.
        let human = "a.rs\n  h_0123456789abcd 1-5\n---\n{\"schema_version\":\"authorship/3.0.0\",\"prompts\":{}}";
        assert_eq!(parse(human.as_bytes()), Ok(None));
        let empty = "---\n{\"schema_version\":\"authorship/3.0.0\",\"base_commit_sha\":\"x\",\"prompts\":{\"abcd1234abcd1234\":{\"agent_id\":{\"tool\":\"claude\"}}}}";
        assert_eq!(parse(empty.as_bytes()), Ok(None));
        // An entry whose prompt the metadata does not describe is still AI (only `h_` is human).
        let foreign =
            "a.rs\n  0123456 3\n---\n{\"schema_version\":\"authorship/3.0.0\",\"prompts\":{}}";
        assert_eq!(parse(foreign.as_bytes()).unwrap().unwrap().lines, 1);
    }

    #[test]
    fn what_is_not_an_authorship_log() {
        let cases: &[(&[u8], &str)] = &[
            (b"just a note\n", "no `---`"),
            (b"a.rs\n  abc 1-2\n---\nnot json", "not a JSON"),
            (
                b"---\n{\"schema_version\":\"authorship/2.0.0\"}",
                "authorship/2.0.0",
            ),
            (b"---\n[]", "not a JSON object"),
            (
                b"a.rs\n  abc 2-1\n---\n{\"schema_version\":\"authorship/3.0.0\"}",
                "line 2",
            ),
            (
                b"  abc 1\n---\n{\"schema_version\":\"authorship/3.0.0\"}",
                "before any file",
            ),
            (
                b"a.rs\n  abc\n---\n{\"schema_version\":\"authorship/3.0.0\"}",
                "no line ranges",
            ),
            (b"\xff\n---\n{}", "UTF-8"),
        ];
        for (note, needle) in cases {
            let e = parse(note).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} lacks {needle:?}");
        }
        assert_eq!(count_lines("1-4,9,12-20"), Some(14));
        assert_eq!(count_lines("0"), None);
        assert_eq!(count_lines("1,,2"), None);
    }
}
