//! The document every source produces and every sink receives (DESIGN §5).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A document as delivered to a sink: markdown, or (with [`Document::file`]) an original
/// file whose bytes sit in a spool on disk (`connectors::kit::files`).
///
/// DESIGN §5: `id` is stable per (source scope, source_id) so re-delivery overwrites, never
/// duplicates; build it with [`Document::stable_id`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    /// The kind of source, e.g. `"web"` or a connector kind.
    pub source: String,
    /// The source's own identifier (a canonical URL, a page id, ...).
    pub source_id: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub markdown: String,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// RFC 3339 UTC.
    pub updated_at: String,
    /// Principals allowed to read the document; empty means no restriction was given.
    #[serde(default)]
    pub acl: Vec<String>,
    /// Set for a file document: the original file; `markdown` is then empty and unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileBody>,
}

/// An original file (a PDF, a spreadsheet, ...) delivered as is.
///
/// Serialized as `{"name", "mime_type", "size", "sha256"}`; the bytes never are: they are
/// read from [`FileBody::content`] (absent on a deserialized copy).
#[derive(Clone, Serialize, Deserialize)]
pub struct FileBody {
    /// The file's name at the source (e.g. `"Q3 report.pdf"`); not sanitized.
    pub name: String,
    pub mime_type: String,
    /// Bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    #[serde(skip)]
    pub content: Option<Arc<dyn FileContent>>,
}

/// Where a file document's bytes are (a self-deleting spool file).
pub trait FileContent: Send + Sync {
    /// A fresh reader at offset 0: every delivery attempt reads the bytes again.
    fn open(&self) -> std::io::Result<std::fs::File>;
}

/// Bytes per chunk when a spool is streamed out.
pub const READ_CHUNK: usize = 64 * 1024;

impl FileBody {
    /// The bytes from the start, in chunks of at most [`READ_CHUNK`] (for an HTTP body):
    /// never read whole into memory.
    pub fn stream(
        &self,
    ) -> std::io::Result<futures::stream::BoxStream<'static, std::io::Result<Vec<u8>>>> {
        use futures::StreamExt as _;
        let reader = tokio::fs::File::from_std(self.open()?);
        Ok(
            futures::stream::try_unfold(reader, |mut reader| async move {
                use tokio::io::AsyncReadExt as _;
                let mut chunk = vec![0u8; READ_CHUNK];
                let read = reader.read(&mut chunk).await?;
                if read == 0 {
                    return Ok(None);
                }
                chunk.truncate(read);
                Ok(Some((chunk, reader)))
            })
            .boxed(),
        )
    }

    /// A fresh reader of the bytes; an error when this copy carries none (deserialized).
    pub fn open(&self) -> std::io::Result<std::fs::File> {
        match &self.content {
            Some(content) => content.open(),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the file document carries no bytes",
            )),
        }
    }
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBody")
            .field("name", &self.name)
            .field("mime_type", &self.mime_type)
            .field("size", &self.size)
            .field("sha256", &self.sha256)
            .field("content", &self.content.is_some())
            .finish()
    }
}

/// Equal metadata (the hash covers the bytes); where the bytes are kept does not matter.
impl PartialEq for FileBody {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.mime_type == other.mime_type
            && self.size == other.size
            && self.sha256 == other.sha256
    }
}

impl Document {
    /// 32 lowercase hex chars: the first 16 bytes of SHA-256(scope || 0x00 || source_id).
    ///
    /// `scope` names who owns the id space, e.g. `"crawl:<job id>"` or `"connector:<id>"`, so
    /// the same `source_id` from two scopes gives two documents while re-delivery from one
    /// scope replaces the earlier copy.
    pub fn stable_id(scope: &str, source_id: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(scope.as_bytes());
        hasher.update([0u8]);
        hasher.update(source_id.as_bytes());
        hex::encode(&hasher.finalize()[..16])
    }

