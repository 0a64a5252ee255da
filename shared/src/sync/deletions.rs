//! Deletions: tombstones from a source's change feed, applied with their batch, and the
//! prune that removes what a *complete* slim listing no longer has.

use std::collections::HashSet;

use super::{SyncEngine, SyncError};
use crate::sinks::Sink;
use crate::store::connectors::{ConnectorRecord, RunRecord};

impl SyncEngine {
    /// Removes what the source's change feed reports gone (before the batch's documents,
    /// so a file deleted and re-created within one batch ends up present). Ids never
    /// delivered are ignored.
    pub(super) async fn apply_tombstones(
        &self,
        record: &ConnectorRecord,
        sink: &dyn Sink,
        source_ids: &[String],
        run: &mut RunRecord,
    ) -> Result<(), SyncError> {
        let mut gone = Vec::new();
        for source_id in source_ids.iter().collect::<HashSet<_>>() {
            if let Some(entry) = self.connectors.document(&record.id, source_id).await? {
                gone.push(entry);
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
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

    /// Removes from the sink what the source no longer has, only after a complete listing.
    pub(super) async fn prune(&self, record: &ConnectorRecord, run: &mut RunRecord) {
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
        let connector = self.connector(record).await?;
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
        let sink = self.sink_for(record)?;
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
