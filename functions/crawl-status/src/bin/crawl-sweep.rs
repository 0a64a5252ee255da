//! Lambda entrypoint for the crawl sweeper: an EventBridge schedule invokes it every few
//! minutes; it ends crawls whose pending pages stopped moving (see `tributary::crawl::sweep`).

use lambda_http::lambda_runtime::{self, service_fn, Error, LambdaEvent};
use tributary::crawl::setup::stall_after_from_env;
use tributary::crawl::sweep::sweep;
use tributary::store::crawls::CrawlJobs;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let stall_after = stall_after_from_env()?;
    let jobs = CrawlJobs::new(services.table.clone());
    let jobs = &jobs;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| async move {
        let now = tributary::time::now_epoch_seconds();
        let report = sweep(jobs, stall_after, now).await?;
        Ok::<_, Error>(serde_json::json!({
            "checked": report.checked,
            "closed": report.closed,
        }))
    }))
    .await
}
