//! The fleet: every instance sharing a Redis registers itself there and
//! renews its entry on a heartbeat, so that any instance can list the
//! fleet (`GET /api/v1/instances`), an admin write can wait until every
//! live instance applied it (`?wait=fleet`), and `fail_mode: local_share`
//! knows how many instances share a limit.
//!
//! # Registry
//! One Redis hash, `{prefix}fleet`, one field per instance (its id), the
//! value a JSON [`Member`]: address, version, start time, the config
//! revision it runs, the health of its counter store and config store, and
//! the time of its last heartbeat. The Redis is the counter store's
//! (`counters.redis_url`, `counters.key_prefix`) when limits count in
//! Redis, else the config bus's, else the response cache's; with none the
//! fleet is this instance alone. One key: a Redis Cluster keeps it on one
//! slot, whatever the prefix.
//!
//! # Routing state
//! With its entry, each instance publishes its catalog deployments'
//! figures (trials, successes, latency, recent success rate, until when
//! its breaker is open) in `{prefix}routing`, and reads the others': the
//! live ones' figures, merged per deployment, join its own when a model
//! orders its deployments, and a breaker open on another instance keeps
//! this one away from that deployment too (`catalog`). Each instance still
//! decides on its own; the fleet's evidence is at most one period old.
//!
//! # Liveness
//! An instance beats every `fleet.heartbeat_ms` (and at once when it
//! applies a new config revision). A member whose last beat is older than
//! three of its own periods is not live; one silent for an hour is removed
//! from the hash. An instance that shuts down removes its own entry.

use crate::config::Config as SluiceConfig;
use arc_swap::ArcSwap;
use fred::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, OnceCell};

/// Members silent this long are removed from the registry.
const FORGET_AFTER_MS: u64 = 3_600_000;
/// Missed periods after which a member is not live.
const MISSED: u64 = 3;

/// One instance as the registry holds it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Member {
    /// Random per process start.
    pub id: String,
    /// Where it serves (`fleet.advertise`, or host name and proxy port).
    pub address: String,
    /// Its admin listener, when it has one.
    pub admin: Option<String>,
    pub version: String,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// The config revision it runs.
    pub revision: u64,
    /// Its counter store: `local`, `healthy` or `unhealthy` (Redis).
    pub counters: String,
    /// Its config store: `healthy` or `unhealthy`.
    pub config_store: String,
    /// Milliseconds since the Unix epoch of its last heartbeat.
    pub heartbeat_ms: u64,
    /// Its heartbeat period.
    pub period_ms: u64,
    /// Whether its last heartbeat is recent enough (computed when listed).
    #[serde(default)]
    pub live: bool,
}

/// The fleet as one instance sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Listing {
    /// `redis` (shared registry) or `none` (this instance alone).
    pub registry: &'static str,
    /// Whether the registry answered just now (else: the last list known).
    pub registry_ok: bool,
    /// This instance's id.
    pub this: String,
    /// Live instances.
    pub live: usize,
    /// Every instance in the registry, live ones first, then by address.
    pub instances: Vec<Member>,
}

/// What `?wait=fleet` found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Applied {
    /// The revision waited for.
    pub revision: u64,
    /// True when every live instance runs it (or a newer one).
    pub complete: bool,
    /// Live instances running it.
    pub applied: Vec<String>,
    /// Live instances that did not within the wait: id, address and the
    /// revision they run.
    pub pending: Vec<Member>,
}

struct Registry {
    /// The key prefix the registry's keys start with.
    prefix: String,
    url: String,
    key: String,
    /// `{prefix}routing`: each instance's routing figures.
    routing_key: String,
    client: OnceCell<Client>,
}

/// What an instance publishes in `{prefix}routing`.
#[derive(Serialize, Deserialize)]
struct Routing {
    heartbeat_ms: u64,
    period_ms: u64,
    deployments: std::collections::HashMap<String, sluice_filters::balance::Published>,
}

