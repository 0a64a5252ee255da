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
mod tests {
    use super::*;
    use axum::body::Bytes;
    use axum::extract::{DefaultBodyLimit, State};
    use axum::http::{HeaderMap, StatusCode};
    use serde_json::Value;
    use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    const SECRET: &[u8] = b"test-webhook-secret";

    struct Receiver {
        status: AtomicU16,
        bodies: Mutex<Vec<Value>>,
        bad_signatures: AtomicUsize,
    }

    async fn receive(
        State(receiver): State<Arc<Receiver>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> (StatusCode, &'static str) {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(header("content-type"), "application/json");
        let timestamp: i64 = header(TIMESTAMP_HEADER).parse().unwrap_or(i64::MIN);
        let now = chrono::Utc::now().timestamp();
        if !verify(
            SECRET,
            timestamp,
            &body,
            &header(SIGNATURE_HEADER),
            now,
            DEFAULT_TOLERANCE_SECS,
        ) {
            receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::UNAUTHORIZED, "bad signature");
        }
        receiver
            .bodies
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap());
        let status = StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap();
        (status, "\n  receiver says\tno \n")
    }

    /// A receiver on 127.0.0.1:0 that answers `status` to correctly signed requests.
    async fn server(status: u16) -> (url::Url, Arc<Receiver>) {
        let receiver = Arc::new(Receiver {
            status: AtomicU16::new(status),
            bodies: Mutex::new(Vec::new()),
            bad_signatures: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = url::Url::parse(&format!("http://{address}/hook?token=t0ps3cret")).unwrap();
        (url, receiver)
    }

    fn sink(url: url::Url, secret: &[u8]) -> WebhookSink {
        WebhookSink::new(
            crate::http::GuardedClient::with_policy(
                crate::http::policy::NetworkPolicy::allow_private(),
            )
            .unwrap(),
            url,
            secret.to_vec(),
        )
    }

    fn documents(n: usize, markdown: &str) -> Vec<Document> {
        (0..n)
            .map(|i| {
                let source_id = format!("https://example.com/{i}");
                Document {
                    id: Document::stable_id("crawl:job-1", &source_id),
                    source: "web".into(),
                    source_id: source_id.clone(),
                    title: Some(format!("Page {i}")),
                    url: Some(source_id),
                    markdown: markdown.into(),
                    metadata: serde_json::Map::new(),
                    updated_at: "2025-01-01T00:00:00Z".into(),
                    acl: vec![],
                    file: None,
                }
            })
            .collect()
    }

    fn received_documents(body: &Value) -> Vec<Document> {
        assert_eq!(body["event"], UPSERTED_EVENT);
        serde_json::from_value(body["documents"].clone()).unwrap()
    }

    #[tokio::test]
    async fn delivers_signed_batches_of_fifty() {
        let (url, receiver) = server(200).await;
        let sink = sink(url, SECRET);
        assert_eq!(sink.kind(), "webhook");
        let docs = documents(120, "# Body");
        sink.deliver(&docs).await.unwrap();

        let bodies = receiver.bodies.lock().unwrap().clone();
        assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
        let sizes: Vec<usize> = bodies.iter().map(|b| received_documents(b).len()).collect();
        assert_eq!(sizes, vec![50, 50, 20]);
        let all: Vec<Document> = bodies.iter().flat_map(received_documents).collect();
        assert_eq!(all, docs);
    }

    #[tokio::test]
    async fn large_documents_split_by_bytes() {
        let (url, receiver) = server(204).await;
        let docs = documents(3, &"x".repeat(2_000_000));
        sink(url, SECRET).deliver(&docs).await.unwrap();
        let bodies = receiver.bodies.lock().unwrap().clone();
        let sizes: Vec<usize> = bodies.iter().map(|b| received_documents(b).len()).collect();
        assert_eq!(sizes, vec![2, 1]);
    }

    #[test]
    fn batching_limits() {
        assert!(batches(&[], 50, 100).is_empty());
        assert_eq!(batches(&[10; 5], 2, 1000), vec![0..2, 2..4, 4..5]);
        // 10 + (1 + 10) = 21 fits in 21; a third needs 32.
        assert_eq!(batches(&[10, 10, 10], 50, 21), vec![0..2, 2..3]);
        assert_eq!(batches(&[10, 10, 10], 50, 20), vec![0..1, 1..2, 2..3]);
        // An oversized item goes alone.
        assert_eq!(batches(&[5, 500, 5], 50, 100), vec![0..1, 1..2, 2..3]);
        assert_eq!(batches(&[500], 50, 100), vec![0..1]);
    }

    #[tokio::test]
    async fn delete_posts_ids_and_empty_calls_send_nothing() {
        let (url, receiver) = server(200).await;
        let sink = sink(url, SECRET);
        sink.deliver(&[]).await.unwrap();
        sink.delete(&[]).await.unwrap();
        assert!(receiver.bodies.lock().unwrap().is_empty());

        let ids = vec!["a1".to_string(), "b2".to_string()];
        sink.delete(&ids).await.unwrap();
        let bodies = receiver.bodies.lock().unwrap().clone();
        assert_eq!(
            bodies,
            vec![serde_json::json!({"event": DELETED_EVENT, "ids": ["a1", "b2"]})]
        );
    }

    #[tokio::test]
    async fn retryable_statuses_are_unavailable() {
        for status in [500, 503, 429, 408] {
            let (url, _receiver) = server(status).await;
            let err = sink(url, SECRET)
                .deliver(&documents(1, "x"))
                .await
                .unwrap_err();
            assert!(
                matches!(err, SinkError::Unavailable(_)),
                "{status}: {err:?}"
            );
            assert!(err.is_transient());
        }
    }

    #[tokio::test]
    async fn client_errors_are_rejected() {
        for status in [400, 404, 413] {
            let (url, _receiver) = server(status).await;
            let err = sink(url, SECRET).delete(&["a".into()]).await.unwrap_err();
            match &err {
                SinkError::Rejected {
                    status: got,
                    message,
                } => {
                    assert_eq!(*got, status);
                    assert_eq!(message, "receiver says no");
                }
                other => panic!("{status}: {other:?}"),
            }
            assert!(!err.is_transient());
        }
    }

    #[tokio::test]
    async fn wrong_secret_fails_verification() {
        let (url, receiver) = server(200).await;
        let err = sink(url, b"not-the-secret")
            .deliver(&documents(1, "x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SinkError::Rejected { status: 401, .. }),
            "{err:?}"
        );
        assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 1);
        assert!(receiver.bodies.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn network_errors_are_unavailable_and_hide_the_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let url = url::Url::parse(&format!("http://{address}/hook?token=t0ps3cret")).unwrap();
        let err = sink(url, SECRET)
            .deliver(&documents(1, "x"))
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Unavailable(_)), "{err:?}");
        assert!(!err.to_string().contains("t0ps3cret"), "{err}");
        assert!(err.is_transient());
    }

    type Raw = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A receiver that keeps every request as it came (headers and exact body bytes).
    async fn raw_server() -> (url::Url, Raw) {
        let seen: Raw = Arc::default();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(
                    |State(seen): State<Raw>, headers: HeaderMap, body: Bytes| async move {
                        seen.lock().unwrap().push((headers, body));
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (
            url::Url::parse(&format!("http://{address}/hook")).unwrap(),
            seen,
        )
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// `(name, filename, content type, bytes)` of each part, parsed as a receiver would.
    fn parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, String, Vec<u8>)> {
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let delimiter = format!("\r\n--{boundary}");
        let mut rest = body
            .strip_prefix(format!("--{boundary}").as_bytes())
            .unwrap();
        let mut out = Vec::new();
        while !rest.starts_with(b"--") {
            rest = rest.strip_prefix(b"\r\n").unwrap();
            let end = find(rest, b"\r\n\r\n").unwrap();
            let head = std::str::from_utf8(&rest[..end]).unwrap();
            let after = &rest[end + 4..];
            let stop = find(after, delimiter.as_bytes()).unwrap();
            let value = |key: &str| {
                head.split("\r\n")
                    .find_map(|line| line.strip_prefix(key))
                    .map(str::to_owned)
            };
            let disposition = value("Content-Disposition: form-data; ").unwrap();
            let param = |key: &str| {
                disposition.split("; ").find_map(|p| {
                    p.strip_prefix(&format!("{key}=\""))
                        .map(|v| v.trim_end_matches('"').to_owned())
                })
            };
            out.push((
                param("name").unwrap(),
                param("filename"),
                value("Content-Type: ").unwrap(),
                after[..stop].to_vec(),
            ));
            rest = &after[stop + delimiter.len()..];
        }
        assert_eq!(rest, b"--\r\n");
        out
    }

    async fn file_document(i: usize, name: &str, bytes: &[u8]) -> Document {
        use crate::connectors::kit::files;
        let body = futures::stream::iter(
            bytes
                .chunks(1000)
                .map(|c| Ok::<_, std::convert::Infallible>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let limits = files::FileLimits::default();
        let files::Downloaded::File(file) =
            files::spool(body, name, "application/pdf", None, &limits)
                .await
                .unwrap()
        else {
            panic!("spooled")
        };
        let mut document = documents(i + 1, "").pop().unwrap();
        document.file = Some(file);
        document
    }

    #[tokio::test]
    async fn a_file_document_goes_alone_as_signed_multipart_and_a_large_one_as_metadata() {
        let (url, seen) = raw_server().await;
        let small: Vec<u8> = (0..2_500u32).map(|i| (i % 256) as u8).collect();
        let file = file_document(1, "Q3 \"final\".pdf", &small).await;
        let big = file_document(3, "huge.pdf", &vec![9u8; 4_000]).await;
        let markdown = documents(4, "# md");
        let batch = vec![
            markdown[0].clone(),
            file.clone(),
            markdown[2].clone(),
            big.clone(),
        ];
        sink(url, SECRET)
            .with_file_max_bytes(3_000)
            .deliver(&batch)
            .await
            .unwrap();

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "json, multipart, json");
        let now = chrono::Utc::now().timestamp();
        for (headers, body) in &seen {
            let timestamp: i64 = header(headers, TIMESTAMP_HEADER).parse().unwrap();
            assert!(verify(
                SECRET,
                timestamp,
                body,
                header(headers, SIGNATURE_HEADER),
                now,
                300
            ));
            assert_eq!(header(headers, "content-length"), body.len().to_string());
        }
        let json = |i: usize| -> Value { serde_json::from_slice(&seen[i].1).unwrap() };
        assert_eq!(received_documents(&json(0)), vec![markdown[0].clone()]);

        let (headers, body) = &seen[1];
        let parts = parts(header(headers, "content-type"), body);
        assert_eq!(parts.len(), 2);
        let (name, filename, content_type, envelope) = &parts[0];
        assert_eq!(
            (name.as_str(), filename, content_type.as_str()),
            ("document", &None, "application/json")
        );
        let envelope: Value = serde_json::from_slice(envelope).unwrap();
        assert_eq!(envelope["documents"][0]["file"]["attached"], true);
        assert_eq!(received_documents(&envelope), vec![file.clone()]);
        let (name, filename, content_type, bytes) = &parts[1];
        assert_eq!(name, "file");
        assert_eq!(filename.as_deref(), Some("Q3 _final_.pdf"));
        assert_eq!(content_type, "application/pdf");
        assert_eq!(bytes, &small);
        assert_eq!(
            envelope["documents"][0]["file"]["sha256"],
            hex::encode(<Sha256 as sha2::Digest>::digest(&small))
        );

        let last = json(2);
        assert_eq!(last["documents"][1]["file"]["attached"], false);
        assert_eq!(last["documents"][1]["file"]["size"], 4_000);
        assert_eq!(received_documents(&last), vec![markdown[2].clone(), big]);
    }

    #[test]
    fn the_file_cap_comes_from_the_environment() {
        let env = |value: Option<&str>| {
            let value = value.map(str::to_owned);
            move |name: &str| {
                assert_eq!(name, FILE_MAX_BYTES_ENV);
                value.clone()
            }
        };
        assert_eq!(
            file_max_bytes_from(env(None)).unwrap(),
            DEFAULT_FILE_MAX_BYTES
        );
        assert_eq!(
            file_max_bytes_from(env(Some(" "))).unwrap(),
            DEFAULT_FILE_MAX_BYTES
        );
        assert_eq!(file_max_bytes_from(env(Some("1024"))).unwrap(), 1024);
        for bad in ["10MB", "-1", "x"] {
            assert!(matches!(
                file_max_bytes_from(env(Some(bad))),
                Err(SinkError::Config(_))
            ));
        }
    }

    #[test]
    fn sign_and_verify() {
        let body = br#"{"event":"documents.deleted","ids":["a"]}"#;
        let now = 1_700_000_000;
        let signature = sign(SECRET, now, body);
        assert!(signature.starts_with("v1="));
        assert_eq!(signature.len(), 3 + 64);
        assert!(signature[3..]
            .chars()
            .all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        // Independent computation of the documented scheme.
        let mut expected = HmacSha256::new_from_slice(SECRET).unwrap();
        expected.update(format!("{now}.").as_bytes());
        expected.update(body);
        assert_eq!(
            signature,
            format!("v1={}", hex::encode(expected.finalize().into_bytes()))
        );

        assert!(verify(SECRET, now, body, &signature, now, 300));
        assert!(verify(SECRET, now, body, &signature, now + 300, 300));
        assert!(verify(SECRET, now, body, &signature, now - 300, 300));
        // Wrong secret, tampered body, different timestamp.
        assert!(!verify(b"other", now, body, &signature, now, 300));
        assert!(!verify(SECRET, now, b"{}", &signature, now, 300));
        assert!(!verify(SECRET, now + 1, body, &signature, now + 1, 300));
        // Stale or too far in the future.
        assert!(!verify(SECRET, now, body, &signature, now + 301, 300));
        assert!(!verify(SECRET, now, body, &signature, now - 301, 300));
        assert!(!verify(SECRET, now, body, &signature, now, -1));
        assert!(!verify(
            SECRET,
            i64::MIN,
            body,
            &sign(SECRET, i64::MIN, body),
            i64::MAX,
            i64::MAX
        ));
        // Malformed headers.
        for header in [
            "",
            "v1=",
            "v1=zz",
            "v0=abc",
            &signature[3..],
            &signature.to_uppercase(),
        ] {
            assert!(!verify(SECRET, now, body, header, now, 300), "{header:?}");
        }
        // Several entries (key rotation): any match is enough.
        let rotated = format!("{}, {signature}", sign(b"old", now, body));
        assert!(verify(SECRET, now, body, &rotated, now, 300));
    }
}
