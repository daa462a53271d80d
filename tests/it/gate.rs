//! `agentgate gate` over a small real C project in a temporary git repository: real `cc`, real
//! shell scripts, real bubblewrap (the gate's default isolation). Nothing leaves the sandbox but
//! the logs, so with `--env EXPORT_DIR` the build prints the artifact (base64), its environment
//! and its directory to its stderr, and the test writes them to EXPORT_DIR from the kept log:
//! the artifact's bytes can then be checked against `sha256sum` and `agentgate verify`.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::{b64, Sandbox};
use base64::Engine as _;

const MAIN_C: &str = "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";

/// Builds `app`; with $EXPORT_DIR set, prints it (and the build's environment and directory)
/// to stderr for [`Project::gate`] to export.
const BUILD_SH: &str = r#"#!/bin/sh
set -e
cc -O2 -o app main.c
if [ -n "$EXPORT_DIR" ]; then
  { echo "--- export app"; base64 app
    echo "--- export env.txt"; env
    echo "--- export pwd.txt"; pwd
    echo "--- end"; } >&2
fi
echo "built app"
"#;

/// Runs `app`, writes a JUnit report; fails when the repository holds a file named FAIL.
const TEST_SH: &str = r#"#!/bin/sh
out=$(./app)
if [ "$out" = hello ] && [ ! -e FAIL ]; then
  printf '<testsuite><testcase classname="app" name="prints_hello"/></testsuite>\n' > junit.xml
  echo "1 passed"
else
  printf '<testsuite><testcase classname="app" name="prints_hello"><failure/></testcase></testsuite>\n' > junit.xml
  echo "1 failed" >&2
  exit 1
fi
"#;

struct Project {
    sb: Sandbox,
}

impl Project {
    fn new() -> Self {
        let sb = Sandbox::new();
        for (name, text) in [
            ("main.c", MAIN_C),
            ("build.sh", BUILD_SH),
            ("test.sh", TEST_SH),
        ] {
            std::fs::write(sb.path("repo").join(name), text).unwrap();
        }
        for script in ["build.sh", "test.sh"] {
            use std::os::unix::fs::PermissionsExt as _;
            let perm = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(sb.path("repo").join(script), perm).unwrap();
        }
        sb.git(&["add", "main.c", "build.sh", "test.sh"]);
        sb.git(&["commit", "-q", "-m", "a tiny C program"]);
        std::fs::create_dir(sb.path("export")).unwrap();
        sb.keygen("gate", &[], &[]);
        Project { sb }
    }

    fn commit_file(&self, name: &str, text: &str) -> String {
        std::fs::write(self.sb.path("repo").join(name), text).unwrap();
        self.sb.git(&["add", name]);
        self.sb
            .git(&["commit", "-q", "-m", &format!("change {name}")]);
        self.sb.rev("HEAD")
    }

    fn export(&self) -> String {
        self.sb.path("export").display().to_string()
    }

    /// `agentgate gate` with the project's defaults and `extra` arguments.
    fn gate(&self, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec!["gate"];
        if !extra.contains(&"--key") {
            args.extend(["--key", "gate.key"]);
        }
        args.extend([
            "--repo",
            "repo",
            "--artifact",
            "app",
            "--junit",
            "junit.xml",
            "--out",
            "att",
        ]);
        if !extra.contains(&"--build") {
            args.extend(["--build", "./build.sh"]);
        }
        if !extra.contains(&"--test") {
            args.extend(["--test", "./test.sh"]);
        }
        args.extend_from_slice(extra);
        let out = self.sb.run(&args, env);
        self.export_from_log();
        out
    }

