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
use tributary::store::connectors::{LeaseClaim, RunStatus, SourceKind};
use tributary::store::Table;
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome, SyncQueues};
use tributary_e2e::app::{
    create_direct, dynamo_table, embedded_table, spawn_app, status_and_body, sync_engine, temp_dir,
    TestApp,
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
    assert!(matches!(
        engine
            .connectors
            .acquire_lease(&id, "another-sync", far, None)
            .await
            .expect("lease"),
        LeaseClaim::Acquired { .. }
    ));
    jira.clear_requests();
    let outcome = engine
        .run(
            &SyncMessage::new(&id, "manual"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("run");
    assert!(
        matches!(&outcome, SyncOutcome::LeaseBusy(lease) if lease.holder == "another-sync" && lease.until == far),
        "{outcome:?}"
    );
    assert!(
        jira.requests().is_empty(),
        "nothing fetched while another sync runs"
    );
    // Two triggers at once: exactly one of them syncs.
    engine
        .connectors
        .release_lease(&id, "another-sync", None)
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
        .filter(|o| matches!(o, SyncOutcome::LeaseBusy(_)))
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

// --- continuations, busy leases, heartbeats, interrupted runs -------------------------------

/// One consumer of the sync queue, like one Lambda instance: handles a message at a time
/// until the connector has a run and none is `running`, and the queue is empty.
async fn consume(engine: Arc<SyncEngine>, queue: Arc<dyn Queue>, id: String) -> Vec<SyncOutcome> {
    let bound = Instant::now() + Duration::from_secs(60);
    let mut outcomes = Vec::new();
    while Instant::now() < bound {
        let received = queue
            .receive(1, Duration::from_secs(60), Duration::from_millis(100))
            .await
            .expect("receive");
        let Some(received) = received.into_iter().next() else {
            let (runs, _) = engine.connectors.runs(&id, 100, None).await.expect("runs");
            if !runs.is_empty() && runs.iter().all(|run| run.status != RunStatus::Running) {
                return outcomes;
            }
            continue;
        };
        let message: SyncMessage = serde_json::from_str(&received.body).expect("message");
        let outcome = engine
            .handle(&message, Instant::now() + Duration::from_secs(60))
            .await
            .expect("handle");
        outcomes.push(outcome);
        queue
            .delete(&received.receipt_handle)
            .await
            .expect("delete");
    }
    panic!("the sync did not settle in time: {outcomes:?}");
}

/// A queue whose sender waits until its message has been received: the sending engine is
/// still inside its invocation (it has not released anything yet) when the other engine
/// gets the continuation — the race of two Lambda instances, made certain.
struct RacingQueue {
    inner: Arc<dyn Queue>,
    sent: std::sync::atomic::AtomicUsize,
    received: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Queue for RacingQueue {
    async fn send_batch_delayed(
        &self,
        bodies: Vec<String>,
        delay: Duration,
    ) -> Result<Vec<String>, tributary::queue::QueueError> {
        use std::sync::atomic::Ordering::SeqCst;
        let count = bodies.len();
        let ids = self.inner.send_batch_delayed(bodies, delay).await?;
        let sent = self.sent.fetch_add(count, SeqCst) + count;
        let bound = Instant::now() + Duration::from_secs(5);
        while delay.is_zero() && self.received.load(SeqCst) < sent && Instant::now() < bound {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        max: u32,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<tributary::queue::ReceivedMessage>, tributary::queue::QueueError> {
        let messages = self.inner.receive(max, visibility_timeout, wait).await?;
        self.received
            .fetch_add(messages.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(messages)
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), tributary::queue::QueueError> {
        self.inner.delete(receipt_handle).await
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), tributary::queue::QueueError> {
        self.inner.change_visibility(receipt_handle, timeout).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_racing_on_one_queue_never_drop_a_continuation() {
    let jira = FakeJira::start(200).await;
    let table = embedded_table();
    let (mut first, inner) = sync_engine(table.clone());
    let (mut second, _) = sync_engine(table);
    let queue: Arc<dyn Queue> = Arc::new(RacingQueue {
        inner,
        sent: Default::default(),
        received: Default::default(),
    });
    first.queues = SyncQueues::shared(queue.clone());
    second.queues = first.queues.clone();
    // A margin longer than the deadline: every invocation pulls one batch and continues.
    let margin = Duration::from_secs(600);
    let first = Arc::new(first.with_safety_margin(margin));
    let second = Arc::new(second.with_safety_margin(margin));
    let out = temp_dir("sync-race");
    let id = create_direct(&first, jira_request(&jira, directory(&out), json!({}))).await;
    first
        .queues
        .enqueue(SourceKind::Jira, &SyncMessage::new(&id, "manual"))
        .await
        .expect("enqueue");
    let (a, b) = tokio::join!(
        tokio::spawn(consume(first.clone(), queue.clone(), id.clone())),
        tokio::spawn(consume(second.clone(), queue.clone(), id.clone())),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    let continued = |outcomes: &[SyncOutcome]| {
        outcomes
            .iter()
            .filter(|o| matches!(o, SyncOutcome::Continued(_) | SyncOutcome::Finished(_)))
            .count()
    };
    assert!(
        continued(&a) > 0 && continued(&b) > 0,
        "both engines served the run: {a:?} {b:?}"
    );
    let (runs, _) = first.connectors.runs(&id, 100, None).await.expect("runs");
    assert_eq!(runs.len(), 1, "one run across every continuation: {runs:?}");
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].counts.added, 200);
    assert!(runs[0].invocations >= 5, "{}", runs[0].invocations);
    assert_eq!(delivered(&out), expected(&jira));
    let lease = first.connectors.lease(&id).await.expect("lease");
    assert!(lease.is_none_or(|lease| !lease.is_live(tributary::store::now_epoch_seconds())));
}

#[tokio::test]
async fn a_message_meeting_a_busy_lease_comes_back_later_and_runs() {
    let jira = FakeJira::start(20).await;
    let (engine, queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-deferred");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    let until = tributary::store::now_epoch_seconds() + 2;
    engine
        .connectors
        .acquire_lease(&id, "a-crashed-sync", until, None)
        .await
        .expect("lease");
    let outcome = engine
        .handle(
            &SyncMessage::new(&id, "webhook"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("handle");
    let SyncOutcome::Deferred(delay) = outcome else {
        panic!("deferred, not dropped: {outcome:?}");
    };
    assert!(
        delay >= Duration::from_secs(3) && delay <= Duration::from_secs(10),
        "{delay:?}"
    );
    assert!(
        queue
            .receive(1, Duration::from_secs(60), Duration::ZERO)
            .await
            .expect("receive")
            .is_empty(),
        "not retried hot"
    );
    let received = queue
        .receive(1, Duration::from_secs(60), delay + Duration::from_secs(5))
        .await
        .expect("receive");
    let message: SyncMessage = serde_json::from_str(&received[0].body).expect("message");
    assert_eq!((message.trigger.as_str(), message.attempt), ("webhook", 1));
    let outcome = engine
        .handle(&message, Instant::now() + Duration::from_secs(60))
        .await
        .expect("handle");
    assert!(matches!(outcome, SyncOutcome::Finished(_)), "{outcome:?}");
    assert_eq!(delivered(&out), expected(&jira));
}

#[tokio::test]
async fn a_source_that_asks_to_wait_longer_than_the_budget_gets_the_message_back_then() {
    let jira = FakeJira::start(5).await;
    let (engine, queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-rate-limited");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    // Longer than the engine's 30 s retry budget: not slept through by the connector.
    jira.set_retry_after(120);
    jira.set_burst_429(1);
    let outcome = engine
        .handle(
            &SyncMessage::new(&id, "schedule"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("a throttled sync is deferred, not an error for SQS to retry");
    let SyncOutcome::Deferred(delay) = outcome else {
        panic!("deferred by the source's Retry-After: {outcome:?}");
    };
    assert_eq!(delay, Duration::from_secs(120));
    assert!(
        queue
            .receive(1, Duration::from_secs(60), Duration::ZERO)
            .await
            .expect("receive")
            .is_empty(),
        "not retried before the source allows it"
    );
    let (runs, _) = engine.connectors.runs(&id, 10, None).await.expect("runs");
    let run = &runs[0];
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert!(
        !run.errors.is_empty(),
        "the run says why it stopped: {run:?}"
    );
}

#[tokio::test]
async fn the_heartbeat_keeps_a_short_lease_while_a_long_sync_runs() {
    let jira = FakeJira::start(60).await;
    jira.set_page_delay(Duration::from_millis(400));
    let (engine, _queue) = sync_engine(embedded_table());
    let engine = Arc::new(engine.with_lease_ttl(Duration::from_secs(3)));
    let out = temp_dir("sync-heartbeat");
    let mut request = jira_request(&jira, directory(&out), json!({}));
    request["config"]["batch_size"] = json!(5);
    let id = create_direct(&engine, request).await;
    let running = {
        let engine = engine.clone();
        let id = id.clone();
        tokio::spawn(async move {
            engine
                .run(
                    &SyncMessage::new(&id, "manual"),
                    Instant::now() + Duration::from_secs(120),
                )
                .await
        })
    };
    // Well past the 3 s TTL, the lease is still held: a second trigger stays out.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) && !running.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!running.is_finished(), "the slow sync should still run");
    let busy = engine
        .run(
            &SyncMessage::new(&id, "manual"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("run");
    let SyncOutcome::LeaseBusy(lease) = busy else {
        panic!("the heartbeat renewed the lease: {busy:?}");
    };
    assert!(lease.run.is_some(), "the lease names the run it serves");
    let outcome = running.await.expect("join").expect("sync");
    assert!(matches!(outcome, SyncOutcome::Finished(_)), "{outcome:?}");
    assert_eq!(delivered(&out), expected(&jira));
}

#[tokio::test]
async fn a_run_left_running_by_a_dead_holder_is_closed_as_interrupted() {
    let jira = FakeJira::start(30).await;
    let (engine, _queue) = sync_engine(embedded_table());
    let out = temp_dir("sync-stale");
    let id = create_direct(&engine, jira_request(&jira, directory(&out), json!({}))).await;
    // A holder that started a run and died: its run stays `running`, its lease expired.
    let stale = tributary::store::connectors::RunRecord {
        id: "dead-run".into(),
        connector_id: id.clone(),
        trigger: "manual".into(),
        status: RunStatus::Running,
        counts: Default::default(),
        errors: Vec::new(),
        invocations: 1,
        pruned: None,
        started_at: tributary::store::now_epoch_seconds() - 60,
        finished_at: None,
    };
    engine.connectors.save_run(&stale).await.expect("run");
    let lease = tributary::store::connectors::Lease {
        holder: "dead-holder".into(),
        until: tributary::store::now_epoch_seconds() - 1,
        run: Some((stale.started_at, stale.id.clone())),
    };
    engine
        .connectors
        .acquire_lease(&id, "dead-holder", lease.until + 100, None)
        .await
        .expect("take");
    assert!(engine
        .connectors
        .update_lease(&id, "dead-holder", &lease)
        .await
        .expect("expire"));
    let outcome = engine
        .run(
            &SyncMessage::new(&id, "schedule"),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .expect("run");
    assert!(matches!(outcome, SyncOutcome::Finished(_)), "{outcome:?}");
    let closed = engine
        .connectors
        .run(&id, stale.started_at, &stale.id)
        .await
        .expect("read")
        .expect("stale run");
    assert_eq!(closed.status, RunStatus::Interrupted);
    assert!(closed.finished_at.is_some());
    let value = serde_json::to_value(&closed).expect("json");
    assert_eq!(value["status"], "interrupted");
}

// --- tributary-local sync: kill -9, SIGTERM, LeaseBusy, Gone ---------------------------------

/// The `tributary-local` binary next to this test binary (`cargo build -p tributary-local`).
fn local_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let binary = dir.join(format!("tributary-local{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p tributary-local` first",
        binary.display()
    );
    binary
}

fn cli_sync(data_dir: &Path, id: &str) -> std::process::Command {
    let mut command = std::process::Command::new(local_binary());
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--allow-private-networks")
        .args(["sync", id])
        .env("TRIBUTARY_SYNC_LEASE_SECS", "5")
        .env("RUST_LOG", "warn")
        .env_remove("TRIBUTARY_ENCRYPTION_KEY")
        .env_remove("TRIBUTARY_JWT_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Waits for the CLI off the runtime's threads (the fake Jira serves on them).
async fn finish_cli(child: std::process::Child) -> (bool, String) {
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A connector in `data_dir`'s store, as `tributary-local connectors create` makes it.
async fn local_connector(data_dir: &Path, jira: &FakeJira, out: &Path) -> (SyncEngine, String) {
    let (services, _) = tributary_local::local_services(data_dir).expect("services");
    let (engine, _) =
        tributary_local::sync::local_sync_engine(&services, data_dir, true).expect("engine");
    let mut request = jira_request(jira, directory(out), json!({}));
    request["config"]["batch_size"] = json!(10);
    let id = create_direct(&engine, request).await;
    (engine, id)
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let bound = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < bound, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn runs_by_status(runs: &[tributary::store::connectors::RunRecord]) -> Vec<RunStatus> {
    runs.iter().map(|run| run.status).collect()
}

fn markdown_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|ext| ext == "md"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn a_killed_cli_sync_is_reported_busy_then_resumes_exactly_after_the_short_lease() {
    let jira = FakeJira::start(150).await;
    jira.set_page_delay(Duration::from_millis(250));
    let data_dir = temp_dir("cli-kill");
    let out = temp_dir("cli-kill-out");
    let (engine, id) = local_connector(&data_dir, &jira, &out).await;

    let mut child = cli_sync(&data_dir, &id).spawn().expect("spawn");
    wait_for("a partial sync", || markdown_files(&out) >= 30).await;
    child.kill().expect("kill -9");
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;

    let (ok, text) = finish_cli(cli_sync(&data_dir, &id).spawn().expect("spawn")).await;
    assert!(!ok, "a busy lease is a failure: {text}");
    assert!(
        text.contains("lease holder") && text.contains(" until "),
        "says who holds the lease and until when: {text}"
    );

    let (ok, text) = finish_cli(
        cli_sync(&data_dir, "no-such-connector")
            .spawn()
            .expect("spawn"),
    )
    .await;
    assert!(!ok, "an unknown connector is a failure: {text}");
    assert!(
        text.contains("no connector with id no-such-connector"),
        "{text}"
    );

    // The dead holder stops renewing: its lease lapses within one TTL.
    let bound = Instant::now() + Duration::from_secs(15);
    loop {
        let lease = engine.connectors.lease(&id).await.expect("lease");
        if lease.is_none_or(|l| !l.is_live(tributary::store::now_epoch_seconds())) {
            break;
        }
        assert!(
            Instant::now() < bound,
            "the killed holder's lease never lapsed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    jira.set_page_delay(Duration::ZERO);
    let (ok, text) = finish_cli(cli_sync(&data_dir, &id).spawn().expect("spawn")).await;
    assert!(ok, "the re-run resumes: {text}");
    assert!(text.contains("Completed"), "{text}");
    assert_eq!(delivered(&out), expected(&jira), "nothing lost");
    assert_eq!(markdown_files(&out), 150, "nothing duplicated");
    let (runs, _) = engine.connectors.runs(&id, 10, None).await.expect("runs");
    assert_eq!(
        runs_by_status(&runs),
        vec![RunStatus::Interrupted, RunStatus::Completed],
        "the killed run is closed as interrupted"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_releases_the_lease_so_an_immediate_re_run_finishes_the_sync() {
    let jira = FakeJira::start(150).await;
    jira.set_page_delay(Duration::from_millis(250));
    let data_dir = temp_dir("cli-term");
    let out = temp_dir("cli-term-out");
    let (engine, id) = local_connector(&data_dir, &jira, &out).await;

    let child = cli_sync(&data_dir, &id).spawn().expect("spawn");
    wait_for("a partial sync", || markdown_files(&out) >= 30).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let (ok, text) = finish_cli(child).await;
    assert!(!ok, "an interrupted sync is not a success: {text}");
    assert!(text.contains("interrupted"), "{text}");
    let lease = engine.connectors.lease(&id).await.expect("lease");
    assert!(
        lease
            .as_ref()
            .is_none_or(|l| !l.is_live(tributary::store::now_epoch_seconds())),
        "released on SIGTERM: {lease:?}"
    );

    jira.set_page_delay(Duration::ZERO);
    let (ok, text) = finish_cli(cli_sync(&data_dir, &id).spawn().expect("spawn")).await;
    assert!(ok, "an immediate re-run works: {text}");
    assert_eq!(delivered(&out), expected(&jira));
    assert_eq!(markdown_files(&out), 150);
    let (runs, _) = engine.connectors.runs(&id, 10, None).await.expect("runs");
    assert_eq!(
        runs_by_status(&runs),
        vec![RunStatus::Interrupted, RunStatus::Completed]
    );
}

// --- webhook replays and bursts; deleting a connector --------------------------------------

async fn webhook_connector(app: &TestApp, jira: &FakeJira, secret: &str) -> (String, String) {
    let session = app.signed_in("replays@example.com").await;
    let out = temp_dir("sync-webhook-replay");
    let body = jira_request(
        jira,
        directory(&out),
        json!({"webhook": {"scheme": "jira", "secret": secret}}),
    );
    (create_via_api(app, &session, &body).await, session)
}

async fn deliver(
    app: &TestApp,
    id: &str,
    secret: &str,
    delivery: &str,
    payload: &[u8],
) -> (StatusCode, Value) {
    status_and_body(
        app.client
            .post(app.url(&format!("/webhooks/jira/{id}")))
            .header("content-type", "application/json")
            .header("x-hub-signature", jira_signature(secret, payload))
            .header("x-atlassian-webhook-identifier", delivery)
            .body(payload.to_vec())
            .send()
            .await
            .expect("webhook"),
    )
    .await
}

async fn visible(queue: &dyn Queue) -> usize {
    queue
        .receive(10, Duration::from_secs(60), Duration::ZERO)
        .await
        .expect("receive")
        .len()
}

#[tokio::test]
async fn a_replayed_webhook_delivery_enqueues_nothing() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let secret = "a-long-random-webhook-secret";
    let (id, _) = webhook_connector(&app, &jira, secret).await;
    let payload = br#"{"webhookEvent": "jira:issue_updated", "timestamp": 1}"#;
    let (status, answer) = deliver(&app, &id, secret, "delivery-1", payload).await;
    assert_eq!(
        (status, &answer["queued"]),
        (StatusCode::ACCEPTED, &json!(true))
    );
    assert_eq!(visible(app.sync_queue.as_ref()).await, 1);
    // The captured delivery, replayed (and later again): recognised, nothing enqueued.
    for _ in 0..2 {
        let (status, answer) = deliver(&app, &id, secret, "delivery-1", payload).await;
        assert_eq!(
            (status, &answer["duplicate"]),
            (StatusCode::OK, &json!(true))
        );
    }
    // Without an id, the same signed body is the same delivery.
    let bare = br#"{"webhookEvent": "jira:issue_updated", "timestamp": 2}"#;
    for expected in [StatusCode::ACCEPTED, StatusCode::OK] {
        let (status, _) = status_and_body(
            app.client
                .post(app.url(&format!("/webhooks/jira/{id}")))
                .header("x-hub-signature", jira_signature(secret, bare))
                .body(bare.to_vec())
                .send()
                .await
                .expect("webhook"),
        )
        .await;
        assert_eq!(status, expected);
    }
    assert_eq!(
        visible(app.sync_queue.as_ref()).await,
        0,
        "nothing more queued"
    );
}

#[tokio::test]
async fn a_burst_of_webhooks_enqueues_one_sync_now_and_one_after_the_window() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let secret = "a-long-random-webhook-secret";
    let (id, _) = webhook_connector(&app, &jira, secret).await;
    let mut answers = Vec::new();
    for n in 0..6 {
        let payload = format!(r#"{{"webhookEvent": "jira:issue_updated", "timestamp": {n}}}"#);
        let (status, answer) =
            deliver(&app, &id, secret, &format!("burst-{n}"), payload.as_bytes()).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        answers.push(answer);
    }
    let queued_now = answers
        .iter()
        .filter(|a| a["queued"] == json!(true) && a.get("coalesced").is_none())
        .count();
    let trailing = answers
        .iter()
        .filter(|a| a["queued"] == json!(true) && a["coalesced"] == json!(true))
        .count();
    let coalesced = answers
        .iter()
        .filter(|a| a["queued"] == json!(false))
        .count();
    assert_eq!((queued_now, trailing, coalesced), (1, 1, 4), "{answers:?}");
    assert_eq!(visible(app.sync_queue.as_ref()).await, 1, "one sync now");
    let delay = answers[1]["delay_secs"].as_u64().expect("delay");
    assert!(
        (1..=60).contains(&delay),
        "the trailing one waits for the window: {delay}"
    );
}

#[tokio::test]
async fn deleting_a_connector_deletes_its_state_and_purge_removes_its_documents() {
    let jira = FakeJira::start(25).await;
    let app = spawn_app().await;
    let session = app.signed_in("deleting@example.com").await;
    let mut ids = Vec::new();
    let mut outs = Vec::new();
    for _ in 0..2 {
        let out = temp_dir("sync-delete");
        let id = create_via_api(
            &app,
            &session,
            &jira_request(&jira, directory(&out), json!({})),
        )
        .await;
        sync_now(&app.syncs, app.sync_queue.as_ref(), SourceKind::Jira, &id).await;
        assert_eq!(markdown_files(&out), 25);
        ids.push(id);
        outs.push(out);
    }
    let state = |id: String| {
        let table = app.services.table.clone();
        async move {
            table
                .query(tributary::store::Query::new(format!("CONNECTOR#{id}"), "").limit(1000))
                .await
                .expect("query")
                .items
                .len()
        }
    };
    assert!(
        state(ids[0].clone()).await > 25,
        "checkpoint, lease, run, document map"
    );

    let response = app
        .delete(&format!("/connectors/{}", ids[0]), &session)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(state(ids[0].clone()).await, 0, "no state left behind");
    assert_eq!(
        markdown_files(&outs[0]),
        25,
        "without purge the sink keeps its documents"
    );

    let response = app
        .delete(&format!("/connectors/{}?purge=true", ids[1]), &session)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(state(ids[1].clone()).await, 0);
    assert_eq!(
        markdown_files(&outs[1]),
        0,
        "purge removed its documents from the sink"
    );
    let response = app
        .get(&format!("/connectors/{}", ids[1]), Some(&session))
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_off_by_stopping_serve_resumes_by_itself_after_restart() {
    let jira = FakeJira::start(120).await;
    jira.set_page_delay(Duration::from_millis(250));
    let data_dir = temp_dir("serve-stop");
    let out = temp_dir("serve-stop-out");
    let (_, id) = local_connector(&data_dir, &jira, &out).await;
    let start = || {
        let (services, _) = tributary_local::local_services(&data_dir).expect("services");
        let (engine, queue) =
            tributary_local::sync::local_sync_engine(&services, &data_dir, true).expect("engine");
        let engine = Arc::new(engine.with_lease_ttl(Duration::from_secs(3)));
        (engine, queue)
    };
    let (engine, queue) = start();
    engine
        .queues
        .enqueue(SourceKind::Jira, &SyncMessage::new(&id, "manual"))
        .await
        .expect("enqueue");
    let workers = tributary_local::sync::spawn_sync_workers(engine.clone(), queue.clone(), 1);
    wait_for("a partial sync", || markdown_files(&out) >= 30).await;
    // `serve` stops mid-sync: its workers vanish without releasing anything.
    for worker in workers {
        worker.abort();
        let _ = worker.await;
    }
    drop((engine, queue));
    jira.set_page_delay(Duration::ZERO);

    let (engine, queue) = start();
    let _workers = tributary_local::sync::spawn_sync_workers(engine.clone(), queue, 1);
    let bound = Instant::now() + Duration::from_secs(60);
    let runs = loop {
        let (runs, _) = engine.connectors.runs(&id, 10, None).await.expect("runs");
        if runs
            .last()
            .is_some_and(|run| run.status == RunStatus::Completed)
        {
            break runs;
        }
        assert!(Instant::now() < bound, "the sync never resumed: {runs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        runs_by_status(&runs),
        vec![RunStatus::Interrupted, RunStatus::Completed]
    );
    assert_eq!(delivered(&out), expected(&jira));
    assert_eq!(markdown_files(&out), 120);
}
