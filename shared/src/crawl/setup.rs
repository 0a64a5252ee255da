//! Building a [`CrawlEngine`] from the environment, once per cold start (or local process).

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "sqs")]
use super::engine::CrawlEngine;
use super::fetch::{FetchLimits, Fetcher};
use super::ssrf::NetworkPolicy;
use crate::config::ConfigError;
use crate::sinks::SinkEnvironment;
#[cfg(feature = "sqs")]
use crate::store::Table;

pub const CRAWL_QUEUE_URL: &str = "TRIBUTARY_CRAWL_QUEUE_URL";
pub const WEBHOOK_SINK_SECRET: &str = "TRIBUTARY_WEBHOOK_SINK_SECRET";
pub const ALLOW_PRIVATE_NETWORKS: &str = "TRIBUTARY_ALLOW_PRIVATE_NETWORKS";
pub const MAX_PAGE_BYTES: &str = "TRIBUTARY_CRAWL_MAX_PAGE_BYTES";
pub const FETCH_TIMEOUT_SECS: &str = "TRIBUTARY_CRAWL_TIMEOUT_SECS";
/// Minutes-long silence after which the sweeper ends a crawl (see [`super::sweep`]).
pub const STALL_AFTER_SECS: &str = "TRIBUTARY_CRAWL_STALL_AFTER_SECS";
/// The embedded crawl queue and its dead-letter queue, in the data directory's queue file.
pub const LOCAL_QUEUE: &str = "crawl-pages";
pub const LOCAL_DEAD_LETTER_QUEUE: &str = "crawl-pages-dlq";
pub const QUEUE_FILE: &str = "queue.sqlite";
/// Receives before a message moves to the dead-letter queue (template.yaml uses the same).
pub const MAX_RECEIVES: u32 = 5;

/// Shortest webhook-sink HMAC key accepted.
const MIN_WEBHOOK_SECRET_BYTES: usize = 32;

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

fn number(
    name: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u64>() {
        Ok(value) if range.contains(&value) => Ok(value),
        _ => Err(ConfigError::Invalid {
            name,
            reason: format!(
                "`{raw}`: expected a whole number in {}..={}",
                range.start(),
                range.end()
            ),
        }),
    }
}

/// `TRIBUTARY_ALLOW_PRIVATE_NETWORKS` / `TRIBUTARY_ALLOWED_NETWORKS` (strict by default).
pub fn policy_from_env() -> Result<NetworkPolicy, ConfigError> {
    NetworkPolicy::from_env().map_err(|reason| ConfigError::Invalid {
        name: ALLOW_PRIVATE_NETWORKS,
        reason,
    })
}

/// `TRIBUTARY_CRAWL_STALL_AFTER_SECS`: how long a job may go without progress before the
/// sweeper ends it (default 30 minutes; at least 60 s).
pub fn stall_after_from_env() -> Result<Duration, ConfigError> {
    let default = super::sweep::DEFAULT_STALL_AFTER.as_secs();
    Ok(Duration::from_secs(number(
        STALL_AFTER_SECS,
        default,
        60..=30 * 24 * 3600,
    )?))
}

/// The network policy and fetch limits from the environment.
pub fn fetcher_from_env() -> Result<Fetcher, ConfigError> {
    fetcher_for(policy_from_env()?)
}

/// A fetcher with this policy and the fetch limits from the environment.
pub fn fetcher_for(policy: NetworkPolicy) -> Result<Fetcher, ConfigError> {
    let limits = FetchLimits {
        max_bytes: number(MAX_PAGE_BYTES, 10 * 1024 * 1024, 1024..=100 * 1024 * 1024)? as usize,
        timeout: Duration::from_secs(number(FETCH_TIMEOUT_SECS, 20, 1..=120)?),
        ..FetchLimits::default()
    };
    Fetcher::new(Arc::new(policy), limits, crate::http::USER_AGENT).map_err(|error| {
        ConfigError::Invalid {
            name: ALLOW_PRIVATE_NETWORKS,
            reason: format!("cannot build the HTTP client: {error}"),
        }
    })
}

