//! The scheduler function: one EventBridge schedule tick. "Now" is the event's `time`, so a
//! delayed or replayed tick acts for the minute it was meant for, and tests send synthetic ticks.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use shared::reminder_run::{self, TickReport};
use shared::services::Services;

pub async fn handle(
    services: &Services,
    event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
) -> Result<TickReport, lambda_runtime::Error> {
    let now = event.payload.time.unwrap_or_else(|| services.clock.now());
    Ok(reminder_run::tick(services, now).await?)
}
