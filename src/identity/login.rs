//! Sign-in and refresh on the proxy listener: `POST /api/v1/auth/login`
//! `{email, password}` and `POST /api/v1/auth/refresh` `{refresh_token}`,
//! both answering `{access_token, refresh_token, token_type: "bearer",
//! expires_in}`.
//!
//! - Sign-in attempts are counted per e-mail and per client address in the
//!   counter store (across instances with Redis) before any password is
//!   checked; a wrong password, an unknown e-mail and an inactive user get
//!   the same answer after the same work (an unknown e-mail is checked
//!   against a decoy hash).
//! - A refresh token is accepted once: its `jti` is spent in the counter
//!   store in the same atomic call that checks its family is not revoked.
//!   A spent token presented again is taken as stolen: its family is
//!   revoked (no token of it refreshes any more, on any instance) and the
//!   user's `token_version` is raised through the config center, which ends
//!   every access token of the user on every instance within the config
//!   bus's delay.

use super::tokens::{random_id, Kind, TokenPair};
use crate::control::ConfigControl;
use crate::error::{GatewayError, LimitDenial};
use crate::state::Snapshot;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sluice_filters::limits::store::{Admission, Check};

/// The largest sign-in or refresh body read.
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

fn bad_credentials() -> GatewayError {
    GatewayError::Unauthorized("invalid e-mail or password".into())
}

fn not_configured() -> GatewayError {
    GatewayError::RouteNotFound("sign-in (auth.jwt is not configured)".into())
}

fn store_down() -> GatewayError {
    LimitDenial::store_unavailable(
        "the counter store is unavailable: sign-in cannot be checked now".into(),
    )
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| GatewayError::InvalidRequest(format!("body: {e}")))
}

/// `POST /api/v1/auth/login`.
pub async fn login(rt: &Snapshot, body: &[u8], client: &str) -> Result<TokenPair, GatewayError> {
    let b: LoginBody = parse(body)?;
    sign_in(rt, &b.email, b.password, client).await
}

/// A sign-in with `email` and `password` from `client` (the proxy
/// listener's body above, or the admin console's).
pub async fn sign_in(
    rt: &Snapshot,
    email: &str,
    password: String,
    client: &str,
) -> Result<TokenPair, GatewayError> {
    let tokens = rt.identity.tokens.as_ref().ok_or_else(not_configured)?;
    if password.len() > super::password::MAX_LEN || email.len() > 254 {
        return Err(bad_credentials());
    }
    let email = email.trim().to_ascii_lowercase();
    let settings = &rt.config.auth.login;
    let email_key = hex::encode(&Sha256::digest(email.as_bytes())[..16]);
    let checks = [
        attempts(
            format!("login:e:{email_key}"),
            settings.per_email_per_minute,
        ),
        attempts(format!("login:a:{client}"), settings.per_address_per_minute),
    ];
    let admission = rt
        .live
        .counters()
        .admit(&checks)
        .await
        .map_err(|_| store_down())?;
    if !admission.admitted {
        return Err(too_many(&admission));
    }
    let user = rt
        .identity
        .by_email
        .get(&email)
        .and_then(|&i| rt.config.users.get(i));
    let ok = super::password::check(
        password,
        user.map(|u| u.password_hash.clone()),
        settings.max_concurrent,
    )
    .await;
    let user = user
        .filter(|u| ok && u.is_active)
        .ok_or_else(bad_credentials)?;
    let now = crate::clock::unix_secs();
    let (sid, jti) = ids()?;
    tokens
        .issue(
            user,
            &sid,
            &jti,
            now,
            now.saturating_add(tokens.refresh_ttl_s),
        )
        .map_err(|_| GatewayError::Internal)
}

