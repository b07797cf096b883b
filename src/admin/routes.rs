//! The admin route table: every endpoint the admin service serves, with
//! its handler (whose request and response types the OpenAPI document
//! describes). The router answers only what [`ROUTES`] lists (anything
//! else is 404, or 405 for a listed path with another method).

use super::api::{
    dry_run, matchers, namespaces, nginx, ns_route, proxy_rules, rules, servers, system, tokens,
    usage,
};
use super::openapi;
use super::route::{Async, Direct, Route};

const GET: &str = "GET";
const POST: &str = "POST";
const PUT: &str = "PUT";
const DELETE: &str = "DELETE";

/// Errors of a change with a body: validation, duplicates/references,
/// size and media type.
const CHANGE: &[u16] = &[400, 409, 413, 415];
const CHANGE_ID: &[u16] = &[400, 404, 409, 413, 415];
const DELETE_ID: &[u16] = &[404, 409];
const READ_ID: &[u16] = &[404];
const POST_ONLY: &[u16] = &[400, 413, 415];
const POST_ID: &[u16] = &[400, 404, 413, 415];

const RULE_TYPE: &[(&str, &str)] = &[("rule_type", "只列出该类型的规则")];
const CONFIG_TYPE: &[(&str, &str)] = &[("config_type", "只列出该 config_type 的片段")];

