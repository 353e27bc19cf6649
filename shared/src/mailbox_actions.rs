//! What staff do to texts already created: approve them (Send Now), edit or cancel a text not
//! yet queued, and resend failed ones to the contact's current number. Each action is a
//! version-conditional write per message, so two people pressing the same button at the same
//! moment move each text once.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::error;

use crate::clinic::Principal;
use crate::contacts::{Contact, OptOut, SmsNumber};
use crate::dynamo::StoreError;
use crate::mailbox_views::{SelectionError, selection};
use crate::message::{Message, MessageBody, Refused};
use crate::message_status::MessageStatus;
use crate::messages_table::Update;
use crate::phone::E164;
use crate::send_queue::{QueueError, SendJob};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(transparent)]
    Selection(#[from] SelectionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What became of one id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionOutcome {
    pub id: String,
    pub outcome: Outcome,
    /// The message's status afterwards (or as it stands, when nothing was done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MessageStatus>,
    /// Why nothing was done, in words a clinic can act on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Resent,
    /// Would be resent (the first, unconfirmed call).
    WouldResend,
    NotFound,
    /// Not in a state this action applies to (e.g. already approved by someone else).
    NotApplicable,
    /// A failed text that cannot be resent (no usable number now, or the number opted out).
    CannotResend,
}

impl ActionOutcome {
    fn new(id: &str, outcome: Outcome, status: Option<MessageStatus>, detail: Option<String>) -> Self {
        Self { id: id.to_owned(), outcome, status, detail }
    }

    fn not_found(id: &str) -> Self {
        Self::new(id, Outcome::NotFound, None, None)
    }

    pub fn done(&self) -> bool {
        matches!(self.outcome, Outcome::Approved | Outcome::Resent | Outcome::WouldResend)
    }
}

/// Send Now: each text still awaiting approval goes to the queue (or waits for its time),
/// once, whoever else presses it.
pub async fn approve(
    services: &Services,
    principal: &Principal,
    ids: &[String],
) -> Result<Vec<ActionOutcome>, ActionError> {
    let mut outcomes = Vec::new();
    for id in selection(ids)? {
        let Some(before) = services.messages.get_for_clinic(&principal.clinic_id, &id).await? else {
            outcomes.push(ActionOutcome::not_found(&id));
            continue;
        };
        let now = services.clock.now();
        let approve = |m: &Message| m.approved(&principal.user_id, now);
        let refused = |status| format!("The text is {status}, not awaiting approval.");
        outcomes.push(move_and_queue(services, &id, &before, approve, Outcome::Approved, refused, now).await?);
    }
    Ok(outcomes)
}

/// Moves one text with `decide` (on the version read, once whoever else tries) and queues its
/// job if it is now due; the outcome says what happened.
async fn move_and_queue(
    services: &Services,
    id: &str,
    before: &Message,
    decide: impl FnMut(&Message) -> Result<Message, Refused>,
    done: Outcome,
    refused: impl Fn(MessageStatus) -> String,
    now: DateTime<Utc>,
) -> Result<ActionOutcome, ActionError> {
    Ok(match services.messages.update_from(before, decide).await? {
        Update::Applied(message) => {
            queue_if_due(services, before, &message, "could not be queued; try again", now).await?;
            ActionOutcome::new(id, done, Some(message.status), None)
        }
        Update::Refused(_, current) => {
            ActionOutcome::new(id, Outcome::NotApplicable, Some(current.status), Some(refused(current.status)))
        }
        Update::Missing => ActionOutcome::not_found(id),
    })
}

