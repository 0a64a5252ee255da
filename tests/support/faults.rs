//! Fault injection for the store: a `Table` that fails chosen writes, to crash a sync
//! between delivering a batch and saving its checkpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use tributary::store::{Item, Key, Page, Query, StoreError, Table, WriteOp};

/// Fails every `every`-th checkpoint write (a deterministic "random" crash point).
pub struct CheckpointCrashes {
    inner: Arc<dyn Table>,
    every: u64,
    writes: AtomicU64,
    pub crashes: AtomicU64,
}

impl CheckpointCrashes {
    pub fn new(inner: Arc<dyn Table>, every: u64) -> Self {
        Self {
            inner,
            every: every.max(1),
            writes: AtomicU64::new(0),
            crashes: AtomicU64::new(0),
        }
    }

    fn crash(&self, key: &Key) -> Result<(), StoreError> {
        if key.sk != "CHECKPOINT" {
            return Ok(());
        }
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(self.every) {
            self.crashes.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Backend(
                "injected crash before the checkpoint".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Table for CheckpointCrashes {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.crash(&item.key)?;
        self.inner.put(item).await
    }
    async fn put_if_absent(&self, item: Item) -> Result<(), StoreError> {
        self.crash(&item.key)?;
        self.inner.put_if_absent(item).await
    }
    async fn update_if_version(&self, item: Item, expected: u64) -> Result<(), StoreError> {
        self.crash(&item.key)?;
        self.inner.update_if_version(item, expected).await
    }
    async fn delete(&self, key: &Key) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.inner.transact(ops).await
    }
}
