//! Deciding whether a commit was written by an AI coding agent: built-in rules for the agents
//! seen in the wild (`known-agents`) plus the policy's own rules. Every match names its rule id
//! and the evidence, so a refused pusher can see exactly why.
//!
//! Trailers are voluntary: an agent (or a person) can strip them. Identity rules and
//! `require = "all-commits"` are the stronger settings; the README says so.

use std::fmt;

use agentgate_git::Commit;
use regex::Regex;

use crate::trailers::Trailer;

pub const PRESET_KNOWN_AGENTS: &str = "known-agents";
/// Every preset name a policy may use.
pub const PRESETS: &[&str] = &[PRESET_KNOWN_AGENTS];

/// The rule id given to every commit under `require = "all-commits"`.
pub const RULE_ALL_COMMITS: &str = "require:all-commits";

// The rules as the policy states them (built by `config`, compiled here by `Detector::new`).

/// Which commits need an attestation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Require {
    /// Only commits a detection rule matches.
    AgentCommits,
    /// Every entering commit counts as an agent commit.
    AllCommits,
}

#[derive(Debug, Clone)]
pub struct Detect {
    pub presets: Vec<String>,
    pub require: Require,
    pub rules: Vec<UserRule>,
}

/// A rule from the policy file, compiled.
#[derive(Debug, Clone)]
pub struct UserRule {
    pub id: String,
    pub matcher: Matcher,
}

/// What a rule looks at.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// A trailer key (compared case-insensitively), optionally with a value regex.
    Trailer {
        key: String,
        value: Option<Regex>,
    },
    Identity {
        field: IdentityField,
        regex: Regex,
    },
    /// A regex over the message, line by line (multi-line mode).
    Message(Regex),
}

/// Which identity a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityField {
    AuthorName,
    AuthorEmail,
    CommitterName,
    CommitterEmail,
    /// Author or committer name.
    AnyName,
    /// Author or committer email.
    AnyEmail,
}

impl fmt::Display for Require {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Require::AgentCommits => "agent-commits",
            Require::AllCommits => "all-commits",
        })
    }
}

/// One rule that matched, with what it matched.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    pub rule: String,
    pub evidence: String,
}

/// What a rule tests: a policy rule (regexes, compiled when the policy loaded) or a built-in
/// one (literal matches: no regex is compiled on the hook's hot path).
#[derive(Debug, Clone)]
enum Test {
    Policy(Matcher),
    Preset(Kind, &'static [&'static str]),
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    test: Test,
}

/// Compiled detection rules; build once per run.
#[derive(Debug, Clone)]
pub struct Detector {
    rules: Vec<Rule>,
    require: Require,
}

