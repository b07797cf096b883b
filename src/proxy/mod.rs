//! `impl ProxyHttp` for the gateway: each phase is a few lines delegating to
//! the file that owns the concern.
//!
//! | phase | file |
//! | --- | --- |
//! | `early_request_filter` | here: a subrequest picks up its [`Handoff`] |
//! | `request_filter` | [`endpoints`] (classified by [`crate::decision::endpoint`]), [`admission`] (+ [`limits`]), [`handoff`] |
//! | `upstream_peer`, `fail_to_connect`, `error_while_proxy` | [`peer`] |
//! | `upstream_request_filter`, `request_body_filter` | [`headers`], here |
//! | `response_filter`, `response_body_filter` | here, [`pipeline`] (the answer's stages: [`catalog`] translation, usage tail, [`metering`], [`client_format`], session echo) |
//! | `fail_to_proxy` | here, [`reply`] |
//! | `logging` | here: settle the reservation ([`limits`]); metrics and access log ([`observe`]) |

mod admission;
pub mod bridge;
mod cache;
mod cache_record;
mod catalog;
mod client_api;
mod client_format;
mod compression;
pub mod ctx;
mod endpoints;
mod handoff;
mod headers;
mod limits;
mod metering;
mod observe;
mod observed;
mod peer;
mod pipeline;
mod plan;
mod redact;
mod reply;
mod trace;

pub use endpoints::health;

use crate::error::GatewayError;
use crate::metrics::metrics;
use crate::state::{SharedSnapshot, Snapshot};
use async_trait::async_trait;
use bytes::Bytes;
use ctx::{Handoff, RequestCtx, Role};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use plan::Plan;
use sluice_filters::limits::store::Settle;
use std::sync::Arc;
use std::time::Duration;

/// What a catalog request cost in micro-USD: its delivered (or reported)
/// usage at the prices of the deployment that answered; None when unknown
/// or not a catalog request.
fn spent_micros(
    rt: &Snapshot,
    plan: &Plan,
    usage: Option<Option<(u64, u64, bool)>>,
) -> Option<u64> {
    let cp = plan.catalog.as_ref()?;
    let model = &rt.catalog.models[cp.model];
    let (answered, reported) = match cp.outcome.lock() {
        Ok(o) => (o.deployment.clone(), o.cost),
        Err(_) => (None, None),
    };
    match usage {
        Some(Some((prompt, completion, _))) => {
            let price = answered
                .and_then(|name| model.deployments.iter().find(|d| d.name == name))
                .map_or_else(|| model.dearest_price(), |d| d.price());
            Some(price.micros(prompt, completion))
        }
        Some(None) => None,
        None => reported.map(|usd| (usd.max(0.0) * 1e6).round() as u64),
    }
}

/// The spend ledger entry of what a request cost: today (UTC), and
/// namespace, key name and model joined by a unit separator.
fn ledger_entry(rt: &Snapshot, plan: &Plan, micros: u64) -> Option<Settle> {
    let cp = plan.catalog.as_ref()?;
    let day = crate::clock::rfc3339(crate::clock::unix_secs());
    Some(Settle::Spend {
        day: day.get(..10)?.to_string(),
        entry: [
            rt.namespaces
                .get(plan.namespace)
                .map_or("none", |n| n.code.as_str()),
            plan.key
                .and_then(|k| rt.keys.get(k))
                .map_or("none", |k| k.name.as_str()),
            rt.catalog.models[cp.model].name.as_str(),
        ]
        .join(crate::live::LEDGER_SEPARATOR),
        micros,
    })
}

