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
//! Files are written to a temporary name next to the target, flushed, then renamed over it,
//! so a crash never leaves a half-written `<id>.md`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::{Sink, SinkError};
use crate::connectors::document::Document;

/// The longest id accepted (a [`Document::stable_id`] is 32 chars).
pub const MAX_ID_LEN: usize = 128;

#[derive(Clone, Debug)]
pub struct DirectorySink {
    root: PathBuf,
}

impl DirectorySink {
    /// The directory is created on first delivery, not here.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { root: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
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
        let files: Vec<(String, String)> = documents
            .iter()
            .map(|document| (document.id.clone(), render(document)))
            .collect();
        let root = self.root.clone();
        let count = files.len();
        blocking(move || write_all(&root, &files)).await?;
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
            for id in &ids {
                match std::fs::remove_file(root.join(format!("{id}.md"))) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("remove", &root, &e)),
                }
            }
            Ok(())
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "directory"
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

fn write_all(root: &Path, files: &[(String, String)]) -> Result<(), SinkError> {
    std::fs::create_dir_all(root).map_err(|e| io_error("create directory", root, &e))?;
    for (id, content) in files {
        let target = root.join(format!("{id}.md"));
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = root.join(format!("{id}.md.{}-{n}.tmp", std::process::id()));
        let written = std::fs::File::create(&tmp)
            .and_then(|mut file| {
                file.write_all(content.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_error("write", &target, &e));
        }
    }
    // Make the renames durable too (best effort; not every platform can open a directory).
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(root) {
        let _ = dir.sync_all();
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
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
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
        // One file per document, no temporaries left behind.
        let mut expected = vec![format!("{}.md", first.id), format!("{}.md", other.id)];
        expected.sort();
        assert_eq!(entries(&dir.0), expected);

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
