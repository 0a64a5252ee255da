//! The source registry through the API: `GET /sources` describes every source, connector
//! creation and updates refuse credentials a source does not take, storing nothing, and a
//! connection credential is resolved through the sync engine's connections.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary::connectors::kit::{AccessToken, AccessTokenSource, ConnectionResolver};
use tributary::connectors::ConnectorError;
use tributary::store::connectors::SourceKind;
use tributary_e2e::app::{
    embedded_table, spawn_app, status_and_body, sync_engine, temp_dir, TestApp,
};
use tributary_e2e::fake_jira::{self, FakeJira};

fn jira_request(jira: &FakeJira, credentials: Value) -> Value {
    json!({
        "name": "Registry Jira",
        "source": "jira",
        "config": {"base_url": jira.base_url(), "project_keys": [fake_jira::PROJECT]},
        "credentials": credentials,
        "sink": {"type": "directory", "path": temp_dir("sources-sink")},
    })
}

fn basic() -> Value {
    json!({"type": "basic", "email": fake_jira::EMAIL, "api_token": fake_jira::API_TOKEN})
}

/// Credentials of each kind, well formed.
fn credentials_of(kind: &str, provider: &str) -> Value {
    match kind {
        "basic" => basic(),
        "bearer" => json!({"type": "bearer", "token": "some-bearer-token"}),
        _ => json!({"type": "connection", "provider": provider}),
    }
}

