//! The Redis counter store, connected on the proxy service's runtime.
//!
//! fred's connection task and the batching pump (`counter_batch.rs`) run on
//! the Tokio runtime that connects the client. Pingora runs each service on
//! a runtime of its own; were the client connected on another one (a
//! background service's, as before), every admission would cross threads
//! twice (request → pump, reply → request), each a futex wake-up and a
//! context switch. Connected on the proxy's runtime, the request, the pump
//! and the connection share its worker threads: the shared path's gateway
//! CPU per request fell by about a tenth and r/b rose from 0.71 to 0.84
//! (`load-tests/shared.sh`, same run; `load-tests/RESULTS.md`, "Shared
//! counters"). So [`LazyRedisStore::start`] is called by the proxy service
//! as it starts (`server.rs`, `OnServiceRuntime`); callers on other
//! runtimes (the admin API's spend ledger) wait for that connection
//! instead of making one.

use super::redis_counter::RedisCounterStore;
use async_trait::async_trait;
use sluice_filters::limits::store::{Admission, Check, CounterStore, Settle, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::SetOnce;

/// [`RedisCounterStore`] once [`LazyRedisStore::start`] has connected it.
pub struct LazyRedisStore {
    url: String,
    key_prefix: String,
    timeout: Duration,
    started: AtomicBool,
    inner: SetOnce<RedisCounterStore>,
    /// Why the store could not be made (an invalid URL; `sluice check`
    /// reports it before a start).
    failed: OnceLock<StoreError>,
}

impl LazyRedisStore {
    pub fn new(url: &str, key_prefix: &str, timeout: Duration) -> Self {
        LazyRedisStore {
            url: url.to_string(),
            key_prefix: key_prefix.to_string(),
            timeout,
            started: AtomicBool::new(false),
            inner: SetOnce::new(),
            failed: OnceLock::new(),
        }
    }

    /// Connects on the calling runtime (the first call only; it waits at
    /// most the command timeout for Redis, then keeps reconnecting in the
    /// background).
    pub async fn start(&self) {
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        match RedisCounterStore::connect(&self.url, &self.key_prefix, self.timeout).await {
            Ok(store) => {
                let _ = self.inner.set(store);
            }
            Err(e) => {
                log::error!("counter store: {e}");
                let _ = self.failed.set(e);
            }
        }
    }

    /// The connected store; before [`Self::start`] has made it, waits for
    /// it at most twice the command timeout (it takes one at most).
    async fn store(&self) -> Result<&RedisCounterStore, StoreError> {
        if let Some(store) = self.inner.get() {
            return Ok(store);
        }
        if let Some(e) = self.failed.get() {
            return Err(e.clone());
        }
        match tokio::time::timeout(2 * self.timeout, self.inner.wait()).await {
            Ok(store) => Ok(store),
            Err(_) => Err(self.failed.get().cloned().unwrap_or_else(|| {
                StoreError("redis: the counter store is not connected yet".into())
            })),
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
