//! `agentgate gate`: the compile-test-sign gate. It builds and tests exactly one commit in a
//! clean checkout, isolated by default (bubblewrap: its own PID, network and mount namespaces, a
//! scrubbed environment, the key and the CI's secrets out of sight), records what ran and, only
//! after every process of the build is gone, loads the key and signs the SLSA provenance and
//! test-result attestations that the hook requires. Signing, key loading and publishing are
//! shared with `agentgate sign`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use agentgate_formats::statement::{
    provenance_statement, test_result_statement, Artifact, JunitSummary, ProvenanceParams,
    ResourceDescriptor, Source, Statement, TestOutcome, TestResult, DIGEST_GIT_COMMIT,
    DIGEST_SHA256,
};
use agentgate_git::{checkout_detached, Repo};
use anyhow::{bail, Context as _};
use chrono::{DateTime, SubsecRound as _, Utc};
use serde_json::{json, Value};

use crate::cli::gate::GateArgs;
use crate::exit;
use crate::signing::{
    invocation_id, keyless_preflight, load_junit, load_signing_key, open_repo, publish_bundles,
    resolve_commit, source_of, SignedBy, Signer, PROVENANCE_FILE, TEST_RESULT_FILE,
};
use crate::terminal::outln;

mod environment;
mod sandbox;
mod steps;
mod tools;

pub use environment::{ci_hidden, runner_info, scrubbed_env, ENV_ALLOWLIST};
pub use sandbox::sandbox_unavailable;

use environment::{ci_ids, CI_CREDENTIALS, KEYLESS_SECRETS};
use sandbox::{sandbox_plan, sandbox_record, Bwrap, Launcher};
use steps::{
    hash_artifacts, inside_checkout, keep_artifacts, run_step, LogDir, StepContext, StepRecord,
    WorkDir, ARTIFACTS_DIR,
};
use tools::tool_descriptors;

/// SLSA buildType of attestations made by `agentgate gate`.
pub const GATE_BUILD_TYPE: &str = agentgate_formats::statement::BUILD_TYPE_GATE_V1;
/// Builder id when none is given and no CI system is recognised.
pub const GATE_DEFAULT_BUILDER_ID: &str = "https://example.invalid/agentgate/builders/gate";

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
    pub(super) fn program(&self) -> Option<String> {
        if self.shell {
            shlex::split(&self.text).and_then(|w| w.into_iter().next())
        } else {
            self.argv.first().cloned()
        }
    }

    pub(super) fn display(&self) -> String {
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

/// What the command line asks for, checked before anything runs.
struct Request {
    build: CommandLine,
    test: CommandLine,
    artifact_names: Vec<String>,
    junit_name: Option<String>,
}

impl Request {
    /// The commands split as given, the paths inside the checkout, and no `--env` name that
    /// would hand a secret to the build.
    fn parse(args: &GateArgs) -> anyhow::Result<Request> {
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
        Ok(Request {
            build,
            test,
            artifact_names,
            junit_name,
        })
    }
}

/// What the build and test steps produced.
struct Built {
    /// The artifacts as the (first) build left them.
    artifacts: Vec<Artifact>,
    /// How many builds ran (two with --reproducible).
    builds: usize,
}

/// The test result, the JUnit report's summary, and the byproducts (logs, report).
type TestOutput = (TestResult, JunitSummary, Vec<ResourceDescriptor>);

/// The test step's result.
struct Tested {
    /// How the test command ended ("exited with status 1").
    status: String,
    junit: JunitSummary,
    outcome: TestOutcome,
    result: TestResult,
    byproducts: Vec<ResourceDescriptor>,
}

/// The gate's run, as it goes: what every step after the checkout needs.
struct Run<'a> {
    args: &'a GateArgs,
    request: Request,
    source: Source,
    git_dir: PathBuf,
    commit_time: i64,
    log_dir: LogDir,
    work: WorkDir,
    launcher: Launcher,
}

