//! `agentgate trust-root update` against TUF repositories python-tuf (the reference
//! implementation, `tests/interop/make-tuf-repo.py`) builds and this test serves on 127.0.0.1
//! from a thread of its own (no process outlives the test): a good repository with a root
//! rotation is fetched and written where `verify --trusted-root` and `doctor` read it; an
//! expired and a tampered repository are refused and leave the file as it was; a repository
//! rolled back below what an earlier update saw is refused (the kept TUF metadata).
//!
//! Runs when `AGENTGATE_INTEROP=1` (and then fails, not skips, if python-tuf is missing:
//! `scripts/install-interop-deps.sh` installs it); otherwise it says it skipped.
#![cfg(feature = "trust-root-update")]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::common::mock::interop_enabled;
use crate::common::Sandbox;

/// A static file server for one directory, on a thread; stopped (and joined) on drop.
struct Server {
    url: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(root: PathBuf) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = stream {
                    serve(s, &root);
                }
            }
        });
        Server {
            url: format!("http://{addr}"),
            stop,
            addr,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread sees the flag and ends.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request: GET a file under `root` (no `..`), 404 otherwise; the connection is closed.
fn serve(mut stream: TcpStream, root: &Path) {
    let mut line = String::new();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let file = root.join(path.trim_start_matches('/'));
    let body = (!path.contains(".."))
        .then(|| std::fs::read(&file).ok())
        .flatten();
    let _ = match body {
        Some(b) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                b.len()
            );
            stream.write_all(&b)
        }
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

fn python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/.venv/bin/python")
}

/// A repository of `mode` (see make-tuf-repo.py) serving `trusted_root`, in `dir`.
fn make_repo(dir: &Path, trusted_root: &Path, mode: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/make-tuf-repo.py");
    let out = Command::new(python())
        .arg(script)
        .arg(dir)
        .arg(trusted_root)
        .arg(mode)
        .output()
        .expect("python-tuf runs (scripts/install-interop-deps.sh installs it)");
    assert!(
        out.status.success(),
        "make-tuf-repo.py {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn trust_root_update_fetches_through_tuf_and_refuses_expired_and_tampered_repositories() {
    if !interop_enabled(
        "trust_root_update_fetches_through_tuf_and_refuses_expired_and_tampered_repositories",
    ) {
        return;
    }
    assert!(
        python().exists(),
        "python-tuf is missing: run scripts/install-interop-deps.sh"
    );
    let sb = Sandbox::new();
    // What the repository serves: a trusted root that is not the embedded one (the vector's).
    let served = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore-conformance/bundle-verify/intoto-with-custom-trust-root/trusted_root.json");
    let out_file = sb.path("etc/trusted_root.json");
    let update = |repo: &Path, url: &str| {
        sb.run(
            &[
                "trust-root",
                "update",
                "--tuf-url",
                url,
                "--tuf-root",
                repo.join("root.json").to_str().unwrap(),
                "--out",
                out_file.to_str().unwrap(),
                "--json",
            ],
            &[],
        )
    };

    // A good repository, whose root rotated once: followed from the anchor, written.
    let good = sb.path("good");
    make_repo(&good, &served, "rotated");
    let server = Server::start(good.join("metadata"));
    let out = update(&good, &server.url);
    drop(server);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["updated"], true);
    assert_eq!(v["tufRootVersion"], 2);
    assert_eq!(
        std::fs::read(&out_file).unwrap(),
        std::fs::read(&served).unwrap()
    );

    // The written file is what `verify --trusted-root` reads: the vector verifies with it.
    let case = served.parent().unwrap();
    let verified = sb.run(
        &[
            "verify",
            "--bundle",
            case.join("bundle.sigstore.json").to_str().unwrap(),
            "--trusted-root",
            out_file.to_str().unwrap(),
            "--certificate-identity",
            "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
            "--certificate-oidc-issuer",
            "https://token.actions.githubusercontent.com",
            case.join("artifact").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        verified.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // doctor reports the policy's trusted root and its age.
    std::fs::write(
        sb.path("policy.toml"),
        format!(
            "version = 1\n\n[protect]\nrefs = [\"refs/heads/main\"]\n\n[[signer]]\nname = \"ci\"\nissuer = \"https://token.actions.githubusercontent.com\"\nidentity = \"x\"\ntrusted_root = \"{}\"\n",
            out_file.display()
        ),
    )
    .unwrap();
    let doctor = sb.run(&["doctor", "--config", "policy.toml", "--json"], &[]);
    let report: serde_json::Value = serde_json::from_slice(&doctor.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&doctor.stderr)));
    let line = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "trusted-root")
        .unwrap_or_else(|| panic!("no trusted-root check: {report:#}"));
    assert_eq!(line["status"], "ok", "{line}");
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains(out_file.to_str().unwrap()) && message.contains("updated 0 day(s) ago"),
        "{message}"
    );

    // An expired repository and a tampered one: refused, the file left as it was.
    let before = std::fs::read(&out_file).unwrap();
    for (mode, code) in [("expired", "tuf-refresh"), ("tampered", "tuf-target")] {
        let dir = sb.path(mode);
        make_repo(&dir, &sigstore_root_file(&sb), mode);
        let server = Server::start(dir.join("metadata"));
        let out = update(&dir, &server.url);
        drop(server);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{mode}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["code"], code, "{mode}: {v}");
        assert_eq!(std::fs::read(&out_file).unwrap(), before, "{mode}");
    }

    // The good repository under another anchor: nothing it signed is trusted.
    let other = sb.path("other");
    make_repo(&other, &served, "good");
    let server = Server::start(good.join("metadata"));
    let out = sb.run(
        &[
            "trust-root",
            "update",
            "--tuf-url",
            &server.url,
            "--tuf-root",
            other.join("root.json").to_str().unwrap(),
            "--out",
            out_file.to_str().unwrap(),
        ],
        &[],
    );
    drop(server);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[tuf-refresh]"));
    assert_eq!(std::fs::read(&out_file).unwrap(), before);
}

