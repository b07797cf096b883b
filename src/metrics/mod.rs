//! Process-wide metrics, in the `prometheus` crate's registry, rendered in
//! the text exposition format at `/metrics` (proxy listener, metrics token
//! required). Label values are bounded (see [`crate::live::labels`]); the request path
//! reaches each series through handles resolved per runtime ([`MetricHandles`]),
//! never by hashing label strings.
//!
//! Also here: per-minute history for `/stats`, `/metrics/summary` and the
//! admin usage/monitoring endpoints ([`crate::live::window`], [`summary`]), the
//! `/metrics/ui` page ([`ui`]) and the JSON access log ([`access_log`]).
//! Recorded from the proxy phases through `src/proxy/observe.rs`.

pub mod access_log;
pub mod endpoints;
pub mod families;
pub mod summary;
pub mod trace;
pub mod ui;

pub use crate::live::MetricHandles;
pub use families::Families;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

/// Upper bounds of the process-wide latency buckets behind `/stats`, in ms.
const BUCKETS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000,
];

/// The metrics of this process.
pub struct Metrics {
    /// The Prometheus families.
    pub f: Families,
    /// Requests by status class: 1xx..5xx at index 1..5; index 0 = no response.
    by_class: [AtomicU64; 6],
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    upstream_failures: AtomicU64,
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            f: Families::new(),
            by_class: Default::default(),
            buckets: Default::default(),
            upstream_failures: AtomicU64::new(0),
        }
    }

    /// A request entered the gateway.
    pub fn request_started(&self) {
        self.f.inflight.inc();
    }

    /// A request finished with `status` (0 = no response) after `elapsed_ms`
    /// (the process-wide figures of `/stats` and `/health`).
    pub fn request_finished(&self, status: u16, elapsed_ms: u64) {
        self.f.inflight.dec();
        let class = (status / 100).min(5) as usize;
        self.by_class[class].fetch_add(1, Relaxed);
        let i = BUCKETS_MS
            .iter()
            .position(|b| elapsed_ms <= *b)
            .unwrap_or(BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Relaxed);
    }

    /// A client connection was refused at a connection cap.
    pub fn connection_refused(&self) {
        self.f.connections_refused.inc();
    }

    /// A connection to a server of pool `upstream` failed for `reason`.
    pub fn upstream_failure(&self, upstream: &str, reason: &str) {
        self.upstream_failures.fetch_add(1, Relaxed);
        self.f
            .upstream_failures
            .with_label_values(&[upstream, reason])
            .inc();
    }

    /// A request was retried on another server of pool `upstream`.
    pub fn retry(&self, upstream: &str) {
        self.f.retries.with_label_values(&[upstream]).inc();
    }

    /// A limit rule denied a request of `namespace`.
    pub fn limit_denied(&self, namespace: &str, rule: &str, code: &str) {
        self.f
            .denials
            .with_label_values(&[namespace, rule, code])
            .inc();
    }

    /// A request judged by the in-process stand-in (`local_share`).
    pub fn local_share(&self, admitted: bool) {
        let result = if admitted { "admitted" } else { "denied" };
        self.f.local_share.with_label_values(&[result]).inc();
    }

    /// A call to the counter store failed.
    pub fn counter_store_error(&self) {
        self.f.counter_store_errors.inc();
    }

    /// A metered response was cut at its output cap.
    pub fn truncated(&self, truncated: bool) {
        if truncated {
            self.f.truncated.inc();
        }
    }

    /// A config was applied (at start and on every admin change).
    pub fn config_applied(&self, initial: bool) {
        self.f.config_version.inc();
        if !initial {
            self.f.config_reloads.inc();
        }
    }

    /// Requests so far by class (index 1..5).
    pub fn count(&self, class: usize) -> u64 {
        self.by_class[class].load(Relaxed)
    }

    /// Total finished requests.
    pub fn total(&self) -> u64 {
        self.by_class.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Upstream connection failures so far.
    pub fn upstream_failures(&self) -> u64 {
        self.upstream_failures.load(Relaxed)
    }

    /// The p95 latency bound in ms (bucket upper bound), 0 without data.
    pub fn p95_ms(&self) -> u64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = (total * 95).div_ceil(100);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return BUCKETS_MS[i.min(BUCKETS_MS.len() - 1)];
            }
        }
        BUCKETS_MS[BUCKETS_MS.len() - 1]
    }

    /// Prometheus text exposition; upstream health and circuit state are
    /// read from `rt` at scrape time.
    pub fn render(&self, rt: &crate::state::Snapshot) -> String {
        self.f.refresh_upstreams(rt);
        let cache = crate::cache::cache();
        let (entries, bytes) = cache.memory_usage();
        let errors = cache
            .counts
            .redis_errors
            .load(std::sync::atomic::Ordering::Relaxed);
        let counted = self.f.cache_redis_errors.get();
        self.f
            .cache_redis_errors
            .inc_by(errors.saturating_sub(counted));
        self.f.cache_memory_entries.set(entries as i64);
        self.f.cache_memory_bytes.set(bytes as i64);
        let b = crate::store::counter_batch::counts();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        let f = &self.f;
        f.counter_store_calls
            .inc_by(load(&b.calls).saturating_sub(f.counter_store_calls.get()));
        f.counter_store_admissions
            .inc_by(load(&b.admissions).saturating_sub(f.counter_store_admissions.get()));
        for (outcome, n) in [("applied", &b.settled), ("dropped", &b.dropped)] {
            let c = f.counter_settlements.with_label_values(&[outcome]);
            c.inc_by(load(n).saturating_sub(c.get()));
        }
        f.counter_settlements_pending.set(load(&b.pending) as i64);
        let t = crate::otel::export::counts();
        for (outcome, n) in [
            ("exported", &t.exported),
            ("dropped", &t.dropped),
            ("failed", &t.failed),
        ] {
            let c = self.f.trace_spans.with_label_values(&[outcome]);
            c.inc_by(
                n.load(std::sync::atomic::Ordering::Relaxed)
                    .saturating_sub(c.get()),
            );
        }
        self.f.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentile() {
        let m = Metrics::new();
        for _ in 0..95 {
            m.request_started();
            m.request_finished(200, 3);
        }
        for _ in 0..5 {
            m.request_started();
            m.request_finished(502, 900);
        }
        assert_eq!(m.count(2), 95);
        assert_eq!(m.count(5), 5);
        assert_eq!(m.p95_ms(), 5);
        assert_eq!(m.total(), 100);
        let text = m.f.encode();
        assert!(text.contains("sluice_inflight_requests 0"), "{text}");
    }
}
