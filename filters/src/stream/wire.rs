//! OpenAI chat/completions wire shapes as the meter and the JSON enforcer
//! read and rewrite them.
//!
//! Two views of the same text fields, which must agree:
//! - the hot path (`super::scan`) reads each streamed chunk in place and
//!   only counts;
//! - the cold path (the one event that crosses the cap, non-streaming
//!   bodies) works on a [`serde_json::Value`] and cuts with [`Budget`].
//!
//! The output text of a choice is, in this order: `reasoning_content`,
//! `reasoning`, `content`, `refusal` and each `tool_calls[].function`'s
//! `name` and `arguments` of its `delta` (stream) or `message` (JSON), then
//! the legacy completions `text` of the choice itself.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::tokens::TokenCounter;

/// Text fields of a `delta`/`message`, in cutting order.
pub(crate) const TEXT_FIELDS: [&str; 4] = ["reasoning_content", "reasoning", "content", "refusal"];

/// The provider's `usage` object.
#[derive(Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    #[serde(default)]
    pub completion_tokens: Option<u64>,
}

/// Output tokens of one choice given as a `Value` (`inner` is `"delta"` or
/// `"message"`); non-string fields count nothing.
pub(crate) fn count_choice(choice: &Value, inner: &str, counter: &dyn TokenCounter) -> u64 {
    let count = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map_or(0, |s| counter.count(s) as u64)
    };
    let mut n = count(choice.get("text"));
    if let Some(obj) = choice.get(inner) {
        n += TEXT_FIELDS.iter().map(|k| count(obj.get(*k))).sum::<u64>();
        if let Some(calls) = obj.get("tool_calls").and_then(Value::as_array) {
            for f in calls.iter().filter_map(|c| c.get("function")) {
                n += count(f.get("name")) + count(f.get("arguments"));
            }
        }
    }
    n
}

/// What happens to a text field nothing of which is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Emptied {
    /// Remove the key (stream deltas).
    Remove,
    /// `content` and `text` become `""`, other keys are removed (complete
    /// messages, where `content` is expected).
    Blank,
}

/// A token budget walked over text fields in order: fields that fit are
/// kept, the first one that does not is cut at a token boundary, every
/// later one is emptied.
pub(crate) struct Budget<'c> {
    counter: &'c dyn TokenCounter,
    left: u64,
    /// Tokens kept so far.
    pub kept: u64,
    /// A field did not fit: everything after it is emptied.
    pub crossed: bool,
}

impl<'c> Budget<'c> {
    pub(crate) fn new(counter: &'c dyn TokenCounter, left: u64) -> Self {
        Budget {
            counter,
            left,
            kept: 0,
            crossed: false,
        }
    }

    /// Bytes of `text` to keep. A field that is not `cuttable` (a function
    /// name) is kept whole or not at all.
    fn take(&mut self, text: &str, cuttable: bool) -> usize {
        if self.crossed {
            return 0;
        }
        let n = self.counter.count(text) as u64;
        if n <= self.left {
            self.left -= n;
            self.kept += n;
            return text.len();
        }
        self.crossed = true;
        if !cuttable {
            return 0;
        }
        let max = usize::try_from(self.left).unwrap_or(usize::MAX);
        let (mut bytes, tokens) = self.counter.prefix_within(text, max);
        bytes = bytes.min(text.len());
        while !text.is_char_boundary(bytes) {
            bytes -= 1;
        }
        let tokens = (tokens as u64).min(self.left);
        self.kept += tokens;
        self.left -= tokens;
        bytes
    }

    /// Applies the budget to the string field `key` of `obj`.
    fn cut_field(&mut self, obj: &mut Map<String, Value>, key: &str, emptied: Emptied) {
        let Some(Value::String(s)) = obj.get_mut(key) else {
            return;
        };
        let keep = self.take(s, true);
        if keep >= s.len() {
            return;
        }
        s.truncate(keep);
        if s.is_empty() && (emptied == Emptied::Remove || (key != "content" && key != "text")) {
            obj.remove(key);
        }
    }

