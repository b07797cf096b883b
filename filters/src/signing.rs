//! Request signing for external clients (HMAC-SHA256), as pure functions
//! over the request and a clock reading.
//!
//! A client holding an access key id and its secret sends four headers:
//! `x-sluice-key-id`, `x-sluice-timestamp` (Unix seconds), `x-sluice-nonce`
//! (8 to 128 characters of `[A-Za-z0-9_-]`, never reused) and
//! `x-sluice-signature`: the lower-case hex HMAC-SHA256, keyed by the
//! secret, of the canonical string
//!
//! ```text
//! METHOD \n PATH \n SORTED_QUERY \n TIMESTAMP \n NONCE \n hex(SHA-256(body))
//! ```
//!
//! where `METHOD` is upper case, `PATH` is the request path in normal
//! form (the gateway checks the path it normalised: no `.`/`..`
//! segments, no repeated slashes, unreserved characters not
//! percent-encoded), and `SORTED_QUERY` is the query's `name=value` pairs,
//! percent-decoded, sorted by name then value, and joined with `&` (empty
//! when there is no query). A request is accepted when its timestamp is
//! within the allowed skew of the gateway's clock and the signature
//! matches (compared in constant time); the nonce being unused is the
//! caller's check (the counter store, shared by every instance).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signing headers.
pub const KEY_ID: &str = "x-sluice-key-id";
pub const TIMESTAMP: &str = "x-sluice-timestamp";
pub const NONCE: &str = "x-sluice-nonce";
pub const SIGNATURE: &str = "x-sluice-signature";

/// A signed request's parts.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub body: &'a [u8],
}

/// Why a signed request is refused (401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningError {
    #[error("signed request without the {0} header")]
    Missing(&'static str),
    #[error("{TIMESTAMP} must be Unix seconds")]
    BadTimestamp,
    #[error("{TIMESTAMP} is {0} s away from the gateway's clock (at most {1} s allowed)")]
    Skew(u64, u64),
    #[error("{NONCE} must be 8 to 128 characters of A-Z, a-z, 0-9, _ and -")]
    BadNonce,
    #[error("the signature does not match the request")]
    BadSignature,
}

/// The canonical string of a request (see the module docs).
pub fn canonical(s: &Signed<'_>, timestamp: &str, nonce: &str) -> String {
    let mut pairs: Vec<(String, String)> = s
        .query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    pairs.sort();
    let query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let body_hash = hex::encode(Sha256::digest(s.body));
    format!(
        "{}\n{}\n{query}\n{timestamp}\n{nonce}\n{body_hash}",
        s.method.to_ascii_uppercase(),
        s.path
    )
}

/// The signature of a request with `secret` (what a client sends).
pub fn sign(secret: &[u8], s: &Signed<'_>, timestamp: &str, nonce: &str) -> String {
    mac(secret, &canonical(s, timestamp, nonce))
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// HMAC-SHA256 of `text` keyed by `secret` (HMAC takes a key of any
/// length, so this fails only in theory).
fn mac(secret: &[u8], text: &str) -> Result<Hmac<Sha256>, SigningError> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SigningError::BadSignature)?;
    m.update(text.as_bytes());
    Ok(m)
}

/// Checks a signed request at `now_secs` with `secret`; returns the nonce
/// (for the once-only check).
pub fn verify<'a>(
    s: &Signed<'a>,
    secret: &[u8],
    now_secs: u64,
    max_skew_secs: u64,
) -> Result<&'a str, SigningError> {
    let timestamp = s.timestamp.ok_or(SigningError::Missing(TIMESTAMP))?;
    let nonce = s.nonce.ok_or(SigningError::Missing(NONCE))?;
    let signature = s.signature.ok_or(SigningError::Missing(SIGNATURE))?;
    let ts: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SigningError::BadTimestamp)?;
    let off = ts.abs_diff(now_secs);
    if off > max_skew_secs {
        return Err(SigningError::Skew(off, max_skew_secs));
    }
    let nonce_ok = (8..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !nonce_ok {
        return Err(SigningError::BadNonce);
    }
    let given = hex::decode(signature.trim()).map_err(|_| SigningError::BadSignature)?;
    mac(secret, &canonical(s, timestamp, nonce))?
        .verify_slice(&given)
        .map_err(|_| SigningError::BadSignature)?;
    Ok(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(ts: &'a str, nonce: &'a str, sig: Option<&'a str>) -> Signed<'a> {
        Signed {
            method: "post",
            path: "/v1/chat/completions",
            query: Some("b=2&a=x%20y&a=1"),
            timestamp: Some(ts),
            nonce: Some(nonce),
            signature: sig,
            body: b"{\"model\":\"m\"}",
        }
    }

    #[test]
    fn canonical_string_sorts_and_decodes_the_query() {
        let c = canonical(&req("100", "nonce-123", None), "100", "nonce-123");
        let lines: Vec<&str> = c.split('\n').collect();
        assert_eq!(
            lines[..5],
            [
                "POST",
                "/v1/chat/completions",
                "a=1&a=x y&b=2",
                "100",
                "nonce-123"
            ]
        );
        assert_eq!(lines[5].len(), 64);
    }

    #[test]
    fn accepts_a_good_signature_and_refuses_everything_else() {
        let secret = b"s3cret";
        let good = sign(secret, &req("1000", "nonce-123", None), "1000", "nonce-123");
        assert_eq!(
            verify(&req("1000", "nonce-123", Some(&good)), secret, 1100, 300),
            Ok("nonce-123")
        );
        // Another body, key, time or nonce: refused.
        let mut other = req("1000", "nonce-123", Some(&good));
        other.body = b"{\"model\":\"n\"}";
        assert_eq!(
            verify(&other, secret, 1000, 300),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            verify(&req("1000", "nonce-123", Some(&good)), b"other", 1000, 300),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            verify(&req("1000", "nonce-124", Some(&good)), secret, 1000, 300),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            verify(&req("1000", "nonce-123", Some(&good)), secret, 1301, 300),
            Err(SigningError::Skew(301, 300))
        );
        assert_eq!(
            verify(&req("1000", "nonce-123", Some(&good)), secret, 699, 300),
            Err(SigningError::Skew(301, 300))
        );
        assert_eq!(
            verify(&req("1000", "short", Some(&good)), secret, 1000, 300),
            Err(SigningError::BadNonce)
        );
        assert_eq!(
            verify(&req("soon", "nonce-123", Some(&good)), secret, 1000, 300),
            Err(SigningError::BadTimestamp)
        );
        assert_eq!(
            verify(&req("1000", "nonce-123", Some("zz")), secret, 1000, 300),
            Err(SigningError::BadSignature)
        );
        assert_eq!(
            verify(&req("1000", "nonce-123", None), secret, 1000, 300),
            Err(SigningError::Missing(SIGNATURE))
        );
    }
}
