//! Running as a server hook: read the updates, load the policy, decide every ref, write the
//! audit log, tell the pusher. Whatever goes wrong here refuses the push (fail closed): a broken
//! policy refuses everything, because we cannot know what is protected.

use std::io::Write;
use std::path::{Path, PathBuf};

use agentgate_formats::SigningKey;
use agentgate_git::{ObjectId, Repo};
use agentgate_policy::attestations::{attestation_source, notes_commit, AttestationsError};
use agentgate_policy::audit::{self, default_audit_path};
use agentgate_policy::audit_syslog::{MessageKind, Severity, Syslog};
use agentgate_policy::config::{self, load_for, PolicyError, SYSTEM_POLICY};
use agentgate_policy::decision::{self, Code, Evaluator, RefDecision, RefUpdate, StdinError};
use agentgate_policy::error_chain;

use crate::exit::{OK as EXIT_ACCEPT, REFUSED as EXIT_REFUSE, USAGE as EXIT_CONFIG};

/// Which hook we run as (recorded in the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    PreReceive,
    Update,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::PreReceive => "pre-receive",
            Mode::Update => "update",
        }
    }
}

/// The line prefix GitLab shows to the pusher.
pub fn message_prefix() -> &'static str {
    if std::env::var_os("GL_ID").is_some() {
        "GL-HOOK-ERR: "
    } else {
        ""
    }
}

/// Refuse every update for one reason.
fn refuse_all(
    updates: &[RefUpdate],
    code: Code,
    headline: String,
    details: Vec<String>,
    fix: &str,
) -> Vec<RefDecision> {
    updates
        .iter()
        .map(|u| {
            RefDecision::refused(
                u.clone(),
                code,
                headline.clone(),
                details.clone(),
                vec![fix.to_string()],
            )
        })
        .collect()
}

/// What the decision thread tells the watchdog as it goes: enough to write the audit record and
/// say which step ran out if the deadline passes first.
#[derive(Default)]
struct Progress {
    step: String,
    /// The policy's `[hook] timeout`, once the policy is loaded.
    timeout: Option<std::time::Duration>,
    policy: Option<PolicyInfo>,
    notes: Option<ObjectId>,
}

#[derive(Clone)]
struct PolicyInfo {
    path: PathBuf,
    digest: String,
    audit_log: PathBuf,
    notes_ref: String,
    /// The policy itself, archived next to the log with the records that name it.
    policy: std::sync::Arc<config::Policy>,
    /// The server key (`[server] key`), once loaded: it signs the checkpoint.
    server_key: Option<std::sync::Arc<SigningKey>>,
}

type Shared = std::sync::Arc<std::sync::Mutex<Progress>>;

fn set_step(shared: &Shared, step: impl Into<String>) {
    if let Ok(mut p) = shared.lock() {
        p.step = step.into();
    }
}

