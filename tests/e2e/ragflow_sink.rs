//! The RAGFlow sink against a fake RAGFlow (`tributary_e2e::fake_ragflow`): the exact
//! requests per delivery, replace-on-update (the dataset never keeps two copies), deletes,
//! and how failures map to `SinkError`.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use tributary::connectors::document::Document;
use tributary::sinks::ragflow::{file_name, render};
use tributary::sinks::{
    build, OperatorPins, RagflowSink, Sink, SinkConfig, SinkEnvironment, SinkError, SinkSecret,
};
use tributary_e2e::fake_ragflow::{FakeRagflow, Recorded, API_KEY, DATASET_ID};

const DOCUMENTS_PATH: &str = "/api/v1/datasets/7898da028a0511efbf750242ac120005/documents";
const CHUNKS_PATH: &str = "/api/v1/datasets/7898da028a0511efbf750242ac120005/chunks";

/// The tenant the tests' sinks belong to.
const TENANT: &str = "tenant-ragflow-e2e";

/// A deployment with no operator key: every sink brings its own.
fn environment() -> SinkEnvironment {
    SinkEnvironment {
        directory_sinks_allowed: false,
        webhook_secret: None,
        http: tributary_e2e::app::loopback_client(std::time::Duration::from_secs(15)),
        ragflow_api_key: None,
        pins: OperatorPins::default(),
        vault: None,
    }
}

/// A deployment whose operator key is pinned to `fake`'s base URL, with [`DATASET_ID`]
/// pinned to [`TENANT`].
fn pinned_environment(operator_key: &str, fake: &FakeRagflow) -> SinkEnvironment {
    SinkEnvironment {
        ragflow_api_key: Some(operator_key.to_owned()),
        pins: OperatorPins {
            ragflow_base_urls: vec![fake.base_url()],
            ragflow_datasets: vec![(TENANT.to_owned(), DATASET_ID.to_owned())],
            ..OperatorPins::default()
        },
        ..environment()
    }
}

/// The sink with its own key.
fn build_keyed(config: &SinkConfig, key: &str) -> Result<Arc<dyn Sink>, SinkError> {
    build(config, Some(&SinkSecret::new(key)), TENANT, &environment())
}

fn config(fake: &FakeRagflow, dataset_id: &str) -> SinkConfig {
    SinkConfig::Ragflow {
        base_url: fake.base_url(),
        dataset_id: dataset_id.to_owned(),
    }
}

/// The sink as a deployment builds it.
fn sink(fake: &FakeRagflow) -> Arc<dyn Sink> {
    build_keyed(&config(fake, DATASET_ID), API_KEY).expect("build ragflow sink")
}

fn document(n: usize, markdown: &str) -> Document {
    let source_id = format!("https://example.com/page/{n}");
    Document {
        id: Document::stable_id("crawl:ragflow-e2e", &source_id),
        source: "web".into(),
        source_id: source_id.clone(),
        title: Some(format!("Page {n}")),
        url: Some(source_id),
        markdown: markdown.into(),
        metadata: serde_json::Map::new(),
        updated_at: "2025-01-01T00:00:00Z".into(),
        acl: vec![],
        file: None,
    }
}

fn lines(requests: &[Recorded]) -> Vec<String> {
    requests.iter().map(Recorded::line).collect()
}

fn list_line() -> String {
    format!("GET {DOCUMENTS_PATH}")
}

fn assert_lists(request: &Recorded, document_id: &str, page: &str) {
    assert_eq!(request.line(), list_line());
    assert_eq!(
        request.query,
        vec![
            ("keywords".to_string(), document_id.to_string()),
            ("page".to_string(), page.to_string()),
            ("page_size".to_string(), "100".to_string()),
        ]
    );
}

/// `(name, content)` of every document in the fake dataset, oldest first.
fn dataset(fake: &FakeRagflow) -> Vec<(String, String)> {
    fake.documents(DATASET_ID)
        .into_iter()
        .map(|document| (document.name, document.content))
        .collect()
}

