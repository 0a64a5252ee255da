//! The local stand-in for SQS → `crawl-page`: workers that take page messages from the
//! embedded queue and hand them to the same engine the Lambda uses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tributary::auth::{Principal, TokenKind};
use tributary::crawl::engine::{CrawlEngine, Deadline, Disposition};
use tributary::crawl::setup::{fetcher_for, local_queue, policy_from_env, sinks_from_env};
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::crawl::sweep::sweep;
use tributary::queue::Queue;
use tributary::store::crawls::CrawlJob;
use tributary::Services;

use crate::LocalError;

/// How long a received message stays hidden while a worker handles it (like the SQS
/// queue's visibility timeout in template.yaml, which matches crawl-page's timeout).
const VISIBILITY: Duration = Duration::from_secs(120);
/// What one message may take, like crawl-page's function timeout (template.yaml); the
/// engine re-queues what does not fit. Below [`VISIBILITY`], so a message is never handed
/// to a second worker while the first still works on it.
const MESSAGE_BUDGET: Duration = Duration::from_secs(90);
/// Long poll of an idle worker.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How often `crawl_until_done` reads the job's counters.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// The crawl engine and its queue over the data directory.
pub fn local_engine(
    services: &Services,
    data_dir: &Path,
    allow_private_networks: bool,
) -> Result<(Arc<CrawlEngine>, Arc<dyn Queue>), LocalError> {
    let policy = if allow_private_networks {
        NetworkPolicy::allow_private()
    } else {
        policy_from_env()?
    };
    let fetcher = fetcher_for(policy)?;
    let mut sinks = sinks_from_env(&fetcher, true)?;
    // Per-sink credentials are sealed with the data directory's key, as connectors' are.
    if sinks.vault.is_none() {
        sinks.vault = Some(crate::sync::local_vault(data_dir)?.0);
    }
    let queue: Arc<dyn Queue> = Arc::new(local_queue(data_dir)?);
    let engine = CrawlEngine::new(services.table.clone(), queue.clone(), fetcher, sinks);
    Ok((Arc::new(engine), queue))
}

/// Who runs `tributary-local crawl`: the jobs it starts belong to a local tenant.
pub fn local_operator() -> Principal {
    Principal {
        user_id: "local".into(),
        tenant_id: "local".into(),
        scopes: vec![tributary::auth::scopes::CRAWLS_WRITE.into()],
        token_kind: TokenKind::Session,
        token_id: None,
    }
}

/// Handles one message: deleted when handled, otherwise hidden for a growing delay and
/// delivered again (an unreadable one ends in the dead-letter queue).
async fn work_on(engine: &CrawlEngine, queue: &dyn Queue) -> Result<bool, String> {
    let messages = queue
        .receive(1, VISIBILITY, IDLE_WAIT)
        .await
        .map_err(|error| error.to_string())?;
    let Some(message) = messages.into_iter().next() else {
        return Ok(false);
    };
    let deadline = Deadline::after(MESSAGE_BUDGET);
    let result = match engine
        .handle(&message.body, message.receive_count, deadline)
        .await
    {
        Disposition::Handled => queue.delete(&message.receipt_handle).await,
        Disposition::Retry => {
            let backoff = Duration::from_secs(u64::from(message.receive_count.min(10)));
            queue
                .change_visibility(&message.receipt_handle, backoff)
                .await
        }
    };
    result.map(|()| true).map_err(|error| error.to_string())
}

/// `count` workers consuming the queue until aborted.
pub fn spawn_workers(
    engine: Arc<CrawlEngine>,
    queue: Arc<dyn Queue>,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    crate::spawn_pollers(count, "crawl", move || {
        let engine = engine.clone();
        let queue = queue.clone();
        async move { work_on(&engine, queue.as_ref()).await }
    })
}

/// Sweeps stalled crawls every `every` (the cloud runs `crawl-sweep` on a schedule).
pub fn spawn_sweeper(
    engine: Arc<CrawlEngine>,
    every: Duration,
    stall_after: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let now = tributary::time::now_epoch_seconds();
            if let Err(error) = sweep(engine.jobs(), stall_after, now).await {
                tracing::error!(%error, "crawl sweep failed");
            }
        }
    })
}

/// Runs workers until the job has ended, reporting its counters as they change.
pub async fn crawl_until_done(
    engine: Arc<CrawlEngine>,
    queue: Arc<dyn Queue>,
    job_id: &str,
    workers: usize,
    mut progress: impl FnMut(&CrawlJob),
) -> Result<CrawlJob, LocalError> {
    let handles = spawn_workers(engine.clone(), queue, workers);
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    let result = loop {
        ticks.tick().await;
        match engine.jobs().get(job_id).await {
            Ok(Some(job)) => {
                progress(&job);
                if !job.status.is_active() {
                    break Ok(job);
                }
            }
            Ok(None) => break Err(LocalError::Crawl(format!("crawl {job_id} disappeared"))),
            Err(error) => break Err(LocalError::Crawl(error.to_string())),
        }
    };
    for handle in handles {
        handle.abort();
    }
    result
}
