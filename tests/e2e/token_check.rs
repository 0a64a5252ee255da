//! The token battery: every way a bearer token can be wrong, denied by the `token-check`
//! authorizer and by the local stack's middleware alike.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tributary::auth::api_token;
use tributary::store::{now_epoch_seconds, ApiTokenRecord};
use tributary_e2e::app::{spawn_app, TestApp, TEST_SIGNING_KEY};

/// An HTTP API payload-2.0 authorizer event as API Gateway sends it.
fn event(authorization: Option<&str>) -> token_check::Request {
    let mut headers = serde_json::Map::new();
    headers.insert("user-agent".into(), "curl/8".into());
    if let Some(value) = authorization {
        headers.insert("authorization".into(), value.into());
    }
    serde_json::from_value(json!({
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/$default/GET/me",
        "identitySource": authorization.map(|value| vec![value]),
        "routeKey": "GET /me",
        "rawPath": "/me",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef123", "domainName": "abcdef123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abcdef123", "http": {"method": "GET", "path": "/me", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "curl/8"},
            "requestId": "c6af9ac6-7b61", "routeKey": "GET /me", "stage": "$default", "time": "23/Nov/2026:18:00:00 +0000", "timeEpoch": 1795370400000u64
        }
    }))
    .expect("a valid authorizer event")
}

