#!/usr/bin/env python3
"""Memory per concurrent stream: N streaming chat completions held open at
once through one gateway, its RSS sampled before, while all N stream, and
after they ended.

Usage: streams.py URL PID N [TOKENS] [CHUNK_MS]
  URL       the gateway (http://127.0.0.1:PORT), key sk-bench
  PID       the gateway's process id (RSS read from /proc/PID/status)
  N         concurrent streams (e.g. 1000, 10000: raise `ulimit -n`)
  TOKENS    tokens per stream (default 40); CHUNK_MS between chunks (100)
Prints idle, peak and after RSS (MiB) and the growth per stream (KiB).
"""
import asyncio
import json
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def stream(host, port, body, started, done, errors):
    try:
        await one_stream(host, port, body, started, done)
    except OSError as e:
        errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        done.append(False)


async def one_stream(host, port, body, started, done):
    reader, writer = await asyncio.open_connection(host, port)
    req = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-bench\r\n"
        "x-tenant: bench\r\nContent-Type: application/json\r\n"
        f"x-mock-tokens: {TOKENS}\r\nx-mock-chunk-ms: {CHUNK_MS}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    writer.write(req)
    await writer.drain()
    first = await reader.read(4096)
    ok = first.startswith(b"HTTP/1.1 200")
    started.append(ok)
    data = first
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        data += chunk[-64:]
    writer.close()
    done.append(ok and b"[DONE]" in data)


async def main():
    url, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    host, port = url.split("//")[1].split(":")
    body = json.dumps({"model": "gpt-4o-mini", "stream": True, "max_tokens": TOKENS,
                       "messages": [{"role": "user", "content": "stream to the memory test"}]}).encode()
    idle = rss_kib(pid)
    started, done, errors = [], [], {}
    tasks = [asyncio.create_task(stream(host, int(port), body, started, done, errors)) for _ in range(n)]
    peak = idle
    t0 = time.time()
    while len(done) < n and time.time() - t0 < 600:
        await asyncio.sleep(0.05)
        peak = max(peak, rss_kib(pid))
    await asyncio.gather(*tasks, return_exceptions=True)
    ended = rss_kib(pid)
    await asyncio.sleep(5)
    after = rss_kib(pid)
    ok = sum(done)
    print(f"streams: {n} at once ({TOKENS} tokens, {CHUNK_MS} ms apart), {ok} complete, "
          f"{sum(started)} answered 200")
    print(f"RSS: idle {idle / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, at the end {ended / 1024:.1f} MiB, "
          f"5 s later {after / 1024:.1f} MiB; growth per stream {(peak - idle) / n:.1f} KiB")
    if ok < n:
        print(f"failed: {n - ok} ({errors or 'no 200 or no [DONE]'})")
        sys.exit(1)


TOKENS = int(sys.argv[4]) if len(sys.argv) > 4 else 40
CHUNK_MS = int(sys.argv[5]) if len(sys.argv) > 5 else 100
asyncio.run(main())
