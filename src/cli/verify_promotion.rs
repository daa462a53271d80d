//! `agentgate verify --promotion REV --key server.pub`: check the server's signed promotion
//! records on exactly one commit (agentgate-policy's `promotion::check_promotions`).

use std::process::ExitCode;

use agentgate_formats::PublicKey;
use agentgate_policy::promotion::check_promotions;
use anyhow::Context as _;
use serde_json::json;

use super::verify::VerifyArgs;
use crate::exit;
use crate::signing::{open_repo, resolve_commit};
use crate::terminal::outln;

pub(super) fn verify_promotion(args: &VerifyArgs, rev: &str) -> anyhow::Result<ExitCode> {
    if args.keys.is_empty() {
        anyhow::bail!("--promotion needs --key: the server's public key");
    }
    let mut keys = Vec::new();
    for path in &args.keys {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the public key {}", path.display()))?;
        keys.push(
            PublicKey::from_pem(&text)
                .with_context(|| format!("cannot load the public key {}", path.display()))?,
        );
    }
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, rev)?.id;
    let checked = check_promotions(&repo, &args.promotions_ref, &commit, &keys)
        .with_context(|| format!("reading {}", args.promotions_ref))?;
    let wanted = |refs: &[String]| match &args.refname {
        Some(r) => refs.iter().any(|x| x == r),
        None => true,
    };
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|c| c.promotion.as_ref())
        .filter(|p| wanted(&p.refs))
        .collect();
    let ok = !valid.is_empty();
    if args.json {
        outln!(
            "{}",
            json!({
                "verified": ok,
                "commit": commit.as_str(),
                "promotionsRef": args.promotions_ref,
                "records": checked,
            })
        );
    } else {
        for c in &checked {
            match (&c.promotion, &c.error) {
                (Some(p), _) => {
                    let s = &p.summary;
                    outln!("promotion record {} on {}", c.line, commit.short());
                    outln!("  refs         {}", p.refs.join(", "));
                    outln!("  verifier     {} (key {})", s.verifier.id, p.key_hint);
                    outln!("  verified at  {}", s.time_verified);
                    outln!("  resource     {}", s.resource_uri);
                    outln!(
                        "  policy       {} sha256:{}",
                        s.policy.uri.as_deref().unwrap_or("-"),
                        s.policy.digest.get("sha256").map_or("-", String::as_str)
                    );
                    outln!("  result       {}", s.verification_result);
                    outln!("  levels       {}", s.verified_levels.join(", "));
                    outln!(
                        "  inputs       {} attestation(s)",
                        s.input_attestations.len()
                    );
                }
                (None, Some(e)) => outln!("line {}: not a valid promotion record: {e}", c.line),
                (None, None) => {}
            }
        }
        if !ok {
            eprintln!(
                "agentgate: not verified: no valid promotion record{} on {} under {}",
                args.refname
                    .as_deref()
                    .map(|r| format!(" for {r}"))
                    .unwrap_or_default(),
                commit,
                args.promotions_ref
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::REFUSED)
    })
}
