//! The local stand-in for the sync queues, the `sync-<source>` Lambdas and the EventBridge
//! scheduler: workers on one embedded queue for every source, and a scheduler tick.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::crawl::setup::{fetcher_for, policy_from_env, sinks_from_env};
use tributary::queue::{EmbeddedDeadLetter, EmbeddedQueue, Queue};
use tributary::sync::{SyncEngine, SyncMessage, SyncQueues};
use tributary::vault::{Vault, ENCRYPTION_KEY};
use tributary::Services;

use crate::{dev_secret, KeySource, LocalError};

pub const DEV_ENCRYPTION_KEY_FILE: &str = "dev-encryption-key";
pub const SYNC_QUEUE: &str = "sync";
pub const SYNC_DEAD_LETTER_QUEUE: &str = "sync-dlq";
/// As long as a Lambda may run: a local sync gets the same deadline.
const INVOCATION: Duration = Duration::from_secs(14 * 60);
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// The vault key: `TRIBUTARY_ENCRYPTION_KEY`, else a dev key kept in the data directory.
pub fn local_vault(data_dir: &Path) -> Result<(Vault, KeySource), LocalError> {
    let (key, source) = dev_secret(data_dir, ENCRYPTION_KEY, DEV_ENCRYPTION_KEY_FILE)?;
    let key = String::from_utf8_lossy(&key).into_owned();
    let vault = Vault::from_hex(&key).map_err(|error| LocalError::Crawl(error.to_string()))?;
    Ok((vault, source))
}

/// The sync engine over the data directory: one embedded queue for every source.
pub fn local_sync_engine(
    services: &Services,
    data_dir: &Path,
    allow_private_networks: bool,
) -> Result<(SyncEngine, Arc<dyn Queue>), LocalError> {
    let dead_letter = EmbeddedDeadLetter {
        queue_name: SYNC_DEAD_LETTER_QUEUE.into(),
        max_receives: 5,
    };
    let queue: Arc<dyn Queue> = Arc::new(
        EmbeddedQueue::open(
            &data_dir.join(tributary::crawl::setup::QUEUE_FILE),
            SYNC_QUEUE,
            Some(dead_letter),
        )
        .map_err(|error| LocalError::Crawl(error.to_string()))?,
    );
    let (vault, _) = local_vault(data_dir)?;
    let policy = if allow_private_networks {
        tributary::crawl::ssrf::NetworkPolicy::allow_private()
    } else {
        policy_from_env()?
    };
    let fetcher = fetcher_for(policy.clone())?;
    let sinks = sinks_from_env(&fetcher, true)?;
    // Source base URLs are user-supplied: the SSRF guard applies to them as to crawls.
    let http = fetcher.client().clone();
    let engine = SyncEngine::new(
        services.table.clone(),
        SyncQueues::shared(queue.clone()),
        vault,
        sinks,
        http,
    )
    .with_policy(Arc::new(policy));
    Ok((engine, queue))
}

/// Handles one message like a `sync-<source>` invocation; `false` when the queue was idle.
pub async fn work_on(engine: &SyncEngine, queue: &dyn Queue) -> Result<bool, String> {
    let messages = queue
        .receive(1, INVOCATION + Duration::from_secs(60), IDLE_WAIT)
        .await
        .map_err(|error| error.to_string())?;
    let Some(message) = messages.into_iter().next() else {
        return Ok(false);
    };
    let parsed: Result<SyncMessage, _> = serde_json::from_str(&message.body);
    let retry = match parsed {
        Err(error) => {
            tracing::warn!(%error, "unreadable sync message");
            true
        }
        Ok(sync) => match engine.run(&sync, Instant::now() + INVOCATION).await {
            Ok(outcome) => {
                tracing::info!(connector_id = %sync.connector_id, ?outcome, "sync message handled");
                false
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "sync failed; will retry");
                true
            }
            Err(error) => {
                tracing::error!(%error, "sync failed");
                false
            }
        },
    };
    let result = if retry {
        let backoff = Duration::from_secs(u64::from(message.receive_count.min(10)) * 5);
        queue
            .change_visibility(&message.receipt_handle, backoff)
            .await
    } else {
        queue.delete(&message.receipt_handle).await
    };
    result.map(|()| true).map_err(|error| error.to_string())
}

pub fn spawn_sync_workers(
    engine: Arc<SyncEngine>,
    queue: Arc<dyn Queue>,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    crate::spawn_pollers(count, "sync", move || {
        let engine = engine.clone();
        let queue = queue.clone();
        async move { work_on(&engine, queue.as_ref()).await }
    })
}

/// The EventBridge rule's stand-in: a scheduler tick every `every`.
pub fn spawn_scheduler(engine: Arc<SyncEngine>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            if let Err(error) = scheduler::tick(&engine).await {
                tracing::error!(%error, "scheduler tick failed");
            }
        }
    })
}
