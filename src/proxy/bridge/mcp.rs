//! `POST /internal/v1/mcp`: the MCP server's HTTP side (streamable HTTP).
//! `crate::bridge::mcp` decides what a message asks for; this file answers
//! it: JSON for most, an SSE stream for a `tools/call` that asked for
//! progress (progress notifications, then the result). A client that goes
//! away during a call, or sends `notifications/cancelled`, cancels the
//! invocation.

use super::super::reply;
use super::{access, admit_call, last_event, release, sse_header, start, Failure};
use crate::bridge::hub::{hub, InvEvent, Invocation};
use crate::bridge::mcp::{self, Step};
use crate::identity::Caller;
use crate::state::Snapshot;
use bytes::Bytes;
use pingora::proxy::Session;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Calls in progress by (MCP session, JSON-RPC id) → (agent, req_id), for
/// `notifications/cancelled`.
type Calls = Mutex<HashMap<(String, String), (String, String)>>;

fn calls() -> &'static Calls {
    static CALLS: OnceLock<Calls> = OnceLock::new();
    CALLS.get_or_init(Default::default)
}

/// Removes its entry from [`calls`] when the call ends.
struct Registered((String, String));

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut c) = calls().lock() {
            c.remove(&self.0);
        }
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

pub async fn serve(
    session: &mut Session,
    rt: &Snapshot,
    rid: &str,
    body: &Bytes,
    caller: &Caller,
) -> Result<(), Failure> {
    let msg: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {e}")}});
            return send(session, 400, &body, rid, None).await;
        }
    };
    let agents = hub().agents();
    let step = mcp::step(&msg, &agents, env!("CARGO_PKG_VERSION"));
    let presented = session
        .req_header()
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .map(str::to_string);
    match step {
        Step::Reply(v) => {
            // A new session id with the handshake's answer.
            let new_session = (msg["method"] == "initialize")
                .then(|| crate::identity::random_secret("", 32).map(|(s, _)| s).ok())
                .flatten();
            send(session, 200, &v, rid, new_session).await
        }
        Step::Accepted => accepted(session, rid).await,
        Step::Cancel { request_id, reason } => {
            let key = (presented.unwrap_or_default(), request_id.to_string());
            let found = calls().lock().ok().and_then(|c| c.get(&key).cloned());
            if let Some((agent, req_id)) = found {
                let _ = hub().cancel(&agent, &req_id, &reason);
            }
            accepted(session, rid).await
        }
        Step::Call {
            id,
            agent,
            tool,
            arguments,
            progress,
            modern,
        } => {
            // The namespace's rules, as for `/bridge/invoke`.
            let started = std::time::Instant::now();
            let trace = super::start_trace(session, rt);
            let mcp_session = presented.unwrap_or_else(|| rid.to_string());
            let req_id = format!("mcp-{mcp_session}-{id}");
            let (namespace, answered) =
                match admit_call(session, rt, caller, body, Some(&msg), rid).await {
                    Ok((namespace, held)) => {
                        let answered = call(
                            session,
                            rt,
                            rid,
                            mcp_session,
                            id,
                            (&agent, &tool, &req_id),
                            arguments,
                            (progress, modern),
                        )
                        .await;
                        release(rt, held).await;
                        (Some(namespace), answered)
                    }
                    Err(f) => {
                        // A JSON-RPC error answers it; the log keeps the refusal.
                        let m = format!("{}: {}", f.code, f.message);
                        let reply = mcp::error(&id, mcp::INTERNAL, &m);
                        let sent = send(session, 200, &reply, rid, None).await;
                        let who = (agent.as_str(), tool.as_str(), req_id.as_str());
                        access(
                            session,
                            rt,
                            rid,
                            caller,
                            None,
                            started,
                            who,
                            &Err(f),
                            trace.as_deref(),
                        );
                        return sent;
                    }
                };
            let who = (agent.as_str(), tool.as_str(), req_id.as_str());
            access(
                session,
                rt,
                rid,
                caller,
                namespace,
                started,
                who,
                &answered,
                trace.as_deref(),
            );
            answered
        }
    }
}

