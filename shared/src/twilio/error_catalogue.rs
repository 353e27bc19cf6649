//! What each Twilio error code means for a clinic: a short description, the usual cause and
//! what to do about it. Written for front-desk staff, not engineers.

use serde::Serialize;

/// How the sender treats an error when Twilio reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Retry {
    /// Twilio did not process the request: try again after a pause.
    Safe,
    /// Worth trying again later, more slowly.
    Later,
    /// Trying again will fail the same way until something is fixed.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub code: u32,
    pub description: &'static str,
    pub common_cause: &'static str,
    pub what_to_do: &'static str,
    pub retry: Retry,
}

const fn info(
    code: u32,
    description: &'static str,
    common_cause: &'static str,
    what_to_do: &'static str,
    retry: Retry,
) -> ErrorInfo {
    ErrorInfo { code, description, common_cause, what_to_do, retry }
}

/// Every code we explain, in ascending order.
pub const CATALOGUE: &[ErrorInfo] = &[
    info(
        20003,
        "Twilio refused the account's credentials.",
        "The Twilio auth token was changed or the account is suspended or closed.",
        "An administrator should check the Twilio account and update the stored auth token.",
        Retry::Never,
    ),
    info(
        20429,
        "Twilio was busy and asked us to slow down.",
        "Too many requests reached Twilio at the same moment.",
        "Nothing: the text is retried automatically.",
        Retry::Safe,
    ),
    info(
        21211,
        "The phone number is not a valid number.",
        "A typing mistake, a missing digit, or a number that does not exist.",
        "Check the number with the client, correct it on their record, then resend.",
        Retry::Never,
    ),
    info(
        21212,
        "The number we send from is not a valid sender.",
        "The connection's sending number is mistyped or not a Twilio number.",
        "An administrator should correct the connection's sending number.",
        Retry::Never,
    ),
    info(
        21408,
        "Texts to this country are not enabled.",
        "The Twilio account's geographic permissions do not include the client's country.",
        "An administrator can enable the country in Twilio's messaging geo permissions.",
        Retry::Never,
    ),
    info(
        21606,
        "The number we send from cannot send texts.",
        "The connection's number does not belong to the Twilio account or cannot send SMS.",
        "An administrator should choose an SMS-capable number owned by the account.",
        Retry::Never,
    ),
    info(
        21610,
        "The client has opted out of texts from this clinic (they replied STOP).",
        "The client asked not to receive texts.",
        "Contact the client another way. Texts resume if they reply START.",
        Retry::Never,
    ),
    info(
        21611,
        "Too many texts are waiting to go out from this number.",
        "The sending number's queue at Twilio is full (about ten hours of texts).",
        "Nothing: the text is retried later, more slowly. Consider more sending numbers.",
        Retry::Later,
    ),
    info(
        21612,
        "The number cannot be reached by text.",
        "The number cannot receive SMS from this sender, for example some landlines or special numbers.",
        "Check that the client's number is a mobile number, or contact them another way.",
        Retry::Never,
    ),
    info(
        21614,
        "The number is not a mobile number.",
        "The number is a landline or cannot receive texts.",
        "Ask the client for a mobile number and save it as their mobile.",
        Retry::Never,
    ),
    info(
        21617,
        "The message is too long.",
        "The text is longer than 1,600 characters.",
        "Shorten the message and send it again.",
        Retry::Never,
    ),
    info(
        30001,
        "Too many texts were waiting at Twilio, so this one was dropped.",
        "The sender's queue overflowed during a busy period.",
        "Nothing: the text is retried later, more slowly.",
        Retry::Later,
    ),
    info(
        30002,
        "The Twilio account is suspended.",
        "Twilio suspended the account, often for billing or compliance.",
        "An administrator should contact Twilio to restore the account.",
        Retry::Never,
    ),
    info(
        30003,
        "The client's phone is switched off or otherwise unavailable.",
        "The handset was off, out of coverage or not accepting texts when the carrier tried.",
        "Confirm the mobile number with the client; a resend later often succeeds.",
        Retry::Later,
    ),
    info(
        30004,
        "The text was blocked.",
        "The client's carrier or the client blocked texts from this number.",
        "Contact the client another way and ask them to unblock the clinic's number.",
        Retry::Never,
    ),
    info(
        30005,
        "The number is unknown and may no longer exist.",
        "The mobile number was disconnected or mistyped.",
        "Confirm the number with the client, save the new mobile number, then resend.",
        Retry::Never,
    ),
    info(
        30006,
        "The number cannot receive this text (a landline or an unreachable carrier).",
        "The number is a landline or belongs to a carrier that does not take texts.",
        "Ask the client for a mobile number and save it in the mobile field.",
        Retry::Never,
    ),
    info(
        30007,
        "The carrier filtered the text as unwanted.",
        "The wording or links looked like spam, or the sender is not registered for this traffic.",
        "Avoid link shorteners and marketing wording; an administrator should check the number's registration.",
        Retry::Never,
    ),
    info(
        30008,
        "The carrier reported an unknown error.",
        "A temporary problem between Twilio and the carrier.",
        "Resend the text; if it keeps failing, contact the client another way.",
        Retry::Later,
    ),
    info(
        30010,
        "The text cost more than the maximum price allowed.",
        "A price limit was set on the message.",
        "An administrator should remove the price limit.",
        Retry::Never,
    ),
    info(
        30022,
        "The sending number went over its carrier rate limit.",
        "More texts were sent than the number's registered campaign allows.",
        "Nothing: the text is retried later, more slowly. Ask about higher throughput.",
        Retry::Later,
    ),
    info(
        30034,
        "The sending number is not registered for texting in the US.",
        "US carriers block texts from numbers without an approved A2P 10DLC registration.",
        "An administrator should complete the number's A2P 10DLC registration.",
        Retry::Never,
    ),
    info(
        30036,
        "The text waited too long at Twilio and was not sent.",
        "A long queue at Twilio outlasted the text's validity period.",
        "Resend if the text is still relevant.",
        Retry::Later,
    ),
    info(
        30500,
        "Twilio had an internal error.",
        "A temporary problem at Twilio.",
        "Nothing: the text is retried once automatically.",
        Retry::Later,
    ),
];

