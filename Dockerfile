# The gateway's container image: `docker build -t sluice .`
# Build stage: dependencies first (a layer that changes only with Cargo.lock),
# then the sources; the `optimized` profile (fat LTO), stripped.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY filters/Cargo.toml filters/
RUN mkdir -p src filters/src examples filters/examples \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs filters/src/lib.rs \
    && echo 'fn main() {}' > examples/bare_pingora.rs \
    && echo 'fn main() {}' > filters/examples/meter_bench.rs \
    && echo 'fn main() {}' > filters/examples/token_bench.rs \
    && cargo build --profile optimized --bin sluice \
    && rm -rf src filters/src
COPY filters ./filters
COPY src ./src
COPY examples ./examples
RUN touch src/main.rs src/lib.rs filters/src/lib.rs \
    && cargo build --profile optimized --bin sluice \
    && strip target/optimized/sluice

# Run stage: Debian slim, a non-root user, state on a volume.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --home-dir /var/lib/sluice sluice \
    && mkdir -p /var/lib/sluice /etc/sluice && chown sluice /var/lib/sluice
COPY --from=build /src/target/optimized/sluice /usr/local/bin/sluice
# Addresses and credentials from the environment (deploy/compose/env.example).
COPY deploy/sluice.yaml /etc/sluice/sluice.yaml
ENV SLUICE_STATE_DIR=/var/lib/sluice \
    SLUICE_LISTEN_PROXY=0.0.0.0:8080 \
    SLUICE_LISTEN_ADMIN=0.0.0.0:8001
VOLUME ["/var/lib/sluice"]
USER sluice
EXPOSE 8080 8001
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
    CMD ["sluice", "health", "http://127.0.0.1:8080/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["sluice"]
CMD ["run", "-c", "/etc/sluice/sluice.yaml"]
