//! Lambda entrypoint for scheduled crawls: EventBridge Scheduler invokes it with a stored
//! crawl (template.yaml's ScheduledCrawlConfig); it starts a job like `POST /crawls` does.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tributary::crawl::setup::engine_from_env;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = engine_from_env(services.table.clone()).await?;
    let engine = &engine;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<crawl_start::ScheduledCrawl>| async move {
            let job = crawl_start::start_scheduled(engine, event.payload).await?;
            Ok::<_, Error>(serde_json::json!({ "id": job.id }))
        },
    ))
    .await
}
