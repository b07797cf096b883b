#!/usr/bin/env python3
"""Chaos test: steady load while the upstream, Redis and MySQL are killed and restarted.

Usage: python3 load-tests/chaos.py [--bin PATH] [--phase-seconds S (8)] [--keep]

Private instances on free loopback ports (never the system ones): redis-server
(no persistence), MariaDB (mariadb-install-db into a temp dir + mariadbd),
`sluice mock`, and `sluice run` (release binary, built only if missing) with
counters in that Redis, the config store in that MySQL (its bus in the same
Redis), a concurrency and a token_limit rule (default fail_mode: open; never
binding). 4 client threads (chat on keep-alive connections, 200 ms streams on
fresh ones) through phases of S seconds: baseline; upstream down (mock
kill -9); Redis down (kill -9); MySQL down (kill -9); final baseline. After
each restart (same port) a recovery phase lasts until the gateway's /health
is 200 "healthy" (at most 60 s). Admin writes (create a matcher) before,
during and after the MySQL outage: the one during must answer 503 and be
neither in MySQL nor in the admin API afterwards. A request counts in a
fault/recovery phase when it started or ended in one. Prints Markdown for
RESULTS.md: per phase outcomes, latency, counter-store errors, both /health
answers; the admin writes; leases left in Redis; gateway log errors; a
verdict. Exits 1 when a process does not start, a baseline phase had
failures or the gateway died. --keep keeps the temp dir. Standard library only.
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
import subprocess
import sys
import tempfile
import threading
import time
import types

KEY = "sk-chaos"
ADMIN_TOKEN = "chaos-admin"
METRICS_TOKEN = "chaos-metrics"
DB = "sluice_chaos"
CLIENTS = 4
READY_TIMEOUT = 30.0
RECOVER_TIMEOUT = 60.0
TIMEOUT = 20.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UPSTREAM_DOWN = {"HTTP 502", "HTTP 503", "IncompleteRead", "stream cut (no data: [DONE])"}
PHASES = [("baseline", None), ("upstream down", "mock"), ("Redis down", "redis"),
          ("MySQL down", "mysql"), ("final baseline", None)]


def log(msg):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Procs:
    """Child processes, all killed in `close` (called from a finally)."""

    def __init__(self, tmp):
        self.tmp, self.children = tmp, []

    def start(self, name, argv):
        out = open(os.path.join(self.tmp, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        p.log_path, p.name = out.name, name
        self.children.append(p)
        return p

    def close(self):
        for p in sorted(reversed(self.children), key=lambda p: p.name != "gateway"):  # the gateway first
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def fail(msg, proc=None):
    log(msg)
    if proc is not None and os.path.exists(proc.log_path):
        with open(proc.log_path, "rb") as f:
            log(f"last output of {proc.name}:\n{f.read()[-3000:].decode(errors='replace')}")
    raise SystemExit(1)


def wait_until(proc, what, check, timeout=READY_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"{proc.name} exited with {proc.returncode} before {what}", proc)
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)  # poll interval, not a synchronisation sleep
    fail(f"{proc.name}: no {what} within {timeout:.0f} s", proc)


def http_call(port, method, path, doc=None, token=None, timeout=5.0):
    """(status, body bytes) on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json", **({"Authorization": "Bearer " + token} if token else {})}
        c.request(method, path, body=None if doc is None else json.dumps(doc).encode(), headers=h)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


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


def which(*names):
    for n in names:
        p = shutil.which(n) or next((d + n for d in ("/usr/sbin/", "/usr/bin/") if os.path.exists(d + n)), None)
        if p:
            return p
    fail(f"none of {names} found on this machine")


