//! The hook under load and on a full disk: 50 concurrent real pushes to one server end with one
//! whole audit record per decision and a clean `audit verify`; an audit log that cannot be
//! written refuses the push (`audit-failed`) instead of accepting it unrecorded.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

/// What one of the concurrent pushes does, and what must come of it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// An agent commit to a protected branch with no attestation: refused.
    Unattested,
    /// An agent commit to a protected branch, attested in `attestations_dir`: accepted.
    Attested,
    /// A human commit to a protected branch: accepted.
    Human,
    /// An agent commit to an unprotected branch: accepted.
    Unprotected,
}

impl Kind {
    fn of(i: usize) -> Kind {
        [
            Kind::Unattested,
            Kind::Attested,
            Kind::Human,
            Kind::Unprotected,
        ][i % 4]
    }

    fn code(self) -> &'static str {
        match self {
            Kind::Unattested => "agent-commit-unattested",
            Kind::Attested => "attested",
            Kind::Human => "no-agent-commits",
            Kind::Unprotected => "unprotected",
        }
    }
}

fn audit_verify(env: &Env, log: &Path) -> (i32, serde_json::Value) {
    let out = env.agentgate(
        env.path(),
        &["audit", "verify", "--json", log.to_str().unwrap()],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("json: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

#[test]
fn fifty_concurrent_pushes_one_whole_record_each() {
    const N: usize = 50;
    let env = Env::new();
    let out = env.agentgate(
        env.path(),
        &["keygen", "--out", env.path().join("gate").to_str().unwrap()],
    );
    assert!(out.status.success());
    let att_dir = env.path().join("attestations");
    std::fs::create_dir(&att_dir).unwrap();
    let policy = format!(
        "{POLICY}[attest]\nattestations_dir = \"{}\"\n[[signer]]\nname = \"ci-gate\"\npublic_key = \"{}\"\n",
        att_dir.display(),
        env.path().join("gate.pub").display()
    );
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    assert!(env.push(&work, &["origin", "main"]).0);
    let artifact = env.path().join("app.bin");
    std::fs::write(&artifact, b"artifact\n").unwrap();

    let mut clones: Vec<(PathBuf, Kind, String)> = Vec::new();
    for i in 0..N {
        let w = env.clone(&server, &format!("c{i}"));
        env.git_ok(&w, &["checkout", "-q", "main"]);
        let kind = Kind::of(i);
        let id = match kind {
            Kind::Human => env.commit(&w, "a.txt", &format!("Human {i}")),
            _ => env.agent_commit(&w, "a.txt", &format!("Agent {i}")),
        };
        if kind == Kind::Attested {
            let out_dir = env.path().join(format!("signed-{i}"));
            let out = env.agentgate(
                env.path(),
                &[
                    "sign",
                    "--key",
                    env.path().join("gate.key").to_str().unwrap(),
                    "--repo",
                    w.to_str().unwrap(),
                    "--commit",
                    &id,
                    "--artifact",
                    artifact.to_str().unwrap(),
                    "--out",
                    out_dir.to_str().unwrap(),
                    "--test-result",
                    "passed",
                ],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for f in ["provenance", "test-result"] {
                std::fs::copy(
                    out_dir.join(format!("{f}.sigstore.json")),
                    att_dir.join(format!("{i}-{f}.json")),
                )
                .unwrap();
            }
        }
        clones.push((w, kind, id));
    }
    let target = |i: usize, kind: Kind| match kind {
        Kind::Unprotected => format!("refs/heads/topic/{i}"),
        _ => format!("refs/heads/release/{i}"),
    };

    let start = Instant::now();
    let results: Vec<(bool, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .enumerate()
            .map(|(i, (w, kind, _))| {
                let env = &env;
                let refname = target(i, *kind);
                s.spawn(move || env.push(w, &["origin", &format!("HEAD:{refname}")]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let took = start.elapsed();
    eprintln!("{N} concurrent pushes in {took:?}");
    assert!(took < Duration::from_secs(300), "took {took:?}");

    for (i, ((ok, err), (_, kind, id))) in results.iter().zip(&clones).enumerate() {
        let refname = target(i, *kind);
        let on_server = env.rev(&server, &refname);
        if *kind == Kind::Unattested {
            assert!(!ok && refused_with(err, kind.code()), "{i}: {err}");
            assert_eq!(on_server, None, "{refname} was created");
        } else {
            assert!(ok, "{i} ({kind:?}): {err}");
            assert_eq!(on_server.as_deref(), Some(id.as_str()), "{refname}");
        }
    }

    let log = server.join("agentgate/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.ends_with('\n'));
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    // The base push, then exactly one record per push, each with its own decision.
    assert_eq!(records.len(), 1 + N, "{text}");
    for (i, (_, kind, id)) in clones.iter().enumerate() {
        let refname = target(i, *kind);
        let mine: Vec<&serde_json::Value> = records
            .iter()
            .filter(|r| r["ref"] == refname.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{refname}");
        assert_eq!(mine[0]["code"], kind.code(), "{refname}: {}", mine[0]);
        assert_eq!(mine[0]["new"], id.as_str());
    }
    let (code, v) = audit_verify(&env, &log);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["records"], 1 + N);
    // Refused pushes' objects were dropped by git with the quarantine: those refusals cannot be
    // re-derived, and are not problems.
    let refused = (0..N).filter(|&i| Kind::of(i) == Kind::Unattested).count();
    assert_eq!(v["rederived"], 1 + N - refused, "{v}");
    assert_eq!(v["problems"].as_array().unwrap().len(), 0, "{v}");
}

/// A small tmpfs mounted for the test (root and a sandbox that allows mounts), unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Fill the file system holding `dir` until fewer than `leave` bytes are free.
fn fill(dir: &Path, leave: usize) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 512];
    // Write until the disk is full, then give back what should stay free.
    while f.write_all(&chunk).is_ok() {}
    let _ = f.flush();
    drop(f);
    let len = std::fs::metadata(dir.join("filler")).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("filler"))
        .unwrap();
    f.set_len(len.saturating_sub(leave as u64)).unwrap();
}

#[test]
fn audit_log_on_a_full_disk_refuses() {
    let env = Env::new();
    let mnt = env.path().join("small");
    let tmpfs = Tmpfs::mount(&mnt, "64k");
    // Without a mount, /dev/full: every write fails with ENOSPC.
    let log = match &tmpfs {
        Some(_) => mnt.join("audit.jsonl"),
        None => {
            eprintln!("tmpfs mount not permitted here: using /dev/full as the audit log");
            std::fs::create_dir_all(&mnt).unwrap();
            let link = mnt.join("audit.jsonl");
            std::os::unix::fs::symlink("/dev/full", &link).unwrap();
            link
        }
    };
    let policy = format!("{POLICY}[audit]\nlog = \"{}\"\n", log.display());
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    if tmpfs.is_none() {
        let (ok, err) = env.push(&work, &["origin", "main"]);
        assert!(!ok && refused_with(&err, "audit-failed"), "{err}");
        assert_eq!(env.rev(&server, "refs/heads/main"), None);
        skip(
            "audit_log_on_a_full_disk_refuses",
            "the partly-full disk needs a tmpfs mount (root); only /dev/full was tried",
        );
        return;
    }
    // A full disk before anything was logged: no page is left for the log.
    fill(&mnt, 0);
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(!ok, "accepted with a full disk: {err}");
    assert!(refused_with(&err, "audit-failed"), "{err}");
    assert_eq!(env.rev(&server, "refs/heads/main"), None);
    assert_eq!(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0), 0);

    // Space for one page of log, then the disk is full again: pushes are accepted while their
    // records fit in the log's last page, and the first record that does not fit is refused
    // (a short write leaves a torn tail).
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    fill(&mnt, 0);
    let mut accepted_on_full_disk = 0;
    let refused_err = loop {
        let before = env.rev(&server, "refs/heads/main");
        let len = std::fs::metadata(&log).unwrap().len();
        env.commit(&work, "a.txt", &format!("Human {accepted_on_full_disk}"));
        let (ok, err) = env.push(&work, &["origin", "main"]);
        if !ok {
            assert_eq!(env.rev(&server, "refs/heads/main"), before, "the ref moved");
            let grew = std::fs::metadata(&log).unwrap().len() - len;
            eprintln!("refused after {accepted_on_full_disk} accepted; the log grew by {grew} bytes (torn tail)");
            break err;
        }
        // Accepted: its record is whole and last.
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.ends_with('\n'));
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(
            last["new"].as_str(),
            env.rev(&server, "refs/heads/main").as_deref()
        );
        accepted_on_full_disk += 1;
        assert!(
            accepted_on_full_disk < 20,
            "a 4 KiB page holds fewer records"
        );
    };
    assert!(refused_with(&refused_err, "audit-failed"), "{refused_err}");

    // Space again: the next push is accepted and its record is whole, on a line of its own.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text.lines().last().unwrap();
    let rec: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(rec["code"], "no-agent-commits");
    let (_, v) = audit_verify(&env, &log);
    eprintln!("audit verify after the full disk: {v}");
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    // The torn tail of the short write is reported as not a record, and nothing else.
    assert!(problems.iter().all(|c| *c == "not-a-record"), "{v}");
    drop(tmpfs);
}
