//! The server policy: found on the server only (never in pushed content), parsed strictly into a
//! raw form, then validated into types that cannot hold an invalid state. Every error names the
//! file, line and column, because an admin fixing a broken policy at 3 a.m. needs exactly that.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use agentgate_formats::sigstore::{IdentityMatch, TrustedRoot};
use agentgate_formats::PublicKey;
use agentgate_git::{ConfigError, OpenError, Repo};
use serde::Deserialize;
use serde_spanned::Spanned;
use sha2::{Digest, Sha256};

use crate::code::Code;
pub use crate::detect::{
    Action, Detect, Effect, IdentityField, Matcher, Require, Source, UserRule,
};
use crate::errors::error_chain;
pub use agentgate_formats::statement::{PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_TEST_RESULT_V01};

/// Where the default system-wide policy lives.
pub const SYSTEM_POLICY: &str = "/etc/agentgate/policy.toml";
/// The default notes ref that carries attestations.
pub const DEFAULT_NOTES_REF: &str = "refs/notes/agentgate";
/// The default notes ref the server writes its promotion records to (clients never may).
pub const DEFAULT_PROMOTIONS_REF: &str = "refs/notes/agentgate-promotions";
/// The local syslog socket `[audit] syslog = true` writes to by default.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";
/// The hook's deadline when the policy sets none: GitHub Enterprise gives all pre-receive hooks 5
/// seconds together and GitLab and Gitea kill hooks too; 3 seconds leaves room for other hooks and
/// process start, and is far above a typical push (milliseconds) or a 100,000-commit import
/// (about a second, BENCHMARKS.md).
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_HOOK_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("no policy found (looked at --config, $AGENTGATE_CONFIG, git config agentgate.config, {git_dir}/agentgate.toml and {SYSTEM_POLICY})")]
    NotFound { git_dir: String },
    /// The named policy file (`--config`, the one the shim pins) does not exist.
    #[error("the policy {path} does not exist")]
    MissingFile { path: PathBuf },
    #[error("cannot read policy {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

impl PolicyError {
    /// The refusal code of every update when the policy cannot be loaded.
    pub fn code(&self) -> Code {
        match self {
            PolicyError::NotFound { .. } | PolicyError::MissingFile { .. } => Code::PolicyMissing,
            PolicyError::Unreadable { .. } => Code::PolicyUnreadable,
            PolicyError::Invalid { .. } => Code::PolicyInvalid,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw form: exactly what the file says, with spans for error messages.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Option<Spanned<i64>>,
    protect: Option<Spanned<RawProtect>>,
    detect: Option<Spanned<RawDetect>>,
    attest: Option<Spanned<RawAttest>>,
    #[serde(default)]
    signer: Vec<Spanned<RawSigner>>,
    #[serde(default)]
    approver: Vec<Spanned<RawApprover>>,
    approvals: Option<Spanned<RawApprovals>>,
    #[serde(default)]
    path_rule: Vec<Spanned<RawPathRule>>,
    break_glass: Option<Spanned<RawBreakGlass>>,
    audit: Option<RawAudit>,
    hook: Option<RawHook>,
    server: Option<RawServer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    key: Option<Spanned<PathBuf>>,
    verifier_id: Option<Spanned<String>>,
    repository_uri: Option<Spanned<String>>,
    promotions_ref: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtect {
    refs: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    allow_delete: bool,
    #[serde(default)]
    allow_non_fast_forward: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    presets: Option<Spanned<Vec<Spanned<String>>>>,
    require: Option<Spanned<String>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    sources: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    action: Vec<Spanned<RawAction>>,
}

/// `[[detect.action]]`: what happens, beyond the gate, when rules match.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    id: Option<Spanned<String>>,
    rules: Option<Spanned<Vec<Spanned<String>>>>,
    refs: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(rename = "do")]
    effect: Option<Spanned<String>>,
    trailer: Option<Spanned<String>>,
    value: Option<Spanned<String>>,
    example: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Option<Spanned<String>>,
    trailer: Option<Spanned<String>>,
    value: Option<Spanned<String>>,
    author_name: Option<Spanned<String>>,
    author_email: Option<Spanned<String>>,
    committer_name: Option<Spanned<String>>,
    committer_email: Option<Spanned<String>>,
    /// Author or committer name.
    name: Option<Spanned<String>>,
    /// Author or committer email.
    email: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttest {
    notes_ref: Option<Spanned<String>>,
    attestations_dir: Option<PathBuf>,
    scope: Option<Spanned<String>>,
    bind: Option<Spanned<String>>,
    require_predicates: Option<Spanned<Vec<Spanned<String>>>>,
    max_age: Option<Spanned<String>>,
    threshold: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    name: Spanned<String>,
    public_key: Option<Spanned<PathBuf>>,
    issuer: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    identity_regex: Option<Spanned<String>>,
    trusted_root: Option<Spanned<PathBuf>>,
    builder_id: Option<Spanned<String>>,
    build_type: Option<Spanned<String>>,
}

/// A person who may approve agent commits: a key, or a keyless identity, and the git identity
/// (`email`) they commit under.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprover {
    name: Spanned<String>,
    public_key: Option<Spanned<PathBuf>>,
    issuer: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    identity_regex: Option<Spanned<String>>,
    trusted_root: Option<Spanned<PathBuf>>,
    email: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovals {
    bind: Option<Spanned<String>>,
    distinct_from_author: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPathRule {
    id: Option<Spanned<String>>,
    paths: Spanned<Vec<Spanned<String>>>,
    action: Spanned<String>,
    approvals: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBreakGlass {
    name: Option<Spanned<String>>,
    public_key: Option<Spanned<PathBuf>>,
    issuer: Option<Spanned<String>>,
    identity: Option<Spanned<String>>,
    identity_regex: Option<Spanned<String>>,
    trusted_root: Option<Spanned<PathBuf>>,
    max_validity: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    log: Option<PathBuf>,
    syslog: Option<bool>,
    syslog_socket: Option<Spanned<PathBuf>>,
}

// ---------------------------------------------------------------------------------------------
// Validated form.

/// A validated policy. Only `Policy::parse` builds one.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The file it came from.
    pub source: PathBuf,
    /// `sha256:<hex>` of the policy's manifest ([`Policy::manifest`]): its text and the
    /// contents of every key file it names, so a key replaced in place is another policy.
    /// Recorded with every decision; the manifest is archived under it next to the audit log.
    pub digest: String,
    /// The policy file's text.
    pub text: String,
    /// The files the policy named and that were read to validate it (public keys, trusted
    /// roots), in the order first read.
    pub files: Vec<NamedFile>,
    pub protect: Protect,
    pub detect: Detect,
    pub attest: AttestPolicy,
    pub signers: Vec<Signer>,
    /// People whose signed approvals count (`[[approver]]`).
    pub approvers: Vec<Approver>,
    pub approvals: ApprovalPolicy,
    /// What an agent commit touching some paths needs besides the gate (`[[path_rule]]`).
    pub path_rules: Vec<PathRule>,
    /// The emergency override, when the policy names its key (`[break_glass]`); off otherwise.
    pub break_glass: Option<BreakGlassPolicy>,
    pub audit_log: Option<PathBuf>,
    /// The syslog socket each record and checkpoint also goes to (`[audit] syslog = true`).
    pub syslog_socket: Option<PathBuf>,
    /// The server's own identity: its signing key, for promotion records and checkpoints.
    pub server: ServerPolicy,
    /// How long the hook may take before it refuses the push (`[hook] timeout`).
    pub hook_timeout: Duration,
}

/// A file a policy named, as read when it was validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// `[server]`: what the server signs its promotion records and checkpoints with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPolicy {
    /// The server's private key (PKCS#8 PEM, unencrypted: the hook signs unattended). Read by
    /// the hook, never part of the digest or the archive.
    pub key: Option<PathBuf>,
    /// `verifier.id` of promotion records (default `urn:agentgate:server:<host name>`).
    pub verifier_id: Option<String>,
    /// The repository's URI in promotion records; `{name}` is replaced by the repository's
    /// directory name without `.git`, `{path}` by its absolute path (default `file://{path}`).
    pub repository_uri: Option<String>,
    /// Where promotion records are kept; clients may never push to it.
    pub promotions_ref: String,
}

/// The archived form of a policy: its text and every key file it named. The policy's digest
/// is the SHA-256 of this manifest's JSON, so the archive file's own hash is its name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyManifest {
    pub agentgate_policy: u32,
    pub path: String,
    pub text: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub base64: String,
}

#[derive(Debug, Clone)]
pub struct Protect {
    pub refs: Vec<RefPattern>,
    pub allow_delete: bool,
    pub allow_non_fast_forward: bool,
}

impl Protect {
    /// The first pattern that protects `refname`, if any.
    pub fn matching(&self, refname: &str) -> Option<&RefPattern> {
        self.refs.iter().find(|p| p.matches(refname))
    }
}

/// A ref glob: `*` matches within one path component, `**` across components, `?` one
/// character other than `/`. Matched directly (no regex: the hook runs on every push).
#[derive(Debug, Clone)]
pub struct RefPattern {
    pub glob: String,
}

impl RefPattern {
    pub fn new(glob: &str) -> Result<RefPattern, String> {
        if !glob.starts_with("refs/") {
            return Err(format!("ref pattern {glob:?} must start with \"refs/\""));
        }
        if glob.contains(['[', ']', '\\', ' ', '~', '^', ':']) || glob.contains("..") {
            return Err(format!(
                "ref pattern {glob:?} has a character that is not allowed (only `*` and `**` are wildcards)"
            ));
        }
        Ok(RefPattern {
            glob: glob.to_string(),
        })
    }

