//! Mass alerts as the API offers them: preview who an alert would reach, confirm it (which
//! publishes `MassAlertConfirmed` for the fan-out), list the clinic's alerts with their counts
//! and outcome, and show one with a fresh link to its report.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clinic::{Clinic, Principal, Role};
use crate::clinic_records::Page;
use crate::dynamo::StoreError;
use crate::event_bus::PublishError;
use crate::ids::AlertId;
use crate::mass_alert::{AlertRange, AlertStatus, MassAlert, Outcome, RangeError, Tally};
use crate::mass_alert_fanout::{self, MASS_ALERT_CONFIRMED, MassAlertConfirmed};
use crate::mass_alert_recipients::Verdict;
use crate::message::{BodyError, MAX_BODY_CHARS, MessageBody};
use crate::outbound::{self, CreateTextError};
use crate::reason::Reason;
use crate::reports_bucket::ReportsError;
use crate::segments::{self, Encoding};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("only administrators can send mass alerts")]
    NotAdmin,
    #[error("mass alerts need two-way texting")]
    TwoWayOff,
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the alert was not confirmed")]
    NotConfirmed,
    #[error("the alert needs {needed} credits and the clinic has {available}")]
    NotEnoughCredits { needed: u64, available: u64 },
    #[error(transparent)]
    Connection(#[from] CreateTextError),
    #[error("no such alert")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Report(#[from] ReportsError),
}

/// What an admin asks for: the appointments' range and the words.
#[derive(Debug, Clone)]
pub struct AlertRequest {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub body: String,
}

/// A client who would not be texted, and why.
#[derive(Debug, Clone, Serialize)]
pub struct NotTexted {
    pub contact_id: String,
    pub client_name: String,
    pub reason: Reason,
    pub description: &'static str,
}

/// The characters an alert uses of Twilio's 1,600 and what it costs in segments.
#[derive(Debug, Clone, Serialize)]
pub struct Characters {
    pub used: usize,
    pub remaining: usize,
    pub encoding: Encoding,
    pub segments: u32,
    /// Characters (in the encoding's units) that still fit before another segment starts.
    pub left_in_segment: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Credits {
    pub needed: u64,
    pub balance: u64,
    pub enough: bool,
}

/// What confirming would do now.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Unique clients who would be texted (one text each).
    pub recipients: usize,
    pub not_texted: Vec<NotTexted>,
    pub first_appointment: Option<DateTime<Utc>>,
    pub last_appointment: Option<DateTime<Utc>>,
    pub characters: Characters,
    pub credits: Credits,
}

/// An alert as the activity list shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertView {
    pub id: AlertId,
    pub status: AlertStatus,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub body: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub counts: Tally,
    /// Only once the alert is completed.
    pub outcome: Option<Outcome>,
    /// A link to the report, valid for a few minutes (only when one alert is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url_expires_in_seconds: Option<u64>,
}

impl AlertView {
    fn new(alert: &MassAlert, live: Tally) -> Self {
        let counts = alert.final_counts.unwrap_or(live);
        Self {
            id: alert.id.clone(),
            status: alert.status,
            from: alert.range.from,
            to: alert.range.to,
            body: alert.body.as_str().to_owned(),
            created_by: alert.created_by.to_string(),
            created_at: alert.created_at,
            completed_at: alert.completed_at,
            counts,
            outcome: (alert.status == AlertStatus::Completed).then(|| counts.outcome()),
            report_url: None,
            report_url_expires_in_seconds: None,
        }
    }
}

/// Mass alerts, their activity and their reports (clients' names and numbers) are for admins.
fn admin(caller: &Principal) -> Result<(), AlertError> {
    if caller.role == Role::Admin { Ok(()) } else { Err(AlertError::NotAdmin) }
}

fn admin_with_two_way(clinic: &Clinic, caller: &Principal) -> Result<(), AlertError> {
    admin(caller)?;
    if !clinic.two_way_texting {
        return Err(AlertError::TwoWayOff);
    }
    Ok(())
}

async fn caller_clinic(services: &Services, caller: &Principal) -> Result<Clinic, AlertError> {
    services.clinics.clinic(&caller.clinic_id).await?.ok_or(AlertError::Connection(CreateTextError::UnknownClinic))
}

fn characters(body: &str) -> Characters {
    let info = segments::analyse(body);
    Characters {
        used: info.characters,
        remaining: MAX_BODY_CHARS.saturating_sub(info.characters),
        encoding: info.encoding,
        segments: info.segments,
        left_in_segment: info.units_left_in_segment,
    }
}

