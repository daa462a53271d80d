//! `agentgate verify`: a release manager's offline check of an artifact against the bundles that
//! travel with it (one bundle, a JSON Lines file of them, or the git note of a commit), by
//! trusted key or keyless identity, reporting for each bundle which checks ran and what they
//! found ([`agentgate_formats::examine`]). The sigstore-conformance client drives it too.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use agentgate_formats::bundle::note_bundles;
use agentgate_formats::examine::{self, Examined, Signer, Status, Trust, TrustedKey};
use agentgate_formats::{sigstore, AttestationCode, PublicKey};
use agentgate_policy::config::DEFAULT_NOTES_REF;
use agentgate_policy::error_chain_distinct;
use anyhow::{bail, Context as _};
use serde_json::{json, Value};

use crate::exit;
use crate::signing::{hash_with_progress, open_repo, resolve_commit};
use crate::terminal::outln;

const VERIFY_EXAMPLE: &str = "\
Examples:
  agentgate verify --note v1.2.0 --key ci-gate.pub \\
      attestations/artifacts/target/release/app
  agentgate verify --bundle attestations/provenance.sigstore.json \\
      --key ci-gate.pub --commit v1.2.0 \\
      attestations/artifacts/target/release/app
  agentgate verify --bundle note.jsonl --key ci-gate.pub --json \\
      sha256:3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
  agentgate verify --bundle app.sigstore.json app.tar.gz \\
      --certificate-oidc-issuer https://token.actions.githubusercontent.com \\
      --certificate-identity-regexp \\
      'https://github\\.com/acme/app/\\.github/workflows/.+'
  agentgate verify --bundle app.intoto.sigstore.json --key cosign.pub \\
      --print-statement app.tar.gz
  agentgate verify --promotion v1.2.0 --repo /srv/git/app.git --key server.pub

Any Sigstore bundle (v0.1 to v0.3) is verified, as cosign verify-blob and
verify-blob-attestation do: message signatures, DSSE with in-toto Statement v0.1
or v1, key-based or keyless, Rekor v1 and v2, RFC 3161 timestamps. Keyless
bundles and logged key bundles are checked offline against the embedded Sigstore
public-good trusted root, or --trusted-root FILE (keep one fresh with
`agentgate trust-root update`); --certificate-identity-regexp must match the
whole identity.
agentgate's own statements (a gate or sign provenance, a test result) must also
bind their commit, have a well-formed predicate and a PASSED test result;
--commit (or --note) asks any statement to bind that commit.

With several bundles (a note, a JSON Lines file) each is reported; the artifact
is verified when one of them is. Exit codes: 0 verified, 1 not verified (each
reason's code is printed), 2 usage error.";

#[derive(Debug, clap::Args)]
#[command(after_help = VERIFY_EXAMPLE)]
#[command(group(clap::ArgGroup::new("signer").required(true).multiple(true).args(["keys", "certificate_identity", "certificate_identity_regexp"])))]
#[command(group(clap::ArgGroup::new("input").required(true).args(["bundle", "note", "promotion"])))]
pub struct VerifyArgs {
    /// A bundle file: one Sigstore bundle, or JSON Lines of bundles (a saved note).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Verify the bundles of this commit's note (any revision; see --repo, --notes-ref). The
    /// statements must then bind this commit.
    #[arg(long, value_name = "REV")]
    pub note: Option<String>,
    /// The notes ref --note reads.
    #[arg(long, value_name = "REF", default_value = DEFAULT_NOTES_REF, requires = "note")]
    pub notes_ref: String,
    /// Check the server's promotion records on exactly this commit instead (any revision):
    /// signed with --key (the server's public key), notes under --promotions-ref in --repo.
    #[arg(long, value_name = "REV", conflicts_with_all = ["bundle", "note", "artifact", "commit", "certificate_identity", "certificate_identity_regexp"])]
    pub promotion: Option<String>,
    /// With --promotion: where the promotion records are.
    #[arg(long, value_name = "REF", default_value = agentgate_policy::config::DEFAULT_PROMOTIONS_REF, requires = "promotion")]
    pub promotions_ref: String,
    /// With --promotion: require a record for this ref (fully qualified, as in sourceRefs).
    #[arg(long = "ref", value_name = "REF", requires = "promotion")]
    pub refname: Option<String>,
    /// Trusted public key (SPKI PEM: agentgate's, cosign's, any Sigstore key); repeat to trust
    /// several.
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
    /// Keyless bundles: the certificate identity (SAN: a workflow URI, an email, a username),
    /// matched exactly.
    #[arg(
        long,
        value_name = "IDENTITY",
        requires = "certificate_oidc_issuer",
        conflicts_with = "certificate_identity_regexp"
    )]
    pub certificate_identity: Option<String>,
    /// Keyless bundles: a regex the whole certificate identity must match (anchored at both
    /// ends).
    #[arg(long, value_name = "REGEX", requires = "certificate_oidc_issuer")]
    pub certificate_identity_regexp: Option<String>,
    /// Keyless bundles: the OIDC issuer of the certificate, matched exactly.
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// A trusted root (trusted_root.json) instead of the embedded Sigstore public-good root.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Use the embedded Sigstore staging trusted root (--trusted-root wins).
    #[arg(long)]
    pub staging: bool,
    /// Require that each statement binds this commit (any revision, or a full hex id).
    #[arg(long)]
    pub commit: Option<String>,
    /// Repository used to resolve --commit and --note.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// Print each verified statement (JSON), e.g. to read a predicate.
    #[arg(long)]
    pub print_statement: bool,
    /// Print the result as JSON: the deciding bundle's fields at the top, every bundle under
    /// `bundles`.
    #[arg(long)]
    pub json: bool,
    /// The artifact file, or its digest as sha256:HEX.
    #[arg(
        value_name = "ARTIFACT|sha256:HEX",
        required_unless_present = "promotion"
    )]
    pub artifact: Option<String>,
}

