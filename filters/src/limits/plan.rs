//! The per-request limits plan, called from `request_filter` once the
//! namespace, API key, route, upstream, model and prompt tokens are known:
//! [`plan`] applies the stateless token caps and lists the checks to send
//! to the counter store in one `admit` call; [`LimitPlan::decide`] turns the
//! store's answer into a [`Decision`]; the [`Reservation`] of an admitted
//! request says what to settle in `logging`. Pure: no I/O, no clock.
//!
//! Which rules apply to a request:
//! - a rule counts by its `key_by` dimension; the counter key is
//!   `"{rule_id}:{dimension}:{value}"` (`"{rule_id}:global:*"` for global).
//!   When the request has no value for the dimension (no API key, the header
//!   absent or empty, no model; empty values count as absent) the rule's
//!   counters do not apply to it;
//! - a `token_limit` rule applies only to the models its `model_name`
//!   selects (absent = every request). Its per-request caps
//!   (`max_input_tokens`, `max_tokens`, `max_output_tokens`) need no
//!   counter and apply whatever `key_by` says; its budget applies only when
//!   the request has a value for `key_by`.
//!
//! Token reservation: a budget check asks for `need = prompt + 1` at least
//! and `want = prompt + min(requested max_tokens or default_output_tokens,
//! static output cap)`; the grant `g` caps the output at `g - prompt`. A
//! request without `max_tokens` under a budget is therefore cut at
//! `default_output_tokens`. Settling charges or refunds `actual - g`.
//!
//! Denials: rate 429 `rate_limited`, budget and per-request caps 429
//! `token_limit_exceeded`, concurrency 503 `concurrency_limited` (or
//! `downstream_concurrency_exceeded` / `upstream_concurrency_exceeded`,
//! see [`concurrency_code`]), store down
//! with a `fail_mode: closed` rule 503 `limits_unavailable`. When several
//! checks fail, `Retry-After` is the longest wait among them (all must
//! clear) and the message names that check's rule. A concurrency slot
//! usually frees when any request in flight finishes, long before its lease
//! expires, so concurrency denials ask for at most 1 s.
//!
//! Headers follow OpenAI: `x-ratelimit-{limit,remaining,reset}-requests`
//! from the request-rate check (window or bucket) with the least remaining,
//! `x-ratelimit-{limit,remaining,reset}-tokens` from the token budget with
//! the least remaining; resets in Go duration form (`"1s"`, `"6m0s"`,
//! `"20ms"`). Concurrency is not a rate and sets none of them. The gateway
//! adds `Retry-After` from [`Denial::retry_after_secs`].

use super::rules::{Channel, FailMode, KeyBy, KeyBySet, RateAlgorithm, RuleConfig, Usd};
use super::seen::SeenRemaining;
use super::store::{Admission, Check, CheckStatus, Settle};
use crate::facts::HeaderLookup;
use smallvec::SmallVec;

/// The operations that settle one request (on the stack for up to four:
/// a request holds one lease or budget per rule).
pub type Settlement = SmallVec<[Settle; 4]>;

/// A limit rule as the plan sees it (built with [`Rule::new`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The rule's id; part of every counter key.
    pub id: u64,
    /// The rule's name, named in denial messages.
    pub name: String,
    pub config: RuleConfig,
    /// `"{id}:{dimension}:"`, the start of each of the rule's counter keys,
    /// made once instead of per request.
    key_prefix: String,
    /// Applies only to requests that took this route (its label): a
    /// route's own `max_concurrency`.
    pub only_route: Option<String>,
}

impl Rule {
    pub fn new(id: u64, name: String, config: RuleConfig) -> Rule {
        let dimension = config.key_by().name();
        let mut key_prefix = String::with_capacity(22 + dimension.len());
        push_u64(&mut key_prefix, id);
        key_prefix.push(':');
        key_prefix.push_str(&dimension);
        key_prefix.push(':');
        Rule {
            id,
            name,
            config,
            key_prefix,
            only_route: None,
        }
    }

    /// A rule for the requests of one route only (its label).
    pub fn for_route(id: u64, name: String, config: RuleConfig, route: String) -> Rule {
        Rule {
            only_route: Some(route),
            ..Rule::new(id, name, config)
        }
    }
}

/// What the limits look at in a request.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    /// Namespace code.
    pub namespace: &'a str,
    /// The API key's name (never the secret), when the request had one.
    pub api_key: Option<&'a str>,
    /// The route (prefix route or proxy rule) the request took.
    pub route: &'a str,
    /// The requested model, when the body names one.
    pub model: Option<&'a str>,
    /// The upstream pool.
    pub upstream: &'a str,
    pub headers: &'a dyn HeaderLookup,
    /// Unique per request; the concurrency lease id.
    pub request_id: &'a str,
    /// Prompt tokens (0 when no token rule applies to the namespace).
    pub prompt_tokens: u64,
    /// The request's output limit per choice (`max_tokens` /
    /// `max_completion_tokens`), when given.
    pub requested_output: Option<u64>,
    /// Completions the provider generates and bills for this request
    /// (`n`, or `best_of` where larger); at least 1. Reservations and caps
    /// cover all of them: a per-request cap bounds their total.
    pub choices: u64,
    /// What its tokens cost (a catalog model: its dearest deployment's
    /// prices); none = not priced, money budgets do not count it.
    pub price: Option<Price>,
    /// Came by the internal channel (`/internal/v1/…`).
    pub internal: bool,
}

