//! API keys created through the admin API, on two instances sharing the
//! MySQL store and the Redis bus: the secret is answered once and listed
//! masked; a key made on one instance works on the other within a second;
//! a rotation keeps the previous secret for its overlap; a revocation is
//! refused on the other instance within a second; an expiry is honoured.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "vk-tok";

async fn status_with(gw: &Gateway, key: &str) -> u16 {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_rotated_and_revoked_on_every_instance() {
    let m = mock("a").await;
    let store = StoreGuard::new();
    let yaml = admin_config(m.addr.port(), TOKEN, &store.yaml(None));
    let one = Gateway::start(&yaml).await;
    let two = Gateway::start(&yaml).await;
    let api = Admin::new(&one, TOKEN);

    let (s, v) = api
        .post("/api/v1/api-keys", json!({"name": "ci", "namespace_id": 1}))
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["key_id"].as_u64().unwrap();
    let first = v["key"].as_str().unwrap().to_string();
    assert!(
        first.starts_with("sk-sluice-") && first.len() == 50,
        "{first}"
    );
    assert_eq!(status_with(&one, &first).await, 200);
    eventually_within(
        Duration::from_secs(1),
        "the key works on the other instance",
        async || status_with(&two, &first).await == 200,
    )
    .await;
    // Listed masked; the secret is never shown again.
    let (s, v) = Admin::new(&two, TOKEN).get("/api/v1/api-keys").await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["name"], "ci");
    assert!(v[0]["masked"].as_str().unwrap().ends_with('…'), "{v}");
    assert!(!v.to_string().contains(&first), "{v}");
    // A duplicate name and a missing namespace are refused.
    let (s, _) = api.post("/api/v1/api-keys", json!({"name": "ci"})).await;
    assert_eq!(s, 409);
    let (s, _) = api
        .post("/api/v1/api-keys", json!({"name": "x", "namespace_id": 99}))
        .await;
    assert_eq!(s, 400);

    // Rotation: the new secret works, the previous one during the overlap.
    let (s, v) = api
        .post(
            &format!("/api/v1/api-keys/{id}/rotate"),
            json!({"overlap_seconds": 600}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let second = v["key"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    eventually_within(
        Duration::from_secs(1),
        "the rotated key on the other instance",
        async || status_with(&two, &second).await == 200,
    )
    .await;
    assert_eq!(status_with(&two, &first).await, 200);
    // Without an overlap the previous secret stops at once.
    let (_, v) = api
        .post(
            &format!("/api/v1/api-keys/{id}/rotate"),
            json!({"overlap_seconds": 0}),
        )
        .await;
    let third = v["key"].as_str().unwrap().to_string();
    eventually_within(
        Duration::from_secs(1),
        "the third secret on the other instance",
        async || status_with(&two, &third).await == 200,
    )
    .await;
    assert_eq!(status_with(&two, &second).await, 401);
    assert_eq!(status_with(&two, &first).await, 401);

    // Revoked on one, refused on the other within a second.
    let (s, _) = api.delete(&format!("/api/v1/api-keys/{id}")).await;
    assert_eq!(s, 200);
    eventually_within(
        Duration::from_secs(1),
        "the revoked key refused on the other instance",
        async || status_with(&two, &third).await == 401,
    )
    .await;
    assert_eq!(status_with(&one, &third).await, 401);

    // An expiry is honoured.
    let (_, v) = api
        .post(
            "/api/v1/api-keys",
            json!({"name": "short", "expires_in_seconds": 1}),
        )
        .await;
    let short = v["key"].as_str().unwrap().to_string();
    eventually_within(
        Duration::from_secs(4),
        "the short key expired",
        async || {
            let r = reqwest::Client::new()
                .post(one.url("/v1/chat/completions"))
                .bearer_auth(&short)
                .json(&chat_body(false))
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap_or_default();
            v["error"]["message"] == "this API key has expired"
        },
    )
    .await;
}
