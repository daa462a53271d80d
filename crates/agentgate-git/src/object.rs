//! Reading commits and tags exactly as git reads them.
//!
//! The hook's verdict is only as good as its reading of the objects it judges. git reads a
//! commit in two places, and both are reproduced here byte for byte:
//!
//! - the walk (`parse_commit_buffer` in git's commit.c): the `tree` on the first line, then only
//!   the `parent` lines that follow it directly, then the committer date from the `author` and
//!   `committer` lines right after those; any other `parent` line is ignored;
//! - what `git log` shows (`repo_logmsg_reencode` and `parse_commit_header` in pretty.c): the
//!   whole buffer re-encoded from its `encoding` header to UTF-8 with iconv, then the *last*
//!   `author` and `committer` header lines and the message after the first empty line.
//!
//! A plain reader (libgit2, a script, a reviewer reading `git cat-file -p`) can see something
//! else in a commit whose headers are duplicated or out of order, and such objects pass
//! `git fsck --strict`. So `read_commit` accepts only the canonical layout, where every reading
//! agrees, and names the header otherwise ([`ObjectError::Malformed`]); the hook refuses such a
//! commit when it would enter a protected ref (`object-malformed`). The walk itself always
//! follows git's reading ([`parse_links`]), so reachability agrees with `git rev-list`.
//!
//! Messages in another encoding are decoded with the C library's iconv, the converter git
//! itself uses, so the text agentgate matches is the text `git log` shows; where iconv cannot
//! convert the bytes (an unknown encoding, bytes invalid in it), git would show the raw bytes,
//! and agentgate refuses rather than guess ([`ObjectError::EncodingUnsupported`]).

use crate::id::{ObjectId, ObjectKind};

/// Why a commit or tag cannot be read the way every reader would agree on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// git itself cannot parse it (its walk fails on it), or a plain reading differs from git's.
    #[error("{kind} {id}: `{header}` header: {reason}")]
    Malformed {
        kind: &'static str,
        id: String,
        /// The header that is duplicated, misplaced or malformed (`parent`, `tree`, ...).
        header: String,
        reason: String,
    },
    /// The message declares an encoding that iconv cannot convert to UTF-8 faithfully.
    #[error("commit {id}: cannot decode its message from encoding {encoding:?} as git shows it ({reason})")]
    EncodingUnsupported {
        id: String,
        encoding: String,
        reason: String,
    },
}

/// An author, committer or tagger as `git log` shows it (`%an`, `%ae`, `%at`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signature {
    pub name: String,
    pub email: String,
    /// Seconds since the epoch, as recorded (saturated; 0 where git shows no date: none, or no
    /// time zone after it).
    pub time: i64,
}

/// An object id in binary, for the walk's tables: no allocation, hashed as 20 or 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid {
    bytes: [u8; 32],
    len: u8,
}

/// Each byte's value as a hex digit, or 0xff: lower case only (git's spelling).
static HEX_LOWER: [u8; 256] = hex_table(false);
/// The same, either case (git's `get_oid_hex`).
static HEX_ANY_CASE: [u8; 256] = hex_table(true);

// Evaluated at compile time only: an index out of bounds would fail the build, not a push.
#[allow(clippy::indexing_slicing)]
const fn hex_table(any_case: bool) -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        if any_case {
            t[b'A' as usize + i] = 10 + i as u8;
        }
        i += 1;
    }
    t
}

impl Oid {
    /// From lower-case hex of 40 or 64 digits (git's spelling); None otherwise.
    pub fn from_hex(hex: &[u8]) -> Option<Oid> {
        Oid::decode_hex(hex, &HEX_LOWER)
    }

    /// git's `get_oid_hex`: hex of either case. Only the walk reads ids this way; what is
    /// judged must be lower case (`read_commit`).
    fn from_hex_any_case(hex: &[u8]) -> Option<Oid> {
        Oid::decode_hex(hex, &HEX_ANY_CASE)
    }

