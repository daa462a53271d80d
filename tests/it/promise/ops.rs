//! The operations a model run is made of, and how each one reads as bash. The test runs exactly
//! this text in a shell, so the script printed for a failure is what the test ran.

use std::fmt::Write;

pub const PROTECTED: [&str; 3] = ["refs/heads/main", "refs/heads/release/*", "refs/tags/v*"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Tip,
    Each,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Require {
    AgentCommits,
    AllCommits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    Commit,
    Tree,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    PreReceive,
    Update,
}

/// One run's server policy (and which hook is installed).
#[derive(Clone, Debug)]
pub struct Policy {
    pub scope: Scope,
    pub require: Require,
    pub bind: Bind,
    pub allow_non_fast_forward: bool,
    pub allow_delete: bool,
    pub hook: Hook,
}

impl Policy {
    pub fn label(&self) -> String {
        format!(
            "scope={} require={} bind={} nff={} delete={} hook={}",
            match self.scope {
                Scope::Tip => "tip",
                Scope::Each => "each",
            },
            match self.require {
                Require::AgentCommits => "agent-commits",
                Require::AllCommits => "all-commits",
            },
            match self.bind {
                Bind::Commit => "commit",
                Bind::Tree => "tree",
            },
            on_off(self.allow_non_fast_forward),
            on_off(self.allow_delete),
            match self.hook {
                Hook::PreReceive => "pre-receive",
                Hook::Update => "update",
            },
        )
    }

    /// The policy file, as a bash heredoc body (`$W` expands to the run's directory).
    fn toml(&self) -> String {
        let refs: Vec<String> = PROTECTED.iter().map(|r| format!("\"{r}\"")).collect();
        format!(
            "version = 1\n[protect]\nrefs = [{}]\nallow_delete = {}\nallow_non_fast_forward = {}\n\
             [detect]\npresets = [\"known-agents\"]\nrequire = \"{}\"\n\
             [attest]\nscope = \"{}\"\nbind = \"{}\"\n\
             [[signer]]\nname = \"gate\"\npublic_key = \"$W/trusted.pub\"\n",
            refs.join(", "),
            self.allow_delete,
            self.allow_non_fast_forward,
            match self.require {
                Require::AgentCommits => "agent-commits",
                Require::AllCommits => "all-commits",
            },
            match self.scope {
                Scope::Tip => "tip",
                Scope::Each => "each",
            },
            match self.bind {
                Bind::Commit => "commit",
                Bind::Tree => "tree",
            },
        )
    }

    /// Everything before the first operation: keys, policy, the server with the hook, the
    /// developer's clone (`dev`, where commits are made) and the gate's (`gate`, which sees
    /// dev's objects through an alternate and signs and pushes notes on its own).
    pub fn preamble(&self, title: &str) -> String {
        let mut s = String::new();
        s.push_str("#!/bin/bash\n");
        for line in title.lines() {
            let _ = writeln!(s, "# {line}");
        }
        s.push_str(
            r#"set -u
AG=${AG:-agentgate}
W=${W:-$(mktemp -d)}; mkdir -p "$W/home"
export HOME=$W/home GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null LC_ALL=C GIT_TERMINAL_PROMPT=0
export GIT_AUTHOR_NAME=Ada GIT_AUTHOR_EMAIL=ada@example.com GIT_COMMITTER_NAME=Ada GIT_COMMITTER_EMAIL=ada@example.com
export GIT_AUTHOR_DATE='1767225600 +0000' GIT_COMMITTER_DATE='1767225600 +0000'
"$AG" keygen --out "$W/trusted" >/dev/null; "$AG" keygen --out "$W/untrusted" >/dev/null
echo artifact > "$W/app.bin"
cat > "$W/policy.toml" <<EOF
"#,
        );
        s.push_str(&self.toml());
        s.push_str("EOF\n");
        s.push_str("git init -q --bare -b main \"$W/srv.git\"\n");
        // Git itself refuses to delete the branch HEAD names: point HEAD elsewhere so that
        // deleting main is the hook's decision.
        s.push_str("git -C \"$W/srv.git\" symbolic-ref HEAD refs/heads/trunk\n");
        let _ = writeln!(
            s,
            "\"$AG\" install --repo \"$W/srv.git\" --config \"$W/policy.toml\"{} >/dev/null",
            match self.hook {
                Hook::PreReceive => "",
                Hook::Update => " --hook update",
            }
        );
        s.push_str(
            r#"for c in dev gate; do git init -q -b main "$W/$c"; git -C "$W/$c" remote add origin "file://$W/srv.git"; done
echo "$W/dev/.git/objects" > "$W/gate/.git/objects/info/alternates"
# tree CONTENT: a tree holding app.txt = CONTENT
tree() { printf '100644 blob %s\tapp.txt\n' "$(echo "$1" | git -C "$W/dev" hash-object -w --stdin)" | git -C "$W/dev" mktree; }
# mk DATE KIND TREE SUBJECT PARENT...: a commit in dev; KIND human, or an agent commit marked by
# a Co-Authored-By trailer, the agent as author, or the agent as committer
mk() {
  local d="$1 +0000" kind=$2 tree=$3 msg=$4 p=() x; shift 4
  for x in "$@"; do p+=(-p "$x"); done
  case $kind in
  human) GIT_AUTHOR_DATE=$d GIT_COMMITTER_DATE=$d git -C "$W/dev" commit-tree "$tree" "${p[@]}" -m "$msg" ;;
  trailer) GIT_AUTHOR_DATE=$d GIT_COMMITTER_DATE=$d git -C "$W/dev" commit-tree "$tree" "${p[@]}" -m "$msg" -m 'Co-Authored-By: Claude <noreply@anthropic.com>' ;;
  author) GIT_AUTHOR_NAME=Copilot GIT_AUTHOR_EMAIL=198982749+Copilot@users.noreply.github.com \
    GIT_AUTHOR_DATE=$d GIT_COMMITTER_DATE=$d git -C "$W/dev" commit-tree "$tree" "${p[@]}" -m "$msg" ;;
  committer) GIT_COMMITTER_NAME='Ada (aider)' GIT_AUTHOR_DATE=$d GIT_COMMITTER_DATE=$d git -C "$W/dev" commit-tree "$tree" "${p[@]}" -m "$msg" ;;
  esac
}
# sign CLONE KEY RESULT COMMIT: the gate's signature as a note in CLONE
sign() { "$AG" sign --key "$W/$2.key" --repo "$W/$1" --commit "$4" --artifact "$W/app.bin" --test-result "$3" --note >/dev/null; }
# copy_note CLONE FROM TO: append FROM's note lines to TO's note
copy_note() { { git -C "$W/$1" notes --ref agentgate show "$3" 2>/dev/null; git -C "$W/$1" notes --ref agentgate show "$2"; } | git -C "$W/$1" notes --ref agentgate add -f -F - "$3"; }
# sync_notes CLONE: merge the server's notes into CLONE's before pushing them (both clones sign)
sync_notes() { git -C "$W/$1" fetch -q origin +refs/notes/agentgate:refs/notes/origin 2>/dev/null && git -C "$W/$1" notes --ref agentgate merge -q -s cat_sort_uniq refs/notes/origin; }
# notes CLONE: the notes ref, if CLONE has one
notes() { git -C "$W/$1" rev-parse -q --verify refs/notes/agentgate >/dev/null && echo refs/notes/agentgate; }
"#,
        );
        s
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// How a commit is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Human,
    /// `Co-Authored-By: Claude <noreply@anthropic.com>`.
    Trailer,
    /// The Copilot coding agent as author.
    Author,
    /// Aider's ` (aider)` committer name.
    Committer,
}