    /// Write what the build printed between `--- export NAME` lines to export/NAME.
    fn export_from_log(&self) {
        let Ok(log) = std::fs::read_to_string(self.sb.path("att/build.stderr.log")) else {
            return;
        };
        let mut current: Option<(String, String)> = None;
        for line in log.lines() {
            if let Some(next) = line.strip_prefix("--- ") {
                if let Some((name, body)) = current.take() {
                    let path = self.sb.path("export").join(&name);
                    if name == "app" {
                        use std::os::unix::fs::PermissionsExt as _;
                        let bytes = b64().decode(body.replace('\n', "")).unwrap();
                        std::fs::write(&path, bytes).unwrap();
                        let perm = std::fs::Permissions::from_mode(0o755);
                        std::fs::set_permissions(&path, perm).unwrap();
                    } else {
                        std::fs::write(&path, body).unwrap();
                    }
                }
                current = next
                    .strip_prefix("export ")
                    .map(|n| (n.to_string(), String::new()));
            } else if let Some((_, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            }
        }
    }

    fn statement(&self, file: &str) -> serde_json::Value {
        let bundle: serde_json::Value =
            serde_json::from_slice(&std::fs::read(self.sb.path(file)).unwrap()).unwrap();
        serde_json::from_slice(
            &b64()
                .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    }

    fn notes(&self) -> String {
        let mut cmd = Command::new("git");
        cmd.args(["notes", "--ref", "refs/notes/agentgate", "list"])
            .current_dir(self.sb.path("repo"));
        crate::common::isolate(&mut cmd, self.sb.dir.path());
        String::from_utf8(cmd.output().unwrap().stdout).unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[test]
fn gate_builds_tests_signs_and_the_bundles_verify() {
    let p = Project::new();
    let head = p.sb.rev("HEAD");
    let export = p.export();
    let out = p.gate(
        &["--env", "EXPORT_DIR", "--note", "--json"],
        &[("EXPORT_DIR", &export)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["signed"], true);
    assert_eq!(summary["commit"], head);
    assert_eq!(summary["testResult"], "PASSED");
    // The signed digest is the digest of the bytes the build made, as sha256sum computes it.
    let digest = sha256sum(&p.sb.path("export/app"));
    assert_eq!(summary["artifacts"][0]["name"], "app");
    assert_eq!(summary["artifacts"][0]["sha256"], digest);
    // Build output streamed to the terminal and kept as logs whose digests are signed.
    assert!(String::from_utf8_lossy(&out.stderr).contains("built app"));
    let log = p.sb.path("att/build.stdout.log");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "built app\n");
    assert_eq!(
        std::fs::read_to_string(p.sb.path("att/test.stdout.log")).unwrap(),
        "1 passed\n"
    );

    for bundle in [
        "att/provenance.sigstore.json",
        "att/test-result.sigstore.json",
    ] {
        let v =
            p.sb.verify(bundle, "gate.pub", &["--commit", &head], "export/app")
                .unwrap_or_else(|code| panic!("{bundle}: {code}"));
        assert_eq!(v["artifact"]["sha256"], digest);
    }
    let v =
        p.sb.verify(
            "att/test-result.sigstore.json",
            "gate.pub",
            &["--commit", &head],
            "export/app",
        )
        .unwrap();
    assert_eq!(v["testResult"], "PASSED");
    // The note on the commit holds both bundles.
    assert!(p.notes().contains(&head), "{}", p.notes());
    let note =
        p.sb.git(&["notes", "--ref", "refs/notes/agentgate", "show", &head]);
    assert_eq!(note.lines().count(), 2);

    let st = p.statement("att/provenance.sigstore.json");
    if let Some(dump) = std::env::var_os("AGENTGATE_TEST_DUMP_PROVENANCE") {
        // For reviewers: a real statement as this test produced it.
        std::fs::write(dump, serde_json::to_string_pretty(&st).unwrap()).unwrap();
    }
    assert_eq!(st["subject"][0]["digest"]["sha256"], digest);
    let pred = &st["predicate"];
    let dep = &pred["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(dep["digest"]["gitCommit"], head);
    assert_eq!(dep["digest"]["gitTree"], p.sb.rev("HEAD^{tree}"));
    let ext = &pred["buildDefinition"]["externalParameters"];
    assert_eq!(ext["build"]["argv"], serde_json::json!(["./build.sh"]));
    assert_eq!(ext["test"]["argv"], serde_json::json!(["./test.sh"]));
    assert_eq!(ext["env"], serde_json::json!(["EXPORT_DIR"]));
    let steps = &pred["buildDefinition"]["internalParameters"]["steps"];
    assert_eq!(steps[0]["step"], "build");
    assert_eq!(steps[0]["exitCode"], 0);
    assert_eq!(steps[0]["stdout"]["sha256"], sha256sum(&log));
    assert_eq!(steps[1]["step"], "test");
    assert_eq!(steps[1]["exitCode"], 0);
    let byproducts = pred["runDetails"]["byproducts"].as_array().unwrap();
    assert!(byproducts
        .iter()
        .any(|b| b["name"] == "build.stdout.log" && b["digest"]["sha256"] == sha256sum(&log)));
    let tools = pred["runDetails"]["builder"]["builderDependencies"]
        .as_array()
        .unwrap();
    let git = tools.iter().find(|t| t["name"] == "git").unwrap();
    assert!(git["annotations"]["version"]
        .as_str()
        .unwrap()
        .starts_with("git version"));
    assert!(
        pred["buildDefinition"]["internalParameters"]["runner"]["hostname"].is_string(),
        "{pred}"
    );
    let tests = p.statement("att/test-result.sigstore.json");
    assert_eq!(tests["predicate"]["result"], "PASSED");
    assert_eq!(
        tests["predicate"]["passedTests"],
        serde_json::json!(["app.prints_hello"])
    );
}

#[test]
fn gate_scrubs_the_environment() {
    let p = Project::new();
    let export = p.export();
    let caller_home = p.sb.dir.path().display().to_string();
    let out = p.gate(
        &["--env", "EXPORT_DIR", "--env", "WANTED_VAR"],
        &[
            ("EXPORT_DIR", &export),
            ("WANTED_VAR", "passed-on-purpose"),
            ("SECRET_TOKEN", "hunter2"),
            ("AWS_SECRET_ACCESS_KEY", "hunter3"),
            ("GITHUB_TOKEN", "ghp_hunter4"),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.example"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "99"),
            ("GITHUB_RUN_ATTEMPT", "1"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/app/.github/workflows/gate.yml@refs/heads/main",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let env = std::fs::read_to_string(p.sb.path("export/env.txt")).unwrap();
    for secret in [
        "hunter",
        "SECRET_TOKEN",
        "GITHUB_",
        "GIT_AUTHOR",
        "GIT_CONFIG",
    ] {
        assert!(
            !env.contains(secret),
            "{secret} leaked into the build:\n{env}"
        );
    }
    assert!(env.contains("WANTED_VAR=passed-on-purpose\n"), "{env}");
    assert!(env.contains("SOURCE_DATE_EPOCH=1767225600\n"), "{env}");
    let home = env
        .lines()
        .find_map(|l| l.strip_prefix("HOME="))
        .unwrap()
        .to_string();
    assert_ne!(home, caller_home);
    assert!(home.contains("agentgate-gate-"), "{home}");
    // The gate's temporary directories are gone afterwards.
    assert!(!Path::new(&home).exists());
    let pwd = std::fs::read_to_string(p.sb.path("export/pwd.txt")).unwrap();
    assert!(!Path::new(pwd.trim()).exists());

    // The runner identity is recorded from CI's variables; secrets are not.
    let st = p.statement("att/provenance.sigstore.json");
    let payload = st.to_string();
    assert!(!payload.contains("hunter"));
    let ci = &st["predicate"]["buildDefinition"]["internalParameters"]["runner"]["ci"];
    assert_eq!(ci["system"], "github-actions");
    assert_eq!(
        ci["jobUrl"],
        "https://github.example/acme/app/actions/runs/99/attempts/1"
    );
    assert_eq!(
        st["predicate"]["runDetails"]["builder"]["id"],
        "https://github.example/acme/app/.github/workflows/gate.yml@refs/heads/main"
    );
    assert_eq!(
        st["predicate"]["runDetails"]["metadata"]["invocationId"],
        ci["jobUrl"]
    );
}

#[test]
fn gate_never_builds_the_dirty_working_tree() {
    let p = Project::new();
    let head = p.sb.rev("HEAD");
    let main = p.sb.path("repo/main.c");
    std::fs::write(
        &main,
        MAIN_C
            .replace("hello", "uncommitted")
            .replace("{ ", "{ /*dirty*/ "),
    )
    .unwrap();
    std::fs::write(p.sb.path("repo/untracked.txt"), "x").unwrap();
    let status_before = p.sb.git(&["status", "--porcelain"]);
    let export = p.export();
    let out = p.gate(&["--env", "EXPORT_DIR"], &[("EXPORT_DIR", &export)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = Command::new(p.sb.path("export/app")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "hello\n");
    p.sb.verify(
        "att/provenance.sigstore.json",
        "gate.pub",
        &["--commit", &head],
        "export/app",
    )
    .unwrap();
    // The caller's checkout is as it was: still dirty, no worktrees added, HEAD unmoved.
    assert_eq!(p.sb.git(&["status", "--porcelain"]), status_before);
    assert_eq!(p.sb.git(&["worktree", "list"]).lines().count(), 1);
    assert_eq!(p.sb.rev("HEAD"), head);
    assert!(std::fs::read_to_string(&main)
        .unwrap()
        .contains("uncommitted"));
}

#[test]
fn failing_build_signs_nothing() {
    let p = Project::new();
    p.commit_file("main.c", "int main(void) { return syntax error; }\n");
    // A bundle left from an earlier run must not survive a refused one.
    std::fs::create_dir(p.sb.path("att")).unwrap();
    std::fs::write(p.sb.path("att/provenance.sigstore.json"), "{}").unwrap();
    let out = p.gate(&[], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gate refused [build-failed]"), "{stderr}");
    assert!(stderr.contains("error"), "the compiler's output: {stderr}");
    assert!(!p.sb.path("att/provenance.sigstore.json").exists());
    assert!(!p.sb.path("att/test-result.sigstore.json").exists());
    assert!(p.sb.path("att/build.stderr.log").exists());
    assert_eq!(p.notes(), "");

    // --json says so too; a missing program is a failed build as well.
    let out = p.gate(
        &["--build", "no-such-compiler main.c", "--json", "--note"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signed"], false);
    assert_eq!(v["code"], "build-failed");
    assert_eq!(p.notes(), "");
}

#[test]
fn missing_artifact_signs_nothing() {
    let p = Project::new();
    let out = p.gate(&["--artifact", "not-built.bin"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[artifact-missing]"));
    assert!(!p.sb.path("att/provenance.sigstore.json").exists());
    // Paths outside the checkout are a usage error before anything runs.
    let out = p.gate(&["--artifact", "../app"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn failing_tests_sign_a_failed_result() {
    let p = Project::new();
    let head = p.commit_file("FAIL", "make the tests fail\n");
    let export = p.export();
    let out = p.gate(
        &["--env", "EXPORT_DIR", "--note"],
        &[("EXPORT_DIR", &export)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gate refused [tests-failed]"), "{stderr}");
    assert!(stderr.contains("app.prints_hello"), "{stderr}");
    let tests = p.statement("att/test-result.sigstore.json");
    assert_eq!(tests["predicate"]["result"], "FAILED");
    assert_eq!(
        tests["predicate"]["failedTests"],
        serde_json::json!(["app.prints_hello"])
    );
    // verify reports the failed result, from the test result and from the provenance, which
    // records it (a release manager's artifact is verified only with passing tests).
    for bundle in [
        "att/test-result.sigstore.json",
        "att/provenance.sigstore.json",
    ] {
        assert_eq!(
            p.sb.verify(bundle, "gate.pub", &["--commit", &head], "export/app")
                .unwrap_err(),
            "tests-failed",
            "{bundle}"
        );
    }
    let st = p.statement("att/provenance.sigstore.json");
    let steps = &st["predicate"]["buildDefinition"]["internalParameters"]["steps"];
    assert_eq!(steps[1]["exitCode"], 1);
    assert_eq!(
        std::fs::read_to_string(p.sb.path("att/test.stderr.log")).unwrap(),
        "1 failed\n"
    );
    // The honest result is in the note too, where the hook will refuse it.
    assert!(p.notes().contains(&head));
}

#[test]
fn reproducible_refuses_a_build_that_embeds_the_time() {
    let p = Project::new();
    let out = p.gate(
        &[
            "--reproducible",
            "--build",
            "sh -c 'cc -o app main.c && date +%s%N >> app'",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[not-reproducible]"), "{stderr}");
    assert!(
        stderr.contains("app differs between the two builds"),
        "{stderr}"
    );
    assert!(!p.sb.path("att/provenance.sigstore.json").exists());
    assert!(p.sb.path("att/build-2.stdout.log").exists());

    // A deterministic build passes, and the provenance says it was built twice.
    let out = p.gate(&["--reproducible"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st = p.statement("att/provenance.sigstore.json");
    let internal = &st["predicate"]["buildDefinition"]["internalParameters"];
    assert_eq!(internal["checkout"]["builds"], 2);
    assert_eq!(internal["steps"][1]["step"], "build-2");
    assert_eq!(internal["steps"][1]["checkout"], 2);
}

fn bwrap_works() -> bool {
    Command::new("bwrap")
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--unshare-all",
            "true",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn sandbox_blocks_the_network() {
    let p = Project::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The loopback listener is reachable from an unsandboxed build (the connection waits in the
    // backlog) and unreachable from one in its own network namespace, whose loopback is empty.
    let build = format!("bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && cc -o app main.c'");
    let out = p.gate(&["--build", &build, "--danger-no-sandbox"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let out = p.gate(&["--build", &build, "--sandbox", "bwrap"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !bwrap_works() {
        // Where bubblewrap cannot create namespaces the gate must not fall back to running
        // unsandboxed.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run bwrap: {stderr}"
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(stderr.contains("[sandbox-unavailable]"), "{stderr}");
        crate::common::skip(
            "sandbox_blocks_the_network",
            "bubblewrap cannot create namespaces here (package bubblewrap; see the README)",
        );
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr.contains("[build-failed]"), "{stderr}");
    let log = std::fs::read_to_string(p.sb.path("att/build.stderr.log")).unwrap();
    assert!(
        log.contains(&format!("/dev/tcp/127.0.0.1/{port}: Connection refused")),
        "the connection itself failed: {log}"
    );
    drop(listener);

    // Inside the sandbox: the key file reads as empty, the caller's files are read-only, the
    // checkout is writable; the provenance records the sandbox and bwrap's version.
    let key = p.sb.path("gate.key").display().to_string();
    let outside = p.sb.path("repo/written-from-the-sandbox");
    let build = format!(
        "sh -c 'test ! -s {key} && ! touch {} && touch inside && cc -o app main.c'",
        outside.display()
    );
    // `--sandbox bwrap` is the default said out loud.
    for extra in [&["--sandbox", "bwrap"][..], &[]] {
        let mut args = vec!["--build", &build];
        args.extend_from_slice(extra);
        let out = p.gate(&args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(!outside.exists());
    }
    let st = p.statement("att/provenance.sigstore.json");
    assert_eq!(
        st["predicate"]["buildDefinition"]["externalParameters"]["sandbox"],
        "bwrap"
    );
    let recorded = &st["predicate"]["buildDefinition"]["internalParameters"]["sandbox"];
    assert_eq!(recorded["kind"], "bwrap");
    assert_eq!(recorded["capabilities"], "none");
    let tools = st["predicate"]["runDetails"]["builder"]["builderDependencies"]
        .as_array()
        .unwrap();
    assert!(tools.iter().any(|t| t["name"] == "bwrap"), "{tools:?}");
}

#[test]
fn sandbox_unavailable_is_a_clear_error() {
    // A PATH without bwrap stands in for a machine without it: the gate refuses to run the
    // build unsandboxed, by default and with --sandbox bwrap, and says how to enable it.
    let p = Project::new();
    let bin = p.sb.path("bin");
    std::fs::create_dir(&bin).unwrap();
    for tool in ["git", "sh", "cc", "as", "ld"] {
        let path = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let path = String::from_utf8(path.stdout).unwrap();
        std::os::unix::fs::symlink(path.trim(), bin.join(tool)).unwrap();
    }
    let bin = bin.display().to_string();
    for extra in [&["--sandbox", "bwrap"][..], &[]] {
        let out = p.gate(extra, &[("PATH", &bin)]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("[sandbox-unavailable]") && stderr.contains("bwrap is not installed"),
            "{stderr}"
        );
        for how in [
            "apparmor_restrict_unprivileged_userns=0",
            "--security-opt seccomp=unconfined",
            "privileged = true",
            "--danger-no-sandbox",
        ] {
            assert!(stderr.contains(how), "{how}: {stderr}");
        }
        assert!(!p.sb.path("att/build.stdout.log").exists());
    }
    // Without isolation, said out loud, the same machine builds, and the provenance says so.
    let out = p.gate(&["--danger-no-sandbox", "--json"], &[("PATH", &bin)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --danger-no-sandbox"));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sandbox"], "none");
    let st = p.statement("att/provenance.sigstore.json");
    let def = &st["predicate"]["buildDefinition"];
    assert_eq!(def["externalParameters"]["sandbox"], "none");
    assert_eq!(def["internalParameters"]["sandbox"]["kind"], "none");
    // Both at once is a usage error.
    let out = p.gate(&["--danger-no-sandbox", "--sandbox", "bwrap"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn key_passphrase_is_read_from_the_environment_and_not_passed_on() {
    let p = Project::new();
    p.sb.keygen(
        "enc",
        &["--password-env", "GATE_PW"],
        &[("GATE_PW", "correct horse")],
    );
    let export = p.export();
    let args = [
        "--key",
        "enc.key",
        "--password-env",
        "GATE_PW",
        "--env",
        "EXPORT_DIR",
    ];
    let out = p.gate(
        &args,
        &[("EXPORT_DIR", &export), ("GATE_PW", "correct horse")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let env = std::fs::read_to_string(p.sb.path("export/env.txt")).unwrap();
    assert!(!env.contains("correct horse"));
    p.sb.verify("att/provenance.sigstore.json", "enc.pub", &[], "export/app")
        .unwrap();
    // Naming the passphrase variable, or a CI credential, with --env is refused.
    for name in ["GATE_PW", "CI_JOB_TOKEN", "GITHUB_TOKEN"] {
        let out = p.gate(
            &[
                "--key",
                "enc.key",
                "--password-env",
                "GATE_PW",
                "--env",
                name,
            ],
            &[("GATE_PW", "correct horse")],
        );
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("--env {name} would")));
    }
}

#[test]
fn key_is_loaded_only_after_build_and_tests() {
    let p = Project::new();
    p.sb.keygen(
        "enc",
        &["--password-env", "GATE_PW"],
        &[("GATE_PW", "correct horse")],
    );
    let args = ["--key", "enc.key", "--password-env", "GATE_PW"];
    // What can be checked without reading the key is checked before the build: the file is
    // there, the passphrase variable is set.
    for (extra, env) in [
        (&["--key", "missing.key"][..], &[("GATE_PW", "x")][..]),
        (&args[..], &[][..]),
    ] {
        let out = p.gate(extra, env);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(!p.sb.path("att/build.stdout.log").exists());
    }
    // The key itself is decrypted only after the tests: a wrong passphrase is found then, and
    // nothing is signed.
    let out = p.gate(&args, &[("GATE_PW", "wrong horse")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot load the private key"), "{stderr}");
    let test_log = stderr.find("agentgate: test: ./test.sh").unwrap();
    assert!(test_log < stderr.find("cannot load the private key").unwrap());
    assert_eq!(
        std::fs::read_to_string(p.sb.path("att/test.stdout.log")).unwrap(),
        "1 passed\n"
    );
    assert!(!p.sb.path("att/provenance.sigstore.json").exists());
}

/// config/ci-gate-policy.toml with its key path pointing at `pubkey`, in `dir`.
fn ci_policy(pubkey: &Path) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/ci-gate-policy.toml"
    ))
    .unwrap();
    assert!(text.contains("/etc/agentgate/keys/ci-gate.pub"));
    text.replace(
        "/etc/agentgate/keys/ci-gate.pub",
        &pubkey.display().to_string(),
    )
}

#[test]
fn ci_gate_policy_snippet_is_a_valid_policy() {
    let p = Project::new();
    let policy = p.sb.path("policy.toml");
    std::fs::write(&policy, ci_policy(&p.sb.path("gate.pub"))).unwrap();
    let policy = policy.display().to_string();
    let head = p.sb.rev("HEAD");
    // A dry run decides (0 or 1); a broken policy would be a configuration error (2).
    let out = p.sb.run(
        &[
            "check",
            "--config",
            &policy,
            "--repo",
            "repo",
            "--json",
            &"0".repeat(40),
            &head,
            "refs/heads/main",
        ],
        &[],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ref"], "refs/heads/main");
}

/// The whole story: an agent commit is refused on main, the gate attests it, the note is pushed,
/// and main accepts it because its tip is attested.
#[test]
fn gated_agent_commit_is_accepted_on_main() {
    let env = crate::common::Env::new();
    let out = env.agentgate(env.path(), &["keygen", "--out", "ci-gate"]);
    assert!(out.status.success(), "{}", text(&out));
    let server = env.server_with(
        "server.git",
        &ci_policy(&env.path().join("ci-gate.pub")),
        &[],
        &[],
    );
    let work = env.clone(&server, "work");
    for (name, body) in [
        ("main.c", MAIN_C),
        ("build.sh", BUILD_SH),
        ("test.sh", TEST_SH),
    ] {
        std::fs::write(work.join(name), body).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        if name.ends_with(".sh") {
            std::fs::set_permissions(work.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
    }
    env.git_ok(&work, &["add", "."]);
    env.git_ok(
        &work,
        &[
            "-c",
            "user.name=Ada",
            "-c",
            "user.email=ada@example.com",
            "commit",
            "-q",
            "-m",
            "a tiny C program",
        ],
    );
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    let head = env.agent_commit(&work, "NOTES.txt", "agent: add notes");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok, "an unattested agent commit must be refused: {err}");

    let out = env.agentgate(
        env.path(),
        &[
            "gate",
            "--key",
            "ci-gate.key",
            "--repo",
            "work",
            "--commit",
            &head,
            "--build",
            "./build.sh",
            "--test",
            "./test.sh",
            "--artifact",
            "app",
            "--junit",
            "junit.xml",
            "--note",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (ok, err) = env.push(&work, &["origin", "refs/notes/agentgate"]);
    assert!(ok, "{err}");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "the attested tip must be accepted: {err}");
}

#[test]
fn commands_run_without_a_shell_unless_asked() {
    let p = Project::new();
    // As words, `&&`, `exit` and `1` are arguments that build.sh ignores.
    let out = p.gate(&["--build", "./build.sh && exit 1"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st = p.statement("att/provenance.sigstore.json");
    assert_eq!(
        st["predicate"]["buildDefinition"]["externalParameters"]["build"]["argv"],
        serde_json::json!(["./build.sh", "&&", "exit", "1"])
    );
    // With --shell the same line is a shell script, and fails.
    let out = p.gate(&["--shell", "--build", "./build.sh && exit 1"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[build-failed]"));
    // Unbalanced quotes are a usage error.
    let out = p.gate(&["--build", "cc 'main.c"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn refusals_after_the_tests() {
    let p = Project::new();
    let code = |out: &Output| -> String {
        assert_eq!(out.status.code(), Some(1), "{}", text(out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["code"].as_str().unwrap().to_string()
    };
    // Tests that modify the artifact: what was tested is not what was built.
    let out = p.gate(&["--json", "--test", "sh -c 'echo x >> app'"], &[]);
    assert_eq!(code(&out), "tests-changed-artifact");
    assert!(!p.sb.path("att/provenance.sigstore.json").exists());
    // Passing tests without the promised report.
    let out = p.gate(&["--json", "--test", "true"], &[]);
    assert_eq!(code(&out), "junit-missing");
    assert!(!p.sb.path("att/provenance.sigstore.json").exists());
    // A report in which nothing passed: WARNED is signed, and refused.
    let out = p.gate(
        &[
            "--json",
            "--test",
            "sh -c 'echo \"<testsuite/>\" > junit.xml'",
        ],
        &[],
    );
    assert_eq!(code(&out), "tests-warned");
    let tests = p.statement("att/test-result.sigstore.json");
    assert_eq!(tests["predicate"]["result"], "WARNED");
}

/// The CI templates give the key to the gate step alone, in a job that runs nothing of the
/// agent's outside the gate, from a definition the agent's branch cannot change (GitHub).
#[test]
fn ci_templates_give_the_key_to_the_gate_step_only() {
    let read = |name: &str| {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scripts/ci")
                .join(name),
        )
        .unwrap()
    };
    // Lines that are not comments, split into the blocks starting at lines indented `indent`.
    let blocks = |text: &str, indent: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            if line.starts_with(indent) && !line[indent.len()..].starts_with(' ') {
                out.push(String::new());
            }
            if let Some(b) = out.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        }
        out
    };

    let gh = read("github-actions.yml");
    let code: String = gh
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(code.contains("\n  workflow_run:\n"), "{code}");
    assert!(
        !code.contains("\n  push:"),
        "a push-triggered gate runs the agent's YAML"
    );
    assert!(code.lines().any(|l| l.starts_with("permissions: {}")));
    assert!(code.contains("persist-credentials: false"));
    assert!(code.contains("environment: agentgate-gate"));
    let steps = blocks(&code, "      - ");
    let gate_steps: Vec<&String> = steps
        .iter()
        .filter(|s| s.contains("agentgate gate"))
        .collect();
    assert_eq!(gate_steps.len(), 1);
    for s in &steps {
        let is_gate = s.contains("agentgate gate");
        assert_eq!(
            s.contains("secrets."),
            is_gate,
            "secrets outside the gate step: {s}"
        );
        if is_gate {
            assert!(!s.contains("github.token"), "{s}");
            assert!(
                !s.contains("--danger-no-sandbox") && !s.contains("--sandbox"),
                "{s}"
            );
        }
    }

    let gl = read("gitlab-ci.yml");
    let jobs = blocks(&gl, "");
    let gate: Vec<&String> = jobs.iter().filter(|j| j.starts_with("gate:")).collect();
    assert_eq!(gate.len(), 1);
    for j in &jobs {
        let is_gate = j.starts_with("gate:");
        for var in ["AGENTGATE_KEY", "environment:", "name: agentgate-gate"] {
            assert_eq!(j.contains(var), is_gate, "{var}: {j}");
        }
    }
    assert!(!gate[0].contains("--danger-no-sandbox") && !gate[0].contains("--sandbox"));
}