/// Every admin endpoint.
pub const ROUTES: &[Route] = &[
    // System.
    Route::new(GET, "/health", "system", "健康检查", &Direct(usage::health)).open(),
    Route::new(GET, "/openapi.json", "system", "本 OpenAPI 文档", &Direct(openapi::serve)).open(),
    Route::new(GET, "/api/v1/status", "system", "系统状态（与 /health 一致）", &Direct(usage::health)),
    Route::new(
        GET,
        "/stats",
        "system",
        "统计（缓存统计形状；无响应缓存时为 0）与网关请求统计",
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
    // Namespaces.
    Route::new(GET, "/api/v1/namespaces", "namespaces", "命名空间列表", &Direct(namespaces::list)),
    Route::new(POST, "/api/v1/namespaces", "namespaces", "创建命名空间", &Async(namespaces::create))
        .errors(CHANGE),
    Route::new(
        GET,
        "/api/v1/namespaces/{namespace_id}",
        "namespaces",
        "命名空间详情",
        &Direct(namespaces::get),
    )
    .errors(READ_ID),
    Route::new(
        PUT,
        "/api/v1/namespaces/{namespace_id}",
        "namespaces",
        "更新命名空间（只改所给字段）",
        &Async(namespaces::update),
    )
    .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/namespaces/{namespace_id}",
        "namespaces",
        "删除命名空间",
        &Async(namespaces::delete),
    )
    .errors(DELETE_ID),
    Route::new(
        GET,
        "/api/v1/namespaces/{namespace_id}/rules",
        "rules",
        "命名空间的限流规则（可选 rule_type 过滤）",
        &Direct(rules::list_in_namespace),
    )
    .errors(READ_ID)
    .query(RULE_TYPE),
    Route::new(
        POST,
        "/api/v1/namespaces/{namespace_id}/rules",
        "rules",
        "创建限流规则",
        &Async(rules::create),
    )
    .errors(CHANGE_ID),
    Route::new(
        GET,
        "/api/v1/namespaces/{namespace_id}/matchers",
        "matchers",
        "命名空间的报文匹配器",
        &Direct(matchers::list_in_namespace),
    )
    .errors(READ_ID),
    Route::new(
        POST,
        "/api/v1/namespaces/{namespace_id}/matchers",
        "matchers",
        "创建报文匹配器",
        &Async(matchers::create),
    )
    .errors(CHANGE_ID),
    Route::new(
        POST,
        "/api/v1/namespaces/{namespace_id}/validate",
        "routing",
        "请求能否进入该命名空间（与数据面同一编译结果）",
        &Direct(dry_run::validate_namespace),
    )
    .errors(POST_ID),
    // Upstream servers.
    Route::new(
        GET,
        "/api/v1/upstream-servers",
        "upstream-servers",
        "上游服务器列表",
        &Direct(servers::list),
    ),
    Route::new(
        POST,
        "/api/v1/upstream-servers",
        "upstream-servers",
        "创建上游服务器",
        &Async(servers::create),
    )
    .errors(CHANGE),
    Route::new(
        GET,
        "/api/v1/upstream-servers/{server_id}",
        "upstream-servers",
        "上游服务器详情",
        &Direct(servers::get),
    )
    .errors(READ_ID),
    Route::new(
        PUT,
        "/api/v1/upstream-servers/{server_id}",
        "upstream-servers",
        "更新上游服务器",
        &Async(servers::update),
    )
    .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/upstream-servers/{server_id}",
        "upstream-servers",
        "删除上游服务器",
        &Async(servers::delete),
    )
    .errors(DELETE_ID),
    // Matchers.
    Route::new(GET, "/api/v1/matchers", "matchers", "报文匹配器列表", &Direct(matchers::list)),
    Route::new(
        GET,
        "/api/v1/matchers/{matcher_id}",
        "matchers",
        "报文匹配器详情",
        &Direct(matchers::get),
    )
    .errors(READ_ID),
    Route::new(
        PUT,
        "/api/v1/matchers/{matcher_id}",
        "matchers",
        "更新报文匹配器",
        &Async(matchers::update),
    )
    .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/matchers/{matcher_id}",
        "matchers",
        "删除报文匹配器",
        &Async(matchers::delete),
    )
    .errors(DELETE_ID),
    // Proxy rules.
    Route::new(
        GET,
        "/api/v1/proxy-rules",
        "proxy-rules",
        "代理规则列表",
        &Direct(proxy_rules::list),
    ),
    Route::new(
        POST,
        "/api/v1/proxy-rules",
        "proxy-rules",
        "创建代理规则",
        &Async(proxy_rules::create),
    )
    .errors(CHANGE),
    Route::new(
        GET,
        "/api/v1/proxy-rules/{rule_id}",
        "proxy-rules",
        "代理规则详情",
        &Direct(proxy_rules::get),
    )
    .errors(READ_ID),
    Route::new(
        PUT,
        "/api/v1/proxy-rules/{rule_id}",
        "proxy-rules",
        "更新代理规则",
        &Async(proxy_rules::update),
    )
    .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/proxy-rules/{rule_id}",
        "proxy-rules",
        "删除代理规则",
        &Async(proxy_rules::delete),
    )
    .errors(DELETE_ID),
    // Limit rules.
    Route::new(
        GET,
        "/api/v1/rules",
        "rules",
        "限流规则列表（可选 rule_type 过滤）",
        &Direct(rules::list),
    )
    .query(RULE_TYPE),
    Route::new(
        GET,
        "/api/v1/rules/types",
        "rules",
        "支持的规则类型及字段 schema",
        &Direct(rules::types),
    ),
    Route::new(GET, "/api/v1/rules/{rule_id}", "rules", "限流规则详情", &Direct(rules::get))
        .errors(READ_ID),
    Route::new(PUT, "/api/v1/rules/{rule_id}", "rules", "更新限流规则", &Async(rules::update))
        .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/rules/{rule_id}",
        "rules",
        "删除限流规则",
        &Async(rules::delete),
    )
    .errors(DELETE_ID),
    // Routing dry runs.
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
    Route::new(GET, "/", "tokens", "Token 计算服务信息（短路径）", &Direct(tokens::service_info)),
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
    // Config center: cache, batches, namespace route, nginx configs.
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
        "缓存统计（Redis 配置缓存）",
        &Async(system::cache_stats),
    )
    .errors(&[503]),
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
    Route::new(
        GET,
        "/api/v1/namespaces/{namespace_id}/route",
        "namespaces",
        "命名空间路由规则（前缀路由）",
        &Direct(ns_route::get),
    )
    .errors(READ_ID),
    Route::new(
        POST,
        "/api/v1/namespaces/{namespace_id}/route",
        "namespaces",
        "保存命名空间路由规则",
        &Async(ns_route::save),
    )
    .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/namespaces/{namespace_id}/route",
        "namespaces",
        "删除命名空间路由规则",
        &Async(ns_route::delete),
    )
    .errors(DELETE_ID),
    // Nginx configs (gateway setting fragments).
    Route::new(
        GET,
        "/api/v1/nginx-configs",
        "nginx-configs",
        "网关设置片段列表（可选 config_type 过滤）",
        &Direct(nginx::list),
    )
    .query(CONFIG_TYPE),
    Route::new(
        POST,
        "/api/v1/nginx-configs",
        "nginx-configs",
        "创建设置片段（client_max_body_size, proxy_connect_timeout, proxy_read_timeout, keepalive_timeout）",
        &Async(nginx::create),
    )
    .errors(CHANGE),
    Route::new(
        GET,
        "/api/v1/nginx-configs/{config_id}",
        "nginx-configs",
        "设置片段详情（数字 ID）；给一个类型名（如 http）则列出该 config_type 的片段",
        &Direct(nginx::get),
    )
    .errors(READ_ID),
    Route::new(
        PUT,
        "/api/v1/nginx-configs/{config_id}",
        "nginx-configs",
        "更新设置片段",
        &Async(nginx::update),
    )
    .errors(CHANGE_ID),
    Route::new(
        DELETE,
        "/api/v1/nginx-configs/{config_id}",
        "nginx-configs",
        "删除设置片段",
        &Async(nginx::delete),
    )
    .errors(READ_ID),
];

#[cfg(test)]
mod tests {
    use super::super::route::{lookup, Lookup};
    use super::*;

    #[test]
    fn paths_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {}", r.method, r.path);
        }
        assert!(matches!(
            lookup(ROUTES, "GET", "/api/v1/namespaces/3"),
            Lookup::Found(_, Some(p)) if p == "3"
        ));
        assert!(matches!(
            lookup(ROUTES, "GET", "/api/v1/namespaces/x"),
            Lookup::NotFound
        ));
        assert!(matches!(
            lookup(ROUTES, "PATCH", "/api/v1/namespaces/3"),
            Lookup::WrongMethod
        ));
        assert!(matches!(
            lookup(ROUTES, "GET", "/api/v1/rules/types/"),
            Lookup::Found(r, None) if r.path == "/api/v1/rules/types"
        ));
        assert!(matches!(
            lookup(ROUTES, "GET", "/api/v1/nginx-configs/http"),
            Lookup::Found(_, Some(p)) if p == "http"
        ));
    }
}
