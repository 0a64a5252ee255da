//! Sign-in against a real OpenID provider (panva's oidc-provider on loopback): the full
//! authorization-code + PKCE flow through its dev login and consent forms, RS256 and
//! ES256 ID tokens, a working session afterwards, and key rotation.

use std::time::Duration;

use reqwest::StatusCode;
use tributary::auth::oauth::flow::Provider;
use tributary::store::users::identity_key;
use tributary_e2e::app::{embedded_table, spawn_app_with_providers, TestApp};
use tributary_e2e::oidc::{drive_login, ClientConfig, OidcProvider};
use tributary_e2e::signin::{oidc_config, redirect_uri, services_with_outbox, verification_links};

const RS256_CLIENT: &str = "tributary-rs256";
const ES256_CLIENT: &str = "tributary-es256";

fn client(provider_name: &str, client_id: &str, alg: &str) -> ClientConfig {
    ClientConfig {
        client_id: client_id.into(),
        client_secret: format!("{client_id}-secret-7f3a9c2e5b1d"),
        redirect_uri: redirect_uri(provider_name),
        id_token_alg: alg.into(),
    }
}

/// A provider with one RS256 and one ES256 client, and an app that knows both as
/// `corp-rs` and `corp-es`.
async fn setup(jwks_cooldown: Duration) -> (OidcProvider, TestApp) {
    let (provider, app, _outbox) = setup_with_outbox(jwks_cooldown).await;
    (provider, app)
}

/// [`setup`], and the app's dev outbox (verification mails).
async fn setup_with_outbox(jwks_cooldown: Duration) -> (OidcProvider, TestApp, std::path::PathBuf) {
    let provider = OidcProvider::start(vec![
        client("corp-rs", RS256_CLIENT, "RS256"),
        client("corp-es", ES256_CLIENT, "ES256"),
    ]);
    let configs = vec![
        oidc_config(
            "corp-rs",
            &provider.issuer,
            RS256_CLIENT,
            &format!("{RS256_CLIENT}-secret-7f3a9c2e5b1d"),
        ),
        oidc_config(
            "corp-es",
            &provider.issuer,
            ES256_CLIENT,
            &format!("{ES256_CLIENT}-secret-7f3a9c2e5b1d"),
        ),
    ];
    let (services, outbox) = services_with_outbox(embedded_table());
    let app = spawn_app_with_providers(services, configs, jwks_cooldown).await;
    (provider, app, outbox)
}

