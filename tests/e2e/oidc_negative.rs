//! OpenID Connect sign-in refusing what it must refuse, against a scripted fake provider
//! (`tributary_e2e::fake_oidc`) that issues the bad tokens a real one will not: forged and
//! replayed state, wrong nonce, audience, issuer and lifetimes, unsigned and HS256-confused
//! tokens, unknown keys, a userinfo for someone else, provider errors, unverified emails
//! and open redirects. Each refusal is checked for its status and `code`, for the callback's
//! `no-store`/`no-referrer` headers, and for leaving nothing behind: no login cookie, no
//! user by the identity or the email.

use std::time::Duration;

use reqwest::{Response, StatusCode, Url};
use serde_json::{json, Value};
use tributary::auth::oauth::flow::Provider;
use tributary::store::users::identity_key;
use tributary_e2e::app::{embedded_table, spawn_app_with_providers, status_and_body, TestApp};
use tributary_e2e::fake_oidc::{
    FakeOidc, IdToken, Script, Signing, EC_KID, ROTATED_RSA_KID, RSA_KID, RSA_PUBLIC_PEM,
};
use tributary_e2e::signin::{
    oidc_config, redirect_uri, services_with_outbox, set_cookie_value, verification_links, Started,
    LOGIN_COOKIE, STATE_COOKIE,
};

const PROVIDER: &str = "fake";
const CLIENT_ID: &str = "tributary-fake-client";
const CLIENT_SECRET: &str = "fake-client-secret-3b9d7e1a5c";

struct Harness {
    fake: FakeOidc,
    app: TestApp,
    /// The app's dev outbox (verification mails).
    outbox: std::path::PathBuf,
}

async fn harness() -> Harness {
    harness_with(Duration::from_secs(60), true).await
}

/// A fake provider and an app that knows it as `fake`; `iss_supported` is what discovery
/// says about the RFC 9207 `iss` parameter.
async fn harness_with(jwks_cooldown: Duration, iss_supported: bool) -> Harness {
    let fake = FakeOidc::start(CLIENT_ID, CLIENT_SECRET, &redirect_uri(PROVIDER)).await;
    fake.set_iss_parameter_supported(iss_supported);
    let config = oidc_config(PROVIDER, &fake.issuer, CLIENT_ID, CLIENT_SECRET);
    let (services, outbox) = services_with_outbox(embedded_table());
    let app = spawn_app_with_providers(services, vec![config], jwks_cooldown).await;
    Harness { fake, app, outbox }
}

/// A subject and an email no other test uses.
fn person(label: &str) -> (String, String) {
    let id = uuid::Uuid::now_v7().simple().to_string();
    (format!("{label}-{id}"), format!("{label}-{id}@example.com"))
}

/// `application/x-www-form-urlencoded` query from pairs.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse("http://query.invalid/").unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.query().unwrap_or_default().to_owned()
}

fn nonce(started: &Started) -> String {
    started
        .param("nonce")
        .expect("nonce in the authorization URL")
}

impl Harness {
    async fn start(&self) -> Started {
        self.app.start_sign_in(PROVIDER, None).await
    }

    /// Scripts the provider's side of this sign-in under a fresh code (bound to the PKCE
    /// challenge of `started`) and returns the code.
    fn script(&self, started: &Started, script: Script) -> String {
        let code = format!("code-{}", uuid::Uuid::now_v7().simple());
        let challenge = started.param("code_challenge").expect("code_challenge");
        self.fake.script(&code, script.with_challenge(challenge));
        code
    }

    /// The provider's redirect back: `code`, `state` and the RFC 9207 `iss`.
    fn redirect_query(&self, code: &str, state: &str) -> String {
        query(&[("code", code), ("state", state), ("iss", &self.fake.issuer)])
    }

    /// The browser's callback after the provider answered as `script`.
    async fn finish(&self, started: &Started, script: Script) -> Response {
        let code = self.script(started, script);
        let query = self.redirect_query(&code, &started.state);
        self.app
            .callback(PROVIDER, &query, Some(&started.state_cookie))
            .await
    }

    /// A whole sign-in whose ID token is `build(fake, nonce)`.
    async fn sign_in_with(&self, build: impl FnOnce(&FakeOidc, &str) -> IdToken) -> Response {
        let started = self.start().await;
        let token = build(&self.fake, &nonce(&started));
        self.finish(&started, Script::id_token(token)).await
    }

    fn identity(&self, sub: &str) -> tributary::store::Key {
        identity_key(&self.fake.issuer, sub)
    }

