//! Deployment selection: which deployment (arm) of an upstream pool serves a
//! request, and in which order the rest are tried when it fails. Called from
//! `upstream_peer`, once per request ([`order`]) or once per attempt
//! ([`select`] with the arms already tried in `exclude`).
//!
//! Every strategy ranks the *eligible* arms: those not excluded and whose
//! breaker allows them ([`Candidate::available`]); when none is available,
//! all non-excluded arms are eligible (trying an open deployment beats
//! failing outright). Ties go to the lower `priority`, then to the earlier
//! arm in config order, so every ranking is deterministic for a given
//! [`SelectState`].
//!
//! The routing design's four factors map to: cost → `lowest_cost`, quality →
//! `highest_success_rate`, latency → `lowest_latency`, availability → the
//! breaker filter above; `weighted_score` blends all four, and `bandit`
//! (Thompson sampling, the internal channel's report) learns success rates online.

use serde::{Deserialize, Serialize};

use super::rng::Rng;
use super::stats::ArmStats;

/// How the first deployment is chosen and the rest ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest `priority` first (config order breaks ties): the fallback order.
    #[default]
    Priority,
    /// Smooth weighted round robin (nginx's), deterministic.
    Weighted,
    /// Cheapest expected request (input + output token prices).
    LowestCost,
    /// Lowest EWMA time to first byte; never-tried arms first.
    LowestLatency,
    /// Highest decayed success rate; never-tried arms first.
    HighestSuccessRate,
    /// Thompson sampling: Beta(successes + 1, failures + 1) × latency factor.
    Bandit,
    /// Weighted blend of normalised cost, quality, latency, availability.
    WeightedScore,
}

/// Weights of the four factors of [`Strategy::WeightedScore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoreWeights {
    /// Cheaper expected request scores higher (min–max normalised).
    pub cost: f64,
    /// Lifetime success rate, Laplace-smoothed.
    pub quality: f64,
    /// Lower EWMA time to first byte scores higher (min–max normalised;
    /// arms without a sample score 1).
    pub latency: f64,
    /// Recent (decayed) success rate; 0 for an arm whose breaker is open.
    pub availability: f64,
}

impl Default for ScoreWeights {
    fn default() -> Self {
        ScoreWeights {
            cost: 1.0,
            quality: 1.0,
            latency: 1.0,
            availability: 1.0,
        }
    }
}

/// Strategy plus its parameters (one per upstream pool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StrategyConfig {
    /// The strategy.
    pub strategy: Strategy,
    /// Input tokens a request is expected to send (for cost ranking).
    pub expected_input_tokens: u64,
    /// Output tokens a request is expected to receive (for cost ranking).
    pub expected_output_tokens: u64,
    /// Bandit latency scale: a sampled success rate is multiplied by
    /// `1 / (1 + ewma_ttfb_ms / latency_penalty_ms)`, so an arm this slow
    /// scores half. 0 turns the penalty off.
    pub latency_penalty_ms: f64,
    /// Factor weights for `weighted_score`.
    pub score_weights: ScoreWeights,
}

impl Default for StrategyConfig {
    fn default() -> Self {
        StrategyConfig {
            strategy: Strategy::default(),
            expected_input_tokens: 1_000,
            expected_output_tokens: 500,
            latency_penalty_ms: 2_000.0,
            score_weights: ScoreWeights::default(),
        }
    }
}

impl StrategyConfig {
    /// A config with default parameters.
    pub fn new(strategy: Strategy) -> Self {
        StrategyConfig {
            strategy,
            ..StrategyConfig::default()
        }
    }

    /// Every problem with these settings (empty when valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(self.latency_penalty_ms.is_finite() && self.latency_penalty_ms >= 0.0) {
            out.push(format!(
                "latency_penalty_ms must be a non-negative number, got {}",
                self.latency_penalty_ms
            ));
        }
        let w = &self.score_weights;
        let weights = [
            ("cost", w.cost),
            ("quality", w.quality),
            ("latency", w.latency),
            ("availability", w.availability),
        ];
        for (name, v) in weights {
            if !(v.is_finite() && v >= 0.0) {
                out.push(format!(
                    "score_weights.{name} must be a non-negative number, got {v}"
                ));
            }
        }
        let sum: f64 = weights.iter().map(|(_, v)| v).sum();
        if self.strategy == Strategy::WeightedScore && (sum.is_nan() || sum <= 0.0) {
            out.push("weighted_score needs at least one positive score weight".to_string());
        }
        out
    }
}

