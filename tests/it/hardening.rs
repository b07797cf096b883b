//! The adversarial suite: policy holds for equivalent inputs (declared
//! content type, choices, both output-limit fields), resources a client can
//! hold are bounded, and signals behave as documented. Each test fails
//! without the fix it guards.

use crate::common::*;
use serde_json::{json, Value};

/// A key limited to one model, every request capped at 50 output tokens,
/// one request at a time (a slot not given back shows as a 503).
fn capped(port: u16) -> String {
    format!(
        r#"{TEST_SERVER}listen:
  proxy: "{{proxy}}"
auth:
  enabled: true
  keys:
    - name: test
      key: sk-test
      models: [gpt-4o-mini]
default_namespace: default
namespaces:
  - namespace_code: default
upstream_servers:
{}
{CATCH_ALL}rules:
  - rule_name: fifty-out
    rule_type: token_limit
    rule_config: {{max_output_tokens: 50}}
  - rule_name: one-at-a-time
    rule_type: concurrency
    rule_config: {{max_concurrent: 1}}
"#,
        server("a", "p", port, "")
    )
}

/// What clients declare; `None` sends no `Content-Type` at all.
const CONTENT_TYPES: [Option<&str>; 7] = [
    None,
    Some("application/json"),
    Some("APPLICATION/JSON; charset=utf-8"),
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=x"),
    Some("application/octet-stream"),
];

