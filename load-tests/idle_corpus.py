"""Sends chat prompts through the gateway for gpt-4o-mini (o200k_base) and
gpt-4 (cl100k_base): one short request each with size_kb 0, else size_kb
KiB of random mixed English / Chinese / code / digits per model in 64 KiB
prompts (the gateway counts every prompt's tokens for its token rule).
Fails on any answer but 200. Usage: idle_corpus.py BASE_URL SIZE_KB"""
import json
import random
import sys
import urllib.request

base, size_kb = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
LOWER = "abcdefghijklmnopqrstuvwxyz"


def word():
    kind = rng.random()
    if kind < 0.55:
        w = "".join(rng.choice(LOWER) for _ in range(rng.randint(1, 12)))
        return w.capitalize() if rng.random() < 0.1 else w
    if kind < 0.75:
        return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(1, 6)))
    if kind < 0.9:
        return rng.choice(["fn", "let", "{", "}", "();", "=>", "::", "self.", "[i]", "!=", "#", "//"]) + rng.choice(LOWER)
    return str(rng.randint(0, 10**rng.randint(1, 9)))


def text(n):
    out, size = [], 0
    while size < n:
        w = word()
        out.append(w)
        size += len(w.encode()) + 1
    return " ".join(out)


def send(model, prompt):
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}]}).encode()
    req = urllib.request.Request(f"{base}/v1/chat/completions", data=body, headers={
        "authorization": "Bearer sk-bench", "x-tenant": "bench", "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200, r.status


for model in ("gpt-4o-mini", "gpt-4"):
    if size_kb == 0:
        send(model, "warm the tokenizer")
    for _ in range(size_kb // 64):
        send(model, text(64 * 1024))
