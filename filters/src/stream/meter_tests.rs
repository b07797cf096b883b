use super::*;
use crate::stream::testutil::{CHARS, WORDS};
use proptest::prelude::*;
use serde_json::json;

const HEAD: &str = r#""id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8""#;

fn content(text: &str) -> String {
    let delta = serde_json::to_string(&json!({ "content": text })).unwrap_or_default();
    format!(
        "data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
    )
}

fn role() -> String {
    format!("data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n")
}

fn finish() -> String {
    format!("data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n")
}

fn usage_chunk(p: u64, c: u64) -> String {
    format!("data: {{{HEAD},\"choices\":[],\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{c},\"total_tokens\":{}}}}}\n\n", p + c)
}

const DONE: &str = "data: [DONE]\n\n";

/// Deltas of the sample answer: 12 word tokens.
const DELTAS: [&str; 7] = [
    "Hello",
    " there, how",
    " are",
    " you doing",
    " today?",
    " I am",
    " fine and well.",
];
const TOTAL: u64 = 12;

/// A typical OpenAI stream; with `usage` the provider reports `(p, c)`.
fn stream(usage: Option<(u64, u64)>) -> String {
    let mut s = role();
    for d in DELTAS {
        s.push_str(&content(d));
    }
    s.push_str(&finish());
    if let Some((p, c)) = usage {
        s.push_str(&usage_chunk(p, c));
    }
    s.push_str(DONE);
    s
}

fn opts(cap: Option<u64>, wants_usage: bool) -> MeterOptions {
    MeterOptions {
        output_cap: cap,
        client_wants_usage: wants_usage,
        prompt_tokens: 9,
    }
}

/// Runs the meter over `input` cut at `cuts`; returns (client bytes, meter).
fn run_split(o: MeterOptions, input: &[u8], cuts: &[usize]) -> (Vec<u8>, StreamMeter) {
    let mut m = StreamMeter::new(&WORDS, o);
    let mut out = Vec::new();
    let mut prev = 0;
    for &c in cuts.iter().chain(std::iter::once(&input.len())) {
        m.feed(&input[prev..c], &mut out);
        prev = c;
    }
    m.finish(&mut out);
    (out, m)
}

fn run(o: MeterOptions, input: &str) -> (Vec<u8>, StreamMeter) {
    run_split(o, input.as_bytes(), &[])
}

/// What a client makes of the stream it received.
#[derive(Debug, Default)]
struct Client {
    text: String,
    tokens: u64,
    finish: Vec<(u64, String)>,
    usage: Option<Value>,
    done_markers: usize,
    after_done: usize,
    chunks: Vec<Value>,
}

fn client(out: &[u8]) -> Client {
    let mut c = Client::default();
    let mut p = SseParser::new();
    let mut on = |e: SseEvent<'_>| {
        let Some(d) = e.data else { return };
        if c.done_markers > 0 {
            c.after_done += 1;
        }
        if d == "[DONE]" {
            c.done_markers += 1;
            return;
        }
        let v: Value = serde_json::from_str(&d).unwrap_or(Value::Null);
        for ch in v["choices"].as_array().into_iter().flatten() {
            if let Some(t) = ch["delta"]["content"].as_str() {
                c.text.push_str(t);
                c.tokens += WORDS.count(t) as u64;
            }
            if let Some(f) = ch["finish_reason"].as_str() {
                c.finish
                    .push((ch["index"].as_u64().unwrap_or(99), f.to_string()));
            }
        }
        if !v["usage"].is_null() {
            c.usage = Some(v["usage"].clone());
        }
        c.chunks.push(v);
    };
    p.feed(out, &mut on);
    p.finish(&mut on);
    c
}

#[test]
fn passes_through_byte_identical_under_cap() {
    for cap in [None, Some(TOTAL), Some(TOTAL + 1), Some(1000)] {
        let input = stream(Some((9, TOTAL)));
        let (out, m) = run(opts(cap, true), &input);
        assert_eq!(String::from_utf8_lossy(&out), input, "cap {cap:?}");
        assert!(!m.done());
        let u = m.usage();
        assert_eq!(
            u,
            StreamUsage {
                prompt_tokens: 9,
                completion_tokens: TOTAL,
                provider_reported: true,
                truncated: false
            }
        );
        assert_eq!(m.sent_tokens(), TOTAL);
    }
}

