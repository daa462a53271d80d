//! Path patterns as `.gitattributes` reads them, so a policy's path rule means what the same
//! line would mean in a repository's attributes file: git's `wildmatch` (wildmatch.c) ported
//! line by line, and the attribute file's pattern rules on top (dir.c, `parse_path_pattern`,
//! `match_basename`, `match_pathname`): a pattern without a slash matches a file's name at any
//! depth, one with a slash matches the whole path from the repository's root (a leading slash
//! only anchors), `*` and `?` stop at slashes there, `**/`, `/**/` and `/**` cross directories.
//!
//! Matching is case-sensitive, as git's on a server (`core.ignoreCase` unset). A pattern ending
//! in `/` (which matches only directories in an attributes file, so no file at all) and a
//! negative pattern (which attributes files forbid) are refused when the policy loads.
//! tests/it/paths_differential.rs checks every answer against `git check-attr`.

/// wildmatch's outcomes (wildmatch.h). The two aborts let a `*` or `**` stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wm {
    Match,
    NoMatch,
    AbortAll,
    AbortToStarStar,
}

/// The byte at `i`, or 0 past the end: wildmatch.c walks NUL-terminated strings, and git paths
/// and the policy's patterns hold no NUL (patterns with one are refused when the policy loads).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// git's `is_glob_special` (ctype.c, GIT_GLOB_SPECIAL).
fn is_glob_special(c: u8) -> bool {
    matches!(c, b'*' | b'?' | b'[' | b'\\')
}

