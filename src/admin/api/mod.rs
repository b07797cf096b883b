//! The admin resources and their handlers, one file per group: each file
//! owns its request types (decoded from the body, `ToSchema` for the
//! document), its response types and the handlers the route table
//! ([`super::routes`]) points at. Reads answer from the applied snapshot;
//! every change goes through [`ConfigCenter::mutate`]. Request fields use
//! the API's names (`namespace_id`, `upstream_server_id`,
//! `matcher_config`…), mapped here onto the config entities (which
//! reference namespaces by code and pools by name).

use super::center::ConfigCenter;
use super::route::{Body, Call, List, NoBody, Pending, Reply};
use super::ApiError;
use crate::config::{Matcher, Namespace, ProxyRule, Rule, UpstreamServer};
use crate::state::Snapshot;
use crate::store::config_file::Entities;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

pub mod api_keys;
pub mod de;

/// `1`/`0` as the API shows flags.
pub(super) fn int(flag: bool) -> i64 {
    i64::from(flag)
}

pub(super) fn ns_by_id(e: &Entities, id: u64) -> Option<&Namespace> {
    e.namespaces.iter().find(|n| n.id == id)
}

pub(super) fn ns_by_code<'a>(e: &'a Entities, code: &str) -> Option<&'a Namespace> {
    e.namespaces.iter().find(|n| n.namespace_code == code)
}

/// The code of namespace `id` (404 when unknown).
pub(super) fn ns_code_of(e: &Entities, id: u64) -> Result<String, ApiError> {
    Ok(ns_by_id(e, id)
        .ok_or_else(ApiError::not_found)?
        .namespace_code
        .clone())
}

/// The code of the namespace a body field `namespace_id` names (400 when unknown).
pub(super) fn ns_code_field(e: &Entities, id: u64) -> Result<String, ApiError> {
    ns_by_id(e, id)
        .map(|n| n.namespace_code.clone())
        .ok_or_else(|| ApiError::bad_request(format!("namespace_id: 命名空间 {id} 不存在")))
}

/// The pool of the server a body field `upstream_server_id` names (400 when unknown).
pub(super) fn pool_of_server(e: &Entities, id: u64) -> Result<String, ApiError> {
    e.upstream_servers
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.pool_name().to_string())
        .ok_or_else(|| ApiError::bad_request(format!("upstream_server_id: 上游服务器 {id} 不存在")))
}

/// The pool a body names: `upstream_server_id` (the server's pool) first,
/// else `upstream` (a pool name).
pub(super) fn pool_field(
    e: &Entities,
    server: Option<u64>,
    upstream: Option<&String>,
) -> Result<Option<String>, ApiError> {
    match server {
        Some(id) => pool_of_server(e, id).map(Some),
        None => Ok(upstream.cloned()),
    }
}

/// `created_at` and `updated_at` of `kind/id`.
pub(super) fn stamps(e: &Entities, kind: &str, id: u64) -> (Option<String>, Option<String>) {
    match e.stamp(kind, id) {
        Some(s) => (Some(s.created_at.clone()), Some(s.updated_at.clone())),
        None => (None, None),
    }
}

/// A namespace reference as shown: id, code and name (the code alone when
/// it names no namespace).
pub(super) struct NsRef {
    pub id: Option<u64>,
    pub code: Option<String>,
    pub name: Option<String>,
}

pub(super) fn ns_ref(e: &Entities, code: Option<&str>) -> NsRef {
    match code.and_then(|c| ns_by_code(e, c)) {
        Some(n) => NsRef {
            id: Some(n.id),
            code: Some(n.namespace_code.clone()),
            name: Some(n.namespace_name.clone()),
        },
        None => NsRef {
            id: None,
            code: code.map(str::to_string),
            name: None,
        },
    }
}

/// Index of entity `id` in `items` (404 when absent).
pub(super) fn position<T>(items: &[T], id: u64, of: impl Fn(&T) -> u64) -> Result<usize, ApiError> {
    items
        .iter()
        .position(|x| of(x) == id)
        .ok_or_else(ApiError::not_found)
}

pub(super) fn ids(list: Vec<u64>) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub mod dry_run;
pub mod history;
pub mod matchers;
pub mod namespaces;
pub mod nginx;
pub mod ns_route;
pub mod observe;
pub mod proxy_rules;
pub mod rules;
pub mod sample;
pub mod servers;
pub mod system;
pub mod tokens;
pub mod usage;
pub mod users;
mod validate;
