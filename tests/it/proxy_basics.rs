//! Proxy path basics: auth in all three forms, header hygiene, request ids,
//! large and chunked bodies, SSE order and flushing, the process's
//! memory settings.

use crate::common::*;
use futures_util::StreamExt;
use serde_json::Value;
use std::sync::atomic::Ordering::Relaxed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_accepts_three_header_forms_and_rejects_others() {
    let m = mock("a").await;
    let gw = Gateway::start(&one_mock(m.addr.port(), "")).await;
    let c = reqwest::Client::new();
    let url = gw.url("/v1/models");
    let ok = [
        c.get(&url).header("authorization", "Bearer sk-test"),
        c.get(&url).header("x-api-key", "sk-test"),
        c.get(&url).header("x-gw-token", "sk-test"),
    ];
    for req in ok {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-request-id"));
    }
    for req in [
        c.get(&url),
        c.get(&url).header("authorization", "Bearer sk-wrong"),
        c.get(&url).header("x-api-key", "sk-tes"),
        c.get(&url).header("authorization", "Basic sk-test"),
    ] {
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers().contains_key("x-request-id"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["error"]["trace_id"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
    }
    assert_eq!(served(&m), 3, "rejected requests never reach the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_hygiene_strips_client_keys_and_injects_provider_key() {
    let m = mock("a").await;
    let extra =
        "    api_key: sk-provider-secret\n    inject_headers:\n      OpenAI-Organization: org-42\n";
    let gw = Gateway::start(&config(
        &[server("a", "p", m.addr.port(), extra)],
        CATCH_ALL,
    ))
    .await;
    let c = reqwest::Client::new();
    let r = c
        .post(gw.url("/echo/x?q=1"))
        .header("authorization", "Bearer sk-test")
        .header("x-gw-token", "sk-test")
        .header("x-api-key", "sk-test")
        .header("proxy-authorization", "Basic abc")
        .header("connection", "keep-alive, x-drop-me")
        .header("x-drop-me", "1")
        .header("te", "trailers")
        .header("x-request-id", "client-id-1")
        .header("x-keep", "yes")
        .json(&serde_json::json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "client-id-1");
    let echo: Value = r.json().await.unwrap();
    let h = &echo["headers"];
    assert_eq!(h["authorization"], "Bearer sk-provider-secret");
    assert_eq!(h["openai-organization"], "org-42");
    assert_eq!(h["x-keep"], "yes");
    assert_eq!(h["x-request-id"], "client-id-1");
    for gone in [
        "x-gw-token",
        "x-api-key",
        "proxy-authorization",
        "x-drop-me",
        "te",
        "connection",
    ] {
        assert!(h.get(gone).is_none(), "{gone} reached the upstream: {h}");
    }
    let text = echo.to_string();
    assert!(
        !text.contains("sk-test"),
        "client key reached the upstream: {text}"
    );
    assert_eq!(echo["path"], "/echo/x");
    assert_eq!(echo["query"], "q=1");
}

fn fnv(data: &[u8]) -> String {
    format!("{:016x}", sluice::mock::fnv1a(data))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_chunked_bodies_arrive_byte_exact() {
    let m = mock("a").await;
    let gw = Gateway::start(&one_mock(m.addr.port(), "")).await;
    let c = reqwest::Client::new();
    // 2 MiB JSON body with a content-length, then the same body chunked,
    // twice each on the same keep-alive client.
    let filler: String = (0..2 * 1024 * 1024)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let body = format!("{{\"model\":\"gpt-4o\",\"prompt\":\"{filler}\"}}").into_bytes();
    for round in 0..2 {
        let r = post(&c, gw.url("/echo/big"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "round {round}");
        let echo: Value = r.json().await.unwrap();
        assert_eq!(echo["body_len"], body.len());
        assert_eq!(echo["body_fnv"], fnv(&body));

        let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
            body.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
        let stream = futures_util::stream::iter(chunks);
        let r = post(&c, gw.url("/echo/chunked"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let echo: Value = r.json().await.unwrap();
        assert_eq!(echo["body_len"], body.len());
        assert_eq!(echo["body_fnv"], fnv(&body));
        assert_eq!(echo["headers"]["content-length"], body.len().to_string());
        assert!(echo["headers"].get("transfer-encoding").is_none());
    }
    // A small chunked body takes the direct path.
    let small = br#"{"model":"m","messages":[]}"#.to_vec();
    let stream = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(small.clone())]);
    let r = post(&c, gw.url("/echo/small"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    let echo: Value = r.json().await.unwrap();
    assert_eq!(echo["body_fnv"], fnv(&small));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_arrive_in_order_and_before_the_upstream_finishes() {
    let m = mock_with(sluice::mock::MockOptions {
        id: "a".into(),
        tokens: 6,
        chunk_ms: 150,
        ..Default::default()
    })
    .await;
    let gw = Gateway::start(&one_mock(m.addr.port(), "")).await;
    let c = reqwest::Client::new();
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "gpt-4o-mini", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut stream = r.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    assert_eq!(
        m.state.streams_completed.load(Relaxed),
        0,
        "the first event reached the client only after the upstream finished"
    );
    let mut all = first.to_vec();
    while let Some(chunk) = stream.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8(all).unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(events.len(), 1 + 6 + 1 + 1 + 1, "{text}");
    let content: String = events[1..7]
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(e).unwrap();
            v["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: String = (0..6).map(sluice::mock::openai_token).collect();
    assert_eq!(content, expected);
    let usage: Value = serde_json::from_str(events[8]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 6);
    assert_eq!(events[9], "[DONE]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listener_and_metrics_need_their_tokens() {
    let m = mock("a").await;
    let yaml = admin_config(m.addr.port(), "a-tok", "metrics: {token: m-tok}\n");
    let gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    let r = c.get(gw.admin_url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(gw.admin_url("/api/v1/status")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
    let r = c
        .get(gw.admin_url("/api/v1/status"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(gw.admin_url("/api/v1/status"))
        .bearer_auth("a-tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "healthy");

    let _ = gw.chat(&c, false).await;
    let r = c.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(gw.url("/metrics"))
        .bearer_auth("m-tok")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("sluice_requests_total{")
            && l.contains("class=\"2xx\"")
            && l.contains("namespace=\"default\"")
            && l.ends_with(" 1"))
            && text.contains("sluice_inflight_requests 0\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_caps_requests_in_flight_per_server() {
    let a = mock("a").await;
    let servers = [server("a", "p", a.addr.port(), "    max_connections: 1\n")];
    let gw = Gateway::start(&config(&servers, CATCH_ALL)).await;
    let c = reqwest::Client::new();
    // Hold the one slot with a slow stream: its first event proves it is
    // in flight at the upstream.
    let slow = gw.slow_stream(&c, 5, 300).await;
    let mut stream = slow.bytes_stream();
    assert!(stream.next().await.unwrap().is_ok());
    let r = gw.get(&c, "/v1/models").await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "upstream_concurrency_exceeded"
    );
    while let Some(chunk) = stream.next().await {
        chunk.unwrap();
    }
    drop(stream);
    // The slot is released when the stream ends (logging); the next request
    // may race that by a moment, so allow a short, bounded wait.
    eventually("the slot released", async || {
        gw.get(&c, "/v1/models").await.status() == 200
    })
    .await;
    assert_eq!(served(&a), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_xff_appends_the_client_address_only_when_on() {
    let m = mock("a").await;
    let routes = CATCH_ALL;
    let c = reqwest::Client::new();
    for (on, expected) in [(false, None), (true, Some("10.0.0.9, 127.0.0.1"))] {
        let rest = format!("forward_xff: {on}\n{routes}");
        let gw = Gateway::start(&config(&[server("a", "p", m.addr.port(), "")], &rest)).await;
        let echo: Value = c
            .get(gw.url("/echo/xff"))
            .bearer_auth("sk-test")
            .header("x-forwarded-for", "10.0.0.9")
            .header("forwarded", "for=10.6.6.6;host=evil")
            .header("x-real-ip", "10.6.6.6")
            .header("x-forwarded-host", "evil.example")
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            echo["headers"]["x-forwarded-for"].as_str(),
            expected,
            "forward_xff: {on}"
        );
        // The rest of the family is the client's claim: never forwarded.
        for name in [
            "forwarded",
            "x-real-ip",
            "x-forwarded-host",
            "x-forwarded-proto",
        ] {
            assert!(echo["headers"].get(name).is_none(), "{name}: {echo}");
        }
    }
}

/// `sluice --config FILE` is `sluice run -c FILE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_flag_alone_runs_the_gateway() {
    let m = mock("a").await;
    // Started (and waited for) like every test gateway, with `--config`.
    let launch = Launch {
        args: &["--config"],
        ..Launch::default()
    };
    let gw = Gateway::start_with(&one_mock(m.addr.port(), ""), launch).await;
    let r = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200, "sluice --config FILE did not serve");
}

/// The gateway turns transparent huge pages off for itself: with them its
/// allocator made every 2 MiB it touched resident (idle 62 against 32 MiB,
/// `load-tests/RESULTS.md`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_runs_without_transparent_huge_pages() {
    let m = mock("a").await;
    let gw = Gateway::start(&one_mock(m.addr.port(), "")).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["THP_enabled:", "0"])),
        "{status}"
    );
}
