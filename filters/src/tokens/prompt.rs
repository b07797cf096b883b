//! Prompt tokens of an OpenAI request body, counted the way OpenAI bills
//! them ([`count_prompt`]).

use super::memo::Memo;
use super::{Encoding, TokenCounter};
use serde_json::Value;
use std::sync::OnceLock;

/// Prompt tokens of a request, and whether any part was estimated rather
/// than counted exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PromptCount {
    pub tokens: u64,
    pub estimated: bool,
    /// Counting stopped once `tokens` passed the ceiling it was given
    /// ([`count_prompt_within`]): the true count is larger still.
    pub partial: bool,
}

/// An `image_url` part with `detail: "low"`: OpenAI's flat 85 tokens (GPT-4o
/// pricing; other models scale this).
pub const IMAGE_TOKENS_LOW: u64 = 85;
/// An `image_url` part at `high`/`auto` detail: the size is unknown without
/// fetching the image, so a 1024×1024 image is assumed (GPT-4o: scaled to
/// 768×768 = 4 tiles of 512 px, 85 + 4 × 170 = 765 tokens).
pub const IMAGE_TOKENS_HIGH: u64 = 765;

/// Per message: `<|start|>{role}<|message|>…<|end|>` (cookbook, all current models).
const PER_MESSAGE: i64 = 3;
/// A message's `name`, on top of its own tokens.
const PER_NAME: i64 = 1;
/// Every reply is primed with `<|start|>assistant<|message|>`.
const REPLY_PRIMING: i64 = 3;

/// Overheads of function definitions, from the OpenAI cookbook "How to
/// count tokens with tiktoken", section 7 (`num_tokens_for_tools`), which
/// reproduces the API's counts for its example (105 on gpt-4/gpt-3.5-turbo,
/// 101 on gpt-4o/gpt-4o-mini).
struct ToolCosts {
    func_init: i64,
    prop_init: i64,
    prop_key: i64,
    enum_init: i64,
    enum_item: i64,
    func_end: i64,
}

impl ToolCosts {
    /// cl100k (and older) models: `func_init` 10; o200k models and unknown
    /// counters: 7.
    fn for_counter(counter: &dyn TokenCounter) -> ToolCosts {
        let func_init = match Encoding::of_counter(counter) {
            Some(Encoding::Cl100kBase | Encoding::P50kBase | Encoding::R50kBase) => 10,
            Some(Encoding::O200kBase) | None => 7,
        };
        ToolCosts {
            func_init,
            prop_init: 3,
            prop_key: 3,
            enum_init: -3,
            enum_item: 3,
            func_end: 12,
        }
    }
}

/// Prompt tokens of an OpenAI request body the way OpenAI bills them.
///
/// - Chat `messages` (the cookbook's `num_tokens_from_messages`): 3 per
///   message, plus the tokens of its `role`, `content` and `name` (+1 for a
///   name), plus 3 priming the reply. `content` is a string or an array of
///   parts: `text` parts are counted; `image_url` parts count
///   [`IMAGE_TOKENS_LOW`] or [`IMAGE_TOKENS_HIGH`] and mark the count
///   estimated; other parts (audio, files) count 0 and mark it estimated.
///   Assistant `tool_calls` / `function_call` count their function name and
///   arguments (estimated: their framing is undocumented); `tool` and
///   `function` role messages are messages like any other.
/// - `tools` / `functions` definitions: the cookbook's
///   `num_tokens_for_tools` approximation: per function
///   `func_init` + `name:description`, per property `prop_key` +
///   `name:type:description` and enum items, `func_end` per list
///   (`func_init` 10 for cl100k and older encodings, 7 for o200k and
///   counters not from [`Encoding::counter`]). Nested
///   schemas (object properties, array items), which it ignores, add their
///   JSON text. Always estimated.
/// - `input` (embeddings): a string, an array of strings, a token array or
///   an array of token arrays (their lengths); message objects (Responses
///   API) count like chat messages, estimated.
/// - `prompt` (legacy completions): a string or an array (as `input`).
///
/// Anything else (or a body that is not an object) → 0.
pub fn count_prompt(counter: &dyn TokenCounter, body: &serde_json::Value) -> PromptCount {
    count_prompt_within(counter, body, None)
}

