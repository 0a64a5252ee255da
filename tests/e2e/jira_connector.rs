//! The Jira connector against a fake Jira Cloud: complete and resumable pulls, incremental
//! windows, label filtering, rate limits and outages, credentials, the slim listing,
//! expired page tokens and attachments.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, Duration as TimeDelta};
use serde_json::{json, Value};
use tributary::connectors::document::Document;
use tributary::connectors::jira::{JiraConfig, JiraConnector};
use tributary::connectors::{Batch, Connector, ConnectorError, Credentials};
use tributary::http::RetryPolicy;
use tributary_e2e::fake_jira::{FakeJira, IssueInfo, EMAIL, HUGE_ATTACHMENT_BYTES, LONG_THREAD};

const SEARCH: &str = "/rest/api/3/search/jql";
const BULK: &str = "/rest/api/3/issue/bulkfetch";

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        budget: Duration::from_secs(5),
    }
}

fn http() -> tributary::http::GuardedClient {
    tributary_e2e::app::loopback_client(Duration::from_secs(10))
}

fn config(fake: &FakeJira, extra: Value) -> JiraConfig {
    let mut value = json!({ "base_url": fake.base_url() });
    for (key, field) in extra.as_object().expect("an object") {
        value[key] = field.clone();
    }
    serde_json::from_value(value).expect("a Jira config")
}

fn jira(fake: &FakeJira, extra: Value) -> JiraConnector {
    connector_with(fake, extra, fake.credentials())
}

fn connector_with(fake: &FakeJira, extra: Value, credentials: Credentials) -> JiraConnector {
    JiraConnector::new(
        "jira-test",
        config(fake, extra),
        credentials,
        http(),
        retry(),
    )
    .expect("a connector")
}

/// Like the engine: the checkpoint goes through storage as text.
fn stored(checkpoint: &Value) -> Value {
    serde_json::from_str(&serde_json::to_string(checkpoint).expect("serialise"))
        .expect("deserialise")
}

