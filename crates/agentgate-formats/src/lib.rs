//! Gate attestations as data: in-toto statements, DSSE envelopes in Sigstore bundles, keys,
//! signing, key-based verification and offline Sigstore (keyless) verification. The hook calls
//! [`verify::verify_bundle`] / [`verify::verify_sigstore`] and the `verify::check_*` functions;
//! the CI signer calls [`sign::sign_statement`]. No git, no command line, no printing, no
//! processes: what this crate says about a bundle depends on its bytes and the trust given.

pub mod approval;
pub mod bundle;
pub mod checkpoint;
pub mod dsse;
pub mod examine;
pub mod keys;
pub mod reason;
pub mod sign;
pub mod sigstore;
pub mod statement;
pub mod verify;
pub mod vsa;

pub use keys::{KeyAlgorithm, KeyError, PublicKey, SigningKey};
pub use reason::{AttestationCode, VerifyError};
pub use sign::sign_statement;
pub use statement::{ResourceDescriptor, Statement, TestOutcome};
pub use verify::{verify_bundle, VerifiedAttestation, VerifiedSigner};