/// Run as a hook over `updates` (already parsed) or a stdin parse error. Writes messages to
/// `err`, returns the exit code.
///
/// The decisions run on their own thread under a deadline (`[hook] timeout`, 3 s by default;
/// the default also bounds loading the policy): servers kill slow hooks (GitHub Enterprise gives
/// all of them 5 s together), and a refusal that says what ran out beats a killed hook. When the
/// deadline passes, every update is refused `deadline-exceeded`, the audit record is written
/// anyway, and the process ends without waiting for the abandoned thread.
pub fn run_hook(
    mode: Mode,
    config: Option<&Path>,
    input: Result<Vec<RefUpdate>, StdinError>,
    err: &mut dyn Write,
) -> u8 {
    let start = std::time::Instant::now();
    let prefix = message_prefix();
    let git_dir = std::env::var_os("GIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let git_dir = std::path::absolute(&git_dir).unwrap_or(git_dir);

    let updates = match input {
        Ok(u) => u,
        Err(e) => {
            let _ = writeln!(
                err,
                "{prefix}agentgate: refused [{}] {e}",
                Code::StdinMalformed
            );
            let _ = writeln!(
                err,
                "{prefix}  the hook expects \"<old-id> <new-id> <ref>\" lines from git; nothing was updated"
            );
            return EXIT_REFUSE;
        }
    };

    let now = chrono::Utc::now();
    let pusher = audit::pusher();
    let shared: Shared = Default::default();
    let Some(rx) = spawn_decisions(config, &updates, &git_dir, now, &shared) else {
        let _ = writeln!(
            err,
            "{prefix}agentgate: refused [{}] cannot start the decision thread",
            Code::InternalError
        );
        return EXIT_REFUSE;
    };
    let (decisions, exit) = wait_for_decisions(&rx, &updates, &shared, start);
    let audited = Audited {
        mode,
        git_dir: &git_dir,
        pusher: &pusher,
        time: now,
    };
    let mut warnings = Vec::new();
    if let Err(e) = audited.append(&decisions, &shared, &mut warnings) {
        let _ = write!(err, "{}", decision::render(&decisions, prefix));
        let _ = writeln!(
            err,
            "{prefix}agentgate: refused [{}] {}; no decision is made without an audit record",
            Code::AuditFailed,
            error_chain(&e)
        );
        return if exit == EXIT_CONFIG {
            EXIT_CONFIG
        } else {
            EXIT_REFUSE
        };
    }
    let _ = write!(err, "{}", decision::render(&decisions, prefix));
    for w in warnings {
        let _ = writeln!(err, "{prefix}agentgate: warning: {w}");
    }
    exit
}

type Decided = (Vec<RefDecision>, u8);

/// Start [`decide_all`] on its own thread; None if no thread can be started.
fn spawn_decisions(
    config: Option<&Path>,
    updates: &[RefUpdate],
    git_dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
    shared: &Shared,
) -> Option<std::sync::mpsc::Receiver<Decided>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (shared, updates, git_dir) = (shared.clone(), updates.to_vec(), git_dir.to_path_buf());
    let config = config.map(Path::to_path_buf);
    std::thread::Builder::new()
        .name("decide".into())
        .spawn(move || {
            set_step(&shared, "opening the repository");
            let repo = Repo::open_from_env();
            let result = decide_all(
                config.as_deref(),
                &updates,
                &git_dir,
                now,
                &shared,
                repo.as_ref(),
            );
            let _ = tx.send(result);
            // Freed only once the decisions are sent (libgit2 unmaps its packs, frees its
            // caches): the audit record is written meanwhile, and the process may end first.
            drop(repo);
        })
        .ok()?;
    Some(rx)
}

/// The decisions, or every update refused when the deadline passes first (`deadline-exceeded`,
/// naming the step that ran out) or the decision thread dies (`internal-error`).
fn wait_for_decisions(
    rx: &std::sync::mpsc::Receiver<Decided>,
    updates: &[RefUpdate],
    shared: &Shared,
    start: std::time::Instant,
) -> Decided {
    loop {
        let limit = shared
            .lock()
            .ok()
            .and_then(|p| p.timeout)
            .unwrap_or(config::DEFAULT_HOOK_TIMEOUT);
        let wait = (start + limit).saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(wait) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                // The policy may have been loaded (with a longer timeout) meanwhile.
                let now_limit = shared.lock().ok().and_then(|p| p.timeout);
                if now_limit.is_some_and(|l| l > limit) {
                    continue;
                }
                let step = shared.lock().map(|p| p.step.clone()).unwrap_or_default();
                let headline = format!(
                    "the hook ran out of time ({} ms, [hook] timeout) while {step}",
                    limit.as_millis()
                );
                return (
                    refuse_all(
                        updates,
                        Code::DeadlineExceeded,
                        headline,
                        vec![],
                        "a push this large or a policy rule this slow needs a longer [hook] timeout, or a simpler rule: ask the Git server admin",
                    ),
                    EXIT_REFUSE,
                );
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // The decision thread panicked: only ever a refusal.
                return (
                    refuse_all(
                        updates,
                        Code::InternalError,
                        "internal error (see the message above); please report it".into(),
                        vec![],
                        ADMIN,
                    ),
                    EXIT_REFUSE,
                );
            }
        }
    }
}

/// What every audit record of this push shares.
struct Audited<'a> {
    mode: Mode,
    git_dir: &'a Path,
    pusher: &'a audit::Pusher,
    time: chrono::DateTime<chrono::Utc>,
}

