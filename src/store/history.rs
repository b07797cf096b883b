//! The config center's history: what each committed revision changed, by
//! whom, and the revision's whole snapshot (to diff and restore).
//!
//! - [`Commit`]: made by the config center for every change it commits (and
//!   by the stores for a YAML import or seed): the [`RevisionRecord`] and
//!   the entity [`Change`]s, each with its before/after value **masked**
//!   ([`masked`]: secrets, key and password hashes never leave the store
//!   through the history).
//! - [`diff`]: the changes between two snapshots, per entity kind and id
//!   (pure; also what the admin API's revision diff answers).
//! - [`Memory`]: a bounded in-process history, for a config center without
//!   a store, and (records only) the file store's index of its history
//!   files.
//!
//! The stores keep at most [`REVISIONS_KEPT`] revisions and
//! [`AUDIT_KEPT`] audit entries (older ones are dropped as new ones come).

use super::config_file::Entities;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use utoipa::ToSchema;

/// Revisions (with their snapshots) a store keeps.
pub const REVISIONS_KEPT: u64 = 200;
/// Audit entries a store keeps.
pub const AUDIT_KEPT: u64 = 50_000;

/// What happened to one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "create" => Some(Operation::Create),
            "update" => Some(Operation::Update),
            "delete" => Some(Operation::Delete),
            _ => None,
        }
    }
}

/// One entity's change: its kind and id, and its value before and after
/// (masked; none when it did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// The entity kind (`namespaces`, `rules`, …).
    pub entity: String,
    pub entity_id: u64,
    pub operation: Operation,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// One audit entry: a change, who made it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    /// Increasing with every entry.
    pub id: u64,
    /// The revision the change made.
    pub revision: u64,
    /// Unix seconds.
    pub at: u64,
    /// `token:<name>`, `user:<e-mail>` or `system`.
    pub actor: String,
    /// Why: `change` (the admin API), `restore`, `import` (the YAML).
    pub cause: String,
    #[serde(flatten)]
    pub change: Change,
}

/// One committed revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RevisionRecord {
    pub revision: u64,
    /// Unix seconds.
    pub at: u64,
    pub actor: String,
    /// `change`, `restore` (with the revision restored in `summary`) or `import`.
    pub cause: String,
    /// The changes in a few words (`namespaces/3 created, rules/7 updated`).
    pub summary: String,
    /// How many entities changed.
    pub changes: u64,
}

/// What a commit records besides the entities.
#[derive(Debug, Clone)]
pub struct Commit {
    pub record: RevisionRecord,
    pub changes: Vec<Change>,
}

impl Commit {
    /// The commit of `next` over `prev`, made by `actor` for `cause` at `at`.
    pub fn new(prev: &Entities, next: &Entities, actor: &str, cause: &str, at: u64) -> Commit {
        let changes = diff(prev, next);
        let record = RevisionRecord {
            revision: next.revision,
            at,
            actor: actor.to_string(),
            cause: cause.to_string(),
            summary: summary(&changes),
            changes: changes.len() as u64,
        };
        Commit { record, changes }
    }

    /// An import of the YAML's entities (`next`) over what was stored
    /// (`prev`), by the gateway itself, now.
    pub fn import(prev: &Entities, next: &Entities) -> Commit {
        Commit::new(prev, next, "system", "import", crate::clock::unix_secs())
    }

    /// The audit entries, numbered from `first_id`.
    pub fn entries(&self, first_id: u64) -> Vec<AuditEntry> {
        self.changes
            .iter()
            .enumerate()
            .map(|(i, c)| AuditEntry {
                id: first_id + i as u64,
                revision: self.record.revision,
                at: self.record.at,
                actor: self.record.actor.clone(),
                cause: self.record.cause.clone(),
                change: c.clone(),
            })
            .collect()
    }
}

/// `namespaces/3 created, rules/7 updated` (the first few, then a count).
fn summary(changes: &[Change]) -> String {
    const SHOWN: usize = 5;
    let mut parts: Vec<String> = changes
        .iter()
        .take(SHOWN)
        .map(|c| {
            let done = match c.operation {
                Operation::Create => "created",
                Operation::Update => "updated",
                Operation::Delete => "deleted",
            };
            format!("{}/{} {done}", c.entity, c.entity_id)
        })
        .collect();
    if changes.len() > SHOWN {
        parts.push(format!("{} more", changes.len() - SHOWN));
    }
    if parts.is_empty() {
        "no entity changed".into()
    } else {
        parts.join(", ")
    }
}

