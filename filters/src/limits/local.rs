//! [`LocalCounterStore`]: the in-process [`CounterStore`], for a single
//! gateway instance (and the reference the Redis store is tested against).
//! The gateway calls it from `request_filter` (admit) and `logging` (settle).
//!
//! It follows the contract of [`super::store`] to the field, with the
//! formulas of the Redis store (`src/store/counter.lua`), so that both give
//! the same answers for the same calls at the same clock readings (the
//! conformance test in `tests/it/redis_counter.rs` compares them). One
//! `std::sync::Mutex` guards all state for the length of a call; nothing
//! awaits while holding it.
//!
//! Per check kind: fixed windows and token budgets keep `(window start,
//! count)` per key; sliding windows a sorted log of admission times per key
//! (one entry per admitted unit, pruned on admission); buckets
//! `(milli-tokens, last update)`; concurrency a map lease id → expiry with
//! its earliest and latest expiry (`LeaseSet`).
//!
//! Like the Redis store, every check is judged on its own against the
//! state before the call, also when checks of one call share a key: they
//! may then pass together beyond a limit; their counts add up on commit (a
//! bucket keeps the level of the last such check, a lease id is held once).
//! The plan never sends such calls: every key carries its rule id.
//!
//! Expired state (past windows, full buckets, expired leases) reads as the
//! initial state and is swept every [`SWEEP_EVERY`] calls, so memory stays
//! proportional to the keys active within their windows.

use super::store::{
    budget_window, Admission, Check, CheckStatus, Clock, CounterStore, Settle, StoreError,
};
use async_trait::async_trait;
use smallvec::SmallVec;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

/// Calls (admits and settles) between two sweeps of expired state.
pub const SWEEP_EVERY: u64 = 1024;

/// How long a bucket that never refills (`rate_per_sec = 0`) is kept after
/// its last use (as the Redis store does).
const STILL_BUCKET_MS: u64 = 86_400_000;

/// The in-process counter store.
pub struct LocalCounterStore {
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl std::fmt::Debug for LocalCounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCounterStore")
            .field("tracked_keys", &self.tracked_keys())
            .finish()
    }
}

/// Counts of one aligned window (fixed windows and token budgets).
struct Counted {
    start_ms: u64,
    window_ms: u64,
    count: u64,
}

/// Admission times of a sliding window, ascending, one per admitted unit.
struct Log {
    /// The window of the last admission (the log is dropped `window_ms`
    /// after its newest entry).
    window_ms: u64,
    times: VecDeque<u64>,
}

struct Bucket {
    milli: u64,
    last_ms: u64,
    rate_per_sec: u64,
    burst: u64,
}

/// The concurrency leases of one key: lease id → expiry (ms), plus two
/// bounds that let an admission count them without walking them (a busy
/// key holds one lease per request in flight, and every admission asks
/// how many are live and when the last one expires).
#[derive(Default)]
struct LeaseSet {
    expiries: HashMap<String, u64>,
    /// No lease expires at or before this: exact after every insert that
    /// found it passed, a lower bound otherwise (a release only raises the
    /// true minimum). While it lies ahead, every lease is live.
    earliest: u64,
    /// The latest expiry held (exact; recomputed when its lease goes).
    latest: u64,
}

impl LeaseSet {
    /// Holds `id` until `expiry`; drops expired leases when some may have
    /// expired, so the bounds are exact again.
    fn insert(&mut self, now: u64, id: &str, expiry: u64) {
        let replaced = match self.expiries.get_mut(id) {
            Some(e) => Some(std::mem::replace(e, expiry)),
            None => {
                self.expiries.insert(id.to_string(), expiry);
                None
            }
        };
        if self.expiries.len() == 1 {
            (self.earliest, self.latest) = (expiry, expiry);
        } else if self.earliest <= now || replaced == Some(self.latest) {
            self.prune(now);
        } else {
            self.earliest = self.earliest.min(expiry);
            self.latest = self.latest.max(expiry);
        }
    }

    fn remove(&mut self, id: &str) {
        if self.expiries.remove(id) == Some(self.latest) {
            self.bounds();
        }
    }

