//! Where a request goes: admin API proxy rules, then prefix routes.
//!
//! Proxy rules are evaluated first, in ascending `priority` (ties by id);
//! a rule applies when every pattern it sets matches (`path_pattern`,
//! `method_pattern` and the value part of `header_pattern` are anchored full
//! matches; `body_pattern` searches the raw body) and its namespace, if set,
//! is the request's. When no proxy rule applies, the longest prefix route
//! whose prefix ends on a path-segment boundary wins.

use crate::facts::RequestFacts;
use crate::pattern::Pattern;
use regex::bytes::Regex as BytesRegex;

/// The plain description of a proxy rule.
#[derive(Debug, Clone, Default)]
pub struct ProxyRuleSpec {
    pub id: u64,
    pub priority: i64,
    /// Only requests of this namespace (index); `None` = any namespace.
    pub namespace: Option<usize>,
    /// Target (index of an upstream pool).
    pub target: usize,
    pub path_pattern: Option<String>,
    pub method_pattern: Option<String>,
    /// `header-name:value-regex`.
    pub header_pattern: Option<String>,
    pub body_pattern: Option<String>,
}

/// A proxy rule with its patterns compiled.
#[derive(Debug)]
pub struct CompiledProxyRule {
    pub id: u64,
    pub priority: i64,
    pub namespace: Option<usize>,
    pub target: usize,
    path: Option<Pattern>,
    method: Option<Pattern>,
    header: Option<(String, Pattern)>,
    body: Option<BytesRegex>,
}

/// A whole-string pattern, as `Regex::new(&format!("^(?:{pattern})$"))`.
fn anchored(field: &str, pattern: &str) -> Result<Pattern, String> {
    Pattern::full(pattern).map_err(|e| format!("{field} is not a valid regex: {e}"))
}

impl CompiledProxyRule {
    /// Compiles a rule; the error names the bad field.
    pub fn compile(spec: &ProxyRuleSpec) -> Result<Self, String> {
        let nonempty = |p: &Option<String>| p.as_ref().filter(|s| !s.trim().is_empty()).cloned();
        let header = match nonempty(&spec.header_pattern) {
            None => None,
            Some(h) => {
                let (name, value) = h.split_once(':').ok_or_else(|| {
                    format!("header_pattern must be `name:value-regex`, got {h:?}")
                })?;
                let name = name.trim();
                if name.is_empty() {
                    return Err("header_pattern has an empty header name".into());
                }
                Some((
                    name.to_ascii_lowercase(),
                    anchored("header_pattern", value.trim())?,
                ))
            }
        };
        Ok(CompiledProxyRule {
            id: spec.id,
            priority: spec.priority,
            namespace: spec.namespace,
            target: spec.target,
            path: nonempty(&spec.path_pattern)
                .map(|p| anchored("path_pattern", &p))
                .transpose()?,
            method: nonempty(&spec.method_pattern)
                .map(|p| anchored("method_pattern", &p))
                .transpose()?,
            header,
            body: nonempty(&spec.body_pattern)
                .map(|p| {
                    BytesRegex::new(&p)
                        .map_err(|e| format!("body_pattern is not a valid regex: {e}"))
                })
                .transpose()?,
        })
    }

    /// Whether the rule applies to this request in namespace `namespace`.
    pub fn matches(&self, facts: &RequestFacts<'_>, namespace: usize) -> bool {
        self.namespace.is_none_or(|ns| ns == namespace)
            && self.path.as_ref().is_none_or(|re| re.is_match(facts.path))
            && self
                .method
                .as_ref()
                .is_none_or(|re| re.is_match(facts.method))
            && self
                .header
                .as_ref()
                .is_none_or(|(name, re)| facts.headers.header(name).is_some_and(|v| re.is_match(v)))
            && self.body.as_ref().is_none_or(|re| match facts.body {
                // JSON is searched in one canonical spelling (keys sorted,
                // no insignificant whitespace, standard escapes), so that
                // `"model":"\u0073pecial"` or reordered keys decide the
                // same as the plain spelling.
                Some(v) => serde_json::to_vec(v).is_ok_and(|text| re.is_match(&text)),
                None => re.is_match(facts.raw_body),
            })
    }
}

