#!/usr/bin/env python3
"""Time to first token of streaming chat completions, direct vs through a gateway.

Usage: ttft.py N NAME=URL[@API_KEY] ...   (the first target is the reference)

Sends N sequential `stream: true` requests to each target, interleaved
(a, b, a, b, ...) on one keep-alive connection per target, and measures per
request: the response header (TTFB), the first non-empty content delta
(TTFT) and the end of the stream (`data: [DONE]`). Prints median and p99 of
each, and what every other target adds to the first one's TTFT. Then a
buffering check: 20 requests whose mock waits 10 ms between chunks; an
unbuffered gateway keeps TTFT near 10 ms while the stream lasts ~110 ms.

Fails (exit 1) on a non-200 answer, a stream without `[DONE]` or with fewer
content deltas than asked (16, or 10 in the check). Standard library only.
"""
import http.client
import json
import statistics
import sys
import time
from urllib.parse import urlsplit

BODY = json.dumps({
    "model": "gpt-4o-mini", "stream": True, "max_tokens": 16,
    "messages": [{"role": "system", "content": "You are terse."},
                 {"role": "user", "content": "Say hello to the load test."}],
}).encode()


class Target:
    def __init__(self, spec):
        self.name, rest = spec.split("=", 1)
        url, _, self.key = rest.partition("@")
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.conn = None

    def request(self, extra_headers, want_tokens):
        """(ttfb, ttft, total) in ms for one streaming request."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        headers = {"Content-Type": "application/json", "x-tenant": "bench", **extra_headers}
        if self.key:
            headers["Authorization"] = "Bearer " + self.key
        t0 = time.perf_counter()
        self.conn.request("POST", "/v1/chat/completions", body=BODY, headers=headers)
        resp = self.conn.getresponse()
        t_hdr = time.perf_counter()
        if resp.status != 200:
            sys.exit(f"ttft: {self.name} answered {resp.status}: {resp.read()[:300]!r}")
        t_tok = None
        deltas = 0
        done = False
        while True:
            line = resp.readline()
            if not line:
                break
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                done = True
                continue
            for choice in json.loads(data).get("choices", []):
                if choice.get("delta", {}).get("content"):
                    deltas += 1
                    if t_tok is None:
                        t_tok = time.perf_counter()
        t_end = time.perf_counter()
        if resp.will_close:
            self.conn.close()
            self.conn = None
        if not done or deltas < want_tokens:
            sys.exit(f"ttft: {self.name}: stream ended early ({deltas} content deltas, [DONE] {done})")
        ms = lambda t: (t - t0) * 1000
        return ms(t_hdr), ms(t_tok), ms(t_end)


def p99(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


def run(targets, n, extra, want):
    res = {t.name: [] for t in targets}
    for _ in range(n):
        for t in targets:
            res[t.name].append(t.request(extra, want))
    return res


def main():
    n = int(sys.argv[1])
    targets = [Target(s) for s in sys.argv[2:]]
    run(targets, 20, {}, 16)  # warm-up: connections, pools
    res = run(targets, n, {}, 16)
    print(f"{n} sequential streaming requests per setup, interleaved, 16 content deltas, no gap between chunks")
    print(f"{'setup':<36} {'TTFB p50':>9} {'p99':>7}   {'TTFT p50':>9} {'p99':>7}   {'stream end p50':>14} {'p99':>7}  (ms)")
    med = {}
    for t in targets:
        cols = list(zip(*res[t.name]))
        med[t.name] = (statistics.median(cols[1]), p99(cols[1]))
        print(f"{t.name:<36} {statistics.median(cols[0]):9.3f} {p99(cols[0]):7.3f}   "
              f"{med[t.name][0]:9.3f} {med[t.name][1]:7.3f}   "
              f"{statistics.median(cols[2]):14.3f} {p99(cols[2]):7.3f}")
    ref = targets[0].name
    for t in targets[1:]:
        print(f"TTFT added by {t.name}: p50 {med[t.name][0] - med[ref][0]:+.3f} ms, "
              f"p99 {med[t.name][1] - med[ref][1]:+.3f} ms")
    check = run(targets, 20, {"x-mock-chunk-ms": "10", "x-mock-tokens": "10"}, 10)
    parts = []
    for t in targets:
        cols = list(zip(*check[t.name]))
        ttft, end = statistics.median(cols[1]), statistics.median(cols[2])
        parts.append(f"{t.name}: TTFT {ttft:.1f} ms of {end:.1f} ms")
        if ttft > end / 2:
            sys.exit(f"ttft: {t.name} seems to buffer the stream (TTFT {ttft:.1f} ms, end {end:.1f} ms)")
    print("buffering check (10 deltas, 10 ms apart; median): " + "; ".join(parts) + " -> not buffered")


if __name__ == "__main__":
    main()