    /// Drops the expired leases; the bounds are exact afterwards.
    fn prune(&mut self, now: u64) {
        self.expiries.retain(|_, &mut e| e > now);
        self.bounds();
    }

    /// Recomputes both bounds from the leases held.
    fn bounds(&mut self) {
        let all = self.expiries.values().copied();
        self.earliest = all.clone().min().unwrap_or(0);
        self.latest = all.max().unwrap_or(0);
    }

    /// The live leases' count and latest expiry; walks them only when some
    /// may have expired.
    fn live(&self, now: u64) -> (u64, Option<u64>) {
        if self.expiries.is_empty() {
            return (0, None);
        }
        if self.earliest > now {
            return (self.expiries.len() as u64, Some(self.latest));
        }
        self.live_expiries(now)
            .fold((0u64, None::<u64>), |(n, last), e| {
                (n + 1, Some(last.map_or(e, |l| l.max(e))))
            })
    }

    fn live_expiries(&self, now: u64) -> impl Iterator<Item = u64> + '_ {
        self.expiries.values().copied().filter(move |&e| e > now)
    }
}

/// Maps keyed by counter key. foldhash instead of std's SipHash: a
/// per-process random seed still keeps client-chosen keys (`key_by:
/// header`) from being steered into collisions, at a fraction of the cost
/// on these short keys.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    fixed: HashMap<String, Counted>,
    sliding: HashMap<String, Log>,
    buckets: HashMap<String, Bucket>,
    /// key → its leases.
    leases: HashMap<String, LeaseSet>,
    tokens: HashMap<String, Counted>,
    /// The spend ledger: day → entry → micro-USD (the last
    /// `LEDGER_DAYS` days).
    spend: std::collections::BTreeMap<String, HashMap<String, u64>>,
    calls: u64,
}

/// One check evaluated on its own against the state before the call.
struct Eval {
    passed: bool,
    limit: u64,
    left_now: u64,
    left_after: u64,
    reset_now: u64,
    reset_after: u64,
    retry: u64,
    window_start: u64,
    /// Buckets: the milli-tokens left after this check (what it commits).
    bucket_left: u64,
    /// Token budgets: `min(want, limit - used)`.
    offer: Option<u64>,
}

impl Eval {
    fn new(passed: bool, limit: u64, left: (u64, u64), reset: (u64, u64), retry: u64) -> Eval {
        Eval {
            passed,
            limit,
            left_now: left.0,
            left_after: left.1,
            reset_now: reset.0,
            reset_after: reset.1,
            retry,
            window_start: 0,
            bucket_left: 0,
            offer: None,
        }
    }
}

impl LocalCounterStore {
    /// An empty store reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        LocalCounterStore {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// [`CounterStore::admit`] without the future (it never waits).
    pub fn admit_now(&self, checks: &[Check]) -> Admission {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        let admission = state.admit(now, checks);
        state.tick(now);
        admission
    }

    /// [`CounterStore::settle`] without the future (it never waits).
    pub fn settle_now(&self, ops: &[Settle]) {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        for op in ops {
            state.settle(now, op);
        }
        state.tick(now);
    }

    /// The spend ledger of `day` (sorted by entry).
    pub fn spend_now(&self, day: &str) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .lock()
            .spend
            .get(day)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Drops every expired window, full bucket and expired lease now
    /// (otherwise done every [`SWEEP_EVERY`] calls).
    pub fn sweep(&self) {
        let now = self.clock.now_ms();
        self.lock().sweep(now);
    }

    /// Keys holding state (windows, logs, buckets, lease sets, budgets).
    pub fn tracked_keys(&self) -> usize {
        let s = self.lock();
        s.fixed.len() + s.sliding.len() + s.buckets.len() + s.leases.len() + s.tokens.len()
    }

