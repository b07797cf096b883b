# The two commands: `make run` and `make test`. See README.md.
.PHONY: run test deps-build lint bench

# Run the gateway with conf/sluice.yaml and the mock upstream it points at.
run: deps-build
	cargo build --release
	./scripts/run-dev.sh

# The whole test suite (installs/starts cmake, Redis, MariaDB when absent).
test:
	./scripts/test-deps.sh
	cargo test --workspace --all-targets

# Only what building needs (cmake for Pingora's zlib-ng).
deps-build:
	@command -v cmake >/dev/null || { echo "installing cmake"; \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && echo sudo ); $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq cmake >/dev/null; }

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

bench:
	./load-tests/bench.sh
