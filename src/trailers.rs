//! Commit-message trailers parsed exactly as git's `%(trailers)` does (trailer.c), so that what
//! agentgate calls a trailer is what every git tool calls a trailer.
//!
//! PLACEHOLDER: replaced by the git-exact parser (issue 2, item 3).

/// How the repository's git config changes trailer parsing (`trailer.separators`,
/// `trailer.<alias>.key`, `core.commentChar`).
#[derive(Debug, Clone)]
pub struct TrailerConfig {
    /// Characters that separate key and value; git's default is ":".
    pub separators: String,
    /// Keys configured with `trailer.<alias>.key` or `trailer.<alias>.*` (they count as
    /// "recognized" for the 25% rule).
    pub configured_keys: Vec<String>,
    /// `core.commentString` / `core.commentChar`; default "#".
    pub comment: String,
}

impl Default for TrailerConfig {
    fn default() -> Self {
        TrailerConfig {
            separators: ":".into(),
            configured_keys: Vec::new(),
            comment: "#".into(),
        }
    }
}

/// One trailer after unfolding: key and value trimmed, as `%(trailers:unfold,only)` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trailer {
    pub key: String,
    pub value: String,
}

/// The trailers of a commit message, in order.
pub fn parse(message: &str, _cfg: &TrailerConfig) -> Vec<Trailer> {
    let paragraphs: Vec<&str> = message.trim_end().split("\n\n").collect();
    if paragraphs.len() < 2 {
        return Vec::new();
    }
    let last = paragraphs[paragraphs.len() - 1];
    let mut out = Vec::new();
    for line in last.lines() {
        match line.split_once(':') {
            Some((k, v))
                if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
            {
                out.push(Trailer {
                    key: k.to_string(),
                    value: v.trim().to_string(),
                })
            }
            _ => return Vec::new(),
        }
    }
    out
}