/// Token prices in pico-USD (10⁻¹² dollars) per token: a price of X
/// dollars per million tokens is X × 10⁶ here, whole for any price
/// written with up to six decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Price {
    pub input_pico: u64,
    pub output_pico: u64,
}

impl Price {
    /// From dollars per million tokens.
    pub fn per_million(input: f64, output: f64) -> Price {
        let pico = |usd: f64| (usd.max(0.0) * 1e6).round() as u64;
        Price {
            input_pico: pico(input),
            output_pico: pico(output),
        }
    }

    /// The price of `prompt` input and `output` output tokens in micro-USD,
    /// rounded up.
    pub fn micros(&self, prompt: u64, output: u64) -> u64 {
        let pico = u128::from(prompt) * u128::from(self.input_pico)
            + u128::from(output) * u128::from(self.output_pico);
        u64::try_from(pico.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }

    /// Output tokens `micros` buys after `prompt` (None: output is free).
    pub fn output_for(&self, micros: u64, prompt: u64) -> Option<u64> {
        if self.output_pico == 0 {
            return None;
        }
        let left = (u128::from(micros) * 1_000_000)
            .saturating_sub(u128::from(prompt) * u128::from(self.input_pico));
        Some(u64::try_from(left / u128::from(self.output_pico)).unwrap_or(u64::MAX))
    }
}

/// Gateway-wide settings of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    /// Output tokens reserved for a request that gives no `max_tokens`.
    pub default_output_tokens: u64,
    /// How long a concurrency slot is held when never released.
    pub lease_ms: u64,
}

/// Which rule a check belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    /// Index in the `rules` slice given to [`plan`].
    index: usize,
    rule_id: u64,
    fail_closed: bool,
    /// `fail_mode: local_share`.
    local_share: bool,
    /// A money budget (its check counts micro-USD, not tokens).
    money: bool,
}

/// The checks of one request and how to read the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPlan {
    /// The checks to send to [`super::store::CounterStore::admit`], in
    /// rule order (on the stack for up to four).
    pub checks: SmallVec<[Check; 4]>,
    /// The rule of each check (same order and length).
    owners: SmallVec<[Owner; 4]>,
    prompt_tokens: u64,
    static_cap: Option<u64>,
    price: Option<Price>,
}

/// What to do with the request.
// The reservation keeps its few leases and budgets inline (no allocation
// per request); boxing it to even out the variants would add one back.
// A decision is made once per request and moved, never stored in bulk.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Reservation),
    Deny(Denial),
}

/// What an admitted request holds, to settle when it ends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reservation {
    /// Max output tokens the request may produce: the minimum over the
    /// per-request caps and `granted - prompt` of the budgets; None =
    /// unlimited.
    pub output_cap: Option<u64>,
    /// Tokens reserved in every budget (prompt + expected output); 0
    /// without budgets.
    pub reserved_tokens: u64,
    /// Micro-USD reserved in every money budget; 0 without them.
    pub reserved_micros: u64,
    /// `x-ratelimit-*` headers for the response (formatted only when
    /// written: [`RateHeaders::for_each`]).
    pub rate: RateHeaders,
    /// Concurrency slots: (key, lease id).
    leases: SmallVec<[(String, String); 2]>,
    /// Budget windows reserved in: (key, window_ms, window_start_ms).
    budgets: SmallVec<[(String, u64, u64); 2]>,
    /// Money budget windows reserved in, the same way.
    money: SmallVec<[(String, u64, u64); 1]>,
}

/// The figures of OpenAI's `x-ratelimit-*` headers, kept as numbers until
/// the response is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateHeaders {
    /// From the request-rate check with the least remaining.
    pub requests: Option<RateLine>,
    /// From the token budget with the least remaining.
    pub tokens: Option<RateLine>,
    /// From the money budget with the least remaining (micro-USD).
    pub budget: Option<RateLine>,
}

/// One `limit` / `remaining` / `reset` triple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLine {
    pub limit: u64,
    pub remaining: u64,
    pub reset_ms: u64,
}

/// A header value of [`RateHeaders`]: a count, or a reset in ms (written
/// with [`duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateValue {
    Count(u64),
    Reset(u64),
    /// Micro-USD, written as dollars.
    Usd(u64),
}

/// The names of [`RateHeaders`], in OpenAI's order (requests, then tokens):
/// [`RateHeaders::for_each`] passes the index.
pub const RATE_HEADER_NAMES: [&str; 9] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-budget-limit-usd",
    "x-budget-remaining-usd",
    "x-budget-reset",
];

