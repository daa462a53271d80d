//! [`Evaluator`]: one push's ref updates judged against one policy, in named steps
//! ([`Evaluator::decide_ref`]): protection, base commits, entering commits, trailer policies,
//! required attestations, path rules (with their approvals), verdict, and last, a break-glass
//! override that may lift a refusal. A step either hands its result to the next or settles the
//! outcome.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use agentgate_git::walk::{self, Walked};
use agentgate_git::{
    BackendError, BaselineError, Commit, DiffError, HistoryError, NotesError, ObjectError,
    ObjectId, Oid, ReadError, RefEntry, RefError, RefValue, Repo, WalkError,
};

use super::coverage::{AttestCache, Coverage};
use super::refusal::{
    accept, action_refusal, approval_refusal, error_refusal, object_refusal, path_refusal, refuse,
    unattested_refusal,
};
use super::{
    AgentCommit, BreakGlassOverride, Code, Facts, Outcome, RefDecision, RefUpdate, Refusal,
};
use crate::attestations::{AttestationSource, AttestationsError, CommitPeople, CommitRef};
use crate::config::{PathAction, Policy, Require, Scope};
use crate::detect::{Action, Detector, Effect, Match, Source, Violation};
use crate::git_ai::{self, GitAiError, GitAiNotes};
use crate::trailers::{self, Trailer, TrailerConfig};

/// Why a decision could not be made (it becomes a `git-error` refusal, or an object refusal
/// for a commit git and a plain reader read differently).
#[derive(Debug, thiserror::Error)]
pub(super) enum DecideError {
    #[error(transparent)]
    Refs(#[from] RefError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    Notes(#[from] NotesError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Attestations(#[from] AttestationsError),
    #[error(transparent)]
    GitAi(#[from] GitAiError),
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// Something read once per push (the refs, the trailer settings) could not be read.
    #[error("running git {what}: {message}")]
    Unreadable { what: &'static str, message: String },
}

impl DecideError {
    /// The object that could not be read as git reads it, if that is what went wrong.
    pub(super) fn object_error(&self) -> Option<&ObjectError> {
        match self {
            DecideError::Read(ReadError::Object(o))
            | DecideError::Walk(WalkError::Read(ReadError::Object(o)))
            | DecideError::Diff(DiffError::Read(ReadError::Object(o))) => Some(o),
            _ => None,
        }
    }
}

/// A step's result: the next step's input, or the outcome.
type Step<T> = Result<ControlFlow<Outcome, T>, DecideError>;

/// Go on with a step's result, or return the outcome it settled.
macro_rules! next {
    ($step:expr) => {
        match $step? {
            ControlFlow::Continue(v) => v,
            ControlFlow::Break(outcome) => return Ok(outcome),
        }
    };
}

/// Evaluates ref updates of one push against one policy.
pub struct Evaluator<'a> {
    pub(super) repo: &'a Repo,
    pub(super) policy: &'a Policy,
    pub(super) detector: Detector,
    /// The repository's trailer settings, or why they could not be read (refuses protected
    /// updates that need detection).
    trailer_config: Result<TrailerConfig, String>,
    pub(super) attestations: &'a dyn AttestationSource,
    /// The refs as they are before the push, read once, when first needed.
    refs: std::cell::OnceCell<Result<RefView, String>>,
    /// Told what the evaluator is doing (the hook's watchdog names the step that ran out).
    progress: Option<&'a dyn Fn(String)>,
    /// The whole push, when known: a `refs/notes/ai` it sets counts for git-ai evidence.
    push: &'a [RefUpdate],
    /// git-ai's notes as this push leaves them, read once, when first needed.
    git_ai: std::cell::OnceCell<Result<Option<GitAiNotes>, String>>,
}

/// The repository's refs before the push, as far as decisions need them.
struct RefView {
    /// Every stored ref (all namespaces), symbolic refs not followed.
    entries: Vec<RefEntry>,
    /// Protected refs (stored names) and their tips peeled to commits: known to keep the
    /// promise.
    protected_tips: Vec<(String, ObjectId)>,
    baseline: Vec<ObjectId>,
}

/// What the protection step found: the ref git will update, protected.
struct Target {
    /// Its stored name (symbolic refs followed).
    full: String,
    /// How messages name it (the pushed name, and what it leads to when that differs).
    name: String,
}

/// The update's tips as commits.
struct Base {
    new: ObjectId,
    old: Option<ObjectId>,
}

/// An agent commit that changes a path a rule names.
#[derive(Debug, Clone)]
pub(super) struct PathHit {
    pub(super) commit: ObjectId,
    pub(super) path: String,
    pub(super) rule: String,
    pub(super) pattern: String,
    pub(super) action: PathAction,
}

/// What the path rules found in one update.
#[derive(Debug, Default)]
pub(super) struct PathVerdict {
    /// Changes a rule refuses outright.
    pub(super) refused: Vec<PathHit>,
    /// Commits without enough approvals: the rules they hit, approvals needed, approvals found.
    pub(super) unapproved: Vec<(Vec<PathHit>, usize, usize)>,
    /// Some commit needed approvals (and, unless listed above, had them).
    pub(super) approvals_needed: bool,
}

/// What detection found in one entering commit.
pub(super) struct AgentHit {
    subject: String,
    matches: Vec<Match>,
    /// Its trailers, kept for the trailer policies (only when the policy has one).
    trailers: Vec<Trailer>,
    /// Its git-ai note (the blob), to be read after the walk.
    git_ai_note: Option<ObjectId>,
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
            trailer_config: repo
                .config_entries()
                .map(TrailerConfig::from_config)
                .map_err(|e| e.to_string()),
            attestations,
            refs: std::cell::OnceCell::new(),
            progress: None,
            push: &[],
            git_ai: std::cell::OnceCell::new(),
        }
    }

