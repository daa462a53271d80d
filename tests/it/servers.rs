//! agentgate on the Git servers people self-host, each started for real on 127.0.0.1 by the
//! test and killed when it ends (Drop guards): plain bare repositories over SSH (OpenSSH's
//! sshd), smart HTTP (`git http-backend` behind lighttpd, with basic auth), gitolite3 (repo
//! hook and VREF), and the GitLab/Gitaly and Gitea/Forgejo hook layouts with their dispatch
//! and environment emulated (those servers do not run here).
//!
//! A missing program fails the test when `CI` is set (`scripts/install-test-deps.sh` installs
//! them); otherwise the test prints a `SKIP` line and passes.

use crate::common::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long any one git command over the network may take before it is killed.
const NET_TIMEOUT_S: &str = "60";

/// True if every program exists; otherwise fail under CI or print a skip line.
fn require(test: &str, needs: &[(&str, &str)]) -> bool {
    for (program, package) in needs {
        let found = if program.contains('/') {
            Path::new(program).exists()
        } else {
            Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        };
        if !found {
            skip(test, &format!("{program} not found (Debian package {package}; scripts/install-test-deps.sh installs it)"));
            return false;
        }
    }
    true
}

fn require_root(test: &str) -> bool {
    crate::common::require_root(test, "it starts sshd or creates a user")
}

/// A server process, killed and reaped when the test ends (even on panic).
struct Service {
    name: &'static str,
    child: ProcessGroup,
    log: PathBuf,
}

impl Service {
    /// Start `cmd` (output to `log`) and wait until it accepts connections on `port`.
    fn start(name: &'static str, mut cmd: Command, port: u16, log: PathBuf) -> Service {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = ProcessGroup::spawn(cmd).unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let mut s = Service { name, child, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return s;
            }
            if let Ok(Some(status)) = s.child.child.try_wait() {
                panic!(
                    "{name} exited ({status}) before listening: {}",
                    s.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{name} not listening on 127.0.0.1:{port} after 15 s: {}",
                    s.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.child.kill();
        if std::thread::panicking() {
            eprintln!("--- {} log:\n{}", self.name, self.log_text());
        }
    }
}

/// `git` bounded in time (network commands must never hang a CI run).
fn git_net(env: &Env, dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> (bool, String) {
    let mut c = env.cmd("timeout");
    c.arg(NET_TIMEOUT_S).arg("git").args(args).current_dir(dir);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("run git");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("remote: agentgate: refused [{code}]"))
}

fn keygen(env: &Env, path: &Path) -> String {
    let out = env
        .cmd("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "agentgate-test",
            "-f",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

fn ssh_command(key: &Path, port: u16) -> String {
    format!(
        "ssh -F /dev/null -i {} -p {port} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR",
        key.display()
    )
}

/// sshd on 127.0.0.1 with its own host key and config, all under `dir`.
fn sshd(
    env: &Env,
    dir: &Path,
    allow_user: &str,
    authorized_keys: &str,
    extra: &str,
) -> (Service, u16) {
    std::fs::create_dir_all(dir).unwrap();
    // sshd's privilege-separation directory (the systemd unit creates it on a booted host).
    std::fs::create_dir_all("/run/sshd").unwrap();
    let host_key = dir.join("host_key");
    keygen(env, &host_key);
    let port = free_port();
    let config = dir.join("sshd_config");
    // Without PAM, sshd refuses an account whose password is locked ("!..."), even for a key;
    // PAM's account check does not. Prefer no PAM (its session modules fail in containers).
    let locked = std::fs::read_to_string("/etc/shadow")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with(&format!("{allow_user}:!")));
    let use_pam = if locked { "yes" } else { "no" };
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile none\nAuthorizedKeysFile {authorized_keys}\nStrictModes no\nUsePAM {use_pam}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowUsers {allow_user}\nLogLevel ERROR\nMaxStartups 32:30:64\n{extra}",
            host_key.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new("/usr/sbin/sshd");
    cmd.arg("-f").arg(&config).args(["-D", "-e"]);
    let service = Service::start("sshd", cmd, port, dir.join("sshd.log"));
    (service, port)
}

fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("torn audit line {l:?}: {e}")))
        .collect()
}

