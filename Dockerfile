# Multi-stage build: compile with the Rust toolchain, run on a slim image.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY filters ./filters
COPY src ./src
COPY examples ./examples
RUN cargo build --profile optimized --bin sluice

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home sluice
COPY --from=build /src/target/optimized/sluice /usr/local/bin/sluice
COPY conf/sluice.yaml /etc/sluice/sluice.yaml
USER sluice
EXPOSE 8080 8001
ENTRYPOINT ["sluice"]
CMD ["run", "-c", "/etc/sluice/sluice.yaml"]
