//! Class 6: fail-open corners found in review. Choosing the policy fails closed (a repository
//! config agentgate cannot read as git does, or an error from `exists()`, refuses; it never
//! falls through to a weaker policy further down the list); refs are looked up by their exact
//! name (never `rev-parse` guessing such as `refs/heads/refs/notes/agentgate`); and the shim
//! `agentgate install` writes pins its policy against the pusher's environment.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;

use crate::bypass::fixture::*;

/// A policy that protects nothing a test pushes to: what a fall-through would land on.
const LAX: &str = "version = 1\n[protect]\nrefs = [\"refs/heads/nothing\"]\n";

/// A server installed without `--config` (the policy is found at push time), whose
/// `$GIT_DIR/agentgate.toml` is then made lax; the strict policy is moved next to the server
/// (returned), for the repository config to name.
fn discovered_with_lax_fallback(fmt: Fmt) -> (Fx, PathBuf) {
    let fx = Fx::new(Options {
        fmt,
        install: Install::Discovered,
        ..Options::default()
    });
    let strict = fx.env.path().join("strict.toml");
    std::fs::rename(&fx.policy, &strict).unwrap();
    std::fs::write(&fx.policy, LAX).unwrap();
    (fx, strict)
}

/// `git config agentgate.config <path>` on the server, with the path's raw bytes.
fn set_repo_config_path(fx: &Fx, path: &std::path::Path) {
    let out = fx
        .env
        .cmd("git")
        .current_dir(&fx.server)
        .args(["config", "agentgate.config"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `agentgate.config` names the strict policy by a path that is not UTF-8 (git reads it fine).
/// agentgate must use that policy or refuse, never fall through to `$GIT_DIR/agentgate.toml`.
fn repo_config_value_not_utf8(fmt: Fmt) {
    let (fx, strict_utf8) = discovered_with_lax_fallback(fmt);
    // Positive control: the repository config names the strict policy; honest work passes.
    set_repo_config_path(&fx, &strict_utf8);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push(&["origin", "main"]);
    assert_accepted(&p);
    fx.agent_commit("app.c", "agent\n", "agent change");
    assert_refused(&fx.push(&["origin", "main"]), "agent-commit-unattested");

    let latin1 = fx
        .env
        .path()
        .join(OsStr::from_bytes(b"strict-caf\xe9.toml"));
    std::fs::rename(&strict_utf8, &latin1).unwrap();
    set_repo_config_path(&fx, &latin1);
    let p = fx.push(&["origin", "main"]);
    assert_refused_any(&p, &["policy-unreadable", "agent-commit-unattested"]);
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}
per_format!(repo_config_value_not_utf8:
    fail_open_repo_config_value_not_utf8_does_not_fall_through_sha1 => Sha1,
    fail_open_repo_config_value_not_utf8_does_not_fall_through_sha256 => Sha256,
);

/// `agentgate.config` set in a file git includes by `includeIf "hasconfig:..."`: git reads it,
/// a config reader that skips conditions it does not know does not.
#[test]
fn fail_open_repo_config_git_only_include_does_not_fall_through_sha1() {
    let (fx, strict) = discovered_with_lax_fallback(Fmt::Sha1);
    let inc = fx.env.path().join("agentgate.inc");
    std::fs::write(
        &inc,
        format!("[agentgate]\n\tconfig = {}\n", strict.display()),
    )
    .unwrap();
    let mut config = std::fs::read_to_string(fx.server.join("config")).unwrap();
    config.push_str(&format!(
        "[remote \"mirror\"]\n\turl = https://example.invalid/app.git\n\
         [includeIf \"hasconfig:remote.*.url:https://example.invalid/**\"]\n\tpath = {}\n",
        inc.display()
    ));
    std::fs::write(fx.server.join("config"), config).unwrap();
    assert_eq!(
        fx.srv(&["config", "--get", "agentgate.config"]),
        strict.display().to_string(),
        "git reads agentgate.config through the include"
    );
    fx.agent_commit("app.c", "agent\n", "agent change");
    let p = fx.push(&["origin", "main"]);
    assert_refused_any(&p, &["policy-unreadable", "agent-commit-unattested"]);
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
}

/// A syntax error in the server's config: git's receive-pack itself dies before any hook, so
/// the push is refused; the installed hook, run as receive-pack runs it, refuses
/// `[policy-unreadable]` rather than loading `$GIT_DIR/agentgate.toml` without the config.
#[test]
fn fail_open_repo_config_syntax_error_refuses_sha1() {
    let (fx, _strict) = discovered_with_lax_fallback(Fmt::Sha1);
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    assert_accepted(&fx.push(&["origin", &format!("{agent}:refs/heads/topic")]));
    let good = std::fs::read_to_string(fx.server.join("config")).unwrap();
    std::fs::write(fx.server.join("config"), format!("{good}[broken\n")).unwrap();

    let p = fx.push(&["origin", "main"]);
    assert!(
        !p.ok,
        "git refuses to push into a repository it cannot configure:\n{p}"
    );
    let hook = fx.server.join("hooks/pre-receive");
    let out = fx.run_with_stdin(
        &hook,
        &fx.server,
        &[("GIT_DIR", ".")],
        format!("{} {agent} refs/heads/main\n", fx.base).as_bytes(),
    );
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "the hook refuses:\n{shown}");
    assert!(
        shown.contains("agentgate: refused [policy-unreadable]"),
        "the hook refuses [policy-unreadable]:\n{shown}"
    );
    assert!(
        !shown.contains("class=") && !shown.contains("code="),
        "libgit2's class and code numbers reach the pusher:\n{shown}"
    );
    // The fix names git's own check of that file (not `policy check`, which reads policies),
    // and git, run as suggested, says where the file is broken.
    let suggested = format!("`git --git-dir {} config --list`", fx.server.display());
    assert!(shown.contains(&suggested), "{suggested}:\n{shown}");
    let check = fx.stdin_git(
        &fx.server,
        &["--git-dir", fx.server.to_str().unwrap(), "config", "--list"],
        b"",
    );
    assert!(
        !check.status.success() && text(&check.stderr).contains("config"),
        "{}",
        text(&check.stderr)
    );
    // git cannot read refs through a broken config: mend it to look.
    std::fs::write(fx.server.join("config"), good).unwrap();
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
}

/// `$GIT_DIR/agentgate.toml` is a symlink loop: `exists()` fails with ELOOP. Refused
/// `[policy-unreadable]`, not skipped (to `/etc/agentgate/policy.toml`, or to "no policy").
fn policy_symlink_loop(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        install: Install::Discovered,
        ..Options::default()
    });
    let human = fx.commit_file("app.c", "human\n", "human change");
    assert_accepted(&fx.push(&["origin", "main"])); // control: the policy works
    std::fs::remove_file(&fx.policy).unwrap();
    std::os::unix::fs::symlink("loop.toml", &fx.policy).unwrap();
    std::os::unix::fs::symlink("agentgate.toml", fx.server.join("loop.toml")).unwrap();
    fx.commit_file("app.c", "human 2\n", "human change 2");
    let p = fx.push(&["origin", "main"]);
    assert_refused(&p, "policy-unreadable");
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
    assert_eq!(
        fx.last_audit("refs/heads/main")["code"],
        "policy-unreadable"
    );
    fx.agent_commit("app.c", "agent\n", "agent change");
    let p = fx.push(&["origin", "main"]);
    assert_refused(&p, "policy-unreadable");
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}
per_format!(policy_symlink_loop:
    fail_open_policy_symlink_loop_refuses_sha1 => Sha1,
    fail_open_policy_symlink_loop_refuses_sha256 => Sha256,
);

