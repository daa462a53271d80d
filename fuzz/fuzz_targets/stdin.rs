//! Fuzz target for the hook's stdin parser (`hook::parse_updates`). The body lives in
//! `agentgate::fuzzing::stdin`, which `tests/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run stdin fuzz/corpus/stdin` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate::fuzzing::stdin(data));
