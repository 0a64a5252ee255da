use super::*;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::routing::get;
use axum::Router;

fn limits(dir: &tempfile::TempDir, max_file_bytes: u64) -> FileLimits {
    FileLimits {
        max_file_bytes,
        spool_dir: Some(dir.path().to_path_buf()),
    }
}

fn entries(dir: &std::path::Path) -> Vec<std::fs::DirEntry> {
    std::fs::read_dir(dir).unwrap().flatten().collect()
}

fn spooled_bytes(dir: &std::path::Path) -> u64 {
    entries(dir)
        .iter()
        .map(|entry| entry.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}

fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<&'static [u8], Infallible>> {
    let owned: Vec<&'static [u8]> = Vec::from(parts);
    futures::stream::iter(owned.into_iter().map(Ok))
}

fn read_all(file: &FileBody) -> Vec<u8> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    file.open().unwrap().read_to_end(&mut bytes).unwrap();
    bytes
}

fn file_of(downloaded: Downloaded) -> FileBody {
    match downloaded {
        Downloaded::File(file) => file,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_spool_holds_the_bytes_with_their_size_and_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let file = file_of(
        spool(
            chunks(&[b"%PDF-1.7\n", b"\x00\x01binary", b""]),
            "a.pdf",
            "application/pdf",
            None,
            &limits(&dir, 1024),
        )
        .await
        .unwrap(),
    );
    let expected = b"%PDF-1.7\n\x00\x01binary";
    assert_eq!(file.size, expected.len() as u64);
    assert_eq!(file.sha256, hex::encode(Sha256::digest(expected)));
    assert_eq!(
        (file.name.as_str(), file.mime_type.as_str()),
        ("a.pdf", "application/pdf")
    );
    // Every reader starts at the beginning (a retried delivery reads the bytes again).
    assert_eq!(read_all(&file), expected);
    assert_eq!(read_all(&file), expected);
    // Exactly the cap is allowed.
    let exact = limits(&dir, 4);
    let exact = spool(chunks(&[b"1234"]), "x", OCTET_STREAM, Some(4), &exact);
    assert_eq!(file_of(exact.await.unwrap()).size, 4);
}

#[tokio::test]
async fn the_spool_is_removed_with_the_last_clone() {
    let dir = tempfile::tempdir().unwrap();
    let file = file_of(
        spool(
            chunks(&[b"abc"]),
            "a.bin",
            OCTET_STREAM,
            None,
            &limits(&dir, 10),
        )
        .await
        .unwrap(),
    );
    let copy = file.clone();
    drop(file);
    assert_eq!(entries(dir.path()).len(), 1);
    assert_eq!(read_all(&copy), b"abc");
    drop(copy);
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_any_byte_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let polled = AtomicBool::new(false);
    let body = futures::stream::poll_fn(|_| {
        polled.store(true, Ordering::SeqCst);
        std::task::Poll::Ready(Some(Ok::<_, Infallible>(&b"x"[..])))
    });
    let outcome = spool(
        body,
        "big.pdf",
        "application/pdf",
        Some(11),
        &limits(&dir, 10),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Downloaded::TooLarge { size: 11 }),
        "{outcome:?}"
    );
    assert!(!polled.load(Ordering::SeqCst));
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn a_stream_passing_the_cap_is_stopped_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // Endless and undeclared: only the count can stop it.
    let endless = futures::stream::repeat(Ok::<_, Infallible>(&[7u8; 1000][..]));
    let outcome = spool(endless, "big.bin", OCTET_STREAM, None, &limits(&dir, 4_500))
        .await
        .unwrap();
    assert!(
        matches!(outcome, Downloaded::TooLarge { size: 5_000 }),
        "{outcome:?}"
    );
    assert!(entries(dir.path()).is_empty());
    // A declared length under the cap that the body then exceeds is stopped too.
    let lying = futures::stream::repeat(Ok::<_, Infallible>(&[7u8; 1000][..]));
    let outcome = spool(
        lying,
        "big.bin",
        OCTET_STREAM,
        Some(10),
        &limits(&dir, 4_500),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Downloaded::TooLarge { .. }),
        "{outcome:?}"
    );
    assert!(entries(dir.path()).is_empty());
}

