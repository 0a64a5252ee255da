//! The local backend: SQS semantics on one SQLite file, so `tributary-local` keeps queued
//! work across restarts and several processes (the server and a CLI command) can share it.
//!
//! Every queue named in the file, dead-letter queues included, is rows of one table
//! (`queue_messages`) keyed by queue name; the file may also hold other modules' tables,
//! which this module never touches. Each receive is one `BEGIN IMMEDIATE` transaction, so
//! two receivers (threads or processes) can never take the same message.
//!
//! Durability: the file is in WAL mode with `synchronous=NORMAL`, so a send, receive or
//! delete costs WAL writes but no fsync (WAL checkpoints, every ~1000 pages written, do).
//! A crash of the process loses nothing: committed WAL frames are in the OS already. An
//! OS crash or power loss can lose the last commits before the latest sync (the file
//! stays consistent; a suffix of its history is gone): a deleted message comes back, a
//! received one is visible again, a sent one is gone. Redelivery is what every consumer
//! handles anyway (page and sync messages are idempotent); a lost send is what the sync
//! scheduler (a connector due again is enqueued again) and the crawl sweeper (a job with
//! queued URLs and no progress is ended, see `crawl::sweep`) exist for. An fsync per
//! message was the single largest cost of a local crawl.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

use crate::sqlite::Immediate;

use super::{
    check_body_sizes, Queue, QueueError, ReceivedMessage, MAX_DELAY, MAX_RECEIVE,
    MAX_VISIBILITY_TIMEOUT, MAX_WAIT,
};

/// Another process may hold the write lock briefly; waiting beats failing the call.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a long poll looks for a message again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// `seq` keeps send order (SQS standard queues are roughly FIFO and handlers expect that
/// locally too); `visible_at` is milliseconds since the epoch; `receipt_handle` is the
/// latest delivery's handle, NULL before the first delivery and after a move to a
/// dead-letter queue, so older handles stop working.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS queue_messages (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        queue          TEXT    NOT NULL,
        id             TEXT    NOT NULL,
        body           TEXT    NOT NULL,
        sent_at        INTEGER NOT NULL,
        visible_at     INTEGER NOT NULL,
        receive_count  INTEGER NOT NULL DEFAULT 0,
        receipt_handle TEXT
    );
    -- Receives walk (queue, seq); an index on visible_at only cost a write per delivery.
    DROP INDEX IF EXISTS queue_messages_visible;
    CREATE INDEX IF NOT EXISTS queue_messages_order
        ON queue_messages (queue, seq);
    CREATE INDEX IF NOT EXISTS queue_messages_receipt
        ON queue_messages (receipt_handle) WHERE receipt_handle IS NOT NULL;
";

/// Where a message goes once it has been received `max_receives` times without being
/// deleted: the embedded counterpart of an SQS RedrivePolicy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedDeadLetter {
    /// A queue in the same file; open it with `EmbeddedQueue::open(path, queue_name, None)`
    /// to read what landed there.
    pub queue_name: String,
    /// As SQS's maxReceiveCount: at least 1.
    pub max_receives: u32,
}

/// A queue in a SQLite file. Clones share one connection.
#[derive(Debug, Clone)]
pub struct EmbeddedQueue {
    // Used on the calling thread (see `with_conn`): a file another process holds can make
    // a call wait up to BUSY_TIMEOUT there, as the embedded store's calls can.
    conn: Arc<Mutex<Connection>>,
    name: Arc<str>,
    dead_letter: Option<Arc<EmbeddedDeadLetter>>,
}

