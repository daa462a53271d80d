//! The decision: for each ref a push updates, is it allowed? This module turns ref updates,
//! the repository and the policy into `RefDecision` values; only `Evaluator::decide` can build
//! an accepting one, and every error on the way becomes a refusal.

use std::fmt::Write as _;

use crate::config::{Policy, Require, Scope};
use crate::detect::{Detector, Match};
use crate::git::{Commit, GitError, ObjectId, Repo};
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
    // Refusals.
    AgentCommitUnattested,
    ProtectedRefDelete,
    NonFastForward,
    NotACommit,
    UnknownObject,
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
            Code::AgentCommitUnattested => "agent-commit-unattested",
            Code::ProtectedRefDelete => "protected-ref-delete",
            Code::NonFastForward => "non-fast-forward",
            Code::NotACommit => "not-a-commit",
            Code::UnknownObject => "unknown-object",
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
            crate::config::PolicyError::NotFound { .. } => Code::PolicyMissing,
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

/// The decision about one ref update, with everything needed to explain and audit it.
#[derive(Debug, Clone)]
pub struct RefDecision {
    pub update: RefUpdate,
    /// The policy glob that protects the ref, if any.
    pub protected_by: Option<String>,
    /// How many commits enter the ref (None when not computed).
    pub entering: Option<usize>,
    /// For a created protected ref: the other protected tips whose commits did not count as
    /// entering (recorded so the decision can be re-derived).
    pub hidden: Vec<ObjectId>,
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
            hidden: vec![],
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

/// What detection found in one entering commit.
struct AgentHit {
    tree: ObjectId,
    subject: String,
    matches: Vec<Match>,
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
}

/// Stop collecting agent commits for messages after this many (they are all still checked).
const MAX_LISTED: usize = 20;

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
        }
    }

    /// Decide one update. Never panics on bad data; every error refuses.
    pub fn decide(&self, update: &RefUpdate) -> RefDecision {
        self.decide_with(update, None)
    }

    /// Decide again as an earlier run did: for a created ref, `hidden` are the other protected
    /// tips that run recorded instead of today's (deterministic promotion, `audit verify`).
    pub fn replay(&self, update: &RefUpdate, hidden: &[ObjectId]) -> RefDecision {
        self.decide_with(update, Some(hidden))
    }

    fn decide_with(&self, update: &RefUpdate, hidden: Option<&[ObjectId]>) -> RefDecision {
        let protected_by = self
            .policy
            .protect
            .matching(&update.refname)
            .map(|p| p.glob.clone());
        let mut d = RefDecision {
            update: update.clone(),
            protected_by: protected_by.clone(),
            entering: None,
            hidden: vec![],
            agent_commits: vec![],
            attestations: vec![],
            outcome: Outcome::Refuse(Refusal {
                code: Code::InternalError,
                headline: "no decision".into(),
                details: vec![],
                fix: vec![],
            }),
        };
        d.outcome = match protected_by {
            None => accept(Code::Unprotected),
            Some(_) => match self.decide_protected(update, hidden, &mut d) {
                Ok(o) => o,
                Err(e) => Outcome::Refuse(git_refusal(&update.refname, &e)),
            },
        };
        d
    }

    fn decide_protected(
        &self,
        u: &RefUpdate,
        recorded_hidden: Option<&[ObjectId]>,
        d: &mut RefDecision,
    ) -> Result<Outcome, EvidenceError> {
        let name = &u.refname;
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
        let new = match self.commit_of(&u.new, name)? {
            Ok(id) => id,
            Err(refusal) => return Ok(Outcome::Refuse(refusal)),
        };
        let hide = if let Some(recorded) = recorded_hidden.filter(|_| u.old.is_zero()) {
            d.hidden = recorded.to_vec();
            recorded.to_vec()
        } else if u.old.is_zero() {
            // A new protected ref: what no other protected ref already holds enters it.
            let protect = &self.policy.protect;
            let mut tips = Vec::new();
            for (_, id) in self
                .repo
                .refs(&|r| r != name && protect.matching(r).is_some())?
            {
                // A protected ref pointing at a tree or blob holds no commits.
                if let Ok(c) = self.repo.peel_to_commit(&id) {
                    tips.push(c);
                }
            }
            tips.sort();
            tips.dedup();
            d.hidden = tips.clone();
            tips
        } else {
            let old = match self.commit_of(&u.old, name)? {
                Ok(id) => id,
                Err(refusal) => return Ok(Outcome::Refuse(refusal)),
            };
            vec![old]
        };

        if let Err(e) = &self.trailer_config {
            return Err(GitError::Command {
                args: "config (trailer settings)".into(),
                message: e.clone(),
            }
            .into());
        }
        // The walk and detection run on two threads; only agent commits are kept.
        let (detector, trailer_config) = (&self.detector, &self.trailer_config);
        let scan = self.repo.scan(&new, &hide, &|c: &Commit| {
            let matches = detect_with(detector, trailer_config, c);
            (!matches.is_empty()).then(|| AgentHit {
                tree: c.tree.clone(),
                subject: c.subject().chars().take(120).collect(),
                matches,
            })
        })?;
        // Fast-forward: the walk from the new tip reached the old one (the walk answers this
        // for free with libgit2; the `git` backend asks git).
        if !u.old.is_zero() && !self.policy.protect.allow_non_fast_forward {
            let old = &hide[0];
            let fast_forward = *old == new
                || match &scan.hidden_reached {
                    Some(reached) => reached.contains(old),
                    None => self.repo.is_ancestor(old, &new)?,
                };
            if !fast_forward {
                return Ok(refuse(
                    Code::NonFastForward,
                    format!("non-fast-forward update of protected ref {name} is not allowed"),
                    vec![format!("{} is not an ancestor of {}", u.old.short(), u.new.short())],
                    vec![format!("rebase onto the current {name} and push again; force-pushes are refused by the server policy")],
                ));
            }
        }
        d.entering = Some(scan.count);
        d.agent_commits = scan
            .hits
            .iter()
            .map(|(id, h)| AgentCommit {
                commit: id.clone(),
                subject: h.subject.clone(),
                matches: h.matches.clone(),
            })
            .collect();
        if scan.hits.is_empty() {
            return Ok(accept(Code::NoAgentCommits));
        }

        // The commits that need a valid attestation: the tip, and with scope = "each" every
        // agent commit too.
        let tip_commit = self.repo.commit(&new)?;
        let mut required = vec![CommitRef {
            id: new.clone(),
            tree: tip_commit.tree,
        }];
        if self.policy.attest.scope == Scope::Each {
            required.extend(
                scan.hits
                    .into_iter()
                    .filter(|(id, _)| *id != new)
                    .map(|(id, h)| CommitRef { id, tree: h.tree }),
            );
        }
        let mut unattested = Vec::new();
        for c in &required {
            let verdict = self.attestations.check(c)?;
            d.attestations.extend(verdict.examined);
            if !verdict.admitted {
                unattested.push(c.id.clone());
            }
        }
        if unattested.is_empty() {
            return Ok(accept(Code::Attested));
        }
        Ok(Outcome::Refuse(self.unattested_refusal(u, d, &unattested)))
    }

    fn unattested_refusal(
        &self,
        u: &RefUpdate,
        d: &RefDecision,
        unattested: &[ObjectId],
    ) -> Refusal {
        let n = d.agent_commits.len();
        let what = if self.detector.require() == Require::AllCommits {
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
        for id in unattested {
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
        }
        let notes = &self.policy.attest.notes_ref;
        let first = &unattested[0];
        Refusal {
            code: Code::AgentCommitUnattested,
            headline: format!("{} needs a gate attestation for {} before it can move", u.refname, first.short()),
            details,
            fix: vec![
                format!("run the compile-test-sign gate on {first} in CI, e.g.:"),
                format!("  agentgate gate --key <gate key> --commit {first} --build <cmd> --test <cmd> --artifact <path> --note"),
                format!("then push the attestation first: git push <remote> {notes}, and push {} again", u.refname),
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
            Err(e) => Err(e),
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

fn git_refusal(name: &str, e: &EvidenceError) -> Refusal {
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
