//! Tests of [`SseRedactor`]: matches split across events, flushing at
//! `finish_reason`, `[DONE]`, `content_block_stop` and the end, byte-exact
//! passthrough, any chunking.

use super::*;
use crate::stream::sse::SseParser;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

fn masker() -> Arc<Masker> {
    static M: LazyLock<Arc<Masker>> =
        LazyLock::new(|| Arc::new(Masker::new(&Builtin::ALL.map(MaskRule::builtin)).unwrap()));
    Arc::clone(&M)
}

fn chunk(choices: Value) -> String {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
        "created": 1700000000, "model": "gpt-4o", "choices": choices});
    format!("data: {body}\n\n")
}

fn chat(index: u64, content: Option<&str>, finish: Option<&str>) -> String {
    let delta = content.map_or(json!({}), |c| json!({"content": c}));
    chunk(json!([{"index": index, "delta": delta, "finish_reason": finish}]))
}

const USAGE: &str = "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":9}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

fn run_chunks(chunks: &[&[u8]]) -> Vec<u8> {
    let mut r = SseRedactor::new(masker());
    let mut out = Vec::new();
    for c in chunks {
        out.extend(r.feed(c));
    }
    out.extend(r.finish());
    out
}

fn run(input: &str) -> Vec<u8> {
    run_chunks(&[input.as_bytes()])
}

/// `(event, data)` of every event with data; checks each data is JSON or
/// `[DONE]`.
fn events(out: &[u8]) -> Vec<(Option<String>, String)> {
    let mut evs = Vec::new();
    let mut parser = SseParser::new();
    let mut take = |e: crate::stream::sse::SseEvent<'_>| {
        if let Some(data) = e.data {
            assert!(
                data == "[DONE]" || serde_json::from_str::<Value>(&data).is_ok(),
                "not JSON: {data}"
            );
            evs.push((e.event.map(|c| c.into_owned()), data.into_owned()));
        }
    };
    parser.feed(out, &mut take);
    parser.finish(&mut take);
    evs
}

fn json_of(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or(Value::Null)
}

/// Text per choice index (`delta.content` or `text`).
fn contents(out: &[u8]) -> BTreeMap<u64, String> {
    let mut texts = BTreeMap::<u64, String>::new();
    for (_, data) in events(out) {
        for c in json_of(&data)["choices"].as_array().into_iter().flatten() {
            let t = c["delta"]["content"].as_str().or(c["text"].as_str());
            if let (Some(i), Some(t)) = (c["index"].as_u64(), t) {
                texts.entry(i).or_default().push_str(t);
            }
        }
    }
    texts
}

#[test]
fn email_split_across_three_events() {
    let m = masker();
    let input = [
        chat(0, Some(""), None),
        chat(0, Some("Write to ali"), None),
        chat(0, Some("ce@exa"), None),
        chat(0, Some("mple.com now"), None),
        chat(0, None, Some("stop")),
        USAGE.to_owned(),
        DONE.to_owned(),
    ]
    .concat();
    let out = run(&input);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        !text.contains("alice") && !text.contains("example"),
        "{text}"
    );
    assert_eq!(contents(&out)[&0], m.mask("Write to alice@example.com now"));
    assert!(text.contains(USAGE) && text.ends_with(DONE), "{text}");
    let evs = events(&out);
    let last_chunk = json_of(&evs[evs.len() - 3].1);
    assert_eq!(last_chunk["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        last_chunk["choices"][0]["delta"]["content"], "now",
        "held text flushed into the finishing event"
    );
    // The first event (empty content, nothing held) passes byte for byte.
    assert!(text.starts_with(&chat(0, Some(""), None)));
}

