//! Creating texts from the API: check the numbers and body, pick the connection, store each
//! message (`queued`, or held for approval or for its time; in the patient's active
//! conversation, if any) and put the job of each one that goes now on the interactive lane.

use serde::Serialize;
use tracing::{error, info};

use chrono::{DateTime, Utc};

use crate::clinic::{Clinic, Connection, Principal, SendMode, User};
use crate::contacts::OptOut;
use crate::conversations::party_key;
use crate::dynamo::StoreError;
use crate::ids::{ConnectionId, MessageId};
use crate::message::{BodyError, Lane, Message, MessageBody};
use crate::message_status::MessageStatus;
use crate::phone::{E164, PhoneError};
use crate::recipients::{self, MAX_RECIPIENTS, MAX_TEXTS, Refusal, Resolved};
use crate::reminder_window::local_date;
use crate::send_queue::{QueueError, SendJob};
use crate::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum CreateTextError {
    #[error("`to`: {0}")]
    InvalidNumber(PhoneError),
    #[error("`body`: {0}")]
    InvalidBody(BodyError),
    #[error("the clinic has no connection to send through")]
    NoConnection,
    #[error("no connection {0} exists")]
    UnknownConnection(String),
    #[error("the clinic's connection is disabled")]
    ConnectionDisabled,
    #[error("the clinic's record is missing")]
    UnknownClinic,
    #[error("the number has opted out of texts from this clinic")]
    OptedOut,
    #[error("the user's daily allowance of {limit} texts is used up")]
    AllowanceExhausted { limit: u32 },
    #[error("no recipients were given")]
    NoRecipients,
    #[error(transparent)]
    Selection(#[from] crate::mailbox_views::SelectionError),
    #[error("at most {MAX_RECIPIENTS} recipients may be named in one request")]
    TooManyRecipients,
    #[error("the recipients come to {0} texts; at most {MAX_TEXTS} go in one request")]
    TooManyTexts(usize),
    #[error("no recipient could be texted")]
    NoneAccepted(Vec<Outcome>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A send to named recipients (`POST /v1/messages` with `recipients`).
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub recipients: Vec<String>,
    pub body: String,
    /// The connection to send through; the clinic's default when absent.
    pub connection_id: Option<String>,
    /// Checked by the caller (`scheduled_texts::parse_send_at`).
    pub send_at: Option<DateTime<Utc>>,
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The entry of `recipients` it came from (a group gives one outcome per member).
    pub recipient: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<E164>,
    pub outcome: OutcomeKind,
    /// The message created (for a duplicate: the one it shares with an earlier recipient).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Refusal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Queued,
    AwaitingApproval,
    Scheduled,
    /// The same number as an earlier recipient: that one text covers both.
    Duplicate,
    Refused,
}

impl Outcome {
    pub fn accepted(&self) -> bool {
        matches!(self.outcome, OutcomeKind::Queued | OutcomeKind::AwaitingApproval | OutcomeKind::Scheduled)
    }
}

/// One message per unique number among the recipients; an outcome for each recipient, in the
/// order named. `NoneAccepted` when not one text could be created.
pub async fn send_to_recipients(
    services: &Services,
    principal: &Principal,
    request: SendRequest,
) -> Result<Vec<Outcome>, CreateTextError> {
    if request.recipients.is_empty() {
        return Err(CreateTextError::NoRecipients);
    }
    if request.recipients.len() > MAX_RECIPIENTS {
        return Err(CreateTextError::TooManyRecipients);
    }
    let clinic = services.clinics.clinic(&principal.clinic_id).await?.ok_or(CreateTextError::UnknownClinic)?;
    let body = MessageBody::parse(&request.body).map_err(CreateTextError::InvalidBody)?;
    let connection = sending_connection(services, &clinic, request.connection_id.as_deref()).await?;
    let people = recipients::resolve(services, &clinic, &request.recipients).await?;
    let (unique, repeats) = recipients::first_per_number(people);
    let texts = unique.iter().filter(|p| p.to.is_ok()).count();
    if texts > MAX_TEXTS {
        return Err(CreateTextError::TooManyTexts(texts));
    }
    let mut outcomes = Vec::with_capacity(unique.len() + repeats.len());
    for person in unique {
        let outcome = match &person.to {
            Ok(to) => {
                let created = create_one(
                    services,
                    &clinic,
                    &connection,
                    principal,
                    to.clone(),
                    person.contact_id.clone(),
                    body.clone(),
                    request.send_at,
                    TextKind::Manual,
                )
                .await?;
                outcome_of(&person, created.map_err(Refusal::from))
            }
            Err(refusal) => outcome_of(&person, Err(*refusal)),
        };
        outcomes.push(outcome);
    }
    for (person, first) in repeats {
        let id = outcomes.get(first).and_then(|o| o.id);
        outcomes.push(Outcome {
            recipient: person.recipient,
            contact_id: person.contact_id,
            to: person.to.ok(),
            outcome: OutcomeKind::Duplicate,
            id,
            reason: None,
        });
    }
    if outcomes.iter().any(Outcome::accepted) { Ok(outcomes) } else { Err(CreateTextError::NoneAccepted(outcomes)) }
}

fn outcome_of(person: &Resolved, created: Result<Message, Refusal>) -> Outcome {
    let (outcome, id, reason) = match created {
        Ok(message) => {
            let kind = match message.status {
                MessageStatus::AwaitingApproval => OutcomeKind::AwaitingApproval,
                MessageStatus::Scheduled => OutcomeKind::Scheduled,
                _ => OutcomeKind::Queued,
            };
            (kind, Some(message.id), None)
        }
        Err(refusal) => (OutcomeKind::Refused, None, Some(refusal)),
    };
    Outcome {
        recipient: person.recipient.clone(),
        contact_id: person.contact_id.clone(),
        to: person.to.clone().ok(),
        outcome,
        id,
        reason,
    }
}

/// The connection a clinic's text goes through: the one named, or the clinic's default.
pub async fn sending_connection(
    services: &Services,
    clinic: &Clinic,
    named: Option<&str>,
) -> Result<Connection, CreateTextError> {
    let connection = match named {
        Some(id) => services
            .clinics
            .connection(&clinic.id, &ConnectionId::new(id))
            .await?
            .ok_or_else(|| CreateTextError::UnknownConnection(id.to_owned()))?,
        None => {
            let id = clinic.default_connection_id.clone().ok_or(CreateTextError::NoConnection)?;
            services.clinics.connection(&clinic.id, &id).await?.ok_or(CreateTextError::NoConnection)?
        }
    };
    if !connection.enabled {
        return Err(CreateTextError::ConnectionDisabled);
    }
    Ok(connection)
}

/// `POST /v1/messages` with `to`: one text to `request.recipients[0]`, a phone number;
/// refused as a whole when it cannot go.
pub async fn create_text(
    services: &Services,
    principal: &Principal,
    request: SendRequest,
) -> Result<Message, CreateTextError> {
    let clinic = services.clinics.clinic(&principal.clinic_id).await?.ok_or(CreateTextError::UnknownClinic)?;
    let to = request.recipients.first().map(String::as_str).unwrap_or_default();
    let to = E164::parse(to, clinic.country().ok()).map_err(CreateTextError::InvalidNumber)?;
    let body = MessageBody::parse(&request.body).map_err(CreateTextError::InvalidBody)?;
    let connection = sending_connection(services, &clinic, request.connection_id.as_deref()).await?;
    match create_one(services, &clinic, &connection, principal, to, None, body, request.send_at, TextKind::Manual)
        .await?
    {
        Ok(message) => Ok(message),
        Err(NotCreated::OptedOut) => Err(CreateTextError::OptedOut),
        Err(NotCreated::AllowanceExhausted) => {
            Err(CreateTextError::AllowanceExhausted { limit: allowance_limit(services, &clinic, principal).await? })
        }
    }
}

/// What became of one received text a reply was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyOutcome {
    /// The received text's id.
    pub id: String,
    pub outcome: ReplyOutcomeKind,
    /// The reply (for a second text from the same sender: the one reply they share).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_id: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Refusal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyOutcomeKind {
    Replied,
    /// Another selected text came from the same number: one reply answers both.
    SameSender,
    /// No received text with that id exists for this clinic.
    NotFound,
    /// The id is of a text the clinic sent, not one it received.
    NotReceived,
    Refused,
}

/// Replies to received texts: one reply per distinct sender, through the connection the
/// text came in on, joining the sender's conversation. Replies never wait for approval.
pub async fn reply(
    services: &Services,
    principal: &Principal,
    ids: &[String],
    body: &str,
) -> Result<Vec<ReplyOutcome>, CreateTextError> {
    let ids = crate::mailbox_views::selection(ids)?;
    let clinic = services.clinics.clinic(&principal.clinic_id).await?.ok_or(CreateTextError::UnknownClinic)?;
    let body = MessageBody::parse(body).map_err(CreateTextError::InvalidBody)?;
    let mut replied: std::collections::HashMap<E164, MessageId> = std::collections::HashMap::new();
    let mut outcomes = Vec::with_capacity(ids.len());
    for id in ids {
        let outcome = |outcome, reply_id, reason| ReplyOutcome { id: id.clone(), outcome, reply_id, reason };
        let Some(received) = services.messages.get_for_clinic(&clinic.id, &id).await? else {
            outcomes.push(outcome(ReplyOutcomeKind::NotFound, None, None));
            continue;
        };
        let Some(sender) = received.from.clone().filter(|_| received.status == MessageStatus::Received) else {
            outcomes.push(outcome(ReplyOutcomeKind::NotReceived, None, None));
            continue;
        };
        if let Some(reply_id) = replied.get(&sender) {
            outcomes.push(outcome(ReplyOutcomeKind::SameSender, Some(*reply_id), None));
            continue;
        }
        // Answer from the number they wrote to, unless that connection is gone.
        let connection = match sending_connection(services, &clinic, Some(received.connection_id.as_str())).await {
            Ok(connection) => connection,
            Err(CreateTextError::UnknownConnection(_) | CreateTextError::ConnectionDisabled) => {
                sending_connection(services, &clinic, None).await?
            }
            Err(other) => return Err(other),
        };
        let contact_id = received.contact_id.clone();
        let created = create_one(
            services,
            &clinic,
            &connection,
            principal,
            sender.clone(),
            contact_id,
            body.clone(),
            None,
            TextKind::Reply,
        )
        .await?;
        match created {
            Ok(message) => {
                replied.insert(sender, message.id);
                outcomes.push(outcome(ReplyOutcomeKind::Replied, Some(message.id), None));
            }
            Err(why) => outcomes.push(outcome(ReplyOutcomeKind::Refused, None, Some(why.into()))),
        }
    }
    Ok(outcomes)
}

/// Forwards one text (its words, or the edited words given) to contacts; the new texts are
/// the clinic's like any other send.
pub async fn forward(
    services: &Services,
    principal: &Principal,
    id: &str,
    recipients: Vec<String>,
    body: Option<String>,
) -> Result<Option<Vec<Outcome>>, CreateTextError> {
    let original = services.messages.get_for_clinic(&principal.clinic_id, id).await?;
    let Some(original) = original else { return Ok(None) };
    let body = body.unwrap_or_else(|| original.body.as_str().to_owned());
    let request = SendRequest { recipients, body, connection_id: None, send_at: None };
    send_to_recipients(services, principal, request).await.map(Some)
}

/// A test text to a contact's current mobile number, straight away (never held for approval).
pub async fn test_text(
    services: &Services,
    principal: &Principal,
    contact_id: &str,
    body: Option<&str>,
) -> Result<Result<Message, Refusal>, CreateTextError> {
    let clinic = services.clinics.clinic(&principal.clinic_id).await?.ok_or(CreateTextError::UnknownClinic)?;
    let Some(contact) = services.clinics.record::<crate::contacts::Contact>(&clinic.id, contact_id).await? else {
        return Ok(Err(Refusal::UnknownRecipient));
    };
    let to = match contact.sms_number() {
        crate::contacts::SmsNumber::Usable(number) => number,
        crate::contacts::SmsNumber::Invalid { .. } => return Ok(Err(Refusal::InvalidNumber)),
        crate::contacts::SmsNumber::NoMobile => return Ok(Err(Refusal::NoMobileNumber)),
    };
    let text = body.map_or_else(|| format!("This is a test text from {}.", clinic.name), str::to_owned);
    let body = MessageBody::parse(&text).map_err(CreateTextError::InvalidBody)?;
    let connection = sending_connection(services, &clinic, None).await?;
    let created =
        create_one(services, &clinic, &connection, principal, to, Some(contact.id), body, None, TextKind::Test).await?;
    Ok(created.map_err(Refusal::from))
}

/// Which texts wait for approval when the clinic requires it: not a reply in a conversation,
/// nor a test text, which staff send to someone they are dealing with right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextKind {
    Manual,
    Reply,
    Test,
}

