//! Commit-message trailers parsed exactly as git's `%(trailers)` does (trailer.c), so that what
//! agentgate calls a trailer is what every git tool calls a trailer.
//!
//! This is a line-for-line port of the parts of git 2.47 that `git log
//! --format='%(trailers:only,unfold)'` runs: `skip_blank_lines` (pretty.c), `find_end_of_log_message`
//! with `no_divider = 1`, `ignored_log_message_bytes` (commit.c), `wt_status_locate_end`
//! (wt-status.c), `find_trailer_block_start`, `trailer_info_get`, `parse_trailers`,
//! `parse_trailer` and `unfold_value` (trailer.c). It works on bytes with git's own ASCII-only
//! `isspace`/`isalnum`, because Unicode-aware helpers (`str::trim`, `char::is_alphanumeric`)
//! disagree with git on `\x0b`, `\x0c`, non-breaking spaces and non-ASCII letters, and an
//! attacker who can make agentgate and git disagree can hide a trailer from one of them.
//!
//! Every step is linear in the message length (times the number of configured trailer aliases);
//! there is no recursion and no indexing that can go out of bounds.

/// The lines git itself writes, which make a mixed block count as trailers (trailer.c
/// `git_generated_prefixes`). Matched case-sensitively and including the space.
const GIT_GENERATED_PREFIXES: [&[u8]; 2] = [b"Signed-off-by: ", b"(cherry picked from commit "];

/// wt-status.c `cut_line`; the scissors line is `<comment> ` followed by this.
const CUT_LINE: &[u8] = b"------------------------ >8 ------------------------\n";

/// A `trailer.<name>.*` section of git config (trailer.c `conf_info`): trailers whose token is a
/// case-insensitive prefix of `name` or `key` count as recognized for the 25% rule, and git prints
/// them with `key` (when set) as their token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailerAlias {
    /// The `<name>` in `trailer.<name>.key`.
    pub name: String,
    /// The value of `trailer.<name>.key`, if set.
    pub key: Option<String>,
}

/// How the repository's git config changes trailer parsing (`trailer.separators`,
/// `trailer.<alias>.key`, `core.commentChar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailerConfig {
    /// Characters (bytes) that separate key and value; git's default is ":".
    pub separators: String,
    /// Keys configured with `trailer.<alias>.key` or `trailer.<alias>.*` (they count as
    /// "recognized" for the 25% rule). `from_entries` fills this with every alias name and
    /// key; entries here that are not in `aliases` behave as aliases without a `key`.
    pub configured_keys: Vec<String>,
    /// `core.commentString` / `core.commentChar`; default "#". An empty string (which git
    /// rejects) is treated as "#".
    pub comment: String,
    /// The `trailer.<name>` sections in config order, consulted before `configured_keys`.
    pub aliases: Vec<TrailerAlias>,
}

impl Default for TrailerConfig {
    fn default() -> Self {
        TrailerConfig {
            separators: ":".into(),
            configured_keys: Vec::new(),
            comment: "#".into(),
            aliases: Vec::new(),
        }
    }
}

/// The variable names that make git create a `trailer.<name>` item (trailer.c
/// `trailer_config_items`); any other `trailer.<name>.<var>` is ignored by git, so it is here.
const ALIAS_VARIABLES: [&str; 6] = ["key", "command", "cmd", "where", "ifexists", "ifmissing"];

impl TrailerConfig {
    /// Reads the settings git's `%(trailers)` honours from a repository's configuration
    /// entries ([`agentgate_git::Repo::config_entries`]), in config order, last value winning
    /// as in git: `trailer.separators`, `trailer.<name>.{key,command,cmd,where,ifexists,
    /// ifmissing}` and `core.commentChar`/`core.commentString` (one variable for git; `auto`
    /// leaves the previous value, which is what git 2.47 does outside `git commit`).
    pub fn from_config(entries: &[agentgate_git::ConfigEntry]) -> Self {
        Self::from_entries(entries.iter().map(|(k, v)| {
            (
                k.clone(),
                v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
            )
        }))
    }

    /// From config entries in config order (`git config --list`'s `name`/`value` pairs; `None`
    /// for a variable without a value), for repositories read through the `git` command.
    pub fn from_entries(entries: impl IntoIterator<Item = (String, Option<String>)>) -> Self {
        let mut out = TrailerConfig::default();
        for (name, value) in entries {
            out.apply_config_entry(&name, value.as_deref());
        }
        out.configured_keys = out
            .aliases
            .iter()
            .flat_map(|a| std::iter::once(a.name.clone()).chain(a.key.clone()))
            .collect();
        out
    }

