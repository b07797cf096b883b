//! Limit rule configs: the `rule_config` JSON of the admin API's `rate_limit`,
//! `concurrency` and `token_limit` rules, parsed and validated once when a
//! config is loaded (the admin API and the config validator call
//! [`RuleConfig::parse`]), and the schemas `GET /api/v1/rules/types` shows
//! ([`rule_types_schema`]).
//!
//! Validation rejects every config that would silently do nothing or could
//! never be met, with a message that names the field (`rule_config.burst:
//! ...`) and says what to write instead. `null` is the same as leaving a
//! field out, and a `rule_config` stored as a JSON string is parsed first.
//!
//! Token buckets refill `max_requests / time_window_seconds` requests per
//! second, which must come out a whole number (the counter store counts in
//! integer requests per second); other rates are rejected with a message
//! pointing at `fixed_window`/`sliding_window`, which take any rate.

use super::store::CALENDAR_MONTH;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest window accepted (366 days), so window arithmetic in
/// milliseconds stays far from overflow.
pub const MAX_WINDOW_SECS: u64 = 366 * 24 * 3600;

/// Which part of the request a rule counts by: each distinct value gets its
/// own counter. A request without a value for the dimension (no API key, no
/// such header, no model) is not counted by the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyBy {
    /// One counter per namespace.
    #[default]
    Namespace,
    /// One counter per API key (by key name).
    ApiKey,
    /// One counter per route (prefix route or proxy rule).
    Route,
    /// One counter per requested model.
    Model,
    /// One counter per value of the header `header_name`.
    Header,
    /// One counter per upstream pool.
    Upstream,
    /// One counter for every request the rule sees.
    Global,
}

impl KeyBy {
    /// The config spelling (`api_key`), also the dimension in counter keys.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyBy::Namespace => "namespace",
            KeyBy::ApiKey => "api_key",
            KeyBy::Route => "route",
            KeyBy::Model => "model",
            KeyBy::Header => "header",
            KeyBy::Upstream => "upstream",
            KeyBy::Global => "global",
        }
    }
}

/// What a rule counts by: one dimension (`key_by: api_key`) or several
/// at once (`key_by: [api_key, route]`: one counter per API key and route
/// pair). A request without a value for any of them is not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBySet(Vec<KeyBy>);

/// Dimensions a `key_by` list may combine at most.
pub const MAX_KEY_BY: usize = 3;

impl Default for KeyBySet {
    fn default() -> Self {
        KeyBySet(vec![KeyBy::Namespace])
    }
}

impl From<KeyBy> for KeyBySet {
    fn from(k: KeyBy) -> Self {
        KeyBySet(vec![k])
    }
}

impl KeyBySet {
    /// The dimensions, in the order written.
    pub fn dims(&self) -> &[KeyBy] {
        &self.0
    }

    /// Whether `k` is one of the dimensions.
    pub fn contains(&self, k: KeyBy) -> bool {
        self.0.contains(&k)
    }

    /// The dimension in counter keys: `api_key`, or `api_key+route`.
    pub fn name(&self) -> String {
        self.0
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join("+")
    }
}

impl Serialize for KeyBySet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for KeyBySet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Spelled {
            One(KeyBy),
            Many(Vec<KeyBy>),
        }
        use serde::de::Error;
        let dims = match Spelled::deserialize(d)? {
            Spelled::One(k) => vec![k],
            Spelled::Many(v) => v,
        };
        if dims.is_empty() || dims.len() > MAX_KEY_BY {
            return Err(D::Error::custom(format!(
                "key_by: a list of 1 to {MAX_KEY_BY} dimensions"
            )));
        }
        let mut seen = Vec::new();
        for k in &dims {
            if seen.contains(k) {
                return Err(D::Error::custom(format!(
                    "key_by: {} is listed twice",
                    k.as_str()
                )));
            }
            seen.push(*k);
        }
        if dims.len() > 1 && dims.contains(&KeyBy::Global) {
            return Err(D::Error::custom(
                "key_by: global counts every request together; it combines with nothing",
            ));
        }
        Ok(KeyBySet(dims))
    }
}

/// The channel a request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// `/internal/v1/…`: the internal channel.
    Internal,
    /// Every other path (`/v1/…`).
    External,
}

