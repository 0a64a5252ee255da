//! The Gmail API v1 calls of one mailbox, and the shapes of their answers
//! (developers.google.com/workspace/gmail/api/reference/rest/v1):
//! - `GET users/{userId}/profile` → `{emailAddress, messagesTotal, threadsTotal, historyId}`.
//! - `GET users/{userId}/threads?q&labelIds&includeSpamTrash&maxResults&pageToken` →
//!   `{threads: [{id, snippet, historyId}], nextPageToken, resultSizeEstimate}`.
//! - `GET users/{userId}/threads/{id}?format=full` → `{id, historyId, messages: [Message]}`,
//!   404 when the thread is gone.
//! - `GET users/{userId}/history?startHistoryId&historyTypes..&maxResults&pageToken` →
//!   `{history: [{id, messages, messagesAdded, messagesDeleted, labelsAdded,
//!   labelsRemoved}], nextPageToken, historyId}`, 404 when `startHistoryId` is too old.
//! - `GET users/{userId}/messages/{messageId}/attachments/{id}` → `{size, data}` (base64url).
//!
//! Quota (per user, 15,000 units a minute; threads.get and threads.list 10 units,
//! attachments.get 5, history.list 2, getProfile 1): every call first takes its units from
//! the mailbox's [`QuotaPacer`], so a sync stays under the limit instead of running into
//! `userRateLimitExceeded`; the kit's governor (Google shape) still backs off on any 403
//! rate-limit or 429 that other clients of the same mailbox cause.
//!
//! Why single gets, not the batch endpoint (`POST /batch/gmail/v1`, multipart/mixed): a
//! batch of n calls costs n calls of quota (Google: "counts toward your usage limit as n
//! requests"), Google advises at most 50 per batch, and the inner answers' 429/403s would
//! bypass the kit's governor and retries (each inner part would need its own re-send). The
//! batch only saves round trips; a few gets in flight per mailbox ([`GET_CONCURRENCY`])
//! save the same round trips while every call keeps the kit's throttling, retries and
//! token refresh.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::connectors::kit::ApiClient;
use crate::connectors::ConnectorError;

/// Thread gets in flight per mailbox.
pub const GET_CONCURRENCY: usize = 8;
/// Gmail's per-user limit is 15,000 units a minute; a sync takes 80 % of it, leaving room
/// for the user's own clients.
pub const DEFAULT_UNITS_PER_MINUTE: u32 = 12_000;

/// The quota units of each call (Gmail's per-method table).
pub(super) mod units {
    pub const GET_PROFILE: u32 = 1;
    pub const HISTORY_LIST: u32 = 2;
    pub const ATTACHMENT_GET: u32 = 5;
    pub const THREADS_GET: u32 = 10;
    pub const THREADS_LIST: u32 = 10;
}

