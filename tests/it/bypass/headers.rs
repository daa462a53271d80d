//! Class 1 (repro-6, repro-7): commit and tag headers that git reads differently from a plain
//! reading. git's `parse_commit_buffer` takes the first `tree`, only the `parent` lines right
//! after it and the first `author`/`committer`; `parse_tag_buffer` the first `object`/`type`.
//! Such an object that would enter a protected ref is refused `[object-malformed]` naming the
//! header; headers git ignores (continuation lines of `gpgsig`/`mergetag`, unknown headers after
//! `committer`) stay harmless, and nothing is refused on an unprotected branch.

use crate::bypass::fixture::*;

/// A server (optionally with `receive.fsckObjects`) whose main holds "base" (app.c = v1) and
/// then "security fix" (app.c = fixed), pushed honestly.
struct Main {
    fx: Fx,
    /// The base commit's tree (app.c = v1).
    base_tree: String,
    /// main's tip: the security fix.
    fix: String,
}

fn main_with_fix(fmt: Fmt, fsck: bool) -> Main {
    let fx = Fx::new(Options {
        fmt,
        fsck,
        ..Options::default()
    });
    let base_tree = fx.tree_of(&fx.base);
    let fix = fx.commit_file("app.c", "fixed\n", "security fix");
    let p = fx.push(&["origin", "main"]);
    assert_accepted(&p); // positive control: an honest fast-forward
    Main { fx, base_tree, fix }
}

fn h(key: &str, value: &str) -> String {
    format!("{key} {value}")
}

/// Push `commit` to main with `+` (a forced update if agentgate's reading says it is not a
/// descendant) and assert `[object-malformed]` naming `header`, main unchanged, and the audit.
#[track_caller]
fn assert_malformed_on_main(m: &Main, commit: &str, header: &str) {
    let fx = &m.fx;
    let p = fx.push(&["origin", &format!("+{commit}:refs/heads/main")]);
    assert_refused(&p, "object-malformed");
    assert_refusal_names(&p, "object-malformed", header);
    fx.assert_server_ref("refs/heads/main", Some(&m.fix), &p);
    let rec = fx.last_audit("refs/heads/main");
    assert_eq!(rec["new"], commit, "audit record is for this push:\n{p}");
    assert_eq!(rec["decision"], "refuse", "{rec}");
    assert_eq!(rec["code"], "object-malformed", "{rec}");
}

// ---------------------------------------------------------------------------------------------
// Forged fast-forwards: a `parent` git does not read.

/// repro-6 (a): `parent <main>` after `committer` passes `fsck --strict` and
/// `receive.fsckObjects`; git reads only the first parent, so the "fast-forward" drops the fix.
fn parent_after_committer_forges_fast_forward(fmt: Fmt) {
    let m = main_with_fix(fmt, true);
    let fx = &m.fx;
    let rewrite = fx.commit_tree(&m.base_tree, &[&fx.base], "release prep");
    let p = fx.push(&["origin", &format!("+{rewrite}:refs/heads/main")]);
    assert_refused(&p, "non-fast-forward"); // control: the honest rewrite is refused
    let forged = fx.raw_commit(&object_bytes(
        &[
            h("tree", &m.base_tree),
            h("parent", &fx.base),
            h("author", ADA),
            h("committer", ADA),
            h("parent", &m.fix),
        ],
        b"release prep\n",
    ));
    assert_eq!(
        fx.git(&["log", "-1", "--format=%P", &forged]),
        fx.base,
        "git reads only the first parent"
    );
    assert_malformed_on_main(&m, &forged, "parent");
}
per_format!(parent_after_committer_forges_fast_forward:
    headers_parent_after_committer_forges_fast_forward_sha1 => Sha1,
    headers_parent_after_committer_forges_fast_forward_sha256 => Sha256,
    headers_parent_after_committer_forges_fast_forward_reftable => Reftable,
);

/// The same forgery with the fake parent between `author` and `committer` (git's own checks
/// refuse to write it; a server without fsckObjects takes it).
#[test]
fn headers_parent_after_author_forges_fast_forward_sha1() {
    let m = main_with_fix(Fmt::Sha1, false);
    let fx = &m.fx;
    let forged = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &m.base_tree),
            h("parent", &fx.base),
            h("author", ADA),
            h("parent", &m.fix),
            h("committer", ADA),
        ],
        b"release prep\n",
    ));
    assert_malformed_on_main(&m, &forged, "parent");
}

