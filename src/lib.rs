//! agentgate's faces: the command line ([`cli`], one file per command), the server hook's
//! runner ([`hook_runner`]), the compile-test-sign gate ([`gate`]), signing shared by `sign`
//! and `gate` ([`signing`]), [`install`], [`doctor`] and [`demo`]. The only crate that prints
//! or chooses exit codes; the decisions themselves are agentgate-policy's, the formats and
//! crypto agentgate-formats', and every repository access agentgate-git's (ARCHITECTURE.md).

pub mod cli;
#[cfg(feature = "gate")]
pub mod demo;
pub mod doctor;
pub mod exit;
#[cfg(feature = "gate")]
pub mod gate;
pub mod hook_runner;
pub mod install;
pub mod owner;
pub mod policy_test;
pub mod signing;
mod terminal;