    /// Tell the evaluator every update of the push: a `refs/notes/ai` update among them is
    /// where git-ai evidence is read from (its objects are in the quarantine).
    pub fn with_push(mut self, updates: &'a [RefUpdate]) -> Self {
        self.push = updates;
        self
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

    fn ref_view(&self) -> Result<&RefView, DecideError> {
        if self.refs.get().is_none() {
            self.step(|| "reading refs".into());
        }
        let view = self
            .refs
            .get_or_init(|| self.read_refs().map_err(|e| e.to_string()));
        view.as_ref().map_err(|e| DecideError::Unreadable {
            what: "reading refs",
            message: e.clone(),
        })
    }

    fn read_refs(&self) -> Result<RefView, DecideError> {
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
    fn protection_of(&self, view: &RefView, full: &str) -> Option<String> {
        if let Some(p) = self.policy.protect.matching(strip_namespaces(full)) {
            return Some(p.glob.clone());
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
                    return Some(format!("{} (through symbolic ref {})", p.glob, e.name));
                }
            }
        }
        None
    }

    fn decide_with(&self, update: &RefUpdate, recorded: Option<&Facts>) -> RefDecision {
        let mut d = RefDecision {
            update: update.clone(),
            protected_by: None,
            entering: None,
            facts: recorded.cloned().unwrap_or_default(),
            agent_commits: vec![],
            attestations: vec![],
            break_glass: None,
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

    /// The steps of one decision; each either settles the outcome or hands on to the next.
    fn decide_ref(
        &self,
        u: &RefUpdate,
        recorded: Option<&Facts>,
        d: &mut RefDecision,
    ) -> Result<Outcome, DecideError> {
        let target = next!(self.protection(u, recorded, d));
        let base = next!(self.base_commits(u, &target, recorded, d));
        let outcome = self.judge(u, &target, &base, d)?;
        self.break_glass(u, &base, outcome, d)
    }

    /// Steps 3 to 7: what the commits entering the ref need, and whether they have it.
    fn judge(
        &self,
        u: &RefUpdate,
        target: &Target,
        base: &Base,
        d: &mut RefDecision,
    ) -> Result<Outcome, DecideError> {
        let walked = next!(self.entering_commits(u, target, base, d));
        next!(self.trailer_policies(target, &walked, d));
        let unattested = self.required_attestations(target, &walked, d)?;
        let paths = self.path_rules(target, &walked, d)?;
        Ok(self.verdict(target, base, d, &unattested, &paths))
    }

    /// Step 1, protection: the ref git will really update (the pushed name, symbolic refs
    /// followed) and what protects it. Settles unprotected refs, deletions, no-op updates and
    /// the notes ref.
    fn protection(
        &self,
        u: &RefUpdate,
        recorded: Option<&Facts>,
        d: &mut RefDecision,
    ) -> Step<Target> {
        let view = self.ref_view()?;
        let pushed = self.repo.full_ref(&u.refname);
        let full = match recorded {
            Some(f) => f.resolved_ref.clone().unwrap_or_else(|| pushed.clone()),
            None => self.repo.resolve_ref(&pushed)?.0,
        };
        if full != pushed {
            d.facts.resolved_ref = Some(full.clone());
        }
        // Promotion records are the server's word: only its post-receive hook writes them.
        let promotions = &self.policy.server.promotions_ref;
        if [&full, &pushed]
            .iter()
            .any(|n| strip_namespaces(n) == promotions.as_str())
        {
            d.protected_by = Some("[server] promotions_ref".into());
            return Ok(ControlFlow::Break(refuse(
                Code::PromotionsRefReserved,
                format!("{} holds the server's promotion records; only the server writes it", u.refname),
                vec!["pushes to it are refused, deletions included".into()],
                vec![format!("do not push {promotions}; fetch it to read the records (`agentgate verify --promotion REV --key SERVER.pub`)")],
            )));
        }
        let Some(protected_by) = self.protection_of(view, &full) else {
            return Ok(ControlFlow::Break(accept(Code::Unprotected)));
        };
        d.protected_by = Some(protected_by);
        let name = if full == pushed {
            u.refname.clone()
        } else {
            format!("{} (through {})", strip_namespaces(&full), u.refname)
        };
        if u.new.is_zero() {
            if self.policy.protect.allow_delete {
                return Ok(ControlFlow::Break(accept(Code::DangerDeleteAllowed)));
            }
            return Ok(ControlFlow::Break(refuse(
                Code::ProtectedRefDelete,
                format!("deleting protected ref {name} is not allowed"),
                vec![],
                vec!["deletion of protected refs is refused by the server policy ([protect] allow_delete)".into()],
            )));
        }
        if u.old == u.new {
            return Ok(ControlFlow::Break(accept(Code::NoChange)));
        }
        if strip_namespaces(&full) == self.policy.attest.notes_ref {
            return Ok(ControlFlow::Break(self.decide_notes(u, &name)?));
        }
        Ok(ControlFlow::Continue(Target { full, name }))
    }

    /// Step 2, base commits: the new and old tips peeled to commits (a tip that is none
    /// refuses), and the facts the walk starts from: the other protected tips, known to keep
    /// the promise, the baseline, and the git-ai notes commit (with `sources = ["git-ai"]`).
    fn base_commits(
        &self,
        u: &RefUpdate,
        target: &Target,
        recorded: Option<&Facts>,
        d: &mut RefDecision,
    ) -> Step<Base> {
        self.repo.check_history_as_stored()?;
        let new = match self.commit_of(&u.new, &target.name)? {
            Ok(id) => id,
            Err(refusal) => return Ok(ControlFlow::Break(Outcome::Refuse(refusal))),
        };
        let old = if u.old.is_zero() {
            None
        } else {
            match self.commit_of(&u.old, &target.name)? {
                Ok(id) => Some(id),
                Err(refusal) => return Ok(ControlFlow::Break(Outcome::Refuse(refusal))),
            }
        };
        if recorded.is_none() {
            let view = self.ref_view()?;
            // The ref being updated counts with its value before the push (`old`, added by the
            // walk): a dry run (`check`) may look at a repository where it already moved.
            // Another protected tip vouches for its history only as far as that ref's
            // trailer policies go: a release branch that refuses agent commits must not take
            // main's agent commits unjudged.
            let mine = self.actions_for(&target.full);
            let mut tips: Vec<ObjectId> = view
                .protected_tips
                .iter()
                .filter(|(n, _)| *n != target.full)
                .filter(|(n, _)| {
                    mine.is_empty() || {
                        let theirs = self.actions_for(n);
                        mine.iter().all(|a| theirs.contains(a))
                    }
                })
                .map(|(_, c)| c.clone())
                .collect();
            tips.sort();
            tips.dedup();
            d.facts.known_covered = tips;
            d.facts.baseline = view.baseline.clone();
            d.facts.git_ai_notes = self.live_git_ai()?.map(|n| n.commit.clone());
        }
        if let Err(e) = &self.trailer_config {
            return Err(DecideError::Unreadable {
                what: "config (trailer settings)",
                message: e.clone(),
            });
        }
        Ok(ControlFlow::Continue(Base { new, old }))
    }

    /// Step 3, entering commits: every commit reachable from the new tip that no known-covered,
    /// baseline or old commit already accounts for (the walk stops where it reaches one), each
    /// judged by detection. Settles commits that cannot be read as git reads them, a
    /// non-fast-forward update, and a push with no agent commit.
    fn entering_commits(
        &self,
        u: &RefUpdate,
        target: &Target,
        base: &Base,
        d: &mut RefDecision,
    ) -> Step<Walked<AgentHit>> {
        let name = &target.name;
        let mut stops: HashSet<Oid> = d
            .facts
            .known_covered
            .iter()
            .map(Oid::from_object_id)
            .collect();
        if let Some(o) = &base.old {
            stops.insert(Oid::from_object_id(o));
        }
        let baseline: Vec<Oid> = d.facts.baseline.iter().map(Oid::from_object_id).collect();
        let git_ai = self.git_ai_notes(&d.facts)?;
        let git_ai_index = git_ai.as_ref().map(|n| &n.index).filter(|i| !i.is_empty());
        let keep_trailers = self
            .policy
            .detect
            .actions
            .iter()
            .any(|a| matches!(a.effect, Effect::RequireTrailer { .. }));
        let (detector, trailer_config) = (&self.detector, &self.trailer_config);
        self.step(|| format!("walking the commits of {name} and detecting agent commits"));
        let mut walked = walk::walk(
            self.repo.objects()?.as_mut(),
            &walk::Limits {
                tip: Oid::from_object_id(&base.new),
                hidden: &baseline,
                stops: &stops,
            },
            &|c: &Commit| {
                let parsed = match trailer_config {
                    Ok(tc) => trailers::parse_block(&c.message, tc),
                    // The caller refuses before this matters.
                    Err(_) => trailers::TrailerBlock::default(),
                };
                let matches = detector.detect(c, &parsed);
                let git_ai_note = git_ai_index.and_then(|i| i.get(c.id.as_str()).cloned());
                (!matches.is_empty() || git_ai_note.is_some()).then(|| AgentHit {
                    subject: c.subject().chars().take(120).collect(),
                    matches,
                    trailers: if keep_trailers {
                        parsed.trailers
                    } else {
                        Vec::new()
                    },
                    git_ai_note,
                })
            },
        )?;
        if let Some(notes) = &git_ai {
            self.step(|| format!("reading the git-ai notes of the commits of {name}"));
            self.read_git_ai_notes(notes, &mut walked)?;
        }

        // A commit that would enter the ref but that git and a plain reader read differently,
        // or whose message cannot be decoded as git shows it: refused, never guessed at.
        for c in &walked.commits {
            if let Err(e) = &c.found {
                return Ok(ControlFlow::Break(object_refusal(name, e)));
            }
        }
        if let (Some(o), false) = (&base.old, self.policy.protect.allow_non_fast_forward) {
            // The walk answers "is old an ancestor" when it reached old from a walked commit;
            // otherwise another known commit may lie in between, and a walk to old alone decides.
            let fast_forward =
                walked.reached(&Oid::from_object_id(o)) || self.repo.is_ancestor(o, &base.new)?;
            if !fast_forward {
                return Ok(ControlFlow::Break(refuse(
                    Code::NonFastForward,
                    format!("non-fast-forward update of protected ref {name} is not allowed"),
                    vec![format!("{} is not an ancestor of {}", u.old.short(), u.new.short())],
                    vec![format!("rebase onto the current {name} and push again; force-pushes are refused by the server policy")],
                )));
            }
        }
        d.entering = Some(walked.commits.len());
        for c in &walked.commits {
            if let Ok(Some(hit)) = &c.found {
                d.agent_commits.push(AgentCommit {
                    commit: c.id.to_object_id(),
                    subject: hit.subject.clone(),
                    matches: hit.matches.clone(),
                });
            }
        }
        if !walked.commits.iter().any(|c| self.is_agent(c)) {
            return Ok(ControlFlow::Break(accept(Code::NoAgentCommits)));
        }
        Ok(ControlFlow::Continue(walked))
    }

    /// git-ai's notes as this push leaves them (read once per push); None when the policy
    /// reads no git-ai notes or there are none.
    fn live_git_ai(&self) -> Result<Option<&GitAiNotes>, DecideError> {
        if !self.policy.detect.has_source(Source::GitAi) {
            return Ok(None);
        }
        let loaded = self.git_ai.get_or_init(|| {
            self.step(|| format!("reading {}", git_ai::NOTES_REF));
            git_ai::notes_commit(self.repo, self.push)
                .map_err(|e| crate::errors::error_chain(&e))
                .and_then(|c| {
                    c.map(|c| GitAiNotes::load(self.repo, &c))
                        .transpose()
                        .map_err(|e| crate::errors::error_chain(&e))
                })
        });
        match loaded {
            Ok(n) => Ok(n.as_ref()),
            Err(e) => Err(DecideError::Unreadable {
                what: "reading refs/notes/ai (git-ai)",
                message: e.clone(),
            }),
        }
    }

    /// git-ai's notes for this decision: those of the notes commit its facts name (the
    /// push's, or the one a replayed record names).
    fn git_ai_notes(&self, facts: &Facts) -> Result<Option<Cow<'_, GitAiNotes>>, DecideError> {
        if !self.policy.detect.has_source(Source::GitAi) {
            return Ok(None);
        }
        let Some(commit) = &facts.git_ai_notes else {
            return Ok(None);
        };
        let cached = self
            .git_ai
            .get()
            .and_then(|r| r.as_ref().ok())
            .and_then(Option::as_ref);
        Ok(Some(match cached {
            Some(n) if &n.commit == commit => Cow::Borrowed(n),
            _ => Cow::Owned(GitAiNotes::load(self.repo, commit)?),
        }))
    }

    /// Read the git-ai note of each entering commit that has one: its evidence joins the
    /// commit's matches; a commit whose note attributes nothing to an AI, and that no rule
    /// matched, is no agent commit.
    fn read_git_ai_notes(
        &self,
        notes: &GitAiNotes,
        walked: &mut Walked<AgentHit>,
    ) -> Result<(), DecideError> {
        for c in &mut walked.commits {
            let Ok(Some(hit)) = &mut c.found else {
                continue;
            };
            let Some(blob) = hit.git_ai_note.take() else {
                continue;
            };
            if let Some(m) = notes.evidence(self.repo, &c.id.to_object_id(), &blob)? {
                hit.matches.push(m);
            }
            if hit.matches.is_empty() {
                c.found = Ok(None);
            }
        }
        Ok(())
    }

    /// Does this entering commit need an attestation (an agent commit, or every commit under
    /// `require = "all-commits"`)?
    fn is_agent(&self, c: &walk::Entering<AgentHit>) -> bool {
        self.detector.require() == Require::AllCommits || matches!(c.found, Ok(Some(_)))
    }

    /// The indexes of the policy's `[[detect.action]]`s that apply to the stored ref `full`.
    fn actions_for(&self, full: &str) -> Vec<usize> {
        let name = strip_namespaces(full);
        self.policy
            .detect
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.applies_to_ref(name))
            .map(|(i, _)| i)
            .collect()
    }

