//! Workspace provider connections end to end through the local stack's router, against the
//! real oidc-provider acting as an OAuth 2.0 provider (refresh tokens rotated on every use;
//! reuse of a rotated one revokes the grant): login → consent → callback → listed active →
//! a Jira connector on the connection syncs with its access token → the token expires →
//! one refresh, rotation persisted → a stale writer puts the old refresh token back → the
//! provider revokes the grant → `needs_reauth`, the sync fails with a clear error. And the
//! bad inputs: unknown provider, replayed or mismatched state, a provider error, another
//! workspace's connection; none changes a stored connection.

use std::sync::Arc;

use reqwest::{Response, StatusCode, Url};
use serde_json::{json, Value};
use tributary::integrations::providers::{integrations_from, Integrations};
use tributary::store::connections::{ConnectionRecord, ConnectionStatus, Connections};
use tributary::store::connectors::RunStatus;
use tributary::store::{now_epoch_seconds, Item, Query, Table};
use tributary::vault::Vault;
use tributary_e2e::app::{embedded_table, services_over, status_and_body, TEST_ENCRYPTION_KEY};
use tributary_e2e::fake_jira::{self, FakeJira};
use tributary_e2e::oidc::{drive_login, IntegrationClient, OidcProvider, TokenRequest};
use tributary_e2e::signin::set_cookie_value;

/// The connection's name in `TRIBUTARY_INTEGRATIONS` (the generic `oauth2` preset).
const PROVIDER: &str = "corp-files";
const CLIENT_ID: &str = "tributary-connections";
const CLIENT_SECRET: &str = "connections-secret-5d2c8e1f9a7b";
const STATE_COOKIE: &str = "tributary_connect_state";
const SCOPES: &str = "openid email";
/// A second provider, configured but never connected.
const OTHER_PROVIDER: &str = "corp-mail";

struct Stack {
    provider: OidcProvider,
    app: ConnApp,
    vault: Vault,
}

