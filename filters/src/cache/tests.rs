use super::*;
use serde_json::json;

fn scope(namespace: &str) -> Scope<'_> {
    Scope {
        namespace,
        model: "gpt-4o",
        operation: Operation::Chat,
        isolation: None,
        max_output: Some(16),
    }
}

fn parsed(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn field_order_whitespace_and_delivery_do_not_change_the_key() {
    let a = parsed(
        r#"{"model":"gpt-4o","temperature":0,"messages":[{"role":"user","content":"hi"}],"max_tokens":16}"#,
    );
    let b = parsed(
        r#"{ "messages" : [ { "content" : "hi" , "role" : "user" } ],
            "max_tokens": 16, "temperature": 0.0, "stream": true,
            "stream_options": {"include_usage": true}, "user": "u-1", "model": "other" }"#,
    );
    assert_eq!(key(&scope("ns"), &a), key(&scope("ns"), &b));
}

#[test]
fn what_changes_the_answer_changes_the_key() {
    let base = json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}]});
    let k = key(&scope("ns"), &base);
    for changed in [
        json!({"temperature": 0, "messages": [{"role": "user", "content": "hi!"}]}),
        json!({"temperature": 0, "messages": [{"role": "system", "content": "hi"}]}),
        json!({"temperature": 0.5, "messages": [{"role": "user", "content": "hi"}]}),
        json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}],
               "response_format": {"type": "json_object"}}),
        json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}],
               "tools": [{"type": "function", "function": {"name": "f"}}]}),
        json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}], "some_new_knob": 1}),
    ] {
        assert_ne!(key(&scope("ns"), &changed), k, "{changed}");
    }
    // Array order is meaning: messages in another order are another request.
    let two =
        json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]});
    let swapped =
        json!({"messages": [{"role": "user", "content": "b"}, {"role": "user", "content": "a"}]});
    assert_ne!(key(&scope("ns"), &two), key(&scope("ns"), &swapped));
}

#[test]
fn scopes_never_share_an_entry() {
    let body = json!({"temperature": 0, "messages": []});
    let k = key(&scope("team-a"), &body);
    assert_ne!(key(&scope("team-b"), &body), k);
    let other_model = Scope {
        model: "gpt-4o-mini",
        ..scope("team-a")
    };
    assert_ne!(key(&other_model, &body), k);
    let isolated = Scope {
        isolation: Some("key-1"),
        ..scope("team-a")
    };
    assert_ne!(key(&isolated, &body), k);
    let other_key = Scope {
        isolation: Some("key-2"),
        ..scope("team-a")
    };
    assert_ne!(key(&isolated, &body), key(&other_key, &body));
    let embeddings = Scope {
        operation: Operation::Embeddings,
        ..scope("team-a")
    };
    assert_ne!(key(&embeddings, &body), k);
    // Parts cannot run into each other.
    let ab = Scope {
        namespace: "a",
        model: "bc",
        ..scope("")
    };
    let abc = Scope {
        namespace: "ab",
        model: "c",
        ..scope("")
    };
    assert_ne!(key(&ab, &body), key(&abc, &body));
}

