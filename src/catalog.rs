//! The compiled model catalog: each public model's deployments with their
//! live circuit breaker, arm statistics and `Retry-After` cool-down, and
//! the model's selection state. Built with the [`crate::state::Snapshot`]
//! (a config swap starts every deployment afresh). The proxy asks a model
//! for its try order once per request ([`ModelRt::order`]), gates each
//! attempt with [`DeploymentRt::admit`] and reports outcomes with
//! [`DeploymentRt::record`]; the policy itself is `sluice_filters::balance`.
//! Also renders the catalog for `/health`, `GET /v1/models` and the bandit
//! report.

use crate::clock::{mono_ms as now_ms, wall_ms};
use crate::config::{CatalogModel, Config, Problem, ProviderKind};
use crate::live::{DeploymentLive, LiveState};
use serde_json::{json, Value};
use sluice_filters::balance::{
    self, ArmLabels, ArmStats, BreakerState, Candidate, ReportFilter, SelectState, StatsConfig,
    StrategyConfig,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a request asks a model for; decides the upstream path and which
/// providers can serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Chat,
    Embeddings,
}

impl Operation {
    /// The bandit report's `capability`.
    pub fn capability(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }
}

/// What the bandit report tells apart for one deployment: the operation
/// it served and the channel the request came by (`/internal/v1/…` or
/// the public paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arm {
    pub op: Operation,
    pub internal: bool,
}

impl Arm {
    /// Every arm, in report order.
    pub const ALL: [Arm; 4] = [
        Arm {
            op: Operation::Chat,
            internal: false,
        },
        Arm {
            op: Operation::Chat,
            internal: true,
        },
        Arm {
            op: Operation::Embeddings,
            internal: false,
        },
        Arm {
            op: Operation::Embeddings,
            internal: true,
        },
    ];

    /// Index into `DeploymentLive::arms`.
    pub fn index(self) -> usize {
        usize::from(self.op == Operation::Embeddings) * 2 + usize::from(self.internal)
    }

    pub fn channel(self) -> &'static str {
        if self.internal {
            "internal"
        } else {
            "external"
        }
    }
}

/// The catalog of one runtime.
#[derive(Default)]
pub struct Catalog {
    pub models: Vec<ModelRt>,
    index: HashMap<String, usize>,
}

/// One public model.
pub struct ModelRt {
    pub name: String,
    pub owned_by: String,
    /// What it serves; none = either operation.
    pub capability: Option<Operation>,
    pub routing: StrategyConfig,
    pub stats: StatsConfig,
    pub deployments: Vec<DeploymentRt>,
    /// Its answers may be cached: their lifetimes.
    pub cache: Option<crate::config::ModelCache>,
    select: Mutex<SelectState>,
}

/// One deployment of a model.
pub struct DeploymentRt {
    pub name: String,
    /// Index into `Snapshot::pools`.
    pub pool: usize,
    /// The pool's name (indexes change between runtimes, names do not).
    pub pool_name: String,
    pub provider: ProviderKind,
    /// The model name sent upstream.
    pub model: String,
    /// Azure: (deployment, api-version).
    pub azure: Option<(String, String)>,
    pub price_input_per_m: f64,
    pub price_output_per_m: f64,
    pub context_window: Option<u64>,
    pub weight: u32,
    pub priority: u32,
    /// Anthropic: `max_tokens` when the request sets none.
    pub default_max_tokens: u64,
    /// Breaker, statistics, cool-down ([`LiveState::deployment`]): kept
    /// across config swaps while the deployment stays the same.
    live: Arc<Mutex<DeploymentLive>>,
}

impl Catalog {
    /// Compiles `config.models`; `pool_index` maps pool names to indexes.
    pub fn build(
        config: &Config,
        pool_index: &dyn Fn(&str) -> Option<usize>,
        live: &LiveState,
        problems: &mut Vec<Problem>,
    ) -> Catalog {
        let mut catalog = Catalog::default();
        for (i, m) in config.models.iter().enumerate() {
            let model = ModelRt::build(m, config, pool_index, i, live, problems);
            catalog.index.insert(m.name.clone(), catalog.models.len());
            catalog.models.push(model);
        }
        catalog
    }

