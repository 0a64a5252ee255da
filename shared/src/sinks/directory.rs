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
}

impl DirectorySink {
    /// The directory is created on first delivery, not here; the first use in this process
    /// sweeps what crashed deliveries left (see [`sweep`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            root: path.into(),
            syncs: Arc::default(),
        }
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
        let syncs = self.syncs.clone();
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
            write_all(&root, &files, &syncs)?;
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
fn write_all(
    root: &Path,
    files: &[(String, Staged)],
    syncs: &SyncCounter,
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
    syncs: &SyncCounter,
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
    sync_files(staging, staged, syncs).map_err(|e| io_error("sync", staging, &e))?;
    for (tmp, target) in staged.iter() {
        std::fs::rename(tmp, target).map_err(|e| io_error("rename", target, &e))?;
    }
    // Make the renames durable too (best effort; not every platform can open a directory).
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(root) {
        syncs.note();
        let _ = dir.sync_all();
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
mod tests {
    use super::*;
    use serde_json::json;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "tributary-directory-sink-{name}-{}-{n}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            Self(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn document(source_id: &str, markdown: &str) -> Document {
        Document {
            id: Document::stable_id("crawl:job-1", source_id),
            source: "web".into(),
            source_id: source_id.into(),
            title: Some("A \"quoted\" title".into()),
            url: Some(source_id.into()),
            markdown: markdown.into(),
            metadata: serde_json::Map::new(),
            updated_at: "2025-01-01T00:00:00Z".into(),
            acl: vec![],
            file: None,
        }
    }

    /// What a reader of the folder sees: everything but dot-entries.
    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn writes_front_matter_then_markdown() {
        let dir = TempDir::new("write");
        let target = dir.0.join("nested");
        let sink = DirectorySink::new(&target);
        assert!(!target.exists(), "created lazily");
        let mut doc = document("https://example.com/a", "# Hello\n\nworld");
        doc.metadata.insert("lang".into(), json!("en"));
        doc.metadata.insert("depth".into(), json!(2));
        doc.metadata.insert("tags".into(), json!(["a", "b\"c"]));
        doc.acl = vec!["group:eng".into()];
        sink.deliver(std::slice::from_ref(&doc)).await.unwrap();

        let written = std::fs::read_to_string(target.join(format!("{}.md", doc.id))).unwrap();
        let expected = format!(
            "---\n\
             id: \"{id}\"\n\
             source: \"web\"\n\
             source_id: \"https://example.com/a\"\n\
             title: \"A \\\"quoted\\\" title\"\n\
             url: \"https://example.com/a\"\n\
             updated_at: \"2025-01-01T00:00:00Z\"\n\
             acl: [\"group:eng\"]\n\
             metadata:\n  \"depth\": 2\n  \"lang\": \"en\"\n  \"tags\": [\"a\", \"b\\\"c\"]\n\
             ---\n\n# Hello\n\nworld\n",
            id = doc.id
        );
        assert_eq!(written, expected);
        assert_eq!(entries(&target), vec![format!("{}.md", doc.id)]);
        assert_eq!(sink.kind(), "directory");
    }

    #[test]
    fn front_matter_values_cannot_break_out() {
        let mut doc = document("https://example.com/a", "body\n");
        doc.title = Some("x\"\n---\nid: evil\u{7f}\u{85}\u{2028}\u{feff}\u{1}".into());
        doc.url = None;
        let rendered = render(&doc);
        let front: Vec<&str> = rendered.lines().collect();
        assert_eq!(
            front[4],
            r#"title: "x\"\n---\nid: evil\u007f\u0085\u2028\ufeff\u0001""#
        );
        // Still valid JSON with the same value.
        let value: String = serde_json::from_str(&front[4]["title: ".len()..]).unwrap();
        assert_eq!(Some(value), doc.title);
        assert!(!rendered.contains("url:"));
        assert!(rendered.contains("metadata: {}\n---\n\nbody\n"));
        assert_eq!(rendered.matches("\n---\n").count(), 1);
        // Astral characters are printable and written as-is.
        let mut s = String::new();
        quote(&mut s, "é😀");
        assert_eq!(s, "\"é😀\"");
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "é😀");
    }

    #[tokio::test]
    async fn redelivery_overwrites_and_delete_removes() {
        let dir = TempDir::new("overwrite");
        let sink = DirectorySink::new(&dir.0);
        let first = document("https://example.com/a", "v1");
        let other = document("https://example.com/b", "other");
        sink.deliver(&[first.clone(), other.clone()]).await.unwrap();
        let mut second = first.clone();
        second.markdown = "v2".into();
        sink.deliver(std::slice::from_ref(&second)).await.unwrap();

        let path = dir.0.join(format!("{}.md", first.id));
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .ends_with("\n\nv2\n"));
        // One file per document, no temporaries left behind (staged or visible).
        let mut expected = vec![format!("{}.md", first.id), format!("{}.md", other.id)];
        expected.sort();
        assert_eq!(entries(&dir.0), expected);
        assert_eq!(std::fs::read_dir(dir.0.join(TMP_DIR)).unwrap().count(), 0);

        sink.delete(std::slice::from_ref(&first.id)).await.unwrap();
        assert!(!path.exists());
        // Deleting a missing document (and an empty list) is fine.
        sink.delete(std::slice::from_ref(&first.id)).await.unwrap();
        sink.delete(&[]).await.unwrap();
        assert_eq!(entries(&dir.0), vec![format!("{}.md", other.id)]);
    }

    #[tokio::test]
    async fn hostile_ids_are_refused() {
        let dir = TempDir::new("traversal");
        let sink = DirectorySink::new(dir.0.join("out"));
        for id in [
            "../escape",
            "..",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "",
            "UPPER",
            ".hidden",
            "a.md",
            "nul\0",
            &"a".repeat(MAX_ID_LEN + 1),
        ] {
            let mut doc = document("https://example.com/a", "x");
            doc.id = id.to_string();
            let err = sink.deliver(&[doc]).await.unwrap_err();
            assert!(
                matches!(err, SinkError::Rejected { status: 400, .. }),
                "{id:?}: {err:?}"
            );
            assert!(!err.is_transient());
            let err = sink.delete(&[id.to_string()]).await.unwrap_err();
            assert!(matches!(err, SinkError::Rejected { .. }), "{id:?}");
        }
        // A bad id anywhere in the batch means nothing is written.
        let good = document("https://example.com/a", "x");
        let mut bad = good.clone();
        bad.id = "../x".into();
        assert!(sink.deliver(&[good, bad]).await.is_err());
        assert!(!dir.0.join("out").exists());
        assert!(!dir.0.join("x.md").exists());
        validate_id(&"a".repeat(MAX_ID_LEN)).unwrap();
        validate_id("abc-123_x").unwrap();
    }

    #[tokio::test]
    async fn crashed_deliveries_leave_nothing_visible_and_are_swept() {
        let dir = TempDir::new("sweep");
        let doc = document("https://example.com/a", "v1");
        // What a writer killed mid-delivery left: a legacy temporary next to the documents,
        // an old staged file, and a fresh one (a live writer in another process).
        std::fs::create_dir_all(dir.0.join(TMP_DIR)).unwrap();
        let legacy = dir.0.join(format!("{}.md.4242-7.tmp", doc.id));
        std::fs::write(&legacy, "half").unwrap();
        let stale = dir.0.join(TMP_DIR).join(format!("4242-8-{}.md", doc.id));
        std::fs::write(&stale, "half").unwrap();
        let old = SystemTime::now() - STALE_TMP_AGE - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let live = dir.0.join(TMP_DIR).join(format!("4243-0-{}.md", doc.id));
        std::fs::write(&live, "in progress").unwrap();

        DirectorySink::new(&dir.0)
            .deliver(std::slice::from_ref(&doc))
            .await
            .unwrap();
        assert!(!legacy.exists(), "legacy temporary swept");
        assert!(!stale.exists(), "stale staged file swept");
        assert!(live.exists(), "a live writer's file is left alone");
        assert_eq!(entries(&dir.0), vec![format!("{}.md", doc.id)]);
        // Files that only look like temporaries are not touched.
        for name in ["notes.md.tmp", "x.md.12-a.tmp", "UP.md.1-2.tmp"] {
            assert!(!is_legacy_tmp(name), "{name}");
        }
        assert!(is_legacy_tmp(&format!("{}.md.1-2.tmp", doc.id)));
    }

    #[tokio::test]
    async fn a_batch_syncs_a_constant_number_of_times() {
        let dir = TempDir::new("fsync");
        let sink = DirectorySink::new(&dir.0);
        let batch: Vec<Document> = (0..50)
            .map(|i| document(&format!("https://example.com/{i}"), "x"))
            .collect();
        sink.deliver(&batch).await.unwrap();
        let one_batch = sink.sync_calls();
        assert!(one_batch >= 1, "the batch is made durable");
        #[cfg(target_os = "linux")]
        assert!(one_batch <= 2, "50 documents took {one_batch} syncs");
        let mut replaced = batch.clone();
        for doc in &mut replaced {
            doc.markdown = "y".into();
        }
        sink.deliver(&replaced).await.unwrap();
        assert_eq!(sink.sync_calls(), 2 * one_batch);
        // Every document replaced in place, one file each.
        assert_eq!(entries(&dir.0).len(), 50);
        for doc in &batch {
            let text = std::fs::read_to_string(dir.0.join(format!("{}.md", doc.id))).unwrap();
            assert!(text.ends_with("\n\ny\n"), "{text}");
        }
    }

    async fn spooled(name: &str, bytes: &[u8]) -> crate::connectors::document::FileBody {
        use crate::connectors::kit::files;
        let chunks = futures::stream::iter(
            bytes
                .chunks(3)
                .map(|chunk| Ok::<_, std::convert::Infallible>(chunk.to_vec()))
                .collect::<Vec<_>>(),
        );
        match files::spool(
            chunks,
            name,
            "application/pdf",
            None,
            &files::FileLimits::default(),
        )
        .await
        .unwrap()
        {
            files::Downloaded::File(file) => file,
            other => panic!("{other:?}"),
        }
    }

    fn file_document(source_id: &str, file: crate::connectors::document::FileBody) -> Document {
        let mut doc = document(source_id, "");
        doc.file = Some(file);
        doc.metadata.insert("folder".into(), json!("/Reports"));
        doc.acl = vec!["user:a".into()];
        doc
    }

    #[tokio::test]
    async fn a_file_document_is_its_original_bytes_plus_a_sidecar() {
        let dir = TempDir::new("file");
        let sink = DirectorySink::new(&dir.0);
        let bytes = b"%PDF-1.7\n\x00\xff binary \r\n".to_vec();
        let doc = file_document("drive:1", spooled("Q3/report: final?.pdf", &bytes).await);
        sink.deliver(std::slice::from_ref(&doc)).await.unwrap();

        let stored = format!("{}.Q3_report_ final_.pdf", doc.id);
        assert_eq!(local_name(&doc.id, "Q3/report: final?.pdf"), stored);
        assert_eq!(std::fs::read(dir.0.join(&stored)).unwrap(), bytes);
        let sidecar: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.0.join(sidecar_name(&doc.id))).unwrap(),
        )
        .unwrap();
        let file = doc.file.as_ref().unwrap();
        assert_eq!(
            sidecar,
            json!({
                "id": doc.id,
                "source": "web",
                "source_id": "drive:1",
                "title": "A \"quoted\" title",
                "url": "drive:1",
                "updated_at": "2025-01-01T00:00:00Z",
                "acl": ["user:a"],
                "metadata": {"folder": "/Reports"},
                "file": {
                    "name": "Q3/report: final?.pdf",
                    "mime_type": "application/pdf",
                    "size": bytes.len(),
                    "sha256": file.sha256,
                    "path": stored,
                },
            })
        );
        let mut expected = vec![stored.clone(), sidecar_name(&doc.id)];
        expected.sort();
        assert_eq!(entries(&dir.0), expected);

        // Renamed at the source: the old file goes.
        let renamed = file_document("drive:1", spooled("final.pdf", b"v2").await);
        sink.deliver(std::slice::from_ref(&renamed)).await.unwrap();
        let mut expected = vec![format!("{}.final.pdf", doc.id), sidecar_name(&doc.id)];
        expected.sort();
        assert_eq!(entries(&dir.0), expected);
        assert_eq!(
            std::fs::read(dir.0.join(format!("{}.final.pdf", doc.id))).unwrap(),
            b"v2"
        );

        // Now markdown: the file and its sidecar go; and back to a file: the markdown goes.
        let markdown = document("drive:1", "# converted");
        sink.deliver(std::slice::from_ref(&markdown)).await.unwrap();
        assert_eq!(entries(&dir.0), vec![format!("{}.md", doc.id)]);
        sink.deliver(std::slice::from_ref(&renamed)).await.unwrap();
        assert_eq!(entries(&dir.0), expected);

        sink.delete(std::slice::from_ref(&doc.id)).await.unwrap();
        assert!(entries(&dir.0).is_empty());
        assert_eq!(std::fs::read_dir(dir.0.join(TMP_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn stored_file_names_stay_inside_the_document_and_the_folder() {
        let id = "0123456789abcdef0123456789abcdef";
        for (name, stored) in [
            ("../../etc/passwd", ".._.._etc_passwd"),
            ("a\\b\0c", "a_b_c"),
            ("  ", "file"),
            ("md", "_md"),
            ("META.JSON", "_META.JSON"),
            (".hidden", ".hidden"),
        ] {
            assert_eq!(local_name(id, name), format!("{id}.{stored}"), "{name:?}");
        }
        let long = local_name(id, &format!("{}.docx", "ü".repeat(200)));
        assert!(long.len() <= 255 && long.ends_with(".docx"), "{long}");
    }

    #[tokio::test]
    async fn a_sidecar_naming_a_foreign_file_is_not_followed() {
        let dir = TempDir::new("sidecar");
        std::fs::create_dir_all(&dir.0).unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        std::fs::write(dir.0.join("keep.txt"), "other").unwrap();
        std::fs::write(
            dir.0.join(sidecar_name(id)),
            json!({"file": {"path": "keep.txt"}}).to_string(),
        )
        .unwrap();
        DirectorySink::new(&dir.0)
            .delete(&[id.to_string()])
            .await
            .unwrap();
        assert_eq!(entries(&dir.0), vec!["keep.txt".to_string()]);
    }

    #[tokio::test]
    async fn unwritable_directory_is_an_io_error() {
        let dir = TempDir::new("io");
        std::fs::create_dir_all(&dir.0).unwrap();
        let blocker = dir.0.join("file");
        std::fs::write(&blocker, b"not a directory").unwrap();
        let sink = DirectorySink::new(blocker.join("sub"));
        let err = sink
            .deliver(&[document("https://example.com/a", "x")])
            .await
            .unwrap_err();
        assert!(matches!(err, SinkError::Io(_)), "{err:?}");
    }
}
