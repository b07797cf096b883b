//! Request bodies: OpenAI Chat Completions ⇄ Anthropic Messages.
//!
//! [`openai_to_anthropic`] serves OpenAI clients in front of an Anthropic
//! upstream; [`anthropic_to_openai`] serves Claude clients in front of an
//! OpenAI-compatible upstream. Fields the target API has no place for are
//! dropped (see the functions); features it cannot express at all are
//! errors naming the field.
//!
//! - `to_anthropic`: [`openai_to_anthropic`];
//! - `to_openai`: [`anthropic_to_openai`];
//! - here: field helpers shared by both (paths in errors).

mod to_anthropic;
mod to_openai;

pub use to_anthropic::openai_to_anthropic;
pub use to_openai::anthropic_to_openai;

use serde_json::{Map, Value};

use super::TranslateError;

type R<T> = Result<T, TranslateError>;

fn non_null<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn required_array<'a>(obj: &'a Map<String, Value>, key: &str, p: &str) -> R<&'a Vec<Value>> {
    non_null(obj, key)
        .ok_or_else(|| TranslateError::Missing { path: p.into() })?
        .as_array()
        .ok_or_else(|| TranslateError::invalid(p, "an array"))
}

fn u64_at(v: &Value, p: &str) -> R<u64> {
    v.as_u64()
        .ok_or_else(|| TranslateError::invalid(p, "a non-negative integer"))
}

/// `v[key]` as a string; missing or not a string → error at `p.key`.
fn str_at<'a>(v: &'a Value, key: &str, p: &str) -> R<&'a str> {
    match v.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(TranslateError::Missing {
            path: format!("{p}.{key}"),
        }),
        Some(_) => Err(TranslateError::invalid(format!("{p}.{key}"), "a string")),
    }
}

/// Copies non-null `obj[from]` to `out[to]` when `ok`, else errors.
fn copy_typed(
    obj: &Map<String, Value>,
    out: &mut Map<String, Value>,
    from: &str,
    to: &str,
    ok: fn(&Value) -> bool,
    expected: &'static str,
) -> R<()> {
    if let Some(v) = non_null(obj, from) {
        if !ok(v) {
            return Err(TranslateError::invalid(from, expected));
        }
        out.insert(to.into(), v.clone());
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
