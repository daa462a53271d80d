//! `agentgate demo`: the whole story on a throwaway server, with real `git push`es into a bare
//! repository that has the hook installed. It needs nothing but `git` on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Output, Stdio};

use anyhow::{bail, Context};

use crate::cli::demo::DemoArgs;

/// The policy the demo server runs with.
pub const DEMO_POLICY: &str = r#"version = 1

[protect]
refs = ["refs/heads/main", "refs/tags/v*"]

[detect]
presets = ["known-agents"]
"#;

struct Demo {
    root: PathBuf,
    home: PathBuf,
}

impl Demo {
    /// `git` isolated from the user's configuration, with fixed identities and dates.
    fn git(&self, dir: &Path, args: &[&str]) -> anyhow::Result<Output> {
        let out = agentgate_git::git_command()
            .current_dir(dir)
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_NAMESPACE")
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_DATE", "2026-01-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T12:00:00Z")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("AGENTGATE_CONFIG")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running git {}", args.join(" ")))?;
        Ok(out)
    }

    fn git_ok(&self, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
        let out = self.git(dir, args)?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn commit(
        &self,
        work: &Path,
        author: (&str, &str),
        file: &str,
        message: &str,
    ) -> anyhow::Result<String> {
        std::fs::write(work.join(file), format!("{message}\n"))?;
        self.git_ok(work, &["add", file])?;
        let ident = format!("{} <{}>", author.0, author.1);
        self.git_ok(
            work,
            &[
                "-c",
                &format!("user.name={}", author.0),
                "-c",
                &format!("user.email={}", author.1),
                "commit",
                "-q",
                "--author",
                &ident,
                "-m",
                message,
            ],
        )?;
        self.git_ok(work, &["rev-parse", "--short", "HEAD"])
    }

    /// Run this agentgate binary; its stdout, or an error with its stderr.
    fn agentgate(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(std::env::current_exe()?)
            .args(args)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_DIR")
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!(
                "agentgate {} failed: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Push and show what the pusher sees; returns whether git accepted it.
    fn push(&self, work: &Path, refspec: &str) -> anyhow::Result<bool> {
        println!("$ git push origin {refspec}");
        let out = self.git(work, &["push", "origin", refspec])?;
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            println!("  {line}");
        }
        Ok(out.status.success())
    }
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str().context("the demo needs UTF-8 paths")
}

pub fn demo(a: &DemoArgs) -> anyhow::Result<ExitCode> {
    let tmp;
    let root = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            if std::fs::read_dir(d)?.next().is_some() {
                bail!("{} is not empty", d.display());
            }
            std::path::absolute(d)?
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("agentgate-demo-")
                .tempdir()?;
            if a.keep {
                tmp.keep()
            } else {
                tmp.path().to_path_buf()
            }
        }
    };
    let demo = Demo {
        home: root.join("home"),
        root: root.clone(),
    };
    std::fs::create_dir_all(&demo.home)?;
    let result = run(&demo);
    if a.keep || a.dir.is_some() {
        println!("\nThe demo server is kept in {}", root.display());
    }
    result
}

/// The story, step by step; each step prints what a user would see.
fn run(d: &Demo) -> anyhow::Result<ExitCode> {
    let server = start_server(d)?;
    let work = d.root.join("work");
    let pushes = pushes_before_the_gate(d, &work)?;
    let gated = gate_in_ci(d, &work)?;

    println!("\n== 6. Now main accepts the agent commit: its tip is attested by the trusted gate");
    let attested_ok = d.push(&work, "main")?;

    let verified_ok = verify_by_hand(d, &work, &gated)?;
    show_audit_log(&server)?;

    let ok = pushes.human_ok
        && pushes.agent_refused
        && pushes.branch_ok
        && pushes.ff_refused
        && gated.notes_ok
        && attested_ok
        && verified_ok;
    println!(
        "\n{}",
        if ok {
            "demo: every step behaved as expected"
        } else {
            "demo: a step did not behave as expected (see above)"
        }
    );
    Ok(crate::exit::ok_or_refused(ok))
}

/// A bare server repository with the hook installed, a policy trusting a fresh gate key, and a
/// clone of it to work in. Returns the server's path.
fn start_server(d: &Demo) -> anyhow::Result<PathBuf> {
    let server = d.root.join("server.git");
    let work = d.root.join("work");
    println!("== A throwaway Git server with agentgate installed");
    d.git_ok(
        &d.root,
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            server.to_str().context("non-UTF-8 path")?,
        ],
    )?;
    let policy = server.join("agentgate.toml");
    // The CI gate's key pair; the server trusts its public half.
    d.agentgate(&["keygen", "--out", path_str(&d.root.join("gate"))?])?;
    std::fs::write(
        &policy,
        format!(
            "{DEMO_POLICY}\n[[signer]]\nname = \"ci-gate\"\npublic_key = \"{}\"\n",
            d.root.join("gate.pub").display()
        ),
    )?;
    let exe = std::env::current_exe()?;
    let out = Command::new(&exe)
        .args(["install", "--repo"])
        .arg(&server)
        .output()?;
    if !out.status.success() {
        bail!(
            "installing the hook failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!(
        "server: {}  (policy: protect refs/heads/main and refs/tags/v*, detect known agents)",
        server.display()
    );
    d.git_ok(
        &d.root,
        &[
            "clone",
            "-q",
            server.to_str().context("non-UTF-8 path")?,
            "work",
        ],
    )?;
    d.git_ok(&work, &["checkout", "-q", "-b", "main"])?;
    Ok(server)
}

