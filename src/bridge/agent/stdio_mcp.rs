//! A local MCP server over stdio (newline-delimited JSON-RPC) whose tools
//! the agent re-exports: started once with the agent, `initialize`d, its
//! `tools/list` announced (names prefixed by `prefix`), and each
//! invocation sent as `tools/call` with a progress token, its progress
//! notifications forwarded; a cancelled or timed-out call is told with
//! `notifications/cancelled`.

use super::Out;
use crate::bridge::wire::Tool;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::ChildStdin;
use tokio::sync::oneshot;

/// An MCP server in the agent's file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServer {
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// Put before each of its tools' names.
    #[serde(default)]
    pub prefix: String,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Progress = Arc<Mutex<HashMap<String, Out>>>;

pub struct Client {
    stdin: tokio::sync::Mutex<ChildStdin>,
    next: AtomicU64,
    pending: Pending,
    progress: Progress,
    _child: tokio::process::Child,
}

impl Client {
    /// Starts the server, shakes hands and lists its tools.
    pub async fn start(server: &McpServer) -> Result<(Client, Vec<Tool>), String> {
        let Some((program, rest)) = server.command.split_first() else {
            return Err("mcp_servers[]: command is empty".into());
        };
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start MCP server {program}: {e}"))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the MCP server's pipes are missing".into());
        };
        let pending: Pending = Arc::default();
        let progress: Progress = Arc::default();
        let (p, q) = (pending.clone(), progress.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if msg["method"] == "notifications/progress" {
                    let token = msg["params"]["progressToken"].to_string();
                    let out = q.lock().ok().and_then(|m| m.get(&token).cloned());
                    if let Some(out) = out {
                        out.progress(
                            msg["params"]["progress"].as_f64().unwrap_or(0.0),
                            msg["params"]["total"].as_f64(),
                            msg["params"]["message"].as_str().map(str::to_string),
                        );
                    }
                } else if let Some(id) = msg["id"].as_u64() {
                    let tx = p.lock().ok().and_then(|mut m| m.remove(&id));
                    if let Some(tx) = tx {
                        let _ = tx.send(msg);
                    }
                }
            }
            // The server ended: every call waiting fails.
            if let Ok(mut m) = p.lock() {
                m.clear();
            }
        });
        let client = Client {
            stdin: tokio::sync::Mutex::new(stdin),
            next: AtomicU64::new(1),
            pending,
            progress,
            _child: child,
        };
        let init = client
            .request(
                "initialize",
                json!({"protocolVersion": crate::bridge::mcp::PROTOCOL, "capabilities": {},
                       "clientInfo": {"name": "sluice-agent", "version": env!("CARGO_PKG_VERSION")}}),
                Duration::from_secs(30),
            )
            .await?;
        if init.get("error").is_some() {
            return Err(format!(
                "the MCP server refused initialize: {}",
                init["error"]
            ));
        }
        client
            .notify("notifications/initialized", json!({}))
            .await?;
        let listed = client
            .request("tools/list", json!({}), Duration::from_secs(30))
            .await?;
        let tools = listed["result"]["tools"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|t| {
                Some(Tool {
                    name: t["name"].as_str()?.to_string(),
                    description: t["description"].as_str().unwrap_or_default().to_string(),
                    input_schema: t
                        .get("inputSchema")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                })
            })
            .collect();
        Ok((client, tools))
    }

    async fn write(&self, msg: &Value) -> Result<(), String> {
        let mut line = msg.to_string();
        line.push('\n');
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("the MCP server's input closed: {e}"))?;
        stdin.flush().await.map_err(|e| e.to_string())
    }

    async fn notify(&self, method: &str, params: Value) -> Result<(), String> {
        self.write(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await
    }

    async fn request(
        &self,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Result<Value, String> {
        let id = self.next.fetch_add(1, Relaxed);
        self.request_as(id, method, params, within).await
    }

    async fn request_as(
        &self,
        id: u64,
        method: &str,
        params: Value,
        within: Duration,
    ) -> Result<Value, String> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut m) = self.pending.lock() {
            m.insert(id, tx);
        }
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await?;
        match tokio::time::timeout(within, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err("the MCP server ended".into()),
            Err(_) => {
                if let Ok(mut m) = self.pending.lock() {
                    m.remove(&id);
                }
                let _ = self
                    .notify(
                        "notifications/cancelled",
                        json!({"requestId": id, "reason": "timeout"}),
                    )
                    .await;
                Err(format!("the MCP server did not answer {method} in time"))
            }
        }
    }

    /// Calls tool `name`; progress goes to `out`.
    pub async fn call(
        &self,
        name: &str,
        args: &Value,
        out: &Out,
        within: Duration,
    ) -> Result<Value, (String, String)> {
        let token = format!("p{}", self.next.fetch_add(1, Relaxed));
        if let Ok(mut m) = self.progress.lock() {
            m.insert(Value::String(token.clone()).to_string(), out.clone());
        }
        // Cancelled (this future dropped): the server is told.
        let id = self.next.fetch_add(1, Relaxed);
        let guard = CancelOnDrop {
            client: self,
            id,
            armed: true,
        };
        let r = self
            .request_as(
                id,
                "tools/call",
                json!({"name": name, "arguments": args, "_meta": {"progressToken": token}}),
                within,
            )
            .await;
        let mut guard = guard;
        guard.armed = false;
        if let Ok(mut m) = self.progress.lock() {
            m.remove(&Value::String(token).to_string());
        }
        let msg = r.map_err(|e| ("tool_error".to_string(), e))?;
        if let Some(e) = msg.get("error") {
            return Err((
                "tool_error".into(),
                e["message"]
                    .as_str()
                    .unwrap_or("the MCP server failed")
                    .to_string(),
            ));
        }
        let result = &msg["result"];
        let text: Vec<&str> = result["content"]
            .as_array()
            .map(|c| c.iter().filter_map(|p| p["text"].as_str()).collect())
            .unwrap_or_default();
        if result["isError"] == true {
            let text = if text.is_empty() {
                "the tool failed".to_string()
            } else {
                text.join("\n")
            };
            return Err(("tool_error".into(), text));
        }
        // The structured result when the tool gives one, else its text.
        Ok(match result.get("structuredContent") {
            Some(v) if !v.is_null() => v.clone(),
            _ if !text.is_empty() => Value::String(text.join("\n")),
            _ => result.clone(),
        })
    }
}

/// Tells the server a call was abandoned (the invocation was cancelled).
struct CancelOnDrop<'a> {
    client: &'a Client,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let msg = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": {"requestId": self.id, "reason": "cancelled"}});
        if let Ok(mut stdin) = self.client.stdin.try_lock() {
            let mut line = msg.to_string();
            line.push('\n');
            // Best effort, without waiting: the pipe takes a short line at once.
            let fut = stdin.write_all(line.as_bytes());
            let _ = futures_util::FutureExt::now_or_never(fut);
        }
    }
}
