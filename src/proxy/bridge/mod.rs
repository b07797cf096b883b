//! The Bridge's HTTP side on the proxy listener (when `bridge.enabled`),
//! answered before admission (`crate::bridge` owns the logic):
//!
//! | path under `/internal/v1/bridge` | who | does |
//! | --- | --- | --- |
//! | `POST /tunnel` | agent token | opens the agent's tunnel (NDJSON stream) |
//! | `POST /tunnel/messages` | agent token | the agent's progress, output, results |
//! | `POST /agent-token` | admin token or a `bridge.token_issuers` key | issues or resets an agent token |
//! | `GET /agents`, `GET /agents/{id}/tools` | internal caller | listings |
//! | `POST /invoke`, `POST /cancel` | internal caller | run and stop a tool |
//! | `GET /events` | internal caller | lifecycle events (SSE, `Last-Event-ID`) |
//!
//! and `/internal/v1/mcp`, the same tools over MCP (`crate::bridge::mcp`).
//! This file routes, authenticates and shapes errors; `tunnel.rs` is the
//! agents' side, `calls.rs` invocations (with their limits, access log and
//! trace), `events.rs` the event stream, `mcp.rs` the MCP server.
//! An internal caller is any credential the internal channel takes
//! (API key, user token, external JWT, signed request).

mod calls;
mod events;
mod mcp;
mod tunnel;

pub use calls::{access, admit_call, last_event, release, start, start_trace};
use calls::{cancel, invoke};
use events::events;
pub use tunnel::CENTER;
use tunnel::{agent_token, messages, tunnel};

use super::admission::{read_body, Headers};
use super::ctx::RequestCtx;
use super::reply;
use crate::bridge::hub::hub;
use crate::decision;
use crate::error::GatewayError;
use crate::identity::Caller;
use crate::state::Snapshot;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Where the Bridge API lives.
pub const PREFIX: &str = "/internal/v1/bridge/";
/// Where the MCP server lives.
pub const MCP_PATH: &str = "/internal/v1/mcp";

/// A Bridge error in the internal channel's shape, with its status.
pub struct Failure {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub source: &'static str,
}

impl Failure {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Failure {
        let source = match status {
            502 => "upstream",
            500 | 503 | 504 => "gateway",
            _ => "client",
        };
        Failure {
            status,
            code,
            message: message.into(),
            source,
        }
    }
}

impl From<GatewayError> for Failure {
    fn from(e: GatewayError) -> Failure {
        Failure {
            status: e.status(),
            code: e.code(),
            message: e.to_string(),
            source: e.source(),
        }
    }
}

async fn fail(session: &mut Session, f: Failure, rid: &str) -> Result<()> {
    if !session.as_downstream_mut().is_body_done() {
        session.set_keepalive(None);
    }
    let body = crate::error::shape_of(f.code, &f.message, f.status, f.source, rid);
    let extra = if f.status == 401 {
        vec![("www-authenticate", "Bearer".to_string())]
    } else {
        Vec::new()
    };
    reply::send(session, f.status, "application/json", body, rid, &extra).await
}

/// Answers a request under [`PREFIX`] or at [`MCP_PATH`].
pub async fn serve(session: &mut Session, ctx: &RequestCtx, rt: &Snapshot) -> Result<()> {
    let rid = ctx.request_id.clone();
    let outcome = route(session, rt, &rid).await;
    match outcome {
        Ok(()) => Ok(()),
        Err(f) => fail(session, f, &rid).await,
    }
}

