//! The reference agent, `sluice agent --gateway URL --token bat_… --id ID
//! --tools FILE`: opens the tunnel, announces the tools of its file (local
//! commands, [`command`], and the tools of local MCP servers over stdio,
//! [`stdio_mcp`]), runs invocations, streams their progress and output
//! back, and reconnects with backoff when the tunnel drops. A token the
//! gateway refuses (401/403) ends it with an error: it will not become
//! valid by retrying.

mod command;
mod stdio_mcp;

use super::wire::{Tool, Up};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// The tools file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentFile {
    /// Display name; default the agent id.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tools: Vec<command::CommandTool>,
    #[serde(default)]
    pub mcp_servers: Vec<stdio_mcp::McpServer>,
}

/// How the agent was started.
pub struct AgentOptions {
    pub gateway: String,
    pub token: String,
    pub id: String,
    pub file: AgentFile,
    /// PEM certificates trusted for the gateway's TLS, besides the web roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// Where a tool runs.
enum Runner {
    Command(Arc<command::CommandTool>),
    Mcp(Arc<stdio_mcp::Client>, String),
}

/// Sends the invocation's messages to the gateway.
#[derive(Clone)]
pub struct Out {
    req_id: String,
    tx: mpsc::UnboundedSender<Up>,
}

impl Out {
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let _ = self.tx.send(Up::Progress {
            req_id: self.req_id.clone(),
            progress,
            total,
            message,
        });
    }
    pub fn output(&self, data: Value) {
        let _ = self.tx.send(Up::Output {
            req_id: self.req_id.clone(),
            data,
        });
    }
    fn done(&self, r: Result<Value, (String, String)>) {
        let _ = self.tx.send(match r {
            Ok(result) => Up::Result {
                req_id: self.req_id.clone(),
                result,
            },
            Err((code, message)) => Up::Error {
                req_id: self.req_id.clone(),
                code,
                message,
            },
        });
    }
}

/// Runs the agent until its token is refused or the process is stopped.
pub async fn run(opts: AgentOptions) -> Result<(), String> {
    let mut runners: HashMap<String, Runner> = HashMap::new();
    let mut tools: Vec<Tool> = Vec::new();
    for t in opts.file.tools {
        tools.push(t.announce());
        runners.insert(t.name.clone(), Runner::Command(Arc::new(t)));
    }
    for server in &opts.file.mcp_servers {
        let (client, listed) = stdio_mcp::Client::start(server).await?;
        let client = Arc::new(client);
        for t in listed {
            let exported = format!("{}{}", server.prefix, t.name);
            runners.insert(
                exported.clone(),
                Runner::Mcp(client.clone(), t.name.clone()),
            );
            tools.push(Tool {
                name: exported,
                ..t
            });
        }
    }
    let runners = Arc::new(runners);
    let base = opts.gateway.trim_end_matches('/').to_string();
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
    if let Some(pem) = &opts.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("--ca-file: not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err("--ca-file: no certificate in the file".into());
        }
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    let http = builder.build().map_err(|e| e.to_string())?;
    let hello = json!({"agent_id": opts.id, "name": opts.file.name, "tools": tools});
    let mut backoff = Duration::from_millis(200);
    loop {
        match session(&http, &base, &opts.token, &hello, runners.clone()).await {
            Ok(()) => {
                // Asked to go (a draining instance, a replaced tunnel):
                // back after a moment, not in a tight loop.
                backoff = Duration::from_millis(200);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(100..=300))).await;
            }
            Err(Stop::Refused(why)) => return Err(why),
            Err(Stop::Retry(why)) => {
                log::warn!(
                    "sluice agent: {why}; reconnecting in {} ms",
                    backoff.as_millis()
                );
                tokio::time::sleep(
                    backoff
                        + Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 2)),
                )
                .await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

enum Stop {
    Refused(String),
    Retry(String),
}

