//! What the Microsoft Graph sources stand on: app-only tokens from the client credentials
//! grant — with a client secret or a certificate assertion the fake identity platform
//! verifies (signature, `x5t#S256`, claims, one-time `jti`) — cached until expiry and
//! replaced after a 401; refusals reported with the platform's AADSTS reason; a delegated
//! `microsoft` connection used as it is; Graph's 429 + `Retry-After` waited out.

use std::time::Duration;

use serde_json::Value;
use tributary::connectors::kit::SourceAuth;
use tributary::connectors::microsoft::{self, GraphAuth, TenantId};
use tributary::connectors::{ConnectorError, Credentials};
use tributary::http::RetryPolicy;
use tributary_e2e::app::loopback_client;
use tributary_e2e::fake_graph::FakeGraph;
use tributary_e2e::microsoft::{
    client_certificate_credentials, client_secret_credentials, APP_PRINCIPAL, CLIENT_ID, TENANT_ID,
};

fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        budget: Duration::from_secs(5),
    }
}

fn tenant() -> TenantId {
    TenantId::try_from(TENANT_ID.to_owned()).expect("tenant")
}

fn graph_auth(fake: &FakeGraph, credentials: Credentials) -> GraphAuth {
    GraphAuth::new(
        credentials.into(),
        Some(&tenant()),
        &fake.login_base(),
        loopback_client(Duration::from_secs(5)),
    )
    .expect("auth")
}

async fn organization(
    fake: &FakeGraph,
    auth: &GraphAuth,
    connector: &str,
) -> Result<Value, ConnectorError> {
    let api = microsoft::api_client(
        "Graph test",
        connector,
        fake.graph_base(),
        auth.auth.clone(),
        loopback_client(Duration::from_secs(5)),
        retry(),
    );
    api.get(api.url("/organization")?).json::<Value>().await
}

#[tokio::test]
async fn a_client_secret_gets_one_cached_app_token_and_a_new_one_after_a_401() {
    let fake = FakeGraph::start().await;
    let auth = graph_auth(&fake, client_secret_credentials());
    assert!(auth.app_only);
    for _ in 0..3 {
        let org = organization(&fake, &auth, "ms-secret")
            .await
            .expect("answers");
        assert_eq!(org["value"][0]["id"], TENANT_ID);
    }
    let grants = fake.login().grants();
    assert_eq!(grants.len(), 1, "cached: {grants:?}");
    assert_eq!(grants[0].grant_type, "client_credentials");
    assert_eq!(grants[0].client_auth, "secret");
    assert_eq!(grants[0].scope, "https://graph.microsoft.com/.default");
    assert!(fake
        .requests()
        .iter()
        .all(|r| r.principal.as_deref() == Some(APP_PRINCIPAL)));

    // The token stops working before its time (revoked): one new grant, then success.
    fake.book().revoke_all();
    organization(&fake, &auth, "ms-secret")
        .await
        .expect("answers after a new token");
    assert_eq!(fake.login().grants().len(), 2);
}

#[tokio::test]
async fn a_certificate_signs_a_verified_assertion_with_a_fresh_jti_each_time() {
    let fake = FakeGraph::start().await;
    for round in 0..2 {
        // A new auth each round: a new grant, so a second assertion (its own jti).
        let auth = graph_auth(&fake, client_certificate_credentials());
        organization(&fake, &auth, "ms-cert")
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    let grants = fake.login().grants();
    assert_eq!(grants.len(), 2);
    assert!(grants.iter().all(|g| g.client_auth == "certificate"));
}

#[tokio::test]
async fn refusals_say_why_and_name_the_app() {
    let fake = FakeGraph::start().await;
    let wrong_secret = Credentials::ClientCredentials {
        client_id: CLIENT_ID.into(),
        client_secret: Some(tributary::connectors::client_credentials::ClientSecret::new("wrong")),
        certificate: None,
    };
    let error = organization(&fake, &graph_auth(&fake, wrong_secret), "ms-wrong")
        .await
        .expect_err("refused");
    assert!(
        matches!(&error, ConnectorError::Unauthorized(m) if m.contains("AADSTS7000215") && m.contains(CLIENT_ID)),
        "{error}"
    );
    assert!(!error.to_string().contains("wrong"), "no secret in errors");

    let other_tenant = TenantId::try_from("fabrikam.onmicrosoft.com".to_owned()).expect("t");
    let auth = GraphAuth::new(
        client_secret_credentials().into(),
        Some(&other_tenant),
        &fake.login_base(),
        loopback_client(Duration::from_secs(5)),
    )
    .expect("auth");
    let error = organization(&fake, &auth, "ms-tenant")
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("AADSTS90002"), "{error}");

    let no_tenant = GraphAuth::new(
        client_secret_credentials().into(),
        None,
        &fake.login_base(),
        loopback_client(Duration::from_secs(5)),
    );
    assert!(matches!(no_tenant, Err(ConnectorError::Config(m)) if m.contains("tenant_id")));
    assert!(fake.requests().is_empty(), "nothing reached Graph");
}

#[tokio::test]
async fn a_delegated_connection_token_is_used_as_it_is_and_429_is_waited_out() {
    let fake = FakeGraph::start().await;
    fake.book()
        .allow("delegated-token", "adele@contoso.example");
    let auth = GraphAuth::new(
        SourceAuth::Bearer(tributary::connectors::kit::AccessToken::new(
            "delegated-token",
        )),
        None,
        &fake.login_base(),
        loopback_client(Duration::from_secs(5)),
    )
    .expect("auth");
    assert!(!auth.app_only);
    fake.throttle_next(1, 429, 1);
    organization(&fake, &auth, "ms-delegated")
        .await
        .expect("answers after the wait");
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "throttled once, then answered");
    assert_eq!(
        requests[1].principal.as_deref(),
        Some("adele@contoso.example")
    );
    assert!(
        fake.login().grants().is_empty(),
        "no grant for a delegated token"
    );
}
