//! Catalog requests in the proxy phases, in the session that makes the
//! attempts (the direct session, or the subrequest of a stream or a large
//! body): `upstream_peer` picks the next deployment in the model's try
//! order whose breaker admits it ([`pick`]); `upstream_request_filter` /
//! `request_body_filter` send that provider's path, headers and body;
//! `response_filter` records the outcome and turns a 429/5xx into a retry
//! on the next deployment while nothing has reached the client
//! ([`on_response_header`]); `response_body_filter` adapts the answer to
//! OpenAI's format and prices it ([`on_response_body`]).
//!
//! How a status becomes a retry (pingora-proxy 0.9.1, `proxy_h1.rs`
//! `h1_response_filter` and `lib.rs` `proxy_to_upstream`): the upstream's
//! response header reaches `response_filter` *before* anything is written
//! downstream (the header is written only after the filter returns, as the
//! `HttpTask` it returns). An `Err` from `response_filter` propagates with
//! `?` out of `proxy_1to1`, so `proxy_to_upstream` hands it to
//! `error_while_proxy` (not `fail_to_proxy`), and the retry loop in
//! `process_request` calls `upstream_peer` again when the returned error
//! has `retry` set (`peer::proxy_failed` sets it for the status recorded
//! here). The upstream connection is dropped, not reused. Once a header
//! went downstream (`response_started`), nothing is retried. The request
//! body is replayed on the next attempt from Pingora's retry buffer (64 KiB;
//! enabled for the subrequest in `early_request_filter`), through
//! `request_body_filter`, which swaps in the next deployment's body; a
//! larger body is not retried after it was sent (connect errors still are).

use super::ctx::Skipped;
use super::ctx::{CatalogAttempts, CatalogPlan, RequestCtx};
use crate::catalog::DeploymentRt;
use crate::error::GatewayError;
use crate::providers::{self, response::ResponseAdapter};
use crate::state::Snapshot;
use crate::upstream::ServerRt;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::Backend;
use pingora::{Error, ErrorType, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Picks the deployment and server of the next attempt. `Err` = nothing
/// left to try (the error to answer with).
pub async fn pick(
    ctx: &mut RequestCtx,
    rt: &Snapshot,
    cp: &CatalogPlan,
) -> Result<(usize, Backend, Arc<ServerRt>), GatewayError> {
    let model = &rt.catalog.models[cp.model];
    let st = ctx.catalog.get_or_insert_with(|| {
        Box::new(CatalogAttempts {
            order: model.order(cp.op, cp.estimated_tokens),
            pos: 0,
            current: None,
            attempt_started: Instant::now(),
            pending: false,
            retry_status: None,
            skipped: None,
            wait_ms: 0,
        })
    });
    // A retry waits its backoff, or the `Retry-After` the last deployment
    // asked for when that is longer.
    let u = &rt.config.upstream;
    let backoff = sluice_filters::balance::retry_backoff_ms(
        u.retry_backoff_ms,
        ctx.attempts,
        u.retry_after_max_ms,
        jitter(),
    );
    let wait = st.wait_ms.max(backoff);
    st.wait_ms = 0;
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    while st.pos < st.order.len() {
        let i = st.order[st.pos];
        let d = &model.deployments[i];
        // A deployment cooling down after a `Retry-After` yields to any
        // later one that is not.
        let later_fresh = st.order[st.pos + 1..]
            .iter()
            .any(|&j| model.deployments[j].cooling_ms() == 0);
        if d.cooling_ms() > 0 && later_fresh {
            st.pos += 1;
            continue;
        }
        let Some((backend, server)) = rt.pools[d.pool].select(&ctx.tried) else {
            st.pos += 1;
            continue;
        };
        let request = match providers::request(cp.op, d, &cp.body) {
            Ok(r) => r,
            Err(why) => {
                st.skipped.get_or_insert_with(|| {
                    Skipped::Refused(format!("deployment {}: {why}", d.name))
                });
                st.pos += 1;
                continue;
            }
        };
        if !d.admit(cp.arm()) {
            st.skipped.get_or_insert(Skipped::CircuitOpen);
            st.pos += 1;
            continue;
        }
        st.current = Some((i, request));
        st.attempt_started = Instant::now();
        st.pending = true;
        if let Ok(mut o) = cp.outcome.lock() {
            o.deployment = Some(d.name.clone());
            o.provider = Some(d.provider.as_str());
            o.pool = Some(d.pool);
        }
        return Ok((d.pool, backend, server));
    }
    let skipped = st.skipped.take();
    Err(match ctx.error.take() {
        Some(prev) if ctx.attempts > 0 => prev,
        _ => match skipped {
            Some(Skipped::Refused(why)) => GatewayError::InvalidRequest(why),
            Some(Skipped::CircuitOpen) | None => GatewayError::NoHealthyUpstream,
        },
    })
}

/// A draw in [0, 1) for the backoff's jitter (`fastrand`: a thread-local
/// generator, nothing shared to lock on the request path).
fn jitter() -> f64 {
    fastrand::f64()
}

/// The deployment of the current attempt.
fn current<'a>(ctx: &RequestCtx, rt: &'a Snapshot, cp: &CatalogPlan) -> Option<&'a DeploymentRt> {
    let (i, _) = ctx.catalog.as_ref()?.current.as_ref()?;
    rt.catalog.models[cp.model].deployments.get(*i)
}

