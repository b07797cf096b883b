//! The model catalog through the real gateway against the mock in each
//! provider's wire format: Azure's deployment path, `api-version` and
//! `api-key`; Anthropic translated both ways (JSON and SSE); fallback to
//! the next deployment before the first byte (503, 429 + Retry-After,
//! connect refused), never after it; the breaker opening; strategies;
//! alias paths; errors in the gateway's shape.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// A catalog config: servers, then `models:` YAML.
fn catalog(servers: &[String], models: &str) -> String {
    config(
        servers,
        &format!("{CATCH_ALL}timeouts: {{idle_ms: 800, first_byte_ms: 5000}}\nmodels:\n{models}"),
    )
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "max_tokens": 50,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]})
}

async fn send(
    gw: &Gateway,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut req = post(&client, gw.url(path)).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send")
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The text of an OpenAI SSE body, its finish reason and its usage.
fn read_sse(text: &str) -> (String, Option<String>, Option<Value>, bool) {
    let (mut content, mut finish, mut usage, mut done) = (String::new(), None, None, false);
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
            continue;
        }
        let v: Value = serde_json::from_str(data).expect("chunk is JSON");
        assert_eq!(v["object"], "chat.completion.chunk", "{v}");
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        if !v["usage"].is_null() {
            usage = Some(v["usage"].clone());
        }
    }
    (content, finish, usage, done)
}

