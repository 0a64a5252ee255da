//! A fake RAGFlow on loopback that answers the way RAGFlow's HTTP API reference
//! (infiniflow/ragflow `docs/references/http_api_reference.md`) and its SDK routes
//! (`api/apps/sdk/doc.py`) do, for the RAGFlow sink's tests.
//!
//! Endpoints, under `/api/v1/datasets/{dataset_id}`:
//! - `GET  /documents?page=&page_size=&keywords=&name=&id=`: `{"code":0,"data":{"total":N,
//!   "docs":[...]}}`, newest first, `page` 1-based (default 1), `page_size` default 30.
//!   `keywords` is a case-insensitive substring match on the name; `name` and `id` are exact
//!   and, as in RAGFlow, answer code 102 ("You don't own the document …") when nothing
//!   matches.
//! - `POST /documents` (multipart, one or more `file` parts): stores each file (its bytes
//!   and the part's content type) and answers the new documents. A name already in the
//!   dataset is renamed `stem(1).ext`, `stem(2).ext`… as RAGFlow's `duplicate_name` does.
//!   No `file` part: code 101 "No file part!"; a name over 255 bytes: code 101 "File name
//!   must be 255 bytes or less." (RAGFlow's `FILE_NAME_LEN_LIMIT`).
//! - `PUT /documents/{id}` with `{"name": ...}`: renames; a taken name is code 102, a changed
//!   extension code 101.
//! - `DELETE /documents` with `{"ids": [...]}`: deletes them; unknown ids are code 102
//!   "Documents not found: …" (the known ones are still deleted). As the published reference
//!   says, a missing or empty `ids` deletes every document in the dataset.
//! - `POST /chunks` with `{"document_ids": [...]}`: marks them parsed (`run: "DONE"`);
//!   unknown ids are code 102.
//!
//! Every request needs `Authorization: Bearer <key>`; otherwise RAGFlow's answer: HTTP 200
//! with `{"code":109,"message":"Authentication error: API key is invalid!"}`. An unknown
//! dataset is code 102 "You don't own the dataset …". Errors other than injected ones come
//! back with HTTP 200, as RAGFlow's do.
//!
//! Every request is recorded (method, path, query, JSON body or multipart file names,
//! whether it carried the key) before anything else happens, and [`FakeRagflow::fail_next`]
//! makes the next requests fail with an HTTP status instead of being served.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use reqwest::Url;
use serde_json::{json, Value};

/// The API key the fake accepts.
pub const API_KEY: &str = "ragflow-fake0a1b2c3d4e5f60718293a4b5c6d7e8f9";
/// The dataset every fake starts with.
pub const DATASET_ID: &str = "7898da028a0511efbf750242ac120005";

/// A document as the fake stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: String,
    pub name: String,
    /// The bytes as text (lossy), for markdown uploads.
    pub content: String,
    /// The bytes exactly as uploaded.
    pub bytes: Vec<u8>,
    /// The upload part's `Content-Type`.
    pub mime_type: Option<String>,
    /// `UNSTART` until a parse call, then `DONE`.
    pub run: String,
    /// Creation order (larger is newer).
    seq: u64,
}

/// A request as it reached the fake.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// The body, when it was JSON.
    pub json: Option<Value>,
    /// The file names of a multipart body's `file` parts.
    pub files: Vec<String>,
    /// The content types of those parts, in the same order.
    pub file_types: Vec<Option<String>>,
    /// Whether it carried `Authorization: Bearer <the fake's key>`.
    pub authorized: bool,
    /// The bearer token it carried, whatever it was (what a hostile host would harvest).
    pub bearer: Option<String>,
}

impl Recorded {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `"GET /api/v1/…"`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

struct Failure {
    method: Option<Method>,
    remaining: usize,
    status: StatusCode,
}

#[derive(Default)]
struct Inner {
    datasets: BTreeMap<String, Vec<StoredDocument>>,
    requests: Vec<Recorded>,
    failures: Vec<Failure>,
    next_id: u64,
}

impl Inner {
    fn new_id(&mut self) -> (String, u64) {
        self.next_id += 1;
        (
            format!("{:032x}", 0xd0c0_0000_u64 + self.next_id),
            self.next_id,
        )
    }

