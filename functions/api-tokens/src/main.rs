//! Lambda entrypoint: build the services once, serve the router for every invocation.

use axum::middleware::from_fn;
use tributary::web::{finish, principal_from_authorizer};
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let app =
        finish(api_tokens::protected_routes(services)).layer(from_fn(principal_from_authorizer));
    lambda_http::run(app).await
}