#[tokio::test]
async fn delivers_three_documents_as_three_uploads_and_one_parse_call() {
    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    assert_eq!(sink.kind(), "ragflow");
    let docs: Vec<Document> = (0..3)
        .map(|n| document(n, &format!("# Page {n}")))
        .collect();
    sink.deliver(&docs).await.expect("deliver");

    let requests = fake.take_requests();
    assert!(requests.iter().all(|r| r.authorized), "{requests:#?}");
    let mut expected = Vec::new();
    for _ in &docs {
        expected.push(list_line());
        expected.push(format!("POST {DOCUMENTS_PATH}"));
    }
    expected.push(format!("POST {CHUNKS_PATH}"));
    assert_eq!(lines(&requests), expected);
    for (i, doc) in docs.iter().enumerate() {
        assert_lists(&requests[2 * i], &doc.id, "1");
        assert_eq!(requests[2 * i + 1].files, vec![file_name(&doc.id)]);
    }
    let stored = fake.documents(DATASET_ID);
    let stored_ids: Vec<String> = stored.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        requests[6].json,
        Some(json!({ "document_ids": stored_ids })),
        "one parse call with exactly the uploaded ids, in order"
    );
    assert_eq!(
        dataset(&fake),
        docs.iter()
            .map(|doc| (format!("{}.md", doc.id), render(doc)))
            .collect::<Vec<_>>()
    );
    assert!(stored.iter().all(|d| d.run == "DONE"), "{stored:#?}");
    assert!(stored[0].content.starts_with("---\nid: \""));
    assert!(stored[0].content.ends_with("---\n\n# Page 0\n"));

    // Nothing to do: no request at all.
    sink.deliver(&[]).await.expect("empty deliver");
    sink.delete(&[]).await.expect("empty delete");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn redelivery_replaces_the_previous_copy() {
    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    let original = document(1, "version one");
    sink.deliver(std::slice::from_ref(&original))
        .await
        .expect("first delivery");
    let first = fake.documents(DATASET_ID);
    assert_eq!(first.len(), 1);
    fake.take_requests();

    let updated = document(1, "version two");
    sink.deliver(std::slice::from_ref(&updated))
        .await
        .expect("second delivery");
    let requests = fake.take_requests();
    let stored = fake.documents(DATASET_ID);
    assert_eq!(stored.len(), 1, "{stored:#?}");
    let current = &stored[0];
    assert_eq!(current.name, file_name(&updated.id));
    assert_eq!(current.content, render(&updated));
    assert_ne!(current.id, first[0].id);
    assert_eq!(current.run, "DONE");

    // RAGFlow renamed the upload while the old copy held the name: the sink deletes the
    // old copy, then gives the new one its name back.
    assert_eq!(
        lines(&requests),
        vec![
            list_line(),
            format!("POST {DOCUMENTS_PATH}"),
            format!("DELETE {DOCUMENTS_PATH}"),
            format!("PUT {DOCUMENTS_PATH}/{}", current.id),
            format!("POST {CHUNKS_PATH}"),
        ]
    );
    assert_lists(&requests[0], &updated.id, "1");
    assert_eq!(requests[1].files, vec![file_name(&updated.id)]);
    assert_eq!(requests[2].json, Some(json!({ "ids": [first[0].id] })));
    assert_eq!(
        requests[3].json,
        Some(json!({ "name": file_name(&updated.id) }))
    );
    assert_eq!(
        requests[4].json,
        Some(json!({ "document_ids": [current.id] }))
    );

    // Delivering the same version again still leaves exactly one copy.
    sink.deliver(std::slice::from_ref(&updated))
        .await
        .expect("third delivery");
    assert_eq!(
        dataset(&fake),
        vec![(file_name(&updated.id), render(&updated))]
    );
}

#[tokio::test]
async fn a_batch_repeating_a_document_delivers_its_last_version_once() {
    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    let docs = [document(1, "old"), document(2, "other"), document(1, "new")];
    sink.deliver(&docs).await.expect("deliver");
    let requests = fake.take_requests();
    let uploads = requests
        .iter()
        .filter(|r| r.method == "POST" && !r.files.is_empty());
    assert_eq!(uploads.count(), 2);
    assert_eq!(
        dataset(&fake),
        vec![
            (file_name(&docs[1].id), render(&docs[1])),
            (file_name(&docs[2].id), render(&docs[2])),
        ]
    );
}

