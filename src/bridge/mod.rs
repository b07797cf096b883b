//! The Bridge: agents running elsewhere (behind NAT, on a laptop, in
//! another cluster) dial out to the gateway and their tools become callable
//! by internal clients, with the gateway's identities, limits and metrics.
//!
//! | module | owns |
//! | --- | --- |
//! | [`wire`] | the tunnel's messages |
//! | [`tokens`] | agent tokens: issue, reset, check |
//! | [`hub`](mod@hub) | this instance's agents, invocations and lifecycle events |
//! | [`events`] | the event log and resuming it |
//! | [`schema`] | tool arguments against the tool's JSON Schema |
//! | [`mcp`] | the same tools as an MCP server (streamable HTTP) |
//! | [`relay`] | invocations across instances, through the fleet's Redis |
//! | [`agent`] | the reference agent (`sluice agent`) |
//!
//! The HTTP side (paths, authentication, SSE) is `crate::proxy::bridge`.

pub mod agent;
pub mod events;
pub mod hub;
pub mod mcp;
pub mod relay;
pub mod schema;
pub mod tokens;
pub mod wire;

pub use hub::hub;

/// A config applied: the hub takes its settings, and tunnels opened with
/// a token that is no longer valid close.
pub fn applied(config: &crate::config::Config) {
    hub().configure(&config.bridge);
    let valid = tokens::still_valid(config, crate::clock::unix_secs());
    hub().revalidate(&valid);
}

/// The Bridge settings of the config applied last.
pub fn settings() -> crate::config::BridgeSettings {
    hub().settings()
}
