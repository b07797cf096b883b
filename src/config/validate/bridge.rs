//! Checks of the Bridge settings (`bridge:`).

use super::Validator;
use crate::config::{Config, ConfigStoreKind, CounterStoreKind};

impl Validator<'_> {
    pub(super) fn bridge(&mut self, c: &Config) {
        let b = &c.bridge;
        if !(1_000..=300_000).contains(&b.ping_ms) {
            self.problem("bridge.ping_ms", "must be between 1000 and 300000");
        }
        if !(60..=366 * 86_400).contains(&b.token_ttl_s) {
            self.problem("bridge.token_ttl_s", "from 60 seconds to 366 days");
        }
        if b.max_agents == 0 || b.max_tools == 0 || b.max_invocations == 0 {
            self.problem(
                "bridge",
                "max_agents, max_tools and max_invocations must be at least 1",
            );
        }
        if b.default_timeout_ms == 0 || b.default_timeout_ms > b.max_timeout_ms {
            self.problem(
                "bridge.default_timeout_ms",
                "must be at least 1 and at most max_timeout_ms",
            );
        }
        if b.max_timeout_ms > 24 * 3_600_000 {
            self.problem("bridge.max_timeout_ms", "at most 24 hours");
        }
        if !(1_024..=64 << 20).contains(&b.max_message_bytes) {
            self.problem("bridge.max_message_bytes", "from 1 KiB to 64 MiB");
        }
        if !(1..=86_400).contains(&b.retention_s) {
            self.problem("bridge.retention_s", "from 1 second to a day");
        }
        for (i, name) in b.token_issuers.iter().enumerate() {
            let known = c.auth.keys.iter().any(|k| &k.name == name)
                || c.virtual_keys.iter().any(|k| &k.name == name);
            if !known {
                self.problem(
                    format!("bridge.token_issuers[{i}]"),
                    format!("no API key is named {name:?}"),
                );
            }
        }
    }

    /// What makes the Bridge useless or open: no way to issue a token, no
    /// authentication, tokens not shared by instances that share a Redis.
    pub(super) fn bridge_warnings(&mut self) {
        let c = self.c;
        if !c.bridge.enabled {
            return;
        }
        if !c.auth.enabled {
            self.problem(
                "bridge.enabled",
                "auth is off: anyone who reaches the proxy listener can list and invoke the agents' tools",
            );
        }
        if c.admin.tokens.is_empty() && c.bridge.token_issuers.is_empty() {
            self.problem(
                "bridge.token_issuers",
                "no admin token and no issuer key: no agent token can be issued, so no agent can connect",
            );
        }
        let shared = c.counters.store == CounterStoreKind::Redis || c.cache.redis_url.is_some();
        if shared && c.config_store.kind == ConfigStoreKind::File {
            self.problem(
                "config_store.kind",
                "the Bridge's agent tokens are kept in each instance's file store: instances sharing a Redis relay invocations, but a token issued by one is unknown to the others (use kind: mysql)",
            );
        }
    }
}
