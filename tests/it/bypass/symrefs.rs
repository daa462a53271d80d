//! Class 3 (repro-2): a pushed name that is a symbolic ref on the server is decided as the ref
//! it finally names: update, rewind and deletion alike, through chains, dangling symrefs, and a
//! protected-named symref pointing at an unprotected branch. The audit record keeps the pushed
//! name in `ref` and gives the final name in `resolved_ref`.

use crate::bypass::fixture::*;

fn fx(fmt: Fmt) -> Fx {
    Fx::new(Options {
        fmt,
        ..Options::default()
    })
}

/// The refusal is recorded under the pushed name, resolved to `target`.
#[track_caller]
fn assert_audit_resolved(fx: &Fx, pushed: &str, target: &str, code: &str) {
    let rec = fx.last_audit(pushed);
    assert_eq!(rec["code"], code, "{rec}");
    assert_eq!(rec["resolved_ref"], target, "{rec}");
}

/// repro-2: the admin's alias `master -> main` (kept after a default-branch rename).
fn agent_commit_through_alias(fmt: Fmt) {
    let fx = fx(fmt);
    fx.srv(&["symbolic-ref", "refs/heads/master", "refs/heads/main"]);
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    assert_refused(&fx.push(&["origin", "main"]), "agent-commit-unattested"); // control
    let p = fx.push(&["origin", &format!("{agent}:refs/heads/master")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    assert_eq!(
        fx.srv(&["symbolic-ref", "refs/heads/master"]),
        "refs/heads/main"
    );
    assert_audit_resolved(
        &fx,
        "refs/heads/master",
        "refs/heads/main",
        "agent-commit-unattested",
    );
}
per_format!(agent_commit_through_alias:
    symrefs_agent_commit_through_alias_sha1 => Sha1,
    symrefs_agent_commit_through_alias_sha256 => Sha256,
    symrefs_agent_commit_through_alias_reftable => Reftable,
);

/// repro-2, second half: `git push origin :refs/heads/master` deletes main.
fn delete_through_alias(fmt: Fmt) {
    let fx = fx(fmt);
    fx.srv(&["symbolic-ref", "refs/heads/master", "refs/heads/main"]);
    let p = fx.push(&["origin", ":refs/heads/master"]);
    assert_refused(&p, "protected-ref-delete");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    assert_audit_resolved(
        &fx,
        "refs/heads/master",
        "refs/heads/main",
        "protected-ref-delete",
    );
}
per_format!(delete_through_alias:
    symrefs_delete_through_alias_sha1 => Sha1,
    symrefs_delete_through_alias_sha256 => Sha256,
    symrefs_delete_through_alias_reftable => Reftable,
);

/// A force-push through the alias rewinds main.
fn force_push_through_alias(fmt: Fmt) {
    let fx = fx(fmt);
    let fix = fx.commit_file("app.c", "fixed\n", "security fix");
    assert_accepted(&fx.push(&["origin", "main"]));
    fx.srv(&["symbolic-ref", "refs/heads/master", "refs/heads/main"]);
    let rewrite = fx.commit_tree(&fx.tree_of(&fx.base), &[&fx.base], "history rewrite");
    let p = fx.push(&["origin", &format!("+{rewrite}:refs/heads/master")]);
    assert_refused(&p, "non-fast-forward");
    fx.assert_server_ref("refs/heads/main", Some(&fix), &p);
    assert_audit_resolved(
        &fx,
        "refs/heads/master",
        "refs/heads/main",
        "non-fast-forward",
    );
}
per_format!(force_push_through_alias:
    symrefs_force_push_through_alias_sha1 => Sha1,
    symrefs_force_push_through_alias_sha256 => Sha256,
    symrefs_force_push_through_alias_reftable => Reftable,
);

/// A chain `master -> trunk -> main`: update and deletion through its head.
fn chain(fmt: Fmt) {
    let fx = fx(fmt);
    fx.srv(&["symbolic-ref", "refs/heads/trunk", "refs/heads/main"]);
    fx.srv(&["symbolic-ref", "refs/heads/master", "refs/heads/trunk"]);
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    let p = fx.push(&["origin", &format!("{agent}:refs/heads/master")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
    assert_audit_resolved(
        &fx,
        "refs/heads/master",
        "refs/heads/main",
        "agent-commit-unattested",
    );
    let p = fx.push(&["origin", ":refs/heads/master"]);
    assert_refused(&p, "protected-ref-delete");
    fx.assert_server_ref("refs/heads/main", Some(&fx.base), &p);
}
per_format!(chain:
    symrefs_chain_master_trunk_main_sha1 => Sha1,
    symrefs_chain_master_trunk_main_sha256 => Sha256,
    symrefs_chain_master_trunk_main_reftable => Reftable,
);

/// A dangling symref whose target is protected: pushing to it creates the target, so it is
/// decided as creating `release/next` (refused for an unattested agent commit; an honest
/// commit is accepted and creates it).
fn dangling_symref_to_protected_target(fmt: Fmt) {
    let fx = fx(fmt);
    fx.srv(&["symbolic-ref", "refs/heads/next", "refs/heads/release/next"]);
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    let p = fx.push(&["origin", &format!("{agent}:refs/heads/next")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/release/next", None, &p);
    assert_audit_resolved(
        &fx,
        "refs/heads/next",
        "refs/heads/release/next",
        "agent-commit-unattested",
    );
    // Positive control.
    fx.git(&["reset", "-q", "--hard", &fx.base]);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push(&["origin", &format!("{human}:refs/heads/next")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/release/next", Some(&human), &p);
}
per_format!(dangling_symref_to_protected_target:
    symrefs_dangling_symref_to_protected_target_sha1 => Sha1,
    symrefs_dangling_symref_to_protected_target_sha256 => Sha256,
    symrefs_dangling_symref_to_protected_target_reftable => Reftable,
);

/// `main -> dev`: a protected name pointing at an unprotected branch. Pushing to `dev` moves
/// what `main` resolves to, so it is decided as protected; so is pushing to `main` itself.
fn protected_name_pointing_at_unprotected_branch(fmt: Fmt) {
    let fx = fx(fmt);
    assert_accepted(&fx.push(&["origin", "main:refs/heads/dev"]));
    fx.srv(&["symbolic-ref", "refs/heads/main", "refs/heads/dev"]);
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    let p = fx.push(&["origin", &format!("{agent}:refs/heads/dev")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/dev", Some(&fx.base), &p);
    let p = fx.push(&["origin", &format!("{agent}:refs/heads/main")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/dev", Some(&fx.base), &p);
    // Positive control: honest work on dev is accepted.
    fx.git(&["reset", "-q", "--hard", &fx.base]);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push(&["origin", &format!("{human}:refs/heads/dev")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/dev", Some(&human), &p);
    assert_eq!(
        fx.srv(&["symbolic-ref", "refs/heads/main"]),
        "refs/heads/dev"
    );
}
per_format!(protected_name_pointing_at_unprotected_branch:
    symrefs_protected_name_pointing_at_unprotected_branch_sha1 => Sha1,
    symrefs_protected_name_pointing_at_unprotected_branch_sha256 => Sha256,
    symrefs_protected_name_pointing_at_unprotected_branch_reftable => Reftable,
);

/// `main -> dev` adds nothing to the trusted tips: an agent commit that reached dev before the
/// alias existed is not "already on a protected ref" when a release branch is cut from it.
fn protected_name_adds_nothing_to_trusted_tips(fmt: Fmt) {
    let fx = fx(fmt);
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    assert_accepted(&fx.push(&["origin", &format!("{agent}:refs/heads/dev")]));
    fx.srv(&["symbolic-ref", "refs/heads/main", "refs/heads/dev"]);
    let p = fx.push(&["origin", &format!("{agent}:refs/heads/release/1.0")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref("refs/heads/release/1.0", None, &p);
}
per_format!(protected_name_adds_nothing_to_trusted_tips:
    symrefs_protected_name_adds_nothing_to_trusted_tips_sha1 => Sha1,
    symrefs_protected_name_adds_nothing_to_trusted_tips_sha256 => Sha256,
);

/// Positive control: honest work pushed through the alias is accepted and moves main.
fn honest_push_through_alias(fmt: Fmt) {
    let fx = fx(fmt);
    fx.srv(&["symbolic-ref", "refs/heads/master", "refs/heads/main"]);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push(&["origin", &format!("{human}:refs/heads/master")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
    assert_eq!(
        fx.srv(&["symbolic-ref", "refs/heads/master"]),
        "refs/heads/main"
    );
}
per_format!(honest_push_through_alias:
    symrefs_honest_push_through_alias_is_accepted_sha1 => Sha1,
    symrefs_honest_push_through_alias_is_accepted_sha256 => Sha256,
    symrefs_honest_push_through_alias_is_accepted_reftable => Reftable,
);
