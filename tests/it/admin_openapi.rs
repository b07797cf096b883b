//! The admin API's OpenAPI document (`GET /openapi.json`) against the live
//! server: every documented operation is called (ids from objects created
//! first, bodies from the document's examples) and answers a status the
//! document declares, a 200 of the documented type (schemas resolved from
//! their components); the document lists exactly the server's route table;
//! undocumented methods and paths are refused.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const TOKEN: &str = "o-tok";

/// The walk runs on the MySQL store with the Redis cache, so that the
/// cache endpoints answer too.
fn walk_config(a_port: u16, store: &StoreGuard) -> String {
    let yaml = admin_config(a_port, TOKEN, &store.yaml(None));
    // Sign-in on, for the console's admin sign-in.
    let head = "auth:\n  enabled: true\n";
    assert!(yaml.contains(head));
    yaml.replacen(
        head,
        &format!("{head}  jwt: {{secret: \"walk-jwt-secret-0123456789abcdef0123\"}}\n"),
        1,
    )
}

async fn call(gw: &Gateway, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    Admin::new(gw, TOKEN).call(method, path, body).await
}

/// Ids of the objects the walk works on.
struct Ids {
    namespace: u64,
    server: u64,
    matcher: u64,
    proxy_rule: u64,
    rule: u64,
    nginx: u64,
    api_key: u64,
    user: u64,
}

async fn create(gw: &Gateway, path: &str, body: Value, id_field: &str) -> u64 {
    let (s, v) = call(gw, "POST", path, Some(body)).await;
    assert_eq!(s, 200, "{path}: {v}");
    v[id_field]
        .as_u64()
        .unwrap_or_else(|| panic!("{path}: {v}"))
}

