//! Lambda entrypoint: build the sync engine once, serve the connectors router.

use std::sync::Arc;

use axum::middleware::from_fn;
use tributary::sync::setup::engine_from_env;
use tributary::web::{finish, principal_from_authorizer};
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = Arc::new(engine_from_env(services.table.clone()).await?);
    let app =
        finish(connectors_api::protected_routes(engine)).layer(from_fn(principal_from_authorizer));
    lambda_http::run(app).await
}
