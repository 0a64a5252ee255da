//! The token client: code exchange (with the PKCE verifier and the exact redirect URI),
//! refresh and revocation at a configured provider, and the parsing of each provider's
//! token-response shape into one [`TokenSet`]. Requests never follow redirects (token
//! endpoints do not redirect; a redirect would re-send the client secret elsewhere) and
//! are not retried: with rotating refresh tokens a retried refresh can burn the grant.

use std::fmt;
use std::time::Duration;

use serde_json::{Map, Value};

use super::providers::{ClientAuth, ProviderConfig, RevokeStyle, TokenEncoding, TokenShape};
use crate::http::{GuardedClient, GuardedRequest, HttpError};
use crate::store::connections::{ConnectionAccount, StoredTokens};

/// Longest provider message kept in an error.
const MAX_MESSAGE_CHARS: usize = 200;

/// What a token endpoint granted, normalised across shapes.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    /// None when the provider sent none (a refresh that does not rotate keeps the old one).
    pub refresh_token: Option<String>,
    /// Epoch seconds; None when the provider gave no `expires_in`.
    pub expires_at: Option<i64>,
    /// Granted scopes; empty when the response does not say.
    pub scopes: Vec<String>,
    pub token_type: Option<String>,
    /// Non-secret facts about the authorising account (team, workspace, bot).
    pub account: ConnectionAccount,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"..")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| ".."))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field("account", &self.account)
            .finish()
    }
}

