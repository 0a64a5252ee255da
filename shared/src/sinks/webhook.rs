//! A sink that POSTs documents to an HTTP endpoint (a RAG pipeline's ingest hook).
//!
//! # Requests
//!
//! - deliver: `{"event": "documents.upserted", "documents": [<Document>, ...]}`, at most
//!   [`MAX_BATCH_DOCUMENTS`] documents and about [`MAX_BATCH_BYTES`] of body per request (a
//!   single document larger than that is sent alone). The receiver creates or replaces each
//!   document by `id`.
//! - delete: `{"event": "documents.deleted", "ids": ["...", ...]}`, at most
//!   [`MAX_DELETE_IDS`] ids per request. Unknown ids must be ignored.
//!
//! Both are sent with `Content-Type: application/json`. Batches are sent in order and the
//! first failure stops the call; since every request is idempotent the caller retries the
//! whole call.
//!
//! # File documents
//!
//! A file document ([`Document::file`]) carries `"file": {"name", "mime_type", "size",
//! "sha256", "attached"}` (and `"markdown": ""`). Up to [`FILE_MAX_BYTES_ENV`] bytes
//! (default [`DEFAULT_FILE_MAX_BYTES`]) it is sent alone, `attached: true`, as
//! `Content-Type: multipart/form-data; boundary=…` with exactly two parts, in this order:
//!
//! 1. `Content-Disposition: form-data; name="document"`, `Content-Type: application/json`:
//!    the same envelope as above, `{"event": "documents.upserted", "documents": [<the
//!    document>]}`;
//! 2. `Content-Disposition: form-data; name="file"; filename="<name>"` (quotes, `\`, CR and
//!    LF in the name replaced by `_`), `Content-Type: <mime_type>`: the original bytes.
//!
//! A larger file goes in the JSON batches with `attached: false` and no bytes (fetch it
//! from the source by `url`/`source_id` if needed). Deletions are the same for every
//! document. The signature covers the multipart body's exact bytes, as for JSON; the bytes
//! are streamed from the spool twice (sign, then send), never held whole in memory.
//!
//! # Signature (Stripe/Slack style)
//!
//! Every request carries two headers:
//!
//! ```text
//! X-Tributary-Timestamp: <unix seconds when the request was signed>
//! X-Tributary-Signature: v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
//! ```
//!
//! The secret is the deployment's `TRIBUTARY_WEBHOOK_SINK_SECRET`. A receiver recomputes the
//! HMAC over the timestamp header, a `.`, and the exact body bytes (before any JSON
//! parsing), compares in constant time, and rejects timestamps more than a few minutes from
//! its clock to stop replays; [`verify`] does exactly that. The header may hold several
//! comma-separated `v1=` entries (e.g. during a key rotation); any matching one is enough.
//!
//! # Responses
//!
//! 2xx: delivered. 408, 429, 5xx and network errors: [`SinkError::Unavailable`] (the caller
//! retries through its queue; `Retry-After` is not interpreted here). Any other status:
//! [`SinkError::Rejected`], with the start of the response body as the message.
//!
//! Document bodies and the secret are never logged.

use std::fmt;
use std::ops::Range;

use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Sink, SinkError};
use crate::connectors::document::Document;

pub const TIMESTAMP_HEADER: &str = "X-Tributary-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-Tributary-Signature";
pub const UPSERTED_EVENT: &str = "documents.upserted";
pub const DELETED_EVENT: &str = "documents.deleted";
pub const MAX_BATCH_DOCUMENTS: usize = 50;
pub const MAX_BATCH_BYTES: usize = 5_000_000;
pub const MAX_DELETE_IDS: usize = 1_000;
/// Largest file sent with its bytes (multipart); larger ones are sent as metadata only.
pub const FILE_MAX_BYTES_ENV: &str = "TRIBUTARY_WEBHOOK_FILE_MAX_BYTES";
pub const DEFAULT_FILE_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// How far a receiver should let the timestamp drift from its clock (a suggestion for
/// [`verify`]'s `tolerance_secs`).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// How much of an error response's body is kept in [`SinkError::Rejected`]'s message.
const MAX_ERROR_BODY: usize = 512;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct WebhookSink {
    client: crate::http::GuardedClient,
    url: url::Url,
    secret: Vec<u8>,
    file_max_bytes: u64,
}

