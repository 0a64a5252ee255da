//! A sink that keeps documents in a RAGFlow dataset through RAGFlow's HTTP API
//! (`docs/references/http_api_reference.md` in infiniflow/ragflow).
//!
//! # Mapping
//!
//! Each [`Document`] becomes one RAGFlow document named `<document id>.md`: a small YAML
//! front matter block (`id`, `source`, `source_id`, `title`, `url`, `updated_at`, every value
//! a double-quoted JSON/YAML string), a blank line, then the markdown. RAGFlow assigns its own
//! document ids; the file name is how this sink finds a document again.
//!
//! A file document ([`Document::file`]) is uploaded as is, streamed from its spool, with its
//! mime type and the name `<document id>.file.<original name>` ([`stored_name`]: the
//! original name with path separators and control characters replaced, cut to RAGFlow's
//! 255 bytes keeping the extension, which is what RAGFlow picks its parser by). Its copies
//! are every `<id>.file.<anything>` and RAGFlow's renames of those ([`is_any_copy`]; ids
//! never hold `.` or `(`), so a file renamed at the source, or a document that changed
//! between markdown and file, still replaces its previous copy.
//!
//! # Requests (all with `Authorization: Bearer <api key>`)
//!
//! - find: `GET /api/v1/datasets/{dataset}/documents?keywords=<id>&page=N&page_size=100`,
//!   every page. RAGFlow's `name=` filter is exact *and* answers an error envelope when no
//!   document has that name, and its upload renames a clashing file to `<id>(1).md`; so this
//!   sink lists by keyword (a loose substring match on the name) and keeps, client-side,
//!   exactly the names `<id>.md` and `<id>(<digits>).md`.
//! - deliver, per document: find the existing copies, upload the new file
//!   (`POST …/documents`, multipart field `file`), delete the old copies
//!   (`DELETE …/documents`, `{"ids": [...]}`), and, if RAGFlow renamed the upload because an
//!   old copy still held the name, rename it back
//!   (`PUT …/documents/{ragflow id}`, `{"name": "<id>.md"}`). Uploading before deleting
//!   means a failed upload never loses the previous copy; at rest the dataset holds exactly
//!   one `<id>.md` per document. Then one parse call per batch
//!   (`POST …/chunks`, `{"document_ids": [...]}`, at most [`MAX_PARSE_IDS`] per call).
//! - delete: find each id's copies, then one `DELETE …/documents` with all their RAGFlow ids
//!   (at most [`MAX_DELETE_IDS`] per call). Ids with no copy are skipped. An empty `ids`
//!   list is never sent: RAGFlow reads it as "delete every document in the dataset".
//!
//! Every call is idempotent as a whole: a failed deliver or delete is retried from the start.
//!
//! # Errors
//!
//! RAGFlow answers most errors with HTTP 200 and an envelope `{"code": N, "message": ...}`.
//! Network errors, HTTP 408/429/5xx and the envelope codes for a lost database connection
//! (105) or a server error (500, 503) are [`SinkError::Unavailable`]. Any other non-zero
//! code or HTTP status is [`SinkError::Rejected`] with RAGFlow's message: an invalid API key
//! (code 109 or HTTP 401) as status 401, a permission error (108/403) as 403, 404 as 404,
//! anything else as 400 (or the HTTP status when it was a 4xx). A 2xx body that is not a
//! RAGFlow envelope (e.g. `base_url` points at the web UI) is rejected with status 502.
//!
//! The API key and document bodies are never logged or put into error messages.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::directory::validate_id;
use super::{Sink, SinkError};
use crate::connectors::document::Document;

/// The environment variable holding the RAGFlow API key (see [`super::SinkEnvironment`]).
pub const API_KEY_ENV: &str = "TRIBUTARY_RAGFLOW_API_KEY";
/// Documents per page when listing.
pub const LIST_PAGE_SIZE: usize = 100;
/// Most pages read for one document id (a safety stop; a real id matches a handful).
pub const MAX_LIST_PAGES: usize = 50;
/// Most document ids per parse call.
pub const MAX_PARSE_IDS: usize = 256;
/// Most document ids per delete call.
pub const MAX_DELETE_IDS: usize = 1_000;
/// Longest dataset id accepted (RAGFlow's are 32 hex chars).
pub const MAX_DATASET_ID_LEN: usize = 64;

