//! The decision: for each ref a push updates, is it allowed? This module turns ref updates,
//! the repository and the policy into `RefDecision` values; only `Evaluator::decide` can build
//! an accepting one, and every error on the way becomes a refusal.
//!
//! Every decision keeps the promise (SPEC.md): after an accepted push, every agent commit
//! reachable from a protected tip lies under an attested commit of that tip's history (scope
//! "tip") or is attested itself (scope "each"). A push is judged by walking back from its new
//! tip until the walk reaches commits already known to keep the promise: the tips of the
//! protected refs (by induction: each got there through an accepted push) and the baseline
//! recorded at installation. Being reachable from *another* protected ref proves nothing: an
//! agent commit under main's attested tip is not covered for a new tag that points at it.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::config::{Policy, Require, Scope};
use crate::detect::{Detector, Match};
use crate::git::{Commit, GitError, ObjectId, RefEntry, RefValue, Repo};
use crate::object::{ObjectError, Oid};
use crate::trailers::{self, TrailerConfig};

/// Stable codes for refusals (and acceptances), used in messages, the audit log and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    // Acceptances.
    Unprotected,
    NoChange,
    NoAgentCommits,
    Attested,
    DangerDeleteAllowed,
    NotesAppended,
    // Refusals.
    AgentCommitUnattested,
    ProtectedRefDelete,
    NonFastForward,
    NotACommit,
    UnknownObject,
    ObjectMalformed,
    EncodingUnsupported,
    NotesRewrite,
    DeadlineExceeded,
    StdinMalformed,
    GitError,
    PolicyMissing,
    PolicyUnreadable,
    PolicyInvalid,
    AuditFailed,
    AttestationsUnreadable,
    InternalError,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unprotected => "unprotected",
            Code::NoChange => "no-change",
            Code::NoAgentCommits => "no-agent-commits",
            Code::Attested => "attested",
            Code::DangerDeleteAllowed => "danger-delete-allowed",
            Code::NotesAppended => "notes-appended",
            Code::AgentCommitUnattested => "agent-commit-unattested",
            Code::ProtectedRefDelete => "protected-ref-delete",
            Code::NonFastForward => "non-fast-forward",
            Code::NotACommit => "not-a-commit",
            Code::UnknownObject => "unknown-object",
            Code::ObjectMalformed => "object-malformed",
            Code::EncodingUnsupported => "encoding-unsupported",
            Code::NotesRewrite => "notes-rewrite",
            Code::DeadlineExceeded => "deadline-exceeded",
            Code::StdinMalformed => "stdin-malformed",
            Code::GitError => "git-error",
            Code::PolicyMissing => "policy-missing",
            Code::PolicyUnreadable => "policy-unreadable",
            Code::PolicyInvalid => "policy-invalid",
            Code::AuditFailed => "audit-failed",
            Code::AttestationsUnreadable => "attestations-unreadable",
            Code::InternalError => "internal-error",
        }
    }

    pub fn from_policy_error(e: &crate::config::PolicyError) -> Code {
        match e {
            crate::config::PolicyError::NotFound { .. }
            | crate::config::PolicyError::MissingFile { .. } => Code::PolicyMissing,
            crate::config::PolicyError::Unreadable { .. } => Code::PolicyUnreadable,
            crate::config::PolicyError::Invalid { .. } => Code::PolicyInvalid,
        }
    }
}

/// More stdin than any real push sends (about 600k ref updates); refused as malformed.
pub const MAX_STDIN: u64 = 64 << 20;

/// One line of pre-receive input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefUpdate {
    pub old: ObjectId,
    pub new: ObjectId,
    #[serde(rename = "ref")]
    pub refname: String,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed hook input on line {line}: {reason}")]
pub struct StdinError {
    pub line: usize,
    pub reason: String,
}

/// Parse pre-receive stdin strictly: `<old> SP <new> SP <ref> LF` per line, ids of one length.
pub fn parse_updates(input: &[u8]) -> Result<Vec<RefUpdate>, StdinError> {
    let text = std::str::from_utf8(input).map_err(|e| StdinError {
        line: input[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
        reason: "not UTF-8".into(),
    })?;
    let mut out = Vec::new();
    let mut id_len = None;
    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        let err = |reason: &str| StdinError {
            line: n,
            reason: reason.to_string(),
        };
        let mut parts = line.split(' ');
        let (Some(old), Some(new), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("expected \"<old-id> <new-id> <ref>\""));
        };
        // git writes lower-case hex; anything else did not come from git (ObjectId::parse
        // would quietly lower-case it).
        if old
            .bytes()
            .chain(new.bytes())
            .any(|b| b.is_ascii_uppercase())
        {
            return Err(err("object ids must be lower-case hex, as git writes them"));
        }
        let old = ObjectId::parse(old).map_err(|_| err("old id is not a full object id"))?;
        let new = ObjectId::parse(new).map_err(|_| err("new id is not a full object id"))?;
        if old.as_str().len() != new.as_str().len()
            || id_len.is_some_and(|l| l != old.as_str().len())
        {
            return Err(err("object ids of different lengths in one push"));
        }
        id_len = Some(old.as_str().len());
        if !valid_refname(name) {
            return Err(err("not a valid ref name"));
        }
        if old.is_zero() && new.is_zero() {
            return Err(err("both ids are zero"));
        }
        out.push(RefUpdate {
            old,
            new,
            refname: name.to_string(),
        });
    }
    if out.is_empty() {
        return Err(StdinError {
            line: 1,
            reason: "no ref updates".into(),
        });
    }
    Ok(out)
}