    /// One config entry, as git's `git_trailer_default_config`, `git_trailer_config` and
    /// `git_default_core_config` see it. `name` is normalized (section and variable lowercase).
    fn apply_config_entry(&mut self, name: &str, value: Option<&str>) {
        let lower = name.to_ascii_lowercase();
        if lower == "core.commentchar" || lower == "core.commentstring" {
            // git errors out on a missing, empty or multi-line value; keep the previous one.
            if let Some(v) = value {
                if !v.eq_ignore_ascii_case("auto") && !v.is_empty() && !v.contains('\n') {
                    self.comment = v.to_string();
                }
            }
            return;
        }
        let Some(item) = name.strip_prefix("trailer.") else {
            return;
        };
        let Some((alias, variable)) = item.rsplit_once('.') else {
            if item == "separators" {
                if let Some(v) = value {
                    self.separators = v.to_string();
                }
            }
            return;
        };
        if !ALIAS_VARIABLES.contains(&variable) {
            return;
        }
        let idx = match self
            .aliases
            .iter()
            .position(|a| a.name.eq_ignore_ascii_case(alias))
        {
            Some(i) => i,
            None => {
                self.aliases.push(TrailerAlias {
                    name: alias.to_string(),
                    key: None,
                });
                self.aliases.len() - 1
            }
        };
        if variable == "key" {
            if let (Some(v), Some(alias)) = (value, self.aliases.get_mut(idx)) {
                alias.key = Some(v.to_string());
            }
        }
    }
}

/// One trailer after unfolding: key and value trimmed, as `%(trailers:unfold,only)` prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trailer {
    pub key: String,
    pub value: String,
}

/// The trailers of a commit message, in order, exactly as `git log
/// --format='%(trailers:only,unfold)'` prints them (git 2.47).
///
/// `message` is the commit message as stored (everything after the header's blank line);
/// leading blank lines are skipped as git does, and a NUL ends the message as it does for git.
pub fn parse(message: &str, cfg: &TrailerConfig) -> Vec<Trailer> {
    parse_block(message, cfg).trailers
}

/// A message's trailers and where git's trailer block lies in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrailerBlock {
    /// What [`parse`] returns.
    pub trailers: Vec<Trailer>,
    /// The block's byte range in the message, whole lines (empty when the last paragraph is
    /// not a trailer block). Detection tells by it whether a line it matched is one git reads
    /// as a trailer or prose of the subject and body.
    pub block: std::ops::Range<usize>,
}

impl TrailerBlock {
    /// Does the line starting at byte `offset` of the message lie in the trailer block?
    pub fn contains(&self, offset: usize) -> bool {
        self.block.contains(&offset)
    }
}

/// [`parse`], with the trailer block's place in the message.
pub fn parse_block(message: &str, cfg: &TrailerConfig) -> TrailerBlock {
    let bytes = message.as_bytes();
    let bytes = match bytes.iter().position(|&b| b == 0) {
        Some(nul) => head(bytes, nul),
        None => bytes,
    };
    let ctx = Ctx::new(cfg);
    let skipped = skip_blank_lines(bytes);
    let buf = from(bytes, skipped);

    let end = find_end_of_log_message(&ctx, buf);
    let start = find_trailer_block_start(&ctx, buf, end);
    let mut out = Vec::new();
    for (from, to) in trailer_entries(&ctx, buf, start, end) {
        let entry = range(buf, from, to);
        if entry.starts_with(ctx.comment) {
            continue;
        }
        let Some(sep) = find_separator(entry, ctx.separators).filter(|&p| p >= 1) else {
            continue;
        };
        let tok = trim(head(entry, sep));
        let val = unfold_value(trim(self::from(entry, sep + 1)));
        let key = match ctx.alias_for_token(tok) {
            Some(Alias { key: Some(k), .. }) => k.to_string(),
            _ => String::from_utf8_lossy(tok).into_owned(),
        };
        out.push(Trailer {
            key,
            value: String::from_utf8_lossy(&val).into_owned(),
        });
    }
    let block = if start < end {
        skipped + start..skipped + end
    } else {
        0..0
    };
    TrailerBlock {
        trailers: out,
        block,
    }
}

