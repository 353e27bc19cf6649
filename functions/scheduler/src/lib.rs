//! The scheduler function: one EventBridge schedule tick. "Now" is the event's `time`, so a
//! delayed or replayed tick acts for the minute it was meant for, and tests send synthetic ticks.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use lambda_runtime::LambdaEvent;
use shared::mass_alert_closing;
use shared::reminder_run::{self, TickReport};
use shared::scheduled_texts;
use shared::services::Services;
use shared::status_checks::{self, StatusCheckReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerReport {
    pub reminders: TickReport,
    pub status_checks: StatusCheckReport,
    /// Scheduled texts whose time came in this tick.
    pub scheduled_texts: usize,
    /// Mass alerts closed (report written) in this tick.
    pub mass_alerts_closed: usize,
}

pub async fn handle(
    services: &Services,
    event: LambdaEvent<EventBridgeEvent<serde_json::Value>>,
) -> Result<SchedulerReport, lambda_runtime::Error> {
    let now = event.payload.time.unwrap_or_else(|| services.clock.now());
    // Each runs whatever the others did: a failing reminder sweep must not hold back scheduled
    // texts or leave texts without their status, nor the reverse.
    let scheduled_texts = scheduled_texts::release_due(services, now).await;
    let reminders = reminder_run::tick(services, now).await;
    let status_checks = status_checks::run(services, now).await;
    let mass_alerts_closed = mass_alert_closing::close_due(services, now).await;
    Ok(SchedulerReport {
        reminders: reminders?,
        status_checks: status_checks?,
        scheduled_texts: scheduled_texts?,
        mass_alerts_closed: mass_alerts_closed?,
    })
}
