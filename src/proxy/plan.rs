//! What admission decided for a request ([`Plan`]), handed to the later
//! phases, possibly across the subrequest boundary ([`Handoff`]), and
//! which side of that boundary a session is on ([`Role`]).

use super::limits::Granted;
use crate::catalog::Operation;
use crate::state::Snapshot;
use bytes::Bytes;
use std::sync::Arc;

pub use crate::decision::LlmFields;

/// What admission decided for a request.
#[derive(Debug)]
pub struct Plan {
    /// Index into `Snapshot::namespaces`.
    pub namespace: usize,
    /// Index into `Snapshot::keys`, when a key authenticated the request.
    pub key: Option<usize>,
    /// Index into `Snapshot::pools`.
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
    /// The route has its own `max_concurrency`: servers' `max_connections`
    /// do not apply to this request.
    pub route_capped: bool,
    /// (prompt, completion) tokens the upstream reported in an answer
    /// nobody metered (token metrics only); set by the session that read
    /// the answer (direct or subrequest).
    pub reported_usage: std::sync::OnceLock<(u64, u64)>,
    /// The internal channel's `session_id`: echoed in `x-session-id`
    /// and in a non-streaming JSON answer.
    pub session_id: Option<String>,
    /// The client speaks another wire format (`/v1/messages`): the answer
    /// is translated back to it.
    pub client_format: Option<super::client_format::ClientFormat>,
    /// Came by the internal channel (`/internal/v1/…`); otherwise the
    /// answer is redacted (`headers::downstream`, the pipeline's masking).
    pub internal: bool,
    /// The namespace's masking rules, for an external-channel answer.
    pub masker: Option<Arc<sluice_filters::redact::Masker>>,
}

/// A request served by the model catalog.
#[derive(Debug)]
pub struct CatalogPlan {
    /// Index into `Snapshot::catalog.models`.
    pub model: usize,
    pub op: Operation,
    /// Came by the internal channel (`/internal/v1/…`): the bandit
    /// report's channel.
    pub internal: bool,
    /// The request body after admission's rewrites; each attempt adapts it
    /// to its deployment's provider.
    pub body: serde_json::Value,
    /// Prompt + output tokens expected (context-window fit).
    pub estimated_tokens: u64,
    /// The upstream body asks for a usage chunk (stream translation adds one).
    pub include_usage: bool,
    /// What the request ended up costing, shared by the parent and the
    /// subrequest that made the attempt.
    pub outcome: std::sync::Mutex<CatalogOutcome>,
}

/// The deployment that answered, its usage and the cost from the catalog's
/// prices (read by metrics and the access log through [`RequestCtx::cost`]).
#[derive(Debug, Clone, Default)]
pub struct CatalogOutcome {
    pub deployment: Option<String>,
    pub provider: Option<&'static str>,
    /// Index into `Snapshot::pools` of the deployment's pool.
    pub pool: Option<usize>,
    /// (prompt, completion) tokens as the provider reported them.
    pub usage: Option<(u64, u64)>,
    /// In the catalog's price unit (per 1M tokens prices × tokens / 1M).
    pub cost: Option<f64>,
}

/// Passed to the subrequest through Pingora's `user_ctx`.
pub struct Handoff {
    pub runtime: Arc<Snapshot>,
    pub plan: Arc<Plan>,
    pub request_id: String,
    /// The parent's trace: the subrequest's attempts are its spans.
    pub trace: Option<Arc<crate::otel::Trace>>,
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

impl CatalogPlan {
    /// The bandit report's arm of this request.
    pub fn arm(&self) -> crate::catalog::Arm {
        crate::catalog::Arm {
            op: self.op,
            internal: self.internal,
        }
    }
}
