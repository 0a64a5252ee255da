//! Data sources and the document model they produce.
//!
//! A source is one folder (`jira/`, `confluence/`: `config.rs`, `client.rs`,
//! `checkpoint.rs`, `convert.rs`, the [`Connector`] impl in `mod.rs`) implementing
//! [`Connector`]: it validates its configuration, tests its credentials, pulls documents in
//! checkpointed batches and lists every current source id (the slim listing that deletions
//! are computed from). Formats more than one source meets are converted in [`convert`]. The
//! sync engine (`shared::sync`) drives any connector the same way. Each source describes
//! itself to the [`registry`] (`source()` in its `mod.rs`), listed once in the `sources!`
//! invocation below, which also declares its module.

pub mod client_credentials;
#[cfg(feature = "sync")]
pub mod convert;
pub mod document;
#[cfg(feature = "sync")]
pub mod google;
#[cfg(feature = "sync")]
pub mod kit;
#[cfg(feature = "sync")]
pub mod microsoft;
#[macro_use]
pub mod registry;
pub mod service_account;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use document::Document;
#[cfg(feature = "sync")]
pub use registry::{build, validate_config, Source};

// Every source Tributary can sync, one line each: `Variant => module,` (its folder
// `connectors/<module>/`, whose `source()` describes it). See `registry`.
sources! {
    Jira => jira,
    Confluence => confluence,
    GoogleDrive => google_drive,
    Gmail => gmail,
    Sharepoint => sharepoint,
    Teams => teams,
    // new-source: registry line
}

/// Whether a URL points at this machine: the only place a source may be plain http (tests
/// and local fakes).
#[cfg(feature = "sync")]
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Documents pulled per batch unless a source says otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The configuration is unusable (caught at create time).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The source refused the credentials (401/403).
    #[error("the source refused the credentials: {0}")]
    Unauthorized(String),
    /// Network trouble, 429 or 5xx that outlasted the retry budget: try again later.
    #[error("the source is unavailable: {0}")]
    Unavailable(String),
    /// The source answered something we cannot read.
    #[error("unexpected answer from the source: {0}")]
    Protocol(String),
    /// The checkpoint is not one this connector wrote.
    #[error("invalid checkpoint: {0}")]
    Checkpoint(String),
    /// The provider's rate limit asks for a longer wait than one call may spend (the
    /// connector kit's governor budget): try again after `retry_after`.
    #[error("the source is rate limited: {message} (retry after {}s)", retry_after.as_secs())]
    RateLimited {
        message: String,
        retry_after: std::time::Duration,
    },
}

impl ConnectorError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectorError::Unavailable(_) | ConnectorError::RateLimited { .. }
        )
    }

    /// How long the source asked us to stay away, when it said so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ConnectorError::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// One document the source listed but could not turn into a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentFailure {
    pub source_id: String,
    pub error: String,
}

/// A file the source listed but did not deliver (e.g. larger than its `max_file_bytes`):
/// counted in the run, not a failure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedFile {
    pub source_id: String,
    /// Bytes (declared, or read before the download was stopped: a lower bound).
    pub size: u64,
    pub reason: String,
}

/// One step of a pull.
#[derive(Debug)]
pub struct Batch {
    pub documents: Vec<Document>,
    pub failures: Vec<DocumentFailure>,
    /// Files left out on purpose (see [`SkippedFile`]).
    pub skipped: Vec<SkippedFile>,
    /// Source ids the source's change feed reports gone (deleted, trashed, moved out of
    /// scope): removed from the sink with this batch. The slim listing still backs pruning.
    pub deleted: Vec<String>,
    /// Where the next pull starts; opaque to the engine, saved after the batch is delivered.
    pub checkpoint: Value,
    /// No more documents after this batch (for this sync).
    pub done: bool,
}

/// A page of the slim listing.
#[derive(Debug, Default)]
pub struct IdPage {
    pub source_ids: Vec<String>,
    /// Cursor of the next page; `None` when the listing is complete.
    pub next: Option<String>,
}

#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The source kind, e.g. `"jira"`; also `Document::source`.
    fn source(&self) -> &'static str;

    /// Checks the credentials and the configuration against the source.
    async fn test_connection(&self) -> Result<(), ConnectorError>;

    /// The next batch after `checkpoint` (`None`: from the beginning).
    async fn pull(&self, checkpoint: Option<&Value>) -> Result<Batch, ConnectorError>;

    /// One page of the ids of every document that currently exists in the source (within
    /// the configured scope), starting at `cursor`.
    async fn list_ids(&self, cursor: Option<&str>) -> Result<IdPage, ConnectorError>;
}

