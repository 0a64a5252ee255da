//! Configuration from environment variables, validated once at cold start. Every variable
//! is listed in README's configuration table.

use std::path::PathBuf;

use crate::auth::session::{SessionKeys, SigningKeyError, DEFAULT_TTL_SECS};

pub const JWT_SECRET: &str = "TRIBUTARY_JWT_SECRET";
pub const SESSION_TTL_SECS: &str = "TRIBUTARY_SESSION_TTL_SECS";
pub const STORE: &str = "TRIBUTARY_STORE";
pub const TABLE_NAME: &str = "TRIBUTARY_TABLE_NAME";
pub const DATA_DIR: &str = "TRIBUTARY_DATA_DIR";

const MIN_SESSION_TTL_SECS: u64 = 60;
const MAX_SESSION_TTL_SECS: u64 = 7 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("{JWT_SECRET}: {0}")]
    SigningKey(#[from] SigningKeyError),
    #[error("cannot open the store: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn required(name: &'static str) -> Result<String, ConfigError> {
    var(name).ok_or(ConfigError::Missing(name))
}

/// The session TTL: default one hour, between one minute and one week.
pub fn session_ttl_from_env() -> Result<u64, ConfigError> {
    let Some(raw) = var(SESSION_TTL_SECS) else {
        return Ok(DEFAULT_TTL_SECS);
    };
    let ttl: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
        name: SESSION_TTL_SECS,
        reason: format!("`{raw}` is not a whole number of seconds"),
    })?;
    if !(MIN_SESSION_TTL_SECS..=MAX_SESSION_TTL_SECS).contains(&ttl) {
        return Err(ConfigError::Invalid {
            name: SESSION_TTL_SECS,
            reason: format!("must be between {MIN_SESSION_TTL_SECS} and {MAX_SESSION_TTL_SECS}"),
        });
    }
    Ok(ttl)
}

/// Session keys from `TRIBUTARY_JWT_SECRET` (refused when missing, short or a placeholder).
pub fn session_keys_from_env() -> Result<SessionKeys, ConfigError> {
    let secret = var(JWT_SECRET).ok_or(SigningKeyError::Missing)?;
    Ok(SessionKeys::new(
        secret.as_bytes(),
        session_ttl_from_env()?,
    )?)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// DynamoDB; the endpoint follows the SDK's own settings (`AWS_ENDPOINT_URL_DYNAMODB`).
    DynamoDb { table_name: String },
    /// The SQLite file `<data dir>/tributary.sqlite`.
    Embedded { data_dir: PathBuf },
}

impl StoreConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        match var(STORE).as_deref().unwrap_or("dynamodb") {
            "dynamodb" => Ok(StoreConfig::DynamoDb {
                table_name: required(TABLE_NAME)?,
            }),
            "embedded" => Ok(StoreConfig::Embedded {
                data_dir: var(DATA_DIR).unwrap_or_else(|| ".tributary".into()).into(),
            }),
            other => Err(ConfigError::Invalid {
                name: STORE,
                reason: format!("`{other}`: expected `dynamodb` or `embedded`"),
            }),
        }
    }
}
