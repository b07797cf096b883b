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
//! An internal caller is any credential the internal channel takes
//! (API key, user token, external JWT, signed request).

use super::admission::{read_body, Headers};
use super::ctx::RequestCtx;
use super::reply;
use crate::bridge::hub::{error_data, hub, InvEvent, Invocation, InvokeError};
use crate::bridge::tokens;
use crate::bridge::wire::{Batch, Down, Hello};
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
use sluice_filters::limits::plan::Reservation;
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
    if method != allowed && !(allowed == "GET" && method == "HEAD") {
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

/// Runs the rate and concurrency rules of the caller's namespace for one
/// invocation (the namespace as matchers, bindings and `channel_header`
/// decide it for this request); what it holds is given back with
/// [`release`] when the invocation ends.
pub async fn admit_call(
    session: &Session,
    rt: &Snapshot,
    caller: &Caller,
    body: &Bytes,
    parsed: Option<&Value>,
    rid: &str,
) -> Result<(usize, Option<Reservation>), Failure> {
    let req = session.req_header();
    let headers = Headers(&req.headers);
    let facts = decision::Request {
        method: req.method.as_str(),
        path: req.uri.path(),
        query: req.uri.query(),
        headers: &headers,
        body: body.clone(),
    };
    let namespace = decision::namespace_for(rt, &facts, parsed, caller)?;
    let granted = super::limits::admit(
        rt,
        &super::limits::LimitInput {
            namespace,
            key: caller.key,
            subject: caller.subject.as_deref(),
            route: None,
            pool: None,
            model: None,
            requested_output: None,
            choices: 1,
            body: None,
            body_len: body.len(),
            headers: &headers,
            request_id: rid,
            price: None,
            internal: true,
        },
    )
    .await?;
    Ok((namespace, granted.and_then(|g| g.reservation)))
}

/// The trace of an invocation request, when `tracing` is on and it is
/// sampled (its caller's `traceparent` continued).
pub fn start_trace(session: &Session, rt: &Snapshot) -> Option<Arc<crate::otel::Trace>> {
    let t = rt.config.tracing.as_ref()?;
    let header = session
        .req_header()
        .headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok());
    crate::otel::Trace::start(header, t.sample_ratio)
}

/// Writes the access log line and ends the trace span of an invocation
/// request.
#[allow(clippy::too_many_arguments)]
pub fn access(
    session: &Session,
    rt: &Snapshot,
    rid: &str,
    caller: &Caller,
    namespace: Option<usize>,
    started: std::time::Instant,
    call: (&str, &str, &str),
    answered: &Result<(), Failure>,
    trace: Option<&crate::otel::Trace>,
) {
    use crate::metrics::access_log::{self, BridgeCall, Line};
    use crate::otel::Value as V;
    if !access_log::enabled() && trace.is_none() {
        return;
    }
    let (agent, tool, req_id) = call;
    let (status, error) = match answered {
        Ok(()) => (200, None),
        Err(f) => (f.status, Some(f.code)),
    };
    let outcome = match hub().invocation(agent, req_id).map(|i| i.watch()) {
        None => "refused",
        Some(w) => match w.so_far.iter().find(|e| e.is_terminal()) {
            Some(e) if e.kind == "result" => "ok",
            Some(e) if e.kind == "cancelled" => "cancelled",
            Some(_) => "error",
            None => "running",
        },
    };
    if let Some(t) = trace {
        let mut attrs = vec![
            ("gen_ai.operation.name", V::Str("execute_tool".into())),
            ("gen_ai.tool.name", V::Str(tool.into())),
            ("sluice.bridge.agent", V::Str(agent.into())),
            ("sluice.bridge.req_id", V::Str(req_id.into())),
            ("sluice.bridge.outcome", V::Str(outcome.into())),
            ("http.response.status_code", V::Int(i64::from(status))),
            ("sluice.trace_id", V::Str(rid.into())),
        ];
        if let Some(code) = error {
            attrs.push(("sluice.error", V::Str(code.into())));
        }
        let failed = status >= 500 || !matches!(outcome, "ok" | "running");
        t.finish(format!("execute_tool {tool}"), attrs, failed);
    }
    if !access_log::enabled() {
        return;
    }
    let req = session.req_header();
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    access_log::write(&Line {
        ts: access_log::timestamp(std::time::SystemTime::now()),
        trace_id: rid,
        method: req.method.as_str(),
        path: req.uri.path(),
        namespace: namespace.map_or("-", |n| rt.namespaces[n].code.as_str()),
        channel: "internal",
        route: "-",
        key_name: caller.key.map_or("-", |k| rt.keys[k].name.as_str()),
        model: "-",
        upstream: "-",
        provider: "-",
        status,
        error,
        stream: false,
        attempts: 0,
        tokens_in: 0,
        tokens_out: 0,
        cost: 0.0,
        latency_ms: ms,
        gateway_ms: ms,
        upstream_ms: 0.0,
        ttfb_ms: None,
        ttft_ms: None,
        cache: None,
        bridge: Some(BridgeCall {
            agent,
            tool,
            req_id,
            outcome,
        }),
    });
}

