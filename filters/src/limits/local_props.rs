//! Property tests of [`LocalCounterStore`]: limits are never exceeded and
//! reservations always settle, over random sequences of calls.

use super::*;
use crate::limits::plan::{plan, Decision, PlanSettings, RequestView, Reservation, Rule};
use crate::limits::rules::RuleConfig;
use crate::limits::test_support::FakeClock;
use proptest::prelude::*;

/// One step of a rate sequence: wait, then ask for the fixed window, the
/// sliding one, or both in one call.
#[derive(Debug, Clone)]
struct RateStep {
    wait_ms: u64,
    which: u8,
}

fn rate_steps(max_wait: u64) -> impl Strategy<Value = Vec<RateStep>> {
    prop::collection::vec(
        (0..max_wait, 0u8..3).prop_map(|(wait_ms, which)| RateStep { wait_ms, which }),
        1..120,
    )
}

proptest! {
    /// The store admits exactly what a naive model of each window admits,
    /// so no window ever holds more than `limit`.
    #[test]
    fn windows_admit_exactly_up_to_the_limit(
        limit in 1u64..5,
        window_ms in 1u64..2000,
        start in 0u64..10_000,
        steps in rate_steps(1500),
    ) {
        let clock = FakeClock::at(start);
        let store = LocalCounterStore::new(clock.clone());
        let fixed = Check::Window { key: "f".into(), limit, window_ms, sliding: false, cost: 1 };
        let sliding = Check::Window { key: "s".into(), limit, window_ms, sliding: true, cost: 1 };
        let (mut fixed_log, mut sliding_log) = (Vec::<u64>::new(), Vec::<u64>::new());
        for step in steps {
            clock.advance(step.wait_ms);
            let now = clock.now_ms();
            let ws = now - now % window_ms;
            let fixed_ok = (fixed_log.iter().filter(|&&t| t >= ws).count() as u64) < limit;
            let sliding_ok =
                (sliding_log.iter().filter(|&&t| t + window_ms > now).count() as u64) < limit;
            let (checks, expected) = match step.which {
                0 => (vec![fixed.clone()], fixed_ok),
                1 => (vec![sliding.clone()], sliding_ok),
                _ => (vec![fixed.clone(), sliding.clone()], fixed_ok && sliding_ok),
            };
            let a = store.admit_now(&checks);
            prop_assert_eq!(a.admitted, expected);
            for (c, st) in checks.iter().zip(&a.statuses) {
                prop_assert_eq!(st.passed, if c == &fixed { fixed_ok } else { sliding_ok });
                if !st.passed {
                    prop_assert!(st.retry_after_ms >= 1 && st.retry_after_ms <= window_ms);
                }
            }
            if a.admitted {
                if step.which != 1 { fixed_log.push(now); }
                if step.which != 0 { sliding_log.push(now); }
            }
        }
        for &t in &fixed_log {
            let ws = t - t % window_ms;
            let n = fixed_log.iter().filter(|&&u| u - u % window_ms == ws).count() as u64;
            prop_assert!(n <= limit);
        }
        for &t in &sliding_log {
            let n = sliding_log.iter().filter(|&&u| u <= t && u + window_ms > t).count() as u64;
            prop_assert!(n <= limit);
        }
    }

    /// A denied fixed-window or sliding request passes exactly when its
    /// `retry_after_ms` has elapsed (and not one millisecond earlier).
    #[test]
    fn retry_after_is_exact(
        limit in 1u64..4,
        window_ms in 2u64..2000,
        sliding in any::<bool>(),
        waits in prop::collection::vec(0u64..700, 1..30),
    ) {
        let clock = FakeClock::at(5_000);
        let store = LocalCounterStore::new(clock.clone());
        let check = Check::Window { key: "k".into(), limit, window_ms, sliding, cost: 1 };
        for wait in waits {
            clock.advance(wait);
            let a = store.admit_now(std::slice::from_ref(&check));
            if a.admitted { continue; }
            let retry = a.statuses[0].retry_after_ms;
            clock.advance(retry - 1);
            prop_assert!(!store.admit_now(std::slice::from_ref(&check)).admitted);
            clock.advance(1);
            prop_assert!(store.admit_now(std::slice::from_ref(&check)).admitted);
        }
    }

    /// Never more than `limit` unexpired leases, whatever the mix of
    /// admissions, releases and waits; the store agrees with a model.
    #[test]
    fn leases_never_exceed_the_limit(
        limit in 1u64..5,
        lease_ms in 1u64..3000,
        ops in prop::collection::vec((0u8..3, 0u64..1000, any::<prop::sample::Index>()), 1..150),
    ) {
        let clock = FakeClock::at(0);
        let store = LocalCounterStore::new(clock.clone());
        let mut held: Vec<(String, u64)> = Vec::new();
        for (n, (op, wait, pick)) in ops.into_iter().enumerate() {
            let now = clock.now_ms();
            held.retain(|(_, expiry)| *expiry > now);
            match op {
                0 => clock.advance(wait),
                1 if !held.is_empty() => {
                    let (id, _) = held.remove(pick.index(held.len()));
                    store.settle_now(&[Settle::Release { key: "c".into(), lease_id: id }]);
                }
                _ => {
                    let id = format!("r{n}");
                    let a = store.admit_now(&[Check::Concurrency {
                        key: "c".into(), limit, lease_id: id.clone(), lease_ms,
                    }]);
                    prop_assert_eq!(a.admitted, (held.len() as u64) < limit);
                    // The counts and resets the store reports (without
                    // walking its leases while none can have expired)
                    // match the model's.
                    let live = held.len() as u64;
                    let last = held.iter().map(|(_, e)| *e).max();
                    let status = a.statuses[0];
                    if a.admitted {
                        prop_assert_eq!(status.remaining, limit - live - 1);
                        let after = match last {
                            Some(l) if l > now + lease_ms => l - now,
                            _ => lease_ms,
                        };
                        prop_assert_eq!(status.reset_ms, after);
                        held.push((id, now + lease_ms));
                    } else {
                        prop_assert_eq!(status.remaining, limit.saturating_sub(live));
                        prop_assert_eq!(status.reset_ms, last.map_or(0, |l| l - now));
                    }
                }
            }
            prop_assert!(store.active_leases("c") as u64 <= limit);
            let now = clock.now_ms();
            prop_assert_eq!(
                store.active_leases("c"),
                held.iter().filter(|(_, e)| *e > now).count()
            );
        }
    }
}