/// One whole sign-in as `account`; returns the session body.
async fn sign_in(app: &TestApp, provider: &str, account: &str) -> serde_json::Value {
    let started = app.start_sign_in(provider, Some("/welcome")).await;
    assert_eq!(
        started.param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(started.param("nonce").is_some());
    let redirected = drive_login(started.authorization_url.as_str(), account).await;
    let query = redirected
        .split_once('?')
        .expect("callback query")
        .1
        .to_owned();
    let callback = app
        .callback(provider, &query, Some(&started.state_cookie))
        .await;
    assert_eq!(callback.headers()["location"], "/welcome");
    app.redeem(callback).await
}

fn jwks_fetches(app: &TestApp, provider: &str) -> u64 {
    match app.sign_in.provider(provider).unwrap() {
        Provider::Oidc(client) => client.jwks.fetch_count(),
        _ => panic!("{provider} is not OIDC"),
    }
}

async fn assert_session_works(app: &TestApp, session: &serde_json::Value, email: &str) {
    let token = session["access_token"].as_str().unwrap();
    let me = app.get("/me", Some(token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"]["email"], email);
    assert_eq!(me["token_kind"], "session");
}

#[tokio::test]
async fn rs256_sign_in_creates_a_user_with_a_working_session() {
    let (provider, app) = setup(Duration::from_secs(60)).await;
    let session = sign_in(&app, "corp-rs", "alice").await;
    assert_eq!(session["token_type"], "Bearer");
    assert_session_works(&app, &session, "alice@example.com").await;
    let identity = identity_key(&provider.issuer, "alice");
    let user = app
        .services
        .users
        .by_identity(&identity)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.id, session["user"]["id"]);
    // The verified email was claimed: the address now belongs to this account.
    let by_email = app
        .services
        .users
        .by_email("alice@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.id, user.id);
    // Signing in again finds the same account.
    let again = sign_in(&app, "corp-rs", "alice").await;
    assert_eq!(again["user"]["id"], session["user"]["id"]);
}

#[tokio::test]
async fn es256_sign_in_creates_a_user_with_a_working_session() {
    let (_provider, app) = setup(Duration::from_secs(60)).await;
    let session = sign_in(&app, "corp-es", "bob").await;
    assert_session_works(&app, &session, "bob@example.com").await;
}

/// Issue 8, point 2, against the real provider: a password account that has not proved
/// the address does not capture the SSO sign-in; once verified through the mailed link,
/// the sign-in links to it.
#[tokio::test]
async fn a_verified_email_links_to_the_existing_password_account_only_once_it_is_verified() {
    let (provider, app, outbox) = setup_with_outbox(Duration::from_secs(60)).await;
    let registered = app.register("carol@example.com").await;

    let started = app.start_sign_in("corp-rs", Some("/welcome")).await;
    let redirected = drive_login(started.authorization_url.as_str(), "carol").await;
    let query = redirected.split_once('?').unwrap().1.to_owned();
    let refused = app
        .callback("corp-rs", &query, Some(&started.state_cookie))
        .await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "account_email_not_verified");
    let identity = identity_key(&provider.issuer, "carol");
    assert!(app
        .services
        .users
        .by_identity(&identity)
        .await
        .unwrap()
        .is_none());

    let links = verification_links(&outbox, "carol@example.com");
    let (status, page) = app.open_verification_link(&links[0]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let session = sign_in(&app, "corp-rs", "carol").await;
    assert_eq!(session["user"]["id"], registered["user"]["id"]);
}

#[tokio::test]
async fn an_unverified_email_is_neither_linked_nor_claimed() {
    let (provider, app) = setup(Duration::from_secs(60)).await;
    // No account has the address: sign-in works, the address stays unclaimed.
    let session = sign_in(&app, "corp-rs", "unverified-dan").await;
    assert_eq!(session["user"]["email"], "");
    assert!(app
        .services
        .users
        .by_email("unverified-dan@example.com")
        .await
        .unwrap()
        .is_none());
    let identity = identity_key(&provider.issuer, "unverified-dan");
    assert!(app
        .services
        .users
        .by_identity(&identity)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn the_state_cannot_be_replayed_against_the_real_provider() {
    let (_provider, app) = setup(Duration::from_secs(60)).await;
    let started = app.start_sign_in("corp-rs", None).await;
    let redirected = drive_login(started.authorization_url.as_str(), "erin").await;
    let query = redirected.split_once('?').unwrap().1.to_owned();
    let first = app
        .callback("corp-rs", &query, Some(&started.state_cookie))
        .await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = app
        .callback("corp-rs", &query, Some(&started.state_cookie))
        .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["code"], "signin_already_used");
}

#[tokio::test]
async fn key_rotation_costs_one_jwks_refetch_and_unknown_kids_no_storm() {
    let (mut provider, app) = setup(Duration::from_secs(300)).await;
    let session = sign_in(&app, "corp-rs", "frank").await;
    assert_session_works(&app, &session, "frank@example.com").await;
    assert_eq!(jwks_fetches(&app, "corp-rs"), 1);

    provider.restart_with_new_keys();
    let session = sign_in(&app, "corp-rs", "frank").await;
    assert_session_works(&app, &session, "frank@example.com").await;
    assert_eq!(
        jwks_fetches(&app, "corp-rs"),
        2,
        "exactly one refetch after the rotation"
    );

    // Rotated again within the cooldown: the new kid is unknown and the cache may not
    // refetch yet, so sign-ins fail without hammering the provider.
    provider.restart_with_new_keys();
    for _ in 0..3 {
        let started = app.start_sign_in("corp-rs", None).await;
        let redirected = drive_login(started.authorization_url.as_str(), "frank").await;
        let query = redirected.split_once('?').unwrap().1.to_owned();
        let callback = app
            .callback("corp-rs", &query, Some(&started.state_cookie))
            .await;
        assert_eq!(callback.status(), StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = callback.json().await.unwrap();
        assert_eq!(body["code"], "invalid_id_token");
    }
    assert_eq!(
        jwks_fetches(&app, "corp-rs"),
        2,
        "no refetch storm during the cooldown"
    );
}
