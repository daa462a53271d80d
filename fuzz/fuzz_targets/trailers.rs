//! Fuzz target for the trailer parser: it must never panic, and what it returns must look like what git prints. The body lives in
//! `agentgate_fuzz_targets::trailers`, which `tests/it/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run trailers fuzz/corpus/trailers` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::trailers(data));