impl RateHeaders {
    /// Calls `f` with each header (its index in [`RATE_HEADER_NAMES`] and
    /// its value) in OpenAI's order (requests, then tokens).
    pub fn for_each(&self, mut f: impl FnMut(usize, RateValue)) {
        for (base, line) in [(0, self.requests), (3, self.tokens)] {
            if let Some(l) = line {
                f(base, RateValue::Count(l.limit));
                f(base + 1, RateValue::Count(l.remaining));
                f(base + 2, RateValue::Reset(l.reset_ms));
            }
        }
        if let Some(l) = self.budget {
            f(6, RateValue::Usd(l.limit));
            f(7, RateValue::Usd(l.remaining));
            f(8, RateValue::Reset(l.reset_ms));
        }
    }

    /// The headers as text.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::with_capacity(6);
        self.for_each(|i, value| {
            let text = match value {
                RateValue::Count(n) => {
                    let mut s = String::new();
                    push_u64(&mut s, n);
                    s
                }
                RateValue::Reset(ms) => duration(ms),
                RateValue::Usd(micros) => Usd::text(micros),
            };
            out.push((RATE_HEADER_NAMES[i], text));
        });
        out
    }
}

/// A rejected request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// 429 or 503.
    pub status: u16,
    /// `rate_limited`, `token_limit_exceeded`, `concurrency_limited` or
    /// `limits_unavailable`.
    pub code: &'static str,
    /// Names the rule: `rule "limit-qps" (id 3): ...`.
    pub message: String,
    /// Seconds for `Retry-After` (at least 1, rounded up).
    pub retry_after_secs: u64,
    /// `x-ratelimit-*` headers (without `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
    /// The rule that denied.
    pub rule_id: u64,
}

/// The prompt count beyond which the decision of `rules` no longer
/// changes: over the largest prompt threshold of the token rules that
/// apply to `model` (`max_input_tokens`, `max_tokens`, a window's
/// `max_tokens_per_window`) every one of those rules denies, so counting
/// can stop there (the denial is the same as with the full count). None
/// when no applicable rule has a threshold: the count is needed whole.
pub fn prompt_ceiling(rules: &[&Rule], model: Option<&str>) -> Option<u64> {
    rules
        .iter()
        .filter_map(|r| match &r.config {
            RuleConfig::TokenLimit(c) if c.matches_model(model) => Some(c),
            _ => None,
        })
        .flat_map(|c| [c.max_input_tokens, c.max_tokens, c.budget().map(|b| b.1)])
        .flatten()
        .max()
}

/// Plans the limits of one request: stateless checks first (per-request
/// token caps deny 429 `token_limit_exceeded` naming the rule), then the
/// checks to send to the store in one `admit` call. `rules` are the
/// namespace's rules in priority order; [`LimitPlan::decide`] and
/// [`LimitPlan::on_store_error`] must be given the same slice.
pub fn plan(rules: &[&Rule], req: &RequestView<'_>, s: &PlanSettings) -> Result<LimitPlan, Denial> {
    let prompt = req.prompt_tokens;
    let static_cap = static_output_cap(rules, req)?;
    let expected = req
        .requested_output
        .unwrap_or(s.default_output_tokens)
        .saturating_mul(req.choices.max(1))
        .min(static_cap.unwrap_or(u64::MAX));
    let need = prompt.saturating_add(1);
    let want = prompt.saturating_add(expected).max(need);
    let tokens = Reserve { need, want };
    let mut checks = SmallVec::new();
    let mut owners = SmallVec::new();
    for (index, rule) in rules.iter().enumerate() {
        if rule.only_route.as_ref().is_some_and(|r| r != req.route) {
            continue;
        }
        let channel = if req.internal {
            Channel::Internal
        } else {
            Channel::External
        };
        if rule.config.channel().is_some_and(|c| c != channel) {
            continue;
        }
        // The internal channel is not held to quotas (token and money
        // budgets) unless a rule names it; its usage is still recorded.
        if req.internal && rule.config.channel().is_none() && rule.config.is_quota() {
            continue;
        }
        let Some(check) = rule_check(rule, req, s, tokens)? else {
            continue;
        };
        checks.push(check);
        owners.push(Owner {
            index,
            rule_id: rule.id,
            fail_closed: rule.config.fail_mode() == FailMode::Closed,
            local_share: rule.config.fail_mode() == FailMode::LocalShare,
            money: matches!(rule.config, RuleConfig::Budget(_)),
        });
    }
    Ok(LimitPlan {
        checks,
        owners,
        prompt_tokens: prompt,
        static_cap,
        price: req.price,
    })
}

/// What a token budget check asks for.
#[derive(Clone, Copy)]
struct Reserve {
    need: u64,
    want: u64,
}

