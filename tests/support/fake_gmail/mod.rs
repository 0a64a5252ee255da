//! A fake Gmail API v1 on loopback, answering the calls of the Gmail connector the way
//! Google documents them (developers.google.com/workspace/gmail/api/reference/rest/v1):
//!
//! - `GET /gmail/v1/users/{userId}/profile` → `{emailAddress, messagesTotal, threadsTotal,
//!   historyId}`.
//! - `GET …/threads?q&labelIds&includeSpamTrash&maxResults&pageToken` → `{threads: [{id,
//!   snippet, historyId}], nextPageToken?, resultSizeEstimate}`, newest thread first; the
//!   search subset of `query.rs` is evaluated per message (SPAM and TRASH left out unless
//!   `includeSpamTrash`), `labelIds` must all be on the thread. Page tokens are opaque and
//!   bound to their search (400 otherwise, or after [`FakeGmail::expire_page_tokens`]).
//! - `GET …/threads/{id}?format=full|metadata|minimal` → `{id, snippet, historyId,
//!   messages}`; `GET …/messages/{id}` → one `Message`; 404 `notFound` when gone.
//! - `GET …/history?startHistoryId&historyTypes&labelId&maxResults&pageToken` → `{history:
//!   [{id, messages, messagesAdded|messagesDeleted|labelsAdded|labelsRemoved}],
//!   nextPageToken?, historyId}`; 404 for a `startHistoryId` older than the kept history
//!   ([`FakeGmail::expire_history`]).
//! - `GET …/messages/{messageId}/attachments/{id}` → `{size, data}` (base64url).
//!
//! Authorisation: a bearer token the shared [`TokenBook`] knows (minted by
//! `FakeGoogleToken` for a service account's subject, or refreshed for the connected
//! user); `userId` is `me` or that user's address (403 "Delegation denied" otherwise).
//! Errors are Google's JSON error shape; [`FakeGmail::rate_limit_next`],
//! [`FakeGmail::too_many_requests_next`] and [`FakeGmail::fail_next`] inject 403
//! `userRateLimitExceeded`, 429 + `Retry-After` and 503.
//!
//! Mailboxes are generated deterministically (`mime::generated`: alternative, HTML-only,
//! mixed with attachments, quoted replies, nested trees, Latin-1), every 25th thread in
//! SPAM and the one before it in TRASH; the control API changes them and writes history.

mod mime;
pub mod query;
mod routes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use crate::google::TokenBook;
pub use mime::Mime;

/// The first history id of every mailbox.
const FIRST_HISTORY_ID: u64 = 10_000;
/// 2024-05-01T00:00:00Z in epoch milliseconds.
const BASE_MILLIS: i64 = 1_714_521_600_000;

#[derive(Clone, Debug)]
pub(crate) struct FakeMessage {
    pub(crate) id: String,
    pub(crate) thread_id: String,
    pub(crate) labels: BTreeSet<String>,
    pub(crate) internal_date: i64,
    pub(crate) history_id: u64,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) message_id: String,
    pub(crate) text: String,
    pub(crate) has_attachment: bool,
    pub(crate) payload: Value,
    pub(crate) apart: mime::Apart,
}

#[derive(Clone, Debug)]
pub(crate) struct HistoryEntry {
    pub(crate) id: u64,
    /// `messageAdded`, `messageDeleted`, `labelAdded`, `labelRemoved`.
    pub(crate) kind: &'static str,
    pub(crate) message_id: String,
    pub(crate) thread_id: String,
    pub(crate) labels_after: Vec<String>,
    pub(crate) changed_labels: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    pub(crate) email: String,
    /// Thread id → its messages in order.
    pub(crate) threads: BTreeMap<String, Vec<FakeMessage>>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) history_id: u64,
    /// A `startHistoryId` below this answers 404.
    pub(crate) history_floor: u64,
}

/// A request as it reached the fake.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The user the bearer token acts for.
    pub user: Option<String>,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Fault {
    UserRateLimit,
    TooManyRequests,
    Unavailable,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) mailboxes: BTreeMap<String, Mailbox>,
    pub(crate) next_id: u64,
    pub(crate) requests: Vec<Recorded>,
    pub(crate) faults: Vec<Fault>,
    pub(crate) faults_served: usize,
    pub(crate) token_epoch: u64,
}

#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) book: TokenBook,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake Gmail state")
    }
}

/// What a test sees of a thread.
#[derive(Clone, Debug)]
pub struct ThreadInfo {
    pub id: String,
    pub subject: String,
    /// Every message's unique marker text, in order.
    pub markers: Vec<String>,
    pub labels: BTreeSet<String>,
    pub message_ids: Vec<String>,
}

