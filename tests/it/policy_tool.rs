//! `agentgate policy check` and `agentgate policy test`: the shipped policy loads as shipped and
//! its example cases pass; a broken policy or a case decided otherwise is reported with the
//! documented exit codes; a refusal for a broken policy names a command that works as written.

use crate::common::*;
use std::path::Path;

fn repo_file(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn shipped_policy_loads_and_its_example_cases_pass() {
    let env = Env::new();
    let policy = repo_file("config/policy.toml");
    let out = env.agentgate(env.path(), &["policy", "check", &policy]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("policy check is successful"), "{text}");
    // Safe as shipped: no gate is trusted yet, and it says so.
    assert!(text.contains("warning: no [[signer]]"), "{text}");

    let cases = repo_file("config/policy-tests");
    let out = env.agentgate(env.path(), &["policy", "test", &policy, &cases]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let n = std::fs::read_dir(&cases)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(n >= 5, "example cases: {n}");
    assert!(
        text.contains(&format!("{n} case(s): {n} passed, 0 failed")),
        "{text}"
    );

    let out = env.agentgate(env.path(), &["policy", "test", "--json", &policy, &cases]);
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), n);
    assert!(lines.iter().all(|l| l["result"] == "passed"), "{lines:?}");
}

#[test]
fn policy_check_names_the_line_and_column_and_exits_1() {
    let env = Env::new();
    let file = env.path().join("policy.toml");
    std::fs::write(
        &file,
        "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\nallow_delete = flase\n",
    )
    .unwrap();
    let out = env.agentgate(env.path(), &["policy", "check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains(&format!("{}:4:", file.display())), "{text}");
    assert!(text.contains("policy check of"), "{text}");

    let out = env.agentgate(
        env.path(),
        &["policy", "check", "--json", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["code"], "policy-invalid");

    let out = env.agentgate(
        env.path(),
        &[
            "policy",
            "check",
            env.path().join("none.toml").to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn policy_test_reports_a_case_decided_otherwise_and_a_broken_case() {
    let env = Env::new();
    let policy = env.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let cases = env.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    // Wrong on purpose: an agent commit pushed to main is refused, not accepted.
    std::fs::write(
        cases.join("wrong.toml"),
        format!(
            "[[commit]]\nmessage = \"Base\"\nbefore = true\n\n[[commit]]\nmessage = \"\"\"\nAdd\n\n{CLAUDE_TRAILER}\n\"\"\"\n\n[expect]\ndecision = \"accept\"\nrules = []\n"
        ),
    )
    .unwrap();
    let (p, c) = (policy.to_str().unwrap(), cases.to_str().unwrap());
    let out = env.agentgate(env.path(), &["policy", "test", p, c]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL   wrong.toml: refuse [agent-commit-unattested]"),
        "{text}"
    );
    assert!(text.contains("expected decision accept"), "{text}");
    assert!(text.contains("expected rules []"), "{text}");

    // An unknown key in a case is an error, not a silent pass.
    std::fs::write(
        cases.join("broken.toml"),
        "[[commit]]\nmessage = \"x\"\nauthr = \"A <a@b>\"\n[expect]\ndecision = \"accept\"\n",
    )
    .unwrap();
    let out = env.agentgate(env.path(), &["policy", "test", p, c]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("ERROR  broken.toml:"), "{text}");
    assert!(text.contains("authr"), "{text}");
}

#[test]
fn a_broken_policy_refusal_names_policy_check_which_works_as_written() {
    let env = Env::new();
    let (server, work) = env.server_with_main("srv.git");
    std::fs::write(server.join("agentgate.toml"), "version = 1\n[protect]\n").unwrap();
    env.commit(&work, "a.txt", "Human change");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(err.contains("[policy-invalid]"), "{err}");
    let policy = server.join("agentgate.toml");
    let suggested = format!("agentgate policy check {}", policy.display());
    assert!(err.contains(&suggested), "{err}");
    // The suggestion, run as written, finds the same problem.
    let words: Vec<&str> = suggested.split(' ').skip(1).collect();
    let out = env.agentgate(env.path(), &words);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains(&format!("{}:", policy.display())));
}
