//! The identity settings under `auth:`: the tokens the gateway issues to
//! its users (`auth.jwt`), the external issuers whose tokens it accepts
//! (`auth.issuers`) and how often a login may be tried (`auth.login`).
//! The users themselves are entities ([`super::model::User`]).

use super::secret::Secret;
use serde::{Deserialize, Serialize};

/// A JWT signature algorithm the gateway signs or verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared `secret`.
    #[default]
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256: a PEM key pair.
    RS256,
    /// ECDSA P-256 with SHA-256: a PEM key pair.
    ES256,
}

/// The tokens the gateway issues at `POST /api/v1/auth/login`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    #[serde(default)]
    pub algorithm: JwtAlgorithm,
    /// HS256: the shared secret (at least 32 characters).
    #[serde(default)]
    pub secret: Option<Secret<String>>,
    /// RS256/ES256: the PEM private key that signs.
    #[serde(default)]
    pub private_key_file: Option<String>,
    /// RS256/ES256: the PEM public key that verifies.
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// The `kid` header of the tokens signed now.
    #[serde(default = "default_kid")]
    pub kid: String,
    /// Keys of earlier rotations, by `kid`: tokens they signed stay valid
    /// until they expire.
    #[serde(default)]
    pub previous: Vec<JwtVerifyKey>,
    /// The `iss` claim of issued tokens (checked on the way back in).
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Lifetime of an access token (`expires_in`), seconds.
    #[serde(default = "default_access_ttl")]
    pub access_ttl_s: u64,
    /// Lifetime of a refresh token family, seconds.
    #[serde(default = "default_refresh_ttl")]
    pub refresh_ttl_s: u64,
}

fn default_kid() -> String {
    "k1".into()
}
fn default_issuer() -> String {
    "sluice".into()
}
fn default_access_ttl() -> u64 {
    3600
}
fn default_refresh_ttl() -> u64 {
    30 * 86_400
}

/// A verification key of an earlier rotation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtVerifyKey {
    pub kid: String,
    #[serde(default)]
    pub algorithm: JwtAlgorithm,
    /// HS256: the secret.
    #[serde(default)]
    pub secret: Option<Secret<String>>,
    /// RS256/ES256: the PEM public key.
    #[serde(default)]
    pub public_key_file: Option<String>,
}

/// An identity provider whose JWTs are accepted as bearer tokens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// Label in logs and metrics (the key name of its callers: `jwt:NAME`).
    pub name: String,
    /// The `iss` claim its tokens carry.
    pub issuer: String,
    /// Accepted `aud` values: a token must name one of them.
    pub audience: Vec<String>,
    /// Its signing keys as a JWKS document on disk.
    #[serde(default)]
    pub jwks_file: Option<String>,
    /// Its signing keys as a JWKS document at this URL (fetched in the
    /// background, kept, refreshed every `refresh_s`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default = "default_refresh")]
    pub refresh_s: u64,
    /// The claim whose value is the caller's namespace code.
    #[serde(default)]
    pub namespace_claim: Option<String>,
    /// The namespace of its callers when no claim names one; none =
    /// matchers decide.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Clock skew allowed on `exp`/`nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub leeway_s: u64,
}

fn default_refresh() -> u64 {
    300
}
fn default_leeway() -> u64 {
    30
}

/// How often a login may be tried (counted in the counter store, so
/// across instances with Redis) and how many password checks run at once.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Attempts per e-mail address per minute.
    pub per_email_per_minute: u64,
    /// Attempts per client address per minute.
    pub per_address_per_minute: u64,
    /// Password hashes computed at once (each takes ~19 MiB and tens of
    /// milliseconds); further logins wait.
    pub max_concurrent: usize,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            per_email_per_minute: 5,
            per_address_per_minute: 30,
            max_concurrent: 2,
        }
    }
}
