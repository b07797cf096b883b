//! Per-deployment circuit breaker, consulted in `upstream_peer` before a
//! deployment is tried ([`Breaker::allow`]) and fed in `logging` (or on a
//! failed attempt) with the outcome ([`Breaker::record`]).
//!
//! - **Closed**: every request passes. It trips to Open after
//!   `consecutive_failures` failures in a row, or when the error rate over
//!   the last `window` outcomes reaches `error_rate` (once at least
//!   `min_requests` outcomes are in the window).
//! - **Open** until `until_ms`: nothing passes.
//! - **HalfOpen** (reached lazily once `until_ms` has passed): at most
//!   `half_open_probes` probe requests are in flight at once; each outcome
//!   frees its slot. `probe_successes` successes close the breaker (and reset
//!   its history); any failure reopens it, for twice the previous open time
//!   (capped at `max_open_ms`) when `max_open_ms` is set, else for `open_ms`.
//!   A probe slot whose outcome never comes (client gone) is reclaimed after
//!   `open_ms`.
//!
//! Outcomes that arrive while Open (requests admitted before the trip) are
//! ignored. Time is passed in (`now_ms`, from a
//! [`crate::limits::Clock`]); nothing here reads the clock.
//!
//! Thread-safety: [`Breaker`] is a plain struct with `&mut self` methods; the
//! gateway keeps one per deployment behind a `Mutex` (held only for the call,
//! never across I/O).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize, Serializer};

/// Breaker settings (per upstream pool or per deployment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failures in a row that trip the breaker; 0 disables this trigger.
    pub consecutive_failures: u32,
    /// Error rate (0..=1) over the rolling window that trips the breaker;
    /// 0 disables this trigger.
    pub error_rate: f64,
    /// Number of most recent outcomes the error rate is computed over.
    pub window: u32,
    /// Outcomes the window must hold before the error rate can trip.
    pub min_requests: u32,
    /// How long the breaker stays open after the first trip, in ms.
    pub open_ms: u64,
    /// Probe requests allowed in flight at once while half-open.
    pub half_open_probes: u32,
    /// Successful probes that close the breaker.
    pub probe_successes: u32,
    /// When set, each failed half-open probe doubles the open time, up to
    /// this many ms; when absent, every reopen lasts `open_ms`.
    pub max_open_ms: Option<u64>,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            error_rate: 0.5,
            window: 20,
            min_requests: 10,
            open_ms: 30_000,
            half_open_probes: 1,
            probe_successes: 1,
            max_open_ms: None,
        }
    }
}

impl BreakerConfig {
    /// Every problem with these settings (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(0.0..=1.0).contains(&self.error_rate) {
            out.push(format!(
                "error_rate must be within 0..=1, got {}",
                self.error_rate
            ));
        }
        if self.error_rate > 0.0 && self.window == 0 {
            out.push("window must be at least 1 when error_rate is set".to_string());
        }
        if self.min_requests > self.window {
            out.push(format!(
                "min_requests ({}) must not exceed window ({})",
                self.min_requests, self.window
            ));
        }
        if self.open_ms == 0 {
            out.push("open_ms must be at least 1".to_string());
        }
        if self.half_open_probes == 0 {
            out.push("half_open_probes must be at least 1".to_string());
        }
        if self.probe_successes == 0 {
            out.push("probe_successes must be at least 1".to_string());
        }
        if let Some(max) = self.max_open_ms {
            if max < self.open_ms {
                out.push(format!(
                    "max_open_ms ({max}) must not be below open_ms ({})",
                    self.open_ms
                ));
            }
        }
        if self.consecutive_failures == 0 && self.error_rate == 0.0 {
            out.push(
                "consecutive_failures and error_rate are both 0: the breaker never trips"
                    .to_string(),
            );
        }
        out
    }
}

/// The breaker's state as seen at one instant. Serializes as `"closed"`,
/// `"open"` or `"half_open"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open { until_ms: u64 },
    HalfOpen,
}

impl BreakerState {
    /// `"closed"`, `"open"` or `"half_open"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl Serialize for BreakerState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Closed,
    Open {
        until_ms: u64,
    },
    HalfOpen {
        in_flight: u32,
        successes: u32,
        last_probe_ms: u64,
    },
}

