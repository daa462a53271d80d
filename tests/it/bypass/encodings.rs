//! Class 5 (repro-5): a commit with an `encoding` header is shown by `git log` decoded (iconv,
//! over the whole object: message, author and committer). An agent marker visible only after
//! decoding is detected, and the evidence names the decoded marker; what agentgate cannot decode
//! faithfully is refused `[encoding-unsupported]` on a protected ref (never counted as human)
//! and accepted on an unprotected branch.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::bypass::fixture::*;

/// repro-5's GitHub bot rule, plus two local rules whose markers are not ASCII (a team's own
/// bot identity, and a Japanese "AI-generated" message marker).
const RULES: &str = r#"[[detect.rule]]
id = "github-bots"
author_email = '\[bot\]@users\.noreply\.github\.com$'
[[detect.rule]]
id = "office-bot"
author_name = '^Büro-Bot$'
[[detect.rule]]
id = "ja-generated"
message = 'AI生成'
"#;

const CLAUDE_DECODED: &str = "Co-authored-by: Claude <noreply@anthropic.com>";
const COPILOT: &str = "copilot-swe-agent[bot]";

fn fx(fmt: Fmt) -> Fx {
    Fx::new(Options {
        fmt,
        policy_extra: RULES,
        ..Options::default()
    })
}

/// `text` converted by iconv from UTF-8 to `encoding`.
fn iconv(text: &str, encoding: &str) -> Vec<u8> {
    let mut child = Command::new("iconv")
        .args(["-f", "UTF-8", "-t", encoding])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("iconv (libc-bin) is needed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "iconv to {encoding}");
    out.stdout
}

/// A commit on `parent` (tree unchanged) whose header lines and message are raw bytes.
fn raw(fx: &Fx, parent: &str, author: &[u8], encoding: &str, message: &[u8]) -> String {
    let tree = fx.tree_of(parent);
    let mut b = Vec::new();
    b.extend_from_slice(format!("tree {tree}\nparent {parent}\nauthor ").as_bytes());
    b.extend_from_slice(author);
    // A negative zone: UTF-7 would read a '+' in the headers as a shift.
    b.extend_from_slice(b" 1767610800 -0100\ncommitter Ada <ada@example.com> 1767610800 -0100\n");
    b.extend_from_slice(format!("encoding {encoding}\n\n").as_bytes());
    b.extend_from_slice(message);
    fx.raw_commit(&b)
}

/// What `git log` shows for `commit`: author, and trailers.
fn git_shows(fx: &Fx, commit: &str) -> String {
    fx.git(&[
        "log",
        "-1",
        "--format=%an <%ae>%n%(trailers:only,unfold)%n%B",
        commit,
    ])
}

/// The push of main over `agents` is refused as unattested agent work; the output shows each
/// decoded marker in `evidence`, the audit lists every agent commit, and main did not move.
#[track_caller]
fn assert_agents_refused(fx: &Fx, agents: &[&str], evidence: &[&str]) {
    let p = fx.push(&["origin", "main"]);
    assert_refused(&p, "agent-commit-unattested");
    for e in evidence {
        assert!(
            p.out.contains(e),
            "the evidence shows the decoded {e:?}:\n{p}"
        );
    }
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    let rec = fx.last_audit("refs/heads/main");
    let found: Vec<&str> = rec["agent_commits"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["commit"].as_str()).collect())
        .unwrap_or_default();
    for a in agents {
        assert!(found.contains(a), "audit lists agent commit {a}: {rec}");
    }
}

