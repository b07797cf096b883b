//! Hot apply: every accepted change takes the current entity snapshot,
//! applies the change, validates the whole config over the YAML's settings
//! (the checks of `sluice check`), compiles a new [`Snapshot`] on the same
//! counter store, resolves its upstream names and probes their health,
//! commits the snapshot to the store (one transaction, refused when another
//! instance committed first: then the center catches up and redoes the
//! change), then swaps the runtime in and announces the new revision on the
//! Redis bus. Any problem on the way leaves both the store and the running
//! gateway untouched; a store outage answers 503 and changes nothing. One
//! async mutex serializes changes (and catch-ups), so concurrent updates
//! never lose one another.
//!
//! Changes made by other instances arrive through [`follow`]: a message on
//! the bus, or the periodic revision check, makes the center load the
//! newer snapshot (from the Redis cache when it holds exactly that
//! revision, else from the store), compile and swap it the same way.

use super::ApiError;
use crate::config::{Config, Problem};
use crate::control::Rejected;
use crate::state::{SharedSnapshot, Snapshot};
use crate::store::config_bus::ConfigBus;
use crate::store::config_file::Entities;
use crate::store::entity_store::{EntityStore, SaveError};
use crate::store::history::{AuditEntry, AuditQuery, Commit, Memory, RevisionRecord};
use crate::store::status::status;
use crate::store::StoreError;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Attempts of one change when other instances keep committing first.
const ATTEMPTS: u64 = 20;

/// Pause before retrying a change that lost a commit race: random-ish
/// (`fastrand`) and growing with the attempt, so two instances writing
/// at once fall out of step instead of colliding again (a fixed retry
/// let one side lose five times in a row under load).
fn backoff(attempt: u64) -> Duration {
    Duration::from_millis(fastrand::u64(5..25) * attempt.min(10))
}

/// The config center's state: the applied snapshot and where it is stored.
pub struct ConfigCenter {
    runtime: SharedSnapshot,
    /// The YAML's settings, before any setting fragment (read again on
    /// SIGHUP).
    base: ArcSwap<Config>,
    store: Option<Arc<dyn EntityStore>>,
    bus: Option<Arc<ConfigBus>>,
    /// The snapshot the running runtime was built from (read without the lock).
    current: ArcSwap<Entities>,
    lock: tokio::sync::Mutex<()>,
    /// A stored revision that failed to compile here (logged once).
    refused: AtomicU64,
    /// The history when there is no store to keep it.
    memory: std::sync::Mutex<Memory>,
}

impl ConfigCenter {
    /// `entities` must be what `runtime` was built from (over the YAML
    /// settings `base`); with no `store`, changes apply but are not persisted.
    pub fn new(
        runtime: SharedSnapshot,
        base: Config,
        store: Option<Arc<dyn EntityStore>>,
        bus: Option<Arc<ConfigBus>>,
        entities: Entities,
    ) -> Self {
        status().set_revision(entities.revision);
        ConfigCenter {
            runtime,
            base: ArcSwap::from_pointee(base),
            store,
            bus,
            current: ArcSwap::from_pointee(entities),
            lock: tokio::sync::Mutex::new(()),
            refused: AtomicU64::new(0),
            memory: std::sync::Mutex::new(Memory::default()),
        }
    }

    /// The applied snapshot.
    pub fn snapshot(&self) -> Arc<Entities> {
        self.current.load_full()
    }

    /// The running runtime.
    pub fn runtime(&self) -> Arc<Snapshot> {
        self.runtime.load_full()
    }

    /// The Redis bus, when configured.
    /// The applied config's warnings (what can never take effect yet),
    /// entities named by id.
    pub fn warnings(&self) -> Vec<String> {
        let e = self.current.load();
        self.runtime
            .load()
            .warnings
            .iter()
            .map(|p| describe(p, &e))
            .collect()
    }

    pub fn bus(&self) -> Option<&Arc<ConfigBus>> {
        self.bus.as_ref()
    }

    /// The entity store, when changes are persisted.
    pub fn store(&self) -> Option<&Arc<dyn EntityStore>> {
        self.store.as_ref()
    }