/// The notes ref is read by its exact name. With the gate's valid bundles stored only under a
/// name `rev-parse refs/notes/agentgate` would guess (`refs/heads/refs/notes/agentgate`, then
/// `refs/tags/refs/notes/agentgate`), the agent commit is still unattested; under the real
/// name it is accepted (positive control).
fn notes_ref_looked_up_exactly(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        ..Options::default()
    });
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    fx.sign(&agent);
    for guessed in [
        "refs/heads/refs/notes/agentgate",
        "refs/tags/refs/notes/agentgate",
    ] {
        assert_accepted(&fx.push(&["origin", &format!("refs/notes/agentgate:{guessed}")]));
        let p = fx.push(&["origin", "main"]);
        assert_refused(&p, "agent-commit-unattested");
        fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
        let rec = fx.last_audit("refs/heads/main");
        assert!(
            rec["notes"]["commit"].is_null(),
            "no notes commit is read from {guessed}: {rec}"
        );
        assert_accepted(&fx.push(&["origin", &format!(":{guessed}")]));
    }
    let p = fx.push(&["origin", "refs/notes/agentgate", "main"]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&agent), &p);
}
per_format!(notes_ref_looked_up_exactly:
    fail_open_notes_ref_looked_up_exactly_sha1 => Sha1,
    fail_open_notes_ref_looked_up_exactly_reftable => Reftable,
);

