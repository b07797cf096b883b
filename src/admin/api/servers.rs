//! Upstream servers (seed 000 §6): secrets read back as `***`; a server
//! alone in its pool carries its pool's references when it moves.

use super::*;

pub(super) const US: &str = "upstream_servers";
pub(super) const US_FIELDS: &[&str] = &[
    "server_name",
    "pool",
    "server_address",
    "server_port",
    "server_type",
    "sni",
    "weight",
    "max_connections",
    "health_check_url",
    "provider",
    "api_key",
    "inject_headers",
    "is_active",
];
pub(super) const US_NULLABLE: &[&str] = &["pool", "sni", "health_check_url", "api_key"];
/// What responses show instead of a secret.
pub(super) const REDACTED: &str = "***";

pub(super) fn server_view(e: &Entities, s: &UpstreamServer) -> Value {
    let headers: Map<String, Value> = s
        .inject_headers
        .keys()
        .map(|k| (k.clone(), REDACTED.into()))
        .collect();
    with_stamps(
        e,
        US,
        s.id,
        json!({
            "server_id": s.id,
            "server_name": s.server_name,
            "pool": s.pool_name(),
            "server_address": s.server_address,
            "server_port": s.server_port,
            "server_type": s.server_type,
            "sni": s.sni,
            "weight": s.weight,
            "max_connections": s.max_connections,
            "health_check_url": s.health_check_url,
            "provider": s.provider,
            "api_key": s.api_key.as_ref().map(|_| REDACTED),
            "inject_headers": headers,
            "is_active": int(s.is_active),
        }),
    )
}

pub fn list_servers(e: &Entities) -> Value {
    list_of(e.upstream_servers.iter().map(|s| server_view(e, s)))
}

pub fn get_server(e: &Entities, id: u64) -> Reply {
    e.upstream_servers
        .iter()
        .find(|s| s.id == id)
        .map(|s| server_view(e, s))
        .ok_or_else(ApiError::not_found)
}

pub(super) fn check_server_name_free(
    e: &Entities,
    name: &str,
    except: u64,
) -> Result<(), ApiError> {
    if e.upstream_servers
        .iter()
        .any(|s| s.server_name == name && s.id != except)
    {
        return Err(ApiError::conflict(format!("server_name 已存在: {name}")));
    }
    Ok(())
}

/// Creates an upstream server; returns its id.
pub(super) fn create_server_in(e: &mut Entities, body: &Body) -> Result<u64, ApiError> {
    require(body, &["server_name", "server_address", "server_port"])?;
    let mut m = Map::new();
    copy(&mut m, body, US_FIELDS, &[]);
    let mut s: UpstreamServer = decode(m)?;
    check_server_name_free(e, &s.server_name, 0)?;
    s.id = e.next_id(US);
    let id = s.id;
    e.touch(US, id, true);
    e.upstream_servers.push(s);
    Ok(id)
}

pub async fn create_server(c: &ConfigCenter, body: Body) -> Reply {
    require(&body, &["server_name", "server_address", "server_port"])?;
    let id = c.mutate(|e, _| create_server_in(e, &body)).await?;
    let e = c.snapshot();
    Ok(json!({"message": "上游服务器创建成功", "server_id": id, "server": get_server(&e, id)?}))
}

/// Servers other than `except` in pool `pool`.
pub(super) fn pool_has_others(e: &Entities, pool: &str, except: u64) -> bool {
    e.upstream_servers
        .iter()
        .any(|s| s.id != except && s.pool_name() == pool)
}

/// Updates upstream server `id` with the fields `body` sends.
pub(super) fn update_server_in(e: &mut Entities, id: u64, body: &Body) -> Result<(), ApiError> {
    let mut body = body.clone();
    {
        let i = e
            .upstream_servers
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(ApiError::not_found)?;
        let old = e.upstream_servers[i].clone();
        // A redacted secret sent back as read keeps the stored value.
        if body.get("api_key").and_then(Value::as_str) == Some(REDACTED) {
            body.remove("api_key");
        }
        if let Some(Value::Object(headers)) = body.get_mut("inject_headers") {
            for (name, value) in headers.iter_mut() {
                if value.as_str() == Some(REDACTED) {
                    if let Some(kept) = old.inject_headers.get(name) {
                        *value = Value::from(kept.expose().as_str());
                    }
                }
            }
        }
        let mut m = match server_json(&old) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        copy(&mut m, &body, US_FIELDS, US_NULLABLE);
        let mut s: UpstreamServer = decode(m)?;
        s.id = id;
        check_server_name_free(e, &s.server_name, id)?;
        let (old_pool, new_pool) = (old.pool_name().to_string(), s.pool_name().to_string());
        if old_pool != new_pool && !pool_has_others(e, &old_pool, id) {
            // The pool moved with its only server: references follow it.
            for r in &mut e.proxy_rules {
                if r.upstream == old_pool {
                    r.upstream = new_pool.clone();
                }
            }
            for r in &mut e.routes {
                if r.upstream == old_pool {
                    r.upstream = new_pool.clone();
                }
            }
        }
        e.upstream_servers[i] = s;
        e.touch(US, id, false);
        Ok(())
    }
}

pub async fn update_server(c: &ConfigCenter, id: u64, body: Body) -> Reply {
    c.mutate(|e, _| update_server_in(e, id, &body)).await?;
    let e = c.snapshot();
    Ok(json!({"message": "上游服务器更新成功", "server_id": id, "server": get_server(&e, id)?}))
}

/// Deletes upstream server `id` (409 while it is the last of a referenced pool).
pub(super) fn delete_server_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    {
        let i = e
            .upstream_servers
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(ApiError::not_found)?;
        let pool = e.upstream_servers[i].pool_name().to_string();
        if !pool_has_others(e, &pool, id) {
            let mut refs = Vec::new();
            let proxy: Vec<u64> = e
                .proxy_rules
                .iter()
                .filter(|r| r.upstream == pool)
                .map(|r| r.id)
                .collect();
            if !proxy.is_empty() {
                refs.push(format!("proxy_rules [{}]", ids(proxy)));
            }
            let routes: Vec<&str> = e
                .routes
                .iter()
                .filter(|r| r.upstream == pool)
                .map(|r| r.prefix.as_str())
                .collect();
            if !routes.is_empty() {
                refs.push(format!("routes [{}]", routes.join(", ")));
            }
            if !refs.is_empty() {
                return Err(ApiError::conflict(format!(
                    "上游服务器是 pool {pool} 的最后一台，仍被引用，无法删除: {}",
                    refs.join("; ")
                )));
            }
        }
        e.upstream_servers.remove(i);
        e.forget(US, id);
        Ok(())
    }
}

pub async fn delete_server(c: &ConfigCenter, id: u64) -> Reply {
    c.mutate(|e, _| delete_server_in(e, id)).await?;
    Ok(json!({"message": "上游服务器删除成功", "server_id": id}))
}
