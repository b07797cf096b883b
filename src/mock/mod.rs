//! `sluice mock`: a mock LLM upstream speaking OpenAI's wire format, for
//! `make run`, the integration tests and the load tests.
//!
//! - `POST /v1/chat/completions`: JSON, or SSE with `stream: true`
//!   (role chunk, one chunk per token, finish chunk, a usage chunk when
//!   `stream_options.include_usage` is set, `data: [DONE]`); deterministic text.
//! - `POST /v1/embeddings`, `GET /v1/models`, `GET /health`.
//! - Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions`
//!   and `/embeddings` with a required `api-version` query (Azure's error
//!   body otherwise); answers carry `azureml-model-deployment` and
//!   `x-ms-region` as Azure does, and `x-mock-seen-deployment`,
//!   `x-mock-seen-api-version` and `x-mock-seen-api-key`.
//! - Anthropic: `POST /v1/messages` (see `anthropic.rs`), answers carry
//!   `x-mock-seen-api-key` (the `x-api-key` it got).
//! - `ANY /echo/...`: answers with what it received (method, path, query,
//!   headers, body length and FNV-1a hash), for header hygiene and body tests.
//! - `POST /mock/health` `{"status":503}`: sets what `/health` answers.
//! - `POST /mock/fail` `{"status":503}`: every model call is answered with
//!   that status in the provider's error format from now on; `{"status":0}`
//!   (or `{}`) ends it.
//!
//! Per-request behaviour can be overridden with request headers:
//! `x-mock-latency-ms` (delay before the response header),
//! `x-mock-tokens`, `x-mock-chunk-ms` (gap between SSE chunks) and
//! `x-mock-status` (answer with this status and an OpenAI error body),
//! `x-mock-reply` (the answer's text, its stream's pieces split at `|`),
//! `x-mock-ignore-max-tokens: 1` (overrun the request's `max_tokens`) and
//! `x-mock-no-usage: 1` (no usage chunk even when asked),
//! `x-mock-retry-after: N` (with `x-mock-status`: a `Retry-After` header),
//! `x-mock-stall-after: N` (an SSE answer stops after N events without
//! ending), and `x-mock-only: ID` (the failure knobs above and the latency
//! apply only on the instance named ID, so one request can fail on one
//! deployment and succeed on the next). Chat answers
//! carry `x-mock-seen-traceparent` (when the request had one),
//! `x-mock-seen-max-tokens` / `x-mock-seen-include-usage` (what the
//! mock received).
//! Every response carries `x-mock-id` naming the instance.

mod anthropic;
mod openai;

pub use openai::token as openai_token;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The response body type of the mock.
pub type Body = BoxBody<Bytes, Infallible>;

/// Default behaviour of a mock instance.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Delay before the response header.
    pub latency_ms: u64,
    /// Completion tokens per answer.
    pub tokens: usize,
    /// Gap between SSE chunks.
    pub chunk_ms: u64,
    /// Name sent in `x-mock-id`.
    pub id: String,
    /// Every `fail_every`-th model call (1 = all) is answered with
    /// `fail_status` in the provider's error format; 0 = never.
    pub fail_every: u64,
    pub fail_status: u16,
    /// Model calls beyond this many per second are answered 429 with
    /// `retry-after: 1` in the provider's error format; 0 = no limit.
    pub rate_limit_rps: u64,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            latency_ms: 0,
            tokens: 16,
            chunk_ms: 0,
            id: "mock".into(),
            fail_every: 0,
            fail_status: 503,
            rate_limit_rps: 0,
        }
    }
}

/// Live state of a mock instance.
pub struct MockState {
    pub options: MockOptions,
    /// What `GET /health` answers.
    pub health_status: AtomicU16,
    /// `POST /mock/fail`: the status every model call gets (0 = none).
    pub fail_now: AtomicU16,
    /// Requests served (all paths but `/health`).
    pub requests: AtomicU64,
    /// SSE responses whose last event has been produced.
    pub streams_completed: AtomicU64,
    /// SSE responses dropped before their last event (reader went away).
    pub streams_aborted: AtomicU64,
    /// Model calls seen (`fail_every`).
    calls: AtomicU64,
    /// The current second and the model calls in it (`rate_limit_rps`).
    rate_window: std::sync::Mutex<(u64, u64)>,
}

