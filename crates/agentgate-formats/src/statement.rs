//! in-toto Statement v1 and the two predicates the gate signs (SLSA Provenance v1 and test result
//! v0.1): what the attestation says about a commit and its artifacts. Also the streaming artifact
//! hash and the JUnit reader that feed them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `_type` of an in-toto Statement v0.1 (`cosign attest-blob` writes it); `verify` reads it,
/// agentgate never signs it.
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// SLSA buildType of attestations made by `agentgate gate`.
pub const BUILD_TYPE_GATE_V1: &str = "https://example.invalid/agentgate/buildtypes/gate/v1";
/// SLSA buildType of attestations made by `agentgate sign`.
pub const BUILD_TYPE_SIGN_V1: &str = "https://example.invalid/agentgate/buildtypes/sign/v1";
/// SLSA Provenance v1 predicate type.
pub const PREDICATE_SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// in-toto test-result v0.1 predicate type.
pub const PREDICATE_TEST_RESULT_V01: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// Media type of a signed in-toto statement; the test result names its provenance with it.
pub const MEDIA_TYPE_INTOTO: &str = "application/vnd.in-toto+json";
/// `name` of the test result's `configuration` entry that names its provenance.
pub const PROVENANCE_BINDING_NAME: &str = "provenance";

/// Digest-set keys (in-toto digest names).
pub const DIGEST_SHA256: &str = "sha256";
pub const DIGEST_GIT_COMMIT: &str = "gitCommit";
pub const DIGEST_GIT_TREE: &str = "gitTree";

/// An in-toto Statement v1. The predicate stays JSON: typed views are parsed on demand, so
/// statements from other signers with predicates we do not know still verify.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    #[serde(rename = "_type")]
    pub type_: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    #[serde(default)]
    pub predicate: Value,
}

impl Statement {
    pub fn new(subject: Vec<ResourceDescriptor>, predicate_type: &str, predicate: Value) -> Self {
        Statement {
            type_: STATEMENT_V1.to_string(),
            subject,
            predicate_type: predicate_type.to_string(),
            predicate,
        }
    }

    /// Subjects whose digest set holds `algorithm` = `value` (hex compared case-insensitively).
    pub fn subjects_with_digest<'a>(
        &'a self,
        algorithm: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a ResourceDescriptor> + 'a {
        self.subject
            .iter()
            .filter(move |s| s.has_digest(algorithm, value))
    }

    /// The predicate as SLSA Provenance v1, if that is its type and it parses.
    pub fn provenance(&self) -> Option<Result<Provenance, serde_json::Error>> {
        (self.predicate_type == PREDICATE_SLSA_PROVENANCE_V1)
            .then(|| Provenance::deserialize(&self.predicate))
    }

    /// The predicate as a test result v0.1, if that is its type and it parses.
    pub fn test_result(&self) -> Option<Result<TestResult, serde_json::Error>> {
        (self.predicate_type == PREDICATE_TEST_RESULT_V01)
            .then(|| TestResult::deserialize(&self.predicate))
    }

    /// The bytes that are signed (the DSSE payload). Every signer serializes through here, so
    /// a test result can name its provenance by the SHA-256 of exactly these bytes.
    pub fn payload(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// An in-toto ResourceDescriptor (subjects, dependencies, byproducts, configuration).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

impl ResourceDescriptor {
    pub fn named(name: impl Into<String>, algorithm: &str, value: impl Into<String>) -> Self {
        ResourceDescriptor {
            name: Some(name.into()),
            digest: BTreeMap::from([(algorithm.to_string(), value.into())]),
            ..Default::default()
        }
    }

    pub fn has_digest(&self, algorithm: &str, value: &str) -> bool {
        self.digest
            .get(algorithm)
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    }
}

/// SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BuildMetadata>,
    /// The gate adds captured stdout/stderr digests here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    pub id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub builder_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_on: Option<DateTime<Utc>>,
}

/// `result` of a test-result predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TestOutcome {
    Passed,
    Warned,
    Failed,
}

impl TestOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TestOutcome::Passed => "PASSED",
            TestOutcome::Warned => "WARNED",
            TestOutcome::Failed => "FAILED",
        }
    }
}

