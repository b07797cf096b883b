//! Tests of [`mask_json`]: the text fields of each answer shape are masked,
//! ids, `model` and `usage` are not.

use super::*;
use serde_json::json;

fn builtins() -> Masker {
    Masker::new(&Builtin::ALL.map(MaskRule::builtin)).unwrap()
}

#[test]
fn mask_json_shapes() {
    let m = &builtins();
    let mut chat = json!({
        "id": "chatcmpl-a@b.io", "model": "gpt-4o",
        "choices": [{"index": 0, "message": {
            "role": "assistant",
            "content": "mail a@b.io",
            "refusal": "call +1 415-555-0199",
            "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "send", "arguments": "{\"to\":\"c@d.org\"}"}}]
        }, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "note": "x@y.com"}
    });
    assert!(mask_json(m, &mut chat));
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        "mail [REDACTED:email]"
    );
    assert_eq!(
        chat["choices"][0]["message"]["refusal"],
        "call [REDACTED:phone]"
    );
    assert_eq!(
        chat["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"to\":\"[REDACTED:email]\"}"
    );
    assert_eq!(chat["id"], "chatcmpl-a@b.io");
    assert_eq!(chat["usage"]["note"], "x@y.com");
    assert!(!mask_json(m, &mut chat), "second pass changes nothing");

    let mut parts = json!({"choices": [{"message": {"content": [
        {"type": "text", "text": "to a@b.io"}, {"type": "image_url", "image_url": {"url": "x"}}
    ]}}]});
    assert!(mask_json(m, &mut parts));
    assert_eq!(
        parts["choices"][0]["message"]["content"][0]["text"],
        "to [REDACTED:email]"
    );

    let mut legacy = json!({"object": "text_completion", "choices": [{"index": 0, "text": "4111 1111 1111 1111"}]});
    assert!(mask_json(m, &mut legacy));
    assert_eq!(legacy["choices"][0]["text"], "[REDACTED:card]");

    let mut anthropic = json!({"type": "message", "model": "claude", "content": [
        {"type": "text", "text": "key AKIAIOSFODNN7EXAMPLE"},
        {"type": "tool_use", "id": "t", "name": "n", "input": {"text": "a@b.io"}}
    ], "usage": {"input_tokens": 3}});
    let before = anthropic.clone();
    assert!(mask_json(m, &mut anthropic));
    assert_eq!(anthropic["content"][0]["text"], "key [REDACTED:api_key]");
    assert_eq!(anthropic["content"][1], before["content"][1]);

    let mut clean = json!({"choices": [{"message": {"content": "hello"}}]});
    assert!(!mask_json(m, &mut clean));
}
