//! [`RedisCounterStore`]: the [`CounterStore`] shared by every gateway
//! instance, in Redis (via the `fred` client).
//!
//! # One script, batched
//! Admissions and settlements are calls of one script, `counter.lua`
//! (embedded with `include_str!`, sent as `EVALSHA`; on `NOSCRIPT` — a
//! restarted or flushed Redis — the same call is retried once as `EVAL`,
//! which also caches the script again). The script reads the time with
//! `TIME`, so all instances share the Redis clock, evaluates every check of
//! a request on its own against the state before it and then commits all
//! of them or none, with the same formulas as `LocalCounterStore` (a
//! conformance test compares the two). Redis runs a script atomically, so
//! admissions are exact across any number of instances.
//!
//! The requests of one instance that arrive together share one call, and
//! settlements are queued and ride in the next call
//! ([`super::counter_batch`]): a lone request is sent at once, and under
//! load the round trips and the client's work per request shrink with the
//! batch. [`CounterStore::settle`] returns once the settlements are
//! queued; [`RedisCounterStore::flush`] waits for them to land.
//!
//! # Key layout and TTLs
//! Every key is `{key_prefix}{tag}:{check key}` and is passed to the script
//! in `KEYS`. Against a Redis Cluster every key of a call must live in one
//! slot: the prefix then carries a hash tag (`{sluice}:`; a prefix without
//! one is wrapped in braces, see [`cluster_prefix`]), so every counter
//! lives on one primary.
//!
//! | tag  | check            | type | content                               | expires                        |
//! |------|------------------|------|---------------------------------------|--------------------------------|
//! | `fw` | fixed window     | hash | `s` window start ms, `n` count        | at the end of the window       |
//! | `sw` | sliding window   | zset | one member per admitted unit, score = admission ms | `window_ms` after the last admission |
//! | `tb` | token bucket     | hash | `t` milli-tokens, `ts` last update ms | when the bucket would be full again |
//! | `cc` | concurrency      | zset | lease id, score = lease expiry ms     | when the longest lease expires |
//! | `tk` | token budget     | hash | `s` window start ms, `n` tokens used  | at the end of the window       |
//! | `sp` | spend ledger     | hash | micro-USD per entry, one hash per day | 35 days                        |
//! | `sd` | settlement order | string | the last settlement group an instance applied | one day          |
//!
//! An expired key reads as the initial state (empty window, full bucket, no
//! lease), so the TTLs never change an answer; they only keep Redis from
//! accumulating dead keys. A bucket with `rate_per_sec = 0` never refills
//! and is kept for one day after its last use.
//!
//! Redis Lua numbers are doubles, so every input is clamped to a range where
//! the arithmetic stays exact: counts and limits to 2^50, durations to 2^40
//! ms (about 35 years), bucket sizes and rates to 2^40. Results come back as
//! integers (the script floors every value it returns).
//!
//! # Failure behaviour
//! [`RedisCounterStore::connect`] never fails because Redis is down: it
//! starts the client with an unlimited exponential reconnect policy (100 ms
//! doubling to 2 s), waits at most `command_timeout` for the first
//! connection and returns the store either way. While the client is not
//! connected every call fails at once with [`StoreError`] (the caller applies
//! each rule's `fail_mode`); once the background task reconnects, calls work
//! again. A script call on a live connection fails with [`StoreError`]
//! after `command_timeout` at the latest (an admission queued behind a
//! call in flight waits for it first: twice that at worst) (the client's command timeout, with a
//! Tokio timeout around the whole call as a backstop). Commands are never
//! re-sent after a connection drop (`max_command_attempts = 1`), so an admit
//! that may or may not have run is reported as an error, never counted
//! twice. A connection that stops answering is closed and re-opened after
//! `max(4 × command_timeout, 2 s)`. The connection task runs on the Tokio
//! runtime that called `connect` (it must outlive the store's use).

use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;
use fred::types::scripts::Script;
use sluice_filters::limits::store::{
    Admission, Check, Clock, CounterStore, Settle, StoreError, SystemClock, LEDGER_DAYS,
};
use std::sync::Arc;

use super::counter_batch::{Batcher, Encoded, Link, SettleItem};

/// The admit/settle script.
const SCRIPT: &str = include_str!("counter.lua");

/// Largest count, limit or cost sent to the script.
const MAX_COUNT: u64 = 1 << 50;
/// Largest duration (ms), bucket size or refill rate sent to the script.
const MAX_SPAN: u64 = 1 << 40;
/// Admissions one hand-over adds to a sliding window's log (one sorted-set
/// entry each, added by the script in a loop): bounds the script's time.
/// A stand-in admits at most its share of the limit, far below this for
/// any limit a sliding window (one entry per admission) is fit for.
const MAX_LOGGED: u64 = 1 << 20;
/// Values per check / settlement in `ARGV` (kind + 4 parameters).
const ARGS_PER_ITEM: usize = 5;

