//! The fail-closed matrix: every way we could think of to feed the hook something broken,
//! hostile or huge, through real pushes (or, for stdin that git itself would never send, by
//! running `agentgate pre-receive` with GIT_DIR set as git does). Each case asserts the stable
//! refusal code and that the protected ref on the server did not move.

use crate::common::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const MAIN: &str = "refs/heads/main";

fn refused_with(stderr: &str, code: &str) -> bool {
    stderr.contains(&format!("agentgate: refused [{code}]"))
}

struct S {
    env: Env,
    server: PathBuf,
    work: PathBuf,
    /// main on the server after setup.
    base: String,
}

/// `agentgate keygen` into `<env>/<name>.key` and `<name>.pub`.
fn keygen(env: &Env, name: &str) {
    let out = env.agentgate(
        env.path(),
        &["keygen", "--out", env.path().join(name).to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A server with the test policy plus `extra`, trusting the keys `signers` (generated here),
/// and a clone whose human base commit is on the server's main.
fn setup_with(extra: &str, signers: &[&str]) -> S {
    let env = Env::new();
    let mut policy = format!("{POLICY}{extra}\n");
    for name in signers {
        keygen(&env, name);
        policy.push_str(&format!(
            "[[signer]]\nname = \"{name}\"\npublic_key = \"{}\"\n",
            env.path().join(format!("{name}.pub")).display()
        ));
    }
    let server = env.server_with("s.git", &policy, &[], &[]);
    let work = env.clone(&server, "w");
    env.commit(&work, "a.txt", "Base");
    let (ok, err) = env.push(&work, &["origin", "main"]);
    assert!(ok, "{err}");
    std::fs::write(env.path().join("app.bin"), b"the built artifact\n").unwrap();
    let base = env.rev(&server, MAIN).unwrap();
    S {
        env,
        server,
        work,
        base,
    }
}

fn setup() -> S {
    setup_with("", &["gate"])
}

impl S {
    /// Sign `commit` (in `repo`) with key `key`; returns the two bundle lines (provenance,
    /// test result).
    fn sign_in(&self, repo: &Path, commit: &str, key: &str, extra: &[&str]) -> (String, String) {
        self.env.sign_bundles(repo, commit, key, extra)
    }

    fn sign(&self, commit: &str, key: &str, extra: &[&str]) -> (String, String) {
        self.sign_in(&self.work, commit, key, extra)
    }

    /// Replace the note on `commit` in the clone with `content`.
    fn set_note(&self, commit: &str, content: &[u8]) {
        let f = self.env.path().join("note.txt");
        std::fs::write(&f, content).unwrap();
        self.env.git_ok(
            &self.work,
            &[
                "notes",
                "--ref",
                "refs/notes/agentgate",
                "add",
                "-f",
                "-F",
                f.to_str().unwrap(),
                commit,
            ],
        );
    }

    /// Insert `lines` into the server policy's [detect] table (after setup pushed the base).
    fn extend_policy(&self, lines: &str) {
        let p = self.server.join("agentgate.toml");
        let text = std::fs::read_to_string(&p).unwrap().replacen(
            "presets = [\"known-agents\"]\n",
            &format!("presets = [\"known-agents\"]\n{lines}"),
            1,
        );
        std::fs::write(p, text).unwrap();
    }

    fn main(&self) -> Option<String> {
        self.env.rev(&self.server, MAIN)
    }

    /// Push `args`; it must be refused with `code` and leave the server's main where it was.
    fn refused(&self, args: &[&str], code: &str) -> String {
        let before = self.main();
        let (ok, err) = self.env.push(&self.work, args);
        assert!(!ok, "accepted, expected [{code}]: {err}");
        assert!(refused_with(&err, code), "expected [{code}]: {err}");
        assert_eq!(self.main(), before, "the protected ref moved");
        err
    }

    fn push_notes_and_main(&self, code: &str) -> String {
        self.refused(&["origin", "refs/notes/agentgate", "main"], code)
    }

    /// Write a raw commit object into the clone and point main at it.
    fn raw_commit(&self, headers_extra: &str, message: &[u8]) -> String {
        let head = self.env.git_ok(&self.work, &["rev-parse", "HEAD"]);
        let tree = self.env.git_ok(&self.work, &["rev-parse", "HEAD^{tree}"]);
        let mut raw = format!(
            "tree {tree}\nparent {head}\nauthor Ada Lovelace <ada@example.com> 1767268800 +0000\ncommitter Ada Lovelace <ada@example.com> 1767268800 +0000\n{headers_extra}\n"
        )
        .into_bytes();
        raw.extend_from_slice(message);
        let mut child = self
            .env
            .cmd("git")
            .current_dir(&self.work)
            .args(["hash-object", "-t", "commit", "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&raw).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.env
            .git_ok(&self.work, &["update-ref", "refs/heads/main", &id]);
        id
    }
}

/// Run `agentgate pre-receive` in `server` as git would, with `stdin`; (exit code, stderr).
fn pre_receive(env: &Env, server: &Path, stdin: &[u8]) -> (Option<i32>, String) {
    let mut child = env
        .cmd(AGENTGATE)
        .current_dir(server)
        .arg("pre-receive")
        .env("GIT_DIR", server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The hook may refuse before reading everything; a broken pipe is not a failure here.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---- stdin and object ids ----

#[test]
fn malformed_stdin_lines_are_refused() {
    let s = setup();
    let (a, z) = (s.base.as_str(), "0".repeat(40));
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\n".to_vec(),
        b"garbage\n".to_vec(),
        format!("{a} {a}\n").into_bytes(),
        format!("{a} {a} {MAIN} extra\n").into_bytes(),
        format!("{a}  {a} {MAIN}\n").into_bytes(),
        format!("{a} {a} {MAIN}\r\n").into_bytes(),
        format!("{a} {a} main\n").into_bytes(),
        format!("{a} {a} refs/heads/a..b\n").into_bytes(),
        format!("{a} {a} refs/heads/x.lock\n").into_bytes(),
        format!("{z} {z} {MAIN}\n").into_bytes(),
        format!("{} {a} {MAIN}\n", &a[..39]).into_bytes(),
        format!("{} {a} {MAIN}\n", a.to_uppercase()).into_bytes(),
        format!("{a} {} {MAIN}\n", "b".repeat(64)).into_bytes(),
        format!("{a} {a} refs/heads/\u{441}\0x\n").into_bytes(),
        b"\xff\xfe\xfd\n".to_vec(),
        // A valid line followed by a broken one: the whole input is refused.
        format!("{z} {a} refs/heads/topic\n{a} xyz {MAIN}\n").into_bytes(),
    ];
    for input in &cases {
        let (code, err) = pre_receive(&s.env, &s.server, input);
        assert_eq!(code, Some(1), "{:?}: {err}", String::from_utf8_lossy(input));
        assert!(
            refused_with(&err, "stdin-malformed"),
            "{:?}: {err}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(s.main().as_deref(), Some(s.base.as_str()));
}

#[test]
fn unknown_object_ids_are_refused() {
    let s = setup();
    let unknown = "1".repeat(40);
    for input in [
        format!("{} {unknown} {MAIN}\n", s.base),
        format!("{unknown} {} {MAIN}\n", s.base),
        format!("{} {unknown} refs/tags/v9\n", "0".repeat(40)),
    ] {
        let (code, err) = pre_receive(&s.env, &s.server, input.as_bytes());
        assert_eq!(code, Some(1), "{input}: {err}");
        assert!(refused_with(&err, "unknown-object"), "{input}: {err}");
    }
    // A blob as the new tip of a protected ref.
    let blob = s
        .env
        .git_ok(&s.server, &["hash-object", "-w", "--stdin"])
        .to_string();
    let input = format!("{} {blob} {MAIN}\n", s.base);
    let (code, err) = pre_receive(&s.env, &s.server, input.as_bytes());
    assert_eq!(code, Some(1), "{err}");
    assert!(refused_with(&err, "not-a-commit"), "{err}");
    assert_eq!(s.main().as_deref(), Some(s.base.as_str()));
}

// ---- the policy ----

#[test]
fn missing_policy_refuses_everything() {
    let s = setup();
    assert!(
        !Path::new("/etc/agentgate/policy.toml").exists(),
        "this test needs no system policy"
    );
    std::fs::remove_file(s.server.join("agentgate.toml")).unwrap();
    s.env.commit(&s.work, "a.txt", "Human");
    s.refused(&["origin", "main"], "policy-missing");
}

#[test]
fn unreadable_policy_refuses_everything() {
    let s = setup();
    // Root ignores file modes, so a directory stands in for an unreadable file.
    let p = s.server.join("agentgate.toml");
    std::fs::remove_file(&p).unwrap();
    std::fs::create_dir(&p).unwrap();
    s.env.commit(&s.work, "a.txt", "Human");
    s.refused(&["origin", "main"], "policy-unreadable");
}

#[test]
fn policy_without_read_permission_refuses_for_a_non_root_hook() {
    // The real chmod 000 case, with the hook run as `nobody` (setpriv) where that is possible.
    let s = setup();
    let nobody_can = |p: &Path| {
        std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "test",
                "-r",
            ])
            .arg(p)
            .status()
            .map(|st| st.success())
            .unwrap_or(false)
    };
    // setpriv needs root to switch users; without it, or when nobody cannot run the binary,
    // the directory case (unreadable_policy_refuses_everything) stands alone.
    if !running_as_root() || !nobody_can(Path::new(AGENTGATE)) {
        crate::common::skip(
            "policy_without_read_permission_refuses_for_a_non_root_hook",
            "needs root, setpriv (util-linux) and an agentgate binary that nobody can run",
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    // Let `nobody` into the temporary tree, then take the policy away from it.
    let mut dir = s.server.clone();
    loop {
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755));
        if dir == s.env.path() || !dir.pop() {
            break;
        }
    }
    let out = s
        .env
        .cmd("chmod")
        .args(["-R", "a+rwX"])
        .arg(&s.server)
        .output()
        .unwrap();
    assert!(out.status.success());
    let policy = s.server.join("agentgate.toml");
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert!(!nobody_can(&policy), "nobody can still read the policy");
    let mut c = s.env.cmd("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        AGENTGATE,
        "pre-receive",
    ])
    .current_dir(&s.server)
    .env("GIT_DIR", &s.server)
    .stdin(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let input = format!("{} {} {MAIN}\n", s.base, s.base);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(refused_with(&err, "policy-unreadable"), "{err}");
}

/// Are we root? (Without libc: the effective uid from /proc.)
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn invalid_policies_refuse_everything() {
    let s = setup();
    s.env.commit(&s.work, "a.txt", "Human");
    let key_dir = s.env.path();
    std::fs::write(key_dir.join("not-a-key.pub"), "hello\n").unwrap();
    let cases = [
        ("not toml", "version = 1\n[protect\n".to_string()),
        ("version 2", POLICY.replace("version = 1", "version = 2")),
        (
            "unknown key",
            POLICY.replace("[protect]\n", "[protect]\nalow_delete = true\n"),
        ),
        (
            "unknown table",
            format!("{POLICY}[attestation]\nscope = \"tip\"\n"),
        ),
        (
            "signer key file missing",
            format!(
                "{POLICY}[[signer]]\nname = \"g\"\npublic_key = \"{}\"\n",
                key_dir.join("missing.pub").display()
            ),
        ),
        (
            "signer key file is not a key",
            format!(
                "{POLICY}[[signer]]\nname = \"g\"\npublic_key = \"{}\"\n",
                key_dir.join("not-a-key.pub").display()
            ),
        ),
        (
            "signer key is a directory",
            format!(
                "{POLICY}[[signer]]\nname = \"g\"\npublic_key = \"{}\"\n",
                key_dir.display()
            ),
        ),
        (
            "signer key is a private key",
            format!(
                "{POLICY}[[signer]]\nname = \"g\"\npublic_key = \"{}\"\n",
                key_dir.join("gate.key").display()
            ),
        ),
    ];
    for (what, policy) in cases {
        std::fs::write(s.server.join("agentgate.toml"), &policy).unwrap();
        let err = s.refused(&["origin", "main"], "policy-invalid");
        assert!(err.contains("agentgate.toml"), "{what}: {err}");
    }
}

// ---- the notes ref and the bundles ----

#[test]
fn notes_ref_pointing_at_a_blob_is_refused() {
    let s = setup();
    s.env.agent_commit(&s.work, "a.txt", "Agent");
    let app = s.env.path().join("app.bin");
    let blob = s
        .env
        .git_ok(&s.work, &["hash-object", "-w", app.to_str().unwrap()]);
    // Even a blob that looks like a commit header (the notes reader reads the first line).
    let fake = s.env.path().join("fake");
    let tree = s.env.git_ok(&s.work, &["rev-parse", "HEAD^{tree}"]);
    std::fs::write(&fake, format!("tree {tree}\n")).unwrap();
    let lookalike = s
        .env
        .git_ok(&s.work, &["hash-object", "-w", fake.to_str().unwrap()]);
    for target in [blob, lookalike, tree] {
        s.env
            .git_ok(&s.work, &["update-ref", "refs/notes/agentgate", &target]);
        let err = s.refused(
            &["origin", "+refs/notes/agentgate", "main"],
            "attestations-unreadable",
        );
        assert!(!err.contains("[attested]"), "{err}");
    }
}

#[test]
fn notes_commit_whose_tree_has_junk_is_refused() {
    let s = setup();
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "gate", &[]);
    let w = &s.work;
    // A notes tree where the entry for the commit is a tree, where a junk file sits next to
    // it, and where the entry is a submodule (gitlink) pointing at nothing.
    let junk = s.env.path().join("junk");
    std::fs::write(&junk, format!("{prov}\n{test}\n")).unwrap();
    let bundles = s
        .env
        .git_ok(w, &["hash-object", "-w", junk.to_str().unwrap()]);
    let empty_tree = s
        .env
        .git_ok(w, &["hash-object", "-t", "tree", "-w", "/dev/null"]);
    let mktree = |dir: &Path, entries: &str| {
        let mut child = s
            .env
            .cmd("git")
            .current_dir(dir)
            .args(["mktree", "--missing"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(entries.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let missing = "3".repeat(40);
    let cases = [
        (
            "entry is a tree",
            format!("040000 tree {empty_tree}\t{agent}\n100644 blob {bundles}\tjunk\n"),
            "agent-commit-unattested",
        ),
        (
            "entry is a gitlink to nothing",
            format!("160000 commit {missing}\t{agent}\n"),
            "git-error",
        ),
    ];
    for (what, entries, code) in cases {
        let tree = mktree(w, &entries);
        let commit = s.env.git_ok(w, &["commit-tree", &tree, "-m", "junk notes"]);
        s.env
            .git_ok(w, &["update-ref", "refs/notes/agentgate", &commit]);
        let before = s.main();
        let (ok, err) = s.env.push(w, &["origin", "+refs/notes/agentgate", "main"]);
        assert!(!ok, "{what}: {err}");
        assert_eq!(s.main(), before, "{what}");
        assert!(refused_with(&err, code), "{what}: expected [{code}]: {err}");
    }

    // A note blob missing from the server (a corrupt repository: git itself will not push a
    // notes commit whose objects it does not have). The notes commit is made on the server.
    let tree = mktree(&s.server, &format!("100644 blob {missing}\t{agent}\n"));
    let commit = s
        .env
        .git_ok(&s.server, &["commit-tree", &tree, "-m", "corrupt notes"]);
    s.env
        .git_ok(&s.server, &["update-ref", "refs/notes/agentgate", &commit]);
    let (ok, err) = s.env.push(w, &["origin", "HEAD:refs/heads/topic"]);
    assert!(ok, "unprotected: {err}");
    s.refused(&["origin", "HEAD:refs/heads/main"], "git-error");
}

#[test]
fn ten_thousand_bundle_lines_refuse_in_bounded_time() {
    // The bound under test is the candidate limit, not the hook's deadline (a busy machine
    // running a debug build may need more than the default 3 s).
    let s = setup_with("[hook]\ntimeout = \"2m\"\n", &["gate"]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "gate", &[]);
    // The valid bundles first, then 10,000 broken ones after them (newest last): only the
    // newest MAX_CANDIDATES are examined, so the valid ones are never reached.
    let mut note = format!("{prov}\n{test}\n");
    let broken = prov.replacen("\"sig\":\"", "\"sig\":\"AAAA", 1);
    for _ in 0..10_000 {
        note.push_str(&broken);
        note.push('\n');
    }
    s.set_note(&agent, note.as_bytes());
    let t = Instant::now();
    let err = s.push_notes_and_main("agent-commit-unattested");
    let took = t.elapsed();
    eprintln!("10,000-line note: refused in {took:?}");
    assert!(err.contains("too-many-candidates"), "{err}");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn fifty_megabyte_bundle_line_is_too_large() {
    // The bound under test is the candidate limit, not the hook's deadline (a busy machine
    // running a debug build may need more than the default 3 s).
    let s = setup_with("[hook]\ntimeout = \"2m\"\n", &["gate"]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, _) = s.sign(&agent, "gate", &[]);
    let mut line = prov[..prov.len() - 1].to_string();
    line.push_str(",\"x\":\"");
    line.push_str(&"A".repeat(50 << 20));
    line.push_str("\"}\n");
    s.set_note(&agent, line.as_bytes());
    let t = Instant::now();
    let err = s.push_notes_and_main("agent-commit-unattested");
    eprintln!("50 MB bundle line: refused in {:?}", t.elapsed());
    assert!(err.contains("[bundle-too-large]"), "{err}");
}

#[test]
fn duplicate_json_keys_are_refused() {
    let s = setup();
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "gate", &[]);
    // A second mediaType at the end of a valid bundle: a last-wins parser would not notice.
    let dup = |b: &str| format!("{},\"mediaType\":\"application/x\"}}", &b[..b.len() - 1]);
    s.set_note(
        &agent,
        format!("{}\n{}\n", dup(&prov), dup(&test)).as_bytes(),
    );
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[bundle-malformed]"), "{err}");
    assert!(err.contains("duplicate"), "{err}");
}

// ---- commit messages ----

/// Messages are read as `git log` shows them; what cannot be decoded that way is refused
/// (`encoding-unsupported`, or `object-malformed` when decoding would change the headers, as a
/// UTF-16 label does to an ASCII buffer), never counted as a human commit.
#[test]
fn non_utf8_messages_and_encodings_are_still_detected() {
    let s = setup();
    let trailer = format!("\n\n{CLAUDE_TRAILER}\n");
    let cases: Vec<(&str, String, Vec<u8>, &str)> = vec![
        (
            "no header, invalid UTF-8",
            String::new(),
            {
                let mut m = b"Caf\xe9 \xff\xfe".to_vec();
                m.extend_from_slice(trailer.as_bytes());
                m
            },
            "agent-commit-unattested",
        ),
        (
            "ISO-8859-1",
            "encoding ISO-8859-1\n".into(),
            {
                let mut m = b"Caf\xe9".to_vec();
                m.extend_from_slice(trailer.as_bytes());
                m
            },
            "agent-commit-unattested",
        ),
        (
            "bogus encoding",
            "encoding x-no-such-charset\n".into(),
            {
                let mut m = b"Caf\xe9".to_vec();
                m.extend_from_slice(trailer.as_bytes());
                m
            },
            "encoding-unsupported",
        ),
        (
            "UTF-16 named",
            "encoding UTF-16\n".into(),
            {
                let mut m = b"Subject".to_vec();
                m.extend_from_slice(trailer.as_bytes());
                m
            },
            "object-malformed|encoding-unsupported",
        ),
    ];
    for (what, header, message, codes) in cases {
        let id = s.raw_commit(&header, &message);
        // What git itself shows as trailers.
        let git_sees = s.env.git_ok(
            &s.work,
            &["log", "-1", "--format=%(trailers:key=Co-Authored-By)", &id],
        );
        let before = s.main();
        let (ok, err) = s.env.push(&s.work, &["origin", "+main"]);
        assert!(!ok, "{what}: accepted: {err}");
        assert!(
            codes.split('|').any(|c| refused_with(&err, c)),
            "{what}: expected [{codes}]: {err}"
        );
        assert_eq!(s.main(), before, "{what}: the protected ref moved");
        assert!(
            err.contains(&id[..7]) || err.contains(&id[..12]),
            "{what}: {err}"
        );
        eprintln!("{what}: git shows {git_sees:?}; refused");
        s.env.git_ok(&s.work, &["reset", "-q", "--hard", &s.base]);
    }
    // A Latin-1 human commit without trailers is an ordinary commit.
    s.raw_commit("encoding ISO-8859-1\n", b"Caf\xe9 au lait\n");
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    assert!(ok, "{err}");
}

#[test]
fn ten_megabyte_message_is_detected_in_bounded_time() {
    let s = setup();
    let mut message = String::from("Subject\n\n");
    let line = "x".repeat(99) + "\n";
    while message.len() < 10 << 20 {
        message.push_str(&line);
    }
    message.push('\n');
    message.push_str(CLAUDE_TRAILER);
    message.push('\n');
    s.raw_commit("", message.as_bytes());
    let t = Instant::now();
    s.refused(&["origin", "main"], "agent-commit-unattested");
    let took = t.elapsed();
    eprintln!("10 MB message: refused in {took:?}");
    assert!(took < Duration::from_secs(60));
}

#[test]
fn ten_thousand_trailer_lines_are_detected() {
    let s = setup();
    let mut message = String::from("Subject\n\n");
    for i in 0..10_000 {
        message.push_str(&format!("Signed-off-by: Person {i} <p{i}@example.com>\n"));
    }
    message.push_str(CLAUDE_TRAILER);
    message.push('\n');
    let id = s.raw_commit("", message.as_bytes());
    let git_sees = s.env.git_ok(
        &s.work,
        &["log", "-1", "--format=%(trailers:key=Co-Authored-By)", &id],
    );
    assert_eq!(git_sees, CLAUDE_TRAILER);
    let t = Instant::now();
    s.refused(&["origin", "main"], "agent-commit-unattested");
    eprintln!("10,000 trailers: refused in {:?}", t.elapsed());
}

#[test]
fn cyrillic_lookalike_trailer_is_not_a_trailer_for_git_or_us() {
    // "Со" is U+0421 U+043E: git's %(trailers) does not list it as Co-Authored-By (its key is
    // not even a trailer token), and neither do we, so under the default rules the commit is
    // not an agent commit. What covers it: `require = "all-commits"` or an identity rule.
    let message = "Agent change\n\n\u{421}\u{43e}-Authored-By: Claude <noreply@anthropic.com>\n";
    let s = setup();
    let id = s.env.commit(&s.work, "a.txt", message);
    let git_sees = s.env.git_ok(
        &s.work,
        &["log", "-1", "--format=%(trailers:key=Co-Authored-By)", &id],
    );
    assert_eq!(git_sees, "", "git sees a Co-Authored-By trailer");
    let all = s
        .env
        .git_ok(&s.work, &["log", "-1", "--format=%(trailers:only)", &id]);
    assert_eq!(all, "", "git sees some trailer");
    let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
    assert!(ok, "{err}");
    let log = s.env.audit(&s.server);
    assert_eq!(log.last().unwrap()["code"], "no-agent-commits");

    // all-commits: the look-alike does not matter, every commit needs an attestation.
    let s2 = setup();
    s2.extend_policy("require = \"all-commits\"\n");
    s2.env.commit(&s2.work, "a.txt", message);
    s2.refused(&["origin", "main"], "agent-commit-unattested");

    // An identity rule: the agent's own identity gives it away, whatever the trailers say.
    let s3 = setup();
    s3.extend_policy("[[detect.rule]]\nid = \"agent-identity\"\nemail = '^agent@example\\.com$'\n");
    s3.env.commit_as(
        &s3.work,
        ("Agent", "agent@example.com"),
        ("Agent", "agent@example.com"),
        "a.txt",
        message,
    );
    let err = s3.refused(&["origin", "main"], "agent-commit-unattested");
    assert!(err.contains("policy:agent-identity"), "{err}");
}

#[test]
fn three_dashes_and_trailers_agree_with_git() {
    // In git's %(trailers) (pretty.c) `---` is not a divider (only `git interpret-trailers`
    // treats it as one): a trailer "hidden" above `---` with prose below it is no trailer for
    // git, and none for us. The line is still in the message, though, and the known-agents
    // preset reads agent co-author lines outside the trailer block too
    // (`known-agents:co-author-in-body`): moving the line does not hide it.
    let cases = [
        (
            "above ---, prose below",
            format!("Agent\n\n{CLAUDE_TRAILER}\n---\nprose\n"),
        ),
        (
            "above ---, nothing below",
            format!("Agent\n\n{CLAUDE_TRAILER}\n---\n"),
        ),
        (
            "right below ---",
            format!("Agent\n\nText.\n---\n{CLAUDE_TRAILER}\n"),
        ),
        (
            "own paragraph below ---",
            format!("Agent\n\nText.\n---\n\n{CLAUDE_TRAILER}\n"),
        ),
    ];
    for (what, message) in cases {
        let s = setup();
        let id = s.env.commit(&s.work, "a.txt", &message);
        let git_sees = s.env.git_ok(
            &s.work,
            &["log", "-1", "--format=%(trailers:key=Co-Authored-By)", &id],
        );
        let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
        eprintln!("{what}: git sees {git_sees:?}, accepted: {ok}");
        if git_sees.is_empty() {
            assert!(
                !ok && refused_with(&err, "agent-commit-unattested"),
                "{what}: {err}"
            );
            assert!(
                err.contains("known-agents:co-author-in-body") && !err.contains("claude-co-author"),
                "{what}: not a trailer, a body line: {err}"
            );
        } else {
            assert_eq!(git_sees, CLAUDE_TRAILER);
            assert!(
                !ok && refused_with(&err, "agent-commit-unattested"),
                "{what}: {err}"
            );
            assert_eq!(s.main().as_deref(), Some(s.base.as_str()));
        }
    }
}

// ---- replayed and forged attestations ----

#[test]
fn attestation_for_another_commit_is_refused() {
    let s = setup();
    let first = s.env.agent_commit(&s.work, "a.txt", "Agent one");
    let (prov, test) = s.sign(&first, "gate", &[]);
    let second = s.env.agent_commit(&s.work, "a.txt", "Agent two");
    s.set_note(&second, format!("{prov}\n{test}\n").as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[commit-mismatch]"), "{err}");
}

#[test]
fn attestation_from_another_repository_is_refused() {
    // The same gate key signs for two repositories. A commit id cannot be in both unless it is
    // the same commit (then it is the same code); a bundle for a commit of the other repository
    // is a bundle for another commit.
    let s = setup();
    let other = s.env.path().join("other");
    s.env.git_ok(
        s.env.path(),
        &["init", "-q", "-b", "main", other.to_str().unwrap()],
    );
    let foreign = s.env.agent_commit(&other, "b.txt", "Agent elsewhere");
    let (prov, test) = s.sign_in(&other, &foreign, "gate", &[]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent here");
    s.set_note(&agent, format!("{prov}\n{test}\n").as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[commit-mismatch]"), "{err}");
}

#[test]
fn same_tree_under_bind_commit_is_refused() {
    let s = setup();
    let gated = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&gated, "gate", &[]);
    // Same tree, other commit (reworded).
    s.env.git_ok(
        &s.work,
        &[
            "commit",
            "-q",
            "--amend",
            "-m",
            &format!("Agent, reworded\n\n{CLAUDE_TRAILER}\n"),
        ],
    );
    let amended = s.env.git_ok(&s.work, &["rev-parse", "HEAD"]);
    assert_ne!(amended, gated);
    s.set_note(&amended, format!("{prov}\n{test}\n").as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[commit-mismatch]"), "{err}");
}

#[test]
fn another_tree_under_bind_tree_is_refused() {
    let s = setup_with("[attest]\nbind = \"tree\"\n", &["gate"]);
    let gated = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&gated, "gate", &[]);
    let changed = s.env.agent_commit(&s.work, "a.txt", "Agent changes a file");
    s.set_note(&changed, format!("{prov}\n{test}\n").as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    // bind = "tree" tries the tree, then the commit: the error reported is the last one.
    assert!(err.contains("[commit-mismatch]"), "{err}");
}

#[test]
fn failed_test_result_is_refused() {
    let s = setup();
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "gate", &["--test-result", "failed"]);
    s.set_note(&agent, format!("{prov}\n{test}\n").as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[tests-failed]"), "{err}");
    assert!(err.contains("[predicate-missing]"), "{err}");
}

/// Point a bundle's key hint and DSSE keyid at `hint`.
fn rehint(bundle: &str, hint: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(bundle).unwrap();
    v["verificationMaterial"]["publicKey"]["hint"] = hint.into();
    v["dsseEnvelope"]["signatures"][0]["keyid"] = hint.into();
    serde_json::to_string(&v).unwrap()
}

fn hint_of(bundle: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(bundle).unwrap();
    v["verificationMaterial"]["publicKey"]["hint"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn key_hint_naming_a_trusted_key_while_signed_by_another() {
    // Both keys trusted: the signature verifies with B, so the bundle is authentic, but its
    // (unsigned) hint was edited to name A: `key-hint-mismatch`. Hints never choose the key,
    // every trusted key is tried on the signature.
    let s = setup_with("", &["a", "b"]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (a_prov, _) = s.sign(&agent, "a", &[]);
    let (b_prov, b_test) = s.sign(&agent, "b", &[]);
    let a = hint_of(&a_prov);
    assert_ne!(a, hint_of(&b_prov));
    let note = format!("{}\n{}\n", rehint(&b_prov, &a), rehint(&b_test, &a));
    s.set_note(&agent, note.as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[key-hint-mismatch]"), "{err}");

    // Only A trusted: no trusted key verifies the signature, and the hint names A, so A's
    // signature is reported as invalid: `signature-invalid`.
    let s = setup_with("", &["a"]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    keygen(&s.env, "b");
    let (a_prov, _) = s.sign(&agent, "a", &[]);
    let (b_prov, b_test) = s.sign(&agent, "b", &[]);
    let a = hint_of(&a_prov);
    let note = format!("{}\n{}\n", rehint(&b_prov, &a), rehint(&b_test, &a));
    s.set_note(&agent, note.as_bytes());
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[signature-invalid]"), "{err}");
    assert!(!err.contains("[key-hint-mismatch]"), "{err}");
}

// ---- a hook killed mid-way ----

#[test]
fn hook_killed_mid_way_refuses_and_leaves_no_torn_audit_line() {
    let s = setup();
    // Make the hook do some work: an attested agent commit behind a 2,000-line note.
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "gate", &[]);
    let mut note = String::new();
    let broken = prov.replacen("\"sig\":\"", "\"sig\":\"AAAA", 1);
    for _ in 0..300 {
        note.push_str(&broken);
        note.push('\n');
    }
    note.push_str(&format!("{prov}\n{test}\n"));
    s.set_note(&agent, note.as_bytes());
    let (ok, err) = s.env.push(&s.work, &["origin", "refs/notes/agentgate"]);
    assert!(ok, "{err}");

    // The wrapper runs the real hook in the background and SIGKILLs it after a delay; it exits
    // with the hook's status (137 when killed), so git sees what a killed hook would give.
    let hook = s.server.join("hooks/pre-receive");
    let shim = std::fs::read_to_string(&hook).unwrap();
    let line = shim
        .lines()
        .find(|l| l.starts_with("exec "))
        .unwrap()
        .trim_start_matches("exec ")
        .to_string();
    let statuses = s.env.path().join("statuses");
    let mut killed = 0;
    let mut completed = 0;
    for delay_ms in [0u32, 5, 10, 20, 40, 60, 80, 100, 150, 200, 300, 500] {
        let wrapper = format!(
            "#!/bin/sh\nexec 3<&0\n{line} <&3 &\npid=$!\nsleep {}\nkill -9 $pid 2>/dev/null\nwait $pid\nst=$?\necho $st >> '{}'\nexit $st\n",
            f64::from(delay_ms) / 1000.0,
            statuses.display()
        );
        std::fs::write(&hook, wrapper).unwrap();
        let before = s.main();
        let (ok, err) = s.env.push(&s.work, &["origin", "main"]);
        let st = std::fs::read_to_string(&statuses).unwrap();
        let status = st.lines().last().unwrap().to_string();
        if status == "137" {
            killed += 1;
            assert!(!ok, "killed hook but the push was accepted: {err}");
            assert_eq!(s.main(), before, "killed hook but the ref moved");
        } else {
            completed += 1;
            assert_eq!(status, "0", "{err}");
            assert!(ok, "{err}");
            // Accepted once; move main back so the next round has work again.
            s.env.git_ok(&s.server, &["update-ref", MAIN, &s.base]);
        }
        // Every line of the log is a whole record.
        let text = std::fs::read_to_string(s.server.join("agentgate/audit.jsonl")).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "torn tail: {text:?}"
        );
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("torn audit line after {delay_ms} ms: {e}: {l:?}"));
        }
    }
    eprintln!("killed {killed}, completed {completed}");
    assert!(killed > 0, "the hook was never killed mid-way");
    // The hash chain holds across the killed runs.
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "audit",
            "verify",
            "--json",
            s.server.join("agentgate/audit.jsonl").to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    // The only problem allowed is the one this test makes itself: after a completed run it
    // moves main back by hand (update-ref), which `audit verify` rightly reports.
    let allowed: &[&str] = if completed > 0 {
        &["unlogged-ref-move"]
    } else {
        &[]
    };
    assert!(problems.iter().all(|c| allowed.contains(c)), "{v}");
    assert_eq!(v["records"], v["rederived"], "{v}");
    eprintln!("audit verify: {v}");
}

// ---- the policy and the keys belong to the server ----

#[test]
fn policy_in_pushed_content_is_ignored() {
    // An agent that commits a permissive agentgate.toml (at the top of the tree, where the
    // server keeps its own in $GIT_DIR) changes nothing: the policy is read from the server.
    let s = setup();
    std::fs::write(
        s.work.join("agentgate.toml"),
        "version = 1\n[protect]\nrefs = [\"refs/heads/nothing\"]\n",
    )
    .unwrap();
    s.env.git_ok(&s.work, &["add", "agentgate.toml"]);
    s.env
        .agent_commit(&s.work, "a.txt", "Agent relaxes the policy");
    s.refused(&["origin", "main"], "agent-commit-unattested");
}

#[test]
fn rotated_out_key_is_refused() {
    // A stolen gate key signs anything until it is rotated: once the policy no longer lists
    // it, its bundles are untrusted, old and new alike.
    let s = setup_with("", &["old", "new"]);
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent");
    let (prov, test) = s.sign(&agent, "old", &[]);
    s.set_note(&agent, format!("{prov}\n{test}\n").as_bytes());
    let p = s.server.join("agentgate.toml");
    let text = std::fs::read_to_string(&p).unwrap();
    let rotated = text
        .split("[[signer]]")
        .filter(|part| !part.contains("name = \"old\""))
        .collect::<Vec<_>>()
        .join("[[signer]]");
    assert!(!rotated.contains("old.pub") && rotated.contains("new.pub"));
    std::fs::write(&p, rotated).unwrap();
    let err = s.push_notes_and_main("agent-commit-unattested");
    assert!(err.contains("[untrusted-signer]"), "{err}");
    // The new key still admits it.
    let (prov, test) = s.sign(&agent, "new", &[]);
    s.set_note(&agent, format!("{prov}\n{test}\n").as_bytes());
    let (ok, err) = s
        .env
        .push(&s.work, &["origin", "+refs/notes/agentgate", "main"]);
    assert!(ok, "{err}");
}
