//! Users' passwords: argon2id hashes (PHC strings; the crate's default
//! parameters, m = 19 MiB, t = 2, p = 1, as OWASP recommends), computed
//! off the async threads and at most `auth.login.max_concurrent` at once,
//! so sign-ins cannot take the CPU or memory from the traffic.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// The shortest password accepted.
pub const MIN_LEN: usize = 8;
/// The longest password accepted (bytes): hashing cost does not grow with
/// it, but a bound keeps bodies small.
pub const MAX_LEN: usize = 1024;

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `phc` is an argon2 hash this module can verify.
pub fn is_hash(phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

/// Checks `password` against `phc`; false for a malformed hash.
pub fn verify(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches in practice, checked when the e-mail is
/// unknown so that the answer takes as long as for a known one.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut raw = [0u8; 24];
        let _ = getrandom::fill(&mut raw);
        hash(&hex::encode(raw)).unwrap_or_default()
    })
}

fn permits(max: usize) -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(max.max(1)))
}

/// Checks `password` against `phc` (or against the decoy when there is
/// no user) on a blocking thread, at most `max_concurrent` at once (the
/// first call fixes the bound for the process).
pub async fn check(password: String, phc: Option<String>, max_concurrent: usize) -> bool {
    let Ok(_permit) = permits(max_concurrent).acquire().await else {
        return false;
    };
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| decoy().to_string());
    let ok = tokio::task::spawn_blocking(move || verify(&password, &phc))
        .await
        .unwrap_or(false);
    ok && known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(is_hash(&a));
        assert!(verify("correct horse", &a));
        assert!(!verify("wrong horse", &a));
        assert!(!verify("x", "not a hash"));
        assert!(!is_hash("plain"));
    }
}
