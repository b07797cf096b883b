//! [`RedisCounterStore`]: the [`CounterStore`] shared by every gateway
//! instance, in Redis (via the `fred` client).
//!
//! # One script, one round trip
//! Every [`CounterStore::admit`] is a single `EVALSHA` of `counter.lua`
//! (embedded with `include_str!`; on `NOSCRIPT` — a restarted or flushed
//! Redis — the same call is retried once as `EVAL`, which also caches the
//! script again). The script reads the time with `TIME`, so all instances
//! share the Redis clock, evaluates every check on its own against the state
//! before the call and then commits all of them or none, with the same
//! formulas as `LocalCounterStore` (a conformance test compares the two).
//! [`CounterStore::settle`] is one more call of the same script in `settle`
//! mode. Redis runs a script atomically, so admissions are exact across any
//! number of instances.
//!
//! # Key layout and TTLs
//! Every key is `{key_prefix}{tag}:{check key}` and is passed to the script
//! in `KEYS` (for Redis Cluster put a hash tag in the prefix, e.g.
//! `"{sluice}:"`, so that one request's keys share a slot):
//!
//! | tag  | check            | type | content                               | expires                        |
//! |------|------------------|------|---------------------------------------|--------------------------------|
//! | `fw` | fixed window     | hash | `s` window start ms, `n` count        | at the end of the window       |
//! | `sw` | sliding window   | zset | one member per admitted unit, score = admission ms | `window_ms` after the last admission |
//! | `tb` | token bucket     | hash | `t` milli-tokens, `ts` last update ms | when the bucket would be full again |
//! | `cc` | concurrency      | zset | lease id, score = lease expiry ms     | when the longest lease expires |
//! | `tk` | token budget     | hash | `s` window start ms, `n` tokens used  | at the end of the window       |
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
//! again. A call on a live connection fails with [`StoreError`] after
//! `command_timeout` at the latest (the client's command timeout, with a
//! Tokio timeout around the whole call as a backstop). Commands are never
//! re-sent after a connection drop (`max_command_attempts = 1`), so an admit
//! that may or may not have run is reported as an error, never counted
//! twice. A connection that stops answering is closed and re-opened after
//! `max(4 × command_timeout, 2 s)`. The connection task runs on the Tokio
//! runtime that called `connect` (it must outlive the store's use).

use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;
use fred::types::config::UnresponsiveConfig;
use fred::types::scripts::Script;
use sluice_filters::limits::store::{
    Admission, Check, CheckStatus, CounterStore, Settle, StoreError, LEDGER_DAYS,
};

/// The admit/settle script.
const SCRIPT: &str = include_str!("counter.lua");

/// Largest count, limit or cost sent to the script.
const MAX_COUNT: u64 = 1 << 50;
/// Largest duration (ms), bucket size or refill rate sent to the script.
const MAX_SPAN: u64 = 1 << 40;
/// Values per check / settlement in `ARGV` (kind + 4 parameters).
const ARGS_PER_ITEM: usize = 5;
/// Values per check status in the script's reply.
const REPLY_PER_CHECK: usize = 7;

