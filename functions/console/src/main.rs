//! Lambda entrypoint: the console page and its assets on the HTTP API (public routes).

use tributary::web::finish;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    tributary::telemetry::init_lambda_logs();
    lambda_http::run(finish(console::routes())).await
}
