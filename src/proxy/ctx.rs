//! Per-request state ([`RequestCtx`]): the request's runtime and plan, the
//! current attempt (server, catalog state), the response pipeline and what
//! the phases observed. The plan types live in `plan.rs` (re-exported).

pub use super::plan::{CatalogPlan, Handoff, LlmFields, Plan, Role};
use crate::error::GatewayError;
use crate::providers::UpstreamRequest;
use crate::state::Snapshot;
use crate::upstream::ServerRt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Why a catalog deployment was passed over.
#[derive(Debug)]
pub enum Skipped {
    /// Its provider cannot express the request (the client's error).
    Refused(String),
    /// Its breaker is open (no deployment could take it now).
    CircuitOpen,
}

/// Per-attempt catalog state of the session that makes the attempts.
pub struct CatalogAttempts {
    /// Deployment indexes in try order.
    pub order: Vec<usize>,
    /// Position in `order` of the deployment being tried.
    pub pos: usize,
    /// The deployment of the current attempt and its request.
    pub current: Option<(usize, UpstreamRequest)>,
    /// When the current attempt was picked (time to first byte).
    pub attempt_started: Instant,
    /// The attempt's outcome is not recorded yet (breaker probe held).
    pub pending: bool,
    /// `response_filter` turned an upstream status into a retry.
    pub retry_status: Option<u16>,
    /// The first reason a deployment was skipped (answered if none is left).
    pub skipped: Option<Skipped>,
    /// Pause before the next attempt (a short `Retry-After`).
    pub wait_ms: u64,
}

/// The request was answered from the response cache (a hit, a coalesced
/// follower or a stale answer): how it settles.
#[derive(Debug, Clone, Copy)]
pub struct CacheHit {
    /// Charged against token and money budgets like an answer
    /// (`namespaces[].cache.charge_hits`); by default free.
    pub charged: bool,
}

/// Per-request state shared by all phases.
pub struct RequestCtx {
    pub role: Role,
    pub request_id: String,
    pub started: Instant,
    pub runtime: Option<Arc<Snapshot>>,
    pub plan: Option<Arc<Plan>>,
    /// The server of the current attempt (its in-flight count is held).
    pub server: Option<Arc<ServerRt>>,
    /// Servers already tried by this request.
    pub tried: Vec<u64>,
    pub attempts: usize,
    /// The response header went to the client: no retry from here on.
    pub response_started: bool,
    /// The error to answer with, when a phase already knows it.
    pub error: Option<GatewayError>,
    /// Whether this request was counted in the in-flight metric.
    pub counted: bool,
    /// The answer's stages: metering, translations, usage, echo.
    pub pipeline: super::pipeline::Pipeline,
    /// Catalog attempts (catalog requests; direct or child).
    pub catalog: Option<Box<CatalogAttempts>>,
    /// Labels and timings for metrics and the access log.
    pub observed: super::observed::Observed,
    /// Answered from the response cache.
    pub cache_hit: Option<CacheHit>,
    /// The request's trace, when it is sampled (shared with a subrequest).
    pub trace: Option<Arc<crate::otel::Trace>>,
    /// The open upstream attempt's span: its id and start (ns).
    pub attempt_span: Option<([u8; 8], u64)>,
    /// Holds the request in the drain count until the context is dropped
    /// (after `logging`).
    pub in_flight: Option<crate::lifecycle::InFlight>,
}

impl Default for RequestCtx {
    fn default() -> Self {
        RequestCtx {
            role: Role::Direct,
            request_id: String::new(),
            started: Instant::now(),
            runtime: None,
            plan: None,
            server: None,
            tried: Vec::new(),
            attempts: 0,
            response_started: false,
            error: None,
            counted: false,
            pipeline: Default::default(),
            catalog: None,
            observed: Default::default(),
            cache_hit: None,
            trace: None,
            attempt_span: None,
            in_flight: None,
        }
    }
}

impl RequestCtx {
    /// The request's cost from the catalog's prices, once its usage is
    /// known (catalog requests only; `None` otherwise). Parent, child and
    /// direct sessions all read the same value.
    pub fn cost(&self) -> Option<f64> {
        let catalog = self.plan.as_ref()?.catalog.as_ref()?;
        let outcome = catalog.outcome.lock().ok()?;
        outcome.cost
    }

    /// Gives back the in-flight slot of the current server, if any.
    pub fn release_server(&mut self) {
        if let Some(server) = self.server.take() {
            server.release();
        }
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        // Every exit path (error, client gone, panic-free early return)
        // ends here, so the slot is never leaked.
        self.release_server();
    }
}

/// A request id: the client's `x-request-id` when it is a sane token,
/// otherwise a fresh 24-hex-digit id.
pub fn request_id(client: Option<&str>) -> String {
    if let Some(id) = client {
        if !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return id.to_string();
        }
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| fastrand::u64(..));
    let n = COUNTER.fetch_add(1, Relaxed);
    format!("{seed:016x}{n:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_keep_sane_client_ids_only() {
        assert_eq!(request_id(Some("abc-123.x_y")), "abc-123.x_y");
        let fresh = request_id(Some("bad id\r\n"));
        assert_eq!(fresh.len(), 24);
        assert_ne!(request_id(None), request_id(None));
    }
}
