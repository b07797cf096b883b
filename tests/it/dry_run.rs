//! The admin dry-run endpoints and live traffic give the same answer: the
//! same table of requests (plain, alias paths, spellings, catalog models
//! with and without a route, the Anthropic client format, deny matchers,
//! inactive namespaces, a missing key, bad bodies, the gateway's own
//! endpoints) is sent through the proxy and described to
//! `POST /api/v1/route/namespace`, `/api/v1/route/validate` and
//! `/api/v1/namespaces/{id}/validate`.

use crate::common::*;
use serde_json::{json, Value};

const TOKEN: &str = "dry-tok";

/// Namespaces: default, acme (header, routed by a proxy rule to b), chan
/// (path matcher on the internal channel's paths), bare (no route: only
/// catalog models reach it), closed (inactive). Catalog model `smart` on
/// pool `cat`.
fn dry_config(a: u16, b: u16, cat: u16) -> String {
    let servers = [
        server("a", "a", a, ""),
        server("b", "b", b, ""),
        server("cat", "cat", cat, ""),
    ];
    let namespaces = "  - {namespace_code: acme}\n  - {namespace_code: chan}\n  - {namespace_code: bare}\n  - {namespace_code: closed, is_active: false}";
    let rest = format!(
        r#"matchers:
  - {{matcher_name: block, namespace: default, matcher_type: header, match_field: x-block, match_operator: eq, match_value: "yes", action: deny, priority: 1}}
  - {{matcher_name: tenant, namespace: acme, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: acme, priority: 10}}
  - {{matcher_name: bare, namespace: bare, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: bare, priority: 11}}
  - {{matcher_name: closed, namespace: closed, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: closed, priority: 12}}
  - {{matcher_name: channel, namespace: chan, matcher_type: path, match_field: path, match_operator: regex, match_value: "^/internal/", priority: 20}}
proxy_rules:
  - {{rule_name: acme-to-b, namespace: acme, upstream: b, path_pattern: "/v1/.*"}}
routes:
  - {{prefix: /, upstream: a, namespace: default}}
  - {{prefix: /, upstream: a, namespace: chan}}
  - {{prefix: /, upstream: a, namespace: closed}}
models:
  - name: smart
    deployments:
      - {{name: d1, upstream: cat, model: gpt-4o-mini}}
admin: {{tokens: [{TOKEN}]}}
"#
    );
    config_ns(&servers, namespaces, &rest).replace(
        "listen:\n  proxy: \"{proxy}\"",
        "listen:\n  proxy: \"{proxy}\"\n  admin: \"{admin}\"",
    )
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    /// A JSON body, or a raw string body.
    body: Value,
    /// What live traffic gets: status, the mock that served it, and the
    /// namespace the dry run must name (None: refused before or by matching).
    status: u16,
    upstream: Option<&'static str>,
    namespace: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let key = ("authorization", "Bearer sk-test");
    let c = |name,
             method,
             path,
             headers: Vec<(&'static str, &'static str)>,
             body,
             status,
             upstream,
             namespace| Case {
        name,
        method,
        path,
        headers,
        body,
        status,
        upstream,
        namespace,
    };
    vec![
        c(
            "plain",
            "POST",
            "/v1/chat/completions",
            vec![key],
            chat("gpt-4o-mini"),
            200,
            Some("a"),
            Some("default"),
        ),
        c(
            "alias /api",
            "POST",
            "/api/chat/completions",
            vec![key],
            chat("gpt-4o-mini"),
            200,
            Some("a"),
            Some("default"),
        ),
        c(
            "internal channel: matchers see the path as sent",
            "POST",
            "/internal/v1/chat/completions",
            vec![key],
            chat("gpt-4o-mini"),
            200,
            Some("a"),
            Some("chan"),
        ),
        c(
            "internal embeddings",
            "POST",
            "/internal/v1/embeddings",
            vec![key],
            json!({"model": "text-embedding-3-small", "input": "x"}),
            200,
            Some("a"),
            Some("chan"),
        ),
        c(
            "another spelling",
            "POST",
            "/v1//chat/./completions",
            vec![key],
            chat("gpt-4o-mini"),
            200,
            Some("a"),
            Some("default"),
        ),
        c(
            "header tenant by proxy rule",
            "POST",
            "/v1/chat/completions",
            vec![key, ("x-tenant", "acme")],
            chat("gpt-4o-mini"),
            200,
            Some("b"),
            Some("acme"),
        ),
        c(
            "catalog model, no route",
            "POST",
            "/v1/chat/completions",
            vec![key, ("x-tenant", "bare")],
            chat("smart"),
            200,
            Some("cat"),
            Some("bare"),
        ),
        c(
            "no route",
            "POST",
            "/v1/chat/completions",
            vec![key, ("x-tenant", "bare")],
            chat("gpt-4o-mini"),
            404,
            None,
            Some("bare"),
        ),
        c(
            "catalog model over a route",
            "POST",
            "/v1/chat/completions",
            vec![key],
            chat("smart"),
            200,
            Some("cat"),
            Some("default"),
        ),
        c(
            "anthropic client, catalog model",
            "POST",
            "/v1/messages",
            vec![key],
            json!({"model": "smart", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}),
            200,
            Some("cat"),
            Some("default"),
        ),
        c(
            "deny matcher",
            "POST",
            "/v1/chat/completions",
            vec![key, ("x-block", "yes"), ("x-tenant", "acme")],
            chat("gpt-4o-mini"),
            403,
            None,
            None,
        ),
        c(
            "inactive namespace",
            "POST",
            "/v1/chat/completions",
            vec![key, ("x-tenant", "closed")],
            chat("gpt-4o-mini"),
            403,
            None,
            Some("closed"),
        ),
        c(
            "no key",
            "POST",
            "/v1/chat/completions",
            vec![("x-tenant", "acme")],
            chat("gpt-4o-mini"),
            401,
            None,
            Some("acme"),
        ),
        c(
            "bad JSON on a model endpoint",
            "POST",
            "/v1/chat/completions",
            vec![key],
            Value::from("{bad"),
            400,
            None,
            None,
        ),
        c(
            "text/plain declared, JSON sent",
            "POST",
            "/v1/chat/completions",
            vec![key, ("content-type", "text/plain")],
            Value::from(r#"{"model":"smart","messages":[]}"#),
            200,
            Some("cat"),
            Some("default"),
        ),
        c(
            "gateway endpoint",
            "GET",
            "/v1/models",
            vec![key],
            Value::Null,
            200,
            None,
            None,
        ),
        c(
            "gateway endpoint, no key",
            "GET",
            "/internal/v1/models",
            vec![],
            Value::Null,
            401,
            None,
            None,
        ),
    ]
}

async fn live(gw: &Gateway, case: &Case) -> (u16, Option<String>) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut req = client.request(method, gw.url(case.path));
    for (k, v) in &case.headers {
        req = req.header(*k, *v);
    }
    req = match &case.body {
        Value::Null => req,
        Value::String(s) => req.body(s.clone()),
        v => req.body(v.to_string()),
    };
    let r = req.send().await.expect("live request");
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
    json!({"method": case.method, "path": case.path, "headers": headers, "body": case.body})
}

