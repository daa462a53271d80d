//! Differential test: `agentgate_policy::trailers::parse` against real git's
//! `git log --format='%(trailers:only,unfold)'` on thousands of generated and hand-written
//! commit messages, under several repository configs.
//!
//! All commits of a config variant go into one repository through one `git fast-import`
//! stream (`data <len>` keeps messages byte-exact: no cleanup, no added newline), and one
//! `git log` prints every commit's trailers with control-character delimiters.

use agentgate_policy::trailers::{parse, TrailerConfig};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Config variants: each gets its own repository and the whole corpus.
const VARIANTS: &[(&str, &[(&str, &str)])] = &[
    ("default", &[]),
    (
        "separators-and-alias",
        &[
            ("trailer.separators", ":#"),
            ("trailer.foo.key", "Reviewed-by"),
        ],
    ),
    (
        "comment-char-and-aliases",
        &[
            ("core.commentChar", ";"),
            ("trailer.Ack.ifexists", "add"),
            ("trailer.bar.unknownvariable", "1"),
            ("trailer.co.key", "Co-authored-by"),
        ],
    ),
    // git 2.47: `auto` after a comment string leaves that string in place.
    (
        "comment-string-then-auto",
        &[("core.commentString", "//"), ("core.commentChar", "auto")],
    ),
];

const GENERATED: usize = 6000;
const SOUP: usize = 3000;

/// A git command isolated from the developer's config and environment.
fn git(dir: &Path, home: &Path) -> Command {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_DATE", "1700000000 +0000")
        .env("GIT_COMMITTER_DATE", "1700000000 +0000")
        .env("LC_ALL", "C");
    cmd
}

fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Vec<u8> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn git");
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        std::thread::spawn(move || {
            use std::io::Write;
            pipe.write_all(&data).expect("write to git");
        })
    });
    let out = child.wait_with_output().expect("wait for git");
    if let Some(w) = writer {
        w.join().expect("stdin writer");
    }
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Creates a repository with `config`, commits every message, and returns what git's
/// `%(trailers:only,unfold)` says for each, in corpus order, plus our config read via git2.
fn git_trailers(
    home: &Path,
    name: &str,
    config: &[(&str, &str)],
    corpus: &[String],
) -> (Vec<Pairs>, TrailerConfig) {
    let repo = home.join(name);
    std::fs::create_dir(&repo).expect("mkdir repo");
    let mut init = git(&repo, home);
    init.args(["init", "-q", "-b", "main"]);
    run(init, None);
    for (k, v) in config {
        let mut c = git(&repo, home);
        c.args(["config", k, v]);
        run(c, None);
    }

    let mut stream = Vec::new();
    for msg in corpus {
        stream.extend_from_slice(b"commit refs/heads/main\n");
        stream.extend_from_slice(b"committer T <t@example.com> 1700000000 +0000\n");
        stream.extend_from_slice(format!("data {}\n", msg.len()).as_bytes());
        stream.extend_from_slice(msg.as_bytes());
        stream.push(b'\n');
    }
    let mut fi = git(&repo, home);
    fi.args(["fast-import", "--quiet"]);
    run(fi, Some(stream));

    let mut log = git(&repo, home);
    log.args([
        "log",
        "--reverse",
        "--format=%H%x00%(trailers:only,unfold,key_value_separator=%x01,separator=%x02)%x03",
        "main",
    ]);
    let out = run(log, None);
    let mut records: Vec<&[u8]> = out.split(|&b| b == 0x03).collect();
    // Each record is followed by the format's "\n"; the last split piece is just that.
    assert_eq!(
        records.pop(),
        Some(&b"\n"[..]),
        "unexpected end of git log output"
    );
    let parsed = records
        .iter()
        .map(|rec| {
            let rec = rec.strip_prefix(b"\n").unwrap_or(rec);
            let nul = rec.iter().position(|&b| b == 0).expect("hash delimiter");
            let trailers = &rec[nul + 1..];
            if trailers.is_empty() {
                return Vec::new();
            }
            trailers
                .split(|&b| b == 0x02)
                .map(|t| {
                    let sep = t.iter().position(|&b| b == 0x01).expect("key delimiter");
                    (t[..sep].to_vec(), t[sep + 1..].to_vec())
                })
                .collect()
        })
        .collect::<Vec<Pairs>>();
    assert_eq!(
        parsed.len(),
        corpus.len(),
        "git log printed a different number of commits"
    );

    let entries = agentgate_git::config_file_entries(&repo.join(".git/config"))
        .expect("read the repository's config");
    let ours = TrailerConfig::from_config(&entries);
    (parsed, ours)
}