#[test]
fn truncates_at_exactly_n_tokens() {
    for wants_usage in [true, false] {
        for n in 0..TOTAL {
            let input = stream(Some((9, TOTAL)));
            let (out, m) = run(opts(Some(n), wants_usage), &input);
            let c = client(&out);
            assert_eq!(c.tokens, n, "cap {n}: got {:?}", c.text);
            let full: String = DELTAS.concat();
            assert!(full.starts_with(&c.text));
            assert_eq!(c.finish, vec![(0, "length".to_string())]);
            assert_eq!(c.done_markers, 1);
            assert_eq!(c.after_done, 0);
            assert!(out.ends_with(DONE.as_bytes()));
            assert!(m.done());
            let u = m.usage();
            assert_eq!(
                u,
                StreamUsage {
                    prompt_tokens: 9,
                    completion_tokens: n,
                    provider_reported: false,
                    truncated: true
                }
            );
            if wants_usage {
                assert_eq!(
                    c.usage,
                    Some(
                        json!({"prompt_tokens": 9, "completion_tokens": n, "total_tokens": 9 + n})
                    )
                );
                let last = &c.chunks[c.chunks.len() - 1];
                assert_eq!(last["id"], "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT");
                assert_eq!(last["model"], "gpt-4o-2024-08-06");
                assert_eq!(last["created"], 1741569952);
                assert_eq!(last["choices"], json!([]));
            } else {
                assert_eq!(c.usage, None);
            }
            // Every synthesized chunk carries the upstream header.
            for ch in &c.chunks {
                assert_eq!(ch["object"], "chat.completion.chunk");
                assert_eq!(ch["system_fingerprint"], "fp_eb9dce56a8");
            }
        }
    }
}

#[test]
fn cut_event_keeps_only_what_fits() {
    // cap 2: "Hello" (1) + " there, how" (2) crosses; " there," fits.
    let (out, _) = run(opts(Some(2), false), &stream(None));
    let text = String::from_utf8_lossy(&out);
    let expect_tail = format!(
        "data: {{{HEAD},\"choices\":[{{\"delta\":{{\"content\":\" there,\"}},\"finish_reason\":null,\"index\":0}}]}}\n\n\
         data: {{{HEAD},\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"length\",\"index\":0}}]}}\n\n{DONE}"
    );
    let expect = format!("{}{}{}", role(), content("Hello"), expect_tail);
    assert_eq!(text, expect);
}

#[test]
fn nothing_fits_emits_no_partial_chunk() {
    // cap 1: "Hello" fits exactly, the next delta has no room at all.
    let (out, m) = run(opts(Some(1), false), &stream(None));
    let c = client(&out);
    assert_eq!(c.text, "Hello");
    // role, "Hello", the length chunk.
    assert_eq!(c.chunks.len(), 3);
    assert_eq!(m.usage().completion_tokens, 1);
}

#[test]
fn exact_cap_is_not_cut() {
    let (out, m) = run(opts(Some(TOTAL), true), &stream(None));
    assert_eq!(String::from_utf8_lossy(&out), stream(None));
    assert!(!m.usage().truncated);
    assert_eq!(m.usage().completion_tokens, TOTAL);
    assert!(!m.usage().provider_reported);
    assert_eq!(m.usage().prompt_tokens, 9);
}

#[test]
fn usage_chunk_dropped_when_not_asked_but_used() {
    let input = stream(Some((123, 456)));
    let (out, m) = run(opts(None, false), &input);
    assert_eq!(String::from_utf8_lossy(&out), stream(None));
    assert_eq!(
        m.usage(),
        StreamUsage {
            prompt_tokens: 123,
            completion_tokens: 456,
            provider_reported: true,
            truncated: false
        }
    );
}

#[test]
fn usage_riding_on_a_choice_chunk_is_stripped_when_not_asked() {
    let ev = format!(
        "data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}}}\n\n"
    );
    let (out, m) = run(opts(None, false), &ev);
    let c = client(&out);
    assert_eq!(c.usage, None);
    assert_eq!(c.finish, vec![(0, "stop".to_string())]);
    assert_eq!(m.usage().completion_tokens, 7);
    let (out, _) = run(opts(None, true), &ev);
    assert_eq!(out, ev.as_bytes());
}

