//! Redis as the config cache and change bus between instances
//! (`config_store.redis_url`, with the MySQL store), via `fred`.
//!
//! | key (after `key_prefix`) | holds |
//! | --- | --- |
//! | `version` | the newest config revision announced (only ever raised) |
//! | `state` | that revision's whole snapshot (JSON, as MySQL holds it) |
//! | `ns:{id}` | one namespace and what references it (`POST /preload/{id}`) |
//! | channel `changes` | a message with the revision, per committed change |
//!
//! After each committed change the instance that made it runs one script
//! that raises `version`, stores `state` and publishes the revision: every
//! other instance's follower hears it and applies the change at once. A
//! follower that missed messages (Redis restarted, connection dropped)
//! catches up from the stored revision at its next version check.
//! Connections use the same policy as the counter store: never fail on a
//! dead Redis, reconnect in the background, every call bounded in time.

use super::config_file::Entities;
use crate::store::StoreError;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Raises `version` (KEYS[1]) to ARGV[1] and stores the state (KEYS[2]) when
/// it is newer, then publishes the revision on KEYS[3] (a channel).
const ANNOUNCE: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local v = tonumber(ARGV[1])
if v > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SET', KEYS[2], ARGV[2])
end
redis.call('PUBLISH', KEYS[3], ARGV[1])
return cur
"#;

/// The Redis side of the config center.
pub struct ConfigBus {
    client: Client,
    subscriber: SubscriberClient,
    prefix: String,
    timeout: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn rerr(e: Error) -> StoreError {
    StoreError::from(e)
}

impl ConfigBus {
    /// Starts the clients (on the calling runtime, which must outlive them:
    /// the config I/O runtime). Fails only on an invalid URL.
    pub async fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
    ) -> Result<ConfigBus, StoreError> {
        let builder = super::redis_client::builder(url, timeout)
            .map_err(|e| StoreError::Invalid(format!("redis_url: {e}")))?;
        let client = builder.build().map_err(rerr)?;
        let subscriber = builder.build_subscriber_client().map_err(rerr)?;
        // The connection tasks run (and reconnect) for the clients' lifetime.
        let _client_task = client.connect();
        let _subscriber_task = subscriber.connect();
        let _resubscribe_task = subscriber.manage_subscriptions();
        for c in [&client as &dyn Waits, &subscriber] {
            if tokio::time::timeout(timeout, c.wait()).await.is_err() {
                log::warn!("config bus: redis not reachable yet; reconnecting in the background");
            }
        }
        // A cluster keeps every key of the announce script in one slot: the
        // prefix carries a hash tag (as the counter store's does).
        let prefix = if client.is_clustered() {
            super::redis_counter::cluster_prefix(prefix)
        } else {
            prefix.to_string()
        };
        let bus = ConfigBus {
            client,
            subscriber,
            prefix,
            timeout,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        };
        if let Err(e) = bus
            .bounded(bus.subscriber.subscribe(bus.key("changes")))
            .await
        {
            // manage_subscriptions subscribes again on reconnect; the
            // version check covers the gap.
            log::warn!("config bus: cannot subscribe yet: {e}");
        }
        Ok(bus)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, StoreError> {
        if !self.client.is_connected() {
            return Err(StoreError::NotConnected);
        }
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| StoreError::Timeout {
                store: "redis",
                ms: self.timeout.as_millis(),
            })?
            .map_err(rerr)
    }

    /// Announces a committed snapshot: version, state, message.
    pub async fn announce(&self, e: &Entities) -> Result<(), StoreError> {
        let keys = vec![self.key("version"), self.key("state"), self.key("changes")];
        let args = vec![e.revision.to_string(), e.to_json().to_string()];
        let _: i64 = self.bounded(self.client.eval(ANNOUNCE, keys, args)).await?;
        Ok(())
    }

    /// The newest announced revision (0 when none).
    pub async fn version(&self) -> Result<u64, StoreError> {
        let v: Option<u64> = self.bounded(self.client.get(self.key("version"))).await?;
        Ok(v.unwrap_or(0))
    }

    /// The cached snapshot when it is exactly `revision` (a hit), else
    /// `None` (a miss: read the store).
    pub async fn cached(&self, revision: u64) -> Option<Entities> {
        let text: Option<String> = self
            .bounded(self.client.get(self.key("state")))
            .await
            .ok()?;
        let found = text
            .and_then(|t| serde_json::from_str::<Entities>(&t).ok())
            .filter(|e| e.revision == revision);
        match &found {
            Some(_) => self.hits.fetch_add(1, Relaxed),
            None => self.misses.fetch_add(1, Relaxed),
        };
        found
    }

    /// `POST /sync`: writes the store's snapshot to Redis (state + version).
    pub async fn sync(&self, e: &Entities) -> Result<(), StoreError> {
        let json = e.to_json().to_string();
        let _: () = self
            .bounded(self.client.set(self.key("state"), json, None, None, false))
            .await?;
        let _: () = self
            .bounded(
                self.client
                    .set(self.key("version"), e.revision, None, None, false),
            )
            .await?;
        Ok(())
    }

    /// `POST /preload/{id}`: caches one namespace's view.
    pub async fn preload(&self, id: u64, view: &Value) -> Result<(), StoreError> {
        let _: () = self
            .bounded(self.client.set(
                self.key(&format!("ns:{id}")),
                view.to_string(),
                None,
                None,
                false,
            ))
            .await?;
        Ok(())
    }

    /// `GET /cache/stats`: hits and misses of this instance's catch-ups,
    /// bytes the config keys take, and the memory Redis has left.
    pub async fn stats(&self, namespace_ids: &[u64]) -> Result<Value, StoreError> {
        let mut size: u64 = self.bounded(self.client.strlen(self.key("state"))).await?;
        for id in namespace_ids {
            let n: u64 = self
                .bounded(self.client.strlen(self.key(&format!("ns:{id}"))))
                .await?;
            size += n;
        }
        let info: String = self
            .bounded(self.client.info(Some(fred::types::InfoKind::Memory)))
            .await?;
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let used = field("used_memory");
        let limit = match field("maxmemory") {
            0 => field("total_system_memory"),
            m => m,
        };
        Ok(json!({
            "cache_hits": self.hits.load(Relaxed),
            "cache_misses": self.misses.load(Relaxed),
            "cache_size": size,
            "cache_free": limit.saturating_sub(used),
        }))
    }

    /// Revisions announced on the channel, as they arrive.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<fred::types::Message> {
        self.subscriber.message_rx()
    }

    pub async fn ping(&self) -> bool {
        let pong: Result<String, StoreError> = self.bounded(self.client.ping(None)).await;
        pong.is_ok()
    }
}

/// Waiting for the first connection, for either client type.
#[async_trait::async_trait]
trait Waits: Sync {
    async fn wait(&self);
}

#[async_trait::async_trait]
impl Waits for Client {
    async fn wait(&self) {
        let _ = self.wait_for_connect().await;
    }
}

#[async_trait::async_trait]
impl Waits for SubscriberClient {
    async fn wait(&self) {
        let _ = self.wait_for_connect().await;
    }
}