/// Build, test and sign one commit: checkout, environment, sandbox, build, test, hash, sign,
/// publish. Nothing secret is read before the build; the key is loaded after the build and the
/// tests have ended and their processes are gone.
pub fn gate(args: &GateArgs) -> anyhow::Result<ExitCode> {
    let started_on = Utc::now().trunc_subsecs(0);
    let request = Request::parse(args)?;
    preflight(args)?;
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, &args.commit)?;
    let source = source_of(&repo, &commit)?;
    let common = repo.common_dir()?;
    let git_dir = common.canonicalize().unwrap_or(common);
    let log_dir = log_dir(args)?;
    let work = WorkDir::new()?;
    let env = environment(args, &work, commit.time);
    let launcher = sandbox(args, &repo, &git_dir, env, &work)?;
    let run = Run {
        args,
        request,
        source,
        git_dir,
        commit_time: commit.time,
        log_dir,
        work,
        launcher,
    };
    // The tool probes and the first checkout do not depend on each other: they run side by
    // side (together about two thirds of the gate's own time, issue 18). Both are done before
    // any of the build's code runs, so nothing the build does can change what the probes
    // report; a probe's error still comes first.
    let first_checkout = run.work.path.join("checkout-1");
    let (tools, checkout) = std::thread::scope(|s| {
        let tools = s.spawn(|| run.tools());
        let checkout = checkout_detached(&run.git_dir, &run.source.commit, &first_checkout);
        (tools.join(), checkout)
    });
    let builder_dependencies =
        tools.map_err(|_| anyhow::anyhow!("the tool version probes panicked"))??;
    checkout?;
    let (built, steps) = match run.build()? {
        Ok(built) => built,
        Err(e) => return refuse(args, &e, None),
    };
    let (tested, steps) = match run.test(steps, &built.artifacts)? {
        Ok(tested) => tested,
        Err(e) => return refuse(args, &e, None),
    };
    let runner = runner_info(&|n| std::env::var(n).ok());
    let (ci_builder, ci_invocation) = ci_ids(&runner);
    let builder_id = args
        .builder_id
        .clone()
        .or(ci_builder)
        .unwrap_or_else(|| GATE_DEFAULT_BUILDER_ID.to_string());
    let provenance = run.provenance(
        &built,
        &tested,
        &steps,
        Provenance {
            builder_id: &builder_id,
            invocation_id: ci_invocation.unwrap_or_else(invocation_id),
            runner,
            builder_dependencies,
            started_on,
        },
    );
    let tests = test_result_statement(&run.source, &built.artifacts, &tested.result, &provenance)?;
    let kept = match run.keep(&built.artifacts)? {
        Ok(kept) => kept,
        Err(e) => return refuse(args, &e, None),
    };
    let (provenance_bundle, tests_bundle, signed_by) = sign(args, &provenance, &tests)?;
    let mut written = publish_bundles(
        &repo,
        &commit.id,
        &provenance_bundle,
        &tests_bundle,
        args.out.as_deref(),
        args.note.then_some(args.notes_ref.as_str()),
    )?;
    written.extend(kept);
    run.report(
        &built,
        &tested,
        &steps,
        &Published {
            provenance_bundle,
            tests_bundle,
            signed_by,
            written,
            builder_id,
        },
    )
}

/// Before the build, nothing secret is read: the key file is only checked to be there, the
/// passphrase variable to be set. The key is loaded (and decrypted) after build and tests have
/// ended and their processes are gone, so no copy of it exists while they run; a wrong
/// passphrase costs a build. Keyless: the services and a token source are checked now, the
/// token itself is taken (in GitHub Actions: requested) after the build.
fn preflight(args: &GateArgs) -> anyhow::Result<()> {
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
    Ok(())
}

/// Where the logs go: `--out` (where bundles of an earlier run must not pass for this run's,
/// should this one refuse), or a temporary directory.
fn log_dir(args: &GateArgs) -> anyhow::Result<LogDir> {
    Ok(match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
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
            // The artifacts of an earlier run must not sit next to this run's bundles either.
            // (remove_dir_all removes a symlink itself, never what it points to.)
            let kept = dir.join(ARTIFACTS_DIR);
            let gone = match kept.symlink_metadata() {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&kept),
                Ok(_) => std::fs::remove_file(&kept),
                Err(_) => Ok(()),
            };
            gone.with_context(|| format!("cannot remove the old {}", kept.display()))?;
            LogDir::Kept(dir.clone())
        }
        None => LogDir::Temporary(
            tempfile::tempdir().context("cannot create a temporary directory for the logs")?,
        ),
    })
}

