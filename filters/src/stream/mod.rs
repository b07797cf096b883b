//! Streaming output metering and truncation (SSE) and the non-streaming
//! equivalent.
//!
//! - [`sse`]: incremental `text/event-stream` parser that keeps each event's
//!   raw bytes.
//! - [`meter`]: [`StreamMeter`], which counts the output tokens of an OpenAI
//!   chat/completions stream, cuts it at a token cap and rewrites the usage
//!   the client sees.
//! - [`json`]: [`enforce_json`], the same policy for a non-streaming body.
//! - [`usage_tail`]: [`UsageTail`], the provider-reported usage of a body
//!   nobody meters (token metrics), read from its last bytes.
//!
//! Private helpers: `scan` (the meter's in-place chunk scanner and its
//! cache), `wire` (the OpenAI shapes: token budget walk over a
//! `serde_json::Value`, synthesized chunks), `swar` (word-at-a-time byte
//! search).

pub mod json;
pub mod meter;
mod scan;
pub mod sse;
pub mod usage_tail;
mod wire;

#[cfg(test)]
mod testutil;

pub use json::{enforce_json, enforce_json_sized, JsonOutcome};
pub use meter::{MeterOptions, StreamMeter, StreamUsage};
pub use sse::{SseEvent, SseParser, DEFAULT_MAX_EVENT_BYTES};
pub use usage_tail::UsageTail;