/// One deployment as the strategies see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Deployment name (for logs and the report).
    pub name: String,
    /// Share for `weighted`; 0 drains the arm (it is still a fallback).
    pub weight: u32,
    /// Price per 1M input tokens.
    pub price_in_per_m: f64,
    /// Price per 1M output tokens.
    pub price_out_per_m: f64,
    /// Lower goes first for `priority` and breaks every other tie.
    pub priority: u32,
    /// Whether the deployment's breaker allows a request now.
    pub available: bool,
}

impl Candidate {
    /// Weight 1, free, priority 0, available.
    pub fn new(name: impl Into<String>) -> Self {
        Candidate {
            name: name.into(),
            weight: 1,
            price_in_per_m: 0.0,
            price_out_per_m: 0.0,
            priority: 0,
            available: true,
        }
    }

    /// Expected price of one request under `cfg`'s token estimates.
    pub fn expected_cost(&self, cfg: &StrategyConfig) -> f64 {
        (self.price_in_per_m * cfg.expected_input_tokens as f64
            + self.price_out_per_m * cfg.expected_output_tokens as f64)
            / 1_000_000.0
    }
}

/// The mutable part of selection: the RNG (bandit) and the smooth weighted
/// round robin's current weights. One per upstream pool per worker (or
/// behind the pool's `Mutex`); build a new one when the pool's deployments
/// change (the weights are indexed like the candidates).
#[derive(Debug, Clone)]
pub struct SelectState {
    /// Random source for `bandit`.
    pub rng: Rng,
    wrr: Vec<i64>,
}

impl SelectState {
    /// State with an RNG seeded from `seed`.
    pub fn new(seed: u64) -> Self {
        SelectState::with_rng(Rng::new(seed))
    }

    /// State around an existing RNG.
    pub fn with_rng(rng: Rng) -> Self {
        SelectState {
            rng,
            wrr: Vec::new(),
        }
    }
}

/// The arm to try now, or `None` when every arm is excluded. Never returns
/// an excluded arm, nor an unavailable one while an available arm remains.
pub fn select(
    cfg: &StrategyConfig,
    candidates: &[Candidate],
    stats: &[ArmStats],
    state: &mut SelectState,
    exclude: &[usize],
) -> Option<usize> {
    let pool = eligible(candidates, exclude);
    if cfg.strategy == Strategy::Weighted {
        return wrr_pick(state, candidates, &pool);
    }
    rank(cfg, candidates, stats, state, &pool).first().copied()
}

/// The full try order: the arm [`select`] would choose first, then the other
/// eligible arms ranked by the same strategy (`weighted`: by weight). Arms
/// whose breaker is open are left out unless all non-excluded arms are.
pub fn order(
    cfg: &StrategyConfig,
    candidates: &[Candidate],
    stats: &[ArmStats],
    state: &mut SelectState,
    exclude: &[usize],
) -> Vec<usize> {
    let pool = eligible(candidates, exclude);
    if cfg.strategy != Strategy::Weighted {
        return rank(cfg, candidates, stats, state, &pool);
    }
    let Some(first) = wrr_pick(state, candidates, &pool) else {
        return Vec::new();
    };
    let rest: Vec<usize> = pool.iter().copied().filter(|&i| i != first).collect();
    let mut out = vec![first];
    out.extend(sort_ascending(&rest, candidates, |i| {
        -f64::from(candidates[i].weight)
    }));
    out
}

/// Non-excluded arms in config order: the available ones, or all of them
/// when none is available.
fn eligible(candidates: &[Candidate], exclude: &[usize]) -> Vec<usize> {
    let open: Vec<usize> = (0..candidates.len())
        .filter(|i| !exclude.contains(i))
        .collect();
    let available: Vec<usize> = open
        .iter()
        .copied()
        .filter(|&i| candidates[i].available)
        .collect();
    if available.is_empty() {
        open
    } else {
        available
    }
}

/// Sorts `pool` by `key` ascending (NaN last), then priority, then index.
fn sort_ascending(
    pool: &[usize],
    candidates: &[Candidate],
    key: impl Fn(usize) -> f64,
) -> Vec<usize> {
    let mut keyed: Vec<(f64, u32, usize)> = pool
        .iter()
        .map(|&i| {
            let k = key(i);
            let k = if k.is_nan() { f64::INFINITY } else { k };
            (k, candidates[i].priority, i)
        })
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    keyed.into_iter().map(|(_, _, i)| i).collect()
}

fn stat(stats: &[ArmStats], i: usize) -> ArmStats {
    stats.get(i).cloned().unwrap_or_default()
}

