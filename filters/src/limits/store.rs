//! The counter store contract: one atomic call per request admits it against
//! all of its rules ([`CounterStore::admit`]), one call settles what it held
//! ([`CounterStore::settle`]). The in-process implementation is
//! [`super::local::LocalCounterStore`]; the Redis one lives in the gateway
//! (`src/store/redis_counter.rs`) and must give identical answers for the
//! same sequence of calls (a conformance test runs both).
//!
//! Semantics every implementation follows:
//! - `admit` evaluates every check against the state *before* the call; if
//!   all pass, all are committed, otherwise none is (a denied request
//!   consumes nothing).
//! - Windows are aligned to multiples of `window_ms` since the Unix epoch
//!   (fixed windows and token budgets); sliding windows count the requests
//!   whose admission time lies in `(now - window_ms, now]`.
//! - Token buckets hold `burst` tokens at most and refill `rate_per_sec`
//!   tokens per second continuously (kept in milli-tokens so integer
//!   arithmetic is exact).
//! - A concurrency lease expires after `lease_ms` even if never released (a
//!   crashed instance cannot leak slots forever).
//! - A token budget grants `min(want, limit - used)` when that is at least
//!   `need`; all token checks of one call grant the same amount, the minimum
//!   over them, so the request's output cap is exact against every budget.
//!   A budget whose `need` that common grant misses fails too.
//! - Checks are judged independently: checks of one call that share a key
//!   may pass together beyond a limit, so a call should not repeat a key.

use async_trait::async_trait;

/// One check of one rule for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Request counter over a fixed (aligned) or sliding window.
    Window {
        key: String,
        limit: u64,
        window_ms: u64,
        sliding: bool,
        /// Requests this call adds (1).
        cost: u64,
    },
    /// Token bucket of requests.
    Bucket {
        key: String,
        /// Requests per second refilled.
        rate_per_sec: u64,
        /// Bucket size.
        burst: u64,
        cost: u64,
    },
    /// An in-flight slot, held until [`Settle::Release`] or `lease_ms`.
    Concurrency {
        key: String,
        limit: u64,
        /// Unique per request (the request id).
        lease_id: String,
        lease_ms: u64,
    },
    /// A token budget per aligned window (or calendar month,
    /// [`CALENDAR_MONTH`]: [`budget_window`]).
    Tokens {
        key: String,
        limit: u64,
        window_ms: u64,
        /// Smallest grant that admits the request (prompt tokens + 1).
        need: u64,
        /// What the request would like to reserve (prompt + expected output).
        want: u64,
        /// A money budget (micro-USD): money budgets share one grant among
        /// themselves, token budgets another.
        money: bool,
    },
}

impl Check {
    pub fn key(&self) -> &str {
        match self {
            Check::Window { key, .. }
            | Check::Bucket { key, .. }
            | Check::Concurrency { key, .. }
            | Check::Tokens { key, .. } => key,
        }
    }
}

/// The state of one check after the call (committed or not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckStatus {
    /// Whether this check alone would admit the request.
    pub passed: bool,
    /// The limit of the check (burst for buckets).
    pub limit: u64,
    /// What is left after this request (if admitted) or now (if denied).
    pub remaining: u64,
    /// Milliseconds until the state resets / a slot or token frees up enough
    /// for this check to pass (0 when it passed).
    pub retry_after_ms: u64,
    /// Milliseconds until the current window resets (buckets: until full).
    pub reset_ms: u64,
    /// Tokens granted (token budgets), 0 otherwise.
    pub granted: u64,
    /// Start of the window the check counted in (fixed windows and token
    /// budgets); settlements of a token budget name this window.
    pub window_start_ms: u64,
}

/// The statuses of one admission (on the stack for up to four checks: a
/// request has one per rule).
pub type Statuses = smallvec::SmallVec<[CheckStatus; 4]>;

