//! Local stand-ins for Fulcio, Rekor and a timestamp authority (@sigstore/mock, served over
//! HTTP on 127.0.0.1 by `tests/interop/keyless-mock/server.js`), for the keyless tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const MOCK_START_TIMEOUT: Duration = Duration::from_secs(30);

pub fn interop_enabled(test: &str) -> bool {
    if std::env::var("AGENTGATE_INTEROP").as_deref() == Ok("1") {
        return true;
    }
    super::skip(
        test,
        "set AGENTGATE_INTEROP=1 to run it (scripts/install-keyless-mock.sh installs the mock)",
    );
    false
}

pub fn mock_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/keyless-mock")
}

#[derive(serde::Deserialize)]
pub struct MockInfo {
    pub url: String,
    pub trusted_root: PathBuf,
    pub token_file: PathBuf,
    pub subject: String,
    pub issuer: String,
}

/// A running mock, killed when dropped.
pub struct Mock {
    child: super::ProcessGroup,
    pub info: MockInfo,
    pub token: String,
    log: PathBuf,
}

impl Mock {
    /// Start the mock; it exits by itself after `lifetime_secs`, whatever happens to the test.
    pub fn start(dir: &Path, lifetime_secs: u32) -> Mock {
        assert!(
            mock_dir().join("node_modules/@sigstore/mock").is_dir(),
            "@sigstore/mock is not installed: run scripts/install-keyless-mock.sh"
        );
        let log = dir.join("mock.log");
        let mut cmd = Command::new("node");
        cmd.arg(mock_dir().join("server.js"))
            .arg("--dir")
            .arg(dir.join("mock"))
            .args(["--lifetime", &lifetime_secs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("mock log"));
        let mut child = super::ProcessGroup::spawn(cmd).unwrap_or_else(|e| {
            panic!("cannot start node (needed for the keyless mock; install Node.js >= 20.17): {e}")
        });
        let stdout = child.child.stdout.take().expect("mock stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = match rx.recv_timeout(MOCK_START_TIMEOUT) {
            Ok(line) if !line.trim().is_empty() => line,
            other => {
                child.kill();
                panic!(
                    "the keyless mock did not start ({other:?}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let info: MockInfo = serde_json::from_str(&line).expect("mock info line");
        let token = std::fs::read_to_string(&info.token_file).expect("mock token");
        Mock {
            child,
            info,
            token,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.child.kill();
    }
}
