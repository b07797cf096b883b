//! Live state survives config changes: passive ejection and the
//! `max_connections` in-flight counts are kept in the live state, not in
//! the compiled snapshot every admin write replaces. Under traffic, ten
//! admin changes neither bring an ejected server back nor free the slots
//! of requests still in flight.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const TOKEN: &str = "live-tok";

/// Connection attempts the dead server refused (Prometheus counter).
async fn failures(gw: &Gateway, client: &reqwest::Client) -> u64 {
    let text = client
        .get(gw.url("/metrics"))
        .bearer_auth("m-tok")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| {
            l.starts_with("sluice_upstream_failures_total{")
                && l.contains("reason=\"connect_refused\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

/// One admin write (a namespace's name): a new snapshot is swapped in.
async fn admin_change(gw: &Gateway, client: &reqwest::Client, n: usize) {
    let r = client
        .put(gw.admin_url("/api/v1/namespaces/1"))
        .bearer_auth(TOKEN)
        .json(&json!({"namespace_name": format!("change {n}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ejection_and_in_flight_counts_survive_admin_changes() {
    let live = mock("live").await;
    let dead_port = free_port(); // nothing listens here
    let servers = [
        server("dead", "p", dead_port, ""),
        server("live", "p", live.addr.port(), "    max_connections: 2\n"),
    ];
    let rest = format!(
        "upstream:\n  eject_after_failures: 2\n  eject_ms: 600000\n{CATCH_ALL}admin: {{tokens: [{TOKEN}]}}\nmetrics: {{token: m-tok}}\n"
    );
    let yaml = config(&servers, &rest).replace(
        "listen:\n  proxy: \"{proxy}\"",
        "listen:\n  proxy: \"{proxy}\"\n  admin: \"{admin}\"",
    );
    let gw = Gateway::start(&yaml).await;
    let client = reqwest::Client::new();

    // Two connect failures eject the dead server.
    for _ in 0..6 {
        let r = gw.chat(&client, false).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(failures(&gw, &client).await, 2);

    // Ten admin changes under traffic: the dead server stays ejected
    // (no request tries it again).
    for n in 0..10 {
        admin_change(&gw, &client, n).await;
        let r = gw.chat(&client, false).await;
        assert_eq!(r.status(), StatusCode::OK, "after change {n}");
    }
    assert_eq!(
        failures(&gw, &client).await,
        2,
        "the ejected server was tried again"
    );

    // Two slow streams hold both slots of the live server.
    let mut held = Vec::new();
    for _ in 0..2 {
        let r = post(&client, gw.url("/v1/chat/completions"))
            .header("x-mock-chunk-ms", "1000")
            .header("x-mock-tokens", "60")
            .json(&chat_body(true))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        held.push(r);
    }
    // Ten more changes: the slots stay taken, so a third request finds no
    // server (the dead one is still ejected).
    for n in 10..20 {
        admin_change(&gw, &client, n).await;
    }
    let r = gw.chat(&client, false).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    // The live one is at its max_connections: the upstream cap.
    assert_eq!(v["error"]["code"], "upstream_concurrency_exceeded", "{v}");

    // The streams end (client gone): their slots come back to the same
    // counters, and the server takes requests again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = gw.chat(&client, false).await;
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slots never came back: {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failures(&gw, &client).await, 2);
}
