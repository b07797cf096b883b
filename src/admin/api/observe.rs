//! Live views for operators (what the console's pages show): `GET
//! /api/v1/overview` (the last hour per minute, totals, the fleet and
//! health), `GET /api/v1/upstreams` (pools and their servers' health,
//! breaker and requests in flight), `GET /api/v1/catalog` (models,
//! deployments, live statistics and the bandit report) and `GET
//! /api/v1/limits` (each rule with what this instance has seen of its
//! window and what remains).
//!
//! The figures are this instance's (the per-minute series and in-flight
//! counts it keeps); the fleet's view of limits is the counter store's,
//! which admission reads, not these pages.

use super::*;
use crate::live::window::{now_minute, Slot};
use crate::metrics::summary::gateway_stats;
use sluice_filters::limits::rules::RuleConfig;

/// Minutes the overview's series spans.
const OVERVIEW_MINUTES: usize = 60;

/// One minute of traffic.
#[derive(Serialize, ToSchema)]
pub struct Minute {
    /// Unix seconds of the minute's start.
    pub minute: u64,
    pub requests: u64,
    /// Answers with a 5xx status (or none).
    pub errors: u64,
    /// Requests refused by a limit.
    pub denials: u64,
    pub p95_ms: u64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// Cost from the catalog's prices.
    pub cost: f64,
}

/// `GET /api/v1/overview`.
#[derive(Serialize, ToSchema)]
pub struct Overview {
    pub generated_at: u64,
    /// The last hour, oldest minute first (the current minute last).
    pub series: Vec<Minute>,
    /// Since the process started: requests by class, p95, in flight.
    #[schema(value_type = Object)]
    pub totals: Value,
    /// The fleet as this instance last read it (itself first when alone).
    #[schema(value_type = Vec<Object>)]
    pub instances: Value,
    /// As `GET /health` answers.
    pub health: super::usage::StatusView,
}

pub fn overview(c: &Call<'_>, b: NoBody) -> Reply<Overview> {
    let rt = c.center.runtime();
    let now = now_minute();
    let series = rt
        .handles
        .all_series
        .minutes(now, OVERVIEW_MINUTES)
        .iter()
        .enumerate()
        .map(|(i, s)| Minute {
            minute: (now + 1 + i as u64).saturating_sub(OVERVIEW_MINUTES as u64) * 60,
            requests: s.requests,
            errors: s.errors,
            denials: s.denials,
            p95_ms: s.p95_ms(),
            tokens_in: s.tokens_in,
            tokens_out: s.tokens_out,
            cost: s.cost_micros as f64 / 1e6,
        })
        .collect();
    let fleet = serde_json::to_value(crate::fleet::known()).map_err(ApiError::internal)?;
    Ok(Overview {
        generated_at: crate::clock::unix_secs(),
        series,
        totals: gateway_stats(),
        instances: fleet.get("instances").cloned().unwrap_or(Value::Null),
        health: super::usage::health(c, b)?,
    })
}

/// `GET /api/v1/upstreams`.
#[derive(Serialize, ToSchema)]
pub struct Upstreams {
    pub pools: Vec<PoolView>,
}

/// A pool and its servers.
#[derive(Serialize, ToSchema)]
pub struct PoolView {
    pub name: String,
    pub servers: Vec<ServerHealth>,
}

/// A server of a pool, now.
#[derive(Serialize, ToSchema)]
pub struct ServerHealth {
    /// The upstream server's id (null for servers of the YAML without one).
    pub server_id: Option<u64>,
    pub server: String,
    pub address: String,
    /// Resolved and passing its health checks (a server whose name does
    /// not resolve is not).
    pub healthy: bool,
    /// Ejected after consecutive failures (its breaker is open).
    pub circuit_open: bool,
    /// Requests it serves now.
    pub inflight: u64,
}

