//! The shipped config and the admin contract as a new operator meets them:
//! `conf/sluice.yaml` itself (ports swapped for free ones) against three
//! mocks, one per wire format; the admin API walked in the contract's
//! natural order (namespace → rule → matcher → proxy rule → traffic);
//! warnings instead of refusals for what cannot apply yet; the health
//! shapes; the channel header and `/api/chat`; gzip set live through an
//! nginx-configs fragment; `sluice check --strict`.

use crate::common::*;
use serde_json::{json, Value};
use std::io::Read;

const ADMIN: &str = "sluice-admin-dev";
const KEY: &str = "sk-sluice-dev";

/// The three mocks `make run` starts, by the id `x-mock-id` names.
struct Mocks {
    openai: sluice::mock::MockServer,
    anthropic: sluice::mock::MockServer,
    azure: sluice::mock::MockServer,
}

impl Mocks {
    async fn start() -> Mocks {
        Mocks {
            openai: mock("openai").await,
            anthropic: mock("anthropic").await,
            azure: mock("azure").await,
        }
    }
}

/// `conf/sluice.yaml` with its listeners on free ports and its servers on
/// the mocks; `edit` changes the text further.
fn shipped(m: &Mocks, edit: impl Fn(String) -> String) -> String {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/conf/sluice.yaml")).unwrap();
    let mut yaml = text
        .replace("proxy: 127.0.0.1:8080", "proxy: \"{proxy}\"")
        .replace("admin: 127.0.0.1:8001", "admin: \"{admin}\"");
    for (from, to) in [(9000, &m.openai), (9001, &m.anthropic), (9002, &m.azure)] {
        yaml = yaml.replace(
            &format!("server_port: {from}\n"),
            &format!("server_port: {}\n", to.addr.port()),
        );
    }
    assert!(yaml.contains("{proxy}") && yaml.contains("{admin}"));
    edit(yaml)
}

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]})
}

