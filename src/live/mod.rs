//! Live state: what the gateway learns and counts while it runs, kept apart
//! from the compiled config snapshot ([`crate::state::Snapshot`]) so that a
//! config change — every admin write swaps in a new snapshot — keeps it.
//!
//! One [`LiveState`] is made at startup and handed to every snapshot build.
//! Entries are keyed by stable ids, never by indexes (which change between
//! snapshots):
//! - limit counters ([`LiveState::counters`], local or Redis);
//! - per upstream server (id, address, port): requests in flight (for
//!   `max_connections`), consecutive connect failures and passive ejection;
//! - per catalog deployment (model, deployment, pool, breaker settings):
//!   the circuit breaker, latency/success statistics, `Retry-After`
//!   cool-down;
//! - per namespace, route and key: the per-minute history behind the
//!   admin figures ([`window`]).
//!
//! A snapshot holds `Arc`s to its entries; entries no snapshot holds any
//! more are dropped at the next build ([`LiveState::prune`]).
//! [`labels`] resolves a snapshot's metric label values and handles once
//! per build.

pub mod labels;
pub mod window;

use sluice_filters::balance::{ArmStats, Breaker, BreakerConfig};
use sluice_filters::limits::local::LocalCounterStore;
use sluice_filters::limits::store::{
    Admission, Check, CounterStore, Settle, StoreError, SystemClock,
};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use window::{Kind, Series};

pub use labels::MetricHandles;

/// Where the limit rules count.
#[derive(Clone)]
pub enum Counters {
    /// In this process. Called directly: it never waits, so the request
    /// path skips the boxed future of each `async_trait` call (two
    /// allocations per request).
    Local(Arc<LocalCounterStore>),
    /// Shared by every instance (Redis).
    Shared(Arc<dyn CounterStore>),
}

impl Counters {
    /// Evaluates `checks` atomically; commits all or none.
    pub async fn admit(&self, checks: &[Check]) -> Result<Admission, StoreError> {
        match self {
            Counters::Local(local) => Ok(local.admit_now(checks)),
            Counters::Shared(store) => {
                let out = store.admit(checks).await;
                crate::store::status::status().set_counters(out.is_ok());
                out
            }
        }
    }

    /// The spend ledger of `day` (`YYYY-MM-DD`, UTC): entries are
    /// namespace, key name and model joined by [`LEDGER_SEPARATOR`].
    pub async fn spend(&self, day: &str) -> Result<Vec<(String, u64)>, StoreError> {
        match self {
            Counters::Local(local) => Ok(local.spend_now(day)),
            Counters::Shared(store) => store.spend(day).await,
        }
    }

    /// Applies settlements.
    pub async fn settle(&self, ops: &[Settle]) -> Result<(), StoreError> {
        match self {
            Counters::Local(local) => {
                local.settle_now(ops);
                Ok(())
            }
            Counters::Shared(store) => {
                // What the stand-in admitted (`fail_mode: local_share`)
                // settles there.
                let mark = sluice_filters::limits::plan::LOCAL_SHARE_MARK;
                let local = |op: &Settle| op.key().is_some_and(|k| k.starts_with(mark));
                if ops.iter().any(local) {
                    let (here, shared): (Vec<Settle>, Vec<Settle>) =
                        ops.iter().cloned().partition(local);
                    stand_in().settle_now(&here);
                    if shared.is_empty() {
                        return Ok(());
                    }
                    return store.settle(&shared).await;
                }
                // Queued: the store's health is the admissions' to say.
                store.settle(ops).await
            }
        }
    }
}

/// The in-process store that stands in for the shared one while it is
/// unreachable, for the rules with `fail_mode: local_share` (their keys
/// carry [`sluice_filters::limits::plan::LOCAL_SHARE_MARK`]).
pub fn stand_in() -> &'static LocalCounterStore {
    static STORE: std::sync::OnceLock<LocalCounterStore> = std::sync::OnceLock::new();
    STORE.get_or_init(|| LocalCounterStore::new(Arc::new(SystemClock)))
}

/// What the shared store last left of each `local_share` limit (the
/// shares of an outage are of that, not of the whole limit).
pub fn seen_remaining() -> &'static Mutex<sluice_filters::limits::SeenRemaining> {
    static SEEN: std::sync::OnceLock<Mutex<sluice_filters::limits::SeenRemaining>> =
        std::sync::OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(sluice_filters::limits::SeenRemaining::new(SEEN_KEYS)))
}

/// Keys [`seen_remaining`] holds at most (about 100 bytes each).
const SEEN_KEYS: usize = 100_000;

