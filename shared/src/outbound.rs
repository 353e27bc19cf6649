//! Creating a text from the API: check the number and body, pick the clinic's connection, store
//! the message as `queued` (in the patient's active conversation, if any) and put its job on the
//! interactive lane.

use tracing::{error, info};

use chrono::{DateTime, Utc};

use crate::clinic::{Clinic, Principal, User};
use crate::contacts::OptOut;
use crate::conversations::party_key;
use crate::dynamo::StoreError;
use crate::message::{BodyError, Lane, Message, MessageBody};
use crate::phone::{E164, PhoneError};
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
    #[error("the clinic's connection is disabled")]
    ConnectionDisabled,
    #[error("the clinic's record is missing")]
    UnknownClinic,
    #[error("the number has opted out of texts from this clinic")]
    OptedOut,
    #[error("the user's daily allowance of {limit} texts is used up")]
    AllowanceExhausted { limit: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

pub async fn create_text(
    services: &Services,
    principal: &Principal,
    to: &str,
    body: &str,
) -> Result<Message, CreateTextError> {
    let clinic = services.clinics.clinic(&principal.clinic_id).await?.ok_or(CreateTextError::UnknownClinic)?;
    let to = E164::parse(to, clinic.country().ok()).map_err(CreateTextError::InvalidNumber)?;
    let body = MessageBody::parse(body).map_err(CreateTextError::InvalidBody)?;
    let connection_id = clinic.default_connection_id.clone().ok_or(CreateTextError::NoConnection)?;
    let connection =
        services.clinics.connection(&clinic.id, &connection_id).await?.ok_or(CreateTextError::NoConnection)?;
    if !connection.enabled {
        return Err(CreateTextError::ConnectionDisabled);
    }
    if services.clinics.record::<OptOut>(&clinic.id, to.as_str()).await?.is_some() {
        return Err(CreateTextError::OptedOut);
    }
    let now = services.clock.now();
    if clinic.allowances_enabled {
        count_against_allowance(services, &clinic, principal, now).await?;
    }
    let masked_to = to.masked();
    // A text to a patient in an active conversation joins it; on its own it opens none.
    let contact_id = crate::inbound::contact_by_number(services, &clinic.id, &to).await?.map(|c| c.id);
    let party = party_key(&clinic.id, contact_id.as_deref(), &to);
    let conversation = services.conversations.active(&clinic.id, &party).await?;
    let mut message = Message::new_outbound(
        clinic.id.clone(),
        to,
        body,
        connection.id,
        Lane::Interactive,
        Some(principal.user_id.clone()),
        now,
    );
    message.contact_id = contact_id;
    message.conversation_id = conversation.as_ref().map(|c| c.id.clone());
    if let Err(store_error) = services.messages.insert(&message).await {
        if clinic.allowances_enabled {
            give_back_allowance(services, &clinic, principal, now).await;
        }
        return Err(store_error.into());
    }
    if let Err(queue_error) = services.queues.enqueue(message.lane, &SendJob { message_id: message.id }).await {
        // Undo, so the caller's retry does not leave a queued text that nothing will send.
        match services.messages.delete_unchanged(&message).await {
            Ok(()) => {
                if clinic.allowances_enabled {
                    give_back_allowance(services, &clinic, principal, now).await;
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
    info!(message_id = %message.id, to = %masked_to, "text queued");
    Ok(message)
}

/// One text against the user's allowance for today (midnight to midnight in the clinic's zone).
/// No allowance set, or 0, blocks sending.
async fn count_against_allowance(
    services: &Services,
    clinic: &Clinic,
    principal: &Principal,
    now: DateTime<Utc>,
) -> Result<(), CreateTextError> {
    let user: Option<User> = services.clinics.record(&clinic.id, principal.user_id.as_str()).await?;
    let limit = user.and_then(|u| u.daily_allowance).unwrap_or(0);
    if limit == 0 {
        return Err(CreateTextError::AllowanceExhausted { limit });
    }
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let day = local_date(tz, now);
    match services.counters.count_allowance(&clinic.id, principal.user_id.as_str(), day, limit, now).await? {
        Ok(_) => Ok(()),
        Err(_) => Err(CreateTextError::AllowanceExhausted { limit }),
    }
}

/// A text that was counted but not created is given back.
async fn give_back_allowance(services: &Services, clinic: &Clinic, principal: &Principal, now: DateTime<Utc>) {
    let tz = clinic.time_zone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let day = local_date(tz, now);
    if let Err(e) = services.counters.uncount_allowance(&clinic.id, principal.user_id.as_str(), day).await {
        error!(error = ?e, "could not give back a daily allowance count");
    }
}