    /// The breaker state of every deployment: (model, deployment, state).
    pub fn breaker_states(&self) -> Vec<(&str, &str, BreakerState)> {
        let now = now_ms();
        let mut out = Vec::new();
        for m in &self.models {
            for d in &m.deployments {
                out.push((
                    m.name.as_str(),
                    d.name.as_str(),
                    d.lock().breaker.state(now),
                ));
            }
        }
        out
    }

    /// Whether there is no catalog (then no request looks in it).
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The model with this public name.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// `GET /v1/models`:
    /// the models `allowed` accepts.
    pub fn models_json(&self, allowed: &dyn Fn(&str) -> bool) -> Value {
        let data: Vec<Value> = self
            .models
            .iter()
            .filter(|m| allowed(&m.name))
            .map(|m| json!({"id": m.name, "object": "model", "created": 0, "owned_by": m.owned_by}))
            .collect();
        json!({"object": "list", "data": data})
    }

    /// `/health`: per model, per deployment, the breaker state and stats.
    pub fn health_json(&self) -> Value {
        let now = now_ms();
        let mut models = serde_json::Map::new();
        for m in &self.models {
            let deployments: Vec<Value> = m
                .deployments
                .iter()
                .map(|d| {
                    let f = d.figures(now);
                    json!({
                        "name": d.name,
                        "provider": d.provider.as_str(),
                        "breaker": breaker_state(f.breaker),
                        "consecutive_failures": f.consecutive_failures,
                        "trials": f.trials,
                        "successes": f.successes,
                        "avg_latency_ms": f.ewma_ttfb_ms.map(|v| v.round() as u64),
                        "cooling_down_ms": f.cooling_down_ms,
                    })
                })
                .collect();
            models.insert(
                m.name.clone(),
                json!({"strategy": m.routing.strategy, "deployments": deployments}),
            );
        }
        Value::Object(models)
    }

    /// `GET /internal/v1/bandit/report`: one arm per deployment,
    /// operation (`capability`) and channel it has served; a deployment
    /// that has served nothing yet is one arm with empty statistics, of
    /// its model's declared capability (`chat` when none is declared) on
    /// the external channel.
    pub fn bandit_report(&self, filter: &ReportFilter) -> Value {
        let fleet = crate::live::fleet_routing().load();
        let mut arms: Vec<(ArmLabels, ArmStats)> = Vec::new();
        for m in &self.models {
            for d in &m.deployments {
                let live = d.lock();
                let peers = fleet.get(&crate::live::fleet_key(&m.name, &d.name));
                let instances = 1 + peers.map_or(0, |p| p.instances);
                // An arm's counts with the fleet's added (the other
                // instances publish trials and successes per arm).
                let with_fleet = |arm: Arm, local: &ArmStats| {
                    let Some(p) = peers else {
                        return local.clone();
                    };
                    let (trials, successes) = p.arms[arm.index()];
                    ArmStats {
                        trials: local.trials.saturating_add(trials),
                        successes: local.successes.saturating_add(successes),
                        ..local.clone()
                    }
                };
                let label = |arm: Arm| ArmLabels {
                    arm_id: format!(
                        "{}/{}/{}/{}",
                        m.name,
                        d.name,
                        arm.op.capability(),
                        arm.channel()
                    ),
                    capability: arm.op.capability().into(),
                    model: m.name.clone(),
                    channel: arm.channel().into(),
                    instances,
                };
                let used: Vec<Arm> = Arm::ALL
                    .into_iter()
                    .filter(|a| {
                        live.arms[a.index()].selections > 0
                            || peers.is_some_and(|p| p.arms[a.index()].0 > 0)
                    })
                    .collect();
                if used.is_empty() {
                    let idle = Arm {
                        op: m.capability.unwrap_or(Operation::Chat),
                        internal: false,
                    };
                    arms.push((label(idle), ArmStats::new()));
                }
                for arm in used {
                    arms.push((label(arm), with_fleet(arm, &live.arms[arm.index()])));
                }
            }
        }
        let report = balance::build_report(arms.iter().map(|(l, s)| (l, s)), filter);
        serde_json::to_value(&report).unwrap_or(Value::Null)
    }
}

