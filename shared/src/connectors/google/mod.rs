//! What every Google source shares: the authorisation (a workspace `google` connection, or
//! a service account acting for users through domain-wide delegation), the API client with
//! Google's throttling shape, and Google's JSON error body.

mod jwt;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use url::Url;

use super::kit::{ApiClient, Governor, ServiceAccountAuth, SourceAuth, ThrottleShape};
use super::ConnectorError;
use crate::http::{GuardedClient, RetryPolicy};
pub use jwt::{minted_tokens, MintedTokens, DEFAULT_TOKEN_URI, JWT_BEARER_GRANT};

/// Read-only Drive (files, exports, permissions, changes).
pub const DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
/// Read-only Gmail (threads, messages, history, attachments).
pub const GMAIL_READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// A Google source's authorisation: the connector's credentials plus, for a service
/// account, one token source per user it acts as (cached, refreshed before expiry).
#[derive(Clone)]
pub struct GoogleAuth {
    auth: SourceAuth,
    delegation: Option<Arc<Delegation>>,
}

struct Delegation {
    account: Arc<ServiceAccountAuth>,
    http: GuardedClient,
    scopes: String,
    by_subject: Mutex<HashMap<Option<String>, Arc<MintedTokens>>>,
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleAuth")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl GoogleAuth {
    /// `scopes` are what a service account's tokens are minted for (a connection's scopes
    /// were fixed when it was made).
    pub fn new(auth: SourceAuth, http: GuardedClient, scopes: &[&str]) -> Self {
        let delegation = match &auth {
            SourceAuth::ServiceAccount(account) => Some(Arc::new(Delegation {
                account: Arc::clone(account),
                http,
                scopes: scopes.join(" "),
                by_subject: Mutex::new(HashMap::new()),
            })),
            _ => None,
        };
        Self { auth, delegation }
    }

    /// Whether the credentials are a service account (which can act as named users).
    pub fn is_delegated(&self) -> bool {
        self.delegation.is_some()
    }

    /// The user a service account acts as when the configuration names none.
    pub fn default_subject(&self) -> Option<&str> {
        self.delegation
            .as_ref()
            .and_then(|d| d.account.subject.as_deref())
    }

    /// The authorisation of requests about `user`: a service account's tokens minted for
    /// `user` (else its default subject, else itself); a connection or token acts as its
    /// own account only.
    pub fn for_user(&self, user: Option<&str>) -> Result<SourceAuth, ConnectorError> {
        let Some(delegation) = &self.delegation else {
            return match user {
                None => Ok(self.auth.clone()),
                Some(user) => Err(ConnectorError::Config(format!(
                    "impersonating {user} needs service-account credentials"
                ))),
            };
        };
        let subject = user
            .map(str::to_owned)
            .or_else(|| delegation.account.subject.clone());
        let mut cache = delegation
            .by_subject
            .lock()
            .map_err(|_| ConnectorError::Unavailable("token cache poisoned".into()))?;
        let tokens = cache
            .entry(subject.clone())
            .or_insert_with(|| {
                Arc::new(minted_tokens(
                    delegation.account.key.clone(),
                    subject,
                    delegation.scopes.clone(),
                    delegation.http.clone(),
                ))
            })
            .clone();
        Ok(SourceAuth::Connection(tokens))
    }
}

/// The API client of one Google API for one user: Google's throttling shape (403
/// `userRateLimitExceeded`/`rateLimitExceeded`, 429), a governor shared by every sync of
/// this connector acting as `user` (quotas are per user), Google's error messages.
pub fn api_client(
    title: &'static str,
    connector_id: &str,
    user: &str,
    base: Url,
    auth: SourceAuth,
    http: GuardedClient,
    retry: RetryPolicy,
) -> ApiClient {
    let governor = Governor::shared_with_budget(
        "google",
        &format!("{connector_id}#{user}"),
        ThrottleShape::Google,
        retry.budget,
    );
    ApiClient::new(title, http, base, auth)
        .with_retry(retry)
        .with_governor(governor)
        .with_error_messages(error_message)
}

/// The first `error.errors[].reason` of a Google error body, else `error.status`.
pub fn error_reason(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let error = value.get("error")?;
    error
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.iter().find_map(|e| e.get("reason")?.as_str()))
        .or_else(|| error.get("status").and_then(Value::as_str))
        .map(str::to_owned)
}

/// `error.message` (and the reason) of a Google error body; else its start.
pub fn error_message(body: &[u8]) -> String {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let message = value
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str);
    match (message, error_reason(body)) {
        (Some(message), Some(reason)) => format!("{message} ({reason})"),
        (Some(message), None) => message.to_owned(),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}
