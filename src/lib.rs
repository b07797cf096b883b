//! Sluice: an AI (LLM) API gateway on Cloudflare Pingora.
//!
//! Dependencies point one way: `sluice_filters` ← [`config`] ← [`upstream`]
//! ← [`state`] ← [`proxy`], [`admin`], [`metrics`] ← [`server`] ← `main`.

#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod catalog;
pub mod config;
pub mod decision;
pub mod edge;
pub mod error;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod mock;
pub mod providers;
pub mod proxy;
pub mod server;
pub mod state;
pub mod store;
pub mod upstream;
