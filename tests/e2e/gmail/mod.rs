//! The Gmail connector against a fake Gmail (tests/support/fake_gmail): full syncs, the
//! change feed (new message, reply, delete, trash, spam, label change, restore), expired
//! history, kill-at-random resumes, 2,000 threads, the service-account path with several
//! users, the OAuth connection path through the sync engine, HTML-only mail and
//! attachments.

mod auth;
mod full;
mod incremental;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use tributary::connectors::document::Document;
use tributary::connectors::gmail::{GmailConfig, GmailConnector};
use tributary::connectors::kit::{AccessToken, SourceAuth};
use tributary::connectors::{Batch, Connector};
use tributary::http::RetryPolicy;
use tributary_e2e::fake_gmail::FakeGmail;
use tributary_e2e::google::TokenBook;

pub(crate) const ADA: &str = "ada@example.com";
pub(crate) const BOB: &str = "bob@example.com";
pub(crate) const CAROL: &str = "carol@example.com";

pub(crate) fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(5),
    }
}

pub(crate) fn http() -> tributary::http::GuardedClient {
    tributary_e2e::app::loopback_client(Duration::from_secs(10))
}

/// A fake with `mailboxes` and a bearer token acting for the first one (the connected user).
pub(crate) async fn fake(mailboxes: &[(&str, usize)]) -> (FakeGmail, TokenBook, SourceAuth) {
    let book = TokenBook::new();
    let fake = FakeGmail::start(book.clone(), mailboxes).await;
    let token = format!("ya29.connected-{}", mailboxes[0].0);
    book.allow(&token, mailboxes[0].0);
    (fake, book, SourceAuth::Bearer(AccessToken::new(token)))
}

pub(crate) fn config(extra: Value) -> GmailConfig {
    serde_json::from_value(extra).expect("a Gmail config")
}

/// An unpaced connector (the fake has no quota) on `fake`.
pub(crate) fn connector(fake: &FakeGmail, auth: SourceAuth, extra: Value) -> GmailConnector {
    GmailConnector::with_quota(
        "gmail-test",
        config(extra),
        auth,
        http(),
        retry(),
        fake.api_base(),
        None,
    )
    .expect("a connector")
}

/// Like the engine: the checkpoint goes through storage as text.
pub(crate) fn stored(checkpoint: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(checkpoint).expect("serialise")).expect("parse")
}

/// Pulls until done from `start`; every batch.
pub(crate) async fn pass(connector: &GmailConnector, start: Option<Value>) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut checkpoint = start;
    for _ in 0..2_000 {
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

pub(crate) fn last_checkpoint(batches: &[Batch]) -> Value {
    stored(&batches.last().expect("a batch").checkpoint)
}

/// The sink as the engine keeps it: batches applied in order (documents written, feed
/// tombstones deleted), and the prune after a complete pass (the slim listing).
#[derive(Default, Debug)]
pub(crate) struct Mirror {
    pub(crate) documents: BTreeMap<String, Document>,
    /// Every write, to count re-deliveries.
    pub(crate) writes: usize,
}

impl Mirror {
    pub(crate) fn apply(&mut self, batch: &Batch) {
        for document in &batch.documents {
            self.writes += 1;
            self.documents
                .insert(document.source_id.clone(), document.clone());
        }
        for gone in &batch.deleted {
            self.documents.remove(gone);
        }
    }

    pub(crate) fn apply_all(&mut self, batches: &[Batch]) {
        for batch in batches {
            self.apply(batch);
        }
    }

    /// The engine's prune after a completed run: documents the slim listing lacks go.
    pub(crate) async fn prune(&mut self, connector: &GmailConnector) -> usize {
        let listed = list_all(connector).await;
        let before = self.documents.len();
        self.documents.retain(|id, _| listed.contains(id));
        before - self.documents.len()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.documents.keys().cloned().collect()
    }

    pub(crate) fn get(&self, user: &str, thread_id: &str) -> &Document {
        self.documents
            .get(&format!("{user}:{thread_id}"))
            .unwrap_or_else(|| panic!("no document for {user}:{thread_id}"))
    }

    /// `source_id` → content hash, to compare two mirrors.
    pub(crate) fn hashes(&self) -> BTreeMap<String, String> {
        self.documents
            .iter()
            .map(|(id, document)| (id.clone(), document.content_hash()))
            .collect()
    }
}

/// Every id of the slim listing, all pages.
pub(crate) async fn list_all(connector: &GmailConnector) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1_000 {
        let page = connector
            .list_ids(cursor.as_deref())
            .await
            .expect("a listing page");
        ids.extend(page.source_ids);
        cursor = page.next;
        if cursor.is_none() {
            return ids;
        }
    }
    panic!("the listing never ended");
}

/// The source ids `mailbox`'s default scope should hold (outside SPAM and TRASH), as the
/// connector names them (`<userId>:<threadId>`, `userId` = `me` for the connected user).
pub(crate) fn expected_ids(fake: &FakeGmail, mailbox: &str, user_id: &str) -> Vec<String> {
    let mut ids: Vec<String> = fake
        .threads_in_scope(mailbox)
        .into_iter()
        .map(|thread| format!("{user_id}:{}", thread.id))
        .collect();
    ids.sort();
    ids
}