/// in-toto test-result v0.1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub result: TestOutcome,
    pub configuration: Vec<ResourceDescriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passed_tests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warned_tests: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_tests: Vec<String>,
}

/// The source that was built: repository URI, commit and tree ids (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub uri: String,
    pub commit: String,
    pub tree: String,
}

/// A hashed artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    pub name: String,
    pub sha256: String,
}

impl Artifact {
    fn subject(&self) -> ResourceDescriptor {
        ResourceDescriptor::named(&self.name, DIGEST_SHA256, &self.sha256)
    }
}

/// Everything in a provenance predicate except the source and subjects; the gate fills in more
/// (commands, exit codes, tool versions in `internal_parameters`, logs in `byproducts`).
#[derive(Debug, Clone)]
pub struct ProvenanceParams {
    pub builder_id: String,
    pub build_type: String,
    pub external_parameters: Value,
    pub internal_parameters: Option<Value>,
    pub builder_version: BTreeMap<String, String>,
    /// Tools the build ran with (the gate: git and each command's program, with versions).
    pub builder_dependencies: Vec<ResourceDescriptor>,
    pub invocation_id: Option<String>,
    pub started_on: DateTime<Utc>,
    pub finished_on: DateTime<Utc>,
    pub byproducts: Vec<ResourceDescriptor>,
}

/// SLSA Provenance v1 statement: subjects are the artifacts, the source commit and tree are the
/// resolved dependency. `externalParameters.source.uri` and `.commit` are always set from
/// `source`: they declare which dependency is the code that was built (the hook binds a
/// provenance to that commit only, never to another dependency that names a commit).
pub fn provenance_statement(
    source: &Source,
    artifacts: &[Artifact],
    mut params: ProvenanceParams,
) -> Statement {
    if !params.external_parameters.is_object() {
        params.external_parameters = Value::Object(Default::default());
    }
    if let Value::Object(ext) = &mut params.external_parameters {
        let declared = ext
            .entry("source")
            .or_insert_with(|| Value::Object(Default::default()));
        if !declared.is_object() {
            *declared = Value::Object(Default::default());
        }
        if let Value::Object(declared) = declared {
            declared.insert("uri".into(), Value::String(source.uri.clone()));
            declared.insert("commit".into(), Value::String(source.commit.clone()));
        }
    }
    let dependency = ResourceDescriptor {
        uri: Some(source.uri.clone()),
        digest: BTreeMap::from([
            (DIGEST_GIT_COMMIT.to_string(), source.commit.clone()),
            (DIGEST_GIT_TREE.to_string(), source.tree.clone()),
        ]),
        ..Default::default()
    };
    let predicate = Provenance {
        build_definition: BuildDefinition {
            build_type: params.build_type,
            external_parameters: params.external_parameters,
            internal_parameters: params.internal_parameters,
            resolved_dependencies: vec![dependency],
        },
        run_details: RunDetails {
            builder: Builder {
                id: params.builder_id,
                version: params.builder_version,
                builder_dependencies: params.builder_dependencies,
            },
            metadata: Some(BuildMetadata {
                invocation_id: params.invocation_id,
                started_on: Some(params.started_on),
                finished_on: Some(params.finished_on),
            }),
            byproducts: params.byproducts,
        },
    };
    Statement::new(
        artifacts.iter().map(Artifact::subject).collect(),
        PREDICATE_SLSA_PROVENANCE_V1,
        serde_json::to_value(predicate).unwrap_or(Value::Null),
    )
}

/// Test-result statement: subjects are the commit, the tree and the artifacts, so the result is
/// bound to exactly the tested code. Its `configuration` also names `provenance`, the
/// provenance of the same run, by the SHA-256 of its signed bytes (and its `invocationId`, for
/// people): the hook counts a test result only next to that provenance, from the same signer,
/// valid in every respect (age included).
pub fn test_result_statement(
    source: &Source,
    artifacts: &[Artifact],
    result: &TestResult,
    provenance: &Statement,
) -> Result<Statement, serde_json::Error> {
    let mut subject = vec![
        ResourceDescriptor::named(&source.uri, DIGEST_GIT_COMMIT, &source.commit),
        ResourceDescriptor::named(&source.uri, DIGEST_GIT_TREE, &source.tree),
    ];
    subject.extend(artifacts.iter().map(Artifact::subject));
    let mut result = result.clone();
    result.configuration.push(provenance_binding(provenance)?);
    Ok(Statement::new(
        subject,
        PREDICATE_TEST_RESULT_V01,
        serde_json::to_value(result)?,
    ))
}