fn breaker_state(s: BreakerState) -> &'static str {
    s.as_str()
}

impl ModelRt {
    /// The highest input and output prices of its deployments: what a
    /// request reserves against money budgets (it settles at the price of
    /// the deployment that answered).
    pub fn dearest_price(&self) -> sluice_filters::limits::plan::Price {
        let max = |f: fn(&DeploymentRt) -> f64| self.deployments.iter().map(f).fold(0.0, f64::max);
        sluice_filters::limits::plan::Price::per_million(
            max(|d| d.price_input_per_m),
            max(|d| d.price_output_per_m),
        )
    }

    fn build(
        m: &CatalogModel,
        config: &Config,
        pool_index: &dyn Fn(&str) -> Option<usize>,
        i: usize,
        live: &LiveState,
        problems: &mut Vec<Problem>,
    ) -> ModelRt {
        let mut deployments = Vec::new();
        for (j, d) in m.deployments.iter().enumerate() {
            let Some(pool) = pool_index(&d.upstream) else {
                problems.push(Problem::new(
                    format!("models[{i}].deployments[{j}].upstream"),
                    "no such pool",
                ));
                continue;
            };
            let provider = d.provider.unwrap_or_else(|| {
                config
                    .upstream_servers
                    .iter()
                    .find(|s| s.is_active && s.pool_name() == d.upstream)
                    .map(|s| s.provider)
                    .unwrap_or_default()
            });
            deployments.push(DeploymentRt {
                name: d.name.clone(),
                pool,
                pool_name: d.upstream.clone(),
                provider,
                model: d.upstream_model(&m.name).to_string(),
                azure: d.deployment.clone().zip(d.api_version.clone()),
                price_input_per_m: d.price_input_per_m,
                price_output_per_m: d.price_output_per_m,
                context_window: d.context_window,
                weight: d.weight,
                priority: d.priority,
                default_max_tokens: d.default_max_tokens.unwrap_or(4096),
                live: live.deployment(&m.name, &d.name, &d.upstream, &m.breaker),
            });
        }
        let seed = fastrand::u64(..) ^ (i as u64);
        ModelRt {
            name: m.name.clone(),
            owned_by: m.owned_by.clone().unwrap_or_else(|| "sluice".into()),
            capability: m.capability.map(|c| match c {
                crate::config::Capability::Chat => Operation::Chat,
                crate::config::Capability::Embeddings => Operation::Embeddings,
            }),
            routing: m.routing.clone(),
            stats: m.stats.clone(),
            deployments,
            cache: m.cache.clone(),
            select: Mutex::new(SelectState::new(seed)),
        }
    }