/// The local stack's router on a port bound before the provider starts, so the provider
/// can register the exact callback URL.
struct ConnApp {
    address: String,
    client: reqwest::Client,
    table: Arc<dyn Table>,
    syncs: Arc<tributary::sync::SyncEngine>,
    sync_queue: Arc<dyn tributary::queue::Queue>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for ConnApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn redirect_uri(address: &str) -> String {
    format!("{address}/integrations/{PROVIDER}/callback")
}

/// The operator's configuration of the connection provider, as environment variables.
fn providers(issuer: &str) -> Integrations {
    let prefix = "TRIBUTARY_INTEGRATION_CORP_FILES_";
    let vars: Vec<(String, String)> = vec![
        (
            "TRIBUTARY_INTEGRATIONS".into(),
            format!("{PROVIDER},{OTHER_PROVIDER}"),
        ),
        (format!("{prefix}PRESET"), "oauth2".into()),
        (format!("{prefix}CLIENT_ID"), CLIENT_ID.into()),
        (format!("{prefix}CLIENT_SECRET"), CLIENT_SECRET.into()),
        (format!("{prefix}AUTHORIZE_URL"), format!("{issuer}/auth")),
        (format!("{prefix}TOKEN_URL"), format!("{issuer}/token")),
        (
            format!("{prefix}REVOKE_URL"),
            format!("{issuer}/token/revocation"),
        ),
        (format!("{prefix}SCOPES"), SCOPES.into()),
        (
            "TRIBUTARY_INTEGRATION_CORP_MAIL_PRESET".into(),
            "oauth2".into(),
        ),
        (
            "TRIBUTARY_INTEGRATION_CORP_MAIL_CLIENT_ID".into(),
            CLIENT_ID.into(),
        ),
        (
            "TRIBUTARY_INTEGRATION_CORP_MAIL_CLIENT_SECRET".into(),
            CLIENT_SECRET.into(),
        ),
        (
            "TRIBUTARY_INTEGRATION_CORP_MAIL_AUTHORIZE_URL".into(),
            format!("{issuer}/auth"),
        ),
        (
            "TRIBUTARY_INTEGRATION_CORP_MAIL_TOKEN_URL".into(),
            format!("{issuer}/token"),
        ),
    ];
    integrations_from(|name| {
        vars.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    })
    .expect("a valid provider configuration")
}

async fn setup() -> Stack {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let provider = OidcProvider::start_with_integrations(
        Vec::new(),
        vec![IntegrationClient {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uri: redirect_uri(&address),
            token_endpoint_auth_method: "client_secret_basic".into(),
        }],
    );
    let table = embedded_table();
    let services = services_over(table.clone());
    let vault = Vault::from_hex(TEST_ENCRYPTION_KEY).expect("test key");
    let (crawls, _) = tributary_e2e::app::crawl_engine(
        table.clone(),
        tributary::crawl::ssrf::NetworkPolicy::allow_private(),
    );
    let providers = providers(&provider.issuer);
    let (engine, sync_queue) = tributary_e2e::app::sync_engine(table.clone());
    let integrations = tributary_e2e::app::integration_state(
        table.clone(),
        providers,
        Some(address.parse().expect("address URL")),
    );
    let resolver: Arc<dyn tributary::connectors::kit::ConnectionResolver> =
        Arc::new(integrations.connections.clone());
    let syncs = Arc::new(engine.with_connections(resolver));
    let http = tributary::http::back_channel_client().expect("http client");
    let sign_in = tributary::auth::oauth::SignIn::new(
        Vec::new(),
        table.clone(),
        http,
        std::time::Duration::from_secs(60),
    )
    .expect("no sign-in providers");
    let (_, server) = tributary_local::serve_on(
        listener,
        services.clone(),
        sign_in,
        tributary_local::Engines {
            crawls,
            syncs: syncs.clone(),
            integrations,
        },
    )
    .expect("serve");
    let app = ConnApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        table,
        syncs,
        sync_queue,
        server: tokio::spawn(server),
    };
    Stack {
        provider,
        app,
        vault,
    }
}

impl ConnApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    async fn get(&self, path: &str, bearer: Option<&str>, accept: &str) -> Response {
        let mut request = self.client.get(self.url(path)).header("accept", accept);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// A new user (its own workspace); returns the session and the workspace id.
    async fn user(&self, email: &str) -> (String, String) {
        let response = self
            .client
            .post(self.url("/auth/register"))
            .json(
                &json!({"email": email, "password": tributary_e2e::app::PASSWORD, "name": "Owner"}),
            )
            .send()
            .await
            .expect("register");
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let response = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"email": email, "password": tributary_e2e::app::PASSWORD}))
            .send()
            .await
            .expect("login");
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (
            body["access_token"].as_str().expect("token").to_owned(),
            body["user"]["tenant_id"]
                .as_str()
                .expect("tenant")
                .to_owned(),
        )
    }

    /// Every stored connection item of these workspaces, as stored.
    async fn connection_items(&self, workspaces: &[&str]) -> Vec<Item> {
        let mut items = Vec::new();
        for workspace in workspaces {
            let page = self
                .table
                .query(Query::new(format!("WS#{workspace}"), "CONN#").limit(100))
                .await
                .expect("query");
            items.extend(page.items);
        }
        items
    }

    fn connections(&self) -> Connections {
        Connections::new(self.table.clone())
    }

    async fn record(&self, workspace: &str) -> ConnectionRecord {
        self.connections()
            .get(workspace, PROVIDER)
            .await
            .expect("read")
            .expect("a stored connection")
    }
}

/// A started connection: the authorize URL and the browser's state cookie.
struct Started {
    authorize_url: Url,
    cookie: String,
}

