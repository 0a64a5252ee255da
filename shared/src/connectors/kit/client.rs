//! [`ApiClient`]: how a source calls its provider. Every call is authorised
//! ([`SourceAuth`]), waits on the credential's [`Governor`], is retried while the provider
//! throttles it (within the governor's budget), retried on 408/5xx and network failures
//! when idempotent (per the [`RetryPolicy`]), refreshed once on a 401 when the credential
//! is a provider connection, and every failure comes back as a [`ConnectorError`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::auth::SourceAuth;
use super::governor::{backoff, retry_after, Governor, ThrottleShape};
use crate::connectors::ConnectorError;
use crate::http::{GuardedClient, GuardedRequest, HttpError, RetryPolicy};

/// Longest provider message quoted in an error.
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Largest answer [`ApiCall::send`] buffers (downloads use [`ApiCall::send_stream`]).
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Pulls a human-readable message out of an error body (never the whole body).
pub type MessageExtractor = fn(&[u8]) -> String;

#[derive(Clone)]
struct Inner {
    provider: String,
    http: GuardedClient,
    base: Url,
    auth: SourceAuth,
    retry: RetryPolicy,
    governor: Governor,
    messages: MessageExtractor,
    max_body_bytes: usize,
}

/// A provider's API as one source sees it; cheap to clone.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("provider", &self.inner.provider)
            .field("base", &self.inner.base.as_str())
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// `provider` names the source in error messages ("Jira answered 403 …"); `base` is
    /// the API root that [`ApiClient::url`] and [`ApiClient::link`] resolve against. The
    /// governor defaults to a private one with the standard 429 shape.
    pub fn new(
        provider: impl Into<String>,
        http: GuardedClient,
        base: Url,
        auth: SourceAuth,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider: provider.into(),
                http,
                base,
                auth,
                retry: RetryPolicy::default(),
                governor: Governor::new(ThrottleShape::Standard),
                messages: default_messages,
                max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            }),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        Arc::make_mut(&mut self.inner).retry = retry;
        self
    }

    /// The credential's governor (usually [`Governor::shared`]); it carries the shape.
    pub fn with_governor(mut self, governor: Governor) -> Self {
        Arc::make_mut(&mut self.inner).governor = governor;
        self
    }

    /// How error bodies become messages (default: the usual JSON `message`/`error` fields).
    pub fn with_error_messages(mut self, messages: MessageExtractor) -> Self {
        Arc::make_mut(&mut self.inner).messages = messages;
        self
    }

    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        Arc::make_mut(&mut self.inner).max_body_bytes = bytes;
        self
    }

    pub fn provider(&self) -> &str {
        &self.inner.provider
    }

    pub fn base(&self) -> &Url {
        &self.inner.base
    }

    pub fn governor(&self) -> &Governor {
        &self.inner.governor
    }

    pub fn auth(&self) -> &SourceAuth {
        &self.inner.auth
    }

    /// `path` (starting with `/`, may carry a query) under the base URL's path.
    pub fn url(&self, path: &str) -> Result<Url, ConnectorError> {
        let base = self.inner.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|error| {
            ConnectorError::Config(format!(
                "cannot build a {} URL: {error}",
                self.inner.provider
            ))
        })
    }

    /// A link the provider returned (next page, delta link), absolute or relative to the
    /// base; it must stay on the base's origin, so credentials never leave for another host.
    pub fn link(&self, link: &str) -> Result<Url, ConnectorError> {
        let url = self.inner.base.join(link).map_err(|error| {
            ConnectorError::Protocol(format!(
                "{} returned an unusable link: {error}",
                self.inner.provider
            ))
        })?;
        if url.origin() != self.inner.base.origin() {
            return Err(ConnectorError::Protocol(format!(
                "{} returned a link to another host",
                self.inner.provider
            )));
        }
        Ok(url)
    }

    pub fn request(&self, method: Method, url: Url) -> ApiCall {
        ApiCall::new(self.clone(), method, url)
    }

    pub fn get(&self, url: Url) -> ApiCall {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: Url) -> ApiCall {
        self.request(Method::POST, url)
    }

    /// GET `url` and parse its JSON answer; any failure is a [`ConnectorError`].
    pub async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, ConnectorError> {
        self.get(url).json().await
    }
}

