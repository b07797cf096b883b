//! Semantic checks over a parsed [`Config`]: references resolve and values
//! are in range ([`validate`]: errors, the config is refused), and what
//! is well formed but could never take effect yet is named ([`warnings`]:
//! a matcher every key binding overrides, a rule, proxy rule or route of a
//! namespace no request reaches). Warnings let an operator build a tenant
//! in any order; they are reported, never silent. Every problem is
//! reported, each with its path. Patterns (matchers, proxy rules)
//! and rule settings are checked where they are compiled, once: by the
//! snapshot build (`crate::state::Snapshot::build`), which `sluice check`
//! and every admin change also run.

use super::problem::Problem;
use super::*;
use sluice_filters::matcher::MatchAction;
use sluice_filters::routing::normalize_prefix;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

mod bridge;
mod identity;

pub(super) fn validate(c: &Config, problems: &mut Vec<Problem>) {
    let mut v = Validator { c, problems };
    v.process();
    v.namespaces();
    v.upstream_servers();
    v.auth();
    v.matchers();
    v.proxy_rules();
    v.routes();
    v.rules();
    v.counters();
    v.models();
    v.config_store();
    v.compression();
    v.virtual_keys();
    v.identity();
}

/// What is well formed but could never take effect yet (see the module docs).
pub(super) fn warnings(c: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut v = Validator {
        c,
        problems: &mut problems,
    };
    v.unreachable();
    v.identity_warnings();
    v.cache_warnings();
    v.fail_mode_warnings();
    v.bridge_warnings();
    problems
}

struct Validator<'a> {
    c: &'a Config,
    problems: &'a mut Vec<Problem>,
}