/// repro-5 exactly: `git -c i18n.commitEncoding=UTF-7 commit` with a UTF-7 Claude trailer, then
/// a commit whose UTF-7 author is GitHub's Copilot agent.
fn utf7_repro5(fmt: Fmt) {
    let fx = fx(fmt);
    let commit = |name: &str, email: &str, args: &[&str]| {
        let out = fx
            .env
            .cmd("git")
            .current_dir(&fx.work)
            .args([
                "-c",
                "i18n.commitEncoding=UTF-7",
                "commit",
                "-q",
                "--allow-empty",
            ])
            .args(args)
            .env("GIT_AUTHOR_NAME", name)
            .env("GIT_AUTHOR_EMAIL", email)
            .env("GIT_AUTHOR_DATE", "2026-01-05T10:00:00-0100")
            .env("GIT_COMMITTER_DATE", "2026-01-05T10:00:00-0100")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        fx.git(&["rev-parse", "HEAD"])
    };
    let claude = commit(
        "Ada",
        "ada@example.com",
        &[
            "-m",
            "Add feature",
            "-m",
            "Generated with +AFs-Claude Code+AF0-(https://claude.com/claude-code)",
            "-m",
            "Co-authored-by: Claude +ADw-noreply+AEA-anthropic.com+AD4-",
        ],
    );
    let copilot = commit(
        "copilot-swe-agent+AFs-bot+AF0-",
        "198982749+-copilot-swe-agent+AFs-bot+AF0AQA-users.noreply.github.com",
        &["-m", "Bot change"],
    );
    assert!(git_shows(&fx, &claude).contains(CLAUDE_DECODED));
    assert!(git_shows(&fx, &copilot).starts_with(COPILOT));
    assert_agents_refused(&fx, &[&claude, &copilot], &[CLAUDE_DECODED, COPILOT]);
}
per_format!(utf7_repro5:
    encodings_utf7_repro5_sha1 => Sha1,
    encodings_utf7_repro5_sha256 => Sha256,
);

/// ISO-2022-JP: an `ESC ( B` (switch to ASCII, a no-op for iconv) inside every marker hides
/// the Claude trailer and the Copilot author from a byte-level reading.
fn iso2022jp_hidden_markers(fmt: Fmt) {
    let fx = fx(fmt);
    let esc = "\x1b(B";
    let claude = raw(
        &fx,
        &fx.base,
        b"Ada <ada@example.com>",
        "ISO-2022-JP",
        format!("Add feature\n\nCo-au{esc}thored-by: Cl{esc}aude <noreply@anth{esc}ropic.com>\n")
            .as_bytes(),
    );
    let copilot = raw(
        &fx,
        &claude,
        format!("cop{esc}ilot-swe-agent[bot] <198982749+Cop{esc}ilot@users.noreply.github.com>")
            .as_bytes(),
        "ISO-2022-JP",
        b"Bot change\n",
    );
    fx.git(&["reset", "-q", "--hard", &copilot]);
    assert!(git_shows(&fx, &claude).contains(CLAUDE_DECODED));
    assert!(git_shows(&fx, &copilot).starts_with(COPILOT));
    assert_agents_refused(&fx, &[&claude, &copilot], &[CLAUDE_DECODED, COPILOT]);
}
per_format!(iso2022jp_hidden_markers:
    encodings_iso2022jp_hidden_trailer_and_author_sha1 => Sha1,
    encodings_iso2022jp_hidden_trailer_and_author_sha256 => Sha256,
);

/// Shift_JIS: the Japanese marker exists only in the decoded message.
fn shift_jis_marker(fmt: Fmt) {
    let fx = fx(fmt);
    let c = raw(
        &fx,
        &fx.base,
        b"Ada <ada@example.com>",
        "Shift_JIS",
        &iconv("AI生成のコードを追加\n\n本文です。\n", "SHIFT_JIS"),
    );
    fx.git(&["reset", "-q", "--hard", &c]);
    assert!(git_shows(&fx, &c).contains("AI生成"));
    assert_agents_refused(&fx, &[&c], &["AI生成"]);
}
per_format!(shift_jis_marker:
    encodings_shift_jis_marker_visible_only_decoded_sha1 => Sha1,
    encodings_shift_jis_marker_visible_only_decoded_sha256 => Sha256,
);