/// Sinks this deployment can build: per-sink credentials opened with the vault
/// (`TRIBUTARY_ENCRYPTION_KEY`, when set); the operator's webhook secret and RAGFlow key only
/// where the operator pinned them; directory sinks only where `directories` (tributary-local).
pub fn sinks_from_env(
    fetcher: &Fetcher,
    directories: bool,
) -> Result<SinkEnvironment, ConfigError> {
    let webhook_secret = match var(WEBHOOK_SINK_SECRET) {
        Some(secret) if secret.len() < MIN_WEBHOOK_SECRET_BYTES => {
            return Err(ConfigError::Invalid {
                name: WEBHOOK_SINK_SECRET,
                reason: format!("must be at least {MIN_WEBHOOK_SECRET_BYTES} bytes"),
            })
        }
        Some(secret) => Some(secret.into_bytes()),
        None => None,
    };
    let ragflow_api_key = var(crate::sinks::ragflow::API_KEY_ENV);
    let pins = pins_from_env(webhook_secret.is_some(), ragflow_api_key.is_some())?;
    let vault = match var(crate::vault::ENCRYPTION_KEY) {
        Some(_) => Some(
            crate::vault::Vault::from_env().map_err(|error| ConfigError::Invalid {
                name: crate::vault::ENCRYPTION_KEY,
                reason: error.to_string(),
            })?,
        ),
        None => None,
    };
    Ok(SinkEnvironment {
        directory_sinks_allowed: directories,
        webhook_secret,
        http: fetcher.client().clone(),
        ragflow_api_key,
        pins,
        vault,
    })
}

/// The operator pins; a pin without the credential it pins is a configuration error (the
/// operator meant something that cannot work).
fn pins_from_env(
    webhook_secret: bool,
    ragflow_key: bool,
) -> Result<crate::sinks::OperatorPins, ConfigError> {
    use crate::sinks::{
        OperatorPins, RAGFLOW_PINNED_BASE_URLS_ENV, RAGFLOW_PINNED_DATASETS_ENV,
        WEBHOOK_PINNED_URLS_ENV,
    };
    let pins = OperatorPins::parse(
        var(WEBHOOK_PINNED_URLS_ENV).as_deref(),
        var(RAGFLOW_PINNED_BASE_URLS_ENV).as_deref(),
        var(RAGFLOW_PINNED_DATASETS_ENV).as_deref(),
    )
    .map_err(|(name, reason)| ConfigError::Invalid { name, reason })?;
    let unusable = |name: &'static str, needs: &str| ConfigError::Invalid {
        name,
        reason: format!("pins the operator's credential but {needs} is not set"),
    };
    if !pins.webhook_urls.is_empty() && !webhook_secret {
        return Err(unusable(WEBHOOK_PINNED_URLS_ENV, WEBHOOK_SINK_SECRET));
    }
    let ragflow_pinned = !pins.ragflow_base_urls.is_empty() || !pins.ragflow_datasets.is_empty();
    if ragflow_pinned && !ragflow_key {
        return Err(unusable(
            RAGFLOW_PINNED_BASE_URLS_ENV,
            crate::sinks::ragflow::API_KEY_ENV,
        ));
    }
    if webhook_secret && pins.webhook_urls.is_empty() {
        tracing::warn!("{WEBHOOK_SINK_SECRET} is set but no URL is pinned ({WEBHOOK_PINNED_URLS_ENV}): webhook sinks need their own secret");
    }
    if ragflow_key && (pins.ragflow_base_urls.is_empty() || pins.ragflow_datasets.is_empty()) {
        tracing::warn!("{} is set but no base URL and dataset are pinned: ragflow sinks need their own api_key", crate::sinks::ragflow::API_KEY_ENV);
    }
    Ok(pins)
}

/// The Lambda configuration: SQS queue from `TRIBUTARY_CRAWL_QUEUE_URL`.
#[cfg(feature = "sqs")]
pub async fn engine_from_env(table: Arc<dyn Table>) -> Result<CrawlEngine, ConfigError> {
    let queue_url = var(CRAWL_QUEUE_URL).ok_or(ConfigError::Missing(CRAWL_QUEUE_URL))?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let queue = crate::queue::SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), queue_url);
    let fetcher = fetcher_from_env()?;
    let sinks = sinks_from_env(&fetcher, false)?;
    Ok(CrawlEngine::new(table, Arc::new(queue), fetcher, sinks))
}

/// The embedded crawl queue (with its dead-letter queue) in `data_dir`.
#[cfg(feature = "embedded")]
pub fn local_queue(data_dir: &std::path::Path) -> Result<crate::queue::EmbeddedQueue, ConfigError> {
    let dead_letter = crate::queue::EmbeddedDeadLetter {
        queue_name: LOCAL_DEAD_LETTER_QUEUE.into(),
        max_receives: MAX_RECEIVES,
    };
    crate::queue::EmbeddedQueue::open(&data_dir.join(QUEUE_FILE), LOCAL_QUEUE, Some(dead_letter))
        .map_err(|error| ConfigError::Invalid {
            name: crate::config::DATA_DIR,
            reason: format!("cannot open the crawl queue: {error}"),
        })
}
