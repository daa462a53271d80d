//! `agentgate install`, `uninstall` and `doctor` on real bare repositories: a hook that was
//! there before agentgate keeps running (and refusing) in front of it, uninstall puts it back
//! exactly, and doctor tells a healthy installation from a broken one.

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A bare repository with a policy and no hook yet.
fn bare(env: &Env, name: &str) -> PathBuf {
    let server = env.path().join(name);
    env.git_ok(
        env.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            server.to_str().unwrap(),
        ],
    );
    std::fs::write(server.join("agentgate.toml"), POLICY).unwrap();
    server
}

fn write_exec(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn run_ok(env: &Env, args: &[&str]) -> String {
    let out = env.agentgate(env.path(), args);
    assert!(
        out.status.success(),
        "agentgate {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A foreign pre-receive hook: records its stdin and arguments, refuses `refs/heads/blocked`.
const FOREIGN_PRE_RECEIVE: &str = r#"#!/bin/sh
# the site's own hook, written before agentgate
input=$(cat)
printf '%s\n' "$input" >> "$GIT_DIR/foreign-seen"
case "$input" in
  *refs/heads/blocked*) echo "foreign hook: refs/heads/blocked is closed" >&2; exit 3 ;;
esac
exit 0
"#;

#[test]
fn install_chains_a_foreign_pre_receive_that_still_runs_and_refuses() {
    let env = Env::new();
    let server = bare(&env, "s.git");
    let hook = server.join("hooks/pre-receive");
    write_exec(&hook, FOREIGN_PRE_RECEIVE, 0o750);
    let s = server.to_str().unwrap();
    let out = run_ok(&env, &["install", "--repo", s]);
    assert!(out.contains("pre-receive.agentgate-chained"), "{out}");
    let chained = server.join("hooks/pre-receive.agentgate-chained");
    assert_eq!(
        std::fs::read_to_string(&chained).unwrap(),
        FOREIGN_PRE_RECEIVE
    );
    // Reinstalling keeps the chain.
    run_ok(&env, &["install", "--repo", s]);
    assert_eq!(
        std::fs::read_to_string(&chained).unwrap(),
        FOREIGN_PRE_RECEIVE
    );

    let work = env.clone(&server, "w");
    let base = env.commit(&work, "a.txt", "Human base");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    let seen = std::fs::read_to_string(server.join("foreign-seen")).unwrap();
    assert!(
        seen.contains(&format!("{base} refs/heads/main")),
        "the foreign hook got the same stdin: {seen}"
    );
    assert_eq!(env.audit(&server).len(), 1, "then agentgate decided");

    // The foreign hook refuses: the push is refused, agentgate does not even run.
    let (ok, err) = env.push(&work, &["origin", "HEAD:refs/heads/blocked"]);
    assert!(!ok);
    assert!(
        err.contains("foreign hook: refs/heads/blocked is closed"),
        "{err}"
    );
    assert_eq!(env.audit(&server).len(), 1);
    assert!(env.rev(&server, "refs/heads/blocked").is_none());

    // The foreign hook accepts, agentgate refuses.
    env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok);
    assert!(
        err.contains("agentgate: refused [agent-commit-unattested]"),
        "{err}"
    );
    assert_eq!(env.audit(&server).len(), 2);
    assert_eq!(
        std::fs::read_to_string(server.join("foreign-seen"))
            .unwrap()
            .lines()
            .count(),
        3
    );

    // Uninstall puts the old hook back exactly (content and mode).
    let out = run_ok(&env, &["uninstall", "--repo", s]);
    assert!(out.contains("restored"), "{out}");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), FOREIGN_PRE_RECEIVE);
    assert_eq!(mode(&hook), 0o750);
    assert!(!chained.exists());
    // And agentgate is out of the way: the agent commit goes in.
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    assert_eq!(env.audit(&server).len(), 2);
}

