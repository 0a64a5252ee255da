//! `auth`: register, log in, log out, who am I.
//!
//! `POST /auth/register` and `POST /auth/login` are public; `POST /auth/logout` and
//! `GET /me` sit behind the token check (API Gateway's authorizer, or the local middleware).
//!
//! Email verification: register mails a one-time link (24 h); `POST /auth/verify-email/request`
//! (a session) mails a new one; `GET /auth/verify-email?token=` shows a confirm button (a
//! link scanner that prefetches the URL must not consume it) that posts to
//! `POST /auth/verify-email`, which also takes `{"token": …}` as JSON.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tributary::auth::passwords::{self, PasswordError};
use tributary::auth::{scopes, TokenKind};
use tributary::store::{NewUser, User};
use tributary::web::{display_name, session_body, ApiError, ApiJson, Authenticated, UserView};
use tributary::Services;

pub mod verify;

pub const MAX_EMAIL_BYTES: usize = 254;

pub fn public_routes(services: Services) -> Router {
    Router::new()
        .route("/auth/register", post(register))
        .route("/auth/login", post(login))
        .route(
            verify::VERIFY_PATH,
            get(verify::confirm_page).post(verify::verify),
        )
        .with_state(services)
}

pub fn protected_routes(services: Services) -> Router {
    Router::new()
        .route("/auth/logout", post(logout))
        .route("/auth/verify-email/request", post(verify::request))
        .route("/me", get(me))
        .with_state(services)
}

#[derive(Deserialize)]
struct RegisterRequest {
    email: String,
    password: String,
    name: String,
}

#[derive(Deserialize)]
struct LoginRequest {
    email: String,
    password: String,
}

/// Trimmed and lowercased; a deliberately loose shape check (one `@`, a dotted domain, no
/// spaces) since only a confirmation mail could prove an address anyway.
pub fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let invalid = |why: &str| ApiError::bad_request("invalid_email", format!("email {why}"));
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES {
        return Err(invalid("must be 1 to 254 bytes"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("must contain `@`"));
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || c == '@';
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || local.chars().any(bad_char) || domain.chars().any(bad_char) || !domain_ok
    {
        return Err(invalid("is not a valid address"));
    }
    Ok(email)
}

fn password_error(error: PasswordError) -> ApiError {
    match error {
        PasswordError::Hashing(error) => ApiError::internal(error),
        weak => ApiError::bad_request("weak_password", weak.to_string()),
    }
}

/// argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

/// Validates and creates an account; shared by the route and `tributary-local user create`.
pub async fn register_user(
    services: &Services,
    email: &str,
    name: &str,
    password: String,
) -> Result<User, ApiError> {
    let email = normalize_email(email)?;
    let name = display_name(name)?;
    let context = [email.clone(), name.clone()];
    let password_hash = blocking(move || {
        let context: Vec<&str> = context.iter().map(String::as_str).collect();
        passwords::check_strength(&password, &context)?;
        passwords::hash_password(&password)
    })
    .await?
    .map_err(password_error)?;
    let user = services
        .users
        .create(NewUser {
            email,
            name,
            password_hash: Some(password_hash),
        })
        .await?;
    tracing::info!(user_id = %user.id, "user registered");
    // The account works without it; a failed mail is retried with /auth/verify-email/request.
    if let Err(error) = verify::send_verification(services, &user).await {
        tracing::warn!(user_id = %user.id, error = %error.message, "could not send the verification mail");
    }
    Ok(user)
}

async fn register(
    State(services): State<Services>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let user = register_user(&services, &request.email, &request.name, request.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "user": UserView::from(user) })),
    ))
}

fn invalid_credentials() -> ApiError {
    ApiError::unauthorized("the email or password is incorrect").with_code("invalid_credentials")
}

async fn login(
    State(services): State<Services>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<impl IntoResponse, ApiError> {
    // Every failure path runs one argon2 verification, so timing does not tell whether
    // the email exists.
    let user = match normalize_email(&request.email) {
        Ok(email) => services.users.by_email(&email).await?,
        Err(_) => None,
    };
    let hash = user
        .as_ref()
        .and_then(|user| user.password_hash.clone())
        .unwrap_or_else(|| passwords::DUMMY_HASH.to_owned());
    let password = request.password;
    let verified = blocking(move || passwords::verify_password(&hash, &password)).await?;
    let user = match user {
        Some(user) if verified && user.is_active() && user.password_hash.is_some() => user,
        _ => return Err(invalid_credentials()),
    };
    Ok(Json(session_body(&services, user)?))
}

#[derive(Deserialize, Default)]
struct LogoutRequest {
    /// Also revoke every API token of the account ("sign out everywhere").
    #[serde(default)]
    revoke_api_tokens: bool,
}

/// Revokes every session of the account; with `{"revoke_api_tokens": true}` every API
/// token too. Without a body (or `{}`) API tokens stay valid.
async fn logout(
    State(services): State<Services>,
    caller: Authenticated,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    if caller.0.token_kind != TokenKind::Session {
        return Err(ApiError::forbidden(
            "log out with a session token; revoke API tokens with DELETE /api-tokens/{id}",
        ));
    }
    // The body is optional: older clients post nothing.
    let request: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?
    };
    services.users.bump_token_version(&caller.0.user_id).await?;
    tracing::info!(user_id = %caller.0.user_id, "all sessions revoked");
    if request.revoke_api_tokens {
        let revoked = services
            .api_tokens
            .revoke_all_for_user(&caller.0.user_id)
            .await?;
        tracing::info!(user_id = %caller.0.user_id, revoked, "all API tokens revoked");
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn me(
    State(services): State<Services>,
    caller: Authenticated,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = caller.require_scope(scopes::PROFILE_READ)?;
    let user = services
        .users
        .by_id(&principal.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    Ok(Json(serde_json::json!({
        "user": UserView::from(user),
        "token_kind": principal.token_kind,
        "scopes": principal.scopes,
    })))
}
