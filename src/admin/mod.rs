//! The admin (config-center) service on `listen.admin`, a separate Pingora
//! service. It authenticates every request with an admin token (constant
//! time) except `GET /health` and `GET /openapi.json` (and every `GET` when
//! `admin.auth_reads` is `false`; changes always need a token), and answers
//! in seed 000's shapes (`{"detail": "..."}` for errors).
//!
//! Resources (seed 000 paths, numeric ids): namespaces, upstream servers,
//! matchers, proxy rules and limit rules; the validate/route endpoints,
//! evaluated by the running runtime's own compiled resolver and router;
//! the token service ([`api`]); statistics, usage and monitoring figures
//! from the data plane (`crate::metrics::summary`). Every change is validated, compiled,
//! persisted and swapped in as a whole ([`center`]). Only the routes of
//! [`ROUTES`] are served, and `GET /openapi.json` is built from that table
//! ([`openapi`]).

mod api;
pub mod center;
pub mod openapi;

use crate::state::SharedRuntime;
use crate::store::config_file::Entities;
use crate::store::status::status;
use async_trait::async_trait;
use center::ConfigCenter;
use http::Response;
use openapi::Lookup;
pub use openapi::ROUTES;

use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Largest admin request body.
const MAX_BODY: usize = 1024 * 1024;

/// An error answer: status and the `detail` text.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(400, detail)
    }

    pub fn not_found() -> Self {
        ApiError::new(404, "资源不存在")
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        ApiError::new(409, detail)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::new(500, format!("服务器内部错误: {detail}"))
    }
}

/// The admin HTTP app.
pub struct AdminApp {
    runtime: SharedRuntime,
    center: Arc<ConfigCenter>,
}

impl AdminApp {
    /// An admin app whose changes apply to `runtime` but are not persisted
    /// (the entities start as the runtime's config has them).
    pub fn new(runtime: SharedRuntime) -> Self {
        let config = runtime.load().config.clone();
        let entities = Entities::from_config(&config);
        let center = ConfigCenter::new(runtime.clone(), config, None, None, entities);
        AdminApp::with_center(runtime, Arc::new(center))
    }

    /// An admin app over `center` (which applies to `runtime`).
    pub fn with_center(runtime: SharedRuntime, center: Arc<ConfigCenter>) -> Self {
        AdminApp { center, runtime }
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let header = session
            .req_header()
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.runtime.load().admin_token_ok(header)
    }

