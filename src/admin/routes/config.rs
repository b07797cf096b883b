//! The routes of the config entities: namespaces, upstream servers,
//! matchers, proxy rules, limit rules, namespace routes and nginx configs.

use super::*;
use crate::admin::api::{
    api_keys, matchers, namespaces, nginx, ns_route, proxy_rules, rules, servers, users,
};

pub(super) const CONFIG: &[Route] = &[
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
    // Namespace routes.
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
    // API keys created through the admin API.
    Route::new(
        GET,
        "/api/v1/api-keys",
        "api-keys",
        "API 密钥列表（只显示前缀，不显示密钥）",
        &Direct(api_keys::list),
    ),
    Route::new(
        POST,
        "/api/v1/api-keys",
        "api-keys",
        "创建 API 密钥（密钥只在此应答中出现一次；只保存其 SHA-256）",
        &Async(api_keys::create),
    )
    .errors(CHANGE),
    Route::new(
        GET,
        "/api/v1/api-keys/{key_id}",
        "api-keys",
        "API 密钥详情",
        &Direct(api_keys::get),
    )
    .errors(READ_ID),
    Route::new(
        POST,
        "/api/v1/api-keys/{key_id}/rotate",
        "api-keys",
        "轮换密钥：新密钥只显示一次，旧密钥在 overlap_seconds 内仍可用",
        &Async(api_keys::rotate),
    )
    .errors(POST_ID),
    Route::new(
        DELETE,
        "/api/v1/api-keys/{key_id}",
        "api-keys",
        "吊销 API 密钥（各实例随配置同步立即拒绝）",
        &Async(api_keys::delete),
    )
    .errors(READ_ID),
    // Users who sign in at POST /api/v1/auth/login (proxy listener).
    Route::new(GET, "/api/v1/users", "users", "用户列表（不含密码哈希）", &Direct(users::list)),
    Route::new(
        POST,
        "/api/v1/users",
        "users",
        "创建用户（密码以 argon2id 哈希保存）",
        &Async(users::create),
    )
    .errors(CHANGE),
    Route::new(GET, "/api/v1/users/{user_id}", "users", "用户详情", &Direct(users::get))
        .errors(READ_ID),
    Route::new(
        PUT,
        "/api/v1/users/{user_id}",
        "users",
        "更新用户（只改所给字段；is_active=0 停用并结束其会话）",
        &Async(users::update),
    )
    .errors(CHANGE_ID),
    Route::new(
        POST,
        "/api/v1/users/{user_id}/password",
        "users",
        "重置密码（并结束该用户的所有会话）",
        &Async(users::reset_password),
    )
    .errors(POST_ID),
    Route::new(
        POST,
        "/api/v1/users/{user_id}/revoke-sessions",
        "users",
        "结束该用户的所有会话：之前签发的访问令牌与刷新令牌在各实例随配置同步失效",
        &Async(users::end_sessions),
    )
    .errors(READ_ID),
    Route::new(
        DELETE,
        "/api/v1/users/{user_id}",
        "users",
        "删除用户",
        &Async(users::delete),
    )
    .errors(READ_ID),
];
