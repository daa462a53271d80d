//! Fuzz target for the commit and tag reader (`object::parse_links`, `read_commit`,
//! `read_tag`). The body lives in `agentgate_fuzz_targets::object`, which `tests/it/fuzz_smoke.rs` also
//! replays on stable.
//!
//! Run with `cargo +nightly fuzz run object fuzz/corpus/object` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::object(data));
