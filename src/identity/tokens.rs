//! The gateway's own tokens (`auth.jwt`): a short-lived access token and
//! a refresh token per sign-in, both JWTs signed with the current key
//! (HS256, RS256 or ES256, named by `kid`) and verified with it or a key
//! of an earlier rotation (`auth.jwt.previous`).
//!
//! Claims: `iss`, `sub` (the user id), `iat`, `exp`, `typ` (`access` or
//! `refresh`: one is never accepted as the other), `sid` (the sign-in's
//! refresh family), `ver` (the user's `token_version`: raising it ends
//! every session), `ns` (the user's namespace code), `role`, and on
//! refresh tokens `jti` (each is accepted once: [`super::login`]).

use crate::config::{JwtAlgorithm, JwtSettings, Secret, User};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Access,
    Refresh,
}

/// The claims of the gateway's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub typ: Kind,
    pub sid: String,
    pub ver: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// An access and a refresh token, as `login` and `refresh` answer them.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
}

/// The signing key and every verification key, compiled.
pub struct TokenKeys {
    algorithm: Algorithm,
    kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    pub issuer: String,
    pub access_ttl_s: u64,
    pub refresh_ttl_s: u64,
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::HS256 => Algorithm::HS256,
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
    }
}

fn read_pem(what: &str, path: Option<&String>) -> Result<Vec<u8>, String> {
    let path = path.ok_or_else(|| format!("{what} is required for this algorithm"))?;
    std::fs::read(path).map_err(|e| format!("{what} {path}: {e}"))
}

fn hs_secret(secret: Option<&Secret<String>>) -> Result<&[u8], String> {
    let s = secret.ok_or("HS256 needs a secret")?.expose();
    if s.len() < 32 {
        return Err("an HS256 secret needs at least 32 characters".into());
    }
    Ok(s.as_bytes())
}

fn decoding(
    a: JwtAlgorithm,
    secret: Option<&Secret<String>>,
    public_key_file: Option<&String>,
) -> Result<DecodingKey, String> {
    match a {
        JwtAlgorithm::HS256 => Ok(DecodingKey::from_secret(hs_secret(secret)?)),
        JwtAlgorithm::RS256 => {
            DecodingKey::from_rsa_pem(&read_pem("public_key_file", public_key_file)?)
                .map_err(|e| format!("public_key_file: not an RSA public key in PEM: {e}"))
        }
        JwtAlgorithm::ES256 => {
            DecodingKey::from_ec_pem(&read_pem("public_key_file", public_key_file)?)
                .map_err(|e| format!("public_key_file: not a P-256 public key in PEM: {e}"))
        }
    }
}

impl TokenKeys {
    /// Compiles `auth.jwt` (reads its key files).
    pub fn new(j: &JwtSettings) -> Result<TokenKeys, String> {
        let signing = match j.algorithm {
            JwtAlgorithm::HS256 => EncodingKey::from_secret(hs_secret(j.secret.as_ref())?),
            JwtAlgorithm::RS256 => EncodingKey::from_rsa_pem(&read_pem(
                "private_key_file",
                j.private_key_file.as_ref(),
            )?)
            .map_err(|e| format!("private_key_file: not an RSA private key in PEM: {e}"))?,
            JwtAlgorithm::ES256 => EncodingKey::from_ec_pem(&read_pem(
                "private_key_file",
                j.private_key_file.as_ref(),
            )?)
            .map_err(|e| format!("private_key_file: not a P-256 private key in PKCS#8 PEM: {e}"))?,
        };
        let mut verifying = HashMap::new();
        verifying.insert(
            j.kid.clone(),
            (
                algorithm(j.algorithm),
                decoding(j.algorithm, j.secret.as_ref(), j.public_key_file.as_ref())?,
            ),
        );
        for (i, p) in j.previous.iter().enumerate() {
            let key = decoding(p.algorithm, p.secret.as_ref(), p.public_key_file.as_ref())
                .map_err(|e| format!("previous[{i}]: {e}"))?;
            if verifying
                .insert(p.kid.clone(), (algorithm(p.algorithm), key))
                .is_some()
            {
                return Err(format!("previous[{i}].kid: {:?} is used twice", p.kid));
            }
        }
        let keys = TokenKeys {
            algorithm: algorithm(j.algorithm),
            kid: j.kid.clone(),
            signing,
            verifying,
            issuer: j.issuer.clone(),
            access_ttl_s: j.access_ttl_s,
            refresh_ttl_s: j.refresh_ttl_s,
        };
        // The pair must match: a token signed now verifies now.
        let probe = Claims {
            iss: keys.issuer.clone(),
            sub: "0".into(),
            iat: 0,
            exp: u64::MAX / 2,
            typ: Kind::Access,
            sid: String::new(),
            ver: 0,
            ns: None,
            role: String::new(),
            jti: None,
        };
        let token = keys.sign(&probe)?;
        let header = jsonwebtoken::decode_header(&token).map_err(|e| e.to_string())?;
        keys.verify(&token, &header, Kind::Access)
            .map_err(|_| "private_key_file and public_key_file are not one key pair".to_string())?;
        Ok(keys)
    }

    /// Whether a token's header names one of these keys.
    pub fn signs(&self, header: &Header) -> bool {
        header
            .kid
            .as_ref()
            .is_some_and(|k| self.verifying.contains_key(k))
    }

    fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).map_err(|e| e.to_string())
    }

    /// Verifies signature, issuer, expiry and kind; the claims.
    pub fn verify(&self, token: &str, header: &Header, kind: Kind) -> Result<Claims, String> {
        let (alg, key) = header
            .kid
            .as_ref()
            .and_then(|k| self.verifying.get(k))
            .ok_or("invalid token: unknown key id")?;
        if header.alg != *alg {
            return Err("invalid token: wrong algorithm for its key".into());
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.leeway = 5;
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, key, &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "token expired: refresh it (POST /api/v1/auth/refresh) or sign in again"
                        .to_string()
                }
                _ => "invalid token".to_string(),
            })?
            .claims;
        if claims.typ != kind {
            return Err(match kind {
                Kind::Access => "a refresh token is not an access token".into(),
                Kind::Refresh => "not a refresh token".into(),
            });
        }
        Ok(claims)
    }

    /// A new pair for `user` in refresh family `sid`, the refresh token
    /// with id `jti`; `family_exp` bounds the refresh token (a family
    /// lives `refresh_ttl_s` from its sign-in, however often it is
    /// refreshed).
    pub fn issue(
        &self,
        user: &User,
        sid: &str,
        jti: &str,
        now: u64,
        family_exp: u64,
    ) -> Result<TokenPair, String> {
        let base = Claims {
            iss: self.issuer.clone(),
            sub: user.id.to_string(),
            iat: now,
            exp: now.saturating_add(self.access_ttl_s).min(family_exp),
            typ: Kind::Access,
            sid: sid.to_string(),
            ver: user.token_version,
            ns: user.namespace.clone(),
            role: user.role.as_str().to_string(),
            jti: None,
        };
        let access_token = self.sign(&base)?;
        let refresh = Claims {
            exp: family_exp,
            typ: Kind::Refresh,
            jti: Some(jti.to_string()),
            ..base.clone()
        };
        Ok(TokenPair {
            access_token,
            refresh_token: self.sign(&refresh)?,
            token_type: "bearer",
            expires_in: base.exp.saturating_sub(now),
        })
    }
}

/// 128 random bits in hex: family and token ids.
pub fn random_id() -> Result<String, getrandom::Error> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)?;
    Ok(hex::encode(raw))
}
