//! The authorization-code + PKCE flow over every configured provider: `start` stores the
//! one-time state and builds the provider URL; `finish` checks state (one-time, bound to
//! the browser), the RFC 9207 `iss` parameter, exchanges the code, and finds or creates
//! the user by external identity — linking by email only when the provider verified it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use subtle::ConstantTimeEq;

use super::config::{OAuthConfigError, ProviderConfig, ProviderKind};
use super::github::GitHubClient;
use super::oauth2::{OAuth2Client, OAuth2Error};
use super::oidc::{OidcClient, OidcError};
use super::redirect::{post_login_path, InvalidRedirect};
use super::{pkce, printable, ExternalUser};
use crate::store::oauth::{LoginState, SignInValues};
use crate::store::users::identity_key;
use crate::store::{now_epoch_seconds, NewUser, StoreError, Table, User, UserError, Users};

pub const JWKS_COOLDOWN: &str = "TRIBUTARY_OAUTH_JWKS_COOLDOWN_SECS";
/// Where a browser whose sign-in failed is sent back to (a path on this site; default `/`).
pub const SIGNIN_PAGE: &str = "TRIBUTARY_SIGNIN_PAGE";

// One per configured provider, built at cold start and only borrowed after.
#[allow(clippy::large_enum_variant)]
pub enum Provider {
    Oidc(OidcClient),
    OAuth2(OAuth2Client),
    GitHub(GitHubClient),
}

