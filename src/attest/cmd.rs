//! The `keygen`, `sign` and `verify` commands. PLACEHOLDER: filled by the attestations issue.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Write PREFIX.key and PREFIX.pub.
    #[arg(long, value_name = "PREFIX")]
    pub out: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Private key file.
    #[arg(long)]
    pub key: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Bundle file.
    #[arg(long)]
    pub bundle: std::path::PathBuf,
}

pub fn keygen(_args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("keygen is not built yet")
}

pub fn sign(_args: &SignArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sign is not built yet")
}

pub fn verify(_args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("verify is not built yet")
}
