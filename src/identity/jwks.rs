//! The signing keys of external issuers: JWKS documents read from a file
//! or fetched from a URL, kept per source for the whole process (a config
//! change keeps them), refreshed in the background every `refresh_s`, and
//! sooner (at most every [`MIN_REFETCH_S`]) when a token names a key id the
//! cached set lacks — how an issuer's key rotation shows up.
//!
//! A key's algorithm comes from the key (its `alg`, or its type and curve),
//! never from the token, so a token cannot pick a weaker check.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

/// Sooner than this after a fetch, an unknown key id does not fetch again.
pub const MIN_REFETCH_S: u64 = 30;
/// The largest JWKS document read.
const MAX_BYTES: usize = 1 << 20;

/// One issuer's keys.
pub struct KeySet {
    /// By `kid`; keys without one are under "".
    keys: HashMap<String, (Algorithm, DecodingKey)>,
}

impl KeySet {
    /// The key a token's `kid` names (none given: the set's only key).
    pub fn find(&self, kid: Option<&str>) -> Option<&(Algorithm, DecodingKey)> {
        match kid {
            Some(k) => self.keys.get(k),
            None if self.keys.len() == 1 => self.keys.values().next(),
            None => None,
        }
    }
}

/// What the process knows about one source.
#[derive(Default)]
struct Entry {
    keys: Option<Arc<KeySet>>,
    /// Unix seconds of the last attempt, and whether it failed.
    tried_at: u64,
    failed: Option<String>,
    /// A token named a key id the set lacks.
    wanted: bool,
}

static CACHE: LazyLock<RwLock<HashMap<String, Entry>>> = LazyLock::new(Default::default);

fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        use jsonwebtoken::jwk::KeyAlgorithm as K;
        return match alg {
            K::RS256 => Some(Algorithm::RS256),
            K::RS384 => Some(Algorithm::RS384),
            K::RS512 => Some(Algorithm::RS512),
            K::PS256 => Some(Algorithm::PS256),
            K::PS384 => Some(Algorithm::PS384),
            K::PS512 => Some(Algorithm::PS512),
            K::ES256 => Some(Algorithm::ES256),
            K::ES384 => Some(Algorithm::ES384),
            K::EdDSA => Some(Algorithm::EdDSA),
            // Shared-secret keys have no place in a public key set.
            _ => None,
        };
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        AlgorithmParameters::OctetKey(_) => None,
    }
}

/// Parses a JWKS document; keys it cannot use (secret keys, unknown
/// curves, keys for encryption) are left out; none left is an error.
pub fn parse(bytes: &[u8]) -> Result<KeySet, String> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            continue;
        }
        let (Some(alg), Ok(key)) = (algorithm_of(jwk), DecodingKey::from_jwk(jwk)) else {
            continue;
        };
        keys.insert(jwk.common.key_id.clone().unwrap_or_default(), (alg, key));
    }
    if keys.is_empty() {
        return Err("the JWKS document holds no usable signing key".into());
    }
    Ok(KeySet { keys })
}

fn store(source: &str, outcome: Result<KeySet, String>) -> Result<(), String> {
    let now = crate::clock::unix_secs();
    let mut cache = CACHE.write().unwrap_or_else(|p| p.into_inner());
    let entry = cache.entry(source.to_string()).or_default();
    entry.tried_at = now;
    entry.wanted = false;
    match outcome {
        Ok(set) => {
            entry.keys = Some(Arc::new(set));
            entry.failed = None;
            Ok(())
        }
        Err(e) => {
            entry.failed = Some(e.clone());
            Err(e)
        }
    }
}

/// The keys of `source` (a file path or URL), when loaded.
pub fn keys(source: &str) -> Option<Arc<KeySet>> {
    let cache = CACHE.read().unwrap_or_else(|p| p.into_inner());
    cache.get(source).and_then(|e| e.keys.clone())
}

/// Asks for an early refresh of `source` (a token named an unknown key).
pub fn want(source: &str) {
    let mut cache = CACHE.write().unwrap_or_else(|p| p.into_inner());
    cache.entry(source.to_string()).or_default().wanted = true;
}

/// Whether `source` is due: never tried, its interval passed, or wanted
/// and the last attempt at least [`MIN_REFETCH_S`] ago; a failed attempt
/// is retried after [`MIN_REFETCH_S`].
fn due(source: &str, refresh_s: u64, now: u64) -> bool {
    let cache = CACHE.read().unwrap_or_else(|p| p.into_inner());
    match cache.get(source) {
        None => true,
        Some(e) => {
            let since = now.saturating_sub(e.tried_at);
            since >= refresh_s.max(1)
                || ((e.wanted || e.failed.is_some()) && since >= MIN_REFETCH_S)
        }
    }
}

/// Reads a JWKS file now.
pub fn load_file(path: &str) -> Result<(), String> {
    let outcome = std::fs::read(path)
        .map_err(|e| format!("{path}: {e}"))
        .and_then(|b| {
            if b.len() > MAX_BYTES {
                Err(format!("{path}: larger than {MAX_BYTES} bytes"))
            } else {
                parse(&b).map_err(|e| format!("{path}: {e}"))
            }
        });
    store(path, outcome)
}

/// Fetches a JWKS URL now (5 s timeout, 1 MiB at most).
pub async fn fetch(url: &str) -> Result<(), String> {
    let outcome = async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("answered {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BYTES {
                return Err(format!("larger than {MAX_BYTES} bytes"));
            }
        }
        parse(&body)
    }
    .await
    .map_err(|e| format!("{url}: {e}"));
    store(url, outcome)
}

/// One round over the issuers of `rt`: every due source is read or
/// fetched. Failures are logged; the keys already held stay in use.
pub async fn refresh(rt: &crate::state::Snapshot) {
    let now = crate::clock::unix_secs();
    for issuer in &rt.config.auth.issuers {
        if let Some(url) = &issuer.jwks_url {
            if due(url, issuer.refresh_s, now) {
                if let Err(e) = fetch(url).await {
                    log::warn!("auth.issuers {}: JWKS fetch failed: {e}", issuer.name);
                }
            }
        }
        if let Some(path) = &issuer.jwks_file {
            if due(path, issuer.refresh_s, now) {
                if let Err(e) = load_file(path) {
                    log::warn!("auth.issuers {}: JWKS file: {e}", issuer.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_and_empty_sets_are_refused() {
        let oct = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#;
        assert!(parse(oct).is_err());
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
    }
}