    pub fn matches(&self, refname: &str) -> bool {
        glob_match(self.glob.as_bytes(), refname.as_bytes())
    }
}

/// `s`, `s[1..]`, ... down to the empty slice.
fn suffixes(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    (0..=s.len()).map(move |i| s.get(i..).unwrap_or_default())
}

/// `*` within a component, `**` across, `?` one non-`/` byte; everything else literal.
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    match pat {
        [] => s.is_empty(),
        // Every suffix of `s` (the empty one last), for `*` up to the first `/`.
        [b'*', b'*', rest @ ..] => suffixes(s).any(|t| glob_match(rest, t)),
        [b'*', rest @ ..] => {
            let stop = s.iter().position(|&b| b == b'/').unwrap_or(s.len());
            suffixes(s).take(stop + 1).any(|t| glob_match(rest, t))
        }
        [b'?', rest @ ..] => match s {
            [b, t @ ..] if *b != b'/' => glob_match(rest, t),
            _ => false,
        },
        [c, rest @ ..] => match s {
            [b, t @ ..] if b == c => glob_match(rest, t),
            _ => false,
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The new tip must be attested.
    Tip,
    /// The tip and every agent commit must be attested.
    Each,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bind {
    Commit,
    /// An attestation of a commit with an identical tree also counts.
    Tree,
}

#[derive(Debug, Clone)]
pub struct AttestPolicy {
    pub notes_ref: String,
    pub attestations_dir: Option<PathBuf>,
    pub scope: Scope,
    pub bind: Bind,
    pub require_predicates: Vec<String>,
    pub max_age: Option<Duration>,
    /// How many distinct trusted signers must each attest a required commit with every
    /// required predicate (at least 1, at most the number of `[[signer]]` entries).
    pub threshold: usize,
}

#[derive(Debug, Clone)]
pub struct Signer {
    pub name: String,
    pub kind: SignerKind,
    /// What this signer's provenance must claim: `runDetails.builder.id` and
    /// `buildDefinition.buildType`, compared exactly. A key that also signs outside the gate
    /// (a release key in an ordinary CI job) then cannot stand in for the gate.
    pub builder_id: Option<String>,
    pub build_type: Option<String>,
}

#[derive(Debug, Clone)]
pub enum SignerKind {
    /// A key-based gate: the public key read from `path` when the policy loaded.
    Key { path: PathBuf, key: PublicKey },
    /// A keyless gate: its Sigstore workload identity, checked against `root` (the file
    /// `trusted_root`, or the embedded Sigstore public-good root).
    Keyless {
        issuer: String,
        identity: IdentityMatch,
        trusted_root: Option<PathBuf>,
        root: Box<TrustedRoot>,
    },
}

/// An approver: whose signature an approval must carry, and who they are in git.
#[derive(Debug, Clone)]
pub struct Approver {
    pub name: String,
    /// A key or a keyless identity (the same forms as a `[[signer]]`).
    pub kind: SignerKind,
    /// The email they commit under, compared (ASCII case-insensitively) with a commit's author
    /// and committer emails for `distinct_from_author`. A keyless approver whose exact
    /// identity is an email address is also that email.
    pub email: Option<String>,
}

impl Approver {
    /// Every email this approver is known by.
    pub fn emails(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.email.iter().map(String::as_str).collect();
        if let SignerKind::Keyless {
            identity: IdentityMatch::Exact(id),
            ..
        } = &self.kind
        {
            if id.contains('@') && !id.contains('/') && !out.contains(&id.as_str()) {
                out.push(id);
            }
        }
        out
    }
}

/// How approvals are judged (`[approvals]`).
#[derive(Debug, Clone)]
pub struct ApprovalPolicy {
    /// `commit`: an approval counts for the commit it names; `tree`: also for any commit with
    /// the tree it names.
    pub bind: Bind,
    /// An approver who is the commit's author or committer does not count (default: on).
    pub distinct_from_author: bool,
}

/// What an agent commit that touches a rule's paths needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathAction {
    /// Refused outright, whatever attests or approves it.
    Refuse,
    /// This many approvals from distinct approvers, on the commit itself, besides the gate.
    Approvals(usize),
}

/// A path rule: patterns as `.gitattributes` reads them, and what touching them needs.
#[derive(Debug, Clone)]
pub struct PathRule {
    pub id: String,
    pub patterns: Vec<crate::paths::PathPattern>,
    pub action: PathAction,
}

impl PathRule {
    /// The first of the rule's patterns that matches `path`.
    pub fn matching(&self, path: &[u8]) -> Option<&crate::paths::PathPattern> {
        self.patterns.iter().find(|p| p.matches(path))
    }
}

/// The break-glass key (or identity) and how long one override may last.
#[derive(Debug, Clone)]
pub struct BreakGlassPolicy {
    pub name: String,
    pub kind: SignerKind,
    /// The longest `expires - issuedAt` an override may have (default 24h).
    pub max_validity: Duration,
}

/// The longest an override may last when the policy does not say.
pub const DEFAULT_BREAK_GLASS_VALIDITY: Duration = Duration::from_secs(24 * 3600);

// ---------------------------------------------------------------------------------------------
// Discovery.

/// Why a policy file was chosen (the first of these that names one wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// `--config` on the command line (the installed hook shim always passes one).
    Explicit,
    /// `$AGENTGATE_CONFIG`.
    Env,
    /// The repository's git config `agentgate.config`.
    GitConfig,
    /// `$GIT_DIR/agentgate.toml`.
    RepoFile,
    /// `/etc/agentgate/policy.toml`.
    System,
}

impl PolicySource {
    pub fn describe(self) -> &'static str {
        match self {
            PolicySource::Explicit => "named by --config (in the hook shim or on this command line)",
            PolicySource::Env => "named by $AGENTGATE_CONFIG",
            PolicySource::GitConfig => "named by the repository's git config agentgate.config",
            PolicySource::RepoFile => "the repository's own agentgate.toml (no --config, $AGENTGATE_CONFIG or agentgate.config)",
            PolicySource::System => "the server-wide policy: no --config, $AGENTGATE_CONFIG, agentgate.config or $GIT_DIR/agentgate.toml",
        }
    }
}

/// A policy file and why it was chosen.
#[derive(Debug, Clone)]
pub struct Located {
    pub path: PathBuf,
    pub source: PolicySource,
}

/// Where the policy is, in the order the spec gives. Fails closed: a place that cannot be
/// looked at (the repository's config cannot be read, a file's existence cannot be told) is an
/// error, never a reason to fall through to a weaker policy further down the list.
/// `repo_config` reads `agentgate.config` from the repository (None when it is not set).
pub fn locate(
    explicit: Option<&Path>,
    repo_config: &dyn Fn() -> Result<Option<PathBuf>, String>,
    git_dir: Option<&Path>,
) -> Result<Located, PolicyError> {
    let found = |path: PathBuf, source| Ok(Located { path, source });
    if let Some(p) = explicit {
        return found(p.to_path_buf(), PolicySource::Explicit);
    }
    if let Some(p) = std::env::var_os("AGENTGATE_CONFIG").filter(|v| !v.is_empty()) {
        return found(PathBuf::from(p), PolicySource::Env);
    }
    let config_path = git_dir
        .map(|d| d.join("config"))
        .unwrap_or_else(|| PathBuf::from("the repository's git config"));
    match repo_config() {
        Ok(Some(p)) if !p.as_os_str().is_empty() => return found(p, PolicySource::GitConfig),
        Ok(_) => {}
        Err(e) => {
            return Err(PolicyError::Unreadable {
                path: config_path,
                source: std::io::Error::other(format!(
                    "cannot read agentgate.config from it ({e}); no policy further down the list is used instead"
                )),
            })
        }
    }
    let exists = |p: &Path| {
        p.try_exists().map_err(|source| PolicyError::Unreadable {
            path: p.to_path_buf(),
            source,
        })
    };
    if let Some(dir) = git_dir {
        let p = dir.join("agentgate.toml");
        // A dangling symlink counts as present: loading it then fails, loudly.
        if exists(&p)? || p.symlink_metadata().is_ok() {
            return found(p, PolicySource::RepoFile);
        }
    }
    let system = Path::new(SYSTEM_POLICY);
    if exists(system)? || system.symlink_metadata().is_ok() {
        return found(system.to_path_buf(), PolicySource::System);
    }
    Err(PolicyError::NotFound {
        git_dir: git_dir
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "$GIT_DIR".into()),
    })
}

/// [`locate`] for a repository. `repo` is None when no repository is involved (a shared hooks
/// directory); `Some(Err)` when it could not be opened: then only `--config` or
/// `$AGENTGATE_CONFIG` can name the policy, because the repository's own settings cannot be
/// read and skipping them could pick a weaker policy.
pub fn locate_for(
    explicit: Option<&Path>,
    repo: Option<Result<&Repo, &OpenError>>,
    git_dir: Option<&Path>,
) -> Result<Located, PolicyError> {
    let repo_config = || -> Result<Option<PathBuf>, String> {
        use std::os::unix::ffi::OsStringExt as _;
        match repo {
            None => Ok(None),
            Some(Ok(r)) => r
                .config_bytes("agentgate.config")
                .map(|v| v.map(|b| PathBuf::from(std::ffi::OsString::from_vec(b))))
                .map_err(|e: ConfigError| error_chain(&e)),
            Some(Err(e)) => Err(error_chain(e)),
        }
    };
    locate(explicit, &repo_config, git_dir)
}

/// Find ([`locate_for`]) and load the policy for a repository.
pub fn load_for(
    explicit: Option<&Path>,
    repo: Option<Result<&Repo, &OpenError>>,
    git_dir: Option<&Path>,
) -> Result<Policy, PolicyError> {
    Policy::load(&locate_for(explicit, repo, git_dir)?.path)
}

