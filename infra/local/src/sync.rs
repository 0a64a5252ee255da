//! The local stand-in for the sync queues, the `sync-<source>` Lambdas and the EventBridge
//! scheduler: workers on one embedded queue for every source, and a scheduler tick.
//!
//! Timings: a received message stays hidden for two lease TTLs and the worker keeps
//! extending that while it works, so after a crash (or `serve` stopped mid-sync) the message
//! reappears shortly after the dead holder's lease has expired and the sync resumes by
//! itself from the saved checkpoint.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::crawl::setup::{fetcher_for, policy_from_env, sinks_from_env};
use tributary::queue::ReceivedMessage;
use tributary::queue::{EmbeddedDeadLetter, EmbeddedQueue, Queue};
use tributary::sync::setup::lease_ttl_from_env;
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
    // Connectors whose credentials are a provider connection refresh through it.
    let connections = tributary::integrations::setup::connections_from_env(
        services.table.clone(),
        vault.clone(),
        tributary::integrations::setup::token_http_client()?,
    )?;
    let engine = SyncEngine::new(
        services.table.clone(),
        SyncQueues::shared(queue.clone()),
        vault,
        sinks,
        http,
    )
    .with_policy(Arc::new(policy))
    .with_lease_ttl(lease_ttl_from_env()?)
    .with_api_bases(tributary::sync::setup::api_bases_from_env()?);
    let engine = match connections {
        Some(connections) => engine.with_connections(Arc::new(connections)),
        None => engine,
    };
    Ok((engine, queue))
}

/// Handles one message like a `sync-<source>` invocation; `false` when the queue was idle.
pub async fn work_on(engine: &SyncEngine, queue: &dyn Queue) -> Result<bool, String> {
    let hidden = engine.lease_ttl() * 2;
    let messages = queue
        .receive(1, hidden, IDLE_WAIT)
        .await
        .map_err(|error| error.to_string())?;
    let Some(message) = messages.into_iter().next() else {
        return Ok(false);
    };
    let retry = tokio::select! {
        retry = handle(engine, &message) => retry,
        never = keep_hidden(queue, &message, hidden) => match never {},
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

/// Extends the message's visibility every half of `hidden` while it is being handled.
async fn keep_hidden(
    queue: &dyn Queue,
    message: &ReceivedMessage,
    hidden: Duration,
) -> std::convert::Infallible {
    let mut ticks = tokio::time::interval(hidden / 2);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = queue
            .change_visibility(&message.receipt_handle, hidden)
            .await
        {
            tracing::warn!(%error, "could not extend a sync message's visibility");
        }
    }
}

/// Runs one message; `true` when it should be retried later.
async fn handle(engine: &SyncEngine, message: &ReceivedMessage) -> bool {
    let parsed: Result<SyncMessage, _> = serde_json::from_str(&message.body);
    match parsed {
        Err(error) => {
            tracing::warn!(%error, "unreadable sync message");
            true
        }
        Ok(sync) => match engine.handle(&sync, Instant::now() + INVOCATION).await {
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
    }
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

/// Completes on SIGINT (Ctrl-C) or SIGTERM: the CLI's sync then stops, closes its run as
/// interrupted and releases the lease, so a re-run starts at once.
pub async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Why a CLI sync did not run: who holds the lease and until when.
pub fn lease_busy_message(
    connector_id: &str,
    lease: &tributary::store::connectors::Lease,
) -> String {
    let now = tributary::store::now_epoch_seconds();
    let until = chrono::DateTime::from_timestamp(lease.until, 0)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| lease.until.to_string());
    format!(
        "connector {connector_id} is being synced by another process (lease holder {}) until {until} \
         (in {} s, unless it renews its lease); try again after that",
        lease.holder,
        (lease.until - now).max(0)
    )
}
