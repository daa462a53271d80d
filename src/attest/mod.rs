//! Gate attestations: keys, in-toto statements, DSSE envelopes in Sigstore bundles, signing and
//! verification. PLACEHOLDER: filled by the attestations issue.

pub mod cmd;
#[cfg(feature = "keyless-sign")]
pub mod keyless;
pub mod sigstore;
