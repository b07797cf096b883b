//! A Redis counter store connected on first use, from the runtime that
//! uses it: Pingora runs each service on its own tokio runtime, and fred's
//! connection tasks must live on a runtime that keeps running (not the
//! short startup runtime of `server.rs`). The gateway's background
//! service `sluice counters` makes that first use as the process starts.

use super::redis_counter::RedisCounterStore;
use async_trait::async_trait;
use sluice_filters::limits::store::{Admission, Check, CounterStore, Settle, StoreError};
use std::time::Duration;
use tokio::sync::OnceCell;

/// [`RedisCounterStore`] behind a connect-once cell.
pub struct LazyRedisStore {
    url: String,
    key_prefix: String,
    timeout: Duration,
    inner: OnceCell<RedisCounterStore>,
}

impl LazyRedisStore {
    pub fn new(url: &str, key_prefix: &str, timeout: Duration) -> Self {
        LazyRedisStore {
            url: url.to_string(),
            key_prefix: key_prefix.to_string(),
            timeout,
            inner: OnceCell::new(),
        }
    }

    async fn store(&self) -> Result<&RedisCounterStore, StoreError> {
        self.inner
            .get_or_try_init(|| {
                RedisCounterStore::connect(&self.url, &self.key_prefix, self.timeout)
            })
            .await
    }

    /// Whether Redis answers (for `/health`).
    pub async fn ping(&self) -> bool {
        match self.store().await {
            Ok(s) => s.ping().await,
            Err(_) => false,
        }
    }
}

#[async_trait]
impl CounterStore for LazyRedisStore {
    async fn admit(&self, checks: &[Check]) -> Result<Admission, StoreError> {
        self.store().await?.admit(checks).await
    }

    async fn settle(&self, ops: &[Settle]) -> Result<(), StoreError> {
        self.store().await?.settle(ops).await
    }

    async fn spend(&self, day: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.store().await?.spend(day).await
    }
}
