//! Anthropic's Messages API as a client calls it (`POST /v1/messages`) on
//! catalog models, through the real gateway, against an OpenAI-format and
//! an Anthropic-format deployment of the mock: JSON and the SSE event
//! sequence, tool use, stop reasons, usage, upstream errors in Anthropic's
//! shape, and a token cap cutting a stream cleanly.

use crate::common::*;
use serde_json::{json, Value};

fn yaml(m: u16, rules: &str) -> String {
    let servers = [
        server("p", "p", m, ""),
        provider_server("an", "anp", m, "anthropic", "k"),
    ];
    let models = "models:\n  - name: via-openai\n    deployments:\n      - {name: oa, upstream: p, model: gpt-4o-mini}\n  - name: via-claude\n    deployments:\n      - {name: an, upstream: anp, model: claude-sonnet-4-5}\n";
    config(&servers, &format!("{CATCH_ALL}{rules}{models}"))
}

fn messages(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 100, "stream": stream, "system": "be brief",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]})
}

async fn send(gw: &Gateway, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(gw.url("/v1/messages"))
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("send")
}

fn expected_text(n: usize) -> String {
    (0..n).map(sluice::mock::openai_token).collect()
}

/// The events of an Anthropic SSE body: (event name, data).
fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut name = String::new();
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        let v: Value =
            serde_json::from_str(&data).unwrap_or_else(|_| panic!("data is JSON: {block}"));
        assert_eq!(v["type"], name.as_str(), "{block}");
        out.push((name, v));
    }
    out
}

