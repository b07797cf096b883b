//! The dry-run endpoints' types and handlers: the sample request they take
//! ([`SampleRequest`]) and the answers of `POST /api/v1/route/namespace`,
//! `/api/v1/route/validate` and `/api/v1/namespaces/{id}/validate`. The
//! evaluation itself is [`super::validate`]'s (the running runtime's own
//! decision); its answers are read into these types, so an answer always
//! has the documented shape.

use super::matchers::{Action, MatcherKind, Operator};
use super::sample::SampleRequest;
use super::validate;
use super::*;
use std::collections::BTreeMap;

/// A matcher's settings as shown by the dry runs.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MatcherConfigView {
    pub matcher_type: MatcherKind,
    pub match_field: String,
    pub match_operator: Operator,
    pub match_value: String,
    pub action: Action,
}

/// The namespace a request lands in.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NamespaceInfo {
    pub namespace_id: u64,
    pub namespace_code: String,
    pub namespace_name: String,
    pub status: i64,
}

/// Where the request would go.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteTarget {
    /// A model of the catalog.
    CatalogModel {
        model: String,
        operation: String,
        upstream: Option<String>,
        upstream_path: String,
    },
    /// A proxy rule.
    ProxyRule {
        rule_id: u64,
        rule_name: Option<String>,
        upstream: Option<String>,
        upstream_path: String,
    },
    /// A prefix route.
    Prefix {
        prefix: String,
        upstream: Option<String>,
        upstream_path: String,
    },
}

/// The sample's API key: refused (with why), or the key and its bound namespace.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum KeyView {
    Refused {
        error: String,
    },
    Key {
        key_name: Option<String>,
        bound_namespace: Option<String>,
    },
}

/// What the proxy would answer, limits aside.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    /// `proxied`, `gateway_endpoint`, `denied`, `no_namespace`,
    /// `namespace_inactive`, `unauthorized`, `invalid_request`…
    pub result: String,
    /// The HTTP status.
    pub status: u16,
    pub reason: String,
}

/// `POST /api/v1/route/namespace`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RouteNamespaceView {
    /// A matcher decided.
    pub matched: bool,
    /// The deciding matcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_config: Option<MatcherConfigView>,
    pub target_namespace: Option<String>,
    pub namespace_info: Option<NamespaceInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub route: Option<RouteTarget>,
    pub api_key: Option<KeyView>,
    /// The namespace the sample's API key is bound to, when that overrides
    /// what the matchers decide (live traffic with this key lands there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_namespace: Option<String>,
    pub decision: Verdict,
}

/// The sample as evaluated.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SampleEcho {
    pub method: String,
    /// Normalised like the proxy normalises a request target.
    pub path: String,
    pub query: Option<String>,
    pub headers: BTreeMap<String, String>,
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
}

/// One active matcher's result, in evaluation order.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MatcherResult {
    pub rule_id: u64,
    pub rule_name: Option<String>,
    /// `matcher`.
    pub rule_type: String,
    pub priority: i64,
    pub status: i64,
    pub namespace_id: u64,
    pub namespace_code: String,
    /// Evaluated at all (a key bound to another namespace skips it).
    pub evaluated: bool,
    pub matched: bool,
    /// This matcher decided.
    pub decisive: bool,
    pub config: Option<MatcherConfigView>,
}

/// `POST /api/v1/route/validate`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RouteValidateView {
    pub request_data: SampleEcho,
    pub rules: Vec<MatcherResult>,
    pub target_namespace: Option<String>,
    pub route: Option<RouteTarget>,
    pub api_key: Option<KeyView>,
    pub decision: Verdict,
}

/// One of the namespace's matchers, checked.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RuleCheck {
    pub rule_id: u64,
    pub rule_name: Option<String>,
    /// `matcher`.
    pub rule_type: String,
    /// Allowed by this matcher (a deny matcher passes unless it fires).
    pub passed: bool,
    pub details: RuleCheckDetails,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RuleCheckDetails {
    pub message: String,
    pub matched: bool,
    pub config: Option<MatcherConfigView>,
}

/// `POST /api/v1/namespaces/{id}/validate`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NamespaceValidateView {
    /// The request would be admitted into this namespace.
    pub allowed: bool,
    pub namespace_id: u64,
    pub namespace_code: String,
    pub namespace_name: String,
    /// The namespace it lands in instead, if any.
    pub resolved_namespace: Option<String>,
    pub rules: Vec<RuleCheck>,
    pub route: Option<RouteTarget>,
    pub decision: Verdict,
}

/// An evaluation's answer read as its documented type.
fn typed<T: serde::de::DeserializeOwned>(v: Reply) -> Reply<T> {
    serde_json::from_value(v?).map_err(ApiError::internal)
}

pub fn route_namespace(c: &Call<'_>, b: SampleRequest) -> Reply<RouteNamespaceView> {
    typed(validate::route_namespace(&c.center.runtime(), &b))
}

pub fn route_validate(c: &Call<'_>, b: SampleRequest) -> Reply<RouteValidateView> {
    typed(validate::route_validate(&c.center.runtime(), &b))
}

pub fn validate_namespace(c: &Call<'_>, b: SampleRequest) -> Reply<NamespaceValidateView> {
    typed(validate::validate_namespace(
        &c.center.runtime(),
        c.id()?,
        &b,
    ))
}
