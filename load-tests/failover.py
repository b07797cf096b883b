#!/usr/bin/env python3
"""The Redis primary fails under load: two gateways count one rate rule
through Sentinel while threads of clients send chat completions to both;
the primary is killed mid-load, Sentinel promotes its replica, and the
load goes on until the limit is spent. Once per fail mode, each with a
fresh primary, replica and sentinel on loopback ports.

Usage: failover.py SLUICE_BIN [MODES]   (MODES: closed,open,local_share)
Env: THREADS (8), KILL_AT (3 s into the load), MAX_S (45), ALGORITHM
(the rule's: fixed_window, the default, or sliding_window), SPEND_AFTER
(seconds of traffic the limit leaves after the kill, 5; 1 puts the
outage at the end of the limit, where `local_share` must share out what
was left rather than the whole limit).

Prints per mode: the request rate before the kill, the window without a
primary (first to last answer that was neither 200 nor 429), what the
clients got in it, the requests admitted in all against the limit, and
the count the promoted replica holds. The limit is set from a short
calibration run so that it is spent a few seconds after the failover:
the run shows counting resume exactly (the new primary's count is the
limit; with `closed` nothing was admitted without being counted, so the
admitted requests are at most the limit, short of it by answers lost in
the switch: counted, answered 503).
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

THREADS = int(os.environ.get("THREADS", "8"))
KILL_AT = float(os.environ.get("KILL_AT", "3"))
MAX_S = float(os.environ.get("MAX_S", "45"))
ALGORITHM = os.environ.get("ALGORITHM", "fixed_window")
SPEND_AFTER = float(os.environ.get("SPEND_AFTER", "5"))
BODY = json.dumps({"model": "gpt-4o-mini",
                   "messages": [{"role": "user", "content": "count me once"}]})
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def until(what, check, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    sys.exit(f"failover: timed out waiting for {what}")


def listening(port):
    def check():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False
    until(f"port {port}", check)


def cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True)
    return out.stdout.strip()


class Trio:
    """A primary, its replica and one sentinel watching them as `main`."""

    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(dir=tmp)
        self.p, self.r, self.s = free_port(), free_port(), free_port()
        common = ["--save", "", "--appendonly", "no", "--dir", self.dir]
        self.primary = subprocess.Popen(["redis-server", "--port", str(self.p), *common],
                                        stdout=subprocess.DEVNULL)
        self.replica = subprocess.Popen(["redis-server", "--port", str(self.r), *common,
                                         "--replicaof", "127.0.0.1", str(self.p)],
                                        stdout=subprocess.DEVNULL)
        listening(self.p)
        listening(self.r)
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write(f"port {self.s}\nsentinel monitor main 127.0.0.1 {self.p} 1\n"
                    "sentinel down-after-milliseconds main 500\n"
                    "sentinel failover-timeout main 3000\n")
        self.sentinel = subprocess.Popen(["redis-server", conf, "--sentinel"],
                                         stdout=subprocess.DEVNULL)
        listening(self.s)
        until("the replica in sync",
              lambda: "master_link_status:up" in cli(self.r, "info", "replication"))
        until("the sentinel sees the replica",
              lambda: str(self.r) in cli(self.s, "sentinel", "replicas", "main"))

    def url(self):
        return f"redis-sentinel://127.0.0.1:{self.s}/0?sentinelServiceName=main"

    def stop(self):
        for p in (self.primary, self.replica, self.sentinel):
            p.kill()
            p.wait()


def gateway(binary, tmp, mock_port, url, prefix, limit, mode):
    port = free_port()
    conf = os.path.join(tmp, f"gw-{port}.yaml")
    with open(conf, "w") as f:
        f.write(f"""server: {{threads: 1}}
listen: {{proxy: "127.0.0.1:{port}"}}
auth:
  keys:
    - {{name: bench, key: sk-bench}}
default_namespace: default
namespaces:
  - {{namespace_code: default}}
upstream_servers:
  - {{server_name: mock, pool: mocks, server_address: 127.0.0.1, server_port: {mock_port}, weight: 1}}
routes:
  - {{prefix: /, upstream: mocks}}
rules:
  - rule_name: failover
    rule_type: rate_limit
    rule_config: {{max_requests: {limit}, time_window_seconds: 3600, key_by: namespace, fail_mode: {mode}, algorithm: {ALGORITHM}}}
