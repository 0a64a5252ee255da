//! The sync engine (DESIGN §3): one message = one invocation of a `sync-<source>` Lambda
//! (or a local worker). Acquire the connector's lease (busy: the message comes back later,
//! delayed, never dropped) → load the checkpoint → pull batches until done or until the
//! deadline nears → after each batch deliver the changed documents (the document map keeps
//! a content hash per source id) and then save the checkpoint → not done: hand the lease
//! to the continuation (a one-time token in the message), then enqueue it → done: release
//! the lease → record the run. Deletions come from a prune pass over a *complete* slim
//! listing only.
//!
//! The lease is short ([`DEFAULT_LEASE_TTL`]) and renewed by a heartbeat while the sync
//! runs, so a crashed holder blocks its connector for about one TTL. The lease remembers
//! the run it serves: the next holder closes a run a dead holder left `running` as
//! `interrupted`.
//!
//! Crash safety: the checkpoint is saved only after its batch is delivered and mapped, and
//! sinks replace by document id, so a crash anywhere re-delivers at most one batch, never
//! loses one, and never duplicates a document in the sink.

mod deletions;
#[cfg(feature = "lambda")]
mod heartbeat;
pub mod lambda;
mod queues;
pub mod setup;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectors::document::Document;
use crate::connectors::kit::{ApiBases, ConnectionResolver, SourceAuth};
use crate::connectors::{Batch, BuildContext, Connector, ConnectorError, Credentials};
use crate::crawl::ssrf::NetworkPolicy;
use crate::http::RetryPolicy;
use crate::queue::QueueError;
use crate::sinks::{Sink, SinkEnvironment, SinkError};
use crate::store::connectors::{
    Checkpoint, ConnectorRecord, Connectors, DocumentEntry, Lease, LeaseClaim, RunCounts,
    RunRecord, RunRef, RunStatus,
};
use crate::store::{now_epoch_seconds, StoreError, Table};
use crate::vault::{Vault, VaultError};
use heartbeat::Heartbeat;
pub use queues::{busy_delay, SyncQueues};

/// Time kept in reserve before the invocation's deadline: the last batch, the checkpoint,
/// the continuation and the run record must fit in it.
pub const DEFAULT_SAFETY_MARGIN: Duration = Duration::from_secs(20);
/// How long a lease lasts without a heartbeat: a crashed holder blocks its connector about
/// this long. The heartbeat renews it every third of it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(90);
/// The longest a deferred message (busy lease, or a source's Retry-After) waits before it is
/// tried again (SQS's `DelaySeconds` limit).
pub const MAX_BUSY_DELAY: Duration = Duration::from_secs(900);

/// What a sync queue carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub connector_id: String,
    /// `schedule`, `webhook`, `manual` or `continuation`.
    pub trigger: String,
    /// Set on continuations: the run they continue (`started_at`, `id`).
    #[serde(default)]
    pub run: Option<(i64, String)>,
    /// Set on continuations: the one-time token the lease was handed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<String>,
    /// How many times this message met a busy lease (each retry waits longer).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

impl SyncMessage {
    pub fn new(connector_id: &str, trigger: &str) -> Self {
        Self {
            connector_id: connector_id.to_owned(),
            trigger: trigger.to_owned(),
            run: None,
            lease: None,
            attempt: 0,
        }
    }

    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, PartialEq)]
pub enum SyncOutcome {
    /// The connector no longer exists.
    Gone,
    /// Another sync holds the lease (who, and until when); nothing was done.
    LeaseBusy(Lease),
    /// The lease was busy, or the source asked to wait: the message was queued again to run
    /// after this delay.
    Deferred(Duration),
    /// A continuation of a run that has ended since (completed, or closed as interrupted
    /// when its lease expired): a later run covers it.
    Superseded,
    /// The deadline came first; a continuation is queued.
    Continued(RunRecord),
    /// The run finished (completed or failed).
    Finished(RunRecord),
    /// Stopped from outside (Ctrl-C, SIGTERM): the run is closed as interrupted and the
    /// lease released, so the next sync starts at once from the saved checkpoint.
    Interrupted(RunRecord),
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("credentials: {0}")]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error("sink: {0}")]
    Sink(#[from] SinkError),
    #[error("no sync queue for {0}")]
    NoQueue(&'static str),
    #[error("address not allowed: {0}")]
    Forbidden(String),
    /// The heartbeat could not renew the lease: another holder may have it now.
    #[error("the connector's lease was lost")]
    LeaseLost,
}

impl SyncError {
    /// Worth retrying the message later (the source, sink or store may recover).
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Connector(error) => error.is_transient(),
            SyncError::Sink(error) => error.is_transient(),
            SyncError::Vault(_) | SyncError::Forbidden(_) => false,
            _ => true,
        }
    }
}

