//! `agentgate sign-keyless-statement` (hidden: `sign --keyless` and `gate --keyless` are the
//! commands for users; this one signs any statement, for tests and tooling).

use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_keyless::{
    sign_statement_keyless_verified, KeylessConfig, KeylessError, ServiceOverrides,
};
use agentgate_policy::error_chain_distinct;
use anyhow::Context as _;

/// `agentgate sign-keyless-statement` (hidden: `sign --keyless` and `gate --keyless` are the
/// commands for users; this one signs any statement, for tests and tooling).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The identity token is taken from --identity-token / AGENTGATE_IDENTITY_TOKEN, else \
GitHub Actions (needs `permissions: id-token: write`), else GitLab CI's SIGSTORE_ID_TOKEN.\n\n\
Example (GitHub Actions):\n  agentgate sign-keyless-statement --statement provenance.json --out provenance.sigstore.json\n\n\
Exit codes: 0 bundle written, 2 not signed (the message says why)."
)]
pub struct SignKeylessArgs {
    /// The in-toto Statement v1 to sign (JSON).
    #[arg(long, value_name = "FILE")]
    pub statement: PathBuf,
    /// An OIDC identity token (JWT). Prefer the environment variable: arguments are visible
    /// to other users of the machine.
    #[arg(
        long,
        value_name = "JWT",
        env = "AGENTGATE_IDENTITY_TOKEN",
        hide_env_values = true
    )]
    pub identity_token: Option<String>,
    /// Fulcio URL [default: $AGENTGATE_FULCIO_URL, else https://fulcio.sigstore.dev].
    #[arg(long, value_name = "URL")]
    pub fulcio_url: Option<String>,
    /// Rekor (v1) URL [default: $AGENTGATE_REKOR_URL, else https://rekor.sigstore.dev].
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,
    /// RFC 3161 timestamp authority URL [default: $AGENTGATE_TSA_URL, else none].
    #[arg(long, value_name = "URL")]
    pub tsa_url: Option<String>,
    /// Trusted root the new bundle is checked against [default: $AGENTGATE_TRUSTED_ROOT, else
    /// the embedded Sigstore public-good root].
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Where to write the Sigstore bundle.
    #[arg(long, value_name = "BUNDLE")]
    pub out: PathBuf,
}

/// Run `agentgate sign-keyless-statement`.
pub(super) fn sign_keyless_statement(args: &SignKeylessArgs) -> anyhow::Result<ExitCode> {
    let with_code =
        |e: KeylessError| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e));
    let statement = std::fs::read(&args.statement)
        .with_context(|| format!("cannot read statement {}", args.statement.display()))?;
    let cfg = KeylessConfig::from_env(
        args.identity_token.clone(),
        ServiceOverrides {
            fulcio_url: args.fulcio_url.clone(),
            rekor_url: args.rekor_url.clone(),
            tsa_url: args.tsa_url.clone(),
            trusted_root: args.trusted_root.clone(),
        },
    )
    .map_err(with_code)?;
    let (bundle, verified) =
        sign_statement_keyless_verified(&statement, &cfg).map_err(with_code)?;
    std::fs::write(&args.out, format!("{bundle}\n"))
        .with_context(|| format!("cannot write bundle {}", args.out.display()))?;
    eprintln!(
        "agentgate: signed as {} (issuer {}), logged in {}; wrote {}",
        verified.signer,
        verified.issuer.as_deref().unwrap_or("?"),
        cfg.rekor_url,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
