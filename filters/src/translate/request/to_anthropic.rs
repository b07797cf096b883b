//! OpenAI Chat Completions request → Anthropic Messages request.

use serde_json::{json, Map, Value};

use super::{copy_typed, non_null, required_array, str_at, u64_at, R};
use crate::translate::{as_object, parse_arguments, TranslateError};

/// OpenAI `/v1/chat/completions` body → Anthropic `/v1/messages` body.
///
/// - `system`/`developer` messages (wherever they are) → `system`: a string
///   when there is one non-empty text, else an array of text blocks (one per
///   text);
/// - `user` content: a string stays a string; parts `text` → text blocks,
///   `image_url` → image blocks (`data:` URLs → base64 source, `http(s)` →
///   url source; `detail` dropped), `file` with `file_data` → base64
///   document; other parts (audio, `file_id`) are unsupported;
/// - `assistant` text (and `refusal` parts) → text blocks, `tool_calls` →
///   `tool_use` blocks with the arguments parsed (`""` → `{}`); an
///   assistant message with neither is skipped;
/// - consecutive `tool` messages → one user message of `tool_result` blocks;
/// - `tools` (function) → `tools` with `input_schema` (`strict` dropped);
///   `tool_choice` auto/none/required/{function} → auto/none/any/{tool};
///   `parallel_tool_calls: false` → `disable_parallel_tool_use`;
/// - `max_completion_tokens`, else `max_tokens`, else `default_max_tokens`
///   → `max_tokens`; `stop` → `stop_sequences`; `temperature` (capped at
///   1), `top_p`, `stream` copied; `user` → `metadata.user_id`;
/// - `n` other than 1 is unsupported; `name`, `stream_options`,
///   penalties, `seed`, `logprobs`, `response_format`, `reasoning_effort`
///   and the rest are dropped.
pub fn openai_to_anthropic(body: &Value, default_max_tokens: u64) -> R<Value> {
    let obj = as_object(body)?;
    let mut out = Map::new();
    if let Some(model) = obj.get("model") {
        out.insert("model".into(), model.clone());
    }
    let messages = required_array(obj, "messages", "messages")?;
    let mut system: Vec<String> = Vec::new();
    let mut msgs: Vec<Value> = Vec::new();
    let mut last_was_tool = false;
    for (i, m) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        let role = m
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| TranslateError::invalid(format!("{p}.role"), "a role string"))?;
        match role {
            "system" | "developer" => {
                let texts = text_parts(m.get("content"), &format!("{p}.content"))?;
                system.extend(texts.into_iter().filter(|t| !t.is_empty()));
                continue;
            }
            "user" => msgs.push(json!({"role": "user", "content": user_content(m, &p)?})),
            "assistant" => {
                if let Some(content) = assistant_content(m, &p)? {
                    msgs.push(json!({"role": "assistant", "content": content}));
                }
            }
            "tool" => {
                let block = tool_result(m, &p)?;
                let open = msgs
                    .last_mut()
                    .filter(|_| last_was_tool)
                    .and_then(|last| last.get_mut("content"))
                    .and_then(Value::as_array_mut);
                match open {
                    Some(blocks) => blocks.push(block),
                    None => msgs.push(json!({"role": "user", "content": [block]})),
                }
                last_was_tool = true;
                continue;
            }
            other => {
                return Err(TranslateError::unsupported(
                    format!("{p}.role"),
                    format!("role {other:?}"),
                ))
            }
        }
        last_was_tool = false;
    }
    match system.len() {
        0 => {}
        1 => {
            out.insert("system".into(), Value::String(system.remove(0)));
        }
        _ => {
            let blocks = system
                .into_iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            out.insert("system".into(), Value::Array(blocks));
        }
    }
    out.insert("messages".into(), Value::Array(msgs));
    let max = match non_null(obj, "max_completion_tokens") {
        Some(v) => u64_at(v, "max_completion_tokens")?,
        None => match non_null(obj, "max_tokens") {
            Some(v) => u64_at(v, "max_tokens")?,
            None => default_max_tokens,
        },
    };
    out.insert("max_tokens".into(), max.into());
    if let Some(stop) = non_null(obj, "stop") {
        let seqs = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
            _ => return Err(TranslateError::invalid("stop", "a string or strings")),
        };
        out.insert("stop_sequences".into(), Value::Array(seqs));
    }
    if let Some(t) = non_null(obj, "temperature") {
        let t = t
            .as_f64()
            .ok_or_else(|| TranslateError::invalid("temperature", "a number"))?;
        out.insert("temperature".into(), json!(t.min(1.0)));
    }
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
    if let Some(user) = non_null(obj, "user") {
        let user = user
            .as_str()
            .ok_or_else(|| TranslateError::invalid("user", "a string"))?;
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(n) = non_null(obj, "n") {
        if n.as_u64() != Some(1) {
            return Err(TranslateError::unsupported("n", "more than one choice"));
        }
    }
    if let Some(tools) = non_null(obj, "tools") {
        out.insert("tools".into(), openai_tools(tools)?);
    }
    let mut choice = match non_null(obj, "tool_choice") {
        Some(c) => Some(openai_tool_choice(c)?),
        None => None,
    };
    if non_null(obj, "parallel_tool_calls").and_then(Value::as_bool) == Some(false)
        && out.contains_key("tools")
    {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c.get("type").and_then(Value::as_str) != Some("none") {
            c["disable_parallel_tool_use"] = Value::Bool(true);
        }
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    Ok(Value::Object(out))
}

/// The texts of an OpenAI `content`: a string, or an array of text parts.
fn text_parts(content: Option<&Value>, p: &str) -> R<Vec<String>> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| {
                let pp = format!("{p}[{j}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => str_at(part, "text", &pp).map(str::to_owned),
                    Some("refusal") => str_at(part, "refusal", &pp).map(str::to_owned),
                    _ => Err(TranslateError::unsupported(
                        format!("{pp}.type"),
                        "a non-text part here",
                    )),
                }
            })
            .collect(),
        Some(_) => Err(TranslateError::invalid(p, "a string or content parts")),
    }
}

