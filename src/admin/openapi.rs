//! The admin API's route table and the OpenAPI 3 document built from it
//! (`GET /openapi.json`). The router answers only what [`ROUTES`] lists
//! (anything else is 404, or 405 for a listed path with another method),
//! so the document cannot miss a route the server serves.

use serde_json::{json, Map, Value};

/// One admin endpoint.
pub struct Route {
    pub method: &'static str,
    /// Path template; `{...}` segments are numeric ids.
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Needs the admin token (subject to `admin.auth_reads` for GETs).
    pub auth: bool,
    /// Example JSON request body, when the endpoint takes one.
    pub body: Option<&'static str>,
    /// Example JSON response (its schema is derived from it).
    pub response: &'static str,
    /// Statuses besides 200 (and 401 for `auth` routes).
    pub errors: &'static [u16],
}

const NS_BODY: &str = r#"{"namespace_name":"企业业务","namespace_code":"enterprise","description":"说明","is_active":1}"#;
const NS_ITEM: &str = r#"{"id":1,"namespace_name":"企业业务","namespace_code":"enterprise","description":"说明","is_active":1,"created_at":"2025-08-01 10:00:00","updated_at":"2025-08-11 09:00:00"}"#;
const NS_CHANGED: &str = r#"{"message":"命名空间更新成功","namespace_id":1,"namespace":{"id":1}}"#;
const SERVER_BODY: &str = r#"{"server_name":"llm-upstream","server_address":"127.0.0.1","server_port":8000,"server_type":"http","weight":10,"max_connections":100,"health_check_url":"/health","is_active":1}"#;
const SERVER_ITEM: &str = r#"{"server_id":2,"server_name":"llm-upstream","server_address":"127.0.0.1","server_port":8000,"server_type":"http","weight":10,"max_connections":100,"health_check_url":"/health","is_active":1}"#;
const SERVER_CHANGED: &str =
    r#"{"message":"上游服务器更新成功","server_id":2,"server":{"server_id":2}}"#;