/// Settles the request's reservation with what it actually used, counts
/// its tokens and records what it cost in the spend ledger.
async fn settle(ctx: &mut RequestCtx) {
    let (Some(rt), Some(plan)) = (&ctx.runtime, &mut ctx.plan) else {
        return;
    };
    // An answer from the cache is free unless the namespace charges hits.
    let usage = match ctx.cache_hit {
        Some(hit) if !hit.charged => ctx.pipeline.meter().map(|_| Some((0, 0, false))),
        _ => ctx.pipeline.meter().map(|m| m.usage()),
    };
    // Money budgets settle at what was delivered (or what the provider
    // reported), at the prices of the deployment that answered.
    let spent = spent_micros(rt, plan, usage);
    let ledger = spent
        .filter(|m| *m > 0)
        .and_then(|m| ledger_entry(rt, plan, m));
    let Some(granted) = &plan.granted else {
        if let Some(op) = ledger {
            limits::settle(rt, &[op]).await;
        }
        return;
    };
    let used = match usage {
        Some(Some((prompt, completion, truncated))) => {
            metrics().truncated(truncated);
            prompt + completion
        }
        // Metered but unreadable: keep what was reserved.
        Some(None) => granted
            .reservation
            .as_ref()
            .map_or(0, |r| r.reserved_tokens),
        // Not metered (no token rule): only slots to give back.
        None => 0,
    };
    // A request settles once, here: the reservation is moved out of the
    // plan when nothing else holds the plan (the usual case), so its keys
    // are not copied; otherwise it is copied.
    let mut ops = match Arc::get_mut(plan)
        .and_then(|p| p.granted.as_mut())
        .and_then(|g| g.reservation.take())
    {
        Some(reservation) => reservation.into_settlement_priced(used, spent),
        None => match plan.granted.as_ref().and_then(|g| g.reservation.as_ref()) {
            Some(reservation) => reservation.clone().into_settlement_priced(used, spent),
            None => Default::default(),
        },
    };
    ops.extend(ledger);
    if !ops.is_empty() {
        limits::settle(rt, &ops).await;
    }
}

/// The gateway's proxy logic.
pub struct Gateway {
    runtime: SharedSnapshot,
    /// For `GET /refresh-config` (none in tests that build a bare gateway).
    center: Option<Arc<dyn crate::control::ConfigControl>>,
}

impl Gateway {
    pub fn new(
        runtime: SharedSnapshot,
        center: Option<Arc<dyn crate::control::ConfigControl>>,
    ) -> Self {
        Gateway { runtime, center }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let handoff = session
            .subrequest_ctx
            .as_ref()
            .and_then(|c| c.user_ctx())
            .and_then(|u| u.downcast_ref::<Handoff>());
        if let Some(h) = handoff {
            ctx.role = Role::Child;
            ctx.runtime = Some(h.runtime.clone());
            ctx.plan = Some(h.plan.clone());
            ctx.request_id = h.request_id.clone();
            ctx.trace = h.trace.clone();
            ctx.pipeline = pipeline::Pipeline::new(Role::Child, &h.plan, &h.request_id);
            // The preset body may differ from the client's (rewritten, or
            // chunked): frame the subrequest's body by its real length, or
            // its body reader drops the difference.
            if h.plan.has_body {
                let len = h.plan.body.len().to_string();
                let req = session.req_header_mut();
                req.remove_header(&http::header::TRANSFER_ENCODING);
                req.insert_header(http::header::CONTENT_LENGTH, len)?;
            }
        }
        if ctx.role != Role::Child {
            compression::enable(session, &self.runtime.load().config.compression);
        }
        if ctx.plan.as_ref().is_some_and(|p| p.catalog.is_some()) {
            // Catalog attempts may be retried after the body was sent:
            // keep it for replay (up to Pingora's 64 KiB).
            session.as_downstream_mut().enable_retry_buffering();
        }
        Ok(())
    }

