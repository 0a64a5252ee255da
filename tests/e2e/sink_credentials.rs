//! Issue 8.1: sink credentials belong to the sink. A RAGFlow key or webhook secret is given
//! per sink, sealed, never returned; the operator's own credential goes only where the
//! operator pinned it; one tenant's documents never take another tenant's ids.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use reqwest::Url;
use serde_json::{json, Value};
use tributary::auth::{Principal, TokenKind};
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::sinks::webhook::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use tributary::sinks::{SinkRequest, SinkSecret};
use tributary::store::connectors::RunStatus;
use tributary::sync::{SyncEngine, SyncMessage, SyncOutcome};
use tributary_e2e::app::{
    crawl_engine, crawl_request, create_direct, embedded_table, spawn_app, status_and_body,
    sync_engine, sync_engine_with_sinks, WEBHOOK_SINK_SECRET,
};
use tributary_e2e::fake_jira::{self, FakeJira};
use tributary_e2e::fake_ragflow::{self, FakeRagflow};
use tributary_e2e::site::{Resource, TestSite};
use tributary_local::crawl::crawl_until_done;

const SECRET_A: &str = "tenant-a-webhook-secret-0123456789";
const SECRET_B: &str = "tenant-b-webhook-secret-9876543210";

/// One signed request as a receiver got it.
#[derive(Clone, Debug)]
struct Delivery {
    timestamp: i64,
    signature: String,
    body: Bytes,
}

