//! Deciding whether a commit was written by an AI coding agent: built-in rules for the agents
//! seen in the wild (`known-agents`) plus the policy's own rules, and what the policy does when
//! a rule matches (`[[detect.action]]`). Every match names its rule id, the evidence and where
//! the evidence sat, so a refused pusher can see exactly why.
//!
//! Trailers are voluntary: an agent (or a person) can strip them. Identity rules and
//! `require = "all-commits"` are the stronger settings; the README says so.
//!
//! The preset is literal matching only, on the hook's hot path: one pass over a commit collects
//! what its rules look at ([`Seen`]: the author's and committer's agent, the trailers that name
//! an agent, the marker lines of the message), then each rule is a lookup in that. Agents are
//! recognised by address or GitHub account, never by a first name: "Claude Monet
//! <claude@monet.fr>" is a person.

use std::fmt;

use agentgate_git::Commit;
use regex::Regex;

use crate::config::RefPattern;
use crate::trailers::{Trailer, TrailerBlock};

pub const PRESET_KNOWN_AGENTS: &str = "known-agents";
/// Every preset name a policy may use.
pub const PRESETS: &[&str] = &[PRESET_KNOWN_AGENTS];

/// The rule id given to every commit under `require = "all-commits"`.
pub const RULE_ALL_COMMITS: &str = "require:all-commits";
/// The rule id of a commit whose git-ai authorship note (`[detect] sources = ["git-ai"]`)
/// attributes lines to an AI agent.
pub const RULE_GIT_AI: &str = "git-ai:note";

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

/// Evidence read from outside the commit object (`[detect] sources`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// git-ai's authorship logs in `refs/notes/ai`.
    GitAi,
}

impl Source {
    /// Every source a policy may name, with its name.
    pub const ALL: &'static [(&'static str, Source)] = &[("git-ai", Source::GitAi)];
}

#[derive(Debug, Clone)]
pub struct Detect {
    pub presets: Vec<String>,
    pub require: Require,
    pub rules: Vec<UserRule>,
    /// Evidence read from outside the commit.
    pub sources: Vec<Source>,
    /// What happens when rules match, beyond the gate (in policy order).
    pub actions: Vec<Action>,
}

impl Detect {
    /// What a policy without `[detect]` gets: the `known-agents` preset, agent commits only.
    pub fn known_agents() -> Detect {
        Detect {
            presets: vec![PRESET_KNOWN_AGENTS.to_string()],
            require: Require::AgentCommits,
            rules: Vec::new(),
            sources: Vec::new(),
            actions: Vec::new(),
        }
    }

    pub fn has_source(&self, source: Source) -> bool {
        self.sources.contains(&source)
    }

    /// Every rule id this detection can report (not `require:all-commits`), in order.
    pub fn rule_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .presets
            .iter()
            .flat_map(|p| preset_rules(p))
            .map(|r| r.id)
            .collect();
        ids.extend(self.rules.iter().map(|r| r.id.clone()));
        if self.has_source(Source::GitAi) {
            ids.push(RULE_GIT_AI.to_string());
        }
        ids
    }
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

/// What the policy does, beyond the gate, when its rules match an agent commit entering a
/// ref (`[[detect.action]]`). Actions only ever refuse: a commit they pass still needs its
/// attestation.
#[derive(Debug, Clone)]
pub struct Action {
    /// How messages name it (`[[detect.action]] id`, else `action-<n>`).
    pub id: String,
    /// Rule ids, or prefixes ending in `*`, whose matches trigger it. `require:all-commits`
    /// is no detection rule and never triggers one.
    pub rules: Vec<String>,
    /// Where it applies (names inside their namespace); empty: every protected ref.
    pub refs: Vec<RefPattern>,
    pub effect: Effect,
    /// The policy's own words for the pusher (a project's rule, a link).
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Effect {
    /// The commit may not enter the ref, attested or not (`agent-commit-refused`).
    Refuse,
    /// The commit must carry this trailer, in git's trailer block, with a value the regex
    /// finds a match in (`agent-trailer-missing`).
    RequireTrailer {
        key: String,
        value: Option<Regex>,
        /// The line the refusal shows as what was expected.
        example: String,
    },
}

/// A trailer an agent commit lacks, or has in the wrong form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Refused,
    /// No trailer with the key.
    TrailerMissing,
    /// Trailers with the key, none in the required form (their values).
    TrailerMalformed(Vec<String>),
}

impl Action {
    /// Does it apply to the ref `name` (its name inside its namespace)?
    pub fn applies_to_ref(&self, name: &str) -> bool {
        self.refs.is_empty() || self.refs.iter().any(|p| p.matches(name))
    }

    /// Is it triggered by one of these matches?
    pub fn triggered_by(&self, matches: &[Match]) -> bool {
        matches.iter().any(|m| {
            m.rule != RULE_ALL_COMMITS
                && self.rules.iter().any(|p| rule_pattern_matches(p, &m.rule))
        })
    }

    /// What it finds wrong with an agent commit with these matches and trailers (None when
    /// it is not triggered, or the commit satisfies it).
    pub fn check(&self, matches: &[Match], trailers: &[Trailer]) -> Option<Violation> {
        if !self.triggered_by(matches) {
            return None;
        }
        match &self.effect {
            Effect::Refuse => Some(Violation::Refused),
            Effect::RequireTrailer { key, value, .. } => {
                let found: Vec<&Trailer> = trailers
                    .iter()
                    .filter(|t| t.key.eq_ignore_ascii_case(key))
                    .collect();
                if found.is_empty() {
                    return Some(Violation::TrailerMissing);
                }
                let ok = |t: &&Trailer| value.as_ref().is_none_or(|re| re.is_match(&t.value));
                if found.iter().any(ok) {
                    None
                } else {
                    Some(Violation::TrailerMalformed(
                        found.iter().map(|t| t.value.clone()).collect(),
                    ))
                }
            }
        }
    }
}

/// A rule pattern of `[[detect.action]] rules`: an id, or a prefix ending in `*`.
pub fn rule_pattern_matches(pattern: &str, id: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => pattern == id,
    }
}

/// Where the evidence of a match sat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    /// A trailer, or a line, of git's trailer block (what `%(trailers)` reads).
    TrailerBlock,
    /// The message outside the trailer block (not its subject line).
    Body,
    /// The subject line.
    Subject,
    /// The author or committer.
    Identity,
    /// A git note on the commit.
    Notes,
    /// The policy itself (`require = "all-commits"`).
    Policy,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::TrailerBlock => "trailer block",
            Location::Body => "message body",
            Location::Subject => "subject",
            Location::Identity => "identity",
            Location::Notes => "notes",
            Location::Policy => "policy",
        })
    }
}

/// One rule that matched, with what it matched and where that sat.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    pub rule: String,
    pub evidence: String,
    pub location: Location,
}

// ---------------------------------------------------------------------------------------------
// The agents.

/// One agent's marks, from its own documentation and the commits it wrote (research notes:
/// each form here was seen in real histories). Compared ASCII case-insensitively.
struct Agent {
    /// What messages call it.
    name: &'static str,
    /// Addresses it commits or co-authors as.
    emails: &'static [&'static str],
    /// GitHub accounts it commits as, recognised by their noreply addresses
    /// (`ID+login@users.noreply.github.com` and `login@users.noreply.github.com`). Logins
    /// ending in `[bot]` are GitHub Apps, which no person can hold: those also count as names.
    accounts: &'static [&'static str],
    /// What follows "Generated with " or "Made with " at the start of a line it writes.
    generated: &'static [&'static str],
    /// Session lines it writes: the key (without the colon) and how the value starts.
    sessions: &'static [(&'static str, &'static str)],
}