#[test]
fn install_chains_a_foreign_update_hook_and_a_symlinked_one() {
    let env = Env::new();
    let server = bare(&env, "s.git");
    let s = server.to_str().unwrap();
    // A symlinked update hook, as gitolite installs it.
    let real = env.path().join("common-update");
    write_exec(
        &real,
        "#!/bin/sh\n[ \"$1\" = refs/heads/blocked ] && { echo \"foreign update: no $1\" >&2; exit 1; }\nexit 0\n",
        0o755,
    );
    let hook = server.join("hooks/update");
    std::os::unix::fs::symlink(&real, &hook).unwrap();
    run_ok(&env, &["install", "--repo", s, "--hook", "update"]);
    let chained = server.join("hooks/update.agentgate-chained");
    assert_eq!(std::fs::read_link(&chained).unwrap(), real);

    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    assert!(env.push(&work, &["origin", "main"]).0);
    env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(
        &work,
        &[
            "origin",
            "main",
            "HEAD:refs/heads/blocked",
            "HEAD:refs/heads/side",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("foreign update: no refs/heads/blocked"),
        "{err}"
    );
    assert!(
        err.contains("agentgate: refused [agent-commit-unattested]"),
        "{err}"
    );
    assert!(env.rev(&server, "refs/heads/blocked").is_none());
    assert!(
        env.rev(&server, "refs/heads/side").is_some(),
        "update decides per ref"
    );

    run_ok(&env, &["uninstall", "--repo", s, "--hook", "update"]);
    assert_eq!(
        std::fs::read_link(&hook).unwrap(),
        real,
        "the symlink is back"
    );
    assert!(std::fs::symlink_metadata(&chained).is_err());
}

#[test]
fn install_refuses_when_chaining_is_impossible_and_uninstall_never_removes_foreign_hooks() {
    let env = Env::new();
    let server = bare(&env, "s.git");
    let s = server.to_str().unwrap();
    let hook = server.join("hooks/pre-receive");
    let chained = server.join("hooks/pre-receive.agentgate-chained");
    write_exec(&hook, "#!/bin/sh\nexit 0\n", 0o755);
    write_exec(&chained, "#!/bin/sh\nexit 1\n", 0o755);
    let out = env.agentgate(env.path(), &["install", "--repo", s]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to chain"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );
    assert_eq!(
        std::fs::read_to_string(&chained).unwrap(),
        "#!/bin/sh\nexit 1\n"
    );

    let out = env.agentgate(env.path(), &["uninstall", "--repo", s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an agentgate hook"));
    assert!(hook.exists());

    // A directory where the hook goes cannot be chained either.
    std::fs::remove_file(&hook).unwrap();
    std::fs::remove_file(&chained).unwrap();
    std::fs::create_dir(&hook).unwrap();
    let out = env.agentgate(env.path(), &["install", "--repo", s]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
    std::fs::remove_dir(&hook).unwrap();

    // Nothing installed: uninstall says so and succeeds.
    let out = run_ok(&env, &["uninstall", "--repo", s]);
    assert!(out.contains("nothing to do"), "{out}");

    // Layout directories: installed and removed without touching anything else.
    for (layout, path) in [
        ("gitlab", "custom_hooks/pre-receive.d/agentgate"),
        ("gitea", "hooks/pre-receive.d/agentgate"),
    ] {
        let other = server.join(path).with_file_name("00-site-hook");
        write_exec(&other, "#!/bin/sh\nexit 0\n", 0o755);
        // A foreign hook named "agentgate" in a .d directory is not chained (the dispatcher
        // would run the chained copy too): install asks for it to be renamed.
        write_exec(&server.join(path), "#!/bin/sh\nexit 0\n", 0o755);
        let out = env.agentgate(env.path(), &["install", "--repo", s, "--layout", layout]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("rename it"));
        std::fs::remove_file(server.join(path)).unwrap();
        run_ok(&env, &["install", "--repo", s, "--layout", layout]);
        assert!(server.join(path).is_file());
        run_ok(&env, &["uninstall", "--repo", s, "--layout", layout]);
        assert!(!server.join(path).exists());
        assert!(other.is_file());
    }
}

fn doctor(env: &Env, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut a = vec!["doctor", "--json"];
    a.extend_from_slice(args);
    let out = env.agentgate(env.path(), &a);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

/// The failed checks of a doctor report, as (id, message).
fn failures(v: &serde_json::Value) -> Vec<(String, String)> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn doctor_passes_a_healthy_install() {
    let env = Env::new();
    let server = env.server("s.git");
    let (code, v) = doctor(&env, &["--repo", server.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["ok"], true);
    let ids: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    for id in ["git-version", "hook", "policy", "notes", "audit-log"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let policy = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "policy")
        .unwrap();
    assert!(
        policy["message"]
            .as_str()
            .unwrap()
            .contains("agentgate.toml loads (named by --config (in the hook shim"),
        "says which file and why: {policy}"
    );
    // Doctor writes nothing: no audit log appears.
    assert!(!server.join("agentgate/audit.jsonl").exists());
    // The human report says the same.
    let out = env.agentgate(env.path(), &["doctor", "--repo", server.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 problem(s)"));
}

#[test]
fn doctor_finds_what_is_broken_and_says_how_to_fix_it() {
    let env = Env::new();
    let s_path = bare(&env, "s.git");
    let s = s_path.to_str().unwrap();

    // Nothing installed.
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    let f = failures(&v);
    assert!(
        f.iter()
            .any(|(id, m)| id == "hook" && m.contains("no agentgate hook")),
        "{f:?}"
    );

    // The binary the shim runs is gone.
    let bin = env.path().join("agentgate-copy");
    std::fs::copy(AGENTGATE, &bin).unwrap();
    run_ok(
        &env,
        &["install", "--repo", s, "--binary", bin.to_str().unwrap()],
    );
    assert_eq!(doctor(&env, &["--repo", s]).0, Some(0));
    std::fs::remove_file(&bin).unwrap();
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    assert!(
        failures(&v)
            .iter()
            .any(|(_, m)| m.contains("does not exist")),
        "{v:#}"
    );
    run_ok(&env, &["install", "--repo", s]);

    // The hook is not executable.
    let hook = s_path.join("hooks/pre-receive");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "fail")
        .unwrap()
        .clone();
    assert!(check["message"]
        .as_str()
        .unwrap()
        .contains("not executable"));
    assert!(check["fix"].as_str().unwrap().contains("chmod 755"));
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A chained hook that went missing.
    let foreign = s_path.join("hooks/update");
    write_exec(&foreign, "#!/bin/sh\nexit 0\n", 0o755);
    run_ok(&env, &["install", "--repo", s, "--hook", "update"]);
    std::fs::remove_file(s_path.join("hooks/update.agentgate-chained")).unwrap();
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    assert!(
        failures(&v).iter().any(|(_, m)| m.contains("missing")),
        "{v:#}"
    );
    std::fs::remove_file(&foreign).unwrap();

    // A broken policy, named with its file, line and column.
    std::fs::write(
        s_path.join("agentgate.toml"),
        "version = 1\n[protect]\nrefs = [\"refs/heads/main\"]\ntypo = 1\n",
    )
    .unwrap();
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    assert!(
        failures(&v)
            .iter()
            .any(|(id, m)| id == "policy" && m.contains("agentgate.toml:4:1")),
        "{v:#}"
    );

    // A signer key file that is missing: the policy check names it.
    std::fs::write(
        s_path.join("agentgate.toml"),
        format!(
            "{POLICY}[[signer]]\nname = \"ci\"\npublic_key = \"{}/missing.pub\"\n",
            env.path().display()
        ),
    )
    .unwrap();
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    assert!(
        failures(&v).iter().any(|(_, m)| m.contains("missing.pub")),
        "{v:#}"
    );

    // An audit log that cannot be created (a file is in the way; root ignores modes).
    let blocker = env.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    std::fs::write(
        s_path.join("agentgate.toml"),
        format!(
            "{POLICY}[audit]\nlog = \"{}/sub/audit.jsonl\"\n",
            blocker.display()
        ),
    )
    .unwrap();
    let (code, v) = doctor(&env, &["--repo", s]);
    assert_eq!(code, Some(1));
    let f = failures(&v);
    assert!(
        f.iter()
            .any(|(id, m)| id == "audit-log" && m.contains("in the way")),
        "{f:?}"
    );
    assert!(!blocker.with_file_name("sub").exists());
}
