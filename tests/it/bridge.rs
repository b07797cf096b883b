//! The Bridge with the real binary: the gateway, the reference agent
//! (`sluice agent`) as a separate process running local command tools (and
//! a stdio MCP server built with the official Python SDK), and clients
//! over HTTP and through the official MCP Python SDK
//! (`tests/sdk/mcp_bridge.py`).

use crate::common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A temp directory for one test's tools file, pid files and logs.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!(
            "sluice-bridge-{name}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tools file: `echo` (schema, output, progress), `count` (appends a
/// line per run), `slow` (prints, then sleeps with its pid in a file),
/// `fail` (exits 3); with `mcp`, the Python SDK's stdio server's tools as
/// `py_*`.
fn tools_file(dir: &Dir, mcp: bool) -> PathBuf {
    let d = dir.0.display();
    let mut yaml = format!(
        r#"name: Test agent
tools:
  - name: echo
    description: Echo the arguments back
    input_schema: {{type: object, properties: {{text: {{type: string}}}}, required: [text], additionalProperties: false}}
    command: ["/bin/sh", "-c", "cat; echo; echo PROGRESS 1/2 halfway >&2; echo done"]
  - name: count
    description: Count runs
    command: ["/bin/sh", "-c", "echo run >> {d}/runs; wc -l < {d}/runs"]
  - name: slow
    description: Print, then wait
    command: ["/bin/sh", "-c", "echo $$ > {d}/slow.pid; echo started; exec sleep 30"]
  - name: fail
    command: ["/bin/sh", "-c", "echo broken >&2; exit 3"]
"#
    );
    if mcp {
        let root = env!("CARGO_MANIFEST_DIR");
        yaml.push_str(&format!(
            "mcp_servers:\n  - command: [\"{root}/.venv-test/bin/python\", \"{root}/tests/sdk/mcp_stdio_server.py\"]\n    prefix: py_\n"
        ));
    }
    let path = dir.path("agent.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A running `sluice agent`; killed when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
}

impl Agent {
    fn start(gw: &Gateway, token: &str, id: &str, tools: &Path, dir: &Dir) -> Agent {
        let log = dir.path(&format!("agent-{id}.log"));
        let child = Command::new(sluice_bin())
            .args([
                "agent",
                "--gateway",
                &gw.url(""),
                "--token",
                token,
                "--id",
                id,
            ])
            .arg("--tools")
            .arg(tools)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Agent { child, log }
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bridge_config(extra: &str) -> String {
    format!(
        "{TEST_SERVER}listen:\n  proxy: \"{{proxy}}\"\nadmin: {{tokens: [adm]}}\nmetrics: {{token: m-tok}}\nauth:\n  enabled: true\n  keys:\n    - {{name: test, key: sk-test}}\n    - {{name: issuer, key: sk-issuer}}\ndefault_namespace: default\nnamespaces:\n  - namespace_code: default\nupstream_servers: []\nbridge:\n  enabled: true\n  token_issuers: [issuer]\n  ping_ms: 1000\n{extra}"
    )
}

/// `GET /internal/v1/bridge{path}` with `auth`.
async fn bridge_get(c: &reqwest::Client, gw: &Gateway, path: &str, auth: &str) -> (u16, Value) {
    call(c, gw, "GET", path, auth, None).await
}

/// `POST /internal/v1/bridge{path}` with `auth` and `body`.
async fn bridge_post(
    c: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    auth: &str,
    body: Value,
) -> (u16, Value) {
    call(c, gw, "POST", path, auth, Some(body)).await
}

async fn call(
    c: &reqwest::Client,
    gw: &Gateway,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = gw.url(&format!("/internal/v1/bridge{path}"));
    let mut req = match method {
        "GET" => c.get(url),
        _ => c.post(url),
    };
    if !auth.is_empty() {
        req = req.bearer_auth(auth);
    }
    if let Some(b) = body {
        req = req.body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn issue(c: &reqwest::Client, gw: &Gateway, agent: &str, reset: bool) -> (String, u64) {
    let (s, v) = bridge_post(
        c,
        gw,
        "/agent-token",
        "adm",
        json!({"agent_id": agent, "reset": reset}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    (
        v["token"].as_str().unwrap().to_string(),
        v["version"].as_u64().unwrap(),
    )
}

async fn wait_online(c: &reqwest::Client, gw: &Gateway, agent: &str, online: bool) {
    let want = if online { "online" } else { "offline" };
    eventually(&format!("agent {agent} {want}"), async || {
        let (_, v) = bridge_get(c, gw, "/agents", "sk-test").await;
        v["agents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == agent && x["status"] == want))
    })
    .await;
}

/// The SSE events of a finished stream: (event, data).
fn sse(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = Some(e.to_string());
                }
                if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).ok();
                }
            }
            Some((event?, data.unwrap_or(Value::Null)))
        })
        .collect()
}

/// Reads a stream until `needle` arrived; what was read.
async fn read_until(r: &mut reqwest::Response, needle: &str) -> String {
    let mut text = String::new();
    while !text.contains(needle) {
        let chunk = tokio::time::timeout(PATIENCE, r.chunk())
            .await
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("the stream ended first"),
        ));
    }
    text
}