    async fn user_by_identity(&self, sub: &str) -> Option<tributary::store::User> {
        self.app
            .services
            .users
            .by_identity(&self.identity(sub))
            .await
            .unwrap()
    }

    async fn user_by_email(&self, email: &str) -> Option<tributary::store::User> {
        self.app.services.users.by_email(email).await.unwrap()
    }

    /// No account was created or linked for `sub`, and none claims `email`.
    async fn assert_nothing_stored(&self, sub: &str, email: Option<&str>) {
        assert!(
            self.user_by_identity(sub).await.is_none(),
            "an identity was stored for {sub}"
        );
        if let Some(email) = email {
            assert!(
                self.user_by_email(email).await.is_none(),
                "a user was stored for {email}"
            );
        }
        self.assert_no_violations();
    }

    /// Every token request our app made was a correct one.
    fn assert_no_violations(&self) {
        assert_eq!(self.fake.violations(), Vec::<String>::new());
    }

    /// The stored state is gone (taken by the callback, or never there).
    async fn assert_state_consumed(&self, state: &str) {
        let stored = self.app.sign_in.values().take_state(state).await.unwrap();
        assert!(stored.is_none(), "the state {state} is still usable");
    }

    fn jwks_fetches(&self) -> u64 {
        match self.app.sign_in.provider(PROVIDER).unwrap() {
            Provider::Oidc(client) => client.jwks.fetch_count(),
            _ => panic!("{PROVIDER} is not an OIDC provider"),
        }
    }

    /// Redeems a successful callback and checks the session works at `GET /me`.
    async fn assert_signed_in(&self, callback: Response, email: &str) -> Value {
        let session = self.app.redeem(callback).await;
        let token = session["access_token"].as_str().expect("access_token");
        let (status, me) = status_and_body(self.app.get("/me", Some(token)).await).await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["user"]["email"], email);
        assert_eq!(me["user"]["id"], session["user"]["id"]);
        session
    }
}

/// A refused callback: the status and `code`, the guard headers, the state cookie cleared,
/// no redirect and no login cookie (so no session can be redeemed). Returns the body.
async fn assert_refused(response: Response, status: StatusCode, code: &str) -> Value {
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "Cache-Control on a refused callback"
    );
    assert_eq!(
        headers.get("referrer-policy").map(|v| v.to_str().unwrap()),
        Some("no-referrer"),
        "Referrer-Policy on a refused callback"
    );
    assert!(headers.get("location").is_none(), "a refusal redirects");
    assert_eq!(
        set_cookie_value(&response, LOGIN_COOKIE),
        None,
        "a refusal sets a login cookie"
    );
    assert_eq!(
        set_cookie_value(&response, STATE_COOKIE).as_deref(),
        Some(""),
        "the state cookie is cleared"
    );
    let (got, body) = status_and_body(response).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    body
}

// 1. Positive control ------------------------------------------------------------------