/// One deployment's breaker. See the module docs for the state machine.
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    phase: Phase,
    consecutive: u32,
    /// Most recent outcomes (true = failure), at most `cfg.window`.
    recent: VecDeque<bool>,
    recent_failures: u32,
    /// Length of the last (or next) open period.
    open_for_ms: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        let open_for_ms = cfg.open_ms;
        Breaker {
            recent: VecDeque::with_capacity(cfg.window as usize),
            cfg,
            phase: Phase::Closed,
            consecutive: 0,
            recent_failures: 0,
            open_for_ms,
        }
    }

    /// The settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.cfg
    }

    /// The state at `now_ms` (an expired Open reads as HalfOpen).
    pub fn state(&self, now_ms: u64) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { until_ms } if now_ms < until_ms => BreakerState::Open { until_ms },
            Phase::Open { .. } | Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may go to this deployment now. In half-open this
    /// reserves a probe slot, so call it only for a request that will be
    /// sent (and then [`Breaker::record`] its outcome).
    pub fn allow(&mut self, now_ms: u64) -> bool {
        self.advance(now_ms);
        let max_probes = self.cfg.half_open_probes.max(1);
        let reclaim_after = self.cfg.open_ms;
        match &mut self.phase {
            Phase::Closed => true,
            Phase::Open { .. } => false,
            Phase::HalfOpen {
                in_flight,
                last_probe_ms,
                ..
            } => {
                if *in_flight >= max_probes
                    && now_ms.saturating_sub(*last_probe_ms) >= reclaim_after
                {
                    *in_flight = 0;
                }
                if *in_flight < max_probes {
                    *in_flight += 1;
                    *last_probe_ms = now_ms;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Records the outcome of a request sent to this deployment.
    pub fn record(&mut self, now_ms: u64, success: bool) {
        self.advance(now_ms);
        let needed = self.cfg.probe_successes.max(1);
        match &mut self.phase {
            Phase::Open { .. } => {}
            Phase::Closed => {
                self.push_outcome(success);
                if self.should_trip() {
                    self.open_for_ms = self.cfg.open_ms;
                    self.open(now_ms);
                }
            }
            Phase::HalfOpen {
                in_flight,
                successes,
                ..
            } => {
                *in_flight = in_flight.saturating_sub(1);
                if success {
                    *successes += 1;
                    if *successes >= needed {
                        self.close();
                    }
                } else {
                    self.open_for_ms = match self.cfg.max_open_ms {
                        Some(max) => self.open_for_ms.saturating_mul(2).min(max),
                        None => self.cfg.open_ms,
                    };
                    self.open(now_ms);
                }
            }
        }
    }

    /// Failures in a row while closed.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// Back to Closed with no history (e.g. after a config change).
    pub fn reset(&mut self) {
        self.close();
    }

    fn advance(&mut self, now_ms: u64) {
        if let Phase::Open { until_ms } = self.phase {
            if now_ms >= until_ms {
                self.phase = Phase::HalfOpen {
                    in_flight: 0,
                    successes: 0,
                    last_probe_ms: now_ms,
                };
            }
        }
    }

    fn push_outcome(&mut self, success: bool) {
        if success {
            self.consecutive = 0;
        } else {
            self.consecutive = self.consecutive.saturating_add(1);
        }
        if self.cfg.window == 0 {
            return;
        }
        if self.recent.len() >= self.cfg.window as usize {
            if let Some(true) = self.recent.pop_front() {
                self.recent_failures = self.recent_failures.saturating_sub(1);
            }
        }
        self.recent.push_back(!success);
        if !success {
            self.recent_failures += 1;
        }
    }

    fn should_trip(&self) -> bool {
        let by_streak =
            self.cfg.consecutive_failures > 0 && self.consecutive >= self.cfg.consecutive_failures;
        let n = self.recent.len();
        let by_rate = self.cfg.error_rate > 0.0
            && n > 0
            && n >= self.cfg.min_requests as usize
            && f64::from(self.recent_failures) / n as f64 >= self.cfg.error_rate;
        by_streak || by_rate
    }

    fn open(&mut self, now_ms: u64) {
        self.phase = Phase::Open {
            until_ms: now_ms.saturating_add(self.open_for_ms),
        };
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.consecutive = 0;
        self.recent.clear();
        self.recent_failures = 0;
        self.open_for_ms = self.cfg.open_ms;
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
