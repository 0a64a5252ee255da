use super::*;
use crate::connectors::kit::auth::{AccessToken, AccessTokenSource};
use crate::http::policy::NetworkPolicy;
use axum::extract::State;
use axum::http::HeaderMap as AxumHeaders;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

type Scripted = Vec<(u16, Vec<(&'static str, String)>, String)>;

/// A fake provider: each hit answers the next scripted response (the last repeats).
#[derive(Default)]
struct Script {
    answers: Mutex<Scripted>,
    hits: AtomicUsize,
    authorizations: Mutex<Vec<String>>,
}

async fn answer(State(script): State<Arc<Script>>, headers: AxumHeaders) -> Response {
    script.hits.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    script.authorizations.lock().unwrap().push(auth.clone());
    let mut answers = script.answers.lock().unwrap();
    let (status, extra, body) = if answers.len() > 1 {
        answers.remove(0)
    } else {
        answers[0].clone()
    };
    // A scripted 401 only refuses the stale token.
    let status = if status == 401 && auth == "Bearer fresh" {
        200
    } else {
        status
    };
    let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
    for (name, value) in extra {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_str(&value).unwrap());
    }
    response
}

async fn server(answers: Scripted) -> (Url, Arc<Script>) {
    let script = Arc::new(Script {
        answers: Mutex::new(answers),
        ..Script::default()
    });
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        Url::parse(&format!("http://{address}/api")).unwrap(),
        script,
    )
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        budget: Duration::from_secs(5),
    }
}

fn client(base: Url, auth: SourceAuth) -> ApiClient {
    let http = GuardedClient::with_policy(NetworkPolicy::allow_private()).unwrap();
    ApiClient::new("Fake", http, base, auth).with_retry(fast_retry(3))
}

fn basic() -> SourceAuth {
    SourceAuth::Basic {
        user: "me@example.com".into(),
        password: "s3cret-token".into(),
    }
}

