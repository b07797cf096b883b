//! A namespace's route (seed 000 §2 "路由规则"): the prefix route bound to
//! the namespace (`routes[].namespace`), which sends its requests under
//! `prefix` to an upstream pool. `match_strategy` is `prefix:<path>`
//! (Sluice routes by path prefix; namespaces themselves are chosen by
//! matchers). GET answers it, POST saves it (creates it, or replaces the
//! namespace's route), DELETE removes the namespace's routes.

use super::*;
use crate::config::Route;

const RT: &str = "routes";

fn route_view(e: &Entities, ns_id: u64, r: &Route) -> Value {
    let server = e
        .upstream_servers
        .iter()
        .find(|s| s.pool_name() == r.upstream)
        .map(|s| s.id);
    with_stamps(
        e,
        RT,
        r.id,
        json!({
            "route_id": r.id,
            "namespace_id": ns_id,
            "match_strategy": format!("prefix:{}", r.prefix),
            "prefix": r.prefix,
            "upstream": r.upstream,
            "upstream_server_id": server,
            "strip_prefix": r.strip_prefix,
            "status": 1,
        }),
    )
}

fn ns_code(e: &Entities, ns_id: u64) -> Result<String, ApiError> {
    Ok(ns_by_id(e, ns_id)
        .ok_or_else(ApiError::not_found)?
        .namespace_code
        .clone())
}

pub fn get_namespace_route(e: &Entities, ns_id: u64) -> Reply {
    let code = ns_code(e, ns_id)?;
    e.routes
        .iter()
        .find(|r| r.namespace.as_deref() == Some(code.as_str()))
        .map(|r| route_view(e, ns_id, r))
        .ok_or_else(ApiError::not_found)
}

/// The prefix of a save: `prefix`, or `match_strategy: "prefix:/x"`.
fn prefix_field(body: &Body) -> Result<Option<String>, ApiError> {
    let text = |f: &str| -> Result<Option<String>, ApiError> {
        match body.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::bad_request(format!("{f}: 必须是字符串"))),
        }
    };
    let prefix = text("prefix")?;
    let strategy = match text("match_strategy")? {
        None => None,
        Some(s) => Some(s.strip_prefix("prefix:").map(str::to_string).ok_or_else(|| {
            ApiError::bad_request(format!(
                "match_strategy: {s:?} 不受支持: Sluice 的命名空间路由按路径前缀 (prefix:/v1)；按请求头等选择命名空间请用报文匹配器 (matchers)"
            ))
        })?),
    };
    match (prefix, strategy) {
        (Some(p), Some(s)) if p != s => {
            Err(ApiError::bad_request("prefix 与 match_strategy 不一致"))
        }
        (p, s) => Ok(p.or(s)),
    }
}

pub(super) fn save_namespace_route_in(
    e: &mut Entities,
    ns_id: u64,
    body: &Body,
) -> Result<u64, ApiError> {
    let code = ns_code(e, ns_id)?;
    if body.contains_key("priority") {
        return Err(ApiError::bad_request(
            "priority: 前缀路由按最长前缀匹配，不使用 priority",
        ));
    }
    let existing = e
        .routes
        .iter()
        .position(|r| r.namespace.as_deref() == Some(code.as_str()));
    let mut m = match existing {
        Some(i) => to_map(&e.routes[i]),
        None => {
            let mut m = Map::new();
            m.insert("prefix".into(), "/".into());
            m
        }
    };
    if let Some(p) = prefix_field(body)? {
        m.insert("prefix".into(), p.into());
    }
    if let Some(pool) = pool_field(e, body)? {
        m.insert("upstream".into(), pool.into());
    } else if existing.is_none() {
        return Err(ApiError::bad_request("缺少必要字段: upstream_server_id"));
    }
    copy(&mut m, body, &["strip_prefix"], &[]);
    m.insert("namespace".into(), code.into());
    let mut route: Route = decode(m)?;
    let id = match existing {
        Some(i) => e.routes[i].id,
        None => e.next_id(RT),
    };
    route.id = id;
    e.touch(RT, id, existing.is_none());
    match existing {
        Some(i) => e.routes[i] = route,
        None => e.routes.push(route),
    }
    Ok(id)
}

pub async fn save_namespace_route(c: &ConfigCenter, ns_id: u64, body: Body) -> Reply {
    let id = c
        .mutate(|e, _| save_namespace_route_in(e, ns_id, &body))
        .await?;
    let e = c.snapshot();
    Ok(
        json!({"message": "命名空间路由规则保存成功", "route_id": id,
        "route": get_namespace_route(&e, ns_id)?}),
    )
}

pub async fn delete_namespace_route(c: &ConfigCenter, ns_id: u64) -> Reply {
    c.mutate(|e, _| {
        let code = ns_code(e, ns_id)?;
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
    Ok(json!({"message": "命名空间路由规则删除成功", "namespace_id": ns_id}))
}
