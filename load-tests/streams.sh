#!/usr/bin/env bash
# Memory per concurrent stream (load-tests/streams.py) through one gateway
# with limits on (limits-local.yaml, 2 threads): RSS idle (tokenizers
# loaded by a first request), at the peak of N streams held at once, and
# 5 s after they ended; then the same streams through the floor, a bare
# Pingora proxy (examples/bare_pingora.rs, no policy, the gateway's
# plain-HTTP listener buffers) against the same upstream: what Pingora
# itself holds per stream, in the same run.
# Usage: [BUILD=0] [BIN=…] [BARE=…|BARE=none] [COUNTS="1000 5000"] load-tests/streams.sh
# The open-file limit bounds N: each stream holds a client, a gateway and
# an upstream socket (`ulimit -n` of this shell).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${BUILD:-1} == 1 ]]; then cargo build --profile optimized --quiet --bin sluice --example bare_pingora; fi
bin=${BIN:-target/optimized/sluice}
bare=${BARE:-target/optimized/examples/bare_pingora}
COUNTS=${COUNTS:-"1000 5000"}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
tmpdir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmpdir"' EXIT
MOCK_PORT=$(free_port); GW_PORT=$(free_port)
"$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
sed "s/@GW_PORT@/$GW_PORT/; s/@MOCK_PORT@/$MOCK_PORT/g; s/threads: 1/threads: 2/" load-tests/limits-local.yaml > "$tmpdir/gw.yaml"
echo "clients: {max_connections: 100000, max_connections_per_client: 100000}" >> "$tmpdir/gw.yaml"
wait_port "$MOCK_PORT"
"$bin" run -c "$tmpdir/gw.yaml" 2>"$tmpdir/gw.log" & pids+=($!); gw=$!
wait_port "$GW_PORT"
curl -sf "http://127.0.0.1:$GW_PORT/v1/chat/completions" -H 'Authorization: Bearer sk-bench' -H 'x-tenant: bench' \
  -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"warm the tokenizer"}]}' >/dev/null
sleep 2
echo "idle after one request (tokenizers loaded): $(awk '/^VmRSS/ {printf "%.1f MiB", $2 / 1024}' /proc/$gw/status)"
echo "== the gateway"
for n in $COUNTS; do
  python3 load-tests/streams.py "http://127.0.0.1:$GW_PORT" "$gw" "$n" 40 100 ||
    { echo "the gateway's log:"; grep -v "^\s*$" "$tmpdir/gw.log" | sort | uniq -c | sort -rn | head -5; exit 1; }
done
kill "$gw"
[[ $bare == none ]] && exit 0
# A fresh proxy per count: it keeps what a burst freed (glibc's malloc,
# no trimming), so a second count would reuse the first one's memory.
echo "== the floor: bare Pingora, no policy, a fresh process per count"
for n in $COUNTS; do
  BARE_PORT=$(free_port)
  BARE_READ_BUFFER=0 "$bare" "127.0.0.1:$BARE_PORT" "127.0.0.1:$MOCK_PORT" 2>"$tmpdir/bare.log" & pids+=($!); bp=$!
  wait_port "$BARE_PORT"
  python3 load-tests/streams.py "http://127.0.0.1:$BARE_PORT" "$bp" "$n" 40 100 ||
    { echo "bare Pingora's log:"; grep -v "^\s*$" "$tmpdir/bare.log" | sort | uniq -c | sort -rn | head -5; exit 1; }
  kill "$bp"
done
