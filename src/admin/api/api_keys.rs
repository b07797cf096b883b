//! API keys created through the admin API ("virtual keys"): create (the
//! secret is answered once and only its SHA-256 is stored), list (a masked
//! prefix, never the secret), rotate (a new secret; the previous one keeps
//! working for an overlap) and revoke (deleted: refused on every instance
//! as soon as the change reaches it). Stored as `virtual_keys` with the
//! other entities. Keys of the YAML file are not listed here.

use super::*;
use crate::config::VirtualKey;

const VK: &str = "virtual_keys";

/// Characters of a generated secret after its `sk-sluice-` prefix.
const SECRET_CHARS: usize = 40;

/// A key as listed (never its secret).
#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    pub key_id: u64,
    pub name: String,
    /// The secret's first characters and `…`.
    pub masked: String,
    pub namespace_id: Option<u64>,
    pub namespace_code: Option<String>,
    pub models: Option<Vec<String>>,
    pub is_active: i64,
    /// RFC 3339; none = never.
    pub expires_at: Option<String>,
    /// After a rotation: until when (RFC 3339) the previous secret works.
    pub previous_until: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/api-keys`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "team-a-ci", "namespace_id": 1, "models": ["gpt-4o*"],
    "expires_in_seconds": 2592000}))]
pub struct ApiKeyCreate {
    /// Label in logs and metrics, unique among all keys.
    pub name: String,
    /// The namespace the key's requests belong to; none = matchers decide.
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<u64>,
    /// The models it may use (exact or `prefix*`); none = any.
    pub models: Option<Vec<String>>,
    /// Refused after this many seconds; none = never.
    pub expires_in_seconds: Option<u64>,
}

impl Body for ApiKeyCreate {}

/// `POST /api/v1/api-keys/{key_id}/rotate`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"overlap_seconds": 3600}))]
pub struct ApiKeyRotate {
    /// How long the previous secret keeps working (default 3600; 0 = not
    /// at all).
    pub overlap_seconds: Option<u64>,
}

impl Body for ApiKeyRotate {}

/// A created or rotated key: the secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct ApiKeySecret {
    pub message: &'static str,
    pub key_id: u64,
    /// The secret: store it now, it cannot be shown again.
    pub key: String,
    pub api_key: ApiKeyView,
}

/// A revoked key.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyDeleted {
    pub message: &'static str,
    pub key_id: u64,
}

fn rfc3339(secs: u64) -> String {
    crate::clock::rfc3339(secs)
}

fn view(e: &Entities, k: &VirtualKey) -> ApiKeyView {
    let ns = ns_ref(e, k.namespace.as_deref());
    let (created_at, updated_at) = stamps(e, VK, k.id);
    ApiKeyView {
        key_id: k.id,
        name: k.name.clone(),
        masked: format!("{}…", k.prefix),
        namespace_id: ns.id,
        namespace_code: ns.code,
        models: k.models.clone(),
        is_active: int(k.is_active),
        expires_at: k.expires_at.map(rfc3339),
        previous_until: k.previous_until.map(rfc3339),
        created_at,
        updated_at,
    }
}

fn find(e: &Entities, id: u64) -> Reply<ApiKeyView> {
    e.virtual_keys
        .iter()
        .find(|k| k.id == id)
        .map(|k| view(e, k))
        .ok_or_else(ApiError::not_found)
}

/// `GET /api/v1/api-keys`.
pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<ApiKeyView>> {
    let e = c.center.snapshot();
    Ok(e.virtual_keys.iter().map(|k| view(&e, k)).collect())
}

/// `GET /api/v1/api-keys/{key_id}`.
pub fn get(c: &Call<'_>, _: NoBody) -> Reply<ApiKeyView> {
    find(&c.center.snapshot(), c.id()?)
}

/// A new secret and its SHA-256.
fn new_secret() -> Result<(String, String), ApiError> {
    crate::identity::random_secret("sk-sluice-", SECRET_CHARS).map_err(ApiError::internal)
}

fn prefix_of(secret: &str) -> String {
    secret.chars().take(14).collect()
}

pub(super) fn create_in(
    e: &mut Entities,
    b: &ApiKeyCreate,
    (secret, hash): (&str, &str),
) -> Result<u64, ApiError> {
    let namespace = b.namespace_id.map(|id| ns_code_field(e, id)).transpose()?;
    if b.name.trim().is_empty() || b.name.trim() != b.name {
        return Err(ApiError::bad_request("name: 不能为空，也不能有首尾空格"));
    }
    if e.virtual_keys.iter().any(|k| k.name == b.name) {
        return Err(ApiError::conflict(format!("name 已存在: {}", b.name)));
    }
    let id = e.next_id(VK);
    e.touch(VK, id, true);
    e.virtual_keys.push(VirtualKey {
        id,
        name: b.name.clone(),
        key_sha256: hash.to_string(),
        prefix: prefix_of(secret),
        previous_sha256: None,
        previous_until: None,
        expires_at: b
            .expires_in_seconds
            .map(|s| crate::clock::unix_secs().saturating_add(s)),
        namespace,
        models: b.models.clone(),
        is_active: true,
    });
    Ok(id)
}

pub fn create(c: Call<'_>, b: ApiKeyCreate) -> Pending<'_, ApiKeySecret> {
    Box::pin(async move {
        let (secret, hash) = new_secret()?;
        let id = c.mutate(|e, _| create_in(e, &b, (&secret, &hash))).await?;
        Ok(ApiKeySecret {
            message: "API 密钥创建成功（密钥只显示这一次）",
            key_id: id,
            key: secret,
            api_key: find(&c.center.snapshot(), id)?,
        })
    })
}

pub fn rotate(c: Call<'_>, b: ApiKeyRotate) -> Pending<'_, ApiKeySecret> {
    Box::pin(async move {
        let id = c.id()?;
        let (secret, hash) = new_secret()?;
        let overlap = b.overlap_seconds.unwrap_or(3600);
        c.mutate(|e, _| {
            let i = position(&e.virtual_keys, id, |k| k.id)?;
            let k = &mut e.virtual_keys[i];
            let old = std::mem::replace(&mut k.key_sha256, hash.clone());
            let now = crate::clock::unix_secs();
            (k.previous_sha256, k.previous_until) = if overlap > 0 {
                (Some(old), Some(now.saturating_add(overlap)))
            } else {
                (None, None)
            };
            k.prefix = prefix_of(&secret);
            e.touch(VK, id, false);
            Ok(())
        })
        .await?;
        Ok(ApiKeySecret {
            message: "API 密钥已轮换（新密钥只显示这一次）",
            key_id: id,
            key: secret,
            api_key: find(&c.center.snapshot(), id)?,
        })
    })
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, ApiKeyDeleted> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| {
            let i = position(&e.virtual_keys, id, |k| k.id)?;
            e.virtual_keys.remove(i);
            e.forget(VK, id);
            Ok(())
        })
        .await?;
        Ok(ApiKeyDeleted {
            message: "API 密钥已吊销",
            key_id: id,
        })
    })
}
