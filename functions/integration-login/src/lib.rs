//! `integration-login`: a workspace's provider connections (DESIGN §3 "Provider
//! connection"). `GET /integrations/{provider}/login` stores one-time state (PKCE S256
//! verifier, workspace, user, post-connect path), binds it to the browser with a cookie and
//! answers with the provider's authorize URL; `GET /integrations` lists the workspace's
//! connections (never a token); `DELETE /integrations/{provider}` revokes at the provider
//! where it can, then deletes. Every route sits behind the token check.
//!
//! [`IntegrationState`] is also what `integration-callback` runs on.

use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, LOCATION, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tributary::auth::oauth::pkce;
use tributary::auth::oauth::redirect::post_login_path;
use tributary::auth::scopes;

use tributary::integrations::{
    ConnectionError, ConnectionService, Integrations, ProviderConfig, RefreshPolicy, TokenClient,
    TokenError,
};
use tributary::store::connect_states::{ConnectState, ConnectStates, CONNECT_STATE_TTL_SECS};
use tributary::store::now_epoch_seconds;
use tributary::store::Table;
use tributary::vault::Vault;
use tributary::web::{set_cookie, ApiError, ApiQuery, Authenticated};

/// The cookie binding a connection attempt to the browser that started it.
pub const STATE_COOKIE: &str = "tributary_connect_state";
/// Longest provider name accepted in a path.
const MAX_PROVIDER_CHARS: usize = 32;

/// What both integration functions run on: the connection service (configured
/// providers, token client, sealed connection store), the one-time states, and the public
/// base URL the callbacks live under.
#[derive(Clone)]
pub struct IntegrationState {
    pub connections: ConnectionService,
    pub states: ConnectStates,
    /// None until known: `tributary-local serve` fills in the address it bound.
    public_url: Option<url::Url>,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] tributary::config::ConfigError),
    #[error(transparent)]
    Vault(#[from] tributary::vault::VaultError),
    #[error("{variable} must be an http(s) base URL without query or fragment: {reason}")]
    PublicUrl {
        variable: &'static str,
        reason: String,
    },
    #[error("{variable} is not set: provider `{provider}` has no pinned redirect URI, so the callback URL is <{variable}>/integrations/{provider}/callback")]
    MissingPublicUrl {
        variable: &'static str,
        provider: String,
    },
}

/// `public_url` (e.g. `https://api.example.com`), checked: where the callbacks live.
pub fn public_base_url(public_url: &str) -> Result<url::Url, SetupError> {
    let invalid = |reason: String| SetupError::PublicUrl {
        variable: tributary::mail::PUBLIC_URL,
        reason,
    };
    let trimmed = public_url.trim().trim_end_matches('/');
    let parsed = url::Url::parse(trimmed).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || parsed.host().is_none()
        || !parsed.username().is_empty()
    {
        return Err(invalid(format!("`{public_url}`")));
    }
    Ok(parsed)
}

/// A connection service with no provider (nothing configured): lists and deletes still work.
pub fn no_providers(table: Arc<dyn Table>, vault: Vault) -> Result<ConnectionService, SetupError> {
    let http = tributary::integrations::setup::token_http_client()?;
    Ok(ConnectionService::new(
        Integrations::default(),
        table,
        vault,
        TokenClient::new(http),
        RefreshPolicy::default(),
    ))
}

/// The Lambda configuration: `TRIBUTARY_INTEGRATIONS` and `TRIBUTARY_INTEGRATION_*`,
/// `TRIBUTARY_ENCRYPTION_KEY`, and `TRIBUTARY_PUBLIC_URL` (required when a provider has no
/// pinned `_REDIRECT_URI`).
pub fn state_from_env(table: Arc<dyn Table>) -> Result<IntegrationState, SetupError> {
    let vault = Vault::from_env()?;
    let http = tributary::integrations::setup::token_http_client()?;
    let connections = match tributary::integrations::setup::connections_from_env(
        table.clone(),
        vault.clone(),
        http,
    )? {
        Some(connections) => connections,
        None => no_providers(table.clone(), vault)?,
    };
    let public_url = match std::env::var(tributary::mail::PUBLIC_URL) {
        Ok(url) if !url.trim().is_empty() => Some(public_base_url(&url)?),
        _ => None,
    };
    let state = IntegrationState::new(connections, ConnectStates::new(table), public_url);
    state.check_redirect_uris()?;
    Ok(state)
}

impl IntegrationState {
    pub fn new(
        connections: ConnectionService,
        states: ConnectStates,
        public_url: Option<url::Url>,
    ) -> Self {
        Self {
            connections,
            states,
            public_url,
        }
    }

