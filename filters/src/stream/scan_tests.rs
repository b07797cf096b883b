//! The scanner against an oracle: the borrowed serde structs a
//! straightforward implementation would use.

use super::*;
use crate::stream::testutil::WORDS;
use proptest::prelude::*;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct HotChunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<HotChoice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct HotChoice<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    text: Option<Text<'a>>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    reasoning_content: Option<Text<'a>>,
    #[serde(borrow, default)]
    reasoning: Option<Text<'a>>,
    #[serde(borrow, default)]
    content: Option<Text<'a>>,
    #[serde(borrow, default)]
    refusal: Option<Text<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(borrow, default)]
    name: Option<Text<'a>>,
    #[serde(borrow, default)]
    arguments: Option<Text<'a>>,
}

fn words(t: &Option<Text<'_>>) -> u64 {
    t.as_ref().map_or(0, |t| WORDS.count(&t.0) as u64)
}

/// What the serde structs make of `json`.
fn oracle(json: &str) -> Option<Scan> {
    let c: HotChunk<'_> = serde_json::from_str(json).ok()?;
    let mut s = Scan {
        usage: c.usage,
        ..Scan::default()
    };
    for (pos, ch) in c.choices.iter().flatten().enumerate() {
        s.tokens += words(&ch.text);
        if let Some(d) = &ch.delta {
            s.tokens += words(&d.reasoning_content)
                + words(&d.reasoning)
                + words(&d.content)
                + words(&d.refusal);
            for f in d
                .tool_calls
                .iter()
                .flatten()
                .filter_map(|t| t.function.as_ref())
            {
                s.tokens += words(&f.name) + words(&f.arguments);
            }
        }
        s.choices
            .push((ch.index.unwrap_or(pos as u32), ch.finish_reason.is_some()));
    }
    Some(s)
}

fn scan(json: &str) -> Option<Scan> {
    let mut s = Scan::default();
    scan_chunk(json, &WORDS, &mut ScanCache::default(), &mut s).then_some(s)
}

/// Scans `jsons` in turn with one shared cache.
fn scan_seq(jsons: &[String]) -> Vec<Option<Scan>> {
    scan_seq_hits(jsons).0
}

/// [`scan_seq`] and the shortcuts it took.
fn scan_seq_hits(jsons: &[String]) -> (Vec<Option<Scan>>, (usize, usize)) {
    let mut cache = ScanCache::default();
    let got = jsons
        .iter()
        .map(|j| {
            let mut s = Scan::default();
            scan_chunk(j, &WORDS, &mut cache, &mut s).then_some(s)
        })
        .collect();
    (got, cache.hits)
}

#[test]
fn prefix_cache_resumes_only_on_identical_bytes() {
    let a = r#"{"id":"x","choices":[{"delta":{"content":"a b"}}]}"#.to_string();
    let same = r#"{"id":"x","choices":[{"delta":{"content":"c"}}],"usage":{"prompt_tokens":1}}"#
        .to_string();
    let other = r#"{"id":"y","choices":null,"usage":{"completion_tokens":2}}"#.to_string();
    let usage_first = r#"{"usage":{"prompt_tokens":5},"choices":[]}"#.to_string();
    let broken = r#"{"id":"x","choices":[{"delta":{"content":7}}]}"#.to_string();
    let seq = vec![
        a,
        same,
        other,
        usage_first.clone(),
        usage_first,
        broken.clone(),
        broken,
    ];
    let want: Vec<Option<Scan>> = seq.iter().map(|j| oracle(j)).collect();
    assert_eq!(scan_seq(&seq), want);
    assert_eq!(want[1].as_ref().map(|s| s.tokens), Some(1));
}

