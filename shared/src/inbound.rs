//! A text a patient sent to one of a clinic's numbers: routed to the clinic by the number it was
//! sent to (`To`), matched to a contact by the number it came from (`From`, within that clinic
//! only), and stored once as a `received` message however often Twilio delivers it. It joins the
//! patient's active conversation or opens one. A STOP or START (Twilio's keywords) changes the
//! number's opt-out for the clinic, and a confirmation keyword confirms the appointment of the
//! latest reminder, before the text is stored, so a second delivery repeats (never loses) them.

use tracing::{info, warn};

use crate::confirmations;
use crate::connection_activity;
use crate::contacts::{Contact, number_index_key};
use crate::conversations::Conversation;
use crate::dynamo::StoreError;
use crate::ids::{ClinicId, MessageId};
use crate::message::{InboundText, Message};
use crate::opt_outs;
use crate::phone::E164;
use crate::sender_claims::SenderClaim;
use crate::services::Services;
use crate::twilio::keywords;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Stored(Box<Message>),
    /// Delivered before; nothing changed.
    Duplicate,
    /// No connection answers on the number it was sent to: nothing to store it under.
    UnknownNumber,
}

pub async fn receive(services: &Services, text: &InboundText) -> Result<Received, StoreError> {
    let Some(route) = route(services, text).await? else {
        warn!(to = %text.to.masked(), "inbound text to a number no connection answers on; dropped");
        return Ok(Received::UnknownNumber);
    };
    let now = services.clock.now();
    let id = services.messages.reserve_inbound(&text.message_sid, MessageId::generate(now)).await?;
    if services.messages.get(&id).await?.is_some() {
        return Ok(Received::Duplicate);
    }
    let contact_id = contact_by_number(services, &route.clinic_id, &text.from).await?.map(|c| c.id);
    let fresh = Conversation::open(
        ulid::Ulid::from_datetime(now.into()).to_string().to_ascii_lowercase(),
        route.clinic_id.clone(),
        contact_id.clone(),
        text.from.clone(),
        route.connection_id.clone(),
        now,
    );
    if let Some(keyword) = keywords::classify(&text.body, text.opt_out_type.as_deref()) {
        opt_outs::apply(&services.clinics, &route.clinic_id, &route.connection_id, &text.from, keyword, now).await?;
    } else if let Some(clinic) = services.clinics.clinic(&route.clinic_id).await? {
        confirmations::confirm_from_reply(services, &clinic, &text.from, &text.body, now).await?;
    }
    let conversation = services.conversations.open_or_join(&fresh, now).await?;
    let mut message =
        Message::new_inbound(id, route.clinic_id.clone(), route.connection_id.clone(), text, contact_id, now);
    message.conversation_id = Some(conversation.id);
    match services.messages.insert(&message).await {
        Ok(()) => {
            info!(message_id = %message.id, clinic_id = %message.clinic_id, from = %text.from.masked(), known_contact = message.contact_id.is_some(), "inbound text stored");
            connection_activity::inbound_received(services, &message.clinic_id, &message.connection_id, &message.id)
                .await;
            Ok(Received::Stored(Box::new(message)))
        }
        // The other delivery of the same text stored it meanwhile.
        Err(StoreError::Conflict) => Ok(Received::Duplicate),
        Err(other) => Err(other),
    }
}

/// The connection answering on `To`; for a Messaging Service number nobody claimed, the service.
async fn route(services: &Services, text: &InboundText) -> Result<Option<SenderClaim>, StoreError> {
    if let Some(claim) = services.clinics.sender_claim(text.to.as_str()).await? {
        return Ok(Some(claim));
    }
    match &text.messaging_service_sid {
        Some(service) => services.clinics.sender_claim(service).await,
        None => Ok(None),
    }
}

/// The clinic's contact who texts from `number`. Where several share it (a household), the
/// oldest record answers, so the same number always lands with the same contact.
pub async fn contact_by_number(
    services: &Services,
    clinic: &ClinicId,
    number: &E164,
) -> Result<Option<Contact>, StoreError> {
    let found: Vec<Contact> = services.clinics.by_index_key(&number_index_key(clinic, number), 1).await?;
    Ok(found.into_iter().next())
}
