//! Limits shared through the real Redis: two gateway instances enforce one
//! limit exactly (requests and tokens) under concurrent load, and an
//! unreachable Redis applies each rule's `fail_mode`.

// Tests may unwrap, expect and panic (denied in the crates: Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};

fn redis_url() -> String {
    std::env::var("SLUICE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unique_prefix() -> String {
    format!(
        "sluice-test-{}-{}:",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn shared_config(port: u16, url: &str, prefix: &str, rules: &str) -> String {
    one_mock(
        port,
        &format!(
            "counters:\n  store: redis\n  redis_url: \"{url}\"\n  key_prefix: \"{prefix}\"\n  timeout_ms: 500\nrules:\n{rules}"
        ),
    )
}

/// Fires `n` chat requests at once, alternating between the gateways;
/// returns (status, body) of each.
async fn burst(gws: &[&Gateway], n: usize, body: &Value) -> Vec<(u16, Value)> {
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..n {
        let req = post(&c, gws[i % gws.len()].url("/v1/chat/completions")).json(body);
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.expect("send");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_admit_exactly_the_request_limit() {
    let m = mock("a").await;
    let prefix = unique_prefix();
    let rules = "  - rule_name: twenty\n    rule_type: rate_limit\n    rule_config: {max_requests: 20, time_window_seconds: 3600, key_by: global}\n";
    let yaml = shared_config(m.addr.port(), &redis_url(), &prefix, rules);
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let results = burst(&[&a, &b], 80, &chat_body(false)).await;
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let limited = results
        .iter()
        .filter(|(s, v)| *s == 429 && v["error"]["code"] == "rate_limited")
        .count();
    assert_eq!((ok, limited), (20, 60), "{results:?}");
    assert_eq!(served(&m), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_overspend_a_token_budget() {
    let m = mock("a").await;
    let prefix = unique_prefix();
    let budget = 400u64;
    let rules = format!("  - rule_name: budget\n    rule_type: token_limit\n    rule_config: {{time_window_enabled: true, time_window_minutes: 60, max_tokens_per_window: {budget}}}\n");
    let yaml = shared_config(m.addr.port(), &redis_url(), &prefix, &rules);
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let mut body = chat_body(false);
    body["max_tokens"] = json!(10);
    let results = burst(&[&a, &b], 60, &body).await;
    let admitted: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    let spent: u64 = admitted
        .iter()
        .map(|v| v["usage"]["total_tokens"].as_u64().unwrap())
        .sum();
    let prompt = admitted[0]["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(spent <= budget, "spent {spent} of {budget}");
    // Requests are denied only when less than one request's prompt + 1
    // token is left: the budget is used to the token.
    assert!(budget - spent <= prompt, "spent {spent} of {budget}");
    for (s, v) in &results {
        assert!(
            *s == 200 || (*s == 429 && v["error"]["code"] == "token_limit_exceeded"),
            "{s} {v}"
        );
    }
    // A later request sees the settled remainder.
    let r = post(&reqwest::Client::new(), a.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.headers()["x-ratelimit-remaining-tokens"],
        (budget - spent).to_string().as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_applies_each_fail_mode() {
    let m = mock("a").await;
    let refused = refused_port();
    let dead = format!("redis://127.0.0.1:{}", refused.port);
    let open = "  - rule_name: lenient\n    rule_type: rate_limit\n    rule_config: {max_requests: 1, time_window_seconds: 60, fail_mode: open}\n";
    let gw = Gateway::start(&shared_config(m.addr.port(), &dead, "x:", open)).await;
    let c = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(gw.chat(&c, false).await.status(), 200);
    }
    drop(gw);

    let closed = "  - rule_name: strict\n    rule_type: rate_limit\n    rule_config: {max_requests: 1, time_window_seconds: 60, fail_mode: closed}\n";
    let yaml = shared_config(m.addr.port(), &dead, "x:", closed)
        .replace("listen:\n", "metrics: {token: m-tok}\nlisten:\n");
    let gw = Gateway::start(&yaml).await;
    let r = gw.chat(&c, false).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "limits_unavailable");
    let text = gw.metrics(&c, "m-tok").await;
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("sluice_counter_store_errors_total "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap();
    assert!(errors >= 1, "{text}");
}
