//! Issue 8, points 3–5: the guarded client through a connector (a hostile source's
//! attachment redirects never reach a refused address), stored credentials never follow a
//! connector to a new host, and only the functions that issue or check sessions get the
//! session signing key.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary::connectors::jira::{JiraConfig, JiraConnector};
use tributary::connectors::Connector;
use tributary::crawl::ssrf::NetworkPolicy;
use tributary::http::{ClientOptions, GuardedClient, RetryPolicy};
use tributary_e2e::app::{spawn_app, status_and_body, temp_dir, TEST_ENCRYPTION_KEY};
use tributary_e2e::fake_jira::{self, FakeJira};

const CANARY_BODY: &str = "CANARY-7f3a: the internal service answered";

/// A server on 127.0.0.2 (another loopback address than the fakes' 127.0.0.1), counting
/// every request that reaches it.
async fn canary() -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind 127.0.0.2");
    let port = listener.local_addr().expect("address").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&hits);
    let app = Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { CANARY_BODY }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hits)
}

fn client(allowed: &[&str]) -> GuardedClient {
    let nets = allowed
        .iter()
        .map(|net| net.parse().expect("cidr"))
        .collect();
    let options = ClientOptions {
        timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    };
    GuardedClient::new(
        Arc::new(NetworkPolicy::with_allowed_networks(nets)),
        &options,
    )
    .expect("client")
}

