//! The server's promotion record: an SLSA Verification Summary Attestation (predicate
//! `https://slsa.dev/verification_summary/v1`) about one source revision, shaped as the SLSA
//! Source Track's "Source VSA". Followed: SLSA v1.2 (tag `v1.2` of slsa-framework/slsa),
//! `docs/spec/v1.2/verification_summary.md` (VSA 1.2: `verifier`, `timeVerified`,
//! `resourceUri`, `policy`, `inputAttestations`, `verificationResult`, `verifiedLevels`,
//! `slsaVersion`) and `docs/spec/v1.2/source-requirements.md`, "Source verification summary
//! attestation" (`subject.digest.gitCommit`, `subject.annotations.sourceRefs` with fully
//! qualified refs, `resourceUri` in SPDX download-location form, one `SLSA_SOURCE_LEVEL_*`
//! and `ORG_SOURCE_*` properties in `verifiedLevels`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::statement::{ResourceDescriptor, Statement, DIGEST_GIT_COMMIT};

/// The VSA predicate type (major version 1; minor versions do not change it).
pub const PREDICATE_VSA_V1: &str = "https://slsa.dev/verification_summary/v1";
/// The SLSA version whose VSA and Source Track this record follows.
pub const SLSA_VERSION: &str = "1.2";
/// The subject annotation that names the refs pointing at the revision (Source Track).
pub const ANNOTATION_SOURCE_REFS: &str = "sourceRefs";
/// `verificationResult` of every promotion record: only accepted moves get one.
pub const RESULT_PASSED: &str = "PASSED";

/// The VSA predicate, field names as VSA 1.2 spells them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationSummary {
    pub verifier: Verifier,
    pub time_verified: String,
    pub resource_uri: String,
    pub policy: ResourceDescriptor,
    #[serde(default)]
    pub input_attestations: Vec<ResourceDescriptor>,
    pub verification_result: String,
    pub verified_levels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slsa_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verifier {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// A Source VSA statement about `commit`, reached through the fully qualified `refname`.
pub fn source_vsa_statement(
    commit: &str,
    refname: &str,
    summary: &VerificationSummary,
) -> Result<Statement, serde_json::Error> {
    let subject = ResourceDescriptor {
        digest: BTreeMap::from([(DIGEST_GIT_COMMIT.to_string(), commit.to_string())]),
        annotations: Some(json!({ ANNOTATION_SOURCE_REFS: [refname] })),
        ..Default::default()
    };
    Ok(Statement::new(
        vec![subject],
        PREDICATE_VSA_V1,
        serde_json::to_value(summary)?,
    ))
}

/// The statement's predicate as a VSA, if that is its type and it parses.
pub fn summary(statement: &Statement) -> Option<Result<VerificationSummary, serde_json::Error>> {
    (statement.predicate_type == PREDICATE_VSA_V1)
        .then(|| VerificationSummary::deserialize(&statement.predicate))
}

/// The refs a subject's `sourceRefs` annotation names.
pub fn source_refs(subject: &ResourceDescriptor) -> Vec<String> {
    subject
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SOURCE_REFS))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_spells_the_fields_as_the_spec_does() {
        let s = VerificationSummary {
            verifier: Verifier {
                id: "urn:agentgate:server:git1".into(),
                version: BTreeMap::from([("agentgate".into(), "0.1.0".into())]),
            },
            time_verified: "2026-01-01T12:00:00.000Z".into(),
            resource_uri: "git+file:///srv/app.git@refs/heads/main".into(),
            policy: ResourceDescriptor {
                uri: Some("file:///etc/agentgate/policy.toml".into()),
                digest: BTreeMap::from([("sha256".into(), "ab".repeat(32))]),
                ..Default::default()
            },
            input_attestations: vec![ResourceDescriptor::named("n", "sha256", "cd".repeat(32))],
            verification_result: RESULT_PASSED.into(),
            verified_levels: vec!["SLSA_SOURCE_LEVEL_1".into()],
            slsa_version: Some(SLSA_VERSION.into()),
        };
        let st = source_vsa_statement(&"1".repeat(40), "refs/heads/main", &s).unwrap();
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["predicateType"], PREDICATE_VSA_V1);
        assert_eq!(v["subject"][0]["digest"]["gitCommit"], "1".repeat(40));
        assert_eq!(
            v["subject"][0]["annotations"]["sourceRefs"][0],
            "refs/heads/main"
        );
        for k in [
            "verifier",
            "timeVerified",
            "resourceUri",
            "policy",
            "inputAttestations",
            "verificationResult",
            "verifiedLevels",
            "slsaVersion",
        ] {
            assert!(v["predicate"].get(k).is_some(), "{k}");
        }
        assert_eq!(summary(&st).unwrap().unwrap(), s);
        assert_eq!(
            source_refs(st.subject.first().unwrap()),
            vec!["refs/heads/main"]
        );
    }
}
