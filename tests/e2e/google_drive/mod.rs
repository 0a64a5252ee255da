//! The Google Drive connector against the fake Drive: exact full syncs that resume from any
//! checkpoint, incremental syncs from the change feed (add, edit, move, trash, restore,
//! delete, uploads keeping an old modifiedTime, view-only touches), an expired cursor,
//! kill-at-random resumption, 2,000 files, service-account delegation for several users,
//! and (engine.rs) the OAuth connection path with a token refresh through the sync engine.

mod changes;
mod engine;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use tributary::connectors::document::Document;
use tributary::connectors::google_drive::{GoogleDriveConfig, GoogleDriveConnector};
use tributary::connectors::{Batch, Connector, Credentials};
use tributary::http::RetryPolicy;
use tributary_e2e::fake_google_drive::{FakeGoogleDrive, NewFile, Permission};
use tributary_e2e::google::{TokenBook, CONNECTED_USER};

pub const ADA: &str = "ada@example.com";
pub const BOB: &str = "bob@example.com";
pub const ADMIN: &str = "admin@example.com";
pub const OWNER_TOKEN: &str = "ya29.owner-test-token";

pub fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(5),
    }
}

pub fn http() -> tributary::http::GuardedClient {
    tributary_e2e::app::loopback_client(Duration::from_secs(10))
}

/// The standard corpus: the connected user's My Drive, a file Ada shares with them, and a
/// shared drive both are members of.
pub struct Corpus {
    pub projects: String,
    pub archive: String,
    pub plan: String,
    pub budget: String,
    pub deck: String,
    pub report: String,
    pub notes: String,
    pub old_plan: String,
    pub readme: String,
    pub diagram: String,
    pub adas: String,
    pub drive: String,
    pub runbook: String,
    pub specs: String,
    pub api_spec: String,
}

impl Corpus {
    /// What a default configuration ({}) syncs.
    pub fn everything(&self) -> BTreeSet<String> {
        [
            &self.plan,
            &self.budget,
            &self.deck,
            &self.report,
            &self.notes,
            &self.old_plan,
            &self.readme,
            &self.runbook,
            &self.api_spec,
        ]
        .into_iter()
        .cloned()
        .collect()
    }

    /// What `folder_ids: [projects]` syncs.
    pub fn projects_tree(&self) -> BTreeSet<String> {
        [
            &self.plan,
            &self.budget,
            &self.deck,
            &self.report,
            &self.notes,
            &self.old_plan,
        ]
        .into_iter()
        .cloned()
        .collect()
    }
}

pub const PLAN: &str =
    "# Plan\n\nShip **v2**.\n\n| Step | Owner |\n| --- | --- |\n| Build | Ada |\n";

pub async fn world() -> (FakeGoogleDrive, TokenBook, Corpus) {
    let book = TokenBook::new();
    book.allow(OWNER_TOKEN, CONNECTED_USER);
    let fake = FakeGoogleDrive::start(book.clone(), &[CONNECTED_USER, ADA, BOB, ADMIN]).await;
    let me = CONNECTED_USER;
    let projects = fake.add(NewFile::folder("Projects").owner(me));
    let archive = fake.add(NewFile::folder("Archive").owner(me).under(&projects));
    let plan = fake.add(NewFile::doc("Plan", PLAN).owner(me).under(&projects));
    let budget = fake.add(
        NewFile::sheet(
            "Budget",
            &[
                ("Q1", &[&["Item", "Cost"], &["Laptops", "1200"]]),
                ("Q2", &[&["Item", "Cost"], &["Desks", "800"]]),
            ],
        )
        .owner(me)
        .under(&projects),
    );
    let deck = fake.add(
        NewFile::slides("Deck", "Roadmap\n\nQ3: launch")
            .owner(me)
            .under(&projects),
    );
    let report = fake.add(
        NewFile::binary(
            "report.pdf",
            "application/pdf",
            b"%PDF-1.7 quarterly numbers",
        )
        .owner(me)
        .under(&projects),
    );
    let notes = fake.add(
        NewFile::binary("notes.txt", "text/plain", b"plain notes\n")
            .owner(me)
            .under(&projects),
    );
    let old_plan = fake.add(
        NewFile::doc("Old plan", "# Old plan\n")
            .owner(me)
            .under(&archive),
    );
    let readme = fake.add(
        NewFile::doc("Readme", "# Readme\n")
            .owner(me)
            .shared_with(Permission::domain("example.com")),
    );
    let diagram = fake.add(NewFile::drawing("Diagram").owner(me));
    let adas = fake.add(
        NewFile::doc("Ada's notes", "# Ada\n")
            .owner(ADA)
            .shared_with(Permission::user(me, "reader")),
    );
    let drive = fake.create_shared_drive("Engineering", &[me, ADA]);
    let runbook = fake.add(NewFile::doc("Runbook", "# Runbook\n").in_drive(&drive));
    let specs = fake.add(NewFile::folder("Specs").in_drive(&drive));
    let api_spec = fake.add(NewFile::doc("API spec", "# API\n").under(&specs));
    let corpus = Corpus {
        projects,
        archive,
        plan,
        budget,
        deck,
        report,
        notes,
        old_plan,
        readme,
        diagram,
        adas,
        drive,
        runbook,
        specs,
        api_spec,
    };
    (fake, book, corpus)
}

