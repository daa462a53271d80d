//! One step of the gate (a build, the tests) run and recorded: its output streamed, logged and
//! hashed, its status kept for the provenance; the work and log directories; the artifacts
//! read back from the checkout, never through a link the build planted.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use agentgate_formats::statement::Artifact;
use anyhow::Context as _;
use chrono::{DateTime, SubsecRound as _, Utc};
use serde::Serialize;
use sha2::Digest as _;

use super::sandbox::Launcher;
use super::{CommandLine, GateError};
use crate::signing::hash_with_progress;

/// A temporary directory removed on drop, also when the build left read-only directories in it
/// (Go's module cache does).
pub(super) struct WorkDir {
    pub(super) path: PathBuf,
}

impl WorkDir {
    pub(super) fn new() -> anyhow::Result<Self> {
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

/// One captured stream of a step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LogRecord {
    pub(super) name: String,
    pub(super) sha256: String,
    pub(super) bytes: u64,
}

/// What one command did, as recorded in the provenance.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StepRecord {
    pub(super) step: String,
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
    pub(super) stdout: LogRecord,
    pub(super) stderr: LogRecord,
}

impl StepRecord {
    pub(super) fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    pub(super) fn status(&self) -> String {
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

pub(super) struct StepContext<'a> {
    pub(super) launcher: &'a Launcher,
    pub(super) logs: &'a Path,
}

pub(super) fn run_step(
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
pub(super) fn hash_artifacts(
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
pub(super) fn inside_checkout(
    dir: &Path,
    name: &str,
) -> anyhow::Result<Result<PathBuf, &'static str>> {
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
pub(super) enum LogDir {
    Kept(PathBuf),
    Temporary(tempfile::TempDir),
}

impl LogDir {
    pub(super) fn path(&self) -> &Path {
        match self {
            LogDir::Kept(p) => p,
            LogDir::Temporary(t) => t.path(),
        }
    }
}

/// Where `--out DIR` keeps the signed artifacts: `DIR/artifacts/<path as given to --artifact>`.
pub(super) const ARTIFACTS_DIR: &str = "artifacts";

/// Copy each signed artifact from the checkout to `out/artifacts/<name>`, so the bundles and the
/// bytes they name travel together (the checkout is deleted with the gate). The source is read
/// through [`inside_checkout`] (no link the build planted leads outside it); the destination is
/// built one directory at a time, refusing any existing symlink or non-directory on the way, and
/// each file is written to a temporary name and renamed over the target (a rename replaces a
/// link, it never follows it). The copy is hashed as it is written: bytes that differ from the
/// signed digest (something still writing the file) refuse. Returns the paths written.
pub(super) fn keep_artifacts(
    checkout: &Path,
    out: &Path,
    artifacts: &[Artifact],
) -> anyhow::Result<Result<Vec<PathBuf>, GateError>> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;

    let root = out.join(ARTIFACTS_DIR);
    let mut written = Vec::new();
    for a in artifacts {
        let source = match inside_checkout(checkout, &a.name)? {
            Ok(p) => p,
            Err(problem) => {
                return Ok(Err(GateError::ArtifactMissing {
                    path: a.name.clone(),
                    problem: problem.to_string(),
                }))
            }
        };
        let dest = root.join(&a.name);
        let parent = dest
            .parent()
            .with_context(|| format!("{}: no parent directory", dest.display()))?;
        make_dirs_no_links(out, parent)?;
        let mut input = std::fs::File::open(&source)
            .with_context(|| format!("cannot read the artifact {}", a.name))?;
        let mode = input.metadata()?.permissions().mode() & 0o777;
        let mut tmp = tempfile::NamedTempFile::new_in(parent)
            .with_context(|| format!("cannot create a file in {}", parent.display()))?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", a.name)),
            };
            let chunk = &buf[..n];
            hasher.update(chunk);
            tmp.write_all(chunk)
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        let copied = hex::encode(hasher.finalize());
        if copied != a.sha256 {
            return Ok(Err(GateError::TestsChangedArtifact {
                path: a.name.clone(),
                before: a.sha256.clone(),
                after: copied,
            }));
        }
        tmp.as_file()
            .sync_all()
            .with_context(|| format!("cannot write {}", dest.display()))?;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))?;
        tmp.persist(&dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        written.push(dest);
    }
    Ok(Ok(written))
}

/// Create `dir` and its missing parents below `base` (which must exist), one at a time: an
/// existing entry on the way must be a real directory, never a symlink (a link left in `--out`
/// must not carry the copies elsewhere).
fn make_dirs_no_links(base: &Path, dir: &Path) -> anyhow::Result<()> {
    let rel = dir
        .strip_prefix(base)
        .with_context(|| format!("{} is not inside {}", dir.display(), base.display()))?;
    let mut path = base.to_path_buf();
    for c in rel.components() {
        path.push(c);
        match path.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => anyhow::bail!(
                "{} exists and is not a directory (a symlink is not followed); the artifacts are not copied through it",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&path)
                .with_context(|| format!("cannot create {}", path.display()))?,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(())
}
