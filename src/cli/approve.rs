//! `agentgate approve` and `agentgate break-glass`: the statements people sign. An approval
//! says a reviewer looked at one commit (policy: `[[approver]]`, path rules); a break-glass
//! override admits one exact ref update that the hook would refuse, until it expires (policy:
//! `[break_glass]`). Both are published like the gate's attestations: a line of the git note on
//! the commit, and/or a file.

use std::path::PathBuf;
use std::process::ExitCode;

use agentgate_formats::approval::{
    approval_statement, break_glass_statement, commit_object_sha256, Approval, BreakGlass, Person,
    APPROVAL_RESULT,
};
use agentgate_git::{ObjectId, Repo};
use agentgate_policy::config::{parse_duration, DEFAULT_NOTES_REF};
use anyhow::{bail, Context as _};
use chrono::{SubsecRound as _, Utc};
use serde_json::json;

use crate::cli::sign::SigningArgs;
use crate::signing::{open_repo, publish_one, repo_uri, resolve_commit, SignedBy};
use crate::terminal::outln;

const APPROVE_EXAMPLE: &str = "\
Example:
  agentgate approve --key ~/.agentgate/alice.key --commit 3f2a9c1 \\
      --comment 'workflow change reviewed' --note
  git push origin refs/notes/agentgate