pub fn config(extra: Value) -> GoogleDriveConfig {
    serde_json::from_value(extra).expect("a Google Drive config")
}

pub fn owner_credentials() -> Credentials {
    Credentials::Bearer {
        token: OWNER_TOKEN.into(),
    }
}

pub fn connector_with(
    fake: &FakeGoogleDrive,
    extra: Value,
    credentials: Credentials,
) -> GoogleDriveConnector {
    GoogleDriveConnector::new(
        "drive-test",
        config(extra),
        credentials,
        http(),
        retry(),
        fake.drive_base(),
    )
    .expect("a connector")
    .with_sheets_base(fake.sheets_base())
}

pub fn drive(fake: &FakeGoogleDrive, extra: Value) -> GoogleDriveConnector {
    connector_with(fake, extra, owner_credentials())
}

/// Like the engine: the checkpoint goes through storage as text.
pub fn stored(checkpoint: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(checkpoint).expect("serialise"))
        .expect("deserialise")
}

pub async fn pull_pass(connector: &GoogleDriveConnector, start: Option<Value>) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut checkpoint = start;
    for _ in 0..2000 {
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
        .map(|document| document.source_id.clone())
        .collect()
}

pub fn deleted(batches: &[Batch]) -> BTreeSet<String> {
    batches
        .iter()
        .flat_map(|batch| batch.deleted.iter().cloned())
        .collect()
}

pub fn last_checkpoint(batches: &[Batch]) -> Value {
    stored(&batches.last().expect("a batch").checkpoint)
}

pub async fn list_all(connector: &GoogleDriveConnector) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page = connector
            .list_ids(cursor.as_deref())
            .await
            .expect("a listing page");
        ids.extend(page.source_ids);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("the listing never finished");
}

pub fn by_id<'a>(batches: &'a [Batch], id: &str) -> &'a Document {
    documents(batches)
        .into_iter()
        .find(|doc| doc.source_id == id)
        .unwrap_or_else(|| panic!("no document for {id}"))
}

