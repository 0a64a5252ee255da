//! Gmail full-sync throughput and memory: the fake Gmail with N threads in a child process
//! (its memory is not counted); a measuring child per size runs a full sync (every pull of
//! the first pass, each thread fetched and rendered, then the slim listing the prune reads)
//! and reports threads/s and its peak RSS (VmHWM).
//!
//! `cargo bench -p tributary-e2e --bench gmail` (sizes 1000 and 10000; or `-- 2000 5000`)

use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::gmail::{GmailConfig, GmailConnector};
use tributary::connectors::kit::{AccessToken, SourceAuth};
use tributary::connectors::Connector;
use tributary_e2e::bench::{
    arg_after, measure_each, peak_rss_kib, serve_until_parent_closes, sizes, FakeProcess,
};
use tributary_e2e::fake_gmail::FakeGmail;
use tributary_e2e::google::TokenBook;

const SERVE: &str = "--serve-fake-gmail";
const MEASURE: &str = "--measure";
const USER: &str = "bench@example.com";
const TOKEN: &str = "ya29.bench";

async fn serve(threads: usize) {
    let book = TokenBook::new();
    book.allow(TOKEN, USER);
    let fake = FakeGmail::start(book, &[(USER, threads)]).await;
    serve_until_parent_closes(fake.api_base().as_str()).await;
}

async fn measure(threads: usize) {
    let fake = FakeProcess::start(SERVE, threads);
    let config: GmailConfig = serde_json::from_value(json!({"batch_size": 100})).expect("config");
    let gmail = GmailConnector::with_quota(
        "gmail-bench",
        config,
        SourceAuth::Bearer(AccessToken::new(TOKEN)),
        tributary_e2e::app::loopback_client(Duration::from_secs(30)),
        tributary::http::RetryPolicy::default(),
        reqwest::Url::parse(&fake.base_url).expect("url"),
        None,
    )
    .expect("connector");
    let started = Instant::now();
    let mut checkpoint = None;
    let mut documents = 0usize;
    let mut bytes = 0usize;
    loop {
        let batch = gmail.pull(checkpoint.as_ref()).await.expect("batch");
        documents += batch.documents.len();
        bytes += batch
            .documents
            .iter()
            .map(|d| d.markdown.len())
            .sum::<usize>();
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
        let page = gmail.list_ids(cursor.as_deref()).await.expect("listing");
        listed += page.source_ids.len();
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let total = started.elapsed();
    drop(fake);
    // The fake files some threads under SPAM/TRASH, which the default scope leaves out.
    assert_eq!(documents, listed, "every thread in scope synced once");
    assert!(
        documents >= threads * 9 / 10,
        "{documents} of {threads} in scope"
    );
    println!(
        "| {threads:>7} | {:>8.2} | {:>9.0} | {:>9.2} | {:>14} | {:>13} |",
        pulled.as_secs_f64(),
        documents as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_kib() / 1024,
        bytes / 1024,
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(threads) = arg_after(&args, SERVE) {
        return serve(threads).await;
    }
    if let Some(threads) = arg_after(&args, MEASURE) {
        return measure(threads).await;
    }
    println!("Gmail full sync against the fake (pull pass + slim listing):");
    println!("| threads | pull (s) | threads/s | total (s) | peak RSS (MiB) | content (KiB) |");
    println!("|--------:|---------:|----------:|----------:|---------------:|--------------:|");
    measure_each(MEASURE, &sizes(&args, &[1000, 10_000]));
}
