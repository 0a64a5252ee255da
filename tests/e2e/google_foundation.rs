//! What the Google sources stand on: service-account tokens minted by the JWT bearer grant
//! (cached per user, re-minted after a 401, refused delegation reported as such) against a
//! token endpoint that verifies the assertion, and change-feed tombstones (`Batch.deleted`)
//! applied by the sync engine even while the slim listing still lists the file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};
use tributary::connectors::document::Document;
use tributary::connectors::google::{self, GoogleAuth, DRIVE_READONLY, GMAIL_READONLY};
use tributary::connectors::kit::SourceAuth;
use tributary::connectors::{Batch, Connector, ConnectorError, IdPage};
use tributary::http::RetryPolicy;
use tributary::sinks::SinkConfig;
use tributary::store::connectors::{ConnectorRecord, RunStatus, SourceKind};
use tributary::sync::{SyncMessage, SyncOutcome};
use tributary_e2e::app::{embedded_table, loopback_client, sync_engine, temp_dir};
use tributary_e2e::google::{
    service_account_credentials, unauthorized, FakeGoogleToken, TokenBook,
};

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(5),
    }
}

/// `GET /whoami`: the user the bearer token acts for, 401 in Google's shape otherwise.
async fn whoami_api(book: TokenBook) -> reqwest::Url {
    async fn whoami(State(book): State<TokenBook>, headers: HeaderMap) -> Response {
        match book.user_of_headers(&headers) {
            Some(user) => Json(json!({"emailAddress": user})).into_response(),
            None => unauthorized(),
        }
    }
    let router = axum::Router::new()
        .route("/whoami", get(whoami))
        .with_state(book);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    reqwest::Url::parse(&format!("http://{address}/")).expect("url")
}

async fn whoami_as(auth: &GoogleAuth, user: Option<&str>, base: &reqwest::Url) -> Value {
    let api = google::api_client(
        "Google test",
        "connector-google-1",
        user.unwrap_or("me"),
        base.clone(),
        auth.for_user(user).expect("auth"),
        loopback_client(Duration::from_secs(5)),
        retry(),
    );
    api.get(api.url("/whoami").expect("url"))
        .json::<Value>()
        .await
        .expect("whoami answers")
}

#[tokio::test]
async fn a_service_account_mints_one_token_per_user_caches_it_and_remints_after_a_401() {
    let book = TokenBook::new();
    let tokens = FakeGoogleToken::start(book.clone()).await;
    let api = whoami_api(book.clone()).await;
    let credentials = service_account_credentials(&tokens.token_uri(), Some("admin@example.com"));
    let auth = GoogleAuth::new(
        credentials.into(),
        loopback_client(Duration::from_secs(5)),
        &[DRIVE_READONLY, GMAIL_READONLY],
    );

    for user in ["ann@example.com", "bob@example.com", "ann@example.com"] {
        let me = whoami_as(&auth, Some(user), &api).await;
        assert_eq!(me["emailAddress"], json!(user));
    }
    let me = whoami_as(&auth, None, &api).await;
    assert_eq!(
        me["emailAddress"],
        json!("admin@example.com"),
        "the default subject"
    );
    let grants = tokens.grants();
    let subjects: Vec<_> = grants.iter().map(|g| g.subject.as_deref()).collect();
    assert_eq!(
        subjects,
        [
            Some("ann@example.com"),
            Some("bob@example.com"),
            Some("admin@example.com")
        ],
        "one grant per user: tokens are cached"
    );
    assert!(grants
        .iter()
        .all(|g| g.scope == format!("{DRIVE_READONLY} {GMAIL_READONLY}")));

    // Ann's token stops working: the 401 re-mints once and the call succeeds.
    book.revoke(&grants[0].token);
    let me = whoami_as(&auth, Some("ann@example.com"), &api).await;
    assert_eq!(me["emailAddress"], json!("ann@example.com"));
    assert_eq!(tokens.grants().len(), 4, "exactly one new token");
}

#[tokio::test]
async fn refused_delegation_is_an_authorisation_error_naming_the_user() {
    let book = TokenBook::new();
    let tokens = FakeGoogleToken::start(book.clone()).await;
    tokens.refuse_subject("eve@example.com");
    let api = whoami_api(book).await;
    let auth = GoogleAuth::new(
        service_account_credentials(&tokens.token_uri(), None).into(),
        loopback_client(Duration::from_secs(5)),
        &[DRIVE_READONLY],
    );
    let client = google::api_client(
        "Google test",
        "connector-google-2",
        "eve",
        api.clone(),
        auth.for_user(Some("eve@example.com")).expect("auth"),
        loopback_client(Duration::from_secs(5)),
        retry(),
    );
    let error = client
        .get(client.url("/whoami").expect("url"))
        .json::<Value>()
        .await
        .err();
    assert!(
        matches!(&error, Some(ConnectorError::Unauthorized(m)) if m.contains("eve@example.com") && m.contains("unauthorized_client")),
        "{error:?}"
    );
    let message = format!("{error:?}");
    assert!(!message.contains("BEGIN"), "no key material in errors");
}

