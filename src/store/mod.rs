//! Stores behind the gateway: counter stores (Redis) for shared limits, and
//! the config-center entity stores ([`entity_store`]: the file store
//! [`config_file`] and [`mysql`]), with Redis as the config cache and change
//! bus between instances ([`config_bus`]), the history of revisions and
//! the audit log they keep ([`history`]), and the store health `/health`
//! reports ([`status`]); every Redis client is made by [`redis_client`].

pub mod config_bus;
pub mod config_file;
pub mod counter_batch;
pub mod entity_store;
pub mod error;
pub mod file_history;
pub mod history;
pub mod io;
pub mod lazy;
pub mod mysql;
pub mod open;
pub mod redis_client;
pub mod redis_counter;
pub mod status;

pub use error::StoreError;

pub use redis_counter::RedisCounterStore;
