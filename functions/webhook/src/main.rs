//! Lambda entrypoint: build the sync engine once (queues, vault), serve the webhook route.

use std::sync::Arc;

use tributary::sync::setup::engine_from_env;
use tributary::web::finish;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = Arc::new(engine_from_env(services.table.clone()).await?);
    lambda_http::run(finish(webhook::public_routes(engine))).await
}
