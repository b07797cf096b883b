#!/usr/bin/env python3
"""Two worst cases of the gateway next to their normal-case baselines.

Usage: python3 load-tests/adversarial.py [--bin PATH] [--threads N]
                                         [--timeout S] [--only memory|stall]

Starts `sluice mock` and `sluice run` (the release binary
target/release/sluice, built with `cargo build --release --bin sluice` only
if it is missing; `--bin` picks another) on free loopback ports, with a
generated config: auth on, one catch-all route to the mock,
`limits.max_body_bytes: 17825792` (17 MiB) and a `token_limit` rule
(`max_output_tokens: 50`) so every body is parsed and its prompt counted.
`server.threads` is `--threads` (default 1, like load-tests/limits-local.yaml).

1. Memory under huge JSON bodies. For each shape a fresh gateway (so idle
   RSS is a true idle and no shape inherits the other's heap): VmRSS of the
   gateway process sampled every 20 ms by a thread for the whole run, then
   8 parallel POST /v1/chat/completions of 16 MiB each:
   - adversarial: {"model":..,"messages":[{"role":"user","content":"hi"}],
     "pad":[0,0,0,...]} (a JSON array of millions of numbers),
   - normal: one user message of 16 MiB of English-like words.
   Prints idle RSS, peak RSS (sampled, and the kernel's VmHWM), peak - idle,
   (peak - idle) / (8 x 16 MiB), RSS 1 s / 3 s / 10 s after the last answer,
   statuses and wall time.
2. Prompt counting stall. 4 parallel requests of one 15 MiB user message,
   "a" x 15 MiB (one pre-token piece) vs 15 MiB of English-like words, while
   a prober sends GET /healthz every 50 ms on a fresh connection. Prints
   the wall time, statuses, /healthz max / p99 / p50 latency and probe
   count (plus an unloaded probe baseline). Then the same on a second
   gateway whose rule also has `max_input_tokens: 1000`: the requests are
   over budget (429), and the wall time shows whether counting stops early.
   The mock counts prompt tokens too (for its usage), so the wall time of
   admitted requests includes the mock's count; the "gateway request stage"
   column (mean of sluice_gateway_overhead_seconds{stage="request"} over the
   burst, from /metrics) is the gateway's own share.

Every client sends its body with Content-Length and reads the whole answer.
Output: Markdown tables for load-tests/RESULTS.md, with the command line.
Exits non-zero when a process does not start. Standard library only.
"""
import argparse
import collections
import datetime
import http.client
import math
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

MiB = 1024 * 1024
KEY = "sk-adversarial"
METRICS_TOKEN = "sk-adversarial-metrics"
MEM_PARALLEL = 8
MEM_BODY = 16 * MiB
STALL_PARALLEL = 4
STALL_CONTENT = 15 * MiB
PROBE_EVERY = 0.050
SAMPLE_EVERY = 0.020
AFTER = (1, 3, 10)  # RSS samples, seconds after the last answer
READY_TIMEOUT = 30.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORDS = (
    "the of and to in is was that for on with as by at from his her they "
    "which this be are have had not but one all were we when your can said "
    "there use an each how their if will up other about out many then them "
    "these so some would make like him into time has look two more write go "
    "see number no way could people my than first water been call who oil "
    "its now find long down day did get come made may part over new sound "
    "take only little work know place year live me back give most very after "
    "thing our just name good sentence man think say great where help through "
    "much before line right too mean old any same tell boy follow came want "
    "show also around form three small set put end does another well large "
    "must big even such because turn here why ask went men read need land "
    "different home us move try kind hand picture again change off play spell "
    "air away animal house point page letter mother answer found study still "
    "learn should America world high every near add food between own below "
    "country plant last school father keep tree never start city earth eye "
    "light thought head under story saw left don't few while along might close "
    "something seem next hard open example begin life always those both paper "
    "together got group often run important until children side feet car mile "
    "night walk white sea began grow took river four carry state once book hear "
    "stop without second later miss idea enough eat face watch far Indian real "
    "almost let above girl sometimes mountain cut young talk soon list song "
    "being leave family it's"
).split()


# ---------------------------------------------------------------- helpers

def log(msg):
    print(f"[adversarial {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def ms(s):
    return f"{s * 1000:.1f} ms"


def secs(s):
    return f"{s:.2f} s"


def nearest_rank(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, math.ceil(q * len(xs)) - 1))]


def statuses(results):
    c = collections.Counter(str(r[0]) for r in results)
    return ", ".join(f"{k} × {v}" for k, v in sorted(c.items()))