/// The shared store answers again: the windows and budgets the stand-in
/// counted are charged to the shared ones (what each instance admitted and
/// spent on its own adds up there; a sliding window's admissions count as
/// made now), and the stand-in starts empty. Answers how many counts were
/// handed over.
pub async fn hand_over_stand_in(counters: &Counters) -> usize {
    let Counters::Shared(store) = counters else {
        return 0;
    };
    let mark = sluice_filters::limits::plan::LOCAL_SHARE_MARK;
    // Under the shared store's keys (the stand-in's carry the mark).
    let ops: Vec<Settle> = stand_in()
        .take_counts()
        .into_iter()
        .filter_map(|mut op| {
            let key = op.key_mut()?;
            *key = key.strip_prefix(mark)?.to_string();
            Some(op)
        })
        .collect();
    if ops.is_empty() {
        return 0;
    }
    match store.settle(&ops).await {
        Ok(()) => ops.len(),
        Err(e) => {
            log::error!(
                "counter store: the counts made during the outage were not handed over: {e}"
            );
            0
        }
    }
}

/// Between a model and a deployment in the fleet's routing figures.
pub const FLEET_KEY_SEPARATOR: char = '\u{1f}';

/// The key of a catalog deployment in the fleet's routing figures.
pub fn fleet_key(model: &str, deployment: &str) -> String {
    format!("{model}{FLEET_KEY_SEPARATOR}{deployment}")
}

/// The other live instances' routing figures, merged per deployment
/// (written by the fleet's heartbeat, read when a catalog model orders its
/// deployments).
pub fn fleet_routing(
) -> &'static arc_swap::ArcSwap<HashMap<String, sluice_filters::balance::FleetView>> {
    static VIEW: std::sync::OnceLock<
        arc_swap::ArcSwap<HashMap<String, sluice_filters::balance::FleetView>>,
    > = std::sync::OnceLock::new();
    VIEW.get_or_init(|| arc_swap::ArcSwap::from_pointee(HashMap::new()))
}

/// Between the parts (namespace, key, model) of a spend ledger entry.
pub const LEDGER_SEPARATOR: &str = "\u{1f}";

/// The live state of the process (see the module docs).
pub struct LiveState {
    counters: Counters,
    servers: Table<(u64, String, u16), ServerLive>,
    deployments: Table<(String, String, String, String), Mutex<DeploymentLive>>,
    windows: Table<(Kind, String), Series>,
}

/// Entries by key, shared with the snapshots that use them.
struct Table<K, V>(Mutex<HashMap<K, Arc<V>>>);

