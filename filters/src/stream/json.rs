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
//!
//! Fast path: a body whose `usage.completion_tokens` is within the cap is
//! only scanned for its usage (no `Value` tree, no own count), since the
//! provider's count alone then says there is nothing to cut; the body
//! passes unchanged. The usage is read from the body's end when it is the
//! outermost object's last `usage` key (where OpenAI writes it), so the
//! choices are not even scanned.
//!
//! [`enforce_json_sized`] keeps the body's length, so the gateway can keep
//! the upstream `content-length` and send header and body in one write.

use serde_json::Value;

use super::scan::{scan_usage, usage_at_end};
use super::wire::{count_choice, Budget, Emptied, Usage};
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
    if let Some(usage) = within_cap(body, cap) {
        let prompt = usage.prompt_tokens.unwrap_or(prompt_tokens);
        return JsonOutcome {
            rewritten: None,
            usage: usage.completion_tokens.map(|c| (prompt, c)),
            truncated: false,
        };
    }
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

/// The reported usage when the body is a response whose reported
/// completion is within `cap`: read from the end when `usage` is the
/// outermost object's last member or followed only by other members
/// ([`usage_at_end`]: OpenAI's order), else by the stream meter's scanner
/// over the whole body (an object with a `choices` array, nothing built).
/// Any other shape (no `choices` array, a count that is not a non-negative
/// integer, text that is not UTF-8) takes the full path.
fn within_cap(body: &[u8], cap: Option<u64>) -> Option<Usage> {
    let usage = match usage_at_end(body) {
        Some(usage) => usage,
        None => scan_usage(std::str::from_utf8(body).ok()?)??,
    };
    let completion = usage.completion_tokens?;
    (completion <= cap.unwrap_or(u64::MAX)).then_some(usage)
}

/// How many more tokens [`enforce_json_sized`] cuts, one at a time, to fit
/// a rewritten body into the announced length.
const FIT_ATTEMPTS: u64 = 8;

/// [`enforce_json`] for a body whose length the client was already
/// promised (`content-length` sent ahead of the body): a rewritten body is
/// padded with trailing spaces (JSON whitespace) to exactly `body.len()`.
/// Cutting nearly always shortens the body, but a cut of one short token
/// while `finish_reason` grows from `"stop"` to `"length"` can lengthen it;
/// then one more token is cut (up to `FIT_ATTEMPTS` times: the client
/// gets fewer tokens than the cap allows, never more). If it still does
/// not fit, the upstream body passes unchanged with its usage as measured.
pub fn enforce_json_sized(
    body: &[u8],
    counter: &dyn TokenCounter,
    cap: Option<u64>,
    prompt_tokens: u64,
) -> JsonOutcome {
    let mut outcome = enforce_json(body, counter, cap, prompt_tokens);
    let Some(cap) = cap else {
        return outcome;
    };
    for fewer in 1..=FIT_ATTEMPTS {
        match &mut outcome.rewritten {
            None => return outcome,
            Some(out) if out.len() <= body.len() => {
                out.resize(body.len(), b' ');
                return outcome;
            }
            Some(_) => {}
        }
        outcome = enforce_json(
            body,
            counter,
            Some(cap.saturating_sub(fewer)),
            prompt_tokens,
        );
    }
    if let Some(out) = outcome.rewritten.as_mut().filter(|o| o.len() <= body.len()) {
        out.resize(body.len(), b' ');
        return outcome;
    }
    // Unreachable in practice: send what the upstream sent and charge it.
    enforce_json(body, counter, None, prompt_tokens)
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
