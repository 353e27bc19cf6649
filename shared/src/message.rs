//! A text message and its history, with the pure rules that move it through its states.
//! Stores persist what these functions return; they decide nothing themselves.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ClinicId, ConnectionId, MessageId, UserId};
use crate::message_status::MessageStatus;
use crate::phone::E164;
use crate::reason::Reason;
use crate::twilio::status::to_message_status;

/// Twilio's limit for one message body, in characters.
pub const MAX_BODY_CHARS: usize = 1600;

/// How often Twilio is asked for an attempt's status when no callback comes. Some carriers
/// never send delivery receipts, so a text can rightly stay `sent`: after this many checks
/// without news we stop asking.
pub const MAX_STATUS_CHECKS: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the message body is empty")]
    Empty,
    #[error("the message body has {0} characters; at most {MAX_BODY_CHARS} can be sent")]
    TooLong(usize),
}

/// A message body that Twilio will accept: not blank, at most 1,600 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(text: &str) -> Result<Self, BodyError> {
        if text.trim().is_empty() {
            return Err(BodyError::Empty);
        }
        let chars = text.chars().count();
        if chars > MAX_BODY_CHARS {
            return Err(BodyError::TooLong(chars));
        }
        Ok(Self(text.to_owned()))
    }

    /// A text a patient sent, exactly as Twilio passed it on (it may be empty: a picture alone).
    pub fn received(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether the clinic sent the text or received it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Outbound,
    Inbound,
}

impl Direction {
    fn is_outbound(&self) -> bool {
        *self == Direction::Outbound
    }
}

/// The SQS lane a message is sent through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lane {
    /// Conversations, manual sends, test texts.
    Interactive,
    /// Reminders and texts scheduled for later.
    Scheduled,
    /// Mass alerts.
    Bulk,
}

/// Who wrote a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Api,
    Scheduler,
    Sender,
    Twilio,
}

/// Why a message failed: a Twilio error code (with Twilio's own text when it gave one), or one
/// of our reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_message: Option<String>,
}

impl Failure {
    pub fn twilio(code: u32, message: Option<String>) -> Self {
        Self { code: Some(code), reason: None, twilio_message: message }
    }

    pub fn reason(reason: Reason) -> Self {
        Self { code: None, reason: Some(reason), twilio_message: None }
    }
}

/// One line of a message's history: a change of state, or a callback that changed nothing
/// (a duplicate is not written twice; an older attempt's or a late one is kept with `applied: false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub attempt: u32,
    /// Our status after this entry (for callbacks, the status the callback maps to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<MessageStatus>,
    /// Twilio's own status word, for callbacks and Twilio's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<u32>,
    /// The carrier's delivery-report time (`YYMMDDhhmm`), when Twilio passes it on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_dlr_done_date: Option<String>,
    /// Whether the entry changed the message's current state.
    pub applied: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The appointment a reminder is about, as it was when the reminder was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppointmentRef {
    pub id: String,
    pub business_id: String,
    pub start: DateTime<Utc>,
    /// When the reminder window that created it opened (credit retries count from it).
    pub window_opened_at: DateTime<Utc>,
    pub time_zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub clinic_id: ClinicId,
    /// Absent only on a did-not-trigger entry for a contact with no usable number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<E164>,
    pub body: MessageBody,
    pub connection_id: ConnectionId,
    pub lane: Lane,
    pub status: MessageStatus,
    /// Bumped by every write; each write is conditional on the version it read.
    pub version: u64,
    /// 0 until the first send; each claim for sending starts a new attempt.
    pub attempt: u32,
    /// The Twilio SID of the current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twilio_sid: Option<String>,
    /// While `sending`: until when the claiming sender owns the attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Stored deflated (`packed_history`): it is most of the item, and nothing queries it.
    #[serde(default, with = "crate::packed_history")]
    pub history: Vec<HistoryEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment: Option<AppointmentRef>,
    /// For a reminder that failed for lack of credit: when it is tried again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_retry_at: Option<DateTime<Utc>>,
    /// The second reserved for this message on its connection's rate limit, while it waits for
    /// it: stored on the message only when a claim gives its second back (`released_for_slot`;
    /// any other change of status clears it); a job hidden for its slot keeps it in a record of
    /// its own (`SenderStore::hold_slots`), which `SenderStore::messages` puts here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_slot: Option<DateTime<Utc>>,
    /// While `deferred`: when quiet hours end and it goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_until: Option<DateTime<Utc>>,
    /// Times Twilio was asked for the status since it last changed, because no callback came.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub status_checks: u32,
    /// Stored only for received texts: most messages are outbound, and every byte of the item is
    /// paid for on each of its writes.
    #[serde(default, skip_serializing_if = "Direction::is_outbound")]
    pub direction: Direction,
    /// For a received text: the patient's number (`to` is then the clinic's number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<E164>,
    /// The contact the text was sent to or came from, when the number is a known contact's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// The conversation the text belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// For a text scheduled for later: when it goes (it waits as `scheduled` until then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
    /// Who approved it, when the clinic or business requires approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<UserId>,
    /// Set while the message is in the clinic's Deleted view. Absent, not null, otherwise: the
    /// views' queries test `attribute_not_exists(deleted)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Deleted>,
    /// For a mass alert's text (or its not-sent row): the alert, and what it has counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass_alert: Option<crate::mass_alert::AlertLink>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Who took a message out of the clinic's views, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub at: DateTime<Utc>,
    pub by: UserId,
}

/// A text Twilio passed on to us, already verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundText {
    pub message_sid: String,
    pub from: E164,
    /// The clinic's number it was sent to.
    pub to: E164,
    pub body: String,
    pub messaging_service_sid: Option<String>,
    /// Twilio's own reading of an opt-out, opt-in or help keyword (Advanced Opt-Out only).
    pub opt_out_type: Option<String>,
}

/// A status callback from Twilio, already verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub message_sid: String,
    pub message_status: String,
    pub error_code: Option<u32>,
    pub raw_dlr_done_date: Option<String>,
    /// The attempt named in the callback URL we gave Twilio.
    pub attempt: Option<u32>,
}

/// Why a transition was not made. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("message is {0}, not {1}")]
    WrongStatus(MessageStatus, MessageStatus),
    #[error("attempt {found} is current, not {expected}")]
    StaleAttempt { expected: u32, found: u32 },
    #[error("callback already recorded")]
    DuplicateCallback,
    #[error("Twilio SID {0} is not the current attempt's")]
    OtherSid(String),
    #[error("the message is already deleted")]
    AlreadyDeleted,
    #[error("the message is not deleted")]
    NotDeleted,
}

