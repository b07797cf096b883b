//! `sluice-filters`: the gateway's policy logic as pure functions over plain
//! inputs. Nothing here knows about Pingora, sockets or the clock of the
//! process; the gateway (`src/proxy/`) builds a [`facts::RequestFacts`] per
//! request and asks these modules for decisions.
//!
//! - [`path`]: request path normalisation (percent-escapes, `//`, dot segments) before policy and routing.
//! - [`facts`]: the request as policy sees it (method, path, query, headers, parsed body).
//! - [`json_size`]: how many values a JSON body parses into, counted on its bytes.
//! - [`matcher`]: admin API matchers (header/query/path/body × eq…regex) and namespace resolution.
//! - [`pattern`]: regex patterns that are plain literals matched as strings, the rest as regexes.
//! - [`routing`]: proxy rules (regex patterns + priority) and longest-prefix routes.
//! - [`auth`]: API key extraction from the three accepted headers and constant-time lookup.
//! - [`tokens`]: token counting (encodings per model, chat prompts as billed).
//! - [`limits`]: rate, concurrency and token-budget rules over a [`limits::store::CounterStore`].
//! - [`stream`]: SSE metering and truncation of model output.
//! - [`translate`]: OpenAI Chat Completions ⇄ Anthropic Messages bodies and SSE.
//! - [`balance`]: deployment selection strategies, circuit breakers, the bandit report.
//! - [`signing`]: HMAC-SHA256 request signing of external clients.
//! - [`redact`]: masking of sensitive text in answers (JSON and SSE) to external clients.
//! - [`trace`]: W3C `traceparent` and trace sampling.
//! - [`cache`]: which answers a response cache may reuse, and the key of an entry.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod auth;
pub mod balance;
pub mod cache;
pub mod facts;
pub mod json_size;
pub mod limits;
pub mod matcher;
pub mod path;
pub mod pattern;
pub mod redact;
pub mod routing;
pub mod signing;
pub mod stream;
pub mod tokens;
pub mod trace;
pub mod translate;

#[cfg(test)]
mod adversarial_props;