/// The config as byte slices, aliases flattened in lookup order.
struct Ctx<'a> {
    separators: &'a [u8],
    comment: &'a [u8],
    aliases: Vec<Alias<'a>>,
}

struct Alias<'a> {
    name: &'a [u8],
    key: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    fn new(cfg: &'a TrailerConfig) -> Self {
        let comment = if cfg.comment.is_empty() {
            "#"
        } else {
            cfg.comment.as_str()
        };
        let aliases = cfg
            .aliases
            .iter()
            .map(|a| Alias {
                name: a.name.as_bytes(),
                key: a.key.as_deref(),
            })
            .chain(cfg.configured_keys.iter().map(|k| Alias {
                name: k.as_bytes(),
                key: None,
            }))
            .collect();
        Ctx {
            separators: cfg.separators.as_bytes(),
            comment: comment.as_bytes(),
            aliases,
        }
    }

    /// trailer.c `token_matches_item`: `text`'s first `len` bytes are a case-insensitive prefix
    /// of the alias name or key (so with `trailer.foo.key=Reviewed-by`, `Rev:` is recognized).
    fn matches(alias: &Alias<'_>, text: &[u8], len: usize) -> bool {
        strncasecmp_eq(text, alias.name, len)
            || alias
                .key
                .is_some_and(|k| strncasecmp_eq(text, k.as_bytes(), len))
    }

    fn recognizes(&self, line: &[u8], sep_pos: usize) -> bool {
        self.aliases.iter().any(|a| Self::matches(a, line, sep_pos))
    }

    /// trailer.c `parse_trailer`'s config lookup: the first alias the trimmed token matches,
    /// compared without its trailing non-alphanumerics.
    fn alias_for_token(&self, tok: &[u8]) -> Option<&Alias<'a>> {
        let mut len = tok.len();
        while len > 0 && !byte(tok, len - 1).is_ascii_alphanumeric() {
            len -= 1;
        }
        self.aliases.iter().find(|a| Self::matches(a, tok, len))
    }
}

/// git's `isspace` (ctype.c): only space, tab, LF and CR; not `\v`, `\f` or anything non-ASCII.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `strncasecmp(a, b, n) == 0` for C strings (a missing byte is the terminating NUL).
fn strncasecmp_eq(a: &[u8], b: &[u8], n: usize) -> bool {
    for i in 0..n {
        let ca = a.get(i).copied().unwrap_or(0);
        let cb = b.get(i).copied().unwrap_or(0);
        if !ca.eq_ignore_ascii_case(&cb) {
            return false;
        }
        if ca == 0 {
            return true;
        }
    }
    true
}

/// strbuf_trim.
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_space(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |p| p + 1);
    range(s, start, end.max(start))
}

// Slicing as the C original indexes its buffers: every offset below is bounded by the loop
// that computed it, so these never clip anything; they only make a mistake a wrong answer the
// differential test catches instead of a panic in the hook.

/// `buf[i]`, or the NUL that ends a C buffer when `i` is past the end.
fn byte(buf: &[u8], i: usize) -> u8 {
    buf.get(i).copied().unwrap_or(0)
}

/// `buf[i..]` (empty past the end).
fn from(buf: &[u8], i: usize) -> &[u8] {
    buf.get(i..).unwrap_or_default()
}

/// `buf[..i]` (all of `buf` past the end).
fn head(buf: &[u8], i: usize) -> &[u8] {
    buf.get(..i).unwrap_or(buf)
}

/// `buf[a..b]` (empty when out of range).
fn range(buf: &[u8], a: usize, b: usize) -> &[u8] {
    buf.get(a..b).unwrap_or_default()
}

/// Index just past the next '\n' at or after `i` (or the end).
fn next_line(buf: &[u8], i: usize) -> usize {
    match buf
        .get(i..)
        .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
    {
        Some(p) => i + p + 1,
        None => buf.len(),
    }
}

/// trailer.c `is_blank_line`: only whitespace up to the next '\n' (or the end).
fn is_blank_line(buf: &[u8], i: usize) -> bool {
    buf.get(i..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| b != b'\n')
        .all(|&b| is_space(b))
}

/// pretty.c `skip_blank_lines`: `%(trailers)` is given the message from its subject on.
fn skip_blank_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    while i < buf.len() {
        let next = next_line(buf, i);
        if !range(buf, i, next).iter().all(|&b| is_space(b)) {
            break;
        }
        i = next;
    }
    i
}

