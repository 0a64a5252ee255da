//! Email verification: a one-time link (24 h) mailed to the account's address. The token
//! is random (256 bits), stored only as its SHA-256 with a TTL, and consumed with the
//! store's conditional read-and-delete, so a link works once.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, REFERRER_POLICY};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tributary::auth::TokenKind;
use tributary::mail::Message;
use tributary::store::{now_epoch_seconds, User, UserError};
use tributary::web::{ApiError, ApiQuery, Authenticated, UserView};
use tributary::Services;

pub const VERIFY_PATH: &str = "/auth/verify-email";
pub const VERIFICATION_TTL_SECS: i64 = 24 * 3600;
/// At most one verification mail per account per minute.
pub const RESEND_INTERVAL_SECS: i64 = 60;

#[derive(Deserialize)]
pub struct TokenParams {
    token: Option<String>,
}

/// Mails a fresh link for the user's email.
pub async fn send_verification(services: &Services, user: &User) -> Result<(), ApiError> {
    let token = services
        .users
        .issue_email_verification(user, now_epoch_seconds(), VERIFICATION_TTL_SECS)
        .await?;
    let link = services.mail.link(&format!("{VERIFY_PATH}?token={token}"));
    let message = Message {
        to: user.email.clone(),
        subject: "Confirm your email address for Tributary".into(),
        text: format!(
            "Hello {},\r\n\r\nconfirm that {} is your email address by opening this link \
             within 24 hours:\r\n\r\n{link}\r\n\r\nIf you did not create a Tributary account, \
             ignore this message.\r\n",
            user.name, user.email
        ),
    };
    services
        .mail
        .mailer
        .send(&message)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(user_id = %user.id, "verification mail sent");
    Ok(())
}

/// `POST /auth/verify-email/request`: mails a new link (a session only; once a minute).
pub async fn request(
    State(services): State<Services>,
    caller: Authenticated,
) -> Result<Response, ApiError> {
    if caller.0.token_kind != TokenKind::Session {
        return Err(ApiError::forbidden(
            "request verification with a session token",
        ));
    }
    let user = services
        .users
        .by_id(&caller.0.user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the account no longer exists"))?;
    if user.email.is_empty() {
        return Err(ApiError::bad_request(
            "no_email",
            "this account has no email address to verify",
        ));
    }
    if user.email_verified {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "email_already_verified",
            "this email address is already verified",
        ));
    }
    let allowed = services
        .users
        .claim_verification_send(&user.id, now_epoch_seconds(), RESEND_INTERVAL_SECS)
        .await?;
    if !allowed {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "verification_recently_sent",
            format!("a verification mail was sent less than {RESEND_INTERVAL_SECS} seconds ago; check your inbox"),
        ));
    }
    send_verification(&services, &user).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "sent_to": user.email })),
    )
        .into_response())
}

fn verification_error(error: UserError) -> ApiError {
    match error {
        UserError::InvalidVerification | UserError::NotFound => ApiError::bad_request(
            "invalid_verification_token",
            "this verification link is invalid, expired or already used; request a new one",
        ),
        other => other.into(),
    }
}

/// Pages carry the token in a form field: nothing cached, no Referer leaking the URL.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Only URL-safe base64 reaches the page, so it needs no escaping beyond this check.
fn well_formed(token: &str) -> bool {
    (20..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `GET /auth/verify-email?token=`: a confirm button; it does not consume the token.
pub async fn confirm_page(ApiQuery(params): ApiQuery<TokenParams>) -> Response {
    match params.token.filter(|token| well_formed(token)) {
        Some(token) => page(
            StatusCode::OK,
            "Confirm your email address",
            &format!(
                "<form method=\"post\" action=\"{VERIFY_PATH}\">\
                 <input type=\"hidden\" name=\"token\" value=\"{token}\">\
                 <button type=\"submit\">Confirm my email address</button></form>"
            ),
        ),
        None => page(
            StatusCode::BAD_REQUEST,
            "Invalid link",
            "<p>This verification link is incomplete. Request a new one.</p>",
        ),
    }
}

/// `POST /auth/verify-email`: `{"token"}` as JSON (answers JSON) or the confirm page's
/// form (answers a page).
pub async fn verify(
    State(services): State<Services>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let is_form = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let params: TokenParams = if is_form {
        serde_urlencoded::from_bytes(&body)
            .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?
    };
    let token = params.token.filter(|token| well_formed(token));
    let outcome = match token {
        Some(token) => services
            .users
            .consume_email_verification(&token)
            .await
            .map_err(verification_error),
        None => Err(verification_error(UserError::InvalidVerification)),
    };
    if let Ok(user) = &outcome {
        tracing::info!(user_id = %user.id, "email verified");
    }
    if !is_form {
        let user = outcome?;
        return Ok(Json(serde_json::json!({ "user": UserView::from(user) })).into_response());
    }
    Ok(match outcome {
        Ok(user) => page(
            StatusCode::OK,
            "Email address confirmed",
            &format!(
                "<p>{} is verified. You can close this page.</p>",
                html_escape(&user.email)
            ),
        ),
        Err(error) => page(
            error.status,
            "Link not valid",
            &format!("<p>{}</p>", error.message),
        ),
    })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
