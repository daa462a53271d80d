//! `agentgate verify`: a release manager's offline check of an artifact against a bundle, by
//! trusted key or by keyless identity.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_formats::statement::{TestOutcome, PREDICATE_TEST_RESULT_V01};
use agentgate_formats::verify::{
    self, SigstoreAttestationError, VerifiedAttestation, VerifiedSigner, VerifyError,
};
use agentgate_formats::{sigstore, AttestationCode, PublicKey};
use agentgate_policy::error_chain_distinct;
use anyhow::{bail, Context as _};
use serde_json::json;

use crate::exit;
use crate::signing::{hash_with_progress, open_repo, resolve_commit};
use crate::terminal::outln;

const VERIFY_EXAMPLE: &str = "\
Examples:
  agentgate verify --bundle attestations/provenance.sigstore.json --key ci-gate.pub \\
      --commit v1.2.0 target/release/app
  agentgate verify --bundle test-result.sigstore.json --key ci-gate.pub sha256:3b0c...
  agentgate verify --bundle provenance.sigstore.json target/release/app \\
      --certificate-oidc-issuer https://token.actions.githubusercontent.com \\
      --certificate-identity-regexp 'https://github\\.com/acme/app/\\.github/workflows/.+'

Keyless bundles are verified offline against the embedded Sigstore public-good trusted root,
or --trusted-root FILE; --certificate-identity-regexp must match the whole identity.
Exit codes: 0 verified, 1 not verified (the reason's code is printed), 2 usage error.";

#[derive(Debug, clap::Args)]
#[command(after_help = VERIFY_EXAMPLE)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["keys", "certificate_identity", "certificate_identity_regexp"])))]
pub struct VerifyArgs {
    /// Bundle file (one Sigstore bundle).
    #[arg(long, required_unless_present = "promotion")]
    pub bundle: Option<PathBuf>,
    /// Check the server's promotion records on exactly this commit instead (any revision):
    /// signed with --key (the server's public key), notes under --promotions-ref in --repo.
    #[arg(long, value_name = "REV", conflicts_with_all = ["bundle", "artifact", "commit", "certificate_identity", "certificate_identity_regexp"])]
    pub promotion: Option<String>,
    /// With --promotion: where the promotion records are.
    #[arg(long, value_name = "REF", default_value = agentgate_policy::config::DEFAULT_PROMOTIONS_REF, requires = "promotion")]
    pub promotions_ref: String,
    /// With --promotion: require a record for this ref (fully qualified, as in sourceRefs).
    #[arg(long = "ref", value_name = "REF", requires = "promotion")]
    pub refname: Option<String>,
    /// Trusted public key (SPKI PEM) of a key-based bundle; repeat to trust several.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// Keyless bundles: the certificate identity (SAN: a workflow URI or an email), matched
    /// exactly.
    #[arg(long, value_name = "IDENTITY", requires = "certificate_oidc_issuer")]
    pub certificate_identity: Option<String>,
    /// Keyless bundles: a regex the whole certificate identity must match (anchored at both
    /// ends).
    #[arg(long, value_name = "REGEX", requires = "certificate_oidc_issuer")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless bundles: the OIDC issuer of the certificate, matched exactly.
    #[arg(long, value_name = "URL", conflicts_with = "keys")]
    pub certificate_oidc_issuer: Option<String>,
    /// Keyless bundles: a custom trusted root (trusted_root.json) instead of the embedded
    /// Sigstore public-good root.
    #[arg(long, value_name = "FILE", conflicts_with = "keys")]
    pub trusted_root: Option<PathBuf>,
    /// Also require that the attestation binds this commit (any revision, or a full hex id).
    #[arg(long)]
    pub commit: Option<String>,
    /// Repository used to resolve --commit.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// The artifact file, or its digest as sha256:HEX.
    #[arg(
        value_name = "ARTIFACT|sha256:HEX",
        required_unless_present = "promotion"
    )]
    pub artifact: Option<String>,
}