const CLAUDE: usize = 0;
const CODEX: usize = 1;
const COPILOT: usize = 2;
const CURSOR: usize = 3;
const DEVIN: usize = 4;
const JULES: usize = 5;
const GEMINI: usize = 6;
const AMAZON_Q: usize = 7;
const KIRO: usize = 8;
const AIDER: usize = 9;
const AMP: usize = 10;
const FACTORY: usize = 11;
const OPENHANDS: usize = 12;
const ROO: usize = 13;
const CONTINUE: usize = 14;
const WINDSURF: usize = 15;
const CLINE: usize = 16;
const JUNIE: usize = 17;

const AGENTS: &[Agent] = &[
    // Claude Code: `Co-Authored-By: <model> <noreply@anthropic.com>`, "🤖 Generated with
    // [Claude Code](https://claude.com/claude-code)", Claude on the web's `Claude-Session:`,
    // the GitHub Apps claude[bot] (209825114) and claude-code-action[bot] (208546643).
    Agent {
        name: "Claude Code",
        emails: &["noreply@anthropic.com"],
        accounts: &["claude[bot]", "claude-code-action[bot]"],
        generated: &["[claude code]", "claude code"],
        sessions: &[("claude-session", "https://claude.ai/")],
    },
    // OpenAI Codex: the CLI's opt-in trailer and default identity (openai/codex#18095), the
    // cloud agent's GitHub Apps.
    Agent {
        name: "OpenAI Codex",
        emails: &[
            "noreply@openai.com",
            "codex@openai.com",
            "codex@example.com",
        ],
        accounts: &["chatgpt-codex-connector[bot]", "openai-codex[bot]"],
        generated: &[],
        sessions: &[],
    },
    // GitHub Copilot: the coding agent (copilot-swe-agent[bot], committing as
    // 198982749+Copilot@...), Autofix and other Copilot commits (the Copilot account under
    // other ids), VS Code's `git.addAICoAuthor`, the agent's `Agent-Logs-Url:` line.
    Agent {
        name: "GitHub Copilot",
        emails: &["copilot@github.com"],
        accounts: &["copilot", "copilot-swe-agent[bot]"],
        generated: &[],
        sessions: &[("agent-logs-url", "https://")],
    },
    // Cursor's cloud agents; "Made with [Cursor](https://cursor.com)" in squashed PR bodies.
    Agent {
        name: "Cursor",
        emails: &["cursoragent@cursor.com"],
        accounts: &[],
        generated: &["[cursor]"],
        sessions: &[],
    },
    // Devin: its GitHub App, "Devin Session:" (a space in the key: not a git trailer).
    Agent {
        name: "Devin",
        emails: &[],
        accounts: &["devin-ai-integration[bot]"],
        generated: &["[devin]"],
        sessions: &[("devin session", "https://app.devin.ai/")],
    },
    Agent {
        name: "Google Jules",
        emails: &[],
        accounts: &["google-labs-jules[bot]"],
        generated: &[],
        sessions: &[],
    },
    // Gemini Code Assist's GitHub App; the address seen on Gemini CLI commits.
    Agent {
        name: "Gemini",
        emails: &["gemini-cli@google.com"],
        accounts: &["gemini-code-assist[bot]"],
        generated: &[],
        sessions: &[],
    },
    Agent {
        name: "Amazon Q Developer",
        emails: &[],
        accounts: &["amazon-q-developer[bot]"],
        generated: &[],
        sessions: &[],
    },
    // Kiro's agent commits as a user account, 244629292+kiro-agent@....
    Agent {
        name: "Kiro",
        emails: &[],
        accounts: &["kiro-agent"],
        generated: &[],
        sessions: &[],
    },
    // Aider: `Co-authored-by: aider (<model>) <aider@aider.chat>` (noreply@aider.dev before),
    // " (aider)" after the author's and committer's names, the old "aider: " subject prefix.
    Agent {
        name: "Aider",
        emails: &["aider@aider.chat", "noreply@aider.dev"],
        accounts: &[],
        generated: &[],
        sessions: &[],
    },
    // Amp: `Co-authored-by: Amp <amp@ampcode.com>` and `Amp-Thread-ID:`, in either order.
    Agent {
        name: "Amp",
        emails: &["amp@ampcode.com"],
        accounts: &[],
        generated: &[],
        sessions: &[("amp-thread-id", "https://ampcode.com/")],
    },
    Agent {
        name: "Factory Droid",
        emails: &[],
        accounts: &["factory-droid[bot]"],
        generated: &[],
        sessions: &[],
    },
    // OpenHands' fallback identity, also its co-author line; before the rename (OpenDevin) its
    // resolver committed as `OpenHands <opendevin@all-hands.dev>` ("Fix issue #N: ...") and
    // co-authored as `OpenDevin <opendevin@opendevin.ai>` (both in OpenHands' own history).
    Agent {
        name: "OpenHands",
        emails: &[
            "openhands@all-hands.dev",
            "opendevin@all-hands.dev",
            "opendevin@opendevin.ai",
        ],
        accounts: &[],
        generated: &[],
        sessions: &[],
    },
    Agent {
        name: "Roo Code",
        emails: &["roomote@roocode.com"],
        accounts: &["roomote[bot]"],
        generated: &[],
        sessions: &[],
    },
    // Continue: "Generated with [Continue](https://continue.dev)" above its co-author line.
    Agent {
        name: "Continue",
        emails: &["noreply@continue.dev"],
        accounts: &["continue[bot]"],
        generated: &["[continue]"],
        sessions: &[],
    },
    Agent {
        name: "Windsurf",
        emails: &["noreply@windsurf.com", "noreply@codeium.com"],
        accounts: &[],
        generated: &[],
        sessions: &[],
    },
    Agent {
        name: "Cline",
        emails: &[],
        accounts: &["cline[bot]"],
        generated: &[],
        sessions: &[],
    },
    Agent {
        name: "JetBrains Junie",
        emails: &[],
        accounts: &["junie-agent"],
        generated: &[],
        sessions: &[],
    },
];

/// Words that name an AI tool in an `Assisted-by:` or `Generated-by:` value without an
/// address (Fedora's `Assisted-by: GitHub Copilot`); compared as whole words.
const TOOL_WORDS: &[&str] = &[
    "ai",
    "aider",
    "amp",
    "anthropic",
    "chatgpt",
    "claude",
    "cline",
    "codeium",
    "codex",
    "copilot",
    "cursor",
    "deepseek",
    "devin",
    "gemini",
    "gpt",
    "grok",
    "jules",
    "junie",
    "kiro",
    "llama",
    "llm",
    "mistral",
    "openai",
    "opencode",
    "openhands",
    "qwen",
    "windsurf",
];

/// Tool words that are also people's given names: in an `Assisted-by:` value without an
/// address, "Claude Dupont" is a person, "Claude", "Claude Code" or "Gemini 2.5 Pro" a tool.
const GIVEN_NAMES: &[&str] = &[
    "amp", "claude", "cline", "cursor", "devin", "gemini", "jules", "junie", "kiro",
];

/// Words that may follow a tool's name without making it a person's ("Claude Code", "Gemini
/// CLI", "Devin AI", "Cursor Agent").
const PRODUCT_WORDS: &[&str] = &[
    "agent", "ai", "app", "assist", "bot", "chat", "cli", "cloud", "code", "composer", "desktop",
    "flash", "haiku", "opus", "pro", "sonnet", "ultra",
];

/// The keys of `Kind::ToolTrailer` rules (lowercase).
const TOOL_KEYS: &[&str] = &["assisted-by", "generated-by", "ai-assisted"];

/// Values of `AI-assisted:` that say it was not.
const NEGATIVE: &[&str] = &["no", "none", "false", "n/a", "0"];

