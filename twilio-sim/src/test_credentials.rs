//! Twilio's test credentials: nothing is sent, and magic numbers choose the answer
//! (https://www.twilio.com/docs/iam/test-credentials).

use crate::api_error::ApiError;
use crate::validation::CreateMessage;

/// The only `From` that succeeds with test credentials.
pub(crate) const PASSING_FROM: &str = "+15005550006";

pub(crate) fn check(request: &CreateMessage) -> Result<(), ApiError> {
    if let Some(sid) = &request.messaging_service_sid {
        // Test credentials cannot see any Messaging Service, so from their side every service
        // "does not exist" (21701). A 403 would claim the Messages resource itself is off limits,
        // which it is not.
        return Err(ApiError::bad_request(
            21701,
            format!("The Messaging Service {sid} does not exist for test credentials."),
        ));
    }
    let from = request.from.as_deref().unwrap_or_default();
    match from {
        PASSING_FROM => {}
        "+15005550001" => {
            return Err(ApiError::bad_request(
                21212,
                format!("The 'From' number {from} is not a valid phone number or sender ID."),
            ));
        }
        "+15005550008" => {
            return Err(ApiError::bad_request(21611, "This 'From' number has too many messages queued."));
        }
        // +15005550007 is the documented "not owned by the account" number; every other number
        // fails the same way, since a test account owns none.
        _ => {
            return Err(ApiError::bad_request(
                21606,
                format!("The 'From' number {from} is not a message-capable number of this account."),
            ));
        }
    }
    let to = request.to.as_str();
    let refusal = match to {
        "+15005550001" => (21211, format!("The 'To' number {to} is not a valid phone number.")),
        "+15005550002" => (21612, format!("The 'To' number {to} cannot be reached by SMS.")),
        "+15005550003" => (21408, format!("SMS to the region of {to} has not been enabled for this account.")),
        "+15005550004" => (21610, format!("The recipient {to} has unsubscribed from this sender.")),
        "+15005550009" => (21614, format!("The 'To' number {to} is not a mobile number.")),
        _ => return Ok(()),
    };
    Err(ApiError::bad_request(refusal.0, refusal.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(from: &str, to: &str) -> CreateMessage {
        CreateMessage {
            to: to.into(),
            from: Some(from.into()),
            messaging_service_sid: None,
            body: "hi".into(),
            status_callback: None,
        }
    }

    fn code(from: &str, to: &str) -> Option<u32> {
        check(&request(from, to)).err().map(|e| e.code)
    }

    #[test]
    fn magic_from_numbers() {
        assert_eq!(code("+15005550006", "+15551234567"), None);
        assert_eq!(code("+15005550001", "+15551234567"), Some(21212));
        assert_eq!(code("+15005550007", "+15551234567"), Some(21606));
        assert_eq!(code("+15005550008", "+15551234567"), Some(21611));
        assert_eq!(code("+15551112222", "+15551234567"), Some(21606));
    }

    #[test]
    fn magic_to_numbers() {
        for (to, expected) in [
            ("+15005550001", 21211),
            ("+15005550002", 21612),
            ("+15005550003", 21408),
            ("+15005550004", 21610),
            ("+15005550009", 21614),
        ] {
            assert_eq!(code(PASSING_FROM, to), Some(expected), "{to}");
        }
    }

    #[test]
    fn messaging_services_are_refused() {
        let mut with_service = request(PASSING_FROM, "+15551234567");
        with_service.from = None;
        with_service.messaging_service_sid = Some(format!("MG{}", "a".repeat(32)));
        assert_eq!(check(&with_service).err().map(|e| e.code), Some(21701));
    }
}