impl Provider {
    fn config(&self) -> &ProviderConfig {
        match self {
            Provider::Oidc(client) => &client.config,
            Provider::OAuth2(client) => &client.config,
            Provider::GitHub(client) => &client.config,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("no sign-in provider is called `{0}`")]
    UnknownProvider(String),
    #[error(transparent)]
    Redirect(#[from] InvalidRedirect),
    #[error("the provider refused the sign-in: {0}")]
    ProviderRefused(String),
    #[error("the sign-in state is missing")]
    MissingState,
    #[error("the sign-in state does not belong to this browser")]
    StateMismatch,
    #[error("this sign-in expired; sign in again")]
    UnknownState,
    #[error("this sign-in was already used; sign in again")]
    StateUsed,
    #[error("the sign-in was cancelled at the provider")]
    Cancelled,
    #[error("the authorization response lacks `code`")]
    MissingCode,
    #[error("the authorization response names another issuer")]
    IssuerMismatch,
    #[error("the authorization response lacks the `iss` parameter this provider promises")]
    MissingIssuer,
    #[error(transparent)]
    Oidc(#[from] OidcError),
    #[error(transparent)]
    OAuth2(#[from] OAuth2Error),
    #[error("an account with this email exists, but the provider has not verified the email; verify it with the provider or sign in with your password")]
    UnverifiedEmailInUse,
    #[error("an account with this email exists but has not verified it, so this sign-in cannot be linked to it; sign in with the account's password, verify the email from the link we mail, then sign in here again")]
    AccountEmailUnverified,
    #[error("this account is disabled")]
    Disabled,
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness available: {0}")]
    Random(String),
}

/// The query of the provider's redirect back to us.
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub struct Started {
    pub authorization_url: Url,
    /// Also set as a cookie, binding the flow to this browser.
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderSummary {
    pub name: String,
    /// `oidc`, `oauth2` or `github`.
    pub kind: &'static str,
}

pub struct Finished {
    pub user: User,
    pub redirect_to: String,
}

#[derive(Clone)]
pub struct SignIn {
    providers: Arc<HashMap<String, Provider>>,
    values: SignInValues,
    users: Users,
    signin_page: String,
}

impl SignIn {
    pub fn new(
        configs: Vec<ProviderConfig>,
        table: Arc<dyn Table>,
        http: reqwest::Client,
        jwks_cooldown: Duration,
    ) -> Result<Self, OAuthConfigError> {
        let mut providers = HashMap::new();
        for config in configs {
            let name = config.name.clone();
            let provider = match config.kind.clone() {
                ProviderKind::Oidc { issuer } => {
                    Provider::Oidc(OidcClient::new(config, issuer, http.clone(), jwks_cooldown))
                }
                ProviderKind::OAuth2 {
                    authorization_url,
                    token_url,
                    userinfo_url,
                    fields,
                } => Provider::OAuth2(OAuth2Client::new(
                    config,
                    authorization_url,
                    token_url,
                    userinfo_url,
                    fields,
                    http.clone(),
                )),
                ProviderKind::GitHub { web_url, api_url } => Provider::GitHub(
                    GitHubClient::new(config, &web_url, api_url, http.clone()).map_err(|e| {
                        OAuthConfigError::Invalid {
                            provider: name.clone(),
                            variable: "WEB_URL".into(),
                            reason: e.to_string(),
                        }
                    })?,
                ),
            };
            providers.insert(name, provider);
        }
        Ok(Self {
            providers: Arc::new(providers),
            values: SignInValues::new(table.clone()),
            users: Users::new(table),
            signin_page: super::redirect::DEFAULT_PATH.to_owned(),
        })
    }

    /// The app's sign-in page, where failed browser sign-ins land: a relative path only.
    pub fn with_signin_page(mut self, page: &str) -> Result<Self, InvalidRedirect> {
        self.signin_page = post_login_path(Some(page))?;
        Ok(self)
    }

    /// The sign-in page with `signin_error=<code>` added (a stable snake_case code, never
    /// a token or provider text).
    pub fn signin_error_location(&self, code: &str) -> String {
        signin_error_location(&self.signin_page, code)
    }

    /// Providers from `TRIBUTARY_OAUTH_*`, JWKS refetch cooldown from
    /// `TRIBUTARY_OAUTH_JWKS_COOLDOWN_SECS` (default 60).
    pub fn from_env(table: Arc<dyn Table>) -> Result<Self, OAuthConfigError> {
        let configs = super::providers_from_env()?;
        let cooldown = match std::env::var(JWKS_COOLDOWN) {
            Ok(raw) => {
                Duration::from_secs(raw.trim().parse().map_err(|_| OAuthConfigError::Invalid {
                    provider: "*".into(),
                    variable: JWKS_COOLDOWN.into(),
                    reason: format!("`{raw}` is not a whole number of seconds"),
                })?)
            }
            Err(_) => super::jwks::DEFAULT_REFETCH_COOLDOWN,
        };
        let http = crate::http::back_channel_client().map_err(|e| OAuthConfigError::Invalid {
            provider: "*".into(),
            variable: "(HTTP client)".into(),
            reason: e.to_string(),
        })?;
        let sign_in = Self::new(configs, table, http, cooldown)?;
        match std::env::var(SIGNIN_PAGE) {
            Ok(page) if !page.trim().is_empty() => {
                sign_in
                    .with_signin_page(page.trim())
                    .map_err(|error| OAuthConfigError::Invalid {
                        provider: "*".into(),
                        variable: SIGNIN_PAGE.into(),
                        reason: error.to_string(),
                    })
            }
            _ => Ok(sign_in),
        }
    }

    pub fn provider(&self, name: &str) -> Result<&Provider, SignInError> {
        self.providers
            .get(name)
            .ok_or_else(|| SignInError::UnknownProvider(printable(name)))
    }

    pub fn values(&self) -> &SignInValues {
        &self.values
    }

    /// The configured providers' names and kinds, sorted by name (what a sign-in page
    /// shows a button for; nothing secret).
    pub fn provider_summaries(&self) -> Vec<ProviderSummary> {
        let mut summaries: Vec<ProviderSummary> = self
            .providers
            .iter()
            .map(|(name, provider)| ProviderSummary {
                name: name.clone(),
                kind: match provider {
                    Provider::Oidc(_) => "oidc",
                    Provider::OAuth2(_) => "oauth2",
                    Provider::GitHub(_) => "github",
                },
            })
            .collect();
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        summaries
    }

    pub async fn start(
        &self,
        provider_name: &str,
        redirect_to: Option<&str>,
    ) -> Result<Started, SignInError> {
        let provider = self.provider(provider_name)?;
        let redirect_to = post_login_path(redirect_to)?;
        let random = || pkce::random_token().map_err(|e| SignInError::Random(e.to_string()));
        let (state, verifier, nonce) = (random()?, random()?, random()?);
        let config = provider.config();
        let (mut url, issuer) = match provider {
            Provider::Oidc(client) => {
                let discovery = client.discovery().await?;
                (
                    discovery.authorization_endpoint.clone(),
                    Some(client.issuer().to_owned()),
                )
            }
            Provider::OAuth2(client) => (client.authorization_url.clone(), None),
            Provider::GitHub(client) => (client.authorization_url.clone(), None),
        };
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &config.client_id)
                .append_pair("redirect_uri", config.redirect_uri.as_str())
                .append_pair("state", &state)
                .append_pair("code_challenge", &pkce::s256_challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if !config.scopes.is_empty() {
                query.append_pair("scope", &config.scopes.join(" "));
            }
            if issuer.is_some() {
                query.append_pair("nonce", &nonce);
            }
        }
        let login_state = LoginState {
            provider: provider_name.to_owned(),
            pkce_verifier: verifier,
            nonce,
            issuer,
            redirect_to,
            created_at: now_epoch_seconds(),
        };
        self.values.save_state(&state, &login_state).await?;
        Ok(Started {
            authorization_url: url,
            state,
        })
    }

    /// Checks the callback against the stored state and the browser's state cookie,
    /// then signs the user in (creating or linking the account as needed).
    pub async fn finish(
        &self,
        provider_name: &str,
        params: &CallbackParams,
        state_cookie: Option<&str>,
    ) -> Result<Finished, SignInError> {
        let provider = self.provider(provider_name)?;
        let login_state = self.take_state(provider_name, params, state_cookie).await?;
        if params.error.as_deref() == Some("access_denied") {
            return Err(SignInError::Cancelled);
        }
        if let Some(error) = &params.error {
            let description = params.error_description.as_deref().unwrap_or("");
            return Err(SignInError::ProviderRefused(printable(
                format!("{error} {description}").trim_end(),
            )));
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or(SignInError::MissingCode)?;
        let external = match provider {
            Provider::Oidc(client) => {
                check_issuer_parameter(client, params.iss.as_deref()).await?;
                client
                    .finish(code, &login_state.pkce_verifier, &login_state.nonce)
                    .await?
            }
            Provider::OAuth2(client) => client.finish(code, &login_state.pkce_verifier).await?,
            Provider::GitHub(client) => client.finish(code, &login_state.pkce_verifier).await?,
        };
        let user = self.resolve_user(external).await?;
        Ok(Finished {
            user,
            redirect_to: login_state.redirect_to,
        })
    }

    async fn take_state(
        &self,
        provider_name: &str,
        params: &CallbackParams,
        cookie: Option<&str>,
    ) -> Result<LoginState, SignInError> {
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(SignInError::MissingState)?;
        let cookie_matches =
            cookie.is_some_and(|cookie| bool::from(state.as_bytes().ct_eq(cookie.as_bytes())));
        if !cookie_matches {
            // The first callback clears the cookie, so a replay (back button, reload)
            // arrives without it: say so rather than blame the browser.
            return Err(if self.values.was_used(state).await? {
                SignInError::StateUsed
            } else {
                SignInError::StateMismatch
            });
        }
        let Some(login_state) = self.values.take_state(state).await? else {
            return Err(if self.values.was_used(state).await? {
                SignInError::StateUsed
            } else {
                SignInError::UnknownState
            });
        };
        if login_state.provider != provider_name {
            return Err(SignInError::UnknownState);
        }
        Ok(login_state)
    }

    /// By identity first; a verified email links to an existing account whose own email is
    /// verified; anything else that meets an existing account's email is refused rather
    /// than silently linked or duplicated.
    async fn resolve_user(&self, external: ExternalUser) -> Result<User, SignInError> {
        let identity = identity_key(&external.namespace, &external.subject);
        if let Some(user) = self.users.by_identity(&identity).await? {
            return if user.is_active() {
                Ok(user)
            } else {
                Err(SignInError::Disabled)
            };
        }
        let email = external
            .email
            .as_deref()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty());
        if let Some(email) = &email {
            if let Some(existing) = self.users.by_email(email).await? {
                if !external.email_verified {
                    return Err(SignInError::UnverifiedEmailInUse);
                }
                if !existing.is_active() {
                    return Err(SignInError::Disabled);
                }
                // Whoever registered the address without proving it must not inherit
                // the provider's identity (pre-registration takeover): no link, no
                // second account for the same email.
                if !existing.email_verified {
                    tracing::info!(user_id = %existing.id, namespace = %external.namespace, "refused to link a sign-in to an account with an unverified email");
                    return Err(SignInError::AccountEmailUnverified);
                }
                self.users.link_identity(&existing.id, &identity).await?;
                tracing::info!(user_id = %existing.id, namespace = %external.namespace, "linked sign-in identity by verified email");
                return Ok(existing);
            }
        }
        let name = external
            .name
            .clone()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| "New user".into());
        let new_user = NewUser {
            email: email.unwrap_or_default(),
            name: name.chars().take(100).collect(),
            password_hash: None,
        };
        let user = self
            .users
            .create_for_identity(new_user, &identity, external.email_verified)
            .await?;
        tracing::info!(user_id = %user.id, namespace = %external.namespace, "user created from sign-in identity");
        Ok(user)
    }
}

/// RFC 9207: when present, `iss` must be the provider's issuer; when discovery promises
/// it, it must be present.
async fn check_issuer_parameter(client: &OidcClient, iss: Option<&str>) -> Result<(), SignInError> {
    match iss {
        Some(iss) if iss == client.issuer() => Ok(()),
        Some(_) => Err(SignInError::IssuerMismatch),
        None if client
            .discovery()
            .await?
            .authorization_response_iss_parameter_supported =>
        {
            Err(SignInError::MissingIssuer)
        }
        None => Ok(()),
    }
}

/// `page` with `signin_error=<code>` in its query (before any fragment); the code is cut to
/// `[a-z_]` so nothing but a stable code ever lands in the URL.
pub fn signin_error_location(page: &str, code: &str) -> String {
    let (path, fragment) = match page.split_once('#') {
        Some((path, fragment)) => (path, Some(fragment)),
        None => (page, None),
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    let code: String = code
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    let mut location = format!("{path}{separator}signin_error={code}");
    if let Some(fragment) = fragment {
        location.push('#');
        location.push_str(fragment);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signin_error_locations() {
        assert_eq!(
            signin_error_location("/", "signin_cancelled"),
            "/?signin_error=signin_cancelled"
        );
        assert_eq!(
            signin_error_location("/app/login?next=%2F#top", "signin_already_used"),
            "/app/login?next=%2F&signin_error=signin_already_used#top"
        );
        assert_eq!(
            signin_error_location("/login", "x<script>&token=1"),
            "/login?signin_error=xscripttoken"
        );
    }
}
