//! The batching pump of [`super::RedisCounterStore`]: the admissions of
//! every concurrent request on this instance, and the settlements queued
//! since the last call, go to Redis as one script call (`counter.lua`,
//! mode `batch`).
//!
//! # Ticks
//! One call is in flight at a time. A request that finds the pump idle is
//! sent at once (a lone request never waits for a tick); requests arriving
//! while a call is in flight wait for it to return and then go together
//! in the next one, up to [`MAX_REQUESTS`] per call. Redis runs the script
//! atomically and admits the requests of a batch one after another, each
//! against the state the ones before it left: exactly what separate calls
//! would give, for a fraction of the round trips and of the client's work.
//!
//! # Settlements
//! [`Batcher::settle`] queues and returns; the next call carries every
//! queued settlement, coalesced (token deltas of one budget window and
//! ledger entries of one day summed), ahead of that call's admissions, so
//! a settlement queued before an admission is applied before it. A call
//! that fails keeps its settlements as they were, under the same sequence
//! number, and retries them with a backoff until they land. Groups go one
//! at a time in increasing order and the script keeps the last number each
//! instance applied (`{prefix}sd:{instance}`, one key per instance): a call
//! that did run but whose answer was lost is never applied twice. A
//! settlement is dropped, and counted, only when it can no longer matter
//! (its budget window ended, a lease older than [`RELEASE_MAX_AGE`] which
//! Redis expired by itself) or when [`MAX_PENDING`] are already waiting.
//!
//! # Failures
//! While the client is not connected, admissions fail at once (each rule's
//! `fail_mode` applies) and settlements wait. A call that fails fails
//! every admission in it; commands are never re-sent by the client
//! (`max_command_attempts = 1`), so an admission is never counted twice.

use fred::prelude::*;
use fred::types::scripts::Script;
use sluice_filters::limits::store::{
    budget_window, Admission, CheckStatus, Settle, StoreError, SystemClock,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Notify};

/// Requests admitted per script call at most (the rest wait for the next).
pub const MAX_REQUESTS: usize = 128;
/// Settlements waiting at most; beyond, new ones are dropped (counted).
pub const MAX_PENDING: usize = 65_536;
/// A lease release older than this is dropped: Redis expired the lease.
pub const RELEASE_MAX_AGE: Duration = Duration::from_secs(3600);
/// A ledger entry older than this is dropped (the day's hash is kept 35
/// days; an outage this long is an incident of its own).
pub const SPEND_MAX_AGE: Duration = Duration::from_secs(86_400);
/// Values per status in a batch reply (the limit is the caller's own).
const REPLY_PER_CHECK: usize = 6;

/// Process-wide figures of the pump, for the metrics.
#[derive(Debug, Default)]
pub struct BatchCounts {
    /// Script calls made (admissions, settlements or both).
    pub calls: AtomicU64,
    /// Admissions sent.
    pub admissions: AtomicU64,
    /// Settlements applied (after coalescing).
    pub settled: AtomicU64,
    /// Settlements dropped (expired while Redis was unreachable, or the
    /// queue full).
    pub dropped: AtomicU64,
    /// Settlements waiting now.
    pub pending: AtomicU64,
}

static COUNTS: BatchCounts = BatchCounts {
    calls: AtomicU64::new(0),
    admissions: AtomicU64::new(0),
    settled: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    pending: AtomicU64::new(0),
};

/// The pump's figures.
pub fn counts() -> &'static BatchCounts {
    &COUNTS
}

/// One request's checks, encoded for the script.
pub struct Encoded {
    pub keys: Vec<Key>,
    pub args: Vec<Value>,
    /// Each check's limit (the batch reply leaves it out).
    pub limits: smallvec::SmallVec<[u64; 4]>,
}

/// One settlement, encoded, with what it coalesces on and when it stops
/// mattering.
pub struct SettleItem {
    pub key: Key,
    pub args: [Value; 5],
    /// What items add up on besides their Redis key: the window of a token
    /// delta, the entry of a ledger line; none for a lease release.
    merge: Option<Merge>,
    /// The summed amount of a mergeable item (args\[3\] of a delta, args\[2\]
    /// of a ledger entry).
    amount: i64,
    /// Wall-clock ms after which the item no longer matters.
    expires_ms: u64,
}

/// The part of a settlement's identity its Redis key does not hold.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Merge {
    /// A token delta: the budget window's start (amount in `args[3]`).
    Window(u64),
    /// A ledger line: its entry (amount in `args[2]`).
    Entry(String),
    /// Admissions added to a sliding window's log (count in `args[2]`).
    Log,
}