    /// Hex of 40 or 64 digits through a digit table (the walk decodes two or more ids per
    /// commit: a table lookup per digit measured faster than a `match` on its range).
    fn decode_hex(hex: &[u8], table: &[u8; 256]) -> Option<Oid> {
        if hex.len() != 40 && hex.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        let mut bad = 0u8;
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let &[hi, lo] = pair else { return None };
            let digit = |c: u8| table.get(usize::from(c)).copied().unwrap_or(0xff);
            let (hi, lo) = (digit(hi), digit(lo));
            bad |= hi | lo;
            *byte = hi << 4 | (lo & 0x0f);
        }
        (bad & 0xf0 == 0).then_some(Oid {
            bytes,
            len: (hex.len() / 2) as u8,
        })
    }

    pub fn from_bytes(raw: &[u8]) -> Option<Oid> {
        if raw.len() != 20 && raw.len() != 32 {
            return None;
        }
        let mut bytes = [0u8; 32];
        bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        Some(Oid {
            bytes,
            len: raw.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        // `len` is 20 or 32 by construction.
        self.bytes
            .get(..usize::from(self.len))
            .unwrap_or(&self.bytes)
    }

    pub fn to_object_id(self) -> ObjectId {
        // `hex::encode` collects chars one at a time: 4-5% of the 100,000-commit walk's CPU
        // (issue 18's profile, one call per judged commit and per parent). `encode_to_slice`
        // writes the bytes directly.
        let bytes = self.as_bytes();
        let mut buf = [0u8; 64];
        let hex = buf.get_mut(..bytes.len() * 2).unwrap_or_default();
        let text = match hex::encode_to_slice(bytes, hex) {
            Ok(()) => String::from_utf8_lossy(hex).into_owned(),
            Err(_) => hex::encode(bytes),
        };
        ObjectId::from_hex_unchecked(text)
    }

    pub fn from_object_id(id: &ObjectId) -> Oid {
        // ObjectId holds 40 or 64 lower-case hex digits by construction.
        Oid::from_hex(id.as_str().as_bytes()).unwrap_or(Oid {
            bytes: [0; 32],
            len: 20,
        })
    }
}

impl std::fmt::Debug for Oid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Oid({})", hex::encode(self.as_bytes()))
    }
}

/// What the walk needs from a commit: git's own reading (`parse_commit_buffer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    pub tree: Oid,
    pub parents: Vec<Oid>,
    /// The committer date git sorts the walk by: git's unsigned `timestamp_t`, so a negative
    /// date wraps around as it does in git (0 where git finds none).
    pub time: u64,
}

/// A commit read the way every reader agrees on: canonical headers, message decoded.
#[derive(Debug, Clone)]
pub struct Commit {
    pub id: ObjectId,
    pub tree: ObjectId,
    pub parents: Vec<ObjectId>,
    pub author: Signature,
    pub committer: Signature,
    /// The `encoding` header, when there is one.
    pub encoding: Option<String>,
    /// The message as `git log --format=%B` shows it (UTF-8).
    pub message: String,
}

impl Commit {
    /// The first line of the message.
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim_end()
    }
}

/// An annotated tag's header, read as git's `parse_tag_buffer` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub object: ObjectId,
    /// The `type` the tag declares for its object.
    pub kind: ObjectKind,
    pub name: String,
}

/// Headers whose every occurrence git's readers interpret; any copy or misplacement of them is
/// read differently by someone.
const COMMIT_STRUCTURAL: &[&[u8]] = &[b"tree", b"parent", b"author", b"committer", b"encoding"];
const TAG_STRUCTURAL: &[&[u8]] = &[b"object", b"type", b"tag", b"tagger"];

/// `parse_commit_buffer`: git's reading of a commit's links. Object ids are read in either case,
/// as git reads them (`read_commit` refuses upper case, which no git writes). Fails exactly where
/// git's fails (a first line that is not `tree <id>`, a malformed `parent` line among the first
/// ones, a `parent` line that ends the object).
pub fn parse_links(id: &ObjectId, raw: &[u8]) -> Result<Links, ObjectError> {
    parse_links_of(&Oid::from_object_id(id), raw)
}

/// [`parse_links`] for a binary id: what the walk calls for every commit it reads, so the id
/// is spelled in hex only when the commit is malformed.
pub fn parse_links_of(id: &Oid, raw: &[u8]) -> Result<Links, ObjectError> {
    let hexsz = 2 * id.as_bytes().len();
    let bad = |header: &str, reason: &str| malformed("commit", &id.to_object_id(), header, reason);
    let tree_len = hexsz + 5;
    if raw.len() <= tree_len + 1 || !raw.starts_with(b"tree ") || raw.get(tree_len) != Some(&b'\n')
    {
        return Err(bad("tree", "the first line is not `tree <id>`"));
    }
    let tree = raw
        .get(5..tree_len)
        .and_then(Oid::from_hex_any_case)
        .ok_or_else(|| bad("tree", "not an object id"))?;
    // What follows the line just read (git's `bufptr`).
    let mut rest = tail(raw, tree_len + 1);
    let parent_len = hexsz + 7;
    // Room for one: most commits have one parent, and the walk keeps every entering commit's
    // parents (a Vec's first push would reserve four: 100 extra bytes a commit).
    let mut parents = Vec::with_capacity(1);
    // git: `while (bufptr + parent_entry_len < tail && !memcmp(bufptr, "parent ", 7))`.
    while parent_len < rest.len() && rest.starts_with(b"parent ") {
        // git also wants a byte after the line feed (`tail <= bufptr + parent_entry_len + 1`).
        if rest.get(parent_len) != Some(&b'\n') || rest.len() <= parent_len + 1 {
            return Err(bad("parent", "not `parent <id>`"));
        }
        let p = rest
            .get(7..parent_len)
            .and_then(Oid::from_hex_any_case)
            .ok_or_else(|| bad("parent", "not an object id"))?;
        parents.push(p);
        rest = tail(rest, parent_len + 1);
    }
    Ok(Links {
        tree,
        parents,
        time: commit_date(rest),
    })
}