/// What the pushes before the gate showed.
struct Pushes {
    human_ok: bool,
    agent_refused: bool,
    branch_ok: bool,
    ff_refused: bool,
}

/// Steps 1 to 4: a human commit accepted, an agent commit refused on main, accepted on an
/// unprotected branch, and still refused when main is fast-forwarded to it.
fn pushes_before_the_gate(d: &Demo, work: &Path) -> anyhow::Result<Pushes> {
    println!("\n== 1. A human commit to main is accepted");
    let c = d.commit(
        work,
        ("Ada Lovelace", "ada@example.com"),
        "README",
        "Start the project",
    )?;
    println!("commit {c} by Ada Lovelace <ada@example.com>");
    let human_ok = d.push(work, "main")?;

    println!("\n== 2. An AI-agent commit to main is refused");
    let c = d.commit(
        work,
        ("Ada Lovelace", "ada@example.com"),
        "engine.rs",
        "Add the analytical engine\n\nCo-Authored-By: Claude <noreply@anthropic.com>",
    )?;
    println!("commit {c} with trailer \"Co-Authored-By: Claude <noreply@anthropic.com>\"");
    let agent_refused = !d.push(work, "main")?;

    println!("\n== 3. The same commit on an unprotected branch is accepted");
    let branch_ok = d.push(work, "HEAD:refs/heads/agent/engine")?;

    println!("\n== 4. ...but fast-forwarding main to it later is still refused");
    let ff_refused = !d.push(work, "main")?;
    Ok(Pushes {
        human_ok,
        agent_refused,
        branch_ok,
        ff_refused,
    })
}

/// What the gate produced.
struct Gated {
    head: String,
    attestations: PathBuf,
    notes_ok: bool,
}

/// Step 5: CI gates exactly that commit (a clean checkout built, tested and signed) and pushes
/// the attestation.
fn gate_in_ci(d: &Demo, work: &Path) -> anyhow::Result<Gated> {
    println!("\n== 5. CI gates exactly that commit: a clean checkout is built, tested and signed");
    let gate_key = d.root.join("gate.key");
    let head = d.git_ok(work, &["rev-parse", "HEAD"])?;
    let short = head.get(..7).unwrap_or(&head);
    let attestations = d.root.join("attestations");
    // The gate isolates the build with bubblewrap and refuses to build without it. So that the
    // demo still tells its story on a laptop without bwrap, it then says so and runs the gate
    // unisolated; a CI gate must never do that.
    let unisolated = crate::gate::sandbox_unavailable();
    if let Some(why) = &unisolated {
        println!("  (bubblewrap cannot run here: {why}.");
        println!("   This demo gate runs with --danger-no-sandbox; a CI gate refuses instead.)");
    }
    println!(
        "$ agentgate gate --key gate.key --commit {short} --build 'cp engine.rs engine.bin' --test 'test -s engine.bin' --artifact engine.bin --out attestations --note{}",
        if unisolated.is_some() { " --danger-no-sandbox" } else { "" }
    );
    let mut gate_args = vec![
        "gate",
        "--key",
        path_str(&gate_key)?,
        "--repo",
        path_str(work)?,
        "--commit",
        &head,
        "--build",
        "cp engine.rs engine.bin",
        "--test",
        "test -s engine.bin",
        "--artifact",
        "engine.bin",
        "--out",
        path_str(&attestations)?,
        "--note",
    ];
    if unisolated.is_some() {
        gate_args.push("--danger-no-sandbox");
    }
    let gated = d.agentgate(&gate_args)?;
    for line in gated.lines() {
        println!("  {line}");
    }
    let notes_ok = d.push(work, "refs/notes/agentgate")?;
    Ok(Gated {
        head,
        attestations,
        notes_ok,
    })
}

/// Step 7: a release manager verifies, offline, the artifact the gate kept (`--out` copies it
/// to attestations/artifacts/) against the note that travels with the commit.
fn verify_by_hand(d: &Demo, work: &Path, gated: &Gated) -> anyhow::Result<bool> {
    println!("\n== 7. A release manager verifies the artifact by hand, offline");
    let artifact = gated.attestations.join("artifacts").join("engine.bin");
    println!(
        "$ agentgate verify --note {} --key gate.pub attestations/artifacts/engine.bin",
        gated.head.get(..7).unwrap_or(&gated.head)
    );
    let verified = d.agentgate(&[
        "verify",
        "--note",
        &gated.head,
        "--repo",
        path_str(work)?,
        "--key",
        path_str(&d.root.join("gate.pub"))?,
        path_str(&artifact)?,
    ]);
    Ok(match verified {
        Ok(text) => {
            for line in text.lines() {
                println!("  {line}");
            }
            true
        }
        Err(e) => {
            println!("  {e:#}");
            false
        }
    })
}

/// The audit log, one line per ref decision.
fn show_audit_log(server: &Path) -> anyhow::Result<()> {
    println!("\n== The audit log (one JSON line per ref decision)");
    let log =
        std::fs::read_to_string(server.join("agentgate").join("audit.jsonl")).unwrap_or_default();
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let new = v["new"].as_str().unwrap_or("?");
        println!(
            "  {} {} {} [{}]",
            v["decision"].as_str().unwrap_or("?"),
            v["ref"].as_str().unwrap_or("?"),
            new.get(..7).unwrap_or(new),
            v["code"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}
