//! OpenTelemetry traces (`tracing:`): where spans are exported (OTLP over
//! HTTP, protobuf), how many requests are traced, and the exporter's
//! bounds. Recorded and exported by `src/otel/`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Trace export.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingSettings {
    /// The OTLP/HTTP traces endpoint (`http://collector:4318/v1/traces`).
    /// Read at start.
    pub otlp_endpoint: String,
    /// Extra headers of the export requests (an API key of the backend).
    pub headers: BTreeMap<String, String>,
    /// Share of new traces recorded, 0 to 1; a request whose
    /// `traceparent` says sampled or not keeps its caller's choice.
    pub sample_ratio: f64,
    /// `service.name` of the spans.
    pub service_name: String,
    /// Spans waiting for export at most; more are dropped (counted in
    /// `sluice_trace_spans_dropped_total`), never waited for.
    pub queue_size: usize,
    /// Spans per export request at most.
    pub batch_size: usize,
    /// A batch is sent at least this often while spans wait.
    pub flush_ms: u64,
    /// Longest wait for one export request.
    pub timeout_ms: u64,
}

impl Default for TracingSettings {
    fn default() -> Self {
        TracingSettings {
            otlp_endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            headers: BTreeMap::new(),
            sample_ratio: 1.0,
            service_name: "sluice".into(),
            queue_size: 4096,
            batch_size: 512,
            flush_ms: 1000,
            timeout_ms: 5000,
        }
    }
}