impl Delivery {
    fn signed_with(&self, secret: &[u8]) -> bool {
        let now = chrono::Utc::now().timestamp();
        verify(
            secret,
            self.timestamp,
            &self.body,
            &self.signature,
            now,
            300,
        )
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// A webhook receiver on a loopback port that records every request and answers 200.
struct Receiver {
    url: Url,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Receiver {
    async fn start() -> Self {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .fallback(record)
            .with_state(deliveries.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("receiver");
        });
        Self {
            url: Url::parse(&format!("http://{address}/hook")).expect("url"),
            deliveries,
            handle,
        }
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.deliveries.lock().expect("lock").clone()
    }
}

async fn record(
    State(deliveries): State<Arc<Mutex<Vec<Delivery>>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    deliveries.lock().expect("lock").push(Delivery {
        timestamp: header(TIMESTAMP_HEADER).parse().unwrap_or_default(),
        signature: header(SIGNATURE_HEADER),
        body,
    });
    StatusCode::OK
}

fn tenant(id: &str) -> Principal {
    Principal {
        user_id: format!("user-of-{id}"),
        tenant_id: id.into(),
        scopes: vec![tributary::auth::scopes::CRAWLS_WRITE.into()],
        token_kind: TokenKind::Session,
        token_id: None,
    }
}

fn webhook_sink(url: &Url, secret: Option<&str>) -> SinkRequest {
    SinkRequest::Webhook {
        url: url.clone(),
        secret: secret.map(SinkSecret::new),
    }
}

#[tokio::test]
async fn two_tenants_crawling_one_url_get_their_own_ids_and_signatures() {
    let site = TestSite::start(vec![("/", Resource::page("Shared page", &[]))]).await;
    let receiver = Receiver::start().await;
    let (engine, queue) = crawl_engine(embedded_table(), NetworkPolicy::allow_private());
    for (tenant_id, secret) in [("tenant-a", SECRET_A), ("tenant-b", SECRET_B)] {
        let request = crawl_request(
            &site.url("/"),
            Some(webhook_sink(&receiver.url, Some(secret))),
        );
        let spec = request
            .validate(engine.fetcher().policy(), engine.sinks())
            .expect("valid");
        let job = engine.start(&tenant(tenant_id), spec).await.expect("start");
        let stored = serde_json::to_string(&job).expect("job json");
        assert!(!stored.contains(secret), "the secret is stored sealed only");
        assert!(job.spec.sink_secret_sealed.is_some());
        let done = tokio::time::timeout(
            Duration::from_secs(60),
            crawl_until_done(engine.clone(), queue.clone(), &job.id, 2, |_| {}),
        )
        .await
        .expect("the crawl ends")
        .expect("crawl");
        assert_eq!(done.counters.done, 1, "{:?}", done.counters);
    }
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 2, "{deliveries:?}");
    let (a, b) = (&deliveries[0], &deliveries[1]);
    assert!(a.signed_with(SECRET_A.as_bytes()) && !a.signed_with(SECRET_B.as_bytes()));
    assert!(b.signed_with(SECRET_B.as_bytes()) && !b.signed_with(SECRET_A.as_bytes()));
    assert!(!a.signed_with(WEBHOOK_SINK_SECRET) && !b.signed_with(WEBHOOK_SINK_SECRET));
    let (doc_a, doc_b) = (&a.json()["documents"][0], &b.json()["documents"][0]);
    assert_eq!(doc_a["source_id"], doc_b["source_id"], "the same page");
    assert_ne!(
        doc_a["id"], doc_b["id"],
        "one tenant cannot overwrite the other"
    );

    // Without a secret of its own, the (unpinned) operator secret is not used.
    let request = crawl_request(&site.url("/"), Some(webhook_sink(&receiver.url, None)));
    let spec = request
        .validate(engine.fetcher().policy(), engine.sinks())
        .expect("shape is valid");
    let err = engine.start(&tenant("tenant-c"), spec).await.unwrap_err();
    assert!(
        err.to_string().contains("sink_credentials_required"),
        "{err}"
    );
    assert_eq!(receiver.deliveries().len(), 2);
}

fn jira_body(jira: &FakeJira, sink: Value) -> Value {
    json!({
        "name": "Fake Jira",
        "source": "jira",
        "config": {"base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT], "batch_size": 40},
        "credentials": {"type": "basic", "email": fake_jira::EMAIL, "api_token": fake_jira::API_TOKEN},
        "sink": sink,
    })
}

/// One whole sync of a small source (one invocation).
async fn sync_once(engine: &SyncEngine, id: &str) -> tributary::store::connectors::RunRecord {
    let message = SyncMessage::new(id, "manual");
    match engine
        .run(&message, Instant::now() + Duration::from_secs(120))
        .await
        .expect("run")
    {
        SyncOutcome::Finished(run) => run,
        other => panic!("{other:?}"),
    }
}

/// Drops the sealed sink credential, as a connector stored before sinks had one.
async fn make_legacy(engine: &SyncEngine, id: &str) {
    let mut record = engine
        .connectors
        .by_id(id)
        .await
        .expect("get")
        .expect("record");
    record.sink_secret_sealed = None;
    engine.connectors.update(&record).await.expect("update");
}

#[tokio::test]
async fn a_connectors_own_ragflow_key_is_used_and_never_shown() {
    const OWN_KEY: &str = "ragflow-tenant-own-key-5f6e7d8c9b0a";
    let jira = FakeJira::start(5).await;
    let ragflow = FakeRagflow::start_with_key(OWN_KEY).await;
    // The deployment has an operator key (fake_ragflow::API_KEY), pinned nowhere.
    let (engine, _queue) = sync_engine(embedded_table());
    let sink = json!({"type": "ragflow", "base_url": ragflow.base_url(),
        "dataset_id": fake_ragflow::DATASET_ID, "api_key": OWN_KEY});
    let id = create_direct(&engine, jira_body(&jira, sink)).await;
    let run = sync_once(&engine, &id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(ragflow.documents(fake_ragflow::DATASET_ID).len(), 5);
    let requests = ragflow.requests();
    assert!(
        requests
            .iter()
            .all(|r| r.bearer.as_deref() == Some(OWN_KEY)),
        "only the sink's own key is sent"
    );
    let record = engine
        .connectors
        .by_id(&id)
        .await
        .expect("get")
        .expect("record");
    let shown = connectors_api::view(&record).to_string();
    assert!(
        !shown.contains(OWN_KEY) && !shown.contains("sealed"),
        "{shown}"
    );
    let stored = serde_json::to_string(&record).expect("record json");
    assert!(!stored.contains(OWN_KEY), "stored sealed only");
}

#[tokio::test]
async fn a_stored_ragflow_sink_without_its_own_key_fails_the_run_unless_pinned() {
    let jira = FakeJira::start(3).await;
    let ragflow = FakeRagflow::start().await;
    let sink = json!({"type": "ragflow", "base_url": ragflow.base_url(),
        "dataset_id": fake_ragflow::DATASET_ID, "api_key": fake_ragflow::API_KEY});

    // Unpinned: the legacy sink's run fails with sink_credentials_required, no request sent.
    let (engine, _queue) = sync_engine(embedded_table());
    let id = create_direct(&engine, jira_body(&jira, sink.clone())).await;
    make_legacy(&engine, &id).await;
    let run = sync_once(&engine, &id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert!(
        run.errors
            .iter()
            .any(|e| e.contains("sink_credentials_required")),
        "{:?}",
        run.errors
    );
    assert!(ragflow.requests().is_empty(), "the operator key never left");

    // Pinned base URL and dataset for this workspace: the operator key works there.
    let base = ragflow.base_url();
    let (engine, _queue) = sync_engine_with_sinks(embedded_table(), |sinks| {
        sinks.pins.ragflow_base_urls = vec![base];
        sinks.pins.ragflow_datasets = vec![("workspace-1".into(), fake_ragflow::DATASET_ID.into())];
    });
    let id = create_direct(&engine, jira_body(&jira, sink)).await;
    make_legacy(&engine, &id).await;
    let run = sync_once(&engine, &id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(ragflow.documents(fake_ragflow::DATASET_ID).len(), 3);
    assert!(ragflow.requests().iter().all(|r| r.authorized));
}

#[tokio::test]
async fn webhook_sinks_sign_with_their_own_secret_or_a_pinned_operator_secret() {
    let jira = FakeJira::start(2).await;
    let receiver = Receiver::start().await;
    let sink = json!({"type": "webhook", "url": receiver.url, "secret": SECRET_A});
    let (engine, _queue) = sync_engine(embedded_table());
    let id = create_direct(&engine, jira_body(&jira, sink.clone())).await;
    assert_eq!(sync_once(&engine, &id).await.status, RunStatus::Completed);
    let signed = receiver.deliveries();
    assert!(!signed.is_empty());
    assert!(signed.iter().all(|d| d.signed_with(SECRET_A.as_bytes())));
    assert!(!signed.iter().any(|d| d.signed_with(WEBHOOK_SINK_SECRET)));

    // Legacy (no own secret) and unpinned: the run fails, nothing is sent.
    make_legacy(&engine, &id).await;
    jira.update_issue(jira.issues()[0].id.parse().expect("id"), "changed");
    let run = sync_once(&engine, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run
        .errors
        .iter()
        .any(|e| e.contains("sink_credentials_required")));
    assert_eq!(receiver.deliveries().len(), signed.len());

    // Pinned: the operator secret signs deliveries to that URL.
    let pinned = receiver.url.clone();
    let (engine, _queue) = sync_engine_with_sinks(embedded_table(), |sinks| {
        sinks.pins.webhook_urls = vec![pinned];
    });
    let id = create_direct(&engine, jira_body(&jira, sink)).await;
    make_legacy(&engine, &id).await;
    assert_eq!(sync_once(&engine, &id).await.status, RunStatus::Completed);
    let later = &receiver.deliveries()[signed.len()..];
    assert!(!later.is_empty());
    assert!(later.iter().all(|d| d.signed_with(WEBHOOK_SINK_SECRET)));
}

#[tokio::test]
async fn the_api_never_returns_sink_credentials_nor_sends_them_to_a_new_host() {
    let jira = FakeJira::start(1).await;
    let first = Receiver::start().await;
    let second = Receiver::start().await;
    let app = spawn_app().await;
    let session = app.signed_in("sink-credentials@example.com").await;

    // No credential of its own and nothing pinned: refused up front.
    let unkeyed = jira_body(&jira, json!({"type": "webhook", "url": first.url}));
    let (status, answer) =
        status_and_body(app.post_json("/connectors", &unkeyed, Some(&session)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "sink_credentials_required");

    let body = jira_body(
        &jira,
        json!({"type": "webhook", "url": first.url, "secret": SECRET_A}),
    );
    let (status, created) =
        status_and_body(app.post_json("/connectors", &body, Some(&session)).await).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (_, read) =
        status_and_body(app.get(&format!("/connectors/{id}"), Some(&session)).await).await;
    let (_, listed) = status_and_body(app.get("/connectors", Some(&session)).await).await;
    for shown in [&created, &read, &listed] {
        let text = shown.to_string();
        assert!(!text.contains(SECRET_A) && !text.contains("v1:"), "{text}");
    }
    assert_eq!(read["sink"], json!({"type": "webhook", "url": first.url}));

    let patch = |sink: Value| {
        let request = reqwest::Client::new()
            .patch(app.url(&format!("/connectors/{id}")))
            .bearer_auth(&session)
            .json(&json!({"sink": sink}));
        async move { status_and_body(request.send().await.expect("patch")).await }
    };
    // Another host without the secret again: refused, the stored secret stays home.
    let (status, answer) = patch(json!({"type": "webhook", "url": second.url})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "sink_credentials_required");
    // The same origin (another path) keeps the stored secret.
    let mut moved = first.url.clone();
    moved.set_path("/other-hook");
    let (status, answer) = patch(json!({"type": "webhook", "url": moved})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // Another host with a secret of its own: accepted.
    let (status, answer) =
        patch(json!({"type": "webhook", "url": second.url, "secret": SECRET_B})).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!answer.to_string().contains(SECRET_B));
    assert!(first.deliveries().is_empty() && second.deliveries().is_empty());
}

/// A schedule's input is plain text in the template and EventBridge, so a scheduled crawl
/// whose sink carries its own credential is refused before any job starts.
#[tokio::test]
async fn a_scheduled_crawl_refuses_a_sink_credential_in_its_plain_text_input() {
    let site = TestSite::start(vec![("/", Resource::page("Home", &[]))]).await;
    let app = spawn_app().await;
    let scheduled = |sink: Value| -> crawl_start::ScheduledCrawl {
        serde_json::from_value(json!({
            "user_id": "owner-1", "tenant_id": "tenant-1",
            "crawl": {"url": site.url("/"), "limit": 1, "ignore_sitemap": true, "sink": sink},
        }))
        .expect("event")
    };
    for sink in [
        json!({"type": "webhook", "url": "https://hooks.example.com/t", "secret": SECRET_A}),
        json!({"type": "ragflow", "base_url": "https://ragflow.example.com",
               "dataset_id": "ds1", "api_key": "ragflow-key-0123456789"}),
    ] {
        let refused = crawl_start::start_scheduled(&app.crawls, scheduled(sink.clone())).await;
        assert!(
            matches!(
                refused,
                Err(crawl_start::ScheduleError::PlaintextSinkCredential)
            ),
            "{sink}: {refused:?}"
        );
    }
    assert!(
        site.requested().is_empty(),
        "nothing was crawled: {:?}",
        site.requested()
    );
}
