//! One contract for every `Queue` backend: the embedded SQLite queue and SQS (on moto).
//!
//! Each case is an async fn over a [`Backend`]; `contract!` instantiates every case as a
//! `#[tokio::test]` per backend, so a behaviour difference shows up as one failing test
//! named after the backend (`embedded::…` or `sqs::…`).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tributary::queue::{
    create_queue_with_dlq, EmbeddedDeadLetter, EmbeddedQueue, Queue, QueueError, ReceivedMessage,
    SqsQueue,
};
use tributary_e2e::moto;

/// Every test queue moves a message to its dead-letter queue after this many receives.
const MAX_RECEIVES: u32 = 3;
/// Long enough that a received message cannot reappear by itself during a test.
const HIDDEN: Duration = Duration::from_secs(30);
const NOW: Duration = Duration::ZERO;
const MAX_BODY: usize = 262_144;

struct Backend {
    queue: Arc<dyn Queue>,
    /// A second client of the same queue, as another Lambda or process would have (for
    /// the embedded backend: its own SQLite connection).
    peer: Arc<dyn Queue>,
    /// Where `queue` dead-letters messages.
    dlq: Arc<dyn Queue>,
    _dir: Option<TempDir>,
}

/// Removes a test's SQLite directory when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const EMBEDDED_QUEUE: &str = "work";
const EMBEDDED_DLQ: &str = "work-dlq";

fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(moto::unique_name("tributary-queue"));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    TempDir(dir)
}

fn open_embedded(path: &std::path::Path) -> EmbeddedQueue {
    EmbeddedQueue::open(
        path,
        EMBEDDED_QUEUE,
        Some(EmbeddedDeadLetter {
            queue_name: EMBEDDED_DLQ.to_owned(),
            max_receives: MAX_RECEIVES,
        }),
    )
    .expect("open embedded queue")
}

async fn embedded_backend() -> Backend {
    let dir = temp_dir();
    let path = dir.0.join("queue.sqlite3");
    Backend {
        queue: Arc::new(open_embedded(&path)),
        peer: Arc::new(open_embedded(&path)),
        dlq: Arc::new(EmbeddedQueue::open(&path, EMBEDDED_DLQ, None).expect("open dlq")),
        _dir: Some(dir),
    }
}

async fn sqs_backend() -> Backend {
    let client = moto::sqs_client().await;
    let (queue_url, dlq_url) =
        create_queue_with_dlq(&client, &moto::unique_name("contract"), MAX_RECEIVES)
            .await
            .expect("create queue with dlq");
    Backend {
        queue: Arc::new(SqsQueue::new(client.clone(), queue_url.clone())),
        peer: Arc::new(SqsQueue::new(client.clone(), queue_url)),
        dlq: Arc::new(SqsQueue::new(client, dlq_url)),
        _dir: None,
    }
}

fn bodies(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix} {i}")).collect()
}

async fn receive_one(queue: &dyn Queue) -> ReceivedMessage {
    let mut messages = queue.receive(1, HIDDEN, NOW).await.expect("receive");
    assert_eq!(messages.len(), 1, "expected one message, got {messages:?}");
    messages.remove(0)
}

async fn assert_empty(queue: &dyn Queue) {
    let messages = queue.receive(10, HIDDEN, NOW).await.expect("receive");
    assert!(messages.is_empty(), "expected no message, got {messages:?}");
}

/// Receives until a receive comes back empty; panics rather than loop forever.
async fn drain(queue: &dyn Queue, max: u32) -> Vec<ReceivedMessage> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let batch = queue.receive(max, HIDDEN, NOW).await.expect("receive");
        assert!(
            batch.len() <= max as usize,
            "receive returned more than max"
        );
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
    panic!("queue never ran dry after {} messages", all.len());
}

async fn send_then_receive_all(backend: Backend) {
    let queue = &*backend.queue;
    assert!(queue
        .send_batch(Vec::new())
        .await
        .expect("send none")
        .is_empty());

    let sent = bodies("message", 25);
    let ids = queue.send_batch(sent.clone()).await.expect("send");
    assert_eq!(ids.len(), 25);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        25,
        "ids are unique"
    );

    let received = drain(queue, 10).await;
    let received_bodies: HashSet<_> = received.iter().map(|m| m.body.clone()).collect();
    assert_eq!(received.len(), 25, "each message delivered once");
    assert_eq!(received_bodies, sent.into_iter().collect::<HashSet<_>>());
    assert_eq!(
        received.iter().map(|m| &m.id).collect::<HashSet<_>>(),
        ids.iter().collect::<HashSet<_>>(),
        "received ids are the ids send_batch returned"
    );
    assert!(
        received.iter().all(|m| m.receive_count == 1),
        "{received:?}"
    );
    assert_empty(queue).await;
}

