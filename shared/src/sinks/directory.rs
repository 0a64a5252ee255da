//! A sink that writes one markdown file per document into a local directory
//! (`tributary-local` only; see [`super::build`]).
//!
//! Each document becomes `<dir>/<id>.md`: a YAML front matter block, a blank line, then the
//! markdown. Every front matter value is written as JSON (strings double-quoted and escaped,
//! arrays and objects in flow style), which is also valid YAML, so no title or metadata value
//! can break out of its line:
//!
//! ```text
//! ---
//! id: "3f2a…"
//! source: "web"
//! source_id: "https://example.com/a"
//! title: "A \"quoted\" title"
//! url: "https://example.com/a"
//! updated_at: "2025-01-01T00:00:00Z"
//! acl: ["group:eng"]
//! metadata:
//!   "lang": "en"
//! ---
//!
//! # A "quoted" title
//! ```
//!
//! `title`, `url` and `acl` are left out when absent/empty; `metadata: {}` when empty.
//!
//! A file document ([`Document::file`]) is written as the original bytes to
//! `<dir>/<id>.<name>` (the source's name with path separators, control and shell-hostile
//! characters replaced, cut to 255 bytes keeping the extension; `md` and `meta.json` get a
//! leading `_` so they never shadow a document's other files) plus a metadata sidecar
//! `<dir>/<id>.meta.json`: the document's fields as JSON (no `markdown`) with
//! `file: {name, mime_type, size, sha256, path}`, `path` being the stored file's name.
//! Everything a document writes starts with `<id>.` (ids never hold a `.`); re-delivering
//! it (as a renamed file, or switched between markdown and file) removes what it wrote
//! before, found through its old sidecar, and delete removes both.
//! A delivery stages its files in the hidden `<dir>/.tributary-tmp/`, makes them durable
//! with one sync per batch, then renames each over its `<id>.md`: a crash never leaves a
//! half-written document, and what a killed writer staged is never seen by a reader of the
//! folder (and is swept the next time a sink opens the folder).
//!
//! [`DirectorySink::without_sync`] skips both syncs and keeps the staging and the atomic
//! rename. A crash of the process then still loses nothing (written data is in the OS), but
//! an OS crash or power loss can lose the latest documents, or leave one empty, after the
//! delivery was reported: only for callers that can produce them again (a crawl re-run),
//! never for a connector sync, whose checkpoint moves past a delivered document for good.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::{Sink, SinkError};
use crate::connectors::document::Document;

/// The longest id accepted (a [`Document::stable_id`] is 32 chars).
pub const MAX_ID_LEN: usize = 128;

#[derive(Clone, Debug)]
pub struct DirectorySink {
    root: PathBuf,
    syncs: Arc<SyncCounter>,
    durable: bool,
}

impl DirectorySink {
    /// The directory is created on first delivery, not here; the first use in this process
    /// sweeps what crashed deliveries left (see [`sweep`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            root: path.into(),
            syncs: Arc::default(),
            durable: true,
        }
    }

    /// Deliveries are not forced to disk (see the module documentation): for documents
    /// that a re-run recreates, where two syncs per delivery would dominate the cost.
    pub fn without_sync(mut self) -> Self {
        self.durable = false;
        self
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// How many disk syncs this sink's deliveries have made.
    pub fn sync_calls(&self) -> u64 {
        self.syncs.get()
    }
}

/// Accepts only `[0-9a-z_-]{1,128}`, so an id is always a plain file name inside the
/// directory (no separators, no `..`, no hidden files, no case-folding collisions).
pub fn validate_id(id: &str) -> Result<(), SinkError> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'-' | b'_'));
    if valid {
        Ok(())
    } else {
        // The id may be hostile: report its length, not its content.
        Err(SinkError::Rejected {
            status: 400,
            message: format!(
                "document id must be 1-{MAX_ID_LEN} chars of [0-9a-z_-] (got {} bytes)",
                id.len()
            ),
        })
    }
}

