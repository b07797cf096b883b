use proptest::prelude::{prop_assert, proptest};

use super::*;
use crate::limits::Clock;

/// A fake clock: the tests move time by hand.
struct FakeClock(u64);

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

impl FakeClock {
    fn now(&self) -> u64 {
        self.now_ms()
    }
    fn advance(&mut self, ms: u64) {
        self.0 += ms;
    }
}

fn cfg() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 3,
        error_rate: 0.0,
        window: 10,
        min_requests: 4,
        open_ms: 1_000,
        half_open_probes: 1,
        probe_successes: 1,
        max_open_ms: None,
    }
}

#[test]
fn default_config_is_valid_and_parses() {
    assert!(BreakerConfig::default().problems().is_empty());
    let c: BreakerConfig =
        serde_json::from_str(r#"{"consecutive_failures":2,"max_open_ms":60000}"#).unwrap();
    assert_eq!(c.consecutive_failures, 2);
    assert_eq!(c.max_open_ms, Some(60_000));
    assert_eq!(c.open_ms, 30_000);
    assert!(serde_json::from_str::<BreakerConfig>(r#"{"nope":1}"#).is_err());
}

#[test]
fn invalid_config_lists_every_problem() {
    let c = BreakerConfig {
        error_rate: 1.5,
        min_requests: 30,
        window: 20,
        open_ms: 0,
        half_open_probes: 0,
        probe_successes: 0,
        ..BreakerConfig::default()
    };
    assert_eq!(c.problems().len(), 5, "{:?}", c.problems());
}

#[test]
fn trips_after_consecutive_failures_and_success_resets_streak() {
    let mut clock = FakeClock(10_000);
    let mut b = Breaker::new(cfg());
    b.record(clock.now(), false);
    b.record(clock.now(), false);
    b.record(clock.now(), true);
    assert_eq!(b.consecutive_failures(), 0);
    b.record(clock.now(), false);
    b.record(clock.now(), false);
    assert_eq!(b.state(clock.now()), BreakerState::Closed);
    assert!(b.allow(clock.now()));
    b.record(clock.now(), false);
    assert_eq!(
        b.state(clock.now()),
        BreakerState::Open { until_ms: 11_000 }
    );
    assert!(!b.allow(clock.now()));
    clock.advance(999);
    assert!(!b.allow(clock.now()));
}

#[test]
fn trips_on_error_rate_over_window_once_min_requests_seen() {
    let mut b = Breaker::new(BreakerConfig {
        consecutive_failures: 0,
        error_rate: 0.5,
        window: 4,
        min_requests: 4,
        ..cfg()
    });
    // F S F: 2/3 failing, but only 3 outcomes.
    b.record(0, false);
    b.record(0, true);
    b.record(0, false);
    assert_eq!(b.state(0), BreakerState::Closed);
    // F S F S: 2/4 = 0.5 ≥ 0.5.
    b.record(0, true);
    assert_eq!(b.state(0), BreakerState::Open { until_ms: 1_000 });
}

#[test]
fn rolling_window_forgets_old_failures() {
    let mut b = Breaker::new(BreakerConfig {
        consecutive_failures: 0,
        error_rate: 0.5,
        window: 4,
        min_requests: 4,
        ..cfg()
    });
    // F S S S → 1/4; then S pushes the F out → 0/4; then F S → 1/4.
    for ok in [false, true, true, true, true, false, true] {
        b.record(0, ok);
        assert_eq!(b.state(0), BreakerState::Closed);
    }
}

#[test]
fn half_open_admits_limited_probes_and_closes_on_success() {
    let mut clock = FakeClock(0);
    let mut b = Breaker::new(BreakerConfig {
        half_open_probes: 2,
        probe_successes: 2,
        ..cfg()
    });
    for _ in 0..3 {
        b.record(clock.now(), false);
    }
    clock.advance(1_000);
    assert_eq!(b.state(clock.now()), BreakerState::HalfOpen);
    assert!(b.allow(clock.now()));
    assert!(b.allow(clock.now()));
    assert!(!b.allow(clock.now()), "only two probes in flight");
    b.record(clock.now(), true);
    assert_eq!(b.state(clock.now()), BreakerState::HalfOpen);
    assert!(b.allow(clock.now()), "a finished probe frees its slot");
    b.record(clock.now(), true);
    assert_eq!(b.state(clock.now()), BreakerState::Closed);
    // History was reset: two failures do not trip.
    b.record(clock.now(), false);
    b.record(clock.now(), false);
    assert_eq!(b.state(clock.now()), BreakerState::Closed);
}

#[test]
fn failed_probe_reopens_with_doubling_up_to_max() {
    let mut clock = FakeClock(0);
    let mut b = Breaker::new(BreakerConfig {
        max_open_ms: Some(3_000),
        ..cfg()
    });
    for _ in 0..3 {
        b.record(clock.now(), false);
    }
    let mut expected = [2_000, 3_000, 3_000].into_iter();
    let mut open_for = 1_000;
    for _ in 0..3 {
        clock.advance(open_for);
        assert!(b.allow(clock.now()));
        b.record(clock.now(), false);
        open_for = expected.next().unwrap();
        assert_eq!(
            b.state(clock.now()),
            BreakerState::Open {
                until_ms: clock.now() + open_for
            }
        );
    }
    // Close, then trip again: back to the base open time.
    clock.advance(open_for);
    assert!(b.allow(clock.now()));
    b.record(clock.now(), true);
    assert_eq!(b.state(clock.now()), BreakerState::Closed);
    for _ in 0..3 {
        b.record(clock.now(), false);
    }
    assert_eq!(
        b.state(clock.now()),
        BreakerState::Open {
            until_ms: clock.now() + 1_000
        }
    );
}

#[test]
fn without_max_open_reopen_keeps_base_time() {
    let mut b = Breaker::new(cfg());
    for _ in 0..3 {
        b.record(0, false);
    }
    assert!(b.allow(1_000));
    b.record(1_000, false);
    assert_eq!(b.state(1_000), BreakerState::Open { until_ms: 2_000 });
}

#[test]
fn outcomes_while_open_are_ignored() {
    let mut b = Breaker::new(cfg());
    for _ in 0..3 {
        b.record(0, false);
    }
    b.record(500, true);
    b.record(500, false);
    assert_eq!(b.state(500), BreakerState::Open { until_ms: 1_000 });
}

#[test]
fn lost_probe_slot_is_reclaimed_after_open_ms() {
    let mut b = Breaker::new(cfg());
    for _ in 0..3 {
        b.record(0, false);
    }
    assert!(b.allow(1_000));
    assert!(!b.allow(1_500));
    assert!(b.allow(2_000), "probe never reported; slot reclaimed");
}

#[test]
fn reset_closes() {
    let mut b = Breaker::new(cfg());
    for _ in 0..3 {
        b.record(0, false);
    }
    b.reset();
    assert_eq!(b.state(0), BreakerState::Closed);
    assert!(b.allow(0));
}

#[test]
fn state_serializes_as_snake_case_names() {
    let json = serde_json::to_string(&[
        BreakerState::Closed,
        BreakerState::Open { until_ms: 5 },
        BreakerState::HalfOpen,
    ])
    .unwrap();
    assert_eq!(json, r#"["closed","open","half_open"]"#);
}

proptest! {
    /// Over any sequence of calls: nothing passes while open, an open period
    /// never exceeds the configured maximum, and half-open never has more
    /// probes in flight than allowed (unless a slot was left unreported for
    /// `open_ms`, when it is reclaimed).
    #[test]
    fn breaker_invariants(ops in proptest::collection::vec((0u8..3, 0u64..400), 1..200)) {
        let c = BreakerConfig {
            consecutive_failures: 2,
            error_rate: 0.5,
            window: 6,
            min_requests: 4,
            open_ms: 500,
            half_open_probes: 2,
            probe_successes: 2,
            max_open_ms: Some(2_000),
        };
        let mut b = Breaker::new(c);
        let mut now = 0u64;
        let mut in_flight = 0u32;
        let mut last_probe = 0u64;
        for (op, dt) in ops {
            now += dt;
            let before = b.state(now);
            if let BreakerState::Open { until_ms } = before {
                prop_assert!(until_ms > now && until_ms <= now + 2_000);
            }
            if before != BreakerState::HalfOpen {
                in_flight = 0;
            }
            match op {
                0 => {
                    let allowed = b.allow(now);
                    match before {
                        BreakerState::Closed => prop_assert!(allowed),
                        BreakerState::Open { .. } => prop_assert!(!allowed),
                        BreakerState::HalfOpen => {
                            if now >= last_probe + 500 {
                                in_flight = 0;
                            }
                            if allowed {
                                in_flight += 1;
                                last_probe = now;
                            }
                            prop_assert!(in_flight <= 2);
                        }
                    }
                }
                1 => {
                    b.record(now, true);
                    in_flight = in_flight.saturating_sub(1);
                }
                _ => {
                    b.record(now, false);
                    in_flight = in_flight.saturating_sub(1);
                }
            }
        }
    }
}
