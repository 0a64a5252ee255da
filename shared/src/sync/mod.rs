//! The sync engine (DESIGN §3): one message = one invocation of a `sync-<source>` Lambda
//! (or a local worker). Acquire the connector's lease or exit quietly → load the checkpoint
//! → pull batches until done or until the deadline nears → after each batch deliver the
//! changed documents (the document map keeps a content hash per source id) and then save
//! the checkpoint → not done: enqueue a continuation → release the lease → record the run.
//! Deletions come from a prune pass over a *complete* slim listing only.
//!
//! Crash safety: the checkpoint is saved only after its batch is delivered and mapped, and
//! sinks replace by document id, so a crash anywhere re-delivers at most one batch, never
//! loses one, and never duplicates a document in the sink.

#[cfg(feature = "lambda")]
pub mod lambda;
pub mod setup;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connectors::document::Document;
use crate::connectors::{Batch, Connector, ConnectorError, Credentials};
use crate::crawl::ssrf::NetworkPolicy;
use crate::http::RetryPolicy;
use crate::queue::{Queue, QueueError};
use crate::sinks::{Sink, SinkEnvironment, SinkError};
use crate::store::connectors::{
    Checkpoint, ConnectorRecord, Connectors, DocumentEntry, RunCounts, RunRecord, RunStatus,
    SourceKind,
};
use crate::store::{now_epoch_seconds, StoreError, Table};
use crate::vault::{Vault, VaultError};

/// Time kept in reserve before the invocation's deadline: the last batch, the checkpoint,
/// the continuation and the run record must fit in it.
pub const DEFAULT_SAFETY_MARGIN: Duration = Duration::from_secs(20);
/// A lease outlives the longest invocation (Lambda's 15 minutes), so a crashed holder
/// blocks its connector at most this long.
pub const LEASE_SECS: i64 = 16 * 60;

/// What a sync queue carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncMessage {
    pub connector_id: String,
    /// `schedule`, `webhook`, `manual` or `continuation`.
    pub trigger: String,
    /// Set on continuations: the run they continue (`started_at`, `id`).
    #[serde(default)]
    pub run: Option<(i64, String)>,
}

