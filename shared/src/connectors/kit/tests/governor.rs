use super::*;
use reqwest::header::HeaderValue;
use serde_json::json;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

fn body(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn refused(wait: Option<Duration>) -> Option<Throttle> {
    Some(Throttle::refused(wait))
}

#[test]
fn standard_429_reads_retry_after_seconds() {
    let answer =
        ThrottleShape::Standard.classify(status(429), &headers(&[("retry-after", "7")]), b"");
    assert_eq!(answer, refused(Some(Duration::from_secs(7))));
    let no_header = ThrottleShape::Standard.classify(status(429), &HeaderMap::new(), b"");
    assert_eq!(no_header, refused(None));
    assert_eq!(
        ThrottleShape::Standard.classify(status(200), &headers(&[("retry-after", "7")]), b""),
        None
    );
    assert_eq!(
        ThrottleShape::Standard.classify(status(503), &HeaderMap::new(), b""),
        None
    );
}

#[test]
fn retry_after_as_an_http_date_is_the_time_until_then() {
    let now = DateTime::parse_from_rfc3339("2026-12-02T04:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let answer = ThrottleShape::Standard.classify_at(
        status(429),
        &headers(&[("retry-after", "Wed, 02 Dec 2026 04:00:42 GMT")]),
        b"",
        now,
    );
    assert_eq!(answer, refused(Some(Duration::from_secs(42))));
    let past = ThrottleShape::Standard.classify_at(
        status(429),
        &headers(&[("retry-after", "Wed, 02 Dec 2026 03:59:00 GMT")]),
        b"",
        now,
    );
    assert_eq!(past, refused(Some(Duration::ZERO)));
    let garbage = ThrottleShape::Standard.classify_at(
        status(429),
        &headers(&[("retry-after", "soon")]),
        b"",
        now,
    );
    assert_eq!(garbage, refused(None), "unreadable: backoff");
}

#[test]
fn slack_200_ratelimited_and_429_are_throttles_other_errors_are_not() {
    let limited = body(json!({"ok": false, "error": "ratelimited"}));
    assert_eq!(
        ThrottleShape::Slack.classify(status(200), &headers(&[("retry-after", "30")]), &limited),
        refused(Some(Duration::from_secs(30)))
    );
    assert_eq!(
        ThrottleShape::Slack.classify(status(429), &headers(&[("retry-after", "3")]), &limited),
        refused(Some(Duration::from_secs(3)))
    );
    let other = body(json!({"ok": false, "error": "channel_not_found"}));
    assert_eq!(
        ThrottleShape::Slack.classify(status(200), &HeaderMap::new(), &other),
        None
    );
    let fine = body(json!({"ok": true, "messages": []}));
    assert_eq!(
        ThrottleShape::Slack.classify(status(200), &HeaderMap::new(), &fine),
        None
    );
    assert!(ThrottleShape::Slack.reads_success_body());
    assert!(!ThrottleShape::Standard.reads_success_body());
}

#[test]
fn discord_429_body_retry_after_bucket_and_global() {
    let route = ThrottleShape::Discord.classify(
        status(429),
        &headers(&[
            ("retry-after", "1"),
            ("x-ratelimit-bucket", "abcd1234"),
            ("x-ratelimit-scope", "user"),
        ]),
        &body(
            json!({"message": "You are being rate limited.", "retry_after": 0.75, "global": false}),
        ),
    );
    assert_eq!(
        route,
        Some(Throttle {
            wait: Some(Duration::from_millis(750)),
            bucket: Some("abcd1234".into()),
            scope: ThrottleScope::Bucket,
            refused: true,
        })
    );
    let global = ThrottleShape::Discord
        .classify(
            status(429),
            &headers(&[("retry-after", "2"), ("x-ratelimit-global", "true")]),
            &body(json!({"retry_after": 1.5, "global": true})),
        )
        .unwrap();
    assert_eq!(global.scope, ThrottleScope::Global);
    assert_eq!(global.wait, Some(Duration::from_millis(1500)));
    let scope_header = ThrottleShape::Discord
        .classify(
            status(429),
            &headers(&[("retry-after", "2"), ("x-ratelimit-scope", "global")]),
            b"",
        )
        .unwrap();
    assert_eq!(scope_header.scope, ThrottleScope::Global);
    assert_eq!(
        scope_header.wait,
        Some(Duration::from_secs(2)),
        "no body: the header"
    );
}

#[test]
fn discord_exhausted_bucket_pauses_before_the_next_call() {
    let exhausted = ThrottleShape::Discord.classify(
        status(200),
        &headers(&[
            ("x-ratelimit-bucket", "b1"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset-after", "2.5"),
        ]),
        b"[]",
    );
    assert_eq!(
        exhausted,
        Some(Throttle {
            wait: Some(Duration::from_millis(2500)),
            bucket: Some("b1".into()),
            scope: ThrottleScope::Bucket,
            refused: false,
        })
    );
    let remaining = ThrottleShape::Discord.classify(
        status(200),
        &headers(&[
            ("x-ratelimit-bucket", "b1"),
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset-after", "2.5"),
        ]),
        b"[]",
    );
    assert_eq!(remaining, None);
}

#[test]
fn google_403_rate_limit_reasons_and_429_are_throttles() {
    let user = body(
        json!({"error": {"code": 403, "message": "User Rate Limit Exceeded",
        "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}]}}),
    );
    assert_eq!(
        ThrottleShape::Google.classify(status(403), &HeaderMap::new(), &user),
        refused(None)
    );
    let project = body(json!({"error": {"errors": [{"reason": "rateLimitExceeded"}]}}));
    assert_eq!(
        ThrottleShape::Google.classify(status(403), &HeaderMap::new(), &project),
        refused(None)
    );
    let newer = body(
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"}]}}),
    );
    assert_eq!(
        ThrottleShape::Google.classify(status(403), &HeaderMap::new(), &newer),
        refused(None)
    );
    assert_eq!(
        ThrottleShape::Google.classify(status(429), &HeaderMap::new(), b""),
        refused(None)
    );
    assert_eq!(
        ThrottleShape::Google.classify(status(429), &headers(&[("retry-after", "5")]), b""),
        refused(Some(Duration::from_secs(5)))
    );
}

#[test]
fn a_403_that_is_not_a_rate_limit_is_not_throttling() {
    let denied = body(
        json!({"error": {"code": 403, "message": "Insufficient Permission",
        "errors": [{"domain": "global", "reason": "insufficientPermissions"}]}}),
    );
    assert_eq!(
        ThrottleShape::Google.classify(status(403), &HeaderMap::new(), &denied),
        None
    );
    assert_eq!(
        ThrottleShape::Google.classify(status(403), &HeaderMap::new(), b"not json"),
        None
    );
    let limited = body(json!({"error": {"errors": [{"reason": "userRateLimitExceeded"}]}}));
    assert_eq!(
        ThrottleShape::Standard.classify(status(403), &HeaderMap::new(), &limited),
        None,
        "only the Google shape reads 403 bodies"
    );
}

#[test]
fn notion_429_and_529_with_integer_retry_after() {
    let limited = body(
        json!({"object": "error", "status": 429, "code": "rate_limited",
        "additional_data": {"rate_limit_reason": "connection"}}),
    );
    assert_eq!(
        ThrottleShape::Notion.classify(status(429), &headers(&[("retry-after", "12")]), &limited),
        refused(Some(Duration::from_secs(12)))
    );
    let overload = body(json!({"object": "error", "status": 529, "code": "service_overload"}));
    assert_eq!(
        ThrottleShape::Notion.classify(status(529), &headers(&[("retry-after", "4")]), &overload),
        refused(Some(Duration::from_secs(4)))
    );
    assert_eq!(
        ThrottleShape::Standard.classify(status(529), &HeaderMap::new(), b""),
        None
    );
}

#[test]
fn graph_429_and_503_with_retry_after() {
    assert_eq!(
        ThrottleShape::Graph.classify(status(429), &headers(&[("retry-after", "41")]), b"{}"),
        refused(Some(Duration::from_secs(41)))
    );
    assert_eq!(
        ThrottleShape::Graph.classify(status(503), &headers(&[("retry-after", "315")]), b"{}"),
        refused(Some(Duration::from_secs(315)))
    );
    assert_eq!(
        ThrottleShape::Graph.classify(status(500), &HeaderMap::new(), b"{}"),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn acquire_waits_for_the_throttled_bucket_only() {
    let governor = Governor::new(ThrottleShape::Standard);
    let wait = governor.throttled(
        "search",
        &Throttle::refused(Some(Duration::from_secs(5))),
        1,
    );
    assert_eq!(wait, Duration::from_secs(5));
    let start = Instant::now();
    governor.acquire("comments").await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO, "other buckets go at once");
    governor.clone().acquire("search").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    governor.acquire("search").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5), "the wait is over");
}

#[tokio::test(start_paused = true)]
async fn a_global_throttle_holds_every_bucket() {
    let governor = Governor::new(ThrottleShape::Discord);
    let throttle = Throttle {
        wait: Some(Duration::from_secs(2)),
        bucket: None,
        scope: ThrottleScope::Global,
        refused: true,
    };
    governor.throttled("a", &throttle, 1);
    let start = Instant::now();
    governor.acquire("b").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn discord_routes_sharing_a_provider_bucket_wait_together() {
    let governor = Governor::new(ThrottleShape::Discord);
    let exhausted = headers(&[
        ("x-ratelimit-bucket", "shared-hash"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset-after", "3"),
    ]);
    let (throttle, wait) = governor
        .observe(
            "GET /channels/1/messages",
            status(200),
            &exhausted,
            b"[]",
            1,
        )
        .unwrap();
    assert!(!throttle.refused);
    assert_eq!(wait, Duration::from_secs(3));
    let start = Instant::now();
    governor.acquire("GET /channels/1/messages").await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_wait_over_the_budget_is_not_slept_but_reported() {
    let governor = Governor::with_budget(ThrottleShape::Graph, Duration::from_secs(60));
    governor.throttled(
        "delta",
        &Throttle::refused(Some(Duration::from_secs(315))),
        1,
    );
    let start = Instant::now();
    let error = governor.acquire("delta").await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(error.is_transient());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(315)));
}

#[tokio::test(start_paused = true)]
async fn no_hint_means_growing_jittered_backoff() {
    let governor = Governor::new(ThrottleShape::Google);
    let first = governor.throttled("files", &Throttle::refused(None), 1);
    assert!(
        (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&first),
        "{first:?}"
    );
    let third = governor.throttled("files", &Throttle::refused(None), 3);
    assert!(
        (Duration::from_secs(2)..=Duration::from_secs(4)).contains(&third),
        "{third:?}"
    );
    let tenth = governor.throttled("files", &Throttle::refused(None), 10);
    assert!(tenth <= BACKOFF_MAX, "truncated: {tenth:?}");
}

#[test]
fn shared_governors_are_one_per_credential() {
    let a = Governor::shared("slack", "ws-1/slack", ThrottleShape::Slack);
    let b = Governor::shared("slack", "ws-1/slack", ThrottleShape::Slack);
    let c = Governor::shared("slack", "ws-2/slack", ThrottleShape::Slack);
    assert!(Arc::ptr_eq(&a.inner, &b.inner));
    assert!(!Arc::ptr_eq(&a.inner, &c.inner));
}