class Deps:
    """The mock, Redis and MariaDB: start, kill -9, restart on the same port."""

    def __init__(self, procs, binary, tmp):
        self.procs, self.proc, self.gen = procs, {}, collections.Counter()
        self.mock_port, self.redis_port, self.db_port = free_port(), free_port(), free_port()
        self.mysql = [which("mariadb", "mysql"), "--no-defaults", "-h127.0.0.1", f"-P{self.db_port}", "-uroot"]
        self.rcli = [which("redis-cli"), "-h", "127.0.0.1", "-p", str(self.redis_port)]
        datadir = os.path.join(tmp, "db")
        r = subprocess.run([which("mariadb-install-db", "mysql_install_db"), "--no-defaults", "--user=root",
                            f"--datadir={datadir}", "--auth-root-authentication-method=normal",
                            "--skip-test-db"], capture_output=True, text=True)
        if r.returncode:
            fail(f"mariadb-install-db failed:\n{r.stdout}{r.stderr}")
        self.argv = {
            "mock": [binary, "mock", "--listen", f"127.0.0.1:{self.mock_port}"],
            "redis": [which("redis-server"), "--port", str(self.redis_port), "--bind", "127.0.0.1",
                      "--save", "", "--appendonly", "no", "--dir", tmp],
            "mysql": [which("mariadbd", "mysqld"), "--no-defaults", "--user=root", f"--datadir={datadir}",
                      f"--port={self.db_port}", "--bind-address=127.0.0.1", "--skip-log-bin",
                      f"--socket={tmp}/mysql.sock", f"--pid-file={tmp}/mysql.pid"],
        }

    def ready(self, name):
        if name == "mock":
            return http_call(self.mock_port, "GET", "/health", timeout=1)[0] == 200
        if name == "redis":
            return self.redis("PING") == "PONG"
        return subprocess.run(self.mysql + ["-e", "SELECT 1"], capture_output=True).returncode == 0

    def start(self, name):
        self.gen[name] += 1
        self.proc[name] = p = self.procs.start(f"{name}-{self.gen[name]}", self.argv[name])
        wait_until(p, "accepting connections", lambda: self.ready(name))

    def kill(self, name):
        self.proc[name].kill()  # SIGKILL
        self.proc[name].wait()

    def redis(self, *args):
        return subprocess.run(self.rcli + list(args), capture_output=True, text=True).stdout.strip()

    def sql(self, query):
        r = subprocess.run(self.mysql + ["-N", "-B", "-e", query], capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else f"ERROR {r.stderr.strip()}"


def config(port, admin_port, d):
    return f"""# generated by load-tests/chaos.py
server: {{threads: 2}}
listen: {{proxy: "127.0.0.1:{port}", admin: "127.0.0.1:{admin_port}"}}
auth: {{enabled: true, keys: [{{name: chaos, key: {KEY}}}]}}
admin: {{tokens: [{ADMIN_TOKEN}]}}
metrics: {{token: {METRICS_TOKEN}}}
default_namespace: default
namespaces: [{{namespace_code: default}}]
upstream_servers:
  - {{server_name: mock, pool: p, server_address: 127.0.0.1, server_port: {d.mock_port}, health_check_url: /health}}
routes: [{{prefix: /, upstream: p}}]
rules:
  - {{rule_name: chaos-concurrency, rule_type: concurrency, priority: 10, rule_config: {{max_concurrent: 64, key_by: api_key}}}}
  - {{rule_name: chaos-tokens, rule_type: token_limit, priority: 20,
     rule_config: {{max_output_tokens: 32, time_window_enabled: true, time_window_minutes: 60,
                   max_tokens_per_window: 1000000000, key_by: api_key}}}}
counters: {{store: redis, redis_url: "redis://127.0.0.1:{d.redis_port}", key_prefix: "chaos:"}}
config_store: {{kind: mysql, mysql_url: "mysql://root@127.0.0.1:{d.db_port}/{DB}",
               redis_url: "redis://127.0.0.1:{d.redis_port}/0", key_prefix: "chaos:config:"}}
"""


class Load:
    def __init__(self, port):
        self.port, self.phases, self.lock, self.stop = port, [], threading.Lock(), threading.Event()

    def enter(self, name, expected):
        """A new phase; expected: the failure causes it allows (None: a baseline, none)."""
        p = types.SimpleNamespace(name=name, expected=expected, out=collections.Counter(), lat=[], health=[],
                                  notes=[], examples={}, seconds=0.0, counter_errors=0.0)
        with self.lock:
            self.phases.append(p)
        return p

    def record(self, i0, cause, lat, detail):
        with self.lock:
            i1 = len(self.phases) - 1
            faults = [x for x in (self.phases[i0], self.phases[i1]) if x.expected is not None]
            p = next((x for x in faults if cause in x.expected), faults[-1] if faults else self.phases[i1])
            p.out[cause] += 1
            if cause != "200":
                p.examples.setdefault(cause, detail)
            p.lat.append(lat)

    def client(self, n):
        """Chat on a keep-alive connection (40 %: a stream on a fresh one) until stopped."""
        rng, conn, retry = random.Random(n), None, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
        while not self.stop.is_set():
            stream = rng.random() < 0.4
            body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"chaos {rng.random()}"}]}
            hdr = {"Content-Type": "application/json", "Authorization": "Bearer " + KEY}
            if stream:
                body["stream"], hdr["x-mock-tokens"], hdr["x-mock-chunk-ms"] = True, "20", "10"
            i0, t0, data, r = len(self.phases) - 1, time.monotonic(), b"", None
            try:
                for attempt in (0, 1):
                    fresh, r = stream or conn is None, None
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT) if fresh else conn
                    try:
                        conn.request("POST", "/v1/chat/completions", body=json.dumps(body).encode(), headers=hdr)
                        r = conn.getresponse()
                        data = r.read()
                        break
                    except Exception as e:
                        conn.close()
                        conn = None
                        # only a reused keep-alive connection found closed before any response byte is retried
                        if fresh or attempt or r is not None or not isinstance(e, retry):
                            raise
                if stream or r.will_close:
                    conn.close()
                    conn = None
                cause = f"HTTP {r.status}" if r.status != 200 else "200" if data.rstrip().endswith(
                    b"data: [DONE]" if stream else b"}") else "stream cut (no data: [DONE])" if stream else "bad JSON"
            except Exception as e:  # noqa: BLE001 - every client-side error is an outcome
                head = f" after HTTP {r.status} {r.getheader('content-type')}" if r is not None else ""
                # a stream cut after its 200 is an expected outage effect; a truncated error answer is not
                cause = type(e).__name__ + (f" after HTTP {r.status}" if r is not None and r.status != 200 else "")
                data = f"{e!r}{head}".encode()
            self.record(i0, cause, time.monotonic() - t0,
                        ("stream: " if stream else "chat: ") + data[-200:].decode(errors="replace"))


