//! Stores behind the gateway: counter stores (Redis) for shared limits.
