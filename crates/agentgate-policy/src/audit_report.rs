//! `agentgate audit report`: the audit log as one page people can read, for a security
//! review: promotions and refusals, over time and by code, agent commits by agent and rule,
//! which signer admitted what, break-glass uses, and whether the log verifies. One
//! self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched), every number in
//! an element with an `id` or `data-*` attribute so a test can read it back from the DOM.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::audit_verify::Report;
use crate::promotion::promotable;

/// What the log says, counted.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub records: usize,
    pub promotions: usize,
    pub refusals: usize,
    /// Promotions per day (`YYYY-MM-DD`).
    pub promotions_by_day: BTreeMap<String, usize>,
    pub refusals_by_code: BTreeMap<String, usize>,
    /// (agent, rule) -> distinct agent commits.
    pub agent_commits: BTreeMap<(String, String), usize>,
    /// Admissions: (signer, commit, ref, time, predicate types) of accepted moves.
    pub admissions: Vec<Admission>,
    /// Records whose code starts with `break-glass`.
    pub break_glass: Vec<(String, String, String, String)>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    pub signer: String,
    pub commit: String,
    pub refname: String,
    pub time: String,
    pub predicate_types: Vec<String>,
}

/// `--since`: a date (midnight UTC) or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is neither YYYY-MM-DD nor an RFC 3339 time"))
}

/// The agent a rule id names: `known-agents:claude-co-author` -> `claude`; a policy's own rule
/// (`policy:bots`) is its own agent.
pub fn agent_of(rule: &str) -> String {
    match rule.split_once(':') {
        Some(("known-agents", name)) => name.split('-').next().unwrap_or(name).to_string(),
        _ => rule.to_string(),
    }
}

/// Count the records at or after `since`.
pub fn summarize(log: &[u8], since: Option<DateTime<Utc>>) -> Summary {
    let mut s = Summary::default();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for raw in log.split(|&b| b == b'\n') {
        let Ok(rec @ Value::Object(_)) = serde_json::from_slice::<Value>(raw) else {
            continue;
        };
        let f = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let time = f("time");
        let when = DateTime::parse_from_rfc3339(&time)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        if let (Some(since), Some(when)) = (since, when) {
            if when < since {
                continue;
            }
        }
        s.records += 1;
        let code = f("code");
        if f("decision") == "refuse" {
            s.refusals += 1;
            *s.refusals_by_code.entry(code.clone()).or_default() += 1;
        } else if moved_protected(&rec) {
            s.promotions += 1;
            let day = time.get(..10).unwrap_or("unknown").to_string();
            *s.promotions_by_day.entry(day).or_default() += 1;
            let mut by_signer: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
            for a in rec
                .get("attestations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|a| a.get("admitted").and_then(Value::as_bool) == Some(true))
            {
                let g = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let e = by_signer
                    .entry(g("signer"))
                    .or_insert_with(|| (g("commit"), Vec::new()));
                let t = g("predicate_type");
                if !e.1.contains(&t) {
                    e.1.push(t);
                }
            }
            for (signer, (commit, predicate_types)) in by_signer {
                s.admissions.push(Admission {
                    signer,
                    commit,
                    refname: f("ref"),
                    time: time.clone(),
                    predicate_types,
                });
            }
        }
        if code.starts_with("break-glass") {
            s.break_glass
                .push((time.clone(), f("ref"), code.clone(), pusher_name(&rec)));
        }
        for c in rec
            .get("agent_commits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let commit = c.get("commit").and_then(Value::as_str).unwrap_or("");
            for m in c
                .get("matches")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let rule = m.get("rule").and_then(Value::as_str).unwrap_or("");
                if seen.insert((commit.to_string(), rule.to_string())) {
                    *s.agent_commits
                        .entry((agent_of(rule), rule.to_string()))
                        .or_default() += 1;
                }
            }
        }
    }
    s
}

/// A promotion, for the report: an accepted move of a protected ref to a revision. Wider than
/// what gets a promotion record ([`crate::promotion::promotable`]): a break-glass acceptance
/// (issue 15's codes) is a promotion too, and is listed on its own below.
fn moved_protected(rec: &Value) -> bool {
    let s = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("");
    s("decision") == "accept"
        && rec.get("protected_by").is_some_and(|p| !p.is_null())
        && (promotable(rec) || s("code").starts_with("break-glass"))
}