/// Largest response body read (a page of 100 documents is far below this).
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// How much of RAGFlow's error message is kept.
const MAX_ERROR_MESSAGE: usize = 512;

/// RAGFlow's `RetCode`s this sink treats specially.
const CODE_CONNECTION_ERROR: i64 = 105;
const CODE_PERMISSION_ERROR: i64 = 108;
const CODE_AUTHENTICATION_ERROR: i64 = 109;

/// Accepts `[A-Za-z0-9_-]{1,64}`: a dataset id is one URL path segment.
pub fn validate_dataset_id(id: &str) -> Result<(), SinkError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_DATASET_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(SinkError::Config(format!(
            "RAGFlow dataset id must be 1-{MAX_DATASET_ID_LEN} chars of [A-Za-z0-9_-] (got {} bytes)",
            id.len()
        )))
    }
}

/// The RAGFlow file name of a document: `<id>.md`.
pub fn file_name(document_id: &str) -> String {
    format!("{document_id}.md")
}

/// Whether a RAGFlow document name is a copy of `document_id`: `<id>.md`, or
/// `<id>(<digits>).md` as RAGFlow renames an upload whose name is taken.
pub fn is_copy(name: &str, document_id: &str) -> bool {
    let Some(rest) = name.strip_prefix(document_id) else {
        return false;
    };
    if rest == ".md" {
        return true;
    }
    rest.strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(").md"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// RAGFlow's limit on a file name, in bytes (`FILE_NAME_LEN_LIMIT`).
pub const MAX_NAME_BYTES: usize = 255;

/// The RAGFlow name of a document: `<id>.md`, or `<id>.<original name>` for a file document
/// (sanitized, at most [`MAX_NAME_BYTES`], extension kept).
pub fn stored_name(document: &Document) -> String {
    let Some(file) = &document.file else {
        return file_name(&document.id);
    };
    let clean: String = file
        .name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim();
    let clean = if clean.is_empty() { "file" } else { clean };
    let budget = MAX_NAME_BYTES.saturating_sub(document.id.len() + FILE_MARK.len() + 1);
    format!(
        "{}{FILE_MARK}.{}",
        document.id,
        truncate_keeping_extension(clean, budget)
    )
}

/// At most `budget` bytes, cutting the stem (on a char boundary) before the extension.
pub(super) fn truncate_keeping_extension(name: &str, budget: usize) -> String {
    if name.len() <= budget {
        return name.to_owned();
    }
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => name.split_at(dot),
        _ => (name, ""),
    };
    let mut end = budget.saturating_sub(extension.len()).min(stem.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &stem[..end])
}

/// Whether a RAGFlow document name is a copy of `document_id` in either form: a markdown
/// copy ([`is_copy`]), or a file copy `<id>.file.<name>` and RAGFlow's renames of it
/// (`<id>.file.<stem>(<digits>).<ext>`, and `<id>.file(<digits>).<name>` for a name
/// without an extension).
pub fn is_any_copy(name: &str, document_id: &str) -> bool {
    if is_copy(name, document_id) {
        return true;
    }
    let Some(rest) = name
        .strip_prefix(document_id)
        .and_then(|rest| rest.strip_prefix(FILE_MARK))
    else {
        return false;
    };
    let rest = match rest.strip_prefix('(').and_then(|r| r.split_once(')')) {
        Some((n, after)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => after,
        Some(_) => return false,
        None => rest,
    };
    rest.len() > 1 && rest.starts_with('.')
}

/// What follows the id in a file copy's name, before `.<original name>`.
const FILE_MARK: &str = ".file";

/// The file uploaded for a document: front matter, a blank line, the markdown.
pub fn render(document: &Document) -> String {
    let mut out = String::with_capacity(document.markdown.len() + 256);
    out.push_str("---\n");
    field(&mut out, "id", &document.id);
    field(&mut out, "source", &document.source);
    field(&mut out, "source_id", &document.source_id);
    if let Some(title) = &document.title {
        field(&mut out, "title", title);
    }
    if let Some(url) = &document.url {
        field(&mut out, "url", url);
    }
    field(&mut out, "updated_at", &document.updated_at);
    out.push_str("---\n\n");
    out.push_str(&document.markdown);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    quote(out, value);
    out.push('\n');
}

/// A double-quoted string valid as both JSON and YAML: quotes, backslashes, control
/// characters and the characters YAML treats as line breaks or a BOM are escaped, so no
/// value can leave its line.
fn quote(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// RAGFlow's answer envelope.
#[derive(Deserialize)]
struct Envelope {
    code: i64,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    data: Value,
}

/// A document as RAGFlow lists or returns it (only what this sink reads).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
struct Stored {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    docs: Vec<Stored>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Clone)]
pub struct RagflowSink {
    client: crate::http::GuardedClient,
    base_url: url::Url,
    dataset_id: String,
    api_key: String,
}

impl fmt::Debug for RagflowSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RagflowSink")
            .field("host", &self.base_url.host_str())
            .field("dataset_id", &self.dataset_id)
            .finish_non_exhaustive()
    }
}

