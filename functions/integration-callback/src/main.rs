//! Lambda entrypoint: providers, vault and store built once; the router serves every
//! invocation (a public route: the one-time state is the check).

use tributary::web::finish;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let table = tributary::services::store_table_from_env().await?;
    let state = integration_login::state_from_env(table)?;
    lambda_http::run(finish(integration_callback::routes(state))).await
}
