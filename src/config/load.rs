//! Parsing: YAML text → `serde_yaml::Value` → `${ENV}` interpolation →
//! typed sections, one section (and one list item) at a time, so a single
//! run reports every malformed entry instead of stopping at the first.

use super::validate::validate;
use super::*;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

const SECTIONS: &[&str] = &[
    "server",
    "listen",
    "limits",
    "clients",
    "timeouts",
    "upstream",
    "auth",
    "metrics",
    "access_log",
    "admin",
    "tokens",
    "counters",
    "config_store",
    "forward_xff",
    "compression",
    "cache",
    "tracing",
    "fleet",
    "bridge",
    "default_namespace",
    "channel_header",
    "virtual_keys",
    "users",
    "agent_tokens",
    "namespaces",
    "upstream_servers",
    "matchers",
    "proxy_rules",
    "routes",
    "rules",
    "models",
];

/// Reads and checks a config file.
pub fn load_file(path: &str) -> Result<Config, Vec<Problem>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Problem::new("", format!("cannot read {path}: {e}"))])?;
    load_str(&text, &|name| std::env::var(name).ok())
}

/// Parses and checks config text; `env` looks up `${VAR}` values.
pub fn load_str(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<Problem>> {
    let (config, problems) = read_str(text, env)?;
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// Parses and checks a config file, keeping the config even when it has
/// problems (entries that did not parse are left out), so that `sluice
/// check` can also compile what did parse and report every problem at
/// once. `Err` when the file cannot be read or is not a YAML mapping.
pub fn read_file(path: &str) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![Problem::new("", format!("cannot read {path}: {e}"))])?;
    read_str(&text, &|k| std::env::var(k).ok())
}

fn read_str(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Vec<Problem>), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut root: Value = serde_yaml::from_str(text)
        .map_err(|e| vec![Problem::new("", format!("not valid YAML: {e}"))])?;
    if root.is_null() {
        root = Value::Mapping(Mapping::new());
    }
    interpolate(&mut root, "", env, &mut problems);
    let Value::Mapping(map) = root else {
        return Err(vec![Problem::new("", "the top level must be a mapping")]);
    };
    for key in map.keys() {
        match key.as_str() {
            Some(k) if SECTIONS.contains(&k) => {}
            _ => problems.push(Problem::new(
                key_text(key),
                format!("unknown key; expected one of: {}", SECTIONS.join(", ")),
            )),
        }
    }
    let mut p = Parser {
        map: &map,
        problems: &mut problems,
    };
    let config = Config {
        server: p.section("server"),
        listen: p.section("listen"),
        limits: p.section("limits"),
        clients: p.section("clients"),
        timeouts: p.section("timeouts"),
        upstream: p.section("upstream"),
        auth: p.auth(),
        metrics: p.section("metrics"),
        access_log: p.section("access_log"),
        admin: p.section("admin"),
        tokens: p.section("tokens"),
        counters: p.section("counters"),
        config_store: p.section("config_store"),
        forward_xff: p.section("forward_xff"),
        compression: p.section("compression"),
        cache: p.section("cache"),
        tracing: p.section("tracing"),
        fleet: p.section("fleet"),
        bridge: p.section("bridge"),
        default_namespace: p.section("default_namespace"),
        channel_header: p.section("channel_header"),
        virtual_keys: p.list("virtual_keys"),
        users: p.list("users"),
        agent_tokens: p.list("agent_tokens"),
        namespaces: p.list("namespaces"),
        upstream_servers: p.list("upstream_servers"),
        matchers: p.list("matchers"),
        proxy_rules: p.list("proxy_rules"),
        routes: p.list("routes"),
        rules: p.list("rules"),
        models: p.list("models"),
    };
    let mut config = config;
    assign_ids(&mut config);
    validate(&config, &mut problems);
    Ok((config, problems))
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

struct Parser<'a> {
    map: &'a Mapping,
    problems: &'a mut Vec<Problem>,
}

