//! [`SseRedactor`]: masking of streamed answers (`text/event-stream`).
//!
//! Events are framed by [`SseParser`], so a chunk may end anywhere (mid
//! line, mid UTF-8 sequence). Shapes handled:
//!
//! - OpenAI chat completion chunks: `choices[].delta.content`, one
//!   [`TextStream`] per choice `index`; legacy completion chunks:
//!   `choices[].text`. When a choice has a `finish_reason`, its held text is
//!   flushed into that event (before the event's own text, the field created
//!   when missing). Before `data: [DONE]`, an `error` event, an oversized
//!   event and at [`SseRedactor::finish`], text still held is sent as a
//!   synthetic chunk copying `id`, `object`, `created`, `model` of the last
//!   chunk seen, with `{"index": i, "delta": {"content": held},
//!   "finish_reason": null}` (`"text": held` for legacy streams).
//! - Anthropic Messages: `content_block_delta` events with a `text_delta`
//!   (and the text of a `content_block_start`), one [`TextStream`] per block
//!   `index`; a block's held text is sent as a `content_block_delta` event
//!   just before its `content_block_stop` (and before `message_delta`,
//!   `message_stop`, `error` or the end for blocks never stopped).
//!
//! An event whose text changed is re-serialised (`event:`/`id:`/`retry:`
//! kept, then one `data:` line); every other event (comments, keep-alives,
//! `[DONE]`, usage chunks, tool call deltas, malformed JSON) passes through
//! byte for byte. Not masked: `delta.refusal`, tool call arguments, thinking
//! deltas, other stream shapes (e.g. the Responses API), and the content of
//! events larger than the parser's bound (passed through as pieces).
//!
//! **Memory.** The parser's bound on one event plus the held text of each
//! tracked stream (at most [`MAX_TRACKED_STREAMS`] choices and as many
//! blocks). Text of further indexes is masked event by event without
//! holdback: a match split across two of its events is not masked.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{Masker, TextStream};
use crate::stream::sse::{SseEvent, SseParser};

/// How many choice indexes (and, separately, content block indexes) get a
/// [`TextStream`] of their own.
pub const MAX_TRACKED_STREAMS: usize = 128;

/// The fields of the last chunk copied into a synthetic chunk.
const META: [&str; 4] = ["id", "object", "created", "model"];

#[derive(Debug, Clone)]
struct ChoiceStream {
    text: TextStream,
    /// A legacy completion (`text`) rather than a chat (`delta.content`).
    legacy: bool,
}

#[derive(Debug, Clone, Default)]
struct State {
    choices: BTreeMap<u64, ChoiceStream>,
    blocks: BTreeMap<u64, TextStream>,
    /// `id`, `object`, `created`, `model` of the last OpenAI chunk.
    meta: Map<String, Value>,
}

/// Masks one SSE response stream; see the module docs.
#[derive(Debug, Clone)]
pub struct SseRedactor {
    masker: Arc<Masker>,
    parser: SseParser,
    state: State,
}

impl SseRedactor {
    /// A redactor at the start of a stream.
    pub fn new(masker: Arc<Masker>) -> Self {
        SseRedactor {
            masker,
            parser: SseParser::new(),
            state: State::default(),
        }
    }

    /// Takes the next chunk of the upstream body; returns the bytes to send
    /// now.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.masker.is_empty() {
            return chunk.to_vec();
        }
        let mut out = Vec::with_capacity(chunk.len() + 64);
        let masker = &*self.masker;
        let state = &mut self.state;
        self.parser
            .feed(chunk, |ev| state.on_event(masker, &ev, &mut out));
        out
    }

    /// Ends the stream: the last event (even without its blank line) and
    /// every text still held.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.masker.is_empty() {
            return out;
        }
        let masker = &*self.masker;
        let state = &mut self.state;
        self.parser
            .finish(|ev| state.on_event(masker, &ev, &mut out));
        state.flush_all(masker, &mut out);
        out
    }

    /// Bytes buffered: an incomplete event plus the text held per stream.
    pub fn held_bytes(&self) -> usize {
        let choices: usize = self
            .state
            .choices
            .values()
            .map(|c| c.text.held().len())
            .sum();
        let blocks: usize = self.state.blocks.values().map(|b| b.held().len()).sum();
        self.parser.buffered() + choices + blocks
    }
}