/// The concrete path of a template.
fn concrete(template: &str, ids: &Ids) -> String {
    let under_proxy = template.starts_with("/api/v1/proxy-rules");
    template
        .split('/')
        .map(|seg| match seg {
            "{namespace_id}" => ids.namespace.to_string(),
            "{server_id}" => ids.server.to_string(),
            "{matcher_id}" => ids.matcher.to_string(),
            "{rule_id}" if under_proxy => ids.proxy_rule.to_string(),
            "{rule_id}" => ids.rule.to_string(),
            "{config_id}" => ids.nginx.to_string(),
            "{key_id}" => ids.api_key.to_string(),
            "{user_id}" => ids.user.to_string(),
            // Replaced by the current revision when walked (a restore of
            // an older one would undo the walk's own objects; restores
            // are tested in tests/it/history.rs).
            "{revision}" => "999999".to_string(),
            other => {
                assert!(!other.starts_with('{'), "unknown parameter {other}");
                other.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `schema` with a `$ref` to a component replaced by the component.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "unresolved {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// The JSON types a schema allows at its top level (each `oneOf`
/// alternative's, resolved).
fn top_types(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema["oneOf"].as_array() {
        return alternatives
            .iter()
            .flat_map(|a| top_types(doc, a))
            .collect();
    }
    // `allOf`: every part describes the same value; the first that names
    // a type says it.
    if let Some(parts) = schema["allOf"].as_array() {
        return parts
            .iter()
            .map(|p| top_types(doc, p))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
    }
    match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The document's example body, adjusted so it applies here (real ports
/// and ids, codes that do not collide).
fn fixup(method: &str, template: &str, mut body: Value, ids: &Ids, port: u16) -> Value {
    let Some(o) = body.as_object_mut() else {
        return body;
    };
    match (method, template) {
        ("PUT", "/api/v1/nginx-configs/{config_id}") => {
            o.insert("config_name".into(), "walk-ng".into());
        }
        (_, "/api/v1/namespaces/{namespace_id}/route") => {
            o.insert("upstream_server_id".into(), ids.server.into());
        }
        ("PUT", "/api/v1/namespaces/{namespace_id}") => {
            o.insert("namespace_code".into(), "walk".into());
        }
        (_, p) if p.starts_with("/api/v1/upstream-servers") => {
            o.insert("server_port".into(), port.into());
            if method == "PUT" {
                o.insert("server_name".into(), "walk-server".into());
            }
        }
        (_, p) if p.starts_with("/api/v1/proxy-rules") => {
            o.insert("namespace_id".into(), ids.namespace.into());
            o.insert("upstream_server_id".into(), ids.server.into());
        }
        ("POST", "/api/v1/auth/login") => {
            o.insert("email".into(), "walk-admin@example.com".into());
            o.insert("password".into(), "walk password".into());
        }
        _ => {}
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_live_server() {
    let a = mock("a").await;
    let store = StoreGuard::new();
    let gw = Gateway::start(&walk_config(a.addr.port(), &store)).await;
    let port = a.addr.port();

    // The document is open (no token).
    let r = reqwest::Client::new()
        .get(gw.admin_url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    let paths = doc["paths"].as_object().unwrap();

    // The document lists exactly the server's route table.
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    let table: BTreeSet<(String, String)> = sluice::admin::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table);

    // Objects to work on.
    let namespace = create(
        &gw,
        "/api/v1/namespaces",
        json!({"namespace_name": "Walk", "namespace_code": "walk-0"}),
        "namespace_id",
    )
    .await;
    let server = create(
        &gw,
        "/api/v1/upstream-servers",
        json!({"server_name": "walk-s", "server_address": "127.0.0.1", "server_port": port}),
        "server_id",
    )
    .await;
    let matcher = create(
        &gw,
        &format!("/api/v1/namespaces/{namespace}/matchers"),
        json!({"matcher_name": "walk-m", "matcher_type": "header",
               "matcher_config": {"match_field": "x-walk", "match_operator": "eq",
                                  "match_value": "1"}}),
        "matcher_id",
    )
    .await;
    let proxy_rule = create(
        &gw,
        "/api/v1/proxy-rules",
        json!({"rule_name": "walk-r", "namespace_id": namespace,
               "upstream_server_id": server, "path_pattern": "/walk/.*"}),
        "rule_id",
    )
    .await;
    let rule = create(
        &gw,
        &format!("/api/v1/namespaces/{namespace}/rules"),
        json!({"rule_name": "walk-qps", "rule_type": "rate_limit",
               "rule_config": {"max_qps": 50, "time_window_seconds": 1}}),
        "rule_id",
    )
    .await;
    let nginx = create(
        &gw,
        "/api/v1/nginx-configs",
        json!({"config_type": "http", "config_name": "walk-ng",
               "config_content": "proxy_connect_timeout 3s;"}),
        "config_id",
    )
    .await;
    create(
        &gw,
        &format!("/api/v1/namespaces/{namespace}/route"),
        json!({"prefix": "/walk", "upstream_server_id": server}),
        "route_id",
    )
    .await;
    let api_key = create(
        &gw,
        "/api/v1/api-keys",
        json!({"name": "walk-key", "namespace_id": namespace}),
        "key_id",
    )
    .await;
    let user = create(
        &gw,
        "/api/v1/users",
        json!({"email": "walk@example.com", "password": "walk password"}),
        "user_id",
    )
    .await;
    create(
        &gw,
        "/api/v1/users",
        json!({"email": "walk-admin@example.com", "password": "walk password", "role": "admin"}),
        "user_id",
    )
    .await;
    let ids = Ids {
        namespace,
        server,
        matcher,
        proxy_rule,
        rule,
        nginx,
        api_key,
        user,
    };

    // A documented required field left out: 400 naming it.
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            let content = &op["requestBody"]["content"]["application/json"];
            let Some(required) = resolve(&doc, &content["schema"])["required"].as_array() else {
                continue;
            };
            for field in required {
                let field = field.as_str().unwrap();
                let mut body = fixup(&m.to_uppercase(), p, content["example"].clone(), &ids, port);
                body.as_object_mut().unwrap().remove(field);
                let path = concrete(p, &ids);
                let (s, v) = call(&gw, &m.to_uppercase(), &path, Some(body)).await;
                assert_eq!(s, 400, "{m} {path} without {field}: {v}");
                assert!(v["detail"].as_str().unwrap().contains(field), "{v}");
            }
        }
    }

    // Every operation; deletes last, dependents first.
    let delete_order = [
        "namespaces/{namespace_id}/route",
        "nginx-configs",
        "rules",
        "proxy-rules",
        "matchers",
        "upstream-servers",
        "namespaces",
    ];
    let mut ops: Vec<(String, String, Value)> = Vec::new();
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            ops.push((m.to_uppercase(), p.clone(), op.clone()));
        }
    }
    let rank = |(m, p, _): &(String, String, Value)| -> usize {
        if m != "DELETE" {
            return 0;
        }
        1 + delete_order
            .iter()
            .position(|r| p.starts_with(&format!("/api/v1/{r}")) || p.ends_with(r))
            .unwrap_or(0)
    };
    ops.sort_by_key(rank);
    let mut unexpected = Vec::new();
    // Objects the walk's own POSTs create, removed before the deletes.
    let mut extra: Vec<String> = Vec::new();
    for (method, template, op) in &ops {
        if method == "DELETE" {
            for path in extra.drain(..) {
                let (s, v) = call(&gw, "DELETE", &path, None).await;
                assert_eq!(s, 200, "{path}: {v}");
            }
        }
        let declared: Vec<u16> = op["responses"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        assert!(declared.contains(&200), "{method} {template}");
        let needs_auth = op.get("security") != Some(&json!([]));
        // Sign-in needs no token and answers 401 for wrong credentials.
        let refuses = needs_auth || template == "/api/v1/auth/login";
        assert_eq!(declared.contains(&401), refuses, "{method} {template}");
        let body = op["requestBody"]["content"]["application/json"]["example"].clone();
        let body = (!body.is_null()).then(|| fixup(method, template, body, &ids, port));
        let mut path = concrete(template, &ids);
        if template.contains("{revision}") {
            // The current revision: restoring it changes no entity.
            let (_, revs) = call(&gw, "GET", "/api/v1/revisions", None).await;
            path = path.replace("999999", &revs["current"].to_string());
        }
        let (s, v) = call(&gw, method, &path, body).await;
        assert!(
            declared.contains(&s),
            "{method} {path}: {s} not among {declared:?}: {v}"
        );
        // Top-level response shape as documented.
        if s == 200 && method == "POST" {
            let made = match template.as_str() {
                "/api/v1/namespaces/{namespace_id}/matchers" => Some(("matchers", "matcher_id")),
                "/api/v1/namespaces/{namespace_id}/rules" => Some(("rules", "rule_id")),
                "/api/v1/proxy-rules" => Some(("proxy-rules", "rule_id")),
                _ => None,
            };
            if let Some((kind, field)) = made {
                extra.push(format!("/api/v1/{kind}/{}", v[field]));
            }
        }
        if s == 200 {
            let want = top_types(
                &doc,
                &op["responses"]["200"]["content"]["application/json"]["schema"],
            );
            let got = match v {
                Value::Array(_) => "array",
                Value::Object(_) => "object",
                _ => "other",
            };
            assert!(
                want.iter().any(|t| t == got),
                "{method} {path}: {got} not among {want:?}: {v}"
            );
        } else {
            assert!(v["detail"].is_string(), "{method} {path}: {v}");
            unexpected.push(format!("{method} {path}: {s} {v}"));
        }
    }
    // With the fixed-up examples every operation succeeds.
    assert!(unexpected.is_empty(), "{unexpected:#?}");

    // Methods the document does not list for a path are refused (405),
    // and paths it does not list are 404.
    for (p, item) in paths {
        let path = concrete(p, &ids);
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if item.get(m.to_lowercase()).is_none() {
                let (s, _) = call(&gw, m, &path, Some(json!({}))).await;
                assert_eq!(s, 405, "{m} {path}");
            }
        }
    }
    for path in [
        "/api/v1/nope",
        "/api/v1/namespaces/1/nope",
        "/api/v1/namespaces/abc",
        "/api",
        "/tokens",
    ] {
        let (s, v) = call(&gw, "GET", path, None).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let _ = std::fs::remove_file(state_path(&gw));
}
