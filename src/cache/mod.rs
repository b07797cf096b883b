//! The response cache: answers of cacheable requests kept in memory (L1,
//! [`moka`], weighed by size, each entry expiring at the end of its
//! lifetime) and, when `cache.redis_url` is set, in Redis shared by every
//! instance (L2, [`redis`], compressed). A lookup reads L1, then L2, and
//! fills L1 from an L2 hit; a store writes L1 at once and L2 in the
//! background. A Redis failure is counted and the request goes on with
//! L1 alone. Coalescing of identical requests in flight is in [`flight`].
//!
//! Which requests are cacheable, their keys and freshness are decided by
//! `sluice_filters::cache`; the proxy glue (lookup before the upstream,
//! recording the answer, replay) is `src/proxy/cache.rs`. One cache per
//! process ([`cache`]), made from the settings at start ([`init`]).

pub mod entry;
pub mod flight;
pub mod redis;

use crate::config::CacheSettings;
use entry::Entry;
use flight::Flights;
use redis::{Purge, Shared};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where a lookup found its entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Redis,
}

/// Counts since start (for `/stats` and the admin API).
#[derive(Default)]
pub struct Counts {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    pub bypass: AtomicU64,
    pub coalesced: AtomicU64,
    pub stored: AtomicU64,
    pub redis_hits: AtomicU64,
    pub redis_errors: AtomicU64,
    pub redis_writes: AtomicU64,
    pub served_bytes: AtomicU64,
}

/// The process's response cache.
pub struct ResponseCache {
    memory: moka::sync::Cache<[u8; 32], Arc<Entry>>,
    capacity: u64,
    shared: Option<Shared>,
    flights: Arc<Flights>,
    max_entry_bytes: AtomicUsize,
    pub counts: Counts,
}

/// Expires an L1 entry at the end of its whole lifetime (fresh + stale).
struct Lifetime;

impl moka::Expiry<[u8; 32], Arc<Entry>> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        e: &Arc<Entry>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let end = e
            .stored_ms
            .saturating_add(e.ttl_ms)
            .saturating_add(e.stale_ms);
        Some(Duration::from_millis(
            end.saturating_sub(crate::clock::wall_ms()),
        ))
    }
}

static CACHE: OnceLock<ResponseCache> = OnceLock::new();

/// Makes the process's cache from `settings` (the first call wins; later
/// calls only update the entry size bound, which applies at once).
pub fn init(settings: &CacheSettings) -> &'static ResponseCache {
    let c = CACHE.get_or_init(|| ResponseCache::new(settings));
    c.max_entry_bytes.store(settings.max_entry_bytes, Relaxed);
    c
}

/// The process's cache (default settings when [`init`] was not called).
pub fn cache() -> &'static ResponseCache {
    CACHE.get_or_init(|| ResponseCache::new(&CacheSettings::default()))
}

impl ResponseCache {
    fn new(s: &CacheSettings) -> ResponseCache {
        let capacity = s.memory_mb.saturating_mul(1 << 20);
        ResponseCache {
            memory: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .weigher(|_, e: &Arc<Entry>| e.weight())
                .expire_after(Lifetime)
                .support_invalidation_closures()
                .build(),
            capacity,
            shared: s
                .redis_url
                .as_ref()
                .filter(|u| !u.expose().is_empty())
                .map(|url| {
                    Shared::new(
                        url.expose(),
                        &s.key_prefix,
                        Duration::from_millis(s.timeout_ms),
                    )
                }),
            flights: Arc::new(Flights::default()),
            max_entry_bytes: AtomicUsize::new(s.max_entry_bytes),
            counts: Counts::default(),
        }
    }

    /// Largest answer stored, in bytes.
    pub fn max_entry_bytes(&self) -> usize {
        self.max_entry_bytes.load(Relaxed)
    }

    /// The flights in progress (coalescing).
    pub fn flights(&self) -> &Arc<Flights> {
        &self.flights
    }

    /// Whether an L2 tier is configured.
    pub fn has_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// The entry of `key` from L1, else L2 (filling L1).
    pub async fn lookup(
        &self,
        namespace: &str,
        model: &str,
        key: &[u8; 32],
    ) -> Option<(Arc<Entry>, Tier)> {
        if let Some(e) = self.memory.get(key) {
            return Some((e, Tier::Memory));
        }
        let shared = self.shared.as_ref()?;
        match shared
            .get(namespace, model, key, self.max_entry_bytes())
            .await
        {
            Ok(Some(e)) if e.namespace == namespace && e.model == model => {
                self.counts.redis_hits.fetch_add(1, Relaxed);
                let e = Arc::new(e);
                self.memory.insert(*key, e.clone());
                Some((e, Tier::Redis))
            }
            Ok(_) => None,
            Err(why) => {
                self.redis_failed("read", &why);
                None
            }
        }
    }