/// The Redis-backed [`CounterStore`]; cheap to share behind an `Arc`.
#[derive(Clone)]
pub struct RedisCounterStore {
    client: Client,
    script: Script,
    key_prefix: String,
    timeout: Duration,
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
        if url.starts_with("rediss:") {
            return Err(StoreError(
                "rediss:// (TLS) is not supported by this build".to_string(),
            ));
        }
        let mut config =
            Config::from_url(url).map_err(|e| StoreError(format!("invalid redis url: {e}")))?;
        // Run the reconnect policy for the first connection too.
        config.fail_fast = false;
        let unresponsive = (timeout * 4).max(Duration::from_secs(2));
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = timeout.max(Duration::from_millis(500));
                c.internal_command_timeout = timeout.max(Duration::from_millis(500));
                c.max_command_attempts = 1;
                c.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..TcpConfig::default()
                };
                c.unresponsive = UnresponsiveConfig {
                    max_timeout: Some(unresponsive),
                    interval: unresponsive / 4,
                };
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2000, 2))
            .build()
            .map_err(redis_err)?;
        // The connection task runs (and reconnects) for the client's lifetime.
        let _task = client.connect();
        match tokio::time::timeout(timeout, client.wait_for_connect()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("counter store: redis not reachable yet ({e}); reconnecting"),
            Err(_) => log::warn!(
                "counter store: redis not reachable within {timeout:?}; reconnecting in the background"
            ),
        }
        Ok(Self {
            client,
            script: Script::from_lua(SCRIPT),
            key_prefix: key_prefix.to_string(),
            timeout,
        })
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

    /// One script call: `EVALSHA`, then `EVAL` on `NOSCRIPT`, all within the
    /// command timeout and only on a live connection.
    async fn run(&self, keys: Vec<String>, args: Vec<String>) -> Result<Vec<i64>, StoreError> {
        // Keys and values hold shared buffers: the NOSCRIPT retry clones cheaply.
        let keys: Vec<Key> = keys.into_iter().map(Key::from).collect();
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        if !self.client.is_connected() {
            return Err(StoreError(format!(
                "redis not connected ({:?})",
                self.client.state()
            )));
        }
        let call = async {
            let first: Result<Vec<i64>, Error> = self
                .client
                .evalsha(self.script.sha1().clone(), keys.clone(), args.clone())
                .await;
            match first {
                Err(e) if e.details().starts_with("NOSCRIPT") => {
                    self.client.eval(SCRIPT, keys, args).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(redis_err),
            Err(_) => Err(StoreError(format!(
                "redis: no answer within {:?}",
                self.timeout
            ))),
        }
    }

    fn check_args(&self, check: &Check, keys: &mut Vec<String>, args: &mut Vec<String>) {
        let n = |v: u64| v.min(MAX_COUNT).to_string();
        let span = |v: u64| v.clamp(1, MAX_SPAN).to_string();
        let (key, item): (String, [String; ARGS_PER_ITEM]) = match check {
            Check::Window {
                key,
                limit,
                window_ms,
                sliding,
                cost,
            } => (
                self.key(if *sliding { "sw" } else { "fw" }, key),
                [
                    if *sliding { "S" } else { "W" }.to_string(),
                    n(*limit),
                    span(*window_ms),
                    n(*cost),
                    String::new(),
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
                    "B".to_string(),
                    (*rate_per_sec).min(MAX_SPAN).to_string(),
                    (*burst).min(MAX_SPAN).to_string(),
                    (*cost).min(MAX_SPAN).to_string(),
                    String::new(),
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
                    "C".to_string(),
                    n(*limit),
                    span(*lease_ms),
                    lease_id.clone(),
                    String::new(),
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
                    if *money { "U" } else { "T" }.to_string(),
                    n(*limit),
                    budget_span(*window_ms),
                    n(*need),
                    n(*want),
                ],
            ),
        };
        keys.push(key);
        args.extend(item);
    }

    fn settle_args(&self, op: &Settle, keys: &mut Vec<String>, args: &mut Vec<String>) {
        let (key, item): (String, [String; ARGS_PER_ITEM]) = match op {
            Settle::Release { key, lease_id } => (
                self.key("cc", key),
                [
                    "R".to_string(),
                    lease_id.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            ),
            Settle::Tokens {
                key,
                window_ms,
                window_start_ms,
                delta,
            } => {
                let max = MAX_COUNT as i64;
                (
                    self.key("tk", key),
                    [
                        "K".to_string(),
                        budget_span(*window_ms),
                        (*window_start_ms).min(MAX_COUNT).to_string(),
                        (*delta).clamp(-max, max).to_string(),
                        String::new(),
                    ],
                )
            }
            Settle::Spend { day, entry, micros } => (
                self.key("sp", day),
                [
                    "L".to_string(),
                    entry.clone(),
                    (*micros).min(MAX_COUNT).to_string(),
                    (LEDGER_DAYS * 86_400_000).to_string(),
                    String::new(),
                ],
            ),
        };
        keys.push(key);
        args.extend(item);
    }
}

/// Decodes the admit script's reply: `admitted`, then seven integers per
/// check (see `counter.lua`).
fn decode_admission(reply: &[i64], checks: usize) -> Result<Admission, StoreError> {
    if reply.len() != 1 + checks * REPLY_PER_CHECK {
        return Err(StoreError(format!(
            "redis: unexpected script reply ({} values for {checks} checks)",
            reply.len()
        )));
    }
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let statuses = reply[1..]
        .chunks_exact(REPLY_PER_CHECK)
        .map(|c| CheckStatus {
            passed: c[0] == 1,
            limit: u(c[1]),
            remaining: u(c[2]),
            retry_after_ms: u(c[3]),
            reset_ms: u(c[4]),
            granted: u(c[5]),
            window_start_ms: u(c[6]),
        })
        .collect();
    Ok(Admission {
        admitted: reply[0] == 1,
        statuses,
    })
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
        let mut keys = Vec::with_capacity(checks.len());
        let mut args = Vec::with_capacity(1 + checks.len() * ARGS_PER_ITEM);
        args.push("admit".to_string());
        for check in checks {
            self.check_args(check, &mut keys, &mut args);
        }
        let reply = self.run(keys, args).await?;
        decode_admission(&reply, checks.len())
    }

    async fn spend(&self, day: &str) -> Result<Vec<(String, u64)>, StoreError> {
        if !self.client.is_connected() {
            return Err(StoreError("redis not connected".into()));
        }
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

    async fn settle(&self, ops: &[Settle]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(ops.len());
        let mut args = Vec::with_capacity(1 + ops.len() * ARGS_PER_ITEM);
        args.push("settle".to_string());
        for op in ops {
            self.settle_args(op, &mut keys, &mut args);
        }
        // The reply (how many settlements applied) is informational.
        let _applied: Vec<i64> = self.run(keys, args).await?;
        Ok(())
    }
}

/// A token budget's window as the script reads it: 0 (the calendar
/// month) as is, any other length clamped like every span.
fn budget_span(window_ms: u64) -> String {
    match window_ms {
        sluice_filters::limits::store::CALENDAR_MONTH => "0".into(),
        w => w.clamp(1, MAX_SPAN).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_reply() {
        let a = decode_admission(&[1, 1, 10, 9, 0, 500, 0, 1000], 1).unwrap();
        assert!(a.admitted);
        assert_eq!(
            a.statuses.as_slice(),
            [CheckStatus {
                passed: true,
                limit: 10,
                remaining: 9,
                retry_after_ms: 0,
                reset_ms: 500,
                granted: 0,
                window_start_ms: 1000,
            }]
        );
        assert!(decode_admission(&[1, 1], 1).is_err());
    }
}