fn artifact_digest(arg: &str) -> anyhow::Result<(String, Option<String>)> {
    if let Some(hex) = arg.strip_prefix("sha256:") {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("{arg:?} is not sha256: followed by 64 hex digits");
        }
        return Ok((hex.to_ascii_lowercase(), None));
    }
    let path = Path::new(arg);
    let digest = hash_with_progress(path)
        .with_context(|| format!("cannot hash the artifact {}", path.display()))?;
    Ok((digest, Some(arg.to_string())))
}

fn resolve_commit_arg(repo_path: &Path, rev: &str) -> anyhow::Result<String> {
    // A full object id needs no repository, and need not be in this one (a release verified
    // from another clone, or from no clone at all).
    if (rev.len() == 40 || rev.len() == 64) && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(rev.to_ascii_lowercase());
    }
    let repo = open_repo(repo_path)?;
    Ok(resolve_commit(&repo, rev)?.id.to_string())
}

/// How `verify` authenticates the bundle: trusted keys, or a keyless identity under a root.
enum Trust {
    Keys(Vec<PublicKey>),
    Identity {
        policy: sigstore::SignerPolicy,
        root: Box<sigstore::TrustedRoot>,
    },
}

/// Who signed a verified bundle.
enum Signed {
    Key { hint: String, path: String },
    Identity { identity: String, issuer: String },
}

fn trust(args: &VerifyArgs) -> anyhow::Result<Trust> {
    if !args.keys.is_empty() {
        let mut keys = Vec::new();
        for path in &args.keys {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the public key {}", path.display()))?;
            keys.push(
                PublicKey::from_pem(&text)
                    .with_context(|| format!("cannot load the public key {}", path.display()))?,
            );
        }
        return Ok(Trust::Keys(keys));
    }
    let issuer = args
        .certificate_oidc_issuer
        .clone()
        .context("--certificate-oidc-issuer is required with --certificate-identity")?;
    let identity = match (
        &args.certificate_identity,
        &args.certificate_identity_regexp,
    ) {
        (Some(exact), None) => sigstore::IdentityMatch::Exact(exact.clone()),
        (None, Some(re)) => sigstore::IdentityMatch::regex(re)
            .with_context(|| format!("invalid --certificate-identity-regexp {re:?}"))?,
        _ => bail!("give one of --certificate-identity and --certificate-identity-regexp"),
    };
    let root = match &args.trusted_root {
        Some(path) => sigstore::trusted_root_from_file(path),
        None => sigstore::public_good_root(),
    }
    .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e)))?;
    Ok(Trust::Identity {
        policy: sigstore::SignerPolicy::Identity { issuer, identity },
        root: Box::new(root),
    })
}

/// Why the bundle is not verified: its stable code and a sentence.
type Refused = (AttestationCode, String);

fn refused(e: VerifyError) -> Refused {
    (e.code(), e.to_string())
}

