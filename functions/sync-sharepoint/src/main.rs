//! Lambda entrypoint of the sharepoint sync: one SQS record per invocation, run until the
//! invocation's deadline by the shared sync engine.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tributary::sync::lambda::{deadline_from, handle};
use tributary::sync::setup::engine_from_env;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = engine_from_env(services.table.clone()).await?;
    let engine = &engine;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let deadline = deadline_from(event.context.deadline);
            Ok::<_, Error>(handle(engine, event.payload, deadline).await)
        },
    ))
    .await
}