impl State {
    fn on_event(&mut self, masker: &Masker, ev: &SseEvent<'_>, out: &mut Vec<u8>) {
        if ev.oversized {
            self.flush_all(masker, out);
            out.extend_from_slice(ev.raw);
            return;
        }
        let Some(data) = ev.data.as_deref() else {
            out.extend_from_slice(ev.raw);
            return;
        };
        if data.trim() == "[DONE]" {
            self.flush_all(masker, out);
            out.extend_from_slice(ev.raw);
            return;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(data) else {
            out.extend_from_slice(ev.raw);
            return;
        };
        let changed = if v.get("choices").is_some_and(Value::is_array) {
            self.openai(masker, &mut v)
        } else if let Some(kind) = v.get("type").and_then(Value::as_str) {
            let kind = kind.to_owned();
            self.anthropic(masker, &kind, &mut v, out)
        } else {
            if v.get("error").is_some() {
                self.flush_all(masker, out);
            }
            false
        };
        if changed {
            write_event(out, ev.event.as_deref(), ev.id.as_deref(), ev.retry, &v);
        } else {
            out.extend_from_slice(ev.raw);
        }
    }

    /// An OpenAI chunk: masks each choice's text; `true` when it changed.
    fn openai(&mut self, masker: &Masker, v: &mut Value) -> bool {
        if let Some(obj) = v.as_object() {
            for key in META {
                if let Some(x) = obj.get(key) {
                    self.meta.insert(key.to_owned(), x.clone());
                }
            }
        }
        let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) else {
            return false;
        };
        let mut changed = false;
        for (pos, choice) in choices.iter_mut().enumerate() {
            let index = choice
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(pos as u64);
            let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
            let (kind, text) = if choice.get("delta").is_some() {
                (Some(false), choice.pointer("/delta/content"))
            } else if choice.get("text").is_some() {
                (Some(true), choice.get("text"))
            } else {
                (None, None)
            };
            let text = text.and_then(Value::as_str);
            if let Some((new, legacy)) = self.choice_text(masker, index, text, finished, kind) {
                set_choice_text(choice, legacy, new);
                changed = true;
            }
        }
        changed
    }

    /// The text to put in a choice instead of `text`, and whether it goes
    /// in `text` (legacy) rather than `delta.content`; `None` to leave the
    /// choice as it is.
    fn choice_text(
        &mut self,
        masker: &Masker,
        index: u64,
        text: Option<&str>,
        finished: bool,
        kind: Option<bool>,
    ) -> Option<(String, bool)> {
        let tracked = self.choices.contains_key(&index);
        if !tracked && (self.choices.len() >= MAX_TRACKED_STREAMS || (text.is_none() && !finished))
        {
            let t = text?;
            return match masker.mask(t) {
                Cow::Owned(m) if m != t => Some((m, kind.unwrap_or(false))),
                _ => None,
            };
        }
        let st = self.choices.entry(index).or_insert_with(|| ChoiceStream {
            text: TextStream::new(),
            legacy: false,
        });
        if let Some(legacy) = kind {
            st.legacy = legacy;
        }
        let legacy = st.legacy;
        let mut new = text.map_or_else(String::new, |t| st.text.push(masker, t));
        if finished {
            new.push_str(&st.text.finish(masker));
            self.choices.remove(&index);
        }
        match text {
            Some(t) if new == t => None,
            None if new.is_empty() => None,
            _ => Some((new, legacy)),
        }
    }

