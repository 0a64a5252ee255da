//! What every Microsoft Graph source shares (SharePoint/OneDrive, Teams): the
//! authorisation (a workspace `microsoft` connection, delegated; or an app's client
//! credentials, app-only, in the configured tenant), the API client with Graph's throttling
//! shape, and Graph's JSON error body.

mod app_token;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::kit::token_grant::CachedGrant;
use super::kit::{ApiClient, Governor, SourceAuth, ThrottleShape};
use super::{BuildContext, ConnectorError};
use crate::http::{GuardedClient, RetryPolicy};
pub use app_token::{AppGrant, CLIENT_ASSERTION_TYPE};

/// `TRIBUTARY_API_URL_GRAPH` overrides it.
pub const GRAPH_API: &str = "graph";
pub const GRAPH_DEFAULT_BASE: &str = "https://graph.microsoft.com/v1.0";
/// `TRIBUTARY_API_URL_MICROSOFT_LOGIN` overrides it (the app-only token endpoint's host).
pub const LOGIN_API: &str = "microsoft_login";
pub const LOGIN_DEFAULT_BASE: &str = "https://login.microsoftonline.com";
/// App-only tokens carry every application permission the tenant's admin granted.
pub const GRAPH_APP_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A Microsoft Entra tenant: its id (a GUID) or a verified domain (`contoso.onmicrosoft.com`).
/// It becomes a path segment of the token URL, hence the strict alphabet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
#[schemars(
    with = "String",
    description = "Tenant id (GUID) or domain; needed with client credentials"
)]
pub struct TenantId(String);

impl TryFrom<String> for TenantId {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let valid = !value.is_empty()
            && value.len() <= 253
            && !value.starts_with(['.', '-'])
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !valid {
            return Err(format!(
                "tenant_id {value:?} is not a tenant id (GUID) or domain"
            ));
        }
        Ok(Self(value))
    }
}

impl From<TenantId> for String {
    fn from(tenant: TenantId) -> Self {
        tenant.0
    }
}

impl TenantId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a Graph source's requests are authorised.
#[derive(Clone, Debug)]
pub struct GraphAuth {
    /// Applied to every Graph request (client credentials become a cached app token).
    pub auth: SourceAuth,
    /// App-only: no signed-in user (`/me` does not exist; whole-tenant reads need
    /// application permissions).
    pub app_only: bool,
}

impl GraphAuth {
    /// The authorisation of a Graph source built from `context` (see [`GraphAuth::new`];
    /// the login host is the deployment's `TRIBUTARY_API_URL_MICROSOFT_LOGIN`).
    pub fn from_context(
        context: &BuildContext,
        tenant: Option<&TenantId>,
    ) -> Result<Self, ConnectorError> {
        let login = context.api_base(LOGIN_API, LOGIN_DEFAULT_BASE)?;
        Self::new(context.auth.clone(), tenant, &login, context.http.clone())
    }

    /// A connection or bearer token as is; client credentials exchanged for app-only tokens
    /// at `{login}/{tenant}/oauth2/v2.0/token` (`tenant` is required then), cached.
    pub fn new(
        auth: SourceAuth,
        tenant: Option<&TenantId>,
        login: &Url,
        http: GuardedClient,
    ) -> Result<Self, ConnectorError> {
        let SourceAuth::ClientCredentials(app) = &auth else {
            return Ok(Self {
                auth,
                app_only: false,
            });
        };
        let tenant = tenant.ok_or_else(|| {
            ConnectorError::Config("client credentials need the config's tenant_id".into())
        })?;
        let grant = AppGrant {
            app: Arc::clone(app),
            token_url: token_url(login, tenant),
            scope: GRAPH_APP_SCOPE.into(),
            http,
        };
        Ok(Self {
            auth: SourceAuth::Connection(Arc::new(CachedGrant::new(grant))),
            app_only: true,
        })
    }
}

/// `{login}/{tenant}/oauth2/v2.0/token` (the login base may carry a path, as a fake's does).
pub fn token_url(login: &Url, tenant: &TenantId) -> String {
    format!(
        "{}/{}/oauth2/v2.0/token",
        login.as_str().trim_end_matches('/'),
        tenant.as_str()
    )
}

/// The Graph base URL of a source built from `context`.
pub fn graph_base(context: &BuildContext) -> Result<Url, ConnectorError> {
    context.api_base(GRAPH_API, GRAPH_DEFAULT_BASE)
}

/// A Graph API client: Graph's throttling shape (429 and 503 with `Retry-After`), a
/// governor shared by every sync of this connector (Graph throttles per app and tenant),
/// Graph's error messages.
pub fn api_client(
    title: &'static str,
    connector_id: &str,
    base: Url,
    auth: SourceAuth,
    http: GuardedClient,
    retry: RetryPolicy,
) -> ApiClient {
    let governor = Governor::shared_with_budget(
        "microsoft",
        connector_id,
        ThrottleShape::Graph,
        retry.budget,
    );
    ApiClient::new(title, http, base, auth)
        .with_retry(retry)
        .with_governor(governor)
        .with_error_messages(error_message)
}

/// `error.code` of a Graph error body (`itemNotFound`, `resyncRequired`, `Forbidden`, ...).
pub fn error_code(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value
        .pointer("/error/code")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `error.message (error.code)` of a Graph error body; else its start.
pub fn error_message(body: &[u8]) -> String {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let message = value
        .as_ref()
        .and_then(|v| v.pointer("/error/message"))
        .and_then(Value::as_str);
    match (message, error_code(body)) {
        (Some(message), Some(code)) => format!("{message} ({code})"),
        (Some(message), None) => message.to_owned(),
        (None, Some(code)) => code,
        _ => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}
