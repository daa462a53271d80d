//! The tools a build used, for the provenance: each program's resolved path, digest and
//! version, asked inside the sandbox the way the build runs it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentgate_formats::statement::{sha256_file, ResourceDescriptor, DIGEST_SHA256};
use serde_json::json;

use super::sandbox::{sandbox_unavailable_error, which, Launcher};
use crate::signing::invocation_id;

/// How long `PROGRAM --version` may take before it is abandoned.
const VERSION_TIMEOUT: Duration = Duration::from_secs(5);

/// Run `cmd` (stdout and stderr piped) for at most `limit`: its status and output (each capped
/// at `cap` bytes), or None if it could not start or ran out of time (it is killed then).
fn output_within(
    mut cmd: Command,
    limit: Duration,
    cap: u64,
) -> Option<(std::process::ExitStatus, Vec<u8>, Vec<u8>)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let drain = |mut from: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = from.by_ref().take(cap).read_to_end(&mut buf);
            // Past the cap: keep reading so the child never blocks on a full pipe.
            let _ = std::io::copy(&mut from, &mut std::io::sink());
            let _ = tx.send(buf);
        });
        rx
    };
    let out = drain(Box::new(child.stdout.take()?));
    let err = drain(Box::new(child.stderr.take()?));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let grace = Duration::from_millis(200);
    let (out, err) = (out.recv_timeout(grace).ok()?, err.recv_timeout(grace).ok()?);
    Some((status?, out, err))
}

/// Versions of `programs` (first line of `PROGRAM --version`, if it exits 0 within
/// [`VERSION_TIMEOUT`]), asked the way the build runs them, since a program on PATH can be the
/// agent's own (node_modules/.bin): one start of the sandbox for all of them, which is also
/// the check that the sandbox works here ([`SANDBOX_UNAVAILABLE_HELP`] if not).
fn tool_versions(
    launcher: &Launcher,
    dir: &Path,
    programs: &[PathBuf],
) -> anyhow::Result<Vec<Option<String>>> {
    if launcher.bwrap.is_some()
        && which("bwrap", launcher.env.get("PATH").map(OsString::as_os_str)).is_none()
    {
        return Err(sandbox_unavailable_error(
            "bwrap is not installed (not found on PATH)",
        ));
    }
    // Markers a program's output cannot forge.
    let n = invocation_id();
    let script = format!(
        "for t do printf '\\n@{n} %s\\n' \"$t\"; \
         if command -v timeout >/dev/null; then timeout {secs} \"$t\" --version; \
         else \"$t\" --version; fi >\"$TMPDIR/.version-{n}\" 2>&1 </dev/null; rc=$?; \
         head -c 65536 \"$TMPDIR/.version-{n}\"; rm -f \"$TMPDIR/.version-{n}\"; \
         printf '\\n@{n}-status %s\\n' \"$rc\"; done; printf '@{n}-end\\n'",
        secs = VERSION_TIMEOUT.as_secs()
    );
    let mut argv = vec!["sh".to_string(), "-c".to_string(), script, "sh".to_string()];
    argv.extend(programs.iter().filter_map(|p| p.to_str()).map(String::from));
    let limit = VERSION_TIMEOUT * (u32::try_from(programs.len()).unwrap_or(u32::MAX) + 2);
    let out = output_within(launcher.command(None, dir, &argv), limit, 4 << 20);
    let end = format!("@{n}-end\n");
    let stdout = match out {
        Some((status, stdout, _)) if status.success() && stdout.ends_with(end.as_bytes()) => stdout,
        other if launcher.bwrap.is_some() => {
            let reason = match other {
                Some((status, _, stderr)) => format!(
                    "`bwrap ... sh` failed ({status}): {}",
                    String::from_utf8_lossy(&stderr).trim()
                ),
                None => "bwrap did not start, or did not finish in time".to_string(),
            };
            return Err(sandbox_unavailable_error(&reason));
        }
        _ => return Ok(vec![None; programs.len()]),
    };
    let text = String::from_utf8_lossy(&stdout);
    let mut versions = Vec::new();
    for p in programs {
        let Some(name) = p.to_str() else {
            versions.push(None);
            continue;
        };
        let start = format!("\n@{n} {name}\n");
        let version = text.find(&start).and_then(|i| {
            let body = &text[i + start.len()..];
            let stop = body.find(&format!("\n@{n}-status "))?;
            let ok = body[stop..].starts_with(&format!("\n@{n}-status 0\n"));
            ok.then(|| {
                body[..stop]
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(|l| l.chars().take(200).collect::<String>())
            })
            .flatten()
        });
        versions.push(version);
    }
    Ok(versions)
}

/// The tools the build used: resolved path, file digest and version, as builder dependencies.
pub(super) fn tool_descriptors(
    names: &[String],
    launcher: &Launcher,
    dir: &Path,
) -> anyhow::Result<Vec<ResourceDescriptor>> {
    let mut found: Vec<(&String, PathBuf)> = Vec::new();
    for name in names {
        if found.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if let Some(path) = which(name, launcher.env.get("PATH").map(OsString::as_os_str)) {
            found.push((name, path.canonicalize().unwrap_or(path)));
        }
    }
    let paths: Vec<PathBuf> = found.iter().map(|(_, p)| p.clone()).collect();
    let versions = tool_versions(launcher, dir, &paths)?;
    Ok(found
        .into_iter()
        .zip(versions)
        .filter_map(|((name, path), version)| {
            let sha256 = sha256_file(&path).ok()?;
            Some(ResourceDescriptor {
                name: Some(name.clone()),
                uri: Some(format!("file://{}", path.display())),
                digest: BTreeMap::from([(DIGEST_SHA256.to_string(), sha256)]),
                annotations: version.map(|v| json!({ "version": v })),
                ..Default::default()
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_of_a_real_tool_and_of_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([
            ("PATH".to_string(), OsString::from("/usr/bin:/bin")),
            ("TMPDIR".to_string(), dir.path().as_os_str().to_owned()),
        ]);
        let launcher = Launcher::new(None, env).unwrap();
        let names = [
            "git",
            "no-such-tool-anywhere",
            "./script.sh",
            "git",
            "false",
        ]
        .map(String::from);
        let d = tool_descriptors(&names, &launcher, dir.path()).unwrap();
        // Found once each; `false --version` exits 1: a digest but no version.
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].name.as_deref(), Some("git"));
        assert!(d[0].annotations.as_ref().unwrap()["version"]
            .as_str()
            .unwrap()
            .starts_with("git version"));
        assert_eq!(d[0].digest[DIGEST_SHA256].len(), 64);
        assert_eq!(d[1].name.as_deref(), Some("false"));
        assert!(d[1].annotations.is_none());
    }
}
