//! Signing, shared by `agentgate sign` and `agentgate gate`: the signer (a key, or a keyless
//! identity), the passphrase and key files, what the statements say about the repository, and
//! publishing the two bundles (files, the git note).

use std::io::Write as _;
use std::path::Path;

use agentgate_formats::statement::{
    bound_provenances, parse_junit, sha256_reader, JunitSummary, Source,
};
use agentgate_formats::{sign_statement, KeyError, SigningKey, Statement};
use agentgate_git::{ObjectId, Repo};
#[cfg(feature = "keyless-sign")]
use agentgate_policy::error_chain_distinct;
use anyhow::{bail, Context as _};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::sign::KeylessArgs;

/// File names written by `sign --out DIR` and `gate --out DIR`.
pub const PROVENANCE_FILE: &str = "provenance.sigstore.json";
pub const TEST_RESULT_FILE: &str = "test-result.sigstore.json";

/// What signs the statements: a private key, or a keyless (Sigstore) identity.
pub enum Signer {
    Key(SigningKey),
    #[cfg(feature = "keyless-sign")]
    Keyless(agentgate_keyless::KeylessConfig),
}

/// Who signed, as established after signing.
pub enum SignedBy {
    Key { hint: String },
    Identity { identity: String, issuer: String },
}

impl SignedBy {
    /// For messages: "key HINT" or "IDENTITY (issuer ISSUER)".
    pub fn describe(&self) -> String {
        match self {
            SignedBy::Key { hint } => format!("key {hint}"),
            SignedBy::Identity { identity, issuer } => format!("{identity} (issuer {issuer})"),
        }
    }

    /// Add `keyHint`, or `signerIdentity` and `signerIssuer`, to a JSON summary.
    pub fn add_to(&self, summary: &mut serde_json::Value) {
        match self {
            SignedBy::Key { hint } => summary["keyHint"] = json!(hint),
            SignedBy::Identity { identity, issuer } => {
                summary["signerIdentity"] = json!(identity);
                summary["signerIssuer"] = json!(issuer);
            }
        }
    }
}

#[cfg(not(feature = "keyless-sign"))]
fn no_keyless() -> anyhow::Error {
    anyhow::anyhow!("this agentgate was built without keyless signing (cargo feature keyless-sign)")
}

/// Before a long build: check that `--keyless` can sign (service URLs, a token source; a token
/// given explicitly must parse and be unexpired) without requesting a token yet.
pub fn keyless_preflight(args: &KeylessArgs) -> anyhow::Result<()> {
    #[cfg(feature = "keyless-sign")]
    {
        use agentgate_keyless::KeylessConfig;
        KeylessConfig::preflight(args.identity_token.clone(), args.overrides())
            .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e)))
    }
    #[cfg(not(feature = "keyless-sign"))]
    {
        let _ = args;
        Err(no_keyless())
    }
}

impl Signer {
    /// The keyless signer: finds (and, in GitHub Actions, requests) the identity token now.
    pub fn keyless(args: &KeylessArgs) -> anyhow::Result<Signer> {
        #[cfg(feature = "keyless-sign")]
        {
            use agentgate_keyless::KeylessConfig;
            KeylessConfig::from_env(args.identity_token.clone(), args.overrides())
                .map(Signer::Keyless)
                .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e)))
        }
        #[cfg(not(feature = "keyless-sign"))]
        {
            let _ = args;
            Err(no_keyless())
        }
    }

    /// Sign both statements; returns their bundles and who signed. The test result must name
    /// this provenance (`test_result_statement` does): the hook counts it only next to it.
    pub fn sign_pair(
        &self,
        provenance: &Statement,
        tests: &Statement,
    ) -> anyhow::Result<(String, String, SignedBy)> {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            provenance
                .payload()
                .context("cannot serialize the statement")?,
        ));
        let bound = match tests.test_result() {
            Some(Ok(r)) => bound_provenances(&r),
            _ => Vec::new(),
        };
        if !bound.contains(&digest) {
            bail!("the test result does not name the provenance it is signed with (sha256:{digest}); nothing was signed");
        }
        match self {
            Signer::Key(key) => Ok((
                sign_statement(key, provenance)?,
                sign_statement(key, tests)?,
                SignedBy::Key {
                    hint: key.public_key().hint().to_string(),
                },
            )),
            #[cfg(feature = "keyless-sign")]
            Signer::Keyless(cfg) => {
                let sign = |st: &Statement| -> anyhow::Result<(String, SignedBy)> {
                    let bytes = st.payload().context("cannot serialize the statement")?;
                    let (bundle, verified) = agentgate_keyless::sign_statement_keyless_verified(
                        &bytes, cfg,
                    )
                    .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e)))?;
                    let by = SignedBy::Identity {
                        identity: verified.signer,
                        issuer: verified.issuer.unwrap_or_default(),
                    };
                    Ok((bundle, by))
                };
                let (provenance_bundle, _) = sign(provenance)?;
                let (tests_bundle, by) = sign(tests)?;
                Ok((provenance_bundle, tests_bundle, by))
            }
        }
    }
}