/// Step: the environment build and tests get ([`scrubbed_env`]): the allowlist, `--env`, and
/// the gate's own HOME, TMPDIR and SOURCE_DATE_EPOCH (the commit's time).
fn environment(args: &GateArgs, work: &WorkDir, commit_time: i64) -> BTreeMap<String, OsString> {
    let env_var = |n: &str| std::env::var_os(n);
    scrubbed_env(
        &env_var,
        &args.env,
        &work.path.join("home"),
        &work.path.join("tmp"),
        commit_time,
    )
}

/// Step: the sandbox (bwrap with this run's plan, unless --danger-no-sandbox) and the launcher
/// every program the build can influence is started with.
fn sandbox(
    args: &GateArgs,
    repo: &Repo,
    git_dir: &Path,
    env: BTreeMap<String, OsString>,
    work: &WorkDir,
) -> anyhow::Result<Launcher> {
    let bwrap = if args.danger_no_sandbox {
        None
    } else {
        let plan = sandbox_plan(repo, git_dir, &env, &work.path, args.key.as_deref());
        for r in &plan.refused {
            eprintln!(
                "agentgate: warning: {} (on PATH or named by a toolchain variable) is not visible \
                 to the build: binding it would show a hidden directory whole",
                r.display()
            );
        }
        Some(Bwrap::new(plan))
    };
    Launcher::new(bwrap, env)
}

/// Step: sign both statements, with the key read only now, or keylessly.
fn sign(
    args: &GateArgs,
    provenance: &Statement,
    tests: &Statement,
) -> anyhow::Result<(String, String, SignedBy)> {
    // Build and tests are over: under bwrap every process they started ended with its step
    // (the PID namespace dies with its first process). Only now is the key read.
    let signer = match &args.key {
        Some(path) => Signer::Key(load_signing_key(
            path,
            args.password_env.as_deref(),
            false,
            "--password-env VAR",
        )?),
        None => Signer::keyless(&args.keyless)?,
    };
    signer.sign_pair(provenance, tests)
}

/// Who built, when, and with what: the provenance's run details.
struct Provenance<'a> {
    builder_id: &'a str,
    invocation_id: String,
    /// The host and CI job ([`runner_info`]).
    runner: Value,
    builder_dependencies: Vec<ResourceDescriptor>,
    started_on: DateTime<Utc>,
}

/// What was signed and where it went.
struct Published {
    provenance_bundle: String,
    tests_bundle: String,
    signed_by: SignedBy,
    written: Vec<String>,
    builder_id: String,
}

