//! Upstream pools: the servers of each pool, load balanced with
//! `pingora-load-balancing` (weighted round robin), with names resolved in
//! the background ([`discovery`]), active HTTP health checks ([`health`]) and
//! passive ejection after consecutive connect failures (this file).
//! `upstream_peer` asks [`Pool::select`] for a server; nothing here blocks.

pub mod discovery;
pub mod health;

use crate::clock::mono_ms;
use crate::config::{ProviderKind, Secret, UpstreamServer, UpstreamSettings};
use crate::live::{LiveState, ServerLive};
use http::{HeaderName, HeaderValue};
use pingora::lb::{selection::RoundRobin, Backend, Backends, LoadBalancer};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// One upstream server, compiled for the request path; its live counters
/// (in flight, ejection) are in the live state and survive config swaps.
#[derive(Debug)]
pub struct ServerRt {
    pub id: u64,
    pub name: String,
    pub address: String,
    pub port: u16,
    pub tls: bool,
    /// Plaintext HTTP/2 with prior knowledge (`server_type: h2c`).
    pub h2c: bool,
    /// SNI for TLS and the `Host` header value.
    pub sni: String,
    pub host_header: String,
    pub weight: usize,
    pub max_connections: usize,
    pub health_check_url: Option<String>,
    pub provider: ProviderKind,
    pub api_key: Option<Secret<String>>,
    pub inject_headers: Vec<(HeaderName, HeaderValue)>,
    /// In flight, failures, ejection ([`crate::live::LiveState::server`]).
    pub live: Arc<ServerLive>,
}

impl ServerRt {
    /// Compiles a config entry (already validated); its live counters are
    /// `live`'s for this server.
    pub fn new(s: &UpstreamServer, live: &LiveState) -> Self {
        let sni = s.sni.clone().unwrap_or_else(|| s.server_address.clone());
        let default_port = if s.server_type == crate::config::ServerType::Https {
            443
        } else {
            80
        };
        let host_header = if s.server_port == default_port {
            sni.clone()
        } else {
            format!("{sni}:{}", s.server_port)
        };
        ServerRt {
            id: s.id,
            name: s.server_name.clone(),
            address: s.server_address.clone(),
            port: s.server_port,
            tls: s.server_type == crate::config::ServerType::Https,
            h2c: s.server_type == crate::config::ServerType::H2c,
            sni,
            host_header,
            weight: s.weight.max(1),
            max_connections: s.max_connections,
            health_check_url: s.health_check_url.clone(),
            provider: s.provider,
            api_key: s.api_key.clone(),
            inject_headers: s
                .inject_headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.as_bytes()).ok()?,
                        HeaderValue::from_str(v.expose()).ok()?,
                    ))
                })
                .collect(),
            live: live.server(s.id, &s.server_address, s.server_port),
        }
    }

    /// Whether passive ejection currently keeps traffic away.
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.live.is_ejected(now_ms)
    }

    /// Requests in flight to this server.
    pub fn inflight(&self) -> usize {
        self.live.inflight.load(Relaxed)
    }

    /// Whether `max_connections` requests are already in flight.
    pub fn is_full(&self) -> bool {
        self.max_connections > 0 && self.inflight() >= self.max_connections
    }

    /// Takes an in-flight slot (given back with [`ServerRt::release`]).
    pub fn acquire(&self) {
        self.live.inflight.fetch_add(1, Relaxed);
    }

    /// Gives back an in-flight slot.
    pub fn release(&self) {
        self.live.inflight.fetch_sub(1, Relaxed);
    }

    /// Records a connect failure; ejects the server after `threshold`
    /// consecutive ones. Returns true when this failure ejected it.
    pub fn record_failure(&self, threshold: u32, eject_ms: u64) -> bool {
        self.live.record_failure(threshold, eject_ms, mono_ms())
    }

    /// Records a successful connection.
    pub fn record_success(&self) {
        self.live.record_success();
    }
}

/// A pool: servers load balanced together.
pub struct Pool {
    pub name: String,
    pub lb: LoadBalancer<RoundRobin>,
    pub servers: Vec<Arc<ServerRt>>,
}

impl Pool {
    /// Builds a pool over the active `servers` (not yet discovered: call
    /// [`Pool::refresh`] before serving).
    pub fn new(name: &str, servers: Vec<Arc<ServerRt>>, settings: &UpstreamSettings) -> Self {
        let discovery = discovery::PoolDiscovery::new(servers.clone());
        let mut backends = Backends::new(Box::new(discovery));
        backends.set_health_check(Box::new(health::ServerHealthCheck::new(settings)));
        let lb = LoadBalancer::from_backends(backends);
        Pool {
            name: name.to_string(),
            lb,
            servers,
        }
    }

    /// Re-resolves names (the selector is rebuilt only when the set changes).
    pub async fn refresh(&self) {
        if let Err(e) = self.lb.update().await {
            log::warn!("upstream pool {}: discovery failed: {e}", self.name);
        }
    }

    /// Runs one round of active health checks.
    pub async fn health_check(&self) {
        self.lb.backends().run_health_check(true).await;
    }

    /// Picks a server: healthy, not ejected, not full, not in `tried`.
    pub fn select(&self, tried: &[u64]) -> Option<(Backend, Arc<ServerRt>)> {
        self.select_capped(tried, true)
    }

    /// [`Pool::select`]; `respect_caps: false` ignores the servers'
    /// `max_connections` (a route with its own `max_concurrency`).
    pub fn select_capped(
        &self,
        tried: &[u64],
        respect_caps: bool,
    ) -> Option<(Backend, Arc<ServerRt>)> {
        let now = mono_ms();
        let backend = self.lb.select_with(b"", 256, |b, healthy| {
            healthy
                && server_of(b).is_some_and(|s| {
                    let full = respect_caps && s.is_full();
                    !(s.is_ejected(now) || full || tried.contains(&s.id))
                })
        })?;
        let server = server_of(&backend)?.clone();
        Some((backend, server))
    }

    /// Whether some server is at its `max_connections` (a failed
    /// selection is then the upstream concurrency cap, not ill health).
    pub fn any_full(&self) -> bool {
        self.servers.iter().any(|s| s.is_full())
    }

    /// How many servers are currently usable: healthy and not ejected (for `/health`).
    pub fn healthy_count(&self) -> usize {
        let now = mono_ms();
        self.lb
            .backends()
            .get_backend()
            .iter()
            .filter(|b| {
                self.lb.backends().ready(b) && server_of(b).is_some_and(|s| !s.is_ejected(now))
            })
            .count()
    }
}

/// The server a backend was discovered from.
pub fn server_of(b: &Backend) -> Option<&Arc<ServerRt>> {
    b.ext.get::<Arc<ServerRt>>()
}
