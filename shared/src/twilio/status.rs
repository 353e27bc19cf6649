//! Twilio's message statuses, read into ours, and its status callback form.

use super::{FormError, is_sid};
use crate::message::StatusCallback;
use crate::message_status::MessageStatus;

/// The longest `MessageStatus` read (`partially_delivered` is 19).
const MAX_STATUS: usize = 32;
/// The longest `RawDlrDoneDate` kept (Twilio's is `YYMMDDhhmm`).
const MAX_RAW_DLR_DONE_DATE: usize = 32;

/// Reads a status callback's fields; `attempt` is the one our callback URL names. `MessageSid` and
/// `MessageStatus` are required; a status we do not know is read (it goes into the history), but
/// one that is not a lowercase word, a SID that is not one, or an `ErrorCode` that is not a number
/// is refused: Twilio sends none of these, and they would be stored.
pub fn parse_callback(form: &[(String, String)], attempt: Option<u32>) -> Result<StatusCallback, FormError> {
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let message_sid = value("MessageSid").ok_or(FormError::Missing("MessageSid"))?;
    let message_status = value("MessageStatus").ok_or(FormError::Missing("MessageStatus"))?;
    if !is_sid(message_sid) {
        return Err(FormError::Invalid("MessageSid"));
    }
    let word = |s: &str| s.len() <= MAX_STATUS && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    if !word(message_status) {
        return Err(FormError::Invalid("MessageStatus"));
    }
    let error_code =
        value("ErrorCode").map(str::parse::<u32>).transpose().map_err(|_| FormError::Invalid("ErrorCode"))?;
    // The carrier's own report time, shown as is: one that cannot be it is dropped rather than the
    // callback refused, since the status it came with is what matters.
    let raw_dlr_done_date = value("RawDlrDoneDate")
        .filter(|d| d.len() <= MAX_RAW_DLR_DONE_DATE && d.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned);
    Ok(StatusCallback {
        message_sid: message_sid.to_owned(),
        message_status: message_status.to_owned(),
        error_code,
        raw_dlr_done_date,
        attempt,
    })
}

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

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const SID: &str = "SM0123456789abcdef0123456789abcdef";

    #[test]
    fn a_callback_is_read_with_its_code_and_report_time() {
        let read = parse_callback(
            &form(&[
                ("MessageSid", SID),
                ("MessageStatus", "undelivered"),
                ("ErrorCode", "30005"),
                ("RawDlrDoneDate", "2611232201"),
                ("FieldAddedNextYear", "x"),
            ]),
            Some(2),
        );
        let expected = StatusCallback {
            message_sid: SID.into(),
            message_status: "undelivered".into(),
            error_code: Some(30005),
            raw_dlr_done_date: Some("2611232201".into()),
            attempt: Some(2),
        };
        assert_eq!(read, Ok(expected));
        let unknown = parse_callback(&form(&[("MessageSid", SID), ("MessageStatus", "partially_delivered")]), None);
        assert!(unknown.is_ok_and(|c| c.error_code.is_none() && c.raw_dlr_done_date.is_none()));
    }

    #[test]
    fn what_twilio_would_not_send_is_refused() {
        let long_sid = format!("SM{}", "a".repeat(10 * 1024));
        let cases = [
            (vec![("MessageStatus", "sent")], FormError::Missing("MessageSid")),
            (vec![("MessageSid", SID), ("MessageStatus", "")], FormError::Missing("MessageStatus")),
            (vec![("MessageSid", long_sid.as_str()), ("MessageStatus", "sent")], FormError::Invalid("MessageSid")),
            (vec![("MessageSid", "SM\u{fffd}"), ("MessageStatus", "sent")], FormError::Invalid("MessageSid")),
            (vec![("MessageSid", SID), ("MessageStatus", "Sent<script>")], FormError::Invalid("MessageStatus")),
            (vec![("MessageSid", SID), ("MessageStatus", "deliv\u{fffd}(ered")], FormError::Invalid("MessageStatus")),
            (
                vec![("MessageSid", SID), ("MessageStatus", "sent"), ("ErrorCode", "-1")],
                FormError::Invalid("ErrorCode"),
            ),
            (
                vec![("MessageSid", SID), ("MessageStatus", "sent"), ("ErrorCode", "4294967296")],
                FormError::Invalid("ErrorCode"),
            ),
        ];
        for (fields, refused) in cases {
            assert_eq!(parse_callback(&form(&fields), None), Err(refused), "{fields:?}");
        }
    }

    #[test]
    fn a_report_time_that_cannot_be_one_is_dropped_not_refused() {
        let long = "9".repeat(1000);
        for odd in [long.as_str(), "26 11 23", "\u{fffd}"] {
            let read = parse_callback(
                &form(&[("MessageSid", SID), ("MessageStatus", "delivered"), ("RawDlrDoneDate", odd)]),
                None,
            );
            assert_eq!(read.map(|c| c.raw_dlr_done_date), Ok(None), "{odd}");
        }
    }
}