async fn admin(gw: &Gateway, path: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(gw.admin_url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.expect("admin JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_and_live_traffic_agree() {
    let (a, b, cat) = (mock("a").await, mock("b").await, mock("cat").await);
    let gw = Gateway::start(&dry_config(a.addr.port(), b.addr.port(), cat.addr.port())).await;
    let namespaces = admin_list(&gw).await;

    for case in cases() {
        let (status, served_by) = live(&gw, &case).await;
        assert_eq!(
            (status, served_by.as_deref()),
            (case.status, case.upstream),
            "{}: live",
            case.name
        );

        let v = admin(&gw, "/api/v1/route/namespace", sample(&case)).await;
        assert_eq!(v["decision"]["status"], status, "{}: {v}", case.name);
        assert_eq!(
            v["target_namespace"].as_str(),
            case.namespace,
            "{}: {v}",
            case.name
        );
        if status == 200 && case.upstream.is_some() {
            assert_eq!(
                v["route"]["upstream"].as_str(),
                case.upstream,
                "{}: {v}",
                case.name
            );
        }

        let v = admin(&gw, "/api/v1/route/validate", sample(&case)).await;
        assert_eq!(v["decision"]["status"], status, "{}: {v}", case.name);
        assert_eq!(
            v["target_namespace"].as_str(),
            case.namespace,
            "{}: {v}",
            case.name
        );

        // Per namespace: admitted into exactly the namespace live traffic got.
        for (id, code) in &namespaces {
            let path = format!("/api/v1/namespaces/{id}/validate");
            let v = admin(&gw, &path, sample(&case)).await;
            assert_eq!(v["decision"]["status"], status, "{}: {path} {v}", case.name);
            let admitted = case.namespace == Some(code.as_str()) && code != "closed";
            assert_eq!(v["allowed"], admitted, "{}: {path} {v}", case.name);
        }
    }
}

/// (id, code) of every namespace.
async fn admin_list(gw: &Gateway) -> Vec<(u64, String)> {
    let r = reqwest::Client::new()
        .get(gw.admin_url("/api/v1/namespaces"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin request");
    let v: Value = r.json().await.expect("JSON");
    let items = v
        .as_array()
        .or_else(|| v["items"].as_array())
        .cloned()
        .unwrap_or_default();
    let list: Vec<(u64, String)> = items
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().or(n["namespace_id"].as_u64()).unwrap(),
                n["namespace_code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(list.len(), 5, "{v}");
    list
}

/// The namespace dry run answers from the matchers alone; what a key
/// bound to a namespace changes is said apart (`key_namespace`), and is
/// where live traffic with that key lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_dry_run_names_the_key_binding_apart() {
    let (a, b, cat) = (mock("a").await, mock("b").await, mock("cat").await);
    let yaml = dry_config(a.addr.port(), b.addr.port(), cat.addr.port()).replace(
        "      key: sk-test\n",
        "      key: sk-test\n    - name: bound\n      key: sk-bound\n      namespace: acme\n",
    );
    assert!(yaml.contains("sk-bound"));
    let gw = Gateway::start(&yaml).await;
    let sample = json!({"method": "POST", "path": "/v1/chat/completions",
        "headers": {"authorization": "Bearer sk-bound"},
        "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}});
    let v = admin(&gw, "/api/v1/route/namespace", sample.clone()).await;
    assert_eq!(v["target_namespace"], "default", "{v}");
    assert_eq!(v["matched"], false, "{v}");
    assert_eq!(v["key_namespace"], "acme", "{v}");
    // Live traffic with that key: acme's proxy rule sends it to b.
    let r = reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-bound")
        .json(&sample["body"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-mock-id"], "b");
    // Without the key the contract's sample is answered from the matchers.
    let v = admin(
        &gw,
        "/api/v1/route/namespace",
        json!({"headers": {"x-tenant": "acme"}, "query_params": {"model": "gpt-4"},
               "body": {"prompt": "Hello"}, "path": "/v1/chat/completions"}),
    )
    .await;
    assert_eq!(v["target_namespace"], "acme", "{v}");
    assert_eq!(v["matched"], true, "{v}");
    assert!(v.get("key_namespace").is_none(), "{v}");
}
