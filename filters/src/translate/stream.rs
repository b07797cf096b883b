//! Incremental SSE translators, shaped like the stream meter: the gateway
//! feeds the upstream body chunk by chunk (`feed`), forwards what is
//! appended to `out`, calls `finish` at end of input and reads `usage`.
//! Events may be split across chunks at any byte ([`SseParser`]); the
//! output is the same however the input is chunked. Events that are not
//! JSON, of unknown shape, or over the parser's 1 MiB bound are dropped.
//!
//! [`AnthropicToOpenAiStream`] (Anthropic upstream, OpenAI client):
//! `message_start` → a role chunk (`delta: {"role":"assistant","content":""}`);
//! `text_delta` → `delta.content`; `thinking_delta` →
//! `delta.reasoning_content`; a `tool_use` block start →
//! `delta.tool_calls[{index, id, type:"function", function:{name,
//! arguments:""}}]` (tool calls numbered from 0 in block order);
//! `input_json_delta` → `tool_calls[{index, function:{arguments}}]` (empty
//! pieces skipped); `message_delta` with a `stop_reason` → the finish chunk
//! (`delta: {}`); `message_stop` → a usage chunk (`choices: []`) when the
//! client asked for usage, then `data: [DONE]`; `error` → one
//! `data: {"error":{…}}` event (see
//! [`super::anthropic_error_to_openai`]) and nothing after. `ping`,
//! `content_block_stop`, signatures, citations and unknown events are
//! dropped. A stream that ends before any `stop_reason` ends with an error
//! event (code `incomplete_stream`); one that only misses `message_stop`
//! is closed normally. Chunks carry `created: 0` unless
//! [`AnthropicToOpenAiStream::with_created`] says otherwise.
//!
//! [`OpenAiToAnthropicStream`] (OpenAI upstream, Claude client): the first
//! chunk → `message_start` (usage 0: the prompt count is only known at the
//! end); `reasoning_content`/`reasoning` → a `thinking` block, `content`
//! and `refusal` → a `text` block, each tool call → a `tool_use` block
//! whose `arguments` pieces become `input_json_delta`s; a block is stopped
//! when the next one starts, block indexes count from 0. `[DONE]` (or end
//! of input after a `finish_reason`) → `content_block_stop`,
//! `message_delta` (`stop_reason`, full usage) and `message_stop`. An
//! `{"error":…}` data event → an Anthropic `error` event and nothing after.
//! Only choice 0 is translated. Arguments of a tool call that arrive after
//! a later block started are still sent, with their block's index.

use serde_json::{json, Value};

use super::response::{anthropic_error_to_openai, openai_error_to_anthropic};
use super::{finish_reason_for, stop_reason_for, AnthropicUsage};
use crate::stream::{SseEvent, SseParser};

/// Anthropic Messages SSE → OpenAI `chat.completion.chunk` SSE.
#[derive(Debug, Clone)]
pub struct AnthropicToOpenAiStream {
    parser: SseParser,
    st: AnthropicState,
}

#[derive(Debug, Clone)]
struct AnthropicState {
    model: String,
    include_usage: bool,
    created: u64,
    id: String,
    started: bool,
    /// (Anthropic block index, OpenAI tool call index) of tool_use blocks.
    tools: Vec<(u64, u64)>,
    usage: Option<AnthropicUsage>,
    finished: bool,
    done: bool,
}

impl AnthropicToOpenAiStream {
    /// A translator reporting `model` (empty: the upstream's) that ends
    /// with a usage chunk when `include_usage`.
    pub fn new(model: &str, include_usage: bool) -> Self {
        AnthropicToOpenAiStream {
            parser: SseParser::new(),
            st: AnthropicState {
                model: model.to_owned(),
                include_usage,
                created: 0,
                id: String::new(),
                started: false,
                tools: Vec::new(),
                usage: None,
                finished: false,
                done: false,
            },
        }
    }

    /// Sets the `created` (Unix seconds) of every chunk.
    pub fn with_created(mut self, created: u64) -> Self {
        self.st.created = created;
        self
    }

