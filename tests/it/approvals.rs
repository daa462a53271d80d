//! Approvals, path rules and break-glass through real pushes: an agent change to a guarded
//! path refused, then admitted by an approver's signed approval of exactly that commit; the
//! approvals that must not count (another commit's, an untrusted key's, the author's own, an
//! agent's); a path rule on a merge that hides an older workflow; a break-glass override that
//! admits one exact update, loudly, and is listed by `audit verify`.

use crate::common::*;
use std::path::PathBuf;

struct Setup {
    env: Env,
    server: PathBuf,
    work: PathBuf,
}

const PATH_RULES: &str = r#"
[approvals]
distinct_from_author = true

[[path_rule]]
id = "ci-config"
paths = [".github/workflows/**", "/.gitlab-ci.yml"]
action = "refuse"

[[path_rule]]
id = "agent-instructions"
paths = ["AGENTS.md", "CLAUDE.md"]
action = "require-approval"
approvals = 1
"#;

/// A server trusting the gate key `gate`, approvers alice and ada (Ada is the tests' default
/// author), the break-glass key `bg`, with `rules` appended (`@DIR@` in them is where the
/// keys are, `bob.pub` among them); a clone with a human commit on main that already holds a
/// workflow and AGENTS.md.
fn setup(rules: &str) -> Setup {
    let env = Env::new();
    for k in ["gate", "alice", "ada", "bg", "rogue", "bob"] {
        let out = env.agentgate(
            env.path(),
            &["keygen", "--out", env.path().join(k).to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let key = |k: &str| env.path().join(format!("{k}.pub")).display().to_string();
    let rules = rules.replace("@DIR@", &env.path().display().to_string());
    let policy = format!(
        "{POLICY}{rules}
[[signer]]
name = \"ci-gate\"
public_key = \"{}\"

[[approver]]
name = \"alice\"
public_key = \"{}\"
email = \"alice@example.com\"

[[approver]]
name = \"ada\"
public_key = \"{}\"
email = \"{}\"

[break_glass]
name = \"on-call break-glass\"
public_key = \"{}\"
max_validity = \"4h\"
",
        key("gate"),
        key("alice"),
        key("ada"),
        HUMAN.1,
        key("bg")
    );
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    std::fs::create_dir_all(work.join(".github/workflows")).unwrap();
    std::fs::write(work.join(".github/workflows/ci.yml"), "on: push\n").unwrap();
    std::fs::write(work.join("AGENTS.md"), "Be careful.\n").unwrap();
    env.git_ok(&work, &["add", "-A"]);
    env.commit(&work, "a.txt", "Base");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    std::fs::write(env.path().join("app.bin"), b"the built artifact\n").unwrap();
    Setup { env, server, work }
}

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

impl Setup {
    fn key(&self, name: &str) -> PathBuf {
        self.env.path().join(format!("{name}.key"))
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.env.agentgate(self.env.path(), args);
        assert!(
            out.status.success(),
            "agentgate {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The gate's attestation of `commit`, as a note.
    fn attest(&self, commit: &str) {
        let artifact = self.env.path().join("app.bin");
        self.run(&[
            "sign",
            "--key",
            self.key("gate").to_str().unwrap(),
            "--repo",
            self.work.to_str().unwrap(),
            "--commit",
            commit,
            "--artifact",
            artifact.to_str().unwrap(),
            "--test-result",
            "passed",
            "--note",
        ]);
    }

    /// `approve` with `key`, as the reviewer `who` (name, email).
    fn approve(&self, commit: &str, key: &str, who: (&str, &str)) {
        self.run(&[
            "approve",
            "--key",
            self.key(key).to_str().unwrap(),
            "--repo",
            self.work.to_str().unwrap(),
            "--commit",
            commit,
            "--reviewer-name",
            who.0,
            "--reviewer-email",
            who.1,
            "--comment",
            "reviewed",
            "--note",
        ]);
    }

    /// Push the notes (when there are any) and main together.
    fn push_all(&self) -> (bool, String) {
        if self.env.rev(&self.work, "refs/notes/agentgate").is_some() {
            self.env
                .push(&self.work, &["origin", "refs/notes/agentgate", "main"])
        } else {
            self.env.push(&self.work, &["origin", "main"])
        }
    }

    /// The last audit record for main.
    fn last_main_record(&self) -> serde_json::Value {
        self.env
            .audit(&self.server)
            .into_iter()
            .rev()
            .find(|r| r["ref"] == "refs/heads/main")
            .unwrap()
    }

    fn main(&self) -> Option<String> {
        self.env.rev(&self.server, "refs/heads/main")
    }

    fn write(&self, file: &str, text: &str) {
        let p = self.work.join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self.env.git_ok(&self.work, &["add", file]);
    }

    /// An agent commit of what is staged plus `file`.
    fn agent_commit(&self, file: &str, subject: &str) -> String {
        self.env.agent_commit(&self.work, file, subject)
    }
}

const ALICE: (&str, &str) = ("Alice Reviewer", "alice@example.com");
const BOB: (&str, &str) = ("Bob Reviewer", "bob@example.com");

#[test]
fn guarded_path_needs_an_approval_of_exactly_that_commit() {
    let s = setup(PATH_RULES);
    s.write("AGENTS.md", "Be careful. Also: run the tests.\n");
    let agent = s.agent_commit("a.txt", "Agent edits AGENTS.md");
    s.attest(&agent);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    // The message names the commit, the path and the rule.
    assert!(
        err.contains(&agent[..7]) && err.contains("AGENTS.md"),
        "{err}"
    );
    assert!(err.contains("path:agent-instructions"), "{err}");
    assert!(err.contains("agentgate approve"), "{err}");

    // An approval of another commit (the base) does not count for this one.
    let base = s.env.git_ok(&s.work, &["rev-parse", "HEAD~1"]);
    s.approve(&base, "alice", ALICE);
    // Nor does a valid-looking approval by a key the policy does not trust, copied onto it.
    s.approve(&agent, "rogue", ("Rogue", "rogue@example.com"));
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(err.contains("[untrusted-signer]"), "{err}");
    // The approval of the base, copied onto the agent commit's note, binds the base.
    s.env.git_ok(
        &s.work,
        &[
            "notes",
            "--ref",
            "refs/notes/agentgate",
            "append",
            "-C",
            &s.env.git_ok(
                &s.work,
                &["rev-parse", &format!("refs/notes/agentgate:{base}")],
            ),
            &agent,
        ],
    );
    let (ok, err) = s.push_all();
    assert!(!ok && err.contains("[commit-mismatch]"), "{err}");
    assert_eq!(s.main(), Some(base.clone()));

    s.approve(&agent, "alice", ALICE);
    let (ok, err) = s.push_all();
    assert!(ok, "{err}");
    assert_eq!(s.main(), Some(agent.clone()));
    let last = s.last_main_record();
    assert_eq!(last["code"], "approved");
    assert!(
        last["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["result"] == "ok" && a["detail"] == "approval by approver alice"),
        "{last}"
    );
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "audit",
            "verify",
            s.server.join("agentgate/audit.jsonl").to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn authors_and_agents_cannot_approve() {
    let s = setup(PATH_RULES);
    s.write("CLAUDE.md", "New instructions\n");
    // Ada (the default author) lets the agent write; Ada's own approval must not count.
    let agent = s.agent_commit("a.txt", "Agent adds CLAUDE.md");
    s.attest(&agent);
    s.approve(&agent, "ada", HUMAN);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(err.contains("[approver-is-author]"), "{err}");

    // The agent, holding a trusted approver's key, approves its own commit as itself.
    s.approve(&agent, "alice", ("Claude", "noreply@anthropic.com"));
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(err.contains("[approver-is-agent]"), "{err}");

    // Nor does the committer's: Alice commits the agent's next change (Ada still its author)
    // and approves it.
    s.write("CLAUDE.md", "Newer instructions\n");
    let committed = s.env.commit_as(
        &s.work,
        HUMAN,
        ALICE,
        "a.txt",
        &format!("Agent edits CLAUDE.md again\n\n{CLAUDE_TRAILER}\n"),
    );
    s.attest(&committed);
    s.approve(&committed, "alice", ALICE);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(
        err.contains("[approver-is-author]") && err.contains("committer <alice@example.com>"),
        "{err}"
    );

    // A policy that names an agent identity as an approver does not load at all.
    let text = std::fs::read_to_string(s.server.join("agentgate.toml")).unwrap();
    let bad = text.replace("alice@example.com", "noreply@anthropic.com");
    std::fs::write(s.env.path().join("bad.toml"), bad).unwrap();
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "check",
            "--config",
            s.env.path().join("bad.toml").to_str().unwrap(),
            "--repo",
            s.server.to_str().unwrap(),
            &agent,
            &agent,
            "refs/heads/main",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is an agent identity"), "{err}");
}

#[test]
fn refused_path_is_refused_even_attested_and_approved() {
    let s = setup(PATH_RULES);
    s.write(
        ".github/workflows/ci.yml",
        "on: push\njobs: {exfiltrate: {}}\n",
    );
    let agent = s.agent_commit("a.txt", "Agent tweaks CI");
    s.attest(&agent);
    s.approve(&agent, "alice", ALICE);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "path-refused"), "{err}");
    assert!(
        err.contains(&format!("agent commit {} changes .github/workflows/ci.yml, which path rule path:ci-config refuses", &agent[..7])),
        "{err}"
    );

    // The same change by a person is not the path rule's business.
    s.env.git_ok(&s.work, &["reset", "-q", "--hard", "HEAD~1"]);
    s.write(".github/workflows/ci.yml", "on: push\njobs: {test: {}}\n");
    s.env.commit(&s.work, "a.txt", "Human tweaks CI");
    let (ok, err) = s.push_all();
    assert!(ok, "{err}");
}

/// An agent merge that takes `.github/workflows/ci.yml` back to its version in an old commit
/// of main: against that parent nothing changed, against the first parent the workflow did.
/// Paths are judged against each parent, so the merge is refused.
#[test]
fn path_rule_sees_a_change_hidden_in_a_merge() {
    let s = setup(PATH_RULES);
    let old = s.env.git_ok(&s.work, &["rev-parse", "HEAD"]);
    s.write(
        ".github/workflows/ci.yml",
        "on: push\npermissions: {contents: read}\n",
    );
    s.env.commit(&s.work, "a.txt", "Human hardens CI");
    assert!(s.push_all().0);
    let head = s.env.git_ok(&s.work, &["rev-parse", "HEAD"]);
    // The merge's tree: main's, with the workflow as it was in `old`.
    s.env.git_ok(
        &s.work,
        &["checkout", "-q", &old, "--", ".github/workflows/ci.yml"],
    );
    let tree = s.env.git_ok(&s.work, &["write-tree"]);
    let merge = s.env.git_ok(
        &s.work,
        &[
            "commit-tree",
            &tree,
            "-p",
            &head,
            "-p",
            &old,
            "-m",
            &format!("Merge old work\n\n{CLAUDE_TRAILER}\n"),
        ],
    );
    s.env.git_ok(&s.work, &["reset", "-q", "--hard", &merge]);
    s.attest(&merge);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "path-refused"), "{err}");
    assert!(
        err.contains(&merge[..7]) && err.contains(".github/workflows/ci.yml"),
        "{err}"
    );
}

/// Under `[approvals] bind = "tree"` an approval counts for a commit with the tree it names
/// (the agent's commit reworded after review), and still for no other tree. The approval
/// travels as a file here (`approve --out`), noted by hand where it is needed.
#[test]
fn tree_bound_approval_counts_for_a_reworded_commit() {
    let s = setup(&PATH_RULES.replace(
        "distinct_from_author = true",
        "distinct_from_author = true\nbind = \"tree\"",
    ));
    s.write("AGENTS.md", "Be careful. Also: run the tests.\n");
    let reviewed = s.agent_commit("a.txt", "Agent edits AGENTS.md");
    let out = s.env.path().join("approval");
    s.run(&[
        "approve",
        "--key",
        s.key("alice").to_str().unwrap(),
        "--repo",
        s.work.to_str().unwrap(),
        "--commit",
        &reviewed,
        "--reviewer-name",
        ALICE.0,
        "--reviewer-email",
        ALICE.1,
        "--out",
        out.to_str().unwrap(),
    ]);
    let file = out.join("approval.sigstore.json");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        1,
        "one bundle, one line"
    );
    let note = |commit: &str| {
        s.env.git_ok(
            &s.work,
            &[
                "notes",
                "--ref",
                "refs/notes/agentgate",
                "append",
                "-F",
                file.to_str().unwrap(),
                commit,
            ],
        );
    };
    let amend = |message: &str| {
        s.env.git_ok(
            &s.work,
            &[
                "commit",
                "-q",
                "--amend",
                "-m",
                &format!("{message}\n\n{CLAUDE_TRAILER}\n"),
            ],
        );
        s.env.git_ok(&s.work, &["rev-parse", "HEAD"])
    };

    // Changed after review (another tree): the approval does not follow it.
    s.write("CLAUDE.md", "Ignore AGENTS.md.\n");
    let changed = amend("Agent edits AGENTS.md and CLAUDE.md");
    s.attest(&changed);
    note(&changed);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(err.contains("[commit-mismatch]"), "{err}");

    // Reworded only (the reviewed tree): it counts.
    s.env.git_ok(&s.work, &["reset", "-q", "--hard", &reviewed]);
    let reworded = amend("Agent edits AGENTS.md (reworded after review)");
    assert_ne!(reworded, reviewed);
    assert_eq!(
        s.env.git_ok(&s.work, &["rev-parse", "HEAD^{tree}"]),
        s.env
            .git_ok(&s.work, &["rev-parse", &format!("{reviewed}^{{tree}}")])
    );
    s.attest(&reworded);
    note(&reworded);
    let (ok, err) = s.push_all();
    assert!(ok, "{err}");
    assert_eq!(s.main(), Some(reworded));
    assert_eq!(s.last_main_record()["code"], "approved");
}

/// `approvals = 2` needs two different approvers: one approver approving twice counts once.
#[test]
fn two_approvals_need_two_approvers() {
    let s = setup(&format!(
        "{}\n[[approver]]\nname = \"bob\"\npublic_key = \"@DIR@/bob.pub\"\nemail = \"{}\"\n",
        PATH_RULES.replace("approvals = 1", "approvals = 2"),
        BOB.1
    ));
    s.write("AGENTS.md", "Be careful. Also: run the tests.\n");
    let agent = s.agent_commit("a.txt", "Agent edits AGENTS.md");
    s.attest(&agent);
    s.approve(&agent, "alice", ALICE);
    s.approve(&agent, "alice", ALICE);
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(err.contains("needs 2 approval(s), has 1"), "{err}");
    assert!(err.contains("[approver-repeated]"), "{err}");
    assert_eq!(
        s.main().as_deref(),
        Some(&*s.env.git_ok(&s.work, &["rev-parse", "HEAD~1"]))
    );

    s.approve(&agent, "bob", BOB);
    let (ok, err) = s.push_all();
    assert!(ok, "{err}");
    assert_eq!(s.main(), Some(agent));
    let last = s.last_main_record();
    assert_eq!(last["code"], "approved");
    let mut approvers: Vec<&str> = last["attestations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"] == "ok")
        .filter_map(|a| a["detail"].as_str())
        .filter(|d| d.starts_with("approval by"))
        .collect();
    approvers.sort_unstable();
    assert_eq!(
        approvers,
        ["approval by approver alice", "approval by approver bob"],
        "{last}"
    );
}

fn break_glass(s: &Setup, old: &str, new: &str, expires: &str) {
    s.run(&[
        "break-glass",
        "--key",
        s.key("bg").to_str().unwrap(),
        "--repo",
        s.work.to_str().unwrap(),
        "--ref",
        "refs/heads/main",
        "--old",
        old,
        "--new",
        new,
        "--reason",
        "INC-4711 hotfix",
        "--expires",
        expires,
        "--issuer-name",
        "On Call",
        "--issuer-email",
        "oncall@example.com",
        "--note",
    ]);
}

#[test]
fn break_glass_admits_one_exact_update_loudly() {
    let s = setup(PATH_RULES);
    let base = s.env.git_ok(&s.work, &["rev-parse", "HEAD"]);
    let agent = s.agent_commit("a.txt", "Agent hotfix, no time for the gate");
    let (ok, err) = s.push_all();
    assert!(
        !ok && refused_with(&err, "agent-commit-unattested"),
        "{err}"
    );

    // An override of another update (as if main were elsewhere) does not apply; neither does
    // one signed by a key that is not the break-glass key, nor an expired one.
    break_glass(&s, &agent, &agent, "1h");
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "break-glass",
            "--key",
            s.key("alice").to_str().unwrap(),
            "--repo",
            s.work.to_str().unwrap(),
            "--ref",
            "refs/heads/main",
            "--old",
            &base,
            "--new",
            &agent,
            "--reason",
            "not mine to give",
            "--issuer-name",
            "A",
            "--issuer-email",
            "a@example.com",
            "--note",
        ],
    );
    assert!(out.status.success());
    let (ok, err) = s.push_all();
    assert!(
        !ok && refused_with(&err, "agent-commit-unattested"),
        "{err}"
    );
    assert!(err.contains("[override-mismatch]"), "{err}");
    assert!(err.contains("[untrusted-signer]"), "{err}");
    break_glass(&s, &base, &agent, "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (ok, err) = s.push_all();
    assert!(!ok && err.contains("[override-expired]"), "{err}");
    // Longer than the policy's max_validity (4h).
    break_glass(&s, &base, &agent, "5h");
    let (ok, err) = s.push_all();
    assert!(!ok && err.contains("[override-too-long]"), "{err}");

    break_glass(&s, &base, &agent, "1h");
    let (ok, err) = s.push_all();
    assert!(ok, "{err}");
    assert_eq!(s.main(), Some(agent.clone()));
    assert!(
        err.contains("agentgate: BREAK-GLASS [break-glass] refs/heads/main"),
        "{err}"
    );
    assert!(
        err.contains("[agent-commit-unattested]") && err.contains("INC-4711 hotfix"),
        "{err}"
    );

    let last = s.last_main_record();
    assert_eq!(last["decision"], "accept");
    assert_eq!(last["code"], "break-glass");
    assert_eq!(last["break_glass"]["signer"], "on-call break-glass");
    assert_eq!(last["break_glass"]["overridden"], "agent-commit-unattested");
    assert_eq!(last["break_glass"]["reason"], "INC-4711 hotfix");
    assert_eq!(last["break_glass"]["issuer"]["email"], "oncall@example.com");

    // audit verify re-derives the override (same time, same notes) and reports the use.
    let log_path = s.server.join("agentgate/audit.jsonl");
    let out = s.env.agentgate(
        s.env.path(),
        &["audit", "verify", log_path.to_str().unwrap()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let uses: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("[break-glass]"))
        .collect();
    assert_eq!(uses.len(), 1, "{text}");
    assert!(
        uses[0].contains("refs/heads/main") && uses[0].contains("INC-4711 hotfix"),
        "{text}"
    );
    assert!(text.contains("1 break-glass use(s)"), "{text}");
    let out = s.env.agentgate(
        s.env.path(),
        &["audit", "verify", "--json", log_path.to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["break_glass"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    assert_eq!(
        report["break_glass"][0]["detail"]["overridden"],
        "agent-commit-unattested"
    );

    // The same override cannot admit anything else: the next agent commit is refused again.
    let next = s.agent_commit("a.txt", "Agent again");
    let (ok, err) = s.push_all();
    assert!(
        !ok && refused_with(&err, "agent-commit-unattested"),
        "{err}"
    );
    assert_eq!(s.main(), Some(agent));
    let _ = next;
}

/// A keyless approver (`[[approver]]` with issuer + identity, like a keyless `[[signer]]`):
/// `approve --keyless` against the local Fulcio/Rekor/TSA stand-ins; the approval counts only
/// while the policy names that identity.
#[cfg(feature = "keyless-sign")]
#[test]
fn keyless_approver_counts_only_for_its_identity() {
    use crate::common::mock::{interop_enabled, Mock};
    if !interop_enabled("keyless_approver_counts_only_for_its_identity") {
        return;
    }
    let s = setup(PATH_RULES);
    let mock = Mock::start(s.env.path(), 300);
    let m = &mock.info;
    let policy_file = s.server.join("agentgate.toml");
    let base_policy = std::fs::read_to_string(&policy_file).unwrap();
    let set_identity = |identity: &str| {
        std::fs::write(
            &policy_file,
            format!(
                "{base_policy}\n[[approver]]\nname = \"reviewer-keyless\"\nissuer = \"{}\"\nidentity = \"{identity}\"\ntrusted_root = \"{}\"\nemail = \"reviewer@example.com\"\n",
                m.issuer,
                m.trusted_root.display()
            ),
        )
        .unwrap();
    };
    set_identity(
        "https://github.com/someone-else/app/.github/workflows/review.yml@refs/heads/main",
    );

    s.write("AGENTS.md", "Be careful. Also: run the tests.\n");
    let agent = s.agent_commit("a.txt", "Agent edits AGENTS.md");
    s.attest(&agent);
    let mut c = s.env.cmd(AGENTGATE);
    for var in [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "SIGSTORE_ID_TOKEN",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "AGENTGATE_FULCIO_URL",
        "AGENTGATE_REKOR_URL",
        "AGENTGATE_TSA_URL",
        "AGENTGATE_TRUSTED_ROOT",
    ] {
        c.env_remove(var);
    }
    let tsa = format!("{}/api/v1/timestamp", m.url);
    let out = c
        .env("AGENTGATE_IDENTITY_TOKEN", mock.token.trim())
        .current_dir(s.env.path())
        .args([
            "approve",
            "--keyless",
            "--fulcio-url",
            &m.url,
            "--rekor-url",
            &m.url,
        ])
        .args(["--tsa-url", &tsa, "--trusted-root"])
        .arg(&m.trusted_root)
        .arg("--repo")
        .arg(&s.work)
        .args(["--commit", &agent, "--reviewer-name", "Rita Reviewer"])
        .args(["--reviewer-email", "reviewer@example.com", "--note"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\nmock log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        mock.log()
    );

    // Signed by an identity the policy does not name: not an approval.
    let (ok, err) = s.push_all();
    assert!(!ok && refused_with(&err, "approval-missing"), "{err}");
    assert!(err.contains("[sigstore-identity-mismatch]"), "{err}");

    set_identity(&m.subject);
    let (ok, err) = s.push_all();
    assert!(ok, "{err}");
    assert_eq!(s.main(), Some(agent));
    let last = s.last_main_record();
    assert_eq!(last["code"], "approved");
    assert!(
        last["attestations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["result"] == "ok" && a["detail"] == "approval by approver reviewer-keyless"),
        "{last}"
    );
}

/// A rewind of a protected ref (`non-fast-forward`) is what an emergency revert may need:
/// break-glass lifts it for exactly that update, and the audit record names what it overrode.
#[test]
fn break_glass_admits_a_rewind() {
    let s = setup(PATH_RULES);
    let base = s.env.git_ok(&s.work, &["rev-parse", "HEAD"]);
    s.env
        .commit(&s.work, "a.txt", "Human change, to be rolled back");
    assert!(s.push_all().0);
    let bad = s.main().unwrap();
    s.env.git_ok(&s.work, &["reset", "-q", "--hard", &base]);
    let (ok, err) = s.env.push(&s.work, &["--force", "origin", "main"]);
    assert!(!ok && refused_with(&err, "non-fast-forward"), "{err}");

    break_glass(&s, &bad, &base, "30m");
    let (ok, err) = s.env.push(
        &s.work,
        &["--force", "origin", "refs/notes/agentgate", "main"],
    );
    assert!(ok, "{err}");
    assert!(
        err.contains("agentgate: BREAK-GLASS [break-glass]"),
        "{err}"
    );
    assert_eq!(s.main(), Some(base));
    let last = s.last_main_record();
    assert_eq!(last["code"], "break-glass");
    assert_eq!(last["break_glass"]["overridden"], "non-fast-forward");
}
