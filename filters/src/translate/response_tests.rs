use serde_json::json;

use super::*;
use crate::translate::{finish_reason_for, stop_reason_for};

fn anthropic_message() -> Value {
    json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "User wants weather.", "signature": ""},
            {"type": "text", "text": "Let me check "},
            {"type": "text", "text": "the weather."},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather",
             "input": {"location": "San Francisco, CA", "unit": "celsius"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 40,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 0,
        },
    })
}

#[test]
fn anthropic_response_to_openai_shape() {
    let out = anthropic_response_to_openai(&anthropic_message(), "my-alias").unwrap();
    assert_eq!(
        out,
        json!({
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "object": "chat.completion",
            "created": 0,
            "model": "my-alias",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check the weather.",
                    "reasoning_content": "User wants weather.",
                    "tool_calls": [{
                        "id": "toolu_01A",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}",
                        },
                    }],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }],
            "usage": {
                "prompt_tokens": 1100,
                "completion_tokens": 40,
                "total_tokens": 1140,
                "prompt_tokens_details": {"cached_tokens": 1000},
            },
        })
    );
}

#[test]
fn anthropic_cache_writes_count_as_prompt() {
    let mut m = anthropic_message();
    m["usage"] = json!({"input_tokens": 5, "output_tokens": 2,
        "cache_creation_input_tokens": 300, "cache_read_input_tokens": 20});
    m["content"] = json!([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]);
    let out = anthropic_response_to_openai(&m, "").unwrap();
    assert_eq!(out["model"], "claude-sonnet-4-5-20250929");
    assert_eq!(out["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        out["usage"],
        json!({"prompt_tokens": 325, "completion_tokens": 2, "total_tokens": 327,
               "prompt_tokens_details": {"cached_tokens": 20}})
    );
}

#[test]
fn stop_reasons_both_ways() {
    let table = [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ];
    for (a, o) in table {
        assert_eq!(finish_reason_for(a), o);
        let mut m = anthropic_message();
        m["stop_reason"] = json!(a);
        let out = anthropic_response_to_openai(&m, "").unwrap();
        assert_eq!(out["choices"][0]["finish_reason"], o);
    }
    for (o, a) in [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
    ] {
        assert_eq!(stop_reason_for(o), a);
    }
    let mut m = anthropic_message();
    m["stop_reason"] = Value::Null;
    let out = anthropic_response_to_openai(&m, "").unwrap();
    assert_eq!(out["choices"][0]["finish_reason"], Value::Null);
}

fn openai_completion() -> Value {
    json!({
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Calling tools.",
                "tool_calls": [
                    {"id": "call_a", "type": "function",
                     "function": {"name": "lookup", "arguments": "{\"q\":\"rust\"}"}},
                    {"id": "call_b", "type": "function",
                     "function": {"name": "now", "arguments": "{}"}},
                ],
            },
            "logprobs": null,
            "finish_reason": "tool_calls",
        }],
        "usage": {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920},
        },
    })
}

#[test]
fn openai_response_to_anthropic_shape() {
    let out = openai_response_to_anthropic(&openai_completion(), "").unwrap();
    assert_eq!(
        out,
        json!({
            "id": "chatcmpl-abc123",
            "type": "message",
            "role": "assistant",
            "model": "gpt-4o-2024-08-06",
            "content": [
                {"type": "text", "text": "Calling tools."},
                {"type": "tool_use", "id": "call_a", "name": "lookup", "input": {"q": "rust"}},
                {"type": "tool_use", "id": "call_b", "name": "now", "input": {}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 86,
                "output_tokens": 300,
                "cache_read_input_tokens": 1920,
                "cache_creation_input_tokens": 0,
            },
        })
    );
}

#[test]
fn openai_reasoning_refusal_and_missing_usage() {
    let body = json!({"id": "x", "model": "o", "choices": [{"index": 0, "finish_reason": "content_filter",
        "message": {"role": "assistant", "content": null, "reasoning_content": "think", "refusal": "No."}}]});
    let out = openai_response_to_anthropic(&body, "claude-alias").unwrap();
    assert_eq!(out["model"], "claude-alias");
    assert_eq!(
        out["content"],
        json!([{"type": "thinking", "thinking": "think", "signature": ""},
               {"type": "text", "text": "No."}])
    );
    assert_eq!(out["stop_reason"], "refusal");
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 0, "output_tokens": 0,
               "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0})
    );
}