    /// Step 4, trailer policies: the policy's `[[detect.action]]`s for this ref, on each agent
    /// commit entering it. Settles a push with an agent commit an action refuses, attested or
    /// not; only ever refuses.
    fn trailer_policies(
        &self,
        target: &Target,
        walked: &Walked<AgentHit>,
        d: &RefDecision,
    ) -> Step<()> {
        let refname = strip_namespaces(&target.full);
        let actions: Vec<&Action> = self
            .policy
            .detect
            .actions
            .iter()
            .filter(|a| a.applies_to_ref(refname))
            .collect();
        if actions.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        self.step(|| format!("applying the trailer policies to {}", target.name));
        let mut violations: Vec<(&AgentCommit, &Action, Violation)> = Vec::new();
        for c in &walked.commits {
            let Ok(Some(hit)) = &c.found else {
                continue;
            };
            let id = c.id.to_object_id();
            let Some(agent) = d.agent_commits.iter().find(|a| a.commit == id) else {
                continue;
            };
            for a in &actions {
                if let Some(v) = a.check(&hit.matches, &hit.trailers) {
                    violations.push((agent, a, v));
                }
            }
        }
        if violations.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        Ok(ControlFlow::Break(Outcome::Refuse(action_refusal(
            &target.name,
            &violations,
        ))))
    }