fn budget_rules(per_window: u64, concurrent: u64) -> Vec<Rule> {
    let parse = |t: &str, c: serde_json::Value| RuleConfig::parse(t, &c).unwrap();
    vec![
        Rule::new(
            1,
            "budget".into(),
            parse(
                "token_limit",
                serde_json::json!({"time_window_enabled": true, "time_window_minutes": 10,
                    "max_tokens_per_window": per_window}),
            ),
        ),
        Rule::new(
            2,
            "cap".into(),
            parse(
                "token_limit",
                serde_json::json!({"max_output_tokens": 400, "key_by": "api_key"}),
            ),
        ),
        Rule::new(
            3,
            "conc".into(),
            parse(
                "concurrency",
                serde_json::json!({"max_concurrent": concurrent}),
            ),
        ),
    ]
}

proptest! {
    /// Settling every admitted request leaves the budget holding exactly
    /// the sum of the actual usage, and no slot held. The granted output
    /// cap never exceeds the static cap nor what the budget had left.
    #[test]
    fn reservations_always_settle(
        per_window in 200u64..5000,
        concurrent in 1u64..6,
        // Per request: prompt, `max_tokens`, output used (up to 50 over the
        // cap: usage is settled as billed), whether the oldest open request
        // ends after it.
        requests in prop::collection::vec(
            (0u64..300, prop::option::of(0u64..600), 0u64..700, any::<bool>()),
            1..60,
        ),
    ) {
        let rules = budget_rules(per_window, concurrent);
        let refs: Vec<&Rule> = rules.iter().collect();
        let clock = FakeClock::at(600_000);
        let store = LocalCounterStore::new(clock.clone());
        let settings = PlanSettings { default_output_tokens: 256, lease_ms: 60_000 };
        let headers: Vec<(String, String)> = Vec::new();
        let mut open: Vec<(Reservation, u64)> = Vec::new();
        let mut actual_sum = 0u64;
        for (n, (prompt, max_tokens, used, end_now)) in requests.into_iter().enumerate() {
            clock.advance(1000);
            let id = format!("req-{n}");
            let req = RequestView {
                namespace: "ns", api_key: Some("k"), route: "/", model: Some("m"),
                upstream: "u", headers: &headers, request_id: &id,
                prompt_tokens: prompt, requested_output: max_tokens, choices: 1, price: None, internal: false,
            };
            let Ok(p) = plan(&refs, &req, &settings) else { continue };
            let left = per_window.saturating_sub(store.tokens_used("1:namespace:ns", 600_000));
            match p.decide(&refs, &store.admit_now(&p.checks)) {
                Decision::Allow(r) => {
                    let cap = r.output_cap.unwrap_or(u64::MAX);
                    prop_assert!(cap <= 400 && r.reserved_tokens <= left);
                    prop_assert_eq!(r.reserved_tokens - prompt, cap);
                    let actual = prompt + used.min(cap + 50);
                    actual_sum += actual;
                    open.push((r, actual));
                }
                Decision::Deny(d) => prop_assert!(d.status == 429 || d.status == 503),
            }
            if end_now && !open.is_empty() {
                let (r, actual) = open.remove(0);
                store.settle_now(&r.settlement(actual));
            }
        }
        for (r, actual) in open.drain(..) {
            store.settle_now(&r.settlement(actual));
        }
        prop_assert_eq!(store.tokens_used("1:namespace:ns", 600_000), actual_sum);
        prop_assert_eq!(store.active_leases("3:namespace:ns"), 0);
    }
}
