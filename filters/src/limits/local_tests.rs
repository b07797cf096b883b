//! Unit tests of [`LocalCounterStore`]: every check kind at its boundaries.

use super::*;
use crate::limits::test_support::{ready, FakeClock};

fn store(at: u64) -> (Arc<FakeClock>, LocalCounterStore) {
    let clock = FakeClock::at(at);
    let store = LocalCounterStore::new(clock.clone());
    (clock, store)
}

fn fixed(key: &str, limit: u64, window_ms: u64) -> Check {
    Check::Window {
        key: key.into(),
        limit,
        window_ms,
        sliding: false,
        cost: 1,
    }
}

fn sliding(key: &str, limit: u64, window_ms: u64) -> Check {
    Check::Window {
        key: key.into(),
        limit,
        window_ms,
        sliding: true,
        cost: 1,
    }
}

fn bucket(key: &str, rate_per_sec: u64, burst: u64) -> Check {
    Check::Bucket {
        key: key.into(),
        rate_per_sec,
        burst,
        cost: 1,
    }
}

fn lease(key: &str, limit: u64, id: &str, lease_ms: u64) -> Check {
    Check::Concurrency {
        key: key.into(),
        limit,
        lease_id: id.into(),
        lease_ms,
    }
}

fn budget(key: &str, limit: u64, window_ms: u64, need: u64, want: u64) -> Check {
    Check::Tokens {
        key: key.into(),
        limit,
        window_ms,
        need,
        want,
        money: false,
    }
}

fn one(store: &LocalCounterStore, check: Check) -> CheckStatus {
    let a = store.admit_now(&[check]);
    assert_eq!(a.statuses.len(), 1);
    assert_eq!(a.admitted, a.statuses[0].passed);
    a.statuses[0]
}

#[test]
fn fixed_window_resets_at_the_aligned_boundary() {
    let (clock, s) = store(10_500);
    let st = one(&s, fixed("k", 2, 1000));
    assert!(st.passed);
    assert_eq!(
        (st.limit, st.remaining, st.reset_ms, st.window_start_ms),
        (2, 1, 500, 10_000)
    );
    assert_eq!(one(&s, fixed("k", 2, 1000)).remaining, 0);
    let denied = one(&s, fixed("k", 2, 1000));
    assert!(!denied.passed);
    assert_eq!(
        (denied.remaining, denied.retry_after_ms, denied.reset_ms),
        (0, 500, 500)
    );
    clock.set(10_999);
    assert_eq!(one(&s, fixed("k", 2, 1000)).retry_after_ms, 1);
    clock.set(11_000);
    let st = one(&s, fixed("k", 2, 1000));
    assert!(st.passed);
    assert_eq!(
        (st.remaining, st.window_start_ms, st.reset_ms),
        (1, 11_000, 1000)
    );
}

#[test]
fn sliding_window_differs_from_fixed_at_the_boundary() {
    let (clock, s) = store(900);
    for _ in 0..2 {
        assert!(
            s.admit_now(&[fixed("f", 2, 1000), sliding("s", 2, 1000)])
                .admitted
        );
    }
    clock.set(1000);
    // The fixed window starts over; the sliding one still holds both.
    assert!(one(&s, fixed("f", 2, 1000)).passed);
    let st = one(&s, sliding("s", 2, 1000));
    assert!(!st.passed);
    assert_eq!(
        (st.retry_after_ms, st.reset_ms, st.remaining),
        (900, 900, 0)
    );
    assert_eq!(st.window_start_ms, 0);
    clock.set(1899);
    assert!(!one(&s, sliding("s", 2, 1000)).passed);
    clock.set(1900);
    let st = one(&s, sliding("s", 2, 1000));
    assert!(st.passed);
    assert_eq!((st.remaining, st.reset_ms), (1, 1000));
}

