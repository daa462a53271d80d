//! Class 7: a deadline. A policy regex such as `(?s).{0,5000}X.{0,5000}Y` over a 10 MB message
//! ran for minutes. With `[hook] timeout`, past it the push is refused `[deadline-exceeded]`
//! naming the step that ran out, the audit record is still written, and main does not move.

use std::time::Duration;

use crate::bypass::fixture::*;

/// Compiling this rule alone takes about a second in a debug build on a busy machine, and the
/// deadline covers loading the policy too: the tests give 3 s, so that it runs out while the
/// rule is matched, as the test asserts.
const SLOW_RULE: &str = r#"[[detect.rule]]
id = "slow"
message = '(?s).{0,5000}X.{0,5000}Y'
"#;

/// A human commit on main's tip whose message is about 10 MB of lines with an X and no Y.
fn huge_message_commit(fx: &Fx) -> String {
    let mut msg = b"Regenerate fixtures\n\n".to_vec();
    let line = b"aaaaaaaaaaaaaaaaaaaaXaaaaaaaaaaaaaaaaaaa\n";
    while msg.len() < 10 * 1024 * 1024 {
        msg.extend_from_slice(line);
    }
    let tree = fx.tree_of(&fx.base);
    let mut obj = format!(
        "tree {tree}\nparent {}\nauthor {ADA}\ncommitter {ADA}\n\n",
        fx.base
    )
    .into_bytes();
    obj.extend_from_slice(&msg);
    fx.raw_commit(&obj)
}

fn slow_rule_on_huge_message(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        policy_extra: &format!("{SLOW_RULE}[hook]\ntimeout = \"3s\"\n"),
        ..Options::default()
    });
    let c = huge_message_commit(&fx);
    let (p, took) = fx.push_timed(
        &["origin", &format!("{c}:refs/heads/main")],
        Duration::from_secs(60),
    );
    assert_refused(&p, "deadline-exceeded");
    assert!(
        took < Duration::from_secs(15),
        "refused within a few seconds, took {took:?}:\n{p}"
    );
    let step = regex::Regex::new(r"(?i)\b(detect\w*|walk\w*|attestations?)\b").unwrap();
    assert!(
        step.is_match(p.refusal_line("deadline-exceeded").unwrap_or(""))
            || p.out
                .lines()
                .skip_while(|l| !l.contains("refused [deadline-exceeded]"))
                .any(|l| step.is_match(l)),
        "names the step that ran out:\n{p}"
    );
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    let rec = fx.last_audit("refs/heads/main");
    assert_eq!(rec["code"], "deadline-exceeded", "{rec}");
    assert_eq!(rec["decision"], "refuse", "{rec}");
}
per_format!(slow_rule_on_huge_message:
    deadline_slow_rule_on_10mb_message_is_refused_sha1 => Sha1,
    deadline_slow_rule_on_10mb_message_is_refused_sha256 => Sha256,
);

/// Positive control for the same policy: an ordinary commit is decided well inside 1 s, and
/// the huge one is accepted on an unprotected branch (nothing is detected there).
#[test]
fn deadline_same_policy_ordinary_push_is_accepted_sha1() {
    let fx = Fx::new(Options {
        policy_extra: &format!("{SLOW_RULE}[hook]\ntimeout = \"3s\"\n"),
        ..Options::default()
    });
    let huge = huge_message_commit(&fx);
    let (p, _) = fx.push_timed(
        &["origin", &format!("{huge}:refs/heads/fixtures")],
        Duration::from_secs(60),
    );
    assert_accepted(&p);
    let human = fx.commit_file("app.c", "human\n", "human change with an X but no why");
    let p = fx.push(&["origin", "main"]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}

/// Without `[hook]` the default timeout applies (its value is the implementation's to choose):
/// the huge commit is accepted on an unprotected branch, and an ordinary push under the slow
/// rule is accepted on main.
#[test]
fn deadline_default_timeout_ordinary_push_is_accepted_sha1() {
    let fx = Fx::new(Options {
        policy_extra: SLOW_RULE,
        ..Options::default()
    });
    let huge = huge_message_commit(&fx);
    let (p, _) = fx.push_timed(
        &["origin", &format!("{huge}:refs/heads/fixtures")],
        Duration::from_secs(60),
    );
    assert_accepted(&p);
    let human = fx.commit_file("app.c", "human\n", "human change with an X but no why");
    let (p, _) = fx.push_timed(&["origin", "main"], Duration::from_secs(60));
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}
