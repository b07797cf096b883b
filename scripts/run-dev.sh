#!/usr/bin/env bash
# `make run`: the mock LLM upstream on 127.0.0.1:9000 in the background and
# the gateway in the foreground with conf/sluice.yaml. Ctrl-C stops both.
set -euo pipefail
bin=target/release/sluice
"$bin" mock --listen 127.0.0.1:9000 &
mock=$!
trap 'kill "$mock" 2>/dev/null || true' EXIT INT TERM
"$bin" check -c conf/sluice.yaml
"$bin" run -c conf/sluice.yaml
