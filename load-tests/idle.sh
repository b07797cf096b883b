#!/usr/bin/env bash
# Idle memory of one gateway (limits-local.yaml, 2 threads): RSS after one
# request per encoding (o200k_base through gpt-4o-mini, cl100k_base through
# gpt-4), then again once both tokenizers are in use (2 MiB of random mixed
# English / Chinese / code prompts counted per encoding), each with its
# parts: anonymous memory (heap), and the binary's pages (code, read-only
# data with the vocabularies) which are file-backed and shared by every
# process running the binary.
# Usage: [BUILD=0] [BINS="a b"] load-tests/idle.sh  (BINS: compare builds)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${BUILD:-1} == 1 && -z ${BINS:-} ]]; then cargo build --profile optimized --quiet --bin sluice; fi
BINS=${BINS:-target/optimized/sluice}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
tmpdir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmpdir"' EXIT
# RSS, anonymous, and the binary's resident pages (MiB) of a process, as
# three table cells.
parts() {
  awk -v bin="$(readlink -f "/proc/$1/exe")" '
    /^[0-9a-f]+-[0-9a-f]+ / { name = $6 }
    /^Rss:/ { rss += $2; if (name == bin) file += $2 }
    /^Anonymous:/ { anon += $2 }
    END { printf "%.1f | %.1f | %.1f", rss / 1024, anon / 1024, file / 1024 }' "/proc/$1/smaps"
}
echo "| build | idle RSS | heap | binary | in use: RSS | heap | binary |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for bin in $BINS; do
  MOCK_PORT=$(free_port); GW_PORT=$(free_port)
  "$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!); mock=$!
  sed "s/@GW_PORT@/$GW_PORT/; s/@MOCK_PORT@/$MOCK_PORT/g; s/threads: 1/threads: 2/" load-tests/limits-local.yaml > "$tmpdir/gw.yaml"
  wait_port "$MOCK_PORT"
  "$bin" run -c "$tmpdir/gw.yaml" 2>"$tmpdir/gw.log" & pids+=($!); gw=$!
  wait_port "$GW_PORT"
  python3 load-tests/idle_corpus.py "http://127.0.0.1:$GW_PORT" 0
  sleep 2
  idle=$(parts "$gw")
  python3 load-tests/idle_corpus.py "http://127.0.0.1:$GW_PORT" 2048
  sleep 2
  echo "| \`$bin\` | $idle | $(parts "$gw") |"
  kill "$gw" "$mock"; wait "$gw" "$mock" 2>/dev/null || true
done
