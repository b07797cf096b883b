//! The config-center entity store, file backed: the entities the admin API
//! edits (namespaces, upstream servers, matchers, proxy rules, prefix
//! routes, limit rules) as one JSON snapshot next to the config file
//! (`<config>.state.json`). Every save writes the whole snapshot
//! atomically: a temp file in the same directory, write, fsync, rename over
//! the old one, fsync the directory. A crash leaves the old or the new
//! snapshot, never a torn one.
//!
//! Precedence: when the state file exists it is the truth for the entities
//! (the YAML still supplies every process setting, API keys and
//! `default_namespace`); when it does not, the YAML's entities are the
//! starting point and the first change through the admin API writes them,
//! changed, to the state file.

use super::StoreError;
use crate::config::{
    fragments, AgentToken, Config, Matcher, Namespace, NginxConfig, Problem, ProxyRule, Route,
    Rule, UpstreamServer, User, VirtualKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// When an entity was created and last changed (`YYYY-MM-DD HH:MM:SS`, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub created_at: String,
    pub updated_at: String,
}

/// One snapshot of the editable entities.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Entities {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub upstream_servers: Vec<UpstreamServer>,
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    #[serde(default)]
    pub proxy_rules: Vec<ProxyRule>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The admin API's "nginx configs": setting fragments applied over the YAML's settings.
    #[serde(default)]
    pub nginx_configs: Vec<NginxConfig>,
    /// API keys created through the admin API (hashed).
    #[serde(default)]
    pub virtual_keys: Vec<VirtualKey>,
    /// Users (password hashes only).
    #[serde(default)]
    pub users: Vec<User>,
    /// Agents' Bridge tokens (hashes only).
    #[serde(default)]
    pub agent_tokens: Vec<AgentToken>,
    /// Config version: raised by one with every committed change (the
    /// stores refuse a change made on an older version).
    #[serde(default)]
    pub revision: u64,
    /// Last id handed out per kind (`namespaces`, …): ids are never reused.
    #[serde(default)]
    pub last_ids: BTreeMap<String, u64>,
    /// Timestamps per `kind/id` (entities from the YAML have none).
    #[serde(default)]
    pub stamps: BTreeMap<String, Stamp>,
}

/// The entity kinds, as named in [`Entities`] (and in the MySQL store's
/// table names): the first [`CONFIG_KINDS`] are the configuration, the
/// rest credentials (API keys, users, agent tokens).
pub const KINDS: [&str; 10] = [
    "namespaces",
    "upstream_servers",
    "matchers",
    "proxy_rules",
    "routes",
    "rules",
    "nginx_configs",
    "virtual_keys",
    "users",
    "agent_tokens",
];

/// How many of [`KINDS`] are configuration (not credentials).
pub const CONFIG_KINDS: usize = 7;

/// Snapshot format version written to the file.
const VERSION: u64 = 1;

impl Entities {
    /// The entities of a loaded config.
    pub fn from_config(c: &Config) -> Entities {
        Entities {
            namespaces: c.namespaces.clone(),
            upstream_servers: c.upstream_servers.clone(),
            matchers: c.matchers.clone(),
            proxy_rules: c.proxy_rules.clone(),
            routes: c.routes.clone(),
            rules: c.rules.clone(),
            nginx_configs: Vec::new(),
            virtual_keys: c.virtual_keys.clone(),
            users: c.users.clone(),
            agent_tokens: c.agent_tokens.clone(),
            revision: 0,
            last_ids: BTreeMap::new(),
            stamps: BTreeMap::new(),
        }
    }

    /// Replaces the config's entities with these and applies the active
    /// setting fragments over its settings (`c` must hold the YAML's
    /// settings); returns the fragments that no longer parse.
    pub fn apply_to(&self, c: &mut Config) -> Vec<Problem> {
        c.namespaces = self.namespaces.clone();
        c.upstream_servers = self.upstream_servers.clone();
        c.matchers = self.matchers.clone();
        c.proxy_rules = self.proxy_rules.clone();
        c.routes = self.routes.clone();
        c.rules = self.rules.clone();
        c.virtual_keys = self.virtual_keys.clone();
        c.users = self.users.clone();
        c.agent_tokens = self.agent_tokens.clone();
        fragments::apply(&self.nginx_configs, c)
    }