/// Who the alert would reach now, what it would cost and whether the balance covers it. An
/// empty body is previewed (nothing typed yet); one over 1,600 characters is refused.
pub async fn preview(services: &Services, caller: &Principal, request: &AlertRequest) -> Result<Preview, AlertError> {
    let clinic = caller_clinic(services, caller).await?;
    admin_with_two_way(&clinic, caller)?;
    let now = services.clock.now();
    let range = AlertRange::new(request.from, request.to, now)?;
    if let Err(BodyError::TooLong(n)) = MessageBody::parse(&request.body) {
        return Err(BodyError::TooLong(n).into());
    }
    let selection = mass_alert_fanout::select_recipients(services, &clinic, &range, now).await?;
    let characters = characters(&request.body);
    let needed = u64::from(characters.segments.max(1)) * selection.texts() as u64;
    let balance = services.counters.credit_balance(&clinic.id).await?;
    let not_texted = selection
        .recipients
        .iter()
        .filter_map(|r| match r.verdict {
            Verdict::NotSent { reason, .. } => Some(NotTexted {
                contact_id: r.contact_id.clone(),
                client_name: r.client_name.clone(),
                reason,
                description: reason.description(),
            }),
            Verdict::Text(_) => None,
        })
        .collect();
    Ok(Preview {
        recipients: selection.texts(),
        not_texted,
        first_appointment: selection.first_appointment,
        last_appointment: selection.last_appointment,
        characters,
        credits: Credits { needed, balance, enough: balance >= needed },
    })
}

/// Confirms an alert: checks everything a preview shows, stores the alert and publishes
/// `MassAlertConfirmed`. If the event cannot be published the alert is removed again, so no
/// alert waits forever for a fan-out that was never asked for.
pub async fn confirm(
    services: &Services,
    caller: &Principal,
    request: &AlertRequest,
    confirmed: bool,
) -> Result<MassAlert, AlertError> {
    let clinic = caller_clinic(services, caller).await?;
    admin_with_two_way(&clinic, caller)?;
    let now = services.clock.now();
    let range = AlertRange::new(request.from, request.to, now)?;
    let body = MessageBody::parse(&request.body)?;
    if !confirmed {
        return Err(AlertError::NotConfirmed);
    }
    let connection = outbound::sending_connection(services, &clinic, None).await?;
    let selection = mass_alert_fanout::select_recipients(services, &clinic, &range, now).await?;
    let needed = u64::from(segments::analyse(body.as_str()).segments.max(1)) * selection.texts() as u64;
    let available = services.counters.credit_balance(&clinic.id).await?;
    if available < needed {
        return Err(AlertError::NotEnoughCredits { needed, available });
    }
    let alert = MassAlert::new(clinic.id.clone(), connection.id, range, body, caller.user_id.clone(), now);
    services.mass_alerts.create(&alert).await?;
    let detail = MassAlertConfirmed { clinic_id: alert.clinic_id.clone(), alert_id: alert.id.clone() };
    let detail = serde_json::to_value(&detail).unwrap_or_default();
    if let Err(e) = services.events.publish(MASS_ALERT_CONFIRMED, &detail).await {
        if let Err(undo) = services.mass_alerts.remove_unstarted(&alert).await {
            tracing::error!(alert_id = %alert.id, error = ?undo, "could not remove an alert whose event was not published");
        }
        return Err(e.into());
    }
    Ok(alert)
}

/// A page of the clinic's alerts, newest first, with their counts. The cursor is the last id of
/// the page before.
pub async fn list(
    services: &Services,
    caller: &Principal,
    limit: i32,
    cursor: Option<&str>,
) -> Result<Page<AlertView>, AlertError> {
    admin(caller)?;
    let page = services.mass_alerts.list(&caller.clinic_id, limit, cursor).await?;
    let sending: Vec<AlertId> =
        page.items.iter().filter(|a| a.status == AlertStatus::Sending).map(|a| a.id.clone()).collect();
    let live = services.mass_alerts.counts_of(&sending).await?;
    let items =
        page.items.iter().map(|a| AlertView::new(a, live.get(&a.id).map(|c| c.tally).unwrap_or_default())).collect();
    Ok(Page { items, next_cursor: page.next_cursor })
}

/// One alert; once completed, with a fresh link to its report valid for `link_valid_for`.
pub async fn show(
    services: &Services,
    caller: &Principal,
    id: &str,
    link_valid_for: Duration,
) -> Result<AlertView, AlertError> {
    admin(caller)?;
    let alert = services.mass_alerts.get(&caller.clinic_id, id).await?.ok_or(AlertError::NotFound)?;
    let live = match alert.status {
        AlertStatus::Sending => services.mass_alerts.counts(&alert.id).await?.tally,
        AlertStatus::Completed => Tally::default(),
    };
    let mut view = AlertView::new(&alert, live);
    if let Some(key) = &alert.report_key {
        view.report_url = Some(services.reports.link(key, link_valid_for).await?);
        view.report_url_expires_in_seconds = Some(link_valid_for.as_secs());
    }
    Ok(view)
}
