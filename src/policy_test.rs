//! `agentgate policy test`: decide scripted pushes under a policy, so an admin can see what a
//! policy change does before deploying it. Each case is a small TOML file: the commits (oldest
//! first; those marked `before` are on the ref already), the ref pushed, and the decision,
//! code and detection rules expected. The history is written into a scratch bare repository
//! with `git fast-import` and decided by the hook's own evaluator, with no attestations: a case
//! shows what the policy makes of a push before any gate ran.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use agentgate_git::{git_command, ObjectId, Repo};
use agentgate_policy::attestations::{
    AttestationSource, AttestationVerdict, AttestationsError, CommitRef,
};
use agentgate_policy::config::Policy;
use agentgate_policy::decision::{valid_refname, Evaluator, Outcome, RefDecision, RefUpdate};
use agentgate_policy::Code;
use anyhow::{bail, Context as _};
use serde::Deserialize;

/// Every commit's date: cases decide the same way whenever they run.
const DATE: &str = "1767268800 +0000";
const DEFAULT_IDENTITY: &str = "Ada Lovelace <ada@example.com>";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// For people: what the case is about.
    #[allow(dead_code)]
    description: Option<String>,
    /// The ref the push updates.
    #[serde(rename = "ref", default = "default_ref")]
    refname: String,
    #[serde(rename = "commit", default)]
    commits: Vec<CaseCommit>,
    expect: Expect,
}

fn default_ref() -> String {
    "refs/heads/main".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseCommit {
    message: String,
    /// `Name <email>`.
    author: Option<String>,
    /// `Name <email>`; default: the author.
    committer: Option<String>,
    /// Already on the ref before the push.
    #[serde(default)]
    before: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: Verdict,
    code: Option<String>,
    /// How many of the pushed commits are agent commits.
    agent_commits: Option<usize>,
    /// Exactly the detection rule ids that matched the pushed commits.
    rules: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Accept,
    Refuse,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Refuse => "refuse",
        }
    }
}

/// What one case came to.
pub enum CaseOutcome {
    /// As expected; the decision, summarised.
    Passed(String),
    /// Decided otherwise: the decision, and each expectation it missed.
    Failed { got: String, problems: Vec<String> },
    /// The case could not be run (a malformed file, git failed).
    Broken(String),
}

impl CaseOutcome {
    /// The lines `policy test` prints for the case named `name`.
    pub fn lines(&self, name: &str) -> Vec<String> {
        match self {
            CaseOutcome::Passed(got) => vec![format!("ok     {name}: {got}")],
            CaseOutcome::Failed { got, problems } => {
                let mut v = vec![format!("FAIL   {name}: {got}")];
                v.extend(problems.iter().map(|p| format!("         {p}")));
                v
            }
            CaseOutcome::Broken(why) => vec![format!("ERROR  {name}: {why}")],
        }
    }

    pub fn json(&self, name: &str) -> serde_json::Value {
        match self {
            CaseOutcome::Passed(got) => {
                serde_json::json!({"case": name, "result": "passed", "decision": got})
            }
            CaseOutcome::Failed { got, problems } => serde_json::json!({
                "case": name, "result": "failed", "decision": got, "problems": problems,
            }),
            CaseOutcome::Broken(why) => {
                serde_json::json!({"case": name, "result": "error", "error": why})
            }
        }
    }
}

/// The case files: `path` itself, or the `*.toml` files in it, sorted.
pub fn case_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let p = e
            .with_context(|| format!("reading {}", path.display()))?
            .path();
        if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Run one case file under `policy`.
pub fn run_case(policy: &Policy, file: &Path) -> CaseOutcome {
    let case = match read_case(file) {
        Ok(c) => c,
        Err(e) => return CaseOutcome::Broken(format!("{e:#}")),
    };
    let decision = match decide(policy, &case) {
        Ok(d) => d,
        Err(e) => return CaseOutcome::Broken(format!("{e:#}")),
    };
    judge(&case.expect, &decision)
}

fn read_case(file: &Path) -> anyhow::Result<Case> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let case: Case = toml::from_str(&text).with_context(|| format!("in {}", file.display()))?;
    if !valid_refname(&case.refname) {
        bail!("ref {:?} is not a full ref name", case.refname);
    }
    if case.commits.iter().all(|c| c.before) {
        bail!("no pushed commit: give at least one [[commit]] without `before = true`");
    }
    if let Some(i) = case.commits.iter().position(|c| !c.before) {
        if case.commits.iter().skip(i).any(|c| c.before) {
            bail!("`before = true` commits must come first (they are on the ref before the push)");
        }
    }
    if let Some(code) = &case.expect.code {
        if Code::parse(code).is_none() {
            bail!("unknown code {code:?} in [expect] (the README lists the codes)");
        }
    }
    for c in &case.commits {
        for who in [&c.author, &c.committer].into_iter().flatten() {
            parse_identity(who)?;
        }
    }
    Ok(case)
}

/// `Name <email>` as fast-import wants it.
fn parse_identity(s: &str) -> anyhow::Result<String> {
    let (name, rest) = s
        .split_once('<')
        .with_context(|| format!("identity {s:?} is not `Name <email>`"))?;
    let email = rest
        .strip_suffix('>')
        .with_context(|| format!("identity {s:?} is not `Name <email>`"))?;
    if email.contains(['<', '>', '\n']) || name.contains(['<', '>', '\n']) {
        bail!("identity {s:?} is not `Name <email>`");
    }
    Ok(format!("{} <{email}>", name.trim()))
}

/// A git command on the scratch repository, away from the caller's git configuration.
fn git(dir: &Path) -> std::process::Command {
    let mut c = git_command();
    c.arg("--git-dir")
        .arg(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::null());
    c
}

