//! Routing and namespaces through the real gateway: proxy rules by
//! priority, namespace-specific rules, prefix routes (longest, segment
//! boundary, strip), and every matcher operator and type.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const RULES: &str = r#"
matchers:
  - {namespace: acme, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: acme, priority: 10}
  - {namespace: default, matcher_type: header, match_field: x-eq, match_operator: eq, match_value: bad, action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-ne, match_operator: ne, match_value: good, action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-gt, match_operator: gt, match_value: "100", action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-gte, match_operator: gte, match_value: "100", action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-lt, match_operator: lt, match_value: "0", action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-lte, match_operator: lte, match_value: "0", action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-contains, match_operator: contains, match_value: evil, action: deny, priority: 1}
  - {namespace: default, matcher_type: header, match_field: x-regex, match_operator: regex, match_value: '^drop-\d+$', action: deny, priority: 1}
  - {namespace: default, matcher_type: query, match_field: debug, match_operator: eq, match_value: "1", action: deny, priority: 1}
  - {namespace: default, matcher_type: body, match_field: metadata.tier, match_operator: eq, match_value: banned, action: deny, priority: 1}
  - {namespace: default, matcher_type: path, match_operator: regex, match_value: '^/blocked/', action: deny, priority: 1}
proxy_rules:
  - {rule_name: by-header, upstream: b, header_pattern: "x-route:b", priority: 10}
  - {rule_name: chat, upstream: c, path_pattern: "/v1/chat/.*", method_pattern: POST, priority: 20}
  - {rule_name: acme-all, upstream: d, namespace: acme, path_pattern: "/v1/.*", priority: 5}
  - {rule_name: special-model, upstream: b, body_pattern: '"model":\s*"special', priority: 1}
routes:
  - {prefix: /, upstream: a}
  - {prefix: /v1, upstream: a}
  - {prefix: /openai/, upstream: c, strip_prefix: true}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_prefixes_namespaces_and_matchers() {
    let (a, b, c, d) = (
        mock("a").await,
        mock("b").await,
        mock("c").await,
        mock("d").await,
    );
    let servers = [
        server("a", "a", a.addr.port(), ""),
        server("b", "b", b.addr.port(), ""),
        server("c", "c", c.addr.port(), ""),
        server("d", "d", d.addr.port(), ""),
    ];
    let gw = Gateway::start(&config_ns(&servers, "  - namespace_code: acme", RULES)).await;
    let client = reqwest::Client::new();
    let who = |r: &reqwest::Response| {
        r.headers()
            .get("x-mock-id")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };

    // Prefix /v1 (no proxy rule for GET /v1/models in the default namespace).
    let r = gw.get(&client, "/v1/models").await;
    assert_eq!((r.status(), who(&r)), (StatusCode::OK, "a".into()));
    // Proxy rule by path + method.
    let r = gw.chat(&client, false).await;
    assert_eq!((r.status(), who(&r)), (StatusCode::OK, "c".into()));
    // Priority 10 (header) beats priority 20 (path).
    let r = post(&client, gw.url("/v1/chat/completions"))
        .header("x-route", "b")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(who(&r), "b");
    // Priority 1 body pattern beats everything.
    let r = post(&client, gw.url("/v1/chat/completions"))
        .json(&json!({"model": "special-1", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(who(&r), "b");
    // A matcher puts the request in namespace acme, whose rule applies.
    let r = client
        .get(gw.url("/v1/models"))
        .bearer_auth("sk-test")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(who(&r), "d");
    // Longest prefix with strip: /openai/echo/x → /echo/x at c.
    let r = gw.get(&client, "/openai/echo/x?k=v").await;
    assert_eq!(who(&r), "c");
    let echo: Value = r.json().await.unwrap();
    assert_eq!(
        (echo["path"].as_str(), echo["query"].as_str()),
        (Some("/echo/x"), Some("k=v"))
    );
    // Segment boundary: /openaix is not under /openai/.
    let r = gw.get(&client, "/openaix/echo").await;
    assert_eq!(who(&r), "a");

    // Each operator: the denied value gets 403, the other passes.
    let cases = [
        ("x-eq", "bad", "fine"),
        ("x-ne", "other", "good"),
        ("x-gt", "101", "100"),
        ("x-gte", "100", "99.9"),
        ("x-lt", "-1", "0"),
        ("x-lte", "0", "1"),
        ("x-contains", "very-evil-value", "nice"),
        ("x-regex", "drop-42", "drop-x"),
    ];
    for (name, denied, allowed) in cases {
        let r = client
            .get(gw.url("/v1/models"))
            .bearer_auth("sk-test")
            .header(name, denied)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {denied}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        let r = client
            .get(gw.url("/v1/models"))
            .bearer_auth("sk-test")
            .header(name, allowed)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{name}: {allowed}");
    }
    let r = gw.get(&client, "/v1/models?debug=1").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = gw.get(&client, "/v1/models?debug=0").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = post(&client, gw.url("/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [], "metadata": {"tier": "banned"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = gw.get(&client, "/blocked/x").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_unclaimed_requests() {
    let a = mock("a").await;
    // No catch-all route, no default namespace; a key bound to `acme`.
    let yaml = format!(
        r#"server: {{threads: 1, grace_period_seconds: 0, graceful_shutdown_timeout_seconds: 1}}
listen: {{proxy: "{{proxy}}"}}
auth:
  keys:
    - {{name: bound, key: sk-bound, namespace: acme}}
    - {{name: free, key: sk-free}}
namespaces:
  - namespace_code: acme
matchers:
  - {{namespace: acme, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: acme}}
upstream_servers:
{}
routes:
  - {{prefix: /v1, upstream: a}}
"#,
        server("a", "a", a.addr.port(), "")
    );
    let gw = Gateway::start(&yaml).await;
    let client = reqwest::Client::new();
    let r = client
        .get(gw.url("/v2/models"))
        .bearer_auth("sk-bound")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
    // A bound key needs no matcher.
    let r = client
        .get(gw.url("/v1/models"))
        .bearer_auth("sk-bound")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // An unbound key with no matching matcher and no default namespace: 403.
    let r = client
        .get(gw.url("/v1/models"))
        .bearer_auth("sk-free")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client
        .get(gw.url("/v1/models"))
        .bearer_auth("sk-free")
        .header("x-tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
