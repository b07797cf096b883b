#!/usr/bin/env bash
# Response-cache benchmark. Runs wrk (POST /v1/chat/completions, 16-token
# answers, temperature 0) against
#   (p)  a bare Pingora proxy to the mock upstream (the baseline),
#   (h1) the gateway answering every request from its memory tier (one
#        request repeated: one miss, then hits),
#   (h2) the gateway answering from Redis: WIDTH distinct requests, stored
#        in Redis by a first pass, cycled through a memory tier of 1 MiB
#        that holds few of them (each answer is ~900 bytes), so nearly
#        every request misses memory and hits Redis,
# in ROUNDS interleaved rounds, and prints RPS and p99 (medians) and the
# ratios h1/p, h2/p; then fills a fresh gateway with 10 000 distinct
# answers and reports the memory it took (RSS growth, and the cache's own
# count of bytes held). Needs Redis on 127.0.0.1:6379.
#
# Env: DURATION (5s), ROUNDS (3), CONNECTIONS (32), WIDTH (20000), BUILD
# (1; 0 uses the optimized binaries already built), PIN
# (auto: the proxies on the last CPU, the mock and wrk on the others, as
# load-tests/bench.sh does).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WIDTH=${WIDTH:-20000}
command -v wrk >/dev/null || { echo "cache bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
if [[ ${BUILD:-1} == 1 ]]; then
  cargo build --profile optimized --quiet --bin sluice --example bare_pingora
fi
bin=target/optimized/sluice

PIN=${PIN:-auto}
ncpu=$(nproc)
if [[ $PIN == auto ]]; then if ((ncpu >= 2)); then PIN=1; else PIN=0; fi; fi
on_proxy=(); on_load=()
if [[ $PIN == 1 ]]; then
  proxy_cpu=$((ncpu - 1))
  on_proxy=(taskset -c "$proxy_cpu")
  on_load=(taskset -c "0-$((proxy_cpu - 1))")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
(exec 4<>/dev/tcp/127.0.0.1/6379) 2>/dev/null || { echo "cache bench: needs Redis on 127.0.0.1:6379" >&2; exit 1; }

pids=()
tmpdir=$(mktemp -d)
KEY_PREFIX="sluice-cache-bench-$$-$RANDOM:"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if command -v redis-cli >/dev/null; then
    redis-cli --scan --pattern "${KEY_PREFIX}*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
  fi
  rm -rf "$tmpdir"
}
trap cleanup EXIT

declare -A url pid
MOCK_PORT=$(free_port)
"${on_load[@]}" "$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
wait_port "$MOCK_PORT"
BARE_PORT=$(free_port)
"${on_proxy[@]}" target/optimized/examples/bare_pingora "127.0.0.1:$BARE_PORT" "127.0.0.1:$MOCK_PORT" 2>/dev/null & pids+=($!); pid[p]=$!
url[p]="http://127.0.0.1:$BARE_PORT"
wait_port "$BARE_PORT"

start_gateway() { # NAME MEMORY_MB
  local port conf
  port=$(free_port)
  conf="$tmpdir/$1.yaml"
  sed "s/@GW_PORT@/$port/; s/@MOCK_PORT@/$MOCK_PORT/g; s/@KEY_PREFIX@/$KEY_PREFIX/; s/@MEMORY_MB@/$2/" load-tests/cache.yaml > "$conf"
  "$bin" check -c "$conf" >/dev/null
  "${on_proxy[@]}" "$bin" run -c "$conf" 2>"$tmpdir/$1.log" & pids+=($!); pid[$1]=$!
  url[$1]="http://127.0.0.1:$port"
  wait_port "$port"
}
start_gateway h1 64
start_gateway h2 1

stats() { curl -s "$1/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['cache']['$2'])"; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}' <<<"$1"; }

