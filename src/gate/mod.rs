//! `agentgate gate`: the compile-test-sign gate. It builds and tests exactly one commit in a
//! clean checkout, isolated by default (bubblewrap: its own PID, network and mount namespaces, a
//! scrubbed environment, the key and the CI's secrets out of sight), records what ran and, only
//! after every process of the build is gone, loads the key and signs the SLSA provenance and
//! test-result attestations that the hook requires. Signing, key loading and publishing are
//! shared with `agentgate sign`.

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

/// The CI job's own credentials (GitHub Actions, GitLab CI): never passed to the build with
/// --env either. The allowlist keeps them out otherwise.
const CI_CREDENTIALS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_CACHE_URL",
    "CI_JOB_TOKEN",
    "CI_JOB_JWT",
    "CI_JOB_JWT_V1",
    "CI_JOB_JWT_V2",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPENDENCY_PROXY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
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
      --junit build/junit.xml --reproducible --json

  agentgate gate --keyless --build 'make' --test 'make check' --artifact app --note  # in CI

--build and --test are split into words like a POSIX shell would ('single', \"double\" quotes and
backslashes; no variables, globs or pipes) and run without a shell; with --shell each runs as
`sh -c CMD`. Both run in a fresh checkout of the commit (never the current working tree), with
only PATH, LANG, LC_ALL, LC_CTYPE, TERM, TZ and toolchain locations (CARGO_HOME, RUSTUP_HOME,
GOPATH, JAVA_HOME, ...) from the caller's environment plus the variables named by --env; HOME
and TMPDIR are empty temporary directories and SOURCE_DATE_EPOCH is the commit's time.
Artifact paths and --junit are relative to the checkout. Build output is streamed to stderr and
kept in --out as build.stdout.log, build.stderr.log, test.stdout.log, test.stderr.log.

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
    /// Write the bundles and the captured logs to DIR.
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
    #[error("the tests passed but the JUnit report {path} {problem}; nothing was signed")]
    JunitMissing { path: String, problem: String },
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

