//! File documents: an original file streamed from the source into a spool on disk, never
//! held whole in memory.
//!
//! [`download`] sends a request through the guarded client and writes the answer's body
//! chunk by chunk into a self-deleting temporary file while hashing it (SHA-256). A file
//! larger than [`FileLimits::max_file_bytes`] is not an error but [`Downloaded::TooLarge`]:
//! refused from its `Content-Length` before any byte is read, or aborted (and the spool
//! removed) as soon as the streamed count passes the cap. The source reports it in
//! [`crate::connectors::Batch::skipped`] and the sync run counts it.
//!
//! Text-like files become markdown documents instead ([`into_content`]): `.md`/`.txt` as
//! they are, `.html` through the crawl's converter, `.json` in a fenced block, `.csv` as a
//! markdown table (up to [`MAX_CSV_TABLE_BYTES`], else a fenced block). Everything else is
//! delivered as the original file.

use std::path::PathBuf;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::connectors::document::{Document, FileBody, FileContent};
use crate::connectors::{ConnectorError, SkippedFile};
use crate::http::{GuardedRequest, HttpError};

/// Files larger than this are skipped unless a source says otherwise.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
/// Text-like files larger than this are delivered as files, not converted to markdown.
pub const MAX_TEXT_BYTES: u64 = 8 * 1024 * 1024;
/// CSV files up to this size become a markdown table; larger ones a fenced block.
pub const MAX_CSV_TABLE_BYTES: u64 = 256 * 1024;
/// The mime type of a file whose type nobody said and its name does not tell.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// For `#[serde(default = "...")]` on a source config's `max_file_bytes`.
pub fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// Larger files are skipped ([`Downloaded::TooLarge`]).
    pub max_file_bytes: u64,
    /// Where spools are written; `None`: the system temporary directory (`/tmp` on Lambda).
    pub spool_dir: Option<PathBuf>,
}

impl Default for FileLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            spool_dir: None,
        }
    }
}

