//! Class 2 (repro-1): `refs/replace/*` pushed to the server must never change what the hook
//! reads. In SHA-256 and reftable repositories agentgate reads through the `git` CLI, which
//! follows replace refs unless told not to; libgit2 (SHA-1, files) does not. Both backends must
//! read the original objects, in the hook and in `agentgate check` / `agentgate inspect`.

use crate::bypass::fixture::*;

/// A server with main at "base", an agent commit A on top (not pushed), and a human-looking
/// twin H of A (same parent and tree) registered locally as A's replacement.
struct Replaced {
    fx: Fx,
    agent: String,
}

fn agent_with_human_twin(fmt: Fmt) -> Replaced {
    let fx = Fx::new(Options {
        fmt,
        ..Options::default()
    });
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    // Control: without replace refs the agent commit is refused.
    let p = fx.push(&["origin", "main"]);
    assert_refused(&p, "agent-commit-unattested");
    let twin = fx.commit_tree(&fx.tree_of(&agent), &[&fx.base], "harmless refactor");
    fx.git(&["replace", &agent, &twin]);
    Replaced { fx, agent }
}

fn replace_ref_hides_agent_commit(fmt: Fmt) {
    let r = agent_with_human_twin(fmt);
    let fx = &r.fx;
    // The replace ref in the same push as main: the hook must not read it either.
    let p = fx.push(&["origin", "refs/replace/*:refs/replace/*", "main"]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    // Positive control: the replace ref and a side branch alone are unprotected: accepted.
    let p = fx.push(&[
        "origin",
        "refs/replace/*:refs/replace/*",
        &format!("{}:refs/heads/side", r.agent),
    ]);
    assert_accepted(&p);
    assert!(fx
        .server_ref(&format!("refs/replace/{}", r.agent))
        .is_some());
    // repro-1 push 2: main -> A with the replacement on the server.
    let p = fx.push(&["origin", "main"]);
    assert_refused(&p, "agent-commit-unattested");
    assert!(p.out.contains(&r.agent[..7]), "names A:\n{p}");
    assert!(p.out.contains(CLAUDE_TRAILER), "A's own trailer:\n{p}");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    let rec = fx.last_audit("refs/heads/main");
    assert_eq!(rec["code"], "agent-commit-unattested", "{rec}");
    assert_eq!(rec["agent_commits"][0]["commit"], r.agent.as_str(), "{rec}");
}
per_format!(replace_ref_hides_agent_commit:
    replace_ref_hides_agent_commit_sha1 => Sha1,
    replace_ref_hides_agent_commit_sha256 => Sha256,
    replace_ref_hides_agent_commit_reftable => Reftable,
);

/// repro-1 variant: a rewrite X of main replaced (here with `git replace --graft`, the
/// attacker's natural tool) by a commit whose parent is main's tip looks like a fast-forward.
fn replace_ref_hides_non_fast_forward(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        ..Options::default()
    });
    let fix = fx.commit_file("app.c", "fixed\n", "security fix");
    assert_accepted(&fx.push(&["origin", "main"]));
    let rewrite = fx.commit_tree(&fx.tree_of(&fx.base), &[&fx.base], "history rewrite");
    let p = fx.push(&["origin", &format!("+{rewrite}:refs/heads/main")]);
    assert_refused(&p, "non-fast-forward"); // control
    fx.git(&["replace", "--graft", &rewrite, &fix]);
    let p = fx.push(&[
        "origin",
        "refs/replace/*:refs/replace/*",
        &format!("{rewrite}:refs/heads/side2"),
    ]);
    assert_accepted(&p);
    let p = fx.push(&["origin", &format!("+{rewrite}:refs/heads/main")]);
    assert_refused(&p, "non-fast-forward");
    fx.assert_server_ref("refs/heads/main", Some(&fix), &p);
}
per_format!(replace_ref_hides_non_fast_forward:
    replace_ref_hides_non_fast_forward_sha1 => Sha1,
    replace_ref_hides_non_fast_forward_sha256 => Sha256,
    replace_ref_hides_non_fast_forward_reftable => Reftable,
);

/// The dry run and the inspector read the server the same way the hook does: with A's
/// replacement on the server, `check` still refuses A and `inspect` shows A's own trailer.
fn check_and_inspect_read_original_objects(fmt: Fmt) {
    let r = agent_with_human_twin(fmt);
    let fx = &r.fx;
    assert_accepted(&fx.push(&[
        "origin",
        "refs/replace/*:refs/replace/*",
        &format!("{}:refs/heads/side", r.agent),
    ]));
    let server = s(&fx.server);
    let out = fx.agentgate(
        &fx.server,
        &[
            "check",
            "--repo",
            server,
            "--config",
            s(&fx.policy),
            &fx.base,
            &r.agent,
            "refs/heads/main",
        ],
    );
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "check refuses:\n{shown}");
    assert!(
        shown.contains("agentgate: refused [agent-commit-unattested]"),
        "check:\n{shown}"
    );

    let out = fx.agentgate(
        &fx.server,
        &[
            "inspect",
            "--repo",
            server,
            "--config",
            s(&fx.policy),
            &format!("{}..{}", fx.base, r.agent),
        ],
    );
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "inspect:\n{shown}");
    assert!(
        shown.contains(CLAUDE_TRAILER) && shown.contains("agent change"),
        "inspect shows the original commit:\n{shown}"
    );
    assert!(
        !shown.contains("harmless refactor"),
        "inspect must not show the replacement:\n{shown}"
    );
}
per_format!(check_and_inspect_read_original_objects:
    replace_check_and_inspect_read_original_objects_sha1 => Sha1,
    replace_check_and_inspect_read_original_objects_sha256 => Sha256,
    replace_check_and_inspect_read_original_objects_reftable => Reftable,
);

/// Positive control: with replace refs on the server, an honest human push is accepted.
#[test]
fn replace_honest_push_with_replace_refs_present_is_accepted_sha256() {
    let r = agent_with_human_twin(Fmt::Sha256);
    let fx = &r.fx;
    assert_accepted(&fx.push(&[
        "origin",
        "refs/replace/*:refs/replace/*",
        &format!("{}:refs/heads/side", r.agent),
    ]));
    fx.git(&["reset", "-q", "--hard", &fx.base]);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push(&["origin", "main"]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}
