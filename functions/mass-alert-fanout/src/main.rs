//! Mass alert fan-out: takes `MassAlertConfirmed` events (from the bus, through SQS) and gives
//! every client of the alert one text on the bulk lane, or a recipient row saying why not.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use shared::services::Services;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| mass_alert_fanout::handle(&services, event))).await
}