    /// Routes one authorized request to a route listed in [`ROUTES`].
    async fn route(
        &self,
        session: &mut ServerSession,
        method: &str,
        path: &str,
    ) -> Result<Value, ApiError> {
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let segments: Vec<&str> = trimmed.split('/').skip(1).collect();
        let id = |s: &str| s.parse::<u64>().map_err(|_| ApiError::not_found());
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let rule_type = query_param(&query, "rule_type");
        let config_type = query_param(&query, "config_type");
        let c = &self.center;
        let rest: &[&str] = match segments.as_slice() {
            ["api", "v1", rest @ ..] => rest,
            _ => &[],
        };
        match (method, segments.as_slice()) {
            ("GET", ["health"]) => return Ok(status_body()),
            ("POST", ["sync"]) => return api::sync(c).await,
            ("POST", ["preload", n]) => return api::preload(c, id(n)?).await,
            ("GET", ["cache", "stats"]) => return api::cache_stats(c).await,
            ("POST", ["namespaces", "batch"]) => {
                let b = body_value(session).await?;
                return api::namespaces_batch(&c.snapshot(), &b);
            }
            ("POST", ["batch-dual-write"]) => {
                let b = body_value(session).await?;
                return api::batch_dual_write(c, &b).await;
            }
            ("GET", ["openapi.json"]) => return Ok(openapi::document()),
            ("GET", [""]) => return Ok(api::token_service_info()),
            ("POST", ["calculate"]) => {
                return api::calculate(&c.runtime(), body(session).await?).await
            }
            ("POST", ["batch-calculate"]) => {
                return api::batch_calculate(&c.runtime(), body(session).await?).await
            }
            ("GET", ["models"]) => return Ok(api::token_models(&c.runtime())),
            ("POST", ["download-model"]) => {
                return api::download_model(&c.runtime(), body(session).await?).await
            }
            _ => {}
        }
        if let ("GET", ["stats"]) = (method, segments.as_slice()) {
            return Ok(crate::metrics::summary::admin_stats());
        }
        match (method, rest) {
            ("GET", ["status"]) => Ok(status_body()),

            ("GET", ["namespaces", "usage", "overview"]) => {
                Ok(crate::metrics::summary::overview(&c.runtime()))
            }
            ("GET", ["namespaces", n, "usage"]) => {
                crate::metrics::summary::usage(&c.runtime(), id(n)?).ok_or_else(ApiError::not_found)
            }
            ("GET", ["namespaces", n, "monitoring"]) => {
                crate::metrics::summary::monitoring(&c.runtime(), id(n)?)
                    .ok_or_else(ApiError::not_found)
            }

            ("GET", ["namespaces"]) => Ok(api::list_namespaces(&c.snapshot())),
            ("POST", ["namespaces"]) => api::create_namespace(c, body(session).await?).await,
            ("GET", ["namespaces", n]) => api::get_namespace(&c.snapshot(), id(n)?),
            ("PUT", ["namespaces", n]) => {
                let n = id(n)?;
                api::update_namespace(c, n, body(session).await?).await
            }
            ("DELETE", ["namespaces", n]) => api::delete_namespace(c, id(n)?).await,
            ("GET", ["namespaces", n, "rules"]) => {
                api::list_rules(&c.snapshot(), Some(id(n)?), rule_type.as_deref())
            }
            ("POST", ["namespaces", n, "rules"]) => {
                let n = id(n)?;
                api::create_rule(c, n, body(session).await?).await
            }
            ("GET", ["namespaces", n, "matchers"]) => {
                api::list_matchers(&c.snapshot(), Some(id(n)?))
            }
            ("POST", ["namespaces", n, "matchers"]) => {
                let n = id(n)?;
                api::create_matcher(c, n, body(session).await?).await
            }
            ("GET", ["namespaces", n, "route"]) => api::get_namespace_route(&c.snapshot(), id(n)?),
            ("POST", ["namespaces", n, "route"]) => {
                let n = id(n)?;
                api::save_namespace_route(c, n, body(session).await?).await
            }
            ("DELETE", ["namespaces", n, "route"]) => api::delete_namespace_route(c, id(n)?).await,

            ("GET", ["nginx-configs"]) => Ok(api::list_nginx_configs(
                &c.snapshot(),
                config_type.as_deref(),
            )),
            ("POST", ["nginx-configs"]) => api::create_nginx_config(c, body(session).await?).await,
            ("GET", ["nginx-configs", n]) => match n.parse::<u64>() {
                Ok(n) => api::get_nginx_config(&c.snapshot(), n),
                Err(_) => Ok(api::list_nginx_configs(&c.snapshot(), Some(n))),
            },
            ("PUT", ["nginx-configs", n]) => {
                let n = id(n)?;
                api::update_nginx_config(c, n, body(session).await?).await
            }
            ("DELETE", ["nginx-configs", n]) => api::delete_nginx_config(c, id(n)?).await,

            ("POST", ["namespaces", n, "validate"]) => {
                let n = id(n)?;
                let b = body(session).await?;
                api::validate_namespace(&c.runtime(), n, &b)
            }

            ("GET", ["upstream-servers"]) => Ok(api::list_servers(&c.snapshot())),
            ("POST", ["upstream-servers"]) => api::create_server(c, body(session).await?).await,
            ("GET", ["upstream-servers", n]) => api::get_server(&c.snapshot(), id(n)?),
            ("PUT", ["upstream-servers", n]) => {
                let n = id(n)?;
                api::update_server(c, n, body(session).await?).await
            }
            ("DELETE", ["upstream-servers", n]) => api::delete_server(c, id(n)?).await,

            ("GET", ["matchers"]) => api::list_matchers(&c.snapshot(), None),
            ("GET", ["matchers", n]) => api::get_matcher(&c.snapshot(), id(n)?),
            ("PUT", ["matchers", n]) => {
                let n = id(n)?;
                api::update_matcher(c, n, body(session).await?).await
            }
            ("DELETE", ["matchers", n]) => api::delete_matcher(c, id(n)?).await,

            ("GET", ["proxy-rules"]) => Ok(api::list_proxy_rules(&c.snapshot())),
            ("POST", ["proxy-rules"]) => api::create_proxy_rule(c, body(session).await?).await,
            ("GET", ["proxy-rules", n]) => api::get_proxy_rule(&c.snapshot(), id(n)?),
            ("PUT", ["proxy-rules", n]) => {
                let n = id(n)?;
                api::update_proxy_rule(c, n, body(session).await?).await
            }
            ("DELETE", ["proxy-rules", n]) => api::delete_proxy_rule(c, id(n)?).await,

            ("GET", ["rules"]) => api::list_rules(&c.snapshot(), None, rule_type.as_deref()),
            ("GET", ["rules", "types"]) => Ok(api::rule_types()),
            ("GET", ["rules", n]) => api::get_rule(&c.snapshot(), id(n)?),
            ("PUT", ["rules", n]) => {
                let n = id(n)?;
                api::update_rule(c, n, body(session).await?).await
            }
            ("DELETE", ["rules", n]) => api::delete_rule(c, id(n)?).await,

            ("POST", ["route", "namespace"]) => {
                let b = body(session).await?;
                api::route_namespace(&c.runtime(), &b)
            }
            ("POST", ["route", "validate"]) => {
                let b = body(session).await?;
                api::route_validate(&c.runtime(), &b)
            }

            ("GET", ["tokens"]) => Ok(api::token_service_info()),
            ("POST", ["tokens", "calculate"]) => {
                api::calculate(&c.runtime(), body(session).await?).await
            }
            ("POST", ["tokens", "batch-calculate"]) => {
                api::batch_calculate(&c.runtime(), body(session).await?).await
            }
            ("GET", ["tokens", "models"]) => Ok(api::token_models(&c.runtime())),
            ("POST", ["tokens", "download-model"]) => {
                api::download_model(&c.runtime(), body(session).await?).await
            }
            ("GET", ["tokens", "health"]) => Ok(api::token_health()),

            _ => Err(ApiError::internal(format!(
                "route {method} {path} is listed but not served"
            ))),
        }
    }
}

