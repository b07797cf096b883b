//! YAML → typed config. Owns the file format: process settings
//! ([`ServerSettings`], [`Listen`], [`Limits`], [`Timeouts`], [`UpstreamSettings`],
//! [`AuthSettings`], [`MetricsSettings`], [`AccessLogSettings`], [`AdminSettings`]) and the entities in
//! [`model`]. [`load`] parses with `${ENV}` interpolation and reports every
//! problem at once, each with its path; [`validate`] checks references and
//! rules that could never apply.

mod bridge;
pub mod cache;
pub mod catalog;
mod fleet;
pub mod fragments;
pub mod identity;
mod load;
pub mod model;
mod problem;
pub mod secret;
pub mod tls;
pub mod tracing;
mod validate;

pub use bridge::BridgeSettings;
pub use cache::{CacheSettings, ModelCache, NamespaceCache};
pub use catalog::{Capability, CatalogModel, Deployment};
pub use fleet::FleetSettings;
pub use fragments::NginxConfig;
pub use identity::{JwtAlgorithm, JwtIssuer, JwtSettings, JwtVerifyKey, LoginSettings};
pub use load::{load_file, load_str, read_file};
pub use model::*;
pub use problem::Problem;
pub use secret::Secret;
pub use tls::{CertificateFiles, TlsListener};
pub use tracing::TracingSettings;

use serde::{Deserialize, Serialize};

/// Pingora server settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Worker threads of the proxy service; 0 = one per CPU core.
    pub threads: usize,
    /// Seconds SIGTERM waits before closing listeners (Pingora's default is 300).
    pub grace_period_seconds: u64,
    /// Seconds in-flight requests get to finish after the grace period.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Idle keep-alive connections kept per upstream pool.
    pub upstream_keepalive_pool_size: usize,
    /// The Unix socket a new process (`sluice run --upgrade`) takes the
    /// listening sockets over from this one (when it gets SIGQUIT).
    pub upgrade_sock: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            threads: 0,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 10,
            upstream_keepalive_pool_size: 256,
            upgrade_sock: "/tmp/sluice-upgrade.sock".into(),
        }
    }
}

/// Listen addresses.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// The proxy listener (`host:port`).
    pub proxy: String,
    /// The admin listener (`host:port`); none = no admin listener.
    pub admin: Option<String>,
    /// TLS on the proxy listener; none = plain HTTP/1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_tls: Option<TlsListener>,
    /// TLS on the admin listener (with client certificates, if asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_tls: Option<TlsListener>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            proxy: "127.0.0.1:8080".into(),
            admin: None,
            proxy_tls: None,
            admin_tls: None,
        }
    }
}

/// Request limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Most JSON values (keys included) a request body may hold; more get
    /// 413 before parsing. A parsed value takes at least 32 bytes however
    /// short its text, so this bounds the memory a body takes once parsed
    /// (the default, about 32 MiB at most; real chat and embedding
    /// requests hold far fewer).
    pub max_json_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            max_json_values: 1_000_000,
        }
    }
}

/// Bounds on client connections (every listener): what a slow, idle or
/// greedy client can hold. Read per connection, so changes apply to new
/// connections without a restart.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Clients {
    /// A request head (request line and headers) must arrive whole within
    /// this long from its first byte; else 408 and the connection closes.
    pub header_timeout_ms: u64,
    /// A request body must arrive whole within this long; else 408.
    pub body_timeout_ms: u64,
    /// An idle keep-alive connection is closed after this long
    /// (`timeouts.client_keepalive_s`, when set, takes precedence).
    pub idle_timeout_ms: u64,
    /// A write to the client that makes no progress for this long ends the
    /// request (a client that stops reading frees its slots).
    pub write_timeout_ms: u64,
    /// Largest request head; larger → 431.
    pub max_header_bytes: usize,
    /// Open client connections per listener; more are answered 503 and
    /// closed.
    pub max_connections: usize,
    /// Open connections per client address and listener; more → 503.
    pub max_connections_per_client: usize,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            header_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            write_timeout_ms: 30_000,
            max_header_bytes: 64 * 1024,
            max_connections: 10_000,
            max_connections_per_client: 512,
        }
    }
}