Signs an approval (in-toto statement, predicate https://example.invalid/agentgate/approval/v0.1)
of exactly this commit and its tree. It counts for that commit only, never for its ancestors
or descendants (with the policy's [approvals] bind = \"tree\": also for a commit with the same
tree). The reviewer is your git identity (user.name, user.email) unless given.
Exit codes: 0 signed, 2 error.";

const BREAK_GLASS_EXAMPLE: &str = "\
Example (main would be refused moving from 1a2b3c4 to 5d6e7f8):
  agentgate break-glass --key /secure/break-glass.key --ref refs/heads/main \\
      --old 1a2b3c4 --new 5d6e7f8 --expires 2h --note \\
      --reason 'INC-4711: revert the broken deploy now'
  git push origin refs/notes/agentgate
  git push origin 5d6e7f8:refs/heads/main

Signs an override of exactly this ref update (ref, old and new ids), valid until --expires.
The hook admits the update with code [break-glass], says so to the pusher, records it in the
audit log, and `agentgate audit verify` lists every use. Only refusals of what commits need
(attestations, trailer policies, path rules, approvals) and of rewinds can be overridden;
never a deletion, an unreadable object or a rewrite of the notes.
Exit codes: 0 signed, 2 error.";

#[derive(Debug, clap::Args)]
#[command(after_help = APPROVE_EXAMPLE)]
pub struct ApproveArgs {
    // The approver's key (an [[approver]] of the policy), or --keyless.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Repository (any path inside it).
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The commit approved (any revision).
    #[arg(long)]
    pub commit: String,
    /// A comment recorded in the approval.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Reviewer name [default: git config user.name].
    #[arg(long, value_name = "NAME")]
    pub reviewer_name: Option<String>,
    /// Reviewer email [default: git config user.email].
    #[arg(long, value_name = "EMAIL")]
    pub reviewer_email: Option<String>,
    /// Append the approval to the git note on the commit.
    #[arg(long)]
    pub note: bool,
    /// Notes ref used by --note.
    #[arg(long, value_name = "REF", default_value = DEFAULT_NOTES_REF)]
    pub notes_ref: String,
    /// Write DIR/approval.sigstore.json.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = BREAK_GLASS_EXAMPLE)]
pub struct BreakGlassArgs {
    // The break-glass key (the policy's [break_glass]), or --keyless.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Repository (any path inside it) that holds the new commit.
    #[arg(long, default_value = ".")]
    pub repo: PathBuf,
    /// The ref, as the push names it (refs/heads/main).
    #[arg(long = "ref", value_name = "REF")]
    pub refname: String,
    /// Its value on the server now (a revision, or 0 when the push creates the ref).
    #[arg(long)]
    pub old: String,
    /// The value the push gives it (a revision).
    #[arg(long)]
    pub new: String,
    /// Why: recorded, shown to the pusher and in every audit view.
    #[arg(long)]
    pub reason: String,
    /// How long the override is valid (at most the policy's max_validity, 24h by default).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub expires: String,
    /// Your name [default: git config user.name].
    #[arg(long, value_name = "NAME")]
    pub issuer_name: Option<String>,
    /// Your email [default: git config user.email].
    #[arg(long, value_name = "EMAIL")]
    pub issuer_email: Option<String>,
    /// Append the override to the git note on the new commit.
    #[arg(long)]
    pub note: bool,
    /// Notes ref used by --note.
    #[arg(long, value_name = "REF", default_value = DEFAULT_NOTES_REF)]
    pub notes_ref: String,
    /// Write DIR/break-glass.sigstore.json.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print a JSON summary instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A person: the given name and email, else the repository's git identity.
fn person(repo: &Repo, name: Option<&str>, email: Option<&str>) -> anyhow::Result<Person> {
    let get = |given: Option<&str>, key: &str| -> anyhow::Result<String> {
        match given {
            Some(v) => Ok(v.to_string()),
            None => repo
                .config_value(key)?
                .filter(|v| !v.is_empty())
                .with_context(|| format!("git config {key} is not set: pass it explicitly")),
        }
    };
    Ok(Person {
        name: get(name, "user.name")?,
        email: get(email, "user.email")?,
    })
}

/// The commit object's SHA-256 as git hashes it (a subject digest a Sigstore log can name).
fn object_sha256(repo: &Repo, id: &ObjectId) -> anyhow::Result<String> {
    Ok(commit_object_sha256(&repo.read_raw(id)?))
}

pub fn approve(args: &ApproveArgs) -> anyhow::Result<ExitCode> {
    let signer = args.signing.signer()?;
    let repo = open_repo(&args.repo)?;
    let commit = resolve_commit(&repo, &args.commit)?;
    let approval = Approval {
        result: APPROVAL_RESULT.into(),
        reviewer: person(
            &repo,
            args.reviewer_name.as_deref(),
            args.reviewer_email.as_deref(),
        )?,
        timestamp: Utc::now().trunc_subsecs(0),
        comment: args.comment.clone(),
        repository: Some(repo_uri(&repo)?),
    };
    let statement = approval_statement(
        commit.id.as_str(),
        commit.tree.as_str(),
        &object_sha256(&repo, &commit.id)?,
        &approval,
    );
    let (bundle, by) = signer.sign_one(&statement)?;
    let written = publish_one(
        &repo,
        &commit.id,
        &bundle,
        "approval.sigstore.json",
        args.out.as_deref(),
        args.note.then_some(args.notes_ref.as_str()),
    )?;
    let what = format!(
        "approved commit {} (tree {}) as {} <{}>",
        commit.id, commit.tree, approval.reviewer.name, approval.reviewer.email
    );
    report(
        args.json,
        &bundle,
        &by,
        &written,
        args.note,
        &args.notes_ref,
        &what,
        args.out.is_none(),
    )
}

pub fn break_glass(args: &BreakGlassArgs) -> anyhow::Result<ExitCode> {
    let validity = parse_duration(&args.expires).map_err(anyhow::Error::msg)?;
    if !args.refname.starts_with("refs/") {
        bail!("--ref must be a full ref name like refs/heads/main");
    }
    let signer = args.signing.signer()?;
    let repo = open_repo(&args.repo)?;
    let hash_hex = repo.hash_bytes() * 2;
    let old = if args.old.chars().all(|c| c == '0') {
        ObjectId::zero(repo.hash_bytes())
    } else {
        repo.resolve(&args.old)
            .with_context(|| format!("cannot resolve --old {:?}", args.old))?
    };
    let new = repo
        .resolve(&args.new)
        .with_context(|| format!("cannot resolve --new {:?}", args.new))?;
    if old.as_str().len() != hash_hex || new.as_str().len() != hash_hex {
        bail!("--old and --new must name objects of this repository");
    }
    let new_commit = resolve_commit(&repo, new.as_str())?;
    let now = Utc::now().trunc_subsecs(0);
    let bg = BreakGlass {
        refname: args.refname.clone(),
        old: old.to_string(),
        new: new.to_string(),
        reason: args.reason.clone(),
        issuer: person(
            &repo,
            args.issuer_name.as_deref(),
            args.issuer_email.as_deref(),
        )?,
        issued_at: now,
        expires: now + chrono::Duration::from_std(validity)?,
    };
    let statement = break_glass_statement(
        new_commit.id.as_str(),
        &object_sha256(&repo, &new_commit.id)?,
        &bg,
    );
    let (bundle, by) = signer.sign_one(&statement)?;
    let written = publish_one(
        &repo,
        &new_commit.id,
        &bundle,
        "break-glass.sigstore.json",
        args.out.as_deref(),
        args.note.then_some(args.notes_ref.as_str()),
    )?;
    let what = format!(
        "BREAK-GLASS override of {} {}..{} until {} ({})",
        bg.refname,
        old.short(),
        new.short(),
        bg.expires,
        bg.reason
    );
    report(
        args.json,
        &bundle,
        &by,
        &written,
        args.note,
        &args.notes_ref,
        &what,
        args.out.is_none(),
    )
}

/// Tell the caller: a JSON summary, the bundle itself (neither --out nor --note), or what was
/// signed and where it went.
#[allow(clippy::too_many_arguments)]
fn report(
    json: bool,
    bundle: &str,
    by: &SignedBy,
    written: &[String],
    note: bool,
    notes_ref: &str,
    what: &str,
    no_out: bool,
) -> anyhow::Result<ExitCode> {
    if json {
        let mut summary =
            json!({"signed": what, "files": written, "note": note.then_some(notes_ref)});
        by.add_to(&mut summary);
        if no_out && !note {
            summary["bundle"] = serde_json::from_str::<serde_json::Value>(bundle)?;
        }
        outln!("{summary}");
    } else if no_out && !note {
        outln!("{bundle}");
    } else {
        outln!("{what}, signed with {}", by.describe());
        for f in written {
            outln!("  wrote {f}");
        }
        if note {
            outln!(
                "  appended to the note under {notes_ref} (push it: git push origin {notes_ref})"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