#[test]
fn template_applies_only_around_a_string() {
    let c = |body: &str| format!(r#"{{"id":"x","choices":[{body}]}}"#);
    let seq = vec![
        c(r#"{"index":0,"delta":{"content":"a b"},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":"c d e"},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":"esc\"aped \u00e9"},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":null},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":7},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}"#),
        c(r#"{"index":0,"delta":{"content":"y"} ,"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":"z"},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":"p","refusal":"q"},"finish_reason":null}"#),
        c(r#"{"index":0,"delta":{"content":"unterminated},"finish_reason":null}"#),
    ];
    let want: Vec<Option<Scan>> = seq.iter().map(|j| oracle(j)).collect();
    let (got, hits) = scan_seq_hits(&seq);
    assert_eq!(got, want);
    assert_eq!(want[2].as_ref().map(|s| s.tokens), Some(2));
    assert_eq!(want[4], None);
    // The prefix after the first chunk; the template only for chunks 1 and
    // 2 (every later chunk differs from the last template outside the
    // string, or has no string or two).
    assert_eq!(hits, (seq.len() - 1, 2));
}

#[test]
fn openai_chunk() {
    let j = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" the cat"},"logprobs":null,"finish_reason":null}],"usage":null}"#;
    let s = scan(j);
    assert_eq!(s, oracle(j));
    assert_eq!(
        s.map(|s| (s.tokens, s.choices)),
        Some((2, vec![(0, false)]))
    );
    let u = r#"{"id":"x","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":0}}}"#;
    let s = scan(u);
    assert_eq!(s, oracle(u));
    assert_eq!(
        s.and_then(|s| s.usage),
        Some(Usage {
            prompt_tokens: Some(12),
            completion_tokens: Some(34)
        })
    );
}

#[test]
fn escapes_whitespace_and_odd_keys() {
    for j in [
        r#" { "choices" : [ { "delta" : { "content" : "a\nb \"c\" \u00e9 \ud83d\ude00" } , "finish_reason" : "stop" } ] } "#,
        r#"{"choices":[{"delta":{"cont\u0065nt":"x y"}}]}"#,
        r#"{"ch\"oices":[1,2],"choices":[{"index":3,"text":"one two","logprobs":{"tokens":["[","}"]}}]}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\": [1, {\"b\": \"]\"}]}"}}]}}]}"#,
        "\t{\"choices\":\r\n[{\"delta\":{\"content\":\" \"}}]}\n",
    ] {
        assert!(oracle(j).is_some(), "{j}");
        assert_eq!(scan(j), oracle(j), "{j}");
    }
}

#[test]
fn rejects_what_serde_rejects() {
    for j in [
        r#"{"choices":[{"delta":{"content":["array"]}}]}"#,
        r#"{"choices":"x"}"#,
        r#"{"choices":[{"index":-1}]}"#,
        r#"{"choices":[{"index":1.0}]}"#,
        r#"{"choices":[{"index":4294967296}]}"#,
        r#"{"choices":[{"index":"0"}]}"#,
        r#"{"usage":{"prompt_tokens":1e3}}"#,
        r#"{"usage":{"completion_tokens":"3"}}"#,
        r#"{"usage":7}"#,
        r#"{"choices":[{"delta":{"tool_calls":[{"function":"f"}]}}]}"#,
        r#"{"choices":[]} x"#,
        r#"[1]"#,
        r#"{"choices":[{"text":1}]}"#,
        "",
        "{",
        r#"{"choices":[{"delta":{"content":"unterminated}]}"#,
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
    ] {
        assert_eq!(oracle(j), None, "oracle {j}");
        assert_eq!(scan(j), None, "{j}");
    }
}

fn text_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => "[a-c \"\\\\\n\t/\u{e9}\u{1F600}\u{7f}]{0,6}".prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any_value(),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z\"\\\\\\[\\]{},: ]{0,5}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-z]{1,3}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// An object built from optional fields (absent when `None`).
fn obj(fields: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

/// A value in a struct position: mostly the struct, sometimes null or a
/// non-array scalar (serde would read an array positionally, the scanner
/// does not: that difference is avoided here and documented).
fn struct_or(s: BoxedStrategy<Value>) -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => s,
        1 => Just(Value::Null),
        1 => prop_oneof![Just(json!("s")), Just(json!(1)), Just(json!(true))],
    ]
}

fn function() -> BoxedStrategy<Value> {
    (
        prop::option::of(text_value()),
        prop::option::of(text_value()),
    )
        .prop_map(|(n, a)| obj(vec![("name", n), ("arguments", a), ("x", Some(json!(1)))]))
        .boxed()
}