/// trailer.c `last_line`: start of the last line of `buf[..len]`, a final '\n' belonging to it.
fn last_line(buf: &[u8], len: usize) -> Option<usize> {
    match len {
        0 => None,
        1 => Some(0),
        _ => Some(
            head(buf, len - 1)
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |p| p + 1),
        ),
    }
}

/// trailer.c `find_separator`: for `<token><optional blanks><separator>`, the separator's
/// offset (0 if the line starts with a separator). The token is `[A-Za-z0-9-]`.
fn find_separator(line: &[u8], separators: &[u8]) -> Option<usize> {
    let mut whitespace_found = false;
    for (i, &c) in line.iter().enumerate() {
        if c == 0 {
            break;
        }
        if separators.contains(&c) {
            return Some(i);
        }
        if !whitespace_found && (c.is_ascii_alphanumeric() || c == b'-') {
            continue;
        }
        if i != 0 && (c == b' ' || c == b'\t') {
            whitespace_found = true;
            continue;
        }
        break;
    }
    None
}

/// trailer.c `find_end_of_log_message` with `no_divider = 1`: `%(trailers)` does not treat
/// `---` as the start of a patch.
fn find_end_of_log_message(ctx: &Ctx<'_>, buf: &[u8]) -> usize {
    let len = buf.len();
    len - ignored_log_message_bytes(ctx, buf, len)
}

/// wt-status.c `wt_status_locate_end`: where the scissors line starts, or `len`.
fn wt_status_locate_end(ctx: &Ctx<'_>, buf: &[u8], len: usize) -> usize {
    let mut pattern = Vec::with_capacity(ctx.comment.len() + CUT_LINE.len() + 2);
    pattern.push(b'\n');
    pattern.extend_from_slice(ctx.comment);
    pattern.push(b' ');
    pattern.extend_from_slice(CUT_LINE);
    if buf.starts_with(from(&pattern, 1)) {
        return 0;
    }
    // The pattern starts with '\n', so only newline positions can start a match; the comment
    // string has no newline, so each comparison stops within one line: linear overall.
    let mut i = 0;
    while let Some(p) = from(buf, i).iter().position(|&b| b == b'\n') {
        let at = i + p;
        if from(buf, at).starts_with(&pattern) {
            return (at + 1).min(len);
        }
        i = at + 1;
    }
    len
}

/// commit.c `ignored_log_message_bytes`: trailing comments, empty lines, an old-style
/// `Conflicts:` block and everything from the scissors line on.
fn ignored_log_message_bytes(ctx: &Ctx<'_>, buf: &[u8], len: usize) -> usize {
    // As in git, 0 doubles as "no run of ignorable lines yet": a run starting at the very first
    // line is only recognized from its second line on.
    let mut boc = 0;
    let mut bol = 0;
    let mut in_old_conflicts_block = false;
    let cutoff = wt_status_locate_end(ctx, buf, len);

    while bol < cutoff {
        let next = next_line(head(buf, len), bol);
        if range(buf, bol, cutoff).starts_with(ctx.comment) || byte(buf, bol) == b'\n' {
            if boc == 0 {
                boc = bol;
            }
        } else if from(buf, bol).starts_with(b"Conflicts:\n") {
            in_old_conflicts_block = true;
            if boc == 0 {
                boc = bol;
            }
        } else if in_old_conflicts_block && byte(buf, bol) == b'\t' {
            // a pathname in the conflicts block
        } else if boc != 0 {
            boc = 0;
            in_old_conflicts_block = false;
        }
        bol = next;
    }
    if boc != 0 {
        len - boc
    } else {
        len - cutoff
    }
}