/// Builds the connector a record describes, with inline credentials (a connection stays
/// unresolved: use [`SyncEngine::build_connector`]).
pub fn connector_for(
    record: &ConnectorRecord,
    credentials: Credentials,
    http: crate::http::GuardedClient,
    retry: RetryPolicy,
) -> Result<Box<dyn Connector>, ConnectorError> {
    crate::connectors::build(
        record.source,
        build_context(record, credentials.into(), http, retry, ApiBases::default()),
    )
}

fn build_context(
    record: &ConnectorRecord,
    auth: SourceAuth,
    http: crate::http::GuardedClient,
    retry: RetryPolicy,
    api_bases: ApiBases,
) -> BuildContext {
    BuildContext {
        connector_id: record.id.clone(),
        workspace_id: record.workspace_id.clone(),
        config: record.config.clone(),
        auth,
        http,
        retry,
        api_bases,
    }
}

pub struct SyncEngine {
    pub connectors: Connectors,
    pub queues: SyncQueues,
    vault: Vault,
    sinks: SinkEnvironment,
    http: crate::http::GuardedClient,
    retry: RetryPolicy,
    safety_margin: Duration,
    lease_ttl: Duration,
    progress: Option<Progress>,
    /// Builds connectors instead of the source registry (tests with sources of their own).
    connector_factory: Option<ConnectorFactory>,
    /// Source and sink URLs are user-supplied: checked like crawl targets (IP literals
    /// here; host names by the guarded client's resolver).
    policy: Arc<NetworkPolicy>,
    /// Resolves `{"type": "connection"}` credentials; without it they fail closed.
    connections: Option<Arc<dyn ConnectionResolver>>,
    /// Where provider APIs live (deployment configuration, e.g. fakes in tests).
    api_bases: ApiBases,
}

/// See [`SyncEngine::with_connector_factory`].
pub type ConnectorFactory =
    Arc<dyn Fn(&ConnectorRecord) -> Result<Box<dyn Connector>, ConnectorError> + Send + Sync>;

/// Called with the run after every batch (the local CLI's progress bar).
pub type Progress = Arc<dyn Fn(&RunRecord) + Send + Sync>;

impl SyncEngine {
    pub fn new(
        table: Arc<dyn Table>,
        queues: SyncQueues,
        vault: Vault,
        sinks: SinkEnvironment,
        http: crate::http::GuardedClient,
    ) -> Self {
        let mut sinks = sinks;
        // Per-sink credentials are sealed with the connector credentials' key.
        sinks.vault.get_or_insert_with(|| vault.clone());
        Self {
            connectors: Connectors::new(table),
            queues,
            vault,
            sinks,
            http,
            retry: RetryPolicy::default(),
            safety_margin: DEFAULT_SAFETY_MARGIN,
            lease_ttl: DEFAULT_LEASE_TTL,
            progress: None,
            connector_factory: None,
            policy: Arc::new(NetworkPolicy::strict()),
            connections: None,
            api_bases: ApiBases::default(),
        }
    }

    /// Provider API base URLs over the sources' defaults (`TRIBUTARY_API_URL_<NAME>`).
    pub fn with_api_bases(mut self, api_bases: ApiBases) -> Self {
        self.api_bases = api_bases;
        self
    }

    /// The workspace provider connections that `{"type": "connection"}` credentials use.
    pub fn with_connections(mut self, connections: Arc<dyn ConnectionResolver>) -> Self {
        self.connections = Some(connections);
        self
    }

