//! What a decision says: the outcomes only this module's callers in `decision` build, the
//! refusals with their headline, details and fix, and the text the pusher sees ([`render`]).

use std::fmt::Write as _;

use agentgate_git::{ObjectError, ObjectId};

use super::evaluate::{DecideError, Evaluator, PathVerdict};
use super::{Accept, AgentCommit, Code, Outcome, RefDecision, Refusal};
use crate::attestations::AttestationReport;
use crate::config::{PathAction, Require, Scope};
use crate::detect::{Action, Effect, Violation};
use crate::errors::error_chain;

/// Stop collecting agent commits for messages after this many (they are all still checked).
const MAX_LISTED: usize = 20;

/// The refusal of agent commits no attestation covers: which commits, what was examined for
/// the commits whose attestation would settle it, and the gate command that fixes it.
pub(super) fn unattested_refusal(
    ev: &Evaluator<'_>,
    name: &str,
    tip: &ObjectId,
    d: &RefDecision,
    unattested: &[ObjectId],
) -> Refusal {
    let n = d.agent_commits.len();
    let all = ev.detector.require() == Require::AllCommits;
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
        let range = if d.update.old.is_zero() {
            d.update.new.short().to_string()
        } else {
            format!("{}..{}", d.update.old.short(), d.update.new.short())
        };
        details.push(format!(
            "  ... and {} more (the audit log has them all; in a clone: agentgate inspect {range})",
            n - MAX_LISTED
        ));
    }
    let scope_each = ev.policy.attest.scope == Scope::Each;
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
                ev.attestations.describe()
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
    let notes = &ev.policy.attest.notes_ref;
    let first = match unattested.first() {
        Some(first) if scope_each => first,
        _ => tip,
    };
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

/// The refusal of agent commits a `[[detect.action]]` refuses: each commit with its evidence
/// and what the action found, the policy's own words, and the line that fixes a missing
/// trailer. `do = "refuse"` wins the code when both kinds are there.
pub(super) fn action_refusal(
    name: &str,
    violations: &[(&AgentCommit, &Action, Violation)],
) -> Refusal {
    let count = |refusing: bool| {
        let mut seen: Vec<&ObjectId> = Vec::new();
        for (c, _, v) in violations {
            if matches!(v, Violation::Refused) == refusing && !seen.contains(&&c.commit) {
                seen.push(&c.commit);
            }
        }
        seen.len()
    };
    let (refused, lacking) = (count(true), count(false));
    let mut commits: Vec<&AgentCommit> = Vec::new();
    for (c, _, _) in violations {
        if !commits.iter().any(|o| o.commit == c.commit) {
            commits.push(c);
        }
    }
    let n = commits.len();
    let commits_word = |k: usize| {
        if k == 1 {
            "agent commit"
        } else {
            "agent commits"
        }
    };
    let mut details = Vec::new();
    for c in commits.iter().take(MAX_LISTED) {
        details.push(format!("  {} {}", c.commit.short(), c.subject));
        for m in &c.matches {
            details.push(format!("      {}: {}", m.rule, m.evidence));
        }
        for (_, a, v) in violations.iter().filter(|(o, _, _)| o.commit == c.commit) {
            let what = match (v, &a.effect) {
                (Violation::Refused, _) => "refused on this ref".to_string(),
                (Violation::TrailerMissing, Effect::RequireTrailer { key, .. }) => {
                    format!("no {key} trailer")
                }
                (Violation::TrailerMalformed(values), Effect::RequireTrailer { key, .. }) => {
                    let shown: Vec<String> =
                        values.iter().map(|v| format!("\"{key}: {v}\"")).collect();
                    format!("{} not in the required form", shown.join(", "))
                }
                _ => "refused".to_string(),
            };
            details.push(format!("      [[detect.action]] {}: {what}", a.id));
        }
    }
    if n > MAX_LISTED {
        details.push(format!(
            "  ... and {} more (the audit log has them all)",
            n - MAX_LISTED
        ));
    }
    let mut actions: Vec<&Action> = Vec::new();
    for (_, a, _) in violations {
        if !actions.iter().any(|o| o.id == a.id) {
            actions.push(a);
        }
    }
    for a in &actions {
        if let Some(m) = &a.message {
            details.push(format!("policy ({}): {m}", a.id));
        }
    }
    let mut fix = Vec::new();
    if refused > 0 {
        fix.push(format!("the commits refused on this ref cannot enter {name}: rewrite them so the rules listed under them no longer match (an agent's Signed-off-by dropped, say), or leave them out (`git rebase -i`)"));
    }
    for a in &actions {
        if let Effect::RequireTrailer { example, .. } = &a.effect {
            fix.push("add this trailer to the last paragraph of each listed commit's message (`git commit --amend`, or `git rebase -i` with reword), in this form:".to_string());
            fix.push(format!("  {example}"));
        }
    }
    fix.push("then push again".into());
    let keys: Vec<&str> = actions
        .iter()
        .filter_map(|a| match &a.effect {
            Effect::RequireTrailer { key, .. } => Some(key.as_str()),
            Effect::Refuse => None,
        })
        .collect();
    let lacking_text = format!(
        "{lacking} {} without the {} trailer the policy requires",
        commits_word(lacking),
        keys.join(" / ")
    );
    let (code, headline) = if refused > 0 {
        let mut h = format!(
            "{name}: {refused} {} refused on this ref by the policy",
            commits_word(refused)
        );
        if lacking > 0 {
            h.push_str(&format!(", and {lacking_text}"));
        }
        (Code::AgentCommitRefused, h)
    } else {
        (Code::AgentTrailerMissing, format!("{name}: {lacking_text}"))
    };
    Refusal {
        code,
        headline,
        details,
        fix,
    }
}

