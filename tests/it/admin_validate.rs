//! The admin API's "would this request…" endpoints (`/api/v1/route/*`,
//! `/api/v1/namespaces/{id}/validate`) against real proxied traffic with the
//! same sample requests, and the token service.

use crate::common::*;
use serde_json::{json, Value};

const TOKEN: &str = "v-tok";

/// Namespaces default, acme (header), big (body), gold (query); a deny
/// matcher on `x-block: yes`; acme goes to pool b by a proxy rule, big and
/// gold to pools c and d by namespace prefix routes, the rest to a.
fn validate_config(a: u16, b: u16, c: u16, d: u16) -> String {
    let servers = [
        server("a", "a", a, ""),
        server("b", "b", b, ""),
        server("c", "c", c, ""),
        server("d", "d", d, ""),
    ];
    let namespaces = "  - {namespace_code: acme, namespace_name: Acme}\n  - {namespace_code: big, namespace_name: Big}\n  - {namespace_code: gold, namespace_name: Gold}";
    let rest = format!(
        r#"matchers:
  - {{matcher_name: block, namespace: default, matcher_type: header, match_field: x-block, match_operator: eq, match_value: "yes", action: deny, priority: 1}}
  - {{matcher_name: tenant, namespace: acme, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: acme, priority: 10}}
  - {{matcher_name: big-model, namespace: big, matcher_type: body, match_field: model, match_operator: eq, match_value: gpt-4, priority: 20}}
  - {{matcher_name: gold-tier, namespace: gold, matcher_type: query, match_field: tier, match_operator: eq, match_value: gold, priority: 30}}
proxy_rules:
  - {{rule_name: acme-to-b, namespace: acme, upstream: b, path_pattern: "/v1/.*"}}
routes:
  - {{prefix: /, upstream: c, namespace: big}}
  - {{prefix: /, upstream: d, namespace: gold}}
  - {{prefix: /, upstream: a}}
admin: {{tokens: [{TOKEN}]}}
"#
    );
    with_admin(&config_ns(&servers, namespaces, &rest))
}

async fn admin_post(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    Admin::new(gw, TOKEN).post(path, body).await
}

async fn admin_get(gw: &Gateway, path: &str) -> (u16, Value) {
    Admin::new(gw, TOKEN).get(path).await
}

/// One sample request: sent through the proxy, and described to the admin API.
struct Case {
    name: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    query: Option<&'static str>,
    body: Value,
    /// Expected namespace (None: not admitted).
    namespace: Option<&'static str>,
    /// Expected proxy status.
    status: u16,
    /// Expected mock (pool) that serves it.
    upstream: Option<&'static str>,
}