/// Reads a stream to its end into `text`.
async fn read_rest(r: &mut reqwest::Response, text: &mut String) {
    tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = r.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the stream ends");
}

/// `POST /internal/v1/bridge/invoke` with `body` as `sk-test`.
async fn post_invoke(c: &reqwest::Client, gw: &Gateway, body: Value) -> reqwest::Response {
    c.post(gw.url("/internal/v1/bridge/invoke"))
        .bearer_auth("sk-test")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// Waits for `agent` to exit: its status and log.
async fn exit_of(mut agent: Agent) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(s) = agent.child.try_wait().unwrap() {
                return (s, agent.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the agent kept running"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap()
}

fn pid_gone(pid: &str) -> bool {
    !Path::new(&format!("/proc/{}", pid.trim())).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_tunnel_invoke_stream_cancel_timeout_and_reset() {
    let dir = Dir::new("one");
    let gw = Gateway::start(&bridge_config("")).await;
    let c = reqwest::Client::new();

    // Agent tokens: the admin token or a token issuer's key.
    let (s, v) = bridge_post(&c, &gw, "/agent-token", "", json!({"agent_id": "a1"})).await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/agent-token",
        "sk-test",
        json!({"agent_id": "a1"}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/agent-token",
        "sk-issuer",
        json!({"agent_id": "a1"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["token"].as_str().unwrap().starts_with("bat_"));
    assert_eq!(
        (v["version"].clone(), v["reset"].clone()),
        (json!(1), json!(false))
    );
    assert!(v["expires_at"].as_str().unwrap().ends_with('Z'));
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/agent-token",
        "adm",
        json!({"agent_id": "no spaces"}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let (s, _) = bridge_post(&c, &gw, "/agent-token", "adm", json!({"agent": "a1"})).await;
    assert_eq!(s, 400);
    // A tunnel without a valid token is refused.
    let r = c
        .post(gw.url("/internal/v1/bridge/tunnel"))
        .bearer_auth("bat_nope")
        .body(json!({"agent_id": "a1"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let (token, _) = issue(&c, &gw, "a1", false).await;
    // Who issued each token is in the audit log (the file store's).
    let mut audit = state_path(&gw).into_os_string();
    audit.push(".history/audit.jsonl");
    let actors: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["entity"] == "agent_tokens")
        .map(|e| e["actor"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actors, ["key:issuer", "token:token-1"]);
    let tools = tools_file(&dir, false);
    let agent = Agent::start(&gw, &token, "a1", &tools, &dir);
    wait_online(&c, &gw, "a1", true).await;

    // Listings.
    let (s, v) = bridge_get(&c, &gw, "/agents", "sk-test").await;
    assert_eq!(s, 200);
    assert_eq!(v["agents"][0]["name"], "Test agent");
    let (s, v) = bridge_get(&c, &gw, "/agents", "").await;
    assert_eq!(s, 401, "listings need a credential: {v}");
    let (s, v) = bridge_get(&c, &gw, "/agents/a1/tools", "sk-test").await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "count", "slow", "fail"]);
    assert_eq!(v["tools"][0]["input_schema"]["required"], json!(["text"]));
    let (s, _) = bridge_get(&c, &gw, "/agents/nobody/tools", "sk-test").await;
    assert_eq!(s, 404);

    // JSON invocation; the declared Content-Type and the key order do not matter.
    for (ct, body) in [
        (
            "application/json",
            r#"{"req_id":"j1","agent_id":"a1","tool_name":"echo","arguments":{"text":"hi"}}"#,
        ),
        (
            "text/plain",
            r#"{"arguments":{"text":"hi"},"tool_name":"echo","agent_id":"a1","req_id":"j2"}"#,
        ),
    ] {
        let r = c
            .post(gw.url("/internal/v1/bridge/invoke"))
            .bearer_auth("sk-test")
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["status"], "ok", "{v}");
        assert_eq!(v["result"]["stdout"], "{\"text\":\"hi\"}\ndone\n");
        assert_eq!(v["result"]["exit_code"], 0);
    }

    // Streamed: output and progress as they come, then the result, then end.
    let r = c
        .post(gw.url("/internal/v1/bridge/invoke"))
        .bearer_auth("sk-test")
        .body(json!({"req_id": "s1", "agent_id": "a1", "tool_name": "echo", "arguments": {"text": "x"}, "stream": true}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let events = sse(&r.text().await.unwrap());
    let kinds: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "output").count(),
        2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"progress"), "{kinds:?}");
    assert_eq!(kinds[kinds.len() - 2..], ["result", "end"], "{kinds:?}");
    let progress = &events.iter().find(|(e, _)| e == "progress").unwrap().1;
    assert_eq!(
        (progress["progress"].as_f64(), progress["total"].as_f64()),
        (Some(1.0), Some(2.0))
    );
    assert_eq!(progress["message"], "halfway");

    // Bad arguments: 400 naming the field, before anything runs.
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "b1", "agent_id": "a1", "tool_name": "echo", "arguments": {"text": 5}}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str(), v["source"].as_str()),
        (400, Some("invalid_arguments"), Some("client")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().starts_with("arguments/text"),
        "{v}"
    );
    let (s, v) = bridge_post(&c, &gw, "/invoke", "sk-test", json!({"req_id": "b2", "agent_id": "a1", "tool_name": "echo", "arguments": {"text": "a", "extra": 1}})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "b3", "agent_id": "a1", "tool_name": "nope"}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("tool_not_found")),
        "{v}"
    );
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "b4", "agent_id": "zz", "tool_name": "echo"}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("agent_not_found")),
        "{v}"
    );
    let (s, v) = bridge_post(&c, &gw, "/invoke", "sk-test", json!({"req_id": "b5", "agent_id": "a1", "tool_name": "echo", "arguments": {"text": "a"}, "timeout_ms": 0})).await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = bridge_post(&c, &gw, "/invoke", "sk-test", json!({"req_id": "b6"})).await;
    assert_eq!(s, 400, "{v}");
    // A tool that fails: 502 from the upstream side.
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "f1", "agent_id": "a1", "tool_name": "fail"}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str(), v["source"].as_str()),
        (502, Some("tool_error"), Some("upstream")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("broken"), "{v}");

    // An idempotent req_id: the same outcome, run once; other arguments: 409.
    let (s1, v1) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "once", "agent_id": "a1", "tool_name": "count"}),
    )
    .await;
    let (s2, v2) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"tool_name": "count", "req_id": "once", "agent_id": "a1", "arguments": {}}),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(v1["result"], v2["result"]);
    assert_eq!(std::fs::read_to_string(dir.path("runs")).unwrap(), "run\n");
    let (s, v) = bridge_post(&c, &gw, "/invoke", "sk-test", json!({"req_id": "once", "agent_id": "a1", "tool_name": "echo", "arguments": {"text": "a"}})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("req_id_conflict")),
        "{v}"
    );

    // Timeout: 504, and the agent is told to stop (its process goes).
    let _ = std::fs::remove_file(dir.path("slow.pid"));
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "t1", "agent_id": "a1", "tool_name": "slow", "timeout_ms": 700}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str(), v["source"].as_str()),
        (504, Some("invocation_timeout"), Some("gateway")),
        "{v}"
    );
    let pid = std::fs::read_to_string(dir.path("slow.pid")).unwrap();
    eventually("the timed-out tool's process ends", async || pid_gone(&pid)).await;
    eventually("the agent saw the cancel", async || {
        agent
            .log()
            .contains("invocation t1 cancelled by the gateway: timeout")
    })
    .await;
    eventually("the agent saw the cancel", async || {
        agent
            .log()
            .contains("invocation t1 cancelled by the gateway: timeout")
    })
    .await;

    // Cancel mid-stream: the stream ends with `cancelled`, the process goes,
    // a second cancel says it had finished, an unknown one is 404.
    let _ = std::fs::remove_file(dir.path("slow.pid"));
    let mut r = post_invoke(
        &c,
        &gw,
        json!({"req_id": "c1", "agent_id": "a1", "tool_name": "slow", "stream": true}),
    )
    .await;
    let mut text = read_until(&mut r, "event: output").await;
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/cancel",
        "sk-test",
        json!({"req_id": "c1", "agent_id": "a1", "reason": "user_cancel"}),
    )
    .await;
    assert_eq!((s, v["cancelled"].clone()), (200, json!(true)), "{v}");
    read_rest(&mut r, &mut text).await;
    let kinds: Vec<String> = sse(&text).into_iter().map(|(e, _)| e).collect();
    assert_eq!(kinds, ["output", "cancelled", "end"]);
    let pid = std::fs::read_to_string(dir.path("slow.pid")).unwrap();
    eventually("the cancelled tool's process ends", async || pid_gone(&pid)).await;
    assert!(agent
        .log()
        .contains("invocation c1 cancelled by the gateway: user_cancel"));
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/cancel",
        "sk-test",
        json!({"req_id": "c1", "agent_id": "a1"}),
    )
    .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (200, Some("already_finished")),
        "{v}"
    );
    let (s, _) = bridge_post(
        &c,
        &gw,
        "/cancel",
        "sk-test",
        json!({"req_id": "zz", "agent_id": "a1"}),
    )
    .await;
    assert_eq!(s, 404);

    // Metrics per agent and tool.
    let m = gw.metrics(&c, "m-tok").await;
    for line in [
        r#"sluice_bridge_invocations_total{agent="a1",outcome="ok",tool="echo"} 3"#,
        r#"sluice_bridge_invocations_total{agent="a1",outcome="refused",tool="echo"} 2"#,
        r#"sluice_bridge_invocations_total{agent="a1",outcome="refused",tool="-"} 1"#,
        r#"sluice_bridge_invocations_total{agent="-",outcome="refused",tool="-"} 1"#,
        r#"sluice_bridge_invocations_total{agent="a1",outcome="timeout",tool="slow"} 1"#,
        r#"sluice_bridge_invocations_total{agent="a1",outcome="cancelled",tool="slow"} 1"#,
        r#"sluice_bridge_invocations_total{agent="a1",outcome="error",tool="fail"} 1"#,
        "sluice_bridge_agents_online 1",
    ] {
        assert!(m.contains(line), "missing {line}");
    }

    // The metrics summary and page show the agent's tools and figures.
    let summary: Value = c
        .get(gw.url("/metrics/summary"))
        .bearer_auth("m-tok")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let echo = summary["bridge"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "echo")
        .unwrap()
        .clone();
    assert_eq!(
        (
            echo["calls"].clone(),
            echo["errors"].clone(),
            echo["online"].clone()
        ),
        (json!(3), json!(0), json!(true)),
        "{summary}"
    );
    assert_eq!(summary["bridge"]["agents_online"], 1);
    let browser = crate::metrics_ui::chromium();
    let url = format!("{}#token=m-tok", gw.url("/metrics/ui"));
    let dom = tokio::task::spawn_blocking(move || {
        crate::metrics_ui::render_until(&browser, &url, "the Bridge table", |d| {
            crate::metrics_ui::row(d, "Test agent (a1)").is_some()
        })
    })
    .await
    .unwrap();
    let cells = crate::metrics_ui::row(&dom, "Test agent (a1)").unwrap();
    assert_eq!(cells[1..4], ["online", "echo", "3"], "{cells:?}");

    // A second agent killed mid-invocation: a clear error event, no hang.
    let (t2, _) = issue(&c, &gw, "a2", false).await;
    let killed = Agent::start(&gw, &t2, "a2", &tools, &dir);
    wait_online(&c, &gw, "a2", true).await;
    let mut r = post_invoke(
        &c,
        &gw,
        json!({"req_id": "k1", "agent_id": "a2", "tool_name": "slow", "stream": true}),
    )
    .await;
    let mut text = read_until(&mut r, "event: output").await;
    drop(killed);
    read_rest(&mut r, &mut text).await;
    let rest = text;
    let events = sse(&rest);
    assert_eq!(events[events.len() - 2].0, "error", "{events:?}");
    assert_eq!(events[events.len() - 2].1["code"], "agent_disconnected");
    wait_online(&c, &gw, "a2", false).await;
    let (s, v) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "k2", "agent_id": "a2", "tool_name": "echo", "arguments": {"text": "a"}}),
    )
    .await;
    assert_eq!((s, v["code"].as_str()), (503, Some("agent_offline")), "{v}");

    // Reset: version 2; the running agent's tunnel closes and its old
    // token is refused on reconnect (the agent stops with an error).
    let (_, version) = issue(&c, &gw, "a1", true).await;
    assert_eq!(version, 2);
    let status = exit_of(agent).await;
    assert!(!status.0.success());
    assert!(
        status.1.contains("refused the tunnel (401)"),
        "{}",
        status.1
    );
    wait_online(&c, &gw, "a1", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_events_resume_with_last_event_id() {
    let dir = Dir::new("events");
    let gw = Gateway::start(&bridge_config("")).await;
    let c = reqwest::Client::new();
    let (token, _) = issue(&c, &gw, "ev", false).await;
    let _agent = Agent::start(&gw, &token, "ev", &tools_file(&dir, false), &dir);
    wait_online(&c, &gw, "ev", true).await;
    for id in ["e1", "e2"] {
        let (s, _) = bridge_post(
            &c,
            &gw,
            "/invoke",
            "sk-test",
            json!({"req_id": id, "agent_id": "ev", "tool_name": "count"}),
        )
        .await;
        assert_eq!(s, 200);
    }
    // (id, event) of the first `n` events of a stream opened with `last`.
    async fn read(
        c: &reqwest::Client,
        gw: &Gateway,
        last: &str,
        query: &str,
        n: usize,
    ) -> Vec<(String, String, Value)> {
        let mut r = c
            .get(gw.url(&format!("/internal/v1/bridge/events{query}")))
            .bearer_auth("sk-test")
            .header("last-event-id", last)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let mut text = String::new();
        let mut out = Vec::new();
        while out.len() < n {
            let chunk = tokio::time::timeout(PATIENCE, r.chunk())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let get = |p: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(p))
                        .map(str::to_string)
                };
                if let Some(event) = get("event: ") {
                    let data = get("data: ")
                        .and_then(|d| serde_json::from_str(&d).ok())
                        .unwrap_or(Value::Null);
                    out.push((get("id: ").unwrap_or_default(), event, data));
                }
            }
        }
        out
    }
    // An id that cannot be resumed: a gap notice, then every kept event.
    let all = read(&c, &gw, "unknown", "", 6).await;
    let kinds: Vec<&str> = all.iter().map(|(_, e, _)| e.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "gap",
            "agent.online",
            "invocation.started",
            "invocation.finished",
            "invocation.started",
            "invocation.finished"
        ]
    );
    assert_eq!(all[3].2["outcome"], "ok");
    assert_eq!(all[3].2["req_id"], "e1");
    // Resumed after the first `invocation.finished`: the next ones only.
    let after = read(&c, &gw, &all[3].0, "", 2).await;
    assert_eq!(after[0].0, all[4].0);
    assert_eq!(after[1].0, all[5].0);
    // Live events reach a reader, filtered by agent.
    let c2 = c.clone();
    let gw_url = gw.url("");
    let live = tokio::spawn(async move {
        let mut r = c2
            .get(format!("{gw_url}/internal/v1/bridge/events?agent_id=ev"))
            .bearer_auth("sk-test")
            .send()
            .await
            .unwrap();
        read_until(&mut r, "event: invocation.finished").await
    });
    // The reader is subscribed once its first bytes arrived; invoke until seen.
    eventually("a live event reaches the reader", async || {
        let (s, _) = bridge_post(&c, &gw, "/invoke", "sk-test", json!({"req_id": format!("l{}", fastrand::u32(..)), "agent_id": "ev", "tool_name": "count"})).await;
        assert_eq!(s, 200);
        live.is_finished()
    })
    .await;
    assert!(live.await.unwrap().contains("\"req_id\":\"l"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_pass_the_namespace_rules() {
    let dir = Dir::new("limits");
    let rules = "rules:\n  - rule_name: two-calls\n    namespace: default\n    rule_type: rate_limit\n    rule_config: {max_requests: 2, time_window_seconds: 60}\n";
    let log = dir.path("access.log");
    let gw = Gateway::start(&bridge_config(&format!(
        "{rules}access_log: {{path: \"{}\"}}\n",
        log.display()
    )))
    .await;
    let c = reqwest::Client::new();
    let (token, _) = issue(&c, &gw, "lim", false).await;
    let _agent = Agent::start(&gw, &token, "lim", &tools_file(&dir, false), &dir);
    wait_online(&c, &gw, "lim", true).await;
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (s, v) = bridge_post(
            &c,
            &gw,
            "/invoke",
            "sk-test",
            json!({"req_id": format!("r{i}"), "agent_id": "lim", "tool_name": "count"}),
        )
        .await;
        statuses.push((s, v["code"].as_str().map(str::to_string)));
    }
    assert_eq!(statuses[..2], [(200, None), (200, None)]);
    assert_eq!(statuses[2], (429, Some("rate_limited".to_string())));
    // Listings are not invocations.
    let (s, _) = bridge_get(&c, &gw, "/agents", "sk-test").await;
    assert_eq!(s, 200);
    assert_eq!(
        std::fs::read_to_string(dir.path("runs"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    // Each invocation is in the access log, with its namespace and key.
    let lines = eventually_ok("three Bridge lines in the access log", async || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l.get("bridge").is_some())
            .collect();
        if lines.len() == 3 {
            Ok(lines)
        } else {
            Err(format!("{} lines", lines.len()))
        }
    })
    .await;
    for (line, (status, outcome)) in lines
        .iter()
        .zip([(200, "ok"), (200, "ok"), (429, "refused")])
    {
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["bridge"]["outcome"], outcome, "{line}");
        assert_eq!(line["bridge"]["agent"], "lim");
        assert_eq!(line["bridge"]["tool"], "count");
        assert_eq!(
            line["namespace"],
            if status == 200 { "default" } else { "-" }
        );
        assert_eq!(line["key_name"], "test");
        assert_eq!(line["channel"], "internal");
    }
}

/// Two instances sharing a Redis: the agent's tunnel on one, the client on
/// the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_on_one_instance_serves_clients_of_another() {
    let dir = Dir::new("two");
    // The config store (agent tokens) in MySQL, its bus and the fleet in Redis.
    let store = StoreGuard::new();
    let shared = format!("fleet: {{heartbeat_ms: 200}}\n{}", store.yaml(None));
    let a = Gateway::start(&bridge_config(&shared)).await;
    let b = Gateway::start(&bridge_config(&shared)).await;
    let c = reqwest::Client::new();
    let (token, _) = issue(&c, &a, "far", false).await;
    let agent = Agent::start(&a, &token, "far", &tools_file(&dir, false), &dir);
    wait_online(&c, &b, "far", true).await;
    let (s, v) = bridge_get(&c, &b, "/agents/far/tools", "sk-test").await;
    assert_eq!(
        (s, v["tools"].as_array().map(Vec::len)),
        (200, Some(4)),
        "{v}"
    );

    let (s, v) = bridge_post(&c, &b, "/invoke", "sk-test", json!({"req_id": "r1", "agent_id": "far", "tool_name": "echo", "arguments": {"text": "via b"}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["stdout"], "{\"text\":\"via b\"}\ndone\n");
    // Schema checked on the client's instance.
    let (s, v) = bridge_post(
        &c,
        &b,
        "/invoke",
        "sk-test",
        json!({"req_id": "r2", "agent_id": "far", "tool_name": "echo", "arguments": {}}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("invalid_arguments")),
        "{v}"
    );
    // Streamed through the relay: every event, in order.
    let text = c
        .post(b.url("/internal/v1/bridge/invoke"))
        .bearer_auth("sk-test")
        .body(json!({"req_id": "r3", "agent_id": "far", "tool_name": "echo", "arguments": {"text": "s"}, "stream": true}).to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let kinds: Vec<String> = sse(&text).into_iter().map(|(e, _)| e).collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "output").count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(kinds[kinds.len() - 2..], ["result", "end"], "{kinds:?}");
    // Counted once, by the instance holding the agent.
    let ok_echo = r#"sluice_bridge_invocations_total{agent="far",outcome="ok",tool="echo"}"#;
    assert!(a
        .metrics(&c, "m-tok")
        .await
        .contains(&format!("{ok_echo} 2")));
    assert!(!b.metrics(&c, "m-tok").await.contains(ok_echo));
    // Idempotent across the relay.
    for _ in 0..2 {
        let (s, _) = bridge_post(
            &c,
            &b,
            "/invoke",
            "sk-test",
            json!({"req_id": "once", "agent_id": "far", "tool_name": "count"}),
        )
        .await;
        assert_eq!(s, 200);
    }
    assert_eq!(std::fs::read_to_string(dir.path("runs")).unwrap(), "run\n");
    // A cancel on the client's instance reaches the agent.
    let mut r = post_invoke(
        &c,
        &b,
        json!({"req_id": "c1", "agent_id": "far", "tool_name": "slow", "stream": true}),
    )
    .await;
    let mut text = read_until(&mut r, "event: output").await;
    let (s, _) = bridge_post(
        &c,
        &b,
        "/cancel",
        "sk-test",
        json!({"req_id": "c1", "agent_id": "far"}),
    )
    .await;
    assert_eq!(s, 200);
    read_rest(&mut r, &mut text).await;
    assert!(text.contains("event: cancelled"), "{text}");
    let pid = std::fs::read_to_string(dir.path("slow.pid")).unwrap();
    eventually("the cancelled tool's process ends", async || pid_gone(&pid)).await;
    // The other instance's events are in this one's stream.
    let mut r = c
        .get(b.url("/internal/v1/bridge/events"))
        .bearer_auth("sk-test")
        .header("last-event-id", "x")
        .send()
        .await
        .unwrap();
    read_until(&mut r, "event: agent.online").await;
    drop(r);
    // The agent dies mid-invocation: the client on the other instance
    // gets the error, not a hang.
    let mut r = post_invoke(
        &c,
        &b,
        json!({"req_id": "k1", "agent_id": "far", "tool_name": "slow", "stream": true}),
    )
    .await;
    let mut text = read_until(&mut r, "event: output").await;
    drop(agent);
    read_rest(&mut r, &mut text).await;
    let text = text;
    assert!(text.contains("agent_disconnected"), "{text}");
    wait_online(&c, &b, "far", false).await;

    // Tokens are shared: one issued through B opens a tunnel on A, and a
    // reset through B closes that tunnel on A and refuses the old token.
    let (token, _) = issue(&c, &b, "z", false).await;
    let z = Agent::start(&a, &token, "z", &tools_file(&dir, false), &dir);
    wait_online(&c, &b, "z", true).await;
    issue(&c, &b, "z", true).await;
    let (status, log) = exit_of(z).await;
    assert!(!status.success());
    assert!(log.contains("refused the tunnel (401)"), "{log}");
}

/// The official MCP Python SDK lists and calls the bridged tools,
/// including those the agent re-exports from a stdio MCP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mcp_sdk_lists_and_calls_bridged_tools() {
    let dir = Dir::new("mcp");
    let gw = Gateway::start(&bridge_config("")).await;
    let c = reqwest::Client::new();
    let (token, _) = issue(&c, &gw, "a1", false).await;
    let _agent = Agent::start(&gw, &token, "a1", &tools_file(&dir, true), &dir);
    wait_online(&c, &gw, "a1", true).await;
    run_sdk_script("mcp_bridge.py", gw.url("/internal/v1/mcp")).await;
    // The cancelled call's process went (the SDK script cancels `slow`).
    let pid = std::fs::read_to_string(dir.path("slow.pid")).unwrap();
    eventually("the cancelled tool's process ends", async || pid_gone(&pid)).await;
}

/// With tracing on, an invocation is a span of its caller's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_are_traced() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let dir = Dir::new("trace");
    let (collector, spans) = crate::tracing::receiver().await;
    let tracing = format!(
        "tracing: {{otlp_endpoint: \"http://127.0.0.1:{collector}/v1/traces\", sample_ratio: 0.0, flush_ms: 50}}\n"
    );
    let gw = Gateway::start(&bridge_config(&tracing)).await;
    let c = reqwest::Client::new();
    let (token, _) = issue(&c, &gw, "tr", false).await;
    let _agent = Agent::start(&gw, &token, "tr", &tools_file(&dir, false), &dir);
    wait_online(&c, &gw, "tr", true).await;
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = c
        .post(gw.url("/internal/v1/bridge/invoke"))
        .bearer_auth("sk-test")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .body(json!({"req_id": "t1", "agent_id": "tr", "tool_name": "count"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let trace_id = hex::decode(trace).unwrap();
    let span = eventually_ok("the invocation's span", async || {
        spans
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.trace_id == trace_id)
            .cloned()
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
    assert_eq!(span.name, "execute_tool count");
    assert_eq!(
        span.parent_span_id,
        hex::decode("00f067aa0ba902b7").unwrap()
    );
    let text = |k: &str| match crate::tracing::attr(&span, k) {
        Some(V::StringValue(s)) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(text("gen_ai.tool.name"), "count");
    assert_eq!(text("sluice.bridge.agent"), "tr");
    assert_eq!(text("sluice.bridge.outcome"), "ok");
    // An untraced request (no sampled traceparent, ratio 0) makes none.
    let (s, _) = bridge_post(
        &c,
        &gw,
        "/invoke",
        "sk-test",
        json!({"req_id": "t2", "agent_id": "tr", "tool_name": "count"}),
    )
    .await;
    assert_eq!(s, 200);
    // A traced one after it: once its span is in, anything the untraced
    // request made would be too (spans are exported in order).
    let r = c
        .post(gw.url("/internal/v1/bridge/invoke"))
        .bearer_auth("sk-test")
        .header(
            "traceparent",
            format!("00-{}-00f067aa0ba902b7-01", "1".repeat(32)),
        )
        .body(json!({"req_id": "t3", "agent_id": "tr", "tool_name": "count"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let third = hex::decode("1".repeat(32)).unwrap();
    eventually("the third invocation's span", async || {
        spans.lock().unwrap().iter().any(|s| s.trace_id == third)
    })
    .await;
    assert_eq!(spans.lock().unwrap().len(), 2);
}

/// An agent dials a gateway served over TLS with a private CA
/// (`--ca-file`); without it the agent cannot verify the gateway and keeps
/// retrying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dials_a_tls_gateway_trusting_a_private_ca() {
    let dir = Dir::new("tls");
    let ca = crate::tls::new_ca();
    let ca_pem = ca.cert.pem();
    let (cert, key, _) = crate::tls::leaf(&ca, &["localhost"]);
    let (ca_path, cert_path, key_path) =
        (dir.path("ca.pem"), dir.path("gw.pem"), dir.path("gw.key"));
    std::fs::write(&ca_path, &ca_pem).unwrap();
    std::fs::write(&cert_path, cert).unwrap();
    std::fs::write(&key_path, key).unwrap();
    let yaml = bridge_config("").replacen(
        "listen:\n  proxy: \"{proxy}\"\n",
        &format!(
            "listen:\n  proxy: \"{{proxy}}\"\n  proxy_tls:\n    certificates: [{{cert: \"{}\", key: \"{}\"}}]\n",
            cert_path.display(),
            key_path.display()
        ),
        1,
    );
    let gw = Gateway::start(&yaml).await;
    let base = format!("https://localhost:{}", gw.port);
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let token: Value = c
        .post(format!("{base}/internal/v1/bridge/agent-token"))
        .bearer_auth("adm")
        .body(json!({"agent_id": "tls"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let tools = tools_file(&dir, false);
    let start = |extra: &[&str], log: &str| {
        let child = Command::new(sluice_bin())
            .args([
                "agent",
                "--gateway",
                &base,
                "--token",
                &token,
                "--id",
                "tls",
            ])
            .args(extra)
            .arg("--tools")
            .arg(&tools)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path(log)).unwrap())
            .spawn()
            .unwrap();
        Agent {
            child,
            log: dir.path(log),
        }
    };
    // Without the CA: the gateway's certificate is not trusted.
    let untrusting = start(&[], "untrusting.log");
    eventually("the agent without the CA retrying", async || {
        untrusting.log().contains("cannot reach the gateway")
    })
    .await;
    drop(untrusting);
    let _agent = start(&["--ca-file", ca_path.to_str().unwrap()], "agent.log");
    eventually("the agent online over TLS", async || {
        let r = c
            .get(format!("{base}/internal/v1/bridge/agents"))
            .bearer_auth("sk-test")
            .send()
            .await
            .unwrap();
        r.text().await.unwrap().contains("\"online\"")
    })
    .await;
    let r = c
        .post(format!("{base}/internal/v1/bridge/invoke"))
        .bearer_auth("sk-test")
        .body(json!({"req_id": "r1", "agent_id": "tls", "tool_name": "echo", "arguments": {"text": "tls"}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["result"]["stdout"], "{\"text\":\"tls\"}\ndone\n");
}
