//! Tokens for a service account acting as a user: the JWT bearer grant (RFC 7523) that
//! Google's domain-wide delegation uses. The assertion is signed RS256 with the key file's
//! private key; the token is cached by the kit until shortly before it expires.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::super::kit::token_grant::{
    post_token_form, CachedGrant, GrantedToken, TokenEndpointError, TokenGrant,
};
use super::super::service_account::ServiceAccountKey;
use super::super::ConnectorError;
use crate::http::GuardedClient;

/// Google's token endpoint, when the key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// The tokens of one service account acting as one subject (or as itself).
pub type MintedTokens = CachedGrant<DelegationGrant>;

/// The JWT bearer grant of one service account for one subject.
pub struct DelegationGrant {
    key: ServiceAccountKey,
    subject: Option<String>,
    scopes: String,
    http: GuardedClient,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    iat: i64,
    exp: i64,
}

/// The cached tokens of `key` acting as `subject` for `scopes`.
pub fn minted_tokens(
    key: ServiceAccountKey,
    subject: Option<String>,
    scopes: String,
    http: GuardedClient,
) -> MintedTokens {
    CachedGrant::new(DelegationGrant {
        key,
        subject,
        scopes,
        http,
    })
}

impl DelegationGrant {
    fn token_uri(&self) -> &str {
        self.key.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI)
    }

    fn assertion(&self) -> Result<String, ConnectorError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: &self.key.client_email,
            scope: &self.scopes,
            aud: self.token_uri(),
            sub: self.subject.as_deref(),
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key.private_key_id.clone();
        let key =
            EncodingKey::from_rsa_pem(self.key.private_key.expose().as_bytes()).map_err(|_| {
                ConnectorError::Unauthorized(
                    "the service account's private key is not an RSA PEM key".into(),
                )
            })?;
        jsonwebtoken::encode(&header, &claims, &key).map_err(|error| {
            ConnectorError::Unauthorized(format!("cannot sign the assertion: {error}"))
        })
    }
}

#[async_trait::async_trait]
impl TokenGrant for DelegationGrant {
    async fn request(&self) -> Result<GrantedToken, ConnectorError> {
        let assertion = self.assertion()?;
        let form = [
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", assertion.as_str()),
        ];
        post_token_form(&self.http, self.token_uri(), &form)
            .await
            .map_err(|error| match error {
                TokenEndpointError::Refused { status, reason } => {
                    let who = self.subject.as_deref().unwrap_or("itself");
                    ConnectorError::Unauthorized(format!(
                        "the service account {} may not act as {who}: {status} {reason}",
                        self.key.client_email
                    ))
                }
                TokenEndpointError::Unavailable(error) => {
                    ConnectorError::Unavailable(format!("Google's token endpoint: {error}"))
                }
            })
    }
}