#[test]
fn provider_usage_is_authoritative() {
    let (out, m) = run(opts(Some(100), true), &stream(Some((40, 17))));
    assert_eq!(String::from_utf8_lossy(&out), stream(Some((40, 17))));
    assert_eq!(m.usage().prompt_tokens, 40);
    assert_eq!(m.usage().completion_tokens, 17);
    assert!(m.usage().provider_reported);
    assert_eq!(m.sent_tokens(), TOTAL);
}

#[test]
fn no_usage_chunk_from_provider_is_not_invented() {
    let (out, m) = run(opts(None, true), &stream(None));
    assert_eq!(String::from_utf8_lossy(&out), stream(None));
    assert_eq!(m.usage().completion_tokens, TOTAL);
    assert_eq!(m.usage().prompt_tokens, 9);
}

#[test]
fn nothing_after_done() {
    let input = stream(None);
    let mut m = StreamMeter::new(&WORDS, opts(Some(3), true));
    let mut out = Vec::new();
    m.feed(input.as_bytes(), &mut out);
    assert!(m.done());
    let len = out.len();
    m.feed(content(" more").as_bytes(), &mut out);
    m.feed(b"data: [DONE]\n\n", &mut out);
    m.finish(&mut out);
    assert_eq!(out.len(), len);
    assert_eq!(client(&out).after_done, 0);
}

#[test]
fn odd_events_pass_through_uncounted() {
    let input = format!(
        ": OPENROUTER PROCESSING\n\n\
         event: ping\ndata: not json\n\n\
         data: {{\"error\":{{\"message\":\"overloaded\",\"type\":\"server_error\"}}}}\n\n\
         data: {{\"choices\":\"weird\"}}\n\n\
         data: {{\"choices\":[{{\"delta\":{{\"content\":[\"array\"]}}}}]}}\n\n\
         data: {{broken json\n\n\
         data: [1,2]\n\n\
         data:\n\n\
         retry: 10\n\n{}",
        content("one two")
    );
    let (out, m) = run(opts(Some(100), true), &input);
    assert_eq!(String::from_utf8_lossy(&out), input);
    assert_eq!(m.sent_tokens(), 2);
}

#[test]
fn crlf_stream_and_final_event_without_blank_line() {
    let input = stream(None).replace("\n\n", "\r\n\r\n");
    let input = input.trim_end_matches("\r\n\r\n");
    let (out, m) = run(opts(None, true), input);
    assert_eq!(out, input.as_bytes());
    assert_eq!(m.sent_tokens(), TOTAL);
    let (out, m) = run(opts(Some(4), true), input);
    assert_eq!(client(&out).tokens, 4);
    assert!(m.done());
}

