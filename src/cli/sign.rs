//! `agentgate sign`: sign provenance and test-result attestations for a commit's artifacts
//! (built and tested elsewhere; `agentgate gate` builds and tests them itself).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_formats::statement::{
    provenance_statement, test_result_statement, Artifact, JunitSummary, ProvenanceParams,
    ResourceDescriptor, Source, Statement, TestOutcome, TestResult, DIGEST_GIT_COMMIT,
    DIGEST_SHA256,
};
use agentgate_policy::config::DEFAULT_NOTES_REF;
use anyhow::{bail, Context as _};
use chrono::{SubsecRound as _, Utc};
use serde_json::json;

use crate::signing::{
    hash_with_progress, invocation_id, load_junit, load_signing_key, open_repo, publish_bundles,
    resolve_commit, source_of, SignedBy, Signer,
};
use crate::terminal::outln;

/// SLSA buildType of attestations made by `agentgate sign` (the gate will use its own).
pub const SIGN_BUILD_TYPE: &str = agentgate_formats::statement::BUILD_TYPE_SIGN_V1;
/// Why `sign` without an outcome is a usage error: a test result nobody vouched for says
/// PASSED about tests that may never have run.
const SIGN_NEEDS_OUTCOME: &str =
    "sign needs the test outcome: pass --junit FILE (a JUnit XML report) or --test-result passed|failed";
/// Default builder id of `agentgate sign`; CI should pass its own workload identity.
pub const SIGN_DEFAULT_BUILDER_ID: &str = "https://example.invalid/agentgate/builders/sign";

const SIGN_EXAMPLE: &str = "\
Example:
  agentgate sign --key ci-gate.key --commit HEAD --artifact target/release/app \\
      --junit target/junit.xml --out attestations --note
  git push origin refs/notes/agentgate
  agentgate sign --keyless --commit HEAD --artifact target/release/app \\
      --junit junit.xml --note

Writes a SLSA provenance and a test-result attestation (Sigstore bundles, DSSE, in-toto v1);
the test result names the provenance of the same run. The test outcome is required: --junit
(a JUnit XML report) or --test-result passed|failed.
Without --out or --note the two bundles are printed as JSON Lines.
Exit codes: 0 signed, 2 error.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestResultArg {
    Passed,
    Failed,
}

#[derive(Debug, clap::Args)]
#[command(after_help = SIGN_EXAMPLE)]
pub struct SignArgs {
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Repository (any path inside it).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The commit the artifacts were built from (any revision).
    #[arg(long)]
    pub commit: String,
    /// Artifact file to attest (repeatable).
    #[arg(long = "artifact", value_name = "PATH", required = true, num_args = 1..)]
    pub artifacts: Vec<PathBuf>,
    /// Test outcome to record; with --junit, failures in the report make it FAILED regardless.
    /// One of --test-result and --junit is required: nothing is signed as tested unless the
    /// caller says how the tests went.
    #[arg(long, value_enum)]
    pub test_result: Option<TestResultArg>,
    /// JUnit XML report: passed and failed test names are recorded.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write DIR/provenance.sigstore.json and DIR/test-result.sigstore.json.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Append both bundles (one per line) to the git note on the commit.
    #[arg(long)]
    pub note: bool,
    /// Notes ref used by --note.
    #[arg(long, value_name = "REF", default_value = DEFAULT_NOTES_REF)]
    pub notes_ref: String,
    /// SLSA builder id: the identity of whatever runs this (a CI workflow URL, a runner name).
    #[arg(long, value_name = "URI", default_value = SIGN_DEFAULT_BUILDER_ID)]
    pub builder_id: String,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How `sign`, `approve` and `break-glass` sign: a private key (and its passphrase), or
/// keylessly.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("signing").required(true).args(["key", "keyless"])))]
pub struct SigningArgs {
    /// Private key file (PKCS#8 PEM, encrypted PKCS#8, SEC1, or cosign.key).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Environment variable holding the private key's passphrase.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["prompt", "keyless"])]
    pub password_env: Option<String>,
    /// Ask for the private key's passphrase on the terminal.
    #[arg(long, conflicts_with = "keyless")]
    pub prompt: bool,
    #[command(flatten)]
    pub keyless: KeylessArgs,
}

impl SigningArgs {
    /// The signer these options name (the key is read, and its passphrase asked for, now).
    pub fn signer(&self) -> anyhow::Result<Signer> {
        match &self.key {
            Some(key) => Ok(Signer::Key(load_signing_key(
                key,
                self.password_env.as_deref(),
                self.prompt,
                "--password-env VAR or --prompt",
            )?)),
            None => Signer::keyless(&self.keyless),
        }
    }
}

/// Keyless signing options, shared by `sign` and `gate`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KeylessArgs {
    /// Sign keylessly (Sigstore): an OIDC identity token buys a short-lived Fulcio certificate,
    /// and each signature is logged in Rekor. The token is --identity-token, else requested
    /// from GitHub Actions (`permissions: id-token: write`), else GitLab CI's SIGSTORE_ID_TOKEN.
    #[arg(long)]
    pub keyless: bool,
    /// With --keyless: an OIDC identity token (JWT). Prefer the environment variable:
    /// arguments are visible to other users of the machine.
    #[arg(
        long,
        value_name = "JWT",
        env = "AGENTGATE_IDENTITY_TOKEN",
        hide_env_values = true
    )]
    pub identity_token: Option<String>,
    /// With --keyless: Fulcio URL [default: $AGENTGATE_FULCIO_URL, else https://fulcio.sigstore.dev].
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub fulcio_url: Option<String>,
    /// With --keyless: Rekor (v1) URL [default: $AGENTGATE_REKOR_URL, else https://rekor.sigstore.dev].
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub rekor_url: Option<String>,
    /// With --keyless: RFC 3161 timestamp authority URL [default: $AGENTGATE_TSA_URL, else none].
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub tsa_url: Option<String>,
    /// With --keyless: the trusted root each new bundle is checked against before it is
    /// published [default: $AGENTGATE_TRUSTED_ROOT, else the embedded Sigstore public-good root].
    #[arg(long, value_name = "FILE", conflicts_with = "key")]
    pub trusted_root: Option<PathBuf>,
}