/// Find `program` on `path` as execvp would, except that relative entries are skipped: they
/// would resolve against the gate's working directory, which may be the agent's working tree.
fn which(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.contains('/') {
        return None;
    }
    std::env::split_paths(path?)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Run `cmd` (stdout and stderr piped) for at most `limit`: its status and output (each capped
/// at `cap` bytes), or None if it could not start or ran out of time (it is killed then).
fn output_within(
    mut cmd: Command,
    limit: Duration,
    cap: u64,
) -> Option<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let drain = |mut from: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.by_ref().take(cap).read_to_end(&mut buf);
            // Past the cap: keep reading so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut from, &mut std::io::sink());
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(Box::new(child.stdout.take()?));
    let err = drain(Box::new(child.stderr.take()?));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let grace = Duration::from_millis(200);
    let (out, err) = (out.recv_timeout(grace).ok()?, err.recv_timeout(grace).ok()?);
    Some((status?, out, err))
}

/// Versions of `programs` (first line of `PROGRAM --version`, if it exits 0 within
/// [`VERSION_TIMEOUT`]), asked the way the build runs them, since a program on PATH can be the
/// agent's own (node_modules/.bin): one start of the sandbox for all of them, which is also
/// the check that the sandbox works here ([`SANDBOX_UNAVAILABLE_HELP`] if not).
fn tool_versions(
    launcher: &Launcher,
    dir: &Path,
    programs: &[PathBuf],
) -> anyhow::Result<Vec<Option<String>>> {
    if launcher.bwrap.is_some()
        && which("bwrap", launcher.env.get("PATH").map(OsString::as_os_str)).is_none()
    {
        return Err(sandbox_unavailable_error(
            "bwrap is not installed (not found on PATH)",
        ));
    }
    // Markers a program's output cannot forge.
    let n = invocation_id();
    let script = format!(
        "for t do printf '\\n@{n} %s\\n' \"$t\"; \
         if command -v timeout >/dev/null; then timeout {secs} \"$t\" --version; \
         else \"$t\" --version; fi >\"$TMPDIR/.version-{n}\" 2>&1 </dev/null; rc=$?; \
         head -c 65536 \"$TMPDIR/.version-{n}\"; rm -f \"$TMPDIR/.version-{n}\"; \
         printf '\\n@{n}-status %s\\n' \"$rc\"; done; printf '@{n}-end\\n'",
        secs = VERSION_TIMEOUT.as_secs()
    );
    let mut argv = vec!["sh".to_string(), "-c".to_string(), script, "sh".to_string()];
    argv.extend(programs.iter().filter_map(|p| p.to_str()).map(String::from));
    let limit = VERSION_TIMEOUT * (u32::try_from(programs.len()).unwrap_or(u32::MAX) + 2);
    let out = output_within(launcher.command(None, dir, &argv), limit, 4 << 20);
    let end = format!("@{n}-end\n");
    let stdout = match out {
        Some((status, stdout, _)) if status.success() && stdout.ends_with(end.as_bytes()) => stdout,
        other if launcher.bwrap.is_some() => {
            let reason = match other {
                Some((status, _, stderr)) => format!(
                    "`bwrap ... sh` failed ({status}): {}",
                    String::from_utf8_lossy(&stderr).trim()
                ),
                None => "bwrap did not start, or did not finish in time".to_string(),
            };
            return Err(sandbox_unavailable_error(&reason));
        }
        _ => return Ok(vec![None; programs.len()]),
    };
    let text = String::from_utf8_lossy(&stdout);
    let mut versions = Vec::new();
    for p in programs {
        let Some(name) = p.to_str() else {
            versions.push(None);
            continue;
        };
        let start = format!("\n@{n} {name}\n");
        let version = text.find(&start).and_then(|i| {
            let body = &text[i + start.len()..];
            let stop = body.find(&format!("\n@{n}-status "))?;
            let ok = body[stop..].starts_with(&format!("\n@{n}-status 0\n"));
            ok.then(|| {
                body[..stop]
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(|l| l.chars().take(200).collect::<String>())
            })
            .flatten()
        });
        versions.push(version);
    }
    Ok(versions)
}

/// The tools the build used: resolved path, file digest and version, as builder dependencies.
fn tool_descriptors(
    names: &[String],
    launcher: &Launcher,
    dir: &Path,
) -> anyhow::Result<Vec<ResourceDescriptor>> {
    let mut found: Vec<(&String, PathBuf)> = Vec::new();
    for name in names {
        if found.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if let Some(path) = which(name, launcher.env.get("PATH").map(OsString::as_os_str)) {
            found.push((name, path.canonicalize().unwrap_or(path)));
        }
    }
    let paths: Vec<PathBuf> = found.iter().map(|(_, p)| p.clone()).collect();
    let versions = tool_versions(launcher, dir, &paths)?;
    Ok(found
        .into_iter()
        .zip(versions)
        .filter_map(|((name, path), version)| {
            let sha256 = crate::attest::statement::sha256_file(&path).ok()?;
            Some(ResourceDescriptor {
                name: Some(name.clone()),
                uri: Some(format!("file://{}", path.display())),
                digest: BTreeMap::from([(DIGEST_SHA256.to_string(), sha256)]),
                annotations: version.map(|v| json!({ "version": v })),
                ..Default::default()
            })
        })
        .collect())
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
    let out = crate::git::git_command()
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

/// Where a machine keeps what a build must not see: homes (CI credentials, the runner's own
/// files, the caller's secrets), /run (docker.sock and other sockets, /run/secrets), shared
/// scratch space, data mounts, a GitLab runner's configuration. Each is replaced by an empty
/// tmpfs; what the build needs from inside (toolchains on PATH, ...) is bound back read-only.
const HIDDEN_ROOTS: &[&str] = &[
    "/home",
    "/root",
    "/run",
    "/tmp",
    "/var/tmp",
    "/mnt",
    "/media",
    "/etc/gitlab-runner",
];

/// Hidden, but writable (and empty) inside the sandbox: for tools that ignore TMPDIR.
const SCRATCH: &[&str] = &["/tmp", "/var/tmp"];

/// Never hidden whole, whatever points at them: the system the build runs with.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/var",
    "/nix", "/gnu", "/proc", "/sys", "/dev", "/boot", "/srv", "/snap",
];

/// Credential files inside toolchain directories that are bound into the sandbox.
const TOOLCHAIN_CREDENTIALS: &[(&str, &str)] = &[
    ("CARGO_HOME", "credentials.toml"),
    ("CARGO_HOME", "credentials"),
];

/// `O_CLOEXEC` as /proc/PID/fdinfo prints it (octal `flags:`), on x86-64 and aarch64.
const O_CLOEXEC: u32 = 0o2_000_000;

/// Where CI systems keep the job's secrets and other jobs' files, from their variables: GitHub
/// Actions' runner directory (its credentials; `_temp` with the job's command files such as
/// $GITHUB_ENV) and workspace; GitLab's builds directory (other projects' checkouts on a shared
/// runner) and the project's `.tmp` directory, where file-type variables are written.
pub fn ci_hidden(get: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let path = |n: &str| get(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    let is_true = |n: &str| get(n).is_some_and(|v| v == "true");
    let mut v = Vec::new();
    if is_true("GITHUB_ACTIONS") {
        v.extend(path("RUNNER_TEMP"));
        v.extend(path("GITHUB_WORKSPACE"));
        if let Some(ws) = path("RUNNER_WORKSPACE") {
            // <runner>/_work/<repository>: the runner's own directory holds its credentials.
            match ws.parent() {
                Some(w) if w.file_name() == Some(OsStr::new("_work")) => {
                    v.extend(w.parent().map(Path::to_path_buf))
                }
                _ => v.push(ws),
            }
        }
    }
    if is_true("GITLAB_CI") {
        v.extend(path("CI_BUILDS_DIR"));
        if let Some(project) = path("CI_PROJECT_DIR") {
            let mut tmp = project.clone().into_os_string();
            tmp.push(".tmp");
            v.push(tmp.into());
            v.push(project);
        }
    }
    v
}

/// What the sandbox hides and shows, before it becomes bwrap arguments. All paths canonical.
#[derive(Debug, Default)]
struct SandboxPlan {
    /// Replaced by an empty tmpfs (read-only unless in [`SCRATCH`]).
    hidden: Vec<PathBuf>,
    /// Bound back read-only: they sit inside a hidden directory.
    readable: Vec<PathBuf>,
    /// Bound read-write: the build's HOME and TMPDIR (each step's checkout is added per step).
    writable: Vec<PathBuf>,
    /// Files replaced by an empty one: the key, toolchain credentials.
    masked: Vec<PathBuf>,
    /// Readable paths left out because binding them would show a hidden directory whole.
    refused: Vec<PathBuf>,
}

/// `p` is `dir` or inside it.
fn within(p: &Path, dir: &Path) -> bool {
    p.starts_with(dir)
}

impl SandboxPlan {
    fn new(
        hide: impl IntoIterator<Item = PathBuf>,
        readable: impl IntoIterator<Item = PathBuf>,
        writable: Vec<PathBuf>,
        mask: impl IntoIterator<Item = PathBuf>,
    ) -> Self {
        let real_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        let mut hidden: Vec<PathBuf> = hide
            .into_iter()
            .filter(|p| p.is_absolute())
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| real_dir(p))
            .filter(|p| !SYSTEM_DIRS.iter().any(|s| within(Path::new(s), p)))
            .collect();
        hidden.sort();
        hidden.dedup();
        let mut plan = SandboxPlan {
            writable,
            ..Default::default()
        };
        let mut bound: Vec<PathBuf> = Vec::new();
        for r in readable {
            if !r.is_absolute() {
                continue;
            }
            let Ok(r) = r.canonicalize() else { continue };
            if hidden.iter().any(|h| within(h, &r)) {
                plan.refused.push(r);
            } else if hidden.iter().any(|h| within(&r, h)) {
                bound.push(r);
            }
        }
        bound.sort();
        bound.dedup();
        plan.readable = bound;
        plan.refused.sort();
        plan.refused.dedup();
        plan.masked = mask
            .into_iter()
            .filter(|p| p.is_absolute())
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| p.is_file())
            .collect();
        plan.masked.sort();
        plan.masked.dedup();
        plan.hidden = hidden;
        plan
    }
}

