//! Non-streaming response bodies and error bodies: Anthropic Messages ⇄
//! OpenAI Chat Completions.
//!
//! Bodies carry no clock: a translated OpenAI completion has
//! `"created": 0` for the caller to overwrite. Ids are kept as they are
//! (`msg_…` stays `msg_…`, `chatcmpl-…` stays `chatcmpl-…`).

use serde_json::{json, Value};

use super::{
    as_object, finish_reason_for, parse_arguments, stop_reason_for, AnthropicUsage, TranslateError,
};

type R<T> = Result<T, TranslateError>;

/// Anthropic message → OpenAI `chat.completion`.
///
/// Text blocks are joined into `message.content` (`null` when there is no
/// text but there are tool calls), `thinking` blocks into
/// `message.reasoning_content`, `tool_use` blocks become `tool_calls` with
/// the input serialized as `arguments`; other blocks (redacted thinking,
/// server tool results, citations) are dropped. `stop_reason` →
/// `finish_reason` ([`finish_reason_for`]); usage → `prompt_tokens` (the
/// sum of input, cache reads and cache writes), `completion_tokens`,
/// `total_tokens`, `prompt_tokens_details.cached_tokens` (cache reads).
/// `model` names the model in the result (empty: the body's).
pub fn anthropic_response_to_openai(body: &Value, model: &str) -> R<Value> {
    let obj = as_object(body)?;
    let blocks = match obj.get("content") {
        Some(Value::Array(b)) => b,
        None | Some(Value::Null) => {
            return Err(TranslateError::Missing {
                path: "content".into(),
            })
        }
        Some(_) => return Err(TranslateError::invalid("content", "an array")),
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    for (i, b) in blocks.iter().enumerate() {
        let s = |k: &str| b.get(k).and_then(Value::as_str);
        match s("type") {
            Some("text") => text.push_str(s("text").unwrap_or("")),
            Some("thinking") => reasoning.push_str(s("thinking").unwrap_or("")),
            Some("tool_use") => {
                let missing = |k: &str| TranslateError::Missing {
                    path: format!("content[{i}].{k}"),
                };
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": s("id").ok_or_else(|| missing("id"))?,
                    "type": "function",
                    "function": {
                        "name": s("name").ok_or_else(|| missing("name"))?,
                        "arguments": input.to_string(),
                    },
                }));
            }
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant"});
    message["content"] = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let finish = obj
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(finish_reason_for);
    let mut usage = AnthropicUsage::default();
    if let Some(u) = obj.get("usage") {
        usage.update(u);
    }
    Ok(json!({
        "id": obj.get("id").and_then(Value::as_str).unwrap_or(""),
        "object": "chat.completion",
        "created": 0,
        "model": pick_model(model, obj.get("model")),
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish,
        }],
        "usage": usage.to_openai(),
    }))
}

