//! Seed 000 §1 config-center system endpoints: `POST /sync` (the store's
//! snapshot to the Redis cache), `POST /preload/{namespace_id}` (one
//! namespace's view to the cache), `GET /cache/stats`, `POST
//! /namespaces/batch` (several namespaces at once) and `POST
//! /batch-dual-write` (several changes as one: all applied and committed
//! in one transaction, or none).

use super::*;

fn no_cache() -> ApiError {
    ApiError::bad_request("未配置 Redis 缓存 (config_store.redis_url，需 config_store.kind: mysql)")
}

fn cache_down(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(503, format!("Redis 缓存不可用: {e}"))
}

/// `POST /sync`: writes the stored snapshot (read from the store now, not
/// this instance's copy) to Redis.
pub async fn sync(c: &ConfigCenter) -> Reply {
    let bus = c.bus().ok_or_else(no_cache)?;
    let stored = match c.store() {
        Some(store) => store
            .load()
            .await
            .map_err(|e| ApiError::new(503, format!("配置存储不可用: {e}")))?,
        None => None,
    };
    let snapshot = stored.unwrap_or_else(|| (*c.snapshot()).clone());
    bus.sync(&snapshot).await.map_err(cache_down)?;
    Ok(json!({"message": "数据同步成功", "revision": snapshot.revision}))
}

/// One namespace with everything that references it, as cached by preload.
fn namespace_bundle(e: &Entities, id: u64) -> Result<Value, ApiError> {
    let ns = ns_by_id(e, id).ok_or_else(ApiError::not_found)?;
    let code = ns.namespace_code.as_str();
    let of = |n: &Option<String>| n.as_deref() == Some(code);
    Ok(json!({
        "namespace": namespaces::namespace_view(e, ns),
        "matchers": list_matchers(e, Some(id))?,
        "rules": list_rules(e, Some(id), None)?,
        "proxy_rules": e.proxy_rules.iter().filter(|r| of(&r.namespace)).map(|r| r.id).collect::<Vec<_>>(),
        "routes": e.routes.iter().filter(|r| of(&r.namespace)).map(|r| json!({"route_id": r.id, "prefix": r.prefix, "upstream": r.upstream})).collect::<Vec<_>>(),
        "revision": e.revision,
    }))
}

/// `POST /preload/{namespace_id}`.
pub async fn preload(c: &ConfigCenter, id: u64) -> Reply {
    let bundle = namespace_bundle(&c.snapshot(), id)?;
    let bus = c.bus().ok_or_else(no_cache)?;
    bus.preload(id, &bundle).await.map_err(cache_down)?;
    Ok(json!({"message": format!("命名空间 {id} 数据预加载完成")}))
}

/// `GET /cache/stats` (without Redis: no cache, all zero, `enabled: false`).
pub async fn cache_stats(c: &ConfigCenter) -> Reply {
    let Some(bus) = c.bus() else {
        return Ok(json!({"cache_hits": 0, "cache_misses": 0, "cache_size": 0,
            "cache_free": 0, "enabled": false}));
    };
    let ids: Vec<u64> = c.snapshot().namespaces.iter().map(|n| n.id).collect();
    let mut stats = bus.stats(&ids).await.map_err(cache_down)?;
    stats["enabled"] = true.into();
    Ok(stats)
}

/// `POST /namespaces/batch` with `[1, 2, 3]`: the namespaces that exist.
pub fn namespaces_batch(e: &Entities, body: &Value) -> Reply {
    let Value::Array(items) = body else {
        return Err(ApiError::bad_request(
            "请求体必须是命名空间 ID 的数组，如 [1, 2, 3]",
        ));
    };
    let mut out = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let id = v
            .as_u64()
            .ok_or_else(|| ApiError::bad_request(format!("[{i}]: 必须是数字 ID")))?;
        if let Some(n) = ns_by_id(e, id) {
            out.push(namespaces::namespace_view(e, n));
        }
    }
    Ok(Value::Array(out))
}

/// The most operations one batch may hold.
const MAX_OPS: usize = 500;