/// bubblewrap: its own PID namespace (the gate and every other process out of sight, and every
/// process of a step killed when the step ends), network namespace (no network, an empty
/// loopback), IPC, UTS and user namespaces; no capabilities, even for root; a new session (no
/// terminal injection); the filesystem read-only with the plan's directories hidden, its
/// readable paths bound back, the key masked, and only HOME, TMPDIR and the step's checkout
/// writable.
struct Bwrap {
    /// Everything up to the step's checkout.
    head: Vec<OsString>,
    /// After it: masks, then the hidden directories turned read-only (mount points for the
    /// binds inside them had to be created first).
    tail: Vec<OsString>,
    plan: SandboxPlan,
}

impl Bwrap {
    fn new(plan: SandboxPlan) -> Self {
        let mut head: Vec<OsString> = [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        // Mounts in path order: a directory before what is inside it, so a tmpfs never covers a
        // bind made earlier, and a bind inside a hidden directory shows only itself.
        let mut ops: Vec<(&Path, [&OsStr; 2])> = Vec::new();
        for h in &plan.hidden {
            ops.push((h, ["--tmpfs".as_ref(), "".as_ref()]));
        }
        for r in &plan.readable {
            ops.push((r, ["--ro-bind".as_ref(), r.as_os_str()]));
        }
        for w in &plan.writable {
            ops.push((w, ["--bind".as_ref(), w.as_os_str()]));
        }
        for m in &plan.masked {
            ops.push((m, ["--ro-bind".as_ref(), "/dev/null".as_ref()]));
        }
        ops.sort_by(|a, b| a.0.cmp(b.0));
        for (target, [op, source]) in ops {
            head.push(op.to_owned());
            if !source.is_empty() {
                head.push(source.to_owned());
            }
            head.push(target.into());
        }
        let mut tail = Vec::new();
        for h in &plan.hidden {
            if !SCRATCH.iter().any(|s| h == Path::new(s)) {
                tail.extend(["--remount-ro".into(), h.into()]);
            }
        }
        Bwrap { head, tail, plan }
    }

    /// bwrap's argv for `argv` run in `dir`, with `checkout` writable.
    fn argv(&self, checkout: Option<&Path>, dir: &Path, argv: &[String]) -> Vec<OsString> {
        let mut v: Vec<OsString> = vec!["bwrap".into()];
        v.extend(self.head.iter().cloned());
        if let Some(c) = checkout {
            v.extend(["--bind".into(), c.into(), c.into()]);
        }
        v.extend(self.tail.iter().cloned());
        v.extend(["--chdir".into(), dir.into(), "--".into()]);
        v.extend(argv.iter().map(OsString::from));
        v
    }
}

/// Descriptors above 2 that this process holds without close-on-exec: inherited from whoever
/// started the gate (CI runners leak some). Every program the gate starts would get them, and
/// bwrap passes them on into the sandbox, where a descriptor of the key file or of a runner's
/// socket would undo the isolation.
fn inherited_descriptors() -> anyhow::Result<Vec<u32>> {
    let entries = std::fs::read_dir("/proc/self/fd")
        .context("cannot list this process's open descriptors in /proc/self/fd")?;
    let mut fds = Vec::new();
    for e in entries {
        let e = e.context("cannot list this process's open descriptors in /proc/self/fd")?;
        let Some(fd) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if fd <= 2 {
            continue;
        }
        // Unreadable: closed since the listing (the listing's own descriptor).
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok());
        if flags.is_none_or(|f| f & O_CLOEXEC == 0) {
            fds.push(fd);
        }
    }
    fds.sort_unstable();
    Ok(fds)
}

