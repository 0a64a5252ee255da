//! SharePoint full-sync throughput and memory: the fake Graph with N files (text and PDF
//! in folders of 100) in one document library, in a child process so its memory is not
//! counted; a measuring child per size runs a full sync (every delta page, every file
//! downloaded through the 302 to the download origin, then the slim listing the prune
//! reads) and reports items/s and its peak RSS (VmHWM). Prints one table row per size.
//!
//! `cargo bench -p tributary-e2e --bench sharepoint` (sizes 1000 and 10000; or
//! `-- 2000 5000` for others)

use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::sharepoint::SharepointConnector;
use tributary::connectors::{Connector, Credentials};
use tributary::http::RetryPolicy;
use tributary_e2e::bench::{
    arg_after, measure_each, peak_rss_kib, serve_until_parent_closes, sizes, FakeProcess,
};
use tributary_e2e::fake_graph::FakeGraph;
use tributary_e2e::microsoft::CONNECTED_USER;
use tributary_e2e::tokens::TokenBook;

const SERVE: &str = "--serve-fake-graph";
const MEASURE: &str = "--measure";
const TOKEN: &str = "bench-delegated-token";

async fn serve(count: usize) {
    let book = TokenBook::new();
    book.allow(TOKEN, CONNECTED_USER);
    let fake = FakeGraph::start_with(book).await;
    fake.start_downloads().await;
    {
        let mut world = fake.drives();
        let site = world.add_site("contoso.sharepoint.com", "/sites/Bench", "Bench");
        let drive = world.add_library(&site, "Documents");
        world.populate(&drive, count);
    }
    let base = fake.graph_base().to_string();
    serve_until_parent_closes(base.trim_end_matches("/v1.0")).await;
}

async fn measure(count: usize) {
    let fake = FakeProcess::start(SERVE, count);
    let base = fake.base_url.clone();
    let graph = reqwest::Url::parse(&format!("{base}/v1.0")).expect("url");
    let login = reqwest::Url::parse(&format!("{base}/login")).expect("url");
    let config = serde_json::from_value(json!({
        "sites": ["https://contoso.sharepoint.com/sites/Bench"],
        "include_site_pages": false,
        "batch_size": 200,
    }))
    .expect("config");
    let connector = SharepointConnector::new(
        "bench",
        config,
        Credentials::Bearer {
            token: TOKEN.into(),
        },
        tributary_e2e::app::loopback_client(Duration::from_secs(30)),
        RetryPolicy::default(),
        graph,
        login,
    )
    .expect("a connector");

    let started = Instant::now();
    let mut checkpoint = None;
    let mut documents = 0usize;
    let mut bytes = 0usize;
    loop {
        let batch = connector.pull(checkpoint.as_ref()).await.expect("a batch");
        documents += batch.documents.len();
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
    let checkpoint_bytes = checkpoint
        .map(|c: serde_json::Value| c.to_string().len())
        .unwrap_or(0);
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
        "| {count:>6} | {:>8.2} | {:>8.0} | {:>9.2} | {:>14} | {:>13} | {:>16} |",
        pulled.as_secs_f64(),
        count as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_kib() / 1024,
        bytes / 1024,
        checkpoint_bytes / 1024,
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
    println!(
        "SharePoint full sync against the fake Graph (delta pass + downloads + slim listing):"
    );
    println!("|  items | pull (s) |  items/s | total (s) | peak RSS (MiB) | content (KiB) | checkpoint (KiB) |");
    println!("|-------:|---------:|---------:|----------:|---------------:|--------------:|-----------------:|");
    measure_each(MEASURE, &sizes(&args, &[1000, 10_000]));
}