pub struct FakeGmail {
    shared: Shared,
    base_url: String,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGmail {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeGmail {
    /// Mailboxes `(address, generated threads)`; tokens are checked against `book`.
    pub async fn start(book: TokenBook, mailboxes: &[(&str, usize)]) -> Self {
        let mut state = State {
            next_id: 0x18f0_0000_0000_0000,
            ..State::default()
        };
        for (tag, (email, count)) in mailboxes.iter().enumerate() {
            let mut mailbox = Mailbox {
                email: email.to_ascii_lowercase(),
                history_id: FIRST_HISTORY_ID,
                history_floor: FIRST_HISTORY_ID,
                ..Mailbox::default()
            };
            for index in 0..*count {
                let thread_id = state.new_id();
                let subject = format!("Thread {index} of {email}");
                for (position, (from, body)) in mime::generated(index, &format!("U{tag}"))
                    .into_iter()
                    .enumerate()
                {
                    let mut labels = BTreeSet::from(["INBOX".to_owned()]);
                    if index % 25 == 24 {
                        labels = BTreeSet::from(["SPAM".to_owned()]);
                    } else if index % 25 == 23 {
                        labels.insert("TRASH".to_owned());
                    }
                    if index % 10 == 0 {
                        labels.insert("IMPORTANT".to_owned());
                    }
                    if index % 7 == 0 {
                        labels.insert("Label_1".to_owned());
                    }
                    let at = BASE_MILLIS + (index as i64) * 3_600_000 + (position as i64) * 60_000;
                    let message = state.message(
                        &mut mailbox,
                        &thread_id,
                        &from,
                        &subject,
                        labels,
                        at,
                        body,
                        position > 0,
                    );
                    mailbox
                        .threads
                        .entry(thread_id.clone())
                        .or_default()
                        .push(message);
                }
            }
            mailbox.history_floor = mailbox.history_id;
            state.mailboxes.insert(mailbox.email.clone(), mailbox);
        }
        let shared = Shared {
            state: Arc::new(Mutex::new(state)),
            book,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let router = routes::router(shared.clone());
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake Gmail");
        });
        Self {
            shared,
            base_url: format!("http://{address}/gmail/v1"),
            handle,
        }
    }

    /// The API root (what `TRIBUTARY_API_URL_GMAIL` names): `http://127.0.0.1:<port>/gmail/v1`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    pub fn api_base(&self) -> reqwest::Url {
        reqwest::Url::parse(&self.base_url).expect("a URL")
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// The next `n` API calls answer 403 `userRateLimitExceeded`.
    pub fn rate_limit_next(&self, n: usize) {
        self.shared
            .lock()
            .faults
            .extend(std::iter::repeat_n(Fault::UserRateLimit, n));
    }

    /// The next `n` API calls answer 429 with `Retry-After: 0`.
    pub fn too_many_requests_next(&self, n: usize) {
        self.shared
            .lock()
            .faults
            .extend(std::iter::repeat_n(Fault::TooManyRequests, n));
    }

    /// The next `n` API calls answer 503.
    pub fn fail_next(&self, n: usize) {
        self.shared
            .lock()
            .faults
            .extend(std::iter::repeat_n(Fault::Unavailable, n));
    }

    /// How many injected faults were answered.
    pub fn faults_served(&self) -> usize {
        self.shared.lock().faults_served
    }

    /// Every page token handed out so far stops working (400).
    pub fn expire_page_tokens(&self) {
        self.shared.lock().token_epoch += 1;
    }

    /// The mailbox keeps no history before now: any older `startHistoryId` answers 404.
    pub fn expire_history(&self, user: &str) {
        let mut state = self.shared.lock();
        let mailbox = state.mailbox_mut(user);
        mailbox.history_floor = mailbox.history_id;
        mailbox.history.clear();
    }

    pub fn history_id(&self, user: &str) -> u64 {
        self.shared.lock().mailbox_mut(user).history_id
    }

    /// Every thread of `user`'s mailbox, newest first.
    pub fn threads(&self, user: &str) -> Vec<ThreadInfo> {
        let mut state = self.shared.lock();
        let mailbox = state.mailbox_mut(user);
        let mut threads: Vec<(i64, ThreadInfo)> = mailbox
            .threads
            .iter()
            .map(|(id, messages)| {
                let newest = messages.iter().map(|m| m.internal_date).max().unwrap_or(0);
                (
                    newest,
                    ThreadInfo {
                        id: id.clone(),
                        subject: messages
                            .first()
                            .map(|m| m.subject.clone())
                            .unwrap_or_default(),
                        markers: messages.iter().filter_map(|m| marker_of(&m.text)).collect(),
                        labels: messages
                            .iter()
                            .flat_map(|m| m.labels.iter().cloned())
                            .collect(),
                        message_ids: messages.iter().map(|m| m.id.clone()).collect(),
                    },
                )
            })
            .collect();
        threads.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.id.cmp(&a.1.id)));
        threads.into_iter().map(|(_, info)| info).collect()
    }

    /// The threads with at least one message outside SPAM and TRASH (the default scope).
    pub fn threads_in_scope(&self, user: &str) -> Vec<ThreadInfo> {
        let mut state = self.shared.lock();
        let mailbox = state.mailbox_mut(user);
        let kept: BTreeSet<String> = mailbox
            .threads
            .iter()
            .filter(|(_, messages)| {
                messages
                    .iter()
                    .any(|m| !m.labels.contains("SPAM") && !m.labels.contains("TRASH"))
            })
            .map(|(id, _)| id.clone())
            .collect();
        drop(state);
        self.threads(user)
            .into_iter()
            .filter(|t| kept.contains(&t.id))
            .collect()
    }

    /// A new thread with one plain message (marker `body`); its id.
    pub fn add_thread(&self, user: &str, subject: &str, body: &str) -> String {
        let mut state = self.shared.lock();
        let thread_id = state.new_id();
        let at = state.clock(user);
        let mut mailbox = std::mem::take(state.mailbox_mut(user));
        let message = state.message(
            &mut mailbox,
            &thread_id,
            "New Sender <new@example.com>",
            subject,
            BTreeSet::from(["INBOX".to_owned()]),
            at,
            Mime::plain(body),
            false,
        );
        mailbox.record("messageAdded", &message, Vec::new());
        mailbox.threads.insert(thread_id.clone(), vec![message]);
        *state.mailbox_mut(user) = mailbox;
        thread_id
    }

    /// A reply in `thread_id` (the text `body`, quoting the previous message); its id.
    pub fn reply(&self, user: &str, thread_id: &str, body: &str) -> String {
        let mut state = self.shared.lock();
        let at = state.clock(user);
        let mut mailbox = std::mem::take(state.mailbox_mut(user));
        let previous = mailbox.threads[thread_id]
            .last()
            .cloned()
            .expect("a message");
        let quoted = format!(
            "{body}\n\nOn Thu, 2 May 2024 at 10:00, {} wrote:\n> {}\n",
            previous.from,
            previous.text.lines().next().unwrap_or_default()
        );
        let message = state.message(
            &mut mailbox,
            thread_id,
            "Replier <replier@example.com>",
            &format!("Re: {}", previous.subject),
            BTreeSet::from(["INBOX".to_owned()]),
            at,
            Mime::plain(&quoted),
            true,
        );
        let id = message.id.clone();
        mailbox.record("messageAdded", &message, Vec::new());
        mailbox
            .threads
            .get_mut(thread_id)
            .expect("thread")
            .push(message);
        *state.mailbox_mut(user) = mailbox;
        id
    }

    /// Deletes a message for good (`messages.delete`); a thread without messages is gone.
    pub fn delete_message(&self, user: &str, message_id: &str) {
        let mut state = self.shared.lock();
        let mailbox = state.mailbox_mut(user);
        let Some(thread_id) = mailbox
            .threads
            .iter()
            .find(|(_, messages)| messages.iter().any(|m| m.id == message_id))
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        let messages = mailbox.threads.get_mut(&thread_id).expect("thread");
        let position = messages
            .iter()
            .position(|m| m.id == message_id)
            .expect("message");
        let message = messages.remove(position);
        if messages.is_empty() {
            mailbox.threads.remove(&thread_id);
        }
        mailbox.record("messageDeleted", &message, Vec::new());
    }

    pub fn delete_thread(&self, user: &str, thread_id: &str) {
        let ids: Vec<String> = self
            .threads(user)
            .into_iter()
            .find(|t| t.id == thread_id)
            .map(|t| t.message_ids)
            .unwrap_or_default();
        for id in ids {
            self.delete_message(user, &id);
        }
    }

    /// Adds and removes labels on every message of a thread (`threads.modify`).
    pub fn label_thread(&self, user: &str, thread_id: &str, add: &[&str], remove: &[&str]) {
        let ids: Vec<String> = self
            .threads(user)
            .into_iter()
            .find(|t| t.id == thread_id)
            .map(|t| t.message_ids)
            .expect("a thread");
        for id in ids {
            self.label_message(user, &id, add, remove);
        }
    }

    /// Adds and removes labels on one message (`messages.modify`).
    pub fn label_message(&self, user: &str, message_id: &str, add: &[&str], remove: &[&str]) {
        let mut state = self.shared.lock();
        let mailbox = state.mailbox_mut(user);
        let mut changes = Vec::new();
        for messages in mailbox.threads.values_mut() {
            for message in messages.iter_mut().filter(|m| m.id == message_id) {
                let added: Vec<String> = add
                    .iter()
                    .filter(|l| message.labels.insert((**l).to_owned()))
                    .map(|l| (*l).to_owned())
                    .collect();
                let removed: Vec<String> = remove
                    .iter()
                    .filter(|l| message.labels.remove(**l))
                    .map(|l| (*l).to_owned())
                    .collect();
                changes.push((message.clone(), added, removed));
            }
        }
        for (message, added, removed) in changes {
            if !added.is_empty() {
                mailbox.record("labelAdded", &message, added);
            }
            if !removed.is_empty() {
                mailbox.record("labelRemoved", &message, removed);
            }
        }
    }

    /// `threads.trash`: every message gets TRASH.
    pub fn trash_thread(&self, user: &str, thread_id: &str) {
        self.label_thread(user, thread_id, &["TRASH"], &[]);
    }

    pub fn untrash_thread(&self, user: &str, thread_id: &str) {
        self.label_thread(user, thread_id, &[], &["TRASH"]);
    }

    /// Reported as spam: SPAM on, INBOX off.
    pub fn spam_thread(&self, user: &str, thread_id: &str) {
        self.label_thread(user, thread_id, &["SPAM"], &["INBOX"]);
    }
}