/// A conservative version of git's check-ref-format.
pub fn valid_refname(name: &str) -> bool {
    name.starts_with("refs/")
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name.split('/').any(|c| c.starts_with('.'))
        && name
            .bytes()
            .all(|b| b > 0x20 && b != 0x7f && !b" ~^:?*[\\".contains(&b))
}

/// One agent commit entering a protected ref.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentCommit {
    pub commit: ObjectId,
    pub subject: String,
    pub matches: Vec<Match>,
}

/// One attestation looked at for one commit, and what came of it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttestationReport {
    /// The commit the attestation was needed for.
    pub commit: ObjectId,
    /// Where it was found (`refs/notes/agentgate@<notes commit>:<line>` or a file path).
    pub source: String,
    /// `ok` when it admitted the commit, else the stable code of why not.
    pub result: String,
    /// The signer that admitted it, or the reason it failed.
    pub detail: String,
}

/// Why a ref update is accepted. Only `Evaluator::decide` builds one.
#[derive(Debug, Clone)]
pub struct Accept {
    code: Code,
    _sealed: (),
}

#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: Code,
    pub headline: String,
    pub details: Vec<String>,
    pub fix: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    Accept(Accept),
    Refuse(Refusal),
}

impl Outcome {
    pub fn code(&self) -> Code {
        match self {
            Outcome::Accept(a) => a.code,
            Outcome::Refuse(r) => r.code,
        }
    }
}

/// Facts about the repository a decision depended on besides the objects, the policy and the
/// attestations. Recorded in the audit log, so `audit verify` decides again with the same facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Facts {
    /// The ref the pushed name finally names (symbolic refs followed), when it is another ref.
    pub resolved_ref: Option<String>,
    /// Commits known to keep the promise when the decision was made: the tips of the protected
    /// refs (every one got there through an accepted push, or was there at installation).
    pub known_covered: Vec<ObjectId>,
    /// The baseline: the protected tips recorded when agentgate was installed. Nothing
    /// reachable from them is judged.
    pub baseline: Vec<ObjectId>,
}

/// The decision about one ref update, with everything needed to explain and audit it.
#[derive(Debug, Clone)]
pub struct RefDecision {
    pub update: RefUpdate,
    /// What protects the ref (the policy glob, or the protected symbolic ref that points at it).
    pub protected_by: Option<String>,
    /// How many commits would enter the ref unjudged before (None when not computed): reachable
    /// from the new tip and from no known-covered or baseline commit.
    pub entering: Option<usize>,
    pub facts: Facts,
    pub agent_commits: Vec<AgentCommit>,
    pub attestations: Vec<AttestationReport>,
    pub outcome: Outcome,
}

impl RefDecision {
    pub fn accepted(&self) -> bool {
        matches!(self.outcome, Outcome::Accept(_))
    }

    /// A refusal that did not come from evaluating the policy (bad input, broken policy).
    pub fn refused(
        update: RefUpdate,
        code: Code,
        headline: String,
        details: Vec<String>,
        fix: Vec<String>,
    ) -> RefDecision {
        RefDecision {
            update,
            protected_by: None,
            entering: None,
            facts: Facts::default(),
            agent_commits: vec![],
            attestations: vec![],
            outcome: Outcome::Refuse(Refusal {
                code,
                headline,
                details,
                fix,
            }),
        }
    }
}

/// The answer to "is this commit attested?".
pub struct AttestationVerdict {
    pub admitted: bool,
    pub examined: Vec<AttestationReport>,
}

/// Why attestations could not be looked at (the push is refused).
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("cannot read the attestations directory {path}")]
    Dir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A commit that needs an attestation: what an attestation can bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRef {
    pub id: ObjectId,
    pub tree: ObjectId,
}

/// Where attestations come from; the hook asks once per commit that needs one.
pub trait AttestationSource {
    fn check(&self, commit: &CommitRef) -> Result<AttestationVerdict, EvidenceError>;
    /// A cheap check (nothing is verified) that is true whenever `check` could admit the
    /// commit: some candidate attestation exists for it. Never false when `check` could say
    /// admitted; the default (always true) is the safe answer for sources that cannot tell.
    fn may_have(&self, commit: &CommitRef) -> Result<bool, EvidenceError> {
        let _ = commit;
        Ok(true)
    }
    /// Where it looks, for messages ("refs/notes/agentgate").
    fn describe(&self) -> String;
}

