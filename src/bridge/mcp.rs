//! The bridged tools as an MCP server (JSON-RPC 2.0 over the streamable
//! HTTP transport): the stateless revision [`MODERN`] (`server/discover`,
//! every request self-contained, its version in `_meta`) and the handshake
//! revisions up to [`PROTOCOL`] (`initialize` first). `tools/list` lists every online agent's tools
//! as `{agent_id}__{tool}`, `tools/call` invokes one through the same path
//! as `POST /internal/v1/bridge/invoke`. This module decides what a
//! message asks for ([`step`]) and shapes the answers; the HTTP side
//! (SSE, progress, cancellation) is `crate::proxy::mcp`.

use super::hub::{AgentView, InvEvent};
use serde_json::{json, Value};

/// The revision answered when the client asks for one not supported.
pub const PROTOCOL: &str = "2025-11-25";
/// The handshake revisions spoken.
pub const SUPPORTED: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// The stateless revision: no handshake, `server/discover`, the version in
/// each request's `_meta`, `resultType` in each result.
pub const MODERN: &str = "2026-07-28";
const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
/// JSON-RPC error: a protocol version this server does not speak.
pub const UNSUPPORTED_VERSION: i64 = -32022;
/// Between an agent's id and its tool's name in an MCP tool name.
pub const SEP: &str = "__";

/// JSON-RPC error codes.
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL: i64 = -32603;

/// What one message asks for.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Answer with this JSON-RPC response.
    Reply(Value),
    /// A notification or a response: 202, no body.
    Accepted,
    /// `notifications/cancelled` of an earlier request.
    Cancel { request_id: Value, reason: String },
    /// `tools/call`: invoke `tool` of `agent`.
    Call {
        id: Value,
        agent: String,
        tool: String,
        arguments: Value,
        /// `_meta.progressToken`: progress notifications are wanted.
        progress: Option<Value>,
        /// The stateless revision: results carry `resultType`.
        modern: bool,
    },
}

pub fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Decides what `msg` asks for; `agents` are the known agents (only online
/// ones' tools are listed and callable).
pub fn step(msg: &Value, agents: &[AgentView], server_version: &str) -> Step {
    if !msg.is_object() || msg["jsonrpc"] != "2.0" {
        return Step::Reply(error(
            &Value::Null,
            INVALID_REQUEST,
            "not a JSON-RPC 2.0 message",
        ));
    }
    let Some(method) = msg["method"].as_str() else {
        // A response to a server request: none are sent, nothing to do.
        return Step::Accepted;
    };
    let Some(id) = msg.get("id").filter(|i| i.is_string() || i.is_number()) else {
        return match method {
            "notifications/cancelled" => Step::Cancel {
                request_id: msg["params"]["requestId"].clone(),
                reason: msg["params"]["reason"]
                    .as_str()
                    .unwrap_or("cancelled")
                    .to_string(),
            },
            _ => Step::Accepted,
        };
    };
    let params = &msg["params"];
    let asked = params["_meta"][VERSION_KEY].as_str();
    let modern = asked == Some(MODERN);
    if let Some(v) = asked.filter(|v| *v != MODERN && !SUPPORTED.contains(v)) {
        let mut e = error(
            id,
            UNSUPPORTED_VERSION,
            &format!("protocol version {v} is not supported"),
        );
        e["error"]["data"] = json!({"supported": versions(), "requested": v});
        return Step::Reply(e);
    }
    let step = answer(id, method, params, agents, server_version, modern);
    match step {
        Step::Reply(mut v) if modern && v.get("result").is_some() => {
            v["result"]["resultType"] = "complete".into();
            // Cacheable results say how long: the tool list changes as
            // agents come and go, so not at all, and per caller.
            if matches!(method, "server/discover" | "tools/list") {
                v["result"]["ttlMs"] = 0.into();
                v["result"]["cacheScope"] = "private".into();
            }
            Step::Reply(v)
        }
        other => other,
    }
}

/// Every revision spoken, newest first.
fn versions() -> Vec<&'static str> {
    std::iter::once(MODERN)
        .chain(SUPPORTED.iter().copied())
        .collect()
}