/// The catalogue's entry for a code, if we know it.
pub fn lookup(code: u32) -> Option<&'static ErrorInfo> {
    CATALOGUE.binary_search_by_key(&code, |e| e.code).ok().map(|i| &CATALOGUE[i])
}

/// A description for any code: ours when we know it, a pointer to Twilio's page otherwise.
pub fn describe(code: u32) -> String {
    match lookup(code) {
        Some(info) => info.description.to_owned(),
        None => format!("Twilio error {code}: see https://www.twilio.com/docs/errors/{code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_and_unique() {
        assert!(CATALOGUE.windows(2).all(|w| w[0].code < w[1].code));
    }

    #[test]
    fn every_code_twilio_documents_for_sending_is_explained() {
        let codes = [
            20003, 20429, 21211, 21212, 21408, 21606, 21610, 21611, 21612, 21614, 21617, 30001, 30002, 30003, 30004,
            30005, 30006, 30007, 30008, 30010, 30022, 30034, 30036, 30500,
        ];
        for code in codes {
            let info = lookup(code).unwrap_or_else(|| panic!("{code} missing"));
            assert!(!info.description.is_empty() && !info.common_cause.is_empty() && !info.what_to_do.is_empty());
        }
    }

    #[test]
    fn retry_classes_follow_twilio() {
        assert_eq!(lookup(20429).map(|i| i.retry), Some(Retry::Safe));
        assert_eq!(lookup(21611).map(|i| i.retry), Some(Retry::Later));
        assert_eq!(lookup(21610).map(|i| i.retry), Some(Retry::Never));
    }

    #[test]
    fn unknown_codes_point_to_twilio() {
        assert!(describe(12345).contains("twilio.com/docs/errors/12345"));
        assert!(describe(30003).contains("switched off"));
    }
}
