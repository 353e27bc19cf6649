//! Mass alerts (the rules, no I/O): the range an admin may choose, the alert and its counts, when
//! it is over, and how each of its texts moves the counts along.
//!
//! An alert's texts are ordinary messages on the bulk lane that carry an [`AlertLink`]. The
//! alert's counters live in one small item; every write of a linked message that makes it leave
//! the unsent set (Twilio took it, or it ended before that) or reach a final state moves the
//! counters in the same transaction, at most once per message ([`AlertLink::out`] and
//! [`AlertLink::settled`] remember it). So `unsettled` reaches zero exactly when every text has a
//! final state, however callbacks are ordered or repeated.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, ClinicId, ConnectionId, UserId};
use crate::message::{Message, MessageBody};
use crate::message_status::MessageStatus;

/// The longest range of appointments one alert may cover.
pub const MAX_RANGE: TimeDelta = TimeDelta::days(7);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("`to` must be after `from`")]
    Backwards,
    #[error("the range may cover at most 7 days")]
    TooLong,
    #[error("the range has already ended")]
    Ended,
}

impl RangeError {
    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        "to"
    }
}

/// The appointments an alert is about: those starting from `from` to `to`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl AlertRange {
    /// At most seven days, ending after `now`, however far ahead it starts.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, RangeError> {
        if to <= from {
            return Err(RangeError::Backwards);
        }
        if to - from > MAX_RANGE {
            return Err(RangeError::TooLong);
        }
        if to <= now {
            return Err(RangeError::Ended);
        }
        Ok(Self { from, to })
    }

    /// Whether an appointment starting at `start` makes its client a recipient at `now`: in the
    /// range, and still ahead (seed: "an appointment in the future at the time the text is sent").
    pub fn covers(&self, start: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        start >= self.from && start <= self.to && start > now
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Being fanned out and sent.
    Sending,
    /// Every recipient has a final state (or the alert was closed after its last text); the
    /// report is written.
    Completed,
}

/// A confirmed alert. Its live counters are a separate item ([`AlertCounts`]), so the many
/// writes they take never rewrite this one or its index entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassAlert {
    pub id: AlertId,
    pub clinic_id: ClinicId,
    pub connection_id: ConnectionId,
    pub range: AlertRange,
    pub body: MessageBody,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub status: AlertStatus,
    /// The counts when the alert closed, taken from its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_counts: Option<Tally>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// The report's key in the reports bucket, once written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_key: Option<String>,
}

impl MassAlert {
    pub fn new(
        clinic_id: ClinicId,
        connection_id: ConnectionId,
        range: AlertRange,
        body: MessageBody,
        created_by: UserId,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: AlertId::new(ulid::Ulid::from_datetime(now.into()).to_string()),
            clinic_id,
            connection_id,
            range,
            body,
            created_by,
            created_at: now,
            status: AlertStatus::Sending,
            final_counts: None,
            completed_at: None,
            report_key: None,
        }
    }
}

/// How an alert's recipients fared. `sent` counts the texts Twilio took (delivered ones
/// included); `failed` counts failed and undelivered texts (some of them after Twilio took them);
/// `not_sent` counts clients who could not be texted, at fan-out or at send time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub recipients: u64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub not_sent: u64,
}

/// Green when every client was texted successfully, red with how many were not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "color", rename_all = "snake_case")]
pub enum Outcome {
    Green,
    Red { not_texted: u64 },
}

impl Tally {
    /// A closed alert's outcome: a text still `sent` with no delivery report counts as a success.
    pub fn outcome(&self) -> Outcome {
        match self.failed + self.not_sent {
            0 => Outcome::Green,
            not_texted => Outcome::Red { not_texted },
        }
    }
}

/// The live counters of an alert, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCounts {
    #[serde(flatten)]
    pub tally: Tally,
    /// Texts without a final state yet. The fan-out adds its texts once; each text takes one
    /// away when it ends. It may dip below zero while the fan-out is still writing.
    #[serde(default)]
    pub unsettled: i64,
    /// Texts Twilio has not taken yet and that have not ended either.
    #[serde(default)]
    pub unsent: i64,
    /// When Twilio last took one of the alert's texts.
    #[serde(default)]
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Set once, by the fan-out that added the texts to `unsettled`.
    #[serde(default)]
    pub fanned_out: bool,
}