    /// Empties the store, answering what its fixed and sliding windows
    /// and token and money budgets counted, as the settlements that add
    /// those counts to another store's (a store that stood in for a shared
    /// one hands its counts over). Buckets and leases are dropped.
    pub fn take_counts(&self) -> Vec<Settle> {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        let taken = std::mem::take(&mut *state);
        let logs = taken.sliding.into_iter().filter_map(|(key, log)| {
            let w = log.window_ms;
            let count = log
                .times
                .iter()
                .filter(|&&t| !left_window(t, now, w))
                .count() as u64;
            (count > 0).then_some(Settle::Logged {
                key,
                window_ms: w,
                count,
            })
        });
        // A fixed window's count (`requests`) or a budget's, as the
        // settlement that adds it.
        let settle = |requests: bool| {
            move |(key, c): (String, Counted)| {
                // A calendar month's start is not a multiple of its length.
                let window_ms = if c.start_ms % c.window_ms == 0 {
                    c.window_ms
                } else {
                    crate::limits::store::CALENDAR_MONTH
                };
                let (window_start_ms, delta) =
                    (c.start_ms, i64::try_from(c.count).unwrap_or(i64::MAX));
                if requests {
                    Settle::Requests {
                        key,
                        window_ms,
                        window_start_ms,
                        delta,
                    }
                } else {
                    Settle::Tokens {
                        key,
                        window_ms,
                        window_start_ms,
                        delta,
                    }
                }
            }
        };
        let live = |(_, c): &(String, Counted)| c.count > 0 && c.window_ms > 0;
        let windows = taken.fixed.into_iter().filter(live).map(settle(true));
        let budgets = taken.tokens.into_iter().filter(live).map(settle(false));
        windows.chain(logs).chain(budgets).collect()
    }

    /// Tokens counted in the budget `key` for the window starting at
    /// `window_start_ms` (0 when none): for tests and diagnostics.
    pub fn tokens_used(&self, key: &str, window_start_ms: u64) -> u64 {
        self.lock()
            .tokens
            .get(key)
            .filter(|c| c.start_ms == window_start_ms)
            .map_or(0, |c| c.count)
    }

    /// Unexpired leases held on `key`: for tests and diagnostics.
    pub fn active_leases(&self, key: &str) -> usize {
        let now = self.clock.now_ms();
        self.lock()
            .leases
            .get(key)
            .map_or(0, |l| l.live_expiries(now).count())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl CounterStore for LocalCounterStore {
    async fn admit(&self, checks: &[Check]) -> Result<Admission, StoreError> {
        Ok(self.admit_now(checks))
    }

    async fn settle(&self, ops: &[Settle]) -> Result<(), StoreError> {
        self.settle_now(ops);
        Ok(())
    }

    async fn spend(&self, day: &str) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self.spend_now(day))
    }
}

fn window_start(now: u64, window_ms: u64) -> u64 {
    now - now % window_ms.max(1)
}

fn ceil_div(a: u64, b: u64) -> u64 {
    a.div_ceil(b.max(1))
}

impl State {
    fn tick(&mut self, now: u64) {
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(SWEEP_EVERY) {
            self.sweep(now);
        }
    }

    fn admit(&mut self, now: u64, checks: &[Check]) -> Admission {
        // A request has one check per rule: on the stack for up to 4.
        let mut evals: SmallVec<[Eval; 4]> = checks.iter().map(|c| self.evaluate(now, c)).collect();
        // Every token budget grants the same amount, the minimum offer,
        // which must still cover each budget's `need`; money budgets
        // likewise among themselves.
        let group_grant = |money: bool| {
            evals
                .iter()
                .zip(checks)
                .filter(|(_, c)| matches!(c, Check::Tokens { money: m, .. } if *m == money))
                .filter_map(|(e, _)| e.offer)
                .min()
                .unwrap_or(0)
        };
        let grants = [group_grant(false), group_grant(true)];
        let grant_of = |check: &Check| match check {
            Check::Tokens { money, .. } => grants[usize::from(*money)],
            _ => 0,
        };
        for (e, check) in evals.iter_mut().zip(checks) {
            if let Check::Tokens { need, .. } = check {
                let grant = grant_of(check);
                e.passed &= grant >= *need;
                e.left_after = e.left_now.saturating_sub(grant);
            }
        }
        let admitted = evals.iter().all(|e| e.passed);
        if admitted {
            for (check, e) in checks.iter().zip(&evals) {
                self.commit(now, check, e, grant_of(check));
            }
        }
        let statuses = evals
            .iter()
            .zip(checks)
            .map(|(e, check)| CheckStatus {
                passed: e.passed,
                limit: e.limit,
                remaining: if admitted { e.left_after } else { e.left_now },
                retry_after_ms: if e.passed { 0 } else { e.retry },
                reset_ms: if admitted { e.reset_after } else { e.reset_now },
                granted: match check {
                    Check::Tokens { .. } if admitted => grant_of(check),
                    _ => 0,
                },
                window_start_ms: e.window_start,
            })
            .collect();
        Admission { admitted, statuses }
    }

