//! `api-tokens`: create (shown once), list and revoke a user's API tokens. Every route sits
//! behind the token check.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tributary::auth::{api_token, scopes, TokenKind};
use tributary::store::{now_epoch_seconds, ApiTokenRecord};
use tributary::web::{display_name, rfc3339, ApiError, ApiJson, ApiQuery, Authenticated};
use tributary::Services;

pub const DEFAULT_EXPIRES_IN_SECS: i64 = 90 * 24 * 3600;
pub const MIN_EXPIRES_IN_SECS: i64 = 60;
pub const MAX_EXPIRES_IN_SECS: i64 = 366 * 24 * 3600;
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 100;

pub fn protected_routes(services: Services) -> Router {
    Router::new()
        .route("/api-tokens", post(create).get(list))
        .route("/api-tokens/{id}", delete(revoke))
        .with_state(services)
}

#[derive(Deserialize)]
struct CreateRequest {
    name: String,
    scopes: Vec<String>,
    expires_in: Option<i64>,
}

#[derive(Deserialize)]
struct ListParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    last_used_at: Option<String>,
    expires_at: Option<String>,
}

impl From<ApiTokenRecord> for TokenView {
    fn from(record: ApiTokenRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            scopes: record.scopes,
            created_at: rfc3339(record.created_at),
            last_used_at: record.last_used_at.map(rfc3339),
            expires_at: record.expires_at.map(rfc3339),
        }
    }
}

/// Known scopes, no more than the caller holds (a token cannot mint a stronger token).
fn validate_scopes(requested: &[String], held: &[String]) -> Result<Vec<String>, ApiError> {
    if requested.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_scopes",
            format!("give at least one scope of: {}", scopes::ALL.join(", ")),
        ));
    }
    let unique: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
    if let Some(unknown) = unique.iter().find(|scope| !scopes::is_known(scope)) {
        return Err(ApiError::bad_request(
            "invalid_scopes",
            format!(
                "unknown scope `{}`; known scopes: {}",
                unknown.chars().take(64).collect::<String>(),
                scopes::ALL.join(", ")
            ),
        ));
    }
    if let Some(missing) = unique
        .iter()
        .find(|scope| !held.iter().any(|h| h == *scope))
    {
        return Err(ApiError::forbidden(format!(
            "cannot grant `{missing}`: the calling token does not hold it"
        )));
    }
    Ok(unique.into_iter().map(str::to_owned).collect())
}

fn validate_expires_in(expires_in: Option<i64>) -> Result<i64, ApiError> {
    let expires_in = expires_in.unwrap_or(DEFAULT_EXPIRES_IN_SECS);
    if !(MIN_EXPIRES_IN_SECS..=MAX_EXPIRES_IN_SECS).contains(&expires_in) {
        return Err(ApiError::bad_request(
            "invalid_expires_in",
            format!("expires_in must be between {MIN_EXPIRES_IN_SECS} and {MAX_EXPIRES_IN_SECS} seconds"),
        ));
    }
    Ok(expires_in)
}

async fn create(
    State(services): State<Services>,
    caller: Authenticated,
    ApiJson(request): ApiJson<CreateRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let principal = caller.require_scope(scopes::TOKENS_WRITE)?;
    let name = display_name(&request.name)?;
    let now = now_epoch_seconds();
    let requested_expiry = now + validate_expires_in(request.expires_in)?;
    let (held, expires_at) = match parent_token(&services, principal).await? {
        // A child never outlives its parent nor holds more than it (the stored record is
        // the authority, not the authorizer's possibly cached context).
        Some(parent) => (
            parent.scopes,
            parent
                .expires_at
                .map_or(requested_expiry, |at| at.min(requested_expiry)),
        ),
        None => (principal.scopes.clone(), requested_expiry),
    };
    let granted = validate_scopes(&request.scopes, &held)?;
    let minted = api_token::mint().map_err(ApiError::internal)?;
    let record = ApiTokenRecord {
        id: uuid::Uuid::now_v7().to_string(),
        token_hash: minted.hash,
        user_id: principal.user_id.clone(),
        tenant_id: principal.tenant_id.clone(),
        name,
        scopes: granted,
        created_at: now,
        last_used_at: None,
        expires_at: Some(expires_at),
        item_version: 1,
    };
    services.api_tokens.create(&record).await?;
    tracing::info!(user_id = %record.user_id, token_id = %record.id, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "id": record.id,
            "token": minted.plaintext,
            "name": record.name,
            "scopes": record.scopes,
            "expires_at": rfc3339(expires_at),
        })),
    ))
}

/// The calling API token's record (`None` for sessions).
async fn parent_token(
    services: &Services,
    principal: &tributary::auth::Principal,
) -> Result<Option<ApiTokenRecord>, ApiError> {
    if principal.token_kind != TokenKind::ApiToken {
        return Ok(None);
    }
    let revoked = || ApiError::unauthorized("the calling API token was revoked");
    let token_id = principal.token_id.as_deref().ok_or_else(revoked)?;
    let record = services
        .api_tokens
        .find_for_user(&principal.user_id, token_id)
        .await?
        .filter(|record| record.expires_at.is_none_or(|at| at > now_epoch_seconds()))
        .ok_or_else(revoked)?;
    Ok(Some(record))
}

async fn list(
    State(services): State<Services>,
    caller: Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = caller.require_scope(scopes::TOKENS_READ)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let (records, next) = services
        .api_tokens
        .list_for_user(&principal.user_id, limit, params.cursor)
        .await?;
    let items: Vec<TokenView> = records.into_iter().map(TokenView::from).collect();
    Ok(Json(serde_json::json!({ "items": items, "next": next })))
}

async fn revoke(
    State(services): State<Services>,
    caller: Authenticated,
    Path(token_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let principal = caller.require_scope(scopes::TOKENS_WRITE)?;
    let record = services
        .api_tokens
        .find_for_user(&principal.user_id, &token_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such API token").with_code("token_not_found"))?;
    services.api_tokens.revoke(&record).await?;
    tracing::info!(user_id = %record.user_id, token_id = %record.id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