def text_of(n, seed):
    """n bytes (ASCII) of English-like words separated by spaces."""
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n:
        # sentences of 6-20 words; capitalised first word, a full stop at the end
        words = rng.choices(WORDS, k=rng.randint(6, 20))
        s = " ".join(words).capitalize() + ". "
        parts.append(s)
        size += len(s)
    return "".join(parts)[:n]


def chat_body(content, total=None, extra=b""):
    head = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"'
    tail = b'"}]' + extra + b"}"
    body = head + content + tail
    if total is not None:
        assert len(body) == total, (len(body), total)
    return body


def pad_body(total):
    """The adversarial shape: a tiny prompt and a huge array of zeros."""
    head = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"pad":['
    tail = b"]}"
    room = total - len(head) - len(tail)      # "0" + ",0" * k (+ one space if odd)
    k = (room - 1) // 2
    sp = b" " * (room - 1 - 2 * k)
    body = head + sp + b"0" + b",0" * k + tail
    assert len(body) == total
    return body


def normal_body(total, seed):
    head = len(chat_body(b""))
    return chat_body(text_of(total - head, seed).encode(), total)


# ---------------------------------------------------------------- processes

class Procs:
    """Child processes, all killed in `close` (called from a finally)."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.children = []

    def start(self, name, argv):
        out = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        p.log_path = out.name
        p.name = name
        self.children.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in reversed(self.children):
            try:
                self.stop(p)
            except Exception:  # noqa: BLE001 - best effort on exit
                pass


def fail(msg, proc=None):
    log(msg)
    if proc is not None:
        try:
            with open(proc.log_path, "rb") as f:
                tail = f.read()[-3000:].decode(errors="replace")
            log(f"last output of {proc.name}:\n{tail}")
        except OSError:
            pass
    raise SystemExit(1)


def wait_ready(proc, port, path):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"{proc.name} exited with {proc.returncode} before answering {path}", proc)
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)  # poll interval, not a synchronisation sleep
    fail(f"{proc.name} did not answer 200 on {path} within {READY_TIMEOUT:.0f} s", proc)


def config(port, mock_port, threads, max_input=None):
    rule = "{max_output_tokens: 50" + (f", max_input_tokens: {max_input}" if max_input else "") + "}"
    return f"""# generated by load-tests/adversarial.py
server: {{threads: {threads}}}
listen: {{proxy: "127.0.0.1:{port}"}}
limits: {{max_body_bytes: 17825792}}
auth:
  enabled: true
  keys:
    - {{name: adversarial, key: {KEY}}}
metrics: {{token: {METRICS_TOKEN}}}
default_namespace: default
namespaces:
  - {{namespace_code: default}}
upstream_servers:
  - {{server_name: mock, pool: p, server_address: 127.0.0.1, server_port: {mock_port}}}
routes:
  - {{prefix: /, upstream: p}}
rules:
  - rule_name: adversarial-tokens
    rule_type: token_limit
    priority: 10
    rule_config: {rule}
counters: {{store: local}}
"""


class Gateway:
    def __init__(self, procs, binary, mock_port, threads, name, max_input=None):
        self.port = free_port()
        d = tempfile.mkdtemp(prefix=name + "-", dir=procs.tmp)
        self.conf = os.path.join(d, "sluice.yaml")
        with open(self.conf, "w") as f:
            f.write(config(self.port, mock_port, threads, max_input))
        chk = subprocess.run([binary, "check", "-c", self.conf], capture_output=True, text=True)
        if chk.returncode != 0:
            fail(f"`sluice check` rejected the generated config {self.conf}:\n{chk.stdout}{chk.stderr}")
        self.proc = procs.start(name, [binary, "run", "-c", self.conf])
        self.procs = procs
        wait_ready(self.proc, self.port, "/healthz")
        self.pid = self.proc.pid

    def overhead(self):
        """(sum, count) of sluice_gateway_overhead_seconds{stage="request"}."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer " + METRICS_TOKEN})
        r = c.getresponse()
        text = r.read().decode(errors="replace")
        c.close()
        got = {}
        for line in text.splitlines():
            for kind in ("sum", "count"):
                if line.startswith(f'sluice_gateway_overhead_seconds_{kind}{{stage="request"}}'):
                    got[kind] = float(line.split()[-1])
        return got.get("sum", 0.0), got.get("count", 0.0)

    def alive(self):
        if self.proc.poll() is not None:
            fail(f"{self.proc.name} exited with {self.proc.returncode} during the run", self.proc)

    def stop(self):
        self.procs.stop(self.proc)


# ---------------------------------------------------------------- measuring

