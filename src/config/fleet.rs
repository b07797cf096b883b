//! Fleet settings (`fleet:` in the YAML file): how often an instance
//! renews its entry in the fleet registry and the address it gives there.

use serde::{Deserialize, Serialize};

/// The fleet registry (see `crate::fleet`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetSettings {
    /// Milliseconds between an instance's heartbeats; an instance missing
    /// three is no longer live. Read at start.
    pub heartbeat_ms: u64,
    /// The address other instances and operators reach this instance at
    /// (`host:port`); none = the host name and the proxy listener's port.
    pub advertise: Option<String>,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            heartbeat_ms: 1_000,
            advertise: None,
        }
    }
}