/// What a rule does when the counter store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Let the request through uncounted.
    #[default]
    Open,
    /// Reject the request with 503 `limits_unavailable`.
    Closed,
    /// Count in this process, each instance enforcing its share of the
    /// limit (the limit divided by the live instances of the fleet, at
    /// least 1); the tokens it counted are charged to the shared budget
    /// when the store answers again.
    LocalShare,
}

/// How a `rate_limit` rule counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateAlgorithm {
    /// Windows aligned to multiples of the window since the Unix epoch.
    #[default]
    FixedWindow,
    /// The requests of the last `time_window_seconds`, exactly.
    SlidingWindow,
    /// A bucket of `burst` requests refilled continuously.
    TokenBucket,
}

impl RateAlgorithm {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RateAlgorithm::FixedWindow => "fixed_window",
            RateAlgorithm::SlidingWindow => "sliding_window",
            RateAlgorithm::TokenBucket => "token_bucket",
        }
    }
}

fn one() -> u64 {
    1
}

/// `rule_type: rate_limit`: at most N requests per window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests allowed per `time_window_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests: Option<u64>,
    /// Admin API alias of `max_requests` (requests per `time_window_seconds`,
    /// which defaults to 1 s, hence the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_qps: Option<u64>,
    /// Window length in seconds (default 1).
    #[serde(default = "one")]
    pub time_window_seconds: u64,
    /// `fixed_window` (default), `sliding_window` or `token_bucket`.
    #[serde(default)]
    pub algorithm: RateAlgorithm,
    /// Token bucket size (default: the limit); token_bucket only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// What the counter is per.
    #[serde(default)]
    pub key_by: KeyBySet,
    /// The header counted by (`key_by: header` only), lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// Behaviour when the counter store is down.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Only requests of this channel (`internal`: `/internal/v1/…`;
    /// `external`: every other path); none = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

impl RateLimitConfig {
    /// Requests allowed per window (`max_requests` or `max_qps`).
    pub fn limit(&self) -> u64 {
        self.max_requests.or(self.max_qps).unwrap_or(0)
    }

    /// Window length in milliseconds.
    pub fn window_ms(&self) -> u64 {
        self.time_window_seconds.saturating_mul(1000)
    }

    /// Token bucket refill per second (`limit / time_window_seconds`).
    pub fn rate_per_sec(&self) -> u64 {
        self.limit() / self.time_window_seconds.max(1)
    }

    /// Token bucket size.
    pub fn bucket_size(&self) -> u64 {
        self.burst.unwrap_or_else(|| self.limit())
    }
}

/// `rule_type: concurrency`: at most N requests in flight at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// Requests allowed in flight at once.
    pub max_concurrent: u64,
    /// What the counter is per.
    #[serde(default)]
    pub key_by: KeyBySet,
    /// The header counted by (`key_by: header` only), lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// Behaviour when the counter store is down.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Only requests of this channel (`internal`: `/internal/v1/…`;
    /// `external`: every other path); none = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

/// `rule_type: token_limit`: per-request token caps and a token budget per
/// time window, for the models `model_name` selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenLimitConfig {
    /// Models the rule applies to: an exact name, a prefix ending in `*`,
    /// or `*`; absent = every request, with or without a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Per request: prompt + output tokens at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Per request: prompt tokens at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_input_tokens: Option<u64>,
    /// Per request: output tokens at most (longer output is cut).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// Enables the token budget per window.
    #[serde(default)]
    pub time_window_enabled: bool,
    /// Budget window length in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window_minutes: Option<u64>,
    /// A calendar period (`hour`, `day`, `week`, `month`; UTC) instead of
    /// `time_window_minutes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// Tokens (prompt + output) allowed per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_window: Option<u64>,
    /// What the budget is per (default namespace).
    #[serde(default)]
    pub key_by: KeyBySet,
    /// The header counted by (`key_by: header` only), lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// Behaviour when the counter store is down.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Only requests of this channel (`internal`: `/internal/v1/…`;
    /// `external`: every other path); none = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