async fn decide(app: &TestApp, authorization: Option<&str>) -> token_check::Response {
    token_check::handle(&app.services.verifier, &event(authorization)).await
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

struct Subject {
    app: TestApp,
    user_id: String,
    session: String,
}

async fn subject() -> Subject {
    let app = spawn_app().await;
    let registered = app.register("battery@example.com").await;
    let session = app.login("battery@example.com").await;
    Subject {
        user_id: registered["user"]["id"].as_str().unwrap().to_owned(),
        app,
        session,
    }
}

fn claims(user_id: &str) -> Value {
    let now = now_epoch_seconds();
    json!({"iss": "tributary", "sub": user_id, "iat": now, "nbf": now, "exp": now + 600,
           "jti": "j-1", "typ": "session", "ver": 1})
}

/// Denied by the authorizer with an empty context, and 401 from the local middleware.
async fn assert_denied(subject: &Subject, bearer: &str, case: &str) {
    let header = format!("Bearer {bearer}");
    let decision = decide(&subject.app, Some(&header)).await;
    assert!(!decision.is_authorized, "{case}: authorizer allowed it");
    assert_eq!(decision.context, json!({}), "{case}");
    let status = subject
        .app
        .client
        .get(subject.app.url("/me"))
        .header("authorization", header)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: middleware");
}

#[tokio::test]
async fn a_valid_session_is_allowed_with_the_caller_as_context() {
    let s = subject().await;
    let decision = decide(&s.app, Some(&format!("Bearer {}", s.session))).await;
    assert!(decision.is_authorized);
    assert_eq!(decision.context["user_id"], s.user_id.as_str());
    assert_eq!(decision.context["tenant_id"], s.user_id.as_str());
    assert_eq!(decision.context["token_kind"], "session");
    assert!(decision.context["scopes"]
        .as_str()
        .unwrap()
        .contains("tokens:write"));
    // The response serialises to API Gateway's simple-response shape.
    let wire = serde_json::to_value(&decision).unwrap();
    assert_eq!(wire["isAuthorized"], true);
}

#[tokio::test]
async fn a_valid_api_token_is_allowed_with_its_scopes() {
    let s = subject().await;
    let created = s.app.api_token(&s.session, &["profile:read"]).await;
    let token = created["token"].as_str().unwrap();
    let decision = decide(&s.app, Some(&format!("Bearer {token}"))).await;
    assert!(decision.is_authorized);
    assert_eq!(decision.context["token_kind"], "api_token");
    assert_eq!(decision.context["scopes"], "profile:read");
    assert_eq!(decision.context["token_id"], created["id"]);
}

#[tokio::test]
async fn alg_none_is_denied() {
    let s = subject().await;
    let header = b64(&json!({"alg": "none", "typ": "JWT"}));
    let body = b64(&claims(&s.user_id));
    assert_denied(&s, &format!("{header}.{body}."), "alg none").await;
    assert_denied(&s, &format!("{header}.{body}"), "alg none, two parts").await;
}

#[tokio::test]
async fn hs256_signed_with_another_key_is_denied() {
    let s = subject().await;
    let forged = sign(
        &claims(&s.user_id),
        b"an-entirely-different-key-0f9e8d7c6b5a4f3e",
    );
    assert_denied(&s, &forged, "other key").await;
}

#[tokio::test]
async fn an_rs256_header_is_denied() {
    let s = subject().await;
    let genuine = sign(&claims(&s.user_id), TEST_SIGNING_KEY);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[0] = b64(&json!({"alg": "RS256", "typ": "JWT"}));
    assert_denied(&s, &parts.join("."), "RS256 header, HS256 signature").await;
    parts[0] = b64(&json!({"alg": "HS512", "typ": "JWT"}));
    assert_denied(&s, &parts.join("."), "HS512 header").await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_sessions_are_denied() {
    let s = subject().await;
    let now = now_epoch_seconds();
    let mut expired = claims(&s.user_id);
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 60);
    assert_denied(&s, &sign(&expired, TEST_SIGNING_KEY), "expired").await;
    let mut early = claims(&s.user_id);
    early["nbf"] = json!(now + 600);
    assert_denied(&s, &sign(&early, TEST_SIGNING_KEY), "nbf in the future").await;
    let mut no_exp = claims(&s.user_id);
    no_exp.as_object_mut().unwrap().remove("exp");
    assert_denied(&s, &sign(&no_exp, TEST_SIGNING_KEY), "no exp").await;
}

#[tokio::test]
async fn a_tampered_payload_is_denied() {
    let s = subject().await;
    let mut parts: Vec<String> = s.session.split('.').map(str::to_owned).collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    payload["exp"] = json!(payload["exp"].as_i64().unwrap() + 86_400);
    parts[1] = b64(&payload);
    assert_denied(&s, &parts.join("."), "tampered payload").await;
}

#[tokio::test]
async fn a_token_of_another_type_or_issuer_is_denied() {
    let s = subject().await;
    let mut refresh = claims(&s.user_id);
    refresh["typ"] = json!("refresh");
    assert_denied(&s, &sign(&refresh, TEST_SIGNING_KEY), "typ refresh").await;
    let mut untyped = claims(&s.user_id);
    untyped.as_object_mut().unwrap().remove("typ");
    assert_denied(&s, &sign(&untyped, TEST_SIGNING_KEY), "no typ").await;
    let mut foreign = claims(&s.user_id);
    foreign["iss"] = json!("someone-else");
    assert_denied(&s, &sign(&foreign, TEST_SIGNING_KEY), "other issuer").await;
    let ghost = claims("no-such-user");
    assert_denied(&s, &sign(&ghost, TEST_SIGNING_KEY), "unknown user").await;
}

#[tokio::test]
async fn a_session_from_before_logout_is_denied() {
    let s = subject().await;
    let response = s
        .app
        .post_json("/auth/logout", &json!({}), Some(&s.session))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_denied(&s, &s.session, "session from before logout").await;
}

#[tokio::test]
async fn unknown_revoked_and_expired_api_tokens_are_denied() {
    let s = subject().await;
    let unknown = api_token::mint().unwrap().plaintext;
    assert_denied(&s, &unknown, "unknown API token").await;
    assert_denied(&s, "trb_short", "malformed API token").await;

    let created = s.app.api_token(&s.session, &["profile:read"]).await;
    let id = created["id"].as_str().unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(
        decide(&s.app, Some(&format!("Bearer {token}")))
            .await
            .is_authorized
    );
    let response = s.app.delete(&format!("/api-tokens/{id}"), &s.session).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_denied(&s, token, "revoked API token").await;

    // An expired token whose item the TTL sweeper has not removed yet.
    let minted = api_token::mint().unwrap();
    let now = now_epoch_seconds();
    let record = ApiTokenRecord {
        id: "expired-token".into(),
        token_hash: minted.hash,
        user_id: s.user_id.clone(),
        tenant_id: s.user_id.clone(),
        name: "old".into(),
        scopes: vec!["profile:read".into()],
        created_at: now - 1000,
        last_used_at: None,
        expires_at: Some(now - 1),
        item_version: 1,
    };
    s.app.services.api_tokens.create(&record).await.unwrap();
    assert_denied(&s, &minted.plaintext, "expired API token").await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_denied() {
    let s = subject().await;
    let garbage = "A".repeat(10 * 1024);
    let cases = [
        ("", "empty"),
        ("Bearer", "scheme only"),
        ("Bearer ", "empty token"),
        (s.session.as_str(), "no scheme"),
        (garbage.as_str(), "10 kB garbage"),
        ("Basic dXNlcjpwYXNz", "basic auth"),
        ("Bearer a.b.c", "three junk segments"),
        ("Bearer ....", "dots"),
    ];
    for (value, case) in cases {
        let decision = decide(&s.app, Some(value)).await;
        assert!(!decision.is_authorized, "{case}");
    }
    assert!(!decide(&s.app, None).await.is_authorized, "no header");
    let long = format!("Bearer {garbage}");
    assert!(
        !decide(&s.app, Some(&long)).await.is_authorized,
        "10 kB bearer"
    );

    // Non-UTF-8 bytes cannot arrive through API Gateway's JSON event, but they can reach
    // the local middleware and the verifier directly.
    let verdict = s
        .app
        .services
        .verifier
        .check(Some(b"Bearer \xff\xfe\xfd"))
        .await;
    assert!(verdict.is_err());
    let status = s
        .app
        .client
        .get(s.app.url("/me"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Bearer \xff\xfe\xfd").unwrap(),
        )
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for (value, case) in cases.iter().take(6) {
        let status = s
            .app
            .client
            .get(s.app.url("/me"))
            .header("authorization", *value)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "middleware: {case}");
    }
}

/// Deterministic pseudo-random headers: the check never panics and never allows.
#[tokio::test]
async fn random_bytes_never_panic_or_pass() {
    let s = subject().await;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let genuine = s.session.as_bytes();
    for round in 0..2000 {
        let length = (next() % 600) as usize;
        let mut bytes: Vec<u8> = if round % 2 == 0 {
            (0..length).map(|_| next() as u8).collect()
        } else {
            // Mutate one byte of a genuine token.
            let mut token = genuine.to_vec();
            let at = (next() as usize) % token.len();
            let flipped = token[at] ^ (1 << (next() % 7));
            if flipped == token[at] || !flipped.is_ascii_graphic() {
                continue;
            }
            token[at] = flipped;
            token
        };
        let mut header = b"Bearer ".to_vec();
        header.append(&mut bytes);
        let verdict = s.app.services.verifier.check(Some(&header)).await;
        if let Ok(principal) = verdict {
            // Flipping a base64 character's unused low bits can leave the bytes unchanged.
            let decoded_equal = header[7..].split(|b| *b == b'.').count() == 3;
            assert!(
                decoded_equal && principal.user_id == s.user_id,
                "round {round} allowed"
            );
        }
    }
}
