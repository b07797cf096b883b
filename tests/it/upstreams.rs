//! Upstream pools through the real gateway: weighted distribution, active
//! health-check ejection and recovery, failover on connect errors, no
//! healthy upstream, and each timeout.

use crate::common::*;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const FAST_CHECKS: &str = "upstream:\n  health_check_interval_ms: 50\n  health_check_timeout_ms: 500\n  unhealthy_threshold: 1\n  healthy_threshold: 1\n";

async fn tally(gw: &Gateway, n: usize) -> HashMap<String, usize> {
    let client = reqwest::Client::new();
    let mut counts = HashMap::new();
    for _ in 0..n {
        let r = gw.get(&client, "/v1/models").await;
        assert_eq!(r.status(), StatusCode::OK);
        let id = r.headers()["x-mock-id"].to_str().unwrap().to_string();
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

/// Waits until `/health` shows `want` healthy servers in `pool`.
async fn wait_healthy(gw: &Gateway, pool: &str, want: u64) {
    let client = reqwest::Client::new();
    let what = format!("{want} healthy servers in pool {pool}");
    eventually_ok(&what, async || {
        let v: Value = client
            .get(gw.url("/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["services"]["upstreams"]["pools"][pool]["healthy_servers"] == want {
            Ok(())
        } else {
            Err(v.to_string())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_honours_weights() {
    let (a, b) = (mock("a").await, mock("b").await);
    let servers = [
        server("a", "p", a.addr.port(), "    weight: 3\n"),
        server("b", "p", b.addr.port(), "    weight: 1\n"),
    ];
    let gw = Gateway::start(&config(&servers, CATCH_ALL)).await;
    let counts = tally(&gw, 400).await;
    let (na, nb) = (counts["a"], counts["b"]);
    assert_eq!(na + nb, 400);
    // Weighted round robin is deterministic: 3:1 within a few requests.
    assert!((290..=310).contains(&na), "a got {na}, b got {nb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_eject_and_recover() {
    let (a, b) = (mock("a").await, mock("b").await);
    let check = "    health_check_url: /health\n";
    let servers = [
        server("a", "p", a.addr.port(), check),
        server("b", "p", b.addr.port(), check),
    ];
    let gw = Gateway::start(&config(&servers, &format!("{FAST_CHECKS}{CATCH_ALL}"))).await;
    wait_healthy(&gw, "p", 2).await;

    b.state
        .health_status
        .store(503, std::sync::atomic::Ordering::Relaxed);
    wait_healthy(&gw, "p", 1).await;
    let counts = tally(&gw, 20).await;
    assert_eq!(
        counts.get("b"),
        None,
        "unhealthy server got traffic: {counts:?}"
    );

    b.state
        .health_status
        .store(200, std::sync::atomic::Ordering::Relaxed);
    wait_healthy(&gw, "p", 2).await;
    let counts = tally(&gw, 20).await;
    assert_eq!((counts["a"], counts["b"]), (10, 10));

    // Every server unhealthy: 503 no_healthy_upstream, and /health says so.
    a.state
        .health_status
        .store(500, std::sync::atomic::Ordering::Relaxed);
    b.state
        .health_status
        .store(500, std::sync::atomic::Ordering::Relaxed);
    wait_healthy(&gw, "p", 0).await;
    let client = reqwest::Client::new();
    let r = gw.get(&client, "/v1/models").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_healthy_upstream");
    let r = client.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "unhealthy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_failures_fail_over_and_eject() {
    let live = mock("live").await;
    let dead = refused_port();
    let servers = [
        server("dead", "p", dead.port, ""),
        server("live", "p", live.addr.port(), ""),
    ];
    let rest = format!("upstream:\n  eject_after_failures: 2\n  eject_ms: 60000\n{CATCH_ALL}");
    let gw = Gateway::start(&config(&servers, &rest)).await;
    let client = reqwest::Client::new();
    for _ in 0..10 {
        let r = gw.chat(&client, false).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-mock-id"], "live");
    }
    let metrics = client
        .get(gw.url("/health"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    // Two failures ejected the dead server; later requests never tried it.
    assert_eq!(metrics["stats"]["upstream_failures"], 2, "{metrics}");

    // A pool of only dead servers: 502 upstream_connect_error.
    let servers = [server("dead", "p", dead.port, "")];
    let gw = Gateway::start(&config(&servers, CATCH_ALL)).await;
    let r = gw.chat(&client, false).await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_connect_error");
}

const TIMEOUTS: &str =
    "timeouts:\n  connect_ms: 1000\n  first_byte_ms: 400\n  idle_ms: 300\n  total_ms: 2000\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_504_or_cut_the_stream() {
    let m = mock("a").await;
    let servers = [server("a", "p", m.addr.port(), "")];
    let gw = Gateway::start(&config(&servers, &format!("{TIMEOUTS}{CATCH_ALL}"))).await;
    let client = reqwest::Client::new();

    // First byte, non-streaming (direct path) and streaming (subrequest path).
    for stream in [false, true] {
        let started = Instant::now();
        let r = post(&client, gw.url("/v1/chat/completions"))
            .header("x-mock-latency-ms", "3000")
            .json(&chat_body(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT, "stream={stream}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_timeout");
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "stream={stream}"
        );
    }

    // Idle gap between stream chunks: the stream starts, then is cut.
    let r = gw.slow_stream(&client, 5, 1000).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut stream = r.bytes_stream();
    let mut got = Vec::new();
    let mut broken = false;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("data: "), "{text}");
    assert!(
        !text.contains("[DONE]"),
        "the idle stream was not cut: {text}"
    );
    assert!(broken, "a cut stream must not look complete to the client");

    // Chunks within the idle limit pass, however long the stream lasts.
    let r = gw.slow_stream(&client, 8, 100).await;
    assert!(r.text().await.unwrap().contains("[DONE]"));

    // Total deadline of a non-streaming response with a large body
    // (subrequest path): latency below first_byte but over total.
    let yaml = config(
        &servers,
        &format!("timeouts:\n  first_byte_ms: 5000\n  total_ms: 500\n{CATCH_ALL}"),
    );
    let gw2 = Gateway::start(&yaml).await;
    let big = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(100_000)}]});
    for body in [chat_body(false), big] {
        let r = post(&client, gw2.url("/v1/chat/completions"))
            .header("x-mock-latency-ms", "1500")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}

/// An upstream that answers the first request on each connection and closes
/// the connection, without answering, when a second one arrives on it: what
/// a provider closing idle keep-alive connections looks like to a proxy.
async fn one_shot_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answered = std::sync::Arc::new(AtomicU64::new(0));
    let count = answered.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                // Read one request: head + content-length body.
                loop {
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = head_value(&text[..end], "content-length")
                            .map_or(0, |v| v.parse::<usize>().unwrap());
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let body = br#"{"ok":true}"#;
                let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len());
                sock.write_all(head.as_bytes()).await.unwrap();
                sock.write_all(body).await.unwrap();
                count.fetch_add(1, Relaxed);
                // The next request on this connection is dropped unanswered.
                let _ = sock.read(&mut buf).await;
            });
        }
    });
    (port, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_pooled_connections_are_retried_on_a_fresh_one() {
    let (port, answered) = one_shot_upstream().await;
    let gw = Gateway::start(&config(&[server("u", "p", port, "")], CATCH_ALL)).await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = gw.chat(&client, false).await;
        assert_eq!(r.status(), StatusCode::OK, "request {i}");
    }
    assert_eq!(answered.load(std::sync::atomic::Ordering::Relaxed), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_leave_do_not_count_against_a_deployment() {
    let m = mock("a").await;
    // A breaker that opens at the second failure in a row.
    let yaml = one_mock(
        m.addr.port(),
        "models:\n  - name: fragile\n    breaker: {consecutive_failures: 2, open_ms: 60000}\n    deployments: [{name: one, upstream: p}]\n",
    );
    let gw = Gateway::start(&yaml).await;
    let body = r#"{"model":"fragile","messages":[{"role":"user","content":"hi"}]}"#;
    // Clients that send a request and leave before the (slow) answer.
    for _ in 0..4 {
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nx-mock-latency-ms: 300\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", gw.port))
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut s, request.as_bytes())
            .await
            .unwrap();
        drop(s);
    }
    // Once the mock served those, the deployment still answers.
    eventually("the abandoned requests reached the mock", async || {
        served(&m) >= 4
    })
    .await;
    let r = post(&reqwest::Client::new(), gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}