async fn proxied(gw: &Gateway, case: &Case) -> (u16, Option<String>) {
    let mut url = gw.url("/v1/chat/completions");
    if let Some(q) = case.query {
        url = format!("{url}?{q}");
    }
    let mut req = reqwest::Client::new().post(url).json(&case.body);
    for (k, v) in &case.headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.expect("proxied request");
    let id = r
        .headers()
        .get("x-mock-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status().as_u16(), id)
}

fn sample(case: &Case) -> Value {
    let headers: serde_json::Map<String, Value> = case
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    let mut s = json!({
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": headers,
        "body": case.body,
    });
    if let Some(q) = case.query {
        s["query"] = q.into();
    }
    s
}

fn cases() -> Vec<Case> {
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let key = ("authorization", "Bearer sk-test");
    vec![
        Case {
            name: "default",
            headers: vec![key],
            query: None,
            body: chat("gpt-4o-mini"),
            namespace: Some("default"),
            status: 200,
            upstream: Some("a"),
        },
        Case {
            name: "header",
            headers: vec![key, ("x-tenant", "acme")],
            query: None,
            body: chat("gpt-4o-mini"),
            namespace: Some("acme"),
            status: 200,
            upstream: Some("b"),
        },
        Case {
            name: "body",
            headers: vec![key],
            query: None,
            body: chat("gpt-4"),
            namespace: Some("big"),
            status: 200,
            upstream: Some("c"),
        },
        Case {
            name: "query",
            headers: vec![key],
            query: Some("tier=gold"),
            body: chat("gpt-4o-mini"),
            namespace: Some("gold"),
            status: 200,
            upstream: Some("d"),
        },
        Case {
            name: "header beats body (priority)",
            headers: vec![key, ("x-tenant", "acme")],
            query: Some("tier=gold"),
            body: chat("gpt-4"),
            namespace: Some("acme"),
            status: 200,
            upstream: Some("b"),
        },
        Case {
            name: "deny",
            headers: vec![key, ("x-block", "yes"), ("x-tenant", "acme")],
            query: None,
            body: chat("gpt-4"),
            namespace: None,
            status: 403,
            upstream: None,
        },
        Case {
            name: "no key",
            headers: vec![("x-tenant", "acme")],
            query: None,
            body: chat("gpt-4o-mini"),
            namespace: Some("acme"),
            status: 401,
            upstream: None,
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_endpoints_agree_with_proxied_traffic() {
    let (a, b, c, d) = (
        mock("a").await,
        mock("b").await,
        mock("c").await,
        mock("d").await,
    );
    let gw = Gateway::start(&validate_config(
        a.addr.port(),
        b.addr.port(),
        c.addr.port(),
        d.addr.port(),
    ))
    .await;

    for case in cases() {
        let (status, served_by) = proxied(&gw, &case).await;
        assert_eq!(status, case.status, "{}: proxy status", case.name);
        assert_eq!(
            served_by.as_deref(),
            case.upstream,
            "{}: upstream",
            case.name
        );

        let (s, v) = admin_post(&gw, "/api/v1/route/namespace", sample(&case)).await;
        assert_eq!(s, 200, "{}: {v}", case.name);
        assert_eq!(v["decision"]["status"], status, "{}: {v}", case.name);
        if case.status != 401 {
            assert_eq!(
                v["route"]["upstream"].as_str(),
                case.upstream,
                "{}: {v}",
                case.name
            );
            assert_eq!(
                v["target_namespace"].as_str(),
                case.namespace,
                "{}: {v}",
                case.name
            );
        }

        let (s, v) = admin_post(&gw, "/api/v1/route/validate", sample(&case)).await;
        assert_eq!(s, 200, "{}: {v}", case.name);
        assert_eq!(v["decision"]["status"], status, "{}: {v}", case.name);
        // Every active matcher is listed, in evaluation order, exactly one decisive at most.
        let rules = v["rules"].as_array().unwrap();
        let names: Vec<&str> = rules
            .iter()
            .map(|r| r["rule_name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["block", "tenant", "big-model", "gold-tier"]);
        assert!(rules.iter().filter(|r| r["decisive"] == true).count() <= 1);
    }

    // A body the proxy refuses as invalid JSON: 400 both ways.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-test")
        .header("content-type", "application/json")
        .body("{bad")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let (_, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"path": "/v1/chat/completions",
               "headers": {"authorization": "Bearer sk-test"}, "body": "{bad"}),
    )
    .await;
    assert_eq!(v["decision"]["status"], 400, "{v}");
    assert_eq!(v["decision"]["result"], "invalid_request");
    // Off the model endpoints a body that is not JSON is forwarded as it
    // is, live and in the dry run.
    let (_, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"path": "/upload", "headers": {"authorization": "Bearer sk-test"}, "body": "{bad"}),
    )
    .await;
    assert_eq!(v["decision"]["status"], 200, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_namespace_answers_in_seed_shapes() {
    let (a, b, c, d) = (
        mock("a").await,
        mock("b").await,
        mock("c").await,
        mock("d").await,
    );
    let gw = Gateway::start(&validate_config(
        a.addr.port(),
        b.addr.port(),
        c.addr.port(),
        d.addr.port(),
    ))
    .await;

    // Seed request shape: headers, query_params, body, path.
    let (s, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"headers": {"X-Tenant": "acme"}, "query_params": {"model": "gpt-4"},
               "body": {"prompt": "Hello"}, "path": "/v1/chat/completions"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["matched"], true);
    assert_eq!(v["rule_name"], "tenant");
    assert_eq!(v["target_namespace"], "acme");
    assert_eq!(v["namespace_info"]["namespace_code"], "acme");
    assert_eq!(v["namespace_info"]["namespace_id"], 2);
    assert_eq!(v["namespace_info"]["status"], 1);
    assert_eq!(v["matched_config"]["matcher_type"], "header");
    assert_eq!(v["matched_config"]["match_field"], "x-tenant");
    assert_eq!(v["matched_config"]["match_operator"], "eq");
    assert_eq!(v["route"]["type"], "proxy_rule");
    assert_eq!(v["route"]["rule_name"], "acme-to-b");

    // No match: the default namespace, with the contract's message.
    let (s, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"path": "/v1/models"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["matched"], false);
    assert_eq!(v["target_namespace"], "default");
    assert_eq!(v["message"], "未找到匹配的规则，使用默认命名空间");
    assert_eq!(v["route"]["type"], "prefix");

    // Deny.
    let (_, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"headers": {"x-block": "yes", "authorization": "Bearer sk-test"}}),
    )
    .await;
    assert_eq!(v["matched"], true);
    assert_eq!(v["rule_name"], "block");
    assert_eq!(v["target_namespace"], Value::Null);
    assert_eq!(v["decision"]["result"], "denied");

    // Query as a raw string, body as a raw JSON string.
    let (_, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"path": "/v1/chat/completions?tier=gold"}),
    )
    .await;
    assert_eq!(v["target_namespace"], "gold");
    let (_, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"body": "{\"model\":\"gpt-4\"}"}),
    )
    .await;
    assert_eq!(v["target_namespace"], "big");

    // route/validate: per-matcher results.
    let (s, v) = admin_post(
        &gw,
        "/api/v1/route/validate",
        json!({"headers": {"x-tenant": "acme"}, "body": {"model": "gpt-4"}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["request_data"]["headers"]["x-tenant"], "acme");
    let by_name = |n: &str| {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rule_name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("tenant")["matched"], true);
    assert_eq!(by_name("tenant")["decisive"], true);
    assert_eq!(by_name("big-model")["matched"], true);
    assert_eq!(by_name("big-model")["decisive"], false);
    assert_eq!(by_name("block")["matched"], false);
    assert_eq!(by_name("gold-tier")["config"]["matcher_type"], "query");

    // Bad samples name the field.
    let (s, v) = admin_post(&gw, "/api/v1/route/namespace", json!({"headers": [1]})).await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().contains("headers"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_validate_reports_its_matchers() {
    let (a, b, c, d) = (
        mock("a").await,
        mock("b").await,
        mock("c").await,
        mock("d").await,
    );
    let gw = Gateway::start(&validate_config(
        a.addr.port(),
        b.addr.port(),
        c.addr.port(),
        d.addr.port(),
    ))
    .await;

    let (s, v) = admin_post(
        &gw,
        "/api/v1/namespaces/2/validate",
        json!({"headers": {"x-tenant": "acme"}, "path": "/v1/chat/completions"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["allowed"], true);
    assert_eq!(v["namespace_id"], 2);
    assert_eq!(v["namespace_code"], "acme");
    assert_eq!(v["namespace_name"], "Acme");
    assert_eq!(
        v["rules"],
        json!([{"rule_id": 2, "rule_name": "tenant", "rule_type": "matcher", "passed": true,
                "details": {"message": "规则验证通过", "matched": true,
                            "config": {"matcher_type": "header", "match_field": "x-tenant",
                                       "match_operator": "eq", "match_value": "acme",
                                       "action": "allow"}}}])
    );

    let (_, v) = admin_post(
        &gw,
        "/api/v1/namespaces/2/validate",
        json!({"headers": {"x-tenant": "other"}}),
    )
    .await;
    assert_eq!(v["allowed"], false);
    assert_eq!(v["resolved_namespace"], "default");
    assert_eq!(v["rules"][0]["passed"], false);

    // The default namespace's deny matcher: passed unless it fires.
    let (_, v) = admin_post(&gw, "/api/v1/namespaces/1/validate", json!({})).await;
    assert_eq!(v["allowed"], true);
    assert_eq!(v["rules"][0]["rule_name"], "block");
    assert_eq!(v["rules"][0]["passed"], true);
    let (_, v) = admin_post(
        &gw,
        "/api/v1/namespaces/1/validate",
        json!({"headers": {"x-block": "yes"}}),
    )
    .await;
    assert_eq!(v["allowed"], false);
    assert_eq!(v["rules"][0]["passed"], false);

    let (s, v) = admin_post(&gw, "/api/v1/namespaces/99/validate", json!({})).await;
    assert_eq!(s, 404);
    assert_eq!(v["detail"], "资源不存在");

    // A matcher added through the API is used at once by both.
    let (s, v) = admin_post(
        &gw,
        "/api/v1/namespaces/4/matchers",
        json!({"matcher_name": "gold-hdr", "matcher_type": "header",
               "matcher_config": {"match_field": "x-gold", "match_operator": "eq",
                                  "match_value": "1"}, "priority": 5}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = admin_post(
        &gw,
        "/api/v1/route/namespace",
        json!({"headers": {"x-gold": "1", "x-tenant": "acme"}}),
    )
    .await;
    assert_eq!(v["target_namespace"], "gold");
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-test")
        .header("x-gold", "1")
        .header("x-tenant", "acme")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-mock-id"], "d");
    let _ = std::fs::remove_file(state_path(&gw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_service_counts_like_the_limiter() {
    let a = mock("a").await;
    let yaml = validate_config(a.addr.port(), a.addr.port(), a.addr.port(), a.addr.port()).replace(
        "admin: {tokens:",
        "tokens:\n  models: {\"my-llama*\": cl100k_base}\nadmin: {tokens:",
    );
    let gw = Gateway::start(&yaml).await;

    for prefix in ["/api/v1/tokens", ""] {
        let (s, v) = admin_post(
            &gw,
            &format!("{prefix}/calculate"),
            json!({"text": "hello world", "model_name": "gpt-4o"}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["success"], true);
        assert_eq!(v["token_count"], 2);
        assert_eq!(v["encoding"], "o200k_base");
        assert_eq!(v["estimated"], false);
        assert_eq!(v["text"], "hello world");
        assert_eq!(v["model_name"], "gpt-4o");
    }

    // The cookbook's example messages: 129 (cl100k), 124 (o200k).
    let messages = json!([
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
    ]);
    for (model, want) in [("gpt-4", 129), ("gpt-4o", 124)] {
        let (s, v) = admin_post(
            &gw,
            "/api/v1/tokens/calculate",
            json!({"model": model, "messages": messages}),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["token_count"], want, "{model}: {v}");
        assert_eq!(v["estimated"], false);
    }

    // tokens.models override; unknown model → fallback, estimated; explicit encoding.
    let (_, v) = admin_post(
        &gw,
        "/calculate",
        json!({"text": "hello world", "model_name": "my-llama-3"}),
    )
    .await;
    assert_eq!(v["encoding"], "cl100k_base");
    assert_eq!(v["estimated"], false);
    let (_, v) = admin_post(
        &gw,
        "/calculate",
        json!({"text": "hello world", "model_name": "mystery"}),
    )
    .await;
    assert_eq!(v["encoding"], "cl100k_base"); // tokens.fallback_encoding's default
    assert_eq!(v["estimated"], true);
    let (_, v) = admin_post(
        &gw,
        "/calculate",
        json!({"text": "hello world", "encoding": "r50k_base"}),
    )
    .await;
    assert_eq!(v["encoding"], "r50k_base");
    assert_eq!(v["token_count"], 2);
    let (s, v) = admin_post(&gw, "/calculate", json!({"model_name": "gpt-4o"})).await;
    assert_eq!(s, 400);
    assert_eq!(v["detail"], "缺少必要字段: text");
    let (s, _) = admin_post(&gw, "/calculate", json!({"text": "x", "encoding": "nope"})).await;
    assert_eq!(s, 400);

    // Batch: one result per text, in order.
    let (s, v) = admin_post(
        &gw,
        "/api/v1/tokens/batch-calculate",
        json!({"texts": ["hello", "hello world", ""], "model_name": "gpt-4o"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let counts: Vec<u64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["token_count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [1, 2, 0]);
    assert_eq!(v[1]["text"], "hello world");
    let (s, _) = admin_post(&gw, "/batch-calculate", json!({"texts": [1]})).await;
    assert_eq!(s, 400);

    // Models: encodings, the override, built-in names, the fallback.
    for path in ["/api/v1/tokens/models", "/models"] {
        let (s, v) = admin_get(&gw, path).await;
        assert_eq!(s, 200);
        let find = |n: &str| {
            v.as_array()
                .unwrap()
                .iter()
                .find(|m| m["name"] == n)
                .cloned()
                .unwrap_or(Value::Null)
        };
        assert_eq!(find("gpt-4o")["encoding"], "o200k_base");
        assert_eq!(find("gpt-4")["encoding"], "cl100k_base");
        assert_eq!(find("my-llama*")["source"], "config");
        assert_eq!(find("cl100k_base")["source"], "encoding");
        assert_eq!(find("*")["estimated"], true);
    }

    // Download: built in, or a clear 400.
    let (s, v) = admin_post(
        &gw,
        "/api/v1/tokens/download-model",
        json!({"model_name": "cl100k_base"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["encoding"], "cl100k_base");
    let (s, v) = admin_post(&gw, "/download-model", json!({"model_name": "gpt2"})).await;
    assert_eq!(s, 200);
    assert_eq!(v["encoding"], "r50k_base");
    // ... and counted with it, exactly (not a cl100k estimate).
    let (_, v) = admin_post(
        &gw,
        "/calculate",
        json!({"text": "hello world", "model_name": "gpt2"}),
    )
    .await;
    assert_eq!(v["encoding"], "r50k_base", "{v}");
    assert_eq!(v["estimated"], false, "{v}");
    let (s, v) = admin_post(&gw, "/download-model", json!({"model_name": "llama-3-8b"})).await;
    assert_eq!(s, 400);
    assert_eq!(
        v["detail"],
        "tokenizers are built in (o200k_base, cl100k_base, p50k_base, r50k_base); map a model to one with tokens.models"
    );

    let (s, v) = admin_get(&gw, "/api/v1/tokens/health").await;
    assert_eq!(s, 200);
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["service"], "token-calculator");
    let (s, v) = admin_get(&gw, "/").await;
    assert_eq!(s, 200);
    assert_eq!(v["message"], "Token计算服务");
    let _ = std::fs::remove_file(state_path(&gw));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_and_token_endpoints_need_the_admin_token() {
    let a = mock("a").await;
    let gw = Gateway::start(&validate_config(
        a.addr.port(),
        a.addr.port(),
        a.addr.port(),
        a.addr.port(),
    ))
    .await;
    let c = reqwest::Client::new();
    for path in [
        "/api/v1/route/namespace",
        "/api/v1/route/validate",
        "/api/v1/namespaces/1/validate",
        "/api/v1/tokens/calculate",
        "/api/v1/tokens/batch-calculate",
        "/api/v1/tokens/download-model",
        "/calculate",
        "/batch-calculate",
        "/download-model",
    ] {
        for token in [None, Some("wrong")] {
            let mut req = c.post(gw.admin_url(path)).json(&json!({"text": "x"}));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
            assert!(r.json::<Value>().await.unwrap()["detail"].is_string());
        }
    }
    for path in [
        "/api/v1/tokens/models",
        "/api/v1/tokens/health",
        "/models",
        "/",
    ] {
        let r = c.get(gw.admin_url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    // Open: the admin health and the OpenAPI document.
    let r = c.get(gw.admin_url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(gw.admin_url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // GET on a POST-only endpoint: 405.
    let r = c
        .get(gw.admin_url("/api/v1/route/namespace"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let _ = std::fs::remove_file(state_path(&gw));
}
