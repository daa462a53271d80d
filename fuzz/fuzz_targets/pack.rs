//! Fuzz target for the pack reader (`agentgate_git`'s `pack.rs`: version-2 `.idx` files and
//! whole pack entries, read for long walks). The body lives in `agentgate_fuzz_targets::pack`,
//! which `tests/it/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run pack fuzz/corpus/pack` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::pack(data));