/// [`count_prompt`] that stops as soon as the count passes `ceiling`
/// (then `partial` is set and `tokens` is some number over `ceiling`): a
/// prompt that is over every limit is denied without counting the rest.
pub fn count_prompt_within(
    counter: &dyn TokenCounter,
    body: &serde_json::Value,
    ceiling: Option<u64>,
) -> PromptCount {
    let Some(obj) = body.as_object() else {
        return PromptCount::default();
    };
    let mut acc = Acc {
        counter,
        encoding: Encoding::of_counter(counter),
        tokens: 0,
        estimated: false,
        stop: ceiling.map_or(i64::MAX, |c| i64::try_from(c).unwrap_or(i64::MAX)),
    };
    // One pass over the members (a lookup per field name would walk the
    // object's map once per name).
    let mut tool_costs = None;
    for (key, v) in obj {
        match key.as_str() {
            "messages" => {
                if let Some(messages) = v.as_array() {
                    for m in messages {
                        acc.message(m);
                    }
                    acc.tokens += REPLY_PRIMING;
                }
            }
            "tools" => {
                if let Some(tools) = v.as_array() {
                    let costs = tool_costs.get_or_insert_with(|| ToolCosts::for_counter(counter));
                    acc.functions(tools.iter().map(|t| t.get("function").unwrap_or(t)), costs);
                }
            }
            "functions" => {
                if let Some(functions) = v.as_array() {
                    let costs = tool_costs.get_or_insert_with(|| ToolCosts::for_counter(counter));
                    acc.functions(functions.iter(), costs);
                }
            }
            "input" | "prompt" => acc.input(v),
            _ => {}
        }
    }
    PromptCount {
        tokens: acc.tokens.max(0) as u64,
        estimated: acc.estimated,
        partial: acc.tokens > acc.stop,
    }
}

/// Token counts of prompt texts already seen, per encoding: a chat resends
/// its system prompt and its whole history on every turn, so most of a
/// prompt's texts were counted before. 8 192 slots (128 KiB), shared by all
/// threads ([`Memo`]: lock-free, a newer text evicts an older one).
fn texts() -> &'static Memo {
    static TEXTS: OnceLock<Memo> = OnceLock::new();
    TEXTS.get_or_init(|| Memo::new(8192))
}

struct Acc<'a> {
    counter: &'a dyn TokenCounter,
    /// The counter's encoding when it is a shared one (the memo's key part);
    /// other counters (tests) are never memoized.
    encoding: Option<Encoding>,
    tokens: i64,
    estimated: bool,
    /// Counting stops once `tokens` is over this (`i64::MAX`: never).
    stop: i64,
}

