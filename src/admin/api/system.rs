//! Config-center system endpoints: `POST /sync` (the store's snapshot to
//! the Redis cache), `POST /preload/{namespace_id}` (one namespace's view
//! to the cache), `GET /cache/stats` (with the response cache's figures),
//! `POST /cache/purge` (response-cache entries) and `POST /batch-dual-write`
//! (several changes as one: all applied and committed in one transaction,
//! or none; each operation's `data` is the body of the endpoint it stands
//! for, decoded as that endpoint's request type).

use super::super::route::decode;
use super::*;

fn no_cache() -> ApiError {
    ApiError::bad_request("未配置 Redis 缓存 (config_store.redis_url，需 config_store.kind: mysql)")
}

fn cache_down(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(503, format!("Redis 缓存不可用: {e}"))
}

/// `POST /sync`.
#[derive(Serialize, ToSchema)]
pub struct Synced {
    pub message: &'static str,
    /// The revision written to the cache.
    pub revision: u64,
}

/// `POST /preload/{namespace_id}`.
#[derive(Serialize, ToSchema)]
pub struct Preloaded {
    pub message: String,
}

/// `GET /cache/stats` (all zero and `enabled: false` without Redis).
#[derive(Serialize, Deserialize, ToSchema, Default)]
pub struct CacheStats {
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Bytes of cached config.
    pub cache_size: u64,
    /// Bytes Redis has left.
    pub cache_free: u64,
    #[serde(default)]
    pub enabled: bool,
    /// The response cache of this instance: hits, misses, stale and
    /// bypassed requests, coalesced followers, entries stored, Redis hits
    /// and errors, bytes served, memory held and its capacity.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub responses: serde_json::Value,
}

/// `POST /cache/purge`: which response-cache entries to remove (at least
/// one field, or `all`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespace": "default", "model": "gpt-4o"}))]
pub struct CachePurge {
    /// A namespace code.
    pub namespace: Option<String>,
    /// A public model name.
    pub model: Option<String>,
    /// An entry's key (64 hex digits).
    pub key: Option<String>,
    /// Every entry.
    #[serde(default)]
    pub all: bool,
}

impl Body for CachePurge {}

/// What a purge removed.
#[derive(Serialize, ToSchema)]
pub struct CachePurged {
    pub message: &'static str,
    /// Entries removed from Redis (the shared tier); this instance's
    /// memory tier is purged too (other instances' within their TTL).
    pub purged_redis: u64,
}

