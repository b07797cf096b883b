//! The config entities, named as in the admin API so the YAML file and the admin
//! API edit the same model: upstream servers, namespaces, matchers, proxy
//! rules, plus prefix routes and the API keys.

use super::secret::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use sluice_filters::matcher::{MatchAction, MatchOperator, MatcherSpec, MatcherType};
use sluice_filters::routing::ProxyRuleSpec;
use std::collections::BTreeMap;

/// `is_active` accepts `true`/`false` and the admin API's `1`/`0`.
pub(crate) fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    match Flag::deserialize(d)? {
        Flag::Bool(b) => Ok(b),
        Flag::Int(0) => Ok(false),
        Flag::Int(1) => Ok(true),
        Flag::Int(n) => Err(serde::de::Error::custom(format!(
            "expected true/false or 1/0, got {n}"
        ))),
    }
}

pub(crate) fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

/// Which provider's wire format and auth an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI (`Authorization: Bearer`).
    #[default]
    Openai,
    /// Any OpenAI-compatible server (vLLM, Ollama, DeepSeek…): same auth as OpenAI.
    OpenaiCompatible,
    /// Azure OpenAI (`api-key` header).
    Azure,
    /// Anthropic (`x-api-key` + `anthropic-version`).
    Anthropic,
}

impl ProviderKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
        }
    }
}

/// How the gateway speaks to the upstream: plain HTTP/1.1, HTTPS (HTTP/2
/// when the server offers it by ALPN), or `h2c`: plaintext HTTP/2 with
/// prior knowledge (vLLM and other servers behind a mesh).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerType {
    #[default]
    Http,
    Https,
    H2c,
}

/// One upstream server. Servers that share a `pool` are load
/// balanced together; routes and proxy rules name pools.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamServer {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default)]
    pub id: u64,
    /// Human name, unique.
    pub server_name: String,
    /// Pool this server belongs to; defaults to `server_name`.
    #[serde(default)]
    pub pool: Option<String>,
    /// Host name or IP address. Names are resolved in the background, never on the request path.
    pub server_address: String,
    /// TCP port.
    pub server_port: u16,
    /// `http` or `https`. HTTPS always sends SNI (`sni` or `server_address`) and verifies the certificate.
    #[serde(default)]
    pub server_type: ServerType,
    /// SNI and `Host` for this server when they differ from `server_address`.
    #[serde(default)]
    pub sni: Option<String>,
    /// Relative share of traffic within the pool (≥ 1).
    #[serde(default = "one")]
    pub weight: usize,
    /// Most requests in flight to this server at once; 0 = unlimited.
    #[serde(default)]
    pub max_connections: usize,
    /// Path probed with `GET` by the active health check; none = no active check.
    #[serde(default)]
    pub health_check_url: Option<String>,
    /// Provider wire format and auth style.
    #[serde(default)]
    pub provider: ProviderKind,
    /// Provider API key injected upstream in the provider's auth header.
    #[serde(default)]
    pub api_key: Option<Secret<String>>,
    /// Extra headers set (overwritten) on every upstream request.
    #[serde(default)]
    pub inject_headers: BTreeMap<String, Secret<String>>,
    /// Inactive servers get no traffic.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub is_active: bool,
}

impl UpstreamServer {
    /// The pool this server belongs to.
    pub fn pool_name(&self) -> &str {
        self.pool.as_deref().unwrap_or(&self.server_name)
    }
}

/// A tenant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default)]
    pub id: u64,
    /// Unique code used in references (`namespace: <code>`).
    pub namespace_code: String,
    /// Display name.
    #[serde(default)]
    pub namespace_name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Inactive namespaces admit no requests.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub is_active: bool,
    /// Masking of answers to external-channel clients: built-in detectors
    /// (`email`, `phone`, `card`, `api_key`) and bounded regexes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masking: Vec<sluice_filters::redact::MaskRule>,
    /// Its use of the response cache; none = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<super::NamespaceCache>,
}

