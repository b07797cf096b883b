//! Stored answers between their two shapes, for replay: a streamed chat
//! answer (OpenAI `chat.completion.chunk` events) becomes one
//! `chat.completion` object for a non-streaming client ([`stream_to_json`]),
//! a JSON answer becomes a stream ([`json_to_stream`]), and a stored
//! stream is fitted to what the new client asked about usage
//! ([`fit_usage`]). [`complete`] tells whether an answer is whole (only
//! whole answers are stored).

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The `data:` payloads of the SSE events in `body`, in order (comments,
/// `event:` and `id:` lines skipped; multi-line data joined with `\n`).
pub fn data_events(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(d) = data.take() {
                out.push(d);
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("data:") {
            let rest = rest.strip_prefix(' ').unwrap_or(rest);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(rest);
                }
                None => data = Some(rest.to_string()),
            }
        }
    }
    if let Some(d) = data {
        out.push(d);
    }
    out
}

/// Whether an answer is whole: a stream that reached `data: [DONE]` with
/// a finish reason on every choice it started, or a JSON object of a
/// chat completion (`choices`) or an embeddings list (`data`) without an
/// `error`.
pub fn complete(stream: bool, body: &[u8]) -> bool {
    if !stream {
        return serde_json::from_slice::<Value>(body).is_ok_and(|v| {
            v.get("error").is_none() && (v.get("choices").is_some() || v.get("data").is_some())
        });
    }
    let events = data_events(body);
    if events.last().map(String::as_str) != Some("[DONE]") {
        return false;
    }
    let mut started = Vec::new();
    let mut finished = Vec::new();
    for e in &events[..events.len() - 1] {
        let Ok(v) = serde_json::from_str::<Value>(e) else {
            return false;
        };
        if v.get("error").is_some() {
            return false;
        }
        for c in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let i = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            if !started.contains(&i) {
                started.push(i);
            }
            if c.get("finish_reason").is_some_and(|f| !f.is_null()) && !finished.contains(&i) {
                finished.push(i);
            }
        }
    }
    !started.is_empty() && started.iter().all(|i| finished.contains(i))
}

/// Whether any choice of an answer stopped at its output limit
/// (`finish_reason: "length"`).
pub fn stopped_at_limit(stream: bool, body: &[u8]) -> bool {
    let length = |v: &Value| {
        v.get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c.get("finish_reason").and_then(Value::as_str) == Some("length"))
    };
    if !stream {
        return serde_json::from_slice::<Value>(body).is_ok_and(|v| length(&v));
    }
    data_events(body)
        .iter()
        .any(|e| serde_json::from_str::<Value>(e).is_ok_and(|v| length(&v)))
}

/// The members naming an answer (`id`, `created`, `model`, …) that a
/// completion and its chunks share.
fn identity(v: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for f in [
        "id",
        "created",
        "model",
        "system_fingerprint",
        "service_tier",
    ] {
        if let Some(x) = v.get(f).filter(|x| !x.is_null()) {
            out.insert(f.to_string(), x.clone());
        }
    }
    out
}

/// One choice being assembled from deltas.
#[derive(Default)]
struct Choice {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<Map<String, Value>>,
    finish_reason: Value,
    logprobs: Option<Value>,
}

/// A stored stream as one `chat.completion` object (the answer a
/// non-streaming client gets): content and refusals concatenated, tool
/// calls assembled by index (arguments concatenated), the finish reason
/// and the usage of the stream. None when `body` holds no chunk.
pub fn stream_to_json(body: &[u8]) -> Option<Vec<u8>> {
    let mut head: Option<Map<String, Value>> = None;
    let mut choices: Vec<(u64, Choice)> = Vec::new();
    let mut usage = Value::Null;
    for e in data_events(body) {
        let Ok(Value::Object(v)) = serde_json::from_str::<Value>(&e) else {
            continue;
        };
        if head.is_none() {
            head = Some(identity(&v));
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            usage = u.clone();
        }
        for c in v
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            let pos = match choices.iter().position(|(i, _)| *i == index) {
                Some(p) => p,
                None => {
                    choices.push((index, Choice::default()));
                    choices.len() - 1
                }
            };
            let choice = &mut choices[pos].1;
            if let Some(f) = c.get("finish_reason").filter(|f| !f.is_null()) {
                choice.finish_reason = f.clone();
            }
            if let Some(l) = c.get("logprobs").filter(|l| !l.is_null()) {
                choice.logprobs = Some(l.clone());
            }
            let Some(delta) = c.get("delta") else {
                continue;
            };
            if let Some(r) = delta.get("role").filter(|r| !r.is_null()) {
                choice.role = Some(r.clone());
            }
            if let Some(t) = delta.get("content").and_then(Value::as_str) {
                choice.content.get_or_insert_with(String::new).push_str(t);
            }
            if let Some(t) = delta.get("refusal").and_then(Value::as_str) {
                choice.refusal.get_or_insert_with(String::new).push_str(t);
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                merge_tool_call(&mut choice.tool_calls, call);
            }
        }
    }
    let mut out = head?;
    out.insert("object".into(), json!("chat.completion"));
    choices.sort_by_key(|(i, _)| *i);
    let choices: Vec<Value> = choices
        .into_iter()
        .map(|(index, c)| {
            let mut message = Map::new();
            message.insert("role".into(), c.role.unwrap_or_else(|| json!("assistant")));
            message.insert("content".into(), c.content.map_or(Value::Null, Value::from));
            if let Some(r) = c.refusal {
                message.insert("refusal".into(), json!(r));
            }
            if !c.tool_calls.is_empty() {
                let calls = c
                    .tool_calls
                    .into_iter()
                    .map(|mut call| {
                        call.remove("index");
                        Value::Object(call)
                    })
                    .collect();
                message.insert("tool_calls".into(), Value::Array(calls));
            }
            json!({
                "index": index,
                "message": message,
                "logprobs": c.logprobs.unwrap_or(Value::Null),
                "finish_reason": c.finish_reason,
            })
        })
        .collect();
    out.insert("choices".into(), Value::Array(choices));
    if !usage.is_null() {
        out.insert("usage".into(), usage);
    }
    serde_json::to_vec(&Value::Object(out)).ok()
}