    /// With `public_url` unless one is set already (`tributary-local serve`: the address
    /// it bound).
    pub fn or_public_url(mut self, public_url: url::Url) -> Self {
        self.public_url.get_or_insert(public_url);
        self
    }

    /// Fails when a provider's redirect URI cannot be built (no public URL, none pinned).
    pub fn check_redirect_uris(&self) -> Result<(), SetupError> {
        match self.public_url {
            Some(_) => Ok(()),
            None => match self
                .connections
                .integrations()
                .iter()
                .find(|provider| provider.redirect_uri.is_none())
            {
                Some(provider) => Err(SetupError::MissingPublicUrl {
                    variable: tributary::mail::PUBLIC_URL,
                    provider: provider.name.clone(),
                }),
                None => Ok(()),
            },
        }
    }

    /// The configured provider; 404 `unknown_provider` otherwise.
    pub fn provider(&self, name: &str) -> Result<&Arc<ProviderConfig>, ApiError> {
        let name = provider_name(name)?;
        self.connections
            .provider(name)
            .ok_or_else(|| unknown_provider(name))
    }

    /// The exact redirect URI of `provider`, sent on the authorize and token requests:
    /// the operator's `_REDIRECT_URI` when pinned, else
    /// `<TRIBUTARY_PUBLIC_URL>/integrations/<provider>/callback`.
    pub fn redirect_uri(&self, provider: &ProviderConfig) -> Result<url::Url, ApiError> {
        if let Some(pinned) = &provider.redirect_uri {
            return Ok(pinned.clone());
        }
        let base = self
            .public_url
            .as_ref()
            .ok_or_else(|| ApiError::internal("no public URL to build the callback URL from"))?;
        let base = base.as_str().trim_end_matches('/');
        url::Url::parse(&format!("{base}{}", callback_path(&provider.name)))
            .map_err(ApiError::internal)
    }

    /// Exchanges the callback's code (with the attempt's verifier and the exact redirect
    /// URI) and stores the workspace's connection.
    pub async fn connect(&self, attempt: &ConnectState, code: &str) -> Result<(), ApiError> {
        let provider = self.provider(&attempt.provider)?;
        let redirect_uri = self.redirect_uri(provider)?;
        let tokens = self
            .connections
            .token_client()
            .exchange_code(provider, code, Some(&attempt.pkce_verifier), &redirect_uri)
            .await
            .map_err(|error| connection_error(ConnectionError::Token(error)))?;
        self.connections
            .connect(&attempt.workspace_id, &provider.name, tokens)
            .await
            .map_err(connection_error)?;
        Ok(())
    }
}

/// The callback path the state cookie is scoped to.
pub fn callback_path(provider: &str) -> String {
    format!("/integrations/{provider}/callback")
}

pub fn protected_routes(state: IntegrationState) -> Router {
    Router::new()
        .route("/integrations", get(list))
        .route("/integrations/{provider}/login", get(login))
        .route("/integrations/{provider}", axum::routing::delete(remove))
        .with_state(state)
}

/// A provider name as it may appear in a path and a message: lowercase letters, digits and
/// `-`, at most 32 characters (anything else names no provider).
pub fn provider_name(raw: &str) -> Result<&str, ApiError> {
    let valid = !raw.is_empty()
        && raw.len() <= MAX_PROVIDER_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(raw)
    } else {
        // Only name characters are repeated back, so the message cannot carry markup.
        let shown: String = raw
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .take(MAX_PROVIDER_CHARS)
            .collect();
        Err(unknown_provider(&shown))
    }
}

pub fn unknown_provider(name: &str) -> ApiError {
    ApiError::not_found(format!("no provider called `{name}` is configured"))
        .with_code("unknown_provider")
}

/// The one place connection errors become statuses and `{code, message}` bodies.
pub fn connection_error(error: ConnectionError) -> ApiError {
    let message = error.to_string();
    let status = match &error {
        ConnectionError::UnknownProvider(name) => {
            return provider_name(name)
                .err()
                .unwrap_or_else(|| unknown_provider(name))
        }
        ConnectionError::NotConnected(_) => StatusCode::NOT_FOUND,
        ConnectionError::Token(TokenError::InvalidGrant(_)) => StatusCode::BAD_REQUEST,
        ConnectionError::Token(_) => StatusCode::BAD_GATEWAY,
        ConnectionError::Store(_) | ConnectionError::Vault(_) => return ApiError::internal(error),
    };
    let code = error.code();
    tracing::info!(%code, reason = %message, "provider connection refused");
    ApiError::new(status, code, message)
}