/// `POST /cache/purge`.
pub fn cache_purge(_c: Call<'_>, b: CachePurge) -> Pending<'_, CachePurged> {
    Box::pin(async move {
        if b.namespace.is_none() && b.model.is_none() && b.key.is_none() && !b.all {
            return Err(ApiError::bad_request(
                "至少指定 namespace、model、key 之一，或 all: true",
            ));
        }
        if let Some(k) = &b.key {
            if k.len() != 64 || !k.bytes().all(|x| x.is_ascii_hexdigit()) {
                return Err(ApiError::bad_request("key 必须是 64 位十六进制"));
            }
        }
        let purge = crate::cache::redis::Purge {
            namespace: b.namespace.clone(),
            model: b.model.clone(),
            key: b.key.as_ref().map(|k| k.to_ascii_lowercase()),
        };
        let n = crate::cache::cache()
            .purge(&purge)
            .await
            .map_err(cache_down)?;
        Ok(CachePurged {
            message: "缓存已清除",
            purged_redis: n,
        })
    })
}

/// `POST /sync`: writes the stored snapshot (read from the store now, not
/// this instance's copy) to Redis.
pub fn sync(c: Call<'_>, _: NoBody) -> Pending<'_, Synced> {
    Box::pin(async move {
        let bus = c.center.bus().ok_or_else(no_cache)?;
        let stored = match c.center.store() {
            Some(store) => store
                .load()
                .await
                .map_err(|e| ApiError::new(503, format!("配置存储不可用: {e}")))?,
            None => None,
        };
        let snapshot = stored.unwrap_or_else(|| (*c.center.snapshot()).clone());
        bus.sync(&snapshot).await.map_err(cache_down)?;
        Ok(Synced {
            message: "数据同步成功",
            revision: snapshot.revision,
        })
    })
}

/// One namespace with everything that references it, as cached by preload.
fn namespace_bundle(e: &Entities, id: u64) -> Result<Value, ApiError> {
    let ns = ns_by_id(e, id).ok_or_else(ApiError::not_found)?;
    let code = ns.namespace_code.as_str();
    let of = |n: &Option<String>| n.as_deref() == Some(code);
    let json = |v: Result<Value, serde_json::Error>| v.map_err(ApiError::internal);
    Ok(json!({
        "namespace": json(serde_json::to_value(namespaces::view(e, ns)))?,
        "matchers": json(serde_json::to_value(matchers::list_of(e, Some(id))?))?,
        "rules": json(serde_json::to_value(rules::list_of(e, Some(id), None)?))?,
        "proxy_rules": e.proxy_rules.iter().filter(|r| of(&r.namespace)).map(|r| r.id).collect::<Vec<_>>(),
        "routes": e.routes.iter().filter(|r| of(&r.namespace)).map(|r| json!({"route_id": r.id, "prefix": r.prefix, "upstream": r.upstream})).collect::<Vec<_>>(),
        "revision": e.revision,
    }))
}

/// `POST /preload/{namespace_id}`.
pub fn preload(c: Call<'_>, _: NoBody) -> Pending<'_, Preloaded> {
    Box::pin(async move {
        let id = c.id()?;
        let bundle = namespace_bundle(&c.center.snapshot(), id)?;
        let bus = c.center.bus().ok_or_else(no_cache)?;
        bus.preload(id, &bundle).await.map_err(cache_down)?;
        Ok(Preloaded {
            message: format!("命名空间 {id} 数据预加载完成"),
        })
    })
}

/// `GET /cache/stats`.
pub fn cache_stats(c: Call<'_>, _: NoBody) -> Pending<'_, CacheStats> {
    Box::pin(async move {
        let responses = crate::cache::cache().stats();
        let Some(bus) = c.center.bus() else {
            return Ok(CacheStats {
                responses,
                ..CacheStats::default()
            });
        };
        let ids: Vec<u64> = c
            .center
            .snapshot()
            .namespaces
            .iter()
            .map(|n| n.id)
            .collect();
        let stats = bus.stats(&ids).await.map_err(cache_down)?;
        let stats: CacheStats = serde_json::from_value(stats).map_err(ApiError::internal)?;
        Ok(CacheStats {
            enabled: true,
            responses,
            ..stats
        })
    })
}

/// The most operations one batch may hold.
const MAX_OPS: usize = 500;

/// The operations of `POST /batch-dual-write`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    CreateNamespace,
    UpdateNamespace,
    DeleteNamespace,
    CreateUpstreamServer,
    UpdateUpstreamServer,
    DeleteUpstreamServer,
    CreateMatcher,
    UpdateMatcher,
    DeleteMatcher,
    CreateProxyRule,
    UpdateProxyRule,
    DeleteProxyRule,
    CreateRule,
    UpdateRule,
    DeleteRule,
    CreateNginxConfig,
    UpdateNginxConfig,
    DeleteNginxConfig,
    SaveNamespaceRoute,
}

/// One operation of a batch. `data` is the body of the endpoint the
/// operation stands for; `id` (updates and deletes) and `namespace_id`
/// (`create_matcher`, `create_rule`, `save_namespace_route`) go here or in
/// `data`.
#[derive(Deserialize, ToSchema)]
pub struct BatchOp {
    #[serde(default, deserialize_with = "op_kind")]
    #[schema(value_type = OpKind, required = true)]
    pub op: Option<Result<OpKind, String>>,
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub id: Option<u64>,
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<u64>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
}

/// `op`: a known operation, or the unknown name (refused when applied,
/// naming it).
fn op_kind<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Result<OpKind, String>>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.map(|v| {
        OpKind::deserialize(&v).map_err(|_| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
    }))
}

/// `POST /batch-dual-write`: the operations, in order.
#[derive(Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(example = json!([
    {"op": "create_namespace", "data": {"namespace_name": "A", "namespace_code": "batch-a"}},
    {"op": "update_namespace", "id": 1, "data": {"description": "批量更新"}}]))]
pub struct Batch(#[serde(deserialize_with = "batch_ops")] pub Vec<BatchOp>);

impl Body for Batch {
    const OBJECT: bool = false;
    const SHAPE: &'static str =
        "请求体必须是操作数组，如 [{\"op\": \"create_namespace\", \"data\": {...}}]";
}

fn batch_ops<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<BatchOp>, D::Error> {
    use serde::de::Error;
    let items = Vec::<Value>::deserialize(d)?;
    if items.is_empty() {
        return Err(D::Error::custom("操作数组为空"));
    }
    if items.len() > MAX_OPS {
        return Err(D::Error::custom(format!("一次最多 {MAX_OPS} 个操作")));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if !v.is_object() {
                return Err(D::Error::custom(format!("[{i}]: 必须是 JSON 对象")));
            }
            serde_path_to_error::deserialize::<_, BatchOp>(v).map_err(|e| {
                let path = e.path().to_string();
                D::Error::custom(format!("[{i}].{path}: {}", e.into_inner()))
            })
        })
        .collect()
}