#[test]
fn parse_matches_git_log_trailers() {
    let start = Instant::now();
    let home = tempfile::tempdir().expect("tempdir");
    let mut corpus = hand_written();
    let hand = corpus.len();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    corpus.extend((0..GENERATED).map(|_| generated(&mut rng)));
    corpus.extend((0..SOUP).map(|_| soup(&mut rng)));
    corpus.push(huge_block(10_000));

    let mut report = String::new();
    let mut mismatches = 0usize;
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = VARIANTS
            .iter()
            .map(|(name, config)| {
                let (home, corpus) = (home.path(), &corpus);
                s.spawn(move || (*name, git_trailers(home, name, config, corpus)))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("variant thread"))
            .collect()
    });
    let git_time = start.elapsed();

    let mut with_trailers = 0usize;
    for (name, (expected, cfg)) in &results {
        for (msg, want) in corpus.iter().zip(expected) {
            let got: Pairs = parse(msg, cfg)
                .into_iter()
                .map(|t| (t.key.into_bytes(), t.value.into_bytes()))
                .collect();
            with_trailers += usize::from(!want.is_empty());
            if &got != want {
                mismatches += 1;
                if mismatches <= 10 {
                    let show = |p: &Pairs| {
                        p.iter()
                            .map(|(k, v)| {
                                format!(
                                    "{:?}={:?}",
                                    String::from_utf8_lossy(k),
                                    String::from_utf8_lossy(v)
                                )
                            })
                            .collect::<Vec<_>>()
                    };
                    let _ = writeln!(
                        report,
                        "[{name}] message {msg:?}\n    git:  {:?}\n    ours: {:?}",
                        show(want),
                        show(&got)
                    );
                }
            }
        }
    }
    println!(
        "trailers differential: {} messages ({hand} hand-written, {GENERATED} generated, {SOUP} \
         fragment soup, 1 with 10000 trailers) x {} configs = {} comparisons, {with_trailers} \
         with trailers; git {:?}, total {:?}",
        corpus.len(),
        VARIANTS.len(),
        corpus.len() * VARIANTS.len(),
        git_time,
        start.elapsed()
    );
    assert!(
        mismatches == 0,
        "{mismatches} mismatches with git; first ones:\n{report}"
    );
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const SCISSORS: &str = "------------------------ >8 ------------------------";
const CLAUDE: &str = "Co-Authored-By: Claude <noreply@anthropic.com>";