/// Pulls until done, from `start`; returns every batch.
async fn pull_pass(connector: &JiraConnector, start: Option<Value>) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut checkpoint = start;
    for _ in 0..1000 {
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

fn documents(batches: &[Batch]) -> Vec<&Document> {
    batches.iter().flat_map(|batch| &batch.documents).collect()
}

fn source_ids(batches: &[Batch]) -> BTreeSet<String> {
    documents(batches)
        .iter()
        .map(|document| document.source_id.clone())
        .collect()
}

fn ids_of(issues: &[IssueInfo], keep: impl Fn(&IssueInfo) -> bool) -> BTreeSet<String> {
    issues
        .iter()
        .filter(|issue| keep(issue))
        .map(|issue| issue.id.clone())
        .collect()
}

fn last_checkpoint(batches: &[Batch]) -> Value {
    batches.last().expect("a batch").checkpoint.clone()
}

#[tokio::test]
async fn full_pull_delivers_every_issue_once_and_resumes_from_any_checkpoint() {
    let fake = FakeJira::start(2_500).await;
    fake.malformed(10_100);
    fake.issue_error(10_200);
    let connector = jira(&fake, json!({}));
    connector.test_connection().await.expect("connection");

    let batches = pull_pass(&connector, None).await;
    assert_eq!(batches.len(), 50, "2,500 issues in batches of 50");
    assert!(batches[..49].iter().all(|batch| !batch.done));

    let docs = documents(&batches);
    assert_eq!(docs.len(), 2_498);
    let unique_ids: HashSet<&str> = docs.iter().map(|doc| doc.id.as_str()).collect();
    assert_eq!(unique_ids.len(), docs.len(), "no duplicate documents");
    let mut expected = ids_of(&fake.issues(), |_| true);
    expected.remove("10100");
    expected.remove("10200");
    assert_eq!(source_ids(&batches), expected);

    let failures: Vec<_> = batches.iter().flat_map(|batch| &batch.failures).collect();
    let failed: BTreeSet<&str> = failures
        .iter()
        .map(|failure| failure.source_id.as_str())
        .collect();
    assert_eq!(failed, BTreeSet::from(["10100", "10200"]));
    assert!(failures.iter().all(|failure| !failure.error.is_empty()));

    // One issue in full: index 0 has a table, attachments (not read), a long thread.
    let first = docs
        .iter()
        .find(|doc| doc.source_id == "10000")
        .expect("PROJ-1");
    assert_eq!(first.source, "jira");
    assert_eq!(
        first.id,
        Document::stable_id("connector:jira-test", "10000")
    );
    let info = &fake.issues()[0];
    assert_eq!(
        first.title.as_deref(),
        Some(format!("PROJ-1: {}", info.summary).as_str())
    );
    assert_eq!(
        first.url.as_deref(),
        Some(format!("{}/browse/PROJ-1", fake.base_url()).as_str())
    );
    assert_eq!(first.updated_at, "2024-05-01T06:00:00Z");
    assert_eq!(first.metadata["key"], json!("PROJ-1"));
    assert_eq!(first.metadata["project"], json!("PROJ"));
    assert_eq!(first.metadata["status"], json!("To Do"));
    assert_eq!(first.metadata["issue_type"], json!("Task"));
    assert_eq!(first.metadata["labels"], json!(["backend"]));
    assert_eq!(first.metadata["assignee"], json!("Ada Lovelace"));
    assert_eq!(first.metadata["reporter"], json!("Grace Hopper"));
    assert_eq!(first.metadata["updated"], json!("2024-05-01T06:00:00Z"));
    assert_eq!(first.metadata["created"], json!("2024-04-01T06:00:00Z"));
    let markdown = &first.markdown;
    assert!(markdown.starts_with(&format!("# PROJ-1: {}\n", info.summary)));
    for piece in [
        "- **Status:** To Do",
        "Steps for **PROJ-1**, see [the runbook](https://wiki.example.com/runbook).",
        "- Open the app\n  1. Sign in\n  2. Click export\n- Wait",
        "```rust\nfn issue_0() -> u32 { 0 }\n```",
        "| Browser | Result |\n| --- | --- |\n| Safari | fails |",
        "## Comments",
    ] {
        assert!(
            markdown.contains(piece),
            "{piece:?} missing from\n{markdown}"
        );
    }
    for n in 1..=LONG_THREAD {
        assert!(
            markdown.contains(&format!("Comment {n} on PROJ-1\n")),
            "comment {n} missing"
        );
    }
    assert!(!markdown.contains("## Attachments"));
    let without_comments = docs
        .iter()
        .find(|doc| doc.source_id == "10001")
        .expect("PROJ-2");
    assert!(!without_comments.markdown.contains("## Comments"));

    // The first pass is not windowed; it asks for ids only, in batches, in a stable order.
    let searches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.path == SEARCH && request.param("maxResults") == Some("50"))
        .collect();
    assert_eq!(searches.len(), 50);
    for search in &searches {
        let jql = search.param("jql").expect("jql");
        assert_eq!(jql, "(project IS NOT EMPTY) ORDER BY updated ASC, id ASC");
        assert_eq!(search.param("fields"), Some("id"));
    }
    assert!(searches[0].param("nextPageToken").is_none());
    assert!(searches[1..]
        .iter()
        .all(|search| search.param("nextPageToken").is_some()));

    // The pass ends between windows, remembering the newest update.
    let newest = fake.issues().last().expect("issues").updated.clone();
    assert_eq!(
        last_checkpoint(&batches),
        json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": newest})
    );

    // Resuming from any saved checkpoint gives exactly the batch that followed it, so a
    // crash after any batch changes nothing.
    for index in 0..batches.len() - 1 {
        let resumed = connector
            .pull(Some(&stored(&batches[index].checkpoint)))
            .await
            .expect("a resumed batch");
        let next = &batches[index + 1];
        assert_eq!(resumed.documents, next.documents, "batch {}", index + 1);
        assert_eq!(resumed.failures, next.failures);
        assert_eq!(resumed.checkpoint, next.checkpoint);
        assert_eq!(resumed.done, next.done);
    }
    // And running on from the middle reaches the same end.
    let rest = pull_pass(&connector, Some(stored(&batches[39].checkpoint))).await;
    let tail: Vec<&Document> = batches[40..]
        .iter()
        .flat_map(|batch| &batch.documents)
        .collect();
    assert_eq!(documents(&rest), tail);
    assert_eq!(last_checkpoint(&rest), last_checkpoint(&batches));
}

