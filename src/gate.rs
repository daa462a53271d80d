//! `agentgate gate`: the compile-test-sign gate. It builds and tests exactly one commit in a
//! clean checkout, with a scrubbed environment (optionally inside bubblewrap, without network),
//! records what ran and signs the SLSA provenance and test-result attestations that the hook
//! requires. Signing, key loading and publishing are shared with `agentgate sign`.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, SubsecRound as _, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Digest as _;

use crate::attest::cmd::{
    hash_with_progress, invocation_id, keyless_preflight, load_junit, load_signing_key, open_repo,
    outln, publish_bundles, repo_uri, resolve_commit, KeylessArgs, Signer, DEFAULT_NOTES_REF,
    PROVENANCE_FILE, TEST_RESULT_FILE,
};
use crate::attest::statement::{
    provenance_statement, test_result_statement, Artifact, JunitSummary, ProvenanceParams,
    ResourceDescriptor, Source, TestOutcome, TestResult, DIGEST_GIT_COMMIT, DIGEST_SHA256,
};

/// SLSA buildType of attestations made by `agentgate gate`.
pub const GATE_BUILD_TYPE: &str = "https://example.invalid/agentgate/buildtypes/gate/v1";
/// Builder id when none is given and no CI system is recognised.
pub const GATE_DEFAULT_BUILDER_ID: &str = "https://example.invalid/agentgate/builders/gate";

/// Exit status when the gate refuses (build failed, tests failed, not reproducible...).
pub const EXIT_REFUSED: u8 = 1;

/// Variables that hold an identity token or the means to request one: never passed to the build
/// with --env.
const KEYLESS_SECRETS: &[&str] = &[
    "AGENTGATE_IDENTITY_TOKEN",
    "SIGSTORE_ID_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
];

/// Variables passed to the build and test commands as they are set for the gate. Everything
/// else is dropped unless named with `--env`; HOME and TMPDIR are replaced by fresh directories.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TZ",
    // Where toolchains live (locations, never credentials).
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOROOT",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
    "GOTOOLCHAIN",
    "JAVA_HOME",
    "GRADLE_USER_HOME",
    "MAVEN_HOME",
    "M2_HOME",
    "ANDROID_HOME",
    "ANDROID_SDK_ROOT",
    "DOTNET_ROOT",
    "NVM_DIR",
    "PYENV_ROOT",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CC",
    "CXX",
];

/// Toolchains that default to a directory under HOME: when the variable is unset, the gate
/// points it at the caller's directory so that moving HOME does not lose the toolchain.
const HOME_DEFAULTS: &[(&str, &str)] = &[("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")];

/// How long `PROGRAM --version` may take before it is abandoned.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

const GATE_EXAMPLE: &str = "\
Examples:
  agentgate gate --key ci-gate.key --password-env GATE_KEY_PASSWORD \\
      --build 'cargo build --release --locked' --test 'cargo test --release --locked' \\
      --artifact target/release/app --out attestations --note
  git push origin refs/notes/agentgate

  agentgate gate --key k.pem --build 'make' --test 'make check' --artifact app \\
      --junit build/junit.xml --reproducible --sandbox bwrap --json

  agentgate gate --keyless --build 'make' --test 'make check' --artifact app --note  # in CI

--build and --test are split into words like a POSIX shell would ('single', \"double\" quotes and
backslashes; no variables, globs or pipes) and run without a shell; with --shell each runs as
`sh -c CMD`. Both run in a fresh checkout of the commit (never the current working tree), with
only PATH, LANG, LC_ALL, LC_CTYPE, TERM, TZ and toolchain locations (CARGO_HOME, RUSTUP_HOME,
GOPATH, JAVA_HOME, ...) from the caller's environment plus the variables named by --env; HOME
and TMPDIR are empty temporary directories and SOURCE_DATE_EPOCH is the commit's time.
Artifact paths and --junit are relative to the checkout. Build output is streamed to stderr and
kept in --out as build.stdout.log, build.stderr.log, test.stdout.log, test.stderr.log.

Exit codes: 0 built, tests passed, signed; 1 refused: the build failed or did not reproduce, an
artifact is missing (nothing signed), or the tests failed (a FAILED test result is signed,
which the hook refuses); 2 usage or environment error (nothing signed).";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SandboxKind {
    /// bubblewrap: no network, the filesystem read-only except the checkout, HOME and TMPDIR.
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
    /// Write the bundles and the captured logs to DIR.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Build twice in separate checkouts; refuse to sign if any artifact differs.
    #[arg(long)]
    pub reproducible: bool,
    /// Run build and tests in a sandbox; fails if the sandbox cannot run here.
    #[arg(long, value_enum, value_name = "KIND")]
    pub sandbox: Option<SandboxKind>,
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

/// Why the gate refused to sign (exit 1), or signed a failing result.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(
        "the {step} command {command} {status}; nothing was signed (its output is above{logs})"
    )]
    BuildFailed {
        step: String,
        command: String,
        status: String,
        logs: String,
    },
    #[error("the artifact {path} {problem} after the build; nothing was signed")]
    ArtifactMissing { path: String, problem: String },
    #[error("the build is not reproducible: {}; nothing was signed", .differing.join(", "))]
    NotReproducible { differing: Vec<String> },
    #[error("the test command changed the artifact {path} (sha256:{before} after the build, sha256:{after} after the tests); nothing was signed")]
    TestsChangedArtifact {
        path: String,
        before: String,
        after: String,
    },
    #[error("the tests passed but wrote no JUnit report at {path}; nothing was signed")]
    JunitMissing { path: String },
    #[error(
        "the tests failed ({detail}); a FAILED test result was signed, which the hook refuses"
    )]
    TestsFailed { detail: String },
    #[error("the tests ran no test that passed ({path} lists none); a WARNED test result was signed, which the hook refuses")]
    TestsWarned { path: String },
}