impl Policy {
    /// Read and validate the policy at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                PolicyError::MissingFile {
                    path: path.to_path_buf(),
                }
            } else {
                PolicyError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let (line, column) = line_col(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            PolicyError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: "the policy is not valid UTF-8".into(),
            }
        })?;
        Policy::parse(&text, path)
    }

    /// Validate policy text; `path` is used for messages and to resolve relative key paths.
    pub fn parse(text: &str, path: &Path) -> Result<Policy, PolicyError> {
        Policy::parse_with(text, path, &|p: &Path| std::fs::read(p))
    }

    /// [`Policy::parse`], reading the files it names through `read`.
    fn parse_with(
        text: &str,
        path: &Path,
        read: &dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    ) -> Result<Policy, PolicyError> {
        let v = Validator {
            text,
            path,
            read,
            files: std::cell::RefCell::new(Vec::new()),
        };
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            v.err_at(offset, e.message().trim_end().to_string())
        })?;
        v.validate(raw)
    }
}

struct Validator<'a> {
    text: &'a str,
    path: &'a Path,
    read: &'a dyn Fn(&Path) -> std::io::Result<Vec<u8>>,
    /// Every file read so far (for the digest and the archive).
    files: std::cell::RefCell<Vec<NamedFile>>,
}

impl Validator<'_> {
    /// Read a file the policy names, remembering its bytes.
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let bytes = (self.read)(path)?;
        let mut files = self.files.borrow_mut();
        if !files.iter().any(|f| f.path == path) {
            files.push(NamedFile {
                path: path.to_path_buf(),
                bytes: bytes.clone(),
            });
        }
        Ok(bytes)
    }

    fn err_at(&self, offset: usize, message: impl Into<String>) -> PolicyError {
        let (line, column) = line_col(self.text, offset);
        PolicyError::Invalid {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    fn err<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> PolicyError {
        self.err_at(spanned.span().start, message)
    }

    fn regex(&self, s: &Spanned<String>, what: &str) -> Result<Regex, PolicyError> {
        if s.get_ref().is_empty() {
            return Err(self.err(
                s,
                format!("{what} regex is empty (it would match everything)"),
            ));
        }
        Regex::new(s.get_ref()).map_err(|e| self.err(s, format!("invalid {what} regex: {e}")))
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(p)
        }
    }

    fn validate(&self, raw: RawPolicy) -> Result<Policy, PolicyError> {
        let version = raw
            .version
            .ok_or_else(|| self.err_at(0, "missing `version = 1`"))?;
        if *version.get_ref() != 1 {
            return Err(self.err(
                &version,
                format!(
                    "unsupported policy version {} (this agentgate reads version 1)",
                    version.get_ref()
                ),
            ));
        }

        let protect = raw.protect.ok_or_else(|| {
            self.err_at(
                self.text.len(),
                "missing [protect] table: without it nothing is protected",
            )
        })?;
        let protect = protect.into_inner();
        if protect.refs.get_ref().is_empty() {
            return Err(self.err(
                &protect.refs,
                "[protect] refs is empty: name at least one ref pattern",
            ));
        }
        let mut refs = Vec::new();
        for r in protect.refs.get_ref() {
            refs.push(RefPattern::new(r.get_ref()).map_err(|m| self.err(r, m))?);
        }

        let detect = match raw.detect {
            None => Detect::known_agents(),
            Some(d) => self.detect(d)?,
        };

        // Where to point errors about settings that only make sense together.
        let raw_attest = raw.attest.as_ref().map(Spanned::get_ref);
        let spans = (
            raw_attest.and_then(|a| a.threshold.as_ref().map(|t| t.span().start)),
            raw_attest
                .and_then(|a| a.require_predicates.as_ref().map(|l| l.span().start))
                .unwrap_or(0),
        );
        let attest = match raw.attest {
            None => AttestPolicy {
                notes_ref: DEFAULT_NOTES_REF.into(),
                attestations_dir: None,
                scope: Scope::Tip,
                bind: Bind::Commit,
                require_predicates: vec![
                    PREDICATE_SLSA_PROVENANCE_V1.into(),
                    PREDICATE_TEST_RESULT_V01.into(),
                ],
                max_age: None,
                threshold: 1,
            },
            Some(a) => self.attest(a)?,
        };

        let mut signers = Vec::new();
        for s in &raw.signer {
            let signer = self.signer(s)?;
            if signers.iter().any(|o: &Signer| o.name == signer.name) {
                return Err(self.err(
                    &s.get_ref().name,
                    format!("duplicate signer name {:?}", signer.name),
                ));
            }
            if let Some(other) = signers
                .iter()
                .find(|o: &&Signer| o.kind.same_identity(&signer.kind))
            {
                return Err(self.err(
                    s,
                    format!(
                        "signer {:?} has the same {} as signer {:?}: one key or identity is one signer",
                        signer.name,
                        match signer.kind {
                            SignerKind::Key { .. } => "public key",
                            SignerKind::Keyless { .. } => "issuer and identity",
                        },
                        other.name
                    ),
                ));
            }
            signers.push(signer);
        }
        self.check_signers_fit(spans, &attest, &signers)?;
        let approvals = self.approvals(raw.approvals.as_ref())?;
        let approvers = self.approvers(&raw.approver, &signers, &approvals, &detect)?;
        let path_rules = self.path_rules(&raw.path_rule, &approvers)?;
        let break_glass = raw
            .break_glass
            .as_ref()
            .map(|b| self.break_glass(b, &signers, &approvers))
            .transpose()?;

        let server = self.server(raw.server)?;
        let (audit_log, syslog_socket) = match raw.audit {
            None => (None, None),
            Some(a) => {
                let socket = match (a.syslog, a.syslog_socket) {
                    (Some(true), s) => Some(
                        s.map(|s| self.resolve(s.get_ref()))
                            .unwrap_or_else(|| PathBuf::from(DEFAULT_SYSLOG_SOCKET)),
                    ),
                    (_, Some(s)) => {
                        return Err(self.err(
                            &s,
                            "syslog_socket is set but syslog is not: add syslog = true",
                        ))
                    }
                    (_, None) => None,
                };
                (a.log.map(|p| self.resolve(&p)), socket)
            }
        };
        let files = self.files.take();
        let manifest = manifest_json(self.path, self.text, &files);
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
        Ok(Policy {
            source: self.path.to_path_buf(),
            digest,
            text: self.text.to_string(),
            files,
            syslog_socket,
            server,
            protect: Protect {
                refs,
                allow_delete: protect.allow_delete,
                allow_non_fast_forward: protect.allow_non_fast_forward,
            },
            detect,
            attest,
            signers,
            approvers,
            approvals,
            path_rules,
            break_glass,
            audit_log,
            hook_timeout: match raw.hook.and_then(|h| h.timeout) {
                None => DEFAULT_HOOK_TIMEOUT,
                Some(t) => {
                    let d = parse_duration(t.get_ref()).map_err(|e| self.err(&t, e))?;
                    if d > MAX_HOOK_TIMEOUT {
                        return Err(self.err(&t, format!("[hook] timeout {:?} is longer than an hour: a push would hang that long", t.get_ref())));
                    }
                    d
                }
            },
        })
    }

    fn server(&self, raw: Option<RawServer>) -> Result<ServerPolicy, PolicyError> {
        let Some(raw) = raw else {
            return Ok(ServerPolicy {
                key: None,
                verifier_id: None,
                repository_uri: None,
                promotions_ref: DEFAULT_PROMOTIONS_REF.into(),
            });
        };
        let nonempty = |v: &Option<Spanned<String>>, what: &str| match v {
            Some(x) if x.get_ref().trim().is_empty() => {
                Err(self.err(x, format!("{what} is empty: leave it out for the default")))
            }
            Some(x) => Ok(Some(x.get_ref().clone())),
            None => Ok(None),
        };
        let promotions_ref = match &raw.promotions_ref {
            None => DEFAULT_PROMOTIONS_REF.to_string(),
            Some(n)
                if n.get_ref().starts_with("refs/") && !n.get_ref().contains(['*', ' ', '\\']) =>
            {
                n.get_ref().clone()
            }
            Some(n) => {
                return Err(self.err(
                    n,
                    format!(
                    "promotions_ref {:?} must be a full ref name like \"{DEFAULT_PROMOTIONS_REF}\"",
                    n.get_ref()
                ),
                ))
            }
        };
        Ok(ServerPolicy {
            key: raw.key.map(|k| self.resolve(k.get_ref())),
            verifier_id: nonempty(&raw.verifier_id, "verifier_id")?,
            repository_uri: nonempty(&raw.repository_uri, "repository_uri")?,
            promotions_ref,
        })
    }

    fn detect(&self, d: Spanned<RawDetect>) -> Result<Detect, PolicyError> {
        let span_start = d.span().start;
        let d = d.into_inner();
        let require = match &d.require {
            None => Require::AgentCommits,
            Some(r) => match r.get_ref().as_str() {
                "agent-commits" => Require::AgentCommits,
                "all-commits" => Require::AllCommits,
                other => {
                    return Err(self.err(
                        r,
                        format!(
                            "unknown require {other:?}: use \"agent-commits\" or \"all-commits\""
                        ),
                    ))
                }
            },
        };
        let presets = match &d.presets {
            None => vec![crate::detect::PRESET_KNOWN_AGENTS.to_string()],
            Some(list) => {
                let mut out = Vec::new();
                for p in list.get_ref() {
                    if !crate::detect::PRESETS.contains(&p.get_ref().as_str()) {
                        return Err(self.err(
                            p,
                            format!(
                                "unknown preset {:?} (known: {})",
                                p.get_ref(),
                                crate::detect::PRESETS.join(", ")
                            ),
                        ));
                    }
                    out.push(p.get_ref().clone());
                }
                out
            }
        };
        let mut rules = Vec::new();
        for (i, r) in d.rule.iter().enumerate() {
            let rule = self.rule(r, i)?;
            if rules.iter().any(|o: &UserRule| o.id == rule.id) {
                return Err(self.err(r, format!("duplicate rule id {:?}", rule.id)));
            }
            rules.push(rule);
        }
        let mut sources = Vec::new();
        for s in d.sources.iter().flat_map(|l| l.get_ref()) {
            let Some(&(_, source)) = crate::detect::Source::ALL
                .iter()
                .find(|(name, _)| name == s.get_ref())
            else {
                let known: Vec<&str> = crate::detect::Source::ALL.iter().map(|(n, _)| *n).collect();
                return Err(self.err(
                    s,
                    format!(
                        "unknown source {:?} (known: {})",
                        s.get_ref(),
                        known.join(", ")
                    ),
                ));
            };
            if sources.contains(&source) {
                return Err(self.err(s, format!("source {:?} is listed twice", s.get_ref())));
            }
            sources.push(source);
        }
        if require == Require::AgentCommits
            && presets.is_empty()
            && rules.is_empty()
            && sources.is_empty()
        {
            return Err(self.err_at(span_start, "[detect] has no presets, rules or sources: nothing would ever be detected (use require = \"all-commits\" to gate every commit)"));
        }
        let mut detect = Detect {
            presets,
            require,
            rules,
            sources,
            actions: Vec::new(),
        };
        let ids = detect.rule_ids();
        for (i, a) in d.action.iter().enumerate() {
            let action = self.action(a, i, &ids)?;
            if detect.actions.iter().any(|o: &Action| o.id == action.id) {
                return Err(self.err(a, format!("duplicate action id {:?}", action.id)));
            }
            detect.actions.push(action);
        }
        Ok(detect)
    }

    /// One `[[detect.action]]`; `ids` are the rule ids the policy's detection can report.
    fn action(
        &self,
        a: &Spanned<RawAction>,
        index: usize,
        ids: &[String],
    ) -> Result<Action, PolicyError> {
        let raw = a.get_ref();
        let id = match &raw.id {
            Some(id) if id.get_ref().is_empty() => return Err(self.err(id, "action id is empty")),
            Some(id) => id.get_ref().clone(),
            None => format!("action-{}", index + 1),
        };
        let rules = match &raw.rules {
            None => vec!["*".to_string()],
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.err(
                    list,
                    "rules is empty: the action would never apply (leave it out for every rule)",
                ))
            }
            Some(list) => {
                let mut out = Vec::new();
                for p in list.get_ref() {
                    let pattern = p.get_ref();
                    if pattern == crate::detect::RULE_ALL_COMMITS {
                        return Err(self.err(p, format!("{pattern} is not a detection rule: actions apply to detected agent commits")));
                    }
                    if pattern.trim_end_matches('*').contains('*') {
                        return Err(
                            self.err(p, format!("rule pattern {pattern:?}: `*` may only end it"))
                        );
                    }
                    if !ids
                        .iter()
                        .any(|id| crate::detect::rule_pattern_matches(pattern, id))
                    {
                        return Err(self.err(p, format!("no detection rule of this policy matches {pattern:?} (rule ids look like \"known-agents:claude-co-author\", \"policy:<id>\", \"git-ai:note\"; a prefix may end in `*`)")));
                    }
                    out.push(pattern.clone());
                }
                out
            }
        };
        let mut refs = Vec::new();
        if let Some(list) = &raw.refs {
            if list.get_ref().is_empty() {
                return Err(self.err(list, "refs is empty: the action would never apply (leave it out for every protected ref)"));
            }
            for r in list.get_ref() {
                refs.push(RefPattern::new(r.get_ref()).map_err(|m| self.err(r, m))?);
            }
        }
        let message = match &raw.message {
            Some(m) if m.get_ref().trim().is_empty() => return Err(self.err(m, "message is empty")),
            Some(m) => Some(m.get_ref().trim().to_string()),
            None => None,
        };
        let effect_name = raw.effect.as_ref().ok_or_else(|| {
            self.err(
                a,
                "a [[detect.action]] needs `do` (\"refuse\" or \"require-trailer\")",
            )
        })?;
        let only_for_trailer = [
            (&raw.trailer, "trailer"),
            (&raw.value, "value"),
            (&raw.example, "example"),
        ];
        let effect = match effect_name.get_ref().as_str() {
            "refuse" => {
                if let Some((Some(k), what)) = only_for_trailer.iter().find(|(k, _)| k.is_some()) {
                    return Err(self.err(k, format!("`{what}` only applies to do = \"require-trailer\"")));
                }
                Effect::Refuse
            }
            "require-trailer" => {
                let key = raw.trailer.as_ref().ok_or_else(|| {
                    self.err(effect_name, "do = \"require-trailer\" needs `trailer` (the key, e.g. \"Assisted-by\")")
                })?;
                let k = key.get_ref();
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(self.err(key, format!("trailer key {k:?} is not a git trailer token (letters, digits and '-')")));
                }
                let value = raw
                    .value
                    .as_ref()
                    .map(|v| self.regex(v, "trailer value"))
                    .transpose()?;
                let example = match &raw.example {
                    None => match &value {
                        None => format!("{k}: <any value>"),
                        Some(re) => format!("{k}: <a value matching /{}/>", re.as_str()),
                    },
                    Some(e) => {
                        // The example must be a line the action accepts, or the fix it shows fails.
                        let line = e.get_ref();
                        let ok = line.split_once(':').is_some_and(|(ek, ev)| {
                            ek.trim().eq_ignore_ascii_case(k)
                                && value.as_ref().is_none_or(|re| re.is_match(ev.trim()))
                        });
                        if !ok {
                            return Err(self.err(e, format!("example {line:?} is not a `{k}: <value>` line this action accepts")));
                        }
                        line.trim().to_string()
                    }
                };
                Effect::RequireTrailer {
                    key: k.clone(),
                    value,
                    example,
                }
            }
            other => {
                return Err(self.err(
                    effect_name,
                    format!("unknown do {other:?}: use \"refuse\" or \"require-trailer\" (without an action, matching commits go through the gate)"),
                ))
            }
        };
        Ok(Action {
            id,
            rules,
            refs,
            effect,
            message,
        })
    }

    fn rule(&self, r: &Spanned<RawRule>, index: usize) -> Result<UserRule, PolicyError> {
        let raw = r.get_ref();
        let mut matchers = Vec::new();
        if let Some(key) = &raw.trailer {
            let k = key.get_ref();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(self.err(
                    key,
                    format!(
                        "trailer key {k:?} is not a git trailer token (letters, digits and '-')"
                    ),
                ));
            }
            let value = raw
                .value
                .as_ref()
                .map(|v| self.regex(v, "trailer value"))
                .transpose()?;
            matchers.push(Matcher::Trailer {
                key: k.to_ascii_lowercase(),
                value,
            });
        } else if let Some(v) = &raw.value {
            return Err(self.err(v, "`value` needs `trailer` in the same rule"));
        }
        let fields = [
            (&raw.author_name, IdentityField::AuthorName, "author_name"),
            (
                &raw.author_email,
                IdentityField::AuthorEmail,
                "author_email",
            ),
            (
                &raw.committer_name,
                IdentityField::CommitterName,
                "committer_name",
            ),
            (
                &raw.committer_email,
                IdentityField::CommitterEmail,
                "committer_email",
            ),
            (&raw.name, IdentityField::AnyName, "name"),
            (&raw.email, IdentityField::AnyEmail, "email"),
        ];
        for (value, field, what) in fields {
            if let Some(v) = value {
                matchers.push(Matcher::Identity {
                    field,
                    regex: self.regex(v, what)?,
                });
            }
        }
        if let Some(m) = &raw.message {
            let re = self.regex(m, "message")?;
            let re = Regex::new(&format!("(?m){}", re.as_str()))
                .map_err(|e| self.err(m, format!("invalid message regex: {e}")))?;
            matchers.push(Matcher::Message(re));
        }
        if matchers.len() != 1 {
            return Err(self.err(
                r,
                if matchers.is_empty() {
                    "a [[detect.rule]] needs one of trailer, author_name, author_email, committer_name, committer_email, name, email, message".to_string()
                } else {
                    "a [[detect.rule]] matches one thing: split it into several rules".to_string()
                },
            ));
        }
        let id = match &raw.id {
            Some(id) if id.get_ref().is_empty() => return Err(self.err(id, "rule id is empty")),
            Some(id) => id.get_ref().clone(),
            None => format!("rule-{}", index + 1),
        };
        Ok(UserRule {
            id: format!("policy:{id}"),
            matcher: matchers.remove(0),
        })
    }

    fn attest(&self, a: Spanned<RawAttest>) -> Result<AttestPolicy, PolicyError> {
        let a = a.into_inner();
        let notes_ref = match &a.notes_ref {
            None => DEFAULT_NOTES_REF.to_string(),
            Some(n)
                if n.get_ref().starts_with("refs/") && !n.get_ref().contains(['*', ' ', '\\']) =>
            {
                n.get_ref().clone()
            }
            Some(n) => {
                return Err(self.err(
                    n,
                    format!(
                        "notes_ref {:?} must be a full ref name like \"refs/notes/agentgate\"",
                        n.get_ref()
                    ),
                ))
            }
        };
        let scope = match &a.scope {
            None => Scope::Tip,
            Some(s) => match s.get_ref().as_str() {
                "tip" => Scope::Tip,
                "each" => Scope::Each,
                other => {
                    return Err(self.err(
                        s,
                        format!("unknown scope {other:?}: use \"tip\" or \"each\""),
                    ))
                }
            },
        };
        let bind = match &a.bind {
            None => Bind::Commit,
            Some(s) => match s.get_ref().as_str() {
                "commit" => Bind::Commit,
                "tree" => Bind::Tree,
                other => {
                    return Err(self.err(
                        s,
                        format!("unknown bind {other:?}: use \"commit\" or \"tree\""),
                    ))
                }
            },
        };
        let require_predicates = match &a.require_predicates {
            None => vec![
                PREDICATE_SLSA_PROVENANCE_V1.into(),
                PREDICATE_TEST_RESULT_V01.into(),
            ],
            Some(list) => {
                if list.get_ref().is_empty() {
                    return Err(self.err(list, "require_predicates is empty: require at least the SLSA provenance predicate"));
                }
                let mut out: Vec<String> = Vec::new();
                for p in list.get_ref() {
                    if !p.get_ref().starts_with("https://") {
                        return Err(
                            self.err(p, format!("predicate type {:?} is not a URI", p.get_ref()))
                        );
                    }
                    out.push(p.get_ref().clone());
                }
                out
            }
        };
        let max_age = a
            .max_age
            .as_ref()
            .map(|m| parse_duration(m.get_ref()).map_err(|e| self.err(m, e)))
            .transpose()?;
        let threshold = match &a.threshold {
            None => 1,
            Some(t) => match usize::try_from(*t.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(self.err(
                        t,
                        format!(
                            "threshold = {} is not a number of signers (1 or more)",
                            t.get_ref()
                        ),
                    ))
                }
            },
        };
        Ok(AttestPolicy {
            notes_ref,
            attestations_dir: a.attestations_dir.map(|p| self.resolve(&p)),
            scope,
            bind,
            require_predicates,
            max_age,
            threshold,
        })
    }

    /// Settings that only make sense together: a threshold no set of signers can meet, and
    /// builder constraints on a policy that never looks at a provenance.
    fn check_signers_fit(
        &self,
        (threshold_at, predicates_at): (Option<usize>, usize),
        attest: &AttestPolicy,
        signers: &[Signer],
    ) -> Result<(), PolicyError> {
        if attest.threshold > 1 && attest.threshold > signers.len() {
            if let Some(at) = threshold_at {
                return Err(self.err_at(
                    at,
                    format!(
                        "threshold = {} but only {} [[signer]] entr{} configured: no commit could ever be admitted",
                        attest.threshold,
                        signers.len(),
                        if signers.len() == 1 { "y is" } else { "ies are" }
                    ),
                ));
            }
        }
        let constrained = signers
            .iter()
            .any(|s| s.builder_id.is_some() || s.build_type.is_some());
        if constrained
            && !attest
                .require_predicates
                .iter()
                .any(|p| p == PREDICATE_SLSA_PROVENANCE_V1)
        {
            return Err(self.err_at(
                predicates_at,
                format!("a [[signer]] has builder_id or build_type, which are checked on the provenance, but require_predicates does not require {PREDICATE_SLSA_PROVENANCE_V1}"),
            ));
        }
        Ok(())
    }

    fn approvals(&self, a: Option<&Spanned<RawApprovals>>) -> Result<ApprovalPolicy, PolicyError> {
        let Some(a) = a.map(Spanned::get_ref) else {
            return Ok(ApprovalPolicy {
                bind: Bind::Commit,
                distinct_from_author: true,
            });
        };
        let bind = match &a.bind {
            None => Bind::Commit,
            Some(b) => match b.get_ref().as_str() {
                "commit" => Bind::Commit,
                "tree" => Bind::Tree,
                other => {
                    return Err(self.err(
                        b,
                        format!("unknown bind {other:?}: use \"commit\" or \"tree\""),
                    ))
                }
            },
        };
        Ok(ApprovalPolicy {
            bind,
            distinct_from_author: a.distinct_from_author.unwrap_or(true),
        })
    }

    /// `[[approver]]` entries: a key or keyless identity each (read as a `[[signer]]` is), one
    /// role per key (a gate key that could approve would make the approval worth nothing), an
    /// email to compare with authors when `distinct_from_author` asks for it, and never an
    /// identity detection flags as an agent's.
    fn approvers(
        &self,
        raw: &[Spanned<RawApprover>],
        signers: &[Signer],
        approvals: &ApprovalPolicy,
        detect: &Detect,
    ) -> Result<Vec<Approver>, PolicyError> {
        let detector = crate::detect::Detector::new(detect);
        let mut out: Vec<Approver> = Vec::new();
        for a in raw {
            let r = a.get_ref();
            let as_signer = RawSigner {
                name: r.name.clone(),
                public_key: r.public_key.clone(),
                issuer: r.issuer.clone(),
                identity: r.identity.clone(),
                identity_regex: r.identity_regex.clone(),
                trusted_root: r.trusted_root.clone(),
                builder_id: None,
                build_type: None,
            };
            let signer = self.signer(&Spanned::new(a.span(), as_signer))?;
            if out.iter().any(|o| o.name == signer.name) {
                return Err(self.err(
                    &r.name,
                    format!("duplicate approver name {:?}", signer.name),
                ));
            }
            if let Some(o) = out.iter().find(|o| o.kind.same_identity(&signer.kind)) {
                return Err(self.err(
                    a,
                    format!(
                        "approver {:?} has the same key or identity as approver {:?}",
                        signer.name, o.name
                    ),
                ));
            }
            if let Some(o) = signers.iter().find(|o| o.kind.same_identity(&signer.kind)) {
                return Err(self.err(a, format!("approver {:?} has the same key or identity as signer {:?}: a gate key that can also approve makes approvals worth nothing; give each role its own key", signer.name, o.name)));
            }
            let email = match &r.email {
                Some(e) if !e.get_ref().contains('@') => {
                    return Err(self.err(
                        e,
                        format!("email {:?} is not an email address", e.get_ref()),
                    ))
                }
                Some(e) => Some(e.get_ref().clone()),
                None => None,
            };
            let approver = Approver {
                name: signer.name,
                kind: signer.kind,
                email,
            };
            if approvals.distinct_from_author && approver.emails().is_empty() {
                return Err(self.err(a, format!("approver {:?} has no email: [approvals] distinct_from_author compares it with each commit's author and committer (add email = \"...\", or set distinct_from_author = false)", approver.name)));
            }
            if let Some(m) = agent_identity(&detector, &approver.name, &approver.emails()) {
                return Err(self.err(a, format!("approver {:?} is an agent identity by detection rule {} ({}): approvals by agents never count", approver.name, m.rule, m.evidence)));
            }
            out.push(approver);
        }
        Ok(out)
    }

    fn path_rules(
        &self,
        raw: &[Spanned<RawPathRule>],
        approvers: &[Approver],
    ) -> Result<Vec<PathRule>, PolicyError> {
        let mut out: Vec<PathRule> = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let rr = r.get_ref();
            let id = match &rr.id {
                Some(id) if id.get_ref().is_empty() => {
                    return Err(self.err(id, "path rule id is empty"))
                }
                Some(id) => id.get_ref().clone(),
                None => format!("path-rule-{}", i + 1),
            };
            if out.iter().any(|o| o.id == id) {
                return Err(self.err(r, format!("duplicate path rule id {id:?}")));
            }
            if rr.paths.get_ref().is_empty() {
                return Err(self.err(&rr.paths, "paths is empty: name at least one pattern"));
            }
            let mut patterns = Vec::new();
            for p in rr.paths.get_ref() {
                patterns
                    .push(crate::paths::PathPattern::new(p.get_ref()).map_err(|m| self.err(p, m))?);
            }
            let action = match (rr.action.get_ref().as_str(), &rr.approvals) {
                ("refuse", None) => PathAction::Refuse,
                ("refuse", Some(n)) => {
                    return Err(
                        self.err(n, "approvals only applies to action = \"require-approval\"")
                    )
                }
                ("require-approval", n) => {
                    let n = match n {
                        None => 1,
                        Some(n) => match usize::try_from(*n.get_ref()) {
                            Ok(v) if v >= 1 => v,
                            _ => {
                                return Err(self.err(
                                    n,
                                    format!(
                                        "approvals = {} is not a number of approvers (1 or more)",
                                        n.get_ref()
                                    ),
                                ))
                            }
                        },
                    };
                    if n > approvers.len() {
                        return Err(self.err(r, format!("path rule {id:?} needs {n} approval(s) but only {} [[approver]] entr{} configured: no commit could ever be admitted", approvers.len(), if approvers.len() == 1 { "y is" } else { "ies are" })));
                    }
                    PathAction::Approvals(n)
                }
                (other, _) => {
                    return Err(self.err(
                        &rr.action,
                        format!("unknown action {other:?}: use \"refuse\" or \"require-approval\""),
                    ))
                }
            };
            out.push(PathRule {
                id: format!("path:{id}"),
                patterns,
                action,
            });
        }
        Ok(out)
    }

    /// `[break_glass]`: a dedicated key or identity (never one that signs or approves too).
    fn break_glass(
        &self,
        b: &Spanned<RawBreakGlass>,
        signers: &[Signer],
        approvers: &[Approver],
    ) -> Result<BreakGlassPolicy, PolicyError> {
        let r = b.get_ref();
        let name = r
            .name
            .clone()
            .unwrap_or_else(|| Spanned::new(b.span(), "break-glass".to_string()));
        let as_signer = RawSigner {
            name,
            public_key: r.public_key.clone(),
            issuer: r.issuer.clone(),
            identity: r.identity.clone(),
            identity_regex: r.identity_regex.clone(),
            trusted_root: r.trusted_root.clone(),
            builder_id: None,
            build_type: None,
        };
        let s = self.signer(&Spanned::new(b.span(), as_signer))?;
        if let Some(o) = signers.iter().find(|o| o.kind.same_identity(&s.kind)) {
            return Err(self.err(b, format!("[break_glass] has the same key or identity as signer {:?}: the break-glass key must be dedicated", o.name)));
        }
        if let Some(o) = approvers.iter().find(|o| o.kind.same_identity(&s.kind)) {
            return Err(self.err(b, format!("[break_glass] has the same key or identity as approver {:?}: the break-glass key must be dedicated", o.name)));
        }
        let max_validity = match &r.max_validity {
            None => DEFAULT_BREAK_GLASS_VALIDITY,
            Some(m) => {
                let d = parse_duration(m.get_ref()).map_err(|e| self.err(m, e))?;
                if d > Duration::from_secs(7 * 86_400) {
                    return Err(self.err(m, "max_validity longer than a week: an override is for an emergency, not a standing exception"));
                }
                d
            }
        };
        Ok(BreakGlassPolicy {
            name: s.name,
            kind: s.kind,
            max_validity,
        })
    }

    fn signer(&self, s: &Spanned<RawSigner>) -> Result<Signer, PolicyError> {
        let raw = s.get_ref();
        let name = raw.name.get_ref().clone();
        if name.is_empty() {
            return Err(self.err(&raw.name, "signer name is empty"));
        }
        let keyless =
            raw.issuer.is_some() || raw.identity.is_some() || raw.identity_regex.is_some();
        let kind = match (&raw.public_key, keyless) {
            (Some(_), true) => {
                return Err(self.err(
                    s,
                    format!("signer {name:?} has both public_key and a keyless identity: pick one"),
                ))
            }
            (None, false) => {
                return Err(self.err(
                    s,
                    format!("signer {name:?} needs public_key, or issuer and identity"),
                ))
            }
            (Some(p), false) => {
                if let Some(t) = &raw.trusted_root {
                    return Err(self.err(t, "trusted_root only applies to keyless signers"));
                }
                let path = self.resolve(p.get_ref());
                let pem = self.read_file(&path).map_err(|e| {
                    self.err(p, format!("cannot read public key {}: {e}", path.display()))
                })?;
                let key = PublicKey::from_pem(&String::from_utf8_lossy(&pem)).map_err(|e| {
                    self.err(
                        p,
                        format!("{} is not a usable public key: {e}", path.display()),
                    )
                })?;
                SignerKind::Key { path, key }
            }
            (None, true) => {
                let issuer = raw
                    .issuer
                    .as_ref()
                    .ok_or_else(|| self.err(s, format!("keyless signer {name:?} needs issuer")))?;
                if issuer.get_ref().is_empty() {
                    return Err(self.err(issuer, "issuer is empty"));
                }
                let identity = match (&raw.identity, &raw.identity_regex) {
                    (Some(i), None) if !i.get_ref().is_empty() => {
                        IdentityMatch::Exact(i.get_ref().clone())
                    }
                    (Some(i), None) => return Err(self.err(i, "identity is empty")),
                    (None, Some(r)) => {
                        self.regex(r, "identity_regex")?;
                        IdentityMatch::regex(r.get_ref())
                            .map_err(|e| self.err(r, format!("invalid identity_regex: {e}")))?
                    }
                    (Some(i), Some(_)) => {
                        return Err(self.err(i, "use identity or identity_regex, not both"))
                    }
                    (None, None) => {
                        return Err(self.err(
                            s,
                            format!("keyless signer {name:?} needs identity (or identity_regex)"),
                        ))
                    }
                };
                let (trusted_root, root) = match &raw.trusted_root {
                    None => {
                        let root =
                            agentgate_formats::sigstore::public_good_root().map_err(|e| {
                                self.err(s, format!("the embedded Sigstore trusted root: {e}"))
                            })?;
                        (None, root)
                    }
                    Some(t) => {
                        let path = self.resolve(t.get_ref());
                        let root = self
                            .read_file(&path)
                            .map_err(|e| e.to_string())
                            .and_then(|b| {
                                TrustedRoot::from_json(&String::from_utf8_lossy(&b))
                                    .map_err(|e| e.to_string())
                            })
                            .map_err(|e| {
                                self.err(
                                    t,
                                    format!("cannot use trusted root {}: {e}", path.display()),
                                )
                            })?;
                        (Some(path), root)
                    }
                };
                SignerKind::Keyless {
                    issuer: issuer.get_ref().clone(),
                    identity,
                    trusted_root,
                    root: Box::new(root),
                }
            }
        };
        let exact = |v: &Option<Spanned<String>>, what: &str| {
            match v {
            Some(x) if x.get_ref().is_empty() => Err(self.err(
                x,
                format!("{what} is empty: leave it out, or give the exact string the provenance must carry"),
            )),
            Some(x) => Ok(Some(x.get_ref().clone())),
            None => Ok(None),
        }
        };
        let builder_id = exact(&raw.builder_id, "builder_id")?;
        let build_type = exact(&raw.build_type, "build_type")?;
        Ok(Signer {
            name,
            kind,
            builder_id,
            build_type,
        })
    }
}

