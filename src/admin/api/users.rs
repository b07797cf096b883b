//! Users who sign in with e-mail and password (`POST /api/v1/auth/login`
//! on the proxy listener): create (the password is hashed with argon2id,
//! never stored or shown), list, get, update (role, namespace, active),
//! reset the password, end every session, delete. Stored as `users` with
//! the other entities, so a deactivation or an ended session reaches
//! every instance with the config bus. A reset password or a
//! deactivation also ends the user's sessions.

use super::*;
use crate::config::{User, UserRole};
use crate::identity::password;

const USERS: &str = "users";

/// A user as shown (never the password hash).
#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub user_id: u64,
    pub email: String,
    /// `user` or `admin`.
    pub role: &'static str,
    pub namespace_id: Option<u64>,
    pub namespace_code: Option<String>,
    pub is_active: i64,
    /// Raised each time the user's sessions are ended.
    pub token_version: u64,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

/// `POST /api/v1/users`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "dev@example.com", "password": "correct horse battery",
    "role": "user", "namespace_id": 1}))]
pub struct UserCreate {
    pub email: String,
    /// At least 8 characters; only its hash is kept.
    pub password: String,
    /// `user` (default) or `admin`.
    pub role: Option<UserRole>,
    /// The namespace of the user's requests; none = matchers decide.
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<u64>,
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for UserCreate {}

/// `PUT /api/v1/users/{user_id}`: only the fields sent change.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"role": "admin", "is_active": 0}))]
pub struct UserUpdate {
    pub email: Option<String>,
    pub role: Option<UserRole>,
    #[serde(default, deserialize_with = "de::id")]
    #[schema(value_type = Option<de::Id>)]
    pub namespace_id: Option<u64>,
    /// 0 deactivates: sign-in refused and every token ended.
    #[serde(default, deserialize_with = "de::flag")]
    #[schema(value_type = Option<de::Flag>)]
    pub is_active: Option<bool>,
}

impl Body for UserUpdate {}

/// `POST /api/v1/users/{user_id}/password`.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"password": "a new long passphrase"}))]
pub struct PasswordReset {
    pub password: String,
}

impl Body for PasswordReset {}

/// A created or changed user.
#[derive(Serialize, ToSchema)]
pub struct UserSaved {
    pub message: &'static str,
    pub user_id: u64,
    pub user: UserView,
}

/// A deleted user.
#[derive(Serialize, ToSchema)]
pub struct UserDeleted {
    pub message: &'static str,
    pub user_id: u64,
}

fn view(e: &Entities, u: &User) -> UserView {
    let ns = ns_ref(e, u.namespace.as_deref());
    let (created_at, updated_at) = stamps(e, USERS, u.id);
    UserView {
        user_id: u.id,
        email: u.email.clone(),
        role: u.role.as_str(),
        namespace_id: ns.id,
        namespace_code: ns.code,
        is_active: int(u.is_active),
        token_version: u.token_version,
        created_at,
        updated_at,
    }
}

fn find(e: &Entities, id: u64) -> Reply<UserView> {
    e.users
        .iter()
        .find(|u| u.id == id)
        .map(|u| view(e, u))
        .ok_or_else(ApiError::not_found)
}

fn saved(c: &Call<'_>, message: &'static str, id: u64) -> Reply<UserSaved> {
    Ok(UserSaved {
        message,
        user_id: id,
        user: find(&c.center.snapshot(), id)?,
    })
}

/// `GET /api/v1/users`.
pub fn list(c: &Call<'_>, _: NoBody) -> Reply<List<UserView>> {
    let e = c.center.snapshot();
    Ok(e.users.iter().map(|u| view(&e, u)).collect())
}

/// `GET /api/v1/users/{user_id}`.
pub fn get(c: &Call<'_>, _: NoBody) -> Reply<UserView> {
    find(&c.center.snapshot(), c.id()?)
}

/// A sign-in name: trimmed, lower case, one `@` with text on both sides.
fn email_field(e: &Entities, email: &str, except: Option<u64>) -> Result<String, ApiError> {
    let email = email.trim().to_ascii_lowercase();
    let ok = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.contains('@'))
        && !email.chars().any(char::is_whitespace);
    if !ok {
        return Err(ApiError::bad_request(format!(
            "email: 不是有效的邮箱地址: {}",
            crate::error::clip(&email)
        )));
    }
    if e.users
        .iter()
        .any(|u| u.email.eq_ignore_ascii_case(&email) && Some(u.id) != except)
    {
        return Err(ApiError::conflict(format!("email 已存在: {email}")));
    }
    Ok(email)
}

