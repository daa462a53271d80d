//! Keyless signing: a CI job's OIDC identity token buys a ten-minute Fulcio certificate for an
//! ephemeral key, that key signs the DSSE envelope of an in-toto statement, and the signature is
//! logged in Rekor, so no long-lived signing secret exists anywhere (SPEC "The controls", 3).
//!
//! The protocol work (certificate request with proof of possession, Rekor entry, RFC 3161
//! timestamp, bundle v0.3 assembly) is sigstore-rust's `sigstore-sign`; this crate adds what a
//! gate needs around it: finding the identity token in CI, choosing the services, refusing
//! inputs that cannot give a verifiable bundle before any token is spent, and verifying every
//! bundle it produces with our own offline verifier before handing it out.
//!
//! The identity token is a bearer credential: it is never printed, logged or put in an error,
//! and it is only sent over HTTPS (plain HTTP only to a loopback address, for local services).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use sigstore_sign::oidc::IdentityToken;
use sigstore_sign::reqwest;
use sigstore_sign::{SigningContext, SigningServices};

use agentgate_formats::sigstore::{
    self as sig, ArtifactInput, IdentityMatch, SignerPolicy, SigstoreError, Verified,
};

/// Sigstore public-good Fulcio.
pub const PUBLIC_GOOD_FULCIO_URL: &str = "https://fulcio.sigstore.dev";
/// Sigstore public-good Rekor (v1 API: entries carry a signed integrated time, no TSA needed).
pub const PUBLIC_GOOD_REKOR_URL: &str = "https://rekor.sigstore.dev";
/// The audience Fulcio expects in identity tokens.
pub const SIGSTORE_AUDIENCE: &str = "sigstore";

#[cfg(feature = "tuf")]
pub mod tuf;

/// Environment variables read by [`KeylessConfig::from_env`].
pub mod env {
    /// Fulcio URL override.
    pub const FULCIO_URL: &str = "AGENTGATE_FULCIO_URL";
    /// Rekor (v1) URL override.
    pub const REKOR_URL: &str = "AGENTGATE_REKOR_URL";
    /// RFC 3161 timestamp authority URL (optional; none by default).
    pub const TSA_URL: &str = "AGENTGATE_TSA_URL";
    /// Trusted root for the post-signing check (default: the embedded public-good root).
    pub const TRUSTED_ROOT: &str = "AGENTGATE_TRUSTED_ROOT";
    /// GitHub Actions: where to request an identity token (set with `id-token: write`).
    pub const GITHUB_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
    /// GitHub Actions: the bearer token for that request.
    pub const GITHUB_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
    /// GitLab CI: the `id_tokens` variable whose `aud` is `sigstore`, as GitLab documents it.
    pub const GITLAB_ID_TOKEN: &str = "SIGSTORE_ID_TOKEN";
    /// Set to `true` by GitHub Actions (used only to word the hint when no token is found).
    pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
}

/// How long any one request to Fulcio, Rekor, the TSA or the CI token endpoint may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// GitHub's token endpoint answers with a small JSON object; anything larger is not it.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Where the identity token came from (for messages; never the token itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `--identity-token` (or its environment variable).
    Explicit,
    /// Requested from GitHub Actions' token endpoint with audience `sigstore`.
    GitHubActions,
    /// GitLab CI's `SIGSTORE_ID_TOKEN`.
    GitLabCi,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Explicit => "the explicit identity token",
            Self::GitHubActions => "GitHub Actions",
            Self::GitLabCi => "GitLab CI (SIGSTORE_ID_TOKEN)",
        })
    }
}

/// Which services to sign with and as whom.
pub struct KeylessConfig {
    /// Fulcio base URL.
    pub fulcio_url: String,
    /// Rekor (v1 API) base URL.
    pub rekor_url: String,
    /// Full URL of an RFC 3161 timestamp authority, if a timestamp is wanted.
    pub tsa_url: Option<String>,
    /// The raw OIDC identity token (a JWT). Secret: never printed.
    pub identity_token: String,
    /// Trusted root for checking the bundle after signing; `None` means the embedded Sigstore
    /// public-good root, which only fits the public-good services.
    pub trusted_root: Option<PathBuf>,
}

impl fmt::Debug for KeylessConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeylessConfig")
            .field("fulcio_url", &self.fulcio_url)
            .field("rekor_url", &self.rekor_url)
            .field("tsa_url", &self.tsa_url)
            .field("identity_token", &"<redacted>")
            .field("trusted_root", &self.trusted_root)
            .finish()
    }
}

