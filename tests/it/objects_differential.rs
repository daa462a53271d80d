//! Differential test of the object reader (`agentgate_git::object`) against git itself.
//!
//! A seeded generator writes thousands of hostile raw commits and tags (headers duplicated,
//! missing or out of order, signature and mergetag blocks whose continuation lines read like
//! headers, CR, NUL, huge fields, odd identities and dates, many `encoding` labels with bodies
//! valid or not in them) into a SHA-1 and a SHA-256 repository with `git hash-object
//! --literally`, then reads every object back with git's own plumbing, in batches:
//!
//! - `git rev-list --no-walk --timestamp --parents --stdin`: the walk's reading
//!   (`parse_commit_buffer`: parents and the commit date), compared with `parse_links`;
//! - `git log --no-walk --stdin -z --format=%T %P %an %ae %at %cn %ce %ct %e %B`: what `git log`
//!   shows, compared field by field with `read_commit` wherever it accepts the commit;
//! - `git for-each-ref --format=%(objecttype) %(object) %(type) %(tag)` on a ref per tag
//!   (`parse_tag_buffer`), compared with `read_tag` wherever it accepts the tag.
//!
//! A batch git cannot read (it stops at the first object it cannot parse) is split in halves
//! until the objects git cannot parse are alone. The property: whatever `read_commit` and
//! `read_tag` accept, every field equals git's reading, and `parse_links` equals git's walk
//! for every object, including failing exactly where git fails. Run with `--nocapture` for the
//! counts; `AGENTGATE_OBJDIFF_SEED=<n>` and `AGENTGATE_OBJDIFF_SCALE=<n>` explore other and
//! larger corpora (CI runs the fixed seed at scale 1).

use crate::common::Env;
use agentgate_git::object::{parse_links, read_commit, read_tag, ObjectError};
use agentgate_git::ObjectId;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Instant;

const SEED: u64 = 0x0b1e_c7d1_ff00_2026;

/// Labels whose decoded commits must be accepted in every repository (by the hand-written
/// objects at least), so that decoding is compared, not only refused.
const DECODED_LABELS: &[&str] = &[
    "UTF-7",
    "ISO-2022-JP",
    "Shift_JIS",
    "EUC-JP",
    "GB18030",
    "KOI8-R",
    "windows-1252",
    "ISO-8859-1",
];

/// (object format, commits, tags) per repository.
const REPOS: &[(&str, usize, usize)] = &[("sha1", 2400, 800), ("sha256", 1200, 400)];

/// `git log` fields, each followed by NUL: git never prints a NUL inside one (it cuts the
/// message at the first NUL), so NUL separates them unambiguously.
const LOG_FORMAT: &str =
    "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%e%x00%B%x00";
const LOG_FIELDS: usize = 11;

const TAG_FORMAT: &str = "--format=%(refname)%00%(objecttype)%00%(object)%00%(type)%00%(tag)";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[self.below(16)]))
            .collect()
    }
}

/// `encoding` header values: UTF-8 spellings git does not convert, spellings it does, the
/// encodings of issue 10, and names iconv does not know.
const LABELS: &[&str] = &[
    "UTF-8",
    "utf8",
    "Utf-8",
    "UTF8",
    "utf-8 ",
    "UTF_8",
    "ISO-8859-1",
    "iso-8859-1",
    "latin1",
    "latin-1",
    "LATIN1",
    "Shift_JIS",
    "SJIS",
    "EUC-JP",
    "ISO-2022-JP",
    "UTF-7",
    "utf-7",
    "KOI8-R",
    "windows-1252",
    "CP1252",
    "GB18030",
    "UTF-16",
    "UTF-16LE",
    "UTF-16LE-BOM",
    "X-BOGUS-ENCODING",
    "",
    "ISO-8859-1\r",
];

/// Texts encoded into the declared encoding where iconv can (else left as UTF-8).
const TEXTS: &[&str] = &[
    "Fix the build",
    "Caf\u{e9} cr\u{e8}me br\u{fb}l\u{e9}e",
    "\u{65e5}\u{672c}\u{8a9e}\u{306e}\u{30b3}\u{30df}\u{30c3}\u{30c8}",
    "\u{41f}\u{440}\u{438}\u{432}\u{435}\u{442}, \u{43c}\u{438}\u{440}",
    "\u{4e2d}\u{6587}\u{63d0}\u{4ea4}",
    "Price: 5 \u{20ac}",
    "Tabs\tand  spaces  ",
    "line one\nline two\n\nparagraph",
];

const TRAILERS: &[&str] = &[
    "Co-authored-by: Claude <noreply@anthropic.com>",
    "Co-Authored-By: Copilot <copilot@github.com>",
    "Signed-off-by: A U Thor <a@example.com>",
    "Reviewed-by: \u{41f}\u{451}\u{442}\u{440} <p@example.com>",
];

/// Byte sequences that are invalid (or truncated, or decode to a NUL or a newline) in one
/// encoding or another.
const HOSTILE_BYTES: &[&[u8]] = &[
    b"\xff",
    b"\x82",
    b"\x81",
    b"\xa4",
    b"\x80\x81",
    b"\x1b$B",
    b"\x1b$B\xff\x1b(B",
    b"+!",
    b"+AAA-",
    b"+AAo-author Evil <e@example.com> 1 -0100",
    b"+ADw-noreply+AEA-anthropic.com+AD4-",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\r",
];

const NAMES: &[&str] = &[
    "A U Thor",
    "Jos\u{e9} N\u{fa}\u{f1}ez",
    "\u{5c71}\u{7530}\u{592a}\u{90ce}",
    "\u{412}\u{43b}\u{430}\u{434}\u{438}\u{43c}\u{438}\u{440}",
    "Claude",
    "",
    "  ",
    "name\twith\ttabs",
    "trailing   ",
    " leading",
    "a<b",
    "x>y",
    "+AAA-",
];

const RAW_NAMES: &[&[u8]] = &[b"Jos\xe9", b"\xff\xfe", b"\xc3(", b"ok"];

