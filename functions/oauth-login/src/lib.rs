//! `oauth-login`: `GET /auth/oauth/{provider}/login?redirect_to=/path` stores one-time
//! state (PKCE verifier, nonce, issuer, post-login path), binds it to the browser with a
//! cookie, and redirects to the provider. `GET /auth/providers` lists the configured
//! providers (name, kind, login path) for a sign-in page's buttons.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tributary::auth::oauth::SignIn;
use tributary::store::oauth::STATE_TTL_SECS;
use tributary::web::{set_cookie, ApiError, ApiQuery};

pub const STATE_COOKIE: &str = "tributary_oauth_state";

pub fn routes(sign_in: SignIn) -> Router {
    Router::new()
        .route("/auth/oauth/{provider}/login", get(login))
        .route("/auth/providers", get(providers))
        .with_state(sign_in)
}

/// `GET /auth/providers`: `{items: [{name, kind, login_url}]}`, no client ids or secrets.
async fn providers(State(sign_in): State<SignIn>) -> axum::Json<serde_json::Value> {
    let items: Vec<serde_json::Value> = sign_in
        .provider_summaries()
        .into_iter()
        .map(|summary| {
            serde_json::json!({
                "login_url": format!("/auth/oauth/{}/login", summary.name),
                "name": summary.name,
                "kind": summary.kind,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "items": items }))
}

/// The callback path the state cookie is scoped to.
pub fn callback_path(provider: &str) -> String {
    format!("/auth/oauth/{provider}/callback")
}

#[derive(Deserialize)]
struct LoginParams {
    redirect_to: Option<String>,
}

async fn login(
    State(sign_in): State<SignIn>,
    Path(provider): Path<String>,
    ApiQuery(params): ApiQuery<LoginParams>,
) -> Result<Response, ApiError> {
    let started = sign_in
        .start(&provider, params.redirect_to.as_deref())
        .await?;
    let location =
        HeaderValue::from_str(started.authorization_url.as_str()).map_err(ApiError::internal)?;
    let cookie = set_cookie(
        STATE_COOKIE,
        &started.state,
        &callback_path(&provider),
        STATE_TTL_SECS,
    );
    Ok((
        StatusCode::FOUND,
        [
            (LOCATION, location),
            (SET_COOKIE, cookie),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
    )
        .into_response())
}
