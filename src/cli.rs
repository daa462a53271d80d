//! The command line: the one place that parses arguments, prints to a terminal and turns
//! results into exit codes (0 accept/success, 1 refuse/failed check, 2 configuration or usage
//! error).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code for a configuration or usage error.
pub const EXIT_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "agentgate",
    version,
    about = "Let AI-agent commits into protected branches only through a compile-test-sign gate"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a signing key pair: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (SPKI PEM).
    Keygen(crate::attest::cmd::KeygenArgs),
    /// Sign provenance and test-result attestations for a commit's artifacts.
    Sign(crate::attest::cmd::SignArgs),
    /// Verify an artifact against a Sigstore bundle, offline.
    Verify(crate::attest::cmd::VerifyArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Keygen(a) => crate::attest::cmd::keygen(a),
        Command::Sign(a) => crate::attest::cmd::sign(a),
        Command::Verify(a) => crate::attest::cmd::verify(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("agentgate: error: {e:#}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
