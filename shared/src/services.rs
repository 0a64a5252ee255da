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

    /// The Lambda configuration: store and keys from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let sessions = config::session_keys_from_env()?;
        let table = table_from(StoreConfig::from_env()?).await?;
        Ok(Self::new(table, sessions))
    }
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
