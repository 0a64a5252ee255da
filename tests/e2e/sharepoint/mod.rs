//! The SharePoint/OneDrive connector against the fake Graph: exact full syncs that resume
//! from any checkpoint (files, site pages, metadata), incremental syncs from drive delta
//! (changes.rs), an expired delta token, kill-at-random resumption, 5,000 items across 3
//! drives, client secret and certificate credentials, throttling, a locked site, downloads
//! without the bearer token, and (engine.rs) a delegated `microsoft` connection with a
//! refresh through the sync engine.

mod changes;
mod engine;
mod failures;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{json, Value};
use tributary::connectors::document::Document;
use tributary::connectors::sharepoint::{SharepointConfig, SharepointConnector};
use tributary::connectors::{Batch, Connector, Credentials};
use tributary::http::RetryPolicy;
use tributary_e2e::fake_graph::drives::NewFile;
use tributary_e2e::fake_graph::FakeGraph;
use tributary_e2e::microsoft::{client_secret_credentials, TENANT_ID};

pub const ADA: &str = "ada@contoso.example";
pub const ENG_URL: &str = "https://contoso.sharepoint.com/sites/Eng";
pub const HR_URL: &str = "https://contoso.sharepoint.com/sites/HR";
pub const PLAN: &str = "# Plan\n\nShip **v2** in Q3.\n";

pub fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(10),
    }
}

pub fn http() -> tributary::http::GuardedClient {
    tributary_e2e::app::loopback_client(Duration::from_secs(10))
}

/// The standard corpus: site Eng (libraries Documents and Specs, two pages), site HR
/// (Documents), Ada's OneDrive.
pub struct Corpus {
    pub eng: String,
    pub hr: String,
    pub eng_docs: String,
    pub eng_specs: String,
    pub hr_docs: String,
    pub ada_drive: String,
    pub plans: String,
    pub archive: String,
    pub plan: String,
    pub old: String,
    pub report: String,
    pub notes: String,
    pub api: String,
    pub policy: String,
    pub todo: String,
    pub home: String,
    pub news: String,
}

/// `<drive>:<item>`, the source id of a file.
pub fn sid(drive: &str, item: &str) -> String {
    format!("{drive}:{item}")
}

impl Corpus {
    pub fn files(&self) -> BTreeSet<String> {
        [
            (&self.eng_docs, &self.plan),
            (&self.eng_docs, &self.old),
            (&self.eng_docs, &self.report),
            (&self.eng_docs, &self.notes),
            (&self.eng_specs, &self.api),
            (&self.hr_docs, &self.policy),
            (&self.ada_drive, &self.todo),
        ]
        .into_iter()
        .map(|(d, i)| sid(d, i))
        .collect()
    }

    pub fn pages(&self) -> BTreeSet<String> {
        [&self.home, &self.news]
            .into_iter()
            .map(|p| format!("page:{}:{p}", self.eng))
            .collect()
    }

    pub fn everything(&self) -> BTreeSet<String> {
        let mut all = self.files();
        all.extend(self.pages());
        all
    }
}

pub fn home_canvas() -> Value {
    json!({
        "horizontalSections": [
            {"id": "1", "layout": "twoColumns", "columns": [
                {"id": "1", "width": 6, "webparts": [
                    {"@odata.type": "#microsoft.graph.textWebPart", "id": "w1",
                     "innerHtml": "<h2>Welcome</h2><p>The <strong>Eng</strong> hub. See <a href=\"/sites/Eng/Specs\">specs</a>.</p>"}
                ]},
                {"id": "2", "width": 6, "webparts": [
                    {"@odata.type": "#microsoft.graph.standardWebPart", "id": "w2",
                     "webPartType": "c70391ea-0b10-4ee9-b2b4-006d3fcad0cd",
                     "data": {"title": "Quick links", "description": "Where to start",
                              "serverProcessedContent": {"searchablePlainTexts": [{"key": "items[0].title", "value": "Onboarding guide"}]}}}
                ]}
            ]}
        ],
        "verticalSection": {"emphasis": "none", "webparts": [
            {"@odata.type": "#microsoft.graph.textWebPart", "id": "w3", "innerHtml": "<p>Contact: eng@contoso.example</p>"}
        ]}
    })
}

