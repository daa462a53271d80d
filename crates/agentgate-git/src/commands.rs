//! The git commands the faces need besides reading a repository: the gate's checkout of one
//! commit, the version doctor checks, the hooks directory install writes to. Here so that no
//! other crate builds a git command line.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use crate::git_command;

/// Why the gate's checkout failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("cannot run git")]
    Spawn(#[source] std::io::Error),
    #[error("git {args} failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("the checkout is at {head}, not {commit}")]
    WrongCommit { head: String, commit: String },
}

/// Run git for the gate itself (not the build): the caller's environment minus anything that
/// would redirect it to another repository.
fn gate_git(args: &[&OsStr]) -> Result<String, CheckoutError> {
    let out = git_command()
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_OBJECT_DIRECTORY")
        .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
        .stdin(Stdio::null())
        .output()
        .map_err(CheckoutError::Spawn)?;
    if !out.status.success() {
        return Err(CheckoutError::Failed {
            args: args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A fresh checkout of exactly `commit` at `dir`: a `--shared` clone of `git_dir` (objects
/// borrowed through alternates, nothing copied) with a detached HEAD. The caller's working
/// tree, index and refs are never read or written, so uncommitted changes cannot reach the
/// build, and the build cannot touch the caller's repository.
pub fn checkout_detached(git_dir: &Path, commit: &str, dir: &Path) -> Result<(), CheckoutError> {
    gate_git(&[
        "clone".as_ref(),
        "--quiet".as_ref(),
        "--shared".as_ref(),
        "--no-checkout".as_ref(),
        git_dir.as_os_str(),
        dir.as_os_str(),
    ])?;
    gate_git(&[
        "-C".as_ref(),
        dir.as_os_str(),
        "-c".as_ref(),
        "advice.detachedHead=false".as_ref(),
        // Hooks from the caller's template directory have no business in the gate's checkout.
        "-c".as_ref(),
        "core.hooksPath=/dev/null".as_ref(),
        "checkout".as_ref(),
        "--quiet".as_ref(),
        "--detach".as_ref(),
        commit.as_ref(),
    ])?;
    let head = gate_git(&[
        "-C".as_ref(),
        dir.as_os_str(),
        "rev-parse".as_ref(),
        "HEAD".as_ref(),
    ])?;
    if head != commit {
        return Err(CheckoutError::WrongCommit {
            head,
            commit: commit.to_string(),
        });
    }
    Ok(())
}

/// Why `git --version` gave no version line.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    #[error("`git --version` failed: {0}")]
    Failed(String),
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
}

/// `git --version` as the hook's git answers it (`git version 2.47.3`).
pub fn version() -> Result<String, VersionError> {
    let out = git_command()
        .arg("--version")
        .output()
        .map_err(VersionError::Spawn)?;
    if !out.status.success() {
        return Err(VersionError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The repository's `core.hooksPath` as git reads it for `repo` (None when unset, empty or
/// unreadable).
pub fn hooks_path_setting(repo: &Path) -> Option<String> {
    git_command()
        .arg("-C")
        .arg(repo)
        .args(["config", "--get", "core.hooksPath"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
        .filter(|s| !s.is_empty())
}
