//! `crawl-page`: consumes the crawl queue. Each SQS record is one page of one job; records
//! that must be retried are reported as batch item failures (`ReportBatchItemFailures`), so
//! the rest of the batch is not redelivered, and a record that keeps failing moves to the
//! dead-letter queue after the queue's maxReceiveCount.
//!
//! Every record gets the invocation's deadline: a page that cannot finish before it (or
//! whose origin's Crawl-delay slot is taken) is re-queued with a delay and its record
//! acknowledged, so a batch never runs into the function timeout.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tributary::crawl::engine::{CrawlEngine, Deadline, Disposition};

/// Pages of one batch fetched at once (a batch holds at most 10 records).
const CONCURRENCY: usize = 10;

fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|count| count.parse().ok())
        .unwrap_or(1)
}

async fn handle_record(
    engine: &CrawlEngine,
    message: &SqsMessage,
    deadline: Deadline,
) -> Option<BatchItemFailure> {
    let Some(body) = message.body.as_deref() else {
        tracing::warn!("crawl record without a body");
        return failure(message);
    };
    match engine.handle(body, receive_count(message), deadline).await {
        Disposition::Handled => None,
        Disposition::Retry => failure(message),
    }
}

fn failure(message: &SqsMessage) -> Option<BatchItemFailure> {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message.message_id.clone().unwrap_or_default();
    Some(failure)
}

/// Handles one batch, returning before `deadline` (the Lambda context's deadline).
pub async fn handle(engine: &CrawlEngine, event: SqsEvent, deadline: Deadline) -> SqsBatchResponse {
    let failures: Vec<BatchItemFailure> = futures::stream::iter(event.records.iter())
        .map(|record| handle_record(engine, record, deadline))
        .buffer_unordered(CONCURRENCY)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failures;
    response
}
