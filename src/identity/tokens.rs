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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{JwtVerifyKey, UserRole};

    fn settings(algorithm: JwtAlgorithm) -> JwtSettings {
        serde_yaml::from_str::<JwtSettings>("{}")
            .map(|mut s| {
                s.algorithm = algorithm;
                s
            })
            .unwrap()
    }

    fn user() -> User {
        User {
            id: 7,
            email: "a@example.com".into(),
            password_hash: String::new(),
            role: UserRole::Admin,
            namespace: Some("team".into()),
            is_active: true,
            token_version: 3,
        }
    }

    /// A P-256 key pair in PEM files: (private, public).
    fn es256_files(tag: &str) -> (String, String) {
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let dir = std::env::temp_dir();
        let private = dir.join(format!("sluice-{tag}-{}.key", std::process::id()));
        let public = dir.join(format!("sluice-{tag}-{}.pub", std::process::id()));
        std::fs::write(&private, kp.serialize_pem()).unwrap();
        std::fs::write(&public, kp.public_key_pem()).unwrap();
        (private.display().to_string(), public.display().to_string())
    }

    #[test]
    fn es256_pairs_sign_verify_and_rotate() {
        let (private, public) = es256_files("a");
        let mut s = settings(JwtAlgorithm::ES256);
        s.private_key_file = Some(private.clone());
        s.public_key_file = Some(public.clone());
        let keys = TokenKeys::new(&s).unwrap();
        let pair = keys
            .issue(&user(), "fam", "j1", 1_000, u64::MAX / 4)
            .unwrap();
        assert_eq!(pair.expires_in, 3600);
        let header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        // Issued at 1 000 s: long expired by now.
        let err = keys
            .verify(&pair.access_token, &header, Kind::Access)
            .unwrap_err();
        assert!(err.contains("expired"), "{err}");
        let now = crate::clock::unix_secs();
        let pair = keys.issue(&user(), "fam", "j1", now, now + 7200).unwrap();
        let header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
        let c = keys
            .verify(&pair.access_token, &header, Kind::Access)
            .unwrap();
        assert_eq!((c.sub.as_str(), c.ver, c.role.as_str()), ("7", 3, "admin"));
        assert_eq!(c.ns.as_deref(), Some("team"));
        let rh = jsonwebtoken::decode_header(&pair.refresh_token).unwrap();
        assert!(keys.verify(&pair.refresh_token, &rh, Kind::Access).is_err());
        assert_eq!(
            keys.verify(&pair.refresh_token, &rh, Kind::Refresh)
                .unwrap()
                .jti
                .as_deref(),
            Some("j1")
        );

        // Rotation: a new key signs, the old one still verifies its tokens.
        let (private2, public2) = es256_files("b");
        let mut rotated = settings(JwtAlgorithm::ES256);
        rotated.kid = "k2".into();
        rotated.private_key_file = Some(private2.clone());
        rotated.public_key_file = Some(public2.clone());
        rotated.previous = vec![JwtVerifyKey {
            kid: "k1".into(),
            algorithm: JwtAlgorithm::ES256,
            secret: None,
            public_key_file: Some(public.clone()),
        }];
        let keys2 = TokenKeys::new(&rotated).unwrap();
        assert!(keys2.signs(&header));
        assert!(keys2
            .verify(&pair.access_token, &header, Kind::Access)
            .is_ok());

        // Mismatched files are refused at build.
        let mut wrong = settings(JwtAlgorithm::ES256);
        wrong.private_key_file = Some(private);
        wrong.public_key_file = Some(public2);
        let err = TokenKeys::new(&wrong).err().unwrap();
        assert!(err.contains("not one key pair"), "{err}");
        for f in [private2, public] {
            let _ = std::fs::remove_file(f);
        }
    }

    #[test]
    fn hs256_needs_a_long_secret_and_checks_the_algorithm() {
        let mut s = settings(JwtAlgorithm::HS256);
        assert!(TokenKeys::new(&s).err().unwrap().contains("secret"));
        s.secret = Some(Secret::new("short".into()));
        assert!(TokenKeys::new(&s).err().unwrap().contains("32"));
        s.secret = Some(Secret::new("x".repeat(40)));
        let keys = TokenKeys::new(&s).unwrap();
        let now = crate::clock::unix_secs();
        let pair = keys.issue(&user(), "f", "j", now, now + 100).unwrap();
        assert_eq!(pair.expires_in, 100, "bounded by the family");
        // A token claiming another algorithm for the key is refused.
        let mut header = jsonwebtoken::decode_header(&pair.access_token).unwrap();
        header.alg = Algorithm::HS384;
        assert!(keys
            .verify(&pair.access_token, &header, Kind::Access)
            .is_err());
    }
}