#[async_trait::async_trait]
impl Sink for DirectorySink {
    async fn deliver(&self, documents: &[Document]) -> Result<(), SinkError> {
        // Validate the whole batch before writing anything.
        for document in documents {
            validate_id(&document.id)?;
        }
        if documents.is_empty() {
            return Ok(());
        }
        let planned: Vec<Planned> = documents.iter().map(plan).collect::<Result<_, _>>()?;
        let root = self.root.clone();
        let count = planned.len();
        let syncs = self.durable.then(|| self.syncs.clone());
        blocking(move || {
            sweep_once(&root);
            let previous: Vec<Option<String>> = planned
                .iter()
                .map(|planned| previous_file(&root, &planned.id))
                .collect();
            let files: Vec<(String, Staged)> = planned
                .iter()
                .flat_map(|planned| planned.files.iter().cloned())
                .collect();
            write_all(&root, &files, syncs.as_deref())?;
            for (planned, previous) in planned.iter().zip(previous) {
                remove_leftovers(&root, planned, previous)?;
            }
            Ok(())
        })
        .await?;
        tracing::debug!(documents = count, "directory sink delivered");
        Ok(())
    }

    async fn delete(&self, ids: &[String]) -> Result<(), SinkError> {
        for id in ids {
            validate_id(id)?;
        }
        if ids.is_empty() {
            return Ok(());
        }
        let root = self.root.clone();
        let ids = ids.to_vec();
        blocking(move || {
            sweep_once(&root);
            for id in &ids {
                if let Some(file) = previous_file(&root, id) {
                    remove_if_present(&root.join(file))?;
                }
                remove_if_present(&root.join(sidecar_name(id)))?;
                remove_if_present(&root.join(format!("{id}.md")))?;
            }
            Ok(())
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "directory"
    }
}

/// What one document writes, in rename order (a file before its sidecar, so a sidecar
/// always names a complete file).
struct Planned {
    id: String,
    files: Vec<(String, Staged)>,
    /// The stored file's name, for a file document.
    file: Option<String>,
}

#[derive(Clone)]
enum Staged {
    Text(String),
    Copy(crate::connectors::document::FileBody),
}

fn plan(document: &Document) -> Result<Planned, SinkError> {
    let id = document.id.clone();
    let Some(file) = &document.file else {
        return Ok(Planned {
            files: vec![(format!("{id}.md"), Staged::Text(render(document)))],
            id,
            file: None,
        });
    };
    let stored = local_name(&id, &file.name);
    let sidecar = sidecar(document, &stored)?;
    Ok(Planned {
        files: vec![
            (stored.clone(), Staged::Copy(file.clone())),
            (sidecar_name(&id), Staged::Text(sidecar)),
        ],
        id,
        file: Some(stored),
    })
}

/// `<id>.meta.json`.
pub fn sidecar_name(id: &str) -> String {
    format!("{id}.meta.json")
}

/// A file document's stored name: `<id>.<sanitized name>` (see the module documentation).
pub fn local_name(id: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let clean = clean.trim();
    let mut clean = if clean.is_empty() {
        "file".to_owned()
    } else {
        clean.to_owned()
    };
    if clean.eq_ignore_ascii_case("md") || clean.eq_ignore_ascii_case("meta.json") {
        clean.insert(0, '_');
    }
    let budget = 255usize.saturating_sub(id.len() + 1);
    format!(
        "{id}.{}",
        super::ragflow::truncate_keeping_extension(&clean, budget)
    )
}

/// The sidecar: the document's fields (no markdown) and the file's, with its stored name.
fn sidecar(document: &Document, stored: &str) -> Result<String, SinkError> {
    let file = document.file.as_ref();
    let value = serde_json::json!({
        "id": document.id,
        "source": document.source,
        "source_id": document.source_id,
        "title": document.title,
        "url": document.url,
        "updated_at": document.updated_at,
        "acl": document.acl,
        "metadata": document.metadata,
        "file": {
            "name": file.map(|f| f.name.as_str()),
            "mime_type": file.map(|f| f.mime_type.as_str()),
            "size": file.map(|f| f.size),
            "sha256": file.map(|f| f.sha256.as_str()),
            "path": stored,
        },
    });
    let mut text = serde_json::to_string_pretty(&value)
        .map_err(|e| SinkError::Io(format!("encode sidecar: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// The stored file an existing sidecar of `id` names, if it is one of `id`'s own names.
fn previous_file(root: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(root.join(sidecar_name(id))).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    let path = value.get("file")?.get("path")?.as_str()?;
    // Only a plain name in the folder that belongs to this id (the sidecar may be edited).
    let own = path
        .strip_prefix(id)
        .is_some_and(|rest| rest.starts_with('.'))
        && !path.contains(['/', '\\', '\0'])
        && path != sidecar_name(id);
    own.then(|| path.to_owned())
}

/// After a delivery: what the document wrote before and no longer does.
fn remove_leftovers(
    root: &Path,
    planned: &Planned,
    previous: Option<String>,
) -> Result<(), SinkError> {
    let id = &planned.id;
    if let Some(previous) = previous.filter(|old| Some(old) != planned.file.as_ref()) {
        remove_if_present(&root.join(previous))?;
    }
    if planned.file.is_some() {
        remove_if_present(&root.join(format!("{id}.md")))
    } else {
        remove_if_present(&root.join(sidecar_name(id)))
    }
}

fn remove_if_present(path: &Path) -> Result<(), SinkError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", path, &e)),
    }
}

async fn blocking<F>(work: F) -> Result<(), SinkError>
where
    F: FnOnce() -> Result<(), SinkError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| SinkError::Io(format!("directory sink task failed: {e}")))?
}

fn io_error(action: &str, path: &Path, e: &std::io::Error) -> SinkError {
    SinkError::Io(format!("{action} {}: {e}", path.display()))
}

/// Distinguishes temporary files of concurrent deliveries of the same id (in this process,
/// and by pid across processes), so two writers never interleave inside one file.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where deliveries stage their files: hidden (readers of the folder skip dot-entries and
/// never see a half-delivered batch or a crashed writer's leftovers) and inside the output
/// directory, so the final rename stays on one filesystem and atomic.
pub const TMP_DIR: &str = ".tributary-tmp";
/// A staged file this old belongs to a writer that died (a live delivery renames its files
/// within seconds): the sweep removes it.
pub const STALE_TMP_AGE: Duration = Duration::from_secs(10 * 60);

/// Output directories this process has swept, so a sink built per page sweeps once.
static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Removes what crashed deliveries left behind, once per directory per process: staged
/// files older than [`STALE_TMP_AGE`] and `<id>.md.<pid>-<n>.tmp` files that earlier
/// versions staged next to the documents. Best effort: a failure only leaves the files.
fn sweep_once(root: &Path) {
    {
        let mut swept = SWEPT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !swept
            .get_or_insert_with(HashSet::new)
            .insert(root.to_path_buf())
        {
            return;
        }
    }
    let removed = sweep(root, STALE_TMP_AGE);
    if removed > 0 {
        tracing::info!(removed, "directory sink removed leftover temporary files");
    }
}

/// The sweep itself; returns how many files it removed.
pub fn sweep(root: &Path, stale_after: Duration) -> usize {
    let mut removed = 0;
    let now = SystemTime::now();
    if let Ok(entries) = std::fs::read_dir(root.join(TMP_DIR)) {
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| {
                    now.duration_since(modified).unwrap_or_default() >= stale_after
                });
            if stale && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            let legacy = entry.file_name().to_str().is_some_and(is_legacy_tmp);
            if legacy && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// `<id>.md.<pid>-<n>.tmp`: what versions before the hidden staging folder wrote.
fn is_legacy_tmp(name: &str) -> bool {
    let Some(rest) = name.strip_suffix(".tmp") else {
        return false;
    };
    let Some((id, counter)) = rest.split_once(".md.") else {
        return false;
    };
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    validate_id(id).is_ok()
        && counter
            .split_once('-')
            .is_some_and(|(pid, n)| numeric(pid) && numeric(n))
}

/// Calls that force data to disk, counted so a test can hold the batch to O(1) of them.
#[derive(Debug, Default)]
pub struct SyncCounter(AtomicU64);

impl SyncCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn note(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stages every file, makes them durable with one filesystem sync, renames each over its
/// target (atomic replace), then syncs the directory once so the renames are durable too.
/// Without `syncs`, the same but neither sync.
fn write_all(
    root: &Path,
    files: &[(String, Staged)],
    syncs: Option<&SyncCounter>,
) -> Result<(), SinkError> {
    let staging = root.join(TMP_DIR);
    std::fs::create_dir_all(&staging).map_err(|e| io_error("create directory", &staging, &e))?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(files.len());
    let result = stage_and_rename(root, &staging, files, syncs, &mut staged);
    if result.is_err() {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result
}

fn stage_and_rename(
    root: &Path,
    staging: &Path,
    files: &[(String, Staged)],
    syncs: Option<&SyncCounter>,
    staged: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), SinkError> {
    for (name, content) in files {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        // The staged name stays short whatever the target's length.
        let id = name.split('.').next().unwrap_or_default();
        let kind = if name.ends_with(".md") { "md" } else { "file" };
        let tmp = staging.join(format!("{}-{n}-{id}.{kind}", std::process::id()));
        let target = root.join(name);
        staged.push((tmp.clone(), target.clone()));
        let written = std::fs::File::create(&tmp).and_then(|mut file| match content {
            Staged::Text(text) => file.write_all(text.as_bytes()),
            // Streamed from the spool (the kernel copies where it can), never held whole.
            Staged::Copy(body) => std::io::copy(&mut body.open()?, &mut file).map(drop),
        });
        written.map_err(|e| io_error("write", &target, &e))?;
    }
    if let Some(syncs) = syncs {
        sync_files(staging, staged, syncs).map_err(|e| io_error("sync", staging, &e))?;
    }
    for (tmp, target) in staged.iter() {
        std::fs::rename(tmp, target).map_err(|e| io_error("rename", target, &e))?;
    }
    // Make the renames durable too (best effort; not every platform can open a directory).
    #[cfg(unix)]
    if let Some(syncs) = syncs {
        if let Ok(dir) = std::fs::File::open(root) {
            syncs.note();
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Linux: one `syncfs` of the filesystem holding the staging folder writes every staged
/// file's data at once (one flush instead of one per document).
#[cfg(target_os = "linux")]
fn sync_files(
    staging: &Path,
    _staged: &[(PathBuf, PathBuf)],
    syncs: &SyncCounter,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let dir = std::fs::File::open(staging)?;
    syncs.note();
    // SAFETY: `dir` is an open descriptor for the whole call; syncfs only reads it.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere: no filesystem-wide sync, so each staged file is synced.
#[cfg(not(target_os = "linux"))]
fn sync_files(
    _staging: &Path,
    staged: &[(PathBuf, PathBuf)],
    syncs: &SyncCounter,
) -> std::io::Result<()> {
    for (tmp, _) in staged {
        syncs.note();
        std::fs::OpenOptions::new()
            .write(true)
            .open(tmp)?
            .sync_all()?;
    }
    Ok(())
}

/// Front matter, a blank line, then the markdown.
pub fn render(document: &Document) -> String {
    let mut out = String::with_capacity(document.markdown.len() + 512);
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
    if !document.acl.is_empty() {
        out.push_str("acl: [");
        for (i, principal) in document.acl.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            quote(&mut out, principal);
        }
        out.push_str("]\n");
    }
    if document.metadata.is_empty() {
        out.push_str("metadata: {}\n");
    } else {
        out.push_str("metadata:\n");
        for (key, value) in sorted(&document.metadata) {
            out.push_str("  ");
            quote(&mut out, key);
            out.push_str(": ");
            flow(&mut out, value);
            out.push('\n');
        }
    }
    out.push_str("---\n\n");
    out.push_str(&document.markdown);
    if !document.markdown.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Keys in sorted order, so a file's bytes do not depend on insertion order.
fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    quote(out, value);
    out.push('\n');
}

/// A JSON value in YAML flow style: JSON with `", "`/`": "` separators (which YAML 1.1
/// parsers need) and strings quoted by [`quote`].
fn flow(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => quote(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(out, key);
                out.push_str(": ");
                flow(out, item);
            }
            out.push('}');
        }
    }
}

/// A double-quoted string that is both valid JSON and a valid YAML double-quoted scalar:
/// what `serde_json::to_string` produces, except that characters YAML does not allow
/// unescaped in a stream (DEL, C1 controls, U+FEFF, U+2028/9, non-characters) are also
/// written as `\uXXXX`.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if yaml_printable(c) => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

fn yaml_printable(c: char) -> bool {
    matches!(c,
        '\u{20}'..='\u{7e}'
        | '\u{a0}'..='\u{2027}'
        | '\u{202a}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fefe}'
        | '\u{ff00}'..='\u{fffd}'
        | '\u{10000}'..='\u{10ffff}')
}

#[cfg(test)]
mod tests;