/// Why `create_one` made no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotCreated {
    OptedOut,
    AllowanceExhausted,
}

impl From<NotCreated> for Refusal {
    fn from(value: NotCreated) -> Self {
        match value {
            NotCreated::OptedOut => Refusal::OptedOut,
            NotCreated::AllowanceExhausted => Refusal::AllowanceExhausted,
        }
    }
}

/// Creates one text from a clinic user to `to`, held for approval when the clinic requires
/// it, or until `send_at`. A refusal when the number opted out or the user's allowance is used up.
#[allow(clippy::too_many_arguments)]
async fn create_one(
    services: &Services,
    clinic: &Clinic,
    connection: &Connection,
    principal: &Principal,
    to: E164,
    contact_id: Option<String>,
    body: MessageBody,
    send_at: Option<DateTime<Utc>>,
    kind: TextKind,
) -> Result<Result<Message, NotCreated>, CreateTextError> {
    if services.clinics.record::<OptOut>(&clinic.id, to.as_str()).await?.is_some() {
        return Ok(Err(NotCreated::OptedOut));
    }
    let now = services.clock.now();
    if clinic.allowances_enabled && !count_against_allowance(services, clinic, principal, now).await? {
        return Ok(Err(NotCreated::AllowanceExhausted));
    }
    let masked_to = to.masked();
    // A text to a patient in an active conversation joins it; on its own it opens none.
    let contact_id = match contact_id {
        Some(id) => Some(id),
        None => crate::inbound::contact_by_number(services, &clinic.id, &to).await?.map(|c| c.id),
    };
    let party = party_key(&clinic.id, contact_id.as_deref(), &to);
    let conversation = services.conversations.active(&clinic.id, &party).await?;
    // A text for later goes with the reminders; one for now is a conversation's.
    let lane = if send_at.is_some() { Lane::Scheduled } else { Lane::Interactive };
    let mut message = Message::new_outbound(
        clinic.id.clone(),
        to,
        body,
        connection.id.clone(),
        lane,
        Some(principal.user_id.clone()),
        now,
    )
    .held(kind == TextKind::Manual && clinic.send_mode == SendMode::ApprovalRequired, send_at);
    message.contact_id = contact_id;
    message.conversation_id = conversation.as_ref().map(|c| c.id.clone());
    if let Err(store_error) = services.messages.insert(&message).await {
        if clinic.allowances_enabled {
            give_back_allowance(services, clinic, principal, now).await;
        }
        return Err(store_error.into());
    }
    if message.status == MessageStatus::Queued
        && let Err(queue_error) = services.queues.enqueue(message.lane, &SendJob::of(&message)).await
    {
        // Undo, so the caller's retry does not leave a queued text that nothing will send.
        match services.messages.delete_unchanged(&message).await {
            Ok(()) => {
                if clinic.allowances_enabled {
                    give_back_allowance(services, clinic, principal, now).await;
                }
                return Err(queue_error.into());
            }
            // SQS did take the job after all (the sender already moved the message): it is going.
            Err(StoreError::Conflict) => {}
            Err(undo) => {
                error!(message_id = %message.id, error = ?undo, "could not undo a message whose job was not queued");
                return Err(queue_error.into());
            }
        }
    }
    if let Some(conversation) = &conversation {
        // Only the conversation's place in the list depends on it; the text is already going.
        if let Err(e) = services.conversations.touch(conversation, now).await {
            error!(error = ?e, "could not move a conversation's last activity");
        }
    }
    info!(message_id = %message.id, to = %masked_to, status = %message.status, "text created");
    Ok(Ok(message))
}

