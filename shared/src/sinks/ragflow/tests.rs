use super::*;

fn document(markdown: &str) -> Document {
    Document {
        id: "0123456789abcdef0123456789abcdef".into(),
        source: "web".into(),
        source_id: "https://example.com/a".into(),
        title: Some("A \"quoted\"\ntitle\u{2028}".into()),
        url: Some("https://example.com/a".into()),
        markdown: markdown.into(),
        metadata: serde_json::Map::new(),
        updated_at: "2025-01-01T00:00:00Z".into(),
        acl: vec!["group:eng".into()],
        file: None,
    }
}

fn sink(base: &str) -> RagflowSink {
    RagflowSink::new(
        crate::http::GuardedClient::with_policy(
            crate::http::policy::NetworkPolicy::allow_private(),
        )
        .unwrap(),
        url::Url::parse(base).unwrap(),
        "ds_1-A".into(),
        "ragflow-secret-key".into(),
    )
}

#[test]
fn dataset_ids() {
    for ok in [
        "a",
        "ds_1-A",
        &"x".repeat(64),
        "7898da028a0511efbf750242ac120005",
    ] {
        assert!(validate_dataset_id(ok).is_ok(), "{ok}");
    }
    for bad in ["", "a/b", "..", "a b", "a%2F", "é", &"x".repeat(65)] {
        assert!(
            matches!(validate_dataset_id(bad), Err(SinkError::Config(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn copies_are_the_exact_name_or_ragflows_renames() {
    let id = "abc123";
    for name in ["abc123.md", "abc123(1).md", "abc123(27).md"] {
        assert!(is_copy(name, id), "{name}");
    }
    for name in [
        "abc123",
        "abc123.txt",
        "xabc123.md",
        "abc1234.md",
        "abc123().md",
        "abc123(x).md",
        "abc123(1)(2).md",
        "abc123.md.md",
        "ABC123.md",
        "abc123 (1).md",
    ] {
        assert!(!is_copy(name, id), "{name}");
    }
}

#[test]
fn file_documents_keep_their_name_and_extension_behind_the_id() {
    let mut doc = document("");
    let named = |doc: &mut Document, name: &str| {
        doc.file = Some(crate::connectors::document::FileBody {
            name: name.into(),
            mime_type: "application/pdf".into(),
            size: 1,
            sha256: "00".into(),
            content: None,
        });
        stored_name(doc)
    };
    let id = doc.id.clone();
    assert_eq!(
        named(&mut doc, "Q3 report.pdf"),
        format!("{id}.file.Q3 report.pdf")
    );
    assert_eq!(
        named(&mut doc, "../a/b\\c\n.pdf"),
        format!("{id}.file..._a_b_c_.pdf")
    );
    assert_eq!(named(&mut doc, "  "), format!("{id}.file.file"));
    let long = format!("{}.xlsx", "é".repeat(300));
    let name = named(&mut doc, &long);
    assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
    assert!(name.starts_with(&id) && name.ends_with("é.xlsx"), "{name}");
    doc.file = None;
    assert_eq!(stored_name(&doc), format!("{id}.md"));
}

#[test]
fn any_copy_is_a_markdown_copy_or_the_id_then_the_file_mark() {
    let id = "abc123";
    for name in [
        "abc123.md",
        "abc123(1).md",
        "abc123.file.Q3 report.pdf",
        "abc123.file.Q3 report(2).pdf",
        "abc123.file(3).noext",
        "abc123.file.md",
    ] {
        assert!(is_any_copy(name, id), "{name}");
    }
    for name in [
        "abc123",
        "abc123.file",
        "abc123.file.",
        "abc123.md.txt",
        "abc123.pdf",
        "abc123.files.x.pdf",
        "abc123.file().x",
        "abc123.file(x).y",
        "abc1234.file.x.pdf",
        "xabc123.file.x.pdf",
        "abc123-x.pdf",
    ] {
        assert!(!is_any_copy(name, id), "{name}");
    }
}

#[test]
fn render_has_a_safe_front_matter() {
    let text = render(&document("# Body"));
    assert_eq!(
        text,
        "---\n\
         id: \"0123456789abcdef0123456789abcdef\"\n\
         source: \"web\"\n\
         source_id: \"https://example.com/a\"\n\
         title: \"A \\\"quoted\\\"\\ntitle\\u2028\"\n\
         url: \"https://example.com/a\"\n\
         updated_at: \"2025-01-01T00:00:00Z\"\n\
         ---\n\n# Body\n"
    );
    // Every front matter value is a JSON string.
    for line in text.lines().skip(1).take(6) {
        let (_, value) = line.split_once(": ").unwrap();
        serde_json::from_str::<String>(value).unwrap();
    }
    assert!(!text.contains("group:eng"), "no acl in the content");
    let mut bare = document("ends with newline\n");
    bare.title = None;
    bare.url = None;
    let text = render(&bare);
    assert!(!text.contains("title:") && !text.contains("url:"), "{text}");
    assert!(text.ends_with("ends with newline\n"));
}

#[test]
fn endpoints_keep_a_base_path_and_escape_segments() {
    let plain = sink("https://rag.example");
    assert_eq!(
        plain.endpoint(&["documents"]).unwrap().as_str(),
        "https://rag.example/api/v1/datasets/ds_1-A/documents"
    );
    let prefixed = sink("https://rag.example/ragflow/?x=1#f");
    assert_eq!(
        prefixed.endpoint(&["documents", "a/b"]).unwrap().as_str(),
        "https://rag.example/ragflow/api/v1/datasets/ds_1-A/documents/a%2Fb"
    );
    assert_eq!(
        sink("http://127.0.0.1:9380/base")
            .endpoint(&["chunks"])
            .unwrap()
            .as_str(),
        "http://127.0.0.1:9380/base/api/v1/datasets/ds_1-A/chunks"
    );
}

#[test]
fn debug_hides_the_key() {
    let shown = format!("{:?}", sink("https://rag.example"));
    assert!(!shown.contains("ragflow-secret-key"), "{shown}");
    assert!(shown.contains("rag.example"), "{shown}");
}

#[test]
fn classification() {
    use reqwest::StatusCode;
    let ok = classify("list", StatusCode::OK, br#"{"code":0,"data":{"docs":[]}}"#);
    assert_eq!(ok.unwrap(), serde_json::json!({"docs": []}));
    assert_eq!(
        classify("parse", StatusCode::OK, br#"{"code":0}"#).unwrap(),
        Value::Null
    );

    let rejected = |status: StatusCode, body: &[u8]| match classify("x", status, body) {
        Err(SinkError::Rejected { status, message }) => (status, message),
        other => panic!("{other:?}"),
    };
    let (status, message) = rejected(
        StatusCode::OK,
        br#"{"code":109,"message":"Authentication error: API key is invalid!"}"#,
    );
    assert_eq!(status, 401);
    assert!(message.contains("API key is invalid"), "{message}");
    assert_eq!(
        rejected(StatusCode::OK, br#"{"code":108,"message":"no"}"#).0,
        403
    );
    assert_eq!(
        rejected(StatusCode::OK, br#"{"code":102,"message":"no"}"#).0,
        400
    );
    assert_eq!(rejected(StatusCode::OK, b"<html>login</html>").0, 502);
    let (status, message) = rejected(
        StatusCode::UNAUTHORIZED,
        br#"{"code":401,"message":"bad\nkey"}"#,
    );
    assert_eq!((status, message.as_str()), (401, "bad key"));
    assert_eq!(
        rejected(StatusCode::NOT_FOUND, b"").1,
        "(empty response body)"
    );

    for (status, body) in [
        (StatusCode::SERVICE_UNAVAILABLE, &b"busy"[..]),
        (StatusCode::TOO_MANY_REQUESTS, b""),
        (StatusCode::REQUEST_TIMEOUT, b""),
        (
            StatusCode::OK,
            br#"{"code":105,"message":"Can't connect database"}"#,
        ),
        (StatusCode::OK, br#"{"code":500,"message":"boom"}"#),
    ] {
        let err = classify("x", status, body).unwrap_err();
        assert!(
            matches!(err, SinkError::Unavailable(_)),
            "{status}: {err:?}"
        );
    }
    let long = format!(r#"{{"code":101,"message":"{}"}}"#, "m".repeat(5000));
    assert!(rejected(StatusCode::OK, long.as_bytes()).1.len() <= MAX_ERROR_MESSAGE + 32);
}
