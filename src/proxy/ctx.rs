//! Per-request state ([`RequestCtx`]) and the admission outcome handed from
//! `request_filter` to the later phases ([`Plan`]), possibly across the
//! subrequest boundary ([`Handoff`]).

use super::limits::Granted;
use crate::catalog::Operation;
use crate::error::GatewayError;
use crate::providers::UpstreamRequest;
use crate::state::Runtime;
use crate::upstream::ServerRt;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

pub use crate::decision::LlmFields;

/// What admission decided for a request.
#[derive(Debug)]
pub struct Plan {
    /// Index into `Runtime::namespaces`.
    pub namespace: usize,
    /// Index into `Runtime::keys`, when a key authenticated the request.
    pub key: Option<usize>,
    /// Index into `Runtime::pools`.
    pub pool: usize,
    /// Path and query to send upstream when a route rewrote the path.
    pub upstream_uri: Option<String>,
    /// The whole request body (empty when there was none).
    pub body: Bytes,
    /// Whether the request carried a body (even an empty chunked one).
    pub has_body: bool,
    /// `body` is not what the client sent (`max_tokens` clamped, usage
    /// asked for): the direct path replaces the replayed body with it.
    pub body_rewritten: bool,
    pub llm: LlmFields,
    /// What the limit rules granted; none = no rule applied.
    pub granted: Option<Granted>,
    /// The response is metered (a token rule applies).
    pub metered: bool,
    /// The client asked for a usage chunk in its stream.
    pub client_wants_usage: bool,
    /// The body's `model` is a catalog model: its deployments serve it.
    pub catalog: Option<CatalogPlan>,
    /// (prompt, completion) tokens the upstream reported in an answer
    /// nobody metered (token metrics only); set by the session that read
    /// the answer (direct or subrequest).
    pub reported_usage: std::sync::OnceLock<(u64, u64)>,
    /// Seed 002 `session_id` (internal channel): echoed in `x-session-id`
    /// and in a non-streaming JSON answer.
    pub session_id: Option<String>,
    /// The client speaks another wire format (`/v1/messages`): the answer
    /// is translated back to it.
    pub client_format: Option<super::client_format::ClientFormat>,
}

/// A request served by the model catalog.
#[derive(Debug)]
pub struct CatalogPlan {
    /// Index into `Runtime::catalog.models`.
    pub model: usize,
    pub op: Operation,
    /// The request body after admission's rewrites; each attempt adapts it
    /// to its deployment's provider.
    pub body: serde_json::Value,
    /// Prompt + output tokens expected (context-window fit).
    pub estimated_tokens: u64,
    /// The upstream body asks for a usage chunk (stream translation adds one).
    pub include_usage: bool,
    /// What the request ended up costing, shared by the parent and the
    /// subrequest that made the attempt.
    pub outcome: std::sync::Mutex<Outcome>,
}

/// The deployment that answered, its usage and the cost from the catalog's
/// prices (read by metrics and the access log through [`RequestCtx::cost`]).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub deployment: Option<String>,
    pub provider: Option<&'static str>,
    /// Index into `Runtime::pools` of the deployment's pool.
    pub pool: Option<usize>,
    /// (prompt, completion) tokens as the provider reported them.
    pub usage: Option<(u64, u64)>,
    /// In the catalog's price unit (per 1M tokens prices × tokens / 1M).
    pub cost: Option<f64>,
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
    pub skipped: Option<String>,
    /// Pause before the next attempt (a short `Retry-After`).
    pub wait_ms: u64,
}

/// Passed to the subrequest through Pingora's `user_ctx`.
pub struct Handoff {
    pub runtime: Arc<Runtime>,
    pub plan: Arc<Plan>,
    pub request_id: String,
}

/// Which side of the subrequest boundary a context lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// A client request proxied by this session itself.
    #[default]
    Direct,
    /// A client request whose proxying was handed to a subrequest.
    Parent,
    /// The subrequest doing the proxying for a parent.
    Child,
}

/// Per-request state shared by all phases.
pub struct RequestCtx {
    pub role: Role,
    pub request_id: String,
    pub started: Instant,
    pub runtime: Option<Arc<Runtime>>,
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
    pub obs: super::observe::Obs,
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
            obs: Default::default(),
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
            server.inflight.fetch_sub(1, Relaxed);
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
    let seed = *SEED.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.finish()
    });
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