pub async fn world() -> (FakeGraph, Corpus) {
    let fake = FakeGraph::start().await;
    fake.start_downloads().await;
    let corpus = {
        let mut w = fake.drives();
        let eng = w.add_site("contoso.sharepoint.com", "/sites/Eng", "Engineering");
        let hr = w.add_site("contoso.sharepoint.com", "/sites/HR", "Human Resources");
        let eng_docs = w.add_library(&eng, "Documents");
        let eng_specs = w.add_library(&eng, "Specs");
        let hr_docs = w.add_library(&hr, "Documents");
        let ada_drive = w.add_user_drive(ADA);
        let plans = w.add_folder(&eng_docs, None, "Plans");
        let archive = w.add_folder(&eng_docs, Some(&plans), "Archive");
        let plan = w.add_file(
            &eng_docs,
            Some(&plans),
            NewFile::new("plan.md", PLAN.as_bytes()).by("Megan Bowen", "Megan@contoso.example"),
        );
        let old = w.add_file(
            &eng_docs,
            Some(&archive),
            NewFile::new("old.txt", b"old plan\n"),
        );
        let report = w.add_file(
            &eng_docs,
            None,
            NewFile::new("report.pdf", b"%PDF-1.7 quarterly numbers"),
        );
        let notes = w.add_file(
            &eng_docs,
            None,
            NewFile::new(
                "notes.html",
                b"<h1>Notes</h1><p>Standup at <em>10</em>.</p>",
            ),
        );
        let api = w.add_file(
            &eng_specs,
            None,
            NewFile::new("api.txt", b"GET /v1/things\n"),
        );
        let policy = w.add_file(&hr_docs, None, NewFile::new("policy.txt", b"Be kind.\n"));
        let todo = w.add_file(
            &ada_drive,
            None,
            NewFile::new("todo.txt", b"- ship\n").by("Ada Lovelace", ADA),
        );
        let home = w.add_page(&eng, "Home.aspx", "Home", home_canvas());
        let news = w.add_page(&eng, "News.aspx", "News", json!({"horizontalSections": [{"id": "1", "columns": [{"id": "1", "webparts": [
            {"@odata.type": "#microsoft.graph.textWebPart", "id": "n1", "innerHtml": "<p>We shipped.</p>"}]}]}]}));
        Corpus {
            eng,
            hr,
            eng_docs,
            eng_specs,
            hr_docs,
            ada_drive,
            plans,
            archive,
            plan,
            old,
            report,
            notes,
            api,
            policy,
            todo,
            home,
            news,
        }
    };
    (fake, corpus)
}

pub fn config(extra: Value) -> SharepointConfig {
    let mut base = json!({
        "tenant_id": TENANT_ID,
        "sites": [ENG_URL, HR_URL],
        "user_drives": [ADA],
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            base.insert(key.clone(), value.clone());
        }
    }
    serde_json::from_value(base).expect("a SharePoint config")
}

pub fn connector_with(
    fake: &FakeGraph,
    extra: Value,
    credentials: Credentials,
) -> SharepointConnector {
    SharepointConnector::new(
        "sp-test",
        config(extra),
        credentials,
        http(),
        retry(),
        fake.graph_base(),
        fake.login_base(),
    )
    .expect("a connector")
}

pub fn connector(fake: &FakeGraph, extra: Value) -> SharepointConnector {
    connector_with(fake, extra, client_secret_credentials())
}

pub use tributary_e2e::passes::{
    deleted, documents, failures, last_checkpoint, list_all, pull_pass, source_ids, stored,
};

pub fn by_id<'a>(batches: &'a [Batch], id: &str) -> &'a Document {
    documents(batches)
        .into_iter()
        .find(|doc| doc.source_id == id)
        .unwrap_or_else(|| panic!("no document for {id}"))
}

/// `(source id, content hash)` of every document, for comparing runs.
pub fn contents(batches: &[Batch]) -> BTreeMap<String, String> {
    documents(batches)
        .into_iter()
        .map(|d| (d.source_id.clone(), d.content_hash()))
        .collect()
}