impl Message {
    /// A new outbound text, queued for sending.
    pub fn new_outbound(
        clinic_id: ClinicId,
        to: E164,
        body: MessageBody,
        connection_id: ConnectionId,
        lane: Lane,
        created_by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut message = Self::new_bulk(MessageId::generate(now), clinic_id, Some(to), body, connection_id, now);
        message.lane = lane;
        message.created_by = created_by;
        message
    }

    /// A mass alert's message for one client, queued on the bulk lane: `to` is absent only for a
    /// client who has no usable number (the fan-out then records why).
    pub fn new_bulk(
        id: MessageId,
        clinic_id: ClinicId,
        to: Option<E164>,
        body: MessageBody,
        connection_id: ConnectionId,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            clinic_id,
            to,
            body,
            connection_id,
            lane: Lane::Bulk,
            status: MessageStatus::Queued,
            version: 1,
            attempt: 0,
            twilio_sid: None,
            lease_until: None,
            failure: None,
            created_by: None,
            created_at: now,
            updated_at: now,
            history: vec![HistoryEntry::ours(now, Actor::Api, 0, MessageStatus::Queued)],
            appointment: None,
            credit_retry_at: None,
            send_slot: None,
            deferred_until: None,
            status_checks: 0,
            direction: Direction::Outbound,
            from: None,
            contact_id: None,
            conversation_id: None,
            send_at: None,
            approved_by: None,
            deleted: None,
            mass_alert: None,
        }
    }

    /// A text a patient sent to one of the clinic's numbers: `received`, and final.
    pub fn new_inbound(
        id: MessageId,
        clinic_id: ClinicId,
        connection_id: ConnectionId,
        text: &InboundText,
        contact_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut entry = HistoryEntry::ours(now, Actor::Twilio, 0, MessageStatus::Received);
        entry.twilio_status = Some("received".to_owned());
        entry.twilio_sid = Some(text.message_sid.clone());
        Self {
            id,
            clinic_id,
            to: Some(text.to.clone()),
            body: MessageBody::received(&text.body),
            connection_id,
            lane: Lane::Interactive,
            status: MessageStatus::Received,
            version: 1,
            attempt: 0,
            twilio_sid: Some(text.message_sid.clone()),
            lease_until: None,
            failure: None,
            created_by: None,
            created_at: now,
            updated_at: now,
            history: vec![entry],
            appointment: None,
            credit_retry_at: None,
            send_slot: None,
            deferred_until: None,
            status_checks: 0,
            direction: Direction::Inbound,
            from: Some(text.from.clone()),
            contact_id,
            conversation_id: None,
            send_at: None,
            approved_by: None,
            deleted: None,
            mass_alert: None,
        }
    }

    /// A reminder decided by the scheduler: `queued` (sent as soon as possible) or
    /// `awaiting_approval`, on the scheduled lane.
    #[allow(clippy::too_many_arguments)]
    pub fn new_reminder(
        id: MessageId,
        clinic_id: ClinicId,
        to: E164,
        body: MessageBody,
        connection_id: ConnectionId,
        appointment: AppointmentRef,
        status: MessageStatus,
        now: DateTime<Utc>,
    ) -> Self {
        let entry = HistoryEntry::ours(now, Actor::Scheduler, 0, status);
        Self::decided(id, clinic_id, Some(to), body, connection_id, appointment, status, entry, now)
    }

    /// A did-not-trigger entry: the reminder that was not created, and why.
    #[allow(clippy::too_many_arguments)]
    pub fn new_skipped(
        id: MessageId,
        clinic_id: ClinicId,
        to: Option<E164>,
        body: MessageBody,
        connection_id: ConnectionId,
        appointment: AppointmentRef,
        reason: Reason,
        now: DateTime<Utc>,
    ) -> Self {
        let mut entry = HistoryEntry::ours(now, Actor::Scheduler, 0, MessageStatus::Skipped);
        entry.note = Some(reason.description().to_owned());
        let mut message =
            Self::decided(id, clinic_id, to, body, connection_id, appointment, MessageStatus::Skipped, entry, now);
        message.failure = Some(Failure::reason(reason));
        message
    }

    #[allow(clippy::too_many_arguments)]
    fn decided(
        id: MessageId,
        clinic_id: ClinicId,
        to: Option<E164>,
        body: MessageBody,
        connection_id: ConnectionId,
        appointment: AppointmentRef,
        status: MessageStatus,
        first_entry: HistoryEntry,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            clinic_id,
            to,
            body,
            connection_id,
            lane: Lane::Scheduled,
            status,
            version: 1,
            attempt: 0,
            twilio_sid: None,
            lease_until: None,
            failure: None,
            created_by: None,
            created_at: now,
            updated_at: now,
            history: vec![first_entry],
            appointment: Some(appointment),
            credit_retry_at: None,
            send_slot: None,
            deferred_until: None,
            status_checks: 0,
            direction: Direction::Outbound,
            from: None,
            contact_id: None,
            conversation_id: None,
            send_at: None,
            approved_by: None,
            deleted: None,
            mass_alert: None,
        }
    }

    /// A text just created that does not go at once: it waits for approval, or for its time.
    /// Only for a message not yet stored (its first history entry is rewritten).
    pub fn held(mut self, approval_required: bool, send_at: Option<DateTime<Utc>>) -> Self {
        self.status = match (approval_required, send_at) {
            (true, _) => MessageStatus::AwaitingApproval,
            (false, Some(_)) => MessageStatus::Scheduled,
            (false, None) => MessageStatus::Queued,
        };
        self.send_at = send_at;
        for entry in &mut self.history {
            entry.status = Some(self.status);
            entry.note = send_at.map(|at| format!("to go at {}", at.to_rfc3339()));
        }
        self
    }

    /// Approved (Send Now): `awaiting_approval → queued`, or `scheduled` while its time is
    /// still ahead. Refused for any other status, so two people approving at once send it once.
    pub fn approved(&self, by: &UserId, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require(MessageStatus::AwaitingApproval)?;
        let to = match self.send_at {
            Some(at) if at > now => MessageStatus::Scheduled,
            _ => MessageStatus::Queued,
        };
        let mut next = self.moved(to, now);
        next.approved_by = Some(by.clone());
        let mut entry = HistoryEntry::ours(now, Actor::Api, self.attempt, to);
        entry.note = Some(format!("approved by {by}"));
        next.history.push(entry);
        Ok(next)
    }

    /// A scheduled text's time has come (`scheduled → queued`).
    pub fn released(&self, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require(MessageStatus::Scheduled)?;
        let mut next = self.moved(MessageStatus::Queued, now);
        next.history.push(HistoryEntry::ours(now, Actor::Scheduler, self.attempt, MessageStatus::Queued));
        Ok(next)
    }

    /// Undoes the write that made `self` from `before` (a text queued a moment ago whose job
    /// could not be queued), as long as nothing else has written since.
    pub fn undone(&self, before: &Message, note: &str, now: DateTime<Utc>) -> Result<Self, Refused> {
        if self.version != before.version + 1 {
            return Err(Refused::WrongStatus(self.status, before.status));
        }
        let mut back = before.clone();
        back.version = self.version + 1;
        back.updated_at = now;
        back.history = self.history.clone();
        let mut entry = HistoryEntry::ours(now, Actor::Api, before.attempt, before.status);
        entry.note = Some(note.to_owned());
        back.history.push(entry);
        Ok(back)
    }

    /// A text not yet queued gets a new time or words (`scheduled`, or awaiting approval with a
    /// time).
    pub fn rescheduled(
        &self,
        send_at: DateTime<Utc>,
        body: Option<MessageBody>,
        now: DateTime<Utc>,
    ) -> Result<Self, Refused> {
        let editable = self.status == MessageStatus::Scheduled
            || (self.status == MessageStatus::AwaitingApproval && self.send_at.is_some());
        if !editable {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Scheduled));
        }
        let mut next = self.clone();
        next.send_at = Some(send_at);
        if let Some(body) = body {
            next.body = body;
        }
        next.version = self.version + 1;
        next.updated_at = now;
        let mut entry = HistoryEntry::ours(now, Actor::Api, self.attempt, self.status);
        entry.applied = false;
        entry.note = Some(format!("edited: to go at {}", send_at.to_rfc3339()));
        next.history.push(entry);
        Ok(next)
    }

    /// Called off before it was queued (`scheduled` or `awaiting_approval` → `cancelled`).
    pub fn cancelled(&self, by: &UserId, now: DateTime<Utc>) -> Result<Self, Refused> {
        if !self.status.can_become(MessageStatus::Cancelled) {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Scheduled));
        }
        let mut next = self.moved(MessageStatus::Cancelled, now);
        let mut entry = HistoryEntry::ours(now, Actor::Api, self.attempt, MessageStatus::Cancelled);
        entry.note = Some(format!("cancelled by {by}"));
        next.history.push(entry);
        Ok(next)
    }

    /// Resent after a failure: a new attempt to `to` (the contact's current mobile number,
    /// which may have been corrected since).
    pub fn resent(&self, to: E164, by: &UserId, now: DateTime<Utc>) -> Result<Self, Refused> {
        let mut next = self.requeued(Actor::Api, &format!("resent by {by}"), now)?;
        next.to = Some(to);
        Ok(next)
    }

    /// Not sent after all (`queued`, `awaiting_approval` or `scheduled` → `skipped`).
    pub fn skipped(&self, reason: Reason, now: DateTime<Utc>) -> Result<Self, Refused> {
        if !self.status.can_become(MessageStatus::Skipped) {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Skipped));
        }
        let mut next = self.moved(MessageStatus::Skipped, now);
        next.lease_until = None;
        next.failure = Some(Failure::reason(reason));
        let mut entry = HistoryEntry::ours(now, Actor::Sender, self.attempt, MessageStatus::Skipped);
        entry.note = Some(reason.description().to_owned());
        next.history.push(entry);
        Ok(next)
    }

    /// A text nobody approved within 30 days (`awaiting_approval → expired`).
    pub fn expired(&self, now: DateTime<Utc>) -> Result<Self, Refused> {
        if self.status != MessageStatus::AwaitingApproval {
            return Err(Refused::WrongStatus(self.status, MessageStatus::AwaitingApproval));
        }
        let mut next = self.moved(MessageStatus::Expired, now);
        let mut entry = HistoryEntry::ours(now, Actor::Scheduler, self.attempt, MessageStatus::Expired);
        entry.note = Some("not approved within 30 days".to_owned());
        next.history.push(entry);
        Ok(next)
    }

    /// A failed text goes back to the queue for a new attempt (resend, credit retry).
    pub fn requeued(&self, actor: Actor, note: &str, now: DateTime<Utc>) -> Result<Self, Refused> {
        if !matches!(self.status, MessageStatus::Failed | MessageStatus::Undelivered) {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Failed));
        }
        let mut next = self.moved(MessageStatus::Queued, now);
        next.credit_retry_at = None;
        // The old attempt's SID and error stay in the history only: a late callback for it must
        // not count as news about the new attempt, and a pending text shows no old failure.
        next.twilio_sid = None;
        next.failure = None;
        let mut entry = HistoryEntry::ours(now, actor, self.attempt, MessageStatus::Queued);
        entry.note = Some(note.to_owned());
        next.history.push(entry);
        Ok(next)
    }

    /// `queued → sending`: the caller owns a new attempt until `now + lease`.
    pub fn claim(&self, now: DateTime<Utc>, lease: TimeDelta) -> Result<Self, Refused> {
        self.require(MessageStatus::Queued)?;
        let mut next = self.moved(MessageStatus::Sending, now);
        next.send_slot = None;
        next.attempt += 1;
        next.twilio_sid = None;
        next.lease_until = Some(now + lease);
        next.history.push(HistoryEntry::ours(now, Actor::Sender, next.attempt, MessageStatus::Sending));
        Ok(next)
    }

    /// Held by quiet hours (`queued → deferred`) until `until`, with the reason in the history.
    pub fn deferred(&self, until: DateTime<Utc>, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require(MessageStatus::Queued)?;
        let mut next = self.moved(MessageStatus::Deferred, now);
        next.deferred_until = Some(until);
        next.send_slot = None;
        let mut entry = HistoryEntry::ours(now, Actor::Sender, self.attempt, MessageStatus::Deferred);
        entry.note = Some(format!("quiet hours: goes at {}", until.to_rfc3339()));
        next.history.push(entry);
        Ok(next)
    }

    /// Quiet hours are over (`deferred → queued`).
    pub fn resumed(&self, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require(MessageStatus::Deferred)?;
        let mut next = self.moved(MessageStatus::Queued, now);
        next.deferred_until = None;
        next.history.push(HistoryEntry::ours(now, Actor::Sender, self.attempt, MessageStatus::Queued));
        Ok(next)
    }

    /// Twilio accepted the attempt (`sending → submitted`). If a callback already moved the
    /// attempt further, only the SID is confirmed.
    pub fn accepted(&self, attempt: u32, sid: &str, twilio_status: &str, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require_attempt(attempt)?;
        let mut next = self.clone();
        if self.status == MessageStatus::Sending {
            next = self.moved(MessageStatus::Submitted, now);
        } else if self.twilio_sid.as_deref() != Some(sid) {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Sending));
        }
        next.twilio_sid = Some(sid.to_owned());
        next.lease_until = None;
        let mut entry = HistoryEntry::ours(now, Actor::Sender, attempt, next.status);
        entry.twilio_status = Some(twilio_status.to_owned());
        entry.twilio_sid = Some(sid.to_owned());
        entry.applied = self.status == MessageStatus::Sending;
        next.history.push(entry);
        next.updated_at = now;
        Ok(next)
    }

    /// The attempt ends without a text at Twilio (`sending → failed`): Twilio refused it for
    /// good, or it could not be made at all.
    pub fn failed_attempt(&self, attempt: u32, failure: Failure, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require_attempt(attempt)?;
        if !matches!(self.status, MessageStatus::Sending | MessageStatus::Queued) {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Sending));
        }
        let mut next = self.moved(MessageStatus::Failed, now);
        next.lease_until = None;
        let mut entry = HistoryEntry::ours(now, Actor::Sender, attempt, MessageStatus::Failed);
        entry.error_code = failure.code;
        entry.note = failure.reason.map(|r| r.description().to_owned());
        next.failure = Some(failure);
        next.history.push(entry);
        Ok(next)
    }

    /// Twilio certainly did not take the attempt (e.g. 429): back to `queued` for a retry.
    pub fn released_for_retry(&self, attempt: u32, note: String, now: DateTime<Utc>) -> Result<Self, Refused> {
        self.require_attempt(attempt)?;
        self.require(MessageStatus::Sending)?;
        let mut next = self.moved(MessageStatus::Queued, now);
        next.lease_until = None;
        let mut entry = HistoryEntry::ours(now, Actor::Sender, attempt, MessageStatus::Queued);
        entry.note = Some(note);
        next.history.push(entry);
        Ok(next)
    }

    /// The claim is given back without a request to Twilio (`sending → queued`): it came too
    /// late for its second, and the next free one, `slot`, is further off than the sender waits.
    /// The slot stays reserved for it (`None`: none was free within the hour).
    pub fn released_for_slot(
        &self,
        attempt: u32,
        slot: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<Self, Refused> {
        self.require_attempt(attempt)?;
        self.require(MessageStatus::Sending)?;
        let mut next = self.moved(MessageStatus::Queued, now);
        next.lease_until = None;
        next.send_slot = slot;
        let mut entry = HistoryEntry::ours(now, Actor::Sender, attempt, MessageStatus::Queued);
        entry.note = Some("missed its second at the connection's pace; nothing was sent, waits for another".into());
        next.history.push(entry);
        Ok(next)
    }

    /// Applies a status callback. The message moves only forward and only for its current
    /// attempt; anything else is kept in the history. A callback seen before (same SID, status
    /// and error code) is refused. A stored error code is never erased by a later callback.
    pub fn with_callback(&self, callback: &StatusCallback, now: DateTime<Utc>) -> Result<Self, Refused> {
        let seen = self.history.iter().any(|h| {
            h.actor == Actor::Twilio
                && h.twilio_sid.as_deref() == Some(callback.message_sid.as_str())
                && h.twilio_status.as_deref() == Some(callback.message_status.as_str())
                && h.error_code == callback.error_code
        });
        if seen {
            return Err(Refused::DuplicateCallback);
        }
        let mapped = to_message_status(&callback.message_status);
        let current_attempt = match self.twilio_sid.as_deref() {
            Some(sid) => sid == callback.message_sid,
            // Twilio can call back before the sender has written the SID: the URL names the attempt.
            None => self.status == MessageStatus::Sending && callback.attempt == Some(self.attempt),
        };
        let advances =
            current_attempt && mapped.is_some_and(|to| self.status.can_become(to) && to != MessageStatus::Queued);
        // Twilio may report a final status once without its code and once with it, in either
        // order: the code is what the clinic needs, so it is taken whenever it comes.
        let adds_code = current_attempt
            && !advances
            && self.status.is_final()
            && mapped == Some(self.status)
            && callback.error_code.is_some()
            && self.failure.as_ref().and_then(|f| f.code).is_none();
        let mut next = self.clone();
        let mut entry = HistoryEntry {
            at: now,
            actor: Actor::Twilio,
            attempt: callback.attempt.unwrap_or(self.attempt),
            status: mapped,
            twilio_status: Some(callback.message_status.clone()),
            twilio_sid: Some(callback.message_sid.clone()),
            error_code: callback.error_code,
            raw_dlr_done_date: callback.raw_dlr_done_date.clone(),
            applied: advances || adds_code,
            note: None,
        };
        if advances && let Some(to) = mapped {
            next = self.moved(to, now);
            next.twilio_sid = Some(callback.message_sid.clone());
            next.lease_until = None;
            if let Some(code) = callback.error_code {
                next.failure = Some(Failure::twilio(code, None));
            }
        } else if adds_code && let Some(code) = callback.error_code {
            let failure = next.failure.get_or_insert_with(Failure::default);
            failure.code = Some(code);
            entry.note = Some("error code reported after the status".to_owned());
        } else if !current_attempt {
            entry.note = Some("callback for an earlier attempt".to_owned());
        }
        next.history.push(entry);
        next.version = self.version + 1;
        next.updated_at = now;
        Ok(next)
    }

    /// How many attempts Twilio took (each one spent the text's credits).
    pub fn accepted_attempts(&self) -> u32 {
        let accepted: std::collections::HashSet<u32> = self
            .history
            .iter()
            .filter(|e| e.actor == Actor::Sender && e.twilio_sid.is_some())
            .map(|e| e.attempt)
            .collect();
        u32::try_from(accepted.len()).unwrap_or(u32::MAX)
    }

    /// Taken out of the clinic's views by `by`. Only the record is hidden: the status stays, and
    /// a text on its way still goes (cancelling a scheduled text is its own action).
    /// `updated_at` is left alone: it times the status checks of a text Twilio holds, and
    /// hiding the record is no news about the text.
    pub fn deleted_by(&self, by: &UserId, now: DateTime<Utc>) -> Result<Self, Refused> {
        if self.deleted.is_some() {
            return Err(Refused::AlreadyDeleted);
        }
        let mut next = self.clone();
        next.deleted = Some(Deleted { at: now, by: by.clone() });
        next.version = self.version + 1;
        next.history.push(HistoryEntry::mailbox(now, self.attempt, format!("deleted by {by}")));
        Ok(next)
    }

    /// Back from the Deleted view, into the view its status puts it in.
    pub fn restored(&self, by: &UserId, now: DateTime<Utc>) -> Result<Self, Refused> {
        if self.deleted.is_none() {
            return Err(Refused::NotDeleted);
        }
        let mut next = self.clone();
        next.deleted = None;
        next.version = self.version + 1;
        next.history.push(HistoryEntry::mailbox(now, self.attempt, format!("restored by {by}")));
        Ok(next)
    }

    /// When Twilio accepted the current attempt, if it did.
    pub fn accepted_at(&self) -> Option<DateTime<Utc>> {
        self.history
            .iter()
            .rev()
            .find(|e| e.attempt == self.attempt && e.actor == Actor::Sender && e.twilio_sid.is_some())
            .map(|e| e.at)
    }

    /// Since when the message has had no news a status check would bring: when Twilio took the
    /// current attempt, or the last check that found nothing. A callback that moves it on
    /// (`sent`) does not count: the message's entry in the index of texts to check (keyed by
    /// this) would move with each, two write units a text, where a check comes as soon either
    /// way (`sent` follows Twilio's answer by seconds). A check that finds news resets the
    /// count, so the next tick checks once more before the text is quiet again.
    pub fn quiet_since(&self) -> DateTime<Utc> {
        if self.status_checks > 0 {
            return self.updated_at;
        }
        self.accepted_at().unwrap_or(self.updated_at)
    }

    /// Whether Twilio holds the current attempt and we still wait for its final word, so asking
    /// Twilio could bring news that a lost callback did not.
    pub fn awaits_status(&self) -> bool {
        matches!(self.status, MessageStatus::Submitted | MessageStatus::Sent)
            && self.twilio_sid.is_some()
            && self.status_checks < MAX_STATUS_CHECKS
    }

    /// What Twilio answered when asked for the current attempt's status. News is recorded as
    /// its callback would have been (and deduplicated with it, should it still come); no news
    /// counts the check, so the next one comes later and they stop after `MAX_STATUS_CHECKS`.
    pub fn with_fetched_status(
        &self,
        sid: &str,
        twilio_status: &str,
        error_code: Option<u32>,
        now: DateTime<Utc>,
    ) -> Result<Self, Refused> {
        if !self.awaits_status() {
            return Err(Refused::WrongStatus(self.status, MessageStatus::Sent));
        }
        if self.twilio_sid.as_deref() != Some(sid) {
            return Err(Refused::OtherSid(sid.to_owned()));
        }
        let reported = StatusCallback {
            message_sid: sid.to_owned(),
            message_status: twilio_status.to_owned(),
            error_code,
            raw_dlr_done_date: None,
            attempt: Some(self.attempt),
        };
        match self.with_callback(&reported, now) {
            Ok(mut next) if next.history.last().is_some_and(|h| h.applied) => {
                if let Some(entry) = next.history.last_mut() {
                    entry.note = Some("asked Twilio: its callback never came".to_owned());
                }
                Ok(next)
            }
            _ => Ok(self.status_unchanged_at_twilio(now)),
        }
    }

    /// A status check that brought no news.
    pub fn status_unchanged_at_twilio(&self, now: DateTime<Utc>) -> Self {
        let mut next = self.clone();
        next.status_checks += 1;
        next.version = self.version + 1;
        next.updated_at = now;
        next
    }

    fn require(&self, status: MessageStatus) -> Result<(), Refused> {
        if self.status == status { Ok(()) } else { Err(Refused::WrongStatus(self.status, status)) }
    }

    fn require_attempt(&self, attempt: u32) -> Result<(), Refused> {
        if self.attempt == attempt {
            Ok(())
        } else {
            Err(Refused::StaleAttempt { expected: attempt, found: self.attempt })
        }
    }

    fn moved(&self, to: MessageStatus, now: DateTime<Utc>) -> Self {
        debug_assert!(self.status.can_become(to), "{} → {to}", self.status);
        let mut next = self.clone();
        next.status = to;
        // A new status is news: a later silence is counted afresh.
        next.status_checks = 0;
        // A slot belongs to the message as it waited; `released_for_slot` sets one afterwards.
        next.send_slot = None;
        next.version = self.version + 1;
        next.updated_at = now;
        next
    }
}