struct Fleet {
    id: String,
    address: String,
    admin: Option<String>,
    started_at: String,
    period: Duration,
    registry: Option<Registry>,
    members: ArcSwap<Vec<Member>>,
    registry_ok: AtomicBool,
    nudge: Notify,
    /// The instance's live state (its routing figures are published).
    live: Arc<crate::live::LiveState>,
}

static FLEET: OnceLock<Fleet> = OnceLock::new();

fn now_ms() -> u64 {
    use sluice_filters::limits::store::Clock;
    sluice_filters::limits::store::SystemClock.now_ms()
}

/// Sets the fleet up from the startup config (once; later calls keep the
/// first).
pub fn init(config: &SluiceConfig, live: Arc<crate::live::LiveState>) {
    let registry = [
        (
            config.counters.store == crate::config::CounterStoreKind::Redis,
            &config.counters.redis_url,
            &config.counters.key_prefix,
        ),
        (
            config.config_store.kind == crate::config::ConfigStoreKind::Mysql,
            &config.config_store.redis_url,
            &config.config_store.key_prefix,
        ),
        (true, &config.cache.redis_url, &config.cache.key_prefix),
    ]
    .into_iter()
    .find_map(|(on, url, prefix)| {
        url.as_ref().filter(|_| on).map(|u| Registry {
            url: u.expose().to_string(),
            prefix: prefix.clone(),
            key: format!("{prefix}fleet"),
            routing_key: format!("{prefix}routing"),
            client: OnceCell::new(),
        })
    });
    let port = config
        .listen
        .proxy
        .rsplit(':')
        .next()
        .unwrap_or("8080")
        .to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let fleet = Fleet {
        id: format!("{:016x}", fastrand::u64(..)),
        address: config
            .fleet
            .advertise
            .clone()
            .unwrap_or_else(|| format!("{host}:{port}")),
        admin: config.listen.admin.clone(),
        started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        period: Duration::from_millis(config.fleet.heartbeat_ms.max(100)),
        registry,
        members: ArcSwap::from_pointee(Vec::new()),
        registry_ok: AtomicBool::new(false),
        nudge: Notify::new(),
        live,
    };
    let _ = FLEET.set(fleet);
}

fn fleet() -> Option<&'static Fleet> {
    FLEET.get()
}

/// Whether the fleet has a shared registry (its heartbeat service runs).
pub fn shared() -> bool {
    fleet().is_some_and(|f| f.registry.is_some())
}

/// This instance's id ("" before [`init`]).
pub fn id() -> &'static str {
    fleet().map_or("", |f| f.id.as_str())
}

/// The registry's Redis URL and key prefix, when the fleet shares one
/// (the Bridge relays invocations through the same Redis).
pub fn redis() -> Option<(String, String)> {
    let r = fleet()?.registry.as_ref()?;
    Some((r.url.clone(), r.prefix.clone()))
}

/// Whether instance `id` is live in the last list known (this one always is).
pub fn is_live(id: &str) -> bool {
    fleet().is_some_and(|f| id == f.id || f.members.load().iter().any(|m| m.id == id && m.live))
}

/// Beat now (a new config revision was applied).
pub fn nudge() {
    if let Some(f) = fleet() {
        f.nudge.notify_one();
    }
}

/// Live instances in the last list known (at least 1: this one).
pub fn live_count() -> usize {
    fleet().map_or(1, |f| {
        f.members
            .load()
            .iter()
            .filter(|m| m.live && m.id != f.id)
            .count()
            + 1
    })
}

impl Fleet {
    fn me(&self) -> Member {
        let status = crate::store::status::status();
        let counters = match status.counters_ok() {
            None => "local",
            Some(true) => "healthy",
            Some(false) => "unhealthy",
        };
        Member {
            id: self.id.clone(),
            address: self.address.clone(),
            admin: self.admin.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            started_at: self.started_at.clone(),
            revision: status.revision(),
            counters: counters.to_string(),
            config_store: if status.store_ok() {
                "healthy"
            } else {
                "unhealthy"
            }
            .to_string(),
            heartbeat_ms: now_ms(),
            period_ms: self.period.as_millis() as u64,
            live: true,
        }
    }