/// One batch operation, applied to the batch's working snapshot.
fn apply_op(e: &mut Entities, rt: &Runtime, item: &Body) -> Result<Value, ApiError> {
    let op = item
        .get("op")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("缺少必要字段: op"))?;
    let data = match item.get("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::bad_request("data: 必须是 JSON 对象")),
    };
    let id = || -> Result<u64, ApiError> {
        id_field(item, "id")?
            .or(id_field(&data, "id")?)
            .ok_or_else(|| ApiError::bad_request("缺少必要字段: id"))
    };
    let ns = || -> Result<u64, ApiError> {
        id_field(item, "namespace_id")?
            .or(id_field(&data, "namespace_id")?)
            .ok_or_else(|| ApiError::bad_request("缺少必要字段: namespace_id"))
    };
    let done = match op {
        "create_namespace" => create_namespace_in(e, &data)?,
        "update_namespace" => with(id()?, update_namespace_in(e, id()?, &data))?,
        "delete_namespace" => with(id()?, delete_namespace_in(e, rt, id()?))?,
        "create_upstream_server" => create_server_in(e, &data)?,
        "update_upstream_server" => with(id()?, update_server_in(e, id()?, &data))?,
        "delete_upstream_server" => with(id()?, delete_server_in(e, id()?))?,
        "create_matcher" => create_matcher_in(e, ns()?, &data)?,
        "update_matcher" => with(id()?, update_matcher_in(e, id()?, &data))?,
        "delete_matcher" => with(id()?, delete_matcher_in(e, id()?))?,
        "create_proxy_rule" => create_proxy_rule_in(e, &data)?,
        "update_proxy_rule" => with(id()?, update_proxy_rule_in(e, id()?, &data))?,
        "delete_proxy_rule" => with(id()?, delete_proxy_rule_in(e, id()?))?,
        "create_rule" => create_rule_in(e, ns()?, &data)?,
        "update_rule" => with(id()?, update_rule_in(e, id()?, &data))?,
        "delete_rule" => with(id()?, delete_rule_in(e, id()?))?,
        "create_nginx_config" => create_nginx_config_in(e, &data)?,
        "update_nginx_config" => with(id()?, update_nginx_config_in(e, id()?, &data))?,
        "delete_nginx_config" => with(id()?, delete_nginx_config_in(e, id()?))?,
        "save_namespace_route" => save_namespace_route_in(e, ns()?, &data)?,
        other => {
            return Err(ApiError::bad_request(format!(
                "op: 不支持的操作 {other:?} (create_/update_/delete_ + namespace, upstream_server, matcher, proxy_rule, rule, nginx_config; save_namespace_route)"
            )))
        }
    };
    Ok(json!({"op": op, "success": true, "id": done}))
}

fn with(id: u64, r: Result<(), ApiError>) -> Result<u64, ApiError> {
    r.map(|()| id)
}

/// `POST /batch-dual-write`: every operation applies to one working copy,
/// then the whole is validated, committed in one transaction and swapped
/// in; the first failing operation fails the batch and nothing changes.
pub async fn batch_dual_write(c: &ConfigCenter, body: &Value) -> Reply {
    let Value::Array(items) = body else {
        return Err(ApiError::bad_request(
            "请求体必须是操作数组，如 [{\"op\": \"create_namespace\", \"data\": {...}}]",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("操作数组为空"));
    }
    if items.len() > MAX_OPS {
        return Err(ApiError::bad_request(format!("一次最多 {MAX_OPS} 个操作")));
    }
    let mut ops = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        match v {
            Value::Object(m) => ops.push(m.clone()),
            _ => return Err(ApiError::bad_request(format!("[{i}]: 必须是 JSON 对象"))),
        }
    }
    let results = c
        .mutate(|e, rt| {
            ops.iter()
                .enumerate()
                .map(|(i, item)| {
                    apply_op(e, rt, item).map_err(|err| {
                        let op = item.get("op").and_then(Value::as_str).unwrap_or("?");
                        ApiError::new(
                            err.status,
                            format!("操作 [{i}] ({op}) 失败，整批未执行: {}", err.detail),
                        )
                    })
                })
                .collect::<Result<Vec<Value>, ApiError>>()
        })
        .await?;
    Ok(json!({"results": results}))
}