impl TokenLimitConfig {
    /// Whether the rule applies to a request for `model`.
    pub fn matches_model(&self, model: Option<&str>) -> bool {
        let Some(pattern) = self.model_name.as_deref() else {
            return true;
        };
        let Some(model) = model else {
            return false;
        };
        match pattern.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None => model == pattern,
        }
    }

    /// The budget: `(window_ms, tokens per window)`, when enabled.
    pub fn budget(&self) -> Option<(u64, u64)> {
        if !self.time_window_enabled {
            return None;
        }
        let window = match (self.period, self.time_window_minutes) {
            (Some(p), _) => p.window_ms(),
            (None, minutes) => minutes?.saturating_mul(60_000),
        };
        let tokens = self.max_tokens_per_window?;
        Some((window, tokens))
    }
}

/// An amount of money, kept in micro-USD (millionths of a dollar) so the
/// counter store adds whole numbers; written as a decimal number of
/// dollars (`12.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usd(pub u64);

impl Usd {
    /// Micro-USD in one dollar.
    pub const MICROS: f64 = 1_000_000.0;

    /// Dollars as a decimal text (`0.000123`, `25`).
    pub fn text(micros: u64) -> String {
        let (whole, frac) = (micros / 1_000_000, micros % 1_000_000);
        if frac == 0 {
            return whole.to_string();
        }
        let digits = format!("{frac:06}");
        format!("{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl Serialize for Usd {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / Usd::MICROS)
    }
}

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let dollars = f64::deserialize(d)?;
        if !dollars.is_finite() || !(0.0..=1e12).contains(&dollars) {
            return Err(D::Error::custom(
                "an amount of dollars from 0 to 1e12, such as 25 or 0.5",
            ));
        }
        Ok(Usd((dollars * Usd::MICROS).round() as u64))
    }
}

/// The period of a money budget, aligned to UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Hour,
    Day,
    Week,
    /// The calendar month (UTC).
    Month,
}

impl Period {
    /// The budget window: its length, or [`CALENDAR_MONTH`].
    pub fn window_ms(self) -> u64 {
        match self {
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
            Period::Week => 7 * 86_400_000,
            Period::Month => CALENDAR_MONTH,
        }
    }
}

/// `rule_type: budget`: money spent per period on catalog models (priced
/// by the deployment that answers). A request reserves its price at
/// admission (its prompt, counted exactly, and the output it may produce,
/// at the model's dearest deployment), its output is capped at what the
/// budget still buys, and it settles at its actual usage and deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Dollars allowed per period.
    pub max_usd: Usd,
    /// `hour`, `day` (default), `week` or `month` (calendar), aligned to UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    /// A window of this many minutes instead of `period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_minutes: Option<u64>,
    /// What the budget is per (default namespace).
    #[serde(default)]
    pub key_by: KeyBySet,
    /// The header counted by (`key_by: header` only), lower case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    /// Behaviour when the counter store is down.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Only requests of this channel (`internal`: `/internal/v1/…`;
    /// `external`: every other path); none = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// A cheaper catalog model that serves a request this budget cannot
    /// hold at its own model's price, instead of refusing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_model: Option<String>,
}

impl BudgetConfig {
    /// The window in milliseconds.
    pub fn window_ms(&self) -> u64 {
        match (self.window_minutes, self.period) {
            (Some(m), _) => m.saturating_mul(60_000),
            (None, Some(p)) => p.window_ms(),
            (None, None) => Period::Day.window_ms(),
        }
    }
}

/// A parsed, validated limit rule config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum RuleConfig {
    RateLimit(RateLimitConfig),
    Concurrency(ConcurrencyConfig),
    TokenLimit(TokenLimitConfig),
    Budget(BudgetConfig),
}

