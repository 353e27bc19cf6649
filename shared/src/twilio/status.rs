//! Twilio's message statuses, read into ours.

use crate::message_status::MessageStatus;

/// Our status for a status Twilio reports, or `None` when it says nothing about delivery
/// (`canceled`, inbound statuses, or a value Twilio adds later): those go into the history only.
pub fn to_message_status(twilio_status: &str) -> Option<MessageStatus> {
    match twilio_status {
        // Twilio holds the text: accepted (Messaging Service), queued, handing to the carrier.
        "accepted" | "queued" | "sending" | "scheduled" => Some(MessageStatus::Submitted),
        "sent" => Some(MessageStatus::Sent),
        // `read` (RCS/WhatsApp) implies delivery.
        "delivered" | "read" => Some(MessageStatus::Delivered),
        "undelivered" => Some(MessageStatus::Undelivered),
        "failed" => Some(MessageStatus::Failed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_twilio_status_maps() {
        use MessageStatus::*;
        let cases = [
            ("accepted", Some(Submitted)),
            ("queued", Some(Submitted)),
            ("sending", Some(Submitted)),
            ("scheduled", Some(Submitted)),
            ("sent", Some(Sent)),
            ("delivered", Some(Delivered)),
            ("read", Some(Delivered)),
            ("undelivered", Some(Undelivered)),
            ("failed", Some(Failed)),
            ("canceled", None),
            ("receiving", None),
            ("received", None),
            ("partially_delivered", None),
            ("something_new", None),
        ];
        for (twilio, ours) in cases {
            assert_eq!(to_message_status(twilio), ours, "{twilio}");
        }
    }
}