fn artifact_digest(arg: &str) -> anyhow::Result<([u8; 32], Option<PathBuf>)> {
    let mut sha = [0u8; 32];
    if let Some(hex) = arg.strip_prefix("sha256:") {
        if hex.len() != 64 || hex::decode_to_slice(hex, &mut sha).is_err() {
            bail!("{arg:?} is not sha256: followed by 64 hex digits");
        }
        return Ok((sha, None));
    }
    let path = Path::new(arg);
    let digest = hash_with_progress(path)
        .with_context(|| format!("cannot hash the artifact {}", path.display()))?;
    hex::decode_to_slice(&digest, &mut sha).context("the artifact digest is not hex")?;
    Ok((sha, Some(path.to_path_buf())))
}

fn resolve_commit_arg(repo_path: &Path, rev: &str) -> anyhow::Result<String> {
    // A full object id needs no repository, and need not be in this one (a release verified
    // from another clone, or from no clone at all).
    if (rev.len() == 40 || rev.len() == 64) && rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(rev.to_ascii_lowercase());
    }
    let repo = open_repo(repo_path)?;
    Ok(resolve_commit(&repo, rev)?.id.to_string())
}

/// The trust the arguments give: keys (each as any Sigstore key, and as an agentgate key when
/// it is one), a keyless identity, the trusted root.
fn trust(args: &VerifyArgs) -> anyhow::Result<Trust> {
    let mut keys = Vec::new();
    for path in &args.keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the public key {}", path.display()))?;
        let managed = sigstore::ManagedKey::from_pem(&text)
            .with_context(|| format!("cannot load the public key {}", path.display()))?;
        keys.push(TrustedKey {
            label: path.display().to_string(),
            managed,
            agentgate: PublicKey::from_pem(&text).ok(),
        });
    }
    let identity = match (
        &args.certificate_identity,
        &args.certificate_identity_regexp,
        &args.certificate_oidc_issuer,
    ) {
        (Some(exact), _, Some(issuer)) => Some((
            issuer.clone(),
            sigstore::IdentityMatch::Exact(exact.clone()),
        )),
        (None, Some(re), Some(issuer)) => Some((
            issuer.clone(),
            sigstore::IdentityMatch::regex(re)
                .with_context(|| format!("invalid --certificate-identity-regexp {re:?}"))?,
        )),
        (None, None, Some(_)) => bail!(
            "--certificate-oidc-issuer needs --certificate-identity or --certificate-identity-regexp"
        ),
        _ => None,
    };
    let root = match (&args.trusted_root, args.staging) {
        (Some(path), _) => sigstore::trusted_root_from_file(path),
        (None, true) => sigstore::staging_root(),
        (None, false) => sigstore::public_good_root(),
    }
    .map_err(|e| anyhow::anyhow!("[{}] {}", e.code(), error_chain_distinct(&e)))?;
    Ok(Trust {
        keys,
        identity,
        root,
    })
}

/// One bundle to examine, and where it came from.
struct Input {
    source: String,
    bytes: Vec<u8>,
}

/// A file's bundles: the whole file when it is one JSON value (a bundle, pretty-printed or not),
/// else each non-blank line (JSON Lines, as a note is saved).
fn file_bundles(path: &Path, text: &[u8]) -> Vec<Input> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok() {
        return vec![Input {
            source: path.display().to_string(),
            bytes: text.to_vec(),
        }];
    }
    lines(&String::from_utf8_lossy(text), &path.display().to_string())
}

