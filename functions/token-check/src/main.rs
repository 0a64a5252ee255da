//! Lambda entrypoint: build the verifier once, decide every invocation with it.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::from_env().await?;
    let verifier = &services.verifier;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<token_check::Request>| async move {
            Ok::<_, Error>(token_check::handle(verifier, &event.payload).await)
        },
    ))
    .await
}
