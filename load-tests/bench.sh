#!/usr/bin/env bash
# Proxy overhead benchmark. Runs wrk against
#   (a) the mock upstream directly,
#   (p) a bare Pingora proxy (examples/bare_pingora.rs: one fixed upstream, no policy),
#   (b) the gateway with a passthrough config (no auth, one route),
#   (c) the gateway with auth + matchers + proxy rules + a weighted pool,
# all in one run, and prints RPS, p50, p99 and the ratios b/p, c/b and p/a.
# Target: c >= 0.9 x b.
#
# Env: DURATION (default 10s), CONNECTIONS (default 32), WRK_THREADS (default 1).
# On a 2-core machine the gateway runs 1 worker thread, the mock 1, wrk 1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin sluice --example bare_pingora
bin=target/release/sluice

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "${tmpdir:-/nonexistent}"; }
trap cleanup EXIT

BENCH_MOCK_PORT=$(free_port)
"$bin" mock --listen "127.0.0.1:$BENCH_MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
wait_port "$BENCH_MOCK_PORT"

# run_wrk NAME URL [KEY]: prints the figures, sets RPS.
run_wrk() {
  local out
  out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s load-tests/chat.lua "$2" -- "${3:-}")
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  if [ -n "$non2xx" ]; then echo "bench: $1 had $non2xx non-2xx responses" >&2; exit 1; fi
  printf '%-36s %10s rps   p50 %8s   p99 %8s\n' "$1" "$rps" "$p50" "$p99"
  RPS=$rps
}

tmpdir=$(mktemp -d)
start_gateway() {
  BENCH_GW_PORT=$(free_port)
  local conf="$tmpdir/$(basename "$1")"
  sed "s/@GW_PORT@/$BENCH_GW_PORT/; s/@MOCK_PORT@/$BENCH_MOCK_PORT/g" "$1" > "$conf"
  "$bin" check -c "$conf" >/dev/null
  "$bin" run -c "$conf" 2>/dev/null & pids+=($!)
  wait_port "$BENCH_GW_PORT"
}

echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION, POST /v1/chat/completions (16-token answer), $(nproc) cores"
# Warm-up of the mock, then (a).
wrk -t1 -c8 -d2s -s load-tests/chat.lua "http://127.0.0.1:$BENCH_MOCK_PORT" >/dev/null
run_wrk "(a) mock direct" "http://127.0.0.1:$BENCH_MOCK_PORT"; a=$RPS

BARE_PORT=$(free_port)
target/release/examples/bare_pingora "127.0.0.1:$BARE_PORT" "127.0.0.1:$BENCH_MOCK_PORT" 2>/dev/null & pids+=($!)
wait_port "$BARE_PORT"
wrk -t1 -c8 -d2s -s load-tests/chat.lua "http://127.0.0.1:$BARE_PORT" >/dev/null
run_wrk "(p) bare Pingora proxy" "http://127.0.0.1:$BARE_PORT"; p=$RPS
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

start_gateway load-tests/passthrough.yaml
wrk -t1 -c8 -d2s -s load-tests/chat.lua "http://127.0.0.1:$BENCH_GW_PORT" >/dev/null
run_wrk "(b) gateway passthrough" "http://127.0.0.1:$BENCH_GW_PORT"; b=$RPS
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

start_gateway load-tests/full.yaml
wrk -t1 -c8 -d2s -s load-tests/chat.lua "http://127.0.0.1:$BENCH_GW_PORT" -- sk-bench >/dev/null
run_wrk "(c) gateway auth+matchers+weighted" "http://127.0.0.1:$BENCH_GW_PORT" sk-bench; c=$RPS

python3 - "$a" "$p" "$b" "$c" <<'PY'
import sys
a, p, b, c = map(float, sys.argv[1:5])
print(f"ratio p/a = {p/a:.3f}   (bare Pingora vs mock direct: the cost of any proxy hop)")
print(f"ratio b/p = {b/p:.3f}   (Sluice passthrough vs bare Pingora)")
print(f"ratio c/b = {c/b:.3f}   (full policy vs passthrough; target >= 0.90)")
PY