/// The user's daily allowance (0 when none is set, which blocks sending).
async fn allowance_limit(services: &Services, clinic: &Clinic, principal: &Principal) -> Result<u32, StoreError> {
    let user: Option<User> = services.clinics.record(&clinic.id, principal.user_id.as_str()).await?;
    Ok(user.and_then(|u| u.daily_allowance).unwrap_or(0))
}

/// Counts one text against the user's allowance for today (midnight to midnight in the
/// clinic's zone); `false` when it is used up. No allowance set, or 0, blocks sending.
async fn count_against_allowance(
    services: &Services,
    clinic: &Clinic,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let limit = allowance_limit(services, clinic, principal).await?;
    if limit == 0 {
        return Ok(false);
    }
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let day = local_date(tz, now);
    Ok(services.counters.count_allowance(&clinic.id, principal.user_id.as_str(), day, limit, now).await?.is_ok())
}

/// A text that was counted but not created is given back.
async fn give_back_allowance(services: &Services, clinic: &Clinic, principal: &Principal, now: DateTime<Utc>) {
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let day = local_date(tz, now);
    if let Err(e) = services.counters.uncount_allowance(&clinic.id, principal.user_id.as_str(), day).await {
        error!(error = ?e, "could not give back a daily allowance count");
    }
}
