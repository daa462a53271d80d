//! What the build sees of the gate's environment (an allowlist, never the secrets), and what
//! the gate learns about where it runs (the CI job, for the provenance; the CI's secret
//! directories, for the sandbox to hide).

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Variables that hold an identity token or the means to request one: never passed to the build
/// with --env.
pub(super) const KEYLESS_SECRETS: &[&str] = &[
    "AGENTGATE_IDENTITY_TOKEN",
    "SIGSTORE_ID_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
];

/// The CI job's own credentials (GitHub Actions, GitLab CI): never passed to the build with
/// --env either. The allowlist keeps them out otherwise.
pub(super) const CI_CREDENTIALS: &[&str] = &[
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_RESULTS_URL",
    "ACTIONS_CACHE_URL",
    "CI_JOB_TOKEN",
    "CI_JOB_JWT",
    "CI_JOB_JWT_V1",
    "CI_JOB_JWT_V2",
    "CI_REGISTRY_PASSWORD",
    "CI_DEPENDENCY_PROXY_PASSWORD",
    "CI_DEPLOY_PASSWORD",
];

/// Variables passed to the build and test commands as they are set for the gate. Everything
/// else is dropped unless named with `--env`; HOME and TMPDIR are replaced by fresh directories.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "TZ",
    // Where toolchains live (locations, never credentials).
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOROOT",
    "GOPATH",
    "GOMODCACHE",
    "GOCACHE",
    "GOTOOLCHAIN",
    "JAVA_HOME",
    "GRADLE_USER_HOME",
    "MAVEN_HOME",
    "M2_HOME",
    "ANDROID_HOME",
    "ANDROID_SDK_ROOT",
    "DOTNET_ROOT",
    "NVM_DIR",
    "PYENV_ROOT",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CC",
    "CXX",
];

/// Toolchains that default to a directory under HOME: when the variable is unset, the gate
/// points it at the caller's directory so that moving HOME does not lose the toolchain.
const HOME_DEFAULTS: &[(&str, &str)] = &[("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")];

/// The environment for build and test: the allowlist, the names given with `--env`, and the
/// gate's own HOME, TMPDIR and SOURCE_DATE_EPOCH.
pub fn scrubbed_env(
    get: &dyn Fn(&str) -> Option<OsString>,
    extra: &[String],
    home: &Path,
    tmp: &Path,
    source_date_epoch: i64,
) -> BTreeMap<String, OsString> {
    let mut env = BTreeMap::new();
    for name in ENV_ALLOWLIST
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        if let Some(v) = get(name) {
            env.insert(name.to_string(), v);
        }
    }
    if let Some(caller_home) = get("HOME").filter(|h| !h.is_empty()) {
        for (var, dir) in HOME_DEFAULTS {
            let path = Path::new(&caller_home).join(dir);
            if !env.contains_key(*var) && path.is_dir() {
                env.insert(var.to_string(), path.into_os_string());
            }
        }
    }
    env.entry("PATH".into())
        .or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".into());
    env.insert("HOME".into(), home.as_os_str().to_owned());
    env.insert("TMPDIR".into(), tmp.as_os_str().to_owned());
    env.insert(
        "SOURCE_DATE_EPOCH".into(),
        source_date_epoch.to_string().into(),
    );
    env
}