const MATCHER_BODY: &str = r#"{"matcher_name":"route-by-header","matcher_type":"header","matcher_config":{"match_field":"x-tenant","match_operator":"eq","match_value":"enterprise","action":"allow"},"priority":10,"is_active":1}"#;
const MATCHER_ITEM: &str = r#"{"matcher_id":301,"namespace_id":1,"matcher_name":"route-by-header","matcher_type":"header","priority":10,"is_active":1,"matcher_config":{"match_field":"x-tenant","match_operator":"eq","match_value":"enterprise","action":"allow"}}"#;
const MATCHER_CHANGED: &str = r#"{"message":"报文匹配器更新成功","matcher_id":301}"#;
const PROXY_BODY: &str = r#"{"rule_name":"enterprise-policy","namespace_id":1,"upstream_server_id":1,"path_pattern":"/v1/.*","method_pattern":"GET|POST","header_pattern":"x-tenant:enterprise","body_pattern":null,"priority":10,"is_active":1}"#;
const PROXY_ITEM: &str = r#"{"rule_id":12,"rule_name":"enterprise-policy","namespace_id":1,"namespace_name":"企业业务","namespace_code":"enterprise","upstream_server_id":2,"upstream_server_address":"llm-upstream","upstream_server_port":8000,"priority":10,"is_active":1}"#;
const PROXY_CHANGED: &str = r#"{"message":"代理规则更新成功","rule_id":12,"rule":{"rule_id":12}}"#;
const RULE_BODY: &str = r#"{"rule_name":"limit-qps","rule_type":"rate_limit","rule_config":{"max_qps":50,"time_window_seconds":1},"priority":10,"status":1}"#;
const RULE_ITEM: &str = r#"{"rule_id":201,"namespace_id":1,"rule_name":"limit-qps","rule_type":"rate_limit","priority":10,"status":1,"rule_config":{"max_qps":50,"time_window_seconds":1}}"#;
const RULE_CHANGED: &str = r#"{"message":"规则更新成功","rule_id":201}"#;
const STATUS: &str = r#"{"status":"healthy","storage":{"file":"healthy"},"timestamp":1754904203}"#;
const SAMPLE: &str = r#"{"method":"POST","path":"/v1/chat/completions","headers":{"x-tenant":"enterprise","authorization":"Bearer sk-test"},"query_params":{"model":"gpt-4"},"body":{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}}"#;
const ROUTE_NS: &str = r#"{"matched":true,"rule_id":101,"rule_name":"route-enterprise","target_namespace":"enterprise","namespace_info":{"namespace_id":1,"namespace_code":"enterprise","namespace_name":"enterprise Service","status":1},"matched_config":{"matcher_type":"header","match_field":"x-tenant","match_operator":"eq","match_value":"enterprise","action":"allow"},"route":{"type":"prefix","prefix":"/","upstream":"p","upstream_path":"/v1/chat/completions"},"api_key":{"key_name":"test","bound_namespace":null},"decision":{"result":"proxied","status":200,"reason":"forwarded upstream (limits not evaluated)"}}"#;
const ROUTE_VALIDATE: &str = r#"{"request_data":{"method":"POST","path":"/v1/chat/completions","query":null,"headers":{"x-tenant":"enterprise"},"body":null},"rules":[{"rule_id":101,"rule_name":"route-enterprise","rule_type":"matcher","priority":10,"status":1,"namespace_id":1,"namespace_code":"enterprise","evaluated":true,"matched":true,"decisive":true,"config":{"matcher_type":"header"}}],"target_namespace":"enterprise","route":{"type":"prefix"},"api_key":null,"decision":{"result":"proxied","status":200,"reason":""}}"#;
const NS_VALIDATE: &str = r#"{"allowed":true,"namespace_id":1,"namespace_code":"enterprise","namespace_name":"企业业务","resolved_namespace":"enterprise","rules":[{"rule_id":101,"rule_name":"only-enterprise","rule_type":"matcher","passed":true,"details":{"message":"规则验证通过"}}],"route":{"type":"prefix"},"decision":{"result":"proxied","status":200,"reason":""}}"#;
const TOKEN_INFO: &str = r#"{"message":"Token计算服务","version":"0.1.0","endpoints":{"计算单个文本token":"/api/v1/tokens/calculate"}}"#;
const TOKEN_CALC_BODY: &str = r#"{"text":"hello world","model_name":"gpt-4o"}"#;
const TOKEN_CALC: &str = r#"{"success":true,"model_name":"gpt-4o","text":"hello world","token_count":2,"encoding":"o200k_base","estimated":false,"tokenizer_type":"tiktoken"}"#;
const TOKEN_BATCH_BODY: &str = r#"{"texts":["hello","world"],"model_name":"gpt-4o"}"#;
const TOKEN_BATCH: &str = r#"[{"success":true,"model_name":"gpt-4o","text":"hello","token_count":1,"encoding":"o200k_base","estimated":false,"tokenizer_type":"tiktoken"}]"#;
const TOKEN_MODELS: &str = r#"[{"name":"gpt-4o","encoding":"o200k_base","source":"built-in","downloaded":true,"available":true,"type":"decoder-only","tokenizer_type":"tiktoken"}]"#;
const TOKEN_DOWNLOAD_BODY: &str = r#"{"model_name":"cl100k_base"}"#;
const TOKEN_DOWNLOAD: &str = r#"{"success":true,"message":"模型 cl100k_base 已内置 (cl100k_base)，无需下载","model_name":"cl100k_base","encoding":"cl100k_base"}"#;
const TOKEN_HEALTH: &str = r#"{"status":"healthy","service":"token-calculator","version":"0.1.0","encodings":["o200k_base"]}"#;
const STATS: &str = r#"{"cache_hits":0,"cache_misses":0,"cache_size":0,"cache_free":0,"cache_enabled":false,"requests_total":12345,"requests_2xx":11890,"requests_4xx":290,"requests_5xx":165,"latency_ms_p95":420,"upstream_failures":12,"inflight_requests":3,"inflight_streams":1,"updated_at":1754904203}"#;
const USAGE: &str = r#"{"namespace_id":1,"namespace_code":"enterprise","qps":18.2,"concurrency":12,"token_input_per_min":12500,"token_output_per_min":8400,"rate_limit":{"enabled":true,"max_qps":50.0},"updated_at":"2025-08-12T01:10:00Z"}"#;
const OVERVIEW: &str =
    r#"[{"namespace_id":1,"namespace_code":"enterprise","qps":18.2,"concurrency":12}]"#;
