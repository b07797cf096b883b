//! Bad input gets a clear 4xx in the error shape, and the gateway keeps
//! serving afterwards.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::Value;

const LIMITS: &str = "limits:\n  max_body_bytes: 65536\nroutes:\n  - {prefix: /v1, upstream: p}\n";

async fn expect_error(r: reqwest::Response, status: StatusCode, code: &str, mention: &str) {
    assert_eq!(r.status(), status);
    assert!(r.headers().contains_key("x-request-id"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains(mention),
        "message {msg:?} should mention {mention:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_gateway_keeps_serving() {
    let m = mock("a").await;
    let mut gw = Gateway::start(&config(&[server("a", "p", m.addr.port(), "")], LIMITS)).await;
    let c = reqwest::Client::new();
    let chat = gw.url("/v1/chat/completions");
    let json_post = |body: Vec<u8>| {
        post(&c, chat.clone())
            .header("content-type", "application/json")
            .body(body)
    };

    expect_error(
        json_post(b"{\"model\": ".to_vec()).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "JSON",
    )
    .await;
    expect_error(
        json_post(b"{\"model\": 42}".to_vec()).send().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "model",
    )
    .await;
    expect_error(
        json_post(b"{\"model\":\"m\",\"stream\":\"yes\"}".to_vec())
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "stream",
    )
    .await;
    expect_error(
        json_post(b"{\"model\":\"m\",\"max_tokens\":-5}".to_vec())
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "max_tokens",
    )
    .await;
    expect_error(
        json_post(b"{\"model\":\"m\",\"messages\":{}}".to_vec())
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "messages",
    )
    .await;
    expect_error(
        json_post(b"{\"model\":\"\xff\xfe\"}".to_vec())
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "UTF-8",
    )
    .await;

    // Oversize: declared by content-length, and discovered while reading a chunked body.
    let big = vec![b'x'; 65537];
    expect_error(
        json_post(big.clone()).send().await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "65536",
    )
    .await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
    let r = post(&c, chat.clone())
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    // The gateway answers 413 before the client finished sending; a client
    // may see the answer or, having its upload cut, a send error.
    if let Ok(r) = r {
        expect_error(
            r,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "65536",
        )
        .await;
    }

    expect_error(
        gw.get(&c, "/nowhere").await,
        StatusCode::NOT_FOUND,
        "route_not_found",
        "/nowhere",
    )
    .await;

    // CRLF inside a header value and a malformed request line: raw bytes.
    let resp = gw.raw(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nX-Evil: a\rb\r\n\r\n");
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");
    let resp = gw.raw(b"GARBAGE\r\n\r\n");
    assert!(
        resp.starts_with("HTTP/1.1 400") || resp.is_empty(),
        "{resp:?}"
    );

    assert_eq!(served(&m), 0, "no bad request reached the upstream");
    // Still serving.
    assert!(gw.alive());
    let r = post(&c, chat.clone())
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c.get(gw.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[test]
fn check_lists_every_problem_with_its_path() {
    let yaml = r#"
listen: {proxy: "not-an-address"}
bogus_section: 1
auth:
  keys: [{name: k, key: sk-1, namespace: ghost}]
namespaces:
  - {namespace_code: a}
  - {namespace_code: a}
  - {namespace_code: b}
upstream_servers:
  - {server_name: s, server_address: 127.0.0.1, server_port: 9, weight: 0, colour: blue}
  - {server_name: t, server_address: 127.0.0.1, server_port: 9}
matchers:
  - {namespace: a, matcher_type: header, match_field: x, match_operator: regex, match_value: "(", action: allow}
  - {namespace: a, matcher_type: header, match_field: x, match_operator: gt, match_value: ten}
proxy_rules:
  - {upstream: missing-pool, path_pattern: "[", priority: 1}
routes:
  - {prefix: /v1, upstream: t}
  - {prefix: /v1/, upstream: t}
timeouts: {connect_ms: "soon"}
rules:
  - {rule_name: r1, rule_type: rate_limit, rule_config: {max_requests: 5, algorithm: leaky}}
  - {rule_name: r2, rule_type: token_limit, rule_config: {time_window_minutes: 5}}
  - {rule_name: r3, rule_type: magic, rule_config: {}}
  - {rule_name: r4, namespace: nowhere, rule_type: concurrency, rule_config: {max_concurrent: 1}}
  - {rule_name: r5, namespace: b, rule_type: concurrency, rule_config: {max_concurrent: 1}}
counters: {store: redis}
"#;
    let out = sluice_check(yaml);
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "bogus_section: unknown key",
        "listen.proxy:",
        "timeouts.connect_ms:",
        "upstream_servers[0].colour",
        "namespaces[1].namespace_code: duplicate",
        "auth.keys[0].namespace: namespace \"ghost\"",
        "matchers[0]: match_value is not a valid regex",
        "matchers[1]: match_operator gt needs a numeric match_value",
        "proxy_rules[0].upstream: upstream \"missing-pool\"",
        "proxy_rules[0]: path_pattern is not a valid regex",
        "routes[1].prefix: same prefix",
        "every API key is bound",
        "rules[0]: rule_config.algorithm: expected one of",
        "rules[1]: rule_config.time_window_minutes: has no effect",
        "rules[2]: rule_type: unknown type \"magic\"",
        "rules[3].namespace: namespace \"nowhere\" is not defined",
        "rules[4].namespace: no request can reach namespace \"b\"",
        "counters.redis_url: store: redis needs a redis_url",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    // The shipped config is valid.
    let out = std::process::Command::new(sluice_bin())
        .args([
            "check",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/sluice.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
