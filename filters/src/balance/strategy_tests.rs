use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;

use super::*;
use crate::balance::stats::StatsConfig;

fn arm(name: &str) -> Candidate {
    Candidate::new(name)
}

fn tried(successes: u64, trials: u64, ttfb: Option<f64>) -> ArmStats {
    ArmStats {
        trials,
        successes,
        ewma_ttfb_ms: ttfb,
        decayed_success_rate: (trials > 0).then(|| successes as f64 / trials as f64),
        ..ArmStats::default()
    }
}

fn pick(strategy: Strategy, c: &[Candidate], s: &[ArmStats]) -> Option<usize> {
    select(
        &StrategyConfig::new(strategy),
        c,
        s,
        &mut SelectState::new(1),
        &[],
    )
}

#[test]
fn config_parses_with_defaults_and_rejects_unknown_keys() {
    let c: StrategyConfig =
        serde_json::from_str(r#"{"strategy":"lowest_cost","expected_input_tokens":2000}"#).unwrap();
    assert_eq!(c.strategy, Strategy::LowestCost);
    assert_eq!(c.expected_input_tokens, 2000);
    assert_eq!(c.expected_output_tokens, 500);
    for name in [
        "priority",
        "weighted",
        "lowest_cost",
        "lowest_latency",
        "highest_success_rate",
        "bandit",
        "weighted_score",
    ] {
        let c: StrategyConfig =
            serde_json::from_str(&format!(r#"{{"strategy":"{name}"}}"#)).unwrap();
        assert_eq!(serde_json::to_value(c.strategy).unwrap(), name);
    }
    assert!(serde_json::from_str::<StrategyConfig>(r#"{"strategy":"random"}"#).is_err());
    assert!(serde_json::from_str::<StrategyConfig>(r#"{"stratgy":"bandit"}"#).is_err());
    assert!(StrategyConfig::default().problems().is_empty());
    let bad = StrategyConfig {
        strategy: Strategy::WeightedScore,
        latency_penalty_ms: -1.0,
        score_weights: ScoreWeights {
            cost: 0.0,
            quality: 0.0,
            latency: 0.0,
            availability: 0.0,
        },
        ..StrategyConfig::default()
    };
    assert_eq!(bad.problems().len(), 2, "{:?}", bad.problems());
}

#[test]
fn priority_takes_lowest_priority_then_config_order_skipping_unavailable() {
    let mut c = vec![arm("a"), arm("b"), arm("c")];
    c[0].priority = 2;
    c[1].priority = 1;
    c[2].priority = 1;
    assert_eq!(pick(Strategy::Priority, &c, &[]), Some(1));
    c[1].available = false;
    assert_eq!(pick(Strategy::Priority, &c, &[]), Some(2));
    let order = order(
        &StrategyConfig::new(Strategy::Priority),
        &c,
        &[],
        &mut SelectState::new(0),
        &[],
    );
    assert_eq!(order, vec![2, 0], "open breaker left out");
}

#[test]
fn weighted_is_smooth_and_exact_over_a_cycle() {
    let mut c = vec![arm("a"), arm("b"), arm("c")];
    c[0].weight = 5;
    c[1].weight = 1;
    c[2].weight = 1;
    let cfg = StrategyConfig::new(Strategy::Weighted);
    let mut st = SelectState::new(0);
    let seq: Vec<usize> = (0..7)
        .map(|_| select(&cfg, &c, &[], &mut st, &[]).unwrap())
        .collect();
    // nginx's smooth WRR sequence for 5:1:1.
    assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    let mut counts = [0; 3];
    for _ in 0..700 {
        counts[select(&cfg, &c, &[], &mut st, &[]).unwrap()] += 1;
    }
    assert_eq!(counts, [500, 100, 100]);
}

#[test]
fn weighted_zero_weight_only_as_last_resort() {
    let mut c = vec![arm("a"), arm("b")];
    c[0].weight = 0;
    let cfg = StrategyConfig::new(Strategy::Weighted);
    let mut st = SelectState::new(0);
    for _ in 0..5 {
        assert_eq!(select(&cfg, &c, &[], &mut st, &[]), Some(1));
    }
    assert_eq!(order(&cfg, &c, &[], &mut st, &[]), vec![1, 0]);
    assert_eq!(select(&cfg, &c, &[], &mut st, &[1]), Some(0));
}

#[test]
fn lowest_cost_uses_token_estimates() {
    let mut c = vec![arm("in-cheap"), arm("out-cheap")];
    c[0].price_in_per_m = 1.0;
    c[0].price_out_per_m = 10.0;
    c[1].price_in_per_m = 5.0;
    c[1].price_out_per_m = 2.0;
    let mut cfg = StrategyConfig::new(Strategy::LowestCost);
    cfg.expected_input_tokens = 1_000_000;
    cfg.expected_output_tokens = 100_000;
    // a: 1 + 1 = 2; b: 5 + 0.2 = 5.2.
    assert!((c[0].expected_cost(&cfg) - 2.0).abs() < 1e-9);
    let mut st = SelectState::new(0);
    assert_eq!(select(&cfg, &c, &[], &mut st, &[]), Some(0));
    cfg.expected_input_tokens = 100_000;
    cfg.expected_output_tokens = 1_000_000;
    // a: 0.1 + 10; b: 0.5 + 2.
    assert_eq!(select(&cfg, &c, &[], &mut st, &[]), Some(1));
}

#[test]
fn lowest_latency_explores_untried_first() {
    let c = vec![arm("slow"), arm("fast"), arm("new"), arm("no-sample")];
    let s = vec![
        tried(10, 10, Some(900.0)),
        tried(10, 10, Some(100.0)),
        ArmStats::default(),
        tried(0, 3, None),
    ];
    let cfg = StrategyConfig::new(Strategy::LowestLatency);
    let mut st = SelectState::new(0);
    assert_eq!(order(&cfg, &c, &s, &mut st, &[]), vec![2, 1, 0, 3]);
    assert_eq!(select(&cfg, &c, &s, &mut st, &[2]), Some(1));
}

#[test]
fn highest_success_rate_explores_untried_first() {
    let c = vec![arm("ok"), arm("best"), arm("new"), arm("bad")];
    let s = vec![
        tried(8, 10, None),
        tried(99, 100, None),
        ArmStats::default(),
        tried(1, 10, None),
    ];
    let cfg = StrategyConfig::new(Strategy::HighestSuccessRate);
    let mut st = SelectState::new(0);
    assert_eq!(order(&cfg, &c, &s, &mut st, &[]), vec![2, 1, 0, 3]);
}

#[test]
fn weighted_score_blends_the_four_factors() {
    let mut c = vec![arm("cheap-slow"), arm("dear-fast")];
    c[0].price_in_per_m = 1.0;
    c[1].price_in_per_m = 10.0;
    let s = vec![tried(50, 50, Some(2_000.0)), tried(50, 50, Some(200.0))];
    let mut cfg = StrategyConfig::new(Strategy::WeightedScore);
    cfg.score_weights = ScoreWeights {
        cost: 3.0,
        quality: 1.0,
        latency: 1.0,
        availability: 1.0,
    };
    let mut st = SelectState::new(0);
    assert_eq!(select(&cfg, &c, &s, &mut st, &[]), Some(0));
    cfg.score_weights.cost = 0.5;
    assert_eq!(select(&cfg, &c, &s, &mut st, &[]), Some(1));
    // Quality: equal cost and latency, different success rates.
    let c = vec![arm("flaky"), arm("solid")];
    let s = vec![tried(5, 10, Some(100.0)), tried(10, 10, Some(100.0))];
    assert_eq!(select(&cfg, &c, &s, &mut st, &[]), Some(1));
}

/// Draws a Bernoulli outcome from a separate seeded RNG.
fn simulate_bandit(seed: u64, p: &[f64], ttfb: &[u64], rounds: usize) -> Vec<usize> {
    let c: Vec<Candidate> = (0..p.len()).map(|i| arm(&format!("arm{i}"))).collect();
    let mut stats = vec![ArmStats::default(); p.len()];
    let cfg = StrategyConfig::new(Strategy::Bandit);
    let scfg = StatsConfig::default();
    let mut st = SelectState::new(seed);
    let mut world = Rng::new(seed ^ 0xABCD);
    let mut picks = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let i = select(&cfg, &c, &stats, &mut st, &[]).unwrap();
        stats[i].record_selected(round as u64);
        let ok = world.next_f64() < p[i];
        stats[i].record_outcome(&scfg, ok, Some(ttfb[i]));
        picks.push(i);
    }
    picks
}

#[test]
fn bandit_converges_to_the_better_arm_deterministically() {
    let p = [0.6, 0.9, 0.3];
    let ttfb = [500, 500, 500];
    let picks = simulate_bandit(7, &p, &ttfb, 2_000);
    assert_eq!(picks, simulate_bandit(7, &p, &ttfb, 2_000), "same seed");
    let late = &picks[1_000..];
    let best = late.iter().filter(|&&i| i == 1).count();
    assert!(best > 900, "best arm got {best}/1000 late picks");
    let worst = picks.iter().filter(|&&i| i == 2).count();
    assert!(worst < 100, "worst arm got {worst}/2000 picks");
}

#[test]
fn bandit_latency_penalty_prefers_the_faster_of_equal_arms() {
    let p = [0.9, 0.9];
    let ttfb = [4_000, 400];
    let picks = simulate_bandit(3, &p, &ttfb, 1_000);
    let fast = picks[500..].iter().filter(|&&i| i == 1).count();
    assert!(fast > 400, "fast arm got {fast}/500 late picks");
}

#[test]
fn order_skips_open_breakers_and_excluded_arms() {
    let mut c = vec![arm("a"), arm("b"), arm("c"), arm("d")];
    for (i, a) in c.iter_mut().enumerate() {
        a.priority = i as u32;
    }
    c[1].available = false;
    let cfg = StrategyConfig::new(Strategy::Priority);
    let mut st = SelectState::new(0);
    assert_eq!(order(&cfg, &c, &[], &mut st, &[]), vec![0, 2, 3]);
    assert_eq!(order(&cfg, &c, &[], &mut st, &[0]), vec![2, 3]);
    assert_eq!(
        order(&cfg, &c, &[], &mut st, &[0, 2, 3]),
        vec![1],
        "all open: try anyway"
    );
    assert_eq!(
        order(&cfg, &c, &[], &mut st, &[0, 1, 2, 3]),
        Vec::<usize>::new()
    );
    assert_eq!(select(&cfg, &c, &[], &mut st, &[0, 1, 2, 3]), None);
    for a in c.iter_mut() {
        a.available = false;
    }
    assert_eq!(order(&cfg, &c, &[], &mut st, &[2]), vec![0, 1, 3]);
    assert_eq!(select(&cfg, &c, &[], &mut st, &[]), Some(0));
}

#[test]
fn order_starts_with_the_selected_arm_for_every_strategy() {
    let mut c = vec![arm("a"), arm("b"), arm("c")];
    c[0].weight = 1;
    c[1].weight = 3;
    c[2].price_in_per_m = 3.0;
    let s = vec![
        tried(3, 9, Some(300.0)),
        tried(9, 9, Some(100.0)),
        tried(1, 2, None),
    ];
    for strategy in all_strategies() {
        let cfg = StrategyConfig::new(strategy);
        let first = select(&cfg, &c, &s, &mut SelectState::new(5), &[]);
        let all = order(&cfg, &c, &s, &mut SelectState::new(5), &[]);
        assert_eq!(all.first().copied(), first, "{strategy:?}");
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2], "{strategy:?}");
    }
}

#[test]
fn stats_shorter_than_candidates_count_as_untried() {
    let c = vec![arm("a"), arm("b")];
    let s = vec![tried(1, 1, Some(10.0))];
    assert_eq!(pick(Strategy::LowestLatency, &c, &s), Some(1));
    assert!(pick(Strategy::Bandit, &c, &s).is_some());
}

fn all_strategies() -> [Strategy; 7] {
    [
        Strategy::Priority,
        Strategy::Weighted,
        Strategy::LowestCost,
        Strategy::LowestLatency,
        Strategy::HighestSuccessRate,
        Strategy::Bandit,
        Strategy::WeightedScore,
    ]
}

fn arb_arm() -> impl proptest::strategy::Strategy<Value = (Candidate, ArmStats)> {
    (
        0u32..4,
        0u32..3,
        0.0f64..50.0,
        0.0f64..50.0,
        any::<bool>(),
        0u64..50,
        0u64..50,
        proptest::option::of(0.0f64..5_000.0),
    )
        .prop_map(|(weight, priority, pin, pout, available, a, b, ttfb)| {
            let mut c = Candidate::new("x");
            c.weight = weight;
            c.priority = priority;
            c.price_in_per_m = pin;
            c.price_out_per_m = pout;
            c.available = available;
            let (successes, trials) = (a.min(b), a.max(b));
            (c, tried(successes, trials, ttfb))
        })
}

proptest! {
    #[test]
    fn select_never_returns_excluded_or_unavailable_while_an_available_one_exists(
        arms in proptest::collection::vec(arb_arm(), 1..8),
        exclude in proptest::collection::vec(0usize..10, 0..6),
        which in 0usize..7,
        seed in any::<u64>(),
    ) {
        let strategy = all_strategies()[which];
        let (c, s): (Vec<Candidate>, Vec<ArmStats>) = arms.into_iter().unzip();
        let cfg = StrategyConfig::new(strategy);
        let mut st = SelectState::new(seed);
        let open: Vec<usize> = (0..c.len()).filter(|i| !exclude.contains(i)).collect();
        let any_available = open.iter().any(|&i| c[i].available);
        for _ in 0..3 {
            let got = select(&cfg, &c, &s, &mut st, &exclude);
            match got {
                None => prop_assert!(open.is_empty()),
                Some(i) => {
                    prop_assert!(i < c.len());
                    prop_assert!(!exclude.contains(&i));
                    if any_available {
                        prop_assert!(c[i].available);
                    }
                }
            }
            let all = order(&cfg, &c, &s, &mut st, &exclude);
            let mut want: Vec<usize> = open
                .iter()
                .copied()
                .filter(|&i| !any_available || c[i].available)
                .collect();
            let mut sorted = all.clone();
            sorted.sort_unstable();
            want.sort_unstable();
            prop_assert_eq!(sorted, want);
        }
    }
}

proptest! {
    /// From a fresh state, one cycle of `sum(weights)` picks gives every arm
    /// exactly its weight.
    #[test]
    fn weighted_cycle_is_exact(weights in proptest::collection::vec(0u32..6, 1..6)) {
        let c: Vec<Candidate> = weights
            .iter()
            .map(|&w| {
                let mut a = arm("x");
                a.weight = w;
                a
            })
            .collect();
        let total: u32 = weights.iter().sum();
        let cfg = StrategyConfig::new(Strategy::Weighted);
        let mut st = SelectState::new(0);
        let mut counts = vec![0u32; c.len()];
        for _ in 0..total {
            if let Some(i) = select(&cfg, &c, &[], &mut st, &[]) {
                counts[i] += 1;
            }
        }
        prop_assert_eq!(counts, weights);
    }
}
