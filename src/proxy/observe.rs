//! What the proxy phases tell the metrics about a client request
//! ([`Observed`], kept in the request's context): its labels as admission
//! resolves them, when it went upstream, time to first byte, stream timing
//! (first token, gaps between chunks), and, in `logging`, the whole record
//! ([`finish`]): Prometheus families, per-minute history and the access log
//! line. Label handles come from the request's runtime, so nothing here
//! hashes a label string on the request path.

use super::ctx::RequestCtx;
use super::observed::Observed;
use super::plan::Role;
use crate::metrics::access_log::{self, Line};
use crate::metrics::families::Record;
use crate::metrics::metrics;
use crate::state::Snapshot;
use pingora::protocols::http::HttpTask;
use pingora::proxy::Session;
use prometheus::Histogram;
use std::time::{Duration, Instant, SystemTime};

/// Admission resolved the model: keep its label (and the name for the
/// access log).
pub fn model(obs: &mut Observed, rt: &Snapshot, model: Option<&str>, stream: bool) {
    obs.model = Some(rt.handles.models.index(model));
    obs.stream = stream;
    if access_log::enabled() {
        obs.model_name = model.map(|m| {
            let mut end = m.len().min(64);
            while !m.is_char_boundary(end) {
                end -= 1;
            }
            m[..end].to_string()
        });
    }
}

/// A limit rule denied the request: count it with its namespace and rule.
pub fn denied(obs: &mut Observed, rt: &Snapshot, rule_id: u64, code: &str) {
    obs.denied = true;
    let rule = rt
        .limits
        .rules
        .iter()
        .find(|r| r.id == rule_id)
        .map_or("unknown", |r| r.name.as_str());
    metrics().limit_denied(rt.handles.ns_label(obs.namespace), rule, code);
}

/// The request was admitted: it now counts in the concurrency of its
/// namespace, route and key.
pub fn admitted(ctx: &mut RequestCtx) {
    let Some(rt) = &ctx.runtime else { return };
    let minute = crate::live::window::now_minute();
    for s in series(rt, &ctx.observed) {
        s.started(minute);
    }
    ctx.observed.in_series = true;
}

fn series<'a>(
    rt: &'a Snapshot,
    obs: &Observed,
) -> impl Iterator<Item = &'a std::sync::Arc<crate::live::window::Series>> {
    let h = &rt.handles;
    [
        Some(&h.all_series),
        obs.namespace.and_then(|i| h.ns_series.get(i)),
        obs.route.and_then(|i| h.route_series.get(i)),
        obs.key.and_then(|i| h.key_series.get(i)),
    ]
    .into_iter()
    .flatten()
}

/// An upstream attempt begins (the first one ends the gateway's request stage).
pub fn upstream_attempt(ctx: &mut RequestCtx) {
    if ctx.observed.upstream_at.is_none() {
        ctx.observed.upstream_at = Some(Instant::now());
    }
}

/// The request header goes upstream now.
pub fn upstream_request(ctx: &mut RequestCtx) {
    ctx.observed.upstream_sent = Some(Instant::now());
}

/// The upstream response header arrived: time to first byte, per pool
/// (the child of a subrequest records it; the parent only pipes).
pub fn upstream_header(ctx: &mut RequestCtx) {
    if ctx.role == Role::Parent {
        return;
    }
    let (Some(sent), Some(rt), Some(plan)) = (ctx.observed.upstream_sent, &ctx.runtime, &ctx.plan)
    else {
        return;
    };
    let ttfb = sent.elapsed();
    ctx.observed.ttfb = Some(ttfb);
    metrics()
        .f
        .ttfb_of(&rt.handles, plan.pool)
        .observe(ttfb.as_secs_f64());
}

/// Counts a streaming response in `sluice_inflight_streams` while alive.
pub struct StreamGauge(bool);

impl StreamGauge {
    pub fn new(stream: bool) -> StreamGauge {
        if stream {
            metrics().f.streams.inc();
        }
        StreamGauge(stream)
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        if self.0 {
            metrics().f.streams.dec();
        }
    }
}

/// Times a piped response (subrequest path): header, first body chunk (the
/// first token of a stream) and the gaps between chunks.
pub struct StreamTimer {
    /// Only streams feed the TTFT and gap histograms.
    hist: Option<(Histogram, Histogram)>,
    request_start: Instant,
    pipe_start: Instant,
    pub ttfb: Option<Duration>,
    pub ttft: Option<Duration>,
    last: Option<Instant>,
}

impl StreamTimer {
    pub fn new(ctx: &RequestCtx, stream: bool) -> StreamTimer {
        let hist = match (&ctx.runtime, stream) {
            (Some(rt), true) => {
                let model = ctx
                    .observed
                    .model
                    .unwrap_or_else(|| rt.handles.models.index(None));
                Some(
                    metrics()
                        .f
                        .stream_of(&rt.handles, ctx.observed.namespace, model),
                )
            }
            _ => None,
        };
        StreamTimer {
            hist,
            request_start: ctx.started,
            pipe_start: Instant::now(),
            ttfb: None,
            ttft: None,
            last: None,
        }
    }

    /// One task of the child's response, as it passes to the client.
    pub fn on_task(&mut self, task: &HttpTask) {
        let now = Instant::now();
        match task {
            HttpTask::Header(..) if self.ttfb.is_none() => {
                self.ttfb = Some(now - self.pipe_start);
            }
            HttpTask::Body(Some(b), _) if !b.is_empty() => {
                match self.last {
                    None => {
                        let ttft = now - self.request_start;
                        self.ttft = Some(ttft);
                        if let Some((t, _)) = &self.hist {
                            t.observe(ttft.as_secs_f64());
                        }
                    }
                    Some(last) => {
                        if let Some((_, g)) = &self.hist {
                            g.observe((now - last).as_secs_f64());
                        }
                    }
                }
                self.last = Some(now);
            }
            _ => {}
        }
    }

