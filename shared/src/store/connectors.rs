//! Connectors and their sync state (DESIGN §2): the connector (`WS#<ws>`/`CONNECTOR#<id>`,
//! also on GSI1 under `CONNECTORS` for lookup by id and the scheduler), its checkpoint,
//! lease, runs and document map (`CONNECTOR#<id>`/`CHECKPOINT`, `LEASE`, `RUN#…`, `DOC#…`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    decode_item, decode_page, now_epoch_seconds, record_attributes, Attributes, Index, Item, Key,
    Query, StoreError, Table, WriteOp,
};
pub use crate::connectors::SourceKind;
use crate::sinks::SinkConfig;
use crate::webhooks::WebhookScheme;

const CONNECTORS_INDEX: &str = "CONNECTORS";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookSettings {
    pub scheme: WebhookScheme,
    /// The shared secret, sealed (never returned).
    pub secret_sealed: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConnectorRecord {
    pub id: String,
    pub workspace_id: String,
    pub source: SourceKind,
    pub name: String,
    /// The source's configuration (no secrets).
    pub config: Value,
    /// The credentials, sealed by the vault and bound to the connector id.
    pub credentials_sealed: String,
    pub sink: SinkConfig,
    /// The sink's own credential (RAGFlow API key or webhook secret), sealed and bound to
    /// the workspace and connector (never returned). None: a directory sink, or a sink
    /// stored before sinks had credentials (it works only where the operator pinned it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_secret_sealed: Option<String>,
    /// Minutes between scheduled syncs (≥ 1); None: manual and webhook triggers only.
    pub schedule_minutes: Option<u32>,
    pub webhook: Option<WebhookSettings>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the scheduler last enqueued a sync.
    pub last_scheduled_at: Option<i64>,
    #[serde(skip)]
    pub item_version: u64,
}

impl ConnectorRecord {
    /// The owner the sink credential is sealed for.
    pub fn sink_owner(&self) -> crate::sinks::SinkOwner<'_> {
        crate::sinks::SinkOwner::Connector {
            workspace_id: &self.workspace_id,
            connector_id: &self.id,
        }
    }

    /// Due when it has a schedule and its interval has passed since it was last enqueued.
    pub fn is_due(&self, now: i64) -> bool {
        match self.schedule_minutes {
            Some(minutes) => self
                .last_scheduled_at
                .is_none_or(|at| now - at >= i64::from(minutes) * 60),
            None => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Completed,
    Failed,
    /// Left `running` by a holder that died (its lease expired); closed by the next holder.
    Interrupted,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunCounts {
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub failed: u64,
    /// Files the source left out on purpose (larger than its `max_file_bytes`).
    pub skipped: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: String,
    pub connector_id: String,
    pub trigger: String,
    pub status: RunStatus,
    pub counts: RunCounts,
    /// The first errors (bounded), e.g. documents the source could not provide.
    pub errors: Vec<String>,
    /// How many invocations the run took (continuations + 1).
    pub invocations: u32,
    /// Whether deletions were applied (only after a complete listing).
    pub pruned: Option<bool>,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

pub const MAX_RUN_ERRORS: usize = 20;

impl RunRecord {
    pub fn note_error(&mut self, error: impl Into<String>) {
        if self.errors.len() < MAX_RUN_ERRORS {
            self.errors.push(error.into());
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocumentEntry {
    pub source_id: String,
    pub document_id: String,
    pub content_hash: String,
    pub delivered_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    pub value: Value,
    pub item_version: u64,
}

/// A run's key parts: `(started_at, id)`.
pub type RunRef = (i64, String);

/// The `LEASE` item: one sync per connector at a time. `until` is an attribute rather than
/// the item's TTL so that an expired lease is still readable: the next holder learns which
/// run the dead holder was serving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    /// Epoch seconds; the lease is free from then on.
    pub until: i64,
    /// The run the holder serves; kept across hand-overs, cleared when the run ends.
    #[serde(default)]
    pub run: Option<RunRef>,
}

impl Lease {
    pub fn is_live(&self, now: i64) -> bool {
        self.until > now
    }

    fn from_item(item: &Item) -> Self {
        let attributes = &item.attributes;
        Self {
            holder: attributes
                .get("holder")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            // Leases written before `until` existed expired by item TTL.
            until: attributes
                .get("until")
                .and_then(Value::as_i64)
                .or(item.expires_at)
                .unwrap_or(0),
            run: attributes
                .get("run")
                .and_then(|run| serde_json::from_value(run.clone()).ok()),
        }
    }

    fn item(&self, key: &Key) -> Item {
        let mut attributes = Attributes::new();
        attributes.insert("holder".into(), self.holder.clone().into());
        attributes.insert("until".into(), self.until.into());
        if let Some(run) = &self.run {
            attributes.insert("run".into(), serde_json::json!([run.0, run.1]));
        }
        Item::new(key.clone(), attributes)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseClaim {
    /// Taken; `previous` is the lease item it replaced, if any.
    Acquired { previous: Option<Lease> },
    /// Another holder has it (who, and until when).
    Busy(Lease),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerSlot {
    /// Trigger now.
    Now,
    /// Trigger once at this time (epoch s), the end of the current window.
    Trailing(i64),
    /// A trigger is already planned: nothing to do.
    Coalesced,
}

fn lease_key(connector_id: &str) -> Key {
    Key::new(state_pk(connector_id), "LEASE")
}

fn connector_key(workspace_id: &str, id: &str) -> Key {
    Key::new(format!("WS#{workspace_id}"), format!("CONNECTOR#{id}"))
}

fn state_pk(connector_id: &str) -> String {
    format!("CONNECTOR#{connector_id}")
}

fn run_sk(run: &RunRecord) -> String {
    // Newest last in key order; the id makes two runs of one second distinct.
    format!("RUN#{:012}#{}", run.started_at, run.id)
}

fn connector_item(record: &ConnectorRecord) -> Result<Item, StoreError> {
    let key = connector_key(&record.workspace_id, &record.id);
    Ok(Item::new(key.clone(), record_attributes(record, &key)?)
        .with_gsi1(Key::new(CONNECTORS_INDEX, record.id.clone())))
}

#[derive(Clone)]
pub struct Connectors {
    table: Arc<dyn Table>,
}

impl Connectors {
    pub fn new(table: Arc<dyn Table>) -> Self {
        Self { table }
    }

    pub async fn create(&self, record: &ConnectorRecord) -> Result<(), StoreError> {
        self.table.put_if_absent(connector_item(record)?).await
    }

    pub async fn get(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<ConnectorRecord>, StoreError> {
        let Some(item) = self.table.get(&connector_key(workspace_id, id)).await? else {
            return Ok(None);
        };
        let (mut record, version): (ConnectorRecord, u64) = decode_item(item)?;
        record.item_version = version;
        Ok(Some(record))
    }

    /// By id alone (sync messages, webhooks): the GSI1 entry, then the item itself.
    pub async fn by_id(&self, id: &str) -> Result<Option<ConnectorRecord>, StoreError> {
        let page = self
            .table
            .query(Query::new(CONNECTORS_INDEX, id).on(Index::Gsi1).limit(2))
            .await?;
        for item in page.items {
            let (record, _): (ConnectorRecord, u64) = decode_item(item)?;
            if record.id == id {
                // The index is eventually consistent: read the item for its current version.
                return self.get(&record.workspace_id, id).await;
            }
        }
        Ok(None)
    }

    /// A page of a workspace's connectors.
    pub async fn list(
        &self,
        workspace_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<ConnectorRecord>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::new(format!("WS#{workspace_id}"), "CONNECTOR#")
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        decode_page(page)
    }

    /// Every connector (the scheduler's sweep), a page at a time.
    pub async fn all(
        &self,
        cursor: Option<String>,
    ) -> Result<(Vec<ConnectorRecord>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::new(CONNECTORS_INDEX, "")
                    .on(Index::Gsi1)
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        decode_page(page)
    }

    /// Replaces the record if nobody changed it since it was read.
    pub async fn update(&self, record: &ConnectorRecord) -> Result<(), StoreError> {
        self.table
            .update_if_version(connector_item(record)?, record.item_version)
            .await
    }

    pub async fn delete(&self, record: &ConnectorRecord) -> Result<(), StoreError> {
        self.table
            .transact(vec![WriteOp::DeleteIfVersion {
                key: connector_key(&record.workspace_id, &record.id),
                expected: record.item_version,
            }])
            .await
    }

    /// Deletes every `CONNECTOR#<id>` item (checkpoint, lease, runs, document map, webhook
    /// deliveries), a page at a time; returns how many.
    pub async fn delete_state(&self, connector_id: &str) -> Result<usize, StoreError> {
        let mut deleted = 0;
        loop {
            // Each page is deleted before the next query, so the query restarts at the front.
            let page = self
                .table
                .query(Query::new(state_pk(connector_id), "").limit(100))
                .await?;
            if page.items.is_empty() {
                return Ok(deleted);
            }
            for item in page.items {
                self.table.delete(&item.key).await?;
                deleted += 1;
            }
        }
    }

    // --- sync state -------------------------------------------------------------------

    pub async fn checkpoint(&self, connector_id: &str) -> Result<Option<Checkpoint>, StoreError> {
        let key = Key::new(state_pk(connector_id), "CHECKPOINT");
        Ok(self.table.get(&key).await?.map(|item| Checkpoint {
            value: item.attributes.get("value").cloned().unwrap_or(Value::Null),
            item_version: item.version,
        }))
    }

    /// Forgets the checkpoint: the next sync reads the source from the beginning (after a
    /// configuration change that widens the scope). The document map keeps unchanged
    /// documents from being delivered again.
    pub async fn reset_checkpoint(&self, connector_id: &str) -> Result<(), StoreError> {
        self.table
            .delete(&Key::new(state_pk(connector_id), "CHECKPOINT"))
            .await
    }

    /// Saves the checkpoint if it is still the one read (`previous`); returns the new version.
    pub async fn save_checkpoint(
        &self,
        connector_id: &str,
        previous: Option<&Checkpoint>,
        value: Value,
    ) -> Result<Checkpoint, StoreError> {
        let mut attributes = Attributes::new();
        attributes.insert("value".into(), value.clone());
        let item = Item::new(Key::new(state_pk(connector_id), "CHECKPOINT"), attributes);
        let version = match previous {
            Some(previous) => {
                self.table
                    .update_if_version(item, previous.item_version)
                    .await?;
                previous.item_version + 1
            }
            None => {
                self.table.put_if_absent(item).await?;
                1
            }
        };
        Ok(Checkpoint {
            value,
            item_version: version,
        })
    }

    /// Takes the connector's lease until `until` (epoch s) for `holder`: free, expired, or
    /// handed to `handed_to` (a continuation's one-time token) — one conditional write, so
    /// exactly one claimant wins. [`LeaseClaim::Acquired`] carries the lease it replaced
    /// (its `run` may have been left `running` by a dead holder).
    pub async fn acquire_lease(
        &self,
        connector_id: &str,
        holder: &str,
        until: i64,
        handed_to: Option<&str>,
    ) -> Result<LeaseClaim, StoreError> {
        let key = lease_key(connector_id);
        let current = self.table.get(&key).await?;
        let previous = current.as_ref().map(Lease::from_item);
        let now = now_epoch_seconds();
        if let Some(lease) = previous.as_ref().filter(|lease| lease.is_live(now)) {
            if handed_to != Some(lease.holder.as_str()) {
                return Ok(LeaseClaim::Busy(lease.clone()));
            }
        }
        let claimed = Lease {
            holder: holder.to_owned(),
            until,
            run: previous.as_ref().and_then(|lease| lease.run.clone()),
        };
        let written = match &current {
            None => self.table.put_if_absent(claimed.item(&key)).await,
            Some(item) => {
                self.table
                    .update_if_version(claimed.item(&key), item.version)
                    .await
            }
        };
        match written {
            Ok(()) => Ok(LeaseClaim::Acquired { previous }),
            Err(StoreError::ConditionFailed) => Ok(match self.lease(connector_id).await? {
                Some(lease) => LeaseClaim::Busy(lease),
                None => LeaseClaim::Busy(claimed),
            }),
            Err(error) => Err(error),
        }
    }

    /// The connector's lease item (live or not).
    pub async fn lease(&self, connector_id: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self
            .table
            .get(&lease_key(connector_id))
            .await?
            .as_ref()
            .map(Lease::from_item))
    }

    /// Rewrites `holder`'s lease as `next` (a heartbeat's new `until`, the run it serves, a
    /// hand-over to a continuation's token, or a release with `until` in the past); `false`
    /// when `holder` no longer has it.
    pub async fn update_lease(
        &self,
        connector_id: &str,
        holder: &str,
        next: &Lease,
    ) -> Result<bool, StoreError> {
        let key = lease_key(connector_id);
        let Some(item) = self.table.get(&key).await? else {
            return Ok(false);
        };
        if Lease::from_item(&item).holder != holder {
            return Ok(false);
        }
        match self
            .table
            .update_if_version(next.item(&key), item.version)
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Releases the lease if `holder` still has it, remembering `run` when it is unfinished
    /// (so the next holder can close it as interrupted).
    pub async fn release_lease(
        &self,
        connector_id: &str,
        holder: &str,
        run: Option<RunRef>,
    ) -> Result<(), StoreError> {
        let released = Lease {
            holder: holder.to_owned(),
            until: 0,
            run,
        };
        self.update_lease(connector_id, holder, &released)
            .await
            .map(|_| ())
    }

    /// Remembers a webhook delivery (`DELIVERY#<id>`, TTL `expires_at`); `false` when it
    /// was seen before: a replay.
    pub async fn record_delivery(
        &self,
        connector_id: &str,
        delivery: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let key = Key::new(state_pk(connector_id), format!("DELIVERY#{delivery}"));
        let item = Item::new(key, Attributes::new()).with_expiry(Some(expires_at));
        match self.table.put_if_absent(item).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Forgets a delivery whose trigger could not be enqueued, so the provider's retry counts.
    pub async fn forget_delivery(
        &self,
        connector_id: &str,
        delivery: &str,
    ) -> Result<(), StoreError> {
        self.table
            .delete(&Key::new(
                state_pk(connector_id),
                format!("DELIVERY#{delivery}"),
            ))
            .await
    }

    /// The per-connector webhook trigger slot (`TRIGGER_SLOT`, live until `window_end`):
    /// [`TriggerSlot::Now`] for the first trigger of a window, [`TriggerSlot::Trailing`]
    /// (with the window's end) for the first one after it, so a change made while the
    /// first sync ran is still picked up, and [`TriggerSlot::Coalesced`] for the rest.
    pub async fn take_trigger_slot(
        &self,
        connector_id: &str,
        window_end: i64,
    ) -> Result<TriggerSlot, StoreError> {
        let key = Key::new(state_pk(connector_id), "TRIGGER_SLOT");
        let mut attributes = Attributes::new();
        attributes.insert("trailing".into(), false.into());
        let fresh = Item::new(key.clone(), attributes).with_expiry(Some(window_end));
        match self.table.put_if_absent(fresh).await {
            Ok(()) => return Ok(TriggerSlot::Now),
            Err(StoreError::ConditionFailed) => {}
            Err(error) => return Err(error),
        }
        let Some(mut slot) = self.table.get(&key).await? else {
            return Ok(TriggerSlot::Coalesced);
        };
        if slot.attributes.get("trailing").and_then(Value::as_bool) != Some(false) {
            return Ok(TriggerSlot::Coalesced);
        }
        let expected = slot.version;
        let end = slot.expires_at.unwrap_or(window_end);
        slot.attributes.insert("trailing".into(), true.into());
        match self.table.update_if_version(slot, expected).await {
            Ok(()) => Ok(TriggerSlot::Trailing(end)),
            Err(StoreError::ConditionFailed) => Ok(TriggerSlot::Coalesced),
            Err(error) => Err(error),
        }
    }

    pub async fn save_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let key = Key::new(state_pk(&run.connector_id), run_sk(run));
        self.table
            .put(Item::new(key.clone(), record_attributes(run, &key)?))
            .await
    }

    pub async fn run(
        &self,
        connector_id: &str,
        started_at: i64,
        run_id: &str,
    ) -> Result<Option<RunRecord>, StoreError> {
        let key = Key::new(
            state_pk(connector_id),
            format!("RUN#{started_at:012}#{run_id}"),
        );
        match self.table.get(&key).await? {
            Some(item) => Ok(Some(decode_item::<RunRecord>(item)?.0)),
            None => Ok(None),
        }
    }

    /// Runs, oldest first, a page at a time.
    pub async fn runs(
        &self,
        connector_id: &str,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<(Vec<RunRecord>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::new(state_pk(connector_id), "RUN#")
                    .limit(limit)
                    .after(cursor),
            )
            .await?;
        decode_page(page)
    }

    pub async fn document(
        &self,
        connector_id: &str,
        source_id: &str,
    ) -> Result<Option<DocumentEntry>, StoreError> {
        let key = Key::new(state_pk(connector_id), format!("DOC#{source_id}"));
        match self.table.get(&key).await? {
            Some(item) => Ok(Some(decode_item::<DocumentEntry>(item)?.0)),
            None => Ok(None),
        }
    }

    pub async fn record_document(
        &self,
        connector_id: &str,
        entry: &DocumentEntry,
    ) -> Result<(), StoreError> {
        let key = Key::new(state_pk(connector_id), format!("DOC#{}", entry.source_id));
        self.table
            .put(Item::new(key.clone(), record_attributes(entry, &key)?))
            .await
    }

    pub async fn forget_document(
        &self,
        connector_id: &str,
        source_id: &str,
    ) -> Result<(), StoreError> {
        self.table
            .delete(&Key::new(
                state_pk(connector_id),
                format!("DOC#{source_id}"),
            ))
            .await
    }

    /// The document map, a page at a time.
    pub async fn documents(
        &self,
        connector_id: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<DocumentEntry>, Option<String>), StoreError> {
        let page = self
            .table
            .query(
                Query::new(state_pk(connector_id), "DOC#")
                    .limit(500)
                    .after(cursor),
            )
            .await?;
        decode_page(page)
    }

    pub fn now() -> i64 {
        now_epoch_seconds()
    }
}
