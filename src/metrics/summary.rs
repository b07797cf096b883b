//! JSON views of the metrics: the gateway's `/stats`, the
//! admin `/stats` (the admin API's cache-stats shape), `/metrics/summary`
//! (per route and key over 1 h / 24 h, concurrency now and peak;
//! also per namespace and upstream, for `/metrics/ui`), and the admin
//! usage, overview and monitoring endpoints.

use super::metrics;
use crate::clock::{rfc3339, unix_secs};
use crate::live::window::{now_minute, Series, Slot};
use crate::state::Snapshot;
use serde_json::{json, Value};
use sluice_filters::limits::rules::RuleConfig;

/// The gateway's `GET /stats`, process-wide.
pub fn gateway_stats() -> Value {
    let m = metrics();
    json!({
        "requests_total": m.total(),
        "requests_2xx": m.count(2),
        "requests_4xx": m.count(4),
        "requests_5xx": m.count(5),
        "latency_ms_p95": m.p95_ms(),
        "upstream_failures": m.upstream_failures(),
        "inflight_requests": m.f.inflight.get(),
        "inflight_streams": m.f.streams.get(),
        "cache": crate::cache::cache().stats(),
        "updated_at": unix_secs(),
    })
}

/// The admin `GET /stats`: the admin API's cache-stats shape, from the
/// response cache (`cache_size` = bytes held in memory, `cache_free` =
/// what the memory tier has left), with the gateway's request figures
/// added.
pub fn admin_stats(rt: &Snapshot) -> Value {
    let cache = crate::cache::cache();
    let c = &cache.counts;
    let (_, bytes) = cache.memory_usage();
    let enabled = rt.catalog.models.iter().any(|m| m.cache.is_some())
        && rt.namespaces.iter().any(|n| n.cache.is_some());
    let mut v = json!({
        "cache_hits": c.hits.load(std::sync::atomic::Ordering::Relaxed),
        "cache_misses": c.misses.load(std::sync::atomic::Ordering::Relaxed),
        "cache_size": bytes,
        "cache_free": cache.capacity().saturating_sub(bytes),
        "cache_enabled": enabled,
    });
    if let (Value::Object(a), Value::Object(b)) = (&mut v, gateway_stats()) {
        a.extend(b);
    }
    v
}

/// Requests per second and tokens per minute over the last minute or so
/// (the previous whole minute plus the current one).
struct Rate {
    qps: f64,
    tokens_in_per_min: u64,
    tokens_out_per_min: u64,
}

fn rate(s: &Series, minute: u64) -> Rate {
    let recent = s.total(minute, 2);
    let span = 60 + unix_secs() % 60;
    Rate {
        qps: (recent.requests as f64 / span as f64 * 100.0).round() / 100.0,
        tokens_in_per_min: recent.tokens_in * 60 / span,
        tokens_out_per_min: recent.tokens_out * 60 / span,
    }
}

fn window_json(s: &Series, minute: u64) -> (Slot, Slot, Value) {
    let h1 = s.total(minute, 60);
    let h24 = s.total(minute, 24 * 60);
    let v = json!({
        "requests_1h": h1.requests,
        "requests_24h": h24.requests,
        "errors_1h": h1.errors,
        "denials_1h": h1.denials,
        "p95_ms_1h": h1.p95_ms(),
        "concurrency": s.current(),
        "peak_1h": h1.peak,
        "peak_24h": h24.peak,
    });
    (h1, h24, v)
}