/// Starts every program the build can influence (build, tests, `--version` probes): inside
/// bwrap unless --danger-no-sandbox, with the scrubbed environment, stdin from /dev/null and
/// none of the gate's inherited descriptors. Safe Rust cannot close a descriptor it does not
/// own, so inherited ones are closed by a shell that then execs the command (`bash` when one
/// is above 9, which `sh` cannot name).
struct Launcher {
    bwrap: Option<Bwrap>,
    env: BTreeMap<String, OsString>,
    close: Vec<u32>,
    /// The shell that closes them, if any are open.
    closer: Option<PathBuf>,
}

impl Launcher {
    fn new(bwrap: Option<Bwrap>, env: BTreeMap<String, OsString>) -> anyhow::Result<Self> {
        let close = inherited_descriptors()?;
        let closer = if close.is_empty() {
            None
        } else {
            let shell = if close.iter().all(|&fd| fd <= 9) {
                "sh"
            } else {
                "bash"
            };
            let found = which(shell, env.get("PATH").map(OsString::as_os_str)).or_else(|| {
                ["/bin", "/usr/bin"]
                    .iter()
                    .map(|d| Path::new(d).join(shell))
                    .find(|p| is_executable(p))
            });
            let Some(found) = found else {
                bail!(
                    "this gate inherited open descriptors ({}) that its commands must not get, \
                     and closing them needs {shell}, which is not installed; start the gate \
                     without them or install {shell}",
                    close
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            };
            Some(found)
        };
        Ok(Launcher {
            bwrap,
            env,
            close,
            closer,
        })
    }

    fn command(&self, checkout: Option<&Path>, dir: &Path, argv: &[String]) -> Command {
        let inner: Vec<OsString> = match &self.bwrap {
            Some(b) => b.argv(checkout, dir, argv),
            None => argv.iter().map(OsString::from).collect(),
        };
        let mut c = if let Some(shell) = &self.closer {
            let closes: Vec<String> = self.close.iter().map(|fd| format!("{fd}<&-")).collect();
            let mut c = Command::new(shell);
            c.arg("-c")
                .arg(format!("exec {}; exec \"$@\"", closes.join(" ")))
                .arg("agentgate-gate")
                .args(&inner);
            c
        } else {
            let mut c = Command::new(&inner[0]);
            c.args(&inner[1..]);
            c
        };
        c.current_dir(dir)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null());
        c
    }