def health(port, admin_port):
    """What the gateway's /health and the admin /health say, one line each."""
    def get(p):
        try:
            st, b = http_call(p, "GET", "/health")
            return st, json.loads(b)
        except (OSError, http.client.HTTPException, ValueError) as e:
            return type(e).__name__, {}

    compact = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    (st, d), (ast, ad) = get(port), get(admin_port)
    try:
        ups, cc = d["services"]["upstreams"], d["services"]["config_center"]
        pools = " ".join(f"{k}:{v['healthy_servers']}/{v['servers']}" for k, v in ups["pools"].items())
        proxy = f"{st} {d['status']} (upstreams {ups['status']} {pools}; config {cc['status']} {compact(cc['storage'])})"
    except KeyError:
        proxy = f"{st} {compact(d)[:200]}"
    return proxy, f"{ast} {ad.get('status')} {compact(ad.get('storage'))}"


def counter_errors(port):
    try:
        _, b = http_call(port, "GET", "/metrics", token=METRICS_TOKEN)
        return sum(float(l.split()[-1]) for l in b.decode().splitlines()
                   if l.startswith("sluice_counter_store_errors_total"))
    except (OSError, http.client.HTTPException, ValueError):
        return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.path.join(REPO, "target", "release", "sluice"),
                    help="sluice binary (default target/release/sluice, built if missing)")
    ap.add_argument("--phase-seconds", type=float, default=8.0, help="seconds per phase (default 8)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (configs, data, process logs)")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    ensure_binary(binary)
    built = describe(binary)  # now: the binary may be rebuilt while the test runs
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(1))

    cmd = "python3 load-tests/chaos.py" + ("" if len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:]))
    tmp = tempfile.mkdtemp(prefix="sluice-chaos-")
    procs, load, writes, leases, ok, alive = Procs(tmp), None, [], "n/a", False, False
    try:
        d = Deps(procs, binary, tmp)
        for name in ("redis", "mysql", "mock"):
            d.start(name)
        d.sql(f"CREATE DATABASE IF NOT EXISTS {DB}")
        port, admin_port = free_port(), free_port()
        conf = os.path.join(tmp, "sluice.yaml")
        with open(conf, "w") as f:
            f.write(config(port, admin_port, d))
        chk = subprocess.run([binary, "check", "-c", conf], capture_output=True, text=True)
        if chk.returncode != 0:
            fail(f"`sluice check` rejected the generated config {conf}:\n{chk.stdout}{chk.stderr}")
        gw = procs.start("gateway", [binary, "run", "-c", conf])
        wait_until(gw, "GET /healthz 200", lambda: http_call(port, "GET", "/healthz", timeout=1)[0] == 200)
        wait_until(gw, "admin GET /health 200", lambda: http_call(admin_port, "GET", "/health", timeout=1)[0] == 200)
        log(f"gateway pid {gw.pid} :{port} (admin :{admin_port}); mock :{d.mock_port}, "
            f"redis :{d.redis_port}, mariadb :{d.db_port}; {args.phase_seconds:.0f} s per phase")
        ns = next(n["id"] for n in json.loads(http_call(admin_port, "GET", "/api/v1/namespaces", token=ADMIN_TOKEN)[1])
                  if n["namespace_code"] == "default")

        def admin_write(label, when):
            doc = {"matcher_name": label, "matcher_type": "header", "priority": 100, "is_active": 1, "matcher_config": {
                "match_field": "x-chaos-never", "match_operator": "eq", "match_value": "1", "action": "deny"}}
            try:
                st, b = http_call(admin_port, "POST", f"/api/v1/namespaces/{ns}/matchers", doc, ADMIN_TOKEN, TIMEOUT)
                ans = f"{st} {b[:160].decode(errors='replace')}"
            except (OSError, http.client.HTTPException) as e:
                ans = type(e).__name__
            writes.append([label, when, ans])
            log(f"admin write {label} ({when}): {ans}")

        def run_phase(p, seconds, until=None):
            e0, t0 = counter_errors(port), time.monotonic()
            while True:
                if gw.poll() is not None:
                    fail(f"gateway exited with {gw.returncode} during {p.name}", gw)
                el = time.monotonic() - t0
                if not p.health and el >= seconds / 2:
                    p.health.append(health(port, admin_port))
                if el >= seconds or (until and until()):
                    break
                time.sleep(0.2)  # poll interval
            p.seconds, p.counter_errors = time.monotonic() - t0, counter_errors(port) - e0
            p.health.append(health(port, admin_port))
            log(f"{p.name}: {p.seconds:.1f} s {dict(p.out)} health {p.health[-1]}")

        def healthy():
            return health(port, admin_port)[0].startswith("200 healthy")

        load = Load(port)
        threads = [threading.Thread(target=load.client, args=(i,), daemon=True) for i in range(CLIENTS)]
        for name, fault in PHASES:
            expected = None if fault is None else UPSTREAM_DOWN if fault == "mock" else set()
            if fault == "mysql":
                admin_write("chaos-before", "before the outage")
            p = load.enter(name, expected)
            for t in threads if len(load.phases) == 1 else []:
                t.start()
            if fault:
                log(f"kill -9 {fault} (pid {d.proc[fault].pid})")
                d.kill(fault)
                if fault == "mysql":
                    time.sleep(1.0)  # let in-flight store calls see the outage first
                    admin_write("chaos-during", "MySQL down")
            run_phase(p, args.phase_seconds)
            if fault:
                d.start(fault)
                r = load.enter(f"recovery after {fault} restart", expected)
                run_phase(r, RECOVER_TIMEOUT, until=healthy)
                if not healthy():
                    r.notes.append(f"**not healthy {RECOVER_TIMEOUT:.0f} s after the restart**")
                if fault == "mysql":
                    admin_write("chaos-after", "after the restart")
        load.stop.set()
        for t in threads:
            t.join(TIMEOUT + 5)
        alive = gw.poll() is None
        listed = http_call(admin_port, "GET", "/api/v1/matchers", token=ADMIN_TOKEN)[1].decode(errors="replace")
        stored = d.sql(f"SELECT body FROM {DB}.sluice_matchers")
        for w in writes:
            w += ["yes" if f'"{w[0]}"' in listed else "no", "yes" if f'"{w[0]}"' in stored else "no"]
        leases = d.redis("EVAL", "local o = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                         "if redis.call('TYPE', k).ok == 'zset' then o[#o + 1] = k .. ': ' .. "
                         "redis.call('ZCARD', k) end end return o", "0", "chaos:*").replace("\n", ", ") or "none"
        with open(gw.log_path, "rb") as f:
            glog = f.read().decode(errors="replace").splitlines()
        ok = True
    finally:
        if load:
            load.stop.set()
        procs.close()
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"configs, data and process logs kept in {tmp}")

    print(f"Command: `{cmd}`  ")
    print(f"Gateway: {built}; `server.threads: 2`, {CLIENTS} client threads (60 % chat on keep-alive, "
          f"40 % 200 ms streams), counters in Redis, config store in MySQL (MariaDB) with its bus in the same "
          f"Redis; concurrency + token_limit rules, default fail_mode; {os.cpu_count()} CPUs; {datetime.date.today()}\n")
    rows, bad_baseline, unexpected = [], 0, 0
    for p in load.phases:
        wrong = {k: v for k, v in p.out.items() if k != "200" and (p.expected is None or k not in p.expected)}
        bad_baseline += sum(wrong.values()) if p.expected is None else 0
        unexpected += sum(wrong.values()) if p.expected is not None else 0
        lat = sorted(p.lat) or [0.0]
        verdict = "ok" if not wrong else ("**FAIL**" if p.expected is None else "**UNEXPECTED**")
        rows.append([p.name, f"{p.seconds:.1f}", sum(p.out.values()),
                     ", ".join(f"{k} × {v}" for k, v in p.out.most_common()),
                     f"{lat[len(lat) // 2] * 1000:.0f} / {lat[-1] * 1000:.0f} ms", f"{p.counter_errors:g}",
                     "<br>".join(h[0] for h in p.health), "<br>".join(h[1] for h in p.health),
                     " ".join([verdict] + p.notes)])
        if any(n.startswith("**not healthy") for n in p.notes):
            unexpected += 1
    print("### Phases\n")
    print(table(["phase", "s", "requests", "outcomes", "p50 / max", "counter-store errors",
                 "gateway /health (mid, end)", "admin /health (mid, end)", "verdict"], rows))
    print("\nFirst answer of each failure kind per phase:\n")
    print("\n".join(f"- {p.name}, {k}: `{v.strip()}`" for p in load.phases for k, v in p.examples.items()))
    print("\n### Admin writes around the MySQL outage\n")
    print(table(["matcher created", "when", "answer", "in admin API at the end", "in MySQL at the end"], writes))
    write_ok = [w[2][:3] for w in writes] == ["200", "503", "200"] and [w[3:] for w in writes] == \
        [["yes", "yes"], ["no", "no"], ["yes", "yes"]]
    errors = collections.Counter(re.sub(r"\d+(\.\d+){3}:\d+", "ADDR", l.split("] ", 1)[-1])[:160]
                                 for l in glog if " ERROR " in l or "panicked" in l)
    print(f"\nConcurrency leases (Redis zsets) left after the load stopped: {leases}  ")
    print(f"Gateway log: {len(glog)} lines, {sum(errors.values())} ERROR/panic" + ("; most frequent:" if errors else ""))
    for line, n in errors.most_common(4):
        print(f"- {n} × `{line}`")
    print("\n### Verdict\n")
    print(f"- baseline phases: {bad_baseline} failed requests → {'PASS' if bad_baseline == 0 else 'FAIL'}")
    print(f"- fault phases: {unexpected} failures of an unexpected kind (upstream down: 502/503/cut streams; "
          f"Redis and MySQL down: none) → {'as expected' if unexpected == 0 else 'UNEXPECTED'}")
    print(f"- admin writes before/during/after the MySQL outage: {'as expected (200, 503 and not stored, 200)' if write_ok else 'UNEXPECTED'}")
    print(f"- gateway {'alive' if alive else 'DEAD'} at the end")
    if bad_baseline or not alive:
        sys.exit(1)


if __name__ == "__main__":
    main()
