//! Stores behind the gateway: counter stores (Redis) for shared limits, and
//! the config-center entity store ([`config_file`]).

pub mod config_file;
pub mod lazy;
pub mod redis_counter;

pub use redis_counter::RedisCounterStore;