/// SHA-256 (where `agentgate sign` cannot write notes yet): a note under the guessed name is
/// never read, as the audit record's notes commit shows.
#[test]
fn fail_open_notes_ref_looked_up_exactly_sha256() {
    let fx = Fx::new(Options {
        fmt: Fmt::Sha256,
        ..Options::default()
    });
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    fx.git(&["notes", "--ref", "agentgate", "add", "-m", "{}", &agent]);
    assert_accepted(&fx.push(&[
        "origin",
        "refs/notes/agentgate:refs/heads/refs/notes/agentgate",
    ]));
    let p = fx.push(&["origin", "main"]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    let rec = fx.last_audit("refs/heads/main");
    assert!(rec["notes"]["commit"].is_null(), "{rec}");
}

/// `agentgate install --config policy.toml` (a relative path) writes a shim that names the
/// policy by its absolute path, and nothing in the pusher's environment changes the decision:
/// neither `AGENTGATE_CONFIG` nor git config injected with `GIT_CONFIG_COUNT` (what an SSH
/// `AcceptEnv` would pass through).
#[test]
fn fail_open_install_pins_policy_against_pusher_environment_sha1() {
    let fx = Fx::new(Options {
        install: Install::Later,
        ..Options::default()
    });
    let out = fx.agentgate(
        fx.env.path(),
        &[
            "install",
            "--repo",
            s(&fx.server),
            "--config",
            "policy.toml",
        ],
    );
    assert!(out.status.success(), "install: {}", text(&out.stderr));
    let shim = std::fs::read_to_string(fx.server.join("hooks/pre-receive")).unwrap();
    let re = regex::Regex::new(r"--config '([^']+)'").unwrap();
    let pinned = re
        .captures(&shim)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("the shim names --config:\n{shim}"));
    assert!(
        std::path::Path::new(&pinned).is_absolute(),
        "pinned by an absolute path:\n{shim}"
    );
    assert_eq!(
        std::fs::canonicalize(&pinned).unwrap(),
        std::fs::canonicalize(&fx.policy).unwrap()
    );

    let lax = fx.env.path().join("lax.toml");
    std::fs::write(&lax, LAX).unwrap();
    let lax = s(&lax);
    fx.agent_commit("app.c", "agent\n", "agent change");
    for env in [
        vec![("AGENTGATE_CONFIG", lax)],
        vec![
            ("GIT_CONFIG_COUNT", "1"),
            ("GIT_CONFIG_KEY_0", "agentgate.config"),
            ("GIT_CONFIG_VALUE_0", lax),
        ],
    ] {
        let p = fx.push_env(&env, &["origin", "main"]);
        assert_refused(&p, "agent-commit-unattested");
        fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
        let rec = fx.last_audit("refs/heads/main");
        assert_eq!(
            std::fs::canonicalize(rec["policy"]["path"].as_str().unwrap_or("")).ok(),
            std::fs::canonicalize(&fx.policy).ok(),
            "{rec}"
        );
    }
    // Positive control: honest work with the same environment is accepted.
    fx.git(&["reset", "-q", "--hard", &fx.base]);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push_env(&[("AGENTGATE_CONFIG", lax)], &["origin", "main"]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}