#[tokio::test]
async fn only_exact_names_and_ragflow_renames_count_as_copies() {
    let fake = FakeRagflow::start().await;
    let doc = document(7, "fresh");
    let id = doc.id.clone();
    // Names the keyword search also returns but that are not this document.
    let lookalikes = [
        format!("x{id}.md"),
        format!("{id}0.md"),
        format!("{id}.md.txt"),
        format!("{}.md", id.to_uppercase()),
        format!("{id} (1).md"),
    ];
    for name in &lookalikes {
        fake.seed(DATASET_ID, name, "someone else's");
    }
    // Leftovers of an interrupted earlier delivery: both are copies.
    fake.seed(DATASET_ID, &format!("{id}.md"), "stale");
    fake.seed(DATASET_ID, &format!("{id}(3).md"), "stale too");

    sink(&fake)
        .deliver(std::slice::from_ref(&doc))
        .await
        .expect("deliver");
    let mut expected: Vec<(String, String)> = lookalikes
        .iter()
        .map(|name| (name.clone(), "someone else's".to_string()))
        .collect();
    expected.push((file_name(&id), render(&doc)));
    assert_eq!(dataset(&fake), expected);
}

#[tokio::test]
async fn lists_every_page_to_find_old_copies() {
    let fake = FakeRagflow::start().await;
    let doc = document(3, "paged");
    let id = doc.id.clone();
    // The old copy is the oldest, so newest-first listing puts it on page 2.
    let old = fake.seed(DATASET_ID, &format!("{id}.md"), "old");
    for n in 0..120 {
        fake.seed(DATASET_ID, &format!("{id}-attachment-{n}.md"), "not a copy");
    }
    sink(&fake)
        .deliver(std::slice::from_ref(&doc))
        .await
        .expect("deliver");
    let requests = fake.take_requests();
    assert_lists(&requests[0], &id, "1");
    assert_lists(&requests[1], &id, "2");
    assert_eq!(requests[2].files, vec![file_name(&id)]);
    assert_eq!(requests[3].json, Some(json!({ "ids": [old] })));
    let stored = fake.documents(DATASET_ID);
    assert_eq!(stored.len(), 121);
    assert_eq!(
        stored
            .iter()
            .filter(|d| d.name == file_name(&id))
            .map(|d| d.content.clone())
            .collect::<Vec<_>>(),
        vec![render(&doc)]
    );
}