#[test]
fn round_trips() {
    // Anthropic → OpenAI → Anthropic: exact when there are no cache writes
    // and the stop reason is not stop_sequence.
    let original = anthropic_message();
    let there = anthropic_response_to_openai(&original, "").unwrap();
    let mut back = openai_response_to_anthropic(&there, "").unwrap();
    let mut want = original.clone();
    // Text blocks come back joined.
    want["content"] = json!([
        original["content"][0],
        {"type": "text", "text": "Let me check the weather."},
        original["content"][3],
    ]);
    assert_eq!(back, want);
    // OpenAI → Anthropic → OpenAI.
    let original = openai_completion();
    let there = openai_response_to_anthropic(&original, "").unwrap();
    let again = anthropic_response_to_openai(&there, "").unwrap();
    assert_eq!(again, original);
    back["stop_reason"] = json!("max_tokens");
    let o = anthropic_response_to_openai(&back, "").unwrap();
    assert_eq!(o["choices"][0]["finish_reason"], "length");
}

#[test]
fn response_errors_name_the_field() {
    let mut body = openai_completion();
    body["choices"][0]["message"]["tool_calls"][1]["function"]["arguments"] = json!("{oops");
    let err = openai_response_to_anthropic(&body, "").unwrap_err();
    assert_eq!(
        err.path(),
        "choices[0].message.tool_calls[1].function.arguments"
    );
    assert!(matches!(err, TranslateError::Json { .. }));
    let cases = [
        (json!(null), "$"),
        (json!({"choices": []}), "choices[0]"),
        (json!({"choices": [{"index": 0}]}), "choices[0].message"),
        (
            json!({"choices": [{"message": {"tool_calls": [{"function": {}}]}}]}),
            "choices[0].message.tool_calls[0].function.name",
        ),
    ];
    for (body, path) in cases {
        assert_eq!(
            openai_response_to_anthropic(&body, "").unwrap_err().path(),
            path
        );
    }
    let cases = [
        (json!(7), "$"),
        (json!({"type": "message"}), "content"),
        (json!({"content": {}}), "content"),
        (
            json!({"content": [{"type": "tool_use", "name": "f"}]}),
            "content[0].id",
        ),
    ];
    for (body, path) in cases {
        assert_eq!(
            anthropic_response_to_openai(&body, "").unwrap_err().path(),
            path
        );
    }
}

#[test]
fn error_bodies_both_ways() {
    let a = json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}});
    let o = anthropic_error_to_openai(&a);
    assert_eq!(
        o,
        json!({"error": {"message": "Slow down", "type": "requests", "param": null,
                         "code": "rate_limit_exceeded"}})
    );
    assert_eq!(openai_error_to_anthropic(&o), a);
    for ty in [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "billing_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
    ] {
        let a = json!({"type": "error", "error": {"type": ty, "message": "m"}});
        assert_eq!(
            openai_error_to_anthropic(&anthropic_error_to_openai(&a)),
            a,
            "{ty}"
        );
    }
    // Real OpenAI bodies.
    let cases = [
        (
            json!({"error": {"message": "m", "type": "invalid_request_error",
            "param": null, "code": "invalid_api_key"}}),
            "authentication_error",
        ),
        (
            json!({"error": {"message": "m", "type": "tokens", "param": null, "code": null}}),
            "rate_limit_error",
        ),
        (
            json!({"error": {"message": "m", "type": "invalid_request_error", "param": "messages",
            "code": "context_length_exceeded"}}),
            "invalid_request_error",
        ),
        (
            json!({"error": {"message": "m", "type": "invalid_request_error", "code": "model_not_found"}}),
            "not_found_error",
        ),
        (
            json!({"error": {"message": "m", "type": "server_error", "code": 500}}),
            "api_error",
        ),
        (
            json!({"error": {"message": "m", "type": "something_new"}}),
            "api_error",
        ),
    ];
    for (o, ty) in cases {
        let a = openai_error_to_anthropic(&o);
        assert_eq!(a["error"]["type"], ty, "{o}");
        assert_eq!(a["error"]["message"], "m", "{o}");
    }
    // Unknown Anthropic types are kept; odd bodies still give a message.
    let o = anthropic_error_to_openai(
        &json!({"type": "error", "error": {"type": "new_error", "message": "x"}}),
    );
    assert_eq!(o["error"]["type"], "new_error");
    assert_eq!(o["error"]["code"], Value::Null);
    assert_eq!(
        anthropic_error_to_openai(&json!("upstream down"))["error"]["message"],
        "upstream down"
    );
    assert_eq!(
        anthropic_error_to_openai(&json!({"a": 1}))["error"]["message"],
        "{\"a\":1}"
    );
    assert_eq!(
        openai_error_to_anthropic(&json!({"error": "bad"}))["error"]["message"],
        "bad"
    );
    assert_eq!(
        openai_error_to_anthropic(&json!({"message": "top"}))["error"]["message"],
        "top"
    );
    assert_eq!(
        openai_error_to_anthropic(&json!(null))["error"]["type"],
        "api_error"
    );
}
