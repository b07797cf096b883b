//! Identities beyond API keys: users who sign in (`POST
//! /api/v1/auth/login`) and hold the access and refresh tokens the gateway
//! issues ([`tokens`], [`login`], [`password`]), and callers holding JWTs
//! of external identity providers verified against their JWKS
//! ([`issuers`], [`jwks`]).
//!
//! [`Identities`] is compiled with every snapshot. Each active user and
//! each issuer has a key record in `Snapshot::keys` (named `user:ID` and
//! `jwt:NAME`), so metrics, the access log, the decision trace and limit
//! rules keyed by `api_key` treat them like keys; an issuer's callers are
//! told apart by their subject ([`Caller::subject`]).

pub mod issuers;
pub mod jwks;
pub mod login;
pub mod password;
pub mod tokens;

use crate::config::{Config, Problem};
use crate::error::GatewayError;
use std::collections::HashMap;

/// Who made a request, once authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// Index into `Snapshot::keys`: a YAML or virtual key, a user or an
    /// issuer; none when auth is off.
    pub key: Option<usize>,
    /// An external issuer's `sub`: callers of one issuer share its key
    /// record and are told apart by this.
    pub subject: Option<String>,
    /// The namespace a token's claim names (index into
    /// `Snapshot::namespaces`), over the key record's.
    pub namespace: Option<usize>,
}

impl Caller {
    /// A caller known by a key record alone.
    pub fn key(index: usize) -> Caller {
        Caller {
            key: Some(index),
            ..Caller::default()
        }
    }
}

/// The identities of one snapshot, compiled.
#[derive(Default)]
pub struct Identities {
    /// The gateway's own tokens (`auth.jwt`).
    pub tokens: Option<tokens::TokenKeys>,
    /// Active users by lower-case e-mail → index into `Config::users`.
    pub by_email: HashMap<String, usize>,
    /// Active users by id → (index into `Config::users`, key index).
    pub by_id: HashMap<u64, (usize, usize)>,
    /// External issuers (`auth.issuers`).
    pub issuers: Vec<issuers::IssuerRt>,
}

impl Identities {
    /// Compiles the identities of `config`; `first_key` is the index the
    /// first user's key record gets (users, then issuers, follow the
    /// keys).
    pub fn build(config: &Config, first_key: usize, problems: &mut Vec<Problem>) -> Identities {
        let tokens = config
            .auth
            .jwt
            .as_ref()
            .and_then(|j| match tokens::TokenKeys::new(j) {
                Ok(t) => Some(t),
                Err(e) => {
                    problems.push(Problem::new("auth.jwt", e));
                    None
                }
            });
        let mut by_email = HashMap::new();
        let mut by_id = HashMap::new();
        for (i, (index, u)) in active_users(config).enumerate() {
            by_email.insert(u.email.to_ascii_lowercase(), index);
            by_id.insert(u.id, (index, first_key + i));
        }
        // A JWKS file is read with the first snapshot that names it (and
        // refreshed in the background like a URL).
        for (i, c) in config.auth.issuers.iter().enumerate() {
            if let (None, Some(path)) = (&c.jwks_url, &c.jwks_file) {
                if jwks::keys(path).is_none() {
                    if let Err(e) = jwks::load_file(path) {
                        problems.push(Problem::new(format!("auth.issuers[{i}].jwks_file"), e));
                    }
                }
            }
        }
        let first_issuer = first_key + by_id.len();
        let issuers = config
            .auth
            .issuers
            .iter()
            .enumerate()
            .map(|(i, c)| issuers::IssuerRt::new(c, first_issuer + i))
            .collect();
        Identities {
            tokens,
            by_email,
            by_id,
            issuers,
        }
    }

    /// Whether a bearer credential should be read as a JWT: three
    /// base64url segments, and something here verifies JWTs.
    pub fn takes(&self, presented: &str) -> bool {
        (self.tokens.is_some() || !self.issuers.is_empty())
            && presented.starts_with("eyJ")
            && presented.bytes().filter(|b| *b == b'.').count() == 2
    }

    /// Authenticates a bearer JWT: one of the gateway's access tokens
    /// (its user active and the token of the user's current version) or
    /// a token of an external issuer.
    pub fn authenticate(
        &self,
        config: &Config,
        token: &str,
        namespace_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Caller, GatewayError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| GatewayError::Unauthorized("invalid token".into()))?;
        if let Some(own) = self.tokens.as_ref().filter(|t| t.signs(&header)) {
            let claims = own
                .verify(token, &header, tokens::Kind::Access)
                .map_err(GatewayError::Unauthorized)?;
            let (_, key) = self.user(config, &claims)?;
            return Ok(Caller::key(key));
        }
        issuers::authenticate(&self.issuers, token, &header, namespace_of)
    }

    /// The active user a token names, at the version it was issued for.
    pub fn user<'c>(
        &self,
        config: &'c Config,
        claims: &tokens::Claims,
    ) -> Result<(&'c crate::config::User, usize), GatewayError> {
        let refused = || GatewayError::Unauthorized("this token is no longer valid".into());
        let id: u64 = claims.sub.parse().map_err(|_| refused())?;
        let &(index, key) = self.by_id.get(&id).ok_or_else(refused)?;
        let user = config.users.get(index).ok_or_else(refused)?;
        if user.token_version != claims.ver {
            return Err(refused());
        }
        Ok((user, key))
    }
}

/// The active users with their index in `Config::users`, in key order.
pub fn active_users(config: &Config) -> impl Iterator<Item = (usize, &crate::config::User)> + '_ {
    config.users.iter().enumerate().filter(|(_, u)| u.is_active)
}

/// The key record name of a user.
pub fn user_key_name(id: u64) -> String {
    format!("user:{id}")
}

/// The key record name of an external issuer.
pub fn issuer_key_name(name: &str) -> String {
    format!("jwt:{name}")
}

/// A new secret from the operating system's generator: `prefix` and
/// `chars` letters and digits, each equally likely; with its SHA-256 (hex).
pub fn random_secret(prefix: &str, chars: usize) -> Result<(String, String), getrandom::Error> {
    use sha2::{Digest, Sha256};
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::from(prefix);
    let mut pool: Vec<u8> = Vec::new();
    // 256 = 4 × 62 + 8: bytes of 248 and above are redrawn.
    while out.len() < prefix.len() + chars {
        let Some(b) = pool.pop() else {
            let mut more = vec![0u8; chars.max(16)];
            getrandom::fill(&mut more)?;
            pool.extend_from_slice(&more);
            continue;
        };
        if b < 248 {
            out.push(char::from(ALPHABET[usize::from(b % 62)]));
        }
    }
    let hash = hex::encode(Sha256::digest(out.as_bytes()));
    Ok((out, hash))
}
