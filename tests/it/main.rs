//! Every integration test in one binary: the real `sluice` binary on
//! ephemeral ports, mock upstreams, the real MariaDB and Redis. One test
//! crate rather than one per file: a single link, and a test build of
//! under a tenth of the disk (35 binaries of ~300 MB each before). Each
//! module is one topic; `cargo test --test it <module>::` runs one.

// Tests may unwrap, expect and panic (denied in the crates: Cargo.toml).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod admin_api;
mod admin_openapi;
mod admin_validate;
mod anthropic_native;
mod bad_input;
mod bridge;
mod cache;
mod clients;
mod config_sync;
mod console_ui;
mod contract;
mod deploy;
mod dry_run;
mod equivalence;
mod fleet;
mod hardening;
mod history;
mod identity;
mod limits;
mod limits_redis;
mod live_state;
mod metrics_ui;
mod observability;
mod providers;
mod proxy_basics;
mod redaction;
mod redis_cluster;
mod redis_counter;
mod redis_sentinel;
mod routing;
mod sdk_anthropic;
mod sdk_openai;
mod signals;
mod signing;
mod tls;
mod tls_upstream;
mod tracing;
mod upgrade;
mod upstreams;
mod virtual_keys;
