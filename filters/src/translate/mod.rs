//! Wire-format translation between the OpenAI Chat Completions API and the
//! Anthropic Messages API, both ways, as pure functions over
//! [`serde_json::Value`] (bodies) and incremental byte translators (SSE).
//!
//! - [`request`]: request bodies ([`openai_to_anthropic`],
//!   [`anthropic_to_openai`]; one private submodule per direction).
//! - [`response`]: non-streaming response bodies and error bodies.
//! - [`stream`]: [`AnthropicToOpenAiStream`] and [`OpenAiToAnthropicStream`],
//!   chunk-in/bytes-out SSE translators shaped like the stream meter.
//!
//! Shared here: [`TranslateError`] and the stop-reason and usage mappings
//! used by both the body and the stream translators.
//!
//! **Lossy by design** (each direction keeps what the other API can say):
//! system/developer messages anywhere in an OpenAI conversation are hoisted
//! into Anthropic's single `system`; message `name`s, penalties, seeds,
//! `logprobs`, `response_format`, `top_k`, `thinking` and `cache_control`
//! markers are dropped (`n` above 1 is refused); OpenAI temperatures above
//! 1 are capped at 1; Anthropic `cache_creation_input_tokens` are folded
//! into OpenAI `prompt_tokens` (only cache reads have an OpenAI field,
//! `prompt_tokens_details.cached_tokens`); `stop_sequence` and `end_turn`
//! both become `stop` (and `stop` comes back as `end_turn`). The functions'
//! docs list the rest.

pub mod request;
pub mod response;
pub mod stream;

pub use request::{anthropic_to_openai, openai_to_anthropic};
pub use response::{
    anthropic_error_to_openai, anthropic_response_to_openai, openai_error_to_anthropic,
    openai_response_to_anthropic,
};
pub use stream::{AnthropicToOpenAiStream, OpenAiToAnthropicStream};

use serde_json::{json, Map, Value};

/// Why a body could not be translated; every variant names the offending
/// field as a path such as `messages[2].tool_calls[0].function.arguments`
/// (`$` is the body itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// A required field is absent (or null).
    #[error("{path}: missing required field")]
    Missing {
        /// Path of the field.
        path: String,
    },
    /// A field has the wrong JSON type or an unknown value.
    #[error("{path}: expected {expected}")]
    Invalid {
        /// Path of the field.
        path: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A string that must hold JSON (tool call arguments) does not parse.
    #[error("{path}: invalid JSON: {reason}")]
    Json {
        /// Path of the field.
        path: String,
        /// The parser's message.
        reason: String,
    },
    /// A valid feature of the source API the target API cannot express.
    #[error("{path}: not supported by the target API: {what}")]
    Unsupported {
        /// Path of the field.
        path: String,
        /// What is not supported.
        what: String,
    },
}

impl TranslateError {
    /// The path of the offending field.
    pub fn path(&self) -> &str {
        match self {
            TranslateError::Missing { path }
            | TranslateError::Invalid { path, .. }
            | TranslateError::Json { path, .. }
            | TranslateError::Unsupported { path, .. } => path,
        }
    }

    pub(crate) fn invalid(path: impl Into<String>, expected: &'static str) -> Self {
        TranslateError::Invalid {
            path: path.into(),
            expected,
        }
    }

    pub(crate) fn unsupported(path: impl Into<String>, what: impl Into<String>) -> Self {
        TranslateError::Unsupported {
            path: path.into(),
            what: what.into(),
        }
    }
}

/// The body as an object, or an error naming `$`.
pub(crate) fn as_object(body: &Value) -> Result<&Map<String, Value>, TranslateError> {
    body.as_object()
        .ok_or_else(|| TranslateError::invalid("$", "a JSON object"))
}

/// Tool call `arguments` (a JSON string) → a tool input object (`""` →
/// `{}`); errors name `path`.
pub(crate) fn parse_arguments(args: &str, path: String) -> Result<Value, TranslateError> {
    if args.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(TranslateError::invalid(path, "a JSON object")),
        Err(e) => Err(TranslateError::Json {
            path,
            reason: e.to_string(),
        }),
    }
}

/// Anthropic `stop_reason` → OpenAI `finish_reason` (unknown → `stop`).
pub fn finish_reason_for(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` → Anthropic `stop_reason` (unknown → `end_turn`).
pub fn stop_reason_for(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Token counts of an Anthropic `usage` object (absent fields are 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AnthropicUsage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
}

impl AnthropicUsage {
    /// Reads the fields present in `usage`, keeping the others.
    pub(crate) fn update(&mut self, usage: &Value) {
        let get = |k: &str| usage.get(k).and_then(Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.input = n;
        }
        if let Some(n) = get("output_tokens") {
            self.output = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.cache_creation = n;
        }
    }

    /// OpenAI `prompt_tokens`: everything the prompt was billed as.
    pub(crate) fn prompt(&self) -> u64 {
        self.input
            .saturating_add(self.cache_read)
            .saturating_add(self.cache_creation)
    }

    /// The OpenAI `usage` object.
    pub(crate) fn to_openai(self) -> Value {
        json!({
            "prompt_tokens": self.prompt(),
            "completion_tokens": self.output,
            "total_tokens": self.prompt().saturating_add(self.output),
            "prompt_tokens_details": {"cached_tokens": self.cache_read},
        })
    }

    /// From an OpenAI `usage` object: cached prompt tokens become cache
    /// reads, the rest input.
    pub(crate) fn from_openai(usage: &Value) -> Self {
        let get = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        let prompt = get(usage.get("prompt_tokens"));
        let cached = get(usage
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")))
        .min(prompt);
        AnthropicUsage {
            input: prompt - cached,
            output: get(usage.get("completion_tokens")),
            cache_read: cached,
            cache_creation: 0,
        }
    }

    /// The Anthropic `usage` object.
    pub(crate) fn to_anthropic(self) -> Value {
        json!({
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_creation,
        })
    }
}

#[cfg(test)]
mod props;
