use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A tool-use turn as Anthropic streams it (text, then a tool_use block
/// whose input arrives in pieces), with a ping and CRLF line ends mixed in.
const ANTHROPIC: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":10},\"content\":[],\"stop_reason\":null}}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\r\n",
    "data: {\"type\": \"ping\"}\r\n\r\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay, let me check \"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"the weather ☀\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"San Fra\"}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ncisco, CA\\\"}\"}}\n\n",
    "event: content_block_stop\n",
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

/// The `data` payloads of an SSE output, in order.
fn datas(out: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(text.is_empty() || text.ends_with("\n\n"), "{text:?}");
    text.split_terminator("\n\n")
        .map(|ev| {
            let line = ev.lines().find(|l| l.starts_with("data: ")).unwrap();
            line["data: ".len()..].to_owned()
        })
        .collect()
}

fn to_openai(input: &[u8], include_usage: bool) -> (Vec<u8>, AnthropicToOpenAiStream) {
    let mut t = AnthropicToOpenAiStream::new("gpt-alias", include_usage).with_created(1700000000);
    let mut out = Vec::new();
    t.feed(input, &mut out);
    t.finish(&mut out);
    (out, t)
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "msg_014p7gG3wDgGV9EUtLvnow3U", "object": "chat.completion.chunk",
        "created": 1700000000, "model": "gpt-alias",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

#[test]
fn anthropic_stream_to_openai_chunks() {
    let (out, t) = to_openai(ANTHROPIC.as_bytes(), true);
    let events = datas(&out);
    let (last, json_events) = events.split_last().unwrap();
    assert_eq!(last, "[DONE]");
    let got: Vec<Value> = json_events
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let call = |c: Value| chunk(json!({"tool_calls": [c]}), Value::Null);
    let mut usage_chunk = chunk(json!({}), Value::Null);
    usage_chunk["choices"] = json!([]);
    usage_chunk["usage"] = json!({"prompt_tokens": 582, "completion_tokens": 89, "total_tokens": 671,
        "prompt_tokens_details": {"cached_tokens": 100}});
    let want = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Okay, let me check "}), Value::Null),
        chunk(json!({"content": "the weather ☀"}), Value::Null),
        call(
            json!({"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
            "function": {"name": "get_weather", "arguments": ""}}),
        ),
        call(json!({"index": 0, "function": {"arguments": "{\"location\":"}})),
        call(json!({"index": 0, "function": {"arguments": " \"San Fra"}})),
        call(json!({"index": 0, "function": {"arguments": "ncisco, CA\"}"}})),
        chunk(json!({}), json!("tool_calls")),
        usage_chunk,
    ];
    assert_eq!(got, want);
    assert_eq!(t.usage(), Some((582, 89)));
    assert!(t.done());
    // The client's accumulated view.
    let args: String = got
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    let input: Value = serde_json::from_str(&args).unwrap();
    assert_eq!(input, json!({"location": "San Francisco, CA"}));
    // Without include_usage: no usage chunk, same otherwise.
    let (out2, t2) = to_openai(ANTHROPIC.as_bytes(), false);
    let events2 = datas(&out2);
    assert_eq!(events2.len(), events.len() - 1);
    assert_eq!(events2[..8], events[..8]);
    assert_eq!(t2.usage(), Some((582, 89)));
}

#[test]
fn anthropic_thinking_and_second_tool() {
    let input = concat!(
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"f\",\"input\":{}}}\n\n",
        "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"b\",\"name\":\"g\",\"input\":{}}}\n\n",
        "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":7}}\n\n",
    );
    let mut t = AnthropicToOpenAiStream::new("", false);
    let mut out = Vec::new();
    t.feed(input.as_bytes(), &mut out);
    t.finish(&mut out); // no message_stop: closed normally
    let events = datas(&out);
    let v: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(v[0]["model"], "claude");
    assert_eq!(
        v[1]["choices"][0]["delta"],
        json!({"reasoning_content": "hmm"})
    );
    assert_eq!(v[2]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    assert_eq!(v[3]["choices"][0]["delta"]["tool_calls"][0]["index"], 1);
    assert_eq!(
        v[4]["choices"][0]["delta"]["tool_calls"][0],
        json!({"index": 1, "function": {"arguments": "{}"}})
    );
    assert_eq!(v[5]["choices"][0]["finish_reason"], "length");
    assert_eq!(v.len(), 6);
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(t.usage(), Some((3, 7)));
}

#[test]
fn anthropic_error_event() {
    let input = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: error\n",
        "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}\n\n",
    );
    let (out, t) = to_openai(input.as_bytes(), true);
    let events = datas(&out);
    assert_eq!(events.len(), 3);
    let err: Value = serde_json::from_str(&events[2]).unwrap();
    assert_eq!(
        err,
        json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded"}})
    );
    assert!(t.done());
}