/// trailer.c `find_trailer_block_start`: the start of the trailer block in `buf[..len]`, or
/// `len` when the last paragraph is not one.
fn find_trailer_block_start(ctx: &Ctx<'_>, buf: &[u8], len: usize) -> usize {
    // The first paragraph is the title and cannot be trailers.
    let mut s = 0;
    while s < len {
        if range(buf, s, len).starts_with(ctx.comment) {
            s = next_line(buf, s);
            continue;
        }
        if is_blank_line(buf, s) {
            break;
        }
        s = next_line(buf, s);
    }
    let end_of_title = s;

    let mut only_spaces = true;
    let mut recognized_prefix = false;
    let mut trailer_lines = 0usize;
    let mut non_trailer_lines = 0usize;
    // Lines starting with whitespace: continuations if a trailer comes above them, else prose.
    let mut possible_continuation_lines = 0usize;

    let mut cur = last_line(buf, len);
    while let Some(l) = cur.filter(|&l| l >= end_of_title) {
        cur = last_line(buf, l);
        let bol = from(buf, l);
        if range(buf, l, len).starts_with(ctx.comment) {
            non_trailer_lines += possible_continuation_lines;
            possible_continuation_lines = 0;
            continue;
        }
        if is_blank_line(buf, l) {
            if only_spaces {
                continue;
            }
            non_trailer_lines += possible_continuation_lines;
            let accepted = (recognized_prefix && trailer_lines * 3 >= non_trailer_lines)
                || (trailer_lines > 0 && non_trailer_lines == 0);
            return if accepted { next_line(buf, l) } else { len };
        }
        only_spaces = false;

        if GIT_GENERATED_PREFIXES.iter().any(|p| bol.starts_with(p)) {
            trailer_lines += 1;
            possible_continuation_lines = 0;
            recognized_prefix = true;
            continue;
        }

        let first_is_space = is_space(byte(bol, 0));
        match find_separator(bol, ctx.separators) {
            Some(sep) if sep >= 1 && !first_is_space => {
                trailer_lines += 1;
                possible_continuation_lines = 0;
                if !recognized_prefix && ctx.recognizes(bol, sep) {
                    recognized_prefix = true;
                }
            }
            _ if first_is_space => possible_continuation_lines += 1,
            _ => {
                non_trailer_lines += 1 + possible_continuation_lines;
                possible_continuation_lines = 0;
            }
        }
    }
    len
}

/// trailer.c `trailer_info_get`: the block's lines with continuation lines joined to the
/// trailer above them. Joined lines are adjacent, so each entry is a range of `buf`.
fn trailer_entries(ctx: &Ctx<'_>, buf: &[u8], start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut entries: Vec<(usize, usize)> = Vec::new();
    let mut last_is_trailer = false;
    let mut i = start;
    while i < end {
        let next = next_line(head(buf, end), i);
        match entries.last_mut() {
            Some(last) if last_is_trailer && is_space(byte(buf, i)) => last.1 = next,
            _ => {
                entries.push((i, next));
                last_is_trailer =
                    find_separator(range(buf, i, next), ctx.separators).is_some_and(|p| p >= 1);
            }
        }
        i = next;
    }
    entries
}

