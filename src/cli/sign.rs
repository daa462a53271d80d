//! The `keygen`, `sign` and `verify` commands: the edge where files, git, passphrases and the
//! terminal meet the attestation library.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use chrono::{SubsecRound as _, Utc};
use serde_json::json;
use zeroize::Zeroizing;

/// Print a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use outln;

use crate::attest::keys::{KeyAlgorithm, PublicKey, SigningKey};
use crate::attest::sign::sign_statement;
use crate::attest::sigstore;
use crate::attest::statement::{
    bound_provenances, provenance_statement, sha256_reader, test_result_statement, Artifact,
    JunitSummary, ProvenanceParams, ResourceDescriptor, Source, TestOutcome, TestResult,
    DIGEST_GIT_COMMIT, DIGEST_SHA256, PREDICATE_TEST_RESULT_V01,
};
use crate::attest::verify::{self, VerifiedAttestation, VerifyError};

/// Default notes ref for attestations.
pub const DEFAULT_NOTES_REF: &str = "refs/notes/agentgate";
/// File names written by `sign --out DIR`.
pub const PROVENANCE_FILE: &str = "provenance.sigstore.json";
pub const TEST_RESULT_FILE: &str = "test-result.sigstore.json";
/// SLSA buildType of attestations made by `agentgate sign` (the gate will use its own).
pub const SIGN_BUILD_TYPE: &str = "https://example.invalid/agentgate/buildtypes/sign/v1";
/// Why `sign` without an outcome is a usage error: a test result nobody vouched for says
/// PASSED about tests that may never have run.
const SIGN_NEEDS_OUTCOME: &str =
    "sign needs the test outcome: pass --junit FILE (a JUnit XML report) or --test-result passed|failed";
/// Default builder id of `agentgate sign`; CI should pass its own workload identity.
pub const SIGN_DEFAULT_BUILDER_ID: &str = "https://example.invalid/agentgate/builders/sign";

const KEYGEN_EXAMPLE: &str = "\
Examples:
  agentgate keygen --out ci-gate                      # ci-gate.key (0600), ci-gate.pub
  AGENTGATE_KEY_PASSWORD=... agentgate keygen --out ci-gate --password-env AGENTGATE_KEY_PASSWORD
  agentgate keygen --out ci-gate --ed25519 --prompt

The public key's hint (base64 SHA-256 of the DER SPKI, as cosign computes it) is printed.
Exit codes: 0 written, 2 error.";

const SIGN_EXAMPLE: &str = "\
Example:
  agentgate sign --key ci-gate.key --commit HEAD --artifact target/release/app \\
      --junit target/junit.xml --out attestations --note
  git push origin refs/notes/agentgate
  agentgate sign --keyless --commit HEAD --artifact target/release/app --junit junit.xml --note

Writes a SLSA provenance and a test-result attestation (Sigstore bundles, DSSE, in-toto v1);
the test result names the provenance of the same run. The test outcome is required: --junit
(a JUnit XML report) or --test-result passed|failed.
Without --out or --note the two bundles are printed as JSON Lines.
Exit codes: 0 signed, 2 error.";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestResultArg {
    Passed,
    Failed,
}

#[derive(Debug, clap::Args)]
#[command(after_help = SIGN_EXAMPLE)]
#[command(group(clap::ArgGroup::new("signing").required(true).args(["key", "keyless"])))]
pub struct SignArgs {
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
    fn overrides(&self) -> crate::attest::keyless::ServiceOverrides {
        crate::attest::keyless::ServiceOverrides {
            fulcio_url: self.fulcio_url.clone(),
            rekor_url: self.rekor_url.clone(),
            tsa_url: self.tsa_url.clone(),
            trusted_root: self.trusted_root.clone(),
        }
    }
}

/// What signs the statements: a private key, or a keyless (Sigstore) identity.
pub enum Signer {
    Key(SigningKey),
    #[cfg(feature = "keyless-sign")]
    Keyless(crate::attest::keyless::KeylessConfig),
}

/// Who signed, as established after signing.
pub enum SignedBy {
    Key { hint: String },
    Identity { identity: String, issuer: String },
}

