#!/usr/bin/env bash
# The Redis primary killed under load, once per fail mode (closed, open,
# local_share): two gateways count one rate rule through Sentinel, the
# primary dies 3 s in, its replica is promoted, the load goes on until the
# limit is spent. Prints, per mode, the window without a primary and what
# clients got in it, requests admitted against the limit, and the count
# the promoted replica holds (load-tests/failover.py).
# Usage: [BUILD=0] [BIN=…] [MODES=closed,open,local_share]
#        [ALGORITHM=fixed_window|sliding_window] load-tests/failover.sh
# Needs redis-server and redis-cli (loopback ports of its own).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${BUILD:-1} == 1 ]]; then cargo build --profile optimized --quiet --bin sluice; fi
exec python3 load-tests/failover.py "${BIN:-target/optimized/sluice}" "${MODES:-closed,open,local_share}"