fn lines(text: &str, source: &str) -> Vec<Input> {
    // note_bundles skips blank lines; the line numbers are the file's.
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if note_bundles(line).next().is_some() {
            out.push(Input {
                source: format!("{source} line {}", n + 1),
                bytes: line.trim().as_bytes().to_vec(),
            });
        }
    }
    out
}

/// The bundles of `rev`'s note under `notes_ref`, and the commit they must bind.
fn note_inputs(args: &VerifyArgs, rev: &str) -> anyhow::Result<(Vec<Input>, String)> {
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, rev)?.id;
    let notes_ref = &args.notes_ref;
    let notes = repo
        .ref_target(notes_ref)
        .with_context(|| format!("cannot read {notes_ref}"))?;
    let note = match notes {
        Some(n) => repo
            .note_at(&n, &commit)
            .with_context(|| format!("cannot read the note on {commit} under {notes_ref}"))?,
        None => None,
    };
    let source = format!("{notes_ref}:{}", commit.short());
    let inputs = note
        .map(|bytes| lines(&String::from_utf8_lossy(&bytes), &source))
        .unwrap_or_default();
    Ok((inputs, commit.to_string()))
}

pub fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    if let Some(rev) = &args.promotion {
        return super::verify_promotion::verify_promotion(args, rev);
    }
    let Some(artifact_arg) = &args.artifact else {
        bail!("name the artifact (a file, or sha256:HEX)");
    };
    let trust = trust(args)?;
    let (inputs, note_commit) = match (&args.bundle, &args.note) {
        (Some(path), _) => {
            let text = std::fs::read(path)
                .with_context(|| format!("cannot read the bundle {}", path.display()))?;
            (file_bundles(path, &text), None)
        }
        (None, Some(rev)) => {
            let (inputs, commit) = note_inputs(args, rev)?;
            (inputs, Some(commit))
        }
        (None, None) => bail!("give --bundle FILE or --note REV"),
    };
    let commit = match &args.commit {
        Some(c) => Some(resolve_commit_arg(&args.repo, c)?),
        None => note_commit,
    };
    let (sha256, path) = artifact_digest(artifact_arg)?;
    let artifact = examine::Artifact { sha256, path };

    let results: Vec<(Input, Examined)> = inputs
        .into_iter()
        .map(|input| {
            let examined = examine::examine(&input.bytes, &trust, &artifact, commit.as_deref());
            (input, examined)
        })
        .collect();
    let verified = results.iter().any(|(_, e)| e.verified());
    let report = Report {
        args,
        results: &results,
        digest: hex::encode(sha256),
        commit: commit.as_deref(),
        what: match (&args.bundle, &args.note) {
            (Some(p), _) => p.display().to_string(),
            _ => format!("the note of {}", commit.as_deref().unwrap_or("?")),
        },
    };
    if args.json {
        outln!("{}", report.json(verified));
    } else {
        report.text(verified);
    }
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::REFUSED)
    })
}

/// What `verify` prints.
struct Report<'a> {
    args: &'a VerifyArgs,
    results: &'a [(Input, Examined)],
    digest: String,
    commit: Option<&'a str>,
    /// The input, for messages ("att/note.jsonl", "the note of <commit>").
    what: String,
}