/// Evaluates ref updates of one push against one policy.
pub struct Evaluator<'a> {
    repo: &'a Repo,
    policy: &'a Policy,
    detector: Detector,
    /// The repository's trailer settings, or why they could not be read (refuses protected
    /// updates that need detection).
    trailer_config: Result<TrailerConfig, String>,
    attestations: &'a dyn AttestationSource,
    /// The refs as they are before the push, read once, when first needed.
    refs: std::cell::OnceCell<Result<RefView, String>>,
    /// Told what the evaluator is doing (the hook's watchdog names the step that ran out).
    progress: Option<&'a dyn Fn(String)>,
}

/// Stop collecting agent commits for messages after this many (they are all still checked).
const MAX_LISTED: usize = 20;

/// The repository's refs before the push, as far as decisions need them.
struct RefView {
    /// Every stored ref (all namespaces), symbolic refs not followed.
    entries: Vec<RefEntry>,
    /// Protected refs (stored names) and their tips peeled to commits: known to keep the
    /// promise.
    protected_tips: Vec<(String, ObjectId)>,
    baseline: Vec<ObjectId>,
}

/// `refs/namespaces/<a>/refs/namespaces/<b>/<rest>` -> `<rest>`: what the ref is called inside
/// its namespace, where the policy's globs apply.
pub fn strip_namespaces(mut name: &str) -> &str {
    while let Some(rest) = name.strip_prefix("refs/namespaces/") {
        match rest.split_once('/') {
            Some((ns, inner)) if !ns.is_empty() && inner.starts_with("refs/") => name = inner,
            _ => break,
        }
    }
    name
}

