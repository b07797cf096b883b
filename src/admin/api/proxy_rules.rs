//! Proxy rules (seed 000 §3): `upstream_server_id` names the server
//! whose pool the rule routes to.

use super::*;

pub(super) const PR: &str = "proxy_rules";
pub(super) const PR_FIELDS: &[&str] = &[
    "rule_name",
    "path_pattern",
    "method_pattern",
    "header_pattern",
    "body_pattern",
    "priority",
    "is_active",
];
pub(super) const PR_NULLABLE: &[&str] = &[
    "path_pattern",
    "method_pattern",
    "header_pattern",
    "body_pattern",
];

pub(super) fn proxy_rule_view(e: &Entities, r: &ProxyRule) -> Value {
    let (ns_id, ns_code, ns_name) = ns_ref_view(e, r.namespace.as_deref());
    let server = e
        .upstream_servers
        .iter()
        .find(|s| s.pool_name() == r.upstream);
    with_stamps(
        e,
        PR,
        r.id,
        json!({
            "rule_id": r.id,
            "rule_name": r.rule_name,
            "namespace_id": ns_id,
            "namespace_code": ns_code,
            "namespace_name": ns_name,
            "upstream": r.upstream,
            "upstream_server_id": server.map(|s| s.id),
            "upstream_server_address": server.map(|s| s.server_address.clone()),
            "upstream_server_port": server.map(|s| s.server_port),
            "path_pattern": r.path_pattern,
            "method_pattern": r.method_pattern,
            "header_pattern": r.header_pattern,
            "body_pattern": r.body_pattern,
            "priority": r.priority,
            "is_active": int(r.is_active),
        }),
    )
}

pub fn list_proxy_rules(e: &Entities) -> Value {
    list_of(e.proxy_rules.iter().map(|r| proxy_rule_view(e, r)))
}

pub fn get_proxy_rule(e: &Entities, id: u64) -> Reply {
    e.proxy_rules
        .iter()
        .find(|r| r.id == id)
        .map(|r| proxy_rule_view(e, r))
        .ok_or_else(ApiError::not_found)
}

/// The pool of body field `upstream_server_id` (or a pool named by `upstream`).
pub(super) fn pool_field(e: &Entities, body: &Body) -> Result<Option<String>, ApiError> {
    if let Some(id) = id_field(body, "upstream_server_id")? {
        return e
            .upstream_servers
            .iter()
            .find(|s| s.id == id)
            .map(|s| Some(s.pool_name().to_string()))
            .ok_or_else(|| {
                ApiError::bad_request(format!("upstream_server_id: 上游服务器 {id} 不存在"))
            });
    }
    match body.get("upstream") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request("upstream: 必须是字符串")),
    }
}

/// Creates a proxy rule; returns its id.
pub(super) fn create_proxy_rule_in(e: &mut Entities, body: &Body) -> Result<u64, ApiError> {
    let pool = pool_field(e, body)?
        .ok_or_else(|| ApiError::bad_request("缺少必要字段: upstream_server_id"))?;
    let mut m = Map::new();
    copy(&mut m, body, PR_FIELDS, &[]);
    m.insert("upstream".into(), pool.into());
    if let Some(code) = ns_code_field(e, body)? {
        m.insert("namespace".into(), code.into());
    }
    let mut r: ProxyRule = decode(m)?;
    r.id = e.next_id(PR);
    let id = r.id;
    e.touch(PR, id, true);
    e.proxy_rules.push(r);
    Ok(id)
}

pub async fn create_proxy_rule(c: &ConfigCenter, body: Body) -> Reply {
    let id = c.mutate(|e, _| create_proxy_rule_in(e, &body)).await?;
    let e = c.snapshot();
    Ok(json!({"message": "代理规则创建成功", "rule_id": id, "rule": get_proxy_rule(&e, id)?}))
}

/// Updates proxy rule `id` with the fields `body` sends.
pub(super) fn update_proxy_rule_in(e: &mut Entities, id: u64, body: &Body) -> Result<(), ApiError> {
    {
        let i = e
            .proxy_rules
            .iter()
            .position(|r| r.id == id)
            .ok_or_else(ApiError::not_found)?;
        let mut m = to_map(&e.proxy_rules[i]);
        copy(&mut m, body, PR_FIELDS, PR_NULLABLE);
        if let Some(pool) = pool_field(e, body)? {
            m.insert("upstream".into(), pool.into());
        }
        if body.contains_key("namespace_id") {
            let code = ns_code_field(e, body)?;
            m.insert("namespace".into(), code.map_or(Value::Null, Value::from));
        }
        let mut r: ProxyRule = decode(m)?;
        r.id = id;
        e.proxy_rules[i] = r;
        e.touch(PR, id, false);
        Ok(())
    }
}

pub async fn update_proxy_rule(c: &ConfigCenter, id: u64, body: Body) -> Reply {
    c.mutate(|e, _| update_proxy_rule_in(e, id, &body)).await?;
    let e = c.snapshot();
    Ok(json!({"message": "代理规则更新成功", "rule_id": id, "rule": get_proxy_rule(&e, id)?}))
}

/// Deletes proxy rule `id`.
pub(super) fn delete_proxy_rule_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = e
        .proxy_rules
        .iter()
        .position(|r| r.id == id)
        .ok_or_else(ApiError::not_found)?;
    e.proxy_rules.remove(i);
    e.forget(PR, id);
    Ok(())
}

pub async fn delete_proxy_rule(c: &ConfigCenter, id: u64) -> Reply {
    c.mutate(|e, _| delete_proxy_rule_in(e, id)).await?;
    Ok(json!({"message": "代理规则删除成功", "rule_id": id}))
}