    /// Counts a fixed window or token budget entry holds for window `ws`.
    fn counted(map: &HashMap<String, Counted>, key: &str, ws: u64) -> u64 {
        map.get(key)
            .filter(|c| c.start_ms == ws)
            .map_or(0, |c| c.count)
    }

    fn evaluate(&self, now: u64, check: &Check) -> Eval {
        match check {
            Check::Window {
                key,
                limit,
                window_ms,
                sliding: false,
                cost,
            } => {
                let w = (*window_ms).max(1);
                let ws = window_start(now, w);
                let used = Self::counted(&self.fixed, key, ws);
                let total = used.saturating_add(*cost);
                let reset = ws.saturating_add(w).saturating_sub(now);
                let left = (limit.saturating_sub(used), limit.saturating_sub(total));
                Eval {
                    window_start: ws,
                    ..Eval::new(total <= *limit, *limit, left, (reset, reset), reset)
                }
            }
            Check::Window {
                key,
                limit,
                window_ms,
                sliding: true,
                cost,
            } => self.evaluate_sliding(now, key, *limit, (*window_ms).max(1), *cost),
            Check::Bucket {
                key,
                rate_per_sec,
                burst,
                cost,
            } => self.evaluate_bucket(now, key, *rate_per_sec, *burst, *cost),
            Check::Concurrency {
                key,
                limit,
                lease_ms,
                ..
            } => self.evaluate_concurrency(now, key, *limit, (*lease_ms).max(1)),
            Check::Tokens {
                key,
                limit,
                window_ms,
                need,
                want,
                ..
            } => {
                let (ws, w) = budget_window(now, *window_ms);
                let avail = limit.saturating_sub(Self::counted(&self.tokens, key, ws));
                let reset = ws.saturating_add(w).saturating_sub(now);
                let offer = (*want).min(avail);
                Eval {
                    window_start: ws,
                    offer: Some(offer),
                    ..Eval::new(
                        offer >= *need,
                        *limit,
                        (avail, avail),
                        (reset, reset),
                        reset,
                    )
                }
            }
        }
    }

    fn evaluate_sliding(&self, now: u64, key: &str, limit: u64, w: u64, cost: u64) -> Eval {
        // The admissions still in the window: `times[from..]` (no copy: a
        // busy window holds up to `limit` entries).
        let empty = VecDeque::new();
        let times = self.sliding.get(key).map_or(&empty, |log| &log.times);
        let from = times.partition_point(|&t| left_window(t, now, w));
        let count = (times.len() - from) as u64;
        let total = count.saturating_add(cost);
        // The oldest `total - limit` admissions must leave the window.
        let retry = match total.saturating_sub(limit) {
            k if k >= 1 && k <= count => times
                .get(from + (k - 1) as usize)
                .map_or(w, |&t| t.saturating_add(w).saturating_sub(now)),
            _ => w,
        };
        let reset_now = if count > 0 {
            times
                .back()
                .map_or(0, |&t| t.saturating_add(w).saturating_sub(now))
        } else {
            0
        };
        let left = (limit.saturating_sub(count), limit.saturating_sub(total));
        Eval::new(total <= limit, limit, left, (reset_now, w), retry)
    }

    /// Milli-tokens in bucket `key` now (full when unknown).
    fn bucket_level(&self, now: u64, key: &str, rate: u64, burst: u64) -> u64 {
        let cap = burst.saturating_mul(1000);
        self.buckets.get(key).map_or(cap, |b| {
            let refill = now.saturating_sub(b.last_ms).saturating_mul(rate);
            b.milli.saturating_add(refill).min(cap)
        })
    }

