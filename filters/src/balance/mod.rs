//! Deployment selection and resilience for upstream pools with several
//! deployments (providers, regions, keys) of one model: which deployment a
//! request goes to, in which order the others are tried on failure, and when
//! a failing deployment is taken out of rotation. Called from
//! `upstream_peer` (selection, breaker admission) and `logging` (outcomes).
//!
//! - [`breaker`]: per-deployment circuit breaker (closed → open → half-open).
//! - [`stats`]: per-arm statistics (trials, success rates, TTFB EWMA).
//! - [`fleet`]: the other instances' figures merged, and folded into an
//!   instance's own decision.
//! - [`strategy`]: the selection strategies, [`strategy::select`] and
//!   [`strategy::order`].
//! - [`report`]: the internal channel's bandit report (`GET /internal/v1/bandit/report`).
//! - [`retry`]: the backoff before a retry (exponential, jittered, capped).
//! - [`rng`]: the seeded PRNG behind the bandit.
//!
//! All of it is plain data and pure functions: time is passed in as
//! `now_ms`, randomness comes from a seeded [`rng::Rng`], and the gateway
//! owns the locking.

pub mod breaker;
pub mod fleet;
pub mod report;
pub mod retry;
pub mod rng;
pub mod stats;
pub mod strategy;

pub use breaker::{Breaker, BreakerConfig, BreakerState};
pub use fleet::{merge_peers, FleetView, Published};
pub use report::{build_report, ArmLabels, BanditReport, ReportFilter, ReportItem, ReportSummary};
pub use retry::retry_backoff_ms;
pub use rng::Rng;
pub use stats::{ArmStats, StatsConfig};
pub use strategy::{order, select, Candidate, ScoreWeights, SelectState, Strategy, StrategyConfig};
