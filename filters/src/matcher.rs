//! Matchers and namespace resolution.
//!
//! A matcher looks at one part of the request (`header`, `query`, `path`,
//! `body`), compares one field with an operator, and either admits the request
//! into its namespace (`allow`) or rejects it (`deny`). Matchers are evaluated
//! in ascending `priority` (ties by id); the first that matches decides.
//!
//! Semantics pinned by tests:
//! - a missing field (absent header, query parameter or body field) matches
//!   no operator, `ne` included;
//! - `gt`/`gte`/`lt`/`lte` compare numerically; a non-numeric field value
//!   does not match (a non-numeric `match_value` is rejected at compile time);
//! - `regex` searches (unanchored) unless the pattern anchors itself;
//! - `path` matchers ignore `match_field`.

use crate::facts::RequestFacts;
use crate::pattern::Pattern;
use serde::{Deserialize, Serialize};

/// Which part of the request a matcher reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatcherType {
    Header,
    Query,
    Path,
    Body,
}

/// How the field is compared with `match_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOperator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    Regex,
}

/// What a matching matcher does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchAction {
    #[default]
    Allow,
    Deny,
}

/// The plain description of one matcher, as stored in config.
#[derive(Debug, Clone)]
pub struct MatcherSpec {
    pub id: u64,
    /// Index of the owning namespace in the runtime's namespace table.
    pub namespace: usize,
    pub matcher_type: MatcherType,
    pub match_field: String,
    pub match_operator: MatchOperator,
    pub match_value: String,
    pub action: MatchAction,
    pub priority: i64,
}

#[derive(Debug)]
enum Compare {
    Eq(String),
    Ne(String),
    Num(MatchOperator, f64),
    Contains(String),
    Regex(Pattern),
}

/// A matcher ready to evaluate: regex compiled, numbers parsed.
#[derive(Debug)]
pub struct CompiledMatcher {
    pub id: u64,
    pub namespace: usize,
    pub action: MatchAction,
    pub priority: i64,
    matcher_type: MatcherType,
    field: String,
    compare: Compare,
}

impl CompiledMatcher {
    /// Compiles a matcher; the error names what is wrong with it.
    pub fn compile(spec: &MatcherSpec) -> Result<Self, String> {
        let compare = match spec.match_operator {
            MatchOperator::Eq => Compare::Eq(spec.match_value.clone()),
            MatchOperator::Ne => Compare::Ne(spec.match_value.clone()),
            MatchOperator::Contains => Compare::Contains(spec.match_value.clone()),
            MatchOperator::Regex => Compare::Regex(
                Pattern::new(&spec.match_value)
                    .map_err(|e| format!("match_value is not a valid regex: {e}"))?,
            ),
            op => Compare::Num(
                op,
                spec.match_value.trim().parse::<f64>().map_err(|_| {
                    format!(
                        "match_operator {op:?} needs a numeric match_value, got {:?}",
                        spec.match_value
                    )
                    .to_lowercase()
                })?,
            ),
        };
        if spec.matcher_type != MatcherType::Path && spec.match_field.trim().is_empty() {
            return Err("match_field must name the header, query parameter or body field".into());
        }
        Ok(CompiledMatcher {
            id: spec.id,
            namespace: spec.namespace,
            action: spec.action,
            priority: spec.priority,
            matcher_type: spec.matcher_type,
            field: spec.match_field.clone(),
            compare,
        })
    }

    /// Whether this matcher matches the request.
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        match self.matcher_type {
            MatcherType::Header => facts
                .headers
                .header(&self.field)
                .is_some_and(|v| self.compare(v)),
            MatcherType::Path => self.compare(facts.path),
            MatcherType::Query => facts
                .query_param(&self.field)
                .is_some_and(|v| self.compare(&v)),
            MatcherType::Body => facts
                .body_field(&self.field)
                .is_some_and(|v| self.compare(&v)),
        }
    }

    fn compare(&self, value: &str) -> bool {
        match &self.compare {
            Compare::Eq(want) => value == want,
            Compare::Ne(want) => value != want,
            Compare::Contains(want) => value.contains(want.as_str()),
            Compare::Regex(re) => re.is_match(value),
            Compare::Num(op, want) => match value.trim().parse::<f64>() {
                Ok(got) => match op {
                    MatchOperator::Gt => got > *want,
                    MatchOperator::Gte => got >= *want,
                    MatchOperator::Lt => got < *want,
                    _ => got <= *want,
                },
                Err(_) => false,
            },
        }
    }
}