fn expected_text(n: usize) -> String {
    (0..n).map(sluice::mock::openai_token).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_deployment_path_api_version_and_key() {
    let m = mock("az").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("az", "azp", m.addr.port(), "azure", "az-secret"),
    ];
    let models = "  - name: gpt-4o\n    deployments:\n      - {name: east, upstream: azp, deployment: gpt4o-prod, api_version: 2024-10-21}\n";
    let gw = Gateway::start(&catalog(&servers, models)).await;
    for path in [
        "/v1/chat/completions",
        "/api/chat/completions",
        "/internal/v1/chat/completions",
    ] {
        let r = send(&gw, path, &chat("gpt-4o", false), &[]).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(header(&r, "x-mock-seen-deployment"), "gpt4o-prod");
        assert_eq!(header(&r, "x-mock-seen-api-version"), "2024-10-21");
        assert_eq!(header(&r, "x-mock-seen-api-key"), "az-secret");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], expected_text(16));
    }
    // Not a catalog model: routed as before (the route's pool, OpenAI path).
    let r = send(
        &gw,
        "/v1/chat/completions",
        &chat("gpt-4o-mini", false),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-seen-deployment"), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_translated_both_ways_json_and_stream() {
    let m = mock("claude").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("an", "anp", m.addr.port(), "anthropic", "an-secret"),
    ];
    let models = "  - name: claude\n    deployments:\n      - {name: sonnet, upstream: anp, model: claude-sonnet-4-5, price_input_per_m: 3, price_output_per_m: 15}\n";
    let gw = Gateway::start(&catalog(&servers, models)).await;

    let r = send(&gw, "/v1/chat/completions", &chat("claude", false), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-seen-api-key"), "an-secret");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion", "{v}");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], expected_text(16));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 16);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // max_tokens reached → finish_reason length.
    let mut body = chat("claude", false);
    body["max_tokens"] = json!(3);
    let v: Value = send(&gw, "/v1/chat/completions", &body, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["choices"][0]["message"]["content"], expected_text(3));

    let mut body = chat("claude", true);
    body["stream_options"] = json!({"include_usage": true});
    let r = send(&gw, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/event-stream"));
    let text = r.text().await.unwrap();
    let (content, finish, usage, done) = read_sse(&text);
    assert_eq!(content, expected_text(16), "{text}");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(usage.expect("usage chunk")["completion_tokens"], 16);
    assert!(done, "{text}");

    // An Anthropic error → the gateway's shape, readable as OpenAI's.
    let r = send(
        &gw,
        "/v1/chat/completions",
        &chat("claude", false),
        &[("x-mock-status", "400")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    // The external channel: code, message and trace id, no provider words.
    assert_eq!(v["code"], "upstream_invalid_request");
    assert_eq!(
        v["error"]["message"],
        "the model provider refused the request as invalid"
    );
    assert!(
        v.get("upstream_status").is_none() && v.get("source").is_none(),
        "{v}"
    );
    assert!(!v["trace_id"].as_str().unwrap().is_empty());
    // The internal channel keeps the details.
    let r = send(
        &gw,
        "/internal/v1/chat/completions",
        &chat("claude", false),
        &[("x-mock-status", "400")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["source"], "upstream");
    assert_eq!(v["upstream_status"], 400);
    assert_eq!(v["upstream_code"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "mock failure 400");
    assert!(!v["trace_id"].as_str().unwrap().is_empty());
}

fn two_deployments(a: u16, b: u16, extra: &str) -> (Vec<String>, String) {
    let servers = vec![
        server("p", "p", b, ""),
        server("a", "pa", a, ""),
        server("b", "pb", b, ""),
    ];
    let models = format!("  - name: m\n{extra}    deployments:\n      - {{name: a, upstream: pa, priority: 0}}\n      - {{name: b, upstream: pb, priority: 1}}\n");
    (servers, models)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_before_the_first_byte() {
    let a = mock("a").await;
    let b = mock("b").await;
    // Six failures of `a` in a row: keep its breaker out of this test.
    let no_breaker = "    breaker: {consecutive_failures: 100, error_rate: 0}\n";
    let (servers, models) = two_deployments(a.addr.port(), b.addr.port(), no_breaker);
    let gw = Gateway::start(&catalog(&servers, &models)).await;
    for stream in [false, true] {
        for (status, retry_after) in [("503", None), ("429", Some("0")), ("500", None)] {
            let mut h = vec![("x-mock-only", "a"), ("x-mock-status", status)];
            if let Some(s) = retry_after {
                h.push(("x-mock-retry-after", s));
            }
            let before = (served(&a), served(&b));
            let r = send(&gw, "/v1/chat/completions", &chat("m", stream), &h).await;
            assert_eq!(r.status(), 200, "status {status} stream {stream}");
            assert_eq!(header(&r, "x-mock-id"), "b");
            let text = r.text().await.unwrap();
            assert!(text.contains("water"), "{text}");
            assert_eq!((served(&a), served(&b)), (before.0 + 1, before.1 + 1));
        }
    }
    // Connect refused on the first deployment.
    let dead = refused_port();
    let (servers, models) = two_deployments(dead.port, b.addr.port(), "");
    let gw = Gateway::start(&catalog(&servers, &models)).await;
    for stream in [false, true] {
        let r = send(&gw, "/v1/chat/completions", &chat("m", stream), &[]).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-mock-id"), "b");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_retries_after_the_first_byte() {
    let a = mock("a").await;
    let b = mock("b").await;
    let (servers, models) = two_deployments(a.addr.port(), b.addr.port(), "");
    let gw = Gateway::start(&catalog(&servers, &models)).await;
    let r = send(
        &gw,
        "/v1/chat/completions",
        &chat("m", true),
        &[("x-mock-only", "a"), ("x-mock-stall-after", "3")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-id"), "a");
    // The stream stalls; the gateway's idle timeout cuts it (an incomplete
    // body, never a second answer spliced in).
    let body = tokio::time::timeout(Duration::from_secs(10), r.text())
        .await
        .expect("cut in time");
    if let Ok(text) = body {
        assert!(!text.contains("[DONE]"), "{text}");
    }
    assert_eq!(served(&b), 0, "no retry after the first byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_and_shows_in_health() {
    let a = mock("a").await;
    let servers = [
        server("p", "p", a.addr.port(), ""),
        server("a", "pa", a.addr.port(), ""),
    ];
    let models = "  - name: m\n    breaker: {consecutive_failures: 2, open_ms: 60000}\n    deployments:\n      - {name: a, upstream: pa}\n";
    let yaml = with_admin(&catalog(&servers, models)).replace(
        "models:\n",
        "admin: {tokens: [adm-tok]}\nmetrics:\n  token: met-tok\nmodels:\n",
    );
    let gw = Gateway::start(&yaml).await;
    let fail = [("x-mock-status", "503")];
    for _ in 0..2 {
        let r = send(&gw, "/v1/chat/completions", &chat("m", false), &fail).await;
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "upstream_unavailable");
        assert!(v.get("upstream_status").is_none(), "{v}");
    }
    assert_eq!(served(&a), 2);
    let r = send(&gw, "/v1/chat/completions", &chat("m", false), &[]).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "no_healthy_upstream");
    assert_eq!(served(&a), 2, "an open breaker sends nothing upstream");
    let health: Value = reqwest::get(gw.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let d = &health["services"]["models"]["m"]["deployments"][0];
    assert_eq!(d["breaker"], "open", "{health}");
    assert_eq!(d["trials"], 2);
    let client = reqwest::Client::new();
    let text = gw.metrics(&client, "met-tok").await;
    assert!(
        text.lines()
            .any(|l| l.starts_with("sluice_deployment_breaker_state{")
                && l.contains("deployment=\"a\"")
                && l.contains("model=\"m\"")
                && l.ends_with(" 2")),
        "{text}"
    );
    // An unrelated admin change swaps the runtime: the breaker stays open.
    let r = client
        .post(gw.admin_url("/api/v1/namespaces"))
        .bearer_auth("adm-tok")
        .json(&json!({"namespace_code": "other", "namespace_name": "other"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let r = send(&gw, "/v1/chat/completions", &chat("m", false), &[]).await;
    assert_eq!(r.status(), 503);
    assert_eq!(served(&a), 2, "the breaker survived the config swap");
    let health: Value = reqwest::get(gw.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["services"]["models"]["m"]["deployments"][0]["breaker"],
        "open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategies_pick_as_configured() {
    let a = mock("a").await;
    let b = mock("b").await;
    let servers = vec![
        server("p", "p", a.addr.port(), ""),
        server("a", "pa", a.addr.port(), ""),
        server("b", "pb", b.addr.port(), ""),
    ];
    let models = "  - name: cheap\n    routing: {strategy: lowest_cost}\n    deployments:\n      - {name: a, upstream: pa, price_input_per_m: 10, price_output_per_m: 30}\n      - {name: b, upstream: pb, price_input_per_m: 1, price_output_per_m: 2}\n  - name: first\n    deployments:\n      - {name: a, upstream: pa, priority: 1}\n      - {name: b, upstream: pb, priority: 0}\n  - name: split\n    routing: {strategy: weighted}\n    deployments:\n      - {name: a, upstream: pa, weight: 3}\n      - {name: b, upstream: pb, weight: 1}\n";
    let gw = Gateway::start(&catalog(&servers, models)).await;
    for _ in 0..3 {
        let r = send(&gw, "/v1/chat/completions", &chat("cheap", false), &[]).await;
        assert_eq!(header(&r, "x-mock-id"), "b");
        let r = send(&gw, "/v1/chat/completions", &chat("first", false), &[]).await;
        assert_eq!(header(&r, "x-mock-id"), "b");
    }
    let mut ids = Vec::new();
    for _ in 0..8 {
        let r = send(&gw, "/v1/chat/completions", &chat("split", false), &[]).await;
        ids.push(header(&r, "x-mock-id"));
    }
    assert_eq!(ids.iter().filter(|i| *i == "a").count(), 6, "{ids:?}");
}

/// The catalog prices each request: the cost reaches `sluice_cost_total`,
/// the provider label and the namespace's usage summary, stream or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_from_catalog_prices_in_metrics() {
    let m = mock("priced").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("an", "anp", m.addr.port(), "anthropic", "k"),
    ];
    // A price of 1M per 1M tokens makes the cost the token count itself.
    let models = "  - name: priced\n    deployments:\n      - {name: c, upstream: anp, price_input_per_m: 1000000, price_output_per_m: 2000000}\n";
    let yaml = config(
        &servers,
        &format!("{CATCH_ALL}metrics:\n  token: metrics-token\nmodels:\n{models}"),
    );
    let gw = Gateway::start(&yaml).await;
    let mut expected = 0.0;
    for stream in [false, true] {
        let mut body = chat("priced", stream);
        body["stream_options"] = json!({"include_usage": stream});
        if !stream {
            body.as_object_mut().unwrap().remove("stream_options");
        }
        let r = send(&gw, "/v1/chat/completions", &body, &[]).await;
        assert_eq!(r.status(), 200);
        let usage = if stream {
            read_sse(&r.text().await.unwrap()).2.expect("usage chunk")
        } else {
            r.json::<Value>().await.unwrap()["usage"].clone()
        };
        let (p, c) = (
            usage["prompt_tokens"].as_f64().unwrap(),
            usage["completion_tokens"].as_f64().unwrap(),
        );
        assert!(p > 0.0 && c > 0.0, "{usage}");
        expected += p + 2.0 * c;
    }
    let client = reqwest::Client::new();
    eventually_ok(
        "the cost and provider label of the priced model",
        async || {
            let text = gw.metrics(&client, "metrics-token").await;
            let cost: f64 = text
                .lines()
                .filter(|l| {
                    l.starts_with("sluice_cost_total{")
                        && l.contains("model=\"priced\"")
                        && l.contains("provider=\"anthropic\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            let anthropic_requests = text.lines().any(|l| {
                l.starts_with("sluice_requests_total{")
                    && l.contains("model=\"priced\"")
                    && l.contains("provider=\"anthropic\"")
            });
            if cost == expected && anthropic_requests {
                Ok(())
            } else {
                Err(format!(
                    "cost {cost} != {expected} or no provider label:\n{text}"
                ))
            }
        },
    )
    .await;
    let s: Value = client
        .get(gw.url("/metrics/summary"))
        .bearer_auth("metrics-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        s["namespaces"][0]["cost_1h"].as_f64(),
        Some(expected),
        "{s}"
    );
}

/// One deployment served by a pool of two servers (two keys): a 429 from
/// one is retried on the other, never answered while a server is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_key_falls_back_to_another_server_of_the_deployment() {
    let a = mock("a").await;
    let b = mock("b").await;
    let servers = [
        server("p", "p", a.addr.port(), ""),
        server("a", "keys", a.addr.port(), ""),
        server("b", "keys", b.addr.port(), ""),
    ];
    let models = "  - name: m\n    breaker: {consecutive_failures: 100, error_rate: 0}\n    deployments:\n      - {name: only, upstream: keys}\n";
    let gw = Gateway::start(&catalog(&servers, models)).await;
    // Round robin starts on either server; over four requests `a` comes
    // first at least once.
    for _ in 0..4 {
        let before = served(&a);
        let r = send(
            &gw,
            "/v1/chat/completions",
            &chat("m", false),
            &[("x-mock-only", "a"), ("x-mock-status", "429")],
        )
        .await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-mock-id"), "b");
        assert!(served(&a) - before <= 1);
    }
    assert!(served(&a) >= 1, "a was tried first at least once");
    assert_eq!(served(&b), 4);
}

/// Token limits hold on translated answers: an Anthropic deployment that
/// ignores the clamped `max_tokens` is cut at the cap mid-stream (OpenAI
/// SSE ending with `finish_reason: "length"` and `[DONE]`) and in JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_cap_cuts_translated_answers() {
    let m = mock("claude").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("an", "anp", m.addr.port(), "anthropic", "k"),
    ];
    let models = "  - name: claude\n    deployments:\n      - {name: sonnet, upstream: anp}\n";
    let rules = "rules:\n  - rule_name: five-out\n    rule_type: token_limit\n    rule_config: {max_output_tokens: 5}\n";
    let yaml = config(&servers, &format!("{CATCH_ALL}{rules}models:\n{models}"));
    let gw = Gateway::start(&yaml).await;
    let ignore = [("x-mock-ignore-max-tokens", "1")];

    let r = send(&gw, "/v1/chat/completions", &chat("claude", true), &ignore).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let (content, finish, usage, done) = read_sse(&text);
    assert_eq!(content, expected_text(5), "{text}");
    assert_eq!(finish.as_deref(), Some("length"));
    assert!(usage.is_none(), "the client did not ask for usage: {text}");
    assert!(done, "{text}");

    let v: Value = send(&gw, "/v1/chat/completions", &chat("claude", false), &ignore)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        expected_text(5),
        "{v}"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
}

/// `GET /v1/models` lists the catalog models the key may use (all of them
/// on the internal channel's path); a key asking for another model gets 403
/// `model_not_allowed`; the bandit report counts live traffic per arm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_per_key_and_bandit_report() {
    let a = mock("a").await;
    let (servers, models) = two_deployments(a.addr.port(), a.addr.port(), "");
    let models = format!(
        "{models}  - name: gpt-4o\n    deployments:\n      - {{name: only, upstream: pa}}\n"
    );
    let yaml = catalog(&servers, &models).replace(
        "      key: sk-test\n",
        "      key: sk-test\n    - name: narrow\n      key: sk-narrow\n      models: [gpt-4o]\n",
    );
    let gw = Gateway::start(&yaml).await;
    let client = reqwest::Client::new();
    let list = |key: &'static str, path: &'static str| {
        let (client, url) = (client.clone(), gw.url(path));
        async move {
            let r = client.get(url).bearer_auth(key).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["object"], "list");
            let mut ids: Vec<String> = v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    assert_eq!(m["object"], "model");
                    m["id"].as_str().unwrap().to_string()
                })
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(list("sk-test", "/v1/models").await, ["gpt-4o", "m"]);
    assert_eq!(list("sk-narrow", "/v1/models").await, ["gpt-4o"]);
    assert_eq!(
        list("sk-narrow", "/internal/v1/models").await,
        ["gpt-4o", "m"]
    );
    assert_eq!(served(&a), 0, "answered by the gateway");
    let r = client.get(gw.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-narrow")
        .json(&chat("m", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(served(&a), 0);
    let r = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-narrow")
        .json(&chat("gpt-4o", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Two answers from `m`'s first arm, one failure then a fallback.
    for h in [
        vec![],
        vec![],
        vec![("x-mock-status", "503"), ("x-mock-only", "a")],
    ] {
        let r = send(&gw, "/internal/v1/chat/completions", &chat("m", false), &h).await;
        let _ = r.status();
    }
    let r = client
        .get(gw.url("/internal/v1/bandit/report?model=m"))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{v}");
    assert_eq!(v["summary"]["total_arms"], 2);
    let arm = items
        .iter()
        .find(|i| i["arm_id"] == "m/a/chat/internal")
        .expect("arm m/a/chat/internal");
    assert_eq!(arm["model"], "m");
    assert_eq!(arm["capability"], "chat");
    assert_eq!(arm["channel"], "internal");
    assert_eq!(arm["total_trials"], 3, "{v}");
    assert_eq!(arm["successes"], 2, "{v}");
    assert!(
        arm["last_selected_at"].as_str().unwrap().ends_with('Z'),
        "{v}"
    );
    let v: Value = client
        .get(gw.url("/internal/v1/bandit/report?model=nope"))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["items"].as_array().map(Vec::len), Some(0));

    // The public path is the external channel: an arm of its own.
    let r = send(&gw, "/v1/chat/completions", &chat("m", false), &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = client
        .get(gw.url("/internal/v1/bandit/report?model=m&channel=external"))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["arm_id"], "m/a/chat/external", "{v}");
    assert_eq!(items[0]["total_trials"], 1, "{v}");
}

/// `session_id` on the internal channel is echoed back (body of
/// a JSON answer, `x-session-id` on every answer) and not sent upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_channel_echoes_session_id() {
    let m = mock("a").await;
    let servers = [server("p", "p", m.addr.port(), "")];
    let gw = Gateway::start(&config(&servers, CATCH_ALL)).await;
    let mut body = chat("gpt-4o-mini", false);
    body["session_id"] = json!("sess-42");
    let r = send(&gw, "/internal/v1/chat/completions", &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-session-id"), "sess-42");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["session_id"], "sess-42", "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], expected_text(16));
    body["stream"] = json!(true);
    let r = send(&gw, "/internal/v1/chat/completions", &body, &[]).await;
    assert_eq!(header(&r, "x-session-id"), "sess-42");
    let (content, _, _, done) = read_sse(&r.text().await.unwrap());
    assert_eq!(content, expected_text(16));
    assert!(done);
    let r = send(
        &gw,
        "/internal/v1/chat/completions",
        &json!({"model": "x", "session_id": 5}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 400);
    // Upstream never sees it: the mock's echo reports the body it got.
    let echo = "routes:\n  - {prefix: /internal/v1, upstream: p, strip_prefix: true}\n";
    let gw = Gateway::start(&config(&servers, echo)).await;
    let body = json!({"model": "gpt-4o-mini", "session_id": "sess-42"});
    let r = send(&gw, "/internal/v1/echo", &body, &[]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let sent = serde_json::to_vec(&json!({"model": "gpt-4o-mini"})).unwrap();
    assert_eq!(v["body_len"], sent.len(), "{v}");
    assert_eq!(v["session_id"], "sess-42", "{v}");
}

/// Function calling through an Anthropic deployment: OpenAI `tools` become
/// Anthropic tools, its `tool_use` comes back as `tool_calls` (JSON and
/// SSE, arguments reassembled), and the tool's result goes back as a
/// `tool_result` block, answered with text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_round_trip_through_anthropic() {
    let m = mock("claude").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("an", "anp", m.addr.port(), "anthropic", "k"),
    ];
    let models = "  - name: claude\n    deployments:\n      - {name: sonnet, upstream: anp}\n";
    let gw = Gateway::start(&catalog(&servers, models)).await;
    let tools = json!([{"type": "function", "function": {"name": "lookup", "description": "find",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]);
    let mut body = chat("claude", false);
    body["tools"] = tools.clone();
    let v: Value = send(&gw, "/v1/chat/completions", &body, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "lookup");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"query": "water"}));
    let call_id = call["id"].as_str().unwrap().to_string();

    body["stream"] = json!(true);
    let text = send(&gw, "/v1/chat/completions", &body, &[])
        .await
        .text()
        .await
        .unwrap();
    let (mut name, mut arguments, mut finish) = (String::new(), String::new(), None);
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let c: Value = serde_json::from_str(data).unwrap();
        if let Some(tc) = c["choices"][0]["delta"]["tool_calls"][0].as_object() {
            name.push_str(
                tc.get("function")
                    .and_then(|f| f["name"].as_str())
                    .unwrap_or(""),
            );
            arguments.push_str(
                tc.get("function")
                    .and_then(|f| f["arguments"].as_str())
                    .unwrap_or(""),
            );
        }
        if let Some(f) = c["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert_eq!(name, "lookup", "{text}");
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"query": "water"}),
        "{text}"
    );
    assert_eq!(finish.as_deref(), Some("tool_calls"));

    // The tool's result goes back; the model answers with text.
    let follow = json!({"model": "claude", "max_tokens": 50, "tools": tools, "messages": [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": null, "tool_calls": [call.clone()]},
        {"role": "tool", "tool_call_id": call_id, "content": "found it"}]});
    let v: Value = send(&gw, "/v1/chat/completions", &follow, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], expected_text(16));
}

/// Embeddings through the catalog: Azure's deployment path; when it fails
/// the OpenAI deployment is tried next, and an Anthropic deployment (no
/// embeddings) never is; the last failure is answered in the gateway's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embeddings_through_azure_with_openai_fallback() {
    let m = mock("e").await;
    let servers = [
        server("p", "p", m.addr.port(), ""),
        provider_server("az", "azp", m.addr.port(), "azure", "az"),
        provider_server("an", "anp", m.addr.port(), "anthropic", "k"),
    ];
    let models = "  - name: emb\n    capability: embeddings\n    breaker: {consecutive_failures: 100, error_rate: 0}\n    deployments:\n      - {name: claude, upstream: anp, priority: 0}\n      - {name: east, upstream: azp, deployment: emb-prod, api_version: 2024-10-21, priority: 1}\n      - {name: openai, upstream: p, model: text-embedding-3-small, priority: 2}\n";
    let gw = Gateway::start(&catalog(&servers, models)).await;
    let body = json!({"model": "emb", "input": ["one two", "three"]});
    let r = send(&gw, "/v1/embeddings", &body, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-mock-seen-deployment"), "emb-prod");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(v["data"][1]["index"], 1);
    let before = served(&m);
    let r = send(
        &gw,
        "/internal/v1/embeddings",
        &body,
        &[("x-mock-status", "500")],
    )
    .await;
    // Every deployment answers 500 here (one mock): Azure, then OpenAI.
    assert_eq!(r.status(), 502);
    assert_eq!(
        served(&m) - before,
        2,
        "claude is skipped, azure and openai tried"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["source"], "upstream");
    assert_eq!(v["upstream_status"], 500);

    // An embedding model refuses chat requests, before any upstream call.
    let before = served(&m);
    let r = send(&gw, "/v1/chat/completions", &chat("emb", false), &[]).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("serves embeddings requests only"),
        "{v}"
    );
    assert_eq!(served(&m), before);

    // The bandit report names the capability and channel each arm served.
    let v: Value = reqwest::Client::new()
        .get(gw.url("/internal/v1/bandit/report?model=emb"))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let arms: Vec<(String, String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (s("arm_id"), s("capability"), s("channel"))
        })
        .collect();
    for (id, cap, channel) in [
        ("emb/claude/embeddings/external", "embeddings", "external"),
        ("emb/east/embeddings/external", "embeddings", "external"),
        ("emb/east/embeddings/internal", "embeddings", "internal"),
        ("emb/openai/embeddings/internal", "embeddings", "internal"),
    ] {
        assert!(
            arms.contains(&(id.into(), cap.into(), channel.into())),
            "{id} missing in {arms:?}"
        );
    }
}

/// `sluice mock`'s load-test knobs: every N-th model call fails in the
/// provider's format (the gateway falls back), and a per-second rate limit
/// answers 429 with `retry-after` in Anthropic's format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_failure_knobs() {
    let a = mock_with(sluice::mock::MockOptions {
        id: "a".into(),
        fail_every: 2,
        fail_status: 503,
        ..Default::default()
    })
    .await;
    let b = mock("b").await;
    let no_breaker = "    breaker: {consecutive_failures: 100, error_rate: 0}\n";
    let (servers, models) = two_deployments(a.addr.port(), b.addr.port(), no_breaker);
    let gw = Gateway::start(&catalog(&servers, &models)).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = send(&gw, "/v1/chat/completions", &chat("m", false), &[]).await;
        assert_eq!(r.status(), 200);
        ids.push(header(&r, "x-mock-id"));
    }
    assert_eq!(
        ids,
        ["a", "b", "a", "b"],
        "every second call to `a` fails over to `b`"
    );

    let limited = mock_with(sluice::mock::MockOptions {
        id: "r".into(),
        rate_limit_rps: 2,
        ..Default::default()
    })
    .await;
    let client = reqwest::Client::new();
    let mut limited_answers = 0;
    for _ in 0..5 {
        let r = client
            .post(format!("http://{}/v1/messages", limited.addr))
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            assert_eq!(header(&r, "retry-after"), "1");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], "rate_limit_error");
            limited_answers += 1;
        }
    }
    // Five calls within at most two one-second windows of two each.
    assert!(limited_answers >= 1, "no call was rate limited");
}