/// [`FILE_MAX_BYTES_ENV`] from a lookup: unset or empty is the default; anything but a
/// whole number of bytes is an error naming the variable.
pub fn file_max_bytes_from(lookup: impl Fn(&str) -> Option<String>) -> Result<u64, SinkError> {
    match lookup(FILE_MAX_BYTES_ENV).filter(|raw| !raw.trim().is_empty()) {
        None => Ok(DEFAULT_FILE_MAX_BYTES),
        Some(raw) => raw.trim().parse().map_err(|_| {
            SinkError::Config(format!("{FILE_MAX_BYTES_ENV} must be a number of bytes"))
        }),
    }
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSink")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// `client` should be the deployment's SSRF-guarded client; the URL's scheme is checked
    /// by [`super::build`].
    pub fn new(client: crate::http::GuardedClient, url: url::Url, secret: Vec<u8>) -> Self {
        Self {
            client,
            url,
            secret,
            file_max_bytes: DEFAULT_FILE_MAX_BYTES,
        }
    }

    /// Files up to `max` bytes are sent with their bytes (see the module documentation).
    pub fn with_file_max_bytes(mut self, max: u64) -> Self {
        self.file_max_bytes = max;
        self
    }

    async fn post(
        &self,
        body: Vec<u8>,
        event: &'static str,
        items: usize,
    ) -> Result<(), SinkError> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&self.secret, timestamp, &body);
        let bytes = body.len() as u64;
        self.send(
            reqwest::Body::from(body),
            "application/json".into(),
            timestamp,
            signature,
            (event, items, bytes),
        )
        .await
    }

    /// One file document with its bytes: signed over a first pass through the spool, then
    /// streamed.
    async fn post_file(&self, document: &Document) -> Result<(), SinkError> {
        let Some(file) = &document.file else {
            return Ok(());
        };
        let read = |e: std::io::Error| SinkError::Io(format!("read file document: {e}"));
        let boundary = format!("tributary-{}", uuid::Uuid::now_v7().simple());
        let (head, tail) = multipart_frame(&boundary, document)?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut mac = mac(&self.secret, timestamp, &head)
            .ok_or_else(|| SinkError::Config("webhook secret unusable".into()))?;
        let mut chunks = file.stream().map_err(read)?;
        while let Some(chunk) = chunks.next().await {
            mac.update(&chunk.map_err(read)?);
        }
        mac.update(&tail);
        let signature = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        let length = head.len() as u64 + file.size + tail.len() as u64;
        let body = futures::stream::once(async move { Ok::<_, std::io::Error>(head) })
            .chain(file.stream().map_err(read)?)
            .chain(futures::stream::once(async move { Ok(tail) }));
        self.send(
            reqwest::Body::wrap_stream(body),
            format!("multipart/form-data; boundary={boundary}"),
            timestamp,
            signature,
            (UPSERTED_EVENT, 1, length),
        )
        .await
    }

    async fn send(
        &self,
        body: reqwest::Body,
        content_type: String,
        timestamp: i64,
        signature: String,
        (event, items, bytes): (&'static str, usize, u64),
    ) -> Result<(), SinkError> {
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header(reqwest::header::CONTENT_LENGTH, bytes)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            // The URL may carry a token in its path or query: keep it out of the message.
            .map_err(|e| SinkError::Unavailable(format!("webhook request failed: {e}")))?;
        let status = response.status();
        tracing::debug!(
            host = self.url.host_str().unwrap_or_default(),
            event,
            items,
            bytes,
            status = status.as_u16(),
            "webhook sink request"
        );
        if status.is_success() {
            return Ok(());
        }
        let code = status.as_u16();
        let message = error_body(response).await;
        if code == 408 || code == 429 || status.is_server_error() {
            Err(SinkError::Unavailable(format!(
                "webhook answered {code}: {message}"
            )))
        } else {
            Err(SinkError::Rejected {
                status: code,
                message,
            })
        }
    }
}

/// The first [`MAX_ERROR_BODY`] bytes of an error response, as printable text.
async fn error_body(mut response: reqwest::Response) -> String {
    let mut raw = Vec::new();
    while raw.len() < MAX_ERROR_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => raw.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    raw.truncate(MAX_ERROR_BODY);
    let text: String = String::from_utf8_lossy(&raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        "(empty response body)".to_string()
    } else {
        text.to_string()
    }
}

/// A document's JSON as sent: a file document's `file` gains `attached`.
fn encode(document: &Document, attached: bool) -> Result<Vec<u8>, SinkError> {
    let fail = |e: serde_json::Error| SinkError::Io(format!("encode document: {e}"));
    if document.file.is_none() {
        return serde_json::to_vec(document).map_err(fail);
    }
    let mut value = serde_json::to_value(document).map_err(fail)?;
    if let Some(file) = value
        .get_mut("file")
        .and_then(serde_json::Value::as_object_mut)
    {
        file.insert("attached".into(), attached.into());
    }
    serde_json::to_vec(&value).map_err(fail)
}

