//! [`mask_json`]: masking of the text fields of a non-streaming answer
//! (OpenAI chat and legacy completions, Anthropic Messages).

use std::borrow::Cow;

use serde_json::Value;

use super::Masker;

/// Masks the text fields of a non-streaming answer in place; `true` when
/// anything changed. OpenAI chat completions: `choices[].message.content`
/// (a string or an array of parts with `text`), `.refusal`,
/// `.tool_calls[].function.arguments` (and the legacy `.function_call`);
/// legacy completions: `choices[].text`; Anthropic Messages:
/// `content[].text` of `type: "text"` blocks. Ids, `model` and `usage` are
/// never touched.
pub fn mask_json(masker: &Masker, body: &mut Value) -> bool {
    if masker.is_empty() {
        return false;
    }
    let mut changed = false;
    if let Some(choices) = body.get_mut("choices").and_then(Value::as_array_mut) {
        for choice in choices {
            changed |= mask_field(masker, choice.get_mut("text"));
            let Some(message) = choice.get_mut("message") else {
                continue;
            };
            match message.get_mut("content") {
                Some(Value::Array(parts)) => {
                    for part in parts {
                        changed |= mask_field(masker, part.get_mut("text"));
                    }
                }
                content => changed |= mask_field(masker, content),
            }
            changed |= mask_field(masker, message.get_mut("refusal"));
            if let Some(calls) = message.get_mut("tool_calls").and_then(Value::as_array_mut) {
                for call in calls {
                    changed |= mask_field(masker, call.pointer_mut("/function/arguments"));
                }
            }
            changed |= mask_field(masker, message.pointer_mut("/function_call/arguments"));
        }
    }
    if let Some(blocks) = body.get_mut("content").and_then(Value::as_array_mut) {
        for block in blocks {
            if block.get("type").and_then(Value::as_str) == Some("text") {
                changed |= mask_field(masker, block.get_mut("text"));
            }
        }
    }
    changed
}

/// Masks `value` when it is a string; `true` when it changed.
fn mask_field(masker: &Masker, value: Option<&mut Value>) -> bool {
    let Some(Value::String(s)) = value else {
        return false;
    };
    match masker.mask(s) {
        Cow::Owned(masked) if masked != *s => {
            *s = masked;
            true
        }
        _ => false,
    }
}
