//! What a client connection can hold is bounded (`clients` settings): the
//! request head and body deadlines, idle keep-alive, connection caps per
//! listener and per address, a client that stops reading, and malformed
//! heads answered 400 on every listener without the request's bytes (its
//! credentials) reaching the log.

use crate::common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn bounded(port: u16, clients: &str, rest: &str) -> String {
    one_mock(port, &format!("clients:\n{clients}{rest}"))
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the peer closes (or the read timeout), as text.
fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_byte_by_byte_is_cut_at_its_deadline() {
    let m = mock("a").await;
    let gw = Gateway::start(&bounded(m.addr.port(), "  header_timeout_ms: 500\n", "")).await;
    let mut s = connect(gw.port);
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut got = Vec::new();
    // One byte every 100 ms: each read is quick, the whole head is not.
    for b in head.iter() {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
            if n == 0 || !got.is_empty() {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let m = mock("a").await;
    let gw = Gateway::start(&bounded(m.addr.port(), "  idle_timeout_ms: 300\n", "")).await;
    let mut s = connect(gw.port);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    // The answer, then the close (read_to_end returns at EOF).
    let text = read_all(&mut s);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed by the idle timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_client_and_freed_on_close() {
    let m = mock("a").await;
    let gw = Gateway::start(&bounded(
        m.addr.port(),
        "  max_connections_per_client: 2\n",
        "",
    ))
    .await;
    // Two connections served (counted from then on). The readiness
    // probe's connection may still count for a moment: retry until both
    // places are ours.
    let served_conn = || {
        eventually_ok("a place for a connection", async || {
            let mut s = connect(gw.port);
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut buf = [0u8; 256];
            let n = s.read(&mut buf).unwrap_or(0);
            if buf[..n].starts_with(b"HTTP/1.1 200") {
                Ok(s)
            } else {
                Err(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
        })
    };
    let first = served_conn().await;
    let _second = served_conn().await;
    let mut third = connect(gw.port);
    let text = read_all(&mut third);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("too_many_connections"), "{text}");
    // A closed connection frees its place.
    drop(first);
    eventually("the closed connection's place back", async || {
        let mut s = connect(gw.port);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        read_all(&mut s).starts_with("HTTP/1.1 200")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_refused_at_its_deadline() {
    let m = mock("a").await;
    let gw = Gateway::start(&bounded(m.addr.port(), "  body_timeout_ms: 500\n", "")).await;
    let mut s = connect(gw.port);
    s.write_all(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nContent-Length: 100\r\n\r\n{\"model\":",
    )
    .unwrap();
    let started = Instant::now();
    let text = read_all(&mut s);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(served(&m), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_frees_its_slot() {
    let m = mock("a").await;
    let rules = "rules:\n  - rule_name: one-at-a-time\n    rule_type: concurrency\n    rule_config: {max_concurrent: 1}\n";
    let gw = Gateway::start(&bounded(m.addr.port(), "  write_timeout_ms: 500\n", rules)).await;
    // A ~23 MB answer to a client that never reads it (a small receive
    // buffer, so the answer cannot all sit in the kernel's buffers).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = socket
        .connect(([127, 0, 0, 1], gw.port).into())
        .await
        .unwrap();
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nx-mock-tokens: 4000000\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut stuck, head.as_bytes())
        .await
        .unwrap();
    let c = reqwest::Client::new();
    // The stuck request takes the slot (it reached the upstream) ...
    eventually("the stuck request at the mock", async || served(&m) > 0).await;
    let held = poll_until(PATIENCE, async || gw.chat(&c, false).await.status() == 503).await;
    if !held {
        let mut got = vec![0u8; 300];
        let n = tokio::time::timeout(
            Duration::from_secs(1),
            tokio::io::AsyncReadExt::read(&mut stuck, &mut got),
        )
        .await;
        panic!(
            "the stuck request never held the slot; it got {n:?}: {}",
            String::from_utf8_lossy(&got)
        );
    }
    // ... and gives it back once a write has made no progress for 500 ms.
    eventually_within(
        Duration::from_secs(30),
        "the stuck client's slot given back",
        async || {
            let r = gw.chat(&c, false).await;
            assert!(r.status() == 200 || r.status() == 503, "{}", r.status());
            r.status() == 200
        },
    )
    .await;
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_heads_get_400_and_no_credential_is_logged() {
    let m = mock("a").await;
    let yaml = admin_config(m.addr.port(), "ADMIN-SECRET-1", "");
    let log = std::env::temp_dir().join(format!("sluice-cred-{}.log", std::process::id()));
    let gw = Gateway::start_logging(&yaml, "debug", Some(&log)).await;
    let bad = [
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ADMIN-SECRET-1\r\nBad Header Line\r\n\r\n",
        "GET /api/v1/namespaces HTTP/1.1\r\nAuthorization: Bearer ADMIN-SECRET-1\r\nHost: x\r\nX: \x01\x02\r\n\r\n",
        "GET /api/v1/namespaces HTTP/1.1\r\nAuthorization: Bearer ADMIN-SECRET-1\r\n\r\n",
    ];
    for (port, secret) in [
        (gw.admin_port, "ADMIN-SECRET-1"),
        (gw.port, "PROXY-SECRET-2"),
    ] {
        for req in bad {
            let text = raw_to(port, req.replace("ADMIN-SECRET-1", secret).as_bytes());
            assert!(text.starts_with("HTTP/1.1 400"), "{port} {req:?}: {text}");
        }
    }
    // The answers are written before the log lines of the same events; a
    // well-formed request after them orders the check.
    let r = reqwest::get(gw.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("ADMIN-SECRET-1"), "admin token in the log");
    assert!(!text.contains("PROXY-SECRET-2"), "API key in the log");
    let _ = std::fs::remove_file(&log);
}
