//! Anthropic's Messages API for the mock: `POST /v1/messages`, JSON or SSE
//! with the full event sequence (`message_start`, `content_block_start`,
//! `ping`, one `content_block_delta` per token, `content_block_stop`,
//! `message_delta` with `stop_reason` and usage, `message_stop`), and
//! Anthropic's error bodies. Requires `anthropic-version` like the real API.

use super::openai::{sse_events, token, tool_to_call, Behaviour, TOOL_ARGUMENTS};
use super::{full, Body};
use hyper::Response;
use serde_json::{json, Value};

/// Anthropic's error body.
pub fn error(status: u16, message: &str, id: &str) -> Response<Body> {
    let kind = match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    };
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    full(status, "application/json", body.to_string(), id)
}

/// `POST /v1/messages`.
pub fn messages(body: &[u8], version: Option<&str>, b: &Behaviour) -> Response<Body> {
    if version.is_none() {
        return error(400, "anthropic-version: header is required", &b.id);
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return error(400, "body is not valid JSON", &b.id);
    };
    let Some(max) = req["max_tokens"].as_u64() else {
        return error(400, "max_tokens: Field required", &b.id);
    };
    if !req["messages"].is_array() {
        return error(400, "messages: Field required", &b.id);
    }
    let model = req["model"].as_str().unwrap_or("claude-mock").to_string();
    // One input token per 4 bytes of the request's messages and system.
    let input = (req["messages"].to_string().len() + req["system"].to_string().len()) as u64 / 4;
    if let Some(name) = tool_to_call(&req) {
        return tool_use(
            &model,
            &name,
            input,
            req["stream"].as_bool() == Some(true),
            b,
        );
    }
    let limit = if b.ignore_max_tokens {
        b.tokens
    } else {
        b.tokens.min(max as usize)
    };
    let stop = if limit < b.tokens {
        "max_tokens"
    } else {
        "end_turn"
    };
    // One input token per 4 bytes of the request's messages and system.
    let input = (req["messages"].to_string().len() + req["system"].to_string().len()) as u64 / 4;
    if req["stream"].as_bool() != Some(true) {
        let text: String = (0..limit).map(token).collect();
        let resp = json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": stop, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": limit,
                "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}});
        return full(200, "application/json", resp.to_string(), &b.id);
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_mock",
            "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    events.extend((0..limit).map(|i| {
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": token(i)}}),
        )
    }));
    events.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(ev(
        "message_delta",
        json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": limit}}),
    ));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    sse_events(events, b)
}

/// A `tool_use` answer calling `name` with [`TOOL_ARGUMENTS`] (JSON, or the
/// stream with `input_json_delta` parts).
fn tool_use(model: &str, name: &str, input: u64, stream: bool, b: &Behaviour) -> Response<Body> {
    let args: Value = serde_json::from_str(TOOL_ARGUMENTS).unwrap_or(Value::Null);
    if !stream {
        let resp = json!({"id": "msg_mock", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": args}],
            "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 8}});
        return full(200, "application/json", resp.to_string(), &b.id);
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let (head, tail) = TOOL_ARGUMENTS.split_at(TOOL_ARGUMENTS.len() / 2);
    let events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_mock",
            "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_mock_1", "name": name, "input": {}}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": head}}),
        ),
        ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": tail}}),
        ),
        ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        ev(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 8}}),
        ),
        ev("message_stop", json!({"type": "message_stop"})),
    ];
    sse_events(events, b)
}
