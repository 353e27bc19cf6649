//! Twilio's inbound-message webhook form read into an [`InboundText`]. Twilio adds fields without
//! notice, so anything not read here is ignored.

use super::{FormError, is_sid};
use crate::message::InboundText;
use crate::phone::E164;

/// The longest `OptOutType` read: Twilio's are `STOP`, `START` and `HELP`.
const MAX_OPT_OUT_TYPE: usize = 32;

/// Reads the fields we use; `MessageSid`, `From` and `To` are required. A field no Twilio value
/// looks like is refused rather than stored or looked up (an over-long key is a DynamoDB error).
pub fn parse(form: &[(String, String)]) -> Result<InboundText, FormError> {
    let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let required = |name: &'static str| value(name).ok_or(FormError::Missing(name));
    let number = |name: &'static str| {
        required(name).and_then(|v| E164::try_from(v.to_owned()).map_err(|_| FormError::Invalid(name)))
    };
    let message_sid = required("MessageSid")?;
    if !is_sid(message_sid) {
        return Err(FormError::Invalid("MessageSid"));
    }
    let messaging_service_sid = value("MessagingServiceSid");
    if messaging_service_sid.is_some_and(|sid| !is_sid(sid)) {
        return Err(FormError::Invalid("MessagingServiceSid"));
    }
    let opt_out_type = value("OptOutType");
    if opt_out_type.is_some_and(|t| t.len() > MAX_OPT_OUT_TYPE || !t.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err(FormError::Invalid("OptOutType"));
    }
    Ok(InboundText {
        message_sid: message_sid.to_owned(),
        from: number("From")?,
        to: number("To")?,
        body: value("Body").unwrap_or_default().to_owned(),
        messaging_service_sid: messaging_service_sid.map(str::to_owned),
        opt_out_type: opt_out_type.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const SID: &str = "SM0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_twilios_fields_and_ignores_the_rest() {
        let text = parse(&form(&[
            ("MessageSid", SID),
            ("From", "+14155550123"),
            ("To", "+15017122661"),
            ("Body", " Stop "),
            ("OptOutType", "STOP"),
            ("FieldAddedNextYear", "x"),
        ]));
        let Ok(text) = text else { panic!("parses: {text:?}") };
        assert_eq!(
            (text.message_sid.as_str(), text.from.as_str(), text.to.as_str()),
            (SID, "+14155550123", "+15017122661")
        );
        assert_eq!((text.body.as_str(), text.opt_out_type.as_deref()), (" Stop ", Some("STOP")));
        assert_eq!(text.messaging_service_sid, None);
    }

    #[test]
    fn sid_from_and_to_are_required_and_must_be_sound() {
        let full = [("MessageSid", SID), ("From", "+14155550123"), ("To", "+15017122661")];
        for missing in ["MessageSid", "From", "To"] {
            let without: Vec<_> = full.iter().copied().filter(|(k, _)| *k != missing).collect();
            assert_eq!(parse(&form(&without)), Err(FormError::Missing(missing)));
            let empty: Vec<_> = full.iter().map(|&(k, v)| if k == missing { (k, "") } else { (k, v) }).collect();
            assert_eq!(parse(&form(&empty)), Err(FormError::Missing(missing)));
        }
        let bad_number = [("MessageSid", SID), ("From", "+1 415"), ("To", "+15017122661")];
        assert_eq!(parse(&form(&bad_number)), Err(FormError::Invalid("From")));
        let bad_sid = [("MessageSid", "SM#1"), ("From", "+14155550123"), ("To", "+15017122661")];
        assert_eq!(parse(&form(&bad_sid)), Err(FormError::Invalid("MessageSid")));
    }

    #[test]
    fn a_service_sid_or_opt_out_type_no_twilio_value_looks_like_is_refused() {
        let text = |extra: (&str, &str)| {
            parse(&form(&[("MessageSid", SID), ("From", "+14155550123"), ("To", "+15017122661"), extra]))
        };
        let long_service = format!("MG{}", "a".repeat(10 * 1024));
        assert_eq!(text(("MessagingServiceSid", &long_service)), Err(FormError::Invalid("MessagingServiceSid")));
        assert_eq!(text(("MessagingServiceSid", "MG#1")), Err(FormError::Invalid("MessagingServiceSid")));
        assert_eq!(text(("OptOutType", &"STOP".repeat(100))), Err(FormError::Invalid("OptOutType")));
        assert_eq!(text(("OptOutType", "STOP; DROP")), Err(FormError::Invalid("OptOutType")));
        let sound = text(("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"));
        assert!(sound.is_ok(), "{sound:?}");
        assert!(text(("OptOutType", "HELP")).is_ok());
    }
}