impl HistoryEntry {
    /// A change to where the clinic sees the message, not to the text: no status.
    fn mailbox(at: DateTime<Utc>, attempt: u32, note: String) -> Self {
        Self {
            at,
            actor: Actor::Api,
            attempt,
            status: None,
            twilio_status: None,
            twilio_sid: None,
            error_code: None,
            raw_dlr_done_date: None,
            applied: true,
            note: Some(note),
        }
    }

    pub(crate) fn ours(at: DateTime<Utc>, actor: Actor, attempt: u32, status: MessageStatus) -> Self {
        Self {
            at,
            actor,
            attempt,
            status: Some(status),
            twilio_status: None,
            twilio_sid: None,
            error_code: None,
            raw_dlr_done_date: None,
            applied: true,
            note: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MessageStatus::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    fn queued() -> Message {
        let to = E164::parse("+14155550123", None).ok();
        let body = MessageBody::parse("Your appointment is tomorrow at 9:00").ok();
        let (Some(to), Some(body)) = (to, body) else { panic!("valid fixtures") };
        Message::new_outbound(ClinicId::new("c1"), to, body, ConnectionId::new("k1"), Lane::Interactive, None, t0())
    }

    fn submitted(sid: &str) -> Message {
        let claimed = queued().claim(t0(), TimeDelta::seconds(60)).ok();
        claimed.and_then(|m| m.accepted(1, sid, "queued", t0()).ok()).unwrap_or_else(|| panic!("submits"))
    }

    fn callback(sid: &str, status: &str, code: Option<u32>) -> StatusCallback {
        StatusCallback {
            message_sid: sid.to_owned(),
            message_status: status.to_owned(),
            error_code: code,
            raw_dlr_done_date: None,
            attempt: Some(1),
        }
    }

    fn apply(m: &Message, cbs: &[StatusCallback]) -> Message {
        cbs.iter().fold(m.clone(), |m, cb| m.with_callback(cb, t0()).unwrap_or(m))
    }

    #[test]
    fn a_sent_callback_does_not_make_a_text_less_quiet_but_a_check_does() {
        let accepted_at = t0() + TimeDelta::seconds(2);
        let claimed = queued().claim(t0(), TimeDelta::seconds(60)).ok();
        let submitted = claimed.and_then(|m| m.accepted(1, "SM1", "queued", accepted_at).ok());
        let Some(submitted) = submitted else { panic!("submits") };
        assert_eq!(submitted.quiet_since(), accepted_at);
        let Ok(sent) = submitted.with_callback(&callback("SM1", "sent", None), t0() + TimeDelta::seconds(9)) else {
            panic!("applies")
        };
        assert_eq!((sent.status, sent.quiet_since()), (Sent, accepted_at));
        let checked_at = t0() + TimeDelta::minutes(30);
        assert_eq!(sent.status_unchanged_at_twilio(checked_at).quiet_since(), checked_at);
    }

    #[test]
    fn body_rules() {
        assert_eq!(MessageBody::parse(""), Err(BodyError::Empty));
        assert_eq!(MessageBody::parse(" \n "), Err(BodyError::Empty));
        assert!(MessageBody::parse(&"é".repeat(1600)).is_ok());
        assert_eq!(MessageBody::parse(&"a".repeat(1601)), Err(BodyError::TooLong(1601)));
    }

    #[test]
    fn claim_starts_an_attempt_once() {
        let m = queued();
        let claimed = m.claim(t0(), TimeDelta::seconds(45)).ok();
        let Some(claimed) = claimed else { panic!("claims") };
        assert_eq!((claimed.status, claimed.attempt, claimed.version), (Sending, 1, 2));
        assert_eq!(claimed.lease_until, Some(t0() + TimeDelta::seconds(45)));
        assert_eq!(claimed.claim(t0(), TimeDelta::seconds(45)), Err(Refused::WrongStatus(Sending, Queued)));
    }

    #[test]
    fn a_held_text_waits_for_approval_first_then_for_its_time() {
        let at = t0() + TimeDelta::hours(2);
        let user = UserId::new("u1");
        assert_eq!(queued().held(false, None).status, Queued);
        let scheduled = queued().held(false, Some(at));
        assert_eq!((scheduled.status, scheduled.send_at), (Scheduled, Some(at)));
        assert_eq!(scheduled.history[0].status, Some(Scheduled));

        let waiting = queued().held(true, Some(at));
        assert_eq!(waiting.status, AwaitingApproval);
        let Ok(approved) = waiting.approved(&user, t0()) else { panic!("approves") };
        assert_eq!((approved.status, approved.approved_by.clone()), (Scheduled, Some(user.clone())));
        let Ok(late) = waiting.approved(&user, at + TimeDelta::minutes(1)) else { panic!("approves") };
        assert_eq!(late.status, Queued, "approved after its time: goes now");
        assert_eq!(approved.approved(&user, t0()), Err(Refused::WrongStatus(Scheduled, AwaitingApproval)), "once");

        let Ok(released) = approved.released(at) else { panic!("releases") };
        assert_eq!(released.status, Queued);
        assert!(released.released(at).is_err(), "released once");
    }

    #[test]
    fn only_a_text_not_yet_queued_can_be_edited_or_cancelled() {
        let at = t0() + TimeDelta::hours(2);
        let user = UserId::new("u1");
        let scheduled = queued().held(false, Some(at));
        let new_body = MessageBody::parse("Moved to 10:00").ok();
        let Ok(edited) = scheduled.rescheduled(at + TimeDelta::hours(1), new_body, t0()) else { panic!("edits") };
        assert_eq!((edited.status, edited.send_at), (Scheduled, Some(at + TimeDelta::hours(1))));
        assert_eq!(edited.body.as_str(), "Moved to 10:00");
        assert!(queued().held(true, Some(at)).rescheduled(at, None, t0()).is_ok(), "awaiting approval with a time");
        assert!(queued().held(true, None).rescheduled(at, None, t0()).is_err(), "no time to edit");
        assert!(queued().rescheduled(at, None, t0()).is_err(), "already queued");

        let Ok(cancelled) = edited.cancelled(&user, t0()) else { panic!("cancels") };
        assert_eq!(cancelled.status, Cancelled);
        assert!(queued().held(true, None).cancelled(&user, t0()).is_ok());
        assert!(queued().cancelled(&user, t0()).is_err(), "queued texts are on their way");
        assert!(cancelled.cancelled(&user, t0()).is_err());
    }

    #[test]
    fn a_resend_goes_to_the_number_given() {
        let claimed = queued().claim(t0(), TimeDelta::seconds(60)).ok();
        let failed = claimed.and_then(|m| m.failed_attempt(1, Failure::twilio(21211, None), t0()).ok());
        let Some(failed) = failed else { panic!("fails") };
        let Ok(fixed) = E164::parse("+14155550199", None) else { panic!("a valid number") };
        let Ok(again) = failed.resent(fixed.clone(), &UserId::new("u1"), t0()) else { panic!("resends") };
        assert_eq!((again.status, again.to.clone(), again.attempt), (Queued, Some(fixed), 1));
        assert!(
            again
                .resent(E164::parse("+14155550199", None).unwrap_or_else(|_| panic!()), &UserId::new("u1"), t0())
                .is_err()
        );
    }

    #[test]
    fn a_requeued_text_shows_no_old_failure_but_keeps_it_in_its_history() {
        let claimed = queued().claim(t0(), TimeDelta::seconds(60)).ok();
        let failed = claimed.and_then(|m| m.failed_attempt(1, Failure::twilio(21211, None), t0()).ok());
        let Some(failed) = failed else { panic!("fails") };
        let Ok(again) = failed.requeued(Actor::Sender, "resend", t0()) else { panic!("requeues") };
        assert_eq!((again.status, again.failure.clone()), (Queued, None));
        assert!(again.history.iter().any(|e| e.error_code == Some(21211)), "{:?}", again.history);
    }

    #[test]
    fn accepted_at_is_when_twilio_took_the_current_attempt() {
        assert_eq!(queued().accepted_at(), None);
        let later = t0() + TimeDelta::seconds(90);
        let claimed = queued().claim(t0(), TimeDelta::seconds(60)).ok();
        let accepted = claimed.and_then(|m| m.accepted(1, "SM1", "queued", later).ok());
        let Some(accepted) = accepted else { panic!("submits") };
        assert_eq!(accepted.accepted_at(), Some(later));
        let delivered = accepted.with_callback(&callback("SM1", "delivered", None), later + TimeDelta::seconds(5));
        assert_eq!(delivered.map(|m| m.accepted_at()), Ok(Some(later)), "callbacks are not Twilio taking it");
    }

    #[test]
    fn delivered_in_any_order_ends_delivered() {
        let m = submitted("SM1");
        let sent = callback("SM1", "sent", None);
        let delivered = callback("SM1", "delivered", None);
        let orders = [
            vec![sent.clone(), delivered.clone()],
            vec![delivered.clone(), sent.clone()],
            vec![sent.clone(), sent.clone(), delivered.clone(), delivered.clone()],
            vec![delivered.clone(), delivered.clone(), sent.clone(), sent.clone()],
        ];
        for order in orders {
            let end = apply(&m, &order);
            assert_eq!(end.status, Delivered, "{order:?}");
            let from_twilio = end.history.iter().filter(|h| h.actor == Actor::Twilio).count();
            assert_eq!(from_twilio, 2, "each callback recorded once: {order:?}");
        }
    }

    /// Every distinct arrival order of `callbacks`, each delivered twice.
    fn every_order_twice(callbacks: &[StatusCallback]) -> Vec<Vec<StatusCallback>> {
        fn orders(
            left: &mut Vec<StatusCallback>,
            prefix: &mut Vec<StatusCallback>,
            out: &mut Vec<Vec<StatusCallback>>,
        ) {
            if left.is_empty() {
                out.push(prefix.clone());
                return;
            }
            let mut tried: Vec<StatusCallback> = Vec::new();
            for i in 0..left.len() {
                if tried.contains(&left[i]) {
                    continue;
                }
                tried.push(left[i].clone());
                let next = left.remove(i);
                prefix.push(next.clone());
                orders(left, prefix, out);
                prefix.pop();
                left.insert(i, next);
            }
        }
        let mut twice: Vec<StatusCallback> = callbacks.iter().flat_map(|c| [c.clone(), c.clone()]).collect();
        let mut out = Vec::new();
        orders(&mut twice, &mut Vec::new(), &mut out);
        out
    }

    /// A callback as the history shows it: Twilio's status, its error code, whether it applied.
    type RecordedCallback = (String, Option<u32>, bool);

    /// What should happen, written independently of the state machine: statuses rank
    /// submitted < sent < final; the first final status to arrive stays; an error code for the
    /// final status is taken whenever it arrives. Returns the final status, the error code and,
    /// per distinct callback in arrival order, whether it changed the message.
    fn expected(order: &[StatusCallback]) -> (MessageStatus, Option<u32>, Vec<RecordedCallback>) {
        let rank = |s: MessageStatus| match s {
            Submitted => 1,
            Sent => 2,
            _ => 3,
        };
        let (mut status, mut code, mut seen) = (Submitted, None, Vec::new());
        for cb in order {
            let key = (cb.message_status.clone(), cb.error_code);
            if seen.iter().any(|(s, c, _)| (s, c) == (&key.0, &key.1)) {
                continue;
            }
            let Some(to) = to_message_status(&cb.message_status) else { panic!("known status") };
            let advances = rank(status) < 3 && rank(to) > rank(status);
            let adds_code = !advances && rank(status) == 3 && to == status && code.is_none() && cb.error_code.is_some();
            if advances {
                status = to;
            }
            if (advances || adds_code) && cb.error_code.is_some() {
                code = cb.error_code;
            }
            seen.push((key.0, key.1, advances || adds_code));
        }
        (status, code, seen)
    }

    #[test]
    fn callbacks_in_every_order_each_twice_end_in_the_right_state_and_history() {
        let with_dlr = |mut cb: StatusCallback| {
            cb.raw_dlr_done_date = Some("2611232201".into());
            cb
        };
        let scenarios = [
            vec![
                callback("SM1", "queued", None),
                callback("SM1", "sent", None),
                with_dlr(callback("SM1", "delivered", None)),
            ],
            vec![
                callback("SM1", "queued", None),
                callback("SM1", "sent", None),
                with_dlr(callback("SM1", "undelivered", Some(30003))),
            ],
            vec![
                callback("SM1", "sent", None),
                callback("SM1", "failed", Some(30007)),
                callback("SM1", "failed", None),
            ],
            // Contradicting final reports: the first one to arrive stands.
            vec![
                callback("SM1", "sent", None),
                callback("SM1", "delivered", None),
                callback("SM1", "undelivered", Some(30005)),
            ],
        ];
        let mut orders_checked = 0;
        for callbacks in scenarios {
            for order in every_order_twice(&callbacks) {
                let end = apply(&submitted("SM1"), &order);
                let (status, code, entries) = expected(&order);
                assert_eq!(end.status, status, "{order:?}");
                assert_eq!(end.failure.as_ref().and_then(|f| f.code), code, "{order:?}");
                let recorded: Vec<_> = end
                    .history
                    .iter()
                    .filter(|h| h.actor == Actor::Twilio)
                    .map(|h| (h.twilio_status.clone().unwrap_or_default(), h.error_code, h.applied))
                    .collect();
                assert_eq!(recorded, entries, "{order:?}");
                let dlr_kept =
                    end.history.iter().filter(|h| h.raw_dlr_done_date.as_deref() == Some("2611232201")).count();
                let dlr_sent = callbacks.iter().filter(|c| c.raw_dlr_done_date.is_some()).count();
                assert_eq!(dlr_kept, dlr_sent, "{order:?}");
                assert!(
                    end.history
                        .iter()
                        .filter(|h| h.actor == Actor::Twilio)
                        .all(|h| h.twilio_sid.as_deref() == Some("SM1"))
                );
                orders_checked += 1;
            }
        }
        // 6 callbacks with 3 distinct ones: 6! / 2!^3 = 90 orders per scenario.
        assert_eq!(orders_checked, 4 * 90);
    }

    #[test]
    fn an_error_code_reported_after_its_status_is_taken_and_never_erased() {
        let m = submitted("SM1");
        let late_code = apply(&m, &[callback("SM1", "failed", None), callback("SM1", "failed", Some(30007))]);
        assert_eq!((late_code.status, late_code.failure.and_then(|f| f.code)), (Failed, Some(30007)));
        let code_first = apply(&m, &[callback("SM1", "failed", Some(30007)), callback("SM1", "failed", None)]);
        assert_eq!((code_first.status, code_first.failure.and_then(|f| f.code)), (Failed, Some(30007)));
        // A different code for a status that already has one does not replace it.
        let two_codes =
            apply(&m, &[callback("SM1", "undelivered", Some(30003)), callback("SM1", "undelivered", Some(30005))]);
        assert_eq!(two_codes.failure.and_then(|f| f.code), Some(30003));
        assert_eq!(two_codes.history.iter().filter(|h| h.actor == Actor::Twilio).count(), 2);
    }

    #[test]
    fn asking_twilio_records_news_as_its_callback_would_and_counts_silence() {
        let m = submitted("SM1");
        assert!(m.awaits_status());
        let Ok(delivered) = m.with_fetched_status("SM1", "delivered", None, t0()) else { panic!("recorded") };
        assert_eq!((delivered.status, delivered.status_checks), (Delivered, 0));
        let last = delivered.history.last().map(|h| (h.actor, h.applied, h.note.is_some()));
        assert_eq!(last, Some((Actor::Twilio, true, true)));
        assert!(!delivered.awaits_status(), "final: nothing more to ask");
        // The lost callback arriving after all is the same fact: not recorded twice.
        assert_eq!(delivered.with_callback(&callback("SM1", "delivered", None), t0()), Err(Refused::DuplicateCallback));

        let Ok(undelivered) = m.with_fetched_status("SM1", "undelivered", Some(30003), t0()) else { panic!("ok") };
        assert_eq!((undelivered.status, undelivered.failure.and_then(|f| f.code)), (Undelivered, Some(30003)));

        // Twilio still holds it: no history entry, one more check counted, until we stop asking.
        let mut held = m.clone();
        for checks in 1..=MAX_STATUS_CHECKS {
            let Ok(next) = held.with_fetched_status("SM1", "queued", None, t0()) else { panic!("counted") };
            assert_eq!((next.status, next.status_checks, next.history.len()), (Submitted, checks, m.history.len()));
            held = next;
        }
        assert!(!held.awaits_status());
        assert!(held.with_fetched_status("SM1", "sent", None, t0()).is_err());
        // A status change starts the count again.
        let Ok(sent) = apply(&m, &[callback("SM1", "sent", None)]).with_fetched_status("SM1", "sent", None, t0())
        else {
            panic!("counted")
        };
        assert_eq!((sent.status, sent.status_checks), (Sent, 1));
        assert!(m.with_fetched_status("SMother", "delivered", None, t0()).is_err(), "another attempt's SID");
    }

    #[test]
    fn duplicates_are_refused() {
        let m = submitted("SM1");
        let cb = callback("SM1", "sent", None);
        let Ok(once) = m.with_callback(&cb, t0()) else { panic!("applies") };
        assert_eq!(once.with_callback(&cb, t0()), Err(Refused::DuplicateCallback));
    }

    #[test]
    fn undelivered_keeps_its_code_and_later_callbacks_do_not_erase_it() {
        let m = submitted("SM1");
        let end = apply(&m, &[callback("SM1", "undelivered", Some(30003)), callback("SM1", "sent", None)]);
        assert_eq!(end.status, Undelivered);
        assert_eq!(end.failure.and_then(|f| f.code), Some(30003));
    }

    #[test]
    fn failed_after_accepting() {
        let end = apply(&submitted("SM1"), &[callback("SM1", "failed", Some(30007))]);
        assert_eq!(end.status, Failed);
        assert_eq!(end.failure.and_then(|f| f.code), Some(30007));
    }

    #[test]
    fn an_older_attempts_callback_goes_into_history_only() {
        let m = submitted("SM2");
        let mut old = callback("SM1", "delivered", None);
        old.attempt = Some(0);
        let Ok(end) = m.with_callback(&old, t0()) else { panic!("recorded") };
        assert_eq!(end.status, Submitted);
        assert_eq!(end.twilio_sid.as_deref(), Some("SM2"));
        let last = end.history.last().map(|h| (h.applied, h.twilio_sid.clone()));
        assert_eq!(last, Some((false, Some("SM1".to_owned()))));
    }

    #[test]
    fn a_callback_that_beats_the_senders_write_is_adopted() {
        let Ok(sending) = queued().claim(t0(), TimeDelta::seconds(60)) else { panic!("claims") };
        let Ok(after_cb) = sending.with_callback(&callback("SM9", "sent", None), t0()) else { panic!("applies") };
        assert_eq!((after_cb.status, after_cb.twilio_sid.as_deref()), (Sent, Some("SM9")));
        // The sender's own write then only confirms the SID, without moving the status back.
        let Ok(confirmed) = after_cb.accepted(1, "SM9", "queued", t0()) else { panic!("confirms") };
        assert_eq!(confirmed.status, Sent);
        assert!(after_cb.accepted(1, "SMother", "queued", t0()).is_err());
    }

    #[test]
    fn unknown_twilio_status_is_history_only() {
        let end = apply(&submitted("SM1"), &[callback("SM1", "canceled", None)]);
        assert_eq!(end.status, Submitted);
        assert_eq!(end.history.last().map(|h| h.applied), Some(false));
    }

    #[test]
    fn deleting_hides_the_record_and_restoring_brings_it_back_unchanged() {
        let clerk = UserId::new("u1");
        let later = t0() + TimeDelta::minutes(5);
        let m = submitted("SM1");
        let Ok(deleted) = m.deleted_by(&clerk, later) else { panic!("deletes") };
        assert_eq!(deleted.deleted, Some(Deleted { at: later, by: clerk.clone() }));
        assert_eq!((deleted.status, deleted.version, deleted.updated_at), (Submitted, m.version + 1, m.updated_at));
        assert!(deleted.awaits_status(), "the text is still Twilio's: its status checks go on");
        let last = deleted.history.last().map(|h| (h.actor, h.status, h.note.clone()));
        assert_eq!(last, Some((Actor::Api, None, Some("deleted by u1".to_owned()))));
        assert_eq!(deleted.deleted_by(&clerk, later), Err(Refused::AlreadyDeleted));

        let Ok(restored) = deleted.restored(&UserId::new("u2"), later) else { panic!("restores") };
        assert_eq!((restored.deleted.clone(), restored.status, restored.version), (None, Submitted, m.version + 2));
        assert_eq!(restored.history.last().and_then(|h| h.note.clone()).as_deref(), Some("restored by u2"));
        assert_eq!(restored.restored(&clerk, later), Err(Refused::NotDeleted));
        assert_eq!(m.restored(&clerk, later), Err(Refused::NotDeleted), "never deleted");
        // A callback after the delete moves the status on and keeps the mark.
        let Ok(delivered) = deleted.with_callback(&callback("SM1", "delivered", None), later) else { panic!("ok") };
        assert_eq!((delivered.status, delivered.deleted.is_some()), (Delivered, true));
    }

    #[test]
    fn the_deleted_mark_and_approver_are_absent_when_unset_and_read_back_when_set() {
        let m = queued();
        let Ok(stored) = serde_json::to_value(&m) else { panic!("serialises") };
        assert!(stored.get("deleted").is_none() && stored.get("approved_by").is_none(), "{stored}");
        let mut marked = m.deleted_by(&UserId::new("u1"), t0()).unwrap_or_else(|_| panic!("deletes"));
        marked.approved_by = Some(UserId::new("u9"));
        let read: Option<Message> = serde_json::to_value(&marked).ok().and_then(|v| serde_json::from_value(v).ok());
        assert_eq!(read, Some(marked));
    }

    #[test]
    fn refusal_and_retry_release() {
        let Ok(sending) = queued().claim(t0(), TimeDelta::seconds(60)) else { panic!("claims") };
        let failure = Failure::twilio(21211, Some("invalid".into()));
        let Ok(failed) = sending.failed_attempt(1, failure, t0()) else { panic!("fails") };
        assert_eq!((failed.status, failed.failure.as_ref().and_then(|f| f.code)), (Failed, Some(21211)));
        let Ok(released) = sending.released_for_retry(1, "429".into(), t0()) else { panic!("releases") };
        assert_eq!(released.status, Queued);
        assert_eq!(
            sending.released_for_retry(2, "x".into(), t0()),
            Err(Refused::StaleAttempt { expected: 2, found: 1 })
        );
    }

    #[test]
    fn a_claim_that_missed_its_second_goes_back_holding_the_next_one() {
        let Ok(sending) = queued().claim(t0(), TimeDelta::seconds(60)) else { panic!("claims") };
        let slot = t0() + TimeDelta::seconds(12);
        let Ok(back) = sending.released_for_slot(1, Some(slot), t0()) else { panic!("releases") };
        assert_eq!((back.status, back.send_slot, back.lease_until), (Queued, Some(slot), None));
        assert!(back.history.last().and_then(|h| h.note.as_deref()).is_some_and(|n| n.contains("nothing was sent")));
        let Ok(again) = back.claim(t0() + TimeDelta::seconds(12), TimeDelta::seconds(60)) else { panic!("claims") };
        assert_eq!(again.attempt, 2, "a new attempt: nothing of the first can be confused with it");
        assert!(matches!(back.released_for_slot(1, None, t0()), Err(Refused::WrongStatus(..))));
    }
}
