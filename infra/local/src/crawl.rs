//! The local stand-in for SQS → `crawl-page`: workers that take page messages from the
//! embedded queue and hand them to the same engine the Lambda uses.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
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
/// How long an idle worker waits before looking at the queue again: what the embedded
/// queue's own long poll waits between looks at its file, so no busier, but a wait that
/// stopping interrupts.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// Pause after a queue error, instead of spinning.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// How often `crawl_until_done` reads the job's counters for progress (its end it is told).
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
/// delivered again (an unreadable one ends in the dead-letter queue). Once `stop` is
/// raised, a message being (or about to be) handled is handed back to the queue, visible
/// at once, instead of staying hidden for [`VISIBILITY`]: the engine handles a page
/// delivered twice correctly, and the next worker (or the next run) takes it up.
async fn work_on(
    engine: &CrawlEngine,
    queue: &dyn Queue,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    // One look, no long poll, and never cut short: a receive dropped mid-call may already
    // have taken a message out of sight, and nobody would hold its receipt to hand it back.
    // The wait between looks is here instead, where stopping ends it at once.
    let messages = queue
        .receive(1, VISIBILITY, Duration::ZERO)
        .await
        .map_err(|error| error.to_string())?;
    let Some(message) = messages.into_iter().next() else {
        tokio::select! {
            () = stopped(stop) => {}
            () = tokio::time::sleep(IDLE_WAIT) => {}
        }
        return Ok(());
    };
    let deadline = Deadline::after(MESSAGE_BUDGET);
    let disposition = tokio::select! {
        biased;
        () = stopped(stop) => None,
        disposition = engine.handle(&message.body, message.receive_count, deadline) => {
            Some(disposition)
        }
    };
    let result = match disposition {
        Some(Disposition::Handled) => queue.delete(&message.receipt_handle).await,
        Some(Disposition::Retry) => {
            let backoff = Duration::from_secs(u64::from(message.receive_count.min(10)));
            queue
                .change_visibility(&message.receipt_handle, backoff)
                .await
        }
        None => {
            tracing::info!("crawl worker stopping; page handed back to the queue");
            queue
                .change_visibility(&message.receipt_handle, Duration::ZERO)
                .await
        }
    };
    result.map_err(|error| error.to_string())
}

/// Completes once the workers are told to stop (or their [`Workers`] is dropped).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which stops the workers too.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Whether the workers are told to stop, or their [`Workers`] is gone.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Crawl workers consuming the queue; stop them with [`Workers::stop`] so that no message
/// stays hidden behind a worker that is gone (aborting one mid-message would hide that
/// page for [`VISIBILITY`]). Dropping this also tells them to stop, without waiting.
pub struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Workers {
    /// Tells every worker to stop and waits until they have: an idle one at once (after a
    /// look at the queue in progress), a busy one once it has handed its message back.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for handle in self.handles {
            if let Err(error) = handle.await {
                tracing::error!(%error, "crawl worker failed");
            }
        }
    }
}

/// `count` workers consuming the queue until stopped, each pausing a moment after a queue
/// error instead of spinning.
pub fn spawn_workers(engine: Arc<CrawlEngine>, queue: Arc<dyn Queue>, count: usize) -> Workers {
    let (stop, watching) = watch::channel(false);
    let handles = (0..count.max(1))
        .map(|_| {
            let (engine, queue, mut stop) = (engine.clone(), queue.clone(), watching.clone());
            tokio::spawn(async move {
                while !stopping(&stop) {
                    if let Err(error) = work_on(&engine, queue.as_ref(), &mut stop).await {
                        tracing::error!(%error, worker = "crawl", "queue unavailable");
                        tokio::select! {
                            () = stopped(&mut stop) => {}
                            () = tokio::time::sleep(ERROR_PAUSE) => {}
                        }
                    }
                }
            })
        })
        .collect();
    Workers { stop, handles }
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

/// Runs workers until the job has ended, reporting its counters as they change. The end
/// is noticed as soon as a worker records it (the engine says so); the periodic read also
/// notices a job ended elsewhere (cancelled, swept by another process).
pub async fn crawl_until_done(
    engine: Arc<CrawlEngine>,
    queue: Arc<dyn Queue>,
    job_id: &str,
    workers: usize,
    mut progress: impl FnMut(&CrawlJob),
) -> Result<CrawlJob, LocalError> {
    // Before any worker runs, so no end goes unnoticed.
    let mut ended = engine.ended_jobs();
    let workers = spawn_workers(engine.clone(), queue, workers);
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    let result = loop {
        tokio::select! {
            _ = ticks.tick() => {}
            // The engine outlives this loop, so this never fails; if it did, the branch
            // would be disabled and the ticks would still notice the end.
            Ok(()) = ended.changed() => {}
        }
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
    workers.stop().await;
    result
}