const EMAILS: &[&str] = &[
    "a@example.com",
    "",
    "noreply@anthropic.com",
    "a>b@example.com",
    "<nested@example.com",
    "x@y>z",
    " spaced @ example.com ",
];

const DATES: &[&str] = &[
    "1700000000 +0100",
    "1700000000 -0100",
    "1700000001 +0000",
    "0 +0000",
    "",
    "abc",
    "-5 +0000",
    "+5 +0000",
    "99999999999999999999999 +0000",
    "18446744073709551615 +0000",
    "18446744073709551616 -0100",
    "9223372036854775807 -0100",
    "9223372036854775808 +0000",
    "-9223372036854775808 -0100",
    "-18446744073709551615 -0100",
    "-99999999999999999999999 -0100",
    "- 5 -0100",
    "1700000000",
    "1700000000 0100",
    "  1700000000   +0100",
    "\t1700000000\t-1234",
    "0001700000000 +0000",
    "1700000000 +01000000",
    "1700000000+0100",
    "1700000000 +",
    "1700000000 -0100 extra",
    "1700000000x -0100",
    " 1700000000 -0100 ",
];

/// Dates without a `+`, which UTF-7 would read as the start of a base64 run.
const DATES_UTF7: &[&str] = &[
    "1700000000 -0100",
    "1700000002 -0000",
    "-5 -0100",
    "1700000000",
];

const TAG_TYPES: &[&str] = &[
    "commit",
    "commit",
    "commit",
    "tag",
    "tree",
    "blob",
    "Commit",
    "commitx",
    "",
    "commit\r",
    "commit ",
    "blobblobblobblobblobblob",
];

const TAG_NAMES: &[&str] = &[
    "v1.0",
    "v1.0",
    "v2.0-rc1",
    "",
    "v 1",
    "v1\r",
    "\u{30bf}\u{30b0}",
    "refs/tags/v1",
    " v1",
];

/// One hostile object generator for a repository's hash length.
struct Gen {
    rng: Rng,
    hexsz: usize,
    trees: Vec<String>,
    parents: Vec<String>,
    big_messages: usize,
}

impl Gen {
    fn new(seed: u64, hexsz: usize) -> Gen {
        let mut rng = Rng(seed);
        // Trees and parents come from disjoint pools: git's object table holds one type per
        // id, and an id read as a tree in one commit and as a commit in another would fail
        // the batch for a reason that has nothing to do with headers.
        let trees = (0..6).map(|_| rng.hex(hexsz)).collect();
        let parents = (0..12).map(|_| rng.hex(hexsz)).collect();
        Gen {
            rng,
            hexsz,
            trees,
            parents,
            big_messages: 2,
        }
    }

    /// An object id as a header value: mostly canonical, sometimes upper case, short, long, of
    /// the other hash, not hex, or padded.
    fn id_text(&mut self, id: &str) -> String {
        let n = id.len();
        match self.rng.below(100) {
            0..=2 => id.to_uppercase(),
            3 => format!("{}{}", id[..1].to_uppercase(), &id[1..]),
            4 => id[..n - 1].to_string(),
            5 => format!("{id}0"),
            6 if n == 40 => format!("{id}{}", self.rng.hex(24)),
            6 => id[..40].to_string(),
            7 => format!("g{}", &id[1..]),
            8 => String::new(),
            9 => format!(" {id}"),
            10 => format!("{id} "),
            _ => id.to_string(),
        }
    }

    fn tree_line(&mut self) -> Vec<u8> {
        let t = self.trees[self.rng.below(self.trees.len())].clone();
        let key = self.key("tree");
        let id = self.id_text(&t);
        format!("{key}{id}").into_bytes()
    }

    fn parent_line(&mut self) -> Vec<u8> {
        let p = self.parents[self.rng.below(self.parents.len())].clone();
        let key = self.key("parent");
        let id = self.id_text(&p);
        format!("{key}{id}").into_bytes()
    }

    /// `key ` as written, or rarely with a tab, two spaces, another case or no space.
    fn key(&mut self, key: &str) -> String {
        match self.rng.below(100) {
            0 => format!("{key}\t"),
            1 => format!("{key}  "),
            2 => format!("{}{} ", key[..1].to_uppercase(), &key[1..]),
            3 => key.to_string(),
            _ => format!("{key} "),
        }
    }

    /// Text in the declared encoding, where iconv can express it.
    fn encode(&mut self, text: &str, label: Option<&str>) -> Vec<u8> {
        match label {
            Some(l) if !l.is_empty() => {
                iconv_native::convert(text, "UTF-8", l).unwrap_or_else(|_| text.as_bytes().into())
            }
            _ => text.as_bytes().to_vec(),
        }
    }

    fn ident(&mut self, label: Option<&str>) -> Vec<u8> {
        let utf7 = label.is_some_and(|l| l.eq_ignore_ascii_case("utf-7"));
        let name: Vec<u8> = match self.rng.below(100) {
            0 => vec![b'N'; 64 * 1024],
            1..=6 => self.rng.pick(RAW_NAMES).to_vec(),
            _ => {
                let n = self.rng.pick(NAMES);
                if self.rng.chance(50) {
                    self.encode(n, label)
                } else {
                    n.as_bytes().to_vec()
                }
            }
        };
        let email = self.rng.pick(EMAILS).as_bytes().to_vec();
        let date = if utf7 && self.rng.chance(80) {
            self.rng.pick(DATES_UTF7)
        } else if self.rng.chance(70) {
            self.rng.pick(&DATES[..3])
        } else {
            self.rng.pick(DATES)
        };
        let date = date.as_bytes();
        let parts: Vec<&[u8]> = match self.rng.below(100) {
            0..=74 => vec![&name, b" <", &email, b"> ", date],
            75..=78 => vec![&name, b" ", &email, b"> ", date],
            79..=81 => vec![&name, b" <", &email, b" ", date],
            82..=84 => vec![&name, b" <", &email, b">> ", date],
            85..=86 => vec![&name, b" <", &email, b"> ", date, b" >"],
            87..=88 => vec![&name, b"<", &email, b">", date],
            89..=90 => vec![&name, b"  \t <", &email, b">   ", date],
            91 => vec![],
            92..=93 => vec![&name, b" <", &email, b">"],
            94 => vec![b"<", &email, b"> ", date],
            95 => vec![&name, b" <", &email, b"> ", date, b"\t"],
            96 => vec![&name, b" <<", &email, b"> ", date],
            _ => vec![&name, b" <", &email, b"> ", date],
        };
        parts.concat()
    }

