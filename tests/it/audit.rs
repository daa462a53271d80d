//! `agentgate audit verify`: decisions re-derived from the repository, tampering detected.

use crate::common::*;

fn verify(env: &Env, log: &std::path::Path) -> (i32, serde_json::Value) {
    let out = env.agentgate(
        env.path(),
        &["audit", "verify", "--json", log.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("json: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn audit_log_rederives_and_detects_tampering() {
    let env = Env::new();
    let (server, work) = env.server_with_main("s.git");
    assert!(env.push(&work, &["origin", "main:refs/heads/release/1"]).0);
    env.agent_commit(&work, "a.txt", "Agent");
    assert!(!env.push(&work, &["origin", "main"]).0);
    assert!(env.push(&work, &["origin", "HEAD:refs/heads/topic"]).0);
    let log = server.join("agentgate/audit.jsonl");

    let (code, v) = verify(&env, &log);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["records"], 4);
    assert_eq!(v["rederived"], 4);

    let original = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    // An edited decision: the chain breaks after it, and the decision no longer re-derives.
    let edited = original.replacen(
        "\"decision\":\"refuse\",\"code\":\"agent-commit-unattested\"",
        "\"decision\":\"accept\",\"code\":\"agent-commit-unattested\"",
        1,
    );
    assert_ne!(edited, original);
    std::fs::write(&log, &edited).unwrap();
    let (code, v) = verify(&env, &log);
    assert_eq!(code, 1);
    let c = codes(&v);
    assert!(
        c.contains(&"decision-mismatch".to_string()) && c.contains(&"chain-broken".to_string()),
        "{v}"
    );

    // A deleted line.
    std::fs::write(&log, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3])).unwrap();
    let (code, v) = verify(&env, &log);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["chain-broken"], "{v}");

    // A ref moved behind the hook's back.
    std::fs::write(&log, &original).unwrap();
    let base = env.rev(&server, "refs/heads/main").unwrap();
    let agent = env.rev(&work, "HEAD").unwrap();
    env.git_ok(&server, &["update-ref", "refs/heads/main", &agent, &base]);
    let (code, v) = verify(&env, &log);
    assert_eq!(code, 1);
    assert_eq!(codes(&v), vec!["unlogged-ref-move"], "{v}");
    env.git_ok(&server, &["update-ref", "refs/heads/main", &base, &agent]);

    // The policy changed since: every record is re-derived with the policy it names,
    // archived next to the log.
    std::fs::write(
        server.join("agentgate.toml"),
        format!("{POLICY}\n# edited\n"),
    )
    .unwrap();
    let (code, v) = verify(&env, &log);
    assert_eq!(code, 0, "{v}");
    // Without the archive, only the file at the recorded path is left, and it changed.
    std::fs::remove_dir_all(server.join("agentgate/audit.jsonl.policies")).unwrap();
    let (code, v) = verify(&env, &log);
    assert_eq!(code, 1);
    assert!(codes(&v).iter().all(|c| c == "policy-changed"), "{v}");
}
