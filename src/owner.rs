//! Who owns a repository, and the command to run as that user. git reads a repository only as
//! its owner (`safe.directory`), and the hook runs as the Git server's user anyway, so an admin
//! command run as root on the server's repository says, in plain words, what to run instead
//! (`sudo -u git agentgate ...`) rather than passing on libgit2's error.

use std::ffi::OsString;
use std::path::Path;

use agentgate_git::{OpenError, Repo};

/// The user this process runs as (the owner of `/proc/self`).
#[cfg(unix)]
pub fn current_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

#[cfg(not(unix))]
pub fn current_uid() -> Option<u32> {
    None
}

/// The owner (uid, gid) of `path`.
#[cfg(unix)]
pub fn owner_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

#[cfg(not(unix))]
pub fn owner_of(_path: &Path) -> Option<(u32, u32)> {
    None
}

/// The login name of `uid` from `/etc/passwd` (users only a directory service knows are not
/// found; callers then name the uid, which sudo takes as `#UID`).
pub fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    user_name_in(&text, uid)
}

/// The name on the line of a `/etc/passwd` or `/etc/group` file whose third field is `id`.
fn user_name_in(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// The name of group `gid` from `/etc/group`.
pub fn group_name(gid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    user_name_in(&text, gid)
}

/// `uid` as `sudo -u` takes it: the name, else `'#UID'`.
fn sudo_user(uid: u32) -> String {
    user_name(uid).unwrap_or_else(|| format!("'#{uid}'"))
}

/// One word for a POSIX shell: bare when it is plainly safe, else single-quoted.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// This command line, as the user `uid` should run it: `sudo -u git agentgate install ...`.
pub fn as_user_command(uid: u32) -> String {
    as_user_command_with(uid, std::env::args_os().skip(1))
}

fn as_user_command_with(uid: u32, args: impl Iterator<Item = OsString>) -> String {
    let mut cmd = format!("sudo -u {} agentgate", sudo_user(uid));
    for a in args {
        cmd.push(' ');
        cmd.push_str(&shell_word(&a.to_string_lossy()));
    }
    cmd
}

/// What to say when `path` belongs to `owner` and this process cannot read it as itself.
pub fn run_as_owner_message(path: &Path, owner: u32) -> String {
    let me = current_uid()
        .map(|u| user_name(u).unwrap_or_else(|| format!("uid {u}")))
        .unwrap_or_else(|| "another user".into());
    let them = user_name(owner).unwrap_or_else(|| format!("uid {owner}"));
    format!(
        "{} belongs to {them}, and this runs as {me}: git reads a repository only as its owner, and the hook runs as {them} anyway. Run it as {them}:\n  {}",
        path.display(),
        as_user_command(owner)
    )
}

/// The plain-words message for an error whose cause is a repository owned by another user.
pub fn not_owner_help(e: &anyhow::Error) -> Option<String> {
    e.chain().find_map(|c| match c.downcast_ref::<OpenError>() {
        Some(OpenError::NotOwner { path, owner }) => Some(run_as_owner_message(path, *owner)),
        _ => None,
    })
}

/// Open `path` as the commands that change or certify it need, or fail with the command to run
/// as its owner.
pub fn open_repo(path: &Path) -> anyhow::Result<Repo> {
    match Repo::open(Some(path)) {
        Ok(r) => Ok(r),
        Err(OpenError::NotOwner { path, owner }) => {
            anyhow::bail!("{}", run_as_owner_message(&path, owner))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lookup() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbad\ngit:x:998:998::/srv/git:/usr/bin/git-shell\n";
        assert_eq!(user_name_in(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name_in(passwd, 998).as_deref(), Some("git"));
        assert_eq!(user_name_in(passwd, 1000), None);
        assert_eq!(user_name_in("", 0), None);
    }

    #[test]
    fn words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("--repo"), "--repo");
        assert_eq!(shell_word("/srv/git/app.git"), "/srv/git/app.git");
        assert_eq!(shell_word("/srv/my repo"), "'/srv/my repo'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        let cmd = as_user_command_with(
            4_000_000_000,
            ["install", "--repo", "/srv/a b"].iter().map(OsString::from),
        );
        assert_eq!(
            cmd,
            "sudo -u '#4000000000' agentgate install --repo '/srv/a b'"
        );
    }
}
