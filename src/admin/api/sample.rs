//! The sample request the dry-run endpoints take ([`SampleRequest`]):
//! method, path, headers, query and body as the proxy would receive them.
//! Read by the handlers (`dry_run.rs`) and by the evaluation
//! (`validate.rs`).

use super::*;
use serde::de::Error;
use std::collections::BTreeMap;

/// A sample request, as the proxy would receive it.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"method": "POST", "path": "/v1/chat/completions",
    "headers": {"x-tenant": "enterprise", "authorization": "Bearer sk-test"},
    "query_params": {"model": "gpt-4"},
    "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}}))]
pub struct SampleRequest {
    /// HTTP method (default `POST`).
    #[serde(default, deserialize_with = "method")]
    pub method: Option<String>,
    /// Request target (default `/`); a `?query` part is split off.
    #[serde(default, deserialize_with = "de::text")]
    pub path: Option<String>,
    /// Header name → value (non-string values as their JSON text).
    #[serde(default, deserialize_with = "headers")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub headers: Option<BTreeMap<String, Value>>,
    /// Query parameters: an object, or a raw query string.
    #[serde(default, deserialize_with = "query")]
    #[schema(value_type = Option<Object>)]
    pub query_params: Option<SampleQuery>,
    /// Same as `query_params` (wins when both are given).
    #[serde(default, deserialize_with = "query")]
    #[schema(value_type = Option<Object>)]
    pub query: Option<SampleQuery>,
    /// The body: a string is sent as is, any other JSON as its text.
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
}

impl Body for SampleRequest {}

/// A sample's query.
pub enum SampleQuery {
    /// A raw query string (`a=1&b=2`).
    Raw(String),
    /// Parameter → value (non-string values as their JSON text).
    Params(BTreeMap<String, Value>),
}

fn method<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(m)) if !m.trim().is_empty() => Ok(Some(m)),
        Some(_) => Err(D::Error::custom("必须是 HTTP 方法字符串")),
    }
}

fn headers<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, Value>>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.into_iter().collect())),
        Some(_) => Err(D::Error::custom("必须是 JSON 对象")),
    }
}

fn query<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SampleQuery>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None => Ok(None),
        Some(Value::String(q)) => Ok(Some(SampleQuery::Raw(q))),
        Some(Value::Object(m)) => Ok(Some(SampleQuery::Params(m.into_iter().collect()))),
        Some(_) => Err(D::Error::custom("必须是 JSON 对象或查询字符串")),
    }
}