impl Report<'_> {
    /// The bundle the top-level answer repeats: the first verified one, else the first.
    fn deciding(&self) -> Option<&(Input, Examined)> {
        self.results
            .iter()
            .find(|(_, e)| e.verified())
            .or(self.results.first())
    }

    fn artifact_path(&self) -> Option<String> {
        self.args
            .artifact
            .clone()
            .filter(|a| !a.starts_with("sha256:"))
    }

    fn bundle_json(&self, index: usize, input: &Input, e: &Examined) -> Value {
        let mut v = json!({
            "index": index + 1,
            "source": input.source,
            "verified": e.verified(),
            "mediaType": e.media_type,
            "artifact": {"sha256": self.digest, "path": self.artifact_path()},
            "commit": e.commit,
            "agentgate": e.agentgate,
            "checks": e.checks,
        });
        if let Some(st) = &e.statement {
            v["statementType"] = json!(st.type_);
            v["predicateType"] = json!(st.predicate_type);
            v["payloadSha256"] = json!(e.payload_sha256);
            if self.args.print_statement && e.verified() {
                v["statement"] = serde_json::to_value(st).unwrap_or(Value::Null);
            }
        }
        if let Some(t) = e.test_result {
            v["testResult"] = json!(t.as_str());
        }
        match &e.signer {
            Some(Signer::Key { label, hint }) => {
                v["signerKeyHint"] = json!(hint);
                v["signerKey"] = json!(label);
            }
            Some(Signer::Identity { identity, issuer }) => {
                v["signerIdentity"] = json!(identity);
                v["signerIssuer"] = json!(issuer);
            }
            None => {}
        }
        if let Err((code, error)) = &e.outcome {
            v["code"] = json!(code);
            v["error"] = json!(error);
        }
        v
    }

    fn json(&self, verified: bool) -> Value {
        let bundles: Vec<Value> = self
            .results
            .iter()
            .enumerate()
            .map(|(i, (input, e))| self.bundle_json(i, input, e))
            .collect();
        let mut top = match self.deciding() {
            Some((input, e)) => {
                let i = self
                    .results
                    .iter()
                    .position(|(x, _)| std::ptr::eq(x, input))
                    .unwrap_or(0);
                self.bundle_json(i, input, e)
            }
            None => json!({
                "code": AttestationCode::NoBundle,
                "error": format!("{} holds no bundle", self.what),
                "artifact": {"sha256": self.digest, "path": self.artifact_path()},
                "commit": self.commit,
            }),
        };
        top["verified"] = json!(verified);
        top["bundles"] = Value::Array(bundles);
        top
    }

    fn text(&self, verified: bool) {
        let many = self.results.len() > 1;
        if self.results.is_empty() {
            eprintln!(
                "agentgate: not verified [{}]: {} holds no bundle",
                AttestationCode::NoBundle,
                self.what
            );
            return;
        }
        for (i, (input, e)) in self.results.iter().enumerate() {
            let head = if many {
                format!(
                    "bundle {} of {} ({}): ",
                    i + 1,
                    self.results.len(),
                    input.source
                )
            } else {
                String::new()
            };
            match &e.outcome {
                Ok(()) => {
                    let what = e
                        .statement
                        .as_ref()
                        .map_or("a message signature".to_string(), |s| {
                            s.predicate_type.clone()
                        });
                    outln!("{head}verified: {what}");
                }
                Err((code, _)) => outln!("{head}NOT verified [{code}]"),
            }
            match &e.signer {
                Some(Signer::Key { label, hint }) => outln!("  signer key   {hint} ({label})"),
                Some(Signer::Identity { identity, issuer }) => {
                    outln!("  signer       {identity}");
                    outln!("  issuer       {issuer}");
                }
                None => {}
            }
            outln!(
                "  artifact     sha256:{}{}",
                self.digest,
                self.artifact_path()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default()
            );
            if e.verified() {
                match (&e.commit, self.commit) {
                    (Some(c), Some(_)) => outln!("  commit       {c} (bound by the statement)"),
                    (Some(c), None) => {
                        outln!("  commit       {c} (bound by the statement; not compared: no --commit)")
                    }
                    (None, _) => outln!("  commit       not checked (the bundle binds none)"),
                }
                if let Some(t) = e.test_result {
                    outln!("  test result  {}", t.as_str());
                }
            }
            outln!("  checks:");
            for c in &e.checks {
                outln!("    {:<8} {:<17} {}", c.status.label(), c.check, c.detail);
            }
            if self.args.print_statement && e.verified() {
                if let Some(st) = &e.statement {
                    outln!("  statement:");
                    let text = serde_json::to_string_pretty(st).unwrap_or_default();
                    for line in text.lines() {
                        outln!("    {line}");
                    }
                }
            }
        }
        let passed = self.results.iter().filter(|(_, e)| e.verified()).count();
        if many {
            outln!(
                "{}: {passed} of {} bundles verified for sha256:{}",
                if verified { "verified" } else { "NOT verified" },
                self.results.len(),
                self.digest
            );
        }
        if !verified {
            for (input, e) in self.results {
                if let Err((code, error)) = &e.outcome {
                    let failed = e
                        .checks
                        .iter()
                        .find(|c| c.status == Status::Failed)
                        .map_or("", |c| c.check);
                    if many {
                        eprintln!(
                            "agentgate: not verified [{code}]: {} ({failed}): {error}",
                            input.source
                        );
                    } else {
                        eprintln!("agentgate: not verified [{code}]: {error}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_argument() {
        assert_eq!(
            artifact_digest(&format!("sha256:{}", "A".repeat(64)))
                .unwrap()
                .0,
            [0xaa; 32]
        );
        assert!(artifact_digest("sha256:abc").is_err());
    }

    #[test]
    fn a_file_is_one_bundle_or_json_lines() {
        let one = file_bundles(Path::new("b.json"), b"{\n  \"a\": 1\n}\n");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].source, "b.json");
        let many = file_bundles(Path::new("n.jsonl"), b"{\"a\":1}\n\n{\"b\":2}\nnot json\n");
        assert_eq!(
            many.iter().map(|i| i.source.as_str()).collect::<Vec<_>>(),
            ["n.jsonl line 1", "n.jsonl line 3", "n.jsonl line 4"]
        );
        assert_eq!(many[1].bytes, b"{\"b\":2}");
    }
}
