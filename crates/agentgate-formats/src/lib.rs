//! Gate attestations: keys, in-toto statements, DSSE envelopes in Sigstore bundles, signing and
//! verification. The hook calls [`verify::verify_bundle`] and the `verify::check_*` functions;
//! the CI signer calls [`sign::sign_statement`].

pub mod bundle;
pub mod cmd;
pub mod dsse;
#[cfg(feature = "keyless-sign")]
pub mod keyless;
pub mod keys;
pub mod sign;
pub mod sigstore;
pub mod statement;
pub mod verify;

pub use keys::{KeyAlgorithm, KeyError, PublicKey, SigningKey};
pub use sign::sign_statement;
pub use statement::{ResourceDescriptor, Statement, TestOutcome};
pub use verify::{verify_bundle, VerifiedAttestation, VerifyError};
