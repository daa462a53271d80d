//! Fuzz target for the policy parser (`config::Policy::parse`). The body lives in
//! `agentgate_fuzz_targets::policy`, which `tests/it/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run policy fuzz/corpus/policy` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::policy(data));