fn rank(
    cfg: &StrategyConfig,
    candidates: &[Candidate],
    stats: &[ArmStats],
    state: &mut SelectState,
    pool: &[usize],
) -> Vec<usize> {
    match cfg.strategy {
        Strategy::Priority => sort_ascending(pool, candidates, |_| 0.0),
        Strategy::Weighted => {
            sort_ascending(pool, candidates, |i| -f64::from(candidates[i].weight))
        }
        Strategy::LowestCost => {
            sort_ascending(pool, candidates, |i| candidates[i].expected_cost(cfg))
        }
        Strategy::LowestLatency => sort_ascending(pool, candidates, |i| {
            let s = stat(stats, i);
            match (s.untried(), s.ewma_ttfb_ms) {
                (true, _) => -1.0,
                (false, Some(ms)) => ms,
                (false, None) => f64::INFINITY,
            }
        }),
        Strategy::HighestSuccessRate => sort_ascending(pool, candidates, |i| {
            let s = stat(stats, i);
            if s.untried() {
                -2.0
            } else {
                -s.recent_success_rate()
            }
        }),
        Strategy::Bandit => {
            let mut scores = vec![0.0; candidates.len()];
            for &i in pool {
                scores[i] = bandit_score(cfg, &stat(stats, i), &mut state.rng);
            }
            sort_ascending(pool, candidates, |i| -scores[i])
        }
        Strategy::WeightedScore => {
            let scores = weighted_scores(cfg, candidates, stats, pool);
            sort_ascending(pool, candidates, |i| -scores[i])
        }
    }
}

/// One Thompson sample for an arm, scaled by its latency factor.
fn bandit_score(cfg: &StrategyConfig, s: &ArmStats, rng: &mut Rng) -> f64 {
    let theta = rng.beta(s.successes as f64 + 1.0, s.failures() as f64 + 1.0);
    theta * latency_factor(cfg, s)
}

fn latency_factor(cfg: &StrategyConfig, s: &ArmStats) -> f64 {
    match s.ewma_ttfb_ms {
        Some(ms) if cfg.latency_penalty_ms > 0.0 => {
            1.0 / (1.0 + ms.max(0.0) / cfg.latency_penalty_ms)
        }
        _ => 1.0,
    }
}

/// `(max - x) / (max - min)`, or 1 when all values are equal.
fn lower_is_better(x: f64, min: f64, max: f64) -> f64 {
    if max > min {
        (max - x) / (max - min)
    } else {
        1.0
    }
}

fn weighted_scores(
    cfg: &StrategyConfig,
    candidates: &[Candidate],
    stats: &[ArmStats],
    pool: &[usize],
) -> Vec<f64> {
    let w = &cfg.score_weights;
    let total = w.cost + w.quality + w.latency + w.availability;
    let costs: Vec<f64> = pool
        .iter()
        .map(|&i| candidates[i].expected_cost(cfg))
        .collect();
    let lats: Vec<Option<f64>> = pool.iter().map(|&i| stat(stats, i).ewma_ttfb_ms).collect();
    let (cmin, cmax) = min_max(costs.iter().copied());
    let (lmin, lmax) = min_max(lats.iter().flatten().copied());
    let mut scores = vec![0.0; candidates.len()];
    for (k, &i) in pool.iter().enumerate() {
        let s = stat(stats, i);
        let cost = lower_is_better(costs[k], cmin, cmax);
        let latency = lats[k].map_or(1.0, |l| lower_is_better(l, lmin, lmax));
        let quality = s.smoothed_success_rate();
        let availability = if candidates[i].available {
            s.recent_success_rate()
        } else {
            0.0
        };
        let sum = w.cost * cost
            + w.quality * quality
            + w.latency * latency
            + w.availability * availability;
        scores[i] = if total > 0.0 { sum / total } else { 0.0 };
    }
    scores
}

fn min_max(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// One step of smooth weighted round robin over `pool`: every arm gains its
/// weight, the largest current weight wins and pays back the total. Arms of
/// weight 0 only win when every arm in the pool has weight 0.
fn wrr_pick(state: &mut SelectState, candidates: &[Candidate], pool: &[usize]) -> Option<usize> {
    if state.wrr.len() != candidates.len() {
        state.wrr = vec![0; candidates.len()];
    }
    let weighted: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|&i| candidates[i].weight > 0)
        .collect();
    if weighted.is_empty() {
        return sort_ascending(pool, candidates, |_| 0.0).first().copied();
    }
    let mut total: i64 = 0;
    let mut best: Option<usize> = None;
    for &i in &weighted {
        let w = i64::from(candidates[i].weight);
        total += w;
        state.wrr[i] += w;
        best = match best {
            Some(b) if state.wrr[b] >= state.wrr[i] => Some(b),
            _ => Some(i),
        };
    }
    if let Some(b) = best {
        state.wrr[b] -= total;
    }
    best
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