/// The store check of one rule, None when the rule does not count this
/// request; a budget that cannot hold the prompt denies at once.
fn rule_check(
    rule: &Rule,
    req: &RequestView<'_>,
    s: &PlanSettings,
    tokens: Reserve,
) -> Result<Option<Check>, Denial> {
    if let RuleConfig::TokenLimit(c) = &rule.config {
        if c.budget().is_none() || !c.matches_model(req.model) {
            return Ok(None);
        }
    }
    let Some(key) = counter_key(rule, req) else {
        return Ok(None);
    };
    let check = match &rule.config {
        RuleConfig::RateLimit(c) if c.algorithm == RateAlgorithm::TokenBucket => Check::Bucket {
            key,
            rate_per_sec: c.rate_per_sec(),
            burst: c.bucket_size(),
            cost: 1,
        },
        RuleConfig::RateLimit(c) => Check::Window {
            key,
            limit: c.limit(),
            window_ms: c.window_ms(),
            sliding: c.algorithm == RateAlgorithm::SlidingWindow,
            cost: 1,
        },
        RuleConfig::Concurrency(c) => Check::Concurrency {
            key,
            limit: c.max_concurrent,
            lease_id: req.request_id.to_string(),
            lease_ms: s.lease_ms,
        },
        RuleConfig::Budget(c) => {
            let Some(price) = req.price else {
                return Ok(None);
            };
            let prompt = req.prompt_tokens;
            let need = price.micros(prompt, 1);
            let want = price.micros(prompt, tokens.want.saturating_sub(prompt).max(1));
            let limit = c.max_usd.0;
            if need > limit {
                let message = format!(
                    "the prompt ({prompt} tokens) costs ${} with one output token, more than the budget of ${} per {} for {}; this request can never fit",
                    Usd::text(need),
                    Usd::text(limit),
                    window_text(c.window_ms()),
                    subject(rule, &key)
                );
                return Err(Denial {
                    status: 402,
                    code: "budget_exceeded",
                    ..stateless_denial(rule, message)
                });
            }
            Check::Tokens {
                key,
                limit,
                window_ms: c.window_ms(),
                need,
                want,
                money: true,
            }
        }
        RuleConfig::TokenLimit(c) => {
            let Some((window_ms, limit)) = c.budget() else {
                return Ok(None);
            };
            if tokens.need > limit {
                let message = format!(
                    "the prompt has {} tokens but the budget of {limit} tokens per {} for {} cannot hold it and one output token; this request can never fit",
                    req.prompt_tokens,
                    window_text(window_ms),
                    subject(rule, &key)
                );
                return Err(stateless_denial(rule, message));
            }
            Check::Tokens {
                key,
                limit,
                window_ms,
                need: tokens.need,
                want: tokens.want,
                money: false,
            }
        }
    };
    Ok(Some(check))
}

/// The per-request caps of the token rules that apply: denies a prompt
/// over `max_input_tokens` or leaving no room under `max_tokens`, returns
/// the output cap they set.
fn static_output_cap(rules: &[&Rule], req: &RequestView<'_>) -> Result<Option<u64>, Denial> {
    let prompt = req.prompt_tokens;
    let mut cap: Option<u64> = None;
    let mut lower = |c: u64| cap = Some(cap.map_or(c, |old| old.min(c)));
    for rule in rules {
        let RuleConfig::TokenLimit(c) = &rule.config else {
            continue;
        };
        if !c.matches_model(req.model) {
            continue;
        }
        if let Some(max) = c.max_input_tokens.filter(|&max| prompt > max) {
            let message = format!(
                "the prompt has {prompt} tokens, more than the {max} allowed per request (max_input_tokens)"
            );
            return Err(stateless_denial(rule, message));
        }
        if let Some(max) = c.max_tokens {
            if prompt >= max {
                let message = format!(
                    "the prompt has {prompt} tokens, leaving no room for output within the {max} allowed per request (max_tokens counts prompt + output)"
                );
                return Err(stateless_denial(rule, message));
            }
            lower(max - prompt);
        }
        if let Some(max) = c.max_output_tokens {
            lower(max);
        }
    }
    Ok(cap)
}

fn stateless_denial(rule: &Rule, message: String) -> Denial {
    Denial {
        status: 429,
        code: "token_limit_exceeded",
        message: format!("{}: {message}", rule_label(Some(rule), rule.id)),
        retry_after_secs: 1,
        headers: Vec::new(),
        rule_id: rule.id,
    }
}

/// `"{rule_id}:{dimension}:{value}"`, or None when the request has no value
/// for the rule's dimension.
fn counter_key(rule: &Rule, req: &RequestView<'_>) -> Option<String> {
    let value = |key_by: KeyBy| {
        match key_by {
            KeyBy::Namespace => Some(req.namespace),
            KeyBy::ApiKey => req.api_key,
            KeyBy::Route => Some(req.route),
            KeyBy::Model => req.model,
            KeyBy::Header => rule
                .config
                .header_name()
                .and_then(|name| req.headers.header(name)),
            KeyBy::Upstream => Some(req.upstream),
            KeyBy::Global => Some("*"),
        }
        .filter(|v| !v.is_empty())
    };
    let mut key = String::with_capacity(rule.key_prefix.len() + 32);
    key.push_str(&rule.key_prefix);
    for (i, dim) in rule.config.key_by().dims().iter().enumerate() {
        if i > 0 {
            key.push(KEY_SEPARATOR);
        }
        key.push_str(value(*dim)?);
    }
    Some(key)
}