#[test]
fn sliding_retry_waits_for_enough_old_entries_to_leave() {
    let (clock, s) = store(100);
    assert!(one(&s, sliding("s", 2, 1000)).passed);
    clock.set(300);
    assert!(one(&s, sliding("s", 2, 1000)).passed);
    clock.set(500);
    let st = one(&s, sliding("s", 2, 1000));
    // The entry of t=100 leaves at 1100; all are gone at 1300.
    assert_eq!((st.retry_after_ms, st.reset_ms), (600, 800));
    let two = s.admit_now(&[Check::Window {
        key: "s".into(),
        limit: 2,
        window_ms: 1000,
        sliding: true,
        cost: 2,
    }]);
    assert_eq!(two.statuses[0].retry_after_ms, 800);
    let never = s.admit_now(&[Check::Window {
        key: "s".into(),
        limit: 2,
        window_ms: 1000,
        sliding: true,
        cost: 3,
    }]);
    assert_eq!(never.statuses[0].retry_after_ms, 1000);
}

#[test]
fn bucket_allows_its_burst_then_refills_continuously() {
    let (clock, s) = store(0);
    for left in [2, 1, 0] {
        let st = one(&s, bucket("b", 2, 3));
        assert!(st.passed);
        assert_eq!((st.limit, st.remaining), (3, left));
    }
    let st = one(&s, bucket("b", 2, 3));
    assert!(!st.passed);
    // 1000 milli-tokens at 2 per ms; full (3000) after 1500 ms.
    assert_eq!(
        (st.retry_after_ms, st.reset_ms, st.remaining),
        (500, 1500, 0)
    );
    clock.advance(499);
    assert!(!one(&s, bucket("b", 2, 3)).passed);
    clock.advance(1);
    let st = one(&s, bucket("b", 2, 3));
    assert!(st.passed);
    assert_eq!(st.reset_ms, 1500);
    // A long pause refills to the burst, not beyond.
    clock.advance(60_000);
    for _ in 0..3 {
        assert!(one(&s, bucket("b", 2, 3)).passed);
    }
    assert!(!one(&s, bucket("b", 2, 3)).passed);
}

#[test]
fn bucket_keeps_fractions_of_a_token() {
    let (clock, s) = store(0);
    assert!(one(&s, bucket("b", 3, 1)).passed);
    // 3 tokens per second: one every 333.3 ms, exact in milli-tokens.
    clock.advance(333);
    let st = one(&s, bucket("b", 3, 1));
    assert_eq!((st.passed, st.retry_after_ms), (false, 1));
    clock.advance(1);
    assert!(one(&s, bucket("b", 3, 1)).passed);
}

#[test]
fn bucket_cost_above_burst_never_passes() {
    let (_clock, s) = store(0);
    let a = s.admit_now(&[Check::Bucket {
        key: "b".into(),
        rate_per_sec: 1,
        burst: 2,
        cost: 3,
    }]);
    assert!(!a.admitted);
    assert_eq!(a.statuses[0].retry_after_ms, 0);
}

#[test]
fn concurrency_leases_are_released_or_expire() {
    let (clock, s) = store(0);
    assert_eq!(one(&s, lease("c", 2, "a", 10_000)).remaining, 1);
    clock.set(2000);
    let st = one(&s, lease("c", 2, "b", 10_000));
    assert_eq!((st.passed, st.remaining, st.reset_ms), (true, 0, 10_000));
    let st = one(&s, lease("c", 2, "c", 10_000));
    // Lease "a" expires first, at 10 000.
    assert_eq!(
        (st.passed, st.retry_after_ms, st.reset_ms),
        (false, 8000, 10_000)
    );
    assert_eq!(s.active_leases("c"), 2);
    s.settle_now(&[Settle::Release {
        key: "c".into(),
        lease_id: "a".into(),
    }]);
    clock.set(3000);
    assert!(one(&s, lease("c", 2, "c", 10_000)).passed);
    assert!(!one(&s, lease("c", 2, "d", 10_000)).passed);
    clock.set(12_000);
    // "b" (expiry 12 000) is gone without a release.
    assert!(one(&s, lease("c", 2, "d", 10_000)).passed);
    assert_eq!(s.active_leases("c"), 2);
}