async fn received_message_is_hidden_until_visibility_changes(backend: Backend) {
    let queue = &*backend.queue;
    queue
        .send_batch(vec!["hidden".to_owned()])
        .await
        .expect("send");

    let first = receive_one(queue).await;
    assert_eq!((first.body.as_str(), first.receive_count), ("hidden", 1));
    assert_empty(queue).await;
    assert_empty(&*backend.peer).await;

    queue
        .change_visibility(&first.receipt_handle, NOW)
        .await
        .expect("change visibility");
    let second = receive_one(&*backend.peer).await;
    assert_eq!(second.id, first.id);
    assert_eq!(second.body, "hidden");
    assert_eq!(second.receive_count, 2);
    assert_ne!(second.receipt_handle, first.receipt_handle);
}

async fn deleted_message_is_never_delivered_again(backend: Backend) {
    let queue = &*backend.queue;
    queue
        .send_batch(vec!["done".to_owned(), "kept".to_owned()])
        .await
        .expect("send");
    let messages = queue.receive(10, HIDDEN, NOW).await.expect("receive");
    assert_eq!(messages.len(), 2, "{messages:?}");
    let (done, kept): (Vec<_>, Vec<_>) = messages.into_iter().partition(|m| m.body == "done");
    let (done, kept) = (&done[0], &kept[0]);

    queue.delete(&done.receipt_handle).await.expect("delete");
    let revived = queue.change_visibility(&done.receipt_handle, NOW).await;
    assert!(
        matches!(revived, Err(QueueError::InvalidReceipt)),
        "change_visibility after delete: {revived:?}"
    );
    queue
        .change_visibility(&kept.receipt_handle, NOW)
        .await
        .expect("change visibility of the undeleted message");

    let again = drain(queue, 10).await;
    assert_eq!(
        again.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["kept"],
        "only the undeleted message comes back"
    );
}

async fn over_received_message_moves_to_dead_letter_queue(backend: Backend) {
    let queue = &*backend.queue;
    queue
        .send_batch(vec!["poison".to_owned()])
        .await
        .expect("send");

    for attempt in 1..=MAX_RECEIVES {
        let message = receive_one(queue).await;
        assert_eq!(message.body, "poison");
        assert_eq!(message.receive_count, attempt);
        queue
            .change_visibility(&message.receipt_handle, NOW)
            .await
            .expect("change visibility");
    }
    assert_empty(queue).await;

    let dead = receive_one(&*backend.dlq).await;
    assert_eq!(dead.body, "poison");
    assert_empty(queue).await;
}

async fn concurrent_receivers_never_share_a_message(backend: Backend) {
    let ids = backend
        .queue
        .send_batch(bodies("race", 20))
        .await
        .expect("send");

    // Small batches so the two receivers interleave many times.
    let (a, b) = futures::join!(drain(&*backend.queue, 3), drain(&*backend.peer, 3));

    let a_ids: HashSet<_> = a.iter().map(|m| m.id.clone()).collect();
    let b_ids: HashSet<_> = b.iter().map(|m| m.id.clone()).collect();
    assert_eq!(a_ids.len(), a.len(), "receiver a got a message twice");
    assert_eq!(b_ids.len(), b.len(), "receiver b got a message twice");
    assert!(
        a_ids.is_disjoint(&b_ids),
        "delivered to both: {:?}",
        a_ids.intersection(&b_ids).collect::<Vec<_>>()
    );
    let union: HashSet<_> = a_ids.union(&b_ids).cloned().collect();
    assert_eq!(union, ids.into_iter().collect::<HashSet<_>>());
    assert!(a.iter().chain(&b).all(|m| m.receive_count == 1));
}

async fn oversized_body_is_rejected_and_nothing_is_sent(backend: Backend) {
    let queue = &*backend.queue;
    let result = queue
        .send_batch(vec!["fine".to_owned(), "x".repeat(MAX_BODY + 1)])
        .await;
    assert!(
        matches!(result, Err(QueueError::BodyTooLarge(n)) if n == MAX_BODY + 1),
        "{result:?}"
    );
    assert_empty(queue).await;

    // The limit itself is allowed, also next to another body (SQS caps a whole batch).
    let largest = "y".repeat(MAX_BODY);
    queue
        .send_batch(vec![largest.clone(), "small".to_owned()])
        .await
        .expect("send a body of exactly the limit");
    let mut received: Vec<_> = drain(queue, 10).await.into_iter().map(|m| m.body).collect();
    received.sort();
    assert_eq!(received, vec!["small".to_owned(), largest]);
}

