//! The cloud backend: one SQS standard queue. Its dead-letter queue is the queue's
//! RedrivePolicy, set by infrastructure (template.yaml) or [`create_queue_with_dlq`], so SQS
//! itself moves over-received messages and this adapter never has to.

use std::ops::Range;
use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::types::{
    Message, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};

use super::{
    ceil_secs, check_body_sizes, Queue, QueueError, ReceivedMessage, MAX_BODY_BYTES, MAX_DELAY,
    MAX_RECEIVE, MAX_VISIBILITY_TIMEOUT, MAX_WAIT,
};

/// SendMessageBatch takes at most 10 entries.
const MAX_BATCH_ENTRIES: usize = 10;

/// SQS also caps a whole SendMessageBatch request's bodies at 256 KiB, so ten large bodies
/// must be split further than ten to a batch.
const MAX_BATCH_BYTES: usize = MAX_BODY_BYTES;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    async fn send_chunk(
        &self,
        bodies: &[String],
        delay_seconds: i32,
    ) -> Result<Vec<String>, QueueError> {
        let entries = bodies
            .iter()
            .enumerate()
            .map(|(index, body)| {
                // Entry ids only need to be unique within the request; the index maps each
                // result back to its body, because SQS does not keep the entries' order.
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body)
                    .delay_seconds(delay_seconds)
                    .build()
                    .map_err(|err| QueueError::Backend(DisplayErrorContext(&err).to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(backend)?;

        if !output.failed().is_empty() {
            let failures = output
                .failed()
                .iter()
                .map(|entry| {
                    format!(
                        "entry {}: {} {}",
                        entry.id(),
                        entry.code(),
                        entry.message().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(QueueError::Backend(format!(
                "SendMessageBatch failed for {} of {} messages: {failures}",
                output.failed().len(),
                bodies.len()
            )));
        }

        let mut ids: Vec<Option<String>> = vec![None; bodies.len()];
        for entry in output.successful() {
            let slot = entry
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|index| ids.get_mut(index))
                .ok_or_else(|| {
                    QueueError::Backend(format!(
                        "SendMessageBatch reported an unknown entry id {:?}",
                        entry.id()
                    ))
                })?;
            *slot = Some(entry.message_id().to_owned());
        }
        ids.into_iter().collect::<Option<Vec<_>>>().ok_or_else(|| {
            QueueError::Backend("SendMessageBatch did not report every message".to_owned())
        })
    }
}

#[async_trait::async_trait]
impl Queue for SqsQueue {
    async fn send_batch_delayed(
        &self,
        bodies: Vec<String>,
        delay: Duration,
    ) -> Result<Vec<String>, QueueError> {
        check_body_sizes(&bodies)?;
        let delay_seconds = whole(ceil_secs(delay.min(MAX_DELAY)));
        let mut ids = Vec::with_capacity(bodies.len());
        for range in batch_ranges(&bodies) {
            ids.extend(self.send_chunk(&bodies[range], delay_seconds).await?);
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        max: u32,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(whole(u64::from(max.clamp(1, MAX_RECEIVE))))
            .visibility_timeout(whole(ceil_secs(
                visibility_timeout.min(MAX_VISIBILITY_TIMEOUT),
            )))
            .wait_time_seconds(whole(ceil_secs(wait.min(MAX_WAIT))))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(backend)?;
        output.messages().iter().map(received).collect()
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        match self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let invalid = err.as_service_error().is_some_and(|service| {
                    matches!(service, DeleteMessageError::ReceiptHandleIsInvalid(_))
                        || names_bad_receipt_handle(service)
                });
                Err(if invalid {
                    QueueError::InvalidReceipt
                } else {
                    backend(err)
                })
            }
        }
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(whole(ceil_secs(timeout.min(MAX_VISIBILITY_TIMEOUT))))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let invalid = err.as_service_error().is_some_and(|service| {
                    matches!(
                        service,
                        ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_)
                            | ChangeMessageVisibilityError::MessageNotInflight(_)
                    ) || names_bad_receipt_handle(service)
                });
                Err(if invalid {
                    QueueError::InvalidReceipt
                } else {
                    backend(err)
                })
            }
        }
    }
}