    /// Translates the next chunk of upstream body into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let st = &mut self.st;
        if st.done {
            return;
        }
        self.parser.feed(chunk, |ev| st.on_event(&ev, out));
    }

    /// Ends the input (see the module docs for a stream cut short).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let st = &mut self.st;
        self.parser.finish(|ev| st.on_event(&ev, out));
        if st.done {
            return;
        }
        if st.finished {
            st.end(out);
        } else {
            let err = json!({"error": {
                "message": "upstream stream ended before the message was complete",
                "type": "server_error", "param": null, "code": "incomplete_stream",
            }});
            write_data(out, &err);
            st.done = true;
        }
    }

    /// `(prompt_tokens, completion_tokens)` as OpenAI counts them (prompt =
    /// input + cache reads + cache writes), once the upstream reported any.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.st.usage.map(|u| (u.prompt(), u.output))
    }

    /// The output is complete (`[DONE]` or an error was written).
    pub fn done(&self) -> bool {
        self.st.done
    }
}

impl AnthropicState {
    fn on_event(&mut self, ev: &SseEvent<'_>, out: &mut Vec<u8>) {
        let (Some(data), false) = (ev.data.as_deref(), self.done) else {
            return;
        };
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let ty = match v.get("type").and_then(Value::as_str) {
            Some(t) => t,
            None => ev.event.as_deref().unwrap_or(""),
        };
        let s = |v: Option<&Value>, k: &str| -> String {
            v.and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        match ty {
            "message_start" => {
                let m = v.get("message");
                if self.id.is_empty() {
                    self.id = s(m, "id");
                }
                if self.model.is_empty() {
                    self.model = s(m, "model");
                }
                self.update_usage(m.and_then(|m| m.get("usage")));
                self.start(out);
            }
            "content_block_start" => {
                self.start(out);
                let b = v.get("content_block");
                match b.and_then(|b| b.get("type")).and_then(Value::as_str) {
                    Some("text") => self.text("content", &s(b, "text"), out),
                    Some("thinking") => self.text("reasoning_content", &s(b, "thinking"), out),
                    Some("tool_use") => {
                        let index = self.tools.len() as u64;
                        let block = v.get("index").and_then(Value::as_u64).unwrap_or(u64::MAX);
                        self.tools.push((block, index));
                        let args = match b.and_then(|b| b.get("input")) {
                            Some(Value::Object(m)) if !m.is_empty() => {
                                Value::Object(m.clone()).to_string()
                            }
                            _ => String::new(),
                        };
                        let call = json!({"index": index, "id": s(b, "id"), "type": "function",
                            "function": {"name": s(b, "name"), "arguments": args}});
                        self.chunk(json!({"tool_calls": [call]}), Value::Null, out);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                self.start(out);
                let d = v.get("delta");
                match d.and_then(|d| d.get("type")).and_then(Value::as_str) {
                    Some("text_delta") => self.text("content", &s(d, "text"), out),
                    Some("thinking_delta") => {
                        self.text("reasoning_content", &s(d, "thinking"), out)
                    }
                    Some("input_json_delta") => {
                        let block = v.get("index").and_then(Value::as_u64);
                        let tool = self.tools.iter().find(|(b, _)| Some(*b) == block);
                        let piece = s(d, "partial_json");
                        if let (Some(&(_, index)), false) = (tool, piece.is_empty()) {
                            let call = json!({"index": index, "function": {"arguments": piece}});
                            self.chunk(json!({"tool_calls": [call]}), Value::Null, out);
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                self.update_usage(v.get("usage"));
                let stop = v.get("delta").and_then(|d| d.get("stop_reason"));
                if let (Some(reason), false) = (stop.and_then(Value::as_str), self.finished) {
                    self.start(out);
                    self.chunk(json!({}), json!(finish_reason_for(reason)), out);
                    self.finished = true;
                }
            }
            "message_stop" => self.end(out),
            "error" => {
                write_data(out, &anthropic_error_to_openai(&v));
                self.done = true;
            }
            _ => {}
        }
    }

    fn update_usage(&mut self, usage: Option<&Value>) {
        if let Some(u) = usage.filter(|u| u.is_object()) {
            self.usage
                .get_or_insert_with(AnthropicUsage::default)
                .update(u);
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
                out,
            );
        }
    }

    /// A `delta.<field>` text chunk, unless `text` is empty.
    fn text(&self, field: &str, text: &str, out: &mut Vec<u8>) {
        if !text.is_empty() {
            self.chunk(json!({ field: text }), Value::Null, out);
        }
    }

    fn chunk(&self, delta: Value, finish: Value, out: &mut Vec<u8>) {
        let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish});
        write_data(out, &self.envelope(json!([choice])));
    }

    fn envelope(&self, choices: Value) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model, "choices": choices})
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start(out);
        if !self.finished {
            self.chunk(json!({}), json!("stop"), out);
            self.finished = true;
        }
        if let (true, Some(u)) = (self.include_usage, self.usage) {
            let mut chunk = self.envelope(json!([]));
            chunk["usage"] = u.to_openai();
            write_data(out, &chunk);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.done = true;
    }
}

/// `data: <json>` and the blank line.
fn write_data(out: &mut Vec<u8>, v: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// OpenAI `chat.completion.chunk` SSE → Anthropic Messages SSE.
#[derive(Debug, Clone)]
pub struct OpenAiToAnthropicStream {
    parser: SseParser,
    st: OpenAiState,
}

/// The Anthropic content block currently open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Thinking(u64),
    Text(u64),
    Tool(u64),
}

#[derive(Debug, Clone)]
struct OpenAiState {
    model: String,
    id: String,
    started: bool,
    next_block: u64,
    open: Option<Open>,
    /// (OpenAI tool call index, Anthropic block index).
    tools: Vec<(u64, u64)>,
    stop: Option<&'static str>,
    usage: Option<AnthropicUsage>,
    done: bool,
}

impl OpenAiToAnthropicStream {
    /// A translator reporting `model` (empty: the upstream's).
    pub fn new(model: &str) -> Self {
        OpenAiToAnthropicStream {
            parser: SseParser::new(),
            st: OpenAiState {
                model: model.to_owned(),
                id: String::new(),
                started: false,
                next_block: 0,
                open: None,
                tools: Vec::new(),
                stop: None,
                usage: None,
                done: false,
            },
        }
    }

