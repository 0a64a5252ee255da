//! Lambda entrypoint: providers, vault and store built once; the router serves every
//! invocation. The caller comes from the API Gateway authorizer's context.

use axum::middleware::from_fn;
use tributary::web::{finish, principal_from_authorizer};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let table = tributary::services::store_table_from_env().await?;
    let state = integration_login::state_from_env(table)?;
    let app = finish(integration_login::protected_routes(state))
        .layer(from_fn(principal_from_authorizer));
    lambda_http::run(app).await
}