fn user_content(m: &Value, p: &str) -> R<Value> {
    let p = format!("{p}.content");
    match m.get("content") {
        Some(Value::String(s)) => Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::with_capacity(parts.len());
            for (j, part) in parts.iter().enumerate() {
                let pp = format!("{p}[{j}]");
                let block = match part.get("type").and_then(Value::as_str) {
                    Some("text") => json!({"type": "text", "text": str_at(part, "text", &pp)?}),
                    Some("image_url") => {
                        let url = part
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                TranslateError::invalid(format!("{pp}.image_url.url"), "a URL")
                            })?;
                        image_block(url, &format!("{pp}.image_url.url"))?
                    }
                    Some("file") => file_block(part, &pp)?,
                    Some(other) => {
                        return Err(TranslateError::unsupported(
                            format!("{pp}.type"),
                            format!("content part {other:?}"),
                        ))
                    }
                    None => return Err(TranslateError::invalid(format!("{pp}.type"), "a type")),
                };
                blocks.push(block);
            }
            Ok(Value::Array(blocks))
        }
        None | Some(Value::Null) => Err(TranslateError::Missing { path: p }),
        Some(_) => Err(TranslateError::invalid(p, "a string or content parts")),
    }
}

/// Splits a `data:<media>;base64,<data>` URL.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

fn image_block(url: &str, p: &str) -> R<Value> {
    if let Some((media, data)) = data_url(url) {
        let source = json!({"type": "base64", "media_type": media, "data": data});
        Ok(json!({"type": "image", "source": source}))
    } else if url.starts_with("https://") || url.starts_with("http://") {
        Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
    } else {
        Err(TranslateError::invalid(
            p,
            "a base64 data: URL or an http(s) URL",
        ))
    }
}

fn file_block(part: &Value, pp: &str) -> R<Value> {
    let file = part.get("file");
    let Some(url) = file
        .and_then(|f| f.get("file_data"))
        .and_then(Value::as_str)
    else {
        return Err(TranslateError::unsupported(
            format!("{pp}.file"),
            "files other than inline file_data",
        ));
    };
    let (media, data) = data_url(url).ok_or_else(|| {
        TranslateError::invalid(format!("{pp}.file.file_data"), "a base64 data: URL")
    })?;
    let source = json!({"type": "base64", "media_type": media, "data": data});
    let mut block = json!({"type": "document", "source": source});
    if let Some(name) = file.and_then(|f| f.get("filename")).and_then(Value::as_str) {
        block["title"] = json!(name);
    }
    Ok(block)
}