/// The answer of one applied operation.
#[derive(Serialize, ToSchema)]
pub struct OpDone {
    pub op: String,
    pub success: bool,
    /// The id it created or changed.
    pub id: u64,
}

/// `POST /batch-dual-write`.
#[derive(Serialize, ToSchema)]
pub struct BatchDone {
    pub results: Vec<OpDone>,
}

/// The op's name as sent.
fn op_name(item: &BatchOp) -> String {
    match &item.op {
        None => "?".into(),
        Some(Err(name)) => name.clone(),
        Some(Ok(kind)) => serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

/// One batch operation, applied to the batch's working snapshot.
fn apply_op(e: &mut Entities, rt: &Snapshot, item: &BatchOp) -> Result<u64, ApiError> {
    use OpKind::*;
    let kind = match &item.op {
        None => return Err(ApiError::bad_request("缺少必要字段: op")),
        Some(Err(other)) => {
            return Err(ApiError::bad_request(format!(
                "op: 不支持的操作 {other:?} (create_/update_/delete_ + namespace, upstream_server, matcher, proxy_rule, rule, nginx_config; save_namespace_route)"
            )))
        }
        Some(Ok(kind)) => *kind,
    };
    let data = Value::Object(item.data.clone().unwrap_or_default());
    let in_data = |field: &str| -> Result<Option<u64>, ApiError> {
        match data.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("{field}: 必须是数字 ID"))),
        }
    };
    let id = || -> Result<u64, ApiError> {
        item.id
            .or(in_data("id")?)
            .ok_or_else(|| ApiError::bad_request("缺少必要字段: id"))
    };
    let ns = || -> Result<u64, ApiError> {
        item.namespace_id
            .or(in_data("namespace_id")?)
            .ok_or_else(|| ApiError::bad_request("缺少必要字段: namespace_id"))
    };
    let body = || data.clone();
    let changed = |id: u64, r: Result<(), ApiError>| r.map(|()| id);
    match kind {
        CreateNamespace => namespaces::create_in(e, &decode(body())?),
        UpdateNamespace => changed(id()?, namespaces::update_in(e, id()?, &decode(body())?)),
        DeleteNamespace => changed(id()?, namespaces::delete_in(e, rt, id()?)),
        CreateUpstreamServer => servers::create_in(e, &decode(body())?),
        UpdateUpstreamServer => changed(id()?, servers::update_in(e, id()?, &decode(body())?)),
        DeleteUpstreamServer => changed(id()?, servers::delete_in(e, id()?)),
        CreateMatcher => matchers::create_in(e, ns()?, &decode(body())?),
        UpdateMatcher => changed(id()?, matchers::update_in(e, id()?, &decode(body())?)),
        DeleteMatcher => changed(id()?, matchers::delete_in(e, id()?)),
        CreateProxyRule => proxy_rules::create_in(e, &decode(body())?),
        UpdateProxyRule => changed(id()?, proxy_rules::update_in(e, id()?, &decode(body())?)),
        DeleteProxyRule => changed(id()?, proxy_rules::delete_in(e, id()?)),
        CreateRule => rules::create_in(e, ns()?, &decode(body())?),
        UpdateRule => changed(id()?, rules::update_in(e, id()?, &decode(body())?)),
        DeleteRule => changed(id()?, rules::delete_in(e, id()?)),
        CreateNginxConfig => nginx::create_in(e, &decode(body())?),
        UpdateNginxConfig => changed(id()?, nginx::update_in(e, id()?, &decode(body())?)),
        DeleteNginxConfig => changed(id()?, nginx::delete_in(e, id()?)),
        SaveNamespaceRoute => ns_route::save_in(e, ns()?, &decode(body())?),
    }
}

/// `POST /batch-dual-write`: every operation applies to one working copy,
/// then the whole is validated, committed in one transaction and swapped
/// in; the first failing operation fails the batch and nothing changes.
pub fn batch_dual_write(c: Call<'_>, b: Batch) -> Pending<'_, BatchDone> {
    Box::pin(async move {
        let results = c
            .mutate(|e, rt| {
                b.0.iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let op = op_name(item);
                        match apply_op(e, rt, item) {
                            Ok(id) => Ok(OpDone {
                                op,
                                success: true,
                                id,
                            }),
                            Err(err) => Err(ApiError::new(
                                err.status,
                                format!("操作 [{i}] ({op}) 失败，整批未执行: {}", err.detail),
                            )),
                        }
                    })
                    .collect::<Result<Vec<_>, ApiError>>()
            })
            .await?;
        Ok(BatchDone { results })
    })
}

/// `GET /api/v1/instances`: the fleet as this instance sees it.
pub fn instances(_: Call<'_>, _: NoBody) -> Pending<'_, crate::fleet::Listing> {
    Box::pin(async move { Ok(crate::fleet::list().await) })
}
