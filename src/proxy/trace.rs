//! The request's trace in the proxy phases (`crate::otel`): started in
//! `request_filter` (continuing the client's `traceparent`), a span for
//! admission, one per upstream attempt (its id sent upstream as
//! `traceparent`), one for a streamed answer from its first token, and the
//! request's span with its GenAI attributes when the request is logged.

use super::ctx::RequestCtx;
use crate::otel::{now_ns, span_id, Kind, Trace, Value};
use crate::state::Snapshot;
use pingora::http::RequestHeader;
use pingora::proxy::Session;
use std::sync::Arc;

/// Starts the request's trace when tracing is on and it is sampled.
pub fn start(session: &Session, ctx: &mut RequestCtx, rt: &Snapshot) {
    let Some(t) = &rt.config.tracing else {
        return;
    };
    let header = session
        .req_header()
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    ctx.trace = Trace::start(header, t.sample_ratio);
    ctx.observed.traced = ctx.trace.is_some();
}

/// Admission ended (`error`: the code it refused with).
pub fn admitted(ctx: &RequestCtx, error: Option<&'static str>) {
    let Some(trace) = &ctx.trace else {
        return;
    };
    let mut attrs = Vec::new();
    if let Some(code) = error {
        attrs.push(("sluice.error", Value::Str(code.into())));
    }
    attrs.push(("sluice.limits.denied", Value::Bool(ctx.observed.denied)));
    let admission = span_id();
    trace.child(
        admission,
        "sluice.admission",
        Kind::Internal,
        trace.start_ns,
        attrs,
        error.is_some(),
    );
    // The limit rules and their counter-store call, inside admission.
    if let Some((from, to)) = ctx.observed.limits_span {
        let store = match ctx.runtime.as_ref().map(|rt| rt.config.counters.store) {
            Some(crate::config::CounterStoreKind::Redis) => "redis",
            _ => "local",
        };
        trace.grandchild(
            admission,
            "sluice.limits",
            from,
            to,
            vec![("sluice.counter_store", Value::Str(store.into()))],
            ctx.observed.denied,
        );
    }
}

/// An upstream attempt begins: its span opens and its id goes upstream.
pub fn attempt(ctx: &mut RequestCtx, upstream: &mut RequestHeader) -> pingora::Result<()> {
    let Some(trace) = &ctx.trace else {
        return Ok(());
    };
    let id = span_id();
    upstream.insert_header("traceparent", trace.traceparent(&id))?;
    ctx.attempt_span = Some((id, now_ns()));
    Ok(())
}

/// The current attempt ended: with the upstream's status, or failed.
pub fn attempt_done(ctx: &mut RequestCtx, status: Option<u16>) {
    let (Some(trace), Some((id, start))) = (&ctx.trace, ctx.attempt_span.take()) else {
        return;
    };
    let mut attrs = Vec::new();
    if let Some(server) = &ctx.server {
        attrs.push(("server.address", Value::Str(server.address.clone())));
        attrs.push(("server.port", Value::Int(i64::from(server.port))));
    }
    if let Some(s) = status {
        attrs.push(("http.response.status_code", Value::Int(i64::from(s))));
    }
    let error = status.is_none_or(|s| s >= 500);
    trace.child(id, "sluice.upstream", Kind::Client, start, attrs, error);
}

/// The request ends: its streamed answer's span, then its own.
pub fn finish(session: &Session, ctx: &mut RequestCtx, status: u16) {
    attempt_done(ctx, None);
    let Some(trace) = ctx.trace.take() else {
        return;
    };
    let req = session.req_header();
    let obs = &ctx.observed;
    let plan = ctx.plan.as_ref();
    let stream = plan.is_some_and(|p| p.llm.stream);
    if let (true, Some(ttft)) = (stream, obs.ttft) {
        let first = trace.start_ns + ttft.as_nanos() as u64;
        trace.child(
            span_id(),
            "sluice.stream",
            Kind::Internal,
            first,
            Vec::new(),
            false,
        );
    }
    let mut a: Vec<(&'static str, Value)> = vec![
        ("http.request.method", Value::Str(req.method.to_string())),
        ("url.path", Value::Str(req.uri.path().to_string())),
        ("http.response.status_code", Value::Int(i64::from(status))),
        ("sluice.request_id", Value::Str(ctx.request_id.clone())),
        ("sluice.attempts", Value::Int(ctx.attempts as i64)),
    ];
    if let (Some(rt), Some(p)) = (&ctx.runtime, plan) {
        if let Some(ns) = rt.namespaces.get(p.namespace) {
            a.push(("sluice.namespace", Value::Str(ns.code.clone())));
        }
        a.push(("gen_ai.request.stream", Value::Bool(p.llm.stream)));
        if let Some(m) = &p.llm.model {
            a.push(("gen_ai.request.model", Value::Str(m.clone())));
        }
        if let Some(n) = p.llm.max_tokens {
            a.push(("gen_ai.request.max_tokens", Value::Int(n as i64)));
        }
        if let Some(cp) = &p.catalog {
            a.push((
                "gen_ai.operation.name",
                Value::Str(cp.op.capability().into()),
            ));
            if let Ok(o) = cp.outcome.lock() {
                if let Some(provider) = o.provider {
                    a.push(("gen_ai.provider.name", Value::Str(provider.into())));
                }
                if let Some(d) = &o.deployment {
                    a.push(("sluice.deployment", Value::Str(d.clone())));
                }
            }
        }
    }
    if let Some(cache) = obs.cache {
        a.push(("sluice.cache", Value::Str(cache.into())));
    }
    if let Some((i, o)) = tokens(ctx) {
        a.push(("gen_ai.usage.input_tokens", Value::Int(i as i64)));
        a.push(("gen_ai.usage.output_tokens", Value::Int(o as i64)));
    }
    if let Some(reason) = ctx.pipeline.finish_reason() {
        a.push(("gen_ai.response.finish_reasons", Value::Strs(vec![reason])));
    }
    if let Some(ttft) = obs.ttft {
        a.push((
            "gen_ai.server.time_to_first_token",
            Value::Float(ttft.as_secs_f64()),
        ));
    }
    if let Some(code) = obs.error {
        a.push(("error.type", Value::Str(code.into())));
    }
    let route = format!("{} {}", req.method, req.uri.path());
    trace.finish(route, a, status >= 500 || status == 0);
}

fn tokens(ctx: &RequestCtx) -> Option<(u64, u64)> {
    let plan = ctx.plan.as_ref()?;
    ctx.pipeline
        .meter()
        .and_then(|m| m.usage())
        .map(|(i, o, _)| (i, o))
        .or_else(|| {
            plan.catalog
                .as_ref()
                .and_then(|c| c.outcome.lock().ok().and_then(|o| o.usage))
        })
        .or_else(|| plan.reported_usage.get().copied())
}

/// The trace a subrequest continues.
pub fn handed(ctx: &RequestCtx) -> Option<Arc<Trace>> {
    ctx.trace.clone()
}
