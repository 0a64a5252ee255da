//! Lambda entrypoint: build the engine once, hand it every SQS batch.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use tributary::crawl::engine::Deadline;
use tributary::crawl::setup::engine_from_env;
use tributary::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tributary::telemetry::init_lambda_logs();
    let services = Services::store_from_env().await?;
    let engine = engine_from_env(services.table.clone()).await?;
    let engine = &engine;
    lambda_runtime::run(service_fn(
        |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| async move {
            let deadline = Deadline::from_epoch_millis(event.context.deadline);
            Ok::<_, Error>(crawl_page::handle(engine, event.payload, deadline).await)
        },
    ))
    .await
}