impl Acc<'_> {
    fn text(&mut self, s: &str) {
        if self.tokens > self.stop {
            return;
        }
        self.tokens += self.count(s) as i64;
    }

    fn count(&self, s: &str) -> u64 {
        // Tokens that would take the total over `stop`: counting ends there.
        let room = usize::try_from(self.stop.saturating_sub(self.tokens)).unwrap_or(usize::MAX);
        // Even a role name: its BPE (split, vocabulary lookup) costs more
        // than a memo hit.
        let Some(encoding) = self.encoding.filter(|_| !s.is_empty()) else {
            return self.counter.count_up_to(s, room) as u64;
        };
        let memo = texts();
        let key = memo.key((encoding, s));
        if let Some(n) = memo.get(key) {
            return n;
        }
        let n = self.counter.count_up_to(s, room);
        // Only whole counts are remembered.
        if n <= room {
            memo.put(key, n as u64);
        }
        n as u64
    }

    fn str_field(&mut self, v: &Value, key: &str) {
        if let Some(s) = v.get(key).and_then(Value::as_str) {
            self.text(s);
        }
    }

    fn message(&mut self, m: &Value) {
        self.tokens += PER_MESSAGE;
        let Some(fields) = m.as_object() else {
            return;
        };
        for (key, v) in fields {
            match key.as_str() {
                "role" => {
                    if let Some(role) = v.as_str() {
                        self.text(role);
                    }
                }
                "content" => self.content(v),
                "name" => {
                    if let Some(name) = v.as_str() {
                        self.text(name);
                        self.tokens += PER_NAME;
                    }
                }
                "tool_calls" => {
                    for call in v.as_array().into_iter().flatten() {
                        self.call(call.get("function").unwrap_or(call));
                    }
                }
                "function_call" => self.call(v),
                _ => {}
            }
        }
    }

    /// A function call: name + arguments.
    fn call(&mut self, f: &Value) {
        self.estimated = true;
        self.str_field(f, "name");
        self.str_field(f, "arguments");
    }

    fn content(&mut self, c: &Value) {
        match c {
            Value::String(s) => self.text(s),
            Value::Array(parts) => parts.iter().for_each(|p| self.part(p)),
            Value::Null => {}
            _ => self.estimated = true,
        }
    }

    fn part(&mut self, p: &Value) {
        match p.get("type").and_then(Value::as_str) {
            Some("text" | "input_text" | "output_text") => self.str_field(p, "text"),
            Some("refusal") => self.str_field(p, "refusal"),
            Some("image_url" | "input_image") => {
                self.estimated = true;
                let detail = p
                    .get("image_url")
                    .and_then(|i| i.get("detail"))
                    .or_else(|| p.get("detail"))
                    .and_then(Value::as_str);
                self.tokens += match detail {
                    Some("low") => IMAGE_TOKENS_LOW,
                    _ => IMAGE_TOKENS_HIGH,
                } as i64;
            }
            _ => match p {
                Value::String(s) => self.text(s),
                _ => self.estimated = true,
            },
        }
    }

    fn functions<'v>(&mut self, fs: impl Iterator<Item = &'v Value>, k: &ToolCosts) {
        let mut any = false;
        for f in fs {
            any = true;
            self.tokens += k.func_init;
            let name = f.get("name").and_then(Value::as_str).unwrap_or("");
            let desc = f.get("description").and_then(Value::as_str).unwrap_or("");
            self.text(&format!("{name}:{}", strip_dot(desc)));
            let props = f
                .get("parameters")
                .and_then(|p| p.get("properties"))
                .and_then(Value::as_object);
            let Some(props) = props.filter(|p| !p.is_empty()) else {
                continue;
            };
            self.tokens += k.prop_init;
            for (key, prop) in props {
                self.tokens += k.prop_key;
                if let Some(items) = prop.get("enum").and_then(Value::as_array) {
                    self.tokens += k.enum_init;
                    for item in items {
                        self.tokens += k.enum_item;
                        self.text(&plain(item));
                    }
                }
                let ty = prop.get("type").map(plain).unwrap_or_default();
                let desc = prop
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.text(&format!("{key}:{ty}:{}", strip_dot(desc)));
                for nested in ["properties", "items"] {
                    if let Some(n) = prop.get(nested) {
                        self.text(&n.to_string());
                    }
                }
            }
        }
        if any {
            self.estimated = true;
            self.tokens += k.func_end;
        }
    }

    fn input(&mut self, v: &Value) {
        match v {
            Value::String(s) => self.text(s),
            Value::Array(items) if items.iter().all(Value::is_number) => {
                self.tokens += items.len() as i64;
            }
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => self.text(s),
                        Value::Array(ids) => self.tokens += ids.len() as i64,
                        Value::Object(_) => {
                            self.estimated = true;
                            self.message(item);
                        }
                        Value::Number(_) => self.tokens += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn strip_dot(s: &str) -> &str {
    s.strip_suffix('.').unwrap_or(s)
}

/// A JSON value as text: strings bare, anything else as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
#[path = "prompt_tests.rs"]
mod tests;