async fn route(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let req = session.req_header();
    let method = req.method.as_str().to_string();
    let path = req.uri.path().to_string();
    if path == MCP_PATH {
        return mcp_http(session, rt, rid, &method).await;
    }
    let rest = path.strip_prefix(PREFIX).unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').collect();
    let allowed = match segments.as_slice() {
        ["tunnel"] | ["tunnel", "messages"] | ["agent-token"] | ["invoke"] | ["cancel"] => "POST",
        ["agents"] | ["agents", _, "tools"] | ["events"] => "GET",
        _ => {
            return Err(Failure::new(
                404,
                "not_found",
                format!("no Bridge endpoint {path}"),
            ))
        }
    };
    if method != allowed {
        return Err(Failure::new(
            405,
            "method_not_allowed",
            format!("{path} takes {allowed}"),
        ));
    }
    match segments.as_slice() {
        ["tunnel"] => tunnel(session, rt, rid).await,
        ["tunnel", "messages"] => messages(session, rt, rid).await,
        ["agent-token"] => agent_token(session, rt, rid).await,
        ["agents"] => {
            client(session, rt, Bytes::new()).await?;
            let agents: Vec<Value> = hub()
                .agents()
                .iter()
                .map(|a| json!({"id": a.id, "name": a.name, "status": status(a.online)}))
                .collect();
            ok(session, &json!({"agents": agents}), rid).await
        }
        ["agents", id, "tools"] => {
            let id = id.to_string();
            client(session, rt, Bytes::new()).await?;
            let a = hub()
                .agent(&id)
                .ok_or_else(|| Failure::new(404, "agent_not_found", format!("no agent {id:?}")))?;
            let tools = serde_json::to_value(&*a.tools).unwrap_or_default();
            ok(
                session,
                &json!({"agent_id": a.id, "status": status(a.online), "tools": tools}),
                rid,
            )
            .await
        }
        ["invoke"] => invoke(session, rt, rid).await,
        ["cancel"] => cancel(session, rt, rid).await,
        _ => events(session, rt, rid).await,
    }
}

fn status(online: bool) -> &'static str {
    if online {
        "online"
    } else {
        "offline"
    }
}

async fn ok(session: &mut Session, body: &Value, rid: &str) -> Result<(), Failure> {
    reply::json(session, 200, body, rid)
        .await
        .map_err(|_| Failure::new(500, "internal_error", "could not answer"))
}

async fn body_of(session: &mut Session, rt: &Snapshot, limit: usize) -> Result<Bytes, Failure> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(rt.config.clients.body_timeout_ms);
    Ok(read_body(session, limit, deadline).await?.0)
}

/// A JSON body of type `T`, whatever its declared Content-Type.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Failure> {
    if body.is_empty() {
        return Err(Failure::new(
            400,
            "invalid_request",
            "a JSON body is required",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let at = if at == "." {
            String::new()
        } else {
            format!("{at}: ")
        };
        Failure::new(400, "invalid_request", format!("{at}{}", e.inner()))
    })
}

/// Authenticates an internal caller (`body`: what a signed request signed).
async fn client(session: &Session, rt: &Snapshot, body: Bytes) -> Result<Caller, Failure> {
    let req = session.req_header();
    let caller = decision::authenticate(rt, &Headers(&req.headers))?;
    let signed = decision::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &Headers(&req.headers),
        body,
    };
    let nonce = decision::verify_signature(rt, caller.key, &signed, crate::clock::unix_secs())?;
    if let (Some(nonce), Some(k)) = (nonce, caller.key) {
        super::admission::nonce_once(rt, k, &nonce).await?;
    }
    Ok(caller)
}

/// The header of an SSE answer.
pub async fn sse_header(session: &mut Session, rid: &str) -> Result<()> {
    let mut header = ResponseHeader::build(200, Some(4))?;
    header.insert_header("content-type", "text/event-stream")?;
    header.insert_header("cache-control", "no-cache")?;
    header.insert_header("x-request-id", rid)?;
    if session.req_header().version != http::Version::HTTP_2 {
        header.insert_header("transfer-encoding", "chunked")?;
    }
    super::compression::off(session);
    session.write_response_header(Box::new(header), false).await
}

async fn mcp_http(
    session: &mut Session,
    rt: &Snapshot,
    rid: &str,
    method: &str,
) -> Result<(), Failure> {
    match method {
        "POST" => {}
        "DELETE" => {
            client(session, rt, Bytes::new()).await?;
            return ok(session, &json!({}), rid).await;
        }
        _ => {
            return Err(Failure::new(
                405,
                "method_not_allowed",
                "the MCP endpoint takes POST (no server-initiated stream)",
            ))
        }
    }
    let body = body_of(session, rt, rt.config.limits.max_body_bytes).await?;
    let caller = client(session, rt, body.clone()).await?;
    mcp::serve(session, rt, rid, &body, &caller).await
}
