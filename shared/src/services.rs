//! Everything a function needs, built once per cold start (or once per local process) and
//! shared by reference across invocations.

#[cfg(feature = "embedded")]
use std::path::Path;
use std::sync::Arc;

use crate::auth::{SessionKeys, TokenVerifier};
use crate::config::{self, ConfigError, StoreConfig};
use crate::store::{ApiTokens, Table, Users};

pub const EMBEDDED_STORE_FILE: &str = "tributary.sqlite";

#[derive(Clone)]
pub struct Services {
    pub table: Arc<dyn Table>,
    pub users: Users,
    pub api_tokens: ApiTokens,
    pub sessions: Arc<SessionKeys>,
    pub verifier: TokenVerifier,
    /// Outgoing mail (verification links); only `auth` sends any. Set with [`Services::with_mail`].
    pub mail: crate::mail::Mail,
}

impl Services {
    pub fn new(table: Arc<dyn Table>, sessions: SessionKeys) -> Self {
        let sessions = Arc::new(sessions);
        let users = Users::new(table.clone());
        let api_tokens = ApiTokens::new(table.clone());
        let verifier = TokenVerifier::new(sessions.clone(), users.clone(), api_tokens.clone());
        Self {
            table,
            users,
            api_tokens,
            sessions,
            verifier,
            mail: crate::mail::Mail::default(),
        }
    }

    pub fn with_mail(mut self, mail: crate::mail::Mail) -> Self {
        self.mail = mail;
        self
    }

    /// The Lambda configuration of the functions that issue or check sessions (auth,
    /// token-check, oauth-callback): store and `TRIBUTARY_JWT_SECRET` from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sessions = config::session_keys_from_env()?;
        let table = table_from(StoreConfig::from_env()?).await?;
        Ok(Self::new(table, sessions))
    }

    /// The configuration of every other function: the store only; `TRIBUTARY_JWT_SECRET` is
    /// never read. Functions behind the API Gateway authorizer take the caller from its
    /// context, so they neither issue nor check sessions; the session keys here are random
    /// per cold start, so a session minted or checked with them by mistake fails closed.
    pub async fn store_from_env() -> Result<Self, ConfigError> {
        let table = store_table_from_env().await?;
        Ok(Self::new(table, ephemeral_session_keys()?))
    }
}

/// Just the table from the environment (`TRIBUTARY_STORE`, `TRIBUTARY_TABLE_NAME`, ...).
pub async fn store_table_from_env() -> Result<Arc<dyn Table>, ConfigError> {
    table_from(StoreConfig::from_env()?).await
}

/// A random signing key that exists only in this process.
fn ephemeral_session_keys() -> Result<SessionKeys, ConfigError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|error| ConfigError::Invalid {
        name: config::JWT_SECRET,
        reason: format!("no randomness for an ephemeral key: {error}"),
    })?;
    Ok(SessionKeys::new(
        hex::encode(random).as_bytes(),
        crate::auth::session::DEFAULT_TTL_SECS,
    )?)
}

async fn table_from(store: StoreConfig) -> Result<Arc<dyn Table>, ConfigError> {
    match store {
        #[cfg(feature = "dynamodb")]
        StoreConfig::DynamoDb { table_name } => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            Ok(Arc::new(crate::store::DynamoTable::new(client, table_name)))
        }
        #[cfg(feature = "embedded")]
        StoreConfig::Embedded { data_dir } => Ok(Arc::new(open_embedded(&data_dir)?)),
        #[allow(unreachable_patterns)]
        other => Err(ConfigError::Invalid {
            name: config::STORE,
            reason: format!("this binary was built without the {other:?} backend"),
        }),
    }
}

#[cfg(feature = "embedded")]
pub fn open_embedded(data_dir: &Path) -> Result<crate::store::EmbeddedTable, ConfigError> {
    std::fs::create_dir_all(data_dir).map_err(|error| ConfigError::Invalid {
        name: config::DATA_DIR,
        reason: format!("cannot create {}: {error}", data_dir.display()),
    })?;
    Ok(crate::store::EmbeddedTable::open(
        &data_dir.join(EMBEDDED_STORE_FILE),
    )?)
}
