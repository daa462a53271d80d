//! agentgate's policy and decision: the policy file ([`config`]), git's trailer rules
//! ([`trailers`]), agent detection ([`detect`], with git-ai's notes in [`git_ai`]), the decision on each ref update
//! ([`decision`]), the attestations that can admit a commit ([`attestations`]), and the audit
//! log with its re-derivation ([`audit`], [`audit_verify`]). No printing, no processes: git is
//! read through agentgate-git, attestations checked through agentgate-formats, and every
//! outcome is a value ([`code::Code`]) the faces render.

pub mod attestations;
pub mod audit;
pub mod audit_report;
pub mod audit_syslog;
pub mod audit_verify;
pub mod code;
pub mod config;
pub mod decision;
pub mod detect;
pub mod errors;
pub mod git_ai;
pub mod paths;
pub mod promotion;
pub mod trailers;

pub use code::Code;
pub use errors::{error_chain, error_chain_distinct};