#[test]
fn held_text_goes_out_before_done() {
    let input = [
        chat(0, Some("Hello wor"), None),
        chat(0, Some("ld"), None),
        DONE.to_owned(),
    ]
    .concat();
    let out = run(&input);
    let evs = events(&out);
    assert_eq!(evs.last().unwrap().1, "[DONE]");
    let synthetic = json_of(&evs[evs.len() - 2].1);
    assert_eq!(
        synthetic,
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "world"}, "finish_reason": null}]})
    );
    assert_eq!(contents(&out)[&0], "Hello world");
    // Without `[DONE]`, `finish` sends it.
    let mut r = SseRedactor::new(masker());
    let early = r.feed(chat(0, Some("mail a@b.io"), None).as_bytes());
    assert_eq!(contents(&early)[&0], "mail ");
    assert!(r.held_bytes() > 0);
    let rest = r.finish();
    assert_eq!(contents(&rest)[&0], "[REDACTED:email]");
    assert_eq!(r.held_bytes(), 0);
}

#[test]
fn passthrough_byte_for_byte() {
    let input = [
        ": keep-alive\n\n".to_owned(),
        chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}])),
        chunk(json!([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}, "finish_reason": null}])),
        chat(0, Some("Hi! "), None),
        chat(0, Some("Fine, thanks. "), None),
        chat(0, None, Some("stop")),
        "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n".to_owned(),
        "data: {not json at all\n\n".to_owned(),
        USAGE.to_owned(),
        DONE.to_owned(),
    ]
    .concat();
    assert_eq!(String::from_utf8(run(&input)).unwrap(), input);
    // No rules: no parsing at all.
    let mut r = SseRedactor::new(Arc::new(Masker::new(&[]).unwrap()));
    assert_eq!(
        r.feed(b"data: {\"x\":\"a@b.io\"}\n\n"),
        b"data: {\"x\":\"a@b.io\"}\n\n"
    );
}

#[test]
fn byte_by_byte_equals_whole() {
    let input = [
        chat(0, Some("Caf\u{e9} \u{1F600} card 4111 1111 "), None),
        chat(1, Some("call +1 415"), None),
        chat(0, Some("1111 1111 ok"), None),
        chat(1, Some("-555-0199."), Some("length")),
        chat(0, None, Some("stop")),
        DONE.to_owned(),
    ]
    .concat()
    .replace("\n\n", "\r\n\r\n");
    let whole = run(&input);
    let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
    assert_eq!(run_chunks(&bytes), whole);
    let texts = contents(&whole);
    assert_eq!(texts[&0], "Caf\u{e9} \u{1F600} card [REDACTED:card] ok");
    assert_eq!(texts[&1], "call [REDACTED:phone].");
}

#[test]
fn legacy_completions() {
    let legacy = |text: &str, finish: Option<&str>| {
        let body = json!({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct",
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}]});
        format!("data: {body}\n\n")
    };
    let input = [
        legacy("key sk-abcdefghij", None),
        legacy("klmnopqrstuvwxyz0123", None),
        legacy(" done", Some("length")),
        DONE.to_owned(),
    ]
    .concat();
    let out = run(&input);
    assert_eq!(contents(&out)[&0], "key [REDACTED:api_key] done");
    let input = [legacy("to bob", None), DONE.to_owned()].concat();
    let evs = events(&run(&input));
    let synthetic = json_of(&evs[evs.len() - 2].1);
    assert_eq!(synthetic["choices"][0]["text"], "bob");
    assert_eq!(synthetic["object"], "text_completion");
}

fn anthropic(kind: &str, body: Value) -> String {
    format!("event: {kind}\ndata: {body}\n\n")
}