/// Starts the keys of the checks a `local_share` rule makes while the
/// store is unreachable ([`LimitPlan::local_share`]): their settlements go
/// to the in-process store that admitted them.
pub const LOCAL_SHARE_MARK: &str = "\u{1e}local:";

/// Between the values of a multi-dimension `key_by` in a counter key (a
/// control character: no header value, key name or path holds one).
const KEY_SEPARATOR: char = '\u{1f}';

/// Who a counter key counts, for messages: `namespace "ns"`, `all requests`.
fn subject(rule: &Rule, key: &str) -> String {
    let mut parts = key.splitn(3, ':').skip(1);
    let (dimension, value) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match dimension {
        "global" => "all requests".to_string(),
        "api_key" => format!("API key {value:?}"),
        "header" => format!(
            "header {} {value:?}",
            rule.config.header_name().unwrap_or("?")
        ),
        multi if multi.contains('+') => multi
            .split('+')
            .zip(value.split(KEY_SEPARATOR))
            .map(|(d, v)| format!("{d} {v:?}"))
            .collect::<Vec<_>>()
            .join(", "),
        other => format!("{other} {value:?}"),
    }
}

fn rule_label(rule: Option<&Rule>, id: u64) -> String {
    match rule {
        Some(r) => format!("rule {:?} (id {id})", r.name),
        None => format!("rule id {id}"),
    }
}

impl LimitPlan {
    /// True when no check applies (nothing to ask the store).
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// The output cap known without the store (per-request
    /// `max_output_tokens` and `max_tokens` caps); the same as
    /// [`Reservation::output_cap`] when there are no budgets.
    pub fn static_output_cap(&self) -> Option<u64> {
        self.static_cap
    }

    /// Turns the store's answer into a decision. An empty plan allows
    /// whatever the admission says; an answer that does not match the
    /// checks is treated as a store failure ([`Self::on_store_error`]).
    pub fn decide(&self, rules: &[&Rule], admission: &Admission) -> Decision {
        self.clone().into_decision(rules, admission)
    }

    /// [`Self::decide`], moving the plan's keys into the reservation
    /// instead of copying them (the request path).
    pub fn into_decision(self, rules: &[&Rule], admission: &Admission) -> Decision {
        if self.checks.is_empty() {
            return self.allow_unreserved();
        }
        if admission.statuses.len() != self.checks.len() {
            return self.on_store_error(rules);
        }
        let statuses = &admission.statuses;
        if admission.admitted {
            Decision::Allow(self.into_reservation(statuses))
        } else {
            Decision::Deny(self.denial(rules, statuses))
        }
    }

    /// The store is unreachable: denies 503 `limits_unavailable` when a
    /// rule of the plan fails closed, else allows without reservation (the
    /// per-request caps still apply).
    pub fn on_store_error(&self, rules: &[&Rule]) -> Decision {
        let Some(owner) = self.owners.iter().find(|o| o.fail_closed) else {
            return self.allow_unreserved();
        };
        let rule = self.rule(rules, owner);
        Decision::Deny(Denial {
            status: 503,
            code: "limits_unavailable",
            message: format!(
                "{}: the limits store is unavailable and the rule has fail_mode closed",
                rule_label(rule, owner.rule_id)
            ),
            retry_after_secs: 1,
            headers: Vec::new(),
            rule_id: owner.rule_id,
        })
    }

    /// Whether a rule of this plan fails `local_share` (its answers are
    /// worth noting with [`Self::note_remaining`]).
    pub fn shares_locally(&self) -> bool {
        self.owners.iter().any(|o| o.local_share)
    }

    /// Notes in `seen` what the store's `admission` left of the limits of
    /// the rules that fail `local_share`.
    pub fn note_remaining(&self, admission: &Admission, seen: &mut SeenRemaining, now_ms: u64) {
        for ((check, owner), status) in self
            .checks
            .iter()
            .zip(&self.owners)
            .zip(&admission.statuses)
        {
            if owner.local_share {
                seen.record(check, status, now_ms);
            }
        }
    }