/// The `configuration` entry of a test result that names the provenance of its run.
pub fn provenance_binding(provenance: &Statement) -> Result<ResourceDescriptor, serde_json::Error> {
    let digest = hex::encode(sha2::Sha256::digest(provenance.payload()?));
    let invocation = provenance
        .provenance()
        .and_then(Result::ok)
        .and_then(|p| p.run_details.metadata)
        .and_then(|m| m.invocation_id);
    let mut annotations = serde_json::json!({"predicateType": provenance.predicate_type});
    if let (Some(id), Some(map)) = (invocation, annotations.as_object_mut()) {
        map.insert("invocationId".into(), Value::String(id));
    }
    Ok(ResourceDescriptor {
        media_type: Some(MEDIA_TYPE_INTOTO.to_string()),
        annotations: Some(annotations),
        ..ResourceDescriptor::named(PROVENANCE_BINDING_NAME, DIGEST_SHA256, digest)
    })
}

/// The provenance digests (hex SHA-256 of the signed statement) a test result names in its
/// `configuration`: entries of media type in-toto whose `predicateType` annotation is SLSA
/// provenance v1.
pub fn bound_provenances(result: &TestResult) -> Vec<String> {
    result
        .configuration
        .iter()
        .filter(|d| d.media_type.as_deref() == Some(MEDIA_TYPE_INTOTO))
        .filter(|d| {
            d.annotations
                .as_ref()
                .and_then(|a| a.get("predicateType"))
                .and_then(Value::as_str)
                == Some(PREDICATE_SLSA_PROVENANCE_V1)
        })
        .filter_map(|d| d.digest.get(DIGEST_SHA256))
        .map(|h| h.to_ascii_lowercase())
        .collect()
}

/// Streaming SHA-256 of a reader, hex. Large reads keep the hash core busy; sha2 picks SHA-NI
/// by itself at run time.
pub fn sha256_reader(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(buf.get(..n).ok_or_else(|| {
            std::io::Error::other("the reader claims more bytes than it had room for")
        })?);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Streaming SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_reader(std::fs::File::open(path)?)
}

/// Test names from a JUnit XML report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JunitSummary {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    pub skipped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed JUnit XML at byte {position}: {message}")]
pub struct JunitError {
    pub position: u64,
    pub message: String,
}

