//! [`Observed`]: what the proxy phases learned about a client request,
//! for metrics and the access log: its labels as admission resolves them
//! and its timings. Kept in the request's context; filled and read by
//! `observe.rs`.

use std::time::{Duration, Instant};

/// A request's labels and timings.
#[derive(Debug, Default)]
pub struct Observed {
    pub namespace: Option<usize>,
    /// Route index ([`crate::metrics::MetricHandles::route_index`]).
    pub route: Option<usize>,
    pub key: Option<usize>,
    /// An external issuer's subject (callers of one issuer share `key`).
    pub subject: Option<String>,
    /// The route's pool (also for a request denied after routing).
    pub pool: Option<usize>,
    /// Model label index; none = not parsed yet.
    pub model: Option<usize>,
    /// The model as asked (only kept when the access log is on).
    pub model_name: Option<String>,
    pub stream: bool,
    /// A limit rule denied the request.
    pub denied: bool,
    /// The gateway error code it was answered with, when known.
    pub error: Option<&'static str>,
    /// The first upstream attempt began (admission is over).
    pub upstream_at: Option<Instant>,
    /// The request header is about to go upstream (direct path or child).
    pub(super) upstream_sent: Option<Instant>,
    pub ttfb: Option<Duration>,
    pub ttft: Option<Duration>,
    /// The response cache's part (`hit`, `miss`, `stale`, `bypass`).
    pub cache: Option<&'static str>,
    /// The request is traced: admission notes when its limit rules ran.
    pub traced: bool,
    /// When the limit rules (and their counter-store call) ran, wall ns.
    pub limits_span: Option<(u64, u64)>,
    /// Counted in its entities' concurrency (`observe::admitted`).
    pub(super) in_series: bool,
}
