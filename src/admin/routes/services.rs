//! The routes of the services around the config: health and status, the
//! data plane's figures, the routing dry runs, the token service, the
//! Redis cache and the batch endpoints.

use super::*;
use crate::admin::api::{dry_run, namespaces, system, tokens, usage};
use crate::admin::openapi;

pub(super) const SERVICES: &[Route] = &[
    // System.
    Route::new(GET, "/health", "system", "健康检查", &Direct(usage::health)).open(),
    Route::new(
        GET,
        "/openapi.json",
        "system",
        "本 OpenAPI 文档",
        &Direct(openapi::serve),
    )
    .open(),
    Route::new(
        GET,
        "/api/v1/status",
        "system",
        "系统状态（与 /health 一致），另列出配置告警（永远不会生效的配置）",
        &Direct(usage::system_status),
    ),
    Route::new(
        GET,
        "/api/v1/instances",
        "system",
        "实例列表：共享同一 Redis 的每个网关实例（地址、版本、配置修订、心跳）",
        &Async(system::instances),
    ),
    Route::new(
        GET,
        "/stats",
        "system",
        "统计：响应缓存（命中、未命中、内存占用）与网关请求统计",
        &Direct(usage::stats),
    ),
    // Usage and monitoring (figures from the data plane).
    Route::new(
        GET,
        "/api/v1/namespaces/usage/overview",
        "usage",
        "所有命名空间的 QPS 与并发",
        &Direct(usage::overview),
    ),
    Route::new(
        GET,
        "/api/v1/namespaces/{namespace_id}/usage",
        "usage",
        "命名空间当前用量：QPS、并发、每分钟 token",
        &Direct(usage::usage),
    )
    .errors(READ_ID),
    Route::new(
        GET,
        "/api/v1/namespaces/{namespace_id}/monitoring",
        "usage",
        "命名空间最近 5 分钟的每分钟请求、p95 延迟、token",
        &Direct(usage::monitoring),
    )
    .errors(READ_ID),
    Route::new(
        GET,
        "/api/v1/spend",
        "usage",
        "花费账本：某日（UTC）按命名空间、API 密钥、模型的花费（美元）",
        &Async(usage::spend),
    )
    .query(&[
        ("day", "YYYY-MM-DD (UTC); default today"),
        ("namespace", "only this namespace code"),
        ("key", "only this API key name"),
        ("model", "only this model"),
    ])
    .errors(&[400, 503]),
    // Routing dry runs.
    Route::new(
        POST,
        "/api/v1/namespaces/{namespace_id}/validate",
        "routing",
        "请求能否进入该命名空间（与数据面同一编译结果）",
        &Direct(dry_run::validate_namespace),
    )
    .errors(POST_ID),
    Route::new(
        POST,
        "/api/v1/route/namespace",
        "routing",
        "请求的目标命名空间与路由（与数据面同一编译结果）",
        &Direct(dry_run::route_namespace),
    )
    .errors(POST_ONLY),
    Route::new(
        POST,
        "/api/v1/route/validate",
        "routing",
        "逐条匹配器的命中情况（与数据面同一编译结果）",
        &Direct(dry_run::route_validate),
    )
    .errors(POST_ONLY),
    // Token service, under /api/v1/tokens and at its own short paths.
    Route::new(
        GET,
        "/api/v1/tokens",
        "tokens",
        "Token 计算服务信息",
        &Direct(tokens::service_info),
    ),
    Route::new(
        POST,
        "/api/v1/tokens/calculate",
        "tokens",
        "计算文本或 messages 的 token 数",
        &Async(tokens::calculate),
    )
    .errors(POST_ONLY),
    Route::new(
        POST,
        "/api/v1/tokens/batch-calculate",
        "tokens",
        "批量计算 token 数",
        &Async(tokens::batch_calculate),
    )
    .errors(POST_ONLY),
    Route::new(
        GET,
        "/api/v1/tokens/models",
        "tokens",
        "已知模型与编码",
        &Direct(tokens::models),
    ),
    Route::new(
        POST,
        "/api/v1/tokens/download-model",
        "tokens",
        "编码已内置：内置编码返回 200，其余 400",
        &Async(tokens::download_model),
    )
    .errors(POST_ONLY),
    Route::new(
        GET,
        "/api/v1/tokens/health",
        "tokens",
        "Token 服务健康",
        &Direct(tokens::health),
    ),
    Route::new(
        GET,
        "/",
        "tokens",
        "Token 计算服务信息（短路径）",
        &Direct(tokens::service_info),
    ),
    Route::new(
        POST,
        "/calculate",
        "tokens",
        "同 /api/v1/tokens/calculate（短路径）",
        &Async(tokens::calculate),
    )
    .errors(POST_ONLY),
    Route::new(
        POST,
        "/batch-calculate",
        "tokens",
        "同 /api/v1/tokens/batch-calculate（短路径）",
        &Async(tokens::batch_calculate),
    )
    .errors(POST_ONLY),
    Route::new(
        GET,
        "/models",
        "tokens",
        "同 /api/v1/tokens/models（短路径）",
        &Direct(tokens::models),
    ),
    Route::new(
        POST,
        "/download-model",
        "tokens",
        "同 /api/v1/tokens/download-model（短路径）",
        &Async(tokens::download_model),
    )
    .errors(POST_ONLY),
    // Config center: cache and batches.
    Route::new(
        POST,
        "/sync",
        "system",
        "把存储 (MySQL) 中的配置同步到 Redis 缓存",
        &Async(system::sync),
    )
    .errors(&[400, 503]),
    Route::new(
        POST,
        "/preload/{namespace_id}",
        "system",
        "预加载一个命名空间的数据到 Redis 缓存",
        &Async(system::preload),
    )
    .errors(&[400, 404, 503]),
    Route::new(
        GET,
        "/cache/stats",
        "system",
        "缓存统计（Redis 配置缓存；responses: 响应缓存）",
        &Async(system::cache_stats),
    )
    .errors(&[503]),
    Route::new(
        POST,
        "/cache/purge",
        "system",
        "清除响应缓存：按命名空间、模型或键",
        &Async(system::cache_purge),
    )
    .errors(&[400, 415, 503]),
    Route::new(
        POST,
        "/namespaces/batch",
        "namespaces",
        "批量获取命名空间",
        &Direct(namespaces::batch),
    )
    .errors(POST_ONLY),
    Route::new(
        POST,
        "/batch-dual-write",
        "system",
        "批量变更：一个事务，全部成功或全部不执行",
        &Async(system::batch_dual_write),
    )
    .errors(&[400, 404, 409, 413, 415, 503]),
];
