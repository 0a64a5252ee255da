//! The lease heartbeat of a running sync.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::SyncError;
use crate::store::connectors::{Connectors, Lease, RunRecord, RunRef};
use crate::store::now_epoch_seconds;

/// Renews a lease every third of its TTL while a sync runs, in a task of its own (a batch
/// can take longer than the TTL). Stopped cooperatively, so no renewal lands after the
/// lease was handed over or released.
pub(super) struct Heartbeat {
    connectors: Connectors,
    connector_id: String,
    holder: String,
    run: Arc<Mutex<Option<RunRef>>>,
    lost: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Heartbeat {
    pub(super) fn start(
        connectors: Connectors,
        connector_id: &str,
        holder: &str,
        ttl: Duration,
    ) -> Self {
        let run = Arc::new(Mutex::new(None));
        let lost = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = {
            let (connectors, connector_id, holder) = (
                connectors.clone(),
                connector_id.to_owned(),
                holder.to_owned(),
            );
            let (run, lost) = (run.clone(), lost.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(ttl / 3);
                ticks.tick().await;
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {}
                        _ = &mut stopped => return,
                    }
                    let lease = Lease {
                        holder: holder.clone(),
                        until: now_epoch_seconds()
                            + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
                        run: run.lock().map(|run| run.clone()).unwrap_or(None),
                    };
                    match connectors
                        .update_lease(&connector_id, &holder, &lease)
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(%connector_id, "lease lost; the sync stops after this batch");
                            lost.store(true, Ordering::SeqCst);
                            return;
                        }
                        // A store hiccup: the lease still has most of its TTL; try again.
                        Err(error) => tracing::warn!(%connector_id, %error, "lease renewal failed"),
                    }
                }
            })
        };
        Self {
            connectors,
            connector_id: connector_id.to_owned(),
            holder: holder.to_owned(),
            run,
            lost,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Records the run the lease serves, in the lease item too.
    pub(super) async fn serve(&self, run: &RunRecord, until: i64) -> Result<(), SyncError> {
        let run_ref = (run.started_at, run.id.clone());
        if let Ok(mut current) = self.run.lock() {
            *current = Some(run_ref.clone());
        }
        let lease = Lease {
            holder: self.holder.clone(),
            until,
            run: Some(run_ref),
        };
        if self
            .connectors
            .update_lease(&self.connector_id, &self.holder, &lease)
            .await?
        {
            Ok(())
        } else {
            Err(SyncError::LeaseLost)
        }
    }

    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing (waiting for a renewal in flight); returns the run it served.
    pub(super) async fn stop(mut self) -> Option<RunRef> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.run.lock().map(|run| run.clone()).unwrap_or(None)
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        // Dropped without `stop` (the sync's future was cancelled): renew no more.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