    /// Validates `next` over the YAML settings and compiles it, ready to swap.
    async fn compile(&self, next: &Entities, rt: &Snapshot) -> Result<Snapshot, Vec<Problem>> {
        let config = next.config_over(&self.base.load())?;
        let fresh = Snapshot::build(config, &rt.live)?;
        fresh.warm_tokenizers();
        // New pools start unresolved: resolve and probe before any request sees them.
        fresh.refresh_pools().await;
        fresh.health_check_pools().await;
        Ok(fresh)
    }

    fn swap(&self, fresh: Snapshot, next: Entities) {
        status().set_revision(next.revision);
        let fresh = Arc::new(fresh);
        self.runtime.store(fresh.clone());
        self.current.store(Arc::new(next));
        crate::bridge::applied(&fresh.config);
        crate::fleet::nudge();
        crate::metrics::metrics().config_applied(false);
    }

    /// [`ConfigCenter::mutate_as`] by `system` (the gateway itself).
    pub async fn mutate<T>(
        &self,
        change: impl Fn(&mut Entities, &Snapshot) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.mutate_as("system", "change", change).await
    }

    /// Applies `change` to a copy of the snapshot, then validates, compiles,
    /// commits and swaps (see the module docs). `change` returns what the
    /// caller needs back (an id) or the error to answer with; it may run
    /// again on a newer snapshot when another instance committed first.
    /// The revision is recorded as made by `actor` for `cause` (`change`,
    /// `restore`) with its audit entries.
    pub async fn mutate_as<T>(
        &self,
        actor: &str,
        cause: &str,
        change: impl Fn(&mut Entities, &Snapshot) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let _guard = self.lock.lock().await;
        for attempt in 1..=ATTEMPTS {
            let rt = self.runtime.load_full();
            let prev = self.current.load_full();
            let mut next = (*prev).clone();
            let out = change(&mut next, &rt)?;
            next.revision = prev.revision + 1;
            let fresh = self
                .compile(&next, &rt)
                .await
                .map_err(|p| ApiError::bad_request(join(&p, &next)))?;
            let commit = Commit::new(&prev, &next, actor, cause, crate::clock::unix_secs());
            if let Some(store) = &self.store {
                match store.save(&prev, &next, &commit).await {
                    Ok(()) => status().set_store_ok(true),
                    Err(SaveError::Conflict) => {
                        tokio::time::sleep(backoff(attempt)).await;
                        self.catch_up_locked().await.map_err(unavailable)?;
                        continue;
                    }
                    Err(SaveError::Unavailable(e)) => {
                        status().set_store_ok(false);
                        return Err(unavailable(e));
                    }
                }
            }
            if self.store.is_none() {
                self.memory().record(&commit, &prev, &next);
            }
            self.swap(fresh, next.clone());
            self.announce(&next).await;
            return Ok(out);
        }
        Err(ApiError::conflict(
            "配置正被其他实例频繁修改，本次变更未保存，请重试",
        ))
    }

    /// SIGHUP: `yaml` (the config file read again) replaces the settings
    /// the entities are applied over; the entities stay the store's. The
    /// change is validated and compiled like any other and changes nothing
    /// when it fails. Returns the settings that differ but only take effect
    /// after a restart (listeners, threads, stores).
    pub async fn reload_settings(&self, yaml: Config) -> Result<Vec<String>, Rejected> {
        let _guard = self.lock.lock().await;
        let rt = self.runtime.load_full();
        let current = self.current.load_full();
        let config = current
            .config_over(&yaml)
            .map_err(|p| Rejected(join(&p, &current)))?;
        let fresh = Snapshot::build(config, &rt.live).map_err(|p| Rejected(join(&p, &current)))?;
        fresh.warm_tokenizers();
        fresh.refresh_pools().await;
        fresh.health_check_pools().await;
        let before = self.base.load_full();
        let restart = restart_only(&before, &yaml);
        self.base.store(Arc::new(yaml));
        self.runtime.store(Arc::new(fresh));
        crate::metrics::metrics().config_applied(false);
        Ok(restart)
    }