#[test]
fn anthropic_stream_cut_short_or_empty() {
    let cut = &ANTHROPIC[..ANTHROPIC.find("event: message_delta").unwrap()];
    for input in [cut, "", ": keep-alive\n\n", "garbage"] {
        let (out, _) = to_openai(input.as_bytes(), true);
        let events = datas(&out);
        let err: Value = serde_json::from_str(events.last().unwrap()).unwrap();
        assert_eq!(err["error"]["code"], "incomplete_stream", "{input:?}");
        assert!(!events.contains(&"[DONE]".to_owned()));
    }
}

/// What an OpenAI upstream streams for a text + two tool calls turn.
const OPENAI: &str = concat!(
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"look.\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"lookup\",\"arguments\":\"\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"rust\\\"}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20,\"total_tokens\":70,\"prompt_tokens_details\":{\"cached_tokens\":32}}}\n\n",
    "data: [DONE]\n\n",
);

fn to_anthropic(input: &[u8]) -> (Vec<u8>, OpenAiToAnthropicStream) {
    let mut t = OpenAiToAnthropicStream::new("");
    let mut out = Vec::new();
    t.feed(input, &mut out);
    t.finish(&mut out);
    (out, t)
}

/// (event name, data) pairs of an Anthropic SSE output.
fn named(out: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(out).unwrap();
    text.split_terminator("\n\n")
        .map(|ev| {
            let mut lines = ev.lines();
            let name = lines.next().unwrap().strip_prefix("event: ").unwrap();
            let data = lines.next().unwrap().strip_prefix("data: ").unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], name);
            (name.to_owned(), v)
        })
        .collect()
}

#[test]
fn openai_stream_to_anthropic_events() {
    let (out, t) = to_anthropic(OPENAI.as_bytes());
    let got: Vec<Value> = named(&out).into_iter().map(|(_, v)| v).collect();
    let delta = |i: u64, d: Value| json!({"type": "content_block_delta", "index": i, "delta": d});
    let want = vec![
        json!({"type": "message_start", "message": {"id": "chatcmpl-1", "type": "message",
            "role": "assistant", "model": "gpt-4o", "content": [], "stop_reason": null,
            "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        delta(0, json!({"type": "text_delta", "text": "Let me "})),
        delta(0, json!({"type": "text_delta", "text": "look."})),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block":
            {"type": "tool_use", "id": "call_A", "name": "lookup", "input": {}}}),
        delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "{\"q\":"}),
        ),
        delta(
            1,
            json!({"type": "input_json_delta", "partial_json": "\"rust\"}"}),
        ),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block":
            {"type": "tool_use", "id": "call_B", "name": "now", "input": {}}}),
        delta(2, json!({"type": "input_json_delta", "partial_json": "{}"})),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
            "usage": {"input_tokens": 18, "output_tokens": 20, "cache_read_input_tokens": 32,
                      "cache_creation_input_tokens": 0}}),
        json!({"type": "message_stop"}),
    ];
    assert_eq!(got, want);
    assert_eq!(t.usage(), Some((50, 20)));
    assert!(t.done());
}

#[test]
fn openai_reasoning_error_and_cut_streams() {
    let input = concat!(
        "data: {\"id\":\"c\",\"model\":\"deepseek\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"length\"}]}\n\n",
    );
    // No [DONE] after a finish_reason: closed normally.
    let (out, _) = to_anthropic(input.as_bytes());
    let ev = named(&out);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[1].1["content_block"]["type"], "thinking");
    assert_eq!(
        ev[2].1["delta"],
        json!({"type": "thinking_delta", "thinking": "hm"})
    );
    assert_eq!(ev[7].1["delta"]["stop_reason"], "max_tokens");
    // An upstream error event.
    let input = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n",
        "data: [DONE]\n\n",
    );
    let (out, t) = to_anthropic(input.as_bytes());
    let ev = named(&out);
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(
        *last,
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}})
    );
    assert!(t.done());
    assert_eq!(t.usage(), None);
    // Cut before any finish_reason, or nothing at all.
    for input in [
        "",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n",
    ] {
        let (out, _) = to_anthropic(input.as_bytes());
        let ev = named(&out);
        assert_eq!(ev.last().unwrap().0, "error");
        assert_eq!(ev.last().unwrap().1["error"]["type"], "api_error");
    }
}