#[cfg(feature = "keyless-sign")]
impl KeylessArgs {
    pub(crate) fn overrides(&self) -> agentgate_keyless::ServiceOverrides {
        agentgate_keyless::ServiceOverrides {
            fulcio_url: self.fulcio_url.clone(),
            rekor_url: self.rekor_url.clone(),
            tsa_url: self.tsa_url.clone(),
            trusted_root: self.trusted_root.clone(),
        }
    }
}

/// Sign: the signer first (a wrong passphrase fails before any work), then the commit, the
/// artifacts, the test result, the two statements, the bundles, and where they go.
pub fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    if args.junit.is_none() && args.test_result.is_none() {
        bail!(SIGN_NEEDS_OUTCOME);
    }
    let started_on = Utc::now().trunc_subsecs(0);
    let signer = args.signing.signer()?;
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, &args.commit)?;
    let source = source_of(&repo, &commit)?;
    let artifacts = hash_artifacts(args)?;
    let (test_result, outcome) = test_result(args, &source)?;
    let provenance = provenance(args, &source, &artifacts, outcome, started_on);
    let tests = test_result_statement(&source, &artifacts, &test_result, &provenance)?;
    let (provenance_bundle, tests_bundle, signed_by) = signer.sign_pair(&provenance, &tests)?;
    let written = publish_bundles(
        &repo,
        &commit.id,
        &provenance_bundle,
        &tests_bundle,
        args.out.as_deref(),
        args.note.then_some(args.notes_ref.as_str()),
    )?;
    let signed = Signed {
        source: &source,
        artifacts: &artifacts,
        outcome,
        provenance_bundle: &provenance_bundle,
        tests_bundle: &tests_bundle,
        signed_by: &signed_by,
        written: &written,
    };
    report(args, &signed)?;
    Ok(ExitCode::SUCCESS)
}

/// The artifacts by name and SHA-256.
fn hash_artifacts(args: &SignArgs) -> anyhow::Result<Vec<Artifact>> {
    let mut artifacts = Vec::new();
    for path in &args.artifacts {
        let sha256 = hash_with_progress(path)
            .with_context(|| format!("cannot hash the artifact {}", path.display()))?;
        artifacts.push(Artifact {
            name: path.to_string_lossy().replace('\\', "/"),
            sha256,
        });
    }
    Ok(artifacts)
}