/// Explicit choices that win over the environment (command-line flags).
#[derive(Debug, Clone, Default)]
pub struct ServiceOverrides {
    /// Fulcio URL (else `AGENTGATE_FULCIO_URL`, else public good).
    pub fulcio_url: Option<String>,
    /// Rekor URL (else `AGENTGATE_REKOR_URL`, else public good).
    pub rekor_url: Option<String>,
    /// TSA URL (else `AGENTGATE_TSA_URL`, else none).
    pub tsa_url: Option<String>,
    /// Trusted root file (else `AGENTGATE_TRUSTED_ROOT`, else the embedded public-good root).
    pub trusted_root: Option<PathBuf>,
}

/// Why keyless signing did not produce a bundle. Each variant has a stable code
/// ([`KeylessError::code`]); messages say what to do and never contain the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeylessError {
    /// No identity token: none given, and no CI token source in the environment.
    #[error("no OIDC identity token: {hint}")]
    NoIdentityToken {
        /// What to change, for the environment that was seen.
        hint: &'static str,
    },
    /// One of GitHub's two token-request variables is set without the other.
    #[error(
        "GitHub Actions token request is half configured: {present} is set but {missing} is not"
    )]
    GitHubEnvIncomplete {
        present: &'static str,
        missing: &'static str,
    },
    /// GitHub Actions' token endpoint did not give a token.
    #[error("requesting an identity token from GitHub Actions failed: {0}")]
    GitHubTokenRequest(String),
    /// The identity token is not a JWT with the claims Fulcio needs.
    #[error("the identity token from {from} is not usable: {reason}")]
    MalformedToken {
        from: TokenSource,
        reason: &'static str,
    },
    /// The identity token has expired (CI tokens live minutes: request it just before signing).
    #[error("the identity token from {from} expired at {expired_at}; request a fresh one just before signing")]
    TokenExpired {
        from: TokenSource,
        expired_at: String,
    },
    /// A service URL is not an absolute HTTPS URL (HTTP is allowed to loopback only).
    #[error("{what} URL {url:?} is not usable: {reason}")]
    ServiceUrl {
        what: &'static str,
        url: String,
        reason: String,
    },
    /// The statement cannot give a bundle that verifies (checked before any token is used).
    #[error("the statement cannot be signed: {0}")]
    Statement(String),
    /// The trusted root for the post-signing check could not be loaded.
    #[error("loading the trusted root failed")]
    TrustedRoot(#[source] SigstoreError),
    /// The HTTP client or async runtime could not be set up.
    #[error("setting up the signing client failed: {0}")]
    Setup(String),
    /// Fulcio did not issue a certificate.
    #[error("Fulcio did not issue a signing certificate")]
    Fulcio(#[source] sigstore_sign::Error),
    /// Rekor did not log the signature.
    #[error("Rekor did not log the signature")]
    Rekor(#[source] sigstore_sign::Error),
    /// The timestamp authority did not issue a timestamp.
    #[error("the timestamp authority did not issue a timestamp")]
    Tsa(#[source] sigstore_sign::Error),
    /// Signing failed locally (key generation, configuration, bundle assembly).
    #[error("signing failed")]
    Sign(#[source] sigstore_sign::Error),
    /// The bundle the services helped build does not verify against the trusted root.
    #[error("the signed bundle does not verify against the trusted root (is --trusted-root the root of these Fulcio/Rekor services?)")]
    SelfCheck(#[source] SigstoreError),
    /// The bundle could not be written as JSON.
    #[error("serializing the bundle failed: {0}")]
    BundleJson(String),
}

impl KeylessError {
    /// A stable kebab-case code for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoIdentityToken { .. } => "keyless-no-identity-token",
            Self::GitHubEnvIncomplete { .. } => "keyless-github-env-incomplete",
            Self::GitHubTokenRequest(_) => "keyless-github-token-request",
            Self::MalformedToken { .. } => "keyless-token-malformed",
            Self::TokenExpired { .. } => "keyless-token-expired",
            Self::ServiceUrl { .. } => "keyless-service-url",
            Self::Statement(_) => "keyless-statement",
            Self::TrustedRoot(_) => "keyless-trusted-root",
            Self::Setup(_) => "keyless-setup",
            Self::Fulcio(_) => "keyless-fulcio",
            Self::Rekor(_) => "keyless-rekor",
            Self::Tsa(_) => "keyless-tsa",
            Self::Sign(_) => "keyless-sign",
            Self::SelfCheck(_) => "keyless-self-check",
            Self::BundleJson(_) => "keyless-bundle-json",
        }
    }

    fn from_sign(e: sigstore_sign::Error) -> Self {
        use sigstore_sign::Error as E;
        match e {
            E::Fulcio(_) | E::Oidc(_) => Self::Fulcio(e),
            E::Rekor(_) => Self::Rekor(e),
            E::Tsa(_) => Self::Tsa(e),
            E::InvalidStatement(_) => Self::Statement(e.to_string()),
            _ => Self::Sign(e),
        }
    }
}

impl KeylessConfig {
    /// Build the configuration from explicit choices, then the environment, then the Sigstore
    /// public-good defaults.
    ///
    /// The identity token is, first match wins: `explicit_token`; GitHub Actions (a request to
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` with `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, audience
    /// `sigstore`; the job needs `permissions: id-token: write`); GitLab CI's
    /// `SIGSTORE_ID_TOKEN` (an `id_tokens` entry with `aud: sigstore`). Blocks while fetching a
    /// GitHub token; must not be called from inside an async runtime.
    pub fn from_env(
        explicit_token: Option<String>,
        overrides: ServiceOverrides,
    ) -> Result<Self, KeylessError> {
        Self::from_lookup(explicit_token, overrides, &|name| {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        })
    }

    /// [`Self::from_env`] with the environment given as a function (for tests and embedding).
    pub fn from_lookup(
        explicit_token: Option<String>,
        overrides: ServiceOverrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, KeylessError> {
        let (fulcio_url, rekor_url, tsa_url, trusted_root) = resolve_services(overrides, env)?;
        let (identity_token, source) = discover_token(explicit_token, env)?;
        // Fail here, naming where the token came from, rather than at signing time.
        parse_token(&identity_token, source)?;
        Ok(Self {
            fulcio_url,
            rekor_url,
            tsa_url,
            identity_token,
            trusted_root,
        })
    }

    /// What [`Self::from_env`] checks, without requesting a token: for a caller (the gate) that
    /// signs only after a long build. A GitHub Actions token lives minutes, so it is requested
    /// at signing time; here only its two variables must be present. An explicit or GitLab
    /// token must already parse and be unexpired.
    pub fn preflight(
        explicit_token: Option<String>,
        overrides: ServiceOverrides,
    ) -> Result<(), KeylessError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        resolve_services(overrides, &env)?;
        let explicit = explicit_token.filter(|t| !t.trim().is_empty());
        if explicit.is_none()
            && env(env::GITHUB_REQUEST_URL).is_some()
            && env(env::GITHUB_REQUEST_TOKEN).is_some()
        {
            return Ok(());
        }
        let (token, source) = discover_token(explicit, &env)?;
        parse_token(&token, source).map(|_| ())
    }
}

/// Service URLs and trusted root: explicit choices, then the environment, then public good.
#[allow(clippy::type_complexity)]
fn resolve_services(
    overrides: ServiceOverrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, String, Option<String>, Option<PathBuf>), KeylessError> {
    let fulcio_url = overrides
        .fulcio_url
        .or_else(|| env(env::FULCIO_URL))
        .unwrap_or_else(|| PUBLIC_GOOD_FULCIO_URL.to_string());
    let rekor_url = overrides
        .rekor_url
        .or_else(|| env(env::REKOR_URL))
        .unwrap_or_else(|| PUBLIC_GOOD_REKOR_URL.to_string());
    let tsa_url = overrides.tsa_url.or_else(|| env(env::TSA_URL));
    let trusted_root = overrides
        .trusted_root
        .or_else(|| env(env::TRUSTED_ROOT).map(PathBuf::from));
    check_service_url("Fulcio", &fulcio_url)?;
    check_service_url("Rekor", &rekor_url)?;
    if let Some(tsa) = &tsa_url {
        check_service_url("timestamp authority", tsa)?;
    }
    Ok((fulcio_url, rekor_url, tsa_url, trusted_root))
}

/// Find the identity token (see [`KeylessConfig::from_env`] for the order).
pub fn discover_token(
    explicit_token: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, TokenSource), KeylessError> {
    if let Some(token) = explicit_token.filter(|t| !t.trim().is_empty()) {
        return Ok((token.trim().to_string(), TokenSource::Explicit));
    }
    match (env(env::GITHUB_REQUEST_URL), env(env::GITHUB_REQUEST_TOKEN)) {
        (Some(url), Some(bearer)) => {
            return fetch_github_token(&url, &bearer).map(|t| (t, TokenSource::GitHubActions))
        }
        (Some(_), None) => {
            return Err(KeylessError::GitHubEnvIncomplete {
                present: env::GITHUB_REQUEST_URL,
                missing: env::GITHUB_REQUEST_TOKEN,
            })
        }
        (None, Some(_)) => {
            return Err(KeylessError::GitHubEnvIncomplete {
                present: env::GITHUB_REQUEST_TOKEN,
                missing: env::GITHUB_REQUEST_URL,
            })
        }
        (None, None) => {}
    }
    if let Some(token) = env(env::GITLAB_ID_TOKEN).filter(|t| !t.trim().is_empty()) {
        return Ok((token.trim().to_string(), TokenSource::GitLabCi));
    }
    let hint = if env(env::GITHUB_ACTIONS).as_deref() == Some("true") {
        "this GitHub Actions job cannot request one: give the job `permissions: id-token: write`"
    } else if env("GITLAB_CI").is_some() {
        "declare `id_tokens: SIGSTORE_ID_TOKEN: aud: sigstore` in this GitLab CI job"
    } else {
        "pass --identity-token (or AGENTGATE_IDENTITY_TOKEN), or run in GitHub Actions with \
         `permissions: id-token: write` or in GitLab CI with an `id_tokens` entry \
         SIGSTORE_ID_TOKEN (aud: sigstore)"
    };
    Err(KeylessError::NoIdentityToken { hint })
}

/// Sign `statement_json` (an in-toto Statement v1) keylessly and return the Sigstore bundle
/// v0.3 JSON (`dsseEnvelope`, `verificationMaterial.certificate`, `tlogEntries`).
///
/// Blocks on network requests; must not be called from inside an async runtime.
pub fn sign_statement_keyless(
    statement_json: &[u8],
    cfg: &KeylessConfig,
) -> Result<String, KeylessError> {
    sign_statement_keyless_verified(statement_json, cfg).map(|(json, _)| json)
}

/// [`sign_statement_keyless`], also returning what our verifier established about the bundle
/// (certificate identity and issuer, signing times).
pub fn sign_statement_keyless_verified(
    statement_json: &[u8],
    cfg: &KeylessConfig,
) -> Result<(String, Verified), KeylessError> {
    // Everything that can be checked offline is, before the token is sent anywhere.
    let subject = first_sha256_subject(statement_json)?;
    check_service_url("Fulcio", &cfg.fulcio_url)?;
    check_service_url("Rekor", &cfg.rekor_url)?;
    if let Some(tsa) = &cfg.tsa_url {
        check_service_url("timestamp authority", tsa)?;
    }
    let root = match &cfg.trusted_root {
        Some(path) => sig::trusted_root_from_file(path),
        None => sig::public_good_root(),
    }
    .map_err(KeylessError::TrustedRoot)?;
    let token = parse_token(&cfg.identity_token, TokenSource::Explicit)?;

    let mut services = SigningServices::new(&cfg.fulcio_url, &cfg.rekor_url);
    if let Some(tsa) = &cfg.tsa_url {
        services = services.with_tsa_url(tsa);
    }
    let context = SigningContext::new(services).with_http_client(http_client()?);
    let signer = context.signer(token);
    let bundle = runtime()?
        .block_on(signer.sign_raw_statement(statement_json))
        .map_err(KeylessError::from_sign)?;
    let json = bundle
        .to_json()
        .map_err(|e| KeylessError::BundleJson(e.to_string()))?;

    // Fulcio and Rekor are not trusted to have done their part: the bundle must verify, with
    // our verifier, against the root the relying party will use.
    let cert = bundle.signing_certificate().ok_or_else(|| {
        KeylessError::SelfCheck(SigstoreError::MaterialKind(
            "the signed bundle carries no certificate".into(),
        ))
    })?;
    let info = sigstore_sign::crypto::parse_certificate_info(cert)
        .map_err(|e| KeylessError::SelfCheck(SigstoreError::MaterialKind(e.to_string())))?;
    let policy = SignerPolicy::Identity {
        issuer: info.issuer.unwrap_or_default(),
        identity: IdentityMatch::Exact(
            info.identity
                .map(|san| san.as_str().to_string())
                .unwrap_or_default(),
        ),
    };
    let verified = sig::verify(
        json.as_bytes(),
        &ArtifactInput::Sha256(subject),
        &policy,
        &root,
    )
    .map_err(KeylessError::SelfCheck)?;
    Ok((json, verified))
}

/// Parse the claims Fulcio needs, with messages that cannot echo any part of the token.
fn parse_token(raw: &str, source: TokenSource) -> Result<IdentityToken, KeylessError> {
    use base64::Engine as _;
    let malformed = |reason| KeylessError::MalformedToken {
        from: source,
        reason,
    };
    let parts: Vec<&str> = raw.trim().split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(malformed("not a JWT (three dot-separated parts)"));
    }
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| malformed("the claims part is not base64url"))?;
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: Option<serde_json::Value>,
        sub: Option<serde_json::Value>,
        exp: Option<serde_json::Value>,
    }
    let claims: Claims =
        serde_json::from_slice(&payload).map_err(|_| malformed("the claims are not JSON"))?;
    if !claims.iss.as_ref().is_some_and(|v| v.is_string()) {
        return Err(malformed("no string `iss` claim"));
    }
    if !claims.sub.as_ref().is_some_and(|v| v.is_string()) {
        return Err(malformed("no string `sub` claim"));
    }
    if !claims
        .exp
        .as_ref()
        .is_some_and(|v| v.is_i64() || v.is_u64())
    {
        return Err(malformed("no numeric `exp` claim"));
    }
    let token = IdentityToken::from_jwt(raw.trim())
        .map_err(|_| malformed("the claims do not parse as an OIDC identity token"))?;
    if token.is_expired() {
        return Err(KeylessError::TokenExpired {
            from: source,
            expired_at: token.expiration().to_string(),
        });
    }
    Ok(token)
}