impl Started {
    fn param(&self, name: &str) -> Option<String> {
        self.authorize_url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

async fn start(app: &ConnApp, session: &str, redirect_to: Option<&str>) -> Started {
    let path = match redirect_to {
        Some(path) => format!(
            "/integrations/{PROVIDER}/login?redirect_to={}",
            url_escape(path)
        ),
        None => format!("/integrations/{PROVIDER}/login"),
    };
    let response = app.get(&path, Some(session), "application/json").await;
    let cookie = set_cookie_value(&response, STATE_COOKIE);
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Started {
        authorize_url: body["authorize_url"]
            .as_str()
            .expect("authorize_url")
            .parse()
            .expect("a URL"),
        cookie: cookie.expect("the state cookie"),
    }
}

fn url_escape(text: &str) -> String {
    let mut url = Url::parse("http://x.invalid/").expect("static");
    url.query_pairs_mut().append_pair("v", text);
    url.query().unwrap_or_default()[2..].to_owned()
}

/// The callback as the browser makes it: the provider's query, the state cookie.
async fn callback(app: &ConnApp, query: &str, cookie: Option<&str>) -> Response {
    let mut request = app
        .client
        .get(app.url(&format!("/integrations/{PROVIDER}/callback?{query}")))
        .header("accept", "application/json");
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("{STATE_COOKIE}={cookie}"));
    }
    request.send().await.expect("callback")
}

/// Login, consent at the provider as `account`, and the query it sends back.
async fn consent(app: &ConnApp, session: &str, account: &str) -> (Started, String) {
    let started = start(app, session, Some("/console/integrations")).await;
    let back = drive_login(started.authorize_url.as_str(), account).await;
    let query = back.split_once('?').expect("a callback query").1.to_owned();
    (started, query)
}

fn grants(requests: &[TokenRequest], grant_type: &str) -> Vec<TokenRequest> {
    requests
        .iter()
        .filter(|r| r.endpoint == "/token" && r.grant_type.as_deref() == Some(grant_type))
        .cloned()
        .collect()
}