fn answer(
    id: &Value,
    method: &str,
    params: &Value,
    agents: &[AgentView],
    server_version: &str,
    modern: bool,
) -> Step {
    match method {
        "server/discover" => Step::Reply(response(
            id,
            json!({
                "supportedVersions": versions(),
                "capabilities": {"tools": {"listChanged": false}},
                "instructions": INSTRUCTIONS,
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "sluice-bridge", "version": server_version}},
            }),
        )),
        "initialize" => {
            let asked = params["protocolVersion"].as_str().unwrap_or("");
            let version = if SUPPORTED.contains(&asked) {
                asked
            } else {
                PROTOCOL
            };
            Step::Reply(response(
                id,
                json!({
                    "protocolVersion": version,
                    "capabilities": {"tools": {"listChanged": false}},
                    "serverInfo": {"name": "sluice-bridge", "version": server_version},
                    "instructions": INSTRUCTIONS,
                }),
            ))
        }
        "ping" => Step::Reply(response(id, json!({}))),
        "tools/list" => Step::Reply(response(id, json!({"tools": tool_list(agents)}))),
        "tools/call" => {
            let Some(name) = params["name"].as_str() else {
                return Step::Reply(error(id, INVALID_PARAMS, "params.name is required"));
            };
            let found = agents.iter().filter(|a| a.online).find_map(|a| {
                let tool = name.strip_prefix(a.id.as_str())?.strip_prefix(SEP)?;
                a.tools
                    .iter()
                    .any(|t| t.name == tool)
                    .then(|| (a.id.clone(), tool.to_string()))
            });
            let Some((agent, tool)) = found else {
                return Step::Reply(error(id, INVALID_PARAMS, &format!("unknown tool: {name}")));
            };
            let arguments = match &params["arguments"] {
                Value::Null => json!({}),
                v => v.clone(),
            };
            let progress = params["_meta"]
                .get("progressToken")
                .filter(|t| t.is_string() || t.is_number())
                .cloned();
            Step::Call {
                id: id.clone(),
                agent,
                tool,
                arguments,
                progress,
                modern,
            }
        }
        _ => Step::Reply(error(
            id,
            METHOD_NOT_FOUND,
            &format!("method not found: {method}"),
        )),
    }
}

const INSTRUCTIONS: &str =
    "Tools of the agents connected to this Sluice gateway, named {agent_id}__{tool}.";

/// Every online agent's tools, as MCP tools.
pub fn tool_list(agents: &[AgentView]) -> Vec<Value> {
    agents
        .iter()
        .filter(|a| a.online)
        .flat_map(|a| {
            a.tools.iter().map(move |t| {
                json!({
                    "name": format!("{}{SEP}{}", a.id, t.name),
                    "title": format!("{} ({})", t.name, a.name),
                    "description": t.description,
                    "inputSchema": t.input_schema,
                })
            })
        })
        .collect()
}

/// The `tools/call` result for an invocation's terminal event: a tool
/// error is a result with `isError` (the model sees it), not a protocol
/// error.
pub fn call_result(id: &Value, last: &InvEvent, output: &[Value], modern: bool) -> Value {
    let mut r = call_result_of(id, last, output);
    if modern {
        r["result"]["resultType"] = "complete".into();
    }
    r
}