impl RuleConfig {
    /// Parses and validates the `rule_config` of a rule of `rule_type`
    /// (`rate_limit`, `concurrency` or `token_limit`). Errors name the
    /// offending field (`rule_config.burst: ...`) and say what to write.
    pub fn parse(rule_type: &str, config: &Value) -> Result<RuleConfig, String> {
        let spec = RULE_TYPES
            .iter()
            .find(|t| t.name == rule_type)
            .ok_or_else(|| {
                format!(
                    "rule_type: unknown type {rule_type:?}; write one of {}",
                    RULE_TYPES
                        .iter()
                        .map(|t| t.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let clean = Value::Object(check_fields(spec, config)?);
        let parsed = match spec.name {
            "rate_limit" => RuleConfig::RateLimit(from_clean(clean)?),
            "concurrency" => RuleConfig::Concurrency(from_clean(clean)?),
            "budget" => RuleConfig::Budget(from_clean(clean)?),
            _ => RuleConfig::TokenLimit(from_clean(clean)?),
        };
        parsed.validated()
    }

    /// The admin API `rule_type`.
    pub fn rule_type(&self) -> &'static str {
        match self {
            RuleConfig::RateLimit(_) => "rate_limit",
            RuleConfig::Concurrency(_) => "concurrency",
            RuleConfig::TokenLimit(_) => "token_limit",
            RuleConfig::Budget(_) => "budget",
        }
    }

    /// What the rule does when the counter store is down.
    pub fn fail_mode(&self) -> FailMode {
        match self {
            RuleConfig::RateLimit(c) => c.fail_mode,
            RuleConfig::Concurrency(c) => c.fail_mode,
            RuleConfig::TokenLimit(c) => c.fail_mode,
            RuleConfig::Budget(c) => c.fail_mode,
        }
    }

    /// Whether the rule is a quota: a token budget per window or a money
    /// budget (the internal channel skips quotas that do not name it).
    pub fn is_quota(&self) -> bool {
        match self {
            RuleConfig::TokenLimit(c) => c.budget().is_some(),
            RuleConfig::Budget(_) => true,
            _ => false,
        }
    }

    /// The channel the rule is limited to, if any.
    pub fn channel(&self) -> Option<Channel> {
        match self {
            RuleConfig::RateLimit(c) => c.channel,
            RuleConfig::Concurrency(c) => c.channel,
            RuleConfig::TokenLimit(c) => c.channel,
            RuleConfig::Budget(c) => c.channel,
        }
    }

    /// What the rule counts by.
    pub fn key_by(&self) -> &KeyBySet {
        match self {
            RuleConfig::RateLimit(c) => &c.key_by,
            RuleConfig::Concurrency(c) => &c.key_by,
            RuleConfig::TokenLimit(c) => &c.key_by,
            RuleConfig::Budget(c) => &c.key_by,
        }
    }

    /// The header counted by (`key_by: header`), lower case.
    pub fn header_name(&self) -> Option<&str> {
        match self {
            RuleConfig::RateLimit(c) => c.header_name.as_deref(),
            RuleConfig::Concurrency(c) => c.header_name.as_deref(),
            RuleConfig::TokenLimit(c) => c.header_name.as_deref(),
            RuleConfig::Budget(c) => c.header_name.as_deref(),
        }
    }

    fn validated(mut self) -> Result<RuleConfig, String> {
        let header = match &mut self {
            RuleConfig::RateLimit(c) => {
                validate_rate(c)?;
                (&c.key_by, &mut c.header_name)
            }
            RuleConfig::Concurrency(c) => {
                if c.max_concurrent == 0 {
                    return Err("rule_config.max_concurrent: must be at least 1 (0 would reject every request; disable the rule instead)".into());
                }
                (&c.key_by, &mut c.header_name)
            }
            RuleConfig::TokenLimit(c) => {
                validate_tokens(c)?;
                (&c.key_by, &mut c.header_name)
            }
            RuleConfig::Budget(c) => {
                if c.max_usd.0 == 0 {
                    return Err("rule_config.max_usd: must be more than 0 (0 would refuse every priced request; disable the rule instead)".into());
                }
                match (c.period, c.window_minutes) {
                    (Some(_), Some(_)) => {
                        return Err(
                            "rule_config.window_minutes: give period or window_minutes, not both"
                                .into(),
                        )
                    }
                    (_, Some(0)) => {
                        return Err("rule_config.window_minutes: must be at least 1".into())
                    }
                    (_, Some(m)) => window_secs("window_minutes", m.saturating_mul(60), "minutes")?,
                    _ => {}
                }
                (&c.key_by, &mut c.header_name)
            }
        };
        validate_header(header.0, header.1)?;
        Ok(self)
    }
}

fn from_clean<T: serde::de::DeserializeOwned>(clean: Value) -> Result<T, String> {
    serde_json::from_value(clean).map_err(|e| format!("rule_config: {e}"))
}

fn validate_rate(c: &RateLimitConfig) -> Result<(), String> {
    let field = match (c.max_requests, c.max_qps) {
        (Some(_), Some(_)) => {
            return Err("rule_config.max_qps: is an alias of max_requests; give one of them, not both".into())
        }
        (None, None) => {
            return Err("rule_config.max_requests: missing; write the requests allowed per time_window_seconds, e.g. {\"max_requests\": 50, \"time_window_seconds\": 1}".into())
        }
        (Some(_), None) => "max_requests",
        (None, Some(_)) => "max_qps",
    };
    let limit = c.limit();
    if limit == 0 {
        return Err(format!("rule_config.{field}: must be at least 1 (0 would reject every request; disable the rule instead)"));
    }
    window_secs("time_window_seconds", c.time_window_seconds, "seconds")?;
    match (c.algorithm, c.burst) {
        (RateAlgorithm::TokenBucket, burst) => {
            if burst == Some(0) {
                return Err("rule_config.burst: must be at least 1; write the bucket size, or leave burst out to use the limit".into());
            }
            if !limit.is_multiple_of(c.time_window_seconds) {
                return Err(format!(
                    "rule_config.time_window_seconds: a token_bucket refills {field} / time_window_seconds requests per second, which must be a whole number of at least 1 ({limit} / {} is not); write e.g. {{\"{field}\": {}, \"time_window_seconds\": {}}}, or use \"algorithm\": \"sliding_window\" for slower rates",
                    c.time_window_seconds,
                    c.time_window_seconds.max(limit.div_ceil(c.time_window_seconds) * c.time_window_seconds),
                    c.time_window_seconds,
                ));
            }
        }
        (other, Some(_)) => {
            return Err(format!(
                "rule_config.burst: only the token_bucket algorithm has a burst ({} has none); write \"algorithm\": \"token_bucket\" or remove burst",
                other.as_str()
            ))
        }
        (_, None) => {}
    }
    Ok(())
}

fn validate_tokens(c: &TokenLimitConfig) -> Result<(), String> {
    if let Some(m) = c.model_name.as_deref() {
        if m.is_empty() {
            return Err("rule_config.model_name: is empty; write a model name, a prefix ending in * (\"gpt-4o*\"), \"*\", or leave it out for every model".into());
        }
        if m.strip_suffix('*').unwrap_or(m).contains('*') {
            return Err(format!("rule_config.model_name: {m:?} has a * before the end; only a trailing * (a prefix such as \"gpt-4*\") is supported"));
        }
    }
    for (field, value) in [
        ("max_tokens", c.max_tokens),
        ("max_input_tokens", c.max_input_tokens),
        ("max_output_tokens", c.max_output_tokens),
    ] {
        if value == Some(0) {
            return Err(format!("rule_config.{field}: must be at least 1 (0 would reject every request); remove it for no cap"));
        }
    }
    if c.time_window_enabled {
        match (c.period, c.time_window_minutes) {
            (Some(_), Some(_)) => {
                return Err(
                    "rule_config.period: give period or time_window_minutes, not both".into(),
                )
            }
            (Some(_), None) => {}
            (None, minutes) => {
                let minutes = minutes.ok_or("rule_config.time_window_minutes: missing; time_window_enabled needs the window length, e.g. {\"time_window_minutes\": 60} or {\"period\": \"month\"}")?;
                window_secs("time_window_minutes", minutes.saturating_mul(60), "minutes")?;
            }
        }
        match c.max_tokens_per_window {
            None => return Err("rule_config.max_tokens_per_window: missing; time_window_enabled needs the tokens allowed per window, e.g. {\"max_tokens_per_window\": 100000}".into()),
            Some(0) => return Err("rule_config.max_tokens_per_window: must be at least 1 (0 would reject every request; disable the rule instead)".into()),
            Some(_) => {}
        }
    } else {
        for (field, set) in [
            ("time_window_minutes", c.time_window_minutes.is_some()),
            ("period", c.period.is_some()),
            ("max_tokens_per_window", c.max_tokens_per_window.is_some()),
        ] {
            if set {
                return Err(format!("rule_config.{field}: has no effect without \"time_window_enabled\": true; enable the window or remove {field}"));
            }
        }
    }
    let any = c.max_tokens.is_some()
        || c.max_input_tokens.is_some()
        || c.max_output_tokens.is_some()
        || c.time_window_enabled;
    if !any {
        return Err("rule_config: a token_limit without a limit does nothing; set max_tokens, max_input_tokens, max_output_tokens, or a budget (time_window_enabled, time_window_minutes, max_tokens_per_window)".into());
    }
    Ok(())
}

fn window_secs(field: &str, secs: u64, unit: &str) -> Result<(), String> {
    if secs == 0 {
        return Err(format!("rule_config.{field}: must be at least 1 {unit}"));
    }
    if secs > MAX_WINDOW_SECS {
        return Err(format!(
            "rule_config.{field}: the window may be at most 366 days ({} {unit})",
            if unit == "minutes" {
                MAX_WINDOW_SECS / 60
            } else {
                MAX_WINDOW_SECS
            }
        ));
    }
    Ok(())
}

fn validate_header(key_by: &KeyBySet, header: &mut Option<String>) -> Result<(), String> {
    let counts_header = key_by.contains(KeyBy::Header);
    match (counts_header, header.as_mut()) {
        (true, None) => Err("rule_config.header_name: missing; \"key_by\": \"header\" needs the header to count by, e.g. {\"header_name\": \"x-team\"}".into()),
        (true, Some(name)) => {
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                return Err(format!("rule_config.header_name: {name:?} is not a valid header name; write e.g. \"x-team\""));
            }
            name.make_ascii_lowercase();
            Ok(())
        }
        (false, Some(_)) => Err(format!(
            "rule_config.header_name: only used with \"key_by\": \"header\" (this rule counts by {}); set key_by to header or remove header_name",
            key_by.name()
        )),
        (_, None) => Ok(()),
    }
}

/// The JSON type of a config field.
#[derive(Clone, Copy)]
enum Kind {
    /// A whole number >= 0.
    Count,
    Text,
    Flag,
    OneOf(&'static [&'static str]),
    /// One of the options, or a list of distinct ones.
    OneOrList(&'static [&'static str]),
    /// A non-negative decimal number (dollars).
    Amount,
}

