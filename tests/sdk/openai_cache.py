"""Replays from the response cache seen through the official OpenAI Python
SDK: a stream answered a second time from the cache parses into the same
chunks (content, finish reason, usage, ids) as the original, the second
answer says `x-cache: hit`, and a non-streaming call answered from the
stored stream carries the same text, finish reason and usage.
Run by tests/it/cache.rs; exits non-zero with a message on any mismatch.

usage: openai_cache.py BASE_URL
"""
import sys

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
messages = [{"role": "system", "content": "be exact"}, {"role": "user", "content": "sdk replay"}]


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


def streamed():
    raw = client.chat.completions.with_raw_response.create(
        model="cached", messages=messages, temperature=0, stream=True,
        stream_options={"include_usage": True})
    chunks = []
    for chunk in raw.parse():
        chunks.append((chunk.id, [(c.index, c.delta.content, c.finish_reason) for c in chunk.choices],
                       chunk.usage.model_dump() if chunk.usage else None))
    return raw.headers.get("x-cache"), chunks


first_label, first = streamed()
second_label, second = streamed()
check(first_label == "miss", f"first x-cache {first_label}")
check(second_label == "hit", f"second x-cache {second_label}")
check(first == second, f"replayed chunks differ:\n{first}\n{second}")
text = "".join(d or "" for _, choices, _ in first for _, d, _ in choices)
finish = [f for _, choices, _ in first for _, _, f in choices if f]
usage = [u for _, _, u in first if u]
check(text and finish == ["stop"] and len(usage) == 1, f"stream parts {text!r} {finish} {usage}")

raw = client.chat.completions.with_raw_response.create(
    model="cached", messages=messages, temperature=0)
check(raw.headers.get("x-cache") == "hit", f"json x-cache {raw.headers.get('x-cache')}")
resp = raw.parse()
check(resp.choices[0].message.content == text, f"json content {resp.choices[0].message.content!r}")
check(resp.choices[0].finish_reason == "stop", "json finish")
check(resp.usage.model_dump() == usage[0], f"json usage {resp.usage} vs {usage[0]}")
print("ok")
