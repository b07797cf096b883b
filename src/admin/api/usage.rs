//! Health, status and figures from the data plane: `GET /health` and
//! `/api/v1/status`, the admin `GET /stats`, and the usage, overview and
//! monitoring endpoints. The figures are built by `crate::metrics::summary`;
//! here they are read into the documented types, so an answer always has
//! the documented shape.

use super::*;
use crate::store::status::status;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// `GET /health` and `GET /api/v1/status`.
#[derive(Serialize, ToSchema)]
pub struct StatusView {
    /// `healthy`, or `unhealthy` when the store or the cache does not
    /// answer (the last applied config keeps serving either way).
    pub status: &'static str,
    /// Each configured store (`file`, `mysql`, `redis`) → `healthy`/`unhealthy`.
    pub storage: BTreeMap<String, String>,
    /// Revision of the applied config.
    pub revision: u64,
    /// ISO 8601 (RFC 3339, UTC, milliseconds).
    pub timestamp: String,
    /// `/api/v1/status` only: what is configured but can never take
    /// effect yet (a rule of a namespace no request reaches, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

/// The admin `GET /stats`: the cache-stats fields (all zero: Sluice has no
/// response cache) and the gateway's request figures.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AdminStats {
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_size: u64,
    pub cache_free: u64,
    pub cache_enabled: bool,
    pub requests_total: u64,
    pub requests_2xx: u64,
    pub requests_4xx: u64,
    pub requests_5xx: u64,
    pub latency_ms_p95: u64,
    pub upstream_failures: u64,
    pub inflight_requests: i64,
    pub inflight_streams: i64,
    /// Unix seconds.
    pub updated_at: u64,
}

/// One namespace's rate limit, as requests per second.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RateLimitView {
    pub enabled: bool,
    pub max_qps: Option<f64>,
}

/// `GET /api/v1/namespaces/{id}/usage`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UsageView {
    pub namespace_id: u64,
    pub namespace_code: String,
    /// Requests per second over the last minute or so.
    pub qps: f64,
    /// Requests in flight now.
    pub concurrency: i64,
    pub token_input_per_min: u64,
    pub token_output_per_min: u64,
    /// Cost of the last hour.
    pub cost_1h: f64,
    pub rate_limit: RateLimitView,
    /// RFC 3339.
    pub updated_at: String,
}

/// One entry of `GET /api/v1/namespaces/usage/overview`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OverviewEntry {
    pub namespace_id: u64,
    pub namespace_code: String,
    pub qps: f64,
    pub concurrency: i64,
}

/// Per-minute series, oldest first.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MonitoringSeries {
    pub req_per_min: Vec<u64>,
    pub latency_ms_p95: Vec<u64>,
    pub token_in: Vec<u64>,
    pub token_out: Vec<u64>,
}

/// `GET /api/v1/namespaces/{id}/monitoring`: the last 5 minutes.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MonitoringView {
    pub namespace_id: u64,
    pub metrics: MonitoringSeries,
    /// `5m`.
    pub window: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A figure built as JSON, read as its documented type.
fn typed<T: DeserializeOwned>(v: Value) -> Reply<T> {
    serde_json::from_value(v).map_err(ApiError::internal)
}

pub fn health(_: &Call<'_>, _: NoBody) -> Reply<StatusView> {
    let st = status();
    Ok(StatusView {
        status: if st.healthy() { "healthy" } else { "unhealthy" },
        storage: typed(st.storage_json())?,
        revision: st.revision(),
        timestamp: crate::clock::rfc3339_millis(std::time::SystemTime::now()),
        warnings: None,
    })
}

/// `GET /api/v1/status`: [`health`] and the config's warnings.
pub fn system_status(c: &Call<'_>, b: NoBody) -> Reply<StatusView> {
    Ok(StatusView {
        warnings: Some(c.center.warnings()),
        ..health(c, b)?
    })
}

pub fn stats(c: &Call<'_>, _: NoBody) -> Reply<AdminStats> {
    typed(crate::metrics::summary::admin_stats(&c.center.runtime()))
}

pub fn overview(c: &Call<'_>, _: NoBody) -> Reply<List<OverviewEntry>> {
    typed::<Vec<OverviewEntry>>(crate::metrics::summary::overview(&c.center.runtime())).map(List)
}

pub fn usage(c: &Call<'_>, _: NoBody) -> Reply<UsageView> {
    let v = crate::metrics::summary::usage(&c.center.runtime(), c.id()?)
        .ok_or_else(ApiError::not_found)?;
    typed(v)
}

pub fn monitoring(c: &Call<'_>, _: NoBody) -> Reply<MonitoringView> {
    let v = crate::metrics::summary::monitoring(&c.center.runtime(), c.id()?)
        .ok_or_else(ApiError::not_found)?;
    typed(v)
}

/// One line of the spend ledger.
#[derive(Serialize, ToSchema)]
pub struct SpendItem {
    pub namespace: String,
    /// The API key's name (`none` without a key).
    pub key: String,
    pub model: String,
    pub usd: f64,
    /// The same in micro-USD (exact).
    pub micros: u64,
}

/// `GET /api/v1/spend`: what catalog requests cost on one day (UTC), per
/// namespace, API key and model, from the counter store (shared by every
/// instance when it is Redis).
#[derive(Serialize, ToSchema)]
pub struct SpendView {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// `USD`.
    pub currency: &'static str,
    pub total_usd: f64,
    pub total_micros: u64,
    pub items: Vec<SpendItem>,
}

pub fn spend(c: Call<'_>, _: NoBody) -> Pending<'_, SpendView> {
    Box::pin(async move {
        let today = crate::clock::rfc3339(crate::clock::unix_secs());
        let day = match c.query_param("day") {
            Some(d) => d,
            None => today.get(..10).unwrap_or_default().to_string(),
        };
        let valid = day.len() == 10
            && day.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !valid {
            return Err(ApiError::bad_request(format!(
                "day: {day:?} 不是日期，请写 YYYY-MM-DD（UTC）"
            )));
        }
        let (ns, key, model) = (
            c.query_param("namespace"),
            c.query_param("key"),
            c.query_param("model"),
        );
        let rt = c.center.runtime();
        let rows = rt
            .live
            .counters()
            .spend(&day)
            .await
            .map_err(|e| ApiError::new(503, format!("计数存储不可用: {e}")))?;
        let items: Vec<SpendItem> = rows
            .into_iter()
            .filter_map(|(entry, micros)| {
                let mut parts = entry.split(crate::live::LEDGER_SEPARATOR);
                let (n, k, m) = (parts.next()?, parts.next()?, parts.next()?);
                let keep = ns.as_deref().is_none_or(|x| x == n)
                    && key.as_deref().is_none_or(|x| x == k)
                    && model.as_deref().is_none_or(|x| x == m);
                keep.then(|| SpendItem {
                    namespace: n.to_string(),
                    key: k.to_string(),
                    model: m.to_string(),
                    usd: micros as f64 / 1e6,
                    micros,
                })
            })
            .collect();
        let total_micros = items.iter().map(|i| i.micros).sum::<u64>();
        Ok(SpendView {
            day,
            currency: "USD",
            total_usd: total_micros as f64 / 1e6,
            total_micros,
            items,
        })
    })
}
