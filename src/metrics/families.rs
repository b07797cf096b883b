//! The Prometheus metric families, their registry, and how one finished
//! request is recorded into them ([`Families::finish`]).

use crate::live::labels::{MetricHandles, CLASSES, NONE};
use crate::live::window::{self, Finished};
use crate::state::Snapshot;
use prometheus::{
    histogram_opts, opts, CounterVec, Histogram, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Registry, TextEncoder,
};
use std::time::Duration;

/// Buckets (seconds) of request duration, upstream TTFB and TTFT.
const LATENCY_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];
/// Buckets (seconds) of the gap between stream chunks.
const GAP_S: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Buckets (seconds) of the gateway's own time.
const OVERHEAD_S: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// One finished client request, as the metrics see it.
#[derive(Debug, Default)]
pub struct Record {
    pub namespace: Option<usize>,
    pub route: Option<usize>,
    pub key: Option<usize>,
    /// Model label index ([`crate::live::labels::ModelLabels::index`]).
    pub model: usize,
    pub pool: Option<usize>,
    /// 0 = no response reached the client.
    pub status: u16,
    pub elapsed: Duration,
    /// (in, out) tokens, when the response was metered or a catalog
    /// deployment reported them.
    pub tokens: Option<(u64, u64)>,
    /// Cost from the catalog's prices (catalog requests with usage).
    pub cost: Option<f64>,
    pub denied: bool,
    /// Came by the internal channel (`/internal/v1/…`).
    pub internal: bool,
    /// Time in the gateway before the upstream attempt (none when the
    /// request never went upstream).
    pub before_upstream: Option<Duration>,
    /// Time spent settling limits after the response.
    pub settle: Duration,
}

/// Every family.
pub struct Families {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub ttfb: HistogramVec,
    pub ttft: HistogramVec,
    pub gap: HistogramVec,
    pub overhead: HistogramVec,
    overhead_request: Histogram,
    overhead_settle: Histogram,
    overhead_total: Histogram,
    pub tokens: IntCounterVec,
    pub cost: CounterVec,
    pub spend: CounterVec,
    pub denials: IntCounterVec,
    pub upstream_failures: IntCounterVec,
    pub retries: IntCounterVec,
    pub upstream_healthy: IntGaugeVec,
    pub circuit_open: IntGaugeVec,
    pub breaker_state: IntGaugeVec,
    pub upstream_inflight: IntGaugeVec,
    pub inflight: IntGauge,
    pub streams: IntGauge,
    pub counter_store_errors: IntCounter,
    pub counter_store_calls: IntCounter,
    pub counter_store_admissions: IntCounter,
    pub counter_settlements: IntCounterVec,
    pub counter_settlements_pending: IntGauge,
    pub local_share: IntCounterVec,
    pub truncated: IntCounter,
    pub config_version: IntGauge,
    pub config_reloads: IntCounter,
    pub access_log_dropped: IntCounter,
    pub connections_refused: IntCounter,
    pub cache_requests: IntCounterVec,
    pub cache_bytes: IntCounterVec,
    pub cache_redis_errors: IntCounter,
    pub cache_memory_bytes: IntGauge,
    pub cache_memory_entries: IntGauge,
    pub trace_spans: IntCounterVec,
    pub bridge_invocations: IntCounterVec,
    pub bridge_seconds: HistogramVec,
    pub bridge_agents: IntGauge,
    pub bridge_running: IntGauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    if let Err(e) = r.register(Box::new(m.clone())) {
        log::error!("metric registration failed: {e}");
    }
    m
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    #[allow(clippy::unwrap_used)] // static, valid definitions (tested)
    let m = IntCounterVec::new(opts!(name, help), labels).unwrap();
    reg(r, m)
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str], b: &[f64]) -> HistogramVec {
    #[allow(clippy::unwrap_used)] // static, valid definitions (tested)
    let m = HistogramVec::new(histogram_opts!(name, help, b.to_vec()), labels).unwrap();
    reg(r, m)
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    #[allow(clippy::unwrap_used)] // static, valid definitions (tested)
    let m = IntGaugeVec::new(opts!(name, help), labels).unwrap();
    reg(r, m)
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    #[allow(clippy::unwrap_used)] // static, valid definitions (tested)
    let m = IntGauge::new(name, help).unwrap();
    reg(r, m)
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    #[allow(clippy::unwrap_used)] // static, valid definitions (tested)
    let m = IntCounter::new(name, help).unwrap();
    reg(r, m)
}

impl Default for Families {
    fn default() -> Self {
        Families::new()
    }
}