impl Signer {
    /// Sign one statement (an approval, a break-glass override); returns the bundle and who
    /// signed.
    pub fn sign_one(&self, statement: &Statement) -> anyhow::Result<(String, SignedBy)> {
        match self {
            Signer::Key(key) => Ok((
                sign_statement(key, statement)?,
                SignedBy::Key {
                    hint: key.public_key().hint().to_string(),
                },
            )),
            #[cfg(feature = "keyless-sign")]
            Signer::Keyless(cfg) => {
                let bytes = statement
                    .payload()
                    .context("cannot serialize the statement")?;
                let (bundle, verified) = agentgate_keyless::sign_statement_keyless_verified(
                    &bytes, cfg,
                )
                .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e)))?;
                Ok((
                    bundle,
                    SignedBy::Identity {
                        identity: verified.signer,
                        issuer: verified.issuer.unwrap_or_default(),
                    },
                ))
            }
        }
    }
}

/// Write one bundle as `out/<file>` and, with `notes_ref`, append it to the note on `target`.
/// Returns the files written.
pub fn publish_one(
    repo: &Repo,
    target: &ObjectId,
    bundle: &str,
    file: &str,
    out: Option<&Path>,
    notes_ref: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(file);
        write_new(&path, format!("{bundle}\n").as_bytes(), 0o644, true)?;
        written.push(path.display().to_string());
    }
    if let Some(notes_ref) = notes_ref {
        repo.append_note(notes_ref, target, &[bundle.to_string()])?;
    }
    Ok(written)
}

pub(crate) fn passphrase(
    var: Option<&str>,
    prompt: Option<&str>,
) -> anyhow::Result<Option<Zeroizing<Vec<u8>>>> {
    if let Some(var) = var {
        let value = std::env::var_os(var)
            .with_context(|| format!("the passphrase variable {var} is not set"))?;
        return Ok(Some(Zeroizing::new(value.into_encoded_bytes())));
    }
    if let Some(text) = prompt {
        let p = rpassword::prompt_password(text)
            .context("cannot read a passphrase from the terminal")?;
        return Ok(Some(Zeroizing::new(p.into_bytes())));
    }
    Ok(None)
}

pub(crate) fn write_new(
    path: &Path,
    contents: &[u8],
    mode: u32,
    force: bool,
) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if force {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        // An existing file keeps its old mode under truncate; a private key must not.
        use std::os::unix::fs::PermissionsExt as _;
        f.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    f.write_all(contents)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reports bytes read on stderr, at most every 64 MiB, so that hashing a large artifact on a
/// terminal is visibly alive.
struct Progress<'a, R> {
    inner: R,
    name: &'a str,
    total: u64,
    done: u64,
    shown: u64,
    finished: bool,
}

impl<R: std::io::Read> std::io::Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        let at_end = n == 0 && !self.finished;
        if self.done - self.shown >= 64 << 20 || (at_end && self.done != self.shown) {
            self.shown = self.done;
            let (done, total) = (self.done >> 20, self.total >> 20);
            eprint!("\rhashing {}: {done} / {total} MiB", self.name);
        }
        if at_end {
            eprintln!();
            self.finished = true;
        }
        Ok(n)
    }
}

/// Streaming SHA-256 of a file, with progress on a terminal for files over 256 MiB.
pub fn hash_with_progress(path: &Path) -> std::io::Result<String> {
    use std::io::IsTerminal as _;
    let file = std::fs::File::open(path)?;
    let total = file.metadata()?.len();
    if total < 256 << 20 || !std::io::stderr().is_terminal() {
        return sha256_reader(file);
    }
    let name = path.display().to_string();
    sha256_reader(Progress {
        inner: file,
        name: &name,
        total,
        done: 0,
        shown: 0,
        finished: false,
    })
}