impl Run<'_> {
    fn ctx(&self) -> StepContext<'_> {
        StepContext {
            launcher: &self.launcher,
            logs: self.log_dir.path(),
        }
    }

    /// Tools: git, each command's program and, sandboxed, bwrap. Asked for their versions
    /// before the build, the way the build runs them, so nothing the build leaves behind runs
    /// outside it; this first start of the sandbox also refuses if it cannot run here.
    fn tools(&self) -> anyhow::Result<Vec<ResourceDescriptor>> {
        let mut tools = vec!["git".to_string()];
        tools.extend(self.request.build.program());
        tools.extend(self.request.test.program());
        if self.launcher.bwrap.is_some() {
            tools.push("bwrap".to_string());
        }
        tool_descriptors(&tools, &self.launcher, &self.work.path.join("home"))
    }

    /// Step keep (with --out): the artifacts about to be signed, copied next to the bundles
    /// ([`keep_artifacts`]). Returns the paths written.
    fn keep(&self, artifacts: &[Artifact]) -> anyhow::Result<Result<Vec<String>, GateError>> {
        let LogDir::Kept(out) = &self.log_dir else {
            return Ok(Ok(Vec::new()));
        };
        let checkout1 = self.work.path.join("checkout-1");
        Ok(keep_artifacts(&checkout1, out, artifacts)?
            .map(|paths| paths.iter().map(|p| p.display().to_string()).collect()))
    }

    /// Steps checkout, build and hash: each build in a fresh checkout of the commit (two with
    /// --reproducible, whose artifacts must not differ), its artifacts hashed. The first
    /// checkout is made before, by [`gate`], beside the tool probes.
    /// Returns what was built and the steps run.
    fn build(&self) -> anyhow::Result<Result<(Built, Vec<StepRecord>), GateError>> {
        let ctx = self.ctx();
        let build = &self.request.build;
        let mut steps = Vec::new();
        let builds = if self.args.reproducible { 2 } else { 1 };
        let mut digests: Vec<Vec<Artifact>> = Vec::new();
        for i in 1..=builds {
            let dir = self.work.path.join(format!("checkout-{i}"));
            if i > 1 {
                checkout_detached(&self.git_dir, &self.source.commit, &dir)?;
            }
            let step = if i == 1 {
                "build".to_string()
            } else {
                format!("build-{i}")
            };
            let record = run_step(&ctx, &step, i, build, &dir)?;
            let ok = record.success();
            let status = record.status();
            steps.push(record);
            if !ok {
                let logs = match &self.log_dir {
                    LogDir::Kept(p) => format!(" and in {}", p.display()),
                    LogDir::Temporary(_) => String::new(),
                };
                return Ok(Err(GateError::BuildFailed {
                    step: step.clone(),
                    command: build.display(),
                    status,
                    logs,
                }));
            }
            match hash_artifacts(&dir, &self.request.artifact_names)? {
                Ok(a) => digests.push(a),
                Err(e) => return Ok(Err(e)),
            }
            if i > 1 {
                // The second checkout has done its job; free the disk before the tests.
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        let mut digests = digests.into_iter();
        let artifacts = digests.next().unwrap_or_default();
        if let Some(second) = digests.next() {
            let differing: Vec<String> = artifacts
                .iter()
                .zip(&second)
                .filter(|(a, b)| a.sha256 != b.sha256)
                .map(|(a, b)| {
                    format!(
                        "{} differs between the two builds (sha256:{} and sha256:{})",
                        a.name, a.sha256, b.sha256
                    )
                })
                .collect();
            if !differing.is_empty() {
                return Ok(Err(GateError::NotReproducible { differing }));
            }
        }
        Ok(Ok((Built { artifacts, builds }, steps)))
    }

    /// Steps test and hash: the test command in the first checkout, the artifacts hashed again
    /// (the tests must not have changed them), and the test result: the command's status,
    /// refined by the JUnit report.
    fn test(
        &self,
        mut steps: Vec<StepRecord>,
        artifacts: &[Artifact],
    ) -> anyhow::Result<Result<(Tested, Vec<StepRecord>), GateError>> {
        let checkout1 = self.work.path.join("checkout-1");
        let test_record = run_step(&self.ctx(), "test", 1, &self.request.test, &checkout1)?;
        let ran_ok = test_record.success();
        let status = test_record.status();
        steps.push(test_record);
        match hash_artifacts(&checkout1, &self.request.artifact_names)? {
            Ok(after) => {
                if let Some((a, b)) = artifacts
                    .iter()
                    .zip(&after)
                    .find(|(a, b)| a.sha256 != b.sha256)
                {
                    return Ok(Err(GateError::TestsChangedArtifact {
                        path: a.name.clone(),
                        before: a.sha256.clone(),
                        after: b.sha256.clone(),
                    }));
                }
            }
            Err(e) => return Ok(Err(e)),
        }

        Ok(self
            .test_result(&checkout1, ran_ok, &steps)?
            .map(|(result, junit, byproducts)| {
                let tested = Tested {
                    status,
                    outcome: result.result,
                    junit,
                    result,
                    byproducts,
                };
                (tested, steps)
            }))
    }

    /// The test result: the test command's status, refined by the JUnit report (copied to
    /// --out), with every step's logs as byproducts and the test step's as configuration.
    fn test_result(
        &self,
        checkout1: &Path,
        ran_ok: bool,
        steps: &[StepRecord],
    ) -> anyhow::Result<Result<TestOutput, GateError>> {
        let mut configuration = vec![ResourceDescriptor {
            uri: Some(self.source.uri.clone()),
            digest: BTreeMap::from([(DIGEST_GIT_COMMIT.to_string(), self.source.commit.clone())]),
            ..Default::default()
        }];
        let mut byproducts = Vec::new();
        let mut junit = JunitSummary::default();
        if let Some(name) = &self.request.junit_name {
            let found = inside_checkout(checkout1, name)?;
            if let Ok(path) = &found {
                let (summary, digest) = load_junit(path)?;
                configuration.push(ResourceDescriptor::named(name, DIGEST_SHA256, &digest));
                byproducts.push(ResourceDescriptor {
                    media_type: Some("application/xml".into()),
                    annotations: Some(json!({"step": "test", "kind": "junit"})),
                    ..ResourceDescriptor::named(name, DIGEST_SHA256, digest)
                });
                if let LogDir::Kept(dir) = &self.log_dir {
                    let dest = dir.join("junit.xml");
                    std::fs::copy(path, &dest).with_context(|| {
                        format!("cannot copy the JUnit report to {}", dest.display())
                    })?;
                }
                junit = summary;
            } else if let Err(problem) = found {
                if ran_ok {
                    return Ok(Err(GateError::JunitMissing {
                        path: name.clone(),
                        problem: problem.to_string(),
                    }));
                }
                eprintln!(
                    "agentgate: warning: the tests failed and the JUnit report {name} {problem}"
                );
            }
        }
        let outcome = if !ran_ok || !junit.failed.is_empty() {
            TestOutcome::Failed
        } else if self.request.junit_name.is_some() && junit.passed.is_empty() {
            // A report in which nothing ran is no evidence that anything passed.
            TestOutcome::Warned
        } else {
            TestOutcome::Passed
        };
        for s in steps {
            for (log, stream) in [(&s.stdout, "stdout"), (&s.stderr, "stderr")] {
                let rd = ResourceDescriptor {
                    media_type: Some("text/plain".into()),
                    annotations: Some(
                        json!({"step": s.step, "stream": stream, "bytes": log.bytes}),
                    ),
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
        let result = TestResult {
            result: outcome,
            configuration,
            url: None,
            passed_tests: junit.passed.clone(),
            warned_tests: Vec::new(),
            failed_tests: junit.failed.clone(),
        };
        Ok(Ok((result, junit, byproducts)))
    }

    fn sandbox_name(&self) -> &'static str {
        if self.launcher.bwrap.is_some() {
            "bwrap"
        } else {
            "none"
        }
    }

    /// The SLSA provenance of this run: what was asked (external parameters), how it ran
    /// (checkout, environment, sandbox, steps, runner), with which tools.
    fn provenance(
        &self,
        built: &Built,
        tested: &Tested,
        steps: &[StepRecord],
        run: Provenance<'_>,
    ) -> Statement {
        let (args, source) = (self.args, &self.source);
        let env_names: Vec<&String> = self.launcher.env.keys().collect();
        let command_json =
            |c: &CommandLine| json!({"command": c.text, "argv": c.argv, "shell": c.shell});
        let finished_on = Utc::now().trunc_subsecs(0);
        provenance_statement(
            source,
            &built.artifacts,
            ProvenanceParams {
                builder_id: run.builder_id.to_string(),
                build_type: GATE_BUILD_TYPE.to_string(),
                external_parameters: json!({
                    "source": {"uri": source.uri, "revision": args.commit, "commit": source.commit},
                    "build": command_json(&self.request.build),
                    "test": command_json(&self.request.test),
                    "artifacts": self.request.artifact_names,
                    "junit": self.request.junit_name,
                    "env": args.env,
                    "reproducible": args.reproducible,
                    "sandbox": self.sandbox_name(),
                }),
                internal_parameters: Some(json!({
                    "checkout": {
                        "method": "git clone --shared --no-checkout, git checkout --detach",
                        "commit": source.commit,
                        "tree": source.tree,
                        "builds": built.builds,
                    },
                    "environment": {
                        "names": env_names,
                        "HOME": "empty temporary directory",
                        "TMPDIR": "empty temporary directory",
                        "SOURCE_DATE_EPOCH": self.commit_time,
                    },
                    "sandbox": sandbox_record(self.launcher.bwrap.as_ref()),
                    "steps": steps,
                    "testResult": tested.outcome.as_str(),
                    "runner": run.runner,
                })),
                builder_version: BTreeMap::from([(
                    "agentgate".to_string(),
                    env!("CARGO_PKG_VERSION").to_string(),
                )]),
                builder_dependencies: run.builder_dependencies,
                invocation_id: Some(run.invocation_id),
                started_on: run.started_on,
                finished_on,
                byproducts: tested.byproducts.clone(),
            },
        )
    }

    /// Tell the caller what was built, tested and signed (a JSON summary with --json), and
    /// refuse (exit 1) when the signed test result is not PASSED.
    fn report(
        &self,
        built: &Built,
        tested: &Tested,
        steps: &[StepRecord],
        p: &Published,
    ) -> anyhow::Result<ExitCode> {
        let args = self.args;
        let logs: Vec<String> = match &self.log_dir {
            LogDir::Kept(dir) => steps
                .iter()
                .flat_map(|s| [&s.stdout.name, &s.stderr.name])
                .map(|n| dir.join(n).display().to_string())
                .collect(),
            LogDir::Temporary(_) => Vec::new(),
        };
        let failure = match tested.outcome {
            TestOutcome::Passed => None,
            TestOutcome::Failed => Some(GateError::TestsFailed {
                detail: if tested.junit.failed.is_empty() {
                    format!("the test command {}", tested.status)
                } else {
                    format!(
                        "{} failed: {}",
                        tested.junit.failed.len(),
                        tested.junit.failed.join(", ")
                    )
                },
            }),
            TestOutcome::Warned => Some(GateError::TestsWarned {
                path: self.request.junit_name.clone().unwrap_or_default(),
            }),
        };
        let mut summary = json!({
            "signed": true,
            "commit": self.source.commit,
            "tree": self.source.tree,
            "repository": self.source.uri,
            "builderId": p.builder_id,
            "artifacts": built.artifacts,
            "testResult": tested.outcome.as_str(),
            "reproducible": args.reproducible.then_some(true),
            "sandbox": self.sandbox_name(),
            "files": p.written,
            "logs": logs,
            "note": args.note.then_some(&args.notes_ref),
        });
        p.signed_by.add_to(&mut summary);
        if args.out.is_none() && !args.note {
            summary["bundles"] = json!([
                serde_json::from_str::<Value>(&p.provenance_bundle)?,
                serde_json::from_str::<Value>(&p.tests_bundle)?,
            ]);
        }
        if args.json {
            if failure.is_none() {
                outln!("{summary}");
            }
        } else {
            outln!(
                "gate: built and tested commit {} (tree {}){}{}",
                self.source.commit,
                self.source.tree,
                if args.reproducible {
                    ", reproducibly (2 builds)"
                } else {
                    ""
                },
                if self.launcher.bwrap.is_some() {
                    ", isolated in bwrap without network"
                } else {
                    ", WITHOUT isolation (--danger-no-sandbox)"
                },
            );
            for a in &built.artifacts {
                outln!("  artifact sha256:{} {}", a.sha256, a.name);
            }
            outln!("  test result {}", tested.outcome.as_str());
            outln!(
                "  signed with {} as {}",
                p.signed_by.describe(),
                p.builder_id
            );
            for f in p.written.iter().chain(&logs) {
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
                outln!("{}\n{}", p.provenance_bundle, p.tests_bundle);
            }
        }
        match failure {
            None => Ok(ExitCode::SUCCESS),
            Some(e) => refuse(args, &e, Some(summary)),
        }
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

/// Print the refusal (and a JSON summary with --json) and return exit status 1.
fn refuse(args: &GateArgs, e: &GateError, summary: Option<Value>) -> anyhow::Result<ExitCode> {
    if args.json {
        let mut v = summary.unwrap_or_else(|| json!({ "signed": false }));
        v["code"] = json!(e.code());
        v["error"] = json!(e.to_string());
        outln!("{v}");
    }
    eprintln!("agentgate: gate refused [{}]: {e}", e.code());
    Ok(ExitCode::from(exit::REFUSED))
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
}