    /// Run `true` the way the build will run: None if it works, else why not.
    fn probe_failure(&self, dir: &Path) -> Option<String> {
        self.bwrap.as_ref()?;
        if which("bwrap", self.env.get("PATH").map(OsString::as_os_str)).is_none() {
            return Some("bwrap is not installed (not found on PATH)".to_string());
        }
        match self
            .command(None, dir, &["true".to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
        {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "`bwrap ... true` failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run bwrap: {e}")),
        }
    }
}

/// The refusal when isolation cannot work here, with how to enable it.
fn sandbox_unavailable_error(reason: &str) -> anyhow::Error {
    anyhow::anyhow!(SANDBOX_UNAVAILABLE_HELP).context(format!(
        "[sandbox-unavailable] the gate isolates build and tests with bubblewrap, which cannot \
         run here: {reason}; nothing was built or signed"
    ))
}

/// How to make bwrap work, for the refusal when it does not.
const SANDBOX_UNAVAILABLE_HELP: &str = "\
to enable it: on GitHub's Ubuntu runners `sudo apt-get install -y bubblewrap`, and on Ubuntu \
24.04 also `sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; in Docker, run the \
container with `--security-opt seccomp=unconfined --security-opt apparmor=unconfined \
--security-opt systempaths=unconfined` (or `--privileged`); in GitLab runners, the Docker \
executor needs `privileged = true` (or those security_opt entries) in config.toml, the shell \
executor what a plain host needs (bubblewrap installed, user namespaces allowed). \
--danger-no-sandbox builds without isolation: the build can then read this gate's key and \
environment";

/// Whether the default isolation can run on this machine (for `agentgate demo`): None if it
/// can, else why not.
pub fn sandbox_unavailable() -> Option<String> {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return Some(format!("no temporary directory: {e}")),
    };
    let env = BTreeMap::from([(
        "PATH".to_string(),
        std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
    )]);
    let plan = SandboxPlan::new(
        HIDDEN_ROOTS.iter().map(PathBuf::from),
        [],
        vec![dir.path().to_path_buf()],
        [],
    );
    match Launcher::new(Some(Bwrap::new(plan)), env) {
        Ok(launcher) => launcher.probe_failure(dir.path()),
        Err(e) => Some(format!("{e:#}")),
    }
}

/// The sandbox for this run. Hidden: [`HIDDEN_ROOTS`], the caller's HOME, working tree and git
/// directory, the key's directory and what [`ci_hidden`] names. Readable: toolchains, PATH and
/// the repository's objects (the checkout borrows them). Writable: the build's HOME and TMPDIR.
/// Masked: the key, toolchain credentials.
fn sandbox_plan(
    repo: &git2::Repository,
    git_dir: &Path,
    env: &BTreeMap<String, OsString>,
    work: &Path,
    key: Option<&Path>,
) -> SandboxPlan {
    let get = |n: &str| std::env::var_os(n);
    let key = key.and_then(|k| k.canonicalize().ok());
    let mut hide: Vec<PathBuf> = HIDDEN_ROOTS.iter().map(PathBuf::from).collect();
    hide.extend(get("HOME").filter(|h| !h.is_empty()).map(PathBuf::from));
    hide.extend(repo.workdir().map(Path::to_path_buf));
    hide.push(repo.path().to_path_buf());
    hide.push(git_dir.to_path_buf());
    hide.extend(key.as_deref().and_then(Path::parent).map(Path::to_path_buf));
    hide.extend(ci_hidden(&get));

    let mut readable: Vec<PathBuf> = ENV_ALLOWLIST
        .iter()
        .filter(|v| **v != "PATH")
        .filter_map(|v| env.get(*v))
        .map(PathBuf::from)
        .collect();
    if let Some(p) = env.get("PATH") {
        readable.extend(std::env::split_paths(p));
    }
    let objects = git_dir.join("objects");
    if let Ok(text) = std::fs::read_to_string(objects.join("info").join("alternates")) {
        readable.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| objects.join(l)),
        );
    }
    readable.push(objects);

    let mut mask: Vec<PathBuf> = key.into_iter().collect();
    for (var, file) in TOOLCHAIN_CREDENTIALS {
        if let Some(dir) = env.get(*var) {
            mask.push(Path::new(dir).join(file));
        }
    }
    SandboxPlan::new(
        hide,
        readable,
        vec![work.join("home"), work.join("tmp")],
        mask,
    )
}

