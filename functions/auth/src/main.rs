//! Lambda entrypoint: build the services once, serve the router for every invocation.

use axum::middleware::from_fn;
use tributary::web::{finish, principal_from_authorizer};
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::from_env().await?;
    let app = finish(auth::public_routes(services.clone()).merge(auth::protected_routes(services)))
        .layer(from_fn(principal_from_authorizer));
    lambda_http::run(app).await
}