/// Creates `<name>-dlq` and then `name` with a RedrivePolicy that moves a message to it
/// after `max_receives` receives, the same shape template.yaml deploys, so tests and dev
/// tooling exercise the real redrive. Standard (not FIFO) queues. Returns
/// `(queue url, dead-letter queue url)`.
pub async fn create_queue_with_dlq(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: u32,
) -> Result<(String, String), QueueError> {
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(backend)?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| QueueError::Backend("CreateQueue returned no queue URL".to_owned()))?;
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(backend)?
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| QueueError::Backend("GetQueueAttributes returned no QueueArn".to_owned()))?;
    let redrive_policy = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receives,
    })
    .to_string();
    let queue_url = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive_policy)
        .send()
        .await
        .map_err(backend)?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| QueueError::Backend("CreateQueue returned no queue URL".to_owned()))?;
    Ok((queue_url, dlq_url))
}

/// Consecutive ranges of `bodies`, each within SendMessageBatch's entry and size limits.
/// Every body is at most [`MAX_BODY_BYTES`] (checked before), so each fits some batch.
fn batch_ranges(bodies: &[String]) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (index, body) in bodies.iter().enumerate() {
        if index > start
            && (index - start == MAX_BATCH_ENTRIES || bytes + body.len() > MAX_BATCH_BYTES)
        {
            ranges.push(start..index);
            start = index;
            bytes = 0;
        }
        bytes += body.len();
    }
    if start < bodies.len() {
        ranges.push(start..bodies.len());
    }
    ranges
}

fn received(message: &Message) -> Result<ReceivedMessage, QueueError> {
    let missing = |field: &str| QueueError::Backend(format!("ReceiveMessage returned no {field}"));
    let receive_count = message
        .attributes()
        .and_then(|attributes| attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|count| count.parse::<u32>().ok())
        .ok_or_else(|| missing("ApproximateReceiveCount"))?;
    Ok(ReceivedMessage {
        id: message
            .message_id()
            .ok_or_else(|| missing("MessageId"))?
            .to_owned(),
        body: message.body().ok_or_else(|| missing("Body"))?.to_owned(),
        receipt_handle: message
            .receipt_handle()
            .ok_or_else(|| missing("ReceiptHandle"))?
            .to_owned(),
        receive_count,
    })
}

/// SQS reports a handle whose message was deleted or re-received as `InvalidParameterValue`
/// ("Value … for parameter ReceiptHandle is invalid. Reason: Message does not exist or is
/// not available for visibility timeout change."), not only as the modelled errors.
fn names_bad_receipt_handle(error: &impl ProvideErrorMetadata) -> bool {
    error
        .code()
        .is_some_and(|code| code.ends_with("InvalidParameterValue"))
        && error
            .message()
            .is_some_and(|message| message.contains("ReceiptHandle"))
}

/// SQS takes counts and seconds as i32; callers clamp to SQS's limits before this.
fn whole(value: u64) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn backend<E, R>(err: SdkError<E, R>) -> QueueError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    QueueError::Backend(DisplayErrorContext(&err).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(lengths: &[usize]) -> Vec<Range<usize>> {
        let bodies: Vec<String> = lengths.iter().map(|len| "x".repeat(*len)).collect();
        batch_ranges(&bodies)
    }

    #[test]
    fn batches_hold_at_most_ten_entries() {
        assert_eq!(sizes(&[1; 25]), vec![0..10, 10..20, 20..25]);
        assert_eq!(sizes(&[1; 10]), vec![0..10]);
        assert!(sizes(&[]).is_empty());
    }

    #[test]
    fn batches_stay_within_the_request_size_limit() {
        assert_eq!(
            sizes(&[MAX_BODY_BYTES, 1, MAX_BODY_BYTES / 2, MAX_BODY_BYTES / 2, 1]),
            vec![0..1, 1..3, 3..5]
        );
    }
}