/// The `known-agents` preset: (rule id, what is matched, literals). Sources: each agent's own
/// documentation and commits it wrote, as noted per rule.
const KNOWN_AGENTS: &[(&str, Kind, &[&str])] = &[
    // Claude Code: Co-Authored-By: Claude <noreply@anthropic.com>; body "Generated with [Claude Code]".
    (
        "claude-co-author",
        Kind::CoAuthor,
        &["<noreply@anthropic.com>"],
    ),
    ("claude-identity", Kind::Email, &["noreply@anthropic.com"]),
    (
        "claude-code-body",
        Kind::Body,
        &["Generated with [Claude Code]"],
    ),
    // Aider: Co-authored-by: aider (<model>) <aider@aider.chat>, or " (aider)" appended to a name.
    (
        "aider-co-author",
        Kind::CoAuthor,
        &["<aider@aider.chat>", "<noreply@aider.dev>"],
    ),
    (
        "aider-identity",
        Kind::Email,
        &["aider@aider.chat", "noreply@aider.dev"],
    ),
    ("aider-name", Kind::NameSuffix, &["(aider)"]),
    // GitHub Copilot: VS Code's co-author and the coding agent's bot identity.
    (
        "copilot-co-author",
        Kind::CoAuthor,
        &[
            "<copilot@github.com>",
            "<198982749+copilot@users.noreply.github.com>",
        ],
    ),
    (
        "copilot-identity",
        Kind::Email,
        &[
            "copilot@github.com",
            "198982749+copilot@users.noreply.github.com",
        ],
    ),
    ("copilot-name", Kind::Name, &["copilot-swe-agent[bot]"]),
    // Cursor.
    (
        "cursor-co-author",
        Kind::CoAuthor,
        &["<cursoragent@cursor.com>"],
    ),
    ("cursor-identity", Kind::Email, &["cursoragent@cursor.com"]),
    // OpenAI Codex.
    (
        "codex-co-author",
        Kind::CoAuthor,
        &["<noreply@openai.com>", "<codex@openai.com>"],
    ),
    (
        "codex-identity",
        Kind::Email,
        &["noreply@openai.com", "codex@openai.com"],
    ),
    (
        "codex-bot",
        Kind::BotEmail,
        &["chatgpt-codex-connector[bot]"],
    ),
    ("codex-name", Kind::Name, &["chatgpt-codex-connector[bot]"]),
    // Devin.
    (
        "devin-co-author",
        Kind::CoAuthor,
        &["devin-ai-integration[bot]"],
    ),
    (
        "devin-identity",
        Kind::BotEmail,
        &["devin-ai-integration[bot]"],
    ),
    ("devin-name", Kind::Name, &["devin-ai-integration[bot]"]),
    ("devin-body", Kind::Body, &["Generated with [Devin]"]),
    // Google Jules.
    (
        "jules-co-author",
        Kind::CoAuthor,
        &["google-labs-jules[bot]"],
    ),
    (
        "jules-identity",
        Kind::BotEmail,
        &["google-labs-jules[bot]"],
    ),
    ("jules-name", Kind::Name, &["google-labs-jules[bot]"]),
    // Amazon Q Developer.
    (
        "amazon-q-co-author",
        Kind::CoAuthor,
        &["amazon-q-developer[bot]"],
    ),
    (
        "amazon-q-identity",
        Kind::BotEmail,
        &["amazon-q-developer[bot]"],
    ),
    ("amazon-q-name", Kind::Name, &["amazon-q-developer[bot]"]),
    // Project conventions: Linux kernel and Fedora (Assisted-by), OpenInfra and ASF
    // (Generated-by), AI-assisted. Any value counts.
    ("assisted-by", Kind::TrailerKey, &["assisted-by"]),
    ("generated-by", Kind::TrailerKey, &["generated-by"]),
    ("ai-assisted", Kind::TrailerKey, &["ai-assisted"]),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A `Co-authored-by` trailer whose value contains a literal (ASCII case-insensitive).
    CoAuthor,
    /// Author or committer email equal to a literal (ASCII case-insensitive).
    Email,
    /// Author or committer email `<digits>+<login>@users.noreply.github.com` (GitHub's
    /// noreply form for a bot account).
    BotEmail,
    /// Author or committer name equal to a literal.
    Name,
    /// Author or committer name ending in a literal (trailing white space ignored).
    NameSuffix,
    /// A message line containing a literal.
    Body,
    /// A trailer with this key (ASCII case-insensitive), any value.
    TrailerKey,
}

fn preset_rules(name: &str) -> Vec<Rule> {
    match name {
        PRESET_KNOWN_AGENTS => KNOWN_AGENTS
            .iter()
            .map(|&(id, kind, literals)| Rule {
                id: format!("{PRESET_KNOWN_AGENTS}:{id}"),
                test: Test::Preset(kind, literals),
            })
            .collect(),
        // config validation only lets known preset names through.
        _ => Vec::new(),
    }
}

impl Detector {
    pub fn new(detect: &Detect) -> Detector {
        let mut rules: Vec<Rule> = detect
            .presets
            .iter()
            .flat_map(|p| preset_rules(p))
            .collect();
        rules.extend(detect.rules.iter().map(|r| Rule {
            id: r.id.clone(),
            test: Test::Policy(r.matcher.clone()),
        }));
        Detector {
            rules,
            require: detect.require,
        }
    }

    pub fn require(&self) -> Require {
        self.require
    }

    /// Every rule that matches `commit`; under `all-commits` the list is never empty.
    pub fn detect(&self, commit: &Commit, trailers: &[Trailer]) -> Vec<Match> {
        let mut out = Vec::new();
        for rule in &self.rules {
            let found = match &rule.test {
                Test::Policy(m) => evidence(m, commit, trailers),
                Test::Preset(kind, literals) => preset_evidence(*kind, literals, commit, trailers),
            };
            if let Some(evidence) = found {
                out.push(Match {
                    rule: rule.id.clone(),
                    evidence,
                });
            }
        }
        if self.require == Require::AllCommits {
            out.push(Match {
                rule: RULE_ALL_COMMITS.into(),
                evidence: "policy requires every commit to be attested".into(),
            });
        }
        out
    }

    /// The ids of all rules, for `--help`-style listings and tests.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }
}

/// The line of `message` around byte range `start..end`, trimmed and bounded.
fn line_around(message: &str, start: usize, end: usize) -> String {
    let from = message[..start].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let to = message[end..]
        .find('\n')
        .map(|i| end + i)
        .unwrap_or(message.len());
    message[from..to].trim().chars().take(200).collect()
}

