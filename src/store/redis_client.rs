//! The one way Sluice makes a Redis client (`fred`): the counter store,
//! the config cache and bus, the response cache's shared tier, the fleet
//! registry and the Bridge relay all build theirs here, so every one of
//! them behaves the same against a single server, a Cluster or Sentinel
//! (the URL says which: `redis://`, `redis-cluster://`,
//! `redis-sentinel://`) and through a failover:
//!
//! - the first connection is retried like any other (`fail_fast` off): a
//!   gateway starts while Redis is down and connects when it comes;
//! - reconnection backs off exponentially from 100 ms to 2 s, for ever;
//! - a command fails after `timeout` (one attempt: callers decide what a
//!   failure means — the rule's fail mode, a cache miss, a retry later);
//! - connecting waits at most `timeout` (at least 500 ms);
//! - a connection that stops answering (a primary that died without
//!   closing its sockets) is dropped after `max(4 × timeout, 2 s)` and
//!   replaced, so a Sentinel or Cluster failover is followed;
//! - `TCP_NODELAY` (small requests, no batching delay).

use fred::prelude::*;
use fred::types::config::{TcpConfig, UnresponsiveConfig};
use std::time::Duration;

/// A client builder for `url` with the settings above.
pub fn builder(url: &str, timeout: Duration) -> Result<Builder, String> {
    if url.starts_with("rediss:") {
        return Err("rediss:// (TLS) is not supported by this build".into());
    }
    let mut config = Config::from_url(url).map_err(|e| format!("invalid redis url: {e}"))?;
    config.fail_fast = false;
    let timeout = timeout.max(Duration::from_millis(1));
    let connect = timeout.max(Duration::from_millis(500));
    let unresponsive = (timeout * 4).max(Duration::from_secs(2));
    let mut b = Builder::from_config(config);
    b.with_connection_config(|c| {
        c.connection_timeout = connect;
        c.internal_command_timeout = connect;
        c.max_command_attempts = 1;
        c.tcp = TcpConfig {
            nodelay: Some(true),
            ..TcpConfig::default()
        };
        c.unresponsive = UnresponsiveConfig {
            max_timeout: Some(unresponsive),
            interval: unresponsive / 4,
        };
    })
    .with_performance_config(|p| p.default_command_timeout = timeout)
    .set_policy(ReconnectPolicy::new_exponential(0, 100, 2000, 2));
    Ok(b)
}

/// Starts `client`'s connection task (it runs, and reconnects, for the
/// client's lifetime) and waits at most `within` for the first
/// connection; whether it came.
pub async fn start(client: &Client, within: Duration) -> bool {
    let _task = client.connect();
    matches!(
        tokio::time::timeout(within, client.wait_for_connect()).await,
        Ok(Ok(()))
    )
}