fn tool_calls() -> impl Strategy<Value = Value> {
    let call = (prop::option::of(struct_or(function())), any::<u8>()).prop_map(|(f, i)| {
        obj(vec![
            ("index", Some(json!(i))),
            ("type", Some(json!("function"))),
            ("function", f),
        ])
    });
    prop_oneof![
        4 => proptest::collection::vec(call, 0..3).prop_map(Value::Array),
        1 => Just(Value::Null),
        1 => Just(json!("calls")),
    ]
}

fn delta() -> BoxedStrategy<Value> {
    (
        prop::option::of(text_value()),
        prop::option::of(text_value()),
        prop::option::of(text_value()),
        prop::option::of(text_value()),
        prop::option::of(tool_calls()),
        prop::option::of(any_value()),
    )
        .prop_map(|(a, b, c, d, t, x)| {
            obj(vec![
                ("role", Some(json!("assistant"))),
                ("content", a),
                ("reasoning_content", b),
                ("reasoning", c),
                ("refusal", d),
                ("tool_calls", t),
                ("extra", x),
            ])
        })
        .boxed()
}

fn choice() -> BoxedStrategy<Value> {
    let index = prop_oneof![
        4 => (0u32..4).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any_value(),
    ];
    (
        prop::option::of(index),
        prop::option::of(struct_or(delta())),
        prop::option::of(text_value()),
        prop::option::of(prop_oneof![
            Just(Value::Null),
            Just(json!("stop")),
            any_value()
        ]),
        prop::option::of(any_value()),
    )
        .prop_map(|(i, d, t, f, l)| {
            obj(vec![
                ("index", i),
                ("delta", d),
                ("text", t),
                ("finish_reason", f),
                ("logprobs", l),
            ])
        })
        .boxed()
}

fn usage() -> BoxedStrategy<Value> {
    let count = prop_oneof![
        4 => (0u64..1_000_000).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any_value(),
    ];
    (prop::option::of(count.clone()), prop::option::of(count))
        .prop_map(|(p, c)| {
            obj(vec![
                ("prompt_tokens", p),
                ("completion_tokens", c),
                ("total_tokens", Some(json!(3))),
            ])
        })
        .boxed()
}

fn chunk() -> impl Strategy<Value = Value> {
    let choices = prop_oneof![
        5 => proptest::collection::vec(choice(), 0..3).prop_map(Value::Array),
        1 => Just(Value::Null),
        1 => any_value(),
    ];
    (
        prop::option::of(choices),
        prop::option::of(struct_or(usage())),
        prop::option::of(any_value()),
    )
        .prop_map(|(c, u, x)| {
            obj(vec![
                ("id", Some(json!("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"))),
                ("object", Some(json!("chat.completion.chunk"))),
                ("created", Some(json!(1741569952))),
                ("choices", c),
                ("usage", u),
                ("zz", x),
            ])
        })
}

/// An array where the oracle's structs are: serde reads it positionally,
/// the scanner rejects it (no provider sends that).
fn positional(v: &Value) -> bool {
    let arr = |v: Option<&Value>| v.is_some_and(Value::is_array);
    let choices = v.get("choices").and_then(Value::as_array);
    arr(v.get("usage"))
        || choices.into_iter().flatten().any(|c| {
            c.is_array()
                || arr(c.get("delta"))
                || c.get("delta")
                    .and_then(|d| d.get("tool_calls"))
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|t| t.is_array() || arr(t.get("function")))
        })
}

