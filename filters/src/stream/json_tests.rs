use super::*;
use crate::stream::testutil::{CHARS, WORDS};
use serde_json::json;

fn body(contents: &[&str], usage: Option<(u64, u64)>) -> Value {
    let choices: Vec<Value> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "index": i,
                "message": {"role": "assistant", "content": c, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            })
        })
        .collect();
    let mut v = json!({
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": choices,
        "system_fingerprint": "fp_eb9dce56a8"
    });
    if let Some((p, c)) = usage {
        v["usage"] = json!({
            "prompt_tokens": p,
            "completion_tokens": c,
            "total_tokens": p + c,
            "completion_tokens_details": {"reasoning_tokens": 0}
        });
    }
    v
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn rewritten(o: &JsonOutcome) -> Value {
    o.rewritten
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null)
}

#[test]
fn untouched_under_cap() {
    let b = bytes(&body(&["one two three"], Some((11, 3))));
    for cap in [None, Some(3), Some(50)] {
        let o = enforce_json(&b, &WORDS, cap, 99);
        assert_eq!(
            o,
            JsonOutcome {
                rewritten: None,
                usage: Some((11, 3)),
                truncated: false
            }
        );
    }
    // No usage in the body: own count, the gateway's prompt count.
    let b = bytes(&body(&["one two three"], None));
    let o = enforce_json(&b, &WORDS, Some(10), 99);
    assert_eq!(o.usage, Some((99, 3)));
    assert_eq!(o.rewritten, None);
}

#[test]
fn cut_at_cap_and_usage_fixed() {
    let b = bytes(&body(&["one two three four five"], Some((11, 5))));
    for cap in 0..5u64 {
        let o = enforce_json(&b, &WORDS, Some(cap), 99);
        assert!(o.truncated);
        assert_eq!(o.usage, Some((11, cap)));
        let v = rewritten(&o);
        let content = v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("?");
        assert_eq!(WORDS.count(content) as u64, cap);
        assert!("one two three four five".starts_with(content));
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], cap);
        assert_eq!(v["usage"]["total_tokens"], 11 + cap);
        assert_eq!(
            v["usage"]["completion_tokens_details"]["reasoning_tokens"],
            0
        );
        assert_eq!(v["id"], "chatcmpl-123");
        assert_eq!(v["system_fingerprint"], "fp_eb9dce56a8");
    }
}

#[test]
fn later_choices_are_emptied() {
    let b = bytes(&body(&["a b", "c d e", "f"], None));
    let o = enforce_json(&b, &WORDS, Some(3), 7);
    let v = rewritten(&o);
    assert_eq!(o.usage, Some((7, 3)));
    assert_eq!(v["choices"][0]["message"]["content"], "a b");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["choices"][1]["message"]["content"], "c");
    assert_eq!(v["choices"][1]["finish_reason"], "length");
    assert_eq!(v["choices"][2]["message"]["content"], "");
    assert_eq!(v["choices"][2]["finish_reason"], "length");
    assert!(v.get("usage").is_none(), "no usage object is invented");
}

#[test]
fn provider_count_decides_whether_to_cut() {
    // The provider reports within the cap: trusted, even if we count more.
    let b = bytes(&body(&["one two three four"], Some((1, 2))));
    let o = enforce_json(&b, &WORDS, Some(3), 0);
    assert_eq!(o.rewritten, None);
    assert_eq!(o.usage, Some((1, 2)));
    // Over the cap by the provider, but the visible text fits (hidden
    // reasoning tokens): nothing to cut.
    let b = bytes(&body(&["one two"], Some((1, 900))));
    let o = enforce_json(&b, &WORDS, Some(3), 0);
    assert_eq!(o.rewritten, None);
    assert_eq!(o.usage, Some((1, 900)));
    assert!(!o.truncated);
}

