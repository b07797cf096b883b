#!/usr/bin/env bash
# Proxy overhead benchmark. Runs wrk against
#   (a) the mock upstream directly,
#   (p) a bare Pingora proxy (examples/bare_pingora.rs: one fixed upstream, no policy),
#   (b) the gateway with a passthrough config (no auth, one route),
#   (c) the gateway with auth + matchers + proxy rule + a weighted pool,
# and prints RPS, p50, p99 (medians over ROUNDS interleaved rounds, so a noisy
# neighbour hits every setup alike) and the ratios p/a, b/p and c/b.
# Target: c >= 0.9 x b.
#
# Env: DURATION per run (default 5s), ROUNDS (default 3), CONNECTIONS (32),
# WRK_THREADS (1). On a 2-core machine each proxy runs 1 worker thread, the
# mock 1, wrk 1; idle proxies wait in the background.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin sluice --example bare_pingora
bin=target/release/sluice

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

pids=()
tmpdir=$(mktemp -d)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmpdir"; }
trap cleanup EXIT

MOCK_PORT=$(free_port)
"$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
wait_port "$MOCK_PORT"

BARE_PORT=$(free_port)
target/release/examples/bare_pingora "127.0.0.1:$BARE_PORT" "127.0.0.1:$MOCK_PORT" 2>/dev/null & pids+=($!)
wait_port "$BARE_PORT"

start_gateway() { # CONFIG -> prints the port
  local port conf
  port=$(free_port)
  conf="$tmpdir/$(basename "$1")"
  sed "s/@GW_PORT@/$port/; s/@MOCK_PORT@/$MOCK_PORT/g" "$1" > "$conf"
  "$bin" check -c "$conf" >/dev/null
  "$bin" run -c "$conf" 2>/dev/null &
  echo "$! $port"
}
read -r pid B_PORT < <(start_gateway load-tests/passthrough.yaml); pids+=("$pid")
read -r pid C_PORT < <(start_gateway load-tests/full.yaml); pids+=("$pid")
wait_port "$B_PORT"; wait_port "$C_PORT"

names=(a p b c)
declare -A url=([a]="http://127.0.0.1:$MOCK_PORT" [p]="http://127.0.0.1:$BARE_PORT"
                [b]="http://127.0.0.1:$B_PORT" [c]="http://127.0.0.1:$C_PORT")
declare -A key=([a]="" [p]="" [b]="" [c]="sk-bench")
declare -A label=([a]="(a) mock direct" [p]="(p) bare Pingora proxy"
                  [b]="(b) gateway passthrough" [c]="(c) gateway auth+matchers+weighted")
declare -A rps p50 p99

for n in "${names[@]}"; do # warm-up: connections, pools, caches
  wrk -t1 -c8 -d1s -s load-tests/chat.lua "${url[$n]}" -- "${key[$n]}" >/dev/null
done

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}' <<<"$1"; }

echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS interleaved rounds, POST /v1/chat/completions (16-token answer), $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
  for n in "${names[@]}"; do
    out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s load-tests/chat.lua "${url[$n]}" -- "${key[$n]}")
    if grep -q "Non-2xx" <<<"$out"; then echo "bench: ${label[$n]} got non-2xx responses" >&2; echo "$out" >&2; exit 1; fi
    rps[$n]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
    p50[$n]+="$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") "
    p99[$n]+="$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") "
  done
done

python3 - "${rps[a]}" "${rps[p]}" "${rps[b]}" "${rps[c]}" "${p50[a]}" "${p50[p]}" "${p50[b]}" "${p50[c]}" "${p99[a]}" "${p99[p]}" "${p99[b]}" "${p99[c]}" "${label[a]}" "${label[p]}" "${label[b]}" "${label[c]}" <<'PY'
import statistics, sys
vals = [list(map(float, s.split())) for s in sys.argv[1:13]]
labels = sys.argv[13:17]
med = [statistics.median(v) for v in vals]
rps, p50, p99 = med[0:4], med[4:8], med[8:12]
for i, name in enumerate(labels):
    runs = " ".join(f"{x:.0f}" for x in vals[i])
    print(f"{name:<36} {rps[i]:>9.0f} rps   p50 {p50[i]:6.2f} ms   p99 {p99[i]:6.2f} ms   (runs: {runs})")
a, p, b, c = rps
print(f"ratio p/a = {p/a:.3f}   (bare Pingora vs mock direct: the cost of any proxy hop)")
print(f"ratio b/p = {b/p:.3f}   (Sluice passthrough vs bare Pingora)")
print(f"ratio c/b = {c/b:.3f}   (full policy vs passthrough; target >= 0.90)")
PY