    /// Step 5, required attestations: the agent commits no attestation covers, by the policy's
    /// scope (see [`Coverage::uncovered`]). Records every attestation examined.
    fn required_attestations(
        &self,
        target: &Target,
        walked: &Walked<AgentHit>,
        d: &mut RefDecision,
    ) -> Result<Vec<ObjectId>, DecideError> {
        let name = &target.name;
        self.step(|| format!("verifying attestations for {name}"));
        let mut cache = AttestCache::new(self.attestations);
        let unattested: Vec<ObjectId> = match self.policy.attest.scope {
            // Every agent commit carries its own attestation.
            Scope::Each => {
                let mut missing = Vec::new();
                for c in walked.commits.iter().filter(|c| self.is_agent(c)) {
                    if !cache.admitted(&c.id, &c.tree)? {
                        missing.push(c.id.to_object_id());
                    }
                }
                missing
            }
            // Every agent commit lies under an attested commit of the new tip's history.
            Scope::Tip => Coverage::new(&walked.commits)
                .uncovered(&walked.commits, |c| self.is_agent(c), &mut cache)?
                .into_iter()
                .filter_map(|i| walked.commits.get(i))
                .map(|c| c.id.to_object_id())
                .collect(),
        };
        d.attestations = cache.into_reports();
        Ok(unattested)
    }