impl Validator<'_> {
    fn problem(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem::new(path, msg));
    }

    /// `fail_mode: local_share` where the counters are in process: the
    /// store is never unreachable, so the mode never applies.
    fn fail_mode_warnings(&mut self) {
        if self.c.counters.store == CounterStoreKind::Redis {
            return;
        }
        for (i, r) in self.c.rules.iter().enumerate() {
            if r.rule_config.get("fail_mode").and_then(|m| m.as_str()) == Some("local_share") {
                self.problem(
                    format!("rules[{i}].rule_config.fail_mode"),
                    "local_share applies while a shared counter store is unreachable; with counters.store: local it never does",
                );
            }
        }
    }

    /// A cache opt-in that nothing matches: a model that caches when no
    /// namespace does, a namespace that does when no model does.
    fn cache_warnings(&mut self) {
        let c = self.c;
        let any_ns = c
            .namespaces
            .iter()
            .any(|n| n.cache.as_ref().is_some_and(|x| x.enabled));
        let any_model = c.models.iter().any(|m| m.cache.is_some());
        for (i, m) in c.models.iter().enumerate() {
            if m.cache.is_some() && !any_ns {
                self.problem(
                    format!("models[{i}].cache"),
                    "no namespace enables the cache (namespaces[].cache): nothing is cached",
                );
            }
        }
        for (i, n) in c.namespaces.iter().enumerate() {
            if n.cache.as_ref().is_some_and(|x| x.enabled) && !any_model {
                self.problem(
                    format!("namespaces[{i}].cache"),
                    "no catalog model caches (models[].cache): nothing is cached",
                );
            }
        }
    }

    fn namespace(&self, code: &str) -> Option<&Namespace> {
        self.c.namespaces.iter().find(|n| n.namespace_code == code)
    }

    /// Checks a namespace reference; returns whether it names a namespace.
    /// An inactive namespace may be referenced: its requests are refused
    /// with 403 until it is active again, and switching a tenant off must
    /// not mean deleting its matchers, keys, routes and rules.
    fn namespace_ref(&mut self, path: String, code: &str) -> bool {
        if self.namespace(code).is_some() {
            return true;
        }
        self.problem(
            path,
            format!("namespace {code:?} is not defined in namespaces"),
        );
        false
    }

    fn pool_ref(&mut self, path: String, pool: &str) {
        let servers: Vec<&UpstreamServer> = self
            .c
            .upstream_servers
            .iter()
            .filter(|s| s.pool_name() == pool)
            .collect();
        if servers.is_empty() {
            self.problem(
                path,
                format!(
                    "upstream {pool:?} is not the pool (or server_name) of any upstream server"
                ),
            );
        } else if !servers.iter().any(|s| s.is_active) {
            self.problem(path, format!("upstream {pool:?} has no active server"));
        }
    }

    fn process(&mut self) {
        let c = self.c;
        if c.listen.proxy.parse::<SocketAddr>().is_err() {
            self.problem(
                "listen.proxy",
                format!("{:?} is not an ip:port address", c.listen.proxy),
            );
        }
        if let Some(admin) = &c.listen.admin {
            if admin.parse::<SocketAddr>().is_err() {
                self.problem(
                    "listen.admin",
                    format!("{admin:?} is not an ip:port address"),
                );
            } else if *admin == c.listen.proxy {
                self.problem("listen.admin", "must differ from listen.proxy");
            }
            if c.admin.tokens.iter().all(|t| t.expose().is_empty()) {
                self.problem(
                    "admin.tokens",
                    "listen.admin is set but there is no admin token: nobody could use the admin API",
                );
            }
        }
        let mut tokens = HashSet::new();
        let mut names = HashSet::new();
        for (i, t) in c.admin.tokens.iter().enumerate() {
            let name = t.name(i);
            if name.trim().is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
                self.problem(
                    format!("admin.tokens[{i}].name"),
                    "must be 1 to 64 printable characters",
                );
            } else if !names.insert(name) {
                self.problem(
                    format!("admin.tokens[{i}].name"),
                    "names another admin token too (the audit log could not tell them apart)",
                );
            }
            let t = t.expose();
            if t.trim().is_empty() {
                self.problem(format!("admin.tokens[{i}]"), "must not be empty");
            } else if !tokens.insert(t.as_str()) {
                self.problem(
                    format!("admin.tokens[{i}]"),
                    "duplicates another admin token",
                );
            }
        }
        if let Some(m) = &c.metrics.token {
            if tokens.contains(m.expose().as_str()) {
                self.problem(
                    "metrics.token",
                    "must differ from every admin token (a scraper's token must not open the admin API)",
                );
            }
        }
        for (path, tls) in [
            ("listen.proxy_tls", c.listen.proxy_tls.as_ref()),
            ("listen.admin_tls", c.listen.admin_tls.as_ref()),
        ] {
            let Some(tls) = tls else { continue };
            if tls.certificates.is_empty() {
                self.problem(path, "needs at least one certificate");
            }
            let files = tls
                .certificates
                .iter()
                .enumerate()
                .flat_map(|(i, f)| {
                    [
                        (format!("{path}.certificates[{i}].cert"), &f.cert),
                        (format!("{path}.certificates[{i}].key"), &f.key),
                    ]
                })
                .chain(
                    tls.client_ca
                        .iter()
                        .map(|f| (format!("{path}.client_ca"), f)),
                );
            let missing: Vec<(String, String)> = files
                .filter(|(_, f)| std::fs::metadata(f).is_err())
                .map(|(p, f)| (p, f.clone()))
                .collect();
            for (p, f) in missing {
                self.problem(p, format!("{f:?} cannot be read"));
            }
        }
        if c.listen.admin_tls.is_some() && c.listen.admin.is_none() {
            self.problem(
                "listen.admin_tls",
                "there is no admin listener (listen.admin)",
            );
        }
        if let Some(t) = &c.tracing {
            if !(0.0..=1.0).contains(&t.sample_ratio) {
                self.problem("tracing.sample_ratio", "must be between 0 and 1");
            }
            if !(t.otlp_endpoint.starts_with("http://") || t.otlp_endpoint.starts_with("https://"))
            {
                self.problem(
                    "tracing.otlp_endpoint",
                    "must be an http:// or https:// URL (OTLP over HTTP)",
                );
            }
            if t.queue_size == 0 || t.batch_size == 0 {
                self.problem(
                    "tracing",
                    "queue_size and batch_size must be greater than 0",
                );
            }
        }
        if c.cache.memory_mb == 0 {
            self.problem("cache.memory_mb", "must be at least 1");
        }
        if !(100..=60_000).contains(&c.fleet.heartbeat_ms) {
            self.problem("fleet.heartbeat_ms", "must be between 100 and 60000");
        }
        if let Some(a) = &c.fleet.advertise {
            if a.is_empty() || a.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
                self.problem("fleet.advertise", "must be a host:port without spaces");
            }
        }
        self.bridge(c);
        if c.cache.max_entry_bytes == 0 {
            self.problem("cache.max_entry_bytes", "must be greater than 0");
        }
        if let Some(url) = c
            .cache
            .redis_url
            .as_ref()
            .filter(|u| !u.expose().is_empty())
        {
            if let Some(why) = redis_url_problem(url.expose()) {
                self.problem("cache.redis_url", why);
            }
        }
        if c.limits.max_json_values == 0 {
            self.problem("limits.max_json_values", "must be greater than 0");
        }
        if c.limits.max_body_bytes == 0 {
            self.problem("limits.max_body_bytes", "must be greater than 0");
        }
        let k = &c.clients;
        for (name, value) in [
            ("header_timeout_ms", k.header_timeout_ms),
            ("body_timeout_ms", k.body_timeout_ms),
            ("idle_timeout_ms", k.idle_timeout_ms),
            ("write_timeout_ms", k.write_timeout_ms),
            ("max_header_bytes", k.max_header_bytes as u64),
            ("max_connections", k.max_connections as u64),
            (
                "max_connections_per_client",
                k.max_connections_per_client as u64,
            ),
        ] {
            if value == 0 {
                self.problem(format!("clients.{name}"), "must be greater than 0");
            }
        }
        let t = &c.timeouts;
        for (name, value) in [
            ("connect_ms", t.connect_ms),
            ("first_byte_ms", t.first_byte_ms),
            ("idle_ms", t.idle_ms),
            ("total_ms", t.total_ms),
            ("stream_total_ms", t.stream_total_ms),
        ] {
            if value == 0 {
                self.problem(format!("timeouts.{name}"), "must be greater than 0");
            }
        }
        let u = &c.upstream;
        if u.max_attempts == 0 {
            self.problem("upstream.max_attempts", "must be at least 1");
        }
        for (name, value) in [
            ("health_check_interval_ms", u.health_check_interval_ms),
            ("health_check_timeout_ms", u.health_check_timeout_ms),
            ("eject_ms", u.eject_ms),
            ("keepalive_idle_ms", u.keepalive_idle_ms),
        ] {
            if value == 0 {
                self.problem(format!("upstream.{name}"), "must be greater than 0");
            }
        }
        if let Some(ca) = &u.ca_file {
            match std::fs::read_to_string(ca) {
                Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => {}
                Ok(_) => self.problem("upstream.ca_file", format!("{ca} holds no PEM certificate")),
                Err(e) => self.problem("upstream.ca_file", format!("cannot read {ca}: {e}")),
            }
        }
        if u.unhealthy_threshold == 0 || u.healthy_threshold == 0 {
            self.problem(
                "upstream",
                "healthy_threshold and unhealthy_threshold must be at least 1",
            );
        }
        if let Some(token) = &c.metrics.token {
            if token.expose().is_empty() {
                self.problem(
                    "metrics.token",
                    "must not be empty (remove it to turn /metrics off)",
                );
            }
        }
        if c.metrics.listen.is_some() && c.metrics.token.is_none() {
            self.problem(
                "metrics.listen",
                "set metrics.token too: without it the metrics endpoints are off and this listener would serve nothing",
            );
        }
        if let Some(addr) = &c.metrics.listen {
            if addr.parse::<SocketAddr>().is_err() {
                self.problem(
                    "metrics.listen",
                    format!("{addr:?} is not an address (host:port)"),
                );
            }
        }
        if let Some(log) = &c.access_log {
            if log.path.trim().is_empty() {
                self.problem(
                    "access_log.path",
                    "must name a file or \"-\" (standard output); remove the section to turn the access log off",
                );
            }
        }
        if let Some(code) = &c.default_namespace {
            if self.namespace(code).is_some_and(|n| !n.is_active) {
                self.problem(
                    "default_namespace",
                    format!("namespace {code:?} is inactive: every request no matcher takes would be refused; name an active namespace or none"),
                );
            }
            self.namespace_ref("default_namespace".into(), code);
        }
        // A gateway that only serves the Bridge needs no route.
        if c.routes.is_empty() && c.proxy_rules.iter().all(|r| !r.is_active) && !c.bridge.enabled {
            self.problem(
                "routes",
                "no route and no active proxy rule: every request would get 404",
            );
        }
    }

    fn namespaces(&mut self) {
        let mut codes = HashSet::new();
        let mut ids = HashSet::new();
        for (i, ns) in self.c.namespaces.iter().enumerate() {
            let path = format!("namespaces[{i}]");
            let code = &ns.namespace_code;
            if code.trim().is_empty() {
                self.problem(format!("{path}.namespace_code"), "must not be empty");
            } else if code.trim() != code || code.chars().any(char::is_control) {
                self.problem(
                    format!("{path}.namespace_code"),
                    format!("{code:?} has surrounding spaces or control characters"),
                );
            }
            if !codes.insert(ns.namespace_code.as_str()) {
                self.problem(
                    format!("{path}.namespace_code"),
                    format!("duplicate namespace_code {:?}", ns.namespace_code),
                );
            }
            if !ids.insert(ns.id) {
                self.problem(format!("{path}.id"), format!("duplicate id {}", ns.id));
            }
        }
        if let Some(h) = &self.c.channel_header {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                self.problem(
                    "channel_header",
                    format!("{h:?} is not a header name; write e.g. x-channel-code"),
                );
            }
        }
    }

    fn upstream_servers(&mut self) {
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for (i, s) in self.c.upstream_servers.iter().enumerate() {
            let path = format!("upstream_servers[{i}]");
            if !names.insert(s.server_name.as_str()) {
                self.problem(
                    format!("{path}.server_name"),
                    format!("duplicate server_name {:?}", s.server_name),
                );
            }
            if !ids.insert(s.id) {
                self.problem(format!("{path}.id"), format!("duplicate id {}", s.id));
            }
            if s.server_address.trim().is_empty() || s.server_address.contains(['/', ' ']) {
                self.problem(
                    format!("{path}.server_address"),
                    "must be a host name or IP address (no scheme, path or spaces)",
                );
            }
            if s.server_port == 0 {
                self.problem(format!("{path}.server_port"), "must be 1-65535");
            }
            if s.weight == 0 {
                self.problem(format!("{path}.weight"), "must be at least 1");
            }
            if let Some(url) = &s.health_check_url {
                if !url.starts_with('/') || url.contains(char::is_whitespace) {
                    self.problem(
                        format!("{path}.health_check_url"),
                        "must be a path starting with `/`",
                    );
                }
            }
            if let Some(sni) = &s.sni {
                let ok = !sni.is_empty()
                    && sni
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '.' | '_'));
                if !ok {
                    self.problem(
                        format!("{path}.sni"),
                        format!("{sni:?} is not a host name (letters, digits, `-`, `.`)"),
                    );
                }
            }
            for (name, value) in &s.inject_headers {
                if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    self.problem(
                        format!("{path}.inject_headers.{name}"),
                        "is not a valid header name",
                    );
                }
                const FRAMING: [&str; 7] = [
                    "host",
                    "content-length",
                    "transfer-encoding",
                    "connection",
                    "upgrade",
                    "te",
                    "trailer",
                ];
                if FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f)) {
                    self.problem(
                        format!("{path}.inject_headers.{name}"),
                        "sets a header the gateway owns (host, framing, hop-by-hop)",
                    );
                }
                if http::header::HeaderValue::from_str(value.expose()).is_err() {
                    self.problem(
                        format!("{path}.inject_headers.{name}"),
                        "value is not a valid header value",
                    );
                }
            }
            if let Some(key) = &s.api_key {
                if http::header::HeaderValue::from_str(key.expose()).is_err()
                    || key.expose().is_empty()
                {
                    self.problem(
                        format!("{path}.api_key"),
                        "must be non-empty and usable as a header value",
                    );
                }
            }
        }
    }

    fn auth(&mut self) {
        let a = &self.c.auth;
        if let Some(h) = &a.header {
            if http::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                self.problem("auth.header", format!("{h:?} is not a valid header name"));
            }
        }
        if !a.enabled {
            return;
        }
        if !(1..=3600).contains(&a.signing_max_skew_s) {
            self.problem("auth.signing_max_skew_s", "from 1 to 3600 seconds");
        }
        let identities =
            a.jwt.is_some() || !a.issuers.is_empty() || !self.c.virtual_keys.is_empty();
        if a.keys.is_empty() && !identities {
            self.problem(
                "auth.keys",
                "auth is enabled but there are no keys: every request would get 401",
            );
        }
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for (i, k) in a.keys.iter().enumerate() {
            let path = format!("auth.keys[{i}]");
            if !names.insert(k.name.as_str()) {
                self.problem(
                    format!("{path}.name"),
                    format!("duplicate key name {:?}", k.name),
                );
            }
            if k.key.expose().trim().is_empty() || k.key.expose().trim() != k.key.expose() {
                self.problem(
                    format!("{path}.key"),
                    "must be non-empty without surrounding spaces",
                );
            } else if !keys.insert(k.key.expose().as_str()) {
                self.problem(format!("{path}.key"), "the same key is configured twice");
            } else if k.signing && k.key.expose().len() < 16 {
                self.problem(
                    format!("{path}.key"),
                    "a signing secret needs at least 16 characters",
                );
            }
            if let Some(ns) = &k.namespace {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
            if let Some(models) = &k.models {
                if models.is_empty() {
                    self.problem(
                        format!("{path}.models"),
                        "an empty list would refuse every request with a model; omit it to allow any",
                    );
                }
                for (j, m) in models.iter().enumerate() {
                    if m.trim().is_empty() || m == "*" {
                        self.problem(
                            format!("{path}.models[{j}]"),
                            "must name a model or a `prefix*` (omit `models` to allow any)",
                        );
                    }
                }
            }
        }
    }

    fn matchers(&mut self) {
        for (i, m) in self.c.matchers.iter().enumerate() {
            if m.is_active {
                self.namespace_ref(format!("matchers[{i}].namespace"), &m.namespace);
            }
        }
    }

    /// The warnings pass: entities that reference a namespace that exists
    /// but can never apply to a request.
    fn unreachable(&mut self) {
        const NEVER: &str = "(it is not the default_namespace, no active allow matcher or namespace route targets it, no API key is bound to it), so this";
        // With auth on and every key bound to a namespace, matchers of other
        // namespaces never run.
        let a = &self.c.auth;
        let bound: Option<HashSet<&str>> = (a.enabled
            && !a.keys.is_empty()
            && a.keys.iter().all(|k| k.namespace.is_some()))
        .then(|| {
            a.keys
                .iter()
                .filter_map(|k| k.namespace.as_deref())
                .collect()
        });
        for (i, m) in self.c.matchers.iter().enumerate() {
            let path = format!("matchers[{i}]");
            if !m.is_active || self.namespace(&m.namespace).is_none() {
                continue;
            }
            if let Some(bound) = &bound {
                if !bound.contains(m.namespace.as_str()) {
                    self.problem(
                        format!("{path}.namespace"),
                        format!(
                            "every API key is bound to a namespace and none to {:?}, so this matcher could never apply",
                            m.namespace
                        ),
                    );
                }
            }
        }
        let c = self.c;
        let scoped = c
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.status)
            .map(|(i, r)| (format!("rules[{i}]"), "rule", &r.namespace))
            .chain(
                c.proxy_rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.is_active)
                    .map(|(i, r)| (format!("proxy_rules[{i}]"), "proxy rule", &r.namespace)),
            )
            .chain(
                c.routes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("routes[{i}]"), "route", &r.namespace)),
            );
        for (path, what, ns) in scoped {
            let Some(ns) = ns else { continue };
            if self.namespace(ns).is_some() && !self.reachable(ns) {
                self.problem(
                    format!("{path}.namespace"),
                    format!(
                        "no request can reach namespace {ns:?} {NEVER} {what} could never apply"
                    ),
                );
            }
        }
    }

    fn rules(&mut self) {
        let mut ids = HashSet::new();
        for (i, r) in self.c.rules.iter().enumerate() {
            let path = format!("rules[{i}]");
            if !ids.insert(r.id) {
                self.problem(format!("{path}.id"), format!("duplicate id {}", r.id));
            }
            if let (true, Some(ns)) = (r.status, &r.namespace) {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
        }
    }

    /// Whether some request can land in namespace `code`.
    fn reachable(&self, code: &str) -> bool {
        let c = self.c;
        let a = &c.auth;
        let unbound_requests =
            !a.enabled || a.keys.is_empty() || a.keys.iter().any(|k| k.namespace.is_none());
        (c.channel_header.is_some() && unbound_requests)
            || c.default_namespace.as_deref() == Some(code)
            || c.matchers
                .iter()
                .any(|m| m.is_active && m.action == MatchAction::Allow && m.namespace == code)
            || (c.auth.enabled
                && c.auth
                    .keys
                    .iter()
                    .any(|k| k.namespace.as_deref() == Some(code)))
    }

    fn virtual_keys(&mut self) {
        let hex64 = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        let mut names: HashSet<&str> = self.c.auth.keys.iter().map(|k| k.name.as_str()).collect();
        let mut ids = HashSet::new();
        for (i, v) in self.c.virtual_keys.iter().enumerate() {
            let path = format!("virtual_keys[{i}]");
            if !ids.insert(v.id) {
                self.problem(format!("{path}.id"), format!("duplicate id {}", v.id));
            }
            if v.name.trim().is_empty() || !names.insert(v.name.as_str()) {
                self.problem(
                    format!("{path}.name"),
                    format!("{:?}: empty, or the name of another key", v.name),
                );
            }
            if !hex64(&v.key_sha256) || v.previous_sha256.as_deref().is_some_and(|h| !hex64(h)) {
                self.problem(format!("{path}.key_sha256"), "64 hex digits (SHA-256)");
            }
            if let Some(ns) = &v.namespace {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
        }
    }

    fn compression(&mut self) {
        let c = &self.c.compression;
        if !(1..=9).contains(&c.level) {
            self.problem(
                "compression.level",
                "a level from 1 (fastest) to 9 (smallest)",
            );
        }
        for (i, t) in c.types.iter().enumerate() {
            let ok = t == "*"
                || t.split_once('/')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('/'));
            if !ok {
                self.problem(
                    format!("compression.types[{i}]"),
                    format!("{t:?} is not a media type (e.g. application/json) or *"),
                );
            }
        }
    }

    fn counters(&mut self) {
        let c = &self.c.counters;
        if c.timeout_ms == 0 {
            self.problem("counters.timeout_ms", "must be at least 1");
        }
        match (c.store, &c.redis_url) {
            (CounterStoreKind::Redis, None) => {
                self.problem("counters.redis_url", "store: redis needs a redis_url")
            }
            (CounterStoreKind::Local, Some(_)) => self.problem(
                "counters.redis_url",
                "set, but store is local so it would never be used (set store: redis)",
            ),
            (CounterStoreKind::Redis, Some(url)) => {
                if let Some(why) = redis_url_problem(url.expose()) {
                    self.problem("counters.redis_url", why);
                }
            }
            _ => {}
        }
        if self.c.tokens.default_output_tokens == 0 {
            self.problem("tokens.default_output_tokens", "must be at least 1");
        }
        for pattern in self.c.tokens.models.keys() {
            if pattern.is_empty() || pattern[..pattern.len() - 1].contains('*') {
                self.problem(
                    format!("tokens.models.{pattern}"),
                    "a model name, or a prefix ending in `*` (no other wildcards)",
                );
            }
        }
    }

    fn config_store(&mut self) {
        let s = &self.c.config_store;
        for (name, value) in [("poll_ms", s.poll_ms), ("timeout_ms", s.timeout_ms)] {
            if value == 0 {
                self.problem(format!("config_store.{name}"), "must be at least 1");
            }
        }
        match (s.kind, &s.mysql_url) {
            (ConfigStoreKind::Mysql, None) => {
                self.problem("config_store.mysql_url", "kind: mysql needs a mysql_url")
            }
            (ConfigStoreKind::Mysql, Some(url)) if !url.expose().starts_with("mysql://") => self
                .problem(
                    "config_store.mysql_url",
                    "must look like mysql://user:pass@host:3306/database",
                ),
            (ConfigStoreKind::File, Some(_)) => self.problem(
                "config_store.mysql_url",
                "set, but kind is file so it would never be used (set kind: mysql)",
            ),
            _ => {}
        }
        if let Some(url) = &s.redis_url {
            if s.kind == ConfigStoreKind::File {
                self.problem(
                    "config_store.redis_url",
                    "set, but kind is file: the file store is one instance's own, there is nothing to cache or announce (set kind: mysql)",
                );
            } else if let Some(why) = redis_url_problem(url.expose()) {
                self.problem("config_store.redis_url", why);
            }
        }
        if s.key_prefix.is_empty() && s.redis_url.is_some() {
            self.problem("config_store.key_prefix", "must not be empty");
        }
    }

    fn proxy_rules(&mut self) {
        let mut ids = HashSet::new();
        for (i, r) in self.c.proxy_rules.iter().enumerate() {
            let path = format!("proxy_rules[{i}]");
            if !ids.insert(r.id) {
                self.problem(format!("{path}.id"), format!("duplicate id {}", r.id));
            }
            if !r.is_active {
                continue;
            }
            self.pool_ref(format!("{path}.upstream"), &r.upstream);
            if let Some(ns) = &r.namespace {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
        }
    }

    fn routes(&mut self) {
        let mut seen: HashMap<(String, Option<&str>), usize> = HashMap::new();
        for (i, r) in self.c.routes.iter().enumerate() {
            let path = format!("routes[{i}]");
            self.pool_ref(format!("{path}.upstream"), &r.upstream);
            if let Some(ns) = &r.namespace {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
            if r.max_concurrency == Some(0) {
                self.problem(
                    format!("{path}.max_concurrency"),
                    "must be at least 1 (0 would refuse every request; omit it for no cap)",
                );
            }
            let key = (normalize_prefix(&r.prefix), r.namespace.as_deref());
            if let Some(first) = seen.insert(key, i) {
                self.problem(
                    format!("{path}.prefix"),
                    format!("same prefix and namespace as routes[{first}], so this route could never apply"),
                );
            }
        }
    }

    /// The model catalog: unique names, pools that exist, a provider that
    /// agrees with the pool's servers, Azure fields where (and only where)
    /// they mean something, sane prices and strategy settings.
    fn models(&mut self) {
        let mut names = HashSet::new();
        for (i, m) in self.c.models.iter().enumerate() {
            let path = format!("models[{i}]");
            if m.name.trim().is_empty() {
                self.problem(format!("{path}.name"), "must not be empty");
            }
            if !names.insert(m.name.as_str()) {
                self.problem(
                    format!("{path}.name"),
                    format!("duplicate model name {:?}", m.name),
                );
            }
            for p in m.routing.problems() {
                self.problem(format!("{path}.routing"), p);
            }
            for p in m.breaker.problems() {
                self.problem(format!("{path}.breaker"), p);
            }
            for p in m.stats.problems() {
                self.problem(format!("{path}.stats"), p);
            }
            if m.deployments.is_empty() {
                self.problem(
                    format!("{path}.deployments"),
                    "needs at least one deployment",
                );
            }
            if m.routing.strategy == sluice_filters::balance::Strategy::Weighted
                && !m.deployments.is_empty()
                && m.deployments.iter().all(|d| d.weight == 0)
            {
                self.problem(
                    format!("{path}.deployments"),
                    "strategy weighted needs a deployment with weight above 0",
                );
            }
            let mut deployment_names = HashSet::new();
            for (j, d) in m.deployments.iter().enumerate() {
                let dp = format!("{path}.deployments[{j}]");
                if !deployment_names.insert(d.name.as_str()) {
                    self.problem(
                        format!("{dp}.name"),
                        format!(
                            "duplicate deployment name {:?} in model {:?}",
                            d.name, m.name
                        ),
                    );
                }
                if d.name.trim().is_empty() {
                    self.problem(format!("{dp}.name"), "must not be empty");
                }
                self.deployment(&dp, d);
            }
        }
    }

    fn deployment(&mut self, dp: &str, d: &Deployment) {
        self.pool_ref(format!("{dp}.upstream"), &d.upstream);
        let pool_providers: HashSet<ProviderKind> = self
            .c
            .upstream_servers
            .iter()
            .filter(|s| s.is_active && s.pool_name() == d.upstream)
            .map(|s| s.provider)
            .collect();
        if pool_providers.len() > 1 {
            self.problem(
                format!("{dp}.upstream"),
                format!(
                    "the servers of pool {:?} speak different providers; a deployment needs one",
                    d.upstream
                ),
            );
        }
        let provider = d
            .provider
            .or_else(|| pool_providers.iter().next().copied())
            .unwrap_or_default();
        if let (Some(p), Some(pool)) = (d.provider, pool_providers.iter().next()) {
            if pool_providers.len() == 1 && p != *pool {
                self.problem(
                    format!("{dp}.provider"),
                    format!(
                        "is {} but the servers of pool {:?} are {} (their provider decides the auth header)",
                        p.as_str(),
                        d.upstream,
                        pool.as_str()
                    ),
                );
            }
        }
        let azure = provider == ProviderKind::Azure;
        match (&d.deployment, azure) {
            (None, true) => self.problem(
                format!("{dp}.deployment"),
                "an azure deployment needs `deployment` (the name in /openai/deployments/{deployment}/…)",
            ),
            (Some(_), false) => self.problem(
                format!("{dp}.deployment"),
                format!("only azure deployments use it, this one is {}", provider.as_str()),
            ),
            _ => {}
        }
        match (&d.api_version, azure) {
            (None, true) => self.problem(
                format!("{dp}.api_version"),
                "an azure deployment needs `api_version` (e.g. 2024-10-21)",
            ),
            (Some(_), false) => self.problem(
                format!("{dp}.api_version"),
                format!(
                    "only azure deployments use it, this one is {}",
                    provider.as_str()
                ),
            ),
            _ => {}
        }
        for (field, value) in [
            ("deployment", &d.deployment),
            ("api_version", &d.api_version),
        ] {
            if let Some(v) = value {
                if v.is_empty()
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                {
                    self.problem(
                        format!("{dp}.{field}"),
                        "must be non-empty letters, digits, `-`, `_` or `.`",
                    );
                }
            }
        }
        if d.default_max_tokens.is_some() && provider != ProviderKind::Anthropic {
            self.problem(
                format!("{dp}.default_max_tokens"),
                format!(
                    "only anthropic deployments use it, this one is {}",
                    provider.as_str()
                ),
            );
        }
        if d.default_max_tokens == Some(0) {
            self.problem(format!("{dp}.default_max_tokens"), "must be at least 1");
        }
        if d.context_window == Some(0) {
            self.problem(format!("{dp}.context_window"), "must be at least 1");
        }
        if d.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            self.problem(format!("{dp}.model"), "must not be empty");
        }
        for (field, price) in [
            ("price_input_per_m", d.price_input_per_m),
            ("price_output_per_m", d.price_output_per_m),
        ] {
            if !(price.is_finite() && price >= 0.0) {
                self.problem(
                    format!("{dp}.{field}"),
                    format!("must be a non-negative number, got {price}"),
                );
            }
        }
    }
}

/// What is wrong with a Redis URL, if anything: `redis://host:port[/db]`,
/// `redis-cluster://host:port?node=host:port…` or
/// `redis-sentinel://host:port[/db]?sentinelServiceName=name&node=…`
/// (TLS, `rediss://`, is not in this build).
pub(crate) fn redis_url_problem(url: &str) -> Option<String> {
    let scheme = url.split("://").next().unwrap_or("");
    if !matches!(scheme, "redis" | "redis-cluster" | "redis-sentinel") {
        return Some(format!(
            "must be a redis://, redis-cluster:// or redis-sentinel:// URL, not {scheme:?} (TLS is not supported by this build)"
        ));
    }
    fred::types::config::Config::from_url(url)
        .err()
        .map(|e| format!("not a valid Redis URL: {}", e.details()))
}
