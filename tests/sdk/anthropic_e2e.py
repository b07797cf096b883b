"""Drives the gateway's `/v1/messages` with the official Anthropic Python
SDK, on a catalog model served by an OpenAI-format deployment and one
served by an Anthropic-format deployment: messages, streaming (event
iteration and the stream helper), tool use round trips, a token cap
ending a stream cleanly, and upstream errors as the SDK's exceptions.
Run by tests/it/sdk_anthropic.rs; exits non-zero with a message on any mismatch.

usage: anthropic_e2e.py BASE_URL
"""
import sys

import anthropic

base = sys.argv[1]
client = anthropic.Anthropic(base_url=base, api_key="sk-test", max_retries=0)
words = ["water", "keeps", "the", "stream", "flowing", "while", "it", "counts", "every", "token"]


def text_of(n):
    return "".join(" " + words[i % len(words)] for i in range(n))


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


messages = [{"role": "user", "content": "hello there"}]
tools = [{"name": "lookup", "description": "find a thing",
          "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}]

for model in ["via-openai", "via-claude"]:
    msg = client.messages.create(model=model, max_tokens=100, system="be brief", messages=messages)
    check(msg.type == "message" and msg.role == "assistant", f"{model} message {msg!r}")
    check(msg.content[0].type == "text" and msg.content[0].text == text_of(16), f"{model} text {msg!r}")
    check(msg.stop_reason == "end_turn", f"{model} stop {msg.stop_reason!r}")
    check(msg.usage.output_tokens == 16 and msg.usage.input_tokens > 0, f"{model} usage {msg.usage!r}")

    # Streaming: raw events, then the helper that assembles the message.
    text, stop = "", None
    for event in client.messages.create(model=model, max_tokens=100, messages=messages, stream=True):
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
        if event.type == "message_delta":
            stop = event.delta.stop_reason
    check(text == text_of(16) and stop == "end_turn", f"{model} stream {text!r} {stop!r}")
    with client.messages.stream(model=model, max_tokens=100, messages=messages) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    check(streamed == text_of(16), f"{model} stream helper {streamed!r}")
    check(final.stop_reason == "end_turn" and final.usage.output_tokens == 16, f"{model} final {final!r}")

    # Tool use, JSON and streamed, then the result back.
    msg = client.messages.create(model=model, max_tokens=100, messages=messages, tools=tools)
    check(msg.stop_reason == "tool_use", f"{model} tool stop {msg!r}")
    use = next(b for b in msg.content if b.type == "tool_use")
    check(use.name == "lookup" and use.input == {"query": "water"}, f"{model} tool_use {use!r}")
    with client.messages.stream(model=model, max_tokens=100, messages=messages, tools=tools) as stream:
        final = stream.get_final_message()
    streamed_use = next(b for b in final.content if b.type == "tool_use")
    check(streamed_use.input == {"query": "water"} and final.stop_reason == "tool_use",
          f"{model} streamed tool_use {final!r}")
    follow = messages + [
        {"role": "assistant", "content": [use.model_dump()]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "found"}]},
    ]
    msg = client.messages.create(model=model, max_tokens=100, messages=follow, tools=tools)
    check(msg.stop_reason == "end_turn" and msg.content[0].text == text_of(16), f"{model} after tool {msg!r}")

    # The gateway's output cap (5 tokens) cuts an overrunning stream cleanly.
    with client.messages.stream(model="capped-" + model, max_tokens=100, messages=messages,
                                extra_headers={"x-mock-ignore-max-tokens": "1"}) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    check(streamed == text_of(5), f"{model} capped stream {streamed!r}")
    check(final.stop_reason == "max_tokens" and final.usage.output_tokens == 5, f"{model} capped {final!r}")

    # Upstream errors surface as the SDK's exceptions.
    for status, exc in [("429", anthropic.RateLimitError), ("500", anthropic.InternalServerError),
                        ("400", anthropic.BadRequestError)]:
        try:
            client.messages.create(model=model, max_tokens=100, messages=messages,
                                   extra_headers={"x-mock-status": status})
            check(False, f"{model} {status} was not raised")
        except exc as e:
            # The external channel: the gateway's words, never the provider's.
            check("model provider" in str(e) and "mock" not in str(e), f"{model} {status} message {e!r}")
print("ok")