# Fill: Redis gets WIDTH answers (through h2's misses); warm-ups.
echo "filling Redis with $WIDTH answers through (h2)"
"${on_load[@]}" wrk -t1 -c"$CONNECTIONS" -d30s -s load-tests/wrk/cached.lua "${url[h2]}" -- "$WIDTH" >/dev/null &
fill=$!
for _ in $(seq 1 300); do
  [[ $(redis-cli --scan --pattern "${KEY_PREFIX}e:*" | wc -l) -ge $WIDTH ]] && break
  sleep 1
done
kill "$fill" 2>/dev/null || true; wait "$fill" 2>/dev/null || true
stored=$(redis-cli --scan --pattern "${KEY_PREFIX}e:*" | wc -l)
echo "Redis holds $stored answers"
"${on_load[@]}" wrk -t1 -c8 -d1s -s load-tests/wrk/cached.lua "${url[h1]}" -- 1 >/dev/null
"${on_load[@]}" wrk -t1 -c8 -d1s -s load-tests/wrk/chat.lua "${url[p]}" >/dev/null

declare -A rps p99 script width
script=([p]=chat.lua [h1]=cached.lua [h2]=cached.lua)
width=([p]="" [h1]=1 [h2]=$WIDTH)
hits0=$(stats "${url[h2]}" redis_hits); misses0=$(stats "${url[h2]}" misses)
echo "wrk -t1 -c$CONNECTIONS -d$DURATION x $ROUNDS interleaved rounds"
for round in $(seq 1 "$ROUNDS"); do
  for n in p h1 h2; do
    out=$("${on_load[@]}" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency -s "load-tests/wrk/${script[$n]}" "${url[$n]}" -- ${width[$n]})
    if grep -q "Non-2xx" <<<"$out"; then echo "cache bench: ($n) got non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
    rps[$n]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
    p99[$n]+="$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") "
  done
done
hits1=$(stats "${url[h2]}" redis_hits); misses1=$(stats "${url[h2]}" misses)
echo "(h2) during the rounds: $((hits1 - hits0)) Redis hits, $((misses1 - misses0)) misses (went upstream)"

python3 - "${rps[p]}" "${p99[p]}" "${rps[h1]}" "${p99[h1]}" "${rps[h2]}" "${p99[h2]}" <<'PY'
import statistics, sys
v = [[float(x) for x in a.split()] for a in sys.argv[1:]]
names = ["(p) bare Pingora proxy", "(h1) cache hit, memory", "(h2) cache hit, Redis"]
print(f"{'setup':28} {'RPS':>9} {'p99 ms':>8} {'RPS/p':>7} {'p99/p':>7}")
for i, n in enumerate(names):
    r, p = v[2 * i], v[2 * i + 1]
    ratio = statistics.median(x / y for x, y in zip(r, v[0]))
    pr = statistics.median(x / y for x, y in zip(p, v[1]))
    print(f"{n:28} {statistics.median(r):9.0f} {statistics.median(p):8.2f} {ratio:7.2f} {pr:7.2f}")
PY

# Memory per 10 000 cached answers: a fresh gateway, RSS before and after.
start_gateway m 256
"${on_load[@]}" wrk -t1 -c8 -d1s -s load-tests/wrk/cached.lua "${url[m]}" -- 1 1000000 >/dev/null
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/${pid[m]}/status")
"${on_load[@]}" wrk -t1 -c"$CONNECTIONS" -d60s -s load-tests/wrk/cached.lua "${url[m]}" -- 10000 2000000 >/dev/null &
fill=$!
for _ in $(seq 1 600); do
  [[ $(stats "${url[m]}" memory_entries) -ge 10001 ]] && break
  sleep 0.2
done
kill "$fill" 2>/dev/null || true; wait "$fill" 2>/dev/null || true
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/${pid[m]}/status")
entries=$(stats "${url[m]}" memory_entries); held=$(stats "${url[m]}" memory_bytes)
echo "memory: $entries answers held, the cache counts $((held / 1024)) KiB; RSS grew $(( (rss1 - rss0) / 1024 )) MiB ($(( (rss1 - rss0) * 10000 / (entries > 1 ? entries - 1 : 1) / 1024 )) MiB per 10 000 answers)"