impl Audited<'_> {
    /// One record per decision, in the log the policy names (or the repository's default),
    /// with the policy and notes commit the decision thread got to; the policy archived and a
    /// checkpoint signed when the policy names a server key; each record and the checkpoint
    /// sent to syslog when the policy asks (after the file: what went wrong there is a
    /// warning for the pusher, and is in the record when syslog was down from the start).
    fn append(
        &self,
        decisions: &[RefDecision],
        shared: &Shared,
        warnings: &mut Vec<String>,
    ) -> Result<(), audit::AuditError> {
        let progress = shared.lock().ok();
        let info = progress.as_ref().and_then(|p| p.policy.clone());
        let notes = progress.as_ref().and_then(|p| p.notes.clone());
        drop(progress);
        let log = info
            .as_ref()
            .map(|i| i.audit_log.clone())
            .unwrap_or_else(|| default_audit_path(self.git_dir));
        let syslog = info
            .as_ref()
            .and_then(|i| i.policy.syslog_socket.as_deref())
            .map(Syslog::connect);
        let syslog_error = match &syslog {
            Some(Err(e)) => Some(format!("unreachable: {}", error_chain(e))),
            _ => None,
        };
        let cx = audit::Context {
            syslog_error: syslog_error.as_deref(),
            repo: self.git_dir,
            mode: self.mode.as_str(),
            pusher: self.pusher,
            policy_path: info.as_ref().map(|i| i.path.as_path()),
            policy_digest: info.as_ref().map(|i| i.digest.as_str()),
            notes: info.as_ref().map(|i| audit::NotesInput {
                refname: &i.notes_ref,
                commit: notes.as_ref().map(ObjectId::as_str),
            }),
            time: self.time,
        };
        let mut records = audit::records(decisions, &cx);
        let opts = audit::AppendOptions {
            policy: info.as_ref().map(|i| i.policy.as_ref()),
            checkpoint_key: info.as_ref().and_then(|i| i.server_key.as_deref()),
        };
        let written = audit::append_with(&log, &mut records, &opts)?;
        if let Some(e) = written.checkpoint_error {
            warnings.push(format!("no checkpoint was signed for this push: {e}"));
        }
        match syslog {
            None => {}
            Some(Err(_)) => warnings.push(format!(
                "the audit record was not sent to syslog ({}); it is in {}",
                syslog_error.as_deref().unwrap_or_default(),
                log.display()
            )),
            Some(Ok(s)) => {
                let mut sent = Ok(());
                for (line, d) in written.lines.iter().zip(decisions) {
                    let severity = if d.accepted() {
                        Severity::Informational
                    } else {
                        Severity::Notice
                    };
                    sent = sent.and_then(|()| s.send(MessageKind::Record, severity, line));
                }
                if let Some(c) = &written.checkpoint {
                    sent = sent
                        .and_then(|()| s.send(MessageKind::Checkpoint, Severity::Informational, c));
                }
                if let Err(e) = sent {
                    warnings.push(format!(
                        "the audit record did not reach syslog ({}); it is in {}",
                        error_chain(&e),
                        log.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The policy file a load error is about, when it names one.
fn policy_file(e: &PolicyError) -> Option<&Path> {
    match e {
        PolicyError::NotFound { .. } => None,
        PolicyError::MissingFile { path }
        | PolicyError::Unreadable { path, .. }
        | PolicyError::Invalid { path, .. } => Some(path),
    }
}

/// The server's signing key (`[server] key`), if the policy names one.
pub fn server_key(
    policy: &config::Policy,
) -> Result<Option<std::sync::Arc<SigningKey>>, config::PolicyError> {
    let Some(path) = &policy.server.key else {
        return Ok(None);
    };
    let unreadable = |e: String| config::PolicyError::Unreadable {
        path: path.clone(),
        source: std::io::Error::other(format!("the server key ([server] key): {e}")),
    };
    let pem = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
    SigningKey::from_pem(&pem, None)
        .map(|k| Some(std::sync::Arc::new(k)))
        .map_err(|e| unreadable(e.to_string()))
}

/// The repository directory when `e` is about its git config (agentgate.config could not be
/// read from it), not about a policy file.
fn repo_config_of<'a>(e: &'a PolicyError, git_dir: &Path) -> Option<&'a Path> {
    match e {
        PolicyError::Unreadable { path, .. }
            if path.file_name() == Some(std::ffi::OsStr::new("config"))
                && path.parent().is_some_and(|d| {
                    d == git_dir || std::path::absolute(git_dir).is_ok_and(|g| d == g)
                }) =>
        {
            path.parent()
        }
        _ => None,
    }
}

/// The fix for a refusal that only the server's admin can act on.
const ADMIN: &str =
    "ask the Git server admin to check the repository and the agentgate installation";

/// Everything the hook decides, on the decision thread, in the repository it opened: load the
/// policy, find the attestations, decide each update. Reports its progress to `shared`.
fn decide_all(
    config: Option<&Path>,
    updates: &[RefUpdate],
    git_dir: &Path,
    now: chrono::DateTime<chrono::Utc>,
    shared: &Shared,
    repo: Result<&Repo, &agentgate_git::OpenError>,
) -> (Vec<RefDecision>, u8) {
    set_step(shared, "loading the policy");
    let policy = load_for(config, Some(repo), Some(git_dir));
    // The server key belongs to the policy: one that cannot be read refuses like an
    // unreadable public key (nothing could be checkpointed or promoted).
    let policy = policy.and_then(|p| {
        let key = server_key(&p)?;
        Ok((p, key))
    });
    if let Ok((p, key)) = &policy {
        if let Ok(mut s) = shared.lock() {
            s.timeout = Some(p.hook_timeout);
            s.policy = Some(PolicyInfo {
                path: p.source.clone(),
                digest: p.digest.clone(),
                audit_log: audit::audit_path(Some(p), git_dir),
                notes_ref: p.attest.notes_ref.clone(),
                policy: std::sync::Arc::new(p.clone()),
                server_key: key.clone(),
            });
        }
    }
    let policy = policy.map(|(p, _)| p);
    match (repo, &policy) {
        (_, Err(e)) => {
            let fix = match repo_config_of(e, git_dir) {
                // The repository's git config, not a policy: `policy check` cannot read it,
                // git says where it is broken.
                Some(dir) => format!(
                    "this is a server configuration error: the Git server admin must fix the repository's git config (git shows where: `git --git-dir {} config --list`)",
                    crate::owner::shell_word(&dir.display().to_string())
                ),
                None => format!(
                    "this is a server configuration error: the Git server admin must fix the policy (check it with `{}`)",
                    crate::cli::policy::check_command(
                        policy_file(e).unwrap_or(Path::new(SYSTEM_POLICY))
                    )
                ),
            };
            let d = refuse_all(
                updates,
                e.code(),
                "agentgate's policy cannot be loaded, so every push is refused".into(),
                vec![error_chain(e)],
                &fix,
            );
            (d, EXIT_CONFIG)
        }
        (Err(e), Ok(_)) => {
            let headline = format!("cannot open the repository: {}", error_chain(e));
            (
                refuse_all(updates, Code::GitError, headline, vec![], ADMIN),
                EXIT_REFUSE,
            )
        }
        (Ok(repo), Ok(policy)) => {
            // Lets the tests prove that a panic refuses the push; it can only ever refuse.
            if std::env::var_os("AGENTGATE_DANGER_TEST_PANIC").is_some() {
                panic!("AGENTGATE_DANGER_TEST_PANIC is set");
            }
            set_step(shared, "reading the attestations");
            let source = notes_commit(repo, policy, updates)
                .map_err(AttestationsError::from)
                .and_then(|n| {
                    if let Ok(mut s) = shared.lock() {
                        s.notes = n.clone();
                    }
                    attestation_source(repo, policy, n, now)
                });
            match source {
                Err(e) => {
                    let headline = format!("cannot read attestations: {}", error_chain(&e));
                    (
                        refuse_all(
                            updates,
                            Code::AttestationsUnreadable,
                            headline,
                            vec![],
                            ADMIN,
                        ),
                        EXIT_REFUSE,
                    )
                }
                Ok(source) => {
                    let step = |s: String| set_step(shared, s);
                    let eval = Evaluator::new(repo, policy, source.as_ref())
                        .with_progress(&step)
                        .with_push(updates);
                    let d: Vec<RefDecision> = updates.iter().map(|u| eval.decide(u)).collect();
                    let exit = if d.iter().all(RefDecision::accepted) {
                        EXIT_ACCEPT
                    } else {
                        EXIT_REFUSE
                    };
                    (d, exit)
                }
            }
        }
    }
}

/// Run as the `post-receive` hook: after the refs moved, write a signed promotion record for
/// every accepted move of a protected ref, built from the audit record pre-receive wrote for
/// it (the decision is never made again). Nothing can be refused any more: what fails is said
/// to the pusher and the exit code is 1 (git ignores it).
pub fn run_post_receive(
    config: Option<&Path>,
    input: Result<Vec<RefUpdate>, StdinError>,
    err: &mut dyn Write,
) -> u8 {
    let prefix = message_prefix();
    let updates = match input {
        Ok(u) => u,
        Err(e) => {
            let _ = writeln!(
                err,
                "{prefix}agentgate: no promotion record written: the ref updates cannot be read: {e}"
            );
            return EXIT_REFUSE;
        }
    };
    let moved: Vec<RefUpdate> = updates
        .into_iter()
        .filter(|u| !u.new.is_zero() && u.old != u.new)
        .collect();
    if moved.is_empty() {
        return EXIT_ACCEPT;
    }
    let (lines, failed) = match write_promotions(config, &moved) {
        Ok(r) => r,
        Err(e) => (
            vec![format!(
                "no promotion record written: {}",
                error_chain(e.as_ref())
            )],
            true,
        ),
    };
    for l in lines {
        let _ = writeln!(err, "{prefix}agentgate: {l}");
    }
    if failed {
        EXIT_REFUSE
    } else {
        EXIT_ACCEPT
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The promotion records of `moved`: what to tell the pusher, and whether any failed.
fn write_promotions(
    config: Option<&Path>,
    moved: &[RefUpdate],
) -> Result<(Vec<String>, bool), BoxError> {
    use agentgate_policy::promotion::{self, Identity};
    let git_dir = std::env::var_os("GIT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let git_dir = std::path::absolute(&git_dir)?;
    let repo = Repo::open_from_env();
    let policy = load_for(config, Some(repo.as_ref()), Some(&git_dir))?;
    let repo = repo?;
    let Some(key) = server_key(&policy)? else {
        return Ok((vec![], false));
    };
    let log = audit::audit_path(Some(&policy), &git_dir);
    let records = promotion::find_records(&log, &git_dir, moved)?;
    let identity = Identity::of(
        &policy,
        &git_dir,
        &agentgate_policy::audit_syslog::host_name(),
    );
    let notes_ref = &policy.server.promotions_ref;
    // One writer at a time: appending to a note reads, then rewrites the notes ref.
    let lock_path = git_dir.join("agentgate").join("promotions.lock");
    if let Some(dir) = lock_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    lock.lock()?;
    let mut lines = Vec::new();
    let mut failed = false;
    for (u, rec) in moved.iter().zip(records) {
        let Some(rec) = rec else {
            failed = true;
            lines.push(format!(
                "no promotion record for {} {}..{}: pre-receive logged no decision for it in {}",
                u.refname,
                u.old.short(),
                u.new.short(),
                log.display()
            ));
            continue;
        };
        if !promotion::promotable(&rec) {
            continue;
        }
        let one = || -> Result<String, BoxError> {
            let commit = repo.peel_to_commit(&u.new)?;
            let digest = rec
                .pointer("/policy/digest")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let archived = std::fs::read(audit::archived_policy_path(&log, digest))?;
            let decided_under = config::Policy::from_manifest(&archived, digest)?;
            let st = promotion::statement(&rec, &commit, &decided_under, &identity)?;
            promotion::write(&repo, notes_ref, &commit, &st, &key)?;
            Ok(format!(
                "promotion record for {} at {} signed into {notes_ref}",
                u.refname,
                commit.short()
            ))
        };
        match one() {
            Ok(l) => lines.push(l),
            Err(e) => {
                failed = true;
                lines.push(format!(
                    "no promotion record for {} at {}: {}",
                    u.refname,
                    u.new.short(),
                    error_chain(e.as_ref())
                ));
            }
        }
    }
    let _ = lock.unlock();
    Ok((lines, failed))
}