impl GateError {
    pub fn code(&self) -> &'static str {
        match self {
            GateError::BuildFailed { .. } => "build-failed",
            GateError::ArtifactMissing { .. } => "artifact-missing",
            GateError::NotReproducible { .. } => "not-reproducible",
            GateError::TestsChangedArtifact { .. } => "tests-changed-artifact",
            GateError::JunitMissing { .. } => "junit-missing",
            GateError::TestsFailed { .. } => "tests-failed",
            GateError::TestsWarned { .. } => "tests-warned",
        }
    }

    /// Whether attestations were signed anyway (an honest failing test result).
    pub fn signed(&self) -> bool {
        matches!(
            self,
            GateError::TestsFailed { .. } | GateError::TestsWarned { .. }
        )
    }
}

/// A command as given and the argv it runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub text: String,
    pub argv: Vec<String>,
    pub shell: bool,
}

/// How `--shell` chooses the shell: a decision recorded in the provenance, not a bare bool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Words,
    Shell,
}

impl CommandLine {
    pub fn parse(option: &str, text: &str, split: Split) -> anyhow::Result<Self> {
        let argv = match split {
            Split::Shell => vec!["sh".to_string(), "-c".to_string(), text.to_string()],
            Split::Words => shlex::split(text).with_context(|| {
                format!("{option} {text:?}: unbalanced quotes or a trailing backslash")
            })?,
        };
        if argv.is_empty() || argv[0].is_empty() {
            bail!("{option} is empty");
        }
        Ok(CommandLine {
            text: text.to_string(),
            argv,
            shell: split == Split::Shell,
        })
    }

    /// The program that does the work: the first word, or under `--shell` the first word of the
    /// script when it splits cleanly.
    fn program(&self) -> Option<String> {
        if self.shell {
            shlex::split(&self.text).and_then(|w| w.into_iter().next())
        } else {
            self.argv.first().cloned()
        }
    }

    fn display(&self) -> String {
        shlex::try_join(self.argv.iter().map(String::as_str)).unwrap_or_else(|_| self.text.clone())
    }
}

/// An artifact path: relative to the checkout, inside it.
fn artifact_name(path: &Path) -> anyhow::Result<String> {
    let ok = !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !ok {
        bail!(
            "{}: artifact and --junit paths are relative to the checkout and stay inside it (no /, no ..)",
            path.display()
        );
    }
    let name = path
        .to_str()
        .with_context(|| format!("{}: the path is not UTF-8", path.display()))?;
    Ok(name.trim_start_matches("./").to_string())
}

/// The environment for build and test: the allowlist, the names given with `--env`, and the
/// gate's own HOME, TMPDIR and SOURCE_DATE_EPOCH.
pub fn scrubbed_env(
    get: &dyn Fn(&str) -> Option<OsString>,
    extra: &[String],
    home: &Path,
    tmp: &Path,
    source_date_epoch: i64,
) -> BTreeMap<String, OsString> {
    let mut env = BTreeMap::new();
    for name in ENV_ALLOWLIST
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        if let Some(v) = get(name) {
            env.insert(name.to_string(), v);
        }
    }
    if let Some(caller_home) = get("HOME").filter(|h| !h.is_empty()) {
        for (var, dir) in HOME_DEFAULTS {
            let path = Path::new(&caller_home).join(dir);
            if !env.contains_key(*var) && path.is_dir() {
                env.insert(var.to_string(), path.into_os_string());
            }
        }
    }
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".into());
    env.insert("HOME".into(), home.as_os_str().to_owned());
    env.insert("TMPDIR".into(), tmp.as_os_str().to_owned());
    env.insert(
        "SOURCE_DATE_EPOCH".into(),
        source_date_epoch.to_string().into(),
    );
    env
}

/// Find `program` on `path` as execvp would.
fn which(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    std::env::split_paths(path?)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// First line `program --version` prints, if it exits 0 within [`VERSION_TIMEOUT`].
fn tool_version(program: &Path, env: &BTreeMap<String, OsString>, dir: &Path) -> Option<String> {
    let mut child = Command::new(program)
        .arg("--version")
        .env_clear()
        .envs(env)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = child.stdout.take()?;
    let mut stderr = child.stderr.take()?;
    std::thread::spawn(move || {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = stdout.by_ref().take(64 << 10).read_to_end(&mut a);
        let _ = stderr.by_ref().take(64 << 10).read_to_end(&mut b);
        let _ = tx.send((a, b));
    });
    let output = rx.recv_timeout(VERSION_TIMEOUT);
    let deadline = Instant::now() + Duration::from_millis(200);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if output.is_ok() && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let (out, err) = output.ok()?;
    if !status?.success() {
        return None;
    }
    [out, err].iter().find_map(|bytes| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| l.chars().take(200).collect())
    })
}

/// A tool the build used: its resolved path, file digest and version, as a builder dependency.
fn tool_descriptor(
    name: &str,
    env: &BTreeMap<String, OsString>,
    dir: &Path,
) -> Option<ResourceDescriptor> {
    let path = which(name, env.get("PATH").map(OsString::as_os_str))?;
    let path = path.canonicalize().unwrap_or(path);
    let version = tool_version(&path, env, dir);
    let sha256 = crate::attest::statement::sha256_file(&path).ok()?;
    Some(ResourceDescriptor {
        name: Some(name.to_string()),
        uri: Some(format!("file://{}", path.display())),
        digest: BTreeMap::from([(DIGEST_SHA256.to_string(), sha256)]),
        annotations: version.map(|v| json!({ "version": v })),
        ..Default::default()
    })
}

