//! Choosing and connecting to an upstream server: `upstream_peer` (pick a
//! healthy, non-ejected, non-full server of the plan's pool that this
//! request has not tried yet), `fail_to_connect` (passive ejection, retry on
//! another server) and `error_while_proxy` (retry a dead pooled connection,
//! never after a byte reached the client).

use super::ctx::{RequestCtx, Role};
use crate::error::GatewayError;
use crate::metrics::metrics;
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::proxy::Session;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType, Result};
use std::time::Duration;

fn fail(ctx: &mut RequestCtx, err: GatewayError) -> Box<Error> {
    let status = err.status();
    ctx.error = Some(err);
    Error::explain(ErrorType::HTTPStatus(status), "gateway error")
}

/// Picks the server for this attempt and builds its peer: a catalog
/// request's next deployment (`catalog.rs`), else a server of the plan's pool.
pub async fn select(ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    ctx.release_server();
    let (Some(rt), Some(plan)) = (ctx.runtime.clone(), ctx.plan.clone()) else {
        return Err(fail(ctx, GatewayError::Internal));
    };
    let (pool, backend, server) = if let Some(cp) = &plan.catalog {
        match super::catalog::pick(ctx, &rt, cp).await {
            Ok(picked) => picked,
            Err(err) => return Err(fail(ctx, err)),
        }
    } else {
        let pool = &rt.pools[plan.pool];
        let Some((backend, server)) = pool.select_capped(&ctx.tried, !plan.route_capped) else {
            // After failed attempts, report what went wrong with them.
            let err = match ctx.error.take() {
                Some(prev) if ctx.attempts > 0 => prev,
                _ if pool.any_full() => GatewayError::UpstreamConcurrency,
                _ => GatewayError::NoHealthyUpstream,
            };
            return Err(fail(ctx, err));
        };
        (plan.pool, backend, server)
    };
    ctx.observed.pool = Some(pool);
    server.acquire();
    ctx.tried.push(server.id);
    ctx.attempts += 1;
    if ctx.attempts > 1 {
        metrics().retry(&rt.pools[pool].name);
    }
    let t = &rt.config.timeouts;
    let sni = if server.tls {
        server.sni.clone()
    } else {
        String::new()
    };
    let mut peer = peer_for(&backend, server.tls, sni)?;
    let o = &mut peer.options;
    if server.h2c {
        // Plaintext with HTTP/2 as the only version: Pingora speaks h2c
        // with prior knowledge (`connectors/http/v2.rs`).
        o.set_http_version(2, 2);
    }
    o.connection_timeout = Some(Duration::from_millis(t.connect_ms));
    o.total_connection_timeout = Some(Duration::from_millis(t.connect_ms));
    o.idle_timeout = Some(Duration::from_millis(rt.config.upstream.keepalive_idle_ms));
    o.write_timeout = Some(Duration::from_millis(t.idle_ms));
    // Pingora's read timeout is per read. A direct (non-streaming) request
    // bounds header and body reads by the first-byte and total limits; a
    // subrequest's parent enforces first-byte, idle and total precisely
    // (handoff.rs), so the child only needs a backstop.
    let read = match ctx.role {
        Role::Child => t.first_byte_ms.max(t.idle_ms),
        _ => t.first_byte_ms.min(t.total_ms),
    };
    o.read_timeout = Some(Duration::from_millis(read));
    ctx.server = Some(server);
    Ok(Box::new(peer))
}

fn peer_for(backend: &Backend, tls: bool, sni: String) -> Result<HttpPeer> {
    match &backend.addr {
        // A socket address: no DNS happens here.
        SocketAddr::Inet(addr) => Ok(HttpPeer::new(*addr, tls, sni)),
        SocketAddr::Unix(_) => {
            Error::e_explain(ErrorType::InternalError, "unix upstreams are not supported")
        }
    }
}

