#!/usr/bin/env bash
# The gateway's instructions per request for the bench configs, side by
# side: (b) passthrough, (c) full policy, (l) (c) + limit rules with the
# local counter store, each counted by load-tests/callgrind.sh (callgrind;
# exact, unaffected by CPU steal or other work on the machine), with the
# ratios l/b, l/c, c/b. This is the figure to compare hot-path changes
# with on a shared VM, where wrk's RPS moves ±20 % from run to run.
#
# Usage: load-tests/cost.sh [b c l ...]   (default: b c l)
# Env: BIN (default target/optimized/sluice, built first), N requests per
# config (default 2000).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
bin=${BIN:-target/optimized/sluice}
[[ -n ${BIN:-} ]] || cargo build --profile optimized --quiet --bin sluice

declare -A conf=([b]=load-tests/passthrough.yaml [c]=load-tests/full.yaml [l]=load-tests/limits-local.yaml)
declare -A per
configs=("$@")
((${#configs[@]})) || configs=(b c l)
for n in "${configs[@]}"; do
  [[ -n ${conf[$n]:-} ]] || { echo "cost: unknown config ($n); known: ${!conf[*]}" >&2; exit 2; }
  line=$(load-tests/callgrind.sh "$bin" "${conf[$n]}" "$N")
  per[$n]=$(awk '/instructions\/request:/ {print $2}' <<<"$line")
  [[ -n ${per[$n]} ]] || { echo "cost: ($n) gave no figure: $line" >&2; exit 1; }
done

echo "instructions per request (callgrind, $N sequential requests per config after 200 warm-up)"
for n in "${configs[@]}"; do printf "  (%s) %-32s %9s\n" "$n" "${conf[$n]}" "${per[$n]}"; done
ratio() { [[ -n ${per[$1]:-} && -n ${per[$2]:-} ]] && python3 -c "print(f'  $1/$2 = {${per[$1]} / ${per[$2]}:.3f}')"; return 0; }
ratio l b
ratio l c
ratio c b
