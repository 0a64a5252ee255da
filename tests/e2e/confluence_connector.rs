//! The Confluence connector against a fake Confluence Cloud: a complete pull of ~1,500 items
//! that resumes from any checkpoint, incremental passes, scope filters, rate limits and
//! outages, refused credentials, the slim listing after deletions, and attachments.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::{json, Value};
use tributary::connectors::confluence::{ConfluenceConfig, ConfluenceConnector};
use tributary::connectors::document::Document;
use tributary::connectors::{Batch, Connector, ConnectorError, Credentials, DocumentFailure};
use tributary::http::RetryPolicy;
use tributary_e2e::fake_confluence::{
    FakeConfluence, FakeContent, BIG_ATTACHMENT_BYTES, EMAIL, UTC_OFFSET_SECONDS,
};

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        budget: Duration::from_secs(5),
    }
}

fn config(fake: &FakeConfluence, extra: Value) -> ConfluenceConfig {
    let mut value = json!({ "base_url": fake.base_url() });
    if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), extra) {
        target.extend(extra);
    }
    serde_json::from_value(value).expect("config")
}

fn connector(fake: &FakeConfluence, extra: Value) -> ConfluenceConnector {
    connector_with(fake, extra, fake.credentials())
}

fn connector_with(
    fake: &FakeConfluence,
    extra: Value,
    credentials: Credentials,
) -> ConfluenceConnector {
    ConfluenceConnector::new(
        "confluence-e2e",
        config(fake, extra),
        credentials,
        tributary_e2e::app::loopback_client(Duration::from_secs(15)),
        retry(),
    )
    .expect("connector")
}

/// Every batch of a run and the checkpoint each one left.
struct Run {
    batches: Vec<Batch>,
}

impl Run {
    fn documents(&self) -> impl Iterator<Item = &Document> {
        self.batches.iter().flat_map(|batch| batch.documents.iter())
    }

    fn failures(&self) -> impl Iterator<Item = &DocumentFailure> {
        self.batches.iter().flat_map(|batch| batch.failures.iter())
    }

    fn ids(&self) -> BTreeSet<String> {
        self.documents()
            .map(|document| document.source_id.clone())
            .collect()
    }

    fn last_checkpoint(&self) -> Value {
        self.batches
            .last()
            .map(|batch| batch.checkpoint.clone())
            .expect("at least one batch")
    }
}

/// Pulls from `checkpoint` until a batch says done.
async fn pull_to_end(connector: &ConfluenceConnector, checkpoint: Option<Value>) -> Run {
    let mut checkpoint = checkpoint;
    let mut batches = Vec::new();
    for _ in 0..1_000 {
        let batch = connector
            .pull(checkpoint.as_ref())
            .await
            .expect("pull succeeds");
        checkpoint = Some(batch.checkpoint.clone());
        let done = batch.done;
        batches.push(batch);
        if done {
            return Run { batches };
        }
    }
    panic!("the pull never finished");
}

fn batch_ids(batch: &Batch) -> Vec<String> {
    batch
        .documents
        .iter()
        .map(|document| document.source_id.clone())
        .chain(
            batch
                .failures
                .iter()
                .map(|failure| failure.source_id.clone()),
        )
        .collect()
}