/// Who ran the gate: the host, and what GitHub Actions or GitLab CI say about the job. Only
/// identifiers are read, never tokens.
pub fn runner_info(get: &dyn Fn(&str) -> Option<String>) -> Value {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| get("HOSTNAME"));
    let mut runner = json!({
        "hostname": hostname,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    let pick = |names: &[&str]| -> serde_json::Map<String, Value> {
        names
            .iter()
            .filter_map(|n| get(n).map(|v| (n.to_string(), Value::String(v))))
            .collect()
    };
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        let vars = pick(&[
            "GITHUB_SERVER_URL",
            "GITHUB_REPOSITORY",
            "GITHUB_REPOSITORY_ID",
            "GITHUB_REPOSITORY_OWNER_ID",
            "GITHUB_WORKFLOW",
            "GITHUB_WORKFLOW_REF",
            "GITHUB_WORKFLOW_SHA",
            "GITHUB_JOB",
            "GITHUB_RUN_ID",
            "GITHUB_RUN_ATTEMPT",
            "GITHUB_RUN_NUMBER",
            "GITHUB_REF",
            "GITHUB_SHA",
            "GITHUB_EVENT_NAME",
            "GITHUB_ACTOR",
            "GITHUB_ACTOR_ID",
            "GITHUB_TRIGGERING_ACTOR",
            "RUNNER_NAME",
            "RUNNER_OS",
            "RUNNER_ARCH",
            "RUNNER_ENVIRONMENT",
        ]);
        let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let run_url = match (get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
            (Some(repo), Some(run)) => Some(format!(
                "{server}/{repo}/actions/runs/{run}/attempts/{}",
                get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
            )),
            _ => None,
        };
        // The subject Fulcio certifies for this workflow: the same string keyless policy names.
        let identity = get("GITHUB_WORKFLOW_REF").map(|w| format!("{server}/{w}"));
        runner["ci"] = json!({
            "system": "github-actions",
            "jobUrl": run_url,
            "workflowRef": get("GITHUB_WORKFLOW_REF"),
            "workloadIdentity": identity,
            "variables": vars,
        });
    } else if get("GITLAB_CI").as_deref() == Some("true") {
        let vars = pick(&[
            "CI_SERVER_URL",
            "CI_PROJECT_PATH",
            "CI_PROJECT_ID",
            "CI_CONFIG_PATH",
            "CI_PIPELINE_ID",
            "CI_PIPELINE_URL",
            "CI_PIPELINE_SOURCE",
            "CI_JOB_ID",
            "CI_JOB_NAME",
            "CI_JOB_URL",
            "CI_COMMIT_SHA",
            "CI_COMMIT_REF_NAME",
            "CI_COMMIT_TAG",
            "CI_RUNNER_ID",
            "CI_RUNNER_DESCRIPTION",
            "GITLAB_USER_LOGIN",
        ]);
        let identity = match (
            get("CI_SERVER_URL"),
            get("CI_PROJECT_PATH"),
            get("CI_CONFIG_PATH"),
            get("CI_COMMIT_REF_NAME"),
        ) {
            (Some(server), Some(project), Some(config), Some(r)) => {
                let kind = if get("CI_COMMIT_TAG").is_some() {
                    "tags"
                } else {
                    "heads"
                };
                Some(format!("{server}/{project}//{config}@refs/{kind}/{r}"))
            }
            _ => None,
        };
        runner["ci"] = json!({
            "system": "gitlab-ci",
            "jobUrl": get("CI_JOB_URL"),
            "projectPath": get("CI_PROJECT_PATH"),
            "workloadIdentity": identity,
            "variables": vars,
        });
    }
    runner
}

/// The builder id and invocation id CI gives us, if any.
fn ci_ids(runner: &Value) -> (Option<String>, Option<String>) {
    let ci = &runner["ci"];
    let builder = ci["workloadIdentity"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            ci["variables"]["CI_PROJECT_PATH"].as_str().map(|p| {
                let server = ci["variables"]["CI_SERVER_URL"].as_str().unwrap_or("");
                format!("{server}/{p}")
            })
        });
    (builder, ci["jobUrl"].as_str().map(str::to_string))
}

/// A temporary directory removed on drop, also when the build left read-only directories in it
/// (Go's module cache does).
struct WorkDir {
    path: PathBuf,
}

impl WorkDir {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("agentgate-gate-")
            .tempdir()
            .context("cannot create a temporary directory for the gate")?;
        let path = dir.keep();
        // Canonical, because bwrap binds it by path and a symlinked TMPDIR would escape.
        let path = path.canonicalize().unwrap_or(path);
        for sub in ["home", "tmp"] {
            std::fs::create_dir(path.join(sub))
                .with_context(|| format!("cannot create {}", path.join(sub).display()))?;
        }
        Ok(WorkDir { path })
    }
}

fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if let Ok(m) = e.path().symlink_metadata() {
            if m.is_dir() {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o700));
                make_writable(&e.path());
            }
        }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.path).is_err() {
            make_writable(&self.path);
            if let Err(e) = std::fs::remove_dir_all(&self.path) {
                eprintln!(
                    "agentgate: warning: cannot remove {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// Run git for the gate itself (not the build): the caller's environment minus anything that
/// would redirect it to another repository.
fn git(args: &[&OsStr]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .stdin(Stdio::null())
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A fresh checkout of exactly `commit` at `dir`: a `--shared` clone (objects borrowed from the
/// caller's repository through alternates, nothing copied) with a detached HEAD. The caller's
/// working tree, index and refs are never read or written, so uncommitted changes cannot reach
/// the build, and the build cannot touch the caller's repository.
fn checkout(git_dir: &Path, commit: &str, dir: &Path) -> anyhow::Result<()> {
    git(&[
        "clone".as_ref(),
        "--quiet".as_ref(),
        "--shared".as_ref(),
        "--no-checkout".as_ref(),
        git_dir.as_os_str(),
        dir.as_os_str(),
    ])?;
    git(&[
        "-C".as_ref(),
        dir.as_os_str(),
        "-c".as_ref(),
        "advice.detachedHead=false".as_ref(),
        // Hooks from the caller's template directory have no business in the gate's checkout.
        "-c".as_ref(),
        "core.hooksPath=/dev/null".as_ref(),
        "checkout".as_ref(),
        "--quiet".as_ref(),
        "--detach".as_ref(),
        commit.as_ref(),
    ])?;
    let head = git(&[
        "-C".as_ref(),
        dir.as_os_str(),
        "rev-parse".as_ref(),
        "HEAD".as_ref(),
    ])?;
    if head != commit {
        bail!("the checkout is at {head}, not {commit}");
    }
    Ok(())
}

/// bubblewrap: a private network namespace (no network, its own loopback), the whole
/// filesystem read-only, fresh /tmp, the caller's HOME replaced by an empty read-only directory
/// (toolchain directories and the repository's objects bound back read-only), the key file
/// masked, and only the gate's work directory writable.
struct Bwrap {
    args: Vec<OsString>,
}

impl Bwrap {
    fn new(
        work: &Path,
        caller_home: Option<&Path>,
        readable: &[PathBuf],
        masked: &[PathBuf],
    ) -> Self {
        let mut args: Vec<OsString> = [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/var/tmp",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        for secrets in ["/run/secrets", "/var/run/secrets"] {
            if Path::new(secrets).is_dir() {
                args.extend(["--tmpfs".into(), secrets.into()]);
            }
        }
        let home = caller_home.filter(|h| h.is_dir() && *h != Path::new("/"));
        if let Some(home) = home {
            args.extend(["--tmpfs".into(), home.into()]);
        }
        for r in readable {
            if r.exists() {
                args.extend(["--ro-bind".into(), r.into(), r.into()]);
            }
        }
        args.extend(["--bind".into(), work.into(), work.into()]);
        for m in masked {
            if m.is_file() {
                args.extend(["--ro-bind".into(), "/dev/null".into(), m.into()]);
            }
        }
        // Last: the mount points above are created in the empty HOME before it turns read-only.
        if let Some(home) = home {
            args.extend(["--remount-ro".into(), home.into()]);
        }
        Bwrap { args }
    }

    fn command(&self, dir: &Path, argv: &[String]) -> Command {
        let mut c = Command::new("bwrap");
        c.args(&self.args)
            .arg("--chdir")
            .arg(dir)
            .arg("--")
            .args(argv);
        c
    }

    /// Run `true` the way the build will run; an error says why bwrap cannot work here.
    fn probe(&self, work: &Path, env: &BTreeMap<String, OsString>) -> anyhow::Result<()> {
        let out = self
            .command(work, &["true".to_string()])
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .output();
        let reason = match out {
            Ok(o) if o.status.success() => return Ok(()),
            Ok(o) => format!(
                "`bwrap ... true` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "bwrap is not installed (apt-get install bubblewrap)".to_string()
            }
            Err(e) => format!("cannot run bwrap: {e}"),
        };
        bail!(
            "--sandbox bwrap: bubblewrap cannot run here: {reason}; refusing to build without \
             the sandbox (allow unprivileged user namespaces, run the gate where bwrap works, \
             or leave out --sandbox)"
        )
    }
}

/// One captured stream of a step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct LogRecord {
    name: String,
    sha256: String,
    bytes: u64,
}

/// What one command did, as recorded in the provenance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct StepRecord {
    step: String,
    argv: Vec<String>,
    shell: bool,
    checkout: usize,
    exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    started_on: DateTime<Utc>,
    finished_on: DateTime<Utc>,
    duration_ms: u128,
    stdout: LogRecord,
    stderr: LogRecord,
}

impl StepRecord {
    fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    fn status(&self) -> String {
        match (&self.error, self.exit_code, self.signal) {
            (Some(e), _, _) => format!("could not start: {e}"),
            (None, Some(c), _) => format!("exited with status {c}"),
            (None, None, Some(s)) => format!("was killed by signal {s}"),
            (None, None, None) => "ended without a status".to_string(),
        }
    }
}

/// Copy a child's stream to `log` and to our stderr as it comes, hashing it on the way.
fn tee(mut from: impl std::io::Read, log: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::create(log)?;
    let mut hasher = sha2::Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        file.write_all(&buf[..n])?;
        hasher.update(&buf[..n]);
        total += n as u64;
        // The terminal is a courtesy; a closed stderr must not fail the build.
        let _ = std::io::stderr().lock().write_all(&buf[..n]);
    }
    file.sync_all()?;
    Ok((hex::encode(hasher.finalize()), total))
}

struct StepContext<'a> {
    env: &'a BTreeMap<String, OsString>,
    sandbox: Option<&'a Bwrap>,
    logs: &'a Path,
}

fn run_step(
    ctx: &StepContext<'_>,
    step: &str,
    checkout_index: usize,
    cmd: &CommandLine,
    dir: &Path,
) -> anyhow::Result<StepRecord> {
    eprintln!("agentgate: {step}: {}", cmd.display());
    let mut command = match ctx.sandbox {
        Some(b) => b.command(dir, &cmd.argv),
        None => {
            let mut c = Command::new(&cmd.argv[0]);
            c.args(&cmd.argv[1..]).current_dir(dir);
            c
        }
    };
    command
        .env_clear()
        .envs(ctx.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out_log = ctx.logs.join(format!("{step}.stdout.log"));
    let err_log = ctx.logs.join(format!("{step}.stderr.log"));
    let started = Instant::now();
    let started_on = Utc::now().trunc_subsecs(3);
    let (status, error, out, err) = match command.spawn() {
        Ok(mut child) => {
            let stdout = child.stdout.take().context("no stdout pipe")?;
            let stderr = child.stderr.take().context("no stderr pipe")?;
            let (out, err) = std::thread::scope(|s| {
                let o = s.spawn(|| tee(stdout, &out_log));
                let e = s.spawn(|| tee(stderr, &err_log));
                (o.join(), e.join())
            });
            let status = child
                .wait()
                .with_context(|| format!("cannot wait for the {step} command"))?;
            let join = |r: std::thread::Result<std::io::Result<(String, u64)>>, p: &Path| {
                r.map_err(|_| anyhow::anyhow!("the log writer panicked"))?
                    .with_context(|| format!("cannot write {}", p.display()))
            };
            (
                Some(status),
                None,
                join(out, &out_log)?,
                join(err, &err_log)?,
            )
        }
        Err(e) => {
            // The reason is the step's whole stderr, so the log and its digest say why.
            let message = format!("{}: {e}\n", cmd.argv[0]);
            let empty = tee(std::io::empty(), &out_log)
                .with_context(|| format!("cannot write {}", out_log.display()))?;
            let err = tee(message.as_bytes(), &err_log)
                .with_context(|| format!("cannot write {}", err_log.display()))?;
            (None, Some(message.trim_end().to_string()), empty, err)
        }
    };
    use std::os::unix::process::ExitStatusExt as _;
    let record = StepRecord {
        step: step.to_string(),
        argv: cmd.argv.clone(),
        shell: cmd.shell,
        checkout: checkout_index,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        error,
        started_on,
        finished_on: Utc::now().trunc_subsecs(3),
        duration_ms: started.elapsed().as_millis(),
        stdout: LogRecord {
            name: format!("{step}.stdout.log"),
            sha256: out.0,
            bytes: out.1,
        },
        stderr: LogRecord {
            name: format!("{step}.stderr.log"),
            sha256: err.0,
            bytes: err.1,
        },
    };
    if std::io::stderr().is_terminal() {
        eprintln!(
            "agentgate: {step} {} after {:.1} s",
            record.status(),
            record.duration_ms as f64 / 1000.0
        );
    }
    Ok(record)
}

/// Hash the artifacts in `dir`; each must be a regular file inside the checkout.
fn hash_artifacts(
    dir: &Path,
    names: &[String],
) -> anyhow::Result<Result<Vec<Artifact>, GateError>> {
    let root = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let mut artifacts = Vec::new();
    for name in names {
        let missing = |problem: &str| {
            Ok(Err(GateError::ArtifactMissing {
                path: name.clone(),
                problem: problem.to_string(),
            }))
        };
        let path = match dir.join(name).canonicalize() {
            Ok(p) => p,
            Err(_) => return missing("does not exist"),
        };
        if !path.starts_with(&root) {
            return missing("points outside the checkout");
        }
        if !path.is_file() {
            return missing("is not a regular file");
        }
        let sha256 = hash_with_progress(&path)
            .with_context(|| format!("cannot hash the artifact {name}"))?;
        artifacts.push(Artifact {
            name: name.clone(),
            sha256,
        });
    }
    Ok(Ok(artifacts))
}

/// Where the logs go: `--out`, or a directory removed afterwards.
enum LogDir {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl LogDir {
    fn path(&self) -> &Path {
        match self {
            LogDir::Kept(p) => p,
            LogDir::Temporary(t) => t.path(),
        }
    }
}

/// Print the refusal (and a JSON summary with --json) and return exit status 1.
fn refuse(args: &GateArgs, e: &GateError, summary: Option<Value>) -> anyhow::Result<ExitCode> {
    if args.json {
        let mut v = summary.unwrap_or_else(|| json!({ "signed": false }));
        v["code"] = json!(e.code());
        v["error"] = json!(e.to_string());
        outln!("{v}");
    }
    eprintln!("agentgate: gate refused [{}]: {e}", e.code());
    Ok(ExitCode::from(EXIT_REFUSED))
}

pub fn gate(args: &GateArgs) -> anyhow::Result<ExitCode> {
    let started_on = Utc::now().trunc_subsecs(0);
    let split = if args.shell {
        Split::Shell
    } else {
        Split::Words
    };
    let build = CommandLine::parse("--build", &args.build, split)?;
    let test = CommandLine::parse("--test", &args.test, split)?;
    let artifact_names = args
        .artifacts
        .iter()
        .map(|p| artifact_name(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let junit_name = args.junit.as_deref().map(artifact_name).transpose()?;
    for name in &args.env {
        if name.is_empty() || name.contains('=') {
            bail!("--env {name:?} is not a variable name");
        }
        if Some(name) == args.password_env.as_ref() {
            bail!("--env {name} would hand the key's passphrase to the build");
        }
        if KEYLESS_SECRETS.contains(&name.as_str()) {
            bail!(
                "--env {name} would hand an identity token (or the means to get one) to the build"
            );
        }
    }

    // The key first: a wrong passphrase should not cost a build. Keyless: the services and a
    // token source are checked now, the token itself is taken (in GitHub Actions: requested)
    // after the build, since CI tokens live minutes.
    let key = match &args.key {
        Some(path) => Some(load_signing_key(path, args.password_env.as_deref(), false)?),
        None => {
            keyless_preflight(&args.keyless)?;
            None
        }
    };
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, &args.commit)?;
    let source = Source {
        uri: repo_uri(&repo),
        commit: commit.id().to_string(),
        tree: commit.tree_id().to_string(),
    };
    let commit_time = commit.committer().when().seconds();
    let git_dir = repo
        .commondir()
        .canonicalize()
        .unwrap_or_else(|_| repo.commondir().to_path_buf());

    let log_dir = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            // Bundles of an earlier run must not pass for this run's if this one refuses.
            for name in [PROVENANCE_FILE, TEST_RESULT_FILE] {
                match std::fs::remove_file(dir.join(name)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| {
                            format!("cannot remove the old {}", dir.join(name).display())
                        })
                    }
                    _ => {}
                }
            }
            LogDir::Kept(dir.clone())
        }
        None => LogDir::Temporary(
            tempfile::tempdir().context("cannot create a temporary directory for the logs")?,
        ),
    };
    let work = WorkDir::new()?;
    let env_var = |n: &str| std::env::var_os(n);
    let env = scrubbed_env(
        &env_var,
        &args.env,
        &work.path.join("home"),
        &work.path.join("tmp"),
        commit_time,
    );

    let caller_home = std::env::var_os("HOME").map(PathBuf::from);
    let sandbox = match args.sandbox {
        None => None,
        Some(SandboxKind::Bwrap) => {
            let mut readable: Vec<PathBuf> = Vec::new();
            for var in ENV_ALLOWLIST.iter().copied().filter(|v| *v != "PATH") {
                if let Some(v) = env.get(var) {
                    readable.push(PathBuf::from(v));
                }
            }
            if let Some(p) = env.get("PATH") {
                readable.extend(std::env::split_paths(p));
            }
            readable.push(git_dir.join("objects"));
            readable.retain(|p| p.is_absolute());
            let hidden: Vec<PathBuf> = args
                .key
                .iter()
                .map(|k| k.canonicalize().unwrap_or_else(|_| k.clone()))
                .collect();
            let b = Bwrap::new(&work.path, caller_home.as_deref(), &readable, &hidden);
            b.probe(&work.path, &env)?;
            Some(b)
        }
    };
    let ctx = StepContext {
        env: &env,
        sandbox: sandbox.as_ref(),
        logs: log_dir.path(),
    };

    let mut steps = Vec::new();
    let builds = if args.reproducible { 2 } else { 1 };
    let mut digests: Vec<Vec<Artifact>> = Vec::new();
    for i in 1..=builds {
        let dir = work.path.join(format!("checkout-{i}"));
        checkout(&git_dir, &source.commit, &dir)?;
        let step = if i == 1 {
            "build".to_string()
        } else {
            format!("build-{i}")
        };
        let record = run_step(&ctx, &step, i, &build, &dir)?;
        let ok = record.success();
        steps.push(record);
        if !ok {
            let r = steps.last().map(StepRecord::status).unwrap_or_default();
            let logs = match &log_dir {
                LogDir::Kept(p) => format!(" and in {}", p.display()),
                LogDir::Temporary(_) => String::new(),
            };
            let e = GateError::BuildFailed {
                step: step.clone(),
                command: build.display(),
                status: r,
                logs,
            };
            return refuse(args, &e, None);
        }
        match hash_artifacts(&dir, &artifact_names)? {
            Ok(a) => digests.push(a),
            Err(e) => return refuse(args, &e, None),
        }
        if i > 1 {
            // The second checkout has done its job; free the disk before the tests.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    let artifacts = digests.swap_remove(0);
    if let Some(second) = digests.first() {
        let differing: Vec<String> = artifacts
            .iter()
            .zip(second)
            .filter(|(a, b)| a.sha256 != b.sha256)
            .map(|(a, b)| {
                format!(
                    "{} differs between the two builds (sha256:{} and sha256:{})",
                    a.name, a.sha256, b.sha256
                )
            })
            .collect();
        if !differing.is_empty() {
            return refuse(args, &GateError::NotReproducible { differing }, None);
        }
    }

    let checkout1 = work.path.join("checkout-1");
    let test_record = run_step(&ctx, "test", 1, &test, &checkout1)?;
    let tests_ran_ok = test_record.success();
    let test_status = test_record.status();
    steps.push(test_record);
    match hash_artifacts(&checkout1, &artifact_names)? {
        Ok(after) => {
            if let Some((a, b)) = artifacts
                .iter()
                .zip(&after)
                .find(|(a, b)| a.sha256 != b.sha256)
            {
                let e = GateError::TestsChangedArtifact {
                    path: a.name.clone(),
                    before: a.sha256.clone(),
                    after: b.sha256.clone(),
                };
                return refuse(args, &e, None);
            }
        }
        Err(e) => return refuse(args, &e, None),
    }

    // The test result: the test command's status, refined by the JUnit report.
    let mut configuration = vec![ResourceDescriptor {
        uri: Some(source.uri.clone()),
        digest: BTreeMap::from([(DIGEST_GIT_COMMIT.to_string(), source.commit.clone())]),
        ..Default::default()
    }];
    let mut byproducts = Vec::new();
    let mut junit = JunitSummary::default();
    if let Some(name) = &junit_name {
        let path = checkout1.join(name);
        if path.is_file() {
            let (summary, digest) = load_junit(&path)?;
            configuration.push(ResourceDescriptor::named(name, DIGEST_SHA256, &digest));
            byproducts.push(ResourceDescriptor {
                media_type: Some("application/xml".into()),
                annotations: Some(json!({"step": "test", "kind": "junit"})),
                ..ResourceDescriptor::named(name, DIGEST_SHA256, digest)
            });
            if let LogDir::Kept(dir) = &log_dir {
                let dest = dir.join("junit.xml");
                std::fs::copy(&path, &dest).with_context(|| {
                    format!("cannot copy the JUnit report to {}", dest.display())
                })?;
            }
            junit = summary;
        } else if tests_ran_ok {
            return refuse(args, &GateError::JunitMissing { path: name.clone() }, None);
        } else {
            eprintln!("agentgate: warning: the tests failed and wrote no JUnit report at {name}");
        }
    }
    let outcome = if !tests_ran_ok || !junit.failed.is_empty() {
        TestOutcome::Failed
    } else if junit_name.is_some() && junit.passed.is_empty() {
        // A report in which nothing ran is no evidence that anything passed.
        TestOutcome::Warned
    } else {
        TestOutcome::Passed
    };
    for s in &steps {
        for (log, stream) in [(&s.stdout, "stdout"), (&s.stderr, "stderr")] {
            let rd = ResourceDescriptor {
                media_type: Some("text/plain".into()),
                annotations: Some(json!({"step": s.step, "stream": stream, "bytes": log.bytes})),
                ..ResourceDescriptor::named(&log.name, DIGEST_SHA256, &log.sha256)
            };
            if s.step == "test" {
                configuration.push(ResourceDescriptor::named(
                    &log.name,
                    DIGEST_SHA256,
                    &log.sha256,
                ));
            }
            byproducts.push(rd);
        }
    }
    let test_result = TestResult {
        result: outcome,
        configuration,
        url: None,
        passed_tests: junit.passed,
        warned_tests: Vec::new(),
        failed_tests: junit.failed.clone(),
    };

    // Tools: git, each command's program and, sandboxed, bwrap.
    let mut tools = vec!["git".to_string()];
    tools.extend(build.program());
    tools.extend(test.program());
    if sandbox.is_some() {
        tools.push("bwrap".to_string());
    }
    let mut builder_dependencies = Vec::new();
    for t in &tools {
        if builder_dependencies
            .iter()
            .any(|d: &ResourceDescriptor| d.name.as_deref() == Some(t))
        {
            continue;
        }
        if let Some(d) = tool_descriptor(t, &env, &work.path) {
            builder_dependencies.push(d);
        }
    }

    let runner = runner_info(&|n| std::env::var(n).ok());
    let (ci_builder, ci_invocation) = ci_ids(&runner);
    let builder_id = args
        .builder_id
        .clone()
        .or(ci_builder)
        .unwrap_or_else(|| GATE_DEFAULT_BUILDER_ID.to_string());
    let env_names: Vec<&String> = env.keys().collect();
    let command_json =
        |c: &CommandLine| json!({"command": c.text, "argv": c.argv, "shell": c.shell});
    let finished_on = Utc::now().trunc_subsecs(0);
    let provenance = provenance_statement(
        &source,
        &artifacts,
        ProvenanceParams {
            builder_id: builder_id.clone(),
            build_type: GATE_BUILD_TYPE.to_string(),
            external_parameters: json!({
                "source": {"uri": source.uri, "revision": args.commit, "commit": source.commit},
                "build": command_json(&build),
                "test": command_json(&test),
                "artifacts": artifact_names,
                "junit": junit_name,
                "env": args.env,
                "reproducible": args.reproducible,
                "sandbox": args.sandbox.map(|_| "bwrap"),
            }),
            internal_parameters: Some(json!({
                "checkout": {
                    "method": "git clone --shared --no-checkout, git checkout --detach",
                    "commit": source.commit,
                    "tree": source.tree,
                    "builds": builds,
                },
                "environment": {
                    "names": env_names,
                    "HOME": "empty temporary directory",
                    "TMPDIR": "empty temporary directory",
                    "SOURCE_DATE_EPOCH": commit_time,
                },
                "sandbox": sandbox.as_ref().map(|_| json!({
                    "kind": "bwrap",
                    "network": "none (private network namespace)",
                    "writable": ["checkout", "HOME", "TMPDIR"],
                    "hidden": if key.is_some() {
                        json!(["/tmp", "/var/tmp", "caller HOME", "/run/secrets", "the signing key"])
                    } else {
                        json!(["/tmp", "/var/tmp", "caller HOME", "/run/secrets"])
                    },
                })),
                "steps": steps,
                "testResult": outcome.as_str(),
                "runner": runner,
            })),
            builder_version: BTreeMap::from([(
                "agentgate".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
            builder_dependencies,
            invocation_id: Some(ci_invocation.unwrap_or_else(invocation_id)),
            started_on,
            finished_on,
            byproducts,
        },
    );
    let tests = test_result_statement(&source, &artifacts, &test_result, &provenance)?;
    let signer = match key {
        Some(key) => Signer::Key(key),
        None => Signer::keyless(&args.keyless)?,
    };
    let (provenance_bundle, tests_bundle, signed_by) = signer.sign_pair(&provenance, &tests)?;
    let written = publish_bundles(
        &repo,
        commit.id(),
        &provenance_bundle,
        &tests_bundle,
        args.out.as_deref(),
        args.note.then_some(args.notes_ref.as_str()),
    )?;
    let logs: Vec<String> = match &log_dir {
        LogDir::Kept(dir) => steps
            .iter()
            .flat_map(|s| [&s.stdout.name, &s.stderr.name])
            .map(|n| dir.join(n).display().to_string())
            .collect(),
        LogDir::Temporary(_) => Vec::new(),
    };

    let failure = match outcome {
        TestOutcome::Passed => None,
        TestOutcome::Failed => Some(GateError::TestsFailed {
            detail: if junit.failed.is_empty() {
                format!("the test command {test_status}")
            } else {
                format!("{} failed: {}", junit.failed.len(), junit.failed.join(", "))
            },
        }),
        TestOutcome::Warned => Some(GateError::TestsWarned {
            path: junit_name.clone().unwrap_or_default(),
        }),
    };
    let mut summary = json!({
        "signed": true,
        "commit": source.commit,
        "tree": source.tree,
        "repository": source.uri,
        "builderId": builder_id,
        "artifacts": artifacts,
        "testResult": outcome.as_str(),
        "reproducible": args.reproducible.then_some(true),
        "sandbox": args.sandbox.map(|_| "bwrap"),
        "files": written,
        "logs": logs,
        "note": args.note.then_some(&args.notes_ref),
    });
    signed_by.add_to(&mut summary);
    if args.out.is_none() && !args.note {
        summary["bundles"] = json!([
            serde_json::from_str::<Value>(&provenance_bundle)?,
            serde_json::from_str::<Value>(&tests_bundle)?,
        ]);
    }
    if args.json {
        if failure.is_none() {
            outln!("{summary}");
        }
    } else {
        outln!(
            "gate: built and tested commit {} (tree {}){}{}",
            source.commit,
            source.tree,
            if args.reproducible {
                ", reproducibly (2 builds)"
            } else {
                ""
            },
            if sandbox.is_some() {
                ", in bwrap without network"
            } else {
                ""
            },
        );
        for a in &artifacts {
            outln!("  artifact sha256:{} {}", a.sha256, a.name);
        }
        outln!("  test result {}", outcome.as_str());
        outln!("  signed with {} as {builder_id}", signed_by.describe());
        for f in written.iter().chain(&logs) {
            outln!("  wrote {f}");
        }
        if args.note {
            outln!(
                "  appended 2 bundles to the note under {} (push it: git push origin {})",
                args.notes_ref,
                args.notes_ref
            );
        }
        if args.out.is_none() && !args.note {
            outln!("{provenance_bundle}\n{tests_bundle}");
        }
    }
    match failure {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => refuse(args, &e, Some(summary)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_split_like_a_shell() {
        let c =
            CommandLine::parse("--build", r#"cc -o 'my app' "main.c" a\ b"#, Split::Words).unwrap();
        assert_eq!(c.argv, ["cc", "-o", "my app", "main.c", "a b"]);
        assert_eq!(c.program().as_deref(), Some("cc"));
        let c = CommandLine::parse("--build", "make && make check", Split::Shell).unwrap();
        assert_eq!(c.argv, ["sh", "-c", "make && make check"]);
        assert_eq!(c.program().as_deref(), Some("make"));
        for bad in ["", "   ", "cc 'unterminated", "''"] {
            assert!(
                CommandLine::parse("--build", bad, Split::Words).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn artifact_paths_stay_inside_the_checkout() {
        assert_eq!(
            artifact_name(Path::new("target/app")).unwrap(),
            "target/app"
        );
        assert_eq!(artifact_name(Path::new("./app")).unwrap(), "app");
        for bad in ["", "/etc/passwd", "../x", "a/../../x"] {
            assert!(artifact_name(Path::new(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn environment_is_an_allowlist() {
        let caller: BTreeMap<&str, &str> = BTreeMap::from([
            ("PATH", "/bin"),
            ("HOME", "/nonexistent-home"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("GATE_KEY_PASSWORD", "pw"),
            ("LANG", "C.UTF-8"),
            ("WANTED", "yes"),
            ("TMPDIR", "/caller/tmp"),
        ]);
        let get = |n: &str| caller.get(n).map(OsString::from);
        let env = scrubbed_env(
            &get,
            &["WANTED".to_string(), "UNSET".to_string()],
            Path::new("/w/home"),
            Path::new("/w/tmp"),
            1_700_000_000,
        );
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "HOME",
                "LANG",
                "PATH",
                "SOURCE_DATE_EPOCH",
                "TMPDIR",
                "WANTED"
            ]
        );
        assert_eq!(env["HOME"], "/w/home");
        assert_eq!(env["TMPDIR"], "/w/tmp");
        assert_eq!(env["SOURCE_DATE_EPOCH"], "1700000000");
        // No PATH at all still finds the usual programs.
        let env = scrubbed_env(&|_| None, &[], Path::new("/h"), Path::new("/t"), 0);
        assert_eq!(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
    }

    #[test]
    fn runner_from_github_actions() {
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/app/.github/workflows/gate.yml@refs/heads/main",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "secret"),
            ("GITHUB_TOKEN", "secret"),
        ]);
        let r = runner_info(&|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(r["ci"]["system"], "github-actions");
        assert_eq!(
            r["ci"]["jobUrl"],
            "https://github.com/acme/app/actions/runs/42/attempts/2"
        );
        assert_eq!(
            r["ci"]["workloadIdentity"],
            "https://github.com/acme/app/.github/workflows/gate.yml@refs/heads/main"
        );
        assert!(!r.to_string().contains("secret"));
        let (builder, invocation) = ci_ids(&r);
        assert_eq!(builder.as_deref(), r["ci"]["workloadIdentity"].as_str());
        assert_eq!(invocation.as_deref(), r["ci"]["jobUrl"].as_str());
    }

    #[test]
    fn runner_from_gitlab_ci() {
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITLAB_CI", "true"),
            ("CI_SERVER_URL", "https://gitlab.example"),
            ("CI_PROJECT_PATH", "acme/app"),
            ("CI_CONFIG_PATH", ".gitlab-ci.yml"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_JOB_URL", "https://gitlab.example/acme/app/-/jobs/7"),
            ("CI_JOB_TOKEN", "secret"),
        ]);
        let r = runner_info(&|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(r["ci"]["system"], "gitlab-ci");
        assert_eq!(
            r["ci"]["jobUrl"],
            "https://gitlab.example/acme/app/-/jobs/7"
        );
        assert_eq!(
            r["ci"]["workloadIdentity"],
            "https://gitlab.example/acme/app//.gitlab-ci.yml@refs/heads/main"
        );
        assert!(!r.to_string().contains("secret"));
        // Outside CI: only the host.
        let r = runner_info(&|_| None);
        assert!(r.get("ci").is_none());
        assert_eq!(ci_ids(&r), (None, None));
    }

    #[test]
    fn version_of_a_real_tool_and_of_nothing() {
        let env = BTreeMap::from([("PATH".to_string(), OsString::from("/usr/bin:/bin"))]);
        let d = tool_descriptor("git", &env, Path::new("/")).unwrap();
        assert!(d.annotations.unwrap()["version"]
            .as_str()
            .unwrap()
            .starts_with("git version"));
        assert_eq!(d.digest[DIGEST_SHA256].len(), 64);
        assert!(tool_descriptor("no-such-tool-anywhere", &env, Path::new("/")).is_none());
        assert!(tool_descriptor("./script.sh", &env, Path::new("/")).is_none());
    }
}