fn connector(fake: &FakeJira, http: GuardedClient) -> JiraConnector {
    let config: JiraConfig = serde_json::from_value(json!({
        "base_url": fake.base_url(),
        "project_keys": [fake_jira::PROJECT],
        "attachments": true,
    }))
    .expect("config");
    let retry = RetryPolicy {
        base_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    JiraConnector::new("ssrf-test", config, fake.credentials(), http, retry).expect("connector")
}

/// Every document's markdown after a full pull (every batch must succeed).
async fn pull_all(connector: &JiraConnector) -> Vec<(String, String)> {
    let mut documents = Vec::new();
    let mut checkpoint: Option<Value> = None;
    for _ in 0..100 {
        let batch = connector
            .pull(checkpoint.as_ref())
            .await
            .expect("the batch succeeds: a refused attachment must not fail the sync");
        documents.extend(
            batch
                .documents
                .into_iter()
                .map(|doc| (doc.source_id, doc.markdown)),
        );
        if batch.done {
            return documents;
        }
        checkpoint = Some(batch.checkpoint);
    }
    panic!("the pull never finished");
}

#[tokio::test]
async fn attachment_redirects_to_refused_addresses_are_never_followed() {
    let fake = FakeJira::start(3).await;
    let (port, hits) = canary().await;
    let jira_port = reqwest::Url::parse(&fake.base_url())
        .expect("url")
        .port()
        .expect("port");
    let media = "/media/file/1000001?token=media-1000001";
    let battery = [
        format!("http://127.0.0.2:{port}/"),
        format!("http://[::ffff:127.0.0.2]:{port}/"),
        format!("http://[::ffff:7f00:2]:{port}/"),
        format!("http://2130706434:{port}/"),
        format!("http://0x7f.0.0.2:{port}/"),
        format!("http://0177.0.0.2:{port}/"),
        format!("http://127.0.0.2.:{port}/"),
        format!("//127.0.0.2:{port}/"),
        format!("http://[::1]:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://[fd00:ec2::254]/".to_owned(),
        // the allowed address itself, spelled oddly: refused as written, never requested
        format!("http://2130706433:{jira_port}{media}"),
        format!("http://127.1:{jira_port}{media}"),
        format!("http://{}@127.0.0.1:{jira_port}{media}", fake_jira::EMAIL),
    ];
    // The fakes live on 127.0.0.1: the policy allows exactly that address.
    let connector = connector(&fake, client(&["127.0.0.1/32"]));
    for target in &battery {
        fake.redirect_attachments_to(target);
        fake.clear_requests();
        let documents = pull_all(&connector).await;
        let ids: BTreeSet<_> = documents.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids.len(), 3, "{target}: every issue still arrives");
        for (id, markdown) in &documents {
            assert!(
                !markdown.contains("CANARY") && !markdown.contains("Notes for"),
                "{target}: a refused body landed in {id}:\n{markdown}"
            );
        }
        assert!(
            fake.requests()
                .iter()
                .all(|request| !request.path.starts_with("/media/")),
            "{target}: the odd spelling reached the fake"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{target} reached the canary"
        );
    }

    // Control: the canary is refused by policy, not by luck — allow it and it is reached.
    fake.redirect_attachments_to(&format!("http://127.0.0.2:{port}/notes"));
    let open = connector_allowing_canary(&fake);
    let documents = pull_all(&open).await;
    assert!(documents.iter().any(|(_, md)| md.contains(CANARY_BODY)));
    assert!(hits.load(Ordering::SeqCst) > 0);
}

fn connector_allowing_canary(fake: &FakeJira) -> JiraConnector {
    connector(fake, client(&["127.0.0.1/32", "127.0.0.2/32"]))
}

fn jira_body(jira: &FakeJira, out: &std::path::Path) -> Value {
    json!({
        "name": "Moving Jira",
        "source": "jira",
        "config": {"base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT]},
        "credentials": {"type": "basic", "email": fake_jira::EMAIL, "api_token": fake_jira::API_TOKEN},
        "sink": {"type": "directory", "path": out},
    })
}

#[tokio::test]
async fn moving_a_connector_to_another_origin_needs_its_credentials_again() {
    let jira = FakeJira::start(2).await;
    let elsewhere = FakeJira::start(2).await;
    let app = spawn_app().await;
    let session = app.signed_in("mover@example.com").await;
    let out = temp_dir("move-out");
    let (status, created) = status_and_body(
        app.post_json("/connectors", &jira_body(&jira, &out), Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let patch = |body: Value| {
        app.client
            .patch(app.url(&format!("/connectors/{id}")))
            .bearer_auth(&session)
            .json(&body)
            .send()
    };

    // Another port is another origin: refused before anything is sent or stored.
    let moved = json!({"base_url": elsewhere.base_url(), "project_keys": [fake_jira::PROJECT]});
    let (status, answer) =
        status_and_body(patch(json!({"config": moved})).await.expect("patch")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["code"], "credentials_required", "{answer}");
    assert!(
        elsewhere.requests().is_empty(),
        "the sealed credentials were sent to the new host: {:?}",
        elsewhere.requests()
    );
    let (_, stored) =
        status_and_body(app.get(&format!("/connectors/{id}"), Some(&session)).await).await;
    assert_eq!(
        stored["config"], created["config"],
        "nothing stored changed"
    );

    // The same origin with another path or scope needs no credentials.
    let same = json!({"base_url": format!("{}/", jira.base_url()), "project_keys": [fake_jira::PROJECT], "batch_size": 10});
    let (status, answer) =
        status_and_body(patch(json!({"config": same})).await.expect("patch")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    // With credentials in the same request the move is fine; only those reach the new host.
    let credentials =
        json!({"type": "basic", "email": fake_jira::EMAIL, "api_token": fake_jira::API_TOKEN});
    let (status, answer) = status_and_body(
        patch(json!({"config": moved, "credentials": credentials}))
            .await
            .expect("patch"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(!elsewhere.requests().is_empty());
}

/// Functions that neither issue nor check sessions (they sit behind the authorizer or take
/// queue events) build their state without `TRIBUTARY_JWT_SECRET`. Run in a child process
/// so the environment is exactly the one given here.
#[test]
fn store_only_functions_start_without_the_session_key() {
    match std::env::var("TRIBUTARY_E2E_STORE_ONLY_CHILD").as_deref() {
        Ok("with-vault") => return store_only_child(),
        Ok("no-vault") => return scheduler_child(),
        _ => {}
    }
    for (mode, vault_key) in [
        ("with-vault", Some(TEST_ENCRYPTION_KEY)),
        ("no-vault", None),
    ] {
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
        child
            .args([
                "--exact",
                "guarded_http::store_only_functions_start_without_the_session_key",
                "--test-threads=1",
            ])
            .env_clear()
            .env("TRIBUTARY_E2E_STORE_ONLY_CHILD", mode)
            .env("TRIBUTARY_STORE", "embedded")
            .env("TRIBUTARY_DATA_DIR", temp_dir("store-only"));
        if let Some(key) = vault_key {
            child.env(tributary::vault::ENCRYPTION_KEY, key);
        }
        let output = child.output().expect("run the child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{mode}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// The scheduler only enqueues: no session key and no vault key either.
fn scheduler_child() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        assert!(std::env::var_os(tributary::vault::ENCRYPTION_KEY).is_none());
        let services = tributary::Services::store_from_env()
            .await
            .expect("store-only services");
        assert!(
            tributary::sync::setup::engine_with(
                services.table.clone(),
                tributary::sync::SyncQueues::new()
            )
            .is_err(),
            "functions that open credentials still need the vault key"
        );
        let vault = tributary::sync::setup::ephemeral_vault().expect("ephemeral vault");
        tributary::sync::setup::engine_with_vault(
            services.table.clone(),
            tributary::sync::SyncQueues::new(),
            vault,
        )
        .expect("the scheduler's engine");
    });
}

fn store_only_child() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        assert!(std::env::var_os(tributary::config::JWT_SECRET).is_none());
        assert!(
            tributary::Services::from_env().await.is_err(),
            "identity functions still refuse to start without the key"
        );
        let services = tributary::Services::store_from_env()
            .await
            .expect("store-only services");
        let table = services.table.clone();
        tributary::sync::setup::engine_with(table.clone(), tributary::sync::SyncQueues::new())
            .expect("the sync engine (sync-*, scheduler, webhook, connectors-api)");
        let fetcher = tributary::crawl::setup::fetcher_from_env().expect("the crawl fetcher");
        tributary::crawl::setup::sinks_from_env(&fetcher, false).expect("the crawl sinks");
    });
}

/// The template resources whose environment sets `variable`.
fn holders_of(variable: &str) -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let template = std::fs::read_to_string(path).expect("template.yaml");
    let mut resource = None;
    let mut holders = BTreeSet::new();
    for line in template.lines() {
        // Resources are the two-space-indented keys.
        if let Some(name) = line
            .strip_prefix("  ")
            .filter(|rest| !rest.starts_with(' ') && rest.ends_with(':'))
        {
            resource = Some(name.trim_end_matches(':').to_owned());
        }
        if line.trim_start().starts_with(&format!("{variable}:")) {
            holders.insert(resource.clone().expect("inside a resource"));
        }
    }
    holders
}

/// `acme_wiki` -> `AcmeWiki`, as the generator names a source's resources.
fn pascal_case(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Only the functions that issue or check sessions get the signing key in template.yaml,
/// and only those that seal or open credentials get the vault key.
#[test]
fn only_session_functions_get_the_signing_key_in_the_template() {
    let mut vault_holders: BTreeSet<String> = [
        "ConnectorsApiFunction",
        // Crawls seal and open their sinks' own credentials.
        "CrawlPageFunction",
        "CrawlStartFunction",
        // Provider connections: sealing the tokens at the callback, revoking them on DELETE.
        "IntegrationCallbackFunction",
        "IntegrationLoginFunction",
        "ScheduledCrawlFunction",
        "WebhookFunction",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Every source's sync function opens its connectors' credentials.
    vault_holders.extend(
        tributary::connectors::SourceKind::ALL
            .iter()
            .map(|source| format!("Sync{}Function", pascal_case(source.as_str()))),
    );
    assert_eq!(holders_of("TRIBUTARY_ENCRYPTION_KEY"), vault_holders);
    assert_eq!(
        holders_of("TRIBUTARY_JWT_SECRET"),
        BTreeSet::from([
            "AuthFunction".to_owned(),
            "OAuthCallbackFunction".to_owned(),
            "TokenCheckFunction".to_owned(),
        ])
    );
}

fn confluence(
    fake: &tributary_e2e::fake_confluence::FakeConfluence,
    http: GuardedClient,
) -> tributary::connectors::confluence::ConfluenceConnector {
    let config = serde_json::from_value(json!({
        "base_url": fake.base_url(),
        "attachments": true,
        "max_attachment_bytes": 1_000,
    }))
    .expect("config");
    let retry = RetryPolicy {
        base_delay: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    tributary::connectors::confluence::ConfluenceConnector::new(
        "ssrf-confluence",
        config,
        fake.credentials(),
        http,
        retry,
    )
    .expect("connector")
}

/// Every document's markdown after a full pull of any connector.
async fn markdown_of(connector: &dyn Connector) -> Vec<String> {
    let mut markdown = Vec::new();
    let mut checkpoint: Option<Value> = None;
    for _ in 0..100 {
        let batch = connector
            .pull(checkpoint.as_ref())
            .await
            .expect("the batch succeeds: a refused attachment must not fail the sync");
        markdown.extend(batch.documents.into_iter().map(|doc| doc.markdown));
        if batch.done {
            return markdown;
        }
        checkpoint = Some(batch.checkpoint);
    }
    panic!("the pull never finished");
}

#[tokio::test]
async fn confluence_attachment_redirects_to_refused_addresses_are_never_followed() {
    let fake = tributary_e2e::fake_confluence::FakeConfluence::start(12).await;
    let (port, hits) = canary().await;
    let connector = confluence(&fake, client(&["127.0.0.1/32"]));
    for target in [
        format!("http://127.0.0.2:{port}/"),
        format!("http://[::ffff:127.0.0.2]:{port}/"),
        format!("http://2130706434:{port}/"),
        format!("//0x7f.0.0.2:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
    ] {
        fake.redirect_attachments_to(&target);
        let documents = markdown_of(&connector).await;
        assert_eq!(documents.len(), 12, "{target}: every page still arrives");
        assert!(
            documents
                .iter()
                .all(|markdown| !markdown.contains("CANARY")),
            "{target}: a refused body landed in a document"
        );
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{target} reached the canary"
        );
    }
    // Control: allowed by policy, the same redirect is followed.
    fake.redirect_attachments_to(&format!("http://127.0.0.2:{port}/notes"));
    let open = confluence(&fake, client(&["127.0.0.1/32", "127.0.0.2/32"]));
    let documents = markdown_of(&open).await;
    assert!(documents
        .iter()
        .any(|markdown| markdown.contains(CANARY_BODY)));
    assert!(hits.load(Ordering::SeqCst) > 0);
}
