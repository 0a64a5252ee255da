//! Tokens for a service account acting as a user: the JWT bearer grant (RFC 7523) that
//! Google's domain-wide delegation uses. The assertion is signed RS256 with the key file's
//! private key; the token is cached until shortly before it expires.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use super::super::kit::{AccessToken, AccessTokenSource};
use super::super::service_account::ServiceAccountKey;
use super::super::ConnectorError;
use crate::http::GuardedClient;

/// Google's token endpoint, when the key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A cached token this close to its expiry is replaced before use.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Token responses are small; more is not a token endpoint.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// The tokens of one service account acting as one subject (or as itself).
pub struct MintedTokens {
    key: ServiceAccountKey,
    subject: Option<String>,
    scopes: String,
    http: GuardedClient,
    current: tokio::sync::Mutex<Option<Minted>>,
}

struct Minted {
    token: AccessToken,
    expires_at: Instant,
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

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct TokenErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl MintedTokens {
    pub fn new(
        key: ServiceAccountKey,
        subject: Option<String>,
        scopes: String,
        http: GuardedClient,
    ) -> Self {
        Self {
            key,
            subject,
            scopes,
            http,
            current: tokio::sync::Mutex::new(None),
        }
    }

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

    async fn mint(&self) -> Result<Minted, ConnectorError> {
        let assertion = self.assertion()?;
        let unavailable = |error: String| {
            ConnectorError::Unavailable(format!("Google's token endpoint: {error}"))
        };
        let response = self
            .http
            .post(self.token_uri())
            .form(&[
                ("grant_type", JWT_BEARER_GRANT),
                ("assertion", assertion.as_str()),
            ])
            .timeout(TOKEN_TIMEOUT)
            .send()
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        if body.len() > MAX_TOKEN_RESPONSE_BYTES {
            return Err(unavailable("the answer is too large".into()));
        }
        if status.is_success() {
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                ConnectorError::Protocol("Google's token endpoint answered without a token".into())
            })?;
            let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(3600));
            return Ok(Minted {
                token: AccessToken::new(parsed.access_token),
                expires_at: Instant::now() + lifetime,
            });
        }
        let error: TokenErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        let reason = match error.error_description {
            Some(description) => format!("{} ({description})", error.error),
            None => error.error,
        };
        if status.is_client_error() && status.as_u16() != 429 && status.as_u16() != 408 {
            let who = self.subject.as_deref().unwrap_or("itself");
            return Err(ConnectorError::Unauthorized(format!(
                "the service account {} may not act as {who}: {status} {reason}",
                self.key.client_email
            )));
        }
        Err(unavailable(format!("{status} {reason}")))
    }

    async fn fresh(&self, current: &mut Option<Minted>) -> Result<AccessToken, ConnectorError> {
        let minted = self.mint().await?;
        let token = minted.token.clone();
        *current = Some(minted);
        Ok(token)
    }
}

#[async_trait::async_trait]
impl AccessTokenSource for MintedTokens {
    async fn access_token(&self) -> Result<AccessToken, ConnectorError> {
        // One mint at a time per subject: concurrent callers wait for it and share it.
        let mut current = self.current.lock().await;
        if let Some(minted) = current.as_ref() {
            if minted.expires_at > Instant::now() + EXPIRY_MARGIN {
                return Ok(minted.token.clone());
            }
        }
        self.fresh(&mut current).await
    }

    async fn refresh_rejected(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, ConnectorError> {
        let mut current = self.current.lock().await;
        if let Some(minted) = current.as_ref() {
            if &minted.token != rejected && minted.expires_at > Instant::now() + EXPIRY_MARGIN {
                return Ok(minted.token.clone());
            }
        }
        self.fresh(&mut current).await
    }
}
