//! The proxy listener's own endpoints ([`crate::decision::Endpoint`]):
//! `GET /healthz` (liveness), `GET /health` (subsystem status), `GET
//! /stats` (request figures), `GET /refresh-config`, and, when
//! `metrics.token` is set and no dedicated `metrics.listen` is, the metrics
//! endpoints (`crate::metrics::endpoints`), and users' sign-in and refresh
//! (`POST /api/v1/auth/login`, `/refresh`: `crate::identity::login`); the
//! catalog's client endpoints go to `client_api.rs`. They are answered
//! before admission.

use super::ctx::RequestCtx;
use super::reply;
use crate::control::ConfigControl;
use crate::decision::Endpoint;
use crate::error::GatewayError;
use crate::metrics::metrics;
use crate::state::Snapshot;
use pingora::proxy::Session;
use pingora::Result;
use serde_json::json;

/// Serves the request when it is one of the gateway's endpoints; returns
/// whether it did.
pub async fn serve(
    session: &mut Session,
    ctx: &RequestCtx,
    rt: &Snapshot,
    endpoint: Endpoint,
    center: Option<&dyn ConfigControl>,
) -> Result<bool> {
    let req = session.req_header();
    match endpoint {
        Endpoint::Login | Endpoint::Refresh => {
            sign_in(session, ctx, rt, endpoint, center).await?;
        }
        Endpoint::Bridge => {
            super::bridge::serve(session, ctx, rt).await?;
        }
        Endpoint::Models { .. } | Endpoint::BanditReport | Endpoint::Trace => {
            super::client_api::serve(session, ctx, rt, endpoint).await?;
        }
        Endpoint::Healthz if crate::lifecycle::draining() => {
            // Load balancers stop sending while the process drains.
            reply::json(
                session,
                503,
                &json!({"status": "draining"}),
                &ctx.request_id,
            )
            .await?;
        }
        Endpoint::Healthz => {
            reply::json(session, 200, &json!({"status": "ok"}), &ctx.request_id).await?;
        }
        Endpoint::Health => {
            let (status, body) = health(rt);
            reply::json(session, status, &body, &ctx.request_id).await?;
        }
        Endpoint::RefreshConfig => {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            if !rt.admin_token_ok(auth) {
                let err = GatewayError::Unauthorized("an admin token is required".into());
                reply::error(session, &err, &ctx.request_id).await?;
                return Ok(true);
            }
            // Load the stored config if it is newer than the
            // running one (the same catch-up the bus and the periodic
            // revision check do).
            let outcome = match center {
                Some(c) => c.catch_up().await,
                None => Ok(false),
            };
            let (status, body) = match outcome {
                Ok(_) => (
                    200,
                    json!({"success": true, "message": "All configurations refreshed successfully"}),
                ),
                Err(e) => {
                    log::warn!("/refresh-config: {e}");
                    (
                        503,
                        json!({"success": false, "error": "Failed to refresh configurations"}),
                    )
                }
            };
            reply::json(session, status, &body, &ctx.request_id).await?;
        }
        Endpoint::Stats => {
            let body = crate::metrics::summary::gateway_stats();
            reply::json(session, 200, &body, &ctx.request_id).await?;
        }
        Endpoint::Metrics => {
            let auth = req
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok());
            // No metrics token: these endpoints are off (routed as any path).
            let Some(a) = crate::metrics::endpoints::answer(rt, req.uri.path(), auth) else {
                return Ok(false);
            };
            if a.status == 401 {
                let err = GatewayError::Unauthorized("invalid metrics token".into());
                reply::error(session, &err, &ctx.request_id).await?;
            } else {
                reply::send(
                    session,
                    a.status,
                    a.content_type,
                    a.body,
                    &ctx.request_id,
                    &a.headers,
                )
                .await?;
            }
        }
    }
    Ok(true)
}

/// `POST /api/v1/auth/login` and `/api/v1/auth/refresh`
/// ([`crate::identity::login`]); token answers are never cached.
async fn sign_in(
    session: &mut Session,
    ctx: &RequestCtx,
    rt: &Snapshot,
    endpoint: Endpoint,
    center: Option<&dyn ConfigControl>,
) -> Result<()> {
    use crate::identity::login;
    let client = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map_or_else(|| "-".to_string(), |a| a.ip().to_string());
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_millis(rt.config.clients.body_timeout_ms);
    let outcome = match super::admission::read_body(session, login::MAX_BODY, deadline).await {
        Ok((body, _)) if endpoint == Endpoint::Login => login::login(rt, &body, &client).await,
        Ok((body, _)) => login::refresh(rt, &body, center).await,
        Err(e) => Err(e),
    };
    match outcome.and_then(|pair| serde_json::to_vec(&pair).map_err(|_| GatewayError::Internal)) {
        Ok(body) => {
            reply::send(
                session,
                200,
                "application/json",
                body,
                &ctx.request_id,
                &[("cache-control", "no-store".to_string())],
            )
            .await
        }
        Err(e) => reply::error(session, &e, &ctx.request_id).await,
    }
}

/// The `/health` body: healthy when every pool has a usable server.
pub fn health(rt: &Snapshot) -> (u16, serde_json::Value) {
    let mut pools = serde_json::Map::new();
    let mut all_ok = true;
    // Only pools something routes to decide the gateway's health: a pool
    // no route, proxy rule or catalog deployment names is reported but
    // serves nothing.
    let c = &rt.config;
    let used: std::collections::HashSet<&str> = c
        .routes
        .iter()
        .map(|r| r.upstream.as_str())
        .chain(c.proxy_rules.iter().map(|r| r.upstream.as_str()))
        .chain(
            c.models
                .iter()
                .flat_map(|m| m.deployments.iter().map(|d| d.upstream.as_str())),
        )
        .collect();
    for pool in &rt.pools {
        let healthy = pool.healthy_count();
        let in_use = used.contains(pool.name.as_str());
        all_ok &= healthy > 0 || !in_use;
        pools.insert(
            pool.name.clone(),
            json!({"status": if healthy > 0 {"healthy"} else {"unhealthy"},
                   "healthy_servers": healthy, "servers": pool.servers.len(),
                   "in_use": in_use}),
        );
    }
    let m = metrics();
    let timestamp = crate::clock::unix_secs();
    let status = if all_ok { "healthy" } else { "unhealthy" };
    let store = crate::store::status::status();
    // The gateway is healthy when it can serve: a config store or Redis
    // outage shows in its own entry (the last good config keeps routing;
    // limit rules apply their fail_mode).
    let mut body = json!({
        "status": status,
        "service": "sluice",
        "version": env!("CARGO_PKG_VERSION"),
        "timestamp": timestamp,
        "services": {
            "config_center": store.config_center_json(),
            "upstreams": {"status": status, "pools": pools},
        },
        "stats": {
            "requests_total": m.total(),
            "requests_2xx": m.count(2),
            "requests_4xx": m.count(4),
            "requests_5xx": m.count(5),
            "latency_ms_p95": m.p95_ms(),
            "upstream_failures": m.upstream_failures(),
        }
    });
    if let Some(redis) = store.redis_json() {
        body["services"]["redis"] = redis;
    }
    if !rt.catalog.is_empty() {
        // Per model, per deployment: breaker state and statistics.
        body["services"]["models"] = rt.catalog.health_json();
    }
    (if all_ok { 200 } else { 503 }, body)
}
