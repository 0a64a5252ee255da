//! Tokens a source obtains itself with a grant it can repeat at will (Google's JWT bearer
//! grant for a service account, the client credentials grant of an app): cached until
//! shortly before they expire, one request at a time, replaced when the API refuses them.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;

use super::super::ConnectorError;
use super::auth::{AccessToken, AccessTokenSource};
use crate::http::GuardedClient;

/// A cached token this close to its expiry is replaced before use.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Token responses are small; more is not a token endpoint.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
/// When the endpoint does not say (`expires_in` is RECOMMENDED in RFC 6749).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A token and how long the endpoint said it lives.
pub struct GrantedToken {
    pub token: AccessToken,
    pub lifetime: Duration,
}

/// How the endpoint refused a grant request.
#[derive(Debug)]
pub enum TokenEndpointError {
    /// A 4xx other than 408/429: these credentials will not work as they are.
    Refused { status: StatusCode, reason: String },
    /// Network trouble, 408/429/5xx, an unreadable answer: try again later.
    Unavailable(String),
}

/// One request of a grant (what [`CachedGrant`] repeats when its token runs out).
#[async_trait::async_trait]
pub trait TokenGrant: Send + Sync {
    async fn request(&self) -> Result<GrantedToken, ConnectorError>;
}

/// A grant's token, cached: concurrent callers wait for one request and share its token.
pub struct CachedGrant<G> {
    grant: G,
    current: tokio::sync::Mutex<Option<(AccessToken, Instant)>>,
}

impl<G: TokenGrant> CachedGrant<G> {
    pub fn new(grant: G) -> Self {
        Self {
            grant,
            current: tokio::sync::Mutex::new(None),
        }
    }

    async fn fresh(
        &self,
        current: &mut Option<(AccessToken, Instant)>,
    ) -> Result<AccessToken, ConnectorError> {
        let granted = self.grant.request().await?;
        let token = granted.token.clone();
        *current = Some((granted.token, Instant::now() + granted.lifetime));
        Ok(token)
    }
}

fn still_valid(expires_at: Instant) -> bool {
    expires_at > Instant::now() + EXPIRY_MARGIN
}

#[async_trait::async_trait]
impl<G: TokenGrant> AccessTokenSource for CachedGrant<G> {
    async fn access_token(&self) -> Result<AccessToken, ConnectorError> {
        let mut current = self.current.lock().await;
        if let Some((token, expires_at)) = current.as_ref() {
            if still_valid(*expires_at) {
                return Ok(token.clone());
            }
        }
        self.fresh(&mut current).await
    }

    async fn refresh_rejected(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, ConnectorError> {
        let mut current = self.current.lock().await;
        if let Some((token, expires_at)) = current.as_ref() {
            if token != rejected && still_valid(*expires_at) {
                return Ok(token.clone());
            }
        }
        self.fresh(&mut current).await
    }
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

/// POSTs a grant's form to a token endpoint (RFC 6749 §4.4/§5, RFC 7523) and reads the
/// access token or the error.
pub async fn post_token_form(
    http: &GuardedClient,
    token_url: &str,
    form: &[(&str, &str)],
) -> Result<GrantedToken, TokenEndpointError> {
    let unavailable = |error: String| TokenEndpointError::Unavailable(error);
    let response = http
        .post(token_url)
        .form(form)
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
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| unavailable("the answer has no access_token".into()))?;
        return Ok(GrantedToken {
            token: AccessToken::new(parsed.access_token),
            lifetime: parsed
                .expires_in
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_LIFETIME),
        });
    }
    let error: TokenErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    let reason = match error.error_description {
        Some(description) => format!("{} ({description})", error.error),
        None => error.error,
    };
    if status.is_client_error()
        && status != StatusCode::TOO_MANY_REQUESTS
        && status != StatusCode::REQUEST_TIMEOUT
    {
        return Err(TokenEndpointError::Refused { status, reason });
    }
    Err(unavailable(format!("{status} {reason}")))
}
