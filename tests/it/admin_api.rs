//! The config-center admin API: CRUD of namespaces, upstream
//! servers, matchers, proxy rules and limit rules against the real binary,
//! applied to live traffic without a restart, persisted in the state file.

use crate::common::*;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};

const TOKEN: &str = "a-tok";

/// Which config store the suite runs against (every test runs on both).
#[derive(Clone, Copy)]
enum Store {
    File,
    Mysql,
}

thread_local! {
    static STORE: Cell<Store> = const { Cell::new(Store::File) };
    /// The databases of the running test, dropped when it ends.
    static GUARDS: RefCell<Vec<StoreGuard>> = const { RefCell::new(Vec::new()) };
}

/// Whether the running test uses the file store.
fn file_store() -> bool {
    matches!(STORE.with(Cell::get), Store::File)
}

/// Runs one test of the suite with `store` (the test's body runs on this
/// thread, where [`admin_config`] reads the choice).
async fn with_store(store: Store, test: impl std::future::Future<Output = ()>) {
    STORE.with(|s| s.set(store));
    test.await;
    GUARDS.with(|g| g.borrow_mut().clear());
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod file_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_store(super::Store::File, super::$name()).await
                }
            )*
        }
        mod mysql_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::with_store(super::Store::Mysql, super::$name()).await
                }
            )*
        }
    };
}

/// A gateway with the admin listener on, a catch-all route to pool `p`
/// (mock `a`) and `extra` YAML appended.
fn admin_config(a_port: u16, extra: &str) -> String {
    let store = match STORE.with(Cell::get) {
        Store::File => String::new(),
        Store::Mysql => {
            let guard = StoreGuard::new();
            let yaml = guard.yaml(None);
            GUARDS.with(|g| g.borrow_mut().push(guard));
            yaml
        }
    };
    crate::common::admin_config(a_port, TOKEN, &format!("{extra}{store}"))
}

fn detail(v: &Value) -> &str {
    v["detail"].as_str().unwrap_or("")
}

