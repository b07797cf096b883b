//! Observability through the real gateway: the Prometheus families move
//! with real traffic and carry bounded labels, the metrics token guards
//! `/metrics` and `/metrics/summary`, the summary and the admin
//! usage/monitoring figures match the traffic sent, and the JSON access log
//! parses and holds no secret.

use crate::common::*;
use futures_util::StreamExt;
use serde_json::Value;

const METRICS_TOKEN: &str = "metrics-secret-token";

/// Namespaces `default` and `team` (claimed by `x-tenant: team`, under a
/// token rule so its responses are metered) and `limited` (one request a
/// minute); keys `test`, `alice` and `bob`; routes `/v1` and `/alt` (stripped) to
/// pool `p`, `/dead` to a pool whose two servers refuse connections.
fn obs_config(port: u16, extra: &str) -> String {
    let (dead, dead2) = (refused_for_good(), refused_for_good());
    format!(
        r#"{TEST_SERVER}listen:
  proxy: "{{proxy}}"
  admin: "{{admin}}"
admin:
  tokens: [admin-token]
metrics:
  token: {METRICS_TOKEN}
auth:
  keys:
    - {{name: test, key: sk-test}}
    - {{name: alice, key: sk-alice-0123456789}}
    - {{name: bob, key: sk-bob-abcdefghij}}
default_namespace: default
namespaces:
  - namespace_code: default
  - namespace_code: team
  - namespace_code: limited
matchers:
  - {{namespace: team, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: team, action: allow, priority: 1}}
  - {{namespace: limited, matcher_type: header, match_field: x-tenant, match_operator: eq, match_value: limited, action: allow, priority: 2}}
upstream_servers:
  - {{server_name: m1, pool: p, server_address: 127.0.0.1, server_port: {port}}}
  - {{server_name: gone, pool: dead, server_address: 127.0.0.1, server_port: {dead}}}
  - {{server_name: gone2, pool: dead, server_address: 127.0.0.1, server_port: {dead2}}}
routes:
  - {{prefix: /dead, upstream: dead}}
  - {{prefix: /v1, upstream: p}}
  - {{prefix: /alt, upstream: p, strip_prefix: true}}
rules:
  - {{rule_name: team-budget, namespace: team, rule_type: token_limit, rule_config: {{max_output_tokens: 1000}}}}
  - {{rule_name: one-per-minute, namespace: limited, rule_type: rate_limit, rule_config: {{max_requests: 1, time_window_seconds: 60}}}}
{extra}"#
    )
}

/// The sum of the samples of `name` whose labels include every `labels` pair.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let pairs: Vec<&str> = label_text.split(',').collect();
        if labels
            .iter()
            .all(|(k, v)| pairs.contains(&format!("{k}=\"{v}\"").as_str()))
        {
            *found.get_or_insert(0.0) += value.parse::<f64>().unwrap_or(f64::NAN);
        }
    }
    found
}

async fn scrape(client: &reqwest::Client, gw: &Gateway) -> String {
    gw.metrics(client, METRICS_TOKEN).await
}

