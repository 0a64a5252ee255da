//! `oauth-callback`: `GET /auth/oauth/{provider}/callback` finishes the sign-in and hands
//! the browser a one-time login code in an HttpOnly cookie (no token ever in a URL);
//! `POST /auth/session` redeems that cookie for a session.

use axum::extract::{Path, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, LOCATION, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tributary::auth::oauth::{pkce, CallbackParams, SignIn};
use tributary::store::oauth::LOGIN_CODE_TTL_SECS;
use tributary::web::{cookie, session_body, set_cookie, ApiError, ApiQuery};
use tributary::Services;

pub const STATE_COOKIE: &str = "tributary_oauth_state";
pub const LOGIN_COOKIE: &str = "tributary_login";
pub const SESSION_PATH: &str = "/auth/session";

#[derive(Clone)]
pub struct CallbackState {
    pub services: Services,
    pub sign_in: SignIn,
}

pub fn routes(state: CallbackState) -> Router {
    Router::new()
        .route("/auth/oauth/{provider}/callback", get(callback))
        .route(SESSION_PATH, post(session))
        .with_state(state)
}

/// Headers every callback answer carries: nothing cached, no Referer to the next page.
fn guarded(mut response: Response, provider: &str) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The state cookie has done its job whatever the outcome.
    let path = format!("/auth/oauth/{provider}/callback");
    headers.append(SET_COOKIE, set_cookie(STATE_COOKIE, "", &path, 0));
    response
}

async fn callback(
    State(state): State<CallbackState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<CallbackParams>,
) -> Response {
    let outcome = finish_sign_in(&state, &provider, &headers, &params).await;
    let response = match outcome {
        Ok(response) => response,
        Err(error) if wants_html(&headers) => signin_error_redirect(&state.sign_in, &error),
        Err(error) => error.into_response(),
    };
    guarded(response, &provider)
}

/// A browser navigating (it asks for HTML) is sent back to the sign-in page with the
/// reason; API clients and tests get the `{code, message}` JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

fn signin_error_redirect(sign_in: &SignIn, error: &ApiError) -> Response {
    let location = sign_in.signin_error_location(error.code);
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response(),
        Err(_) => ApiError::internal("unrepresentable sign-in page location").into_response(),
    }
}

async fn finish_sign_in(
    state: &CallbackState,
    provider: &str,
    headers: &HeaderMap,
    params: &CallbackParams,
) -> Result<Response, ApiError> {
    let finished = state
        .sign_in
        .finish(provider, params, cookie(headers, STATE_COOKIE))
        .await?;
    let code = pkce::random_token().map_err(ApiError::internal)?;
    state
        .sign_in
        .values()
        .save_login_code(&code, &finished.user.id)
        .await?;
    let location = HeaderValue::from_str(&finished.redirect_to).map_err(ApiError::internal)?;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (LOCATION, location),
            (
                SET_COOKIE,
                set_cookie(LOGIN_COOKIE, &code, SESSION_PATH, LOGIN_CODE_TTL_SECS),
            ),
        ],
    )
        .into_response())
}

async fn session(
    State(state): State<CallbackState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let invalid = || {
        ApiError::unauthorized("no valid sign-in to redeem; sign in again")
            .with_code("invalid_login_code")
    };
    let code = cookie(&headers, LOGIN_COOKIE).ok_or_else(invalid)?;
    let user_id = state
        .sign_in
        .values()
        .redeem_login_code(code)
        .await?
        .ok_or_else(invalid)?;
    let user = state
        .services
        .users
        .by_id(&user_id)
        .await?
        .filter(|user| user.is_active())
        .ok_or_else(invalid)?;
    let body = session_body(&state.services, user)?;
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, set_cookie(LOGIN_COOKIE, "", SESSION_PATH, 0));
    Ok(response)
}
