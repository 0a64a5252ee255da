//! The crawl's fetch path alone: GETs every URL listed in a file (one a line, e.g. what
//! `spider crawl --output-links` printed) with the crawl's guarded `Fetcher`, `--workers` at
//! a time on a two-thread runtime like tributary-local's, and prints the process's CPU time
//! per page. With `--write DIR` each body is also written to a new file there, as a crawl's
//! directory sink does. A floor for a crawl's CPU per page: it fetches every page too.
//! `cargo run --release -p tributary --features crawl --example fetch_list -- urls.txt`
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tributary::crawl::fetch::{FetchLimits, Fetcher};
use tributary::http::policy::NetworkPolicy;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut list = None;
    let mut workers = 8;
    let mut write = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => workers = args.next().and_then(|n| n.parse().ok()).unwrap_or(8),
            "--write" => write = args.next().map(std::path::PathBuf::from),
            _ => list = Some(arg),
        }
    }
    let list = list.unwrap_or_else(|| panic!("usage: fetch_list URLS [--workers N] [--write DIR]"));
    let urls: Vec<url::Url> = std::fs::read_to_string(&list)
        .unwrap_or_else(|error| panic!("{list}: {error}"))
        .lines()
        .filter_map(|line| url::Url::parse(line.trim()).ok())
        .collect();
    if let Some(dir) = &write {
        std::fs::create_dir_all(dir).unwrap_or_else(|error| panic!("{error}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("{error}"));
    let fetcher = Fetcher::new(
        Arc::new(NetworkPolicy::allow_private()),
        FetchLimits::default(),
        "tributary-fetch-list",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let (pages, bytes) = runtime.block_on(fetch_all(&fetcher, &urls, workers, write.as_deref()));
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{pages} of {} pages, {:.1} MB in {wall:.2} s ({:.0} pages/s); CPU {cpu:.2} s = {:.3} ms a page",
        urls.len(),
        bytes as f64 / 1e6,
        pages as f64 / wall,
        cpu * 1e3 / pages.max(1) as f64
    );
}

async fn fetch_all(
    fetcher: &Fetcher,
    urls: &[url::Url],
    workers: usize,
    write: Option<&std::path::Path>,
) -> (usize, usize) {
    let fetches = futures::stream::iter(urls.iter().enumerate())
        .map(|(n, url)| async move {
            let fetched = fetcher.get(url, &|_| true).await.ok()?;
            if let Some(dir) = write {
                std::fs::write(dir.join(format!("{n:08}.md")), &fetched.body).ok()?;
            }
            Some(fetched.body.len())
        })
        .buffer_unordered(workers);
    fetches
        .fold((0, 0), |(pages, bytes), body| async move {
            match body {
                Some(len) => (pages + 1, bytes + len),
                None => (pages, bytes),
            }
        })
        .await
}

/// User plus system CPU time of this process so far, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit(')').next().unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}