async fn listed(app: &ConnApp, session: &str) -> Value {
    let (status, body) = status_and_body(
        app.get("/integrations", Some(session), "application/json")
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Every configured provider is listed (connected or not), with its scopes, no secret.
    let providers = body["providers"].as_array().expect("providers");
    assert!(
        providers
            .iter()
            .any(|provider| provider["name"] == PROVIDER && provider["scopes"].is_array()),
        "{body}"
    );
    assert!(!body["providers"].to_string().contains("secret"), "{body}");
    body
}

/// A Jira connector in the caller's workspace whose requests carry the connection's token.
async fn jira_connector(
    app: &ConnApp,
    session: &str,
    jira: &FakeJira,
    out: &std::path::Path,
) -> String {
    let body = json!({
        "name": "Jira over a connection",
        "source": "jira",
        "config": {"base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT], "batch_size": 50},
        "credentials": {"type": "connection", "provider": PROVIDER},
        "sink": {"type": "directory", "path": out},
    });
    let response = app
        .client
        .post(app.url("/connectors"))
        .bearer_auth(session)
        .json(&body)
        .send()
        .await
        .expect("create");
    let (status, answer) = status_and_body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["id"].as_str().expect("id").to_owned()
}

/// Runs a manual sync of `id` to its end; the last run's record.
async fn sync(app: &ConnApp, id: &str) -> tributary::store::connectors::RunRecord {
    use tributary::sync::{SyncMessage, SyncOutcome};
    let engine = &app.syncs;
    engine
        .queues
        .enqueue(
            tributary::store::connectors::SourceKind::Jira,
            &SyncMessage::new(id, "manual"),
        )
        .await
        .expect("enqueue");
    let mut last = None;
    for _ in 0..100 {
        let messages = app
            .sync_queue
            .receive(
                1,
                std::time::Duration::from_secs(600),
                std::time::Duration::ZERO,
            )
            .await
            .expect("receive");
        let Some(received) = messages.into_iter().next() else {
            break;
        };
        let message: SyncMessage = serde_json::from_str(&received.body).expect("message");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        let outcome = engine.run(&message, deadline).await;
        app.sync_queue
            .delete(&received.receipt_handle)
            .await
            .expect("delete");
        if let Ok(SyncOutcome::Finished(run)) = outcome {
            last = Some(run);
        }
    }
    if let Some(run) = last {
        return run;
    }
    let runs = engine.connectors.runs(id, 100, None).await.expect("runs").0;
    runs.into_iter().last().expect("a recorded run")
}

fn bearer_of(jira: &FakeJira) -> Vec<String> {
    jira.requests()
        .into_iter()
        .filter_map(|r| r.authorization)
        .collect()
}

#[tokio::test]
async fn a_connection_is_made_used_refreshed_once_and_revoked_on_refresh_token_reuse() {
    let Stack {
        provider,
        app,
        vault,
    } = setup().await;
    let (session, workspace) = app.user("owner@example.com").await;

    // login: PKCE S256, the exact redirect URI, one-time state bound to this browser.
    let (started, query) = consent(&app, &session, "ada").await;
    assert_eq!(
        started.param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        started.param("redirect_uri").as_deref(),
        Some(redirect_uri(&app.address).as_str())
    );
    assert_eq!(
        started.param("state").as_deref(),
        Some(started.cookie.as_str())
    );
    let done = callback(&app, &query, Some(&started.cookie)).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()["location"], "/console/integrations");
    let exchanges = grants(&provider.token_requests().await, "authorization_code");
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].status, 200);

    // Listed active, with scopes and expiry, never a token.
    let record = app.record(&workspace).await;
    let first = record.open_tokens(&vault).expect("tokens open");
    let first_refresh = first.refresh_token.clone().expect("a refresh token");
    let body = listed(&app, &session).await;
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["provider"], PROVIDER);
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["scopes"], json!(["openid", "email"]));
    assert!(items[0]["expires_at"].is_string(), "{body}");
    assert!(items[0]["created_at"].is_string() && items[0]["updated_at"].is_string());
    let text = body.to_string();
    assert!(!text.contains(&first.access_token) && !text.contains(&first_refresh));
    assert!(!text.contains(&record.tokens_sealed));

    // A Jira connector on the connection syncs with the connection's access token.
    let jira = FakeJira::start(30).await;
    jira.accept_bearer(|token| !token.is_empty());
    let out = tributary_e2e::app::temp_dir("tributary-conn-out");
    let id = jira_connector(&app, &session, &jira, &out).await;
    let run = sync(&app, &id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    assert_eq!(run.counts.added, 30, "{run:?}");
    let sent = bearer_of(&jira);
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|auth| *auth == format!("Bearer {}", first.access_token)),
        "every request carries the connection's token"
    );

    // The access token expires (rewritten in the store): the next sync refreshes once.
    let before_refresh = app.record(&workspace).await;
    let mut expired = before_refresh.clone();
    expired.expires_at = Some(now_epoch_seconds() - 60);
    let expired = app
        .connections()
        .compare_and_swap(&expired)
        .await
        .expect("expire");
    let stale_blob = expired.tokens_sealed.clone();
    jira.clear_requests();
    let run = sync(&app, &id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    let refreshes = grants(&provider.token_requests().await, "refresh_token");
    assert_eq!(refreshes.len(), 1, "exactly one refresh: {refreshes:?}");
    assert_eq!(refreshes[0].status, 200);

    // The rotated refresh token is persisted; the sync used the new access token.
    let refreshed = app.record(&workspace).await;
    let second = refreshed.open_tokens(&vault).expect("tokens open");
    let second_refresh = second
        .refresh_token
        .clone()
        .expect("a rotated refresh token");
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_ne!(second.access_token, first.access_token);
    assert!(refreshed.expires_at.expect("expiry") > now_epoch_seconds());
    assert_eq!(refreshed.status, ConnectionStatus::Active);
    let sent = bearer_of(&jira);
    assert!(!sent.is_empty());
    assert!(sent
        .iter()
        .all(|auth| *auth == format!("Bearer {}", second.access_token)));

    // A stale writer puts the old (rotated-away) refresh token back, expired.
    let mut stale = refreshed.clone();
    stale.tokens_sealed = stale_blob;
    stale.expires_at = Some(now_epoch_seconds() - 60);
    app.connections()
        .compare_and_swap(&stale)
        .await
        .expect("stale write");
    let run = sync(&app, &id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    let reason = format!("{run:?}").to_lowercase();
    assert!(
        reason.contains("reconnect")
            || reason.contains("needs_reauth")
            || reason.contains("reauth"),
        "the run says the connection must be renewed: {run:?}"
    );

    // The provider saw the reuse and revoked the grant: the rotated token is dead too.
    let refreshes = grants(&provider.token_requests().await, "refresh_token");
    assert_eq!(refreshes.len(), 2, "{refreshes:?}");
    assert_eq!(refreshes[1].error.as_deref(), Some("invalid_grant"));
    let dead = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second_refresh),
        ])
        .send()
        .await
        .expect("token request");
    assert_eq!(dead.status(), StatusCode::BAD_REQUEST);
    let dead: Value = dead.json().await.expect("json");
    assert_eq!(dead["error"], "invalid_grant", "{dead}");

    let record = app.record(&workspace).await;
    assert_eq!(record.status, ConnectionStatus::NeedsReauth);
    let body = listed(&app, &session).await;
    assert_eq!(body["items"][0]["status"], "needs_reauth", "{body}");

    // No retry storm: the next sync fails without asking the provider again.
    let before = provider.token_requests().await.len();
    let run = sync(&app, &id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:?}");
    assert_eq!(provider.token_requests().await.len(), before);
}