    pub fn with_policy(mut self, policy: Arc<NetworkPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Refuses a connector whose source or sink URL the network policy forbids.
    pub fn check_endpoints(&self, record: &ConnectorRecord) -> Result<(), SyncError> {
        let source = record
            .config
            .get("base_url")
            .and_then(Value::as_str)
            .and_then(|url| url::Url::parse(url).ok());
        for url in source.iter().chain(record.sink.endpoint()) {
            self.policy
                .check_url(url)
                .map_err(|error| SyncError::Forbidden(format!("{url}: {error}")))?;
        }
        Ok(())
    }

    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Every connector this engine syncs comes from `factory` (stored credentials unused):
    /// how a test drives the engine with a source of its own.
    pub fn with_connector_factory(mut self, factory: ConnectorFactory) -> Self {
        self.connector_factory = Some(factory);
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = margin;
        self
    }

    /// The lease's time to live (at least 3 s); the heartbeat renews it every third.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(3));
        self
    }

    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    pub fn sinks(&self) -> &SinkEnvironment {
        &self.sinks
    }

    pub fn http(&self) -> &crate::http::GuardedClient {
        &self.http
    }

    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The connector of a stored record, with its credentials unsealed.
    pub async fn connector(
        &self,
        record: &ConnectorRecord,
    ) -> Result<Box<dyn Connector>, SyncError> {
        self.check_endpoints(record)?;
        if let Some(factory) = &self.connector_factory {
            return Ok(factory(record)?);
        }
        let credentials = self.vault.open(&record.credentials_sealed, &record.id)?;
        let credentials: Credentials =
            serde_json::from_slice(&credentials).map_err(|_| SyncError::Vault(VaultError::Open))?;
        self.build_connector(record, credentials).await
    }

    /// The connector a record describes with these credentials (a connection resolved
    /// through the workspace's provider connections), built by the source's registry entry.
    pub async fn build_connector(
        &self,
        record: &ConnectorRecord,
        credentials: Credentials,
    ) -> Result<Box<dyn Connector>, SyncError> {
        let auth = credentials
            .resolve(&record.workspace_id, self.connections.as_deref())
            .await?;
        let context = build_context(
            record,
            auth,
            self.http.clone(),
            self.retry.clone(),
            self.api_bases.clone(),
        );
        Ok(crate::connectors::build(record.source, context)?)
    }

    /// Deletes a connector and its sync state (checkpoint, lease, runs, document map,
    /// webhook deliveries). With `purge`, first removes its documents from the sink (found
    /// through the document map), so a failing sink leaves the connector in place to retry.
    /// Returns how many documents were purged.
    pub async fn delete_connector(
        &self,
        record: &ConnectorRecord,
        purge: bool,
    ) -> Result<usize, SyncError> {
        let purged = if purge {
            self.purge_documents(record).await?
        } else {
            0
        };
        self.connectors.delete(record).await?;
        let state = self.connectors.delete_state(&record.id).await?;
        tracing::info!(connector_id = %record.id, purged, state, "connector state deleted");
        Ok(purged)
    }

    /// The connector's sink, with its own sealed credential (or an operator pin).
    fn sink_for(&self, record: &ConnectorRecord) -> Result<Arc<dyn Sink>, SyncError> {
        Ok(self.sinks.build_stored(
            &record.sink,
            record.sink_secret_sealed.as_deref(),
            &record.sink_owner(),
        )?)
    }

    async fn purge_documents(&self, record: &ConnectorRecord) -> Result<usize, SyncError> {
        let sink = self.sink_for(record)?;
        let mut purged = 0;
        let mut cursor = None;
        loop {
            let (entries, next) = self.connectors.documents(&record.id, cursor).await?;
            let ids: Vec<String> = entries.into_iter().map(|e| e.document_id).collect();
            if !ids.is_empty() {
                sink.delete(&ids).await?;
                purged += ids.len();
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(purged),
            }
        }
    }