/// trailer.c `unfold_value`: each newline and the whitespace after it become one space.
fn unfold_value(val: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(val.len());
    let mut rest = val.iter().copied().peekable();
    while let Some(c) = rest.next() {
        if c == b'\n' {
            while rest.next_if(|&b| is_space(b)).is_some() {}
            out.push(b' ');
        } else {
            out.push(c);
        }
    }
    trim(&out).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(key: &str, value: &str) -> Trailer {
        Trailer {
            key: key.into(),
            value: value.into(),
        }
    }

    fn cfg_with(f: impl FnOnce(&mut TrailerConfig)) -> TrailerConfig {
        let mut c = TrailerConfig::default();
        f(&mut c);
        c
    }

    #[test]
    fn table() {
        let claude = "Co-Authored-By: Claude <noreply@anthropic.com>";
        let cases: Vec<(&str, String, Vec<Trailer>)> = vec![
            ("empty", String::new(), vec![]),
            ("blank lines only", "\n\n \n".into(), vec![]),
            ("subject only", "Fix the thing".into(), vec![]),
            (
                "subject that looks like a trailer",
                "Key: value\n".into(),
                vec![],
            ),
            (
                "trailer-looking subject paragraph",
                "Key: v\nOther: w\n".into(),
                vec![],
            ),
            (
                "simple",
                "Subject\n\nBody.\n\nKey: value\n".into(),
                vec![t("Key", "value")],
            ),
            (
                "duplicate keys keep order",
                "S\n\nAcked-by: a\nAcked-by: b\nacked-by: a\n".into(),
                vec![t("Acked-by", "a"), t("Acked-by", "b"), t("acked-by", "a")],
            ),
            (
                "claude after body line: not a block",
                format!("S\n\nBody line\n{claude}\n"),
                vec![],
            ),
            (
                "claude after body line with sign-off",
                format!("S\n\nBody line\n{claude}\nSigned-off-by: A <a@b>\n"),
                vec![
                    t("Co-Authored-By", "Claude <noreply@anthropic.com>"),
                    t("Signed-off-by", "A <a@b>"),
                ],
            ),
            (
                "claude in own paragraph",
                format!("S\n\nBody line\n\n{claude}\n"),
                vec![t("Co-Authored-By", "Claude <noreply@anthropic.com>")],
            ),
            (
                "malformed: space before token",
                "S\n\n Key: v\n".into(),
                vec![],
            ),
            ("malformed: empty token", "S\n\n: v\n".into(), vec![]),
            (
                "malformed: space inside token",
                "S\n\nMy Key: v\n".into(),
                vec![],
            ),
            ("malformed: non-ASCII token", "S\n\nClé: v\n".into(), vec![]),
            (
                "blanks before separator",
                "S\n\nKey \t: v\n".into(),
                vec![t("Key", "v")],
            ),
            ("empty value", "S\n\nKey:\n".into(), vec![t("Key", "")]),
            ("dash token", "S\n\n-: v\n".into(), vec![t("-", "v")]),
            (
                "continuation",
                "S\n\nKey: a\n  b\n\tc\nNext: d\n".into(),
                vec![t("Key", "a b c"), t("Next", "d")],
            ),
            (
                "divider is not special for %(trailers)",
                "S\n\nA: b\n---\n\nKey: v\n".into(),
                vec![t("Key", "v")],
            ),
            (
                "trailing comments, blanks, conflicts",
                "S\n\nKey: v\n\n# comment\nConflicts:\n\ta.c\n\n".into(),
                vec![t("Key", "v")],
            ),
            (
                "comment inside block",
                "S\n\nKey: v\n# note\nOther: w\n".into(),
                vec![t("Key", "v"), t("Other", "w")],
            ),
            (
                "scissors",
                "S\n\nKey: v\n# ------------------------ >8 ------------------------\nX: y\n"
                    .into(),
                vec![t("Key", "v")],
            ),
            ("crlf", "S\r\n\r\nKey: v\r\n".into(), vec![t("Key", "v")]),
            (
                "crlf continuation",
                "S\n\nKey: a\r\n b\r\n".into(),
                vec![t("Key", "a\r b")],
            ),
            (
                "form feed is not space",
                "S\n\nKey: v\x0c\n".into(),
                vec![t("Key", "v\x0c")],
            ),
            (
                "nul ends the message",
                "S\n\nKey: a\0b\n".into(),
                vec![t("Key", "a")],
            ),
            (
                "7 prose lines and one sign-off",
                "S\n\n1\n2\n3\n4\n5\n6\n7\nSigned-off-by: x\n".into(),
                vec![],
            ),
            (
                "25% with sign-off",
                "S\n\n1\n2\n3\nSigned-off-by: x\n".into(),
                vec![t("Signed-off-by", "x")],
            ),
            (
                "cherry-pick line counts but is not printed",
                "S\n\nprose\nSee: y\n(cherry picked from commit abc)\n".into(),
                vec![t("See", "y")],
            ),
            (
                "leading blank lines",
                "\n \nS\n\nKey: v".into(),
                vec![t("Key", "v")],
            ),
        ];
        let cfg = TrailerConfig::default();
        for (name, msg, want) in cases {
            assert_eq!(parse(&msg, &cfg), want, "case {name:?}: {msg:?}");
        }
    }

    #[test]
    fn config_changes_the_rules() {
        let cases: Vec<(&str, TrailerConfig, &str, Vec<Trailer>)> = vec![
            (
                "configured key is recognized and rewritten by prefix",
                cfg_with(|c| {
                    c.aliases = vec![TrailerAlias {
                        name: "foo".into(),
                        key: Some("Reviewed-by".into()),
                    }]
                }),
                "S\n\np\np\np\nRev: x\n",
                vec![t("Reviewed-by", "x")],
            ),
            (
                "configured_keys alone recognize without rewriting",
                cfg_with(|c| c.configured_keys = vec!["Co-authored-by".into()]),
                "S\n\nBody line\nCo-Authored-By: Claude\n",
                vec![t("Co-Authored-By", "Claude")],
            ),
            (
                "hash separator",
                cfg_with(|c| c.separators = ":#".into()),
                "S\n\nBug #43\n",
                vec![t("Bug", "43")],
            ),
            (
                "comment string",
                cfg_with(|c| c.comment = ";".into()),
                "S\n\nKey: v\n; c\n",
                vec![t("Key", "v")],
            ),
            (
                "with another comment string, # is prose",
                cfg_with(|c| c.comment = ";".into()),
                "S\n\nKey: v\n# c\n",
                vec![],
            ),
        ];
        for (name, cfg, msg, want) in cases {
            assert_eq!(parse(msg, &cfg), want, "case {name:?}");
        }
    }

    #[test]
    fn config_entries_follow_git() {
        let mut c = TrailerConfig::default();
        for (k, v) in [
            ("core.commentchar", Some(";")),
            ("core.commentstring", Some("auto")),
            ("trailer.separators", Some(":#")),
            ("trailer.Foo.key", Some("Reviewed-by")),
            ("trailer.foo.key", Some("Acked-by")),
            ("trailer.bar.unknown", Some("1")),
            ("trailer.a.b.where", Some("end")),
        ] {
            c.apply_config_entry(k, v);
        }
        assert_eq!(c.comment, ";");
        assert_eq!(c.separators, ":#");
        assert_eq!(
            c.aliases,
            vec![
                TrailerAlias {
                    name: "Foo".into(),
                    key: Some("Acked-by".into())
                },
                TrailerAlias {
                    name: "a.b".into(),
                    key: None
                },
            ]
        );
    }

    #[test]
    fn config_read_in_git_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let global = dir.path().join("global");
        let local = dir.path().join("local");
        std::fs::write(
            &global,
            "[trailer]\n\tseparators = \":#\"\n[trailer \"foo\"]\n\tkey = Acked-by\n\
             [core]\n\tcommentChar = \";\"\n[trailer \"bar\"]\n\tunknown = 1\n",
        )
        .expect("write global");
        std::fs::write(
            &local,
            "[trailer]\n\tseparators = :\n[trailer \"Foo\"]\n\tkey = Reviewed-by\n\
             [trailer \"ack\"]\n\tifexists = add\n[core]\n\tcommentString = auto\n",
        )
        .expect("write local");
        // The global file's entries, then the repository's: the order git reads them in.
        let mut entries = agentgate_git::config_file_entries(&global).expect("global");
        entries.extend(agentgate_git::config_file_entries(&local).expect("local"));

        let got = TrailerConfig::from_config(&entries);
        assert_eq!(got.separators, ":");
        assert_eq!(got.comment, ";");
        assert_eq!(
            got.aliases,
            vec![
                TrailerAlias {
                    name: "foo".into(),
                    key: Some("Reviewed-by".into())
                },
                TrailerAlias {
                    name: "ack".into(),
                    key: None
                },
            ]
        );
        assert_eq!(got.configured_keys, vec!["foo", "Reviewed-by", "ack"]);
    }

    #[test]
    fn huge_inputs_are_linear() {
        let mut msg = String::from("Subject\n\n");
        for i in 0..10_000 {
            msg.push_str(&format!("Key-{i}: value {i}\n continued\n"));
        }
        let got = parse(&msg, &TrailerConfig::default());
        assert_eq!(got.len(), 10_000);
        assert_eq!(got[9_999], t("Key-9999", "value 9999 continued"));

        let prose = "word ".repeat(200_000) + "\n\n" + &"x\n".repeat(100_000);
        assert!(parse(&prose, &TrailerConfig::default()).is_empty());
        assert!(parse(&"\n".repeat(100_000), &TrailerConfig::default()).is_empty());
    }

    #[test]
    fn block_range_covers_the_trailer_lines() {
        let cfg = TrailerConfig::default();
        let msg = "\n\nSubject\n\nBody line\n\nKey: v\nOther: w\n# comment\n";
        let b = parse_block(msg, &cfg);
        assert_eq!(b.trailers, vec![t("Key", "v"), t("Other", "w")]);
        assert_eq!(&msg[b.block.clone()], "Key: v\nOther: w\n");
        assert!(b.contains(msg.find("Key").unwrap()) && !b.contains(msg.find("Body").unwrap()));
        // No block: an empty range, and the trailers are those of `parse`.
        for m in [
            "Subject\n\nBody\nKey: v\n",
            "Key: v\n",
            "",
            "S\n\nK: v\0\nL: w\n",
        ] {
            let b = parse_block(m, &cfg);
            assert_eq!(b.trailers, parse(m, &cfg));
            assert!(b.block.end <= m.len());
            if b.trailers.is_empty() {
                assert!(b.block.is_empty(), "{m:?}");
            }
        }
    }
}
