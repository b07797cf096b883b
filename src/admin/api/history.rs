//! Who changed what, and going back: `GET /api/v1/audit` (the audit log,
//! newest first, filtered and paged), `GET /api/v1/revisions` (the kept
//! revisions), `GET /api/v1/revisions/diff` (what changed between two
//! kept revisions, values masked) and `POST /api/v1/revisions/{n}/restore`
//! (a new revision whose configuration equals revision `n`'s, made and
//! audited like any change). Also who the caller is (`GET
//! /api/v1/whoami`) and the console's sign-in of admin users (`POST
//! /api/v1/auth/login`).
//!
//! A restore brings back the configuration entities (namespaces, upstream
//! servers, matchers, proxy rules, routes, rules, setting fragments);
//! credentials (API keys, users, agent tokens) stay as they are now, so a
//! restore never revives a revoked key or an ended session.

use super::super::center::ConfigCenter;
use super::*;
use crate::store::config_file::KINDS;
use crate::store::history::{AuditEntry, AuditQuery, Change, RevisionRecord};

/// The most entries or revisions one page lists.
const MAX_PAGE: usize = 500;

/// `GET /api/v1/audit`.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryView>,
    /// Pass as `before` for the next (older) page; null = no more.
    pub next_before: Option<u64>,
}

/// An audit entry as shown (`at` as RFC 3339).
#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: u64,
    pub revision: u64,
    pub at: String,
    /// `token:<name>`, `user:<e-mail>` or `system`.
    pub actor: String,
    /// `change`, `restore` or `import`.
    pub cause: String,
    pub entity: String,
    pub entity_id: u64,
    /// `create`, `update` or `delete`.
    pub operation: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            id: e.id,
            revision: e.revision,
            at: crate::clock::rfc3339(e.at),
            actor: e.actor,
            cause: e.cause,
            entity: e.change.entity,
            entity_id: e.change.entity_id,
            operation: e.change.operation.as_str().into(),
            before: e.change.before,
            after: e.change.after,
        }
    }
}

/// `GET /api/v1/revisions`.
#[derive(Serialize, ToSchema)]
pub struct RevisionPage {
    /// The applied revision.
    pub current: u64,
    pub items: Vec<RevisionView>,
    pub next_before: Option<u64>,
}

/// A kept revision.
#[derive(Serialize, ToSchema)]
pub struct RevisionView {
    pub revision: u64,
    pub at: String,
    pub actor: String,
    /// `change`, `restore` or `import`.
    pub cause: String,
    pub summary: String,
    /// Entities changed.
    pub changes: u64,
}

impl From<RevisionRecord> for RevisionView {
    fn from(r: RevisionRecord) -> Self {
        RevisionView {
            revision: r.revision,
            at: crate::clock::rfc3339(r.at),
            actor: r.actor,
            cause: r.cause,
            summary: r.summary,
            changes: r.changes,
        }
    }
}

/// `GET /api/v1/revisions/diff`.
#[derive(Serialize, ToSchema)]
pub struct RevisionDiff {
    pub from: u64,
    pub to: u64,
    pub changes: Vec<Change>,
}

/// `POST /api/v1/revisions/{revision}/restore`.
#[derive(Serialize, ToSchema)]
pub struct Restored {
    /// The new revision (equal in configuration to `restored_from`).
    pub revision: u64,
    pub restored_from: u64,
    pub changes: Vec<Change>,
}

/// `GET /api/v1/whoami`.
#[derive(Serialize, ToSchema)]
pub struct WhoAmI {
    /// `token:<name>` or `user:<e-mail>`.
    pub actor: String,
    /// `token` or `user`.
    pub kind: String,
}

/// `POST /api/v1/auth/login` (admin users only).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "admin@example.com", "password": "..."}))]
pub struct AdminLogin {
    pub email: String,
    pub password: String,
}

impl Body for AdminLogin {}

/// The access token of an admin user (send it as `Authorization: Bearer`).
#[derive(Serialize, ToSchema)]
pub struct AdminSession {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub actor: String,
}

fn number(c: &Call<'_>, name: &str) -> Result<Option<u64>, ApiError> {
    c.query_param(name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("{name}: 需要非负整数，而不是 {v:?}")))
        })
        .transpose()
}

fn limit(c: &Call<'_>, default: usize) -> Result<usize, ApiError> {
    match number(c, "limit")? {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE as u64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit: 需要 1 到 {MAX_PAGE} 之间的整数，而不是 {n}"
        ))),
    }
}

/// `since`: Unix seconds or an RFC 3339 time.
fn since(c: &Call<'_>) -> Result<Option<u64>, ApiError> {
    let Some(v) = c.query_param("since") else {
        return Ok(None);
    };
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Some(secs));
    }
    humantime::parse_rfc3339_weak(&v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| Some(d.as_secs()))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "since: 需要 Unix 秒数或 RFC 3339 时间 (2026-12-05T10:00:00Z)，而不是 {v:?}"
            ))
        })
}

fn store_down(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(503, format!("配置存储不可用，无法读取历史: {e}"))
}