impl MockState {
    /// The status the options force on this model call, if any, and
    /// whether it is a rate limit (answered with `retry-after`).
    fn forced(&self) -> Option<(u16, bool)> {
        let o = &self.options;
        let n = self.calls.fetch_add(1, Relaxed) + 1;
        let now = self.fail_now.load(Relaxed);
        if now != 0 {
            return Some((now, now == 429));
        }
        if o.fail_every > 0 && n % o.fail_every == 0 {
            return Some((o.fail_status, false));
        }
        if o.rate_limit_rps > 0 {
            let now = crate::clock::unix_secs();
            let mut w = match self.rate_window.lock() {
                Ok(w) => w,
                Err(poisoned) => poisoned.into_inner(),
            };
            if w.0 != now {
                *w = (now, 0);
            }
            w.1 += 1;
            if w.1 > o.rate_limit_rps {
                return Some((429, true));
            }
        }
        None
    }

    fn new(options: MockOptions) -> Arc<Self> {
        Arc::new(MockState {
            options,
            health_status: AtomicU16::new(200),
            fail_now: AtomicU16::new(0),
            requests: AtomicU64::new(0),
            streams_completed: AtomicU64::new(0),
            streams_aborted: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            rate_window: std::sync::Mutex::new((0, 0)),
        })
    }
}

/// A running mock (in-process use by tests).
pub struct MockServer {
    pub addr: SocketAddr,
    pub state: Arc<MockState>,
}

impl MockServer {
    /// Binds `addr` (port 0 = any) and serves in the background.
    pub async fn start(addr: &str, options: MockOptions) -> std::io::Result<MockServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = MockState::new(options);
        tokio::spawn(serve(listener, state.clone()));
        Ok(MockServer { addr, state })
    }
}

