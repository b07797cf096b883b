#!/usr/bin/env bash
# `make run`: one mock LLM upstream per wire format in the background
# (OpenAI on 127.0.0.1:9000, Anthropic on :9001, Azure OpenAI on :9002;
# each speaks all three, the config decides which one a server is) and the
# gateway in the foreground with conf/sluice.yaml. Ctrl-C stops them all.
set -euo pipefail
bin=${SLUICE_BIN:-target/release/sluice}
config=${SLUICE_CONFIG:-conf/sluice.yaml}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT INT TERM
for spec in openai:9000 anthropic:9001 azure:9002; do
  "$bin" mock --listen "127.0.0.1:${spec#*:}" --id "${spec%%:*}" --chunk-ms 20 &
  pids+=($!)
done
"$bin" check -c "$config"
"$bin" run -c "$config"