/// Polls `/metrics` until `cond` holds (requests are recorded in
/// `logging`, just after the client has its response).
async fn scrape_until(
    client: &reqwest::Client,
    gw: &Gateway,
    what: &str,
    cond: impl Fn(&str) -> bool,
) -> String {
    eventually_ok(what, async || {
        let text = scrape(client, gw).await;
        if cond(&text) {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await
}

async fn chat_as(
    client: &reqwest::Client,
    gw: &Gateway,
    path: &str,
    key: &str,
    tenant: Option<&str>,
    stream: bool,
) -> reqwest::Response {
    let mut req = client
        .post(gw.url(path))
        .bearer_auth(key)
        .json(&chat_body(stream));
    if let Some(t) = tenant {
        req = req.header("x-tenant", t);
    }
    req.send().await.expect("chat")
}

/// Reads a response whole (streams included).
async fn drain(r: reqwest::Response) -> u16 {
    let status = r.status().as_u16();
    let mut body = r.bytes_stream();
    while let Some(chunk) = body.next().await {
        chunk.expect("body chunk");
    }
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_families_move_with_traffic_and_labels_stay_bounded() {
    let m = mock("m1").await;
    let gw = Gateway::start(&obs_config(m.addr.port(), "")).await;
    let client = reqwest::Client::new();

    // The token guards /metrics; a wrong token or an API key is refused.
    let r = client.get(gw.url("/metrics")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    let r = client
        .get(gw.url("/metrics"))
        .bearer_auth("sk-test")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);

    for _ in 0..3 {
        assert_eq!(
            drain(chat_as(&client, &gw, "/v1/chat/completions", "sk-test", None, false).await)
                .await,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            drain(
                chat_as(
                    &client,
                    &gw,
                    "/v1/chat/completions",
                    "sk-test",
                    Some("team"),
                    true
                )
                .await
            )
            .await,
            200
        );
    }
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-test",
                Some("limited"),
                false
            )
            .await
        )
        .await,
        200
    );
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-test",
                Some("limited"),
                false
            )
            .await
        )
        .await,
        429
    );
    assert_eq!(
        drain(chat_as(&client, &gw, "/dead/x", "sk-test", None, false).await).await,
        502
    );
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions?key=sk-leak",
                "sk-wrong-key-123456",
                None,
                false
            )
            .await
        )
        .await,
        401
    );

    let text = scrape_until(&client, &gw, "9 requests recorded", |t| {
        sample(t, "sluice_requests_total", &[]) == Some(9.0)
            && sample(t, "sluice_inflight_requests", &[]) == Some(0.0)
    })
    .await;
    let got = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    let ok_default = [
        ("namespace", "default"),
        ("route", "/v1"),
        ("model", "gpt-4o-mini"),
        ("provider", "openai"),
        ("class", "2xx"),
    ];
    assert_eq!(
        got("sluice_requests_total", &ok_default),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        got(
            "sluice_requests_total",
            &[("namespace", "team"), ("class", "2xx")]
        ),
        Some(2.0)
    );
    assert_eq!(
        got(
            "sluice_requests_total",
            &[
                ("namespace", "limited"),
                ("provider", "openai"),
                ("class", "4xx")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        got(
            "sluice_requests_total",
            &[
                ("namespace", "default"),
                ("route", "/dead"),
                ("class", "5xx")
            ]
        ),
        Some(1.0)
    );
    // Rejected before a namespace was known: bounded `none` labels.
    assert_eq!(
        got(
            "sluice_requests_total",
            &[
                ("namespace", "none"),
                ("route", "none"),
                ("model", "none"),
                ("class", "4xx")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        got(
            "sluice_request_duration_seconds_count",
            &[("namespace", "default"), ("route", "/v1")]
        ),
        Some(3.0)
    );
    assert!(
        got("sluice_upstream_ttfb_seconds_count", &[("upstream", "p")]).unwrap_or(0.0) >= 6.0,
        "{text}"
    );
    assert_eq!(
        got(
            "sluice_ttft_seconds_count",
            &[("namespace", "team"), ("model", "gpt-4o-mini")]
        ),
        Some(2.0)
    );
    assert!(
        got("sluice_inter_token_seconds_count", &[("namespace", "team")]).unwrap_or(0.0) >= 2.0
    );
    let out = got(
        "sluice_tokens_total",
        &[
            ("direction", "out"),
            ("namespace", "team"),
            ("model", "gpt-4o-mini"),
        ],
    );
    assert!(out.unwrap_or(0.0) >= 2.0 * 16.0, "{text}");
    assert!(
        got(
            "sluice_tokens_total",
            &[("direction", "in"), ("namespace", "team")]
        )
        .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        got("sluice_cost_total", &[("namespace", "team")]),
        Some(0.0)
    );
    // Unmetered answers (no token rule) count the usage the upstream
    // reported: three default-namespace answers and one `limited` one, 16
    // completion tokens each.
    assert_eq!(
        got(
            "sluice_tokens_total",
            &[("direction", "out"), ("namespace", "default")]
        ),
        Some(48.0),
        "{text}"
    );
    assert_eq!(
        got(
            "sluice_tokens_total",
            &[("direction", "out"), ("namespace", "limited")]
        ),
        Some(16.0)
    );
    assert!(
        got(
            "sluice_tokens_total",
            &[("direction", "in"), ("namespace", "default")]
        )
        .unwrap_or(0.0)
            > 0.0
    );
    assert_eq!(
        got(
            "sluice_limit_denials_total",
            &[
                ("namespace", "limited"),
                ("rule", "one-per-minute"),
                ("code", "rate_limited")
            ]
        ),
        Some(1.0)
    );
    assert!(
        got(
            "sluice_upstream_failures_total",
            &[("upstream", "dead"), ("reason", "connect_refused")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert!(
        got(
            "sluice_gateway_overhead_seconds_count",
            &[("stage", "total")]
        )
        .unwrap_or(0.0)
            >= 7.0
    );
    assert!(
        got(
            "sluice_gateway_overhead_seconds_count",
            &[("stage", "request")]
        )
        .unwrap_or(0.0)
            >= 7.0
    );
    assert_eq!(
        got(
            "sluice_upstream_healthy",
            &[("upstream", "p"), ("server", "m1")]
        ),
        Some(1.0)
    );
    assert_eq!(
        got(
            "sluice_upstream_circuit_open",
            &[("upstream", "p"), ("server", "m1")]
        ),
        Some(0.0)
    );
    assert_eq!(got("sluice_inflight_streams", &[]), Some(0.0));
    assert_eq!(got("sluice_config_version", &[]), Some(1.0));
    assert_eq!(got("sluice_config_reloads_total", &[]), Some(0.0));
    // Every metric the shipped Grafana dashboard queries exists.
    let dashboard = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/conf/grafana-dashboard.json"
    ))
    .expect("dashboard");
    for piece in dashboard.split("sluice_").skip(1) {
        let name: String = piece
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let family = format!("# TYPE sluice_{} ", name.trim_end_matches("_bucket"));
        assert!(
            text.contains(&family),
            "the dashboard queries sluice_{name}, which /metrics lacks"
        );
    }
    // Bounded labels: no key, no raw path, no query.
    for leak in ["sk-test", "sk-wrong", "sk-leak", "chat/completions", "key="] {
        assert!(!text.contains(leak), "/metrics holds {leak:?}");
    }

    // A config change through the admin API moves the version.
    let r = client
        .post(gw.admin_url("/api/v1/namespaces"))
        .bearer_auth("admin-token")
        .json(&serde_json::json!({"namespace_name": "New", "namespace_code": "fresh"}))
        .send()
        .await
        .expect("admin");
    assert_eq!(r.status(), 200);
    let text = scrape(&client, &gw).await;
    assert_eq!(sample(&text, "sluice_config_version", &[]), Some(2.0));
    assert_eq!(sample(&text, "sluice_config_reloads_total", &[]), Some(1.0));
}

async fn get_json(client: &reqwest::Client, url: String, token: &str) -> (u16, Value) {
    let r = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summary_and_usage_match_the_traffic_sent() {
    let m = mock("m1").await;
    let gw = Gateway::start(&obs_config(m.addr.port(), "")).await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(
            drain(
                chat_as(
                    &client,
                    &gw,
                    "/v1/chat/completions",
                    "sk-alice-0123456789",
                    None,
                    false
                )
                .await
            )
            .await,
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            drain(
                chat_as(
                    &client,
                    &gw,
                    "/alt/v1/chat/completions",
                    "sk-bob-abcdefghij",
                    Some("team"),
                    false
                )
                .await
            )
            .await,
            200
        );
    }
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-bob-abcdefghij",
                Some("team"),
                true
            )
            .await
        )
        .await,
        200
    );

    let (status, _) = get_json(&client, gw.url("/metrics/summary"), "sk-test").await;
    assert_eq!(status, 401, "the summary needs the metrics token");
    let summary = eventually_ok("the summary showing 6 requests", async || {
        let (status, s) = get_json(&client, gw.url("/metrics/summary"), METRICS_TOKEN).await;
        assert_eq!(status, 200);
        if s["totals"]["requests_total"] == 6 && s["totals"]["inflight_requests"] == 0 {
            Ok(s)
        } else {
            Err(s.to_string())
        }
    })
    .await;
    let find = |list: &str, field: &str, name: &str| -> Value {
        summary[list]
            .as_array()
            .and_then(|a| a.iter().find(|e| e[field] == name).cloned())
            .unwrap_or_else(|| panic!("{list} has no {name}: {summary}"))
    };
    let v1 = find("routes", "route", "/v1");
    assert_eq!(
        (v1["requests_1h"].as_u64(), v1["requests_24h"].as_u64()),
        (Some(4), Some(4))
    );
    assert_eq!(v1["concurrency"], 0);
    assert!(v1["peak_1h"].as_u64() >= Some(1));
    assert_eq!(find("routes", "route", "/alt")["requests_1h"], 2);
    assert_eq!(find("routes", "route", "/dead")["requests_1h"], 0);
    let alice = find("keys", "key", "alice");
    assert_eq!(alice["requests_1h"], 3);
    assert_eq!(alice["masked"], "sk-…89");
    assert_eq!(find("keys", "key", "bob")["requests_24h"], 3);
    assert_eq!(find("keys", "key", "test")["requests_24h"], 0);
    let team = find("namespaces", "namespace", "team");
    assert_eq!(team["requests_1h"], 3);
    assert!(team["tokens_out_1h"].as_u64() >= Some(3 * 16), "{team}");
    assert_eq!(
        team["req_per_min"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).sum::<u64>()),
        Some(3)
    );
    assert_eq!(find("upstreams", "server", "m1")["healthy"], true);
    let text = summary.to_string();
    for secret in ["sk-alice-0123456789", "sk-bob-abcdefghij", "sk-test\""] {
        assert!(!text.contains(secret), "summary holds {secret}");
    }

    // The gateway's /stats.
    let (status, stats) = get_json(&client, gw.url("/stats"), "").await;
    assert_eq!(status, 200);
    assert_eq!(stats["requests_total"], 6);
    assert_eq!(stats["requests_2xx"], 6);

    // The admin side: /stats, usage, overview, monitoring.
    let admin = |p: &str| gw.admin_url(p);
    let (status, stats) = get_json(&client, admin("/stats"), "admin-token").await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            stats["cache_hits"].as_u64(),
            stats["requests_total"].as_u64()
        ),
        (Some(0), Some(6))
    );
    let (_, list) = get_json(&client, admin("/api/v1/namespaces"), "admin-token").await;
    let team_id = list
        .as_array()
        .and_then(|a| a.iter().find(|n| n["namespace_code"] == "team"))
        .map(|n| n["id"].clone())
        .expect("team namespace");
    let (status, usage) = get_json(
        &client,
        admin(&format!("/api/v1/namespaces/{team_id}/usage")),
        "admin-token",
    )
    .await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["namespace_id"], team_id);
    assert!(usage["qps"].as_f64() > Some(0.0), "{usage}");
    assert_eq!(usage["concurrency"], 0);
    assert!(usage["token_output_per_min"].as_u64() > Some(0), "{usage}");
    assert_eq!(usage["rate_limit"]["enabled"], false);
    let (status, mon) = get_json(
        &client,
        admin(&format!("/api/v1/namespaces/{team_id}/monitoring")),
        "admin-token",
    )
    .await;
    assert_eq!(status, 200);
    let per_min: Vec<u64> = mon["metrics"]["req_per_min"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    assert_eq!(
        (per_min.len(), per_min.iter().sum::<u64>()),
        (5, 3),
        "{mon}"
    );
    assert_eq!(
        mon["metrics"]["token_out"].as_array().map(Vec::len),
        Some(5)
    );
    let (status, overview) = get_json(
        &client,
        admin("/api/v1/namespaces/usage/overview"),
        "admin-token",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(overview.as_array().map(Vec::len), Some(3), "{overview}");
    let (status, _) = get_json(
        &client,
        admin("/api/v1/namespaces/999/usage"),
        "admin-token",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get_json(&client, admin("/api/v1/namespaces/usage/overview"), "wrong").await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_lines_parse_and_hold_no_secret() {
    let m = mock("m1").await;
    let log_path = std::env::temp_dir().join(format!(
        "sluice-access-{}-{}.log",
        std::process::id(),
        free_port()
    ));
    let extra = format!("access_log:\n  path: {}\n", log_path.display());
    let gw = Gateway::start(&obs_config(m.addr.port(), &extra)).await;
    let client = reqwest::Client::new();
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-alice-0123456789",
                None,
                false
            )
            .await
        )
        .await,
        200
    );
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-bob-abcdefghij",
                Some("team"),
                true
            )
            .await
        )
        .await,
        200
    );
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions?api_key=sk-leak",
                "sk-wrong-key-123456",
                None,
                false
            )
            .await
        )
        .await,
        401
    );
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-test",
                Some("limited"),
                false
            )
            .await
        )
        .await,
        200
    );
    assert_eq!(
        drain(
            chat_as(
                &client,
                &gw,
                "/v1/chat/completions",
                "sk-test",
                Some("limited"),
                false
            )
            .await
        )
        .await,
        429
    );

    let text = eventually_ok("5 access log lines", async || {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.lines().count() >= 5 {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    let _ = std::fs::remove_file(&log_path);
    for secret in [
        "sk-alice",
        "sk-bob",
        "sk-wrong",
        "sk-leak",
        "sk-test",
        "hello there",
    ] {
        assert!(
            !text.contains(secret),
            "access log holds {secret:?}:\n{text}"
        );
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for l in &lines {
        for field in [
            "ts",
            "trace_id",
            "namespace",
            "route",
            "model",
            "provider",
            "status",
            "tokens_in",
            "tokens_out",
            "cost",
            "latency_ms",
            "gateway_ms",
            "upstream_ms",
        ] {
            assert!(l.get(field).is_some(), "{field} missing: {l}");
        }
        let total = l["latency_ms"].as_f64().unwrap_or(-1.0);
        let split =
            l["gateway_ms"].as_f64().unwrap_or(0.0) + l["upstream_ms"].as_f64().unwrap_or(0.0);
        assert!(
            (total - split).abs() < 0.01,
            "latency split does not add up: {l}"
        );
    }
    let by_key = |name: &str| {
        lines
            .iter()
            .find(|l| l["key_name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
    };
    let alice = by_key("alice");
    assert_eq!(
        (
            alice["namespace"].as_str(),
            alice["route"].as_str(),
            alice["status"].as_u64()
        ),
        (Some("default"), Some("/v1"), Some(200))
    );
    assert_eq!(
        (
            alice["model"].as_str(),
            alice["provider"].as_str(),
            alice["upstream"].as_str()
        ),
        (Some("gpt-4o-mini"), Some("openai"), Some("p"))
    );
    assert!(alice["ttfb_ms"].as_f64().is_some(), "{alice}");
    let bob = by_key("bob");
    assert_eq!(
        (bob["namespace"].as_str(), bob["stream"].as_bool()),
        (Some("team"), Some(true))
    );
    assert!(
        bob["tokens_out"].as_u64() >= Some(16) && bob["tokens_in"].as_u64() > Some(0),
        "{bob}"
    );
    assert!(bob["ttft_ms"].as_f64().is_some(), "{bob}");
    let refused = lines.iter().find(|l| l["status"] == 401).expect("401 line");
    assert_eq!(
        (refused["error"].as_str(), refused["namespace"].as_str()),
        (Some("unauthorized"), Some("none"))
    );
    assert_eq!(
        refused["path"], "/v1/chat/completions",
        "the query string is not logged"
    );
    let denied = lines.iter().find(|l| l["status"] == 429).expect("429 line");
    assert_eq!(
        (denied["error"].as_str(), denied["namespace"].as_str()),
        (Some("rate_limited"), Some("limited"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_their_own_listener() {
    let m = mock("m1").await;
    let yaml = obs_config(m.addr.port(), "").replace(
        &format!("metrics:\n  token: {METRICS_TOKEN}\n"),
        &format!("metrics:\n  token: {METRICS_TOKEN}\n  listen: \"{{metrics}}\"\n"),
    );
    assert!(
        yaml.contains("listen: \"{metrics}\""),
        "config not rewritten"
    );
    // The gateway is ready once this listener answers too.
    let gw = Gateway::start(&yaml).await;
    let client = reqwest::Client::new();
    let url = |p: &str| gw.metrics_url(p);
    assert_eq!(
        drain(chat_as(&client, &gw, "/v1/chat/completions", "sk-test", None, false).await).await,
        200
    );
    let r = client.get(url("/metrics")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    // The request is counted when its logging phase ends, which may be a
    // moment after the client read the whole answer.
    eventually("the request counted on the metrics listener", async || {
        let r = client
            .get(url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("get");
        r.status() == 200
            && r.text()
                .await
                .unwrap_or_default()
                .contains("# TYPE sluice_requests_total counter")
    })
    .await;
    let r = client.get(url("/metrics/ui")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    let r = client.get(url("/v1/models")).send().await.expect("get");
    assert_eq!(r.status(), 404, "the metrics listener proxies nothing");
    // The proxy listener no longer answers /metrics itself.
    let r = client
        .get(gw.url("/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("get");
    assert!(
        !r.text().await.unwrap_or_default().contains("# TYPE"),
        "/metrics still on the proxy listener"
    );
}

#[test]
fn a_metrics_listener_without_a_token_is_rejected() {
    let yaml = "listen: {proxy: \"127.0.0.1:1\"}\nmetrics: {listen: \"127.0.0.1:2\"}\nauth: {enabled: false}\nnamespaces: [{namespace_code: d}]\ndefault_namespace: d\nupstream_servers: [{server_name: s, server_address: 127.0.0.1, server_port: 3}]\nroutes: [{prefix: /, upstream: s}]\n";
    let problems = sluice::config::load_str(yaml, &|_| None).expect_err("rejected");
    assert!(
        problems.iter().any(|p| p.path == "metrics.listen"),
        "{problems:?}"
    );
}