impl SyncMessage {
    pub fn new(connector_id: &str, trigger: &str) -> Self {
        Self {
            connector_id: connector_id.to_owned(),
            trigger: trigger.to_owned(),
            run: None,
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
    /// Another sync holds the lease; this message is done.
    LeaseBusy,
    /// The deadline came first; a continuation is queued.
    Continued(RunRecord),
    /// The run finished (completed or failed).
    Finished(RunRecord),
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

/// One queue per source in the cloud (each `sync-<source>` Lambda has its own); locally
/// one queue can serve every source.
#[derive(Clone, Default)]
pub struct SyncQueues {
    queues: HashMap<SourceKind, Arc<dyn Queue>>,
}

impl SyncQueues {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, source: SourceKind, queue: Arc<dyn Queue>) -> Self {
        self.queues.insert(source, queue);
        self
    }

    /// The same queue for every source.
    pub fn shared(queue: Arc<dyn Queue>) -> Self {
        SourceKind::ALL.iter().fold(Self::new(), |queues, source| {
            queues.with(*source, queue.clone())
        })
    }

    pub async fn enqueue(
        &self,
        source: SourceKind,
        message: &SyncMessage,
    ) -> Result<(), SyncError> {
        let queue = self
            .queues
            .get(&source)
            .ok_or(SyncError::NoQueue(source.as_str()))?;
        queue.send_batch(vec![message.body()]).await?;
        Ok(())
    }
}

/// Builds the connector a record describes.
pub fn connector_for(
    record: &ConnectorRecord,
    credentials: Credentials,
    http: crate::http::GuardedClient,
    retry: RetryPolicy,
) -> Result<Box<dyn Connector>, ConnectorError> {
    crate::connectors::build(
        record.source,
        &record.id,
        &record.config,
        credentials,
        http,
        retry,
    )
}

pub struct SyncEngine {
    pub connectors: Connectors,
    pub queues: SyncQueues,
    vault: Vault,
    sinks: SinkEnvironment,
    http: crate::http::GuardedClient,
    retry: RetryPolicy,
    safety_margin: Duration,
    progress: Option<Progress>,
    /// Source and sink URLs are user-supplied: checked like crawl targets (IP literals
    /// here; host names by the guarded client's resolver).
    policy: Arc<NetworkPolicy>,
}

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
        Self {
            connectors: Connectors::new(table),
            queues,
            vault,
            sinks,
            http,
            retry: RetryPolicy::default(),
            safety_margin: DEFAULT_SAFETY_MARGIN,
            progress: None,
            policy: Arc::new(NetworkPolicy::strict()),
        }
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

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_safety_margin(mut self, margin: Duration) -> Self {
        self.safety_margin = margin;
        self
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
    pub fn connector(&self, record: &ConnectorRecord) -> Result<Box<dyn Connector>, SyncError> {
        self.check_endpoints(record)?;
        let credentials = self.vault.open(&record.credentials_sealed, &record.id)?;
        let credentials: Credentials =
            serde_json::from_slice(&credentials).map_err(|_| SyncError::Vault(VaultError::Open))?;
        Ok(connector_for(
            record,
            credentials,
            self.http.clone(),
            self.retry.clone(),
        )?)
    }

    /// Handles one sync message until `deadline`.
    pub async fn run(
        &self,
        message: &SyncMessage,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        let Some(record) = self.connectors.by_id(&message.connector_id).await? else {
            return Ok(SyncOutcome::Gone);
        };
        let holder = uuid::Uuid::now_v7().to_string();
        let expires = now_epoch_seconds() + LEASE_SECS;
        if !self
            .connectors
            .acquire_lease(&record.id, &holder, expires)
            .await?
        {
            tracing::info!(connector_id = %record.id, "another sync holds the lease");
            return Ok(SyncOutcome::LeaseBusy);
        }
        let result = self.run_leased(&record, message, deadline).await;
        // Released whatever happened: a failed run must not block the next trigger.
        let released = self.connectors.release_lease(&record.id, &holder).await;
        let outcome = result?;
        released?;
        Ok(outcome)
    }

    async fn run_leased(
        &self,
        record: &ConnectorRecord,
        message: &SyncMessage,
        deadline: Instant,
    ) -> Result<SyncOutcome, SyncError> {
        let mut run = self.start_run(record, message).await?;
        let outcome = self
            .pull_until_done_or_deadline(record, &mut run, deadline)
            .await;
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
                let continuation = SyncMessage {
                    connector_id: record.id.clone(),
                    trigger: "continuation".into(),
                    run: Some((run.started_at, run.id.clone())),
                };
                self.queues.enqueue(record.source, &continuation).await?;
                tracing::info!(connector_id = %record.id, "deadline near; continuation queued");
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

    async fn start_run(
        &self,
        record: &ConnectorRecord,
        message: &SyncMessage,
    ) -> Result<RunRecord, SyncError> {
        if let Some((started_at, run_id)) = &message.run {
            if let Some(mut run) = self.connectors.run(&record.id, *started_at, run_id).await? {
                run.invocations += 1;
                return Ok(run);
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
        Ok(run)
    }

    /// `Ok(true)` when the source reported done, `Ok(false)` when the deadline came first.
    async fn pull_until_done_or_deadline(
        &self,
        record: &ConnectorRecord,
        run: &mut RunRecord,
        deadline: Instant,
    ) -> Result<bool, SyncError> {
        let connector = self.connector(record)?;
        let sink = crate::sinks::build(&record.sink, &self.sinks)?;
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

    /// Removes from the sink what the source no longer has, only after a complete listing.
    async fn prune(&self, record: &ConnectorRecord, run: &mut RunRecord) {
        match self.try_prune(record, run).await {
            Ok(()) => run.pruned = Some(true),
            Err(error) => {
                run.pruned = Some(false);
                run.note_error(format!("deletions skipped: {error}"));
            }
        }
    }

    async fn try_prune(
        &self,
        record: &ConnectorRecord,
        run: &mut RunRecord,
    ) -> Result<(), SyncError> {
        let connector = self.connector(record)?;
        let mut current = HashSet::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = connector.list_ids(cursor.as_deref()).await?;
            current.extend(page.source_ids);
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut gone = Vec::new();
        let mut cursor = None;
        loop {
            let (entries, next) = self.connectors.documents(&record.id, cursor).await?;
            gone.extend(
                entries
                    .into_iter()
                    .filter(|entry| !current.contains(&entry.source_id)),
            );
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        let sink = crate::sinks::build(&record.sink, &self.sinks)?;
        let ids: Vec<String> = gone.iter().map(|entry| entry.document_id.clone()).collect();
        sink.delete(&ids).await?;
        for entry in gone {
            self.connectors
                .forget_document(&record.id, &entry.source_id)
                .await?;
            run.counts.deleted += 1;
        }
        Ok(())
    }
}
