//! The statements people sign, next to the gate's: a human approval of one commit (or its tree)
//! and a break-glass override of one exact ref update. Both are in-toto Statement v1 with a
//! predicate under agentgate's own URI, carried in the same Sigstore bundles and git notes as
//! gate attestations.
//!
//! Why our own predicate types: in-toto's vetted predicates have no review or override. The
//! proposed `https://in-toto.io/attestation/human-review/v0.1` (and its `vcs` variant) was never
//! vetted, carries no comment or reviewer identity of its own (`result`, `reviewLink`,
//! `timestamp`), and its VCS variant is signed by a review service on behalf of the reviewers.
//! gittuf's `https://gittuf.dev/reference-authorization/v0.1` approves a ref update (`targetRef`,
//! `fromRevisionID`, `targetTreeID`), not a commit. The approval predicate keeps the names
//! human-review uses for what they share (`result`, `timestamp`) so a reader of one understands
//! the other; the override borrows gittuf's binding of a ref update (ref, from, to) and adds an
//! expiry. Every field is documented in README.md ("Approvals and break-glass").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::statement::{
    ResourceDescriptor, Statement, DIGEST_GIT_COMMIT, DIGEST_GIT_TREE, DIGEST_SHA256,
};

/// Predicate type of a human approval of a commit.
pub const PREDICATE_APPROVAL_V01: &str = "https://example.invalid/agentgate/approval/v0.1";
/// Predicate type of a break-glass override of one ref update.
pub const PREDICATE_BREAK_GLASS_V01: &str = "https://example.invalid/agentgate/break-glass/v0.1";
/// The only `result` an approval has: a refusal is not signed, it is simply not given.
pub const APPROVAL_RESULT: &str = "approved";

/// Who signed, as they say (informational: the policy decides who a key or identity is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    pub email: String,
}

/// The approval predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Approval {
    /// Always `approved`.
    pub result: String,
    /// The reviewer as they name themselves (git's user.name and user.email by default).
    pub reviewer: Person,
    /// When the approval was signed (the reviewer's clock).
    pub timestamp: DateTime<Utc>,
    /// What the reviewer wants to say, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The repository, as the reviewer's clone names it (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// The break-glass predicate: one exact ref update, until an expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BreakGlass {
    /// The ref as the push names it (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub refname: String,
    /// Its value before the push (the zero id when the push creates it).
    pub old: String,
    /// Its value after the push, exactly as pushed (a tag object stays a tag object).
    pub new: String,
    /// Why, in the words of whoever broke the glass.
    pub reason: String,
    pub issuer: Person,
    pub issued_at: DateTime<Utc>,
    /// After this the override admits nothing.
    pub expires: DateTime<Utc>,
}

/// The commit as a subject: its id, and the SHA-256 of the commit object as git hashes it
/// (`commit <size>\0<content>`), which is what a Sigstore log entry can name.
fn commit_subject(name: &str, commit: &str, object_sha256: &str) -> ResourceDescriptor {
    let mut d = ResourceDescriptor::named(name, DIGEST_GIT_COMMIT, commit);
    d.digest
        .insert(DIGEST_SHA256.to_string(), object_sha256.to_string());
    d
}

/// SHA-256 (hex) of a commit object as git hashes it, from its content.
pub fn commit_object_sha256(content: &[u8]) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(format!("commit {}\0", content.len()).as_bytes());
    h.update(content);
    hex::encode(h.finalize())
}

/// The approval of `commit` (and its `tree`): both ids are subjects, so the policy's `bind`
/// picks which one counts.
pub fn approval_statement(
    commit: &str,
    tree: &str,
    commit_sha256: &str,
    approval: &Approval,
) -> Statement {
    Statement::new(
        vec![
            commit_subject("commit", commit, commit_sha256),
            ResourceDescriptor::named("tree", DIGEST_GIT_TREE, tree),
        ],
        PREDICATE_APPROVAL_V01,
        serde_json::to_value(approval).unwrap_or_default(),
    )
}

/// The override of `bg.refname` from `bg.old` to `bg.new`; its subject is the commit the new
/// value peels to (`new_commit`), where the note that carries it hangs.
pub fn break_glass_statement(new_commit: &str, commit_sha256: &str, bg: &BreakGlass) -> Statement {
    Statement::new(
        vec![commit_subject(&bg.refname, new_commit, commit_sha256)],
        PREDICATE_BREAK_GLASS_V01,
        serde_json::to_value(bg).unwrap_or_default(),
    )
}

impl Statement {
    /// The predicate as an approval, if that is its type and it parses.
    pub fn approval(&self) -> Option<Result<Approval, serde_json::Error>> {
        (self.predicate_type == PREDICATE_APPROVAL_V01)
            .then(|| Approval::deserialize(&self.predicate))
    }

    /// The predicate as a break-glass override, if that is its type and it parses.
    pub fn break_glass(&self) -> Option<Result<BreakGlass, serde_json::Error>> {
        (self.predicate_type == PREDICATE_BREAK_GLASS_V01)
            .then(|| BreakGlass::deserialize(&self.predicate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_round_trips_and_is_strict() {
        let a = Approval {
            result: APPROVAL_RESULT.into(),
            reviewer: Person {
                name: "Ada".into(),
                email: "ada@example.com".into(),
            },
            timestamp: DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            comment: Some("looked at the workflow".into()),
            repository: None,
        };
        let st = approval_statement(&"a".repeat(40), &"b".repeat(40), &"c".repeat(64), &a);
        assert_eq!(st.predicate_type, PREDICATE_APPROVAL_V01);
        assert!(st
            .subjects_with_digest(DIGEST_GIT_COMMIT, &"A".repeat(40))
            .next()
            .is_some());
        assert_eq!(st.approval().unwrap().unwrap(), a);
        assert!(st.break_glass().is_none());
        let mut extra = st.clone();
        extra.predicate["approvedEverything"] = serde_json::json!(true);
        assert!(extra.approval().unwrap().is_err(), "unknown fields refused");
    }

    #[test]
    fn break_glass_round_trips() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let bg = BreakGlass {
            refname: "refs/heads/main".into(),
            old: "1".repeat(40),
            new: "2".repeat(40),
            reason: "outage".into(),
            issuer: Person {
                name: "On Call".into(),
                email: "oncall@example.com".into(),
            },
            issued_at: t,
            expires: t + chrono::Duration::hours(1),
        };
        let st = break_glass_statement(&"2".repeat(40), &"c".repeat(64), &bg);
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["predicate"]["ref"], "refs/heads/main");
        assert_eq!(json["predicate"]["issuedAt"], "2026-01-01T12:00:00Z");
        assert_eq!(st.break_glass().unwrap().unwrap(), bg);
    }
}