const MONITORING: &str = r#"{"namespace_id":1,"metrics":{"req_per_min":[12,18,22,19,25],"latency_ms_p95":[480,455,430,460,440],"token_in":[1200,1350,1500,1400,1550],"token_out":[800,900,950,880,1000]},"window":"5m","updated_at":"2025-08-12T01:10:00Z"}"#;
const RULE_TYPES: &str = r#"{"rule_types":[{"type":"matcher","config_schema":{}}]}"#;
const CACHE_STATS: &str = r#"{"cache_hits":123,"cache_misses":45,"cache_size":10485760,"cache_free":7340032,"enabled":true}"#;
const NS_BATCH_BODY: &str = "[1, 2, 3]";
const NS_BATCH: &str =
    r#"[{"id":1,"namespace_name":"企业业务","namespace_code":"enterprise","is_active":1}]"#;
const DUAL_WRITE_BODY: &str = r#"[{"op":"create_namespace","data":{"namespace_name":"A","namespace_code":"batch-a"}},{"op":"update_namespace","id":1,"data":{"description":"批量更新"}}]"#;
const DUAL_WRITE: &str = r#"{"results":[{"op":"create_namespace","success":true,"id":5}]}"#;
const NS_ROUTE: &str = r#"{"route_id":10,"namespace_id":1,"match_strategy":"prefix:/v1","prefix":"/v1","upstream":"llm-upstream","upstream_server_id":2,"strip_prefix":false,"status":1}"#;
const NS_ROUTE_BODY: &str =
    r#"{"match_strategy":"prefix:/v1","upstream_server_id":1,"strip_prefix":false}"#;
const NS_ROUTE_SAVED: &str =
    r#"{"message":"命名空间路由规则保存成功","route_id":10,"route":{"route_id":10}}"#;
const NGINX_BODY: &str = r#"{"config_type":"http","config_name":"body-and-timeouts","config_content":"client_max_body_size 8m; proxy_read_timeout 120s;","is_active":1}"#;
const NGINX_ITEM: &str = r#"{"config_id":11,"config_type":"http","config_name":"body-and-timeouts","config_content":"client_max_body_size 8m; proxy_read_timeout 120s;","config_value":{"client_max_body_size":8388608},"is_active":1,"status":1}"#;
const NGINX_CHANGED: &str =
    r#"{"message":"nginx配置更新成功","config_id":11,"config":{"config_id":11}}"#;
const OPENAPI: &str = r#"{"openapi":"3.0.3","info":{},"paths":{}}"#;

/// Errors of a change with a body: validation, duplicates/references,
/// size and media type.
const CHANGE: &[u16] = &[400, 409, 413, 415];
const CHANGE_ID: &[u16] = &[400, 404, 409, 413, 415];
const DELETE_ID: &[u16] = &[404, 409];
const READ_ID: &[u16] = &[404];
const POST_ONLY: &[u16] = &[400, 413, 415];
const POST_ID: &[u16] = &[400, 404, 413, 415];

macro_rules! route {
    ($m:literal, $p:literal, $tag:literal, $sum:literal, $auth:expr, $body:expr, $resp:expr, $err:expr) => {
        Route {
            method: $m,
            path: $p,
            tag: $tag,
            summary: $sum,
            auth: $auth,
            body: $body,
            response: $resp,
            errors: $err,
        }
    };
}