#[tokio::test]
async fn delete_removes_every_copy_in_one_call_and_ignores_missing_ids() {
    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    let docs = [document(1, "one"), document(2, "two")];
    sink.deliver(&docs).await.expect("deliver");
    let leftover = fake.seed(DATASET_ID, &format!("{}(1).md", docs[0].id), "leftover");
    let mut doomed: Vec<String> = fake
        .documents(DATASET_ID)
        .into_iter()
        .filter(|d| d.name.starts_with(&docs[0].id))
        .map(|d| d.id)
        .collect();
    doomed.sort();
    assert_eq!(doomed.len(), 2);
    assert!(doomed.contains(&leftover));
    fake.take_requests();

    let missing = Document::stable_id("crawl:ragflow-e2e", "https://example.com/never");
    sink.delete(&[docs[0].id.clone(), missing.clone()])
        .await
        .expect("delete");
    let requests = fake.take_requests();
    assert_eq!(
        lines(&requests),
        vec![list_line(), list_line(), format!("DELETE {DOCUMENTS_PATH}")]
    );
    assert_lists(&requests[0], &docs[0].id, "1");
    assert_lists(&requests[1], &missing, "1");
    assert_eq!(requests[2].json, Some(json!({ "ids": doomed })));
    assert_eq!(
        dataset(&fake),
        vec![(file_name(&docs[1].id), render(&docs[1]))]
    );

    // Deleting what is already gone sends no delete request (an empty `ids` would empty
    // the whole dataset).
    sink.delete(&[docs[0].id.clone(), missing])
        .await
        .expect("delete again");
    assert_eq!(lines(&fake.take_requests()), vec![list_line(), list_line()]);
    assert_eq!(fake.documents(DATASET_ID).len(), 1);

    // Hostile ids are refused before any request.
    let err = sink.delete(&["../x".to_string()]).await.unwrap_err();
    assert!(
        matches!(err, SinkError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn a_wrong_key_is_rejected() {
    let fake = FakeRagflow::start().await;
    let sink = build_keyed(&config(&fake, DATASET_ID), "ragflow-not-the-key").expect("build");
    for result in [
        sink.deliver(&[document(1, "x")]).await,
        sink.delete(&[document(1, "x").id]).await,
    ] {
        let err = result.unwrap_err();
        match &err {
            SinkError::Rejected { status, message } => {
                assert_eq!(*status, 401);
                assert!(message.contains("API key is invalid"), "{message}");
                assert!(!message.contains("ragflow-not-the-key"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!err.is_transient());
    }
    let requests = fake.requests();
    assert_eq!(lines(&requests), vec![list_line(), list_line()]);
    assert!(requests.iter().all(|r| !r.authorized));
    assert!(fake.documents(DATASET_ID).is_empty());

    // An HTTP 401 (e.g. from a proxy in front of RAGFlow) is rejected too.
    fake.fail_next(1, 401);
    let err = self::sink(&fake)
        .deliver(&[document(1, "x")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Rejected { status: 401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn overload_and_server_errors_are_unavailable() {
    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    let doc = document(1, "x");
    for status in [503, 500, 502, 429, 408] {
        fake.fail_next(1, status);
        let err = sink.deliver(std::slice::from_ref(&doc)).await.unwrap_err();
        assert!(
            matches!(err, SinkError::Unavailable(_)),
            "{status}: {err:?}"
        );
        assert!(err.is_transient());
        assert!(!err.to_string().contains(API_KEY), "{err}");
        fake.fail_next(1, status);
        let err = sink
            .delete(std::slice::from_ref(&doc.id))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SinkError::Unavailable(_)),
            "{status}: {err:?}"
        );
    }
    assert_eq!(fake.requests().len(), 10, "each failure stops the call");
    assert!(fake.documents(DATASET_ID).is_empty());

    // Once RAGFlow is back, the retried call succeeds.
    sink.deliver(std::slice::from_ref(&doc))
        .await
        .expect("retry");
    assert_eq!(dataset(&fake), vec![(file_name(&doc.id), render(&doc))]);
}

#[tokio::test]
async fn a_failed_upload_keeps_the_previous_copy() {
    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    let original = document(1, "version one");
    sink.deliver(std::slice::from_ref(&original))
        .await
        .expect("first delivery");

    let updated = document(1, "version two");
    fake.fail_next_on(Method::POST, 1, 503);
    let err = sink
        .deliver(std::slice::from_ref(&updated))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unavailable(_)), "{err:?}");
    assert_eq!(
        dataset(&fake),
        vec![(file_name(&original.id), render(&original))]
    );

    sink.deliver(std::slice::from_ref(&updated))
        .await
        .expect("retry");
    assert_eq!(
        dataset(&fake),
        vec![(file_name(&updated.id), render(&updated))]
    );
}

#[tokio::test]
async fn ragflow_error_envelopes_are_rejected_with_their_message() {
    let fake = FakeRagflow::start().await;
    let sink = build_keyed(&config(&fake, "not-a-dataset-of-ours"), API_KEY).expect("build");
    let err = sink.deliver(&[document(1, "x")]).await.unwrap_err();
    match &err {
        SinkError::Rejected { status, message } => {
            assert_eq!(*status, 400);
            assert!(
                message.contains("You don't own the dataset not-a-dataset-of-ours"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
}

#[tokio::test]
async fn unreachable_ragflow_is_unavailable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let base = reqwest::Url::parse(&format!("http://{address}/")).expect("url");
    let sink = RagflowSink::new(
        tributary_e2e::app::loopback_client(std::time::Duration::from_secs(15)),
        base,
        DATASET_ID.into(),
        API_KEY.into(),
    );
    let err = sink.deliver(&[document(1, "x")]).await.unwrap_err();
    assert!(matches!(err, SinkError::Unavailable(_)), "{err:?}");
    assert!(err.is_transient());
    assert!(!err.to_string().contains(API_KEY), "{err}");
}

#[tokio::test]
async fn build_without_any_api_key_needs_sink_credentials() {
    let fake = FakeRagflow::start().await;
    let err = build(&config(&fake, DATASET_ID), None, TENANT, &environment())
        .err()
        .expect("no sink without a key");
    assert!(matches!(err, SinkError::CredentialsRequired(_)), "{err:?}");
    assert_eq!(err.code(), "sink_credentials_required");
    assert!(!err.is_transient());
    for key in ["", "   "] {
        let err = build_keyed(&config(&fake, DATASET_ID), key)
            .err()
            .expect("empty key");
        assert!(matches!(err, SinkError::Config(_)), "{key:?}: {err:?}");
    }
    let err = build_keyed(&config(&fake, "bad/dataset"), API_KEY)
        .err()
        .expect("bad dataset id");
    assert!(matches!(err, SinkError::Config(_)), "{err:?}");
    assert!(fake.requests().is_empty());
}

/// Issue 8.1: a tenant pointing a sink at its own host never receives the operator's key;
/// with its own key, its own key is what is sent.
#[tokio::test]
async fn a_tenants_own_host_never_receives_the_operator_key() {
    const OPERATOR_KEY: &str = "ragflow-operator-key-0000000000000000";
    let operator_ragflow = FakeRagflow::start_with_key(OPERATOR_KEY).await;
    let attacker = FakeRagflow::start().await;
    let env = pinned_environment(OPERATOR_KEY, &operator_ragflow);

    // No key of its own at an unpinned host: refused before any request.
    let err = build(&config(&attacker, DATASET_ID), None, TENANT, &env)
        .err()
        .expect("unpinned host without a key");
    assert!(matches!(err, SinkError::CredentialsRequired(_)), "{err:?}");
    // A pinned base URL but a dataset pinned to another tenant: refused too.
    let err = build(
        &config(&operator_ragflow, DATASET_ID),
        None,
        "another-tenant",
        &env,
    )
    .err()
    .expect("another tenant's dataset");
    assert!(matches!(err, SinkError::CredentialsRequired(_)), "{err:?}");
    // A base URL that only starts like the pinned one is another host.
    let mut lookalike = operator_ragflow.base_url();
    lookalike.set_path("/proxy/");
    let lookalike = SinkConfig::Ragflow {
        base_url: lookalike,
        dataset_id: DATASET_ID.into(),
    };
    assert!(build(&lookalike, None, TENANT, &env).is_err());

    // With its own key, the tenant's host gets that key and nothing else.
    let sink = build(
        &config(&attacker, DATASET_ID),
        Some(&SinkSecret::new(API_KEY)),
        TENANT,
        &env,
    )
    .expect("own key");
    sink.deliver(&[document(1, "mine")]).await.expect("deliver");
    let seen = attacker.requests();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|r| r.bearer.as_deref() == Some(API_KEY)),
        "{seen:?}"
    );
    assert!(operator_ragflow.requests().is_empty());

    // Pinned URL + pinned dataset + no key of its own: the operator key, there only.
    let sink = build(&config(&operator_ragflow, DATASET_ID), None, TENANT, &env).expect("pinned");
    sink.deliver(&[document(2, "pinned")])
        .await
        .expect("deliver");
    let seen = operator_ragflow.requests();
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|r| r.authorized), "{seen:?}");
    assert!(attacker
        .requests()
        .iter()
        .all(|r| r.bearer.as_deref() != Some(OPERATOR_KEY)));
}

/// The fake itself answers as RAGFlow documents (so the tests above test against the real
/// protocol, not against the sink's own assumptions).
#[tokio::test]
async fn the_fake_speaks_ragflows_protocol() {
    let fake = FakeRagflow::start().await;
    let client = reqwest::Client::new();
    let url = |tail: &str| {
        fake.base_url()
            .join(&format!("api/v1/datasets/{DATASET_ID}/{tail}"))
            .expect("url")
    };
    let get = |query: &'static str| {
        let request = client.get(url(&format!("documents?{query}")));
        async move {
            let response = request.bearer_auth(API_KEY).send().await.expect("send");
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.expect("json")
        }
    };
    for n in 0..5 {
        fake.seed(DATASET_ID, &format!("doc{n}.md"), "x");
    }
    let page = get("page=2&page_size=2").await;
    assert_eq!(page["code"], 0);
    assert_eq!(page["data"]["total"], 5);
    let names: Vec<&str> = page["data"]["docs"]
        .as_array()
        .expect("docs")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["doc2.md", "doc1.md"], "newest first");
    // `name` is exact and an unknown name is an error envelope, as in RAGFlow.
    assert_eq!(get("name=doc1.md").await["data"]["total"], 1);
    let missing = get("name=doc.md").await;
    assert_eq!(missing["code"], 102);
    assert_eq!(missing["message"], "You don't own the document doc.md.");
    assert_eq!(get("keywords=DOC").await["data"]["total"], 5);

    let response = client
        .get(url("documents"))
        .bearer_auth("wrong")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], 109);

    // An upload of a taken name is renamed, as RAGFlow's duplicate_name does.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("doc1.md"),
    );
    let uploaded: serde_json::Value = client
        .post(url("documents"))
        .bearer_auth(API_KEY)
        .multipart(form)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(uploaded["code"], 0);
    assert_eq!(uploaded["data"][0]["name"], "doc1(1).md");
    let stored = fake.documents(DATASET_ID);
    assert_eq!(stored.last().map(|d| d.content.as_str()), Some("hello"));
    assert_eq!(
        fake.requests().last().map(|r| r.files.clone()),
        Some(vec!["doc1.md".to_string()])
    );
}