/// Load a private key, its passphrase from the environment variable `password_env` or, with
/// `prompt`, from the terminal.
/// `passphrase_options` names the options that give this command a passphrase, for the error
/// when the key needs one.
pub fn load_signing_key(
    path: &Path,
    password_env: Option<&str>,
    prompt: bool,
    passphrase_options: &str,
) -> anyhow::Result<SigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the private key {}", path.display()))?,
    );
    let prompt_text = format!("Passphrase for {}: ", path.display());
    let pass = passphrase(password_env, prompt.then_some(prompt_text.as_str()))?;
    match SigningKey::from_pem(&text, pass.as_deref().map(|v| v.as_slice())) {
        Ok(k) => Ok(k),
        // Only the command knows how a passphrase can reach it (gate has no terminal prompt).
        Err(e @ KeyError::PassphraseRequired) => Err(anyhow::Error::new(e)).with_context(|| {
            format!(
                "cannot load the private key {}: give its passphrase with {}",
                path.display(),
                passphrase_options
            )
        }),
        Err(e) => Err(anyhow::Error::new(e))
            .with_context(|| format!("cannot load the private key {}", path.display())),
    }
}

/// Remove `user:password@` from a URL: a CI token in a remote URL must not be signed and
/// published.
fn strip_userinfo(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}{}", &url[..scheme_end + 3], &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// The repository as attestations name it: its `origin` remote (credentials removed), else
/// its work tree (or git directory) as a `file://` URL.
pub fn repo_uri(repo: &Repo) -> anyhow::Result<String> {
    if let Some(url) = repo.remote_url("origin")? {
        return Ok(strip_userinfo(&url));
    }
    let path = repo
        .work_tree()?
        .unwrap_or_else(|| repo.git_dir().to_path_buf());
    let path = path.canonicalize().unwrap_or(path);
    Ok(format!(
        "file://{}",
        path.display().to_string().trim_end_matches('/')
    ))
}

/// Open the repository at (or above) `path`, in either object format.
pub fn open_repo(path: &Path) -> anyhow::Result<Repo> {
    Repo::open(Some(path))
        .with_context(|| format!("cannot open a git repository at {}", path.display()))
}

/// The commit a signer attests.
pub struct CommitToSign {
    pub id: ObjectId,
    pub tree: ObjectId,
    /// The committer date (seconds since the epoch), as git's walk reads it.
    pub time: i64,
}

/// The commit `rev` names (tags peeled), read with git's own parser: a commit the hook would
/// refuse (a malformed header) can still be signed, and is still refused at the push.
pub fn resolve_commit(repo: &Repo, rev: &str) -> anyhow::Result<CommitToSign> {
    let read = || -> anyhow::Result<CommitToSign> {
        let id = repo.peel_to_commit(&repo.resolve(rev)?)?;
        let links = repo.commit_links(&id)?;
        Ok(CommitToSign {
            tree: links.tree.to_object_id(),
            // git's unsigned timestamp back to the signed seconds it was written as.
            time: links.time as i64,
            id,
        })
    };
    read().with_context(|| format!("cannot resolve {rev:?} to a commit"))
}

/// What the statements say was built: the repository, the commit and its tree.
pub fn source_of(repo: &Repo, commit: &CommitToSign) -> anyhow::Result<Source> {
    Ok(Source {
        uri: repo_uri(repo)?,
        commit: commit.id.to_string(),
        tree: commit.tree.to_string(),
    })
}

/// Parse a JUnit report; also returns the report's SHA-256 (hex).
pub fn load_junit(path: &Path) -> anyhow::Result<(JunitSummary, String)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let summary = parse_junit(&bytes)
        .with_context(|| format!("cannot read the JUnit report {}", path.display()))?;
    Ok((
        summary,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    ))
}

pub fn invocation_id() -> String {
    agentgate_formats::keys::random_label()
}

/// Write the two bundles as `out/provenance.sigstore.json` and `out/test-result.sigstore.json`
/// and, with `notes_ref`, append both to the note on `commit`. Returns the files written.
pub fn publish_bundles(
    repo: &Repo,
    commit: &ObjectId,
    provenance_bundle: &str,
    tests_bundle: &str,
    out: Option<&Path>,
    notes_ref: Option<&str>,
) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, bundle) in [
            (PROVENANCE_FILE, provenance_bundle),
            (TEST_RESULT_FILE, tests_bundle),
        ] {
            let path = dir.join(name);
            let mut text = bundle.to_string();
            text.push('\n');
            write_new(&path, text.as_bytes(), 0o644, true)?;
            written.push(path.display().to_string());
        }
    }
    if let Some(notes_ref) = notes_ref {
        repo.append_note(
            notes_ref,
            commit,
            &[provenance_bundle.to_string(), tests_bundle.to_string()],
        )?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_is_stripped() {
        for (i, o) in [
            (
                "https://x:tok@github.com/a/b.git",
                "https://github.com/a/b.git",
            ),
            ("https://github.com/a/b.git", "https://github.com/a/b.git"),
            ("ssh://git@host/x@y", "ssh://host/x@y"),
            ("git@host:a/b", "git@host:a/b"),
        ] {
            assert_eq!(strip_userinfo(i), o);
        }
    }
}