type Customize = Box<dyn Fn(GuardedRequest) -> GuardedRequest + Send + Sync>;

/// One call being prepared: [`ApiClient::get`] … `.query(..)` … `.json().await`.
pub struct ApiCall {
    api: ApiClient,
    method: Method,
    url: Url,
    what: Option<String>,
    bucket: Option<String>,
    idempotent: bool,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    customize: Option<Customize>,
}

impl ApiCall {
    fn new(api: ApiClient, method: Method, url: Url) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
        );
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Self {
            api,
            method,
            url,
            what: None,
            bucket: None,
            idempotent,
            headers,
            body: None,
            customize: None,
        }
    }

    /// What this call is, for error messages ("the issue search"); default `GET /path`.
    pub fn what(mut self, what: impl Into<String>) -> Self {
        self.what = Some(what.into());
        self
    }

    /// The rate bucket (Slack: the method; Discord: the route); default per shape.
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Marks a read-only POST (search, bulk fetch) as safe to retry on 5xx.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(name, value);
        self
    }

    pub fn query_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// A JSON body (serialised once, sent again on retries).
    pub fn json_body<T: serde::Serialize + ?Sized>(
        mut self,
        body: &T,
    ) -> Result<Self, ConnectorError> {
        let bytes = serde_json::to_vec(body).map_err(|error| {
            ConnectorError::Protocol(format!("cannot encode a request: {error}"))
        })?;
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body = Some(bytes);
        Ok(self)
    }

    /// A form body (`application/x-www-form-urlencoded`, e.g. Slack methods).
    pub fn form_body(mut self, pairs: &[(&str, &str)]) -> Self {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        self.body = Some(encoded.into_bytes());
        self
    }

    /// Anything else on the request, applied to every attempt (e.g. `only_hops`).
    pub fn with(
        mut self,
        customize: impl Fn(GuardedRequest) -> GuardedRequest + Send + Sync + 'static,
    ) -> Self {
        self.customize = Some(Box::new(customize));
        self
    }

    /// Sends and parses a successful JSON answer; other statuses are errors.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ConnectorError> {
        self.send().await?.error_for_status()?.json()
    }

    /// Sends and buffers the answer, whatever its final status (after throttling, retries
    /// and a refresh); see [`ApiResponse::error_for_status`].
    pub async fn send(self) -> Result<ApiResponse, ConnectorError> {
        match self.execute(false).await? {
            Outcome::Buffered(response) => Ok(response),
            Outcome::Stream(..) | Outcome::RefusedHop(_) => Err(ConnectorError::Protocol(
                "unexpected streamed answer".into(),
            )),
        }
    }

    /// Sends and hands back a successful answer unread, to stream (file downloads). A
    /// successful answer's body is not classified (Slack's throttling-in-a-200 is not
    /// seen here; file downloads do not answer that way).
    pub async fn send_stream(self) -> Result<Download, ConnectorError> {
        Ok(match self.execute(true).await? {
            Outcome::Stream(response) => Download::Body(response),
            Outcome::RefusedHop(error) => {
                tracing::warn!(%error, "redirect refused; answer left out");
                Download::RefusedHop
            }
            Outcome::Buffered(response) => Download::Failed(response),
        })
    }

    fn describe(&self) -> String {
        self.what
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.url.path()))
    }

    fn bucket_name(&self) -> String {
        if let Some(bucket) = &self.bucket {
            return bucket.clone();
        }
        match self.api.inner.governor.shape() {
            ThrottleShape::Slack => self.url.path().to_owned(),
            ThrottleShape::Discord => format!("{} {}", self.method, self.url.path()),
            _ => "*".to_owned(),
        }
    }

    fn build(&self) -> GuardedRequest {
        let mut request = self
            .api
            .inner
            .http
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        match &self.customize {
            Some(customize) => customize(request),
            None => request,
        }
    }

    async fn execute(self, stream: bool) -> Result<Outcome, ConnectorError> {
        let api = Arc::clone(&self.api.inner);
        let what = self.describe();
        let bucket = self.bucket_name();
        let mut throttled = 0u32;
        let mut throttle_waited = Duration::ZERO;
        let mut attempt = 0u32;
        let mut retry_waited = Duration::ZERO;
        let mut refreshed: Option<GuardedRequest> = None;
        let mut reauthorized = false;
        loop {
            api.governor.acquire(&bucket).await?;
            let (request, used) = match refreshed.take() {
                Some(request) => (request, None),
                None => api.auth.authorize(self.build()).await?,
            };
            attempt += 1;
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) if stream && refused_hop(&error) => {
                    return Ok(Outcome::RefusedHop(error))
                }
                Err(error) => {
                    let retryable = self.idempotent && (error.is_timeout() || error.is_connect());
                    let wait = backoff(api.retry.base_delay, api.retry.max_delay, attempt);
                    if retryable
                        && attempt < api.retry.max_attempts
                        && retry_waited + wait <= api.retry.budget
                    {
                        tracing::info!(
                            attempt,
                            wait_ms = wait.as_millis() as u64,
                            "retrying a source call"
                        );
                        tokio::time::sleep(wait).await;
                        retry_waited += wait;
                        continue;
                    }
                    return Err(transport_error(error, &what));
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            let read_body = !stream || !status.is_success();
            let answer = if read_body {
                let body = read_capped(response, api.max_body_bytes, &what).await?;
                Answer::Body(body)
            } else {
                Answer::Stream(response)
            };
            let body: &[u8] = match &answer {
                Answer::Body(body) => body,
                Answer::Stream(_) => &[],
            };
            let attempts_left = attempt < api.retry.max_attempts;
            if let Some((throttle, wait)) =
                api.governor
                    .observe(&bucket, status, &headers, body, throttled + 1)
            {
                // Out of attempts, the throttled answer itself is the result (an error
                // of its status); out of budget, the wait is handed to the caller.
                if throttle.refused && attempts_left {
                    throttled += 1;
                    if throttle_waited + wait > api.governor.budget() {
                        return Err(ConnectorError::RateLimited {
                            message: format!("{} throttled {what}", api.provider),
                            retry_after: wait,
                        });
                    }
                    tracing::info!(
                        bucket,
                        wait_ms = wait.as_millis() as u64,
                        "source throttled a call"
                    );
                    throttle_waited += wait;
                    continue;
                }
            }
            if status == StatusCode::UNAUTHORIZED && !reauthorized {
                reauthorized = true;
                if let Some(request) = api
                    .auth
                    .reauthorize_after_401(self.build(), used.as_ref())
                    .await?
                {
                    refreshed = Some(request);
                    continue;
                }
            }
            if self.idempotent && retryable_status(status) {
                let wait = retry_after(&headers, chrono::Utc::now())
                    .unwrap_or_else(|| backoff(api.retry.base_delay, api.retry.max_delay, attempt));
                if attempts_left && retry_waited + wait <= api.retry.budget {
                    tracing::info!(attempt, %status, wait_ms = wait.as_millis() as u64, "retrying a source call");
                    tokio::time::sleep(wait).await;
                    retry_waited += wait;
                    continue;
                }
            }
            return Ok(match answer {
                Answer::Stream(response) => Outcome::Stream(response),
                Answer::Body(body) => Outcome::Buffered(ApiResponse {
                    status,
                    headers,
                    body,
                    what,
                    provider: api.provider.clone(),
                    messages: api.messages,
                }),
            });
        }
    }
}

