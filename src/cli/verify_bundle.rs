//! `agentgate verify-bundle` (hidden): the sigstore-conformance client protocol over
//! agentgate-formats' offline Sigstore verification.

use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_formats::sigstore::{
    public_good_root, staging_root, trusted_root_from_file, verify, ArtifactInput, IdentityMatch,
    ManagedKey, SignerPolicy, SigstoreError,
};
use agentgate_policy::error_chain_distinct;
use anyhow::Context as _;

use crate::exit;

/// `agentgate verify-bundle`: the sigstore-conformance CLI protocol
/// (`verify-bundle [--staging] --bundle F (--certificate-identity I --certificate-oidc-issuer U
/// | --key PEM) [--trusted-root F] FILE_OR_sha256:HEX`), judged by exit code.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 verified, 1 refused, 2 unusable arguments or inputs.\n\n\
Example:\n  agentgate verify-bundle --bundle app.sigstore.json \\\n    \
--certificate-identity https://github.com/acme/app/.github/workflows/gate.yml@refs/heads/main \\\n    \
--certificate-oidc-issuer https://token.actions.githubusercontent.com app.tar.gz"
)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "certificate_identity", "certificate_identity_regexp"])))]
pub struct VerifyBundleArgs {
    /// The Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// Managed-key bundles: the signer's SPKI PEM public key.
    #[arg(long, value_name = "PEM", conflicts_with_all = ["certificate_identity", "certificate_identity_regexp", "certificate_oidc_issuer"])]
    pub key: Option<PathBuf>,
    /// Keyless bundles: the certificate identity (SAN), matched exactly.
    #[arg(
        long,
        value_name = "IDENTITY",
        requires = "certificate_oidc_issuer",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Keyless bundles: a regex the whole certificate identity must match (anchored).
    #[arg(long, value_name = "REGEX", requires = "certificate_oidc_issuer")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless bundles: the OIDC issuer, matched exactly.
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// A custom trusted root (trusted_root.json) instead of the embedded public-good root.
    /// Takes precedence over --staging (the conformance suite may pass both).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Use the embedded Sigstore staging trusted root.
    #[arg(long)]
    pub staging: bool,
    /// The artifact file, or `sha256:<hex>` of it.
    #[arg(value_name = "FILE_OR_sha256:HEX")]
    pub artifact: String,
}

/// Run `agentgate verify-bundle`: exit 0 when the bundle verifies, 1 when it does not; errors
/// in the arguments or unusable inputs are returned (the caller exits 2).
pub(super) fn verify_bundle(args: &VerifyBundleArgs) -> anyhow::Result<ExitCode> {
    let policy = match (&args.key, &args.certificate_oidc_issuer) {
        (Some(key), _) => SignerPolicy::Key(ManagedKey::from_pem_file(key)?),
        (None, Some(issuer)) => {
            let identity = match (
                &args.certificate_identity,
                &args.certificate_identity_regexp,
            ) {
                (Some(exact), _) => IdentityMatch::Exact(exact.clone()),
                (None, Some(re)) => IdentityMatch::regex(re)
                    .with_context(|| format!("invalid --certificate-identity-regexp {re:?}"))?,
                (None, None) => anyhow::bail!(
                    "--certificate-identity or --certificate-identity-regexp is required"
                ),
            };
            SignerPolicy::Identity {
                issuer: issuer.clone(),
                identity,
            }
        }
        (None, None) => anyhow::bail!("--key or --certificate-oidc-issuer is required"),
    };
    let trusted_root = match (&args.trusted_root, args.staging) {
        (Some(path), _) => trusted_root_from_file(path)?,
        (None, true) => staging_root()?,
        (None, false) => public_good_root()?,
    };
    let artifact = ArtifactInput::from_cli_arg(&args.artifact)?;
    let bundle = std::fs::read(&args.bundle)
        .with_context(|| format!("cannot read bundle {}", args.bundle.display()))?;
    match verify(&bundle, &artifact, &policy, &trusted_root) {
        Ok(v) => {
            let issuer = v
                .issuer
                .as_deref()
                .map(|i| format!(" (issuer {i})"))
                .unwrap_or_default();
            println!("OK: signed by {}{issuer}", v.signer);
            Ok(ExitCode::SUCCESS)
        }
        // Unusable inputs are usage/configuration errors (exit 2), not verdicts on the bundle.
        Err(
            e @ (SigstoreError::Read { .. }
            | SigstoreError::ArtifactDigest(_)
            | SigstoreError::PublicKey(_)
            | SigstoreError::TrustedRoot(_)),
        ) => Err(anyhow::anyhow!(
            "[{}] {}",
            e.code(),
            error_chain_distinct(&e)
        )),
        Err(e) => {
            eprintln!(
                "agentgate: verification failed [{}]: {}",
                e.code(),
                error_chain_distinct(&e)
            );
            Ok(ExitCode::from(exit::REFUSED))
        }
    }
}
