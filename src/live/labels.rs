//! Label values, resolved once per snapshot build, and the metric handles of each label combination, created on
//! first use and then reached by index: the request path never hashes label
//! strings. Label values are bounded by the config: namespace codes, route
//! labels (`rule:<id>` or a prefix), pool names, provider kinds, model names
//! the config or the built-in list knows (others are `other`), status
//! classes. Never raw keys, paths or client-chosen strings.

use super::window::{Kind, Series};
use super::LiveState;
use crate::config::{Config, ProviderKind};
use prometheus::{Counter, Histogram, IntCounter};
use sluice_filters::limits::rules::RuleConfig;
use sluice_filters::routing::RouteMatch;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Largest number of cached handles per family; past it (a config with very
/// many namespaces × routes × models) handles are looked up by label values.
const MAX_CELLS: usize = 1 << 18;

/// Most distinct model labels; the rest count as `other`.
const MAX_MODELS: usize = 256;

/// Well-known model names, labelled as themselves.
const BUILT_IN_MODELS: &[&str] = &[
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "o1",
    "o1-mini",
    "o3",
    "o3-mini",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "claude-3-5-sonnet-latest",
    "claude-3-5-haiku-latest",
    "claude-3-7-sonnet-latest",
    "claude-sonnet-4-0",
    "claude-opus-4-0",
    "deepseek-chat",
    "deepseek-reasoner",
];

/// Label of requests a dimension does not apply to (no namespace yet, no
/// route, no model in the body).
pub const NONE: &str = "none";
/// Label of a model the config and the built-in list do not name.
pub const OTHER: &str = "other";

/// Status class label by `status / 100` (0 = no response).
pub const CLASSES: [&str; 6] = ["none", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// The label of a provider kind.
/// Every provider label, `none` last: the requests family's provider index.
pub const PROVIDER_LABELS: [&str; 5] = ["openai", "openai_compatible", "azure", "anthropic", NONE];

pub fn provider_label(p: ProviderKind) -> &'static str {
    match p {
        ProviderKind::Openai => "openai",
        ProviderKind::OpenaiCompatible => "openai_compatible",
        ProviderKind::Azure => "azure",
        ProviderKind::Anthropic => "anthropic",
    }
}

/// MetricHandles of one family, one per label combination, created on first use.
pub struct Grid<T> {
    cells: Vec<OnceLock<T>>,
}

impl<T: Clone> Grid<T> {
    fn new(size: usize) -> Self {
        let size = if size > MAX_CELLS { 0 } else { size };
        Grid {
            cells: (0..size).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The handle at `index`, created with `make` the first time.
    pub fn get(&self, index: usize, make: impl FnOnce() -> T) -> T {
        match self.cells.get(index) {
            Some(cell) => cell.get_or_init(make).clone(),
            None => make(),
        }
    }
}

/// Model name → label index: exact names, then `prefix*` patterns.
pub struct ModelLabels {
    exact: HashMap<String, usize>,
    prefixes: Vec<(String, usize)>,
    /// Every label; `other` and `none` are the last two.
    pub labels: Vec<String>,
}

impl ModelLabels {
    fn new(config: &Config, rules: &[sluice_filters::limits::plan::Rule]) -> Self {
        let mut names: Vec<String> = config.models.iter().map(|m| m.name.clone()).collect();
        names.extend(config.tokens.models.keys().cloned());
        for r in rules {
            if let RuleConfig::TokenLimit(t) = &r.config {
                names.extend(t.model_name.iter().filter(|m| *m != "*").cloned());
            }
        }
        names.extend(BUILT_IN_MODELS.iter().map(|m| m.to_string()));
        let mut m = ModelLabels {
            exact: HashMap::new(),
            prefixes: Vec::new(),
            labels: Vec::new(),
        };
        for name in names {
            if m.labels.len() >= MAX_MODELS || m.labels.contains(&name) {
                continue;
            }
            let i = m.labels.len();
            match name.strip_suffix('*') {
                Some(prefix) => m.prefixes.push((prefix.to_string(), i)),
                None => {
                    m.exact.insert(name.clone(), i);
                }
            }
            m.labels.push(name);
        }
        // Longest prefix first.
        m.prefixes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        m.labels.push(OTHER.into());
        m.labels.push(NONE.into());
        m
    }

    /// The label index of `model` (none = the request named no model).
    pub fn index(&self, model: Option<&str>) -> usize {
        let Some(model) = model else {
            return self.labels.len() - 1;
        };
        if let Some(i) = self.exact.get(model) {
            return *i;
        }
        self.prefixes
            .iter()
            .find(|(p, _)| model.starts_with(p.as_str()))
            .map_or(self.labels.len() - 2, |(_, i)| *i)
    }
}

/// A client key as the summary shows it.
pub struct KeyLabel {
    pub name: String,
    /// The key itself masked: a few leading and trailing characters.
    pub masked: String,
}

/// `sk-abc…yz` for keys of 12 characters or more; only `…` otherwise.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "…".into();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("{head}…{tail}")
}

/// Every label value of one runtime and the handles indexed by them.
pub struct MetricHandles {
    /// Namespace codes; index `namespaces.len()` = `none`.
    pub namespaces: Vec<String>,
    /// Route labels: proxy rules (`rule:<id>`, by id order of `rule_ids`),
    /// then prefix routes in the router's order; last = `none`.
    pub routes: Vec<String>,
    rule_ids: Vec<u64>,
    pub pools: Vec<String>,
    /// Provider label of each pool (its first server's kind).
    pub providers: Vec<&'static str>,
    pub models: ModelLabels,
    pub keys: Vec<KeyLabel>,
    /// Namespace × route × model × class.
    pub requests: Grid<IntCounter>,
    /// Namespace × route.
    pub duration: Grid<Histogram>,
    /// Namespace × model.
    pub ttft: Grid<Histogram>,
    pub gap: Grid<Histogram>,
    /// Namespace × model × direction (0 = in, 1 = out).
    pub tokens: Grid<IntCounter>,
    /// Namespace × model × pool (+none).
    pub cost: Grid<Counter>,
    /// Namespace × key (+none) × model: the spend ledger.
    pub spend: Grid<Counter>,
    /// Per pool.
    pub ttfb: Grid<Histogram>,
    /// History of every request of the process, whatever its namespace.
    pub all_series: Arc<Series>,
    /// History per namespace, route (without `none`) and key.
    pub ns_series: Vec<Arc<Series>>,
    pub route_series: Vec<Arc<Series>>,
    pub key_series: Vec<Arc<Series>>,
}

impl MetricHandles {
    /// Resolves the labels of a runtime being built.
    /// `pools` are (name, provider) per pool index.
    pub fn new(
        config: &Config,
        router: &sluice_filters::routing::Router,
        pools: &[(String, Option<ProviderKind>)],
        rules: &[sluice_filters::limits::plan::Rule],
        live: &LiveState,
    ) -> MetricHandles {
        let namespaces: Vec<String> = config
            .namespaces
            .iter()
            .map(|n| n.namespace_code.clone())
            .collect();
        let mut rule_ids: Vec<u64> = config
            .proxy_rules
            .iter()
            .filter(|r| r.is_active)
            .map(|r| r.id)
            .collect();
        rule_ids.sort_unstable();
        rule_ids.dedup();
        let mut routes: Vec<String> = rule_ids
            .iter()
            .map(|id| {
                RouteMatch::ProxyRule {
                    rule: *id,
                    target: 0,
                }
                .label(router)
            })
            .collect();
        routes.extend((0..config.routes.len()).map(|index| {
            RouteMatch::Prefix {
                index,
                target: 0,
                path: None,
            }
            .label(router)
        }));
        let models = ModelLabels::new(config, rules);
        let keys: Vec<KeyLabel> = config
            .auth
            .keys
            .iter()
            .map(|k| KeyLabel {
                name: k.name.clone(),
                masked: mask(k.key.expose()),
            })
            .chain(
                config
                    .virtual_keys
                    .iter()
                    .filter(|v| v.is_active)
                    .map(|v| KeyLabel {
                        name: v.name.clone(),
                        masked: format!("{}…", v.prefix),
                    }),
            )
            .chain(
                crate::identity::active_users(config).map(|(_, u)| KeyLabel {
                    name: crate::identity::user_key_name(u.id),
                    masked: "(sign-in)".into(),
                }),
            )
            .chain(config.auth.issuers.iter().map(|i| KeyLabel {
                name: crate::identity::issuer_key_name(&i.name),
                masked: "(jwt)".into(),
            }))
            .collect();
        let (n, r, m) = (namespaces.len() + 1, routes.len() + 1, models.labels.len());
        MetricHandles {
            all_series: live.series(Kind::Process, ""),
            ns_series: namespaces
                .iter()
                .map(|c| live.series(Kind::Namespace, c))
                .collect(),
            route_series: routes.iter().map(|l| live.series(Kind::Route, l)).collect(),
            key_series: keys
                .iter()
                .map(|k| live.series(Kind::Key, &k.name))
                .collect(),
            // × provider (the labels of PROVIDER_LABELS) × channel.
            requests: Grid::new(n * r * m * CLASSES.len() * PROVIDER_LABELS.len() * 2),
            duration: Grid::new(n * r),
            ttft: Grid::new(n * m),
            gap: Grid::new(n * m),
            tokens: Grid::new(n * m * 2),
            // Per pool (its provider is the label), plus none.
            cost: Grid::new(n * m * (pools.len() + 1)),
            spend: Grid::new(n * (keys.len() + 1) * m),
            ttfb: Grid::new(pools.len()),
            pools: pools.iter().map(|(name, _)| name.clone()).collect(),
            providers: pools
                .iter()
                .map(|(_, p)| p.map_or(NONE, provider_label))
                .collect(),
            namespaces,
            routes,
            rule_ids,
            models,
            keys,
        }
    }

    /// The route index of a routing decision.
    pub fn route_index(&self, route: &RouteMatch) -> usize {
        match route {
            RouteMatch::ProxyRule { rule, .. } => self
                .rule_ids
                .binary_search(rule)
                .unwrap_or(self.routes.len()),
            RouteMatch::Prefix { index, .. } => {
                let i = self.rule_ids.len() + index;
                if i < self.routes.len() {
                    i
                } else {
                    self.routes.len()
                }
            }
        }
    }

    /// Namespace label (index `namespaces.len()` or none = `none`).
    pub fn ns_label(&self, ns: Option<usize>) -> &str {
        ns.and_then(|i| self.namespaces.get(i))
            .map_or(NONE, String::as_str)
    }

    pub fn route_label(&self, route: Option<usize>) -> &str {
        route
            .and_then(|i| self.routes.get(i))
            .map_or(NONE, String::as_str)
    }

    pub fn model_label(&self, model: usize) -> &str {
        self.models.labels.get(model).map_or(OTHER, String::as_str)
    }

    /// Dimension sizes: namespaces (+none), routes (+none), models.
    pub fn dims(&self) -> (usize, usize, usize) {
        (
            self.namespaces.len() + 1,
            self.routes.len() + 1,
            self.models.labels.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_models() {
        assert_eq!(mask("sk-sluice-dev-1234"), "sk-…34");
        assert_eq!(mask("short"), "…");
        let mut config = Config::default();
        config
            .tokens
            .models
            .insert("mine*".into(), sluice_filters::tokens::Encoding::O200kBase);
        let m = ModelLabels::new(&config, &[]);
        assert_eq!(m.labels[m.index(Some("mine-large"))], "mine*");
        assert_eq!(m.labels[m.index(Some("gpt-4o"))], "gpt-4o");
        assert_eq!(m.labels[m.index(Some("whatever"))], OTHER);
        assert_eq!(m.labels[m.index(None)], NONE);
    }
}
