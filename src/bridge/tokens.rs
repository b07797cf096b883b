//! Agent tokens (`bat_…`): issued by `POST /internal/v1/bridge/agent-token`,
//! presented by an agent opening its tunnel. Only their SHA-256 is stored,
//! as the agent's `agent_tokens` entity with the other entities (file or
//! MySQL store), so every instance knows them once the change reaches it.
//!
//! A token belongs to one agent and one version. `reset: false` issues one
//! more token of the current version (at most [`LIVE`] live at once: the
//! oldest goes); `reset: true` raises the version and drops every token
//! before it. A token is refused once dropped or expired, and a tunnel
//! opened with it closes when the change applies ([`still_valid`]).

use crate::config::{AgentToken, AgentTokenHash, Config};
use crate::store::config_file::Entities;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Prefix of every agent token.
pub const PREFIX: &str = "bat_";
/// Characters after the prefix.
const CHARS: usize = 40;
/// Live tokens of one version at most.
pub const LIVE: usize = 16;
const KIND: &str = "agent_tokens";

/// A new token and its SHA-256 (hex).
pub fn generate() -> Result<(String, String), getrandom::Error> {
    crate::identity::random_secret(PREFIX, CHARS)
}

/// The SHA-256 of a presented token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Records a token (its hash `sha256`, valid until `expires_at`) for
/// `agent_id`; returns the version it belongs to.
pub fn issue_in(
    e: &mut Entities,
    agent_id: &str,
    reset: bool,
    sha256: &str,
    expires_at: u64,
    now: u64,
) -> u64 {
    let i = match e.agent_tokens.iter().position(|t| t.agent_id == agent_id) {
        Some(i) => i,
        None => {
            let id = e.next_id(KIND);
            e.agent_tokens.push(AgentToken {
                id,
                agent_id: agent_id.to_string(),
                version: 0,
                tokens: Vec::new(),
            });
            e.touch(KIND, id, true);
            e.agent_tokens.len() - 1
        }
    };
    let t = &mut e.agent_tokens[i];
    if reset || t.version == 0 {
        t.version += 1;
        t.tokens.clear();
    }
    t.tokens.retain(|h| h.expires_at > now);
    if t.tokens.len() >= LIVE {
        t.tokens.remove(0);
    }
    t.tokens.push(AgentTokenHash {
        sha256: sha256.to_string(),
        expires_at,
    });
    let (id, version) = (t.id, t.version);
    e.touch(KIND, id, false);
    version
}

/// The agent a presented token opens a tunnel for, from the snapshot's
/// map of live tokens (`Snapshot::agent_tokens`): one hash lookup.
pub fn agent_of(live: &HashMap<[u8; 32], (String, u64)>, token: &str, now: u64) -> Option<String> {
    if !token.starts_with(PREFIX) {
        return None;
    }
    live.get(&digest(token))
        .filter(|(_, expires)| *expires > now)
        .map(|(agent, _)| agent.clone())
}

/// Whether a tunnel of `agent_id` opened with the token whose SHA-256 is
/// `sha` may stay open under `config`.
pub fn still_valid(config: &Config, now: u64) -> impl Fn(&str, &[u8; 32]) -> bool + '_ {
    let by_agent: HashMap<&str, &AgentToken> = config
        .agent_tokens
        .iter()
        .map(|t| (t.agent_id.as_str(), t))
        .collect();
    move |agent, sha| {
        let h = hex::encode(sha);
        by_agent
            .get(agent)
            .is_some_and(|t| t.tokens.iter().any(|x| x.expires_at > now && x.sha256 == h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entities() -> Entities {
        serde_json::from_str("{}").unwrap()
    }

    /// The agent and version a token opens for under `c`.
    fn check(c: &Config, token: &str, now: u64) -> Option<(String, u64)> {
        let agent = agent_of(&AgentToken::by_hash(&c.agent_tokens), token, now)?;
        let version = c.agent_tokens.iter().find(|t| t.agent_id == agent)?.version;
        Some((agent, version))
    }

    fn config_of(e: &Entities) -> Config {
        let yaml = "auth: {enabled: false}\nbridge: {enabled: true}\n";
        let mut c = crate::config::load_str(yaml, &|_| None).unwrap();
        c.agent_tokens = e.agent_tokens.clone();
        c
    }

    #[test]
    fn tokens_are_versioned_and_a_reset_drops_the_older_ones() {
        let mut e = entities();
        let (t1, h1) = generate().unwrap();
        assert!(t1.starts_with("bat_") && t1.len() == 44);
        assert_eq!(issue_in(&mut e, "a1", false, &h1, 1_000, 0), 1);
        let (t2, h2) = generate().unwrap();
        assert_eq!(issue_in(&mut e, "a1", false, &h2, 1_000, 0), 1);
        let c = config_of(&e);
        assert_eq!(check(&c, &t1, 10), Some(("a1".into(), 1)));
        assert_eq!(check(&c, &t2, 10), Some(("a1".into(), 1)));
        assert_eq!(check(&c, &t1, 1_000), None, "expired");
        assert_eq!(check(&c, "bat_nope", 10), None);
        let (t3, h3) = generate().unwrap();
        assert_eq!(issue_in(&mut e, "a1", true, &h3, 1_000, 0), 2);
        let c = config_of(&e);
        assert_eq!(check(&c, &t1, 10), None);
        assert_eq!(check(&c, &t3, 10), Some(("a1".into(), 2)));
        let valid = still_valid(&c, 10);
        assert!(!valid("a1", &digest(&t2)));
        assert!(valid("a1", &digest(&t3)));
        assert!(!valid("a2", &digest(&t3)));
    }

    #[test]
    fn at_most_live_tokens_per_version() {
        let mut e = entities();
        let mut first = None;
        for _ in 0..=LIVE {
            let (t, h) = generate().unwrap();
            first.get_or_insert(t);
            issue_in(&mut e, "a", false, &h, 100, 0);
        }
        assert_eq!(e.agent_tokens[0].tokens.len(), LIVE);
        assert_eq!(check(&config_of(&e), first.as_deref().unwrap(), 1), None);
    }
}
