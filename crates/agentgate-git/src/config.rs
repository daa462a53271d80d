//! The repository's configuration exactly as git reads it: every file git reads, in git's
//! order, read once per run.

use std::path::{Path, PathBuf};

use crate::backend::Libgit2Error;
use crate::repo::{Backend, Repo};

/// One configuration variable as `git config --list -z` prints it: the name (section and key
/// lower-cased) and the value's bytes (None for a variable without `=`).
pub type ConfigEntry = (String, Option<Vec<u8>>);

/// The configuration could not be read; callers that choose a policy or parse trailers by it
/// must not guess.
#[derive(Debug, Clone, thiserror::Error)]
#[error("running git config --list: {0}")]
pub struct ConfigError(String);

impl Repo {
    /// The repository's configuration exactly as git reads it (`git config --list -z`, or the
    /// same files read in-process where that is equivalent: [`Repo::config_by_libgit2`]). Read
    /// once.
    /// An unreadable configuration is an error: callers that choose a policy or parse trailers
    /// by it must not guess.
    pub fn config_entries(&self) -> Result<&[ConfigEntry], ConfigError> {
        let entries = self.config.get_or_init(|| {
            if let Backend::Git2(_) = &self.backend {
                match self.config_by_libgit2() {
                    Ok(Some(entries)) => return Ok(entries),
                    Ok(None) => {}
                    // libgit2's message without its class and code numbers.
                    Err(e) => return Err(Libgit2Error::from(e).to_string()),
                }
            }
            let out = self
                .run(&["config", "--list", "-z"])
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "git config --list: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            // "name\nvalue\0", or "name\0" for a variable without a value.
            Ok(out
                .stdout
                .split(|&b| b == 0)
                .filter(|e| !e.is_empty())
                .map(|e| match e.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let (name, value) = e.split_at(i);
                        (
                            String::from_utf8_lossy(name).into_owned(),
                            Some(value.get(1..).unwrap_or_default().to_vec()),
                        )
                    }
                    None => (String::from_utf8_lossy(e).into_owned(), None),
                })
                .collect())
        });
        entries.as_deref().map_err(|e| ConfigError(e.clone()))
    }

    /// The configuration read in-process, where libgit2 reads exactly the files git reads: the
    /// system file (`/etc/gitconfig`, or `$GIT_CONFIG_SYSTEM`; none with `$GIT_CONFIG_NOSYSTEM`),
    /// the global ones (`$GIT_CONFIG_GLOBAL`, else `~/.gitconfig` and the XDG file) and the
    /// repository's, in git's order. None where that is not enough and `git config` must answer
    /// (it costs a process, about 2 ms): `-c` options passed down by the server
    /// (`GIT_CONFIG_PARAMETERS`, `GIT_CONFIG_COUNT`) or any `include`/`includeIf`, whose
    /// conditions libgit2 does not all know.
    fn config_by_libgit2(&self) -> Result<Option<Vec<ConfigEntry>>, git2::Error> {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        if env("GIT_CONFIG_PARAMETERS").is_some() || env("GIT_CONFIG_COUNT").is_some() {
            return Ok(None);
        }
        let mut cfg = git2::Config::new()?;
        let mut add = |path: PathBuf, level| -> Result<(), git2::Error> {
            if path.is_file() || path == Path::new("/dev/null") {
                cfg.add_file(&path, level, false)?;
            }
            Ok(())
        };
        let truthy = |v: std::ffi::OsString| {
            !matches!(
                v.to_str().map(str::to_ascii_lowercase).as_deref(),
                Some("0" | "false" | "no" | "off")
            )
        };
        if !env("GIT_CONFIG_NOSYSTEM").is_some_and(truthy) {
            let system = env("GIT_CONFIG_SYSTEM")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/etc/gitconfig"));
            add(system, git2::ConfigLevel::System)?;
        }
        match env("GIT_CONFIG_GLOBAL") {
            Some(g) => add(PathBuf::from(g), git2::ConfigLevel::Global)?,
            None => {
                let home = env("HOME").map(PathBuf::from);
                let xdg = env("XDG_CONFIG_HOME")
                    .map(PathBuf::from)
                    .or_else(|| home.as_ref().map(|h| h.join(".config")));
                if let Some(x) = xdg {
                    add(x.join("git/config"), git2::ConfigLevel::XDG)?;
                }
                if let Some(h) = home {
                    add(h.join(".gitconfig"), git2::ConfigLevel::Global)?;
                }
            }
        }
        add(self.git_dir.join("config"), git2::ConfigLevel::Local)?;
        let mut out = Vec::new();
        let mut entries = cfg.entries(None)?;
        while let Some(e) = entries.next() {
            let e = e?;
            let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
            if name.starts_with("include.") || name.starts_with("includeif.") {
                return Ok(None);
            }
            out.push((name, e.has_value().then(|| e.value_bytes().to_vec())));
        }
        Ok(Some(out))
    }

    /// A config value as git reads it (the last one wins), as raw bytes: None when unset.
    pub fn config_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, ConfigError> {
        let key = key.to_ascii_lowercase();
        Ok(self
            .config_entries()?
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone().unwrap_or_default()))
    }

    /// A config value as text (see [`Repo::config_bytes`]).
    pub fn config_value(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .config_bytes(key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

/// Every variable of `cfg`, in its order.
fn entries(cfg: &git2::Config) -> Result<Vec<ConfigEntry>, git2::Error> {
    let mut out = Vec::new();
    let mut entries = cfg.entries(None)?;
    while let Some(e) = entries.next() {
        let e = e?;
        let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
        out.push((name, e.has_value().then(|| e.value_bytes().to_vec())));
    }
    Ok(out)
}

/// The variables of one configuration file, in file order (no includes followed): for tests
/// that compare with git on one repository's own settings.
pub fn config_file_entries(path: &Path) -> Result<Vec<ConfigEntry>, ConfigError> {
    git2::Config::open(path)
        .and_then(|cfg| entries(&cfg))
        .map_err(|e| ConfigError(Libgit2Error::from(e).to_string()))
}
