use super::*;
use serde_json::json;

fn scope(namespace: &str) -> Scope<'_> {
    Scope {
        namespace,
        model: "gpt-4o",
        operation: Operation::Chat,
        isolation: None,
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
        json!({"temperature": 0, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}),
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
