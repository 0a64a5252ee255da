//! `integration-callback`: `GET /integrations/{provider}/callback` (public: the provider
//! sends the browser here). Checks the one-time state against the browser's state cookie
//! (constant time), takes it once, refuses a provider error, exchanges the code with the
//! PKCE verifier and the exact redirect URI, stores the connection, then redirects to the
//! post-connect path or shows a small "connected" answer. Nothing is stored on any error.

use axum::extract::{Path, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, LOCATION, REFERRER_POLICY, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tributary::auth::oauth::printable;
use tributary::web::{cookie, set_cookie, ApiError, ApiQuery};

use integration_login::{
    callback_path, escape_html, provider_name, IntegrationState, STATE_COOKIE,
};

/// Most characters of a provider's error text we repeat.
const MAX_PROVIDER_MESSAGE_CHARS: usize = 200;

pub fn routes(state: IntegrationState) -> Router {
    Router::new()
        .route("/integrations/{provider}/callback", get(callback))
        .with_state(state)
}

/// The query of the provider's redirect back to us.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207 (providers that send it); not required for plain OAuth 2.0.
    pub iss: Option<String>,
}

fn invalid_state(message: &str) -> ApiError {
    ApiError::bad_request("invalid_state", message)
}

async fn callback(
    State(state): State<IntegrationState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<CallbackParams>,
) -> Response {
    let html = wants_html(&headers);
    let mut response = match finish(&state, &provider, &headers, &params).await {
        Ok(done) => done.into_response(html),
        Err(error) if html => error_page(&error),
        Err(error) => error.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The state cookie has done its job whatever the outcome.
    if let Ok(name) = provider_name(&provider) {
        headers.append(
            SET_COOKIE,
            set_cookie(STATE_COOKIE, "", &callback_path(name), 0),
        );
    }
    response
}

/// A browser (asks for HTML) gets a page; API clients and tests the JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("text/html"))
}

struct Connected {
    provider: String,
    redirect_to: Option<String>,
}

impl Connected {
    fn into_response(self, html: bool) -> Response {
        if let Some(path) = &self.redirect_to {
            if let Ok(location) = HeaderValue::from_str(path) {
                return (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response();
            }
        }
        if html {
            let provider = escape_html(&self.provider);
            page(
                StatusCode::OK,
                &format!("Connected to {provider}"),
                &format!(
                    "The workspace is now connected to {provider}. You can close this window."
                ),
            )
        } else {
            Json(json!({ "provider": self.provider, "status": "active" })).into_response()
        }
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{body}</p></body></html>"
    );
    (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        html,
    )
        .into_response()
}

fn error_page(error: &ApiError) -> Response {
    page(
        error.status,
        "Connection failed",
        &format!(
            "{} <small>({})</small>",
            escape_html(&error.message),
            escape_html(error.code)
        ),
    )
}

async fn finish(
    state: &IntegrationState,
    provider: &str,
    headers: &HeaderMap,
    params: &CallbackParams,
) -> Result<Connected, ApiError> {
    let provider = provider_name(provider)?;
    state.provider(provider)?;
    let value = params
        .state
        .as_deref()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| invalid_state("the callback lacks `state`; start the connection again"))?;
    // Bound to the browser that started the flow: someone else's authorize link cannot
    // connect their workspace to this browser's account.
    let bound = cookie(headers, STATE_COOKIE)
        .is_some_and(|cookie| bool::from(value.as_bytes().ct_eq(cookie.as_bytes())));
    if !bound {
        return Err(invalid_state(
            "this connection attempt was not started in this browser; start it again",
        ));
    }
    let connect = state.states.take(value).await?.ok_or_else(|| {
        invalid_state("this connection attempt expired or was already used; start it again")
    })?;
    if connect.provider != provider {
        return Err(invalid_state(
            "this connection attempt was started for another provider; start it again",
        ));
    }
    if let Some(error) = &params.error {
        let description = params.error_description.as_deref().unwrap_or("");
        let text: String =
            printable(format!("{error}: {description}").trim_end_matches([':', ' ']))
                .chars()
                .take(MAX_PROVIDER_MESSAGE_CHARS)
                .collect();
        tracing::info!(%provider, reason = %text, "provider refused the connection");
        return Err(ApiError::bad_request(
            "provider_error",
            format!("the provider refused the connection: {text}"),
        ));
    }
    let code = params
        .code
        .as_deref()
        .filter(|code| !code.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("missing_code", "the provider's answer lacks `code`")
        })?;
    state.connect(&connect, code).await?;
    tracing::info!(%provider, workspace_id = %connect.workspace_id, user_id = %connect.user_id, "provider connected");
    Ok(Connected {
        provider: provider.to_owned(),
        redirect_to: connect.redirect_to,
    })
}
