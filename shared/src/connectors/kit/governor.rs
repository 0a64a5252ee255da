//! The per-provider rate governor: reads each provider's throttling signal and holds the
//! next instant a call may go out, per bucket, for every request made with one credential.
//!
//! Providers signal throttling differently ([`ThrottleShape`]); the governor turns each
//! answer into an optional [`Throttle`] and delays later calls on the same bucket (or on
//! every bucket for a global limit). A wait longer than the budget is not slept through:
//! the call fails with [`ConnectorError::RateLimited`] so the sync can be deferred instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;

use super::super::ConnectorError;

/// Longest wait one call sleeps through before it gives up (see [`Governor::with_budget`]).
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(60);
/// Truncated exponential backoff when the provider gives no wait (Google's recommendation).
const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(32);

/// How a provider says "slow down".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleShape {
    /// 429 + `Retry-After` (seconds or an HTTP date); no header: backoff. Jira, Confluence,
    /// Dropbox, most REST APIs.
    Standard,
    /// Slack Web API: HTTP 200 `{"ok": false, "error": "ratelimited"}` or 429, with
    /// `Retry-After` seconds; limits are per method (use the method as the bucket).
    Slack,
    /// Discord: 429 `{"retry_after": <float s>, "global": bool}` and `X-RateLimit-*` bucket
    /// headers; `X-RateLimit-Remaining: 0` pauses that bucket before the next call.
    Discord,
    /// Google APIs: 403 with reason `userRateLimitExceeded`/`rateLimitExceeded` (or
    /// `RESOURCE_EXHAUSTED`), or 429; usually no `Retry-After`: exponential backoff.
    Google,
    /// Notion: 429 `rate_limited` and 529 `service_overload`, integer `Retry-After`.
    Notion,
    /// Microsoft Graph: 429 or 503, `Retry-After` seconds.
    Graph,
}

/// What a throttle applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The bucket the call was made on (or the provider's bucket, [`Throttle::bucket`]).
    Bucket,
    /// Every call made with this credential.
    Global,
}

/// A provider's request to wait.
#[derive(Clone, Debug, PartialEq)]
pub struct Throttle {
    /// How long; `None`: the provider did not say (exponential backoff with jitter).
    pub wait: Option<Duration>,
    /// The provider's own bucket id (Discord `X-RateLimit-Bucket`), shared by routes.
    pub bucket: Option<String>,
    pub scope: ThrottleScope,
    /// The request was refused and must be sent again; `false`: the answer is good, only
    /// the next call must wait (Discord's `X-RateLimit-Remaining: 0`).
    pub refused: bool,
}

impl Throttle {
    fn refused(wait: Option<Duration>) -> Self {
        Self {
            wait,
            bucket: None,
            scope: ThrottleScope::Bucket,
            refused: true,
        }
    }
}

