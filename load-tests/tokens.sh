#!/usr/bin/env bash
# Token counting throughput: sluice-filters' exact BPE counter against
# tiktoken-rs on the same deterministic ~1 MB mixed English / Chinese / code
# text, for o200k_base, cl100k_base, p50k_base and r50k_base. Prints a
# markdown table (MB/s of `count`, tiktoken-rs `encode_ordinary`, ratio) and
# fails if any count differs from tiktoken-rs.
#
# Args are passed to the example: [size_kb (1024)] [rounds (7)].
# Target: >= 50 MB/s per core for `count` on the 1 MB text.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --profile optimized --quiet -p sluice-filters --example token_bench -- "$@"
