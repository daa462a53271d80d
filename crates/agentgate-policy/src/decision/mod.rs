//! The decision: for each ref a push updates, is it allowed? This module turns ref updates,
//! the repository and the policy into [`RefDecision`] values; only [`Evaluator::decide`] can
//! build an accepting one, and every error on the way becomes a refusal.
//!
//! Every decision keeps the promise (SPEC.md): after an accepted push, every agent commit
//! reachable from a protected tip lies under an attested commit of that tip's history (scope
//! "tip") or is attested itself (scope "each"). A push is judged by walking back from its new
//! tip until the walk reaches commits already known to keep the promise: the tips of the
//! protected refs (by induction: each got there through an accepted push) and the baseline
//! recorded at installation. Being reachable from *another* protected ref proves nothing: an
//! agent commit under main's attested tip is not covered for a new tag that points at it.
//!
//! The steps, in [`evaluate`]: protection (which ref git will update, and what protects it),
//! base commits (the new and old tips as commits), entering commits (the walk, with detection),
//! trailer policies (the policy's `[[detect.action]]`s), required attestations (the coverage
//! in [`coverage`]), verdict. What a refusal says is in
//! [`refusal`]; the hook's input format in [`input`].

mod coverage;
mod evaluate;
mod input;
mod refusal;

use agentgate_git::ObjectId;

pub use crate::attestations::{AttestationReport, BreakGlassUse};
pub use crate::code::Code;
use crate::detect::Match;
pub use evaluate::{strip_namespaces, Evaluator};
pub use input::{parse_updates, valid_refname, RefUpdate, StdinError, MAX_STDIN};
pub use refusal::render;

/// One agent commit entering a protected ref.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentCommit {
    pub commit: ObjectId,
    pub subject: String,
    pub matches: Vec<Match>,
}

/// Why a ref update is accepted. Only [`Evaluator::decide`] builds one.
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

    /// `accept` or `refuse`, as the audit log and `check --json` say it.
    pub fn verdict(&self) -> &'static str {
        match self {
            Outcome::Accept(_) => "accept",
            Outcome::Refuse(_) => "refuse",
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
    /// The `refs/notes/ai` commit git-ai evidence was read from (`[detect] sources`).
    pub git_ai_notes: Option<ObjectId>,
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
    /// The break-glass override that admitted this update, and what it overrode.
    pub break_glass: Option<BreakGlassOverride>,
    pub outcome: Outcome,
}

/// A refusal a break-glass override turned into an acceptance.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BreakGlassOverride {
    #[serde(flatten)]
    pub used: BreakGlassUse,
    /// The refusal it overrode: its code and headline.
    pub overridden: Code,
    pub overridden_reason: String,
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
            break_glass: None,
            outcome: Outcome::Refuse(Refusal {
                code,
                headline,
                details,
                fix,
            }),
        }
    }
}