#[tokio::test]
async fn incremental_pass_returns_updated_issues_within_the_overlap() {
    let fake = FakeJira::start(300).await;
    let connector = jira(&fake, json!({ "batch_size": 100 }));
    let first = pull_pass(&connector, None).await;
    assert_eq!(source_ids(&first).len(), 300);
    let max_updated = fake.issues().last().expect("issues").updated.clone();
    assert_eq!(last_checkpoint(&first)["max_updated"], json!(max_updated));

    let new_updated = fake.update_issue(10_042, "Renamed while syncing");
    fake.clear_requests();
    let second = pull_pass(&connector, Some(stored(&last_checkpoint(&first)))).await;

    // The window starts at the newest update seen minus 5 minutes, written in Jira's
    // +0200 offset (the fake reads JQL dates in +02:00, like the account's zone).
    let newest = DateTime::parse_from_str(&max_updated, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .expect("a Jira timestamp");
    let since = (newest - TimeDelta::minutes(5))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let search = fake
        .requests()
        .into_iter()
        .find(|request| request.path == SEARCH)
        .expect("a search");
    assert_eq!(
        search.param("jql"),
        Some(
            format!(
                "(project IS NOT EMPTY) AND updated >= \"{since}\" ORDER BY updated ASC, id ASC"
            )
            .as_str()
        )
    );

    let docs = documents(&second);
    let renamed = docs
        .iter()
        .find(|doc| doc.source_id == "10042")
        .expect("the updated issue comes back");
    assert!(renamed
        .title
        .as_deref()
        .is_some_and(|title| title.ends_with("Renamed while syncing")));
    // Besides it, only the issues inside the overlap (2 every 30 s, 5–6 minutes).
    assert!(docs.len() <= 30, "{} documents", docs.len());
    assert_eq!(
        docs.last().map(|doc| doc.source_id.as_str()),
        Some("10042"),
        "ordered by updated"
    );
    assert_eq!(
        last_checkpoint(&second),
        json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": new_updated})
    );

    // A pass with no changes still only re-reads the overlap.
    let third = pull_pass(&connector, Some(stored(&last_checkpoint(&second)))).await;
    assert!(source_ids(&third).contains("10042"));
    assert!(documents(&third).len() <= 30);
    assert_eq!(last_checkpoint(&third), last_checkpoint(&second));
}

#[tokio::test]
async fn skip_labels_project_keys_and_jql_scope_the_pull_and_the_listing() {
    let fake = FakeJira::start(200).await;
    let connector = jira(
        &fake,
        json!({ "skip_labels": ["secret"], "project_keys": ["PROJ"] }),
    );
    let batches = pull_pass(&connector, None).await;
    let issues = fake.issues();
    let visible = ids_of(&issues, |issue| !issue.labels.iter().any(|l| l == "secret"));
    assert_eq!(visible.len(), 180);
    assert_eq!(source_ids(&batches), visible);
    assert!(documents(&batches).iter().all(|doc| !doc.metadata["labels"]
        .as_array()
        .expect("labels")
        .contains(&json!("secret"))));
    let jql = fake
        .requests()
        .into_iter()
        .find(|request| request.path == SEARCH)
        .and_then(|request| request.param("jql").map(str::to_owned))
        .expect("a search");
    assert_eq!(
        jql,
        "(project in (\"PROJ\")) AND (labels IS EMPTY OR labels NOT IN (\"secret\")) \
         ORDER BY updated ASC, id ASC"
    );

    let page = connector.list_ids(None).await.expect("a listing");
    assert!(page.next.is_none());
    assert_eq!(
        page.source_ids.iter().cloned().collect::<BTreeSet<_>>(),
        visible
    );

    // A user filter narrows further; another project gives nothing.
    let done_only = connector_with(
        &fake,
        json!({ "skip_labels": ["secret"], "jql": "status = \"Done\"" }),
        fake.credentials(),
    );
    let batches = pull_pass(&done_only, None).await;
    let expected = ids_of(&issues, |issue| {
        issue.status == "Done" && !issue.labels.iter().any(|l| l == "secret")
    });
    assert!(!expected.is_empty());
    assert_eq!(source_ids(&batches), expected);

    let elsewhere = jira(&fake, json!({ "project_keys": ["OTHER"] }));
    let batches = pull_pass(&elsewhere, None).await;
    assert!(documents(&batches).is_empty());
    assert!(batches[0].done);
    assert_eq!(
        last_checkpoint(&batches),
        json!({"v": 1, "window_since": null, "next_page_token": null, "max_updated": null})
    );
}

#[tokio::test]
async fn rate_limits_and_outages_are_retried() {
    let fake = FakeJira::start(120).await;
    let connector = jira(&fake, json!({}));

    // 429 with Retry-After: 1 is waited out for the whole second, not the 10 ms backoff.
    fake.set_retry_after(1);
    fake.set_burst_429(1);
    let started = Instant::now();
    let first = connector.pull(None).await.expect("after a 429");
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(first.documents.len(), 50);

    // A burst of 429s (Retry-After: 0) and a 503 in the middle of the pass.
    fake.set_retry_after(0);
    fake.set_burst_429(3);
    let second = connector
        .pull(Some(&stored(&first.checkpoint)))
        .await
        .expect("after a burst");
    fake.fail_next(1, 503);
    let third = connector
        .pull(Some(&stored(&second.checkpoint)))
        .await
        .expect("after a 503");
    assert!(third.done);
    let all: BTreeSet<String> = [&first, &second, &third]
        .iter()
        .flat_map(|batch| &batch.documents)
        .map(|doc| doc.source_id.clone())
        .collect();
    assert_eq!(all, ids_of(&fake.issues(), |_| true));
    let throttled = fake
        .requests()
        .iter()
        .filter(|request| request.path == SEARCH || request.path == BULK)
        .count();
    assert!(throttled >= 6 + 5, "retries reached the fake ({throttled})");

    // An outage that outlasts the retries is reported as transient.
    fake.fail_next(50, 503);
    match connector.pull(None).await {
        Err(error @ ConnectorError::Unavailable(_)) => assert!(error.is_transient()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    fake.fail_next(0, 503);
    fake.set_burst_429(50);
    assert!(matches!(
        connector.list_ids(None).await,
        Err(ConnectorError::Unavailable(_))
    ));
    fake.set_burst_429(0);
}

#[tokio::test]
async fn a_throttle_longer_than_the_retry_budget_defers_the_sync() {
    let fake = FakeJira::start(10).await;
    let connector = jira(&fake, json!({}));
    // Retry-After: 30 is more than the 5 s budget: not slept through, but handed back.
    fake.set_retry_after(30);
    fake.set_burst_429(1);
    let started = Instant::now();
    let error = connector.pull(None).await.expect_err("throttled");
    assert!(started.elapsed() < Duration::from_secs(5), "no 30 s wait");
    assert!(error.is_transient(), "{error:?}");
    assert_eq!(
        error.retry_after(),
        Some(Duration::from_secs(30)),
        "{error:?}"
    );
    assert_eq!(fake.requests().len(), 1);
    // The connector's governor holds later calls back instead of hammering the site.
    let again = connector.list_ids(None).await.expect_err("still throttled");
    assert!(
        matches!(again, ConnectorError::RateLimited { .. }),
        "{again:?}"
    );
    assert_eq!(fake.requests().len(), 1, "no request while throttled");
}

#[tokio::test]
async fn credentials_and_jql_are_checked_by_test_connection() {
    let fake = FakeJira::start(5).await;
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
    assert!(matches!(
        wrong.pull(None).await,
        Err(ConnectorError::Unauthorized(_))
    ));
    assert!(matches!(
        wrong.list_ids(None).await,
        Err(ConnectorError::Unauthorized(_))
    ));
    let bearer = connector_with(
        &fake,
        json!({}),
        Credentials::Bearer {
            token: "some-oauth-token".into(),
        },
    );
    assert!(matches!(
        bearer.test_connection().await,
        Err(ConnectorError::Unauthorized(_))
    ));
    // The token never shows up in the error.
    if let Err(error) = wrong.test_connection().await {
        assert!(!error.to_string().contains("not-the-token"));
    }

    jira(&fake, json!({}))
        .test_connection()
        .await
        .expect("good credentials");
    let myself = fake
        .requests()
        .into_iter()
        .filter(|request| request.path == "/rest/api/3/myself")
        .count();
    assert!(myself >= 3);

    let bad_jql = jira(&fake, json!({ "jql": "nosuchfield = 1" }));
    match bad_jql.test_connection().await {
        Err(ConnectorError::Config(message)) => {
            assert!(message.contains("nosuchfield"), "{message}")
        }
        other => panic!("expected Config, got {other:?}"),
    }
    assert!(matches!(
        bad_jql.pull(None).await,
        Err(ConnectorError::Config(_))
    ));
}

#[tokio::test]
async fn list_ids_pages_through_every_issue_and_reflects_deletions() {
    let fake = FakeJira::start(2_500).await;
    fake.malformed(10_005);
    let connector = jira(&fake, json!({}));

    let list_all = || async {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let page = connector
                .list_ids(cursor.as_deref())
                .await
                .expect("a listing page");
            pages += 1;
            ids.extend(page.source_ids);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return (ids, pages),
            }
        }
    };
    let (ids, pages) = list_all().await;
    assert_eq!(pages, 3, "1,000 ids a page");
    assert_eq!(ids.len(), 2_500);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        ids_of(&fake.issues(), |_| true),
        "malformed issues still exist"
    );

    fake.delete_issue(10_007);
    fake.delete_issue(12_499);
    let (ids, _) = list_all().await;
    assert_eq!(ids.len(), 2_498);
    assert!(!ids.contains(&"10007".to_owned()));
    assert!(!ids.contains(&"12499".to_owned()));

    // A refused cursor is not silently restarted: the listing must be complete.
    let first = connector.list_ids(None).await.expect("a page");
    fake.expire_page_tokens();
    assert!(matches!(
        connector.list_ids(first.next.as_deref()).await,
        Err(ConnectorError::Checkpoint(_))
    ));
}

