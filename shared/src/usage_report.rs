//! The SMS usage report: every message a clinic created or received in a period, with its
//! status, error code and what it means, segments, credits and the user who created it, and
//! totals by status and by error code. Messages are read in creation order from the clinic's
//! index (`messages.gsi1`, sort key `MSG#<ulid>`), whose ids sort by creation time.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::dynamo::StoreError;
use crate::ids::ClinicId;
use crate::message::{Direction, Message};
use crate::message_status::MessageStatus;
use crate::segments;
use crate::services::Services;
use crate::twilio::error_catalogue;

/// The longest period one report covers.
pub const MAX_PERIOD: TimeDelta = TimeDelta::days(31);
/// The most messages one report holds; a busier period is asked for in parts.
pub const MAX_ROWS: usize = 20_000;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the period ends before it starts")]
    BackwardsPeriod,
    #[error("the period is longer than 31 days")]
    PeriodTooLong,
    #[error("the period holds more than {MAX_ROWS} messages; ask for a shorter one")]
    TooManyMessages,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One message as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub created_at: DateTime<Utc>,
    pub id: String,
    pub direction: Direction,
    pub status: MessageStatus,
    pub to: Option<String>,
    pub from: Option<String>,
    pub contact_id: Option<String>,
    pub connection_id: String,
    pub error_code: Option<u32>,
    pub error_description: Option<String>,
    pub segments: u32,
    /// Credits spent: its segments for every attempt Twilio took.
    pub credits: u32,
    pub user: Option<String>,
}