    /// Step 6, path rules: the paths each agent commit changes (against each of its parents:
    /// a merge changes what differs from any parent, so a change hidden in a merge, even one
    /// that takes an older version from a parent already on the ref, is seen), the rules they
    /// match, and for rules that ask for approvals, the approvals of that commit itself.
    fn path_rules(
        &self,
        target: &Target,
        walked: &Walked<AgentHit>,
        d: &mut RefDecision,
    ) -> Result<PathVerdict, DecideError> {
        let mut verdict = PathVerdict::default();
        if self.policy.path_rules.is_empty() {
            return Ok(verdict);
        }
        self.step(|| format!("checking path rules for {}", target.name));
        let trees: HashMap<Oid, Oid> = walked.commits.iter().map(|c| (c.id, c.tree)).collect();
        let mut td = self.repo.tree_diff()?;
        let mut paths = Vec::new();
        for c in walked.commits.iter().filter(|c| self.is_agent(c)) {
            paths.clear();
            if c.parents.is_empty() {
                td.changed_paths(None, &c.tree, &mut paths)?;
            }
            for p in &c.parents {
                let tree = match trees.get(p) {
                    Some(t) => *t,
                    None => td.commit_tree(p)?,
                };
                td.changed_paths(Some(&tree), &c.tree, &mut paths)?;
            }
            paths.sort_unstable();
            paths.dedup();
            let mut hits = Vec::new();
            for rule in &self.policy.path_rules {
                if let Some((path, pattern)) = paths
                    .iter()
                    .find_map(|p| rule.matching(p).map(|pat| (p, pat)))
                {
                    hits.push(PathHit {
                        commit: c.id.to_object_id(),
                        path: String::from_utf8_lossy(path).into_owned(),
                        rule: rule.id.clone(),
                        pattern: pattern.text.clone(),
                        action: rule.action,
                    });
                }
            }
            let needed = hits
                .iter()
                .filter_map(|h| match h.action {
                    PathAction::Approvals(n) => Some(n),
                    PathAction::Refuse => None,
                })
                .max();
            if let Some(needed) = needed {
                verdict.approvals_needed = true;
                let commit = self.repo.commit(&c.id.to_object_id())?;
                let people = CommitPeople {
                    author_email: commit.author.email.clone(),
                    committer_email: commit.committer.email.clone(),
                };
                let cref = CommitRef {
                    id: c.id.to_object_id(),
                    tree: c.tree.to_object_id(),
                };
                let approvals = self.attestations.approvals(&cref, &people)?;
                let got = approvals.approvers.len();
                d.attestations.extend(approvals.examined);
                if got < needed {
                    verdict.unapproved.push((hits.clone(), needed, got));
                }
            }
            verdict
                .refused
                .extend(hits.into_iter().filter(|h| h.action == PathAction::Refuse));
        }
        Ok(verdict)
    }

