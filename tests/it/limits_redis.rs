//! Limits shared through the real Redis: two gateway instances enforce one
//! limit exactly (requests and tokens) under concurrent load, and an
//! unreachable Redis applies each rule's `fail_mode`.

use crate::common::*;
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

/// A money budget over two instances and 32 concurrent clients: the
/// admitted requests' cost never exceeds it, it is used to within one
/// request, every refusal is 402 `budget_exceeded`, and a later request
/// sees the settled remainder in `x-budget-remaining-usd`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_overspend_a_money_budget() {
    let m = mock("a").await;
    let prefix = unique_prefix();
    // $0.01 a day; $10 / $30 per million input / output tokens: a call of
    // about 9 prompt and 16 completion tokens costs about $0.00057.
    let rules = "  - rule_name: cents\n    rule_type: budget\n    rule_config: {max_usd: 0.01, period: day, key_by: api_key}\n";
    let yaml = with_admin(&shared_config(m.addr.port(), &redis_url(), &prefix, rules).replace(
        "rules:\n",
        "admin: {tokens: [ledger-tok]}\nmodels:\n  - name: priced\n    deployments:\n      - {name: d, upstream: p, price_input_per_m: 10, price_output_per_m: 30}\nrules:\n",
    ));
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let body = json!({"model": "priced", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hello there"}]});
    let cost = |v: &Value| {
        let (p, c) = (
            v["usage"]["prompt_tokens"].as_u64().unwrap(),
            v["usage"]["completion_tokens"].as_u64().unwrap(),
        );
        p * 10 + c * 30
    };
    let mut results = Vec::new();
    // 32 clients at once, twice.
    for _ in 0..2 {
        results.extend(burst(&[&a, &b], 32, &body).await);
    }
    let admitted: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, v)| v)
        .collect();
    let spent: u64 = admitted.iter().map(|v| cost(v)).sum();
    let one = cost(admitted[0]);
    assert!(spent <= 10_000, "spent {spent} of 10000 micro-USD");
    assert!(
        10_000 - spent < one,
        "spent {spent}: more than one request left unspent"
    );
    for (s, v) in &results {
        assert!(
            *s == 200 || (*s == 402 && v["error"]["code"] == "budget_exceeded"),
            "{s} {v}"
        );
    }
    let r = post(&reqwest::Client::new(), b.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 402);
    let left = (10_000 - spent) as f64 / 1e6;
    let shown: f64 = r.headers()["x-budget-remaining-usd"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((shown - left).abs() < 1e-9, "{shown} vs {left}");
    assert_eq!(r.headers()["x-budget-limit-usd"], "0.01");

    // The spend ledger, shared through Redis: either instance answers the
    // sum of what both settled, exactly.
    for gw in [&a, &b] {
        let (s, v) = Admin::new(gw, "ledger-tok").get("/api/v1/spend").await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["currency"], "USD");
        assert_eq!(v["total_micros"], spent, "{v}");
        assert_eq!(v["items"][0]["namespace"], "default", "{v}");
        assert_eq!(v["items"][0]["key"], "test", "{v}");
        assert_eq!(v["items"][0]["model"], "priced", "{v}");
        let (s, v) = Admin::new(gw, "ledger-tok")
            .get("/api/v1/spend?day=yesterday")
            .await;
        assert_eq!(s, 400, "{v}");
    }
}

/// A stream the budget caps is cut cleanly at what the money buys and is
/// charged what it delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_by_a_money_budget_is_charged_what_it_delivered() {
    let m = mock("a").await;
    let prefix = unique_prefix();
    // $0.0005: after a prompt of about 9 tokens ($0.00009) it buys 13
    // output tokens at $30 per million.
    let rules = "  - rule_name: small\n    rule_type: budget\n    rule_config: {max_usd: 0.0005, period: hour}\n";
    let yaml = shared_config(m.addr.port(), &redis_url(), &prefix, rules).replace(
        "rules:\n",
        "models:\n  - name: priced\n    deployments:\n      - {name: d, upstream: p, price_input_per_m: 10, price_output_per_m: 30}\nrules:\n",
    );
    let gw = Gateway::start(&yaml).await;
    let body = json!({"model": "priced", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "hello there"}]});
    let r = post(&reqwest::Client::new(), gw.url("/v1/chat/completions"))
        .header("x-mock-tokens", "200")
        .header("x-mock-ignore-max-tokens", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let usage: Value = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .find(|v| v["usage"].is_object())
        .map(|v| v["usage"].clone())
        .expect("usage chunk");
    let (p, c) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(c < 200 && p * 10 + c * 30 <= 500, "{usage}");
    // The charge is what was delivered: what is left says so.
    let r = post(&reqwest::Client::new(), gw.url("/v1/chat/completions"))
        .json(&json!({"model": "priced", "max_tokens": 1,
            "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap();
    // Less is left than the next request's prompt and one token: 402, and
    // what is left is the budget minus what the stream delivered.
    assert_eq!(r.status(), 402);
    let spent_first = p * 10 + c * 30;
    let shown: f64 = r.headers()["x-budget-remaining-usd"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (shown - (500 - spent_first) as f64 / 1e6).abs() < 1e-9,
        "left {shown}, delivered {spent_first} micro-USD"
    );
}