#[test]
fn tool_call_arguments_are_cut() {
    let call = |extra: &str, args: &str| {
        format!(
            "data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0{extra},\"function\":{{{}\"arguments\":{}}}}}]}},\"finish_reason\":null}}]}}\n\n",
            if extra.is_empty() { "" } else { "\"name\":\"get_weather\"," },
            serde_json::to_string(args).unwrap_or_default()
        )
    };
    let input = format!(
        "{}{}{}{DONE}",
        call(",\"id\":\"call_1\",\"type\":\"function\"", ""),
        call("", "{\"location\":"),
        call("", " \"Paris\"}")
    );
    // Chars: name 11, then 12 + 9 argument chars.
    let mut m = StreamMeter::new(&CHARS, opts(Some(15), true));
    let mut out = Vec::new();
    m.feed(input.as_bytes(), &mut out);
    m.finish(&mut out);
    assert!(m.done());
    assert_eq!(m.usage().completion_tokens, 15);
    let c = client(&out);
    let args: String = c
        .chunks
        .iter()
        .filter_map(|ch| {
            ch["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    assert_eq!(args, "{\"lo");
    assert_eq!(c.finish, vec![(0, "length".to_string())]);
    // Metering only: name + all argument chars.
    let mut m = StreamMeter::new(&CHARS, opts(None, true));
    m.feed(input.as_bytes(), &mut out);
    assert_eq!(m.sent_tokens(), 11 + 12 + 9);
}

#[test]
fn function_name_is_never_cut() {
    let ev = format!(
        "data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"id\":\"c\",\"type\":\"function\",\"function\":{{\"name\":\"get_weather\",\"arguments\":\"\"}}}}]}},\"finish_reason\":null}}]}}\n\n"
    );
    let mut m = StreamMeter::new(&CHARS, opts(Some(5), false));
    let mut out = Vec::new();
    m.feed(ev.as_bytes(), &mut out);
    let c = client(&out);
    assert_eq!(c.chunks.len(), 1, "only the length chunk: {c:?}");
    assert_eq!(m.usage().completion_tokens, 0);
}

fn two_choices(i0: &str, i1: &str, fin0: Option<&str>) -> String {
    let f = |s: Option<&str>| s.map_or("null".to_string(), |s| format!("\"{s}\""));
    format!(
        "data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{i0}\"}},\"finish_reason\":{}}},{{\"index\":1,\"delta\":{{\"content\":\"{i1}\"}},\"finish_reason\":null}}]}}\n\n",
        f(fin0)
    )
}

#[test]
fn cap_is_shared_by_all_choices() {
    let input = format!(
        "{}{}{}{DONE}",
        two_choices("a b", "c d", None),
        two_choices(" e", " f g", Some("stop")),
        two_choices("", " h", None),
    );
    // 4 + 3 = 7 tokens in; cap 6: event 2 keeps choice 0 (" e", finished)
    // and cuts choice 1 to " f".
    let (out, m) = run(opts(Some(6), true), &input);
    let c = client(&out);
    assert_eq!(m.usage().completion_tokens, 6);
    assert_eq!(c.tokens, 6);
    assert_eq!(
        c.finish,
        vec![(0, "stop".to_string()), (1, "length".to_string())]
    );
    // cap 4: the second event has no room; both choices get a length chunk.
    let (out, _) = run(opts(Some(4), false), &input);
    let c = client(&out);
    assert_eq!(c.tokens, 4);
    assert_eq!(
        c.finish,
        vec![(0, "length".to_string()), (1, "length".to_string())]
    );
}

#[test]
fn legacy_completions_text() {
    let ev = |t: &str| {
        format!("data: {{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"model\":\"gpt-3.5-turbo-instruct\",\"choices\":[{{\"text\":\"{t}\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}}]}}\n\n")
    };
    let input = format!("{}{}{}{DONE}", ev("one"), ev(" two three"), ev(" four"));
    let (out, m) = run(opts(Some(2), true), &input);
    assert_eq!(m.usage().completion_tokens, 2);
    let c = client(&out);
    let text: String = c
        .chunks
        .iter()
        .filter_map(|ch| ch["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "one two");
    assert_eq!(c.finish, vec![(0, "length".to_string())]);
    assert!(c.chunks.iter().all(|ch| ch["object"] == "text_completion"));
}

#[test]
fn reasoning_and_escaped_text_are_counted() {
    let ev = format!(
        "data: {{{HEAD},\"choices\":[{{\"index\":0,\"delta\":{{\"reasoning_content\":\"think\\nhard\",\"content\":\"\\u00e9t\\u00e9 ok\"}}}}]}}\n\n"
    );
    let (_, m) = run(opts(None, true), &ev);
    assert_eq!(m.sent_tokens(), 4);
    let (out, m) = run(opts(Some(3), true), &ev);
    assert_eq!(m.sent_tokens(), 3);
    let c = client(&out);
    assert_eq!(c.text, "\u{e9}t\u{e9}");
    let r = c.chunks[0]["choices"][0]["delta"]["reasoning_content"].as_str();
    assert_eq!(r, Some("think\nhard"));
}

fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..10).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

fn sample_len() -> usize {
    stream(Some((9, TOTAL))).len()
}

proptest! {
    #[test]
    fn any_chunking_gives_identical_output(
        cut_at in cuts(sample_len()),
        cap in prop::option::of(0..TOTAL + 2),
        wants in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let mut input = stream(Some((9, TOTAL)));
        if crlf {
            input = input.replace('\n', "\r\n");
        }
        let cut_at: Vec<usize> = cut_at.into_iter().filter(|&c| c <= input.len()).collect();
        let (whole, m1) = run(opts(cap, wants), &input);
        let (split, m2) = run_split(opts(cap, wants), input.as_bytes(), &cut_at);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(m1.usage(), m2.usage());
        let c = client(&split);
        prop_assert_eq!(c.after_done, 0);
        if let Some(cap) = cap {
            prop_assert_eq!(c.tokens, cap.min(TOTAL));
        }
    }
}

/// A stream with everything at once: comments, a non-JSON event, two
/// choices, reasoning, a tool call, escapes, the usage chunk, an `id:`
/// field and a last event without its blank line.
fn rich_stream() -> String {
    let ch = |body: &str| format!("data: {{{HEAD},\"choices\":[{body}]}}\n\n");
    [
        ": OPENROUTER PROCESSING\n\n".to_string(),
        ch(r#"{"index":0,"delta":{"role":"assistant","reasoning_content":"Let me think"}},{"index":1,"delta":{"role":"assistant","content":""}}"#),
        "event: note\nid: 7\ndata: plain text\n\n".to_string(),
        ch(r#"{"index":0,"delta":{"content":"Caf\u00e9 \"au\" lait\n is"}},{"index":1,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function","function":{"name":"lookup","arguments":""}}]}}"#),
        ch(r#"{"index":1,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"q\": \"caf\u00e9 near me\"}"}}]}}"#),
        ch(r#"{"index":0,"delta":{"content":" nice and warm"},"finish_reason":null}"#),
        ch(r#"{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"tool_calls"}"#),
        usage_chunk(20, 30),
        "data: [DONE]".to_string(),
    ]
    .concat()
}

#[test]
fn rich_stream_meters_everything() {
    let input = rich_stream();
    let (out, m) = run(opts(None, true), &input);
    assert_eq!(out, input.as_bytes());
    // Words: "Let me think" 3; "Café \"au\" lait\n is" 4; "lookup" 1;
    // the arguments 4; " nice and warm" 3.
    assert_eq!(m.sent_tokens(), 15);
    assert_eq!(m.usage().completion_tokens, 30);
}

#[test]
fn oversized_event_passes_through_uncounted() {
    let big = content(&"x ".repeat(600_000));
    let input = format!("{big}{}{DONE}", content("a b"));
    let (out, m) = run(opts(Some(5), true), &input);
    assert_eq!(out, input.as_bytes());
    assert_eq!(m.sent_tokens(), 2);
    assert!(!m.done());
}

#[test]
fn meter_is_send() {
    fn send<T: Send>() {}
    send::<StreamMeter>();
}

fn rich_len() -> usize {
    rich_stream().len()
}

proptest! {
    #[test]
    fn any_chunking_of_a_rich_stream(
        cut_at in cuts(rich_len()),
        cap in prop::option::of(0u64..17),
        wants in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let mut input = rich_stream();
        if crlf {
            input = input.replace('\n', "\r\n");
        }
        let cut_at: Vec<usize> = cut_at.into_iter().filter(|&c| c <= input.len()).collect();
        let (whole, m1) = run(opts(cap, wants), &input);
        let (split, m2) = run_split(opts(cap, wants), input.as_bytes(), &cut_at);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(m1.usage(), m2.usage());
        let c = client(&split);
        prop_assert_eq!(c.after_done, 0);
        if let Some(cap) = cap {
            prop_assert!(m2.sent_tokens() <= cap);
            prop_assert_eq!(m2.done(), cap < 15);
            if cap < 15 {
                prop_assert_eq!(m2.sent_tokens(), cap, "cut exactly at the cap");
            }
        }
    }
}

#[test]
fn crossing_event_broken_outside_what_is_read_still_ends_the_stream() {
    // `model` is not valid JSON; the scanner skips it and counts 3 tokens.
    let bad =
        "data: {\"model\":tru,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a b c\"}}]}\n\n";
    let (out, m) = run(opts(Some(2), true), bad);
    assert!(m.done());
    assert_eq!(m.sent_tokens(), 0);
    let c = client(&out);
    assert_eq!(c.finish, vec![(0, "length".to_string())]);
    assert_eq!(c.done_markers, 1);
    // Not crossing: forwarded as it came.
    let (out, m) = run(opts(Some(5), false), bad);
    assert_eq!(out, bad.as_bytes());
    assert_eq!(m.sent_tokens(), 3);
}