/// Who ran the gate: the host, and what GitHub Actions or GitLab CI say about the job. Only
/// identifiers are read, never tokens.
pub fn runner_info(get: &dyn Fn(&str) -> Option<String>) -> Value {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| get("HOSTNAME"));
    let mut runner = json!({
        "hostname": hostname,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    });
    let pick = |names: &[&str]| -> serde_json::Map<String, Value> {
        names
            .iter()
            .filter_map(|n| get(n).map(|v| (n.to_string(), Value::String(v))))
            .collect()
    };
    if get("GITHUB_ACTIONS").as_deref() == Some("true") {
        let vars = pick(&[
            "GITHUB_SERVER_URL",
            "GITHUB_REPOSITORY",
            "GITHUB_REPOSITORY_ID",
            "GITHUB_REPOSITORY_OWNER_ID",
            "GITHUB_WORKFLOW",
            "GITHUB_WORKFLOW_REF",
            "GITHUB_WORKFLOW_SHA",
            "GITHUB_JOB",
            "GITHUB_RUN_ID",
            "GITHUB_RUN_ATTEMPT",
            "GITHUB_RUN_NUMBER",
            "GITHUB_REF",
            "GITHUB_SHA",
            "GITHUB_EVENT_NAME",
            "GITHUB_ACTOR",
            "GITHUB_ACTOR_ID",
            "GITHUB_TRIGGERING_ACTOR",
            "RUNNER_NAME",
            "RUNNER_OS",
            "RUNNER_ARCH",
            "RUNNER_ENVIRONMENT",
        ]);
        let server = get("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
        let run_url = match (get("GITHUB_REPOSITORY"), get("GITHUB_RUN_ID")) {
            (Some(repo), Some(run)) => Some(format!(
                "{server}/{repo}/actions/runs/{run}/attempts/{}",
                get("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())
            )),
            _ => None,
        };
        // The subject Fulcio certifies for this workflow: the same string keyless policy names.
        let identity = get("GITHUB_WORKFLOW_REF").map(|w| format!("{server}/{w}"));
        runner["ci"] = json!({
            "system": "github-actions",
            "jobUrl": run_url,
            "workflowRef": get("GITHUB_WORKFLOW_REF"),
            "workloadIdentity": identity,
            "variables": vars,
        });
    } else if get("GITLAB_CI").as_deref() == Some("true") {
        let vars = pick(&[
            "CI_SERVER_URL",
            "CI_PROJECT_PATH",
            "CI_PROJECT_ID",
            "CI_CONFIG_PATH",
            "CI_PIPELINE_ID",
            "CI_PIPELINE_URL",
            "CI_PIPELINE_SOURCE",
            "CI_JOB_ID",
            "CI_JOB_NAME",
            "CI_JOB_URL",
            "CI_COMMIT_SHA",
            "CI_COMMIT_REF_NAME",
            "CI_COMMIT_TAG",
            "CI_RUNNER_ID",
            "CI_RUNNER_DESCRIPTION",
            "GITLAB_USER_LOGIN",
        ]);
        let identity = match (
            get("CI_SERVER_URL"),
            get("CI_PROJECT_PATH"),
            get("CI_CONFIG_PATH"),
            get("CI_COMMIT_REF_NAME"),
        ) {
            (Some(server), Some(project), Some(config), Some(r)) => {
                let kind = if get("CI_COMMIT_TAG").is_some() {
                    "tags"
                } else {
                    "heads"
                };
                Some(format!("{server}/{project}//{config}@refs/{kind}/{r}"))
            }
            _ => None,
        };
        runner["ci"] = json!({
            "system": "gitlab-ci",
            "jobUrl": get("CI_JOB_URL"),
            "projectPath": get("CI_PROJECT_PATH"),
            "workloadIdentity": identity,
            "variables": vars,
        });
    }
    runner
}

/// The builder id and invocation id CI gives us, if any.
pub(super) fn ci_ids(runner: &Value) -> (Option<String>, Option<String>) {
    let ci = &runner["ci"];
    let builder = ci["workloadIdentity"]
        .as_str()
        .map(str::to_string)
        .or_else(|| {
            ci["variables"]["CI_PROJECT_PATH"].as_str().map(|p| {
                let server = ci["variables"]["CI_SERVER_URL"].as_str().unwrap_or("");
                format!("{server}/{p}")
            })
        });
    (builder, ci["jobUrl"].as_str().map(str::to_string))
}

/// Where CI systems keep the job's secrets and other jobs' files, from their variables: GitHub
/// Actions' runner directory (its credentials; `_temp` with the job's command files such as
/// $GITHUB_ENV) and workspace; GitLab's builds directory (other projects' checkouts on a shared
/// runner) and the project's `.tmp` directory, where file-type variables are written.
pub fn ci_hidden(get: &dyn Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let path = |n: &str| get(n).filter(|v| !v.is_empty()).map(PathBuf::from);
    let is_true = |n: &str| get(n).is_some_and(|v| v == "true");
    let mut v = Vec::new();
    if is_true("GITHUB_ACTIONS") {
        v.extend(path("RUNNER_TEMP"));
        v.extend(path("GITHUB_WORKSPACE"));
        if let Some(ws) = path("RUNNER_WORKSPACE") {
            // <runner>/_work/<repository>: the runner's own directory holds its credentials.
            match ws.parent() {
                Some(w) if w.file_name() == Some(OsStr::new("_work")) => {
                    v.extend(w.parent().map(Path::to_path_buf))
                }
                _ => v.push(ws),
            }
        }
    }
    if is_true("GITLAB_CI") {
        v.extend(path("CI_BUILDS_DIR"));
        if let Some(project) = path("CI_PROJECT_DIR") {
            let mut tmp = project.clone().into_os_string();
            tmp.push(".tmp");
            v.push(tmp.into());
            v.push(project);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_an_allowlist() {
        let caller: BTreeMap<&str, &str> = BTreeMap::from([
            ("PATH", "/bin"),
            ("HOME", "/nonexistent-home"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("GATE_KEY_PASSWORD", "pw"),
            ("LANG", "C.UTF-8"),
            ("WANTED", "yes"),
            ("TMPDIR", "/caller/tmp"),
        ]);
        let get = |n: &str| caller.get(n).map(OsString::from);
        let env = scrubbed_env(
            &get,
            &["WANTED".to_string(), "UNSET".to_string()],
            Path::new("/w/home"),
            Path::new("/w/tmp"),
            1_700_000_000,
        );
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "HOME",
                "LANG",
                "PATH",
                "SOURCE_DATE_EPOCH",
                "TMPDIR",
                "WANTED"
            ]
        );
        assert_eq!(env["HOME"], "/w/home");
        assert_eq!(env["TMPDIR"], "/w/tmp");
        assert_eq!(env["SOURCE_DATE_EPOCH"], "1700000000");
        // No PATH at all still finds the usual programs.
        let env = scrubbed_env(&|_| None, &[], Path::new("/h"), Path::new("/t"), 0);
        assert_eq!(env["PATH"], "/usr/local/bin:/usr/bin:/bin");
    }

    #[test]
    fn runner_from_github_actions() {
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "acme/app"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            (
                "GITHUB_WORKFLOW_REF",
                "acme/app/.github/workflows/gate.yml@refs/heads/main",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "secret"),
            ("GITHUB_TOKEN", "secret"),
        ]);
        let r = runner_info(&|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(r["ci"]["system"], "github-actions");
        assert_eq!(
            r["ci"]["jobUrl"],
            "https://github.com/acme/app/actions/runs/42/attempts/2"
        );
        assert_eq!(
            r["ci"]["workloadIdentity"],
            "https://github.com/acme/app/.github/workflows/gate.yml@refs/heads/main"
        );
        assert!(!r.to_string().contains("secret"));
        let (builder, invocation) = ci_ids(&r);
        assert_eq!(builder.as_deref(), r["ci"]["workloadIdentity"].as_str());
        assert_eq!(invocation.as_deref(), r["ci"]["jobUrl"].as_str());
    }

    #[test]
    fn runner_from_gitlab_ci() {
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITLAB_CI", "true"),
            ("CI_SERVER_URL", "https://gitlab.example"),
            ("CI_PROJECT_PATH", "acme/app"),
            ("CI_CONFIG_PATH", ".gitlab-ci.yml"),
            ("CI_COMMIT_REF_NAME", "main"),
            ("CI_JOB_URL", "https://gitlab.example/acme/app/-/jobs/7"),
            ("CI_JOB_TOKEN", "secret"),
        ]);
        let r = runner_info(&|n| vars.get(n).map(|v| v.to_string()));
        assert_eq!(r["ci"]["system"], "gitlab-ci");
        assert_eq!(
            r["ci"]["jobUrl"],
            "https://gitlab.example/acme/app/-/jobs/7"
        );
        assert_eq!(
            r["ci"]["workloadIdentity"],
            "https://gitlab.example/acme/app//.gitlab-ci.yml@refs/heads/main"
        );
        assert!(!r.to_string().contains("secret"));
        // Outside CI: only the host.
        let r = runner_info(&|_| None);
        assert!(r.get("ci").is_none());
        assert_eq!(ci_ids(&r), (None, None));
    }

    #[test]
    fn ci_hidden_names_the_runner_and_the_job_files() {
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_TEMP", "/opt/runner/_work/_temp"),
            ("RUNNER_WORKSPACE", "/opt/runner/_work/app"),
            ("GITHUB_WORKSPACE", "/opt/runner/_work/app/app"),
        ]);
        let get = |n: &str| vars.get(n).map(OsString::from);
        let paths: Vec<PathBuf> = ci_hidden(&get);
        assert!(paths.contains(&PathBuf::from("/opt/runner")), "{paths:?}");
        assert!(paths.contains(&PathBuf::from("/opt/runner/_work/_temp")));
        let vars: BTreeMap<&str, &str> = BTreeMap::from([
            ("GITLAB_CI", "true"),
            ("CI_BUILDS_DIR", "/builds"),
            ("CI_PROJECT_DIR", "/builds/acme/app"),
        ]);
        let get = |n: &str| vars.get(n).map(OsString::from);
        assert_eq!(
            ci_hidden(&get),
            [
                PathBuf::from("/builds"),
                PathBuf::from("/builds/acme/app.tmp"),
                PathBuf::from("/builds/acme/app")
            ]
        );
        assert!(ci_hidden(&|_| None).is_empty());
    }
}
