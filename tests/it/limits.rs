//! Limit rules through the real gateway: each rule type, the denial codes
//! and headers, token truncation (stream and JSON) at exact counts, the
//! upstream `max_tokens` clamp, usage asked for and hidden, and slots freed
//! on every exit path.

use crate::common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;

fn with_rules(port: u16, rules: &str) -> String {
    one_mock(port, &format!("rules:\n{rules}"))
}

/// The `data:` payloads of an SSE body.
fn events(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap_or(e).to_string())
        .collect()
}

/// Concatenated delta contents and the finish reason of an SSE body.
fn stream_content(evs: &[String]) -> (String, Option<String>) {
    let mut content = String::new();
    let mut finish = None;
    for e in evs {
        let Ok(v) = serde_json::from_str::<Value>(e) else {
            continue;
        };
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    (content, finish)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_window_rate_limit_denies_with_openai_headers() {
    let m = mock("a").await;
    let rules = "  - rule_name: three-per-minute\n    rule_type: rate_limit\n    rule_config: {max_requests: 3, time_window_seconds: 60, key_by: api_key}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    for i in 0..3 {
        let r = gw.chat(&c, false).await;
        assert_eq!(r.status(), 200, "request {i}");
        assert_eq!(r.headers()["x-ratelimit-limit-requests"], "3");
        assert_eq!(
            r.headers()["x-ratelimit-remaining-requests"],
            (2 - i).to_string().as_str()
        );
        // Go's duration form, as OpenAI writes it: at most a minute here.
        let reset = r.headers()["x-ratelimit-reset-requests"].to_str().unwrap();
        let secs = match reset.strip_suffix("ms") {
            Some(ms) => ms.parse::<f64>().ok().map(|v| v / 1000.0),
            None => reset
                .strip_suffix('s')
                .and_then(|v| v.strip_prefix("1m").or(Some(v)))
                .and_then(|v| v.parse::<f64>().ok()),
        };
        assert!(
            secs.is_some_and(|x| (0.0..=60.0).contains(&x)),
            "reset {reset:?}"
        );
    }
    let r = gw.chat(&c, false).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
    assert!(r.headers().contains_key("x-ratelimit-reset-requests"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("three-per-minute"));
    assert_eq!(
        served(&m),
        3,
        "the denied request never reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_keyed_rate_limit_counts_each_value_apart() {
    let m = mock("a").await;
    let rules = "  - rule_name: per-user\n    rule_type: rate_limit\n    rule_config: {max_requests: 1, time_window_seconds: 60, key_by: header, header_name: x-user}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    let send = |user: &'static str| {
        post(&c, gw.url("/v1/chat/completions"))
            .header("x-user", user)
            .json(&chat_body(false))
            .send()
    };
    assert_eq!(send("alice").await.unwrap().status(), 200);
    assert_eq!(send("bob").await.unwrap().status(), 200);
    assert_eq!(send("alice").await.unwrap().status(), 429);
    // No x-user header: the rule does not apply.
    assert_eq!(gw.chat(&c, false).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limit_is_freed_on_completion_and_on_disconnect() {
    let m = mock("a").await;
    let rules = "  - rule_name: one-at-a-time\n    rule_type: concurrency\n    rule_config: {max_concurrent: 1}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    // Hold the slot: a stream whose first event arrived.
    let held = gw.slow_stream(&c, 40, 50).await;
    assert_eq!(held.status(), 200);
    let mut body = held.bytes_stream();
    body.next().await.unwrap().unwrap();
    let r = gw.chat(&c, false).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "concurrency_limited");

    // The client goes away mid-stream: the slot comes back.
    drop(body);
    eventually("slot freed after disconnect", async || {
        gw.chat(&c, false).await.status() == 200
    })
    .await;
    // And after a complete response, too.
    let r = gw.chat(&c, true).await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    eventually("slot freed after completion", async || {
        gw.chat(&c, false).await.status() == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_token_cap_denies_large_prompts() {
    let m = mock("a").await;
    let rules = "  - rule_name: small-prompts\n    rule_type: token_limit\n    rule_config: {max_input_tokens: 50}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    assert_eq!(gw.chat(&c, false).await.status(), 200);
    let big = json!({"model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "word ".repeat(200)}]});
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "token_limit_exceeded");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("small-prompts"));
    assert_eq!(served(&m), 1);
}

const CAP5: &str = "  - rule_name: five-out\n    rule_type: token_limit\n    rule_config: {max_output_tokens: 5}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_cap_clamps_max_tokens_upstream() {
    let m = mock("a").await;
    let gw = Gateway::start(&with_rules(m.addr.port(), CAP5)).await;
    let c = reqwest::Client::new();
    let mut body = chat_body(false);
    body["max_tokens"] = json!(100);
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-seen-max-tokens"], "5");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    // A smaller client limit is kept.
    body["max_tokens"] = json!(3);
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-mock-seen-max-tokens"], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrunning_json_answer_is_cut_at_the_cap() {
    let m = mock("a").await;
    let gw = Gateway::start(&with_rules(m.addr.port(), CAP5)).await;
    let c = reqwest::Client::new();
    let r = post(&c, gw.url("/v1/chat/completions"))
        .header("x-mock-ignore-max-tokens", "1")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The upstream's content-length is kept (one write): the cut body is
    // padded with JSON whitespace to it.
    let announced: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let raw = r.bytes().await.unwrap();
    assert_eq!(raw.len(), announced);
    assert!(raw.ends_with(b" "));
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let expected: String = (0..5).map(sluice::mock::openai_token).collect();
    assert_eq!(v["choices"][0]["message"]["content"], expected.as_str());
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(v["usage"]["total_tokens"], prompt + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overrunning_stream_is_cut_cleanly_and_upstream_closed() {
    let m = mock("a").await;
    let gw = Gateway::start(&with_rules(m.addr.port(), CAP5)).await;
    let c = reqwest::Client::new();
    let mut body = chat_body(true);
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&c, gw.url("/v1/chat/completions"))
        .header("x-mock-ignore-max-tokens", "1")
        .header("x-mock-tokens", "200")
        .header("x-mock-chunk-ms", "5")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // `bytes()` fails on a broken chunked body: this proves a clean end.
    let text = String::from_utf8(r.bytes().await.unwrap().to_vec()).unwrap();
    let evs = events(&text);
    let (content, finish) = stream_content(&evs);
    let expected: String = (0..5).map(sluice::mock::openai_token).collect();
    assert_eq!(content, expected, "{text}");
    assert_eq!(finish.as_deref(), Some("length"));
    assert_eq!(evs.last().map(String::as_str), Some("[DONE]"));
    let usage: Value = serde_json::from_str(&evs[evs.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 5, "{text}");
    // The upstream stream was abandoned, not read to its end.
    eventually("upstream stream aborted", async || {
        m.state.streams_aborted.load(Relaxed) == 1
    })
    .await;
    assert_eq!(m.state.streams_completed.load(Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metered_stream_asks_for_usage_and_hides_it() {
    let m = mock("a").await;
    let gw = Gateway::start(&with_rules(m.addr.port(), CAP5)).await;
    let c = reqwest::Client::new();
    let r = gw.chat(&c, true).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-seen-include-usage"], "true");
    let text = r.text().await.unwrap();
    assert!(!text.contains("\"usage\""), "usage chunk hidden: {text}");
    let (content, finish) = stream_content(&events(&text));
    assert_eq!(
        content,
        (0..5).map(sluice::mock::openai_token).collect::<String>()
    );
    assert_eq!(finish.as_deref(), Some("length"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budget_reserves_settles_and_denies() {
    let m = mock("a").await;
    // 16 output tokens per answer (mock default) + a small prompt.
    let rules = "  - rule_name: budget\n    rule_type: token_limit\n    rule_config: {time_window_enabled: true, time_window_minutes: 60, max_tokens_per_window: 100}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    let mut body = chat_body(false);
    body["max_tokens"] = json!(16);
    let mut used = 0u64;
    let mut admitted = 0;
    loop {
        let r = post(&c, gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            let remaining: u64 = r.headers()["x-ratelimit-remaining-tokens"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(remaining, 100 - used, "remaining after {admitted} answers");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "token_limit_exceeded");
            break;
        }
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        used += v["usage"]["total_tokens"].as_u64().unwrap();
        admitted += 1;
        assert!(used <= 100, "budget exceeded: {used}");
        assert!(admitted < 20);
    }
    assert!(
        admitted >= 2,
        "settlement refunded nothing? admitted {admitted}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_mid_stream_settles_what_was_used() {
    let m = mock("a").await;
    let budget = 2000u64;
    let rules = format!("  - rule_name: budget\n    rule_type: token_limit\n    rule_config: {{time_window_enabled: true, time_window_minutes: 60, max_tokens_per_window: {budget}}}\n");
    let gw = Gateway::start(&with_rules(m.addr.port(), &rules)).await;
    let c = reqwest::Client::new();
    let mut small = chat_body(false);
    small["max_tokens"] = json!(1);
    let send_small = || post(&c, gw.url("/v1/chat/completions")).json(&small).send();
    let v: Value = send_small().await.unwrap().json().await.unwrap();
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    let mut charged = prompt + 1;

    // Reserve prompt + 100 for a slow stream, read a little, go away.
    let mut body = chat_body(true);
    body["max_tokens"] = json!(100);
    let r = post(&c, gw.url("/v1/chat/completions"))
        .header("x-mock-tokens", "100")
        .header("x-mock-chunk-ms", "20")
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut stream = r.bytes_stream();
    for _ in 0..3 {
        stream.next().await.unwrap().unwrap();
    }
    drop(stream);

    // Once settled, the stream's unused reservation is back in the budget,
    // and what it used (its prompt at least) stays charged.
    eventually("the dropped stream settled", async || {
        let r = send_small().await.unwrap();
        assert_eq!(r.status(), 200);
        charged += prompt + 1;
        let remaining: u64 = r.headers()["x-ratelimit-remaining-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            remaining <= budget - charged - prompt,
            "stream charged nothing"
        );
        remaining > budget - charged - (prompt + 100)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_model_calls_spend_tokens() {
    let m = mock("a").await;
    let rules = "  - rule_name: budget\n    rule_type: token_limit\n    rule_config: {time_window_enabled: true, time_window_minutes: 60, max_tokens_per_window: 1000}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    for _ in 0..3 {
        let r = gw.get(&c, "/v1/models").await;
        assert_eq!(r.status(), 200);
        assert!(!r.headers().contains_key("x-ratelimit-remaining-tokens"));
        let v: Value = r.json().await.unwrap();
        assert!(v["data"].is_array(), "models list passes unmetered: {v}");
    }
    let mut body = chat_body(false);
    body["max_tokens"] = json!(4);
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let remaining: u64 = r.headers()["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let prompt = v["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(remaining, 1000 - prompt - 4, "only this call's reservation");
}

/// Holds one request in flight on `gw` (a stream whose first event has
/// arrived); dropping it frees the slot.
async fn hold(gw: &Gateway, c: &reqwest::Client) -> impl Sized {
    let held = gw.slow_stream(c, 40, 50).await;
    assert_eq!(held.status(), 200);
    let mut body = held.bytes_stream();
    body.next().await.unwrap().unwrap();
    body
}

async fn denied_code(gw: &Gateway, c: &reqwest::Client) -> String {
    let r = gw.chat(c, false).await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

/// The two concurrency codes: a cap on every request in flight is the
/// downstream cap; a cap per route (with the key: `key_by: [api_key,
/// route]`), a route's own `max_concurrency` and the servers'
/// `max_connections` guard the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downstream_and_upstream_concurrency_codes() {
    let m = mock("a").await;
    let c = reqwest::Client::new();
    let cases = [
        (
            with_rules(
                m.addr.port(),
                "  - {rule_name: all, rule_type: concurrency, rule_config: {max_concurrent: 1, key_by: global}}\n",
            ),
            "downstream_concurrency_exceeded",
        ),
        (
            with_rules(
                m.addr.port(),
                "  - {rule_name: pair, rule_type: concurrency, rule_config: {max_concurrent: 1, key_by: [api_key, route]}}\n",
            ),
            "upstream_concurrency_exceeded",
        ),
        (
            config(
                &[server("a", "p", m.addr.port(), "")],
                "routes:\n  - {prefix: /, upstream: p, max_concurrency: 1}\n",
            ),
            "upstream_concurrency_exceeded",
        ),
        (
            config(
                &[server("a", "p", m.addr.port(), "    max_connections: 1\n")],
                CATCH_ALL,
            ),
            "upstream_concurrency_exceeded",
        ),
    ];
    for (yaml, code) in cases {
        let gw = Gateway::start(&yaml).await;
        let held = hold(&gw, &c).await;
        assert_eq!(denied_code(&gw, &c).await, code, "{yaml}");
        drop(held);
        eventually("the slot comes back", async || {
            gw.chat(&c, false).await.status() == 200
        })
        .await;
    }

    // A route's own cap replaces the servers' max_connections: two in
    // flight through a route allowing two, on a server allowing one.
    let yaml = config(
        &[server("a", "p", m.addr.port(), "    max_connections: 1\n")],
        "routes:\n  - {prefix: /, upstream: p, max_concurrency: 2}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let first = hold(&gw, &c).await;
    let second = hold(&gw, &c).await;
    assert_eq!(denied_code(&gw, &c).await, "upstream_concurrency_exceeded");
    drop((first, second));
}

/// Rules scoped to a channel: the internal channel (`/internal/v1/…`)
/// and the external one (every other path) count apart, with their own
/// limits; the channel is a label of `sluice_requests_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_scoped_to_a_channel() {
    let m = mock("a").await;
    let rules = "  - {rule_name: internal-3, rule_type: rate_limit, rule_config: {max_requests: 3, time_window_seconds: 60, key_by: api_key, channel: internal}}\n  - {rule_name: external-1, rule_type: rate_limit, rule_config: {max_requests: 1, time_window_seconds: 60, key_by: api_key, channel: external}}\nmetrics: {token: mt}\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    let send = |path: &'static str| {
        let req = post(&c, gw.url(path)).json(&chat_body(false));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let mut external = Vec::new();
    for _ in 0..2 {
        external.push(send("/v1/chat/completions").await);
    }
    let mut internal = Vec::new();
    for _ in 0..4 {
        internal.push(send("/internal/v1/chat/completions").await);
    }
    assert_eq!(external, [200, 429]);
    assert_eq!(internal, [200, 200, 200, 429]);
    let text = gw.metrics(&c, "mt").await;
    for channel in ["internal", "external"] {
        assert!(
            text.lines().any(|l| l.starts_with("sluice_requests_total{")
                && l.contains(&format!("channel=\"{channel}\""))),
            "no {channel} series in\n{text}"
        );
    }
}

/// A budget's `fallback_model`: a request the budget cannot hold at its
/// model's price is served by the cheaper catalog model instead; once even
/// that does not fit, 402.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_falls_back_to_a_cheaper_model() {
    let m = mock("a").await;
    // $1000 per million tokens either way: a call of ~9 prompt and 16
    // output tokens costs ~$0.025; the cheap model ~$0.0025 a call.
    let rules = "  - {rule_name: small, rule_type: budget, rule_config: {max_usd: 0.03, fallback_model: cheap}}\nmodels:\n  - name: pricey\n    deployments: [{name: d, upstream: p, price_input_per_m: 1000, price_output_per_m: 1000}]\n  - name: cheap\n    deployments: [{name: d, upstream: p, price_input_per_m: 100, price_output_per_m: 100}]\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    let body = json!({"model": "pricey", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hello there"}]});
    let call = || {
        let req = post(&c, gw.url("/v1/chat/completions")).json(&body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or_default())
        }
    };
    let (s, v) = call().await;
    assert_eq!((s, v["model"].as_str()), (200, Some("pricey")), "{v}");
    // Not enough left for the pricey model: the cheap one answers, until
    // even it does not fit.
    let (s, v) = call().await;
    assert_eq!((s, v["model"].as_str()), (200, Some("cheap")), "{v}");
    let mut last = (s, v);
    for _ in 0..5 {
        last = call().await;
        if last.0 != 200 {
            break;
        }
        assert_eq!(last.1["model"], "cheap", "{}", last.1);
    }
    assert_eq!(last.0, 402, "{}", last.1);
    assert_eq!(last.1["error"]["code"], "budget_exceeded");

    // A fallback that is not a catalog model is refused at load.
    let out = sluice_check(&with_rules(
        m.addr.port(),
        "  - {rule_name: b, rule_type: budget, rule_config: {max_usd: 1, fallback_model: nowhere}}\nmodels:\n  - name: x\n    deployments: [{name: d, upstream: p, price_input_per_m: 1}]\n",
    ));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fallback_model"));
}

/// A token budget and a money budget on one request: each grants in its
/// own unit (tokens, micro-USD), both are charged what the answer used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_money_budgets_hold_one_request_together() {
    let m = mock("a").await;
    let rules = "  - {rule_name: tokens, rule_type: token_limit, rule_config: {time_window_enabled: true, period: month, max_tokens_per_window: 100000}}\n  - {rule_name: dollars, rule_type: budget, rule_config: {max_usd: 5, period: month}}\nmodels:\n  - name: priced\n    deployments: [{name: d, upstream: p, price_input_per_m: 0.15, price_output_per_m: 0.6}]\n";
    let gw = Gateway::start(&with_rules(m.addr.port(), rules)).await;
    let c = reqwest::Client::new();
    let body = json!({"model": "priced", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hello there"}]});
    for _ in 0..3 {
        let r = post(&c, gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.headers());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["usage"]["completion_tokens"], 16, "{v}");
    }
    // The month's token budget was charged in tokens (the money budget's
    // micro-dollars did not cap it).
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let tokens_left: u64 = r.headers()["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        tokens_left < 100_000 && tokens_left > 99_000,
        "{tokens_left}"
    );
}