    fn evaluate_bucket(&self, now: u64, key: &str, rate: u64, burst: u64, cost: u64) -> Eval {
        let cap = burst.saturating_mul(1000);
        let tokens = self.bucket_level(now, key, rate, burst);
        let need = cost.saturating_mul(1000);
        let (reset_now, reset_after, retry) = if rate > 0 {
            (
                ceil_div(cap - tokens, rate),
                ceil_div((cap - tokens).saturating_add(need), rate),
                if need <= cap {
                    ceil_div(need.saturating_sub(tokens), rate)
                } else {
                    0
                },
            )
        } else {
            (0, 0, 0)
        };
        let left = (tokens / 1000, tokens.saturating_sub(need) / 1000);
        Eval {
            bucket_left: tokens.saturating_sub(need),
            ..Eval::new(tokens >= need, burst, left, (reset_now, reset_after), retry)
        }
    }

    fn evaluate_concurrency(&self, now: u64, key: &str, limit: u64, lease: u64) -> Eval {
        // The live leases' count and latest expiry (without walking them
        // while none can have expired); their order is needed only when the
        // request does not fit.
        let leases = self.leases.get(key);
        let (count, last) = leases.map_or((0, None), |l| l.live(now));
        let total = count.saturating_add(1);
        // The earliest `total - limit` live leases must expire.
        let retry = match total.saturating_sub(limit) {
            k if k >= 1 && k <= count => {
                let mut expiries: Vec<u64> = leases
                    .into_iter()
                    .flat_map(|l| l.live_expiries(now))
                    .collect();
                expiries.sort_unstable();
                expiries
                    .get((k - 1) as usize)
                    .map_or(lease, |e| e.saturating_sub(now))
            }
            _ => lease,
        };
        let reset_now = last.map_or(0, |l| l.saturating_sub(now));
        let reset_after = match last {
            Some(l) if l > now.saturating_add(lease) => l - now,
            _ => lease,
        };
        let left = (limit.saturating_sub(count), limit.saturating_sub(total));
        Eval::new(total <= limit, limit, left, (reset_now, reset_after), retry)
    }

    /// Commits one check. Counts of checks sharing a key add up; a bucket
    /// keeps the level of the last such check.
    fn commit(&mut self, now: u64, check: &Check, e: &Eval, grant: u64) {
        match check {
            Check::Window {
                key,
                window_ms,
                sliding: false,
                cost,
                ..
            } => add_counted(&mut self.fixed, key, now, *window_ms, *cost),
            Check::Window {
                key,
                window_ms,
                sliding: true,
                cost,
                ..
            } => self.log(now, key, *window_ms, *cost),
            Check::Bucket {
                key,
                rate_per_sec,
                burst,
                ..
            } => {
                let bucket = Bucket {
                    milli: e.bucket_left,
                    last_ms: now,
                    rate_per_sec: *rate_per_sec,
                    burst: *burst,
                };
                self.buckets.insert(key.clone(), bucket);
            }
            Check::Concurrency {
                key,
                lease_id,
                lease_ms,
                ..
            } => {
                // Expired leases never count (`evaluate_concurrency`) and
                // are dropped by the sweep, or by an insert that finds some
                // may have expired; the key is cloned only when new.
                let expiry = now.saturating_add((*lease_ms).max(1));
                match self.leases.get_mut(key.as_str()) {
                    Some(leases) => leases.insert(now, lease_id, expiry),
                    None => {
                        let mut leases = LeaseSet::default();
                        leases.insert(now, lease_id, expiry);
                        self.leases.insert(key.clone(), leases);
                    }
                }
            }
            Check::Tokens { key, window_ms, .. } => {
                let (ws, w) = budget_window(now, *window_ms);
                add_in_window(&mut self.tokens, key, ws, w, grant)
            }
        }
    }

    /// Adds `count` admissions at `now` to the sliding window `key`.
    fn log(&mut self, now: u64, key: &str, window_ms: u64, count: u64) {
        let w = window_ms.max(1);
        let log = self.sliding.entry(key.to_string()).or_insert_with(|| Log {
            window_ms: w,
            times: VecDeque::new(),
        });
        log.window_ms = w;
        while log.times.front().is_some_and(|&t| left_window(t, now, w)) {
            log.times.pop_front();
        }
        let at = log.times.partition_point(|&t| t <= now);
        for _ in 0..count {
            log.times.insert(at, now);
        }
    }