#[tokio::test]
async fn the_body_reaches_the_disk_as_it_streams() {
    // 8 MiB in 64 KiB chunks: when chunk k is produced, the chunks before k-1 are already
    // in the spool file, so at most a chunk or two is ever held in memory.
    const CHUNK: usize = 64 * 1024;
    const COUNT: usize = 128;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let lagging = std::sync::Mutex::new(Vec::new());
    let body = futures::stream::iter(0..COUNT).map(|k| {
        let on_disk = spooled_bytes(&path);
        let expected = (k.saturating_sub(2) * CHUNK) as u64;
        if on_disk < expected {
            lagging.lock().unwrap().push((k, on_disk));
        }
        Ok::<_, Infallible>(vec![(k % 251) as u8; CHUNK])
    });
    let file = file_of(
        spool(body, "big.bin", OCTET_STREAM, None, &limits(&dir, u64::MAX))
            .await
            .unwrap(),
    );
    assert_eq!(lagging.lock().unwrap().as_slice(), &[] as &[(usize, u64)]);
    assert_eq!(file.size, (CHUNK * COUNT) as u64);
    assert_eq!(spooled_bytes(dir.path()), file.size);
    let mut hasher = Sha256::new();
    for k in 0..COUNT {
        hasher.update(vec![(k % 251) as u8; CHUNK]);
    }
    assert_eq!(file.sha256, hex::encode(hasher.finalize()));
    // Read back out in bounded chunks, byte-exact.
    let mut streamed = file.stream().unwrap();
    let mut total = 0usize;
    let mut hasher = Sha256::new();
    while let Some(chunk) = streamed.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= crate::connectors::document::READ_CHUNK);
        total += chunk.len();
        hasher.update(&chunk);
    }
    assert_eq!(total as u64, file.size);
    assert_eq!(hex::encode(hasher.finalize()), file.sha256);
}

async fn serve(router: Router) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url::Url::parse(&format!("http://{address}/")).unwrap()
}

fn client() -> crate::http::GuardedClient {
    crate::http::GuardedClient::with_policy(crate::http::policy::NetworkPolicy::allow_private())
        .unwrap()
}

#[tokio::test]
async fn download_streams_through_the_guarded_client_and_applies_the_cap() {
    let router = Router::new()
        .route(
            "/report",
            get(|| async { ([("content-type", "application/pdf")], vec![1u8; 2_000]) }),
        )
        .route("/untyped", get(|| async { vec![2u8; 100] }))
        .route(
            "/chunked",
            get(|| async {
                let stream =
                    futures::stream::iter((0..10).map(|_| Ok::<_, Infallible>(vec![3u8; 1_000])));
                axum::body::Body::from_stream(stream)
            }),
        )
        .route(
            "/missing",
            get(|| async { axum::http::StatusCode::NOT_FOUND }),
        );
    let base = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let http = client();

    let file = file_of(
        download(
            http.get(base.join("report").unwrap()),
            "Q3.pdf",
            &limits(&dir, 5_000),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        (file.size, file.mime_type.as_str()),
        (2_000, "application/pdf")
    );
    assert_eq!(read_all(&file), vec![1u8; 2_000]);

    // No content type: guessed from the name.
    let untyped = file_of(
        download(
            http.get(base.join("untyped").unwrap()),
            "notes.docx",
            &limits(&dir, 5_000),
        )
        .await
        .unwrap(),
    );
    assert_eq!(untyped.mime_type, guess_mime("notes.docx"));

    // Content-Length over the cap.
    let outcome = download(
        http.get(base.join("report").unwrap()),
        "Q3.pdf",
        &limits(&dir, 1_999),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Downloaded::TooLarge { size: 2_000 }),
        "{outcome:?}"
    );
    // No Content-Length (chunked): the streamed count.
    let outcome = download(
        http.get(base.join("chunked").unwrap()),
        "c.bin",
        &limits(&dir, 4_500),
    )
    .await
    .unwrap();
    assert!(
        matches!(outcome, Downloaded::TooLarge { size } if size > 4_500),
        "{outcome:?}"
    );

    let error = download(
        http.get(base.join("missing").unwrap()),
        "m",
        &limits(&dir, 10),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, FileError::Status { status: 404 }),
        "{error:?}"
    );
    assert!(matches!(
        ConnectorError::from(error),
        ConnectorError::Protocol(_)
    ));
    drop((file, untyped));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn file_errors_map_to_connector_errors() {
    let status = |status| ConnectorError::from(FileError::Status { status });
    assert!(matches!(status(401), ConnectorError::Unauthorized(_)));
    assert!(matches!(status(403), ConnectorError::Unauthorized(_)));
    assert!(status(503).is_transient() && status(429).is_transient());
    assert!(!status(400).is_transient());
    assert!(ConnectorError::from(FileError::Io("disk full".into())).is_transient());
}

#[test]
fn text_like_files_are_recognised_by_mime_type_and_extension() {
    for (name, mime, kind) in [
        ("a.md", "text/markdown", Some(TextKind::Markdown)),
        (
            "a",
            "text/x-markdown; charset=utf-8",
            Some(TextKind::Markdown),
        ),
        ("a.md", "text/plain", Some(TextKind::Markdown)),
        ("a.markdown", OCTET_STREAM, Some(TextKind::Markdown)),
        ("notes.TXT", OCTET_STREAM, Some(TextKind::Plain)),
        ("notes", "text/plain", Some(TextKind::Plain)),
        ("t.csv", "text/plain", Some(TextKind::Csv)),
        ("t", "text/csv", Some(TextKind::Csv)),
        ("p.htm", OCTET_STREAM, Some(TextKind::Html)),
        ("p", "application/xhtml+xml", Some(TextKind::Html)),
        ("d.json", OCTET_STREAM, Some(TextKind::Json)),
        ("d", "application/json", Some(TextKind::Json)),
        ("r.pdf", "application/pdf", None),
        ("r.docx", guess_mime("r.docx"), None),
        (".md", OCTET_STREAM, None),
        ("image.png", "image/png", None),
    ] {
        assert_eq!(text_kind(name, mime), kind, "{name} {mime}");
    }
}