impl EmbeddedQueue {
    /// Opens (creating if needed) the file and the queue table. The queue itself needs no
    /// creating: a queue is just the rows carrying its name.
    pub fn open(
        path: &Path,
        name: &str,
        dead_letter: Option<EmbeddedDeadLetter>,
    ) -> Result<Self, QueueError> {
        if let Some(dead_letter) = &dead_letter {
            if dead_letter.max_receives == 0 {
                return Err(QueueError::Backend(
                    "dead-letter max_receives must be at least 1".to_owned(),
                ));
            }
            if dead_letter.queue_name == name {
                return Err(QueueError::Backend(format!(
                    "queue {name:?} cannot be its own dead-letter queue"
                )));
            }
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // WAL lets readers in other processes proceed while one writes.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(QueueError::Backend(format!(
                "{} does not support WAL (journal_mode is {mode})",
                path.display()
            )));
        }
        // NORMAL: a commit reaches the OS (so survives a crash of the process) without an
        // fsync; only checkpoints sync. See the module documentation for what an OS crash
        // can lose and why every user of this queue tolerates it.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            name: Arc::from(name),
            dead_letter: dead_letter.map(Arc::new),
        })
    }

    /// Visible and in-flight messages together, like SQS's ApproximateNumberOfMessages plus
    /// ApproximateNumberOfMessagesNotVisible.
    pub fn approximate_len(&self) -> Result<usize, QueueError> {
        let conn = lock(&self.conn);
        let count: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM queue_messages WHERE queue = ?1",
                [&*self.name],
                |row| row.get(0),
            )
            .map_err(db)?;
        usize::try_from(count).map_err(|err| QueueError::Backend(err.to_string()))
    }

    /// Runs SQLite work on the calling thread, as the embedded store does. A queue call is
    /// one short transaction; handing it to the blocking pool cost a thread wake-up and a
    /// hand-back for each of a crawl page's three calls (receive, send, delete), more CPU
    /// on this machine kind than the transaction itself.
    async fn with_conn<T, F>(&self, work: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static,
    {
        work(&mut lock(&self.conn))
    }

    async fn receive_once(
        &self,
        max: u32,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let name = Arc::clone(&self.name);
        let dead_letter = self.dead_letter.clone();
        self.with_conn(move |conn| {
            receive_now(
                conn,
                &name,
                dead_letter.as_deref(),
                max,
                millis(visibility_timeout),
            )
        })
        .await
    }
}