async fn long_poll_returns_a_message_sent_while_waiting(backend: Backend) {
    let wait = Duration::from_secs(10);
    let started = Instant::now();
    let (received, sent) = futures::join!(backend.queue.receive(1, HIDDEN, wait), async {
        backend.peer.send_batch(vec!["late".to_owned()]).await
    });
    sent.expect("send");
    let received = received.expect("receive");
    assert_eq!(
        received.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["late"]
    );
    assert!(
        started.elapsed() < wait,
        "returned as soon as the message arrived"
    );
}

async fn delayed_message_stays_hidden_until_its_delay_passes(backend: Backend) {
    let delay = Duration::from_secs(1);
    let started = Instant::now();
    backend
        .queue
        .send_batch_delayed(vec!["later".to_owned()], delay)
        .await
        .expect("send delayed");
    assert_empty(&*backend.peer).await;
    // A long poll returns as soon as the message becomes visible, and not before.
    let received = backend
        .peer
        .receive(1, HIDDEN, Duration::from_secs(10))
        .await
        .expect("receive");
    assert_eq!(
        received.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["later"]
    );
    assert!(started.elapsed() >= delay, "delivered before its delay");
}

macro_rules! contract {
    ($backend:ident, $factory:ident, $($case:ident),+ $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::$factory().await).await;
                }
            )+
        }
    };
}

macro_rules! all_cases {
    ($backend:ident, $factory:ident) => {
        contract!(
            $backend,
            $factory,
            send_then_receive_all,
            received_message_is_hidden_until_visibility_changes,
            deleted_message_is_never_delivered_again,
            over_received_message_moves_to_dead_letter_queue,
            concurrent_receivers_never_share_a_message,
            oversized_body_is_rejected_and_nothing_is_sent,
            long_poll_returns_a_message_sent_while_waiting,
            delayed_message_stays_hidden_until_its_delay_passes,
        );
    };
}

all_cases!(embedded, embedded_backend);
all_cases!(sqs, sqs_backend);

/// Cases only the embedded queue promises: SQS is durable by design, and SQS may accept a
/// stale receipt handle (it "succeeds, but the message might not be deleted").
mod embedded_only {
    use super::*;

    #[tokio::test]
    async fn messages_survive_reopening_the_file() {
        let dir = temp_dir();
        let path = dir.0.join("queue.sqlite3");

        let queue = open_embedded(&path);
        let ids = queue
            .send_batch(vec!["durable".to_owned()])
            .await
            .expect("send");
        drop(queue);

        let queue = open_embedded(&path);
        let message = receive_one(&queue).await;
        assert_eq!(
            (message.id.as_str(), message.body.as_str()),
            (ids[0].as_str(), "durable")
        );
        drop(queue);

        // The receipt and the delete are durable too.
        let queue = open_embedded(&path);
        assert_eq!(queue.approximate_len().expect("len"), 1);
        queue.delete(&message.receipt_handle).await.expect("delete");
        drop(queue);
        let queue = open_embedded(&path);
        assert_eq!(queue.approximate_len().expect("len"), 0);
        assert_empty(&queue).await;
    }

    #[tokio::test]
    async fn stale_receipt_handle_cannot_delete() {
        let dir = temp_dir();
        let queue = open_embedded(&dir.0.join("queue.sqlite3"));
        queue
            .send_batch(vec!["contested".to_owned()])
            .await
            .expect("send");

        let first = receive_one(&queue).await;
        queue
            .change_visibility(&first.receipt_handle, NOW)
            .await
            .expect("change visibility");
        let second = receive_one(&queue).await;

        let stale = queue.delete(&first.receipt_handle).await;
        assert!(
            matches!(stale, Err(QueueError::InvalidReceipt)),
            "{stale:?}"
        );
        let stale = queue.change_visibility(&first.receipt_handle, NOW).await;
        assert!(
            matches!(stale, Err(QueueError::InvalidReceipt)),
            "{stale:?}"
        );
        assert_eq!(
            queue.approximate_len().expect("len"),
            1,
            "the message stays"
        );
        assert_empty(&queue).await;

        queue
            .delete(&second.receipt_handle)
            .await
            .expect("delete with the current handle");
        assert_eq!(queue.approximate_len().expect("len"), 0);
    }

    #[tokio::test]
    async fn queues_in_one_file_are_separate() {
        let dir = temp_dir();
        let path = dir.0.join("queue.sqlite3");
        let work = open_embedded(&path);
        let other = EmbeddedQueue::open(&path, "other", None).expect("open other");
        work.send_batch(vec!["for work".to_owned()])
            .await
            .expect("send");

        assert_empty(&other).await;
        let message = receive_one(&work).await;
        let foreign = other.delete(&message.receipt_handle).await;
        assert!(
            matches!(foreign, Err(QueueError::InvalidReceipt)),
            "{foreign:?}"
        );
        assert_eq!(work.approximate_len().expect("len"), 1);
    }
}