impl RagflowSink {
    /// `client` should be the deployment's SSRF-guarded client; [`super::build`] checks the
    /// URL's scheme, the dataset id and that the key is set. `base_url` is where RAGFlow's
    /// API lives (`https://ragflow.example` or `https://host/prefix/`); `/api/v1/...` is
    /// appended to its path.
    pub fn new(
        client: crate::http::GuardedClient,
        base_url: url::Url,
        dataset_id: String,
        api_key: String,
    ) -> Self {
        Self {
            client,
            base_url,
            dataset_id,
            api_key,
        }
    }

    /// `<base>/api/v1/datasets/<dataset>/<tail...>`, each part one escaped path segment.
    fn endpoint(&self, tail: &[&str]) -> Result<url::Url, SinkError> {
        let mut url = self.base_url.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| SinkError::Config("RAGFlow base_url cannot take a path".into()))?;
            segments.pop_if_empty();
            segments.extend(["api", "v1", "datasets", self.dataset_id.as_str()]);
            segments.extend(tail);
        }
        Ok(url)
    }

    /// Sends one request and returns the envelope's `data` (`null` when absent).
    async fn call(
        &self,
        operation: &'static str,
        request: crate::http::GuardedRequest,
    ) -> Result<Value, SinkError> {
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| {
                SinkError::Unavailable(format!("RAGFlow {operation} request failed: {e}"))
            })?;
        let status = response.status();
        let body = read_capped(response).await.map_err(|e| {
            SinkError::Unavailable(format!("RAGFlow {operation} response failed: {e}"))
        })?;
        tracing::debug!(
            host = self.base_url.host_str().unwrap_or_default(),
            dataset = %self.dataset_id,
            operation,
            status = status.as_u16(),
            bytes = body.len(),
            "ragflow sink request"
        );
        classify(operation, status, &body)
    }

    /// Every copy of `document_id` in the dataset (see [`is_copy`]).
    async fn find(&self, document_id: &str) -> Result<Vec<Stored>, SinkError> {
        let url = self.endpoint(&["documents"])?;
        let page_size = LIST_PAGE_SIZE.to_string();
        let mut copies = Vec::new();
        let mut seen = 0u64;
        for page in 1..=MAX_LIST_PAGES {
            let mut page_url = url.clone();
            page_url
                .query_pairs_mut()
                .append_pair("keywords", document_id)
                .append_pair("page", &page.to_string())
                .append_pair("page_size", &page_size);
            let request = self.client.get(page_url);
            let data = self.call("list", request).await?;
            let listed: Page = serde_json::from_value(data).map_err(|_| unexpected("list"))?;
            let count = listed.docs.len();
            seen += count as u64;
            copies.extend(
                listed
                    .docs
                    .into_iter()
                    .filter(|doc| is_any_copy(&doc.name, document_id)),
            );
            let more = count >= LIST_PAGE_SIZE && listed.total.is_none_or(|total| seen < total);
            if !more {
                return Ok(copies);
            }
        }
        tracing::warn!(
            dataset = %self.dataset_id,
            pages = MAX_LIST_PAGES,
            "ragflow sink stopped listing a document's copies at the page limit"
        );
        Ok(copies)
    }

    /// The upload of a document: its rendered markdown, or its file streamed from the spool.
    fn part(document: &Document, name: &str) -> Result<reqwest::multipart::Part, SinkError> {
        let encode = |e: reqwest::Error| SinkError::Io(format!("encode upload: {e}"));
        let Some(file) = &document.file else {
            return reqwest::multipart::Part::bytes(render(document).into_bytes())
                .file_name(name.to_string())
                .mime_str("text/markdown; charset=utf-8")
                .map_err(encode);
        };
        let body = file
            .stream()
            .map_err(|e| SinkError::Io(format!("read file document: {e}")))?;
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(body),
            file.size,
        )
        .file_name(name.to_string());
        match part.mime_str(&file.mime_type) {
            Ok(part) => Ok(part),
            // An unparsable type from the source: let RAGFlow go by the extension.
            Err(_) => Self::part_without_type(file, name),
        }
    }

    fn part_without_type(
        file: &crate::connectors::document::FileBody,
        name: &str,
    ) -> Result<reqwest::multipart::Part, SinkError> {
        let body = file
            .stream()
            .map_err(|e| SinkError::Io(format!("read file document: {e}")))?;
        Ok(reqwest::multipart::Part::stream_with_length(
            reqwest::Body::wrap_stream(body),
            file.size,
        )
        .file_name(name.to_string()))
    }

    async fn upload(&self, part: reqwest::multipart::Part) -> Result<Stored, SinkError> {
        let form = reqwest::multipart::Form::new().part("file", part);
        let request = self
            .client
            .post(self.endpoint(&["documents"])?)
            .multipart(form);
        let data = self.call("upload", request).await?;
        let mut uploaded: Vec<Stored> =
            serde_json::from_value(data).map_err(|_| unexpected("upload"))?;
        if uploaded.len() != 1 {
            return Err(unexpected("upload"));
        }
        Ok(uploaded.remove(0))
    }

    async fn rename(&self, ragflow_id: &str, name: &str) -> Result<(), SinkError> {
        let request = self
            .client
            .put(self.endpoint(&["documents", ragflow_id])?)
            .json(&serde_json::json!({ "name": name }));
        self.call("rename", request).await.map(drop)
    }

    /// Deletes these RAGFlow documents; never sends an empty list (which RAGFlow reads as
    /// "all documents").
    async fn remove(&self, ragflow_ids: &[String]) -> Result<(), SinkError> {
        for chunk in ragflow_ids.chunks(MAX_DELETE_IDS) {
            if chunk.is_empty() {
                continue;
            }
            let request = self
                .client
                .delete(self.endpoint(&["documents"])?)
                .json(&serde_json::json!({ "ids": chunk }));
            self.call("delete", request).await?;
        }
        Ok(())
    }

    async fn parse(&self, ragflow_ids: &[String]) -> Result<(), SinkError> {
        for chunk in ragflow_ids.chunks(MAX_PARSE_IDS) {
            if chunk.is_empty() {
                continue;
            }
            let request = self
                .client
                .post(self.endpoint(&["chunks"])?)
                .json(&serde_json::json!({ "document_ids": chunk }));
            self.call("parse", request).await?;
        }
        Ok(())
    }
}