struct Field {
    name: &'static str,
    kind: Kind,
    required: bool,
    default: Option<&'static str>,
    description: &'static str,
}

struct RuleType {
    name: &'static str,
    description: &'static str,
    fields: &'static [Field],
}

const KEY_BY: &[&str] = &[
    "namespace",
    "api_key",
    "route",
    "model",
    "header",
    "upstream",
    "global",
];
const FAIL_MODE: &[&str] = &["open", "closed", "local_share"];
const ALGORITHMS: &[&str] = &["fixed_window", "sliding_window", "token_bucket"];

const fn field(name: &'static str, kind: Kind, description: &'static str) -> Field {
    Field {
        name,
        kind,
        required: false,
        default: None,
        description,
    }
}

const fn defaulted(
    name: &'static str,
    kind: Kind,
    default: &'static str,
    description: &'static str,
) -> Field {
    Field {
        name,
        kind,
        required: false,
        default: Some(default),
        description,
    }
}

const KEY_BY_FIELD: Field = defaulted("key_by", Kind::OneOrList(KEY_BY), "namespace", "What the counter is per: namespace, api_key (key name), route, model, header (header_name), upstream (pool) or global; or a list of up to three of them counted together, e.g. [api_key, route] (one counter per key and route). Requests without a value for it are not counted by this rule.");
const HEADER_FIELD: Field = field(
    "header_name",
    Kind::Text,
    "The header counted by; only with key_by header.",
);
const CHANNELS: &[&str] = &["internal", "external"];
const CHANNEL_FIELD: Field = field(
    "channel",
    Kind::OneOf(CHANNELS),
    "Only requests of this channel: internal (/internal/v1/...) or external (every other path); absent = both.",
);
const FAIL_FIELD: Field = defaulted("fail_mode", Kind::OneOf(FAIL_MODE), "open", "When the counter store is unreachable: open lets requests through uncounted, closed rejects them with 503, local_share counts in each instance against the limit divided by the live instances (at least 1).");

