//! Session JWTs: HS256 only, short-lived, typed (`typ: "session"`), bound to the user's
//! token version so logout revokes every session at once.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "tributary";
pub const SESSION_TYPE: &str = "session";
pub const MIN_KEY_BYTES: usize = 32;
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// Clock skew tolerated between the issuer and the checker.
const LEEWAY_SECS: u64 = 5;

/// Placeholder values people paste from examples; a key containing one is refused.
const PLACEHOLDERS: [&str; 8] = [
    "changeme",
    "change-me",
    "change_me",
    "replace-me",
    "replaceme",
    "your-secret",
    "example",
    "default",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SigningKeyError {
    #[error("the session signing key is missing")]
    Missing,
    #[error("the session signing key must be at least {MIN_KEY_BYTES} bytes, got {0}")]
    TooShort(usize),
    #[error("the session signing key looks like a placeholder or default value; generate a random one (e.g. `openssl rand -hex 32`)")]
    Placeholder,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub sub: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
    pub typ: String,
    /// The user's token version when the session was issued.
    pub ver: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("invalid session token: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("token is not a session token")]
    WrongType,
}

pub struct SessionKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: u64,
}

fn check_key(secret: &[u8]) -> Result<(), SigningKeyError> {
    if secret.is_empty() {
        return Err(SigningKeyError::Missing);
    }
    if secret.len() < MIN_KEY_BYTES {
        return Err(SigningKeyError::TooShort(secret.len()));
    }
    let lowered = String::from_utf8_lossy(secret).to_ascii_lowercase();
    let mut distinct = secret.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    // Random keys of 32+ bytes have far more than 8 distinct bytes; "aaaa…" does not.
    if distinct.len() < 8 || PLACEHOLDERS.iter().any(|p| lowered.contains(p)) {
        return Err(SigningKeyError::Placeholder);
    }
    Ok(())
}

impl SessionKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Result<Self, SigningKeyError> {
        check_key(secret)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_secs,
        })
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn claims_for(&self, user_id: &str, token_version: u64, now: u64) -> SessionClaims {
        SessionClaims {
            iss: ISSUER.into(),
            sub: user_id.into(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: uuid::Uuid::now_v7().to_string(),
            typ: SESSION_TYPE.into(),
            ver: token_version,
        }
    }

    pub fn sign(&self, claims: &SessionClaims) -> Result<String, SessionError> {
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &self.encoding,
        )?)
    }

    pub fn issue(&self, user_id: &str, token_version: u64) -> Result<String, SessionError> {
        let now = jsonwebtoken::get_current_timestamp();
        self.sign(&self.claims_for(user_id, token_version, now))
    }

    /// Signature, algorithm, `iss`, `exp`, `nbf` and `typ`; the token version is the
    /// verifier's to check against the store.
    pub fn verify(&self, token: &str) -> Result<SessionClaims, SessionError> {
        let data = jsonwebtoken::decode::<SessionClaims>(token, &self.decoding, &self.validation)?;
        if data.claims.typ != SESSION_TYPE {
            return Err(SessionError::WrongType);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0f3b9c1d7e2a4b6c8d0e1f2a3b4c5d6e7f8091a2";

    #[test]
    fn refuses_missing_short_and_placeholder_keys() {
        assert_eq!(
            SessionKeys::new(b"", 60).err(),
            Some(SigningKeyError::Missing)
        );
        assert_eq!(
            SessionKeys::new(b"short", 60).err(),
            Some(SigningKeyError::TooShort(5))
        );
        assert_eq!(
            SessionKeys::new(&[b'a'; 64], 60).err(),
            Some(SigningKeyError::Placeholder)
        );
        assert_eq!(
            SessionKeys::new(b"changeme-changeme-changeme-changeme-1234", 60).err(),
            Some(SigningKeyError::Placeholder)
        );
        assert!(SessionKeys::new(KEY, 60).is_ok());
    }

    #[test]
    fn issued_sessions_verify() {
        let keys = SessionKeys::new(KEY, 600).unwrap();
        let token = keys.issue("user-1", 3).unwrap();
        let claims = keys.verify(&token).unwrap();
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.ver, 3);
        assert_eq!(claims.exp - claims.iat, 600);
        assert_eq!(claims.typ, SESSION_TYPE);
    }
}