/// git's `parse_commit_date` (git 2.41 and later): the committer line must follow the author
/// line, which must follow the parents; the date is the number after the last `>` of the
/// committer line, read by `strtoumax` when it starts with a digit or `-`.
fn commit_date(rest: &[u8]) -> u64 {
    if !rest.starts_with(b"author") {
        return 0;
    }
    let Some(nl) = memchr::memchr(b'\n', rest) else {
        return 0;
    };
    let line = tail(rest, nl + 1);
    if line.len() <= 9 || !line.starts_with(b"committer") {
        return 0;
    }
    let Some(eol) = memchr::memchr(b'\n', line) else {
        return 0;
    };
    let line = head(line, eol);
    let Some(gt) = memchr::memrchr(b'>', line) else {
        return 0;
    };
    let mut date = tail(line, gt + 1);
    while let [b, rest @ ..] = date {
        if is_git_space(*b) {
            date = rest;
        } else {
            break;
        }
    }
    match date.first() {
        Some(b) if b.is_ascii_digit() || *b == b'-' => strtoumax(date),
        _ => 0,
    }
}

/// C's `strtoumax(s, NULL, 10)` on text that starts with a digit or `-`: the digits' value,
/// `u64::MAX` when it overflows, negated modulo 2^64 after a `-`, 0 when no digit follows.
fn strtoumax(s: &[u8]) -> u64 {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    let mut n: u64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
        {
            Some(v) => n = v,
            None => return u64::MAX,
        }
    }
    if neg {
        n.wrapping_neg()
    } else {
        n
    }
}

/// git's `isspace` (sane_ctype): space, tab, LF, CR; not VT or FF.
fn is_git_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `s` from `from` on; empty past its end. Every caller passes an index inside `s` (or at its
/// end): this is slicing that cannot panic, not a way to skip bytes.
fn tail(s: &[u8], from: usize) -> &[u8] {
    s.get(from..).unwrap_or_default()
}

/// `s` up to `to`; all of `s` past its end (callers pass an index inside `s`).
fn head(s: &[u8], to: usize) -> &[u8] {
    s.get(..to).unwrap_or(s)
}

fn malformed(kind: &'static str, id: &ObjectId, header: &str, reason: &str) -> ObjectError {
    ObjectError::Malformed {
        kind,
        id: id.to_string(),
        header: header.to_string(),
        reason: reason.to_string(),
    }
}

/// One header line: its key (up to the first space) and value; continuation lines (starting with
/// a space) belong to the header before them.
struct HeaderLine<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

/// Split an object into header lines and the message (after the first empty line; None when
/// no empty line ends the headers).
fn split_object(raw: &[u8]) -> (Vec<HeaderLine<'_>>, Option<&[u8]>) {
    let mut headers = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let eol = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let (line, after) = rest.split_at(eol);
        // Past the line feed (nothing left when the object ends without one).
        rest = tail(after, 1);
        if line.is_empty() {
            return (headers, Some(rest));
        }
        if line.first() != Some(&b' ') {
            let (key, value) = match line.iter().position(|&b| b == b' ') {
                Some(i) => (head(line, i), tail(line, i + 1)),
                None => (line, &[][..]),
            };
            headers.push(HeaderLine { key, value });
        }
    }
    (headers, None)
}

/// Read a commit for judging: canonical headers only, the message and identities decoded as
/// `git log` shows them.
pub fn read_commit(id: &ObjectId, raw: &[u8]) -> Result<Commit, ObjectError> {
    let links = parse_links(id, raw)?;
    read_commit_with(id, raw, &links)
}

