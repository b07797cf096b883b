//! Stores behind the gateway: counter stores (Redis) for shared limits.

pub mod lazy;
pub mod redis_counter;

pub use redis_counter::RedisCounterStore;