/// The outcome of namespace resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceDecision {
    /// The request belongs to namespace `index`; `matcher` is the allow
    /// matcher that decided, if one did.
    Namespace { index: usize, matcher: Option<u64> },
    /// A deny matcher matched.
    Deny { matcher: u64 },
    /// No matcher matched and there is no default namespace.
    NoNamespace,
}

/// All matchers of all namespaces, in evaluation order.
#[derive(Debug, Default)]
pub struct NamespaceResolver {
    matchers: Vec<CompiledMatcher>,
    default_namespace: Option<usize>,
}

impl NamespaceResolver {
    /// Builds a resolver; `matchers` of inactive namespaces must already be
    /// left out by the caller.
    pub fn new(mut matchers: Vec<CompiledMatcher>, default_namespace: Option<usize>) -> Self {
        matchers.sort_by_key(|m| (m.priority, m.id));
        NamespaceResolver {
            matchers,
            default_namespace,
        }
    }

    /// Resolves the namespace of a request.
    ///
    /// With `bound` set (the API key belongs to a namespace) only that
    /// namespace's matchers run: the first that matches may deny; otherwise
    /// the request stays in the bound namespace. Without it, every matcher
    /// runs in priority order and the first match decides; no match falls
    /// back to the default namespace.
    pub fn resolve(&self, facts: &RequestFacts<'_>, bound: Option<usize>) -> NamespaceDecision {
        let candidates = self
            .matchers
            .iter()
            .filter(|m| bound.is_none_or(|ns| m.namespace == ns));
        for m in candidates {
            if m.matches(facts) {
                return match m.action {
                    MatchAction::Deny => NamespaceDecision::Deny { matcher: m.id },
                    MatchAction::Allow => NamespaceDecision::Namespace {
                        index: m.namespace,
                        matcher: Some(m.id),
                    },
                };
            }
        }
        match bound.or(self.default_namespace) {
            Some(index) => NamespaceDecision::Namespace {
                index,
                matcher: None,
            },
            None => NamespaceDecision::NoNamespace,
        }
    }

