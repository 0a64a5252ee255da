//! The HTTP edge: the one place domain errors become statuses and `{code, message}`
//! bodies, plus the extractors and layers every function's router shares.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::http::{request::Parts, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

use crate::auth::{Denied, Principal, TokenVerifier};
use crate::store::{StoreError, UserError};

/// Request bodies of the identity routes are small; anything bigger is refused early.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A failure that is ours, not the caller's: logged in full, reported generically.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side; try again later",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::InvalidCursor => {
                ApiError::bad_request("invalid_cursor", "the pagination cursor is not valid")
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::EmailTaken => ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "an account with this email already exists",
            ),
            UserError::NotFound => ApiError::not_found("no such user"),
            UserError::IdentityTaken => ApiError::new(
                StatusCode::CONFLICT,
                "identity_taken",
                "this sign-in identity or its email already belongs to an account",
            ),
            UserError::Contention => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the account changed concurrently; try again",
            ),
            UserError::InvalidVerification => ApiError::bad_request(
                "invalid_verification_token",
                "this verification link is invalid, expired or already used; request a new one",
            ),
            UserError::Store(error) => error.into(),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::StoreUnavailable(error) => ApiError::internal(error),
            other => {
                tracing::info!(reason = %other, "request denied");
                ApiError::unauthorized("a valid bearer token is required")
            }
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        ),
        JsonRejection::JsonSyntaxError(error) => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {}", error.body_text()),
        ),
        JsonRejection::JsonDataError(error) => {
            ApiError::bad_request("invalid_body", error.body_text())
        }
        JsonRejection::BytesRejection(_) => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        ),
        other => ApiError::bad_request("invalid_body", other.body_text()),
    }
}

/// `axum::Json` with rejections in the `{code, message}` shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| ApiJson(value))
            .map_err(json_rejection)
    }
}

/// `axum::extract::Query` with rejections in the `{code, message}` shape.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::bad_request("invalid_query", rejection.body_text()))
    }
}

/// The caller, as established by the token check (API Gateway's authorizer or the local
/// middleware). A route that takes it is unreachable without one.
pub struct Authenticated(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authenticated)
            .ok_or_else(|| ApiError::unauthorized("a valid bearer token is required"))
    }
}

impl Authenticated {
    pub fn require_scope(&self, scope: &str) -> Result<&Principal, ApiError> {
        if self.0.has_scope(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::forbidden(format!(
                "this token lacks the `{scope}` scope"
            )))
        }
    }
}

/// The local stack's stand-in for API Gateway's authorizer: the same check, as middleware.
pub async fn require_token(
    State(verifier): State<TokenVerifier>,
    mut request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match verifier.check(header).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(denied) => ApiError::from(denied).into_response(),
    }
}

#[cfg(feature = "lambda")]
/// In Lambda, API Gateway has already run `token-check`; its context becomes the principal.
pub async fn principal_from_authorizer(mut request: Request, next: Next) -> Response {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let principal = match request.extensions().request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|authorizer| Principal::from_context(&authorizer.fields)),
        _ => None,
    };
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