const PERIODS: &[&str] = &["hour", "day", "week", "month"];

const RULE_TYPES: &[RuleType] = &[
    RuleType {
        name: "rate_limit",
        description: "At most max_requests requests per time_window_seconds.",
        fields: &[
            field("max_requests", Kind::Count, "Requests allowed per time_window_seconds (give this or max_qps)."),
            field("max_qps", Kind::Count, "Alias of max_requests; with the default 1 s window it is requests per second."),
            defaulted("time_window_seconds", Kind::Count, "1", "Window length in seconds."),
            defaulted("algorithm", Kind::OneOf(ALGORITHMS), "fixed_window", "fixed_window: windows aligned to the clock; sliding_window: exactly the last time_window_seconds; token_bucket: a bucket of burst requests refilled at max_requests / time_window_seconds per second (must be a whole number)."),
            field("burst", Kind::Count, "Token bucket size (token_bucket only; default max_requests)."),
            KEY_BY_FIELD,
            HEADER_FIELD,
            FAIL_FIELD,
            CHANNEL_FIELD,
        ],
    },
    RuleType {
        name: "concurrency",
        description: "At most max_concurrent requests in flight at once.",
        fields: &[
            Field {
                name: "max_concurrent",
                kind: Kind::Count,
                required: true,
                default: None,
                description: "Requests allowed in flight at once.",
            },
            KEY_BY_FIELD,
            HEADER_FIELD,
            FAIL_FIELD,
            CHANNEL_FIELD,
        ],
    },
    RuleType {
        name: "token_limit",
        description: "Per-request token caps and a token budget per time window.",
        fields: &[
            field("model_name", Kind::Text, "Models the rule applies to: an exact name, a prefix ending in * (\"gpt-4o*\"), or *; absent = every request."),
            field("max_tokens", Kind::Count, "Per request: prompt + output tokens at most; output beyond it is cut."),
            field("max_input_tokens", Kind::Count, "Per request: prompt tokens at most."),
            field("max_output_tokens", Kind::Count, "Per request: output tokens at most; output beyond it is cut."),
            defaulted("time_window_enabled", Kind::Flag, "false", "Enables the token budget (needs time_window_minutes and max_tokens_per_window)."),
            field("time_window_minutes", Kind::Count, "Budget window length in minutes (windows aligned to the clock)."),
            field("period", Kind::OneOf(PERIODS), "A calendar period instead of time_window_minutes: hour, day, week or month (UTC)."),
            field("max_tokens_per_window", Kind::Count, "Tokens (prompt + output) allowed per window."),
            KEY_BY_FIELD,
            HEADER_FIELD,
            FAIL_FIELD,
            CHANNEL_FIELD,
        ],
    },
    RuleType {
        name: "budget",
        description: "Dollars spent per period on catalog models (priced by their deployments); a request reserves its price, its output is capped at what the budget still buys, and it settles at its actual usage. Over budget: 402 budget_exceeded.",
        fields: &[
            Field {
                required: true,
                ..field("max_usd", Kind::Amount, "Dollars allowed per period, e.g. 25 or 0.5.")
            },
            defaulted("period", Kind::OneOf(PERIODS), "day", "hour, day, week or month (the calendar month), aligned to UTC."),
            field("window_minutes", Kind::Count, "A window of this many minutes instead of period."),
            field("fallback_model", Kind::Text, "A cheaper catalog model that serves a request the budget cannot hold at its own model's price, instead of refusing it (402 when even that does not fit)."),
            KEY_BY_FIELD,
            HEADER_FIELD,
            FAIL_FIELD,
            CHANNEL_FIELD,
        ],
    },
];