/// A `tools/call` admitted by the namespace's rules.
#[allow(clippy::too_many_arguments)]
async fn call(
    session: &mut Session,
    rt: &Snapshot,
    rid: &str,
    mcp_session: String,
    id: Value,
    (agent, tool, req_id): (&str, &str, &str),
    arguments: Value,
    (progress, modern): (Option<Value>, bool),
) -> Result<(), Failure> {
    let inv = match start(rt, req_id, agent, tool, arguments, None) {
        Ok(inv) => inv,
        Err(f) => {
            let code = if f.status == 400 || f.status == 404 {
                mcp::INVALID_PARAMS
            } else {
                mcp::INTERNAL
            };
            return send(session, 200, &mcp::error(&id, code, &f.message), rid, None).await;
        }
    };
    let key = (mcp_session, id.to_string());
    if let Ok(mut c) = calls().lock() {
        c.insert(key.clone(), (agent.to_string(), req_id.to_string()));
    }
    let _registered = Registered(key);
    match progress {
        None => {
            let Some((last, output)) = finish(session, &inv).await else {
                // The client went away (on the stateless revision, its way
                // of cancelling): so does the invocation.
                let _ = hub().cancel(&inv.agent_id, &inv.req_id, "client_disconnected");
                return Ok(());
            };
            send(
                session,
                200,
                &mcp::call_result(&id, &last, &output, modern),
                rid,
                None,
            )
            .await
        }
        Some(token) => stream(session, rid, &inv, &id, &token, modern).await,
    }
}

/// Waits for the end, keeping the output pieces; None when the client
/// went away first.
async fn finish(session: &mut Session, inv: &Invocation) -> Option<(InvEvent, Vec<Value>)> {
    let w = inv.watch();
    let mut output: Vec<Value> = Vec::new();
    for e in &w.so_far {
        if e.kind == "output" {
            output.push(e.data["data"].clone());
        }
    }
    if let Some(mut rx) = w.live {
        loop {
            let downstream = session.as_downstream_mut();
            let e = tokio::select! {
                e = rx.recv() => e,
                _ = downstream.read_body_or_idle(true) => return None,
            };
            match e {
                Ok(e) if e.kind == "output" => output.push(e.data["data"].clone()),
                Ok(e) if e.is_terminal() => return Some((e, output)),
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
    }
    Some((last_event(inv).await, output))
}

async fn stream(
    session: &mut Session,
    rid: &str,
    inv: &Arc<Invocation>,
    id: &Value,
    token: &Value,
    modern: bool,
) -> Result<(), Failure> {
    let broken = |_| Failure::new(500, "internal_error", "could not answer");
    sse_header(session, rid).await.map_err(broken)?;
    let w = inv.watch();
    let mut output: Vec<Value> = Vec::new();
    let mut pending: std::collections::VecDeque<InvEvent> = w.so_far.into_iter().collect();
    let mut rx = w.live;
    let last = loop {
        let e = match pending.pop_front() {
            Some(e) => e,
            None => {
                let Some(r) = rx.as_mut() else {
                    break last_event(inv).await;
                };
                let downstream = session.as_downstream_mut();
                tokio::select! {
                    e = r.recv() => match e {
                        Ok(e) => e,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break last_event(inv).await,
                    },
                    // The client went away (or aborted the call): cancel.
                    _ = downstream.read_body_or_idle(true) => {
                        let _ = hub().cancel(&inv.agent_id, &inv.req_id, "client_disconnected");
                        return Ok(());
                    }
                }
            }
        };
        match e.kind {
            "output" => output.push(e.data["data"].clone()),
            "progress" => {
                let note = mcp::progress_note(token, &e);
                if write_event(session, &note).await.is_err() {
                    let _ = hub().cancel(&inv.agent_id, &inv.req_id, "client_disconnected");
                    return Ok(());
                }
            }
            _ if e.is_terminal() => break e,
            _ => {}
        }
    };
    let _ = write_event(session, &mcp::call_result(id, &last, &output, modern)).await;
    let _ = session.write_response_body(None, true).await;
    Ok(())
}

async fn write_event(session: &mut Session, v: &Value) -> pingora::Result<()> {
    session
        .write_response_body(
            Some(Bytes::from(format!("event: message\ndata: {v}\n\n"))),
            false,
        )
        .await
}

async fn send(
    session: &mut Session,
    status: u16,
    body: &Value,
    rid: &str,
    new_session: Option<String>,
) -> Result<(), Failure> {
    let extra: Vec<(&'static str, String)> = new_session
        .map(|s| vec![(SESSION_HEADER, s)])
        .unwrap_or_default();
    reply::send(
        session,
        status,
        "application/json",
        body.to_string().into_bytes(),
        rid,
        &extra,
    )
    .await
    .map_err(|_| Failure::new(500, "internal_error", "could not answer"))
}

async fn accepted(session: &mut Session, rid: &str) -> Result<(), Failure> {
    reply::send(session, 202, "application/json", Vec::new(), rid, &[])
        .await
        .map_err(|_| Failure::new(500, "internal_error", "could not answer"))
}
