//! Property tests over all body translators: random JSON built from both
//! APIs' field names never panics, and whatever translates has the target
//! API's required fields and translates back without panicking.

use serde_json::{json, Value};

use super::*;

/// JSON values built from the names both APIs use, so that random bodies
/// reach deep into the translators.
fn wire_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    const KEYS: &[&str] = &[
        "model",
        "messages",
        "role",
        "content",
        "type",
        "text",
        "image_url",
        "url",
        "tool_calls",
        "function",
        "name",
        "arguments",
        "tool_call_id",
        "tools",
        "tool_choice",
        "parameters",
        "input_schema",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "system",
        "source",
        "media_type",
        "data",
        "input",
        "id",
        "tool_use_id",
        "choices",
        "message",
        "usage",
        "error",
        "file",
        "file_data",
        "metadata",
        "user_id",
        "stream",
        "n",
        "temperature",
        "stop_sequences",
        "parallel_tool_calls",
        "refusal",
        "thinking",
    ];
    const STRINGS: &[&str] = &[
        "user",
        "assistant",
        "system",
        "developer",
        "tool",
        "text",
        "image_url",
        "image",
        "tool_use",
        "tool_result",
        "function",
        "auto",
        "any",
        "required",
        "none",
        "tool",
        "data:image/png;base64,AA",
        "https://x",
        "{}",
        "{\"a\":1}",
        "[1]",
        "{bad",
        "base64",
        "url",
        "document",
        "thinking",
        "file",
        "custom",
        "",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-2i64..3).prop_map(|n| json!(n)),
        Just(json!(1.5)),
        proptest::sample::select(STRINGS).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    #[test]
    fn bodies_never_panic(v in wire_value()) {
        let _ = openai_to_anthropic(&v, 16);
        let _ = anthropic_to_openai(&v);
        let _ = anthropic_response_to_openai(&v, "m");
        let _ = openai_response_to_anthropic(&v, "");
        let _ = anthropic_error_to_openai(&v);
        let _ = openai_error_to_anthropic(&v);
        // Whatever translates must translate back without panicking, and a
        // translated request always has the target's required fields.
        if let Ok(a) = openai_to_anthropic(&v, 16) {
            proptest::prop_assert!(a["max_tokens"].is_u64());
            proptest::prop_assert!(a["messages"].is_array());
            let _ = anthropic_to_openai(&a);
        }
        if let Ok(o) = anthropic_to_openai(&v) {
            proptest::prop_assert!(o["messages"].is_array());
            let _ = openai_to_anthropic(&o, 16);
        }
    }
}