/// Records the current attempt's outcome once.
fn record(ctx: &mut RequestCtx, rt: &Snapshot, cp: &CatalogPlan, success: bool, ttfb: bool) {
    let Some(st) = ctx.catalog.as_mut() else {
        return;
    };
    if !std::mem::take(&mut st.pending) {
        return;
    }
    let ttfb_ms = ttfb.then(|| st.attempt_started.elapsed().as_millis() as u64);
    if let Some(d) = current(ctx, rt, cp) {
        d.record(
            &rt.catalog.models[cp.model].stats,
            cp.arm(),
            success,
            ttfb_ms,
        );
    }
}

/// A connection attempt failed: the deployment failed.
pub fn connect_failed(ctx: &mut RequestCtx, rt: &Snapshot, cp: &CatalogPlan) {
    record(ctx, rt, cp, false, false);
}

/// An error after connecting, before or after the header. `true` = the
/// error is a status this module turned into a retry.
pub fn proxy_failed(ctx: &mut RequestCtx, rt: &Snapshot, cp: &CatalogPlan) -> bool {
    if let Some(st) = ctx.catalog.as_mut() {
        if st.retry_status.take().is_some() {
            return true;
        }
    }
    if !ctx.response_started {
        record(ctx, rt, cp, false, false);
    }
    false
}

/// Path, framing and provider headers of the current attempt.
pub fn request_header(
    ctx: &RequestCtx,
    rt: &Snapshot,
    cp: &CatalogPlan,
    req: &mut RequestHeader,
) -> Result<()> {
    let (Some(d), Some((_, request))) = (
        current(ctx, rt, cp),
        ctx.catalog.as_ref().and_then(|s| s.current.as_ref()),
    ) else {
        return Error::e_explain(ErrorType::InternalError, "no catalog attempt");
    };
    let uri: http::Uri = request
        .uri
        .parse()
        .map_err(|_| Error::explain(ErrorType::InternalError, "bad provider uri"))?;
    req.set_uri(uri);
    req.insert_header(http::header::CONTENT_LENGTH, request.body.len().to_string())?;
    req.remove_header(&http::header::TRANSFER_ENCODING);
    providers::headers(d.provider, req)
}

/// The current attempt's body, sent whole on the end-of-stream call.
pub fn request_body(ctx: &RequestCtx, body: &mut Option<Bytes>, end_of_stream: bool) {
    if let Some((_, request)) = ctx.catalog.as_ref().and_then(|s| s.current.as_ref()) {
        *body = end_of_stream.then(|| request.body.clone());
    }
}

/// Milliseconds of a `retry-after-ms` or `retry-after` (seconds) header.
fn retry_after_ms(header: &ResponseHeader) -> Option<u64> {
    let get = |name: &str| {
        header
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    get("retry-after-ms")
        .map(|ms| ms as u64)
        .or_else(|| get("retry-after").map(|s| (s * 1000.0) as u64))
}

/// The upstream's response header (before anything reached the client):
/// records the outcome; a 429/5xx is retried on the next deployment when
/// one is left, else on another server (key) of the same deployment's
/// pool, else after a short `Retry-After` on the same server, when the
/// body can be replayed (`Err` here makes Pingora retry, see the module
/// docs); otherwise the answer is adapted for the client.
pub fn on_response_header(
    ctx: &mut RequestCtx,
    rt: &Snapshot,
    cp: &CatalogPlan,
    header: &mut ResponseHeader,
    replayable: bool,
) -> Result<()> {
    let status = header.status.as_u16();
    let failed = status == 429 || status >= 500;
    record(ctx, rt, cp, !failed, true);
    let model = &rt.catalog.models[cp.model];
    let Some(d) = current(ctx, rt, cp) else {
        return Ok(());
    };
    let retry_after = retry_after_ms(header).filter(|_| status == 429 || status == 503);
    if let Some(ms) = retry_after {
        d.cool_down(ms);
    }
    let provider = d.provider;
    let max_attempts = rt.config.upstream.max_attempts;
    let attempts = ctx.attempts;
    if let Some(st) = ctx.catalog.as_mut() {
        if failed && replayable && attempts < max_attempts {
            let others_left = st.order[st.pos + 1..]
                .iter()
                .any(|&j| model.deployments[j].cooling_ms() == 0);
            let short_wait = retry_after.filter(|ms| *ms <= rt.config.upstream.retry_after_max_ms);
            let server_id = ctx.server.as_ref().map(|s| s.id);
            let retry = if others_left {
                // The next deployment; the server answered (it is not
                // down), so a deployment sharing its pool may use it.
                st.pos += 1;
                if let Some(id) = server_id {
                    ctx.tried.retain(|t| *t != id);
                }
                true
            } else if rt.pools[d.pool].select(&ctx.tried).is_some() {
                // The same deployment on another server of its pool (another
                // key or region of it); this one stays in `tried`.
                true
            } else if let Some(ms) = short_wait {
                // The same deployment again, after the pause it asked for.
                st.wait_ms = ms;
                if let Some(server) = &ctx.server {
                    let id = server.id;
                    ctx.tried.retain(|t| *t != id);
                }
                true
            } else {
                false
            };
            if retry {
                st.retry_status = Some(status);
                ctx.error = Some(GatewayError::UpstreamStatus(status));
                return Error::e_explain(
                    ErrorType::HTTPStatus(status),
                    "upstream error status; trying the next deployment",
                );
            }
        }
        let mut adapter = ResponseAdapter::new(
            provider,
            status,
            cp.body
                .get("stream")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false),
            cp.include_usage,
            &model.name,
            &ctx.request_id,
            !cp.internal,
        );
        adapter.on_header(header)?;
        let prices = (d.price_input_per_m, d.price_output_per_m);
        if let Some(plan) = ctx.plan.clone() {
            ctx.pipeline.set_translation(adapter, prices, plan);
        }
    }
    Ok(())
}