/// The statement must be an in-toto Statement v1 with a sha256 subject: that digest is what
/// the post-signing check (and any verifier of ours) binds the bundle to.
fn first_sha256_subject(statement_json: &[u8]) -> Result<[u8; 32], KeylessError> {
    let bad = |m: &str| KeylessError::Statement(m.to_string());
    let value: serde_json::Value =
        serde_json::from_slice(statement_json).map_err(|e| bad(&format!("not JSON: {e}")))?;
    if value.get("_type").and_then(|t| t.as_str()) != Some("https://in-toto.io/Statement/v1") {
        return Err(bad("`_type` is not \"https://in-toto.io/Statement/v1\""));
    }
    if !value.get("predicateType").is_some_and(|p| p.is_string()) {
        return Err(bad("no string `predicateType`"));
    }
    let subjects = value
        .get("subject")
        .and_then(|s| s.as_array())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("no `subject` list"))?;
    for s in subjects {
        if let Some(hex_digest) = s.pointer("/digest/sha256").and_then(|d| d.as_str()) {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(hex_digest, &mut digest)
                .map_err(|_| bad("a sha256 subject digest is not 64 hex digits"))?;
            return Ok(digest);
        }
    }
    Err(bad("no subject has a sha256 digest"))
}

/// Service URLs must be absolute HTTPS: the token is a bearer credential. Plain HTTP is
/// accepted for loopback addresses only, where local stand-in services run.
fn check_service_url(what: &'static str, url: &str) -> Result<(), KeylessError> {
    let fail = |reason: &str| KeylessError::ServiceUrl {
        what,
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(&e.to_string()))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(fail("credentials in the URL"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let ip = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(fail(
                    "plain HTTP would expose the identity token; use https (http is for loopback only)",
                ))
            }
        }
        _ => Err(fail("not an http(s) URL")),
    }
}

