//! Fuzz target for the key-based bundle parser and verifier with a fixed key, and every `check_*`. The body lives in
//! `agentgate_fuzz_targets::bundle`, which `tests/it/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run bundle fuzz/corpus/bundle` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::bundle(data));
