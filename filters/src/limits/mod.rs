//! Rate, concurrency and token limits: rule configs ([`rules`]), the counter
//! store contract ([`store`]) and its in-process implementation ([`local`]),
//! the per-request plan ([`plan`](mod@plan): which checks a request runs, what the
//! store's answer means, what to settle afterwards), and what the shared
//! store last left of each `local_share` limit ([`seen`]).

pub mod local;
pub mod plan;
pub mod rules;
pub mod seen;
pub mod store;

#[cfg(test)]
mod test_support;

pub use local::LocalCounterStore;
pub use plan::{plan, Decision, Denial, LimitPlan, PlanSettings, RequestView, Reservation, Rule};
pub use rules::{
    ConcurrencyConfig, FailMode, KeyBy, RateAlgorithm, RateLimitConfig, RuleConfig,
    TokenLimitConfig,
};
pub use seen::SeenRemaining;
pub use store::{
    Admission, Check, CheckStatus, Clock, CounterStore, Settle, StoreError, SystemClock,
};
