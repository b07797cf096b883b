//! The response cache with the real binary, the mock upstream and Redis:
//! misses then hits, across two instances through the Redis tier; no
//! entry shared across namespaces, nor across keys when isolated; keys
//! stable under member order and whitespace; streams replayed as they
//! were, and between the streamed and JSON shapes; capped or abandoned
//! streams not stored; identical concurrent requests coalesced into one
//! upstream call; stale answers on upstream failure within the grace
//! only; Redis down → memory only; hits free against token budgets; the
//! admin API's purge and settings.

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) const TOKEN: &str = "cache-tok";
const METRICS: &str = "cache-metrics";

/// One mock behind the catalog model `cached` (and `plain`, which does
/// not cache); namespaces `default` (shared entries) and `iso` (entries
/// per key), keys `sk-test` (default), `sk-a` and `sk-b` (iso).
pub(crate) fn cache_config(port: u16, model_cache: &str, rest: &str) -> String {
    format!(
        r#"{TEST_SERVER}listen:
  proxy: "{{proxy}}"
  admin: "{{admin}}"
admin: {{tokens: [{TOKEN}]}}
metrics: {{token: {METRICS}}}
auth:
  keys:
    - {{name: test, key: sk-test}}
    - {{name: a, key: sk-a, namespace: iso}}
    - {{name: b, key: sk-b, namespace: iso}}
default_namespace: default
namespaces:
  - namespace_code: default
    cache: {{enabled: true}}
  - namespace_code: iso
    cache: {{enabled: true, per_key: true}}
upstream_servers:
{server}
{CATCH_ALL}
models:
  - name: cached
    cache: {model_cache}
    deployments:
      - {{name: one, upstream: p}}
  - name: plain
    deployments:
      - {{name: one, upstream: p}}
{rest}
"#,
        server = server("a", "p", port, "")
    )
}

pub(crate) fn body(content: &str, stream: bool) -> Value {
    json!({"model": "cached", "temperature": 0, "stream": stream,
        "messages": [{"role": "user", "content": content}]})
}