    /// A header with continuation lines (signatures, mergetags), whose continuation lines
    /// sometimes read like structural headers.
    fn block(&mut self) -> Vec<Vec<u8>> {
        let key = self
            .rng
            .pick(&["gpgsig", "gpgsig-sha256", "mergetag", "x-signature"]);
        let first = if key == "mergetag" {
            format!("mergetag object {}", self.rng.hex(self.hexsz))
        } else {
            format!("{key} -----BEGIN PGP SIGNATURE-----")
        };
        let mut lines = vec![first.into_bytes()];
        for _ in 0..1 + self.rng.below(5) {
            let parent = self.parents[self.rng.below(self.parents.len())].clone();
            let tree = self.trees[self.rng.below(self.trees.len())].clone();
            let line = match self.rng.below(10) {
                0 => format!(" parent {parent}"),
                1 => format!(" tree {tree}"),
                2 => " author Evil <evil@example.com> 1 +0000".to_string(),
                3 => " committer Evil <evil@example.com> 1 +0000".to_string(),
                4 => " encoding UTF-7".to_string(),
                5 => " ".to_string(),
                6 => " type commit\n tag v1\n tagger T <t@example.com> 1 +0000".to_string(),
                7 => format!(" {}", self.rng.hex(60)),
                // A line that leaves the block: a real header in the middle of it.
                8 if self.rng.chance(30) => format!("parent {parent}"),
                _ => " iQEzBAABCAAdFiEE".to_string(),
            };
            lines.extend(line.split('\n').map(|l| l.as_bytes().to_vec()));
        }
        lines.push(b" -----END PGP SIGNATURE-----".to_vec());
        lines
    }

    fn extra_headers(&mut self) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        for _ in 0..self.rng.below(3) {
            match self.rng.below(8) {
                0..=2 => lines.extend(self.block()),
                3 => lines.push(b"x-agent claude-code".to_vec()),
                4 => lines.push(b"nospace".to_vec()),
                5 => lines.push(b" orphan continuation".to_vec()),
                6 => lines.push(b"HG:rename-source hg".to_vec()),
                _ => lines.push(b"\r".to_vec()),
            }
        }
        lines
    }

    /// A structural line to duplicate into a commit.
    fn commit_structural(&mut self, label: Option<&str>) -> Vec<u8> {
        match self.rng.below(6) {
            0 => self.tree_line(),
            1 | 2 => self.parent_line(),
            3 => [b"author ".as_slice(), &self.ident(label)].concat(),
            4 => [b"committer ".as_slice(), &self.ident(label)].concat(),
            _ => format!("encoding {}", self.rng.pick(LABELS)).into_bytes(),
        }
    }

    /// Duplicate, drop, swap or move lines.
    fn mutate(
        &mut self,
        lines: &mut Vec<Vec<u8>>,
        structural: &mut dyn FnMut(&mut Gen) -> Vec<u8>,
    ) {
        if !self.rng.chance(35) {
            return;
        }
        for _ in 0..1 + self.rng.below(3) {
            let n = lines.len();
            match self.rng.below(5) {
                0 | 1 => {
                    let line = structural(self);
                    let at = self.rng.below(n + 1);
                    lines.insert(at, line);
                }
                2 if n > 0 => {
                    lines.remove(self.rng.below(n));
                }
                3 if n > 1 => {
                    let (a, b) = (self.rng.below(n), self.rng.below(n));
                    lines.swap(a, b);
                }
                _ if n > 0 => {
                    let line = lines.remove(self.rng.below(n));
                    let at = self.rng.below(lines.len() + 1);
                    lines.insert(at, line);
                }
                _ => {}
            }
        }
    }

    fn message(&mut self, label: Option<&str>) -> Vec<u8> {
        if self.big_messages > 0 && self.rng.chance(1) {
            self.big_messages -= 1;
            let mut m = b"A big message\n\n".to_vec();
            while m.len() < 1024 * 1024 {
                m.extend_from_slice(b"0123456789abcdef0123456789abcdef0123456789abcdef012345678\n");
            }
            m.extend_from_slice(TRAILERS[0].as_bytes());
            m.push(b'\n');
            return m;
        }
        if self.rng.chance(5) {
            return Vec::new();
        }
        let mut text = self.rng.pick(TEXTS).to_string();
        if self.rng.chance(60) {
            text.push_str("\n\n");
            text.push_str(self.rng.pick(TEXTS));
        }
        if self.rng.chance(40) {
            text.push_str("\n\n");
            text.push_str(self.rng.pick(TRAILERS));
        }
        if self.rng.chance(80) {
            text.push('\n');
        }
        let mut m = self.encode(&text, label);
        if self.rng.chance(20) {
            let at = self.rng.below(m.len() + 1);
            let bytes = self.rng.pick(HOSTILE_BYTES);
            m.splice(at..at, bytes.iter().copied());
        }
        if self.rng.chance(2) {
            let at = self.rng.below(m.len() + 1);
            m.insert(at, 0);
        }
        m
    }

    /// Join header lines and a message: LF or sometimes CR LF, with the blank line, without it,
    /// or with the last header unterminated.
    fn assemble(&mut self, lines: &[Vec<u8>], label: Option<&str>) -> Vec<u8> {
        let mut raw = Vec::new();
        for line in lines {
            raw.extend_from_slice(line);
            if self.rng.chance(1) {
                raw.push(b'\r');
            }
            raw.push(b'\n');
        }
        match self.rng.below(100) {
            0..=3 => {}
            4..=5 => {
                raw.pop();
            }
            6..=7 => raw.extend_from_slice(&self.message(label)),
            8..=10 => {
                raw.extend_from_slice(b"\r\n");
                raw.extend_from_slice(&self.message(label));
            }
            _ => {
                raw.push(b'\n');
                raw.extend_from_slice(&self.message(label));
            }
        }
        if self.rng.chance(1) {
            let at = self.rng.below(raw.len() + 1);
            raw.insert(at, 0);
        }
        raw
    }

    fn commit(&mut self) -> Vec<u8> {
        let label = if self.rng.chance(35) {
            Some(self.rng.pick(LABELS))
        } else {
            None
        };
        let mut lines = Vec::new();
        if !self.rng.chance(2) {
            lines.push(self.tree_line());
        }
        let parents = match self.rng.below(20) {
            0..=5 => 0,
            6..=15 => 1,
            16..=18 => 2,
            _ => 3,
        };
        for _ in 0..parents {
            lines.push(self.parent_line());
        }
        lines.push([b"author ".as_slice(), &self.ident(label)].concat());
        lines.push([b"committer ".as_slice(), &self.ident(label)].concat());
        if let Some(l) = label {
            lines.push(if self.rng.chance(3) {
                b"encoding".to_vec()
            } else {
                format!("encoding {l}").into_bytes()
            });
        }
        let extra = self.extra_headers();
        let at = if self.rng.chance(85) {
            lines.len()
        } else {
            self.rng.below(lines.len() + 1)
        };
        lines.splice(at..at, extra);
        self.mutate(&mut lines, &mut |g| g.commit_structural(label));
        self.assemble(&lines, label)
    }

    fn tag(&mut self) -> Vec<u8> {
        let mut lines = Vec::new();
        if !self.rng.chance(2) {
            let target = self.rng.hex(self.hexsz);
            let key = self.key("object");
            let id = self.id_text(&target);
            lines.push(format!("{key}{id}").into_bytes());
        }
        let key = self.key("type");
        let kind = if self.rng.chance(80) {
            "commit"
        } else {
            self.rng.pick(TAG_TYPES)
        };
        lines.push(format!("{key}{kind}").into_bytes());
        let key = self.key("tag");
        let name = self.rng.pick(TAG_NAMES);
        lines.push([key.as_bytes(), name.as_bytes()].concat());
        if self.rng.chance(85) {
            lines.push([b"tagger ".as_slice(), &self.ident(None)].concat());
        }
        if self.rng.chance(15) {
            let extra = self.extra_headers();
            lines.extend(extra);
        }
        self.mutate(&mut lines, &mut |g| match g.rng.below(5) {
            0 => format!("object {}", g.rng.hex(g.hexsz)).into_bytes(),
            1 => format!("type {}", g.rng.pick(TAG_TYPES)).into_bytes(),
            2 => format!("tag {}", g.rng.pick(TAG_NAMES)).into_bytes(),
            3 => [b"tagger ".as_slice(), &g.ident(None)].concat(),
            _ => b" continuation".to_vec(),
        });
        if self.rng.chance(3) {
            // Shorter than git's minimum tag size: an empty name, a short type.
            return format!("object {}\ntype tag\ntag \n", self.rng.hex(self.hexsz)).into_bytes();
        }
        self.assemble(&lines, None)
    }
}

