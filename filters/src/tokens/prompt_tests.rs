//! Tests of [`super::count_prompt`]: the OpenAI cookbook's published
//! examples and each request shape.

use super::*;
use crate::tokens::Encoding;
use serde_json::json;

fn cl() -> &'static dyn TokenCounter {
    Encoding::Cl100kBase.counter()
}

fn o200k() -> &'static dyn TokenCounter {
    Encoding::O200kBase.counter()
}

fn count(counter: &dyn TokenCounter, body: Value) -> PromptCount {
    count_prompt(counter, &body)
}

/// The cookbook's `example_messages` (section 6).
fn cookbook_messages() -> Value {
    json!([
        {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
        {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
        {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
        {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
    ])
}

#[test]
fn tokens_prompt_cookbook_messages() {
    // Published: 129 for gpt-3.5-turbo / gpt-4 (cl100k), 124 for gpt-4o /
    // gpt-4o-mini (o200k), equal to the API's usage.prompt_tokens.
    let body = json!({"model": "gpt-4", "messages": cookbook_messages()});
    let exact = |tokens| PromptCount {
        tokens,
        estimated: false,
        partial: false,
    };
    assert_eq!(count_prompt(cl(), &body), exact(129));
    assert_eq!(count_prompt(o200k(), &body), exact(124));
}

#[test]
fn tokens_prompt_cookbook_tools() {
    // Section 7: published 105 (gpt-3.5-turbo, gpt-4) and 101 (gpt-4o, -mini).
    let body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that can answer to questions about the weather."},
            {"role": "user", "content": "What's the weather like in San Francisco?"},
        ],
        "tools": [{
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                        "unit": {"type": "string", "description": "The unit of temperature to return", "enum": ["celsius", "fahrenheit"]},
                    },
                    "required": ["location"],
                },
            },
        }],
    });
    let est = |tokens| PromptCount {
        tokens,
        estimated: true,
        partial: false,
    };
    assert_eq!(count_prompt(cl(), &body), est(105));
    assert_eq!(count_prompt(o200k(), &body), est(101));
    // The legacy `functions` list counts the same.
    let mut legacy = body.clone();
    legacy["functions"] = json!([body["tools"][0]["function"].clone()]);
    legacy.as_object_mut().map(|o| o.remove("tools"));
    assert_eq!(count_prompt(cl(), &legacy), est(105));
}

#[test]
fn tokens_prompt_message_shapes() {
    let c = cl();
    let n = |s: &str| c.count(s) as u64;
    // Plain string content.
    let r = count(
        c,
        json!({"messages": [{"role": "user", "content": "Hello there!"}]}),
    );
    assert_eq!(
        r,
        PromptCount {
            tokens: 3 + n("user") + n("Hello there!") + 3,
            estimated: false,
            partial: false
        }
    );
    // Name: its tokens + 1.
    let r = count(
        c,
        json!({"messages": [{"role": "user", "name": "bob", "content": "hi"}]}),
    );
    assert_eq!(r.tokens, 3 + n("user") + n("bob") + 1 + n("hi") + 3);
    // Text parts are exact.
    let r = count(
        c,
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in"}, {"type": "text", "text": " this image?"}]}]}),
    );
    assert_eq!(
        r,
        PromptCount {
            tokens: 3 + n("user") + n("What is in") + n(" this image?") + 3,
            estimated: false,
            partial: false
        }
    );
    // Images: documented constants, estimated.
    let r = count(
        c,
        json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe"},
            {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
            {"type": "image_url", "image_url": {"url": "https://x/b.png", "detail": "low"}}]}]}),
    );
    assert_eq!(
        r,
        PromptCount {
            tokens: 3 + n("user") + n("Describe") + IMAGE_TOKENS_HIGH + IMAGE_TOKENS_LOW + 3,
            estimated: true,
            partial: false
        }
    );
    // Assistant tool calls (null content) and the tool's answer.
    let r = count(
        c,
        json!({"messages": [
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "22C and sunny"}]}),
    );
    let want = 3
        + n("assistant")
        + n("get_weather")
        + n("{\"city\":\"Paris\"}")
        + 3
        + n("tool")
        + n("22C and sunny")
        + 3;
    assert_eq!(
        r,
        PromptCount {
            tokens: want,
            estimated: true,
            partial: false
        }
    );
    // Legacy function call and `function` role message.
    let r = count(
        c,
        json!({"messages": [
            {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "42"}]}),
    );
    let want = 3 + n("assistant") + n("f") + n("{}") + 3 + n("function") + n("f") + 1 + n("42") + 3;
    assert_eq!(
        r,
        PromptCount {
            tokens: want,
            estimated: true,
            partial: false
        }
    );
    // No messages at all: just the priming.
    assert_eq!(
        count(c, json!({"messages": []})),
        PromptCount {
            tokens: 3,
            estimated: false,
            partial: false
        }
    );
}

