//! Process-wide request metrics: lock-free counters and a latency histogram,
//! rendered in the Prometheus text format at `/metrics` (proxy listener,
//! metrics token required) and summarised in `/health`. Recorded once per
//! client request in `logging`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

/// Upper bounds of the latency buckets, in milliseconds.
const BUCKETS_MS: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000,
];

/// The metrics of this process.
#[derive(Default)]
pub struct Metrics {
    /// Requests by status class: 1xx..5xx at index 1..5; index 0 = no response.
    by_class: [AtomicU64; 6],
    upstream_failures: AtomicU64,
    retries: AtomicU64,
    inflight: AtomicI64,
    buckets: [AtomicU64; BUCKETS_MS.len()],
    latency_sum_ms: AtomicU64,
    /// Limit denials by code, in [`DENIAL_CODES`] order.
    denials: [AtomicU64; DENIAL_CODES.len()],
    counter_store_errors: AtomicU64,
    tokens_in: AtomicU64,
    tokens_out: AtomicU64,
    truncated: AtomicU64,
}

/// Codes of limit denials (the label values of `sluice_limit_denials_total`).
const DENIAL_CODES: [&str; 4] = [
    "rate_limited",
    "token_limit_exceeded",
    "concurrency_limited",
    "limits_unavailable",
];

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::default)
}

impl Metrics {
    /// A request entered the gateway.
    pub fn request_started(&self) {
        self.inflight.fetch_add(1, Relaxed);
    }

    /// A request finished with `status` (0 = no response) after `elapsed_ms`.
    pub fn request_finished(&self, status: u16, elapsed_ms: u64) {
        self.inflight.fetch_sub(1, Relaxed);
        let class = (status / 100).min(5) as usize;
        self.by_class[class].fetch_add(1, Relaxed);
        if let Some(i) = BUCKETS_MS.iter().position(|b| elapsed_ms <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.latency_sum_ms.fetch_add(elapsed_ms, Relaxed);
    }

    /// A connection to an upstream failed.
    pub fn upstream_failure(&self) {
        self.upstream_failures.fetch_add(1, Relaxed);
    }

    /// A request was retried on another server.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// A limit rule denied a request with `code`.
    pub fn limit_denied(&self, code: &str) {
        if let Some(i) = DENIAL_CODES.iter().position(|c| *c == code) {
            self.denials[i].fetch_add(1, Relaxed);
        }
    }

    /// A call to the counter store failed.
    pub fn counter_store_error(&self) {
        self.counter_store_errors.fetch_add(1, Relaxed);
    }

    /// Tokens a metered request used.
    pub fn tokens(&self, prompt: u64, completion: u64, truncated: bool) {
        self.tokens_in.fetch_add(prompt, Relaxed);
        self.tokens_out.fetch_add(completion, Relaxed);
        if truncated {
            self.truncated.fetch_add(1, Relaxed);
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
                return BUCKETS_MS[i];
            }
        }
        BUCKETS_MS[BUCKETS_MS.len() - 1]
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP sluice_requests_total Client requests by response status class.\n");
        out.push_str("# TYPE sluice_requests_total counter\n");
        for (i, class) in ["none", "1xx", "2xx", "3xx", "4xx", "5xx"]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                out,
                "sluice_requests_total{{class=\"{class}\"}} {}",
                self.by_class[i].load(Relaxed)
            );
        }
        out.push_str("# HELP sluice_inflight_requests Client requests in progress.\n");
        out.push_str("# TYPE sluice_inflight_requests gauge\n");
        let _ = writeln!(
            out,
            "sluice_inflight_requests {}",
            self.inflight.load(Relaxed)
        );
        out.push_str(
            "# HELP sluice_upstream_failures_total Failed connections to upstream servers.\n",
        );
        out.push_str("# TYPE sluice_upstream_failures_total counter\n");
        let _ = writeln!(
            out,
            "sluice_upstream_failures_total {}",
            self.upstream_failures()
        );
        out.push_str(
            "# HELP sluice_upstream_retries_total Requests retried on another upstream server.\n",
        );
        out.push_str("# TYPE sluice_upstream_retries_total counter\n");
        let _ = writeln!(
            out,
            "sluice_upstream_retries_total {}",
            self.retries.load(Relaxed)
        );
        out.push_str(
            "# HELP sluice_request_duration_seconds Time from request to end of response.\n",
        );
        out.push_str("# TYPE sluice_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_MS.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "sluice_request_duration_seconds_bucket{{le=\"{}\"}} {cumulative}",
                *bound as f64 / 1000.0
            );
        }
        let total = self.total();
        let _ = writeln!(
            out,
            "sluice_request_duration_seconds_bucket{{le=\"+Inf\"}} {total}"
        );
        let _ = writeln!(
            out,
            "sluice_request_duration_seconds_sum {}",
            self.latency_sum_ms.load(Relaxed) as f64 / 1000.0
        );
        let _ = writeln!(out, "sluice_request_duration_seconds_count {total}");
        self.render_limits(&mut out);
        out
    }

    fn render_limits(&self, out: &mut String) {
        out.push_str(
            "# HELP sluice_limit_denials_total Requests denied by a limit rule, by code.\n",
        );
        out.push_str("# TYPE sluice_limit_denials_total counter\n");
        for (i, code) in DENIAL_CODES.iter().enumerate() {
            let _ = writeln!(
                out,
                "sluice_limit_denials_total{{code=\"{code}\"}} {}",
                self.denials[i].load(Relaxed)
            );
        }
        out.push_str("# HELP sluice_counter_store_errors_total Failed calls to the counter store (each rule's fail_mode applied).\n");
        out.push_str("# TYPE sluice_counter_store_errors_total counter\n");
        let _ = writeln!(
            out,
            "sluice_counter_store_errors_total {}",
            self.counter_store_errors.load(Relaxed)
        );
        out.push_str("# HELP sluice_tokens_total Tokens of metered requests (requests under a token rule).\n");
        out.push_str("# TYPE sluice_tokens_total counter\n");
        let _ = writeln!(
            out,
            "sluice_tokens_total{{direction=\"in\"}} {}",
            self.tokens_in.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "sluice_tokens_total{{direction=\"out\"}} {}",
            self.tokens_out.load(Relaxed)
        );
        out.push_str(
            "# HELP sluice_responses_truncated_total Responses cut at their output token cap.\n",
        );
        out.push_str("# TYPE sluice_responses_truncated_total counter\n");
        let _ = writeln!(
            out,
            "sluice_responses_truncated_total {}",
            self.truncated.load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentile() {
        let m = Metrics::default();
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
        let text = m.render();
        assert!(text.contains("sluice_requests_total{class=\"2xx\"} 95"));
        assert!(text.contains("sluice_request_duration_seconds_count 100"));
        assert!(text.contains("sluice_inflight_requests 0"));
    }
}