#[tokio::test]
async fn an_expired_page_token_restarts_the_window() {
    let fake = FakeJira::start(300).await;
    let connector = jira(&fake, json!({}));
    let mut batches = Vec::new();
    let mut checkpoint: Option<Value> = None;
    for _ in 0..2 {
        let batch = connector.pull(checkpoint.as_ref()).await.expect("a batch");
        checkpoint = Some(stored(&batch.checkpoint));
        batches.push(batch);
    }
    fake.expire_page_tokens();
    fake.clear_requests();
    batches.extend(pull_pass(&connector, checkpoint).await);

    // The window restarted from its start: everything is delivered, some twice (which the
    // content hash makes harmless downstream).
    assert_eq!(source_ids(&batches), ids_of(&fake.issues(), |_| true));
    let searches: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.path == SEARCH)
        .collect();
    assert!(searches[0].param("nextPageToken").is_some());
    assert!(searches[1].param("nextPageToken").is_none(), "restarted");
}

#[tokio::test]
async fn text_attachments_are_appended_only_when_enabled() {
    let fake = FakeJira::start(60).await;
    let connector = jira(&fake, json!({ "attachments": true }));
    let batches = pull_pass(&connector, None).await;
    let docs = documents(&batches);
    let with_files = docs
        .iter()
        .find(|doc| doc.source_id == "10000")
        .expect("PROJ-1");
    let markdown = &with_files.markdown;
    assert!(
        markdown.contains("## Attachments"),
        "no attachments in\n{markdown}"
    );
    assert!(markdown.contains(
        "### notes.txt\n\n````text\nNotes for PROJ-1\n```\nnot a fence break\n```\n````"
    ));
    assert!(markdown.contains("### data.json\n\n```json\n{\"key\": \"PROJ-1\", \"ok\": true}\n```"));
    assert!(!markdown.contains("diagram.png"));
    assert!(!markdown.contains("huge.log"));

    let requests = fake.requests();
    let media: Vec<_> = requests
        .iter()
        .filter(|request| request.path.starts_with("/media/"))
        .collect();
    assert_eq!(media.len(), 4, "two text files on two issues");
    assert!(
        media.iter().all(|request| request.authorization.is_none()),
        "credentials never follow the redirect"
    );
    // The oversized file (declared HUGE_ATTACHMENT_BYTES) and the image are never fetched.
    let fetched: BTreeSet<&str> = requests
        .iter()
        .filter_map(|request| request.path.strip_prefix("/rest/api/3/attachment/content/"))
        .collect();
    assert_eq!(
        fetched,
        BTreeSet::from(["1000001", "1000002", "1000501", "1000502"])
    );
    const { assert!(HUGE_ATTACHMENT_BYTES > 1024 * 1024) };

    fake.clear_requests();
    let plain = pull_pass(&jira(&fake, json!({})), None).await;
    assert!(documents(&plain)
        .iter()
        .all(|doc| !doc.markdown.contains("## Attachments")));
    let bulk = fake
        .requests()
        .into_iter()
        .find(|request| request.path == BULK)
        .expect("a bulk fetch");
    let body: Value = serde_json::from_str(&bulk.body).expect("JSON");
    assert!(!body["fields"]
        .as_array()
        .expect("fields")
        .contains(&json!("attachment")));
    assert!(fake
        .requests()
        .iter()
        .all(|request| !request.path.contains("/attachment/")));
}

#[tokio::test]
async fn searches_that_time_out_are_retried_then_reported_unavailable() {
    let fake = FakeJira::start(30).await;
    let quick = tributary_e2e::app::loopback_client(Duration::from_millis(300));
    let connector = JiraConnector::new(
        "jira-timeouts",
        config(&fake, json!({})),
        fake.credentials(),
        quick,
        retry(),
    )
    .expect("a connector");
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