impl<K: Hash + Eq, V> Table<K, V> {
    fn new() -> Self {
        Table(Mutex::new(HashMap::new()))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<V>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get_or(&self, key: K, make: impl FnOnce() -> V) -> Arc<V> {
        self.lock()
            .entry(key)
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }

    /// Drops the entries only this table holds.
    fn prune(&self) {
        self.lock().retain(|_, v| Arc::strong_count(v) > 1);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl LiveState {
    /// Live state whose limits count in `counters`.
    pub fn new(counters: Counters) -> Arc<LiveState> {
        Arc::new(LiveState {
            counters,
            servers: Table::new(),
            deployments: Table::new(),
            windows: Table::new(),
        })
    }

    /// Live state with in-process counters (a single instance, tests).
    pub fn local() -> Arc<LiveState> {
        LiveState::new(Counters::Local(Arc::new(LocalCounterStore::new(Arc::new(
            SystemClock,
        )))))
    }

    /// Where the limit rules count.
    pub fn counters(&self) -> Counters {
        self.counters.clone()
    }

    /// The live counters of upstream server `id` at `address:port` (a
    /// server moved to another address starts afresh).
    pub fn server(&self, id: u64, address: &str, port: u16) -> Arc<ServerLive> {
        self.servers
            .get_or((id, address.to_string(), port), ServerLive::default)
    }

    /// The breaker, statistics and cool-down of deployment `deployment` of
    /// catalog model `model` on pool `pool` (changed breaker settings
    /// start a new breaker and statistics).
    pub fn deployment(
        &self,
        model: &str,
        deployment: &str,
        pool: &str,
        breaker: &BreakerConfig,
    ) -> Arc<Mutex<DeploymentLive>> {
        let key = (
            model.to_string(),
            deployment.to_string(),
            pool.to_string(),
            format!("{breaker:?}"),
        );
        self.deployments.get_or(key, || {
            Mutex::new(DeploymentLive {
                breaker: Breaker::new(breaker.clone()),
                stats: ArmStats::new(),
                arms: Default::default(),
                cooldown_until_ms: 0,
            })
        })
    }

    /// What this instance publishes to the fleet: per catalog deployment
    /// (`model`, [`FLEET_KEY_SEPARATOR`], `deployment`), its figures and
    /// how long its breaker stays open (wall-clock ms).
    pub fn routing_figures(&self) -> HashMap<String, sluice_filters::balance::Published> {
        let (mono, wall) = (crate::clock::mono_ms(), crate::clock::wall_ms());
        let mut out = HashMap::new();
        for ((model, deployment, _, _), live) in self.deployments.lock().iter() {
            let live = live.lock().unwrap_or_else(|e| e.into_inner());
            let open_until_ms = match live.breaker.state(mono) {
                sluice_filters::balance::BreakerState::Open { until_ms } => {
                    wall + until_ms.saturating_sub(mono)
                }
                _ => 0,
            };
            let mut arms = [(0, 0); sluice_filters::balance::fleet::ARMS];
            for (sum, a) in arms.iter_mut().zip(&live.arms) {
                *sum = (a.trials, a.successes);
            }
            out.insert(
                fleet_key(model, deployment),
                sluice_filters::balance::Published {
                    trials: live.stats.trials,
                    successes: live.stats.successes,
                    ewma_ttfb_ms: live.stats.ewma_ttfb_ms,
                    decayed_success_rate: live.stats.decayed_success_rate,
                    open_until_ms,
                    arms,
                },
            );
        }
        out
    }

    /// The per-minute history of the entity of `kind` named `name`.
    pub fn series(&self, kind: Kind, name: &str) -> Arc<Series> {
        self.windows
            .get_or((kind, name.to_string()), Series::default)
    }

    /// Drops the entries no snapshot holds any more (called when a
    /// snapshot is built, so removed servers, deployments and entities do
    /// not accumulate).
    pub fn prune(&self) {
        self.servers.prune();
        self.deployments.prune();
        self.windows.prune();
    }

    /// (servers, deployments, series) held: for tests and diagnostics.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.servers.len(),
            self.deployments.len(),
            self.windows.len(),
        )
    }
}

/// The live counters of one upstream server.
#[derive(Debug, Default)]
pub struct ServerLive {
    /// Requests in flight to this server.
    pub inflight: AtomicUsize,
    consecutive_failures: AtomicU32,
    /// Monotonic ms ([`crate::clock::mono_ms`]) until which passive
    /// ejection keeps traffic away.
    ejected_until_ms: AtomicU64,
}

impl ServerLive {
    /// Whether passive ejection currently keeps traffic away.
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Relaxed) > now_ms
    }

    /// Records a connect failure; ejects the server after `threshold`
    /// consecutive ones. Returns true when this failure ejected it.
    pub fn record_failure(&self, threshold: u32, eject_ms: u64, now_ms: u64) -> bool {
        let n = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        if threshold > 0 && n >= threshold {
            self.consecutive_failures.store(0, Relaxed);
            self.ejected_until_ms.store(now_ms + eject_ms, Relaxed);
            return true;
        }
        false
    }

    /// Records a successful connection.
    pub fn record_success(&self) {
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
    }
}

/// The mutable part of a catalog deployment (held only for a call, never
/// across I/O).
#[derive(Debug)]
pub struct DeploymentLive {
    pub breaker: Breaker,
    pub stats: ArmStats,
    /// The same, per operation and channel, for the bandit report
    /// (indexed by `catalog::Arm::index`).
    pub arms: [ArmStats; 4],
    /// A `Retry-After` keeps requests away until then (monotonic ms).
    pub cooldown_until_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_shared_by_key_and_pruned_when_unused() {
        let live = LiveState::local();
        let a = live.server(1, "10.0.0.1", 80);
        a.inflight.store(3, Relaxed);
        // The next snapshot gets the same counters.
        assert_eq!(live.server(1, "10.0.0.1", 80).inflight.load(Relaxed), 3);
        // Another address is another server.
        assert_eq!(live.server(1, "10.0.0.2", 80).inflight.load(Relaxed), 0);
        live.prune();
        assert_eq!(live.sizes().0, 1, "only the held entry stays");
        drop(a);
        live.prune();
        assert_eq!(live.sizes().0, 0);

        let cfg = BreakerConfig::default();
        let d = live.deployment("m", "d", "p", &cfg);
        d.lock().unwrap().cooldown_until_ms = 7;
        assert_eq!(
            live.deployment("m", "d", "p", &cfg)
                .lock()
                .unwrap()
                .cooldown_until_ms,
            7
        );
        let other = BreakerConfig {
            consecutive_failures: cfg.consecutive_failures + 1,
            ..cfg.clone()
        };
        assert_eq!(
            live.deployment("m", "d", "p", &other)
                .lock()
                .unwrap()
                .cooldown_until_ms,
            0
        );

        let s = live.series(Kind::Namespace, "acme");
        assert!(Arc::ptr_eq(&s, &live.series(Kind::Namespace, "acme")));
    }
}
