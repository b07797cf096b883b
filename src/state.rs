//! The compiled, immutable [`Snapshot`]: namespaces, matchers, router, key
//! ring and upstream pools built from one [`Config`]. It lives behind an
//! `ArcSwap`; a request loads it once in `request_filter` and keeps that
//! `Arc` to the end, so a swapped-in runtime never changes a request mid-way.
//! What changes while the process runs (counters, breakers, ejection, in
//! flight, statistics, metric windows) is not here but in
//! [`crate::live::LiveState`], which every build is handed.

use crate::catalog::Catalog;
use crate::config::{Config, Problem};
use crate::identity::Identities;
use crate::live::{Counters, LiveState, MetricHandles};
use crate::upstream::{Pool, ServerRt};
use arc_swap::ArcSwap;
use http::HeaderName;
use sluice_filters::auth::KeyRing;
use sluice_filters::limits::plan::{PlanSettings, Rule as LimitRule};
use sluice_filters::limits::rules::{KeyBy, RuleConfig};
use sluice_filters::matcher::{CompiledMatcher, NamespaceResolver};
use sluice_filters::routing::{CompiledProxyRule, PrefixRoute, Router};
use sluice_filters::tokens::{Encoding, TokenizerMap};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A namespace as the request path needs it.
#[derive(Debug, Clone)]
pub struct NamespaceRt {
    pub id: u64,
    pub code: String,
    pub name: String,
    pub active: bool,
    /// Its masking rules (`masking`), compiled; none = no masking.
    pub masker: Option<Arc<sluice_filters::redact::Masker>>,
    /// Its use of the response cache, when enabled.
    pub cache: Option<crate::config::NamespaceCache>,
}

/// A client key's record (the key itself lives in the key ring).
#[derive(Debug, Clone)]
pub struct KeyRt {
    pub name: String,
    /// Index into [`Snapshot::namespaces`].
    pub namespace: Option<usize>,
    /// The models it may use (exact or `prefix*`); none = any.
    pub models: Option<Vec<String>>,
    /// Signs its requests (`auth.keys[].signing`): the secret, for
    /// verifying them; never matched as a bearer key.
    pub signing_secret: Option<crate::config::Secret<String>>,
    /// A virtual key's expiry (Unix seconds).
    pub expires_at: Option<u64>,
}

/// 64 hex digits as bytes.
fn sha256_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

impl KeyRt {
    /// Whether this key may ask for `model`.
    pub fn allows(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|list| {
            list.iter().any(|m| match m.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => m == model,
            })
        })
    }
}

/// Everything the request path reads, compiled.
pub struct Snapshot {
    pub config: Config,
    pub namespaces: Vec<NamespaceRt>,
    pub resolver: NamespaceResolver,
    pub router: Router,
    pub pools: Vec<Pool>,
    pub keyring: KeyRing,
    pub keys: Vec<KeyRt>,
    /// SHA-256 of a virtual key's secret → its index in `keys`, and the
    /// Unix second a rotated-out secret stops working.
    pub virtual_keys: HashMap<[u8; 32], (usize, Option<u64>)>,
    /// SHA-256 of a live agent token → its agent and expiry (Unix seconds).
    pub agent_tokens: HashMap<[u8; 32], (String, u64)>,
    /// Users and external issuers (their key records are in `keys`).
    pub identity: Identities,
    /// The operator's extra auth header, if any.
    pub auth_header: Option<HeaderName>,
    pub limits: LimitsRt,
    /// The model catalog (`models:`); empty = every request is routed.
    pub catalog: Catalog,
    /// Metric label values and handles of this runtime's entities.
    pub handles: MetricHandles,
    /// What the process learns while it runs (shared by every runtime).
    pub live: Arc<LiveState>,
    /// What is configured but can never take effect yet (logged at start,
    /// answered with every admin change, listed by `GET /api/v1/status`).
    pub warnings: Vec<Problem>,
}

