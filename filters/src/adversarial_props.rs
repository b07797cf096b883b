//! Property tests over what clients and upstreams send, for the parsers
//! that have none of their own: request facts (dotted body fields, query
//! parameters), matcher decisions under equivalent spellings, and the
//! non-streaming answer check. No input panics; equivalent inputs decide
//! the same. (SSE, the usage scanner, translation, patterns, paths and the
//! JSON size scan have theirs next to their code.)

use crate::facts::RequestFacts;
use crate::matcher::{
    CompiledMatcher, MatchAction, MatchOperator, MatcherSpec, MatcherType, NamespaceResolver,
};
use crate::stream::{enforce_json, UsageTail};
use crate::tokens::Encoding;
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map("[a-z0-9.]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `v` in another valid spelling: pretty-printed, non-ASCII escaped.
fn respell(v: &Value) -> String {
    let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = String::with_capacity(pretty.len());
    for ch in pretty.chars() {
        if ch.is_ascii() {
            out.push(ch);
        } else {
            let mut buf = [0u16; 2];
            for unit in ch.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

fn facts<'a>(
    body: Option<&'a Value>,
    query: Option<&'a str>,
    headers: &'a Vec<(String, String)>,
) -> RequestFacts<'a> {
    RequestFacts {
        method: "POST",
        path: "/v1/chat/completions",
        query,
        headers,
        body,
        raw_body: b"",
    }
}

fn resolver(field: &str, op: MatchOperator, value: &str) -> Option<NamespaceResolver> {
    let spec = MatcherSpec {
        id: 1,
        namespace: 1,
        matcher_type: MatcherType::Body,
        match_field: field.to_string(),
        match_operator: op,
        match_value: value.to_string(),
        action: MatchAction::Deny,
        priority: 1,
    };
    let m = CompiledMatcher::compile(&spec).ok()?;
    Some(NamespaceResolver::new(vec![m], Some(0)))
}

const OPS: [MatchOperator; 8] = [
    MatchOperator::Eq,
    MatchOperator::Ne,
    MatchOperator::Gt,
    MatchOperator::Gte,
    MatchOperator::Lt,
    MatchOperator::Lte,
    MatchOperator::Contains,
    MatchOperator::Regex,
];

proptest! {
    /// Any body, any dotted path, any query string: no panic.
    #[test]
    fn facts_never_panic(v in arb_json(), path in "[a-z0-9.]{0,12}", q in "\\PC{0,40}") {
        let h = Vec::new();
        let f = facts(Some(&v), Some(&q), &h);
        let _ = f.body_field(&path);
        let _ = f.query_param(&path);
    }

    /// A matcher decides the same for a body however it is spelled
    /// (whitespace, key order, `\u` escapes): decisions are made on the
    /// parsed value.
    #[test]
    fn matchers_decide_on_the_value_not_its_spelling(
        v in arb_json(),
        field in "[a-z0-9.]{1,8}",
        op in 0usize..OPS.len(),
        value in "[a-z0-9.]{0,6}",
    ) {
        let Some(r) = resolver(&field, OPS[op], &value) else { return Ok(()); };
        let other: Value = serde_json::from_str(&respell(&v)).unwrap();
        let h = Vec::new();
        let a = r.resolve(&facts(Some(&v), None, &h), None);
        let b = r.resolve(&facts(Some(&other), None, &h), None);
        prop_assert_eq!(a, b);
    }

    /// The answer check takes any bytes; what it rewrites is JSON and
    /// within the cap.
    #[test]
    fn answer_check_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512), cap in proptest::option::of(0u64..20)) {
        let _ = enforce_json(&body, Encoding::O200kBase.counter(), cap, 3);
    }

    #[test]
    fn answer_check_rewrites_valid_json_within_the_cap(
        texts in proptest::collection::vec("\\PC{0,40}", 1..4),
        cap in 0u64..30,
    ) {
        let counter = Encoding::O200kBase.counter();
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| serde_json::json!({"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}))
            .collect();
        let body = serde_json::json!({"object": "chat.completion", "choices": choices}).to_string();
        let out = enforce_json(body.as_bytes(), counter, Some(cap), 3);
        if let Some(rewritten) = out.rewritten {
            let v: Value = serde_json::from_slice(&rewritten).unwrap();
            let total: usize = v["choices"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["message"]["content"].as_str())
                .map(|t| counter.count(t))
                .sum();
            prop_assert!(total as u64 <= cap, "{} > {}", total, cap);
        }
    }

    /// The usage scanner of unmetered answers takes any bytes in any
    /// chunking.
    #[test]
    fn usage_tail_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let mut tail = UsageTail::new();
        let cut = cut.min(body.len());
        tail.feed(&body[..cut]);
        tail.feed(&body[cut..]);
        let _ = tail.finish(None);
    }
}