/// Gives back what [`admit_call`] held.
pub async fn release(rt: &Snapshot, held: Option<Reservation>) {
    if let Some(r) = held {
        super::limits::settle(rt, &r.into_settlement(0)).await;
    }
}

/// The agent a tunnel request's token opens for, with the token's SHA-256.
fn agent_of(session: &Session, rt: &Snapshot) -> Result<(String, [u8; 32]), Failure> {
    let token = session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let (agent, _version) = tokens::check(&rt.config, token, crate::clock::unix_secs())
        .ok_or_else(|| {
            Failure::new(
                401,
                "unauthorized",
                "a valid agent token (Bearer bat_…) is required",
            )
        })?;
    Ok((agent, tokens::digest(token)))
}

async fn tunnel(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let (agent_id, token) = agent_of(session, rt)?;
    let s = &rt.config.bridge;
    let body = body_of(session, rt, s.max_message_bytes).await?;
    let hello: Hello = parse(&body)?;
    if hello.agent_id != agent_id {
        return Err(Failure::new(
            403,
            "forbidden",
            format!(
                "this token is agent {agent_id:?}'s, not {:?}'s",
                hello.agent_id
            ),
        ));
    }
    let name = hello.name.clone().unwrap_or_else(|| agent_id.clone());
    let mut t = hub()
        .connect(&agent_id, &name, hello.tools, token, s)
        .map_err(|e| match e {
            crate::bridge::hub::ConnectError::Invalid(m) => Failure::new(400, "invalid_request", m),
            crate::bridge::hub::ConnectError::Full => Failure::new(
                503,
                "bridge_full",
                "this instance holds bridge.max_agents agents",
            ),
        })?;
    let broken = |_| Failure::new(500, "internal_error", "could not answer");
    let mut header = ResponseHeader::build(200, Some(4)).map_err(broken)?;
    let _ = header.insert_header("content-type", "application/x-ndjson");
    let _ = header.insert_header("cache-control", "no-cache");
    let _ = header.insert_header("x-request-id", rid);
    if session.req_header().version != http::Version::HTTP_2 {
        let _ = header.insert_header("transfer-encoding", "chunked");
    }
    super::compression::off(session);
    // The tunnel is long-lived: it does not hold the drain up (it ends
    // with a goaway as soon as draining starts).
    session.set_keepalive(None);
    session
        .write_response_header(Box::new(header), false)
        .await
        .map_err(broken)?;
    let welcome = Down::Welcome {
        session: &t.session,
        agent_id: &agent_id,
        ping_ms: s.ping_ms,
    }
    .line();
    if session
        .write_response_body(Some(welcome), false)
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut ping = tokio::time::interval(Duration::from_millis(s.ping_ms));
    ping.tick().await;
    let kick = t.kick.clone();
    let reason = loop {
        // Reading the finished request side waits for the agent's side of
        // the connection to close (Pingora's `read_body_or_idle`): an agent
        // that dies is offline at once, not at the next failed write.
        let downstream = session.as_downstream_mut();
        let frame = tokio::select! {
            f = t.frames.recv() => match f {
                Some(f) => f,
                None => break "closed",
            },
            _ = ping.tick() => Down::Ping.line(),
            r = kick.fired() => break r,
            _ = crate::lifecycle::drain_started() => break "draining",
            _ = downstream.read_body_or_idle(true) => return Ok(()),
        };
        if session
            .write_response_body(Some(frame), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    };
    let bye = Down::Goaway { reason }.line();
    let _ = session.write_response_body(Some(bye), false).await;
    let _ = session.write_response_body(None, true).await;
    drop(t);
    Ok(())
}

async fn messages(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let (agent_id, _) = agent_of(session, rt)?;
    let body = body_of(session, rt, rt.config.bridge.max_message_bytes).await?;
    let batch: Batch = parse(&body)?;
    if !hub().is_live(&agent_id, &batch.session) {
        return Err(Failure::new(
            409,
            "tunnel_closed",
            "this session is not the agent's live tunnel: reconnect",
        ));
    }
    let mut taken = 0usize;
    let total = batch.messages.len();
    for m in batch.messages {
        taken += usize::from(hub().deliver(&agent_id, &batch.session, m));
    }
    ok(
        session,
        &json!({"accepted": taken, "dropped": total - taken}),
        rid,
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenAsk {
    agent_id: String,
    #[serde(default)]
    reset: bool,
}

async fn agent_token(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let auth = session
        .req_header()
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let admin = rt.admin_token_ok(auth);
    let body = body_of(session, rt, 64 << 10).await?;
    if !admin {
        let req = session.req_header();
        let caller = decision::authenticate(rt, &Headers(&req.headers))?;
        let name = caller.key.map(|k| rt.keys[k].name.as_str());
        if !name.is_some_and(|n| rt.config.bridge.token_issuers.iter().any(|i| i == n)) {
            return Err(Failure::new(
                403,
                "forbidden",
                "issuing agent tokens takes the admin token or a key named in bridge.token_issuers",
            ));
        }
        client(session, rt, body.clone()).await?;
    }
    let ask: TokenAsk = parse(&body)?;
    if !crate::bridge::hub::valid_name(&ask.agent_id) {
        return Err(Failure::new(
            400,
            "invalid_request",
            "agent_id: 1 to 128 characters of letters, digits, _ - . /",
        ));
    }
    let Some(center) = CENTER.get() else {
        return Err(Failure::new(
            503,
            "unavailable",
            "the config center is not running",
        ));
    };
    let (token, sha) = tokens::generate()
        .map_err(|e| Failure::new(500, "internal_error", format!("no random source: {e}")))?;
    let expires_at = crate::clock::unix_secs() + rt.config.bridge.token_ttl_s;
    let version = center
        .issue_agent_token(&ask.agent_id, ask.reset, &sha, expires_at)
        .await
        .map_err(|e| Failure::new(503, "unavailable", e.0))?;
    ok(
        session,
        &json!({
            "agent_id": ask.agent_id,
            "token": token,
            "expires_at": crate::clock::rfc3339(expires_at),
            "version": version,
            "reset": ask.reset,
        }),
        rid,
    )
    .await
}

/// The config center, for issuing agent tokens (set once at start).
pub static CENTER: std::sync::OnceLock<Arc<dyn crate::control::ConfigControl>> =
    std::sync::OnceLock::new();

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeAsk {
    req_id: String,
    agent_id: String,
    tool_name: String,
    #[serde(default = "empty_object")]
    arguments: Value,
    timeout_ms: Option<u64>,
    #[serde(default)]
    stream: bool,
}

fn empty_object() -> Value {
    json!({})
}

/// Starts an invocation for a client (`/bridge/invoke` and MCP's
/// `tools/call` alike).
pub fn start(
    rt: &Snapshot,
    req_id: &str,
    agent_id: &str,
    tool: &str,
    arguments: Value,
    timeout_ms: Option<u64>,
) -> Result<Arc<Invocation>, Failure> {
    let s = &rt.config.bridge;
    if req_id.is_empty() || req_id.len() > 256 {
        return Err(Failure::new(
            400,
            "invalid_request",
            "req_id: 1 to 256 characters",
        ));
    }
    if !arguments.is_object() {
        return Err(Failure::new(
            400,
            "invalid_request",
            "arguments: must be a JSON object",
        ));
    }
    let timeout = timeout_ms.unwrap_or(s.default_timeout_ms);
    if timeout == 0 || timeout > s.max_timeout_ms {
        return Err(Failure::new(
            400,
            "invalid_request",
            format!(
                "timeout_ms: from 1 to {} (bridge.max_timeout_ms)",
                s.max_timeout_ms
            ),
        ));
    }
    // Names a client made up are not label values (no label explosion).
    let refused = |agent: &str, tool: &str| {
        crate::metrics::metrics()
            .f
            .bridge_invocations
            .with_label_values(&[agent, tool, "refused"])
            .inc();
    };
    hub()
        .invoke(req_id, agent_id, tool, arguments, timeout, s)
        .map_err(|e| {
            let f = match e {
                InvokeError::UnknownAgent => {
                    refused("-", "-");
                    return Failure::new(404, "agent_not_found", format!("no agent {agent_id:?}"));
                }
                InvokeError::Offline => Failure::new(
                    503,
                    "agent_offline",
                    format!("agent {agent_id:?} has no live tunnel"),
                ),
                InvokeError::UnknownTool => {
                    refused(agent_id, "-");
                    return Failure::new(
                        404,
                        "tool_not_found",
                        format!("agent {agent_id:?} has no tool {tool:?}"),
                    );
                }
                InvokeError::InvalidArguments(m) => Failure::new(400, "invalid_arguments", m),
                InvokeError::Conflict => {
                    return Failure::new(
                        409,
                        "req_id_conflict",
                        format!("req_id {req_id:?} was used for another call"),
                    )
                }
                InvokeError::Busy => Failure::new(
                    503,
                    "bridge_busy",
                    "this instance runs bridge.max_invocations invocations",
                ),
                InvokeError::Congested => Failure::new(
                    503,
                    "agent_congested",
                    format!("agent {agent_id:?} is not taking more work"),
                ),
            };
            refused(agent_id, tool);
            f
        })
}

async fn invoke(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let body = body_of(session, rt, rt.config.limits.max_body_bytes).await?;
    let caller = client(session, rt, body.clone()).await?;
    let parsed: Value = parse(&body)?;
    let started = std::time::Instant::now();
    let trace = start_trace(session, rt);
    let name = |k: &str| {
        parsed[k]
            .as_str()
            .unwrap_or("-")
            .chars()
            .take(256)
            .collect::<String>()
    };
    let (agent, tool, req_id) = (name("agent_id"), name("tool_name"), name("req_id"));
    let (namespace, answered) =
        match admit_call(session, rt, &caller, &body, Some(&parsed), rid).await {
            Ok((namespace, held)) => {
                let answered = invoke_held(session, rt, rid, &body).await;
                release(rt, held).await;
                (Some(namespace), answered)
            }
            Err(f) => (None, Err(f)),
        };
    let call = (agent.as_str(), tool.as_str(), req_id.as_str());
    access(
        session,
        rt,
        rid,
        &caller,
        namespace,
        started,
        call,
        &answered,
        trace.as_deref(),
    );
    answered
}

async fn invoke_held(
    session: &mut Session,
    rt: &Snapshot,
    rid: &str,
    body: &Bytes,
) -> Result<(), Failure> {
    let ask: InvokeAsk = parse(body)?;
    let inv = start(
        rt,
        &ask.req_id,
        &ask.agent_id,
        &ask.tool_name,
        ask.arguments,
        ask.timeout_ms,
    )?;
    if ask.stream {
        return stream_invocation(session, &inv, rid).await;
    }
    // JSON: wait for the end.
    let last = last_event(&inv).await;
    let base = json!({"req_id": inv.req_id, "agent_id": inv.agent_id, "tool_name": inv.tool});
    match last.kind {
        "result" => {
            let mut out = base;
            out["status"] = "ok".into();
            out["result"] = last.data["result"].clone();
            out["duration_ms"] = last.data["duration_ms"].clone();
            ok(session, &out, rid).await
        }
        "cancelled" => Err(Failure::new(
            409,
            "cancelled",
            format!(
                "the invocation was cancelled: {}",
                last.data["reason"].as_str().unwrap_or("")
            ),
        )),
        _ => Err(failure_of(&last.data)),
    }
}

/// The error event's failure.
fn failure_of(data: &Value) -> Failure {
    let status = data["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(502);
    let code = match data["code"].as_str() {
        Some("invocation_timeout") => "invocation_timeout",
        Some("agent_disconnected") => "agent_disconnected",
        _ => "tool_error",
    };
    let mut f = Failure::new(
        status,
        code,
        data["message"].as_str().unwrap_or("the tool failed"),
    );
    if let Some(s) = data["source"].as_str() {
        f.source = if s == "gateway" {
            "gateway"
        } else {
            "upstream"
        };
    }
    f
}

/// Waits for an invocation's terminal event.
pub async fn last_event(inv: &Invocation) -> InvEvent {
    let w = inv.watch();
    if let Some(e) = w.so_far.iter().find(|e| e.is_terminal()) {
        return e.clone();
    }
    let Some(mut rx) = w.live else {
        return lagged();
    };
    loop {
        match rx.recv().await {
            Ok(e) if e.is_terminal() => return e,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return lagged(),
        }
    }
}

fn lagged() -> InvEvent {
    InvEvent {
        kind: "error",
        data: Arc::new(error_data(
            "internal_error",
            "the invocation's events were lost",
            "gateway",
            500,
        )),
    }
}

/// SSE: the invocation's events as they come, then `end`.
async fn stream_invocation(
    session: &mut Session,
    inv: &Invocation,
    rid: &str,
) -> Result<(), Failure> {
    let broken = |_| Failure::new(500, "internal_error", "could not answer");
    sse_header(session, rid).await.map_err(broken)?;
    let w = inv.watch();
    let base = json!({"req_id": inv.req_id, "agent_id": inv.agent_id, "tool_name": inv.tool});
    let write = |e: &InvEvent| {
        let mut data = (*e.data).clone();
        if let (Some(d), Some(b)) = (data.as_object_mut(), base.as_object()) {
            for (k, v) in b {
                d.insert(k.clone(), v.clone());
            }
        }
        Bytes::from(format!("event: {}\ndata: {}\n\n", e.kind, data))
    };
    let mut done = false;
    for e in &w.so_far {
        done |= e.is_terminal();
        if session
            .write_response_body(Some(write(e)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    if let (false, Some(mut rx)) = (done, w.live) {
        loop {
            let e = match rx.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => InvEvent {
                    kind: "lagged",
                    data: Arc::new(json!({"missed": n})),
                },
                Err(_) => lagged(),
            };
            let end = e.is_terminal();
            if session
                .write_response_body(Some(write(&e)), false)
                .await
                .is_err()
            {
                return Ok(());
            }
            if end {
                break;
            }
        }
    }
    let _ = session
        .write_response_body(Some(Bytes::from_static(b"event: end\ndata: {}\n\n")), false)
        .await;
    let _ = session.write_response_body(None, true).await;
    Ok(())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelAsk {
    req_id: String,
    agent_id: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn cancel(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    let body = body_of(session, rt, 64 << 10).await?;
    client(session, rt, body.clone()).await?;
    let ask: CancelAsk = parse(&body)?;
    let reason = ask.reason.unwrap_or_else(|| "client_cancel".into());
    let reason: String = reason.chars().take(256).collect();
    let was_running = hub()
        .cancel(&ask.agent_id, &ask.req_id, &reason)
        .ok_or_else(|| {
            Failure::new(
                404,
                "invocation_not_found",
                format!("no invocation {:?} of agent {:?}", ask.req_id, ask.agent_id),
            )
        })?;
    ok(
        session,
        &json!({"req_id": ask.req_id, "agent_id": ask.agent_id, "cancelled": was_running,
                "status": if was_running { "cancelled" } else { "already_finished" }}),
        rid,
    )
    .await
}

async fn events(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
    client(session, rt, Bytes::new()).await?;
    let req = session.req_header();
    let query = req.uri.query().unwrap_or("").to_string();
    let agent = sluice_filters::facts::query_param(&query, "agent_id").filter(|a| !a.is_empty());
    let last_id = req
        .headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| sluice_filters::facts::query_param(&query, "last_event_id"));
    let (gap, backlog, mut rx) = hub().events(last_id.as_deref());
    let broken = |_| Failure::new(500, "internal_error", "could not answer");
    sse_header(session, rid).await.map_err(broken)?;
    let wanted =
        |e: &crate::bridge::events::Event| agent.as_deref().is_none_or(|a| a == e.agent_id);
    let line = |e: &crate::bridge::events::Event| {
        let mut data = e.data.clone();
        data["agent_id"] = e.agent_id.clone().into();
        data["at"] =
            crate::clock::rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(e.at_ms))
                .into();
        Bytes::from(format!(
            "id: {}\nevent: {}\ndata: {}\n\n",
            hub().event_id(e),
            e.kind,
            data
        ))
    };
    let mut first = String::from("retry: 1000\n\n");
    if gap {
        first.push_str("event: gap\ndata: {\"message\":\"the Last-Event-ID is not in the retention window: every kept event follows\"}\n\n");
    }
    if session
        .write_response_body(Some(Bytes::from(first)), false)
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut last_seq = 0;
    for e in backlog.iter().filter(|e| wanted(e)) {
        last_seq = e.seq;
        if session
            .write_response_body(Some(line(e)), false)
            .await
            .is_err()
        {
            return Ok(());
        }
    }
    let ping = Duration::from_millis(rt.config.bridge.ping_ms);
    loop {
        let downstream = session.as_downstream_mut();
        let e = tokio::select! {
            e = rx.recv() => e,
            // The client went away.
            _ = downstream.read_body_or_idle(true) => return Ok(()),
            _ = tokio::time::sleep(ping) => {
                if session.write_response_body(Some(Bytes::from_static(b": ping\n\n")), false).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            _ = crate::lifecycle::drain_started() => break,
        };
        match e {
            Ok(e) if e.seq > last_seq && wanted(&e) => {
                if session
                    .write_response_body(Some(line(&e)), false)
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // Resume from the log: the client reconnects with its last id.
                break;
            }
            Err(_) => break,
        }
    }
    let _ = session.write_response_body(None, true).await;
    Ok(())
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
    super::mcp::serve(session, rt, rid, &body, &caller).await
}