impl SignedBy {
    /// For messages: "key HINT" or "IDENTITY (issuer ISSUER)".
    pub fn describe(&self) -> String {
        match self {
            SignedBy::Key { hint } => format!("key {hint}"),
            SignedBy::Identity { identity, issuer } => format!("{identity} (issuer {issuer})"),
        }
    }

    /// Add `keyHint`, or `signerIdentity` and `signerIssuer`, to a JSON summary.
    pub fn add_to(&self, summary: &mut serde_json::Value) {
        match self {
            SignedBy::Key { hint } => summary["keyHint"] = json!(hint),
            SignedBy::Identity { identity, issuer } => {
                summary["signerIdentity"] = json!(identity);
                summary["signerIssuer"] = json!(issuer);
            }
        }
    }
}

#[cfg(not(feature = "keyless-sign"))]
fn no_keyless() -> anyhow::Error {
    anyhow::anyhow!("this agentgate was built without keyless signing (cargo feature keyless-sign)")
}

/// Before a long build: check that `--keyless` can sign (service URLs, a token source; a token
/// given explicitly must parse and be unexpired) without requesting a token yet.
pub fn keyless_preflight(args: &KeylessArgs) -> anyhow::Result<()> {
    #[cfg(feature = "keyless-sign")]
    {
        use crate::attest::keyless::KeylessConfig;
        KeylessConfig::preflight(args.identity_token.clone(), args.overrides())
            .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain(&e)))
    }
    #[cfg(not(feature = "keyless-sign"))]
    {
        let _ = args;
        Err(no_keyless())
    }
}

impl Signer {
    /// The keyless signer: finds (and, in GitHub Actions, requests) the identity token now.
    pub fn keyless(args: &KeylessArgs) -> anyhow::Result<Signer> {
        #[cfg(feature = "keyless-sign")]
        {
            use crate::attest::keyless::KeylessConfig;
            KeylessConfig::from_env(args.identity_token.clone(), args.overrides())
                .map(Signer::Keyless)
                .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain(&e)))
        }
        #[cfg(not(feature = "keyless-sign"))]
        {
            let _ = args;
            Err(no_keyless())
        }
    }

    /// Sign both statements; returns their bundles and who signed. The test result must name
    /// this provenance (`test_result_statement` does): the hook counts it only next to it.
    pub fn sign_pair(
        &self,
        provenance: &crate::attest::Statement,
        tests: &crate::attest::Statement,
    ) -> anyhow::Result<(String, String, SignedBy)> {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            provenance
                .payload()
                .context("cannot serialize the statement")?,
        ));
        let bound = match tests.test_result() {
            Some(Ok(r)) => bound_provenances(&r),
            _ => Vec::new(),
        };
        if !bound.contains(&digest) {
            bail!("the test result does not name the provenance it is signed with (sha256:{digest}); nothing was signed");
        }
        match self {
            Signer::Key(key) => Ok((
                sign_statement(key, provenance)?,
                sign_statement(key, tests)?,
                SignedBy::Key {
                    hint: key.public_key().hint().to_string(),
                },
            )),
            #[cfg(feature = "keyless-sign")]
            Signer::Keyless(cfg) => {
                use crate::attest::keyless::sign_statement_keyless_verified;
                let mut bundles = Vec::new();
                let mut by = None;
                for st in [provenance, tests] {
                    let bytes = st.payload().context("cannot serialize the statement")?;
                    let (bundle, verified) = sign_statement_keyless_verified(&bytes, cfg)
                        .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain(&e)))?;
                    bundles.push(bundle);
                    by = Some(SignedBy::Identity {
                        identity: verified.signer,
                        issuer: verified.issuer.unwrap_or_default(),
                    });
                }
                let tests_bundle = bundles.pop().expect("two bundles");
                let provenance_bundle = bundles.pop().expect("two bundles");
                Ok((provenance_bundle, tests_bundle, by.expect("signed")))
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

#[derive(Debug, clap::Args)]
#[command(after_help = VERIFY_EXAMPLE)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["keys", "certificate_identity", "certificate_identity_regexp"])))]
pub struct VerifyArgs {
    /// Bundle file (one Sigstore bundle).
    #[arg(long)]
    pub bundle: PathBuf,
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
    #[arg(value_name = "ARTIFACT|sha256:HEX")]
    pub artifact: String,
}