/// [`read_commit`] when the caller has already read the commit's links with [`parse_links`]
/// (the walk has): `links` must be exactly what `parse_links(id, raw)` returns.
pub fn read_commit_with(id: &ObjectId, raw: &[u8], links: &Links) -> Result<Commit, ObjectError> {
    let bad = |header: &str, reason: &str| malformed("commit", id, header, reason);
    if memchr::memchr(0, raw).is_some() {
        return Err(bad(
            "message",
            "a NUL byte: git shows only the part before it",
        ));
    }
    let (headers, raw_message) = split_object(raw);
    // The canonical layout: tree, parents, author, committer, then anything but those (and at
    // most one encoding).
    let n_parents = links.parents.len();
    let expect = |i: usize| -> &'static [u8] {
        match i {
            0 => b"tree",
            i if i <= n_parents => b"parent",
            i if i == n_parents + 1 => b"author",
            i if i == n_parents + 2 => b"committer",
            _ => b"",
        }
    };
    let mut encoding: Option<&[u8]> = None;
    for (i, h) in headers.iter().enumerate() {
        let want = expect(i);
        if !want.is_empty() {
            if h.key != want {
                let (header, reason) = if COMMIT_STRUCTURAL.contains(&h.key) {
                    (
                        String::from_utf8_lossy(h.key).into_owned(),
                        "out of git's order",
                    )
                } else {
                    (String::from_utf8_lossy(want).into_owned(), "missing")
                };
                return Err(bad(&header, reason));
            }
            continue;
        }
        if h.key == b"encoding" {
            if encoding.is_some() {
                return Err(bad("encoding", "appears twice"));
            }
            encoding = Some(h.value);
        } else if COMMIT_STRUCTURAL.contains(&h.key) {
            let what = String::from_utf8_lossy(h.key);
            return Err(bad(
                &what,
                &format!(
                    "a second `{what}` header after the canonical ones (git reads one, other tools another)"
                ),
            ));
        }
    }
    if headers.len() < n_parents + 3 {
        return Err(bad(
            String::from_utf8_lossy(expect(headers.len())).as_ref(),
            "missing",
        ));
    }
    // The walk reads ids of either case; no git writes upper case, and not every reader takes it.
    for h in headers.iter().take(n_parents + 1) {
        if h.value.iter().any(u8::is_ascii_uppercase) {
            return Err(bad(
                &String::from_utf8_lossy(h.key),
                "an upper-case object id (git reads it, not every reader does)",
            ));
        }
    }
    // Without the empty line, `git log --format=%B` reads past the end of the object (what it
    // shows is whatever follows in memory) while other formats show no message.
    let Some(raw_message) = raw_message else {
        return Err(bad(
            "message",
            "no empty line ends the headers (git's own readings of the message disagree)",
        ));
    };

    // What `git log` shows: the whole buffer re-encoded to UTF-8, then parsed again.
    let decoded: Vec<u8>;
    let (shown_headers, message) = match encoding {
        Some(enc) if !is_utf8_label(enc) => {
            let label = String::from_utf8_lossy(enc).into_owned();
            decoded = reencode(raw, &label)
                .map_err(|reason| ObjectError::EncodingUnsupported {
                    id: id.to_string(),
                    encoding: label.clone(),
                    reason,
                })?
                .into_bytes();
            // git cuts its decoded copy at the first NUL, in places and not in others.
            if decoded.contains(&0) {
                return Err(bad(
                    "encoding",
                    "decoding yields a NUL byte (git reads only parts of what follows it)",
                ));
            }
            let (shown, message) = split_object(&decoded);
            match message {
                Some(message)
                    if shown.len() == headers.len()
                        && shown.iter().zip(&headers).all(|(a, b)| a.key == b.key) =>
                {
                    (shown, message)
                }
                _ => {
                    return Err(bad(
                        "encoding",
                        "decoding changes the header lines (git would read other headers)",
                    ))
                }
            }
        }
        _ => (headers, raw_message),
    };
    let ident = |key: &[u8]| -> Result<Signature, ObjectError> {
        // pretty.c keeps the last line with the key; the check above made it the only one.
        let line = shown_headers
            .iter()
            .rev()
            .find(|h| h.key == key)
            .map(|h| h.value)
            .unwrap_or_default();
        split_ident(line).ok_or_else(|| {
            bad(
                &String::from_utf8_lossy(key),
                "not `Name <email> date zone` (git shows it empty)",
            )
        })
    };
    Ok(Commit {
        id: id.clone(),
        tree: links.tree.to_object_id(),
        parents: links.parents.iter().map(|p| p.to_object_id()).collect(),
        author: ident(b"author")?,
        committer: ident(b"committer")?,
        encoding: encoding.map(|e| String::from_utf8_lossy(e).into_owned()),
        message: text(message),
    })
}

