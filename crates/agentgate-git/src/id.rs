//! Object ids and kinds as the rest of agentgate names them: full lower-case hex of either hash
//! length, so SHA-1 and SHA-256 repositories go through the same code.

use std::fmt;

/// A string that is not a full object id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object id {0:?}")]
pub struct InvalidId(pub String);

/// An object id in hex (40 characters for SHA-1, 64 for SHA-256), always lower case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ObjectId(String);

impl ObjectId {
    /// Parse a full hex id of either length.
    pub fn parse(s: &str) -> Result<ObjectId, InvalidId> {
        let ok = (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        if ok {
            // git writes lower case; only foreign input needs the copy.
            Ok(ObjectId(if s.bytes().any(|b| b.is_ascii_uppercase()) {
                s.to_ascii_lowercase()
            } else {
                s.to_string()
            }))
        } else {
            Err(InvalidId(s.chars().take(80).collect()))
        }
    }

    /// The zero id for a hash of `bytes` bytes (20 or 32).
    pub fn zero(bytes: usize) -> ObjectId {
        ObjectId("0".repeat(bytes * 2))
    }

    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 7 characters, as `git log --oneline` shows.
    pub fn short(&self) -> &str {
        // Every id holds at least 40 hex digits (ASCII), so the prefix always exists.
        self.0.get(..7).unwrap_or(&self.0)
    }

    /// From hex known to be a full, lower-case object id (the walk's own conversions).
    pub(crate) fn from_hex_unchecked(hex: String) -> ObjectId {
        ObjectId(hex)
    }

    pub(crate) fn to_git2(&self) -> Result<git2::Oid, InvalidId> {
        git2::Oid::from_str(&self.0).map_err(|_| InvalidId(self.0.clone()))
    }

    pub(crate) fn from_git2(oid: git2::Oid) -> ObjectId {
        ObjectId(oid.to_string())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.0)
    }
}

/// What kind of object an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Commit,
    Tag,
    Tree,
    Blob,
}

impl ObjectKind {
    /// git's name for a kind (`cat-file -t`); anything else is read as a blob, as before.
    pub(crate) fn from_name(name: &str) -> ObjectKind {
        match name {
            "commit" => ObjectKind::Commit,
            "tag" => ObjectKind::Tag,
            "tree" => ObjectKind::Tree,
            _ => ObjectKind::Blob,
        }
    }

    pub(crate) fn from_git2(kind: git2::ObjectType) -> ObjectKind {
        match kind {
            git2::ObjectType::Commit => ObjectKind::Commit,
            git2::ObjectType::Tag => ObjectKind::Tag,
            git2::ObjectType::Tree => ObjectKind::Tree,
            _ => ObjectKind::Blob,
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Commit => "commit",
            ObjectKind::Tag => "tag",
            ObjectKind::Tree => "tree",
            ObjectKind::Blob => "blob",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids() {
        assert!(ObjectId::parse(&"a".repeat(40)).is_ok());
        assert!(ObjectId::parse(&"A".repeat(64)).is_ok());
        assert!(ObjectId::parse(&"a".repeat(41)).is_err());
        assert!(ObjectId::parse("xyz").is_err());
        assert!(ObjectId::parse(&"g".repeat(40)).is_err());
        assert!(ObjectId::zero(32).is_zero());
        assert_eq!(ObjectId::zero(20).as_str().len(), 40);
        assert_eq!(ObjectId::zero(20).short(), "0000000");
    }
}
