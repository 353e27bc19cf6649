//! Sender: takes send jobs from the SQS lanes, hands each message to Twilio exactly once and
//! records the result. Jobs to retry are returned as batch item failures.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::services::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| sender::handle(&services, event))).await
}
