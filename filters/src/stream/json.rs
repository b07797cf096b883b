//! [`enforce_json`]: the output cap and usage for a complete (non-streaming)
//! chat/completions or legacy completions response body.
//!
//! The output is measured by the provider's `usage.completion_tokens` when
//! present, else by the gateway's own count of every choice's text (the same
//! fields the stream meter counts: `message.reasoning_content`, `reasoning`,
//! `content`, `refusal`, `tool_calls[].function.name`/`arguments`, and the
//! legacy `text`). The body is cut only when both the measure and the own
//! count exceed the cap: if the provider reports more than the cap but the
//! visible text fits (hidden reasoning tokens, a different tokenizer) there
//! is nothing to cut and the body passes unchanged with the provider's usage.
//!
//! Cutting walks the choices in order with one budget for all of them: text
//! that fits is kept, the first field that crosses is cut at a token
//! boundary (`prefix_within`; a function name is kept whole or dropped),
//! everything after it is emptied (`content`/`text` become `""`, other text
//! fields and the tool calls after the cut are removed). Every choice from
//! the crossing one on gets `finish_reason: "length"` and `logprobs: null`
//! (their logprobs would reveal the cut text). `usage.completion_tokens` and
//! `total_tokens`, when the body has a `usage` object, become the own count
//! of what is kept. The rewritten body is re-serialized compactly (object
//! keys in sorted order).

use serde_json::Value;

use super::wire::{count_choice, Budget, Emptied};
use crate::tokens::TokenCounter;

/// What [`enforce_json`] decided for one response body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonOutcome {
    /// The body to send instead of the upstream one (None = send it as is).
    pub rewritten: Option<Vec<u8>>,
    /// `(prompt, completion)` tokens as finally reported to the client (None
    /// when the body is not a chat/completions response).
    pub usage: Option<(u64, u64)>,
    /// The output was cut at the cap.
    pub truncated: bool,
}

/// A complete non-streaming chat/completions response body. If the output
/// exceeds `cap`, cuts it and fixes the usage (see the module docs);
/// otherwise `rewritten: None` and usage as reported (or the own count when
/// absent, prompt = `prompt_tokens`). Non-JSON bodies and unexpected shapes
/// (an error body, no `choices` array) give `rewritten: None, usage: None`.
pub fn enforce_json(
    body: &[u8],
    counter: &dyn TokenCounter,
    cap: Option<u64>,
    prompt_tokens: u64,
) -> JsonOutcome {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return JsonOutcome::default();
    };
    let Some(choices) = v.get("choices").and_then(Value::as_array) else {
        return JsonOutcome::default();
    };
    let own: u64 = choices
        .iter()
        .map(|c| count_choice(c, "message", counter))
        .sum();
    let usage = v.get("usage").filter(|u| u.is_object());
    let reported = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
    let prompt = reported("prompt_tokens").unwrap_or(prompt_tokens);
    let measured = reported("completion_tokens").unwrap_or(own);
    let cap = match cap {
        Some(cap) if measured > cap && own > cap => cap,
        _ => {
            return JsonOutcome {
                rewritten: None,
                usage: Some((prompt, measured)),
                truncated: false,
            }
        }
    };
    let mut budget = Budget::new(counter, cap);
    if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices.iter_mut() {
            budget.cut_choice(choice, "message", Emptied::Blank);
            if budget.crossed {
                if let Some(c) = choice.as_object_mut() {
                    c.insert("finish_reason".into(), Value::from("length"));
                    if c.contains_key("logprobs") {
                        c.insert("logprobs".into(), Value::Null);
                    }
                }
            }
        }
    }
    let completion = budget.kept;
    if let Some(u) = v.get_mut("usage").and_then(Value::as_object_mut) {
        u.insert("completion_tokens".into(), Value::from(completion));
        u.insert(
            "total_tokens".into(),
            Value::from(prompt.saturating_add(completion)),
        );
    }
    JsonOutcome {
        rewritten: serde_json::to_vec(&v).ok(),
        usage: Some((prompt, completion)),
        truncated: true,
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