#[test]
fn tokens_prompt_input_and_prompt() {
    let c = cl();
    let n = |s: &str| c.count(s) as u64;
    let exact = |tokens| PromptCount {
        tokens,
        estimated: false,
        partial: false,
    };
    assert_eq!(
        count(c, json!({"input": "The food was delicious"})),
        exact(n("The food was delicious"))
    );
    assert_eq!(
        count(c, json!({"input": ["one two", "three"]})),
        exact(n("one two") + n("three"))
    );
    assert_eq!(count(c, json!({"input": [1, 2, 3]})), exact(3));
    assert_eq!(count(c, json!({"input": [[1, 2], [3, 4, 5]]})), exact(5));
    assert_eq!(
        count(c, json!({"prompt": "Say this is a test"})),
        exact(n("Say this is a test"))
    );
    assert_eq!(
        count(c, json!({"prompt": ["a b", "c"]})),
        exact(n("a b") + n("c"))
    );
    // Responses-API style message items: like chat messages, estimated.
    let r = count(c, json!({"input": [{"role": "user", "content": "hi"}]}));
    assert_eq!(
        r,
        PromptCount {
            tokens: 3 + n("user") + n("hi"),
            estimated: true,
            partial: false
        }
    );
}

#[test]
fn tokens_prompt_anything_else_is_zero() {
    let c = cl();
    for body in [
        json!({"model": "gpt-4o"}),
        json!({"messages": "not an array"}),
        json!(null),
        json!("hello"),
        json!([1, 2, 3]),
        json!({"input": 5}),
    ] {
        assert_eq!(count(c, body.clone()), PromptCount::default(), "{body}");
    }
}

/// The shared counter without its identity, so nothing it counts is
/// memoized: the reference for the memo tests.
struct Unmemoized(&'static dyn TokenCounter);

impl TokenCounter for Unmemoized {
    fn count_up_to(&self, text: &str, limit: usize) -> usize {
        self.0.count_up_to(text, limit)
    }

    fn count(&self, text: &str) -> usize {
        self.0.count(text)
    }
    fn prefix_within(&self, text: &str, max_tokens: usize) -> (usize, usize) {
        self.0.prefix_within(text, max_tokens)
    }
}

proptest::proptest! {
    /// Counting a prompt again (its texts now come from the memo) gives
    /// the count of a counter that never memoizes, for either encoding.
    #[test]
    fn tokens_prompt_memo_never_changes_a_count(
        texts in proptest::collection::vec("(\\PC|[ \\n\\t]){0,40}", 1..6),
        second in proptest::bool::ANY,
    ) {
        let counter = if second { o200k() } else { cl() };
        let messages: Vec<Value> = texts
            .iter()
            .map(|t| json!({"role": "user", "content": t}))
            .collect();
        let body = json!({"messages": messages});
        let want = count(&Unmemoized(counter), body.clone());
        for _ in 0..2 {
            proptest::prop_assert_eq!(count(counter, body.clone()), want);
        }
    }
}

/// The same text in the two encodings is two memo entries, not one.
#[test]
fn tokens_prompt_memo_keys_by_encoding() {
    let text = "お誕生日おめでとう, and antidisestablishmentarianism";
    let body = json!({"messages": [{"role": "user", "content": text}]});
    for _ in 0..2 {
        assert_eq!(
            count(cl(), body.clone()),
            count(&Unmemoized(cl()), body.clone())
        );
        assert_eq!(
            count(o200k(), body.clone()),
            count(&Unmemoized(o200k()), body.clone())
        );
    }
    assert_ne!(cl().count(text), o200k().count(text));
}

#[test]
fn counting_stops_past_the_ceiling() {
    let text = "water keeps the stream flowing ".repeat(2000);
    let body = json!({"messages": [{"role": "user", "content": text},
        {"role": "user", "content": "more"}]});
    let whole = count_prompt(o200k(), &body);
    assert!(!whole.partial);
    let cut = count_prompt_within(o200k(), &body, Some(100));
    assert!(
        cut.partial && cut.tokens > 100 && cut.tokens < whole.tokens,
        "{cut:?}"
    );
    // A ceiling the prompt stays under changes nothing.
    assert_eq!(
        count_prompt_within(o200k(), &body, Some(whole.tokens)),
        whole
    );
}

#[test]
fn a_long_run_of_one_character_counts_in_linear_time() {
    // 1 MiB of one character is one piece over 16 KiB: merged in 255-byte
    // chunks (each distinct chunk once), a few per cent from tiktoken's
    // whole-piece count, and a ceiling stops it after a few chunks.
    let run = "a".repeat(1 << 20);
    let c = o200k();
    let n = c.count(&run);
    let per = c.count(&"a".repeat(255));
    let rest = c.count(&"a".repeat((1 << 20) % 255));
    assert_eq!(n, (1 << 20) / 255 * per + rest);
    // 16 KiB is still merged whole (exact): the chunked rate is close.
    let whole = c.count(&"a".repeat(16 * 1024)) as f64 * 64.0;
    assert!((n as f64 - whole).abs() / whole < 0.1, "{n} vs {whole}");
    let capped = c.count_up_to(&run, 100);
    assert!(capped > 100 && capped < 100 + 2 * per, "{capped}");
    assert_eq!(c.count_up_to(&run, usize::MAX), n);
}