/// The first detection rule (other than `require = "all-commits"`) that flags this identity as
/// an agent's: as author and committer of an empty commit, with each email in turn.
pub fn agent_identity(
    detector: &crate::detect::Detector,
    name: &str,
    emails: &[&str],
) -> Option<crate::detect::Match> {
    let sig = |email: &str| agentgate_git::Signature {
        name: name.to_string(),
        email: email.to_string(),
        time: 0,
    };
    let zero = agentgate_git::ObjectId::zero(20);
    let none = [""];
    let emails = if emails.is_empty() { &none[..] } else { emails };
    emails.iter().find_map(|email| {
        let c = agentgate_git::Commit {
            id: zero.clone(),
            tree: zero.clone(),
            parents: vec![],
            author: sig(email),
            committer: sig(email),
            encoding: None,
            message: String::new(),
        };
        detector
            .detect(&c, &crate::trailers::TrailerBlock::default())
            .into_iter()
            .find(|m| m.rule != crate::detect::RULE_ALL_COMMITS)
    })
}

impl SignerKind {
    /// The same key, or the same exact keyless identity: such entries are one signer twice.
    fn same_identity(&self, other: &SignerKind) -> bool {
        match (self, other) {
            (SignerKind::Key { key: a, .. }, SignerKind::Key { key: b, .. }) => {
                a.hint() == b.hint()
            }
            (
                SignerKind::Keyless {
                    issuer: ia,
                    identity: IdentityMatch::Exact(a),
                    trusted_root: ra,
                    ..
                },
                SignerKind::Keyless {
                    issuer: ib,
                    identity: IdentityMatch::Exact(b),
                    trusted_root: rb,
                    ..
                },
            ) => ia == ib && a == b && ra == rb,
            _ => false,
        }
    }
}