#[test]
fn a_lease_id_is_held_once() {
    let (_clock, s) = store(0);
    let a = s.admit_now(&[lease("c", 1, "r", 1000), lease("c", 1, "r", 1000)]);
    assert!(a.admitted);
    assert_eq!(s.active_leases("c"), 1);
    // Taking a held lease again counts the held one (as Redis does).
    assert!(!one(&s, lease("c", 1, "r", 1000)).passed);
}

#[test]
fn token_grant_is_the_minimum_over_budgets() {
    let (_clock, s) = store(30_000);
    let a = s.admit_now(&[
        budget("a", 1000, 60_000, 101, 600),
        budget("b", 300, 60_000, 101, 600),
    ]);
    assert!(a.admitted);
    for st in &a.statuses {
        assert_eq!(
            (st.granted, st.window_start_ms, st.reset_ms),
            (300, 0, 30_000)
        );
    }
    assert_eq!((a.statuses[0].remaining, a.statuses[1].remaining), (700, 0));
    assert_eq!((s.tokens_used("a", 0), s.tokens_used("b", 0)), (300, 300));
    let b = s.admit_now(&[
        budget("a", 1000, 60_000, 101, 600),
        budget("b", 300, 60_000, 101, 600),
    ]);
    assert!(!b.admitted);
    // "b" has nothing left; "a" fails with it (the grant is 0), but its
    // remaining count shows it could have granted the request.
    assert!(!b.statuses[0].passed && !b.statuses[1].passed);
    assert_eq!((b.statuses[0].remaining, b.statuses[1].remaining), (700, 0));
    assert_eq!((b.statuses[0].remaining, b.statuses[1].remaining), (700, 0));
    assert_eq!(b.statuses[1].retry_after_ms, 30_000);
    assert_eq!(b.statuses[0].granted, 0);
    assert_eq!(s.tokens_used("a", 0), 300);
}

#[test]
fn a_grant_below_another_budgets_need_fails_that_budget() {
    let (_clock, s) = store(0);
    let a = s.admit_now(&[
        budget("a", 1000, 60_000, 500, 900),
        budget("b", 100, 60_000, 50, 900),
    ]);
    assert!(!a.admitted);
    assert!(!a.statuses[0].passed && a.statuses[1].passed);
    assert_eq!(a.statuses[0].retry_after_ms, 60_000);
    // The same when another check fails too.
    assert!(one(&s, fixed("f", 1, 1000)).passed);
    let a = s.admit_now(&[
        budget("a", 1000, 60_000, 500, 900),
        budget("b", 100, 60_000, 50, 900),
        fixed("f", 1, 1000),
    ]);
    let passed: Vec<bool> = a.statuses.iter().map(|st| st.passed).collect();
    assert_eq!(passed, [false, true, false]);
}

#[test]
fn a_denied_call_commits_nothing() {
    let (_clock, s) = store(0);
    assert!(one(&s, lease("c", 1, "held", 60_000)).passed);
    let call = [
        fixed("f", 5, 1000),
        sliding("s", 5, 1000),
        bucket("b", 1, 5),
        budget("t", 1000, 60_000, 10, 100),
        lease("c", 1, "new", 60_000),
    ];
    let a = s.admit_now(&call);
    assert!(!a.admitted);
    // The passing checks report the state now, as if never asked.
    let left: Vec<u64> = a.statuses.iter().map(|st| st.remaining).collect();
    assert_eq!(left, vec![5, 5, 5, 1000, 0]);
    assert!(a.statuses.iter().all(|st| st.granted == 0));
    s.settle_now(&[Settle::Release {
        key: "c".into(),
        lease_id: "held".into(),
    }]);
    let a = s.admit_now(&call);
    assert!(a.admitted);
    let left: Vec<u64> = a.statuses.iter().map(|st| st.remaining).collect();
    assert_eq!(left, vec![4, 4, 4, 900, 0]);
}

