//! Fuzz target for the hook's stdin parser (`decision::parse_updates`). The body lives in
//! `agentgate_fuzz_targets::stdin`, which `tests/it/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run stdin fuzz/corpus/stdin` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::stdin(data));
