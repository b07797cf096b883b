//! The admin (config-center) service on `listen.admin`, a separate Pingora
//! service. It authenticates every request with an admin token (constant
//! time) except `GET /health` and `GET /openapi.json` (and every `GET` when
//! `admin.auth_reads` is `false`; changes always need a token), and answers
//! errors as `{"detail": "..."}`.
//!
//! Requests are dispatched by the route table ([`routes::ROUTES`]): each
//! entry names its handler, whose typed request body ([`api`]) is decoded
//! here and whose typed answer is encoded here; `GET /openapi.json` is
//! generated from the same table and types ([`openapi`]). Every change is
//! validated, compiled, persisted and swapped in as a whole ([`center`]),
//! recorded as a revision with its audit entries, made by the caller the
//! token names. The console's assets are served at `/ui` ([`console`]).

pub mod api;
pub mod center;
pub mod console;
pub mod openapi;
pub mod route;
pub mod routes;

use crate::state::SharedSnapshot;
use crate::store::config_file::Entities;
use async_trait::async_trait;
use center::ConfigCenter;
use http::Response;
use route::{Call, Lookup};
pub use routes::ROUTES;

use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::{json, Value};
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
    runtime: SharedSnapshot,
    center: Arc<ConfigCenter>,
}

impl AdminApp {
    /// An admin app whose changes apply to `runtime` but are not persisted
    /// (the entities start as the runtime's config has them).
    pub fn new(runtime: SharedSnapshot) -> Self {
        let config = runtime.load().config.clone();
        let entities = Entities::from_config(&config);
        let center = ConfigCenter::new(runtime.clone(), config, None, None, entities);
        AdminApp::with_center(runtime, Arc::new(center))
    }

    /// An admin app over `center` (which applies to `runtime`).
    pub fn with_center(runtime: SharedSnapshot, center: Arc<ConfigCenter>) -> Self {
        AdminApp { center, runtime }
    }

    /// Who the request acts as: an admin token's or an admin user's name.
    fn actor(&self, session: &ServerSession) -> Option<String> {
        let header = session
            .req_header()
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.runtime.load().admin_actor(header)
    }

    /// Serves one authorized request with route `r`: its body (when it
    /// takes one) read here, decoded and answered by its operation.
    async fn serve(
        &self,
        session: &mut ServerSession,
        r: &'static route::Route,
        param: Option<&str>,
        actor: &str,
    ) -> Result<Value, ApiError> {
        let body = if r.op.takes_body() {
            Some(body_value(session).await?)
        } else {
            None
        };
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        // Checked before the change: a bad wait changes nothing.
        let wait = if r.method == "GET" {
            None
        } else {
            fleet_wait(&query)?
        };
        let changed = std::sync::atomic::AtomicBool::new(false);
        let client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let call = Call {
            center: &self.center,
            param,
            query: &query,
            changed: &changed,
            actor,
            client: &client,
        };
        let mut answer = r.op.call(call, body).await?;
        // A change is accepted whatever else exists yet; what it leaves
        // that can never take effect is said with it.
        if changed.into_inner() {
            if let Value::Object(map) = &mut answer {
                map.insert("warnings".into(), json!(self.center.warnings()));
            }
            if let Some(within) = wait {
                let revision = crate::store::status::status().revision();
                let applied = crate::fleet::wait_applied(revision, within).await;
                if let Value::Object(map) = &mut answer {
                    map.insert("fleet".into(), json!(applied));
                }
            }
        }
        Ok(answer)
    }
}

/// `?wait=fleet[&timeout_ms=N]` of a change: how long to wait for the
/// fleet (None: no wait asked).
fn fleet_wait(query: &str) -> Result<Option<std::time::Duration>, ApiError> {
    let param = |name| sluice_filters::facts::query_param(query, name).filter(|v| !v.is_empty());
    let timeout = match param("timeout_ms") {
        None => 5_000,
        Some(t) => match t.parse::<u64>() {
            Ok(ms) if (1..=60_000).contains(&ms) => ms,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "timeout_ms must be a whole number of milliseconds from 1 to 60000, not {t:?}"
                )))
            }
        },
    };
    match param("wait").as_deref() {
        None => Ok(None),
        Some("fleet") => Ok(Some(std::time::Duration::from_millis(timeout))),
        Some(other) => Err(ApiError::bad_request(format!(
            "wait must be \"fleet\", not {other:?}"
        ))),
    }
}

/// The JSON body of a POST/PUT (decoded into the route's type by its
/// operation): 415
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

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let _in_flight = crate::lifecycle::InFlight::enter();
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        if console::owns(&path) {
            let tag = session
                .req_header()
                .headers
                .get("if-none-match")
                .and_then(|v| v.to_str().ok());
            let answer = console::serve(&method, &path, tag);
            settle_body(session).await;
            return answer;
        }
        let found = route::lookup(&ROUTES, method.as_str(), &path);
        let needs_auth = match &found {
            Lookup::Found(r, _) => r.auth,
            _ => true,
        };
        let actor = self.actor(session);
        if needs_auth && actor.is_none() {
            let open_read = method == http::Method::GET
                && self.runtime.load().config.admin.auth_reads == Some(false);
            if !open_read {
                return respond(401, json!({"detail": "未授权: 需要有效的管理令牌"}));
            }
        }
        let actor = actor.unwrap_or_else(|| "anonymous".into());
        let result = match found {
            Lookup::NotFound => Err(ApiError::not_found()),
            Lookup::WrongMethod => Err(ApiError::new(405, "Method Not Allowed")),
            Lookup::Found(r, param) => self.serve(session, r, param.as_deref(), &actor).await,
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