fn hand_written() -> Vec<String> {
    let hex = "0123456789abcdef0123456789abcdef01234567";
    let mut v: Vec<String> = [
        "",
        "\n",
        "Subject only",
        "Subject only\n",
        "Key: value",
        "Key: value\n\n",
        "Subject\n\nKey: value",
        "\n\n \t\nSubject after blank lines\n\nKey: value\n",
        "Subject\nKey: in the subject paragraph\n",
        "Subject\n\nBody line.\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
        "Subject\n\nBody line.\nCo-Authored-By: Claude <noreply@anthropic.com>\nSigned-off-by: A U Thor <a@example.com>\n",
        "Subject\n\nBody line.\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
        "Subject\n\nBody.\n\n🤖 Generated with [Claude Code](https://claude.ai/code)\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
        "Subject\n\nA: b\n---\n\nKey: v\n",
        "Subject\n\nKey: v\n---\n",
        "Subject\n\nSigned-off-by: x\n---\n",
        "Subject\n\nKey: v\n--- \ndiff --git a/x b/x\n",
        "Subject\n\nKey: v\n# comment\n",
        "Subject\n\nKey: v\n# comment\nOther: w\n",
        "Subject\n\n# only a comment\n",
        "# comment first\nSubject\n\nKey: v\n",
        "Subject\n# comment in title\n\nKey: v\n",
        "Subject\n\nKey: v\nConflicts:\n\ta.c\n\tb.c\n",
        "Subject\n\nKey: v\n\nConflicts:\n\ta.c\n# It looks like...\n",
        "Subject\n\nKey: v\nConflicts:\n\ta.c\nmore prose\n",
        "Conflicts:\n\ta.c\n",
        "Subject\n\nKey: a\n  b\n\tc\n",
        "Subject\n\nKey: a\n\n  b\n",
        "Subject\n\n  indented: first\nKey: v\n",
        "Subject\n\nprose\n  cont\nSigned-off-by: x\n",
        "Subject\r\n\r\nKey: v\r\n",
        "Subject\r\n\r\nKey: a\r\n  b\r\n\r\n",
        "Subject\n\nKey:\tv\t\n",
        "Subject\n\nKey: v\x0b\n",
        "Subject\n\nKey: v\x0c\n",
        "Subject\n\nKey: a\0b\n",
        "Subject\n\nKey\0: a\n",
        "Subject\n\nКлюч: значение\n",
        "Subject\n\nKey: значение 🎉\n",
        "Subject\n\nClé: v\n",
        "Subject\n\nKey : v\n",
        "Subject\n\nKey \t : v\n",
        "Subject\n\nMy Key: v\n",
        "Subject\n\n: v\n",
        "Subject\n\n-: v\n",
        "Subject\n\nKey:\n",
        "Subject\n\nKey:v\n",
        "Subject\n\nSigned-off-by:x\n",
        "Subject\n\nsigned-off-by: x\n",
        "Subject\n\nprose\nprose\nprose\nSigned-off-by: x\n",
        "Subject\n\nprose\nprose\nprose\nprose\nSigned-off-by: x\n",
        "Subject\n\nprose\nSee: https://example.com/a:b\n",
        "Subject\n\nSee: https://example.com/a:b\n",
        "Subject\n\nBug #43\nReviewed-by: x\n",
        "Subject\n\nfoo: 1\nprose\nprose\nprose\n",
        "Subject\n\nprose\nfo: x\nRev : y\n-: z\nReviewed: w\nr: q\n",
        "Subject\n\nprose\nprose\nprose\nbar: x\n",
        "Subject\n\nprose\nprose\nack: x\n",
        "Subject\n\nprose\nco: Claude <noreply@anthropic.com>\n",
        "Subject\n\nKey: v\n; semicolon comment\n",
        "Subject\n\nKey: v\n// slash comment\n",
        "Subject\n\nKey: v\n\n\n\n",
        "Subject\n\nKey: v\n   \n",
        "Subject\n\nKey: v\n\t\n\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in ["#", ";", "//"] {
        v.push(format!("Subject\n\nKey: v\n{c} {SCISSORS}\nOther: w\n"));
        v.push(format!("Subject\n\nKey: v\n\n{c} {SCISSORS}\n\nOther: w\n"));
        v.push(format!("{c} {SCISSORS}\nSubject\n\nKey: v\n"));
        v.push(format!("Subject\n\nKey: v\n{c}{SCISSORS}\nOther: w\n"));
        v.push(format!("Subject\n\nKey: v\n{c} {SCISSORS}"));
    }
    v.push(format!(
        "Subject\n\nBody\n(cherry picked from commit {hex})\n"
    ));
    v.push(format!(
        "Subject\n\nBody\nprose\nprose\nKey: v\n(cherry picked from commit {hex})\n"
    ));
    v.push(format!(
        "Subject\n\nBody\n\n{CLAUDE}\n(cherry picked from commit {hex})\n"
    ));
    v.push(format!("Subject\n\n{CLAUDE}\r\n"));
    v.push(format!(
        "Subject\n\n{CLAUDE}\n# Please enter the commit message\n"
    ));
    v.push(format!("Subject\n\n{CLAUDE}\n{}", "\n".repeat(50)));
    v
}

