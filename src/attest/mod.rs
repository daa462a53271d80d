//! Gate attestations: keys, in-toto statements, DSSE envelopes in Sigstore bundles, signing and
//! verification. PLACEHOLDER: filled by the attestations issue.

pub mod cmd;
pub mod sigstore;
