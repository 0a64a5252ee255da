//! How a source's requests are authorised: inline credentials, or a workspace provider
//! connection whose access token is refreshed on demand (DESIGN §3 "Provider connection").

use std::fmt;
use std::sync::Arc;

use super::super::ConnectorError;
use crate::http::GuardedRequest;

/// An OAuth access token (never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

/// A connection's current access token, refreshed when it nears expiry or is refused.
#[async_trait::async_trait]
pub trait AccessTokenSource: Send + Sync {
    /// A token that is valid now (refreshed first when it expires within the margin).
    async fn access_token(&self) -> Result<AccessToken, ConnectorError>;

    /// The source answered 401 to `rejected`: a fresh token (refreshed unless another
    /// caller already replaced `rejected`).
    async fn refresh_rejected(&self, rejected: &AccessToken)
        -> Result<AccessToken, ConnectorError>;
}

/// Finds the token source of a workspace's connection to a provider (the sync engine asks
/// it for connectors whose credentials are `{"type": "connection"}`).
#[async_trait::async_trait]
pub trait ConnectionResolver: Send + Sync {
    async fn token_source(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<Arc<dyn AccessTokenSource>, ConnectorError>;
}

/// The authorisation a connector applies to every request it makes.
#[derive(Clone)]
pub enum SourceAuth {
    /// HTTP Basic (e.g. Atlassian account email + API token).
    Basic { user: String, password: String },
    /// A fixed bearer token (personal access token, bot token).
    Bearer(AccessToken),
    /// A workspace provider connection.
    Connection(Arc<dyn AccessTokenSource>),
    /// A connection no resolver was given for: every request fails closed.
    Unresolved { provider: String },
    /// A service-account key: the source exchanges it for tokens per user it acts as
    /// (`connectors::google::GoogleAuth`); used as is, every request fails closed.
    ServiceAccount(Arc<ServiceAccountAuth>),
    /// An application's client credentials: the source exchanges them for app-only tokens
    /// (`connectors::microsoft::GraphAuth`); used as is, every request fails closed.
    ClientCredentials(Arc<ClientCredentialsAuth>),
}

/// Client credentials as a connector holds them (checked: exactly one way to authenticate).
#[derive(Clone, Debug)]
pub struct ClientCredentialsAuth {
    pub client_id: String,
    pub authentication: crate::connectors::client_credentials::ClientAuthentication,
}

/// Service-account credentials as a connector holds them.
#[derive(Clone, Debug)]
pub struct ServiceAccountAuth {
    pub key: crate::connectors::service_account::ServiceAccountKey,
    /// The user to act as when the configuration names none.
    pub subject: Option<String>,
}

impl fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceAuth::Basic { user, .. } => write!(f, "Basic({user}, ..)"),
            SourceAuth::Bearer(_) => f.write_str("Bearer(..)"),
            SourceAuth::Connection(_) => f.write_str("Connection(..)"),
            SourceAuth::Unresolved { provider } => write!(f, "Unresolved({provider})"),
            SourceAuth::ServiceAccount(account) => {
                write!(f, "ServiceAccount({}, ..)", account.key.client_email)
            }
            SourceAuth::ClientCredentials(app) => {
                write!(f, "ClientCredentials({}, ..)", app.client_id)
            }
        }
    }
}

impl SourceAuth {
    /// The request with its Authorization header; returns the token it used so a 401 can
    /// ask for exactly that token to be replaced.
    pub async fn authorize(
        &self,
        request: GuardedRequest,
    ) -> Result<(GuardedRequest, Option<AccessToken>), ConnectorError> {
        Ok(match self {
            SourceAuth::Basic { user, password } => {
                (request.basic_auth(user, Some(password)), None)
            }
            SourceAuth::Bearer(token) => (request.bearer_auth(token.expose()), None),
            SourceAuth::Connection(source) => {
                let token = source.access_token().await?;
                (request.bearer_auth(token.expose()), Some(token))
            }
            SourceAuth::Unresolved { provider } => {
                return Err(ConnectorError::Unauthorized(format!(
                    "the connection to {provider} is not available here"
                )))
            }
            SourceAuth::ServiceAccount(_) => {
                return Err(ConnectorError::Unauthorized(
                    "service-account credentials are not usable by this source".into(),
                ))
            }
            SourceAuth::ClientCredentials(_) => {
                return Err(ConnectorError::Unauthorized(
                    "client credentials are not usable by this source".into(),
                ))
            }
        })
    }

    /// After a 401 to a request authorised with `used`: whether a retry can succeed (a
    /// connection whose token was refreshed), authorising `request` with the new token.
    pub async fn reauthorize_after_401(
        &self,
        request: GuardedRequest,
        used: Option<&AccessToken>,
    ) -> Result<Option<GuardedRequest>, ConnectorError> {
        match (self, used) {
            (SourceAuth::Connection(source), Some(used)) => {
                let token = source.refresh_rejected(used).await?;
                Ok(Some(request.bearer_auth(token.expose())))
            }
            _ => Ok(None),
        }
    }
}