/// The character classes `[:name:]` as git's ctype (git-compat-util.h: ASCII only; `isblank`
/// and `isgraph` come from the C library, ASCII in every locale for single bytes).
fn in_class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c < 0x20 || c == 0x7f,
        b"digit" => c.is_ascii_digit(),
        b"graph" => (0x21..=0x7e).contains(&c),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => (0x20..=0x7e).contains(&c),
        b"punct" => c.is_ascii_punctuation(),
        // git's isspace: tab, line feed, carriage return and space (not \v, \f).
        b"space" => matches!(c, b'\t' | b'\n' | b'\r' | b' '),
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// wildmatch.c's `dowild`: `pat[p..]` against `text[t..]`. `pathname` is WM_PATHNAME (`*`, `?`
/// and classes do not match `/`; `**` does, next to slashes). No WM_CASEFOLD.
fn dowild(pat: &[u8], mut p: usize, text: &[u8], mut t: usize, pathname: bool) -> Wm {
    let pattern_start = p;
    loop {
        let mut p_ch = at(pat, p);
        if p_ch == 0 {
            break;
        }
        let mut t_ch = at(text, t);
        if t_ch == 0 && p_ch != b'*' {
            return Wm::AbortAll;
        }
        match p_ch {
            b'\\' => {
                // A literal match with the next character (the end of the pattern never
                // matches a text character).
                p += 1;
                p_ch = at(pat, p);
                if t_ch != p_ch {
                    return Wm::NoMatch;
                }
            }
            b'?' => {
                if pathname && t_ch == b'/' {
                    return Wm::NoMatch;
                }
            }
            b'*' => {
                let match_slash;
                p += 1;
                if at(pat, p) == b'*' {
                    // The character before the first `*`, if any.
                    let prev = (p >= pattern_start + 2).then(|| at(pat, p - 2));
                    while at(pat, p) == b'*' {
                        p += 1;
                    }
                    if !pathname {
                        match_slash = true;
                    } else if (prev.is_none() || prev == Some(b'/'))
                        && (at(pat, p) == 0
                            || at(pat, p) == b'/'
                            || (at(pat, p) == b'\\' && at(pat, p + 1) == b'/'))
                    {
                        // `foo/**/bar` matches `foo/bar` too: try `**/` as nothing first.
                        if at(pat, p) == b'/' && dowild(pat, p + 1, text, t, pathname) == Wm::Match
                        {
                            return Wm::Match;
                        }
                        match_slash = true;
                    } else {
                        match_slash = false;
                    }
                } else {
                    match_slash = !pathname;
                }
                if at(pat, p) == 0 {
                    // A trailing `**` matches everything, a trailing `*` only without slashes.
                    if !match_slash && text.get(t..).unwrap_or_default().contains(&b'/') {
                        return Wm::NoMatch;
                    }
                    return Wm::Match;
                } else if !match_slash && at(pat, p) == b'/' {
                    // One `*` followed by a slash matches the rest of this directory name; the
                    // slash is consumed below.
                    match text
                        .get(t..)
                        .unwrap_or_default()
                        .iter()
                        .position(|&b| b == b'/')
                    {
                        None => return Wm::NoMatch,
                        Some(i) => t += i,
                    }
                } else {
                    loop {
                        if t_ch == 0 {
                            break;
                        }
                        // Skip ahead to the next occurrence of a literal that follows the `*`
                        // (never past a slash the `*` cannot match).
                        if !is_glob_special(at(pat, p)) {
                            let want = at(pat, p);
                            loop {
                                t_ch = at(text, t);
                                if t_ch == 0 || !(match_slash || t_ch != b'/') || t_ch == want {
                                    break;
                                }
                                t += 1;
                            }
                            if t_ch != want {
                                return Wm::NoMatch;
                            }
                        }
                        let matched = dowild(pat, p, text, t, pathname);
                        if matched != Wm::NoMatch {
                            if !match_slash || matched != Wm::AbortToStarStar {
                                return matched;
                            }
                        } else if !match_slash && t_ch == b'/' {
                            return Wm::AbortToStarStar;
                        }
                        t += 1;
                        t_ch = at(text, t);
                    }
                    return Wm::AbortAll;
                }
            }
            b'[' => {
                p += 1;
                p_ch = at(pat, p);
                if p_ch == b'^' {
                    p_ch = b'!';
                }
                let negated = p_ch == b'!';
                if negated {
                    p += 1;
                    p_ch = at(pat, p);
                }
                let mut prev_ch = 0u8;
                let mut matched = false;
                loop {
                    if p_ch == 0 {
                        return Wm::AbortAll;
                    }
                    if p_ch == b'\\' {
                        p += 1;
                        p_ch = at(pat, p);
                        if p_ch == 0 {
                            return Wm::AbortAll;
                        }
                        if t_ch == p_ch {
                            matched = true;
                        }
                    } else if p_ch == b'-'
                        && prev_ch != 0
                        && at(pat, p + 1) != 0
                        && at(pat, p + 1) != b']'
                    {
                        p += 1;
                        p_ch = at(pat, p);
                        if p_ch == b'\\' {
                            p += 1;
                            p_ch = at(pat, p);
                            if p_ch == 0 {
                                return Wm::AbortAll;
                            }
                        }
                        if t_ch <= p_ch && t_ch >= prev_ch {
                            matched = true;
                        }
                        // So that the next character's `prev_ch` is none.
                        p_ch = 0;
                    } else if p_ch == b'[' && at(pat, p + 1) == b':' {
                        p += 2;
                        let s = p;
                        loop {
                            p_ch = at(pat, p);
                            if p_ch == 0 || p_ch == b']' {
                                break;
                            }
                            p += 1;
                        }
                        if p_ch == 0 {
                            return Wm::AbortAll;
                        }
                        if p < s + 1 || at(pat, p - 1) != b':' {
                            // No `:]`: a plain `[` in the set after all.
                            p = s - 2;
                            p_ch = b'[';
                            if t_ch == p_ch {
                                matched = true;
                            }
                        } else {
                            let name = pat.get(s..p - 1).unwrap_or_default();
                            match in_class(name, t_ch) {
                                Some(true) => matched = true,
                                Some(false) => {}
                                None => return Wm::AbortAll,
                            }
                            p_ch = 0;
                        }
                    } else if t_ch == p_ch {
                        matched = true;
                    }
                    prev_ch = p_ch;
                    p += 1;
                    p_ch = at(pat, p);
                    if p_ch == b']' {
                        break;
                    }
                }
                if matched == negated || (pathname && t_ch == b'/') {
                    return Wm::NoMatch;
                }
            }
            _ => {
                if t_ch != p_ch {
                    return Wm::NoMatch;
                }
            }
        }
        t += 1;
        p += 1;
    }
    if at(text, t) != 0 {
        Wm::NoMatch
    } else {
        Wm::Match
    }
}