#[test]
fn csv_becomes_a_markdown_table() {
    let csv = "name,notes,n\r\n\"Smith, J\",\"said \"\"hi\"\"\nthen left\",1\nx|y,\n";
    assert_eq!(
        to_markdown(TextKind::Csv, csv),
        "| name | notes | n |\n\
         | --- | --- | --- |\n\
         | Smith, J | said \"hi\"<br>then left | 1 |\n\
         | x\\|y |  |  |\n"
    );
    assert_eq!(to_markdown(TextKind::Csv, ""), "");
    // Over the table cap: a fenced block, verbatim.
    let big = "a,b\n".repeat(MAX_CSV_TABLE_BYTES as usize / 4 + 1);
    let fenced = to_markdown(TextKind::Csv, &big);
    assert!(fenced.starts_with("```csv\na,b\n"), "{}", &fenced[..20]);
    assert!(fenced.ends_with("a,b\n```\n"));
}

#[test]
fn json_is_fenced_beyond_any_backtick_run_and_markdown_and_text_stay_as_they_are() {
    assert_eq!(
        to_markdown(TextKind::Json, "{\"a\": 1}\n"),
        "```json\n{\"a\": 1}\n```\n"
    );
    assert_eq!(
        to_markdown(TextKind::Json, "{\"code\": \"````\"}"),
        "`````json\n{\"code\": \"````\"}\n`````\n"
    );
    assert_eq!(to_markdown(TextKind::Markdown, "# T\n\n*x*"), "# T\n\n*x*");
    assert_eq!(to_markdown(TextKind::Plain, "plain <b>"), "plain <b>");
}

#[test]
fn html_goes_through_the_crawl_converter() {
    let markdown = to_markdown(
        TextKind::Html,
        "<html><head><title>T</title><script>x()</script></head>\
         <body><h1>Title</h1><p>Some <strong>bold</strong> text.</p></body></html>",
    );
    assert!(markdown.contains("# Title"), "{markdown}");
    assert!(markdown.contains("**bold**"), "{markdown}");
    assert!(!markdown.contains("x()"), "{markdown}");
}

async fn spooled(name: &str, mime: &str, bytes: &'static [u8]) -> FileBody {
    let limits = FileLimits::new(1 << 20);
    file_of(
        spool(chunks(&[bytes]), name, mime, None, &limits)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn into_content_converts_text_like_files_and_keeps_the_others() {
    let text = into_content(spooled("a.csv", "text/csv", b"\xEF\xBB\xBFh1,h2\n1,2\n").await)
        .await
        .unwrap();
    assert!(
        matches!(&text, Content::Markdown(m) if m == "| h1 | h2 |\n| --- | --- |\n| 1 | 2 |\n"),
        "{text:?}"
    );
    let html =
        into_content(spooled("p.html", "text/html; charset=iso-8859-1", b"<p>caf\xe9</p>").await)
            .await
            .unwrap();
    assert!(
        matches!(&html, Content::Markdown(m) if m.contains("café")),
        "{html:?}"
    );
    let pdf = into_content(spooled("r.pdf", "application/pdf", b"%PDF").await)
        .await
        .unwrap();
    assert!(
        matches!(&pdf, Content::File(f) if f.name == "r.pdf"),
        "{pdf:?}"
    );
    // A text file that is not UTF-8 goes as the original file.
    let latin = into_content(spooled("l.txt", "text/plain", b"caf\xe9").await)
        .await
        .unwrap();
    assert!(matches!(latin, Content::File(_)));

    let base = Document {
        id: "d".into(),
        source: "test".into(),
        source_id: "s".into(),
        title: None,
        url: None,
        markdown: "old".into(),
        metadata: serde_json::Map::new(),
        updated_at: "2025-01-01T00:00:00Z".into(),
        acl: vec![],
        file: None,
    };
    let document = pdf.into_document(base.clone());
    assert_eq!(
        (document.markdown.as_str(), document.file.is_some()),
        ("", true)
    );
    let document = text.into_document(document);
    assert!(document.file.is_none() && document.markdown.starts_with("| h1"));
}

#[test]
fn a_skipped_file_says_why() {
    let skipped = too_large("file-1", 60, &FileLimits::new(50));
    assert_eq!(
        skipped,
        SkippedFile {
            source_id: "file-1".into(),
            size: 60,
            reason: "larger than max_file_bytes (50)".into()
        }
    );
}
