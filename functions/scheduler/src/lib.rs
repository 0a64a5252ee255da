//! `scheduler`: on every EventBridge tick, enqueues a sync for each connector whose interval
//! has passed. Marking the connector (a version-checked write) before enqueueing means two
//! overlapping ticks cannot both enqueue it.

use tributary::store::{now_epoch_seconds, StoreError};
use tributary::sync::{SyncEngine, SyncError, SyncMessage};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    pub checked: usize,
    pub enqueued: usize,
}

pub async fn tick(engine: &SyncEngine) -> Result<Tick, SyncError> {
    let now = now_epoch_seconds();
    let mut summary = Tick::default();
    let mut cursor = None;
    loop {
        let (records, next) = engine.connectors.all(cursor).await?;
        for mut record in records {
            summary.checked += 1;
            // The index may lag: decide on the item itself.
            let Some(current) = engine
                .connectors
                .get(&record.workspace_id, &record.id)
                .await?
            else {
                continue;
            };
            record = current;
            if !record.is_due(now) {
                continue;
            }
            record.last_scheduled_at = Some(now);
            match engine.connectors.update(&record).await {
                Ok(()) => {}
                Err(StoreError::ConditionFailed) => continue,
                Err(error) => return Err(error.into()),
            }
            engine
                .queues
                .enqueue(record.source, &SyncMessage::new(&record.id, "schedule"))
                .await?;
            summary.enqueued += 1;
        }
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    tracing::info!(
        checked = summary.checked,
        enqueued = summary.enqueued,
        "scheduler tick"
    );
    Ok(summary)
}
