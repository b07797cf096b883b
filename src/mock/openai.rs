//! OpenAI's wire format for the mock: chat completions (JSON and SSE),
//! embeddings and models.

use super::{full, Body};
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::Response;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

/// Each ` word` is one token in cl100k_base and o200k_base, so the mock's
/// `n` content deltas are exactly `n` tokens (truncation tests rely on it).
const WORDS: &[&str] = &[
    "water", "keeps", "the", "stream", "flowing", "while", "it", "counts", "every", "token",
];

/// How one answer is produced.
pub struct Behaviour {
    pub tokens: usize,
    /// Generate `tokens` whatever the request's `max_tokens` says (a
    /// provider overrunning its limit, for truncation tests).
    pub ignore_max_tokens: bool,
    /// Never send usage in streams, even when asked.
    pub no_usage: bool,
    pub chunk_ms: u64,
    /// Stop sending (without ending the body) after this many SSE events.
    pub stall_after: Option<usize>,
    /// The answer's text in the pieces its stream sends (`x-mock-reply`,
    /// pieces split at `|`) instead of the deterministic words.
    pub reply: Option<Vec<String>>,
    pub id: String,
    pub state: std::sync::Arc<super::MockState>,
}

fn error(status: u16, message: &str, id: &str) -> Response<Body> {
    let body = json!({"error": {"message": message, "type": "invalid_request_error",
        "param": null, "code": null}});
    full(status, "application/json", body.to_string(), id)
}

/// Token `i` of the deterministic answer.
pub fn token(i: usize) -> String {
    format!(" {}", WORDS[i % WORDS.len()])
}

/// Prompt tokens as OpenAI bills them, with the model's real encoding.
/// Builds the encodings the mock counts with (see [`prompt_tokens`]).
pub fn warm_tokenizers() {
    for e in [
        sluice_filters::tokens::Encoding::O200kBase,
        sluice_filters::tokens::Encoding::Cl100kBase,
    ] {
        e.counter();
    }
}

fn prompt_tokens(req: &Value) -> u64 {
    static MAP: std::sync::OnceLock<sluice_filters::tokens::TokenizerMap> =
        std::sync::OnceLock::new();
    let model = req["model"].as_str().unwrap_or("");
    let encoding = MAP.get_or_init(Default::default).resolve(model).encoding;
    sluice_filters::tokens::count_prompt(encoding.counter(), req).tokens
}

fn now() -> u64 {
    crate::clock::unix_secs()
}

