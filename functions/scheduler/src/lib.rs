//! The scheduler function: one EventBridge schedule tick. "Now" is the event's `time`, so a
//! delayed or replayed tick acts for the minute it was meant for, and tests send synthetic ticks.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use shared::reminder_run::{self, TickReport};
use shared::services::Services;
use shared::status_checks::{self, StatusCheckReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerReport {
    pub reminders: TickReport,
    pub status_checks: StatusCheckReport,
}

pub async fn handle(
    services: &Services,
    event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
) -> Result<SchedulerReport, lambda_runtime::Error> {
    let now = event.payload.time.unwrap_or_else(|| services.clock.now());
    // Both run whatever the other did: a failing reminder sweep must not leave texts without
    // their status, nor the reverse.
    let reminders = reminder_run::tick(services, now).await;
    let status_checks = status_checks::run(services, now).await;
    Ok(SchedulerReport { reminders: reminders?, status_checks: status_checks? })
}