#[tokio::test]
async fn a_full_sync_is_exact_and_resumes_from_every_checkpoint() {
    let (fake, corpus) = world().await;
    let sp = connector(&fake, json!({ "batch_size": 2 }));
    sp.test_connection().await.expect("connection");
    fake.clear_requests();

    let batches = pull_pass(&sp, None).await;
    assert_eq!(source_ids(&batches), corpus.everything());
    assert_eq!(
        documents(&batches).len(),
        corpus.everything().len(),
        "each item once"
    );
    assert!(deleted(&batches).is_empty());
    assert!(failures(&batches).is_empty(), "{:?}", failures(&batches));

    // Sites by path, then libraries, then delta with $select and $top.
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/sites/contoso.sharepoint.com:/sites/Eng");
    assert_eq!(requests[1].path, format!("/sites/{}/drives", corpus.eng));
    let deltas: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/root/delta"))
        .collect();
    assert!(deltas.iter().any(|r| r.param("$top") == Some("2")));
    for delta in &deltas {
        let select = delta
            .param("$select")
            .expect("$select (first page) or carried in the link");
        for field in [
            "deleted",
            "file",
            "folder",
            "parentReference",
            "size",
            "lastModifiedDateTime",
            "webUrl",
            "createdBy",
            "lastModifiedBy",
            "cTag",
            "eTag",
        ] {
            assert!(select.split(',').any(|f| f == field), "{field} in {select}");
        }
    }
    assert!(requests
        .iter()
        .any(|r| r.path == format!("/users/{ADA}/drive")));
    let page_list = requests
        .iter()
        .find(|r| r.path.ends_with("/pages/microsoft.graph.sitePage"))
        .expect("pages");
    assert_eq!(page_list.param("$expand"), Some("canvasLayout"));

    // Files: markdown for text, a file document for the PDF, metadata.
    let plan = by_id(&batches, &sid(&corpus.eng_docs, &corpus.plan));
    assert_eq!(plan.markdown, PLAN);
    assert_eq!(plan.title.as_deref(), Some("plan.md"));
    assert_eq!(plan.source, "sharepoint");
    assert_eq!(
        plan.id,
        Document::stable_id("connector:sp-test", &plan.source_id)
    );
    assert_eq!(plan.metadata["site"], json!("Engineering"));
    assert_eq!(plan.metadata["site_url"], json!(ENG_URL));
    assert_eq!(plan.metadata["library"], json!("Documents"));
    assert_eq!(plan.metadata["path"], json!("/Plans/plan.md"));
    assert_eq!(plan.metadata["author"], json!("Megan Bowen"));
    assert_eq!(
        plan.metadata["author_email"],
        json!("megan@contoso.example")
    );
    assert_eq!(
        plan.url.as_deref(),
        Some("https://contoso.sharepoint.com/sites/Eng/Documents/Plans/plan.md")
    );
    assert_eq!(plan.metadata["web_url"], json!(plan.url.clone()));
    assert!(plan.metadata["modified_time"]
        .as_str()
        .is_some_and(|t| t.starts_with("2026-01-05T")));
    assert!(plan.acl.is_empty(), "no acl without include_permissions");
    assert_eq!(
        by_id(&batches, &sid(&corpus.eng_docs, &corpus.old)).metadata["path"],
        json!("/Plans/Archive/old.txt")
    );
    let report = by_id(&batches, &sid(&corpus.eng_docs, &corpus.report));
    let file = report.file.as_ref().expect("a file document");
    assert_eq!(file.mime_type, "application/pdf");
    assert_eq!(file.size, 26);
    assert!(by_id(&batches, &sid(&corpus.eng_docs, &corpus.notes))
        .markdown
        .contains("# Notes"));
    assert_eq!(
        by_id(&batches, &sid(&corpus.eng_specs, &corpus.api)).metadata["library"],
        json!("Specs")
    );
    assert_eq!(
        by_id(&batches, &sid(&corpus.hr_docs, &corpus.policy)).metadata["site"],
        json!("Human Resources")
    );
    let todo = by_id(&batches, &sid(&corpus.ada_drive, &corpus.todo));
    assert_eq!(todo.metadata["drive_owner"], json!(ADA));
    assert!(todo.metadata.get("site").is_none());

    // Pages: every web part in order, as markdown.
    let home = by_id(&batches, &format!("page:{}:{}", corpus.eng, corpus.home));
    assert_eq!(home.title.as_deref(), Some("Home"));
    assert_eq!(
        home.url.as_deref(),
        Some("https://contoso.sharepoint.com/sites/Eng/SitePages/Home.aspx")
    );
    assert_eq!(home.metadata["kind"], json!("page"));
    let md = &home.markdown;
    let order = [
        "# Home",
        "## Welcome",
        "**Eng**",
        "[specs](https://contoso.sharepoint.com/sites/Eng/Specs)",
        "### Quick links",
        "Where to start",
        "Onboarding guide",
        "Contact: eng@contoso.example",
    ];
    let mut at = 0;
    for piece in order {
        let found = md[at..]
            .find(piece)
            .unwrap_or_else(|| panic!("{piece:?} after {at} in {md}"));
        at += found;
    }

    // Downloads went to the other origin, without the bearer token.
    let downloads = fake.drives().downloads.clone();
    assert_eq!(downloads.len(), corpus.files().len());
    assert!(
        downloads.iter().all(|d| d.authorization.is_none()),
        "{downloads:?}"
    );

    // The slim listing agrees.
    assert_eq!(list_all(&sp).await.expect("listing"), corpus.everything());

    // Resuming from any saved checkpoint gives exactly the batch that followed it.
    for index in 0..batches.len() - 1 {
        let resumed = connector(&fake, json!({ "batch_size": 2 }))
            .pull(Some(&stored(&batches[index].checkpoint)))
            .await
            .expect("a resumed batch");
        let next = &batches[index + 1];
        assert_eq!(
            contents(std::slice::from_ref(&resumed)),
            contents(std::slice::from_ref(next)),
            "batch {}",
            index + 1
        );
        assert_eq!(resumed.deleted, next.deleted);
        assert_eq!(resumed.done, next.done);
    }

    // Nothing changed: sites resolved, one delta call per drive, pages listed; nothing downloaded.
    let end = last_checkpoint(&batches);
    fake.clear_requests();
    let quiet = pull_pass(&sp, Some(end)).await;
    assert!(documents(&quiet).is_empty() && deleted(&quiet).is_empty());
    let requests = fake.requests();
    assert!(!requests.iter().any(|r| r.path.ends_with("/content")));
    let deltas: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/root/delta"))
        .collect();
    assert_eq!(deltas.len(), 4, "one per drive");
    assert!(
        deltas.iter().all(|r| r.param("token").is_some()),
        "from the stored deltaLinks"
    );
}