/// One tunnel, from open to close. `Ok` when the gateway said goaway.
async fn session(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    hello: &Value,
    runners: Arc<HashMap<String, Runner>>,
) -> Result<(), Stop> {
    let mut resp = http
        .post(format!("{base}/internal/v1/bridge/tunnel"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(hello.to_string())
        .send()
        .await
        .map_err(|e| Stop::Retry(format!("cannot reach the gateway: {e}")))?;
    let status = resp.status().as_u16();
    if status == 401 || status == 403 || status == 400 {
        let text = resp.text().await.unwrap_or_default();
        return Err(Stop::Refused(format!(
            "the gateway refused the tunnel ({status}): {text}"
        )));
    }
    if status != 200 {
        return Err(Stop::Retry(format!("the gateway answered {status}")));
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut ping = Duration::from_secs(30);
    let (tx, rx) = mpsc::unbounded_channel::<Up>();
    let mut rx = Some(rx);
    let mut sender: Option<tokio::task::JoinHandle<()>> = None;
    let mut running: HashMap<String, AbortHandle> = HashMap::new();
    let outcome = loop {
        let chunk = match tokio::time::timeout(ping * 3, resp.chunk()).await {
            Err(_) => break Err(Stop::Retry("the gateway went quiet".into())),
            Ok(Err(e)) => break Err(Stop::Retry(format!("the tunnel broke: {e}"))),
            Ok(Ok(None)) => break Err(Stop::Retry("the tunnel closed".into())),
            Ok(Ok(Some(c))) => c,
        };
        buf.extend_from_slice(&chunk);
        let mut stop = None;
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            match msg["type"].as_str() {
                Some("welcome") => {
                    let session_id = msg["session"].as_str().unwrap_or_default().to_string();
                    ping = Duration::from_millis(msg["ping_ms"].as_u64().unwrap_or(10_000));
                    if let Some(rx) = rx.take() {
                        sender = Some(tokio::spawn(send_loop(
                            http.clone(),
                            format!("{base}/internal/v1/bridge/tunnel/messages"),
                            token.to_string(),
                            session_id.clone(),
                            ping,
                            rx,
                        )));
                    }
                }
                Some("invoke") => {
                    let req_id = msg["req_id"].as_str().unwrap_or_default().to_string();
                    let tool = msg["tool"].as_str().unwrap_or_default().to_string();
                    let out = Out {
                        req_id: req_id.clone(),
                        tx: tx.clone(),
                    };
                    let runners = runners.clone();
                    let args = msg["arguments"].clone();
                    let timeout =
                        Duration::from_millis(msg["timeout_ms"].as_u64().unwrap_or(60_000));
                    let task = tokio::spawn(async move {
                        let r = match runners.get(&tool) {
                            Some(Runner::Command(c)) => c.run(&args, &out, timeout).await,
                            Some(Runner::Mcp(c, name)) => c.call(name, &args, &out, timeout).await,
                            None => {
                                Err(("tool_not_found".into(), format!("no tool {tool:?} here")))
                            }
                        };
                        out.done(r);
                    });
                    running.retain(|_, h| !h.is_finished());
                    running.insert(req_id, task.abort_handle());
                }
                Some("cancel") => {
                    log::info!(
                        "invocation {} cancelled by the gateway: {}",
                        msg["req_id"].as_str().unwrap_or_default(),
                        msg["reason"].as_str().unwrap_or_default()
                    );
                    if let Some(h) = msg["req_id"].as_str().and_then(|r| running.remove(r)) {
                        // Dropping the task kills its process (kill_on_drop).
                        h.abort();
                    }
                }
                Some("goaway") => stop = Some(Ok(())),
                _ => {}
            }
        }
        if let Some(s) = stop {
            break s;
        }
    };
    for (_, h) in running {
        h.abort();
    }
    drop(tx);
    if let Some(s) = sender {
        s.abort();
    }
    outcome
}

/// Sends the invocations' messages in batches (what queued while the
/// previous batch was in flight goes in the next), and an empty batch as a
/// heartbeat when nothing was sent for a ping period. A batch that fails
/// to arrive is retried a few times; one the gateway refuses (the tunnel
/// closed) is dropped with the session.
async fn send_loop(
    http: reqwest::Client,
    url: String,
    token: String,
    session: String,
    ping: Duration,
    mut rx: mpsc::UnboundedReceiver<Up>,
) {
    loop {
        let mut batch = Vec::new();
        match tokio::time::timeout(ping, rx.recv()).await {
            Ok(Some(m)) => batch.push(m),
            Ok(None) => return,
            Err(_) => {}
        }
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let body = json!({"session": session, "messages": batch}).to_string();
        for attempt in 0..5u32 {
            let sent = http
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => break,
                Ok(r) if r.status().as_u16() == 409 => return,
                Ok(r) if r.status().is_client_error() => {
                    // Not retried: it would be refused again (too large, malformed).
                    log::warn!("sluice agent: the gateway refused a batch ({})", r.status());
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100 << attempt)).await,
            }
        }
    }
}