/// `GET /metrics/summary`.
pub fn summary(rt: &Snapshot) -> Value {
    let h = &rt.handles;
    let minute = now_minute();
    let namespaces: Vec<Value> = h
        .namespaces
        .iter()
        .zip(&h.ns_series)
        .map(|(code, s)| {
            let (h1, _, mut v) = window_json(s, minute);
            v["namespace"] = json!(code);
            v["tokens_in_1h"] = json!(h1.tokens_in);
            v["tokens_out_1h"] = json!(h1.tokens_out);
            v["cost_1h"] = json!(h1.cost_micros as f64 / 1e6);
            v["req_per_min"] = json!(s
                .minutes(minute, 15)
                .iter()
                .map(|m| m.requests)
                .collect::<Vec<_>>());
            v
        })
        .collect();
    let routes: Vec<Value> = h
        .routes
        .iter()
        .zip(&h.route_series)
        .map(|(label, s)| {
            let (_, _, mut v) = window_json(s, minute);
            v["route"] = json!(label);
            v
        })
        .collect();
    let keys: Vec<Value> = h
        .keys
        .iter()
        .zip(&h.key_series)
        .map(|(k, s)| {
            json!({
                "key": k.name,
                "masked": k.masked,
                "requests_1h": s.total(minute, 60).requests,
                "requests_24h": s.total(minute, 24 * 60).requests,
            })
        })
        .collect();
    let now = crate::clock::mono_ms();
    let mut upstreams = Vec::new();
    for pool in &rt.pools {
        let backends = pool.lb.backends();
        for b in backends.get_backend().iter() {
            if let Some(s) = crate::upstream::server_of(b) {
                upstreams.push(json!({
                    "pool": pool.name,
                    "server": s.name,
                    "healthy": backends.ready(b),
                    "circuit_open": s.is_ejected(now),
                    "inflight": s.inflight(),
                }));
            }
        }
    }
    json!({
        "generated_at": unix_secs(),
        "totals": gateway_stats(),
        "namespaces": namespaces,
        "routes": routes,
        "keys": keys,
        "upstreams": upstreams,
        "fleet": crate::fleet::known(),
        "bridge": if rt.config.bridge.enabled { crate::bridge::hub().summary() } else { Value::Null },
    })
}

fn ns_index(rt: &Snapshot, id: u64) -> Option<usize> {
    rt.namespaces.iter().position(|n| n.id == id)
}

/// Admin `GET /api/v1/namespaces/{id}/usage`; none = no such namespace.
pub fn usage(rt: &Snapshot, id: u64) -> Option<Value> {
    let i = ns_index(rt, id)?;
    let s = rt.handles.ns_series.get(i)?;
    let r = rate(s, now_minute());
    // The namespace's first rate rule, as requests per second.
    let rate_rule = rt.limits.by_namespace.get(i).and_then(|rules| {
        rules
            .iter()
            .find_map(|&k| match &rt.limits.rules[k].config {
                RuleConfig::RateLimit(c) => {
                    let max = c.max_requests.or(c.max_qps)?;
                    Some(max as f64 / c.time_window_seconds.max(1) as f64)
                }
                _ => None,
            })
    });
    Some(json!({
        "namespace_id": id,
        "namespace_code": rt.namespaces[i].code,
        "qps": r.qps,
        "concurrency": s.current(),
        "token_input_per_min": r.tokens_in_per_min,
        "token_output_per_min": r.tokens_out_per_min,
        "cost_1h": s.total(now_minute(), 60).cost_micros as f64 / 1e6,
        "rate_limit": {"enabled": rate_rule.is_some(), "max_qps": rate_rule},
        "updated_at": rfc3339(unix_secs()),
    }))
}

/// Admin `GET /api/v1/namespaces/usage/overview`.
pub fn overview(rt: &Snapshot) -> Value {
    let minute = now_minute();
    Value::Array(
        rt.namespaces
            .iter()
            .zip(&rt.handles.ns_series)
            .map(|(n, s)| {
                json!({
                    "namespace_id": n.id,
                    "namespace_code": n.code,
                    "qps": rate(s, minute).qps,
                    "concurrency": s.current(),
                })
            })
            .collect(),
    )
}

/// Admin `GET /api/v1/namespaces/{id}/monitoring`: the last 5 minutes
/// (oldest first, the current minute last).
pub fn monitoring(rt: &Snapshot, id: u64) -> Option<Value> {
    let i = ns_index(rt, id)?;
    let minutes = rt.handles.ns_series.get(i)?.minutes(now_minute(), 5);
    let col = |f: fn(&Slot) -> u64| minutes.iter().map(f).collect::<Vec<u64>>();
    Some(json!({
        "namespace_id": id,
        "metrics": {
            "req_per_min": col(|s| s.requests),
            "latency_ms_p95": col(Slot::p95_ms),
            "token_in": col(|s| s.tokens_in),
            "token_out": col(|s| s.tokens_out),
        },
        "window": "5m",
        "updated_at": rfc3339(unix_secs()),
    }))
}