impl SettleItem {
    /// Wraps an encoded settlement (`args` as `counter.lua` reads them).
    pub fn new(op: &Settle, key: Key, args: [Value; 5], now_ms: u64) -> Self {
        let (merge, amount, expires_ms) = match op {
            Settle::Release { .. } => (None, 0, now_ms + RELEASE_MAX_AGE.as_millis() as u64),
            Settle::Tokens {
                window_ms,
                window_start_ms,
                delta,
                ..
            }
            | Settle::Requests {
                window_ms,
                window_start_ms,
                delta,
                ..
            } => {
                let (_, len) = budget_window(*window_start_ms, *window_ms);
                (
                    Some(Merge::Window(*window_start_ms)),
                    *delta,
                    window_start_ms.saturating_add(len),
                )
            }
            Settle::Logged {
                window_ms, count, ..
            } => (
                Some(Merge::Log),
                i64::try_from(*count).unwrap_or(i64::MAX),
                now_ms.saturating_add(*window_ms),
            ),
            Settle::Spend { entry, micros, .. } => (
                Some(Merge::Entry(entry.clone())),
                i64::try_from(*micros).unwrap_or(i64::MAX),
                now_ms + SPEND_MAX_AGE.as_millis() as u64,
            ),
        };
        SettleItem {
            key,
            args,
            merge,
            amount,
            expires_ms,
        }
    }

    /// The amount written back into the item's arguments after merging.
    fn finish(mut self) -> Self {
        match self.merge {
            Some(Merge::Window(_)) => self.args[3] = Value::Integer(self.amount),
            Some(Merge::Entry(_) | Merge::Log) => self.args[2] = Value::Integer(self.amount),
            None => {}
        }
        self
    }
}

struct PendingAdmit {
    req: Encoded,
    reply: oneshot::Sender<Result<Admission, StoreError>>,
}

/// Settlements sent together under one sequence number.
struct Group {
    seq: u64,
    items: Vec<SettleItem>,
    /// Flushes waiting for this group to land.
    flushes: Vec<oneshot::Sender<()>>,
    attempts: u32,
    next_try: Instant,
}

#[derive(Default)]
struct Queue {
    admits: Vec<PendingAdmit>,
    settles: Vec<SettleItem>,
    flushes: Vec<oneshot::Sender<()>>,
}

struct Shared {
    queue: Mutex<Queue>,
}

/// The handle the store holds; the pump task runs while it exists.
pub struct Batcher {
    shared: Arc<Shared>,
    wake: Arc<Notify>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        // Wakes the pump, which finds the queue gone and ends.
        self.wake.notify_one();
    }
}

/// What the pump needs to call Redis.
pub struct Link {
    pub client: Client,
    pub script: Script,
    pub source: &'static str,
    pub timeout: Duration,
    /// `{key_prefix}sd:`: followed by the instance, the key holding the
    /// last settlement group applied.
    pub marker_prefix: String,
}

impl Batcher {
    /// Starts the pump on the current Tokio runtime.
    pub fn start(link: Link) -> Batcher {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
        });
        let wake = Arc::new(Notify::new());
        tokio::spawn(pump(Arc::downgrade(&shared), wake.clone(), link));
        Batcher { shared, wake }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Admits one request in the next call.
    pub async fn admit(&self, req: Encoded) -> Result<Admission, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue().admits.push(PendingAdmit { req, reply: tx });
        self.wake.notify_one();
        rx.await
            .unwrap_or_else(|_| Err(StoreError("redis: the batching task ended".into())))
    }

    /// Queues settlements for the next call.
    pub fn settle(&self, items: Vec<SettleItem>) {
        {
            let mut q = self.queue();
            let room = MAX_PENDING.saturating_sub(q.settles.len());
            let dropped = items.len().saturating_sub(room);
            if dropped > 0 {
                COUNTS.dropped.fetch_add(dropped as u64, Relaxed);
                log::warn!("counter store: {dropped} settlements dropped (queue full)");
            }
            q.settles.extend(items.into_iter().take(room));
            COUNTS.pending.store(q.settles.len() as u64, Relaxed);
        }
        self.wake.notify_one();
    }

    /// Waits until every settlement queued before the call has landed (or
    /// was dropped), at most `within`.
    pub async fn flush(&self, within: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        self.queue().flushes.push(tx);
        self.wake.notify_one();
        matches!(tokio::time::timeout(within, rx).await, Ok(Ok(())))
    }
}

fn now_ms() -> u64 {
    use sluice_filters::limits::store::Clock;
    SystemClock.now_ms()
}

