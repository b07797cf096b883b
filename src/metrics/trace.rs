//! Decision traces of recent internal-channel requests, for
//! `GET /internal/v1/debug/trace/{trace_id}`: what the gateway decided for
//! a request (namespace, route or catalog model, the deployment that
//! answered and how many attempts it took, the limits' grant, the status
//! and error code, tokens and cost), kept for the last [`KEEP`] requests
//! of the internal channel on this instance. Only the internal channel is
//! traced: other traffic pays nothing for it.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{LazyLock, Mutex};

/// Traces kept (the oldest is dropped first).
pub const KEEP: usize = 1024;

static TRACES: LazyLock<Mutex<VecDeque<(String, Value)>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(KEEP)));

/// Keeps the trace of request `trace_id`.
pub fn record(trace_id: &str, trace: Value) {
    let mut t = match TRACES.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    if t.len() >= KEEP {
        t.pop_front();
    }
    t.push_back((trace_id.to_string(), trace));
}

/// The trace of request `trace_id`, if this instance still has it.
pub fn find(trace_id: &str) -> Option<Value> {
    let t = match TRACES.lock() {
        Ok(t) => t,
        Err(poisoned) => poisoned.into_inner(),
    };
    t.iter()
        .rev()
        .find(|(id, _)| id == trace_id)
        .map(|(_, v)| v.clone())
}