/// git's `wildmatch(pattern, text, WM_PATHNAME or 0) == WM_MATCH`.
pub fn wildmatch(pattern: &[u8], text: &[u8], pathname: bool) -> bool {
    dowild(pattern, 0, text, 0, pathname) == Wm::Match
}

/// dir.c's `simple_length`: how many leading bytes hold no wildcard.
fn simple_length(p: &[u8]) -> usize {
    p.iter()
        .position(|&c| is_glob_special(c))
        .unwrap_or(p.len())
}

/// One pattern as an attributes file reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// As written in the policy.
    pub text: String,
    /// Without its leading `/` when it matches whole paths.
    pattern: Vec<u8>,
    /// No slash: matched against a file's name, at any depth (PATTERN_FLAG_NODIR).
    basename: bool,
    /// `*literal` (PATTERN_FLAG_ENDSWITH): a suffix compare.
    ends_with: bool,
    /// Leading bytes without wildcards (compared directly).
    prefix: usize,
}

impl PathPattern {
    /// Parse a pattern; an error says why the policy cannot use it.
    pub fn new(text: &str) -> Result<PathPattern, String> {
        if text.is_empty() {
            return Err("a path pattern is empty".into());
        }
        if text.contains('\0') {
            return Err(format!("path pattern {text:?} holds a NUL byte"));
        }
        if text.starts_with('!') {
            return Err(format!("path pattern {text:?} is negative: attributes files (and path rules) have no negative patterns; write \\! for a name that starts with !"));
        }
        if text.ends_with('/') {
            return Err(format!(
                "path pattern {text:?} ends in a slash, which matches only directories in an attributes file, never a file: write {:?} for everything under it",
                format!("{text}**")
            ));
        }
        let p = text.as_bytes();
        let basename = !p.contains(&b'/');
        let ends_with = p.first() == Some(&b'*')
            && simple_length(p.get(1..).unwrap_or_default()) == p.len() - 1;
        let mut prefix = simple_length(p);
        let mut pattern = p.to_vec();
        if !basename && pattern.first() == Some(&b'/') {
            pattern.remove(0);
            prefix = prefix.saturating_sub(1);
        }
        Ok(PathPattern {
            text: text.to_string(),
            pattern,
            basename,
            ends_with,
            prefix,
        })
    }