/// The mock that answered (`x-mock-id`) a chat completion sent with `headers`.
async fn chat_served_by(gw: &Gateway, c: &reqwest::Client, headers: &[(&str, &str)]) -> String {
    let mut req = post(c, gw.url("/v1/chat/completions")).json(&chat_body(false));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("chat");
    assert_eq!(r.status(), 200);
    r.headers()
        .get("x-mock-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

async fn admin_api_needs_its_token_for_changes_and_reads() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let c = reqwest::Client::new();
    let r = c
        .get(gw.admin_url("/api/v1/namespaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(gw.admin_url("/api/v1/namespaces"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(gw.admin_url("/api/v1/namespaces"))
        .json(&json!({"namespace_code": "x", "namespace_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
    let _ = std::fs::remove_file(state_path(&gw));
    drop(gw);

    // auth_reads: false opens reads, never changes.
    let yaml = admin_config(a.addr.port(), "").replace(
        &format!("admin: {{tokens: [{TOKEN}]}}"),
        &format!("admin: {{tokens: [{TOKEN}], auth_reads: false}}"),
    );
    let gw = Gateway::start(&yaml).await;
    let r = c
        .get(gw.admin_url("/api/v1/namespaces"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .delete(gw.admin_url("/api/v1/namespaces/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(gw.admin_url("/api/v1/namespaces"))
        .bearer_auth("wrong")
        .json(&json!({"namespace_code": "x", "namespace_name": "X"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn namespaces_crud_and_errors() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);

    let (s, list) = api.get("/api/v1/namespaces").await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["namespace_code"], "default");
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["is_active"], 1);

    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "企业业务", "namespace_code": "enterprise",
                   "description": "说明", "is_active": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "命名空间创建成功");
    let id = v["namespace_id"].as_u64().unwrap();
    assert_eq!(id, 2);
    let (s, item) = api.get(&format!("/api/v1/namespaces/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(item["namespace_name"], "企业业务");
    assert_eq!(item["description"], "说明");
    assert_eq!(item["is_active"], 1);
    assert!(item["created_at"].as_str().unwrap().len() == 19, "{item}");

    // Errors: duplicate code, missing field, wrong type, unknown id, media type, JSON.
    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "again", "namespace_code": "enterprise"}),
        )
        .await;
    assert_eq!(s, 409);
    assert!(detail(&v).contains("enterprise"), "{v}");
    let (s, v) = api
        .post("/api/v1/namespaces", json!({"namespace_name": "x"}))
        .await;
    assert_eq!((s, detail(&v)), (400, "缺少必要字段: namespace_code"));
    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "x", "namespace_code": "x", "is_active": "yes"}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).starts_with("is_active"), "{v}");
    let (s, v) = api.get("/api/v1/namespaces/99").await;
    assert_eq!((s, detail(&v)), (404, "资源不存在"));
    let (s, _) = api.get("/api/v1/namespaces/abc").await;
    assert_eq!(s, 404);
    let (s, _) = api.get("/api/v1/nope").await;
    assert_eq!(s, 404);
    let (s, _) = api.post("/api/v1/namespaces/1", json!({})).await;
    assert_eq!(s, 405);
    let (s, v) = api
        .send(
            api.request("POST", "/api/v1/namespaces")
                .header("content-type", "text/plain")
                .body("namespace_code=x"),
        )
        .await;
    assert_eq!(s, 415, "{v}");
    let (s, v) = api
        .send(
            api.request("POST", "/api/v1/namespaces")
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(s, 400, "{v}");

    // Update: partial, seed shape.
    let (s, v) = api
        .put(
            &format!("/api/v1/namespaces/{id}"),
            json!({"namespace_name": "Enterprise", "is_active": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "命名空间更新成功");
    assert_eq!(v["namespace_id"], id);
    assert_eq!(v["namespace"]["namespace_name"], "Enterprise");
    assert_eq!(v["namespace"]["namespace_code"], "enterprise");
    assert_eq!(v["namespace"]["is_active"], 0);
    let (s, _) = api.put("/api/v1/namespaces/99", json!({})).await;
    assert_eq!(s, 404);
    // Deactivating the default namespace fails validation, naming the field.
    let (s, v) = api
        .put("/api/v1/namespaces/1", json!({"is_active": 0}))
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).contains("default_namespace"), "{v}");

    // Delete: referenced → 409 naming the reference; otherwise gone.
    let (s, v) = api.delete("/api/v1/namespaces/1").await;
    assert_eq!(s, 409);
    assert!(detail(&v).contains("default_namespace"), "{v}");
    let (s, v) = api.delete(&format!("/api/v1/namespaces/{id}")).await;
    assert_eq!((s, v["message"].as_str()), (200, Some("命名空间删除成功")));
    let (s, _) = api.delete(&format!("/api/v1/namespaces/{id}")).await;
    assert_eq!(s, 404);
    // Ids are not reused.
    let (_, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "n", "namespace_code": "n"}),
        )
        .await;
    assert_eq!(v["namespace_id"], 3);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn hot_apply_routes_traffic_without_restart() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();
    let tenant = [("x-tenant", "team-a")];
    assert_eq!(chat_served_by(&gw, &c, &tenant).await, "a");

    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "Team A", "namespace_code": "team-a"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ns = v["namespace_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "b", "server_address": "127.0.0.1",
                   "server_port": b.addr.port(), "server_type": "http", "weight": 10,
                   "max_connections": 100, "is_active": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "上游服务器创建成功");
    let server_id = v["server_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/matchers"),
            json!({"matcher_name": "by-header", "matcher_type": "header",
                   "matcher_config": {"match_field": "x-tenant", "match_operator": "eq",
                                      "match_value": "team-a", "action": "allow"},
                   "priority": 10, "is_active": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // Namespace resolved, but no proxy rule yet: still the catch-all route.
    assert_eq!(chat_served_by(&gw, &c, &tenant).await, "a");

    let (s, v) = api
        .post(
            "/api/v1/proxy-rules",
            json!({"rule_name": "team-a-to-b", "namespace_id": ns,
                   "upstream_server_id": server_id, "path_pattern": "/v1/.*",
                   "method_pattern": "GET|POST", "header_pattern": null,
                   "body_pattern": null, "priority": 10, "is_active": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "代理规则创建成功");
    let rule_id = v["rule_id"].as_u64().unwrap();
    assert_eq!(chat_served_by(&gw, &c, &tenant).await, "b");
    assert_eq!(chat_served_by(&gw, &c, &[]).await, "a");

    // The last server of a pool a rule uses cannot go.
    let (s, v) = api
        .delete(&format!("/api/v1/upstream-servers/{server_id}"))
        .await;
    assert_eq!(s, 409);
    assert!(
        detail(&v).contains(&format!("proxy_rules [{rule_id}]")),
        "{v}"
    );
    // Nor the namespace the rule and matcher belong to.
    let (s, v) = api.delete(&format!("/api/v1/namespaces/{ns}")).await;
    assert_eq!(s, 409);
    assert!(
        detail(&v).contains("matchers") && detail(&v).contains("proxy_rules"),
        "{v}"
    );

    let (s, v) = api
        .put(
            &format!("/api/v1/proxy-rules/{rule_id}"),
            json!({"is_active": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(chat_served_by(&gw, &c, &tenant).await, "a");
    let (s, _) = api.delete(&format!("/api/v1/proxy-rules/{rule_id}")).await;
    assert_eq!(s, 200);
    let (s, _) = api
        .delete(&format!("/api/v1/upstream-servers/{server_id}"))
        .await;
    assert_eq!(s, 200);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn upstream_servers_crud() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();

    let (s, list) = api.get("/api/v1/upstream-servers").await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["server_id"], 1);
    assert_eq!(list[0]["server_name"], "a");

    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "llm-upstream", "server_address": "127.0.0.1",
                   "server_port": 1, "api_key": "sk-upstream-secret",
                   "health_check_url": "/health"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["server_id"].as_u64().unwrap();
    assert_eq!(v["server"]["server_id"], id);
    assert_eq!(v["server"]["api_key"], "***");
    assert!(!v.to_string().contains("sk-upstream-secret"));

    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "llm-upstream", "server_address": "h", "server_port": 2}),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "x", "server_port": 2}),
        )
        .await;
    assert_eq!((s, detail(&v)), (400, "缺少必要字段: server_address"));
    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "x", "server_address": "h", "server_port": 70000}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).starts_with("server_port"), "{v}");
    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "x", "server_address": "http://h/", "server_port": 80}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).contains("server_address"), "{v}");

    // Update: move the new server into pool p with mock b's port; the
    // redacted key sent back as read is kept.
    let (_, item) = api.get(&format!("/api/v1/upstream-servers/{id}")).await;
    let mut changed = item.clone();
    changed["server_port"] = json!(b.addr.port());
    changed["pool"] = json!("p");
    changed["health_check_url"] = Value::Null;
    let (s, v) = api
        .put(&format!("/api/v1/upstream-servers/{id}"), changed)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "上游服务器更新成功");
    assert_eq!(v["server"]["server_port"], b.addr.port());
    assert_eq!(v["server"]["api_key"], "***");
    assert_eq!(v["server"]["health_check_url"], Value::Null);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(chat_served_by(&gw, &c, &[]).await);
    }
    assert!(seen.contains("a") && seen.contains("b"), "{seen:?}");

    // Server a goes; b still serves pool p.
    let (s, v) = api.delete("/api/v1/upstream-servers/1").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "上游服务器删除成功");
    assert_eq!(chat_served_by(&gw, &c, &[]).await, "b");
    // The last server of p is used by the catch-all route.
    let (s, v) = api.delete(&format!("/api/v1/upstream-servers/{id}")).await;
    assert_eq!(s, 409);
    assert!(detail(&v).contains("routes [/]"), "{v}");
    let (s, _) = api.get("/api/v1/upstream-servers/1").await;
    assert_eq!(s, 404);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn matchers_crud() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();

    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/matchers",
            json!({"matcher_name": "deny-bad", "matcher_type": "header",
                   "matcher_config": "{\"match_field\":\"x-bad\",\"match_operator\":\"eq\",\"match_value\":\"1\",\"action\":\"deny\"}",
                   "priority": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "报文匹配器创建成功");
    let id = v["matcher_id"].as_u64().unwrap();
    let r = post(&c, gw.url("/v1/chat/completions"))
        .header("x-bad", "1")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let (s, item) = api.get(&format!("/api/v1/matchers/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(item["namespace_id"], 1);
    assert_eq!(item["matcher_type"], "header");
    assert_eq!(item["matcher_config"]["match_field"], "x-bad");
    assert_eq!(item["matcher_config"]["action"], "deny");
    let (_, list) = api.get("/api/v1/matchers").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, list) = api.get("/api/v1/namespaces/1/matchers").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, _) = api.get("/api/v1/namespaces/9/matchers").await;
    assert_eq!(s, 404);

    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/matchers",
            json!({"matcher_type": "header", "matcher_config": {"match_field": "x", "match_operator": "eq"}}),
        )
        .await;
    assert_eq!((s, detail(&v)), (400, "缺少必要字段: match_value"));
    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/matchers",
            json!({"matcher_type": "header", "matcher_config": {"match_field": "x",
                   "match_operator": "regex", "match_value": "("}}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).starts_with("matchers[id=2]"), "{v}");
    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/matchers",
            json!({"matcher_type": "cookie", "matcher_config": {"match_field": "x",
                   "match_operator": "eq", "match_value": "1"}}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).starts_with("matcher_type"), "{v}");
    let (s, _) = api
        .post(
            "/api/v1/namespaces/9/matchers",
            json!({"matcher_type": "header", "match_field": "x", "match_operator": "eq", "match_value": "1"}),
        )
        .await;
    assert_eq!(s, 404);

    let (s, v) = api
        .put(
            &format!("/api/v1/matchers/{id}"),
            json!({"matcher_config": {"match_value": "2"}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "报文匹配器更新成功");
    assert_eq!(chat_served_by(&gw, &c, &[("x-bad", "1")]).await, "a");
    let (s, v) = api.delete(&format!("/api/v1/matchers/{id}")).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("报文匹配器删除成功"))
    );
    let (s, _) = api.get(&format!("/api/v1/matchers/{id}")).await;
    assert_eq!(s, 404);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn proxy_rules_crud() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();
    let (_, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "b", "pool": "pb", "server_address": "127.0.0.1",
                   "server_port": b.addr.port()}),
        )
        .await;
    let b_id = v["server_id"].as_u64().unwrap();

    let (s, v) = api
        .post("/api/v1/proxy-rules", json!({"rule_name": "r"}))
        .await;
    assert_eq!((s, detail(&v)), (400, "缺少必要字段: upstream_server_id"));
    let (s, v) = api
        .post(
            "/api/v1/proxy-rules",
            json!({"rule_name": "r", "upstream_server_id": 99}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).starts_with("upstream_server_id"), "{v}");
    let (s, v) = api
        .post(
            "/api/v1/proxy-rules",
            json!({"rule_name": "r", "upstream_server_id": b_id, "path_pattern": "(("}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).starts_with("proxy_rules[id=1]"), "{v}");

    let (s, v) = api
        .post(
            "/api/v1/proxy-rules",
            json!({"rule_name": "models-to-b", "upstream_server_id": b_id,
                   "path_pattern": "/v1/models", "priority": 5}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["rule_id"].as_u64().unwrap();
    let (s, item) = api.get(&format!("/api/v1/proxy-rules/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(item["rule_name"], "models-to-b");
    assert_eq!(item["upstream_server_id"], b_id);
    assert_eq!(item["upstream_server_port"], b.addr.port());
    assert_eq!(item["namespace_id"], Value::Null);
    assert_eq!(item["is_active"], 1);
    let (_, list) = api.get("/api/v1/proxy-rules").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let served_b = served(&b);
    let r = gw.get(&c, "/v1/models").await;
    assert_eq!(r.status(), 200);
    assert_eq!(served(&b), served_b + 1);

    let (s, v) = api
        .put(
            &format!("/api/v1/proxy-rules/{id}"),
            json!({"priority": 7, "namespace_id": 1}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "代理规则更新成功");
    assert_eq!(v["rule"]["priority"], 7);
    assert_eq!(v["rule"]["namespace_code"], "default");
    let (s, v) = api
        .put(
            &format!("/api/v1/proxy-rules/{id}"),
            json!({"namespace_id": 42}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api.delete(&format!("/api/v1/proxy-rules/{id}")).await;
    assert_eq!((s, v["message"].as_str()), (200, Some("代理规则删除成功")));
    let (s, _) = api.delete(&format!("/api/v1/proxy-rules/{id}")).await;
    assert_eq!(s, 404);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn rules_crud_types_and_counters_survive_changes() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();

    let (s, v) = api.get("/api/v1/rules/types").await;
    assert_eq!(s, 200);
    let types: Vec<&str> = v["rule_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["type"].as_str().unwrap())
        .collect();
    for t in ["matcher", "rate_limit", "concurrency", "token_limit"] {
        assert!(types.contains(&t), "{types:?}");
    }
    assert_eq!(
        v["rule_types"][0]["config_schema"]["match_operator"]["enum"][7],
        "regex"
    );

    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/rules",
            json!({"rule_type": "rate_limit", "rule_config": {"max_qps": 5}}),
        )
        .await;
    assert_eq!((s, detail(&v)), (400, "缺少必要字段: rule_name"));
    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/rules",
            json!({"rule_name": "bad", "rule_type": "rate_limit",
                   "rule_config": {"max_requests": 3, "algorithm": "nope"}}),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        detail(&v).starts_with("rules[id=1]") && detail(&v).contains("algorithm"),
        "{v}"
    );
    let (s, _) = api
        .post(
            "/api/v1/namespaces/9/rules",
            json!({"rule_name": "x", "rule_type": "rate_limit", "rule_config": {"max_qps": 5}}),
        )
        .await;
    assert_eq!(s, 404);

    // rule_config as a JSON string (a day-long window: a fixed window
    // boundary between the requests below would reset the count).
    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/rules",
            json!({"rule_name": "limit-3", "rule_type": "rate_limit", "priority": 10,
                   "rule_config": "{\"max_requests\": 3, \"time_window_seconds\": 86400}"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "规则创建成功");
    let id = v["rule_id"].as_u64().unwrap();
    let (s, item) = api.get(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(item["rule_name"], "limit-3");
    assert_eq!(item["namespace_id"], 1);
    assert_eq!(item["status"], 1);
    assert_eq!(item["rule_config"]["max_requests"], 3);

    for _ in 0..2 {
        assert_eq!(gw.chat(&c, false).await.status(), 200);
    }
    // An unrelated change swaps the runtime; the counters stay.
    let (s, _) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "other", "namespace_code": "other"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(gw.chat(&c, false).await.status(), 200);
    assert_eq!(gw.chat(&c, false).await.status(), 429);

    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/rules",
            json!({"rule_name": "conc", "rule_type": "concurrency",
                   "rule_config": {"max_concurrent": 10}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, all) = api.get("/api/v1/rules").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let (_, only) = api.get("/api/v1/rules?rule_type=concurrency").await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["rule_name"], "conc");
    let (_, of_ns) = api
        .get("/api/v1/namespaces/1/rules?rule_type=rate_limit")
        .await;
    assert_eq!(of_ns.as_array().unwrap().len(), 1);

    let (s, v) = api
        .put(&format!("/api/v1/rules/{id}"), json!({"status": 0}))
        .await;
    assert_eq!((s, v["message"].as_str()), (200, Some("规则更新成功")));
    assert_eq!(v["rule_id"], id);
    assert_eq!(gw.chat(&c, false).await.status(), 200);
    let (s, v) = api
        .put(
            &format!("/api/v1/rules/{id}"),
            json!({"status": 1, "rule_config": {"max_requests": 0}}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = api.delete(&format!("/api/v1/rules/{id}")).await;
    assert_eq!((s, v["message"].as_str()), (200, Some("规则删除成功")));
    let (s, _) = api.get(&format!("/api/v1/rules/{id}")).await;
    assert_eq!(s, 404);
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn changes_persist_across_a_restart() {
    let a = mock("a").await;
    let b = mock("b").await;
    let mut gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let state = state_path(&gw);
    let _ = std::fs::remove_file(&state);
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();

    let (s, _) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "Kept", "namespace_code": "kept"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "b", "pool": "p", "server_address": "127.0.0.1",
                   "server_port": b.addr.port(), "api_key": "sk-kept"}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = api.delete("/api/v1/upstream-servers/1").await;
    assert_eq!(s, 200);
    assert_eq!(state.exists(), file_store());
    #[cfg(unix)]
    if file_store() {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    gw.restart().await;
    let api = Admin::new(&gw, TOKEN);
    let (_, list) = api.get("/api/v1/namespaces").await;
    let codes: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["default", "kept"]);
    let (_, servers) = api.get("/api/v1/upstream-servers").await;
    assert_eq!(servers.as_array().unwrap().len(), 1);
    assert_eq!(servers[0]["server_name"], "b");
    assert_eq!(servers[0]["server_id"], 2);
    assert_eq!(servers[0]["api_key"], "***");
    // The YAML still names server a; the state file wins.
    assert_eq!(chat_served_by(&gw, &c, &[]).await, "b");
    // Ids continue after the restart.
    let (_, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "c", "pool": "p", "server_address": "127.0.0.1",
                   "server_port": b.addr.port()}),
        )
        .await;
    assert_eq!(v["server_id"], 3);
    let _ = std::fs::remove_file(&state);
}

async fn concurrent_creates_are_all_kept() {
    let a = mock("a").await;
    let mut gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let base = gw.admin_url("/api/v1/namespaces");
    let c = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (c, base) = (c.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(base)
                .bearer_auth(TOKEN)
                .json(&json!({"namespace_name": format!("ns {i}"), "namespace_code": format!("ns-{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["namespace_id"]
                .as_u64()
                .unwrap()
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 20);
    let api = Admin::new(&gw, TOKEN);
    let (_, list) = api.get("/api/v1/namespaces").await;
    assert_eq!(list.as_array().unwrap().len(), 21);
    if file_store() {
        let stored = std::fs::read_to_string(state_path(&gw)).unwrap();
        let stored: Value = serde_json::from_str(&stored).unwrap();
        assert_eq!(stored["namespaces"].as_array().unwrap().len(), 21);
    } else {
        // Another instance reading the store sees all of them too.
        gw.restart().await;
        let (_, list) = Admin::new(&gw, TOKEN).get("/api/v1/namespaces").await;
        assert_eq!(list.as_array().unwrap().len(), 21);
    }
    let _ = std::fs::remove_file(state_path(&gw));
}

async fn traffic_sees_no_failures_while_changes_apply() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "b", "pool": "pb", "server_address": "127.0.0.1",
                   "server_port": b.addr.port()}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let b_id = v["server_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            "/api/v1/proxy-rules",
            json!({"rule_name": "flip", "upstream_server_id": b_id, "path_pattern": "/v1/.*",
                   "is_active": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rule = v["rule_id"].as_u64().unwrap();

    // Steady load until 100 changes have applied.
    let url = gw.url("/v1/chat/completions");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (url, done) = (url.clone(), done.clone());
        clients.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut failures = Vec::new();
            let mut sent = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let r = post(&c, url.clone())
                    .json(&chat_body(sent % 2 == 0))
                    .send()
                    .await;
                sent += 1;
                match r {
                    Ok(r) if r.status() == 200 => {
                        if r.bytes().await.is_err() {
                            failures.push("body cut".to_string());
                        }
                    }
                    Ok(r) => failures.push(r.status().to_string()),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            (sent, failures)
        }));
    }
    for i in 0..100 {
        let (s, v) = api
            .put(
                &format!("/api/v1/proxy-rules/{rule}"),
                json!({"is_active": i % 2 == 0, "priority": i}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failures = Vec::new();
    let mut sent = 0;
    for t in clients {
        let (n, f) = t.await.unwrap();
        sent += n;
        failures.extend(f);
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert!(sent >= 100, "only {sent} requests during the changes");
    assert_eq!(served(&a) + served(&b), sent);
    let _ = std::fs::remove_file(state_path(&gw));
}

#[test]
fn a_broken_state_file_stops_startup_naming_it() {
    let (config_path, _, _) = write_config(&admin_config(free_port(), ""));
    let mut state = config_path.clone().into_os_string();
    state.push(".state.json");
    let state = std::path::PathBuf::from(state);
    // Valid JSON, but the only server's pool no longer exists for the route.
    std::fs::write(
        &state,
        r#"{"version":1,"namespaces":[{"id":1,"namespace_code":"default"}],
            "upstream_servers":[{"id":1,"server_name":"x","server_address":"127.0.0.1","server_port":9}],
            "routes":[{"prefix":"/","upstream":"p"}]}"#,
    )
    .unwrap();
    let out = std::process::Command::new(sluice_bin())
        .args(["run", "-c"])
        .arg(&config_path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(&config_path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(".state.json") && err.contains("routes[0].upstream"),
        "{err}"
    );
}

async fn renaming_a_namespace_keeps_its_references() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();
    let (_, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "T", "namespace_code": "t"}),
        )
        .await;
    let ns = v["namespace_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/matchers"),
            json!({"matcher_type": "header", "match_field": "x-t", "match_operator": "eq",
                   "match_value": "1"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let matcher = v["matcher_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ns}/rules"),
            json!({"rule_name": "one", "rule_type": "rate_limit",
                   "rule_config": {"max_requests": 1, "time_window_seconds": 60}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = api
        .put(
            &format!("/api/v1/namespaces/{ns}"),
            json!({"namespace_code": "t2"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, m) = api.get(&format!("/api/v1/matchers/{matcher}")).await;
    assert_eq!(m["namespace_code"], "t2");
    assert_eq!(m["namespace_id"], ns);
    let (_, rules) = api.get(&format!("/api/v1/namespaces/{ns}/rules")).await;
    assert_eq!(rules.as_array().unwrap().len(), 1);
    // The renamed namespace's limit still applies to its traffic.
    assert_eq!(chat_served_by(&gw, &c, &[("x-t", "1")]).await, "a");
    let r = post(&c, gw.url("/v1/chat/completions"))
        .header("x-t", "1")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Taking the code of another namespace is a conflict.
    let (s, _) = api
        .put(
            &format!("/api/v1/namespaces/{ns}"),
            json!({"namespace_code": "default"}),
        )
        .await;
    assert_eq!(s, 409);
    let _ = std::fs::remove_file(state_path(&gw));
}

/// Setting fragments apply to live traffic; what Sluice
/// cannot apply is refused by name.
async fn nginx_configs_apply_and_refuse_what_they_cannot() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();
    let big = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x".repeat(3000)}]});
    let send_big = || post(&c, gw.url("/v1/chat/completions")).json(&big).send();
    assert_eq!(send_big().await.unwrap().status(), 200);

    let (s, v) = api
        .post(
            "/api/v1/nginx-configs",
            json!({"config_type": "http", "config_name": "small-bodies",
                   "config_content": "client_max_body_size 1k; proxy_read_timeout 30s;"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "nginx配置创建成功");
    let id = v["config_id"].as_u64().unwrap();
    assert_eq!(v["config"]["config_value"]["client_max_body_size"], 1024);
    assert_eq!(send_big().await.unwrap().status(), 413);

    for (content, name) in [
        ("gzip on; gzip_proxied any;", "gzip_proxied"),
        ("worker_connections 1024;", "worker_connections"),
        ("client_max_body_size 0;", "client_max_body_size"),
    ] {
        let (s, v) = api
            .post(
                "/api/v1/nginx-configs",
                json!({"config_type": "http", "config_name": "x", "config_content": content}),
            )
            .await;
        assert_eq!(s, 400, "{content}: {v}");
        assert!(detail(&v).contains(name), "{v}");
    }
    let (s, v) = api
        .post(
            "/api/v1/nginx-configs",
            json!({"config_type": "http", "config_name": "small-bodies", "config_content": "proxy_connect_timeout 1s;"}),
        )
        .await;
    assert_eq!(s, 409, "{v}");

    let (s, v) = api.get("/api/v1/nginx-configs/http").await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let (_, v) = api.get("/api/v1/nginx-configs?config_type=server").await;
    assert_eq!(v, json!([]));
    let (s, v) = api.get(&format!("/api/v1/nginx-configs/{id}")).await;
    assert_eq!((s, v["config_name"].as_str()), (200, Some("small-bodies")));

    let (s, v) = api
        .put(
            &format!("/api/v1/nginx-configs/{id}"),
            json!({"is_active": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(send_big().await.unwrap().status(), 200);
    let (s, _) = api
        .put(
            &format!("/api/v1/nginx-configs/{id}"),
            json!({"is_active": 1}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(send_big().await.unwrap().status(), 413);
    let (s, v) = api.delete(&format!("/api/v1/nginx-configs/{id}")).await;
    assert_eq!((s, v["message"].as_str()), (200, Some("nginx配置删除成功")));
    assert_eq!(send_big().await.unwrap().status(), 200);
    let (s, _) = api.get(&format!("/api/v1/nginx-configs/{id}")).await;
    assert_eq!(s, 404);
    let _ = std::fs::remove_file(state_path(&gw));
}

/// `POST /batch-dual-write` is all or nothing; `POST /namespaces/batch`.
async fn batches_are_all_or_nothing() {
    let a = mock("a").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let (_, before) = api.get("/api/v1/namespaces").await;
    // The second operation fails: the first is not applied either.
    let (s, v) = api
        .post(
            "/batch-dual-write",
            json!([
                {"op": "create_namespace", "data": {"namespace_name": "A", "namespace_code": "batch-a"}},
                {"op": "update_rule", "id": 999, "data": {"rule_name": "x"}}
            ]),
        )
        .await;
    assert_eq!(s, 404, "{v}");
    assert!(detail(&v).contains("[1] (update_rule)"), "{v}");
    let (_, after) = api.get("/api/v1/namespaces").await;
    assert_eq!(before, after);
    // A batch whose result would not validate changes nothing either.
    let (s, v) = api
        .post(
            "/batch-dual-write",
            json!([
                {"op": "create_namespace", "data": {"namespace_name": "A", "namespace_code": "batch-a"}},
                {"op": "create_rule", "namespace_id": 1, "data": {"rule_name": "r", "rule_type": "rate_limit", "rule_config": {"max_qps": -1}}}
            ]),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (_, after) = api.get("/api/v1/namespaces").await;
    assert_eq!(before, after);

    let (s, v) = api
        .post(
            "/batch-dual-write",
            json!([
                {"op": "create_namespace", "data": {"namespace_name": "A", "namespace_code": "batch-a"}},
                {"op": "create_namespace", "data": {"namespace_name": "B", "namespace_code": "batch-b"}},
                {"op": "create_rule", "namespace_id": 1, "data": {"rule_name": "limit-qps", "rule_type": "rate_limit", "rule_config": {"max_qps": 50}}},
            ]),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["op"], "create_namespace");
    assert_eq!(results[0]["success"], true);
    let (na, nb) = (
        results[0]["id"].as_u64().unwrap(),
        results[1]["id"].as_u64().unwrap(),
    );
    let rule = results[2]["id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            "/batch-dual-write",
            json!([{"op": "update_rule", "id": rule, "data": {"rule_name": "limit-qps-2", "rule_config": {"max_qps": 60}}}]),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = api.get(&format!("/api/v1/rules/{rule}")).await;
    assert_eq!(v["rule_name"], "limit-qps-2");

    let (s, v) = api.post("/namespaces/batch", json!([na, nb, 9999])).await;
    assert_eq!(s, 200, "{v}");
    let codes: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["namespace_code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["batch-a", "batch-b"]);
    let (s, _) = api.post("/namespaces/batch", json!(["x"])).await;
    assert_eq!(s, 400);
    let (s, _) = api.post("/batch-dual-write", json!({"op": "x"})).await;
    assert_eq!(s, 400);
    let (s, v) = api
        .post("/batch-dual-write", json!([{"op": "drop_everything"}]))
        .await;
    assert_eq!(s, 400);
    assert!(detail(&v).contains("drop_everything"), "{v}");
    let _ = std::fs::remove_file(state_path(&gw));
}

/// Namespace route: the namespace's prefix route, applied.
async fn namespace_route_crud() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start(&admin_config(a.addr.port(), "")).await;
    let api = Admin::new(&gw, TOKEN);
    let c = reqwest::Client::new();
    let (s, v) = api
        .post(
            "/api/v1/upstream-servers",
            json!({"server_name": "b", "server_address": "127.0.0.1", "server_port": b.addr.port()}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let b_id = v["server_id"].as_u64().unwrap();
    let (s, _) = api.get("/api/v1/namespaces/1/route").await;
    assert_eq!(s, 404);
    for bad in ["cookie:a=b", "header:x-tenant", "prefix:v1"] {
        let (s, v) = api
            .post(
                "/api/v1/namespaces/1/route",
                json!({"match_strategy": bad, "upstream_server_id": b_id}),
            )
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert!(detail(&v).contains("match_strategy"), "{v}");
    }

    // header: strategy: requests carrying it land in the namespace (and
    // go where its route says).
    let (s, v) = api
        .post(
            "/api/v1/namespaces",
            json!({"namespace_name": "Enterprise", "namespace_code": "ent"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let ent = v["namespace_id"].as_u64().unwrap();
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ent}/route"),
            json!({"match_strategy": "header:x-tenant=enterprise", "priority": 10,
                   "upstream_server_id": b_id}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["route"]["match_strategy"], "header:x-tenant=enterprise");
    assert_eq!(v["route"]["priority"], 10);
    assert_eq!(v["route"]["status"], 1);
    assert_eq!(v["warnings"], json!([]), "{v}");
    assert_eq!(
        chat_served_by(&gw, &c, &[("x-tenant", "enterprise")]).await,
        "b"
    );
    assert_eq!(chat_served_by(&gw, &c, &[]).await, "a");
    let (s, v) = api
        .post(
            "/api/v1/route/namespace",
            json!({"headers": {"x-tenant": "enterprise"}, "path": "/v1/chat/completions"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["target_namespace"], "ent", "{v}");
    // Switched off: the header no longer selects it.
    let (s, v) = api
        .post(
            &format!("/api/v1/namespaces/{ent}/route"),
            json!({"status": 0}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["route"]["status"], 0);
    assert_eq!(
        chat_served_by(&gw, &c, &[("x-tenant", "enterprise")]).await,
        "a"
    );
    let (s, _) = api.delete(&format!("/api/v1/namespaces/{ent}/route")).await;
    assert_eq!(s, 200);
    let (s, _) = api.get(&format!("/api/v1/namespaces/{ent}/route")).await;
    assert_eq!(s, 404);
    let (_, v) = api.get("/api/v1/matchers").await;
    assert!(!v.to_string().contains("enterprise"), "{v}");

    // prefix: strategy on namespace 1.
    let (s, v) = api
        .post(
            "/api/v1/namespaces/1/route",
            json!({"match_strategy": "prefix:/v1", "upstream_server_id": b_id}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"], "命名空间路由规则保存成功");
    let route_id = v["route_id"].as_u64().unwrap();
    assert_eq!(chat_served_by(&gw, &c, &[]).await, "b");
    let (s, v) = api.get("/api/v1/namespaces/1/route").await;
    assert_eq!(s, 200);
    assert_eq!(v["route_id"].as_u64(), Some(route_id));
    assert_eq!(v["namespace_id"], 1);
    assert_eq!(v["match_strategy"], "prefix:/v1");
    // Deleting the namespace would orphan the route.
    let (s, v) = api.delete("/api/v1/namespaces/1").await;
    assert_eq!(s, 409, "{v}");
    let (s, v) = api.delete("/api/v1/namespaces/1/route").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (200, Some("命名空间路由规则删除成功"))
    );
    assert_eq!(chat_served_by(&gw, &c, &[]).await, "a");
    let (s, _) = api.delete("/api/v1/namespaces/1/route").await;
    assert_eq!(s, 404);
    let (s, _) = api.get("/api/v1/namespaces/99/route").await;
    assert_eq!(s, 404);
    let _ = std::fs::remove_file(state_path(&gw));
}

on_both_stores!(
    nginx_configs_apply_and_refuse_what_they_cannot,
    batches_are_all_or_nothing,
    namespace_route_crud,
    admin_api_needs_its_token_for_changes_and_reads,
    namespaces_crud_and_errors,
    hot_apply_routes_traffic_without_restart,
    upstream_servers_crud,
    matchers_crud,
    proxy_rules_crud,
    rules_crud_types_and_counters_survive_changes,
    changes_persist_across_a_restart,
    concurrent_creates_are_all_kept,
    traffic_sees_no_failures_while_changes_apply,
    renaming_a_namespace_keeps_its_references,
);
