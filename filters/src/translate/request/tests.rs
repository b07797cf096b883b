use serde_json::json;

use super::*;

#[test]
fn openai_text_system_multi_turn() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How are you?"},
        ],
        "max_tokens": 50,
        "stop": "END",
        "temperature": 1.5,
        "top_p": 0.9,
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "u-1",
        "n": 1,
        "presence_penalty": 0.3,
    });
    let out = openai_to_anthropic(&body, 4096).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude-sonnet-4-5",
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "How are you?"},
            ],
            "max_tokens": 50,
            "stop_sequences": ["END"],
            "temperature": 1.0,
            "top_p": 0.9,
            "stream": true,
            "metadata": {"user_id": "u-1"},
        })
    );
}

#[test]
fn openai_max_tokens_precedence_and_default() {
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    assert_eq!(
        openai_to_anthropic(&base, 4096).unwrap()["max_tokens"],
        4096
    );
    let mut b = base.clone();
    b["max_tokens"] = json!(10);
    b["max_completion_tokens"] = json!(20);
    assert_eq!(openai_to_anthropic(&b, 4096).unwrap()["max_tokens"], 20);
    b["max_completion_tokens"] = json!(null);
    assert_eq!(openai_to_anthropic(&b, 4096).unwrap()["max_tokens"], 10);
    b["max_tokens"] = json!(-1);
    let err = openai_to_anthropic(&b, 4096).unwrap_err();
    assert_eq!(err.path(), "max_tokens");
}

#[test]
fn openai_several_system_and_developer_messages_become_blocks() {
    let body = json!({"messages": [
        {"role": "system", "content": "A"},
        {"role": "user", "content": "q"},
        {"role": "developer", "content": [{"type": "text", "text": "B"}, {"type": "text", "text": "C"}]},
        {"role": "system", "content": ""},
    ]});
    let out = openai_to_anthropic(&body, 1).unwrap();
    assert_eq!(
        out["system"],
        json!([
            {"type": "text", "text": "A"},
            {"type": "text", "text": "B"},
            {"type": "text", "text": "C"},
        ])
    );
    assert_eq!(out["messages"], json!([{"role": "user", "content": "q"}]));
}

#[test]
fn openai_images_and_files() {
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}},
    ]}]});
    let out = openai_to_anthropic(&body, 1).unwrap();
    assert_eq!(
        out["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is in these?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "title": "a.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}},
        ])
    );
    let bad = json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://x"}}]}]});
    assert_eq!(
        openai_to_anthropic(&bad, 1).unwrap_err().path(),
        "messages[0].content[0].image_url.url"
    );
    let audio = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "x"}, {"type": "input_audio", "input_audio": {}}]}]});
    let err = openai_to_anthropic(&audio, 1).unwrap_err();
    assert!(matches!(err, TranslateError::Unsupported { .. }));
    assert_eq!(err.path(), "messages[0].content[1].type");
}

fn tool_conversation() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function",
                 "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "25C"}]},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            "strict": true,
        }}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "parallel_tool_calls": false,
    })
}

#[test]
fn openai_tools_calls_and_results() {
    let out = openai_to_anthropic(&tool_conversation(), 1024).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "gpt-4o",
            "max_tokens": 1024,
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2",
                     "content": [{"type": "text", "text": "25C"}]},
                ]},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [{"name": "weather", "description": "Current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": true},
        })
    );
}

#[test]
fn openai_tool_choice_values() {
    let cases = [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ];
    for (given, want) in cases {
        let body = json!({"messages": [], "tool_choice": given});
        assert_eq!(openai_to_anthropic(&body, 1).unwrap()["tool_choice"], want);
    }
    let body = json!({"messages": [], "tool_choice": "sometimes"});
    assert_eq!(
        openai_to_anthropic(&body, 1).unwrap_err().path(),
        "tool_choice"
    );
    // parallel_tool_calls: false alone → auto without parallel use.
    let body = json!({"messages": [], "tools": [], "parallel_tool_calls": false});
    assert_eq!(
        openai_to_anthropic(&body, 1).unwrap()["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
}

#[test]
fn openai_errors_name_the_field() {
    let mut body = tool_conversation();
    body["messages"][1]["tool_calls"][1]["function"]["arguments"] = json!("{\"city\":");
    let err = openai_to_anthropic(&body, 1).unwrap_err();
    assert!(matches!(err, TranslateError::Json { .. }));
    assert_eq!(err.path(), "messages[1].tool_calls[1].function.arguments");
    assert!(err
        .to_string()
        .starts_with("messages[1].tool_calls[1].function.arguments: invalid JSON"));

    body["messages"][1]["tool_calls"][1]["function"]["arguments"] = json!("[1]");
    let err = openai_to_anthropic(&body, 1).unwrap_err();
    assert_eq!(err.path(), "messages[1].tool_calls[1].function.arguments");

    let cases = [
        (json!([]), "$"),
        (json!({}), "messages"),
        (json!({"messages": {}}), "messages"),
        (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
        (
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].tool_call_id",
        ),
        (json!({"messages": [], "n": 2}), "n"),
        (json!({"messages": [], "stop": 3}), "stop"),
        (
            json!({"messages": [], "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [], "tools": [{"type": "function", "function": {}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"type": "function",
            "function": {"name": "f", "arguments": "{}"}}]}]}),
            "messages[0].tool_calls[0].id",
        ),
    ];
    for (body, path) in cases {
        let err = openai_to_anthropic(&body, 1).unwrap_err();
        assert_eq!(err.path(), path, "{body}");
    }
}