/// A connection attempt failed: count it against the server, retry elsewhere.
pub fn connect_failed(ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
    if let (Some(rt), Some(pool)) = (&ctx.runtime, ctx.observed.pool) {
        let reason = match e.etype() {
            ErrorType::ConnectTimedout => "connect_timeout",
            ErrorType::ConnectRefused => "connect_refused",
            ErrorType::TLSHandshakeFailure
            | ErrorType::TLSHandshakeTimedout
            | ErrorType::InvalidCert => "tls",
            _ => "connect_error",
        };
        metrics().upstream_failure(&rt.pools[pool].name, reason);
    }
    if let (Some(server), Some(rt)) = (&ctx.server, &ctx.runtime) {
        let u = &rt.config.upstream;
        if server.record_failure(u.eject_after_failures, u.eject_ms) {
            log::warn!(
                "upstream server {} ejected after {} connect failures",
                server.name,
                u.eject_after_failures
            );
        }
    }
    if let (Some(rt), Some(cp)) = (ctx.runtime.clone(), ctx.plan.clone()) {
        if let Some(cp) = &cp.catalog {
            super::catalog::connect_failed(ctx, &rt, cp);
        }
    }
    ctx.error = Some(match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::TLSHandshakeTimedout => {
            GatewayError::UpstreamTimeout
        }
        _ => GatewayError::UpstreamConnect,
    });
    let max = ctx
        .runtime
        .as_ref()
        .map_or(1, |rt| rt.config.upstream.max_attempts);
    e.set_retry(ctx.attempts < max);
    e
}

/// An error after connecting. Retry only when nothing reached the client,
/// the body can be replayed, and the connection was a reused keep-alive one
/// (the upstream closed it idle; the request never ran there).
pub fn proxy_failed(
    session: &Session,
    ctx: &mut RequestCtx,
    mut e: Box<Error>,
    client_reused: bool,
) -> Box<Error> {
    let max = ctx
        .runtime
        .as_ref()
        .map_or(1, |rt| rt.config.upstream.max_attempts);
    // The client's side failed (it left, or its body broke off): not the
    // deployment's fault, so not its breaker's or its statistics' concern.
    if e.esource() == &pingora::ErrorSource::Downstream {
        e.set_retry(false);
        return e;
    }
    if let (Some(rt), Some(plan)) = (ctx.runtime.clone(), ctx.plan.clone()) {
        if let Some(cp) = &plan.catalog {
            if super::catalog::proxy_failed(ctx, &rt, cp) {
                // An error status turned into a retry before the header
                // went downstream (catalog.rs checked attempts and replay).
                e.set_retry(true);
                return e;
            }
        }
    }
    if ctx.response_started
        || session.as_downstream().retry_buffer_truncated()
        || ctx.attempts >= max
    {
        e.set_retry(false);
    } else {
        e.retry.decide_reuse(client_reused);
        if e.retry() {
            // Same server is fine for a stale connection: a new one is opened.
            if let Some(server) = &ctx.server {
                let id = server.id;
                ctx.tried.retain(|t| *t != id);
            }
        }
    }
    e
}

/// Maps a Pingora error to the gateway error to answer with.
pub fn classify(e: &Error) -> GatewayError {
    use ErrorType::*;
    match e.etype() {
        ConnectTimedout | ReadTimedout | WriteTimedout | TLSHandshakeTimedout => {
            GatewayError::UpstreamTimeout
        }
        ConnectRefused | ConnectNoRoute | ConnectError | ConnectProxyFailure
        | TLSHandshakeFailure | InvalidCert => GatewayError::UpstreamConnect,
        // A subrequest's own answer status reaches its parent as its error
        // (the parent may see the error before the answer): keep its sense.
        HTTPStatus(503) => GatewayError::NoHealthyUpstream,
        HTTPStatus(504) => GatewayError::UpstreamTimeout,
        HTTPStatus(502) => GatewayError::UpstreamError,
        HTTPStatus(s @ 400..=499) => {
            GatewayError::InvalidRequest(format!("the request was refused ({s})"))
        }
        _ => match e.esource() {
            pingora::ErrorSource::Upstream => GatewayError::UpstreamError,
            pingora::ErrorSource::Downstream => {
                GatewayError::InvalidRequest("malformed request".into())
            }
            _ => GatewayError::Internal,
        },
    }
}
