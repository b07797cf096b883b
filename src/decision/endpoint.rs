//! Which requests the gateway answers itself on the proxy listener,
//! instead of admitting and proxying them. The proxy dispatches on this
//! and the admin dry-run reports it, so both agree.

use crate::state::Snapshot;

/// One of the gateway's own answers on the proxy listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /healthz`: liveness (503 while draining).
    Healthz,
    /// `GET /health`: subsystem status.
    Health,
    /// `GET /refresh-config`: catch up with the stored config (admin token).
    RefreshConfig,
    /// `GET /stats`: request figures.
    Stats,
    /// `GET /metrics`, `/metrics/summary`, `/metrics/ui` (metrics token),
    /// when no dedicated metrics listener is configured.
    Metrics,
    /// `GET /v1/models` (the key's models) or `/internal/v1/models` (every
    /// model), from the model catalog; needs an API key.
    Models { internal: bool },
    /// `GET /internal/v1/bandit/report`, from the model catalog; needs an
    /// API key.
    BanditReport,
    /// `GET /internal/v1/debug/trace/{trace_id}`: the decision trace of a
    /// recent internal-channel request made with the same key.
    Trace,
    /// `POST /api/v1/auth/login`: a user signs in (when `auth.jwt` is set).
    Login,
    /// `POST /api/v1/auth/refresh`: a refresh token for a new pair.
    Refresh,
    /// `/internal/v1/bridge/…` and `/internal/v1/mcp` (when
    /// `bridge.enabled`): the Bridge, which authenticates its own callers.
    Bridge,
}

impl Endpoint {
    /// Whether the answer needs a valid API key (client API endpoints).
    pub fn needs_key(self) -> bool {
        matches!(
            self,
            Endpoint::Models { .. } | Endpoint::BanditReport | Endpoint::Trace
        )
    }
}

/// Where the decision traces are answered (`{trace_id}` follows).
pub const TRACE_PREFIX: &str = "/internal/v1/debug/trace/";

/// The gateway endpoint `method path` is, if any. Probes and scrapes
/// (`/healthz`, `/health`, ...) come first, before authentication; the
/// catalog's endpoints exist only when there is a catalog (otherwise those
/// paths are routed upstream like any request).
pub fn endpoint(rt: &Snapshot, method: &str, path: &str) -> Option<Endpoint> {
    if method == "POST" && rt.identity.tokens.is_some() {
        match path {
            "/api/v1/auth/login" => return Some(Endpoint::Login),
            "/api/v1/auth/refresh" => return Some(Endpoint::Refresh),
            _ => {}
        }
    }
    if rt.config.bridge.enabled
        && (path.starts_with("/internal/v1/bridge/") || path == "/internal/v1/mcp")
    {
        return Some(Endpoint::Bridge);
    }
    if method != "GET" && method != "HEAD" {
        return None;
    }
    let own = match path {
        "/healthz" => Some(Endpoint::Healthz),
        "/health" => Some(Endpoint::Health),
        "/refresh-config" => Some(Endpoint::RefreshConfig),
        "/stats" => Some(Endpoint::Stats),
        "/metrics" | "/metrics/summary" | "/metrics/ui"
            if rt.config.metrics.listen.is_none() && rt.config.metrics.token.is_some() =>
        {
            Some(Endpoint::Metrics)
        }
        _ => None,
    };
    if own.is_some() || method != "GET" {
        return own;
    }
    if path.starts_with(TRACE_PREFIX) {
        return Some(Endpoint::Trace);
    }
    if rt.catalog.is_empty() {
        return None;
    }
    match path {
        "/v1/models" => Some(Endpoint::Models { internal: false }),
        "/internal/v1/models" => Some(Endpoint::Models { internal: true }),
        "/internal/v1/bandit/report" => Some(Endpoint::BanditReport),
        _ => None,
    }
}