    /// Handles one sync message until `deadline`; a busy lease is reported, not retried.
    pub async fn run(
        &self,
        message: &SyncMessage,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        self.run_until(message, deadline, std::future::pending())
            .await
    }

    /// Handles one message from a queue: like [`SyncEngine::run`], but a message that meets
    /// a busy lease is queued again with a delay ([`busy_delay`]) instead of dropped.
    pub async fn handle(
        &self,
        message: &SyncMessage,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        let delay = match self.run(message, deadline).await {
            Ok(SyncOutcome::LeaseBusy(lease)) => {
                busy_delay(&lease, message.attempt, now_epoch_seconds())
            }
            // The source named how long to stay away: come back then, not at once through
            // SQS's visibility timeout (which would also spend the message's receive count).
            Err(SyncError::Connector(error)) if error.retry_after().is_some() => error
                .retry_after()
                .unwrap_or_default()
                .clamp(Duration::from_secs(1), MAX_BUSY_DELAY),
            other => return other,
        };
        let Some(record) = self.connectors.by_id(&message.connector_id).await? else {
            return Ok(SyncOutcome::Gone);
        };
        let retry = SyncMessage {
            attempt: message.attempt.saturating_add(1),
            ..message.clone()
        };
        self.queues
            .enqueue_delayed(record.source, &retry, delay)
            .await?;
        tracing::info!(connector_id = %record.id, delay_secs = delay.as_secs(), "message deferred");
        Ok(SyncOutcome::Deferred(delay))
    }

    /// Like [`SyncEngine::run`], until `deadline` or until `stop` completes (a signal): then
    /// the run is closed as interrupted and the lease released.
    pub async fn run_until(
        &self,
        message: &SyncMessage,
        deadline: Instant,
        stop: impl Future<Output = ()>,
    ) -> Result<SyncOutcome, SyncError> {
        let Some(record) = self.connectors.by_id(&message.connector_id).await? else {
            return Ok(SyncOutcome::Gone);
        };
        let holder = uuid::Uuid::now_v7().to_string();
        let previous = match self
            .connectors
            .acquire_lease(
                &record.id,
                &holder,
                self.lease_until(),
                message.lease.as_deref(),
            )
            .await?
        {
            LeaseClaim::Busy(lease) => {
                tracing::info!(connector_id = %record.id, until = lease.until, "another sync holds the lease");
                return Ok(SyncOutcome::LeaseBusy(lease));
            }
            LeaseClaim::Acquired { previous } => previous,
        };
        let heartbeat =
            Heartbeat::start(self.connectors.clone(), &record.id, &holder, self.lease_ttl);
        let result = self
            .run_leased(&record, message, previous, &heartbeat, deadline, stop)
            .await;
        let run = heartbeat.stop().await;
        self.end_lease(&record, &holder, run, result).await
    }

    fn lease_until(&self) -> i64 {
        now_epoch_seconds() + i64::try_from(self.lease_ttl.as_secs()).unwrap_or(i64::MAX / 2)
    }

    /// Releases the lease — or, for a continuation, hands it to the continuation's token
    /// first and only then enqueues it, so no other message can take it in between.
    async fn end_lease(
        &self,
        record: &ConnectorRecord,
        holder: &str,
        run: Option<RunRef>,
        result: Result<SyncOutcome, SyncError>,
    ) -> Result<SyncOutcome, SyncError> {
        let Ok(SyncOutcome::Continued(continued)) = &result else {
            // An error may leave the run `running` (its record not saved): the lease keeps
            // pointing at it so the next holder closes it.
            let keep = if result.is_err() { run } else { None };
            let released = self
                .connectors
                .release_lease(&record.id, holder, keep)
                .await;
            let outcome = result?;
            released?;
            return Ok(outcome);
        };
        let token = uuid::Uuid::now_v7().to_string();
        let handed = Lease {
            holder: token.clone(),
            until: self.lease_until(),
            run: run.clone(),
        };
        let handed = self
            .connectors
            .update_lease(&record.id, holder, &handed)
            .await?;
        let continuation = SyncMessage {
            connector_id: record.id.clone(),
            trigger: "continuation".into(),
            run: Some((continued.started_at, continued.id.clone())),
            lease: handed.then_some(token.clone()),
            attempt: 0,
        };
        if let Err(error) = self.queues.enqueue(record.source, &continuation).await {
            // Nobody will come with the token: free the lease, remembering the run, and let
            // this message be retried.
            self.connectors
                .release_lease(&record.id, &token, run)
                .await?;
            return Err(error);
        }
        tracing::info!(connector_id = %record.id, "deadline near; continuation queued");
        result
    }