impl FileLimits {
    pub fn new(max_file_bytes: u64) -> Self {
        Self {
            max_file_bytes,
            ..Self::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("file download failed: {0}")]
    Http(#[from] HttpError),
    #[error("the source answered {status} for a file")]
    Status { status: u16 },
    #[error("file spool: {0}")]
    Io(String),
}

impl From<FileError> for ConnectorError {
    fn from(error: FileError) -> Self {
        match &error {
            FileError::Http(http) if http.is_refusal() => {
                ConnectorError::Protocol(error.to_string())
            }
            FileError::Status { status: 401 | 403 } => {
                ConnectorError::Unauthorized(error.to_string())
            }
            FileError::Status { status } if *status == 408 || *status == 429 || *status >= 500 => {
                ConnectorError::Unavailable(error.to_string())
            }
            FileError::Status { .. } => ConnectorError::Protocol(error.to_string()),
            // Network trouble or a full disk may clear.
            FileError::Http(_) | FileError::Io(_) => ConnectorError::Unavailable(error.to_string()),
        }
    }
}

fn io(error: std::io::Error) -> FileError {
    FileError::Io(error.to_string())
}

/// A body read from a local stream (a test, an archive member).
impl From<std::io::Error> for FileError {
    fn from(error: std::io::Error) -> Self {
        io(error)
    }
}

impl From<std::convert::Infallible> for FileError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// What a download gave.
#[derive(Debug)]
pub enum Downloaded {
    File(FileBody),
    /// Over the cap: `size` is the declared length, or the bytes read before aborting (a
    /// lower bound) when the source declared none.
    TooLarge {
        size: u64,
    },
}

/// A spool file, removed when the last [`FileBody`] clone holding it is dropped.
struct Spool {
    path: tempfile::TempPath,
}

impl FileContent for Spool {
    fn open(&self) -> std::io::Result<std::fs::File> {
        std::fs::File::open(&self.path)
    }
}

/// Downloads a file (`name` as the source calls it) through the guarded client. The mime
/// type is the answer's `Content-Type`, else guessed from the name. A non-2xx answer is
/// [`FileError::Status`]. The request is the source's to shape: its credentials, a
/// `timeout` long enough for the whole body (the client's default covers the body too),
/// `drop_auth_on_redirect` for providers that redirect to a signed download URL.
pub async fn download(
    request: GuardedRequest,
    name: &str,
    limits: &FileLimits,
) -> Result<Downloaded, FileError> {
    from_response(request.send().await?, name, limits).await
}

/// Like [`download`], for an answer already received (e.g. the kit's
/// `ApiCall::send_stream`, whose throttling and retries then apply to the request).
pub async fn from_response(
    response: reqwest::Response,
    name: &str,
    limits: &FileLimits,
) -> Result<Downloaded, FileError> {
    let status = response.status();
    if !status.is_success() {
        return Err(FileError::Status {
            status: status.as_u16(),
        });
    }
    let declared = response.content_length();
    let mime_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty() && !value.starts_with(OCTET_STREAM))
        .map(str::to_owned)
        .unwrap_or_else(|| guess_mime(name).to_owned());
    let body = response
        .bytes_stream()
        .map(|chunk| chunk.map_err(HttpError::from));
    spool(body, name, &mime_type, declared, limits).await
}

/// Writes a stream of chunks into a spool while hashing it; over the cap (declared or
/// counted) gives [`Downloaded::TooLarge`] and leaves nothing behind.
pub async fn spool<S, B, E>(
    body: S,
    name: &str,
    mime_type: &str,
    declared: Option<u64>,
    limits: &FileLimits,
) -> Result<Downloaded, FileError>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    FileError: From<E>,
{
    if let Some(size) = declared.filter(|size| *size > limits.max_file_bytes) {
        return Ok(Downloaded::TooLarge { size });
    }
    let dir = limits.spool_dir.clone().unwrap_or_else(std::env::temp_dir);
    let (file, path) = tempfile::Builder::new()
        .prefix("tributary-file-")
        .tempfile_in(&dir)
        .map_err(io)?
        .into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        let chunk = chunk.as_ref();
        size += chunk.len() as u64;
        if size > limits.max_file_bytes {
            // `path` is dropped here: the partial spool is removed.
            return Ok(Downloaded::TooLarge { size });
        }
        hasher.update(chunk);
        file.write_all(chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    Ok(Downloaded::File(FileBody {
        name: name.to_owned(),
        mime_type: mime_type.to_owned(),
        size,
        sha256: hex::encode(hasher.finalize()),
        content: Some(Arc::new(Spool { path })),
    }))
}

/// The entry for a file skipped for its size.
pub fn too_large(source_id: &str, size: u64, limits: &FileLimits) -> SkippedFile {
    SkippedFile {
        source_id: source_id.to_owned(),
        size,
        reason: format!("larger than max_file_bytes ({})", limits.max_file_bytes),
    }
}

/// The mime type a file name suggests (the common document types), else
/// [`OCTET_STREAM`].
pub fn guess_mime(name: &str) -> &'static str {
    match extension(name).as_deref() {
        Some("txt") => "text/plain",
        Some("md" | "markdown") => "text/markdown",
        Some("csv") => "text/csv",
        Some("html" | "htm") => "text/html",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xls") => "application/vnd.ms-excel",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("ppt") => "application/vnd.ms-powerpoint",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        _ => OCTET_STREAM,
    }
}

fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The text kinds converted to markdown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    Markdown,
    Plain,
    Csv,
    Html,
    Json,
}

/// Whether a file is text-like, by its mime type first, then its extension.
pub fn text_kind(name: &str, mime_type: &str) -> Option<TextKind> {
    let essence = mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let by_mime = match essence.as_str() {
        "text/markdown" | "text/x-markdown" => Some(TextKind::Markdown),
        "text/plain" => None, // many tools label .md and .csv as text/plain: the name decides
        "text/csv" => Some(TextKind::Csv),
        "text/html" | "application/xhtml+xml" => Some(TextKind::Html),
        "application/json" => Some(TextKind::Json),
        _ => None,
    };
    let by_name = match extension(name).as_deref() {
        Some("md" | "markdown") => Some(TextKind::Markdown),
        Some("txt") => Some(TextKind::Plain),
        Some("csv") => Some(TextKind::Csv),
        Some("html" | "htm") => Some(TextKind::Html),
        Some("json") => Some(TextKind::Json),
        _ => None,
    };
    match (by_mime, by_name) {
        (Some(kind), _) => Some(kind),
        (None, Some(kind)) => Some(kind),
        (None, None) if essence == "text/plain" => Some(TextKind::Plain),
        _ => None,
    }
}

