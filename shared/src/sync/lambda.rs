//! The `sync-<source>` Lambdas' SQS handler: one record per invocation (batch size 1), run
//! until the invocation's deadline; transient failures are reported so SQS redelivers. A
//! message that meets a busy lease is sent again with a delay (never dropped).

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tracing::Instrument;

use super::{SyncEngine, SyncMessage};

/// The deadline Lambda gives the invocation, as an `Instant`.
pub fn deadline_from(deadline_epoch_ms: u64) -> Instant {
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

pub async fn handle(engine: &SyncEngine, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let message: Result<SyncMessage, _> =
            serde_json::from_str(record.body.as_deref().unwrap_or_default());
        let retry = match message {
            Err(error) => {
                tracing::warn!(%error, "unreadable sync message; leaving it for the dead-letter queue");
                true
            }
            Ok(message) => {
                let span = tracing::info_span!("sync", connector_id = %message.connector_id, trigger = %message.trigger);
                // Instrumented: an entered guard held across the await would leak the span
                // into whatever else the thread polls meanwhile.
                let handled = engine
                    .handle(&message, deadline)
                    .instrument(span.clone())
                    .await;
                let _entered = span.enter();
                match handled {
                    Ok(outcome) => {
                        tracing::info!(?outcome, "sync message handled");
                        false
                    }
                    Err(error) if error.is_transient() => {
                        tracing::warn!(%error, "sync failed; will retry");
                        true
                    }
                    Err(error) => {
                        tracing::error!(%error, "sync failed permanently");
                        false
                    }
                }
            }
        };
        if retry {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
    }
    response
}
