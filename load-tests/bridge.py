"""The Bridge's costs (driven by load-tests/bridge.sh).

1. Round trip: N sequential `POST /internal/v1/bridge/invoke` of agent
   `bench`'s tool `cat` (`/bin/cat`: the arguments come back) through the
   gateway, against N direct runs of the same command here (what a client
   without the Bridge would do). The difference is what the gateway, the
   tunnel and the agent add.
2. Idle agents: K tunnels opened (each its own agent id and token) and held
   open; the gateway's RSS before and after gives the memory per agent.

Usage: bridge.py <gateway URL> <gateway pid> <rounds> <idle agents>
Prints a Markdown table.
"""

import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request

BASE, PID, ROUNDS, IDLE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
HOST, PORT = BASE.split("//")[1].split(":")[0], int(BASE.rsplit(":", 1)[1])


def post(path, body, token):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST")
    req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def round_trips():
    args = {"text": "x" * 64}
    via, direct = [], []
    for i in range(ROUNDS):
        t = time.perf_counter()
        r = post("/internal/v1/bridge/invoke", {"req_id": f"rt-{i}-{time.time_ns()}", "agent_id": "bench", "tool_name": "cat", "arguments": args}, "sk-bench")
        via.append((time.perf_counter() - t) * 1000)
        assert r["status"] == "ok", r
        t = time.perf_counter()
        subprocess.run(["/bin/cat"], input=json.dumps(args).encode(), capture_output=True, check=True)
        direct.append((time.perf_counter() - t) * 1000)
    return via, direct


async def hold(agent, token, ready):
    reader, writer = await asyncio.open_connection(HOST, PORT)
    body = json.dumps({"agent_id": agent, "tools": [{"name": "noop", "input_schema": {"type": "object"}}]}).encode()
    writer.write(
        b"POST /internal/v1/bridge/tunnel HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer " + token.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], head
    while b"welcome" not in await reader.readline():
        pass
    ready.set_result(True)
    await asyncio.sleep(3600)


async def idle_agents():
    tokens = [post("/internal/v1/bridge/agent-token", {"agent_id": f"idle-{i}"}, "adm")["token"] for i in range(IDLE)]
    before = rss_kib(PID)
    futures, tasks = [], []
    for i, tok in enumerate(tokens):
        f = asyncio.get_running_loop().create_future()
        futures.append(f)
        tasks.append(asyncio.create_task(hold(f"idle-{i}", tok, f)))
        if i % 100 == 99:
            await asyncio.gather(*futures)
    await asyncio.gather(*futures)
    await asyncio.sleep(2)
    after = rss_kib(PID)
    for t in tasks:
        t.cancel()
    return before, after


via, direct = round_trips()
before, after = asyncio.run(idle_agents())
print("| figure | value |")
print("| --- | --- |")
print(f"| invoke through the gateway, p50 / p99 (ms) | {statistics.median(via):.2f} / {pct(via, 0.99):.2f} |")
print(f"| the same command run directly, p50 / p99 (ms) | {statistics.median(direct):.2f} / {pct(direct, 0.99):.2f} |")
print(f"| added by the Bridge, p50 (ms) | {statistics.median(via) - statistics.median(direct):.2f} |")
print(f"| idle agents held | {IDLE} |")
print(f"| gateway RSS before / after (MiB) | {before / 1024:.1f} / {after / 1024:.1f} |")
print(f"| memory per idle agent (KiB) | {(after - before) / IDLE:.1f} |")