#[tokio::test]
async fn five_thousand_items_across_three_drives_sync_exactly() {
    let (fake, corpus) = world().await;
    let bulk: BTreeSet<String> = {
        let mut w = fake.drives();
        let mut ids = BTreeSet::new();
        for (drive, count) in [
            (&corpus.eng_docs, 2000),
            (&corpus.eng_specs, 1500),
            (&corpus.hr_docs, 1500),
        ] {
            ids.extend(
                w.populate(drive, count)
                    .into_iter()
                    .map(|id| sid(drive, &id)),
            );
        }
        ids
    };
    assert_eq!(bulk.len(), 5000);
    let sp = connector(
        &fake,
        json!({ "batch_size": 200, "include_site_pages": false, "user_drives": [] }),
    );
    let batches = pull_pass(&sp, None).await;
    let mut expected = bulk.clone();
    expected.extend(corpus.files());
    expected.remove(&sid(&corpus.ada_drive, &corpus.todo));
    assert_eq!(source_ids(&batches), expected);
    assert_eq!(documents(&batches).len(), expected.len(), "each once");
    assert!(failures(&batches).is_empty());
    assert_eq!(list_all(&sp).await.expect("listing"), expected);
    let first = bulk.iter().next().expect("an item");
    assert!(by_id(&batches, first).metadata["path"]
        .as_str()
        .is_some_and(|p| p.starts_with("/Batch ")));
}