    /// SHA-256 hex over the content a reader of the sink sees, to skip unchanged
    /// re-deliveries: title, markdown, metadata (as JSON with sorted keys, so key order does
    /// not matter), and also url and acl (a permission change must be re-delivered).
    /// `id`, `source`, `source_id` (identity) and `updated_at` (changes on every fetch) are
    /// left out. Every field is length-prefixed so no two documents collide by shifting
    /// bytes between fields. A file document's hash also covers the file's name, mime
    /// type, size and SHA-256 (a markdown document's hash is what it always was).
    pub fn content_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hash_optional(&mut hasher, self.title.as_deref());
        hash_field(&mut hasher, self.markdown.as_bytes());
        hash_field(
            &mut hasher,
            canonical(&Value::Object(self.metadata.clone()))
                .to_string()
                .as_bytes(),
        );
        hash_optional(&mut hasher, self.url.as_deref());
        hasher.update((self.acl.len() as u64).to_be_bytes());
        for principal in &self.acl {
            hash_field(&mut hasher, principal.as_bytes());
        }
        if let Some(file) = &self.file {
            hasher.update([b'f']);
            hash_field(&mut hasher, file.name.as_bytes());
            hash_field(&mut hasher, file.mime_type.as_bytes());
            hasher.update(file.size.to_be_bytes());
            hash_field(&mut hasher, file.sha256.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

fn hash_field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

fn hash_optional(hasher: &mut Sha256, value: Option<&str>) {
    match value {
        None => hasher.update([0u8]),
        Some(value) => {
            hasher.update([1u8]);
            hash_field(hasher, value.as_bytes());
        }
    }
}

/// The same value with every object's keys in sorted order (whether or not serde_json's
/// `preserve_order` feature is on somewhere in the build).
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(key, value)| (key.clone(), canonical(value)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Document {
        Document {
            id: Document::stable_id("crawl:job-1", "https://example.com/a"),
            source: "web".into(),
            source_id: "https://example.com/a".into(),
            title: Some("A".into()),
            url: Some("https://example.com/a".into()),
            markdown: "# A\n\nbody".into(),
            metadata: Map::new(),
            updated_at: "2025-01-01T00:00:00Z".into(),
            acl: vec![],
            file: None,
        }
    }

    #[test]
    fn stable_id_is_stable_and_shaped() {
        let a = Document::stable_id("crawl:job-1", "https://example.com/a");
        assert_eq!(
            a,
            Document::stable_id("crawl:job-1", "https://example.com/a")
        );
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
        // Known value: first 16 bytes of SHA-256("s\0x").
        let full = hex::encode(Sha256::digest(b"s\0x"));
        assert_eq!(Document::stable_id("s", "x"), full[..32]);
    }

    #[test]
    fn stable_id_is_distinct_across_scopes_and_sources() {
        let a = Document::stable_id("crawl:job-1", "https://example.com/a");
        assert_ne!(
            a,
            Document::stable_id("crawl:job-2", "https://example.com/a")
        );
        assert_ne!(
            a,
            Document::stable_id("crawl:job-1", "https://example.com/b")
        );
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            Document::stable_id("ab", "c"),
            Document::stable_id("a", "bc")
        );
    }

    #[test]
    fn content_hash_tracks_content_only() {
        let base = document();
        let hash = base.content_hash();
        assert_eq!(hash.len(), 64);

        let mut refetched = base.clone();
        refetched.updated_at = "2025-02-01T00:00:00Z".into();
        assert_eq!(refetched.content_hash(), hash);

        let mut edited = base.clone();
        edited.markdown.push('!');
        assert_ne!(edited.content_hash(), hash);

        let mut untitled = base.clone();
        untitled.title = None;
        assert_ne!(untitled.content_hash(), hash);
        let mut empty_title = base.clone();
        empty_title.title = Some(String::new());
        assert_ne!(empty_title.content_hash(), untitled.content_hash());

        let mut restricted = base.clone();
        restricted.acl = vec!["group:eng".into()];
        assert_ne!(restricted.content_hash(), hash);

        let mut tagged = base.clone();
        tagged.metadata.insert("lang".into(), json!("en"));
        assert_ne!(tagged.content_hash(), hash);

        // Shifting bytes between fields changes the hash.
        let mut shifted = base.clone();
        shifted.title = Some("A# A".into());
        shifted.markdown = "\n\nbody".into();
        assert_ne!(shifted.content_hash(), hash);
    }

    #[test]
    fn content_hash_ignores_metadata_key_order() {
        let mut a = document();
        a.metadata.insert("b".into(), json!({"y": 1, "x": 2}));
        a.metadata.insert("a".into(), json!(1));
        let mut b = document();
        b.metadata.insert("a".into(), json!(1));
        b.metadata.insert("b".into(), json!({"x": 2, "y": 1}));
        assert_eq!(a.content_hash(), b.content_hash());
    }

    #[test]
    fn serde_defaults_metadata_and_acl() {
        let parsed: Document = serde_json::from_value(json!({
            "id": "x", "source": "web", "source_id": "s", "title": null, "url": null,
            "markdown": "m", "updated_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap();
        assert!(parsed.metadata.is_empty());
        assert!(parsed.acl.is_empty());
        assert!(parsed.file.is_none());
        let round: Document =
            serde_json::from_str(&serde_json::to_string(&document()).unwrap()).unwrap();
        assert_eq!(round, document());
        assert!(!serde_json::to_string(&document()).unwrap().contains("file"));
    }

    #[test]
    fn a_markdown_documents_hash_is_unchanged() {
        // Computed independently from the pre-file-document definition: stored content
        // hashes stay valid.
        assert_eq!(
            document().content_hash(),
            "e2f5ddcac2a3e99ddb4b6db61d8571af50b3405770165b9f12f2f9d323175db0"
        );
    }

    fn file(name: &str, sha256: &str) -> FileBody {
        FileBody {
            name: name.into(),
            mime_type: "application/pdf".into(),
            size: 3,
            sha256: sha256.into(),
            content: None,
        }
    }

    #[test]
    fn a_file_documents_hash_covers_the_file_and_its_metadata() {
        let mut a = document();
        a.markdown = String::new();
        a.file = Some(file("a.pdf", "aa"));
        let hash = a.content_hash();
        let mut markdown_only = a.clone();
        markdown_only.file = None;
        assert_ne!(markdown_only.content_hash(), hash);
        for changed in [file("b.pdf", "aa"), file("a.pdf", "ab")] {
            let mut b = a.clone();
            b.file = Some(changed);
            assert_ne!(b.content_hash(), hash);
        }
        let mut bigger = a.clone();
        bigger.file.as_mut().unwrap().size = 4;
        assert_ne!(bigger.content_hash(), hash);
        let mut retyped = a.clone();
        retyped.file.as_mut().unwrap().mime_type = "text/plain".into();
        assert_ne!(retyped.content_hash(), hash);
    }

    #[test]
    fn a_file_serializes_its_metadata_never_its_bytes() {
        let mut a = document();
        a.file = Some(file("a.pdf", "aa"));
        let value = serde_json::to_value(&a).unwrap();
        assert_eq!(
            value["file"],
            json!({"name": "a.pdf", "mime_type": "application/pdf", "size": 3, "sha256": "aa"})
        );
        let back: Document = serde_json::from_value(value).unwrap();
        assert_eq!(back, a);
        let error = back.file.unwrap().open().unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }
}