/// OpenAI `chat.completion` → Anthropic message.
///
/// Only `choices[0]` is used. Its `reasoning_content` (or `reasoning`)
/// becomes a `thinking` block with an empty `signature`, `content` (string
/// or text parts) and `refusal` text blocks, `tool_calls` `tool_use` blocks
/// with the arguments parsed (invalid JSON is an error naming the field).
/// `finish_reason` → `stop_reason` ([`stop_reason_for`]), `stop_sequence`
/// is always null; usage → `input_tokens` (prompt minus cached),
/// `cache_read_input_tokens` (cached), `cache_creation_input_tokens` 0,
/// `output_tokens`.
pub fn openai_response_to_anthropic(body: &Value, model: &str) -> R<Value> {
    let obj = as_object(body)?;
    let choice =
        obj.get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| TranslateError::Missing {
                path: "choices[0]".into(),
            })?;
    let msg = choice
        .get("message")
        .filter(|m| m.is_object())
        .ok_or_else(|| TranslateError::Missing {
            path: "choices[0].message".into(),
        })?;
    let mp = "choices[0].message";
    let s = |k: &str| msg.get(k).and_then(Value::as_str).filter(|t| !t.is_empty());
    let mut content = Vec::new();
    if let Some(r) = s("reasoning_content").or_else(|| s("reasoning")) {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    match msg.get("content") {
        Some(Value::String(t)) if !t.is_empty() => content.push(json!({"type": "text", "text": t})),
        Some(Value::Array(parts)) => {
            for part in parts {
                if let Some(t) = part.get("text").and_then(Value::as_str) {
                    content.push(json!({"type": "text", "text": t}));
                }
            }
        }
        _ => {}
    }
    if let Some(r) = s("refusal") {
        content.push(json!({"type": "text", "text": r}));
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for (j, call) in calls.iter().enumerate() {
            let fp = format!("{mp}.tool_calls[{j}].function");
            let f = call.get("function");
            let fs = |k: &str| f.and_then(|f| f.get(k)).and_then(Value::as_str);
            let name = fs("name").ok_or_else(|| TranslateError::Missing {
                path: format!("{fp}.name"),
            })?;
            let input = parse_arguments(fs("arguments").unwrap_or(""), format!("{fp}.arguments"))?;
            let id = call.get("id").and_then(Value::as_str).unwrap_or("");
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
    }
    let stop = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(stop_reason_for);
    let usage = obj
        .get("usage")
        .map(AnthropicUsage::from_openai)
        .unwrap_or_default();
    Ok(json!({
        "id": obj.get("id").and_then(Value::as_str).unwrap_or(""),
        "type": "message",
        "role": "assistant",
        "model": pick_model(model, obj.get("model")),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": usage.to_anthropic(),
    }))
}

/// The model to report: the caller's, else the body's.
fn pick_model(model: &str, body_model: Option<&Value>) -> Value {
    if model.is_empty() {
        body_model.cloned().unwrap_or_else(|| json!(""))
    } else {
        json!(model)
    }
}

/// Anthropic error `type` ⇄ OpenAI error `type` and `code`.
const ERROR_KINDS: [(&str, &str, Option<&str>); 10] = [
    ("invalid_request_error", "invalid_request_error", None),
    (
        "authentication_error",
        "invalid_request_error",
        Some("invalid_api_key"),
    ),
    (
        "permission_error",
        "invalid_request_error",
        Some("permission_denied"),
    ),
    (
        "not_found_error",
        "invalid_request_error",
        Some("not_found"),
    ),
    (
        "request_too_large",
        "invalid_request_error",
        Some("request_too_large"),
    ),
    ("rate_limit_error", "requests", Some("rate_limit_exceeded")),
    (
        "billing_error",
        "insufficient_quota",
        Some("insufficient_quota"),
    ),
    ("api_error", "server_error", None),
    ("overloaded_error", "server_error", Some("overloaded")),
    ("timeout_error", "server_error", Some("timeout")),
];

/// The message of an error body: `error.message`, a string `error`, a
/// top-level `message`, else the body itself as text.
fn error_message(body: &Value) -> String {
    let err = body.get("error");
    err.and_then(|e| e.get("message"))
        .or(err.filter(|e| e.is_string()))
        .or_else(|| body.get("message"))
        .and_then(Value::as_str)
        .map_or_else(
            || match body {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            str::to_owned,
        )
}

/// Anthropic error body (`{"type":"error","error":{"type","message"}}`) →
/// OpenAI error body (`{"error":{"message","type","param","code"}}`).
///
/// Types map through a fixed table (`rate_limit_error` → type `requests`,
/// code `rate_limit_exceeded`; `authentication_error` → code
/// `invalid_api_key`; `overloaded_error` → `server_error`/`overloaded`;
/// …); an unknown type is kept as the OpenAI type with a null code. Any
/// other body becomes an error whose message is the body's text.
pub fn anthropic_error_to_openai(body: &Value) -> Value {
    let ty = body
        .get("error")
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let (oty, code) = ERROR_KINDS
        .iter()
        .find(|(a, _, _)| *a == ty)
        .map_or((ty, None), |(_, o, c)| (*o, *c));
    json!({"error": {"message": error_message(body), "type": oty, "param": null, "code": code}})
}

/// OpenAI error body → Anthropic error body: the inverse of
/// [`anthropic_error_to_openai`] (by `code` first, then `type`; a type that
/// already is an Anthropic error type is kept; otherwise `api_error`).
pub fn openai_error_to_anthropic(body: &Value) -> Value {
    let err = body.get("error");
    let get = |k: &str| err.and_then(|e| e.get(k)).and_then(Value::as_str);
    let (code, ty) = (get("code"), get("type"));
    let by_code = code.and_then(|c| match c {
        "model_not_found" => Some("not_found_error"),
        "context_length_exceeded" => Some("invalid_request_error"),
        _ => ERROR_KINDS
            .iter()
            .find(|(_, _, k)| *k == Some(c))
            .map(|(a, _, _)| *a),
    });
    let by_type = || {
        ty.and_then(|t| match t {
            "tokens" => Some("rate_limit_error"),
            _ => ERROR_KINDS
                .iter()
                .find(|(a, o, _)| *a == t || *o == t)
                .map(|(a, o, _)| if *a == t { *a } else { first_for(o) }),
        })
    };
    let aty = by_code.or_else(by_type).unwrap_or("api_error");
    json!({"type": "error", "error": {"type": aty, "message": error_message(body)}})
}

/// The first Anthropic type in [`ERROR_KINDS`] with OpenAI type `o` (the one
/// with a null code).
fn first_for(o: &str) -> &'static str {
    ERROR_KINDS
        .iter()
        .find(|(_, k, _)| *k == o)
        .map_or("api_error", |(a, _, _)| a)
}

#[cfg(test)]
#[path = "response_tests.rs"]
mod tests;
