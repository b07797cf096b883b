//! The external channel's redaction with the real binary: masking rules of
//! a namespace over JSON answers and streams (a match split across SSE
//! events included) while usage stays the provider's; providers' own
//! headers and error details kept from external clients; the internal
//! channel unredacted; masking rules checked and changed through the
//! admin API.

use crate::common::*;
use serde_json::{json, Value};

const TOKEN: &str = "red-tok";
const MASKING: &str = "    masking:\n      - {builtin: email}\n      - {builtin: card}\n      - {name: account, pattern: \"ACCT-[0-9]{6}\", replacement: \"ACCT-******\"}\n";

fn masked_config(port: u16) -> String {
    let yaml = admin_config(port, TOKEN, "");
    let ns = "  - namespace_code: default\n";
    assert!(yaml.contains(ns));
    yaml.replacen(ns, &format!("{ns}{MASKING}"), 1)
}

async fn ask(gw: &Gateway, path: &str, stream: bool, reply: &str) -> reqwest::Response {
    post(&reqwest::Client::new(), gw.url(path))
        .header("x-mock-reply", reply)
        .json(&json!({"model": "gpt-4o-mini", "stream": stream,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
}

/// The content, finish reason and usage of an SSE answer; every data
/// payload must be JSON and `[DONE]` the last.
fn read_stream(text: &str) -> (String, Option<String>, Value) {
    let mut content = String::new();
    let (mut finish, mut usage) = (None, Value::Null);
    let data: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    for d in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        if !v["usage"].is_null() {
            usage = v["usage"].clone();
        }
    }
    (content, finish, usage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_to_external_clients_are_masked_and_carry_no_internals() {
    let m = mock("a").await;
    let gw = Gateway::start(&masked_config(m.addr.port())).await;
    let reply = "Mail alice@example.com, card 4111 1111 1111 1111, ACCT-123456; not 1234 5678.";

    // JSON: masked on the external channel, as is on the internal one;
    // the usage is the provider's either way.
    let r = ask(&gw, "/v1/chat/completions", false, reply).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("openai-organization").is_none());
    let ext: Value = r.json().await.unwrap();
    assert_eq!(
        ext["choices"][0]["message"]["content"],
        "Mail [REDACTED:email], card [REDACTED:card], ACCT-******; not 1234 5678."
    );
    let r = ask(&gw, "/internal/v1/chat/completions", false, reply).await;
    assert_eq!(r.headers()["openai-organization"], "mock-org");
    let int: Value = r.json().await.unwrap();
    assert_eq!(int["choices"][0]["message"]["content"], reply);
    assert_eq!(ext["usage"], int["usage"]);

    // A stream with matches split across events, one of them across three.
    let pieces = "Write to ali|ce@exa|mple.com or ACCT-12|3456 today|, thanks";
    let r = ask(&gw, "/v1/chat/completions", true, pieces).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let (content, finish, usage) = read_stream(&text);
    assert_eq!(
        content,
        "Write to [REDACTED:email] or ACCT-****** today, thanks"
    );
    assert!(!text.contains("ali") && !text.contains("3456"), "{text}");
    assert_eq!(finish.as_deref(), Some("stop"));
    let r = ask(&gw, "/internal/v1/chat/completions", true, pieces).await;
    let (raw, _, raw_usage) = read_stream(&r.text().await.unwrap());
    assert_eq!(raw, pieces.replace('|', ""));
    assert_eq!(usage, raw_usage);
    assert_eq!(usage["completion_tokens"], 5);

    // An upstream error of a routed request: the gateway's code and its
    // own words externally, the provider's details internally.
    let fail = |path: &str| {
        post(&reqwest::Client::new(), gw.url(path))
            .header("x-mock-status", "400")
            .json(&chat_body(false))
            .send()
    };
    let r = fail("/v1/chat/completions").await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "upstream_invalid_request", "{v}");
    assert!(v.get("upstream_status").is_none(), "{v}");
    assert!(!v.to_string().contains("mock failure"), "{v}");
    assert!(!v["trace_id"].as_str().unwrap().is_empty());
    let r = fail("/internal/v1/chat/completions").await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("mock failure"));
    // The gateway's own errors: no internals either.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert!(
        v.get("source").is_none() && v["error"].get("source").is_none(),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masking_rules_are_checked_and_changed_through_the_admin_api() {
    let m = mock("a").await;
    let gw = Gateway::start(&admin_config(m.addr.port(), TOKEN, "")).await;
    let api = Admin::new(&gw, TOKEN);
    let reply = "token sk-abcdefghijklmnopqrstuvwx1234 end";
    let content = async || {
        let v: Value = ask(&gw, "/v1/chat/completions", false, reply)
            .await
            .json()
            .await
            .unwrap();
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(content().await, reply);
    // Unbounded or invalid patterns are refused, naming the rule.
    for (bad, says) in [
        (json!([{"name": "greedy", "pattern": "a+"}]), "greedy"),
        (json!([{"name": "broken", "pattern": "(["}]), "broken"),
        (json!([{"builtin": "nope"}]), "nope"),
    ] {
        let (s, v) = api
            .put("/api/v1/namespaces/1", json!({"masking": bad}))
            .await;
        assert_eq!(s, 400, "{v}");
        assert!(v.to_string().contains(says), "{v}");
    }
    let (s, v) = api
        .put(
            "/api/v1/namespaces/1",
            json!({"masking": [{"builtin": "api_key"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["namespace"]["masking"][0]["builtin"], "api_key");
    assert_eq!(content().await, "token [REDACTED:api_key] end");
    let (s, _) = api
        .put("/api/v1/namespaces/1", json!({"masking": []}))
        .await;
    assert_eq!(s, 200);
    assert_eq!(content().await, reply);
}
