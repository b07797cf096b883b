//! The model catalog (`models:` in the YAML file): a public model name →
//! its candidate deployments (upstream pool, provider wire format, the real
//! model name, Azure deployment and `api-version`, prices, context window),
//! how they are ordered ([`StrategyConfig`]) and when a failing one is taken
//! out of rotation ([`BreakerConfig`]). Requests whose body `model` is a
//! catalog name are routed to its deployments; every other request keeps
//! the routes and proxy rules. Validation lives in `validate.rs`
//! (`Validator::models`), compilation in `state.rs`.

use super::ProviderKind;
use serde::{Deserialize, Serialize};
use sluice_filters::balance::{BreakerConfig, StatsConfig, StrategyConfig};
use sluice_filters::tokens::Encoding;

fn one() -> u32 {
    1
}

/// One public model.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogModel {
    /// The name clients send in the body's `model` (unique).
    pub name: String,
    /// How the deployments are ordered: `strategy` (`priority`, `weighted`,
    /// `lowest_cost`, `lowest_latency`, `highest_success_rate`, `bandit`,
    /// `weighted_score`) and its parameters.
    #[serde(default)]
    pub routing: StrategyConfig,
    /// Circuit breaker of each deployment of this model.
    #[serde(default)]
    pub breaker: BreakerConfig,
    /// Smoothing of the latency and success-rate statistics.
    #[serde(default)]
    pub stats: StatsConfig,
    /// Tokenizer of the public name (token limits count prompts with it);
    /// none = `tokens.models` or the built-in table.
    #[serde(default)]
    pub encoding: Option<Encoding>,
    /// Who owns the model in `GET /v1/models` (default `sluice`).
    #[serde(default)]
    pub owned_by: Option<String>,
    /// What the model serves: `chat` (`/v1/chat/completions`) or
    /// `embeddings` (`/v1/embeddings`); requests of the other kind are
    /// refused (400). None = either. The bandit report's `capability`.
    #[serde(default)]
    pub capability: Option<Capability>,
    /// Its answers may be cached (namespaces opt in too): lifetimes.
    #[serde(default)]
    pub cache: Option<super::ModelCache>,
    /// The candidates, at least one.
    pub deployments: Vec<Deployment>,
}

/// What a catalog model serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Capability {
    Chat,
    #[serde(alias = "embedding")]
    Embeddings,
}

/// One place a model can be served from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// Name, unique within the model (breaker, logs, bandit report arm id).
    pub name: String,
    /// Upstream pool that serves it.
    pub upstream: String,
    /// Wire format; none = the provider of the pool's servers (which must agree).
    #[serde(default)]
    pub provider: Option<ProviderKind>,
    /// The model name sent upstream; none = the public name.
    #[serde(default)]
    pub model: Option<String>,
    /// Azure only: the deployment in `/openai/deployments/{deployment}/…`.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Azure only: the `api-version` query parameter.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Price per 1M input tokens (cost per request, `lowest_cost`).
    #[serde(default)]
    pub price_input_per_m: f64,
    /// Price per 1M output tokens.
    #[serde(default)]
    pub price_output_per_m: f64,
    /// Largest prompt + output in tokens; a request estimated above it
    /// skips this deployment. None = unlimited.
    #[serde(default)]
    pub context_window: Option<u64>,
    /// Share for `weighted` (0 = only a fallback).
    #[serde(default = "one")]
    pub weight: u32,
    /// Lower goes first for `priority` (and breaks ties elsewhere).
    #[serde(default)]
    pub priority: u32,
    /// Anthropic only: `max_tokens` sent when the request sets none
    /// (Anthropic requires it).
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
}

impl Deployment {
    /// The model name sent upstream.
    pub fn upstream_model<'a>(&'a self, public: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(public)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn base(models: &str) -> String {
        format!(
            r#"
auth: {{enabled: false}}
routes: [{{prefix: /, upstream: oa}}]
upstream_servers:
  - {{server_name: oa, server_address: 127.0.0.1, server_port: 9000}}
  - {{server_name: az, server_address: 127.0.0.1, server_port: 9001, provider: azure}}
  - {{server_name: an, server_address: 127.0.0.1, server_port: 9002, provider: anthropic}}
models:
{models}
"#
        )
    }

    fn problems(models: &str) -> Vec<String> {
        match load_str(&base(models), &|_| None) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_valid_catalog_loads() {
        let ok = problems(
            r#"  - name: gpt-4o
    routing: {strategy: lowest_cost}
    encoding: o200k_base
    deployments:
      - {name: openai, upstream: oa, price_input_per_m: 2.5, price_output_per_m: 10}
      - {name: azure, upstream: az, deployment: gpt4o, api_version: 2024-10-21}
      - {name: claude, upstream: an, model: claude-sonnet-4-5, default_max_tokens: 2048}
"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    #[test]
    fn every_bad_value_is_named() {
        let p = problems(
            r#"  - name: m
    routing: {strategy: weighted}
    breaker: {open_ms: 0}
    deployments:
      - {name: a, upstream: nope, weight: 0}
      - {name: b, upstream: az, weight: 0}
      - {name: b, upstream: oa, deployment: x, api_version: "2024", price_input_per_m: -1, weight: 0}
      - {name: c, upstream: an, provider: openai, weight: 0, context_window: 0}
      - {name: d, upstream: oa, default_max_tokens: 5, weight: 0}
  - name: m
    deployments: []
"#,
        );
        let want = [
            "models[0].breaker: open_ms must be at least 1",
            "models[0].deployments: strategy weighted needs a deployment",
            "models[0].deployments[0].upstream: upstream \"nope\" is not the pool",
            "models[0].deployments[1].deployment: an azure deployment needs `deployment`",
            "models[0].deployments[1].api_version: an azure deployment needs `api_version`",
            "models[0].deployments[2].name: duplicate deployment name",
            "models[0].deployments[2].deployment: only azure deployments use it",
            "models[0].deployments[2].api_version: only azure deployments use it",
            "models[0].deployments[2].price_input_per_m: must be a non-negative number",
            "models[0].deployments[3].provider: is openai but the servers of pool \"an\" are anthropic",
            "models[0].deployments[3].context_window: must be at least 1",
            "models[0].deployments[4].default_max_tokens: only anthropic deployments use it",
            "models[1].name: duplicate model name",
            "models[1].deployments: needs at least one deployment",
        ];
        for w in want {
            assert!(
                p.iter().any(|x| x.starts_with(w)),
                "missing {w:?} in {p:#?}"
            );
        }
    }
}
