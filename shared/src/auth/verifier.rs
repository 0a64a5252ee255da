//! The token check: `Authorization: Bearer <session JWT | API token>` → [`Principal`].
//! The `token-check` authorizer and the local stack's middleware both call this, so the
//! rules live in one place. Every failure is a [`Denied`]; nothing here panics on input.

use std::sync::Arc;

use super::principal::{Principal, TokenKind};
use super::session::{SessionError, SessionKeys};
use super::{api_token, scopes};
use crate::store::{ApiTokens, StoreError, UserError, Users};

/// Longer headers are refused before any parsing (a JWT here is ~300 bytes).
pub const MAX_AUTHORIZATION_BYTES: usize = 4096;
/// `last_used_at` is refreshed at most this often per token.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// Why a request was refused. Logged by reason, never with the token.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("no Authorization header")]
    MissingCredentials,
    #[error("the Authorization header is not `Bearer <token>`")]
    MalformedHeader,
    #[error("invalid session token: {0}")]
    InvalidSession(String),
    #[error("the session was revoked")]
    RevokedSession,
    #[error("unknown, revoked or expired API token")]
    UnknownApiToken,
    #[error("the account no longer exists or is disabled")]
    InactiveUser,
    #[error("the token store is unavailable: {0}")]
    StoreUnavailable(String),
}

impl From<StoreError> for Denied {
    fn from(error: StoreError) -> Self {
        Denied::StoreUnavailable(error.to_string())
    }
}

impl From<UserError> for Denied {
    fn from(error: UserError) -> Self {
        Denied::StoreUnavailable(error.to_string())
    }
}

#[derive(Clone)]
pub struct TokenVerifier {
    sessions: Arc<SessionKeys>,
    users: Users,
    api_tokens: ApiTokens,
}

/// The bearer token of an Authorization header value, if it is one.
pub fn bearer_token(header: &[u8]) -> Result<&str, Denied> {
    if header.is_empty() {
        return Err(Denied::MissingCredentials);
    }
    if header.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Denied::MalformedHeader);
    }
    let text = std::str::from_utf8(header).map_err(|_| Denied::MalformedHeader)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(Denied::MalformedHeader)?;
    let token = token.trim();
    let printable = token.bytes().all(|b| b.is_ascii_graphic());
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !printable {
        return Err(Denied::MalformedHeader);
    }
    Ok(token)
}

impl TokenVerifier {
    pub fn new(sessions: Arc<SessionKeys>, users: Users, api_tokens: ApiTokens) -> Self {
        Self {
            sessions,
            users,
            api_tokens,
        }
    }

    /// Checks the raw Authorization header value (bytes: it may not even be UTF-8).
    pub async fn check(&self, authorization: Option<&[u8]>) -> Result<Principal, Denied> {
        let token = bearer_token(authorization.ok_or(Denied::MissingCredentials)?)?;
        if token.starts_with(api_token::PREFIX) {
            self.check_api_token(token).await
        } else {
            self.check_session(token).await
        }
    }

    async fn check_session(&self, token: &str) -> Result<Principal, Denied> {
        let claims = self.sessions.verify(token).map_err(|error| match error {
            SessionError::Invalid(error) => Denied::InvalidSession(error.to_string()),
            SessionError::WrongType => Denied::InvalidSession("not a session token".into()),
        })?;
        let user = self
            .users
            .by_id(&claims.sub)
            .await?
            .filter(|user| user.is_active())
            .ok_or(Denied::InactiveUser)?;
        if user.token_version != claims.ver {
            return Err(Denied::RevokedSession);
        }
        Ok(Principal {
            user_id: user.id,
            tenant_id: user.tenant_id,
            scopes: scopes::all(),
            token_kind: TokenKind::Session,
            token_id: None,
        })
    }

    async fn check_api_token(&self, token: &str) -> Result<Principal, Denied> {
        if !api_token::is_well_formed(token) {
            return Err(Denied::UnknownApiToken);
        }
        let now = crate::store::now_epoch_seconds();
        let record = self
            .api_tokens
            .by_hash(&api_token::hash(token))
            .await?
            .filter(|record| record.expires_at.is_none_or(|at| at > now))
            .ok_or(Denied::UnknownApiToken)?;
        let active = self
            .users
            .by_id(&record.user_id)
            .await?
            .is_some_and(|user| user.is_active());
        if !active {
            return Err(Denied::InactiveUser);
        }
        if let Err(error) = self
            .api_tokens
            .touch(&record, now, TOUCH_INTERVAL_SECS)
            .await
        {
            tracing::warn!(token_id = %record.id, %error, "could not record API token use");
        }
        Ok(Principal {
            user_id: record.user_id,
            tenant_id: record.tenant_id,
            scopes: record.scopes,
            token_kind: TokenKind::ApiToken,
            token_id: Some(record.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(b"Bearer abc").unwrap(), "abc");
        assert_eq!(bearer_token(b"bearer  abc ").unwrap(), "abc");
        for bad in [
            &b""[..],
            b"abc",
            b"Basic abc",
            b"Bearer ",
            b"Bearer a b",
            b"Bearer \xff\xfe",
        ] {
            assert!(bearer_token(bad).is_err(), "{bad:?}");
        }
        assert!(bearer_token(&vec![b'a'; 10_000]).is_err());
    }
}