/// Accepts connections forever.
pub async fn serve(listener: TcpListener, state: Arc<MockState>) {
    // Build the BPE tables before the first answer: done lazily, the first
    // chat answer would be late by their build time (~0.5 s) and trip
    // first-byte timeouts in tests.
    let _ = tokio::task::spawn_blocking(openai::warm_tokenizers).await;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("mock: accept failed: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn header_num(req: &Request<Incoming>, name: &str) -> Option<u64> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Builds a complete response.
pub fn full(status: u16, content_type: &str, body: impl Into<Bytes>, id: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    let h = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        h.insert("content-type", v);
    }
    if let Ok(v) = id.parse() {
        h.insert("x-mock-id", v);
    }
    resp
}

/// Every answer carries `x-mock-seen-traceparent`, the W3C trace context
/// the request came with (tests of the gateway's traces).
async fn handle(
    req: Request<Incoming>,
    state: Arc<MockState>,
) -> Result<Response<Body>, Infallible> {
    let traceparent = req.headers().get("traceparent").cloned();
    let mut resp = handle_inner(req, state).await?;
    if let Some(v) = traceparent {
        resp.headers_mut().insert("x-mock-seen-traceparent", v);
    }
    Ok(resp)
}

async fn handle_inner(
    req: Request<Incoming>,
    state: Arc<MockState>,
) -> Result<Response<Body>, Infallible> {
    let id = state.options.id.clone();
    let path = req.uri().path().to_string();
    if path == "/health" {
        let status = state.health_status.load(Relaxed);
        return Ok(full(
            status,
            "application/json",
            json!({"status": status}).to_string(),
            &id,
        ));
    }
    state.requests.fetch_add(1, Relaxed);
    let targeted = req
        .headers()
        .get("x-mock-only")
        .is_none_or(|v| v.as_bytes() == id.as_bytes());
    let knob = |name: &str| header_num(&req, name).filter(|_| targeted);
    let latency = knob("x-mock-latency-ms").unwrap_or(state.options.latency_ms);
    let model_call = path == "/v1/chat/completions"
        || path == "/v1/embeddings"
        || path == "/v1/messages"
        || path.starts_with("/openai/deployments/");
    let by_options = if model_call { state.forced() } else { None };
    let forced_status = knob("x-mock-status").or(by_options.map(|(s, _)| u64::from(s)));
    let retry_after = knob("x-mock-retry-after").or(by_options.filter(|f| f.1).map(|_| 1));
    let seen_key = req
        .headers()
        .get("x-api-key")
        .or_else(|| req.headers().get("api-key"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let anthropic_version = req
        .headers()
        .get("anthropic-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let behaviour = openai::Behaviour {
        tokens: header_num(&req, "x-mock-tokens")
            .map(|n| n as usize)
            .unwrap_or(state.options.tokens),
        chunk_ms: header_num(&req, "x-mock-chunk-ms").unwrap_or(state.options.chunk_ms),
        ignore_max_tokens: header_num(&req, "x-mock-ignore-max-tokens") == Some(1),
        no_usage: header_num(&req, "x-mock-no-usage") == Some(1),
        stall_after: knob("x-mock-stall-after").map(|n| n as usize),
        reply: req
            .headers()
            .get("x-mock-reply")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split('|').map(str::to_string).collect()),
        id: id.clone(),
        state: state.clone(),
    };
    let method = req.method().clone();
    let query = req.uri().query().map(str::to_string);
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
        .collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some(status) = forced_status {
        let status = status as u16;
        let message = format!("mock failure {status}");
        let mut resp = if path == "/v1/messages" {
            anthropic::error(status, &message, &id)
        } else if path.starts_with("/openai/") {
            let body = json!({"error": {"code": status.to_string(), "message": message}});
            full(status, "application/json", body.to_string(), &id)
        } else {
            let body = json!({"error": {"message": message,
                "type": "server_error", "param": null, "code": null}});
            full(status, "application/json", body.to_string(), &id)
        };
        if let Some(secs) = retry_after {
            resp.headers_mut().insert("retry-after", secs.into());
        }
        return Ok(resp);
    }
    if let Some(rest) = path.strip_prefix("/openai/deployments/") {
        return Ok(azure(rest, query.as_deref(), &seen_key, &body, &behaviour));
    }
    if method == "POST" && path == "/v1/messages" {
        let mut resp = anthropic::messages(&body, anthropic_version.as_deref(), &behaviour);
        if let Ok(v) = seen_key.parse() {
            resp.headers_mut().insert("x-mock-seen-api-key", v);
        }
        return Ok(resp);
    }
    let resp = match (method.as_str(), path.as_str()) {
        ("POST", "/mock/fail") => {
            let status = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["status"].as_u64())
                .filter(|s| (400..600).contains(s))
                .unwrap_or(0) as u16;
            state.fail_now.store(status, Relaxed);
            full(200, "application/json", json!({"failing_with": status}).to_string(), &id)
        }
        ("POST", "/mock/health") => {
            let status = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["status"].as_u64())
                .unwrap_or(200) as u16;
            state.health_status.store(status, Relaxed);
            full(200, "application/json", json!({"status": status}).to_string(), &id)
        }
        ("POST", "/v1/chat/completions") => openai::chat(&body, &behaviour),
        ("POST", "/v1/embeddings") => openai::embeddings(&body, &id),
        ("GET", "/v1/models") => openai::models(&id),
        (_, p) if p == "/echo" || p.starts_with("/echo/") => {
            let echo = json!({
                "method": method.as_str(),
                "path": path,
                "query": query,
                "headers": headers,
                "body_len": body.len(),
                "body_fnv": format!("{:016x}", fnv1a(&body)),
            });
            full(200, "application/json", echo.to_string(), &id)
        }
        _ => full(
            404,
            "application/json",
            json!({"error": {"message": format!("unknown path {path}"), "type": "invalid_request_error",
                "param": null, "code": "unknown_url"}})
            .to_string(),
            &id,
        ),
    };
    Ok(resp)
}

/// Azure OpenAI: `{deployment}/chat/completions|embeddings?api-version=…`.
fn azure(
    rest: &str,
    query: Option<&str>,
    key: &str,
    body: &[u8],
    b: &openai::Behaviour,
) -> Response<Body> {
    let version = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("api-version="));
    let not_found = |message: &str| {
        let body = json!({"error": {"code": "404", "message": message}});
        full(404, "application/json", body.to_string(), &b.id)
    };
    let Some(version) = version else {
        return not_found("Resource not found (api-version missing)");
    };
    let (deployment, what) = rest.split_once('/').unwrap_or((rest, ""));
    let mut resp = match what {
        "chat/completions" => openai::chat(body, b),
        "embeddings" => openai::embeddings(body, &b.id),
        _ => return not_found("Resource not found"),
    };
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-mock-seen-deployment", deployment),
        ("x-mock-seen-api-version", version),
        ("x-mock-seen-api-key", key),
        // What Azure itself says about its side.
        ("azureml-model-deployment", deployment),
        ("x-ms-region", "mock-region"),
    ] {
        if let Ok(v) = value.parse() {
            h.insert(name, v);
        }
    }
    resp
}

/// FNV-1a 64-bit hash (body fingerprints in `/echo`).
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Runs the mock in the foreground (the `sluice mock` command).
pub async fn run(listen: &str, options: MockOptions) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    eprintln!("sluice mock listening on {}", listener.local_addr()?);
    serve(listener, MockState::new(options)).await;
    Ok(())
}