fn preset_evidence(
    kind: Kind,
    literals: &[&str],
    c: &Commit,
    trailers: &[Trailer],
) -> Option<String> {
    let names = [
        ("author name", &c.author.name),
        ("committer name", &c.committer.name),
    ];
    let emails = [
        ("author email", &c.author.email),
        ("committer email", &c.committer.email),
    ];
    let show = |what: &str, v: &str| format!("{what} \"{v}\"");
    match kind {
        Kind::CoAuthor => trailers
            .iter()
            .find(|t| {
                t.key.eq_ignore_ascii_case("co-authored-by") && {
                    let v = t.value.to_ascii_lowercase();
                    literals.iter().any(|l| v.contains(l))
                }
            })
            .map(|t| format!("trailer \"{}: {}\"", t.key, t.value)),
        Kind::TrailerKey => trailers
            .iter()
            .find(|t| literals.iter().any(|l| t.key.eq_ignore_ascii_case(l)))
            .map(|t| format!("trailer \"{}: {}\"", t.key, t.value)),
        Kind::Email => emails
            .iter()
            .find(|(_, e)| literals.iter().any(|l| e.eq_ignore_ascii_case(l)))
            .map(|(w, e)| show(w, e)),
        Kind::BotEmail => emails
            .iter()
            .find(|(_, e)| {
                let e = e.to_ascii_lowercase();
                literals.iter().any(|login| {
                    e.strip_suffix("@users.noreply.github.com")
                        .and_then(|local| local.strip_suffix(login))
                        .and_then(|id| id.strip_suffix('+'))
                        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
                })
            })
            .map(|(w, e)| show(w, e)),
        Kind::Name => names
            .iter()
            .find(|(_, n)| literals.contains(&n.as_str()))
            .map(|(w, n)| show(w, n)),
        Kind::NameSuffix => names
            .iter()
            .find(|(_, n)| literals.iter().any(|l| n.trim_end().ends_with(l)))
            .map(|(w, n)| show(w, n)),
        Kind::Body => literals.iter().find_map(|l| {
            c.message.find(l).map(|i| {
                format!(
                    "message line \"{}\"",
                    line_around(&c.message, i, i + l.len())
                )
            })
        }),
    }
}