/// Upstream timeouts, in milliseconds. A timeout answers 504 `upstream_timeout`
/// when nothing was sent to the client yet; otherwise the response is cut.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP (+TLS) connection establishment.
    pub connect_ms: u64,
    /// From request sent to the response header.
    pub first_byte_ms: u64,
    /// Longest gap between two body chunks of a response (streaming or not).
    pub idle_ms: u64,
    /// Whole non-streaming response (header and body).
    pub total_ms: u64,
    /// Whole streamed response: a stream still running after this long is
    /// cut (like an idle timeout mid-response).
    pub stream_total_ms: u64,
    /// Seconds an idle client keep-alive connection is kept open; 0 = close
    /// after each response; none = Pingora's default (no idle limit).
    pub client_keepalive_s: Option<u64>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 5_000,
            first_byte_ms: 120_000,
            idle_ms: 60_000,
            total_ms: 600_000,
            stream_total_ms: 3_600_000,
            client_keepalive_s: None,
        }
    }
}

/// Upstream connection behaviour: health checks, passive ejection, retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamSettings {
    /// Interval between active health checks (servers with `health_check_url`) and DNS refreshes.
    pub health_check_interval_ms: u64,
    /// Timeout of one health check request.
    pub health_check_timeout_ms: u64,
    /// Consecutive failed checks that mark a server unhealthy.
    pub unhealthy_threshold: usize,
    /// Consecutive passed checks that mark it healthy again.
    pub healthy_threshold: usize,
    /// Consecutive connect failures that eject a server (passive check); 0 = never.
    pub eject_after_failures: u32,
    /// How long an ejected server gets no traffic.
    pub eject_ms: u64,
    /// Attempts per request on connect failure or a dead pooled connection (first try included).
    pub max_attempts: usize,
    /// Idle keep-alive connections to upstreams are closed after this long (keep it below the provider's idle close).
    pub keepalive_idle_ms: u64,
    /// PEM bundle of CA certificates trusted for HTTPS upstreams (requests and
    /// health checks); none = the system's trust store.
    pub ca_file: Option<String>,
    /// Catalog models: a 429/503 whose `Retry-After` is at most this long
    /// (ms) is retried on the same deployment after waiting it, when no
    /// other deployment is left; a longer one is answered to the client.
    pub retry_after_max_ms: u64,
    /// Catalog models: pause before the k-th retry, `retry_backoff_ms ×
    /// 2^(k-1)` with ±50 % jitter, capped at `retry_after_max_ms` (a
    /// `Retry-After` that asks for longer wins); 0 = retry at once.
    pub retry_backoff_ms: u64,
}

impl Default for UpstreamSettings {
    fn default() -> Self {
        UpstreamSettings {
            health_check_interval_ms: 5_000,
            health_check_timeout_ms: 2_000,
            unhealthy_threshold: 2,
            healthy_threshold: 1,
            eject_after_failures: 3,
            eject_ms: 10_000,
            max_attempts: 3,
            keepalive_idle_ms: 10_000,
            ca_file: None,
            retry_after_max_ms: 2_000,
            retry_backoff_ms: 10,
        }
    }
}

/// Client authentication.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// When false, no key is required and matchers alone decide the namespace.
    pub enabled: bool,
    /// Extra header accepted besides `Authorization: Bearer` and `x-api-key` (e.g. `x-gw-token`).
    pub header: Option<String>,
    /// The accepted keys.
    pub keys: Vec<ApiKey>,
    /// Signed requests: the largest gap, in seconds, between a request's
    /// `x-sluice-timestamp` and the gateway's clock.
    pub signing_max_skew_s: u64,
    /// Tokens issued to users at `POST /api/v1/auth/login`; none = no login.
    pub jwt: Option<JwtSettings>,
    /// Identity providers whose JWTs are accepted as bearer tokens.
    pub issuers: Vec<JwtIssuer>,
    /// Login attempts and password checks.
    pub login: LoginSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            enabled: true,
            header: None,
            keys: Vec::new(),
            signing_max_skew_s: 300,
            jwt: None,
            issuers: Vec::new(),
            login: LoginSettings::default(),
        }
    }
}

