"""A third-party client signing its requests to Sluice (HMAC-SHA256), with
only the Python standard library: the canonical string is
METHOD, PATH, sorted decoded query, timestamp, nonce and the body's SHA-256,
joined by newlines (docs/request-safety.md).

Usage: hmac_client.py BASE_URL KEY_ID SECRET [--skew S] [--nonce N]
                      [--tamper] [--query Q]
Prints one JSON line: {"status": ..., "code": ..., "nonce": ...}.
"""
import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def canonical(method, path, query, timestamp, nonce, body):
    pairs = sorted(urllib.parse.parse_qsl(query, keep_blank_values=True))
    q = "&".join(f"{k}={v}" for k, v in pairs)
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, q, timestamp, nonce, digest])


def main():
    args = sys.argv[1:]
    base, key_id, secret = args[:3]
    tamper = "--tamper" in args
    rest = [a for a in args[3:] if a != "--tamper"]
    opts = dict(zip(rest[::2], rest[1::2]))
    skew = int(opts.get("--skew", "0"))
    nonce = opts.get("--nonce") or secrets.token_hex(12)
    query = opts.get("--query", "")
    path = "/v1/chat/completions"
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]}).encode()
    timestamp = str(int(time.time()) + skew)
    text = canonical("POST", path, query, timestamp, nonce, body)
    signature = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    if tamper:
        body = body.replace(b"Hello", b"Howdy")
    url = base + path + ("?" + query if query else "")
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "content-type": "application/json",
        "x-sluice-key-id": key_id,
        "x-sluice-timestamp": timestamp,
        "x-sluice-nonce": nonce,
        "x-sluice-signature": signature,
    })
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, payload = r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        status, payload = e.code, json.loads(e.read() or b"{}")
    code = (payload.get("error") or {}).get("code")
    message = (payload.get("error") or {}).get("message")
    print(json.dumps({"status": status, "code": code, "message": message, "nonce": nonce}))


if __name__ == "__main__":
    main()
