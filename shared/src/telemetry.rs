//! Logs for the Lambda functions: JSON lines on stdout (CloudWatch adds the timestamp),
//! each carrying the runtime's per-invocation span with the request id. The level comes
//! from Lambda's advanced logging controls (`AWS_LAMBDA_LOG_LEVEL`) or `RUST_LOG`, as a
//! plain level: per-module filters would link a regex engine into every function.

use tracing_subscriber::filter::LevelFilter;

pub fn init_lambda_logs() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .with_writer(std::io::stdout)
        .init();
}
