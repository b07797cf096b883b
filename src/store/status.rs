//! The config store's health as `/health` (admin and gateway) reports it:
//! which store, whether it answered its last call, and the Redis bus. The
//! config center updates it on every store call and every version check;
//! readers never wait on the store. It also keeps whether the Redis
//! counter store answered its last call (set by `live::Counters`).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

/// Redis bus states.
const BUS_OFF: u8 = 0;
const BUS_UP: u8 = 1;
const BUS_DOWN: u8 = 2;

/// Process-wide store health.
pub struct StoreStatus {
    kind: OnceLock<&'static str>,
    store_ok: AtomicBool,
    bus: AtomicU8,
    /// The Redis counter store: off, or whether its last call succeeded.
    counters: AtomicU8,
    revision: AtomicU64,
    /// While the counter store is unreachable and `local_share` rules
    /// count in process: the instances the limits are shared by (0: not).
    local_share: AtomicU64,
}

static STATUS: StoreStatus = StoreStatus {
    kind: OnceLock::new(),
    store_ok: AtomicBool::new(true),
    bus: AtomicU8::new(BUS_OFF),
    counters: AtomicU8::new(BUS_OFF),
    revision: AtomicU64::new(0),
    local_share: AtomicU64::new(0),
};

/// The process's store health.
pub fn status() -> &'static StoreStatus {
    &STATUS
}

fn word(ok: bool) -> &'static str {
    if ok {
        "healthy"
    } else {
        "unhealthy"
    }
}

impl StoreStatus {
    /// Records which store this process uses (once, at start).
    pub fn set_kind(&self, kind: &'static str) {
        let _ = self.kind.set(kind);
    }

    /// `file` (default) or `mysql`.
    pub fn kind(&self) -> &'static str {
        self.kind.get().copied().unwrap_or("file")
    }

    pub fn set_store_ok(&self, ok: bool) {
        if self.store_ok.swap(ok, Relaxed) != ok {
            if ok {
                log::warn!("config store ({}): reachable again", self.kind());
            } else {
                log::error!(
                    "config store ({}): unreachable; the last good config keeps serving",
                    self.kind()
                );
            }
        }
    }

    pub fn store_ok(&self) -> bool {
        self.store_ok.load(Relaxed)
    }

    /// Records the Redis bus state (`None`: no bus configured).
    pub fn set_bus(&self, ok: Option<bool>) {
        let v = match ok {
            None => BUS_OFF,
            Some(true) => BUS_UP,
            Some(false) => BUS_DOWN,
        };
        self.bus.store(v, Relaxed);
    }

    /// `Some(ok)` when a Redis bus is configured.
    pub fn bus_ok(&self) -> Option<bool> {
        match self.bus.load(Relaxed) {
            BUS_UP => Some(true),
            BUS_DOWN => Some(false),
            _ => None,
        }
    }

    /// Records how the Redis counter store's last call went (called
    /// once with `true` at start when counters are in Redis).
    pub fn set_counters(&self, ok: bool) {
        let v = if ok { BUS_UP } else { BUS_DOWN };
        if self.counters.load(Relaxed) != v {
            self.counters.store(v, Relaxed);
        }
    }

    /// `Some(ok)` when counters are kept in Redis.
    pub fn counters_ok(&self) -> Option<bool> {
        match self.counters.load(Relaxed) {
            BUS_UP => Some(true),
            BUS_DOWN => Some(false),
            _ => None,
        }
    }

    /// The gateway `/health` `redis` entry: every use of Redis configured
    /// (counters, config bus) and whether each answered its last call;
    /// `None` when Redis is not used.
    pub fn redis_json(&self) -> Option<serde_json::Value> {
        let mut uses = serde_json::Map::new();
        if let Some(ok) = self.counters_ok() {
            uses.insert("counters".into(), word(ok).into());
        }
        let shared_by = self.local_share.load(Relaxed);
        if shared_by > 0 && self.counters_ok() == Some(false) {
            uses.insert(
                "counters_fallback".into(),
                serde_json::json!({"mode": "local_share", "instances": shared_by}),
            );
        }
        if let Some(ok) = self.bus_ok() {
            uses.insert("config_bus".into(), word(ok).into());
        }
        if uses.is_empty() {
            return None;
        }
        let ok = uses.values().all(|v| v == "healthy");
        Some(serde_json::json!({"status": word(ok), "uses": uses}))
    }

    /// `local_share` rules count in process, sharing each limit among
    /// `instances` (0: they do not, the counter store answers).
    pub fn set_local_share(&self, instances: u64) {
        self.local_share.store(instances, Relaxed);
    }

    /// The config revision this process runs.
    pub fn set_revision(&self, r: u64) {
        self.revision.store(r, Relaxed);
    }

    pub fn revision(&self) -> u64 {
        self.revision.load(Relaxed)
    }

    /// Whether everything configured answers.
    pub fn healthy(&self) -> bool {
        self.store_ok() && self.bus_ok() != Some(false)
    }

    /// The `storage` object of the admin `/health`.
    pub fn storage_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(self.kind().into(), word(self.store_ok()).into());
        if let Some(ok) = self.bus_ok() {
            m.insert("redis".into(), word(ok).into());
        }
        serde_json::Value::Object(m)
    }

    /// The `config_center` entry of the gateway `/health`.
    pub fn config_center_json(&self) -> serde_json::Value {
        serde_json::json!({
            "status": word(self.healthy()),
            "source": self.kind(),
            "storage": self.storage_json(),
            "revision": self.revision(),
        })
    }
}
