//! `agentgate gate`: the compile-test-sign gate's options ([`crate::gate`] runs it).

use std::path::PathBuf;

use agentgate_policy::config::DEFAULT_NOTES_REF;

use super::sign::KeylessArgs;

const GATE_EXAMPLE: &str = "\
Examples:
  agentgate gate --key ci-gate.key --password-env GATE_KEY_PASSWORD \\
      --build 'cargo build --release --locked' \\
      --test 'cargo test --release --locked' \\
      --artifact target/release/app --out attestations --note
  git push origin refs/notes/agentgate

  agentgate gate --key k.pem --build 'make' --test 'make check' --artifact app \\
      --junit build/junit.xml --reproducible --json

  agentgate gate --keyless --build 'make' --test 'make check' \\
      --artifact app --note      # in CI, with the job's OIDC identity

--build and --test are split into words like a POSIX shell would ('single', \"double\" quotes and
backslashes; no variables, globs or pipes) and run without a shell; with --shell each runs as
`sh -c CMD`. Both run in a fresh checkout of the commit (never the current working tree), with
only PATH, LANG, LC_ALL, LC_CTYPE, TERM, TZ and toolchain locations (CARGO_HOME, RUSTUP_HOME,
GOPATH, JAVA_HOME, ...) from the caller's environment plus the variables named by --env; HOME
and TMPDIR are empty temporary directories and SOURCE_DATE_EPOCH is the commit's time.
Artifact paths and --junit are relative to the checkout. Build output is streamed to stderr and
kept in --out as build.stdout.log, build.stderr.log, test.stdout.log, test.stderr.log; each signed
artifact is copied to --out as artifacts/<path as given to --artifact>, next to the bundles that
name it. Verify it there:
  agentgate verify --bundle DIR/provenance.sigstore.json --key KEY.pub \\
      DIR/artifacts/PATH

Build and tests run isolated with bubblewrap (bwrap): their own PID, network and mount
namespaces, no capabilities, no inherited descriptors; the filesystem read-only except the
checkout, HOME and TMPDIR; homes, /run, /tmp, the caller's repository (its objects stay
readable) and the key hidden. Where bwrap cannot run the gate stops (exit 2) and says how to
enable it. The key is read (and its passphrase used) only after build and tests have ended.
--danger-no-sandbox runs them without isolation: they can then read this process's
environment, memory and key file, and the provenance says so.

Exit codes: 0 built, tests passed, signed; 1 refused: the build failed or did not reproduce, an
artifact is missing (nothing signed), or the tests failed (a FAILED test result is signed,
which the hook refuses); 2 usage or environment error, or isolation unavailable (nothing
signed).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxKind {
    /// bubblewrap (the default): own PID and network namespaces, no capabilities, the
    /// filesystem read-only except the checkout, HOME and TMPDIR, secrets hidden.
    Bwrap,
}

#[derive(Debug, clap::Args)]
#[command(after_help = GATE_EXAMPLE)]
#[command(group(clap::ArgGroup::new("signing").required(true).args(["key", "keyless"])))]
pub struct GateArgs {
    /// Private key file (PKCS#8 PEM, encrypted PKCS#8, SEC1, or cosign.key).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Environment variable holding the private key's passphrase (never passed to the build).
    #[arg(long, value_name = "VAR", conflicts_with = "keyless")]
    pub password_env: Option<String>,
    #[command(flatten)]
    pub keyless: KeylessArgs,
    /// Repository (any path inside it).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The commit to build, test and attest (any revision).
    #[arg(long, default_value = "HEAD")]
    pub commit: String,
    /// Build command, run in the checkout (split into words; no shell unless --shell).
    #[arg(long, value_name = "CMD")]
    pub build: String,
    /// Test command, run in the checkout after the build.
    #[arg(long, value_name = "CMD")]
    pub test: String,
    /// Artifact produced by the build, relative to the checkout (repeatable).
    #[arg(long = "artifact", value_name = "PATH", required = true, num_args = 1..)]
    pub artifacts: Vec<PathBuf>,
    /// JUnit XML report written by the tests, relative to the checkout.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Pass this environment variable to the build and tests too (repeatable).
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
    /// Append both bundles (one per line) to the git note on the commit.
    #[arg(long)]
    pub note: bool,
    /// Notes ref used by --note.
    #[arg(long, value_name = "REF", default_value = DEFAULT_NOTES_REF)]
    pub notes_ref: String,
    /// Write the bundles, the captured logs and a copy of each signed artifact
    /// (DIR/artifacts/<path as given to --artifact>) to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Build twice in separate checkouts; refuse to sign if any artifact differs.
    #[arg(long)]
    pub reproducible: bool,
    /// How build and tests are isolated (bwrap, the default); fails if it cannot run here.
    #[arg(long, value_enum, value_name = "KIND")]
    pub sandbox: Option<SandboxKind>,
    /// Run build and tests WITHOUT isolation: they can read this gate's environment, memory,
    /// open files and key file, and sign for themselves. Recorded in the provenance.
    #[arg(long, conflicts_with = "sandbox")]
    pub danger_no_sandbox: bool,
    /// Run --build and --test with `sh -c` instead of splitting them into words.
    #[arg(long)]
    pub shell: bool,
    /// SLSA builder id (default: the CI workflow or job, else a generic gate id).
    #[arg(long, value_name = "URI")]
    pub builder_id: Option<String>,
    /// Print a JSON summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}