/// Reads at most [`MAX_RESPONSE_BYTES`] of a response body.
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn unexpected(operation: &str) -> SinkError {
    SinkError::Rejected {
        status: 502,
        message: format!("RAGFlow {operation} answered with an unexpected response shape"),
    }
}

/// Maps an HTTP status and body to the envelope's `data` or a [`SinkError`] (see the module
/// documentation).
fn classify(
    operation: &'static str,
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<Value, SinkError> {
    let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
    let code = status.as_u16();
    if !status.is_success() {
        let message = envelope
            .and_then(|e| e.message)
            .map(|m| printable(m.as_bytes()))
            .unwrap_or_else(|| printable(body));
        return Err(if code == 408 || code == 429 || status.is_server_error() {
            SinkError::Unavailable(format!("RAGFlow {operation} answered {code}: {message}"))
        } else {
            SinkError::Rejected {
                status: code,
                message,
            }
        });
    }
    let Some(envelope) = envelope else {
        return Err(SinkError::Rejected {
            status: 502,
            message: format!(
                "RAGFlow {operation} answered {code} without a RAGFlow JSON envelope (check base_url)"
            ),
        });
    };
    if envelope.code == 0 {
        return Ok(envelope.data);
    }
    let message = format!(
        "RAGFlow code {}: {}",
        envelope.code,
        printable(envelope.message.unwrap_or_default().as_bytes())
    );
    Err(match envelope.code {
        CODE_CONNECTION_ERROR | 500 | 503 => {
            SinkError::Unavailable(format!("RAGFlow {operation}: {message}"))
        }
        CODE_AUTHENTICATION_ERROR | 401 => SinkError::Rejected {
            status: 401,
            message,
        },
        CODE_PERMISSION_ERROR | 403 => SinkError::Rejected {
            status: 403,
            message,
        },
        404 => SinkError::Rejected {
            status: 404,
            message,
        },
        _ => SinkError::Rejected {
            status: 400,
            message,
        },
    })
}

/// The first [`MAX_ERROR_MESSAGE`] bytes as one line of printable text.
fn printable(raw: &[u8]) -> String {
    let raw = &raw[..raw.len().min(MAX_ERROR_MESSAGE)];
    let text: String = String::from_utf8_lossy(raw)
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

#[async_trait::async_trait]
impl Sink for RagflowSink {
    async fn deliver(&self, documents: &[Document]) -> Result<(), SinkError> {
        for document in documents {
            validate_id(&document.id)?;
        }
        // A document repeated in one batch is delivered once, as its last version.
        let mut seen = HashSet::new();
        let mut batch: Vec<&Document> = documents
            .iter()
            .rev()
            .filter(|document| seen.insert(document.id.as_str()))
            .collect();
        batch.reverse();
        let mut uploaded = Vec::with_capacity(batch.len());
        for document in batch {
            let name = stored_name(document);
            let existing = self.find(&document.id).await?;
            let new = self.upload(Self::part(document, &name)?).await?;
            let old: Vec<String> = existing
                .into_iter()
                .map(|stored| stored.id)
                .filter(|id| *id != new.id)
                .collect();
            self.remove(&old).await?;
            if new.name != name {
                self.rename(&new.id, &name).await?;
            }
            uploaded.push(new.id);
        }
        self.parse(&uploaded).await?;
        if !uploaded.is_empty() {
            tracing::debug!(
                dataset = %self.dataset_id,
                documents = uploaded.len(),
                "ragflow sink delivered"
            );
        }
        Ok(())
    }

    async fn delete(&self, ids: &[String]) -> Result<(), SinkError> {
        for id in ids {
            validate_id(id)?;
        }
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for id in ids {
            if !seen.insert(id.as_str()) {
                continue;
            }
            found.extend(self.find(id).await?.into_iter().map(|stored| stored.id));
        }
        found.sort();
        found.dedup();
        self.remove(&found).await
    }

    fn kind(&self) -> &'static str {
        "ragflow"
    }
}

#[cfg(test)]
mod tests;
