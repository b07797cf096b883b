//! Response-cache settings: the process-wide tiers ([`CacheSettings`],
//! `cache:` in the YAML file), a catalog model's opt-in and lifetimes
//! ([`ModelCache`], `models[].cache`) and a namespace's opt-in and policy
//! ([`NamespaceCache`], `namespaces[].cache`, also through the admin API).
//! An answer is cached only when both its model and its namespace opt in.

use super::Secret;
use serde::{Deserialize, Serialize};

/// The cache's tiers: memory in each instance (L1) and, optionally, Redis
/// shared by every instance (L2).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Memory the L1 tier may hold, in MiB of stored answers (size-aware
    /// eviction of the least used). Read at start.
    pub memory_mb: u64,
    /// Largest answer stored, in bytes; larger answers are passed on and
    /// not stored.
    pub max_entry_bytes: usize,
    /// `redis://host:6379/0` of the shared L2 tier; none = memory only.
    /// Read at start.
    pub redis_url: Option<Secret<String>>,
    /// Prefix of the entries' keys in Redis.
    pub key_prefix: String,
    /// Longest wait for one Redis call; past it the request goes on
    /// without L2 (counted).
    pub timeout_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            memory_mb: 64,
            max_entry_bytes: 1 << 20,
            redis_url: None,
            key_prefix: "sluice:cache:".into(),
            timeout_ms: 100,
        }
    }
}

fn default_ttl() -> u64 {
    300
}

/// A catalog model's answers may be cached (`models[].cache`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCache {
    /// Seconds an answer is served from the cache.
    #[serde(default = "default_ttl")]
    pub ttl_s: u64,
    /// Seconds after that an expired answer is still served, marked
    /// `x-cache: stale`, when every deployment of the model fails or its
    /// breakers are open; 0 = never.
    #[serde(default)]
    pub stale_s: u64,
}

fn yes() -> bool {
    true
}

/// A namespace's use of the cache (`namespaces[].cache`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceCache {
    /// Its requests to models that cache are answered from the cache.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Each API key (or issuer subject) has entries of its own; by
    /// default the namespace's callers share them.
    #[serde(default)]
    pub per_key: bool,
    /// Requests that offer tools or carry tool results are cached too.
    #[serde(default)]
    pub tools: bool,
    /// Every chat request is cached, not only those whose output is fixed
    /// by their parameters (`temperature: 0` or a `seed`).
    #[serde(default)]
    pub any_sampling: bool,
    /// Answers from the cache are charged against token and money
    /// budgets as if the model had answered (by default they are free;
    /// rate limits apply either way).
    #[serde(default)]
    pub charge_hits: bool,
    /// Overrides the model's `ttl_s` for this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u64>,
}