    fn take_failure(&mut self, method: &Method) -> Option<StatusCode> {
        let failure = self.failures.iter_mut().find(|failure| {
            failure.remaining > 0 && failure.method.as_ref().is_none_or(|m| m == method)
        })?;
        failure.remaining -= 1;
        let status = failure.status;
        self.failures.retain(|failure| failure.remaining > 0);
        Some(status)
    }
}

#[derive(Clone)]
struct Shared {
    key: String,
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeRagflow {
    base_url: Url,
    shared: Shared,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRagflow {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl FakeRagflow {
    /// A fake accepting [`API_KEY`], with the empty dataset [`DATASET_ID`].
    pub async fn start() -> Self {
        Self::start_with_key(API_KEY).await
    }

    /// A fake accepting `key` (another tenant's own RAGFlow), with [`DATASET_ID`].
    pub async fn start_with_key(key: &str) -> Self {
        let shared = Shared {
            key: key.to_owned(),
            inner: Arc::new(Mutex::new(Inner::default())),
        };
        shared
            .lock()
            .datasets
            .insert(DATASET_ID.to_owned(), Vec::new());
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let handle = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake ragflow");
        });
        Self {
            base_url: Url::parse(&format!("http://{address}/")).expect("base url"),
            shared,
            handle,
        }
    }

    /// Where RAGFlow's API lives (`/api/v1/...` goes under it).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    pub fn add_dataset(&self, dataset_id: &str) {
        self.shared
            .lock()
            .datasets
            .entry(dataset_id.to_owned())
            .or_default();
    }

    /// The dataset's documents, oldest first.
    pub fn documents(&self, dataset_id: &str) -> Vec<StoredDocument> {
        let mut documents = self
            .shared
            .lock()
            .datasets
            .get(dataset_id)
            .cloned()
            .unwrap_or_default();
        documents.sort_by_key(|document| document.seq);
        documents
    }

    /// Stores a document directly (no request recorded) and returns its RAGFlow id. The
    /// name is used as given, even if taken.
    pub fn seed(&self, dataset_id: &str, name: &str, content: &str) -> String {
        let mut inner = self.shared.lock();
        let (id, seq) = inner.new_id();
        inner
            .datasets
            .entry(dataset_id.to_owned())
            .or_default()
            .push(StoredDocument {
                id: id.clone(),
                name: name.to_owned(),
                content: content.to_owned(),
                bytes: content.as_bytes().to_vec(),
                mime_type: None,
                run: "UNSTART".into(),
                seq,
            });
        id
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().requests.clone()
    }

    /// The requests so far, forgetting them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.shared.lock().requests)
    }

    /// The next `n` requests (any method) answer `status` instead of being served.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.push_failure(None, n, status);
    }

    /// The next `n` requests with this method answer `status`; others are served.
    pub fn fail_next_on(&self, method: Method, n: usize, status: u16) {
        self.push_failure(Some(method), n, status);
    }

    fn push_failure(&self, method: Option<Method>, n: usize, status: u16) {
        let status = StatusCode::from_u16(status).expect("an HTTP status");
        if n > 0 {
            self.shared.lock().failures.push(Failure {
                method,
                remaining: n,
                status,
            });
        }
    }
}

fn ok(data: Option<Value>) -> Response {
    match data {
        Some(data) => Json(json!({"code": 0, "data": data})).into_response(),
        None => Json(json!({"code": 0})).into_response(),
    }
}

/// RAGFlow's error envelope, with HTTP 200.
fn error(code: u16, message: impl Into<String>) -> Response {
    Json(json!({"code": code, "message": message.into()})).into_response()
}

fn view(dataset_id: &str, document: &StoredDocument) -> Value {
    json!({
        "id": document.id,
        "name": document.name,
        "location": document.name,
        "dataset_id": dataset_id,
        "chunk_method": "naive",
        "run": document.run,
        "size": document.bytes.len(),
        "type": if document.name.to_lowercase().ends_with(".pdf") { "pdf" } else { "doc" },
        "thumbnail": "",
    })
}

