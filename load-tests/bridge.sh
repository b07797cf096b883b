#!/usr/bin/env bash
# The Bridge's costs (load-tests/bridge.py): invocation round trip through
# the gateway against the same command run directly, and the memory idle
# agents take (tunnels held open). One gateway (2 threads) on CPU 1, the
# reference agent and the driver on CPU 0.
# Usage: [BUILD=0] [ROUNDS=300] [IDLE=1000] load-tests/bridge.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${BUILD:-1} == 1 ]]; then cargo build --profile optimized --quiet --bin sluice; fi
bin=${BIN:-target/optimized/sluice}
ROUNDS=${ROUNDS:-300}; IDLE=${IDLE:-1000}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
tmpdir=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmpdir"' EXIT
GW_PORT=$(free_port)
cat > "$tmpdir/gw.yaml" <<YAML
server: {threads: 2}
listen: {proxy: "127.0.0.1:$GW_PORT"}
admin: {tokens: [adm]}
auth:
  enabled: true
  keys: [{name: bench, key: sk-bench}]
default_namespace: bench
namespaces: [{namespace_code: bench}]
upstream_servers: []
clients: {max_connections: 100000, max_connections_per_client: 100000}
bridge: {enabled: true, max_agents: 100000}
YAML
cat > "$tmpdir/agent.yaml" <<YAML
tools:
  - {name: cat, command: ["/bin/cat"]}
YAML
taskset -c 1 "$bin" run -c "$tmpdir/gw.yaml" 2>"$tmpdir/gw.log" & pids+=($!); gw=$!
wait_port "$GW_PORT"
token=$(curl -sf "http://127.0.0.1:$GW_PORT/internal/v1/bridge/agent-token" -H 'authorization: Bearer adm' \
  -d '{"agent_id":"bench"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
taskset -c 0 "$bin" agent --gateway "http://127.0.0.1:$GW_PORT" --token "$token" --id bench --tools "$tmpdir/agent.yaml" 2>"$tmpdir/agent.log" & pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$GW_PORT/internal/v1/bridge/agents" -H 'authorization: Bearer sk-bench' | grep -q online && break
  sleep 0.1
done
taskset -c 0 python3 load-tests/bridge.py "http://127.0.0.1:$GW_PORT" "$gw" "$ROUNDS" "$IDLE" ||
  { echo "the gateway's log:"; tail -5 "$tmpdir/gw.log"; exit 1; }
