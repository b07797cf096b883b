//! The shared counters through Redis Sentinel, with a failover in the
//! middle: a primary, a replica and a sentinel (`redis-server` on loopback
//! ports). Two gateway instances count through the sentinel; the primary
//! is killed (after the replica acknowledged every write); while no
//! primary answers the rule's `fail_mode: closed` applies (503); once the
//! replica is promoted, counting resumes where it was: the limit is
//! reached and never exceeded (an admission whose answer was lost in the
//! switch is counted once, never twice).

use crate::common::*;
use crate::redis_counter::Server;
use std::process::{Command, Stdio};
use std::time::Duration;

fn redis(dir: &std::path::Path, args: &[&str]) -> Server {
    let child = Command::new("redis-server")
        .args(args)
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (run ./scripts/test-deps.sh)");
    Server::from_child(child)
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn listening(port: u16) {
    eventually_blocking(Duration::from_secs(10), "redis listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| e.to_string())
    });
}

/// Sends `n` requests alternating between the gateways; counts statuses.
async fn send(gws: &[&Gateway], n: usize) -> (usize, usize, usize) {
    let c = reqwest::Client::new();
    let (mut ok, mut limited, mut unavailable) = (0, 0, 0);
    for i in 0..n {
        match gws[i % gws.len()].chat(&c, false).await.status().as_u16() {
            200 => ok += 1,
            429 => limited += 1,
            503 => unavailable += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    (ok, limited, unavailable)
}

/// A primary, its replica (in sync) and a sentinel watching them as
/// `main`, in `dir`: (primary, replica, sentinel, their ports).
fn trio(dir: &std::path::Path) -> (Option<Server>, Server, Server, (u16, u16, u16)) {
    std::fs::create_dir_all(dir).unwrap();
    let (p, r, s) = (
        refused_port().release(),
        refused_port().release(),
        refused_port().release(),
    );
    let primary = Some(redis(dir, &["--port", &p.to_string()]));
    let replica = redis(
        dir,
        &[
            "--port",
            &r.to_string(),
            "--replicaof",
            "127.0.0.1",
            &p.to_string(),
        ],
    );
    listening(p);
    listening(r);
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {s}\nsentinel monitor main 127.0.0.1 {p} 1\nsentinel down-after-milliseconds main 500\nsentinel failover-timeout main 3000\n"
        ),
    )
    .unwrap();
    let sentinel = redis(dir, &[conf.to_str().unwrap(), "--sentinel"]);
    listening(s);
    eventually_blocking(Duration::from_secs(20), "the replica in sync", || {
        let info = cli(r, &["info", "replication"]);
        if info.contains("master_link_status:up") {
            Ok(())
        } else {
            Err(info)
        }
    });
    eventually_blocking(
        Duration::from_secs(20),
        "the sentinel sees the replica",
        || {
            let replicas = cli(s, &["sentinel", "replicas", "main"]);
            if replicas.contains(&r.to_string()) {
                Ok(())
            } else {
                Err(replicas)
            }
        },
    );
    (primary, replica, sentinel, (p, r, s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counting_survives_a_sentinel_failover() {
    let dir = std::env::temp_dir().join(format!("sluice-sentinel-{}", std::process::id()));
    let (mut primary, _replica, _sentinel, (p, r, s)) = trio(&dir);

    let m = mock("a").await;
    let url = format!("redis-sentinel://127.0.0.1:{s}/0?sentinelServiceName=main");
    let rules = "rules:\n  - rule_name: forty\n    rule_type: rate_limit\n    rule_config: {max_requests: 40, time_window_seconds: 3600, key_by: namespace, fail_mode: closed}\n";
    let yaml = one_mock(
        m.addr.port(),
        &format!(
            "counters:\n  store: redis\n  redis_url: \"{url}\"\n  key_prefix: \"st:\"\n  timeout_ms: 300\n{rules}"
        ),
    );
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    // The first admissions may race the store's first connection (503).
    let mut first = 0;
    eventually("both instances count through the sentinel", async || {
        let (ok, _, unavailable) = send(&[&a, &b], 2).await;
        first += ok;
        unavailable == 0
    })
    .await;
    let before = served(&m);
    let (ok, limited, unavailable) = send(&[&a, &b], 30 - first).await;
    assert_eq!((ok, limited, unavailable), (30 - first, 0, 0));
    // Every write is on the replica before the primary dies.
    assert_eq!(cli(p, &["wait", "1", "2000"]), "1");
    drop(primary.take());

    // No primary: closed → 503; then the promoted replica answers and
    // counting goes on from what it holds. A call that reached the new
    // primary but whose answer was lost in the switch (timeout) is
    // counted once and answered 503: never twice, so the limit holds.
    let mut during = (0, 0, 0);
    eventually_within(Duration::from_secs(30), "a primary again", async || {
        let (ok, limited, unavailable) = send(&[&a, &b], 2).await;
        during.0 += ok;
        during.1 += limited;
        during.2 += unavailable;
        unavailable == 0
    })
    .await;
    assert_eq!(cli(r, &["role"]).lines().next(), Some("master"));
    let (ok, limited, _) = send(&[&a, &b], 20).await;
    let admitted = 30 + during.0 + ok;
    let seen = format!("admitted: 30 before, {during:?} during, {ok} after");
    // Never over the limit; short of it only by answers lost in the
    // switch (a handful at most).
    assert!(admitted <= 40, "{seen}");
    assert!(admitted >= 37, "{seen}");
    assert_eq!(ok + limited, 20);
    assert!(limited > 0, "{seen}");
    // The new primary's count is the limit: exhausted, not exceeded.
    let key = cli(r, &["--scan", "--pattern", "st:fw:*"]);
    assert_eq!(cli(r, &["hget", key.trim(), "n"]), "40", "{seen}");
    assert!(during.2 > 0, "no request met the failover: {during:?}");
    assert_eq!(served(&m) - before, (30 - first + during.0 + ok) as u64);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The config bus and the response cache's shared tier through Sentinel:
/// a change on one instance reaches the other, answers stored through one
/// are hits on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_bus_and_the_response_cache_work_through_sentinel() {
    use crate::cache::{answer, body, cache_config, stats, TOKEN};
    let dir = std::env::temp_dir().join(format!("sluice-sentinel-bus-{}", std::process::id()));
    let (mut primary, _replica, _sentinel, (p, r, s)) = trio(&dir);
    let url = format!("redis-sentinel://127.0.0.1:{s}/0?sentinelServiceName=main");
    let m = mock("a").await;
    let store = StoreGuard::new();
    let rest = format!(
        "cache: {{redis_url: \"{url}\", key_prefix: \"sc:\"}}\n{}",
        store.yaml(None).replace(&redis_base(), &url)
    );
    let yaml = cache_config(m.addr.port(), "{ttl_s: 300}", &rest);
    let (a, b) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);

    let questions: Vec<String> = (0..5).map(|i| format!("question {i}")).collect();
    for q in &questions {
        assert_eq!(answer(&a, "sk-test", &body(q, false)).await.1, "miss");
    }
    eventually("A wrote every entry through the sentinel", async || {
        stats(&a).await["redis_writes"] == 5
    })
    .await;
    for q in &questions {
        assert_eq!(answer(&b, "sk-test", &body(q, false)).await.1, "hit", "{q}");
    }
    assert_eq!(served(&m), 5);
    // On the primary the sentinel names.
    assert!(!cli(p, &["--scan", "--pattern", "sc:e:*"]).is_empty());

    let api = Admin::new(&a, TOKEN);
    api.create_namespace("Watched", "watched").await;
    let api_b = Admin::new(&b, TOKEN);
    api_b
        .until_namespace("B applied A's change", "watched")
        .await;

    // The primary fails: the sentinel promotes the replica, and both the
    // cache's shared tier and the config bus go on through it.
    assert_eq!(cli(p, &["wait", "1", "2000"]), "1");
    drop(primary.take());
    eventually_within(
        Duration::from_secs(30),
        "the replica promoted",
        async || cli(r, &["role"]).lines().next() == Some("master"),
    )
    .await;
    // Answers stored through A after the failover are hits on B (each
    // try with a new question: a miss on B stores the answer in B's own
    // memory tier). A miss meanwhile is a cache doing without its shared
    // tier, never an error.
    let mut n = 0;
    eventually_within(
        Duration::from_secs(30),
        "A's answers are hits on B",
        async || {
            n += 1;
            let q = format!("after the failover {n}");
            let writes = stats(&a).await["redis_writes"].as_u64().unwrap_or(0);
            let (status, _, _) = answer(&a, "sk-test", &body(&q, false)).await;
            assert_eq!(status, 200);
            let wrote = async || stats(&a).await["redis_writes"].as_u64().unwrap_or(0) > writes;
            if !poll_until(Duration::from_secs(2), wrote).await {
                return false;
            }
            let (status, outcome, _) = answer(&b, "sk-test", &body(&q, false)).await;
            assert_eq!(status, 200);
            outcome == "hit"
        },
    )
    .await;
    assert!(!cli(r, &["--scan", "--pattern", "sc:e:*"]).is_empty());
    // A change made through B after the failover is announced on the
    // new primary and applied by A; both say their Redis is healthy.
    api_b.create_namespace("After", "after-failover").await;
    api.until_namespace("A applied B's change", "after-failover")
        .await;
    for gw in [&a, &b] {
        let gw_api = Admin::new(gw, TOKEN);
        eventually("the config bus healthy again", async || {
            let (_, h) = gw_api.get("/health").await;
            h["storage"]["redis"] == "healthy"
        })
        .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}