async fn ask(gw: &Gateway, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn x_cache(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-cache")
        .map_or("-".into(), |v| v.to_str().unwrap().to_string())
}

/// Status, `x-cache` and the answer's text.
pub(crate) async fn answer(gw: &Gateway, key: &str, body: &Value) -> (u16, String, String) {
    let r = ask(gw, key, body).await;
    let (status, label) = (r.status().as_u16(), x_cache(&r));
    (status, label, r.text().await.unwrap())
}

fn content(json_text: &str) -> String {
    let v: Value = serde_json::from_str(json_text).unwrap_or_else(|e| panic!("{e}: {json_text}"));
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// The data payloads of an SSE answer (`[DONE]` last).
fn events(text: &str) -> Vec<String> {
    let data: Vec<String> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    data
}

/// Concatenated content, finish reason and usage of an SSE answer.
fn stream_parts(text: &str) -> (String, String, Value) {
    let (mut content, mut finish, mut usage) = (String::new(), String::new(), Value::Null);
    for e in events(text).iter().filter(|e| *e != "[DONE]") {
        let v: Value = serde_json::from_str(e).unwrap();
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            content.push_str(c);
        }
        if let Some(f) = v["choices"][0]["finish_reason"].as_str() {
            finish = f.to_string();
        }
        if !v["usage"].is_null() {
            usage = v["usage"].clone();
        }
    }
    (content, finish, usage)
}

pub(crate) async fn stats(gw: &Gateway) -> Value {
    reqwest::get(gw.url("/stats"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["cache"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_reused_across_instances_and_never_across_tenants() {
    let m = mock("a").await;
    let store = StoreGuard::new();
    let tiers = format!(
        "cache: {{redis_url: \"{}\", key_prefix: \"{}cache:\"}}\n",
        redis_base(),
        store.prefix
    );
    let yaml = cache_config(m.addr.port(), "{ttl_s: 300}", &tiers);
    let a = Gateway::start(&yaml).await;
    let b = Gateway::start(&yaml).await;

    // A miss on A, then a hit from its memory.
    let q = body("what is a sluice?", false);
    let (s, label, first) = answer(&a, "sk-test", &q).await;
    assert_eq!((s, label.as_str()), (200, "miss"), "{first}");
    assert_eq!(served(&m), 1);
    let (s, label, again) = answer(&a, "sk-test", &q).await;
    assert_eq!((s, label.as_str(), &again), (200, "hit", &first));
    assert_eq!(served(&m), 1);

    // B has it through Redis (written in the background).
    eventually("A wrote the entry to Redis", async || {
        stats(&a).await["redis_writes"] == 1
    })
    .await;
    let (_, label, from_b) = answer(&b, "sk-test", &q).await;
    assert_eq!(label, "hit");
    assert_eq!(from_b, first);
    assert_eq!(served(&m), 1);
    assert_eq!(stats(&b).await["redis_hits"], 1);

    // The same request spelled differently: members reordered, other
    // whitespace, 0.0 for 0, a delivery option and a caller label.
    let raw = r#"{ "messages" : [ { "content": "what is a sluice?", "role": "user" } ],
        "stream_options": null, "user": "someone", "temperature": 0.0, "model": "cached" }"#;
    let r = reqwest::Client::new()
        .post(b.url("/v1/chat/completions"))
        .bearer_auth("sk-test")
        .header("content-type", "text/plain")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&r), "hit");
    assert_eq!(r.text().await.unwrap(), first);
    assert_eq!(served(&m), 1);

    // Another namespace never sees it; isolated keys never share.
    let (_, label, _) = answer(&a, "sk-a", &q).await;
    assert_eq!(label, "miss");
    assert_eq!(served(&m), 2);
    assert_eq!(answer(&a, "sk-a", &q).await.1, "hit");
    assert_eq!(answer(&a, "sk-b", &q).await.1, "miss");
    assert_eq!(served(&m), 3);

    // Not cacheable: sampled output, `no-store`; `no-cache` refreshes.
    let mut sampled = q.clone();
    sampled["temperature"] = json!(0.7);
    assert_eq!(answer(&a, "sk-test", &sampled).await.1, "bypass");
    let r = reqwest::Client::new()
        .post(a.url("/v1/chat/completions"))
        .bearer_auth("sk-test")
        .header("cache-control", "no-store")
        .json(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&r), "bypass");
    let r = reqwest::Client::new()
        .post(a.url("/v1/chat/completions"))
        .bearer_auth("sk-test")
        .header("Cache-Control", "No-Cache")
        .json(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(x_cache(&r), "miss");
    assert_eq!(served(&m), 6);
    // A model that does not cache says nothing.
    let mut plain = q.clone();
    plain["model"] = json!("plain");
    assert_eq!(answer(&a, "sk-test", &plain).await.1, "-");

    // Figures: /stats, the admin API, Prometheus.
    let st = stats(&a).await;
    assert!(st["hits"].as_u64().unwrap() >= 2, "{st}");
    assert!(st["memory_entries"].as_u64().unwrap() >= 3, "{st}");
    let api = Admin::new(&a, TOKEN);
    let (s, v) = api.get("/cache/stats").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["responses"]["bypass"], 2, "{v}");
    let (_, v) = api.get("/stats").await;
    assert!(v["cache_hits"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["cache_enabled"], true);
    let text = a.metrics(&reqwest::Client::new(), METRICS).await;
    assert!(
        text.contains(
            r#"sluice_cache_requests_total{model="cached",namespace="default",result="hit"} 1"#
        ),
        "{text}"
    );

    // Purge: a bad request is refused; by model, on every tier.
    let (s, _) = api.post("/cache/purge", json!({})).await;
    assert_eq!(s, 400);
    let (s, _) = api.post("/cache/purge", json!({"key": "zz"})).await;
    assert_eq!(s, 400);
    let (s, v) = api
        .post(
            "/cache/purge",
            json!({"model": "cached", "namespace": "default"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["purged_redis"].as_u64().unwrap() >= 1, "{v}");
    // B drops its memory copies when A announces the purge.
    eventually("B purged its memory tier", async || {
        stats(&b).await["memory_entries"] == 0
    })
    .await;
    assert_eq!(answer(&b, "sk-test", &q).await.1, "miss");
    eventually("B wrote the new entry to Redis", async || {
        stats(&b).await["redis_writes"] == 1
    })
    .await;
    assert_eq!(answer(&a, "sk-test", &q).await.1, "hit");
    drop(store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_replayed_as_they_were_and_between_shapes() {
    let m = mock("a").await;
    let gw = Gateway::start(&cache_config(m.addr.port(), "{ttl_s: 300}", "")).await;
    let mut q = body("stream me", true);
    q["stream_options"] = json!({"include_usage": true});
    let r = ask(&gw, "sk-test", &q).await;
    assert_eq!(x_cache(&r), "miss");
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let original = r.text().await.unwrap();
    let r = ask(&gw, "sk-test", &q).await;
    assert_eq!(x_cache(&r), "hit");
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let replay = r.text().await.unwrap();
    // The same events, in the same order, chunked the same.
    assert_eq!(events(&replay), events(&original));
    assert_eq!(replay, original);
    let (text, finish, usage) = stream_parts(&original);
    assert!(!text.is_empty() && finish == "stop" && !usage.is_null());
    assert_eq!(served(&m), 1);

    // A client that did not ask for usage gets no usage event.
    let no_usage = body("stream me", true);
    let r = ask(&gw, "sk-test", &no_usage).await;
    assert_eq!(x_cache(&r), "hit");
    let t = r.text().await.unwrap();
    assert_eq!(stream_parts(&t).2, Value::Null, "{t}");
    assert_eq!(stream_parts(&t).0, text);

    // The stored stream answers a non-streaming client as one object.
    let (s, label, json_text) = answer(&gw, "sk-test", &body("stream me", false)).await;
    assert_eq!((s, label.as_str()), (200, "hit"));
    let v: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], text.as_str());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"], usage);

    // And a stored JSON answer a streaming client.
    let (_, label, stored) = answer(&gw, "sk-test", &body("json first", false)).await;
    assert_eq!(label, "miss");
    let mut sq = body("json first", true);
    sq["stream_options"] = json!({"include_usage": true});
    let r = ask(&gw, "sk-test", &sq).await;
    assert_eq!(x_cache(&r), "hit");
    let (t, finish, u) = stream_parts(&r.text().await.unwrap());
    let v: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(t, content(&stored));
    assert_eq!(finish, "stop");
    assert_eq!(u, v["usage"]);
    assert_eq!(served(&m), 2);

    // The official SDK sees the replay as the original.
    run_sdk_script("openai_cache.py", gw.url("")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capped_and_abandoned_streams_are_not_stored() {
    let m = mock("a").await;
    let cap = "rules:\n  - rule_name: five-out\n    namespace: iso\n    rule_type: token_limit\n    rule_config: {max_output_tokens: 5}\n";
    let gw = Gateway::start(&cache_config(m.addr.port(), "{ttl_s: 300}", cap)).await;
    let c = reqwest::Client::new();
    // The upstream overruns the cap: the meter cuts the stream.
    for _ in 0..2 {
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-a")
            .header("x-mock-ignore-max-tokens", "1")
            .json(&body("overrun", true))
            .send()
            .await
            .unwrap();
        assert_eq!(x_cache(&r), "miss");
        let _ = r.text().await.unwrap();
    }
    assert_eq!(served(&m), 2);

    // A client that leaves mid-stream.
    let slow = |c: &reqwest::Client| {
        c.post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-test")
            .header("x-mock-chunk-ms", "100")
            .json(&body("leave early", true))
            .send()
    };
    let mut r = slow(&c).await.unwrap();
    assert_eq!(x_cache(&r), "miss");
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    eventually("the abandoned stream's flight ends", async || {
        stats(&gw).await["in_flight"] == 0
    })
    .await;
    let r = slow(&c).await.unwrap();
    assert_eq!(x_cache(&r), "miss");
    let _ = r.text().await.unwrap();
    // That one ran to its end: stored.
    let r = slow(&c).await.unwrap();
    assert_eq!(x_cache(&r), "hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_requests_in_flight_make_one_upstream_call() {
    let m = mock("a").await;
    let gw = Gateway::start(&cache_config(m.addr.port(), "{ttl_s: 300}", "")).await;
    let c = reqwest::Client::new();
    let send = || {
        c.post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-test")
            .header("x-mock-latency-ms", "1500")
            .json(&body("all at once", false))
            .send()
    };
    // 50 JSON requests: one upstream call, one answer for all.
    let all = futures_util::future::join_all((0..50).map(|_| send())).await;
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for r in all {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        labels.push(x_cache(&r));
        texts.push(r.text().await.unwrap());
    }
    assert_eq!(served(&m), 1, "{labels:?}");
    assert_eq!(labels.iter().filter(|l| *l == "miss").count(), 1);
    assert!(texts.iter().all(|t| *t == texts[0]));
    assert_eq!(stats(&gw).await["coalesced"], 49);

    // 20 streams: followers get every event from the first.
    let streams_of = |c: &reqwest::Client| {
        c.post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-test")
            .header("x-mock-latency-ms", "1500")
            .json(&body("streams at once", true))
            .send()
    };
    let all = futures_util::future::join_all((0..20).map(|_| streams_of(&c))).await;
    let mut streams = Vec::new();
    for r in all {
        streams.push(r.unwrap().text().await.unwrap());
    }
    assert_eq!(served(&m), 2);
    assert!(streams.iter().all(|s| events(s) == events(&streams[0])));

    // A leader that fails releases its followers to go on their own.
    let mut q = body("leader fails", false);
    q["max_tokens"] = json!(7);
    let leader = c
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth("sk-test")
        .header("x-mock-latency-ms", "1500")
        .header("x-mock-status", "500")
        .json(&q)
        .send();
    let followers = async {
        // Joined once the leader is in flight.
        eventually("the leader is in flight", async || {
            stats(&gw).await["in_flight"] == 1
        })
        .await;
        futures_util::future::join_all((0..5).map(|_| ask(&gw, "sk-test", &q))).await
    };
    let (leader, followers) = tokio::join!(leader, followers);
    assert_eq!(leader.unwrap().status(), 502);
    for r in followers {
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_answers_stand_in_for_a_failing_model_within_the_grace() {
    let m = mock("a").await;
    // Never fresh: every request goes upstream; a failure falls back on
    // the last answer for 2 s. The third failure opens the breaker.
    let yaml = cache_config(m.addr.port(), "{ttl_s: 0, stale_s: 2}", "").replacen(
        "  - name: cached\n",
        "  - name: cached\n    breaker: {consecutive_failures: 3, open_ms: 60000}\n",
        1,
    );
    let gw = Gateway::start(&yaml).await;
    let c = reqwest::Client::new();
    let q = |stream: bool| body(&format!("stale {stream}"), stream);
    let failing = |stream: bool| {
        c.post(gw.url("/v1/chat/completions"))
            .bearer_auth("sk-test")
            .header("x-mock-status", "503")
            .json(&q(stream))
            .send()
    };
    let mut good = Vec::new();
    for stream in [false, true] {
        let (s, label, text) = answer(&gw, "sk-test", &q(stream)).await;
        assert_eq!((s, label.as_str()), (200, "miss"));
        good.push(text);
    }
    // Every deployment fails (once JSON, twice streamed): the stale answer.
    for (stream, good) in [(false, &good[0]), (true, &good[1]), (true, &good[1])] {
        let r = failing(stream).await.unwrap();
        assert_eq!((r.status().as_u16(), x_cache(&r)), (200, "stale".into()));
        assert_eq!(&r.text().await.unwrap(), good);
    }
    // The breaker is open now: no upstream call, the stale answer.
    let before = served(&m);
    let (s, label, text) = answer(&gw, "sk-test", &q(false)).await;
    assert_eq!((s, label.as_str(), &text), (200, "stale", &good[0]));
    assert_eq!(served(&m), before);
    // Past the grace: the failure is answered.
    let mut last = 0;
    eventually_within(Duration::from_secs(10), "the grace ends", async || {
        let r = ask(&gw, "sk-test", &q(false)).await;
        last = r.status().as_u16();
        last != 200
    })
    .await;
    assert_eq!(last, 503);
    assert!(stats(&gw).await["stale"].as_u64().unwrap() >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_the_memory_tier_answers_alone() {
    let m = mock("a").await;
    let dead = refused_for_good();
    let tiers = format!("cache: {{redis_url: \"redis://127.0.0.1:{dead}/0\", timeout_ms: 50}}\n");
    let gw = Gateway::start(&cache_config(m.addr.port(), "{ttl_s: 300}", &tiers)).await;
    let q = body("redis is down", false);
    let (s, label, first) = answer(&gw, "sk-test", &q).await;
    assert_eq!((s, label.as_str()), (200, "miss"));
    let (s, label, again) = answer(&gw, "sk-test", &q).await;
    assert_eq!((s, label.as_str(), &again), (200, "hit", &first));
    assert_eq!(served(&m), 1);
    eventually("the failed Redis calls are counted", async || {
        stats(&gw).await["redis_errors"].as_u64().unwrap() >= 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hits_pass_rate_limits_are_free_against_budgets_unless_charged_and_are_logged() {
    let m = mock("a").await;
    let log = std::env::temp_dir().join(format!(
        "sluice-cache-access-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    // 16 output tokens per answer + a small prompt: three answers at most
    // in `default`; two requests a minute in `iso`.
    let rules = format!(
        "access_log: {{path: \"{}\"}}\nrules:\n  - rule_name: budget\n    namespace: default\n    rule_type: token_limit\n    rule_config: {{time_window_enabled: true, time_window_minutes: 60, max_tokens_per_window: 100}}\n  - rule_name: two-a-minute\n    namespace: iso\n    rule_type: rate_limit\n    rule_config: {{max_requests: 2, time_window_seconds: 60}}\n",
        log.display()
    );
    let gw = Gateway::start(&cache_config(m.addr.port(), "{ttl_s: 300}", &rules)).await;
    let q = body("budgeted", false);
    assert_eq!(answer(&gw, "sk-test", &q).await.1, "miss");
    for _ in 0..10 {
        let (s, label, _) = answer(&gw, "sk-test", &q).await;
        assert_eq!((s, label.as_str()), (200, "hit"));
    }
    // Turned off for the namespace: no cache at all.
    let api = Admin::new(&gw, TOKEN);
    let (s, v) = api
        .put("/api/v1/namespaces/1", json!({"cache": {"enabled": false}}))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(answer(&gw, "sk-test", &q).await.1, "-");
    assert_eq!(served(&m), 2);
    // Charged hits spend the budget.
    let (s, v) = api
        .put(
            "/api/v1/namespaces/1",
            json!({"cache": {"charge_hits": true}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["namespace"]["cache"]["charge_hits"], true);
    let mut denied = false;
    for _ in 0..10 {
        let (s, label, _) = answer(&gw, "sk-test", &q).await;
        if s == 429 {
            denied = true;
            break;
        }
        assert_eq!(label, "hit");
    }
    assert!(denied, "charged hits never exhausted the budget");
    let (s, v) = api
        .put("/api/v1/namespaces/1", json!({"cache": {"ttl": 1}}))
        .await;
    assert_eq!(s, 400, "{v}");
    // A hit still passes the rate limit: the second request of the minute
    // is a hit, the third is refused.
    let other = body("other ns", false);
    assert_eq!(answer(&gw, "sk-a", &other).await.1, "miss");
    assert_eq!(answer(&gw, "sk-a", &other).await.1, "hit");
    let (s, label, _) = answer(&gw, "sk-a", &other).await;
    assert_eq!((s, label.as_str()), (429, "-"));
    assert_eq!(served(&m), 3);

    // The access log says which requests the cache answered.
    eventually("the access log has the hits", async || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains(r#""cache":"hit""#))
            .count()
            >= 10
            && text.contains(r#""cache":"miss""#)
    })
    .await;
    let _ = std::fs::remove_file(&log);
}
