//! What Twilio checks before it accepts a create-message request: first the request's own shape
//! (the OpenAPI's required and conditional fields), then the sender against the account.

use url::Url;

use crate::accounts::{Account, AccountKind};
use crate::api_error::ApiError;
use crate::sid::is_sid;
use crate::test_credentials;

const MAX_BODY_CHARS: usize = 1600;
const MAX_MEDIA_URLS: usize = 10;

/// A create request that passed the shape checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateMessage {
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// Empty when the message is media or a content template only.
    pub body: String,
    pub status_callback: Option<String>,
}

/// The first value of a field. An empty value counts as absent, as it does for Twilio: `From=`
/// is no sender.
fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
}

/// Field names are PascalCase and case-sensitive (`to` is not `To`); unknown fields are ignored.
pub(crate) fn parse_create(params: &[(String, String)]) -> Result<CreateMessage, ApiError> {
    let to = field(params, "To").ok_or_else(|| ApiError::bad_request(21604, "A 'To' phone number is required."))?;
    let from = field(params, "From");
    let messaging_service_sid = field(params, "MessagingServiceSid");
    if from.is_none() && messaging_service_sid.is_none() {
        return Err(ApiError::bad_request(21603, "A 'From' phone number or a 'MessagingServiceSid' is required."));
    }
    let body = field(params, "Body").unwrap_or_default();
    let media_count = params.iter().filter(|(key, value)| key == "MediaUrl" && !value.is_empty()).count();
    if body.is_empty() && media_count == 0 && field(params, "ContentSid").is_none() {
        return Err(ApiError::bad_request(21602, "Message body is required."));
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(ApiError::bad_request(21617, "The concatenated message body exceeds the 1600 character limit."));
    }
    if media_count > MAX_MEDIA_URLS {
        return Err(ApiError::bad_request(21623, "Too many media URLs: at most 10 are allowed."));
    }
    if !is_e164(to) {
        return Err(ApiError::bad_request(21211, format!("The 'To' number {to} is not a valid phone number.")));
    }
    if let Some(sid) = messaging_service_sid.filter(|sid| !is_sid("MG", sid)) {
        // 21705 is Twilio's code for a MessagingServiceSid that does not match `^MG[0-9a-fA-F]{32}$`.
        return Err(ApiError::bad_request(21705, format!("The Messaging Service Sid {sid} is invalid.")));
    }
    let status_callback = field(params, "StatusCallback");
    if let Some(url) = status_callback.filter(|url| !is_callback_url(url)) {
        return Err(ApiError::bad_request(21609, format!("The StatusCallback URL {url} is not a valid URL.")));
    }
    Ok(CreateMessage {
        to: to.to_owned(),
        from: from.map(str::to_owned),
        messaging_service_sid: messaging_service_sid.map(str::to_owned),
        body: body.to_owned(),
        status_callback: status_callback.map(str::to_owned),
    })
}

/// The sender rules of the authenticated account.
pub(crate) fn check_sender(account: &Account, request: &CreateMessage) -> Result<(), ApiError> {
    match account.kind {
        AccountKind::Test => test_credentials::check(request),
        AccountKind::Live => check_live_sender(account, request),
    }
}

fn check_live_sender(account: &Account, request: &CreateMessage) -> Result<(), ApiError> {
    if let Some(sid) = &request.messaging_service_sid {
        // Well-formed but not a service of this account: Twilio's 21701, "does not exist"
        // (21705 is reserved for a malformed SID, checked with the request's shape).
        let service = account
            .service(sid)
            .ok_or_else(|| ApiError::bad_request(21701, format!("The Messaging Service {sid} does not exist.")))?;
        if service.numbers.is_empty() {
            return Err(ApiError::bad_request(
                21704,
                format!("The Messaging Service {sid} contains no phone numbers."),
            ));
        }
    }
    match &request.from {
        Some(from) if !account.owns_sender(from) => Err(ApiError::bad_request(
            21606,
            format!("The 'From' number {from} is not a message-capable number of this account."),
        )),
        _ => Ok(()),
    }
}