    fn settle(&mut self, now: u64, op: &Settle) {
        match op {
            Settle::Release { key, lease_id } => {
                // An emptied lease set stays until the sweep: the key's
                // next request reuses it instead of allocating a new one.
                if let Some(leases) = self.leases.get_mut(key) {
                    leases.remove(lease_id);
                }
            }
            Settle::Tokens {
                key,
                window_ms,
                window_start_ms,
                delta,
            } => adjust_counted(
                &mut self.tokens,
                key,
                now,
                *window_ms,
                *window_start_ms,
                *delta,
            ),
            Settle::Requests {
                key,
                window_ms,
                window_start_ms,
                delta,
            } => adjust_counted(
                &mut self.fixed,
                key,
                now,
                *window_ms,
                *window_start_ms,
                *delta,
            ),
            Settle::Logged {
                key,
                window_ms,
                count,
            } => self.log(now, key, *window_ms, *count),
            Settle::Spend { day, entry, micros } => {
                let day_map = self.spend.entry(day.clone()).or_default();
                let v = day_map.entry(entry.clone()).or_insert(0);
                *v = v.saturating_add(*micros);
                while self.spend.len() as u64 > super::store::LEDGER_DAYS {
                    self.spend.pop_first();
                }
            }
        }
    }

    fn sweep(&mut self, now: u64) {
        let live = |c: &Counted| c.start_ms.saturating_add(c.window_ms) > now;
        self.fixed.retain(|_, c| live(c));
        self.tokens.retain(|_, c| live(c));
        self.sliding.retain(|_, log| {
            log.times
                .back()
                .is_some_and(|&t| t.saturating_add(log.window_ms) > now)
        });
        self.buckets.retain(|_, b| {
            let cap = b.burst.saturating_mul(1000);
            let idle = now.saturating_sub(b.last_ms);
            if b.rate_per_sec == 0 {
                idle < STILL_BUCKET_MS && b.milli < cap
            } else {
                b.milli.saturating_add(idle.saturating_mul(b.rate_per_sec)) < cap
            }
        });
        self.leases.retain(|_, leases| {
            leases.prune(now);
            !leases.expiries.is_empty()
        });
    }
}

/// Adjusts the count of `key`'s window starting at `window_start_ms` by
/// `delta` (never below 0). Only the current window is adjusted; an
/// expired one is left alone.
fn adjust_counted(
    map: &mut HashMap<String, Counted>,
    key: &str,
    now: u64,
    window_ms: u64,
    window_start_ms: u64,
    delta: i64,
) {
    let (ws, w) = budget_window(now, window_ms);
    if window_start_ms != ws {
        return;
    }
    let adjust = |used: u64| {
        let adjusted = (i128::from(used) + i128::from(delta)).clamp(0, i128::from(u64::MAX));
        u64::try_from(adjusted).unwrap_or(u64::MAX)
    };
    match map.get_mut(key) {
        Some(c) if c.start_ms == window_start_ms => c.count = adjust(c.count),
        _ => {
            map.insert(
                key.to_string(),
                Counted {
                    start_ms: window_start_ms,
                    window_ms: w,
                    count: adjust(0),
                },
            );
        }
    }
}

/// Whether an admission at `t` is outside the sliding window
/// `(now - w, now]` (none is before the clock has run `w`).
fn left_window(t: u64, now: u64, w: u64) -> bool {
    now.checked_sub(w).is_some_and(|floor| t <= floor)
}

fn add_counted(map: &mut HashMap<String, Counted>, key: &str, now: u64, window_ms: u64, n: u64) {
    let w = window_ms.max(1);
    add_in_window(map, key, window_start(now, w), w, n);
}

fn add_in_window(map: &mut HashMap<String, Counted>, key: &str, ws: u64, w: u64, n: u64) {
    match map.get_mut(key) {
        Some(c) if c.start_ms == ws => c.count = c.count.saturating_add(n),
        _ => {
            map.insert(
                key.to_string(),
                Counted {
                    start_ms: ws,
                    window_ms: w,
                    count: n,
                },
            );
        }
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "local_props.rs"]
mod props;