    /// While the store is unreachable: the checks of the rules that fail
    /// `local_share`, each limit divided by `instances` (at least 1), with
    /// their keys marked [`LOCAL_SHARE_MARK`]: what this instance enforces
    /// on its own. A window or budget the store last answered for (`left`:
    /// what remained, while that answer holds) shares out what remained
    /// instead of the whole limit (nothing when nothing remained). None
    /// when no such rule applies, or when a rule fails closed (then
    /// [`Self::on_store_error`] decides). The checks of rules that fail
    /// open are left out (uncounted).
    pub fn local_share(
        &self,
        instances: u64,
        left: impl Fn(&Check) -> Option<u64>,
    ) -> Option<LimitPlan> {
        if self.owners.iter().any(|o| o.fail_closed) || !self.shares_locally() {
            return None;
        }
        let n = instances.max(1);
        let share = |v: u64| (v / n).max(1);
        let share_left = |limit: u64, left: Option<u64>| match left {
            Some(0) => 0,
            Some(r) => share(r.min(limit)),
            None => share(limit),
        };
        let mut checks = SmallVec::new();
        let mut owners = SmallVec::new();
        for (check, owner) in self.checks.iter().zip(&self.owners) {
            if !owner.local_share {
                continue;
            }
            let remained = left(check);
            let mut check = check.clone();
            match &mut check {
                Check::Window { key, limit, .. } | Check::Tokens { key, limit, .. } => {
                    *limit = share_left(*limit, remained);
                    key.insert_str(0, LOCAL_SHARE_MARK);
                }
                Check::Concurrency { key, limit, .. } => {
                    *limit = share(*limit);
                    key.insert_str(0, LOCAL_SHARE_MARK);
                }
                Check::Bucket {
                    key,
                    rate_per_sec,
                    burst,
                    ..
                } => {
                    *burst = share(*burst);
                    if *rate_per_sec > 0 {
                        *rate_per_sec = share(*rate_per_sec);
                    }
                    key.insert_str(0, LOCAL_SHARE_MARK);
                }
            }
            checks.push(check);
            owners.push(*owner);
        }
        Some(LimitPlan {
            checks,
            owners,
            prompt_tokens: self.prompt_tokens,
            static_cap: self.static_cap,
            price: self.price,
        })
    }

    fn allow_unreserved(&self) -> Decision {
        Decision::Allow(Reservation {
            output_cap: self.static_cap,
            ..Reservation::default()
        })
    }

    fn rule<'r>(&self, rules: &[&'r Rule], owner: &Owner) -> Option<&'r Rule> {
        match rules.get(owner.index) {
            Some(r) if r.id == owner.rule_id => Some(*r),
            _ => rules.iter().copied().find(|r| r.id == owner.rule_id),
        }
    }

    fn into_reservation(self, statuses: &[CheckStatus]) -> Reservation {
        let rate = rate_headers(&self.checks, &self.owners, statuses);
        let mut leases = SmallVec::new();
        let mut budgets = SmallVec::new();
        let mut money = SmallVec::new();
        let mut granted: Option<u64> = None;
        let mut granted_micros: Option<u64> = None;
        let min = |g: Option<u64>, v: u64| Some(g.map_or(v, |g| g.min(v)));
        for ((check, status), owner) in self.checks.into_iter().zip(statuses).zip(&self.owners) {
            match check {
                Check::Concurrency { key, lease_id, .. } => {
                    leases.push((key, lease_id));
                }
                Check::Tokens { key, window_ms, .. } if owner.money => {
                    money.push((key, window_ms, status.window_start_ms));
                    granted_micros = min(granted_micros, status.granted);
                }
                Check::Tokens { key, window_ms, .. } => {
                    budgets.push((key, window_ms, status.window_start_ms));
                    granted = min(granted, status.granted);
                }
                _ => {}
            }
        }
        let budget_cap = granted.map(|g| g.saturating_sub(self.prompt_tokens));
        // What the money granted still buys after the prompt.
        let money_cap = granted_micros
            .zip(self.price)
            .and_then(|(g, p)| p.output_for(g, self.prompt_tokens));
        let output_cap = [self.static_cap, budget_cap, money_cap]
            .into_iter()
            .flatten()
            .min();
        Reservation {
            output_cap,
            reserved_tokens: granted.unwrap_or(0),
            reserved_micros: granted_micros.unwrap_or(0),
            rate,
            leases,
            budgets,
            money,
        }
    }

    fn denial(&self, rules: &[&Rule], statuses: &[CheckStatus]) -> Denial {
        // Blame the failed check that waits longest; a budget that could
        // have granted this request (it failed with another budget) only
        // when nothing else failed.
        let failed = |i: &usize| !statuses[*i].passed;
        let primary = |i: &usize| !by_another_budget(&self.checks[*i], &statuses[*i]);
        let mut candidates: Vec<usize> = (0..self.checks.len()).filter(failed).collect();
        if candidates.iter().any(primary) {
            candidates.retain(primary);
        }
        let mut worst: Option<(usize, u64)> = None;
        for i in candidates {
            let wait = wait_ms(&self.checks[i], &statuses[i]);
            if worst.is_none_or(|(_, w)| wait > w) {
                worst = Some((i, wait));
            }
        }
        // A store that denies without a failing check: blame the first.
        let (i, wait) = worst.unwrap_or((0, 1000));
        let owner = self.owners[i];
        let (check, status) = (&self.checks[i], &statuses[i]);
        let rule = self.rule(rules, &owner);
        let retry_after_secs = wait.div_ceil(1000).max(1);
        let (http, code, what) = if owner.money {
            describe_money(check, status, rule, self.prompt_tokens)
        } else {
            describe(check, status, rule, self.prompt_tokens)
        };
        Denial {
            status: http,
            code,
            message: format!(
                "{}: {what}; retry after {retry_after_secs}s",
                rule_label(rule, owner.rule_id)
            ),
            retry_after_secs,
            headers: rate_headers(&self.checks, &self.owners, statuses).pairs(),
            rule_id: owner.rule_id,
        }
    }
}