/// The subject of an agent commit, for messages.
fn subject_of<'d>(d: &'d RefDecision, commit: &ObjectId) -> &'d str {
    d.agent_commits
        .iter()
        .find(|a| &a.commit == commit)
        .map_or("", |a| a.subject.as_str())
}

/// The refusal of agent commits that change paths a rule refuses: each commit, path and rule.
pub(super) fn path_refusal(
    ev: &Evaluator<'_>,
    name: &str,
    d: &RefDecision,
    paths: &PathVerdict,
) -> Refusal {
    let mut details = Vec::new();
    for h in paths.refused.iter().take(MAX_LISTED) {
        details.push(format!(
            "  {} {}",
            h.commit.short(),
            subject_of(d, &h.commit)
        ));
        details.push(format!(
            "      changes {} (pattern {:?} of rule {}: agent commits may not change it)",
            h.path, h.pattern, h.rule
        ));
    }
    if paths.refused.len() > MAX_LISTED {
        details.push(format!(
            "  ... and {} more (the audit log has them all)",
            paths.refused.len() - MAX_LISTED
        ));
    }
    let (first, rest) = match paths.refused.split_first() {
        Some((f, r)) => (Some(f), r.len()),
        None => (None, 0),
    };
    let headline = match first {
        Some(h) => format!(
            "{name}: agent commit {} changes {}, which path rule {} refuses{}",
            h.commit.short(),
            h.path,
            h.rule,
            if rest > 0 {
                format!(" (and {rest} more)")
            } else {
                String::new()
            }
        ),
        None => format!("{name}: a path rule refuses this push"),
    };
    let mut fix = vec![
        "no attestation or approval admits an agent change to these paths: have a person make it (a commit no detection rule flags), and push again".into(),
    ];
    if ev.policy.break_glass.is_some() {
        fix.push("in an emergency, the holder of the break-glass key can admit this exact update with `agentgate break-glass --key KEY --ref REF --old OLD --new NEW --reason TEXT --note` (it is logged and reported)".into());
    }
    Refusal {
        code: Code::PathRefused,
        headline,
        details,
        fix,
    }
}