pub fn audit(c: Call<'_>, _: NoBody) -> Pending<'_, AuditPage> {
    Box::pin(async move {
        let entity = c.query_param("entity");
        if let Some(k) = &entity {
            if !KINDS.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "entity: 需要 {} 之一，而不是 {k:?}",
                    KINDS.join(", ")
                )));
            }
        }
        let entity_id = number(&c, "entity_id")?;
        if entity_id.is_some() && entity.is_none() {
            return Err(ApiError::bad_request("entity_id: 需要同时给出 entity"));
        }
        let q = AuditQuery {
            entity,
            entity_id,
            since: since(&c)?,
            before: number(&c, "before")?,
            limit: limit(&c, 100)?,
        };
        let items = c.center.audit(&q).await.map_err(store_down)?;
        let next_before = (items.len() == q.limit)
            .then(|| items.last().map(|e| e.id))
            .flatten();
        Ok(AuditPage {
            items: items.into_iter().map(AuditEntryView::from).collect(),
            next_before,
        })
    })
}

pub fn revisions(c: Call<'_>, _: NoBody) -> Pending<'_, RevisionPage> {
    Box::pin(async move {
        let limit = limit(&c, 50)?;
        let items = c
            .center
            .revisions(number(&c, "before")?, limit)
            .await
            .map_err(store_down)?;
        let next_before = (items.len() == limit)
            .then(|| items.last().map(|r| r.revision))
            .flatten();
        Ok(RevisionPage {
            current: c.center.snapshot().revision,
            items: items.into_iter().map(RevisionView::from).collect(),
            next_before,
        })
    })
}

/// The snapshot of revision `n` (404 unless kept, or current).
async fn snapshot_of(center: &ConfigCenter, n: u64) -> Result<Entities, ApiError> {
    center
        .snapshot_at(n)
        .await
        .map_err(store_down)?
        .ok_or_else(|| {
            ApiError::new(
                404,
                format!("修订 {n} 不存在或已不再保留 (只保留最近的修订)"),
            )
        })
}

pub fn diff(c: Call<'_>, _: NoBody) -> Pending<'_, RevisionDiff> {
    Box::pin(async move {
        let current = c.center.snapshot().revision;
        let to = number(&c, "to")?.unwrap_or(current);
        let from = match number(&c, "from")? {
            Some(f) => f,
            None => to
                .checked_sub(1)
                .ok_or_else(|| ApiError::bad_request("from: 需要给出起始修订"))?,
        };
        let (a, b) = (
            snapshot_of(c.center, from).await?,
            snapshot_of(c.center, to).await?,
        );
        Ok(RevisionDiff {
            from,
            to,
            changes: crate::store::history::diff(&a, &b),
        })
    })
}

pub fn restore(c: Call<'_>, _: NoBody) -> Pending<'_, Restored> {
    Box::pin(async move {
        let n = c.id()?;
        let target = snapshot_of(c.center, n).await?;
        let changes = c
            .mutate_because("restore", |e, _| {
                let before = e.clone();
                e.restore_config_from(&target);
                Ok(crate::store::history::diff(&before, e))
            })
            .await?;
        Ok(Restored {
            revision: c.center.snapshot().revision,
            restored_from: n,
            changes,
        })
    })
}

pub fn whoami(c: &Call<'_>, _: NoBody) -> Reply<WhoAmI> {
    let kind = c.actor.split_once(':').map_or("token", |(k, _)| k);
    Ok(WhoAmI {
        actor: c.actor.to_string(),
        kind: kind.to_string(),
    })
}

pub fn login(c: Call<'_>, body: AdminLogin) -> Pending<'_, AdminSession> {
    Box::pin(async move {
        let rt = c.center.runtime();
        let pair = crate::identity::login::sign_in(&rt, &body.email, body.password, c.client)
            .await
            .map_err(|e| ApiError::new(e.status(), e.to_string()))?;
        let header = format!("Bearer {}", pair.access_token);
        let actor = rt
            .admin_actor(Some(&header))
            .ok_or_else(|| ApiError::new(403, "该用户不是管理员 (role: admin)，不能登录控制台"))?;
        Ok(AdminSession {
            access_token: pair.access_token,
            token_type: "bearer",
            expires_in: pair.expires_in,
            actor,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Namespace, VirtualKey};

    #[test]
    fn a_restore_keeps_credentials_and_id_counters() {
        let ns = |id: u64, code: &str| -> Namespace {
            serde_json::from_value(
                json!({"id": id, "namespace_code": code, "namespace_name": code}),
            )
            .unwrap()
        };
        let key: VirtualKey = serde_json::from_value(json!({
            "id": 1, "name": "k", "key_sha256": "00", "prefix": "sk"
        }))
        .unwrap();
        let old = Entities {
            namespaces: vec![ns(1, "a")],
            last_ids: [("namespaces".to_string(), 1)].into(),
            ..Default::default()
        };
        let mut now = old.clone();
        now.namespaces = vec![ns(1, "a"), ns(2, "b")];
        now.virtual_keys = vec![key];
        now.last_ids.insert("namespaces".into(), 2);
        now.restore_config_from(&old);
        assert_eq!(now.namespaces.len(), 1);
        assert_eq!(now.virtual_keys.len(), 1, "credentials stay");
        assert_eq!(now.last_ids["namespaces"], 2, "ids are never reused");
    }
}