    async fn run_leased(
        &self,
        record: &ConnectorRecord,
        message: &SyncMessage,
        previous: Option<Lease>,
        heartbeat: &Heartbeat,
        deadline: Instant,
        stop: impl Future<Output = ()>,
    ) -> Result<SyncOutcome, SyncError> {
        let stale = previous.and_then(|lease| lease.run);
        let Some(mut run) = self.start_run(record, message, stale).await? else {
            return Ok(SyncOutcome::Superseded);
        };
        heartbeat.serve(&run, self.lease_until()).await?;
        let outcome = tokio::select! {
            outcome = self.pull_until_done_or_deadline(record, &mut run, heartbeat, deadline) => outcome,
            () = stop => {
                run.status = RunStatus::Interrupted;
                run.finished_at = Some(now_epoch_seconds());
                self.connectors.save_run(&run).await?;
                tracing::info!(connector_id = %record.id, "sync stopped; run interrupted");
                return Ok(SyncOutcome::Interrupted(run));
            }
        };
        match outcome {
            Ok(true) => {
                self.prune(record, &mut run).await;
                run.status = RunStatus::Completed;
                run.finished_at = Some(now_epoch_seconds());
                self.connectors.save_run(&run).await?;
                tracing::info!(connector_id = %record.id, counts = ?run.counts, "sync completed");
                Ok(SyncOutcome::Finished(run))
            }
            Ok(false) => {
                self.connectors.save_run(&run).await?;
                Ok(SyncOutcome::Continued(run))
            }
            Err(error) => {
                // The run ends here either way; a retried message starts a new run from the
                // saved checkpoint, so every run's counts are what that run did.
                run.note_error(error.to_string());
                run.status = RunStatus::Failed;
                run.finished_at = Some(now_epoch_seconds());
                self.connectors.save_run(&run).await?;
                tracing::warn!(connector_id = %record.id, %error, "sync failed");
                if error.is_transient() {
                    return Err(error);
                }
                Ok(SyncOutcome::Finished(run))
            }
        }
    }

    /// The run this message serves: its continuation's run while that is still `running`,
    /// `None` (superseded) when that run completed or was interrupted, else a new one. `stale` is the run the previous lease served:
    /// unless this message continues it, its holder died and it is closed as interrupted.
    async fn start_run(
        &self,
        record: &ConnectorRecord,
        message: &SyncMessage,
        stale: Option<RunRef>,
    ) -> Result<Option<RunRecord>, SyncError> {
        if let Some(stale) = stale.filter(|stale| message.run.as_ref() != Some(stale)) {
            self.close_interrupted(&record.id, &stale).await?;
        }
        if let Some((started_at, run_id)) = &message.run {
            match self.connectors.run(&record.id, *started_at, run_id).await? {
                Some(mut run) if run.status == RunStatus::Running => {
                    run.invocations += 1;
                    return Ok(Some(run));
                }
                // Closed as failed by a transient error: this retry starts a new run.
                Some(run) if run.status == RunStatus::Failed => {}
                _ => {
                    tracing::info!(connector_id = %record.id, "continuation of an ended run; skipped");
                    return Ok(None);
                }
            }
        }
        let run = RunRecord {
            id: uuid::Uuid::now_v7().to_string(),
            connector_id: record.id.clone(),
            trigger: message.trigger.clone(),
            status: RunStatus::Running,
            counts: RunCounts::default(),
            errors: Vec::new(),
            invocations: 1,
            pruned: None,
            started_at: now_epoch_seconds(),
            finished_at: None,
        };
        self.connectors.save_run(&run).await?;
        Ok(Some(run))
    }