/// `+` then 8 to 15 digits: E.164 without checking the country plan, which is all Twilio needs
/// from a client to accept the request.
fn is_e164(number: &str) -> bool {
    number
        .strip_prefix('+')
        .is_some_and(|digits| (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()))
}

fn is_callback_url(candidate: &str) -> bool {
    Url::parse(candidate).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(fields: &[(&str, &str)]) -> Vec<(String, String)> {
        fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn code(fields: &[(&str, &str)]) -> Option<u32> {
        parse_create(&params(fields)).err().map(|e| e.code)
    }

    const VALID: &[(&str, &str)] = &[("To", "+15551234567"), ("From", "+15005550006"), ("Body", "hi")];

    #[test]
    fn a_complete_request_passes_and_unknown_fields_are_ignored() {
        let mut fields = VALID.to_vec();
        fields.push(("Foo", "bar"));
        let parsed = parse_create(&params(&fields)).unwrap();
        assert_eq!(parsed.to, "+15551234567");
        assert_eq!(parsed.from.as_deref(), Some("+15005550006"));
        assert_eq!(parsed.body, "hi");
    }

    #[test]
    fn required_fields() {
        assert_eq!(code(&[("From", "+15005550006"), ("Body", "hi")]), Some(21604));
        assert_eq!(code(&[("to", "+15551234567"), ("From", "+15005550006"), ("Body", "hi")]), Some(21604));
        assert_eq!(code(&[("To", "+15551234567"), ("Body", "hi")]), Some(21603));
        assert_eq!(code(&[("To", "+15551234567"), ("From", ""), ("Body", "hi")]), Some(21603));
        assert_eq!(code(&[("To", "+15551234567"), ("From", "+15005550006")]), Some(21602));
    }

    #[test]
    fn media_or_a_content_template_stands_in_for_a_body() {
        let media = [("To", "+15551234567"), ("From", "+15005550006"), ("MediaUrl", "https://example.com/a.png")];
        assert_eq!(code(&media), None);
        let content = [("To", "+15551234567"), ("From", "+15005550006"), ("ContentSid", "HX123")];
        assert_eq!(code(&content), None);
        let too_many: Vec<_> =
            VALID.iter().copied().chain(std::iter::repeat_n(("MediaUrl", "https://example.com/a.png"), 11)).collect();
        assert_eq!(code(&too_many), Some(21623));
    }

    #[test]
    fn body_length_counts_characters() {
        let at_limit = "é".repeat(1600);
        assert_eq!(code(&[("To", "+15551234567"), ("From", "+15005550006"), ("Body", &at_limit)]), None);
        let over = "a".repeat(1601);
        assert_eq!(code(&[("To", "+15551234567"), ("From", "+15005550006"), ("Body", &over)]), Some(21617));
    }

    #[test]
    fn to_must_be_e164() {
        for bad in ["5551234567", "+1555", "+1234567890123456", "+1555123456a", "whatsapp:+15551234567"] {
            assert_eq!(code(&[("To", bad), ("From", "+15005550006"), ("Body", "hi")]), Some(21211), "{bad}");
        }
        assert_eq!(code(&[("To", "+12345678"), ("From", "+15005550006"), ("Body", "hi")]), None);
    }

    #[test]
    fn messaging_service_sid_and_callback_must_be_well_formed() {
        assert_eq!(code(&[("To", "+15551234567"), ("MessagingServiceSid", "MG123"), ("Body", "hi")]), Some(21705));
        let good_service = format!("MG{}", "a".repeat(32));
        assert_eq!(code(&[("To", "+15551234567"), ("MessagingServiceSid", &good_service), ("Body", "hi")]), None);
        let mut bad_callback = VALID.to_vec();
        bad_callback.push(("StatusCallback", "not a url"));
        assert_eq!(code(&bad_callback), Some(21609));
    }
}