/// What the provenance says about the isolation of this run.
fn sandbox_record(bwrap: Option<&Bwrap>) -> Value {
    let paths =
        |v: &[PathBuf]| -> Vec<String> { v.iter().map(|p| p.display().to_string()).collect() };
    match bwrap {
        Some(b) => json!({
            "kind": "bwrap",
            "network": "none (private network namespace)",
            "processes": "private PID namespace: the gate is out of sight, and every process of a step ends with it",
            "capabilities": "none",
            "descriptors": "stdin /dev/null, stdout and stderr pipes, no others",
            "writable": ["checkout", "HOME", "TMPDIR", "/tmp and /var/tmp (empty, private)"],
            "hidden": paths(&b.plan.hidden),
            "readable": paths(&b.plan.readable),
            "masked": paths(&b.plan.masked),
        }),
        None => json!({
            "kind": "none",
            "option": "--danger-no-sandbox",
            "note": "build and tests ran without isolation, with the gate's processes, files, key file and network in reach",
        }),
    }
}

/// Before the build: the key file is there and can be opened (nothing is read), and the
/// passphrase variable, if one is named, is set.
fn key_preflight(path: &Path, password_env: Option<&str>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the private key {}", path.display()))?;
    if !meta.is_file() {
        bail!("the private key {} is not a regular file", path.display());
    }
    drop(
        std::fs::File::open(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?,
    );
    if let Some(var) = password_env {
        if std::env::var_os(var).is_none() {
            bail!("the passphrase variable {var} is not set");
        }
    }
    Ok(())
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
    launcher: &'a Launcher,
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
    let mut command = ctx.launcher.command(Some(dir), dir, &cmd.argv);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
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
    let mut artifacts = Vec::new();
    for name in names {
        let path = match inside_checkout(dir, name)? {
            Ok(p) => p,
            Err(problem) => {
                return Ok(Err(GateError::ArtifactMissing {
                    path: name.clone(),
                    problem: problem.to_string(),
                }))
            }
        };
        let sha256 = hash_with_progress(&path)
            .with_context(|| format!("cannot hash the artifact {name}"))?;
        artifacts.push(Artifact {
            name: name.clone(),
            sha256,
        });
    }
    Ok(Ok(artifacts))
}

/// `name` in the checkout `dir`, resolved: a regular file inside the checkout, or what is wrong.
/// The gate reads these files outside the sandbox, so a symlink the build planted (to the key,
/// to /proc/self/environ) must not lead it anywhere else.
fn inside_checkout(dir: &Path, name: &str) -> anyhow::Result<Result<PathBuf, &'static str>> {
    let root = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let Ok(path) = dir.join(name).canonicalize() else {
        return Ok(Err("does not exist"));
    };
    if !path.starts_with(&root) {
        return Ok(Err("points outside the checkout"));
    }
    if !path.is_file() {
        return Ok(Err("is not a regular file"));
    }
    Ok(Ok(path))
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
        if CI_CREDENTIALS.contains(&name.as_str()) {
            bail!("--env {name} would hand the CI job's credentials to the build");
        }
    }

    // Nothing secret is read before the build: the key file is only checked to be there, the
    // passphrase variable to be set. The key is loaded (and decrypted) after build and tests
    // have ended and their processes are gone, so no copy of it exists while they run; a wrong
    // passphrase costs a build. Keyless: the services and a token source are checked now, the
    // token itself is taken (in GitHub Actions: requested) after the build.
    match &args.key {
        Some(path) => key_preflight(path, args.password_env.as_deref())?,
        None => keyless_preflight(&args.keyless)?,
    }
    if args.danger_no_sandbox {
        eprintln!(
            "agentgate: warning: --danger-no-sandbox: build and tests run without isolation; they \
             can read this gate's environment, memory, open files and key file, and the \
             provenance will say so"
        );
    }
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

    let bwrap = if args.danger_no_sandbox {
        None
    } else {
        let plan = sandbox_plan(&repo, &git_dir, &env, &work.path, args.key.as_deref());
        for r in &plan.refused {
            eprintln!(
                "agentgate: warning: {} (on PATH or named by a toolchain variable) is not visible \
                 to the build: binding it would show a hidden directory whole",
                r.display()
            );
        }
        Some(Bwrap::new(plan))
    };
    let launcher = Launcher::new(bwrap, env)?;
    let ctx = StepContext {
        launcher: &launcher,
        logs: log_dir.path(),
    };

    // Tools: git, each command's program and, sandboxed, bwrap. Asked for their versions before
    // the build, the way the build runs them, so nothing the build leaves behind runs outside
    // it; this first start of the sandbox also refuses if it cannot run here.
    let mut tools = vec!["git".to_string()];
    tools.extend(build.program());
    tools.extend(test.program());
    if launcher.bwrap.is_some() {
        tools.push("bwrap".to_string());
    }
    let builder_dependencies = tool_descriptors(&tools, &launcher, &work.path.join("home"))?;

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
        let found = inside_checkout(&checkout1, name)?;
        if let Ok(path) = &found {
            let (summary, digest) = load_junit(path)?;
            configuration.push(ResourceDescriptor::named(name, DIGEST_SHA256, &digest));
            byproducts.push(ResourceDescriptor {
                media_type: Some("application/xml".into()),
                annotations: Some(json!({"step": "test", "kind": "junit"})),
                ..ResourceDescriptor::named(name, DIGEST_SHA256, digest)
            });
            if let LogDir::Kept(dir) = &log_dir {
                let dest = dir.join("junit.xml");
                std::fs::copy(path, &dest).with_context(|| {
                    format!("cannot copy the JUnit report to {}", dest.display())
                })?;
            }
            junit = summary;
        } else if let Err(problem) = found {
            if tests_ran_ok {
                let e = GateError::JunitMissing {
                    path: name.clone(),
                    problem: problem.to_string(),
                };
                return refuse(args, &e, None);
            }
            eprintln!("agentgate: warning: the tests failed and the JUnit report {name} {problem}");
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

    let sandbox_name = if launcher.bwrap.is_some() {
        "bwrap"
    } else {
        "none"
    };
    let runner = runner_info(&|n| std::env::var(n).ok());
    let (ci_builder, ci_invocation) = ci_ids(&runner);
    let builder_id = args
        .builder_id
        .clone()
        .or(ci_builder)
        .unwrap_or_else(|| GATE_DEFAULT_BUILDER_ID.to_string());
    let env_names: Vec<&String> = launcher.env.keys().collect();
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
                "sandbox": sandbox_name,
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
                "sandbox": sandbox_record(launcher.bwrap.as_ref()),
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
    // Build and tests are over: under bwrap every process they started ended with its step
    // (the PID namespace dies with its first process). Only now is the key read.
    let signer = match &args.key {
        Some(path) => Signer::Key(load_signing_key(path, args.password_env.as_deref(), false)?),
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
        "sandbox": sandbox_name,
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
            if launcher.bwrap.is_some() {
                ", isolated in bwrap without network"
            } else {
                ", WITHOUT isolation (--danger-no-sandbox)"
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
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([
            ("PATH".to_string(), OsString::from("/usr/bin:/bin")),
            ("TMPDIR".to_string(), dir.path().as_os_str().to_owned()),
        ]);
        let launcher = Launcher::new(None, env).unwrap();
        let names = [
            "git",
            "no-such-tool-anywhere",
            "./script.sh",
            "git",
            "false",
        ]
        .map(String::from);
        let d = tool_descriptors(&names, &launcher, dir.path()).unwrap();
        // Found once each; `false --version` exits 1: a digest but no version.
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].name.as_deref(), Some("git"));
        assert!(d[0].annotations.as_ref().unwrap()["version"]
            .as_str()
            .unwrap()
            .starts_with("git version"));
        assert_eq!(d[0].digest[DIGEST_SHA256].len(), 64);
        assert_eq!(d[1].name.as_deref(), Some("false"));
        assert!(d[1].annotations.is_none());
    }

    #[test]
    fn relative_path_entries_are_not_searched() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::copy("/bin/sh", bin.join("only-here")).unwrap();
        let abs = std::env::join_paths([&bin]).unwrap();
        assert_eq!(which("only-here", Some(&abs)), Some(bin.join("only-here")));
        assert_eq!(which("only-here", Some(OsStr::new("bin:."))), None);
    }

    #[test]
    fn ci_hidden_names_the_runner_and_the_job_files() {
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_TEMP", "/opt/runner/_work/_temp"),
            ("RUNNER_WORKSPACE", "/opt/runner/_work/app"),
            ("GITHUB_WORKSPACE", "/opt/runner/_work/app/app"),
        ]);
        let get = |n: &str| vars.get(n).map(OsString::from);
        let paths: Vec<PathBuf> = ci_hidden(&get);
        assert!(paths.contains(&PathBuf::from("/opt/runner")), "{paths:?}");
        assert!(paths.contains(&PathBuf::from("/opt/runner/_work/_temp")));
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITLAB_CI", "true"),
            ("CI_BUILDS_DIR", "/builds"),
            ("CI_PROJECT_DIR", "/builds/acme/app"),
        ]);
        let get = |n: &str| vars.get(n).map(OsString::from);
        assert_eq!(
            ci_hidden(&get),
            [
                PathBuf::from("/builds"),
                PathBuf::from("/builds/acme/app.tmp"),
                PathBuf::from("/builds/acme/app")
            ]
        );
        assert!(ci_hidden(&|_| None).is_empty());
    }

    #[test]
    fn sandbox_plan_hides_binds_back_and_never_shows_a_hidden_dir_whole() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let home = root.join("home");
        let cargo = home.join(".cargo");
        for p in [
            &cargo.join("bin"),
            &root.join("work/home"),
            &root.join("keys"),
        ] {
            std::fs::create_dir_all(p).unwrap();
        }
        std::fs::write(root.join("keys/gate.key"), "k").unwrap();
        std::fs::write(cargo.join("credentials.toml"), "token").unwrap();
        std::fs::write(root.join("not-a-dir"), "x").unwrap();
        let plan = SandboxPlan::new(
            [
                home.clone(),
                root.join("keys"),
                root.join("not-a-dir"),
                root.join("missing"),
                PathBuf::from("/usr"),
                PathBuf::from("/"),
                PathBuf::from("relative"),
            ],
            [
                cargo.join("bin"),
                home.clone(),
                root.clone(),
                PathBuf::from("/usr/bin"),
            ],
            vec![root.join("work/home")],
            [root.join("keys/gate.key"), cargo.join("credentials.toml")],
        );
        assert_eq!(plan.hidden, [home.clone(), root.join("keys")]);
        // Inside a hidden directory: bound back; already visible: left alone; a hidden
        // directory or its parent: refused.
        assert_eq!(plan.readable, [cargo.join("bin")]);
        assert_eq!(plan.refused, [root.clone(), home.clone()]);
        assert_eq!(
            plan.masked,
            [cargo.join("credentials.toml"), root.join("keys/gate.key")]
        );
        let b = Bwrap::new(plan);
        let args: Vec<String> = b
            .argv(Some(&root.join("work/c1")), &root, &["true".into()])
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let pos = |needle: &[&str]| {
            args.windows(needle.len())
                .position(|w| w == needle)
                .unwrap_or_else(|| panic!("{needle:?} not in {args:?}"))
        };
        let h = home.display().to_string();
        let bin = cargo.join("bin").display().to_string();
        let cred = cargo.join("credentials.toml").display().to_string();
        let c1 = root.join("work/c1").display().to_string();
        // A directory is mounted before what is inside it, the step's checkout after all of
        // them, and the hidden directories turn read-only last.
        assert!(pos(&["--tmpfs", &h]) < pos(&["--ro-bind", &bin, &bin]));
        assert!(pos(&["--ro-bind", &bin, &bin]) < pos(&["--ro-bind", "/dev/null", &cred]));
        assert!(pos(&["--ro-bind", "/dev/null", &cred]) < pos(&["--bind", &c1, &c1]));
        assert!(pos(&["--bind", &c1, &c1]) < pos(&["--remount-ro", &h]));
        for flag in ["--unshare-all", "--die-with-parent", "--new-session"] {
            pos(&[flag]);
        }
        pos(&["--cap-drop", "ALL"]);
        assert_eq!(args.last().map(String::as_str), Some("true"));
    }

    #[test]
    fn inherited_descriptors_are_found_and_ours_are_not() {
        // Everything std opens is close-on-exec: this test process's own files are not listed.
        let f = std::fs::File::open("/proc/self/status").unwrap();
        use std::os::fd::AsRawFd as _;
        let fd = u32::try_from(f.as_raw_fd()).unwrap();
        assert!(!inherited_descriptors().unwrap().contains(&fd));
    }
}
