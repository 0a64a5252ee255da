//! Accounts, sessions and API tokens through the HTTP routes, as a client sees them.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary_e2e::app::{
    dynamo_table, embedded_table, services_over, spawn_app, spawn_app_with, status_and_body,
    TestApp, PASSWORD,
};
use tributary_e2e::signin::{link_token, services_with_outbox, verification_links};

async fn whole_flow(app: TestApp) {
    let registered = app.register("  Ada.Lovelace@Example.COM ").await;
    assert_eq!(registered["user"]["email"], "ada.lovelace@example.com");
    assert!(registered["user"].get("password_hash").is_none());

    let response = app
        .post_json(
            "/auth/login",
            &json!({"email": "ADA.lovelace@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    let (status, login) = status_and_body(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 3600);
    assert_eq!(login["user"]["id"], registered["user"]["id"]);
    let session = login["access_token"].as_str().unwrap();

    let (status, me) = status_and_body(app.get("/me", Some(session)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"]["email"], "ada.lovelace@example.com");
    assert_eq!(me["token_kind"], "session");

    let created = app
        .api_token(session, &["profile:read", "tokens:read"])
        .await;
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("trb_"));
    assert_eq!(created["scopes"], json!(["profile:read", "tokens:read"]));
    assert!(created["expires_at"].is_string());

    let (status, me) = status_and_body(app.get("/me", Some(token)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["token_kind"], "api_token");
    assert_eq!(me["user"]["id"], registered["user"]["id"]);

    let (status, listed) = status_and_body(app.get("/api-tokens", Some(token)).await).await;
    assert_eq!(status, StatusCode::OK);
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], created["id"]);
    assert!(items[0]["last_used_at"].is_string());
    let listing = listed.to_string();
    assert!(
        !listing.contains(&token[4..]),
        "the token must never be listed"
    );
    assert!(items[0].get("token").is_none() && items[0].get("token_hash").is_none());

    let id = created["id"].as_str().unwrap();
    let response = app.delete(&format!("/api-tokens/{id}"), session).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = status_and_body(app.get("/me", Some(token)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let response = app
        .post_json("/auth/logout", &json!({}), Some(session))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = status_and_body(app.get("/me", Some(session)).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn whole_flow_on_the_embedded_store() {
    whole_flow(spawn_app().await).await;
}

#[tokio::test]
async fn whole_flow_on_dynamodb() {
    whole_flow(spawn_app_with(services_over(dynamo_table().await)).await).await;
}

#[tokio::test]
async fn a_duplicate_email_is_409_whatever_its_case() {
    let app = spawn_app().await;
    app.register("grace@example.com").await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({"email": "Grace@Example.com", "password": "another-long-pass-phrase-77", "name": "G"}),
            None,
        )
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
    // The first account is untouched: its password still works.
    app.login("grace@example.com").await;
}

#[tokio::test]
async fn weak_passwords_are_refused_with_a_clear_error_and_nothing_stored() {
    let app = spawn_app().await;
    for weak in ["short", "password123", "aaaaaaaaaaaa", "linus@example.com"] {
        let response = app
            .post_json(
                "/auth/register",
                &json!({"email": "linus@example.com", "password": weak, "name": "Linus"}),
                None,
            )
            .await;
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{weak}");
        assert_eq!(body["code"], "weak_password", "{weak}");
    }
    // Nothing was stored, so the email is still free.
    app.register("linus@example.com").await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    app.register("known@example.com").await;
    let attempt = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            status_and_body(
                app.post_json(
                    "/auth/login",
                    &json!({"email": email, "password": password}),
                    None,
                )
                .await,
            )
            .await
        }
    };
    let unknown = attempt("unknown@example.com", PASSWORD).await;
    let wrong = attempt("known@example.com", "not-the-password-at-all").await;
    let malformed = attempt("not-an-email", PASSWORD).await;
    assert_eq!(unknown.0, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, wrong);
    assert_eq!(unknown, malformed);
    assert_eq!(unknown.1["code"], "invalid_credentials");
}

#[tokio::test]
async fn logout_revokes_every_session_of_the_user_only() {
    let app = spawn_app().await;
    let first = app.signed_in("multi@example.com").await;
    let second = app.login("multi@example.com").await;
    let other = app.signed_in("other@example.com").await;
    let api = app.api_token(&first, &["profile:read"]).await;
    let response = app
        .post_json("/auth/logout", &json!({}), Some(&second))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for revoked in [&first, &second] {
        assert_eq!(
            app.get("/me", Some(revoked)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(app.get("/me", Some(&other)).await.status(), StatusCode::OK);
    // API tokens are revoked one by one, not by logout.
    let api = api["token"].as_str().unwrap();
    assert_eq!(app.get("/me", Some(api)).await.status(), StatusCode::OK);
    let fresh = app.login("multi@example.com").await;
    assert_eq!(app.get("/me", Some(&fresh)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn api_tokens_cannot_exceed_their_creators_scopes() {
    let app = spawn_app().await;
    let session = app.signed_in("scoped@example.com").await;
    let limited = app
        .api_token(&session, &["tokens:write", "profile:read"])
        .await;
    let limited = limited["token"].as_str().unwrap();
    let response = app
        .post_json(
            "/api-tokens",
            &json!({"name": "escalate", "scopes": ["connectors:write"]}),
            Some(limited),
        )
        .await;
    let (status, body) = status_and_body(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // Without tokens:read it cannot list.
    let (status, _) = status_and_body(app.get("/api-tokens", Some(limited)).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Logging out is for sessions.
    let (status, _) = status_and_body(
        app.post_json("/auth/logout", &json!({}), Some(limited))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/me", Some(&session)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn users_cannot_see_or_revoke_each_others_tokens() {
    let app = spawn_app().await;
    let alice = app.signed_in("alice@example.com").await;
    let bob = app.signed_in("bob@example.com").await;
    let alices = app.api_token(&alice, &["profile:read"]).await;
    let id = alices["id"].as_str().unwrap();
    let (status, body) =
        status_and_body(app.delete(&format!("/api-tokens/{id}"), &bob).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("token_not_found"))
    );
    let (_, listed) = status_and_body(app.get("/api-tokens", Some(&bob)).await).await;
    assert_eq!(listed["items"], json!([]));
    let token = alices["token"].as_str().unwrap();
    assert_eq!(app.get("/me", Some(token)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_listing_paginates() {
    let app = spawn_app().await;
    let session = app.signed_in("pager@example.com").await;
    for _ in 0..5 {
        app.api_token(&session, &["profile:read"]).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api-tokens?limit=2".to_string();
    loop {
        let (status, page) = status_and_body(app.get(&path, Some(&session)).await).await;
        assert_eq!(status, StatusCode::OK);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|item| item["id"].as_str().unwrap().to_owned()),
        );
        match page["next"].as_str() {
            Some(next) => path = format!("/api-tokens?limit=2&cursor={next}"),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

/// Every route with every kind of bad input: a 4xx `{code, message}` and no change.
#[tokio::test]
async fn bad_input_on_every_route_is_a_4xx_json_error_and_changes_nothing() {
    let app = spawn_app().await;
    let session = app.signed_in("strict@example.com").await;
    let kept = app.api_token(&session, &["profile:read"]).await;
    let huge = "x".repeat(20_000);
    let long_name = "n".repeat(500);
    let long_email = format!("{}@example.com", "e".repeat(300));
    let json_cases: Vec<(&str, Value, StatusCode)> = vec![
        (
            "/auth/register",
            json!({"email": "a@example.com", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/register",
            json!({"email": 7, "password": PASSWORD, "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/register",
            json!({"email": long_email, "password": PASSWORD, "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/register",
            json!({"email": "b@example.com", "password": PASSWORD, "name": long_name}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/register",
            json!({"email": "c@example.com", "password": PASSWORD, "name": ""}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/register",
            json!({"email": "no-at-sign", "password": PASSWORD, "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/register",
            json!({"email": "d@example.com", "password": "p".repeat(300), "name": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        ("/auth/register", json!([1, 2]), StatusCode::BAD_REQUEST),
        (
            "/auth/login",
            json!({"email": "strict@example.com"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/auth/login",
            json!({"email": "strict@example.com", "password": null}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"scopes": ["profile:read"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": "x", "scopes": "profile:read"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": "x", "scopes": []}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": "x", "scopes": ["root"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": "x", "scopes": ["profile:read"], "expires_in": 5}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": "x", "scopes": ["profile:read"], "expires_in": "soon"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": "x", "scopes": ["profile:read"], "expires_in": 99_999_999_999i64}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": long_name, "scopes": ["profile:read"]}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api-tokens",
            json!({"name": huge, "scopes": ["profile:read"]}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (path, body, expected) in json_cases {
        let (status, error) =
            status_and_body(app.post_json(path, &body, Some(&session)).await).await;
        assert_eq!(status, expected, "{path} {body:.80}: {error}");
    }
    for path in ["/auth/register", "/auth/login", "/api-tokens"] {
        let raw = |body: &'static str, content_type: &'static str| {
            app.client
                .post(app.url(path))
                .bearer_auth(&session)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let (status, _) =
            status_and_body(raw("{not json", "application/json").await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} malformed");
        let (status, _) = status_and_body(raw("", "application/json").await.unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} empty");
        let (status, _) = status_and_body(raw("{}", "text/plain").await.unwrap()).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{path} content type"
        );
    }
    for path in [
        "/api-tokens?limit=0",
        "/api-tokens?limit=abc",
        "/api-tokens?cursor=%%%",
    ] {
        let (status, _) = status_and_body(app.get(path, Some(&session)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    let (status, _) =
        status_and_body(app.delete("/api-tokens/not-a-real-id", &session).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = status_and_body(app.get("/no/such/route", None).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = status_and_body(app.get("/auth/login", None).await).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    for path in ["/me", "/api-tokens"] {
        let (status, _) = status_and_body(app.get(path, None).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }

    // Nothing changed: one account, one token, the session still valid.
    let (_, listed) = status_and_body(app.get("/api-tokens", Some(&session)).await).await;
    let ids: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(ids, [&kept["id"]]);
    for email in [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ] {
        assert!(
            app.services.users.by_email(email).await.unwrap().is_none(),
            "{email}"
        );
    }
    assert_eq!(
        app.get("/me", Some(&session)).await.status(),
        StatusCode::OK
    );
}

// Email verification, "sign out everywhere", child-token caps (issue 8, points 2 and 6).

#[tokio::test]
async fn registering_mails_a_one_time_link_that_verifies_the_email() {
    let (services, outbox) = services_with_outbox(embedded_table());
    let app = spawn_app_with(services).await;
    let registered = app.register("verify-me@example.com").await;
    assert_eq!(registered["user"]["email_verified"], false);
    // Unverified accounts still sign in with their password.
    let session = app.login("verify-me@example.com").await;
    let (_, me) = status_and_body(app.get("/me", Some(&session)).await).await;
    assert_eq!(me["user"]["email_verified"], false);

    let links = verification_links(&outbox, "verify-me@example.com");
    assert_eq!(links.len(), 1, "one mail at registration");
    assert_eq!(links[0].path(), "/auth/verify-email");
    let token = link_token(&links[0]);
    let plain_key = tributary::store::Key::new(format!("EMAILVERIFY#{token}"), "TOKEN");
    let stored = app.services.table.get(&plain_key).await.unwrap();
    assert!(stored.is_none(), "the token is stored hashed");

    let (status, page) = app.open_verification_link(&links[0]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("verify-me@example.com is verified"), "{page}");
    let (_, me) = status_and_body(app.get("/me", Some(&session)).await).await;
    assert_eq!(me["user"]["email_verified"], true);

    // The link works once.
    let (status, page) = app.open_verification_link(&links[0]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    let (status, body) = status_and_body(
        app.post_json("/auth/verify-email", &json!({ "token": token }), None)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_verification_token"))
    );
    // Verified: nothing more to request.
    let (status, body) = status_and_body(
        app.post_json("/auth/verify-email/request", &json!({}), Some(&session))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_already_verified"))
    );
}

#[tokio::test]
async fn expired_and_forged_verification_tokens_are_refused() {
    let (services, _outbox) = services_with_outbox(embedded_table());
    let app = spawn_app_with(services).await;
    let registered = app.register("expired@example.com").await;
    let user_id = registered["user"]["id"].as_str().unwrap();
    let user = app.services.users.by_id(user_id).await.unwrap().unwrap();
    let day = 24 * 3600;
    let issued_long_ago = tributary::store::now_epoch_seconds() - day - 60;
    let expired = app
        .services
        .users
        .issue_email_verification(&user, issued_long_ago, day)
        .await
        .unwrap();
    let forged = "A".repeat(43);
    for token in [expired.as_str(), forged.as_str(), "short", ""] {
        let (status, body) = status_and_body(
            app.post_json("/auth/verify-email", &json!({ "token": token }), None)
                .await,
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_verification_token")),
            "{token:?}"
        );
    }
    let user = app.services.users.by_id(user_id).await.unwrap().unwrap();
    assert!(!user.email_verified);
}

#[tokio::test]
async fn a_new_verification_mail_can_be_requested_once_a_minute() {
    let (services, outbox) = services_with_outbox(embedded_table());
    let app = spawn_app_with(services).await;
    let session = app.signed_in("again@example.com").await;
    let response = app
        .post_json("/auth/verify-email/request", &json!({}), Some(&session))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let (status, body) = status_and_body(
        app.post_json("/auth/verify-email/request", &json!({}), Some(&session))
            .await,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("verification_recently_sent")
        )
    );
    let links = verification_links(&outbox, "again@example.com");
    assert_eq!(links.len(), 2, "registration + one request");
    // The newest link verifies; the older one stays usable until it expires or is used.
    let (status, _) = app.open_verification_link(&links[1]).await;
    assert_eq!(status, StatusCode::OK);
    // API tokens cannot trigger mail.
    let token = app.api_token(&session, &["profile:read"]).await;
    let (status, _) = status_and_body(
        app.post_json(
            "/auth/verify-email/request",
            &json!({}),
            token["token"].as_str(),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn logout_with_revoke_api_tokens_signs_out_everywhere() {
    let app = spawn_app().await;
    let session = app.signed_in("everywhere@example.com").await;
    let other = app.signed_in("bystander@example.com").await;
    let tokens: Vec<String> =
        futures::future::join_all((0..3).map(|_| app.api_token(&session, &["profile:read"])))
            .await
            .into_iter()
            .map(|created| created["token"].as_str().unwrap().to_owned())
            .collect();
    let others = app.api_token(&other, &["profile:read"]).await;
    let response = app
        .post_json(
            "/auth/logout",
            &json!({"revoke_api_tokens": true}),
            Some(&session),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for revoked in tokens.iter().chain([&session]) {
        assert_eq!(
            app.get("/me", Some(revoked)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let fresh = app.login("everywhere@example.com").await;
    let (_, listed) = status_and_body(app.get("/api-tokens", Some(&fresh)).await).await;
    assert_eq!(listed["items"], json!([]));
    // Another user's tokens and sessions are untouched.
    let others = others["token"].as_str().unwrap();
    assert_eq!(app.get("/me", Some(others)).await.status(), StatusCode::OK);
    assert_eq!(app.get("/me", Some(&other)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_child_token_never_outlives_its_parent() {
    let app = spawn_app().await;
    let session = app.signed_in("parent@example.com").await;
    let response = app
        .post_json(
            "/api-tokens",
            &json!({"name": "parent", "scopes": ["tokens:write", "profile:read"], "expires_in": 3600}),
            Some(&session),
        )
        .await;
    let (status, parent) = status_and_body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{parent}");
    let parent_token = parent["token"].as_str().unwrap();
    let response = app
        .post_json(
            "/api-tokens",
            &json!({"name": "child", "scopes": ["profile:read"], "expires_in": 300 * 24 * 3600}),
            Some(parent_token),
        )
        .await;
    let (status, child) = status_and_body(response).await;
    assert_eq!(status, StatusCode::CREATED, "{child}");
    assert_eq!(
        child["expires_at"], parent["expires_at"],
        "capped at the parent's expiry"
    );
    // A shorter child keeps its own expiry.
    let response = app
        .post_json(
            "/api-tokens",
            &json!({"name": "short", "scopes": ["profile:read"], "expires_in": 600}),
            Some(parent_token),
        )
        .await;
    let (_, short) = status_and_body(response).await;
    assert!(short["expires_at"].as_str() < parent["expires_at"].as_str());
    // A session-made token is not capped by anything but the maximum.
    let (_, listed) = status_and_body(app.get("/api-tokens", Some(&session)).await).await;
    let stored_child = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == child["id"])
        .cloned()
        .unwrap();
    assert_eq!(stored_child["expires_at"], parent["expires_at"]);
    assert_eq!(stored_child["scopes"], json!(["profile:read"]));
}