/// The multipart body around a file's bytes: everything before them and after them.
fn multipart_frame(boundary: &str, document: &Document) -> Result<(Vec<u8>, Vec<u8>), SinkError> {
    let file = document.file.as_ref();
    let name: String = file
        .map(|f| f.name.as_str())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if matches!(c, '"' | '\\' | '\r' | '\n') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mime = file
        .map(|f| f.mime_type.as_str())
        .filter(|m| !m.is_empty() && !m.chars().any(char::is_control))
        .unwrap_or("application/octet-stream");
    let mut head = Vec::new();
    head.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"document\"\r\n\
             Content-Type: application/json\r\n\r\n{{\"event\":\"{UPSERTED_EVENT}\",\"documents\":["
        )
        .as_bytes(),
    );
    head.extend_from_slice(&encode(document, true)?);
    head.extend_from_slice(
        format!(
            "]}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    Ok((head, tail))
}

#[async_trait::async_trait]
impl Sink for WebhookSink {
    async fn deliver(&self, documents: &[Document]) -> Result<(), SinkError> {
        // In order: JSON batches of what carries no bytes, each attachable file on its own.
        let mut pending: Vec<&Document> = Vec::new();
        for document in documents {
            let attach = document
                .file
                .as_ref()
                .is_some_and(|file| file.size <= self.file_max_bytes);
            if attach {
                self.deliver_json(&pending).await?;
                pending.clear();
                self.post_file(document).await?;
            } else {
                pending.push(document);
            }
        }
        self.deliver_json(&pending).await
    }

    async fn delete(&self, ids: &[String]) -> Result<(), SinkError> {
        for chunk in ids.chunks(MAX_DELETE_IDS) {
            let body = serde_json::to_vec(&serde_json::json!({
                "event": DELETED_EVENT,
                "ids": chunk,
            }))
            .map_err(|e| SinkError::Io(format!("encode ids: {e}")))?;
            self.post(body, DELETED_EVENT, chunk.len()).await?;
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }
}

impl WebhookSink {
    async fn deliver_json(&self, documents: &[&Document]) -> Result<(), SinkError> {
        let encoded = documents
            .iter()
            .map(|document| encode(document, false))
            .collect::<Result<Vec<_>, _>>()?;
        let prefix = format!("{{\"event\":\"{UPSERTED_EVENT}\",\"documents\":[");
        let suffix = "]}";
        let sizes: Vec<usize> = encoded.iter().map(Vec::len).collect();
        let envelope = prefix.len() + suffix.len();
        for range in batches(
            &sizes,
            MAX_BATCH_DOCUMENTS,
            MAX_BATCH_BYTES.saturating_sub(envelope),
        ) {
            let items = range.len();
            let mut body =
                Vec::with_capacity(envelope + sizes[range.clone()].iter().sum::<usize>() + items);
            body.extend_from_slice(prefix.as_bytes());
            for (i, document) in encoded[range].iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(document);
            }
            body.extend_from_slice(suffix.as_bytes());
            self.post(body, UPSERTED_EVENT, items).await?;
        }
        Ok(())
    }
}

/// Splits items of the given encoded sizes into consecutive batches of at most `max_items`
/// items whose sizes plus one separator byte each stay within `max_bytes`; an item larger
/// than `max_bytes` on its own gets a batch of its own.
fn batches(sizes: &[usize], max_items: usize, max_bytes: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        let count = i - start;
        let added = size + usize::from(count > 0);
        if count > 0 && (count >= max_items || bytes + added > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = *size;
        } else {
            bytes += added;
        }
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    // HMAC takes keys of any length, so this never fails in practice.
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// The `X-Tributary-Signature` header value for a body signed at `timestamp`:
/// `v1=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    match mac(secret, timestamp, body) {
        Some(mac) => format!("v1={}", hex::encode(mac.finalize().into_bytes())),
        // Unreachable (see `mac`); an empty signature simply never verifies.
        None => "v1=".to_string(),
    }
}

/// Checks a request as a receiver would: `timestamp` is the `X-Tributary-Timestamp` value,
/// `signature_header` the `X-Tributary-Signature` value, `now` the receiver's clock (unix
/// seconds). False when the timestamp is more than `tolerance_secs` away from `now` (either
/// direction) or no `v1=` entry matches. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
    now: i64,
    tolerance_secs: i64,
) -> bool {
    let fresh = now
        .checked_sub(timestamp)
        .and_then(i64::checked_abs)
        .is_some_and(|age| tolerance_secs >= 0 && age <= tolerance_secs);
    if !fresh {
        return false;
    }
    let mut matched = false;
    for entry in signature_header.split(',') {
        let Some(signature) = entry.trim().strip_prefix("v1=") else {
            continue;
        };
        let Ok(signature) = hex::decode(signature) else {
            continue;
        };
        let Some(mac) = mac(secret, timestamp, body) else {
            return false;
        };
        // Check every entry (no early exit) so timing does not reveal which one matched.
        matched |= mac.verify_slice(&signature).is_ok();
    }
    matched
}

#[cfg(test)]
mod tests;