    /// Hands the figures to the request's observation.
    pub fn finish(self, obs: &mut Observed) {
        if obs.stream {
            obs.ttft = self.ttft;
        }
        obs.ttfb = obs.ttfb.or(self.ttfb);
    }
}

/// Records the finished request: families, history, access log; gives back
/// its concurrency. `settle` is the time `logging` spent settling limits.
pub fn finish(session: &Session, ctx: &mut RequestCtx, status: u16, settle: Duration) {
    let Some(rt) = ctx.runtime.clone() else {
        return;
    };
    let obs = &ctx.observed;
    let h = &rt.handles;
    let elapsed = ctx.started.elapsed();
    let model = obs.model.unwrap_or_else(|| h.models.index(None));
    // A catalog request: the deployment that answered, its usage and cost.
    let outcome = ctx
        .plan
        .as_ref()
        .and_then(|p| p.catalog.as_ref())
        .and_then(|c| c.outcome.lock().ok().map(|o| o.clone()))
        .unwrap_or_default();
    let pool = outcome
        .pool
        .or(ctx.plan.as_ref().map(|p| p.pool))
        .or(obs.pool);
    let tokens = ctx
        .pipeline
        .meter()
        .and_then(|m| m.usage())
        .map(|(i, o, _)| (i, o))
        .or(outcome.usage)
        .or_else(|| {
            ctx.plan
                .as_ref()
                .and_then(|p| p.reported_usage.get().copied())
        });
    let cost = outcome.cost;
    let internal = crate::decision::internal_channel(session.req_header().uri.path());
    let before_upstream = obs.upstream_at.map(|t| t - ctx.started);
    let record = Record {
        namespace: obs.namespace,
        route: obs.route,
        key: obs.key,
        model,
        pool,
        status,
        elapsed,
        tokens,
        cost,
        denied: obs.denied,
        internal,
        before_upstream,
        settle,
    };
    let m = metrics();
    m.f.finish(h, &record);
    if let (Some(code), Some(p)) = (obs.error, pool) {
        if matches!(
            code,
            "upstream_error" | "upstream_timeout" | "no_healthy_upstream"
        ) {
            m.upstream_failure(&h.pools[p], code);
        }
    }
    if obs.in_series {
        for s in series(&rt, obs) {
            s.ended();
        }
    }
    ctx.observed.in_series = false;
    // The internal channel keeps a decision trace of each request.
    if internal {
        let obs = &ctx.observed;
        let granted = ctx.plan.as_ref().and_then(|p| p.granted.as_ref());
        let (tin, tout) = tokens.unwrap_or((0, 0));
        crate::metrics::trace::record(
            &ctx.request_id,
            serde_json::json!({
                "trace_id": ctx.request_id,
                "finished_at": crate::clock::rfc3339_millis(SystemTime::now()),
                "method": session.req_header().method.as_str(),
                "path": session.req_header().uri.path(),
                "status": status,
                "error": obs.error,
                "namespace": h.ns_label(obs.namespace),
                "route": h.route_label(obs.route),
                "key_name": obs.key.and_then(|k| h.keys.get(k)).map_or("-", |k| k.name.as_str()),
                "subject": obs.subject,
                "model": h.model_label(model),
                "catalog": ctx.plan.as_ref().and_then(|p| p.catalog.as_ref()).map(|_| serde_json::json!({
                    "deployment": outcome.deployment,
                    "provider": outcome.provider,
                })),
                "upstream": pool.and_then(|p| h.pools.get(p)),
                "attempts": ctx.attempts,
                "limits": {
                    "denied": obs.denied,
                    "metered": granted.is_some_and(|g| g.metered),
                    "prompt_tokens": granted.map(|g| g.prompt_tokens),
                    "output_cap": granted.and_then(|g| g.output_cap),
                },
                "tokens": {"in": tin, "out": tout},
                "cost_usd": cost,
                "latency_ms": elapsed.as_secs_f64() * 1000.0,
            }),
        );
    }
    if access_log::enabled() {
        let obs = &ctx.observed;
        let gateway = before_upstream.map_or(elapsed, |b| b + settle);
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let req = session.req_header();
        let (tin, tout) = tokens.unwrap_or((0, 0));
        access_log::write(&Line {
            ts: access_log::timestamp(SystemTime::now()),
            trace_id: &ctx.request_id,
            method: req.method.as_str(),
            path: req.uri.path(),
            namespace: h.ns_label(obs.namespace),
            channel: if internal { "internal" } else { "external" },
            route: h.route_label(obs.route),
            key_name: obs
                .key
                .and_then(|k| h.keys.get(k))
                .map_or("-", |k| k.name.as_str()),
            model: obs.model_name.as_deref().unwrap_or("-"),
            upstream: pool
                .and_then(|p| h.pools.get(p))
                .map_or("-", String::as_str),
            provider: outcome
                .provider
                .or_else(|| pool.and_then(|p| h.providers.get(p).copied()))
                .unwrap_or("-"),
            status,
            error: obs.error,
            stream: obs.stream,
            attempts: ctx.attempts,
            tokens_in: tin,
            tokens_out: tout,
            cost: cost.unwrap_or(0.0),
            latency_ms: ms(elapsed),
            gateway_ms: ms(gateway.min(elapsed)),
            upstream_ms: ms(elapsed.saturating_sub(gateway)),
            ttfb_ms: obs.ttfb.map(ms),
            ttft_ms: obs.ttft.map(ms),
            cache: obs.cache,
            bridge: None,
        });
    }
}
