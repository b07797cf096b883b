//! Several instances on one MySQL store with the Redis bus: a change made
//! on one instance is applied by the other within a second, concurrent
//! changes on both lose nothing, a MySQL outage keeps the last good config
//! serving (503 for changes, `/health` naming the store unhealthy) and heals; and the file
//! store survives `kill -9` in the middle of writes.

use crate::common::*;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const TOKEN: &str = "s-tok";

fn yaml(a_port: u16, store_yaml: &str) -> String {
    admin_config(a_port, TOKEN, store_yaml)
}

async fn call(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    Admin::new(gw, TOKEN).call(method, path, body).await
}

async fn namespace_codes(gw: &Gateway) -> Vec<String> {
    let (_, v) = call(gw, "GET", "/api/v1/namespaces", None).await;
    v.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|n| n["namespace_code"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_converge_within_a_second() {
    let a = mock("a").await;
    let b = mock("b").await;
    let store = StoreGuard::new();
    let one = Gateway::start(&yaml(a.addr.port(), &store.yaml(None))).await;
    let two = Gateway::start(&yaml(a.addr.port(), &store.yaml(None))).await;
    let c = reqwest::Client::new();

    // A new pool and a proxy rule sending traffic to it, made on `one`.
    let (s, v) = call(
        &one,
        "POST",
        "/api/v1/upstream-servers",
        Some(json!({"server_name": "b", "server_address": "127.0.0.1", "server_port": b.addr.port()})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = call(
        &one,
        "POST",
        "/api/v1/proxy-rules",
        Some(json!({"rule_name": "to-b", "upstream_server_id": v["server_id"], "path_pattern": "/v1/.*"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let served_by_b = || async {
        let r = post(&c, two.url("/v1/chat/completions"))
            .json(&chat_body(false))
            .send()
            .await
            .unwrap();
        r.headers().get("x-mock-id").and_then(|v| v.to_str().ok()) == Some("b")
    };
    let started = Instant::now();
    eventually_within(
        Duration::from_secs(1),
        "instance two applying the change",
        served_by_b,
    )
    .await;
    let took = started.elapsed();

    // Both run the same revision, and the follower's catch-up was a cache hit.
    let (_, h1) = call(&one, "GET", "/health", None).await;
    let (_, h2) = call(&two, "GET", "/health", None).await;
    assert_eq!(h1["revision"], h2["revision"]);
    assert_eq!(
        h2["storage"],
        json!({"mysql": "healthy", "redis": "healthy"})
    );
    let (_, stats) = call(&two, "GET", "/cache/stats", None).await;
    assert!(stats["cache_hits"].as_u64().unwrap() >= 1, "{stats}");

    // /sync and /preload write the store's state to Redis.
    let (s, v) = call(&two, "POST", "/sync", None).await;
    assert_eq!((s, v["message"].as_str()), (200, Some("数据同步成功")));
    let (s, v) = call(&two, "POST", "/preload/1", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("命名空间 1 数据预加载完成"))
    );
    let (s, _) = call(&two, "POST", "/preload/77", None).await;
    assert_eq!(s, 404);
    let (_, stats) = call(&two, "GET", "/cache/stats", None).await;
    assert!(stats["cache_size"].as_u64().unwrap() > 0, "{stats}");
    println!("instance two applied the change after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_on_two_instances_lose_nothing() {
    let a = mock("a").await;
    let store = StoreGuard::new();
    let one = Arc::new(Gateway::start(&yaml(a.addr.port(), &store.yaml(None))).await);
    let two = Arc::new(Gateway::start(&yaml(a.addr.port(), &store.yaml(None))).await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let gw = if i % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            call(
                &gw,
                "POST",
                "/api/v1/namespaces",
                Some(json!({"namespace_name": "N", "namespace_code": format!("n{i}")})),
            )
            .await
        }));
    }
    for t in tasks {
        let (s, v) = t.await.unwrap();
        assert_eq!(s, 200, "{v}");
    }
    // Same for updates of one entity from both sides: each lands.
    for i in 0..6 {
        let gw = if i % 2 == 0 { &one } else { &two };
        let (s, v) = call(
            gw,
            "PUT",
            "/api/v1/namespaces/1",
            Some(json!({"description": format!("d{i}")})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    for gw in [&one, &two] {
        let converged = poll_until(Duration::from_secs(2), async || {
            namespace_codes(gw).await.len() == 17
                && call(gw, "GET", "/api/v1/namespaces/1", None).await.1["description"] == "d5"
        })
        .await;
        assert!(converged, "{:?}", namespace_codes(gw).await);
    }
}

/// A TCP forwarder to MySQL that the test can cut and restore.
struct Forwarder {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<std::sync::atomic::AtomicUsize>,
}

impl Forwarder {
    async fn start() -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (flag, count) = (up.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (flag, count) = (flag.clone(), count.clone());
                tokio::spawn(async move {
                    if !flag.load(Relaxed) {
                        return; // refused: dropped at once
                    }
                    count.fetch_add(1, Relaxed);
                    let Ok(mut outbound) = TcpStream::connect("127.0.0.1:3306").await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = outbound.split();
                    let cut = async {
                        while flag.load(Relaxed) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy(&mut ri, &mut wo) => {}
                        _ = tokio::io::copy(&mut ro, &mut wi) => {}
                        _ = cut => {}
                    }
                    count.fetch_sub(1, Relaxed);
                });
            }
        });
        Forwarder { port, up, open }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_outage_keeps_serving_and_loses_nothing() {
    let a = mock("a").await;
    let store = StoreGuard::new();
    let fwd = Forwarder::start().await;
    let url = format!("mysql://root@127.0.0.1:{}/{}", fwd.port, store.db);
    let gw = Gateway::start(&yaml(a.addr.port(), &store.yaml(Some(&url)))).await;
    let c = reqwest::Client::new();
    let (s, _) = call(
        &gw,
        "POST",
        "/api/v1/namespaces",
        Some(json!({"namespace_name": "Before", "namespace_code": "before"})),
    )
    .await;
    assert_eq!(s, 200);

    fwd.up.store(false, Relaxed);
    eventually_within(
        Duration::from_secs(2),
        "the forwarder cutting its connections",
        async || fwd.open.load(Relaxed) == 0,
    )
    .await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/namespaces",
        Some(json!({"namespace_name": "During", "namespace_code": "during"})),
    )
    .await;
    assert_eq!(s, 503, "{v}");
    assert!(
        v["detail"].as_str().unwrap().contains("配置存储不可用"),
        "{v}"
    );
    assert!(!namespace_codes(&gw).await.contains(&"during".to_string()));
    eventually_within(
        Duration::from_secs(3),
        "the admin /health saying mysql is unhealthy",
        async || call(&gw, "GET", "/health", None).await.1["storage"]["mysql"] == "unhealthy",
    )
    .await;
    let (_, h) = call(&gw, "GET", "/health", None).await;
    assert_eq!(h["status"], "unhealthy");
    // The gateway still serves: healthy, its config center entry not.
    let r = c.get(gw.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["status"], "healthy");
    assert_eq!(h["services"]["config_center"]["status"], "unhealthy");
    // The last good config keeps serving.
    assert_eq!(gw.chat(&c, false).await.status(), 200);

    fwd.up.store(true, Relaxed);
    eventually_within(
        Duration::from_secs(5),
        "the admin /health healthy again",
        async || call(&gw, "GET", "/health", None).await.1["status"] == "healthy",
    )
    .await;
    let (s, v) = call(
        &gw,
        "POST",
        "/api/v1/namespaces",
        Some(json!({"namespace_name": "During", "namespace_code": "during"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(namespace_codes(&gw).await, ["default", "before", "during"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_writes_loses_no_acknowledged_write() {
    let a = mock("a").await;
    let mut gw = Gateway::start(&yaml(a.addr.port(), "")).await;
    let state = state_path(&gw);
    let _ = std::fs::remove_file(&state);
    let gw_admin = gw.admin_url("/api/v1/namespaces");
    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writer = {
        let acked = acked.clone();
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            for i in 0..10_000 {
                let code = format!("k{i}");
                let r = c
                    .post(&gw_admin)
                    .bearer_auth(TOKEN)
                    .json(&json!({"namespace_name": "K", "namespace_code": code}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(code),
                    _ => return,
                }
            }
        })
    };
    // Kill once writes are flowing, in the middle of them.
    eventually_within(
        Duration::from_secs(20),
        "15 acknowledged writes",
        async || acked.lock().unwrap().len() >= 15,
    )
    .await;
    gw.kill9();
    let _ = writer.await;
    let acked = acked.lock().unwrap().clone();

    // The file is whole JSON and holds every acknowledged write.
    let text = std::fs::read_to_string(&state).unwrap();
    let stored: Value = serde_json::from_str(&text).expect("state file is whole");
    let codes: Vec<&str> = stored["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace_code"].as_str().unwrap())
        .collect();
    for code in &acked {
        assert!(
            codes.contains(&code.as_str()),
            "{code} acknowledged but lost"
        );
    }
    gw.restart().await;
    let after = namespace_codes(&gw).await;
    for code in &acked {
        assert!(after.contains(code), "{code} lost after restart");
    }
    let _ = std::fs::remove_file(&state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_config_on_the_proxy_listener_loads_the_stored_state() {
    let a = mock("a").await;
    let store = StoreGuard::new();
    let one = Gateway::start(&yaml(a.addr.port(), &store.yaml(None))).await;
    let two = Gateway::start(&yaml(a.addr.port(), &store.yaml(None))).await;
    let c = reqwest::Client::new();
    // The gateway's /refresh-config: an admin token is required.
    let r = c.get(two.url("/refresh-config")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(two.url("/refresh-config"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A change on `one`; once `two`'s refresh answers, it serves it (the
    // refresh loads the store's newer revision before answering).
    let (s, v) = call(
        &one,
        "POST",
        "/api/v1/namespaces",
        Some(json!({"namespace_name": "R", "namespace_code": "refreshed"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = c
        .get(two.url("/refresh-config"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"success": true, "message": "All configurations refreshed successfully"})
    );
    assert!(namespace_codes(&two)
        .await
        .contains(&"refreshed".to_string()));
    let (_, h1) = call(&one, "GET", "/health", None).await;
    let (_, h2) = call(&two, "GET", "/health", None).await;
    assert_eq!(h1["revision"], h2["revision"]);
}
