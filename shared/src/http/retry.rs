//! Retrying idempotent calls: jittered exponential backoff, `Retry-After`, a budget.

use std::time::Duration;

/// How hard an idempotent call is retried (DESIGN §5): on 408, 429 and 5xx and on
/// timeouts and connection failures, honouring `Retry-After`, else with jittered
/// exponential backoff, within a total waiting budget.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Most time spent waiting between attempts, over the whole call.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            budget: Duration::from_secs(30),
        }
    }
}

#[cfg_attr(not(feature = "crawl"), allow(dead_code))]
fn retryable_status(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

#[cfg_attr(not(feature = "crawl"), allow(dead_code))]
/// `Retry-After` as seconds or an HTTP date.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at
        .signed_duration_since(chrono::Utc::now())
        .num_milliseconds();
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

#[cfg_attr(not(feature = "crawl"), allow(dead_code))]
/// Full jitter: a random delay in [0, min(max, base · 2^attempt)].
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let ceiling = policy
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt))
        .min(policy.max_delay);
    let mut random = [0u8; 4];
    let fraction = match getrandom::fill(&mut random) {
        Ok(()) => f64::from(u32::from_le_bytes(random)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(fraction)
}

/// Sends the request `build` makes until it gets an answer that is not worth retrying, the
/// attempts run out, or the next wait would overrun the budget. The last response (even a
/// 429 or 5xx) or error is returned; only use it for idempotent calls.
#[cfg(feature = "crawl")]
pub async fn send_with_retry(
    build: impl Fn() -> super::GuardedRequest,
    policy: &RetryPolicy,
) -> Result<reqwest::Response, super::HttpError> {
    send_with_retry_async(|| std::future::ready(Ok(build())), policy).await
}

/// [`send_with_retry`] whose requests are made asynchronously, once per attempt (so each
/// attempt can be authorised with the credential current at that moment); an error making
/// the request ends the call.
#[cfg(feature = "crawl")]
pub async fn send_with_retry_async<F, E>(
    build: impl Fn() -> F,
    policy: &RetryPolicy,
) -> Result<reqwest::Response, E>
where
    F: std::future::Future<Output = Result<super::GuardedRequest, E>>,
    E: From<super::HttpError>,
{
    let mut waited = Duration::ZERO;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = build().await?.send().await;
        let wait = match &result {
            Ok(response) if retryable_status(response.status()) => {
                retry_after(response).unwrap_or_else(|| backoff(policy, attempt))
            }
            Err(error) if error.is_timeout() || error.is_connect() => backoff(policy, attempt),
            _ => return result.map_err(E::from),
        };
        if attempt >= policy.max_attempts || waited + wait > policy.budget {
            return result.map_err(E::from);
        }
        tracing::info!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            "retrying an outbound call"
        );
        tokio::time::sleep(wait).await;
        waited += wait;
    }
}