counters: {{store: redis, redis_url: "{url}", key_prefix: "{prefix}", timeout_ms: 300}}
fleet: {{heartbeat_ms: 500}}
metrics: {{token: failover-metrics}}
""")
    proc = subprocess.Popen([binary, "run", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=open(conf + ".log", "w"))
    listening(port)
    return proc, port


def one(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("POST", "/v1/chat/completions", BODY, HEADERS)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def metrics(ports):
    """The fail-mode counters of the gateways, summed."""
    wanted = {
        'sluice_counter_store_errors_total': "store_errors",
        'sluice_limits_local_share_total{result="admitted"}': "local_share_admitted",
        'sluice_limits_local_share_total{result="denied"}': "local_share_denied",
        'sluice_counter_settlements_total{outcome="dropped"}': "settlements_dropped",
    }
    out = {v: 0 for v in wanted.values()}
    for port in ports:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics", headers={"Authorization": "Bearer failover-metrics"})
        for line in c.getresponse().read().decode().splitlines():
            name, _, value = line.rpartition(" ")
            if name in wanted:
                out[wanted[name]] += int(float(value))
        c.close()
    return out


def load(ports, t0, stop):
    """THREADS clients, spread over the gateways, each on one keep-alive
    connection: (seconds since t0, status) per answer, 0 for an error."""
    seen = []

    def client(port):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            try:
                c.request("POST", "/v1/chat/completions", BODY, HEADERS)
                r = c.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                status = 0
                c.close()
            seen.append((time.monotonic() - t0, status))  # atomic in CPython

    threads = [threading.Thread(target=client, args=(ports[i % len(ports)],))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    return threads, seen


def run(binary, tmp, mock_port, mode, limit):
    trio = Trio(tmp)
    prefix = f"fo-{mode}-{os.getpid()}:"
    gws = [gateway(binary, tmp, mock_port, trio.url(), prefix, limit, mode) for _ in range(2)]
    ports = [p for _, p in gws]
    # Both instances count through the sentinel before the load starts.
    warm = 0
    for port in ports:
        end = time.monotonic() + 20
        while one(port) != 200:
            if time.monotonic() > end:
                sys.exit("failover: a gateway never admitted through the sentinel")
            time.sleep(0.1)
        warm += 1
    t0 = time.monotonic()
    stop = threading.Event()
    threads, seen = load(ports, t0, stop)
    time.sleep(KILL_AT)
    cli(trio.p, "wait", "1", "1000")
    trio.primary.send_signal(signal.SIGKILL)
    killed = time.monotonic() - t0
    # Until the limit is spent (only 429s for 1.5 s after the failover),
    # or MAX_S.
    promoted = None
    while time.monotonic() - t0 < MAX_S:
        time.sleep(0.25)
        now = time.monotonic() - t0
        if promoted is None and cli(trio.r, "role").splitlines()[:1] == ["master"]:
            promoted = now
        if promoted is not None and now > promoted + 1.5:
            tail = []
            for t, s in reversed(seen):
                if t < now - 1.5:
                    break
                tail.append(s)
            if tail and all(s == 429 for s in tail):
                break
    stop.set()
    for t in threads:
        t.join()
    seen.sort()
    after = [s for t, s in seen if t > promoted + 0.5] if promoted else []
    last = {}
    for t, s in seen:
        if t > seen[-1][0] - 1.5:
            last[s] = last.get(s, 0) + 1
    odd = [(t, s) for t, s in seen if t >= killed and s not in (200, 429)]
    gap = (odd[0][0], odd[-1][0]) if odd else (killed, killed)
    before = [s for t, s in seen if t < killed]
    admitted = warm + sum(1 for _, s in seen if s == 200)
    if ALGORITHM == "sliding_window":
        keys = cli(trio.r, "--scan", "--pattern", f"{prefix}sw:*").split()
        count = int(cli(trio.r, "zcard", keys[0]) or 0) if keys else 0
    else:
        keys = cli(trio.r, "--scan", "--pattern", f"{prefix}fw:*").split()
        count = int(cli(trio.r, "hget", keys[0], "n") or 0) if keys else 0
    in_gap = {}
    for t, s in seen:
        if gap[0] <= t <= gap[1]:
            in_gap[s] = in_gap.get(s, 0) + 1
    fallback = metrics(ports)
    for proc, _ in gws:
        proc.send_signal(signal.SIGINT)
    for proc, _ in gws:
        proc.wait()
    trio.stop()
    return {
        "mode": mode,
        "limit": limit,
        "rate_before": round(len(before) / killed),
        "killed_at_s": round(killed, 2),
        "promoted_at_s": round(promoted, 2) if promoted else None,
        "window_s": round(gap[1] - gap[0], 2),
        "answers_in_window": in_gap,
        "admitted": admitted,
        "count_on_new_primary": count,
        "last_1.5_s": last,
        "after_failover_429": sum(1 for s in after if s == 429),
        **fallback,
    }


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    modes = (sys.argv[2] if len(sys.argv) > 2 else "closed,open,local_share").split(",")
    tmp = tempfile.mkdtemp(prefix="sluice-failover-")
    mock_port = free_port()
    mock = subprocess.Popen([binary, "mock", "--listen", f"127.0.0.1:{mock_port}",
                             "--threads", "1"], stderr=subprocess.DEVNULL)
    try:
        listening(mock_port)
        # Calibration: the rate these clients reach, to size the limit.
        trio = Trio(tmp)
        gws = [gateway(binary, tmp, mock_port, trio.url(), "fo-cal:", 10**9, "closed")
               for _ in range(2)]
        for _, port in gws:
            until("a first admission", lambda: one(port) == 200)
        t0 = time.monotonic()
        stop = threading.Event()
        threads, seen = load([p for _, p in gws], t0, stop)
        time.sleep(2)
        stop.set()
        for t in threads:
            t.join()
        rate = sum(1 for _, s in seen if s == 200) / (time.monotonic() - t0)
        for proc, _ in gws:
            proc.send_signal(signal.SIGINT)
            proc.wait()
        trio.stop()
        # Spent about SPEND_AFTER seconds after the kill.
        limit = int(rate * (KILL_AT + SPEND_AFTER))
        print(f"calibration: {rate:.0f} admissions/s with {THREADS} clients; "
              f"limit {limit} ({ALGORITHM})")
        for mode in modes:
            print(json.dumps(run(binary, tmp, mock_port, mode, limit)))
    finally:
        mock.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
