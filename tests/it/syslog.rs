//! Records that leave the machine: a real rsyslogd (Debian's rsyslog), started by the test on
//! its own socket and output file, receives every audit record and checkpoint as RFC 5424;
//! its copy is byte for byte the file's, and shows a truncation the server's disk hides. With
//! syslog down the push is still decided, the file record written, and the failure said in the
//! push's output and in the record.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::promotion::{setup, Setup};

/// rsyslogd in the foreground; killed when dropped (no process outlives the test).
struct Rsyslog {
    child: Child,
    out: PathBuf,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rsyslogd() -> Option<&'static str> {
    let path = "/usr/sbin/rsyslogd";
    if Path::new(path).exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("rsyslogd is missing (Debian package rsyslog); run scripts/install-test-deps.sh");
    }
    eprintln!("SKIP syslog: rsyslogd not found (Debian package rsyslog; scripts/install-test-deps.sh installs it)");
    None
}

/// Start rsyslogd listening on `dir/log.sock`, writing every message to `dir/out.log` as
/// "MSGID APP-NAME FACILITY SEVERITY MSG".
fn start(bin: &str, dir: &Path) -> Rsyslog {
    let sock = dir.join("log.sock");
    let out = dir.join("out.log");
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" UseSpecialParser="off" ParseHostname="on" RateLimit.Interval="0")
template(name="agentgate" type="string" string="%msgid% %app-name% %syslogfacility% %syslogseverity% %msg%\n")
*.* action(type="omfile" file="{out}" template="agentgate")
"#,
            dir = dir.display(),
            sock = sock.display(),
            out = out.display()
        ),
    )
    .unwrap();
    let _ = std::fs::remove_file(&sock);
    let child = Command::new(bin)
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start rsyslogd");
    let r = Rsyslog { child, out };
    let start = Instant::now();
    while !sock.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "rsyslogd did not create {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    r
}

/// The collector's lines for `msgid`, once it has at least `n` of them.
fn wait_for(r: &Rsyslog, msgid: &str, n: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&r.out).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{msgid} ")))
            .map(str::to_string)
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the collector has {} {msgid} line(s), expected {n}:\n{text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The JSON a collector line carries.
fn payload(line: &str) -> &str {
    &line[line.find('{').unwrap()..]
}

fn audit_verify(s: &Setup, extra: &[&str]) -> (i32, serde_json::Value) {
    let key = s.env.path().join("server.pub");
    let log = s.server.join("agentgate/audit.jsonl");
    let mut args = vec!["audit", "verify", "--json", "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(log.to_str().unwrap());
    let out = s.env.agentgate(s.env.path(), &args);
    let v = serde_json::from_slice(&out.stdout).unwrap();
    (out.status.code().unwrap(), v)
}

#[test]
fn records_and_checkpoints_reach_a_real_rsyslog_and_syslog_down_is_recorded() {
    let Some(bin) = rsyslogd() else { return };
    let dir = tempfile::tempdir().unwrap();
    let r = start(bin, dir.path());
    let extra = format!(
        "\n[audit]\nsyslog = true\nsyslog_socket = \"{}\"\n",
        dir.path().join("log.sock").display()
    );
    let s = setup(&extra);
    s.env.agent_commit(&s.work, "a.txt", "Agent change");
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    assert!(!ok && err.contains("[agent-commit-unattested]"), "{err}");
    assert!(s.env.push(&s.work, &["origin", "HEAD:refs/heads/topic"]).0);

    // Every record and checkpoint, byte for byte, as RFC 5424 (facility 13 "log audit").
    let log = s.server.join("agentgate/audit.jsonl");
    let cps = s.server.join("agentgate/audit.jsonl.checkpoints");
    let file_records: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let file_cps: Vec<String> = std::fs::read_to_string(&cps)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!((file_records.len(), file_cps.len()), (3, 3));
    let got = wait_for(&r, "record", 3);
    let got_cps = wait_for(&r, "checkpoint", 3);
    assert_eq!(
        got.iter().map(|l| payload(l)).collect::<Vec<_>>(),
        file_records.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(
        got_cps.iter().map(|l| payload(l)).collect::<Vec<_>>(),
        file_cps.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let refused = got
        .iter()
        .find(|l| l.contains("agent-commit-unattested"))
        .unwrap();
    assert!(
        refused.starts_with("record agentgate 13 5 "),
        "a refusal is facility 13, severity notice: {refused}"
    );
    assert!(got[0].starts_with("record agentgate 13 6 "), "{}", got[0]);

    // The collector's copy shows the truncation the server's disk hides.
    let keep = |p: &Path, l: &[String]| {
        std::fs::write(p, l.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap()
    };
    keep(&log, &file_records[..2]);
    keep(&cps, &file_cps[..2]);
    let collector = r.out.to_str().unwrap().to_string();
    assert_eq!(audit_verify(&s, &[]).0, 0);
    let (code, v) = audit_verify(&s, &["--checkpoints", &collector]);
    assert_eq!(code, 1);
    assert_eq!(v["problems"][0]["code"], "records-removed", "{v}");
    keep(&log, &file_records);
    keep(&cps, &file_cps);
    assert_eq!(audit_verify(&s, &["--checkpoints", &collector]).0, 0);

    // Syslog down: still decided, the record written and saying so, the pusher told.
    drop(r);
    s.env.commit(&s.work, "b.txt", "Human change");
    let (ok, err) = s.env.push(&s.work, &["origin", "HEAD:refs/heads/topic"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("agentgate: warning: the audit record was not sent to syslog"),
        "{err}"
    );
    let records = s.env.audit(&s.server);
    assert_eq!(records.len(), 4);
    let last = records.last().unwrap();
    assert_eq!(last["decision"], "accept");
    assert!(
        last["syslog_error"]
            .as_str()
            .unwrap()
            .starts_with("unreachable: "),
        "{last}"
    );
    assert!(records[..3].iter().all(|r| r.get("syslog_error").is_none()));
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    assert!(!ok && err.contains("[agent-commit-unattested]"), "{err}");
    assert_eq!(audit_verify(&s, &[]).0, 0);
}