impl AlertCounts {
    /// Whether the alert is over at `now`: every text has a final state, or every text has
    /// gone to Twilio and the last went `close_after` ago (some carriers never report delivery).
    pub fn is_over(&self, now: DateTime<Utc>, close_after: TimeDelta) -> bool {
        if !self.fanned_out {
            return false;
        }
        if self.unsettled <= 0 {
            return true;
        }
        self.unsent <= 0 && self.last_sent_at.is_none_or(|at| at + close_after <= now)
    }
}

/// What a linked message carries: its alert, what made its client a recipient (checked again
/// just before sending), and which counters it has already moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertLink {
    pub id: AlertId,
    pub range: AlertRange,
    /// The client's appointments in the range when the alert was fanned out.
    #[serde(default)]
    pub appointment_ids: Vec<String>,
    /// The client's full name, for the report (the contact may be renamed or removed later).
    #[serde(default)]
    pub client_name: String,
    /// The number on file as entered, for the report when it could not be texted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_number: Option<String>,
    /// Counted as no longer unsent.
    #[serde(default)]
    pub out: bool,
    /// Counted as settled (final).
    #[serde(default)]
    pub settled: bool,
}

/// A change to an alert's counters, made together with the message write that causes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountsDelta {
    pub unsent: i64,
    pub unsettled: i64,
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    pub not_sent: u64,
    /// Twilio took the text at this time.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Statuses that say Twilio took the attempt.
pub fn taken_by_twilio(status: MessageStatus) -> bool {
    matches!(
        status,
        MessageStatus::Submitted | MessageStatus::Sent | MessageStatus::Delivered | MessageStatus::Undelivered
    )
}