fn passphrase(
    var: Option<&str>,
    prompt: Option<&str>,
) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    if let Some(var) = var {
        let value = std::env::var_os(var)
            .with_context(|| format!("the passphrase variable {var} is not set"))?;
        return Ok(Some(Zeroizing::new(value.into_encoded_bytes())));
    }
    if let Some(text) = prompt {
        let p = rpassword::prompt_password(text)
            .context("cannot read a passphrase from the terminal")?;
        return Ok(Some(Zeroizing::new(p.into_bytes())));
    }
    Ok(None)
}

fn write_new(path: &Path, contents: &[u8], mode: u32, force: bool) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its old mode under truncate; a private key must not.
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reports bytes read on stderr, at most every 64 MiB, so that hashing a large artifact on a
/// terminal is visibly alive.
struct Progress<'a, R> {
    inner: R,
    name: &'a str,
    total: u64,
    done: u64,
    shown: u64,
    finished: bool,
}

impl<R: std::io::Read> std::io::Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        let at_end = n == 0 && !self.finished;
        if self.done - self.shown >= 64 << 20 || (at_end && self.done != self.shown) {
            self.shown = self.done;
            let (done, total) = (self.done >> 20, self.total >> 20);
            eprint!("\rhashing {}: {done} / {total} MiB", self.name);
        }
        if at_end {
            eprintln!();
            self.finished = true;
        }
        Ok(n)
    }
}

/// Streaming SHA-256 of a file, with progress on a terminal for files over 256 MiB.
pub fn hash_with_progress(path: &Path) -> std::io::Result<String> {
    use std::io::IsTerminal as _;
    let file = std::fs::File::open(path)?;
    let total = file.metadata()?.len();
    if total < 256 << 20 || !std::io::stderr().is_terminal() {
        return sha256_reader(file);
    }
    let name = path.display().to_string();
    sha256_reader(Progress {
        inner: file,
        name: &name,
        total,
        done: 0,
        shown: 0,
        finished: false,
    })
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

/// Load a private key, its passphrase from the environment variable `password_env` or, with
/// `prompt`, from the terminal.
pub fn load_signing_key(
    path: &Path,
    password_env: Option<&str>,
    prompt: bool,
) -> anyhow::Result<SigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?,
    );
    let prompt_text = format!("Passphrase for {}: ", path.display());
    let pass = passphrase(password_env, prompt.then_some(prompt_text.as_str()))?;
    SigningKey::from_pem(&text, pass.as_deref().map(|v| v.as_slice()))
        .with_context(|| format!("cannot load the private key {}", path.display()))
}

/// Remove `user:password@` from a URL: a CI token in a remote URL must not be signed and
/// published.
fn strip_userinfo(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
        }
    }
    url.to_string()
}

pub fn repo_uri(repo: &git2::Repository) -> String {
    if let Some(url) = repo
        .find_remote("origin")
        .ok()
        .and_then(|r| r.url().map(strip_userinfo))
    {
        return url;
    }
    let path = repo.workdir().unwrap_or_else(|| repo.path());
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    format!(
        "file://{}",
        path.display().to_string().trim_end_matches('/')
    )
}

pub fn open_repo(path: &Path) -> anyhow::Result<git2::Repository> {
    git2::Repository::open_ext(
        path,
        git2::RepositoryOpenFlags::empty(),
        std::iter::empty::<&str>(),
    )
    .with_context(|| format!("cannot open a git repository at {}", path.display()))
}

pub fn resolve_commit<'r>(
    repo: &'r git2::Repository,
    rev: &str,
) -> anyhow::Result<git2::Commit<'r>> {
    repo.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .with_context(|| format!("cannot resolve {rev:?} to a commit"))
}

/// Parse a JUnit report; also returns the report's SHA-256 (hex).
pub fn load_junit(path: &Path) -> anyhow::Result<(JunitSummary, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let summary = crate::attest::statement::parse_junit(&bytes)
        .with_context(|| format!("cannot read the JUnit report {}", path.display()))?;
    Ok((
        summary,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    ))
}

pub fn invocation_id() -> String {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    // A failing RNG leaves zeros: the id is a label, not a secret.
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut b);
    hex::encode(b)
}

