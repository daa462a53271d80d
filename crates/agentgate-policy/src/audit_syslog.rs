//! Records that leave the machine: each audit record and each checkpoint also goes to the
//! local syslog socket (`[audit] syslog = true`) as an RFC 5424 message whose MSG is the
//! record's JSON line, byte for byte, so a central collector (rsyslog `omfwd`, journald upload)
//! holds what the server's file holds, and `audit verify --checkpoints` can check the file
//! against the collector's copy. The file stays the source of truth and is written first;
//! syslog being down never changes a decision, it is reported and recorded.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// RFC 5424 facility 13, "log audit".
const FACILITY_LOG_AUDIT: u8 = 13;
/// How long one message may wait for a full socket buffer.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// Records larger than this are sent as a stub naming the full line's digest: collectors
/// truncate long messages (rsyslog's default `maxMessageSize` is 8k; the README asks for 64k).
pub const MAX_MESSAGE_BYTES: usize = 60 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("syslog socket {path}: {source}")]
pub struct SyslogError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// What a message carries (its RFC 5424 MSGID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Record,
    Checkpoint,
}

impl MessageKind {
    fn msgid(self) -> &'static str {
        match self {
            MessageKind::Record => "record",
            MessageKind::Checkpoint => "checkpoint",
        }
    }
}

/// RFC 5424 severities used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Notice = 5,
    Informational = 6,
}

/// A connected local syslog socket.
pub struct Syslog {
    socket: UnixDatagram,
    path: PathBuf,
    hostname: String,
}

impl Syslog {
    /// Connect to the socket at `path` (a datagram socket, as `/dev/log` is). Fails when
    /// nothing listens there: the caller records that before writing the record.
    pub fn connect(path: &Path) -> Result<Syslog, SyslogError> {
        let err = |source| SyslogError {
            path: path.to_path_buf(),
            source,
        };
        let socket = UnixDatagram::unbound().map_err(err)?;
        socket.connect(path).map_err(err)?;
        socket.set_write_timeout(Some(SEND_TIMEOUT)).map_err(err)?;
        Ok(Syslog {
            socket,
            path: path.to_path_buf(),
            hostname: host_name(),
        })
    }

    /// Send one JSON line as an RFC 5424 message.
    pub fn send(
        &self,
        kind: MessageKind,
        severity: Severity,
        line: &str,
    ) -> Result<(), SyslogError> {
        let msg = format_message(
            kind,
            severity,
            &self.hostname,
            std::process::id(),
            chrono::Utc::now(),
            &stub_if_large(line),
        );
        self.socket
            .send(msg.as_bytes())
            .map(|_| ())
            .map_err(|source| SyslogError {
                path: self.path.clone(),
                source,
            })
    }
}

/// The RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`.
pub fn format_message(
    kind: MessageKind,
    severity: Severity,
    hostname: &str,
    pid: u32,
    time: chrono::DateTime<chrono::Utc>,
    msg: &str,
) -> String {
    let pri = u16::from(FACILITY_LOG_AUDIT) * 8 + severity as u16;
    format!(
        "<{pri}>1 {} {hostname} agentgate {pid} {} - {msg}",
        time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        kind.msgid()
    )
}

/// The line, or a stub naming its digest when it is too large for a collector.
fn stub_if_large(line: &str) -> std::borrow::Cow<'_, str> {
    if line.len() <= MAX_MESSAGE_BYTES {
        return line.into();
    }
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let pick = |k: &str| v.get(k).cloned().unwrap_or_default();
    serde_json::json!({
        "truncated": true,
        "bytes": line.len(),
        "line_digest": crate::audit::line_digest(line.as_bytes()),
        "seq": pick("seq"),
        "ref": pick("ref"),
        "decision": pick("decision"),
        "code": pick("code"),
    })
    .to_string()
    .into()
}

/// The host name as RFC 5424 allows it (printable US-ASCII), else the nil value `-` (also
/// what promotion records name this server by, unless the policy names it).
pub fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name = name.trim();
    if name.is_empty() || name.len() > 255 || !name.bytes().all(|b| (33..=126).contains(&b)) {
        "-".into()
    } else {
        name.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_header_and_stub() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let m = format_message(
            MessageKind::Checkpoint,
            Severity::Informational,
            "git1",
            42,
            t,
            "{\"a\":1}",
        );
        assert_eq!(
            m,
            "<110>1 2026-01-01T12:00:00.000000Z git1 agentgate 42 checkpoint - {\"a\":1}"
        );
        let big = format!("{{\"seq\":7,\"x\":\"{}\"}}", "y".repeat(MAX_MESSAGE_BYTES));
        let stub: serde_json::Value = serde_json::from_str(&stub_if_large(&big)).unwrap();
        assert_eq!(stub["seq"], 7);
        assert_eq!(stub["truncated"], true);
        assert_eq!(stub_if_large("{}"), "{}");
    }
}