    fn allow_spawning_subrequest(&self, _session: &Session, ctx: &RequestCtx) -> bool {
        ctx.role != Role::Child
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if ctx.role == Role::Child {
            return Ok(false);
        }
        ctx.in_flight = Some(crate::lifecycle::InFlight::enter());
        ctx.request_id = ctx::request_id(
            session
                .req_header()
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
        );
        let rt = self.runtime.load_full();
        ctx.runtime = Some(rt.clone());
        let req = session.req_header();
        let no_host =
            req.version == http::Version::HTTP_11 && !req.headers.contains_key(http::header::HOST);
        let checked = if no_host {
            Err("an HTTP/1.1 request must carry a Host header".to_string())
        } else {
            headers::normalize_path(session.req_header_mut()).map_err(|e| e.to_string())
        };
        if let Err(why) = checked {
            let err = GatewayError::InvalidRequest(why);
            ctx.observed.error = Some(err.code());
            reply::error(session, &err, &ctx.request_id).await?;
            return Ok(true);
        }
        // nginx-configs `keepalive_timeout`: 0 closes after this response.
        if let Some(secs) = rt.config.timeouts.client_keepalive_s {
            session.set_keepalive((secs > 0).then_some(secs));
        }
        // Shutting down: every answer closes its connection, so clients
        // reconnect (to another instance) for their next request.
        if crate::lifecycle::draining() {
            session.set_keepalive(None);
        }
        // The gateway's own endpoints (probes, scrapes) stay out of the
        // request metrics.
        let req = session.req_header();
        if let Some(endpoint) = crate::decision::endpoint(&rt, req.method.as_str(), req.uri.path())
        {
            if endpoints::serve(session, ctx, &rt, endpoint, self.center.as_deref()).await? {
                return Ok(true);
            }
        }
        metrics().request_started();
        ctx.counted = true;
        trace::start(session, ctx, &rt);
        let plan = match admission::admit(session, &rt, &ctx.request_id, &mut ctx.observed).await {
            Ok(plan) => Arc::new(plan),
            Err(err) => {
                ctx.observed.error = Some(err.code());
                trace::admitted(ctx, Some(err.code()));
                reply::error(session, &err, &ctx.request_id).await?;
                return Ok(true);
            }
        };
        trace::admitted(ctx, None);
        ctx.plan = Some(plan.clone());
        ctx.pipeline = pipeline::Pipeline::new(ctx.role, &plan, &ctx.request_id);
        if ctx.trace.is_some() {
            ctx.pipeline.add_finish_reason();
        }
        observe::admitted(ctx);
        // The response cache: answered from it, or its stage records the
        // answer.
        let recorder = match cache::lookup(session, ctx, &rt, &plan).await? {
            cache::Lookup::Served => return Ok(true),
            cache::Lookup::Proceed(recorder) => recorder,
        };
        if plan.llm.stream || session.as_downstream().retry_buffer_truncated() {
            ctx.role = Role::Parent;
            ctx.pipeline = pipeline::Pipeline::new(ctx.role, &plan, &ctx.request_id);
            if ctx.trace.is_some() {
                ctx.pipeline.add_finish_reason();
            }
            if let Some(r) = recorder {
                ctx.pipeline.add_recorder(r);
            }
            let _stream = observe::StreamGauge::new(plan.llm.stream);
            observe::upstream_attempt(ctx);
            // Boxed: the subrequest pipe is a large future; keeping it out of
            // this phase's state machine keeps every request's future small.
            Box::pin(handoff::run(session, ctx, plan)).await?;
            return Ok(true);
        }
        if let Some(r) = recorder {
            ctx.pipeline.add_recorder(r);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        observe::upstream_attempt(ctx);
        peer::select(ctx).await
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        trace::attempt_done(ctx, None);
        peer::connect_failed(ctx, e)
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let e = e.more_context(format!("Peer: {peer}"));
        trace::attempt_done(ctx, None);
        peer::proxy_failed(session, ctx, e, client_reused)
    }

    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        #[cfg(windows)] _sock: std::os::windows::io::RawSocket,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(server) = &ctx.server {
            server.record_success();
        }
        Ok(())
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        observe::upstream_request(ctx);
        let (Some(rt), Some(plan), Some(server)) = (&ctx.runtime, &ctx.plan, &ctx.server) else {
            return Error::e_explain(ErrorType::InternalError, "no plan for upstream request");
        };
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        headers::prepare(upstream_request, rt, plan, server, ctx, client_ip)?;
        if let Some(cp) = &plan.catalog {
            catalog::request_header(ctx, rt, cp, upstream_request)?;
        }
        trace::attempt(ctx, upstream_request)
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // The gateway never forwards `Upgrade` (hop-by-hop): a 101 was not
        // asked for, and passing it on would open a raw tunnel.
        if upstream_response.status == http::StatusCode::SWITCHING_PROTOCOLS {
            ctx.error = Some(GatewayError::UpstreamError);
            return Err(Error::explain(
                ErrorType::HTTPStatus(502),
                "the upstream switched protocols unasked",
            ));
        }
        if ctx.role != Role::Parent {
            trace::attempt_done(ctx, Some(upstream_response.status.as_u16()));
        }
        // Catalog attempts first: an error status may still become a
        // retry on the next deployment (nothing reached the client yet).
        if ctx.role != Role::Parent {
            if let (Some(rt), Some(plan)) = (ctx.runtime.clone(), ctx.plan.clone()) {
                if let Some(cp) = &plan.catalog {
                    let replayable = !session.as_downstream().retry_buffer_truncated();
                    catalog::on_response_header(ctx, &rt, cp, upstream_response, replayable)?;
                }
            }
        }
        ctx.response_started = true;
        observe::upstream_header(ctx);
        // A stream framed by `Content-Length` would sit in Pingora's write
        // buffer until complete (it flushes length-framed bodies only at
        // their end, `protocols/http/v1/body.rs`): chunked, every chunk is
        // flushed as it arrives.
        if ctx.role != Role::Parent
            && ctx.plan.as_ref().is_some_and(|p| p.llm.stream)
            && upstream_response
                .headers
                .contains_key(http::header::CONTENT_LENGTH)
        {
            upstream_response.remove_header(&http::header::CONTENT_LENGTH);
            upstream_response.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        }
        // Hop-by-hop headers out; `x-request-id` and the limits'
        // `x-ratelimit-*` headers in (set by the child for piped responses:
        // the parent writes the child's header as is).
        let rate = ctx
            .plan
            .as_ref()
            .and_then(|p| p.granted.as_ref())
            .and_then(|g| g.reservation.as_ref())
            .map(|r| &r.rate);
        let external = ctx.plan.as_ref().is_some_and(|p| !p.internal);
        headers::downstream(upstream_response, &ctx.request_id, rate, external)?;
        // Token metrics of answers nobody meters: the usage the upstream
        // reports, read from the body's tail.
        if upstream_response.status.is_success() {
            if let Some(plan) = ctx
                .plan
                .as_ref()
                .filter(|p| !p.metered && p.catalog.is_none())
            {
                ctx.pipeline.add_usage_tail(plan.clone());
            }
        }
        // The client side of the pipeline (a parent runs it in its pipe).
        if ctx.role == Role::Direct {
            ctx.pipeline.on_header(upstream_response)?;
        }
        // gzip for what reaches the client, by its final header.
        if ctx.role != Role::Child {
            if let Some(rt) = &ctx.runtime {
                compression::decide(session, &rt.config.compression, upstream_response);
            }
        }
        Ok(())
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // A catalog attempt sends its deployment's body (direct and child).
        if ctx.catalog.is_some() {
            catalog::request_body(ctx, body, end_of_stream);
            return Ok(());
        }
        // The direct path replays the client's body from Pingora's retry
        // buffer (once per attempt, whole, with end_of_stream); send the
        // rewritten one instead. Subrequests get the rewritten body preset.
        if ctx.role == Role::Direct {
            if let Some(plan) = ctx.plan.as_ref().filter(|p| p.body_rewritten) {
                *body = end_of_stream.then(|| plan.body.clone());
            }
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        ctx.pipeline.on_body(body, end_of_stream);
        Ok(None)
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        // The total deadline of a direct (non-streaming) response; the
        // subrequest path enforces it in the parent (handoff.rs).
        if ctx.role == Role::Direct {
            if let Some(rt) = &ctx.runtime {
                if ctx.started.elapsed() > Duration::from_millis(rt.config.timeouts.total_ms) {
                    return Error::e_explain(ErrorType::ReadTimedout, "total response deadline");
                }
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let err = ctx.error.take().unwrap_or_else(|| peer::classify(e));
        ctx.observed.error = Some(err.code());
        let downstream_gone = matches!(
            e.etype(),
            ErrorType::WriteError | ErrorType::ConnectionClosed
        ) && e.esource() == &pingora::ErrorSource::Downstream;
        // The model could not answer: a stale cache entry, when the lookup
        // kept one.
        if !downstream_gone && matches!(cache::serve_stale(session, ctx).await, Ok(true)) {
            return FailToProxy {
                error_code: 200,
                can_reuse_downstream: false,
            };
        }
        let code = if session.response_written().is_some() || downstream_gone {
            // Too late for an error response: the client already has a
            // header (or is gone); the connection is closed instead.
            0
        } else {
            // The connection is not reused after a failed proxy attempt;
            // announce it so the client does not race the close.
            session.set_keepalive(None);
            if let Err(write_err) = reply::error(session, &err, &ctx.request_id).await {
                log::debug!("could not send error response: {write_err}");
            }
            err.status()
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, _error: &Error) -> bool {
        // A stale answer stood in for the failure: answered, not failed.
        ctx.observed.cache == Some("stale")
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if ctx.role == Role::Child {
            trace::attempt_done(ctx, None);
            ctx.release_server();
            return;
        }
        ctx.release_server();
        if ctx.counted {
            self.log_request(session, e, ctx).await;
        }
        if session.as_downstream().body_bytes_read() >= LARGE_BODY {
            release_large_body(ctx);
        }
    }
}

impl Gateway {
    /// `logging` of a request admission counted: settlement, metrics, the
    /// access log.
    async fn log_request(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        // A stale answer in place of a failure (by the cache stage, or
        // after the failure: `cache::serve_stale`).
        let stale = ctx.observed.cache == Some("stale")
            || ctx
                .pipeline
                .recorder_mut()
                .is_some_and(|r| r.label() == "stale");
        if stale {
            ctx.observed.cache = Some("stale");
            let charged = match (&ctx.runtime, &ctx.plan) {
                (Some(rt), Some(plan)) => rt.namespaces[plan.namespace]
                    .cache
                    .as_ref()
                    .is_some_and(|c| c.charge_hits),
                _ => false,
            };
            ctx.cache_hit = Some(ctx::CacheHit { charged });
        }
        let settle_start = std::time::Instant::now();
        settle(ctx).await;
        let settled = settle_start.elapsed();
        let elapsed = ctx.started.elapsed();
        metrics().request_finished(status, elapsed.as_millis() as u64);
        observe::finish(session, ctx, status, settled);
        trace::finish(session, ctx, status);
        if log::log_enabled!(log::Level::Info) {
            let req = session.req_header();
            let (namespace, key) = match (&ctx.runtime, &ctx.plan) {
                (Some(rt), Some(plan)) => (
                    rt.namespaces[plan.namespace].code.as_str(),
                    plan.key.map_or("-", |k| rt.keys[k].name.as_str()),
                ),
                _ => ("-", "-"),
            };
            log::info!(
                "request_id={} method={} path={} status={} ms={} namespace={} key={} attempts={} error={}",
                ctx.request_id,
                req.method,
                req.uri.path(),
                status,
                elapsed.as_millis(),
                namespace,
                key,
                ctx.attempts,
                e.map(|e| e.etype().as_str()).unwrap_or("-"),
            );
        }
    }
}

/// Bodies from this size on are given back to the system when their
/// request ends.
const LARGE_BODY: usize = 1 << 20;

/// After a request that carried a large body: the body is dropped here
/// (not when the context goes) and this thread's allocator heap collected.
/// mimalloc returns freed memory only as its heap keeps allocating; an
/// idle worker kept 8 freed 16 MiB bodies for ~10 s (load-tests/RESULTS.md).
fn release_large_body(ctx: &mut RequestCtx) {
    drop(ctx.plan.take());
    // Pages go back to the system now, not at the heap's next allocations
    // (a few hundred µs; once per request with a large body).
    crate::alloc::trim();
}