/// The limit rules, compiled, and where their counters live.
pub struct LimitsRt {
    /// Active rules, by priority.
    pub rules: Vec<LimitRule>,
    /// Per namespace index: the rules that apply to it (its own and the
    /// namespace-less ones), indexes into `rules`, by priority.
    pub by_namespace: Vec<Vec<usize>>,
    /// Per namespace index: whether a token rule applies (prompts are
    /// counted and output metered only then).
    pub counts_tokens: Vec<bool>,
    pub tokenizers: TokenizerMap,
    pub settings: PlanSettings,
    /// Shared across runtimes: a config swap keeps the counters.
    pub store: Counters,
}

impl LimitsRt {
    fn build(
        config: &Config,
        namespaces: &[NamespaceRt],
        store: Counters,
        problems: &mut Vec<Problem>,
        warnings: &mut Vec<Problem>,
    ) -> LimitsRt {
        let mut active: Vec<(&crate::config::Rule, usize)> = config
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status)
            .map(|(i, r)| (r, i))
            .collect();
        active.sort_by_key(|(r, i)| (r.priority, *i));
        let mut rules = Vec::new();
        let mut scopes = Vec::new();
        for (r, i) in active {
            match RuleConfig::parse(&r.rule_type, &r.rule_config) {
                Ok(RuleConfig::Budget(b))
                    if b.fallback_model
                        .as_deref()
                        .is_some_and(|f| !config.models.iter().any(|m| m.name == f)) =>
                {
                    problems.push(Problem::new(
                        format!("rules[{i}].rule_config.fallback_model"),
                        format!(
                            "{:?} is not a model of the catalog",
                            b.fallback_model.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                Ok(RuleConfig::Budget(_))
                    if !config.models.iter().any(|m| {
                        m.deployments
                            .iter()
                            .any(|d| d.price_input_per_m > 0.0 || d.price_output_per_m > 0.0)
                    }) =>
                {
                    warnings.push(Problem::new(
                        format!("rules[{i}].rule_type"),
                        "a budget counts the price of catalog models, and no catalog deployment has a price (price_input_per_m, price_output_per_m), so this rule could never apply",
                    ));
                }
                Ok(rule) if rule.key_by().contains(KeyBy::ApiKey) && !config.auth.enabled => {
                    warnings.push(Problem::new(
                        format!("rules[{i}].rule_config.key_by"),
                        "api_key needs auth.enabled: with auth off no request has a key, so this rule could never apply",
                    ));
                }
                Ok(config) => {
                    scopes.push(
                        r.namespace
                            .as_deref()
                            .map(|code| namespaces.iter().position(|n| n.code == code)),
                    );
                    rules.push(LimitRule::new(r.id, r.rule_name.clone(), config));
                }
                Err(e) => problems.push(Problem::new(format!("rules[{i}]"), e)),
            }
        }
        // A route's own `max_concurrency`: a concurrency cap per API key
        // (per route with auth off) on the requests that took it.
        for r in &config.routes {
            let Some(max) = r.max_concurrency else {
                continue;
            };
            let key_by = if config.auth.enabled {
                serde_json::json!(["api_key", "route"])
            } else {
                serde_json::json!("route")
            };
            let cap = RuleConfig::parse(
                "concurrency",
                &serde_json::json!({"max_concurrent": max, "key_by": key_by}),
            );
            match cap {
                Ok(cap) => {
                    scopes.push(
                        r.namespace
                            .as_deref()
                            .map(|code| namespaces.iter().position(|n| n.code == code)),
                    );
                    rules.push(LimitRule::for_route(
                        ROUTE_CAP_IDS + r.id,
                        format!("route {} max_concurrency", r.prefix),
                        cap,
                        sluice_filters::routing::normalize_prefix(&r.prefix),
                    ));
                }
                Err(e) => problems.push(Problem::new(format!("routes[id={}]", r.id), e)),
            }
        }
        let by_namespace: Vec<Vec<usize>> = (0..namespaces.len())
            .map(|ns| {
                scopes
                    .iter()
                    .enumerate()
                    .filter(|(_, scope)| match scope {
                        None => true,
                        Some(Some(n)) => *n == ns,
                        Some(None) => false,
                    })
                    .map(|(i, _)| i)
                    .collect()
            })
            .collect();
        let counts_tokens = by_namespace
            .iter()
            .map(|idx| {
                idx.iter().any(|&i| {
                    matches!(
                        rules[i].config,
                        RuleConfig::TokenLimit(_) | RuleConfig::Budget(_)
                    )
                })
            })
            .collect();
        let mut overrides: Vec<(String, Encoding)> = config
            .tokens
            .models
            .iter()
            .map(|(m, e)| (m.clone(), *e))
            .collect();
        // A catalog model's own encoding, unless `tokens.models` names it.
        for m in &config.models {
            if let Some(e) = m.encoding {
                if !config.tokens.models.contains_key(&m.name) {
                    overrides.push((m.name.clone(), e));
                }
            }
        }
        LimitsRt {
            rules,
            by_namespace,
            counts_tokens,
            tokenizers: TokenizerMap::new(&overrides, config.tokens.fallback_encoding),
            settings: PlanSettings {
                default_output_tokens: config.tokens.default_output_tokens,
                lease_ms: config.counters.lease_ms,
            },
            store,
        }
    }
}

/// Ids of the limit rules made from routes' `max_concurrency` (this plus
/// the route's id; far above the ids rules are given).
pub const ROUTE_CAP_IDS: u64 = 1 << 48;

/// The runtime shared by every service.
pub type SharedSnapshot = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// Compiles a validated config over the process's live state (limit
    /// counters, server and deployment state, metric windows: kept across
    /// builds). Problems here mean the config changed under validation's
    /// feet; they are reported the same way.
    pub fn build(config: Config, live: &Arc<LiveState>) -> Result<Snapshot, Vec<Problem>> {
        live.prune();
        let store = live.counters();
        let mut problems = Vec::new();
        let namespaces: Vec<NamespaceRt> = config
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| NamespaceRt {
                id: n.id,
                code: n.namespace_code.clone(),
                name: n.namespace_name.clone(),
                active: n.is_active,
                masker: (!n.masking.is_empty())
                    .then(|| match sluice_filters::redact::Masker::new(&n.masking) {
                        Ok(m) => Some(Arc::new(m)),
                        Err(e) => {
                            problems.push(Problem::new(
                                format!("namespaces[{i}].masking"),
                                e.to_string(),
                            ));
                            None
                        }
                    })
                    .flatten(),
                cache: n.cache.clone().filter(|c| c.enabled),
            })
            .collect();
        let ns_index = |code: &str| namespaces.iter().position(|n| n.code == code);

        // Pools: active servers grouped by pool name, in file order.
        let mut groups: BTreeMap<String, Vec<Arc<ServerRt>>> = BTreeMap::new();
        for s in config.upstream_servers.iter().filter(|s| s.is_active) {
            groups
                .entry(s.pool_name().to_string())
                .or_default()
                .push(Arc::new(ServerRt::new(s, live)));
        }
        let pools: Vec<Pool> = groups
            .into_iter()
            .map(|(name, servers)| Pool::new(&name, servers, &config.upstream))
            .collect();
        let pool_index = |name: &str| pools.iter().position(|p| p.name == name);

        let mut matchers = Vec::new();
        for (i, m) in config.matchers.iter().enumerate() {
            let Some(ns) = ns_index(&m.namespace) else {
                continue;
            };
            // A matcher of an inactive namespace still decides: its
            // requests are refused (403), not passed to the next matcher
            // or the default namespace.
            if !m.is_active {
                continue;
            }
            match CompiledMatcher::compile(&m.spec(ns)) {
                Ok(c) => matchers.push(c),
                Err(e) => problems.push(Problem::new(format!("matchers[{i}]"), e)),
            }
        }
        let default_ns = config.default_namespace.as_deref().and_then(ns_index);
        let resolver = NamespaceResolver::new(matchers, default_ns);

        let mut rules = Vec::new();
        for (i, r) in config
            .proxy_rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_active)
        {
            let target = pool_index(&r.upstream);
            let namespace = r.namespace.as_deref().and_then(ns_index);
            match (
                CompiledProxyRule::compile(&r.spec(namespace, target.unwrap_or(0))),
                target,
            ) {
                (Ok(c), Some(_)) => rules.push(c),
                (Ok(_), None) => problems.push(Problem::new(
                    format!("proxy_rules[{i}].upstream"),
                    "no such pool",
                )),
                (Err(e), _) => problems.push(Problem::new(format!("proxy_rules[{i}]"), e)),
            }
        }
        let mut prefixes = Vec::new();
        for (i, r) in config.routes.iter().enumerate() {
            match pool_index(&r.upstream) {
                Some(target) => prefixes.push(PrefixRoute {
                    prefix: r.prefix.clone(),
                    target,
                    strip_prefix: r.strip_prefix,
                    namespace: r.namespace.as_deref().and_then(ns_index),
                    max_concurrency: r.max_concurrency,
                }),
                None => problems.push(Problem::new(
                    format!("routes[{i}].upstream"),
                    "no such pool",
                )),
            }
        }
        let router = Router::new(rules, prefixes);
        let catalog = Catalog::build(&config, &pool_index, live, &mut problems);

        let keyring = KeyRing::new(
            config
                .auth
                .keys
                .iter()
                .map(|k| k.key.expose().as_bytes().to_vec()),
        );
        let mut keys: Vec<KeyRt> = config
            .auth
            .keys
            .iter()
            .map(|k| KeyRt {
                name: k.name.clone(),
                namespace: k.namespace.as_deref().and_then(ns_index),
                models: k.models.clone(),
                signing_secret: k.signing.then(|| k.key.clone()),
                expires_at: None,
            })
            .collect();
        // Keys created through the admin API, after the YAML's (the
        // metric labels list them in the same order): by the SHA-256 of
        // their secret (and of the previous one during a rotation).
        let mut virtual_keys = HashMap::new();
        for v in config.virtual_keys.iter().filter(|v| v.is_active) {
            let index = keys.len();
            keys.push(KeyRt {
                name: v.name.clone(),
                namespace: v.namespace.as_deref().and_then(ns_index),
                models: v.models.clone(),
                signing_secret: None,
                expires_at: v.expires_at,
            });
            if let Some(h) = sha256_hex(&v.key_sha256) {
                virtual_keys.insert(h, (index, None));
            }
            if let (Some(prev), Some(until)) = (&v.previous_sha256, v.previous_until) {
                if let Some(h) = sha256_hex(prev) {
                    virtual_keys.insert(h, (index, Some(until)));
                }
            }
        }
        // Agents' Bridge tokens, by the SHA-256 of each live one.
        let agent_tokens = crate::config::AgentToken::by_hash(&config.agent_tokens);
        // Users, then external issuers, after the keys (the metric labels
        // list them in the same order).
        let identity = Identities::build(&config, keys.len(), &mut problems);
        for (_, u) in crate::identity::active_users(&config) {
            keys.push(KeyRt {
                name: crate::identity::user_key_name(u.id),
                namespace: u.namespace.as_deref().and_then(ns_index),
                models: None,
                signing_secret: None,
                expires_at: None,
            });
        }
        for i in &config.auth.issuers {
            keys.push(KeyRt {
                name: crate::identity::issuer_key_name(&i.name),
                namespace: i.namespace.as_deref().and_then(ns_index),
                models: None,
                signing_secret: None,
                expires_at: None,
            });
        }
        let auth_header = config
            .auth
            .header
            .as_deref()
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok());