/// A second `tree` line right after the first ends git's parent list: git reads a root
/// commit (a history rewrite), a plain reading a child of main.
fn second_tree_before_parent_hides_rewrite(fmt: Fmt) {
    let m = main_with_fix(fmt, false);
    let fx = &m.fx;
    let forged = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &m.base_tree),
            h("tree", &m.base_tree),
            h("parent", &m.fix),
            h("author", ADA),
            h("committer", ADA),
        ],
        b"squash history\n",
    ));
    assert_eq!(fx.git(&["log", "-1", "--format=%P", &forged]), "");
    assert_malformed_on_main(&m, &forged, "tree");
}
per_format!(second_tree_before_parent_hides_rewrite:
    headers_second_tree_before_parent_hides_rewrite_sha1 => Sha1,
    headers_second_tree_before_parent_hides_rewrite_sha256 => Sha256,
);

// ---------------------------------------------------------------------------------------------
// Hidden agent identities and messages.

/// Two `author` lines: git's own readings disagree (`git show` prints both, `%an` takes the
/// last, the commit date comes from the first); a last-wins reading sees only Ada.
#[test]
fn headers_duplicate_author_hides_agent_sha1() {
    let m = main_with_fix(Fmt::Sha1, false);
    let fx = &m.fx;
    let tree = fx.tree_with("app.c", "agent rewrite\n");
    let c = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", CLAUDE),
            h("author", ADA),
            h("committer", ADA),
        ],
        b"rewrite app.c\n",
    ));
    assert!(fx
        .git(&["show", "-s", "--format=fuller", &c])
        .contains("Author:     Claude <noreply@anthropic.com>"));
    assert_malformed_on_main(&m, &c, "author");
}

/// Two `committer` lines pass fsck (the second is an unknown header to it); `git show` prints
/// both, Claude first, while `%cn` and a last-wins reading see only Ada.
fn duplicate_committer_hides_agent(fmt: Fmt) {
    let m = main_with_fix(fmt, true);
    let fx = &m.fx;
    let tree = fx.tree_with("app.c", "agent rewrite\n");
    let c = fx.raw_commit(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", ADA),
            h("committer", CLAUDE),
            h("committer", ADA),
        ],
        b"rewrite app.c\n",
    ));
    assert!(fx
        .git(&["show", "-s", "--format=fuller", &c])
        .contains("Commit:     Claude <noreply@anthropic.com>"));
    assert_malformed_on_main(&m, &c, "committer");
}
per_format!(duplicate_committer_hides_agent:
    headers_duplicate_committer_hides_agent_sha1 => Sha1,
    headers_duplicate_committer_hides_agent_sha256 => Sha256,
    headers_duplicate_committer_hides_agent_reftable => Reftable,
);

/// Two `encoding` lines pass fsck; git decodes with the first (UTF-7) and shows a Claude
/// trailer that a last-wins reading (UTF-8) does not see.
fn duplicate_encoding_hides_trailer(fmt: Fmt) {
    let m = main_with_fix(fmt, true);
    let fx = &m.fx;
    let tree = fx.tree_with("app.c", "agent rewrite\n");
    // UTF-7 shifts on '+': keep it out of the headers git re-encodes with the message.
    let ada = "Ada <ada@example.com> 1767610800 -0100";
    let c = fx.raw_commit(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", ada),
            h("committer", ada),
            h("encoding", "UTF-7"),
            h("encoding", "UTF-8"),
        ],
        b"Add feature\n\nCo-authored-by: Claude +ADw-noreply+AEA-anthropic.com+AD4-\n",
    ));
    assert_eq!(
        fx.git(&["log", "-1", "--format=%(trailers:only,unfold)", &c]),
        "Co-authored-by: Claude <noreply@anthropic.com>",
        "git decodes with the first encoding"
    );
    assert_malformed_on_main(&m, &c, "encoding");
}
per_format!(duplicate_encoding_hides_trailer:
    headers_duplicate_encoding_hides_trailer_sha1 => Sha1,
    headers_duplicate_encoding_hides_trailer_sha256 => Sha256,
);

/// `committer` before `author`: out of git's order.
#[test]
fn headers_committer_before_author_sha1() {
    let m = main_with_fix(Fmt::Sha1, false);
    let fx = &m.fx;
    let tree = fx.tree_with("app.c", "v2\n");
    let c = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("committer", ADA),
            h("author", ADA),
        ],
        b"reorder\n",
    ));
    let p = fx.push(&["origin", &format!("+{c}:refs/heads/main")]);
    assert_refused(&p, "object-malformed");
    let line = p.refusal_line("object-malformed").unwrap_or("");
    assert!(
        line.contains("author") || line.contains("committer"),
        "names the misplaced header:\n{p}"
    );
    fx.assert_server_ref("refs/heads/main", Some(&m.fix), &p);
}

