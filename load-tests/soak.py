#!/usr/bin/env python3
"""Soak test: steady mixed load with live config changes; RSS and FDs over time.

Usage: python3 load-tests/soak.py [--duration S (600)] [--bin PATH] [--clients N (8)]

Starts `sluice mock` and `sluice run` (target/release/sluice, built only if
missing) on free ports: `server.threads: 2`, proxy + admin listener, auth,
a catch-all route to the mock, a concurrency rule (4 x N per key) and a
token_limit rule (`max_output_tokens: 32`), local counters. N threads send
chat (keep-alive, some answers cut at the cap), streams (fresh connection,
must end with `data: [DONE]`), streams aborted after the first chunk (by
design, not failures) and embeddings; a keep-alive connection found closed
before any response byte is retried once (counted apart). An admin change
every ~5 s (matchers and rules created/deleted/updated; nothing binds);
VmRSS and FDs of the gateway every 10 s. Prints Markdown for RESULTS.md and
a verdict (no failures; RSS slope and max-min after warm-up: 60 s, or 20 %
of short runs; FDs). Exits 1 when a process does not start, the gateway
dies or a request failed. Standard library only.
"""
import argparse
import collections
import datetime
import http.client
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

KEY = "sk-soak"
ADMIN_TOKEN = "soak-admin"
READY_TIMEOUT = 30.0
SAMPLE_EVERY = 10.0
ADMIN_EVERY = 5.0
TIMEOUT = 30.0
CAP = 32  # max_output_tokens of the token rule
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ("chat", "stream", "stream aborted by design", "embeddings")


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_fds(pid):
    """(VmRSS in KiB, open FDs) of a process, None when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None, None


class Procs:
    """Child processes, all killed in `close` (called from a finally)."""

    def __init__(self, tmp):
        self.tmp, self.children = tmp, []

    def start(self, name, argv):
        out = open(os.path.join(self.tmp, f"{name}.log"), "wb")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        p.log_path, p.name = out.name, name
        self.children.append(p)
        return p

    def close(self):
        for p in reversed(self.children):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def fail(msg, proc=None):
    log(msg)
    if proc is not None and os.path.exists(proc.log_path):
        with open(proc.log_path, "rb") as f:
            log(f"last output of {proc.name}:\n{f.read()[-3000:].decode(errors='replace')}")
    raise SystemExit(1)


def http_call(port, method, path, doc=None, token=None, timeout=TIMEOUT):
    """(status, body bytes) on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json", **({"Authorization": "Bearer " + token} if token else {})}
        c.request(method, path, body=None if doc is None else json.dumps(doc).encode(), headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_ready(proc, port, path):
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"{proc.name} exited with {proc.returncode} before answering {path}", proc)
        try:
            if http_call(port, "GET", path, timeout=2)[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)  # poll interval, not a synchronisation sleep
    fail(f"{proc.name} did not answer 200 on {path} within {READY_TIMEOUT:.0f} s", proc)


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def ensure_binary(path):
    if os.path.exists(path):
        return
    if os.path.abspath(path) != os.path.join(REPO, "target", "release", "sluice"):
        fail(f"--bin {path} does not exist")
    log("target/release/sluice is missing: cargo build --release --bin sluice (can take ~10 min)")
    if subprocess.run(["cargo", "build", "--release", "--bin", "sluice"], cwd=REPO).returncode or \
            not os.path.exists(path):
        fail("cargo build --release failed")


def describe(binary):
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    built = datetime.datetime.fromtimestamp(os.path.getmtime(binary)).strftime("%Y-%m-%d %H:%M")
    return f"commit `{rev}`{' + uncommitted changes' if dirty else ''}, binary built {built}"


def config(port, admin_port, mock_port, clients):
    return f"""# generated by load-tests/soak.py
server: {{threads: 2}}
listen: {{proxy: "127.0.0.1:{port}", admin: "127.0.0.1:{admin_port}"}}
auth: {{enabled: true, keys: [{{name: soak, key: {KEY}}}]}}
admin: {{tokens: [{ADMIN_TOKEN}]}}
default_namespace: default
namespaces: [{{namespace_code: default}}]
upstream_servers:
  - {{server_name: mock, pool: p, server_address: 127.0.0.1, server_port: {mock_port}, health_check_url: /health}}
routes: [{{prefix: /, upstream: p}}]
rules:
  - {{rule_name: soak-concurrency, rule_type: concurrency, priority: 10,
     rule_config: {{max_concurrent: {4 * clients}, key_by: api_key}}}}
  - {{rule_name: soak-tokens, rule_type: token_limit, priority: 20, rule_config: {{max_output_tokens: {CAP}}}}}
counters: {{store: local}}
"""