#[test]
fn checks_sharing_a_key_are_judged_on_their_own() {
    // As the Redis store: each check sees the state before the call; the
    // counts add up on commit.
    let (_clock, s) = store(0);
    assert!(
        s.admit_now(&[fixed("f", 1, 1000), fixed("f", 1, 1000)])
            .admitted
    );
    assert_eq!(one(&s, fixed("f", 5, 1000)).remaining, 2);
    assert!(
        s.admit_now(&[sliding("s", 1, 1000), sliding("s", 1, 1000)])
            .admitted
    );
    assert_eq!(one(&s, sliding("s", 5, 1000)).remaining, 2);
    // A bucket keeps the level of the last check.
    assert!(
        s.admit_now(&[bucket("b", 1, 5), bucket("b", 1, 5)])
            .admitted
    );
    assert_eq!(one(&s, bucket("b", 1, 5)).remaining, 3);
    let a = s.admit_now(&[lease("c", 1, "x", 1000), lease("c", 1, "y", 1000)]);
    assert!(a.admitted);
    assert_eq!(s.active_leases("c"), 2);
    let a = s.admit_now(&[
        budget("t", 1000, 60_000, 1, 800),
        budget("t", 1000, 60_000, 1, 300),
    ]);
    assert_eq!((a.admitted, a.statuses[0].granted), (true, 300));
    assert_eq!(a.statuses[0].remaining, 700);
    assert_eq!(s.tokens_used("t", 0), 600);
}

#[test]
fn settle_refunds_and_charges_the_current_window() {
    let (_clock, s) = store(1000);
    let a = s.admit_now(&[budget("t", 1000, 60_000, 1, 600)]);
    assert_eq!(a.statuses[0].granted, 600);
    let adjust = |delta: i64| Settle::Tokens {
        key: "t".into(),
        window_ms: 60_000,
        window_start_ms: 0,
        delta,
    };
    s.settle_now(&[adjust(-400)]);
    assert_eq!(s.tokens_used("t", 0), 200);
    s.settle_now(&[adjust(100)]);
    assert_eq!(s.tokens_used("t", 0), 300);
    s.settle_now(&[adjust(-1000)]);
    assert_eq!(s.tokens_used("t", 0), 0);
    // A charge over the limit is kept (the tokens were used).
    s.settle_now(&[adjust(1500)]);
    let st = one(&s, budget("t", 1000, 60_000, 1, 10));
    assert_eq!((st.passed, st.remaining), (false, 0));
}

/// A stand-in's counts, taken, add up in another store: fixed windows
/// (`Settle::Requests`), sliding windows (`Settle::Logged`, counted when
/// handed over) and budgets; the stand-in starts empty.
#[test]
fn counts_taken_from_a_stand_in_add_up_in_another_store() {
    let (_clock, stand_in) = store(1000);
    for _ in 0..3 {
        assert!(stand_in.admit_now(&[fixed("w", 10, 60_000)]).admitted);
    }
    assert!(stand_in.admit_now(&[sliding("s", 10, 60_000)]).admitted);
    assert!(
        stand_in
            .admit_now(&[budget("t", 1000, 60_000, 1, 200)])
            .admitted
    );
    let mut ops = stand_in.take_counts();
    ops.sort_by_key(|op| format!("{op:?}"));
    assert_eq!(
        ops,
        [
            Settle::Logged {
                key: "s".into(),
                window_ms: 60_000,
                count: 1,
            },
            Settle::Requests {
                key: "w".into(),
                window_ms: 60_000,
                window_start_ms: 0,
                delta: 3,
            },
            Settle::Tokens {
                key: "t".into(),
                window_ms: 60_000,
                window_start_ms: 0,
                delta: 200,
            },
        ]
    );
    assert_eq!(stand_in.tracked_keys(), 0);

    let (clock, shared) = store(2000);
    assert!(shared.admit_now(&[fixed("w", 10, 60_000)]).admitted);
    shared.settle_now(&ops);
    assert_eq!(one(&shared, fixed("w", 10, 60_000)).remaining, 5);
    assert_eq!(shared.tokens_used("t", 0), 200);
    // (`one` admits: each call adds one.)
    assert_eq!(one(&shared, sliding("s", 10, 60_000)).remaining, 8);
    // The handed-over admission (made at 1 000) counts from when it was
    // handed over (2 000): still in the window at 61 500.
    clock.set(61_500);
    assert_eq!(one(&shared, sliding("s", 10, 60_000)).remaining, 7);
    clock.set(62_001);
    assert_eq!(one(&shared, sliding("s", 10, 60_000)).remaining, 8);
    // Of an expired window, nothing is added.
    let (_clock, later) = store(61_000);
    later.settle_now(&ops);
    assert_eq!(one(&later, fixed("w", 10, 60_000)).remaining, 9);
}

