//! The hook's input: `<old> SP <new> SP <ref> LF` lines as git writes them on a pre-receive
//! hook's stdin (and the three arguments of the update hook), parsed strictly: anything git
//! would not write is refused as `stdin-malformed`, never guessed at.

use agentgate_git::ObjectId;

/// More stdin than any real push sends (about 600k ref updates); refused as malformed.
pub const MAX_STDIN: u64 = 64 << 20;

/// One line of pre-receive input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefUpdate {
    pub old: ObjectId,
    pub new: ObjectId,
    #[serde(rename = "ref")]
    pub refname: String,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed hook input on line {line}: {reason}")]
pub struct StdinError {
    pub line: usize,
    pub reason: String,
}

/// Parse pre-receive stdin strictly: `<old> SP <new> SP <ref> LF` per line, ids of one length.
pub fn parse_updates(input: &[u8]) -> Result<Vec<RefUpdate>, StdinError> {
    let text = std::str::from_utf8(input).map_err(|e| StdinError {
        line: input
            .iter()
            .take(e.valid_up_to())
            .filter(|&&b| b == b'\n')
            .count()
            + 1,
        reason: "not UTF-8".into(),
    })?;
    let mut out = Vec::new();
    let mut id_len = None;
    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        let err = |reason: &str| StdinError {
            line: n,
            reason: reason.to_string(),
        };
        let mut parts = line.split(' ');
        let (Some(old), Some(new), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("expected \"<old-id> <new-id> <ref>\""));
        };
        // git writes lower-case hex; anything else did not come from git (ObjectId::parse
        // would quietly lower-case it).
        if old
            .bytes()
            .chain(new.bytes())
            .any(|b| b.is_ascii_uppercase())
        {
            return Err(err("object ids must be lower-case hex, as git writes them"));
        }
        let old = ObjectId::parse(old).map_err(|_| err("old id is not a full object id"))?;
        let new = ObjectId::parse(new).map_err(|_| err("new id is not a full object id"))?;
        if old.as_str().len() != new.as_str().len()
            || id_len.is_some_and(|l| l != old.as_str().len())
        {
            return Err(err("object ids of different lengths in one push"));
        }
        id_len = Some(old.as_str().len());
        if !valid_refname(name) {
            return Err(err("not a valid ref name"));
        }
        if old.is_zero() && new.is_zero() {
            return Err(err("both ids are zero"));
        }
        out.push(RefUpdate {
            old,
            new,
            refname: name.to_string(),
        });
    }
    if out.is_empty() {
        return Err(StdinError {
            line: 1,
            reason: "no ref updates".into(),
        });
    }
    Ok(out)
}

/// A conservative version of git's check-ref-format.
pub fn valid_refname(name: &str) -> bool {
    name.starts_with("refs/")
        && !name.ends_with('/')
        && !name.ends_with(".lock")
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("@{")
        && !name.split('/').any(|c| c.starts_with('.'))
        && name
            .bytes()
            .all(|b| b > 0x20 && b != 0x7f && !b" ~^:?*[\\".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    #[test]
    fn stdin_parsing() {
        let ok = format!("{A} {B} refs/heads/main\n{Z} {B} refs/tags/v1\n");
        let u = parse_updates(ok.as_bytes()).unwrap();
        assert_eq!(u.len(), 2);
        assert!(u[1].old.is_zero());
        let s256 = format!("{} {} refs/heads/main\n", "a".repeat(64), "b".repeat(64));
        assert_eq!(parse_updates(s256.as_bytes()).unwrap().len(), 1);

        let bad: &[(&[u8], usize)] = &[
            (b"", 1),
            (b"\n", 1),
            (format!("{A} {B}\n").as_bytes().to_vec().leak(), 1),
            (
                format!("{A} {B} refs/heads/main extra\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A} {B} refs/heads/main\n{A} xyz refs/heads/x\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                2,
            ),
            (
                format!("{A} {} refs/heads/main\n", "b".repeat(64))
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A} {B} heads/main\n").as_bytes().to_vec().leak(),
                1,
            ),
            (
                format!("{A} {B} refs/heads/a..b\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{Z} {Z} refs/heads/main\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A}  {B} refs/heads/main\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (
                format!("{A} {B} refs/heads/main\r\n")
                    .as_bytes()
                    .to_vec()
                    .leak(),
                1,
            ),
            (b"\xff\xfe\n", 1),
        ];
        for (input, line) in bad {
            let e = parse_updates(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(e.line, *line, "{}", String::from_utf8_lossy(input));
        }
    }

    /// Found by tests/it/fail_closed.rs::malformed_stdin_lines_are_refused: `<OLD> <old> <ref>` with
    /// the old id in upper case was read as "no change" and accepted, because ObjectId::parse
    /// lower-cases. Not a bypass (it is the same object), but git never writes it: refused.
    #[test]
    fn stdin_uppercase_ids_are_malformed() {
        let upper = A.replace('1', "A");
        let lower = upper.to_ascii_lowercase();
        for input in [
            format!("{upper} {lower} refs/heads/main\n"),
            format!("{lower} {upper} refs/heads/main\n"),
        ] {
            let e = parse_updates(input.as_bytes()).expect_err(&input);
            assert!(e.reason.contains("lower-case"), "{e}");
        }
        let ok = format!("{lower} {B} refs/heads/main\n");
        assert_eq!(parse_updates(ok.as_bytes()).unwrap()[0].old.as_str(), lower);
    }

    #[test]
    fn refnames() {
        for good in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/x-y_z",
        ] {
            assert!(valid_refname(good), "{good}");
        }
        for bad in [
            "main",
            "refs/heads/",
            "refs/heads/x.lock",
            "refs/heads/.x",
            "refs/heads/a b",
            "refs/heads/a~1",
            "refs/heads/a:b",
            "refs//x",
            "refs/heads/@{x}",
        ] {
            assert!(!valid_refname(bad), "{bad}");
        }
    }
}