/// Hand-written objects every run includes: the bypasses of issue 10 and the extremes the
/// generator reaches only by chance.
fn fixed_commits(g: &Gen) -> Vec<Vec<u8>> {
    let (t, t2) = (&g.trees[0], &g.trees[1]);
    let (p1, p2) = (&g.parents[0], &g.parents[1]);
    let author = "author A U Thor <a@example.com> 1700000000 -0100";
    let committer = "committer C O Mitter <c@example.com> 1700000001 -0100";
    let head = format!("tree {t}\nparent {p1}\n{author}\n{committer}\n");
    let big = "0123456789abcdef\n".repeat(64 * 1024);
    let mut out: Vec<Vec<u8>> = vec![
        format!("{head}\nA big message\n\n{big}"),
        format!(
            "tree {t}\nauthor {} <a@example.com> 1700000000 +0000\n{committer}\n\nA big name\n",
            "N".repeat(64 * 1024)
        ),
        // repro-6/7: a parent after the identities, a second tree, a second author.
        format!("{head}parent {p2}\n\nFake merge\n"),
        format!("{head}tree {t2}\n\nAnother tree\n"),
        format!("tree {t}\n{author}\nauthor Claude <noreply@anthropic.com> 1 +0000\n{committer}\n\nx\n"),
        format!("tree {t}\n{author}\n{committer}\nauthor Claude <noreply@anthropic.com> 1 +0000\n\nx\n"),
        format!(
            "{head}gpgsig -----BEGIN PGP SIGNATURE-----\n \n parent {p2}\n tree {t2}\n -----END PGP SIGNATURE-----\n\nSigned\n"
        ),
        format!(
            "{head}mergetag object {p2}\n type commit\n tag v1\n tagger T <t@example.com> 1 +0000\n \n v1\n\nMerge tag v1\n"
        ),
        // repro-5: what only the decoded message shows.
        format!(
            "{head}encoding UTF-7\n\nFix\n\nCo-authored-by: Claude +ADw-noreply+AEA-anthropic.com+AD4-\n"
        ),
        format!("{head}encoding UTF-7\n\nNUL +AAA- inside\n"),
        format!("{head}encoding X-NOPE\n\nx\n"),
        format!("tree {}\nparent {p1}\n{author}\n{committer}\n\nUpper\n", t.to_uppercase()),
        format!("tree {t}\nparent {}\n{author}\n{committer}\n\nUpper\n", p1.to_uppercase()),
        format!("{head}"),
        format!("{head}\r\nCR LF\r\n"),
        format!("tree {t}\nparent {p1}\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let mut latin1 = format!("tree {t}\nauthor Jos").into_bytes();
    latin1.extend_from_slice(b"\xe9 <j@example.com> 1700000000 +0100\n");
    latin1.extend_from_slice(format!("{committer}\nencoding ISO-8859-1\n\nCaf").as_bytes());
    latin1.extend_from_slice(b"\xe9\n");
    out.push(latin1);
    for label in [
        "ISO-2022-JP",
        "Shift_JIS",
        "EUC-JP",
        "GB18030",
        "KOI8-R",
        "windows-1252",
    ] {
        let text = format!(
            "{head}encoding {label}\n\n\u{65e5}\u{672c} \u{20ac} \u{41f}\n\nCo-authored-by: Copilot <c@example.com>\n"
        );
        if let Ok(raw) = iconv_native::convert(&text, "UTF-8", label) {
            out.push(raw);
        }
    }
    out
}

fn fixed_tags(g: &Gen) -> Vec<Vec<u8>> {
    let o = &g.parents[2];
    let o2 = &g.parents[3];
    let tagger = "tagger T <t@example.com> 1700000000 +0000";
    [
        format!("object {o}\ntype commit\ntag v1.0\n{tagger}\n\nRelease\n-----BEGIN PGP SIGNATURE-----\nx\n-----END PGP SIGNATURE-----\n"),
        format!("object {o}\ntype commit\ntag v1.1\n\nNo tagger\n"),
        format!("object {o}\ntype commit\ntag v1.2\n{tagger}\nobject {o2}\n\nSecond object\n"),
        format!("object {o}\ntype commit\ntag v1.3\n{tagger}\ntype tree\n\nSecond type\n"),
        format!("object {o}\ntype commit\ntag v1.4"),
        format!("object {o}\ntype commit\ntag\n{tagger}\n\nNo space\n"),
        format!(" x\nobject {o}\ntype commit\ntag v1.5\n\n"),
        format!("object {}\ntype commit\ntag v1.6\n\n", o.to_uppercase()),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// git's reading of one commit.
struct GitCommit {
    tree: String,
    parents: String,
    walk_parents: String,
    date: u64,
    author: [Vec<u8>; 3],
    committer: [Vec<u8>; 3],
    encoding: Vec<u8>,
    body: Vec<u8>,
}

/// git's reading of one tag.
struct GitTag {
    objecttype: String,
    object: String,
    kind: String,
    name: Vec<u8>,
}

/// Bytes as escaped text, for the mismatch report.
struct Shown<'a>(&'a [u8]);

impl std::fmt::Debug for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", escape(self.0))
    }
}

impl std::fmt::Debug for GitCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = &self.author;
        let c = &self.committer;
        f.debug_struct("GitCommit")
            .field("tree", &self.tree)
            .field("parents", &self.parents)
            .field("walk_parents", &self.walk_parents)
            .field("walk_date", &self.date)
            .field("author", &(Shown(&a[0]), Shown(&a[1]), Shown(&a[2])))
            .field("committer", &(Shown(&c[0]), Shown(&c[1]), Shown(&c[2])))
            .field("encoding", &Shown(&self.encoding))
            .field("body", &Shown(&self.body))
            .finish()
    }
}