#[test]
fn settle_of_an_expired_window_is_ignored() {
    let (clock, s) = store(59_000);
    assert!(s.admit_now(&[budget("t", 1000, 60_000, 1, 600)]).admitted);
    clock.set(61_000);
    s.settle_now(&[Settle::Tokens {
        key: "t".into(),
        window_ms: 60_000,
        window_start_ms: 0,
        delta: 5000,
    }]);
    assert_eq!(s.tokens_used("t", 60_000), 0);
    let st = one(&s, budget("t", 1000, 60_000, 1, 10));
    assert_eq!((st.remaining, st.window_start_ms), (990, 60_000));
}

#[test]
fn releasing_an_unknown_lease_is_harmless() {
    let (_clock, s) = store(0);
    s.settle_now(&[Settle::Release {
        key: "none".into(),
        lease_id: "x".into(),
    }]);
    assert_eq!(s.tracked_keys(), 0);
}

#[test]
fn sweep_drops_expired_state_only() {
    let (clock, s) = store(0);
    for i in 0..50 {
        let k = format!("k{i}");
        let call = [
            fixed(&k, 10, 1000),
            sliding(&k, 10, 1000),
            bucket(&k, 1, 10),
            lease(&k, 10, "r", 5000),
            budget(&k, 1000, 60_000, 1, 10),
        ];
        assert!(s.admit_now(&call).admitted);
    }
    assert_eq!(s.tracked_keys(), 250);
    clock.set(999);
    s.sweep();
    assert_eq!(s.tracked_keys(), 250);
    // Windows and logs are over; buckets full again (1 token per second).
    clock.set(1000);
    s.sweep();
    assert_eq!(s.tracked_keys(), 100);
    clock.set(5000);
    s.sweep();
    assert_eq!(s.tracked_keys(), 50);
    clock.set(60_000);
    s.sweep();
    assert_eq!(s.tracked_keys(), 0);
}

#[test]
fn sweeps_run_by_themselves() {
    let (clock, s) = store(0);
    for i in 0..100 {
        assert!(one(&s, fixed(&format!("k{i}"), 1, 1000)).passed);
    }
    clock.set(1000);
    for _ in 0..SWEEP_EVERY {
        s.admit_now(&[]);
    }
    assert_eq!(s.tracked_keys(), 0);
}

#[test]
fn still_buckets_are_kept_for_a_day() {
    let (clock, s) = store(0);
    assert!(one(&s, bucket("b", 0, 2)).passed);
    clock.set(STILL_BUCKET_MS - 1);
    let st = one(&s, bucket("b", 0, 2));
    assert_eq!((st.passed, st.retry_after_ms, st.reset_ms), (true, 0, 0));
    assert!(!one(&s, bucket("b", 0, 2)).passed);
    clock.set(2 * STILL_BUCKET_MS);
    s.sweep();
    assert_eq!(s.tracked_keys(), 0);
}

#[test]
fn zero_lengths_do_not_divide_by_zero() {
    let (_clock, s) = store(12_345);
    let a = s.admit_now(&[
        fixed("f", 1, 0),
        sliding("s", 1, 0),
        budget("t", 5, 0, 1, 5),
    ]);
    assert!(a.admitted);
    assert_eq!(a.statuses[0].window_start_ms, 12_345);
}

#[test]
fn an_empty_call_admits() {
    let (_clock, s) = store(0);
    assert_eq!(
        s.admit_now(&[]),
        Admission {
            admitted: true,
            statuses: Default::default()
        }
    );
}

