//! The sync engine end to end: connectors created through the API against a fake Jira,
//! synced into a directory sink or a fake RAGFlow; interrupted and crashed runs converge to
//! the source exactly; deletions need a complete listing; one sync per connector at a time;
//! webhooks and the scheduler enqueue; the DynamoDB + SQS path on moto.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary::queue::{create_queue_with_dlq, Queue, SqsQueue};
use tributary::store::connectors::{RunStatus, SourceKind};
use tributary::store::Table;
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome, SyncQueues};
use tributary_e2e::app::{
    dynamo_table, embedded_table, spawn_app, status_and_body, sync_engine, temp_dir, TestApp,
};
use tributary_e2e::fake_jira::{self, FakeJira};
use tributary_e2e::fake_ragflow::{self, FakeRagflow};
use tributary_e2e::faults::CheckpointCrashes;
use tributary_e2e::moto;

fn jira_request(jira: &FakeJira, sink: Value, extra: Value) -> Value {
    let mut body = json!({
        "name": "Fake Jira",
        "source": "jira",
        "config": {"base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT], "batch_size": 40},
        "credentials": {"type": "basic", "email": fake_jira::EMAIL, "api_token": fake_jira::API_TOKEN},
        "sink": sink,
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

fn directory(out: &Path) -> Value {
    json!({"type": "directory", "path": out})
}

async fn create_via_api(app: &TestApp, session: &str, body: &Value) -> String {
    let (status, answer) =
        status_and_body(app.post_json("/connectors", body, Some(session)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(
        answer.get("credentials").is_none(),
        "credentials are never returned"
    );
    answer["id"].as_str().expect("id").to_owned()
}

async fn create_direct(engine: &SyncEngine, body: Value) -> String {
    let request: connectors_api::CreateRequest = serde_json::from_value(body).expect("request");
    connectors_api::create_connector(engine, "workspace-1", request)
        .await
        .expect("create")
        .id
}

/// `source_id` → `title` of every document the directory sink holds.
fn delivered(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read");
            let field = |name: &str| {
                text.lines()
                    .find_map(|line| line.strip_prefix(&format!("{name}: ")))
                    .map(|value| {
                        serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_owned())
                    })
                    .unwrap_or_default()
            };
            (field("source_id"), field("title"))
        })
        .collect()
}

/// What the directory sink should hold for the fake's current issues.
fn expected(jira: &FakeJira) -> BTreeMap<String, String> {
    jira.issues()
        .into_iter()
        .map(|issue| (issue.id, format!("{}: {}", issue.key, issue.summary)))
        .collect()
}

/// Runs sync messages from `queue` until it is empty (bounded), like the Lambda service.
async fn drain(engine: &SyncEngine, queue: &dyn Queue, deadline: Duration) -> Vec<SyncOutcome> {
    let mut outcomes = Vec::new();
    for _ in 0..2_000 {
        let messages = queue
            .receive(1, Duration::from_secs(600), Duration::ZERO)
            .await
            .expect("receive");
        let Some(received) = messages.into_iter().next() else {
            return outcomes;
        };
        let message: SyncMessage = serde_json::from_str(&received.body).expect("sync message");
        match engine.run(&message, Instant::now() + deadline).await {
            Ok(outcome) => {
                outcomes.push(outcome);
                queue
                    .delete(&received.receipt_handle)
                    .await
                    .expect("delete");
            }
            Err(error) => {
                assert!(error.is_transient(), "{error}");
                queue
                    .change_visibility(&received.receipt_handle, Duration::ZERO)
                    .await
                    .expect("release");
            }
        }
    }
    panic!("the sync queue never emptied");
}

/// Triggers a manual sync of `id` and runs the queue empty.
async fn sync_now(
    engine: &SyncEngine,
    queue: &dyn Queue,
    source: SourceKind,
    id: &str,
) -> Vec<SyncOutcome> {
    engine
        .queues
        .enqueue(source, &SyncMessage::new(id, "manual"))
        .await
        .expect("enqueue");
    drain(engine, queue, Duration::from_secs(600)).await
}

fn finished(outcomes: &[SyncOutcome]) -> Vec<&tributary::store::connectors::RunRecord> {
    outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            SyncOutcome::Finished(run) => Some(run),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_sync_delivers_every_issue_once_and_records_the_run() {
    let jira = FakeJira::start(300).await;
    let app = spawn_app().await;
    let session = app.signed_in("sync@example.com").await;
    let out = temp_dir("sync-out");
    let id = create_via_api(
        &app,
        &session,
        &jira_request(&jira, directory(&out), json!({})),
    )
    .await;
    let (status, _) = status_and_body(
        app.client
            .post(app.url(&format!("/connectors/{id}/sync")))
            .bearer_auth(&session)
            .send()
            .await
            .expect("trigger"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let outcomes = drain(
        &app.syncs,
        app.sync_queue.as_ref(),
        Duration::from_secs(600),
    )
    .await;
    let runs = finished(&outcomes);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].counts.added, 300);
    assert_eq!(delivered(&out), expected(&jira));

    let (status, body) = status_and_body(
        app.get(&format!("/connectors/{id}/runs"), Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"][0]["counts"]["added"], 300);
    assert_eq!(body["items"][0]["status"], "completed");

    // A second sync finds nothing new to deliver.
    app.syncs
        .queues
        .enqueue(SourceKind::Jira, &SyncMessage::new(&id, "manual"))
        .await
        .expect("enqueue");
    let again = drain(
        &app.syncs,
        app.sync_queue.as_ref(),
        Duration::from_secs(600),
    )
    .await;
    let run = finished(&again)[0];
    assert_eq!(
        (run.counts.added, run.counts.updated, run.counts.deleted),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn interrupted_and_crashed_syncs_converge_to_the_source() {
    let jira = FakeJira::start(400).await;
    let faulty = Arc::new(CheckpointCrashes::new(embedded_table(), 3));
    let table: Arc<dyn Table> = faulty.clone();
    let (engine, queue) = sync_engine(table);
    // No safety margin and tiny deadlines: about one batch per invocation.
    let engine = engine.with_safety_margin(Duration::ZERO);
    let out = temp_dir("sync-crash");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    engine
        .queues
        .enqueue(SourceKind::Jira, &SyncMessage::new(&id, "manual"))
        .await
        .expect("enqueue");
    let mut outcomes = Vec::new();
    let mut duplicated = 0;
    for round in 0..2_000 {
        let messages = queue
            .receive(1, Duration::from_secs(600), Duration::ZERO)
            .await
            .expect("receive");
        let Some(received) = messages.into_iter().next() else {
            break;
        };
        let message: SyncMessage = serde_json::from_str(&received.body).expect("message");
        // Every fifth continuation is delivered twice, as SQS may.
        if message.trigger == "continuation" && round % 5 == 0 {
            queue
                .send_batch(vec![received.body.clone()])
                .await
                .expect("duplicate");
            duplicated += 1;
        }
        match engine
            .run(&message, Instant::now() + Duration::from_millis(1))
            .await
        {
            Ok(outcome) => {
                outcomes.push(outcome);
                queue
                    .delete(&received.receipt_handle)
                    .await
                    .expect("delete");
            }
            Err(_) => queue
                .change_visibility(&received.receipt_handle, Duration::ZERO)
                .await
                .expect("release"),
        }
    }
    assert!(queue
        .receive(1, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive")
        .is_empty());
    let crashes = faulty.crashes.load(std::sync::atomic::Ordering::SeqCst);
    assert!(crashes >= 3, "crashes injected: {crashes}");
    assert!(
        duplicated >= 1,
        "duplicate continuations sent: {duplicated}"
    );
    assert_eq!(delivered(&out), expected(&jira), "sink equals source");
    assert!(!finished(&outcomes).is_empty(), "the run finished");
    let (runs, _) = engine.connectors.runs(&id, 100, None).await.expect("runs");
    let total_added: u64 = runs.iter().map(|run| run.counts.added).sum();
    assert_eq!(total_added, 400, "each document added once over all runs");
    assert!(
        runs.iter().any(|run| run.invocations > 1),
        "continuations were used"
    );
}

#[tokio::test]
async fn changes_and_deletions_in_the_source_reach_the_sink() {
    let jira = FakeJira::start(120).await;
    let (engine, queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-changes");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    let sync = || sync_now(&engine, queue.as_ref(), SourceKind::Jira, &id);
    sync().await;
    assert_eq!(delivered(&out), expected(&jira));

    let first = jira.issues()[3].id.clone();
    let second = jira.issues()[7].id.clone();
    jira.update_issue(first.parse().expect("id"), "Renamed in the source");
    jira.delete_issue(second.parse().expect("id"));
    let outcomes = sync().await;
    let run = finished(&outcomes)[0];
    assert_eq!(run.counts.updated, 1, "{:?}", run.counts);
    assert_eq!(run.counts.deleted, 1, "{:?}", run.counts);
    assert_eq!(run.counts.added, 0);
    assert_eq!(run.pruned, Some(true));
    assert_eq!(delivered(&out), expected(&jira));
}

#[tokio::test]
async fn a_busy_lease_makes_the_second_trigger_exit_without_fetching() {
    let jira = FakeJira::start(10).await;
    let (engine, _queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-lease");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    let far = tributary::store::now_epoch_seconds() + 600;
    assert!(engine
        .connectors
        .acquire_lease(&id, "another-sync", far)
        .await
        .expect("lease"));
    jira.clear_requests();
    let outcome = engine
        .run(
            &SyncMessage::new(&id, "manual"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("run");
    assert_eq!(outcome, SyncOutcome::LeaseBusy);
    assert!(
        jira.requests().is_empty(),
        "nothing fetched while another sync runs"
    );
    // Two triggers at once: exactly one of them syncs.
    engine
        .connectors
        .release_lease(&id, "another-sync")
        .await
        .expect("release");
    let message = SyncMessage::new(&id, "manual");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (a, b) = tokio::join!(
        engine.run(&message, deadline),
        engine.run(&message, deadline)
    );
    let outcomes = [a.expect("a"), b.expect("b")];
    let synced = outcomes
        .iter()
        .filter(|o| matches!(o, SyncOutcome::Finished(_)))
        .count();
    let busy = outcomes
        .iter()
        .filter(|o| **o == SyncOutcome::LeaseBusy)
        .count();
    assert_eq!((synced, busy), (1, 1), "{outcomes:?}");
}

#[tokio::test]
async fn a_ragflow_dataset_mirrors_the_source_without_duplicates() {
    let jira = FakeJira::start(30).await;
    let ragflow = FakeRagflow::start().await;
    let (engine, queue) = sync_engine(embedded_table());
    let sink = json!({"type": "ragflow", "base_url": ragflow.base_url(), "dataset_id": fake_ragflow::DATASET_ID, "api_key": fake_ragflow::API_KEY});
    let id = create_direct(&engine, jira_request(&jira, sink, json!({}))).await;
    let sync = || sync_now(&engine, queue.as_ref(), SourceKind::Jira, &id);
    sync().await;
    let names = |ragflow: &FakeRagflow| -> Vec<String> {
        ragflow
            .documents(fake_ragflow::DATASET_ID)
            .into_iter()
            .map(|d| d.name)
            .collect()
    };
    assert_eq!(names(&ragflow).len(), 30);
    assert_eq!(
        names(&ragflow).into_iter().collect::<BTreeSet<_>>().len(),
        30
    );
    assert!(
        ragflow
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/chunks")),
        "parsing started"
    );

    let changed = jira.issues()[0].id.clone();
    jira.update_issue(changed.parse().expect("id"), "Updated summary for RAGFlow");
    let gone = jira.issues()[1].id.clone();
    jira.delete_issue(gone.parse().expect("id"));
    sync().await;
    let documents = ragflow.documents(fake_ragflow::DATASET_ID);
    assert_eq!(documents.len(), 29, "one deleted, none duplicated");
    assert_eq!(
        documents
            .iter()
            .map(|d| &d.name)
            .collect::<BTreeSet<_>>()
            .len(),
        29
    );
    assert!(documents
        .iter()
        .any(|d| d.content.contains("Updated summary for RAGFlow")));
}

#[tokio::test]
async fn bad_connectors_are_refused_and_nothing_is_stored() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let session = app.signed_in("bad-connectors@example.com").await;
    let out = temp_dir("sync-bad");
    let good = jira_request(&jira, directory(&out), json!({}));
    let with = |path: &str, value: Value| {
        let mut body = good.clone();
        let mut target = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for part in &parts[..parts.len() - 1] {
            target = &mut target[*part];
        }
        target[parts[parts.len() - 1]] = value;
        body
    };
    let cases = [
        (with("source", json!("myspace")), "invalid_body"),
        (
            with("config.base_url", json!("not a url")),
            "invalid_config",
        ),
        (
            with("config.project_keys", json!(["lower case"])),
            "invalid_config",
        ),
        (with("config.batch_size", json!(0)), "invalid_config"),
        (with("config.surprise", json!(1)), "invalid_config"),
        (
            with("credentials.api_token", json!("wrong-token")),
            "invalid_credentials",
        ),
        (
            with("credentials", json!({"type": "cookie"})),
            "invalid_body",
        ),
        (with("sink", json!({"type": "ftp"})), "invalid_body"),
        (
            with(
                "sink",
                json!({"type": "ragflow", "base_url": "http://127.0.0.1:9", "dataset_id": "../x"}),
            ),
            "invalid_sink",
        ),
        (with("schedule_minutes", json!(0)), "invalid_schedule"),
        (
            with("webhook", json!({"scheme": "jira", "secret": "short"})),
            "invalid_webhook",
        ),
        (with("name", json!("")), "invalid_name"),
    ];
    for (body, code) in cases {
        let (status, answer) =
            status_and_body(app.post_json("/connectors", &body, Some(&session)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], code, "{answer}");
    }
    let (_, listed) = status_and_body(app.get("/connectors", Some(&session)).await).await;
    assert_eq!(listed["items"], json!([]), "nothing stored");
    let read_only = app.api_token(&session, &["connectors:read"]).await;
    let read_only = read_only["token"].as_str().expect("token");
    let (status, _) =
        status_and_body(app.post_json("/connectors", &good, Some(read_only)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

fn jira_signature(secret: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn webhooks_enqueue_a_sync_only_with_a_valid_signature() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let session = app.signed_in("webhooks@example.com").await;
    let out = temp_dir("sync-webhook");
    let secret = "a-long-random-webhook-secret";
    let body = jira_request(
        &jira,
        directory(&out),
        json!({"webhook": {"scheme": "jira", "secret": secret}}),
    );
    let id = create_via_api(&app, &session, &body).await;
    let payload = br#"{"webhookEvent": "jira:issue_updated"}"#;
    let post = |path: String, signature: Option<String>| {
        let mut request = app
            .client
            .post(app.url(&path))
            .header("content-type", "application/json")
            .body(payload.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature", signature);
        }
        async move { request.send().await.expect("webhook") }
    };
    let path = format!("/webhooks/jira/{id}");
    for bad in [
        None,
        Some("sha256=00".to_owned()),
        Some(jira_signature("other-secret-value", payload)),
    ] {
        let (status, answer) = status_and_body(post(path.clone(), bad).await).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_signature"))
        );
    }
    let (status, _) = status_and_body(
        post(
            format!("/webhooks/confluence/{id}"),
            Some(jira_signature(secret, payload)),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(app
        .sync_queue
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive")
        .is_empty());
    let (status, _) =
        status_and_body(post(path, Some(jira_signature(secret, payload))).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let queued = app
        .sync_queue
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive");
    assert_eq!(queued.len(), 1);
    let message: SyncMessage = serde_json::from_str(&queued[0].body).expect("message");
    assert_eq!(
        (message.connector_id.as_str(), message.trigger.as_str()),
        (id.as_str(), "webhook")
    );
}

#[tokio::test]
async fn the_scheduler_enqueues_due_connectors_once_per_interval() {
    let jira = FakeJira::start(1).await;
    let (engine, queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-schedule");
    let scheduled = create_direct(
        &engine,
        jira_request(&jira, directory(&out), json!({"schedule_minutes": 30})),
    )
    .await;
    create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    let first = scheduler::tick(&engine).await.expect("tick");
    assert_eq!((first.checked, first.enqueued), (2, 1));
    let second = scheduler::tick(&engine).await.expect("tick");
    assert_eq!(second.enqueued, 0, "not due again within its interval");
    let queued = queue
        .receive(10, Duration::from_secs(1), Duration::ZERO)
        .await
        .expect("receive");
    assert_eq!(queued.len(), 1);
    let message: SyncMessage = serde_json::from_str(&queued[0].body).expect("message");
    assert_eq!(
        (message.connector_id, message.trigger.as_str()),
        (scheduled, "schedule")
    );
}

#[tokio::test]
async fn a_sync_with_continuations_runs_on_dynamodb_and_sqs() {
    let jira = FakeJira::start(150).await;
    let client = moto::sqs_client().await;
    let (queue_url, _) = create_queue_with_dlq(&client, &moto::unique_name("sync"), 10)
        .await
        .expect("queues on moto");
    let sqs: Arc<dyn Queue> = Arc::new(SqsQueue::new(client, queue_url));
    let table = dynamo_table().await;
    let (base, _) = sync_engine(table.clone());
    let engine = SyncEngine::new(
        table,
        SyncQueues::shared(sqs.clone()),
        base.vault().clone(),
        base.sinks().clone(),
        base.http().clone(),
    )
    .with_retry(base.retry().clone())
    .with_policy(Arc::new(
        tributary::crawl::ssrf::NetworkPolicy::allow_private(),
    ))
    .with_safety_margin(Duration::ZERO);
    let out = temp_dir("sync-moto");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    engine
        .queues
        .enqueue(SourceKind::Jira, &SyncMessage::new(&id, "manual"))
        .await
        .expect("enqueue");
    let outcomes = drain(&engine, sqs.as_ref(), Duration::from_millis(1)).await;
    assert!(
        outcomes
            .iter()
            .any(|o| matches!(o, SyncOutcome::Continued(_))),
        "continued through SQS"
    );
    assert_eq!(finished(&outcomes).len(), 1);
    assert_eq!(delivered(&out), expected(&jira));
}

#[tokio::test]
async fn a_confluence_space_syncs_and_follows_deletions() {
    use tributary_e2e::fake_confluence::{self, FakeConfluence};
    let confluence = FakeConfluence::start(120).await;
    let (engine, queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-confluence");
    let body = json!({
        "name": "Fake Confluence",
        "source": "confluence",
        "config": {"base_url": confluence.base_url(), "batch_size": 25},
        "credentials": {"type": "basic", "email": fake_confluence::EMAIL, "api_token": fake_confluence::API_TOKEN},
        "sink": directory(&out),
    });
    let id = create_direct(&engine, body).await;
    let sync = || sync_now(&engine, queue.as_ref(), SourceKind::Confluence, &id);
    sync().await;
    let ids = |out: &Path| delivered(out).into_keys().collect::<BTreeSet<_>>();
    assert_eq!(ids(&out), confluence.ids_where(|_| true));
    let gone = confluence.contents()[5].id.clone();
    confluence.delete_page(&gone);
    let outcomes = sync().await;
    assert_eq!(finished(&outcomes)[0].counts.deleted, 1);
    assert_eq!(ids(&out), confluence.ids_where(|_| true));
}

#[tokio::test]
async fn an_incomplete_listing_deletes_nothing() {
    // More issues than one listing page (1000), so the listing can break midway.
    let jira = FakeJira::start(1_100).await;
    let (engine, queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-incomplete");
    let id = create_direct(
        &engine,
        jira_request(
            &jira,
            directory(&out),
            json!({"config": {
                "base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT], "batch_size": 100
            }}),
        ),
    )
    .await;
    let sync = || sync_now(&engine, queue.as_ref(), SourceKind::Jira, &id);
    sync().await;
    assert_eq!(delivered(&out).len(), 1_100);
    let gone = jira.issues()[10].id.clone();
    jira.delete_issue(gone.parse().expect("id"));
    jira.break_listing_after(1);
    let outcomes = sync().await;
    let run = finished(&outcomes)[0];
    assert_eq!(run.pruned, Some(false), "{:?}", run.errors);
    assert_eq!(run.counts.deleted, 0);
    assert!(
        delivered(&out).contains_key(&gone),
        "kept: the listing was incomplete"
    );
}

#[tokio::test]
async fn sources_and_sinks_on_private_addresses_are_refused_by_default() {
    let jira = FakeJira::start(1).await;
    let (engine, _) = sync_engine(embedded_table());
    let engine = engine.with_policy(Arc::new(tributary::crawl::ssrf::NetworkPolicy::strict()));
    let out = temp_dir("sync-ssrf");
    for body in [
        // The fake itself lives on loopback.
        jira_request(&jira, directory(&out), json!({})),
        jira_request(
            &jira,
            directory(&out),
            json!({"config": {"base_url": "https://169.254.169.254/"}}),
        ),
    ] {
        let request: connectors_api::CreateRequest = serde_json::from_value(body).expect("request");
        let error = connectors_api::create_connector(&engine, "workspace-1", request)
            .await
            .expect_err("refused");
        assert_eq!(error.code, "url_not_allowed", "{}", error.message);
    }
    assert!(
        jira.requests().is_empty(),
        "nothing was sent to the private address"
    );
    let (listed, _) = engine
        .connectors
        .list("workspace-1", 10, None)
        .await
        .expect("list");
    assert!(listed.is_empty());
}