    async fn client(&self) -> Option<&Client> {
        let r = self.registry.as_ref()?;
        let timeout = self.period.min(Duration::from_secs(1));
        r.client
            .get_or_try_init(|| async {
                let client = crate::store::redis_client::builder(&r.url, timeout)?
                    .build()
                    .map_err(|e| e.to_string())?;
                crate::store::redis_client::start(&client, timeout).await;
                Ok::<_, String>(client)
            })
            .await
            .ok()
    }

    /// The registry's members, liveness computed now; None when it does
    /// not answer.
    async fn read(&self) -> Option<Vec<Member>> {
        let r = self.registry.as_ref()?;
        let client = self.client().await?;
        if !client.is_connected() {
            return None;
        }
        let call = client.hgetall::<std::collections::HashMap<String, String>, _>(&r.key);
        let map = tokio::time::timeout(self.period, call).await.ok()?.ok()?;
        let now = now_ms();
        let mut members: Vec<Member> = map
            .values()
            .filter_map(|v| serde_json::from_str::<Member>(v).ok())
            .map(|mut m| {
                m.live = now.saturating_sub(m.heartbeat_ms) <= MISSED * m.period_ms.max(100);
                m
            })
            .collect();
        members.sort_by(|a, b| b.live.cmp(&a.live).then(a.address.cmp(&b.address)));
        Some(members)
    }

