#!/usr/bin/env bash
# Installs and starts what `make test` needs on a Debian machine, when absent:
# cmake (Pingora's zlib-ng build), Redis and MariaDB (store tests), Chromium
# and ChromeDriver (the /metrics/ui and console browser tests), and a
# virtualenv with the official openai SDK (tests/sdk/).
# Idempotent: does nothing on a machine that already has them running.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do
    if port_open "$1"; then return 0; fi
    sleep 0.5
  done
  echo "test-deps: nothing listens on 127.0.0.1:$1 after 30 s" >&2
  return 1
}

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v redis-server >/dev/null || need+=(redis-server)
fresh_mariadb=0
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
  need+=(mariadb-server)
  fresh_mariadb=1
fi
# Headless Chromium for the /metrics/ui end-to-end test (tests/it/metrics_ui.rs).
command -v chromium >/dev/null || need+=(chromium)
# ChromeDriver, for the console's browser test (tests/it/console_ui.rs, Selenium).
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "test-deps: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! port_open 6379; then
  echo "test-deps: starting Redis"
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_port 6379
fi

if ! port_open 3306; then
  echo "test-deps: starting MariaDB"
  $SUDO mkdir -p /run/mysqld && $SUDO chown mysql:mysql /run/mysqld 2>/dev/null || true
  $SUDO start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  wait_port 3306
fi

if [ "$fresh_mariadb" = 1 ]; then
  # Debian's root uses unix_socket auth; tests connect over TCP as root with
  # an empty password, as on the CI machine.
  $SUDO mariadb -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;"
fi

# The official SDKs, for the end-to-end client tests (tests/sdk/).
if ! .venv-test/bin/python -c "import openai" 2>/dev/null; then
  echo "test-deps: installing the openai Python SDK into .venv-test"
  command -v python3 >/dev/null || $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
  python3 -m venv .venv-test || { $SUDO apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv-test; }
  .venv-test/bin/pip install -q --disable-pip-version-check "openai>=1.40"
fi
if ! .venv-test/bin/python -c "import kubernetes_validate, yaml" 2>/dev/null; then
  echo "test-deps: installing kubernetes-validate and PyYAML into .venv-test (deploy/check.py)"
  .venv-test/bin/pip install -q --disable-pip-version-check "kubernetes-validate>=1.30" "pyyaml>=6"
fi
if ! .venv-test/bin/python -c "import mcp" 2>/dev/null; then
  echo "test-deps: installing the MCP Python SDK into .venv-test (the Bridge's MCP tests)"
  .venv-test/bin/pip install -q --disable-pip-version-check "mcp>=2.3"
fi
if ! .venv-test/bin/python -c "import anthropic" 2>/dev/null; then
  echo "test-deps: installing the anthropic Python SDK into .venv-test"
  .venv-test/bin/pip install -q --disable-pip-version-check "anthropic>=0.40"
fi
if ! .venv-test/bin/python -c "import selenium" 2>/dev/null; then
  echo "test-deps: installing Selenium into .venv-test (the console's browser test)"
  .venv-test/bin/pip install -q --disable-pip-version-check "selenium>=4.20"
fi
