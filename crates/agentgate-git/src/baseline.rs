//! The baseline `agentgate install` records: the protected tips when agentgate was installed.
//! Nothing reachable from them is judged; everything newer must keep the promise.

use crate::id::ObjectId;
use crate::repo::Repo;

/// Where `agentgate install` records the baseline, relative to the repository.
pub const BASELINE_FILE: &str = "agentgate/baseline";

/// The baseline file exists but cannot be read or is not one (a guess could only weaken the
/// hook or block every push).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BaselineError(String);

impl Repo {
    /// The baseline (`$GIT_DIR/agentgate/baseline`, one `<commit> <ref>` per line), sorted.
    /// Empty when there is no file; an unreadable or malformed file is an error.
    pub fn baseline(&self) -> Result<Vec<ObjectId>, BaselineError> {
        let path = self.git_dir().join(BASELINE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(BaselineError(format!(
                    "cannot read the baseline {}: {e}",
                    path.display()
                )))
            }
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = line.split_whitespace().next().unwrap_or_default();
            out.push(ObjectId::parse(id).map_err(|_| {
                BaselineError(format!(
                    "{}:{}: not `<commit id> <ref>`",
                    path.display(),
                    i + 1
                ))
            })?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