#[async_trait::async_trait]
impl Queue for EmbeddedQueue {
    async fn send_batch_delayed(
        &self,
        bodies: Vec<String>,
        delay: Duration,
    ) -> Result<Vec<String>, QueueError> {
        check_body_sizes(&bodies)?;
        let delay = millis(delay.min(MAX_DELAY));
        if bodies.is_empty() {
            return Ok(Vec::new());
        }
        let name = Arc::clone(&self.name);
        self.with_conn(move |conn| {
            let tx = Immediate::begin(conn).map_err(db)?;
            let now = now_millis()?;
            let mut ids = Vec::with_capacity(bodies.len());
            {
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO queue_messages (queue, id, body, sent_at, visible_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(db)?;
                for body in &bodies {
                    let id = uuid::Uuid::now_v7().to_string();
                    insert
                        .execute(params![&*name, &id, body, now, now.saturating_add(delay)])
                        .map_err(db)?;
                    ids.push(id);
                }
            }
            tx.commit().map_err(db)?;
            Ok(ids)
        })
        .await
    }

    async fn receive(
        &self,
        max: u32,
        visibility_timeout: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = max.clamp(1, MAX_RECEIVE);
        let visibility_timeout = visibility_timeout.min(MAX_VISIBILITY_TIMEOUT);
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        loop {
            let messages = self.receive_once(max, visibility_timeout).await?;
            let now = tokio::time::Instant::now();
            if !messages.is_empty() || now >= deadline {
                return Ok(messages);
            }
            tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
        }
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        let name = Arc::clone(&self.name);
        let receipt_handle = receipt_handle.to_owned();
        self.with_conn(move |conn| {
            let deleted = conn
                .prepare_cached(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt_handle = ?2",
                )
                .and_then(|mut statement| statement.execute(params![&*name, receipt_handle]))
                .map_err(db)?;
            if deleted == 0 {
                return Err(QueueError::InvalidReceipt);
            }
            Ok(())
        })
        .await
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        timeout: Duration,
    ) -> Result<(), QueueError> {
        let name = Arc::clone(&self.name);
        let receipt_handle = receipt_handle.to_owned();
        let timeout = millis(timeout.min(MAX_VISIBILITY_TIMEOUT));
        self.with_conn(move |conn| {
            let visible_at = now_millis()?.saturating_add(timeout);
            let changed = conn
                .prepare_cached(
                    "UPDATE queue_messages SET visible_at = ?3
                     WHERE queue = ?1 AND receipt_handle = ?2",
                )
                .and_then(|mut statement| {
                    statement.execute(params![&*name, receipt_handle, visible_at])
                })
                .map_err(db)?;
            if changed == 0 {
                return Err(QueueError::InvalidReceipt);
            }
            Ok(())
        })
        .await
    }
}

/// One atomic receive: takes up to `max` visible messages in send order, moving the
/// over-received ones to the dead-letter queue on the way (as SQS does, they do not count
/// towards `max`).
fn receive_now(
    conn: &mut Connection,
    queue: &str,
    dead_letter: Option<&EmbeddedDeadLetter>,
    max: u32,
    visibility_timeout_ms: i64,
) -> Result<Vec<ReceivedMessage>, QueueError> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let tx = Immediate::begin(conn).map_err(db)?;
    let now = now_millis()?;
    let visible_at = now.saturating_add(visibility_timeout_ms);
    let mut received = Vec::new();
    // A cursor, not "visible_at <= now" alone: with a zero visibility timeout a message just
    // received is still visible and must not be taken twice in one receive.
    let mut after_seq = 0_i64;
    loop {
        let wanted = max - received.len();
        let candidates = {
            let mut select = tx
                .prepare_cached(
                    // In seq order, stopping at the first `wanted` visible ones: by
                    // (queue, visible_at) SQLite would read and sort every visible message
                    // of a long crawl frontier on each receive. What it steps over here is
                    // only what is in flight or delayed.
                    "SELECT seq, id, body, receive_count
                     FROM queue_messages INDEXED BY queue_messages_order
                     WHERE queue = ?1 AND seq > ?3 AND visible_at <= ?2
                     ORDER BY seq LIMIT ?4",
                )
                .map_err(db)?;
            let rows = select
                .query_map(
                    params![
                        queue,
                        now,
                        after_seq,
                        i64::try_from(wanted).unwrap_or(i64::MAX)
                    ],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, u32>(3)?,
                        ))
                    },
                )
                .map_err(db)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db)?
        };
        let fetched = candidates.len();
        for (seq, id, body, receive_count) in candidates {
            after_seq = seq;
            if let Some(dead_letter) = dead_letter {
                if receive_count >= dead_letter.max_receives {
                    // Keeps id, body and receive count, like an SQS redrive.
                    tx.prepare_cached(
                        "UPDATE queue_messages
                         SET queue = ?2, visible_at = ?3, receipt_handle = NULL
                         WHERE seq = ?1",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![seq, dead_letter.queue_name, now])
                    })
                    .map_err(db)?;
                    tracing::warn!(
                        queue,
                        dead_letter_queue = %dead_letter.queue_name,
                        message_id = %id,
                        receive_count,
                        "message moved to the dead-letter queue"
                    );
                    continue;
                }
            }
            let receipt_handle = uuid::Uuid::now_v7().to_string();
            let receive_count = receive_count.saturating_add(1);
            tx.prepare_cached(
                "UPDATE queue_messages
                 SET visible_at = ?2, receive_count = ?3, receipt_handle = ?4
                 WHERE seq = ?1",
            )
            .and_then(|mut statement| {
                statement.execute(params![seq, visible_at, receive_count, receipt_handle])
            })
            .map_err(db)?;
            received.push(ReceivedMessage {
                id,
                body,
                receipt_handle,
                receive_count,
            });
        }
        if received.len() >= max || fetched < wanted {
            break;
        }
    }
    tx.commit().map_err(db)?;
    Ok(received)
}

/// A panic while holding the lock cannot leave a half-applied change behind (an
/// unfinished transaction rolls back when dropped), so a poisoned lock is still usable.
fn lock(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_millis() -> Result<i64, QueueError> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| QueueError::Backend(format!("system clock before 1970: {err}")))?;
    Ok(millis(since_epoch))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn db(err: rusqlite::Error) -> QueueError {
    QueueError::Backend(format!("sqlite: {err}"))
}
