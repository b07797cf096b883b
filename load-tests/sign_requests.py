"""Writes N signed requests' headers for load-tests/wrk/signed.lua: one
line per request, `timestamp nonce signature`, for the body and key of
load-tests/external.yaml (the canonical string of docs/request-safety.md).
Usage: sign_requests.py N OUT"""
import hashlib
import hmac
import os
import sys
import time

BODY = b'{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load test."}]}'
SECRET = b"bench-signing-secret-0123456789"

n, out = int(sys.argv[1]), sys.argv[2]
digest = hashlib.sha256(BODY).hexdigest()
ts = str(int(time.time()))
prefix = os.urandom(6).hex()
with open(out, "w") as f:
    for i in range(n):
        nonce = f"{prefix}{i:010d}"
        text = "\n".join(["POST", "/v1/chat/completions", "", ts, nonce, digest]).encode()
        sig = hmac.new(SECRET, text, hashlib.sha256).hexdigest()
        f.write(f"{ts} {nonce} {sig}\n")
