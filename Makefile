# The two commands: `make run` and `make test`. See README.md.
.PHONY: run test deps-build lint lint-deps bench ui

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

# Format, lints (Cargo.toml [workspace.lints], clippy.toml) over both crates'
# libraries, binaries, tests, examples and benches, the docs, and that the
# committed console build is what ui/ builds (scripts/ui-check.sh).
lint: deps-build lint-deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
	./scripts/ui-check.sh

# Rebuild the admin console (ui/ → ui/dist/, embedded in the binary; commit
# ui/dist/ with the sources). Needs node 20+ and npm.
ui:
	cd ui && npm ci --no-audit --no-fund && npm run build

# rustfmt and clippy, added to the rustup toolchain when it lacks them.
lint-deps:
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

bench:
	./load-tests/bench.sh