/// Text, stop reason and output tokens of an Anthropic event sequence,
/// checking its order.
fn read_stream(text: &str) -> (String, String, u64) {
    let evs = events(text);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{text}");
    assert_eq!(names.last(), Some(&"message_stop"), "{text}");
    assert!(
        names.contains(&"content_block_start") && names.contains(&"content_block_stop"),
        "{text}"
    );
    let mut content = String::new();
    let (mut stop, mut output) = (String::new(), 0);
    for (name, v) in &evs {
        match name.as_str() {
            "content_block_delta" => content.push_str(v["delta"]["text"].as_str().unwrap_or("")),
            "message_delta" => {
                stop = v["delta"]["stop_reason"].as_str().unwrap_or("").to_string();
                output = v["usage"]["output_tokens"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
    }
    (content, stop, output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_json_and_stream_on_both_formats() {
    let m = mock("m").await;
    let gw = Gateway::start(&yaml(m.addr.port(), "")).await;
    for model in ["via-openai", "via-claude"] {
        let r = send(&gw, &messages(model, false), &[]).await;
        assert_eq!(r.status(), 200, "{model}");
        assert!(header_of(&r, "content-type").starts_with("application/json"));
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "message", "{v}");
        assert_eq!(v["role"], "assistant");
        assert_eq!(v["model"], model);
        assert_eq!(v["content"][0]["type"], "text");
        assert_eq!(v["content"][0]["text"], expected_text(16), "{v}");
        assert_eq!(v["stop_reason"], "end_turn");
        assert_eq!(v["usage"]["output_tokens"], 16);
        assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0, "{v}");

        let mut short = messages(model, false);
        short["max_tokens"] = json!(3);
        let v: Value = send(&gw, &short, &[]).await.json().await.unwrap();
        assert_eq!(v["stop_reason"], "max_tokens", "{v}");
        assert_eq!(v["content"][0]["text"], expected_text(3));

        let r = send(&gw, &messages(model, true), &[]).await;
        assert_eq!(r.status(), 200);
        assert!(header_of(&r, "content-type").starts_with("text/event-stream"));
        let text = r.text().await.unwrap();
        let (content, stop, output) = read_stream(&text);
        assert_eq!(content, expected_text(16), "{model}: {text}");
        assert_eq!(stop, "end_turn");
        assert_eq!(output, 16, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_use_round_trip() {
    let m = mock("m").await;
    let gw = Gateway::start(&yaml(m.addr.port(), "")).await;
    let tools = json!([{"name": "lookup", "description": "find",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]);
    for model in ["via-openai", "via-claude"] {
        let mut body = messages(model, false);
        body["tools"] = tools.clone();
        let v: Value = send(&gw, &body, &[]).await.json().await.unwrap();
        assert_eq!(v["stop_reason"], "tool_use", "{model}: {v}");
        let block = v["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .expect("tool_use block")
            .clone();
        assert_eq!(block["name"], "lookup");
        assert_eq!(block["input"], json!({"query": "water"}));

        body["stream"] = json!(true);
        let text = send(&gw, &body, &[]).await.text().await.unwrap();
        let evs = events(&text);
        let start = evs
            .iter()
            .find(|(n, v)| n == "content_block_start" && v["content_block"]["type"] == "tool_use")
            .expect("tool block");
        assert_eq!(start.1["content_block"]["name"], "lookup");
        let json_text: String = evs
            .iter()
            .filter(|(n, v)| n == "content_block_delta" && v["delta"]["type"] == "input_json_delta")
            .map(|(_, v)| {
                v["delta"]["partial_json"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&json_text).unwrap(),
            json!({"query": "water"}),
            "{text}"
        );
        let stop = evs
            .iter()
            .find(|(n, _)| n == "message_delta")
            .map(|(_, v)| v["delta"]["stop_reason"].clone());
        assert_eq!(stop, Some(json!("tool_use")));

        // The result goes back as a tool_result block; text comes back.
        let follow = json!({"model": model, "max_tokens": 100, "tools": tools, "messages": [
            {"role": "user", "content": "look it up"},
            {"role": "assistant", "content": [block.clone()]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "found"}]}]});
        let v: Value = send(&gw, &follow, &[]).await.json().await.unwrap();
        assert_eq!(v["stop_reason"], "end_turn", "{model}: {v}");
        assert_eq!(v["content"][0]["text"], expected_text(16));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_come_back_in_anthropic_shape() {
    let m = mock("m").await;
    let gw = Gateway::start(&yaml(m.addr.port(), "")).await;
    for model in ["via-openai", "via-claude"] {
        for (status, client, kind) in [
            ("429", 429, "rate_limit_error"),
            ("500", 502, "api_error"),
            ("400", 400, "invalid_request_error"),
        ] {
            for stream in [false, true] {
                let r = send(&gw, &messages(model, stream), &[("x-mock-status", status)]).await;
                assert_eq!(r.status(), client, "{model} {status}");
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["type"], "error", "{model} {status}: {v}");
                assert_eq!(v["error"]["type"], kind, "{model} {status}: {v}");
                // An external client: the gateway's words, not the provider's.
                let message = v["error"]["message"].as_str().unwrap();
                assert!(
                    message.starts_with("the model provider") && !message.contains("mock"),
                    "{v}"
                );
            }
        }
    }
    // A body Anthropic's format cannot carry is refused before any upstream.
    let before = served(&m);
    let r = send(
        &gw,
        &json!({"model": "via-claude", "max_tokens": 5, "messages": "hi"}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(served(&m), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_cap_cuts_a_messages_stream_cleanly() {
    let m = mock("m").await;
    let rules = "rules:\n  - rule_name: five-out\n    rule_type: token_limit\n    rule_config: {max_output_tokens: 5}\n";
    let gw = Gateway::start(&yaml(m.addr.port(), rules)).await;
    let ignore = [("x-mock-ignore-max-tokens", "1")];
    for model in ["via-openai", "via-claude"] {
        let r = send(&gw, &messages(model, true), &ignore).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let (content, stop, output) = read_stream(&text);
        assert_eq!(content, expected_text(5), "{model}: {text}");
        assert_eq!(stop, "max_tokens", "{text}");
        assert_eq!(output, 5, "{text}");
        let v: Value = send(&gw, &messages(model, false), &ignore)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(v["content"][0]["text"], expected_text(5), "{model}: {v}");
        assert_eq!(v["stop_reason"], "max_tokens");
        assert_eq!(v["usage"]["output_tokens"], 5);
    }
}

fn header_of(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
