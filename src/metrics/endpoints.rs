//! The metrics endpoints, answered the same on the proxy listener
//! (`src/proxy/endpoints.rs`) and on the dedicated `metrics.listen`
//! listener ([`MetricsApp`]): `GET /metrics` and `GET /metrics/summary`
//! need the metrics token, `GET /metrics/ui` is the page, `GET /stats` the
//! request figures.

use super::metrics;
use crate::state::{SharedSnapshot, Snapshot};
use async_trait::async_trait;
use http::Response;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use subtle::ConstantTimeEq;

/// A complete answer of a metrics endpoint.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// Answers `path` when it is a metrics endpoint and `metrics.token` is set
/// (none otherwise). `authorization` is the request's header value.
pub fn answer(rt: &Snapshot, path: &str, authorization: Option<&str>) -> Option<Answer> {
    let token = rt.config.metrics.token.as_ref()?;
    let json = |status: u16, v: serde_json::Value| Answer {
        status,
        content_type: "application/json",
        body: v.to_string().into_bytes(),
        headers: Vec::new(),
    };
    match path {
        "/stats" => return Some(json(200, super::summary::gateway_stats())),
        "/metrics/ui" => {
            // The page itself holds no data; it asks for the token.
            return Some(Answer {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: super::ui::PAGE.as_bytes().to_vec(),
                headers: vec![
                    ("content-security-policy", super::ui::CSP.to_string()),
                    ("cache-control", "no-store".to_string()),
                ],
            });
        }
        "/metrics" | "/metrics/summary" => {}
        _ => return None,
    }
    let presented = authorization
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(presented.as_bytes().ct_eq(token.expose().as_bytes())) {
        let mut a = json(
            401,
            serde_json::json!({"error": {"code": "unauthorized", "message": "invalid metrics token", "type": "authentication_error"}}),
        );
        a.headers.push(("www-authenticate", "Bearer".to_string()));
        return Some(a);
    }
    Some(if path == "/metrics" {
        Answer {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: metrics().render(rt).into_bytes(),
            headers: Vec::new(),
        }
    } else {
        json(200, super::summary::summary(rt))
    })
}

/// The dedicated metrics listener (`metrics.listen`): only these endpoints.
pub struct MetricsApp {
    pub runtime: SharedSnapshot,
}

#[async_trait]
impl ServeHttp for MetricsApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let rt = self.runtime.load_full();
        let req = session.req_header();
        let get = req.method == http::Method::GET || req.method == http::Method::HEAD;
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let a = get
            .then(|| answer(&rt, req.uri.path(), auth))
            .flatten()
            .unwrap_or_else(|| Answer {
                status: 404,
                content_type: "application/json",
                body: br#"{"error":{"code":"not_found","message":"metrics endpoints: /metrics, /metrics/summary, /metrics/ui, /stats","type":"invalid_request_error"}}"#.to_vec(),
                headers: Vec::new(),
            });
        let len = a.body.len();
        let mut resp = Response::new(a.body);
        *resp.status_mut() = http::StatusCode::from_u16(a.status).unwrap_or(http::StatusCode::OK);
        let h = resp.headers_mut();
        h.insert(
            "content-type",
            http::HeaderValue::from_static(a.content_type),
        );
        h.insert("content-length", http::HeaderValue::from(len));
        for (name, value) in a.headers {
            if let Ok(v) = http::HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}