    /// Takes the configuration entities of `target` (the kinds before
    /// [`CONFIG_KINDS`], with their timestamps); credentials stay these,
    /// and id counters never go back (ids are never reused).
    pub fn restore_config_from(&mut self, target: &Entities) {
        self.namespaces = target.namespaces.clone();
        self.upstream_servers = target.upstream_servers.clone();
        self.matchers = target.matchers.clone();
        self.proxy_rules = target.proxy_rules.clone();
        self.routes = target.routes.clone();
        self.rules = target.rules.clone();
        self.nginx_configs = target.nginx_configs.clone();
        let config = |k: &str| {
            KINDS[..CONFIG_KINDS]
                .iter()
                .any(|c| k.strip_prefix(c).is_some_and(|r| r.starts_with('/')))
        };
        self.stamps.retain(|k, _| !config(k));
        for (k, s) in &target.stamps {
            if config(k) {
                self.stamps.insert(k.clone(), s.clone());
            }
        }
        for (kind, last) in &target.last_ids {
            let mine = self.last_ids.entry(kind.clone()).or_default();
            *mine = (*mine).max(*last);
        }
    }

    /// The config of YAML `base` with these entities: every problem
    /// `sluice check` would report, or the config.
    pub fn config_over(&self, base: &Config) -> Result<Config, Vec<Problem>> {
        let mut config = base.clone();
        let mut problems = self.apply_to(&mut config);
        problems.extend(config.check());
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// The next id of `kind`: above every id in use or ever handed out.
    pub fn next_id(&mut self, kind: &str) -> u64 {
        let in_use = match kind {
            "namespaces" => self.namespaces.iter().map(|n| n.id).max(),
            "upstream_servers" => self.upstream_servers.iter().map(|s| s.id).max(),
            "matchers" => self.matchers.iter().map(|m| m.id).max(),
            "proxy_rules" => self.proxy_rules.iter().map(|r| r.id).max(),
            "routes" => self.routes.iter().map(|r| r.id).max(),
            "nginx_configs" => self.nginx_configs.iter().map(|r| r.id).max(),
            "virtual_keys" => self.virtual_keys.iter().map(|k| k.id).max(),
            "users" => self.users.iter().map(|u| u.id).max(),
            "agent_tokens" => self.agent_tokens.iter().map(|t| t.id).max(),
            _ => self.rules.iter().map(|r| r.id).max(),
        }
        .unwrap_or(0);
        let last = self.last_ids.entry(kind.to_string()).or_insert(0);
        *last = (*last).max(in_use) + 1;
        *last
    }

    /// Records a creation (`created`) or an update of `kind/id` now.
    pub fn touch(&mut self, kind: &str, id: u64, created: bool) {
        let now = now_text();
        let stamp = self.stamps.entry(format!("{kind}/{id}")).or_default();
        if created || stamp.created_at.is_empty() {
            stamp.created_at = now.clone();
        }
        stamp.updated_at = now;
    }

    /// Forgets the timestamps of a deleted entity.
    pub fn forget(&mut self, kind: &str, id: u64) {
        self.stamps.remove(&format!("{kind}/{id}"));
    }

    /// The timestamps of `kind/id`, if any.
    pub fn stamp(&self, kind: &str, id: u64) -> Option<&Stamp> {
        self.stamps.get(&format!("{kind}/{id}"))
    }

    /// The snapshot as stored: unlike the entities' `Serialize` (which
    /// redacts), secrets are written in clear, so the file is created 0600.
    pub fn to_json(&self) -> Value {
        let servers: Vec<Value> = self.upstream_servers.iter().map(server_json).collect();
        json!({
            "version": VERSION,
            "namespaces": self.namespaces,
            "upstream_servers": servers,
            "matchers": self.matchers,
            "proxy_rules": self.proxy_rules,
            "routes": self.routes,
            "rules": self.rules,
            "nginx_configs": self.nginx_configs,
            "virtual_keys": self.virtual_keys,
            "users": self.users,
            "agent_tokens": self.agent_tokens,
            "revision": self.revision,
            "last_ids": self.last_ids,
            "stamps": self.stamps,
        })
    }
}

/// An upstream server as JSON with its secrets in clear (for the store and
/// for merging an update into it; never for a response).
pub fn server_json(s: &UpstreamServer) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.insert(
            "api_key".into(),
            s.api_key
                .as_ref()
                .map_or(Value::Null, |k| Value::from(k.expose().as_str())),
        );
        let headers: serde_json::Map<String, Value> = s
            .inject_headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.expose().as_str())))
            .collect();
        map.insert("inject_headers".into(), Value::Object(headers));
    }
    v
}

