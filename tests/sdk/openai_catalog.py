"""Drives the gateway's model catalog with the official OpenAI Python SDK:
chat and streams on an OpenAI and an Anthropic deployment (translated),
function calling round trips, embeddings through Azure, the model list,
and upstream errors surfacing as the SDK's own exceptions.
Run by tests/it/sdk_openai.rs; exits non-zero with a message on any mismatch.

usage: openai_catalog.py BASE_URL
"""
import json
import sys

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}]
words = ["water", "keeps", "the", "stream", "flowing", "while", "it", "counts", "every", "token"]
expected = "".join(" " + words[i % len(words)] for i in range(16))
tools = [{"type": "function", "function": {"name": "lookup", "description": "find a thing",
          "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}}]


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


for model in ["gpt-4o", "claude"]:
    resp = client.chat.completions.create(model=model, messages=messages, max_tokens=50)
    check(resp.choices[0].message.content == expected, f"{model} content {resp!r}")
    check(resp.choices[0].finish_reason == "stop", f"{model} finish")
    check(resp.model == model or resp.model.startswith(model), f"{model} model {resp.model!r}")
    check(resp.usage.completion_tokens == 16 and resp.usage.prompt_tokens > 0, f"{model} usage")

    text, finish, usage = "", None, None
    for chunk in client.chat.completions.create(
            model=model, messages=messages, max_tokens=50, stream=True,
            stream_options={"include_usage": True}):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    check(text == expected, f"{model} stream {text!r}")
    check(finish == "stop", f"{model} stream finish {finish!r}")
    check(usage is not None and usage.completion_tokens == 16, f"{model} stream usage {usage!r}")

    # Function calling, JSON then stream, then the tool's result back.
    resp = client.chat.completions.create(model=model, messages=messages, tools=tools, max_tokens=50)
    check(resp.choices[0].finish_reason == "tool_calls", f"{model} tool finish {resp!r}")
    call = resp.choices[0].message.tool_calls[0]
    check(call.function.name == "lookup", f"{model} tool name")
    check(json.loads(call.function.arguments) == {"query": "water"}, f"{model} tool args")
    name, args = "", ""
    for chunk in client.chat.completions.create(
            model=model, messages=messages, tools=tools, max_tokens=50, stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += tc.function.name or ""
            args += tc.function.arguments or ""
    check(name == "lookup" and json.loads(args) == {"query": "water"}, f"{model} tool stream {name!r} {args!r}")
    follow = messages + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "found it"},
    ]
    resp = client.chat.completions.create(model=model, messages=follow, tools=tools, max_tokens=50)
    check(resp.choices[0].message.content == expected, f"{model} after tool {resp!r}")

emb = client.embeddings.create(model="emb", input=["one two", "three"])
check(len(emb.data) == 2 and len(emb.data[0].embedding) > 0, f"embeddings {emb!r}")

ids = sorted(m.id for m in client.models.list())
check(ids == ["claude", "emb", "gpt-4o"], f"models {ids!r}")

try:
    client.chat.completions.create(model="gpt-4o", messages=messages,
                                   extra_headers={"x-mock-status": "429"})
    check(False, "429 was not raised")
except openai.RateLimitError as e:
    check(e.status_code == 429, "429 status")
    # The external channel: the gateway's words, never the provider's.
    check("model provider" in str(e) and "mock" not in str(e), f"429 message {e.message!r}")
    check(e.body.get("code") == "upstream_rate_limited", f"429 code {e.body!r}")
    check("upstream_status" not in e.body, f"429 body {e.body!r}")

for model in ["gpt-4o", "claude"]:
    try:
        client.chat.completions.create(model=model, messages=messages,
                                       extra_headers={"x-mock-status": "500"})
        check(False, "500 was not raised")
    except openai.InternalServerError as e:
        check(e.status_code == 502, f"{model} 5xx status {e.status_code}")
        check("model provider" in str(e) and "mock" not in str(e), f"{model} 5xx message {e!r}")
print("ok")
