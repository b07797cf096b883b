//! The fleet with the real binary, MariaDB and Redis: instances that share
//! a Redis list one another (`GET /api/v1/instances`) with their revision
//! and health; an admin write with `?wait=fleet` answers once every live
//! instance applied it, naming those that did not (a frozen instance)
//! within the wait; a bad wait changes nothing. With Redis gone, rules
//! with `fail_mode: local_share` hold each instance to its share of the
//! limit, and the budget counted meanwhile is charged to Redis when it
//! returns.

use crate::common::*;
use crate::redis_counter::spawn_redis;
use serde_json::{json, Value};

const TOKEN: &str = "fleet-tok";

fn fleet_yaml(mock_port: u16, store: &str) -> String {
    admin_config(
        mock_port,
        TOKEN,
        &format!("fleet: {{heartbeat_ms: 200}}\n{store}"),
    )
}

fn live_ids(v: &Value) -> Vec<String> {
    v["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["live"] == true)
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_list_one_another_and_writes_wait_for_the_fleet() {
    let m = mock("a").await;
    let store = StoreGuard::new();
    let yaml = fleet_yaml(m.addr.port(), &store.yaml(None));
    let (one, two) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let (a1, a2) = (Admin::new(&one, TOKEN), Admin::new(&two, TOKEN));

    // Each lists both, live, itself among them.
    let listing = eventually_ok("both instances listed", async || {
        let (s, v) = a1.get("/api/v1/instances").await;
        if s == 200 && live_ids(&v).len() == 2 {
            Ok(v)
        } else {
            Err(format!("{s} {v}"))
        }
    })
    .await;
    assert_eq!(listing["registry"], "redis");
    assert_eq!(listing["registry_ok"], true);
    let this = listing["this"].as_str().unwrap().to_string();
    assert!(live_ids(&listing).contains(&this));
    for m in listing["instances"].as_array().unwrap() {
        assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(m["config_store"], "healthy");
        assert!(m["address"].as_str().unwrap().contains(':'));
        assert!(m["started_at"].as_str().unwrap().ends_with('Z'));
    }
    let (_, v2) = a2.get("/api/v1/instances").await;
    assert_ne!(v2["this"], listing["this"]);

    // A bad wait is refused before anything changes.
    let before = a1.get("/api/v1/namespaces").await.1;
    for q in [
        "wait=fleet&timeout_ms=0",
        "wait=fleet&timeout_ms=x",
        "wait=all",
    ] {
        let (s, v) = a1
            .post(
                &format!("/api/v1/namespaces?{q}"),
                json!({"namespace_name": "Bad", "namespace_code": "bad"}),
            )
            .await;
        assert_eq!(s, 400, "{q}: {v}");
    }
    assert_eq!(a1.get("/api/v1/namespaces").await.1, before);

    // A write that waits: both run the new revision when it answers.
    let (s, v) = a1
        .post(
            "/api/v1/namespaces?wait=fleet&timeout_ms=10000",
            json!({"namespace_name": "Waited", "namespace_code": "waited"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["fleet"]["complete"], true, "{v}");
    assert_eq!(v["fleet"]["applied"].as_array().unwrap().len(), 2, "{v}");
    let revision = v["fleet"]["revision"].as_u64().unwrap();
    let (_, l2) = a2.get("/api/v1/instances").await;
    let me2 = l2["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == l2["this"])
        .unwrap()
        .clone();
    assert!(me2["revision"].as_u64().unwrap() >= revision, "{l2}");

    // A frozen instance: still live for three beats, it cannot apply.
    two.signal("STOP");
    let (s, v) = a1
        .post(
            "/api/v1/namespaces?wait=fleet&timeout_ms=300",
            json!({"namespace_name": "Frozen", "namespace_code": "frozen"}),
        )
        .await;
    two.signal("CONT");
    assert_eq!(s, 200, "{v}");
    let pending: Vec<&str> = v["fleet"]["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    // Frozen for 300 ms with 200 ms beats: either still live and pending,
    // or already not live (then it is in neither list).
    assert!(v["fleet"]["applied"].as_array().unwrap().len() == 1, "{v}");
    if v["fleet"]["complete"] == false {
        assert_eq!(pending, [v2["this"].as_str().unwrap()], "{v}");
    }
    // Thawed, it catches up and is live again.
    eventually("the thawed instance catches up", async || {
        let (_, v) = a1.get("/api/v1/instances").await;
        live_ids(&v).len() == 2
            && v["instances"]
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["revision"].as_u64().unwrap() > revision)
    })
    .await;

    // An instance that stops leaves the list.
    drop(two);
    eventually("a stopped instance leaves the fleet", async || {
        live_ids(&a1.get("/api/v1/instances").await.1).len() == 1
    })
    .await;
}

/// Three instances, counters in a Redis that then goes away: with
/// `fail_mode: local_share` each admits its share of what it last heard
/// was left of the limit (of the whole limit when it never heard), so the
/// fleet admits no more than the limit in all. When Redis comes back, the
/// requests and tokens counted meanwhile are charged to the shared window
/// and budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_share_holds_the_fleet_to_the_limit_while_redis_is_gone() {
    let reserved = refused_port();
    let port = reserved.port;
    let server = spawn_redis(reserved.release());
    let m = mock("a").await;
    let url = format!("redis://127.0.0.1:{port}");
    let rules = "rules:\n  - rule_name: thirty\n    rule_type: rate_limit\n    rule_config: {max_requests: 30, time_window_seconds: 3600, key_by: global, fail_mode: local_share}\n  - rule_name: budget\n    rule_type: token_limit\n    rule_config: {time_window_enabled: true, time_window_minutes: 60, max_tokens_per_window: 100000, fail_mode: local_share}\n";
    // Beats a second apart: a loaded machine must not make an instance
    // look silent in the last list read before Redis goes.
    let yaml = fleet_yaml(
        m.addr.port(),
        &format!(
            "metrics: {{token: m-tok}}\ncounters:\n  store: redis\n  redis_url: \"{url}\"\n  key_prefix: \"ls:\"\n  timeout_ms: 300\n{rules}"
        ),
    );
    let yaml = yaml.replace("heartbeat_ms: 200", "heartbeat_ms: 1000");
    let gws = [
        Gateway::start(&yaml).await,
        Gateway::start(&yaml).await,
        Gateway::start(&yaml).await,
    ];
    let admin = Admin::new(&gws[0], TOKEN);
    eventually("three instances live", async || {
        live_ids(&admin.get("/api/v1/instances").await.1).len() == 3
    })
    .await;
    // Every instance has seen the three (a beat after the last joined).
    for gw in &gws {
        let a = Admin::new(gw, TOKEN);
        eventually("each sees three", async || {
            live_ids(&a.get("/api/v1/instances").await.1).len() == 3
        })
        .await;
    }
    let c = reqwest::Client::new();
    // Two requests counted in Redis first.
    for gw in &gws[..2] {
        assert_eq!(gw.chat(&c, false).await.status(), 200);
    }
    drop(server);

    // 20 requests to each instance. Each shares out what it last heard
    // was left: the first 29 / 3, the second 28 / 3, the third (which
    // never heard) 30 / 3; 28 in all, with the 2 counted before: the
    // limit.
    let mut admitted = 0;
    for (gw, share) in gws.iter().zip([9, 9, 10]) {
        let mut here = 0;
        for _ in 0..20 {
            let r = gw.chat(&c, false).await;
            match r.status().as_u16() {
                200 => here += 1,
                429 => {}
                s => panic!("unexpected {s}: {}", r.text().await.unwrap()),
            }
        }
        assert_eq!(here, share, "each instance admits its share");
        admitted += here;
    }
    assert_eq!(admitted, 28);
    let health: Value = c
        .get(gws[0].url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["services"]["redis"]["uses"]["counters_fallback"],
        json!({"mode": "local_share", "instances": 3}),
        "{health}"
    );
    let text = gws[0].metrics(&c, "m-tok").await;
    assert!(
        text.contains("sluice_limits_local_share_total{result=\"admitted\"} 9"),
        "{text}"
    );
    assert!(
        text.contains("sluice_limits_local_share_total{result=\"denied\"} 11"),
        "{text}"
    );

    // Redis returns (empty: a new server); the first request through
    // each instance hands over what it counted on its own.
    let _server = spawn_redis(port);
    let redis = fred::prelude::Client::new(
        fred::prelude::Config::from_url(&url).unwrap(),
        None,
        None,
        None,
    );
    fred::interfaces::ClientLike::init(&redis).await.unwrap();
    for gw in &gws {
        eventually("the instance counts in Redis again", async || {
            gw.chat(&c, false).await.status() == 200
        })
        .await;
    }
    // The one key in Redis matching `pattern`.
    use fred::interfaces::{ClientLike as _, HashesInterface as _};
    let only_key = async |pattern: &'static str| {
        let keys: Vec<String> = redis
            .custom(
                fred::types::CustomCommand::new_static("KEYS", None, false),
                vec![pattern],
            )
            .await
            .unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        keys.into_iter().next().unwrap()
    };
    // The budget's key in Redis holds the tokens of the 28 requests
    // admitted locally (and of the three since), not just the three.
    let budget = only_key("ls:tk:*").await;
    eventually_ok("the hand-over landed", async || {
        let n: Option<u64> = redis.hget(&budget, "n").await.map_err(|e| e.to_string())?;
        match n {
            Some(n) if n > 31 * 5 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The rate rule's window holds the 28 requests admitted locally and
    // the three since: the fleet admitted 31 (Redis came back empty),
    // Redis counts 31.
    let window = only_key("ls:fw:*").await;
    eventually_ok("the requests admitted locally handed over", async || {
        let n: Option<u64> = redis.hget(&window, "n").await.map_err(|e| e.to_string())?;
        match n {
            Some(31) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Spent: no instance admits another.
    for gw in &gws {
        assert_eq!(gw.chat(&c, false).await.status(), 429);
    }
}

/// Two instances share routing state: a deployment whose breaker opened on
/// one is avoided by the other (its first request goes straight to the
/// fallback, the failing deployment sees nothing from it), and the bandit
/// report counts both instances' trials, saying how many contributed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_open_on_one_instance_keeps_the_other_away() {
    let (a, b) = (mock("a").await, mock("b").await);
    let prefix = format!(
        "sluice-test-routing-{}-{}:",
        std::process::id(),
        free_port()
    );
    let servers = [
        server("p", "p", b.addr.port(), ""),
        server("a", "pa", a.addr.port(), ""),
        server("b", "pb", b.addr.port(), ""),
    ];
    let yaml = config(
        &servers,
        &format!(
            "{CATCH_ALL}fleet: {{heartbeat_ms: 200}}\ncache:\n  redis_url: \"{}\"\n  key_prefix: \"{prefix}\"\nmodels:\n  - name: m\n    breaker: {{consecutive_failures: 2, open_ms: 60000}}\n    deployments:\n      - {{name: a, upstream: pa, priority: 0}}\n      - {{name: b, upstream: pb, priority: 1}}\n",
            redis_base()
        ),
    );
    let (one, two) = (Gateway::start(&yaml).await, Gateway::start(&yaml).await);
    let c = reqwest::Client::new();
    let chat = |gw: &Gateway, fail: bool| {
        let mut req = post(&c, gw.url("/v1/chat/completions")).json(&json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}]}));
        if fail {
            req = req
                .header("x-mock-only", "a")
                .header("x-mock-status", "503");
        }
        req.send()
    };
    // Two failures of `a` through the first instance open its breaker
    // there (each request falls back to `b` and succeeds).
    for _ in 0..2 {
        assert_eq!(chat(&one, true).await.unwrap().status(), 200);
    }
    assert_eq!(served(&a), 2);
    // Within a heartbeat or two the second instance knows: its requests go
    // to `b` without trying `a`.
    let report = |gw: &Gateway| {
        let url = gw.url("/internal/v1/bandit/report?model=m");
        let c = c.clone();
        async move {
            c.get(url)
                .bearer_auth("sk-test")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    eventually(
        "the second instance sees the first one's failures",
        async || {
            let v = report(&two).await;
            v["items"].as_array().is_some_and(|items| {
                items.iter().any(|i| {
                    i["arm_id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with("m/a/"))
                        && i["instances"] == 2
                        && i["total_trials"] == 2
                })
            })
        },
    )
    .await;
    for _ in 0..3 {
        assert_eq!(chat(&two, false).await.unwrap().status(), 200);
    }
    assert_eq!(
        served(&a),
        2,
        "the second instance tried the deployment open elsewhere"
    );
    // The report of the second instance counts the first one's trials of `a`.
    let v = report(&two).await;
    let a_arm = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["arm_id"].as_str().unwrap().starts_with("m/a/"))
        .unwrap()
        .clone();
    assert_eq!(a_arm["instances"], 2, "{v}");
    assert_eq!(a_arm["total_trials"], 2, "{v}");
    assert_eq!(a_arm["successes"], 0, "{v}");
}

/// `fail_mode: local_share` with counters in process can never apply:
/// `sluice check` says so (a warning; the config is valid).
#[test]
fn local_share_without_a_shared_store_is_reported() {
    let yaml = one_mock(
        refused_for_good(),
        "rules:\n  - rule_name: r\n    rule_type: rate_limit\n    rule_config: {max_requests: 5, time_window_seconds: 60, fail_mode: local_share}\n",
    );
    let out = sluice_check(&yaml);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("rules[0].rule_config.fail_mode") && text.contains("local_share"),
        "{text}"
    );
}