/// The "Marker <token>" of a generated or added body.
fn marker_of(text: &str) -> Option<String> {
    let start = text.find("Marker ")?;
    let token: String = text[start + 7..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '<')
        .collect();
    Some(format!("Marker {token}"))
}

impl State {
    pub(crate) fn new_id(&mut self) -> String {
        self.next_id += 0x0010_0001;
        format!("{:016x}", self.next_id)
    }

    pub(crate) fn mailbox_mut(&mut self, user: &str) -> &mut Mailbox {
        self.mailboxes
            .get_mut(&user.to_ascii_lowercase())
            .expect("a mailbox of the fake")
    }

    /// A time after every message of the mailbox.
    fn clock(&mut self, user: &str) -> i64 {
        let mailbox = self.mailbox_mut(user);
        mailbox
            .threads
            .values()
            .flatten()
            .map(|m| m.internal_date)
            .max()
            .unwrap_or(BASE_MILLIS)
            + 60_000
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &mut self,
        mailbox: &mut Mailbox,
        thread_id: &str,
        from: &str,
        subject: &str,
        labels: BTreeSet<String>,
        internal_date: i64,
        body: Mime,
        reply: bool,
    ) -> FakeMessage {
        let id = self.new_id();
        mailbox.history_id += 1;
        let message_id = format!("<{id}@mail.example.com>");
        let date = Utc
            .timestamp_millis_opt(internal_date)
            .single()
            .expect("a time")
            .to_rfc2822();
        let subject = if reply && !subject.starts_with("Re:") {
            format!("Re: {subject}")
        } else {
            subject.to_owned()
        };
        let to = format!("Mailbox Owner <{}>", mailbox.email);
        let mut apart = mime::Apart::new();
        let headers = [
            ("From", from.to_owned()),
            ("To", to.clone()),
            ("Subject", subject.clone()),
            ("Date", date),
            ("Message-ID", message_id.clone()),
        ];
        let payload = mime::payload(&body, &headers, &id, &mut apart);
        FakeMessage {
            id,
            thread_id: thread_id.to_owned(),
            labels,
            internal_date,
            history_id: mailbox.history_id,
            from: from.to_owned(),
            to,
            subject,
            message_id,
            text: body.texts().join("\n"),
            has_attachment: body.has_attachment(),
            payload,
            apart,
        }
    }
}

impl Mailbox {
    fn record(&mut self, kind: &'static str, message: &FakeMessage, changed: Vec<String>) {
        self.history_id += 1;
        self.history.push(HistoryEntry {
            id: self.history_id,
            kind,
            message_id: message.id.clone(),
            thread_id: message.thread_id.clone(),
            labels_after: message.labels.iter().cloned().collect(),
            changed_labels: changed,
        });
    }
}

/// A Google JSON error.
pub(crate) fn google_error(
    status: u16,
    message: &str,
    reason: &str,
    status_name: &str,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let code = axum::http::StatusCode::from_u16(status).expect("a status");
    let body = json!({"error": {"code": status, "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
        "status": status_name}});
    (code, axum::Json(body)).into_response()
}