/// The refusal of agent commits that change guarded paths without enough approvals: each
/// commit with its path, rule and approvals examined, and the command an approver runs.
pub(super) fn approval_refusal(
    ev: &Evaluator<'_>,
    name: &str,
    d: &RefDecision,
    paths: &PathVerdict,
) -> Refusal {
    let mut details = Vec::new();
    for (hits, needed, got) in paths.unapproved.iter().take(MAX_LISTED) {
        let Some(first) = hits.first() else { continue };
        let c = &first.commit;
        details.push(format!(
            "  {} {} needs {needed} approval(s), has {got}:",
            c.short(),
            subject_of(d, c)
        ));
        for h in hits {
            if let PathAction::Approvals(n) = h.action {
                details.push(format!(
                    "      changes {} (pattern {:?} of rule {}: {n} approval(s))",
                    h.path, h.pattern, h.rule
                ));
            }
        }
        for a in d.attestations.iter().filter(|a| &a.commit == c) {
            if a.detail.starts_with("approval") || a.result != crate::attestations::OK {
                details.push(format!("      {} [{}] {}", a.source, a.result, a.detail));
            }
        }
    }
    let (first, needed) = match paths.unapproved.first() {
        Some((hits, n, _)) => (hits.first(), *n),
        None => (None, 1),
    };
    let headline = match first {
        Some(h) => format!(
            "{name}: agent commit {} changes {} (path rule {}) and needs {needed} approval(s) from the policy's approvers",
            h.commit.short(),
            h.path,
            h.rule
        ),
        None => format!("{name}: approvals are missing"),
    };
    let commit = first.map_or_else(|| "<commit>".to_string(), |h| h.commit.to_string());
    let notes = &ev.policy.attest.notes_ref;
    Refusal {
        code: Code::ApprovalMissing,
        headline,
        details,
        fix: vec![
            format!("an approver (not its author) reviews {commit} and signs an approval:"),
            format!("  agentgate approve --key <approver key> --commit {commit} --note"),
            format!(
                "then push the approval first: git push <remote> {notes}, and push {name} again"
            ),
        ],
    }
}

pub(super) fn accept(code: Code) -> Outcome {
    Outcome::Accept(Accept { code, _sealed: () })
}

pub(super) fn refuse(
    code: Code,
    headline: String,
    details: Vec<String>,
    fix: Vec<String>,
) -> Outcome {
    Outcome::Refuse(Refusal {
        code,
        headline,
        details,
        fix,
    })
}

/// A refusal for an object git and a plain reader read differently, or cannot decode.
pub(super) fn object_refusal(name: &str, e: &ObjectError) -> Outcome {
    let (code, headline, fix) = match e {
        ObjectError::Malformed { kind, id, header, reason } => (
            Code::of_object_error(e),
            format!(
                "{name}: {kind} {} has a malformed `{header}` header: {reason}",
                id.get(..12).unwrap_or(id)
            ),
            "git, libgit2 and other tools would read this object differently; recreate it with git (`git commit --amend`, `git rebase`) and push again",
        ),
        ObjectError::EncodingUnsupported { id, encoding, reason } => (
            Code::of_object_error(e),
            format!(
                "{name}: commit {} declares encoding {encoding:?}, which cannot be decoded as git shows it ({reason})",
                id.get(..12).unwrap_or(id)
            ),
            "re-create the commit with a UTF-8 message (git commit --amend with i18n.commitEncoding unset) and push again",
        ),
    };
    refuse(code, headline, vec![e.to_string()], vec![fix.to_string()])
}

pub(super) fn error_refusal(name: &str, e: &DecideError) -> Refusal {
    if let Some(o) = e.object_error() {
        if let Outcome::Refuse(r) = object_refusal(name, o) {
            return r;
        }
    }
    let chain = error_chain(e);
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
    // A break-glass acceptance is never silent.
    for d in decisions {
        if let Some(bg) = &d.break_glass {
            let _ = writeln!(
                out,
                "{prefix}agentgate: BREAK-GLASS [{}] {} {}..{} admitted by an emergency override signed by {}",
                Code::BreakGlass,
                d.update.refname,
                d.update.old.short(),
                d.update.new.short(),
                bg.used.signer
            );
            let _ = writeln!(
                out,
                "{prefix}  it would have been refused [{}] {}",
                bg.overridden, bg.overridden_reason
            );
            let _ = writeln!(
                out,
                "{prefix}  reason: {} ({} <{}>, valid until {})",
                bg.used.reason, bg.used.issuer.name, bg.used.issuer.email, bg.used.expires
            );
            let _ = writeln!(
                out,
                "{prefix}  this use is in the audit log, and `agentgate audit verify` reports it"
            );
        }
    }
    let refused: Vec<&RefDecision> = decisions.iter().filter(|d| !d.accepted()).collect();
    for d in &refused {
        if let Outcome::Refuse(r) = &d.outcome {
            let _ = writeln!(
                out,
                "{prefix}agentgate: refused [{}] {}",
                r.code, r.headline
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
    use crate::decision::RefUpdate;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

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