/// The state file of the config file at `config_path`.
pub fn state_path_for(config_path: &str) -> PathBuf {
    PathBuf::from(format!("{config_path}.state.json"))
}

/// Replaces `path` with `bytes` atomically (a temp file in the same
/// directory, created 0600, fsync, rename, fsync of the directory): a crash
/// leaves the old or the new file, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state.json".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        #[cfg(unix)]
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The file store.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored snapshot; `None` when the file does not exist yet.
    pub fn load(&self) -> Result<Option<Entities>, StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::File(format!(
                    "cannot read {}: {e}",
                    self.path.display()
                )))
            }
        };
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            StoreError::Corrupt(format!("{}: not valid JSON: {e}", self.path.display()))
        })?;
        if let Some(v) = value.get("version").and_then(Value::as_u64) {
            if v != VERSION {
                return Err(StoreError::Corrupt(format!(
                    "{}: snapshot version {v} is not supported (expected {VERSION})",
                    self.path.display()
                )));
            }
        }
        serde_path_to_error::deserialize(value)
            .map(Some)
            .map_err(|e| {
                StoreError::Corrupt(format!(
                    "{}: {}: {}",
                    self.path.display(),
                    e.path(),
                    e.inner()
                ))
            })
    }

    /// Writes the snapshot atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&self, entities: &Entities) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(&entities.to_json())
            .map_err(|e| StoreError::Corrupt(format!("cannot encode the snapshot: {e}")))?;
        write_atomic(&self.path, &bytes)
            .map_err(|e| StoreError::File(format!("cannot write {}: {e}", self.path.display())))
    }
}

/// Now as `YYYY-MM-DD HH:MM:SS` (UTC), the entities' timestamp form.
pub fn now_text() -> String {
    format_utc(crate::clock::unix_secs())
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS`.
fn format_utc(secs: u64) -> String {
    // RFC 3339 `YYYY-MM-DDTHH:MM:SSZ` with the `T` as a space, no `Z`.
    crate::clock::rfc3339(secs)
        .trim_end_matches('Z')
        .replacen('T', " ", 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn formats_utc_dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_754_961_555), "2025-08-12 01:19:15");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
    }

    #[test]
    fn saves_atomically_and_keeps_secrets() {
        let dir = std::env::temp_dir().join(format!("sluice-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = FileStore::new(dir.join("c.yaml.state.json"));
        assert!(store.load().unwrap().is_none());
        let server: UpstreamServer = serde_json::from_value(json!({
            "server_name": "a", "server_address": "127.0.0.1", "server_port": 9,
            "api_key": "sk-upstream", "inject_headers": {"x-h": "v"}
        }))
        .unwrap();
        let mut e = Entities {
            upstream_servers: vec![server],
            ..Entities::default()
        };
        assert_eq!(e.next_id("upstream_servers"), 1);
        e.upstream_servers[0].id = 1;
        e.touch("upstream_servers", 1, true);
        store.save(&e).unwrap();
        let back = store.load().unwrap().unwrap();
        let s = &back.upstream_servers[0];
        assert_eq!(s.api_key, Some(Secret::new("sk-upstream".to_string())));
        assert_eq!(s.inject_headers["x-h"].expose(), "v");
        assert_eq!(back.last_ids["upstream_servers"], 1);
        assert!(back.stamp("upstream_servers", 1).is_some());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|d| d.ok())
            .filter(|d| d.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