        let mut warnings = config.warnings();
        let limits = LimitsRt::build(&config, &namespaces, store, &mut problems, &mut warnings);
        if !problems.is_empty() {
            return Err(problems);
        }
        let pool_labels: Vec<_> = pools
            .iter()
            .map(|p| (p.name.clone(), p.servers.first().map(|s| s.provider)))
            .collect();
        let handles = MetricHandles::new(&config, &router, &pool_labels, &limits.rules, live);
        Ok(Snapshot {
            handles,
            live: live.clone(),
            limits,
            catalog,
            config,
            namespaces,
            resolver,
            router,
            pools,
            keyring,
            keys,
            virtual_keys,
            agent_tokens,
            identity,
            auth_header,
            warnings,
        })
    }

    /// Whether an `Authorization` header carries one of the admin tokens
    /// (`Bearer <token>`, constant-time compare; no tokens = nobody).
    pub fn admin_token_ok(&self, authorization: Option<&str>) -> bool {
        self.admin_token_index(authorization).is_some()
    }

    /// The name of the admin token an `Authorization` header carries.
    pub fn admin_token_name(&self, authorization: Option<&str>) -> Option<String> {
        let i = self.admin_token_index(authorization)?;
        self.config.admin.tokens.get(i).map(|t| t.name(i))
    }

    /// Which admin token the header carries (every token compared in
    /// constant time).
    fn admin_token_index(&self, authorization: Option<&str>) -> Option<usize> {
        use subtle::ConstantTimeEq;
        let presented = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let mut found = None;
        for (i, token) in self.config.admin.tokens.iter().enumerate() {
            if bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
                found = Some(i);
            }
        }
        found.filter(|_| !presented.is_empty())
    }

    /// Who an admin API request acts as: `token:<name>` for an admin
    /// token, `user:<e-mail>` for an access token of an active user whose
    /// role is admin; none = not an administrator.
    pub fn admin_actor(&self, authorization: Option<&str>) -> Option<String> {
        if let Some(name) = self.admin_token_name(authorization) {
            return Some(format!("token:{name}"));
        }
        let presented = authorization?.strip_prefix("Bearer ")?;
        if !self.identity.takes(presented) {
            return None;
        }
        let own = self.identity.tokens.as_ref()?;
        let header = jsonwebtoken::decode_header(presented).ok()?;
        if !own.signs(&header) {
            return None;
        }
        let claims = own
            .verify(presented, &header, crate::identity::tokens::Kind::Access)
            .ok()?;
        let (user, _) = self.identity.user(&self.config, &claims).ok()?;
        (user.is_active && user.role == crate::config::UserRole::Admin)
            .then(|| format!("user:{}", user.email))
    }

    /// Builds the BPE tables token rules need now, not on the first request
    /// (they are shared process-wide, so this is quick after the first time).
    pub fn warm_tokenizers(&self) {
        let limits = &self.limits;
        if limits.counts_tokens.iter().any(|c| *c) {
            let mut models: Vec<&str> = vec!["", "gpt-4o", "gpt-4"];
            models.extend(self.config.tokens.models.keys().map(String::as_str));
            for m in models {
                limits.tokenizers.resolve(m).encoding.counter();
            }
            // Loading a vocabulary goes through tiktoken-rs's own tables
            // (~100 MB for o200k_base), dropped once packed: give them back.
            crate::alloc::trim();
        }
    }

    /// Resolves every pool's server names (startup and background refresh).
    pub async fn refresh_pools(&self) {
        for pool in &self.pools {
            pool.refresh().await;
        }
    }

    /// One round of active health checks over every pool.
    pub async fn health_check_pools(&self) {
        for pool in &self.pools {
            pool.health_check().await;
        }
    }
}
