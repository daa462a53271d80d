//! Fuzz target for keyless Sigstore verification (`attest::sigstore::verify`) with the embedded root. The body lives in
//! `agentgate_fuzz_targets::sigstore_bundle`, which `tests/it/fuzz_smoke.rs` also replays on stable.
//!
//! Run with `cargo +nightly fuzz run sigstore fuzz/corpus/sigstore` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| agentgate_fuzz_targets::sigstore_bundle(data));
