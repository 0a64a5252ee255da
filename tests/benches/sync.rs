//! Sync throughput and memory: a fake Jira with N issues in a child process (so its own
//! memory is not counted), synced into a directory sink by the real engine over the
//! embedded store. Prints documents/s and this process's peak RSS.
//!
//! `cargo bench -p tributary-e2e --bench sync -- 1000` (and `-- 10000`)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tributary::sync::{SyncMessage, SyncOutcome};
use tributary_e2e::app::{embedded_table, sync_engine, temp_dir};
use tributary_e2e::fake_jira::{self, FakeJira};

const SERVE: &str = "--serve-fake-jira";

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == SERVE) {
        let count: usize = args[position + 1].parse().expect("issue count");
        let jira = FakeJira::start(count).await;
        println!("{}", jira.base_url());
        // Serve until the parent closes our stdin.
        let _ =
            tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
        return;
    }
    let count: usize = args
        .iter()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(1000);
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args([SERVE, &count.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the fake Jira");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the fake's address");
    let base_url = line.trim().to_owned();

    let (engine, _) = sync_engine(embedded_table());
    let out = temp_dir("bench-sync");
    let request: connectors_api::CreateRequest = serde_json::from_value(json!({
        "name": "bench",
        "source": "jira",
        "config": {"base_url": base_url, "project_keys": [fake_jira::PROJECT], "batch_size": 100},
        "credentials": {"type": "basic", "email": fake_jira::EMAIL, "api_token": fake_jira::API_TOKEN},
        "sink": {"type": "directory", "path": out},
    }))
    .expect("request");
    let record = connectors_api::create_connector(&engine, "bench", request)
        .await
        .expect("create");
    let before = peak_rss_kib();
    let started = Instant::now();
    let outcome = engine
        .run(
            &SyncMessage::new(&record.id, "manual"),
            Instant::now() + Duration::from_secs(3600),
        )
        .await
        .expect("sync");
    let elapsed = started.elapsed();
    let SyncOutcome::Finished(run) = outcome else {
        panic!("unexpected outcome {outcome:?}");
    };
    let documents = run.counts.added + run.counts.updated + run.counts.unchanged;
    println!(
        "sync of {count} issues: {documents} documents in {:.2} s = {:.0} documents/s; peak RSS {:.1} MiB (before the sync {:.1} MiB); failed {}",
        elapsed.as_secs_f64(),
        documents as f64 / elapsed.as_secs_f64(),
        peak_rss_kib() as f64 / 1024.0,
        before as f64 / 1024.0,
        run.counts.failed,
    );
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(out);
}
