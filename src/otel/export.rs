//! The span exporter: a bounded queue in front of a thread of its own
//! that sends batches as OTLP/HTTP protobuf (`ExportTraceServiceRequest`)
//! to `tracing.otlp_endpoint`. The request path only tries to enqueue: a
//! full queue drops the span (counted), a slow or failing collector costs
//! the exporter's thread, never a request.

use super::{Kind, Span, Value};
use crate::config::TracingSettings;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Status};
use prost::Message;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What the exporter did since start.
#[derive(Default)]
pub struct Counts {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

struct Exporter {
    tx: SyncSender<Span>,
    counts: &'static Counts,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();
static COUNTS: OnceLock<Counts> = OnceLock::new();

/// The exporter's counts (zero when none runs).
pub fn counts() -> &'static Counts {
    COUNTS.get_or_init(Counts::default)
}

/// Whether spans are exported (the `tracing` section was set at start).
pub fn running() -> bool {
    EXPORTER.get().is_some()
}

/// Starts the exporter (once per process).
pub fn start(settings: &TracingSettings) -> Result<(), String> {
    if EXPORTER.get().is_some() {
        return Ok(());
    }
    let (tx, rx) = sync_channel(settings.queue_size.max(1));
    let settings = settings.clone();
    std::thread::Builder::new()
        .name("sluice traces".into())
        .spawn(move || run(rx, &settings))
        .map_err(|e| format!("the trace exporter's thread: {e}"))?;
    let _ = EXPORTER.set(Exporter {
        tx,
        counts: counts(),
    });
    Ok(())
}

/// Hands spans to the exporter; those the queue has no room for are
/// dropped and counted.
pub fn submit(spans: Vec<Span>) {
    let Some(e) = EXPORTER.get() else {
        return;
    };
    for span in spans {
        if e.tx.try_send(span).is_err() {
            e.counts.dropped.fetch_add(1, Relaxed);
        }
    }
}

fn run(rx: Receiver<Span>, s: &TracingSettings) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        log::error!("traces: no runtime for the exporter; spans are dropped");
        return;
    };
    let _entered = rt.enter();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(s.timeout_ms.max(1)))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            log::error!("traces: no HTTP client for the exporter ({e}); spans are dropped");
            return;
        }
    };
    let flush = Duration::from_millis(s.flush_ms.max(1));
    let mut batch: Vec<Span> = Vec::new();
    let mut since = Instant::now();
    loop {
        let wait = flush.saturating_sub(since.elapsed());
        match rx.recv_timeout(wait) {
            Ok(span) => batch.push(span),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let due = batch.len() >= s.batch_size.max(1) || since.elapsed() >= flush;
        if !due {
            continue;
        }
        since = Instant::now();
        if batch.is_empty() {
            continue;
        }
        let spans = std::mem::take(&mut batch);
        let n = spans.len() as u64;
        let body = encode(&spans, &s.service_name);
        let mut req = client
            .post(&s.otlp_endpoint)
            .header("content-type", "application/x-protobuf")
            .body(body);
        for (k, v) in &s.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        // Built and awaited inside the runtime (reqwest's timeout needs it).
        match rt.block_on(async move { req.send().await }) {
            Ok(r) if r.status().is_success() => {
                counts().exported.fetch_add(n, Relaxed);
            }
            Ok(r) => {
                counts().failed.fetch_add(n, Relaxed);
                log::warn!("traces: the collector answered {} to {n} spans", r.status());
            }
            Err(e) => {
                counts().failed.fetch_add(n, Relaxed);
                log::warn!("traces: {n} spans not exported: {e}");
            }
        }
    }
}

fn any(v: &Value) -> AnyValue {
    use any_value::Value as V;
    let value = match v {
        Value::Str(s) => V::StringValue(s.clone()),
        Value::Int(i) => V::IntValue(*i),
        Value::Float(f) => V::DoubleValue(*f),
        Value::Bool(b) => V::BoolValue(*b),
        Value::Strs(items) => V::ArrayValue(ArrayValue {
            values: items
                .iter()
                .map(|s| AnyValue {
                    value: Some(V::StringValue(s.clone())),
                })
                .collect(),
        }),
    };
    AnyValue { value: Some(value) }
}

fn kv(key: &str, v: &Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(any(v)),
        ..Default::default()
    }
}

/// The OTLP protobuf body of `spans`.
pub fn encode(spans: &[Span], service: &str) -> Vec<u8> {
    let spans = spans
        .iter()
        .map(|s| opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
            name: s.name.clone(),
            kind: match s.kind {
                Kind::Internal => 1,
                Kind::Server => 2,
                Kind::Client => 3,
            },
            start_time_unix_nano: s.start_ns,
            end_time_unix_nano: s.end_ns,
            attributes: s.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
            status: Some(Status {
                code: if s.error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", &Value::Str(service.to_string()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "sluice".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    request.encode_to_vec()
}