/// Every admin endpoint.
pub const ROUTES: &[Route] = &[
    route!(
        "GET",
        "/health",
        "system",
        "健康检查",
        false,
        None,
        STATUS,
        &[]
    ),
    route!(
        "GET",
        "/openapi.json",
        "system",
        "本 OpenAPI 文档",
        false,
        None,
        OPENAPI,
        &[]
    ),
    route!(
        "GET",
        "/api/v1/status",
        "system",
        "系统状态（与 /health 一致）",
        true,
        None,
        STATUS,
        &[]
    ),
    route!(
        "GET",
        "/stats",
        "system",
        "统计（seed 000 缓存统计形状；无响应缓存时为 0）与网关请求统计",
        true,
        None,
        STATS,
        &[]
    ),
    // Usage and monitoring (figures from the data plane).
    route!(
        "GET",
        "/api/v1/namespaces/usage/overview",
        "usage",
        "所有命名空间的 QPS 与并发",
        true,
        None,
        OVERVIEW,
        &[]
    ),
    route!(
        "GET",
        "/api/v1/namespaces/{namespace_id}/usage",
        "usage",
        "命名空间当前用量：QPS、并发、每分钟 token",
        true,
        None,
        USAGE,
        READ_ID
    ),
    route!(
        "GET",
        "/api/v1/namespaces/{namespace_id}/monitoring",
        "usage",
        "命名空间最近 5 分钟的每分钟请求、p95 延迟、token",
        true,
        None,
        MONITORING,
        READ_ID
    ),
    // Namespaces.
    route!(
        "GET",
        "/api/v1/namespaces",
        "namespaces",
        "命名空间列表",
        true,
        None,
        "[{\"id\":1}]",
        &[]
    ),
    route!(
        "POST",
        "/api/v1/namespaces",
        "namespaces",
        "创建命名空间",
        true,
        Some(NS_BODY),
        NS_CHANGED,
        CHANGE
    ),
    route!(
        "GET",
        "/api/v1/namespaces/{namespace_id}",
        "namespaces",
        "命名空间详情",
        true,
        None,
        NS_ITEM,
        READ_ID
    ),
    route!(
        "PUT",
        "/api/v1/namespaces/{namespace_id}",
        "namespaces",
        "更新命名空间（只改所给字段）",
        true,
        Some(NS_BODY),
        NS_CHANGED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/namespaces/{namespace_id}",
        "namespaces",
        "删除命名空间",
        true,
        None,
        r#"{"message":"命名空间删除成功","namespace_id":1}"#,
        DELETE_ID
    ),
    route!(
        "GET",
        "/api/v1/namespaces/{namespace_id}/rules",
        "rules",
        "命名空间的限流规则（可选 rule_type 过滤）",
        true,
        None,
        "[{\"rule_id\":201}]",
        READ_ID
    ),
    route!(
        "POST",
        "/api/v1/namespaces/{namespace_id}/rules",
        "rules",
        "创建限流规则",
        true,
        Some(RULE_BODY),
        r#"{"message":"规则创建成功","rule_id":201}"#,
        CHANGE_ID
    ),
    route!(
        "GET",
        "/api/v1/namespaces/{namespace_id}/matchers",
        "matchers",
        "命名空间的报文匹配器",
        true,
        None,
        "[{\"matcher_id\":301}]",
        READ_ID
    ),
    route!(
        "POST",
        "/api/v1/namespaces/{namespace_id}/matchers",
        "matchers",
        "创建报文匹配器",
        true,
        Some(MATCHER_BODY),
        r#"{"message":"报文匹配器创建成功","matcher_id":301}"#,
        CHANGE_ID
    ),
    route!(
        "POST",
        "/api/v1/namespaces/{namespace_id}/validate",
        "routing",
        "请求能否进入该命名空间（与数据面同一编译结果）",
        true,
        Some(SAMPLE),
        NS_VALIDATE,
        POST_ID
    ),
    // Upstream servers.
    route!(
        "GET",
        "/api/v1/upstream-servers",
        "upstream-servers",
        "上游服务器列表",
        true,
        None,
        "[{\"server_id\":2}]",
        &[]
    ),
    route!(
        "POST",
        "/api/v1/upstream-servers",
        "upstream-servers",
        "创建上游服务器",
        true,
        Some(SERVER_BODY),
        SERVER_CHANGED,
        CHANGE
    ),
    route!(
        "GET",
        "/api/v1/upstream-servers/{server_id}",
        "upstream-servers",
        "上游服务器详情",
        true,
        None,
        SERVER_ITEM,
        READ_ID
    ),
    route!(
        "PUT",
        "/api/v1/upstream-servers/{server_id}",
        "upstream-servers",
        "更新上游服务器",
        true,
        Some(SERVER_BODY),
        SERVER_CHANGED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/upstream-servers/{server_id}",
        "upstream-servers",
        "删除上游服务器",
        true,
        None,
        r#"{"message":"上游服务器删除成功","server_id":2}"#,
        DELETE_ID
    ),
    // Matchers.
    route!(
        "GET",
        "/api/v1/matchers",
        "matchers",
        "报文匹配器列表",
        true,
        None,
        "[{\"matcher_id\":301}]",
        &[]
    ),
    route!(
        "GET",
        "/api/v1/matchers/{matcher_id}",
        "matchers",
        "报文匹配器详情",
        true,
        None,
        MATCHER_ITEM,
        READ_ID
    ),
    route!(
        "PUT",
        "/api/v1/matchers/{matcher_id}",
        "matchers",
        "更新报文匹配器",
        true,
        Some(MATCHER_BODY),
        MATCHER_CHANGED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/matchers/{matcher_id}",
        "matchers",
        "删除报文匹配器",
        true,
        None,
        r#"{"message":"报文匹配器删除成功","matcher_id":301}"#,
        DELETE_ID
    ),
    // Proxy rules.
    route!(
        "GET",
        "/api/v1/proxy-rules",
        "proxy-rules",
        "代理规则列表",
        true,
        None,
        "[{\"rule_id\":12}]",
        &[]
    ),
    route!(
        "POST",
        "/api/v1/proxy-rules",
        "proxy-rules",
        "创建代理规则",
        true,
        Some(PROXY_BODY),
        PROXY_CHANGED,
        CHANGE
    ),
    route!(
        "GET",
        "/api/v1/proxy-rules/{rule_id}",
        "proxy-rules",
        "代理规则详情",
        true,
        None,
        PROXY_ITEM,
        READ_ID
    ),
    route!(
        "PUT",
        "/api/v1/proxy-rules/{rule_id}",
        "proxy-rules",
        "更新代理规则",
        true,
        Some(PROXY_BODY),
        PROXY_CHANGED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/proxy-rules/{rule_id}",
        "proxy-rules",
        "删除代理规则",
        true,
        None,
        r#"{"message":"代理规则删除成功","rule_id":12}"#,
        DELETE_ID
    ),
    // Limit rules.
    route!(
        "GET",
        "/api/v1/rules",
        "rules",
        "限流规则列表（可选 rule_type 过滤）",
        true,
        None,
        "[{\"rule_id\":201}]",
        &[]
    ),
    route!(
        "GET",
        "/api/v1/rules/types",
        "rules",
        "支持的规则类型及字段 schema",
        true,
        None,
        RULE_TYPES,
        &[]
    ),
    route!(
        "GET",
        "/api/v1/rules/{rule_id}",
        "rules",
        "限流规则详情",
        true,
        None,
        RULE_ITEM,
        READ_ID
    ),
    route!(
        "PUT",
        "/api/v1/rules/{rule_id}",
        "rules",
        "更新限流规则",
        true,
        Some(RULE_BODY),
        RULE_CHANGED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/rules/{rule_id}",
        "rules",
        "删除限流规则",
        true,
        None,
        r#"{"message":"规则删除成功","rule_id":201}"#,
        DELETE_ID
    ),
    // Routing.
    route!(
        "POST",
        "/api/v1/route/namespace",
        "routing",
        "请求的目标命名空间与路由（与数据面同一编译结果）",
        true,
        Some(SAMPLE),
        ROUTE_NS,
        POST_ONLY
    ),
    route!(
        "POST",
        "/api/v1/route/validate",
        "routing",
        "逐条匹配器的命中情况（与数据面同一编译结果）",
        true,
        Some(SAMPLE),
        ROUTE_VALIDATE,
        POST_ONLY
    ),
    // Token service, under /api/v1/tokens and at the seed's own paths.
    route!(
        "GET",
        "/api/v1/tokens",
        "tokens",
        "Token 计算服务信息",
        true,
        None,
        TOKEN_INFO,
        &[]
    ),
    route!(
        "POST",
        "/api/v1/tokens/calculate",
        "tokens",
        "计算文本或 messages 的 token 数",
        true,
        Some(TOKEN_CALC_BODY),
        TOKEN_CALC,
        POST_ONLY
    ),
    route!(
        "POST",
        "/api/v1/tokens/batch-calculate",
        "tokens",
        "批量计算 token 数",
        true,
        Some(TOKEN_BATCH_BODY),
        TOKEN_BATCH,
        POST_ONLY
    ),
    route!(
        "GET",
        "/api/v1/tokens/models",
        "tokens",
        "已知模型与编码",
        true,
        None,
        TOKEN_MODELS,
        &[]
    ),
    route!(
        "POST",
        "/api/v1/tokens/download-model",
        "tokens",
        "编码已内置：内置编码返回 200，其余 400",
        true,
        Some(TOKEN_DOWNLOAD_BODY),
        TOKEN_DOWNLOAD,
        POST_ONLY
    ),
    route!(
        "GET",
        "/api/v1/tokens/health",
        "tokens",
        "Token 服务健康",
        true,
        None,
        TOKEN_HEALTH,
        &[]
    ),
    route!(
        "GET",
        "/",
        "tokens",
        "Token 计算服务信息（种子路径）",
        true,
        None,
        TOKEN_INFO,
        &[]
    ),
    route!(
        "POST",
        "/calculate",
        "tokens",
        "同 /api/v1/tokens/calculate（种子路径）",
        true,
        Some(TOKEN_CALC_BODY),
        TOKEN_CALC,
        POST_ONLY
    ),
    route!(
        "POST",
        "/batch-calculate",
        "tokens",
        "同 /api/v1/tokens/batch-calculate（种子路径）",
        true,
        Some(TOKEN_BATCH_BODY),
        TOKEN_BATCH,
        POST_ONLY
    ),
    route!(
        "GET",
        "/models",
        "tokens",
        "同 /api/v1/tokens/models（种子路径）",
        true,
        None,
        TOKEN_MODELS,
        &[]
    ),
    route!(
        "POST",
        "/download-model",
        "tokens",
        "同 /api/v1/tokens/download-model（种子路径）",
        true,
        Some(TOKEN_DOWNLOAD_BODY),
        TOKEN_DOWNLOAD,
        POST_ONLY
    ),
    // Config center: cache, batches, namespace route, nginx configs.
    route!(
        "POST",
        "/sync",
        "system",
        "把存储 (MySQL) 中的配置同步到 Redis 缓存",
        true,
        None,
        r#"{"message":"数据同步成功","revision":7}"#,
        &[400, 503]
    ),
    route!(
        "POST",
        "/preload/{namespace_id}",
        "system",
        "预加载一个命名空间的数据到 Redis 缓存",
        true,
        None,
        r#"{"message":"命名空间 1 数据预加载完成"}"#,
        &[400, 404, 503]
    ),
    route!(
        "GET",
        "/cache/stats",
        "system",
        "缓存统计（Redis 配置缓存）",
        true,
        None,
        CACHE_STATS,
        &[503]
    ),
    route!(
        "POST",
        "/namespaces/batch",
        "namespaces",
        "批量获取命名空间",
        true,
        Some(NS_BATCH_BODY),
        NS_BATCH,
        POST_ONLY
    ),
    route!(
        "POST",
        "/batch-dual-write",
        "system",
        "批量变更：一个事务，全部成功或全部不执行",
        true,
        Some(DUAL_WRITE_BODY),
        DUAL_WRITE,
        &[400, 404, 409, 413, 415, 503]
    ),
    route!(
        "GET",
        "/api/v1/namespaces/{namespace_id}/route",
        "namespaces",
        "命名空间路由规则（前缀路由）",
        true,
        None,
        NS_ROUTE,
        READ_ID
    ),
    route!(
        "POST",
        "/api/v1/namespaces/{namespace_id}/route",
        "namespaces",
        "保存命名空间路由规则",
        true,
        Some(NS_ROUTE_BODY),
        NS_ROUTE_SAVED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/namespaces/{namespace_id}/route",
        "namespaces",
        "删除命名空间路由规则",
        true,
        None,
        r#"{"message":"命名空间路由规则删除成功","namespace_id":1}"#,
        DELETE_ID
    ),
    route!(
        "GET",
        "/api/v1/nginx-configs",
        "nginx-configs",
        "网关设置片段列表（可选 config_type 过滤）",
        true,
        None,
        "[{\"config_id\":11}]",
        &[]
    ),
    route!(
        "POST",
        "/api/v1/nginx-configs",
        "nginx-configs",
        "创建设置片段（client_max_body_size, proxy_connect_timeout, proxy_read_timeout, keepalive_timeout）",
        true,
        Some(NGINX_BODY),
        r#"{"message":"nginx配置创建成功","config_id":11,"config":{"config_id":11}}"#,
        CHANGE
    ),
    route!(
        "GET",
        "/api/v1/nginx-configs/{config_id}",
        "nginx-configs",
        "设置片段详情（数字 ID）；给一个类型名（如 http）则列出该 config_type 的片段",
        true,
        None,
        NGINX_ITEM,
        READ_ID
    ),
    route!(
        "PUT",
        "/api/v1/nginx-configs/{config_id}",
        "nginx-configs",
        "更新设置片段",
        true,
        Some(NGINX_BODY),
        NGINX_CHANGED,
        CHANGE_ID
    ),
    route!(
        "DELETE",
        "/api/v1/nginx-configs/{config_id}",
        "nginx-configs",
        "删除设置片段",
        true,
        None,
        r#"{"message":"nginx配置删除成功","config_id":11}"#,
        READ_ID
    ),
];

