//! Bridge settings (`bridge:` in the YAML file): remote agents and their
//! tools behind the gateway (see `crate::bridge`).

use serde::{Deserialize, Serialize};

/// The Bridge: agents dial a tunnel to the gateway, internal clients invoke
/// their tools.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Off: every `/internal/v1/bridge/…` and `/internal/v1/mcp` path is
    /// 404 as for any unknown endpoint.
    pub enabled: bool,
    /// Names of API keys (YAML or virtual) that may issue agent tokens
    /// (`POST /internal/v1/bridge/agent-token`), besides the admin token.
    pub token_issuers: Vec<String>,
    /// Lifetime of an agent token, in seconds.
    pub token_ttl_s: u64,
    /// Milliseconds between the gateway's pings on a tunnel; an agent that
    /// hears nothing for three periods reconnects.
    pub ping_ms: u64,
    /// Agents connected to one instance at most; more are refused 503.
    pub max_agents: usize,
    /// Tools one agent may announce at most.
    pub max_tools: usize,
    /// Invocations in progress on one instance at most; more are refused 503.
    pub max_invocations: usize,
    /// Default and largest `timeout_ms` of an invocation.
    pub default_timeout_ms: u64,
    pub max_timeout_ms: u64,
    /// Bytes of one message an agent sends (a result, an output chunk) at most.
    pub max_message_bytes: usize,
    /// Seconds finished invocations (for a repeated `req_id`) and
    /// lifecycle events (for `Last-Event-ID`) are kept.
    pub retention_s: u64,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            enabled: false,
            token_issuers: Vec::new(),
            token_ttl_s: 30 * 24 * 3600,
            ping_ms: 10_000,
            max_agents: 10_000,
            max_tools: 256,
            max_invocations: 4_096,
            default_timeout_ms: 60_000,
            max_timeout_ms: 600_000,
            max_message_bytes: 4 << 20,
            retention_s: 600,
        }
    }
}