/// `POST /v1/chat/completions`.
pub fn chat(body: &[u8], b: &Behaviour) -> Response<Body> {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(400, "body is not valid JSON", &b.id);
    };
    let model = req["model"].as_str().unwrap_or("mock-model").to_string();
    // Providers differ in which of the two fields wins when both are
    // given; the mock honours the larger, so a gateway that clamped only
    // one of them is caught.
    let limit = req["max_tokens"]
        .as_u64()
        .max(req["max_completion_tokens"].as_u64())
        .filter(|_| !b.ignore_max_tokens);
    // `n` choices, each generated (and billed) in full, as OpenAI does.
    let n = req["n"].as_u64().unwrap_or(1).clamp(1, 128) as usize;
    let full_len = b.reply.as_ref().map_or(b.tokens, Vec::len);
    let tokens = limit.map_or(full_len, |m| full_len.min(m as usize));
    let piece = |i: usize| b.reply.as_ref().map_or_else(|| token(i), |r| r[i].clone());
    let seen = (
        limit.map_or_else(|| "none".to_string(), |m| m.to_string()),
        req["stream_options"]["include_usage"].as_bool() == Some(true),
    );
    let finish = if tokens < full_len { "length" } else { "stop" };
    let prompt = prompt_tokens(&req);
    if let Some(name) = tool_to_call(&req) {
        return tool_call(
            &model,
            &name,
            prompt,
            req["stream"].as_bool() == Some(true),
            seen,
            b,
        );
    }
    let completion = (tokens * n) as u64;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion});
    if req["stream"].as_bool() != Some(true) {
        let content: String = (0..tokens).map(piece).collect();
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                json!({"index": i, "message": {"role": "assistant", "content": content},
                "logprobs": null, "finish_reason": finish})
            })
            .collect();
        let resp = json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": now(), "model": model,
            "choices": choices, "usage": usage,
        });
        return seen_headers(
            full(200, "application/json", resp.to_string(), &b.id),
            &seen,
        );
    }
    let include_usage = seen.1 && !b.no_usage;
    let chunk = |index: usize, delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": now(),
            "model": model, "choices": [{"index": index, "delta": delta, "logprobs": null,
            "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut events: Vec<String> = (0..n)
        .map(|c| chunk(c, json!({"role": "assistant", "content": ""}), Value::Null))
        .collect();
    for i in 0..tokens {
        events.extend((0..n).map(|c| chunk(c, json!({"content": piece(i)}), Value::Null)));
    }
    events.extend((0..n).map(|c| chunk(c, json!({}), json!(finish))));
    if include_usage {
        let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": now(),
            "model": model, "choices": [], "usage": usage});
        events.push(format!("data: {c}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_string());
    seen_headers(sse_events(events, b), &seen)
}

/// The arguments every mock tool call carries.
pub const TOOL_ARGUMENTS: &str = r#"{"query":"water"}"#;

/// The tool the mock calls: the first one offered (OpenAI's
/// `tools[].function.name` or Anthropic's `tools[].name`), unless the
/// conversation already ends with a tool's result (then it answers text).
pub fn tool_to_call(req: &Value) -> Option<String> {
    let tool = req["tools"].as_array()?.first()?;
    let name = tool["function"]["name"]
        .as_str()
        .or(tool["name"].as_str())?;
    let last = req["messages"].as_array()?.last()?;
    let answered = last["role"] == "tool"
        || last["content"]
            .as_array()
            .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"));
    (!answered).then(|| name.to_string())
}

/// An OpenAI answer calling tool `name` with [`TOOL_ARGUMENTS`].
fn tool_call(
    model: &str,
    name: &str,
    prompt: u64,
    stream: bool,
    seen: (String, bool),
    b: &Behaviour,
) -> Response<Body> {
    let completion = 8u64;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion});
    let call_id = "call_mock_1";
    if !stream {
        let resp = json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": now(), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": call_id, "type": "function",
                    "function": {"name": name, "arguments": TOOL_ARGUMENTS}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": usage,
        });
        return seen_headers(
            full(200, "application/json", resp.to_string(), &b.id),
            &seen,
        );
    }
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": now(),
            "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": null,
            "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let (head, tail) = TOOL_ARGUMENTS.split_at(TOOL_ARGUMENTS.len() / 2);
    let mut events = vec![
        chunk(
            json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0,
            "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": head}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": tail}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
    ];
    if seen.1 && !b.no_usage {
        let c = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": now(),
            "model": model, "choices": [], "usage": usage});
        events.push(format!("data: {c}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_string());
    seen_headers(sse_events(events, b), &seen)
}

/// Tells the test what the mock received: `x-mock-seen-max-tokens` and
/// `x-mock-seen-include-usage`; and `openai-organization`, as OpenAI does.
fn seen_headers(mut resp: Response<Body>, seen: &(String, bool)) -> Response<Body> {
    let h = resp.headers_mut();
    if let Ok(v) = seen.0.parse() {
        h.insert("x-mock-seen-max-tokens", v);
    }
    h.insert(
        "x-mock-seen-include-usage",
        hyper::header::HeaderValue::from_static(if seen.1 { "true" } else { "false" }),
    );
    // What OpenAI itself says about its side.
    h.insert(
        "openai-organization",
        hyper::header::HeaderValue::from_static("mock-org"),
    );
    resp
}

/// Counts a stream as aborted when its body is dropped before the last
/// event was produced (the reader went away).
struct StreamGuard {
    state: std::sync::Arc<super::MockState>,
    completed: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if !self.completed {
            self.state
                .streams_aborted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Streams `events`, one per chunk, `chunk_ms` apart; counts the stream as
/// completed when its last event has been produced.
pub fn sse_events(events: Vec<String>, b: &Behaviour) -> Response<Body> {
    let gap_ms = b.chunk_ms;
    let mut events = events;
    let stall = b.stall_after.filter(|n| *n < events.len());
    if let Some(n) = stall {
        events.truncate(n);
    }
    let state = b.state.clone();
    let id = b.id.as_str();
    let guard = StreamGuard {
        state: state.clone(),
        completed: false,
    };
    let stream = futures_util::stream::unfold(
        (events.into_iter(), true, guard),
        move |(mut it, first, mut guard)| {
            let state = state.clone();
            async move {
                let Some(event) = it.next() else {
                    if stall.is_some() {
                        // Hold the response open without ending it.
                        futures_util::future::pending::<()>().await;
                    }
                    return None;
                };
                if it.len() == 0 && stall.is_none() {
                    guard.completed = true;
                    state
                        .streams_completed
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                if !first && gap_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(gap_ms)).await;
                }
                Some((
                    Ok::<_, Infallible>(Frame::data(Bytes::from(event))),
                    (it, false, guard),
                ))
            }
        },
    );
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        "cache-control",
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    if let Ok(v) = id.parse() {
        h.insert("x-mock-id", v);
    }
    resp
}

/// `POST /v1/embeddings`.
pub fn embeddings(body: &[u8], id: &str) -> Response<Body> {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(400, "body is not valid JSON", id);
    };
    let inputs: Vec<String> = match &req["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect(),
        _ => return error(400, "`input` must be a string or an array", id),
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let h = super::fnv1a(text.as_bytes());
            let v: Vec<f64> = (0..8)
                .map(|k| ((h >> (k * 8)) & 0xff) as f64 / 255.0)
                .collect();
            json!({"object": "embedding", "index": i, "embedding": v})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|s| s.split_whitespace().count()).sum();
    let resp = json!({"object": "list", "data": data,
        "model": req["model"].as_str().unwrap_or("mock-embedding"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    full(200, "application/json", resp.to_string(), id)
}

/// `GET /v1/models`.
pub fn models(id: &str) -> Response<Body> {
    let data: Vec<Value> = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        .iter()
        .map(|m| json!({"id": m, "object": "model", "created": 1700000000, "owned_by": "sluice-mock"}))
        .collect();
    full(
        200,
        "application/json",
        json!({"object": "list", "data": data}).to_string(),
        id,
    )
}
