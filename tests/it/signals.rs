//! Signals on the real binary: SIGTERM drains (accepts during the grace
//! period, finishes streams and requests in flight with their last byte,
//! then exits at once), SIGHUP reloads the config file's settings and
//! reopens the access log instead of killing the process.

use crate::common::*;
use futures_util::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

fn draining_config(port: u16, extra: &str) -> String {
    one_mock(port, extra).replace(
        "grace_period_seconds: 0\n  graceful_shutdown_timeout_seconds: 1",
        "grace_period_seconds: 3\n  graceful_shutdown_timeout_seconds: 60",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_streams_and_requests_then_exits() {
    let m = mock("a").await;
    let mut gw = Gateway::start(&draining_config(m.addr.port(), "")).await;
    let c = reqwest::Client::new();
    // A stream of 60 chunks 100 ms apart: it outlives the 3 s grace period.
    let r = gw.slow_stream(&c, 60, 100).await;
    assert_eq!(r.status(), 200);
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    // A slow non-streaming answer, in flight when the signal comes.
    let slow = tokio::spawn({
        let c = c.clone();
        let url = gw.url("/v1/chat/completions");
        async move {
            let r = post(&c, url)
                .header("x-mock-latency-ms", "3000")
                .json(&chat_body(false))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<serde_json::Value>().await.unwrap())
        }
    });
    eventually("the slow request in flight at the mock", async || {
        served(&m) == 2
    })
    .await;
    gw.signal("TERM");
    // Draining: the health probe says so, and new requests are still
    // served during the grace period, each closing its connection.
    eventually("/healthz answering 503 while draining", async || {
        c.get(gw.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    let r = gw.chat(&c, false).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["connection"], "close");
    // The stream ends with its last event, after the listeners closed.
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.expect("stream not cut")).unwrap());
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(text.matches("\"content\":\" ").count(), 60);
    let (status, v) = slow.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["object"], "chat.completion");
    // Nothing left in flight: the process exits now, not after the 60 s
    // drain deadline.
    let ended = Instant::now();
    let code = gw.exited(Duration::from_secs(15)).await.expect("exits");
    assert!(code.success(), "{code}");
    assert!(ended.elapsed() < Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_settings_and_reopens_the_access_log() {
    let m = mock("a").await;
    let log = std::env::temp_dir().join(format!("sluice-hup-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let extra = format!("access_log:\n  path: {}\n", log.display());
    let mut gw = Gateway::start(&draining_config(m.addr.port(), &extra)).await;
    let c = reqwest::Client::new();
    assert_eq!(gw.chat(&c, false).await.status(), 200);
    // Rotation: the file is moved away; SIGHUP reopens the path.
    let rotated = log.with_extension("log.1");
    eventually("an access log line", async || {
        std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty())
    })
    .await;
    std::fs::rename(&log, &rotated).unwrap();
    // A changed setting: bodies over 100 bytes are refused after the reload.
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(
        &gw.config_path,
        format!("{text}\nlimits:\n  max_body_bytes: 100\n"),
    )
    .unwrap();
    gw.signal("HUP");
    let big =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(200)}]});
    eventually("the reloaded body limit (413)", async || {
        let r = post(&c, gw.url("/v1/chat/completions"))
            .json(&big)
            .send()
            .await
            .unwrap();
        assert!(r.status() == 413 || r.status() == 200, "{}", r.status());
        r.status() == 413
    })
    .await;
    assert!(gw.alive(), "SIGHUP must not kill the gateway");
    eventually("the 413 written to the reopened log", async || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("\"status\":413"))
    })
    .await;
    // A config file that does not load changes nothing and keeps serving.
    std::fs::write(&gw.config_path, "server: [not, a, map]\n").unwrap();
    gw.signal("HUP");
    let small = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]});
    let r = post(&c, gw.url("/v1/chat/completions"))
        .json(&small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(gw.alive());
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&rotated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_drains_too() {
    let m = mock("a").await;
    let mut gw = Gateway::start(&draining_config(m.addr.port(), "")).await;
    let c = reqwest::Client::new();
    let r = gw.slow_stream(&c, 30, 100).await;
    let mut body = r.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    gw.signal("QUIT");
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    while let Some(chunk) = body.next().await {
        text.push_str(std::str::from_utf8(&chunk.expect("stream not cut")).unwrap());
    }
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let code = gw.exited(Duration::from_secs(30)).await.expect("exits");
    assert!(code.success(), "{code}");
}