/// The answer to [`ApiCall::send_stream`].
#[derive(Debug)]
pub enum Download {
    /// A successful answer, its body unread.
    Body(reqwest::Response),
    /// An unsuccessful answer, buffered ([`ApiResponse::error`]).
    Failed(ApiResponse),
    /// A redirect went where the network policy or the call's hop filter refuses.
    RefusedHop,
}

enum Answer {
    Body(Vec<u8>),
    Stream(reqwest::Response),
}

enum Outcome {
    Buffered(ApiResponse),
    Stream(reqwest::Response),
    RefusedHop(HttpError),
}

/// A buffered answer.
pub struct ApiResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    body: Vec<u8>,
    what: String,
    provider: String,
    messages: MessageExtractor,
}

impl std::fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("what", &self.what)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ApiResponse {
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as JSON, whatever the status.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body)
            .map_err(|error| ConnectorError::Protocol(format!("{}: not JSON ({error})", self.what)))
    }

    /// The provider's message in an error body (at most [`MAX_MESSAGE_CHARS`]).
    pub fn message(&self) -> String {
        truncate(&(self.messages)(&self.body), MAX_MESSAGE_CHARS)
    }

    /// The error this status means (401/403 unauthorized, 408/429/5xx unavailable, else
    /// protocol), with the provider's message.
    pub fn error(&self) -> ConnectorError {
        status_error(&self.provider, self.status, &self.what, &self.message())
    }

    /// Itself when successful, else [`ApiResponse::error`].
    pub fn error_for_status(self) -> Result<Self, ConnectorError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.error())
        }
    }
}

fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 500 | 502 | 503 | 504)
}

/// `"<Provider> answered <status> to <what>: <message>"` as the error its status means.
pub fn status_error(
    provider: &str,
    status: StatusCode,
    what: &str,
    message: &str,
) -> ConnectorError {
    let detail = if message.is_empty() {
        format!("{provider} answered {status} to {what}")
    } else {
        format!("{provider} answered {status} to {what}: {message}")
    };
    match status.as_u16() {
        401 | 403 => ConnectorError::Unauthorized(detail),
        408 | 429 | 500..=599 => ConnectorError::Unavailable(detail),
        _ => ConnectorError::Protocol(detail),
    }
}

/// A redirect the guarded client would not follow (network policy, hop filter, loop).
pub fn refused_hop(error: &HttpError) -> bool {
    error.is_refusal()
        || matches!(
            error,
            HttpError::TooManyRedirects | HttpError::BadRedirect(_)
        )
}

/// Network trouble as a connector error: refused by policy or unbuildable = configuration,
/// unreadable = protocol, the rest = unavailable (try again later).
pub fn transport_error(error: impl Into<HttpError>, what: &str) -> ConnectorError {
    let error = error.into();
    if error.is_refusal() || error.is_builder() {
        ConnectorError::Config(format!("{what}: {error}"))
    } else if error.is_decode() || refused_hop(&error) {
        ConnectorError::Protocol(format!("{what}: {error}"))
    } else {
        ConnectorError::Unavailable(format!("{what}: {error}"))
    }
}

async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
    what: &str,
) -> Result<Vec<u8>, ConnectorError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| transport_error(error, what))?
    {
        if body.len() + chunk.len() > limit {
            return Err(ConnectorError::Protocol(format!(
                "{what}: the answer is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// At most `max` characters, on a character boundary.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The usual JSON error fields: `message`, `error` (string or `{message}`),
/// `error_description`, `errorMessages[]`. Non-JSON bodies (HTML error pages) say nothing.
pub fn default_messages(body: &[u8]) -> String {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let mut messages: Vec<String> = [
        text(value.get("message")),
        text(value.get("error")),
        text(value.get("error").and_then(|error| error.get("message"))),
        text(value.get("error_description")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(list) = value.get("errorMessages").and_then(Value::as_array) {
        messages.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    messages.retain(|message| !message.is_empty());
    messages.dedup();
    messages.join("; ")
}

#[cfg(test)]
#[path = "tests/client.rs"]
mod tests;