/// What a request path matches in [`ROUTES`].
pub enum Lookup {
    Found(&'static Route),
    /// The path exists, not with this method.
    WrongMethod,
    NotFound,
}

/// Whether a path segment fits template segment `t`: `{config_id}` takes a
/// numeric id or a `config_type` word (seed 000 serves both at one path;
/// PUT/DELETE answer 404 for a word), other `{...}` segments a numeric id.
fn segment_fits(t: &str, p: &str) -> bool {
    match t {
        ID_OR_TYPE => {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        _ if t.starts_with('{') => p.parse::<u64>().is_ok(),
        _ => t == p,
    }
}

/// The path parameter that is an id or a type word.
const ID_OR_TYPE: &str = "{config_id}";

/// Whether `path` fits `template` (`{...}` segments take a numeric id).
fn fits(template: &str, path: &str) -> bool {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| segment_fits(t, p))
}

/// Finds the route of `method path`.
pub fn lookup(method: &str, path: &str) -> Lookup {
    let mut path_known = false;
    for r in ROUTES {
        if fits(r.path, path) {
            if r.method == method {
                return Lookup::Found(r);
            }
            path_known = true;
        }
    }
    if path_known {
        Lookup::WrongMethod
    } else {
        Lookup::NotFound
    }
}

/// A JSON schema inferred from an example: types of every property, nested.
fn schema_of(v: &Value) -> Value {
    match v {
        Value::Null => json!({"nullable": true}),
        Value::Bool(_) => json!({"type": "boolean"}),
        Value::Number(n) if n.is_f64() => json!({"type": "number"}),
        Value::Number(_) => json!({"type": "integer"}),
        Value::String(_) => json!({"type": "string"}),
        Value::Array(items) => json!({
            "type": "array",
            "items": items.first().map_or_else(|| json!({}), schema_of),
        }),
        Value::Object(m) => {
            let props: Map<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), schema_of(v))).collect();
            json!({"type": "object", "properties": props, "additionalProperties": true})
        }
    }
}