/// The manifest's canonical JSON: what the digest is the SHA-256 of, and the archive's bytes.
fn manifest_json(path: &Path, text: &str, files: &[NamedFile]) -> Vec<u8> {
    use base64::Engine as _;
    let m = PolicyManifest {
        agentgate_policy: 1,
        path: path.to_string_lossy().into_owned(),
        text: text.to_string(),
        files: files
            .iter()
            .map(|f| ManifestFile {
                path: f.path.to_string_lossy().into_owned(),
                sha256: hex::encode(Sha256::digest(&f.bytes)),
                base64: base64::engine::general_purpose::STANDARD.encode(&f.bytes),
            })
            .collect(),
    };
    // A struct of strings and numbers always serializes.
    serde_json::to_vec(&m).unwrap_or_default()
}

impl Policy {
    /// The archived form: the policy's text and every key file it named, whose SHA-256 is
    /// [`Policy::digest`].
    pub fn manifest(&self) -> Vec<u8> {
        manifest_json(&self.source, &self.text, &self.files)
    }

    /// A policy from its archived manifest, as it was when it was archived: its key files are
    /// read from the manifest, never from the disk. The manifest's own hash must be the digest
    /// it is filed under (`expected`).
    pub fn from_manifest(bytes: &[u8], expected: &str) -> Result<Policy, PolicyError> {
        use base64::Engine as _;
        let invalid = |message: String| PolicyError::Invalid {
            path: PathBuf::from("(archived policy)"),
            line: 1,
            column: 1,
            message,
        };
        let actual = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        if actual != expected {
            return Err(invalid(format!(
                "the archived policy hashes to {actual}, not {expected}: it was edited"
            )));
        }
        let m: PolicyManifest = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a policy manifest: {e}")))?;
        let mut files = std::collections::HashMap::new();
        for f in &m.files {
            let b = base64::engine::general_purpose::STANDARD
                .decode(&f.base64)
                .map_err(|e| invalid(format!("{}: {e}", f.path)))?;
            files.insert(PathBuf::from(&f.path), b);
        }
        let read = |p: &Path| -> std::io::Result<Vec<u8>> {
            files.get(p).cloned().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "not in the archived policy")
            })
        };
        let policy = Policy::parse_with(&m.text, Path::new(&m.path), &read)?;
        if policy.digest != expected {
            return Err(invalid(format!(
                "the archived policy re-validates to {}, not {expected}",
                policy.digest
            )));
        }
        Ok(policy)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.as_bytes().get(..offset).unwrap_or(text.as_bytes());
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map(|p| p + 1)
        .unwrap_or(0);
    let column = String::from_utf8_lossy(before.get(line_start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    (line, column)
}

/// "30d", "12h", "90m", "2w", "45s".
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("invalid duration {s:?}: expected a number and a unit, like \"30d\"")
    })?;
    if unit == "ms" {
        if n == 0 {
            return Err(format!("duration {s:?} is zero"));
        }
        return Ok(Duration::from_millis(n));
    }
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "invalid duration {s:?}: the unit must be ms, s, m, h, d or w"
            ))
        }
    };
    if n == 0 {
        return Err(format!(
            "duration {s:?} is zero: no attestation could ever be young enough"
        ));
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Path::new("/etc/agentgate/policy.toml"))
    }

    fn err(text: &str) -> (usize, usize, String) {
        match parse(text) {
            Err(PolicyError::Invalid {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected an invalid-policy error, got {other:?}"),
        }
    }

    const MIN: &str = "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n";

    #[test]
    fn minimal_policy_gets_secure_defaults() {
        let p = parse(MIN).unwrap();
        assert_eq!(p.detect.presets, vec!["known-agents"]);
        assert_eq!(p.detect.require, Require::AgentCommits);
        assert_eq!(p.attest.notes_ref, "refs/notes/agentgate");
        assert_eq!(p.attest.require_predicates.len(), 2);
        assert!(!p.protect.allow_delete && !p.protect.allow_non_fast_forward);
        assert!(p.digest.starts_with("sha256:"));
    }

    #[test]
    fn errors_name_line_and_column() {
        let cases = [
            ("[protect]\nrefs = [\"refs/heads/main\"]\n", 1, "version"),
            (
                "version = 2\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                1,
                "unsupported policy version",
            ),
            ("version = 1\n[protect]\nrefs = []\n", 3, "empty"),
            (
                "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\nbogus = 1\n",
                4,
                "unknown field",
            ),
            (
                "version = 1\n[protect]\nrefs = [\"heads/main\"]\n",
                3,
                "must start with",
            ),
            (
                "version = 1\n[protect]\nrefs = [\"refs/heads/[a]\"]\n",
                3,
                "not allowed",
            ),
            (
                concat!(
                    "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                    "[[detect.rule]]\ntrailer = \"X\"\nvalue = \"(\"\n"
                ),
                6,
                "invalid trailer value regex",
            ),
            (
                concat!(
                    "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                    "[detect]\npresets = []\n"
                ),
                4,
                "nothing would ever be detected",
            ),
            (
                concat!(
                    "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                    "[detect]\npresets = [\"nope\"]\n"
                ),
                5,
                "unknown preset",
            ),
            (
                concat!(
                    "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                    "[attest]\nmax_age = \"3y\"\n"
                ),
                5,
                "unit",
            ),
            (
                concat!(
                    "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                    "[[signer]]\nname = \"a\"\npublic_key = \"/nonexistent/k.pub\"\n"
                ),
                6,
                "cannot read public key",
            ),
            (
                concat!(
                    "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n",
                    "[[signer]]\nname = \"a\"\nissuer = \"https://x\"\n"
                ),
                4,
                "needs identity",
            ),
            ("version = 1\n[protect\n", 2, ""),
        ];
        for (text, line, needle) in cases {
            let (l, _c, m) = err(text);
            assert_eq!(l, line, "line for {text:?}: {m}");
            assert!(
                m.contains(needle),
                "message {m:?} should contain {needle:?}"
            );
        }
    }

    #[test]
    fn user_rule_needs_exactly_one_matcher() {
        let base = "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\n";
        let (_, _, m) = err(&format!("{base}[[detect.rule]]\nid = \"x\"\n"));
        assert!(m.contains("needs one of"));
        let (_, _, m) = err(&format!(
            "{base}[[detect.rule]]\ntrailer = \"A\"\nemail = \"b\"\n"
        ));
        assert!(m.contains("split it"));
        let p = parse(&format!(
            "{base}[[detect.rule]]\nid = \"bots\"\nauthor_email = '\\[bot\\]@'\n"
        ))
        .unwrap();
        assert_eq!(p.detect.rules[0].id, "policy:bots");
    }

    #[test]
    fn detect_sources_and_actions() {
        let p = parse(&format!(
            "{MIN}[detect]\nsources = [\"git-ai\"]\n\n[[detect.action]]\nid = \"kernel\"\nrules = [\"known-agents:agent-signed-off-by\"]\ndo = \"refuse\"\nmessage = \"AI agents must not add Signed-off-by\"\n\n[[detect.action]]\ndo = \"require-trailer\"\ntrailer = \"Assisted-by\"\nvalue = '^\\S+:\\S+'\nexample = \"Assisted-by: Claude:claude-opus-4-5\"\n\n[[detect.action]]\nrefs = [\"refs/heads/release/*\"]\nrules = [\"known-agents:*\", \"git-ai:note\"]\ndo = \"refuse\"\n"
        ))
        .unwrap();
        let d = &p.detect;
        assert_eq!(d.presets, vec!["known-agents"]);
        assert_eq!(d.sources, vec![Source::GitAi]);
        assert_eq!(d.actions.len(), 3);
        assert_eq!(d.actions[0].id, "kernel");
        assert!(matches!(d.actions[0].effect, Effect::Refuse));
        assert_eq!(d.actions[1].id, "action-2");
        assert_eq!(d.actions[1].rules, vec!["*"]);
        match &d.actions[1].effect {
            Effect::RequireTrailer { key, example, .. } => {
                assert_eq!(key, "Assisted-by");
                assert_eq!(example, "Assisted-by: Claude:claude-opus-4-5");
            }
            other => panic!("{other:?}"),
        }
        assert!(d.actions[2].applies_to_ref("refs/heads/release/2"));
        assert!(!d.actions[2].applies_to_ref("refs/heads/main"));
        // Sources alone are detection enough.
        assert!(parse(&format!(
            "{MIN}[detect]\npresets = []\nsources = [\"git-ai\"]\n"
        ))
        .is_ok());

        let action = |body: &str| format!("{MIN}[detect]\n[[detect.action]]\n{body}");
        let cases = [
            (format!("{MIN}[detect]\nsources = [\"gitai\"]\n"), 5, "unknown source"),
            (format!("{MIN}[detect]\nsources = [\"git-ai\", \"git-ai\"]\n"), 5, "twice"),
            (action("rules = [\"*\"]\n"), 5, "needs `do`"),
            (action("do = \"allow\"\n"), 6, "unknown do"),
            (action("do = \"refuse\"\nrules = [\"known-agent:*\"]\n"), 7, "no detection rule"),
            (action("do = \"refuse\"\nrules = [\"git-ai:note\"]\n"), 7, "no detection rule"),
            (action("do = \"refuse\"\nrules = [\"require:all-commits\"]\n"), 7, "not a detection rule"),
            (action("do = \"refuse\"\nrules = [\"known-*:claude\"]\n"), 7, "may only end"),
            (action("do = \"refuse\"\nrules = []\n"), 7, "rules is empty"),
            (action("do = \"refuse\"\nrefs = [\"heads/main\"]\n"), 7, "must start with"),
            (action("do = \"refuse\"\ntrailer = \"Assisted-by\"\n"), 7, "only applies"),
            (action("do = \"require-trailer\"\n"), 6, "needs `trailer`"),
            (action("do = \"require-trailer\"\ntrailer = \"Assisted by\"\n"), 7, "not a git trailer token"),
            (action("do = \"require-trailer\"\ntrailer = \"Assisted-by\"\nvalue = '^\\S+:\\S+'\nexample = \"Assisted-by: Claude\"\n"), 9, "example"),
            (action("do = \"require-trailer\"\ntrailer = \"Assisted-by\"\nvalue = \"(\"\n"), 8, "invalid trailer value regex"),
            (action("do = \"refuse\"\nwhen = 1\n"), 7, "unknown field"),
            (action("id = \"a\"\ndo = \"refuse\"\n[[detect.action]]\nid = \"a\"\ndo = \"refuse\"\n"), 8, "duplicate action id"),
        ];
        for (text, line, needle) in cases {
            let (l, _c, m) = err(&text);
            assert_eq!(l, line, "line for {text:?}: {m}");
            assert!(
                m.contains(needle),
                "message {m:?} should contain {needle:?}"
            );
        }
    }

    #[test]
    fn ref_globs() {
        let p = RefPattern::new("refs/heads/release/*").unwrap();
        assert!(p.matches("refs/heads/release/1.0"));
        assert!(!p.matches("refs/heads/release/1.0/hotfix"));
        assert!(!p.matches("refs/heads/release"));
        let p = RefPattern::new("refs/tags/v*").unwrap();
        assert!(p.matches("refs/tags/v1.2.3"));
        assert!(!p.matches("refs/tags/x1"));
        let p = RefPattern::new("refs/heads/**").unwrap();
        assert!(p.matches("refs/heads/a/b/c"));
        let p = RefPattern::new("refs/heads/main").unwrap();
        assert!(
            p.matches("refs/heads/main")
                && !p.matches("refs/heads/main2")
                && !p.matches("refs/heads/mai")
        );
        assert!(RefPattern::new("refs/heads/a.b")
            .unwrap()
            .matches("refs/heads/a.b"));
        assert!(!RefPattern::new("refs/heads/a.b")
            .unwrap()
            .matches("refs/heads/axb"));
    }

    #[test]
    fn identity_regex_is_anchored() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{MIN}[[signer]]\nname = \"g\"\nissuer = \"https://i\"\nidentity_regex = 'https://github.com/acme/.*'\n");
        let p = Policy::parse(&text, &dir.path().join("p.toml")).unwrap();
        match &p.signers[0].kind {
            SignerKind::Keyless { identity, .. } => {
                assert!(identity.matches("https://github.com/acme/x"));
                assert!(!identity.matches("evil https://github.com/acme/x"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signer_constraints_and_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let key = |name: &str| {
            let k =
                agentgate_formats::SigningKey::generate(agentgate_formats::KeyAlgorithm::Ed25519)
                    .unwrap();
            let path = dir.path().join(format!("{name}.pub"));
            std::fs::write(&path, k.public_key().to_pem()).unwrap();
            path.display().to_string()
        };
        let (a, b) = (key("a"), key("b"));
        let text = format!(
            "{MIN}[attest]\nthreshold = 2\n[[signer]]\nname = \"a\"\npublic_key = \"{a}\"\nbuilder_id = \"https://ci/gate\"\nbuild_type = \"urn:t\"\n[[signer]]\nname = \"b\"\npublic_key = \"{b}\"\n"
        );
        let p = Policy::parse(&text, &dir.path().join("p.toml")).unwrap();
        assert_eq!(p.attest.threshold, 2);
        assert_eq!(p.signers[0].builder_id.as_deref(), Some("https://ci/gate"));
        assert_eq!(p.signers[0].build_type.as_deref(), Some("urn:t"));
        assert_eq!(
            (
                p.signers[1].builder_id.as_ref(),
                p.signers[1].build_type.as_ref()
            ),
            (None, None)
        );
        assert_eq!(parse(MIN).unwrap().attest.threshold, 1);

        let signer = |name: &str, key: &str| {
            format!("[[signer]]\nname = \"{name}\"\npublic_key = \"{key}\"\n")
        };
        let keyless = |name: &str, identity: &str| {
            format!("[[signer]]\nname = \"{name}\"\nissuer = \"https://i\"\n{identity}\n")
        };
        let cases = [
            (format!("{MIN}{}build_type = \"\"\n", signer("a", &a)), 7, "build_type is empty"),
            (format!("{MIN}{}builder = \"x\"\n", signer("a", &a)), 7, "unknown field"),
            (format!("{MIN}[attest]\nthreshold = -1\n"), 5, "1 or more"),
            (format!("{MIN}[attest]\nthreshold = 3\n{}{}", signer("a", &a), signer("b", &b)), 5, "only 2 [[signer]] entries"),
            (format!("{MIN}{}{}", signer("a", &a), signer("b", &a)), 7, "same public key as signer \"a\""),
            (format!("{MIN}{}{}", keyless("a", "identity = \"x\""), keyless("b", "identity = \"x\"")), 8, "same issuer and identity"),
            (format!("{MIN}[attest]\nrequire_predicates = [\"https://example.com/p\"]\n{}builder_id = \"x\"\n", signer("a", &a)), 5, "does not require"),
        ];
        for (text, line, needle) in cases {
            match Policy::parse(&text, &dir.path().join("p.toml")) {
                Err(PolicyError::Invalid {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{text}: {message}");
                    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        // Different exact identities, or a regex next to an exact one, are distinct signers.
        let text = format!(
            "{MIN}{}{}{}",
            keyless("a", "identity = \"x\""),
            keyless("b", "identity = \"y\""),
            keyless("c", "identity_regex = \"x\"")
        );
        assert_eq!(
            Policy::parse(&text, &dir.path().join("p.toml"))
                .unwrap()
                .signers
                .len(),
            3
        );
    }

    #[test]
    fn approvers_path_rules_and_break_glass() {
        let dir = tempfile::tempdir().unwrap();
        let key = |name: &str| {
            let k =
                agentgate_formats::SigningKey::generate(agentgate_formats::KeyAlgorithm::Ed25519)
                    .unwrap();
            let path = dir.path().join(format!("{name}.pub"));
            std::fs::write(&path, k.public_key().to_pem()).unwrap();
            path.display().to_string()
        };
        let (gate, alice, bg) = (key("gate"), key("alice"), key("bg"));
        let signer = format!("[[signer]]\nname = \"gate\"\npublic_key = \"{gate}\"\n");
        let approver = |email: &str, k: &str| {
            format!("[[approver]]\nname = \"alice\"\npublic_key = \"{k}\"\nemail = \"{email}\"\n")
        };
        let rule = "[[path_rule]]\nid = \"ci\"\npaths = [\".github/workflows/**\"]\naction = \"require-approval\"\n";
        let ok = format!(
            "{MIN}{signer}{}{rule}[break_glass]\npublic_key = \"{bg}\"\nmax_validity = \"2h\"\n",
            approver("alice@example.com", &alice)
        );
        let p = Policy::parse(&ok, &dir.path().join("p.toml")).unwrap();
        assert_eq!(p.approvers[0].emails(), vec!["alice@example.com"]);
        assert!(p.approvals.distinct_from_author, "on by default");
        assert_eq!(p.path_rules[0].id, "path:ci");
        assert_eq!(p.path_rules[0].action, PathAction::Approvals(1));
        assert!(p.path_rules[0]
            .matching(b".github/workflows/ci.yml")
            .is_some());
        let bgp = p.break_glass.as_ref().unwrap();
        assert_eq!(
            (bgp.name.as_str(), bgp.max_validity),
            ("break-glass", Duration::from_secs(7200))
        );
        assert!(
            parse(MIN).unwrap().break_glass.is_none(),
            "off unless named"
        );

        let cases = [
            (
                format!("{MIN}{}", approver("noreply@anthropic.com", &alice)),
                "is an agent identity",
            ),
            (
                format!("{MIN}{signer}{}", approver("a@example.com", &gate)),
                "same key or identity as signer",
            ),
            (
                format!("{MIN}[[approver]]\nname = \"x\"\npublic_key = \"{alice}\"\n"),
                "has no email",
            ),
            (
                format!(
                    "{MIN}{}{}",
                    approver("a@example.com", &alice),
                    rule.replace(
                        "\"require-approval\"\n",
                        "\"require-approval\"\napprovals = 2\n"
                    )
                ),
                "only 1 [[approver]]",
            ),
            (format!("{MIN}{rule}"), "only 0 [[approver]]"),
            (
                format!(
                    "{MIN}[[path_rule]]\npaths = [\".github/workflows/\"]\naction = \"refuse\"\n"
                ),
                "ends in a slash",
            ),
            (
                format!("{MIN}[[path_rule]]\npaths = [\"!x\"]\naction = \"refuse\"\n"),
                "negative",
            ),
            (
                format!("{MIN}[[path_rule]]\npaths = []\naction = \"refuse\"\n"),
                "paths is empty",
            ),
            (
                format!("{MIN}[[path_rule]]\npaths = [\"x\"]\naction = \"warn\"\n"),
                "unknown action",
            ),
            (
                format!(
                    "{MIN}[[path_rule]]\npaths = [\"x\"]\naction = \"refuse\"\napprovals = 1\n"
                ),
                "only applies to",
            ),
            (
                format!("{MIN}{signer}[break_glass]\npublic_key = \"{gate}\"\n"),
                "must be dedicated",
            ),
            (
                format!("{MIN}[break_glass]\npublic_key = \"{bg}\"\nmax_validity = \"8d\"\n"),
                "longer than a week",
            ),
        ];
        for (text, needle) in cases {
            match Policy::parse(&text, &dir.path().join("p.toml")) {
                Err(PolicyError::Invalid { message, .. }) => {
                    assert!(message.contains(needle), "{message:?} lacks {needle:?}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn digest_covers_key_files_and_the_manifest_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.pub");
        let write_key = || {
            let k =
                agentgate_formats::SigningKey::generate(agentgate_formats::KeyAlgorithm::Ed25519)
                    .unwrap();
            std::fs::write(&key, k.public_key().to_pem()).unwrap();
        };
        write_key();
        let text = format!(
            "{MIN}[server]\nkey = \"s.key\"\n[audit]\nsyslog = true\n[[signer]]\nname = \"a\"\npublic_key = \"k.pub\"\n"
        );
        let path = dir.path().join("p.toml");
        let a = Policy::parse(&text, &path).unwrap();
        assert_eq!(a.files.len(), 1);
        assert_eq!(
            a.server.key.as_deref(),
            Some(dir.path().join("s.key").as_path())
        );
        assert_eq!(a.server.promotions_ref, DEFAULT_PROMOTIONS_REF);
        assert_eq!(
            a.syslog_socket.as_deref(),
            Some(Path::new(DEFAULT_SYSLOG_SOCKET))
        );
        let manifest = a.manifest();
        assert_eq!(
            a.digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&manifest)))
        );
        // The archived policy needs no key file on disk.
        write_key();
        let b = Policy::parse(&text, &path).unwrap();
        assert_ne!(
            a.digest, b.digest,
            "a key replaced in place is another policy"
        );
        std::fs::remove_file(&key).unwrap();
        let back = Policy::from_manifest(&manifest, &a.digest).unwrap();
        assert_eq!(back.digest, a.digest);
        assert!(Policy::from_manifest(&manifest, &b.digest).is_err());
        let cases = [
            (
                format!("{MIN}[audit]\nsyslog_socket = \"/x\"\n"),
                "syslog is not",
            ),
            (
                format!("{MIN}[server]\npromotions_ref = \"notes/x\"\n"),
                "full ref name",
            ),
            (format!("{MIN}[server]\nverifier_id = \"\"\n"), "empty"),
            (format!("{MIN}[server]\nbogus = 1\n"), "unknown field"),
        ];
        for (text, needle) in cases {
            let (_, _, m) = err(&text);
            assert!(m.contains(needle), "{m:?} lacks {needle:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            parse_duration("2w").unwrap(),
            Duration::from_secs(14 * 86400)
        );
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