/// How a connector authenticates (stored encrypted, never returned by the API).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// Atlassian Cloud: account email + API token (HTTP Basic).
    Basic { email: String, api_token: String },
    /// A bearer token (OAuth 2.0 access token or personal access token).
    Bearer { token: String },
    /// The workspace's connection to an OAuth provider (`/integrations/{provider}`); holds
    /// no secret itself, the sync engine resolves it to the connection's tokens.
    Connection { provider: String },
    /// A service account's key (Google's JSON key file) for domain-wide delegation;
    /// `subject` is the user it acts as unless the source's configuration names users.
    ServiceAccount {
        key: service_account::ServiceAccountKey,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    /// An application's own credentials (OAuth 2.0 client credentials grant, app-only
    /// access such as a Microsoft Entra app): a client secret, or a certificate whose key
    /// signs a client assertion. The tenant is the source's configuration.
    ClientCredentials {
        client_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_secret: Option<client_credentials::ClientSecret>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<client_credentials::ClientCertificate>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { email, .. } => write!(f, "Basic({email}, ..)"),
            Credentials::Bearer { .. } => f.write_str("Bearer(..)"),
            Credentials::Connection { provider } => write!(f, "Connection({provider})"),
            Credentials::ServiceAccount { key, subject } => {
                write!(f, "ServiceAccount({}, {subject:?}, ..)", key.client_email)
            }
            Credentials::ClientCredentials { client_id, .. } => {
                write!(f, "ClientCredentials({client_id}, ..)")
            }
        }
    }
}

impl Credentials {
    /// The authorisation a connector applies: inline credentials as they are, a connection
    /// through `connections` (none configured: the connector fails closed on first use).
    #[cfg(feature = "sync")]
    pub async fn resolve(
        self,
        workspace_id: &str,
        connections: Option<&dyn kit::ConnectionResolver>,
    ) -> Result<kit::SourceAuth, ConnectorError> {
        match (self, connections) {
            (Credentials::Connection { provider }, Some(connections)) => {
                Ok(kit::SourceAuth::Connection(
                    connections.token_source(workspace_id, &provider).await?,
                ))
            }
            (credentials, _) => Ok(credentials.into()),
        }
    }
}

#[cfg(feature = "sync")]
impl From<Credentials> for kit::SourceAuth {
    fn from(credentials: Credentials) -> Self {
        match credentials {
            Credentials::Basic { email, api_token } => kit::SourceAuth::Basic {
                user: email,
                password: api_token,
            },
            Credentials::Bearer { token } => kit::SourceAuth::Bearer(kit::AccessToken::new(token)),
            Credentials::Connection { provider } => kit::SourceAuth::Unresolved { provider },
            Credentials::ServiceAccount { key, subject } => {
                kit::SourceAuth::ServiceAccount(std::sync::Arc::new(kit::ServiceAccountAuth {
                    key,
                    subject,
                }))
            }
            Credentials::ClientCredentials {
                client_id,
                client_secret,
                certificate,
            } => match client_credentials::check(
                &client_id,
                client_secret.as_ref(),
                certificate.as_ref(),
            ) {
                Ok(authentication) => kit::SourceAuth::ClientCredentials(std::sync::Arc::new(
                    kit::ClientCredentialsAuth {
                        client_id,
                        authentication,
                    },
                )),
                Err(_) => kit::SourceAuth::Unresolved {
                    provider: "client credentials".into(),
                },
            },
        }
    }
}

/// What a source's build function gets: everything a connector needs, once per sync.
#[cfg(feature = "sync")]
pub struct BuildContext {
    pub connector_id: String,
    pub workspace_id: String,
    /// The stored (validated) configuration.
    pub config: Value,
    pub auth: kit::SourceAuth,
    pub http: crate::http::GuardedClient,
    pub retry: crate::http::RetryPolicy,
    /// Where provider APIs live (deployment configuration; see [`kit::ApiBases`]).
    pub api_bases: kit::ApiBases,
}

#[cfg(feature = "sync")]
impl BuildContext {
    /// The base URL of the API `name` (`google_drive`, `gmail`, ...): the deployment's
    /// `TRIBUTARY_API_URL_<NAME>`, else `default`.
    pub fn api_base(&self, name: &str, default: &str) -> Result<url::Url, ConnectorError> {
        self.api_bases.base(name, default)
    }
}