/// Every entity of a snapshot as its masked JSON, by kind and id.
fn entities(e: &Entities) -> BTreeMap<(&'static str, u64), Value> {
    fn add<T: Serialize>(
        out: &mut BTreeMap<(&'static str, u64), Value>,
        kind: &'static str,
        items: &[T],
        id: impl Fn(&T) -> u64,
    ) {
        for item in items {
            let v = serde_json::to_value(item).unwrap_or(Value::Null);
            out.insert((kind, id(item)), masked(v));
        }
    }
    let mut out = BTreeMap::new();
    add(&mut out, "namespaces", &e.namespaces, |n| n.id);
    add(&mut out, "upstream_servers", &e.upstream_servers, |s| s.id);
    add(&mut out, "matchers", &e.matchers, |m| m.id);
    add(&mut out, "proxy_rules", &e.proxy_rules, |r| r.id);
    add(&mut out, "routes", &e.routes, |r| r.id);
    add(&mut out, "rules", &e.rules, |r| r.id);
    add(&mut out, "nginx_configs", &e.nginx_configs, |r| r.id);
    add(&mut out, "virtual_keys", &e.virtual_keys, |k| k.id);
    add(&mut out, "users", &e.users, |u| u.id);
    add(&mut out, "agent_tokens", &e.agent_tokens, |t| t.id);
    out
}

/// Fields whose values never leave the store through the history (the
/// entities' own serialization already writes `***` for secrets such as
/// upstream API keys and injected headers).
const MASKED_FIELDS: [&str; 4] = ["password_hash", "key_sha256", "previous_sha256", "sha256"];

/// `v` with the values of [`MASKED_FIELDS`] replaced by `***`, at any depth.
pub fn masked(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for (k, val) in map.iter_mut() {
                    if MASKED_FIELDS.contains(&k.as_str()) && val.is_string() {
                        *val = Value::from("***");
                    } else {
                        walk(val);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// The entity changes that turn `prev` into `next`, in kind then id order.
pub fn diff(prev: &Entities, next: &Entities) -> Vec<Change> {
    let before = entities(prev);
    let mut after = entities(next);
    let mut out = Vec::new();
    for ((kind, id), old) in before {
        match after.remove(&(kind, id)) {
            Some(new) if new == old => {}
            Some(new) => out.push(Change {
                entity: kind.into(),
                entity_id: id,
                operation: Operation::Update,
                before: Some(old),
                after: Some(new),
            }),
            None => out.push(Change {
                entity: kind.into(),
                entity_id: id,
                operation: Operation::Delete,
                before: Some(old),
                after: None,
            }),
        }
    }
    for ((kind, id), new) in after {
        out.push(Change {
            entity: kind.into(),
            entity_id: id,
            operation: Operation::Create,
            before: None,
            after: Some(new),
        });
    }
    out.sort_by(|a, b| (&a.entity, a.entity_id).cmp(&(&b.entity, b.entity_id)));
    out
}

/// Which audit entries to list (newest first).
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only this entity kind.
    pub entity: Option<String>,
    /// Only this entity id (with `entity`).
    pub entity_id: Option<u64>,
    /// Only entries at or after these Unix seconds.
    pub since: Option<u64>,
    /// Only entries with a smaller id (the next page).
    pub before: Option<u64>,
    pub limit: usize,
}

impl AuditQuery {
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.entity.as_ref().is_none_or(|k| *k == e.change.entity)
            && self.entity_id.is_none_or(|id| id == e.change.entity_id)
            && self.since.is_none_or(|s| e.at >= s)
            && self.before.is_none_or(|b| e.id < b)
    }
}

/// A bounded in-process history: the revision records (with their
/// snapshots, unless made [`Memory::records_only`]) and the audit entries,
/// oldest first.
#[derive(Debug, Default)]
pub struct Memory {
    revisions: VecDeque<(RevisionRecord, Option<Entities>)>,
    audit: VecDeque<AuditEntry>,
    last_id: u64,
    /// Snapshots are kept elsewhere (the file store's files).
    records_only: bool,
}

/// What one commit added to a [`Memory`], for its owner to persist.
#[derive(Debug, Default)]
pub struct Recorded {
    /// The revisions added with their snapshots (a first commit also
    /// keeps the configuration it started from, so it can be restored).
    pub revisions: Vec<(RevisionRecord, Entities)>,
    pub audit: Vec<AuditEntry>,
    /// Revisions dropped past the bound.
    pub dropped: Vec<u64>,
}

impl Memory {
    /// A history that keeps records and audit entries but no snapshots.
    pub fn records_only() -> Memory {
        Memory {
            records_only: true,
            ..Memory::default()
        }
    }

    fn push(&mut self, record: RevisionRecord, snapshot: &Entities) {
        let kept = (!self.records_only).then(|| snapshot.clone());
        self.revisions.push_back((record, kept));
    }

    /// Records a commit of `next` over `prev`.
    pub fn record(&mut self, commit: &Commit, prev: &Entities, next: &Entities) -> Recorded {
        let mut out = Recorded::default();
        if self.revisions.is_empty() && prev.revision < next.revision {
            let start = RevisionRecord {
                revision: prev.revision,
                at: commit.record.at,
                actor: "system".into(),
                cause: "import".into(),
                summary: "the starting configuration".into(),
                changes: 0,
            };
            self.push(start.clone(), prev);
            out.revisions.push((start, prev.clone()));
        }
        out.audit = commit.entries(self.last_id + 1);
        self.last_id += out.audit.len() as u64;
        self.audit.extend(out.audit.iter().cloned());
        self.push(commit.record.clone(), next);
        out.revisions.push((commit.record.clone(), next.clone()));
        out.dropped = self.bound();
        out
    }

    /// Adds records and entries read back from storage (oldest first).
    pub fn restore_from(&mut self, revisions: Vec<RevisionRecord>, audit: Vec<AuditEntry>) {
        self.last_id = audit
            .iter()
            .map(|e| e.id)
            .max()
            .unwrap_or(0)
            .max(self.last_id);
        self.revisions
            .extend(revisions.into_iter().map(|r| (r, None)));
        self.audit.extend(audit);
        self.bound();
    }

    /// Drops what is past the bounds; the revisions dropped.
    fn bound(&mut self) -> Vec<u64> {
        let mut dropped = Vec::new();
        while self.revisions.len() as u64 > REVISIONS_KEPT {
            if let Some((r, _)) = self.revisions.pop_front() {
                dropped.push(r.revision);
            }
        }
        while self.audit.len() as u64 > AUDIT_KEPT {
            self.audit.pop_front();
        }
        dropped
    }

    /// Up to `limit` revision records below `before`, newest first.
    pub fn revisions(&self, before: Option<u64>, limit: usize) -> Vec<RevisionRecord> {
        self.revisions
            .iter()
            .rev()
            .filter(|(r, _)| before.is_none_or(|b| r.revision < b))
            .take(limit)
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Whether revision `n` is kept.
    pub fn keeps(&self, n: u64) -> bool {
        self.revisions.iter().any(|(r, _)| r.revision == n)
    }

    /// The snapshot of revision `n`, while kept here.
    pub fn snapshot(&self, n: u64) -> Option<Entities> {
        self.revisions
            .iter()
            .find(|(r, _)| r.revision == n)
            .and_then(|(_, e)| e.clone())
    }

    /// The audit entries `q` asks for, newest first.
    pub fn audit(&self, q: &AuditQuery) -> Vec<AuditEntry> {
        self.audit
            .iter()
            .rev()
            .filter(|e| q.matches(e))
            .take(q.limit)
            .cloned()
            .collect()
    }

    /// The kept revision records and audit entries, oldest first (to
    /// write out when compacting).
    pub fn kept(&self) -> (Vec<&RevisionRecord>, &VecDeque<AuditEntry>) {
        (self.revisions.iter().map(|(r, _)| r).collect(), &self.audit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Namespace, User};

    fn ns(id: u64, code: &str) -> Namespace {
        serde_json::from_value(serde_json::json!({
            "id": id, "namespace_code": code, "namespace_name": code
        }))
        .unwrap()
    }

    #[test]
    fn diff_names_created_updated_and_deleted_entities_masked() {
        let a = Entities {
            namespaces: vec![ns(1, "a"), ns(2, "b")],
            ..Default::default()
        };
        let user: User = serde_json::from_value(serde_json::json!({
            "id": 4, "email": "x@y.z", "password_hash": "$argon2id$secret"
        }))
        .unwrap();
        let mut b = a.clone();
        b.namespaces = vec![ns(1, "a2"), ns(3, "c")];
        b.users = vec![user];
        let d = diff(&a, &b);
        let ops: Vec<_> = d
            .iter()
            .map(|c| (c.entity.as_str(), c.entity_id, c.operation))
            .collect();
        assert_eq!(
            ops,
            [
                ("namespaces", 1, Operation::Update),
                ("namespaces", 2, Operation::Delete),
                ("namespaces", 3, Operation::Create),
                ("users", 4, Operation::Create),
            ]
        );
        assert_eq!(d[0].after.as_ref().unwrap()["namespace_code"], "a2");
        assert_eq!(d[3].after.as_ref().unwrap()["password_hash"], "***");
        assert!(!serde_json::to_string(&d).unwrap().contains("argon2id"));
        assert!(diff(&b, &b).is_empty());
        let c = Commit::new(&a, &b, "token:ops", "change", 5);
        assert_eq!(
            c.record.summary,
            "namespaces/1 updated, namespaces/2 deleted, namespaces/3 created, users/4 created"
        );
    }

    #[test]
    fn memory_is_bounded_and_pages_newest_first() {
        let mut m = Memory::default();
        let mut prev = Entities::default();
        for r in 1..=(REVISIONS_KEPT + 5) {
            let mut next = prev.clone();
            next.revision = r;
            next.namespaces.push(ns(r, &format!("n{r}")));
            m.record(
                &Commit::new(&prev, &next, "system", "change", r),
                &prev,
                &next,
            );
            prev = next;
        }
        let page = m.revisions(None, 3);
        assert_eq!(
            page.iter().map(|r| r.revision).collect::<Vec<_>>(),
            [REVISIONS_KEPT + 5, REVISIONS_KEPT + 4, REVISIONS_KEPT + 3]
        );
        assert!(
            m.snapshot(0).is_none() && m.snapshot(5).is_none(),
            "dropped past the bound"
        );
        assert_eq!(m.snapshot(10).unwrap().namespaces.len(), 10);
        let q = AuditQuery {
            entity: Some("namespaces".into()),
            before: Some(4),
            limit: 10,
            ..Default::default()
        };
        let ids: Vec<u64> = m.audit(&q).iter().map(|e| e.id).collect();
        assert_eq!(ids, [3, 2, 1]);
    }
}
