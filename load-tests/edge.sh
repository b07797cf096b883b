#!/usr/bin/env bash
# Edge benchmark: what TLS termination and tracing cost. Runs wrk
# (POST /v1/chat/completions to a catalog model, 16-token answers from the
# mock) against the gateway in five setups, in ROUNDS interleaved rounds:
#   (g)   plain HTTP, keep-alive (the baseline),
#   (t)   TLS on the proxy listener (ECDSA P-256, TLS 1.3), keep-alive,
#   (gc)  plain HTTP, a new connection per request (Connection: close),
#   (tc)  TLS, a new connection and handshake per request: handshakes/s,
#   (x100), (x1) plain HTTP, keep-alive, traces sampled at 100 % and 1 %,
#         exported to the mock (a collector that answers 200 at once),
# and prints RPS, p99 and the ratios t/g, tc/gc, x100/g, x1/g (medians of
# the per-round ratios). Pinned like load-tests/bench.sh.
#
# Env: DURATION (5s), ROUNDS (3), CONNECTIONS (32), CLOSE_CONNECTIONS (4,
# the new-connection runs), BUILD (1; 0 reuses the
# optimized binaries), PIN (auto).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-32}
# New-connection runs: fewer clients (each connection is a handshake and a
# TIME_WAIT socket; 32 exhaust loopback ports within seconds).
CLOSE_CONNECTIONS=${CLOSE_CONNECTIONS:-4}
command -v wrk >/dev/null || { echo "edge bench: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
command -v openssl >/dev/null || { echo "edge bench: needs openssl (a test certificate)" >&2; exit 1; }
if [[ ${BUILD:-1} == 1 ]]; then
  cargo build --profile optimized --quiet --bin sluice
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

pids=()
tmpdir=$(mktemp -d)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmpdir"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmpdir/key.pem" \
  -out "$tmpdir/cert.pem" -days 1 -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null

MOCK_PORT=$(free_port)
"${on_load[@]}" "$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
wait_port "$MOCK_PORT"

declare -A url
start() { # NAME EXTRA-YAML SCHEME
  local port conf
  port=$(free_port)
  conf="$tmpdir/$1.yaml"
  cat > "$conf" <<YAML
server: {threads: 1}
listen:
  proxy: "127.0.0.1:$port"
$2
auth: {enabled: false}
# Connection churn (gc, tc) can exhaust loopback ports for a moment: no
# passive ejection, so such a blip is a retry, not a pool taken out.
upstream: {eject_after_failures: 0}
default_namespace: default
namespaces: [{namespace_code: default}]
upstream_servers:
  - {server_name: mock, server_address: 127.0.0.1, server_port: $MOCK_PORT}
routes: [{prefix: /, upstream: mock}]
models:
  - name: gpt-4o-mini
    breaker: {consecutive_failures: 1000000, error_rate: 1.0}
    deployments: [{name: one, upstream: mock}]
YAML
  "$bin" check -c "$conf" >/dev/null
  "${on_proxy[@]}" "$bin" run -c "$conf" 2>"$tmpdir/$1.log" & pids+=($!)
  url[$1]="$3://127.0.0.1:$port"
  wait_port "$port"
}
tls="  proxy_tls: {certificates: [{cert: $tmpdir/cert.pem, key: $tmpdir/key.pem}], http2: false}"
trace() { printf 'tracing: {otlp_endpoint: "http://127.0.0.1:%s/health", sample_ratio: %s, flush_ms: 200}' "$MOCK_PORT" "$1"; }
start g "" http
start t "$tls" https
start x100 "$(trace 1.0)" http
start x1 "$(trace 0.01)" http
url[gc]=${url[g]}; url[tc]=${url[t]}

to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; printf "%.3f", v}' <<<"$1"; }
# Requests to the catalog model; the first non-2xx answer is printed.
lua() { # FILE EXTRA-HEADER-LINE
  cat > "$1" <<LUA
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"user","content":"Say hello to the load test."}]}'
wrk.headers["Content-Type"] = "application/json"
$2
local told = false
response = function(status, headers, body)
  if status >= 300 and not told then told = true; io.stderr:write("first failure: " .. status .. " " .. body .. "\\n") end
end
LUA
}
lua "$tmpdir/keep.lua" ""
lua "$tmpdir/close.lua" 'wrk.headers["Connection"] = "close"'
names=(g t gc tc x100 x1)
declare -A rps p99
for n in "${names[@]}"; do # warm-up
  "${on_load[@]}" wrk -t1 -c8 -d1s -s "$tmpdir/keep.lua" "${url[$n]}" >/dev/null
done
echo "wrk -t1 -c$CONNECTIONS -d$DURATION x $ROUNDS interleaved rounds"
for round in $(seq 1 "$ROUNDS"); do
  for n in "${names[@]}"; do
    script="$tmpdir/keep.lua"
    [[ $n == gc || $n == tc ]] && script="$tmpdir/close.lua"
    conns=$CONNECTIONS
    [[ $n == gc || $n == tc ]] && conns=$CLOSE_CONNECTIONS
    out=$("${on_load[@]}" wrk -t1 -c"$conns" -d"$DURATION" --latency -s "$script" "${url[$n]}" 2>"$tmpdir/wrk.err")
    if [[ -s $tmpdir/wrk.err ]]; then echo "($n): $(head -c 400 "$tmpdir/wrk.err")" >&2; fi
    if grep -q "Non-2xx" <<<"$out"; then echo "edge bench: ($n) got non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
    rps[$n]+="$(awk '/Requests\/sec/ {print $2}' <<<"$out") "
    p99[$n]+="$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") "
  done
done
args=()
for n in "${names[@]}"; do args+=("$n" "${rps[$n]}" "${p99[$n]}"); done
python3 - "${args[@]}" <<'PY'
import statistics, sys
a = sys.argv[1:]
rows = {a[i]: ([float(x) for x in a[i + 1].split()], [float(x) for x in a[i + 2].split()]) for i in range(0, len(a), 3)}
labels = {"g": "(g) plain, keep-alive", "t": "(t) TLS, keep-alive", "gc": "(gc) plain, new connection each",
          "tc": "(tc) TLS, new handshake each", "x100": "(x100) traces at 100 %", "x1": "(x1) traces at 1 %"}
base = {"g": "g", "t": "g", "gc": "gc", "tc": "gc", "x100": "g", "x1": "g"}
print(f"{'setup':34} {'RPS':>9} {'p99 ms':>8} {'ratio':>7} {'vs':>4}")
for n, (r, p) in rows.items():
    b = rows[base[n]][0]
    ratio = statistics.median(x / y for x, y in zip(r, b))
    print(f"{labels[n]:34} {statistics.median(r):9.0f} {statistics.median(p):8.2f} {ratio:7.3f} {base[n]:>4}")
PY
