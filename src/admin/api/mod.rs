//! The seed 000 resources, one file per group: namespaces, upstream servers, matchers, proxy
//! rules and limit rules. Reads answer from the applied snapshot; every
//! change goes through [`ConfigCenter::mutate`]. Request bodies use the API's
//! field names (`namespace_id`, `upstream_server_id`, `matcher_config`…),
//! which are mapped onto the config entities (which reference namespaces by
//! code and pools by name), then decoded with the entities' own serde rules
//! so a wrong field is named in the 400.

use super::center::ConfigCenter;
use super::ApiError;
use crate::config::{Matcher, Namespace, ProxyRule, Rule, UpstreamServer};
use crate::state::Runtime;
use crate::store::config_file::{server_json, Entities};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

pub(super) type Body = Map<String, Value>;
pub(super) type Reply = Result<Value, ApiError>;

// ---------- helpers ----------

/// 400 `缺少必要字段: <field>` for the first of `fields` absent or null.
pub(super) fn require(body: &Body, fields: &[&str]) -> Result<(), ApiError> {
    for f in fields {
        if body.get(*f).is_none_or(Value::is_null) {
            return Err(ApiError::bad_request(format!("缺少必要字段: {f}")));
        }
    }
    Ok(())
}

/// Copies `fields` present in `body` into `base`. A null clears a field
/// listed in `nullable` and is ignored otherwise.
pub(super) fn copy(base: &mut Body, body: &Body, fields: &[&str], nullable: &[&str]) {
    for f in fields {
        match body.get(*f) {
            None => {}
            Some(Value::Null) if !nullable.contains(f) => {}
            Some(v) => {
                base.insert((*f).to_string(), v.clone());
            }
        }
    }
}

/// Decodes an entity, naming the offending field in the 400.
pub(super) fn decode<T: DeserializeOwned>(map: Body) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            ApiError::bad_request(inner)
        } else {
            ApiError::bad_request(format!("{path}: {inner}"))
        }
    })
}

/// An entity's own JSON (no secrets in these types) as a map to merge into.
pub(super) fn to_map<T: serde::Serialize>(v: &T) -> Body {
    match serde_json::to_value(v) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

pub(super) fn int(flag: bool) -> i64 {
    i64::from(flag)
}

/// `field` as an object: an object, a JSON string holding one, or null/absent (empty).
pub(super) fn object_field(body: &Body, field: &str) -> Result<Body, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::bad_request(format!(
                "{field}: 必须是 JSON 对象或表示 JSON 对象的字符串"
            ))),
        },
        Some(_) => Err(ApiError::bad_request(format!(
            "{field}: 必须是 JSON 对象或表示 JSON 对象的字符串"
        ))),
    }
}

/// A numeric id from a body field (`namespace_id`, `upstream_server_id`).
pub(super) fn id_field(body: &Body, field: &str) -> Result<Option<u64>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .map(Some)
            .ok_or_else(|| ApiError::bad_request(format!("{field}: 必须是数字 ID"))),
    }
}

pub(super) fn ns_by_id(e: &Entities, id: u64) -> Option<&Namespace> {
    e.namespaces.iter().find(|n| n.id == id)
}

pub(super) fn ns_by_code<'a>(e: &'a Entities, code: &str) -> Option<&'a Namespace> {
    e.namespaces.iter().find(|n| n.namespace_code == code)
}

/// The namespace code of body field `namespace_id` (400 when unknown).
pub(super) fn ns_code_field(e: &Entities, body: &Body) -> Result<Option<String>, ApiError> {
    match id_field(body, "namespace_id")? {
        None => Ok(None),
        Some(id) => ns_by_id(e, id)
            .map(|n| Some(n.namespace_code.clone()))
            .ok_or_else(|| ApiError::bad_request(format!("namespace_id: 命名空间 {id} 不存在"))),
    }
}

pub(super) fn stamps(e: &Entities, kind: &str, id: u64, out: &mut Body) {
    let s = e.stamp(kind, id);
    out.insert(
        "created_at".into(),
        s.map_or(Value::Null, |s| s.created_at.clone().into()),
    );
    out.insert(
        "updated_at".into(),
        s.map_or(Value::Null, |s| s.updated_at.clone().into()),
    );
}

pub(super) fn with_stamps(e: &Entities, kind: &str, id: u64, v: Value) -> Value {
    match v {
        Value::Object(mut m) => {
            stamps(e, kind, id, &mut m);
            Value::Object(m)
        }
        other => other,
    }
}

pub(super) fn ns_ref_view(e: &Entities, code: Option<&str>) -> (Value, Value, Value) {
    match code.and_then(|c| ns_by_code(e, c)) {
        Some(n) => (
            n.id.into(),
            n.namespace_code.clone().into(),
            n.namespace_name.clone().into(),
        ),
        None => (
            Value::Null,
            code.map_or(Value::Null, Value::from),
            Value::Null,
        ),
    }
}

pub(super) fn list_of(items: impl Iterator<Item = Value>) -> Value {
    Value::Array(items.collect())
}

mod namespaces;
pub use namespaces::*;
mod servers;
pub use servers::*;
mod matchers;
pub use matchers::*;
mod proxy_rules;
pub use proxy_rules::*;
mod rules;
pub use rules::*;
mod validate;
pub use validate::*;
mod tokens;
pub use tokens::*;
mod nginx;
pub use nginx::*;
mod ns_route;
pub use ns_route::*;
mod system;
pub use system::*;
