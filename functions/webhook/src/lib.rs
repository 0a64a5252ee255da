//! `webhook`: `POST /webhooks/{source}/{connector_id}`. No authorizer: the provider's
//! signature over the raw body, checked in constant time with the connector's own secret,
//! is the authentication. A valid call enqueues a sync; anything else enqueues nothing.
//!
//! Replays: Jira and GitHub deliveries carry no signed timestamp, so each delivery (the
//! provider's delivery id, else the body's hash) is recorded with a conditional put and a
//! TTL; a delivery seen before is answered `200 {"duplicate": true}` and enqueues nothing.
//! Bursts: at most one webhook sync per connector per window
//! (`TRIBUTARY_WEBHOOK_MIN_INTERVAL_SECS`, default 60) plus one at the window's end for the
//! deliveries that came during it; the rest are answered `202 {"coalesced": true}`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tributary::store::connectors::TriggerSlot;
use tributary::store::now_epoch_seconds;
use tributary::sync::{SyncEngine, SyncMessage};
use tributary::web::ApiError;

/// Provider payloads (an issue with its changelog) exceed the API's default body limit.
const MAX_WEBHOOK_BODY_BYTES: usize = 1024 * 1024;

/// How long a delivery id is remembered (providers retry for hours, not days).
pub const DELIVERY_TTL_SECS: i64 = 7 * 24 * 3600;
pub const MIN_INTERVAL_VARIABLE: &str = "TRIBUTARY_WEBHOOK_MIN_INTERVAL_SECS";
pub const DEFAULT_MIN_INTERVAL_SECS: i64 = 60;

#[derive(Clone)]
struct Receiver {
    engine: Arc<SyncEngine>,
    min_interval_secs: i64,
}

/// `TRIBUTARY_WEBHOOK_MIN_INTERVAL_SECS` (1..=3600), else the default.
pub fn min_interval_from_env() -> Result<i64, String> {
    match std::env::var(MIN_INTERVAL_VARIABLE) {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|secs| (1..=3600).contains(secs))
            .ok_or_else(|| {
                format!("{MIN_INTERVAL_VARIABLE}: expected whole seconds between 1 and 3600")
            }),
        _ => Ok(DEFAULT_MIN_INTERVAL_SECS),
    }
}

pub fn public_routes(engine: Arc<SyncEngine>) -> Router {
    let min_interval_secs = min_interval_from_env().unwrap_or_else(|error| {
        tracing::error!(%error, "using the default webhook interval");
        DEFAULT_MIN_INTERVAL_SECS
    });
    public_routes_with(engine, min_interval_secs)
}

/// The route with an explicit trigger window (seconds).
pub fn public_routes_with(engine: Arc<SyncEngine>, min_interval_secs: i64) -> Router {
    Router::new()
        .route(
            "/webhooks/{source}/{connector_id}",
            post(receive).layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY_BYTES)),
        )
        .with_state(Receiver {
            engine,
            min_interval_secs: min_interval_secs.max(1),
        })
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "connector_not_found",
        "no such connector webhook",
    )
}

async fn receive(
    State(receiver): State<Receiver>,
    Path((source, connector_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let engine = &receiver.engine;
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
    let now = now_epoch_seconds();
    let delivery = tributary::webhooks::delivery_key(webhook.scheme, &headers, &body);
    if let Some(delivery) = &delivery {
        let first = engine
            .connectors
            .record_delivery(&record.id, delivery, now + DELIVERY_TTL_SECS)
            .await?;
        if !first {
            tracing::info!(connector_id = %record.id, "webhook delivery replayed; ignored");
            return Ok((
                StatusCode::OK,
                Json(json!({"queued": false, "duplicate": true})),
            ));
        }
    }
    match trigger(&receiver, &record, now).await {
        Ok(answer) => Ok((StatusCode::ACCEPTED, Json(answer))),
        Err(error) => {
            if let Some(delivery) = &delivery {
                // The provider retries a failed delivery with the same id: let it count.
                let _ = engine
                    .connectors
                    .forget_delivery(&record.id, delivery)
                    .await;
            }
            Err(error)
        }
    }
}

/// Enqueues the webhook sync unless one is already planned for this window.
async fn trigger(
    receiver: &Receiver,
    record: &tributary::store::connectors::ConnectorRecord,
    now: i64,
) -> Result<Value, ApiError> {
    let engine = &receiver.engine;
    let message = SyncMessage::new(&record.id, "webhook");
    let slot = engine
        .connectors
        .take_trigger_slot(&record.id, now + receiver.min_interval_secs)
        .await?;
    let answer = match slot {
        TriggerSlot::Now => {
            engine
                .queues
                .enqueue(record.source, &message)
                .await
                .map_err(ApiError::internal)?;
            json!({"queued": true})
        }
        TriggerSlot::Trailing(at) => {
            let delay = Duration::from_secs(u64::try_from(at - now).unwrap_or(0).max(1));
            engine
                .queues
                .enqueue_delayed(record.source, &message, delay)
                .await
                .map_err(ApiError::internal)?;
            json!({"queued": true, "coalesced": true, "delay_secs": delay.as_secs()})
        }
        TriggerSlot::Coalesced => json!({"queued": false, "coalesced": true}),
    };
    tracing::info!(connector_id = %record.id, ?slot, "webhook accepted");
    Ok(answer)
}