/// The Redis-backed [`CounterStore`]; cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct RedisCounterStore {
    client: Client,
    key_prefix: String,
    timeout: Duration,
    batcher: Arc<Batcher>,
}

impl std::fmt::Debug for RedisCounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounterStore")
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .field("state", &self.client.state())
            .finish()
    }
}

fn redis_err(e: Error) -> StoreError {
    StoreError(format!("redis: {e}"))
}

impl RedisCounterStore {
    /// Connects to `url` (`redis://[user:pass@]host:port[/db]`, `rediss://`
    /// is not supported). Fails only on an invalid URL: when Redis is
    /// unreachable the store is returned anyway and keeps reconnecting in
    /// the background, answering [`StoreError`] immediately meanwhile.
    pub async fn connect(
        url: &str,
        key_prefix: &str,
        command_timeout: Duration,
    ) -> Result<Self, StoreError> {
        let timeout = command_timeout.max(Duration::from_millis(1));
        let client = super::redis_client::builder(url, timeout)
            .map_err(StoreError)?
            .build()
            .map_err(redis_err)?;
        if !super::redis_client::start(&client, timeout).await {
            log::warn!(
                "counter store: redis not reachable within {timeout:?}; reconnecting in the background"
            );
        }
        let key_prefix = if client.is_clustered() {
            cluster_prefix(key_prefix)
        } else {
            key_prefix.to_string()
        };
        let batcher = Batcher::start(Link {
            client: client.clone(),
            script: Script::from_lua(SCRIPT),
            source: SCRIPT,
            timeout,
            marker_prefix: format!("{key_prefix}sd:"),
        });
        Ok(Self {
            client,
            key_prefix,
            timeout,
            batcher: Arc::new(batcher),
        })
    }

    /// Waits until every settlement queued so far has landed in Redis (or
    /// was dropped), at most `within`; false when it had not.
    pub async fn flush(&self, within: Duration) -> bool {
        self.batcher.flush(within).await
    }

    /// True when Redis answers a `PING` within the command timeout.
    pub async fn ping(&self) -> bool {
        if !self.client.is_connected() {
            return false;
        }
        matches!(
            tokio::time::timeout(self.timeout, self.client.ping::<String>(None)).await,
            Ok(Ok(_))
        )
    }

    /// True while the client holds a live connection.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// The full Redis key of a check or settlement.
    fn key(&self, tag: &str, key: &str) -> String {
        format!("{}{tag}:{key}", self.key_prefix)
    }

    fn check_args(&self, check: &Check, out: &mut Encoded) {
        // Numbers go as integers and kinds as static strings: no String
        // per argument (the script reads every ARGV value with tonumber).
        let n = |v: u64| Value::Integer(v.min(MAX_COUNT) as i64);
        let span = |v: u64| Value::Integer(v.clamp(1, MAX_SPAN) as i64);
        let kind = Value::from_static_str;
        let none = || Value::from_static_str("");
        let (key, item): (String, [Value; ARGS_PER_ITEM]) = match check {
            Check::Window {
                key,
                limit,
                window_ms,
                sliding,
                cost,
            } => (
                self.key(if *sliding { "sw" } else { "fw" }, key),
                [
                    kind(if *sliding { "S" } else { "W" }),
                    n(*limit),
                    span(*window_ms),
                    n(*cost),
                    none(),
                ],
            ),
            Check::Bucket {
                key,
                rate_per_sec,
                burst,
                cost,
            } => (
                self.key("tb", key),
                [
                    kind("B"),
                    Value::Integer((*rate_per_sec).min(MAX_SPAN) as i64),
                    Value::Integer((*burst).min(MAX_SPAN) as i64),
                    Value::Integer((*cost).min(MAX_SPAN) as i64),
                    none(),
                ],
            ),
            Check::Concurrency {
                key,
                limit,
                lease_id,
                lease_ms,
            } => (
                self.key("cc", key),
                [
                    kind("C"),
                    n(*limit),
                    span(*lease_ms),
                    Value::from(lease_id.as_str()),
                    none(),
                ],
            ),
            Check::Tokens {
                key,
                limit,
                window_ms,
                need,
                want,
                money,
            } => (
                self.key("tk", key),
                [
                    kind(if *money { "U" } else { "T" }),
                    n(*limit),
                    budget_span(*window_ms),
                    n(*need),
                    n(*want),
                ],
            ),
        };
        out.keys.push(key.into());
        out.args.extend(item);
        out.limits.push(match check {
            Check::Window { limit, .. }
            | Check::Concurrency { limit, .. }
            | Check::Tokens { limit, .. } => *limit,
            Check::Bucket { burst, .. } => *burst,
        });
    }

