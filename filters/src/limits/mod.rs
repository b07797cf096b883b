//! Rate, concurrency and token limits: rule configs, the counter store
//! contract and its in-process implementation, and the per-request plan
//! (which checks a request runs, what the answer means).

pub mod store;