/// What a preset rule tests.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A `Co-authored-by` trailer naming the agent by address or account.
    CoAuthor(usize),
    /// Author or committer email: the agent's addresses and/or its accounts' noreply addresses.
    Identity {
        agent: usize,
        emails: bool,
        accounts: bool,
    },
    /// Author or committer name equal to one of the agent's `[bot]` accounts.
    BotName(usize),
    /// Author or committer name ending in a literal (trailing white space ignored).
    NameSuffix(&'static str),
    /// The subject line starting with a literal.
    SubjectPrefix(&'static str),
    /// A "Generated with …" or "Made with …" line the agent writes.
    Generated(usize),
    /// A session line the agent writes (`Claude-Session:`, `Devin Session:` ...).
    Session(usize),
    /// A `Co-authored-by:` line naming any agent outside git's trailer block: in an earlier
    /// paragraph (`bullet: false`), or in a bullet list of a squash merge (`bullet: true`).
    CoAuthorLine { bullet: bool },
    /// A `Signed-off-by` trailer naming any agent.
    SignedOffBy,
    /// A trailer with this key (lowercase) whose value names an AI tool.
    ToolTrailer(&'static str),
}

/// The `known-agents` preset: stable rule ids (`known-agents:<id>`) and what each tests.
const KNOWN_AGENTS: &[(&str, Kind)] = &[
    ("claude-co-author", Kind::CoAuthor(CLAUDE)),
    ("claude-identity", identity(CLAUDE)),
    ("claude-name", Kind::BotName(CLAUDE)),
    ("claude-code-body", Kind::Generated(CLAUDE)),
    ("claude-session", Kind::Session(CLAUDE)),
    ("aider-co-author", Kind::CoAuthor(AIDER)),
    ("aider-identity", identity(AIDER)),
    ("aider-name", Kind::NameSuffix("(aider)")),
    ("aider-subject", Kind::SubjectPrefix("aider: ")),
    ("copilot-co-author", Kind::CoAuthor(COPILOT)),
    ("copilot-identity", identity(COPILOT)),
    ("copilot-name", Kind::BotName(COPILOT)),
    ("copilot-session", Kind::Session(COPILOT)),
    ("cursor-co-author", Kind::CoAuthor(CURSOR)),
    ("cursor-identity", identity(CURSOR)),
    ("cursor-body", Kind::Generated(CURSOR)),
    ("codex-co-author", Kind::CoAuthor(CODEX)),
    (
        "codex-identity",
        Kind::Identity {
            agent: CODEX,
            emails: true,
            accounts: false,
        },
    ),
    (
        "codex-bot",
        Kind::Identity {
            agent: CODEX,
            emails: false,
            accounts: true,
        },
    ),
    ("codex-name", Kind::BotName(CODEX)),
    ("devin-co-author", Kind::CoAuthor(DEVIN)),
    ("devin-identity", identity(DEVIN)),
    ("devin-name", Kind::BotName(DEVIN)),
    ("devin-body", Kind::Generated(DEVIN)),
    ("devin-session", Kind::Session(DEVIN)),
    ("jules-co-author", Kind::CoAuthor(JULES)),
    ("jules-identity", identity(JULES)),
    ("jules-name", Kind::BotName(JULES)),
    ("gemini-co-author", Kind::CoAuthor(GEMINI)),
    ("gemini-identity", identity(GEMINI)),
    ("gemini-name", Kind::BotName(GEMINI)),
    ("amazon-q-co-author", Kind::CoAuthor(AMAZON_Q)),
    ("amazon-q-identity", identity(AMAZON_Q)),
    ("amazon-q-name", Kind::BotName(AMAZON_Q)),
    ("kiro-co-author", Kind::CoAuthor(KIRO)),
    ("kiro-identity", identity(KIRO)),
    ("amp-co-author", Kind::CoAuthor(AMP)),
    ("amp-identity", identity(AMP)),
    ("amp-session", Kind::Session(AMP)),
    ("factory-droid-co-author", Kind::CoAuthor(FACTORY)),
    ("factory-droid-identity", identity(FACTORY)),
    ("factory-droid-name", Kind::BotName(FACTORY)),
    ("openhands-co-author", Kind::CoAuthor(OPENHANDS)),
    ("openhands-identity", identity(OPENHANDS)),
    ("roo-code-co-author", Kind::CoAuthor(ROO)),
    ("roo-code-identity", identity(ROO)),
    ("roo-code-name", Kind::BotName(ROO)),
    ("continue-co-author", Kind::CoAuthor(CONTINUE)),
    ("continue-identity", identity(CONTINUE)),
    ("continue-name", Kind::BotName(CONTINUE)),
    ("continue-body", Kind::Generated(CONTINUE)),
    ("windsurf-co-author", Kind::CoAuthor(WINDSURF)),
    ("windsurf-identity", identity(WINDSURF)),
    ("cline-co-author", Kind::CoAuthor(CLINE)),
    ("cline-identity", identity(CLINE)),
    ("cline-name", Kind::BotName(CLINE)),
    ("junie-co-author", Kind::CoAuthor(JUNIE)),
    ("junie-identity", identity(JUNIE)),
    // Any agent, outside the trailer block: what users expect caught even though git does
    // not call it a trailer.
    ("co-author-in-body", Kind::CoAuthorLine { bullet: false }),
    ("squash-co-author", Kind::CoAuthorLine { bullet: true }),
    // The Linux kernel: AI agents must not add Signed-off-by.
    ("agent-signed-off-by", Kind::SignedOffBy),
    // Project conventions: Linux kernel and Fedora (Assisted-by), OpenInfra and ASF
    // (Generated-by), AI-assisted. curl uses Assisted-by for human helpers and non-AI tools
    // write Generated-by, so the value must name an AI tool (see `names_ai_tool`).
    ("assisted-by", Kind::ToolTrailer("assisted-by")),
    ("generated-by", Kind::ToolTrailer("generated-by")),
    ("ai-assisted", Kind::ToolTrailer("ai-assisted")),
];

const fn identity(agent: usize) -> Kind {
    Kind::Identity {
        agent,
        emails: true,
        accounts: true,
    }
}

/// What a rule tests: a policy rule (regexes, compiled when the policy loaded) or a built-in
/// one (literal matches: no regex is compiled on the hook's hot path).
#[derive(Debug, Clone)]
enum Test {
    Policy(Matcher),
    Preset(Kind),
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
    /// Some preset rule is on: the commit needs its one pass ([`Seen`]).
    presets: bool,
}

fn preset_rules(name: &str) -> Vec<Rule> {
    match name {
        PRESET_KNOWN_AGENTS => KNOWN_AGENTS
            .iter()
            .map(|&(id, kind)| Rule {
                id: format!("{PRESET_KNOWN_AGENTS}:{id}"),
                test: Test::Preset(kind),
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
        let presets = !rules.is_empty();
        rules.extend(detect.rules.iter().map(|r| Rule {
            id: r.id.clone(),
            test: Test::Policy(r.matcher.clone()),
        }));
        Detector {
            rules,
            require: detect.require,
            presets,
        }
    }

    pub fn require(&self) -> Require {
        self.require
    }

    /// Every rule that matches `commit`, whose trailers are `parsed`; under `all-commits`
    /// the list is never empty.
    pub fn detect(&self, commit: &Commit, parsed: &TrailerBlock) -> Vec<Match> {
        let seen = if self.presets {
            Seen::of(commit, parsed)
        } else {
            Seen::default()
        };
        let mut out = Vec::new();
        for rule in &self.rules {
            let found = match &rule.test {
                Test::Policy(m) => evidence(m, commit, parsed),
                Test::Preset(kind) => seen.evidence(*kind, commit, &parsed.trailers),
            };
            if let Some((evidence, location)) = found {
                out.push(Match {
                    rule: rule.id.clone(),
                    evidence,
                    location,
                });
            }
        }
        if self.require == Require::AllCommits {
            out.push(Match {
                rule: RULE_ALL_COMMITS.into(),
                evidence: "policy requires every commit to be attested".into(),
                location: Location::Policy,
            });
        }
        out
    }

    /// The ids of all rules, for `--help`-style listings and tests.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// One pass over a commit.

/// The agent behind an address or GitHub account, by exact comparison.
fn agent_of_email(email: &str) -> Option<(usize, bool)> {
    let email = email.trim();
    if let Some(local) = strip_suffix_ci(email, "@users.noreply.github.com") {
        // `ID+login` or `login`; the id is digits only.
        let login = match local.split_once('+') {
            Some((id, login)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => login,
            Some(_) => return None,
            None => local,
        };
        return AGENTS
            .iter()
            .position(|a| a.accounts.iter().any(|l| l.eq_ignore_ascii_case(login)))
            .map(|i| (i, true));
    }
    AGENTS
        .iter()
        .position(|a| a.emails.iter().any(|e| e.eq_ignore_ascii_case(email)))
        .map(|i| (i, false))
}

/// The agent whose GitHub App this name is (`login[bot]`).
fn agent_of_bot_name(name: &str) -> Option<usize> {
    let name = name.trim();
    strip_suffix_ci(name, "[bot]")?;
    AGENTS
        .iter()
        .position(|a| a.accounts.iter().any(|l| l.eq_ignore_ascii_case(name)))
}

/// The address in a person line (`Name <addr>`, `<addr>`, or a bare `addr`), if any.
fn address_in(value: &str) -> Option<&str> {
    if let Some((_, rest)) = value.split_once('<') {
        let addr = rest.split_once('>').map_or(rest, |(a, _)| a).trim();
        return (!addr.is_empty()).then_some(addr);
    }
    value
        .split_whitespace()
        .rev()
        .find(|w| w.contains('@'))
        .map(|w| w.trim_matches(|c: char| matches!(c, '(' | ')' | ',' | ';' | '"' | '\'')))
}

/// The agent a person line names: by its address, else by a `[bot]` name. A name alone
/// ("Claude") never counts.
fn agent_of_person(value: &str) -> Option<usize> {
    match address_in(value) {
        Some(addr) => agent_of_email(addr).map(|(a, _)| a),
        None => agent_of_bot_name(value),
    }
}

/// Does an `Assisted-by:`/`Generated-by:` value name an AI tool? With an address, the address
/// decides; otherwise the kernel's `AGENT:MODEL` form, or a tool's name as a word.
fn names_ai_tool(value: &str) -> bool {
    if address_in(value).is_some() {
        return agent_of_person(value).is_some();
    }
    let first = value.split_whitespace().next().unwrap_or("");
    if let Some((agent, model)) = first.split_once(':') {
        if !agent.is_empty() && !model.is_empty() && !model.starts_with("//") {
            return true;
        }
    }
    let is = |list: &[&str], w: &str| list.iter().any(|t| t.eq_ignore_ascii_case(w));
    let tokens: Vec<&str> = value.split_whitespace().collect();
    tokens.iter().enumerate().any(|(i, token)| {
        token
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| is(TOOL_WORDS, w))
            .any(|w| {
                // A given name followed by a surname is a person (curl thanks its helpers
                // this way); followed by nothing, a version or a product word, a tool.
                !is(GIVEN_NAMES, w)
                    || !token.eq_ignore_ascii_case(w)
                    || !tokens.get(i + 1).is_some_and(|next| {
                        let next = next.trim_end_matches([',', ';', '.', ')']);
                        next.starts_with(char::is_uppercase)
                            && next
                                .chars()
                                .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
                            && !is(PRODUCT_WORDS, next)
                    })
            })
    })
}

fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

fn strip_suffix_ci<'s>(s: &'s str, suffix: &str) -> Option<&'s str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| s.get(..cut))
        .flatten()
}

/// `Key:` (any case, blanks before the colon allowed) at the start of `line`: the value after
/// it, trimmed.
fn value_after_key<'s>(line: &'s str, key: &str) -> Option<&'s str> {
    let rest = strip_prefix_ci(line, key)?;
    let rest = rest.trim_start_matches([' ', '\t']);
    Some(rest.strip_prefix(':')?.trim())
}

/// A list marker at the start of a line (`* `, `- `, `+ `, `> `, `• `, `1. `, `1) `),
/// possibly nested and indented: the rest of the line and whether there was one. An indented
/// line without a marker is returned as it is (it is a code block or a continuation).
fn strip_list_marker(line: &str) -> (&str, bool) {
    let mut rest = line;
    let mut marked = false;
    for _ in 0..4 {
        let t = rest.trim_start_matches([' ', '\t']);
        let after = if let Some(r) = t.strip_prefix('>') {
            Some(r)
        } else if let Some(r) = t
            .strip_prefix(['*', '-', '+'])
            .or_else(|| t.strip_prefix('\u{2022}'))
        {
            r.starts_with([' ', '\t']).then_some(r)
        } else {
            let digits = t.bytes().take_while(u8::is_ascii_digit).count();
            t.get(digits..)
                .filter(|_| (1..=3).contains(&digits))
                .and_then(|r| r.strip_prefix(['.', ')']))
                .filter(|r| r.starts_with([' ', '\t']))
        };
        match after {
            Some(r) => {
                rest = r;
                marked = true;
            }
            None => break,
        }
    }
    if marked {
        (rest.trim_start_matches([' ', '\t']), true)
    } else {
        (line, false)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerKind {
    CoAuthor { bullet: bool },
    Generated,
    Session,
}

/// A message line that is an agent's mark.
#[derive(Debug, Clone, Copy)]
struct Marker<'c> {
    kind: MarkerKind,
    agent: usize,
    line: &'c str,
    location: Location,
}

/// A trailer that names an agent or is a tool convention: its index and what it is.
#[derive(Debug, Clone, Copy)]
enum Named {
    CoAuthor(usize),
    SignedOffBy(usize),
    /// A tool-convention trailer (`assisted-by` ...) whose value names an AI tool.
    Tool(&'static str),
}

/// What the preset rules look at, gathered in one pass over a commit.
#[derive(Debug, Default)]
struct Seen<'c> {
    /// Author and committer email: (agent, by account).
    emails: [Option<(usize, bool)>; 2],
    /// Author and committer name, when a `[bot]` account's.
    bot_names: [Option<usize>; 2],
    trailers: Vec<(usize, Named)>,
    markers: Vec<Marker<'c>>,
}

const WHO: [(&str, &str); 2] = [
    ("author email", "author name"),
    ("committer email", "committer name"),
];

impl<'c> Seen<'c> {
    fn of(c: &'c Commit, parsed: &TrailerBlock) -> Seen<'c> {
        let mut seen = Seen {
            emails: [
                agent_of_email(&c.author.email),
                agent_of_email(&c.committer.email),
            ],
            bot_names: [
                agent_of_bot_name(&c.author.name),
                agent_of_bot_name(&c.committer.name),
            ],
            trailers: Vec::new(),
            markers: Vec::new(),
        };
        for (i, t) in parsed.trailers.iter().enumerate() {
            let key = t.key.as_str();
            let named = if key.eq_ignore_ascii_case("co-authored-by") {
                agent_of_person(&t.value).map(Named::CoAuthor)
            } else if key.eq_ignore_ascii_case("signed-off-by") {
                agent_of_person(&t.value).map(Named::SignedOffBy)
            } else {
                TOOL_KEYS
                    .iter()
                    .find(|k| key.eq_ignore_ascii_case(k))
                    .and_then(|&k| {
                        let value = t.value.trim();
                        let yes = if k == "ai-assisted" {
                            !value.is_empty()
                                && !NEGATIVE.iter().any(|n| n.eq_ignore_ascii_case(value))
                        } else {
                            names_ai_tool(value)
                        };
                        yes.then_some(Named::Tool(k))
                    })
            };
            if let Some(n) = named {
                seen.trailers.push((i, n));
            }
        }
        seen.scan(&c.message, parsed);
        seen
    }

    /// The marker lines of the message, the subject excluded (people write about agents
    /// there; agents write their marks in the body).
    fn scan(&mut self, message: &'c str, parsed: &TrailerBlock) {
        let mut offset = 0;
        let mut subject_seen = false;
        for raw in message.split_inclusive('\n') {
            let start = offset;
            offset += raw.len();
            let line = raw.trim_end_matches(['\n', '\r']);
            if !subject_seen {
                subject_seen = !line.trim().is_empty();
                continue;
            }
            let Some(&first) = line.as_bytes().first() else {
                continue;
            };
            // Most lines are rejected here: no mark starts with anything else.
            if !matches!(
                first.to_ascii_lowercase(),
                b'a' | b'c' | b'd' | b'g' | b'm' | b' ' | b'\t' | b'*' | b'-' | b'+' | b'>' | b'0'
                    ..=b'9' | 0xe2 | 0xf0
            ) {
                continue;
            }
            let (text, bullet) = strip_list_marker(line);
            if text.starts_with([' ', '\t']) {
                continue;
            }
            let in_block = parsed.contains(start);
            let location = if in_block {
                Location::TrailerBlock
            } else {
                Location::Body
            };
            let mut push = |kind, agent| {
                self.markers.push(Marker {
                    kind,
                    agent,
                    line,
                    location,
                })
            };
            if let Some(value) = value_after_key(text, "co-authored-by") {
                // In the block without a list marker it is a trailer: the trailer rules have it.
                if bullet || !in_block {
                    if let Some(agent) = agent_of_person(value) {
                        push(MarkerKind::CoAuthor { bullet }, agent);
                    }
                }
                continue;
            }
            let unemoji = text
                .strip_prefix('\u{1f916}')
                .map_or(text, |r| r.trim_start_matches([' ', '\t']));
            if let Some(what) = strip_prefix_ci(unemoji, "generated with ")
                .or_else(|| strip_prefix_ci(unemoji, "made with "))
            {
                let what = what.trim_start();
                if let Some(agent) = AGENTS.iter().position(|a| {
                    a.generated
                        .iter()
                        .any(|g| strip_prefix_ci(what, g).is_some_and(ends_word))
                }) {
                    push(MarkerKind::Generated, agent);
                }
                continue;
            }
            for (agent, a) in AGENTS.iter().enumerate() {
                for (key, prefix) in a.sessions {
                    if value_after_key(text, key)
                        .is_some_and(|v| strip_prefix_ci(v, prefix).is_some_and(|r| !r.is_empty()))
                    {
                        push(MarkerKind::Session, agent);
                    }
                }
            }
        }
    }

    /// Evidence for a preset rule, and where it sat.
    fn evidence(&self, kind: Kind, c: &Commit, trailers: &[Trailer]) -> Option<(String, Location)> {
        let trailer = |i: usize| {
            trailers.get(i).map(|t| {
                (
                    format!("trailer \"{}: {}\"", t.key, t.value),
                    Location::TrailerBlock,
                )
            })
        };
        let line = |m: &Marker<'_>, named: bool| {
            let shown: String = m.line.trim().chars().take(200).collect();
            let evidence = match AGENTS.get(m.agent) {
                Some(a) if named => format!("message line \"{shown}\" ({})", a.name),
                _ => format!("message line \"{shown}\""),
            };
            (evidence, m.location)
        };
        let who = [&c.author, &c.committer];
        match kind {
            Kind::CoAuthor(agent) => self.trailers.iter().find_map(|&(i, n)| match n {
                Named::CoAuthor(a) if a == agent => trailer(i),
                _ => None,
            }),
            Kind::SignedOffBy => self.trailers.iter().find_map(|&(i, n)| match n {
                Named::SignedOffBy(a) => trailer(i).map(|(e, l)| {
                    let name = AGENTS.get(a).map_or("", |a| a.name);
                    (format!("{e} ({name})"), l)
                }),
                _ => None,
            }),
            Kind::ToolTrailer(key) => self.trailers.iter().find_map(|&(i, n)| match n {
                Named::Tool(k) if k == key => trailer(i),
                _ => None,
            }),
            Kind::Identity {
                agent,
                emails,
                accounts,
            } => (0..2).find_map(|i| match self.emails.get(i).copied().flatten() {
                Some((a, by_account))
                    if a == agent && (if by_account { accounts } else { emails }) =>
                {
                    let (what, _) = WHO.get(i)?;
                    let person = who.get(i)?;
                    Some((format!("{what} \"{}\"", person.email), Location::Identity))
                }
                _ => None,
            }),
            Kind::BotName(agent) => {
                (0..2).find_map(|i| match self.bot_names.get(i).copied().flatten() {
                    Some(a) if a == agent => {
                        let (_, what) = WHO.get(i)?;
                        let person = who.get(i)?;
                        Some((format!("{what} \"{}\"", person.name), Location::Identity))
                    }
                    _ => None,
                })
            }
            Kind::NameSuffix(suffix) => (0..2).find_map(|i| {
                let person = who.get(i)?;
                let (_, what) = WHO.get(i)?;
                person
                    .name
                    .trim_end()
                    .ends_with(suffix)
                    .then(|| (format!("{what} \"{}\"", person.name), Location::Identity))
            }),
            Kind::SubjectPrefix(prefix) => {
                let subject = c.subject();
                subject.starts_with(prefix).then(|| {
                    let shown: String = subject.chars().take(200).collect();
                    (format!("subject \"{shown}\""), Location::Subject)
                })
            }
            Kind::Generated(agent) => self
                .markers
                .iter()
                .find(|m| m.kind == MarkerKind::Generated && m.agent == agent)
                .map(|m| line(m, false)),
            Kind::Session(agent) => self
                .markers
                .iter()
                .find(|m| m.kind == MarkerKind::Session && m.agent == agent)
                .map(|m| line(m, false)),
            Kind::CoAuthorLine { bullet } => self
                .markers
                .iter()
                .find(|m| m.kind == MarkerKind::CoAuthor { bullet })
                .map(|m| line(m, true)),
        }
    }
}

/// After a product's name: the end, or anything but a letter or digit ("Claude Code's" is
/// fine, "Claude Codex" is another name).
fn ends_word(rest: &str) -> bool {
    !rest.starts_with(|c: char| c.is_alphanumeric())
}

/// The line of `message` around byte range `start..end`, trimmed and bounded, and the offset
/// of its start.
fn line_around(message: &str, start: usize, end: usize) -> (String, usize) {
    let from = message
        .get(..start)
        .and_then(|m| m.rfind('\n'))
        .map(|i| i + 1)
        .unwrap_or(0);
    let to = message
        .get(end..)
        .and_then(|m| m.find('\n'))
        .map(|i| end + i)
        .unwrap_or(message.len());
    let line = message.get(from..to).unwrap_or("");
    (line.trim().chars().take(200).collect(), from)
}

/// Where a message line starting at `offset` sits.
fn location_of_line(message: &str, offset: usize, parsed: &TrailerBlock) -> Location {
    if parsed.contains(offset) {
        return Location::TrailerBlock;
    }
    // The subject: the first non-blank line.
    let before = message.get(..offset).unwrap_or("");
    if before.trim().is_empty() {
        Location::Subject
    } else {
        Location::Body
    }
}

fn evidence(matcher: &Matcher, c: &Commit, parsed: &TrailerBlock) -> Option<(String, Location)> {
    match matcher {
        Matcher::Trailer { key, value } => parsed
            .trailers
            .iter()
            .find(|t| {
                t.key.eq_ignore_ascii_case(key)
                    && value.as_ref().is_none_or(|re| re.is_match(&t.value))
            })
            .map(|t| {
                (
                    format!("trailer \"{}: {}\"", t.key, t.value),
                    Location::TrailerBlock,
                )
            }),
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
                .map(|(what, v)| (format!("{what} \"{v}\""), Location::Identity))
        }
        Matcher::Message(re) => re.find(&c.message).map(|m| {
            let (line, from) = line_around(&c.message, m.start(), m.end());
            (
                format!("message line \"{line}\""),
                location_of_line(&c.message, from, parsed),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trailers::{parse_block, TrailerConfig};
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

    fn matches_for(c: &Commit, detect: &Detect) -> Vec<Match> {
        let t = parse_block(&c.message, &TrailerConfig::default());
        Detector::new(detect).detect(c, &t)
    }

    fn rules_for(c: &Commit, detect: &Detect) -> Vec<String> {
        let mut got: Vec<String> = matches_for(c, detect).into_iter().map(|m| m.rule).collect();
        got.sort();
        got
    }

    fn known() -> Detect {
        Detect::known_agents()
    }

    const HUMAN: (&str, &str) = ("Ada", "ada@example.com");

    fn message_rules(message: &str) -> Vec<String> {
        rules_for(&commit(HUMAN, HUMAN, message), &known())
    }

    fn want(ids: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = ids.iter().map(|s| format!("known-agents:{s}")).collect();
        v.sort();
        v
    }

    #[test]
    fn preset_ids_are_unique_and_name_their_agents() {
        let ids = Detect::known_agents().rule_ids();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(ids.len(), KNOWN_AGENTS.len());
        let names = [
            (CLAUDE, "Claude Code"),
            (CODEX, "OpenAI Codex"),
            (COPILOT, "GitHub Copilot"),
            (CURSOR, "Cursor"),
            (DEVIN, "Devin"),
            (JULES, "Google Jules"),
            (GEMINI, "Gemini"),
            (AMAZON_Q, "Amazon Q Developer"),
            (KIRO, "Kiro"),
            (AIDER, "Aider"),
            (AMP, "Amp"),
            (FACTORY, "Factory Droid"),
            (OPENHANDS, "OpenHands"),
            (ROO, "Roo Code"),
            (CONTINUE, "Continue"),
            (WINDSURF, "Windsurf"),
            (CLINE, "Cline"),
            (JUNIE, "JetBrains Junie"),
        ];
        assert_eq!(names.len(), AGENTS.len());
        for (i, name) in names {
            assert_eq!(AGENTS[i].name, name);
        }
        // Literals are compared case-insensitively against trimmed text.
        for a in AGENTS {
            for s in a.emails.iter().chain(a.accounts).chain(a.generated) {
                assert_eq!(s.trim(), *s);
                assert_eq!(s.to_ascii_lowercase(), *s);
            }
        }
    }

    #[test]
    fn known_agents_table() {
        type Case<'a> = (
            (&'a str, &'a str),
            (&'a str, &'a str),
            &'a str,
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (HUMAN, HUMAN, "Fix bug\n\nDetails here.\n", &[]),
            (HUMAN, HUMAN, "Fix\n\nCo-Authored-By: Claude Opus 4.5 <noreply@anthropic.com>\n", &["claude-co-author"]),
            (HUMAN, HUMAN, "Fix\n\n🤖 Generated with [Claude Code](https://claude.com/claude-code)\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n", &["claude-co-author", "claude-code-body"]),
            // A body line directly above the trailer makes git ignore the trailer block; the
            // body rules still fire.
            (HUMAN, HUMAN, "Fix\n\nGenerated with [Claude Code](https://claude.ai/code)\nCo-Authored-By: Claude <noreply@anthropic.com>\n", &["claude-code-body", "co-author-in-body"]),
            (HUMAN, ("Ada (aider)", "ada@example.com"), "Fix\n", &["aider-name"]),
            (HUMAN, HUMAN, "Fix\n\nCo-authored-by: aider (gpt-4o) <aider@aider.chat>\n", &["aider-co-author"]),
            (("copilot-swe-agent[bot]", "198982749+Copilot@users.noreply.github.com"), HUMAN, "Fix\n", &["copilot-identity", "copilot-name"]),
            (("Cursor Agent", "cursoragent@cursor.com"), HUMAN, "Fix\n", &["cursor-identity"]),
            (HUMAN, HUMAN, "Fix\n\nCo-authored-by: Codex <noreply@openai.com>\n", &["codex-co-author"]),
            (HUMAN, HUMAN, "Fix\n\nGenerated with [Devin](https://devin.ai)\n\nCo-Authored-By: Devin <158243242+devin-ai-integration[bot]@users.noreply.github.com>\n", &["devin-co-author", "devin-body"]),
            (("google-labs-jules[bot]", "161369871+google-labs-jules[bot]@users.noreply.github.com"), HUMAN, "Fix\n", &["jules-identity", "jules-name"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: Claude:claude-3-opus coccinelle\nSigned-off-by: Ada <ada@example.com>\n", &["assisted-by"]),
            (HUMAN, HUMAN, "Fix\n\ngenerated-by: Claude Code\n", &["generated-by"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: GitHub Copilot\n", &["assisted-by"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: Claude\n", &["assisted-by"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: Gemini 2.5 Pro\n", &["assisted-by"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: Devin AI\n", &["assisted-by"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: Claude Opus 4.5 (Anthropic)\n", &["assisted-by"]),
            (HUMAN, HUMAN, "Fix\n\nAssisted-by: Jay Satiro, Claude\n", &["assisted-by"]),
            // The subject paragraph never holds trailers.
            (HUMAN, HUMAN, "Assisted-by: Claude\n", &[]),
            // A human co-author is not an agent.
            (HUMAN, HUMAN, "Fix\n\nCo-authored-by: Bob <bob@example.com>\n", &[]),
        ];
        for (author, committer, message, expected) in cases {
            let c = commit(*author, *committer, message);
            assert_eq!(
                rules_for(&c, &known()),
                want(expected),
                "message {message:?}"
            );
        }
    }

    /// Every agent of the research table, in every form it leaves, built as the agent
    /// writes it.
    #[test]
    fn every_agent_in_every_form() {
        let ident =
            |author: (&str, &str)| rules_for(&commit(author, HUMAN, "Fix the parser\n"), &known());
        let co = |who: &str| {
            message_rules(&format!(
                "Fix the parser\n\nMore detail.\n\nCo-authored-by: {who}\n"
            ))
        };
        let body =
            |line: &str| message_rules(&format!("Fix the parser\n\nMore detail.\n\n{line}\n"));
        // (agent's identity, co-author line, bot account's login (both noreply forms), body line)
        type Row<'a> = (
            &'a str,
            Option<(&'a str, &'a str)>,
            Option<&'a str>,
            &'a [&'a str],
            &'a [(&'a str, &'a str)],
        );
        let rows: &[Row] = &[
            ("claude", None, Some("Claude Opus 4.8 (1M context) <noreply@anthropic.com>"), &["209825114+claude[bot]", "208546643+claude-code-action[bot]"], &[
                ("🤖 Generated with [Claude Code](https://claude.ai/code)", "claude-code-body"),
                ("Generated with [Claude Code](https://claude.com/claude-code)", "claude-code-body"),
                ("Generated with Claude Code", "claude-code-body"),
                ("Claude-Session: https://claude.ai/code/session_01AbCdEf", "claude-session"),
            ]),
            ("codex", Some(("Codex", "codex@example.com")), Some("Codex <noreply@openai.com>"), &["199175422+chatgpt-codex-connector[bot]", "215057067+openai-codex[bot]"], &[]),
            ("copilot", Some(("copilot-swe-agent[bot]", "198982749+Copilot@users.noreply.github.com")), Some("Copilot <copilot@github.com>"), &["198982749+Copilot", "175728472+Copilot", "223556219+Copilot", "198982749+copilot-swe-agent[bot]"], &[
                ("Agent-Logs-Url: https://github.com/acme/app/sessions/0c5e3f1a-7d2b-4c1e-9a8f-2b6d4e5f6a7b", "copilot-session"),
            ]),
            ("cursor", Some(("Cursor Agent", "cursoragent@cursor.com")), Some("Cursor <cursoragent@cursor.com>"), &[], &[
                ("Made with [Cursor](https://cursor.com)", "cursor-body"),
            ]),
            ("devin", Some(("devin-ai-integration[bot]", "158243242+devin-ai-integration[bot]@users.noreply.github.com")), Some("Devin AI <158243242+devin-ai-integration[bot]@users.noreply.github.com>"), &["158243242+devin-ai-integration[bot]"], &[
                ("Devin Session: https://app.devin.ai/sessions/4b1d2c3e5f6a", "devin-session"),
            ]),
            ("jules", Some(("google-labs-jules[bot]", "161369871+google-labs-jules[bot]@users.noreply.github.com")), Some("google-labs-jules[bot] <161369871+google-labs-jules[bot]@users.noreply.github.com>"), &["161369871+google-labs-jules[bot]"], &[]),
            ("gemini", Some(("Gemini CLI", "gemini-cli@google.com")), Some("Gemini <gemini-cli@google.com>"), &["176961590+gemini-code-assist[bot]"], &[]),
            ("amazon-q", Some(("amazon-q-developer[bot]", "208079219+amazon-q-developer[bot]@users.noreply.github.com")), Some("amazon-q-developer[bot] <208079219+amazon-q-developer[bot]@users.noreply.github.com>"), &["208079219+amazon-q-developer[bot]"], &[]),
            ("kiro", Some(("Kiro Agent", "244629292+kiro-agent@users.noreply.github.com")), Some("Kiro Agent <244629292+kiro-agent@users.noreply.github.com>"), &["244629292+kiro-agent"], &[]),
            ("aider", Some(("Ada (aider)", "aider@aider.chat")), Some("aider (anthropic/claude-sonnet-4) <aider@aider.chat>"), &[], &[]),
            ("amp", Some(("Amp", "amp@ampcode.com")), Some("Amp <amp@ampcode.com>"), &[], &[
                ("Amp-Thread-ID: https://ampcode.com/threads/T-5f2a9c1e-3b7d-4e8f-a1c2-d3e4f5a6b7c8", "amp-session"),
            ]),
            ("factory-droid", None, Some("factory-droid[bot] <138933559+factory-droid[bot]@users.noreply.github.com>"), &["138933559+factory-droid[bot]"], &[]),
            ("openhands", Some(("openhands", "openhands@all-hands.dev")), Some("openhands <openhands@all-hands.dev>"), &[], &[]),
            ("openhands", Some(("OpenHands", "opendevin@all-hands.dev")), Some("OpenDevin <opendevin@opendevin.ai>"), &[], &[]),
            ("roo-code", None, Some("Roo Code <roomote@roocode.com>"), &["211234567+roomote[bot]"], &[]),
            ("continue", None, Some("Continue <noreply@continue.dev>"), &["230936708+continue[bot]"], &[
                ("Generated with [Continue](https://continue.dev)", "continue-body"),
            ]),
            ("windsurf", Some(("Windsurf", "noreply@windsurf.com")), Some("Codeium <noreply@codeium.com>"), &[], &[]),
            ("cline", None, Some("cline[bot] <205137888+cline[bot]@users.noreply.github.com>"), &["205137888+cline[bot]"], &[]),
            ("junie", Some(("Junie", "201234567+junie-agent@users.noreply.github.com")), Some("Junie <201234567+junie-agent@users.noreply.github.com>"), &["201234567+junie-agent"], &[]),
        ];
        for (agent, identity, co_author, accounts, lines) in rows {
            let has =
                |got: &[String], id: &str| got.contains(&format!("known-agents:{agent}-{id}"));
            if let Some(who) = identity {
                let got = ident(*who);
                assert!(
                    has(&got, "identity") || has(&got, "name"),
                    "{agent} identity {who:?}: {got:?}"
                );
            }
            if let Some(line) = co_author {
                assert_eq!(
                    co(line),
                    want(&[&format!("{agent}-co-author")]),
                    "{agent}: {line}"
                );
            }
            for login in *accounts {
                let with_id = format!("{login}@users.noreply.github.com");
                let without = format!(
                    "{}@users.noreply.github.com",
                    login.split_once('+').map_or(*login, |(_, l)| l)
                );
                for email in [with_id, without] {
                    let got = ident(("Some Bot", &email));
                    let id = if *agent == "codex" { "bot" } else { "identity" };
                    assert!(has(&got, id), "{agent} account {email}: {got:?}");
                    let got = co(&format!("Bot <{email}>"));
                    assert_eq!(
                        got,
                        want(&[&format!("{agent}-co-author")]),
                        "{agent} co-author {email}"
                    );
                }
            }
            for (line, rule) in *lines {
                assert_eq!(body(line), want(&[rule]), "{agent}: {line}");
            }
        }
    }

    #[test]
    fn harmless_variants_are_tolerated() {
        for line in [
            "Co-authored-by: noreply@anthropic.com",
            "co-authored-by: Claude <NoReply@Anthropic.com>",
            "Co-Authored-By:Claude <noreply@anthropic.com>",
            "Co-Authored-By :  Claude   < noreply@anthropic.com >",
            "CO-AUTHORED-BY: Claude noreply@anthropic.com",
        ] {
            assert_eq!(
                message_rules(&format!("Fix\n\n{line}\n")),
                want(&["claude-co-author"]),
                "{line}"
            );
        }
        for line in [
            "Generated with Claude Code",
            "🤖 Generated with [Claude Code](https://claude.ai/code)",
            "generated with claude code",
            "  * Generated with [Claude Code](https://claude.ai/code)",
        ] {
            assert_eq!(
                message_rules(&format!("Fix\n\nBody.\n\n{line}\n")),
                want(&["claude-code-body"]),
                "{line}"
            );
        }
    }

    #[test]
    fn names_and_prose_are_not_agents() {
        for message in [
            // A person called Claude, or Gemini, co-authoring.
            "Paint\n\nCo-authored-by: Claude Monet <claude@monet.fr>\n",
            "Fix\n\nCo-authored-by: Gemini Jones <gemini.jones@example.org>\n",
            "Fix\n\nCo-authored-by: Claude\n",
            "Fix\n\nSigned-off-by: Claude Monet <claude@monet.fr>\n",
            // Talking about agents.
            "Fix the Claude Code plugin\n\nThe plugin crashed when Claude Code was not installed.\n",
            "Update aider/coders/\n\naider: the coder classes moved.\n",
            "docs: explain Co-authored-by\n\nAgents add a line like\n    Co-Authored-By: Claude <noreply@anthropic.com>\nwhich we now strip.\n",
            "Strip the Generated with [Claude Code] footer\n\nWe no longer add \"Generated with [Claude Code]\" to messages.\n",
            "Test\n\nGenerated with care.\nGenerated with cargo-dist\nMade with love\n",
            "Track sessions\n\nDevin Session: see the docs\nAmp-Thread-ID: none\n",
            "Fix\n\nGenerated with Claude Codex-like tools\n",
            // Conventions with human or non-AI values.
            "Fix\n\nAssisted-by: Jay Satiro\nAssisted-by: Daniel Stenberg <daniel@haxx.se>\n",
            "Fix\n\nGenerated-by: dist-git\nAI-assisted: no\n",
            "Fix\n\nAssisted-by: Claude Monet <claude@monet.fr>\n",
            // A given name followed by a surname, without an address, is a person too.
            "Fix\n\nAssisted-by: Claude Dupont\nAssisted-by: Gemini Okafor\nAssisted-by: Devin O'Brien\n",
            "Fix\n\nAssisted-by: Cursor Lee, Jules Verne-Dupont\nGenerated-by: Amp Team\n",
        ] {
            assert_eq!(message_rules(message), want(&[]), "{message:?}");
        }
        // Names alone never identify an agent.
        let c = commit(
            ("Claude", "claude@monet.fr"),
            ("Copilot", "copilot@example.com"),
            "Fix\n",
        );
        assert!(rules_for(&c, &known()).is_empty());
    }

    #[test]
    fn marks_outside_the_trailer_block() {
        // A metadata block after the co-author line pushes it out of the trailer block.
        let amp = "Fix\n\nCo-authored-by: Amp <amp@ampcode.com>\n\nExecuted-By: ci\nAmp-Thread-ID: https://ampcode.com/threads/T-1234\n";
        assert_eq!(
            message_rules(amp),
            want(&["amp-session", "co-author-in-body"])
        );
        let m = matches_for(&commit(HUMAN, HUMAN, amp), &known());
        let by = |id: &str| {
            m.iter()
                .find(|m| m.rule == format!("known-agents:{id}"))
                .unwrap()
        };
        assert_eq!(by("co-author-in-body").location, Location::Body);
        assert_eq!(by("amp-session").location, Location::TrailerBlock);
        assert!(
            by("co-author-in-body").evidence.contains("(Amp)"),
            "{:?}",
            by("co-author-in-body")
        );
        // GitHub's squash merge: each commit's message as a bullet, its trailers below.
        let squash = "Add parser (#42)\n\n* Add parser\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n\n* fix tests\n\n---------\n\nCo-authored-by: Bob <bob@example.com>\n";
        assert_eq!(message_rules(squash), want(&["co-author-in-body"]));
        for bullet in ["* ", "- ", "> ", "1. ", "  - ", "• "] {
            let msg = format!("Add parser (#42)\n\n* Add parser\n{bullet}Co-Authored-By: Claude <noreply@anthropic.com>\n\n---------\n\nCo-authored-by: Bob <bob@example.com>\n");
            assert_eq!(
                message_rules(&msg),
                want(&["squash-co-author"]),
                "{bullet:?}"
            );
        }
        // Bullets inside the last paragraph are still not trailers to git.
        assert_eq!(
            message_rules("Squash\n\n- Co-Authored-By: Copilot <copilot@github.com>\n"),
            want(&["squash-co-author"])
        );
        // The kernel's rule: no Signed-off-by from an agent.
        assert_eq!(
            message_rules("Fix\n\nSigned-off-by: Claude <noreply@anthropic.com>\n"),
            want(&["agent-signed-off-by"])
        );
    }

    #[test]
    fn bot_emails_need_a_numeric_id_or_none() {
        let d = Detector::new(&known());
        let rules = |email: &str| {
            let c = commit(("x", email), ("Ada", "ada@example.com"), "Fix\n");
            let t = parse_block(&c.message, &TrailerConfig::default());
            d.detect(&c, &t)
                .into_iter()
                .map(|m| m.rule)
                .collect::<Vec<_>>()
        };
        for ok in [
            "158243242+devin-ai-integration[bot]@users.noreply.github.com",
            "158243242+Devin-AI-Integration[bot]@Users.Noreply.GitHub.com",
            "devin-ai-integration[bot]@users.noreply.github.com",
        ] {
            assert_eq!(rules(ok), vec!["known-agents:devin-identity"], "{ok}");
        }
        assert!(rules("+devin-ai-integration[bot]@users.noreply.github.com").is_empty());
        assert!(rules("12x+devin-ai-integration[bot]@users.noreply.github.com").is_empty());
        assert!(rules("1+devin-ai-integration[bot]@users.noreply.github.com.evil").is_empty());
        assert!(rules("1+devin-ai-integration[bot]-evil@users.noreply.github.com").is_empty());
    }

    #[test]
    fn evidence_names_the_line_and_where_it_sat() {
        let c = commit(
            ("Ada", "a@x"),
            ("Ada (aider)", "a@x"),
            "Fix\n\nCo-Authored-By: Claude <noreply@anthropic.com>\n",
        );
        let m = matches_for(&c, &known());
        assert!(m.iter().any(|m| m.evidence
            == "trailer \"Co-Authored-By: Claude <noreply@anthropic.com>\""
            && m.location == Location::TrailerBlock));
        assert!(m
            .iter()
            .any(|m| m.evidence == "committer name \"Ada (aider)\""
                && m.location == Location::Identity));
        let c = commit(HUMAN, HUMAN, "aider: add tests\n");
        let m = matches_for(&c, &known());
        assert_eq!(m[0].location, Location::Subject);
        assert_eq!(m[0].rule, "known-agents:aider-subject");
        let json = serde_json::to_value(&m[0]).unwrap();
        assert_eq!(json["location"], "subject");
    }

    #[test]
    fn policy_message_rules_say_where_they_matched() {
        let d = Detect {
            presets: vec![],
            rules: vec![UserRule {
                id: "policy:x".into(),
                matcher: Matcher::Message(Regex::new("(?m)^X-Agent:").unwrap()),
            }],
            ..Detect::known_agents()
        };
        let at = |msg: &str| matches_for(&commit(HUMAN, HUMAN, msg), &d)[0].location;
        assert_eq!(at("X-Agent: a\n"), Location::Subject);
        assert_eq!(at("S\n\nX-Agent: a\nprose\n\nOk: 1\n"), Location::Body);
        assert_eq!(at("S\n\nX-Agent: a\n"), Location::TrailerBlock);
    }

    #[test]
    fn all_commits_counts_every_commit() {
        let d = Detect {
            presets: vec![],
            require: Require::AllCommits,
            ..Detect::known_agents()
        };
        let c = commit(("Ada", "a@x"), ("Ada", "a@x"), "Plain\n");
        assert_eq!(rules_for(&c, &d), vec![RULE_ALL_COMMITS.to_string()]);
    }

    #[test]
    fn actions_trigger_on_their_rules_and_check_trailers() {
        let m = |rule: &str| Match {
            rule: rule.into(),
            evidence: String::new(),
            location: Location::TrailerBlock,
        };
        let t = |k: &str, v: &str| Trailer {
            key: k.into(),
            value: v.into(),
        };
        let assisted = Action {
            id: "a".into(),
            rules: vec!["known-agents:*".into()],
            refs: vec![],
            effect: Effect::RequireTrailer {
                key: "Assisted-by".into(),
                value: Some(Regex::new(r"^\S+:\S+").unwrap()),
                example: "Assisted-by: Claude:claude-opus-4-5".into(),
            },
            message: None,
        };
        let claude = [m("known-agents:claude-co-author")];
        assert_eq!(
            assisted.check(&claude, &[]),
            Some(Violation::TrailerMissing)
        );
        assert_eq!(
            assisted.check(&claude, &[t("assisted-by", "Claude")]),
            Some(Violation::TrailerMalformed(vec!["Claude".into()]))
        );
        assert_eq!(
            assisted.check(&claude, &[t("Assisted-by", "Claude:opus-4")]),
            None
        );
        assert_eq!(assisted.check(&[m("policy:x")], &[]), None);
        assert_eq!(assisted.check(&[m(RULE_ALL_COMMITS)], &[]), None);
        let refuse = Action {
            rules: vec!["known-agents:agent-signed-off-by".into()],
            refs: vec![RefPattern::new("refs/heads/release/*").unwrap()],
            effect: Effect::Refuse,
            ..assisted
        };
        assert_eq!(
            refuse.check(&[m("known-agents:agent-signed-off-by")], &[]),
            Some(Violation::Refused)
        );
        assert_eq!(refuse.check(&claude, &[]), None);
        assert!(
            refuse.applies_to_ref("refs/heads/release/1")
                && !refuse.applies_to_ref("refs/heads/main")
        );
        assert!(rule_pattern_matches("*", "git-ai:note"));
    }
}