/// Token-bearing responses must not be cached by browsers or proxies.
async fn no_store(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response
        .headers_mut()
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn route_not_found() -> ApiError {
    ApiError::not_found("no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// The layers every HTTP function applies: JSON 404/405, body limit, `no-store`.
pub fn finish(router: Router) -> Router {
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(no_store))
}

/// A user as the API shows it (never the password hash).
#[derive(serde::Serialize)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub tenant_id: String,
    pub created_at: String,
    pub email_verified: bool,
}

impl From<crate::store::User> for UserView {
    fn from(user: crate::store::User) -> Self {
        Self {
            created_at: rfc3339(user.created_at),
            email_verified: user.email_verified,
            id: user.id,
            email: user.email,
            name: user.name,
            tenant_id: user.tenant_id,
        }
    }
}

/// A new session for `user`: `{access_token, token_type, expires_in, user}`.
pub fn session_body(
    services: &crate::Services,
    user: crate::store::User,
) -> Result<serde_json::Value, ApiError> {
    let access_token = services
        .sessions
        .issue(&user.id, user.token_version)
        .map_err(ApiError::internal)?;
    tracing::info!(user_id = %user.id, "session issued");
    Ok(serde_json::json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": services.sessions.ttl_secs(),
        "user": UserView::from(user),
    }))
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A host-only, HttpOnly, Secure, SameSite=Lax cookie scoped to `path`; `max_age` 0 clears it.
pub fn set_cookie(name: &str, value: &str, path: &str, max_age: i64) -> HeaderValue {
    let cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax");
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

#[cfg(feature = "oauth")]
impl From<crate::auth::oauth::SignInError> for ApiError {
    fn from(error: crate::auth::oauth::SignInError) -> Self {
        use crate::auth::oauth::oidc::OidcError;
        use crate::auth::oauth::SignInError as E;
        let message = error.to_string();
        let (status, code) = match &error {
            E::UnknownProvider(_) => (StatusCode::NOT_FOUND, "unknown_provider"),
            E::Redirect(_) => (StatusCode::BAD_REQUEST, "invalid_redirect"),
            E::ProviderRefused(_) => (StatusCode::BAD_REQUEST, "provider_error"),
            E::Cancelled => (StatusCode::BAD_REQUEST, "signin_cancelled"),
            E::MissingState | E::StateMismatch => (StatusCode::BAD_REQUEST, "invalid_state"),
            E::UnknownState => (StatusCode::BAD_REQUEST, "signin_expired"),
            E::StateUsed => (StatusCode::BAD_REQUEST, "signin_already_used"),
            E::Oidc(OidcError::CodeRefused(_))
            | E::OAuth2(crate::auth::oauth::oauth2::OAuth2Error::CodeRefused(_)) => {
                (StatusCode::BAD_REQUEST, "invalid_grant")
            }
            E::MissingCode => (StatusCode::BAD_REQUEST, "missing_code"),
            E::IssuerMismatch | E::MissingIssuer => (StatusCode::BAD_REQUEST, "invalid_issuer"),
            E::Oidc(OidcError::IdToken(_) | OidcError::Keys(_)) => {
                (StatusCode::UNAUTHORIZED, "invalid_id_token")
            }
            E::Oidc(OidcError::UserinfoSubject) => (StatusCode::UNAUTHORIZED, "invalid_userinfo"),
            E::Oidc(OidcError::TokenExchange(_))
            | E::OAuth2(crate::auth::oauth::oauth2::OAuth2Error::TokenExchange(_)) => {
                (StatusCode::BAD_GATEWAY, "token_exchange_failed")
            }
            E::Oidc(_) | E::OAuth2(_) => (StatusCode::BAD_GATEWAY, "provider_unavailable"),
            E::UnverifiedEmailInUse => (StatusCode::CONFLICT, "email_not_verified"),
            E::AccountEmailUnverified => (StatusCode::CONFLICT, "account_email_not_verified"),
            E::Disabled => (StatusCode::FORBIDDEN, "account_disabled"),
            E::User(_) | E::Store(_) | E::Random(_) => return ApiError::internal(error),
        };
        tracing::info!(%code, reason = %message, "sign-in refused");
        ApiError::new(status, code, message)
    }
}

/// Most characters a display name (of a user, a token, …) may have.
pub const MAX_NAME_CHARS: usize = 100;

/// A trimmed display name of 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub fn display_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 || count > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("name must be 1 to {MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// An RFC 3339 UTC timestamp for API responses (kept here for the function crates).
pub use crate::time::rfc3339;

#[cfg(feature = "crawl")]
impl From<crate::crawl::job::SpecError> for ApiError {
    fn from(error: crate::crawl::job::SpecError) -> Self {
        use crate::crawl::job::SpecError as E;
        let code = match &error {
            E::InvalidUrl { .. } => "invalid_url",
            E::UnsupportedScheme { .. } => "unsupported_scheme",
            E::UrlNotAllowed { .. } => "url_not_allowed",
            E::Limit => "invalid_limit",
            E::Depth => "invalid_max_depth",
            E::BatchSize => "invalid_urls",
            E::Scope(_) => "invalid_pattern",
            E::Sink(error) => error.code(),
        };
        ApiError::bad_request(code, error.to_string())
    }
}

#[cfg(feature = "crawl")]
impl From<crate::store::crawls::CrawlStoreError> for ApiError {
    fn from(error: crate::store::crawls::CrawlStoreError) -> Self {
        use crate::store::crawls::CrawlStoreError as E;
        match error {
            E::NotFound => ApiError::new(StatusCode::NOT_FOUND, "crawl_not_found", "no such crawl"),
            E::Finished => ApiError::new(
                StatusCode::CONFLICT,
                "crawl_finished",
                "the crawl has already ended",
            ),
            E::Contention => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the crawl changed concurrently; try again",
            ),
            E::Store(error) => error.into(),
        }
    }
}

#[cfg(feature = "crawl")]
impl From<crate::crawl::engine::EngineError> for ApiError {
    fn from(error: crate::crawl::engine::EngineError) -> Self {
        use crate::crawl::engine::EngineError as E;
        match error {
            E::Jobs(error) => error.into(),
            E::Store(error) => error.into(),
            E::Sink(error) if !error.is_transient() => {
                ApiError::bad_request(error.code(), format!("sink: {error}"))
            }
            other => ApiError::internal(other),
        }
    }
}

#[cfg(feature = "crawl")]
impl From<crate::crawl::engine::ScrapeError> for ApiError {
    fn from(error: crate::crawl::engine::ScrapeError) -> Self {
        use crate::crawl::engine::ScrapeError as S;
        use crate::crawl::fetch::FetchError as F;
        let message = error.to_string();
        let (status, code) = match &error {
            S::NotHtml(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unsupported_content"),
            S::Fetch(F::Blocked(_)) => (StatusCode::BAD_REQUEST, "url_not_allowed"),
            S::Fetch(F::TooLarge { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "page_too_large"),
            S::Fetch(F::Timeout) => (StatusCode::GATEWAY_TIMEOUT, "fetch_timeout"),
            S::Fetch(_) => (StatusCode::BAD_GATEWAY, "fetch_failed"),
        };
        ApiError::new(status, code, message)
    }
}
