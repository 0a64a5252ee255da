//! `webhook`: `POST /webhooks/{source}/{connector_id}`. No authorizer: the provider's
//! signature over the raw body, checked in constant time with the connector's own secret,
//! is the authentication. A valid call enqueues a sync; anything else enqueues nothing.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tributary::store::now_epoch_seconds;
use tributary::sync::{SyncEngine, SyncMessage};
use tributary::web::ApiError;

/// Provider payloads (an issue with its changelog) exceed the API's default body limit.
const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

pub fn public_routes(engine: Arc<SyncEngine>) -> Router {
    Router::new()
        .route(
            "/webhooks/{source}/{connector_id}",
            post(receive).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY_BYTES)),
        )
        .with_state(engine)
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "connector_not_found",
        "no such connector webhook",
    )
}

async fn receive(
    State(engine): State<Arc<SyncEngine>>,
    Path((source, connector_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The same answer for an unknown connector, another source, or no webhook configured.
    let record = engine
        .connectors
        .by_id(&connector_id)
        .await?
        .filter(|record| record.source.as_str() == source)
        .ok_or_else(not_found)?;
    let webhook = record.webhook.as_ref().ok_or_else(not_found)?;
    let secret = engine
        .vault()
        .open(&webhook.secret_sealed, &format!("webhook:{}", record.id))
        .map_err(ApiError::internal)?;
    if let Err(error) = tributary::webhooks::verify(
        webhook.scheme,
        &secret,
        &headers,
        &body,
        now_epoch_seconds(),
    ) {
        tracing::info!(connector_id = %record.id, ?error, "webhook signature refused");
        return Err(
            ApiError::unauthorized("the webhook signature is missing or invalid")
                .with_code("invalid_signature"),
        );
    }
    engine
        .queues
        .enqueue(record.source, &SyncMessage::new(&record.id, "webhook"))
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(connector_id = %record.id, "webhook accepted; sync queued");
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": true}))))
}