fn example(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn status_text(s: u16) -> &'static str {
    match s {
        200 => "成功",
        400 => "请求无效（detail 指明字段）",
        401 => "未授权: 需要有效的管理令牌",
        404 => "资源不存在",
        409 => "冲突: 重复的编码/名称，或仍被引用",
        413 => "请求体过大",
        415 => "请求体必须是 JSON",
        503 => "配置存储或 Redis 缓存不可用（当前配置继续生效，变更未保存）",
        _ => "",
    }
}

/// Body fields a create refuses to go without (`缺少必要字段: ...`).
fn required(r: &Route) -> &'static [&'static str] {
    match (r.method, r.path) {
        ("POST", "/api/v1/namespaces") => &["namespace_name", "namespace_code"],
        ("POST", "/api/v1/upstream-servers") => &["server_name", "server_address", "server_port"],
        ("POST", "/api/v1/namespaces/{namespace_id}/matchers") => &["matcher_type"],
        ("POST", "/api/v1/namespaces/{namespace_id}/rules") => &["rule_name", "rule_type"],
        ("POST", "/api/v1/proxy-rules") => &["upstream_server_id"],
        ("POST", "/api/v1/nginx-configs") => &["config_type", "config_name", "config_content"],
        ("POST", "/api/v1/tokens/batch-calculate" | "/batch-calculate") => &["texts"],
        ("POST", "/api/v1/tokens/download-model" | "/download-model") => &["model_name"],
        _ => &[],
    }
}