/// The Prometheus endpoint `/metrics` on the proxy listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Bearer token required to read `/metrics` and `/metrics/summary`;
    /// none = the metrics endpoints are off.
    pub token: Option<Secret<String>>,
    /// A dedicated listener (`host:port`) for the metrics endpoints; none =
    /// they are served on the proxy listener.
    pub listen: Option<String>,
}

/// The structured access log: one JSON line per client request (trace id,
/// namespace, route, model, provider, status, tokens, cost, latency split).
/// Keys and prompt text are never written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogSettings {
    /// File the lines are appended to; `-` = standard output.
    pub path: String,
}

/// The admin (config-center) listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Bearer tokens accepted by the admin API: each a string, or
    /// `{name, token}` so the audit log names who made a change (a bare
    /// string is named `token-<n>`, its position counted from 1).
    pub tokens: Vec<AdminToken>,
    /// Whether reads (`GET`) need a token too; default true.
    pub auth_reads: Option<bool>,
}

/// One admin token: the secret and the name the audit log records.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum AdminToken {
    Plain(Secret<String>),
    Named { name: String, token: Secret<String> },
}

impl AdminToken {
    /// The secret itself.
    pub fn expose(&self) -> &String {
        match self {
            AdminToken::Plain(t) | AdminToken::Named { token: t, .. } => t.expose(),
        }
    }

    /// The name it acts under (`index` = its position in `admin.tokens`).
    pub fn name(&self, index: usize) -> String {
        match self {
            AdminToken::Named { name, .. } => name.clone(),
            AdminToken::Plain(_) => format!("token-{}", index + 1),
        }
    }
}

/// Token counting.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    /// Model name (exact, or a prefix ending in `*`) → encoding
    /// (`o200k_base`, `cl100k_base`), checked before the built-in map.
    pub models: std::collections::BTreeMap<String, sluice_filters::tokens::Encoding>,
    /// Encoding for models nobody knows; such counts are marked estimated.
    pub fallback_encoding: sluice_filters::tokens::Encoding,
    /// Output tokens a request is expected to use when it sets no
    /// `max_tokens` (reserved against token budgets, then settled).
    pub default_output_tokens: u64,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            models: Default::default(),
            fallback_encoding: sluice_filters::tokens::Encoding::Cl100kBase,
            default_output_tokens: 1024,
        }
    }
}

/// Where rate, concurrency and token counters live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterStoreKind {
    /// In this process (one instance, or limits per instance).
    #[default]
    Local,
    /// In Redis: limits hold exactly across every instance sharing it.
    Redis,
}

/// The counter store of the limit rules.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CounterSettings {
    /// `local` (default) or `redis`.
    pub store: CounterStoreKind,
    /// Redis URL (`redis://host:6379/0`) for `store: redis`.
    pub redis_url: Option<Secret<String>>,
    /// Prefix of every counter key in Redis.
    pub key_prefix: String,
    /// Longest wait for Redis per call; past it the rule's `fail_mode` applies.
    pub timeout_ms: u64,
    /// A concurrency slot not released within this long (an instance died
    /// holding it) frees itself. Keep it above your longest stream.
    pub lease_ms: u64,
}

impl Default for CounterSettings {
    fn default() -> Self {
        CounterSettings {
            store: CounterStoreKind::Local,
            redis_url: None,
            key_prefix: "sluice:".into(),
            timeout_ms: 200,
            lease_ms: 900_000,
        }
    }
}

/// Where the config-center entities live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigStoreKind {
    /// `<config file>.state.json`, written atomically (one instance).
    #[default]
    File,
    /// A MySQL/MariaDB database shared by every instance.
    Mysql,
}

/// The config-center store and, with MySQL, the Redis cache and change bus
/// that keep several instances in step.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigStoreSettings {
    /// `file` (default) or `mysql`.
    pub kind: ConfigStoreKind,
    /// `mysql://user:pass@host:3306/database` for `kind: mysql` (the
    /// database must exist; the tables are created and migrated on start).
    pub mysql_url: Option<Secret<String>>,
    /// `redis://host:6379/0`: config cache (`/sync`, `/preload`) and the
    /// change bus (version counter + pub/sub); `kind: mysql` only.
    pub redis_url: Option<Secret<String>>,
    /// Prefix of the config keys and channel in Redis.
    pub key_prefix: String,
    /// How often an instance compares its config version with the store's
    /// (catches up on changes whose message it missed).
    pub poll_ms: u64,
    /// Longest wait for one MySQL or Redis call of the config center.
    pub timeout_ms: u64,
}