/// The value of query parameter `name` (no percent-decoding: the values
/// asked for are plain words).
fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}

/// The JSON object body of a POST/PUT: 415 unless the content type is
/// JSON, 413 past [`MAX_BODY`], 400 unless it is a JSON object.
async fn body(session: &mut ServerSession) -> Result<Map<String, Value>, ApiError> {
    match body_value(session).await? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request("请求体必须是 JSON 对象")),
    }
}

/// Any JSON body of a POST/PUT (arrays for the batch endpoints): 415
/// unless the content type is JSON, 413 past [`MAX_BODY`], 400 unless JSON.
async fn body_value(session: &mut ServerSession) -> Result<Value, ApiError> {
    let json_type = session
        .req_header()
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if !json_type {
        return Err(ApiError::new(
            415,
            "不支持的媒体类型: 请求体必须是 JSON (Content-Type: application/json)",
        ));
    }
    let mut bytes = Vec::new();
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() > MAX_BODY {
                    return Err(ApiError::new(413, "请求体过大"));
                }
            }
            Ok(None) => break,
            Err(e) => return Err(ApiError::bad_request(format!("无法读取请求体: {e}"))),
        }
    }
    serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| ApiError::bad_request(format!("请求体不是有效的 JSON: {e}")))
}

/// A request body left unread (an error answered before reading it) would
/// be taken for the next request on a reused connection: drain one of
/// acceptable size, otherwise close the connection after this answer.
async fn settle_body(session: &mut ServerSession) {
    if session.is_body_done() {
        return;
    }
    let declared = session
        .req_header()
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let drained =
        declared.is_some_and(|n| n <= MAX_BODY) && session.drain_request_body().await.is_ok();
    if !drained {
        session.set_keepalive(None);
    }
}

fn respond(status: u16, body: serde_json::Value) -> Response<Vec<u8>> {
    let body = body.to_string().into_bytes();
    let len = body.len();
    let mut resp = Response::new(body);
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    h.insert("content-length", http::HeaderValue::from(len));
    resp
}

fn status_body() -> serde_json::Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let st = status();
    let word = if st.healthy() { "healthy" } else { "degraded" };
    json!({"status": word, "storage": st.storage_json(), "revision": st.revision(), "timestamp": now})
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let _in_flight = crate::lifecycle::InFlight::enter();
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        let found = openapi::lookup(method.as_str(), &path);
        let needs_auth = match &found {
            Lookup::Found(r) => r.auth,
            _ => true,
        };
        if needs_auth {
            let open_read = method == http::Method::GET
                && self.runtime.load().config.admin.auth_reads == Some(false);
            if !open_read && !self.authorized(session) {
                return respond(401, json!({"detail": "未授权: 需要有效的管理令牌"}));
            }
        }
        let result = match found {
            Lookup::NotFound => Err(ApiError::not_found()),
            Lookup::WrongMethod => Err(ApiError::new(405, "Method Not Allowed")),
            Lookup::Found(_) => self.route(session, method.as_str(), &path).await,
        };
        settle_body(session).await;
        match result {
            Ok(body) => respond(200, body),
            Err(e) => {
                if e.status >= 500 {
                    log::error!("admin {method} {path}: {}", e.detail);
                }
                respond(e.status, json!({"detail": e.detail}))
            }
        }
    }
}
