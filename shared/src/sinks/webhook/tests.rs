use super::*;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const SECRET: &[u8] = b"test-webhook-secret";

struct Receiver {
    status: AtomicU16,
    bodies: Mutex<Vec<Value>>,
    bad_signatures: AtomicUsize,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/json");
    let timestamp: i64 = header(TIMESTAMP_HEADER).parse().unwrap_or(i64::MIN);
    let now = chrono::Utc::now().timestamp();
    if !verify(
        SECRET,
        timestamp,
        &body,
        &header(SIGNATURE_HEADER),
        now,
        DEFAULT_TOLERANCE_SECS,
    ) {
        receiver.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    receiver
        .bodies
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    let status = StatusCode::from_u16(receiver.status.load(Ordering::SeqCst)).unwrap();
    (status, "\n  receiver says\tno \n")
}

/// A receiver on 127.0.0.1:0 that answers `status` to correctly signed requests.
async fn server(status: u16) -> (url::Url, Arc<Receiver>) {
    let receiver = Arc::new(Receiver {
        status: AtomicU16::new(status),
        bodies: Mutex::new(Vec::new()),
        bad_signatures: AtomicUsize::new(0),
    });
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = url::Url::parse(&format!("http://{address}/hook?token=t0ps3cret")).unwrap();
    (url, receiver)
}

fn sink(url: url::Url, secret: &[u8]) -> WebhookSink {
    WebhookSink::new(
        crate::http::GuardedClient::with_policy(
            crate::http::policy::NetworkPolicy::allow_private(),
        )
        .unwrap(),
        url,
        secret.to_vec(),
    )
}

fn documents(n: usize, markdown: &str) -> Vec<Document> {
    (0..n)
        .map(|i| {
            let source_id = format!("https://example.com/{i}");
            Document {
                id: Document::stable_id("crawl:job-1", &source_id),
                source: "web".into(),
                source_id: source_id.clone(),
                title: Some(format!("Page {i}")),
                url: Some(source_id),
                markdown: markdown.into(),
                metadata: serde_json::Map::new(),
                updated_at: "2025-01-01T00:00:00Z".into(),
                acl: vec![],
                file: None,
            }
        })
        .collect()
}

fn received_documents(body: &Value) -> Vec<Document> {
    assert_eq!(body["event"], UPSERTED_EVENT);
    serde_json::from_value(body["documents"].clone()).unwrap()
}

#[tokio::test]
async fn delivers_signed_batches_of_fifty() {
    let (url, receiver) = server(200).await;
    let sink = sink(url, SECRET);
    assert_eq!(sink.kind(), "webhook");
    let docs = documents(120, "# Body");
    sink.deliver(&docs).await.unwrap();

    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    let sizes: Vec<usize> = bodies.iter().map(|b| received_documents(b).len()).collect();
    assert_eq!(sizes, vec![50, 50, 20]);
    let all: Vec<Document> = bodies.iter().flat_map(received_documents).collect();
    assert_eq!(all, docs);
}

#[tokio::test]
async fn large_documents_split_by_bytes() {
    let (url, receiver) = server(204).await;
    let docs = documents(3, &"x".repeat(2_000_000));
    sink(url, SECRET).deliver(&docs).await.unwrap();
    let bodies = receiver.bodies.lock().unwrap().clone();
    let sizes: Vec<usize> = bodies.iter().map(|b| received_documents(b).len()).collect();
    assert_eq!(sizes, vec![2, 1]);
}

#[test]
fn batching_limits() {
    assert!(batches(&[], 50, 100).is_empty());
    assert_eq!(batches(&[10; 5], 2, 1000), vec![0..2, 2..4, 4..5]);
    // 10 + (1 + 10) = 21 fits in 21; a third needs 32.
    assert_eq!(batches(&[10, 10, 10], 50, 21), vec![0..2, 2..3]);
    assert_eq!(batches(&[10, 10, 10], 50, 20), vec![0..1, 1..2, 2..3]);
    // An oversized item goes alone.
    assert_eq!(batches(&[5, 500, 5], 50, 100), vec![0..1, 1..2, 2..3]);
    assert_eq!(batches(&[500], 50, 100), vec![0..1]);
}

#[tokio::test]
async fn delete_posts_ids_and_empty_calls_send_nothing() {
    let (url, receiver) = server(200).await;
    let sink = sink(url, SECRET);
    sink.deliver(&[]).await.unwrap();
    sink.delete(&[]).await.unwrap();
    assert!(receiver.bodies.lock().unwrap().is_empty());

    let ids = vec!["a1".to_string(), "b2".to_string()];
    sink.delete(&ids).await.unwrap();
    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(
        bodies,
        vec![serde_json::json!({"event": DELETED_EVENT, "ids": ["a1", "b2"]})]
    );
}

#[tokio::test]
async fn retryable_statuses_are_unavailable() {
    for status in [500, 503, 429, 408] {
        let (url, _receiver) = server(status).await;
        let err = sink(url, SECRET)
            .deliver(&documents(1, "x"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SinkError::Unavailable(_)),
            "{status}: {err:?}"
        );
        assert!(err.is_transient());
    }
}

#[tokio::test]
async fn client_errors_are_rejected() {
    for status in [400, 404, 413] {
        let (url, _receiver) = server(status).await;
        let err = sink(url, SECRET).delete(&["a".into()]).await.unwrap_err();
        match &err {
            SinkError::Rejected {
                status: got,
                message,
            } => {
                assert_eq!(*got, status);
                assert_eq!(message, "receiver says no");
            }
            other => panic!("{status}: {other:?}"),
        }
        assert!(!err.is_transient());
    }
}

#[tokio::test]
async fn wrong_secret_fails_verification() {
    let (url, receiver) = server(200).await;
    let err = sink(url, b"not-the-secret")
        .deliver(&documents(1, "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 1);
    assert!(receiver.bodies.lock().unwrap().is_empty());
}

#[tokio::test]
async fn network_errors_are_unavailable_and_hide_the_url() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let url = url::Url::parse(&format!("http://{address}/hook?token=t0ps3cret")).unwrap();
    let err = sink(url, SECRET)
        .deliver(&documents(1, "x"))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("t0ps3cret"), "{err}");
    assert!(err.is_transient());
}

type Raw = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver that keeps every request as it came (headers and exact body bytes).
async fn raw_server() -> (url::Url, Raw) {
    let seen: Raw = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |State(seen): State<Raw>, headers: HeaderMap, body: Bytes| async move {
                    seen.lock().unwrap().push((headers, body));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        url::Url::parse(&format!("http://{address}/hook")).unwrap(),
        seen,
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// `(name, filename, content type, bytes)` of each part, parsed as a receiver would.
fn parts(content_type: &str, body: &[u8]) -> Vec<(String, Option<String>, String, Vec<u8>)> {
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap();
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body
        .strip_prefix(format!("--{boundary}").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n").unwrap();
        let end = find(rest, b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&rest[..end]).unwrap();
        let after = &rest[end + 4..];
        let stop = find(after, delimiter.as_bytes()).unwrap();
        let value = |key: &str| {
            head.split("\r\n")
                .find_map(|line| line.strip_prefix(key))
                .map(str::to_owned)
        };
        let disposition = value("Content-Disposition: form-data; ").unwrap();
        let param = |key: &str| {
            disposition.split("; ").find_map(|p| {
                p.strip_prefix(&format!("{key}=\""))
                    .map(|v| v.trim_end_matches('"').to_owned())
            })
        };
        out.push((
            param("name").unwrap(),
            param("filename"),
            value("Content-Type: ").unwrap(),
            after[..stop].to_vec(),
        ));
        rest = &after[stop + delimiter.len()..];
    }
    assert_eq!(rest, b"--\r\n");
    out
}

async fn file_document(i: usize, name: &str, bytes: &[u8]) -> Document {
    use crate::connectors::kit::files;
    let body = futures::stream::iter(
        bytes
            .chunks(1000)
            .map(|c| Ok::<_, std::convert::Infallible>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let limits = files::FileLimits::default();
    let files::Downloaded::File(file) = files::spool(body, name, "application/pdf", None, &limits)
        .await
        .unwrap()
    else {
        panic!("spooled")
    };
    let mut document = documents(i + 1, "").pop().unwrap();
    document.file = Some(file);
    document
}

#[tokio::test]
async fn a_file_document_goes_alone_as_signed_multipart_and_a_large_one_as_metadata() {
    let (url, seen) = raw_server().await;
    let small: Vec<u8> = (0..2_500u32).map(|i| (i % 256) as u8).collect();
    let file = file_document(1, "Q3 \"final\".pdf", &small).await;
    let big = file_document(3, "huge.pdf", &vec![9u8; 4_000]).await;
    let markdown = documents(4, "# md");
    let batch = vec![
        markdown[0].clone(),
        file.clone(),
        markdown[2].clone(),
        big.clone(),
    ];
    sink(url, SECRET)
        .with_file_max_bytes(3_000)
        .deliver(&batch)
        .await
        .unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "json, multipart, json");
    let now = chrono::Utc::now().timestamp();
    for (headers, body) in &seen {
        let timestamp: i64 = header(headers, TIMESTAMP_HEADER).parse().unwrap();
        assert!(verify(
            SECRET,
            timestamp,
            body,
            header(headers, SIGNATURE_HEADER),
            now,
            300
        ));
        assert_eq!(header(headers, "content-length"), body.len().to_string());
    }
    let json = |i: usize| -> Value { serde_json::from_slice(&seen[i].1).unwrap() };
    assert_eq!(received_documents(&json(0)), vec![markdown[0].clone()]);

    let (headers, body) = &seen[1];
    let parts = parts(header(headers, "content-type"), body);
    assert_eq!(parts.len(), 2);
    let (name, filename, content_type, envelope) = &parts[0];
    assert_eq!(
        (name.as_str(), filename, content_type.as_str()),
        ("document", &None, "application/json")
    );
    let envelope: Value = serde_json::from_slice(envelope).unwrap();
    assert_eq!(envelope["documents"][0]["file"]["attached"], true);
    assert_eq!(received_documents(&envelope), vec![file.clone()]);
    let (name, filename, content_type, bytes) = &parts[1];
    assert_eq!(name, "file");
    assert_eq!(filename.as_deref(), Some("Q3 _final_.pdf"));
    assert_eq!(content_type, "application/pdf");
    assert_eq!(bytes, &small);
    assert_eq!(
        envelope["documents"][0]["file"]["sha256"],
        hex::encode(<Sha256 as sha2::Digest>::digest(&small))
    );

    let last = json(2);
    assert_eq!(last["documents"][1]["file"]["attached"], false);
    assert_eq!(last["documents"][1]["file"]["size"], 4_000);
    assert_eq!(received_documents(&last), vec![markdown[2].clone(), big]);
}

#[test]
fn the_file_cap_comes_from_the_environment() {
    let env = |value: Option<&str>| {
        let value = value.map(str::to_owned);
        move |name: &str| {
            assert_eq!(name, FILE_MAX_BYTES_ENV);
            value.clone()
        }
    };
    assert_eq!(
        file_max_bytes_from(env(None)).unwrap(),
        DEFAULT_FILE_MAX_BYTES
    );
    assert_eq!(
        file_max_bytes_from(env(Some(" "))).unwrap(),
        DEFAULT_FILE_MAX_BYTES
    );
    assert_eq!(file_max_bytes_from(env(Some("1024"))).unwrap(), 1024);
    for bad in ["10MB", "-1", "x"] {
        assert!(matches!(
            file_max_bytes_from(env(Some(bad))),
            Err(SinkError::Config(_))
        ));
    }
}

#[test]
fn sign_and_verify() {
    let body = br#"{"event":"documents.deleted","ids":["a"]}"#;
    let now = 1_700_000_000;
    let signature = sign(SECRET, now, body);
    assert!(signature.starts_with("v1="));
    assert_eq!(signature.len(), 3 + 64);
    assert!(signature[3..]
        .chars()
        .all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    // Independent computation of the documented scheme.
    let mut expected = HmacSha256::new_from_slice(SECRET).unwrap();
    expected.update(format!("{now}.").as_bytes());
    expected.update(body);
    assert_eq!(
        signature,
        format!("v1={}", hex::encode(expected.finalize().into_bytes()))
    );

    assert!(verify(SECRET, now, body, &signature, now, 300));
    assert!(verify(SECRET, now, body, &signature, now + 300, 300));
    assert!(verify(SECRET, now, body, &signature, now - 300, 300));
    // Wrong secret, tampered body, different timestamp.
    assert!(!verify(b"other", now, body, &signature, now, 300));
    assert!(!verify(SECRET, now, b"{}", &signature, now, 300));
    assert!(!verify(SECRET, now + 1, body, &signature, now + 1, 300));
    // Stale or too far in the future.
    assert!(!verify(SECRET, now, body, &signature, now + 301, 300));
    assert!(!verify(SECRET, now, body, &signature, now - 301, 300));
    assert!(!verify(SECRET, now, body, &signature, now, -1));
    assert!(!verify(
        SECRET,
        i64::MIN,
        body,
        &sign(SECRET, i64::MIN, body),
        i64::MAX,
        i64::MAX
    ));
    // Malformed headers.
    for header in [
        "",
        "v1=",
        "v1=zz",
        "v0=abc",
        &signature[3..],
        &signature.to_uppercase(),
    ] {
        assert!(!verify(SECRET, now, body, header, now, 300), "{header:?}");
    }
    // Several entries (key rotation): any match is enough.
    let rotated = format!("{}, {signature}", sign(b"old", now, body));
    assert!(verify(SECRET, now, body, &rotated, now, 300));
}