/// Plain bare repositories over SSH: each key maps to a pusher name (`environment=` in
/// authorized_keys, as a shared `git` account does), the message reaches the pusher, and
/// concurrent pushes over SSH all land whole in the audit log.
#[test]
fn ssh_plain_bare_repository() {
    let t = "ssh_plain_bare_repository";
    if !require_root(t)
        || !require(
            t,
            &[
                ("/usr/sbin/sshd", "openssh-server"),
                ("ssh", "openssh-client"),
                ("ssh-keygen", "openssh-client"),
                ("timeout", "coreutils"),
            ],
        )
    {
        return;
    }
    let env = Env::new();
    let server = env.server("s.git");
    let keys = env.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let alice = keys.join("alice");
    let bob = keys.join("bob");
    let authorized = format!(
        "environment=\"REMOTE_USER=alice\" {}environment=\"REMOTE_USER=bob\" {}",
        keygen(&env, &alice),
        keygen(&env, &bob)
    );
    let ak = env.path().join("authorized_keys");
    std::fs::write(&ak, authorized).unwrap();
    let (_sshd, port) = sshd(
        &env,
        &env.path().join("sshd"),
        "root",
        ak.to_str().unwrap(),
        "PermitUserEnvironment REMOTE_USER\n",
    );
    let url = format!("ssh://root@127.0.0.1:{port}{}", server.display());
    let as_alice = ssh_command(&alice, port);
    let as_bob = ssh_command(&bob, port);

    let work = env.path().join("w");
    std::fs::create_dir(&work).unwrap();
    env.git_ok(&work, &["init", "-q", "-b", "main"]);
    env.git_ok(&work, &["remote", "add", "origin", &url]);
    let base = env.commit(&work, "a.txt", "Human base");
    let (ok, err) = git_net(
        &env,
        &work,
        &["push", "origin", "main"],
        &[("GIT_SSH_COMMAND", &as_alice)],
    );
    assert!(ok, "{err}");
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(base.as_str())
    );
    let log = env.audit(&server);
    assert_eq!(log[0]["decision"], "accept");
    assert_eq!(log[0]["pusher"]["name"], "alice");
    assert_eq!(log[0]["pusher"]["source"], "REMOTE_USER");

    let agent = env.agent_commit(&work, "a.txt", "Agent over SSH");
    let (ok, err) = git_net(
        &env,
        &work,
        &["push", "origin", "main"],
        &[("GIT_SSH_COMMAND", &as_bob)],
    );
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(
        err.contains(&format!("remote:     {} Agent over SSH", &agent[..7])),
        "{err}"
    );
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(base.as_str())
    );
    assert_eq!(env.audit(&server)[1]["pusher"]["name"], "bob");

    // Two pushers at once, three pushes each, over SSH.
    let n = 6;
    let clones: Vec<PathBuf> = (0..n)
        .map(|i| {
            let w = env.path().join(format!("c{i}"));
            std::fs::create_dir(&w).unwrap();
            env.git_ok(&w, &["init", "-q", "-b", "main"]);
            env.git_ok(&w, &["remote", "add", "origin", &url]);
            let local = format!("file://{}", server.display());
            env.git_ok(&w, &["fetch", "-q", &local, "main"]);
            env.git_ok(&w, &["reset", "-q", "--hard", "FETCH_HEAD"]);
            if i % 2 == 0 {
                env.agent_commit(&w, "a.txt", &format!("Agent {i}"));
            } else {
                env.commit(&w, "a.txt", &format!("Human {i}"));
            }
            w
        })
        .collect();
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let env = &env;
                let ssh = if i % 2 == 0 {
                    as_alice.clone()
                } else {
                    as_bob.clone()
                };
                s.spawn(move || {
                    let target = if i % 2 == 0 {
                        format!("HEAD:refs/heads/release/{i}")
                    } else {
                        format!("HEAD:refs/heads/topic/{i}")
                    };
                    git_net(
                        env,
                        w,
                        &["push", "origin", &target],
                        &[("GIT_SSH_COMMAND", ssh.as_str())],
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, (ok, err)) in results.iter().enumerate() {
        assert_eq!(*ok, i % 2 == 1, "push {i}: {err}");
    }
    let log = audit_lines(&server.join("agentgate/audit.jsonl"));
    assert_eq!(log.len(), 2 + n);
    for i in 0..n {
        let (refname, pusher, decision) = if i % 2 == 0 {
            (format!("refs/heads/release/{i}"), "alice", "refuse")
        } else {
            (format!("refs/heads/topic/{i}"), "bob", "accept")
        };
        let recs: Vec<_> = log
            .iter()
            .filter(|r| r["ref"] == refname.as_str())
            .collect();
        assert_eq!(recs.len(), 1, "{refname}");
        assert_eq!(recs[0]["pusher"]["name"], pusher);
        assert_eq!(recs[0]["decision"], decision);
    }
    // The hash chain survived the concurrency.
    let out = env.agentgate(
        env.path(),
        &[
            "audit",
            "verify",
            "--json",
            server.join("agentgate/audit.jsonl").to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["code"] != "chain-broken"),
        "{v:#}"
    );
}

/// Smart HTTP: `git http-backend` as a CGI behind lighttpd with basic auth, so the hook sees
/// the authenticated user in `REMOTE_USER`.
#[test]
fn smart_http_behind_lighttpd() {
    let t = "smart_http_behind_lighttpd";
    if !require(
        t,
        &[
            ("/usr/sbin/lighttpd", "lighttpd"),
            ("/usr/lib/git-core/git-http-backend", "git"),
            ("timeout", "coreutils"),
        ],
    ) {
        return;
    }
    let env = Env::new();
    let root = env.path().join("repos");
    std::fs::create_dir(&root).unwrap();
    let server = env.server("repos/s.git");
    env.git_ok(&server, &["config", "http.receivepack", "true"]);
    let www = env.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let users = env.path().join("htpasswd-plain");
    std::fs::write(&users, "alice:wonderland\nbob:builder\n").unwrap();
    let port = free_port();
    let conf = env.path().join("lighttpd.conf");
    std::fs::write(
        &conf,
        format!(
            r#"server.modules = ("mod_alias", "mod_setenv", "mod_cgi", "mod_auth", "mod_authn_file")
server.document-root = "{www}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{tmp}/lighttpd-error.log"
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
auth.require = ( "/git/" => ( "method" => "basic", "realm" => "git", "require" => "valid-user" ) )
alias.url = ( "/git" => "/usr/lib/git-core/git-http-backend" )
$HTTP["url"] =~ "^/git" {{
  cgi.assign = ( "" => "" )
  setenv.add-environment = ( "GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "", "PATH" => "/usr/local/bin:/usr/bin:/bin" )
}}
"#,
            www = www.display(),
            tmp = env.path().display(),
            users = users.display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new("/usr/sbin/lighttpd");
    cmd.arg("-D").arg("-f").arg(&conf);
    let _http = Service::start("lighttpd", cmd, port, env.path().join("lighttpd.log"));

    let work = env.path().join("w");
    std::fs::create_dir(&work).unwrap();
    env.git_ok(&work, &["init", "-q", "-b", "main"]);
    let url = format!("http://alice:wonderland@127.0.0.1:{port}/git/s.git");
    env.git_ok(&work, &["remote", "add", "origin", &url]);
    let base = env.commit(&work, "a.txt", "Human over HTTP");
    let (ok, err) = git_net(&env, &work, &["push", "origin", "main"], &[]);
    assert!(ok, "{err}");
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(base.as_str())
    );
    let log = env.audit(&server);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["decision"], "accept");
    assert_eq!(log[0]["pusher"]["name"], "alice");
    assert_eq!(log[0]["pusher"]["source"], "REMOTE_USER");

    let agent = env.agent_commit(&work, "a.txt", "Agent over HTTP");
    let bob = format!("http://bob:builder@127.0.0.1:{port}/git/s.git");
    let (ok, err) = git_net(&env, &work, &["push", &bob, "main"], &[]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(err.contains(&agent[..7]), "{err}");
    let log = env.audit(&server);
    assert_eq!(log.len(), 2);
    assert_eq!(log[1]["pusher"]["name"], "bob");

    // A wrong password never reaches the hook.
    let bad = format!("http://alice:guess@127.0.0.1:{port}/git/s.git");
    let (ok, _err) = git_net(&env, &work, &["push", &bad, "main"], &[]);
    assert!(!ok);
    assert_eq!(env.audit(&server).len(), 2);
    assert_eq!(
        env.rev(&server, "refs/heads/main").as_deref(),
        Some(base.as_str())
    );
}

/// A Unix user for the gitolite test, deleted when the test ends.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    fn create(home: &Path) -> TestUser {
        let name = format!("agtg{}", std::process::id());
        let out = Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-p", "*", "-d"])
            .arg(home)
            .arg(&name)
            .output()
            .expect("useradd");
        assert!(
            out.status.success(),
            "useradd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        TestUser { name, uid, gid }
    }

    fn chown(&self, path: &Path) {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A command run as this user, with its home and a clean environment.
    fn cmd(&self, home: &Path, program: &str) -> Command {
        use std::os::unix::process::CommandExt;
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", home)
            .env("USER", &self.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LC_ALL", "C")
            .current_dir(home)
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null());
        c
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Whatever still runs as the user (an sshd session winding down) goes first, bounded.
        let uid = self.uid.to_string();
        for _ in 0..50 {
            let _ = Command::new("pkill")
                .args(["-KILL", "-u", &uid])
                .stderr(Stdio::null())
                .status();
            let left = Command::new("pgrep")
                .args(["-u", &uid])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !left {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        // userdel talks about the mail spool it did not find: not an error of the tests.
        let _ = Command::new("userdel")
            .arg(&self.name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// gitolite3 over SSH: agentgate as a repo-specific pre-receive hook on one repository and as
/// a VREF on another; gitolite's `GL_USER` is the pusher; gitolite's own refusals (an unknown
/// key, no access) never reach agentgate.
#[test]
fn gitolite_repo_hook_and_vref() {
    let t = "gitolite_repo_hook_and_vref";
    if !require_root(t)
        || !require(
            t,
            &[
                ("/usr/sbin/sshd", "openssh-server"),
                ("ssh", "openssh-client"),
                ("ssh-keygen", "openssh-client"),
                ("gitolite", "gitolite3"),
                ("useradd", "passwd"),
                ("timeout", "coreutils"),
            ],
        )
    {
        return;
    }
    let env = Env::new();
    // The gitolite user's home, in /tmp so that the user can reach it whatever $TMPDIR is.
    let home_dir = tempfile::Builder::new()
        .prefix("agentgate-gitolite-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(home_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = home_dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let user = TestUser::create(&home);

    // What the admin puts on the server: agentgate, the policy, the hook and VREF scripts.
    let bin = home.join("bin/agentgate");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(AGENTGATE, &bin).unwrap();
    let policy = home.join("agentgate/policy.toml");
    let audit = home.join("agentgate/audit.jsonl");
    std::fs::create_dir_all(policy.parent().unwrap()).unwrap();
    std::fs::write(
        &policy,
        format!("{POLICY}[audit]\nlog = \"{}\"\n", audit.display()),
    )
    .unwrap();
    let local = home.join("local");
    std::fs::create_dir_all(local.join("hooks/repo-specific")).unwrap();
    std::fs::create_dir_all(local.join("VREF")).unwrap();
    let hook = local.join("hooks/repo-specific/agentgate");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nexec {} pre-receive --config {}\n",
            bin.display(),
            policy.display()
        ),
    )
    .unwrap();
    let vref = local.join("VREF/AGENTGATE");
    std::fs::write(
        &vref,
        format!(
            "#!/bin/sh\n# gitolite VREF: args are ref old new oldtree newtree access vref; agentgate decides the ref\nexec {} update \"$1\" \"$2\" \"$3\" --config {} >&2\n",
            bin.display(),
            policy.display()
        ),
    )
    .unwrap();
    for f in [&hook, &vref] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let keys = env.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    let admin_pub = keygen(&env, &keys.join("admin"));
    let alice_pub = keygen(&env, &keys.join("alice"));
    keygen(&env, &keys.join("mallory"));
    std::fs::write(home.join("admin.pub"), &admin_pub).unwrap();
    user.chown(&home);

    let setup = |args: &[&str]| {
        let out = user.cmd(&home, "gitolite").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "gitolite {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    setup(&["setup", "-pk", home.join("admin.pub").to_str().unwrap()]);
    // The rc is edited on the server: local code lives in the gitolite user's home, never in
    // the (pushable) admin repository.
    let rc = home.join(".gitolite.rc");
    let text = std::fs::read_to_string(&rc).unwrap();
    let text = text
        .replacen(
            "# LOCAL_CODE                =>  \"$ENV{HOME}/local\",",
            "LOCAL_CODE                =>  \"$ENV{HOME}/local\",",
            1,
        )
        .replacen("# 'repo-specific-hooks',", "'repo-specific-hooks',", 1);
    assert!(
        text.contains("\n        LOCAL_CODE")
            && text.contains("\n            'repo-specific-hooks',"),
        "the rc layout changed"
    );
    std::fs::write(&rc, text).unwrap();
    setup(&["setup"]);

    let (_sshd, port) = sshd(
        &env,
        &env.path().join("sshd"),
        &user.name,
        &format!("{}/.ssh/authorized_keys", home.display()),
        "",
    );
    let as_admin = ssh_command(&keys.join("admin"), port);
    let as_alice = ssh_command(&keys.join("alice"), port);
    let as_mallory = ssh_command(&keys.join("mallory"), port);
    let base_url = format!("ssh://{}@127.0.0.1:{port}", user.name);

    // The admin configures gitolite the gitolite way: push the admin repository.
    let (ok, err) = git_net(
        &env,
        env.path(),
        &[
            "clone",
            "-q",
            &format!("{base_url}/gitolite-admin"),
            "admin",
        ],
        &[("GIT_SSH_COMMAND", &as_admin)],
    );
    assert!(ok, "{err}");
    let admin = env.path().join("admin");
    std::fs::write(admin.join("keydir/alice.pub"), &alice_pub).unwrap();
    std::fs::write(
        admin.join("conf/gitolite.conf"),
        "repo gitolite-admin\n    RW+     =   admin\n\n\
         # agentgate as a repo-specific pre-receive hook\n\
         repo app\n    RW+     =   alice admin\n    option hook.pre-receive = agentgate\n\n\
         # agentgate as a VREF (decides each ref inside gitolite's update hook)\n\
         repo lib\n    RW+     =   alice admin\n    -       VREF/AGENTGATE  =   @all\n\n\
         repo secret\n    RW+     =   admin\n",
    )
    .unwrap();
    env.git_ok(&admin, &["add", "-A"]);
    env.git_ok(
        &admin,
        &[
            "-c",
            "user.name=Admin",
            "-c",
            "user.email=admin@example.com",
            "commit",
            "-q",
            "-m",
            "agentgate on app and lib",
        ],
    );
    let (ok, err) = git_net(
        &env,
        &admin,
        &["push", "-q", "origin", "HEAD"],
        &[("GIT_SSH_COMMAND", &as_admin)],
    );
    assert!(ok, "{err}");
    assert!(
        std::fs::symlink_metadata(
            home.join("repositories/app.git/hooks/pre-receive.h00-agentgate")
        )
        .is_ok(),
        "gitolite linked the repo-specific hook"
    );

    let work = env.path().join("w");
    std::fs::create_dir(&work).unwrap();
    env.git_ok(&work, &["init", "-q", "-b", "main"]);
    let base = env.commit(&work, "a.txt", "Human base");
    let push = |ssh: &str, repo: &str, refspec: &str| {
        git_net(
            &env,
            &work,
            &["push", &format!("{base_url}/{repo}"), refspec],
            &[("GIT_SSH_COMMAND", ssh)],
        )
    };
    for repo in ["app", "lib"] {
        let (ok, err) = push(&as_alice, repo, "main");
        assert!(ok, "{repo}: {err}");
    }
    let log = audit_lines(&audit);
    assert_eq!(log.len(), 2);
    for (r, (mode, repo)) in log
        .iter()
        .zip([("pre-receive", "app.git"), ("update", "lib.git")])
    {
        assert_eq!(r["decision"], "accept");
        assert_eq!(r["mode"], mode);
        assert!(r["repo"].as_str().unwrap().ends_with(repo), "{r}");
        assert_eq!(r["pusher"]["name"], "alice");
        assert_eq!(r["pusher"]["source"], "GL_USER");
    }

    let agent = env.agent_commit(&work, "a.txt", "Agent via gitolite");
    for repo in ["app", "lib"] {
        let (ok, err) = push(&as_alice, repo, "main");
        assert!(!ok, "{repo}");
        assert!(
            refused_with(&err, "agent-commit-unattested"),
            "{repo}: {err}"
        );
        assert!(err.contains(&agent[..7]), "{err}");
    }
    let log = audit_lines(&audit);
    assert_eq!(log.len(), 4);
    assert!(log[2..]
        .iter()
        .all(|r| r["decision"] == "refuse" && r["pusher"]["name"] == "alice"));
    // The repositories belong to the gitolite user: read them past git's ownership check.
    let bare_main = |repo: &str| {
        let dir = home.join(format!("repositories/{repo}.git"));
        env.git_ok(
            &dir,
            &["-c", "safe.directory=*", "rev-parse", "refs/heads/main"],
        )
    };
    assert_eq!(bare_main("app"), base);
    assert_eq!(bare_main("lib"), base);

    // Refused by gitolite itself: an unknown key, and a user without access. agentgate logs
    // nothing for them (nothing accepted, nothing at all).
    let (ok, err) = push(&as_mallory, "app", "HEAD:refs/heads/topic");
    assert!(!ok);
    assert!(
        err.contains("Permission denied") || err.contains("publickey"),
        "{err}"
    );
    let (ok, err) = push(&as_alice, "secret", "main");
    assert!(!ok);
    assert!(err.contains("DENIED"), "{err}");
    assert_eq!(audit_lines(&audit).len(), 4);
}

/// GitLab (Gitaly) runs every executable in `custom_hooks/pre-receive.d/` with the push's
/// stdin and its `GL_*` environment; lines starting `GL-HOOK-ERR: ` are shown in the UI.
/// Gitaly is not run here: `hooks/pre-receive` plays its dispatcher.
#[test]
fn gitlab_custom_hooks_layout() {
    let env = Env::new();
    let server = env.server_with("s.git", POLICY, &[], &["--layout", "gitlab"]);
    let d = server.join("custom_hooks/pre-receive.d");
    std::fs::write(
        d.join("00-site-hook"),
        "#!/bin/sh\ncat >/dev/null\necho \"site hook ran for $GL_PROJECT_PATH\" >&2\n",
    )
    .unwrap();
    std::fs::set_permissions(
        d.join("00-site-hook"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        server.join("hooks/pre-receive"),
        "#!/bin/sh\n# Gitaly's dispatch: each executable in custom_hooks/pre-receive.d, in order, same stdin; the first failure refuses\n\
         input=$(mktemp) && cat >\"$input\" || exit 1\n\
         for h in custom_hooks/pre-receive.d/*; do\n  [ -f \"$h\" ] && [ -x \"$h\" ] || continue\n  \"$h\" <\"$input\" || { s=$?; rm -f \"$input\"; exit $s; }\ndone\nrm -f \"$input\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        server.join("hooks/pre-receive"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let work = env.clone(&server, "w");
    let rp = "env GL_ID=user-7 GL_USERNAME=ada GL_PROJECT_PATH=acme/app GL_REPOSITORY=project-7 GL_PROTOCOL=ssh git-receive-pack";
    env.commit(&work, "a.txt", "Human");
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(ok, "{err}");
    assert!(err.contains("site hook ran for acme/app"), "{err}");
    env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(!ok);
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("agentgate")).collect();
    assert!(ours.len() > 2, "{err}");
    assert!(
        ours.iter().all(|l| l.starts_with("remote: GL-HOOK-ERR: ")),
        "{err}"
    );
    assert!(
        err.contains("remote: GL-HOOK-ERR: agentgate: refused [agent-commit-unattested]"),
        "{err}"
    );
    let log = env.audit(&server);
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|r| r["pusher"]["name"] == "ada" && r["pusher"]["source"] == "GL_USERNAME"));
}

/// Gitea/Forgejo write `hooks/pre-receive`, which runs every hook in `hooks/pre-receive.d/`
/// (their own `gitea` hook among them) with the same stdin, and set `GITEA_*` variables.
#[test]
fn gitea_hooks_d_layout() {
    let env = Env::new();
    let server = env.server_with("s.git", POLICY, &[], &["--layout", "gitea"]);
    let d = server.join("hooks/pre-receive.d");
    // Gitea's own per-repository hook (it calls `gitea hook pre-receive`); a stand-in here.
    std::fs::write(
        d.join("gitea"),
        "#!/usr/bin/env bash\ncat >/dev/null\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(d.join("gitea"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The dispatcher as Gitea 1.2x generates it.
    std::fs::write(
        server.join("hooks/pre-receive"),
        r#"#!/usr/bin/env bash
# AUTO GENERATED BY GITEA, DO NOT MODIFY
data=$(cat)
exitcodes=""
hookname=$(basename $0)
GIT_DIR=${GIT_DIR:-$(dirname $0)/..}

for hook in ${GIT_DIR}/hooks/${hookname}.d/*; do
  test -x "${hook}" && test -f "${hook}" || continue
  echo "${data}" | "${hook}"
  exitcodes="${exitcodes} $?"
done

for i in ${exitcodes}; do
  [ ${i} -eq 0 ] || exit ${i}
done
"#,
    )
    .unwrap();
    std::fs::set_permissions(
        server.join("hooks/pre-receive"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let work = env.clone(&server, "w");
    let rp = "env GITEA_PUSHER_NAME=grace GITEA_PUSHER_ID=2 GITEA_REPO_USER_NAME=acme GITEA_REPO_NAME=app GITEA_REPO_ID=9 git-receive-pack";
    env.commit(&work, "a.txt", "Human");
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(ok, "{err}");
    env.agent_commit(&work, "a.txt", "Agent");
    let (ok, err) = env.push(&work, &["--receive-pack", rp, "origin", "main"]);
    assert!(!ok);
    assert!(refused_with(&err, "agent-commit-unattested"), "{err}");
    assert!(!err.contains("GL-HOOK-ERR"), "{err}");
    let log = env.audit(&server);
    assert_eq!(log.len(), 2);
    assert!(log
        .iter()
        .all(|r| r["pusher"]["name"] == "grace" && r["pusher"]["source"] == "GITEA_PUSHER_NAME"));
    let out = env.agentgate(env.path(), &["doctor", "--repo", server.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
