#!/usr/bin/env bash
# Instructions the gateway spends per request, counted by callgrind: exact
# and free of the noise that a shared machine puts into wrk figures, so
# before/after comparisons of the hot path (e.g. the metrics) are
# meaningful to a fraction of a percent.
#
# Usage: load-tests/callgrind.sh [BINARY] [CONFIG] [N]
#   BINARY  the sluice binary (default target/optimized/sluice)
#   CONFIG  a load-tests config with @GW_PORT@/@MOCK_PORT@ (default full.yaml)
#   N       requests measured (default 2000), after 200 warm-up requests
# Prints "instructions/request: X" (all threads of the gateway process,
# background upkeep included: health checks are 5 s apart and the run is short).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/optimized/sluice}
CONF=${2:-load-tests/full.yaml}
N=${3:-2000}
command -v valgrind >/dev/null || { echo "callgrind: installing valgrind"; apt-get install -y -qq valgrind >/dev/null; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; if [[ -n ${KEEP:-} ]]; then cp "$tmp"/cg.out.* "$KEEP" 2>/dev/null; fi; rm -rf "$tmp"; }
trap cleanup EXIT

MOCK_PORT=$(free_port); GW_PORT=$(free_port)
"$BIN" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
sed "s/@GW_PORT@/$GW_PORT/; s/@MOCK_PORT@/$MOCK_PORT/g; s/@KEY_PREFIX@/cg-$$:/" "$CONF" > "$tmp/conf.yaml"
wait_port "$MOCK_PORT"
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" --dump-instr=no \
  "$BIN" run -c "$tmp/conf.yaml" 2>"$tmp/vg.log" & pids+=($!)
wait_port "$GW_PORT"

send() { # N requests on one keep-alive connection, like load-tests/chat.lua
  python3 - "$GW_PORT" "$1" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
body = '{"model":"gpt-4o-mini","max_tokens":16,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the load test."}]}'
headers = {"Content-Type": "application/json", "x-tenant": "bench", "Authorization": "Bearer sk-bench"}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("POST", "/v1/chat/completions", body, headers)
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
PY
}
send 200
callgrind_control -z >/dev/null
send "$N"
callgrind_control -d >/dev/null
ir=$(awk '/^summary:/ {s += $2} END {print s}' "$tmp"/cg.out.* 2>/dev/null)
awk -v ir="$ir" -v n="$N" 'BEGIN {printf "instructions/request: %.0f  (%d requests, %s instructions)\n", ir / n, n, ir}'