fn assistant_content(m: &Value, p: &str) -> R<Option<Value>> {
    let content = m.get("content");
    let calls = match m.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(TranslateError::invalid(
                format!("{p}.tool_calls"),
                "an array",
            ))
        }
    };
    if let (Some(Value::String(s)), true) = (content, calls.is_empty()) {
        return Ok((!s.is_empty()).then(|| Value::String(s.clone())));
    }
    let mut blocks: Vec<Value> = text_parts(content, &format!("{p}.content"))?
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(|t| json!({"type": "text", "text": t}))
        .collect();
    for (j, call) in calls.iter().enumerate() {
        let cp = format!("{p}.tool_calls[{j}]");
        if let Some(t) = call.get("type").and_then(Value::as_str) {
            if t != "function" {
                return Err(TranslateError::unsupported(
                    format!("{cp}.type"),
                    format!("tool call type {t:?}"),
                ));
            }
        }
        let f = call
            .get("function")
            .ok_or_else(|| TranslateError::Missing {
                path: format!("{cp}.function"),
            })?;
        let fp = format!("{cp}.function");
        let args = f.get("arguments").and_then(Value::as_str).unwrap_or("");
        let input = parse_arguments(args, format!("{fp}.arguments"))?;
        blocks.push(json!({
            "type": "tool_use",
            "id": str_at(call, "id", &cp)?,
            "name": str_at(f, "name", &fp)?,
            "input": input,
        }));
    }
    Ok((!blocks.is_empty()).then_some(Value::Array(blocks)))
}

fn tool_result(m: &Value, p: &str) -> R<Value> {
    let id = str_at(m, "tool_call_id", p)?;
    let mut block = json!({"type": "tool_result", "tool_use_id": id});
    match m.get("content") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => block["content"] = json!(s),
        Some(other) => {
            let texts = text_parts(Some(other), &format!("{p}.content"))?;
            let parts: Vec<Value> = texts
                .into_iter()
                .map(|t| json!({"type": "text", "text": t}))
                .collect();
            block["content"] = Value::Array(parts);
        }
    }
    Ok(block)
}

fn openai_tools(tools: &Value) -> R<Value> {
    let tools = tools
        .as_array()
        .ok_or_else(|| TranslateError::invalid("tools", "an array"))?;
    let mut out = Vec::with_capacity(tools.len());
    for (i, t) in tools.iter().enumerate() {
        let p = format!("tools[{i}]");
        match t.get("type").and_then(Value::as_str) {
            None | Some("function") => {}
            Some(other) => {
                return Err(TranslateError::unsupported(
                    format!("{p}.type"),
                    format!("tool type {other:?}"),
                ))
            }
        }
        let f = t.get("function").ok_or_else(|| TranslateError::Missing {
            path: format!("{p}.function"),
        })?;
        let fp = format!("{p}.function");
        let mut tool = json!({"name": str_at(f, "name", &fp)?});
        if let Some(d) = f.get("description").and_then(Value::as_str) {
            tool["description"] = json!(d);
        }
        tool["input_schema"] = match f.get("parameters") {
            Some(s) if s.is_object() => s.clone(),
            _ => json!({"type": "object", "properties": {}}),
        };
        out.push(tool);
    }
    Ok(Value::Array(out))
}

fn openai_tool_choice(c: &Value) -> R<Value> {
    match c {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"type": "auto"})),
            "none" => Ok(json!({"type": "none"})),
            "required" => Ok(json!({"type": "any"})),
            _ => Err(TranslateError::invalid(
                "tool_choice",
                "auto, none or required",
            )),
        },
        Value::Object(_) => {
            let name = c
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| TranslateError::Missing {
                    path: "tool_choice.function.name".into(),
                })?;
            Ok(json!({"type": "tool", "name": name}))
        }
        _ => Err(TranslateError::invalid(
            "tool_choice",
            "a string or an object",
        )),
    }
}