    /// One heartbeat: this instance's entry written, the fleet read back,
    /// long-silent members removed.
    async fn beat(&self) {
        let Some(r) = self.registry.as_ref() else {
            return;
        };
        let Some(client) = self.client().await else {
            return;
        };
        let me = self.me();
        let routing = Routing {
            heartbeat_ms: me.heartbeat_ms,
            period_ms: me.period_ms,
            deployments: self.live.routing_figures(),
        };
        let written = async {
            let json = serde_json::to_string(&me).map_err(|e| e.to_string())?;
            let routing = serde_json::to_string(&routing).map_err(|e| e.to_string())?;
            for (key, value) in [(&r.key, json), (&r.routing_key, routing)] {
                let _: () = client
                    .hset(key, (me.id.as_str(), value))
                    .await
                    .map_err(|e| e.to_string())?;
                let _: () = client
                    .pexpire(key, FORGET_AFTER_MS as i64 * 24, None)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        };
        let ok = client.is_connected()
            && matches!(tokio::time::timeout(self.period, written).await, Ok(Ok(())));
        let members = if ok { self.read().await } else { None };
        self.set_ok(members.is_some());
        if let Some(members) = members {
            let now = now_ms();
            let dead: Vec<&str> = members
                .iter()
                .filter(|m| now.saturating_sub(m.heartbeat_ms) > FORGET_AFTER_MS)
                .map(|m| m.id.as_str())
                .collect();
            if !dead.is_empty() {
                let _: Result<i64, _> = client.hdel(&r.key, dead.clone()).await;
                let _: Result<i64, _> = client.hdel(&r.routing_key, dead).await;
            }
            self.members.store(Arc::new(members));
            self.read_routing(client, r).await;
        }
    }

    /// The other live instances' routing figures, merged per deployment,
    /// into `live::fleet_routing` (left as it was when Redis does not
    /// answer; emptied of instances that stopped beating).
    async fn read_routing(&self, client: &Client, r: &Registry) {
        let call = client.hgetall::<std::collections::HashMap<String, String>, _>(&r.routing_key);
        let Ok(Ok(map)) = tokio::time::timeout(self.period, call).await else {
            return;
        };
        let now = now_ms();
        let mut per: std::collections::HashMap<String, Vec<sluice_filters::balance::Published>> =
            std::collections::HashMap::new();
        for (id, value) in map {
            if id == self.id {
                continue;
            }
            let Ok(routing) = serde_json::from_str::<Routing>(&value) else {
                continue;
            };
            if now.saturating_sub(routing.heartbeat_ms) > MISSED * routing.period_ms.max(100) {
                continue;
            }
            for (deployment, figures) in routing.deployments {
                per.entry(deployment).or_default().push(figures);
            }
        }
        let view = per
            .into_iter()
            .map(|(k, peers)| (k, sluice_filters::balance::merge_peers(peers.iter())))
            .collect();
        crate::live::fleet_routing().store(Arc::new(view));
    }

    fn set_ok(&self, ok: bool) {
        if self.registry_ok.swap(ok, Relaxed) != ok {
            if ok {
                log::warn!("fleet registry: reachable");
            } else {
                log::warn!("fleet registry: unreachable; the last fleet known stands");
            }
        }
    }

    /// Removes this instance's entry (shutdown).
    async fn leave(&self) {
        if let (Some(r), Some(client)) = (self.registry.as_ref(), self.client().await) {
            for key in [&r.key, &r.routing_key] {
                let call = client.hdel::<i64, _, _>(key, self.id.as_str());
                let _ = tokio::time::timeout(self.period, call).await;
            }
        }
    }
}

/// The heartbeat loop (a background service while the process runs).
pub async fn run(mut shutdown: pingora::server::ShutdownWatch) {
    let Some(f) = fleet() else { return };
    if f.registry.is_none() {
        return;
    }
    loop {
        f.beat().await;
        tokio::select! {
            _ = shutdown.changed() => {
                f.leave().await;
                return;
            }
            _ = tokio::time::sleep(f.period) => {}
            _ = f.nudge.notified() => {}
        }
    }
}

/// The fleet now: read from the registry (the last list known when it
/// does not answer); this instance is always in it.
pub async fn list() -> Listing {
    let Some(f) = fleet() else {
        return Listing {
            registry: "none",
            registry_ok: false,
            this: String::new(),
            live: 1,
            instances: Vec::new(),
        };
    };
    let read = f.read().await;
    let registry_ok = read.is_some();
    if let Some(members) = &read {
        // The freshest list is also the one the fail modes go by.
        f.members.store(Arc::new(members.clone()));
    }
    let instances = read.unwrap_or_else(|| f.members.load().as_ref().clone());
    assemble(f, instances, registry_ok)
}

/// The fleet as the last heartbeat read it (no call to Redis): for pages
/// that poll (`/metrics/summary`).
pub fn known() -> Listing {
    let Some(f) = fleet() else {
        return Listing {
            registry: "none",
            registry_ok: false,
            this: String::new(),
            live: 1,
            instances: Vec::new(),
        };
    };
    let ok = f.registry_ok.load(Relaxed);
    assemble(f, f.members.load().as_ref().clone(), ok)
}

fn assemble(f: &Fleet, mut instances: Vec<Member>, registry_ok: bool) -> Listing {
    // This instance as it is now (its entry may lag a beat).
    instances.retain(|m| m.id != f.id);
    instances.insert(0, f.me());
    instances.sort_by(|a, b| b.live.cmp(&a.live).then(a.address.cmp(&b.address)));
    Listing {
        registry: if f.registry.is_some() {
            "redis"
        } else {
            "none"
        },
        registry_ok,
        this: f.id.clone(),
        live: instances.iter().filter(|m| m.live).count(),
        instances,
    }
}

/// Waits until every live instance runs `revision` or a newer one, at
/// most `within` (the registry is read every 50 ms; instances beat as
/// soon as they apply a revision).
pub async fn wait_applied(revision: u64, within: Duration) -> Applied {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let listing = list().await;
        let (applied, pending): (Vec<Member>, Vec<Member>) = listing
            .instances
            .into_iter()
            .filter(|m| m.live)
            .partition(|m| m.revision >= revision);
        let complete = pending.is_empty();
        if complete || tokio::time::Instant::now() >= deadline {
            return Applied {
                revision,
                complete,
                applied: applied.into_iter().map(|m| m.id).collect(),
                pending,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
