//! Driving a connector the way the sync engine does, for source suites: whole passes of
//! pulls with the checkpoint stored as text between them, what they delivered, the slim
//! listing, and deterministic crash points for kill-at-random resumption.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tributary::connectors::document::Document;
use tributary::connectors::{Batch, Connector, ConnectorError};

/// Like the engine: the checkpoint goes through storage as text.
pub fn stored(checkpoint: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(checkpoint).expect("serialise"))
        .expect("deserialise")
}

/// Every batch of one pass from `start` until a batch says `done`.
pub async fn pull_pass(connector: &dyn Connector, start: Option<Value>) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut checkpoint = start;
    for _ in 0..5000 {
        let batch = connector.pull(checkpoint.as_ref()).await.expect("a batch");
        checkpoint = Some(stored(&batch.checkpoint));
        let done = batch.done;
        batches.push(batch);
        if done {
            return batches;
        }
    }
    panic!("the pass never finished");
}

pub fn documents(batches: &[Batch]) -> Vec<&Document> {
    batches.iter().flat_map(|batch| &batch.documents).collect()
}

pub fn source_ids(batches: &[Batch]) -> BTreeSet<String> {
    documents(batches)
        .iter()
        .map(|d| d.source_id.clone())
        .collect()
}

pub fn deleted(batches: &[Batch]) -> BTreeSet<String> {
    batches
        .iter()
        .flat_map(|b| b.deleted.iter().cloned())
        .collect()
}

pub fn failures(batches: &[Batch]) -> Vec<(String, String)> {
    batches
        .iter()
        .flat_map(|b| {
            b.failures
                .iter()
                .map(|f| (f.source_id.clone(), f.error.clone()))
        })
        .collect()
}

pub fn last_checkpoint(batches: &[Batch]) -> Value {
    stored(&batches.last().expect("a batch").checkpoint)
}

/// The whole slim listing.
pub async fn list_all(connector: &dyn Connector) -> Result<BTreeSet<String>, ConnectorError> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let page = connector.list_ids(cursor.as_deref()).await?;
        ids.extend(page.source_ids);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(ids),
        }
    }
    panic!("the listing never finished");
}

/// The last delivered markdown of every source id (what a sink holds after the pass).
pub fn markdown_by_id(batches: &[Batch]) -> BTreeMap<String, String> {
    documents(batches)
        .into_iter()
        .map(|d| (d.source_id.clone(), d.markdown.clone()))
        .collect()
}

/// A deterministic "random" set of crash points (xorshift) among `batches` pulls.
pub fn crash_points(seed: u64, batches: usize) -> BTreeSet<usize> {
    let mut x = seed;
    (0..batches / 3)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % batches.max(1) as u64) as usize
        })
        .collect()
}

/// One pass from `start` in which every pull numbered in `crashes` is lost (not
/// delivered, its checkpoint not saved) and a new connector from `make` resumes from the
/// last saved checkpoint, as after a killed Lambda.
pub async fn pass_with_crashes<C: Connector>(
    make: impl Fn() -> C,
    start: Option<Value>,
    crashes: &BTreeSet<usize>,
) -> Vec<Batch> {
    let mut saved = start;
    let mut delivered = Vec::new();
    for pulls in 1..100_000 {
        let batch = make().pull(saved.as_ref()).await.expect("a batch");
        if crashes.contains(&pulls) {
            continue;
        }
        saved = Some(stored(&batch.checkpoint));
        let done = batch.done;
        delivered.push(batch);
        if done {
            return delivered;
        }
    }
    panic!("no progress");
}
