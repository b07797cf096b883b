//! Anthropic Messages request → OpenAI Chat Completions request.

use serde_json::{json, Map, Value};

use super::{copy_typed, non_null, required_array, str_at, u64_at, R};
use crate::translate::{as_object, TranslateError};

/// Anthropic `/v1/messages` body → OpenAI `/v1/chat/completions` body.
///
/// - `system` → one leading system message per text (string or blocks;
///   `cache_control` dropped);
/// - user blocks: `text` → text parts, `image` (base64 or url) →
///   `image_url` parts, base64 `document` → `file` part, `tool_result` →
///   `tool` messages placed before the user's other parts (`is_error`
///   dropped; text only);
/// - assistant blocks: text joined into `content`, `tool_use` →
///   `tool_calls` (input serialized), `thinking`/`redacted_thinking`
///   dropped;
/// - `tools` → function tools (server tools are unsupported);
///   `tool_choice` auto/any/none/{tool} → auto/required/none/{function},
///   `disable_parallel_tool_use` → `parallel_tool_calls: false`;
/// - `max_tokens` → `max_completion_tokens`; `stop_sequences` → `stop`;
///   `temperature`, `top_p`, `stream` copied (a stream also asks for
///   `stream_options.include_usage`); `metadata.user_id` → `user`; `top_k`
///   and `thinking` dropped.
pub fn anthropic_to_openai(body: &Value) -> R<Value> {
    let obj = as_object(body)?;
    let mut out = Map::new();
    if let Some(model) = obj.get("model") {
        out.insert("model".into(), model.clone());
    }
    let mut msgs = Vec::new();
    match non_null(obj, "system") {
        None => {}
        Some(Value::String(s)) if !s.is_empty() => {
            msgs.push(json!({"role": "system", "content": s}));
        }
        Some(Value::String(_)) => {}
        Some(Value::Array(blocks)) => {
            for (i, b) in blocks.iter().enumerate() {
                let text = block_text(b, &format!("system[{i}]"))?;
                msgs.push(json!({"role": "system", "content": text}));
            }
        }
        Some(_) => return Err(TranslateError::invalid("system", "a string or text blocks")),
    }
    for (i, m) in required_array(obj, "messages", "messages")?
        .iter()
        .enumerate()
    {
        let p = format!("messages[{i}]");
        let role = m.get("role").and_then(Value::as_str);
        let content = m.get("content").ok_or_else(|| TranslateError::Missing {
            path: format!("{p}.content"),
        })?;
        match (role, content) {
            (Some(r @ ("user" | "assistant")), Value::String(s)) => {
                msgs.push(json!({"role": r, "content": s}));
            }
            (Some("user"), Value::Array(blocks)) => anthropic_user(blocks, &p, &mut msgs)?,
            (Some("assistant"), Value::Array(blocks)) => {
                msgs.push(anthropic_assistant(blocks, &p)?);
            }
            (Some("user" | "assistant"), _) => {
                return Err(TranslateError::invalid(
                    format!("{p}.content"),
                    "a string or content blocks",
                ))
            }
            _ => {
                return Err(TranslateError::invalid(
                    format!("{p}.role"),
                    "user or assistant",
                ))
            }
        }
    }
    out.insert("messages".into(), Value::Array(msgs));
    if let Some(v) = non_null(obj, "max_tokens") {
        out.insert(
            "max_completion_tokens".into(),
            u64_at(v, "max_tokens")?.into(),
        );
    }
    copy_typed(
        obj,
        &mut out,
        "stop_sequences",
        "stop",
        Value::is_array,
        "an array",
    )?;
    copy_typed(
        obj,
        &mut out,
        "temperature",
        "temperature",
        Value::is_number,
        "a number",
    )?;
    copy_typed(
        obj,
        &mut out,
        "top_p",
        "top_p",
        Value::is_number,
        "a number",
    )?;
    copy_typed(
        obj,
        &mut out,
        "stream",
        "stream",
        Value::is_boolean,
        "a boolean",
    )?;
    if out.get("stream") == Some(&Value::Bool(true)) {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(user) = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        out.insert("user".into(), json!(user));
    }
    if let Some(tools) = non_null(obj, "tools") {
        out.insert("tools".into(), anthropic_tools(tools)?);
    }
    if let Some(choice) = non_null(obj, "tool_choice") {
        let (c, no_parallel) = anthropic_tool_choice(choice)?;
        out.insert("tool_choice".into(), c);
        if no_parallel {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    Ok(Value::Object(out))
}

fn block_text(b: &Value, p: &str) -> R<String> {
    match b.get("type").and_then(Value::as_str) {
        Some("text") => str_at(b, "text", p).map(str::to_owned),
        _ => Err(TranslateError::invalid(format!("{p}.type"), "a text block")),
    }
}

fn anthropic_user(blocks: &[Value], p: &str, msgs: &mut Vec<Value>) -> R<()> {
    let mut parts = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{p}.content[{j}]");
        let part = match b.get("type").and_then(Value::as_str) {
            Some("text") => json!({"type": "text", "text": str_at(b, "text", &bp)?}),
            Some("image") => {
                json!({"type": "image_url", "image_url": {"url": source_url(b, &bp)?}})
            }
            Some("document") => {
                let mut file = json!({"file_data": source_url(b, &bp)?});
                if let Some(t) = b.get("title").and_then(Value::as_str) {
                    file["filename"] = json!(t);
                }
                json!({"type": "file", "file": file})
            }
            Some("tool_result") => {
                let id = str_at(b, "tool_use_id", &bp)?;
                let content = match b.get("content") {
                    None | Some(Value::Null) => json!(""),
                    Some(Value::String(s)) => json!(s),
                    Some(Value::Array(items)) => {
                        let mut texts = Vec::with_capacity(items.len());
                        for (k, item) in items.iter().enumerate() {
                            let text = block_text(item, &format!("{bp}.content[{k}]"))?;
                            texts.push(json!({"type": "text", "text": text}));
                        }
                        Value::Array(texts)
                    }
                    Some(_) => {
                        return Err(TranslateError::invalid(
                            format!("{bp}.content"),
                            "a string or text blocks",
                        ))
                    }
                };
                msgs.push(json!({"role": "tool", "tool_call_id": id, "content": content}));
                continue;
            }
            Some(other) => {
                return Err(TranslateError::unsupported(
                    format!("{bp}.type"),
                    format!("user block {other:?}"),
                ))
            }
            None => return Err(TranslateError::invalid(format!("{bp}.type"), "a type")),
        };
        parts.push(part);
    }
    if !parts.is_empty() {
        msgs.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

/// The URL of an image/document `source`: base64 → `data:` URL.
fn source_url(b: &Value, bp: &str) -> R<String> {
    let sp = format!("{bp}.source");
    let src = b
        .get("source")
        .ok_or_else(|| TranslateError::Missing { path: sp.clone() })?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(format!(
            "data:{};base64,{}",
            str_at(src, "media_type", &sp)?,
            str_at(src, "data", &sp)?
        )),
        Some("url") => Ok(str_at(src, "url", &sp)?.to_owned()),
        _ => Err(TranslateError::unsupported(
            format!("{sp}.type"),
            "sources other than base64 and url",
        )),
    }
}

fn anthropic_assistant(blocks: &[Value], p: &str) -> R<Value> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let bp = format!("{p}.content[{j}]");
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(str_at(b, "text", &bp)?),
            Some("tool_use") => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({
                    "id": str_at(b, "id", &bp)?,
                    "type": "function",
                    "function": {"name": str_at(b, "name", &bp)?, "arguments": input.to_string()},
                }));
            }
            Some("thinking" | "redacted_thinking") => {}
            Some(other) => {
                return Err(TranslateError::unsupported(
                    format!("{bp}.type"),
                    format!("assistant block {other:?}"),
                ))
            }
            None => return Err(TranslateError::invalid(format!("{bp}.type"), "a type")),
        }
    }
    let mut msg = json!({"role": "assistant"});
    msg["content"] = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    Ok(msg)
}

fn anthropic_tools(tools: &Value) -> R<Value> {
    let tools = tools
        .as_array()
        .ok_or_else(|| TranslateError::invalid("tools", "an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                return Err(TranslateError::unsupported(
                    format!("{p}.type"),
                    format!("server tool {other:?}"),
                ))
            }
        }
        let mut f = json!({"name": str_at(t, "name", &p)?});
        if let Some(d) = t.get("description").and_then(Value::as_str) {
            f["description"] = json!(d);
        }
        if let Some(s) = t.get("input_schema") {
            f["parameters"] = s.clone();
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(Value::Array(out))
}

/// Returns the OpenAI `tool_choice` and whether parallel calls are off.
fn anthropic_tool_choice(c: &Value) -> R<(Value, bool)> {
    let no_parallel = c.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true);
    let choice = match c.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            json!({"type": "function", "function": {"name": str_at(c, "name", "tool_choice")?}})
        }
        _ => {
            return Err(TranslateError::invalid(
                "tool_choice.type",
                "auto, any, none or tool",
            ))
        }
    };
    Ok((choice, no_parallel))
}