    /// An Anthropic event of type `kind`; `true` when `v` changed.
    fn anthropic(&mut self, masker: &Masker, kind: &str, v: &mut Value, out: &mut Vec<u8>) -> bool {
        let index = v.get("index").and_then(Value::as_u64);
        match (kind, index) {
            ("content_block_start", Some(index)) => {
                let Some(block) = v.get_mut("content_block") else {
                    return false;
                };
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return false;
                }
                self.block_text(masker, index, block.get_mut("text"))
            }
            ("content_block_delta", Some(index)) => {
                let Some(delta) = v.get_mut("delta") else {
                    return false;
                };
                if delta.get("type").and_then(Value::as_str) != Some("text_delta") {
                    return false;
                }
                self.block_text(masker, index, delta.get_mut("text"))
            }
            ("content_block_stop", Some(index)) => {
                if let Some(mut st) = self.blocks.remove(&index) {
                    write_block_delta(out, index, &st.finish(masker));
                }
                false
            }
            ("message_delta" | "message_stop" | "error", _) => {
                self.flush_all(masker, out);
                false
            }
            _ => false,
        }
    }

    /// Masks the text `field` of block `index` in place; `true` if changed.
    fn block_text(&mut self, masker: &Masker, index: u64, field: Option<&mut Value>) -> bool {
        let Some(Value::String(text)) = field else {
            return false;
        };
        let new = if self.blocks.contains_key(&index) || self.blocks.len() < MAX_TRACKED_STREAMS {
            self.blocks.entry(index).or_default().push(masker, text)
        } else {
            masker.mask(text).into_owned()
        };
        if new == *text {
            return false;
        }
        *text = new;
        true
    }

    /// Sends every held text as synthetic events and forgets the streams.
    fn flush_all(&mut self, masker: &Masker, out: &mut Vec<u8>) {
        for (index, mut st) in std::mem::take(&mut self.choices) {
            let held = st.text.finish(masker);
            if held.is_empty() {
                continue;
            }
            let choice = if st.legacy {
                json!({"index": index, "text": held, "finish_reason": null})
            } else {
                json!({"index": index, "delta": {"content": held}, "finish_reason": null})
            };
            let mut chunk = Map::new();
            for key in META {
                if let Some(x) = self.meta.get(key) {
                    chunk.insert(key.to_owned(), x.clone());
                }
            }
            chunk.insert("choices".to_owned(), Value::Array(vec![choice]));
            write_event(out, None, None, None, &Value::Object(chunk));
        }
        for (index, mut st) in std::mem::take(&mut self.blocks) {
            write_block_delta(out, index, &st.finish(masker));
        }
    }
}

/// Puts `new` in a choice's `text` (legacy) or `delta.content`, creating
/// the field.
fn set_choice_text(choice: &mut Value, legacy: bool, new: String) {
    let Some(obj) = choice.as_object_mut() else {
        return;
    };
    if legacy {
        obj.insert("text".to_owned(), Value::String(new));
        return;
    }
    let delta = obj
        .entry("delta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !delta.is_object() {
        *delta = Value::Object(Map::new());
    }
    if let Some(delta) = delta.as_object_mut() {
        delta.insert("content".to_owned(), Value::String(new));
    }
}

/// An Anthropic `content_block_delta` event carrying `text` (nothing when
/// `text` is empty).
fn write_block_delta(out: &mut Vec<u8>, index: u64, text: &str) {
    if text.is_empty() {
        return;
    }
    let data = json!({
        "type": "content_block_delta",
        "index": index,
        "delta": {"type": "text_delta", "text": text},
    });
    write_event(out, Some("content_block_delta"), None, None, &data);
}

/// One event: the given fields, then `data` on one line, then a blank line.
fn write_event(
    out: &mut Vec<u8>,
    event: Option<&str>,
    id: Option<&str>,
    retry: Option<u64>,
    data: &Value,
) {
    for (field, value) in [("event", event), ("id", id)] {
        if let Some(value) = value {
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
    }
    if let Some(retry) = retry {
        out.extend_from_slice(format!("retry: {retry}\n").as_bytes());
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}