/// Merges items with the same merge key (order kept otherwise).
fn coalesce(items: Vec<SettleItem>) -> Vec<SettleItem> {
    let mut out: Vec<SettleItem> = Vec::with_capacity(items.len());
    let mut at: HashMap<(Key, Merge), usize> = HashMap::new();
    for item in items {
        if let Some(m) = &item.merge {
            let id = (item.key.clone(), m.clone());
            if let Some(&i) = at.get(&id) {
                let held = &mut out[i];
                held.amount = held.amount.saturating_add(item.amount);
                held.expires_ms = held.expires_ms.max(item.expires_ms);
                continue;
            }
            at.insert(id, out.len());
        }
        out.push(item);
    }
    out.into_iter().map(SettleItem::finish).collect()
}

/// The pump: one call at a time, everything queued in it.
async fn pump(shared: std::sync::Weak<Shared>, wake: Arc<Notify>, link: Link) {
    let mut seq: u64 = 0;
    // Unique per process: a restarted instance starts again at 1.
    let marker: Key = format!("{}{:016x}", link.marker_prefix, fastrand::u64(..)).into();
    let mut retained: Option<Group> = None;
    loop {
        // The Batcher holds the only strong reference: gone, the store is.
        let Some(s) = shared.upgrade() else { return };
        let (admits, group) = {
            let mut q = s
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let take = q.admits.len().min(MAX_REQUESTS);
            let admits: Vec<PendingAdmit> = q.admits.drain(..take).collect();
            if retained.is_none() && !q.settles.is_empty() {
                seq += 1;
                let items = coalesce(std::mem::take(&mut q.settles));
                retained = Some(Group {
                    seq,
                    items,
                    flushes: std::mem::take(&mut q.flushes),
                    attempts: 0,
                    next_try: Instant::now(),
                });
            } else if retained.is_none() {
                // Nothing waiting to land: flushes are answered now.
                for f in q.flushes.drain(..) {
                    let _ = f.send(());
                }
            } else if let Some(g) = retained.as_mut() {
                g.flushes.append(&mut q.flushes);
            }
            COUNTS.pending.store(
                (q.settles.len() + retained.as_ref().map_or(0, |g| g.items.len())) as u64,
                Relaxed,
            );
            let due = retained
                .as_ref()
                .is_some_and(|g| g.next_try <= Instant::now());
            (admits, due)
        };
        if admits.is_empty() && !group {
            let wait = retained.as_ref().map(|g| g.next_try);
            drop(s);
            let notified = wake.notified();
            match wait {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at.into(), notified).await;
                }
                None => notified.await,
            }
            continue;
        }
        drop(s);
        if group {
            if let Some(g) = retained.as_mut() {
                let now = now_ms();
                let before = g.items.len();
                g.items.retain(|i| i.expires_ms > now);
                let expired = before - g.items.len();
                if expired > 0 {
                    COUNTS.dropped.fetch_add(expired as u64, Relaxed);
                    log::warn!(
                        "counter store: {expired} settlements dropped (expired before Redis answered)"
                    );
                }
            }
        }
        let sending = retained.as_ref().filter(|g| group && !g.items.is_empty());
        let outcome = if admits.is_empty() && sending.is_none() {
            Ok(Vec::new())
        } else {
            COUNTS.calls.fetch_add(1, Relaxed);
            COUNTS.admissions.fetch_add(admits.len() as u64, Relaxed);
            call(&link, &admits, sending.map(|g| (&marker, g))).await
        };
        match outcome {
            Ok(replies) => {
                if group {
                    if let Some(g) = retained.take() {
                        COUNTS.settled.fetch_add(g.items.len() as u64, Relaxed);
                        for f in g.flushes {
                            let _ = f.send(());
                        }
                    }
                }
                for (pending, reply) in admits.into_iter().zip(replies) {
                    let _ = pending.reply.send(reply);
                }
            }
            Err(e) => {
                if group {
                    if let Some(g) = retained.as_mut() {
                        g.attempts += 1;
                        let backoff = Duration::from_millis(50)
                            .saturating_mul(1 << g.attempts.min(6))
                            .min(Duration::from_secs(2));
                        g.next_try = Instant::now() + backoff;
                        if g.attempts == 1 {
                            log::warn!(
                                "counter store: {} settlements not applied yet ({e}); retrying",
                                g.items.len()
                            );
                        }
                    }
                }
                for pending in admits {
                    let _ = pending.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The script's arguments as its one ARGV value: a MessagePack array of
/// strings (each value as Redis would have passed it: integers in
/// decimal), which the script unpacks with Redis's built-in `cmsgpack`.
/// One RESP value per call instead of five per item: measured with
/// callgrind, the client's encoding of ~100 values was ≈ 22 k
/// instructions per request (load-tests/RESULTS.md, "Shared counters").
struct Packed {
    out: Vec<u8>,
    number: itoa::Buffer,
}

impl Packed {
    /// An array of `len` values (exactly that many must be pushed).
    fn new(len: usize) -> Packed {
        let mut out = Vec::with_capacity(8 + len * 8);
        // Writing to a Vec cannot fail.
        let _ = rmp::encode::write_array_len(&mut out, len as u32);
        Packed {
            out,
            number: itoa::Buffer::new(),
        }
    }

    fn push(&mut self, v: &Value) {
        let out = &mut self.out;
        let _ = match v {
            Value::Integer(i) => rmp::encode::write_str(out, self.number.format(*i)),
            Value::String(s) => rmp::encode::write_str(out, s),
            Value::Bytes(b) => {
                rmp::encode::write_str_len(out, b.len() as u32).map(|_| out.extend_from_slice(b))
            }
            other => rmp::encode::write_str(out, &other.as_string().unwrap_or_default()),
        };
    }

    fn done(self) -> Value {
        Value::Bytes(self.out.into())
    }
}

/// One script call: the group's settlements (under its marker), then the
/// requests. Answers one result per request, in order.
async fn call(
    link: &Link,
    admits: &[PendingAdmit],
    group: Option<(&Key, &Group)>,
) -> Result<Vec<Result<Admission, StoreError>>, StoreError> {
    if !link.client.is_connected() {
        return Err(StoreError(format!(
            "redis not connected ({:?})",
            link.client.state()
        )));
    }
    let items = group.map_or(&[][..], |(_, g)| &g.items[..]);
    // Built again for the rare NOSCRIPT retry rather than cloned for
    // every call.
    let build = || {
        let checks: usize = admits.iter().map(|a| a.req.keys.len()).sum();
        let mut keys: Vec<Key> = Vec::with_capacity(1 + items.len() + checks);
        let values = 3
            + items.iter().map(|i| i.args.len()).sum::<usize>()
            + admits.iter().map(|a| 1 + a.req.args.len()).sum::<usize>();
        let mut args = Packed::new(values);
        args.push(&Value::from_static_str("batch"));
        args.push(&Value::Integer(items.len() as i64));
        if let Some((marker, g)) = group {
            keys.push(marker.clone());
            args.push(&Value::Integer(g.seq as i64));
        } else {
            args.push(&Value::Integer(0));
        }
        for item in items {
            keys.push(item.key.clone());
            item.args.iter().for_each(|v| args.push(v));
        }
        for a in admits {
            keys.extend(a.req.keys.iter().cloned());
            args.push(&Value::Integer(a.req.keys.len() as i64));
            a.req.args.iter().for_each(|v| args.push(v));
        }
        (keys, args.done())
    };
    let run = async {
        let (keys, args) = build();
        let first: Result<Vec<i64>, Error> = link
            .client
            .evalsha(link.script.sha1().clone(), keys, args)
            .await;
        match first {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                let (keys, args) = build();
                link.client.eval(link.source, keys, args).await
            }
            other => other,
        }
    };
    let reply = match tokio::time::timeout(link.timeout, run).await {
        Ok(r) => r.map_err(|e| StoreError(format!("redis: {e}")))?,
        Err(_) => {
            return Err(StoreError(format!(
                "redis: no answer within {:?}",
                link.timeout
            )))
        }
    };
    decode(&reply, admits)
}

/// Splits a batch reply into one admission per request.
fn decode(
    reply: &[i64],
    admits: &[PendingAdmit],
) -> Result<Vec<Result<Admission, StoreError>>, StoreError> {
    let want = 1 + admits
        .iter()
        .map(|a| 1 + a.req.keys.len() * REPLY_PER_CHECK)
        .sum::<usize>();
    if reply.len() != want {
        return Err(StoreError(format!(
            "redis: unexpected script reply ({} values, {want} expected)",
            reply.len()
        )));
    }
    let u = |v: i64| u64::try_from(v).unwrap_or(0);
    let mut at = 1;
    let mut out = Vec::with_capacity(admits.len());
    for a in admits {
        let admitted = reply[at] == 1;
        at += 1;
        let n = a.req.keys.len();
        let statuses = reply[at..at + n * REPLY_PER_CHECK]
            .chunks_exact(REPLY_PER_CHECK)
            .zip(&a.req.limits)
            .map(|(c, limit)| CheckStatus {
                passed: c[0] == 1,
                limit: *limit,
                remaining: u(c[1]),
                retry_after_ms: u(c[2]),
                reset_ms: u(c[3]),
                granted: u(c[4]),
                window_start_ms: u(c[5]),
            })
            .collect();
        at += n * REPLY_PER_CHECK;
        out.push(Ok(Admission { admitted, statuses }));
    }
    Ok(out)
}