/// A failed token budget that could have granted this request's need.
fn by_another_budget(check: &Check, status: &CheckStatus) -> bool {
    match check {
        Check::Tokens { need, want, .. } => (*want).min(status.remaining) >= *need,
        _ => false,
    }
}

/// How long a failed check asks the client to wait (ms).
fn wait_ms(check: &Check, status: &CheckStatus) -> u64 {
    match (check, status.retry_after_ms) {
        (_, 0) => 1000,
        (Check::Concurrency { .. }, ms) => ms.min(1000),
        (_, ms) => ms,
    }
}

/// The code of a concurrency denial: a cap on every request in flight
/// (`key_by: global`) is the downstream cap, `downstream_concurrency_exceeded`;
/// a cap per route or upstream (alone or with other dimensions, such as
/// `[api_key, route]`) guards the upstream, `upstream_concurrency_exceeded`;
/// any other (per namespace, key, model, header) is `concurrency_limited`.
pub fn concurrency_code(key_by: &KeyBySet) -> &'static str {
    if key_by.contains(KeyBy::Global) {
        "downstream_concurrency_exceeded"
    } else if key_by.contains(KeyBy::Route) || key_by.contains(KeyBy::Upstream) {
        "upstream_concurrency_exceeded"
    } else {
        "concurrency_limited"
    }
}

/// Status, code and the sentence of a failed money budget (402).
fn describe_money(
    check: &Check,
    status: &CheckStatus,
    rule: Option<&Rule>,
    prompt: u64,
) -> (u16, &'static str, String) {
    let Check::Tokens {
        key,
        limit,
        window_ms,
        need,
        ..
    } = check
    else {
        return describe(check, status, rule, prompt);
    };
    let who = rule.map_or_else(|| key.to_string(), |r| subject(r, key));
    (
        402,
        "budget_exceeded",
        format!(
            "budget of ${} per {} for {who} has ${} left; this request needs at least ${} ({prompt} prompt tokens + 1 output)",
            Usd::text(*limit),
            window_text(*window_ms),
            Usd::text(status.remaining),
            Usd::text(*need)
        ),
    )
}

/// Status, code and the sentence of a failed check.
fn describe(
    check: &Check,
    status: &CheckStatus,
    rule: Option<&Rule>,
    prompt: u64,
) -> (u16, &'static str, String) {
    let who = |key: &str| rule.map_or_else(|| key.to_string(), |r| subject(r, key));
    match check {
        Check::Window {
            key,
            limit,
            window_ms,
            sliding,
            ..
        } => (
            429,
            "rate_limited",
            format!(
                "rate limit of {limit} requests per {} ({} window) reached for {}",
                window_text(*window_ms),
                if *sliding { "sliding" } else { "fixed" },
                who(key)
            ),
        ),
        Check::Bucket {
            key,
            rate_per_sec,
            burst,
            ..
        } => (
            429,
            "rate_limited",
            format!(
                "rate limit of {rate_per_sec} requests per second (burst {burst}) reached for {}",
                who(key)
            ),
        ),
        Check::Concurrency { key, limit, .. } => (
            503,
            rule.map_or("concurrency_limited", |r| concurrency_code(r.config.key_by())),
            format!(
                "concurrency limit of {limit} requests in flight reached for {}",
                who(key)
            ),
        ),
        Check::Tokens {
            key,
            limit,
            window_ms,
            need,
            ..
        } => (
            429,
            "token_limit_exceeded",
            format!(
                "token budget of {limit} per {} for {} has {} left; this request needs at least {need} ({prompt} prompt + 1 output)",
                window_text(*window_ms),
                who(key),
                status.remaining
            ),
        ),
    }
}

/// OpenAI's `x-ratelimit-*` headers from the most restrictive request-rate
/// check and the most restrictive token budget, and the `x-budget-*`
/// ones from the most restrictive money budget.
fn rate_headers(checks: &[Check], owners: &[Owner], statuses: &[CheckStatus]) -> RateHeaders {
    #[derive(PartialEq)]
    enum Line {
        Requests,
        Tokens,
        Money,
    }
    let tightest = |want: Line| {
        checks
            .iter()
            .zip(owners)
            .zip(statuses)
            .filter(|((c, o), _)| match c {
                Check::Window { .. } | Check::Bucket { .. } => want == Line::Requests,
                Check::Tokens { .. } if o.money => want == Line::Money,
                Check::Tokens { .. } => want == Line::Tokens,
                Check::Concurrency { .. } => false,
            })
            .map(|(_, s)| s)
            .fold(None::<&CheckStatus>, |best, s| match best {
                Some(b) if b.remaining <= s.remaining => Some(b),
                _ => Some(s),
            })
    };
    let line = |s: &CheckStatus| RateLine {
        limit: s.limit,
        remaining: s.remaining,
        reset_ms: s.reset_ms,
    };
    RateHeaders {
        requests: tightest(Line::Requests).map(line),
        tokens: tightest(Line::Tokens).map(line),
        budget: tightest(Line::Money).map(line),
    }
}