fn http_client() -> Result<reqwest::Client, KeylessError> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("agentgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| KeylessError::Setup(e.to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, KeylessError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KeylessError::Setup(e.to_string()))
}

/// GitHub Actions: GET the request URL with `audience=sigstore`, bearer-authenticated; the
/// answer is `{"value": "<JWT>"}`.
fn fetch_github_token(request_url: &str, bearer: &str) -> Result<String, KeylessError> {
    check_service_url("GitHub Actions token request", request_url)?;
    let mut url = reqwest::Url::parse(request_url)
        .map_err(|e| KeylessError::GitHubTokenRequest(format!("bad request URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("audience", SIGSTORE_AUDIENCE);
    let client = http_client()?;
    let fetch = async {
        let response = client
            .get(url)
            .bearer_auth(bearer)
            .header("Accept", "application/json")
            .send()
            .await
            // Without the URL: GitHub's request URL carries no secret, but keep errors short.
            .map_err(|e| format!("{}", e.without_url()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the token endpoint answered HTTP {}",
                status.as_u16()
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the answer: {}", e.without_url()))?;
        if body.len() > MAX_TOKEN_RESPONSE {
            return Err("the answer is too large to be a token response".to_string());
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            value: String,
        }
        serde_json::from_slice::<TokenResponse>(&body)
            .map(|r| r.value)
            .map_err(|_| "the answer is not {\"value\": \"<token>\"}".to_string())
    };
    runtime()?
        .block_on(fetch)
        .map_err(KeylessError::GitHubTokenRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    fn jwt(claims: &str) -> String {
        use base64::Engine as _;
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.{}",
            e(r#"{"alg":"ES256"}"#),
            e(claims),
            e("not-a-signature")
        )
    }

    fn live_token() -> String {
        jwt(
            r#"{"iss":"https://issuer.example","sub":"repo:acme/app","aud":"sigstore","exp":4102444800}"#,
        )
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const STATEMENT: &str = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}],"predicateType":"https://in-toto.io/attestation/test-result/v0.1","predicate":{"result":"PASSED","configuration":[]}}"#;

    /// A one-shot HTTP server on loopback: answers one request with `status` and `body`, and
    /// hands back the request line and headers it saw.
    fn one_shot_server(
        status: u16,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/token?api-version=2.0",
            listener.local_addr().unwrap()
        );
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                lines.push(line.trim_end().to_string());
            }
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            lines
        });
        (url, handle)
    }

    #[test]
    fn explicit_token_wins_over_ci_environments() {
        let env = lookup(&[
            (env::GITLAB_ID_TOKEN, "gitlab"),
            (env::GITHUB_REQUEST_URL, "http://127.0.0.1:1/"),
            (env::GITHUB_REQUEST_TOKEN, "bearer"),
        ]);
        let (token, source) = discover_token(Some(" explicit \n".into()), &env).unwrap();
        assert_eq!(
            (token.as_str(), source),
            ("explicit", TokenSource::Explicit)
        );
    }

    #[test]
    fn gitlab_token_is_read_from_sigstore_id_token() {
        let env = lookup(&[(env::GITLAB_ID_TOKEN, "from-gitlab")]);
        assert_eq!(
            discover_token(None, &env).unwrap(),
            ("from-gitlab".to_string(), TokenSource::GitLabCi)
        );
        // An empty explicit token is no token.
        assert_eq!(
            discover_token(Some("  ".into()), &env).unwrap().1,
            TokenSource::GitLabCi
        );
    }

    #[test]
    fn github_token_is_requested_with_audience_sigstore_and_bearer() {
        let (url, server) = one_shot_server(200, r#"{"count":1,"value":"gh.jwt.value"}"#);
        let env = lookup(&[
            (env::GITHUB_REQUEST_URL, url.as_str()),
            (env::GITHUB_REQUEST_TOKEN, "request-bearer"),
            (env::GITLAB_ID_TOKEN, "not-this-one"),
        ]);
        let (token, source) = discover_token(None, &env).unwrap();
        assert_eq!(
            (token.as_str(), source),
            ("gh.jwt.value", TokenSource::GitHubActions)
        );
        let request = server.join().unwrap();
        assert_eq!(
            request[0],
            "GET /token?api-version=2.0&audience=sigstore HTTP/1.1"
        );
        assert!(request
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Bearer request-bearer")));
    }

    #[test]
    fn github_token_endpoint_failure_is_reported_without_secrets() {
        let (url, server) = one_shot_server(403, r#"{"message":"forbidden"}"#);
        let env = lookup(&[
            (env::GITHUB_REQUEST_URL, url.as_str()),
            (env::GITHUB_REQUEST_TOKEN, "request-bearer"),
        ]);
        let err = discover_token(None, &env).unwrap_err();
        server.join().unwrap();
        assert_eq!(err.code(), "keyless-github-token-request");
        assert!(err.to_string().contains("HTTP 403"), "{err}");
        assert!(!err.to_string().contains("request-bearer"));

        let (url, server) = one_shot_server(200, r#"{"nope":1}"#);
        let env = lookup(&[
            (env::GITHUB_REQUEST_URL, url.as_str()),
            (env::GITHUB_REQUEST_TOKEN, "b"),
        ]);
        let err = discover_token(None, &env).unwrap_err();
        server.join().unwrap();
        assert_eq!(err.code(), "keyless-github-token-request");
    }

    #[test]
    fn github_half_configured_or_over_plain_http_is_refused() {
        for vars in [
            [(env::GITHUB_REQUEST_URL, "https://gh.example/t")],
            [(env::GITHUB_REQUEST_TOKEN, "b")],
        ] {
            let err = discover_token(None, &lookup(&vars)).unwrap_err();
            assert_eq!(err.code(), "keyless-github-env-incomplete");
        }
        let env = lookup(&[
            (env::GITHUB_REQUEST_URL, "http://gh.example/t"),
            (env::GITHUB_REQUEST_TOKEN, "b"),
        ]);
        assert_eq!(
            discover_token(None, &env).unwrap_err().code(),
            "keyless-service-url"
        );
    }

    #[test]
    fn no_token_anywhere_gives_a_hint_for_the_environment() {
        let cases = [
            (vec![], "--identity-token"),
            (vec![(env::GITHUB_ACTIONS, "true")], "id-token: write"),
            (vec![("GITLAB_CI", "true")], "id_tokens"),
        ];
        for (vars, hint) in cases {
            let err = discover_token(None, &lookup(&vars)).unwrap_err();
            assert_eq!(err.code(), "keyless-no-identity-token");
            assert!(err.to_string().contains(hint), "{err}");
        }
    }

    #[test]
    fn urls_come_from_overrides_then_environment_then_public_good() {
        let token = live_token();
        let cfg = KeylessConfig::from_lookup(
            Some(token.clone()),
            ServiceOverrides::default(),
            &lookup(&[]),
        )
        .unwrap();
        assert_eq!(cfg.fulcio_url, PUBLIC_GOOD_FULCIO_URL);
        assert_eq!(cfg.rekor_url, PUBLIC_GOOD_REKOR_URL);
        assert_eq!((cfg.tsa_url, cfg.trusted_root), (None, None));
        assert_eq!(cfg.identity_token, token);

        let env = lookup(&[
            (env::FULCIO_URL, "https://fulcio.env.example"),
            (env::REKOR_URL, "https://rekor.env.example"),
            (env::TSA_URL, "https://tsa.env.example/api/v1/timestamp"),
            (env::TRUSTED_ROOT, "/env/root.json"),
        ]);
        let cfg = KeylessConfig::from_lookup(
            Some(token.clone()),
            ServiceOverrides {
                fulcio_url: Some("http://127.0.0.1:8080".into()),
                trusted_root: Some("/flag/root.json".into()),
                ..Default::default()
            },
            &env,
        )
        .unwrap();
        assert_eq!(cfg.fulcio_url, "http://127.0.0.1:8080");
        assert_eq!(cfg.rekor_url, "https://rekor.env.example");
        assert_eq!(
            cfg.tsa_url.as_deref(),
            Some("https://tsa.env.example/api/v1/timestamp")
        );
        assert_eq!(cfg.trusted_root, Some(PathBuf::from("/flag/root.json")));
    }

    #[test]
    fn service_urls_must_be_https_except_on_loopback() {
        for ok in [
            "https://fulcio.sigstore.dev",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
            "http://localhost:3000",
        ] {
            check_service_url("Fulcio", ok).unwrap();
        }
        for bad in [
            "http://fulcio.example",
            "http://10.0.0.1",
            "ftp://fulcio.example",
            "fulcio.example",
            "",
            "https://user:pw@fulcio.example",
        ] {
            let err = check_service_url("Fulcio", bad).unwrap_err();
            assert_eq!(err.code(), "keyless-service-url", "{bad}");
        }
        let err = KeylessConfig::from_lookup(
            Some(live_token()),
            ServiceOverrides {
                rekor_url: Some("http://rekor.example".into()),
                ..Default::default()
            },
            &lookup(&[]),
        )
        .unwrap_err();
        assert_eq!(err.code(), "keyless-service-url");
    }

    #[test]
    fn malformed_and_expired_tokens_are_refused_without_echoing_them() {
        let secretish = "c2VjcmV0LXNlY3JldA";
        let cases = [
            (secretish.to_string(), "keyless-token-malformed"),
            (format!("a.{secretish}!.c"), "keyless-token-malformed"),
            (
                format!("a.{}.c", {
                    use base64::Engine as _;
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[secret-secret]")
                }),
                "keyless-token-malformed",
            ),
            (
                jwt(r#"{"iss":"https://i","exp":4102444800}"#),
                "keyless-token-malformed",
            ),
            (
                jwt(r#"{"iss":"https://i","sub":"s","exp":"soon"}"#),
                "keyless-token-malformed",
            ),
            (
                jwt(r#"{"iss":"https://i","sub":"s","exp":1000000000}"#),
                "keyless-token-expired",
            ),
        ];
        for (token, code) in cases {
            let err = parse_token(&token, TokenSource::Explicit).unwrap_err();
            assert_eq!(err.code(), code, "{token}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&token), "{shown}");
            assert!(!shown.contains("secret-secret"), "{shown}");
        }
        parse_token(&live_token(), TokenSource::Explicit).unwrap();
    }

    #[test]
    fn token_problems_name_where_the_token_came_from() {
        let expired =
            jwt(r#"{"iss":"https://gitlab.example","sub":"project_path:a/b","exp":1000000000}"#);
        let err = KeylessConfig::from_lookup(
            None,
            Default::default(),
            &lookup(&[(env::GITLAB_ID_TOKEN, expired.as_str())]),
        )
        .unwrap_err();
        assert_eq!(err.code(), "keyless-token-expired");
        assert!(err.to_string().contains("GitLab CI"), "{err}");
        assert!(err.to_string().contains("2001-09-09T01:46:40Z"), "{err}");

        let err =
            KeylessConfig::from_lookup(Some("not-a-jwt".into()), Default::default(), &lookup(&[]))
                .unwrap_err();
        assert_eq!(err.code(), "keyless-token-malformed");
        assert!(err.to_string().contains("explicit"), "{err}");
    }

    #[test]
    fn debug_output_redacts_the_token() {
        let token = live_token();
        let cfg = KeylessConfig::from_lookup(Some(token.clone()), Default::default(), &lookup(&[]))
            .unwrap();
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains(&token) && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn statements_that_cannot_verify_are_refused_before_any_request() {
        let cases = [
            "not json",
            r#"{"_type":"https://in-toto.io/Statement/v0.1","subject":[],"predicateType":"p","predicate":{}}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p","predicate":{}}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"c","digest":{"gitCommit":"abc"}}],"predicateType":"p","predicate":{}}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"c","digest":{"sha256":"xyz"}}],"predicateType":"p","predicate":{}}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"c","digest":{"sha256":"00"}}],"predicate":{}}"#,
        ];
        // Nothing listens on port 1: reaching the network would fail differently.
        let cfg = KeylessConfig {
            fulcio_url: "http://127.0.0.1:1".into(),
            rekor_url: "http://127.0.0.1:1".into(),
            tsa_url: None,
            identity_token: live_token(),
            trusted_root: None,
        };
        for statement in cases {
            let err = sign_statement_keyless(statement.as_bytes(), &cfg).unwrap_err();
            assert_eq!(err.code(), "keyless-statement", "{statement}: {err}");
        }
        assert_eq!(
            first_sha256_subject(STATEMENT.as_bytes()).unwrap()[..2],
            [0x2c, 0xf2]
        );
    }

    #[test]
    fn unreachable_fulcio_is_a_fulcio_error() {
        let cfg = KeylessConfig {
            fulcio_url: "http://127.0.0.1:1".into(),
            rekor_url: "http://127.0.0.1:1".into(),
            tsa_url: None,
            identity_token: live_token(),
            trusted_root: None,
        };
        let err = sign_statement_keyless(STATEMENT.as_bytes(), &cfg).unwrap_err();
        assert_eq!(err.code(), "keyless-fulcio", "{err:?}");
        assert!(!format!("{err:?}").contains(&cfg.identity_token));
    }

    #[test]
    fn an_unreadable_trusted_root_fails_before_any_request() {
        let cfg = KeylessConfig {
            fulcio_url: "http://127.0.0.1:1".into(),
            rekor_url: "http://127.0.0.1:1".into(),
            tsa_url: None,
            identity_token: live_token(),
            trusted_root: Some("/nonexistent/trusted_root.json".into()),
        };
        let err = sign_statement_keyless(STATEMENT.as_bytes(), &cfg).unwrap_err();
        assert_eq!(err.code(), "keyless-trusted-root");
    }

    #[test]
    fn codes_are_unique_kebab_case() {
        let sign_err = || sigstore_sign::Error::UnsupportedArtifact(String::new());
        let all = [
            KeylessError::NoIdentityToken { hint: "" },
            KeylessError::GitHubEnvIncomplete {
                present: "",
                missing: "",
            },
            KeylessError::GitHubTokenRequest(String::new()),
            KeylessError::MalformedToken {
                from: TokenSource::Explicit,
                reason: "",
            },
            KeylessError::TokenExpired {
                from: TokenSource::GitLabCi,
                expired_at: String::new(),
            },
            KeylessError::ServiceUrl {
                what: "",
                url: String::new(),
                reason: String::new(),
            },
            KeylessError::Statement(String::new()),
            KeylessError::TrustedRoot(SigstoreError::Incomplete("")),
            KeylessError::Setup(String::new()),
            KeylessError::Fulcio(sign_err()),
            KeylessError::Rekor(sign_err()),
            KeylessError::Tsa(sign_err()),
            KeylessError::Sign(sign_err()),
            KeylessError::SelfCheck(SigstoreError::Incomplete("")),
            KeylessError::BundleJson(String::new()),
        ];
        let mut seen = std::collections::HashSet::new();
        for e in &all {
            let code = e.code();
            assert!(code.starts_with("keyless-"), "{code}");
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{code}"
            );
            assert!(seen.insert(code), "duplicate {code}");
        }
    }
}
