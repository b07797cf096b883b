//! The adversarial suite: policy holds for equivalent inputs (declared
//! content type, choices, both output-limit fields), resources a client can
//! hold are bounded, and signals behave as documented. Each test fails
//! without the fix it guards.

mod common;

use common::*;
use serde_json::{json, Value};

/// A key limited to one model, and every request capped at 50 output tokens.
fn capped(port: u16) -> String {
    format!(
        r#"server:
  threads: 1
  grace_period_seconds: 0
  graceful_shutdown_timeout_seconds: 1
listen:
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
