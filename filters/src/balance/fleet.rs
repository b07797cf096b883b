//! The fleet's routing state: what each instance publishes about its
//! deployments ([`Published`]), the merged view of the other instances'
//! figures ([`FleetView`], [`merge_peers`]) and how an instance folds it
//! into its own decision ([`FleetView::with_local`], [`FleetView::open_at`]).
//! Each instance still decides on its own; the fleet's figures only add to
//! its evidence, and a breaker open on another instance keeps this one
//! away from the deployment until it would close there.

use super::stats::ArmStats;
use serde::{Deserialize, Serialize};

/// Arms per deployment in the report (operation × channel).
pub const ARMS: usize = 4;

/// One deployment's figures as one instance publishes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub trials: u64,
    pub successes: u64,
    pub ewma_ttfb_ms: Option<f64>,
    pub decayed_success_rate: Option<f64>,
    /// Wall-clock ms until which its breaker is open there (0: not open).
    pub open_until_ms: u64,
    /// Trials and successes per report arm.
    pub arms: [(u64, u64); ARMS],
}

/// The other instances' figures for one deployment, merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetView {
    /// Other instances that published figures for it.
    pub instances: u32,
    pub trials: u64,
    pub successes: u64,
    /// Trial-weighted mean of their latency averages.
    pub ewma_ttfb_ms: Option<f64>,
    /// Trial-weighted mean of their recent success rates.
    pub decayed_success_rate: Option<f64>,
    /// The latest moment a breaker is open on one of them.
    pub open_until_ms: u64,
    pub arms: [(u64, u64); ARMS],
}

/// Trial-weighted mean of `(value, weight)` pairs with a value.
fn weighted(items: impl Iterator<Item = (Option<f64>, u64)>) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0u64);
    for (v, w) in items {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            let w = w.max(1);
            sum += v * w as f64;
            weight += w;
        }
    }
    (weight > 0).then(|| sum / weight as f64)
}

/// Merges what several instances published for one deployment.
pub fn merge_peers<'a>(peers: impl IntoIterator<Item = &'a Published>) -> FleetView {
    let peers: Vec<&Published> = peers.into_iter().collect();
    let mut view = FleetView {
        instances: peers.len() as u32,
        ewma_ttfb_ms: weighted(peers.iter().map(|p| (p.ewma_ttfb_ms, p.trials))),
        decayed_success_rate: weighted(peers.iter().map(|p| (p.decayed_success_rate, p.trials))),
        ..FleetView::default()
    };
    for p in peers {
        view.trials = view.trials.saturating_add(p.trials);
        view.successes = view.successes.saturating_add(p.successes);
        view.open_until_ms = view.open_until_ms.max(p.open_until_ms);
        for (sum, arm) in view.arms.iter_mut().zip(p.arms) {
            sum.0 = sum.0.saturating_add(arm.0);
            sum.1 = sum.1.saturating_add(arm.1);
        }
    }
    view
}

impl FleetView {
    /// Whether another instance's breaker keeps the deployment away at
    /// `wall_ms`.
    pub fn open_at(&self, wall_ms: u64) -> bool {
        self.open_until_ms > wall_ms
    }

    /// This instance's statistics with the fleet's added: counts summed,
    /// averages weighted by trials. Selection state (`selections`, last
    /// selection) stays this instance's own.
    pub fn with_local(&self, local: &ArmStats) -> ArmStats {
        if self.instances == 0 {
            return local.clone();
        }
        let pair = |mine: Option<f64>, theirs: Option<f64>| {
            weighted([(mine, local.trials), (theirs, self.trials)].into_iter())
        };
        ArmStats {
            trials: local.trials.saturating_add(self.trials),
            successes: local.successes.saturating_add(self.successes),
            ewma_ttfb_ms: pair(local.ewma_ttfb_ms, self.ewma_ttfb_ms),
            decayed_success_rate: pair(local.decayed_success_rate, self.decayed_success_rate),
            ..local.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(trials: u64, successes: u64, ms: f64, open: u64) -> Published {
        Published {
            trials,
            successes,
            ewma_ttfb_ms: Some(ms),
            decayed_success_rate: Some(successes as f64 / trials.max(1) as f64),
            open_until_ms: open,
            arms: [(trials, successes), (0, 0), (0, 0), (0, 0)],
        }
    }

    #[test]
    fn peers_merge_by_trials() {
        let a = published(30, 30, 100.0, 0);
        let b = published(10, 0, 500.0, 9_000);
        let v = merge_peers([&a, &b]);
        assert_eq!((v.instances, v.trials, v.successes), (2, 40, 30));
        assert_eq!(v.ewma_ttfb_ms, Some(200.0));
        assert_eq!(v.decayed_success_rate, Some(0.75));
        assert_eq!(v.open_until_ms, 9_000);
        assert_eq!(v.arms[0], (40, 30));
        assert!(v.open_at(8_999) && !v.open_at(9_000));
        assert_eq!(merge_peers([]), FleetView::default());
    }

    #[test]
    fn local_stats_take_the_fleet_in() {
        let view = merge_peers([&published(10, 5, 300.0, 0)]);
        let local = ArmStats {
            trials: 10,
            successes: 10,
            selections: 12,
            ewma_ttfb_ms: Some(100.0),
            decayed_success_rate: Some(1.0),
            last_selected_at_ms: Some(7),
        };
        let both = view.with_local(&local);
        assert_eq!((both.trials, both.successes, both.selections), (20, 15, 12));
        assert_eq!(both.ewma_ttfb_ms, Some(200.0));
        assert_eq!(both.decayed_success_rate, Some(0.75));
        assert_eq!(both.last_selected_at_ms, Some(7));
        // No peers: the local figures as they are.
        assert_eq!(FleetView::default().with_local(&local), local);
        // An untried local arm takes the fleet's averages.
        let fresh = view.with_local(&ArmStats::new());
        assert_eq!(fresh.ewma_ttfb_ms, Some(300.0));
    }
}
