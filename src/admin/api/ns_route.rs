//! A namespace's route ("路由规则"): the prefix route bound to the
//! namespace (`routes[].namespace`), which sends its requests under
//! `prefix` to an upstream pool. `match_strategy` is `prefix:<path>`
//! (Sluice routes by path prefix; namespaces themselves are chosen by
//! matchers). GET answers it, POST saves it (creates it, or replaces the
//! namespace's route), DELETE removes the namespace's routes.

use super::*;
use crate::config::Route;

const RT: &str = "routes";

/// A namespace's route as shown.
#[derive(Serialize, ToSchema)]
pub struct NsRouteView {
    pub route_id: u64,
    pub namespace_id: u64,
    /// `prefix:<prefix>`.
    pub match_strategy: String,
    pub prefix: String,
    /// The pool it sends to.
    pub upstream: String,
    /// The first server of that pool.
    pub upstream_server_id: Option<u64>,
    pub strip_prefix: bool,
    pub status: i64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/namespaces/{id}/route`: creates the route
/// (`upstream_server_id` or `upstream` needed, prefix `/` unless given)
/// or changes the fields sent.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"match_strategy": "prefix:/v1", "upstream_server_id": 1,
    "strip_prefix": false}))]
pub struct NsRouteSave {
    /// Path prefix (`/v1`).
    #[serde(default, deserialize_with = "de::text")]
    pub prefix: Option<String>,
    /// `prefix:<path>`, the same as `prefix`.
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
    /// Refused: prefix routes go by the longest prefix, not by priority.
    #[serde(default, deserialize_with = "de::present")]
    #[schema(value_type = Option<i64>)]
    pub priority: Option<Value>,
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

fn view(e: &Entities, ns_id: u64, r: &Route) -> NsRouteView {
    let server = e
        .upstream_servers
        .iter()
        .find(|s| s.pool_name() == r.upstream)
        .map(|s| s.id);
    let (created_at, updated_at) = stamps(e, RT, r.id);
    NsRouteView {
        route_id: r.id,
        namespace_id: ns_id,
        match_strategy: format!("prefix:{}", r.prefix),
        prefix: r.prefix.clone(),
        upstream: r.upstream.clone(),
        upstream_server_id: server,
        strip_prefix: r.strip_prefix,
        status: 1,
        created_at,
        updated_at,
    }
}

fn find(e: &Entities, ns_id: u64) -> Reply<NsRouteView> {
    let code = ns_code_of(e, ns_id)?;
    e.routes
        .iter()
        .find(|r| r.namespace.as_deref() == Some(code.as_str()))
        .map(|r| view(e, ns_id, r))
        .ok_or_else(ApiError::not_found)
}

pub fn get(c: &Call<'_>, _: NoBody) -> Reply<NsRouteView> {
    find(&c.center.snapshot(), c.id()?)
}

/// The prefix of a save: `prefix`, or `match_strategy: "prefix:/x"`.
fn prefix_field(b: &NsRouteSave) -> Result<Option<String>, ApiError> {
    let strategy = match &b.match_strategy {
        None => None,
        Some(s) => Some(s.strip_prefix("prefix:").map(str::to_string).ok_or_else(|| {
            ApiError::bad_request(format!(
                "match_strategy: {s:?} 不受支持: Sluice 的命名空间路由按路径前缀 (prefix:/v1)；按请求头等选择命名空间请用报文匹配器 (matchers)"
            ))
        })?),
    };
    match (&b.prefix, strategy) {
        (Some(p), Some(s)) if *p != s => {
            Err(ApiError::bad_request("prefix 与 match_strategy 不一致"))
        }
        (p, s) => Ok(p.clone().or(s)),
    }
}

pub(super) fn save_in(e: &mut Entities, ns_id: u64, b: &NsRouteSave) -> Result<u64, ApiError> {
    let code = ns_code_of(e, ns_id)?;
    if b.priority.is_some() {
        return Err(ApiError::bad_request(
            "priority: 前缀路由按最长前缀匹配，不使用 priority",
        ));
    }
    let existing = e
        .routes
        .iter()
        .position(|r| r.namespace.as_deref() == Some(code.as_str()));
    let prefix = prefix_field(b)?;
    let pool = pool_field(e, b.upstream_server_id, b.upstream.as_ref())?;
    let mut route = match (existing, pool.clone()) {
        (Some(i), _) => e.routes[i].clone(),
        (None, Some(upstream)) => Route {
            id: e.next_id(RT),
            prefix: "/".into(),
            upstream,
            strip_prefix: false,
            namespace: None,
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
    route.namespace = Some(code);
    let id = route.id;
    e.touch(RT, id, existing.is_none());
    match existing {
        Some(i) => e.routes[i] = route,
        None => e.routes.push(route),
    }
    Ok(id)
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
            let gone: Vec<u64> = e
                .routes
                .iter()
                .filter(|r| r.namespace.as_deref() == Some(code.as_str()))
                .map(|r| r.id)
                .collect();
            if gone.is_empty() {
                return Err(ApiError::not_found());
            }
            e.routes
                .retain(|r| r.namespace.as_deref() != Some(code.as_str()));
            gone.iter().for_each(|id| e.forget(RT, *id));
            Ok(())
        })
        .await?;
        Ok(NsRouteDeleted {
            message: "命名空间路由规则删除成功",
            namespace_id: ns,
        })
    })
}