#[tokio::test]
async fn a_key_that_is_not_rsa_fails_before_any_request() {
    let book = TokenBook::new();
    let tokens = FakeGoogleToken::start(book).await;
    let mut credentials = service_account_credentials(&tokens.token_uri(), None);
    if let tributary::connectors::Credentials::ServiceAccount { key, .. } = &mut credentials {
        key.private_key = tributary::connectors::service_account::PrivateKeyPem::new(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
    }
    let auth = GoogleAuth::new(
        credentials.into(),
        loopback_client(Duration::from_secs(5)),
        &[DRIVE_READONLY],
    );
    let SourceAuth::Connection(source) = auth.for_user(None).expect("auth") else {
        panic!("a minted token source");
    };
    let error = source.access_token().await.err();
    assert!(
        matches!(&error, Some(ConnectorError::Unauthorized(m)) if m.contains("private key")),
        "{error:?}"
    );
    assert!(tokens.grants().is_empty());
}

/// Delivers a, b, c; on later pulls reports `b` (and an id never delivered) gone while
/// its slim listing still lists all three.
struct FeedSource {
    scope: String,
    pulls: Arc<AtomicUsize>,
}

fn document(scope: &str, source_id: &str) -> Document {
    Document {
        id: Document::stable_id(scope, source_id),
        source: "test-feed".into(),
        source_id: source_id.into(),
        title: Some(source_id.into()),
        url: None,
        markdown: format!("# {source_id}\n"),
        metadata: serde_json::Map::new(),
        updated_at: "2026-01-01T00:00:00Z".into(),
        acl: vec![],
        file: None,
    }
}

#[async_trait::async_trait]
impl Connector for FeedSource {
    fn source(&self) -> &'static str {
        "test-feed"
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn pull(&self, _checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let first = self.pulls.fetch_add(1, Ordering::SeqCst) == 0;
        let (documents, deleted) = if first {
            (
                ["a", "b", "c"]
                    .iter()
                    .map(|id| document(&self.scope, id))
                    .collect(),
                Vec::new(),
            )
        } else {
            (
                vec![document(&self.scope, "d")],
                vec!["b".to_owned(), "never-delivered".to_owned(), "d".to_owned()],
            )
        };
        Ok(Batch {
            documents,
            failures: Vec::new(),
            skipped: Vec::new(),
            deleted,
            checkpoint: json!({"pulls": 1}),
            done: true,
        })
    }

    async fn list_ids(&self, _cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        Ok(IdPage {
            source_ids: ["a", "b", "c", "d"].map(str::to_owned).to_vec(),
            next: None,
        })
    }
}

#[tokio::test]
async fn the_engine_applies_change_feed_tombstones_without_waiting_for_the_listing() {
    let (engine, _queue) = sync_engine(embedded_table());
    let pulls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulls);
    let engine = engine.with_connector_factory(Arc::new(move |record: &ConnectorRecord| {
        Ok(Box::new(FeedSource {
            scope: format!("connector:{}", record.id),
            pulls: Arc::clone(&counter),
        }) as Box<dyn Connector>)
    }));
    let out = temp_dir("tributary-tombstones");
    let record = ConnectorRecord {
        id: "connector-feed-1".into(),
        workspace_id: "workspace-1".into(),
        source: SourceKind::Jira,
        name: "Feed".into(),
        config: json!({}),
        credentials_sealed: String::new(),
        sink: SinkConfig::Directory { path: out.clone() },
        sink_secret_sealed: None,
        schedule_minutes: None,
        webhook: None,
        created_at: 0,
        updated_at: 0,
        last_scheduled_at: None,
        item_version: 0,
    };
    engine.connectors.create(&record).await.expect("create");
    let run = || async {
        match engine
            .run(
                &SyncMessage::new("connector-feed-1", "manual"),
                Instant::now() + Duration::from_secs(60),
            )
            .await
            .expect("sync")
        {
            SyncOutcome::Finished(run) => run,
            other => panic!("{other:?}"),
        }
    };
    let first = run().await;
    assert_eq!(first.counts.added, 3, "{:?}", first.errors);
    let second = run().await;
    assert_eq!(second.status, RunStatus::Completed, "{:?}", second.errors);
    // `d` is reported gone and delivered in the same batch: it ends up present.
    assert_eq!((second.counts.deleted, second.counts.added), (1, 1));
    let mapped: Vec<String> = engine
        .connectors
        .documents("connector-feed-1", None)
        .await
        .expect("map")
        .0
        .into_iter()
        .map(|entry| entry.source_id)
        .collect();
    let mut mapped = mapped;
    mapped.sort();
    assert_eq!(mapped, ["a", "c", "d"]);
    let files = std::fs::read_dir(&out).expect("out").count();
    let b = Document::stable_id("connector:connector-feed-1", "b");
    assert!(
        std::fs::read_dir(&out).expect("out").all(|entry| !entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .contains(&b)),
        "b is gone from the sink ({files} files)"
    );
}