/// A NUL byte in the message (git stops reading there) and in an extra header.
#[test]
fn headers_nul_byte_in_message_and_header_sha1() {
    let m = main_with_fix(Fmt::Sha1, false);
    let fx = &m.fx;
    let tree = fx.tree_with("app.c", "v2\n");
    let in_body = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", ADA),
            h("committer", ADA),
        ],
        b"Routine cleanup\0\n\nnothing to see\n",
    ));
    let p = fx.push(&["origin", &format!("+{in_body}:refs/heads/main")]);
    assert_refused(&p, "object-malformed");
    fx.assert_server_ref("refs/heads/main", Some(&m.fix), &p);

    let in_header = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", ADA),
            h("committer", ADA),
            "x-note a\0b".to_string(),
        ],
        b"Routine cleanup\n",
    ));
    let p = fx.push(&["origin", &format!("+{in_header}:refs/heads/main")]);
    assert_refused(&p, "object-malformed");
    fx.assert_server_ref("refs/heads/main", Some(&m.fix), &p);
}

// ---------------------------------------------------------------------------------------------
// Tags.

/// An annotated release tag with a second `object` line (after `tagger`, which fsck accepts):
/// git peels it to the first, an agent commit; a last-wins reading to the human base.
fn tag_second_object_line(fmt: Fmt) {
    let m = main_with_fix(fmt, true);
    let fx = &m.fx;
    let agent = fx.agent_commit("app.c", "agent\n", "agent: release prep");
    let tag = fx.raw_object(
        "tag",
        &object_bytes(
            &[
                h("object", &agent),
                h("type", "commit"),
                h("tag", "v1"),
                h("tagger", ADA),
                h("object", &m.fix),
            ],
            b"release v1\n",
        ),
        false,
    );
    assert_eq!(fx.git(&["rev-parse", &format!("{tag}^{{commit}}")]), agent);
    let p = fx.push(&["origin", &format!("{tag}:refs/tags/v1")]);
    assert_refused(&p, "object-malformed");
    assert_refusal_names(&p, "object-malformed", "object");
    fx.assert_server_ref("refs/tags/v1", None, &p);
}
per_format!(tag_second_object_line:
    headers_tag_second_object_line_sha1 => Sha1,
    headers_tag_second_object_line_sha256 => Sha256,
    headers_tag_second_object_line_reftable => Reftable,
);

/// A tag with a second `type` line.
#[test]
fn headers_tag_second_type_line_sha1() {
    let m = main_with_fix(Fmt::Sha1, false);
    let fx = &m.fx;
    let tag = fx.raw_object(
        "tag",
        &object_bytes(
            &[
                h("object", &m.fix),
                h("type", "commit"),
                h("tag", "v1"),
                h("tagger", ADA),
                h("type", "blob"),
            ],
            b"release v1\n",
        ),
        true,
    );
    let p = fx.push(&["origin", &format!("{tag}:refs/tags/v1")]);
    assert_refused(&p, "object-malformed");
    assert_refusal_names(&p, "object-malformed", "type");
    fx.assert_server_ref("refs/tags/v1", None, &p);
}

// ---------------------------------------------------------------------------------------------
// Agent commits hidden behind a fake parent, and the tree binding (bind = "tree").

