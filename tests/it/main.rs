//! agentgate's integration tests, one binary (linked once, `tests/common` compiled once): real
//! `git`, real pushes into bare repositories with the hook installed, the real `agentgate`
//! binary, third-party verifiers. One module per area; run one area with
//! `cargo test --test it AREA::` (for example `cargo test --test it bypass::`).

mod common;
mod promise;

// The layout's rules (ARCHITECTURE.md).
mod architecture;

// The hook: decisions, refusals and how it fails.
mod approvals;
mod audit;
mod audit_trail;
mod bypass;
mod detect;
mod fail_closed;
mod hook;
mod load;
mod promise_cases;
mod promise_model;
mod promotion;
mod report;
mod syslog;
mod system_policy;
mod walk;

// Reading as git reads: objects, trailers.
mod objects_differential;
mod paths_differential;
mod trailers_differential;

// Attestations: signing, verifying, and what the hook makes of them.
mod attest;
mod attest_claims;
mod attest_hook;
mod conformance;
mod interop;
mod keyless_hook;
mod keyless_sign;
mod keyless_verify;
mod release;
mod trust_root;

// The compile-test-sign gate.
#[cfg(feature = "gate")]
mod gate;
#[cfg(feature = "gate")]
mod gate_hostile;

// Installation on real Git servers, and the admin's tools.
mod help;
mod install;
mod key_rotation;
mod ownership;
mod policy_tool;
mod readme_server;
mod servers;

// The fuzz targets' bodies on stable.
mod fuzz_smoke;
