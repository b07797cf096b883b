//! The admin (config-center) service on `listen.admin`, a separate Pingora
//! service. It authenticates every request with an admin token (constant
//! time) except `GET /health` (and every `GET` when `admin.auth_reads` is
//! `false`), and answers in seed 000's shapes
//! (`{"detail": "..."}` for errors). This first cut serves `GET /health`
//! and `GET /api/v1/status`; the CRUD resources follow in the config-center
//! issue and answer 404 `{"detail":"资源不存在"}` until then.

use crate::state::SharedRuntime;
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;
use subtle::ConstantTimeEq;

/// The admin HTTP app.
pub struct AdminApp {
    runtime: SharedRuntime,
}

impl AdminApp {
    pub fn new(runtime: SharedRuntime) -> Self {
        AdminApp { runtime }
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let presented = session
            .req_header()
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let rt = self.runtime.load();
        let mut ok = false;
        for token in &rt.config.admin.tokens {
            ok |= bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes()));
        }
        ok && !presented.is_empty()
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
    json!({"status": "healthy", "storage": {"file": "healthy"}, "timestamp": now})
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        if method == http::Method::GET && path == "/health" {
            return respond(200, status_body());
        }
        let open_read = method == http::Method::GET
            && self.runtime.load().config.admin.auth_reads == Some(false);
        if !open_read && !self.authorized(session) {
            return respond(401, json!({"detail": "未授权: 需要有效的管理令牌"}));
        }
        match (method.as_str(), path.as_str()) {
            ("GET", "/api/v1/status") => respond(200, status_body()),
            _ => respond(404, json!({"detail": "资源不存在"})),
        }
    }
}