    async fn close_interrupted(&self, connector_id: &str, run: &RunRef) -> Result<(), SyncError> {
        let Some(mut stale) = self.connectors.run(connector_id, run.0, &run.1).await? else {
            return Ok(());
        };
        if stale.status != RunStatus::Running {
            return Ok(());
        }
        stale.status = RunStatus::Interrupted;
        stale.finished_at = Some(now_epoch_seconds());
        stale.note_error("interrupted: its sync stopped without finishing (lease expired)");
        self.connectors.save_run(&stale).await?;
        tracing::info!(%connector_id, run_id = %stale.id, "stale run closed as interrupted");
        Ok(())
    }

    /// `Ok(true)` when the source reported done, `Ok(false)` when the deadline came first.
    async fn pull_until_done_or_deadline(
        &self,
        record: &ConnectorRecord,
        run: &mut RunRecord,
        heartbeat: &Heartbeat,
        deadline: Instant,
    ) -> Result<bool, SyncError> {
        let connector = self.connector(record).await?;
        let sink = self.sink_for(record)?;
        let mut checkpoint = self.connectors.checkpoint(&record.id).await?;
        // At least one batch per invocation, so every continuation makes progress.
        loop {
            let batch = connector
                .pull(
                    checkpoint
                        .as_ref()
                        .map(|c| &c.value)
                        .filter(|v| !v.is_null()),
                )
                .await?;
            let done = batch.done;
            checkpoint = Some(
                self.apply_batch(record, sink.as_ref(), batch, checkpoint.as_ref(), run)
                    .await?,
            );
            self.connectors.save_run(run).await?;
            if let Some(progress) = &self.progress {
                progress(run);
            }
            if done {
                return Ok(true);
            }
            if heartbeat.lost() {
                return Err(SyncError::LeaseLost);
            }
            if deadline.saturating_duration_since(Instant::now()) <= self.safety_margin {
                return Ok(false);
            }
        }
    }

    /// Delivers what changed, maps it, then saves the batch's checkpoint.
    async fn apply_batch(
        &self,
        record: &ConnectorRecord,
        sink: &dyn Sink,
        batch: Batch,
        checkpoint: Option<&Checkpoint>,
        run: &mut RunRecord,
    ) -> Result<Checkpoint, SyncError> {
        for failure in &batch.failures {
            run.counts.failed += 1;
            run.note_error(format!("{}: {}", failure.source_id, failure.error));
        }
        for skipped in &batch.skipped {
            run.counts.skipped += 1;
            run.note_error(format!(
                "{}: skipped: {}",
                skipped.source_id, skipped.reason
            ));
        }
        self.apply_tombstones(record, sink, &batch.deleted, run)
            .await?;
        let mut changed: Vec<(Document, String, bool)> = Vec::new();
        for document in batch.documents {
            let hash = document.content_hash();
            match self
                .connectors
                .document(&record.id, &document.source_id)
                .await?
            {
                Some(entry) if entry.content_hash == hash && entry.document_id == document.id => {
                    run.counts.unchanged += 1;
                }
                existing => changed.push((document, hash, existing.is_some())),
            }
        }
        if !changed.is_empty() {
            let documents: Vec<Document> = changed.iter().map(|(d, _, _)| d.clone()).collect();
            sink.deliver(&documents).await?;
            let now = now_epoch_seconds();
            for (document, hash, existed) in changed {
                let entry = DocumentEntry {
                    source_id: document.source_id,
                    document_id: document.id,
                    content_hash: hash,
                    delivered_at: now,
                };
                self.connectors.record_document(&record.id, &entry).await?;
                if existed {
                    run.counts.updated += 1;
                } else {
                    run.counts.added += 1;
                }
            }
        }
        // When the checkpoint moved under us, another holder ran despite the lease (it
        // expired): refuse to overwrite its progress; the retried message re-reads it.
        Ok(self
            .connectors
            .save_checkpoint(&record.id, checkpoint, batch.checkpoint)
            .await?)
    }
}

#[cfg(test)]
mod tests;
