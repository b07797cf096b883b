//! The shared counters and the fleet registry against a real local Redis
//! Cluster (three primaries started with `redis-server --cluster-enabled`
//! on loopback ports): two gateway instances admit exactly the limit, and
//! list one another.

use crate::common::*;
use crate::redis_counter::Server;
use serde_json::Value;
use std::process::{Command, Stdio};

/// A port `p` free with `p + 10000` (the cluster bus) free too.
fn cluster_port() -> u16 {
    loop {
        let a = refused_port();
        if a.port > 50_000 {
            continue;
        }
        let bus = std::net::TcpListener::bind(("127.0.0.1", a.port + 10_000));
        if bus.is_ok() {
            return a.release();
        }
    }
}

/// One cluster at a time: a node's bus port (its port + 10000) must not
/// be another cluster's node port, which two setups at once could pick.
fn one_at_a_time() -> &'static tokio::sync::Mutex<()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    LOCK.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// The `redis-cluster://` URL of the primaries on `ports`.
fn cluster_url(ports: &[u16]) -> String {
    format!(
        "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    )
}

/// Three primaries forming one cluster (`scripts/test-deps.sh` installs
/// redis-server and redis-cli; their absence fails the test).
fn start_cluster() -> (Vec<Server>, Vec<u16>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "sluice-cluster-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("cluster dir");
    let mut servers = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = cluster_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (run ./scripts/test-deps.sh)");
        servers.push(Server::from_child(child));
        ports.push(port);
    }
    for &port in &ports {
        eventually_blocking(
            std::time::Duration::from_secs(10),
            "a cluster node listening",
            || {
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map(drop)
                    .map_err(|e| e.to_string())
            },
        );
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    // Bounded: redis-cli waits for the nodes to meet without a deadline.
    let created = Command::new("timeout")
        .args(["60", "redis-cli", "--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("redis-cli (run ./scripts/test-deps.sh)");
    assert!(created.success(), "redis-cli --cluster create failed");
    for &port in &ports {
        eventually_blocking(
            std::time::Duration::from_secs(20),
            "the cluster is ok",
            || {
                let out = Command::new("redis-cli")
                    .args(["-p", &port.to_string(), "cluster", "info"])
                    .output()
                    .map_err(|e| e.to_string())?;
                let text = String::from_utf8_lossy(&out.stdout).to_string();
                if text.contains("cluster_state:ok") {
                    Ok(())
                } else {
                    Err(text)
                }
            },
        );
    }
    (servers, ports, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_admit_exactly_the_limit() {
    let _one = one_at_a_time().lock().await;
    let (servers, ports, dir) = start_cluster();
    let url = cluster_url(&ports);
    let m = mock("a").await;
    let rules = "rules:\n  - rule_name: twenty\n    rule_type: rate_limit\n    rule_config: {max_requests: 20, time_window_seconds: 3600, key_by: [namespace, api_key]}\n  - rule_name: slots\n    rule_type: concurrency\n    rule_config: {max_concurrent: 1000, key_by: namespace}\n";
    let yaml = admin_config(
        m.addr.port(),
        "cl-tok",
        &format!(
            "fleet: {{heartbeat_ms: 200}}\ncounters:\n  store: redis\n  redis_url: \"{url}\"\n  key_prefix: \"cl:\"\n  timeout_ms: 1000\n{rules}"
        ),
    );
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let req = post(&c, [&a, &b][i % 2].url("/v1/chat/completions")).json(&chat_body(false));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((ok, limited), (20, 40), "{statuses:?}");
    assert_eq!(served(&m), 20);
    // Every counter key carries the prefix's hash tag: one slot.
    let mut keys = String::new();
    let mut nodes_holding = 0;
    for port in &ports {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--scan", "--pattern", "*"])
            .output()
            .unwrap();
        let here = String::from_utf8_lossy(&out.stdout).to_string();
        if here.lines().any(|k| k.contains("fw:")) {
            nodes_holding += 1;
        }
        keys.push_str(&here);
    }
    assert_eq!(nodes_holding, 1, "{keys}");
    assert!(keys.lines().any(|k| k.starts_with("{cl:}fw:")), "{keys}");
    // The fleet registry works on the cluster too.
    let admin = Admin::new(&a, "cl-tok");
    eventually("both instances listed", async || {
        let (_, v): (u16, Value) = admin.get("/api/v1/instances").await;
        v["live"] == 2
    })
    .await;
    drop(servers);
    let _ = std::fs::remove_dir_all(dir);
}

/// The config center's bus and the response cache's shared tier on the
/// same kind of cluster: a change made on one instance reaches the other
/// (the announce script's keys share a slot), answers stored by one are
/// hits on the other, and a purge finds entries on every primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_bus_and_the_response_cache_work_on_a_cluster() {
    use crate::cache::{answer, body, cache_config, stats, TOKEN};
    let _one = one_at_a_time().lock().await;
    let (servers, ports, dir) = start_cluster();
    let url = cluster_url(&ports);
    let m = mock("a").await;
    let store = StoreGuard::new();
    let rest = format!(
        "cache: {{redis_url: \"{url}\", key_prefix: \"cc:\"}}\n{}",
        store.yaml(None).replace(&redis_base(), &url)
    );
    let yaml = cache_config(m.addr.port(), "{ttl_s: 300}", &rest);
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);

    // Answers stored through A are hits on B.
    let questions: Vec<String> = (0..12).map(|i| format!("question {i}")).collect();
    for q in &questions {
        assert_eq!(answer(&a, "sk-test", &body(q, false)).await.1, "miss");
    }
    eventually("A wrote every entry to the cluster", async || {
        stats(&a).await["redis_writes"] == 12
    })
    .await;
    for q in &questions {
        assert_eq!(answer(&b, "sk-test", &body(q, false)).await.1, "hit", "{q}");
    }
    assert_eq!(served(&m), 12);
    // They are spread over the primaries, and a purge finds them all.
    let holding = ports
        .iter()
        .filter(|p| {
            let out = Command::new("redis-cli")
                .args(["-p", &p.to_string(), "--scan", "--pattern", "cc:e:*"])
                .output()
                .unwrap();
            !out.stdout.is_empty()
        })
        .count();
    assert!(holding >= 2, "entries on {holding} primary");
    let api = Admin::new(&a, TOKEN);
    let (s, v) = api
        .post("/cache/purge", serde_json::json!({"model": "cached"}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["purged_redis"], 12, "{v}");

    // A change on A reaches B through the bus on the cluster.
    api.create_namespace("Clustered", "clustered").await;
    let api_b = Admin::new(&b, TOKEN);
    api_b
        .until_namespace("B applied A's change", "clustered")
        .await;
    let (s, v) = api.post("/sync", serde_json::json!({})).await;
    assert_eq!(s, 200, "{v}");
    drop(servers);
    let _ = std::fs::remove_dir_all(dir);
}
