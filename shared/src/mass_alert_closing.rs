//! Closing mass alerts (each scheduler tick): an alert whose texts all have a final state, or
//! whose texts all went to Twilio long enough ago ([`crate::config::Settings::alert_close_after`]),
//! gets its report written to S3 and its final counts and outcome recorded.

use chrono::{DateTime, Utc};
use tracing::{error, info};

use crate::alert_report::{self, ReportRow};
use crate::dynamo::StoreError;
use crate::mass_alert::{AlertStatus, MassAlert, Tally, taken_by_twilio};
use crate::message::Message;
use crate::message_status::MessageStatus;
use crate::reports_bucket::ReportsError;
use crate::services::Services;
use crate::twilio::error_catalogue;

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Report(#[from] ReportsError),
    #[error("the report could not be written: {0}")]
    Csv(String),
}

/// Closes every open alert that is over at `now`; returns how many it closed. One alert that
/// cannot be closed is logged and tried again next tick; it never holds back the others.
pub async fn close_due(services: &Services, now: DateTime<Utc>) -> Result<usize, CloseError> {
    let close_after = services.settings.alerts.close_after;
    let mut closed = 0;
    for alert in services.mass_alerts.open().await? {
        let counts = services.mass_alerts.counts(&alert.id).await?;
        if !counts.is_over(now, close_after) {
            continue;
        }
        match close(services, alert.clone(), now).await {
            Ok(true) => closed += 1,
            Ok(false) => {}
            Err(e) => error!(alert_id = %alert.id, error = ?e, "could not close the alert; trying again next tick"),
        }
    }
    Ok(closed)
}

/// Writes the report from the alert's messages and marks it completed (`false` if another tick
/// got there first: the report it wrote is the same, under the same key).
async fn close(services: &Services, mut alert: MassAlert, now: DateTime<Utc>) -> Result<bool, CloseError> {
    let ids = services.mass_alerts.message_ids(&alert.id).await?;
    let messages: Vec<Message> = services.messages.get_many(&ids).await?.into_values().collect();
    let zone = match services.clinics.clinic(&alert.clinic_id).await? {
        Some(clinic) => clinic.time_zone.parse().unwrap_or(chrono_tz::UTC),
        None => chrono_tz::UTC,
    };
    let rows = messages.iter().map(report_row).collect();
    let csv = alert_report::to_csv(rows, zone).map_err(|e| CloseError::Csv(e.to_string()))?;
    let key = format!("mass-alerts/{}/{}.csv", alert.clinic_id, alert.id);
    let file_name = format!("mass-alert-{}.csv", alert.created_at.format("%Y%m%d-%H%M"));
    services.reports.put_csv(&key, csv, &file_name).await?;
    let tally = tally(&messages);
    alert.status = AlertStatus::Completed;
    alert.final_counts = Some(tally);
    alert.completed_at = Some(now);
    alert.report_key = Some(key);
    let completed = services.mass_alerts.complete(&alert).await?;
    if completed {
        info!(alert_id = %alert.id, ?tally, "mass alert completed");
    }
    Ok(completed)
}

/// Counts from the messages themselves: what the report says, whatever the live counters saw.
pub fn tally(messages: &[Message]) -> Tally {
    let mut tally = Tally { recipients: messages.len() as u64, ..Tally::default() };
    for m in messages {
        if taken_by_twilio(m.status) || m.accepted_attempts() > 0 {
            tally.sent += 1;
        }
        match m.status {
            MessageStatus::Delivered => tally.delivered += 1,
            MessageStatus::Failed | MessageStatus::Undelivered => tally.failed += 1,
            MessageStatus::Submitted | MessageStatus::Sent => {}
            _ => tally.not_sent += 1,
        }
    }
    tally
}

/// One client's line: a text Twilio still shows as sent counts as sent (no failure); failed,
/// undelivered and not-sent lines come first, with what went wrong.
fn report_row(m: &Message) -> ReportRow {
    let link = m.mass_alert.as_ref();
    let (sms_status, failed) = match m.status {
        MessageStatus::Delivered => ("Delivered", false),
        MessageStatus::Submitted | MessageStatus::Sent => ("Sent", false),
        MessageStatus::Undelivered => ("Undelivered", true),
        MessageStatus::Failed => ("Failed", true),
        _ => ("Not sent", true),
    };
    let error_details = match &m.failure {
        Some(f) if failed => match (f.code, f.reason) {
            (Some(code), _) => format!("{code}: {}", error_catalogue::describe(code)),
            (None, Some(reason)) => format!("{}: {}", reason.code(), reason.description()),
            (None, None) => String::new(),
        },
        _ => String::new(),
    };
    let phone =
        m.to.as_ref()
            .map(ToString::to_string)
            .or_else(|| link.and_then(|l| l.entered_number.clone()))
            .unwrap_or_default();
    ReportRow {
        client_full_name: link.map(|l| l.client_name.clone()).unwrap_or_default(),
        client_phone_number: phone,
        sms_status: sms_status.to_owned(),
        error_details,
        message_text: m.body.as_str().to_owned(),
        timestamp: Some(m.updated_at),
        failed,
    }
}