/// Appends `n` in decimal (`itoa`: no `fmt` machinery, this runs per
/// request).
pub fn push_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Milliseconds in OpenAI's (Go's) duration form: `"0s"`, `"20ms"`,
/// `"1s"`, `"1.5s"`, `"6m0s"`, `"1h0m0s"`.
/// A budget's window in a message: `month` for the calendar month, else
/// its [`duration`].
fn window_text(window_ms: u64) -> String {
    if window_ms == super::store::CALENDAR_MONTH {
        "month".into()
    } else {
        duration(window_ms)
    }
}

pub fn duration(ms: u64) -> String {
    let mut buf = DurationBuf::default();
    String::from_utf8_lossy(buf.format(ms)).into_owned()
}

/// Room for the longest [`duration`] (`u64::MAX` ms is
/// `"5124095576030h25m51.615s"`, 24 bytes), so a reset header is formatted
/// on the stack.
#[derive(Debug, Default)]
pub struct DurationBuf {
    bytes: [u8; 32],
    len: usize,
}

impl DurationBuf {
    /// Writes `ms` in [`duration`]'s form; returns the ASCII text.
    pub fn format(&mut self, ms: u64) -> &[u8] {
        self.len = 0;
        if ms < 1000 {
            self.number(ms);
            if ms != 0 {
                self.byte(b'm');
            }
            self.byte(b's');
            return self.text();
        }
        let hours = ms / 3_600_000;
        let minutes = ms / 60_000 % 60;
        let (secs, frac) = (ms / 1000 % 60, ms % 1000);
        if hours > 0 {
            self.number(hours);
            self.byte(b'h');
        }
        if hours > 0 || minutes > 0 {
            self.number(minutes);
            self.byte(b'm');
        }
        self.number(secs);
        if frac > 0 {
            self.byte(b'.');
            self.byte(b'0' + (frac / 100) as u8);
            if frac % 100 != 0 {
                self.byte(b'0' + (frac / 10 % 10) as u8);
                if frac % 10 != 0 {
                    self.byte(b'0' + (frac % 10) as u8);
                }
            }
        }
        self.byte(b's');
        self.text()
    }

    fn number(&mut self, n: u64) {
        for &d in itoa::Buffer::new().format(n).as_bytes() {
            self.byte(d);
        }
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn text(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl Reservation {
    /// Settlements for the store when the request ends: every lease
    /// released, and per budget window `actual_total_tokens - reserved`
    /// (negative refunds). For a request that failed before any output,
    /// pass the prompt tokens as actual.
    pub fn settlement(&self, actual_total_tokens: u64) -> Vec<Settle> {
        self.clone().into_settlement(actual_total_tokens).into_vec()
    }

    /// [`Self::settlement`], moving the keys and lease ids into the
    /// operations instead of copying them (the request path: a request
    /// settles once).
    pub fn into_settlement(self, actual_total_tokens: u64) -> Settlement {
        self.into_settlement_priced(actual_total_tokens, None)
    }

    /// [`Self::into_settlement`] that also settles the money budgets at
    /// `actual_micros` (what the request cost); None keeps what they
    /// reserved.
    pub fn into_settlement_priced(
        self,
        actual_total_tokens: u64,
        actual_micros: Option<u64>,
    ) -> Settlement {
        let signed = |actual: u64, reserved: u64| {
            i64::try_from(i128::from(actual) - i128::from(reserved)).unwrap_or(
                if actual > reserved {
                    i64::MAX
                } else {
                    i64::MIN
                },
            )
        };
        let money_delta = actual_micros.map_or(0, |m| signed(m, self.reserved_micros));
        let delta =
            i64::try_from(i128::from(actual_total_tokens) - i128::from(self.reserved_tokens))
                .unwrap_or(if actual_total_tokens > self.reserved_tokens {
                    i64::MAX
                } else {
                    i64::MIN
                });
        let mut ops = Settlement::new();
        ops.extend(
            self.leases
                .into_iter()
                .map(|(key, lease_id)| Settle::Release { key, lease_id }),
        );
        if delta != 0 {
            ops.extend(
                self.budgets
                    .into_iter()
                    .map(|(key, window_ms, window_start_ms)| Settle::Tokens {
                        key,
                        window_ms,
                        window_start_ms,
                        delta,
                    }),
            );
        }
        if money_delta != 0 {
            ops.extend(
                self.money
                    .into_iter()
                    .map(|(key, window_ms, window_start_ms)| Settle::Tokens {
                        key,
                        window_ms,
                        window_start_ms,
                        delta: money_delta,
                    }),
            );
        }
        ops
    }

    /// The lease releases only (the token budgets keep the reservation):
    /// the settlement at exactly the reserved tokens.
    pub fn releases(&self) -> Vec<Settle> {
        self.settlement(self.reserved_tokens)
    }

    /// True when the reservation holds nothing in the store.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty() && self.budgets.is_empty() && self.money.is_empty()
    }

    /// Whether a money budget holds part of this request.
    pub fn has_money(&self) -> bool {
        !self.money.is_empty()
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