/// repro-6 (b): a clean commit O with a fake `parent <agent commit>` after `committer` is
/// attested by the gate; agentgate walks the agent commit as O's parent and, once O is on main,
/// lets a plain merge of the agent branch through unattested.
fn fake_parent_hides_agent_commit_then_merged(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        fsck: true,
        ..Options::default()
    });
    let good = fx.base.clone();
    let agent = fx.agent_commit("app.c", "evil\n", "agent: rewrite app.c");
    assert_accepted(&fx.push(&["origin", &format!("{agent}:refs/heads/agent/work")]));
    fx.git(&["reset", "-q", "--hard", &good]);
    let docs_tree = fx.tree_with("README", "docs\n");
    let o = fx.raw_commit(&object_bytes(
        &[
            h("tree", &docs_tree),
            h("parent", &good),
            h("author", ADA),
            h("committer", ADA),
            h("parent", &agent),
        ],
        b"docs: add README\n",
    ));
    fx.sign(&o); // the gate builds and tests O (app.c = v1) and signs it
    let p = fx.push(&[
        "origin",
        "refs/notes/agentgate",
        &format!("{o}:refs/heads/main"),
    ]);
    assert_refused(&p, "object-malformed");
    assert_refusal_names(&p, "object-malformed", "parent");
    fx.assert_server_ref("refs/heads/main", Some(&good), &p);

    let merge = fx.commit_tree(
        &fx.tree_of(&agent),
        &[&o, &agent],
        "Merge branch 'agent/work'",
    );
    let p = fx.push(&["origin", &format!("{merge}:refs/heads/main")]);
    assert_refused_any(&p, &["agent-commit-unattested", "object-malformed"]);
    fx.assert_server_ref("refs/heads/main", Some(&good), &p);
}
per_format!(fake_parent_hides_agent_commit_then_merged:
    headers_fake_parent_hides_agent_commit_then_merged_sha1 => Sha1,
    headers_fake_parent_hides_agent_commit_then_merged_reftable => Reftable,
);

/// The same hiding when O is already on main from before agentgate was installed (the
/// baseline): the merge enters the agent commit, which git never reads as O's parent.
fn fake_parent_in_baseline_hides_agent_commit(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        install: Install::Later,
        ..Options::default()
    });
    let good = fx.base.clone();
    let agent = fx.agent_commit("app.c", "evil\n", "agent: rewrite app.c");
    fx.git(&["reset", "-q", "--hard", &good]);
    let docs_tree = fx.tree_with("README", "docs\n");
    let o = fx.raw_commit(&object_bytes(
        &[
            h("tree", &docs_tree),
            h("parent", &good),
            h("author", ADA),
            h("committer", ADA),
            h("parent", &agent),
        ],
        b"docs: add README\n",
    ));
    assert_accepted(&fx.push(&[
        "origin",
        &format!("{agent}:refs/heads/agent/work"),
        &format!("{o}:refs/heads/main"),
    ]));
    fx.install(&["--config", s(&fx.policy)]);

    let merge = fx.commit_tree(
        &fx.tree_of(&agent),
        &[&o, &agent],
        "Merge branch 'agent/work'",
    );
    let p = fx.push(&["origin", &format!("{merge}:refs/heads/main")]);
    assert_refused_any(&p, &["agent-commit-unattested", "object-malformed"]);
    if p.refusal_line("agent-commit-unattested").is_some() {
        assert!(p.out.contains(&agent[..7]), "names the agent commit:\n{p}");
    }
    fx.assert_server_ref("refs/heads/main", Some(&o), &p);
}
per_format!(fake_parent_in_baseline_hides_agent_commit:
    headers_fake_parent_in_baseline_hides_agent_commit_sha1 => Sha1,
    headers_fake_parent_in_baseline_hides_agent_commit_sha256 => Sha256,
    headers_fake_parent_in_baseline_hides_agent_commit_reftable => Reftable,
);

/// repro-7: with `bind = "tree"`, an agent commit whose real (first) tree is new code carries a
/// second `tree <attested tree>` after `committer` and a copy of the human commit's bundles.
fn second_tree_forges_tree_binding(fmt: Fmt) {
    let fx = Fx::new(Options {
        fmt,
        fsck: true,
        policy_extra: "[attest]\nbind = \"tree\"\n",
        ..Options::default()
    });
    let human = fx.commit_file("app.c", "good\n", "human: app");
    let human_tree = fx.tree_of(&human);
    fx.sign(&human);
    assert_accepted(&fx.push(&["origin", "refs/notes/agentgate", "main"]));
    let evil_tree = fx.tree_with("app.c", "evil\n");
    let agent = fx.raw_commit(&object_bytes(
        &[
            h("tree", &evil_tree),
            h("parent", &human),
            h("author", CLAUDE),
            h("committer", CLAUDE),
            h("tree", &human_tree),
        ],
        format!("agent: rewrite app.c\n\n{CLAUDE_TRAILER}\n").as_bytes(),
    ));
    assert_eq!(fx.tree_of(&agent), evil_tree, "git reads the first tree");
    let note = fx.git(&["notes", "--ref", "agentgate", "show", &human]);
    fx.git(&["notes", "--ref", "agentgate", "add", "-m", &note, &agent]);

    // Control: the same change as a well-formed commit with the copied bundles is refused.
    let honest = fx.commit_tree(
        &evil_tree,
        &[&human],
        &format!("agent: rewrite app.c\n\n{CLAUDE_TRAILER}"),
    );
    fx.git(&["notes", "--ref", "agentgate", "add", "-m", &note, &honest]);
    let p = fx.push(&[
        "origin",
        "refs/notes/agentgate",
        &format!("{honest}:refs/heads/main"),
    ]);
    assert_refused(&p, "agent-commit-unattested");

    let p = fx.push(&[
        "origin",
        "refs/notes/agentgate",
        &format!("{agent}:refs/heads/main"),
    ]);
    assert_refused(&p, "object-malformed");
    assert_refusal_names(&p, "object-malformed", "tree");
    fx.assert_server_ref("refs/heads/main", Some(&human), &p);
}
per_format!(second_tree_forges_tree_binding:
    headers_second_tree_forges_tree_binding_sha1 => Sha1,
    headers_second_tree_forges_tree_binding_reftable => Reftable,
);