/// A token bucket of quota units: up to a quarter minute's worth at once, refilled at the
/// per-minute rate (so no minute ever exceeds 1.25× the rate, within Gmail's limit at the
/// default 80 %).
#[derive(Debug)]
pub struct QuotaPacer {
    per_second: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl QuotaPacer {
    pub fn new(units_per_minute: u32) -> Self {
        let per_second = f64::from(units_per_minute.max(1)) / 60.0;
        let capacity = (per_second * 15.0).max(f64::from(units::THREADS_GET));
        Self {
            per_second,
            capacity,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Waits until `cost` units are available, then takes them.
    pub async fn take(&self, cost: u32) {
        let cost = f64::from(cost);
        let wait = {
            let mut state = self.state.lock().await;
            let (tokens, at) = &mut *state;
            let now = Instant::now();
            *tokens =
                (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.capacity);
            *at = now;
            *tokens -= cost;
            if *tokens >= 0.0 {
                return;
            }
            Duration::from_secs_f64(-*tokens / self.per_second)
        };
        tokio::time::sleep(wait).await;
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Profile {
    pub(super) email_address: String,
    pub(super) history_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadRef {
    pub(super) id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ThreadPage {
    #[serde(default)]
    pub(super) threads: Vec<ThreadRef>,
    #[serde(default)]
    pub(super) next_page_token: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Thread {
    pub(super) id: String,
    #[serde(default)]
    pub(super) messages: Vec<Message>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Message {
    pub(super) id: String,
    #[serde(default)]
    pub(super) label_ids: Vec<String>,
    /// Epoch milliseconds, as a string.
    #[serde(default)]
    pub(super) internal_date: Option<String>,
    #[serde(default)]
    pub(super) payload: Option<MessagePart>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessagePart {
    #[serde(default)]
    pub(super) mime_type: String,
    #[serde(default)]
    pub(super) filename: String,
    #[serde(default)]
    pub(super) headers: Vec<Header>,
    #[serde(default)]
    pub(super) body: Option<PartBody>,
    #[serde(default)]
    pub(super) parts: Vec<MessagePart>,
}

#[derive(Clone, Debug, Deserialize)]
pub(super) struct Header {
    pub(super) name: String,
    pub(super) value: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PartBody {
    #[serde(default)]
    pub(super) attachment_id: Option<String>,
    #[serde(default)]
    pub(super) size: u64,
    #[serde(default)]
    pub(super) data: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HistoryPage {
    #[serde(default)]
    pub(super) history: Vec<HistoryRecord>,
    #[serde(default)]
    pub(super) next_page_token: Option<String>,
    pub(super) history_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HistoryRecord {
    #[serde(default)]
    pub(super) messages: Vec<MessageRef>,
    #[serde(default)]
    pub(super) messages_added: Vec<Change>,
    #[serde(default)]
    pub(super) messages_deleted: Vec<Change>,
    #[serde(default)]
    pub(super) labels_added: Vec<Change>,
    #[serde(default)]
    pub(super) labels_removed: Vec<Change>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Change {
    pub(super) message: MessageRef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MessageRef {
    #[serde(default)]
    pub(super) thread_id: Option<String>,
}

impl HistoryRecord {
    /// Every thread this record touches, in order.
    pub(super) fn thread_ids(&self) -> impl Iterator<Item = &str> {
        let changes = self
            .messages_added
            .iter()
            .chain(&self.messages_deleted)
            .chain(&self.labels_added)
            .chain(&self.labels_removed)
            .map(|change| &change.message);
        self.messages
            .iter()
            .chain(changes)
            .filter_map(|message| message.thread_id.as_deref())
    }
}

/// The answer of `users.history.list`.
pub(super) enum History {
    Page(HistoryPage),
    /// 404: `startHistoryId` is older than the history Gmail keeps; a full sync is due.
    Expired,
}

/// The calls on one mailbox (`userId` = an address or `me`).
#[derive(Clone, Debug)]
pub struct MailboxClient {
    user: String,
    api: ApiClient,
    pacer: Option<Arc<QuotaPacer>>,
}

impl MailboxClient {
    pub(super) fn new(user: String, api: ApiClient, pacer: Option<Arc<QuotaPacer>>) -> Self {
        Self { user, api, pacer }
    }

    pub(super) fn user(&self) -> &str {
        &self.user
    }

    async fn take(&self, cost: u32) {
        if let Some(pacer) = &self.pacer {
            pacer.take(cost).await;
        }
    }

    fn url(&self, path: &str) -> Result<url::Url, ConnectorError> {
        // The user goes into the path: percent-encode it as one segment.
        let user: String = url::form_urlencoded::byte_serialize(self.user.as_bytes()).collect();
        self.api.url(&format!("/users/{user}{path}"))
    }

    pub(super) async fn profile(&self) -> Result<Profile, ConnectorError> {
        self.take(units::GET_PROFILE).await;
        self.api
            .get(self.url("/profile")?)
            .what("users.getProfile")
            .json()
            .await
    }

    /// One `threads.list` page; `Ok(None)` when Gmail refuses the page token (400).
    pub(super) async fn threads(
        &self,
        q: Option<&str>,
        label_ids: &[String],
        include_spam_trash: bool,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Option<ThreadPage>, ConnectorError> {
        self.take(units::THREADS_LIST).await;
        let mut call = self
            .api
            .get(self.url("/threads")?)
            .what("threads.list")
            .query("maxResults", &max_results.to_string())
            .query_opt("q", q)
            .query_opt("pageToken", page_token);
        for label in label_ids {
            call = call.query("labelIds", label);
        }
        if include_spam_trash {
            call = call.query("includeSpamTrash", "true");
        }
        let response = call.send().await?;
        if response.status == StatusCode::BAD_REQUEST && page_token.is_some() {
            return Ok(None);
        }
        if response.status == StatusCode::BAD_REQUEST {
            return Err(ConnectorError::Config(format!(
                "Gmail rejected the thread search: {}",
                response.message()
            )));
        }
        response.error_for_status()?.json().map(Some)
    }

    /// A thread in full (MIME trees); `None` when it no longer exists.
    pub(super) async fn thread(&self, id: &str) -> Result<Option<Thread>, ConnectorError> {
        self.take(units::THREADS_GET).await;
        let segment: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        let response = self
            .api
            .get(self.url(&format!("/threads/{segment}"))?)
            .what("threads.get")
            .query("format", "full")
            .send()
            .await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        response.error_for_status()?.json().map(Some)
    }

    pub(super) async fn history(
        &self,
        start: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<History, ConnectorError> {
        self.take(units::HISTORY_LIST).await;
        let mut call = self
            .api
            .get(self.url("/history")?)
            .what("history.list")
            .query("startHistoryId", start)
            .query("maxResults", &max_results.to_string())
            .query_opt("pageToken", page_token);
        for kind in ["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"] {
            call = call.query("historyTypes", kind);
        }
        let response = call.send().await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(History::Expired);
        }
        response.error_for_status()?.json().map(History::Page)
    }

    /// An attachment's bytes (`None`: gone since the thread was read).
    pub(super) async fn attachment(
        &self,
        message_id: &str,
        attachment_id: &str,
        max_bytes: usize,
    ) -> Result<Option<Vec<u8>>, ConnectorError> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            data: String,
        }
        self.take(units::ATTACHMENT_GET).await;
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let path = format!(
            "/messages/{}/attachments/{}",
            encode(message_id),
            encode(attachment_id)
        );
        let response = self
            .api
            .get(self.url(&path)?)
            .what("messages.attachments.get")
            .send()
            .await?;
        if response.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Body = response.error_for_status()?.json()?;
        let bytes = decode_base64url(&body.data).ok_or_else(|| {
            ConnectorError::Protocol("an attachment's data is not base64url".into())
        })?;
        Ok((bytes.len() <= max_bytes).then_some(bytes))
    }
}

/// Gmail's base64url (RFC 4648 §5), with or without `=` padding; the standard alphabet is
/// accepted too, as some clients write it.
pub(super) fn decode_base64url(data: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let cleaned: String = data
        .chars()
        .filter(|c| !c.is_ascii_whitespace() && *c != '=')
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(cleaned.as_bytes()).ok()
}
