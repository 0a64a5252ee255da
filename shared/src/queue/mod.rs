//! Work queues: crawl pages, sync continuations and scheduled syncs travel as messages.
//!
//! In the cloud the queue is SQS ([`sqs::SqsQueue`]); `tributary-local` and tests use a
//! SQLite-backed queue ([`embedded::EmbeddedQueue`]) with the same semantics, so a handler
//! behaves the same whichever backend feeds it. Both share one contract test suite
//! (`tests/e2e/queue_contract.rs`).
//!
//! Delivery is at least once: a consumer must delete a message after handling it, or it is
//! delivered again once its visibility timeout ends. A message received more often than the
//! queue's dead-letter `max_receives` is moved to the dead-letter queue instead of being
//! delivered again, so one poison message cannot stall a queue forever.

use std::time::Duration;

#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "sqs")]
pub mod sqs;

#[cfg(feature = "embedded")]
pub use embedded::{EmbeddedDeadLetter, EmbeddedQueue};
#[cfg(feature = "sqs")]
pub use sqs::{create_queue_with_dlq, SqsQueue};

/// SQS refuses larger messages; the embedded queue refuses them too so that a message that
/// works locally also works in the cloud.
pub const MAX_BODY_BYTES: usize = 262_144;

/// SQS returns at most 10 messages per receive; `max` is clamped to `1..=MAX_RECEIVE`.
pub const MAX_RECEIVE: u32 = 10;

/// SQS's upper bound for a visibility timeout; longer requests are clamped to it.
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);

/// SQS's upper bound for a message's initial delay (`DelaySeconds`); longer delays are
/// clamped to it.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);

/// SQS's upper bound for a long poll; longer waits are clamped to it.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// A message handed to one receiver, hidden from the others until its visibility timeout
/// ends, it is deleted, or its visibility is changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// Stable across deliveries (and when moved to the dead-letter queue): use it to
    /// recognise a redelivery.
    pub id: String,
    pub body: String,
    /// Valid only until the message is received again: delete or change visibility with
    /// the handle of the latest delivery.
    pub receipt_handle: String,
    /// 1 on the first delivery; lets a handler notice it is retrying a message.
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("message body too large: {0} bytes (max 262144)")]
    BodyTooLarge(usize),
    /// The message was deleted, moved to the dead-letter queue or received again since this
    /// handle was issued: another consumer may own it now, so the caller must not act on it.
    #[error("unknown or expired receipt handle")]
    InvalidReceipt,
    #[error("queue backend error: {0}")]
    Backend(String),
}

#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Sends every body (any count; chunked into batches of 10 for SQS). Returns message ids in order.
    ///
    /// Every body is checked against [`MAX_BODY_BYTES`] before anything is sent, so an
    /// oversized body enqueues nothing. On SQS a backend error after the first chunk may
    /// leave earlier chunks enqueued; retrying then duplicates them, which at-least-once
    /// consumers already tolerate.
    async fn send_batch(&self, bodies: Vec<String>) -> Result<Vec<String>, QueueError> {
        self.send_batch_delayed(bodies, Duration::ZERO).await
    }

    /// Like [`Queue::send_batch`], but no receiver sees the messages before `delay` has
    /// passed (SQS `DelaySeconds`, clamped to [`MAX_DELAY`]; SQS rounds up to whole seconds).
    /// Work that cannot be done now (a busy lease, a crawl-delay slot) goes back this way
    /// instead of sleeping inside an invocation.
    async fn send_batch_delayed(
        &self,
        bodies: Vec<String>,
        delay: Duration,
    ) -> Result<Vec<String>, QueueError>;

    /// Up to `max` (1..=10) messages, hidden from other receivers for `visibility_timeout`.
    /// `wait` is a long-poll upper bound (SQS WaitTimeSeconds; embedded: poll until a message or wait elapses; Duration::ZERO = return at once).
    ///
    /// Out-of-range arguments are clamped to SQS's limits ([`MAX_RECEIVE`],
    /// [`MAX_VISIBILITY_TIMEOUT`], [`MAX_WAIT`]) rather than rejected. SQS counts whole
    /// seconds, so it rounds sub-second durations up; the embedded queue counts milliseconds.
    async fn receive(
        &self,
        max: u32,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Acknowledges a handled message so it is never delivered again.
    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError>;

    /// Makes a received message visible again after `timeout` (ZERO = now), like SQS ChangeMessageVisibility.
    ///
    /// ZERO hands a message that cannot be handled now back to the queue at once; a longer
    /// timeout extends the time a slow handler keeps it.
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError>;
}

/// Rejects the first oversized body, before anything is sent.
#[cfg_attr(not(any(feature = "sqs", feature = "embedded")), allow(dead_code))]
pub(crate) fn check_body_sizes(bodies: &[String]) -> Result<(), QueueError> {
    match bodies.iter().find(|body| body.len() > MAX_BODY_BYTES) {
        Some(body) => Err(QueueError::BodyTooLarge(body.len())),
        None => Ok(()),
    }
}

/// Whole seconds, rounded up so a message never becomes visible earlier than asked.
#[cfg_attr(not(feature = "sqs"), allow(dead_code))]
pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}
