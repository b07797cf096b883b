//! Tokens of external identity providers (`auth.issuers`): a JWT whose
//! key id is in an issuer's JWKS is verified with that key (its
//! algorithm), its `iss` must be the issuer's, its `aud` one of the
//! issuer's audiences, `exp` (and `nbf`) hold within `leeway_s`. The
//! caller is the issuer's key record with the token's `sub` as subject;
//! the namespace is the code in `namespace_claim`, else (through the key
//! record) the issuer's `namespace`, else the matchers decide.

use super::{jwks, Caller};
use crate::config::JwtIssuer;
use crate::error::GatewayError;
use jsonwebtoken::{Header, Validation};
use serde_json::{Map, Value};

/// The longest subject kept (it becomes part of counter keys).
const MAX_SUBJECT: usize = 256;

/// One issuer, compiled.
pub struct IssuerRt {
    pub name: String,
    issuer: String,
    audience: Vec<String>,
    /// Where its keys come from: the URL, else the file.
    source: Option<String>,
    namespace_claim: Option<String>,
    leeway_s: u64,
    /// Index into `Snapshot::keys`.
    pub key: usize,
}

impl IssuerRt {
    pub fn new(c: &JwtIssuer, key: usize) -> IssuerRt {
        IssuerRt {
            name: c.name.clone(),
            issuer: c.issuer.clone(),
            audience: c.audience.clone(),
            source: c.jwks_url.clone().or_else(|| c.jwks_file.clone()),
            namespace_claim: c.namespace_claim.clone(),
            leeway_s: c.leeway_s,
            key,
        }
    }

    /// Verifies `token` with this issuer's key; the claims.
    fn verify(&self, token: &str, header: &Header) -> Result<Map<String, Value>, VerifyError> {
        let source = self.source.as_deref().ok_or(VerifyError::NoKey)?;
        let Some(set) = jwks::keys(source) else {
            return Err(VerifyError::NoKey);
        };
        let Some((alg, key)) = set.find(header.kid.as_deref()) else {
            return Err(VerifyError::NoKey);
        };
        if header.alg != *alg {
            return Err(VerifyError::Invalid("wrong algorithm for its key".into()));
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audience);
        v.leeway = self.leeway_s;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                VerifyError::Invalid(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired".into(),
                    jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                        "token is for another audience".into()
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidIssuer => "wrong issuer".into(),
                    jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                        "token not valid yet".into()
                    }
                    _ => "invalid token".into(),
                })
            })
    }
}

enum VerifyError {
    /// This issuer has no key for the token.
    NoKey,
    Invalid(String),
}

/// Authenticates a token of one of `issuers`; `namespaces` resolves the
/// namespace claim's code.
pub fn authenticate(
    issuers: &[IssuerRt],
    token: &str,
    header: &Header,
    namespace_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<Caller, GatewayError> {
    let mut refusal = None;
    for issuer in issuers {
        match issuer.verify(token, header) {
            Ok(claims) => return caller(issuer, &claims, namespace_of),
            Err(VerifyError::NoKey) => {}
            Err(VerifyError::Invalid(why)) => refusal = Some(why),
        }
    }
    if let Some(why) = refusal {
        return Err(GatewayError::Unauthorized(format!("invalid token: {why}")));
    }
    // No issuer has the key: perhaps one rotated its keys.
    for source in issuers.iter().filter_map(|i| i.source.as_deref()) {
        jwks::want(source);
    }
    Err(GatewayError::Unauthorized(
        "invalid token: no configured issuer has its signing key".into(),
    ))
}

fn caller(
    issuer: &IssuerRt,
    claims: &Map<String, Value>,
    namespace_of: &dyn Fn(&str) -> Option<usize>,
) -> Result<Caller, GatewayError> {
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT)
        .ok_or_else(|| GatewayError::Unauthorized("invalid token: bad sub claim".into()))?;
    let claimed = issuer
        .namespace_claim
        .as_deref()
        .and_then(|claim| Some((claim, claims.get(claim)?.as_str()?)));
    let namespace = claimed
        .map(|(claim, code)| {
            namespace_of(code).ok_or_else(|| {
                GatewayError::Forbidden(format!(
                    "the token's {claim} claim names no namespace of this gateway"
                ))
            })
        })
        .transpose()?;
    Ok(Caller {
        key: Some(issuer.key),
        subject: Some(subject.to_string()),
        namespace,
    })
}
