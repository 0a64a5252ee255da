//! Refresh of workspace provider connections that cannot race: many token sources (as if
//! many Lambdas, or many syncs in one) on one expired connection send exactly one token
//! request; the rotated refresh token is persisted; `invalid_grant` marks the connection
//! `needs_reauth` and nothing calls the provider again. Over the embedded store and over
//! DynamoDB (moto). The provider is a local fake token endpoint that rotates refresh
//! tokens and, like real providers with reuse detection, refuses a used one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use tokio::sync::Notify;
use tributary::connectors::kit::{AccessToken, AccessTokenSource, ConnectionResolver};
use tributary::connectors::ConnectorError;
use tributary::integrations::setup::{connections_from, token_http_client};
use tributary::integrations::{ConnectionService, TokenSet};
use tributary::store::connections::{ConnectionAccount, ConnectionStatus, Connections};
use tributary::store::{now_epoch_seconds, Table};
use tributary::vault::Vault;

const KEY: &str = "6f1c2b3a5d6e7f8091a2b3c4d5e6f7080f1e2d3c4b5a69788796a5b4c3d2e1f0";
const CLIENT_ID: &str = "tributary-test-client";
const CLIENT_SECRET: &str = "fake-provider-secret-9a8b7c";
const WS: &str = "ws-refresh";
const CALLERS: usize = 20;
const WAIT: Duration = Duration::from_secs(20);

/// An `application/x-www-form-urlencoded` body (axum's `Form` is not enabled here).
fn parse_form(body: &str) -> HashMap<String, String> {
    fn decode(part: &str) -> String {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

#[derive(Default)]
struct Provider {
    /// The refresh token the provider currently honours; older ones are reuse.
    current_refresh: String,
    generation: usize,
    /// Answer every refresh with `invalid_grant`.
    refuse: bool,
    /// Form bodies of the revocation requests.
    revoked: Vec<HashMap<String, String>>,
}

#[derive(Clone)]
struct Fake {
    state: Arc<Mutex<Provider>>,
    token_requests: Arc<AtomicUsize>,
    /// Token answers wait for this while `gated` (so racing callers really overlap).
    gate: Arc<Notify>,
    gated: Arc<std::sync::atomic::AtomicBool>,
    arrived: Arc<Notify>,
}

impl Fake {
    fn requests(&self) -> usize {
        self.token_requests.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Provider> {
        self.state.lock().expect("fake provider state")
    }
}

async fn token(State(fake): State<Fake>, body: String) -> Response {
    let form = parse_form(&body);
    fake.token_requests.fetch_add(1, Ordering::SeqCst);
    fake.arrived.notify_waiters();
    loop {
        let opened = fake.gate.notified();
        tokio::pin!(opened);
        opened.as_mut().enable();
        if !fake.gated.load(Ordering::SeqCst) {
            break;
        }
        opened.await;
    }
    let error = |code: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response()
    };
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return error("invalid_client", "client authentication failed");
    }
    if form.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return error("unsupported_grant_type", "only refresh_token here");
    }
    let mut provider = fake.lock();
    if provider.refuse {
        return error("invalid_grant", "grant request is invalid");
    }
    if form.get("refresh_token") != Some(&provider.current_refresh) {
        // Reuse detection: a used refresh token revokes the grant.
        provider.refuse = true;
        return error("invalid_grant", "refresh token reuse detected");
    }
    provider.generation += 1;
    let generation = provider.generation;
    provider.current_refresh = format!("refresh-{generation}");
    Json(json!({
        "access_token": format!("access-{generation}"),
        "refresh_token": provider.current_refresh,
        "expires_in": 3600,
        "token_type": "Bearer",
        "scope": "openid email"
    }))
    .into_response()
}

async fn revoke(State(fake): State<Fake>, body: String) -> StatusCode {
    let form = parse_form(&body);
    fake.lock().revoked.push(form);
    StatusCode::OK
}

async fn start_fake() -> (Fake, String) {
    let fake = Fake {
        state: Arc::new(Mutex::new(Provider {
            current_refresh: "refresh-0".into(),
            ..Provider::default()
        })),
        token_requests: Arc::new(AtomicUsize::new(0)),
        gate: Arc::new(Notify::new()),
        gated: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        arrived: Arc::new(Notify::new()),
    };
    let router = Router::new()
        .route("/token", post(token))
        .route("/revoke", post(revoke))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake provider");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("fake provider");
    });
    (fake, base)
}