impl std::fmt::Debug for GitTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitTag")
            .field("objecttype", &self.objecttype)
            .field("object", &self.object)
            .field("type", &self.kind)
            .field("tag", &Shown(&self.name))
            .finish()
    }
}

struct Repo<'a> {
    env: &'a Env,
    path: PathBuf,
    hexsz: usize,
}

impl Repo<'_> {
    fn git(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd: Command = self.env.cmd("git");
        cmd.current_dir(&self.path)
            .env_remove("GIT_DEFAULT_HASH")
            .env_remove("GIT_DEFAULT_REF_FORMAT")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn git");
        let writer = stdin.map(|data| {
            let data = data.to_vec();
            let mut pipe = child.stdin.take().expect("stdin pipe");
            std::thread::spawn(move || {
                use std::io::Write;
                // git may stop reading early when it fails; the exit status tells.
                let _ = pipe.write_all(&data);
            })
        });
        let out = child.wait_with_output().expect("wait for git");
        if let Some(w) = writer {
            w.join().expect("stdin writer");
        }
        out
    }

    /// Write `objects` of `kind` with one `git hash-object --literally --stdin-paths`.
    fn write(&self, kind: &str, objects: &[Vec<u8>]) -> Vec<String> {
        let dir = self.path.join(format!("raw-{kind}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut paths = String::new();
        for (i, raw) in objects.iter().enumerate() {
            let p = dir.join(i.to_string());
            std::fs::write(&p, raw).unwrap();
            paths.push_str(p.to_str().unwrap());
            paths.push('\n');
        }
        let out = self.git(
            &[
                "hash-object",
                "-t",
                kind,
                "--literally",
                "-w",
                "--stdin-paths",
            ],
            Some(paths.as_bytes()),
        );
        assert!(
            out.status.success(),
            "hash-object: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ids: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(ids.len(), objects.len());
        std::fs::remove_dir_all(&dir).unwrap();
        ids
    }

    /// git's reading of a batch of commits, or None when git cannot read one of them.
    fn read_commits(&self, ids: &[String]) -> Option<HashMap<String, GitCommit>> {
        let mut input = ids.join("\n");
        input.push('\n');
        let walk = self.git(
            &[
                "rev-list",
                "--no-walk",
                "--timestamp",
                "--parents",
                "--stdin",
            ],
            Some(input.as_bytes()),
        );
        if !walk.status.success() {
            return None;
        }
        let log = self.git(
            &["log", "--no-walk", "--stdin", "-z", LOG_FORMAT],
            Some(input.as_bytes()),
        );
        if !log.status.success() {
            return None;
        }
        let mut walked: HashMap<String, (u64, String)> = HashMap::new();
        for line in String::from_utf8(walk.stdout).unwrap().lines() {
            let mut words = line.splitn(3, ' ');
            let date = words.next().unwrap().parse().unwrap();
            let id = words.next().unwrap().to_string();
            let parents = words.next().unwrap_or("").to_string();
            walked.insert(id, (date, parents));
        }
        let mut fields = log.stdout.split(|&b| b == 0);
        let mut read = HashMap::new();
        loop {
            let f: Vec<Vec<u8>> = fields
                .by_ref()
                .take(LOG_FIELDS)
                .map(<[u8]>::to_vec)
                .collect();
            if f.len() < LOG_FIELDS {
                break;
            }
            assert_eq!(fields.next(), Some(&b""[..]), "log record terminator");
            let text = |b: &Vec<u8>| String::from_utf8(b.clone()).unwrap();
            let id = text(&f[0]);
            let (date, walk_parents) = walked
                .remove(&id)
                .unwrap_or_else(|| panic!("{id} in git log but not in git rev-list"));
            read.insert(
                id,
                GitCommit {
                    tree: text(&f[1]),
                    parents: text(&f[2]),
                    walk_parents,
                    date,
                    author: [f[3].clone(), f[4].clone(), f[5].clone()],
                    committer: [f[6].clone(), f[7].clone(), f[8].clone()],
                    encoding: f[9].clone(),
                    body: f[10].clone(),
                },
            );
        }
        assert!(walked.is_empty(), "in rev-list, not in log: {walked:?}");
        assert_eq!(read.len(), ids.len(), "git read every commit of the batch");
        Some(read)
    }

    /// git's reading of a batch of tags (each under `refs/tags/<id>`), or None when git cannot
    /// read one of them.
    fn read_tags(&self, ids: &[String]) -> Option<HashMap<String, GitTag>> {
        let refs: Vec<String> = ids.iter().map(|id| format!("refs/tags/{id}")).collect();
        let mut args = vec!["for-each-ref", TAG_FORMAT];
        args.extend(refs.iter().map(String::as_str));
        let out = self.git(&args, None);
        if !out.status.success() {
            return None;
        }
        let mut read = HashMap::new();
        for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let f: Vec<&[u8]> = line.split(|&b| b == 0).collect();
            assert_eq!(f.len(), 5, "{}", line.escape_ascii());
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            let id = text(f[0]).trim_start_matches("refs/tags/").to_string();
            read.insert(
                id,
                GitTag {
                    objecttype: text(f[1]),
                    object: text(f[2]),
                    kind: text(f[3]),
                    name: f[4].to_vec(),
                },
            );
        }
        assert_eq!(read.len(), ids.len(), "git read every tag of the batch");
        Some(read)
    }
}

/// git's reading of a batch of objects by id, or None when it cannot read one of them.
type Reader<'a, T> = dyn Fn(&[String]) -> Option<HashMap<String, T>> + 'a;

/// Read `ids` in batches of `chunk`; a batch git fails on is halved until the objects it
/// cannot parse are alone.
fn bisect<T>(
    ids: &[String],
    chunk: usize,
    read: &Reader<T>,
    found: &mut HashMap<String, T>,
    failed: &mut HashSet<String>,
) {
    fn split<T>(
        ids: &[String],
        read: &Reader<T>,
        found: &mut HashMap<String, T>,
        failed: &mut HashSet<String>,
    ) {
        match read(ids) {
            Some(m) => found.extend(m),
            None if ids.len() == 1 => {
                failed.insert(ids[0].clone());
            }
            None => {
                let (a, b) = ids.split_at(ids.len() / 2);
                split(a, read, found, failed);
                split(b, read, found, failed);
            }
        }
    }
    for part in ids.chunks(chunk.max(1)) {
        split(part, read, found, failed);
    }
}

fn escape(raw: &[u8]) -> String {
    let shown = &raw[..raw.len().min(3000)];
    let mut s = shown.escape_ascii().to_string();
    if raw.len() > shown.len() {
        write!(s, "... ({} bytes in all)", raw.len()).unwrap();
    }
    s
}

/// Our String against git's bytes: equal, or (where git's bytes are not UTF-8) equal to their
/// lossy reading, since agentgate holds text as UTF-8. Returns (equal, lossy).
fn same(ours: &str, git: &[u8]) -> (bool, bool) {
    if ours.as_bytes() == git {
        return (true, false);
    }
    match std::str::from_utf8(git) {
        Ok(_) => (false, false),
        Err(_) => (String::from_utf8_lossy(git) == ours, true),
    }
}

#[derive(Default)]
struct Counts {
    generated: usize,
    unique: usize,
    git_unparseable: usize,
    walk_read: usize,
    accepted: usize,
    accepted_decoded: usize,
    accepted_signed: usize,
    accepted_lossy: usize,
    accepted_big: usize,
    /// Accepted commits by `encoding` label.
    labels: BTreeMap<String, usize>,
    malformed: BTreeMap<String, usize>,
    encoding_unsupported: usize,
    mismatches: usize,
}

impl Counts {
    fn print_commits(&self, what: &str) {
        println!(
            "{what}: {} generated, {} distinct, {} git cannot parse, {} read by the walk; \
             accepted {} (decoded from another encoding {}, with signature/mergetag headers {}, \
             1 MiB message or 64 KiB name {}, compared lossily {}; by encoding {:?}); \
             refused object-malformed {} {:?}, encoding-unsupported {}; mismatches {}",
            self.generated,
            self.unique,
            self.git_unparseable,
            self.walk_read,
            self.accepted,
            self.accepted_decoded,
            self.accepted_signed,
            self.accepted_big,
            self.accepted_lossy,
            self.labels,
            self.malformed.values().sum::<usize>(),
            self.malformed,
            self.encoding_unsupported,
            self.mismatches,
        );
    }

    fn print_tags(&self, what: &str) {
        println!(
            "{what}: {} generated, {} distinct, {} git cannot parse; accepted {} (compared \
             lossily {}); refused object-malformed {} {:?}; mismatches {}",
            self.generated,
            self.unique,
            self.git_unparseable,
            self.accepted,
            self.accepted_lossy,
            self.malformed.values().sum::<usize>(),
            self.malformed,
            self.mismatches,
        );
    }
}

fn mismatch(
    counts: &mut Counts,
    id: &str,
    raw: &[u8],
    what: &str,
    ours: &dyn std::fmt::Debug,
    git: &dyn std::fmt::Debug,
) {
    counts.mismatches += 1;
    println!(
        "MISMATCH {id}: {what}\n  raw: {}\n  agentgate: {ours:?}\n  git: {git:?}",
        escape(raw)
    );
}

/// git reads the commit date from the end of the committer line since 2.41
/// (`parse_commit_date`); `parse_links` follows that reading.
fn git_reads_dates_from_line_end(env: &Env) -> bool {
    let v = env.git_ok(env.path(), &["--version"]);
    let nums: Vec<u32> = v
        .trim_start_matches("git version ")
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .filter_map(|n| n.parse().ok())
        .collect();
    matches!(nums.as_slice(), [major, minor] if (*major, *minor) >= (2, 41))
}

fn check_commits(repo: &Repo, gen: &mut Gen, n: usize, dates: bool) -> Counts {
    let mut counts = Counts {
        generated: n,
        ..Counts::default()
    };
    let mut raws = fixed_commits(gen);
    raws.extend((0..n).map(|_| gen.commit()));
    counts.generated = raws.len();
    let ids = repo.write("commit", &raws);
    let mut objects: BTreeMap<String, &[u8]> = BTreeMap::new();
    for (id, raw) in ids.iter().zip(&raws) {
        objects.entry(id.clone()).or_insert(raw);
    }
    counts.unique = objects.len();
    let mut links = HashMap::new();
    let (mut walkable, mut refused) = (Vec::new(), Vec::new());
    for (id, raw) in &objects {
        let oid = ObjectId::parse(id).unwrap();
        let l = parse_links(&oid, raw);
        if l.is_ok() {
            walkable.push(id.clone());
        } else {
            refused.push(id.clone());
        }
        links.insert(id.clone(), l);
    }
    // What parse_links reads should be one batch; what it refuses, git should fail on one by one.
    let (mut read, mut failed) = (HashMap::new(), HashSet::new());
    bisect(
        &walkable,
        walkable.len(),
        &|b| repo.read_commits(b),
        &mut read,
        &mut failed,
    );
    bisect(
        &refused,
        1,
        &|b| repo.read_commits(b),
        &mut read,
        &mut failed,
    );
    counts.git_unparseable = failed.len();

    for (id, raw) in &objects {
        let oid = ObjectId::parse(id).unwrap();
        let ours = &links[id];
        let commit = read_commit(&oid, raw);
        let Some(git) = read.get(id) else {
            if ours.is_ok() {
                mismatch(
                    &mut counts,
                    id,
                    raw,
                    "parse_links reads what git cannot parse",
                    ours,
                    &"unparseable",
                );
            }
            if commit.is_ok() {
                mismatch(
                    &mut counts,
                    id,
                    raw,
                    "read_commit accepts what git cannot parse",
                    &commit,
                    &"unparseable",
                );
            }
            continue;
        };
        let l = match ours {
            Ok(l) => l,
            Err(e) => {
                mismatch(
                    &mut counts,
                    id,
                    raw,
                    "git parses, parse_links refuses",
                    e,
                    git,
                );
                continue;
            }
        };
        counts.walk_read += 1;
        let tree = l.tree.to_object_id().to_string();
        let parents: Vec<String> = l
            .parents
            .iter()
            .map(|p| p.to_object_id().to_string())
            .collect();
        let parents = parents.join(" ");
        if tree != git.tree || parents != git.parents || parents != git.walk_parents {
            mismatch(&mut counts, id, raw, "walk reading (tree, parents)", l, git);
            continue;
        }
        if dates && l.time != git.date {
            mismatch(&mut counts, id, raw, "walk reading (commit date)", l, git);
            continue;
        }
        let c = match commit {
            Ok(c) => c,
            Err(ObjectError::Malformed { header, .. }) => {
                *counts.malformed.entry(header).or_default() += 1;
                continue;
            }
            Err(ObjectError::EncodingUnsupported { .. }) => {
                counts.encoding_unsupported += 1;
                continue;
            }
        };
        counts.accepted += 1;
        let mut lossy = false;
        let mut diffs = Vec::new();
        if c.tree.as_str() != git.tree {
            diffs.push("tree");
        }
        let cp: Vec<&str> = c.parents.iter().map(|p| p.as_str()).collect();
        if cp.join(" ") != git.parents {
            diffs.push("parents");
        }
        let text: [(&str, &str, &[u8]); 6] = [
            ("author name", &c.author.name, &git.author[0]),
            ("author email", &c.author.email, &git.author[1]),
            ("committer name", &c.committer.name, &git.committer[0]),
            ("committer email", &c.committer.email, &git.committer[1]),
            (
                "encoding",
                c.encoding.as_deref().unwrap_or(""),
                &git.encoding,
            ),
            ("message", &c.message, &git.body),
        ];
        for (what, ours, theirs) in text {
            let (eq, l) = same(ours, theirs);
            lossy |= l;
            if !eq {
                diffs.push(what);
            }
        }
        // `%at`: the digits as recorded, empty where git finds no date (then 0 here).
        for (what, ours, theirs) in [
            ("author date", c.author.time, &git.author[2]),
            ("committer date", c.committer.time, &git.committer[2]),
        ] {
            let theirs = std::str::from_utf8(theirs).unwrap();
            let expected = if theirs.is_empty() {
                Some(0)
            } else {
                theirs.parse::<i64>().ok()
            };
            if expected.is_some_and(|t| t != ours) {
                diffs.push(what);
            }
        }
        if !diffs.is_empty() {
            mismatch(
                &mut counts,
                id,
                raw,
                &format!("read_commit: {}", diffs.join(", ")),
                &c,
                git,
            );
            continue;
        }
        counts.accepted_lossy += usize::from(lossy);
        if let Some(e) = &c.encoding {
            *counts
                .labels
                .entry(e.escape_debug().to_string())
                .or_default() += 1;
            if !matches!(e.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
                counts.accepted_decoded += 1;
            }
        }
        if c.message.len() >= 1 << 20 || c.author.name.len() >= 64 << 10 {
            counts.accepted_big += 1;
        }
        if raw.windows(7).any(|w| w == b"\ngpgsig" || w == b"\nmerget") {
            counts.accepted_signed += 1;
        }
    }
    counts
}

fn check_tags(repo: &Repo, gen: &mut Gen, n: usize) -> Counts {
    let mut counts = Counts {
        generated: n,
        ..Counts::default()
    };
    let mut raws = fixed_tags(gen);
    raws.extend((0..n).map(|_| gen.tag()));
    counts.generated = raws.len();
    let ids = repo.write("tag", &raws);
    let mut objects: BTreeMap<String, &[u8]> = BTreeMap::new();
    for (id, raw) in ids.iter().zip(&raws) {
        objects.entry(id.clone()).or_insert(raw);
    }
    counts.unique = objects.len();
    // Loose refs written directly: `git update-ref` would parse each tag and refuse the ones it
    // cannot, which are the ones this test needs to point at too.
    let tags = repo.path.join("refs/tags");
    for id in objects.keys() {
        std::fs::write(tags.join(id), format!("{id}\n")).unwrap();
    }
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for (id, raw) in &objects {
        if read_tag(&ObjectId::parse(id).unwrap(), raw).is_ok() {
            accepted.push(id.clone());
        } else {
            refused.push(id.clone());
        }
    }
    let (mut read, mut failed) = (HashMap::new(), HashSet::new());
    bisect(
        &accepted,
        accepted.len(),
        &|b| repo.read_tags(b),
        &mut read,
        &mut failed,
    );
    bisect(&refused, 16, &|b| repo.read_tags(b), &mut read, &mut failed);
    counts.git_unparseable = failed.len();

    for (id, raw) in &objects {
        let oid = ObjectId::parse(id).unwrap();
        let tag = match read_tag(&oid, raw) {
            Ok(t) => t,
            Err(ObjectError::Malformed { header, .. }) => {
                *counts.malformed.entry(header).or_default() += 1;
                continue;
            }
            Err(e) => {
                mismatch(
                    &mut counts,
                    id,
                    raw,
                    "read_tag: an error other than Malformed",
                    &e,
                    &"",
                );
                continue;
            }
        };
        let Some(git) = read.get(id) else {
            mismatch(
                &mut counts,
                id,
                raw,
                "read_tag accepts what git cannot parse",
                &tag,
                &"unparseable",
            );
            continue;
        };
        counts.accepted += 1;
        let (name_eq, lossy) = same(&tag.name, &git.name);
        counts.accepted_lossy += usize::from(lossy);
        if git.objecttype != "tag"
            || tag.object.as_str() != git.object
            || tag.kind.to_string() != git.kind
            || !name_eq
            || tag.object.as_str().len() != repo.hexsz
        {
            mismatch(&mut counts, id, raw, "read_tag", &tag, git);
        }
    }
    counts
}

#[test]
fn objects_read_as_git_reads_them() {
    let start = Instant::now();
    let env = Env::new();
    let dates = git_reads_dates_from_line_end(&env);
    if !dates {
        println!("git older than 2.41 reads commit dates differently: dates not compared");
    }
    let env_number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env_number("AGENTGATE_OBJDIFF_SEED").unwrap_or(SEED);
    let scale = env_number("AGENTGATE_OBJDIFF_SCALE").unwrap_or(1).max(1) as usize;
    println!("seed {seed:#x}, scale {scale}");
    let mut total_mismatches = 0;
    let mut corpus = 0;
    for (i, &(format, n_commits, n_tags)) in REPOS.iter().enumerate() {
        let (n_commits, n_tags) = (n_commits * scale, n_tags * scale);
        let path = env.path().join(format!("{format}.git"));
        env.git_ok(
            env.path(),
            &[
                "init",
                "-q",
                "--bare",
                &format!("--object-format={format}"),
                path.to_str().unwrap(),
            ],
        );
        let hexsz = if format == "sha1" { 40 } else { 64 };
        let repo = Repo {
            env: &env,
            path: path.clone(),
            hexsz,
        };
        let mut gen = Gen::new(
            seed ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            hexsz,
        );
        let commits = check_commits(&repo, &mut gen, n_commits, dates);
        commits.print_commits(&format!("{format} commits"));
        let tags = check_tags(&repo, &mut gen, n_tags);
        tags.print_tags(&format!("{format} tags"));
        total_mismatches += commits.mismatches + tags.mismatches;
        corpus += commits.generated + tags.generated;

        // The test cannot pass by refusing everything.
        assert!(
            commits.accepted >= n_commits / 4,
            "{format}: too few commits accepted"
        );
        assert!(
            commits.accepted_decoded >= n_commits / 50,
            "{format}: too few decoded commits accepted"
        );
        assert!(
            commits.accepted_signed >= n_commits / 25,
            "{format}: too few signed commits accepted"
        );
        assert!(
            commits.accepted_big >= 2,
            "{format}: the 1 MiB message and 64 KiB name were not accepted"
        );
        for label in DECODED_LABELS {
            assert!(
                commits.labels.get(*label).is_some_and(|&n| n > 0),
                "{format}: no commit in {label} accepted"
            );
        }
        assert!(
            commits.walk_read >= n_commits / 2,
            "{format}: too few commits read by the walk"
        );
        assert!(
            commits.encoding_unsupported >= n_commits / 100,
            "{format}: the generator makes no undecodable commits"
        );
        assert!(
            commits.git_unparseable >= n_commits / 100,
            "{format}: the generator makes no unparseable commits"
        );
        assert!(
            tags.accepted >= n_tags / 4,
            "{format}: too few tags accepted"
        );
        assert!(
            tags.git_unparseable >= n_tags / 100,
            "{format}: the generator makes no unparseable tags"
        );
    }
    println!(
        "corpus: {corpus} objects, {total_mismatches} mismatches, {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(
        total_mismatches, 0,
        "mismatches with git's reading (see above)"
    );
}
