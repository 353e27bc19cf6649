//! Scheduler: every minute, sends scheduled texts whose time came, opens due reminder windows
//! (one decision per appointment), releases credit retries on the hour in each business's
//! zone, and asks Twilio about texts whose status callbacks never came.
// The tick's future nests the SDK's deeply; the default limit is just short of it.
#![recursion_limit = "256"]

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::services::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| async {
        scheduler::handle(&services, event).await.map(|report| format!("{report:?}"))
    }))
    .await
}