/// The answer to [`CounterStore::admit`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admission {
    /// True when every check passed and all were committed.
    pub admitted: bool,
    /// One status per check, in the order given.
    pub statuses: Statuses,
}

/// Giving back what an admitted request held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settle {
    /// Frees a concurrency slot.
    Release { key: String, lease_id: String },
    /// Adjusts a token budget's window by `delta` tokens (negative refunds).
    /// Never goes below 0. A window that already expired is left alone.
    Tokens {
        key: String,
        window_ms: u64,
        window_start_ms: u64,
        delta: i64,
    },
    /// Adjusts a fixed window's count by `delta` requests, as
    /// [`Settle::Tokens`] does a budget's: what a stand-in store admitted
    /// while the shared one was unreachable, handed over to it.
    Requests {
        key: String,
        window_ms: u64,
        window_start_ms: u64,
        delta: i64,
    },
    /// Adds `count` admissions at the current time to a sliding window's
    /// log: what a stand-in store admitted while the shared one was
    /// unreachable, counted when handed over (they leave the window later
    /// than they would have, never earlier).
    Logged {
        key: String,
        window_ms: u64,
        count: u64,
    },
    /// Adds `micros` (micro-USD) to the spend ledger of `day`
    /// (`YYYY-MM-DD`, UTC) under `entry`; a day is kept [`LEDGER_DAYS`].
    Spend {
        day: String,
        entry: String,
        micros: u64,
    },
}

impl Settle {
    /// The counter key it settles (a ledger line has none: it names a
    /// day and an entry).
    pub fn key_mut(&mut self) -> Option<&mut String> {
        match self {
            Settle::Release { key, .. }
            | Settle::Tokens { key, .. }
            | Settle::Requests { key, .. }
            | Settle::Logged { key, .. } => Some(key),
            Settle::Spend { .. } => None,
        }
    }

    /// The counter key it settles, if any ([`Self::key_mut`]).
    pub fn key(&self) -> Option<&str> {
        match self {
            Settle::Release { key, .. }
            | Settle::Tokens { key, .. }
            | Settle::Requests { key, .. }
            | Settle::Logged { key, .. } => Some(key),
            Settle::Spend { .. } => None,
        }
    }
}

/// The `window_ms` of a token budget counted per calendar month (UTC)
/// instead of per aligned window.
pub const CALENDAR_MONTH: u64 = 0;

/// The window of a token budget that holds `now_ms`: `(start_ms,
/// length_ms)`. Windows are aligned to multiples of `window_ms` since the
/// Unix epoch, or are calendar months (UTC) for [`CALENDAR_MONTH`].
pub fn budget_window(now_ms: u64, window_ms: u64) -> (u64, u64) {
    if window_ms != CALENDAR_MONTH {
        return (now_ms - now_ms % window_ms, window_ms);
    }
    const DAY: u64 = 86_400_000;
    let days = now_ms / DAY;
    let (y, m, d) = civil_from_days(days);
    let first = days - (d - 1);
    let len = match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    };
    (first * DAY, len * DAY)
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days a spend ledger is kept.
pub const LEDGER_DAYS: u64 = 35;

/// A store failure (e.g. Redis unreachable). The caller applies each rule's
/// `fail_mode`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("counter store unavailable: {0}")]
pub struct StoreError(pub String);

/// Time, injectable so every limiter is tested with a fake clock.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// Shared counters. Implementations must be atomic per call across every
/// gateway instance that shares them.
#[async_trait]
pub trait CounterStore: Send + Sync {
    /// Evaluates all checks atomically; commits all or none.
    async fn admit(&self, checks: &[Check]) -> Result<Admission, StoreError>;
    /// Applies settlements (best effort per item, one round trip).
    async fn settle(&self, ops: &[Settle]) -> Result<(), StoreError>;
    /// The spend ledger of `day`: every entry and its micro-USD.
    async fn spend(&self, day: &str) -> Result<Vec<(String, u64)>, StoreError>;
}