    /// Step 7, verdict: accepted when every agent commit is covered and no path rule stands in
    /// the way, else refused with what was examined and how to fix it. A path rule that refuses
    /// outright comes first (no attestation can fix it), then missing attestations, then
    /// missing approvals.
    fn verdict(
        &self,
        target: &Target,
        base: &Base,
        d: &RefDecision,
        unattested: &[ObjectId],
        paths: &PathVerdict,
    ) -> Outcome {
        if !paths.refused.is_empty() {
            return Outcome::Refuse(path_refusal(self, &target.name, d, paths));
        }
        if !unattested.is_empty() {
            return Outcome::Refuse(unattested_refusal(
                self,
                &target.name,
                &base.new,
                d,
                unattested,
            ));
        }
        if !paths.unapproved.is_empty() {
            return Outcome::Refuse(approval_refusal(self, &target.name, d, paths));
        }
        if paths.approvals_needed {
            return accept(Code::Approved);
        }
        accept(Code::Attested)
    }

    /// Last, break-glass: a refusal the policy lets an override lift ([`Code::is_overridable`])
    /// becomes an acceptance when the break-glass key signed an override of exactly this
    /// update that is valid now. Off unless the policy names a break-glass key.
    fn break_glass(
        &self,
        u: &RefUpdate,
        base: &Base,
        outcome: Outcome,
        d: &mut RefDecision,
    ) -> Result<Outcome, DecideError> {
        let Outcome::Refuse(mut refusal) = outcome else {
            return Ok(outcome);
        };
        if self.policy.break_glass.is_none() || !refusal.code.is_overridable() {
            return Ok(Outcome::Refuse(refusal));
        }
        self.step(|| format!("looking for a break-glass override of {}", u.refname));
        let new = CommitRef {
            id: base.new.clone(),
            tree: self.repo.commit_links(&base.new)?.tree.to_object_id(),
        };
        let verdict = self.attestations.break_glass(u, &new)?;
        for r in &verdict.examined {
            refusal.details.push(format!(
                "break-glass override {} [{}] {}",
                r.source, r.result, r.detail
            ));
        }
        d.attestations.extend(verdict.examined);
        match verdict.used {
            Some(used) => {
                d.break_glass = Some(BreakGlassOverride {
                    used,
                    overridden: refusal.code,
                    overridden_reason: refusal.headline,
                });
                Ok(accept(Code::BreakGlass))
            }
            None => Ok(Outcome::Refuse(refusal)),
        }
    }