fn run_git(cmd: &mut std::process::Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running git {what}"))?;
    if !out.status.success() {
        bail!(
            "git {what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Write the case's history into a scratch repository and decide the push.
fn decide(policy: &Policy, case: &Case) -> anyhow::Result<RefDecision> {
    let tmp = tempfile::tempdir().context("creating a scratch directory")?;
    let dir = tmp.path().join("case.git");
    run_git(
        git_command()
            .args(["init", "-q", "--bare"])
            .arg(&dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null"),
        "init",
    )?;
    let mut stream = Vec::new();
    for (i, c) in case.commits.iter().enumerate() {
        let author = parse_identity(c.author.as_deref().unwrap_or(DEFAULT_IDENTITY))?;
        let committer = match &c.committer {
            Some(x) => parse_identity(x)?,
            None => author.clone(),
        };
        let content = format!("change {}\n", i + 1);
        writeln!(stream, "commit refs/agentgate-case/tip\nmark :{}", i + 1)?;
        writeln!(
            stream,
            "author {author} {DATE}\ncommitter {committer} {DATE}"
        )?;
        writeln!(stream, "data {}", c.message.len())?;
        stream.extend_from_slice(c.message.as_bytes());
        writeln!(stream)?;
        if i > 0 {
            writeln!(stream, "from :{i}")?;
        }
        writeln!(stream, "M 100644 inline case.txt\ndata {}", content.len())?;
        stream.extend_from_slice(content.as_bytes());
        writeln!(stream)?;
    }
    writeln!(stream, "done")?;
    let marks = tmp.path().join("marks");
    let mut child = git(&dir)
        .args(["fast-import", "--quiet", "--done"])
        .arg(format!("--export-marks={}", marks.display()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running git fast-import")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(&stream)
            .context("writing to git fast-import")?;
    }
    let out = child
        .wait_with_output()
        .context("running git fast-import")?;
    if !out.status.success() {
        bail!(
            "git fast-import failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let marks = std::fs::read_to_string(&marks).context("reading fast-import's marks")?;
    let ids: Vec<String> = marks
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, id)| id.to_string()))
        .collect();
    if ids.len() != case.commits.len() {
        bail!(
            "git fast-import wrote {} commit(s), not {}",
            ids.len(),
            case.commits.len()
        );
    }
    let before = case.commits.iter().filter(|c| c.before).count();
    let repo = Repo::open(Some(&dir)).context("opening the scratch repository")?;
    let old = match before.checked_sub(1).and_then(|i| ids.get(i)) {
        Some(id) => {
            run_git(
                git(&dir).args(["update-ref", &case.refname, id]),
                "update-ref",
            )?;
            ObjectId::parse(id)?
        }
        None => ObjectId::zero(repo.hash_bytes()),
    };
    let new = ObjectId::parse(ids.last().context("no commit")?)?;
    // The ref is read again after update-ref: open the repository once the history is there.
    let repo = Repo::open(Some(&dir)).context("opening the scratch repository")?;
    let update = RefUpdate {
        old,
        new,
        refname: case.refname.clone(),
    };
    Ok(Evaluator::new(&repo, policy, &NoAttestations).decide(&update))
}

/// Compare a decision with what the case expects.
fn judge(expect: &Expect, d: &RefDecision) -> CaseOutcome {
    let verdict = d.outcome.verdict();
    let code = d.outcome.code();
    let rules: BTreeSet<&str> = d
        .agent_commits
        .iter()
        .flat_map(|c| c.matches.iter().map(|m| m.rule.as_str()))
        .collect();
    let got = format!(
        "{verdict} [{code}], {} agent commit(s){}",
        d.agent_commits.len(),
        if rules.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                rules.iter().copied().collect::<Vec<_>>().join(", ")
            )
        }
    );
    let mut problems = Vec::new();
    if verdict != expect.decision.as_str() {
        problems.push(format!("expected decision {}", expect.decision.as_str()));
    }
    if let Some(want) = &expect.code {
        if want != code.as_str() {
            problems.push(format!("expected code {want}"));
        }
    }
    if let Some(n) = expect.agent_commits {
        if n != d.agent_commits.len() {
            problems.push(format!("expected {n} agent commit(s)"));
        }
    }
    if let Some(want) = &expect.rules {
        let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
        if want != rules {
            problems.push(format!(
                "expected rules [{}]",
                want.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return CaseOutcome::Passed(got);
    }
    if let Outcome::Refuse(r) = &d.outcome {
        problems.push(format!("the refusal said: {}", r.headline));
    }
    CaseOutcome::Failed { got, problems }
}

/// No attestation exists: a case shows the decision before any gate ran.
struct NoAttestations;

impl AttestationSource for NoAttestations {
    fn check(&self, _commit: &CommitRef) -> Result<AttestationVerdict, AttestationsError> {
        Ok(AttestationVerdict {
            admitted: false,
            examined: vec![],
        })
    }

    fn may_have(&self, _commit: &CommitRef) -> Result<bool, AttestationsError> {
        Ok(false)
    }

    fn describe(&self) -> String {
        "no attestations (policy test)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities() {
        assert_eq!(
            parse_identity("Ada Lovelace <ada@example.com>").unwrap(),
            "Ada Lovelace <ada@example.com>"
        );
        assert_eq!(
            parse_identity("copilot-swe-agent[bot] <198982749+Copilot@users.noreply.github.com>")
                .unwrap(),
            "copilot-swe-agent[bot] <198982749+Copilot@users.noreply.github.com>"
        );
        for bad in ["ada@example.com", "Ada <ada", "Ada <a<b>", ""] {
            assert!(parse_identity(bad).is_err(), "{bad}");
        }
    }
}
