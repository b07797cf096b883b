//! The shared tier (L2): entries in Redis under
//! `{prefix}e:{namespace hex}:{model hex}:{key hex}` (hex, so a purge can
//! match a namespace or model with `SCAN` whatever its characters), with
//! the entry's whole lifetime (fresh and stale) as their expiry. The
//! client connects on first use from the runtime that uses it (fred's
//! connection task must live on a runtime that keeps running) and
//! reconnects in the background; every call is bounded by the timeout,
//! and a failed call is the caller's miss, never its error.

use super::entry::Entry;
use crate::store::redis_client;
use fred::prelude::*;
use fred::types::scan::Scanner;
use futures_util::StreamExt;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The Redis tier.
pub struct Shared {
    url: String,
    prefix: String,
    timeout: Duration,
    client: OnceCell<Client>,
}

/// What a purge matches.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Purge {
    pub namespace: Option<String>,
    pub model: Option<String>,
    /// 64 hex digits.
    pub key: Option<String>,
}

impl Shared {
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Shared {
        Shared {
            url: url.to_string(),
            prefix: prefix.to_string(),
            timeout: timeout.max(Duration::from_millis(1)),
            client: OnceCell::new(),
        }
    }

    async fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_try_init(|| async {
                let client = redis_client::builder(&self.url, self.timeout)?
                    .build()
                    .map_err(|e| e.to_string())?;
                // The first call waits for the first connection (up to a
                // second); later calls fail fast while it is down.
                redis_client::start(&client, self.timeout.max(Duration::from_secs(1))).await;
                Ok(client)
            })
            .await
    }

    fn key(&self, namespace: &str, model: &str, key: &[u8; 32]) -> String {
        format!(
            "{}e:{}:{}:{}",
            self.prefix,
            hex::encode(namespace),
            hex::encode(model),
            hex::encode(key)
        )
    }

    /// The entry of `key`; Ok(None) when Redis has none (or a value that
    /// is not an entry).
    pub async fn get(
        &self,
        namespace: &str,
        model: &str,
        key: &[u8; 32],
        max_bytes: usize,
    ) -> Result<Option<Entry>, String> {
        let client = self.client().await?;
        if !client.is_connected() {
            return Err("not connected".into());
        }
        let name = self.key(namespace, model, key);
        let value: Option<bytes::Bytes> = tokio::time::timeout(self.timeout, client.get(name))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(value.and_then(|v| Entry::decode(&v, max_bytes)))
    }

    /// Stores `entry` under `key` for its whole lifetime.
    pub async fn put(&self, key: &[u8; 32], entry: &Entry) -> Result<(), String> {
        let client = self.client().await?;
        if !client.is_connected() {
            return Err("not connected".into());
        }
        let name = self.key(&entry.namespace, &entry.model, key);
        let life = entry.ttl_ms.saturating_add(entry.stale_ms).max(1);
        let value = entry.encode();
        tokio::time::timeout(
            self.timeout,
            client.set::<(), _, _>(
                name,
                value,
                Some(Expiration::PX(life.min(i64::MAX as u64) as i64)),
                None,
                false,
            ),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())
    }

    /// Deletes the entries `purge` matches; returns how many.
    pub async fn purge(&self, purge: &Purge) -> Result<u64, String> {
        let client = self.client().await?;
        let part = |v: &Option<String>| v.as_deref().map_or("*".to_string(), hex::encode);
        let pattern = format!(
            "{}e:{}:{}:{}",
            self.prefix,
            part(&purge.namespace),
            part(&purge.model),
            purge
                .key
                .as_deref()
                .map_or("*".to_string(), |k| k.to_ascii_lowercase())
        );
        let mut removed = 0u64;
        // A cluster spreads the entries over its primaries: every one is
        // scanned, and keys are unlinked one by one (one slot per call).
        let clustered = client.is_clustered();
        let mut pages: std::pin::Pin<Box<dyn futures_util::Stream<Item = _> + Send>> = if clustered
        {
            Box::pin(client.scan_cluster(pattern, Some(500), None))
        } else {
            Box::pin(client.scan(pattern, Some(500), None))
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let page = match tokio::time::timeout_at(deadline, pages.next()).await {
                Ok(Some(page)) => page.map_err(|e| e.to_string())?,
                Ok(None) => break,
                Err(_) => return Err("purge took longer than 30 s".into()),
            };
            let mut page = page;
            if let Some(keys) = page.take_results() {
                if clustered {
                    for key in keys {
                        let n: u64 = client.unlink(key).await.map_err(|e| e.to_string())?;
                        removed += n;
                    }
                } else if !keys.is_empty() {
                    let n: u64 = client.unlink(keys).await.map_err(|e| e.to_string())?;
                    removed += n;
                }
            }
            page.next();
        }
        Ok(removed)
    }

    /// Tells every instance to purge its memory tier (`{prefix}purge`).
    pub async fn announce(&self, purge: &Purge) -> Result<(), String> {
        let client = self.client().await?;
        let message = serde_json::to_string(purge).map_err(|e| e.to_string())?;
        tokio::time::timeout(
            self.timeout.max(Duration::from_secs(1)),
            client.publish::<(), _, _>(format!("{}purge", self.prefix), message),
        )
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())
    }

    /// Purges announced by any instance, as they arrive, until `stop`
    /// changes (reconnecting and subscribing again after an outage).
    pub async fn purges(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
        apply: impl Fn(Purge),
    ) -> Result<(), String> {
        let subscriber = redis_client::builder(&self.url, self.timeout)?
            .build_subscriber_client()
            .map_err(|e| e.to_string())?;
        let _task = subscriber.connect();
        let _resubscribe = subscriber.manage_subscriptions();
        let _ = subscriber.wait_for_connect().await;
        let mut messages = subscriber.message_rx();
        if let Err(e) = subscriber.subscribe(format!("{}purge", self.prefix)).await {
            // manage_subscriptions subscribes again on reconnect.
            log::warn!("response cache: cannot subscribe to purges yet: {e}");
        }
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                m = messages.recv() => match m {
                    Ok(m) => {
                        let text: Option<String> = m.value.convert().ok();
                        match text.and_then(|t| serde_json::from_str::<Purge>(&t).ok()) {
                            Some(p) => apply(p),
                            None => log::warn!("response cache: an unreadable purge message"),
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
        }
        let _ = subscriber.quit().await;
        Ok(())
    }

    /// Whether Redis answers a `PING` within the timeout.
    pub async fn ping(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        matches!(
            tokio::time::timeout(self.timeout, client.ping::<String>(None)).await,
            Ok(Ok(_))
        )
    }
}
