//! The MySQL (MariaDB) entity store (`config_store.kind: mysql`), shared by
//! every instance, via `mysql_async`. All calls run on the config I/O
//! runtime ([`super::io`]) within `config_store.timeout_ms`.
//!
//! # Schema
//! One table per entity kind (`sluice_namespaces`, `sluice_upstream_servers`,
//! `sluice_matchers`, `sluice_proxy_rules`, `sluice_routes`, `sluice_rules`,
//! `sluice_nginx_configs`), each `(id, body, created_at, updated_at)` with
//! the entity as JSON in `body` (upstream keys in clear: protect the
//! database), and `sluice_meta`: one row with the config `revision` and the
//! last ids handed out. `sluice_schema_migrations` records the applied
//! migrations; [`MysqlStore::connect`] creates the database when missing
//! and applies the pending ones under a named lock (instances starting
//! together migrate once).
//!
//! # Changes
//! [`EntityStore::save`] is one transaction: it moves `sluice_meta.revision`
//! from the caller's revision to the next one (`WHERE revision = ?`: when
//! another instance committed first, nothing changes and the caller gets
//! [`SaveError::Conflict`]), then writes only the rows that differ.

use super::config_file::{server_json, Entities, KINDS};
use super::entity_store::{EntityStore, SaveError};
use super::history::{self, AuditEntry, AuditQuery, Commit, RevisionRecord};
use super::io;
use super::StoreError;
use async_trait::async_trait;
use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, TxOpts};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Versioned migrations: (version, what, statements).
const MIGRATIONS: &[(u32, &str, &[&str])] = &[(
    1,
    "entity tables and meta",
    &[
        "CREATE TABLE IF NOT EXISTS sluice_meta (id TINYINT UNSIGNED PRIMARY KEY, revision BIGINT UNSIGNED NOT NULL, last_ids TEXT NOT NULL, updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_namespaces (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_upstream_servers (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_matchers (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_proxy_rules (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_routes (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_rules (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_nginx_configs (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
), (
    2,
    "API keys created through the admin API",
    &[
        "CREATE TABLE IF NOT EXISTS sluice_virtual_keys (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
), (
    3,
    "users",
    &[
        "CREATE TABLE IF NOT EXISTS sluice_users (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
), (
    4,
    "agents' Bridge tokens",
    &[
        "CREATE TABLE IF NOT EXISTS sluice_agent_tokens (id BIGINT UNSIGNED PRIMARY KEY, body LONGTEXT NOT NULL, created_at VARCHAR(19) NULL, updated_at VARCHAR(19) NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
), (
    5,
    "revision history and audit log",
    &[
        "CREATE TABLE IF NOT EXISTS sluice_revisions (revision BIGINT UNSIGNED PRIMARY KEY, at BIGINT UNSIGNED NOT NULL, actor VARCHAR(255) NOT NULL, cause VARCHAR(16) NOT NULL, summary TEXT NOT NULL, changes BIGINT UNSIGNED NOT NULL, snapshot LONGTEXT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE IF NOT EXISTS sluice_audit (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, revision BIGINT UNSIGNED NOT NULL, at BIGINT UNSIGNED NOT NULL, actor VARCHAR(255) NOT NULL, cause VARCHAR(16) NOT NULL, entity VARCHAR(32) NOT NULL, entity_id BIGINT UNSIGNED NOT NULL, operation VARCHAR(8) NOT NULL, before_value LONGTEXT NULL, after_value LONGTEXT NULL, KEY by_entity (entity, entity_id, id), KEY by_at (at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ],
)];

/// One stored row: body and timestamps.
type Row = (String, Option<String>, Option<String>);

/// The MySQL entity store.
#[derive(Clone)]
pub struct MysqlStore {
    pool: Pool,
    timeout: Duration,
}

fn db_err(e: mysql_async::Error) -> StoreError {
    StoreError::from(e)
}

impl MysqlStore {
    /// Opens the pool on the I/O runtime, creates the database when
    /// missing and applies pending migrations. Fails when MySQL cannot be
    /// reached (a store that cannot be read cannot start the gateway).
    pub async fn connect(url: &str, timeout: Duration) -> Result<MysqlStore, StoreError> {
        let opts = Opts::from_url(url)
            .map_err(|e| StoreError::Invalid(format!("invalid mysql_url: {e}")))?;
        let db = opts.db_name().map(str::to_string);
        let pool_opts = PoolOpts::default()
            .with_constraints(PoolConstraints::new(0, 4).unwrap_or_default())
            .with_inactive_connection_ttl(Duration::from_secs(30))
            .with_ttl_check_interval(Duration::from_secs(10));
        // Connect where the URL says (mysql_async would switch to the
        // server's Unix socket on loopback otherwise).
        let server = OptsBuilder::from_opts(opts.clone())
            .db_name(None::<String>)
            .prefer_socket(false);
        let opts = OptsBuilder::from_opts(opts)
            .pool_opts(pool_opts)
            .prefer_socket(false);
        io::run(timeout, async move {
            if let Some(db) = db {
                if db.contains('`') {
                    return Err(StoreError::Invalid(
                        "mysql_url: the database name must not contain a backquote".into(),
                    ));
                }
                let mut conn = Conn::new(server).await.map_err(db_err)?;
                conn.query_drop(format!(
                    "CREATE DATABASE IF NOT EXISTS `{db}` CHARACTER SET utf8mb4"
                ))
                .await
                .map_err(db_err)?;
                let _ = conn.disconnect().await;
            }
            let pool = Pool::new(opts);
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            migrate(&mut conn).await?;
            Ok(MysqlStore { pool, timeout })
        })
        .await
    }
}

/// Applies the migrations not yet recorded, under a named lock.
async fn migrate(conn: &mut Conn) -> Result<(), StoreError> {
    let locked: Option<i64> = conn
        .query_first("SELECT GET_LOCK('sluice_migrate', 30)")
        .await
        .map_err(db_err)?;
    if locked != Some(1) {
        return Err(StoreError::Mysql(
            "could not take the migration lock within 30 s".into(),
        ));
    }
    let result = async {
        conn.query_drop("CREATE TABLE IF NOT EXISTS sluice_schema_migrations (version INT UNSIGNED PRIMARY KEY, description VARCHAR(200) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB")
            .await
            .map_err(db_err)?;
        let done: Vec<u32> = conn
            .query("SELECT version FROM sluice_schema_migrations")
            .await
            .map_err(db_err)?;
        for (version, what, statements) in MIGRATIONS {
            if done.contains(version) {
                continue;
            }
            for s in *statements {
                conn.query_drop(*s).await.map_err(db_err)?;
            }
            conn.exec_drop(
                "INSERT INTO sluice_schema_migrations (version, description) VALUES (?, ?)",
                (version, what),
            )
            .await
            .map_err(db_err)?;
            log::warn!("config store: mysql migration {version} ({what}) applied");
        }
        Ok(())
    }
    .await;
    let _ = conn.query_drop("DO RELEASE_LOCK('sluice_migrate')").await;
    result
}

/// Every entity as a row, by kind and id.
fn rows(e: &Entities) -> BTreeMap<(&'static str, u64), Row> {
    fn add<T: serde::Serialize>(
        out: &mut BTreeMap<(&'static str, u64), Row>,
        e: &Entities,
        kind: &'static str,
        items: &[T],
        id: impl Fn(&T) -> u64,
        body: impl Fn(&T) -> Value,
    ) {
        for item in items {
            let id = id(item);
            let stamp = e.stamp(kind, id);
            out.insert(
                (kind, id),
                (
                    body(item).to_string(),
                    stamp.map(|s| s.created_at.clone()),
                    stamp.map(|s| s.updated_at.clone()),
                ),
            );
        }
    }
    let mut out = BTreeMap::new();
    add(&mut out, e, "namespaces", &e.namespaces, |n| n.id, plain);
    add(
        &mut out,
        e,
        "upstream_servers",
        &e.upstream_servers,
        |s| s.id,
        server_json,
    );
    add(&mut out, e, "matchers", &e.matchers, |m| m.id, plain);
    add(&mut out, e, "proxy_rules", &e.proxy_rules, |r| r.id, plain);
    add(&mut out, e, "routes", &e.routes, |r| r.id, plain);
    add(&mut out, e, "rules", &e.rules, |r| r.id, plain);
    add(
        &mut out,
        e,
        "nginx_configs",
        &e.nginx_configs,
        |r| r.id,
        plain,
    );
    add(
        &mut out,
        e,
        "virtual_keys",
        &e.virtual_keys,
        |k| k.id,
        plain,
    );
    add(&mut out, e, "users", &e.users, |u| u.id, plain);
    add(
        &mut out,
        e,
        "agent_tokens",
        &e.agent_tokens,
        |t| t.id,
        plain,
    );
    out
}

/// An entity's own JSON (these types carry no secrets).
fn plain<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn last_ids_text(e: &Entities) -> String {
    serde_json::to_string(&e.last_ids).unwrap_or_else(|_| "{}".into())
}

/// Writes the rows of `next` that differ from `prev`, and deletes the gone ones.
async fn write_diff(
    tx: &mut mysql_async::Transaction<'_>,
    prev: &Entities,
    next: &Entities,
) -> Result<(), mysql_async::Error> {
    let before = rows(prev);
    let after = rows(next);
    for (kind, id) in before.keys() {
        if !after.contains_key(&(*kind, *id)) {
            tx.exec_drop(format!("DELETE FROM sluice_{kind} WHERE id = ?"), (id,))
                .await?;
        }
    }
    for ((kind, id), row) in &after {
        if before.get(&(*kind, *id)) == Some(row) {
            continue;
        }
        tx.exec_drop(
            format!("INSERT INTO sluice_{kind} (id, body, created_at, updated_at) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE body = VALUES(body), created_at = VALUES(created_at), updated_at = VALUES(updated_at)"),
            (id, &row.0, &row.1, &row.2),
        )
        .await?;
    }
    Ok(())
}

/// Records `commit` (the revision's snapshot and its audit entries) and
/// drops what is past the kept history, in the change's transaction.
async fn record(
    tx: &mut mysql_async::Transaction<'_>,
    commit: &Commit,
    prev: &Entities,
    next: &Entities,
) -> Result<(), mysql_async::Error> {
    let r = &commit.record;
    // The first recorded change also keeps the configuration it started
    // from (a store older than the history), so it can be restored.
    let any: Option<u64> = tx
        .query_first("SELECT revision FROM sluice_revisions LIMIT 1")
        .await?;
    if any.is_none() && prev.revision > 0 && prev.revision < r.revision {
        tx.exec_drop(
            "INSERT IGNORE INTO sluice_revisions (revision, at, actor, cause, summary, changes, snapshot) VALUES (?, ?, 'system', 'import', 'the starting configuration', 0, ?)",
            (prev.revision, r.at, prev.to_json().to_string()),
        )
        .await?;
    }
    tx.exec_drop(
        "REPLACE INTO sluice_revisions (revision, at, actor, cause, summary, changes, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            r.revision,
            r.at,
            &r.actor,
            &r.cause,
            &r.summary,
            r.changes,
            next.to_json().to_string(),
        ),
    )
    .await?;
    let text = |v: &Option<Value>| v.as_ref().map(Value::to_string);
    tx.exec_batch(
        "INSERT INTO sluice_audit (revision, at, actor, cause, entity, entity_id, operation, before_value, after_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        commit.changes.iter().map(|c| {
            (
                r.revision,
                r.at,
                &r.actor,
                &r.cause,
                &c.entity,
                c.entity_id,
                c.operation.as_str(),
                text(&c.before),
                text(&c.after),
            )
        }),
    )
    .await?;
    tx.exec_drop(
        "DELETE FROM sluice_revisions WHERE revision + ? <= ?",
        (history::REVISIONS_KEPT, r.revision),
    )
    .await?;
    let newest: Option<Option<u64>> = tx.query_first("SELECT MAX(id) FROM sluice_audit").await?;
    if let Some(newest) = newest.flatten().filter(|n| *n > history::AUDIT_KEPT) {
        tx.exec_drop(
            "DELETE FROM sluice_audit WHERE id <= ?",
            (newest - history::AUDIT_KEPT,),
        )
        .await?;
    }
    Ok(())
}

/// Reads the whole snapshot with `conn` (`None` when never seeded).
async fn read_all(conn: &mut impl Queryable) -> Result<Option<Entities>, StoreError> {
    let meta: Option<(u64, String)> = conn
        .query_first("SELECT revision, last_ids FROM sluice_meta WHERE id = 1")
        .await
        .map_err(db_err)?;
    let Some((revision, last_ids)) = meta else {
        return Ok(None);
    };
    let mut doc = Map::new();
    let mut stamps = Map::new();
    for kind in KINDS {
        let items: Vec<(u64, String, Option<String>, Option<String>)> = conn
            .query(format!(
                "SELECT id, body, created_at, updated_at FROM sluice_{kind} ORDER BY id"
            ))
            .await
            .map_err(db_err)?;
        let mut list = Vec::new();
        for (id, body, created, updated) in items {
            let v: Value = serde_json::from_str(&body).map_err(|e| {
                StoreError::Corrupt(format!("mysql: sluice_{kind} id {id}: not valid JSON: {e}"))
            })?;
            list.push(v);
            if let (Some(c), Some(u)) = (created, updated) {
                stamps.insert(
                    format!("{kind}/{id}"),
                    json!({"created_at": c, "updated_at": u}),
                );
            }
        }
        doc.insert(kind.to_string(), Value::Array(list));
    }
    let last: Value = serde_json::from_str(&last_ids).unwrap_or_else(|_| json!({}));
    doc.insert("last_ids".into(), last);
    doc.insert("stamps".into(), Value::Object(stamps));
    doc.insert("revision".into(), revision.into());
    serde_path_to_error::deserialize(Value::Object(doc))
        .map(Some)
        .map_err(|e| {
            StoreError::Corrupt(format!(
                "mysql: stored entities: {}: {}",
                e.path(),
                e.inner()
            ))
        })
}

#[async_trait]
impl EntityStore for MysqlStore {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    async fn load(&self) -> Result<Option<Entities>, StoreError> {
        let pool = self.pool.clone();
        io::run(self.timeout, async move {
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            read_all(&mut conn).await
        })
        .await
    }

    async fn save(
        &self,
        prev: &Entities,
        next: &Entities,
        commit: &Commit,
    ) -> Result<(), SaveError> {
        let pool = self.pool.clone();
        let (prev, next, commit) = (prev.clone(), next.clone(), commit.clone());
        let outcome = io::run(self.timeout, async move {
            let mut tx = pool
                .start_transaction(TxOpts::default())
                .await
                .map_err(db_err)?;
            let moved = if prev.revision == 0 {
                // Seeding an empty store: a second seeder hits the key.
                match tx
                    .exec_drop(
                        "INSERT INTO sluice_meta (id, revision, last_ids) VALUES (1, ?, ?)",
                        (next.revision, last_ids_text(&next)),
                    )
                    .await
                {
                    Ok(()) => true,
                    Err(mysql_async::Error::Server(e)) if e.code == 1062 => false,
                    Err(e) => return Err(db_err(e)),
                }
            } else {
                tx.exec_drop(
                    "UPDATE sluice_meta SET revision = ?, last_ids = ? WHERE id = 1 AND revision = ?",
                    (next.revision, last_ids_text(&next), prev.revision),
                )
                .await
                .map_err(db_err)?;
                tx.affected_rows() == 1
            };
            if !moved {
                tx.rollback().await.map_err(db_err)?;
                return Ok(false);
            }
            write_diff(&mut tx, &prev, &next).await.map_err(db_err)?;
            record(&mut tx, &commit, &prev, &next).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
        .await;
        match outcome {
            Ok(true) => Ok(()),
            Ok(false) => Err(SaveError::Conflict),
            Err(e) => Err(SaveError::Unavailable(e)),
        }
    }

    async fn replace(&self, mut entities: Entities) -> Result<Entities, StoreError> {
        let pool = self.pool.clone();
        io::run(self.timeout, async move {
            let mut tx = pool
                .start_transaction(TxOpts::default())
                .await
                .map_err(db_err)?;
            let current: Option<u64> = tx
                .query_first("SELECT revision FROM sluice_meta WHERE id = 1 FOR UPDATE")
                .await
                .map_err(db_err)?;
            entities.revision = current.unwrap_or(0) + 1;
            // What the import replaces, for its audit entries.
            let stored = read_all(&mut tx).await?.unwrap_or_default();
            let commit = Commit::import(&stored, &entities);
            for kind in KINDS {
                tx.query_drop(format!("DELETE FROM sluice_{kind}"))
                    .await
                    .map_err(db_err)?;
            }
            tx.exec_drop(
                "INSERT INTO sluice_meta (id, revision, last_ids) VALUES (1, ?, ?) ON DUPLICATE KEY UPDATE revision = VALUES(revision), last_ids = VALUES(last_ids)",
                (entities.revision, last_ids_text(&entities)),
            )
            .await
            .map_err(db_err)?;
            write_diff(&mut tx, &Entities::default(), &entities)
                .await
                .map_err(db_err)?;
            record(&mut tx, &commit, &stored, &entities).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(entities)
        })
        .await
    }

    async fn revisions(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<RevisionRecord>, StoreError> {
        let pool = self.pool.clone();
        io::run(self.timeout, async move {
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            let rows: Vec<(u64, u64, String, String, String, u64)> = conn
                .exec(
                    "SELECT revision, at, actor, cause, summary, changes FROM sluice_revisions WHERE revision < ? ORDER BY revision DESC LIMIT ?",
                    (before.unwrap_or(u64::MAX), limit as u64),
                )
                .await
                .map_err(db_err)?;
            Ok(rows
                .into_iter()
                .map(|(revision, at, actor, cause, summary, changes)| RevisionRecord {
                    revision,
                    at,
                    actor,
                    cause,
                    summary,
                    changes,
                })
                .collect())
        })
        .await
    }

    async fn snapshot(&self, n: u64) -> Result<Option<Entities>, StoreError> {
        let pool = self.pool.clone();
        io::run(self.timeout, async move {
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            let body: Option<String> = conn
                .exec_first(
                    "SELECT snapshot FROM sluice_revisions WHERE revision = ?",
                    (n,),
                )
                .await
                .map_err(db_err)?;
            body.map(|b| {
                let mut de = serde_json::Deserializer::from_str(&b);
                serde_path_to_error::deserialize(&mut de).map_err(|e| {
                    StoreError::Corrupt(format!(
                        "mysql: sluice_revisions {n}: {}: {}",
                        e.path(),
                        e.inner()
                    ))
                })
            })
            .transpose()
        })
        .await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let pool = self.pool.clone();
        let q = q.clone();
        io::run(self.timeout, async move {
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            let mut sql = String::from(
                "SELECT id, revision, at, actor, cause, entity, entity_id, operation, before_value, after_value FROM sluice_audit WHERE id < ?",
            );
            let mut params: Vec<mysql_async::Value> = vec![q.before.unwrap_or(u64::MAX).into()];
            if let Some(entity) = &q.entity {
                sql.push_str(" AND entity = ?");
                params.push(entity.as_str().into());
            }
            if let Some(id) = q.entity_id {
                sql.push_str(" AND entity_id = ?");
                params.push(id.into());
            }
            if let Some(since) = q.since {
                sql.push_str(" AND at >= ?");
                params.push(since.into());
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            params.push((q.limit as u64).into());
            type AuditRow = (
                u64,
                u64,
                u64,
                String,
                String,
                String,
                u64,
                String,
                Option<String>,
                Option<String>,
            );
            let rows: Vec<AuditRow> = conn.exec(sql, params).await.map_err(db_err)?;
            let value = |v: Option<String>| v.and_then(|t| serde_json::from_str(&t).ok());
            Ok(rows
                .into_iter()
                .filter_map(|(id, revision, at, actor, cause, entity, entity_id, op, before, after)| {
                    Some(AuditEntry {
                        id,
                        revision,
                        at,
                        actor,
                        cause,
                        change: history::Change {
                            entity,
                            entity_id,
                            operation: history::Operation::parse(&op)?,
                            before: value(before),
                            after: value(after),
                        },
                    })
                })
                .collect())
        })
        .await
    }

    async fn revision(&self) -> Result<u64, StoreError> {
        let pool = self.pool.clone();
        io::run(self.timeout, async move {
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            let r: Option<u64> = conn
                .query_first("SELECT revision FROM sluice_meta WHERE id = 1")
                .await
                .map_err(db_err)?;
            Ok(r.unwrap_or(0))
        })
        .await
    }

    async fn ping(&self) -> bool {
        let pool = self.pool.clone();
        io::run(self.timeout, async move {
            let mut conn = pool.get_conn().await.map_err(db_err)?;
            conn.ping().await.map_err(db_err)
        })
        .await
        .is_ok()
    }
}