fn evidence(matcher: &Matcher, c: &Commit, trailers: &[Trailer]) -> Option<String> {
    match matcher {
        Matcher::Trailer { key, value } => trailers
            .iter()
            .find(|t| {
                t.key.eq_ignore_ascii_case(key)
                    && value.as_ref().is_none_or(|re| re.is_match(&t.value))
            })
            .map(|t| format!("trailer \"{}: {}\"", t.key, t.value)),
        Matcher::Identity { field, regex } => {
            let candidates: &[(&str, &str)] = match field {
                IdentityField::AuthorName => &[("author name", &c.author.name)],
                IdentityField::AuthorEmail => &[("author email", &c.author.email)],
                IdentityField::CommitterName => &[("committer name", &c.committer.name)],
                IdentityField::CommitterEmail => &[("committer email", &c.committer.email)],
                IdentityField::AnyName => &[
                    ("author name", &c.author.name),
                    ("committer name", &c.committer.name),
                ],
                IdentityField::AnyEmail => &[
                    ("author email", &c.author.email),
                    ("committer email", &c.committer.email),
                ],
            };
            candidates
                .iter()
                .find(|(_, v)| regex.is_match(v))
                .map(|(what, v)| format!("{what} \"{v}\""))
        }
        Matcher::Message(re) => re.find(&c.message).map(|m| {
            format!(
                "message line \"{}\"",
                line_around(&c.message, m.start(), m.end())
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trailers::{parse, TrailerConfig};
    use agentgate_git::{ObjectId, Signature};

    fn commit(author: (&str, &str), committer: (&str, &str), message: &str) -> Commit {
        let sig = |(n, e): (&str, &str)| Signature {
            name: n.into(),
            email: e.into(),
            time: 0,
        };
        Commit {
            id: ObjectId::zero(20),
            tree: ObjectId::zero(20),
            parents: vec![],
            author: sig(author),
            committer: sig(committer),
            encoding: None,
            message: message.into(),
        }
    }

    fn rules_for(c: &Commit, detect: &Detect) -> Vec<String> {
        let t = parse(&c.message, &TrailerConfig::default());
        Detector::new(detect)
            .detect(c, &t)
            .into_iter()
            .map(|m| m.rule)
            .collect()
    }

    fn known() -> Detect {
        Detect {
            presets: vec![PRESET_KNOWN_AGENTS.into()],
            require: Require::AgentCommits,
            rules: vec![],
        }
    }

    #[test]
    fn preset_has_every_rule() {
        assert!(Detector::new(&known()).rule_ids().count() >= KNOWN_AGENTS.len());
    }

    #[test]
    fn known_agents_table() {
        let human = ("Ada", "ada@example.com");
        type Case<'a> = (
            (&'a str, &'a str),
            (&'a str, &'a str),
            &'a str,
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (human, human, "Fix bug\n\nDetails here.\n", &[]),
            (human, human, "Fix\n\nCo-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>\n", &["known-agents:claude-co-author"]),
            (human, human, "Fix\n\n🤖 Generated with [Claude Code](https://claude.com/claude-code)\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n", &["known-agents:claude-co-author", "known-agents:claude-code-body"]),
            // A body line directly above the trailer makes git ignore the trailer block; the body rule still fires.
            (human, human, "Fix\n\nGenerated with [Claude Code](https://claude.ai/code)\nCo-Authored-By: Claude <noreply@anthropic.com>\n", &["known-agents:claude-code-body"]),
            (human, ("Ada (aider)", "ada@example.com"), "Fix\n", &["known-agents:aider-name"]),
            (human, human, "Fix\n\nCo-authored-by: aider (gpt-4o) <aider@aider.chat>\n", &["known-agents:aider-co-author"]),
            (("copilot-swe-agent[bot]", "198982749+Copilot@users.noreply.github.com"), human, "Fix\n", &["known-agents:copilot-identity", "known-agents:copilot-name"]),
            (("Cursor Agent", "cursoragent@cursor.com"), human, "Fix\n", &["known-agents:cursor-identity"]),
            (human, human, "Fix\n\nCo-authored-by: Codex <noreply@openai.com>\n", &["known-agents:codex-co-author"]),
            (human, human, "Fix\n\nGenerated with [Devin](https://devin.ai)\n\nCo-Authored-By: Devin <158243242+devin-ai-integration[bot]@users.noreply.github.com>\n", &["known-agents:devin-co-author", "known-agents:devin-body"]),
            (("google-labs-jules[bot]", "161369871+google-labs-jules[bot]@users.noreply.github.com"), human, "Fix\n", &["known-agents:jules-identity", "known-agents:jules-name"]),
            (human, human, "Fix\n\nAssisted-by: Claude:claude-3-opus coccinelle\nSigned-off-by: Ada <ada@example.com>\n", &["known-agents:assisted-by"]),
            (human, human, "Fix\n\ngenerated-by: some tool\n", &["known-agents:generated-by"]),
            // The subject paragraph never holds trailers.
            (human, human, "Assisted-by: Claude\n", &[]),
            // A human co-author is not an agent.
            (human, human, "Fix\n\nCo-authored-by: Bob <bob@example.com>\n", &[]),
        ];
        for (author, committer, message, expected) in cases {
            let c = commit(*author, *committer, message);
            let mut got = rules_for(&c, &known());
            got.sort();
            let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "message {message:?}");
        }
    }

    #[test]
    fn bot_emails_need_the_numeric_id_form() {
        let d = Detector::new(&known());
        let rules = |email: &str| {
            let c = commit(("x", email), ("Ada", "ada@example.com"), "Fix\n");
            d.detect(&c, &[])
                .into_iter()
                .map(|m| m.rule)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rules("158243242+devin-ai-integration[bot]@users.noreply.github.com"),
            vec!["known-agents:devin-identity"]
        );
        assert_eq!(
            rules("158243242+Devin-AI-Integration[bot]@Users.Noreply.GitHub.com"),
            vec!["known-agents:devin-identity"]
        );
        assert!(rules("+devin-ai-integration[bot]@users.noreply.github.com").is_empty());
        assert!(rules("12x+devin-ai-integration[bot]@users.noreply.github.com").is_empty());
        assert!(rules("1+devin-ai-integration[bot]@users.noreply.github.com.evil").is_empty());
    }

    #[test]
    fn evidence_names_the_line() {
        let c = commit(
            ("Ada", "a@x"),
            ("Ada (aider)", "a@x"),
            "Fix\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
        );
        let t = parse(&c.message, &TrailerConfig::default());
        let m = Detector::new(&known()).detect(&c, &t);
        assert!(m
            .iter()
            .any(|m| m.evidence == "trailer \"Co-Authored-By: Claude <noreply@anthropic.com>\""));
        assert!(m
            .iter()
            .any(|m| m.evidence == "committer name \"Ada (aider)\""));
    }

    #[test]
    fn all_commits_counts_every_commit() {
        let d = Detect {
            presets: vec![],
            require: Require::AllCommits,
            rules: vec![],
        };
        let c = commit(("Ada", "a@x"), ("Ada", "a@x"), "Plain\n");
        assert_eq!(rules_for(&c, &d), vec![RULE_ALL_COMMITS.to_string()]);
    }
}
