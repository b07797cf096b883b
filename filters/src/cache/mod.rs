//! Response-cache policy as pure functions: whether a request's answer may
//! be reused ([`cacheable`]), what the request asked of the cache
//! ([`directive`]), the key of its entry ([`key`]), how fresh an entry is
//! ([`freshness`]) and stored answers between their streamed and JSON
//! shapes ([`replay`]). The cache itself (memory and Redis tiers,
//! coalescing) lives in the gateway's `src/cache/`; this is the part every
//! tier and every instance must agree on.
//!
//! **The key** hashes (SHA-256) a version tag, the namespace, the public
//! model, the operation, the caller's isolation scope (the key name, when
//! the namespace isolates entries per key; never a secret) and the request
//! body in canonical form: object members sorted by name, no insignificant
//! whitespace, numbers with an integral value written as integers (`0.0`
//! and `0` are one value), and without the members that cannot change the
//! answer ([`IGNORED`]: streaming, caller labels). Every other member is
//! kept — an unknown parameter might change the answer, and a cache that
//! answers a different question is worse than a miss.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Embeddings,
}

impl Operation {
    fn tag(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// Request members that never change the answer: how it is delivered
/// (`stream`, `stream_options`), the model (the key has the public name
/// instead), and labels for the caller's own bookkeeping.
pub const IGNORED: &[&str] = &[
    "model",
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "session_id",
    "service_tier",
];

/// Where an entry belongs: two requests share an entry only when all of
/// these are equal.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub namespace: &'a str,
    /// The public model name the client asked for.
    pub model: &'a str,
    pub operation: Operation,
    /// The key name when the namespace isolates entries per key.
    pub isolation: Option<&'a str>,
    /// The output limit the client asked for (`max_tokens` or
    /// `max_completion_tokens`). The body's own members are not hashed:
    /// the gateway may have lowered them to fit a budget, and a request
    /// must keep its key however much budget is left.
    pub max_output: Option<u64>,
}

/// Output limits: hashed as [`Scope::max_output`], not from the body.
const OUTPUT_LIMITS: &[&str] = &["max_tokens", "max_completion_tokens"];

/// The cache key of `body` (a JSON object) in `scope`.
pub fn key(scope: &Scope<'_>, body: &Value) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        "sluice-cache-v1",
        scope.namespace,
        scope.model,
        scope.operation.tag(),
        scope.isolation.unwrap_or(""),
        &scope.max_output.map_or(String::new(), |n| n.to_string()),
    ] {
        // Length-prefixed: no two scopes write the same bytes.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let mut text = String::new();
    match body {
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| {
                    !IGNORED.contains(&k.as_str()) && !OUTPUT_LIMITS.contains(&k.as_str())
                })
                .collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            text.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                write_string(&mut text, k);
                text.push(':');
                canonical(&mut text, v);
            }
            text.push('}');
        }
        other => canonical(&mut text, other),
    }
    h.update(text.as_bytes());
    h.finalize().into()
}

/// `v` in canonical form (see the module docs).
fn canonical(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (None, None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                let _ = write!(out, "{}", f as i64);
            }
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                canonical(out, v);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&Value::String(s.to_string()).to_string());
}

/// Why a request's answer is not reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotCacheable {
    /// Sampling is not fixed: neither `temperature: 0` nor a `seed`.
    Sampled,
    /// Several choices (`n` above 1) of a sampled request.
    Choices,
    /// It offers tools or carries tool results, and the namespace does not
    /// cache those.
    Tools,
}

/// Whether a request's answer may be stored and reused. Embeddings always
/// may; a chat request when its output is fixed by its parameters
/// (`temperature: 0`, or a `seed`) unless `any_sampling` says every
/// request may, and when it involves no tools unless `tools` allows them.
pub fn cacheable(
    operation: Operation,
    body: &Value,
    any_sampling: bool,
    tools: bool,
) -> Result<(), NotCacheable> {
    if operation == Operation::Embeddings {
        return Ok(());
    }
    let fixed = body.get("temperature").and_then(Value::as_f64) == Some(0.0)
        || body.get("seed").is_some_and(|s| !s.is_null());
    if !fixed && !any_sampling {
        return Err(NotCacheable::Sampled);
    }
    let n = body.get("n").and_then(Value::as_u64).unwrap_or(1);
    if n > 1 && !fixed && !any_sampling {
        return Err(NotCacheable::Choices);
    }
    let with_tools = ["tools", "functions"].iter().any(|f| {
        body.get(f)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    }) || body
        .get("messages")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter().any(|msg| {
                matches!(
                    msg.get("role").and_then(Value::as_str),
                    Some("tool" | "function")
                ) || msg.get("tool_calls").is_some_and(|c| !c.is_null())
            })
        });
    if with_tools && !tools {
        return Err(NotCacheable::Tools);
    }
    Ok(())
}

/// What a request asked of the cache through `Cache-Control`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Answer from the cache when it can, store the answer otherwise.
    Use,
    /// `no-cache` (or `max-age=0`): do not answer from the cache; the
    /// fresh answer replaces the entry.
    Refresh,
    /// `no-store`: neither read nor write the cache.
    Bypass,
}

/// The directive of a request's `Cache-Control` value (several header
/// lines joined with `,`); directives are matched without regard to case
/// and whitespace, unknown ones are ignored.
pub fn directive(cache_control: Option<&str>) -> Directive {
    let mut out = Directive::Use;
    for part in cache_control.unwrap_or("").split(',') {
        let part = part.trim();
        let (name, value) = match part.split_once('=') {
            Some((n, v)) => (n.trim(), v.trim().trim_matches('"')),
            None => (part, ""),
        };
        if name.eq_ignore_ascii_case("no-store") {
            return Directive::Bypass;
        }
        if name.eq_ignore_ascii_case("no-cache")
            || (name.eq_ignore_ascii_case("max-age") && value == "0")
        {
            out = Directive::Refresh;
        }
    }
    out
}

/// How an entry stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within its time to live: answered from.
    Fresh,
    /// Past it but within the grace period: answered from only when the
    /// model cannot answer.
    Stale,
    /// Past both: unusable.
    Expired,
}

/// The standing at `now_ms` of an entry stored at `stored_ms` that lives
/// `ttl_ms`, then `stale_ms` more as a stale fallback. A clock that went
/// backwards counts as fresh.
pub fn freshness(stored_ms: u64, now_ms: u64, ttl_ms: u64, stale_ms: u64) -> Freshness {
    let age = now_ms.saturating_sub(stored_ms);
    if age < ttl_ms {
        Freshness::Fresh
    } else if age < ttl_ms.saturating_add(stale_ms) {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
}

pub mod replay;

#[cfg(test)]
mod tests;