#[test]
fn the_trait_answers_like_the_sync_calls() {
    let (_clock, s) = store(0);
    let store: &dyn CounterStore = &s;
    let a = ready(store.admit(&[lease("c", 1, "r", 1000)])).unwrap();
    assert!(a.admitted);
    ready(store.settle(&[Settle::Release {
        key: "c".into(),
        lease_id: "r".into(),
    }]))
    .unwrap();
    assert_eq!(s.active_leases("c"), 0);
}

#[test]
fn calendar_months_are_windows_of_their_own_length() {
    use crate::limits::store::{budget_window, CALENDAR_MONTH};
    let ms = |t: &str| {
        humantime::parse_rfc3339(t)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    const DAY: u64 = 86_400_000;
    for (at, first, days) in [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z", 31),
        ("2026-12-05T07:10:00Z", "2026-12-01T00:00:00Z", 31),
        ("2026-12-31T23:59:59.999Z", "2026-12-01T00:00:00Z", 31),
        ("2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", 31),
        ("2024-02-29T12:00:00Z", "2024-02-01T00:00:00Z", 29),
        ("2023-02-10T00:00:00Z", "2023-02-01T00:00:00Z", 28),
        ("2000-02-10T00:00:00Z", "2000-02-01T00:00:00Z", 29),
        ("2100-02-10T00:00:00Z", "2100-02-01T00:00:00Z", 28),
        ("2026-04-30T23:00:00Z", "2026-04-01T00:00:00Z", 30),
        ("2026-03-01T00:00:00Z", "2026-03-01T00:00:00Z", 31),
    ] {
        assert_eq!(
            budget_window(ms(at), CALENDAR_MONTH),
            (ms(first), days * DAY),
            "{at}"
        );
    }
    // Other windows stay aligned to the epoch.
    assert_eq!(budget_window(90_061_000, DAY), (86_400_000, DAY));
}

#[test]
fn a_monthly_budget_resets_with_the_month() {
    use crate::limits::store::CALENDAR_MONTH;
    let dec_31 = 1_798_761_600_000 - 1000; // 2026-12-31T23:59:59Z
    let clock = FakeClock::at(dec_31);
    let store = LocalCounterStore::new(clock.clone());
    let monthly = |want: u64| Check::Tokens {
        key: "m".into(),
        limit: 100,
        window_ms: CALENDAR_MONTH,
        need: 1,
        want,
        money: true,
    };
    let a = store.admit_now(&[monthly(100)]);
    assert!(a.admitted);
    assert_eq!(a.statuses[0].reset_ms, 1000);
    assert!(!store.admit_now(&[monthly(1)]).admitted);
    clock.advance(1000);
    let a = store.admit_now(&[monthly(40)]);
    assert!(a.admitted, "a new month");
    assert_eq!(a.statuses[0].window_start_ms, 1_798_761_600_000);
    assert_eq!(a.statuses[0].reset_ms, 31 * 86_400_000);
}

#[test]
fn token_and_money_budgets_grant_apart() {
    let store = LocalCounterStore::new(FakeClock::at(0));
    let money = Check::Tokens {
        key: "usd".into(),
        limit: 10_000,
        window_ms: 60_000,
        need: 1_030,
        want: 7_000,
        money: true,
    };
    let a = store.admit_now(&[budget("tok", 5_000, 60_000, 101, 300), money.clone()]);
    assert!(a.admitted);
    assert_eq!(
        a.statuses.iter().map(|s| s.granted).collect::<Vec<_>>(),
        [300, 7_000]
    );
    // Two money budgets share their grant (the least offer).
    let other = Check::Tokens {
        key: "usd2".into(),
        limit: 2_000,
        window_ms: 60_000,
        need: 1_030,
        want: 7_000,
        money: true,
    };
    let a = store.admit_now(&[money, other, budget("tok", 5_000, 60_000, 101, 300)]);
    assert!(a.admitted, "{a:?}");
    assert_eq!(
        a.statuses.iter().map(|s| s.granted).collect::<Vec<_>>(),
        [2_000, 2_000, 300]
    );
}
