//! API key authentication decisions.
//!
//! A key is accepted from `Authorization: Bearer <key>`, `x-api-key: <key>`,
//! or an operator-configured custom header, in that order. Lookup compares
//! the presented key with every configured key in constant time per key and
//! does not stop at the first hit, so response timing does not reveal how
//! much of a key was right or which entry matched.

use subtle::ConstantTimeEq;

/// The configured keys, each with an opaque index the caller maps to its
/// key record (name, namespace).
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: Vec<Vec<u8>>,
}

impl KeyRing {
    /// Builds a key ring; key `i` is reported as index `i`.
    pub fn new(keys: impl IntoIterator<Item = Vec<u8>>) -> Self {
        KeyRing {
            keys: keys.into_iter().collect(),
        }
    }

    /// The index of the key equal to `presented`, if any.
    pub fn lookup(&self, presented: &[u8]) -> Option<usize> {
        let mut found = None;
        for (i, key) in self.keys.iter().enumerate() {
            // ct_eq on slices of different length is false (length is not
            // secret); equal lengths compare every byte.
            if bool::from(key.as_slice().ct_eq(presented)) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Extracts the presented key from the accepted headers.
///
/// `authorization` is the `Authorization` header; the scheme `Bearer` is
/// matched case-insensitively. Empty keys count as absent.
pub fn extract_key<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
    custom: Option<&'a str>,
) -> Option<&'a str> {
    let bearer = authorization.and_then(|v| {
        let v = v.trim();
        let (scheme, rest) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    [bearer, x_api_key.map(str::trim), custom.map(str::trim)]
        .into_iter()
        .flatten()
        .find(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_from_each_header_in_order() {
        assert_eq!(extract_key(Some("Bearer sk-1"), None, None), Some("sk-1"));
        assert_eq!(
            extract_key(Some("bearer   sk-1 "), None, None),
            Some("sk-1")
        );
        assert_eq!(extract_key(None, Some("sk-2"), None), Some("sk-2"));
        assert_eq!(extract_key(None, None, Some("sk-3")), Some("sk-3"));
        assert_eq!(
            extract_key(Some("Bearer a"), Some("b"), Some("c")),
            Some("a")
        );
        assert_eq!(extract_key(Some("Basic abc"), None, Some("c")), Some("c"));
        assert_eq!(extract_key(Some("Bearer "), Some(""), None), None);
        assert_eq!(extract_key(None, None, None), None);
    }

    #[test]
    fn lookup_finds_exact_keys_only() {
        let ring = KeyRing::new(vec![b"sk-alpha".to_vec(), b"sk-beta".to_vec()]);
        assert_eq!(ring.lookup(b"sk-beta"), Some(1));
        assert_eq!(ring.lookup(b"sk-alpha"), Some(0));
        assert_eq!(ring.lookup(b"sk-alph"), None);
        assert_eq!(ring.lookup(b"sk-alphaa"), None);
        assert_eq!(ring.lookup(b""), None);
        assert_eq!(ring.len(), 2);
    }
}
