//! Keeping the Sigstore trusted root fresh: fetch `trusted_root.json` through a TUF repository
//! (Sigstore's, by default), anchored in a TUF root this binary embeds, and check that what
//! arrives is a trusted root agentgate can use. The TUF client is sigstore-tuf (the sigstore
//! crates' own, interoperable with python-tuf and go-tuf repositories): root rotation,
//! thresholds, expiry, rollback and the target's length and hash are its checks. Only the CI and
//! release side links it (feature `tuf`); the hook reads the file this writes.

use std::path::Path;

use agentgate_formats::sigstore::TrustedRoot;

/// Sigstore's public-good TUF repository.
pub const PUBLIC_GOOD_TUF_URL: &str = "https://tuf-repo-cdn.sigstore.dev";

/// The TUF root of Sigstore's public-good repository, embedded (see `tuf/NOTICE.md`): the
/// anchor of every update unless `--tuf-root` names another.
pub const PUBLIC_GOOD_TUF_ROOT: &[u8] = include_bytes!("../tuf/public-good-root.json");

/// The target that holds the trusted root.
pub const TRUSTED_ROOT_TARGET: &str = "trusted_root.json";

/// Why no trusted root was fetched. Each variant has a stable code ([`TufError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum TufError {
    /// The anchor (embedded or `--tuf-root`) is not a TUF root that verifies itself.
    #[error("the TUF root given as the anchor is unusable")]
    Anchor(#[source] sigstore_tuf::Error),
    /// The repository URL does not parse.
    #[error("invalid TUF repository URL {url}")]
    Url {
        url: String,
        #[source]
        source: sigstore_tuf::Error,
    },
    /// The refresh failed: a signature, threshold, expiry, rollback or download.
    #[error("the TUF repository at {url} did not verify")]
    Refresh {
        url: String,
        #[source]
        source: sigstore_tuf::Error,
    },
    /// The target is missing, or its length or hash is not what the targets role signed.
    #[error("the TUF target {TRUSTED_ROOT_TARGET} did not verify")]
    Target(#[source] sigstore_tuf::Error),
    /// The verified target is not a trusted root agentgate can use.
    #[error("the fetched {TRUSTED_ROOT_TARGET} is not a usable trusted root: {0}")]
    NotATrustedRoot(String),
    /// No async runtime for the HTTP client.
    #[error("cannot start the HTTP client: {0}")]
    Setup(String),
}

impl TufError {
    /// A stable kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            TufError::Anchor(_) => "tuf-anchor",
            TufError::Url { .. } => "tuf-url",
            TufError::Refresh { .. } => "tuf-refresh",
            TufError::Target(_) => "tuf-target",
            TufError::NotATrustedRoot(_) => "tuf-not-a-trusted-root",
            TufError::Setup(_) => "tuf-setup",
        }
    }
}

/// A trusted root fetched and verified through TUF.
#[derive(Debug)]
pub struct Fetched {
    /// The target's bytes, exactly as the targets role signed them.
    pub bytes: Vec<u8>,
    /// The version of the TUF root the update ended on (after any rotation).
    pub tuf_root_version: u64,
    /// The trusted root, parsed.
    pub root: TrustedRoot,
}

/// Fetch `trusted_root.json` from the TUF repository at `url`, trusting `anchor` (a TUF
/// `root.json`) to start: the full TUF client workflow at the current time (root chain,
/// timestamp, snapshot, targets, then the target checked against its signed length and hashes).
/// With `cache`, the metadata verified by earlier runs is kept there and read back (re-verified
/// from the anchor) as the floor: without it each run would start from the anchor alone, and a
/// repository could hand back an older, still unexpired trusted root (TUF's rollback check
/// spans runs only through this cache). The result must parse as a trusted root.
pub fn fetch_trusted_root(
    url: &str,
    anchor: &[u8],
    cache: Option<&Path>,
) -> Result<Fetched, TufError> {
    let repo = sigstore_tuf::HttpRepository::new(url).map_err(|source| TufError::Url {
        url: url.to_string(),
        source,
    })?;
    let mut updater = sigstore_tuf::Updater::new(repo, anchor).map_err(TufError::Anchor)?;
    if let Some(dir) = cache {
        updater = updater.with_store(sigstore_tuf::FileStore::new(dir));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| TufError::Setup(e.to_string()))?;
    let bytes = runtime.block_on(async {
        let now = jiff::Timestamp::now();
        updater
            .refresh(now)
            .await
            .map_err(|source| TufError::Refresh {
                url: url.to_string(),
                source,
            })?;
        updater
            .get_target(TRUSTED_ROOT_TARGET, now)
            .await
            .map_err(TufError::Target)
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|e| TufError::NotATrustedRoot(format!("not UTF-8: {e}")))?;
    let root =
        TrustedRoot::from_json(text).map_err(|e| TufError::NotATrustedRoot(e.to_string()))?;
    if root.certificate_authorities.is_empty() || root.tlogs.is_empty() {
        return Err(TufError::NotATrustedRoot(
            "it names no certificate authority or no transparency log".into(),
        ));
    }
    Ok(Fetched {
        tuf_root_version: updater.trusted().root().version,
        bytes,
        root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_anchor_verifies_itself() {
        let set = sigstore_tuf::TrustedMetadataSet::from_root(PUBLIC_GOOD_TUF_ROOT).unwrap();
        assert!(set.root().version >= 1);
    }

    #[test]
    fn a_broken_anchor_is_refused_before_any_request() {
        let e = fetch_trusted_root("http://127.0.0.1:9", b"{}", None).unwrap_err();
        assert_eq!(e.code(), "tuf-anchor");
    }
}