impl From<&Message> for UsageRow {
    fn from(m: &Message) -> Self {
        let segments = segments::analyse(m.body.as_str()).segments.max(1);
        let (error_code, error_description) = match &m.failure {
            Some(f) => (
                f.code,
                Some(match (f.code, f.reason) {
                    (Some(code), _) => error_catalogue::describe(code),
                    (None, Some(reason)) => reason.description().to_owned(),
                    (None, None) => "The text could not be sent.".to_owned(),
                }),
            ),
            None => (None, None),
        };
        Self {
            created_at: m.created_at,
            id: m.id.to_string(),
            direction: m.direction,
            status: m.status,
            to: m.to.as_ref().map(|n| n.as_str().to_owned()),
            from: m.from.as_ref().map(|n| n.as_str().to_owned()),
            contact_id: m.contact_id.clone(),
            connection_id: m.connection_id.to_string(),
            error_code,
            error_description,
            segments,
            credits: segments * m.accepted_attempts(),
            user: m.created_by.as_ref().map(|u| u.to_string()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub messages: u64,
    pub segments: u64,
    pub credits: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Messages per error code (Twilio's number, or our reason for texts that never reached it).
    pub by_error_code: BTreeMap<String, u64>,
}

pub fn totals(rows: &[UsageRow], messages: &[Message]) -> Totals {
    let mut totals = Totals::default();
    for (row, message) in rows.iter().zip(messages) {
        totals.messages += 1;
        totals.segments += u64::from(row.segments);
        totals.credits += u64::from(row.credits);
        *totals.by_status.entry(row.status.to_string()).or_default() += 1;
        let code = match (&row.error_code, message.failure.as_ref().and_then(|f| f.reason)) {
            (Some(code), _) => Some(code.to_string()),
            (None, Some(reason)) => Some(reason.code()),
            (None, None) => None,
        };
        if let Some(code) = code {
            *totals.by_error_code.entry(code).or_default() += 1;
        }
    }
    totals
}

/// The report as CSV, one row per message, oldest first.
pub fn to_csv(rows: &[UsageRow]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "Created At",
        "Message ID",
        "Direction",
        "Status",
        "To",
        "From",
        "Contact ID",
        "Connection ID",
        "Error Code",
        "Error Description",
        "Segments",
        "Credits",
        "User",
    ])?;
    for row in rows {
        let direction = match row.direction {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        };
        writer.write_record([
            row.created_at.to_rfc3339(),
            row.id.clone(),
            direction.to_owned(),
            row.status.to_string(),
            row.to.clone().unwrap_or_default(),
            row.from.clone().unwrap_or_default(),
            row.contact_id.clone().unwrap_or_default(),
            row.connection_id.clone(),
            row.error_code.map(|c| c.to_string()).unwrap_or_default(),
            row.error_description.clone().unwrap_or_default(),
            row.segments.to_string(),
            row.credits.to_string(),
            row.user.clone().unwrap_or_default(),
        ])?;
    }
    let bytes = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: Totals,
    pub messages: Vec<UsageRow>,
}

/// Checks the period: forward, and at most 31 days.
pub fn check_period(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ReportError> {
    if to < from {
        Err(ReportError::BackwardsPeriod)
    } else if to - from > MAX_PERIOD {
        Err(ReportError::PeriodTooLong)
    } else {
        Ok(())
    }
}

/// The report for messages created from `from` up to and including `to`.
pub async fn usage(
    services: &Services,
    clinic: &ClinicId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<UsageReport, ReportError> {
    check_period(from, to)?;
    let messages = services.messages.created_between(clinic, from, to, MAX_ROWS + 1).await?;
    if messages.len() > MAX_ROWS {
        return Err(ReportError::TooManyMessages);
    }
    let rows: Vec<UsageRow> = messages.iter().map(UsageRow::from).collect();
    Ok(UsageReport { from, to, totals: totals(&rows, &messages), messages: rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConnectionId, UserId};
    use crate::message::{Failure, Lane, MessageBody};
    use crate::phone::E164;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn text(body: &str) -> Message {
        let (Ok(to), Ok(body)) = (E164::parse("+14155550123", None), MessageBody::parse(body)) else {
            panic!("valid fixtures")
        };
        let user = Some(UserId::new("u1"));
        Message::new_outbound(
            ClinicId::new("c1"),
            to,
            body,
            ConnectionId::new("k1"),
            Lane::Interactive,
            user,
            at("2026-06-10T13:00:00Z"),
        )
    }

    fn accepted(m: Message) -> Message {
        let claimed = m.claim(at("2026-06-10T13:00:01Z"), TimeDelta::seconds(60)).ok();
        claimed
            .and_then(|m| m.accepted(1, "SM1", "queued", at("2026-06-10T13:00:02Z")).ok())
            .unwrap_or_else(|| panic!("accepted"))
    }

    #[test]
    fn rows_count_segments_credits_and_explain_errors() {
        let long = "x".repeat(200); // two segments
        let sent = accepted(text(&long));
        let claimed = text("Hi").claim(at("2026-06-10T13:00:01Z"), TimeDelta::seconds(60)).ok();
        let refused = claimed
            .and_then(|m| m.failed_attempt(1, Failure::twilio(21211, None), at("2026-06-10T13:00:02Z")).ok())
            .unwrap_or_else(|| panic!("fails"));
        let messages = vec![sent, refused, text("Waiting")];
        let rows: Vec<UsageRow> = messages.iter().map(UsageRow::from).collect();
        assert_eq!((rows[0].segments, rows[0].credits, rows[0].user.as_deref()), (2, 2, Some("u1")));
        assert_eq!((rows[1].credits, rows[1].error_code), (0, Some(21211)), "Twilio refused it: no credit spent");
        assert!(rows[1].error_description.as_deref().is_some_and(|d| !d.is_empty()));
        let totals = totals(&rows, &messages);
        assert_eq!((totals.messages, totals.segments, totals.credits), (3, 4, 2));
        assert_eq!(totals.by_status.get("submitted"), Some(&1));
        assert_eq!(totals.by_status.get("queued"), Some(&1));
        assert_eq!(totals.by_error_code.get("21211"), Some(&1));

        let csv = to_csv(&rows).unwrap_or_default();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("Created At,Message ID,Direction,Status"), "{}", lines[0]);
        assert!(lines[2].contains(",failed,") && lines[2].contains(",21211,"), "{}", lines[2]);
    }

    #[test]
    fn a_period_runs_forward_and_at_most_31_days() {
        let from = at("2026-06-01T00:00:00Z");
        assert!(check_period(from, from + MAX_PERIOD).is_ok());
        assert!(matches!(
            check_period(from, from + MAX_PERIOD + TimeDelta::seconds(1)),
            Err(ReportError::PeriodTooLong)
        ));
        assert!(matches!(check_period(from, from - TimeDelta::seconds(1)), Err(ReportError::BackwardsPeriod)));
    }
}
