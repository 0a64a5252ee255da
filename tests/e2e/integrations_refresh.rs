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
use tributary::integrations::{
    integrations_from, ConnectionService, RefreshPolicy, TokenClient, TokenSet,
};
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
    /// Answer every refresh with 503.
    down: bool,
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
    if provider.down {
        return (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response();
    }
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

/// A refresher that died holding the lock blocks others only until the lock expires.
async fn a_dead_holders_lock_expires(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    let service = cold_start(&table, &base);
    connect_expired(&service).await;
    let connections = Connections::new(Arc::clone(&table));
    let mut locked = connections.get(WS, "google").await.unwrap().unwrap();
    locked.refresh_lock_until = Some(now_epoch_seconds() + 1);
    locked.refresh_lock_holder = Some("a-crashed-lambda".into());
    connections.compare_and_swap(&locked).await.unwrap();

    let token = tokio::time::timeout(
        WAIT,
        service
            .token_source(WS, "google")
            .await
            .unwrap()
            .access_token(),
    )
    .await
    .expect("the waiter claimed the expired lock")
    .expect("a token");
    assert_eq!(token.expose(), "access-1");
    assert_eq!(fake.requests(), 1);
}

/// A lock that outlives the wait fails the caller as transient, without a provider call.
async fn a_waiter_gives_up_on_a_held_lock(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    let policy = RefreshPolicy {
        wait: Duration::from_millis(300),
        ..RefreshPolicy::default()
    };
    let service = ConnectionService::new(
        integrations_from(env(&base)).unwrap(),
        Arc::clone(&table),
        vault(),
        TokenClient::new(token_http_client().unwrap()),
        policy,
    );
    connect_expired(&service).await;
    let connections = Connections::new(Arc::clone(&table));
    let mut locked = connections.get(WS, "google").await.unwrap().unwrap();
    locked.refresh_lock_until = Some(now_epoch_seconds() + 600);
    locked.refresh_lock_holder = Some("a-slow-lambda".into());
    connections.compare_and_swap(&locked).await.unwrap();

    let result = service
        .token_source(WS, "google")
        .await
        .unwrap()
        .access_token()
        .await;
    assert!(
        matches!(&result, Err(error @ ConnectorError::Unavailable(_)) if error.is_transient()),
        "{result:?}"
    );
    assert_eq!(fake.requests(), 0);
}

/// A provider outage is transient: the connection stays active, the lock is released and
/// the error recorded; the next call refreshes with the same refresh token.
async fn an_outage_leaves_the_connection_active(table: Arc<dyn Table>) {
    let (fake, base) = start_fake().await;
    fake.lock().down = true;
    let service = cold_start(&table, &base);
    connect_expired(&service).await;
    let source = service.token_source(WS, "google").await.unwrap();
    assert!(matches!(
        source.access_token().await,
        Err(ConnectorError::Unavailable(_))
    ));
    let record = Connections::new(Arc::clone(&table))
        .get(WS, "google")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConnectionStatus::Active);
    assert!(record.refresh_lock_until.is_none());
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("503"),
        "{:?}",
        record.last_error
    );
    fake.lock().down = false;
    assert_eq!(source.access_token().await.unwrap().expose(), "access-1");
    assert_eq!(fake.requests(), 2);
    let record = Connections::new(Arc::clone(&table))
        .get(WS, "google")
        .await
        .unwrap()
        .unwrap();
    assert!(record.last_error.is_none());
}

