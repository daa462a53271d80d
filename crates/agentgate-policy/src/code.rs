//! The reason code of every decision, acceptances and refusals alike: one enum from the
//! evaluator to the messages, the audit log and `audit verify`. Codes are compared as values;
//! their kebab-case strings are what pushers, logs and scripts see, and never change.

use std::fmt;

/// Declares [`Code`] from one table, so that a variant and its string cannot drift.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// Stable codes for refusals (and acceptances), used in messages, the audit log and
        /// tests.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The code as pushers, logs and scripts see it (kebab-case).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// The code a string names (an audit record's), if any.
            pub fn parse(s: &str) -> Option<Code> {
                match s {
                    $($text => Some(Code::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    // Acceptances.
    Unprotected = "unprotected",
    NoChange = "no-change",
    NoAgentCommits = "no-agent-commits",
    Attested = "attested",
    DangerDeleteAllowed = "danger-delete-allowed",
    NotesAppended = "notes-appended",
    /// Attested, and every agent commit a path rule asks approvals for has them.
    Approved = "approved",
    /// Admitted by a break-glass override although it would have been refused: the promise
    /// does not hold for it (THREAT_MODEL.md). Every use is loud: messages, the audit record's
    /// `break_glass` object, `audit verify`.
    BreakGlass = "break-glass",
    // Refusals.
    AgentCommitUnattested = "agent-commit-unattested",
    /// A `[[detect.action]]` with `do = "refuse"` matched an entering agent commit.
    AgentCommitRefused = "agent-commit-refused",
    /// A `[[detect.action]]` with `do = "require-trailer"`: an entering agent commit lacks the
    /// trailer, or has it in the wrong form.
    AgentTrailerMissing = "agent-trailer-missing",
    /// An agent commit changes a path a `[[path_rule]]` refuses.
    PathRefused = "path-refused",
    /// An agent commit changes a path a `[[path_rule]]` guards, without enough approvals.
    ApprovalMissing = "approval-missing",
    ProtectedRefDelete = "protected-ref-delete",
    NonFastForward = "non-fast-forward",
    NotACommit = "not-a-commit",
    UnknownObject = "unknown-object",
    ObjectMalformed = "object-malformed",
    EncodingUnsupported = "encoding-unsupported",
    NotesRewrite = "notes-rewrite",
    /// A client push to the server's promotion records (`[server] promotions_ref`).
    PromotionsRefReserved = "promotions-ref-reserved",
    DeadlineExceeded = "deadline-exceeded",
    StdinMalformed = "stdin-malformed",
    GitError = "git-error",
    PolicyMissing = "policy-missing",
    PolicyUnreadable = "policy-unreadable",
    PolicyInvalid = "policy-invalid",
    AuditFailed = "audit-failed",
    AttestationsUnreadable = "attestations-unreadable",
    InternalError = "internal-error",
}

impl Code {
    /// The policy could not be loaded, so nothing could be decided (every update refused).
    pub fn is_policy_error(self) -> bool {
        matches!(
            self,
            Code::PolicyMissing | Code::PolicyUnreadable | Code::PolicyInvalid
        )
    }

    /// A refusal a break-glass override may turn into an acceptance: what the policy asks of
    /// commits (attestations, trailer policies, path rules, approvals) and of history (no rewinds). Never a
    /// deletion (nothing to bind the override to, and history lost), objects git would read
    /// otherwise or cannot find (nobody could say what was admitted), a rewrite of the notes
    /// that hold the evidence (an override could erase its own trace), or a decision that
    /// could not be made (errors, deadline, policy, audit: fail closed).
    pub fn is_overridable(self) -> bool {
        matches!(
            self,
            Code::AgentCommitUnattested
                | Code::AgentCommitRefused
                | Code::AgentTrailerMissing
                | Code::PathRefused
                | Code::ApprovalMissing
                | Code::NonFastForward
        )
    }

    /// The code for an object git and a plain reader read differently, or cannot decode.
    pub fn of_object_error(e: &agentgate_git::ObjectError) -> Code {
        match e {
            agentgate_git::ObjectError::Malformed { .. } => Code::ObjectMalformed,
            agentgate_git::ObjectError::EncodingUnsupported { .. } => Code::EncodingUnsupported,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for &c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{s}"
            );
            assert_eq!(Code::parse(s), Some(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(Code::parse("policy-foo"), None);
        // What break-glass may lift: what commits need and rewinds, nothing else.
        let overridable: Vec<&str> = Code::ALL
            .iter()
            .filter(|c| c.is_overridable())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            overridable,
            [
                "agent-commit-unattested",
                "agent-commit-refused",
                "agent-trailer-missing",
                "path-refused",
                "approval-missing",
                "non-fast-forward"
            ]
        );
        assert!(Code::PolicyInvalid.is_policy_error());
        assert!(!Code::GitError.is_policy_error());
    }
}
