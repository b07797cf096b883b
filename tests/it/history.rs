//! The audit log and the revision history against the real binary, on the
//! file store and on MySQL: who changed what (named admin tokens, admin
//! users), secrets masked, filters and pages, diff, restore applied to
//! live traffic (credentials kept), and both surviving a restart.

use crate::common::*;
use serde_json::{json, Value};

const OPS: &str = "ops-token-1";
const OTHER: &str = "second-token-2";
const JWT_SECRET: &str = "history-test-jwt-secret-0123456789abcdef";

/// Two admin tokens (one named `ops`, one bare: `token-2`), sign-in
/// configured, and `store` appended.
fn config(port: u16, store: &str) -> String {
    let yaml = admin_config(
        port,
        &format!("{{name: ops, token: {OPS}}}, {OTHER}"),
        store,
    );
    let head = "auth:\n  enabled: true\n";
    assert!(yaml.contains(head));
    yaml.replacen(
        head,
        &format!(
            "{head}  jwt: {{secret: \"{JWT_SECRET}\"}}\n  login: {{per_email_per_minute: 50}}\n"
        ),
        1,
    )
}

fn items(v: &Value) -> &Vec<Value> {
    v["items"].as_array().expect("items")
}

/// A chat completion's status with `x-tenant: team` and `key`.
async fn tenant_chat(gw: &Gateway, key: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-tenant", "team")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn audited_and_restored(store: &str) {
    let a = mock("a").await;
    let mut gw = Gateway::start(&config(a.addr.port(), store)).await;
    let ops = Admin::new(&gw, OPS);
    let other = Admin::new(&gw, OTHER);

    let (s, who) = ops.get("/api/v1/whoami").await;
    assert_eq!(
        (s, who),
        (200, json!({"actor": "token:ops", "kind": "token"}))
    );
    let (s, v) = ops.get("/api/v1/revisions").await;
    assert_eq!(s, 200, "{v}");
    let start = v["current"].as_u64().unwrap();

    // A namespace with a matcher and a 2-per-minute rule.
    let v = ops.create_namespace("Team", "team").await;
    let ns = v["namespace_id"].as_u64().unwrap();
    let (s, v) = ops
        .post(
            &format!("/api/v1/namespaces/{ns}/matchers"),
            json!({"matcher_name": "by-header", "matcher_type": "header",
                   "matcher_config": {"match_field": "x-tenant", "match_operator": "eq",
                                      "match_value": "team", "action": "allow"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = ops
        .post(
            &format!("/api/v1/namespaces/{ns}/rules"),
            json!({"rule_name": "two-a-minute", "rule_type": "rate_limit",
                   "rule_config": {"max_requests": 2, "time_window_seconds": 60}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // The other token edits it; an upstream server with a secret; a key.
    let (s, v) = other
        .put(
            &format!("/api/v1/namespaces/{ns}"),
            json!({"description": "edited"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = ops
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "b", "server_address": "127.0.0.1", "server_port": 9,
                   "api_key": "sk-upstream-very-secret"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = ops
        .post("/api/v1/api-keys", json!({"name": "later-key"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let key = v["key"].as_str().unwrap().to_string();

    assert_eq!(tenant_chat(&gw, &key).await, 200);
    assert_eq!(tenant_chat(&gw, &key).await, 200);
    assert_eq!(tenant_chat(&gw, &key).await, 429, "the rule applies");

    // The audit log: newest first, who, what, before/after, masked.
    let (s, log) = ops.get("/api/v1/audit").await;
    assert_eq!(s, 200, "{log}");
    let entries = items(&log);
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                format!(
                    "{}/{}",
                    e["entity"].as_str().unwrap(),
                    e["operation"].as_str().unwrap()
                ),
                e["cause"].as_str().unwrap().to_string(),
            )
        })
        .take(6)
        .collect();
    let want = [
        ("token:ops", "virtual_keys/create"),
        ("token:ops", "upstream_servers/create"),
        ("token:token-2", "namespaces/update"),
        ("token:ops", "rules/create"),
        ("token:ops", "matchers/create"),
        ("token:ops", "namespaces/create"),
    ];
    for ((actor, what, cause), (a, w)) in seen.iter().zip(want) {
        assert_eq!(
            (actor.as_str(), what.as_str(), cause.as_str()),
            (a, w, "change")
        );
    }
    let update = &entries[2];
    assert_eq!(update["entity_id"], ns);
    assert_eq!(update["before"]["description"], "");
    assert_eq!(update["after"]["description"], "edited");
    assert!(update["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entries[1]["after"]["api_key"], "***");
    assert_eq!(entries[0]["after"]["key_sha256"], "***");
    let text = log.to_string();
    assert!(!text.contains("sk-upstream-very-secret") && !text.contains(&key));

    // Filters and pages.
    let (_, only) = ops.get("/api/v1/audit?entity=namespaces").await;
    assert!(items(&only).iter().all(|e| e["entity"] == "namespaces"));
    let changes = items(&only).iter().filter(|e| e["cause"] == "change");
    assert_eq!(changes.count(), 2);
    // A shared store seeded from the YAML records that as an import.
    let imports: Vec<&Value> = items(&only)
        .iter()
        .filter(|e| e["cause"] == "import")
        .collect();
    assert_eq!(imports.len(), usize::from(!store.is_empty()), "{only}");
    assert!(imports
        .iter()
        .all(|e| e["actor"] == "system" && e["operation"] == "create"));
    let (_, one) = ops
        .get(&format!(
            "/api/v1/audit?entity=namespaces&entity_id={ns}&limit=1"
        ))
        .await;
    assert_eq!(items(&one)[0]["operation"], "update");
    let next = one["next_before"].as_u64().expect("a next page");
    let (_, two) = ops
        .get(&format!(
            "/api/v1/audit?entity=namespaces&entity_id={ns}&limit=1&before={next}"
        ))
        .await;
    assert_eq!(items(&two)[0]["operation"], "create");
    let (_, later) = ops.get("/api/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert!(items(&later).is_empty());
    for bad in [
        "entity=secrets",
        "since=yesterday",
        "limit=0",
        "limit=9999",
        "entity_id=3",
        "before=-1",
    ] {
        let (s, v) = ops.get(&format!("/api/v1/audit?{bad}")).await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(v["detail"].as_str().unwrap().len() > 5, "{v}");
    }

    // Revisions and their diff.
    let (_, revs) = ops.get("/api/v1/revisions").await;
    let current = revs["current"].as_u64().unwrap();
    assert_eq!(current, start + 6);
    assert_eq!(items(&revs)[0]["revision"], current);
    assert_eq!(
        items(&revs)[0]["summary"],
        format!("virtual_keys/{} created", items(&log)[0]["entity_id"])
    );
    let (s, d) = ops
        .get(&format!(
            "/api/v1/revisions/diff?from={start}&to={}",
            start + 3
        ))
        .await;
    assert_eq!(s, 200, "{d}");
    let kinds: Vec<&str> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["entity"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["matchers", "namespaces", "rules"]);
    let (s, _) = ops.get("/api/v1/revisions/diff?from=999999").await;
    assert_eq!(s, 404);

    // A second instance on the shared store (MySQL) follows the restore.
    let peer = if store.is_empty() {
        None
    } else {
        Some(Gateway::start(&config(a.addr.port(), store)).await)
    };

    // Restore the configuration from before the namespace: the matcher
    // and rule go with it, the key made since stays.
    let (s, v) = other
        .call("POST", &format!("/api/v1/revisions/{start}/restore"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["revision"], current + 1);
    assert_eq!(v["restored_from"], start);
    assert!(v["warnings"].is_array());
    let (_, nss) = ops.get("/api/v1/namespaces").await;
    assert!(!nss.to_string().contains("\"team\""), "{nss}");
    if let Some(peer) = &peer {
        let api = Admin::new(peer, OPS);
        eventually("the peer applies the restore", async || {
            api.get("/api/v1/revisions").await.1["current"] == current + 1
        })
        .await;
        assert_eq!(
            tenant_chat(peer, &key).await,
            200,
            "no rule on the peer either"
        );
        let (_, theirs) = api.get("/api/v1/audit?limit=20").await;
        let (_, ours) = ops.get("/api/v1/audit?limit=20").await;
        assert_eq!(theirs, ours, "one audit log for the fleet");
    }
    for _ in 0..3 {
        assert_eq!(
            tenant_chat(&gw, &key).await,
            200,
            "no rule any more; the key works"
        );
    }
    let (_, log) = ops.get("/api/v1/audit?limit=10").await;
    let restored: Vec<(&str, &str)> = items(&log)
        .iter()
        .filter(|e| e["cause"] == "restore")
        .map(|e| {
            (
                e["entity"].as_str().unwrap(),
                e["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        restored,
        [
            ("upstream_servers", "delete"),
            ("rules", "delete"),
            ("namespaces", "delete"),
            ("matchers", "delete"),
        ]
    );
    assert!(items(&log)
        .iter()
        .filter(|e| e["cause"] == "restore")
        .all(|e| e["actor"] == "token:token-2"));
    let (s, _) = ops
        .call("POST", "/api/v1/revisions/999999/restore", None)
        .await;
    assert_eq!(s, 404);
    let (s, _) = ops.call("POST", "/api/v1/revisions/x/restore", None).await;
    assert_eq!(s, 404);

    // Kept across a restart.
    let (_, before_restart) = ops.get("/api/v1/audit?limit=500").await;
    gw.restart().await;
    let ops = Admin::new(&gw, OPS);
    let (_, after_restart) = ops.get("/api/v1/audit?limit=500").await;
    assert_eq!(after_restart, before_restart);
    let (_, revs) = ops.get("/api/v1/revisions").await;
    assert_eq!(revs["current"], current + 1);
    assert_eq!(items(&revs)[0]["cause"], "restore");
    // And the restored revision can be restored in turn (back to the namespace).
    let (s, v) = ops
        .call(
            "POST",
            &format!("/api/v1/revisions/{current}/restore"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(tenant_chat(&gw, &key).await, 200);
    let _ = std::fs::remove_file(state_path(&gw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_audits_and_restores() {
    audited_and_restored("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_store_audits_and_restores() {
    let guard = StoreGuard::new();
    audited_and_restored(&guard.yaml(None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_users_sign_in_and_are_named_in_the_audit_log() {
    let a = mock("a").await;
    let gw = Gateway::start(&config(a.addr.port(), "")).await;
    let ops = Admin::new(&gw, OPS);
    for (email, role) in [("boss@example.com", "admin"), ("dev@example.com", "user")] {
        let (s, v) = ops
            .post(
                "/api/v1/users",
                json!({"email": email, "password": "correct horse battery", "role": role}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let login = |email: &'static str, password: &'static str| {
        let url = gw.admin_url("/api/v1/auth/login");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, v) = login("boss@example.com", "correct horse battery").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["actor"], "user:boss@example.com");
    let boss = Admin::new(&gw, v["access_token"].as_str().unwrap());
    let (s, who) = boss.get("/api/v1/whoami").await;
    assert_eq!(
        (s, who["actor"].as_str()),
        (200, Some("user:boss@example.com"))
    );
    assert_eq!(who["kind"], "user");
    boss.create_namespace("By boss", "boss").await;
    let (_, log) = ops.get("/api/v1/audit?entity=namespaces&limit=1").await;
    assert_eq!(items(&log)[0]["actor"], "user:boss@example.com");
    // A user who is not an admin, and a wrong password.
    let (s, v) = login("dev@example.com", "correct horse battery").await;
    assert_eq!(s, 403, "{v}");
    let (s, _) = login("boss@example.com", "wrong").await;
    assert_eq!(s, 401);
    let (s, _) = reqwest::Client::new()
        .post(gw.admin_url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body(r#"{"email": "boss@example.com", "password": "correct horse battery"}"#)
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(s, 415, "the admin API takes JSON only, declared as such");
    // Deactivated: its token stops working at once.
    let (_, users) = ops.get("/api/v1/users").await;
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "boss@example.com")
        .unwrap()["user_id"]
        .as_u64()
        .unwrap();
    let (s, v) = ops
        .put(&format!("/api/v1/users/{id}"), json!({"is_active": 0}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = boss.get("/api/v1/whoami").await;
    assert_eq!(s, 401);
    let _ = std::fs::remove_file(state_path(&gw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_views_show_traffic_pools_catalog_and_limits() {
    let a = mock("a").await;
    let gw = Gateway::start(&config(a.addr.port(), "")).await;
    let ops = Admin::new(&gw, OPS);
    let (s, v) = ops
        .post(
            "/api/v1/namespaces/1/rules",
            json!({"rule_name": "ten-a-minute", "rule_type": "rate_limit",
                   "rule_config": {"max_requests": 10, "time_window_seconds": 60}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let c = reqwest::Client::new();
    for _ in 0..3 {
        let r = post(&c, gw.url("/v1/chat/completions"))
            .json(&chat_body(false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // A request is counted when it has ended (after its answer went out).
    let overview_total = async || {
        let (_, o) = ops.get("/api/v1/overview").await;
        o["series"].as_array().map_or(0, |s| {
            s.iter()
                .map(|m| m["requests"].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
    };
    eventually("the overview counts the 3 requests", async || {
        overview_total().await == 3
    })
    .await;
    let (s, o) = ops.get("/api/v1/overview").await;
    assert_eq!(s, 200, "{o}");
    let series = o["series"].as_array().unwrap();
    assert_eq!(series.len(), 60);
    let last = &series[59];
    assert_eq!(last["minute"].as_u64().unwrap() % 60, 0);
    assert!(o["totals"]["requests_total"].as_u64().unwrap() >= 3);
    assert_eq!(o["health"]["status"], "healthy");

    let (s, u) = ops.get("/api/v1/upstreams").await;
    assert_eq!(s, 200, "{u}");
    let server = &u["pools"][0]["servers"][0];
    assert_eq!(server["address"], format!("127.0.0.1:{}", a.addr.port()));
    assert_eq!(
        (server["healthy"].as_bool(), server["inflight"].as_u64()),
        (Some(true), Some(0))
    );

    let (s, l) = ops.get("/api/v1/limits").await;
    assert_eq!(s, 200, "{l}");
    let rule = items(&l)
        .iter()
        .find(|r| r["rule_name"] == "ten-a-minute")
        .unwrap();
    assert_eq!(
        (
            rule["limit"].as_f64(),
            rule["used"].as_f64(),
            rule["remaining"].as_f64()
        ),
        (Some(10.0), Some(3.0), Some(7.0)),
        "{rule}"
    );
    assert_eq!(rule["namespace_id"], 1);

    let (s, cat) = ops.get("/api/v1/catalog").await;
    assert_eq!(s, 200, "{cat}");
    assert!(cat["models"].is_array());

    // The console's page and assets: no token needed, strict policy.
    let r = c.get(gw.admin_url("/ui")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(r.text().await.unwrap().contains("/ui/app.js"));
    for asset in ["/ui/app.js", "/ui/app.css"] {
        let r = c.get(gw.admin_url(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    assert_eq!(
        c.get(gw.admin_url("/ui/missing.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // Every view the console reads is a documented endpoint.
    let doc: Value = c
        .get(gw.admin_url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/overview",
        "/api/v1/upstreams",
        "/api/v1/catalog",
        "/api/v1/limits",
        "/api/v1/audit",
        "/api/v1/revisions",
        "/api/v1/revisions/diff",
        "/api/v1/revisions/{revision}/restore",
        "/api/v1/whoami",
        "/api/v1/auth/login",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    let _ = std::fs::remove_file(state_path(&gw));
}