/// ISO-8859-1: the author name is decoded too (`git log` re-encodes the whole object).
#[test]
fn encodings_latin1_author_visible_only_decoded_sha1() {
    let fx = fx(Fmt::Sha1);
    let mut author = iconv("Büro-Bot", "ISO-8859-1");
    author.extend_from_slice(b" <buero-bot@example.com>");
    let c = raw(&fx, &fx.base, &author, "ISO-8859-1", b"Nightly update\n");
    fx.git(&["reset", "-q", "--hard", &c]);
    assert!(git_shows(&fx, &c).starts_with("Büro-Bot"));
    assert_agents_refused(&fx, &[&c], &["Büro-Bot"]);
}

/// glibc's alias `UTF7`: decoded as git does, or refused as undecodable; never human.
#[test]
fn encodings_utf7_alias_name_sha1() {
    let fx = fx(Fmt::Sha1);
    let c = raw(
        &fx,
        &fx.base,
        b"Ada <ada@example.com>",
        "UTF7",
        b"Add feature\n\nCo-authored-by: Claude +ADw-noreply+AEA-anthropic.com+AD4-\n",
    );
    fx.git(&["reset", "-q", "--hard", &c]);
    assert!(git_shows(&fx, &c).contains(CLAUDE_DECODED));
    let p = fx.push(&["origin", "main"]);
    assert_refused_any(&p, &["agent-commit-unattested", "encoding-unsupported"]);
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
}

/// An encoding name iconv does not know, and bytes invalid in the declared encoding: refused
/// `[encoding-unsupported]` on main, accepted on an unprotected branch.
fn undecodable(fmt: Fmt) {
    let fx = fx(fmt);
    let bogus = raw(
        &fx,
        &fx.base,
        b"Ada <ada@example.com>",
        "X-NOPE",
        b"Routine update\n",
    );
    let invalid = raw(
        &fx,
        &fx.base,
        b"Ada <ada@example.com>",
        "Shift_JIS",
        b"Routine update \xa0\xff\n",
    );
    for (c, what) in [(&bogus, "unknown encoding"), (&invalid, "invalid bytes")] {
        let p = fx.push(&["origin", &format!("{c}:refs/heads/main")]);
        assert_refused(&p, "encoding-unsupported");
        fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
        let rec = fx.last_audit("refs/heads/main");
        assert_eq!(rec["code"], "encoding-unsupported", "{what}: {rec}");
        let topic = format!("refs/heads/topic-{}", &c[..8]);
        let p = fx.push(&["origin", &format!("{c}:{topic}")]);
        assert_accepted(&p);
        fx.assert_server_ref(&topic, Some(c), &p);
    }
}
per_format!(undecodable:
    encodings_bogus_name_and_invalid_bytes_sha1 => Sha1,
    encodings_bogus_name_and_invalid_bytes_sha256 => Sha256,
);

/// Positive control: human commits in Latin-1 and Shift_JIS, with no agent marker.
fn human_latin1_and_shift_jis(fmt: Fmt) {
    let fx = fx(fmt);
    let mut author = iconv("José Müller", "ISO-8859-1");
    author.extend_from_slice(b" <jose@example.com>");
    let latin1 = raw(
        &fx,
        &fx.base,
        &author,
        "ISO-8859-1",
        &iconv("Corrigé: l'entrée du café\n", "ISO-8859-1"),
    );
    let sjis = raw(
        &fx,
        &latin1,
        b"Ada <ada@example.com>",
        "Shift_JIS",
        &iconv("日本語のメッセージを修正\n", "SHIFT_JIS"),
    );
    let p = fx.push(&["origin", &format!("{sjis}:refs/heads/main")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&sjis), &p);
}
per_format!(human_latin1_and_shift_jis:
    encodings_human_latin1_and_shift_jis_are_accepted_sha1 => Sha1,
    encodings_human_latin1_and_shift_jis_are_accepted_sha256 => Sha256,
);