/// A prefix route: requests under `prefix` go to `target`.
#[derive(Debug, Clone)]
pub struct PrefixRoute {
    pub prefix: String,
    pub target: usize,
    /// Remove the prefix from the path sent upstream.
    pub strip_prefix: bool,
    /// Only requests of this namespace (index); `None` = any namespace.
    pub namespace: Option<usize>,
    /// The route's own cap on requests in flight (per API key), which
    /// replaces the servers' `max_connections`; `None` = the servers'.
    pub max_concurrency: Option<u64>,
}

/// Normalises a prefix: leading `/`, no trailing `/` (except for `/` itself).
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// Whether `path` lies under `prefix` on a segment boundary (`/v1` covers
/// `/v1` and `/v1/models`, not `/v10`).
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The path to send upstream after stripping `prefix` (always starts with `/`).
pub fn strip_prefix(path: &str, prefix: &str) -> String {
    if prefix == "/" {
        return path.to_string();
    }
    match path.strip_prefix(prefix) {
        Some(rest) if rest.starts_with('/') => rest.to_string(),
        Some(_) | None => "/".to_string(),
    }
}

/// The outcome of routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch {
    /// A proxy rule applied.
    ProxyRule { rule: u64, target: usize },
    /// A prefix route applied; `path` is what to send upstream.
    Prefix {
        index: usize,
        target: usize,
        path: Option<String>,
    },
}

impl RouteMatch {
    /// A stable label for limits and logs: `rule:<id>` or the route's prefix.
    pub fn label(&self, router: &Router) -> String {
        match self {
            RouteMatch::ProxyRule { rule, .. } => format!("rule:{rule}"),
            RouteMatch::Prefix { index, .. } => router
                .prefixes
                .get(*index)
                .map_or_else(|| format!("prefix:{index}"), |p| p.prefix.clone()),
        }
    }

    /// The upstream pool the request goes to.
    pub fn target(&self) -> usize {
        match self {
            RouteMatch::ProxyRule { target, .. } | RouteMatch::Prefix { target, .. } => *target,
        }
    }
}

/// Proxy rules and prefix routes, ready to evaluate.
#[derive(Debug, Default)]
pub struct Router {
    rules: Vec<CompiledProxyRule>,
    /// Prefix routes, longest prefix first.
    prefixes: Vec<PrefixRoute>,
}

impl Router {
    /// The prefix route a [`RouteMatch::Prefix`] names.
    pub fn prefix(&self, index: usize) -> Option<&PrefixRoute> {
        self.prefixes.get(index)
    }

    /// Builds a router; inactive rules must already be left out.
    pub fn new(mut rules: Vec<CompiledProxyRule>, prefixes: Vec<PrefixRoute>) -> Self {
        rules.sort_by_key(|r| (r.priority, r.id));
        let mut prefixes: Vec<PrefixRoute> = prefixes
            .into_iter()
            .map(|mut p| {
                p.prefix = normalize_prefix(&p.prefix);
                p
            })
            .collect();
        // Longest first; a namespace-specific route before a general one of
        // the same prefix. The sort is stable so config order breaks ties.
        prefixes.sort_by_key(|p| (std::cmp::Reverse(p.prefix.len()), p.namespace.is_none()));
        Router { rules, prefixes }
    }

