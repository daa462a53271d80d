//! `agentgate trust-root update`: fetch the current Sigstore trusted root through TUF
//! ([`agentgate_keyless::tuf`]) and write it, atomically, where the policy's `trusted_root` and
//! `verify --trusted-root` read it. The embedded trusted root ages with the binary; this keeps a
//! file fresh without a new release.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_keyless::tuf::{self, TufError};
use anyhow::Context as _;
use serde_json::json;

use crate::terminal::outln;

/// Where `trust-root update` writes by default: the path the example policy names.
pub const DEFAULT_TRUSTED_ROOT: &str = "/etc/agentgate/trusted_root.json";

#[derive(Debug, clap::Subcommand)]
pub enum TrustRootCommand {
    /// Fetch the current trusted root through Sigstore's TUF repository, verify it, write it.
    #[command(after_help = "\
Examples:
  sudo agentgate trust-root update
  agentgate trust-root update --out /etc/agentgate/trusted_root.json
  agentgate trust-root update --tuf-url https://tuf.example.com \\
      --tuf-root tuf-root.json --out root.json

The TUF client starts from the TUF root embedded in agentgate (Sigstore's public-good
repository) or --tuf-root, follows root rotations, and checks signatures, thresholds, expiry,
rollback and the target's signed length and hashes; an expired or tampered repository is
refused and FILE is left as it was. The metadata each run verified is kept in --tuf-cache
(FILE.tuf by default) and is the floor of the next run: a repository that serves older
metadata than an earlier run saw (a rollback) is refused. The file is written to a temporary
name and renamed over FILE. Policies read it with trusted_root = \"FILE\" in a keyless
[[signer]], `verify` with --trusted-root FILE; `doctor` shows its age.
Exit codes: 0 written, 1 the repository did not verify, 2 usage or write error.")]
    Update(UpdateArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// Where to write trusted_root.json.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_TRUSTED_ROOT)]
    pub out: PathBuf,
    /// The TUF repository (its metadata base URL).
    #[arg(long, value_name = "URL", default_value = tuf::PUBLIC_GOOD_TUF_URL)]
    pub tuf_url: String,
    /// The TUF root.json to trust first, instead of the embedded public-good one.
    #[arg(long, value_name = "FILE")]
    pub tuf_root: Option<PathBuf>,
    /// Where the verified TUF metadata is kept between runs (default: FILE.tuf next to --out):
    /// the versions an update must not go below.
    #[arg(long, value_name = "DIR")]
    pub tuf_cache: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn trust_root(command: &TrustRootCommand) -> anyhow::Result<ExitCode> {
    match command {
        TrustRootCommand::Update(a) => update(a),
    }
}

fn update(a: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let anchor = match &a.tuf_root {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("cannot read the TUF root {}", path.display()))?,
        None => tuf::PUBLIC_GOOD_TUF_ROOT.to_vec(),
    };
    let cache = a.tuf_cache.clone().unwrap_or_else(|| default_cache(&a.out));
    let fetched = match tuf::fetch_trusted_root(&a.tuf_url, &anchor, Some(&cache)) {
        Ok(f) => f,
        Err(e @ (TufError::Anchor(_) | TufError::Url { .. } | TufError::Setup(_))) => {
            return Err(anyhow::anyhow!(
                "[{}] {}",
                e.code(),
                agentgate_policy::error_chain_distinct(&e)
            ))
        }
        Err(e) => {
            let message = agentgate_policy::error_chain_distinct(&e);
            if a.json {
                outln!(
                    "{}",
                    json!({"updated": false, "code": e.code(), "error": message})
                );
            }
            eprintln!(
                "agentgate: trust root not updated [{}]: {message}; {} is unchanged",
                e.code(),
                a.out.display()
            );
            return Ok(ExitCode::from(crate::exit::REFUSED));
        }
    };
    write_atomically(&a.out, &fetched.bytes)?;
    let r = &fetched.root;
    if a.json {
        outln!(
            "{}",
            json!({
                "updated": true,
                "file": a.out.display().to_string(),
                "tufUrl": a.tuf_url,
                "tufCache": cache.display().to_string(),
                "tufRootVersion": fetched.tuf_root_version,
                "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&fetched.bytes)),
                "certificateAuthorities": r.certificate_authorities.len(),
                "transparencyLogs": r.tlogs.len(),
                "ctLogs": r.ctlogs.len(),
                "timestampAuthorities": r.timestamp_authorities.len(),
            })
        );
    } else {
        outln!(
            "wrote {}: {} certificate authorities, {} transparency logs, {} CT logs, {} timestamp authorities",
            a.out.display(),
            r.certificate_authorities.len(),
            r.tlogs.len(),
            r.ctlogs.len(),
            r.timestamp_authorities.len()
        );
        outln!(
            "  verified through TUF at {} (root version {})",
            a.tuf_url,
            fetched.tuf_root_version
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The TUF metadata cache of `out` when --tuf-cache is not given: `out` with `.tuf` appended,
/// so each trusted root file keeps its own floor.
fn default_cache(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_os_string();
    name.push(".tuf");
    PathBuf::from(name)
}

/// Write `bytes` to `path` so that a reader sees the old file or the new one, never a part:
/// a temporary file in the same directory, synced, renamed over `path`, the directory synced.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".trusted_root.")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    // Readable by the Git server's user; it is public data.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