async fn handle(
    State(fake): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> =
        Url::parse(&format!("http://fake/?{}", uri.query().unwrap_or("")))
            .map(|url| url.query_pairs().into_owned().collect())
            .unwrap_or_default();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let json: Option<Value> = if content_type.starts_with("application/json") {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let parts = if content_type.starts_with("multipart/form-data") {
        multipart(&content_type, &body)
    } else {
        None
    };
    let file_parts: Vec<&Part> = parts
        .iter()
        .flatten()
        .filter(|part| part.field == "file")
        .collect();
    let files = file_parts
        .iter()
        .filter_map(|part| part.file_name.clone())
        .collect();
    let file_types = file_parts
        .iter()
        .map(|part| part.content_type.clone())
        .collect();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    let authorized = bearer.as_deref() == Some(fake.key.as_str());

    let mut inner = fake.lock();
    inner.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        json: json.clone(),
        files,
        file_types,
        authorized,
        bearer,
    });
    if let Some(status) = inner.take_failure(&method) {
        let reason = status.canonical_reason().unwrap_or("injected failure");
        return (
            status,
            Json(json!({"code": status.as_u16(), "message": reason})),
        )
            .into_response();
    }
    if !authorized {
        return Json(json!({
            "code": 109,
            "message": "Authentication error: API key is invalid!",
            "data": false,
        }))
        .into_response();
    }

    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    let ["api", "v1", "datasets", dataset_id, rest @ ..] = segments.as_slice() else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    let dataset_id = (*dataset_id).to_owned();
    if !inner.datasets.contains_key(&dataset_id) {
        return error(102, format!("You don't own the dataset {dataset_id}. "));
    }
    match (method.clone(), rest) {
        (Method::GET, ["documents"]) => list(&mut inner, &dataset_id, &query),
        (Method::POST, ["documents"]) => upload(&mut inner, &dataset_id, parts),
        (Method::PUT, ["documents", document_id]) => {
            rename(&mut inner, &dataset_id, document_id, json)
        }
        (Method::DELETE, ["documents"]) => delete(&mut inner, &dataset_id, json),
        (Method::POST, ["chunks"]) => parse(&mut inner, &dataset_id, json),
        _ => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

fn documents_mut<'a>(inner: &'a mut Inner, dataset_id: &str) -> &'a mut Vec<StoredDocument> {
    inner.datasets.entry(dataset_id.to_owned()).or_default()
}

fn list(inner: &mut Inner, dataset_id: &str, query: &[(String, String)]) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let number = |name: &str, default: usize| match param(name) {
        None => Some(default),
        Some(raw) => raw.parse::<usize>().ok(),
    };
    let (Some(page), Some(page_size)) = (number("page", 1), number("page_size", 30)) else {
        return error(
            100,
            "ValueError(\"invalid literal for int() with base 10\")",
        );
    };
    let documents = documents_mut(inner, dataset_id);
    if let Some(id) = param("id").filter(|id| !id.is_empty()) {
        if !documents.iter().any(|document| document.id == id) {
            return error(102, format!("You don't own the document {id}."));
        }
    }
    if let Some(name) = param("name").filter(|name| !name.is_empty()) {
        if !documents.iter().any(|document| document.name == name) {
            return error(102, format!("You don't own the document {name}."));
        }
    }
    let keywords = param("keywords").unwrap_or_default().to_lowercase();
    let mut matching: Vec<&StoredDocument> = documents
        .iter()
        .filter(|document| param("id").is_none_or(|id| id.is_empty() || document.id == id))
        .filter(|document| {
            param("name").is_none_or(|name| name.is_empty() || document.name == name)
        })
        .filter(|document| document.name.to_lowercase().contains(&keywords))
        .collect();
    matching.sort_by_key(|document| std::cmp::Reverse(document.seq));
    let total = matching.len();
    let docs: Vec<Value> = matching
        .into_iter()
        .skip(page.saturating_sub(1).saturating_mul(page_size))
        .take(page_size)
        .map(|document| view(dataset_id, document))
        .collect();
    ok(Some(json!({"total": total, "docs": docs})))
}

fn upload(inner: &mut Inner, dataset_id: &str, parts: Option<Vec<Part>>) -> Response {
    let files: Vec<Part> = parts
        .unwrap_or_default()
        .into_iter()
        .filter(|part| part.field == "file")
        .collect();
    if files.is_empty() {
        return error(101, "No file part!");
    }
    if files
        .iter()
        .any(|part| part.file_name.as_deref().unwrap_or_default().is_empty())
    {
        return error(101, "No file selected!");
    }
    if files
        .iter()
        .any(|part| part.file_name.as_deref().unwrap_or_default().len() > 255)
    {
        return error(101, "File name must be 255 bytes or less.");
    }
    let mut created = Vec::new();
    for part in files {
        let requested = part.file_name.unwrap_or_default();
        let name = duplicate_name(documents_mut(inner, dataset_id), &requested);
        let (id, seq) = inner.new_id();
        let document = StoredDocument {
            id,
            name,
            content: String::from_utf8_lossy(&part.content).into_owned(),
            bytes: part.content,
            mime_type: part.content_type,
            run: "UNSTART".into(),
            seq,
        };
        created.push(view(dataset_id, &document));
        documents_mut(inner, dataset_id).push(document);
    }
    ok(Some(Value::Array(created)))
}