/// Append bundles to the note on `oid`, one per line, keeping every line already there.
///
/// Read-append-write is not atomic: two signers appending to the same commit's note at the same
/// moment in one clone can lose one side's lines (the notes ref itself never loses history).
/// CI signs each commit once, in its own clone; merging notes across clones is
/// `git notes merge -s cat_sort_uniq`.
pub fn append_note(
    repo: &git2::Repository,
    notes_ref: &str,
    oid: git2::Oid,
    lines: &[String],
) -> anyhow::Result<()> {
    let mut text = match repo.find_note(Some(notes_ref), oid) {
        Ok(note) => note.message().map(str::to_owned).with_context(|| {
            format!("the existing note on {oid} under {notes_ref} is not UTF-8")
        })?,
        Err(e) if e.code() == git2::ErrorCode::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {notes_ref}")),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in lines {
        debug_assert!(!line.contains('\n'));
        text.push_str(line);
        text.push('\n');
    }
    let sig = repo
        .signature()
        .or_else(|_| git2::Signature::now("agentgate", "agentgate@localhost"))
        .context("cannot make a signature for the notes commit")?;
    // `force` replaces the note object; the text above already holds the old lines.
    repo.note(&sig, &sig, Some(notes_ref), oid, &text, true)
        .with_context(|| format!("cannot write the note on {oid} under {notes_ref}"))?;
    Ok(())
}

/// Write the two bundles as `out/provenance.sigstore.json` and `out/test-result.sigstore.json`
/// and, with `notes_ref`, append both to the note on `commit`. Returns the files written.
pub fn publish_bundles(
    repo: &git2::Repository,
    commit: git2::Oid,
    provenance_bundle: &str,
    tests_bundle: &str,
    out: Option<&Path>,
    notes_ref: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, bundle) in [
            (PROVENANCE_FILE, provenance_bundle),
            (TEST_RESULT_FILE, tests_bundle),
        ] {
            let path = dir.join(name);
            let mut text = bundle.to_string();
            text.push('\n');
            write_new(&path, text.as_bytes(), 0o644, true)?;
            written.push(path.display().to_string());
        }
    }
    if let Some(notes_ref) = notes_ref {
        append_note(
            repo,
            notes_ref,
            commit,
            &[provenance_bundle.to_string(), tests_bundle.to_string()],
        )?;
    }
    Ok(written)
}

pub fn sign(args: &SignArgs) -> anyhow::Result<ExitCode> {
    if args.junit.is_none() && args.test_result.is_none() {
        bail!(SIGN_NEEDS_OUTCOME);
    }
    let started_on = Utc::now().trunc_subsecs(0);
    let signer = match &args.key {
        Some(key) => Signer::Key(load_signing_key(
            key,
            args.password_env.as_deref(),
            args.prompt,
        )?),
        None => Signer::keyless(&args.keyless)?,
    };
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, &args.commit)?;
    let source = Source {
        uri: repo_uri(&repo),
        commit: commit.id().to_string(),
        tree: commit.tree_id().to_string(),
    };

    let mut artifacts = Vec::new();
    for path in &args.artifacts {
        let sha256 = hash_with_progress(path)
            .with_context(|| format!("cannot hash the artifact {}", path.display()))?;
        artifacts.push(Artifact {
            name: path.to_string_lossy().replace('\\', "/"),
            sha256,
        });
    }

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
    let test_result = TestResult {
        result: outcome,
        configuration,
        url: None,
        passed_tests: junit.passed,
        warned_tests: Vec::new(),
        failed_tests: junit.failed,
    };

    let finished_on = Utc::now().trunc_subsecs(0);
    let provenance = provenance_statement(
        &source,
        &artifacts,
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
    );
    let tests = test_result_statement(&source, &artifacts, &test_result, &provenance)?;
    let (provenance_bundle, tests_bundle, signed_by) = signer.sign_pair(&provenance, &tests)?;

    let written = publish_bundles(
        &repo,
        commit.id(),
        &provenance_bundle,
        &tests_bundle,
        args.out.as_deref(),
        args.note.then_some(args.notes_ref.as_str()),
    )?;

    if args.json {
        let mut summary = json!({
            "commit": source.commit,
            "tree": source.tree,
            "repository": source.uri,
            "artifacts": artifacts,
            "testResult": outcome.as_str(),
            "files": written,
            "note": args.note.then_some(&args.notes_ref),
        });
        signed_by.add_to(&mut summary);
        if args.out.is_none() && !args.note {
            summary["bundles"] = json!([
                serde_json::from_str::<serde_json::Value>(&provenance_bundle)?,
                serde_json::from_str::<serde_json::Value>(&tests_bundle)?,
            ]);
        }
        outln!("{summary}");
    } else if args.out.is_none() && !args.note {
        outln!("{provenance_bundle}\n{tests_bundle}");
    } else {
        outln!(
            "signed commit {} (tree {}) with {}",
            source.commit,
            source.tree,
            signed_by.describe()
        );
        for a in &artifacts {
            outln!("  artifact sha256:{} {}", a.sha256, a.name);
        }
        outln!("  test result {}", outcome.as_str());
        for f in &written {
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
    Ok(ExitCode::SUCCESS)
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
    let id = resolve_commit(&repo, rev)?.id().to_string();
    Ok(id)
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
    .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain(&e)))?;
    Ok(Trust::Identity {
        policy: sigstore::SignerPolicy::Identity { issuer, identity },
        root: Box::new(root),
    })
}

