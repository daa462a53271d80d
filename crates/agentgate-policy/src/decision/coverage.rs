//! Which agent commits an attestation covers: each commit's verdict asked once
//! ([`AttestCache`]), and coverage under `scope = "tip"` ([`Coverage`]).

use std::collections::HashMap;

use agentgate_git::walk::Entering;
use agentgate_git::Oid;

use crate::attestations::{AttestationReport, AttestationSource, AttestationsError, CommitRef};

/// Attestation verdicts of one decision, each commit checked at most once.
pub(super) struct AttestCache<'s> {
    source: &'s dyn AttestationSource,
    verdicts: HashMap<Oid, bool>,
    reports: Vec<AttestationReport>,
}

impl<'s> AttestCache<'s> {
    pub(super) fn new(source: &'s dyn AttestationSource) -> Self {
        AttestCache {
            source,
            verdicts: HashMap::new(),
            reports: Vec::new(),
        }
    }

    pub(super) fn admitted(&mut self, id: &Oid, tree: &Oid) -> Result<bool, AttestationsError> {
        if let Some(v) = self.verdicts.get(id) {
            return Ok(*v);
        }
        let c = CommitRef {
            id: id.to_object_id(),
            tree: tree.to_object_id(),
        };
        let v = if self.source.may_have(&c)? {
            let verdict = self.source.check(&c)?;
            self.reports.extend(verdict.examined);
            verdict.admitted
        } else {
            false
        };
        self.verdicts.insert(*id, v);
        Ok(v)
    }

    pub(super) fn into_reports(self) -> Vec<AttestationReport> {
        self.reports
    }
}

/// Coverage under `scope = "tip"`, the promise's own definition: an agent commit A is covered
/// when an attested commit C lies between it and the new tip (A reachable from C). Only commits
/// of the walk need deciding: everything below a known-covered or baseline commit already keeps
/// the promise.
///
/// Algorithm: visit the walked commits children-first (Kahn's order over the walk's own graph);
/// a commit already known to lie under an attested one is skipped without looking at its
/// attestations; any other commit that may have an attestation is verified, and if admitted,
/// everything below it in the walk is marked covered. What is left uncovered and is an agent
/// commit is refused. Each commit is visited once and verified at most once, and for a typical
/// push the tip comes first: if it is attested, nothing else is verified.
pub(super) struct Coverage {
    /// For each walked commit, the indexes of its parents inside the walk.
    parents: Vec<Vec<usize>>,
}

impl Coverage {
    pub(super) fn new<T>(commits: &[Entering<T>]) -> Coverage {
        let index: HashMap<Oid, usize> =
            commits.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
        Coverage {
            parents: commits
                .iter()
                .map(|c| {
                    c.parents
                        .iter()
                        .filter_map(|p| index.get(p).copied())
                        .collect()
                })
                .collect(),
        }
    }

    /// Indexes of the agent commits no attested commit of the walk covers.
    // Every index here is a position in `commits` (`parents` is built from it, `children`,
    // `covered` and `ready` have its length), so no index can be out of bounds; `get` at each
    // step would only hide Kahn's algorithm.
    #[allow(clippy::indexing_slicing)]
    pub(super) fn uncovered<T>(
        &self,
        commits: &[Entering<T>],
        is_agent: impl Fn(&Entering<T>) -> bool,
        cache: &mut AttestCache<'_>,
    ) -> Result<Vec<usize>, AttestationsError> {
        let n = commits.len();
        let mut children = vec![0usize; n];
        for ps in &self.parents {
            for &p in ps {
                children[p] += 1;
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| children[i] == 0).collect();
        // Walk order is newest first: keep it where the graph allows (the tip first).
        ready.reverse();
        let mut covered = vec![false; n];
        let mut uncovered = Vec::new();
        while let Some(i) = ready.pop() {
            for &p in &self.parents[i] {
                children[p] -= 1;
                if children[p] == 0 {
                    ready.push(p);
                }
            }
            if covered[i] {
                continue;
            }
            let c = &commits[i];
            if cache.admitted(&c.id, &c.tree)? {
                let mut stack = vec![i];
                while let Some(j) = stack.pop() {
                    if !covered[j] {
                        covered[j] = true;
                        stack.extend(self.parents[j].iter().copied());
                    }
                }
            } else if is_agent(c) {
                uncovered.push(i);
            }
        }
        uncovered.sort_unstable();
        Ok(uncovered)
    }
}