class Sampler(threading.Thread):
    """VmRSS of one process every 20 ms; keeps the peak since `reset`."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.n = 0
        self.lock = threading.Lock()
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            v = rss_kib(self.pid)
            if v is not None:
                with self.lock:
                    self.peak = max(self.peak, v)
                    self.n += 1
            self.halt.wait(SAMPLE_EVERY)

    def reset(self):
        with self.lock:
            self.peak = rss_kib(self.pid) or 0
            self.n = 0

    def stop(self):
        self.halt.set()
        self.join()


class Prober(threading.Thread):
    """GET /healthz every 50 ms, each on a fresh connection; latencies in s."""

    def __init__(self, port, timeout):
        super().__init__(daemon=True)
        self.port, self.timeout = port, timeout
        self.lat, self.bad = [], []
        self.halt = threading.Event()

    def run(self):
        nxt = time.monotonic()
        while not self.halt.is_set():
            t0 = time.perf_counter()
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status != 200:
                    self.bad.append(r.status)
            except OSError as e:
                self.bad.append(type(e).__name__)
            self.lat.append(time.perf_counter() - t0)
            # next probe 50 ms after the previous start; right away after a stall (no catch-up burst)
            nxt = max(nxt + PROBE_EVERY, time.monotonic())
            self.halt.wait(nxt - time.monotonic())

    def stop(self):
        self.halt.set()
        self.join()


def post(port, body, timeout):
    """(status or error name, seconds, answer bytes, t_end) of one POST."""
    t0 = time.perf_counter()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        # bytes body: http.client sets Content-Length and sends it whole
        c.request("POST", "/v1/chat/completions", body=body, headers={
            "Content-Type": "application/json", "Authorization": "Bearer " + KEY})
        r = c.getresponse()
        data = r.read()
        c.close()
        status = r.status
    except (OSError, http.client.HTTPException) as e:
        status, data = type(e).__name__, b""
    t1 = time.perf_counter()
    return status, t1 - t0, len(data), t1


def burst(port, body, n, timeout):
    """n parallel POSTs of body; (results, wall seconds, t of last answer)."""
    results = [None] * n
    go = threading.Barrier(n + 1)

    def one(i):
        go.wait()
        results[i] = post(port, body, timeout)

    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    last = max(r[3] for r in results)
    return results, last - t0, last


# ---------------------------------------------------------------- parts

def part_memory(procs, binary, mock_port, args):
    log("part 1: building bodies")
    shapes = [
        ("normal: 1 message, 16 MiB of words", normal_body(MEM_BODY, 1)),
        ('adversarial: "hi" + `pad: [0,0,…]` (16 MiB)', pad_body(MEM_BODY)),
    ]
    rows = []
    for i, (label, body) in enumerate(shapes):
        gw = Gateway(procs, binary, mock_port, args.threads, f"gw-mem{i}")
        sampler = Sampler(gw.pid)
        sampler.start()
        try:
            time.sleep(0.5)  # measurement: let the fresh process settle before reading idle RSS
            idle = rss_kib(gw.pid)
            sampler.reset()
            log(f"part 1: {MEM_PARALLEL} × {len(body)} B, {label}")
            results, wall, last = burst(gw.port, body, MEM_PARALLEL, args.timeout)
            after = []
            for s in AFTER:
                time.sleep(max(0.0, last + s - time.perf_counter()))
                after.append(rss_kib(gw.pid))
            gw.alive()
            peak, hwm = sampler.peak, rss_kib(gw.pid, "VmHWM")
        finally:
            sampler.stop()
        gw.stop()
        grow = peak - idle
        rows.append([label, mib(idle), mib(peak), mib(hwm), mib(grow),
                     f"{grow * 1024 / (MEM_PARALLEL * MEM_BODY):.2f}",
                     *[mib(a) for a in after], statuses(results), secs(wall)])
        log(f"  -> {rows[-1]}")
    head = ["shape", "idle RSS", "peak RSS (20 ms samples)", "VmHWM", "peak − idle",
            f"(peak − idle) / ({MEM_PARALLEL} × 16 MiB)",
            *[f"RSS +{s} s" for s in AFTER], "statuses", "wall"]
    return table(head, rows)


def stall_rows(gw, shapes, args, with_idle):
    rows = []
    sampler = Sampler(gw.pid)
    sampler.start()
    try:
        if with_idle:
            p = Prober(gw.port, args.timeout)
            p.start()
            time.sleep(2.0)  # measurement window of the unloaded baseline
            p.stop()
            rows.append(["(no load: probes only, 2 s)", "", "", "", ms(max(p.lat)),
                         ms(nearest_rank(p.lat, 0.99)), ms(nearest_rank(p.lat, 0.50)),
                         str(len(p.lat)), mib(sampler.peak)])
        for label, body in shapes:
            log(f"part 2: {STALL_PARALLEL} × {len(body)} B, {label} (port {gw.port})")
            sampler.reset()
            s0, n0 = gw.overhead()
            p = Prober(gw.port, args.timeout)
            p.start()
            results, wall, _ = burst(gw.port, body, STALL_PARALLEL, args.timeout)
            p.stop()
            gw.alive()
            s1, n1 = gw.overhead()
            stage = secs((s1 - s0) / (n1 - n0)) if n1 > n0 else "n/a"
            per = ", ".join(f"{r[1]:.2f}" for r in sorted(results, key=lambda r: r[1]))
            bad = f" ({len(p.bad)} failed: {collections.Counter(p.bad)})" if p.bad else ""
            rows.append([label, f"{secs(wall)} ({per})", stage, statuses(results), ms(max(p.lat)),
                         ms(nearest_rank(p.lat, 0.99)), ms(nearest_rank(p.lat, 0.50)),
                         f"{len(p.lat)}{bad}", mib(sampler.peak)])
            log(f"  -> {rows[-1]}")
    finally:
        sampler.stop()
    return rows


def part_stall(procs, binary, mock_port, args):
    log("part 2: building bodies")
    head_len = len(chat_body(b""))
    shapes = [
        ("normal: 15 MiB of words", chat_body(text_of(STALL_CONTENT, 2).encode(), head_len + STALL_CONTENT)),
        ('adversarial: "a" × 15 MiB', chat_body(b"a" * STALL_CONTENT, head_len + STALL_CONTENT)),
    ]
    gw = Gateway(procs, binary, mock_port, args.threads, "gw-stall")
    rows = [[f"**`max_output_tokens: 50`** (prompt counted, admitted)"] + [""] * 8]
    rows += stall_rows(gw, shapes, args, with_idle=True)
    gw.stop()
    gw = Gateway(procs, binary, mock_port, args.threads, "gw-budget", max_input=1000)
    rows.append([f"**+ `max_input_tokens: 1000`** (over budget)"] + [""] * 8)
    rows += stall_rows(gw, shapes, args, with_idle=False)
    gw.stop()
    head = ["shape", f"wall of {STALL_PARALLEL} (each, s)", "gateway request stage (mean)", "statuses", "/healthz max",
            "/healthz p99", "/healthz p50", "probes", "peak RSS"]
    return table(head, rows)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def ensure_binary(path):
    if os.path.exists(path):
        return
    if os.path.abspath(path) != os.path.join(REPO, "target", "release", "sluice"):
        fail(f"--bin {path} does not exist")
    log("target/release/sluice is missing: cargo build --release --bin sluice (can take ~10 min)")
    r = subprocess.run(["cargo", "build", "--release", "--bin", "sluice"], cwd=REPO)
    if r.returncode != 0 or not os.path.exists(path):
        fail("cargo build --release failed")


def describe(binary):
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        rev, dirty = "?", ""
    built = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    return f"commit `{rev}`{' + uncommitted changes' if dirty else ''}, binary built {built}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "sluice"),
                    help="sluice binary (default target/release/sluice, built if missing)")
    ap.add_argument("--threads", type=int, default=1, help="gateway server.threads (default 1)")
    ap.add_argument("--timeout", type=float, default=900.0, help="per-request socket timeout, s")
    ap.add_argument("--only", choices=["memory", "stall"], help="run one part only")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    ensure_binary(binary)

    # SIGTERM/SIGHUP -> SystemExit, so the finally below kills the children.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))

    cmd = "python3 load-tests/adversarial.py" + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))
    tmp = tempfile.mkdtemp(prefix="sluice-adversarial-")
    procs = Procs(tmp)
    out = []
    ok = False
    try:
        mock_port = free_port()
        mock = procs.start("mock", [binary, "mock", "--listen", f"127.0.0.1:{mock_port}"])
        wait_ready(mock, mock_port, "/health")
        if args.only in (None, "memory"):
            out.append(f"### Memory under huge JSON bodies ({MEM_PARALLEL} parallel × 16 MiB, "
                       f"fresh gateway per shape)\n\n" + part_memory(procs, binary, mock_port, args))
        if args.only in (None, "stall"):
            out.append(f"### Prompt counting stall ({STALL_PARALLEL} parallel × 15 MiB prompt, "
                       f"GET /healthz every 50 ms on a fresh connection)\n\n"
                       + part_stall(procs, binary, mock_port, args))
        ok = True
    finally:
        procs.close()
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"configs and process logs kept in {tmp}")
    print(f"Command: `{cmd}`  ")
    print(f"Gateway: {describe(binary)}; `server.threads: {args.threads}`, "
          f"`max_body_bytes: 17825792`, token_limit `max_output_tokens: 50`; "
          f"{os.cpu_count()} CPUs; {datetime.date.today()}\n")
    print("\n\n".join(out))


if __name__ == "__main__":
    main()