const SUBJECTS: &[&str] = &[
    "Fix race in cache eviction",
    "docs: explain trailer parsing",
    "Key: value",
    "Signed-off-by: Someone <s@example.com>",
    "Revert \"Add thing\"",
    "Merge branch 'main' into feature",
    "fixup! Fix race",
    "Ünïcödé subject — with dashes",
    "   indented subject",
    "# not a comment subject",
    "---",
];

const PROSE: &[&str] = &[
    "This patch changes the way we handle errors.",
    "Note: this is a sentence with a colon.",
    "See https://example.com/issue/42 for details.",
    "- a bullet item",
    "1. a numbered item",
    "    indented_code();",
    "\tindented with a tab",
    "Ünïcödé prose — with an em dash.",
    "Closes #12",
    "key value without separator",
    "URL:https://example.com",
    "Generated with [Claude Code](https://claude.ai/code)",
    "🤖 Generated with [Claude Code](https://claude.ai/code)",
    "It's fine: really",
    "a-b c: d",
    "x",
];

const KEYS: &[&str] = &[
    "Signed-off-by",
    "Co-Authored-By",
    "Co-authored-by",
    "co-authored-by",
    "Reviewed-by",
    "Acked-by",
    "Tested-by",
    "Fixes",
    "Link",
    "Change-Id",
    "See",
    "Bug",
    "Closes",
    "Assisted-by",
    "Generated-by",
    "AI-assisted",
    "Helped-by",
    "foo",
    "Foo",
    "fo",
    "Rev",
    "bar",
    "ack",
    "Ack",
    "co",
    "X",
    "-",
    "a-b-c",
    "123",
    "Ключ",
    "Clé",
    "My Key",
    "",
];

const SEPS: &[&str] = &[":", ":", ":", ":", ":", "#", "=", ";", "/"];
const BEFORE_SEP: &[&str] = &["", "", "", "", " ", "  ", "\t", " \t"];
const AFTER_SEP: &[&str] = &[" ", " ", " ", "", "  ", "\t"];

const VALUES: &[&str] = &[
    "Claude <noreply@anthropic.com>",
    "A U Thor <author@example.com>",
    "aider (gpt-4) <aider@aider.chat>",
    "Copilot <198982749+Copilot@users.noreply.github.com>",
    "https://lore.kernel.org/r/20240101.123@example.com",
    "abc123def (\"Fix the thing\")",
    "",
    "43",
    "  padded  ",
    "日本語の値",
    "emoji 🎉",
    "v1: with: colons",
    "trailing tab\t",
    "vertical tab\x0b",
    "form feed\x0c",
    "I0123456789abcdef",
];

const SPECIAL: &[&str] = &[
    "Signed-off-by: Name <n@example.com>",
    "Signed-off-by:Name",
    "signed-off-by: lower",
    "(cherry picked from commit 0123456789abcdef0123456789abcdef01234567)",
    "(cherry picked from commit",
    "# a comment",
    "#",
    "; semicolon comment",
    "// slash comment",
    "---",
    "--- ",
    "-- ",
    "Conflicts:",
    "\tpath/a.c",
    " continuation",
    "\tcontinuation",
    "   ",
    "",
    "\r",
    CLAUDE,
];

fn trailer_line(rng: &mut Rng) -> String {
    format!(
        "{}{}{}{}{}",
        rng.pick(KEYS),
        rng.pick(BEFORE_SEP),
        rng.pick(SEPS),
        rng.pick(AFTER_SEP),
        rng.pick(VALUES)
    )
}