fn send(
    c: &reqwest::Client,
    url: String,
    content_type: Option<&str>,
    body: &Value,
) -> reqwest::RequestBuilder {
    let r = post(c, url).body(body.to_string());
    match content_type {
        Some(ct) => r.header("content-type", ct),
        None => r,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_policy_holds_whatever_the_declared_content_type() {
    let m = mock("a").await;
    let gw = Gateway::start(&capped(m.addr.port())).await;
    let c = reqwest::Client::new();
    for ct in CONTENT_TYPES {
        // The model allow-list reads the body.
        let other = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
        let r = send(&c, gw.url("/v1/chat/completions"), ct, &other)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{ct:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "model_not_allowed", "{ct:?}");

        // The output cap clamps what the upstream is asked for ...
        let big = json!({"model": "gpt-4o-mini", "max_tokens": 3000,
            "messages": [{"role": "user", "content": "hi"}]});
        let r = send(&c, gw.url("/v1/chat/completions"), ct, &big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ct:?}");
        assert_eq!(r.headers()["x-mock-seen-max-tokens"], "50", "{ct:?}");

        // ... and a stream that overruns it is metered and cut.
        let stream = json!({"model": "gpt-4o-mini", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        let r = send(&c, gw.url("/v1/chat/completions"), ct, &stream)
            .header("x-mock-ignore-max-tokens", "1")
            .header("x-mock-tokens", "300")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{ct:?}");
        let text = r.text().await.unwrap();
        let deltas = text.matches("\"content\":\" ").count();
        assert_eq!(deltas, 50, "{ct:?}: {text}");
        assert!(text.contains("\"finish_reason\":\"length\""), "{ct:?}");
    }
    // A model endpoint refuses a body that is not JSON, whatever it claims.
    for ct in CONTENT_TYPES {
        let mut r = post(&c, gw.url("/v1/chat/completions")).body("model=gpt-4o&messages=x");
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 400, "{ct:?}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_request", "{ct:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_choice_counts_against_the_cap() {
    let m = mock("a").await;
    let gw = Gateway::start(&capped(m.addr.port())).await;
    let c = reqwest::Client::new();
    let ask = |extra: Value| {
        let mut body = json!({"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        post(&c, gw.url("/v1/chat/completions")).json(&body)
    };
    // Five choices share the 50 tokens: 10 each, 50 billed in all.
    let r = ask(json!({"n": 5, "max_tokens": 50})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-seen-max-tokens"], "10");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"].as_array().unwrap().len(), 5);
    assert_eq!(v["usage"]["completion_tokens"], 50);

    // A stream of several choices that overruns is cut at 50 in total.
    let r = ask(json!({"n": 4, "stream": true}))
        .header("x-mock-ignore-max-tokens", "1")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(text.matches("\"content\":\" ").count(), 50, "{text}");

    // More choices than the cap has tokens: refused before the upstream.
    let served_before = served(&m);
    let r = ask(json!({"n": 100, "max_tokens": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("choices"));
    assert_eq!(served(&m), served_before);
    // ... and what the limits had granted it is given back.
    let r = ask(json!({"n": 2})).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Both output-limit fields are clamped, whichever the provider reads.
    let r = ask(json!({"max_tokens": 5000, "max_completion_tokens": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-seen-max-tokens"], "50");
    let r = ask(json!({"max_tokens": 10, "max_completion_tokens": 5000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-mock-seen-max-tokens"], "50");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_are_matched_routed_and_forwarded_normalised() {
    let m = mock("a").await;
    let yaml = config(
        &[server("a", "p", m.addr.port(), "")],
        "matchers:\n  - {namespace: default, matcher_type: path, match_operator: regex, match_value: '^/echo/secret', action: deny, priority: 1}\nroutes:\n  - {prefix: /echo, upstream: p}\n",
    );
    let gw = Gateway::start(&yaml).await;
    // Raw requests: an HTTP client would normalise some spellings itself.
    let get = |path: &str| {
        gw.raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nConnection: close\r\n\r\n").as_bytes())
    };
    for path in [
        "/echo/secret",
        "/echo//secret",
        "/echo/./secret",
        "/echo/%73ecret",
        "/echo/%73%65cret",
        "/echo/x/../secret",
        "/echo/secret/",
        "//echo/secret",
    ] {
        let resp = get(path);
        assert!(resp.starts_with("HTTP/1.1 403"), "{path}: {resp}");
    }
    // What is forwarded is the normalised path.
    let resp = get("/echo/a//b/./c/../d?q=1");
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["path"], "/echo/a/b/d", "{v}");
    assert_eq!(v["query"], "q=1", "{v}");
    // Non-ASCII has one spelling: percent-encoded UTF-8.
    for path in ["/echo/s\u{e9}cret", "/echo/s%c3%a9cret"] {
        let resp = get(path);
        let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["path"], "/echo/s%C3%A9cret", "{path}: {v}");
    }
    // A dot segment never climbs out of a route's prefix into another.
    let resp = get("/v1/../echo/trav");
    let body = &resp[resp.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["path"], "/echo/trav", "{v}");
    // Ambiguous spellings are refused with the reason.
    for path in ["/echo/a%2Fb", "/../echo", "/echo/a%zz", "/echo/a\\b"] {
        let resp = get(path);
        assert!(resp.starts_with("HTTP/1.1 400"), "{path}: {resp}");
        assert!(resp.contains("request path refused"), "{path}: {resp}");
    }
}

/// Invalid input on a catalog model is a 400 in the client's own format,
/// before any byte of an answer, for JSON and streams alike (it was a 500
/// or a 400 head with no body about half the time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_catalog_input_is_a_400_in_the_clients_format() {
    let m = mock("a").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("an", "anp", m.addr.port(), "anthropic", "k"),
    ];
    let models = "models:\n  - name: via-claude\n    deployments:\n      - {name: an, upstream: anp, model: claude-sonnet-4-5}\n";
    let gw = Gateway::start(&config(&servers, &format!("{CATCH_ALL}{models}"))).await;
    let c = reqwest::Client::new();
    for round in 0..10 {
        for stream in [false, true] {
            // Two choices: Anthropic's API cannot express it.
            let openai = json!({"model": "via-claude", "n": 2, "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]});
            let r = post(&c, gw.url("/v1/chat/completions"))
                .json(&openai)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "round {round} stream {stream}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "invalid_request", "{v}");
            assert!(v["error"]["message"].as_str().unwrap().contains('n'), "{v}");

            // A Messages request whose content block type is unknown.
            let anthropic = json!({"model": "via-claude", "max_tokens": 10, "stream": stream,
                "messages": [{"role": "user", "content": [{"type": "nonsense"}]}]});
            let r = c
                .post(gw.url("/v1/messages"))
                .header("x-api-key", "sk-test")
                .json(&anthropic)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 400, "round {round} stream {stream}");
            assert!(r.headers().contains_key("content-length"));
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        }
    }
    assert_eq!(served(&m), 0);
}

/// A catalog model served by an OpenAI-format deployment answers with the
/// public name the client asked for, in JSON and in every stream chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_answers_carry_the_public_model_name() {
    let m = mock("a").await;
    let models = "models:\n  - name: house-model\n    deployments:\n      - {name: oa, upstream: p, model: gpt-4o-mini}\n";
    let gw = Gateway::start(&config(
        &[server("a", "p", m.addr.port(), "    provider: openai\n")],
        &format!("{CATCH_ALL}{models}"),
    ))
    .await;
    let c = reqwest::Client::new();
    let body = |stream: bool| {
        json!({"model": "house-model", "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let v: Value = post(&c, gw.url("/v1/chat/completions"))
        .json(&body(false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["model"], "house-model", "{v}");
    let text = post(&c, gw.url("/v1/chat/completions"))
        .json(&body(true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    assert!(chunks.len() > 5, "{text}");
    for chunk in &chunks {
        assert_eq!(chunk["model"], "house-model", "{chunk}");
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

/// Values that would break serving later are refused up front, each named.
#[test]
fn check_refuses_values_that_break_serving_later() {
    let yaml = r#"
listen: {proxy: "127.0.0.1:1", admin: "127.0.0.1:2"}
admin: {tokens: [tok-a, tok-a, " "]}
metrics: {token: tok-a}
namespaces:
  - {namespace_code: "bad\ncode"}
  - {namespace_code: " padded "}
upstream_servers:
  - server_name: s
    server_address: 127.0.0.1
    server_port: 9
    server_type: https
    sni: "api.example.com\r\nx"
    inject_headers: {Host: evil, content-length: "5", Transfer-Encoding: chunked, x-fine: ok}
routes:
  - {prefix: /, upstream: s}
"#;
    let out = sluice_check(yaml);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "admin.tokens[1]: duplicates another admin token",
        "admin.tokens[2]: must not be empty",
        "metrics.token: must differ from every admin token",
        "namespaces[0].namespace_code:",
        "namespaces[1].namespace_code:",
        "upstream_servers[0].sni:",
        "upstream_servers[0].inject_headers.Host:",
        "upstream_servers[0].inject_headers.content-length:",
        "upstream_servers[0].inject_headers.Transfer-Encoding:",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert!(!text.contains("x-fine"), "{text}");
    assert!(!text.contains("tok-a"), "a secret in the output:\n{text}");
}

/// A pool nothing routes to does not make the gateway unhealthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_pool_that_cannot_resolve_leaves_health_alone() {
    let m = mock("a").await;
    let servers = [
        server("a", "p", m.addr.port(), ""),
        "  - server_name: ghost\n    pool: unused\n    server_address: no-such-host.invalid\n    server_port: 80\n".to_string(),
    ];
    let gw = Gateway::start(&config(&servers, CATCH_ALL)).await;
    let r = reqwest::get(gw.url("/health")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["services"]["upstreams"]["pools"]["unused"]["in_use"], false,
        "{v}"
    );
    assert_eq!(
        v["services"]["upstreams"]["pools"]["p"]["in_use"], true,
        "{v}"
    );
}

/// An upstream answering 101 to a request that never asked to upgrade gets
/// no tunnel: the client gets 502 and none of the upstream's raw bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unasked_upgrade_opens_no_tunnel() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming().flatten() {
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: raw\r\n\r\nTUNNEL-BYTES",
            );
        }
    });
    let gw = Gateway::start(&one_mock(port, "")).await;
    let resp = gw.raw(
        b"GET /anything HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nConnection: close\r\n\r\n",
    );
    assert!(resp.starts_with("HTTP/1.1 502"), "{resp}");
    assert!(!resp.contains("TUNNEL-BYTES"), "{resp}");
}

/// A client that goes away mid-stream is the client's doing: no ERROR line
/// (Pingora wrote two, one for the request and one for its subrequest).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_abort_logs_no_error() {
    use futures_util::StreamExt;
    let m = mock("a").await;
    let dir = std::env::temp_dir();
    let access = dir.join(format!("sluice-abort-{}.access", std::process::id()));
    let stderr = dir.join(format!("sluice-abort-{}.err", std::process::id()));
    let _ = std::fs::remove_file(&access);
    let rest = format!("access_log:\n  path: {}\n", access.display());
    let gw = Gateway::start_logging(&one_mock(m.addr.port(), &rest), "warn", Some(&stderr)).await;
    let c = reqwest::Client::new();
    let r = gw.slow_stream(&c, 100, 50).await;
    let mut body = r.bytes_stream();
    body.next().await.unwrap().unwrap();
    drop(body);
    drop(c);
    // The access log line is written after Pingora's own lines.
    eventually("the access log line", async || {
        std::fs::read_to_string(&access).is_ok_and(|t| t.contains("chat/completions"))
    })
    .await;
    let log = std::fs::read_to_string(&stderr).unwrap();
    assert!(!log.contains("ERROR"), "{log}");
    let _ = std::fs::remove_file(&access);
    let _ = std::fs::remove_file(&stderr);
}

/// A stream whose upstream frames it with `Content-Length` reaches the
/// client as it arrives, and no stream runs past `stream_total_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_framed_streams_flush_and_streams_are_bounded() {
    use futures_util::StreamExt;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (got_first, wait_first) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let Some(Ok(mut s)) = listener.incoming().next() else {
            return;
        };
        let mut buf = [0u8; 8192];
        let _ = s.read(&mut buf);
        let first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" first\"}}]}\n\n";
        let rest = "data: [DONE]\n\n";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n",
            first.len() + rest.len()
        );
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(first.as_bytes());
        // The rest only once the client has the first event.
        let _ = wait_first.recv_timeout(std::time::Duration::from_secs(10));
        let _ = s.write_all(rest.as_bytes());
    });
    let m = mock("m").await;
    let yaml = config(
        &[server("a", "p", port, ""), server("m", "pm", m.addr.port(), "")],
        "timeouts: {stream_total_ms: 1500}\nroutes:\n  - {prefix: /mock, upstream: pm, strip_prefix: true}\n  - {prefix: /, upstream: p}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), body.next())
        .await
        .expect("the first event arrived before the rest was sent")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&first).contains("first"));
    got_first.send(()).unwrap();
    let mut text = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // A stream that would run for 100 s ends at the 1.5 s bound.
    let started = std::time::Instant::now();
    let r = post(&c, gw.url("/mock/v1/chat/completions"))
        .header("x-mock-tokens", "1000")
        .header("x-mock-chunk-ms", "100")
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    let mut deltas = 0;
    while let Some(Ok(chunk)) = body.next().await {
        deltas += String::from_utf8_lossy(&chunk)
            .matches("\"content\":\" ")
            .count();
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(deltas > 0 && deltas < 1000, "{deltas}");
}

/// Random JSON of every shape at every admin endpoint that takes a body:
/// never a 5xx, never a crash, and the config still reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_bodies_of_any_shape_get_a_clear_answer() {
    let m = mock("a").await;
    let yaml = admin_config(m.addr.port(), "adm", "");
    let mut gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    let targets = [
        ("POST", "/api/v1/namespaces"),
        ("PUT", "/api/v1/namespaces/1"),
        ("POST", "/api/v1/matchers"),
        ("POST", "/api/v1/rules"),
        ("PUT", "/api/v1/rules/1"),
        ("POST", "/api/v1/upstream-servers"),
        ("POST", "/api/v1/proxy-rules"),
        ("POST", "/api/v1/nginx-configs"),
        ("PUT", "/api/v1/namespaces/1/route"),
        ("POST", "/api/v1/route/namespace"),
        ("POST", "/api/v1/route/validate"),
        ("POST", "/api/v1/namespaces/1/validate"),
        ("POST", "/api/v1/tokens/calculate"),
        ("POST", "/api/v1/tokens/batch-calculate"),
    ];
    let mut seed: u64 = 0xad41;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let fields = [
        "namespace_code",
        "namespace_name",
        "namespace_id",
        "rule_name",
        "rule_type",
        "rule_config",
        "matcher_type",
        "match_field",
        "match_operator",
        "match_value",
        "action",
        "priority",
        "server_name",
        "server_address",
        "server_port",
        "weight",
        "sni",
        "inject_headers",
        "headers",
        "body",
        "path",
        "text",
        "texts",
        "model_name",
        "match_strategy",
        "config_content",
        "is_active",
        "upstream",
    ];
    for round in 0..300 {
        let mut body = serde_json::Map::new();
        for _ in 0..next(6) {
            let value = match next(9) {
                0 => Value::Null,
                1 => json!(next(3) == 0),
                2 => json!(next(1 << 40) as i64 - (1 << 39)),
                3 => json!(-1.5e300),
                4 => json!("x".repeat(next(3) as usize * 40_000)),
                5 => json!("\u{0}\n\r\t\"\\ünïcødé"),
                6 => json!([1, "two", null, {"three": []}]),
                7 => json!({"max_requests": "many", "nested": {"deep": [[[]]]}}),
                _ => json!("header:x-tenant=enterprise"),
            };
            body.insert(
                fields[next(fields.len() as u64) as usize].to_string(),
                value,
            );
        }
        let (method, path) = targets[next(targets.len() as u64) as usize];
        let text = match next(10) {
            0 => "{\"unterminated\": ".to_string(),
            1 => "[1,2,3]".to_string(),
            _ => Value::Object(body).to_string(),
        };
        let r = c
            .request(method.parse().unwrap(), gw.admin_url(path))
            .bearer_auth("adm")
            .header("content-type", "application/json")
            .body(text.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let answer = r.text().await.unwrap();
        assert!(
            status < 500,
            "round {round}: {method} {path} {status}: {answer}\n{text:.300}"
        );
        // The dry runs echo the request by contract (`request_data`).
        if !path.contains("validate") && !path.ends_with("route/namespace") {
            assert!(
                answer.len() < 8_192,
                "round {round}: an answer echoing its input: {answer:.200}"
            );
        }
    }
    assert!(gw.alive());
    let r = c
        .get(gw.admin_url("/api/v1/namespaces"))
        .bearer_auth("adm")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.chat(&c, false).await.status(), 200);
}

/// With no healthy upstream, a stream gets 503 like any request, never a
/// 500 (the subrequest's error could reach the parent before its answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_without_an_upstream_get_503() {
    let closed = refused_port();
    let gw = Gateway::start(&one_mock(closed.port, "")).await;
    let c = reqwest::Client::new();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..150 {
        let r = gw.chat(&c, true).await;
        *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
        let _ = r.bytes().await;
    }
    assert!(
        statuses.keys().all(|s| *s == 503 || *s == 502),
        "{statuses:?}"
    );
}