/// A matcher: decides which namespace a request belongs to, or denies it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default)]
    pub id: u64,
    /// Display name.
    #[serde(default)]
    pub matcher_name: String,
    /// Code of the namespace this matcher admits requests into.
    pub namespace: String,
    /// `header`, `query`, `path` or `body`.
    pub matcher_type: MatcherType,
    /// Header name, query parameter or dotted body path (ignored for `path`).
    #[serde(default)]
    pub match_field: String,
    /// `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `contains` or `regex`.
    pub match_operator: MatchOperator,
    /// The value compared against (a number for gt/gte/lt/lte, a regex for `regex`).
    pub match_value: String,
    /// `allow` (admit into the namespace) or `deny` (403).
    #[serde(default)]
    pub action: MatchAction,
    /// Lower runs first.
    #[serde(default)]
    pub priority: i64,
    /// Inactive matchers are skipped.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub is_active: bool,
    /// The namespace route's `header:`/`query:` match strategy (saved and
    /// shown through `/api/v1/namespaces/{id}/route`); one per namespace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub namespace_route: bool,
}

impl Matcher {
    /// The plain spec `sluice_filters` compiles, for namespace index `namespace`.
    pub fn spec(&self, namespace: usize) -> MatcherSpec {
        MatcherSpec {
            id: self.id,
            namespace,
            matcher_type: self.matcher_type,
            match_field: self.match_field.clone(),
            match_operator: self.match_operator,
            match_value: self.match_value.clone(),
            action: self.action,
            priority: self.priority,
        }
    }
}

/// A proxy rule: requests matching all its patterns go to `upstream`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyRule {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default)]
    pub id: u64,
    /// Display name.
    #[serde(default)]
    pub rule_name: String,
    /// Only requests of this namespace (code); none = all namespaces.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Upstream pool to send matching requests to.
    pub upstream: String,
    /// Regex over the path, anchored (`/v1/.*`).
    #[serde(default)]
    pub path_pattern: Option<String>,
    /// Regex over the method, anchored (`GET|POST`).
    #[serde(default)]
    pub method_pattern: Option<String>,
    /// `header-name:value-regex`, value anchored.
    #[serde(default)]
    pub header_pattern: Option<String>,
    /// Regex searched in the raw request body.
    #[serde(default)]
    pub body_pattern: Option<String>,
    /// Lower runs first.
    #[serde(default)]
    pub priority: i64,
    /// Inactive rules are skipped.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub is_active: bool,
}

impl ProxyRule {
    /// The plain spec `sluice_filters` compiles, with the namespace and
    /// target pool already resolved to indexes.
    pub fn spec(&self, namespace: Option<usize>, target: usize) -> ProxyRuleSpec {
        ProxyRuleSpec {
            id: self.id,
            priority: self.priority,
            namespace,
            target,
            path_pattern: self.path_pattern.clone(),
            method_pattern: self.method_pattern.clone(),
            header_pattern: self.header_pattern.clone(),
            body_pattern: self.body_pattern.clone(),
        }
    }
}

/// A prefix route: the longest prefix on a path-segment boundary wins.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default)]
    pub id: u64,
    /// Path prefix (`/v1`, `/openai`); `/` catches everything.
    pub prefix: String,
    /// Upstream pool.
    pub upstream: String,
    /// Remove the prefix before forwarding (`/openai/v1/models` → `/v1/models`).
    #[serde(default)]
    pub strip_prefix: bool,
    /// Only requests of this namespace (code); none = all namespaces.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Most requests in flight through this route per API key (per route
    /// when auth is off); more get 503 `upstream_concurrency_exceeded`.
    /// Replaces the servers' `max_connections` for this route's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u64>,
}

/// A client API key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Label used in logs (never the key itself).
    pub name: String,
    /// The key clients present.
    pub key: Secret<String>,
    /// Namespace (code) the key belongs to; none = matchers decide.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The models this key may ask for (exact names or `prefix*`); none =
    /// any. A request naming another model gets 403 `model_not_allowed`,
    /// and `GET /v1/models` lists only these catalog models.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// An access key for signed requests (external clients): `name` is the
    /// access key id the client sends in `x-sluice-key-id` and `key` the
    /// secret it signs with (HMAC-SHA256; docs/request-safety.md). The
    /// secret is never accepted as a bearer key.
    #[serde(default)]
    pub signing: bool,
}

