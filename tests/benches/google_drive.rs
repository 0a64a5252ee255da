//! Google Drive full-sync throughput and memory: the fake Drive with N files (Docs,
//! Sheets, Slides, PDFs, text in folders of 100) in a child process, so its memory is not
//! counted; a measuring child per size runs a full sync (every pull of the first pass,
//! each file exported or downloaded, then the slim listing the prune reads) and reports
//! files/s and its peak RSS (VmHWM). Prints one table row per size.
//!
//! `cargo bench -p tributary-e2e --bench google_drive` (sizes 1000 and 10000; or
//! `-- 2000 5000` for others)

use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::google_drive::GoogleDriveConnector;
use tributary::connectors::{Connector, Credentials};
use tributary::http::RetryPolicy;
use tributary_e2e::bench::{
    arg_after, measure_each, peak_rss_kib, serve_until_parent_closes, sizes, FakeProcess,
};
use tributary_e2e::fake_google_drive::FakeGoogleDrive;
use tributary_e2e::google::{TokenBook, CONNECTED_USER};

const SERVE: &str = "--serve-fake-drive";
const MEASURE: &str = "--measure";
const TOKEN: &str = "ya29.bench-token";

async fn serve(count: usize) {
    let book = TokenBook::new();
    book.allow(TOKEN, CONNECTED_USER);
    let fake = FakeGoogleDrive::start(book, &[CONNECTED_USER]).await;
    let root = fake.root_of(CONNECTED_USER);
    fake.populate(CONNECTED_USER, &root, count);
    serve_until_parent_closes(&fake.base_url()).await;
}

async fn measure(count: usize) {
    let fake = FakeProcess::start(SERVE, count);
    let base = fake.base_url.clone();
    let drive_base = reqwest::Url::parse(&format!("{base}/drive/v3")).expect("url");
    let sheets_base = reqwest::Url::parse(&format!("{base}/v4")).expect("url");
    let config = serde_json::from_value(json!({"batch_size": 100})).expect("config");
    let connector = GoogleDriveConnector::new(
        "bench",
        config,
        Credentials::Bearer {
            token: TOKEN.into(),
        },
        tributary_e2e::app::loopback_client(Duration::from_secs(30)),
        RetryPolicy::default(),
        drive_base,
    )
    .expect("a connector")
    .with_sheets_base(sheets_base);

    let started = Instant::now();
    let mut checkpoint = None;
    let mut documents = 0usize;
    let mut bytes = 0usize;
    loop {
        let batch = connector.pull(checkpoint.as_ref()).await.expect("a batch");
        documents += batch.documents.len();
        // What a sink would read: the markdown, or the spooled file's bytes.
        for document in &batch.documents {
            bytes += document.markdown.len();
            if let Some(file) = &document.file {
                bytes += file.size as usize;
            }
        }
        // Through storage as text, like the engine.
        checkpoint =
            Some(serde_json::from_str(&batch.checkpoint.to_string()).expect("checkpoint JSON"));
        if batch.done {
            break;
        }
    }
    let pulled = started.elapsed();
    let mut listed = 0usize;
    let mut cursor: Option<String> = None;
    loop {
        let page = connector
            .list_ids(cursor.as_deref())
            .await
            .expect("a listing page");
        listed += page.source_ids.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let total = started.elapsed();
    drop(fake);
    assert_eq!(documents, count, "every file synced once");
    assert_eq!(listed, count, "every file listed");
    println!(
        "| {count:>6} | {:>8.2} | {:>8.0} | {:>8.2} | {:>9} | {:>8} |",
        pulled.as_secs_f64(),
        count as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_kib() / 1024,
        bytes / 1024,
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(count) = arg_after(&args, SERVE) {
        return serve(count).await;
    }
    if let Some(count) = arg_after(&args, MEASURE) {
        return measure(count).await;
    }
    println!("Google Drive full sync against the fake (pull pass + slim listing):");
    println!("|  files | pull (s) |  files/s | total (s) | peak RSS (MiB) | content (KiB) |");
    println!("|-------:|---------:|---------:|----------:|---------------:|--------------:|");
    measure_each(MEASURE, &sizes(&args, &[1000, 10_000]));
}