impl Default for ConfigStoreSettings {
    fn default() -> Self {
        ConfigStoreSettings {
            kind: ConfigStoreKind::File,
            mysql_url: None,
            redis_url: None,
            key_prefix: "sluice:config:".into(),
            poll_ms: 1_000,
            timeout_ms: 2_000,
        }
    }
}

/// The whole config file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Config {
    pub server: ServerSettings,
    pub listen: Listen,
    pub limits: Limits,
    pub clients: Clients,
    pub timeouts: Timeouts,
    pub upstream: UpstreamSettings,
    pub auth: AuthSettings,
    pub metrics: MetricsSettings,
    /// Absent = no access log.
    pub access_log: Option<AccessLogSettings>,
    pub admin: AdminSettings,
    pub tokens: TokenSettings,
    pub counters: CounterSettings,
    pub config_store: ConfigStoreSettings,
    /// Add `X-Forwarded-For` with the client address to upstream requests.
    pub forward_xff: bool,
    /// gzip of upstream answers to clients that accept it.
    pub compression: Compression,
    /// The response cache's tiers.
    pub cache: CacheSettings,
    /// OpenTelemetry traces; none = off.
    pub tracing: Option<TracingSettings>,
    /// The fleet registry's heartbeat and this instance's address.
    pub fleet: FleetSettings,
    /// The Bridge: remote agents' tools behind the gateway.
    pub bridge: BridgeSettings,
    /// Namespace (code) of requests no matcher claims; none = such requests get 403.
    pub default_namespace: Option<String>,
    /// A request header whose value, a namespace code, picks the namespace
    /// when no matcher and no key binding does (`x-channel-code`); none =
    /// off. Lets clients choose any namespace: turn it on only where they
    /// may.
    pub channel_header: Option<String>,
    /// API keys created through the admin API (hashed).
    pub virtual_keys: Vec<VirtualKey>,
    /// Users who sign in with e-mail and password.
    pub users: Vec<User>,
    /// Agents' Bridge tokens (hashed; issued through the Bridge API).
    pub agent_tokens: Vec<AgentToken>,
    pub namespaces: Vec<Namespace>,
    pub upstream_servers: Vec<UpstreamServer>,
    pub matchers: Vec<Matcher>,
    pub proxy_rules: Vec<ProxyRule>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    /// The model catalog: public model names → deployments (YAML only).
    pub models: Vec<CatalogModel>,
}

/// gzip of upstream answers (the `gzip*` nginx directives map here):
/// applied to a response when `gzip` is on, the client accepts gzip, its
/// `Content-Type` is one of `types` (or `types` holds `*`) and its
/// `Content-Length`, when it has one, is at least `min_length`. Streams
/// (`text/event-stream`) and the gateway's own answers are never
/// compressed: events must reach the client as they are produced.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Compression {
    pub gzip: bool,
    /// 1 (fastest) to 9 (smallest).
    pub level: u32,
    /// Media types compressed (`text/html` always, as nginx does).
    pub types: Vec<String>,
    /// Smallest `Content-Length` compressed, in bytes.
    pub min_length: usize,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            gzip: false,
            level: 1,
            types: Vec::new(),
            min_length: 20,
        }
    }
}

impl Compression {
    /// Whether a response of `content_type` and `content_length` is
    /// compressed (the client's `Accept-Encoding` aside).
    pub fn applies(&self, content_type: Option<&str>, content_length: Option<usize>) -> bool {
        let mime = content_type
            .and_then(|t| t.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default();
        self.gzip
            && mime != "text/event-stream"
            && !mime.is_empty()
            && content_length.is_none_or(|l| l >= self.min_length)
            && (mime == "text/html"
                || self
                    .types
                    .iter()
                    .any(|t| t == "*" || t.eq_ignore_ascii_case(&mime)))
    }
}