#[tokio::test]
async fn a_valid_id_token_signs_in_and_the_same_subject_finds_the_same_user() {
    let t = harness().await;
    let (sub, email) = person("alice");
    let started = t.app.start_sign_in(PROVIDER, Some("/welcome")).await;
    assert_eq!(
        started.param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(started.param("client_id").as_deref(), Some(CLIENT_ID));
    let token = t.fake.id_token(&sub, Some(&email), &nonce(&started));
    let callback = t.finish(&started, Script::id_token(token)).await;
    assert_eq!(callback.headers()["location"], "/welcome");
    let login_code = set_cookie_value(&callback, LOGIN_COOKIE).expect("login cookie");
    let session = t.assert_signed_in(callback, &email).await;
    // The login code was redeemed once: a second redemption gets nothing.
    let again = t
        .app
        .client
        .post(t.app.url("/auth/session"))
        .header("cookie", format!("{LOGIN_COOKIE}={login_code}"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_body(again).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["code"], "invalid_login_code");
    t.assert_state_consumed(&started.state).await;

    let user = t.user_by_identity(&sub).await.expect("identity stored");
    assert_eq!(user.id, session["user"]["id"]);
    assert_eq!(
        t.user_by_email(&email).await.expect("email claimed").id,
        user.id
    );

    let again = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    let again = t.assert_signed_in(again, &email).await;
    assert_eq!(again["user"]["id"], session["user"]["id"]);

    let counts = t.fake.counts();
    assert_eq!((counts.discovery, counts.jwks, counts.token), (1, 1, 2));
    assert_eq!(counts.userinfo, 0, "the ID token had the email");
    assert_eq!(t.jwks_fetches(), 1);
    t.assert_no_violations();
}

#[tokio::test]
async fn an_es256_id_token_is_accepted_too() {
    let t = harness().await;
    let (sub, email) = person("bob");
    let response = t
        .sign_in_with(|fake, nonce| {
            fake.id_token(&sub, Some(&email), nonce)
                .signed(Signing::Es256, Some(EC_KID))
        })
        .await;
    t.assert_signed_in(response, &email).await;
    assert!(t.user_by_identity(&sub).await.is_some());
}

// 2. State -----------------------------------------------------------------------------

#[tokio::test]
async fn a_state_that_differs_from_the_cookie_is_refused() {
    let t = harness().await;
    let (sub, email) = person("state-wrong");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let forged = format!("{}x", started.state);
    let response = t
        .app
        .callback(
            PROVIDER,
            &t.redirect_query(&code, &forged),
            Some(&started.state_cookie),
        )
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "invalid_state").await;
    assert_eq!(t.fake.counts().token, 0, "the code was exchanged");
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

#[tokio::test]
async fn a_callback_without_state_is_refused() {
    let t = harness().await;
    let (sub, email) = person("state-missing");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    for query in [
        query(&[("code", &code), ("iss", &t.fake.issuer)]),
        query(&[("code", &code), ("state", ""), ("iss", &t.fake.issuer)]),
    ] {
        let response = t
            .app
            .callback(PROVIDER, &query, Some(&started.state_cookie))
            .await;
        assert_refused(response, StatusCode::BAD_REQUEST, "invalid_state").await;
    }
    assert_eq!(t.fake.counts().token, 0);
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let t = harness().await;
    let (sub, email) = person("state-replay");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let query = t.redirect_query(&code, &started.state);
    let first = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    let session = t.assert_signed_in(first, &email).await;

    let replay = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    let body = assert_refused(replay, StatusCode::BAD_REQUEST, "signin_already_used").await;
    assert_eq!(
        body["message"], "this sign-in was already used; sign in again",
        "{body}"
    );
    // The first callback cleared the state cookie: a browser's reload arrives without it,
    // and hears the same (not "the state does not belong to this browser").
    let reload = t.app.callback(PROVIDER, &query, None).await;
    assert_refused(reload, StatusCode::BAD_REQUEST, "signin_already_used").await;
    assert_eq!(t.fake.counts().token, 1, "the code was exchanged again");
    // The one account from the first callback, nothing more.
    let user = t.user_by_identity(&sub).await.unwrap();
    assert_eq!(user.id, session["user"]["id"]);
    t.assert_no_violations();
}

#[tokio::test]
async fn a_state_from_another_browser_is_refused() {
    let t = harness().await;
    let (sub, email) = person("state-other-browser");
    let victim = t.start().await;
    let attacker = t.start().await;
    let code = t.script(
        &victim,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&victim))),
    );
    // The victim's state and code, replayed in the attacker's browser (with its own cookie).
    let response = t
        .app
        .callback(
            PROVIDER,
            &t.redirect_query(&code, &victim.state),
            Some(&attacker.state_cookie),
        )
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "invalid_state").await;
    assert_eq!(t.fake.counts().token, 0);
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

#[tokio::test]
async fn a_callback_without_the_state_cookie_is_refused() {
    let t = harness().await;
    let (sub, email) = person("state-no-cookie");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let response = t
        .app
        .callback(PROVIDER, &t.redirect_query(&code, &started.state), None)
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "invalid_state").await;
    assert_eq!(t.fake.counts().token, 0);
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

// 3. Nonce -----------------------------------------------------------------------------