    /// Applies the budget to `obj.tool_calls`: calls after the crossing one
    /// are removed, as is the crossing one when its name does not fit or
    /// nothing of it is left.
    fn cut_tool_calls(&mut self, obj: &mut Map<String, Value>, emptied: Emptied) {
        let Some(Value::Array(calls)) = obj.get_mut("tool_calls") else {
            return;
        };
        let mut keep = calls.len();
        for (k, call) in calls.iter_mut().enumerate() {
            if self.crossed {
                keep = k;
                break;
            }
            let Some(func) = call.get_mut("function").and_then(Value::as_object_mut) else {
                continue;
            };
            let named = match func.get("name") {
                Some(Value::String(name)) => {
                    if self.take(name, false) < name.len() {
                        keep = k;
                        break;
                    }
                    true
                }
                _ => false,
            };
            self.cut_field(func, "arguments", emptied);
            if self.crossed {
                let has_args = func
                    .get("arguments")
                    .and_then(Value::as_str)
                    .is_some_and(|a| !a.is_empty());
                keep = if named || has_args { k + 1 } else { k };
                break;
            }
        }
        calls.truncate(keep);
        if calls.is_empty() {
            obj.remove("tool_calls");
        }
    }

    /// Applies the budget to every text field of one choice (`inner` is
    /// `"delta"` or `"message"`).
    pub(crate) fn cut_choice(&mut self, choice: &mut Value, inner: &str, emptied: Emptied) {
        let Some(c) = choice.as_object_mut() else {
            return;
        };
        if let Some(obj) = c.get_mut(inner).and_then(Value::as_object_mut) {
            for key in TEXT_FIELDS {
                self.cut_field(obj, key, emptied);
            }
            self.cut_tool_calls(obj, emptied);
        }
        self.cut_field(c, "text", emptied);
    }
}

/// The fields a synthesized chunk copies from the upstream chunk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Header {
    id: Option<Value>,
    object: Option<Value>,
    created: Option<Value>,
    model: Option<Value>,
    system_fingerprint: Option<Value>,
}

/// Object type of synthesized chunks when the upstream chunk has none.
const CHUNK_OBJECT: &str = "chat.completion.chunk";

impl Header {
    /// Copies `id`, `object`, `created`, `model` and `system_fingerprint`
    /// (the non-null ones) from an upstream chunk.
    pub(crate) fn of(chunk: &Value) -> Self {
        let get = |k: &str| chunk.get(k).filter(|v| !v.is_null()).cloned();
        Header {
            id: get("id"),
            object: get("object"),
            created: get("created"),
            model: get("model"),
            system_fingerprint: get("system_fingerprint"),
        }
    }

    /// The upstream object type is the legacy completions one.
    pub(crate) fn is_text_completion(&self) -> bool {
        self.object.as_ref().and_then(Value::as_str) == Some("text_completion")
    }

    /// Writes `data: {<header>,"choices":<choices>[,"usage":<usage>]}\n\n`.
    pub(crate) fn write_event(&self, out: &mut Vec<u8>, choices: &Value, usage: Option<&Value>) {
        out.extend_from_slice(b"data: {");
        let default_object = Value::String(CHUNK_OBJECT.to_string());
        let fields = [
            ("id", self.id.as_ref()),
            (
                "object",
                Some(self.object.as_ref().unwrap_or(&default_object)),
            ),
            ("created", self.created.as_ref()),
            ("model", self.model.as_ref()),
            ("system_fingerprint", self.system_fingerprint.as_ref()),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                put(out, &Value::String(key.to_string()));
                out.push(b':');
                put(out, v);
                out.push(b',');
            }
        }
        out.extend_from_slice(b"\"choices\":");
        put(out, choices);
        if let Some(u) = usage {
            out.extend_from_slice(b",\"usage\":");
            put(out, u);
        }
        out.extend_from_slice(b"}\n\n");
    }
}

/// Serializes `v` into `out`. Writing a `Value` into a `Vec` cannot fail.
pub(crate) fn put(out: &mut Vec<u8>, v: &Value) {
    let _ = serde_json::to_writer(out, v);
}
