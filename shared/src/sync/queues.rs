//! Where sync messages go: one queue per source, and how long a deferred message waits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{SyncError, SyncMessage, MAX_BUSY_DELAY};
use crate::queue::Queue;
use crate::store::connectors::{Lease, SourceKind};

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

    /// Like [`SyncQueues::enqueue`], invisible to receivers for `delay`.
    pub async fn enqueue_delayed(
        &self,
        source: SourceKind,
        message: &SyncMessage,
        delay: Duration,
    ) -> Result<(), SyncError> {
        let queue = self
            .queues
            .get(&source)
            .ok_or(SyncError::NoQueue(source.as_str()))?;
        queue
            .send_batch_delayed(vec![message.body()], delay)
            .await?;
        Ok(())
    }
}

/// How long a message that met `lease` waits: until the lease can have expired, and at
/// least an exponentially growing floor, so a connector that stays busy costs a message
/// every few minutes, not a hot loop.
pub fn busy_delay(lease: &Lease, attempt: u32, now: i64) -> Duration {
    let until_free = u64::try_from(lease.until.saturating_sub(now)).unwrap_or(0) + 1;
    let floor = 5u64.saturating_mul(1u64 << attempt.min(10));
    Duration::from_secs(until_free.max(floor)).min(MAX_BUSY_DELAY)
}
