//! agentgate: refuse pushes of AI-agent commits to protected refs unless a compile-test-sign
//! gate attested exactly that code. The same library is the hook, the CI signer and the
//! verifier; `cli` is the only module that talks to a terminal.

pub mod attest;
pub mod audit;
pub mod cli;
pub mod config;
pub mod demo;
pub mod detect;
pub mod doctor;
pub mod evidence;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod git;
pub mod hook;
pub mod install;
pub mod object;
pub mod push;
pub mod replay;
pub mod trailers;
pub mod walk;