/// The window the connector should start after a pass whose newest change was `newest`.
fn expected_window(newest: DateTime<FixedOffset>, overlap_minutes: i64) -> String {
    (newest - chrono::Duration::minutes(overlap_minutes))
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// The ids the fake modified at or after a CQL window start (in the account's zone).
fn modified_since(fake: &FakeConfluence, window: &str) -> BTreeSet<String> {
    let naive = chrono::NaiveDateTime::parse_from_str(window, "%Y-%m-%d %H:%M").expect("window");
    let offset = FixedOffset::east_opt(UTC_OFFSET_SECONDS).unwrap();
    let since = naive.and_local_timezone(offset).single().unwrap();
    fake.ids_where(|c| c.modified >= since)
}

fn ancestors(fake: &FakeConfluence, content: &FakeContent) -> Vec<String> {
    let mut chain = Vec::new();
    let mut parent = content.parent.clone();
    while let Some(id) = parent {
        let ancestor = fake.content(&id).expect("ancestor exists");
        chain.push(ancestor.title.clone());
        parent = ancestor.parent.clone();
    }
    chain.reverse();
    chain
}

fn search_requests(fake: &FakeConfluence) -> Vec<tributary_e2e::fake_confluence::RecordedRequest> {
    fake.requests()
        .into_iter()
        .filter(|request| request.path == "/wiki/rest/api/content/search")
        .collect()
}

#[tokio::test]
async fn full_pull_is_complete_exact_and_resumable_from_every_checkpoint() {
    let started = Instant::now();
    let fake = FakeConfluence::start(1_500).await;
    let all = fake.ids_where(|_| true);
    let malformed: BTreeSet<String> = all.iter().step_by(211).take(5).cloned().collect();
    for id in &malformed {
        fake.malformed(id);
    }
    let confluence = connector(&fake, json!({ "batch_size": 25 }));
    confluence
        .test_connection()
        .await
        .expect("connection works");

    let run = pull_to_end(&confluence, None).await;

    // Exactly every item once; the malformed ones reported, not delivered.
    let delivered: Vec<&str> = run.documents().map(|d| d.source_id.as_str()).collect();
    assert_eq!(
        delivered.len(),
        all.len() - malformed.len(),
        "no duplicates"
    );
    let expected: BTreeSet<String> = all.difference(&malformed).cloned().collect();
    assert_eq!(run.ids(), expected);
    let failed: BTreeSet<String> = run.failures().map(|f| f.source_id.clone()).collect();
    assert_eq!(failed, malformed);
    assert!(run
        .failures()
        .all(|failure| failure.error.contains("storage format")
            && !failure.error.contains("never closed")));
    assert_eq!(run.batches.len(), all.len().div_ceil(25));
    assert!(run.batches.iter().rev().skip(1).all(|batch| !batch.done));

    // Paging followed `_links.next`: one search per batch, each after the first is exactly
    // the previous answer's next link (start offsets the server chose), with expansions.
    let searches = search_requests(&fake);
    assert_eq!(searches.len(), run.batches.len());
    assert_eq!(searches[0].param("start"), None);
    let cql = searches[0].param("cql").expect("cql");
    assert_eq!(cql, "type in (page, blogpost) order by lastmodified asc");
    for (n, request) in searches.iter().enumerate().skip(1) {
        assert_eq!(request.param("start"), Some((25 * n).to_string()));
        assert_eq!(request.param("cql").as_deref(), Some(cql.as_str()));
        assert_eq!(
            request.param("expand").as_deref(),
            Some("body.storage,version,space,ancestors,metadata.labels")
        );
    }
    for (batch, next) in run.batches.iter().zip(searches.iter().skip(1)) {
        let saved = batch.checkpoint["next"].as_str().expect("next link saved");
        assert!(
            saved.ends_with(next.query.as_deref().expect("query")),
            "{saved}"
        );
    }

    // The documents, in detail.
    let contents: HashMap<String, FakeContent> = fake
        .contents()
        .into_iter()
        .map(|content| (content.id.clone(), content))
        .collect();
    for document in run.documents() {
        let content = &contents[&document.source_id];
        assert_eq!(document.source, "confluence");
        assert_eq!(
            document.id,
            Document::stable_id("connector:confluence-e2e", &content.id)
        );
        assert_eq!(document.title.as_deref(), Some(content.title.as_str()));
        assert!(document
            .markdown
            .starts_with(&format!("# {}\n\n", content.title)));
        let marker = format!(
            "body-marker-{}",
            (content.id.parse::<u64>().unwrap() - 98_304) / 3
        );
        assert!(document.markdown.contains(&marker), "{}", document.markdown);
        assert_eq!(
            document.updated_at,
            content
                .modified
                .with_timezone(&Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        );
        let url = document.url.as_deref().expect("url");
        assert!(url.starts_with(&format!(
            "{}wiki/spaces/{}/",
            fake.base_url(),
            content.space_key
        )));
        let metadata = &document.metadata;
        assert_eq!(metadata["type"], content.kind);
        assert_eq!(metadata["space_key"], content.space_key);
        assert_eq!(metadata["space_name"], content.space_name);
        assert_eq!(metadata["labels"], json!(content.labels));
        assert_eq!(metadata["ancestors"], json!(ancestors(&fake, content)));
        assert_eq!(metadata["version"], content.version);
        assert_eq!(metadata["author"], content.author);
        assert_eq!(metadata["last_modified"], document.updated_at);
    }
    // Storage constructs came through as markdown.
    let markdown: String = run.documents().map(|d| d.markdown.as_str()).collect();
    assert!(markdown.contains("```rust\nlet item_0 = 0; // 1 < 2 && 3 > 2\n```"));
    assert!(markdown.contains("> **Warning**"));
    assert!(markdown.contains("| **Key**"));
    assert!(markdown.contains("[the parent page]("));
    assert!(markdown.contains("Widget body 3"));
    assert!(!markdown.contains("ac:"));

    // The last checkpoint starts the next window five minutes before the newest change,
    // written in the account's offset.
    let newest = contents.values().map(|c| c.modified).max().unwrap();
    let last = run.last_checkpoint();
    assert_eq!(last["next"], Value::Null);
    assert_eq!(last["window_since"], expected_window(newest, 5));
    assert_eq!(newest.offset().local_minus_utc(), UTC_OFFSET_SECONDS);

    // Resuming from any saved checkpoint gives exactly the batch that followed it.
    for pair in run.batches.windows(2) {
        let resumed = confluence
            .pull(Some(&pair[0].checkpoint))
            .await
            .expect("resumed pull");
        assert_eq!(batch_ids(&resumed), batch_ids(&pair[1]));
        assert_eq!(resumed.checkpoint, pair[1].checkpoint);
        assert_eq!(resumed.done, pair[1].done);
    }
    // And from the middle to the end, the rest of the run.
    let middle = run.batches.len() / 2;
    let rest = pull_to_end(
        &confluence,
        Some(run.batches[middle - 1].checkpoint.clone()),
    )
    .await;
    let before: BTreeSet<String> = run.batches[..middle]
        .iter()
        .flat_map(|batch| batch.documents.iter().map(|d| d.source_id.clone()))
        .collect();
    assert!(before.is_disjoint(&rest.ids()));
    assert_eq!(
        before.union(&rest.ids()).cloned().collect::<BTreeSet<_>>(),
        expected
    );
    eprintln!("full pull, resumes included: {:?}", started.elapsed());
}

#[tokio::test]
async fn incremental_passes_pick_up_updates_from_the_overlapping_window() {
    let fake = FakeConfluence::start(300).await;
    let confluence = connector(&fake, json!({ "batch_size": 50 }));
    let full = pull_to_end(&confluence, None).await;
    assert_eq!(full.ids(), fake.ids_where(|_| true));

    // Nothing changed: the next pass fetches only the overlap, in one page.
    fake.clear_requests();
    let quiet = pull_to_end(&confluence, Some(full.last_checkpoint())).await;
    assert_eq!(quiet.batches.len(), 1);
    let window = full.last_checkpoint()["window_since"]
        .as_str()
        .unwrap()
        .to_owned();
    let searches = search_requests(&fake);
    assert_eq!(searches.len(), 1);
    assert!(searches[0].param("cql").unwrap().contains(&format!(
        "and lastmodified >= \"{window}\" order by lastmodified asc"
    )));
    let quiet_ids = quiet.ids();
    assert_eq!(quiet_ids, modified_since(&fake, &window));
    assert!(
        !quiet_ids.is_empty() && quiet_ids.len() < 15,
        "{quiet_ids:?}"
    );
    assert_eq!(quiet.last_checkpoint()["window_since"], window);

    // An edit: the next pass delivers the new version (and the same overlap).
    let target = fake
        .contents()
        .into_iter()
        .find(|c| !quiet_ids.contains(&c.id) && c.kind == "page")
        .expect("an old page");
    fake.update_page(&target.id, "<p>fresh-marker after the edit</p>");
    let updated = fake.content(&target.id).unwrap();
    let delta = pull_to_end(&confluence, Some(quiet.last_checkpoint())).await;
    let mut expected = quiet_ids.clone();
    expected.insert(target.id.clone());
    assert_eq!(delta.ids(), expected);
    let document = delta
        .documents()
        .find(|d| d.source_id == target.id)
        .unwrap();
    assert!(document.markdown.contains("fresh-marker after the edit"));
    assert_eq!(document.metadata["version"], updated.version);
    let next_window = expected_window(updated.modified, 5);
    assert_eq!(delta.last_checkpoint()["window_since"], next_window);

    // The following pass starts from the edit, minus the overlap.
    let after = pull_to_end(&confluence, Some(delta.last_checkpoint())).await;
    assert!(after.ids().contains(&target.id));
    assert_eq!(after.ids(), modified_since(&fake, &next_window));

    // A larger overlap reaches further back.
    let wide = connector(&fake, json!({ "batch_size": 50, "overlap_minutes": 120 }));
    let wide_pass = pull_to_end(&wide, None).await;
    assert_eq!(
        wide_pass.last_checkpoint()["window_since"],
        expected_window(updated.modified, 120)
    );
}

#[tokio::test]
async fn space_label_and_type_filters_narrow_the_scope() {
    let fake = FakeConfluence::start(400).await;
    let filtered = connector(
        &fake,
        json!({
            "space_keys": ["ENG", "HR"],
            "exclude_labels": ["draft"],
            "include_blog_posts": false,
            "batch_size": 40,
        }),
    );
    filtered.test_connection().await.expect("both spaces exist");
    let run = pull_to_end(&filtered, None).await;
    let expected = fake.ids_where(|c| {
        c.kind == "page"
            && matches!(c.space_key, "ENG" | "HR")
            && !c.labels.iter().any(|l| l == "draft")
    });
    assert!(expected.len() > 100);
    assert_eq!(run.ids(), expected);
    assert!(run.documents().all(|d| d.metadata["type"] == "page"
        && d.metadata["space_key"] != "OPS"
        && !d.metadata["labels"]
            .as_array()
            .unwrap()
            .contains(&json!("draft"))));
    let cql = search_requests(&fake)[0].param("cql").unwrap();
    assert_eq!(
        cql,
        "type = page and space in (\"ENG\", \"HR\") and label not in (\"draft\") \
         order by lastmodified asc"
    );

    // Blog posts only come with include_blog_posts (the default).
    let blogs = pull_to_end(&connector(&fake, json!({ "space_keys": ["OPS"] })), None).await;
    assert_eq!(blogs.ids(), fake.ids_where(|c| c.space_key == "OPS"));
    assert!(blogs.documents().any(|d| d.metadata["type"] == "blogpost"));
    assert!(blogs.documents().any(|d| d.metadata["type"] == "page"));

    // An unknown space is a configuration error naming the key.
    let missing = connector(&fake, json!({ "space_keys": ["ENG", "NOPE"] }));
    match missing.test_connection().await {
        Err(ConnectorError::Config(message)) => assert!(message.contains("NOPE"), "{message}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried_and_then_reported() {
    let fake = FakeConfluence::start(120).await;
    let confluence = connector(&fake, json!({ "batch_size": 20 }));
    fake.set_burst_429(3);
    let started = Instant::now();
    let first = confluence.pull(None).await.expect("the burst is survived");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    fake.fail_next(2, 503);
    let rest = pull_to_end(&confluence, Some(first.checkpoint.clone())).await;
    let mut ids = rest.ids();
    ids.extend(first.documents.iter().map(|d| d.source_id.clone()));
    assert_eq!(ids, fake.ids_where(|_| true));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 2);

    // An outage that outlasts the retries is transient, and the checkpoint still works.
    fake.fail_next(50, 503);
    let error = confluence
        .pull(Some(&first.checkpoint))
        .await
        .expect_err("still down");
    assert!(matches!(error, ConnectorError::Unavailable(_)), "{error:?}");
    assert!(error.is_transient());
    fake.fail_next(0, 503);
    let again = confluence
        .pull(Some(&first.checkpoint))
        .await
        .expect("back up");
    assert_eq!(batch_ids(&again), batch_ids(&rest.batches[0]));

    // A permanent 4xx is not retried.
    fake.clear_requests();
    fake.fail_next(1, 400);
    assert!(matches!(
        confluence.pull(None).await,
        Err(ConnectorError::Protocol(_))
    ));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn refused_credentials_and_bad_checkpoints_are_reported() {
    let fake = FakeConfluence::start(30).await;
    let wrong = connector_with(
        &fake,
        json!({}),
        Credentials::Basic {
            email: EMAIL.into(),
            api_token: "not-the-token".into(),
        },
    );
    assert!(matches!(
        wrong.test_connection().await,
        Err(ConnectorError::Unauthorized(_))
    ));
    let error = wrong.pull(None).await.expect_err("refused");
    assert!(
        matches!(error, ConnectorError::Unauthorized(_)),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not-the-token"));
    assert!(matches!(
        wrong.list_ids(None).await,
        Err(ConnectorError::Unauthorized(_))
    ));
    // 401 is not retried.
    assert_eq!(fake.requests().len(), 3);

    let confluence = connector(&fake, json!({}));
    for bad in [
        json!({"v": 1, "next": "http://attacker.example/wiki/rest/api/content/search"}),
        json!({"v": 7}),
        json!({"v": 1, "window_since": "not a date"}),
        json!([1, 2]),
    ] {
        assert!(
            matches!(
                confluence.pull(Some(&bad)).await,
                Err(ConnectorError::Checkpoint(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        confluence
            .list_ids(Some("https://attacker.example/x"))
            .await,
        Err(ConnectorError::Checkpoint(_))
    ));
    // Nothing was sent for the refused checkpoints.
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn list_ids_lists_the_current_scope_after_deletions() {
    let fake = FakeConfluence::start(500).await;
    let all: Vec<String> = fake.ids_where(|_| true).into_iter().collect();
    fake.delete_page(&all[3]);
    fake.delete_page(&all[250]);
    fake.malformed(&all[10]);

    let confluence = connector(&fake, json!({}));
    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = confluence
            .list_ids(cursor.as_deref())
            .await
            .expect("listing");
        pages += 1;
        listed.extend(page.source_ids);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 100);
    }
    assert!(pages >= 2, "the listing was paged");
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "no duplicates");
    assert_eq!(unique, fake.ids_where(|_| true));
    assert!(!unique.contains(&all[3]) && !unique.contains(&all[250]));
    assert!(unique.contains(&all[10]), "malformed content still exists");
    let searches = search_requests(&fake);
    assert!(searches.iter().all(|r| r.param("expand").is_none()));
    assert_eq!(
        searches[0].param("cql").as_deref(),
        Some("type in (page, blogpost) order by created asc")
    );

    // The listing honours the scope too.
    let scoped = connector(
        &fake,
        json!({ "space_keys": ["HR"], "exclude_labels": ["howto"] }),
    );
    let page = scoped.list_ids(None).await.expect("listing");
    assert!(page.next.is_none());
    assert_eq!(
        page.source_ids.into_iter().collect::<BTreeSet<_>>(),
        fake.ids_where(|c| c.space_key == "HR" && !c.labels.iter().any(|l| l == "howto"))
    );
}

#[tokio::test]
async fn attachments_are_listed_and_small_text_ones_appended() {
    let fake = FakeConfluence::start(40).await;
    let confluence = connector(
        &fake,
        json!({ "attachments": true, "max_attachment_bytes": 1_000, "batch_size": 40 }),
    );
    let run = pull_to_end(&confluence, None).await;
    assert_eq!(run.ids(), fake.ids_where(|_| true));
    let by_id: HashMap<&str, &Document> = run
        .documents()
        .map(|document| (document.source_id.as_str(), document))
        .collect();
    for (i, content) in fake.contents().iter().enumerate() {
        let document = by_id[content.id.as_str()];
        let listed = document.metadata.get("attachments");
        match i % 10 {
            0 => {
                let listed = listed
                    .and_then(Value::as_array)
                    .expect("attachments listed");
                let titles: Vec<&str> = listed.iter().filter_map(|a| a["title"].as_str()).collect();
                assert_eq!(titles, ["notes.txt", "diagram.png"]);
                assert_eq!(listed[0]["media_type"], "text/plain");
                assert!(listed[1]["url"]
                    .as_str()
                    .is_some_and(|url| url.contains("/wiki/download/attachments/")));
                assert!(document
                    .markdown
                    .contains(&format!("## Attachment: notes.txt\n\n```\nNotes for item {i}: attachment-marker-{i}\n```")));
                assert!(!document.markdown.contains("PNG"));
                // The image macro links to the attachment.
                assert!(document.markdown.contains(&format!(
                    "![diagram {i}]({}wiki/download/attachments/{}/diagram.png)",
                    fake.base_url(),
                    content.id
                )));
            }
            5 => {
                let listed = listed
                    .and_then(Value::as_array)
                    .expect("attachments listed");
                assert_eq!(listed[0]["size"], BIG_ATTACHMENT_BYTES);
                assert!(!document.markdown.contains("## Attachment"), "over the cap");
            }
            _ => {
                assert!(listed.is_none());
                assert!(!document.markdown.contains("## Attachment"));
            }
        }
    }
    // Downloads went through the media redirect; the big one was never fetched.
    let requests = fake.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.path.starts_with("/media/"))
            .count(),
        4
    );
    assert!(requests.iter().all(|r| !r.path.ends_with("big.log")));
}

#[tokio::test]
async fn requests_that_time_out_are_retried_then_reported_unavailable() {
    let fake = FakeConfluence::start(20).await;
    let quick = tributary_e2e::app::loopback_client(Duration::from_millis(300));
    let connector = ConfluenceConnector::new(
        "confluence-timeouts",
        config(&fake, json!({})),
        fake.credentials(),
        quick,
        retry(),
    )
    .expect("connector");
    fake.stall_next(2);
    let batch = connector
        .pull(None)
        .await
        .expect("retried past two timeouts");
    assert!(!batch.documents.is_empty());
    fake.stall_next(100);
    let error = connector
        .pull(None)
        .await
        .expect_err("every attempt times out");
    assert!(error.is_transient(), "{error}");
}
