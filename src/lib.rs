//! Sluice: an AI (LLM) API gateway on Cloudflare Pingora.
//!
//! Dependencies point one way, each layer using only those before it
//! (`python3 scripts/module-cycles.py src` checks there is no cycle):
//!
//! 1. `sluice_filters` (pure policy), [`alloc`], [`clock`], [`error`], [`logging`],
//!    [`mock`], [`install`] (the systemd service), [`systemd`] (its
//!    notifications);
//! 2. [`config`] (YAML → typed, validated), [`store`] (config and counter
//!    stores), [`control`] (what others may ask of the config center),
//!    [`tls`] (listeners' certificates);
//! 3. [`live`] (state learned while running, kept across config swaps),
//!    [`cache`] (the response cache's tiers and flights), [`otel`] (trace
//!    spans and their exporter),
//!    [`upstream`] (pools), [`catalog`] (models and deployments),
//!    [`providers`] (wire formats);
//! 4. [`state`] (the compiled snapshot of one config);
//! 5. [`fleet`] (the instances sharing a Redis), [`decision`] (the one
//!    admission decision), [`metrics`],
//!    [`lifecycle`] (signals, drain), [`bridge`] (remote agents' tools; after
//!    [`metrics`] and [`fleet`]);
//! 6. [`proxy`] (Pingora glue for client requests), [`admin`] (the config
//!    center and its API), [`edge`] (every listener's connection loop);
//! 7. [`server`] (wires the services), then `main`.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod alloc;
pub mod bridge;
pub mod cache;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod control;
pub mod decision;
pub mod edge;
pub mod error;
pub mod fleet;
pub mod identity;
pub mod install;
pub mod lifecycle;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod mock;
pub mod otel;
pub mod providers;
pub mod proxy;
pub mod server;
pub mod state;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod upstream;
