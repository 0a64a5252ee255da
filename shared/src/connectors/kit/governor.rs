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
#[path = "tests/governor.rs"]
mod tests;