#[test]
fn openai_tool_calls_without_index() {
    let input = concat!(
        "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n",
    );
    let (out, _) = to_anthropic(input.as_bytes());
    let ev: Vec<Value> = named(&out).into_iter().map(|(_, v)| v).collect();
    let starts: Vec<(u64, &str)> = ev
        .iter()
        .filter(|v| v["type"] == "content_block_start")
        .map(|v| {
            (
                v["index"].as_u64().unwrap(),
                v["content_block"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(starts, [(0, "a"), (1, "b")]);
    let pieces: Vec<(u64, &str)> = ev
        .iter()
        .filter(|v| v["type"] == "content_block_delta")
        .map(|v| {
            (
                v["index"].as_u64().unwrap(),
                v["delta"]["partial_json"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(pieces, [(0, "{\"x\":"), (0, "1}"), (1, "{}")]);
    assert_eq!(ev[ev.len() - 2]["delta"]["stop_reason"], "tool_use");
}

#[test]
fn streams_chain_back_to_the_same_content() {
    let (openai, _) = to_openai(ANTHROPIC.as_bytes(), true);
    let (anthropic, t) = to_anthropic(&openai);
    let ev = named(&anthropic);
    let text: String = ev
        .iter()
        .filter_map(|(_, v)| v["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Okay, let me check the weather ☀");
    let args: String = ev
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(args, "{\"location\": \"San Francisco, CA\"}");
    let stop = &ev[ev.len() - 2].1;
    assert_eq!(stop["delta"]["stop_reason"], "tool_use");
    assert_eq!(stop["usage"]["cache_read_input_tokens"], 100);
    assert_eq!(t.usage(), Some((582, 89)));
}

/// Feeds `input` cut at `cuts` (sorted offsets).
fn feed_split<F: FnMut(&[u8], &mut Vec<u8>)>(input: &[u8], cuts: &[usize], mut feed: F) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts {
        feed(&input[at..c], &mut out);
        at = c;
    }
    feed(&input[at..], &mut out);
    out
}

fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..40).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

#[test]
fn byte_by_byte_equals_whole() {
    for include_usage in [false, true] {
        let (whole, _) = to_openai(ANTHROPIC.as_bytes(), include_usage);
        let mut t =
            AnthropicToOpenAiStream::new("gpt-alias", include_usage).with_created(1700000000);
        let mut out = Vec::new();
        for b in ANTHROPIC.as_bytes() {
            t.feed(std::slice::from_ref(b), &mut out);
        }
        t.finish(&mut out);
        assert_eq!(out, whole);
    }
    let (whole, _) = to_anthropic(OPENAI.as_bytes());
    let mut t = OpenAiToAnthropicStream::new("");
    let mut out = Vec::new();
    for b in OPENAI.as_bytes() {
        t.feed(std::slice::from_ref(b), &mut out);
    }
    t.finish(&mut out);
    assert_eq!(out, whole);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn anthropic_chunking_does_not_matter(cuts in cuts(ANTHROPIC.len())) {
        let (whole, _) = to_openai(ANTHROPIC.as_bytes(), true);
        let mut t = AnthropicToOpenAiStream::new("gpt-alias", true).with_created(1700000000);
        let mut out = feed_split(ANTHROPIC.as_bytes(), &cuts, |c, o| t.feed(c, o));
        t.finish(&mut out);
        prop_assert_eq!(out, whole);
    }

    #[test]
    fn openai_chunking_does_not_matter(cuts in cuts(OPENAI.len())) {
        let (whole, _) = to_anthropic(OPENAI.as_bytes());
        let mut t = OpenAiToAnthropicStream::new("");
        let mut out = feed_split(OPENAI.as_bytes(), &cuts, |c, o| t.feed(c, o));
        t.finish(&mut out);
        prop_assert_eq!(out, whole);
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut a = AnthropicToOpenAiStream::new("m", true);
        let mut o = OpenAiToAnthropicStream::new("m");
        let mut out = Vec::new();
        a.feed(&bytes, &mut out);
        a.finish(&mut out);
        o.feed(&bytes, &mut out);
        o.finish(&mut out);
    }

    #[test]
    fn wrong_shapes_never_panic(events in proptest::collection::vec(shaped_event(), 0..12)) {
        let input: String = events.concat();
        let (out, _) = to_openai(input.as_bytes(), true);
        prop_assert!(out.ends_with(b"\n\n"));
        let (out, _) = to_anthropic(input.as_bytes());
        prop_assert!(out.ends_with(b"\n\n"));
    }
}

/// Events of the right names with fields of random types.
fn shaped_event() -> impl Strategy<Value = String> {
    let scalar = prop_oneof![
        Just(json!(null)),
        Just(json!(1)),
        Just(json!(-1)),
        Just(json!("x")),
        Just(json!([])),
        Just(json!({})),
        Just(json!(u64::MAX)),
    ];
    let ty = prop_oneof![
        Just("message_start"),
        Just("content_block_start"),
        Just("content_block_delta"),
        Just("message_delta"),
        Just("message_stop"),
        Just("error"),
        Just("ping"),
    ];
    let dty = prop_oneof![
        Just("text"),
        Just("tool_use"),
        Just("thinking"),
        Just("text_delta"),
        Just("input_json_delta"),
        Just("thinking_delta"),
    ];
    (
        ty,
        dty,
        scalar.clone(),
        scalar.clone(),
        scalar,
        any::<bool>(),
    )
        .prop_map(|(ty, dty, a, b, c, done)| {
            if done {
                return "data: [DONE]\n\n".to_owned();
            }
            let v = json!({"type": ty, "index": a, "message": {"id": b, "usage": c},
            "content_block": {"type": dty, "id": a, "name": b, "input": c, "text": a},
            "delta": {"type": dty, "text": b, "partial_json": c, "stop_reason": a, "content": b,
                      "tool_calls": [{"index": a, "function": {"name": b, "arguments": c}}]},
            "usage": c, "choices": [{"index": a, "delta": {"content": b, "tool_calls": c}}],
            "error": a});
            format!("data: {v}\n\n")
        })
}
