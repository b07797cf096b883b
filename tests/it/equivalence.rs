//! Policy holds for equivalent inputs: the same request spelled another way
//! (declared content type, JSON key order, whitespace and `\u` escapes,
//! path spelling, header name case) gets the same decision from the real
//! gateway: the same status, the same upstream and the same output cap.

use crate::common::*;
use serde_json::{json, Value};

/// A small deterministic generator (no dependency, reproducible runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// `v` as JSON text with random key order, whitespace and `\u` escapes.
fn respell(v: &Value, r: &mut Lcg, out: &mut String) {
    let ws = |r: &mut Lcg, out: &mut String| {
        for _ in 0..r.next(3) {
            out.push([' ', '\n', '\t', '\r'][r.next(4)]);
        }
    };
    ws(r, out);
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            for i in (1..keys.len()).rev() {
                keys.swap(i, r.next(i + 1));
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                ws(r, out);
                string(k, r, out);
                ws(r, out);
                out.push(':');
                respell(&map[*k], r, out);
            }
            ws(r, out);
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                respell(item, r, out);
            }
            out.push(']');
        }
        Value::String(s) => string(s, r, out),
        other => out.push_str(&other.to_string()),
    }
    ws(r, out);
}

fn string(s: &str, r: &mut Lcg, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || r.next(3) == 0 => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const CONTENT_TYPES: [Option<&str>; 5] = [
    None,
    Some("application/json"),
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("application/octet-stream"),
];

const PATHS: [&str; 5] = [
    "/v1/chat/completions",
    "//v1/chat/completions",
    "/v1/./chat/completions",
    "/v1/chat/%63ompletions",
    "/v1/x/../chat/completions",
];

fn yaml(a: u16, b: u16) -> String {
    format!(
        r#"{TEST_SERVER}listen:
  proxy: "{{proxy}}"
auth:
  enabled: true
  keys:
    - {{name: test, key: sk-test, models: [gpt-4o-mini, "special-*"]}}
default_namespace: default
namespaces:
  - namespace_code: default
upstream_servers:
{}
{}
matchers:
  - {{namespace: default, matcher_type: body, match_field: metadata.tier, match_operator: eq, match_value: banned, action: deny, priority: 1}}
  - {{namespace: default, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: blocked, action: deny, priority: 2}}
proxy_rules:
  - {{rule_name: special, upstream: b, body_pattern: '"model":"special', priority: 1}}
routes:
  - {{prefix: /, upstream: a}}
rules:
  - {{rule_name: cap, rule_type: token_limit, rule_config: {{max_output_tokens: 20}}}}
"#,
        server("a", "a", a, ""),
        server("b", "b", b, "")
    )
}

/// What the gateway decided: status, the upstream that answered, the
/// output limit the upstream saw.
fn decide(
    gw: &Gateway,
    path: &str,
    content_type: Option<&str>,
    tenant_header: &str,
    tenant: Option<&str>,
    body: String,
) -> (u16, Option<String>, Option<String>) {
    // Raw path spellings: reqwest would normalise some of them itself.
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    if let Some(t) = tenant {
        head.push_str(&format!("{tenant_header}: {t}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    let resp = gw.raw(head.as_bytes());
    let status = resp.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let h = &resp[..resp.find("\r\n\r\n").unwrap_or(resp.len())];
    (
        status,
        head_value(h, "x-mock-id"),
        head_value(h, "x-mock-seen-max-tokens"),
    )
}

/// Expected status, upstream (`x-mock-id`) and output cap the upstream saw.
type Decision = (u16, Option<&'static str>, Option<&'static str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_spellings_get_the_same_decision() {
    let a = mock("a").await;
    let b = mock("b").await;
    let gw = Gateway::start(&yaml(a.addr.port(), b.addr.port())).await;
    let msg = json!([{"role": "user", "content": "hello \"there\" ümlaut 中文"}]);
    let cases: Vec<(&str, Value, Option<&str>, Decision)> = vec![
        (
            "allowed",
            json!({"model": "gpt-4o-mini", "max_tokens": 100, "messages": msg, "metadata": {"tier": "gold"}}),
            None,
            (200, Some("a"), Some("20")),
        ),
        (
            "model not allowed",
            json!({"model": "gpt-4o", "messages": msg}),
            None,
            (403, None, None),
        ),
        (
            "body matcher denies",
            json!({"model": "gpt-4o-mini", "messages": msg, "metadata": {"tier": "banned"}}),
            None,
            (403, None, None),
        ),
        (
            "body pattern routes",
            json!({"messages": msg, "model": "special-1", "max_tokens": 5}),
            None,
            (200, Some("b"), Some("5")),
        ),
        (
            "header matcher denies",
            json!({"model": "gpt-4o-mini", "messages": msg}),
            Some("blocked"),
            (403, None, None),
        ),
    ];
    let mut r = Lcg(0x5eed);
    for (name, body, tenant, (status, upstream, cap)) in &cases {
        for round in 0..12 {
            let mut text = String::new();
            respell(body, &mut r, &mut text);
            let ct = CONTENT_TYPES[r.next(CONTENT_TYPES.len())];
            let path = PATHS[r.next(PATHS.len())];
            let header = ["x-tenant", "X-Tenant", "X-TENANT"][r.next(3)];
            let got = decide(&gw, path, ct, header, *tenant, text.clone());
            let want = (
                *status,
                upstream.map(str::to_string),
                cap.map(str::to_string),
            );
            assert_eq!(
                got, want,
                "{name} round {round}: {path} {ct:?} {header}\n{text}"
            );
        }
    }
}
