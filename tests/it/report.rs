//! `agentgate audit report`: the HTML page loaded in a real headless Chromium (Debian's
//! chromium). The numbers in the rendered DOM are the log's own, counted here independently;
//! the page fetches nothing; a screenshot is kept for CI under target/ci-artifacts/.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::promotion::{setup, PROMOTIONS};

fn chromium() -> Option<&'static str> {
    let path = "/usr/bin/chromium";
    if Path::new(path).exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("chromium is missing (Debian package chromium); run scripts/install-test-deps.sh");
    }
    eprintln!("SKIP report: chromium not found (Debian package chromium; scripts/install-test-deps.sh installs it)");
    None
}

/// Run headless Chromium on `page` with `args`, in its own process group, fresh profile;
/// everything it started is killed before returning.
fn run_chromium(bin: &str, profile: &Path, page: &Path, args: &[&str]) -> Output {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-breakpad",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start chromium");
    let group = child.id();
    // Read the output on threads, so a full pipe cannot stall it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut b).ok();
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut b).ok();
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Whatever chromium left in its group (zygote, utility processes) goes with it.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{group}")])
        .stderr(Stdio::null())
        .status();
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// The text of the element with `id` in the dumped DOM.
fn by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    text_after(dom, &format!("id=\"{id}\""))
}

fn text_after<'a>(dom: &'a str, attr: &str) -> &'a str {
    let at = dom
        .find(attr)
        .unwrap_or_else(|| panic!("{attr} not in the DOM"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap();
    rest[start..start + end].trim()
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("ci-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_html_report_renders_the_logs_numbers_in_chromium() {
    let Some(bin) = chromium() else { return };
    let s = setup("");
    let agent = s.env.agent_commit(&s.work, "a.txt", "Agent change");
    assert!(!s.env.push(&s.work, &["origin", "main"]).0);
    s.attest(&agent, "gate.key");
    assert!(s.env.push(&s.work, &["origin", "main"]).0);
    assert!(
        !s.env
            .push(&s.work, &["origin", &format!("+HEAD:{PROMOTIONS}")])
            .0
    );
    s.env.commit(&s.work, "b.txt", "Human change");
    assert!(s.env.push(&s.work, &["origin", "HEAD:refs/heads/topic"]).0);

    // The numbers, counted from the log here.
    let log = s.env.audit(&s.server);
    let is_promotion = |r: &&serde_json::Value| {
        r["decision"] == "accept"
            && !r["protected_by"].is_null()
            && (r["code"] == "attested" || r["code"] == "no-agent-commits")
    };
    let promotions = log.iter().filter(is_promotion).count();
    let refusals = log.iter().filter(|r| r["decision"] == "refuse").count();
    let unattested = log
        .iter()
        .filter(|r| r["code"] == "agent-commit-unattested")
        .count();
    assert_eq!((promotions, refusals, unattested), (2, 2, 1));

    let page = s.env.path().join("report.html");
    let key = s.env.path().join("server.pub");
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "audit",
            "report",
            "--repo",
            s.server.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--html",
            page.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for fetch in ["src=", "href=", "url(", "@import"] {
        assert!(
            !html.contains(fetch),
            "the page refers to something outside: {fetch}"
        );
    }

    let profile = tempfile::tempdir().unwrap();
    let dumped = run_chromium(bin, profile.path(), &page, &["--dump-dom"]);
    let dom = String::from_utf8_lossy(&dumped.stdout).into_owned();
    assert!(
        dumped.status.success() && dom.contains("agentgate: audit report"),
        "chromium: {}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    assert_eq!(by_id(&dom, "total-records"), log.len().to_string());
    assert_eq!(by_id(&dom, "total-promotions"), promotions.to_string());
    assert_eq!(by_id(&dom, "total-refusals"), refusals.to_string());
    assert_eq!(
        text_after(&dom, "data-code=\"agent-commit-unattested\""),
        unattested.to_string()
    );
    assert_eq!(
        text_after(&dom, "data-code=\"promotions-ref-reserved\""),
        "1"
    );
    assert_eq!(
        text_after(&dom, "data-rule=\"known-agents:claude-co-author\""),
        "1",
        "one agent commit, refused then admitted, counted once"
    );
    assert!(dom.contains("data-signer=\"ci-gate\""), "{dom}");
    assert_eq!(by_id(&dom, "total-break-glass"), "0");
    assert_eq!(
        text_after(&dom, "data-ok=\"true\""),
        "Verified: every decision re-derives, the hash chain is whole"
    );
    assert_eq!(by_id(&dom, "verify-problems"), "0");
    // One ref per push here, so one signed checkpoint per record.
    assert_eq!(by_id(&dom, "verify-checkpoints"), log.len().to_string());
    // Promotions over time: per day, as the records' own times say.
    let mut by_day = std::collections::BTreeMap::<String, usize>::new();
    for r in log.iter().filter(is_promotion) {
        let day = r["time"].as_str().unwrap().get(..10).unwrap().to_string();
        *by_day.entry(day).or_default() += 1;
    }
    assert!(!by_day.is_empty());
    for (day, n) in &by_day {
        assert_eq!(
            text_after(&dom, &format!("data-day=\"{day}\"")),
            n.to_string()
        );
    }

    // --since: only the records at or after that time are counted (from the attested push on).
    let since = log.iter().find(|r| r["code"] == "attested").unwrap()["time"]
        .as_str()
        .unwrap()
        .to_string();
    let later: Vec<&serde_json::Value> = log
        .iter()
        .filter(|r| r["time"].as_str().unwrap() >= since.as_str())
        .collect();
    assert!(later.len() < log.len());
    let since_page = s.env.path().join("since.html");
    let out = s.env.agentgate(
        s.env.path(),
        &[
            "audit",
            "report",
            "--repo",
            s.server.to_str().unwrap(),
            "--since",
            &since,
            "--html",
            since_page.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let since_html = std::fs::read_to_string(&since_page).unwrap();
    assert_eq!(by_id(&since_html, "total-records"), later.len().to_string());
    assert_eq!(
        by_id(&since_html, "total-promotions"),
        later
            .iter()
            .copied()
            .filter(is_promotion)
            .count()
            .to_string()
    );
    assert_eq!(
        by_id(&since_html, "total-refusals"),
        later
            .iter()
            .filter(|r| r["decision"] == "refuse")
            .count()
            .to_string()
    );

    let shot = artifacts().join("audit-report.png");
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let out = run_chromium(
        bin,
        profile.path(),
        &page,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1800",
            "--hide-scrollbars",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}
