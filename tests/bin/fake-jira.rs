//! The tests' fake Jira Cloud as a standalone server, to try connectors locally without an
//! Atlassian site: prints its base URL, serves N generated issues until stdin closes or it
//! is killed. Accepts `sync-bot@example.com` / `fake-jira-api-token-7c1e5b` (Basic).
//!
//! `cargo run -p tributary-e2e --bin fake-jira -- 250 [page-delay-ms]`

use std::io::Write as _;

#[tokio::main]
async fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(250);
    let page_delay_ms: u64 = std::env::args()
        .nth(2)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(0);
    let jira = tributary_e2e::fake_jira::FakeJira::start(count).await;
    jira.set_page_delay(std::time::Duration::from_millis(page_delay_ms));
    println!("{}", jira.base_url());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
}
