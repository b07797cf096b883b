//! Checks of the Bridge settings (`bridge:`).

use super::Validator;
use crate::config::Config;

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
}