#[test]
fn anthropic_blocks() {
    let delta = |i: u64, t: &str| {
        anthropic(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": t}}),
        )
    };
    let input = [
        anthropic(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 5}}}),
        ),
        anthropic(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        anthropic("ping", json!({"type": "ping"})),
        delta(0, "Key AKIAIOSF"),
        delta(0, "ODNN7EXAMPLE and"),
        anthropic(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        anthropic(
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}),
        ),
        anthropic(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
        ),
        anthropic(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 1}),
        ),
        anthropic(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}),
        ),
        anthropic("message_stop", json!({"type": "message_stop"})),
    ];
    let out = run(&input.concat());
    let evs = events(&out);
    let kinds: Vec<&str> = evs
        .iter()
        .map(|(e, _)| e.as_deref().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let text: String = evs
        .iter()
        .map(|(_, d)| json_of(d))
        .filter(|v| v["index"] == 0 && v["delta"]["type"] == "text_delta")
        .map(|v| v["delta"]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(text, "Key [REDACTED:api_key] and");
    assert_eq!(
        json_of(&evs[5].1)["delta"]["text"],
        "and",
        "flushed before the stop"
    );
    // Untouched events pass byte for byte.
    let text = String::from_utf8(out).unwrap();
    for i in [0, 1, 2, 5, 6, 7, 8, 9, 10] {
        assert!(text.contains(&input[i]), "event {i} changed");
    }
}

#[test]
fn error_event_flushes_first() {
    let input = [
        chat(0, Some("see bob"), None),
        "data: {\"error\":{\"message\":\"overloaded\"}}\n\n".to_owned(),
    ]
    .concat();
    let evs = events(&run(&input));
    assert_eq!(evs.len(), 3);
    assert_eq!(json_of(&evs[1].1)["choices"][0]["delta"]["content"], "bob");
    assert!(evs[2].1.contains("overloaded"));
}

#[test]
fn untracked_choices_mask_per_event() {
    let mut input: String = (0..MAX_TRACKED_STREAMS as u64)
        .map(|i| chat(i, Some("held"), None))
        .collect();
    input.push_str(&chat(999, Some("to a@b.io x"), None));
    input.push_str(&chat(999, Some(" alice@b"), None));
    input.push_str(&chat(999, Some(".io"), None));
    let mut r = SseRedactor::new(masker());
    let out = r.feed(input.as_bytes());
    assert!(r.held_bytes() <= MAX_TRACKED_STREAMS * (masker().holdback() + 1));
    assert_eq!(
        contents(&out)[&999],
        "to [REDACTED:email] x alice@b.io",
        "no holdback beyond the bound"
    );
}

#[test]
fn oversized_event_passes_after_flush() {
    let big = format!(
        "data: {{\"pad\":\"{}\"}}\n\n",
        "x".repeat(crate::stream::DEFAULT_MAX_EVENT_BYTES + 10)
    );
    let input = [chat(0, Some("hi bob"), None), big.clone()].concat();
    let out = run(&input);
    assert!(out.ends_with(big.as_bytes()));
    assert_eq!(contents(&out[..out.len() - big.len()])[&0], "hi bob");
}

/// One piece of content for one of three choices.
fn piece() -> impl Strategy<Value = (u64, String)> {
    let text = prop_oneof![
        3 => "[a-zA-Z0-9@.+ ()_\\-\u{e9}\n\"\\\\]{0,10}",
        1 => prop::sample::select(vec![
            "alice@example.com", "4111 1111 1111 1111", "+1 415-555-0199", "AKIAIOSFODNN7EXAMPLE",
            "\u{1F600}", "ali", "ce@exa", "mple.com", "4111 ", "1111",
        ])
        .prop_map(str::to_owned),
    ];
    (0u64..3, text)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_masks_like_the_whole(
        pieces in prop::collection::vec(piece(), 0..16),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        finish in any::<bool>(),
    ) {
        let m = masker();
        let mut input = String::new();
        let mut want = BTreeMap::<u64, String>::new();
        for (i, t) in &pieces {
            input.push_str(&chat(*i, Some(t), None));
            want.entry(*i).or_default().push_str(t);
        }
        if finish {
            for i in want.keys() {
                input.push_str(&chat(*i, None, Some("stop")));
            }
            input.push_str(USAGE);
        }
        input.push_str(DONE);
        let bytes = input.as_bytes();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in at {
            chunks.push(&bytes[prev..c]);
            prev = c;
        }
        chunks.push(&bytes[prev..]);
        let out = run_chunks(&chunks);
        let got = contents(&out);
        for (i, text) in &want {
            let masked = m.mask(text);
            prop_assert_eq!(got.get(i).map_or("", String::as_str), masked.as_ref());
        }
        prop_assert!(out.ends_with(DONE.as_bytes()));
        let finishes = events(&out).iter().filter(|(_, d)| d.contains("\"stop\"")).count();
        prop_assert_eq!(finishes, if finish { want.len() } else { 0 });
        if finish {
            prop_assert!(String::from_utf8_lossy(&out).contains(USAGE));
        }
    }
}