/// The statuses `r` may answer.
pub fn statuses(r: &Route) -> Vec<u16> {
    let mut s = vec![200];
    if r.auth {
        s.push(401);
    }
    s.extend_from_slice(r.errors);
    s
}

/// The OpenAPI 3 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut responses = Map::new();
        for s in statuses(r) {
            let content = if s == 200 {
                let ex = example(r.response);
                json!({"application/json": {"schema": schema_of(&ex), "example": ex}})
            } else {
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}})
            };
            responses.insert(
                s.to_string(),
                json!({"description": status_text(s), "content": content}),
            );
        }
        let params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                if name == "config_id" {
                    return json!({"name": name, "in": "path", "required": true,
                       "description": "numeric config_id, or (GET) a config_type word",
                       "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"}});
                }
                json!({"name": name, "in": "path", "required": true,
                       "schema": {"type": "integer", "format": "int64", "minimum": 0}})
            })
            .collect();
        let mut op = json!({
            "tags": [r.tag],
            "summary": r.summary,
            "operationId": format!("{} {}", r.method.to_lowercase(), r.path),
            "parameters": params,
            "responses": responses,
        });
        if !r.auth {
            op["security"] = json!([]);
        }
        if r.path == "/api/v1/nginx-configs" && r.method == "GET" {
            if let Some(p) = op["parameters"].as_array_mut() {
                p.push(
                    json!({"name": "config_type", "in": "query", "required": false,
                              "schema": {"type": "string"}}),
                );
            }
        }
        if r.path.ends_with("/rules") && r.method == "GET" || r.path == "/api/v1/rules" {
            if let Some(p) = op["parameters"].as_array_mut() {
                p.push(
                    json!({"name": "rule_type", "in": "query", "required": false,
                              "schema": {"type": "string"}}),
                );
            }
        }
        if let Some(body) = r.body {
            let ex = example(body);
            let mut schema = schema_of(&ex);
            if !required(r).is_empty() {
                schema["required"] = json!(required(r));
            }
            op["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema, "example": ex}},
            });
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Sluice config center (admin API)",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Seed 000 admin API. Errors are {\"detail\": \"...\"}.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["detail"],
                                  "properties": {"detail": {"type": "string"}}}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_json_and_paths_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {}", r.method, r.path);
            assert!(
                serde_json::from_str::<Value>(r.response).is_ok(),
                "{}",
                r.path
            );
            if let Some(b) = r.body {
                assert!(serde_json::from_str::<Value>(b).is_ok(), "{}", r.path);
            }
        }
        assert!(matches!(
            lookup("GET", "/api/v1/namespaces/3"),
            Lookup::Found(_)
        ));
        assert!(matches!(
            lookup("GET", "/api/v1/namespaces/x"),
            Lookup::NotFound
        ));
        assert!(matches!(
            lookup("PATCH", "/api/v1/namespaces/3"),
            Lookup::WrongMethod
        ));
        assert!(matches!(
            lookup("GET", "/api/v1/rules/types/"),
            Lookup::Found(_)
        ));
    }
}