    /// Every matcher with whether it matches, in evaluation order (for the
    /// admin API's route validation).
    pub fn explain<'s>(
        &'s self,
        facts: &'s RequestFacts<'_>,
    ) -> impl Iterator<Item = (&'s CompiledMatcher, bool)> + 's {
        self.matchers.iter().map(move |m| (m, m.matches(facts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn spec(t: MatcherType, field: &str, op: MatchOperator, value: &str) -> MatcherSpec {
        MatcherSpec {
            id: 1,
            namespace: 0,
            matcher_type: t,
            match_field: field.into(),
            match_operator: op,
            match_value: value.into(),
            action: MatchAction::Allow,
            priority: 10,
        }
    }

    fn run(
        s: MatcherSpec,
        headers: &Vec<(String, String)>,
        query: Option<&str>,
        body: &Value,
    ) -> bool {
        let facts = RequestFacts {
            method: "POST",
            path: "/v1/chat/completions",
            query,
            headers,
            body: Some(body),
            raw_body: b"",
        };
        CompiledMatcher::compile(&s).unwrap().matches(&facts)
    }

    fn hdr(v: &str) -> Vec<(String, String)> {
        vec![("x-tier".to_string(), v.to_string())]
    }

    #[test]
    fn every_operator_on_headers() {
        use MatchOperator::*;
        let b = json!({});
        let cases = [
            (Eq, "gold", "gold", true),
            (Eq, "gold", "silver", false),
            (Ne, "gold", "silver", true),
            (Ne, "gold", "gold", false),
            (Gt, "10", "11", true),
            (Gt, "10", "10", false),
            (Gte, "10", "10", true),
            (Gte, "10", "9.5", false),
            (Lt, "10", "9.5", true),
            (Lt, "10", "10", false),
            (Lte, "10", "10", true),
            (Lte, "10", "10.01", false),
            (Gt, "10", "abc", false),
            (Contains, "old", "golden", true),
            (Contains, "old", "silver", false),
            (Regex, "^g.ld$", "gold", true),
            (Regex, "^g.ld$", "golden", false),
        ];
        for (op, want, got, expect) in cases {
            let s = spec(MatcherType::Header, "X-Tier", op, want);
            assert_eq!(
                run(s, &hdr(got), None, &b),
                expect,
                "{op:?} {want} vs {got}"
            );
        }
    }

    #[test]
    fn missing_field_matches_nothing_not_even_ne() {
        let b = json!({});
        let s = spec(MatcherType::Header, "x-absent", MatchOperator::Ne, "x");
        assert!(!run(s, &hdr("gold"), None, &b));
        let s = spec(MatcherType::Body, "absent", MatchOperator::Ne, "x");
        assert!(!run(s, &hdr("gold"), None, &b));
    }

    #[test]
    fn query_path_and_body_matchers() {
        let b = json!({"model":"gpt-4o-mini","max_tokens":512,"metadata":{"team":"ml"}});
        let h = hdr("x");
        assert!(run(
            spec(MatcherType::Query, "model", MatchOperator::Contains, "gpt"),
            &h,
            Some("model=gpt-4"),
            &b
        ));
        assert!(run(
            spec(MatcherType::Path, "", MatchOperator::Regex, "^/v1/chat/"),
            &h,
            None,
            &b
        ));
        assert!(run(
            spec(MatcherType::Body, "model", MatchOperator::Eq, "gpt-4o-mini"),
            &h,
            None,
            &b
        ));
        assert!(run(
            spec(MatcherType::Body, "max_tokens", MatchOperator::Gte, "512"),
            &h,
            None,
            &b
        ));
        assert!(run(
            spec(MatcherType::Body, "metadata.team", MatchOperator::Eq, "ml"),
            &h,
            None,
            &b
        ));
    }

    #[test]
    fn compile_rejects_bad_values() {
        let s = spec(MatcherType::Header, "x", MatchOperator::Regex, "(unclosed");
        assert!(CompiledMatcher::compile(&s).unwrap_err().contains("regex"));
        let s = spec(MatcherType::Header, "x", MatchOperator::Gt, "ten");
        assert!(CompiledMatcher::compile(&s)
            .unwrap_err()
            .contains("numeric"));
        let s = spec(MatcherType::Header, " ", MatchOperator::Eq, "v");
        assert!(CompiledMatcher::compile(&s).is_err());
    }

    fn compiled(
        id: u64,
        ns: usize,
        prio: i64,
        value: &str,
        action: MatchAction,
    ) -> CompiledMatcher {
        let mut s = spec(MatcherType::Header, "x-tier", MatchOperator::Eq, value);
        s.id = id;
        s.namespace = ns;
        s.priority = prio;
        s.action = action;
        CompiledMatcher::compile(&s).unwrap()
    }

    fn resolve(r: &NamespaceResolver, tier: &str, bound: Option<usize>) -> NamespaceDecision {
        let h = hdr(tier);
        let facts = RequestFacts {
            method: "GET",
            path: "/",
            query: None,
            headers: &h,
            body: None,
            raw_body: b"",
        };
        r.resolve(&facts, bound)
    }

    #[test]
    fn first_match_in_priority_order_decides() {
        let r = NamespaceResolver::new(
            vec![
                compiled(3, 2, 50, "gold", MatchAction::Allow),
                compiled(1, 1, 10, "gold", MatchAction::Allow),
                compiled(2, 1, 20, "banned", MatchAction::Deny),
            ],
            Some(0),
        );
        assert_eq!(
            resolve(&r, "gold", None),
            NamespaceDecision::Namespace {
                index: 1,
                matcher: Some(1)
            }
        );
        assert_eq!(
            resolve(&r, "banned", None),
            NamespaceDecision::Deny { matcher: 2 }
        );
        assert_eq!(
            resolve(&r, "other", None),
            NamespaceDecision::Namespace {
                index: 0,
                matcher: None
            }
        );
        let no_default = NamespaceResolver::new(vec![], None);
        assert_eq!(
            resolve(&no_default, "x", None),
            NamespaceDecision::NoNamespace
        );
    }

    #[test]
    fn bound_key_only_runs_its_namespace() {
        let r = NamespaceResolver::new(
            vec![
                compiled(1, 1, 10, "gold", MatchAction::Allow),
                compiled(2, 2, 20, "banned", MatchAction::Deny),
            ],
            Some(0),
        );
        // namespace 1's key: namespace 2's deny does not apply, and the
        // request stays in namespace 1 whatever matches.
        assert_eq!(
            resolve(&r, "banned", Some(1)),
            NamespaceDecision::Namespace {
                index: 1,
                matcher: None
            }
        );
        assert_eq!(
            resolve(&r, "banned", Some(2)),
            NamespaceDecision::Deny { matcher: 2 }
        );
    }
}
