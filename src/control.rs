//! What the data plane and the process lifecycle may ask of the config
//! center, as a small trait: `GET /refresh-config` on the proxy listener
//! and SIGHUP reach the center through it, so neither `proxy` nor
//! `lifecycle` depends on `admin` (which implements it,
//! `admin::center::ConfigCenter`).

use crate::config::Config;
use crate::store::StoreError;
use async_trait::async_trait;

/// The config center's operations other modules use.
#[async_trait]
pub trait ConfigControl: Send + Sync {
    /// Loads the stored config when it is newer than the running one (the
    /// catch-up the bus and the periodic revision check do). `Ok(true)`
    /// when a newer config was applied.
    async fn catch_up(&self) -> Result<bool, StoreError>;

    /// `yaml` (the config file read again) replaces the settings the
    /// entities apply over; validated and compiled like any change, and
    /// nothing changes when it fails. Returns the settings that differ but
    /// only take effect after a restart.
    async fn reload_settings(&self, yaml: Config) -> Result<Vec<String>, Rejected>;

    /// Ends every session of user `id`: raises its `token_version`, so
    /// every token issued before is refused on every instance once the
    /// change reaches it.
    async fn end_sessions(&self, id: u64) -> Result<(), Rejected>;

    /// Records an agent token's SHA-256 (`sha256`, valid until
    /// `expires_at`, Unix seconds) for `agent_id`, after dropping every
    /// older version when `reset`; returns the token's version
    /// (`crate::bridge::tokens`). `actor` is who issued it, as the audit
    /// log records it (`token:<name>`, `key:<name>`).
    async fn issue_agent_token(
        &self,
        actor: &str,
        agent_id: &str,
        reset: bool,
        sha256: &str,
        expires_at: u64,
    ) -> Result<u64, Rejected>;
}

/// A config change refused: its problems, as one message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);