/// `POST /api/v1/auth/refresh`.
pub async fn refresh(
    rt: &Snapshot,
    body: &[u8],
    center: Option<&dyn ConfigControl>,
) -> Result<TokenPair, GatewayError> {
    let tokens = rt.identity.tokens.as_ref().ok_or_else(not_configured)?;
    let b: RefreshBody = parse(body)?;
    let header = jsonwebtoken::decode_header(&b.refresh_token)
        .map_err(|_| GatewayError::Unauthorized("invalid refresh token".into()))?;
    if !tokens.signs(&header) {
        return Err(GatewayError::Unauthorized("invalid refresh token".into()));
    }
    let claims = tokens
        .verify(&b.refresh_token, &header, Kind::Refresh)
        .map_err(GatewayError::Unauthorized)?;
    let (user, _) = rt.identity.user(&rt.config, &claims)?;
    let jti = claims
        .jti
        .as_deref()
        .ok_or_else(|| GatewayError::Unauthorized("invalid refresh token".into()))?;
    let window_ms = tokens.refresh_ttl_s.saturating_mul(1000).max(1);
    let family = format!("rt:fam:{}", claims.sid);
    let checks = [
        // Passes while the family was never revoked (limit 0, adds 0).
        Check::Window {
            key: family.clone(),
            limit: 0,
            window_ms,
            sliding: true,
            cost: 0,
        },
        // This token, spent.
        Check::Window {
            key: format!("rt:jti:{jti}"),
            limit: 1,
            window_ms,
            sliding: true,
            cost: 1,
        },
    ];
    let counters = rt.live.counters();
    let admission = counters.admit(&checks).await.map_err(|_| store_down())?;
    if !admission.admitted {
        let revoked = admission.statuses.first().is_some_and(|s| !s.passed);
        if !revoked {
            // Spent before: revoke the family and end the user's sessions.
            let revoke = Check::Window {
                key: family,
                limit: 1,
                window_ms,
                sliding: true,
                cost: 1,
            };
            if counters.admit(std::slice::from_ref(&revoke)).await.is_err() {
                log::warn!(
                    "refresh: could not revoke family {} (store unavailable)",
                    claims.sid
                );
            }
            match center {
                Some(c) => {
                    if let Err(e) = c.end_sessions(user.id).await {
                        log::warn!(
                            "refresh: could not end the sessions of user {}: {e}",
                            user.id
                        );
                    }
                }
                None => log::warn!(
                    "refresh: no config center to end the sessions of user {}",
                    user.id
                ),
            }
            log::warn!(
                "refresh token reused for user {}: family {} revoked, sessions ended",
                user.id,
                claims.sid
            );
            return Err(GatewayError::Unauthorized(
                "this refresh token was already used: the sign-in is revoked, sign in again".into(),
            ));
        }
        return Err(GatewayError::Unauthorized(
            "this sign-in was revoked: sign in again".into(),
        ));
    }
    let next_jti = random_id().map_err(|_| GatewayError::Internal)?;
    tokens
        .issue(
            user,
            &claims.sid,
            &next_jti,
            crate::clock::unix_secs(),
            claims.exp,
        )
        .map_err(|_| GatewayError::Internal)
}

fn ids() -> Result<(String, String), GatewayError> {
    let sid = random_id().map_err(|_| GatewayError::Internal)?;
    let jti = random_id().map_err(|_| GatewayError::Internal)?;
    Ok((sid, jti))
}

fn attempts(key: String, per_minute: u64) -> Check {
    Check::Window {
        key,
        limit: per_minute,
        window_ms: 60_000,
        sliding: true,
        cost: 1,
    }
}

fn too_many(a: &Admission) -> GatewayError {
    let retry_ms = a
        .statuses
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.retry_after_ms)
        .max()
        .unwrap_or(60_000);
    let secs = retry_ms.div_ceil(1000).max(1);
    GatewayError::Limited(Box::new(LimitDenial {
        status: 429,
        code: "rate_limited",
        message: format!("too many sign-in attempts: retry in {secs} s"),
        retry_after_secs: secs,
        headers: Vec::new(),
        rule_id: 0,
    }))
}