fn call_result_of(id: &Value, last: &InvEvent, output: &[Value]) -> Value {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match last.kind {
        "result" => {
            let result = &last.data["result"];
            let mut content: Vec<Value> = output
                .iter()
                .map(|o| json!({"type": "text", "text": text(o)}))
                .collect();
            content.push(json!({"type": "text", "text": text(result)}));
            let mut out = json!({"content": content, "isError": false});
            if result.is_object() {
                out["structuredContent"] = result.clone();
            }
            response(id, out)
        }
        "cancelled" => response(
            id,
            json!({"content": [{"type": "text", "text": "the invocation was cancelled"}], "isError": true}),
        ),
        _ => response(
            id,
            json!({
                "content": [{"type": "text", "text": format!(
                    "{}: {}",
                    last.data["code"].as_str().unwrap_or("error"),
                    last.data["message"].as_str().unwrap_or("the tool failed")
                )}],
                "isError": true,
            }),
        ),
    }
}

/// A `notifications/progress` message for a progress event.
pub fn progress_note(token: &Value, ev: &InvEvent) -> Value {
    let mut params = json!({"progressToken": token, "progress": ev.data["progress"]});
    if let Some(t) = ev.data["total"].as_f64() {
        params["total"] = t.into();
    }
    if let Some(m) = ev.data["message"].as_str() {
        params["message"] = m.into();
    }
    json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": params})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::wire::Tool;
    use std::sync::Arc;

    fn agents() -> Vec<AgentView> {
        vec![
            AgentView {
                id: "a1".into(),
                name: "Agent one".into(),
                online: true,
                tools: Arc::new(vec![Tool {
                    name: "echo".into(),
                    description: "Echo".into(),
                    input_schema: json!({"type": "object"}),
                }]),
            },
            AgentView {
                id: "a2".into(),
                name: "a2".into(),
                online: false,
                tools: Arc::new(vec![Tool {
                    name: "gone".into(),
                    description: String::new(),
                    input_schema: json!({"type": "object"}),
                }]),
            },
        ]
    }

    #[test]
    fn initialize_negotiates_and_lists_online_tools() {
        let a = agents();
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18"}}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["result"]["protocolVersion"], "2025-06-18");
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2099-01-01"}}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["result"]["protocolVersion"], PROTOCOL);
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": "x", "method": "tools/list"}),
            &a,
            "1",
        ) else {
            panic!()
        };
        let names: Vec<&str> = r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["a1__echo"]);
    }

    #[test]
    fn the_stateless_revision_discovers_and_marks_results() {
        let a = agents();
        let meta = json!({"io.modelcontextprotocol/protocolVersion": MODERN});
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta}}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["result"]["supportedVersions"][0], MODERN);
        assert_eq!(r["result"]["resultType"], "complete");
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": meta}}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["result"]["resultType"], "complete");
        assert!(matches!(
            step(
                &json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "a1__echo", "_meta": meta}}),
                &a,
                "1"
            ),
            Step::Call { modern: true, .. }
        ));
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2030-01-01"}}}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["error"]["code"], UNSUPPORTED_VERSION);
        assert_eq!(r["error"]["data"]["supported"][0], MODERN);
    }

    #[test]
    fn calls_notifications_and_errors() {
        let a = agents();
        let s = step(
            &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                    "params": {"name": "a1__echo", "arguments": {"t": 1}, "_meta": {"progressToken": "p"}}}),
            &a,
            "1",
        );
        assert_eq!(
            s,
            Step::Call {
                id: json!(7),
                agent: "a1".into(),
                tool: "echo".into(),
                arguments: json!({"t": 1}),
                progress: Some(json!("p")),
                modern: false,
            }
        );
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "a2__gone"}}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["error"]["code"], INVALID_PARAMS);
        assert_eq!(
            step(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                &a,
                "1"
            ),
            Step::Accepted
        );
        assert!(matches!(
            step(&json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}), &a, "1"),
            Step::Cancel { request_id, .. } if request_id == json!(7)
        ));
        let Step::Reply(r) = step(
            &json!({"jsonrpc": "2.0", "id": 9, "method": "nope/nope"}),
            &a,
            "1",
        ) else {
            panic!()
        };
        assert_eq!(r["error"]["code"], METHOD_NOT_FOUND);
        let Step::Reply(r) = step(&json!([1, 2]), &a, "1") else {
            panic!()
        };
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
    }
}