/// Adds one streamed tool-call delta to the calls assembled so far.
fn merge_tool_call(calls: &mut Vec<Map<String, Value>>, delta: &Value) {
    let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0);
    let pos = calls
        .iter()
        .position(|c| c.get("index").and_then(Value::as_u64) == Some(index));
    let call = match pos {
        Some(p) => &mut calls[p],
        None => {
            let mut c = Map::new();
            c.insert("index".into(), json!(index));
            c.insert("function".into(), json!({"name": "", "arguments": ""}));
            calls.push(c);
            let last = calls.len() - 1;
            &mut calls[last]
        }
    };
    for f in ["id", "type"] {
        if let Some(v) = delta.get(f).filter(|v| !v.is_null()) {
            call.insert(f.to_string(), v.clone());
        }
    }
    if let Some(func) = delta.get("function") {
        for f in ["name", "arguments"] {
            if let Some(t) = func.get(f).and_then(Value::as_str) {
                if let Some(Value::String(s)) = call.get_mut("function").and_then(|x| x.get_mut(f))
                {
                    s.push_str(t);
                }
            }
        }
    }
}

fn event(v: &Value) -> Vec<u8> {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
    out
}

/// A `chat.completion` object as the events of a stream (one chunk per
/// event): per choice its role, its content, each tool call, its finish
/// reason; then the usage (when the object has one) and `[DONE]`. None
/// when `body` is not a chat completion.
pub fn json_to_stream(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let choices = v.get("choices")?.as_array()?;
    let mut base = v.as_object().map(identity).unwrap_or_default();
    base.insert("object".into(), json!("chat.completion.chunk"));
    let chunk = |choice: Value| {
        let mut c = base.clone();
        c.insert("choices".into(), json!([choice]));
        event(&Value::Object(c))
    };
    let mut out = Vec::new();
    for (pos, c) in choices.iter().enumerate() {
        let index = c.get("index").cloned().unwrap_or_else(|| json!(pos));
        let message = c.get("message").cloned().unwrap_or_else(|| json!({}));
        let role = message.get("role").cloned().unwrap_or(json!("assistant"));
        out.push(chunk(json!({
            "index": index, "delta": {"role": role, "content": ""},
            "logprobs": null, "finish_reason": null
        })));
        if let Some(t) = message.get("content").and_then(Value::as_str) {
            if !t.is_empty() {
                out.push(chunk(json!({
                    "index": index, "delta": {"content": t},
                    "logprobs": null, "finish_reason": null
                })));
            }
        }
        if let Some(t) = message.get("refusal").and_then(Value::as_str) {
            out.push(chunk(json!({
                "index": index, "delta": {"refusal": t},
                "logprobs": null, "finish_reason": null
            })));
        }
        for (i, call) in message
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut call = call.clone();
            if let Value::Object(m) = &mut call {
                m.insert("index".into(), json!(i));
            }
            out.push(chunk(json!({
                "index": index, "delta": {"tool_calls": [call]},
                "logprobs": null, "finish_reason": null
            })));
        }
        out.push(chunk(json!({
            "index": index, "delta": {},
            "logprobs": c.get("logprobs").cloned().unwrap_or(Value::Null),
            "finish_reason": c.get("finish_reason").cloned().unwrap_or(json!("stop"))
        })));
    }
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        let mut c = base.clone();
        c.insert("choices".into(), json!([]));
        c.insert("usage".into(), u.clone());
        out.push(event(&Value::Object(c)));
    }
    out.push(b"data: [DONE]\n\n".to_vec());
    Some(out)
}

/// Whether an SSE chunk is only a usage event (no choices).
pub fn usage_only(chunk: &[u8]) -> bool {
    let events = data_events(chunk);
    !events.is_empty()
        && events.iter().all(|e| {
            serde_json::from_str::<Value>(e).is_ok_and(|v| {
                v.get("usage").is_some_and(|u| !u.is_null())
                    && v.get("choices")
                        .and_then(Value::as_array)
                        .is_none_or(|c| c.is_empty())
            })
        })
}

/// A stored stream's chunks fitted to a client's request: its usage-only
/// chunk dropped when the client did not ask for usage
/// (`stream_options.include_usage`), or one added before `[DONE]` from
/// `usage` (prompt, completion) when it asked and the stream has none.
/// Every other chunk is kept as it was.
pub fn fit_usage(chunks: &[Bytes], wants_usage: bool, usage: Option<(u64, u64)>) -> Vec<Bytes> {
    let has = chunks.iter().any(|c| usage_only(c));
    if has && !wants_usage {
        return chunks.iter().filter(|c| !usage_only(c)).cloned().collect();
    }
    if !has && wants_usage {
        if let Some((p, c)) = usage {
            let mut out: Vec<Bytes> = chunks.to_vec();
            let done = out
                .iter()
                .rposition(|c| data_events(c).iter().any(|e| e == "[DONE]"))
                .unwrap_or(out.len());
            let u = json!({
                "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
            });
            out.insert(done, Bytes::from(event(&u)));
            return out;
        }
    }
    chunks.to_vec()
}