/// The test result the caller vouches for: `--test-result`, refined by a JUnit report (a
/// failure in it makes the result FAILED whatever was claimed; a report in which nothing ran
/// makes it WARNED).
fn test_result(args: &SignArgs, source: &Source) -> anyhow::Result<(TestResult, TestOutcome)> {
    let mut configuration = vec![ResourceDescriptor {
        uri: Some(source.uri.clone()),
        digest: BTreeMap::from([(DIGEST_GIT_COMMIT.to_string(), source.commit.clone())]),
        ..Default::default()
    }];
    let (junit, outcome) = match &args.junit {
        Some(path) => {
            let (summary, digest) = load_junit(path)?;
            configuration.push(ResourceDescriptor::named(
                path.to_string_lossy().replace('\\', "/"),
                DIGEST_SHA256,
                digest,
            ));
            let outcome =
                if !summary.failed.is_empty() || args.test_result == Some(TestResultArg::Failed) {
                    TestOutcome::Failed
                } else if summary.passed.is_empty() && args.test_result.is_none() {
                    // A report in which nothing ran is no evidence that anything passed.
                    TestOutcome::Warned
                } else {
                    TestOutcome::Passed
                };
            if args.test_result == Some(TestResultArg::Passed) && outcome == TestOutcome::Failed {
                eprintln!("agentgate: warning: --test-result passed, but {} reports {} failed test(s): recording FAILED", path.display(), summary.failed.len());
            }
            (summary, outcome)
        }
        None => (
            JunitSummary::default(),
            match args.test_result {
                Some(TestResultArg::Failed) => TestOutcome::Failed,
                Some(TestResultArg::Passed) => TestOutcome::Passed,
                None => bail!(SIGN_NEEDS_OUTCOME),
            },
        ),
    };
    let result = TestResult {
        result: outcome,
        configuration,
        url: None,
        passed_tests: junit.passed,
        warned_tests: Vec::new(),
        failed_tests: junit.failed,
    };
    Ok((result, outcome))
}

/// The SLSA provenance of `agentgate sign`: what the caller says it built, from which source.
fn provenance(
    args: &SignArgs,
    source: &Source,
    artifacts: &[Artifact],
    outcome: TestOutcome,
    started_on: chrono::DateTime<Utc>,
) -> Statement {
    let finished_on = Utc::now().trunc_subsecs(0);
    provenance_statement(
        source,
        artifacts,
        ProvenanceParams {
            builder_id: args.builder_id.clone(),
            build_type: SIGN_BUILD_TYPE.to_string(),
            external_parameters: json!({
                "source": {"uri": source.uri, "revision": args.commit, "commit": source.commit},
                "artifacts": artifacts.iter().map(|a| a.name.clone()).collect::<Vec<_>>(),
                "testResult": outcome.as_str(),
            }),
            internal_parameters: None,
            builder_version: BTreeMap::from([(
                "agentgate".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
            builder_dependencies: Vec::new(),
            invocation_id: Some(invocation_id()),
            started_on,
            finished_on,
            byproducts: Vec::new(),
        },
    )
}

/// What was signed, for the report.
struct Signed<'a> {
    source: &'a Source,
    artifacts: &'a [Artifact],
    outcome: TestOutcome,
    provenance_bundle: &'a str,
    tests_bundle: &'a str,
    signed_by: &'a SignedBy,
    written: &'a [String],
}

/// Tell the caller: a JSON summary, the bundles themselves (neither `--out` nor `--note`), or
/// what was signed and where it went.
fn report(args: &SignArgs, s: &Signed<'_>) -> anyhow::Result<()> {
    if args.json {
        let mut summary = json!({
            "commit": s.source.commit,
            "tree": s.source.tree,
            "repository": s.source.uri,
            "artifacts": s.artifacts,
            "testResult": s.outcome.as_str(),
            "files": s.written,
            "note": args.note.then_some(&args.notes_ref),
        });
        s.signed_by.add_to(&mut summary);
        if args.out.is_none() && !args.note {
            summary["bundles"] = json!([
                serde_json::from_str::<serde_json::Value>(s.provenance_bundle)?,
                serde_json::from_str::<serde_json::Value>(s.tests_bundle)?,
            ]);
        }
        outln!("{summary}");
    } else if args.out.is_none() && !args.note {
        outln!("{}\n{}", s.provenance_bundle, s.tests_bundle);
    } else {
        outln!(
            "signed commit {} (tree {}) with {}",
            s.source.commit,
            s.source.tree,
            s.signed_by.describe()
        );
        for a in s.artifacts {
            outln!("  artifact sha256:{} {}", a.sha256, a.name);
        }
        outln!("  test result {}", s.outcome.as_str());
        for f in s.written {
            outln!("  wrote {f}");
        }
        if args.note {
            outln!(
                "  appended 2 bundles to the note under {} (push it: git push origin {})",
                args.notes_ref,
                args.notes_ref
            );
        }
    }
    Ok(())
}