    /// The try order for one request: deployments that can serve `op` and
    /// whose context window fits `estimated_tokens`, ranked by the model's
    /// strategy (open breakers and cooling deployments last-resort only).
    pub fn order(&self, op: Operation, estimated_tokens: u64) -> Vec<usize> {
        let now = now_ms();
        let (fleet, wall) = (crate::live::fleet_routing().load(), wall_ms());
        let mut candidates = Vec::with_capacity(self.deployments.len());
        let mut stats = Vec::with_capacity(self.deployments.len());
        let mut exclude = Vec::new();
        for (i, d) in self.deployments.iter().enumerate() {
            let live = d.lock();
            // The other instances' figures (fleet.rs): a breaker open on
            // one of them keeps this instance away too.
            let peers = fleet.get(&crate::live::fleet_key(&self.name, &d.name));
            let fits = d.context_window.is_none_or(|w| estimated_tokens <= w);
            let serves = op == Operation::Chat || d.provider != ProviderKind::Anthropic;
            if !fits || !serves {
                exclude.push(i);
            }
            candidates.push(Candidate {
                name: d.name.clone(),
                weight: d.weight,
                price_in_per_m: d.price_input_per_m,
                price_out_per_m: d.price_output_per_m,
                priority: d.priority,
                available: !matches!(live.breaker.state(now), BreakerState::Open { .. })
                    && live.cooldown_until_ms <= now
                    && !peers.is_some_and(|p| p.open_at(wall)),
            });
            stats.push(peers.map_or_else(|| live.stats.clone(), |p| p.with_local(&live.stats)));
        }
        let mut state = match self.select.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        balance::order(&self.routing, &candidates, &stats, &mut state, &exclude)
    }
}

/// What this instance has seen of a deployment, now (`/health` and the
/// admin catalog view).
pub struct DeploymentFigures {
    pub breaker: BreakerState,
    pub consecutive_failures: u32,
    pub trials: u64,
    pub successes: u64,
    /// Time to first byte (EWMA), once it has served.
    pub ewma_ttfb_ms: Option<f64>,
    pub cooling_down_ms: u64,
}

impl DeploymentRt {
    /// Its breaker state and statistics at `now` (monotonic ms).
    pub fn figures(&self, now: u64) -> DeploymentFigures {
        let live = self.lock();
        DeploymentFigures {
            breaker: live.breaker.state(now),
            consecutive_failures: live.breaker.consecutive_failures(),
            trials: live.stats.trials,
            successes: live.stats.successes,
            ewma_ttfb_ms: live.stats.ewma_ttfb_ms,
            cooling_down_ms: live.cooldown_until_ms.saturating_sub(now),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DeploymentLive> {
        match self.live.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Milliseconds a `Retry-After` still keeps this deployment away (0 = none).
    pub fn cooling_ms(&self) -> u64 {
        self.lock().cooldown_until_ms.saturating_sub(now_ms())
    }

    /// Whether the breaker lets an attempt through now (a half-open probe
    /// slot is taken: [`DeploymentRt::record`] must follow). Records the
    /// selection in the arm's statistics when it does.
    pub fn admit(&self, arm: Arm) -> bool {
        let now = now_ms();
        let mut live = self.lock();
        let ok = live.breaker.allow(now);
        if ok {
            let wall = wall_ms();
            live.stats.record_selected(wall);
            live.arms[arm.index()].record_selected(wall);
        }
        ok
    }

    /// The outcome of an attempt: breaker and statistics (the strategy's,
    /// and the report's of `arm`).
    pub fn record(&self, cfg: &StatsConfig, arm: Arm, success: bool, ttfb_ms: Option<u64>) {
        let now = now_ms();
        let mut live = self.lock();
        live.breaker.record(now, success);
        live.stats.record_outcome(cfg, success, ttfb_ms);
        live.arms[arm.index()].record_outcome(cfg, success, ttfb_ms);
    }

    /// Keeps requests away for `ms` (a `Retry-After`).
    pub fn cool_down(&self, ms: u64) {
        let until = now_ms().saturating_add(ms);
        let mut live = self.lock();
        live.cooldown_until_ms = live.cooldown_until_ms.max(until);
    }

    /// Its prices, per token (money budgets, the spend ledger).
    pub fn price(&self) -> sluice_filters::limits::plan::Price {
        sluice_filters::limits::plan::Price::per_million(
            self.price_input_per_m,
            self.price_output_per_m,
        )
    }

    /// The price of `prompt` input and `completion` output tokens.
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        (prompt as f64 * self.price_input_per_m + completion as f64 * self.price_output_per_m)
            / 1_000_000.0
    }
}