/// Authenticate the bundle: Ok, a refusal (code, message), or an unusable input (Err).
#[allow(clippy::type_complexity)]
fn authenticate(
    args: &VerifyArgs,
    trust: &Trust,
    bundle: &[u8],
    digest: &str,
) -> anyhow::Result<Result<(VerifiedAttestation, Signed), (String, String)>> {
    let refused = |e: VerifyError| (e.code().to_string(), e.to_string());
    match trust {
        Trust::Keys(keys) => Ok(verify::verify_bundle(bundle, keys)
            .map(|att| {
                let signed = Signed::Key {
                    hint: att.signer_hint.clone(),
                    path: args.keys[att.signer_index].display().to_string(),
                };
                (att, signed)
            })
            .map_err(refused)),
        Trust::Identity { policy, root } => {
            let mut sha = [0u8; 32];
            hex::decode_to_slice(digest, &mut sha).context("the artifact digest is not hex")?;
            let verified =
                match sigstore::verify(bundle, &sigstore::ArtifactInput::Sha256(sha), policy, root)
                {
                    Ok(v) => v,
                    Err(
                        e @ (sigstore::SigstoreError::Read { .. }
                        | sigstore::SigstoreError::ArtifactDigest(_)
                        | sigstore::SigstoreError::PublicKey(_)
                        | sigstore::SigstoreError::TrustedRoot(_)),
                    ) => bail!("[{}] {}", e.code(), error_chain(&e)),
                    Err(e) => return Ok(Err((e.code().to_string(), error_chain(&e)))),
                };
            let Some((_, payload)) = &verified.payload else {
                return Ok(Err(refused(VerifyError::NotDsse)));
            };
            let statement = match verify::parse_statement(payload) {
                Ok(s) => s,
                Err(e) => return Ok(Err(refused(e))),
            };
            let att = VerifiedAttestation {
                signer_hint: verified.signer.clone(),
                signer_index: 0,
                statement,
                payload_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(payload)),
            };
            let signed = Signed::Identity {
                identity: verified.signer,
                issuer: verified.issuer.unwrap_or_default(),
            };
            Ok(Ok((att, signed)))
        }
    }
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let trust = trust(args)?;
    let bundle = std::fs::read(&args.bundle)
        .with_context(|| format!("cannot read the bundle {}", args.bundle.display()))?;
    let commit = args
        .commit
        .as_deref()
        .map(|c| resolve_commit_arg(&args.repo, c))
        .transpose()?;
    let (digest, artifact_path) = artifact_digest(&args.artifact)?;

    let outcome = authenticate(args, &trust, &bundle, &digest)?.and_then(|(att, signed)| {
        let refused = |e: VerifyError| (e.code().to_string(), e.to_string());
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
                    "payloadSha256": att.payload_sha256,
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
            Ok(ExitCode::from(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_stripped() {
        for (i, o) in [
            (
                "https://x:tok@github.com/a/b.git",
                "https://github.com/a/b.git",
            ),
            ("https://github.com/a/b.git", "https://github.com/a/b.git"),
            ("ssh://git@host/x@y", "ssh://host/x@y"),
            ("git@host:a/b", "git@host:a/b"),
        ] {
            assert_eq!(strip_userinfo(i), o);
        }
    }

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