/// The environment of one cold start: the google preset pointed at the fake.
fn env(base: &str) -> impl Fn(&str) -> Option<String> {
    let vars: HashMap<String, String> = [
        ("TRIBUTARY_INTEGRATIONS", "google".to_owned()),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_ID",
            CLIENT_ID.to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_TOKEN_URL",
            format!("{base}/token"),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_REVOKE_URL",
            format!("{base}/revoke"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    move |name| vars.get(name).cloned()
}

/// A connection service as one Lambda cold start would build it.
fn cold_start(table: &Arc<dyn Table>, base: &str) -> ConnectionService {
    connections_from(
        env(base),
        Arc::clone(table),
        Vault::from_hex(KEY).expect("key"),
        token_http_client().expect("token client"),
    )
    .expect("configuration")
    .expect("integrations are configured")
}

fn vault() -> Vault {
    Vault::from_hex(KEY).expect("key")
}

/// Connects the workspace with an access token that expired a minute ago.
async fn connect_expired(service: &ConnectionService) {
    service
        .connect(
            WS,
            "google",
            TokenSet {
                access_token: "access-0".into(),
                refresh_token: Some("refresh-0".into()),
                expires_at: Some(now_epoch_seconds() - 60),
                scopes: vec!["openid".into(), "email".into()],
                token_type: Some("Bearer".into()),
                account: ConnectionAccount {
                    account_name: Some("ada@example.com".into()),
                    ..ConnectionAccount::default()
                },
            },
        )
        .await
        .expect("connect");
}

async fn stored_tokens(table: &Arc<dyn Table>) -> (String, Option<String>) {
    let record = Connections::new(Arc::clone(table))
        .get(WS, "google")
        .await
        .expect("read")
        .expect("connection");
    let tokens = record.open_tokens(&vault()).expect("open");
    (tokens.access_token, tokens.refresh_token)
}

/// Runs `CALLERS` `access_token()` calls at once, one token source each, with the fake's
/// answer held until the winner's request has arrived and every caller is in flight.
async fn race(fake: &Fake, sources: Vec<Arc<dyn AccessTokenSource>>) -> Vec<String> {
    fake.gated.store(true, Ordering::SeqCst);
    let started = Arc::new(AtomicUsize::new(0));
    let arrived = fake.arrived.notified();
    tokio::pin!(arrived);
    arrived.as_mut().enable();
    let tasks: Vec<_> = sources
        .into_iter()
        .map(|source| {
            let started = Arc::clone(&started);
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                source.access_token().await
            })
        })
        .collect();
    tokio::time::timeout(WAIT, arrived)
        .await
        .expect("a token request reached the provider");
    tokio::time::timeout(WAIT, async {
        while started.load(Ordering::SeqCst) < tasks.len() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every caller started");
    fake.gated.store(false, Ordering::SeqCst);
    fake.gate.notify_waiters();
    let mut tokens = Vec::new();
    for task in tasks {
        let token = tokio::time::timeout(WAIT, task)
            .await
            .expect("the caller finished")
            .expect("the task did not panic")
            .expect("a token");
        tokens.push(token.expose().to_owned());
    }
    tokens
}

/// 20 cold starts (separate services: no in-process sharing) on one expired connection.
async fn one_refresh_across_processes(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    connect_expired(&cold_start(&table, &base)).await;
    let mut sources = Vec::new();
    for _ in 0..CALLERS {
        let service = cold_start(&table, &base);
        sources.push(service.token_source(WS, "google").await.expect("source"));
    }
    let tokens = race(&fake, sources).await;
    assert_eq!(fake.requests(), 1, "exactly one token request");
    assert!(tokens.iter().all(|t| t == "access-1"), "{tokens:?}");
    // The rotated refresh token is what is stored, and the lock is gone.
    assert_eq!(
        stored_tokens(&table).await,
        ("access-1".into(), Some("refresh-1".into()))
    );
    let record = Connections::new(Arc::clone(&table))
        .get(WS, "google")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConnectionStatus::Active);
    assert!(record.refresh_lock_until.is_none());
    assert!(record.last_refresh_at.is_some());
    assert!(record.expires_at.unwrap() > now_epoch_seconds() + 3000);

    // Expired again: the next refresh uses the rotated token (the fake refuses reuse).
    let mut expired = record.clone();
    expired.expires_at = Some(now_epoch_seconds() - 1);
    Connections::new(Arc::clone(&table))
        .compare_and_swap(&expired)
        .await
        .unwrap();
    let again = cold_start(&table, &base)
        .token_source(WS, "google")
        .await
        .unwrap()
        .access_token()
        .await
        .expect("second refresh");
    assert_eq!(again.expose(), "access-2");
    assert_eq!(fake.requests(), 2);
    assert_eq!(
        stored_tokens(&table).await,
        ("access-2".into(), Some("refresh-2".into()))
    );
}

/// 20 syncs in one process share one in-flight refresh.
async fn one_refresh_in_process(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    let service = cold_start(&table, &base);
    connect_expired(&service).await;
    let mut sources = Vec::new();
    for _ in 0..CALLERS {
        sources.push(service.token_source(WS, "google").await.expect("source"));
    }
    let tokens = race(&fake, sources).await;
    assert_eq!(fake.requests(), 1);
    assert!(tokens.iter().all(|t| t == "access-1"), "{tokens:?}");
}

/// A 401 replaces the rejected token once, however many callers saw it refused.
async fn a_rejected_token_is_replaced_once(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    let service = cold_start(&table, &base);
    service
        .connect(
            WS,
            "google",
            TokenSet {
                access_token: "access-0".into(),
                refresh_token: Some("refresh-0".into()),
                expires_at: Some(now_epoch_seconds() + 3600),
                scopes: vec![],
                token_type: None,
                account: ConnectionAccount::default(),
            },
        )
        .await
        .unwrap();
    let source = cold_start(&table, &base)
        .token_source(WS, "google")
        .await
        .unwrap();
    let first = source.access_token().await.unwrap();
    assert_eq!(first.expose(), "access-0");
    assert_eq!(fake.requests(), 0, "a valid token needs no refresh");

    let rejected = AccessToken::new("access-0");
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let source = cold_start(&table, &base)
            .token_source(WS, "google")
            .await
            .unwrap();
        let rejected = rejected.clone();
        tasks.push(tokio::spawn(async move {
            source.refresh_rejected(&rejected).await
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose(), "access-1");
    }
    assert_eq!(fake.requests(), 1);
    // The old source asks again with the token it was refused: no new request.
    assert_eq!(
        source.refresh_rejected(&rejected).await.unwrap().expose(),
        "access-1"
    );
    assert_eq!(fake.requests(), 1);
}

/// `invalid_grant` marks the connection and stops every later call before the provider.
async fn invalid_grant_needs_reauth_and_fails_fast(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    fake.lock().refuse = true;
    let service = cold_start(&table, &base);
    connect_expired(&service).await;
    let source = service.token_source(WS, "google").await.unwrap();
    let error = source.access_token().await.unwrap_err();
    let ConnectorError::Unauthorized(message) = &error else {
        panic!("expected Unauthorized, got {error:?}");
    };
    assert!(
        message.contains("reconnect") && message.contains("invalid_grant"),
        "{message}"
    );
    assert_eq!(fake.requests(), 1);
    let record = Connections::new(Arc::clone(&table))
        .get(WS, "google")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConnectionStatus::NeedsReauth);
    assert!(record.refresh_lock_until.is_none());
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap()
            .contains("invalid_grant"),
        "{:?}",
        record.last_error
    );
    let view = service.list(WS).await.unwrap();
    assert_eq!(view[0].status, ConnectionStatus::NeedsReauth);

    // No retry storm: the same source, new sources and other processes all fail fast.
    for _ in 0..3 {
        assert!(matches!(
            source.access_token().await,
            Err(ConnectorError::Unauthorized(_))
        ));
        assert!(matches!(
            source.refresh_rejected(&AccessToken::new("access-0")).await,
            Err(ConnectorError::Unauthorized(_))
        ));
        let resolved = cold_start(&table, &base).token_source(WS, "google").await;
        assert!(
            matches!(resolved, Err(ConnectorError::Unauthorized(m)) if m.contains("reconnect"))
        );
    }
    assert_eq!(fake.requests(), 1);

    // Reconnecting makes it active again.
    fake.lock().refuse = false;
    connect_expired(&service).await;
    let token = service
        .token_source(WS, "google")
        .await
        .unwrap()
        .access_token()
        .await
        .unwrap();
    assert_eq!(token.expose(), "access-1");
}

/// Disconnect revokes the refresh token at the provider, then deletes; a missing
/// connection or another workspace's is not found.
async fn disconnect_revokes_then_deletes(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    let service = cold_start(&table, &base);
    connect_expired(&service).await;
    assert!(!service.disconnect("another-ws", "google").await.unwrap());
    assert!(service.disconnect(WS, "google").await.unwrap());
    let revoked = fake.lock().revoked.clone();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["token"], "refresh-0");
    assert_eq!(revoked[0]["token_type_hint"], "refresh_token");
    assert!(service.list(WS).await.unwrap().is_empty());
    assert!(!service.disconnect(WS, "google").await.unwrap());
    assert!(matches!(
        service.token_source(WS, "google").await,
        Err(ConnectorError::Unauthorized(_))
    ));
    assert!(service.disconnect(WS, "unknown").await.is_err());
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(crate::store_contract::embedded_table().0).await })*
        }
        mod dynamodb {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() { super::$case(crate::store_contract::dynamo_table().await).await })*
        }
    };
}

suite!(
    one_refresh_across_processes,
    one_refresh_in_process,
    a_rejected_token_is_replaced_once,
    invalid_grant_needs_reauth_and_fails_fast,
    disconnect_revokes_then_deletes,
);