fn any_line(rng: &mut Rng, trailer_weight: usize) -> String {
    let roll = rng.below(100);
    if roll < trailer_weight {
        trailer_line(rng)
    } else if roll < trailer_weight + (100 - trailer_weight) / 2 {
        rng.pick(SPECIAL).to_string()
    } else {
        rng.pick(PROSE).to_string()
    }
}

fn generated(rng: &mut Rng) -> String {
    let mut lines: Vec<String> = Vec::new();
    for _ in 0..rng.below(3).saturating_sub(1) {
        lines.push(rng.pick(&["", " ", "\t"]).to_string());
    }
    if rng.chance(5) {
        lines.push(format!(
            "{} comment before subject",
            rng.pick(&["#", ";", "//"])
        ));
    }
    lines.push(rng.pick(SUBJECTS).to_string());
    if rng.chance(10) {
        lines.push(any_line(rng, 50));
    }
    for _ in 0..rng.below(3) {
        lines.push(rng.pick(&["", "", " "]).to_string());
        for _ in 0..1 + rng.below(4) {
            lines.push(any_line(rng, 20));
        }
    }
    if rng.chance(85) {
        lines.push(String::new());
        let weight = *[95, 80, 60, 40].get(rng.below(4)).unwrap_or(&80);
        for _ in 0..1 + rng.below(7) {
            lines.push(any_line(rng, weight));
            if rng.chance(10) {
                lines.push(format!("{}continued value", rng.pick(&[" ", "  ", "\t"])));
            }
        }
    }
    if rng.chance(30) {
        for _ in 0..1 + rng.below(4) {
            let c = rng.pick(&["#", ";", "//"]);
            let tail = match rng.below(6) {
                0 => String::new(),
                1 => format!("{c} Please enter the commit message"),
                2 => "Conflicts:\n\tsrc/lib.rs".to_string(),
                3 => format!("{c} {SCISSORS}\ndiff --git a/x b/x\nKey: after scissors"),
                4 => "\tpath/b.c".to_string(),
                _ => any_line(rng, 50),
            };
            lines.push(tail);
        }
    }
    let newline = match rng.below(20) {
        0 | 1 => "\r\n",
        _ => "\n",
    };
    let mut msg = String::new();
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            msg.push_str(if rng.chance(3) { "\r\n" } else { newline });
        }
        msg.push_str(line);
    }
    if rng.chance(80) {
        msg.push_str(newline);
    }
    if rng.chance(5) {
        msg.push_str("\n\n");
    }
    msg
}

/// Short random messages from fragments that matter to the parser, to reach placements of
/// whitespace, separators and line ends that the line-based generator does not.
fn soup(rng: &mut Rng) -> String {
    const FRAGMENTS: &[&str] = &[
        "a",
        "K",
        "Key",
        "-",
        ":",
        ":",
        "#",
        "=",
        " ",
        " ",
        "\t",
        "\n",
        "\n",
        "\n",
        "\n\n",
        "\r",
        "\r\n",
        "Signed-off-by: ",
        "(cherry picked from commit ",
        "Conflicts:\n",
        "\tf\n",
        "# ",
        "; ",
        "//",
        "---",
        "\x0b",
        "\x0c",
        "é",
        "🎉",
        "foo",
        "Rev",
        "x: y\n",
        " z\n",
        "# ------------------------ >8 ------------------------\n",
    ];
    let mut msg = String::new();
    for _ in 0..rng.below(40) {
        msg.push_str(rng.pick(FRAGMENTS));
    }
    msg
}

fn huge_block(n: usize) -> String {
    let mut msg = String::from("Huge trailer block\n\nBody.\n\n");
    for i in 0..n {
        let _ = writeln!(msg, "Key-{i}: value {i}");
        if i % 7 == 0 {
            msg.push_str("  continued\n");
        }
    }
    msg
}