async fn sources(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = status_and_body(app.get("/sources", Some(token)).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().expect("items").clone()
}

async fn stored_connectors(app: &TestApp, session: &str) -> Value {
    let (status, listed) = status_and_body(app.get("/connectors", Some(session)).await).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    listed["items"].clone()
}

#[tokio::test]
async fn get_sources_describes_every_source_with_its_config_schema() {
    let app = spawn_app().await;
    let session = app.signed_in("sources-list@example.com").await;
    let items = sources(&app, &session).await;
    let names: Vec<&str> = items.iter().filter_map(|i| i["source"].as_str()).collect();
    let kinds: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names, kinds, "every source, in registry order");
    assert!(names.contains(&"jira") && names.contains(&"confluence"));
    for item in &items {
        let keys: Vec<&String> = item.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "config_schema",
                "credential_kinds",
                "provider",
                "source",
                "title"
            ],
            "{item}"
        );
        assert!(item["title"].as_str().is_some_and(|t| !t.is_empty()));
        let schema = &item["config_schema"];
        assert_eq!(schema["type"], "object", "{schema}");
        // Sources on a site of their own need its URL; Google's and Microsoft Graph's API
        // hosts are deployment settings, never connector fields (a chosen host would
        // receive the token).
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        let google = item["provider"] == json!("google") || item["provider"] == json!("microsoft");
        assert_eq!(
            required.contains(&json!("base_url")),
            !google,
            "base_url required unless a Google source: {schema}"
        );
        assert!(
            !google || schema["properties"].get("base_url").is_none(),
            "{schema}"
        );
        assert_eq!(
            schema["additionalProperties"], false,
            "unknown config fields are refused: {schema}"
        );
        assert!(
            item["credential_kinds"]
                .as_array()
                .is_some_and(|kinds| !kinds.is_empty()),
            "{item}"
        );
    }
    let jira = &items[0];
    assert_eq!(
        jira["credential_kinds"],
        json!(["basic", "bearer", "connection"])
    );
    assert_eq!(jira["provider"], Value::Null, "any provider's connection");
    for google in ["google_drive", "gmail"] {
        let item = items
            .iter()
            .find(|i| i["source"] == json!(google))
            .expect("listed");
        assert_eq!(item["provider"], json!("google"), "{item}");
        assert_eq!(
            item["credential_kinds"],
            json!(["connection", "service_account"]),
            "{item}"
        );
    }
    for microsoft in ["sharepoint", "teams"] {
        let item = items
            .iter()
            .find(|i| i["source"] == json!(microsoft))
            .expect("listed");
        assert_eq!(item["provider"], json!("microsoft"), "{item}");
        assert_eq!(
            item["credential_kinds"],
            json!(["connection", "client_credentials"]),
            "{item}"
        );
        assert!(item["config_schema"]["properties"]["tenant_id"].is_object());
    }
    assert!(jira["config_schema"]["properties"]["project_keys"].is_object());
    let confluence = items.iter().find(|i| i["source"] == "confluence");
    assert!(confluence.is_some_and(|c| c["config_schema"]["properties"]["space_keys"].is_object()));

    let read_only = app.api_token(&session, &["connectors:read"]).await;
    let read_only = read_only["token"].as_str().expect("token");
    assert_eq!(sources(&app, read_only).await, items);
    let (status, _) = status_and_body(app.get("/sources", None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let no_scope = app.api_token(&session, &["crawls:read"]).await;
    let no_scope = no_scope["token"].as_str().expect("token");
    let (status, _) = status_and_body(app.get("/sources", Some(no_scope)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn credentials_a_source_does_not_take_are_refused_and_nothing_is_stored() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let session = app.signed_in("sources-refused@example.com").await;
    // Every kind a source leaves out, and a connection to another provider than the one a
    // source names, answer 400 with the registry's code, for every source.
    for item in sources(&app, &session).await {
        let accepted = item["credential_kinds"].as_array().expect("kinds").clone();
        let provider = item["provider"].as_str().unwrap_or("any");
        for kind in ["basic", "bearer", "connection"] {
            let mut body = jira_request(&jira, credentials_of(kind, provider));
            body["source"] = item["source"].clone();
            let (status, answer) =
                status_and_body(app.post_json("/connectors", &body, Some(&session)).await).await;
            if !accepted.contains(&json!(kind)) {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
                assert_eq!(answer["code"], "credentials_kind_not_accepted", "{answer}");
            }
        }
        if let Some(provider) = item["provider"].as_str() {
            let mut body = jira_request(&jira, credentials_of("connection", "not-it"));
            body["source"] = item["source"].clone();
            let (status, answer) =
                status_and_body(app.post_json("/connectors", &body, Some(&session)).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
            assert_eq!(answer["code"], "connection_provider_not_accepted");
            assert!(answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(provider)));
        }
    }
    // Clean up what the loop's accepted kinds created, then check the refusals on Jira.
    for item in stored_connectors(&app, &session)
        .await
        .as_array()
        .expect("items")
    {
        let id = item["id"].as_str().expect("id");
        app.delete(&format!("/connectors/{id}"), &session).await;
    }
    assert_eq!(stored_connectors(&app, &session).await, json!([]));

    // Jira takes any provider's connection, but this workspace has none: refused at the
    // connection test, nothing stored.
    let body = jira_request(&jira, json!({"type": "connection", "provider": "google"}));
    let (status, answer) =
        status_and_body(app.post_json("/connectors", &body, Some(&session)).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        ["invalid_credentials", "invalid_config"].contains(&answer["code"].as_str().unwrap_or("")),
        "{answer}"
    );
    assert_eq!(
        stored_connectors(&app, &session).await,
        json!([]),
        "nothing stored"
    );
}

#[tokio::test]
async fn an_update_to_credentials_that_cannot_connect_leaves_the_connector_unchanged() {
    let jira = FakeJira::start(1).await;
    let app = spawn_app().await;
    let session = app.signed_in("sources-update@example.com").await;
    let (status, created) = status_and_body(
        app.post_json("/connectors", &jira_request(&jira, basic()), Some(&session))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    let response = app
        .client
        .patch(app.url(&format!("/connectors/{id}")))
        .bearer_auth(&session)
        .json(&json!({"credentials": {"type": "connection", "provider": "google"}}))
        .send()
        .await
        .expect("patch");
    let (status, answer) = status_and_body(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (_, after) =
        status_and_body(app.get(&format!("/connectors/{id}"), Some(&session)).await).await;
    assert_eq!(after, created, "nothing changed");
    // The stored basic credentials still connect.
    let response = app
        .client
        .patch(app.url(&format!("/connectors/{id}")))
        .bearer_auth(&session)
        .json(&json!({"credentials": basic()}))
        .send()
        .await
        .expect("patch");
    let (status, answer) = status_and_body(response).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// A resolver that hands out one fixed token per connection and remembers who asked.
#[derive(Default)]
struct FixedConnections {
    asked: std::sync::Mutex<Vec<(String, String)>>,
}

struct FixedToken;

#[async_trait::async_trait]
impl AccessTokenSource for FixedToken {
    async fn access_token(&self) -> Result<AccessToken, ConnectorError> {
        Ok(AccessToken::new(CONNECTION_TOKEN))
    }

    async fn refresh_rejected(&self, _: &AccessToken) -> Result<AccessToken, ConnectorError> {
        Err(ConnectorError::Unauthorized(
            "the connection needs a new consent".into(),
        ))
    }
}

#[async_trait::async_trait]
impl ConnectionResolver for FixedConnections {
    async fn token_source(
        &self,
        workspace_id: &str,
        provider: &str,
    ) -> Result<Arc<dyn AccessTokenSource>, ConnectorError> {
        if let Ok(mut asked) = self.asked.lock() {
            asked.push((workspace_id.to_owned(), provider.to_owned()));
        }
        Ok(Arc::new(FixedToken))
    }
}

const CONNECTION_TOKEN: &str = "connection-access-token-3f9a";

fn bearer_requests(jira: &FakeJira) -> usize {
    let expected = format!("Bearer {CONNECTION_TOKEN}");
    jira.requests()
        .iter()
        .filter(|request| request.authorization.as_deref() == Some(expected.as_str()))
        .count()
}

#[tokio::test]
async fn a_connection_credential_is_resolved_through_the_engines_connections() {
    let jira = FakeJira::start(1).await;
    let body = jira_request(
        &jira,
        json!({"type": "connection", "provider": "atlassian"}),
    );
    let request = |body: &Value| -> connectors_api::CreateRequest {
        serde_json::from_value(body.clone()).expect("request")
    };

    // No resolver: the connection fails closed before any request leaves.
    let (engine, _) = sync_engine(embedded_table());
    let refused = connectors_api::create_connector(&engine, "workspace-1", request(&body)).await;
    assert_eq!(refused.err().map(|e| e.code), Some("invalid_credentials"));
    assert!(jira.requests().is_empty(), "nothing sent without a token");

    // With one: the connection's token is what the source receives (the fake Jira takes
    // only Basic, so the connection test is refused: nothing stored either way).
    let connections = Arc::new(FixedConnections::default());
    let (engine, _) = sync_engine(embedded_table());
    let engine = engine.with_connections(connections.clone());
    let refused = connectors_api::create_connector(&engine, "workspace-1", request(&body)).await;
    assert_eq!(refused.err().map(|e| e.code), Some("invalid_credentials"));
    assert!(bearer_requests(&jira) > 0, "{:?}", jira.requests());
    let asked = connections
        .asked
        .lock()
        .map(|a| a.clone())
        .unwrap_or_default();
    assert_eq!(asked, [("workspace-1".to_owned(), "atlassian".to_owned())]);
    let (records, _) = engine
        .connectors
        .list("workspace-1", 10, None)
        .await
        .expect("list");
    assert!(records.is_empty(), "nothing stored");
}
