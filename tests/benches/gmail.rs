//! Gmail full-sync throughput against the fake: threads/s and peak RSS (VmHWM) at 1k and
//! 10k threads. `cargo test -p tributary-e2e --bench gmail` (dev profile) or
//! `cargo bench -p tributary-e2e --bench gmail`.

use std::time::{Duration, Instant};

use serde_json::json;
use tributary::connectors::gmail::{GmailConfig, GmailConnector};
use tributary::connectors::kit::{AccessToken, SourceAuth};
use tributary::connectors::Connector;
use tributary_e2e::fake_gmail::FakeGmail;
use tributary_e2e::google::TokenBook;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn run(threads: usize) -> (f64, u64) {
    let book = TokenBook::new();
    let user = "bench@example.com";
    let fake = FakeGmail::start(book.clone(), &[(user, threads)]).await;
    book.allow("ya29.bench", user);
    let config: GmailConfig = serde_json::from_value(json!({"batch_size": 100})).expect("config");
    let gmail = GmailConnector::with_quota(
        "gmail-bench",
        config,
        SourceAuth::Bearer(AccessToken::new("ya29.bench")),
        tributary_e2e::app::loopback_client(Duration::from_secs(30)),
        tributary::http::RetryPolicy::default(),
        fake.api_base(),
        None,
    )
    .expect("connector");
    let started = Instant::now();
    let mut checkpoint = None;
    let mut documents = 0usize;
    loop {
        let batch = gmail.pull(checkpoint.as_ref()).await.expect("batch");
        documents += batch.documents.len();
        checkpoint = Some(batch.checkpoint);
        if batch.done {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    (documents as f64 / elapsed, peak_rss_kib())
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!("| threads | threads/s | peak RSS (VmHWM) |");
    println!("| ---: | ---: | ---: |");
    for threads in [1_000, 10_000] {
        let (rate, rss) = runtime.block_on(run(threads));
        println!("| {threads} | {rate:.0} | {:.1} MiB |", rss as f64 / 1024.0);
    }
}