/// Checks every field's presence and JSON type against the rule type's
/// schema; returns the object without `null` fields.
fn check_fields(spec: &RuleType, config: &Value) -> Result<Map<String, Value>, String> {
    let parsed;
    let config = match config {
        Value::String(text) => {
            parsed = serde_json::from_str::<Value>(text).map_err(|e| {
                format!("rule_config: is a string that is not JSON ({e}); write an object")
            })?;
            &parsed
        }
        other => other,
    };
    let object = match config {
        Value::Object(map) => map,
        Value::Null => &Map::new(),
        other => {
            return Err(format!(
                "rule_config: must be an object such as {{\"max_requests\": 50}}, not {other}"
            ))
        }
    };
    let mut clean = Map::new();
    for (name, value) in object {
        let field = spec.fields.iter().find(|f| f.name == name).ok_or_else(|| {
            format!(
                "rule_config.{name}: unknown field for rule_type {}; the fields are {}",
                spec.name,
                spec.fields
                    .iter()
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        if value.is_null() {
            continue;
        }
        clean.insert(name.clone(), checked_value(name, field.kind, value)?);
    }
    if let Some(missing) = spec
        .fields
        .iter()
        .find(|f| f.required && !clean.contains_key(f.name))
    {
        return Err(format!(
            "rule_config.{}: missing; {}",
            missing.name,
            missing.description.to_lowercase()
        ));
    }
    Ok(clean)
}

fn checked_value(name: &str, kind: Kind, value: &Value) -> Result<Value, String> {
    let ok = match kind {
        Kind::Count => value.as_u64().is_some(),
        Kind::Amount => value.as_f64().is_some_and(|v| v >= 0.0),
        Kind::Text => value.is_string(),
        Kind::Flag => {
            // The admin API writes flags as 1/0 elsewhere; accept both spellings.
            return match value {
                Value::Bool(_) => Ok(value.clone()),
                Value::Number(n) if n.as_u64() == Some(0) => Ok(Value::Bool(false)),
                Value::Number(n) if n.as_u64() == Some(1) => Ok(Value::Bool(true)),
                other => Err(format!(
                    "rule_config.{name}: expected true or false, got {other}"
                )),
            };
        }
        Kind::OneOf(options) => value.as_str().is_some_and(|s| options.contains(&s)),
        Kind::OneOrList(options) => match value {
            Value::Array(items) => {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|v| v.as_str().is_some_and(|s| options.contains(&s)))
            }
            other => other.as_str().is_some_and(|s| options.contains(&s)),
        },
    };
    if ok {
        return Ok(value.clone());
    }
    Err(match kind {
        Kind::Count => {
            format!("rule_config.{name}: expected a whole number such as 50, got {value}")
        }
        Kind::Amount => {
            format!("rule_config.{name}: expected an amount such as 25 or 0.5, got {value}")
        }
        Kind::Text => format!("rule_config.{name}: expected a string, got {value}"),
        Kind::OneOf(options) => format!(
            "rule_config.{name}: expected one of {}, got {value}",
            options.join(", ")
        ),
        Kind::OneOrList(options) => format!(
            "rule_config.{name}: expected one of {}, or a list of them, got {value}",
            options.join(", ")
        ),
        Kind::Flag => format!("rule_config.{name}: expected true or false, got {value}"),
    })
}

/// The limit rule types and their `rule_config` schemas, in the shape of
/// The admin API's `GET /api/v1/rules/types`:
/// `{"rule_types":[{"type":"rate_limit","description":..,"config_schema":{field:{"type":..,"enum":..,"default":..,"required":..,"description":..}}}, ..]}`.
/// Numeric fields have `"type":"number"` as in the admin API (whole numbers).
/// The admin API appends the matcher type (owned by the matcher module).
pub fn rule_types_schema() -> Value {
    let types = RULE_TYPES
        .iter()
        .map(|t| {
            let schema: Map<String, Value> = t
                .fields
                .iter()
                .map(|f| (f.name.to_string(), field_schema(f)))
                .collect();
            serde_json::json!({
                "type": t.name,
                "description": t.description,
                "config_schema": schema,
            })
        })
        .collect::<Vec<_>>();
    serde_json::json!({ "rule_types": types })
}

fn field_schema(f: &Field) -> Value {
    let mut m = Map::new();
    let ty = match f.kind {
        Kind::Count | Kind::Amount => "number",
        Kind::Text | Kind::OneOf(_) | Kind::OneOrList(_) => "string",
        Kind::Flag => "boolean",
    };
    m.insert("type".into(), ty.into());
    if let Kind::OneOf(options) | Kind::OneOrList(options) = f.kind {
        m.insert("enum".into(), options.to_vec().into());
    }
    if let Kind::OneOrList(_) = f.kind {
        m.insert("list_allowed".into(), Value::Bool(true));
    }
    if let Some(d) = f.default {
        let value = match f.kind {
            Kind::Count => d.parse::<u64>().map(Value::from).unwrap_or(Value::Null),
            Kind::Flag => Value::Bool(d == "true"),
            _ => Value::from(d),
        };
        m.insert("default".into(), value);
    }
    if f.required {
        m.insert("required".into(), Value::Bool(true));
    }
    m.insert("description".into(), f.description.into());
    Value::Object(m)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