/// Bytes as text, invalid UTF-8 replaced (`String::from_utf8_lossy`), with the standard
/// library's faster check first: almost every message is valid UTF-8, and the lossy reader's
/// chunk-by-chunk check was 2% of the 100,000-commit walk's CPU (issue 18).
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// git's `split_ident_line`: the name up to the first `<` (trailing spaces trimmed), the email up
/// to the next `>`, the date after the last `>`. None where git's fails (it then shows nothing).
fn split_ident(line: &[u8]) -> Option<Signature> {
    let lt = line.iter().position(|&b| b == b'<')?;
    let name = head(line, lt);
    let name = head(
        name,
        name.iter()
            .rposition(|&b| !is_git_space(b))
            .map_or(0, |i| i + 1),
    );
    let after_lt = tail(line, lt + 1);
    let email = head(after_lt, after_lt.iter().position(|&b| b == b'>')?);
    let last_gt = line.iter().rposition(|&b| b == b'>')?;
    let mut date = tail(line, last_gt + 1);
    while let [b, rest @ ..] = date {
        if is_git_space(*b) {
            date = rest;
        } else {
            break;
        }
    }
    let digits = date.iter().take_while(|b| b.is_ascii_digit()).count();
    // git shows no date at all (`%at` is empty) unless a zone follows the digits.
    let (digits, mut zone) = date.split_at(digits);
    while let [b, rest @ ..] = zone {
        if is_git_space(*b) {
            zone = rest;
        } else {
            break;
        }
    }
    let dated = !digits.is_empty() && matches!(zone, [b'+' | b'-', d, ..] if d.is_ascii_digit());
    Some(Signature {
        name: text(name),
        email: text(email),
        time: if dated {
            digits.iter().fold(0i64, |n, d| {
                n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            })
        } else {
            0
        },
    })
}

/// git's `same_utf_encoding(label, "UTF-8")`: `utf`, an optional `-`, then `8`, any case.
fn is_utf8_label(label: &[u8]) -> bool {
    if !label
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"utf"))
    {
        return false;
    }
    let rest = tail(label, 3);
    let rest = rest.strip_prefix(b"-").unwrap_or(rest);
    rest == b"8"
}

/// git's `reencode_string_len(.., "UTF-8", label)`: iconv with the label as given, then with git's
/// fallback spelling. Any conversion error is reported (git would show the raw bytes instead).
fn reencode(raw: &[u8], label: &str) -> Result<String, String> {
    // iconv reads the NUL-terminated buffer git hands it; NULs were refused before this.
    let mut labels = vec![label.to_string()];
    if label.eq_ignore_ascii_case("latin-1") {
        labels.push("ISO-8859-1".to_string());
    }
    let mut last = String::from("unknown encoding");
    for l in &labels {
        // UTF-16/UTF-32 labels would make iconv read the ASCII headers as other characters;
        // git would do the same, and the header check above refuses the result.
        match iconv_native::decode(raw, l) {
            Ok(s) => return Ok(s),
            Err(iconv_native::ConvertError::UnknownConversion) => {
                last = "iconv does not know this encoding".into();
            }
            Err(e) => {
                last = format!("the bytes are not valid {l}: {e}");
                break;
            }
        }
    }
    Err(last)
}