    /// Routes a request of namespace `namespace`.
    pub fn route(&self, facts: &RequestFacts<'_>, namespace: usize) -> Option<RouteMatch> {
        if let Some(rule) = self.rules.iter().find(|r| r.matches(facts, namespace)) {
            return Some(RouteMatch::ProxyRule {
                rule: rule.id,
                target: rule.target,
            });
        }
        self.prefixes
            .iter()
            .enumerate()
            .find(|(_, p)| {
                p.namespace.is_none_or(|ns| ns == namespace) && under_prefix(facts.path, &p.prefix)
            })
            .map(|(index, p)| RouteMatch::Prefix {
                index,
                target: p.target,
                path: p.strip_prefix.then(|| strip_prefix(facts.path, &p.prefix)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        method: &'a str,
        path: &'a str,
        h: &'a Vec<(String, String)>,
        body: &'a [u8],
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            path,
            query: None,
            headers: h,
            body: None,
            raw_body: body,
        }
    }

    fn prefix(p: &str, target: usize, strip: bool) -> PrefixRoute {
        PrefixRoute {
            prefix: p.into(),
            target,
            strip_prefix: strip,
            namespace: None,
            max_concurrency: None,
        }
    }

    #[test]
    fn longest_prefix_on_segment_boundary() {
        let r = Router::new(
            vec![],
            vec![
                prefix("/", 0, false),
                prefix("/v1", 1, false),
                prefix("/v1/chat/", 2, false),
            ],
        );
        let h = vec![];
        let target = |p: &str| r.route(&facts("GET", p, &h, b""), 0).map(|m| m.target());
        assert_eq!(target("/v1/chat/completions"), Some(2));
        assert_eq!(target("/v1/chat"), Some(2));
        assert_eq!(target("/v1/chatter"), Some(1));
        assert_eq!(target("/v10/models"), Some(0));
        assert_eq!(target("/v1"), Some(1));
        let no_root = Router::new(vec![], vec![prefix("/v1", 1, false)]);
        assert_eq!(no_root.route(&facts("GET", "/v2", &h, b""), 0), None);
    }

    #[test]
    fn strip_prefix_keeps_a_leading_slash() {
        assert_eq!(strip_prefix("/openai/v1/models", "/openai"), "/v1/models");
        assert_eq!(strip_prefix("/openai", "/openai"), "/");
        assert_eq!(strip_prefix("/x", "/"), "/x");
        let r = Router::new(vec![], vec![prefix("/openai/", 0, true)]);
        let h = vec![];
        assert_eq!(
            r.route(&facts("GET", "/openai/v1/models", &h, b""), 0),
            Some(RouteMatch::Prefix {
                index: 0,
                target: 0,
                path: Some("/v1/models".into())
            })
        );
    }

    #[test]
    fn proxy_rules_before_prefixes_in_priority_order() {
        let rule = |id, priority, target, f: fn(&mut ProxyRuleSpec)| {
            let mut s = ProxyRuleSpec {
                id,
                priority,
                target,
                ..Default::default()
            };
            f(&mut s);
            CompiledProxyRule::compile(&s).unwrap()
        };
        let r = Router::new(
            vec![
                rule(1, 50, 1, |s| s.path_pattern = Some("/v1/.*".into())),
                rule(2, 10, 2, |s| {
                    s.header_pattern = Some("x-tenant: ent.*".into())
                }),
                rule(3, 5, 3, |s| s.method_pattern = Some("DELETE|PATCH".into())),
                rule(4, 1, 4, |s| {
                    s.body_pattern = Some("\"model\":\\s*\"claude".into())
                }),
                rule(5, 0, 5, |s| s.namespace = Some(7)),
            ],
            vec![prefix("/", 0, false)],
        );
        let plain = vec![];
        let ent = vec![("X-Tenant".to_string(), "enterprise".to_string())];
        let t = |m: &str, p: &str, h: &Vec<(String, String)>, b: &[u8], ns| {
            r.route(&facts(m, p, h, b), ns).map(|x| x.target())
        };
        assert_eq!(t("POST", "/v1/chat", &plain, b"", 0), Some(1));
        assert_eq!(t("POST", "/v1/chat", &ent, b"", 0), Some(2));
        assert_eq!(t("DELETE", "/v1/chat", &ent, b"", 0), Some(3));
        assert_eq!(
            t("POST", "/v1/chat", &ent, br#"{"model": "claude-3"}"#, 0),
            Some(4)
        );
        assert_eq!(t("POST", "/v1/chat", &plain, b"", 7), Some(5));
        assert_eq!(t("GET", "/other", &plain, b"", 0), Some(0));
        // method patterns are anchored: "POST" must not match "POSTX"
        let anchored = Router::new(
            vec![rule(1, 1, 9, |s| s.method_pattern = Some("POST".into()))],
            vec![],
        );
        assert_eq!(anchored.route(&facts("POSTX", "/", &plain, b""), 0), None);
    }

    #[test]
    fn compile_names_bad_fields() {
        let bad = ProxyRuleSpec {
            path_pattern: Some("(".into()),
            ..Default::default()
        };
        assert!(CompiledProxyRule::compile(&bad)
            .unwrap_err()
            .contains("path_pattern"));
        let bad = ProxyRuleSpec {
            header_pattern: Some("no-colon".into()),
            ..Default::default()
        };
        assert!(CompiledProxyRule::compile(&bad)
            .unwrap_err()
            .contains("header_pattern"));
    }
}