/// Read a JUnit XML report: a `<testcase>` with `<failure>` or `<error>` failed, one with
/// `<skipped>` is neither passed nor failed, any other passed. Names are `classname.name`.
pub fn parse_junit(xml: &[u8]) -> Result<JunitSummary, JunitError> {
    use quick_xml::events::{BytesStart, Event};

    #[derive(Default)]
    struct Case {
        name: String,
        failed: bool,
        skipped: bool,
    }
    fn case_name(e: &BytesStart<'_>) -> Result<String, String> {
        let attr = |key: &str| -> Result<Option<String>, String> {
            match e.try_get_attribute(key).map_err(|e| e.to_string())? {
                Some(a) => Ok(Some(
                    a.unescape_value().map_err(|e| e.to_string())?.into_owned(),
                )),
                None => Ok(None),
            }
        };
        let name = attr("name")?.unwrap_or_default();
        Ok(match attr("classname")? {
            Some(c) if !c.is_empty() => format!("{c}.{name}"),
            _ => name,
        })
    }

    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut summary = JunitSummary::default();
    let mut current: Option<Case> = None;
    let mut saw_root = false;
    let err = |reader: &quick_xml::Reader<&[u8]>, message: String| JunitError {
        position: reader.buffer_position(),
        message,
    };
    fn finish(summary: &mut JunitSummary, case: Case) {
        if case.failed {
            summary.failed.push(case.name);
        } else if case.skipped {
            summary.skipped.push(case.name);
        } else {
            summary.passed.push(case.name);
        }
    }
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| err(&reader, e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let local = e.local_name();
                match local.as_ref() {
                    b"testsuites" | b"testsuite" => saw_root = true,
                    b"testcase" => {
                        if current.is_some() {
                            return Err(err(&reader, "nested <testcase>".into()));
                        }
                        let case = Case {
                            name: case_name(e).map_err(|m| err(&reader, m))?,
                            ..Default::default()
                        };
                        if empty {
                            finish(&mut summary, case);
                        } else {
                            current = Some(case);
                        }
                    }
                    b"failure" | b"error" => {
                        if let Some(c) = current.as_mut() {
                            c.failed = true;
                        }
                    }
                    b"skipped" => {
                        if let Some(c) = current.as_mut() {
                            c.skipped = true;
                        }
                    }
                    _ => {}
                }
            }
            Event::End(ref e) if e.local_name().as_ref() == b"testcase" => {
                if let Some(case) = current.take() {
                    finish(&mut summary, case);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if current.is_some() {
        return Err(err(&reader, "unterminated <testcase>".into()));
    }
    if !saw_root {
        return Err(err(
            &reader,
            "no <testsuites> or <testsuite> element".into(),
        ));
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            uri: "https://git.example/app.git".into(),
            commit: "a".repeat(40),
            tree: "b".repeat(40),
        }
    }

    #[test]
    fn junit_cases() {
        let xml = br#"<?xml version="1.0"?>
<testsuites><testsuite name="s">
  <testcase classname="m" name="ok"/>
  <testcase classname="m" name="ok2"><system-out>hi</system-out></testcase>
  <testcase classname="m" name="bad"><failure message="x">trace</failure></testcase>
  <testcase name="err"><error/></testcase>
  <testcase name="skip &amp; co"><skipped/></testcase>
</testsuite></testsuites>"#;
        let s = parse_junit(xml).unwrap();
        assert_eq!(s.passed, vec!["m.ok", "m.ok2"]);
        assert_eq!(s.failed, vec!["m.bad", "err"]);
        assert_eq!(s.skipped, vec!["skip & co"]);
    }

    #[test]
    fn junit_malformed() {
        for bad in [
            &b""[..],
            b"<testsuite><testcase name='a'>",
            b"<x/>",
            b"<testsuite><a></b></testsuite>",
        ] {
            assert!(
                parse_junit(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            parse_junit(b"<testsuite/>").unwrap(),
            JunitSummary::default()
        );
    }

    fn provenance(external_parameters: Value) -> Statement {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        provenance_statement(
            &source(),
            &[Artifact {
                name: "app".into(),
                sha256: "c".repeat(64),
            }],
            ProvenanceParams {
                builder_id: "urn:b".into(),
                build_type: "urn:t".into(),
                external_parameters,
                internal_parameters: None,
                builder_version: BTreeMap::new(),
                builder_dependencies: vec![],
                invocation_id: Some("i".into()),
                started_on: t,
                finished_on: t,
                byproducts: vec![],
            },
        )
    }

    #[test]
    fn provenance_shape() {
        let st = provenance(serde_json::json!({"x": 1, "source": {"revision": "HEAD"}}));
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["_type"], STATEMENT_V1);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "c".repeat(64));
        let dep = &v["predicate"]["buildDefinition"]["resolvedDependencies"][0];
        assert_eq!(dep["digest"]["gitCommit"], "a".repeat(40));
        assert_eq!(dep["digest"]["gitTree"], "b".repeat(40));
        assert_eq!(
            v["predicate"]["runDetails"]["metadata"]["startedOn"],
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(v["predicate"]["runDetails"]["builder"]["id"], "urn:b");
        assert!(st.provenance().unwrap().is_ok());
        // The declared source is always the source built, whatever the caller passed.
        let ext = &v["predicate"]["buildDefinition"]["externalParameters"];
        assert_eq!(ext["x"], 1);
        assert_eq!(ext["source"]["revision"], "HEAD");
        assert_eq!(ext["source"]["uri"], source().uri);
        assert_eq!(ext["source"]["commit"], "a".repeat(40));
        for other in [
            Value::Null,
            serde_json::json!([1]),
            serde_json::json!({"source": 3}),
        ] {
            let v = serde_json::to_value(provenance(other)).unwrap();
            let src = &v["predicate"]["buildDefinition"]["externalParameters"]["source"];
            assert_eq!(src["commit"], "a".repeat(40));
            assert_eq!(src["uri"], source().uri);
        }
    }

    #[test]
    fn test_result_shape() {
        let r = TestResult {
            result: TestOutcome::Failed,
            configuration: vec![],
            url: None,
            passed_tests: vec!["a".into()],
            warned_tests: vec![],
            failed_tests: vec!["b".into()],
        };
        let prov = provenance(serde_json::json!({}));
        let st = test_result_statement(&source(), &[], &r, &prov).unwrap();
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["predicate"]["result"], "FAILED");
        // It names the provenance of its run by the digest of exactly the signed bytes.
        let digest = hex::encode(sha2::Sha256::digest(prov.payload().unwrap()));
        let binding = &v["predicate"]["configuration"][0];
        assert_eq!(binding["name"], "provenance");
        assert_eq!(binding["digest"]["sha256"], digest);
        assert_eq!(binding["mediaType"], MEDIA_TYPE_INTOTO);
        assert_eq!(binding["annotations"]["invocationId"], "i");
        assert_eq!(
            bound_provenances(&st.test_result().unwrap().unwrap()),
            vec![digest]
        );
        assert_eq!(v["predicate"]["failedTests"][0], "b");
        assert_eq!(
            st.subjects_with_digest(DIGEST_GIT_COMMIT, &"A".repeat(40))
                .count(),
            1
        );
        assert_eq!(
            st.test_result().unwrap().unwrap().result,
            TestOutcome::Failed
        );
    }

    #[test]
    fn bound_provenances_need_the_media_type_and_predicate_type() {
        let entry = |media: Option<&str>, ptype: Value| ResourceDescriptor {
            media_type: media.map(str::to_string),
            annotations: Some(serde_json::json!({ "predicateType": ptype })),
            ..ResourceDescriptor::named("provenance", DIGEST_SHA256, "AB".repeat(32))
        };
        let result = |configuration| TestResult {
            result: TestOutcome::Passed,
            configuration,
            url: None,
            passed_tests: vec![],
            warned_tests: vec![],
            failed_tests: vec![],
        };
        let good = entry(Some(MEDIA_TYPE_INTOTO), PREDICATE_SLSA_PROVENANCE_V1.into());
        assert_eq!(
            bound_provenances(&result(vec![good])),
            vec!["ab".repeat(32)]
        );
        for bad in [
            entry(None, PREDICATE_SLSA_PROVENANCE_V1.into()),
            entry(
                Some("application/json"),
                PREDICATE_SLSA_PROVENANCE_V1.into(),
            ),
            entry(Some(MEDIA_TYPE_INTOTO), PREDICATE_TEST_RESULT_V01.into()),
            entry(Some(MEDIA_TYPE_INTOTO), Value::Null),
            ResourceDescriptor::named("provenance", DIGEST_SHA256, "ab".repeat(32)),
        ] {
            assert!(bound_provenances(&result(vec![bad])).is_empty());
        }
        assert!(bound_provenances(&result(vec![])).is_empty());
    }

    #[test]
    fn statement_rejects_unknown_top_level_fields() {
        let j = r#"{"_type":"x","subject":[],"predicateType":"p","predicate":{},"extra":1}"#;
        assert!(serde_json::from_str::<Statement>(j).is_err());
    }

    #[test]
    fn hashing_streams() {
        let data = vec![7u8; (1 << 20) * 3 + 5];
        let expect = hex::encode(sha2::Sha256::digest(&data));
        assert_eq!(sha256_reader(&data[..]).unwrap(), expect);
        assert_eq!(
            sha256_reader(&b""[..]).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
