//! Lambda entrypoint: providers and store built once; the router serves every invocation.

use tributary::auth::oauth::SignIn;
use tributary::web::finish;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let sign_in = SignIn::from_env(services.table.clone())?;
    lambda_http::run(finish(oauth_login::routes(sign_in))).await
}