impl Parser<'_> {
    fn parse<T: DeserializeOwned>(&mut self, path: &str, value: &Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(v) => Some(v),
            Err(e) => {
                let inner = e.path().to_string();
                let full = match (path.is_empty(), inner == ".") {
                    (_, true) => path.to_string(),
                    (true, false) => inner,
                    (false, false) => format!("{path}.{inner}"),
                };
                self.problems
                    .push(Problem::new(full, e.into_inner().to_string()));
                None
            }
        }
    }

    fn section<T: DeserializeOwned + Default>(&mut self, key: &str) -> T {
        match self.map.get(key) {
            None | Some(Value::Null) => T::default(),
            Some(v) => self.parse(key, v).unwrap_or_default(),
        }
    }

    fn list<T: DeserializeOwned>(&mut self, key: &str) -> Vec<T> {
        match self.map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, item)| self.parse(&format!("{key}[{i}]"), item))
                .collect(),
            Some(_) => {
                self.problems.push(Problem::new(key, "must be a list"));
                Vec::new()
            }
        }
    }

    /// `auth` is a section with a list inside; parse its keys one by one.
    fn auth(&mut self) -> AuthSettings {
        let Some(Value::Mapping(auth)) = self.map.get("auth") else {
            return self.section("auth");
        };
        let mut auth = auth.clone();
        let keys = auth.remove("keys");
        let mut settings: AuthSettings = self
            .parse("auth", &Value::Mapping(auth))
            .unwrap_or_default();
        if let Some(keys) = keys {
            let wrapper: Mapping = [(Value::from("auth.keys"), keys)].into_iter().collect();
            settings.keys = Parser {
                map: &wrapper,
                problems: self.problems,
            }
            .list("auth.keys");
        }
        settings
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every string value.
fn interpolate(
    value: &mut Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand(s, env) {
            Ok(expanded) => *s = expanded,
            Err(msg) => problems.push(Problem::new(path, msg)),
        },
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env, problems);
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                let key = key_text(k);
                let child = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate(v, &child, env, problems);
            }
        }
        _ => {}
    }
}

fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {s:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("`${{{expr}}}` is not a valid variable reference"));
        }
        match (env(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (write ${{{name}:-default}} for a fallback)"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Gives entities without an explicit id the next free one, in file order.
fn assign_ids(config: &mut Config) {
    fn fill<T>(items: &mut [T], id: impl Fn(&mut T) -> &mut u64) {
        let mut next = items.iter_mut().map(|i| *id(i)).max().unwrap_or(0);
        for item in items.iter_mut() {
            let slot = id(item);
            if *slot == 0 {
                next += 1;
                *slot = next;
            }
        }
    }
    fill(&mut config.namespaces, |n| &mut n.id);
    fill(&mut config.upstream_servers, |s| &mut s.id);
    fill(&mut config.virtual_keys, |k| &mut k.id);
    fill(&mut config.users, |u| &mut u.id);
    fill(&mut config.matchers, |m| &mut m.id);
    fill(&mut config.proxy_rules, |r| &mut r.id);
    fill(&mut config.rules, |r| &mut r.id);
    fill(&mut config.routes, |r| &mut r.id);
}

impl Config {
    /// Every problem `sluice check` would report for this already parsed
    /// config (references, patterns, ranges); empty when it is valid. Used
    /// by the admin API before it applies a change.
    pub fn check(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        validate(self, &mut problems);
        problems
    }

    /// What is well formed but could never take effect yet (a rule of a
    /// namespace no request reaches, say): reported, not refused.
    pub fn warnings(&self) -> Vec<Problem> {
        super::validate::warnings(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "from-env".to_string())
    }

    #[test]
    fn expands_variables_and_defaults() {
        assert_eq!(expand("a-${KEY}-b", &env).unwrap(), "a-from-env-b");
        assert_eq!(expand("${NOPE:-dflt}", &env).unwrap(), "dflt");
        assert!(expand("${NOPE}", &env).unwrap_err().contains("NOPE"));
        assert!(expand("${bad name}", &env).is_err());
        assert!(expand("${KEY", &env).is_err());
    }
}