    fn settle_item(&self, op: &Settle, now_ms: u64) -> SettleItem {
        let none = || Value::from_static_str("");
        let (key, item): (String, [Value; ARGS_PER_ITEM]) = match op {
            Settle::Release { key, lease_id } => (
                self.key("cc", key),
                [
                    Value::from_static_str("R"),
                    Value::from(lease_id.as_str()),
                    none(),
                    none(),
                    none(),
                ],
            ),
            Settle::Tokens {
                key,
                window_ms,
                window_start_ms,
                delta,
            }
            // A fixed window's hash is a budget's (window start, count):
            // the same adjustment, on its key.
            | Settle::Requests {
                key,
                window_ms,
                window_start_ms,
                delta,
            } => {
                let max = MAX_COUNT as i64;
                let kind = if matches!(op, Settle::Tokens { .. }) {
                    "tk"
                } else {
                    "fw"
                };
                (
                    self.key(kind, key),
                    [
                        Value::from_static_str("K"),
                        budget_span(*window_ms),
                        Value::Integer((*window_start_ms).min(MAX_COUNT) as i64),
                        Value::Integer((*delta).clamp(-max, max)),
                        none(),
                    ],
                )
            }
            Settle::Logged {
                key,
                window_ms,
                count,
            } => (
                self.key("sw", key),
                [
                    Value::from_static_str("A"),
                    Value::Integer((*window_ms).clamp(1, MAX_SPAN) as i64),
                    Value::Integer((*count).min(MAX_LOGGED) as i64),
                    none(),
                    none(),
                ],
            ),
            Settle::Spend { day, entry, micros } => (
                self.key("sp", day),
                [
                    Value::from_static_str("L"),
                    Value::from(entry.as_str()),
                    Value::Integer((*micros).min(MAX_COUNT) as i64),
                    Value::Integer((LEDGER_DAYS * 86_400_000) as i64),
                    none(),
                ],
            ),
        };
        SettleItem::new(op, key.into(), item, now_ms)
    }
}

#[async_trait]
impl CounterStore for RedisCounterStore {
    async fn admit(&self, checks: &[Check]) -> Result<Admission, StoreError> {
        if checks.is_empty() {
            return Ok(Admission {
                admitted: true,
                statuses: Default::default(),
            });
        }
        if !self.client.is_connected() {
            return Err(StoreError(format!(
                "redis not connected ({:?})",
                self.client.state()
            )));
        }
        let mut req = Encoded {
            keys: Vec::with_capacity(checks.len()),
            args: Vec::with_capacity(checks.len() * ARGS_PER_ITEM),
            limits: Default::default(),
        };
        for check in checks {
            self.check_args(check, &mut req);
        }
        self.batcher.admit(req).await
    }

    async fn spend(&self, day: &str) -> Result<Vec<(String, u64)>, StoreError> {
        if !self.client.is_connected() {
            return Err(StoreError("redis not connected".into()));
        }
        // This instance's own settlements first (read your writes).
        self.flush(self.timeout).await;
        let key = self.key("sp", day);
        let call = self
            .client
            .hgetall::<std::collections::HashMap<String, u64>, _>(key);
        let map = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| StoreError("redis: no answer in time".into()))?
            .map_err(|e| StoreError(e.to_string()))?;
        let mut out: Vec<(String, u64)> = map.into_iter().collect();
        out.sort();
        Ok(out)
    }

    /// Queues the settlements for the next call (see
    /// [`super::counter_batch`]): they land in order, retried while Redis
    /// is unreachable.
    async fn settle(&self, ops: &[Settle]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let now = SystemClock.now_ms();
        let items = ops.iter().map(|op| self.settle_item(op, now)).collect();
        self.batcher.settle(items);
        Ok(())
    }
}

/// A token budget's window as the script reads it: 0 (the calendar
/// month) as is, any other length clamped like every span.
fn budget_span(window_ms: u64) -> Value {
    match window_ms {
        sluice_filters::limits::store::CALENDAR_MONTH => Value::Integer(0),
        w => Value::Integer(w.clamp(1, MAX_SPAN) as i64),
    }
}

/// A key prefix for a Redis Cluster: kept when it holds a hash tag
/// (`{…}` with something between the braces), else wrapped in braces so
/// that every key of the store hashes to one slot (`sluice:` →
/// `{sluice:}`).
pub fn cluster_prefix(prefix: &str) -> String {
    let tagged = prefix
        .find('{')
        .and_then(|open| prefix[open + 1..].find('}').map(|close| close > 0))
        .unwrap_or(false);
    if tagged {
        prefix.to_string()
    } else if prefix.is_empty() {
        "{sluice}".to_string()
    } else {
        format!("{{{prefix}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_prefixes_carry_a_hash_tag() {
        assert_eq!(cluster_prefix("sluice:"), "{sluice:}");
        assert_eq!(cluster_prefix("{sluice}:"), "{sluice}:");
        assert_eq!(cluster_prefix("a{b}c:"), "a{b}c:");
        assert_eq!(cluster_prefix("a{}:"), "{a{}:}");
        assert_eq!(cluster_prefix(""), "{sluice}");
    }
}
