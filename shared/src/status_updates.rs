//! Twilio's status callbacks applied to our messages: forward only, current attempt only,
//! each callback once; everything else kept in the history.

use tracing::{info, warn};

use crate::connection_activity;
use crate::dynamo::StoreError;
use crate::ids::MessageId;
use crate::message::{Refused, StatusCallback};
use crate::messages_table::Update;
use crate::services::Services;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Recorded; `advanced` says whether the message's status moved.
    Recorded {
        advanced: bool,
    },
    Duplicate,
    UnknownMessage,
}

pub async fn record(
    services: &Services,
    id: &MessageId,
    callback: &StatusCallback,
) -> Result<CallbackOutcome, StoreError> {
    let now = services.clock.now();
    let outcome = match services.messages.update(id, |m| m.with_callback(callback, now)).await? {
        Update::Applied(message) => {
            let advanced = message.history.last().is_some_and(|h| h.applied);
            info!(message_id = %id, twilio_status = %callback.message_status, status = %message.status, advanced, "status callback");
            connection_activity::status_callback_received(services, &message, callback.error_code).await;
            CallbackOutcome::Recorded { advanced }
        }
        Update::Refused(Refused::DuplicateCallback, message) => {
            // Still proof that callbacks reach us; the error, if any, was recorded the first time.
            connection_activity::status_callback_received(services, &message, None).await;
            CallbackOutcome::Duplicate
        }
        Update::Refused(other, message) => {
            warn!(message_id = %id, %other, "status callback refused");
            connection_activity::status_callback_received(services, &message, None).await;
            CallbackOutcome::Duplicate
        }
        Update::Missing => {
            warn!(message_id = %id, "status callback for an unknown message");
            CallbackOutcome::UnknownMessage
        }
    };
    Ok(outcome)
}
