//! Lambda entrypoint: EventBridge invokes it on a fixed rate; each tick enqueues due syncs.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tributary::sync::setup::enqueue_only_engine_from_env;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = enqueue_only_engine_from_env(services.table.clone()).await?;
    let engine = &engine;
    lambda_runtime::run(service_fn(|_: LambdaEvent<serde_json::Value>| async move {
        let tick = scheduler::tick(engine).await?;
        Ok::<_, Error>(serde_json::json!({"checked": tick.checked, "enqueued": tick.enqueued}))
    }))
    .await
}