/// Authenticate the bundle: Ok, a refusal, or an unusable input (Err).
fn authenticate(
    args: &VerifyArgs,
    trust: &Trust,
    bundle: &[u8],
    digest: &str,
) -> anyhow::Result<Result<(VerifiedAttestation, Signed), Refused>> {
    match trust {
        Trust::Keys(keys) => Ok(verify::verify_bundle(bundle, keys)
            .and_then(|att| {
                let VerifiedSigner::Key { index, hint } = att.signer() else {
                    return Err(VerifyError::NotKeyBased);
                };
                let signed = Signed::Key {
                    hint: hint.clone(),
                    path: args
                        .keys
                        .get(*index)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                };
                Ok((att, signed))
            })
            .map_err(refused)),
        Trust::Identity { policy, root } => {
            let mut sha = [0u8; 32];
            hex::decode_to_slice(digest, &mut sha).context("the artifact digest is not hex")?;
            let artifact = sigstore::ArtifactInput::Sha256(sha);
            let att = match verify::verify_sigstore(bundle, &artifact, policy, root) {
                Ok(att) => att,
                Err(SigstoreAttestationError::Sigstore(
                    e @ (sigstore::SigstoreError::Read { .. }
                    | sigstore::SigstoreError::ArtifactDigest(_)
                    | sigstore::SigstoreError::PublicKey(_)
                    | sigstore::SigstoreError::TrustedRoot(_)),
                )) => bail!("[{}] {}", e.code(), error_chain_distinct(&e)),
                Err(SigstoreAttestationError::Sigstore(e)) => {
                    return Ok(Err((e.code(), error_chain_distinct(&e))))
                }
                Err(SigstoreAttestationError::Statement(e)) => return Ok(Err(refused(e))),
            };
            let VerifiedSigner::Identity {
                identity, issuer, ..
            } = att.signer()
            else {
                return Ok(Err(refused(VerifyError::NotDsse)));
            };
            let signed = Signed::Identity {
                identity: identity.clone(),
                issuer: issuer.clone().unwrap_or_default(),
            };
            Ok(Ok((att, signed)))
        }
    }
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(rev) = &args.promotion {
        return super::verify_promotion::verify_promotion(args, rev);
    }
    let trust = trust(args)?;
    let (Some(bundle_path), Some(artifact)) = (&args.bundle, &args.artifact) else {
        bail!("--bundle and an artifact are required");
    };
    let bundle = std::fs::read(bundle_path)
        .with_context(|| format!("cannot read the bundle {}", bundle_path.display()))?;
    let commit = args
        .commit
        .as_deref()
        .map(|c| resolve_commit_arg(&args.repo, c))
        .transpose()?;
    let (digest, artifact_path) = artifact_digest(artifact)?;

    let outcome = authenticate(args, &trust, &bundle, &digest)?.and_then(|(att, signed)| {
        verify::check_artifact(&att, &digest).map_err(refused)?;
        if let Some(c) = &commit {
            verify::check_commit(&att, c).map_err(refused)?;
        }
        let tests = if att.predicate_type() == PREDICATE_TEST_RESULT_V01 {
            verify::check_tests_passed(&att).map_err(refused)?;
            Some(TestOutcome::Passed)
        } else {
            None
        };
        Ok((att, signed, tests))
    });

    match outcome {
        Ok((att, signed, tests)) => {
            if args.json {
                let mut v = json!({
                    "verified": true,
                    "predicateType": att.predicate_type(),
                    "artifact": {"sha256": digest, "path": artifact_path},
                    "commit": commit,
                    "testResult": tests.map(TestOutcome::as_str),
                    "payloadSha256": att.payload_sha256(),
                });
                match &signed {
                    Signed::Key { hint, path } => {
                        v["signerKeyHint"] = json!(hint);
                        v["signerKey"] = json!(path);
                    }
                    Signed::Identity { identity, issuer } => {
                        v["signerIdentity"] = json!(identity);
                        v["signerIssuer"] = json!(issuer);
                    }
                }
                outln!("{v}");
            } else {
                outln!("verified: {}", att.predicate_type());
                match &signed {
                    Signed::Key { hint, path } => outln!("  signer key   {hint} ({path})"),
                    Signed::Identity { identity, issuer } => {
                        outln!("  signer       {identity}");
                        outln!("  issuer       {issuer}");
                    }
                }
                outln!(
                    "  artifact     sha256:{digest}{}",
                    artifact_path.map(|p| format!(" ({p})")).unwrap_or_default()
                );
                match &commit {
                    Some(c) => outln!("  commit       {c} (bound by the statement)"),
                    None => outln!("  commit       not checked (no --commit)"),
                }
                if let Some(t) = tests {
                    outln!("  test result  {}", t.as_str());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err((code, error)) => {
            if args.json {
                outln!(
                    "{}",
                    json!({"verified": false, "code": code, "error": error})
                );
            } else {
                eprintln!("agentgate: not verified [{code}]: {error}");
            }
            Ok(ExitCode::from(exit::REFUSED))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_argument() {
        assert_eq!(
            artifact_digest(&format!("sha256:{}", "A".repeat(64)))
                .unwrap()
                .0,
            "a".repeat(64)
        );
        assert!(artifact_digest("sha256:abc").is_err());
    }
}