fn ok(body: &str) -> (u16, Vec<(&'static str, String)>, String) {
    (200, vec![], body.to_owned())
}

#[tokio::test]
async fn a_429_is_waited_out_then_the_call_succeeds() {
    let (base, script) = server(vec![
        (429, vec![("retry-after", "0.2".into())], String::new()),
        ok(r#"{"value": 1}"#),
    ])
    .await;
    let api = client(base, basic());
    let start = std::time::Instant::now();
    let value: Value = api.get_json(api.url("/items").unwrap()).await.unwrap();
    assert_eq!(value, serde_json::json!({"value": 1}));
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn a_throttle_longer_than_the_budget_defers_with_retry_after() {
    let (base, script) = server(vec![(
        429,
        vec![("retry-after", "120".into())],
        String::new(),
    )])
    .await;
    let api = client(base, basic()).with_governor(Governor::with_budget(
        ThrottleShape::Standard,
        Duration::from_secs(60),
    ));
    let error = api
        .get_json::<Value>(api.url("/items").unwrap())
        .await
        .unwrap_err();
    assert_eq!(
        error.retry_after(),
        Some(Duration::from_secs(120)),
        "{error}"
    );
    assert!(error.is_transient());
    assert_eq!(script.hits.load(Ordering::SeqCst), 1);
    let again = api
        .get_json::<Value>(api.url("/other").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(again, ConnectorError::RateLimited { .. }));
    assert_eq!(
        script.hits.load(Ordering::SeqCst),
        1,
        "the governor holds later calls back"
    );
}

#[tokio::test]
async fn throttled_past_the_attempts_is_the_429_as_unavailable() {
    let (base, script) = server(vec![(
        429,
        vec![("retry-after", "0".into())],
        String::new(),
    )])
    .await;
    let api = client(base, basic());
    let error = api
        .get_json::<Value>(api.url("/items").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unavailable(_)), "{error:?}");
    assert_eq!(script.hits.load(Ordering::SeqCst), 3, "max_attempts");
}

#[tokio::test]
async fn slack_ratelimited_in_a_200_is_retried() {
    let (base, script) = server(vec![
        (
            200,
            vec![("retry-after", "0".into())],
            r#"{"ok": false, "error": "ratelimited"}"#.into(),
        ),
        ok(r#"{"ok": true}"#),
    ])
    .await;
    let api = client(base, basic()).with_governor(Governor::new(ThrottleShape::Slack));
    let value: Value = api
        .get_json(api.url("/conversations.list").unwrap())
        .await
        .unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_google_permission_403_is_unauthorized_at_once_a_quota_403_is_retried() {
    let denied = serde_json::json!({"error": {"code": 403, "message": "Insufficient Permission",
        "errors": [{"reason": "insufficientPermissions"}]}})
    .to_string();
    let quota = serde_json::json!({"error": {"code": 403, "errors": [{"reason": "userRateLimitExceeded"}]}}).to_string();
    let (base, script) = server(vec![(403, vec![], denied)]).await;
    let api = client(base, basic()).with_governor(Governor::new(ThrottleShape::Google));
    let error = api
        .get_json::<Value>(api.url("/files").unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Unauthorized(m) if m.contains("Insufficient Permission")),
        "{error:?}"
    );
    assert_eq!(script.hits.load(Ordering::SeqCst), 1);

    let (base, script) = server(vec![
        (403, vec![("retry-after", "0".into())], quota),
        ok(r#"{"files": []}"#),
    ])
    .await;
    let api = client(base, basic()).with_governor(Governor::new(ThrottleShape::Google));
    api.get_json::<Value>(api.url("/files").unwrap())
        .await
        .unwrap();
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_discord_exhausted_bucket_delays_the_next_call_on_it() {
    let headers = vec![
        ("x-ratelimit-bucket", "b1".to_owned()),
        ("x-ratelimit-remaining", "0".to_owned()),
        ("x-ratelimit-reset-after", "0.3".to_owned()),
    ];
    let (base, script) = server(vec![(200, headers, "[]".into())]).await;
    let api = client(base, SourceAuth::Bearer(AccessToken::new("bot")))
        .with_governor(Governor::new(ThrottleShape::Discord));
    let url = api.url("/channels/1/messages").unwrap();
    let start = std::time::Instant::now();
    api.get_json::<Value>(url.clone()).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "the answer itself is good"
    );
    api.get_json::<Value>(url).await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "the next call waited for the reset"
    );
    assert_eq!(script.hits.load(Ordering::SeqCst), 2);
}

struct FakeTokens {
    current: Mutex<String>,
    refreshes: AtomicUsize,
}

#[async_trait::async_trait]
impl AccessTokenSource for FakeTokens {
    async fn access_token(&self) -> Result<AccessToken, ConnectorError> {
        Ok(AccessToken::new(self.current.lock().unwrap().clone()))
    }

    async fn refresh_rejected(
        &self,
        rejected: &AccessToken,
    ) -> Result<AccessToken, ConnectorError> {
        assert_eq!(rejected.expose(), "stale");
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        *self.current.lock().unwrap() = "fresh".into();
        Ok(AccessToken::new("fresh"))
    }
}

#[tokio::test]
async fn a_401_refreshes_the_connection_once_and_retries() {
    let (base, script) = server(vec![(
        401,
        vec![],
        r#"{"message": "token expired"}"#.into(),
    )])
    .await;
    let tokens = Arc::new(FakeTokens {
        current: Mutex::new("stale".into()),
        refreshes: AtomicUsize::new(0),
    });
    let api = client(base, SourceAuth::Connection(tokens.clone()));
    let response = api.get(api.url("/me").unwrap()).send().await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(tokens.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(
        *script.authorizations.lock().unwrap(),
        vec!["Bearer stale".to_owned(), "Bearer fresh".to_owned()]
    );
    api.get(api.url("/me").unwrap()).send().await.unwrap();
    assert_eq!(
        tokens.refreshes.load(Ordering::SeqCst),
        1,
        "the fresh token is reused"
    );
}

#[tokio::test]
async fn a_401_with_inline_credentials_is_unauthorized_with_a_bounded_message() {
    let long = "x".repeat(5000);
    let (base, script) = server(vec![(
        401,
        vec![],
        serde_json::json!({"errorMessages": ["Client must be authenticated", long]}).to_string(),
    )])
    .await;
    let api = client(base, basic());
    let error = api
        .get(api.url("/myself").unwrap())
        .what("the credential check")
        .json::<Value>()
        .await
        .unwrap_err();
    let ConnectorError::Unauthorized(message) = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.starts_with(
            "Fake answered 401 Unauthorized to the credential check: Client must be authenticated"
        ),
        "{message}"
    );
    assert!(message.chars().count() < MAX_MESSAGE_CHARS + 100, "bounded");
    assert!(!message.contains("s3cret"));
    assert_eq!(
        script.hits.load(Ordering::SeqCst),
        1,
        "no retry without a connection"
    );
}

#[tokio::test]
async fn a_5xx_is_retried_within_the_policy_then_unavailable() {
    let (base, script) = server(vec![(502, vec![], "bad gateway".into())]).await;
    let api = client(base, basic());
    let error = api
        .get_json::<Value>(api.url("/items").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unavailable(_)), "{error:?}");
    assert_eq!(script.hits.load(Ordering::SeqCst), 3, "max_attempts");
}

#[tokio::test]
async fn a_post_is_not_retried_on_5xx_unless_marked_idempotent() {
    let (base, script) = server(vec![(503, vec![], String::new())]).await;
    let api = client(base, basic());
    let post = api
        .post(api.url("/write").unwrap())
        .json_body(&serde_json::json!({"a": 1}))
        .unwrap();
    let response = post.send().await.unwrap();
    assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.hits.load(Ordering::SeqCst), 1);
    let search = api
        .post(api.url("/search").unwrap())
        .json_body(&serde_json::json!({"q": 1}))
        .unwrap()
        .idempotent();
    assert!(search.send().await.unwrap().error_for_status().is_err());
    assert_eq!(script.hits.load(Ordering::SeqCst), 4, "1 + max_attempts");
}

#[tokio::test]
async fn a_network_failure_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let api = client(base, basic());
    let error = api
        .get_json::<Value>(api.url("/x").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, ConnectorError::Unavailable(_)), "{error:?}");
}

#[test]
fn links_must_stay_on_the_base_origin() {
    let http = GuardedClient::with_policy(NetworkPolicy::allow_private()).unwrap();
    let api = ApiClient::new(
        "Fake",
        http,
        Url::parse("https://example.atlassian.net/wiki").unwrap(),
        basic(),
    );
    assert_eq!(
        api.link("/wiki/rest/api/content?cursor=abc")
            .unwrap()
            .as_str(),
        "https://example.atlassian.net/wiki/rest/api/content?cursor=abc"
    );
    assert!(api.link("https://elsewhere.example/steal").is_err());
    assert_eq!(
        api.url("/rest/api/space").unwrap().as_str(),
        "https://example.atlassian.net/wiki/rest/api/space"
    );
}

#[test]
fn default_messages_read_the_usual_fields_only() {
    assert_eq!(
        default_messages(br#"{"error": {"message": "quota"}}"#),
        "quota"
    );
    assert_eq!(
        default_messages(br#"{"ok": false, "error": "not_authed"}"#),
        "not_authed"
    );
    assert_eq!(default_messages(b"<html>secret page</html>"), "");
}