impl Families {
    /// Defines and registers every family.
    #[allow(clippy::unwrap_used)] // static, valid definitions (tested)
    pub fn new() -> Families {
        let r = Registry::new();
        let overhead = histogram_vec(
            &r,
            "sluice_gateway_overhead_seconds",
            "Time spent in Sluice outside the upstream, by stage: request (auth, body, matchers, route, limits, up to the upstream attempt), settle (limits after the response), total (both).",
            &["stage"],
            OVERHEAD_S,
        );
        let cost = reg(
            &r,
            CounterVec::new(
                opts!(
                    "sluice_cost_total",
                    "Cost of metered requests in USD by namespace, model and provider (0 for requests outside the model catalog: they have no price)."
                ),
                &["namespace", "model", "provider"],
            )
            .unwrap(),
        );
        let spend = reg(
            &r,
            CounterVec::new(
                opts!(
                    "sluice_spend_usd_total",
                    "The spend ledger: what catalog requests cost in USD by namespace, API key (its name) and model, at the answering deployment's prices."
                ),
                &["namespace", "key", "model"],
            )
            .unwrap(),
        );
        Families {
            spend,
            requests: counter_vec(&r, "sluice_requests_total", "Client requests by namespace, route, model, provider, response status class and channel (internal: /internal/v1/..., external: the rest).", &["namespace", "route", "model", "provider", "class", "channel"]),
            duration: histogram_vec(&r, "sluice_request_duration_seconds", "Time from request to end of response.", &["namespace", "route"], LATENCY_S),
            ttfb: histogram_vec(&r, "sluice_upstream_ttfb_seconds", "Time from sending the request upstream to the upstream response header.", &["upstream"], LATENCY_S),
            ttft: histogram_vec(&r, "sluice_ttft_seconds", "Streams: time from the client request to the first body chunk (first token).", &["namespace", "model"], LATENCY_S),
            gap: histogram_vec(&r, "sluice_inter_token_seconds", "Streams: gap between consecutive body chunks from the upstream.", &["namespace", "model"], GAP_S),
            overhead_request: overhead.with_label_values(&["request"]),
            overhead_settle: overhead.with_label_values(&["settle"]),
            overhead_total: overhead.with_label_values(&["total"]),
            overhead,
            tokens: counter_vec(&r, "sluice_tokens_total", "Tokens of metered requests (requests under a token rule), by direction (in = prompt, out = completion).", &["direction", "namespace", "model"]),
            cost,
            denials: counter_vec(&r, "sluice_limit_denials_total", "Requests denied by a limit rule.", &["namespace", "rule", "code"]),
            upstream_failures: counter_vec(&r, "sluice_upstream_failures_total", "Failed upstream connection attempts (connect_*, tls) and failed responses (upstream_error, upstream_timeout, no_healthy_upstream), by pool.", &["upstream", "reason"]),
            retries: counter_vec(&r, "sluice_upstream_retries_total", "Requests retried on another upstream server (or a fresh connection).", &["upstream"]),
            upstream_healthy: gauge_vec(&r, "sluice_upstream_healthy", "1 when the server passes its active health checks.", &["upstream", "server"]),
            circuit_open: gauge_vec(&r, "sluice_upstream_circuit_open", "1 while passive ejection (the circuit breaker) keeps traffic away from the server.", &["upstream", "server"]),
            breaker_state: gauge_vec(&r, "sluice_deployment_breaker_state", "Circuit breaker of each catalog deployment: 0 closed, 1 half-open, 2 open.", &["model", "deployment"]),
            upstream_inflight: gauge_vec(&r, "sluice_upstream_inflight_requests", "Requests in flight to the server.", &["upstream", "server"]),
            inflight: gauge(&r, "sluice_inflight_requests", "Client requests in progress."),
            streams: gauge(&r, "sluice_inflight_streams", "Streaming responses in progress."),
            counter_store_errors: counter(&r, "sluice_counter_store_errors_total", "Failed calls to the counter store (each rule's fail_mode applied)."),
            counter_store_calls: counter(&r, "sluice_counter_store_calls_total", "Script calls to the Redis counter store; admissions per call is the batching (sluice_counter_store_admissions_total / this)."),
            counter_store_admissions: counter(&r, "sluice_counter_store_admissions_total", "Requests admitted or denied through the Redis counter store."),
            counter_settlements: counter_vec(&r, "sluice_counter_settlements_total", "Settlements to the Redis counter store by outcome: applied (after coalescing), dropped (expired while Redis did not answer, or the queue full).", &["outcome"]),
            local_share: counter_vec(&r, "sluice_limits_local_share_total", "Requests judged in process while the counter store was unreachable, by rules with fail_mode local_share (each instance enforcing the limit divided by the live instances), by result: admitted, denied.", &["result"]),
            counter_settlements_pending: gauge(&r, "sluice_counter_settlements_pending", "Settlements queued for the Redis counter store, not applied yet."),
            truncated: counter(&r, "sluice_responses_truncated_total", "Responses cut at their output token cap."),
            config_version: gauge(&r, "sluice_config_version", "Configs applied since start (1 = the startup config)."),
            config_reloads: counter(&r, "sluice_config_reloads_total", "Configs applied through the admin API since start."),
            access_log_dropped: counter(&r, "sluice_access_log_dropped_total", "Access log lines dropped because the writer fell behind."),
            connections_refused: counter(&r, "sluice_connections_refused_total", "Client connections refused at a connection cap (clients.max_connections, max_connections_per_client)."),
            cache_requests: counter_vec(&r, "sluice_cache_requests_total", "Requests to catalog models that cache, by namespace, model and result: hit (answered from the cache, or from an identical request in flight), miss (the model answered), stale (an expired answer served because the model could not answer), bypass (not cacheable, or Cache-Control: no-store).", &["namespace", "model", "result"]),
            cache_bytes: counter_vec(&r, "sluice_cache_served_bytes_total", "Bytes of answers served from the response cache, by namespace and model.", &["namespace", "model"]),
            cache_redis_errors: counter(&r, "sluice_cache_redis_errors_total", "Failed calls to the response cache's Redis tier (the request went on with the memory tier)."),
            cache_memory_bytes: gauge(&r, "sluice_cache_memory_bytes", "Bytes of answers held in the response cache's memory tier."),
            cache_memory_entries: gauge(&r, "sluice_cache_memory_entries", "Answers held in the response cache's memory tier."),
            trace_spans: counter_vec(&r, "sluice_trace_spans_total", "Trace spans by outcome: exported (the collector took them), dropped (the export queue was full), failed (the collector refused them or did not answer).", &["outcome"]),
            bridge_invocations: counter_vec(&r, "sluice_bridge_invocations_total", "Bridge tool invocations by agent, tool and outcome: ok, error (the tool failed), timeout, cancelled, disconnected (the agent went away), refused (not sent: unknown tool, invalid arguments, offline agent, limits).", &["agent", "tool", "outcome"]),
            bridge_seconds: histogram_vec(&r, "sluice_bridge_invocation_seconds", "Duration of Bridge tool invocations that reached their agent, by agent and tool.", &["agent", "tool"], &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
            bridge_agents: gauge(&r, "sluice_bridge_agents_online", "Agents with a live tunnel to this instance."),
            bridge_running: gauge(&r, "sluice_bridge_invocations_running", "Bridge invocations in progress on this instance."),
            registry: r,
        }
    }

    /// The text exposition of every family.
    pub fn encode(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }

    /// Sets the per-server gauges from the running runtime.
    pub fn refresh_upstreams(&self, rt: &Snapshot) {
        self.upstream_healthy.reset();
        self.circuit_open.reset();
        self.upstream_inflight.reset();
        let now = crate::clock::mono_ms();
        for pool in &rt.pools {
            let backends = pool.lb.backends();
            for b in backends.get_backend().iter() {
                let Some(s) = crate::upstream::server_of(b) else {
                    continue;
                };
                let labels = [pool.name.as_str(), s.name.as_str()];
                self.upstream_healthy
                    .with_label_values(&labels)
                    .set(i64::from(backends.ready(b)));
                self.circuit_open
                    .with_label_values(&labels)
                    .set(i64::from(s.is_ejected(now)));
                self.upstream_inflight
                    .with_label_values(&labels)
                    .set(s.inflight().try_into().unwrap_or(i64::MAX));
            }
        }
        self.breaker_state.reset();
        for (model, deployment, state) in rt.catalog.breaker_states() {
            let v = match state {
                sluice_filters::balance::BreakerState::Closed => 0,
                sluice_filters::balance::BreakerState::HalfOpen => 1,
                sluice_filters::balance::BreakerState::Open { .. } => 2,
            };
            self.breaker_state
                .with_label_values(&[model, deployment])
                .set(v);
        }
    }

    /// The TTFB histogram of pool `pool`.
    pub fn ttfb_of(&self, h: &MetricHandles, pool: usize) -> Histogram {
        h.ttfb.get(pool, || {
            self.ttfb
                .with_label_values(&[h.pools.get(pool).map_or(NONE, String::as_str)])
        })
    }

    /// The TTFT and inter-chunk gap histograms of a stream.
    pub fn stream_of(
        &self,
        h: &MetricHandles,
        ns: Option<usize>,
        model: usize,
    ) -> (Histogram, Histogram) {
        let (n, _, m) = h.dims();
        let i = ns.unwrap_or(n - 1).min(n - 1) * m + model.min(m - 1);
        let labels = [h.ns_label(ns), h.model_label(model)];
        (
            h.ttft.get(i, || self.ttft.with_label_values(&labels)),
            h.gap.get(i, || self.gap.with_label_values(&labels)),
        )
    }

    /// Records a finished request in every family and its entities' history.
    pub fn finish(&self, h: &MetricHandles, r: &Record) {
        let (n, rn, m) = h.dims();
        let ns = r.namespace.unwrap_or(n - 1).min(n - 1);
        let route = r.route.unwrap_or(rn - 1).min(rn - 1);
        let model = r.model.min(m - 1);
        let class = (r.status / 100).min(5) as usize;
        let provider = r
            .pool
            .and_then(|p| h.providers.get(p).copied())
            .unwrap_or(NONE);
        let (ns_l, route_l, model_l) = (
            h.ns_label(r.namespace),
            h.route_label(r.route),
            h.model_label(model),
        );
        let provider_i = crate::live::labels::PROVIDER_LABELS
            .iter()
            .position(|p| *p == provider)
            .unwrap_or(crate::live::labels::PROVIDER_LABELS.len() - 1);
        let channel = if r.internal { "internal" } else { "external" };
        let cell = ((((ns * rn + route) * m + model) * CLASSES.len() + class)
            * crate::live::labels::PROVIDER_LABELS.len()
            + provider_i)
            * 2
            + usize::from(r.internal);
        h.requests
            .get(cell, || {
                self.requests.with_label_values(&[
                    ns_l,
                    route_l,
                    model_l,
                    provider,
                    CLASSES[class],
                    channel,
                ])
            })
            .inc();
        let secs = r.elapsed.as_secs_f64();
        h.duration
            .get(ns * rn + route, || {
                self.duration.with_label_values(&[ns_l, route_l])
            })
            .observe(secs);
        if let Some((tin, tout)) = r.tokens {
            let i = (ns * m + model) * 2;
            h.tokens
                .get(i, || self.tokens.with_label_values(&["in", ns_l, model_l]))
                .inc_by(tin);
            h.tokens
                .get(i + 1, || {
                    self.tokens.with_label_values(&["out", ns_l, model_l])
                })
                .inc_by(tout);
        }
        if r.tokens.is_some() || r.cost.is_some() {
            // Requests outside the catalog have no price: their series
            // exists and stays at 0.
            let pools = h.providers.len() + 1;
            let pool = r.pool.unwrap_or(pools - 1).min(pools - 1);
            h.cost
                .get((ns * m + model) * pools + pool, || {
                    self.cost.with_label_values(&[ns_l, model_l, provider])
                })
                .inc_by(r.cost.unwrap_or(0.0).max(0.0));
        }
        if let Some(cost) = r.cost.filter(|c| *c > 0.0) {
            let keys = h.keys.len() + 1;
            let key = r.key.unwrap_or(keys - 1).min(keys - 1);
            let key_l = h.keys.get(key).map_or("none", |k| k.name.as_str());
            h.spend
                .get((ns * keys + key) * m + model, || {
                    self.spend.with_label_values(&[ns_l, key_l, model_l])
                })
                .inc_by(cost);
        }
        if let Some(before) = r.before_upstream {
            let b = before.as_secs_f64();
            let s = r.settle.as_secs_f64();
            self.overhead_request.observe(b);
            self.overhead_settle.observe(s);
            self.overhead_total.observe(b + s);
        }
        let minute = window::now_minute();
        let (tin, tout) = r.tokens.unwrap_or((0, 0));
        let f = Finished {
            latency_ms: r.elapsed.as_millis() as u64,
            error: class == 5 || class == 0,
            denied: r.denied,
            tokens_in: tin,
            tokens_out: tout,
            cost_micros: (r.cost.unwrap_or(0.0).max(0.0) * 1e6).round() as u64,
        };
        for s in [
            Some(&h.all_series),
            r.namespace.and_then(|i| h.ns_series.get(i)),
            r.route.and_then(|i| h.route_series.get(i)),
            r.key.and_then(|i| h.key_series.get(i)),
        ]
        .into_iter()
        .flatten()
        {
            s.finished(minute, &f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_registers() {
        let f = Families::new();
        f.inflight.inc();
        let text = f.encode();
        assert!(text.contains("sluice_inflight_requests 1"), "{text}");
    }
}