// ---------------------------------------------------------------------------------------------
// Positive controls: what git ignores stays harmless, and unprotected refs are not checked.

/// `gpgsig` and `mergetag` continuation lines, one of which reads ` parent <agent commit>`:
/// git ignores them, so the agent commit is not a parent and the push is a clean fast-forward.
fn continuation_lines_are_not_headers(fmt: Fmt) {
    let m = main_with_fix(fmt, true);
    let fx = &m.fx;
    let side = fx.agent_commit("side.txt", "agent\n", "agent: side work");
    assert_accepted(&fx.push(&["origin", &format!("{side}:refs/heads/side")]));
    fx.git(&["reset", "-q", "--hard", &m.fix]);
    let tree = fx.tree_with("app.c", "fixed and documented\n");
    let c = fx.raw_commit(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", ADA),
            h("committer", ADA),
            format!(
                "mergetag object {side}\n type commit\n tag side-1\n tagger {ADA}\n \n side tag\n parent {side}"
            ),
            format!(
                "gpgsig -----BEGIN PGP SIGNATURE-----\n parent {side}\n \n iQEzBAABCAAdFiEE\n -----END PGP SIGNATURE-----"
            ),
        ],
        b"document the fix\n",
    ));
    assert_eq!(fx.git(&["log", "-1", "--format=%P", &c]), m.fix);
    let p = fx.push(&["origin", &format!("{c}:refs/heads/main")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&c), &p);
}
per_format!(continuation_lines_are_not_headers:
    headers_gpgsig_mergetag_continuation_parent_is_accepted_sha1 => Sha1,
    headers_gpgsig_mergetag_continuation_parent_is_accepted_sha256 => Sha256,
);

/// Unknown headers after `committer` (as some tools write) are accepted.
#[test]
fn headers_unknown_header_after_committer_is_accepted_sha1() {
    let m = main_with_fix(Fmt::Sha1, true);
    let fx = &m.fx;
    let tree = fx.tree_with("app.c", "v3\n");
    let c = fx.raw_commit(&object_bytes(
        &[
            h("tree", &tree),
            h("parent", &m.fix),
            h("author", ADA),
            h("committer", ADA),
            h("x-change-id", "I0123456789abcdef"),
        ],
        b"v3\n",
    ));
    let p = fx.push(&["origin", &format!("{c}:refs/heads/main")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/main", Some(&c), &p);
}

/// A malformed commit pushed to an unprotected branch moves nothing protected: accepted.
fn malformed_commit_on_unprotected_branch(fmt: Fmt) {
    let m = main_with_fix(fmt, false);
    let fx = &m.fx;
    let forged = fx.raw_commit_literally(&object_bytes(
        &[
            h("tree", &m.base_tree),
            h("parent", &fx.base),
            h("author", CLAUDE),
            h("author", ADA),
            h("committer", ADA),
            h("parent", &m.fix),
        ],
        b"whatever\n",
    ));
    let p = fx.push(&["origin", &format!("{forged}:refs/heads/topic")]);
    assert_accepted(&p);
    fx.assert_server_ref("refs/heads/topic", Some(&forged), &p);
    fx.assert_server_ref("refs/heads/main", Some(&m.fix), &p);
}
per_format!(malformed_commit_on_unprotected_branch:
    headers_malformed_commit_to_unprotected_branch_is_accepted_sha1 => Sha1,
    headers_malformed_commit_to_unprotected_branch_is_accepted_sha256 => Sha256,
);