    /// The notes ref that carries attestations, when the policy protects it: never deleted or
    /// rewound unless allowed (handled before), and append-only: no note removed, no line of a
    /// note dropped, so an attestation that admitted a push stays. Its commits are not judged as
    /// code (they hold attestations, not source).
    fn decide_notes(&self, u: &RefUpdate, name: &str) -> Result<Outcome, DecideError> {
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
                    format!("{name} may only grow: the note on {} loses attestations", target.get(..7).unwrap_or(target)),
                    vec!["notes on protected history are append-only: lines may be added, never removed or changed".into()],
                    vec![format!("fetch {name}, merge with `git notes --ref {} merge -s cat_sort_uniq FETCH_HEAD`, and push again", self.policy.attest.notes_ref)],
                ));
            }
        }
        Ok(accept(Code::NotesAppended))
    }

    /// Peel `id` to a commit, or a refusal saying why it cannot be one.
    fn commit_of(
        &self,
        id: &ObjectId,
        name: &str,
    ) -> Result<Result<ObjectId, Refusal>, DecideError> {
        match self.repo.peel_to_commit(id) {
            Ok(c) => Ok(Ok(c)),
            Err(ReadError::NotFound(missing)) => Ok(Err(Refusal {
                code: Code::UnknownObject,
                headline: format!(
                    "{name}: object {} does not exist",
                    missing.get(..12).unwrap_or(&missing)
                ),
                details: vec![format!(
                    "{id} (or an object it points to) is not in the repository or the push"
                )],
                fix: vec!["push the objects the ref points to".into()],
            })),
            Err(ReadError::NotACommit { kind, .. }) => Ok(Err(Refusal {
                code: Code::NotACommit,
                headline: format!(
                    "{name} may only point at commits (or tags of commits); {} is a {kind}",
                    id.short()
                ),
                details: vec![],
                fix: vec![],
            })),
            Err(ReadError::Object(e)) => match object_refusal(name, &e) {
                Outcome::Refuse(r) => Ok(Err(r)),
                Outcome::Accept(_) => Err(ReadError::Object(e).into()),
            },
            Err(e) => Err(e.into()),
        }
    }
}