#[test]
fn openai_empty_arguments_and_empty_assistant() {
    let body = json!({"messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "now", "arguments": ""}}]},
    ]});
    let out = openai_to_anthropic(&body, 1).unwrap();
    assert_eq!(
        out["messages"],
        json!([
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "c", "name": "now", "input": {}}]},
        ])
    );
}

fn anthropic_conversation() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "system": "You are terse.",
        "max_tokens": 256,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Describe, then check the weather"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4A"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "A cat. "},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3C"},
                {"type": "tool_result", "tool_use_id": "toolu_2",
                 "content": [{"type": "text", "text": "unknown city"}]},
            ]},
            {"role": "assistant", "content": "Done."},
        ],
        "tools": [{"name": "weather", "description": "Weather now",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": true},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.25,
        "top_p": 0.5,
        "stream": true,
        "metadata": {"user_id": "u-9"},
    })
}

#[test]
fn anthropic_to_openai_full() {
    let out = anthropic_to_openai(&anthropic_conversation()).unwrap();
    assert_eq!(
        out,
        json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Describe, then check the weather"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ]},
                {"role": "assistant", "content": "A cat. Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function",
                     "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}},
                    {"id": "toolu_2", "type": "function",
                     "function": {"name": "weather", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "3C"},
                {"role": "tool", "tool_call_id": "toolu_2",
                 "content": [{"type": "text", "text": "unknown city"}]},
                {"role": "assistant", "content": "Done."},
            ],
            "max_completion_tokens": 256,
            "stop": ["\n\nHuman:"],
            "temperature": 0.25,
            "top_p": 0.5,
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "u-9",
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather now",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "parallel_tool_calls": false,
        })
    );
}

#[test]
fn anthropic_round_trip_through_openai() {
    let mut original = anthropic_conversation();
    // Lossy on purpose: assistant text blocks are joined into one string.
    original["messages"][1]["content"][0]["text"] = json!("A cat. Checking.");
    if let Some(blocks) = original["messages"][1]["content"].as_array_mut() {
        blocks.remove(1);
    }
    let there = anthropic_to_openai(&original).unwrap();
    let back = openai_to_anthropic(&there, 1).unwrap();
    assert_eq!(back, original);
}

#[test]
fn openai_round_trip_through_anthropic() {
    let mut original = tool_conversation();
    original["max_completion_tokens"] = json!(300);
    original["stop"] = json!(["x", "y"]);
    original["temperature"] = json!(0.5);
    original["user"] = json!("someone");
    // Lossy on purpose: `strict` has no Anthropic counterpart.
    original["tools"][0]["function"]
        .as_object_mut()
        .unwrap()
        .remove("strict");
    original["messages"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"role": "system", "content": "sys"}));
    original["messages"][1]["content"] = json!([
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGR"}},
    ]);
    let there = openai_to_anthropic(&original, 1).unwrap();
    let back = anthropic_to_openai(&there).unwrap();
    assert_eq!(back, original);
}

#[test]
fn anthropic_system_blocks_mixed_user_content_and_thinking() {
    let body = json!({
        "system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "B"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "ok", "is_error": true},
                {"type": "text", "text": "go on"},
                {"type": "document", "title": "d.pdf",
                 "source": {"type": "base64", "media_type": "application/pdf", "data": "JVB"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "t2", "name": "f", "input": {"a": [1, 2]}},
            ]},
        ],
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    });
    let out = anthropic_to_openai(&body).unwrap();
    assert_eq!(
        out,
        json!({"messages": [
            {"role": "system", "content": "A"},
            {"role": "system", "content": "B"},
            {"role": "tool", "tool_call_id": "t", "content": "ok"},
            {"role": "user", "content": [
                {"type": "text", "text": "go on"},
                {"type": "file", "file": {"filename": "d.pdf", "file_data": "data:application/pdf;base64,JVB"}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "t2", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1,2]}"}}]},
        ]})
    );
}

#[test]
fn anthropic_errors_name_the_field() {
    let cases = [
        (json!("x"), "$"),
        (json!({}), "messages"),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "video"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image",
            "source": {"type": "file", "file_id": "f"}}]}]}),
            "messages[0].content[0].source.type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
            "content": [{"type": "image"}]}]}]}),
            "messages[0].content[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": [{"type": "server_tool_use"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]}),
            "messages[0].content[0].id",
        ),
        (
            json!({"messages": [], "system": [{"type": "image"}]}),
            "system[0].type",
        ),
        (
            json!({"messages": [], "tools": [{"type": "web_search_20250305", "name": "w"}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [], "tool_choice": {"type": "maybe"}}),
            "tool_choice.type",
        ),
        (
            json!({"messages": [], "tool_choice": {"type": "tool"}}),
            "tool_choice.name",
        ),
        (json!({"messages": [], "max_tokens": "many"}), "max_tokens"),
        (json!({"messages": [], "stream": "yes"}), "stream"),
    ];
    for (body, path) in cases {
        let err = anthropic_to_openai(&body).unwrap_err();
        assert_eq!(err.path(), path, "{body}");
    }
}

#[test]
fn anthropic_tool_choice_values() {
    let cases = [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
    ];
    for (given, want) in cases {
        let out = anthropic_to_openai(&json!({"messages": [], "tool_choice": given})).unwrap();
        assert_eq!(out["tool_choice"], want);
        assert!(out.get("parallel_tool_calls").is_none());
    }
}
