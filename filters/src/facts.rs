//! The request as policy sees it. Built once per request in `request_filter`
//! and handed to matchers and routers; borrowing only, no copies of the body.

use serde_json::Value;
use std::borrow::Cow;

/// Header access by name. Names are matched case-insensitively by the
/// implementation (HTTP header names are case-insensitive).
pub trait HeaderLookup: Sync {
    /// The first value of header `name`, if present and valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
}

/// A plain list of `(name, value)` pairs; used by tests and by the admin
/// API's "validate this request" endpoints.
impl HeaderLookup for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Everything a matcher or a proxy rule may look at.
pub struct RequestFacts<'a> {
    /// HTTP method, upper case as sent (`GET`, `POST`).
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// Raw query string without the `?`, if any.
    pub query: Option<&'a str>,
    /// Request headers.
    pub headers: &'a dyn HeaderLookup,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<&'a Value>,
    /// The raw body bytes (empty when there was none).
    pub raw_body: &'a [u8],
}

impl<'a> RequestFacts<'a> {
    /// The percent-decoded value of query parameter `name` (first occurrence).
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(self.query?, name)
    }

    /// The value at a dotted path in the JSON body (`model`,
    /// `metadata.user`, `messages.0.role`), rendered as text: strings as
    /// themselves, numbers and booleans in JSON form, objects and arrays as
    /// compact JSON.
    ///
    /// A string is borrowed from the body (matchers run on every request).
    pub fn body_field(&self, path: &str) -> Option<Cow<'a, str>> {
        let mut node = self.body?;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            node = match node {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(match node {
            Value::String(s) => Cow::Borrowed(s.as_str()),
            Value::Null => return None,
            other => Cow::Owned(other.to_string()),
        })
    }
}

/// The value of parameter `name` in query string `query` (first
/// occurrence), decoded as `application/x-www-form-urlencoded`
/// (`form_urlencoded`: `%XX` escapes, `+` as space; invalid escapes kept,
/// invalid UTF-8 replaced). The one query decoder of the gateway.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        query: Option<&'a str>,
        headers: &'a Vec<(String, String)>,
        body: Option<&'a Value>,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method: "POST",
            path: "/v1/chat/completions",
            query,
            headers,
            body,
            raw_body: b"",
        }
    }

    #[test]
    fn query_params_are_decoded() {
        let h: Vec<(String, String)> = vec![];
        let f = facts(Some("a=1&model=gpt%2D4o+mini&flag"), &h, None);
        assert_eq!(f.query_param("model").as_deref(), Some("gpt-4o mini"));
        assert_eq!(f.query_param("flag").as_deref(), Some(""));
        assert_eq!(f.query_param("missing"), None);
    }

    #[test]
    fn bad_escapes_are_kept() {
        assert_eq!(query_param("a=100%", "a").as_deref(), Some("100%"));
        assert_eq!(query_param("a=%zz%41", "a").as_deref(), Some("%zzA"));
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
    }

    #[test]
    fn body_fields_follow_dotted_paths() {
        let body = serde_json::json!({"model":"gpt-4o","max_tokens":64,"stream":true,
            "messages":[{"role":"user"}],"metadata":{"tier":"gold"},"n":null});
        let h: Vec<(String, String)> = vec![];
        let f = facts(None, &h, Some(&body));
        assert_eq!(f.body_field("model").as_deref(), Some("gpt-4o"));
        assert_eq!(f.body_field("max_tokens").as_deref(), Some("64"));
        assert_eq!(f.body_field("stream").as_deref(), Some("true"));
        assert_eq!(f.body_field("messages.0.role").as_deref(), Some("user"));
        assert_eq!(f.body_field("metadata.tier").as_deref(), Some("gold"));
        assert_eq!(f.body_field("metadata.none"), None);
        assert_eq!(f.body_field("n"), None);
    }

    #[test]
    fn header_lookup_ignores_case() {
        let h = vec![("X-Tenant".to_string(), "acme".to_string())];
        assert_eq!(h.header("x-tenant"), Some("acme"));
    }
}