#[test]
fn only_fixed_output_is_cacheable_by_default() {
    let chat = |v: Value| cacheable(Operation::Chat, &v, false, false);
    assert_eq!(chat(json!({"temperature": 0, "messages": []})), Ok(()));
    assert_eq!(chat(json!({"seed": 7, "messages": []})), Ok(()));
    assert_eq!(chat(json!({"messages": []})), Err(NotCacheable::Sampled));
    assert_eq!(
        chat(json!({"temperature": 0.2, "messages": []})),
        Err(NotCacheable::Sampled)
    );
    assert_eq!(
        cacheable(Operation::Chat, &json!({"messages": []}), true, false),
        Ok(())
    );
    assert_eq!(
        cacheable(Operation::Embeddings, &json!({"input": "x"}), false, false),
        Ok(())
    );
    let tools = json!({"temperature": 0, "messages": [],
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    assert_eq!(chat(tools.clone()), Err(NotCacheable::Tools));
    assert_eq!(cacheable(Operation::Chat, &tools, false, true), Ok(()));
    let result = json!({"temperature": 0, "messages": [
        {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c", "content": "42"}]});
    assert_eq!(chat(result), Err(NotCacheable::Tools));
}

proptest::proptest! {
    /// Any member order, at any depth, with any whitespace: one key.
    #[test]
    fn member_order_never_changes_the_key(
        members in proptest::collection::btree_map("[a-z]{1,6}", 0i64..1000, 1..8),
        nested in proptest::collection::btree_map("[a-z]{1,6}", "[ -~]{0,12}", 0..5),
        rotate in 0usize..8,
    ) {
        let render = |order: &[(&String, String)], spaced: bool| {
            let sep = if spaced { " , " } else { "," };
            let body: Vec<String> = order.iter().map(|(k, v)| format!("{}:{v}", Value::from(k.as_str()))).collect();
            format!("{{{}}}", body.join(sep))
        };
        let inner: Vec<(&String, String)> = nested.iter().map(|(k, v)| (k, Value::from(v.as_str()).to_string())).collect();
        let mut inner_rev = inner.clone();
        inner_rev.reverse();
        let mut outer: Vec<(&String, String)> = members.iter().map(|(k, v)| (k, v.to_string())).collect();
        let nested_key = "zz_nested".to_string();
        outer.push((&nested_key, render(&inner, false)));
        let a = render(&outer, false);
        let mut shuffled = outer.clone();
        let len = shuffled.len();
        shuffled.rotate_left(rotate % len);
        if let Some(last) = shuffled.iter_mut().find(|(k, _)| *k == &nested_key) {
            last.1 = render(&inner_rev, true);
        }
        let b = render(&shuffled, true);
        let (a, b): (Value, Value) = (serde_json::from_str(&a).unwrap(), serde_json::from_str(&b).unwrap());
        proptest::prop_assert_eq!(key(&scope("ns"), &a), key(&scope("ns"), &b));
    }
}

#[test]
fn the_output_limit_is_the_clients_not_the_bodys() {
    let a = parsed(r#"{"messages":[],"temperature":0,"max_tokens":16}"#);
    let lowered = parsed(r#"{"messages":[],"temperature":0,"max_tokens":3}"#);
    assert_eq!(key(&scope("ns"), &a), key(&scope("ns"), &lowered));
    let other = Scope {
        max_output: Some(17),
        ..scope("ns")
    };
    assert_ne!(key(&other, &a), key(&scope("ns"), &a));
    let none = Scope {
        max_output: None,
        ..scope("ns")
    };
    assert_ne!(key(&none, &a), key(&scope("ns"), &a));
}

#[test]
fn cache_control_directives() {
    assert_eq!(directive(None), Directive::Use);
    assert_eq!(directive(Some("max-age=60")), Directive::Use);
    assert_eq!(directive(Some("No-Cache")), Directive::Refresh);
    assert_eq!(directive(Some(" max-age = 0 ")), Directive::Refresh);
    assert_eq!(directive(Some("no-cache, NO-STORE")), Directive::Bypass);
    assert_eq!(directive(Some("private,no-store")), Directive::Bypass);
    assert_eq!(directive(Some("no-storex")), Directive::Use);
}

#[test]
fn freshness_by_age() {
    assert_eq!(freshness(1_000, 1_000, 10, 5), Freshness::Fresh);
    assert_eq!(freshness(1_000, 1_009, 10, 5), Freshness::Fresh);
    assert_eq!(freshness(1_000, 1_010, 10, 5), Freshness::Stale);
    assert_eq!(freshness(1_000, 1_014, 10, 5), Freshness::Stale);
    assert_eq!(freshness(1_000, 1_015, 10, 5), Freshness::Expired);
    assert_eq!(freshness(1_000, 1_010, 10, 0), Freshness::Expired);
    // A clock that went back.
    assert_eq!(freshness(1_000, 10, 10, 0), Freshness::Fresh);
    assert_eq!(freshness(0, 5, u64::MAX, u64::MAX), Freshness::Fresh);
    assert_eq!(freshness(0, 20, 10, u64::MAX), Freshness::Stale);
}

mod shapes {
    use super::super::replay::*;
    use bytes::Bytes;
    use serde_json::{json, Value};

    const STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\",\"tool_calls\":[{\"index\":0,\"id\":\"t1\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\"\"}}]},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":7,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\n\n",
        "data: [DONE]\n\n"
    );

    #[test]
    fn a_stream_becomes_one_completion() {
        let v: Value = serde_json::from_slice(&stream_to_json(STREAM.as_bytes()).unwrap()).unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["id"], "c1");
        let m = &v["choices"][0]["message"];
        assert_eq!(m["content"], "Hello");
        assert_eq!(m["tool_calls"][0]["id"], "t1");
        assert_eq!(m["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
        assert!(m["tool_calls"][0].get("index").is_none());
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["total_tokens"], 7);
        assert!(complete(true, STREAM.as_bytes()));
    }

    #[test]
    fn a_completion_becomes_a_stream_and_back() {
        let body = json!({"id": "c2", "object": "chat.completion", "created": 9, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there",
              "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
              "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
        let bytes = serde_json::to_vec(&body).unwrap();
        assert!(complete(false, &bytes));
        let chunks = json_to_stream(&bytes).unwrap();
        let joined: Vec<u8> = chunks.concat();
        assert!(complete(true, &joined));
        let back: Value = serde_json::from_slice(&stream_to_json(&joined).unwrap()).unwrap();
        assert_eq!(back["choices"][0]["message"], body["choices"][0]["message"]);
        assert_eq!(back["usage"], body["usage"]);
        assert_eq!(back["id"], "c2");
    }

    #[test]
    fn incomplete_answers_are_not_whole() {
        let cut = &STREAM[..STREAM.find("data: [DONE]").unwrap()];
        assert!(!complete(true, cut.as_bytes()));
        let no_finish =
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n";
        assert!(!complete(true, no_finish.as_bytes()));
        assert!(!complete(true, b"data: {\"error\":{}}\n\ndata: [DONE]\n\n"));
        assert!(!complete(false, b"{\"error\":{\"message\":\"x\"}}"));
        assert!(!complete(false, b"{\"choices\":[]"));
        assert!(complete(false, b"{\"object\":\"list\",\"data\":[]}"));
    }

    #[test]
    fn usage_fits_the_client() {
        let chunks: Vec<Bytes> = STREAM
            .split_inclusive("\n\n")
            .map(|c| Bytes::from(c.to_string()))
            .collect();
        let without = fit_usage(&chunks, false, Some((5, 2)));
        assert_eq!(without.len(), chunks.len() - 1);
        assert_eq!(fit_usage(&chunks, true, None), chunks);
        let added = fit_usage(&without, true, Some((5, 2)));
        assert_eq!(added.len(), chunks.len());
        let text = String::from_utf8(added.concat()).unwrap();
        assert!(text.contains("\"total_tokens\":7"));
        assert!(text.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn multi_line_and_crlf_events() {
        assert_eq!(
            data_events(b": c\r\ndata: a\r\ndata: b\r\n\r\nevent: x\ndata:c\n\n"),
            vec!["a\nb".to_string(), "c".to_string()]
        );
    }
}

#[test]
fn answers_stopped_at_their_limit_are_told() {
    use super::replay::stopped_at_limit;
    assert!(stopped_at_limit(
        false,
        br#"{"choices":[{"finish_reason":"length"}]}"#
    ));
    assert!(!stopped_at_limit(
        false,
        br#"{"choices":[{"finish_reason":"stop"}]}"#
    ));
    assert!(stopped_at_limit(
        true,
        b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n"
    ));
    assert!(!stopped_at_limit(true, b"data: [DONE]\n\n"));
}