/// Marks on `next` (about to be written) what its new status counts for its alert, and returns
/// the change to make to the counters; `None` when there is nothing to count. A message counts
/// out once and settles once: a resend of a failed alert text changes no counter again.
pub fn count(next: &mut Message) -> Option<CountsDelta> {
    let status = next.status;
    let at = next.updated_at;
    let link = next.mass_alert.as_mut()?;
    let mut delta = CountsDelta::default();
    if !link.out && (taken_by_twilio(status) || status.is_final()) {
        link.out = true;
        delta.unsent = -1;
        if taken_by_twilio(status) {
            delta.sent = 1;
            delta.sent_at = Some(at);
        }
    }
    if !link.settled && status.is_final() {
        link.settled = true;
        delta.unsettled = -1;
        match status {
            MessageStatus::Delivered => delta.delivered = 1,
            MessageStatus::Undelivered | MessageStatus::Failed => delta.failed = 1,
            _ => delta.not_sent = 1,
        }
    }
    (delta != CountsDelta::default()).then_some(delta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Lane;
    use crate::phone::E164;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    const NOW: &str = "2026-11-24T12:00:00Z";

    #[test]
    fn a_range_of_seven_days_ending_ahead_is_accepted_however_far_away() {
        let now = at(NOW);
        assert!(AlertRange::new(at("2026-11-24T08:00:00Z"), at("2026-12-01T08:00:00Z"), now).is_ok());
        assert!(AlertRange::new(at("2027-06-01T00:00:00Z"), at("2027-06-08T00:00:00Z"), now).is_ok());
    }

    #[test]
    fn a_range_longer_than_seven_days_ended_or_backwards_is_refused() {
        let now = at(NOW);
        let long = AlertRange::new(at("2026-11-25T00:00:00Z"), at("2026-12-02T00:00:01Z"), now);
        assert_eq!(long, Err(RangeError::TooLong));
        let ended = AlertRange::new(at("2026-11-20T00:00:00Z"), at("2026-11-24T11:59:59Z"), now);
        assert_eq!(ended, Err(RangeError::Ended));
        let backwards = AlertRange::new(at("2026-11-26T00:00:00Z"), at("2026-11-25T00:00:00Z"), now);
        assert_eq!(backwards, Err(RangeError::Backwards));
    }

    #[test]
    fn only_appointments_in_the_range_and_still_ahead_count() {
        let range = AlertRange { from: at("2026-11-24T08:00:00Z"), to: at("2026-11-25T08:00:00Z") };
        let now = at(NOW);
        assert!(range.covers(at("2026-11-24T13:00:00Z"), now));
        assert!(range.covers(at("2026-11-25T08:00:00Z"), now));
        assert!(!range.covers(at("2026-11-24T11:00:00Z"), now), "in the range but past");
        assert!(!range.covers(at("2026-11-25T08:00:01Z"), now), "after the range");
    }

    fn alert_text(status: MessageStatus) -> Message {
        let to = E164::parse("+14155550123", None).unwrap_or_else(|_| unreachable!("a valid number"));
        let body = MessageBody::parse("Closed today").unwrap_or_else(|_| unreachable!("a valid body"));
        let mut m =
            Message::new_outbound(ClinicId::new("c"), to, body, ConnectionId::new("k"), Lane::Bulk, None, at(NOW));
        m.status = status;
        m.mass_alert = Some(AlertLink {
            id: AlertId::new("a"),
            range: AlertRange { from: at(NOW), to: at("2026-11-25T12:00:00Z") },
            appointment_ids: vec!["appt".into()],
            client_name: "Ann Lee".into(),
            entered_number: None,
            out: false,
            settled: false,
        });
        m
    }

    fn apply(m: &mut Message, status: MessageStatus) -> Option<CountsDelta> {
        m.status = status;
        count(m)
    }

    #[test]
    fn a_delivered_text_counts_out_and_settles_once_whatever_the_callbacks() {
        let mut m = alert_text(MessageStatus::Queued);
        assert_eq!(count(&mut m), None, "queued counts nothing");
        let taken = apply(&mut m, MessageStatus::Submitted);
        assert_eq!(taken, Some(CountsDelta { unsent: -1, sent: 1, sent_at: Some(at(NOW)), ..CountsDelta::default() }));
        assert_eq!(apply(&mut m, MessageStatus::Sent), None);
        let delivered = apply(&mut m, MessageStatus::Delivered);
        assert_eq!(delivered, Some(CountsDelta { unsettled: -1, delivered: 1, ..CountsDelta::default() }));
        assert_eq!(apply(&mut m, MessageStatus::Delivered), None, "a repeated callback counts nothing");
    }

    #[test]
    fn a_delivery_report_before_the_sender_records_twilio_took_it_counts_both() {
        let mut m = alert_text(MessageStatus::Sending);
        let delta = apply(&mut m, MessageStatus::Delivered);
        assert_eq!(
            delta,
            Some(CountsDelta {
                unsent: -1,
                unsettled: -1,
                sent: 1,
                delivered: 1,
                sent_at: Some(at(NOW)),
                ..CountsDelta::default()
            })
        );
    }

    #[test]
    fn a_text_stopped_before_twilio_counts_out_and_not_sent_or_failed() {
        let mut skipped = alert_text(MessageStatus::Queued);
        let delta = apply(&mut skipped, MessageStatus::Skipped);
        assert_eq!(delta, Some(CountsDelta { unsent: -1, unsettled: -1, not_sent: 1, ..CountsDelta::default() }));
        let mut failed = alert_text(MessageStatus::Sending);
        let delta = apply(&mut failed, MessageStatus::Failed);
        assert_eq!(delta, Some(CountsDelta { unsent: -1, unsettled: -1, failed: 1, ..CountsDelta::default() }));
        assert_eq!(apply(&mut failed, MessageStatus::Queued), None, "a resend counts nothing again");
        assert_eq!(apply(&mut failed, MessageStatus::Submitted), None);
    }

    #[test]
    fn a_message_without_an_alert_counts_nothing() {
        let mut m = alert_text(MessageStatus::Sending);
        m.mass_alert = None;
        assert_eq!(apply(&mut m, MessageStatus::Delivered), None);
    }

    #[test]
    fn an_alert_is_over_when_every_text_settled_or_long_after_its_last_send() {
        let now = at(NOW);
        let hour = TimeDelta::hours(1);
        let base = AlertCounts { fanned_out: true, unsettled: 2, unsent: 0, ..AlertCounts::default() };
        assert!(!AlertCounts { fanned_out: false, unsettled: 0, ..base }.is_over(now, hour), "still fanning out");
        assert!(AlertCounts { unsettled: 0, ..base }.is_over(now, hour));
        let recent = AlertCounts { last_sent_at: Some(now - TimeDelta::minutes(10)), ..base };
        assert!(!recent.is_over(now, hour), "a delivery report may still come");
        let quiet = AlertCounts { last_sent_at: Some(now - hour), ..base };
        assert!(quiet.is_over(now, hour), "texts still sent after the wait count as success");
        let waiting = AlertCounts { unsent: 1, ..quiet };
        assert!(!waiting.is_over(now, hour), "a text held for quiet hours keeps it open");
    }

    #[test]
    fn green_only_when_nobody_failed_or_went_untexted() {
        let tally = Tally { recipients: 3, sent: 3, delivered: 2, failed: 0, not_sent: 0 };
        assert_eq!(tally.outcome(), Outcome::Green);
        assert_eq!(Tally { failed: 1, not_sent: 2, ..tally }.outcome(), Outcome::Red { not_texted: 3 });
    }
}
