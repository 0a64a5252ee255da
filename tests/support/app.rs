//! `spawn_app`: the local stack's router on a random loopback port, over a fresh store.

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tributary::auth::oauth::{ProviderConfig, SignIn};
use tributary::auth::SessionKeys;
use tributary::crawl::engine::CrawlEngine;
use tributary::crawl::fetch::Fetcher;
use tributary::crawl::setup::{fetcher_for, local_queue};
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::queue::Queue;
use tributary::sinks::SinkEnvironment;
use tributary::store::{DynamoTable, EmbeddedTable, Table};
use tributary::Services;

use crate::moto;

/// A session signing key for tests only.
pub const TEST_SIGNING_KEY: &[u8] = b"e2e-signing-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
pub const PASSWORD: &str = "plum-orbit-cactus-41-velvet";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub services: Services,
    pub sign_in: SignIn,
    /// The crawl engine behind the crawl routes; nothing consumes its queue unless a test
    /// runs workers (`tributary_local::crawl`).
    pub crawls: Arc<CrawlEngine>,
    pub crawl_queue: Arc<dyn Queue>,
    /// The sync engine behind the connector routes, and its (shared) queue.
    pub syncs: Arc<tributary::sync::SyncEngine>,
    pub sync_queue: Arc<dyn Queue>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Dropping the app stops its server (and releases its store).
impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(moto::unique_name(prefix));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

pub fn embedded_table() -> Arc<dyn Table> {
    let path = temp_dir("tributary-app").join("store.sqlite");
    Arc::new(EmbeddedTable::open(&path).expect("open embedded store"))
}

pub async fn dynamo_table() -> Arc<dyn Table> {
    let client = moto::dynamodb_client().await;
    let name = moto::unique_name("tributary");
    tributary::store::dynamodb::create_table(&client, &name)
        .await
        .expect("create table on moto");
    Arc::new(DynamoTable::new(client, name))
}

pub fn services_over(table: Arc<dyn Table>) -> Services {
    Services::new(
        table,
        SessionKeys::new(TEST_SIGNING_KEY, 3600).expect("test key"),
    )
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(services_over(embedded_table())).await
}

pub async fn spawn_app_with(services: Services) -> TestApp {
    spawn_app_with_providers(services, Vec::new(), std::time::Duration::from_secs(60)).await
}

/// The app with these sign-in providers and JWKS refetch cooldown.
pub async fn spawn_app_with_providers(
    services: Services,
    providers: Vec<ProviderConfig>,
    jwks_cooldown: std::time::Duration,
) -> TestApp {
    let http = tributary::http::back_channel_client().expect("http client");
    let sign_in = SignIn::new(providers, services.table.clone(), http, jwks_cooldown)
        .expect("valid providers");
    spawn(services, sign_in).await
}

/// A crawl engine over `table` and a fresh embedded queue, fetching with `policy`; the
/// operator's webhook secret is [`WEBHOOK_SINK_SECRET`] (pinned to no URL, as a deployment
/// without pins: sinks bring their own).
pub fn crawl_engine(
    table: Arc<dyn Table>,
    policy: NetworkPolicy,
) -> (Arc<CrawlEngine>, Arc<dyn Queue>) {
    let queue: Arc<dyn Queue> =
        Arc::new(local_queue(&temp_dir("tributary-queue")).expect("open embedded queue"));
    crawl_engine_with_queue(table, queue, policy)
}

pub const WEBHOOK_SINK_SECRET: &[u8] = b"e2e-webhook-secret-0a1b2c3d4e5f60718293a4b5c6d7e8f9";

pub fn crawl_engine_with_queue(
    table: Arc<dyn Table>,
    queue: Arc<dyn Queue>,
    policy: NetworkPolicy,
) -> (Arc<CrawlEngine>, Arc<dyn Queue>) {
    crawl_engine_with(table, queue, fetcher_for(policy).expect("fetcher"))
}

/// A crawl engine with this fetcher (its own limits) and a fresh embedded queue.
pub fn crawl_engine_with_fetcher(
    table: Arc<dyn Table>,
    fetcher: Fetcher,
) -> (Arc<CrawlEngine>, Arc<dyn Queue>) {
    let queue: Arc<dyn Queue> =
        Arc::new(local_queue(&temp_dir("tributary-queue")).expect("open embedded queue"));
    crawl_engine_with(table, queue, fetcher)
}

