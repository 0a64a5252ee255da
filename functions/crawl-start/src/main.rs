//! Lambda entrypoint: build the crawl engine once, serve the router for every invocation.

use std::sync::Arc;

use axum::middleware::from_fn;
use tributary::crawl::setup::engine_from_env;
use tributary::web::{finish, principal_from_authorizer};
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = Arc::new(engine_from_env(services.table.clone()).await?);
    let app =
        finish(crawl_start::protected_routes(engine)).layer(from_fn(principal_from_authorizer));
    lambda_http::run(app).await
}
