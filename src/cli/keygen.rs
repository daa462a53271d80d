//! `agentgate keygen`: a signing key pair for the gate, in PKCS#8 (or cosign's) format.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_formats::{KeyAlgorithm, SigningKey};
use anyhow::bail;

use crate::signing::{passphrase, write_new};
use crate::terminal::outln;

const KEYGEN_EXAMPLE: &str = "\
Examples:
  agentgate keygen --out ci-gate       # ci-gate.key (0600), ci-gate.pub
  agentgate keygen --out ci-gate --password-env AGENTGATE_KEY_PASSWORD
  agentgate keygen --out ci-gate --ed25519 --prompt

The public key's hint (base64 SHA-256 of the DER SPKI, as cosign computes it) is printed.
Exit codes: 0 written, 2 error.";

#[derive(Debug, clap::Args)]
#[command(after_help = KEYGEN_EXAMPLE)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX")]
    pub out: PathBuf,
    /// Make an Ed25519 key instead of ECDSA P-256.
    #[arg(long)]
    pub ed25519: bool,
    /// Encrypt the private key with the passphrase held in this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "prompt")]
    pub password_env: Option<String>,
    /// Ask for a passphrase on the terminal and encrypt the private key with it.
    #[arg(long)]
    pub prompt: bool,
    /// Write the private key in cosign's format (ENCRYPTED SIGSTORE PRIVATE KEY) instead of
    /// encrypted PKCS#8; needs a passphrase.
    #[arg(long)]
    pub cosign: bool,
    /// Replace existing key files.
    #[arg(long)]
    pub force: bool,
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

pub fn keygen(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let algorithm = if args.ed25519 {
        KeyAlgorithm::Ed25519
    } else {
        KeyAlgorithm::EcdsaP256
    };
    let pass = passphrase(args.password_env.as_deref(), None)?;
    let pass = match (pass, args.prompt) {
        (Some(p), _) => Some(p),
        (None, true) => {
            let a = passphrase(None, Some("Passphrase for the new key: "))?;
            let b = passphrase(None, Some("Same passphrase again: "))?;
            if a != b {
                bail!("the two passphrases differ");
            }
            a
        }
        (None, false) => None,
    };
    if pass.as_ref().is_some_and(|p| p.is_empty()) && !args.cosign {
        bail!("the passphrase is empty; leave out --password-env/--prompt for an unencrypted key");
    }
    let key = SigningKey::generate(algorithm)?;
    let private = match (&pass, args.cosign) {
        (Some(p), true) => key.to_cosign_pem(p)?,
        (None, true) => bail!("--cosign needs a passphrase (--password-env VAR or --prompt)"),
        (p, false) => key.to_pkcs8_pem(p.as_deref().map(|v| v.as_slice()))?,
    };
    let key_path = with_ext(&args.out, ".key");
    let pub_path = with_ext(&args.out, ".pub");
    if !args.force {
        for p in [&key_path, &pub_path] {
            if p.exists() {
                bail!("{} already exists (use --force to replace it)", p.display());
            }
        }
    }
    write_new(&key_path, private.as_bytes(), 0o600, args.force)?;
    write_new(
        &pub_path,
        key.public_key().to_pem().as_bytes(),
        0o644,
        args.force,
    )?;
    outln!(
        "private key: {} ({}{})",
        key_path.display(),
        algorithm.name(),
        if pass.is_some() { ", encrypted" } else { "" }
    );
    outln!("public key:  {}", pub_path.display());
    outln!("key hint:    {}", key.public_key().hint());
    Ok(ExitCode::SUCCESS)
}