    /// Tells the other instances about a committed snapshot.
    async fn announce(&self, next: &Entities) {
        if let Some(bus) = &self.bus {
            match bus.announce(next).await {
                Ok(()) => status().set_bus(Some(true)),
                Err(e) => {
                    status().set_bus(Some(false));
                    log::warn!(
                        "config bus: revision {} not announced ({e}); other instances catch up at their next version check",
                        next.revision
                    );
                }
            }
        }
    }

    /// Up to `limit` kept revisions below `before`, newest first.
    pub async fn revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        match &self.store {
            Some(store) => store.revisions(before, limit).await,
            None => Ok(self.memory().revisions(before, limit)),
        }
    }

    /// The snapshot of revision `n`: the applied one, or a kept one.
    pub async fn snapshot_at(&self, n: u64) -> Result<Option<Entities>, StoreError> {
        let current = self.current.load_full();
        if current.revision == n {
            return Ok(Some((*current).clone()));
        }
        match &self.store {
            Some(store) => store.snapshot(n).await,
            None => Ok(self.memory().snapshot(n)),
        }
    }

    /// The audit entries `q` asks for, newest first.
    pub async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        match &self.store {
            Some(store) => store.audit(q).await,
            None => Ok(self.memory().audit(q)),
        }
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Loads and applies a newer stored snapshot, if there is one.
    pub async fn catch_up(&self) -> Result<bool, StoreError> {
        let _guard = self.lock.lock().await;
        self.catch_up_locked().await
    }
}

#[async_trait::async_trait]
impl crate::control::ConfigControl for ConfigCenter {
    async fn catch_up(&self) -> Result<bool, StoreError> {
        ConfigCenter::catch_up(self).await
    }

    async fn reload_settings(&self, yaml: Config) -> Result<Vec<String>, Rejected> {
        ConfigCenter::reload_settings(self, yaml).await
    }

    async fn end_sessions(&self, id: u64) -> Result<(), Rejected> {
        self.mutate(|e, _| crate::admin::api::users::end_sessions_in(e, id))
            .await
            .map_err(|e| Rejected(e.detail))
    }

    async fn issue_agent_token(
        &self,
        actor: &str,
        agent_id: &str,
        reset: bool,
        sha256: &str,
        expires_at: u64,
    ) -> Result<u64, Rejected> {
        let now = crate::clock::unix_secs();
        self.mutate_as(actor, "change", |e, _| {
            Ok(crate::bridge::tokens::issue_in(
                e, agent_id, reset, sha256, expires_at, now,
            ))
        })
        .await
        .map_err(|e| Rejected(e.detail))
    }
}

impl ConfigCenter {
    async fn catch_up_locked(&self) -> Result<bool, StoreError> {
        let Some(store) = &self.store else {
            return Ok(false);
        };
        let have = self.current.load().revision;
        let stored = match store.revision().await {
            Ok(r) => r,
            Err(e) => {
                status().set_store_ok(false);
                return Err(e);
            }
        };
        status().set_store_ok(true);
        if stored <= have || stored == self.refused.load(Relaxed) {
            return Ok(false);
        }
        let cached = match &self.bus {
            Some(bus) => bus.cached(stored).await,
            None => None,
        };
        let next = match cached {
            Some(e) => e,
            None => match store.load().await? {
                Some(e) => e,
                None => return Ok(false),
            },
        };
        let rt = self.runtime.load_full();
        match self.compile(&next, &rt).await {
            Ok(fresh) => {
                log::info!("config revision {} applied (from the store)", next.revision);
                self.swap(fresh, next);
                Ok(true)
            }
            Err(p) => {
                self.refused.store(next.revision, Relaxed);
                log::error!(
                    "stored config revision {} does not apply here, keeping revision {have}: {}",
                    next.revision,
                    join(&p, &next)
                );
                Ok(false)
            }
        }
    }
}