/// Read an annotated tag as `parse_tag_buffer` does, refusing headers a plain reading would take
/// differently (a second `object` or `type`, a NUL byte).
pub fn read_tag(id: &ObjectId, raw: &[u8]) -> Result<Tag, ObjectError> {
    let hexsz = id.as_str().len();
    let bad = |header: &str, reason: &str| malformed("tag", id, header, reason);
    if raw.contains(&0) {
        return Err(bad("message", "a NUL byte"));
    }
    // git reads `object`, `type` and `tag` at fixed places: each at the start of the line after
    // the one before, ended by a line feed, in an object of at least `hexsz + 24` bytes.
    let line = |at: usize, key: &str| -> Result<(&[u8], usize), ObjectError> {
        let start = at + key.len() + 1;
        if !tail(raw, at).starts_with(key.as_bytes()) || raw.get(start - 1) != Some(&b' ') {
            return Err(bad(key, "missing or out of git's order"));
        }
        let value = tail(raw, start);
        let eol = memchr::memchr(b'\n', value).ok_or_else(|| bad(key, "no line feed ends it"))?;
        Ok((head(value, eol), start + eol + 1))
    };
    let (object, at) = line(0, "object")?;
    if object.len() != hexsz {
        return Err(bad("object", "not a full object id"));
    }
    let object = Oid::from_hex(object)
        .ok_or_else(|| bad("object", "not an object id"))?
        .to_object_id();
    let (kind, at) = line(at, "type")?;
    let kind = match kind {
        b"commit" => ObjectKind::Commit,
        b"tag" => ObjectKind::Tag,
        b"tree" => ObjectKind::Tree,
        b"blob" => ObjectKind::Blob,
        _ => return Err(bad("type", "not commit, tag, tree or blob")),
    };
    let (name, at) = line(at, "tag")?;
    if raw.len() < hexsz + 24 {
        return Err(bad("tag", "the tag is shorter than any git reads"));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let (headers, _) = split_object(tail(raw, at));
    for (i, h) in headers.iter().enumerate() {
        let allowed_tagger = i == 0 && h.key == b"tagger";
        if TAG_STRUCTURAL.contains(&h.key) && !allowed_tagger {
            let what = String::from_utf8_lossy(h.key);
            return Err(bad(
                &what,
                &format!("a second or misplaced `{what}` header"),
            ));
        }
    }
    Ok(Tag { object, kind, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    const P1: &str = "1111111111111111111111111111111111111111";
    const P2: &str = "2222222222222222222222222222222222222222";

    fn id() -> ObjectId {
        ObjectId::zero(20)
    }

    fn commit(headers: &str, message: &str) -> Vec<u8> {
        format!("{headers}\n{message}").into_bytes()
    }

    fn canonical(extra: &str) -> String {
        format!(
            "tree {T}\nparent {P1}\nauthor A U Thor <a@example.com> 1700000000 +0100\ncommitter C O Mitter <c@example.com> 1700000001 +0000\n{extra}"
        )
    }

    #[test]
    fn reads_canonical_commits() {
        let raw = commit(
            &canonical("gpgsig -----BEGIN PGP SIGNATURE-----\n \n parent 2222222222222222222222222222222222222222\n -----END PGP SIGNATURE-----\n"),
            "Subject\n\nBody\n",
        );
        let c = read_commit(&id(), &raw).unwrap();
        assert_eq!(c.tree.as_str(), T);
        assert_eq!(c.parents.len(), 1, "a continuation line is not a parent");
        assert_eq!(c.author.name, "A U Thor");
        assert_eq!(c.author.email, "a@example.com");
        assert_eq!(c.author.time, 1_700_000_000);
        assert_eq!(c.committer.name, "C O Mitter");
        assert_eq!(c.message, "Subject\n\nBody\n");
        assert_eq!(parse_links(&id(), &raw).unwrap().time, 1_700_000_001);
    }

    /// Table: headers that git reads differently from a plain reading, each named.
    #[test]
    fn non_canonical_headers_are_malformed_and_named() {
        let author = "author A <a@x> 1 +0000\n";
        let committer = "committer A <a@x> 1 +0000\n";
        let cases: Vec<(String, &str)> = vec![
            (
                format!("tree {T}\nparent {P1}\n{author}{committer}parent {P2}\n"),
                "parent",
            ),
            (
                format!("tree {T}\n{author}parent {P1}\n{committer}"),
                "parent",
            ),
            (format!("tree {T}\n{author}{committer}tree {T}\n"), "tree"),
            (format!("tree {T}\n{author}{author}{committer}"), "author"),
            (format!("tree {T}\n{author}{committer}{author}"), "author"),
            (
                format!("tree {T}\n{author}{committer}{committer}"),
                "committer",
            ),
            (
                format!("tree {T}\n{author}{committer}encoding UTF-8\nencoding UTF-7\n"),
                "encoding",
            ),
            (format!("tree {T}\n{committer}{author}"), "committer"),
            (format!("tree {T}\n{committer}"), "committer"),
            (format!("tree {T}\n{author}"), "committer"),
            (
                format!("tree {T}\n{author}x-extra y\n{committer}"),
                "committer",
            ),
            (format!("tree {T}\nauthor\n{committer}"), "author"),
        ];
        for (headers, header) in cases {
            let raw = commit(&headers, "msg\n");
            match read_commit(&id(), &raw) {
                Err(ObjectError::Malformed { header: h, .. }) => {
                    assert_eq!(h, header, "{headers}")
                }
                other => panic!("{headers:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn git_walk_reading_ignores_misplaced_parents() {
        let raw = commit(
            &format!("tree {T}\nparent {P1}\nauthor A <a@x> 5 +0000\ncommitter A <a@x> 7 +0000\nparent {P2}\n"),
            "x\n",
        );
        let links = parse_links(&id(), &raw).unwrap();
        assert_eq!(links.parents, vec![Oid::from_hex(P1.as_bytes()).unwrap()]);
        assert_eq!(links.time, 7);
        // git reads no date when the author line does not follow the parents.
        let raw = commit(
            &format!("tree {T}\nx y\nauthor A <a@x> 5 +0000\ncommitter A <a@x> 7 +0000\n"),
            "x\n",
        );
        assert_eq!(parse_links(&id(), &raw).unwrap().time, 0);
    }

    #[test]
    fn what_git_cannot_parse_is_malformed() {
        for raw in [
            b"".to_vec(),
            format!("tree {T}\r\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n\nx")
                .into_bytes(),
            format!("tree {}\nauthor A <a@x> 1 +0000\n", T.to_uppercase()).into_bytes(),
            format!("tree {T}\nparent {}\n", &P1[..39]).into_bytes(),
            format!("{}\n\nx", canonical(""))
                .replace("\n\nx", "\n\nx\0y")
                .into_bytes(),
        ] {
            assert!(
                matches!(read_commit(&id(), &raw), Err(ObjectError::Malformed { .. })),
                "{}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    /// Findings of tests/it/objects_differential.rs: git's walk reads ids of either case, wants a
    /// byte after the last parent line, and reads the commit date as an unsigned `strtoumax`
    /// only where it starts with a digit or `-`.
    #[test]
    fn walk_reading_follows_git_exactly() {
        let raw = commit(
            &format!(
                "tree {}\nparent {}\nauthor A <a@x> 5 +0000\ncommitter A <a@x> 7 +0000\n",
                T.to_uppercase(),
                P1
            ),
            "x\n",
        );
        let links = parse_links(&id(), &raw).unwrap();
        assert_eq!(links.tree, Oid::from_hex(T.as_bytes()).unwrap());
        match read_commit(&id(), &raw) {
            Err(ObjectError::Malformed { header, .. }) => assert_eq!(header, "tree"),
            other => panic!("{other:?}"),
        }
        let raw = format!("tree {T}\nparent {P1}\n").into_bytes();
        assert!(
            parse_links(&id(), &raw).is_err(),
            "a parent line that ends the object"
        );
        let date = |d: &str| {
            let raw = format!("tree {T}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> {d}\n\n");
            parse_links(&id(), raw.as_bytes()).unwrap().time
        };
        assert_eq!(date("7 +0000"), 7);
        assert_eq!(date("+7 +0000"), 0);
        assert_eq!(date("-7 +0000"), 7u64.wrapping_neg());
        assert_eq!(date("99999999999999999999999 +0000"), u64::MAX);
        assert_eq!(date("-18446744073709551615 +0000"), 1);
        assert_eq!(date("- 7 +0000"), 0);
    }

    #[test]
    fn what_git_log_reads_differently_is_malformed() {
        let headers = format!("tree {T}\nauthor A <a@x> 1 -0100\ncommitter A <a@x> 1 -0100\n");
        // No empty line after the headers: `%B` shows memory past the object.
        match read_commit(&id(), headers.as_bytes()) {
            Err(ObjectError::Malformed { header, .. }) => assert_eq!(header, "message"),
            other => panic!("{other:?}"),
        }
        // UTF-7 `+AAA-` decodes to a NUL, where git cuts what it shows.
        let raw = commit(&format!("{headers}encoding UTF-7\n"), "a +AAA- b\n");
        match read_commit(&id(), &raw) {
            Err(ObjectError::Malformed { header, .. }) => assert_eq!(header, "encoding"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn identity_dates_need_a_zone_as_in_git() {
        for (line, time) in [
            ("A <a@b> 17 +0100", 17),
            ("A <a@b> 17+0100", 17),
            ("A <a@b> 17", 0),
            ("A <a@b> 17 0100", 0),
            ("A <a@b> 17 +", 0),
            ("A <a@b> 17x -0100", 0),
            ("A <a@b> 99999999999999999999 +0000", i64::MAX),
        ] {
            assert_eq!(split_ident(line.as_bytes()).unwrap().time, time, "{line}");
        }
    }

    #[test]
    fn identities_as_git_splits_them() {
        let s = split_ident(b"Name  Surname \t<mail@x> 1700000000 -0100").unwrap();
        assert_eq!(
            (s.name.as_str(), s.email.as_str(), s.time),
            ("Name  Surname", "mail@x", 1_700_000_000)
        );
        let s = split_ident(b"<a@b>").unwrap();
        assert_eq!((s.name.as_str(), s.email.as_str(), s.time), ("", "a@b", 0));
        let s = split_ident(b"A <a@b> oops").unwrap();
        assert_eq!(s.time, 0);
        assert!(split_ident(b"no email").is_none());
        assert!(split_ident(b"A <unterminated").is_none());
    }

    #[test]
    fn utf8_labels_are_not_converted() {
        for l in ["UTF-8", "utf8", "Utf-8", "UTF8"] {
            assert!(is_utf8_label(l.as_bytes()), "{l}");
        }
        for l in ["UTF-7", "UTF-16", "latin1", "utf-88", "ut"] {
            assert!(!is_utf8_label(l.as_bytes()), "{l}");
        }
    }

    #[test]
    fn messages_are_decoded_as_git_shows_them() {
        // Latin-1 bytes: each char below U+0100 becomes one byte.
        let raw: Vec<u8> = format!(
            "tree {T}\nauthor Jos\u{e9} <j@x> 1 +0000\ncommitter J <j@x> 1 +0000\nencoding ISO-8859-1\n\nCaf\u{e9}\n"
        )
        .chars()
        .map(|c| c as u32 as u8)
        .collect();
        let c = read_commit(&id(), &raw).unwrap();
        assert_eq!(c.message, "Caf\u{e9}\n");
        assert_eq!(c.author.name, "Jos\u{e9}");

        let utf7 = commit(
            &format!(
                "tree {T}\nauthor A <a@x> 1 -0100\ncommitter A <a@x> 1 -0100\nencoding UTF-7\n"
            ),
            "x\n\nCo-authored-by: Claude +ADw-noreply+AEA-anthropic.com+AD4-\n",
        );
        let c = read_commit(&id(), &utf7).unwrap();
        assert!(
            c.message.contains("Claude <noreply@anthropic.com>"),
            "{}",
            c.message
        );

        let bogus = commit(
            &format!(
                "tree {T}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\nencoding X-NOPE\n"
            ),
            "x\n",
        );
        assert!(matches!(
            read_commit(&id(), &bogus),
            Err(ObjectError::EncodingUnsupported { .. })
        ));
        // Bytes invalid in the declared encoding (a lone lead byte at the end in Shift_JIS).
        let mut bad = commit(
            &format!(
                "tree {T}\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\nencoding Shift_JIS\n"
            ),
            "x",
        );
        bad.push(0x82);
        assert!(matches!(
            read_commit(&id(), &bad),
            Err(ObjectError::EncodingUnsupported { .. })
        ));
    }

    #[test]
    fn decoding_that_changes_headers_is_malformed() {
        // UTF-7 "+AAo-" is a newline: decoded, the author line would be split in two.
        let raw = commit(
            &format!("tree {T}\nauthor A <a@x> 1 -0100+AAo-committer B <b@x> 1 -0100\ncommitter A <a@x> 1 -0100\nencoding UTF-7\n"),
            "x\n",
        );
        match read_commit(&id(), &raw) {
            Err(ObjectError::Malformed { header, .. }) => assert_eq!(header, "encoding"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tags_read_as_git_reads_them() {
        let ok = format!("object {P1}\ntype commit\ntag v1\ntagger A <a@x> 1 +0000\n\nmsg\n");
        let t = read_tag(&id(), ok.as_bytes()).unwrap();
        assert_eq!(t.object.as_str(), P1);
        assert_eq!(t.kind, ObjectKind::Commit);
        assert_eq!(t.name, "v1");
        for (raw, header) in [
            (
                format!("object {P1}\ntype commit\ntag v1\nobject {P2}\n\n"),
                "object",
            ),
            (
                format!("object {P1}\ntype commit\ntag v1\ntagger A <a@x> 1 +0000\ntype tree\n\n"),
                "type",
            ),
            (format!("type commit\nobject {P1}\ntag v1\n\n"), "object"),
            (format!("object {P1}\ntype commit\n\n"), "tag"),
            (format!("object {P1}\ntype blobby\ntag v1\n\n"), "type"),
            (
                format!("object {P1}\ntype commit\ntag v1\nx y\ntagger A <a@x> 1 +0000\n\n"),
                "tagger",
            ),
            // What git's parse_tag_buffer cannot read at all.
            (format!("object {P1}\ntype tag\ntag \n"), "tag"),
            (
                format!("object {P1}\ntype commit\ntag\ntagger A <a@x> 1 +0000\n\n"),
                "tag",
            ),
            (
                format!(" x\nobject {P1}\ntype commit\ntag v1\n\n"),
                "object",
            ),
            (format!("object {P1}\n x\ntype commit\ntag v1\n\n"), "type"),
            (format!("object {P1}\ntype commit\ntag v1.0.0-long"), "tag"),
        ] {
            match read_tag(&id(), raw.as_bytes()) {
                Err(ObjectError::Malformed { header: h, .. }) => assert_eq!(h, header, "{raw}"),
                other => panic!("{raw:?}: {other:?}"),
            }
        }
    }
}