impl<'a> Evaluator<'a> {
    pub fn new(
        repo: &'a Repo,
        policy: &'a Policy,
        attestations: &'a dyn AttestationSource,
    ) -> Evaluator<'a> {
        Evaluator {
            repo,
            policy,
            detector: Detector::new(&policy.detect),
            trailer_config: repo.trailer_config().map_err(|e| e.to_string()),
            attestations,
            refs: std::cell::OnceCell::new(),
            progress: None,
        }
    }

    /// Report each step to `f` (what it is doing, for which ref).
    pub fn with_progress(mut self, f: &'a dyn Fn(String)) -> Self {
        self.progress = Some(f);
        self
    }

    fn step(&self, what: impl FnOnce() -> String) {
        if let Some(f) = self.progress {
            f(what());
        }
    }

    /// Decide one update. Never panics on bad data; every error refuses.
    pub fn decide(&self, update: &RefUpdate) -> RefDecision {
        self.decide_with(update, None)
    }

    /// Decide again as an earlier run did, with the facts it recorded (deterministic promotion,
    /// `audit verify`).
    pub fn replay(&self, update: &RefUpdate, facts: &Facts) -> RefDecision {
        self.decide_with(update, Some(facts))
    }

    fn ref_view(&self) -> Result<&RefView, GitError> {
        if self.refs.get().is_none() {
            self.step(|| "reading refs".into());
        }
        let view = self
            .refs
            .get_or_init(|| self.read_refs().map_err(|e| e.to_string()));
        view.as_ref().map_err(|e| GitError::Command {
            args: "reading refs".into(),
            message: e.clone(),
        })
    }

    fn read_refs(&self) -> Result<RefView, GitError> {
        let entries = self.repo.ref_snapshot()?;
        let mut view = RefView {
            entries,
            protected_tips: Vec::new(),
            baseline: self.repo.baseline()?,
        };
        let mut tips = Vec::new();
        for e in &view.entries {
            if let RefValue::Direct(id) = &e.value {
                // Only refs protected by their own name: a branch that a protected symbolic ref
                // points at may have moved before that symbolic ref existed (an admin's alias),
                // so it adds nothing to what is known to keep the promise.
                if self
                    .policy
                    .protect
                    .matching(strip_namespaces(&e.name))
                    .is_some()
                {
                    // A protected tip that is not a readable commit (a tree, a malformed tag)
                    // is simply not a shortcut: the walk goes on past it.
                    if let Ok(c) = self.repo.peel_to_commit(id) {
                        tips.push((e.name.clone(), c));
                    }
                }
            }
        }
        view.protected_tips = tips;
        Ok(view)
    }

    /// What protects the stored ref `full`: a glob matching its name inside its namespace, or a
    /// protected symbolic ref that finally points at it (a push to `full` moves what that
    /// symbolic ref names).
    fn protection(&self, view: &RefView, full: &str) -> Result<Option<String>, GitError> {
        if let Some(p) = self.policy.protect.matching(strip_namespaces(full)) {
            return Ok(Some(p.glob.clone()));
        }
        for e in &view.entries {
            let RefValue::Symbolic(_) = &e.value else {
                continue;
            };
            let Some(p) = self.policy.protect.matching(strip_namespaces(&e.name)) else {
                continue;
            };
            // A broken symbolic ref protects nothing it cannot be followed to.
            if let Ok((target, _)) = self.repo.resolve_ref(&e.name) {
                if target == full {
                    return Ok(Some(format!(
                        "{} (through symbolic ref {})",
                        p.glob, e.name
                    )));
                }
            }
        }
        Ok(None)
    }

    fn decide_with(&self, update: &RefUpdate, recorded: Option<&Facts>) -> RefDecision {
        let mut d = RefDecision {
            update: update.clone(),
            protected_by: None,
            entering: None,
            facts: recorded.cloned().unwrap_or_default(),
            agent_commits: vec![],
            attestations: vec![],
            outcome: Outcome::Refuse(Refusal {
                code: Code::InternalError,
                headline: "no decision".into(),
                details: vec![],
                fix: vec![],
            }),
        };
        d.outcome = match self.decide_ref(update, recorded, &mut d) {
            Ok(o) => o,
            Err(e) => Outcome::Refuse(error_refusal(&update.refname, &e)),
        };
        d
    }

    fn decide_ref(
        &self,
        u: &RefUpdate,
        recorded: Option<&Facts>,
        d: &mut RefDecision,
    ) -> Result<Outcome, EvidenceError> {
        let view = self.ref_view()?;
        // The ref git will really update: the pushed name, symbolic refs followed.
        let pushed = self.repo.full_ref(&u.refname);
        let target = match recorded {
            Some(f) => f.resolved_ref.clone().unwrap_or_else(|| pushed.clone()),
            None => self.repo.resolve_ref(&pushed)?.0,
        };
        if target != pushed {
            d.facts.resolved_ref = Some(target.clone());
        }
        let Some(protected_by) = self.protection(view, &target)? else {
            return Ok(accept(Code::Unprotected));
        };
        d.protected_by = Some(protected_by);
        let name = if target == pushed {
            u.refname.clone()
        } else {
            format!("{} (through {})", strip_namespaces(&target), u.refname)
        };
        if u.new.is_zero() {
            if self.policy.protect.allow_delete {
                return Ok(accept(Code::DangerDeleteAllowed));
            }
            return Ok(refuse(
                Code::ProtectedRefDelete,
                format!("deleting protected ref {name} is not allowed"),
                vec![],
                vec!["deletion of protected refs is refused by the server policy ([protect] allow_delete)".into()],
            ));
        }
        if u.old == u.new {
            return Ok(accept(Code::NoChange));
        }
        if strip_namespaces(&target) == self.policy.attest.notes_ref {
            return self.decide_notes(u, &name);
        }
        self.repo.check_history_as_stored()?;
        let new = match self.commit_of(&u.new, &name)? {
            Ok(id) => id,
            Err(refusal) => return Ok(Outcome::Refuse(refusal)),
        };
        let old = if u.old.is_zero() {
            None
        } else {
            match self.commit_of(&u.old, &name)? {
                Ok(id) => Some(id),
                Err(refusal) => return Ok(Outcome::Refuse(refusal)),
            }
        };
        if recorded.is_none() {
            // The ref being updated counts with its value before the push (`old`, added below):
            // a dry run (`check`) may look at a repository where it already moved.
            let mut tips: Vec<ObjectId> = view
                .protected_tips
                .iter()
                .filter(|(n, _)| *n != target)
                .map(|(_, c)| c.clone())
                .collect();
            tips.sort();
            tips.dedup();
            d.facts.known_covered = tips;
            d.facts.baseline = view.baseline.clone();
        }
        if let Err(e) = &self.trailer_config {
            return Err(GitError::Command {
                args: "config (trailer settings)".into(),
                message: e.clone(),
            }
            .into());
        }

        // Every commit reachable from the new tip that no known-covered, baseline or old commit
        // already accounts for; the walk stops where it reaches one.
        let mut stops: HashSet<Oid> = d
            .facts
            .known_covered
            .iter()
            .map(Oid::from_object_id)
            .collect();
        if let Some(o) = &old {
            stops.insert(Oid::from_object_id(o));
        }
        let baseline: Vec<Oid> = d.facts.baseline.iter().map(Oid::from_object_id).collect();
        let (detector, trailer_config) = (&self.detector, &self.trailer_config);
        self.step(|| format!("walking the commits of {name} and detecting agent commits"));
        let walked = crate::walk::walk(
            self.repo.objects()?.as_mut(),
            &crate::walk::Limits {
                tip: Oid::from_object_id(&new),
                hidden: &baseline,
                stops: &stops,
            },
            &|c: &Commit| {
                let matches = detect_with(detector, trailer_config, c);
                (!matches.is_empty()).then(|| AgentHit {
                    subject: c.subject().chars().take(120).collect(),
                    matches,
                })
            },
        )?;

        // A commit that would enter the ref but that git and a plain reader read differently,
        // or whose message cannot be decoded as git shows it: refused, never guessed at.
        for c in &walked.commits {
            if let Err(e) = &c.found {
                return Ok(object_refusal(&name, e));
            }
        }
        if let (Some(o), false) = (&old, self.policy.protect.allow_non_fast_forward) {
            // The walk answers "is old an ancestor" when it reached old from a walked commit;
            // otherwise another known commit may lie in between, and a walk to old alone decides.
            let fast_forward =
                walked.reached(&Oid::from_object_id(o)) || self.repo.is_ancestor(o, &new)?;
            if !fast_forward {
                return Ok(refuse(
                    Code::NonFastForward,
                    format!("non-fast-forward update of protected ref {name} is not allowed"),
                    vec![format!("{} is not an ancestor of {}", u.old.short(), u.new.short())],
                    vec![format!("rebase onto the current {name} and push again; force-pushes are refused by the server policy")],
                ));
            }
        }
        d.entering = Some(walked.commits.len());

        let all = self.detector.require() == Require::AllCommits;
        let entering = Entering::new(&walked.commits);
        for c in &walked.commits {
            if let Ok(Some(hit)) = &c.found {
                d.agent_commits.push(AgentCommit {
                    commit: c.id.to_object_id(),
                    subject: hit.subject.clone(),
                    matches: hit.matches.clone(),
                });
            }
        }
        let is_agent = |c: &crate::walk::Entering<AgentHit>| all || matches!(c.found, Ok(Some(_)));
        if !walked.commits.iter().any(is_agent) {
            return Ok(accept(Code::NoAgentCommits));
        }

        // The required attestations (see `Entering::uncovered`).
        self.step(|| format!("verifying attestations for {name}"));
        let mut cache = AttestCache::new(self.attestations);
        let unattested: Vec<ObjectId> = match self.policy.attest.scope {
            // Every agent commit carries its own attestation.
            Scope::Each => {
                let mut missing = Vec::new();
                for c in walked.commits.iter().filter(|c| is_agent(c)) {
                    if !cache.admitted(&c.id, &c.tree)? {
                        missing.push(c.id.to_object_id());
                    }
                }
                missing
            }
            // Every agent commit lies under an attested commit of the new tip's history.
            Scope::Tip => entering
                .uncovered(&walked.commits, is_agent, &mut cache)?
                .into_iter()
                .map(|i| walked.commits[i].id.to_object_id())
                .collect(),
        };
        d.attestations = cache.into_reports();
        if unattested.is_empty() {
            return Ok(accept(Code::Attested));
        }
        Ok(Outcome::Refuse(self.unattested_refusal(
            &name,
            &new,
            d,
            &unattested,
        )))
    }

    /// The notes ref that carries attestations, when the policy protects it: never deleted or
    /// rewound unless allowed (handled before), and append-only: no note removed, no line of a
    /// note dropped, so an attestation that admitted a push stays. Its commits are not judged as
    /// code (they hold attestations, not source).
    fn decide_notes(&self, u: &RefUpdate, name: &str) -> Result<Outcome, EvidenceError> {
        let new = match self.commit_of(&u.new, name)? {
            Ok(id) => id,
            Err(refusal) => return Ok(Outcome::Refuse(refusal)),
        };
        if u.old.is_zero() {
            return Ok(accept(Code::NotesAppended));
        }
        let old = match self.commit_of(&u.old, name)? {
            Ok(id) => id,
            Err(refusal) => return Ok(Outcome::Refuse(refusal)),
        };
        if !self.policy.protect.allow_non_fast_forward && !self.repo.is_ancestor(&old, &new)? {
            return Ok(refuse(
                Code::NonFastForward,
                format!("non-fast-forward update of protected ref {name} is not allowed"),
                vec![format!("{} is not an ancestor of {}", u.old.short(), u.new.short())],
                vec![format!("fetch {name}, merge your notes with `git notes --ref {} merge -s cat_sort_uniq FETCH_HEAD`, and push again", self.policy.attest.notes_ref)],
            ));
        }
        let before = self.repo.notes_index(&old)?;
        let after = self.repo.notes_index(&new)?;
        for (target, blob) in &before {
            let kept = match after.get(target) {
                None => false,
                Some(b) if b == blob => true,
                Some(b) => {
                    let was = self.repo.read_raw(blob)?;
                    let now = self.repo.read_raw(b)?;
                    let now: HashSet<&[u8]> = now.split(|&c| c == b'\n').collect();
                    was.split(|&c| c == b'\n').all(|l| now.contains(l))
                }
            };
            if !kept {
                return Ok(refuse(
                    Code::NotesRewrite,
                    format!("{name} may only grow: the note on {} loses attestations", &target[..target.len().min(7)]),
                    vec!["notes on protected history are append-only: lines may be added, never removed or changed".into()],
                    vec![format!("fetch {name}, merge with `git notes --ref {} merge -s cat_sort_uniq FETCH_HEAD`, and push again", self.policy.attest.notes_ref)],
                ));
            }
        }
        Ok(accept(Code::NotesAppended))
    }

    fn unattested_refusal(
        &self,
        name: &str,
        tip: &ObjectId,
        d: &RefDecision,
        unattested: &[ObjectId],
    ) -> Refusal {
        let n = d.agent_commits.len();
        let all = self.detector.require() == Require::AllCommits;
        let what = if all {
            "commits (policy: all-commits)"
        } else {
            "agent commits"
        };
        let mut details = vec![format!(
            "{n} {what} among {} entering commit(s):",
            d.entering.unwrap_or(0)
        )
        .replace("1 agent commits", "1 agent commit")];
        for a in d.agent_commits.iter().take(MAX_LISTED) {
            details.push(format!("  {} {}", a.commit.short(), a.subject));
            for m in &a.matches {
                details.push(format!("      {}: {}", m.rule, m.evidence));
            }
        }
        if n > MAX_LISTED {
            details.push(format!(
                "  ... and {} more (see the audit log or `agentgate check`)",
                n - MAX_LISTED
            ));
        }
        let scope_each = self.policy.attest.scope == Scope::Each;
        if !scope_each && unattested.iter().any(|c| c != tip) {
            let listed: Vec<&str> = unattested
                .iter()
                .take(MAX_LISTED)
                .map(|c| c.short())
                .collect();
            details.push(format!(
                "no attested commit lies between these and the new tip {}: {}{}",
                tip.short(),
                listed.join(", "),
                if unattested.len() > MAX_LISTED {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        // What was examined, for the commits whose attestation would settle it.
        let mut shown = 0;
        let needs: Vec<&ObjectId> = if scope_each {
            unattested.iter().collect()
        } else {
            vec![tip]
        };
        for id in needs {
            let examined: Vec<&AttestationReport> =
                d.attestations.iter().filter(|a| &a.commit == id).collect();
            if examined.is_empty() {
                details.push(format!(
                    "no attestation for {} in {}",
                    id.short(),
                    self.attestations.describe()
                ));
            } else {
                details.push(format!(
                    "attestations for {} examined, none valid:",
                    id.short()
                ));
                for a in examined {
                    details.push(format!("  {} [{}] {}", a.source, a.result, a.detail));
                }
            }
            shown += 1;
            if shown == MAX_LISTED {
                break;
            }
        }
        let notes = &self.policy.attest.notes_ref;
        let first = if scope_each { &unattested[0] } else { tip };
        Refusal {
            code: Code::AgentCommitUnattested,
            headline: format!("{name} needs a gate attestation for {} before it can move", first.short()),
            details,
            fix: vec![
                format!("run the compile-test-sign gate on {first} in CI, e.g.:"),
                format!("  agentgate gate --key <gate key> --commit {first} --build <cmd> --test <cmd> --artifact <path> --note"),
                format!("then push the attestation first: git push <remote> {notes}, and push {name} again"),
            ],
        }
    }

    /// Peel `id` to a commit, or a refusal saying why it cannot be one.
    fn commit_of(&self, id: &ObjectId, name: &str) -> Result<Result<ObjectId, Refusal>, GitError> {
        match self.repo.peel_to_commit(id) {
            Ok(c) => Ok(Ok(c)),
            Err(GitError::NotFound(missing)) => Ok(Err(Refusal {
                code: Code::UnknownObject,
                headline: format!(
                    "{name}: object {} does not exist",
                    &missing[..missing.len().min(12)]
                ),
                details: vec![format!(
                    "{id} (or an object it points to) is not in the repository or the push"
                )],
                fix: vec!["push the objects the ref points to".into()],
            })),
            Err(GitError::NotACommit { kind, .. }) => Ok(Err(Refusal {
                code: Code::NotACommit,
                headline: format!(
                    "{name} may only point at commits (or tags of commits); {} is a {kind}",
                    id.short()
                ),
                details: vec![],
                fix: vec![],
            })),
            Err(GitError::Object(e)) => match object_refusal(name, &e) {
                Outcome::Refuse(r) => Ok(Err(r)),
                Outcome::Accept(_) => Err(GitError::Object(e)),
            },
            Err(e) => Err(e),
        }
    }
}

/// What detection found in one entering commit.
struct AgentHit {
    subject: String,
    matches: Vec<Match>,
}

/// Attestation verdicts of one decision, each commit checked at most once.
struct AttestCache<'s> {
    source: &'s dyn AttestationSource,
    verdicts: HashMap<Oid, bool>,
    reports: Vec<AttestationReport>,
}

impl<'s> AttestCache<'s> {
    fn new(source: &'s dyn AttestationSource) -> Self {
        AttestCache {
            source,
            verdicts: HashMap::new(),
            reports: Vec::new(),
        }
    }

    fn admitted(&mut self, id: &Oid, tree: &Oid) -> Result<bool, EvidenceError> {
        if let Some(v) = self.verdicts.get(id) {
            return Ok(*v);
        }
        let c = CommitRef {
            id: id.to_object_id(),
            tree: tree.to_object_id(),
        };
        let v = if self.source.may_have(&c)? {
            let verdict = self.source.check(&c)?;
            self.reports.extend(verdict.examined);
            verdict.admitted
        } else {
            false
        };
        self.verdicts.insert(*id, v);
        Ok(v)
    }

    fn into_reports(self) -> Vec<AttestationReport> {
        self.reports
    }
}

/// Coverage under `scope = "tip"`, the promise's own definition: an agent commit A is covered
/// when an attested commit C lies between it and the new tip (A reachable from C). Only commits
/// of the walk need deciding: everything below a known-covered or baseline commit already keeps
/// the promise.
///
/// Algorithm: visit the walked commits children-first (Kahn's order over the walk's own graph);
/// a commit already known to lie under an attested one is skipped without looking at its
/// attestations; any other commit that may have an attestation is verified, and if admitted,
/// everything below it in the walk is marked covered. What is left uncovered and is an agent
/// commit is refused. Each commit is visited once and verified at most once, and for a typical
/// push the tip comes first: if it is attested, nothing else is verified.
struct Entering {
    /// For each walked commit, the indexes of its parents inside the walk.
    parents: Vec<Vec<usize>>,
}

impl Entering {
    fn new<T>(commits: &[crate::walk::Entering<T>]) -> Entering {
        let index: HashMap<Oid, usize> =
            commits.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        Entering {
            parents: commits
                .iter()
                .map(|c| {
                    c.parents
                        .iter()
                        .filter_map(|p| index.get(p).copied())
                        .collect()
                })
                .collect(),
        }
    }

    /// Indexes of the agent commits no attested commit of the walk covers.
    fn uncovered<T>(
        &self,
        commits: &[crate::walk::Entering<T>],
        is_agent: impl Fn(&crate::walk::Entering<T>) -> bool,
        cache: &mut AttestCache<'_>,
    ) -> Result<Vec<usize>, EvidenceError> {
        let n = commits.len();
        let mut children = vec![0usize; n];
        for ps in &self.parents {
            for &p in ps {
                children[p] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| children[i] == 0).collect();
        // Walk order is newest first: keep it where the graph allows (the tip first).
        ready.reverse();
        let mut covered = vec![false; n];
        let mut uncovered = Vec::new();
        while let Some(i) = ready.pop() {
            for &p in &self.parents[i] {
                children[p] -= 1;
                if children[p] == 0 {
                    ready.push(p);
                }
            }
            if covered[i] {
                continue;
            }
            let c = &commits[i];
            if cache.admitted(&c.id, &c.tree)? {
                let mut stack = vec![i];
                while let Some(j) = stack.pop() {
                    if !covered[j] {
                        covered[j] = true;
                        stack.extend(self.parents[j].iter().copied());
                    }
                }
            } else if is_agent(c) {
                uncovered.push(i);
            }
        }
        uncovered.sort_unstable();
        Ok(uncovered)
    }
}

/// Rules matching one commit; no trailers when the repository's trailer settings are unknown
/// (the caller refuses before that matters).
fn detect_with(
    detector: &Detector,
    trailer_config: &Result<TrailerConfig, String>,
    c: &Commit,
) -> Vec<Match> {
    let t = match trailer_config {
        Ok(tc) => trailers::parse(&c.message, tc),
        Err(_) => Vec::new(),
    };
    detector.detect(c, &t)
}

fn accept(code: Code) -> Outcome {
    Outcome::Accept(Accept { code, _sealed: () })
}

fn refuse(code: Code, headline: String, details: Vec<String>, fix: Vec<String>) -> Outcome {
    Outcome::Refuse(Refusal {
        code,
        headline,
        details,
        fix,
    })
}

/// A refusal for an object git and a plain reader read differently, or cannot decode.
fn object_refusal(name: &str, e: &ObjectError) -> Outcome {
    let (code, headline, fix) = match e {
        ObjectError::Malformed { kind, id, header, reason } => (
            Code::ObjectMalformed,
            format!(
                "{name}: {kind} {} has a malformed `{header}` header: {reason}",
                &id[..id.len().min(12)]
            ),
            "git, libgit2 and other tools would read this object differently; recreate it with git (`git commit --amend`, `git rebase`) and push again",
        ),
        ObjectError::EncodingUnsupported { id, encoding, reason } => (
            Code::EncodingUnsupported,
            format!(
                "{name}: commit {} declares encoding {encoding:?}, which cannot be decoded as git shows it ({reason})",
                &id[..id.len().min(12)]
            ),
            "re-create the commit with a UTF-8 message (git commit --amend with i18n.commitEncoding unset) and push again",
        ),
    };
    refuse(code, headline, vec![e.to_string()], vec![fix.to_string()])
}

fn error_refusal(name: &str, e: &EvidenceError) -> Refusal {
    if let EvidenceError::Git(GitError::Object(o)) = e {
        if let Outcome::Refuse(r) = object_refusal(name, o) {
            return r;
        }
    }
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let _ = write!(chain, ": {s}");
        src = s.source();
    }
    Refusal {
        code: Code::GitError,
        headline: format!("{name}: cannot evaluate the push ({chain})"),
        details: vec![],
        fix: vec!["this is a server-side problem: ask the Git server admin to check the repository and the agentgate installation".into()],
    }
}

/// Render decisions for the pusher: one headline per refused ref with its code, the offending
/// commits, the attestations examined and the fix. `prefix` is `GL-HOOK-ERR: ` under GitLab.
pub fn render(decisions: &[RefDecision], prefix: &str) -> String {
    let mut out = String::new();
    let refused: Vec<&RefDecision> = decisions.iter().filter(|d| !d.accepted()).collect();
    for d in &refused {
        if let Outcome::Refuse(r) = &d.outcome {
            let _ = writeln!(
                out,
                "{prefix}agentgate: refused [{}] {}",
                r.code.as_str(),
                r.headline
            );
            for line in &r.details {
                let _ = writeln!(out, "{prefix}  {line}");
            }
            for (i, line) in r.fix.iter().enumerate() {
                let label = if i == 0 { "fix: " } else { "     " };
                let _ = writeln!(out, "{prefix}  {label}{line}");
            }
        }
    }
    if !refused.is_empty() && decisions.len() > 1 {
        let _ = writeln!(
            out,
            "{prefix}agentgate: {} of {} ref update(s) refused; the whole push is refused",
            refused.len(),
            decisions.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn stdin_parsing() {
        let ok = format!("{A} {B} refs/heads/main\n{Z} {B} refs/tags/v1\n");
        let u = parse_updates(ok.as_bytes()).unwrap();
        assert_eq!(u.len(), 2);
        assert!(u[1].old.is_zero());
        let s256 = format!("{} {} refs/heads/main\n", "a".repeat(64), "b".repeat(64));
        assert_eq!(parse_updates(s256.as_bytes()).unwrap().len(), 1);

        let bad: &[(&[u8], usize)] = &[
            (b"", 1),
            (b"\n", 1),
            (format!("{A} {B}\n").as_bytes().to_vec().leak(), 1),
            (
                format!("{A} {B} refs/heads/main extra\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A} {B} refs/heads/main\n{A} xyz refs/heads/x\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                2,
            ),
            (
                format!("{A} {} refs/heads/main\n", "b".repeat(64))
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A} {B} heads/main\n").as_bytes().to_vec().leak(),
                1,
            ),
            (
                format!("{A} {B} refs/heads/a..b\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{Z} {Z} refs/heads/main\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A}  {B} refs/heads/main\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A} {B} refs/heads/main\r\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (b"\xff\xfe\n", 1),
        ];
        for (input, line) in bad {
            let e = parse_updates(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(e.line, *line, "{}", String::from_utf8_lossy(input));
        }
    }

    /// Found by tests/fail_closed.rs::malformed_stdin_lines_are_refused: `<OLD> <old> <ref>` with
    /// the old id in upper case was read as "no change" and accepted, because ObjectId::parse
    /// lower-cases. Not a bypass (it is the same object), but git never writes it: refused.
    #[test]
    fn stdin_uppercase_ids_are_malformed() {
        let upper = A.replace('1', "A");
        let lower = upper.to_ascii_lowercase();
        for input in [
            format!("{upper} {lower} refs/heads/main\n"),
            format!("{lower} {upper} refs/heads/main\n"),
        ] {
            let e = parse_updates(input.as_bytes()).expect_err(&input);
            assert!(e.reason.contains("lower-case"), "{e}");
        }
        let ok = format!("{lower} {B} refs/heads/main\n");
        assert_eq!(parse_updates(ok.as_bytes()).unwrap()[0].old.as_str(), lower);
    }

    #[test]
    fn refnames() {
        for good in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/x-y_z",
        ] {
            assert!(valid_refname(good), "{good}");
        }
        for bad in [
            "main",
            "refs/heads/",
            "refs/heads/x.lock",
            "refs/heads/.x",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a:b",
            "refs//x",
            "refs/heads/@{x}",
        ] {
            assert!(!valid_refname(bad), "{bad}");
        }
    }

    #[test]
    fn render_prefixes_every_line() {
        let u = RefUpdate {
            old: ObjectId::parse(A).unwrap(),
            new: ObjectId::parse(B).unwrap(),
            refname: "refs/heads/main".into(),
        };
        let d = RefDecision::refused(
            u,
            Code::PolicyInvalid,
            "broken".into(),
            vec!["detail".into()],
            vec!["fix it".into()],
        );
        let text = render(&[d], "GL-HOOK-ERR: ");
        assert!(
            text.lines().all(|l| l.starts_with("GL-HOOK-ERR: ")),
            "{text}"
        );
        assert!(text.contains("[policy-invalid]"));
    }
}