pub fn crawl_engine_with(
    table: Arc<dyn Table>,
    queue: Arc<dyn Queue>,
    fetcher: Fetcher,
) -> (Arc<CrawlEngine>, Arc<dyn Queue>) {
    let sinks = SinkEnvironment {
        directory_sinks_allowed: true,
        webhook_secret: Some(WEBHOOK_SINK_SECRET.to_vec()),
        http: fetcher.client().clone(),
        ragflow_api_key: None,
        pins: Default::default(),
        vault: Some(tributary::vault::Vault::from_hex(TEST_ENCRYPTION_KEY).expect("test key")),
    };
    let engine = CrawlEngine::new(table, queue.clone(), fetcher, sinks);
    (Arc::new(engine), queue)
}

/// The app whose crawls and scrapes fetch under `policy` (the default app allows loopback,
/// where the test sites live).
pub async fn spawn_app_with_crawl_policy(policy: NetworkPolicy) -> TestApp {
    let services = services_over(embedded_table());
    let http = tributary::http::back_channel_client().expect("http client");
    let sign_in = SignIn::new(
        Vec::new(),
        services.table.clone(),
        http,
        std::time::Duration::from_secs(60),
    )
    .expect("no providers");
    spawn_with_policy(services, sign_in, policy).await
}

async fn spawn(services: Services, sign_in: SignIn) -> TestApp {
    spawn_with_policy(services, sign_in, NetworkPolicy::allow_private()).await
}

/// A guarded client that may reach loopback (where the fakes live), with this timeout.
pub fn loopback_client(timeout: std::time::Duration) -> tributary::http::GuardedClient {
    let options = tributary::http::ClientOptions {
        timeout,
        ..Default::default()
    };
    tributary::http::GuardedClient::new(Arc::new(NetworkPolicy::allow_private()), &options)
        .expect("client")
}

/// A key for the tests' vault only.
pub const TEST_ENCRYPTION_KEY: &str =
    "3c1f5e7a9b2d4f6081a3c5e7092b4d6f8a1c3e5f7091b3d5f7a9c1e3f5071a3c";

/// A sync engine over `table` with one embedded queue for every source; loopback allowed
/// for webhook sinks and fake providers.
pub fn sync_engine(table: Arc<dyn Table>) -> (tributary::sync::SyncEngine, Arc<dyn Queue>) {
    sync_engine_with_sinks(table, |_| {})
}

/// [`sync_engine`] with its sink environment changed by `configure` (e.g. operator pins).
pub fn sync_engine_with_sinks(
    table: Arc<dyn Table>,
    configure: impl FnOnce(&mut SinkEnvironment),
) -> (tributary::sync::SyncEngine, Arc<dyn Queue>) {
    let queue: Arc<dyn Queue> =
        Arc::new(local_queue(&temp_dir("tributary-sync-queue")).expect("open embedded queue"));
    let fetcher = fetcher_for(NetworkPolicy::allow_private()).expect("fetcher");
    let sinks = SinkEnvironment {
        directory_sinks_allowed: true,
        webhook_secret: Some(WEBHOOK_SINK_SECRET.to_vec()),
        http: fetcher.client().clone(),
        ragflow_api_key: Some(crate::fake_ragflow::API_KEY.to_owned()),
        pins: Default::default(),
        vault: None,
    };
    let mut sinks = sinks;
    configure(&mut sinks);
    let vault = tributary::vault::Vault::from_hex(TEST_ENCRYPTION_KEY).expect("test key");
    let retry = tributary::http::RetryPolicy {
        base_delay: std::time::Duration::from_millis(10),
        ..Default::default()
    };
    let engine = tributary::sync::SyncEngine::new(
        table,
        tributary::sync::SyncQueues::shared(queue.clone()),
        vault,
        sinks,
        fetcher.client().clone(),
    )
    .with_retry(retry)
    .with_policy(Arc::new(NetworkPolicy::allow_private()));
    (engine, queue)
}