impl TokenSet {
    /// The secret part, for sealing.
    pub fn stored(&self) -> StoredTokens {
        StoredTokens {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The code or refresh token is expired, revoked, used or not ours (RFC 6749
    /// `invalid_grant`; Slack `invalid_refresh_token`, `invalid_code`, ...): only a new
    /// authorization helps.
    #[error("the provider refused the grant: {0}")]
    InvalidGrant(String),
    /// Any other refusal (bad client credentials, redirect URI mismatch, ...).
    #[error("the provider refused the token request: {0}")]
    Refused(String),
    /// Network trouble, 429 or 5xx: try again later.
    #[error("the provider's token endpoint is unavailable: {0}")]
    Unavailable(String),
    /// An answer we cannot read.
    #[error("unexpected answer from the provider's token endpoint: {0}")]
    Protocol(String),
}

impl TokenError {
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, TokenError::InvalidGrant(_))
    }
}

/// Provider text cut to printable characters, bounded: safe to store and show.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

/// Error codes meaning "this grant is dead, reconnect".
fn is_dead_grant(code: &str) -> bool {
    matches!(
        code,
        "invalid_grant"
            // Slack (oauth.v2.access errors)
            | "invalid_refresh_token"
            | "invalid_code"
            | "code_already_used"
            | "code_expired"
            | "token_revoked"
            | "token_expired"
            | "bad_verification_code"
    )
}

fn text(value: &Value, field: &str) -> Option<String> {
    match value.get(field)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn seconds(value: &Value, field: &str) -> Option<i64> {
    match value.get(field)? {
        Value::Number(n) => n.as_i64(),
        // Some providers send `"3600"`.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scopes_of(value: &Value, separator: char) -> Vec<String> {
    match value.get("scope") {
        Some(Value::String(s)) => s
            .split(|c: char| c == separator || c.is_whitespace() || c == ',')
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// JSON, or a form-encoded body (some providers answer that way without an Accept).
fn body_value(body: &[u8]) -> Option<Value> {
    if let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(body) {
        return Some(value);
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.starts_with(['{', '[', '<']) || !text.contains('=') {
        return None;
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if pairs.is_empty() {
        return None;
    }
    Some(Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<String, Value>>(),
    ))
}

/// An OAuth error in the body (`error`/`error_description`, or Notion's `code`/`message`).
fn oauth_error(value: &Value) -> Option<TokenError> {
    let code = text(value, "error").or_else(|| {
        // Notion's API errors: {"object": "error", "code", "message"}.
        (value.get("object").and_then(Value::as_str) == Some("error"))
            .then(|| text(value, "code"))
            .flatten()
    })?;
    let description = text(value, "error_description")
        .or_else(|| text(value, "message"))
        .unwrap_or_default();
    let message = printable(&if description.is_empty() {
        code.clone()
    } else {
        format!("{code}: {description}")
    });
    Some(if is_dead_grant(&code) {
        TokenError::InvalidGrant(message)
    } else {
        TokenError::Refused(message)
    })
}

fn status_error(status: u16) -> TokenError {
    let message = format!("HTTP {status}");
    if status == 429 || status >= 500 {
        TokenError::Unavailable(message)
    } else {
        TokenError::Protocol(message)
    }
}

fn standard_tokens(value: &Value, now: i64, separator: char) -> Result<TokenSet, TokenError> {
    let access_token = text(value, "access_token")
        .ok_or_else(|| TokenError::Protocol("no access_token in the response".into()))?;
    Ok(TokenSet {
        access_token,
        refresh_token: text(value, "refresh_token"),
        expires_at: seconds(value, "expires_in")
            .filter(|secs| *secs > 0)
            .map(|secs| now + secs),
        scopes: scopes_of(value, separator),
        token_type: text(value, "token_type"),
        account: ConnectionAccount::default(),
    })
}

fn nested(value: &Value, object: &str, field: &str) -> Option<String> {
    value.get(object).and_then(|inner| text(inner, field))
}

/// Slack: `ok` decides; the bot token at the top level, else the user token under
/// `authed_user` (a user-token-only install).
fn slack_tokens(value: &Value, now: i64) -> Result<TokenSet, TokenError> {
    if value.get("ok").and_then(Value::as_bool) != Some(true) {
        let code = text(value, "error").unwrap_or_else(|| "ok is not true".into());
        let message = printable(&code);
        return Err(if is_dead_grant(&code) {
            TokenError::InvalidGrant(message)
        } else if matches!(
            code.as_str(),
            "ratelimited" | "internal_error" | "fatal_error"
        ) {
            TokenError::Unavailable(message)
        } else {
            TokenError::Refused(message)
        });
    }
    let source = if text(value, "access_token").is_some() {
        value
    } else {
        value
            .get("authed_user")
            .filter(|user| text(user, "access_token").is_some())
            .ok_or_else(|| TokenError::Protocol("no access_token in the response".into()))?
    };
    let mut tokens = standard_tokens(source, now, ',')?;
    tokens.account = ConnectionAccount {
        account_id: nested(value, "authed_user", "id").or_else(|| text(value, "user_id")),
        account_name: None,
        workspace_id: nested(value, "team", "id").or_else(|| text(value, "team_id")),
        workspace_name: nested(value, "team", "name"),
        bot_id: text(value, "bot_user_id"),
    };
    Ok(tokens)
}

fn notion_tokens(value: &Value, now: i64) -> Result<TokenSet, TokenError> {
    let mut tokens = standard_tokens(value, now, ' ')?;
    let owner_user = value.get("owner").and_then(|owner| owner.get("user"));
    tokens.account = ConnectionAccount {
        account_id: owner_user.and_then(|user| text(user, "id")),
        account_name: owner_user.and_then(|user| text(user, "name")),
        workspace_id: text(value, "workspace_id"),
        workspace_name: text(value, "workspace_name"),
        bot_id: text(value, "bot_id"),
    };
    Ok(tokens)
}

/// Dropbox (`account_id`, `team_id`) and Discord (`guild`) name their account too.
fn standard_account(value: &Value) -> ConnectionAccount {
    ConnectionAccount {
        account_id: text(value, "account_id"),
        account_name: None,
        workspace_id: text(value, "team_id").or_else(|| nested(value, "guild", "id")),
        workspace_name: nested(value, "guild", "name"),
        bot_id: None,
    }
}

/// A token endpoint's answer as a [`TokenSet`], or its error. `now` anchors `expires_in`.
pub fn parse_token_response(
    shape: TokenShape,
    scope_separator: char,
    status: u16,
    body: &[u8],
    now: i64,
) -> Result<TokenSet, TokenError> {
    let Some(value) = body_value(body) else {
        return Err(if (200..300).contains(&status) {
            TokenError::Protocol(format!("HTTP {status}, unreadable body"))
        } else {
            status_error(status)
        });
    };
    if shape == TokenShape::Slack && (200..300).contains(&status) {
        return slack_tokens(&value, now);
    }
    if let Some(error) = oauth_error(&value) {
        // A 5xx with an error body is still an outage, not a verdict on the grant.
        return Err(match error {
            TokenError::Refused(message) if status == 429 || status >= 500 => {
                TokenError::Unavailable(message)
            }
            other => other,
        });
    }
    if !(200..300).contains(&status) {
        return Err(status_error(status));
    }
    match shape {
        TokenShape::Notion => notion_tokens(&value, now),
        TokenShape::Standard | TokenShape::Slack => {
            let mut tokens = standard_tokens(&value, now, scope_separator)?;
            tokens.account = standard_account(&value);
            Ok(tokens)
        }
    }
}

fn transport(error: HttpError) -> TokenError {
    if error.is_refusal() {
        TokenError::Refused(printable(&error.to_string()))
    } else {
        TokenError::Unavailable(printable(&error.to_string()))
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
fn basic_part(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A token request's timeout unless the caller gives one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// The token client; cheap to clone.
#[derive(Clone, Debug)]
pub struct TokenClient {
    http: GuardedClient,
    timeout: Duration,
}

impl TokenClient {
    pub fn new(http: GuardedClient) -> Self {
        Self {
            http,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Every request's timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A POST of `params` with the provider's client authentication and encoding.
    fn request(
        &self,
        provider: &ProviderConfig,
        url: &url::Url,
        mut params: Vec<(&'static str, String)>,
    ) -> GuardedRequest {
        let mut request = self
            .http
            .post(url.clone())
            .timeout(self.timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        match provider.spec.client_auth {
            ClientAuth::Basic => {
                request = request.basic_auth(
                    basic_part(&provider.client_id),
                    Some(basic_part(provider.client_secret.expose())),
                );
            }
            ClientAuth::Post => {
                params.push(("client_id", provider.client_id.clone()));
                params.push(("client_secret", provider.client_secret.expose().to_owned()));
            }
        }
        match provider.spec.token_encoding {
            TokenEncoding::Form => request.form(&params),
            TokenEncoding::Json => {
                let body: Map<String, Value> = params
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect();
                request.json(&body)
            }
        }
    }

    async fn token_request(
        &self,
        provider: &ProviderConfig,
        params: Vec<(&'static str, String)>,
        timeout: Duration,
    ) -> Result<TokenSet, TokenError> {
        let (status, body) = answer(
            self.request(provider, &provider.token_url, params)
                .timeout(timeout),
        )
        .await?;
        parse_token_response(
            provider.spec.shape,
            provider.spec.scope_separator,
            status,
            &body,
            crate::time::now_epoch_seconds(),
        )
    }

    /// Exchanges an authorization code. `redirect_uri` must be exactly the one the
    /// authorize request carried; `verifier` is the PKCE verifier (when the provider
    /// takes PKCE). Scopes the response does not list are the ones requested.
    pub async fn exchange_code(
        &self,
        provider: &ProviderConfig,
        code: &str,
        verifier: Option<&str>,
        redirect_uri: &url::Url,
    ) -> Result<TokenSet, TokenError> {
        let mut params = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect_uri.as_str().to_owned()),
        ];
        if let Some(verifier) = verifier.filter(|_| provider.spec.pkce) {
            params.push(("code_verifier", verifier.to_owned()));
        }
        let mut tokens = self.token_request(provider, params, self.timeout).await?;
        if tokens.scopes.is_empty() {
            tokens.scopes = provider.scopes.clone();
        }
        Ok(tokens)
    }

    /// Refreshes; the answer's `refresh_token` is the rotated one (None: keep the old).
    pub async fn refresh(
        &self,
        provider: &ProviderConfig,
        refresh_token: &str,
    ) -> Result<TokenSet, TokenError> {
        self.refresh_with_timeout(provider, refresh_token, self.timeout)
            .await
    }

    /// [`TokenClient::refresh`] within `timeout` (shorter than a refresh lock lasts).
    pub async fn refresh_with_timeout(
        &self,
        provider: &ProviderConfig,
        refresh_token: &str,
        timeout: Duration,
    ) -> Result<TokenSet, TokenError> {
        let params = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.to_owned()),
        ];
        self.token_request(provider, params, timeout).await
    }

    /// Revokes the grant at the provider; `Ok(false)` when it has no revocation endpoint.
    /// A token the provider already considers invalid counts as revoked.
    pub async fn revoke(
        &self,
        provider: &ProviderConfig,
        tokens: &StoredTokens,
    ) -> Result<bool, TokenError> {
        let Some(url) = &provider.revoke_url else {
            return Ok(false);
        };
        let request = match provider.spec.revoke_style {
            RevokeStyle::Bearer => self
                .http
                .post(url.clone())
                .timeout(self.timeout)
                .bearer_auth(&tokens.access_token),
            RevokeStyle::Token => {
                let (token, hint) = match &tokens.refresh_token {
                    Some(refresh) => (refresh.clone(), "refresh_token"),
                    None => (tokens.access_token.clone(), "access_token"),
                };
                self.request(
                    provider,
                    url,
                    vec![("token", token), ("token_type_hint", hint.to_owned())],
                )
            }
        };
        let (status, body) = answer(request).await?;
        revoke_outcome(provider.spec.shape, status, &body)
    }
}

/// Whether a revocation answer means the token is gone.
fn revoke_outcome(shape: TokenShape, status: u16, body: &[u8]) -> Result<bool, TokenError> {
    let value = body_value(body);
    let already_gone = |code: &str| {
        matches!(
            code,
            "invalid_token" | "invalid_grant" | "token_revoked" | "invalid_auth" | "not_authed"
        ) || is_dead_grant(code)
    };
    if shape == TokenShape::Slack && (200..300).contains(&status) {
        let value = value.unwrap_or(Value::Null);
        if value.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(true);
        }
        let code = text(&value, "error").unwrap_or_default();
        return if already_gone(&code) {
            Ok(true)
        } else {
            Err(TokenError::Refused(printable(&code)))
        };
    }
    if (200..300).contains(&status) {
        return Ok(true);
    }
    if let Some(value) = value {
        if let Some(code) = text(&value, "error").or_else(|| text(&value, "code")) {
            if already_gone(&code) {
                return Ok(true);
            }
        }
        if let Some(error) = oauth_error(&value) {
            return Err(error);
        }
    }
    // Dropbox answers 401 for a token that is already invalid.
    if status == 401 {
        return Ok(true);
    }
    Err(status_error(status))
}

/// Sends a token-endpoint request once, never following a redirect (a token request is
/// never replayed elsewhere), and reads the whole answer.
async fn answer(request: GuardedRequest) -> Result<(u16, Vec<u8>), TokenError> {
    let response = request
        .send_following(&|_| false)
        .await
        .map_err(transport)?
        .response;
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map_err(|error| transport(error.into()))?;
    Ok((status, body.to_vec()))
}

#[cfg(test)]
mod tests;
