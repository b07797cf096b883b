"""Drives the gateway with the official OpenAI Python SDK against a limits
config (output cap of 5 tokens, 3 requests per minute for the `limited` key).
Run by tests/it/sdk_openai.rs; exits non-zero with a message on any mismatch.

usage: openai_limits.py BASE_URL
"""
import sys

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test", max_retries=0)
messages = [{"role": "user", "content": "hello there"}]
hdr = {"x-mock-ignore-max-tokens": "1", "x-mock-tokens": "50"}


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)


# A stream cut at the cap: the SDK iterates to the end without an error.
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=messages, stream=True,
    stream_options={"include_usage": True}, extra_headers=hdr)
text, finish, usage = "", None, None
for chunk in stream:
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    if chunk.usage:
        usage = chunk.usage
check(text == " water keeps the stream flowing", f"stream content {text!r}")
check(finish == "length", f"stream finish {finish!r}")
check(usage is not None and usage.completion_tokens == 5, f"stream usage {usage!r}")

# The same through the SDK's non-streaming path.
resp = client.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_headers=hdr)
check(resp.choices[0].message.content == " water keeps the stream flowing",
      f"json content {resp.choices[0].message.content!r}")
check(resp.choices[0].finish_reason == "length", "json finish")
check(resp.usage.completion_tokens == 5, f"json usage {resp.usage!r}")

# A rate-limit denial surfaces as the SDK's RateLimitError.
limited = openai.OpenAI(base_url=base + "/v1", api_key="sk-limited", max_retries=0)
for _ in range(3):
    limited.chat.completions.create(model="gpt-4o-mini", messages=messages)
try:
    limited.chat.completions.create(model="gpt-4o-mini", messages=messages)
    check(False, "fourth request was admitted")
except openai.RateLimitError as e:
    check(e.status_code == 429, "status")
    check("per-key" in e.message, f"message {e.message!r}")
    check(int(e.response.headers["retry-after"]) >= 1, "retry-after")
print("ok")