/// The provider-connection routes' state over `table`: these providers, the test vault key,
/// and callbacks under `public_url` (None: the address the app binds).
pub fn integration_state(
    table: Arc<dyn Table>,
    providers: tributary::integrations::Integrations,
    public_url: Option<reqwest::Url>,
) -> integration_login::IntegrationState {
    let vault = tributary::vault::Vault::from_hex(TEST_ENCRYPTION_KEY).expect("test key");
    let http = tributary::integrations::setup::token_http_client().expect("token client");
    let connections = tributary::integrations::ConnectionService::new(
        providers,
        table.clone(),
        vault,
        tributary::integrations::TokenClient::new(http),
        tributary::integrations::RefreshPolicy::default(),
    );
    integration_login::IntegrationState::new(
        connections,
        tributary::store::connect_states::ConnectStates::new(table),
        public_url,
    )
}

async fn spawn_with_policy(services: Services, sign_in: SignIn, policy: NetworkPolicy) -> TestApp {
    let (crawls, crawl_queue) = crawl_engine(services.table.clone(), policy);
    let (syncs, sync_queue) = sync_engine(services.table.clone());
    let syncs = Arc::new(syncs);
    let (bound, server) = tributary_local::bind(
        services.clone(),
        sign_in.clone(),
        tributary_local::Engines {
            crawls: crawls.clone(),
            syncs: syncs.clone(),
            integrations: integration_state(
                services.table.clone(),
                tributary::integrations::Integrations::default(),
                None,
            ),
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("bind a loopback port");
    let server = tokio::spawn(server);
    TestApp {
        server,
        address: format!("http://{bound}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        services,
        sign_in,
        crawls,
        crawl_queue,
        syncs,
        sync_queue,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post_json(&self, path: &str, body: &Value, bearer: Option<&str>) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(bearer)
            .send()
            .await
            .expect("request")
    }

    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post_json(
                "/auth/register",
                &json!({"email": email, "password": PASSWORD, "name": "Test User"}),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    pub async fn login(&self, email: &str) -> String {
        let response = self
            .post_json(
                "/auth/login",
                &json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// A registered user's session token.
    pub async fn signed_in(&self, email: &str) -> String {
        self.register(email).await;
        self.login(email).await
    }

    /// Creates an API token; returns the whole response body.
    pub async fn api_token(&self, session: &str, scopes: &[&str]) -> Value {
        let response = self
            .post_json(
                "/api-tokens",
                &json!({"name": "test token", "scopes": scopes}),
                Some(session),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }
}

/// Status and JSON body, asserting the `{code, message}` error shape on 4xx/5xx.
pub async fn status_and_body(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    if status.is_client_error() || status.is_server_error() {
        assert!(
            body["code"].is_string(),
            "error without code: {status} {body}"
        );
        assert!(
            body["message"].is_string(),
            "error without message: {status} {body}"
        );
    }
    (status, body)
}

/// A crawl of `url` with the defaults (sitemap ignored, for predictable page sets).
pub fn crawl_request(
    url: &str,
    sink: Option<tributary::sinks::SinkRequest>,
) -> tributary::crawl::job::CrawlRequest {
    tributary::crawl::job::CrawlRequest {
        url: url.to_owned(),
        limit: None,
        max_depth: None,
        include_paths: vec![],
        exclude_paths: vec![],
        allow_subdomains: false,
        allow_external: false,
        ignore_sitemap: true,
        ignore_query_params: false,
        only_main_content: None,
        sink,
    }
}

/// The SQS event record Lambda would hand a function for a received queue message.
pub fn sqs_record(
    message: &tributary::queue::ReceivedMessage,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
    record.message_id = Some(message.receipt_handle.clone());
    record.body = Some(message.body.clone());
    record.attributes = std::collections::HashMap::from([(
        "ApproximateReceiveCount".to_owned(),
        message.receive_count.to_string(),
    )]);
    record
}

/// Creates a connector in `workspace-1` straight through the connectors API's handler code
/// (no HTTP, no token); returns its id.
pub async fn create_direct(engine: &tributary::sync::SyncEngine, body: Value) -> String {
    let request: connectors_api::CreateRequest = serde_json::from_value(body).expect("request");
    connectors_api::create_connector(engine, "workspace-1", request)
        .await
        .expect("create")
        .id
}