#[tokio::test]
async fn a_full_sync_is_exact_and_resumes_from_every_checkpoint() {
    let (fake, _book, corpus) = world().await;
    let connector = drive(&fake, json!({ "batch_size": 2 }));
    connector.test_connection().await.expect("connection");
    fake.clear_requests();

    let batches = pull_pass(&connector, None).await;
    let docs = documents(&batches);
    assert_eq!(source_ids(&batches), corpus.everything());
    assert_eq!(docs.len(), corpus.everything().len(), "each file once");
    assert!(deleted(&batches).is_empty());

    // The start token is taken before anything is listed.
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/drive/v3/changes/startPageToken");
    let listings: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/drive/v3/files")
        .collect();
    assert!(!listings.is_empty());
    for listing in &listings {
        assert_eq!(listing.param("supportsAllDrives"), Some("true"));
        assert_eq!(listing.param("includeItemsFromAllDrives"), Some("true"));
        assert!(listing
            .param("q")
            .is_some_and(|q| q.contains("trashed = false")));
        assert!(listing
            .param("fields")
            .is_some_and(|f| f.starts_with("nextPageToken,files(")));
    }
    assert!(listings.iter().any(|l| l.param("corpora") == Some("drive")
        && l.param("driveId") == Some(corpus.drive.as_str())));

    // Content: Docs as markdown, every sheet, Slides as text, files as files or markdown.
    let plan = by_id(&batches, &corpus.plan);
    assert_eq!(plan.markdown, PLAN);
    assert_eq!(plan.title.as_deref(), Some("Plan"));
    assert_eq!(plan.source, "google_drive");
    assert_eq!(
        plan.id,
        Document::stable_id("connector:drive-test", &corpus.plan)
    );
    assert_eq!(plan.metadata["path"], json!("/My Drive/Projects/Plan"));
    assert_eq!(plan.metadata["owners"], json!([CONNECTED_USER]));
    assert_eq!(
        plan.metadata["mime_type"],
        json!("application/vnd.google-apps.document")
    );
    assert!(plan
        .url
        .as_deref()
        .is_some_and(|u| u.contains(&corpus.plan)));
    assert_eq!(plan.acl, vec![format!("user:{CONNECTED_USER}")]);
    let budget = by_id(&batches, &corpus.budget);
    for piece in [
        "# Budget",
        "## Q1",
        "| Laptops | 1200 |",
        "## Q2",
        "| Desks | 800 |",
    ] {
        assert!(
            budget.markdown.contains(piece),
            "{piece:?} in {}",
            budget.markdown
        );
    }
    assert_eq!(budget.metadata["sheets"], json!("all"));
    assert_eq!(
        by_id(&batches, &corpus.deck).markdown,
        "Roadmap\n\nQ3: launch"
    );
    let report = by_id(&batches, &corpus.report);
    let file = report.file.as_ref().expect("a file document");
    assert_eq!(file.mime_type, "application/pdf");
    assert_eq!(file.size, 26);
    assert!(report.markdown.is_empty());
    assert_eq!(by_id(&batches, &corpus.notes).markdown, "plain notes\n");
    let readme = by_id(&batches, &corpus.readme);
    assert_eq!(
        readme.acl,
        vec![
            "domain:example.com".to_owned(),
            format!("user:{CONNECTED_USER}")
        ]
    );
    let runbook = by_id(&batches, &corpus.runbook);
    assert_eq!(runbook.metadata["path"], json!("/Engineering/Runbook"));
    assert_eq!(runbook.metadata["drive_id"], json!(corpus.drive));
    assert_eq!(
        runbook.acl,
        vec![format!("user:{ADA}"), format!("user:{CONNECTED_USER}")],
        "shared-drive permissions come from permissions.list"
    );
    assert_eq!(
        by_id(&batches, &corpus.api_spec).metadata["path"],
        json!("/Engineering/Specs/API spec")
    );
    // Drawings and others' files are not synced; neither are folders.
    for id in [
        &corpus.diagram,
        &corpus.adas,
        &corpus.projects,
        &corpus.specs,
    ] {
        assert!(!source_ids(&batches).contains(id));
    }

    // The slim listing agrees.
    assert_eq!(list_all(&connector).await, corpus.everything());

    // Resuming from any saved checkpoint gives exactly the batch that followed it.
    for index in 0..batches.len() - 1 {
        let resumed = drive(&fake, json!({ "batch_size": 2 }))
            .pull(Some(&stored(&batches[index].checkpoint)))
            .await
            .expect("a resumed batch");
        let next = &batches[index + 1];
        assert_eq!(resumed.documents, next.documents, "batch {}", index + 1);
        assert_eq!(resumed.deleted, next.deleted);
        assert_eq!(stored(&resumed.checkpoint), stored(&next.checkpoint));
        assert_eq!(resumed.done, next.done);
    }
    let end = last_checkpoint(&batches);
    assert_eq!(end["tasks"], json!([]));
    assert_eq!(end["feeds"].as_array().map(Vec::len), Some(1));

    // A sync with nothing changed reads the feed only.
    fake.clear_requests();
    let quiet = pull_pass(&connector, Some(end)).await;
    assert!(documents(&quiet).is_empty() && deleted(&quiet).is_empty());
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.path == "/drive/v3/changes"));
    let feed = &fake.requests()[0];
    assert_eq!(feed.param("includeRemoved"), Some("true"));
    assert_eq!(feed.param("supportsAllDrives"), Some("true"));
}

#[tokio::test]
async fn two_thousand_files_sync_exactly() {
    let (fake, _book, corpus) = world().await;
    let root = fake.root_of(CONNECTED_USER);
    let bulk: BTreeSet<String> = fake
        .populate(CONNECTED_USER, &root, 2_000)
        .into_iter()
        .collect();
    let connector = drive(
        &fake,
        json!({ "include_shared_drives": false, "batch_size": 200 }),
    );
    let batches = pull_pass(&connector, None).await;
    let mut expected = bulk.clone();
    expected.extend(corpus.projects_tree());
    expected.insert(corpus.readme.clone());
    assert_eq!(source_ids(&batches), expected);
    assert_eq!(documents(&batches).len(), expected.len());
    assert_eq!(list_all(&connector).await, expected);
    let failures: usize = batches.iter().map(|b| b.failures.len()).sum();
    assert_eq!(failures, 0);
    // The folders of 100 show in the paths.
    let first = bulk.iter().next().expect("a file");
    assert!(by_id(&batches, first).metadata["path"]
        .as_str()
        .is_some_and(|p| p.starts_with("/My Drive/Batch 0/File ")));
}

/// `(source id, content hash)` of every document, for comparing runs.
pub fn contents(batches: &[Batch]) -> BTreeMap<String, String> {
    documents(batches)
        .into_iter()
        .map(|doc| (doc.source_id.clone(), doc.content_hash()))
        .collect()
}