class Stats:
    def __init__(self):
        self.lock, self.ok, self.examples = threading.Lock(), collections.Counter(), []
        self.bad = collections.defaultdict(collections.Counter)  # kind -> cause -> n
        self.retries = self.cut = 0  # cut: answers cut at the token cap (finish_reason "length")

    def record(self, kind, cause=None, detail=b"", cut=False):
        with self.lock:
            self.cut += cut
            if cause is None:
                self.ok[kind] += 1
            else:
                self.bad[kind][cause] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{time.strftime('%H:%M:%S')} {kind}: {cause} {detail}"[:400])

    def totals(self):
        """(requests, failures); a by-design abort that failed otherwise is not a failure."""
        with self.lock:
            bad = {k: sum(c.values()) for k, c in self.bad.items()}
            return sum(self.ok.values()) + sum(bad.values()), sum(bad.values()) - bad.get(KINDS[2], 0)


def body(rng, stream=False):
    words = " ".join(rng.choices(["soak", "gateway", "token", "limit", "stream", "hello"], k=rng.randint(3, 40)))
    b = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": words}]}
    return json.dumps(dict(b, stream=True) if stream else b).encode()


class Client(threading.Thread):
    def __init__(self, i, port, stats, stop):
        super().__init__(daemon=True)
        self.rng, self.port, self.stats, self.stop, self.conn = random.Random(i), port, stats, stop, None

    def headers(self, **extra):
        h = {"Content-Type": "application/json", "Authorization": "Bearer " + KEY}
        h.update({k.replace("_", "-"): str(v) for k, v in extra.items()})
        return h

    def drop(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def keepalive(self, path, data, headers):
        """(status, body) on the thread's keep-alive connection."""
        for attempt in (0, 1):
            fresh, r = self.conn is None, None
            if fresh:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            try:
                self.conn.request("POST", path, body=data, headers=headers)
                r = self.conn.getresponse()
                out = r.read()
                if r.will_close:
                    self.drop()
                return r.status, out
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.drop()
                if fresh or attempt or r is not None:  # only a reused connection, before any response byte
                    raise
                with self.stats.lock:
                    self.stats.retries += 1
            except BaseException:
                self.drop()
                raise

    def json_call(self, kind, path, data, headers, field):
        status, out = self.keepalive(path, data, headers)
        if status != 200:
            return self.stats.record(kind, f"HTTP {status}", out[:200])
        try:
            doc = json.loads(out)
            assert doc[field]
        except Exception:  # noqa: BLE001 - any malformed answer is a failure
            return self.stats.record(kind, "bad JSON answer", out[:200])
        self.stats.record(kind, cut=kind == "chat" and doc["choices"][0].get("finish_reason") == "length")

    def stream(self, abort):
        kind = "stream aborted by design" if abort else "stream"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            h = self.headers(x_mock_tokens=30, x_mock_chunk_ms=20) if abort else \
                self.headers(x_mock_tokens=self.rng.randint(5, 60), x_mock_chunk_ms=self.rng.choice([0, 2, 5]))
            c.request("POST", "/v1/chat/completions", body=body(self.rng, True), headers=h)
            sock = c.sock
            r = c.getresponse()
            if r.status != 200:
                return self.stats.record(kind, f"HTTP {r.status}", r.read()[:200])
            if abort:
                first = r.read1(65536)
                sock.shutdown(socket.SHUT_RDWR)  # leave mid-stream
                return self.stats.record(kind, None if first else "no first chunk")
            out = r.read()
            if not out.rstrip().endswith(b"data: [DONE]"):
                return self.stats.record(kind, "stream did not end with data: [DONE]", out[-200:])
            self.stats.record(kind, cut=b'"finish_reason":"length"' in out)
        finally:
            c.close()

    def run(self):
        while not self.stop.is_set():
            x = self.rng.random()
            kind = "chat" if x < 0.45 else "stream" if x < 0.70 else \
                "stream aborted by design" if x < 0.80 else "embeddings"
            try:
                if kind == "chat":
                    self.json_call(kind, "/v1/chat/completions", body(self.rng),
                                   self.headers(x_mock_tokens=self.rng.randint(5, 60)), "choices")
                elif kind == "embeddings":
                    self.json_call(kind, "/v1/embeddings",
                                   json.dumps({"model": "text-embedding-3-small", "input": "soak"}).encode(),
                                   self.headers(), "data")
                else:
                    self.stream(kind != "stream")
            except Exception as e:  # noqa: BLE001 - every client-side error is a failure
                self.stats.record(kind, type(e).__name__, str(e))
        self.drop()


class Admin(threading.Thread):
    """One config change every ADMIN_EVERY seconds, in a fixed cycle."""

    def __init__(self, port, clients, stop):
        super().__init__(daemon=True)
        self.port, self.clients, self.stop, self.n = port, clients, stop, 0
        self.ok, self.bad = collections.Counter(), collections.defaultdict(collections.Counter)

    def call(self, method, path, doc=None):
        return http_call(self.port, method, path, doc, ADMIN_TOKEN)

    def setup(self):
        _, out = self.call("GET", "/api/v1/namespaces")
        self.ns = next(n["id"] for n in json.loads(out) if n["namespace_code"] == "default")
        _, out = self.call("GET", "/api/v1/rules")
        ids = {r["rule_name"]: r["rule_id"] for r in json.loads(out)}
        self.conc, self.tok = ids["soak-concurrency"], ids["soak-tokens"]

    def ops(self):
        n, big = self.n, 4 * self.clients + (8 if self.n % 2 else 0)
        yield "create matcher", "POST", f"/api/v1/namespaces/{self.ns}/matchers", {
            "matcher_name": f"soak-m{n}", "matcher_type": "header", "priority": 100, "is_active": 1,
            "matcher_config": {"match_field": "x-soak-never", "match_operator": "eq",
                               "match_value": "1", "action": "deny"}}, "matcher_id"
        yield "update concurrency limit", "PUT", f"/api/v1/rules/{self.conc}", {
            "rule_config": {"max_concurrent": big, "key_by": "api_key"}}, None
        yield "delete matcher", "DELETE", "/api/v1/matchers/{id}", None, None
        yield "create rate rule", "POST", f"/api/v1/namespaces/{self.ns}/rules", {
            "rule_name": f"soak-r{n}", "rule_type": "rate_limit", "priority": 30, "status": 1,
            "rule_config": {"max_requests": 100000000, "time_window_seconds": 60}}, "rule_id"
        yield "update token cap", "PUT", f"/api/v1/rules/{self.tok}", {
            "rule_config": {"max_output_tokens": CAP + (8 if self.n % 2 else 0)}}, None
        yield "delete rate rule", "DELETE", "/api/v1/rules/{id}", None, None

    def run(self):
        made = None  # id of the matcher / rule the previous op created
        while True:
            for label, method, path, doc, idfield in self.ops():
                if self.stop.wait(ADMIN_EVERY):
                    return
                if "{id}" in path:
                    if made is None:
                        continue
                    path, made = path.format(id=made), None
                try:
                    status, out = self.call(method, path, doc)
                except (OSError, http.client.HTTPException) as e:
                    status, out = type(e).__name__, b""
                if status == 200:
                    self.ok[label] += 1
                    if idfield:
                        made = json.loads(out)[idfield]
                else:
                    self.bad[label][f"{status} {out[:120].decode(errors='replace')}"] += 1
            self.n += 1


def slope_per_min(points):
    """Least-squares slope of (seconds, value) points, per minute."""
    return 60 * statistics.linear_regression(*zip(*points)).slope if len(points) >= 2 else 0.0


def causes(counter):
    return "; ".join(f"{k} × {v}" for k, v in counter.most_common()) or "—"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "sluice"),
                    help="sluice binary (default target/release/sluice, built if missing)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    ensure_binary(binary)
    built = describe(binary)  # now: the binary may be rebuilt while the test runs
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))

    cmd = "python3 load-tests/soak.py" + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))
    tmp = tempfile.mkdtemp(prefix="sluice-soak-")
    procs, stop, stats, samples, ok = Procs(tmp), threading.Event(), Stats(), [], False
    try:
        mock_port, port, admin_port = free_port(), free_port(), free_port()
        mock = procs.start("mock", [binary, "mock", "--listen", f"127.0.0.1:{mock_port}"])
        wait_ready(mock, mock_port, "/health")
        conf = os.path.join(tmp, "sluice.yaml")
        with open(conf, "w") as f:
            f.write(config(port, admin_port, mock_port, args.clients))
        chk = subprocess.run([binary, "check", "-c", conf], capture_output=True, text=True)
        if chk.returncode != 0:
            fail(f"`sluice check` rejected the generated config {conf}:\n{chk.stdout}{chk.stderr}")
        gw = procs.start("gateway", [binary, "run", "-c", conf])
        wait_ready(gw, port, "/healthz")
        wait_ready(gw, admin_port, "/health")
        admin = Admin(admin_port, args.clients, stop)
        admin.setup()
        log(f"gateway pid {gw.pid} on :{port} (admin :{admin_port}), mock :{mock_port}; "
            f"{args.clients} clients for {args.duration:.0f} s")
        clients = [Client(i, port, stats, stop) for i in range(args.clients)]
        t0 = time.monotonic()
        for t in clients + [admin]:
            t.start()
        nxt = 0.0
        while True:
            if gw.poll() is not None:
                fail(f"gateway exited with {gw.returncode} during the run", gw)
            now = time.monotonic() - t0
            if now >= nxt or now >= args.duration:
                n, bad = stats.totals()
                samples.append((round(now), *rss_fds(gw.pid), n, bad))
                log(f"t={now:.0f}s rss={samples[-1][1]} KiB fds={samples[-1][2]} requests={n} failures={bad}")
                nxt += SAMPLE_EVERY
                if now >= args.duration:
                    break
            time.sleep(min(1.0, max(0.0, min(nxt, args.duration) - now)))  # wait for the next sample
        stop.set()
        for t in clients + [admin]:
            t.join(TIMEOUT + ADMIN_EVERY)
        wall = time.monotonic() - t0
        alive = gw.poll() is None
        with open(gw.log_path, "rb") as f:
            glog = f.read().decode(errors="replace").splitlines()
        errors = collections.Counter(re.sub(r"\d+(\.\d+){3}:\d+", "ADDR", l.split("] ", 1)[-1])[:160]
                                     for l in glog if " ERROR " in l or "panicked" in l)
        ok = True
    finally:
        stop.set()
        procs.close()
        if ok and stats.totals()[1] == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"config and process logs kept in {tmp}")

    warm = 60.0 if args.duration >= 300 else 0.2 * args.duration
    after = [s for s in samples if s[0] >= warm and s[1] is not None]
    rss, fds = [(s[0], s[1] / 1024) for s in after], [(s[0], s[2]) for s in after]
    rss_slope, fd_slope = slope_per_min(rss), slope_per_min(fds)
    rss_span = max(v for _, v in rss) - min(v for _, v in rss) if rss else 0.0
    fd_span = max(v for _, v in fds) - min(v for _, v in fds) if fds else 0
    total, failed = stats.totals()

    print(f"Command: `{cmd}`  ")
    print(f"Gateway: {built}; `server.threads: 2`, {args.clients} client threads, "
          f"concurrency rule {4 * args.clients} per key, token_limit `max_output_tokens: {CAP}`, "
          f"local counters, an admin change every {ADMIN_EVERY:.0f} s; {os.cpu_count()} CPUs; "
          f"{datetime.date.today()}\n")
    print("### Samples\n")
    print(table(["t (s)", "RSS (MiB)", "FDs", "requests so far", "failures so far"],
                [(t, "n/a" if r is None else f"{r / 1024:.1f}", fd, n, b) for t, r, fd, n, b in samples]))
    print(f"\n### Requests ({total} in {wall:.0f} s, {total / wall:.0f}/s)\n")
    rows = [(k, stats.ok[k], sum(stats.bad[k].values()), causes(stats.bad[k])) for k in KINDS]
    rows += [("keep-alive found closed when sending: retried on a fresh connection", stats.retries, "", "not failures"),
             ("answers cut at the token cap (`finish_reason: length`)", stats.cut, "", "included in ok")]
    print(table(["kind", "ok", "failed", "failures by cause"], rows))
    print("\n### Admin config changes\n")
    labels = sorted(set(admin.ok) | set(admin.bad))
    print(table(["change", "applied", "failed", "failures"],
                [(k, admin.ok[k], sum(admin.bad[k].values()), causes(admin.bad[k])) for k in labels]))
    if stats.examples:
        print("\nFirst failures:\n\n" + "\n".join(f"- `{e}`" for e in stats.examples))
    rss_flat, fd_flat = rss_span <= 8 or abs(rss_slope) <= 0.5, fd_span <= 2 * args.clients + 4
    print("\n### Verdict\n")
    print(f"- failed requests (aborts by design excluded): **{failed}** → {'PASS' if failed == 0 else 'FAIL'}")
    print(f"- RSS after warm-up (t ≥ {warm:.0f} s, {len(rss)} samples): slope {rss_slope:+.2f} MiB/min, "
          f"max − min {rss_span:.1f} MiB → {'flat' if rss_flat else 'GROWING'} "
          f"(flat: max − min ≤ 8 MiB or |slope| ≤ 0.5 MiB/min)")
    print(f"- FDs after warm-up: slope {fd_slope:+.1f}/min, max − min {fd_span} → "
          f"{'flat' if fd_flat else 'GROWING'} (flat: max − min ≤ 2 × clients + 4)")
    print(f"- admin changes: {sum(admin.ok.values())} applied, {sum(sum(c.values()) for c in admin.bad.values())} failed")
    print(f"- gateway {'alive' if alive else 'DEAD'} at the end; its log: {len(glog)} lines, "
          f"{sum(errors.values())} ERROR/panic" + ("; most frequent:" if errors else ""))
    for line, n in errors.most_common(4):
        print(f"  - {n} × `{line}`")
    if failed or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