#[test]
fn positional_structs_are_rejected() {
    let j = r#"{"choices":[[0,{"content":"a"}]]}"#;
    assert!(oracle(j).is_some());
    assert_eq!(scan(j), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_serde(v in chunk(), pretty in any::<bool>()) {
        let j = if pretty {
            serde_json::to_string_pretty(&v)
        } else {
            serde_json::to_string(&v)
        }
        .unwrap_or_default();
        if !positional(&v) {
            prop_assert_eq!(scan(&j), oracle(&j), "{}", j);
        }
    }

    #[test]
    fn prefix_cache_agrees_with_serde(vs in proptest::collection::vec(chunk(), 1..6), same_head in any::<bool>()) {
        let mut vs = vs;
        if same_head {
            // Same header, choices first after it, as in a real stream.
            for v in &mut vs {
                if let Some(o) = v.as_object_mut() {
                    o.remove("zz");
                }
            }
        }
        if vs.iter().any(positional) {
            return Ok(());
        }
        let js: Vec<String> = vs.iter().map(|v| serde_json::to_string(v).unwrap_or_default()).collect();
        let want: Vec<Option<Scan>> = js.iter().map(|j| oracle(j)).collect();
        prop_assert_eq!(scan_seq(&js), want);
    }

    #[test]
    fn template_cache_agrees_with_serde(
        texts in proptest::collection::vec(
            (text_value(), 0u32..2, prop_oneof![Just(Value::Null), Just(json!("stop"))], 0usize..3),
            1..8,
        ),
    ) {
        // Chunks that differ mostly in one text field, as a stream's do.
        let js: Vec<String> = texts
            .into_iter()
            .map(|(t, index, fin, shape)| {
                let field = ["content", "reasoning_content", "refusal"][shape];
                let mut delta = Map::new();
                delta.insert(field.to_string(), t);
                let v = json!({
                    "id": "chatcmpl-1",
                    "choices": [{"index": index, "delta": delta, "logprobs": null, "finish_reason": fin}],
                    "usage": null,
                    "zz": "pad",
                });
                serde_json::to_string(&v).unwrap_or_default()
            })
            .collect();
        let want: Vec<Option<Scan>> = js.iter().map(|j| oracle(j)).collect();
        let (got, hits) = scan_seq_hits(&js);
        prop_assert_eq!(got, want);
        prop_assert_eq!(hits.0, js.len() - 1);
    }

    #[test]
    fn mangled_input_never_panics(v in chunk(), cut in any::<prop::sample::Index>(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3)) {
        let j = serde_json::to_string(&v).unwrap_or_default();
        let mut b = j.into_bytes();
        for (at, byte) in flips {
            if !b.is_empty() {
                let i = at.index(b.len());
                b[i] = byte;
            }
        }
        let end = cut.index(b.len() + 1);
        let s = String::from_utf8_lossy(&b[..end]).into_owned();
        let got = scan(&s);
        if let Some(want) = oracle(&s) {
            prop_assert_eq!(got, Some(want));
        }
    }
}

#[test]
fn usage_of_a_whole_response() {
    let u = |p: Option<u64>, c: Option<u64>| {
        Some(Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
        }))
    };
    let body = r#"{"id":"x","choices":[{"message":{"content":"a \"usage\": {}"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#;
    assert_eq!(scan_usage(body), u(Some(3), Some(2)));
    assert_eq!(
        scan_usage(r#" {"usage": {"completion_tokens": 7}, "choices": []} "#),
        u(None, Some(7))
    );
    assert_eq!(scan_usage(r#"{"choices":[],"usage":null}"#), Some(None));
    assert_eq!(scan_usage(r#"{"choices":[]}"#), Some(None));
    // Not a response: no choices array, trailing bytes, bad counts.
    assert_eq!(scan_usage(r#"{"usage":{"completion_tokens":1}}"#), None);
    assert_eq!(scan_usage(r#"{"choices":{},"usage":{}}"#), None);
    assert_eq!(scan_usage(r#"{"choices":[]} x"#), None);
    assert_eq!(
        scan_usage(r#"{"choices":[],"usage":{"completion_tokens":-1}}"#),
        None
    );
    assert_eq!(
        scan_usage(r#"{"choices":[],"usage":{"completion_tokens":1.5}}"#),
        None
    );
    assert_eq!(scan_usage(r#"{"error":{"message":"no"}}"#), None);
    assert_eq!(scan_usage(""), None);
    assert_eq!(scan_usage("{"), None);
}

/// `usage_at_end` on the shapes that matter: OpenAI's order, members after
/// `usage`, a nested or quoted `usage`, and bodies it must leave to the
/// full scan.
#[test]
fn usage_read_from_the_end() {
    let u = |p: Option<u64>, c: Option<u64>| {
        Some(Usage {
            prompt_tokens: p,
            completion_tokens: c,
        })
    };
    let openai = r#"{"id":"x","choices":[{"message":{"content":"a \"usage\": {\"completion_tokens\":1}"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"completion_tokens_details":{"reasoning_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}"#;
    assert_eq!(usage_at_end(openai.as_bytes()), u(Some(3), Some(2)));
    let pretty = "{\n  \"choices\": [],\n  \"usage\" : {\n    \"completion_tokens\": 4\n  }\n}\n";
    assert_eq!(usage_at_end(pretty.as_bytes()), u(None, Some(4)));
    // Left to the full scan: usage first and a nested one later, a nested
    // one only, an escaped quote before it, null, not closed, trailing bytes.
    for body in [
        r#"{"usage":{"completion_tokens":1},"choices":[],"meta":{"usage":{"completion_tokens":9}}}"#,
        r#"{"choices":[],"meta":{"usage":{"completion_tokens":9}}}"#,
        r#"{"choices":[],"a":[{"usage":{"completion_tokens":9}}]}"#,
        r#"{"choices":[{"message":{"content":"\"usage\":{\"completion_tokens\":9}}"}}]}"#,
        r#"{"choices":[],"usage":null}"#,
        r#"{"choices":[],"usage":{"completion_tokens":1}"#,
        r#"{"choices":[],"usage":{"completion_tokens":1}} x"#,
        r#"{"choices":[],"usage":{"completion_tokens":1},}"#,
        r#"{"usage":{"completion_tokens":1},"choices":{}}"#,
        "",
    ] {
        assert_eq!(usage_at_end(body.as_bytes()), None, "{body}");
    }
    // A content string ending in an escaped backslash right before a real
    // `usage` key is still read.
    let backslash =
        r#"{"choices":[{"message":{"content":"a\\"}}],"usage":{"completion_tokens":6}}"#;
    assert_eq!(usage_at_end(backslash.as_bytes()), u(None, Some(6)));
}

/// A response body whose members come in any order, with strings that
/// quote JSON (`"usage": {...}`, escapes, backslashes), and possibly a
/// nested `usage` in a member after the real one.
fn any_response() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        Just(r#"x"usage":{"completion_tokens":99}}"#.to_string()),
        Just(r#"\"usage\": 1 \\"#.to_string()),
        Just("\\".to_string()),
        "[a-z \"\\\\{}:,]{0,12}",
    ];
    (
        proptest::collection::vec(text, 1..4),
        proptest::option::of((0u64..100, proptest::option::of(0u64..100))),
        0usize..4,
        proptest::bool::ANY,
        proptest::bool::ANY,
    )
        .prop_map(|(texts, usage, usage_at, nested_after, pretty)| {
            let choices: Vec<Value> = texts
                .iter()
                .map(|t| json!({"message": {"content": t}, "finish_reason": "stop"}))
                .collect();
            let mut members: Vec<(String, Value)> = vec![
                ("id".into(), json!("chatcmpl-1")),
                ("choices".into(), Value::Array(choices)),
                ("system_fingerprint".into(), json!(texts[0])),
            ];
            if let Some((c, p)) = usage {
                let mut u = Map::new();
                u.insert("completion_tokens".into(), json!(c));
                if let Some(p) = p {
                    u.insert("prompt_tokens".into(), json!(p));
                }
                members.insert(
                    usage_at.min(members.len()),
                    ("usage".into(), Value::Object(u)),
                );
            }
            if nested_after {
                members.push(("meta".into(), json!({"usage": {"completion_tokens": 7}})));
            }
            // serde_json's Map sorts keys: write the members in order by hand.
            let sep = if pretty { ",\n  " } else { "," };
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{}", json!(k), v))
                .collect();
            format!("{{{}}}", body.join(sep))
        })
}

proptest! {
    /// Whenever the read from the end answers, it is what the full scan
    /// reads; and it does answer when `usage` is the outermost object's
    /// last `usage` key.
    #[test]
    fn usage_at_end_agrees_with_the_full_scan(body in any_response()) {
        let full = scan_usage(&body).flatten();
        let tail = usage_at_end(body.as_bytes());
        if tail.is_some() {
            prop_assert_eq!(&tail, &full, "{}", body);
        }
        let nested_after = body.contains(r#""meta":{"usage""#);
        if full.is_some() && !nested_after {
            prop_assert_eq!(tail, full, "{}", body);
        }
    }
}