pub fn upstreams(c: &Call<'_>, _: NoBody) -> Reply<Upstreams> {
    let rt = c.center.runtime();
    let now = crate::clock::mono_ms();
    let pools = rt
        .pools
        .iter()
        .map(|pool| {
            let backends = pool.lb.backends();
            let ready = |s: &crate::upstream::ServerRt| {
                backends
                    .get_backend()
                    .iter()
                    .find(|b| crate::upstream::server_of(b).is_some_and(|x| x.id == s.id))
                    .is_some_and(|b| backends.ready(b))
            };
            PoolView {
                name: pool.name.clone(),
                servers: pool
                    .servers
                    .iter()
                    .map(|s| ServerHealth {
                        server_id: (s.id != 0).then_some(s.id),
                        server: s.name.clone(),
                        address: format!("{}:{}", s.address, s.port),
                        healthy: ready(s),
                        circuit_open: s.is_ejected(now),
                        inflight: s.inflight() as u64,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Upstreams { pools })
}

/// `GET /api/v1/catalog`.
#[derive(Serialize, ToSchema)]
pub struct CatalogView {
    pub models: Vec<ModelView>,
    /// The bandit report (`GET /internal/v1/bandit/report` of the proxy
    /// listener): one arm per deployment, operation and channel served,
    /// with the fleet's figures.
    #[schema(value_type = Object)]
    pub bandit: Value,
}

/// A public model of the catalog.
#[derive(Serialize, ToSchema)]
pub struct ModelView {
    pub name: String,
    /// Its routing strategy (`priority`, `weighted`, `lowest_cost`, `lowest_latency`, `bandit`, `weighted_score`).
    #[schema(value_type = String)]
    pub strategy: sluice_filters::balance::strategy::Strategy,
    pub deployments: Vec<DeploymentView>,
}

/// A deployment, with what this instance has seen of it.
#[derive(Serialize, ToSchema)]
pub struct DeploymentView {
    pub name: String,
    pub provider: String,
    /// The pool it is served by.
    pub upstream: String,
    /// The model name sent upstream.
    pub model: String,
    /// Dollars per million input and output tokens.
    pub price_input_per_m: f64,
    pub price_output_per_m: f64,
    /// `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Average time to first byte (EWMA), when it has served.
    pub latency_ms: Option<f64>,
    /// Successes / trials, when it has served.
    pub success_rate: Option<f64>,
    pub requests: u64,
}

pub fn catalog(c: &Call<'_>, _: NoBody) -> Reply<CatalogView> {
    let rt = c.center.runtime();
    let now = crate::clock::mono_ms();
    let models = rt
        .catalog
        .models
        .iter()
        .map(|m| ModelView {
            name: m.name.clone(),
            strategy: m.routing.strategy,
            deployments: m
                .deployments
                .iter()
                .map(|d| {
                    let f = d.figures(now);
                    DeploymentView {
                        name: d.name.clone(),
                        provider: d.provider.as_str().into(),
                        upstream: d.pool_name.clone(),
                        model: d.model.clone(),
                        price_input_per_m: d.price_input_per_m,
                        price_output_per_m: d.price_output_per_m,
                        breaker: f.breaker.as_str().into(),
                        latency_ms: f.ewma_ttfb_ms.map(f64::round),
                        success_rate: (f.trials > 0).then(|| f.successes as f64 / f.trials as f64),
                        requests: f.trials,
                    }
                })
                .collect(),
        })
        .collect();
    Ok(CatalogView {
        models,
        bandit: rt.catalog.bandit_report(&Default::default()),
    })
}

/// `GET /api/v1/limits`.
#[derive(Serialize, ToSchema)]
pub struct Limits {
    pub items: Vec<LimitView>,
}

/// A limit rule and what this instance has seen of its window.
#[derive(Serialize, ToSchema)]
pub struct LimitView {
    pub rule_id: u64,
    pub rule_name: String,
    /// `rate_limit`, `concurrency`, `token_limit` or `budget`.
    pub rule_type: String,
    /// Active (inactive rules are skipped).
    pub active: bool,
    /// Its namespace; null = every namespace.
    pub namespace_id: Option<u64>,
    pub namespace_code: Option<String>,
    /// Requests, concurrent requests, tokens or dollars allowed.
    pub limit: Option<f64>,
    /// The window the limit counts over (none for concurrency).
    pub window_seconds: Option<u64>,
    /// What this instance's traffic of the namespace used of it (at
    /// minute resolution for windows; in flight now for concurrency).
    pub used: Option<f64>,
    /// `limit - used`, at least 0.
    pub remaining: Option<f64>,
    #[schema(value_type = Object)]
    pub rule_config: Value,
}

/// What a rule allows, over which window, and the series figure it counts.
struct Measure {
    limit: Option<f64>,
    window: Option<u64>,
    figure: fn(&Slot) -> f64,
}

fn measure(config: &RuleConfig) -> Measure {
    type Figure = fn(&Slot) -> f64;
    let (limit, window, figure): (Option<f64>, Option<u64>, Figure) = match config {
        RuleConfig::RateLimit(r) => (
            r.max_requests.or(r.max_qps).map(|v| v as f64),
            Some(r.time_window_seconds),
            |s| s.requests as f64,
        ),
        RuleConfig::Concurrency(r) => (Some(r.max_concurrent as f64), None, |_| 0.0),
        RuleConfig::TokenLimit(t) => (
            t.max_tokens
                .or(t.max_input_tokens)
                .or(t.max_output_tokens)
                .map(|v| v as f64),
            t.time_window_minutes.map(|m| m * 60),
            |s| (s.tokens_in + s.tokens_out) as f64,
        ),
        RuleConfig::Budget(b) => (
            Some(b.max_usd.0 as f64 / sluice_filters::limits::rules::Usd::MICROS),
            b.window_minutes.map(|m| m * 60),
            |s| s.cost_micros as f64 / 1e6,
        ),
    };
    Measure {
        limit,
        window,
        figure,
    }
}

pub fn limits(c: &Call<'_>, _: NoBody) -> Reply<Limits> {
    let rt = c.center.runtime();
    let now = now_minute();
    let items = rt
        .config
        .rules
        .iter()
        .map(|r| {
            let ns = r
                .namespace
                .as_deref()
                .and_then(|code| rt.namespaces.iter().position(|n| n.code == code));
            let series = ns.and_then(|i| rt.handles.ns_series.get(i));
            let parsed = RuleConfig::parse(&r.rule_type, &r.rule_config).ok();
            let Measure {
                limit,
                window,
                figure,
            } = match &parsed {
                Some(p) => measure(p),
                None => Measure {
                    limit: None,
                    window: None,
                    figure: |_| 0.0,
                },
            };
            let used = series.and_then(|s| match (&parsed, window) {
                (Some(RuleConfig::Concurrency(_)), _) => Some(s.current().max(0) as f64),
                (Some(_), Some(w)) => {
                    let minutes = w.div_ceil(60).clamp(1, 24 * 60) as usize;
                    Some(figure(&s.total(now, minutes)))
                }
                _ => None,
            });
            LimitView {
                rule_id: r.id,
                rule_name: r.rule_name.clone(),
                rule_type: r.rule_type.clone(),
                active: r.status,
                namespace_id: ns.map(|i| rt.namespaces[i].id),
                namespace_code: r.namespace.clone(),
                limit,
                window_seconds: window,
                used,
                remaining: limit.zip(used).map(|(l, u)| (l - u).max(0.0)),
                rule_config: r.rule_config.clone(),
            }
        })
        .collect();
    Ok(Limits { items })
}
