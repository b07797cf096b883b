//! Users and tokens end to end with the real binary: the client flow of
//! the internal channel (sign in, call, refresh, call) on two instances
//! sharing the MySQL store, the Redis bus and Redis counters; refresh
//! rotation and a reused refresh token revoking its family and the
//! user's sessions everywhere within a second; deactivation; identical
//! answers for a wrong password and an unknown e-mail; sign-in attempts
//! limited; tokens of an external issuer verified against its JWKS (file
//! and URL); the internal channel not held to quotas.

use crate::common::*;
use base64::Engine;
use serde_json::{json, Value};
use std::time::Duration;

const TOKEN: &str = "id-tok";
const SECRET: &str = "an-hs256-secret-of-at-least-32-chars!";

fn with_jwt(yaml: &str, jwt: &str) -> String {
    let head = "auth:\n  enabled: true\n";
    assert!(yaml.contains(head));
    yaml.replacen(head, &format!("{head}{jwt}"), 1)
}

fn redis_counters(prefix: &str) -> String {
    format!(
        "counters:\n  store: redis\n  redis_url: \"{}\"\n  key_prefix: \"{prefix}counters:\"\n  timeout_ms: 500\n",
        redis_base()
    )
}

async fn login(gw: &Gateway, email: &str, password: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    if status == 200 {
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn refresh(gw: &Gateway, token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(gw.url("/api/v1/auth/refresh"))
        // Any declared type: the body is JSON whatever the header says.
        .header("content-type", "text/plain")
        .body(json!({"refresh_token": token}).to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn internal_chat(gw: &Gateway, bearer: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url("/internal/v1/chat/completions"))
        .bearer_auth(bearer)
        .json(&chat_body(false))
        .send()
        .await
        .unwrap()
}

async fn chat_status(gw: &Gateway, bearer: &str) -> u16 {
    internal_chat(gw, bearer).await.status().as_u16()
}

fn s(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refresh_rotation_and_revocation_on_two_instances() {
    let m = mock("a").await;
    let store = StoreGuard::new();
    let rest = format!("{}{}", store.yaml(None), redis_counters(&store.prefix));
    let yaml = with_jwt(
        &admin_config(m.addr.port(), TOKEN, &rest),
        &format!(
            "  jwt: {{secret: \"{SECRET}\", access_ttl_s: 600}}\n  login: {{per_email_per_minute: 50}}\n"
        ),
    );
    let one = Gateway::start(&yaml).await;
    let two = Gateway::start(&yaml).await;
    let api = Admin::new(&one, TOKEN);

    let (st, v) = api
        .post(
            "/api/v1/users",
            json!({"email": " Dev@Example.com", "password": "correct horse battery", "namespace_id": 1}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let id = v["user_id"].as_u64().unwrap();
    assert_eq!(v["user"]["email"], "dev@example.com");
    assert_eq!(v["user"]["role"], "user");
    assert!(!v.to_string().contains("argon2"), "no hash shown: {v}");
    // Refusals: a short password, a bad address, a taken one.
    for bad in [
        json!({"email": "x@example.com", "password": "short"}),
        json!({"email": "not-an-address", "password": "long enough pw"}),
    ] {
        let (st, v) = api.post("/api/v1/users", bad).await;
        assert_eq!(st, 400, "{v}");
    }
    let (st, _) = api
        .post(
            "/api/v1/users",
            json!({"email": "DEV@example.com", "password": "long enough pw"}),
        )
        .await;
    assert_eq!(st, 409);

    // The seed's flow: sign in (on the other instance, once the user is
    // there), call, refresh, call.
    let pair = eventually_ok("sign-in on the other instance", async || {
        match login(&two, "dev@example.com", "correct horse battery").await {
            (200, v) => Ok(v),
            (st, v) => Err(format!("{st} {v}")),
        }
    })
    .await;
    assert_eq!(pair["token_type"], "bearer");
    assert_eq!(pair["expires_in"], 600);
    let (access1, refresh1) = (s(&pair, "access_token"), s(&pair, "refresh_token"));
    assert!(access1.starts_with("eyJ"));
    assert_eq!(chat_status(&one, &access1).await, 200);
    assert_eq!(chat_status(&two, &access1).await, 200);
    // A refresh token is not an access token, nor the other way round.
    assert_eq!(chat_status(&one, &refresh1).await, 401);
    assert_eq!(refresh(&one, &access1).await.0, 401);

    let (st, pair2) = refresh(&one, &refresh1).await;
    assert_eq!(st, 200, "{pair2}");
    let (access2, refresh2) = (s(&pair2, "access_token"), s(&pair2, "refresh_token"));
    assert_ne!(refresh2, refresh1);
    assert_eq!(chat_status(&two, &access2).await, 200);

    // The first refresh token again, on the other instance: taken as
    // stolen. The family is revoked at once everywhere, and every token of
    // the user ends on every instance within a second.
    let (st, v) = refresh(&two, &refresh1).await;
    assert_eq!(st, 401, "{v}");
    assert!(s(&v, "message").contains("already used"), "{v}");
    let (st, v) = refresh(&one, &refresh2).await;
    assert_eq!(st, 401, "{v}");
    eventually_within(
        Duration::from_secs(1),
        "the family's access token refused on both instances",
        async || {
            chat_status(&two, &access2).await == 401 && chat_status(&one, &access2).await == 401
        },
    )
    .await;
    let (_, users) = api.get(&format!("/api/v1/users/{id}")).await;
    assert_eq!(users["token_version"], 1, "{users}");

    // A new sign-in works; deactivating the user ends it everywhere.
    let (st, pair3) = login(&one, "dev@example.com", "correct horse battery").await;
    assert_eq!(st, 200, "{pair3}");
    let access3 = s(&pair3, "access_token");
    eventually_within(
        Duration::from_secs(1),
        "the new token on the other instance",
        async || chat_status(&two, &access3).await == 200,
    )
    .await;
    let (st, v) = api
        .put(&format!("/api/v1/users/{id}"), json!({"is_active": 0}))
        .await;
    assert_eq!(st, 200, "{v}");
    eventually_within(
        Duration::from_secs(1),
        "a deactivated user's token refused on the other instance",
        async || chat_status(&two, &access3).await == 401,
    )
    .await;

    // Wrong password, unknown e-mail and inactive user: one answer.
    let wrong = login(&one, "dev@example.com", "wrong horse battery").await;
    let unknown = login(&one, "nobody@example.com", "correct horse battery").await;
    let inactive = login(&one, "dev@example.com", "correct horse battery").await;
    for (st, v) in [&wrong, &unknown, &inactive] {
        assert_eq!(*st, 401, "{v}");
        assert_eq!(v["message"], wrong.1["message"]);
        assert_eq!(v["code"], "unauthorized");
    }

    // Revoke-sessions and password reset through the admin API.
    api.put(&format!("/api/v1/users/{id}"), json!({"is_active": 1}))
        .await;
    let (st, v) = api
        .post(
            &format!("/api/v1/users/{id}/password"),
            json!({"password": "another long one"}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        login(&one, "dev@example.com", "correct horse battery")
            .await
            .0,
        401
    );
    let (st, pair4) = login(&one, "dev@example.com", "another long one").await;
    assert_eq!(st, 200, "{pair4}");
    let access4 = s(&pair4, "access_token");
    assert_eq!(chat_status(&one, &access4).await, 200);
    let (st, _) = api
        .post(&format!("/api/v1/users/{id}/revoke-sessions"), json!({}))
        .await;
    assert_eq!(st, 200);
    eventually_within(
        Duration::from_secs(1),
        "ended sessions refused on the other instance",
        async || chat_status(&two, &access4).await == 401,
    )
    .await;
}

/// A password hash from `sluice hash-password`.
fn hash_password(pw: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(sluice_bin())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{pw}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_limited_per_email_and_tokens_are_checked() {
    let m = mock("a").await;
    let hash = hash_password("yaml user password");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let yaml = with_jwt(
        &one_mock(
            m.addr.port(),
            &format!("users:\n  - {{email: ops@example.com, password_hash: \"{hash}\"}}\n"),
        ),
        &format!(
            "  jwt: {{secret: \"{SECRET}\"}}\n  login: {{per_email_per_minute: 3, per_address_per_minute: 100}}\n"
        ),
    );
    let gw = Gateway::start(&yaml).await;
    let (st, pair) = login(&gw, "OPS@example.com", "yaml user password").await;
    assert_eq!(st, 200, "{pair}");
    assert_eq!(pair["expires_in"], 3600);
    let access = s(&pair, "access_token");
    assert_eq!(chat_status(&gw, &access).await, 200);
    // Tampered and foreign tokens are refused.
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(chat_status(&gw, &tampered).await, 401);
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("k1".into()),
            ..Default::default()
        },
        &json!({"iss": "sluice", "sub": "1", "exp": 4_000_000_000u64, "typ": "access",
            "sid": "x", "ver": 0, "role": "user", "iat": 0}),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-of-at-least-32-chars"),
    )
    .unwrap();
    assert_eq!(chat_status(&gw, &foreign).await, 401);
    // Three attempts a minute for one e-mail: the fourth is refused even
    // with the right password, another e-mail is not.
    for _ in 0..2 {
        assert_eq!(login(&gw, "ops@example.com", "wrong").await.0, 401);
    }
    let (st, v) = login(&gw, "ops@example.com", "yaml user password").await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["code"], "rate_limited");
    assert_eq!(login(&gw, "other@example.com", "x").await.0, 401);
    // Bad bodies are 400s, whatever their content type.
    let r = reqwest::Client::new()
        .post(gw.url("/api/v1/auth/login"))
        .body("{\"email\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// An ES256 key pair: the PKCS#8 PEM of its private key and its JWK.
fn es256_key(kid: &str) -> (String, Value) {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = kp.public_key_raw();
    assert_eq!(raw.len(), 65);
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65])});
    (kp.serialize_pem(), jwk)
}

fn es256_token(pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Serves `body` to every HTTP request on a loopback port.
async fn serve_static(body: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_external_issuers_are_verified_with_their_jwks() {
    let m = mock("a").await;
    let (pem, jwk) = es256_key("corp-1");
    let (other_pem, other_jwk) = es256_key("idp-1");
    let (stranger_pem, _) = es256_key("corp-1");
    let file = std::env::temp_dir().join(format!("sluice-jwks-{}.json", std::process::id()));
    std::fs::write(&file, json!({"keys": [jwk]}).to_string()).unwrap();
    let url_port = serve_static(json!({"keys": [other_jwk]}).to_string()).await;
    let issuers = format!(
        "  issuers:\n    - {{name: corp, issuer: \"https://corp.example\", audience: [sluice], jwks_file: \"{}\", namespace_claim: tenant}}\n    - {{name: idp, issuer: \"https://idp.example\", audience: [gw], jwks_url: \"http://127.0.0.1:{url_port}/jwks\"}}\n",
        file.display()
    );
    let yaml = with_jwt(
        &config_ns(
            &[server("a", "p", m.addr.port(), "")],
            "  - namespace_code: team-a\n",
            CATCH_ALL,
        ),
        &issuers,
    );
    let gw = Gateway::start(&yaml).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |sub: &str, extra: Value| {
        let mut c = json!({"iss": "https://corp.example", "aud": "sluice", "sub": sub,
            "exp": now + 300, "iat": now, "tenant": "team-a"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let good = es256_token(&pem, "corp-1", &claims("alice", json!({})));
    let r = internal_chat(&gw, &good).await;
    assert_eq!(r.status(), 200);
    // The decision trace: the claim's namespace, the subject; only the same
    // subject reads it.
    let trace_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let trace = reqwest::Client::new()
        .get(gw.url(&format!("/internal/v1/debug/trace/{trace_id}")))
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status(), 200);
    let t: Value = trace.json().await.unwrap();
    assert_eq!(t["namespace"], "team-a", "{t}");
    assert_eq!(t["key_name"], "jwt:corp", "{t}");
    assert_eq!(t["subject"], "alice", "{t}");
    let bob = es256_token(&pem, "corp-1", &claims("bob", json!({})));
    let r = reqwest::Client::new()
        .get(gw.url(&format!("/internal/v1/debug/trace/{trace_id}")))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Refusals: audience, issuer, expiry, a stranger's key under a known
    // kid, an unknown kid, a namespace the gateway lacks.
    for (token, status) in [
        (
            es256_token(&pem, "corp-1", &claims("a", json!({"aud": "other"}))),
            401,
        ),
        (
            es256_token(&pem, "corp-1", &claims("a", json!({"iss": "https://evil"}))),
            401,
        ),
        (
            es256_token(&pem, "corp-1", &claims("a", json!({"exp": now - 120}))),
            401,
        ),
        (
            es256_token(&stranger_pem, "corp-1", &claims("a", json!({}))),
            401,
        ),
        (es256_token(&pem, "nope", &claims("a", json!({}))), 401),
        (
            es256_token(&pem, "corp-1", &claims("a", json!({"tenant": "ghost"}))),
            403,
        ),
    ] {
        assert_eq!(chat_status(&gw, &token).await, status, "{token}");
    }
    // An HS256 token "signed" with the public key is not accepted.
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("corp-1".into()),
            ..Default::default()
        },
        &claims("a", json!({})),
        &jsonwebtoken::EncodingKey::from_secret(pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(chat_status(&gw, &confused).await, 401);

    // The URL issuer: its keys fetched at start.
    let idp = es256_token(
        &other_pem,
        "idp-1",
        &json!({"iss": "https://idp.example", "aud": ["x", "gw"], "sub": "svc",
            "exp": now + 300}),
    );
    assert_eq!(chat_status(&gw, &idp).await, 200);
    let _ = std::fs::remove_file(&file);
}

/// Quotas hold the external channel; the internal channel is not held to
/// them (its usage is still in the ledger), unless a rule names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_channel_is_not_held_to_quotas() {
    let m = mock("a").await;
    let yaml = admin_config(
        m.addr.port(),
        TOKEN,
        "models:\n  - name: priced\n    deployments:\n      - {name: d, upstream: p, price_input_per_m: 10, price_output_per_m: 30}\nrules:\n  - rule_name: tiny\n    rule_type: budget\n    rule_config: {max_usd: 0.0001, key_by: api_key}\n",
    );
    let gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    let body = json!({"model": "priced", "max_tokens": 16,
        "messages": [{"role": "user", "content": "hello there"}]});
    let call = async |path: &str| {
        post(&c, gw.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(call("/v1/chat/completions").await, 402);
    for _ in 0..3 {
        assert_eq!(call("/internal/v1/chat/completions").await, 200);
    }
    let (st, v) = Admin::new(&gw, TOKEN).get("/api/v1/spend").await;
    assert_eq!(st, 200, "{v}");
    assert!(v["total_micros"].as_u64().unwrap() > 100, "{v}");
}