impl ThrottleShape {
    /// The throttle this answer signals, if any.
    pub fn classify(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Throttle> {
        self.classify_at(status, headers, body, Utc::now())
    }

    /// [`ThrottleShape::classify`] with `now` for `Retry-After` HTTP dates.
    pub fn classify_at(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Option<Throttle> {
        let retry_after = || retry_after(headers, now);
        match (self, status.as_u16()) {
            (ThrottleShape::Discord, _) => discord(status, headers, body, now),
            (_, 429) => Some(Throttle::refused(retry_after())),
            (ThrottleShape::Slack, 200) => {
                slack_ratelimited(body).then(|| Throttle::refused(retry_after()))
            }
            (ThrottleShape::Google, 403) => {
                google_rate_limited(body).then(|| Throttle::refused(retry_after()))
            }
            (ThrottleShape::Notion, 529) | (ThrottleShape::Graph, 503) => {
                Some(Throttle::refused(retry_after()))
            }
            _ => None,
        }
    }

    /// Whether a successful answer's body must be read to classify it (Slack reports
    /// throttling in a 200).
    pub fn reads_success_body(self) -> bool {
        self == ThrottleShape::Slack
    }
}

/// `Retry-After` as delta seconds (Discord and others send fractions) or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Some(wait) = seconds(value) {
        return Some(wait);
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let millis = at.signed_duration_since(now).num_milliseconds();
    Some(Duration::from_millis(u64::try_from(millis).unwrap_or(0)))
}

/// Non-negative, finite seconds (integer or decimal), capped at a day.
fn seconds(value: &str) -> Option<Duration> {
    float_seconds(value.trim().parse().ok()?)
}

fn float_seconds(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn slack_ratelimited(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    value.get("ok") == Some(&Value::Bool(false))
        && matches!(
            value.get("error").and_then(Value::as_str),
            Some("ratelimited" | "rate_limited")
        )
}

/// Google's quota errors: `error.errors[].reason` (v3 APIs), or `error.status` /
/// `error.details[].reason` (newer APIs). Other 403s (permissions) are not throttling.
fn google_rate_limited(body: &[u8]) -> bool {
    const REASONS: [&str; 3] = [
        "userRateLimitExceeded",
        "rateLimitExceeded",
        "RATE_LIMIT_EXCEEDED",
    ];
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(error) = value.get("error") else {
        return false;
    };
    let reason_in = |list: Option<&Value>| {
        list.and_then(Value::as_array).is_some_and(|items| {
            items.iter().any(|item| {
                item.get("reason")
                    .and_then(Value::as_str)
                    .is_some_and(|reason| REASONS.contains(&reason))
            })
        })
    };
    reason_in(error.get("errors"))
        || reason_in(error.get("details"))
        || error.get("status").and_then(Value::as_str) == Some("RESOURCE_EXHAUSTED")
}

/// Discord: a 429's wait comes from the JSON body (fractional seconds) or `Retry-After`;
/// any answer whose bucket has no requests left pauses that bucket until it resets.
fn discord(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Option<Throttle> {
    let bucket = header(headers, "x-ratelimit-bucket").map(str::to_owned);
    let reset_after = header(headers, "x-ratelimit-reset-after").and_then(seconds);
    if status == StatusCode::TOO_MANY_REQUESTS {
        let json = serde_json::from_slice::<Value>(body).ok();
        let wait = json
            .as_ref()
            .and_then(|json| json.get("retry_after"))
            .and_then(Value::as_f64)
            .and_then(float_seconds)
            .or_else(|| retry_after(headers, now))
            .or(reset_after);
        let global = json
            .as_ref()
            .and_then(|json| json.get("global"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
            || header(headers, "x-ratelimit-global")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || header(headers, "x-ratelimit-scope") == Some("global");
        return Some(Throttle {
            wait,
            bucket,
            scope: if global {
                ThrottleScope::Global
            } else {
                ThrottleScope::Bucket
            },
            refused: true,
        });
    }
    let exhausted = header(headers, "x-ratelimit-remaining") == Some("0");
    match (exhausted, reset_after) {
        (true, Some(wait)) => Some(Throttle {
            wait: Some(wait),
            bucket,
            scope: ThrottleScope::Bucket,
            refused: false,
        }),
        _ => None,
    }
}

/// Full jitter below a truncated exponential ceiling: in [ceiling/2, ceiling].
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let ceiling = base
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(max);
    let mut random = [0u8; 4];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(0.5 + fraction / 2.0)
}

#[derive(Default)]
struct State {
    /// Next instant any call may go out (global limits).
    global: Option<Instant>,
    /// Next instant per bucket (the caller's bucket or the provider's bucket id).
    buckets: HashMap<String, Instant>,
    /// The caller's bucket → the provider's bucket it was last seen to share (Discord).
    aliases: HashMap<String, String>,
}

struct Inner {
    shape: ThrottleShape,
    budget: Duration,
    state: Mutex<State>,
}

/// One credential's rate state, shared by every request made with it; cheap to clone.
#[derive(Clone)]
pub struct Governor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Governor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governor")
            .field("shape", &self.inner.shape)
            .field("budget", &self.inner.budget)
            .finish_non_exhaustive()
    }
}

type Registry = Mutex<HashMap<(String, String), Weak<Inner>>>;

impl Governor {
    /// A governor of its own (tests, one-off calls); see [`Governor::shared`].
    pub fn new(shape: ThrottleShape) -> Self {
        Self::with_budget(shape, DEFAULT_BUDGET)
    }

    /// Waits longer than `budget` fail with [`ConnectorError::RateLimited`].
    pub fn with_budget(shape: ThrottleShape, budget: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                shape,
                budget,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The process-wide governor of one credential at one provider: `key` names the
    /// credential (a connection `"<workspace>/<provider>"`, or the connector id for inline
    /// credentials), so concurrent syncs with the same token share one rate state.
    pub fn shared(provider: &str, key: &str, shape: ThrottleShape) -> Self {
        Self::shared_with_budget(provider, key, shape, DEFAULT_BUDGET)
    }

    /// [`Governor::shared`] with a budget (the first caller's budget holds for all).
    pub fn shared_with_budget(
        provider: &str,
        key: &str,
        shape: ThrottleShape,
        budget: Duration,
    ) -> Self {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        let registry = REGISTRY.get_or_init(Registry::default);
        let mut map = registry.lock().unwrap_or_else(|poison| poison.into_inner());
        map.retain(|_, governor| governor.strong_count() > 0);
        let id = (provider.to_owned(), key.to_owned());
        if let Some(inner) = map.get(&id).and_then(Weak::upgrade) {
            return Self { inner };
        }
        let governor = Self::with_budget(shape, budget);
        map.insert(id, Arc::downgrade(&governor.inner));
        governor
    }

    pub fn shape(&self) -> ThrottleShape {
        self.inner.shape
    }

    pub fn budget(&self) -> Duration {
        self.inner.budget
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// How long a call on `bucket` must still wait.
    pub fn pending(&self, bucket: &str) -> Duration {
        let now = Instant::now();
        let state = self.state();
        let alias = state.aliases.get(bucket);
        [
            state.global,
            state.buckets.get(bucket).copied(),
            alias.and_then(|alias| state.buckets.get(alias).copied()),
        ]
        .into_iter()
        .flatten()
        .max()
        .map_or(Duration::ZERO, |until| until.saturating_duration_since(now))
    }

    /// Waits until a call on `bucket` may go out; a wait over the budget is not slept:
    /// [`ConnectorError::RateLimited`] with the wait.
    pub async fn acquire(&self, bucket: &str) -> Result<(), ConnectorError> {
        let start = Instant::now();
        loop {
            let wait = self.pending(bucket);
            if wait.is_zero() {
                return Ok(());
            }
            let total = start.elapsed() + wait;
            if total > self.inner.budget {
                return Err(ConnectorError::RateLimited {
                    message: format!("calls on {bucket} are throttled"),
                    retry_after: wait,
                });
            }
            tracing::info!(
                bucket,
                wait_ms = wait.as_millis() as u64,
                "rate governor: waiting"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Records a throttle seen on `bucket` (`attempt`: the how-manieth throttle of this
    /// call, for backoff) and returns the wait it imposes.
    pub fn throttled(&self, bucket: &str, throttle: &Throttle, attempt: u32) -> Duration {
        let wait = throttle
            .wait
            .unwrap_or_else(|| backoff(BACKOFF_BASE, BACKOFF_MAX, attempt));
        let until = Instant::now() + wait;
        let mut state = self.state();
        let key = match (&throttle.scope, &throttle.bucket) {
            (ThrottleScope::Global, _) => {
                state.global = Some(state.global.map_or(until, |at| at.max(until)));
                return wait;
            }
            (ThrottleScope::Bucket, Some(provider_bucket)) => {
                state
                    .aliases
                    .insert(bucket.to_owned(), provider_bucket.clone());
                provider_bucket.clone()
            }
            (ThrottleScope::Bucket, None) => bucket.to_owned(),
        };
        let entry = state.buckets.entry(key).or_insert(until);
        *entry = (*entry).max(until);
        wait
    }

    /// Classifies an answer to a call on `bucket` and records its throttle, if any.
    pub fn observe(
        &self,
        bucket: &str,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        attempt: u32,
    ) -> Option<(Throttle, Duration)> {
        let throttle = self.inner.shape.classify(status, headers, body)?;
        let wait = self.throttled(bucket, &throttle, attempt);
        Some((throttle, wait))
    }
}

#[cfg(test)]
mod tests {
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
            ThrottleShape::Slack.classify(
                status(200),
                &headers(&[("retry-after", "30")]),
                &limited
            ),
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
            &body(json!({"message": "You are being rate limited.", "retry_after": 0.75, "global": false})),
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
            ThrottleShape::Notion.classify(
                status(429),
                &headers(&[("retry-after", "12")]),
                &limited
            ),
            refused(Some(Duration::from_secs(12)))
        );
        let overload = body(json!({"object": "error", "status": 529, "code": "service_overload"}));
        assert_eq!(
            ThrottleShape::Notion.classify(
                status(529),
                &headers(&[("retry-after", "4")]),
                &overload
            ),
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
}