/// Whether the caller asked for JSON (a console calling with a bearer header, which cannot
/// follow a cross-site redirect usefully).
pub fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/json"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginParams {
    redirect_to: Option<String>,
}

/// `GET /integrations/{provider}/login[?redirect_to=/path]`.
async fn login(
    State(state): State<IntegrationState>,
    caller: Authenticated,
    Path(provider): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<LoginParams>,
) -> Result<Response, ApiError> {
    let principal = caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let provider = state.provider(&provider)?;
    let redirect_to = match params.redirect_to.as_deref() {
        Some(path) => Some(
            post_login_path(Some(path))
                .map_err(|error| ApiError::bad_request("invalid_redirect", error.to_string()))?,
        ),
        None => None,
    };
    let random = || pkce::random_token().map_err(ApiError::internal);
    let (one_time, verifier) = (random()?, random()?);
    let authorize_url = provider.authorize_url(
        &state.redirect_uri(provider)?,
        &one_time,
        &pkce::s256_challenge(&verifier),
    );
    let value = ConnectState {
        provider: provider.name.clone(),
        workspace_id: principal.tenant_id.clone(),
        user_id: principal.user_id.clone(),
        pkce_verifier: verifier,
        redirect_to,
        created_at: now_epoch_seconds(),
    };
    state.states.save(&one_time, &value).await?;
    tracing::info!(provider = %provider.name, workspace_id = %principal.tenant_id, "provider connection started");
    let cookie = set_cookie(
        STATE_COOKIE,
        &one_time,
        &callback_path(&provider.name),
        CONNECT_STATE_TTL_SECS,
    );
    let mut response = if wants_json(&headers) {
        Json(json!({ "authorize_url": authorize_url.as_str() })).into_response()
    } else {
        let location = HeaderValue::from_str(authorize_url.as_str()).map_err(ApiError::internal)?;
        (StatusCode::FOUND, [(LOCATION, location)]).into_response()
    };
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, cookie);
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// `GET /integrations`: `{items: [{provider, status, scopes, expires_at, account, ..}],
/// providers: [{name, scopes}]}`: the workspace's connections and every configured provider
/// it could connect to.
async fn list(
    State(state): State<IntegrationState>,
    caller: Authenticated,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = caller.require_scope(scopes::CONNECTORS_READ)?;
    let items = state
        .connections
        .list(&principal.tenant_id)
        .await
        .map_err(connection_error)?;
    let providers: Vec<serde_json::Value> = state
        .connections
        .integrations()
        .iter()
        .map(|provider| json!({ "name": provider.name, "scopes": provider.scopes }))
        .collect();
    Ok(Json(json!({ "items": items, "providers": providers })))
}

/// `DELETE /integrations/{provider}`: 204; 404 when this workspace has no such connection.
async fn remove(
    State(state): State<IntegrationState>,
    caller: Authenticated,
    Path(provider): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.require_scope(scopes::CONNECTORS_WRITE)?;
    let not_found = || {
        let shown = provider_name(&provider).unwrap_or("that provider");
        ApiError::not_found(format!("this workspace has no connection to `{shown}`"))
    };
    let name = provider_name(&provider).map_err(|_| not_found())?;
    let removed = match state
        .connections
        .disconnect(&principal.tenant_id, name)
        .await
    {
        Ok(removed) => removed,
        // A provider no longer configured: its connections can still be deleted here.
        Err(ConnectionError::UnknownProvider(_)) => {
            let stored = state.connections.connections();
            let exists = stored.get(&principal.tenant_id, name).await?.is_some();
            if exists {
                stored.delete(&principal.tenant_id, name).await?;
            }
            exists
        }
        Err(error) => return Err(connection_error(error)),
    };
    if !removed {
        return Err(not_found());
    }
    tracing::info!(provider = %name, workspace_id = %principal.tenant_id, "provider connection removed");
    Ok(StatusCode::NO_CONTENT)
}

/// `text` safe inside HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_plain() {
        assert_eq!(provider_name("google").unwrap(), "google");
        assert_eq!(provider_name("my-idp2").unwrap(), "my-idp2");
        for bad in ["", "Google", "a/b", "a b", "<x>", &"a".repeat(33)] {
            let error = provider_name(bad).unwrap_err();
            assert_eq!(error.code, "unknown_provider", "{bad:?}");
            assert!(!error.message.contains('<'), "{}", error.message);
        }
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