#[test]
fn tool_calls_and_legacy_text() {
    let v = json!({
        "id": "x", "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}}
            ]},
            "finish_reason": "tool_calls"
        }]
    });
    // Chars: f(1) + 7 + g(1) + 2 = 11.
    let o = enforce_json(&bytes(&v), &CHARS, None, 0);
    assert_eq!(o.usage, Some((0, 11)));
    let o = enforce_json(&bytes(&v), &CHARS, Some(5), 0);
    let r = rewritten(&o);
    let calls = r["choices"][0]["message"]["tool_calls"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["arguments"], "{\"a\"");
    assert_eq!(r["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(r["choices"][0]["finish_reason"], "length");
    assert_eq!(o.usage, Some((0, 5)));

    let legacy = json!({
        "object": "text_completion",
        "choices": [{"text": "one two three", "index": 0, "logprobs": {"tokens": ["one"]}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
    });
    let o = enforce_json(&bytes(&legacy), &WORDS, Some(1), 0);
    let r = rewritten(&o);
    assert_eq!(r["choices"][0]["text"], "one");
    assert_eq!(r["choices"][0]["logprobs"], Value::Null);
    assert_eq!(r["usage"]["total_tokens"], 5);
}

#[test]
fn garbage_input() {
    for b in [
        &b""[..],
        b"not json",
        b"{\"error\":{\"message\":\"bad\"}}",
        b"[1,2,3]",
        b"{\"choices\":\"x\"}",
        b"\xff\xfe",
        b"{\"choices\":[",
    ] {
        let o = enforce_json(b, &WORDS, Some(1), 5);
        assert_eq!(o, JsonOutcome::default(), "{}", String::from_utf8_lossy(b));
    }
    // Odd choices inside a valid shape are counted as empty, never panic.
    let o = enforce_json(
        br#"{"choices":[1,null,{"message":7},{"message":{"content":["x"]}}]}"#,
        &WORDS,
        Some(0),
        5,
    );
    assert_eq!(o.usage, Some((5, 0)));
    assert_eq!(o.rewritten, None);
}

#[test]
fn sized_cut_is_padded_to_the_original_length() {
    let b = bytes(&body(&["one two three four five six"], Some((11, 6))));
    let plain = enforce_json(&b, &WORDS, Some(2), 99);
    let sized = enforce_json_sized(&b, &WORDS, Some(2), 99);
    let out = sized.rewritten.clone().unwrap_or_default();
    assert_eq!(out.len(), b.len());
    assert!(out.ends_with(b" "));
    assert_eq!(rewritten(&sized), rewritten(&plain));
    assert_eq!(sized.usage, Some((11, 2)));
    assert!(sized.truncated);
}

#[test]
fn sized_cut_that_would_grow_cuts_one_more_token() {
    // "ab" cut to "a" saves 1 byte, "stop" -> "length" costs 2: the body
    // would grow, so one more token goes.
    let b = bytes(&body(&["ab"], Some((3, 2))));
    let plain = enforce_json(&b, &CHARS, Some(1), 3);
    assert_eq!(plain.rewritten.as_ref().map(Vec::len), Some(b.len() + 1));
    let sized = enforce_json_sized(&b, &CHARS, Some(1), 3);
    assert_eq!(sized.rewritten.as_ref().map(Vec::len), Some(b.len()));
    let v = rewritten(&sized);
    assert_eq!(v["choices"][0]["message"]["content"], "");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 0);
    assert_eq!(sized.usage, Some((3, 0)));
}

#[test]
fn sized_untouched_and_uncapped_pass_as_is() {
    let b = bytes(&body(&["one two three"], Some((11, 3))));
    for cap in [None, Some(3)] {
        let o = enforce_json_sized(&b, &WORDS, cap, 99);
        assert_eq!(o.rewritten, None);
        assert_eq!(o.usage, Some((11, 3)));
    }
}

#[test]
fn fast_path_agrees_with_the_full_path() {
    // Reported usage within the cap: the fast path answers. Shapes it does
    // not accept fall through to the full path with the same result as
    // before: usage without completion_tokens, a float count.
    let ok = bytes(&body(&["one two"], Some((5, 2))));
    assert_eq!(enforce_json(&ok, &WORDS, Some(2), 0).usage, Some((5, 2)));
    let mut v = body(&["one two"], Some((5, 2)));
    v["usage"] = json!({"prompt_tokens": 5});
    assert_eq!(
        enforce_json(&bytes(&v), &WORDS, Some(9), 0).usage,
        Some((5, 2))
    );
    v["usage"] = json!({"prompt_tokens": 5, "completion_tokens": 2.5});
    assert_eq!(
        enforce_json(&bytes(&v), &WORDS, Some(9), 0).usage,
        Some((5, 2))
    );
    // Not a response: no usage, nothing rewritten.
    let err = br#"{"usage":{"completion_tokens":1},"choices":{}}"#;
    assert_eq!(
        enforce_json(err, &WORDS, Some(9), 0),
        JsonOutcome::default()
    );
}