#[tokio::test]
async fn a_wrong_or_missing_nonce_is_refused() {
    let t = harness().await;
    for case in ["wrong", "missing", "empty"] {
        let (sub, email) = person(&format!("nonce-{case}"));
        let response = t
            .sign_in_with(|fake, nonce| {
                let token = fake.id_token(&sub, Some(&email), nonce);
                match case {
                    "wrong" => token.claim("nonce", json!(format!("{nonce}-other"))),
                    "missing" => token.without("nonce"),
                    _ => token.claim("nonce", json!("")),
                }
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

// 4. Audience --------------------------------------------------------------------------

/// Turns a valid ID token into a bad one.
type Breaker = fn(IdToken) -> IdToken;

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let t = harness().await;
    let cases: [(&str, Breaker); 4] = [
        ("wrong-aud", |token| {
            token.claim("aud", json!("another-client"))
        }),
        ("extra-aud", |token| {
            token
                .claim("aud", json!([CLIENT_ID, "another-client"]))
                .claim("azp", json!(CLIENT_ID))
        }),
        ("foreign-azp", |token| {
            token.claim("azp", json!("another-client"))
        }),
        ("no-aud", |token| token.without("aud")),
    ];
    for (label, break_it) in cases {
        let (sub, email) = person(label);
        let response = t
            .sign_in_with(|fake, nonce| break_it(fake.id_token(&sub, Some(&email), nonce)))
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

#[tokio::test]
async fn an_id_token_without_a_subject_is_refused() {
    let t = harness().await;
    for empty in [false, true] {
        let (_, email) = person("no-sub");
        let response = t
            .sign_in_with(|fake, nonce| {
                let token = fake.id_token("", Some(&email), nonce);
                if empty {
                    token
                } else {
                    token.without("sub")
                }
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored("", Some(&email)).await;
    }
}

// 5. Issuer ----------------------------------------------------------------------------

#[tokio::test]
async fn an_id_token_from_another_issuer_is_refused() {
    let t = harness().await;
    let with_slash = format!("{}/", t.fake.issuer);
    for iss in ["https://evil.example", with_slash.as_str()] {
        let (sub, email) = person("iss-claim");
        let response = t
            .sign_in_with(|fake, nonce| {
                fake.id_token(&sub, Some(&email), nonce)
                    .claim("iss", json!(iss))
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

#[tokio::test]
async fn a_mismatched_iss_parameter_is_refused() {
    let t = harness().await;
    let (sub, email) = person("iss-param");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let query = query(&[
        ("code", &code),
        ("state", &started.state),
        ("iss", "https://evil.example"),
    ]);
    let response = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "invalid_issuer").await;
    assert_eq!(
        t.fake.counts().token,
        0,
        "the code went to the token endpoint"
    );
    t.assert_state_consumed(&started.state).await;
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

#[tokio::test]
async fn a_missing_iss_parameter_is_refused_when_discovery_promises_it() {
    let t = harness().await;
    let (sub, email) = person("iss-missing");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let query = query(&[("code", &code), ("state", &started.state)]);
    let response = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "invalid_issuer").await;
    assert_eq!(t.fake.counts().token, 0);
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let t = harness().await;
    t.fake.set_discovery_issuer("https://evil.example");
    let url = t.app.url(&format!("/auth/oauth/{PROVIDER}/login"));
    let response = t.app.client.get(url).send().await.unwrap();
    assert!(response.headers().get("set-cookie").is_none());
    assert!(response.headers().get("location").is_none());
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "provider_unavailable", "{body}");
    assert_eq!(t.fake.counts().jwks + t.fake.counts().token, 0);
}

/// Control for the two above: without the promise, `iss` may be absent but never wrong.
#[tokio::test]
async fn without_the_discovery_promise_iss_may_be_absent_but_not_wrong() {
    let t = harness_with(Duration::from_secs(60), false).await;
    let (sub, email) = person("iss-optional");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let response = t
        .app
        .callback(
            PROVIDER,
            &query(&[("code", &code), ("state", &started.state)]),
            Some(&started.state_cookie),
        )
        .await;
    t.assert_signed_in(response, &email).await;

    let (sub, email) = person("iss-optional-wrong");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let query = query(&[
        ("code", &code),
        ("state", &started.state),
        ("iss", "https://evil.example"),
    ]);
    let response = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "invalid_issuer").await;
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

// 6. Lifetime --------------------------------------------------------------------------

#[tokio::test]
async fn an_expired_or_not_yet_valid_id_token_is_refused() {
    let t = harness().await;
    let now = chrono::Utc::now().timestamp();
    let cases: [(&str, Vec<(&str, Value)>); 4] = [
        // Expired 10 minutes ago: well beyond the 60 s leeway.
        (
            "expired",
            vec![("iat", json!(now - 900)), ("exp", json!(now - 600))],
        ),
        ("not-yet-valid", vec![("nbf", json!(now + 600))]),
        (
            "issued-in-the-future",
            vec![("iat", json!(now + 600)), ("exp", json!(now + 900))],
        ),
        // Not expired, but issued two hours ago (stale beyond the one-hour maximum age).
        ("stale", vec![("iat", json!(now - 7200))]),
    ];
    for (label, claims) in cases {
        let (sub, email) = person(label);
        let response = t
            .sign_in_with(|fake, nonce| {
                claims.into_iter().fold(
                    fake.id_token(&sub, Some(&email), nonce),
                    |token, (name, value)| token.claim(name, value),
                )
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

// 7. Algorithms ------------------------------------------------------------------------

#[tokio::test]
async fn an_unsigned_id_token_is_refused() {
    let t = harness().await;
    for kid in [Some(RSA_KID), None] {
        let (sub, email) = person("alg-none");
        let response = t
            .sign_in_with(|fake, nonce| {
                fake.id_token(&sub, Some(&email), nonce)
                    .signed(Signing::Unsigned, kid)
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    let t = harness().await;
    // The classic confusion: HMAC keyed with the provider's public key, in the forms an
    // attacker would try (PEM with and without its final newline, the JWKS JSON `n`).
    let secrets: [Vec<u8>; 3] = [
        RSA_PUBLIC_PEM.as_bytes().to_vec(),
        RSA_PUBLIC_PEM.trim_end().as_bytes().to_vec(),
        reqwest::get(format!("{}/jwks", t.fake.issuer))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["keys"][0]["n"]
            .as_str()
            .unwrap()
            .as_bytes()
            .to_vec(),
    ];
    for secret in secrets {
        let (sub, email) = person("alg-hs256");
        let response = t
            .sign_in_with(|fake, nonce| {
                fake.id_token(&sub, Some(&email), nonce)
                    .signed(Signing::Hs256(secret), Some(RSA_KID))
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

// 8. Keys ------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_signed_by_a_key_outside_the_jwks_is_refused() {
    let t = harness().await;
    // An unknown kid; a known kid on a token its key did not sign; and published keys
    // used with the other algorithm (the JWKS declares each key's `alg`).
    let cases = [
        (Signing::RotatedRs256, "not-in-the-jwks"),
        (Signing::RotatedRs256, RSA_KID),
        (Signing::Es256, RSA_KID),
        (Signing::Rs256, EC_KID),
    ];
    for (signing, kid) in cases {
        let (sub, email) = person("unknown-key");
        let response = t
            .sign_in_with(|fake, nonce| {
                fake.id_token(&sub, Some(&email), nonce)
                    .signed(signing, Some(kid))
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
}

// 9. Userinfo --------------------------------------------------------------------------

#[tokio::test]
async fn a_userinfo_about_another_subject_is_refused() {
    let t = harness().await;
    let (sub, email) = person("userinfo");
    let (other_sub, _) = person("userinfo-other");
    let started = t.start().await;
    let token = t
        .fake
        .id_token(&sub, None, &nonce(&started))
        .without("email_verified");
    let userinfo = json!({"sub": other_sub, "email": email, "email_verified": true});
    let response = t
        .finish(&started, Script::id_token(token).with_userinfo(userinfo))
        .await;
    assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_userinfo").await;
    assert_eq!(t.fake.counts().userinfo, 1, "userinfo was not asked");
    t.assert_nothing_stored(&sub, Some(&email)).await;
    t.assert_nothing_stored(&other_sub, None).await;

    // Control: the same answer about the right subject supplies the email.
    let started = t.start().await;
    let token = t.fake.id_token(&sub, None, &nonce(&started));
    let userinfo = json!({"sub": sub, "email": email, "email_verified": true});
    let response = t
        .finish(&started, Script::id_token(token).with_userinfo(userinfo))
        .await;
    t.assert_signed_in(response, &email).await;
}

// 10. Provider errors ------------------------------------------------------------------

#[tokio::test]
async fn a_provider_error_is_reported_plainly_and_burns_the_state() {
    let t = harness().await;
    let (sub, email) = person("provider-error");
    let started = t.start().await;
    let query = query(&[
        ("error", "temporarily_unavailable"),
        ("error_description", "The provider is under maintenance"),
        ("state", &started.state),
        ("iss", &t.fake.issuer),
    ]);
    let response = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    let body = assert_refused(response, StatusCode::BAD_REQUEST, "provider_error").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("temporarily_unavailable")
            && message.contains("The provider is under maintenance"),
        "{message}"
    );
    for internal in [
        "panicked",
        "backtrace",
        "stack",
        "Exception",
        ".rs:",
        "src/",
        "Error {",
        "reqwest",
        "\n",
    ] {
        assert!(!message.contains(internal), "{internal:?} in {message:?}");
    }
    t.assert_state_consumed(&started.state).await;

    // The same state, now with a code, is no longer accepted.
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let response = t
        .app
        .callback(
            PROVIDER,
            &t.redirect_query(&code, &started.state),
            Some(&started.state_cookie),
        )
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "signin_already_used").await;
    assert_eq!(t.fake.counts().token, 0);
    t.assert_nothing_stored(&sub, Some(&email)).await;
}

#[tokio::test]
async fn a_hostile_error_description_is_trimmed_to_printable_text() {
    let t = harness().await;
    let started = t.start().await;
    let description = format!(
        "boom\r\nSet-Cookie: session=evil\u{0}\u{1b}[31m{}",
        "x".repeat(1000)
    );
    let query = query(&[
        ("error", "server_error"),
        ("error_description", &description),
        ("state", &started.state),
    ]);
    let response = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    assert!(set_cookie_value(&response, "session").is_none());
    let body = assert_refused(response, StatusCode::BAD_REQUEST, "provider_error").await;
    let message = body["message"].as_str().unwrap();
    assert!(!message.chars().any(char::is_control), "{message:?}");
    assert!(message.len() < 400, "{} characters", message.len());
}

#[tokio::test]
async fn a_token_endpoint_error_is_refused() {
    let t = harness().await;
    let (sub, email) = person("token-error");
    let started = t.start().await;
    let response = t
        .finish(
            &started,
            Script::error(400, "invalid_grant", "The code has expired"),
        )
        .await;
    // The user's to retry (a stale or reused code), not an outage of ours.
    let body = assert_refused(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert!(
        body["message"].as_str().unwrap().contains("sign in again"),
        "{body}"
    );
    assert_eq!(t.fake.counts().token, 1);
    t.assert_nothing_stored(&sub, Some(&email)).await;

    // A provider refusing us (bad client credentials) is still a gateway failure.
    let started = t.start().await;
    let response = t
        .finish(
            &started,
            Script::error(401, "invalid_client", "Client authentication failed"),
        )
        .await;
    assert_refused(response, StatusCode::BAD_GATEWAY, "token_exchange_failed").await;
}

// 11. Email linking --------------------------------------------------------------------

#[tokio::test]
async fn an_unverified_email_never_links_and_a_verified_one_does() {
    let t = harness().await;
    let (sub, email) = person("linking");
    let registered = t.app.register(&email).await;
    let registered_id = registered["user"]["id"].as_str().unwrap().to_owned();

    for flag in [json!(false), json!("false"), Value::Null] {
        let response = t
            .sign_in_with(|fake, nonce| {
                let token = fake.id_token(&sub, Some(&email), nonce);
                if flag.is_null() {
                    token.without("email_verified")
                } else {
                    token.claim("email_verified", flag.clone())
                }
            })
            .await;
        assert_refused(response, StatusCode::CONFLICT, "email_not_verified").await;
        assert!(
            t.user_by_identity(&sub).await.is_none(),
            "an identity was linked (email_verified {flag})"
        );
        let owner = t.user_by_email(&email).await.expect("the password account");
        assert_eq!(owner.id, registered_id);
    }

    // Verified by the provider, but the password account never proved the address: no
    // link and no second account (the pre-registration takeover).
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    assert_refused(response, StatusCode::CONFLICT, "account_email_not_verified").await;
    assert!(t.user_by_identity(&sub).await.is_none());

    // Once the password account verifies through the mailed link, the provider links.
    let links = verification_links(&t.outbox, &email);
    let (status, page) = t.app.open_verification_link(&links[0]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    let session = t.assert_signed_in(response, &email).await;
    assert_eq!(session["user"]["id"], registered_id.as_str());
    assert_eq!(t.user_by_identity(&sub).await.unwrap().id, registered_id);
    t.assert_no_violations();
}

/// Issue 8, point 2: an attacker registers the victim's address with a password; the
/// victim's verified SSO sign-in must not land in (or be linked to) the attacker's account.
#[tokio::test]
async fn a_pre_registered_password_account_does_not_capture_a_verified_sso_sign_in() {
    let t = harness().await;
    let (victim_sub, victim_email) = person("victim");
    let attacker = t.app.register(&victim_email).await;
    let attacker_id = attacker["user"]["id"].as_str().unwrap().to_owned();
    let attacker_session = t.app.login(&victim_email).await;

    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&victim_sub, Some(&victim_email), nonce))
        .await;
    let body = assert_refused(response, StatusCode::CONFLICT, "account_email_not_verified").await;
    assert!(
        body["message"].as_str().unwrap().contains("verify"),
        "{body}"
    );
    assert!(
        t.user_by_identity(&victim_sub).await.is_none(),
        "the victim's identity was linked to the attacker's account"
    );
    assert_eq!(
        t.user_by_email(&victim_email).await.unwrap().id,
        attacker_id
    );
    // The attacker's session still shows only the unverified password account.
    let (_, me) = status_and_body(t.app.get("/me", Some(&attacker_session)).await).await;
    assert_eq!(me["user"]["email_verified"], false);
    t.assert_no_violations();
}

// 12. Post-login redirect --------------------------------------------------------------

#[tokio::test]
async fn an_off_site_redirect_to_is_refused_before_any_state_exists() {
    let t = harness().await;
    for bad in ["//evil.example", "/\\evil.example", "https://evil.example"] {
        let mut url = Url::parse(&t.app.url(&format!("/auth/oauth/{PROVIDER}/login"))).unwrap();
        url.query_pairs_mut().append_pair("redirect_to", bad);
        let response = t.app.client.get(url).send().await.unwrap();
        assert!(
            response.headers().get("set-cookie").is_none(),
            "a cookie was set for {bad:?}"
        );
        assert!(
            response.headers().get("location").is_none(),
            "redirected for {bad:?}"
        );
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(body["code"], "invalid_redirect", "{bad:?}: {body}");
    }
    assert_eq!(t.fake.counts().discovery, 0, "the provider was contacted");
}

// 13. JWKS refetching ------------------------------------------------------------------

#[tokio::test]
async fn unknown_kids_cause_one_jwks_refetch_then_the_cooldown_holds() {
    let t = harness_with(Duration::from_secs(300), true).await;
    let (sub, email) = person("jwks");
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    t.assert_signed_in(response, &email).await;
    assert_eq!(t.jwks_fetches(), 1);

    for i in 0..5 {
        let (sub, email) = person(&format!("jwks-storm-{i}"));
        let kid = format!("made-up-kid-{i}");
        let response = t
            .sign_in_with(|fake, nonce| {
                fake.id_token(&sub, Some(&email), nonce)
                    .signed(Signing::RotatedRs256, Some(&kid))
            })
            .await;
        assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
        t.assert_nothing_stored(&sub, Some(&email)).await;
    }
    assert!(t.jwks_fetches() <= 2, "{} JWKS fetches", t.jwks_fetches());
    assert_eq!(t.jwks_fetches(), 2, "one refetch, then the cooldown");
    assert_eq!(t.fake.counts().jwks, t.jwks_fetches());
}

/// Control for the above: a genuinely rotated key is picked up with one refetch.
#[tokio::test]
async fn a_rotated_key_is_found_with_one_refetch() {
    let t = harness_with(Duration::from_secs(300), true).await;
    let (sub, email) = person("rotation");
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    t.assert_signed_in(response, &email).await;
    assert_eq!(t.jwks_fetches(), 1);

    t.fake.rotate_keys();
    let response = t
        .sign_in_with(|fake, nonce| {
            fake.id_token(&sub, Some(&email), nonce)
                .signed(Signing::RotatedRs256, Some(ROTATED_RSA_KID))
        })
        .await;
    t.assert_signed_in(response, &email).await;
    assert_eq!(t.jwks_fetches(), 2);

    // Both keys are cached now: no further fetch for either.
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    t.assert_signed_in(response, &email).await;
    assert_eq!(t.jwks_fetches(), 2);
    t.assert_no_violations();
}

// 14. Browser-facing callback errors (issue 8, point 6b) ----------------------------------

/// The callback as a browser navigates to it (`Accept: text/html`).
async fn browser_callback(t: &Harness, query: &str, cookie: Option<&str>) -> Response {
    let mut request = t
        .app
        .client
        .get(
            t.app
                .url(&format!("/auth/oauth/{PROVIDER}/callback?{query}")),
        )
        .header(
            reqwest::header::ACCEPT,
            "text/html,application/xhtml+xml,*/*;q=0.8",
        );
    if let Some(value) = cookie {
        request = request.header(reqwest::header::COOKIE, format!("{STATE_COOKIE}={value}"));
    }
    request.send().await.unwrap()
}

/// A browser's failed callback: back to the sign-in page with the reason, nothing else.
fn assert_sent_back(response: &Response, code: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert_eq!(location, format!("/?signin_error={code}"));
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(set_cookie_value(response, LOGIN_COOKIE), None);
    assert_eq!(
        set_cookie_value(response, STATE_COOKIE).as_deref(),
        Some("")
    );
}

#[tokio::test]
async fn a_browser_that_cancelled_at_the_provider_is_sent_back_to_the_sign_in_page() {
    let t = harness().await;
    let started = t.start().await;
    let query = query(&[
        ("error", "access_denied"),
        ("error_description", "The user denied the request"),
        ("state", &started.state),
        ("iss", &t.fake.issuer),
    ]);
    let response = browser_callback(&t, &query, Some(&started.state_cookie)).await;
    assert_sent_back(&response, "signin_cancelled");
    t.assert_state_consumed(&started.state).await;
    // An API client asking the same gets the JSON error.
    let started = t.start().await;
    let query = query_for_cancel(&started, &t.fake.issuer);
    let response = t
        .app
        .callback(PROVIDER, &query, Some(&started.state_cookie))
        .await;
    assert_refused(response, StatusCode::BAD_REQUEST, "signin_cancelled").await;
}

fn query_for_cancel(started: &Started, issuer: &str) -> String {
    query(&[
        ("error", "access_denied"),
        ("state", &started.state),
        ("iss", issuer),
    ])
}

#[tokio::test]
async fn a_browser_reusing_or_arriving_late_is_sent_back_with_the_reason() {
    let t = harness().await;
    let (sub, email) = person("browser-replay");
    let started = t.start().await;
    let code = t.script(
        &started,
        Script::id_token(t.fake.id_token(&sub, Some(&email), &nonce(&started))),
    );
    let query = t.redirect_query(&code, &started.state);
    let first = browser_callback(&t, &query, Some(&started.state_cookie)).await;
    t.assert_signed_in(first, &email).await;
    // Back button / reload: the cookie is gone, the state used.
    let again = browser_callback(&t, &query, None).await;
    assert_sent_back(&again, "signin_already_used");

    // A state that is not (or no longer) stored: expired.
    let expired = "expired-state-0123456789abcdef";
    let query = t.redirect_query("some-code", expired);
    let late = browser_callback(&t, &query, Some(expired)).await;
    assert_sent_back(&late, "signin_expired");
    let late = t.app.callback(PROVIDER, &query, Some(expired)).await;
    assert_refused(late, StatusCode::BAD_REQUEST, "signin_expired").await;
    assert_eq!(t.fake.counts().token, 1);
}

// 15. JWKS freshness (issue 8, point 6b) ---------------------------------------------------

#[tokio::test]
async fn a_key_withdrawn_from_the_jwks_stops_being_trusted_after_max_age() {
    let t = harness().await;
    t.fake.set_jwks_cache_control("public, max-age=1");
    let (sub, email) = person("withdrawn");
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    t.assert_signed_in(response, &email).await;
    t.fake.withdraw_rsa_key();
    // Within max-age the cached key may still be used; after it, never again.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let refused = loop {
        let response = t
            .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
            .await;
        if response.status() == StatusCode::UNAUTHORIZED {
            break response;
        }
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(
            std::time::Instant::now() < deadline,
            "the withdrawn key is still trusted after 15 s (max-age=1)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_refused(refused, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
    assert!(t.jwks_fetches() >= 2, "the expired set was refetched");
}

#[tokio::test]
async fn a_key_rotated_under_the_same_kid_is_picked_up_with_one_refetch() {
    let t = harness_with(Duration::from_secs(300), true).await;
    let (sub, email) = person("same-kid");
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    t.assert_signed_in(response, &email).await;
    assert_eq!(t.jwks_fetches(), 1);

    t.fake.rotate_rsa_key_in_place();
    let rotated = |fake: &FakeOidc, nonce: &str| {
        fake.id_token(&sub, Some(&email), nonce)
            .signed(Signing::RotatedRs256, Some(RSA_KID))
    };
    let response = t.sign_in_with(rotated).await;
    t.assert_signed_in(response, &email).await;
    assert_eq!(
        t.jwks_fetches(),
        2,
        "one refetch after the signature failed"
    );
    // The new key is cached; the old one under that kid is no longer trusted.
    let response = t.sign_in_with(rotated).await;
    t.assert_signed_in(response, &email).await;
    let response = t
        .sign_in_with(|fake, nonce| fake.id_token(&sub, Some(&email), nonce))
        .await;
    assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_id_token").await;
    assert_eq!(t.jwks_fetches(), 2, "the cooldown holds");
    t.assert_no_violations();
}