/// The argon2id hash of a new password, computed off the async threads.
async fn hash_field(pw: &str) -> Result<String, ApiError> {
    if pw.chars().count() < password::MIN_LEN || pw.len() > password::MAX_LEN {
        return Err(ApiError::bad_request(format!(
            "password: 长度须为 {} 到 {} 字节",
            password::MIN_LEN,
            password::MAX_LEN
        )));
    }
    let pw = pw.to_string();
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

pub fn create(c: Call<'_>, b: UserCreate) -> Pending<'_, UserSaved> {
    Box::pin(async move {
        let hash = hash_field(&b.password).await?;
        let id = c
            .mutate(|e, _| {
                let email = email_field(e, &b.email, None)?;
                let namespace = b.namespace_id.map(|id| ns_code_field(e, id)).transpose()?;
                let id = e.next_id(USERS);
                e.touch(USERS, id, true);
                e.users.push(User {
                    id,
                    email,
                    password_hash: hash.clone(),
                    role: b.role.unwrap_or_default(),
                    namespace,
                    is_active: b.is_active.unwrap_or(true),
                    token_version: 0,
                });
                Ok(id)
            })
            .await?;
        saved(&c, "用户创建成功", id)
    })
}

pub fn update(c: Call<'_>, b: UserUpdate) -> Pending<'_, UserSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| {
            let i = position(&e.users, id, |u| u.id)?;
            let email = b
                .email
                .as_deref()
                .map(|m| email_field(e, m, Some(id)))
                .transpose()?;
            let namespace = b.namespace_id.map(|n| ns_code_field(e, n)).transpose()?;
            let u = &mut e.users[i];
            if let Some(email) = email {
                u.email = email;
            }
            if let Some(role) = b.role {
                u.role = role;
            }
            if namespace.is_some() {
                u.namespace = namespace;
            }
            if let Some(active) = b.is_active {
                if u.is_active && !active {
                    u.token_version += 1;
                }
                u.is_active = active;
            }
            e.touch(USERS, id, false);
            Ok(())
        })
        .await?;
        saved(&c, "用户更新成功", id)
    })
}

pub fn reset_password(c: Call<'_>, b: PasswordReset) -> Pending<'_, UserSaved> {
    Box::pin(async move {
        let id = c.id()?;
        let hash = hash_field(&b.password).await?;
        c.mutate(|e, _| {
            let i = position(&e.users, id, |u| u.id)?;
            let u = &mut e.users[i];
            u.password_hash = hash.clone();
            u.token_version += 1;
            e.touch(USERS, id, false);
            Ok(())
        })
        .await?;
        saved(&c, "密码已重置，该用户的所有会话已结束", id)
    })
}

/// Raises user `id`'s `token_version` in `e` (every token issued before
/// is refused).
pub fn end_sessions_in(e: &mut Entities, id: u64) -> Result<(), ApiError> {
    let i = position(&e.users, id, |u| u.id)?;
    e.users[i].token_version += 1;
    e.touch(USERS, id, false);
    Ok(())
}

pub fn end_sessions(c: Call<'_>, _: NoBody) -> Pending<'_, UserSaved> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| end_sessions_in(e, id)).await?;
        saved(
            &c,
            "该用户的所有会话已结束（各实例随配置同步拒绝其令牌）",
            id,
        )
    })
}

pub fn delete(c: Call<'_>, _: NoBody) -> Pending<'_, UserDeleted> {
    Box::pin(async move {
        let id = c.id()?;
        c.mutate(|e, _| {
            let i = position(&e.users, id, |u| u.id)?;
            e.users.remove(i);
            e.forget(USERS, id);
            Ok(())
        })
        .await?;
        Ok(UserDeleted {
            message: "用户已删除",
            user_id: id,
        })
    })
}