async fn send(
    gw: &Gateway,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(gw.url(path))
        .bearer_auth(KEY)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The first run: the catalog over three wire formats, fallback when one
/// mock is told to fail, the bandit report, a limit being hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_config_shows_the_product() {
    let m = Mocks::start().await;
    let gw = Gateway::start(&shipped(&m, |y| y)).await;
    let r = send(&gw, "/v1/chat/completions", &chat("gpt-4o"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-id"), "openai");
    // The embedding model goes to one of its deployments and refuses chat.
    let r = send(
        &gw,
        "/v1/embeddings",
        &json!({"model": "text-embedding-3-small", "input": "hi"}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    let r = send(
        &gw,
        "/v1/chat/completions",
        &chat("text-embedding-3-small"),
        &[],
    )
    .await;
    assert_eq!(r.status(), 400);
    // The primary fails: the Anthropic deployment answers, in OpenAI's shape.
    m.openai
        .state
        .fail_now
        .store(503, std::sync::atomic::Ordering::Relaxed);
    let r = send(&gw, "/v1/chat/completions", &chat("gpt-4o"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-id"), "anthropic");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion", "{v}");
    m.openai
        .state
        .fail_now
        .store(0, std::sync::atomic::Ordering::Relaxed);
    // The bandit report has the arms that served.
    let v: Value = reqwest::Client::new()
        .get(gw.url("/internal/v1/bandit/report?model=gpt-4o"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["arm_id"].as_str())
        .collect();
    assert!(ids.contains(&"gpt-4o/claude-fallback/chat/external"), "{v}");
    // The trial tenant (a header matcher) has 3 requests a minute.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = send(
            &gw,
            "/v1/chat/completions",
            &chat("gpt-4o"),
            &[("x-tenant", "trial")],
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // The dashboard answers.
    let r = reqwest::Client::new()
        .get(gw.url("/metrics/ui"))
        .bearer_auth("sluice-metrics-dev")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// The contract's natural order on the shipped config: namespace, its
/// rule, its matcher, a proxy rule; traffic then lands in the namespace
/// and its rule applies. Each step is accepted when taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_workflow_in_natural_order() {
    let m = Mocks::start().await;
    let gw = Gateway::start(&shipped(&m, |y| y)).await;
    let api = Admin::new(&gw, ADMIN);
    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "Enterprise", "namespace_code": "enterprise"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ns = v["namespace_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/rules"),
            json!({"rule_name": "ent-one-a-minute", "rule_type": "rate_limit",
                   "rule_config": {"max_requests": 1, "time_window_seconds": 60, "key_by": "api_key"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/matchers"),
            json!({"matcher_name": "ent", "matcher_type": "header", "priority": 5,
                   "matcher_config": {"match_field": "x-tenant", "match_operator": "eq",
                                      "match_value": "enterprise", "action": "allow"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");
    let (s, v) = api
        .post(
            "/api/v1/proxy-rules",
            json!({"rule_name": "ent-to-azure", "namespace_id": ns,
                   "upstream": "azure", "path_pattern": "/v1/.*", "priority": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The dry run agrees.
    let (s, v) = api
        .post(
            "/api/v1/route/namespace",
            json!({"headers": {"x-tenant": "enterprise"}, "path": "/v1/chat/completions",
                   "body": {"model": "my-model"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["target_namespace"], "enterprise", "{v}");
    assert_eq!(v["matched"], true, "{v}");
    // Live: a model outside the catalog takes the proxy rule; the rule
    // allows one a minute.
    let r = send(
        &gw,
        "/v1/chat/completions",
        &chat("my-model"),
        &[("x-tenant", "enterprise")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-id"), "azure");
    let r = send(
        &gw,
        "/v1/chat/completions",
        &chat("my-model"),
        &[("x-tenant", "enterprise")],
    )
    .await;
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ent-one-a-minute"),
        "{v}"
    );
    // Other tenants are untouched.
    let r = send(&gw, "/v1/chat/completions", &chat("my-model"), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-id"), "openai");
}

/// What cannot apply yet is a warning, in the answer and in the status,
/// gone once the missing piece exists; malformed input stays a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_yet_is_a_warning_not_an_error() {
    let m = Mocks::start().await;
    // Without the channel header, a namespace is reached only by matchers,
    // key bindings or as the default.
    let gw = Gateway::start(&shipped(&m, |y| {
        y.replace("channel_header: x-channel-code", "")
    }))
    .await;
    let api = Admin::new(&gw, ADMIN);
    let (_, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "Solo", "namespace_code": "solo"}),
        )
        .await;
    let ns = v["namespace_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/rules"),
            json!({"rule_name": "solo-cap", "rule_type": "concurrency",
                   "rule_config": {"max_concurrent": 1}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let warned = |v: &Value| {
        v["warnings"].as_array().is_some_and(|w| {
            w.iter().any(|w| {
                w.as_str()
                    .unwrap()
                    .contains("no request can reach namespace \"solo\"")
            })
        })
    };
    assert!(warned(&v), "{v}");
    let (s, v) = api.get("/api/v1/status").await;
    assert_eq!(s, 200);
    assert!(warned(&v), "{v}");
    // Malformed input is still refused.
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/matchers"),
            json!({"matcher_type": "header", "matcher_config": {"match_field": "x", "match_operator": "regex", "match_value": "(", "action": "allow"}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // The matcher makes the namespace reachable: no warning left.
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/matchers"),
            json!({"matcher_type": "header", "matcher_config": {"match_field": "x-tenant", "match_operator": "eq", "match_value": "solo", "action": "allow"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["warnings"], json!([]), "{v}");
    let (_, v) = api.get("/api/v1/status").await;
    assert_eq!(v["warnings"], json!([]), "{v}");

    // `sluice check`: warnings apart, failing only with --strict.
    let yaml = shipped(&m, |y| {
        y.replace("channel_header: x-channel-code", "").replace(
            "rules:\n",
            "rules:\n  - {rule_name: lonely, namespace: nobody, rule_type: concurrency, rule_config: {max_concurrent: 1}}\n",
        ).replace(
            "namespaces:\n",
            "namespaces:\n  - {namespace_code: nobody, namespace_name: Nobody}\n",
        )
    });
    let (path, _, _) = write_config(&yaml);
    let run = |strict: bool| {
        let mut cmd = std::process::Command::new(sluice_bin());
        cmd.arg("check");
        if strict {
            cmd.arg("--strict");
        }
        cmd.arg("-c").arg(&path).output().unwrap()
    };
    let out = run(false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("1 warning(s)") && err.contains("namespace \"nobody\""),
        "{err}"
    );
    assert_eq!(run(true).status.code(), Some(1));
    let _ = std::fs::remove_file(&path);
}

/// The admin health and status words and time, and the gateway's `redis`
/// entry when counters are kept in Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_shapes() {
    let m = Mocks::start().await;
    let redis = redis_base();
    let gw = Gateway::start(&shipped(&m, |y| {
        y.replace(
            "  store: local ",
            &format!("  store: redis\n  redis_url: \"{redis}\"\n  # was:"),
        )
        .replace(
            "key_prefix: \"sluice:\"",
            "key_prefix: \"sluice-contract:\"",
        )
    }))
    .await;
    let api = Admin::new(&gw, ADMIN);
    for path in ["/health", "/api/v1/status"] {
        let (s, v) = api.get(path).await;
        assert_eq!(s, 200);
        assert_eq!(v["status"], "healthy", "{v}");
        let t = v["timestamp"].as_str().unwrap();
        assert!(
            t.len() == 24 && t.as_bytes()[10] == b'T' && t.ends_with('Z'),
            "ISO 8601: {t}"
        );
    }
    // A request through the limits (the trial rule) uses Redis. The store
    // connects on first use, waiting at most its timeout (200 ms): on a
    // loaded machine the first request may be admitted open, so requests
    // go on until one was counted.
    let v: Value = eventually_ok("a request counted in Redis", async || {
        let r = send(
            &gw,
            "/v1/chat/completions",
            &chat("gpt-4o"),
            &[("x-tenant", "trial")],
        )
        .await;
        // The trial rule admits 3 a minute: a denial was counted too.
        assert!([200, 429].contains(&r.status().as_u16()), "{}", r.status());
        let v: Value = reqwest::get(gw.url("/health"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["services"]["redis"]["status"] == "healthy" {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
    .await;
    assert_eq!(v["status"], "healthy", "{v}");
    assert_eq!(v["services"]["redis"]["status"], "healthy", "{v}");
    assert_eq!(v["services"]["redis"]["uses"]["counters"], "healthy", "{v}");
    assert!(v["timestamp"].is_u64(), "{v}");
}

/// `channel_header`: `X-Channel-Code` picks the namespace; `/api/chat` is
/// the chat completions path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_code_and_api_chat() {
    let m = Mocks::start().await;
    let gw = Gateway::start(&shipped(&m, |y| y)).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = send(
            &gw,
            "/api/chat",
            &chat("gpt-4o"),
            &[("X-Channel-Code", "trial")],
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    // The trial namespace's rule: three a minute.
    assert_eq!(statuses, [200, 200, 200, 429]);
    let r = send(
        &gw,
        "/api/chat",
        &chat("gpt-4o"),
        &[("x-channel-code", "nowhere")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("nowhere"),
        "{v}"
    );
    // Without it: the default namespace (no limit).
    for _ in 0..4 {
        let r = send(&gw, "/api/chat", &chat("gpt-4o"), &[]).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut out)
        .unwrap();
    out
}

/// gzip through an nginx-configs fragment, applied at once: JSON answers
/// compressed for clients that accept gzip, streams never; switched off
/// by changing the fragment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_from_nginx_configs_applies_live() {
    let m = Mocks::start().await;
    let gw = Gateway::start(&shipped(&m, |y| y)).await;
    let api = Admin::new(&gw, ADMIN);
    let gz = [("accept-encoding", "gzip")];
    let r = send(&gw, "/v1/chat/completions", &chat("gpt-4o"), &gz).await;
    assert_eq!(header(&r, "content-encoding"), "");
    let (s, v) = api
        .post(
            "/api/v1/nginx-configs",
            json!({"config_type": "http", "config_name": "gzip-settings",
                   "config_content": "gzip on; gzip_comp_level 6; gzip_types application/json; gzip_min_length 1;",
                   "is_active": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["config_id"].as_u64().unwrap();
    let r = send(&gw, "/v1/chat/completions", &chat("gpt-4o"), &gz).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-encoding"), "gzip");
    let body = r.bytes().await.unwrap();
    let v: Value = serde_json::from_str(&gunzip(&body)).unwrap();
    assert_eq!(v["object"], "chat.completion", "{v}");
    // Not for a client that does not accept it, not for a stream; the
    // same through a route (a model outside the catalog).
    for model in ["gpt-4o", "my-model"] {
        let r = send(&gw, "/v1/chat/completions", &chat(model), &gz).await;
        assert_eq!(header(&r, "content-encoding"), "gzip", "{model}");
        let r = send(&gw, "/v1/chat/completions", &chat(model), &[]).await;
        assert_eq!(header(&r, "content-encoding"), "", "{model}");
        let mut stream = chat(model);
        stream["stream"] = json!(true);
        let r = send(&gw, "/v1/chat/completions", &stream, &gz).await;
        assert_eq!(header(&r, "content-encoding"), "", "{model}");
        assert!(r.text().await.unwrap().contains("data: [DONE]"));
    }
    // Nor the gateway's own answers.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .header("accept-encoding", "gzip")
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(header(&r, "content-encoding"), "");
    // A directive Sluice cannot honour is refused by name.
    let (s, v) = api
        .post(
            "/api/v1/nginx-configs",
            json!({"config_type": "http", "config_name": "vary", "config_content": "gzip_vary on;"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("gzip_vary"), "{v}");
    // Off again.
    let (s, v) = api
        .put(
            &format!("/api/v1/nginx-configs/{id}"),
            json!({"config_content": "gzip off;"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let r = send(&gw, "/v1/chat/completions", &chat("gpt-4o"), &gz).await;
    assert_eq!(header(&r, "content-encoding"), "");
}

/// The internal channel's decision trace: the key that made a request
/// reads what was decided for it by its trace id; another key cannot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_channel_decision_trace() {
    let m = Mocks::start().await;
    let gw = Gateway::start(&shipped(&m, |y| {
        y.replace(
            "      # namespace: default ",
            "    - {name: other, key: sk-other-key}\n      # namespace: default ",
        )
    }))
    .await;
    let c = reqwest::Client::new();
    let r = c
        .post(gw.url("/internal/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-request-id", "trace-me-1")
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let trace = |key: &'static str, id: &'static str| {
        let req = c
            .get(gw.url(&format!("/internal/v1/debug/trace/{id}")))
            .bearer_auth(key);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or_default(),
            )
        }
    };
    let (s, v) = trace(KEY, "trace-me-1").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["namespace"], "default", "{v}");
    assert_eq!(v["model"], "gpt-4o", "{v}");
    assert_eq!(v["catalog"]["deployment"], "primary", "{v}");
    assert_eq!(v["attempts"], 1, "{v}");
    assert!(v["tokens"]["out"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(trace("sk-other-key", "trace-me-1").await.0, 404);
    assert_eq!(trace(KEY, "no-such-trace").await.0, 404);
    // External traffic is not traced.
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("x-request-id", "trace-me-2")
        .json(&chat("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(trace(KEY, "trace-me-2").await.0, 404);
}