impl Style {
    pub const ALL: [Style; 4] = [
        Style::Human,
        Style::Trailer,
        Style::Author,
        Style::Committer,
    ];

    pub fn is_agent(self) -> bool {
        self != Style::Human
    }

    fn kind(self) -> &'static str {
        match self {
            Style::Human => "human",
            Style::Trailer => "trailer",
            Style::Author => "author",
            Style::Committer => "committer",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeSpec {
    /// A tree of its own.
    Fresh,
    /// The same tree as commit `id` (a rebased or reworded twin).
    SameAs(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    Dev,
    Gate,
}

impl Site {
    pub fn dir(self) -> &'static str {
        match self {
            Site::Dev => "dev",
            Site::Gate => "gate",
        }
    }
}

/// What a pushed ref is set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Commit(usize),
    /// An annotated tag object made by `Op::Tag`.
    Tag(usize),
    Delete,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    /// The full ref name pushed to (on the server: maybe an alias or a namespaced name).
    pub dst: String,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Commit {
        id: usize,
        parents: Vec<usize>,
        tree: TreeSpec,
        style: Style,
        date: i64,
    },
    Tag {
        id: usize,
        commit: usize,
    },
    Sign {
        commit: usize,
        trusted: bool,
        passed: bool,
        clone: Site,
    },
    /// Copy the commit's note onto its tree (found there under `bind = "tree"`).
    TreeNote {
        commit: usize,
        clone: Site,
    },
    /// Append one commit's note to another's (a replayed attestation).
    CopyNote {
        from: usize,
        to: usize,
        clone: Site,
    },
    /// On the server: `refs/heads/master` becomes a symbolic ref to `refs/heads/main`.
    Alias,
    Push {
        clone: Site,
        updates: Vec<Update>,
        notes: bool,
    },
}

pub fn cvar(id: usize) -> String {
    format!("$C{id}")
}

impl Op {
    /// The bash text of this operation.
    pub fn script(&self) -> String {
        match self {
            Op::Commit {
                id,
                parents,
                tree,
                style,
                date,
            } => {
                let tree = match tree {
                    TreeSpec::Fresh => format!("\"$(tree {id})\""),
                    TreeSpec::SameAs(t) => format!("{}^{{tree}}", cvar(*t)),
                };
                let subject = if style.is_agent() { "agent" } else { "human" };
                let mut s = format!(
                    "C{id}=$(mk {date} {} {tree} '{subject} {id}'",
                    style.kind()
                );
                for p in parents {
                    s.push(' ');
                    s.push_str(&cvar(*p));
                }
                s.push(')');
                s
            }
            Op::Tag { id, commit } => format!(
                "git -C \"$W/dev\" tag -f -a -m 'tag {id}' t{id} {} && T{id}=$(git -C \"$W/dev\" rev-parse refs/tags/t{id})",
                cvar(*commit)
            ),
            Op::Sign {
                commit,
                trusted,
                passed,
                clone,
            } => format!(
                "sign {} {} {} {}",
                clone.dir(),
                if *trusted { "trusted" } else { "untrusted" },
                if *passed { "passed" } else { "failed" },
                cvar(*commit)
            ),
            Op::TreeNote { commit, clone } => format!(
                "copy_note {} {} \"$(git -C \"$W/dev\" rev-parse {}^{{tree}})\"",
                clone.dir(),
                cvar(*commit),
                cvar(*commit)
            ),
            Op::CopyNote { from, to, clone } => {
                format!("copy_note {} {} {}", clone.dir(), cvar(*from), cvar(*to))
            }
            Op::Alias => {
                "git -C \"$W/srv.git\" symbolic-ref refs/heads/master refs/heads/main".to_string()
            }
            Op::Push {
                clone,
                updates,
                notes,
            } => {
                let dir = clone.dir();
                let mut s = String::new();
                if *notes {
                    let _ = write!(s, "sync_notes {dir}; ");
                }
                let _ = write!(s, "git -C \"$W/{dir}\" push origin");
                for u in updates {
                    match u.value {
                        Value::Commit(c) => {
                            let _ = write!(s, " +{}:{}", cvar(c), u.dst);
                        }
                        Value::Tag(t) => {
                            let _ = write!(s, " +$T{t}:{}", u.dst);
                        }
                        Value::Delete => {
                            let _ = write!(s, " :{}", u.dst);
                        }
                    }
                }
                if *notes {
                    let _ = write!(s, " $(notes {dir})");
                }
                s
            }
        }
    }
}