fn pusher_name(rec: &Value) -> String {
    rec.pointer("/pusher/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Text safe inside HTML elements and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar chart of promotions per day, as inline SVG.
fn chart(by_day: &BTreeMap<String, usize>) -> String {
    let max = by_day.values().copied().max().unwrap_or(0).max(1);
    let (w, h, gap) = (28usize, 120usize, 6usize);
    let width = (by_day.len() * (w + gap)).max(w + gap) + gap;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"promotions per day\" width=\"{width}\" height=\"{}\" viewBox=\"0 0 {width} {}\">",
        h + 40,
        h + 40
    );
    for (i, (day, n)) in by_day.iter().enumerate() {
        let bar = h * n / max;
        let x = gap + i * (w + gap);
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{bar}\" fill=\"#2f6f4f\"><title>{} {n}</title></rect><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{n}</text><text x=\"{}\" y=\"{}\" font-size=\"8\" text-anchor=\"middle\">{}</text>",
            10 + h - bar,
            esc(day),
            x + w / 2,
            8 + h - bar,
            x + w / 2,
            h + 24,
            esc(day.get(5..).unwrap_or(day))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The whole page.
pub fn html(log: &[u8], since: Option<DateTime<Utc>>, verified: &Report, log_name: &str) -> String {
    let s = summarize(log, since);
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    h.push_str("<title>agentgate: audit report</title><style>");
    h.push_str("body{font-family:system-ui,sans-serif;margin:2em;color:#1b1b1b;max-width:70em}");
    h.push_str("table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:left}");
    h.push_str("th{background:#eee}.num{text-align:right;font-variant-numeric:tabular-nums}");
    h.push_str(
        ".totals{display:flex;gap:2em}.totals div{border:1px solid #bbb;padding:.6em 1.2em}",
    );
    h.push_str(
        ".big{font-size:2em;display:block}.ok{color:#2f6f4f}.bad{color:#a11}code{font-size:.9em}",
    );
    h.push_str("</style></head><body>\n");
    let _ = write!(
        h,
        "<h1>agentgate: audit report</h1><p>Log <code>{}</code>{}; generated {}.</p>",
        esc(log_name),
        since
            .map(|t| format!(", records since {}", esc(&t.to_rfc3339())))
            .unwrap_or_default(),
        esc(&Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    );
    let _ = write!(
        h,
        "<section class=\"totals\"><div>Records<span class=\"big\" id=\"total-records\">{}</span></div><div>Promotions<span class=\"big\" id=\"total-promotions\">{}</span></div><div>Refusals<span class=\"big\" id=\"total-refusals\">{}</span></div></section>",
        s.records, s.promotions, s.refusals
    );

    h.push_str("<h2>Promotions over time</h2>");
    if s.promotions_by_day.is_empty() {
        h.push_str("<p>No promotions.</p>");
    } else {
        h.push_str(&chart(&s.promotions_by_day));
        h.push_str("<table id=\"promotions-by-day\"><tr><th>Day</th><th>Promotions</th></tr>");
        for (day, n) in &s.promotions_by_day {
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=\"num\" data-day=\"{}\">{n}</td></tr>",
                esc(day),
                esc(day)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Refusals by code</h2><table id=\"refusals-by-code\"><tr><th>Code</th><th>Refusals</th></tr>");
    for (code, n) in &s.refusals_by_code {
        let _ = write!(
            h,
            "<tr><td><code>{}</code></td><td class=\"num\" data-code=\"{}\">{n}</td></tr>",
            esc(code),
            esc(code)
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Agent commits by agent and rule</h2><p>Distinct commits each rule matched, in every decision logged (refused and accepted).</p><table id=\"agent-commits\"><tr><th>Agent</th><th>Rule</th><th>Commits</th></tr>");
    for ((agent, rule), n) in &s.agent_commits {
        let _ = write!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\" data-rule=\"{}\">{n}</td></tr>",
            esc(agent),
            esc(rule),
            esc(rule)
        );
    }
    h.push_str("</table>");

    h.push_str("<h2>Which signer admitted what</h2><table id=\"admissions\"><tr><th>Signer</th><th>Commit</th><th>Ref</th><th>Time</th><th>Predicates</th></tr>");
    for a in &s.admissions {
        let _ = write!(
            h,
            "<tr data-signer=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.signer),
            esc(&a.signer),
            esc(a.commit.get(..12).unwrap_or(&a.commit)),
            esc(&a.refname),
            esc(&a.time),
            esc(&a.predicate_types.join(", "))
        );
    }
    h.push_str("</table>");

    let _ = write!(
        h,
        "<h2>Break-glass uses</h2><p>Total: <span id=\"total-break-glass\">{}</span></p>",
        s.break_glass.len()
    );
    if !s.break_glass.is_empty() {
        h.push_str("<table id=\"break-glass\"><tr><th>Time</th><th>Ref</th><th>Code</th><th>Pusher</th></tr>");
        for (t, r, c, p) in &s.break_glass {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(t),
                esc(r),
                esc(c),
                esc(p)
            );
        }
        h.push_str("</table>");
    }

    let clean = verified.problems.is_empty() && verified.records > 0;
    let _ = write!(
        h,
        "<h2>Verification of the log</h2><p id=\"chain-result\" class=\"{}\" data-ok=\"{clean}\">{}</p>",
        if clean { "ok" } else { "bad" },
        if clean {
            "Verified: every decision re-derives, the hash chain is whole"
        } else {
            "NOT verified: see the problems below"
        }
    );
    let _ = write!(
        h,
        "<table><tr><th>Records in the log</th><td class=\"num\" id=\"verify-records\">{}</td></tr><tr><th>Re-derived identically</th><td class=\"num\" id=\"verify-rederived\">{}</td></tr><tr><th>Signed checkpoints verified</th><td class=\"num\" id=\"verify-checkpoints\">{}</td></tr><tr><th>Problems</th><td class=\"num\" id=\"verify-problems\">{}</td></tr></table>",
        verified.records,
        verified.rederived,
        verified.checkpoints,
        verified.problems.len()
    );
    if !verified.problems.is_empty() {
        h.push_str("<table id=\"problems\"><tr><th>Line</th><th>Code</th><th>Problem</th></tr>");
        for p in &verified.problems {
            let _ = write!(
                h,
                "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td>{}</td></tr>",
                p.line,
                p.code,
                esc(&p.message)
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_escapes() {
        let log = concat!(
            r#"{"time":"2026-01-01T10:00:00Z","ref":"refs/heads/main","decision":"accept","code":"attested","protected_by":"refs/heads/main","agent_commits":[{"commit":"aa","matches":[{"rule":"known-agents:claude-co-author"}]}],"attestations":[{"commit":"aa","signer":"ci-gate","predicate_type":"p","admitted":true}]}"#,
            "\n",
            r#"{"time":"2026-01-02T10:00:00Z","ref":"refs/heads/<x>","decision":"refuse","code":"agent-commit-unattested","agent_commits":[{"commit":"aa","matches":[{"rule":"known-agents:claude-co-author"}]}]}"#,
            "\n",
            r#"{"time":"2026-01-02T11:00:00Z","ref":"refs/heads/main","decision":"accept","code":"break-glass","protected_by":"x"}"#,
            "\nnot json\n"
        );
        let s = summarize(log.as_bytes(), None);
        assert_eq!((s.records, s.promotions, s.refusals), (3, 2, 1));
        assert_eq!(
            s.agent_commits.len(),
            1,
            "one commit, one rule, counted once"
        );
        assert_eq!(
            s.admissions.first().map(|a| a.signer.as_str()),
            Some("ci-gate")
        );
        assert_eq!(s.break_glass.len(), 1);
        let s = summarize(log.as_bytes(), Some(parse_since("2026-01-02").unwrap()));
        assert_eq!((s.records, s.promotions), (2, 1));
        let page = html(log.as_bytes(), None, &Report::default(), "a<b");
        assert!(page.contains("a&lt;b") && !page.contains("a<b"));
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(parse_since("yesterday").is_err());
    }
}
