//! Invocations for clients: `POST /bridge/invoke` (JSON or streamed),
//! `POST /bridge/cancel`, and what every invocation request goes through
//! (the namespace's rules, the access log, its trace span), shared with
//! MCP's `tools/call`.

use super::*;
use crate::bridge::hub::{error_data, hub, InvEvent, Invocation, InvokeError};
use sluice_filters::limits::plan::Reservation;

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
    let granted = super::super::limits::admit(
        rt,
        &super::super::limits::LimitInput {
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
    let outcome = match hub().invocation(agent, req_id).map(|i| i.ended_as()) {
        None => "refused",
        Some(Some("result")) => "ok",
        Some(Some("cancelled")) => "cancelled",
        Some(Some(_)) => "error",
        Some(None) => "running",
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
        super::super::limits::settle(rt, &r.into_settlement(0)).await;
    }
}

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

pub(super) fn empty_object() -> Value {
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

pub(super) async fn invoke(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
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

pub(super) async fn invoke_held(
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
pub(super) fn failure_of(data: &Value) -> Failure {
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
    let mut rx = match inv.end_or_live() {
        Ok(end) => return end,
        Err(rx) => rx,
    };
    loop {
        match rx.recv().await {
            Ok(e) if e.is_terminal() => return e,
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(_) => return lagged(),
        }
    }
}

pub(super) fn lagged() -> InvEvent {
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
pub(super) async fn stream_invocation(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelAsk {
    req_id: String,
    agent_id: String,
    #[serde(default)]
    reason: Option<String>,
}

pub(super) async fn cancel(session: &mut Session, rt: &Snapshot, rid: &str) -> Result<(), Failure> {
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