    /// Translates the next chunk of upstream body into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let st = &mut self.st;
        if st.done {
            return;
        }
        self.parser.feed(chunk, |ev| st.on_event(&ev, out));
    }

    /// Ends the input: closes the message if a `finish_reason` was seen
    /// (a missing `[DONE]` is tolerated), else writes an `api_error` event.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let st = &mut self.st;
        self.parser.finish(|ev| st.on_event(&ev, out));
        if st.done {
            return;
        }
        if st.stop.is_some() {
            st.end(out);
        } else {
            let err = json!({"type": "error", "error": {"type": "api_error",
                "message": "upstream stream ended before the message was complete"}});
            write_event(out, "error", &err);
            st.done = true;
        }
    }

    /// `(prompt_tokens, completion_tokens)` from the upstream usage chunk.
    pub fn usage(&self) -> Option<(u64, u64)> {
        self.st.usage.map(|u| (u.prompt(), u.output))
    }

    /// The output is complete (`message_stop` or an error was written).
    pub fn done(&self) -> bool {
        self.st.done
    }
}

impl OpenAiState {
    fn on_event(&mut self, ev: &SseEvent<'_>, out: &mut Vec<u8>) {
        let (Some(data), false) = (ev.data.as_deref(), self.done) else {
            return;
        };
        if data.trim() == "[DONE]" {
            self.end(out);
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        if v.get("error").is_some_and(|e| !e.is_null()) {
            write_event(out, "error", &openai_error_to_anthropic(&v));
            self.done = true;
            return;
        }
        if !v.is_object() {
            return;
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if self.id.is_empty() {
            self.id = s("id");
        }
        if self.model.is_empty() {
            self.model = s("model");
        }
        self.start(out);
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(AnthropicUsage::from_openai(u));
        }
        let choices = v.get("choices").and_then(Value::as_array);
        let Some(choice) = choices.and_then(|c| {
            c.iter()
                .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
        }) else {
            return;
        };
        if let Some(d) = choice.get("delta") {
            let ds = |k: &str| d.get(k).and_then(Value::as_str).filter(|t| !t.is_empty());
            if let Some(t) = ds("reasoning_content").or_else(|| ds("reasoning")) {
                let b = self.ensure(Open::Thinking, out);
                self.delta(b, json!({"type": "thinking_delta", "thinking": t}), out);
            }
            for t in [ds("content"), ds("refusal")].into_iter().flatten() {
                let b = self.ensure(Open::Text, out);
                self.delta(b, json!({"type": "text_delta", "text": t}), out);
            }
            let calls = d.get("tool_calls").and_then(Value::as_array);
            for call in calls.into_iter().flatten() {
                self.tool_call(call, out);
            }
        }
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop = Some(stop_reason_for(r));
        }
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        // Without an `index` (some compatible servers), a call with an `id`
        // is a new one and a call without continues the last one.
        let index = match (call.get("index").and_then(Value::as_u64), call.get("id")) {
            (Some(i), _) => i,
            (None, Some(Value::String(_))) => self.tools.iter().map(|t| t.0 + 1).max().unwrap_or(0),
            (None, _) => self.tools.last().map_or(0, |t| t.0),
        };
        let f = call.get("function");
        let fs = |key: &str| f.and_then(|f| f.get(key)).and_then(Value::as_str);
        let block = match self.tools.iter().find(|(i, _)| *i == index) {
            Some(&(_, b)) => b,
            None => {
                self.close(out);
                let b = self.next_block;
                self.next_block += 1;
                self.tools.push((index, b));
                self.open = Some(Open::Tool(b));
                let id = match call.get("id").and_then(Value::as_str) {
                    Some(id) => id.to_owned(),
                    None => format!("call_{index}"),
                };
                let name = fs("name").unwrap_or("");
                let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                let start =
                    json!({"type": "content_block_start", "index": b, "content_block": block});
                write_event(out, "content_block_start", &start);
                b
            }
        };
        if let Some(args) = fs("arguments").filter(|a| !a.is_empty()) {
            self.delta(
                block,
                json!({"type": "input_json_delta", "partial_json": args}),
                out,
            );
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            let msg = json!({"id": self.id, "type": "message", "role": "assistant",
                "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0}});
            write_event(
                out,
                "message_start",
                &json!({"type": "message_start", "message": msg}),
            );
        }
    }

    /// The index of an open block of kind `kind`, opening one if needed.
    fn ensure(&mut self, kind: fn(u64) -> Open, out: &mut Vec<u8>) -> u64 {
        if let Some(open) = self.open {
            if open == kind(block_of(open)) {
                return block_of(open);
            }
        }
        self.close(out);
        let b = self.next_block;
        self.next_block += 1;
        let open = kind(b);
        self.open = Some(open);
        let block = match open {
            Open::Thinking(_) => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        let start = json!({"type": "content_block_start", "index": b, "content_block": block});
        write_event(out, "content_block_start", &start);
        b
    }

    fn delta(&self, block: u64, delta: Value, out: &mut Vec<u8>) {
        let ev = json!({"type": "content_block_delta", "index": block, "delta": delta});
        write_event(out, "content_block_delta", &ev);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some(open) = self.open.take() {
            let ev = json!({"type": "content_block_stop", "index": block_of(open)});
            write_event(out, "content_block_stop", &ev);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start(out);
        self.close(out);
        let usage = self.usage.unwrap_or_default().to_anthropic();
        let delta = json!({"type": "message_delta",
            "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
            "usage": usage});
        write_event(out, "message_delta", &delta);
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.done = true;
    }
}

fn block_of(open: Open) -> u64 {
    match open {
        Open::Thinking(b) | Open::Text(b) | Open::Tool(b) => b,
    }
}

/// `event: <name>`, `data: <json>` and the blank line.
fn write_event(out: &mut Vec<u8>, name: &str, v: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    write_data(out, v);
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