/// A file as a document's content: markdown for text-like files, else the file itself.
#[derive(Debug)]
pub enum Content {
    Markdown(String),
    File(FileBody),
}

impl Content {
    /// Puts the content into `document` (`markdown` or `file`).
    pub fn into_document(self, mut document: Document) -> Document {
        match self {
            Content::Markdown(markdown) => {
                document.markdown = markdown;
                document.file = None;
            }
            Content::File(file) => {
                document.markdown = String::new();
                document.file = Some(file);
            }
        }
        document
    }
}

/// Converts a text-like file (up to [`MAX_TEXT_BYTES`], valid UTF-8 unless HTML) to
/// markdown; any other file stays a file.
pub async fn into_content(file: FileBody) -> Result<Content, FileError> {
    let Some(kind) = text_kind(&file.name, &file.mime_type) else {
        return Ok(Content::File(file));
    };
    if file.size > MAX_TEXT_BYTES {
        return Ok(Content::File(file));
    }
    let reader = file.open().map_err(io)?;
    let bytes = tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        reader
            .take(MAX_TEXT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    })
    .await
    .map_err(|error| FileError::Io(error.to_string()))?
    .map_err(io)?;
    let text = if kind == TextKind::Html {
        crate::crawl::html::decode(Some(&file.mime_type), &bytes)
    } else {
        match String::from_utf8(bytes) {
            Ok(text) => text
                .strip_prefix('\u{feff}')
                .map(str::to_owned)
                .unwrap_or(text),
            // Not UTF-8: a text file in some legacy encoding goes as the original file.
            Err(_) => return Ok(Content::File(file)),
        }
    };
    Ok(Content::Markdown(to_markdown(kind, &text)))
}

/// A text-like file's text as markdown (see the module documentation).
pub fn to_markdown(kind: TextKind, text: &str) -> String {
    match kind {
        TextKind::Markdown | TextKind::Plain => text.to_owned(),
        TextKind::Json => fenced("json", text),
        TextKind::Csv if text.len() as u64 <= MAX_CSV_TABLE_BYTES => csv_table(text),
        TextKind::Csv => fenced("csv", text),
        // Links are not used here; the base only has to be a URL.
        TextKind::Html => match url::Url::parse("https://file.invalid/") {
            Ok(base) => crate::crawl::html::parse(text, &base, false, false).markdown,
            Err(_) => text.to_owned(),
        },
    }
}

/// A fenced code block whose fence is longer than any backtick run in `text`.
fn fenced(language: &str, text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    let body = text.strip_suffix('\n').unwrap_or(text);
    format!("{fence}{language}\n{body}\n{fence}\n")
}

/// A CSV (RFC 4180: quoted fields, doubled quotes, newlines inside quotes) as a markdown
/// table: the first row is the header, short rows are padded, `|` is escaped and a line
/// break inside a cell becomes `<br>`.
fn csv_table(text: &str) -> String {
    let rows = parse_csv(text);
    let Some(width) = rows.iter().map(Vec::len).max().filter(|w| *w > 0) else {
        return String::new();
    };
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for (i, row) in rows.iter().enumerate() {
        out.push('|');
        for column in 0..width {
            let cell = row.get(column).map(String::as_str).unwrap_or_default();
            out.push(' ');
            out.push_str(
                &cell
                    .trim()
                    .replace('\\', "\\\\")
                    .replace('|', "\\|")
                    .replace("\r\n", "<br>")
                    .replace('\n', "<br>"),
            );
            out.push_str(" |");
        }
        out.push('\n');
        if i == 0 {
            out.push('|');
            out.push_str(&" --- |".repeat(width));
            out.push('\n');
        }
    }
    out
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests;
