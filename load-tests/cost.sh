#!/usr/bin/env bash
# Gateway CPU cost per request, in instructions (valgrind's callgrind), for
# the bench configs: (b) passthrough, (c) full policy, (l) (c) + limit rules
# with the local counter store. Instruction counts do not depend on what
# else the machine is doing (CPU steal, other builds), so this compares the
# configs exactly where wall-clock RPS (bench.sh) is noisy on a shared VM.
#
# Each gateway runs under callgrind (serialised, ~50x slower); after a
# warm-up the counters are zeroed, wrk drives REQUESTS-ish requests, the
# counters are dumped, and instructions / requests is printed, with the
# ratio to (b) and (c). Set TOP=N to also print each config's N most
# expensive functions (inclusive); KEEP=prefix keeps each dump as
# prefix.<config> for callgrind_annotate.
#
# Usage: load-tests/cost.sh [configs...]   (default: b c l)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-8s}
TOP=${TOP:-0}
command -v valgrind >/dev/null || { echo "cost: installing valgrind"; apt-get install -y -qq valgrind >/dev/null; }
command -v wrk >/dev/null || { echo "cost: installing wrk"; apt-get install -y -qq wrk >/dev/null; }
# BIN=path measures another build (e.g. a baseline from an older commit).
bin=${BIN:-target/release/sluice}
[[ -n ${BIN:-} ]] || cargo build --release --quiet --bin sluice

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

pids=()
tmpdir=$(mktemp -d)
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmpdir"; }
trap cleanup EXIT

MOCK_PORT=$(free_port)
"$bin" mock --listen "127.0.0.1:$MOCK_PORT" --threads 1 2>/dev/null & pids+=($!)
wait_port "$MOCK_PORT"

declare -A conf=([b]=load-tests/passthrough.yaml [c]=load-tests/full.yaml [l]=load-tests/limits-local.yaml)
declare -A key=([b]="" [c]=sk-bench [l]=sk-bench)
declare -A ir reqs
configs=("${@:-b c l}")
read -r -a configs <<<"${configs[*]}"

for n in "${configs[@]}"; do
  port=$(free_port)
  sed "s/@GW_PORT@/$port/; s/@MOCK_PORT@/$MOCK_PORT/g" "${conf[$n]}" >"$tmpdir/$n.yaml"
  out="$tmpdir/$n.callgrind"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" run -c "$tmpdir/$n.yaml" 2>"$tmpdir/$n.log" &
  vg=$!
  pids+=($vg)
  wait_port "$port"
  wrk -t1 -c4 -d3s -s load-tests/chat.lua "http://127.0.0.1:$port" -- "${key[$n]}" >/dev/null
  callgrind_control -z "$vg" >/dev/null
  res=$(wrk -t1 -c4 -d"$DURATION" -s load-tests/chat.lua "http://127.0.0.1:$port" -- "${key[$n]}")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$res")
  [[ -z $non2xx ]] || { echo "cost: ($n) answered $non2xx non-2xx responses" >&2; exit 1; }
  reqs[$n]=$(awk '/requests in/ {print $1}' <<<"$res")
  callgrind_control -d "$vg" >/dev/null
  kill "$vg"
  wait "$vg" 2>/dev/null || true
  dump=$(ls -t "$out"* | grep -v "^$out\$" | head -1)
  ir[$n]=$(awk '/^summary:/ {print $2}' "$dump")
  [[ -z ${KEEP:-} ]] || cp "$dump" "$KEEP.$n"
  if ((TOP > 0)); then
    echo "== ($n) top $TOP inclusive, instructions per request"
    callgrind_annotate --inclusive=yes "$dump" 2>/dev/null |
      awk -v r="${reqs[$n]}" -v top="$TOP" '/^[ 0-9,]+\(/ && n < top { gsub(",", "", $1); printf "%8.0f  %s\n", $1 / r, substr($0, index($0, $3)); n++ }'
  fi
done

echo "instructions per request (callgrind; wrk -c4 for $DURATION per config after a 3 s warm-up)"
printf "%-4s %10s %9s %8s %8s\n" cfg requests instr/req "/(b)" "/(c)"
for n in "${configs[@]}"; do
  per=$((ir[$n] / reqs[$n]))
  rb=-; rc=-
  [[ -n ${ir[b]:-} ]] && rb=$(python3 -c "print(f'{$per / (${ir[b]} / ${reqs[b]}):.2f}')")
  [[ -n ${ir[c]:-} ]] && rc=$(python3 -c "print(f'{$per / (${ir[c]} / ${reqs[c]}):.2f}')")
  printf "%-4s %10s %9s %8s %8s\n" "($n)" "${reqs[$n]}" "$per" "$rb" "$rc"
done