/// An API key created through the admin API (`/api/v1/api-keys`): only
/// the SHA-256 of its secret is kept. Stored with the other entities, so a
/// An agent's Bridge tokens (issued by `POST /internal/v1/bridge/agent-token`):
/// only their SHA-256 is kept. A reset raises `version` and drops every
/// token of the versions before; the change reaches every instance with
/// the config bus, and tunnels opened with a dropped token close.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentToken {
    #[serde(default)]
    pub id: u64,
    /// The agent these tokens open a tunnel for.
    pub agent_id: String,
    /// Raised by a reset.
    pub version: u64,
    /// The live tokens of `version`, oldest first.
    #[serde(default)]
    pub tokens: Vec<AgentTokenHash>,
}

impl AgentToken {
    /// Every live token of `list` by its SHA-256 → its agent and expiry
    /// (Unix seconds); a malformed hash is left out.
    pub fn by_hash(list: &[AgentToken]) -> std::collections::HashMap<[u8; 32], (String, u64)> {
        list.iter()
            .flat_map(|t| {
                t.tokens.iter().filter_map(|h| {
                    let mut sha = [0u8; 32];
                    hex::decode_to_slice(&h.sha256, &mut sha).ok()?;
                    Some((sha, (t.agent_id.clone(), h.expires_at)))
                })
            })
            .collect()
    }
}

/// One live agent token.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AgentTokenHash {
    /// Lower-case hex SHA-256 of the token.
    pub sha256: String,
    /// Unix seconds after which it is refused.
    pub expires_at: u64,
}

/// revocation reaches every instance with the config bus.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualKey {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default)]
    pub id: u64,
    /// Label in logs and metrics (unique among all keys).
    pub name: String,
    /// Lower-case hex SHA-256 of the secret.
    pub key_sha256: String,
    /// The secret's first characters, to tell keys apart in lists.
    #[serde(default)]
    pub prefix: String,
    /// After a rotation: the previous secret's SHA-256, accepted until
    /// `previous_until` (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<u64>,
    /// Unix seconds after which the key is refused; none = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Namespace (code) the key belongs to; none = matchers decide.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The models it may ask for (exact names or `prefix*`); none = any.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Inactive keys are refused.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub is_active: bool,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Calls the model APIs with the tokens of `POST /api/v1/auth/login`.
    #[default]
    User,
    /// Also administers the gateway (the admin API accepts its tokens).
    Admin,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
        }
    }
}

/// A user who signs in with e-mail and password (`POST
/// /api/v1/auth/login`). Managed through `/api/v1/users`, stored with the
/// other entities, so a deactivation reaches every instance with the
/// config bus.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Numeric id (the `sub` of the user's tokens); assigned in file order
    /// when omitted.
    #[serde(default)]
    pub id: u64,
    /// Sign-in name, kept lower case.
    pub email: String,
    /// The argon2id hash of the password (PHC string).
    pub password_hash: String,
    #[serde(default)]
    pub role: UserRole,
    /// Namespace (code) the user's requests belong to; none = matchers decide.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Inactive users cannot sign in and their tokens are refused.
    #[serde(default = "yes", deserialize_with = "flag")]
    pub is_active: bool,
    /// Raised to end every session of the user: tokens issued before
    /// carry the old version and are refused.
    #[serde(default)]
    pub token_version: u64,
}

/// A limit rule: `rate_limit`, `concurrency` or `token_limit`
/// with its `rule_config` (schemas at `GET /api/v1/rules/types`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Numeric id; assigned in file order when omitted.
    #[serde(default, alias = "rule_id")]
    pub id: u64,
    /// Display name, used in denial messages.
    #[serde(default)]
    pub rule_name: String,
    /// Namespace (code) the rule applies to; none = every namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// `rate_limit`, `concurrency` or `token_limit`.
    pub rule_type: String,
    /// Lower runs first (also decides which denial a client sees first).
    #[serde(default)]
    pub priority: i64,
    /// Inactive rules are skipped.
    #[serde(default = "yes", alias = "is_active", deserialize_with = "flag")]
    pub status: bool,
    /// The type's settings; see `GET /api/v1/rules/types`.
    #[serde(default)]
    pub rule_config: serde_json::Value,
}