/// RAGFlow's `duplicate_name`: the name, or `stem(N).ext` with the smallest free N.
fn duplicate_name(documents: &[StoredDocument], name: &str) -> String {
    let taken = |candidate: &str| documents.iter().any(|document| document.name == candidate);
    if !taken(name) {
        return name.to_owned();
    }
    let (stem, extension) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    (1..)
        .map(|n| format!("{stem}({n}){extension}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_default()
}

fn rename(inner: &mut Inner, dataset_id: &str, document_id: &str, json: Option<Value>) -> Response {
    let documents = documents_mut(inner, dataset_id);
    let Some(index) = documents
        .iter()
        .position(|document| document.id == document_id)
    else {
        return error(102, "The dataset doesn't own the document.");
    };
    let Some(name) = json
        .as_ref()
        .and_then(|body| body.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return ok(Some(view(dataset_id, &documents[index])));
    };
    let extension = |n: &str| n.rfind('.').map(|dot| n[dot..].to_lowercase());
    if extension(&name) != extension(&documents[index].name) {
        return error(101, "The extension of file can't be changed");
    }
    if documents
        .iter()
        .any(|document| document.id != document_id && document.name == name)
    {
        return error(102, "Duplicated document name in the same dataset.");
    }
    documents[index].name = name;
    ok(Some(view(dataset_id, &documents[index])))
}

fn ids(json: &Option<Value>, field: &str) -> Vec<String> {
    json.as_ref()
        .and_then(|body| body.get(field))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn delete(inner: &mut Inner, dataset_id: &str, json: Option<Value>) -> Response {
    let documents = documents_mut(inner, dataset_id);
    let wanted = ids(&json, "ids");
    if wanted.is_empty() {
        // The published reference: no `ids` deletes every document in the dataset.
        documents.clear();
        return ok(None);
    }
    let not_found: Vec<&String> = wanted
        .iter()
        .filter(|id| !documents.iter().any(|document| &document.id == *id))
        .collect();
    let message = format!("Documents not found: {not_found:?}");
    let missing = !not_found.is_empty();
    documents.retain(|document| !wanted.contains(&document.id));
    if missing {
        return error(102, message);
    }
    ok(None)
}

fn parse(inner: &mut Inner, dataset_id: &str, json: Option<Value>) -> Response {
    let documents = documents_mut(inner, dataset_id);
    let wanted = ids(&json, "document_ids");
    if wanted.is_empty() {
        return error(102, "`document_ids` is required");
    }
    let mut not_found = Vec::new();
    for id in &wanted {
        match documents.iter_mut().find(|document| &document.id == id) {
            Some(document) => document.run = "DONE".into(),
            None => not_found.push(id.clone()),
        }
    }
    if !not_found.is_empty() {
        return error(102, format!("Documents not found: {not_found:?}"));
    }
    ok(None)
}

/// One part of a `multipart/form-data` body.
struct Part {
    field: String,
    file_name: Option<String>,
    content_type: Option<String>,
    content: Vec<u8>,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses a `multipart/form-data` body; `None` if it is not well-formed.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .find_map(|param| param.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let separator = format!("\r\n{delimiter}");
    let mut rest = body.strip_prefix(delimiter.as_bytes())?;
    let mut parts = Vec::new();
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n")?;
        let header_end = find(rest, b"\r\n\r\n")?;
        let part_headers = std::str::from_utf8(&rest[..header_end]).ok()?;
        let after = &rest[header_end + 4..];
        let end = find(after, separator.as_bytes())?;
        let disposition = part_headers.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then_some(value)
        })?;
        let param = |key: &str| {
            disposition.split(';').find_map(|param| {
                let (name, value) = param.trim().split_once('=')?;
                (name == key).then(|| value.trim_matches('"').to_owned())
            })
        };
        let content_type = part_headers.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        });
        parts.push(Part {
            field: param("name")?,
            file_name: param("filename"),
            content_type,
            content: after[..end].to_vec(),
        });
        rest = &after[end + separator.len()..];
    }
    Some(parts)
}