    /// Does the pattern match the file at `path` (relative to the repository's root, `/`
    /// between components)?
    pub fn matches(&self, path: &[u8]) -> bool {
        if self.basename {
            let name = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => path.get(i + 1..).unwrap_or_default(),
                None => path,
            };
            return self.match_basename(name);
        }
        self.match_pathname(path)
    }

    /// dir.c's `match_basename`.
    fn match_basename(&self, name: &[u8]) -> bool {
        let p = &self.pattern;
        if self.prefix == p.len() {
            return p.as_slice() == name;
        }
        if self.ends_with {
            let lit = p.get(1..).unwrap_or_default();
            return name.len() >= lit.len() && name.ends_with(lit);
        }
        wildmatch(p, name, false)
    }

    /// dir.c's `match_pathname` for the root's attributes file (no base directory).
    fn match_pathname(&self, path: &[u8]) -> bool {
        if path.is_empty() {
            return false;
        }
        let (mut pattern, mut name) = (self.pattern.as_slice(), path);
        if self.prefix > 0 {
            let Some(lit) = pattern.get(..self.prefix) else {
                return false;
            };
            if self.prefix > name.len() || name.get(..self.prefix) != Some(lit) {
                return false;
            }
            pattern = pattern.get(self.prefix..).unwrap_or_default();
            name = name.get(self.prefix..).unwrap_or_default();
            if pattern.is_empty() && name.is_empty() {
                return true;
            }
        }
        wildmatch(pattern, name, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases from git's t/t3070-wildmatch.sh (wildmatch with and without WM_PATHNAME).
    #[test]
    fn wildmatch_as_git_tests_it() {
        // (pattern, text, with WM_PATHNAME, without)
        let cases: &[(&str, &str, bool, bool)] = &[
            ("foo", "foo", true, true),
            ("bar", "foo", false, false),
            ("???", "foo", true, true),
            ("*", "foo", true, true),
            ("f*", "foo", true, true),
            ("*f", "foo", false, false),
            ("*foo*", "foo", true, true),
            ("*ob*a*r*", "foobar", true, true),
            ("\\*", "*", true, true),
            ("\\*", "foo", false, false),
            ("[[]", "[", true, true),
            ("[!]", "]", false, false),
            ("[]]", "]", true, true),
            ("[!]]", "aab", false, false),
            ("**", "foo/bar", true, true),
            ("*", "foo/bar", false, true),
            ("foo/*", "foo/bar", true, true),
            ("foo/**", "foo/bar/baz", true, true),
            ("foo/*", "foo/bar/baz", false, true),
            ("**/foo", "foo", true, false),
            ("**/foo", "a/b/foo", true, true),
            ("foo/**/bar", "foo/bar", true, false),
            ("foo/**/bar", "foo/a/b/bar", true, true),
            ("foo?bar", "foo/bar", false, true),
            ("foo[/]bar", "foo/bar", false, true),
            ("[[:alpha:]][[:digit:]][[:upper:]]", "a1B", true, true),
            ("[[:digit:][:upper:][:space:]]", "1", true, true),
            ("[[:xdigit:]]", "5", true, true),
            ("[[:nope:]]", "a", false, false),
            ("[a-c]", "b", true, true),
            ("[!a-c]", "b", false, false),
            (
                "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
                "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
                true,
                true,
            ),
            (
                "XXX/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
                "XXX/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1",
                true,
                true,
            ),
        ];
        for &(p, t, with, without) in cases {
            assert_eq!(
                wildmatch(p.as_bytes(), t.as_bytes(), true),
                with,
                "{p:?} {t:?} WM_PATHNAME"
            );
            assert_eq!(
                wildmatch(p.as_bytes(), t.as_bytes(), false),
                without,
                "{p:?} {t:?}"
            );
        }
    }

    #[test]
    fn attribute_patterns() {
        let m = |p: &str, path: &str| PathPattern::new(p).unwrap().matches(path.as_bytes());
        assert!(m("AGENTS.md", "AGENTS.md") && m("AGENTS.md", "sub/dir/AGENTS.md"));
        assert!(!m("AGENTS.md", "AGENTS.md.bak"));
        assert!(m("*.yml", ".github/workflows/ci.yml"));
        assert!(m(".github/workflows/**", ".github/workflows/ci.yml"));
        assert!(!m(".github/workflows/**", "x/.github/workflows/ci.yml"));
        assert!(m("/CODEOWNERS", "CODEOWNERS") && !m("/CODEOWNERS", "docs/CODEOWNERS"));
        assert!(!m(".github/workflows", ".github/workflows/ci.yml"));
        assert!(m("**/CODEOWNERS", "docs/CODEOWNERS") && m("**/CODEOWNERS", "CODEOWNERS"));
        assert!(m("src/*.rs", "src/main.rs") && !m("src/*.rs", "src/a/main.rs"));
        for bad in ["", "!x", "dir/", "a\0b"] {
            assert!(PathPattern::new(bad).is_err(), "{bad:?}");
        }
    }
}
