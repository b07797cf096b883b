//! A namespace's route ("路由规则"): how requests reach the namespace and
//! where they go. `match_strategy` is one of
//!
//! - `header:<name>=<value>` / `query:<name>=<value>`: requests carrying
//!   that header (query parameter) belong to the namespace. Saved as an
//!   allow matcher of the namespace (operator `eq`, the route's
//!   `priority`, flagged `namespace_route`), so it decides exactly as any
//!   matcher does and shows in the matcher list too;
//! - `prefix:<path>`: the namespace's requests under `<path>` go to the
//!   upstream named by `upstream_server_id` (or `upstream`, a pool): a
//!   prefix route bound to the namespace (`routes[].namespace`).
//!
//! A `header:`/`query:` save may also name an upstream (and `prefix`,
//! default `/`): both are saved. GET answers the route, POST saves it
//! (creates it, or replaces the parts sent), DELETE removes both parts.

use super::*;
use crate::config::{Matcher, Route};
use sluice_filters::matcher::{MatchAction, MatchOperator, MatcherType};

const RT: &str = "routes";
const MT: &str = "matchers";

/// A namespace's route as shown.
#[derive(Serialize, ToSchema)]
pub struct NsRouteView {
    /// The selection matcher's id when the strategy is `header:`/`query:`,
    /// else the prefix route's.
    pub route_id: u64,
    pub namespace_id: u64,
    /// `header:<name>=<value>`, `query:<name>=<value>` or `prefix:<path>`.
    pub match_strategy: String,
    /// Order among matchers (lower first); `header:`/`query:` only.
    pub priority: Option<i64>,
    /// The prefix route's path prefix, when there is one.
    pub prefix: Option<String>,
    /// The pool it sends to.
    pub upstream: Option<String>,
    /// The first server of that pool.
    pub upstream_server_id: Option<u64>,
    pub strip_prefix: Option<bool>,
    /// The selection matcher, when there is one.
    pub matcher_id: Option<u64>,
    /// The prefix route, when there is one.
    pub prefix_route_id: Option<u64>,
    pub status: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/namespaces/{id}/route`: saves the strategy and the
/// upstream sent (see the module docs); fields not sent keep their value.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"match_strategy": "header:x-tenant=enterprise", "priority": 10,
    "upstream_server_id": 1}))]
pub struct NsRouteSave {
    /// Path prefix of the prefix route (`/v1`).
    #[serde(default, deserialize_with = "de::text")]
    pub prefix: Option<String>,
    /// `header:<name>=<value>`, `query:<name>=<value>` or `prefix:<path>`.
    #[serde(default, deserialize_with = "de::text")]
    pub match_strategy: Option<String>,
    /// The server whose pool the route sends to.
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub upstream_server_id: Option<u64>,
    /// A pool name, when `upstream_server_id` is not given.
    #[serde(default, deserialize_with = "de::text")]
    pub upstream: Option<String>,
    /// Remove the prefix before forwarding.
    pub strip_prefix: Option<bool>,
    /// Order of a `header:`/`query:` strategy among matchers (lower first).
    pub priority: Option<i64>,
    /// `1`/`0`: whether the `header:`/`query:` strategy is active.
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<i64>)]
    pub status: Option<bool>,
}

impl Body for NsRouteSave {}

/// A saved namespace route.
#[derive(Serialize, ToSchema)]
pub struct NsRouteSaved {
    pub message: &'static str,
    pub route_id: u64,
    pub route: NsRouteView,
}

/// Deleted namespace routes.
#[derive(Serialize, ToSchema)]
pub struct NsRouteDeleted {
    pub message: &'static str,
    pub namespace_id: u64,
}

/// How requests reach the namespace.
#[derive(Debug, PartialEq)]
enum Strategy {
    /// A header or query parameter equal to a value.
    Select(MatcherType, String, String),
    Prefix(String),
}

fn parse_strategy(s: &str) -> Result<Strategy, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "match_strategy: {s:?} 不受支持: 可用 header:<名称>=<值>、query:<名称>=<值> 或 prefix:<路径>"
        ))
    };
    let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
    let select = |t: MatcherType| -> Result<Strategy, ApiError> {
        let (name, value) = rest.split_once('=').ok_or_else(bad)?;
        let name = name.trim();
        if name.is_empty() || value.is_empty() {
            return Err(bad());
        }
        let name = match t {
            MatcherType::Header => name.to_ascii_lowercase(),
            _ => name.to_string(),
        };
        Ok(Strategy::Select(t, name, value.to_string()))
    };
    match kind.trim().to_ascii_lowercase().as_str() {
        "header" => select(MatcherType::Header),
        "query" => select(MatcherType::Query),
        "prefix" if rest.starts_with('/') => Ok(Strategy::Prefix(rest.to_string())),
        _ => Err(bad()),
    }
}

fn strategy_text(m: &Matcher) -> String {
    let kind = match m.matcher_type {
        MatcherType::Query => "query",
        _ => "header",
    };
    format!("{kind}:{}={}", m.match_field, m.match_value)
}

fn route_matcher<'a>(e: &'a Entities, code: &str) -> Option<&'a Matcher> {
    e.matchers
        .iter()
        .find(|m| m.namespace_route && m.namespace == code)
}

fn prefix_route<'a>(e: &'a Entities, code: &str) -> Option<&'a Route> {
    e.routes
        .iter()
        .find(|r| r.namespace.as_deref() == Some(code))
}

fn view(e: &Entities, ns_id: u64, code: &str) -> Option<NsRouteView> {
    let m = route_matcher(e, code);
    let r = prefix_route(e, code);
    let (kind, id) = match (m, r) {
        (Some(m), _) => (MT, m.id),
        (None, Some(r)) => (RT, r.id),
        (None, None) => return None,
    };
    let server = r.and_then(|r| {
        e.upstream_servers
            .iter()
            .find(|s| s.pool_name() == r.upstream)
            .map(|s| s.id)
    });
    let (created_at, updated_at) = stamps(e, kind, id);
    Some(NsRouteView {
        route_id: id,
        namespace_id: ns_id,
        match_strategy: match (m, r) {
            (Some(m), _) => strategy_text(m),
            (None, Some(r)) => format!("prefix:{}", r.prefix),
            (None, None) => String::new(),
        },
        priority: m.map(|m| m.priority),
        prefix: r.map(|r| r.prefix.clone()),
        upstream: r.map(|r| r.upstream.clone()),
        upstream_server_id: server,
        strip_prefix: r.map(|r| r.strip_prefix),
        matcher_id: m.map(|m| m.id),
        prefix_route_id: r.map(|r| r.id),
        status: int(m.is_none_or(|m| m.is_active)),
        created_at,
        updated_at,
    })
}

fn find(e: &Entities, ns_id: u64) -> Reply<NsRouteView> {
    let code = ns_code_of(e, ns_id)?;
    view(e, ns_id, &code).ok_or_else(ApiError::not_found)
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<NsRouteView> {
    find(&c.center.snapshot(), c.id()?)
}

/// Saves the selection matcher of namespace `code`.
fn save_matcher(
    e: &mut Entities,
    code: &str,
    (t, name, value): (MatcherType, String, String),
    b: &NsRouteSave,
) -> u64 {
    let existing = e
        .matchers
        .iter()
        .position(|m| m.namespace_route && m.namespace == code);
    let id = match existing {
        Some(i) => e.matchers[i].id,
        None => e.next_id(MT),
    };
    let prev = existing.map(|i| e.matchers[i].clone());
    let m = Matcher {
        id,
        matcher_name: format!("route:{}", code),
        namespace: code.to_string(),
        matcher_type: t,
        match_field: name,
        match_operator: MatchOperator::Eq,
        match_value: value,
        action: MatchAction::Allow,
        priority: b
            .priority
            .or(prev.as_ref().map(|m| m.priority))
            .unwrap_or(0),
        is_active: b
            .status
            .or(prev.as_ref().map(|m| m.is_active))
            .unwrap_or(true),
        namespace_route: true,
    };
    e.touch(MT, id, existing.is_none());
    match existing {
        Some(i) => e.matchers[i] = m,
        None => e.matchers.push(m),
    }
    id
}

/// Saves the prefix route of namespace `code` (a new one needs a pool).
fn save_prefix(
    e: &mut Entities,
    code: &str,
    prefix: Option<String>,
    pool: Option<String>,
    b: &NsRouteSave,
) -> Result<u64, ApiError> {
    let existing = e
        .routes
        .iter()
        .position(|r| r.namespace.as_deref() == Some(code));
    let mut route = match (existing, pool.clone()) {
        (Some(i), _) => e.routes[i].clone(),
        (None, Some(upstream)) => Route {
            id: e.next_id(RT),
            prefix: "/".into(),
            upstream,
            strip_prefix: false,
            namespace: None,
            max_concurrency: None,
        },
        (None, None) => return Err(ApiError::bad_request("缺少必要字段: upstream_server_id")),
    };
    if let Some(p) = prefix {
        route.prefix = p;
    }
    if let Some(pool) = pool {
        route.upstream = pool;
    }
    if let Some(v) = b.strip_prefix {
        route.strip_prefix = v;
    }
    route.namespace = Some(code.to_string());
    let id = route.id;
    e.touch(RT, id, existing.is_none());
    match existing {
        Some(i) => e.routes[i] = route,
        None => e.routes.push(route),
    }
    Ok(id)
}

pub(super) fn save_in(e: &mut Entities, ns_id: u64, b: &NsRouteSave) -> Result<u64, ApiError> {
    let code = ns_code_of(e, ns_id)?;
    let strategy = b
        .match_strategy
        .as_deref()
        .map(parse_strategy)
        .transpose()?;
    let prefix = match (&strategy, &b.prefix) {
        (Some(Strategy::Prefix(s)), Some(p)) if s != p => {
            return Err(ApiError::bad_request("prefix 与 match_strategy 不一致"))
        }
        (Some(Strategy::Prefix(s)), _) => Some(s.clone()),
        (_, p) => p.clone(),
    };
    let pool = pool_field(e, b.upstream_server_id, b.upstream.as_ref())?;
    let has_matcher = route_matcher(e, &code).is_some();
    match strategy {
        Some(Strategy::Select(t, name, value)) => {
            let id = save_matcher(e, &code, (t, name, value), b);
            if prefix.is_some() || pool.is_some() || b.strip_prefix.is_some() {
                save_prefix(e, &code, prefix, pool, b)?;
            }
            Ok(id)
        }
        _ if (b.priority.is_some() || b.status.is_some()) && !has_matcher => {
            Err(ApiError::bad_request(
                "priority/status: 只适用于 header:/query: 匹配策略；前缀路由按最长前缀匹配",
            ))
        }
        _ => {
            if let Some(m) = e
                .matchers
                .iter_mut()
                .find(|m| m.namespace_route && m.namespace == code)
            {
                if let Some(p) = b.priority {
                    m.priority = p;
                }
                if let Some(s) = b.status {
                    m.is_active = s;
                }
            }
            let id = save_prefix(e, &code, prefix, pool, b)?;
            Ok(route_matcher(e, &code).map_or(id, |m| m.id))
        }
    }
}

pub fn save(c: Call<'_>, b: NsRouteSave) -> Pending<'_, NsRouteSaved> {
    Box::pin(async move {
        let ns = c.id()?;
        let id = c.mutate(|e, _| save_in(e, ns, &b)).await?;
        Ok(NsRouteSaved {
            message: "命名空间路由规则保存成功",
            route_id: id,
            route: find(&c.center.snapshot(), ns)?,
        })
    })
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, NsRouteDeleted> {
    Box::pin(async move {
        let ns = c.id()?;
        c.mutate(|e, _| {
            let code = ns_code_of(e, ns)?;
            let routes: Vec<u64> = e
                .routes
                .iter()
                .filter(|r| r.namespace.as_deref() == Some(code.as_str()))
                .map(|r| r.id)
                .collect();
            let matchers: Vec<u64> = e
                .matchers
                .iter()
                .filter(|m| m.namespace_route && m.namespace == code)
                .map(|m| m.id)
                .collect();
            if routes.is_empty() && matchers.is_empty() {
                return Err(ApiError::not_found());
            }
            e.routes
                .retain(|r| r.namespace.as_deref() != Some(code.as_str()));
            e.matchers
                .retain(|m| !(m.namespace_route && m.namespace == code));
            routes.iter().for_each(|id| e.forget(RT, *id));
            matchers.iter().for_each(|id| e.forget(MT, *id));
            Ok(())
        })
        .await?;
        Ok(NsRouteDeleted {
            message: "命名空间路由规则删除成功",
            namespace_id: ns,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse() {
        assert_eq!(
            parse_strategy("header:X-Tenant=enterprise").ok(),
            Some(Strategy::Select(
                MatcherType::Header,
                "x-tenant".into(),
                "enterprise".into()
            ))
        );
        assert_eq!(
            parse_strategy("query:tenant=a=b").ok(),
            Some(Strategy::Select(
                MatcherType::Query,
                "tenant".into(),
                "a=b".into()
            ))
        );
        assert_eq!(
            parse_strategy("prefix:/v1").ok(),
            Some(Strategy::Prefix("/v1".into()))
        );
        for bad in [
            "header:x-tenant",
            "header:=x",
            "prefix:v1",
            "cookie:a=b",
            "x",
        ] {
            assert!(parse_strategy(bad).is_err(), "{bad}");
        }
    }
}