    fn redis_failed(&self, what: &str, why: &str) {
        let n = self.counts.redis_errors.fetch_add(1, Relaxed);
        if n % 1000 == 0 {
            log::warn!("response cache: redis {what} failed ({why}); serving from memory only");
        }
    }

    /// Stores `entry` under `key`: L1 now, L2 in the background.
    pub fn store(&'static self, key: [u8; 32], entry: Entry) {
        self.counts.stored.fetch_add(1, Relaxed);
        let entry = Arc::new(entry);
        self.memory.insert(key, entry.clone());
        if let Some(shared) = &self.shared {
            tokio::spawn(async move {
                match shared.put(&key, &entry).await {
                    Ok(()) => {
                        self.counts.redis_writes.fetch_add(1, Relaxed);
                    }
                    Err(why) => self.redis_failed("write", &why),
                }
            });
        }
    }

    /// Removes the entries `purge` matches from L1 and L2, and tells the
    /// other instances to purge their L1; returns how many L2 held (L1's
    /// removals are not counted: they are lazy).
    pub async fn purge(&self, purge: &Purge) -> Result<u64, String> {
        self.purge_memory(purge);
        match &self.shared {
            Some(shared) => {
                let n = shared.purge(purge).await?;
                shared.announce(purge).await?;
                Ok(n)
            }
            None => Ok(0),
        }
    }

    /// Applies the purges other instances announce to this one's memory
    /// tier, until `stop` changes (a background service; no-op without a
    /// Redis tier).
    pub async fn follow_purges(&'static self, stop: tokio::sync::watch::Receiver<bool>) {
        let Some(shared) = &self.shared else {
            return;
        };
        if let Err(e) = shared.purges(stop, |p| self.purge_memory(&p)).await {
            log::warn!("response cache: purges of other instances are not followed: {e}");
        }
    }

    /// Removes the entries `purge` matches from the memory tier.
    fn purge_memory(&self, purge: &Purge) {
        let p = purge.clone();
        let key = purge.key.as_deref().and_then(|k| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(k, &mut out).ok().map(|_| out)
        });
        if purge.namespace.is_none() && purge.model.is_none() && purge.key.is_none() {
            self.memory.invalidate_all();
        } else if let (Some(k), None, None) = (key, &purge.namespace, &purge.model) {
            self.memory.invalidate(&k);
        } else {
            let _ = self.memory.invalidate_entries_if(move |k, e| {
                p.namespace.as_ref().is_none_or(|n| *n == e.namespace)
                    && p.model.as_ref().is_none_or(|m| *m == e.model)
                    && key.is_none_or(|x| x == *k)
            });
        }
    }

    /// Entries and bytes held in memory now.
    pub fn memory_usage(&self) -> (u64, u64) {
        self.memory.run_pending_tasks();
        (self.memory.entry_count(), self.memory.weighted_size())
    }

    /// L1 capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether the L2 tier answers (`/health` detail).
    pub async fn shared_up(&self) -> Option<bool> {
        match &self.shared {
            Some(s) => Some(s.ping().await),
            None => None,
        }
    }

    /// The figures of `/stats` and the admin API.
    pub fn stats(&self) -> serde_json::Value {
        let (entries, bytes) = self.memory_usage();
        let c = &self.counts;
        serde_json::json!({
            "hits": c.hits.load(Relaxed),
            "misses": c.misses.load(Relaxed),
            "stale": c.stale.load(Relaxed),
            "bypass": c.bypass.load(Relaxed),
            "coalesced": c.coalesced.load(Relaxed),
            "stored": c.stored.load(Relaxed),
            "redis_hits": c.redis_hits.load(Relaxed),
            "redis_errors": c.redis_errors.load(Relaxed),
            "redis_writes": c.redis_writes.load(Relaxed),
            "served_bytes": c.served_bytes.load(Relaxed),
            "memory_entries": entries,
            "memory_bytes": bytes,
            "memory_capacity_bytes": self.capacity,
            "redis": self.shared.is_some(),
            "in_flight": self.flights.in_progress(),
        })
    }
}