/// The sections of `next` that differ from `before` but are read only at
/// start.
fn restart_only(before: &Config, next: &Config) -> Vec<String> {
    let differs = |a: serde_json::Result<serde_json::Value>,
                   b: serde_json::Result<serde_json::Value>| {
        !matches!((a, b), (Ok(a), Ok(b)) if a == b)
    };
    let mut out = Vec::new();
    let mut check = |name: &str, changed: bool| {
        if changed {
            out.push(name.to_string());
        }
    };
    use serde_json::to_value as v;
    check("server", differs(v(&before.server), v(&next.server)));
    check("listen", differs(v(&before.listen), v(&next.listen)));
    check(
        "metrics.listen",
        before.metrics.listen != next.metrics.listen,
    );
    check("counters", differs(v(&before.counters), v(&next.counters)));
    check(
        "config_store",
        differs(v(&before.config_store), v(&next.config_store)),
    );
    check(
        "access_log",
        differs(v(&before.access_log), v(&next.access_log)),
    );
    // The response cache's tiers are made at start (the entry size bound
    // applies at once).
    let tiers = |c: &Config| {
        let mut c = c.cache.clone();
        c.max_entry_bytes = 0;
        v(&c)
    };
    check("cache", differs(tiers(before), tiers(next)));
    // The exporter is made at start (the sampling ratio applies at once).
    let exporter = |c: &Config| {
        let mut t = c.tracing.clone();
        if let Some(t) = t.as_mut() {
            t.sample_ratio = 0.0;
        }
        v(&t)
    };
    check("tracing", differs(exporter(before), exporter(next)));
    // The bound of password checks is fixed by the first sign-in.
    check(
        "auth.login.max_concurrent",
        before.auth.login.max_concurrent != next.auth.login.max_concurrent,
    );
    out
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        503,
        format!("配置存储不可用，变更未保存 (当前配置继续生效): {e}"),
    )
}

/// Follows the other instances' changes: a message on the bus applies at
/// once; every `poll` the stored revision is compared (catch-up after missed
/// messages) and the store and bus health recorded. Runs for the process's
/// lifetime on the config I/O runtime.
pub async fn follow(center: Arc<ConfigCenter>, poll: Duration) {
    let mut changes = center.bus.as_ref().map(|b| b.changes());
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let announced = async {
            match changes.as_mut() {
                Some(rx) => rx.recv().await.ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = announced => {
                let newer = msg
                    .and_then(|m| m.value.convert::<u64>().ok())
                    .is_some_and(|v| v > center.current.load().revision);
                if !newer {
                    continue;
                }
            }
            _ = tick.tick() => {
                if let Some(bus) = &center.bus {
                    status().set_bus(Some(bus.ping().await));
                }
            }
        }
        if let Err(e) = center.catch_up().await {
            log::debug!("config follower: {e}");
        }
    }
}

/// The problems as one `detail`, entities named by id rather than by
/// list position (`rules[id=7].namespace: ...`): API users see ids.
fn join(problems: &[Problem], e: &Entities) -> String {
    problems
        .iter()
        .map(|p| describe(p, e))
        .collect::<Vec<_>>()
        .join("; ")
}

fn describe(p: &Problem, e: &Entities) -> String {
    let lists: [(&str, Vec<u64>); 6] = [
        ("namespaces", e.namespaces.iter().map(|n| n.id).collect()),
        (
            "upstream_servers",
            e.upstream_servers.iter().map(|s| s.id).collect(),
        ),
        ("matchers", e.matchers.iter().map(|m| m.id).collect()),
        ("proxy_rules", e.proxy_rules.iter().map(|r| r.id).collect()),
        ("routes", e.routes.iter().map(|r| r.id).collect()),
        ("rules", e.rules.iter().map(|r| r.id).collect()),
    ];
    for (kind, ids) in &lists {
        let Some(rest) = p.path.strip_prefix(kind).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        let Some((index, after)) = rest.split_once(']') else {
            continue;
        };
        if let Some(id) = index.parse::<usize>().ok().and_then(|i| ids.get(i)) {
            return format!("{kind}[id={id}]{after}: {}", p.message);
        }
    }
    p.to_string()
}
