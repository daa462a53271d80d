//! Admin commands run as root on a repository another user owns (the Git server's `git`):
//! `install`, `uninstall`, `doctor` and `audit verify` either do the right thing (files owned
//! by the repository's owner) or say which command to run as that user; libgit2's error codes
//! never reach the admin.

use crate::common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Output;

const NOBODY: u32 = 65534;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn chown_nobody(p: &Path) {
    let st = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// A bare repository owned by nobody, with a policy of its own, in a directory nobody can
/// reach.
fn nobody_repo(env: &Env) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = env.path().join("app.git");
    env.git_ok(
        env.path(),
        &["init", "-q", "--bare", "-b", "main", repo.to_str().unwrap()],
    );
    std::fs::write(repo.join("agentgate.toml"), POLICY).unwrap();
    chown_nobody(&repo);
    repo
}

fn no_libgit2_words(s: &str) {
    assert!(
        !s.contains("class=") && !s.contains("code=Owner") && !s.contains("(-36)"),
        "libgit2's error codes reached the user: {s}"
    );
}

#[test]
fn root_on_another_users_repository_is_told_the_command_to_run_as_its_owner() {
    if !require_root(
        "root_on_another_users_repository_is_told_the_command_to_run_as_its_owner",
        "it chowns a repository to nobody",
    ) {
        return;
    }
    let env = Env::new();
    let repo = nobody_repo(&env);
    let r = repo.to_str().unwrap();

    for (args, code) in [
        (vec!["install", "--repo", r], 2),
        (vec!["uninstall", "--repo", r], 2),
        (vec!["doctor", "--repo", r], 1),
    ] {
        let out = env.agentgate(env.path(), &args);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {t}");
        assert!(
            t.contains(&format!("{r} belongs to nobody")),
            "{args:?}: {t}"
        );
        assert!(
            t.contains(&format!("sudo -u nobody agentgate {}", args.join(" "))),
            "{args:?}: {t}"
        );
        no_libgit2_words(&t);
    }
    assert!(!repo.join("hooks/pre-receive").exists());

    let log = env.path().join("audit.jsonl");
    std::fs::write(&log, "").unwrap();
    let out = env.agentgate(
        env.path(),
        &["audit", "verify", "--repo", r, log.to_str().unwrap()],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(&format!(
            "sudo -u nobody agentgate audit verify --repo {r} {}",
            log.display()
        )),
        "{t}"
    );
    no_libgit2_words(&t);
}

#[test]
fn root_that_may_read_the_repository_installs_files_owned_by_its_owner() {
    if !require_root(
        "root_that_may_read_the_repository_installs_files_owned_by_its_owner",
        "it chowns a repository to nobody",
    ) {
        return;
    }
    let env = Env::new();
    let repo = nobody_repo(&env);
    let r = repo.to_str().unwrap();
    // The admin told git (and libgit2) that root may read other users' repositories.
    std::fs::write(env.home.join(".gitconfig"), "[safe]\n\tdirectory = *\n").unwrap();
    for layout in ["plain", "gitlab"] {
        let out = env.agentgate(env.path(), &["install", "--repo", r, "--layout", layout]);
        assert!(out.status.success(), "{}", text(&out));
    }
    for p in [
        "hooks/pre-receive",
        "agentgate",
        "agentgate/baseline",
        "custom_hooks",
        "custom_hooks/pre-receive.d",
        "custom_hooks/pre-receive.d/agentgate",
    ] {
        let m = std::fs::metadata(repo.join(p)).unwrap();
        assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "{p}");
    }
    let out = env.agentgate(env.path(), &["uninstall", "--repo", r]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!repo.join("hooks/pre-receive").exists());
}
