//! File documents through the sync engine: a test-only source (served by a local HTTP
//! server) yields an original file, a text-like file and one over `max_file_bytes`; the
//! sink gets the file and the markdown, the oversized one is skipped and counted in the run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use serde_json::{json, Value};
use tributary::connectors::document::Document;
use tributary::connectors::kit::files::{self, Downloaded, FileLimits};
use tributary::connectors::{Batch, Connector, ConnectorError, IdPage, SkippedFile};
use tributary::http::GuardedClient;
use tributary::sinks::directory::{local_name, sidecar_name};
use tributary::sinks::SinkConfig;
use tributary::store::connectors::{ConnectorRecord, RunStatus, SourceKind};
use tributary::sync::{SyncMessage, SyncOutcome};
use tributary_e2e::app::{embedded_table, sync_engine, temp_dir};

const SOURCE: &str = "test-files";
const MAX_FILE_BYTES: u64 = 64 * 1024;

fn report() -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..20_000u32).map(|i| (i * 7 % 256) as u8));
    bytes
}

const CSV: &str = "name,count\nalpha,1\n\"be|ta\",2\n";

/// `(source id, file name, path on the server)` of every file the source lists.
const FILES: [(&str, &str, &str); 3] = [
    ("file-1", "Q3 report.pdf", "/files/report"),
    ("file-2", "counts.csv", "/files/counts"),
    ("file-3", "huge.bin", "/files/huge"),
];

async fn file_server() -> reqwest::Url {
    let router = axum::Router::new()
        .route(
            "/files/report",
            get(|| async { ([("content-type", "application/pdf")], report()) }),
        )
        .route(
            "/files/counts",
            get(|| async { ([("content-type", "text/csv")], CSV) }),
        )
        .route(
            "/files/huge",
            get(|| async { vec![0u8; MAX_FILE_BYTES as usize + 1] }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    reqwest::Url::parse(&format!("http://{address}/")).expect("url")
}

/// A file-store source in miniature: every file in one batch, through the kit.
struct FileSource {
    base: reqwest::Url,
    http: GuardedClient,
    scope: String,
}

#[async_trait::async_trait]
impl Connector for FileSource {
    fn source(&self) -> &'static str {
        SOURCE
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    async fn pull(&self, _checkpoint: Option<&Value>) -> Result<Batch, ConnectorError> {
        let limits = FileLimits::new(MAX_FILE_BYTES);
        let mut documents = Vec::new();
        let mut skipped: Vec<SkippedFile> = Vec::new();
        for (source_id, name, path) in FILES {
            let url = self.base.join(path).expect("file url");
            let request = self.http.get(url.clone());
            match files::download(request, name, &limits).await? {
                Downloaded::TooLarge { size } => {
                    skipped.push(files::too_large(source_id, size, &limits))
                }
                Downloaded::File(file) => {
                    let document = Document {
                        id: Document::stable_id(&self.scope, source_id),
                        source: SOURCE.into(),
                        source_id: source_id.into(),
                        title: Some(name.into()),
                        url: Some(url.to_string()),
                        markdown: String::new(),
                        metadata: serde_json::Map::new(),
                        updated_at: "2025-01-01T00:00:00Z".into(),
                        acl: vec![],
                        file: None,
                    };
                    documents.push(files::into_content(file).await?.into_document(document));
                }
            }
        }
        Ok(Batch {
            documents,
            failures: Vec::new(),
            skipped,
            deleted: Vec::new(),
            checkpoint: json!({"done": true}),
            done: true,
        })
    }

    async fn list_ids(&self, _cursor: Option<&str>) -> Result<IdPage, ConnectorError> {
        Ok(IdPage {
            source_ids: FILES.iter().map(|(id, _, _)| (*id).to_owned()).collect(),
            next: None,
        })
    }
}

fn record(id: &str, out: &std::path::Path) -> ConnectorRecord {
    ConnectorRecord {
        id: id.to_owned(),
        workspace_id: "workspace-1".into(),
        source: SourceKind::Jira,
        name: "Files".into(),
        config: json!({}),
        credentials_sealed: String::new(),
        sink: SinkConfig::Directory {
            path: out.to_path_buf(),
        },
        sink_secret_sealed: None,
        schedule_minutes: None,
        webhook: None,
        created_at: 0,
        updated_at: 0,
        last_scheduled_at: None,
        item_version: 0,
    }
}

fn visible(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read out")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .into_string()
                .expect("utf-8")
        })
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_sync_delivers_files_and_markdown_and_counts_the_oversized_file_as_skipped() {
    let base = file_server().await;
    let (engine, _queue) = sync_engine(embedded_table());
    let http = engine.http().clone();
    let engine = engine.with_connector_factory(Arc::new(move |record: &ConnectorRecord| {
        Ok(Box::new(FileSource {
            base: base.clone(),
            http: http.clone(),
            scope: format!("connector:{}", record.id),
        }) as Box<dyn Connector>)
    }));
    let out = temp_dir("tributary-file-documents");
    let connector = record("connector-files-1", &out);
    engine.connectors.create(&connector).await.expect("create");

    let run = |trigger: &'static str| {
        let engine = &engine;
        async move {
            match engine
                .run(
                    &SyncMessage::new("connector-files-1", trigger),
                    Instant::now() + Duration::from_secs(120),
                )
                .await
                .expect("sync")
            {
                SyncOutcome::Finished(run) => run,
                other => panic!("{other:?}"),
            }
        }
    };
    let first = run("manual").await;
    assert_eq!(first.status, RunStatus::Completed, "{:?}", first.errors);
    assert_eq!(
        (
            first.counts.added,
            first.counts.skipped,
            first.counts.failed
        ),
        (2, 1, 0)
    );
    assert!(
        first
            .errors
            .iter()
            .any(|e| e.starts_with("file-3: skipped")),
        "{:?}",
        first.errors
    );

    let scope = "connector:connector-files-1";
    let pdf_id = Document::stable_id(scope, "file-1");
    let csv_id = Document::stable_id(scope, "file-2");
    let stored = local_name(&pdf_id, "Q3 report.pdf");
    let mut expected = vec![
        stored.clone(),
        sidecar_name(&pdf_id),
        format!("{csv_id}.md"),
    ];
    expected.sort();
    assert_eq!(visible(&out), expected, "nothing for the oversized file");
    assert_eq!(std::fs::read(out.join(&stored)).expect("pdf"), report());
    let sidecar: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join(sidecar_name(&pdf_id))).expect("sidecar"),
    )
    .expect("sidecar json");
    assert_eq!(sidecar["file"]["mime_type"], "application/pdf");
    assert_eq!(sidecar["file"]["size"], report().len());
    assert_eq!(
        sidecar["file"]["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(report()))
    );
    let markdown = std::fs::read_to_string(out.join(format!("{csv_id}.md"))).expect("csv");
    assert!(
        markdown.ends_with("| name | count |\n| --- | --- |\n| alpha | 1 |\n| be\\|ta | 2 |\n"),
        "{markdown}"
    );

    // Nothing changed: both unchanged (the file by its hash), the big one skipped again.
    let second = run("manual").await;
    assert_eq!(
        (
            second.counts.added,
            second.counts.updated,
            second.counts.unchanged,
            second.counts.skipped
        ),
        (0, 0, 2, 1)
    );
    assert_eq!(visible(&out), expected);
    // The runs as stored (what `GET /connectors/{id}/runs` shows) keep the count.
    let (runs, _) = engine
        .connectors
        .runs("connector-files-1", 10, None)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|run| run.counts.skipped == 1), "{runs:?}");
}
