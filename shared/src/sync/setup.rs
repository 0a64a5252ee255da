//! Building a [`SyncEngine`] from the environment, once per cold start.

use std::sync::Arc;

use super::{SyncEngine, SyncQueues};
use crate::config::ConfigError;
use crate::store::connectors::SourceKind;
use crate::store::Table;
use crate::vault::{Vault, ENCRYPTION_KEY};

/// `TRIBUTARY_SYNC_QUEUE_URL_<SOURCE>`: each source's SQS queue.
pub fn queue_variable(source: SourceKind) -> String {
    format!(
        "TRIBUTARY_SYNC_QUEUE_URL_{}",
        source.as_str().to_ascii_uppercase()
    )
}

/// `TRIBUTARY_SYNC_LEASE_SECS`: a sync lease's time to live (default 90, at least 3); the
/// heartbeat renews it every third, so a crashed holder blocks its connector about this long.
pub const LEASE_SECS_VARIABLE: &str = "TRIBUTARY_SYNC_LEASE_SECS";

pub fn lease_ttl_from_env() -> Result<std::time::Duration, ConfigError> {
    match std::env::var(LEASE_SECS_VARIABLE) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|secs| (3..=3600).contains(secs))
            .map(std::time::Duration::from_secs)
            .ok_or(ConfigError::Invalid {
                name: LEASE_SECS_VARIABLE,
                reason: "expected whole seconds between 3 and 3600".into(),
            }),
        _ => Ok(super::DEFAULT_LEASE_TTL),
    }
}

/// `TRIBUTARY_API_URL_<NAME>`: provider API base URLs (fakes, sovereign clouds).
pub fn api_bases_from_env() -> Result<crate::connectors::kit::ApiBases, ConfigError> {
    crate::connectors::kit::ApiBases::from_env().map_err(|error| ConfigError::Invalid {
        name: crate::connectors::kit::apis::API_URL_PREFIX,
        reason: error.to_string(),
    })
}

pub fn vault_from_env() -> Result<Vault, ConfigError> {
    Vault::from_env().map_err(|error| ConfigError::Invalid {
        name: ENCRYPTION_KEY,
        reason: error.to_string(),
    })
}

/// The Lambda configuration: SQS queues for the sources that have one configured.
#[cfg(feature = "sqs")]
pub async fn engine_from_env(table: Arc<dyn Table>) -> Result<SyncEngine, ConfigError> {
    engine_with(table, sqs_queues_from_env().await)
}

/// The scheduler's engine: it only enqueues and never opens sealed credentials, so it never
/// reads `TRIBUTARY_ENCRYPTION_KEY`; its vault key is random per cold start (fails closed).
#[cfg(feature = "sqs")]
pub async fn enqueue_only_engine_from_env(
    table: Arc<dyn Table>,
) -> Result<SyncEngine, ConfigError> {
    engine_with_vault(table, sqs_queues_from_env().await, ephemeral_vault()?)
}

/// A vault whose key exists only in this process.
pub fn ephemeral_vault() -> Result<Vault, ConfigError> {
    let mut key = [0u8; 32];
    let invalid = |reason: String| ConfigError::Invalid {
        name: ENCRYPTION_KEY,
        reason,
    };
    getrandom::fill(&mut key).map_err(|error| invalid(error.to_string()))?;
    Vault::from_hex(&hex::encode(key)).map_err(|error| invalid(error.to_string()))
}

#[cfg(feature = "sqs")]
async fn sqs_queues_from_env() -> SyncQueues {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_sqs::Client::new(&sdk);
    let mut queues = SyncQueues::new();
    for source in SourceKind::ALL {
        if let Ok(url) = std::env::var(queue_variable(source)) {
            if !url.trim().is_empty() {
                queues = queues.with(
                    source,
                    Arc::new(crate::queue::SqsQueue::new(client.clone(), url)),
                );
            }
        }
    }
    queues
}

/// An engine over these queues, with the vault, sinks and HTTP client from the environment.
pub fn engine_with(table: Arc<dyn Table>, queues: SyncQueues) -> Result<SyncEngine, ConfigError> {
    engine_with_vault(table, queues, vault_from_env()?)
}

/// [`engine_with`] with this vault.
pub fn engine_with_vault(
    table: Arc<dyn Table>,
    queues: SyncQueues,
    vault: Vault,
) -> Result<SyncEngine, ConfigError> {
    let fetcher = crate::crawl::setup::fetcher_from_env()?;
    let sinks = crate::crawl::setup::sinks_from_env(&fetcher, false)?;
    // Source base URLs are user-supplied: the SSRF guard applies to them as to crawls.
    let http = fetcher.client().clone();
    let policy = Arc::new(fetcher.policy().clone());
    let connections = crate::integrations::setup::connections_from_env(
        Arc::clone(&table),
        vault.clone(),
        crate::integrations::setup::token_http_client()?,
    )?;
    let engine = SyncEngine::new(table, queues, vault, sinks, http)
        .with_policy(policy)
        .with_lease_ttl(lease_ttl_from_env()?)
        .with_api_bases(api_bases_from_env()?);
    Ok(match connections {
        Some(connections) => engine.with_connections(Arc::new(connections)),
        None => engine,
    })
}
