//! Per-arm (per-deployment) statistics that the selection strategies read:
//! trials and successes (lifetime), an exponentially decayed success rate,
//! an EWMA of time to first byte, selections and the time of the last one.
//!
//! The gateway records a selection in `upstream_peer`
//! ([`ArmStats::record_selected`]) and the outcome in `logging`
//! ([`ArmStats::record_outcome`]). Plain struct: the gateway keeps one per
//! deployment behind a `Mutex` (or copies a snapshot per request).

use serde::{Deserialize, Serialize};

/// Smoothing settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Weight of the newest time-to-first-byte sample in the latency EWMA
    /// (0 < alpha ≤ 1; higher reacts faster).
    pub latency_alpha: f64,
    /// Weight of the newest outcome in the decayed success rate
    /// (0 < alpha ≤ 1; 0.05 ≈ the last ~20 outcomes dominate).
    pub success_alpha: f64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            latency_alpha: 0.2,
            success_alpha: 0.05,
        }
    }
}

impl StatsConfig {
    /// Every problem with these settings (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("latency_alpha", self.latency_alpha),
            ("success_alpha", self.success_alpha),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                out.push(format!("{name} must be within (0, 1], got {v}"));
            }
        }
        out
    }
}

/// One arm's statistics. Fields are public so tests and snapshots can build
/// them directly; the gateway changes them only through the methods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArmStats {
    /// Completed attempts (successes + failures).
    pub trials: u64,
    /// Successful attempts.
    pub successes: u64,
    /// Times the arm was chosen (may run ahead of `trials` while in flight).
    pub selections: u64,
    /// EWMA of time to first byte in ms; `None` until the first sample.
    pub ewma_ttfb_ms: Option<f64>,
    /// Exponentially decayed success rate; `None` until the first outcome.
    pub decayed_success_rate: Option<f64>,
    /// When the arm was last chosen (ms since the Unix epoch).
    pub last_selected_at_ms: Option<u64>,
}

fn ewma(prev: Option<f64>, sample: f64, alpha: f64) -> f64 {
    match prev {
        Some(p) => p + alpha * (sample - p),
        None => sample,
    }
}

impl ArmStats {
    /// Fresh, untried statistics.
    pub fn new() -> Self {
        ArmStats::default()
    }

    /// Failed attempts.
    pub fn failures(&self) -> u64 {
        self.trials.saturating_sub(self.successes)
    }

    /// Whether no outcome has been recorded yet.
    pub fn untried(&self) -> bool {
        self.trials == 0
    }

    /// The arm was chosen at `now_ms`.
    pub fn record_selected(&mut self, now_ms: u64) {
        self.selections = self.selections.saturating_add(1);
        self.last_selected_at_ms = Some(now_ms);
    }

    /// An attempt finished. `ttfb_ms` is the time to the first response
    /// byte when one arrived (a failure after the first byte still has one;
    /// a connect error or timeout has none).
    pub fn record_outcome(&mut self, cfg: &StatsConfig, success: bool, ttfb_ms: Option<u64>) {
        self.trials = self.trials.saturating_add(1);
        if success {
            self.successes = self.successes.saturating_add(1);
        }
        let hit = if success { 1.0 } else { 0.0 };
        self.decayed_success_rate = Some(ewma(self.decayed_success_rate, hit, cfg.success_alpha));
        if let Some(ms) = ttfb_ms {
            self.ewma_ttfb_ms = Some(ewma(self.ewma_ttfb_ms, ms as f64, cfg.latency_alpha));
        }
    }

    /// Lifetime success rate `successes / trials`; `None` when untried.
    pub fn success_rate(&self) -> Option<f64> {
        (self.trials > 0).then(|| self.successes as f64 / self.trials as f64)
    }

    /// Laplace-smoothed lifetime rate `(successes + 1) / (trials + 2)`: 0.5
    /// for an untried arm, never exactly 0 or 1.
    pub fn smoothed_success_rate(&self) -> f64 {
        (self.successes as f64 + 1.0) / (self.trials as f64 + 2.0)
    }

    /// The decayed (recent) success rate, else the lifetime one, else 1.0
    /// (an untried arm is presumed healthy).
    pub fn recent_success_rate(&self) -> f64 {
        self.decayed_success_rate
            .or_else(|| self.success_rate())
            .unwrap_or(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_rates() {
        let cfg = StatsConfig::default();
        let mut s = ArmStats::new();
        assert!(s.untried());
        assert_eq!(s.success_rate(), None);
        assert_eq!(s.smoothed_success_rate(), 0.5);
        assert_eq!(s.recent_success_rate(), 1.0);
        s.record_selected(1_000);
        s.record_selected(2_000);
        s.record_outcome(&cfg, true, Some(100));
        s.record_outcome(&cfg, false, None);
        s.record_outcome(&cfg, true, Some(200));
        s.record_outcome(&cfg, true, Some(100));
        assert_eq!((s.trials, s.successes, s.failures()), (4, 3, 1));
        assert_eq!(s.selections, 2);
        assert_eq!(s.last_selected_at_ms, Some(2_000));
        assert_eq!(s.success_rate(), Some(0.75));
        assert!((s.smoothed_success_rate() - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn latency_ewma_follows_alpha() {
        let cfg = StatsConfig {
            latency_alpha: 0.5,
            success_alpha: 0.5,
        };
        let mut s = ArmStats::new();
        s.record_outcome(&cfg, true, Some(100));
        assert_eq!(s.ewma_ttfb_ms, Some(100.0));
        s.record_outcome(&cfg, true, Some(300));
        assert_eq!(s.ewma_ttfb_ms, Some(200.0));
        s.record_outcome(&cfg, false, None);
        assert_eq!(s.ewma_ttfb_ms, Some(200.0), "no sample, no change");
        // Decayed rate: 1, 1, then 1 + 0.5 * (0 - 1) = 0.5.
        assert_eq!(s.decayed_success_rate, Some(0.5));
    }

    #[test]
    fn decayed_rate_recovers_while_lifetime_remembers() {
        let cfg = StatsConfig::default();
        let mut s = ArmStats::new();
        for _ in 0..100 {
            s.record_outcome(&cfg, false, None);
        }
        for _ in 0..100 {
            s.record_outcome(&cfg, true, Some(50));
        }
        assert_eq!(s.success_rate(), Some(0.5));
        assert!(s.recent_success_rate() > 0.99);
    }

    #[test]
    fn config_validation() {
        assert!(StatsConfig::default().problems().is_empty());
        let bad = StatsConfig {
            latency_alpha: 0.0,
            success_alpha: f64::NAN,
        };
        assert_eq!(bad.problems().len(), 2);
    }
}
