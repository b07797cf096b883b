//! [`SeenRemaining`]: what the shared counter store last answered for the
//! keys of rules that fail `local_share` — how much of the limit was left,
//! and in which window — so that while the store is unreachable each
//! instance shares out what was left ([`super::LimitPlan::local_share`]),
//! not the whole limit again.
//!
//! An answer holds while its window does: a fixed window or budget until
//! the window it named ends, a sliding window for one window length after
//! the answer (its old admissions have left by then). Concurrency and
//! buckets are not kept (slots come back as requests end, buckets refill):
//! their shares are of the whole limit. At most `cap` keys are kept; the
//! book is emptied when a new key finds it full (the shares of the keys
//! then forgotten fall back to the whole limit until the store answers
//! for them again).
//!
//! It also keeps the fleet an outage's shares are of
//! ([`SeenRemaining::outage_fleet`]): the largest fleet known since the
//! store became unreachable, so that a fleet list that shrinks meanwhile
//! (a registry in the same Redis that came back empty lists only the
//! instances that beat since) cannot grow an instance's share.

use super::store::{budget_window, Check, CheckStatus};
use std::collections::HashMap;

/// The last answer per key.
#[derive(Debug)]
pub struct SeenRemaining {
    map: HashMap<String, Seen>,
    cap: usize,
    /// The largest fleet known since the outage began (0: no outage).
    outage_fleet: u64,
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    window_start_ms: u64,
    remaining: u64,
    at_ms: u64,
}

impl SeenRemaining {
    /// A book of at most `cap` keys.
    pub fn new(cap: usize) -> SeenRemaining {
        SeenRemaining {
            map: HashMap::new(),
            cap: cap.max(1),
            outage_fleet: 0,
        }
    }

    /// While the store is unreachable: the number of instances to share
    /// the limits among, given the `live` instances the fleet list shows
    /// now — the largest number known since the outage began (at least
    /// 1). A list that shrinks during the outage does not grow the shares;
    /// one that grows shrinks them.
    pub fn outage_fleet(&mut self, live: u64) -> u64 {
        self.outage_fleet = self.outage_fleet.max(live).max(1);
        self.outage_fleet
    }

    /// The store answers again: the next outage's fleet starts from the
    /// list known then.
    pub fn outage_over(&mut self) {
        self.outage_fleet = 0;
    }

    /// Notes the store's answer `status` to `check` at `now_ms`.
    pub fn record(&mut self, check: &Check, status: &CheckStatus, now_ms: u64) {
        if !matches!(check, Check::Window { .. } | Check::Tokens { .. }) {
            return;
        }
        let seen = Seen {
            window_start_ms: status.window_start_ms,
            remaining: status.remaining,
            at_ms: now_ms,
        };
        if let Some(held) = self.map.get_mut(check.key()) {
            *held = seen;
            return;
        }
        if self.map.len() >= self.cap {
            self.map.clear();
        }
        self.map.insert(check.key().to_string(), seen);
    }

    /// What was left of `check`'s limit at the last answer, while that
    /// answer holds at `now_ms`.
    pub fn remaining(&self, check: &Check, now_ms: u64) -> Option<u64> {
        let seen = self.map.get(check.key())?;
        let holds = match check {
            Check::Window {
                window_ms,
                sliding: false,
                ..
            }
            | Check::Tokens { window_ms, .. } => {
                budget_window(now_ms, *window_ms).0 == seen.window_start_ms
            }
            Check::Window {
                window_ms,
                sliding: true,
                ..
            } => now_ms.saturating_sub(seen.at_ms) < *window_ms,
            Check::Bucket { .. } | Check::Concurrency { .. } => false,
        };
        holds.then_some(seen.remaining)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(key: &str) -> Check {
        Check::Window {
            key: key.into(),
            limit: 30,
            window_ms: 60_000,
            sliding: false,
            cost: 1,
        }
    }

    fn status(remaining: u64, window_start_ms: u64) -> CheckStatus {
        CheckStatus {
            passed: true,
            limit: 30,
            remaining,
            window_start_ms,
            ..CheckStatus::default()
        }
    }

    #[test]
    fn an_outage_shares_among_the_largest_fleet_it_knew() {
        let mut seen = SeenRemaining::new(10);
        assert_eq!(seen.outage_fleet(3), 3);
        // The registry came back empty: only this instance listed.
        assert_eq!(seen.outage_fleet(1), 3);
        // A fourth joined: smaller shares.
        assert_eq!(seen.outage_fleet(4), 4);
        assert_eq!(seen.outage_fleet(2), 4);
        seen.outage_over();
        assert_eq!(seen.outage_fleet(2), 2);
        seen.outage_over();
        assert_eq!(seen.outage_fleet(0), 1);
    }

    #[test]
    fn a_fixed_window_answer_holds_until_its_window_ends() {
        let mut seen = SeenRemaining::new(10);
        seen.record(&fixed("w"), &status(28, 60_000), 61_000);
        assert_eq!(seen.remaining(&fixed("w"), 119_999), Some(28));
        assert_eq!(seen.remaining(&fixed("w"), 120_000), None);
        assert_eq!(seen.remaining(&fixed("other"), 61_000), None);
        // The latest answer wins.
        seen.record(&fixed("w"), &status(20, 60_000), 62_000);
        assert_eq!(seen.remaining(&fixed("w"), 62_000), Some(20));
    }

    #[test]
    fn a_sliding_window_answer_holds_for_one_window_length() {
        let sliding = Check::Window {
            key: "s".into(),
            limit: 30,
            window_ms: 10_000,
            sliding: true,
            cost: 1,
        };
        let mut seen = SeenRemaining::new(10);
        seen.record(&sliding, &status(5, 0), 1_000);
        assert_eq!(seen.remaining(&sliding, 10_999), Some(5));
        assert_eq!(seen.remaining(&sliding, 11_000), None);
    }

    #[test]
    fn budgets_are_kept_and_buckets_and_slots_are_not() {
        let budget = Check::Tokens {
            key: "t".into(),
            limit: 1000,
            window_ms: 60_000,
            need: 1,
            want: 10,
            money: false,
        };
        let lease = Check::Concurrency {
            key: "c".into(),
            limit: 5,
            lease_ms: 1000,
            lease_id: "x".into(),
        };
        let mut seen = SeenRemaining::new(10);
        seen.record(&budget, &status(400, 0), 1_000);
        seen.record(&lease, &status(3, 0), 1_000);
        assert_eq!(seen.remaining(&budget, 2_000), Some(400));
        assert_eq!(seen.remaining(&lease, 2_000), None);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn a_full_book_is_emptied_for_a_new_key() {
        let mut seen = SeenRemaining::new(2);
        seen.record(&fixed("a"), &status(1, 0), 0);
        seen.record(&fixed("b"), &status(2, 0), 0);
        seen.record(&fixed("b"), &status(3, 0), 0);
        assert_eq!(seen.len(), 2);
        seen.record(&fixed("c"), &status(4, 0), 0);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen.remaining(&fixed("a"), 0), None);
        assert_eq!(seen.remaining(&fixed("c"), 0), Some(4));
    }
}