#[tokio::test]
async fn bad_connection_attempts_are_refused_and_change_no_stored_connection() {
    let Stack { provider, app, .. } = setup().await;
    let (session, workspace) = app.user("owner@example.com").await;
    let (other_session, other_workspace) = app.user("other@example.com").await;
    let workspaces = [workspace.as_str(), other_workspace.as_str()];

    // A working connection in the first workspace, to see that nothing touches it.
    let (started, query) = consent(&app, &session, "ada").await;
    let done = callback(&app, &query, Some(&started.cookie)).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let snapshot = app.connection_items(&workspaces).await;
    assert_eq!(snapshot.len(), 1);

    // Unknown provider: 404, for login and for the callback.
    for path in [
        "/integrations/nope/login".to_owned(),
        "/integrations/nope/callback?code=x&state=y".to_owned(),
        "/integrations/%3Cscript%3E/login".to_owned(),
    ] {
        let (status, body) =
            status_and_body(app.get(&path, Some(&session), "application/json").await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert_eq!(body["code"], "unknown_provider", "{path}: {body}");
        assert!(!body["message"].as_str().unwrap_or("").contains('<'));
    }
    assert_eq!(app.connection_items(&workspaces).await, snapshot);

    // Login needs a caller; a redirect_to that leaves the site is refused.
    let (status, _) = status_and_body(
        app.get(
            &format!("/integrations/{PROVIDER}/login"),
            None,
            "application/json",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = status_and_body(
        app.get(
            &format!("/integrations/{PROVIDER}/login?redirect_to=//evil.example"),
            Some(&session),
            "application/json",
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_redirect");

    // Without Accept: application/json the login is a redirect to the provider.
    let redirect = app
        .get(
            &format!("/integrations/{PROVIDER}/login"),
            Some(&session),
            "text/html",
        )
        .await;
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = redirect.headers()["location"].to_str().expect("location");
    assert!(
        location.starts_with(&format!("{}/auth?", provider.issuer)),
        "{location}"
    );

    // State replay: the finished callback again.
    let replay = callback(&app, &query, Some(&started.cookie)).await;
    let (status, body) = status_and_body(replay).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_state");
    assert_eq!(app.connection_items(&workspaces).await, snapshot);

    // A state started for one provider, presented at another's callback.
    let (crossed, crossed_query) = consent(&app, &session, "ada").await;
    let response = app
        .client
        .get(app.url(&format!(
            "/integrations/{OTHER_PROVIDER}/callback?{crossed_query}"
        )))
        .header("accept", "application/json")
        .header("cookie", format!("{STATE_COOKIE}={}", crossed.cookie))
        .send()
        .await
        .expect("callback");
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_state");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("another provider"),
        "{body}"
    );
    assert_eq!(app.connection_items(&workspaces).await, snapshot);

    // State mismatch: the other workspace's consent arriving in this browser (an
    // attacker's authorize link), and a callback without the cookie.
    let (theirs, their_query) = consent(&app, &other_session, "mallory").await;
    let (mine, _) = consent(&app, &session, "ada").await;
    for cookie in [Some(mine.cookie.as_str()), None] {
        let (status, body) = status_and_body(callback(&app, &their_query, cookie).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "invalid_state");
    }
    assert_eq!(app.connection_items(&workspaces).await, snapshot);
    // The mismatch did not burn the other attempt: in its own browser it still works.
    let theirs_done = callback(&app, &their_query, Some(&theirs.cookie)).await;
    assert_eq!(theirs_done.status(), StatusCode::SEE_OTHER);
    let snapshot = app.connection_items(&workspaces).await;
    assert_eq!(snapshot.len(), 2);

    // The provider's error: 400 with its message, bounded and escaped.
    let denied = start(&app, &session, None).await;
    let state = denied.param("state").expect("state");
    let query = format!(
        "state={state}&error=access_denied&error_description={}",
        url_escape("The user said <b>no</b>")
    );
    let (status, body) = status_and_body(callback(&app, &query, Some(&denied.cookie)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "provider_error");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains("access_denied") && message.contains("The user said"),
        "{message}"
    );
    let page = app
        .client
        .get(app.url(&format!("/integrations/{PROVIDER}/callback?{query}")))
        .header("accept", "text/html")
        .header("cookie", format!("{STATE_COOKIE}={}", denied.cookie))
        .send()
        .await
        .expect("callback");
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(!page.text().await.expect("page").contains("<b>"));
    let long = start(&app, &session, None).await;
    let query = format!(
        "state={}&error=server_error&error_description={}",
        long.param("state").expect("state"),
        "x".repeat(5000)
    );
    let (status, body) = status_and_body(callback(&app, &query, Some(&long.cookie)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["message"].as_str().expect("message").len() < 400,
        "{body}"
    );
    assert_eq!(app.connection_items(&workspaces).await, snapshot);

    // DELETE of another workspace's connection (or a missing one): 404, nothing changes.
    let third_session = app.user("third@example.com").await.0;
    for path in [
        format!("/integrations/{PROVIDER}"),
        "/integrations/nope".to_owned(),
    ] {
        let response = app
            .client
            .delete(app.url(&path))
            .bearer_auth(&third_session)
            .send()
            .await
            .expect("delete");
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    assert_eq!(listed(&app, &third_session).await["items"], json!([]));
    assert_eq!(app.connection_items(&workspaces).await, snapshot);
    let revocations_before = provider
        .token_requests()
        .await
        .iter()
        .filter(|r| r.endpoint == "/token/revocation")
        .count();
    assert_eq!(revocations_before, 0);

    // Its own DELETE: revoked at the provider, then gone; the other workspace keeps its own.
    let response = app
        .client
        .delete(app.url(&format!("/integrations/{PROVIDER}")))
        .bearer_auth(&session)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let revocations: Vec<TokenRequest> = provider
        .token_requests()
        .await
        .into_iter()
        .filter(|r| r.endpoint == "/token/revocation")
        .collect();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0].status, 200);
    assert_eq!(
        app.connection_items(&[&workspace]).await,
        Vec::<Item>::new()
    );
    assert_eq!(app.connection_items(&[&other_workspace]).await.len(), 1);
    assert_eq!(listed(&app, &session).await["items"], json!([]));
}
