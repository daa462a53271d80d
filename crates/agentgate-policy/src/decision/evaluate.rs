//! [`Evaluator`]: one push's ref updates judged against one policy, in named steps
//! ([`Evaluator::decide_ref`]): protection, base commits, entering commits, required
//! attestations, verdict. A step either hands its result to the next or settles the outcome.

use std::collections::HashSet;
use std::ops::ControlFlow;

use agentgate_git::walk::{self, Walked};
use agentgate_git::{
    BackendError, BaselineError, Commit, HistoryError, NotesError, ObjectError, ObjectId, Oid,
    ReadError, RefEntry, RefError, RefValue, Repo, WalkError,
};

use super::coverage::{AttestCache, Coverage};
use super::refusal::{accept, error_refusal, object_refusal, refuse, unattested_refusal};
use super::{AgentCommit, Code, Facts, Outcome, RefDecision, RefUpdate, Refusal};
use crate::attestations::{AttestationSource, AttestationsError};
use crate::config::{Policy, Require, Scope};
use crate::detect::{Detector, Match};
use crate::trailers::{self, TrailerConfig};

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
    /// Something read once per push (the refs, the trailer settings) could not be read.
    #[error("running git {what}: {message}")]
    Unreadable { what: &'static str, message: String },
}

impl DecideError {
    /// The object that could not be read as git reads it, if that is what went wrong.
    pub(super) fn object_error(&self) -> Option<&ObjectError> {
        match self {
            DecideError::Read(ReadError::Object(o))
            | DecideError::Walk(WalkError::Read(ReadError::Object(o))) => Some(o),
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

/// What detection found in one entering commit.
pub(super) struct AgentHit {
    subject: String,
    matches: Vec<Match>,
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
        let walked = next!(self.entering_commits(u, &target, &base, d));
        let unattested = self.required_attestations(&target, &walked, d)?;
        Ok(self.verdict(&target, &base, d, &unattested))
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
                vec![format!("do not push {promotions}; fetch it to read the records (`agentgate verify --promotion REV`)")],
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
    /// the promise, and the baseline.
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
            let mut tips: Vec<ObjectId> = view
                .protected_tips
                .iter()
                .filter(|(n, _)| *n != target.full)
                .map(|(_, c)| c.clone())
                .collect();
            tips.sort();
            tips.dedup();
            d.facts.known_covered = tips;
            d.facts.baseline = view.baseline.clone();
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
        let (detector, trailer_config) = (&self.detector, &self.trailer_config);
        self.step(|| format!("walking the commits of {name} and detecting agent commits"));
        let walked = walk::walk(
            self.repo.objects()?.as_mut(),
            &walk::Limits {
                tip: Oid::from_object_id(&base.new),
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

    /// Does this entering commit need an attestation (an agent commit, or every commit under
    /// `require = "all-commits"`)?
    fn is_agent(&self, c: &walk::Entering<AgentHit>) -> bool {
        self.detector.require() == Require::AllCommits || matches!(c.found, Ok(Some(_)))
    }

    /// Step 4, required attestations: the agent commits no attestation covers, by the policy's
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

    /// Step 5, verdict: accepted when every agent commit is covered, else refused with what
    /// was examined and how to fix it.
    fn verdict(
        &self,
        target: &Target,
        base: &Base,
        d: &RefDecision,
        unattested: &[ObjectId],
    ) -> Outcome {
        if unattested.is_empty() {
            return accept(Code::Attested);
        }
        Outcome::Refuse(unattested_refusal(
            self,
            &target.name,
            &base.new,
            d,
            unattested,
        ))
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
