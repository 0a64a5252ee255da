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

#[tokio::test]
async fn without_sync_writes_the_same_files_and_never_syncs() {
    let dir = TempDir::new("nosync");
    let sink = DirectorySink::new(&dir.0).without_sync();
    let batch: Vec<Document> = (0..5)
        .map(|i| document(&format!("https://example.com/{i}"), "x"))
        .collect();
    sink.deliver(&batch).await.unwrap();
    let mut replaced = batch.clone();
    for doc in &mut replaced {
        doc.markdown = "y".into();
    }
    sink.deliver(&replaced).await.unwrap();
    assert_eq!(sink.sync_calls(), 0);
    assert_eq!(entries(&dir.0).len(), 5);
    for doc in &replaced {
        let text = std::fs::read_to_string(dir.0.join(format!("{}.md", doc.id))).unwrap();
        assert_eq!(text, render(doc));
    }
    // Still staged and renamed: nothing is left in the staging folder.
    let staged = std::fs::read_dir(dir.0.join(TMP_DIR)).unwrap().count();
    assert_eq!(staged, 0);
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
    let sidecar: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join(sidecar_name(&doc.id))).unwrap())
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