/// Bytes no text decoding would keep intact.
fn pdf_bytes(version: u8) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    bytes.extend((0..5_000u32).map(|i| (i % 256) as u8 ^ version));
    bytes
}

#[tokio::test]
async fn a_file_document_is_uploaded_as_is_and_redelivery_replaces_it() {
    use tributary::sinks::ragflow::stored_name;
    use tributary_e2e::files::{spooled, with_file};

    let fake = FakeRagflow::start().await;
    let sink = sink(&fake);
    let v1 = pdf_bytes(1);
    let first = with_file(
        document(9, ""),
        spooled("Q3 report.pdf", "application/pdf", &v1).await,
    );
    let name = stored_name(&first);
    assert_eq!(name, format!("{}.file.Q3 report.pdf", first.id));
    sink.deliver(std::slice::from_ref(&first))
        .await
        .expect("first delivery");
    let requests = fake.take_requests();
    assert_eq!(
        lines(&requests),
        vec![
            list_line(),
            format!("POST {DOCUMENTS_PATH}"),
            format!("POST {CHUNKS_PATH}")
        ]
    );
    assert_eq!(requests[1].files, vec![name.clone()]);
    assert_eq!(
        requests[1].file_types,
        vec![Some("application/pdf".to_string())]
    );
    let stored = fake.documents(DATASET_ID);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].name.as_str(), stored[0].bytes.as_slice()),
        (name.as_str(), v1.as_slice())
    );
    assert_eq!(stored[0].mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(stored[0].run, "DONE");

    // New bytes: uploaded, the old copy deleted, the upload renamed back to its name.
    let v2 = pdf_bytes(2);
    let second = with_file(
        document(9, ""),
        spooled("Q3 report.pdf", "application/pdf", &v2).await,
    );
    sink.deliver(std::slice::from_ref(&second))
        .await
        .expect("second delivery");
    let requests = fake.take_requests();
    let current = fake.documents(DATASET_ID);
    assert_eq!(current.len(), 1, "{current:#?}");
    assert_eq!(
        (current[0].name.as_str(), current[0].bytes.as_slice()),
        (name.as_str(), v2.as_slice())
    );
    assert_eq!(
        lines(&requests),
        vec![
            list_line(),
            format!("POST {DOCUMENTS_PATH}"),
            format!("DELETE {DOCUMENTS_PATH}"),
            format!("PUT {DOCUMENTS_PATH}/{}", current[0].id),
            format!("POST {CHUNKS_PATH}"),
        ]
    );
    assert_eq!(requests[2].json, Some(json!({ "ids": [stored[0].id] })));

    // Renamed at the source, then turned into markdown: each replaces what was there.
    let renamed = with_file(
        document(9, ""),
        spooled("final.docx", "application/msword", b"doc").await,
    );
    sink.deliver(std::slice::from_ref(&renamed))
        .await
        .expect("renamed delivery");
    assert_eq!(
        fake.documents(DATASET_ID)
            .iter()
            .map(|d| (d.name.clone(), d.bytes.clone()))
            .collect::<Vec<_>>(),
        vec![(format!("{}.file.final.docx", first.id), b"doc".to_vec())]
    );
    let markdown = document(9, "now markdown");
    sink.deliver(std::slice::from_ref(&markdown))
        .await
        .expect("markdown delivery");
    assert_eq!(
        dataset(&fake),
        vec![(file_name(&markdown.id), render(&markdown))]
    );

    // Deleting a file document removes its copies as for markdown.
    sink.deliver(std::slice::from_ref(&second))
        .await
        .expect("back to a file");
    sink.delete(std::slice::from_ref(&second.id))
        .await
        .expect("delete");
    assert!(fake.documents(DATASET_ID).is_empty());
}