/// Puts the job of a text just moved to `queued` on its lane; if SQS cannot take it, the text
/// goes back to how it was (`before`, with `note` in its history), so nothing is left queued
/// with no job.
pub(crate) async fn queue_if_due(
    services: &Services,
    before: &Message,
    message: &Message,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), QueueError> {
    if message.status != MessageStatus::Queued {
        return Ok(());
    }
    if let Err(e) = services.queues.enqueue(message.lane, &SendJob::of(message)).await {
        let undo = services.messages.update_from(message, |m| m.undone(before, note, now));
        if let Err(undo_error) = undo.await {
            error!(message_id = %message.id, error = ?undo_error, "a queued text has no job and could not be put back");
        }
        return Err(e);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditRefused {
    #[error("no message with that id exists for this clinic")]
    NotFound,
    #[error("the text is {0}: only a text not yet queued can be changed")]
    AlreadyQueued(MessageStatus),
}

/// A new time (checked by the caller) or new words for a text not yet queued.
pub async fn edit_scheduled(
    services: &Services,
    principal: &Principal,
    id: &str,
    send_at: Option<DateTime<Utc>>,
    body: Option<MessageBody>,
) -> Result<Result<Message, EditRefused>, StoreError> {
    let Some(before) = services.messages.get_for_clinic(&principal.clinic_id, id).await? else {
        return Ok(Err(EditRefused::NotFound));
    };
    let now = services.clock.now();
    let update = services
        .messages
        .update_from(&before, |m| {
            let at = send_at.or(m.send_at).ok_or(Refused::WrongStatus(m.status, MessageStatus::Scheduled))?;
            m.rescheduled(at, body.clone(), now)
        })
        .await?;
    Ok(match update {
        Update::Applied(message) => Ok(message),
        Update::Refused(_, current) => Err(EditRefused::AlreadyQueued(current.status)),
        Update::Missing => Err(EditRefused::NotFound),
    })
}

/// Cancels a text not yet queued (scheduled, or awaiting approval).
pub async fn cancel(
    services: &Services,
    principal: &Principal,
    id: &str,
) -> Result<Result<Message, EditRefused>, StoreError> {
    let Some(before) = services.messages.get_for_clinic(&principal.clinic_id, id).await? else {
        return Ok(Err(EditRefused::NotFound));
    };
    let now = services.clock.now();
    Ok(match services.messages.update_from(&before, |m| m.cancelled(&principal.user_id, now)).await? {
        Update::Applied(message) => Ok(message),
        Update::Refused(_, current) => Err(EditRefused::AlreadyQueued(current.status)),
        Update::Missing => Err(EditRefused::NotFound),
    })
}

/// Resend failed texts. Unconfirmed, it only says which would be resent and which cannot be
/// and why; confirmed, each failed text gets a new attempt to the contact's current mobile
/// number (fixed since, perhaps), or the number it had when it has no contact.
pub async fn resend(
    services: &Services,
    principal: &Principal,
    ids: &[String],
    confirm: bool,
) -> Result<Vec<ActionOutcome>, ActionError> {
    let mut outcomes = Vec::new();
    for id in selection(ids)? {
        let Some(before) = services.messages.get_for_clinic(&principal.clinic_id, &id).await? else {
            outcomes.push(ActionOutcome::not_found(&id));
            continue;
        };
        if !matches!(before.status, MessageStatus::Failed | MessageStatus::Undelivered) {
            let detail = format!("The text is {}; only failed and undelivered texts can be resent.", before.status);
            outcomes.push(ActionOutcome::new(&id, Outcome::NotApplicable, Some(before.status), Some(detail)));
            continue;
        }
        let to = match current_number(services, &before).await? {
            Ok(to) => to,
            Err(why) => {
                outcomes.push(ActionOutcome::new(&id, Outcome::CannotResend, Some(before.status), Some(why)));
                continue;
            }
        };
        if !confirm {
            outcomes.push(ActionOutcome::new(&id, Outcome::WouldResend, Some(before.status), None));
            continue;
        }
        let now = services.clock.now();
        let resend = |m: &Message| m.resent(to.clone(), &principal.user_id, now);
        let refused = |status| format!("The text is {status} now; someone else resent it.");
        outcomes.push(move_and_queue(services, &id, &before, resend, Outcome::Resent, refused, now).await?);
    }
    Ok(outcomes)
}

/// Where a resend goes: the contact's mobile number as it is now, else the text's own number.
async fn current_number(services: &Services, message: &Message) -> Result<Result<E164, String>, StoreError> {
    let number = match &message.contact_id {
        Some(contact_id) => match services.clinics.record::<Contact>(&message.clinic_id, contact_id).await? {
            Some(contact) => match contact.sms_number() {
                SmsNumber::Usable(number) => number,
                SmsNumber::Invalid { entered, .. } => {
                    return Ok(Err(format!("The contact's mobile number {entered} is not valid; correct it first.")));
                }
                SmsNumber::NoMobile => return Ok(Err("The contact has no mobile number; add one first.".to_owned())),
            },
            None => match &message.to {
                Some(to) => to.clone(),
                None => return Ok(Err("The text has no number to go to.".to_owned())),
            },
        },
        None => match &message.to {
            Some(to) => to.clone(),
            None => return Ok(Err("The text has no number to go to.".to_owned())),
        },
    };
    if services.clinics.record::<OptOut>(&message.clinic_id, number.as_str()).await?.is_some() {
        return Ok(Err("The number has opted out of texts from this clinic (replied STOP).".to_owned()));
    }
    Ok(Ok(number))
}