/// What a scripted provider endpoint received.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A provider whose endpoints answer fixed bodies and record every request.
async fn scripted(
    answers: Vec<(&'static str, u16, serde_json::Value)>,
) -> (Arc<Mutex<Vec<Seen>>>, String) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let mut router = Router::new();
    for (path, status, answer) in answers {
        let seen = Arc::clone(&seen);
        router = router.route(
            path,
            post(move |headers: axum::http::HeaderMap, body: String| {
                let seen = Arc::clone(&seen);
                let answer = answer.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .map(str::to_owned)
                    };
                    seen.lock().unwrap().push(Seen {
                        path: path.to_owned(),
                        authorization: header("authorization"),
                        content_type: header("content-type"),
                        body,
                    });
                    (StatusCode::from_u16(status).unwrap(), Json(answer))
                }
            }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (seen, base)
}

/// The presets' request shapes on the wire: Notion's Basic auth + JSON body without PKCE,
/// Google's form with the secret and the PKCE verifier, Slack's HTTP 200 `ok:false`,
/// Dropbox's bearer revocation.
#[tokio::test]
async fn presets_send_their_request_shapes() {
    use base64::Engine as _;
    let (seen, base) = scripted(vec![
        (
            "/notion/token",
            200,
            json!({"access_token": "ntn_1", "token_type": "bearer", "refresh_token": "nrt_1",
                   "bot_id": "bot-1", "workspace_id": "w-1", "workspace_name": "Ada's",
                   "owner": {"type": "user", "user": {"id": "u-1", "name": "Ada"}}}),
        ),
        (
            "/google/token",
            200,
            json!({"access_token": "ya29", "expires_in": 3599, "refresh_token": "1//r",
                   "scope": "openid email", "token_type": "Bearer"}),
        ),
        (
            "/slack/token",
            200,
            json!({"ok": false, "error": "invalid_refresh_token"}),
        ),
        ("/dropbox/revoke", 200, json!(null)),
    ])
    .await;
    let vars: HashMap<String, String> = [
        (
            "TRIBUTARY_INTEGRATIONS",
            "notion,google,slack,dropbox".to_owned(),
        ),
        (
            "TRIBUTARY_INTEGRATION_NOTION_TOKEN_URL",
            format!("{base}/notion/token"),
        ),
        (
            "TRIBUTARY_INTEGRATION_GOOGLE_TOKEN_URL",
            format!("{base}/google/token"),
        ),
        (
            "TRIBUTARY_INTEGRATION_SLACK_TOKEN_URL",
            format!("{base}/slack/token"),
        ),
        (
            "TRIBUTARY_INTEGRATION_DROPBOX_REVOKE_URL",
            format!("{base}/dropbox/revoke"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(
        ["NOTION", "GOOGLE", "SLACK", "DROPBOX"]
            .into_iter()
            .flat_map(|name| {
                [
                    (
                        format!("TRIBUTARY_INTEGRATION_{name}_CLIENT_ID"),
                        format!("id-{name}"),
                    ),
                    (
                        format!("TRIBUTARY_INTEGRATION_{name}_CLIENT_SECRET"),
                        "s3cret".to_owned(),
                    ),
                ]
            }),
    )
    .collect();
    let integrations = integrations_from(|name| vars.get(name).cloned()).unwrap();
    let client = TokenClient::new(token_http_client().unwrap());
    let redirect = reqwest::Url::parse("https://app.example/integrations/x/callback").unwrap();

    let notion = client
        .exchange_code(
            integrations.get("notion").unwrap(),
            "code-n",
            Some("verifier"),
            &redirect,
        )
        .await
        .unwrap();
    assert_eq!(notion.account.workspace_name.as_deref(), Some("Ada's"));
    assert_eq!(notion.account.bot_id.as_deref(), Some("bot-1"));
    let google = client
        .exchange_code(
            integrations.get("google").unwrap(),
            "code-g",
            Some("verifier-g"),
            &redirect,
        )
        .await
        .unwrap();
    assert_eq!(google.refresh_token.as_deref(), Some("1//r"));
    let slack = client
        .refresh(integrations.get("slack").unwrap(), "xoxe-1-old")
        .await
        .unwrap_err();
    assert!(slack.is_invalid_grant(), "{slack:?}");
    let revoked = client
        .revoke(
            integrations.get("dropbox").unwrap(),
            &tributary::store::connections::StoredTokens {
                access_token: "sl.dropbox-access".into(),
                refresh_token: Some("dropbox-refresh".into()),
            },
        )
        .await
        .unwrap();
    assert!(revoked);

    let seen = seen.lock().unwrap().clone();
    let by_path = |path: &str| seen.iter().find(|s| s.path == path).unwrap().clone();
    let notion = by_path("/notion/token");
    let basic = base64::engine::general_purpose::STANDARD.encode("id-NOTION:s3cret");
    assert_eq!(notion.authorization, Some(format!("Basic {basic}")));
    assert!(notion.content_type.unwrap().starts_with("application/json"));
    let body: serde_json::Value = serde_json::from_str(&notion.body).unwrap();
    assert_eq!(body["grant_type"], "authorization_code");
    assert_eq!(body["code"], "code-n");
    assert_eq!(body["redirect_uri"], redirect.as_str());
    assert!(body.get("code_verifier").is_none(), "Notion takes no PKCE");
    assert!(body.get("client_secret").is_none());

    let google = by_path("/google/token");
    assert_eq!(google.authorization, None);
    let form = parse_form(&google.body);
    assert_eq!(form["client_id"], "id-GOOGLE");
    assert_eq!(form["client_secret"], "s3cret");
    assert_eq!(form["code_verifier"], "verifier-g");
    assert_eq!(form["redirect_uri"], redirect.as_str());

    let slack = by_path("/slack/token");
    assert!(slack.authorization.unwrap().starts_with("Basic "));
    assert_eq!(parse_form(&slack.body)["refresh_token"], "xoxe-1-old");

    let dropbox = by_path("/dropbox/revoke");
    assert_eq!(
        dropbox.authorization.as_deref(),
        Some("Bearer sl.dropbox-access")
    );
}

/// A Jira front that wants `Bearer <expected>` (a connection's token) and forwards to the
/// fake Jira with its Basic credentials; counts requests with another token.
async fn bearer_front(
    jira_base: String,
    expected: Arc<Mutex<String>>,
) -> (String, Arc<AtomicUsize>) {
    let refused = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let counter = Arc::clone(&refused);
    let router = Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: axum::body::Bytes| {
            let (client, expected, counter, jira_base) = (
                client.clone(),
                Arc::clone(&expected),
                Arc::clone(&counter),
                jira_base.clone(),
            );
            async move {
                let want = format!("Bearer {}", expected.lock().unwrap());
                let got = headers.get("authorization").and_then(|v| v.to_str().ok());
                if got != Some(want.as_str()) {
                    counter.fetch_add(1, Ordering::SeqCst);
                    return (StatusCode::UNAUTHORIZED, "bad token").into_response();
                }
                let target = format!(
                    "{jira_base}{}",
                    uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                );
                let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap();
                let mut request = client
                    .request(method, target)
                    .basic_auth(
                        tributary_e2e::fake_jira::EMAIL,
                        Some(tributary_e2e::fake_jira::API_TOKEN),
                    )
                    .body(body.to_vec());
                if let Some(kind) = headers.get("content-type").and_then(|v| v.to_str().ok()) {
                    request = request.header("content-type", kind);
                }
                let answer = request.send().await.unwrap();
                let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                let kind = answer
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                let bytes = answer.bytes().await.unwrap();
                (status, [("content-type", kind)], bytes.to_vec()).into_response()
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (base, refused)
}

/// The acceptance case: 20 concurrent syncs (20 connectors, 20 sync engines as 20 Lambdas)
/// of a source authorised by one expired connection: exactly one token request, and all
/// 20 syncs finish with the new token.
async fn twenty_syncs_one_refresh(table: Arc<dyn Table>) {
    use tributary::store::connectors::RunStatus;
    use tributary::sync::{SyncMessage, SyncOutcome};
    use tributary_e2e::app::{create_direct, sync_engine, temp_dir};
    const WORKSPACE: &str = "workspace-1";

    let (fake, base) = start_fake().await;
    let jira = tributary_e2e::fake_jira::FakeJira::start(3).await;
    let expected = Arc::new(Mutex::new("access-1".to_owned()));
    let (front, refused) = bearer_front(jira.base_url(), Arc::clone(&expected)).await;
    let engine_for = |table: &Arc<dyn Table>| {
        sync_engine(Arc::clone(table))
            .0
            .with_connections(Arc::new(cold_start(table, &base)))
    };
    let setup = cold_start(&table, &base);
    setup
        .connect(
            WORKSPACE,
            "google",
            TokenSet {
                access_token: "access-0".into(),
                refresh_token: Some("refresh-0".into()),
                expires_at: Some(now_epoch_seconds() - 60),
                scopes: vec![],
                token_type: None,
                account: ConnectionAccount::default(),
            },
        )
        .await
        .unwrap();
    // Creating tests the connection, which refreshes once (access-1).
    let creator = engine_for(&table);
    let out = temp_dir("integrations-syncs");
    let mut ids = Vec::new();
    for n in 0..CALLERS {
        let body = json!({
            "name": format!("Jira {n}"),
            "source": "jira",
            "config": {"base_url": front, "project_keys": [tributary_e2e::fake_jira::PROJECT]},
            "credentials": {"type": "connection", "provider": "google"},
            "sink": {"type": "directory", "path": out.join(n.to_string())},
        });
        ids.push(create_direct(&creator, body).await);
    }
    assert_eq!(fake.requests(), 1);
    // Expire the connection again; the syncs must refresh it (to access-2) exactly once.
    let connections = Connections::new(Arc::clone(&table));
    let mut record = connections.get(WORKSPACE, "google").await.unwrap().unwrap();
    record.expires_at = Some(now_epoch_seconds() - 1);
    connections.compare_and_swap(&record).await.unwrap();
    *expected.lock().unwrap() = "access-2".into();

    fake.gated.store(true, Ordering::SeqCst);
    let arrived = fake.arrived.notified();
    tokio::pin!(arrived);
    arrived.as_mut().enable();
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let engine = engine_for(&table);
            let message = SyncMessage::new(id, "manual");
            tokio::spawn(async move {
                engine
                    .run(
                        &message,
                        std::time::Instant::now() + Duration::from_secs(60),
                    )
                    .await
            })
        })
        .collect();
    tokio::time::timeout(WAIT, arrived)
        .await
        .expect("a token request reached the provider");
    fake.gated.store(false, Ordering::SeqCst);
    fake.gate.notify_waiters();
    for task in tasks {
        let outcome = tokio::time::timeout(WAIT, task)
            .await
            .expect("the sync finished")
            .unwrap()
            .expect("the sync ran");
        let SyncOutcome::Finished(run) = outcome else {
            panic!("expected a finished run, got {outcome:?}");
        };
        assert_eq!(run.status, RunStatus::Completed, "{:?}", run.errors);
        assert_eq!(run.counts.added, 3);
    }
    assert_eq!(
        fake.requests(),
        2,
        "one refresh at create time, one for the 20 syncs"
    );
    assert_eq!(
        refused.load(Ordering::SeqCst),
        0,
        "no request used a stale token"
    );
    let tokens = connections.get(WORKSPACE, "google").await.unwrap().unwrap();
    let tokens = tokens.open_tokens(&vault()).unwrap();
    assert_eq!(tokens.refresh_token.as_deref(), Some("refresh-2"));
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
    a_dead_holders_lock_expires,
    a_waiter_gives_up_on_a_held_lock,
    an_outage_leaves_the_connection_active,
    twenty_syncs_one_refresh,
);
