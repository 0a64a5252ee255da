//! Teams full-sync throughput and memory: the fake Graph with N channel threads (a root
//! and two replies each, over four channels) in a child process so its memory is not
//! counted; a measuring child per size runs a full sync (every delta page with replies
//! embedded, then the slim listing the prune reads) and reports threads/s, messages/s and
//! its peak RSS (VmHWM). Prints one table row per size.
//!
//! `cargo bench -p tributary-e2e --bench teams` (sizes 1000 and 10000; or `-- 2000 5000`)

use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::kit::{AccessToken, SourceAuth};
use tributary::connectors::microsoft::GraphAuth;
use tributary::connectors::teams::TeamsConnector;
use tributary::connectors::Connector;
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
const CHANNELS: [&str; 4] = [
    "19:bench0@thread.tacv2",
    "19:bench1@thread.tacv2",
    "19:bench2@thread.tacv2",
    "19:bench3@thread.tacv2",
];
const REPLIES: usize = 2;

async fn serve(count: usize) {
    let book = TokenBook::new();
    book.allow(TOKEN, CONNECTED_USER);
    let fake = FakeGraph::start_with(book).await;
    let channels: Vec<(&str, &str)> = CHANNELS.iter().map(|c| (*c, "Bench")).collect();
    fake.add_team("b0b0b0b0-0000-4000-8000-000000000000", "Bench", &channels);
    for (n, channel) in CHANNELS.iter().enumerate() {
        let share = count / CHANNELS.len() + usize::from(n < count % CHANNELS.len());
        fake.populate_channel(channel, share, REPLIES);
    }
    let base = fake.graph_base().to_string();
    serve_until_parent_closes(base.trim_end_matches("/v1.0")).await;
}

async fn measure(count: usize) {
    let fake = FakeProcess::start(SERVE, count);
    let base = fake.base_url.clone();
    let graph = reqwest::Url::parse(&format!("{base}/v1.0")).expect("url");
    let login = reqwest::Url::parse(&format!("{base}/login")).expect("url");
    let http = tributary_e2e::app::loopback_client(Duration::from_secs(30));
    let auth = GraphAuth::new(
        SourceAuth::Bearer(AccessToken::new(TOKEN)),
        None,
        &login,
        http.clone(),
    )
    .expect("auth");
    let config = serde_json::from_value(json!({"batch_size": 50})).expect("config");
    let connector = TeamsConnector::new("bench", config, auth, http, RetryPolicy::default(), graph)
        .expect("a connector");

    let started = Instant::now();
    let mut checkpoint = None;
    let mut documents = 0usize;
    let mut bytes = 0usize;
    loop {
        let batch = connector.pull(checkpoint.as_ref()).await.expect("a batch");
        documents += batch.documents.len();
        bytes += batch
            .documents
            .iter()
            .map(|d| d.markdown.len())
            .sum::<usize>();
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
    assert_eq!(documents, count, "every thread synced once");
    assert_eq!(listed, count, "every thread listed");
    let messages = count * (1 + REPLIES);
    println!(
        "| {count:>7} | {messages:>8} | {:>8.2} | {:>9.0} | {:>10.0} | {:>14} | {:>13} |",
        pulled.as_secs_f64(),
        count as f64 / total.as_secs_f64(),
        messages as f64 / total.as_secs_f64(),
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
    println!("Teams full sync against the fake Graph (delta pass with replies + slim listing):");
    println!("| threads | messages | pull (s) | threads/s | messages/s | peak RSS (MiB) | markdown (KiB) |");
    println!("|--------:|---------:|---------:|----------:|-----------:|---------------:|---------------:|");
    measure_each(MEASURE, &sizes(&args, &[1000, 10_000]));
}
