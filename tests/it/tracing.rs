//! OpenTelemetry traces with the real binary and a local OTLP/HTTP
//! receiver written for the test (decoding the protobuf export requests):
//! the span tree of a request (its span continuing the client's
//! `traceparent`, admission, the upstream attempt whose id reached the
//! upstream, the stream), GenAI attributes, the sampling decisions, and an
//! exporter that drops (and counts) spans instead of slowing requests when
//! the collector hangs.

use crate::common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An OTLP/HTTP receiver: every span it was sent.
pub(crate) async fn receiver() -> (u16, Arc<Mutex<Vec<Span>>>) {
    use http_body_util::{BodyExt, Full};
    let spans = Arc::new(Mutex::new(Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let store = spans.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let store = store.clone();
                        async move {
                            assert_eq!(req.uri().path(), "/v1/traces");
                            assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let export = ExportTraceServiceRequest::decode(body).unwrap();
                            for rs in export.resource_spans {
                                for ss in rs.scope_spans {
                                    store.lock().unwrap().extend(ss.spans);
                                }
                            }
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                bytes::Bytes::new(),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (port, spans)
}

fn traced_config(mock_port: u16, collector: &str, rest: &str) -> String {
    one_mock(
        mock_port,
        &format!(
            "tracing: {{otlp_endpoint: \"{collector}\", sample_ratio: 0.0, flush_ms: 50{rest}}}\nmodels:\n  - name: traced\n    deployments: [{{name: one, upstream: p}}]\n"
        ),
    )
}

pub(crate) fn attr<'a>(span: &'a Span, key: &str) -> Option<&'a V> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn spans_of(spans: &Mutex<Vec<Span>>, trace: &[u8]) -> Vec<Span> {
    spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.trace_id == trace)
        .cloned()
        .collect()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_traced_with_their_callers_context() {
    let m = mock("a").await;
    let (port, spans) = receiver().await;
    let gw = Gateway::start(&traced_config(
        m.addr.port(),
        &format!("http://127.0.0.1:{port}/v1/traces"),
        "",
    ))
    .await;
    let c = reqwest::Client::new();
    let ask = |traceparent: Option<String>, stream: bool| {
        let mut r = post(&c, gw.url("/v1/chat/completions")).json(&json!({
            "model": "traced", "stream": stream,
            "messages": [{"role": "user", "content": "hello there"}]}));
        if let Some(t) = traceparent {
            r = r.header("traceparent", t);
        }
        r.send()
    };
    // Not sampled: the caller said so, or the ratio (0) decides.
    let unsampled = "5bf92f3577b34da6a3ce929d0e0e4736";
    let r = ask(Some(format!("00-{unsampled}-{PARENT}-00")), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The upstream still gets the caller's trace context.
    assert!(
        r.headers().get("x-mock-seen-traceparent").is_none()
            || r.headers()["x-mock-seen-traceparent"]
                .to_str()
                .unwrap()
                .contains(unsampled)
    );
    assert_eq!(ask(None, false).await.unwrap().status(), 200);

    // Sampled by the caller: the request's span continues its trace.
    let r = ask(Some(format!("00-{TRACE}-{PARENT}-01")), false)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = r.headers()["x-mock-seen-traceparent"]
        .to_str()
        .unwrap()
        .to_string();
    let _ = r.text().await.unwrap();
    let trace = hex::decode(TRACE).unwrap();
    eventually("the spans are exported", async || {
        spans_of(&spans, &trace).len() >= 4
    })
    .await;
    let got = spans_of(&spans, &trace);
    let root = got.iter().find(|s| s.kind == 2).expect("a server span");
    assert_eq!(root.parent_span_id, hex::decode(PARENT).unwrap());
    assert_eq!(root.name, "POST /v1/chat/completions");
    assert_eq!(
        attr(root, "http.response.status_code"),
        Some(&V::IntValue(200))
    );
    assert_eq!(
        attr(root, "gen_ai.request.model"),
        Some(&V::StringValue("traced".into()))
    );
    assert_eq!(
        attr(root, "gen_ai.operation.name"),
        Some(&V::StringValue("chat".into()))
    );
    assert_eq!(
        attr(root, "gen_ai.provider.name"),
        Some(&V::StringValue("openai".into()))
    );
    assert_eq!(
        attr(root, "gen_ai.usage.output_tokens"),
        Some(&V::IntValue(16))
    );
    assert!(matches!(attr(root, "gen_ai.usage.input_tokens"), Some(V::IntValue(n)) if *n > 0));
    match attr(root, "gen_ai.response.finish_reasons") {
        Some(V::ArrayValue(a)) => {
            assert_eq!(a.values[0].value, Some(V::StringValue("stop".into())))
        }
        other => panic!("finish reasons: {other:?}"),
    }
    let admission = got.iter().find(|s| s.name == "sluice.admission").unwrap();
    let upstream = got.iter().find(|s| s.name == "sluice.upstream").unwrap();
    for child in [admission, upstream] {
        assert_eq!(child.parent_span_id, root.span_id);
        assert!(child.start_time_unix_nano >= root.start_time_unix_nano);
        assert!(child.end_time_unix_nano <= root.end_time_unix_nano);
    }
    assert_eq!(upstream.kind, 3);
    // The limit rules' span sits inside admission.
    let limits = got
        .iter()
        .find(|s| s.name == "sluice.limits")
        .expect("a limits span");
    assert_eq!(limits.parent_span_id, admission.span_id);
    assert!(limits.start_time_unix_nano >= admission.start_time_unix_nano);
    assert!(limits.end_time_unix_nano <= admission.end_time_unix_nano);
    assert_eq!(
        attr(upstream, "http.response.status_code"),
        Some(&V::IntValue(200))
    );
    // The upstream got the attempt's span as its parent.
    assert_eq!(
        seen,
        format!("00-{TRACE}-{}-01", hex::encode(&upstream.span_id))
    );
    // Nothing of the unsampled requests was exported.
    assert!(spans_of(&spans, &hex::decode(unsampled).unwrap()).is_empty());
    assert_eq!(spans.lock().unwrap().len(), got.len());

    // A stream: a span from its first token to its end.
    let streamed = "6bf92f3577b34da6a3ce929d0e0e4736";
    let r = ask(Some(format!("00-{streamed}-{PARENT}-01")), true)
        .await
        .unwrap();
    let _ = r.text().await.unwrap();
    let streamed = hex::decode(streamed).unwrap();
    eventually("the stream's spans are exported", async || {
        spans_of(&spans, &streamed).iter().any(|s| s.kind == 2)
    })
    .await;
    let got = spans_of(&spans, &streamed);
    let root = got.iter().find(|s| s.kind == 2).unwrap();
    let stream = got
        .iter()
        .find(|s| s.name == "sluice.stream")
        .expect("a stream span");
    assert_eq!(stream.parent_span_id, root.span_id);
    assert!(
        matches!(attr(root, "gen_ai.server.time_to_first_token"), Some(V::DoubleValue(t)) if *t > 0.0)
    );
    assert_eq!(
        attr(root, "gen_ai.request.stream"),
        Some(&V::BoolValue(true))
    );
    // The subrequest's attempt belongs to the same trace.
    assert!(got
        .iter()
        .any(|s| s.name == "sluice.upstream" && s.parent_span_id == root.span_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_collector_drops_spans_and_never_slows_requests() {
    let m = mock("a").await;
    // Accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hang.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (tcp, _) = hang.accept().await.unwrap();
            held.push(tcp);
        }
    });
    let yaml = traced_config(
        m.addr.port(),
        &format!("http://127.0.0.1:{port}/v1/traces"),
        ", sample_ratio: 1.0, queue_size: 4, batch_size: 2, timeout_ms: 30000",
    )
    .replacen("sample_ratio: 0.0, ", "", 1)
        + "metrics: {token: trace-metrics}\n";
    let gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let r = post(&c, gw.url("/v1/chat/completions"))
            .json(&json!({"model": "traced", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut last = String::new();
    let counted = poll_until(Duration::from_secs(10), async || {
        let text = gw.metrics(&c, "trace-metrics").await;
        last = text
            .lines()
            .filter(|l| l.contains("trace"))
            .collect::<Vec<_>>()
            .join("\n");
        text.lines()
            .find(|l| l.starts_with("sluice_trace_spans_total{outcome=\"dropped\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
    })
    .await;
    assert!(counted, "no dropped spans counted:\n{last}");
}
