//! Class 4 (repro-3): one repository served with and without `GIT_NAMESPACE`. Pushed without a
//! namespace, `refs/namespaces/<ns>/<rest>` (nested namespaces too) is protected exactly when
//! `<rest>` is; pushed with one, nothing changes.

use crate::bypass::fixture::*;

const NS_MAIN: &str = "refs/namespaces/foo/refs/heads/main";

/// A server where namespace `foo` has its own main at "base", pushed through a namespaced
/// receive-pack (what a server does when the URL selects a namespace), and an agent commit.
fn namespaced(fmt: Fmt) -> (Fx, String) {
    let fx = Fx::new(Options {
        fmt,
        ..Options::default()
    });
    assert_accepted(&fx.push_env(&[("GIT_NAMESPACE", "foo")], &["origin", "main"]));
    assert_eq!(fx.server_ref(NS_MAIN).as_deref(), Some(fx.base.as_str()));
    let agent = fx.agent_commit("app.c", "agent\n", "agent change");
    (fx, agent)
}

/// repro-3: the namespaced control is refused; the same commit pushed without a namespace to
/// the namespace's main must be too.
fn push_without_namespace_to_protected_rest(fmt: Fmt) {
    let (fx, agent) = namespaced(fmt);
    let p = fx.push_env(&[("GIT_NAMESPACE", "foo")], &["origin", "main"]);
    assert_refused(&p, "agent-commit-unattested"); // control
    let p = fx.push(&["origin", &format!("{agent}:{NS_MAIN}")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref(NS_MAIN, Some(&fx.base), &p);
    let rec = fx.last_audit(NS_MAIN);
    assert_eq!(rec["code"], "agent-commit-unattested", "{rec}");
}
per_format!(push_without_namespace_to_protected_rest:
    namespaces_push_without_namespace_to_protected_main_sha1 => Sha1,
    namespaces_push_without_namespace_to_protected_main_sha256 => Sha256,
    namespaces_push_without_namespace_to_protected_main_reftable => Reftable,
);

/// Nested namespaces (`GIT_NAMESPACE=a/b` stores under `refs/namespaces/a/refs/namespaces/b/`):
/// an existing nested main, and a new one created from outside.
fn nested_without_namespace(fmt: Fmt) {
    let (fx, agent) = namespaced(fmt);
    let nested = "refs/namespaces/a/refs/namespaces/b/refs/heads/main";
    assert_accepted(&fx.push_env(
        &[("GIT_NAMESPACE", "a/b")],
        &["origin", &format!("{}:refs/heads/main", fx.base)],
    ));
    assert_eq!(fx.server_ref(nested).as_deref(), Some(fx.base.as_str()));
    let p = fx.push(&["origin", &format!("{agent}:{nested}")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref(nested, Some(&fx.base), &p);
    let created = "refs/namespaces/x/refs/namespaces/y/refs/heads/main";
    let p = fx.push(&["origin", &format!("{agent}:{created}")]);
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref(created, None, &p);
}
per_format!(nested_without_namespace:
    namespaces_nested_without_namespace_sha1 => Sha1,
    namespaces_nested_without_namespace_sha256 => Sha256,
);

/// Deletion, rewind, and the other protected globs (release branches, tags) of a namespace,
/// all from outside it.
#[test]
fn namespaces_delete_rewind_and_tags_without_namespace_sha1() {
    let (fx, agent) = namespaced(Fmt::Sha1);
    let p = fx.push(&["origin", &format!(":{NS_MAIN}")]);
    assert_refused(&p, "protected-ref-delete");
    fx.assert_server_ref(NS_MAIN, Some(&fx.base), &p);

    let rewrite = fx.commit_tree(&fx.tree_of(&fx.base), &[], "orphan rewrite");
    let p = fx.push(&["origin", &format!("+{rewrite}:{NS_MAIN}")]);
    assert_refused(&p, "non-fast-forward");
    fx.assert_server_ref(NS_MAIN, Some(&fx.base), &p);

    for name in [
        "refs/namespaces/foo/refs/tags/v1",
        "refs/namespaces/foo/refs/heads/release/1.0",
    ] {
        let p = fx.push(&["origin", &format!("{agent}:{name}")]);
        assert_refused(&p, "agent-commit-unattested");
        fx.assert_server_ref(name, None, &p);
    }
}

/// With GIT_NAMESPACE set, a pushed `refs/namespaces/bar/...` is nested inside it.
#[test]
fn namespaces_nested_inside_git_namespace_sha1() {
    let (fx, agent) = namespaced(Fmt::Sha1);
    let p = fx.push_env(
        &[("GIT_NAMESPACE", "foo")],
        &[
            "origin",
            &format!("{agent}:refs/namespaces/bar/refs/heads/main"),
        ],
    );
    assert_refused(&p, "agent-commit-unattested");
    fx.assert_server_ref(
        "refs/namespaces/foo/refs/namespaces/bar/refs/heads/main",
        None,
        &p,
    );
}

/// Positive controls: an unprotected `<rest>` is accepted from outside the namespace, and with
/// GIT_NAMESPACE set behaviour is unchanged (agent refused on main, accepted on a topic branch,
/// honest work accepted on main).
fn unprotected_rest_and_namespaced_pushes(fmt: Fmt) {
    let (fx, agent) = namespaced(fmt);
    let topic = "refs/namespaces/foo/refs/heads/topic";
    let p = fx.push(&["origin", &format!("{agent}:{topic}")]);
    assert_accepted(&p);
    fx.assert_server_ref(topic, Some(&agent), &p);

    let ns = [("GIT_NAMESPACE", "foo")];
    let p = fx.push_env(&ns, &["origin", &format!("{agent}:refs/heads/main")]);
    assert_refused(&p, "agent-commit-unattested");
    let p = fx.push_env(&ns, &["origin", &format!("{agent}:refs/heads/topic2")]);
    assert_accepted(&p);
    fx.git(&["reset", "-q", "--hard", &fx.base]);
    let human = fx.commit_file("app.c", "human\n", "human change");
    let p = fx.push_env(&ns, &["origin", &format!("{human}:refs/heads/main")]);
    assert_accepted(&p);
    fx.assert_server_ref(NS_MAIN, Some(&human), &p);
}
per_format!(unprotected_rest_and_namespaced_pushes:
    namespaces_unprotected_rest_and_namespaced_pushes_are_accepted_sha1 => Sha1,
    namespaces_unprotected_rest_and_namespaced_pushes_are_accepted_sha256 => Sha256,
);