/// The embedded public-good trusted root, as a file (what the refused repositories serve).
fn sigstore_root_file(sb: &Sandbox) -> PathBuf {
    let path = sb.path("public-good-trusted-root.json");
    std::fs::write(&path, sigstore_trust_root::SIGSTORE_PRODUCTION_TRUSTED_ROOT).unwrap();
    path
}

/// Rollback across runs: the metadata an update verified is kept (`--tuf-cache`, by default
/// FILE.tuf) and is the floor of the next update, so a repository that later serves older
/// metadata (valid, unexpired, signed by the same keys) is refused. The same old repository is
/// accepted by a client that never saw the newer one: the kept metadata is what refuses it.
#[test]
fn trust_root_update_refuses_a_repository_rolled_back_below_what_it_saw() {
    if !interop_enabled("trust_root_update_refuses_a_repository_rolled_back_below_what_it_saw") {
        return;
    }
    assert!(
        python().exists(),
        "python-tuf is missing: run scripts/install-interop-deps.sh"
    );
    let sb = Sandbox::new();
    let served = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sigstore-conformance/bundle-verify/intoto-with-custom-trust-root/trusted_root.json");
    let repo = sb.path("repo");
    make_repo(&repo, &served, "rollback");
    let anchor = repo.join("root.json");
    let out_file = sb.path("etc/trusted_root.json");
    let update = |metadata: &Path, cache: Option<&Path>| {
        let server = Server::start(metadata.to_path_buf());
        let mut args = vec![
            "trust-root".to_string(),
            "update".into(),
            "--tuf-url".into(),
            server.url.clone(),
            "--tuf-root".into(),
            anchor.display().to_string(),
            "--out".into(),
            out_file.display().to_string(),
            "--json".into(),
        ];
        if let Some(c) = cache {
            args.extend(["--tuf-cache".to_string(), c.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sb.run(&args, &[]);
        drop(server);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    let old = repo.join("old/metadata");

    // Version 1 alone is a valid repository.
    let (code, v) = update(&old, Some(&sb.path("fresh-cache")));
    assert_eq!(code, Some(0), "{v}");

    // Version 2, then version 1 again under the default cache (FILE.tuf): refused.
    let (code, v) = update(&repo.join("metadata"), None);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["tufCache"], format!("{}.tuf", out_file.display()));
    assert!(sb
        .path("etc/trusted_root.json.tuf/timestamp.json")
        .is_file());
    let before = std::fs::read(&out_file).unwrap();
    let (code, v) = update(&old, None);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["code"], "tuf-refresh", "{v}");
    assert!(v["error"].as_str().unwrap().contains("rollback"), "{v}");
    assert_eq!(std::fs::read(&out_file).unwrap(), before);
}
